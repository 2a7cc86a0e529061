"""Concurrency: API writes during an index rebuild, two imports at once, many readers while a writer imports.

Every write must either land whole and be visible afterwards, or be refused with a clear message (HTTP 503/409 with
a JSON detail saying to try again) and be absent; readers must never see "database is locked" or half an import.
Everything runs in real separate processes (a `ptm serve` subprocess, `ptm index` / `ptm ingest` subprocesses).
"""
from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from indexer import doctor
from indexer.settings import REPO_ROOT, Settings
from indexer.store import Store
from tests.conftest import write_jsonl
from tests.reliability.conftest import LiveWorkspace
from tests.reliability.live_server import CLIENT_TIMEOUT, LiveServer
from tests.reliability.test_crash import DEV_PATENTS

REFUSED = (409, 503)  # a refusal the client can retry; anything else but success is a bug


def ptm(home: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "api.cli", "--home", str(home), *args], cwd=REPO_ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finished(proc: subprocess.Popen, timeout: float = 300) -> tuple[int, str]:
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out + err


def dev_patents(n: int, prefix: str, title_suffix: str = "") -> list[dict]:
    with open(DEV_PATENTS, encoding="utf-8") as fh:
        rows = [json.loads(line) for line, _ in zip(fh, range(n))]
    return [{**r, "id": f"{prefix}{r['id']}", "title": r["title"] + title_suffix} for r in rows]


def check_refusal(r: httpx.Response) -> None:
    assert r.status_code in REFUSED, f"HTTP {r.status_code}: {r.text[:300]}"
    detail = r.json()["detail"]
    assert "try again" in detail or "重试" in detail, detail


@pytest.mark.slow  # the server and `ptm index` load the real encoder
def test_api_writes_during_an_index_rebuild_land_or_are_refused(live_workspace: LiveWorkspace) -> None:
    settings, accounts = live_workspace.settings, live_workspace.accounts
    ent = {"Authorization": f"Bearer {accounts['enterprise_token']}"}
    staff = {"Authorization": f"Bearer {accounts['staff_token']}"}
    sent: dict[str, list[str]] = {"demands": [], "patents": []}
    landed: dict[str, set[str]] = {"demands": set(), "patents": set()}
    lock = threading.Lock()

    def write(i: int, client: httpx.Client) -> None:
        if i % 2:
            kind, r = "demands", client.post("/demands", headers=ent, json={
                "id": f"CW-D{i}", "title": f"并发需求{i}", "text": f"需要一种锂电池热失控预警技术，第{i}号需求"})
        else:
            kind, r = "patents", client.post("/patents", headers=staff, json=[{
                "id": f"CW-P{i}", "title": f"并发专利{i}", "abstract": f"一种电池包的热管理结构，实施例{i}"}])
        with lock:
            sent[kind].append(f"CW-{kind[0].upper()}{i}")
            if r.status_code in (200, 201):
                landed[kind].add(f"CW-{kind[0].upper()}{i}")
            else:
                check_refusal(r)

    with LiveServer(settings.home) as server, httpx.Client(base_url=server.url, timeout=CLIENT_TIMEOUT) as client:
        rebuild = ptm(settings.home, "index", "--rebuild")
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(lambda i: write(i, client), range(12)))
        code, out = finished(rebuild)
        assert code == 0, out
    store = Store(settings.db_path)
    for kind in ("demands", "patents"):
        present = {i for i in sent[kind] if store.get(kind, i) is not None}
        assert present == landed[kind], f"{kind}: stored {sorted(present)} but acknowledged {sorted(landed[kind])}"
    assert landed["demands"] and landed["patents"]
    # Each acknowledged write synced the index itself: the index already holds every stored record.
    report = doctor.check(settings)
    assert report.healthy, report.format()
    code, out = finished(ptm(settings.home, "index"))
    assert code == 0, out
    code, out = finished(ptm(settings.home, "doctor"))
    assert code == 0, out


@pytest.mark.parametrize("overlap", [False, True], ids=["different files", "overlapping files"])
def test_two_imports_at_once_each_land_whole(live_workspace: LiveWorkspace, tmp_path: Path, overlap: bool) -> None:
    settings = live_workspace.settings
    store = Store(settings.db_path)
    before = store.count("patents")
    a = dev_patents(1500, "TA-", "（甲）")
    # Overlapping: the same 1,500 ids with other titles; the import that commits last wins, for every row.
    b = dev_patents(1500, "TA-" if overlap else "TB-", "（乙）")
    procs = [ptm(settings.home, "ingest", "patents", str(write_jsonl(tmp_path / f"{name}.jsonl", rows)))
             for name, rows in (("a", a), ("b", b))]
    for proc in procs:
        code, out = finished(proc)
        assert code == 0, out  # the second waited for the first's write lock instead of failing
    ids = {r["id"] for r in a + b}
    assert store.count("patents") == before + len(ids)
    suffix = {i: store.get("patents", i).title[-3:] for i in ids}
    if overlap:
        assert len(set(suffix.values())) == 1, "rows of both files are mixed"  # one file committed last, whole
    else:
        assert {suffix[r["id"]] for r in a} == {"（甲）"} and {suffix[r["id"]] for r in b} == {"（乙）"}


