"""Background work with progress: imports and index syncs run in a worker thread and report into the jobs table.

The table, not the thread, is the truth a page polls (GET /jobs/{id}.json), so a reload or a second tab sees the
same progress. One job runs at a time (the others wait as 排队中): two imports writing and embedding at once
would only slow each other down and contend for the index lock.
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path

from api.webstore import User, WebStore
from indexer.settings import Settings
from indexer.store import Kind, Store

log = logging.getLogger(__name__)
KIND_LABELS = {"import": "导入", "index": "重新匹配（索引同步）"}

#: A job body gets a reporter: report(done=…, total=…, message=…); it returns the final message.
Reporter = Callable[..., None]


class JobRunner:
    def __init__(self, web: WebStore):
        self.web = web
        self._one_at_a_time = threading.Lock()

    def start(self, kind: str, user: User | None, body: Callable[[Reporter], str]) -> int:
        job_id = self.web.add_job(kind, user.id if user else None)
        threading.Thread(target=self._run, args=(job_id, body), name=f"ptm-job-{job_id}", daemon=True).start()
        return job_id

    def _run(self, job_id: int, body: Callable[[Reporter], str]) -> None:
        with self._one_at_a_time:
            self.web.update_job(job_id, status="running", message="开始")

            def report(**values: object) -> None:
                self.web.update_job(job_id, **values)

            try:
                message = body(report)
            except Exception as exc:  # the job's message is what the user sees; the traceback goes to the log
                log.exception("job %s failed", job_id)
                self.web.update_job(job_id, status="failed", message=f"失败：{exc}")
                return
            self.web.update_job(job_id, status="done", message=message)


def index_body(settings: Settings, kinds: tuple[Kind, ...] = ("patents", "demands")) -> Callable[[Reporter], str]:
    def body(report: Reporter) -> str:
        return _sync(settings, kinds, report)
    return body


def import_body(settings: Settings, store: Store, kind: Kind, path: Path,
                keep: Callable[[list], list] | None = None) -> Callable[[Reporter], str]:
    """Read and validate `path`, write its valid records (those `keep` returns) in one transaction, then index.
    The uploaded file is removed afterwards, whatever happens."""
    from indexer.readers import read_file

    def body(report: Reporter) -> str:
        try:
            report(message="读取并校验文件…")
            read = read_file(path, kind, settings)
            records = keep(read.records) if keep else read.records
            report(message=f"写入 {len(records)} 条记录…", total=len(records))
            counts = store.upsert(kind, records)
        finally:
            path.unlink(missing_ok=True)
        summary = f"导入 {len(records)} 条：新增 {counts.added}，更新 {counts.updated}，未变 {counts.unchanged}；跳过 {len(read.rejected) + len(read.records) - len(records)} 行"
        return summary + "。" + _sync(settings, (kind,), report)
    return body


def _sync(settings: Settings, kinds: tuple[Kind, ...], report: Reporter) -> str:
    from indexer.pipeline import sync_index

    labels = {"patents": "专利", "demands": "需求"}

    def progress(kind: str, done: int, total: int) -> None:
        report(done=done, total=total, message=f"正在计算{labels[kind]}向量 {done}/{total}")

    report(message="同步索引…")
    reports = sync_index(settings, kinds=kinds, progress=progress)
    return "索引已同步：" + "，".join(f"{labels[r.kind]} {r.total} 条（新增 {r.added}，更新 {r.updated}，删除 {r.removed}）" for r in reports)
