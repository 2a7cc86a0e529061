"""Background work with progress: imports and index syncs run in a worker thread and report into the jobs table.

The table, not the thread, is the truth a page polls (GET /jobs/{id}.json), so a reload or a second tab sees the
same progress. One job runs at a time (the others wait as 排队中): two imports writing and embedding at once
would only slow each other down and contend for the index lock.
"""
from __future__ import annotations

import logging
import threading
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

from api.webstore import User, WebStore
from indexer.settings import Settings
from indexer.store import Kind, Store

if TYPE_CHECKING:
    from indexer.index import SyncReport

log = logging.getLogger(__name__)
KIND_LABELS = {"import": "导入", "index": "重新匹配（索引同步）"}

#: A job body gets a reporter: report(done=…, total=…, message=…); it returns the final message.
Reporter = Callable[..., None]


class IndexSyncs:
    """The server's index syncs: one per kind at a time, and a writer waits for one that started after its commit.

    N concurrent writes (API or web pages) would otherwise queue N syncs. Here a writer that commits while a sync
    runs waits for the next one, which covers its write and every other that arrived meanwhile: N concurrent
    writes cost about two syncs, and none is left out of the index.
    The syncs themselves run on one long-lived thread: run on whichever request thread committed, their freed index
    buffers piled up in many malloc arenas (`bench/bench_load.py --soak 300 --only post`: RSS +116 MB/min; on one
    thread it levels off, see README Reliability).
    """

    def __init__(self, settings: Settings):
        self.settings = settings
        self._worker = ThreadPoolExecutor(1, thread_name_prefix="ptm-index-sync")
        self._cond = threading.Condition()
        self._started: dict[str, int] = defaultdict(int)
        self._finished: dict[str, int] = defaultdict(int)
        self._last: dict[str, SyncReport] = {}
        self._running: set[str] = set()

    def after_commit(self, kind: Kind, progress: Callable[[str, int, int], None] | None = None) -> SyncReport:
        """Bring the index of `kind` up to at least what the store holds now; `progress` hears a sync this call runs."""
        from indexer.pipeline import sync_index

        with self._cond:
            needed = self._started[kind] + 1  # a sync started before now may have read the store before our commit
            while self._finished[kind] < needed and kind in self._running:
                self._cond.wait()
            if self._finished[kind] >= needed:
                return self._last[kind]
            self._running.add(kind)
            self._started[kind] += 1
            number = self._started[kind]
        try:
            # bounded: the server lives for months, and each new input shape would leave model kernels behind
            report = self._worker.submit(sync_index, self.settings, kinds=(kind,), progress=progress,
                                         shapes="bounded").result()[0]
            with self._cond:
                self._finished[kind], self._last[kind] = number, report
            return report
        finally:  # on failure the waiters wake up, find no sync running and start their own
            with self._cond:
                self._running.discard(kind)
                self._cond.notify_all()


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


_SHARED: dict[Path, IndexSyncs] = {}
_SHARED_LOCK = threading.Lock()


def index_syncs(settings: Settings) -> IndexSyncs:
    """This process's IndexSyncs for the workspace's index, shared by API writes and background jobs."""
    key = Path(settings.index_dir).resolve()
    with _SHARED_LOCK:
        return _SHARED.setdefault(key, IndexSyncs(settings))


def index_body(settings: Settings, kinds: tuple[Kind, ...] = ("patents", "demands")) -> Callable[[Reporter], str]:
    def body(report: Reporter) -> str:
        return _sync(index_syncs(settings), kinds, report)
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
        return summary + "。" + _sync(index_syncs(settings), (kind,), report)
    return body


def _sync(syncs: IndexSyncs, kinds: tuple[Kind, ...], report: Reporter) -> str:
    labels = {"patents": "专利", "demands": "需求"}

    def progress(kind: str, done: int, total: int) -> None:
        report(done=done, total=total, message=f"正在计算{labels[kind]}向量 {done}/{total}")

    report(message="同步索引…")
    reports = [syncs.after_commit(kind, progress) for kind in kinds]
    return "索引已同步：" + "，".join(f"{labels[r.kind]} {r.total} 条（新增 {r.added}，更新 {r.updated}，删除 {r.removed}）" for r in reports)