def test_an_import_waiting_too_long_is_refused_whole(live_workspace: LiveWorkspace) -> None:
    """The documented refusal: a writer that cannot get the lock in time writes nothing and says to try again."""
    from indexer.records import Patent
    from indexer.store import StoreError

    settings = live_workspace.settings
    holder, waiter = Store(settings.db_path), Store(settings.db_path, busy_timeout_s=0.2)
    before = holder.count("patents")
    records = [Patent.model_validate(r) for r in dev_patents(50, "TW-")]
    with holder.transaction():
        with pytest.raises(StoreError, match="try again"):
            waiter.upsert("patents", records)
    assert holder.count("patents") == before


@pytest.mark.slow  # the server loads the real encoder for /match
def test_readers_during_an_import_see_all_or_nothing_and_never_an_error(live_workspace: LiveWorkspace,
                                                                          tmp_path: Path) -> None:
    settings = live_workspace.settings
    rows = dev_patents(2000, "TR-")
    path = write_jsonl(tmp_path / "import.jsonl", rows)
    before = Store(settings.db_path).count("patents")
    errors: list[str] = []
    seen_counts: set[int] = set()
    rankings: set[tuple[str, ...]] = set()
    stop = threading.Event()

    def http_reader(client: httpx.Client) -> None:
        while not stop.is_set():
            for r in (client.post("/match", json={"text": "锂电池热失控预警", "k": 5}), client.get("/health"), client.get("/")):
                if r.status_code != 200:
                    errors.append(f"{r.request.url.path}: HTTP {r.status_code} {r.text[:200]}")
            rankings.add(tuple(m["id"] for m in client.post("/match", json={"text": "茶叶烘干", "k": 5}).json()))
            seen_counts.add(client.get("/health").json()["patents"])

    def store_reader() -> None:
        store = Store(settings.db_path)
        while not stop.is_set():
            try:
                seen_counts.add(store.count("patents"))
                store.list("patents", limit=20, offset=before)
            except Exception as exc:  # noqa: BLE001 — any error reaching a reader is the failure under test
                errors.append(repr(exc))

    with LiveServer(settings.home) as server, httpx.Client(base_url=server.url, timeout=CLIENT_TIMEOUT) as client:
        client.post("/match", json={"text": "预热", "k": 1})  # load the model before the clock matters
        threads = [threading.Thread(target=http_reader, args=(client,)) for _ in range(4)]
        threads += [threading.Thread(target=store_reader) for _ in range(2)]
        for t in threads:
            t.start()
        try:
            time.sleep(1)
            code, out = finished(ptm(settings.home, "ingest", "patents", str(path)))
            time.sleep(1)
        finally:
            stop.set()
            for t in threads:
                t.join()
    assert code == 0, out
    assert not errors, errors[:5]
    assert seen_counts == {before, before + len(rows)}, seen_counts  # nothing in between: never half an import
    assert len(rankings) == 1, rankings  # the index did not change (ingest does not index), so neither do results


def test_concurrent_api_writes_share_index_syncs_that_start_after_their_commit(monkeypatch: pytest.MonkeyPatch,
                                                                                  settings: Settings) -> None:
    """api.jobs.IndexSyncs: every caller gets a sync that started after it called; N callers cost ~2 syncs."""
    from api.jobs import IndexSyncs
    from indexer import pipeline

    starts: list[float] = []
    fail_first = threading.Event()
    fail_first.set()

    shapes_seen: set[str] = set()

    def fake_sync(_settings, kinds, progress=None, shapes="exact"):
        shapes_seen.add(shapes)
        starts.append(time.monotonic())
        time.sleep(0.2)
        if fail_first.is_set():
            fail_first.clear()
            raise RuntimeError("the first sync fails")
        return [len(starts)]  # which sync this was

    monkeypatch.setattr(pipeline, "sync_index", fake_sync)
    syncs = IndexSyncs(settings)

    def call(_: int) -> tuple[float, object]:
        called = time.monotonic()
        try:
            return called, syncs.after_commit("demands")
        except RuntimeError:
            return called, None

    with ThreadPoolExecutor(12) as pool:
        results = list(pool.map(call, range(12)))
    assert sum(r is None for _, r in results) == 1  # only the caller whose own sync failed sees the failure
    for called, number in results:
        if number is not None:
            assert starts[number - 1] >= called  # the sync it waited for began after its commit
    assert len(starts) <= 4, f"{len(starts)} syncs for 12 concurrent writes"
    assert shapes_seen == {"bounded"}  # the server's syncs must not grow the model's kernel caches
