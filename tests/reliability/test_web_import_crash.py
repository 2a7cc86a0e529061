"""Crash harness for the web import: SIGKILL a real `ptm serve` while a university's 2,000-row CSV import runs.

The import goes through the pages as a user does it (sign in → upload → validation report → confirm → background
job). The server is killed at a random moment of the job (fixed seed), then restarted: every time the database
passes integrity_check and holds all 2,000 rows of the file or none of them, the interrupted job is shown as
failed (never left "running"), and each kind's live index is the previous generation or a new complete one.
After the last kill one `ptm index` makes `ptm doctor` healthy.
"""
from __future__ import annotations

import csv
import json
import random
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from api.cli import main
from indexer import doctor
from indexer import index as index_mod
from indexer.settings import DATASETS_DIR, Settings
from indexer.store import KINDS
from tests.reliability.conftest import LiveWorkspace
from tests.reliability.live_server import CLIENT_TIMEOUT, UNIVERSITY, LiveServer, csrf_of, sign_in
from tests.reliability.test_crash import AFTER_INDEX_KILL, _generation_number, integrity_and_count

ROWS = 2000
DISTINCT_TEXTS = 60  # rows share texts, so the embedding cache makes every sync after the first cheap


def write_import_csv(path: Path, attempt: int) -> Path:
    """2,000 patents of UNIVERSITY with ids unique to this attempt: the row count tells what was committed."""
    with open(DATASETS_DIR / "eval" / "dev" / "patents.jsonl", encoding="utf-8") as fh:
        pool = [json.loads(line) for line, _ in zip(fh, range(DISTINCT_TEXTS))]
    with open(path, "w", encoding="utf-8-sig", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["公开(公告)号", "名称", "摘要", "申请人"])
        for i in range(ROWS):
            p = pool[i % DISTINCT_TEXTS]
            w.writerow([f"CN8{attempt:02d}{i:05d}A", p["title"], p["abstract"][:300], UNIVERSITY])
    return path


def upload_and_confirm(client: httpx.Client, path: Path) -> int:
    """The page flow of tests/web/test_jobs.py, over HTTP: returns the id of the import job."""
    page = client.get("/import")
    with open(path, "rb") as fh:
        r = client.post("/import", data={"csrf": csrf_of(page.text), "kind": "patents"},
                        files={"file": (path.name, fh, "text/csv")})
    assert r.status_code == 200 and f"确认导入 {ROWS} 条" in r.text, r.text[:500]
    upload = r.text.split('name="upload" value="')[1].split('"')[0]
    r = client.post("/import/confirm", data={"csrf": csrf_of(r.text), "kind": "patents", "upload": upload})
    assert r.status_code == 303, r.text[:300]
    return int(r.headers["location"].rsplit("/", 1)[1])


def job_status(client: httpx.Client, job_id: int) -> dict:
    return client.get(f"/jobs/{job_id}/status").json()


def wait_done(client: httpx.Client, job_id: int, timeout: float = 300) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = job_status(client, job_id)
        if job["finished"]:
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} did not finish in {timeout} s")


def live_generations(settings: Settings) -> dict[str, int]:
    return {kind: _generation_number(settings, kind) for kind in KINDS}


def check_after_kill(settings: Settings, before_rows: int, before_gen: dict[str, int]) -> bool:
    """The invariants after a kill; True if the import's rows were committed."""
    ok, rows = integrity_and_count(settings.db_path, "patents")
    assert ok == "ok"
    assert rows in (before_rows, before_rows + ROWS), f"{rows - before_rows} of {ROWS} rows committed"
    for kind in KINDS:
        gen = _generation_number(settings, kind)
        assert gen >= before_gen[kind]
        assert (index_mod.load_snapshot(settings.index_dir, kind) is None) == (gen == 0)  # old or new, complete
    report = doctor.check(settings)
    assert report.codes <= AFTER_INDEX_KILL, report.format()
    return rows > before_rows


def interrupted_job_is_failed(client: httpx.Client, job_id: int) -> None:
    """What the user sees after the restart: the job that was running is finished, and failed unless it was done."""
    job = job_status(client, job_id)
    assert job["finished"], f"job {job_id} is still {job['status']!r} after a restart"
    assert job["status"] == "done" or "重新提交" in job["message"], job


@contextmanager
def signed_in(server: LiveServer, warm: bool = True) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=CLIENT_TIMEOUT, follow_redirects=False) as client:
        sign_in(client, "uni-rel")
        if warm:  # load the model now, so the kills land in the import job itself
            client.post("/match", json={"text": "锂电池", "k": 1})
        yield client


def kill_web_imports(settings: Settings, tmp_path: Path, kills: int, seed: int) -> None:
    rng = random.Random(seed)
    server = LiveServer(settings.home)
    # A first import runs to the end: it proves the flow, fills the embedding cache, and times a job.
    with server, signed_in(server) as client:
        job_id = upload_and_confirm(client, write_import_csv(tmp_path / "import.csv", 0))
        start = time.monotonic()
        job = wait_done(client, job_id)
        job_seconds = time.monotonic() - start
    assert job["status"] == "done", job
    _, rows = integrity_and_count(settings.db_path, "patents")
    outcomes = []
    for attempt in range(kills):
        before_gen = live_generations(settings)
        with signed_in(server.start()) as client:
            if attempt:
                interrupted_job_is_failed(client, job_id)
            job_id = upload_and_confirm(client, write_import_csv(tmp_path / "import.csv", attempt + 1))
            # Stratified: attempt i is killed somewhere in the i-th slice of the job's duration (and a bit after).
            time.sleep(1.2 * job_seconds * rng.uniform(attempt, attempt + 1) / kills)
            finished = job_status(client, job_id)["finished"]
            server.kill()
        committed = check_after_kill(settings, rows, before_gen)
        rows += ROWS * committed
        outcomes.append((finished, committed))
    with signed_in(server.start(), warm=False) as client:  # its start marks the last interrupted job failed
        interrupted_job_is_failed(client, job_id)
    server.stop()
    assert (False, False) in outcomes, f"no kill landed before the commit: {outcomes}"
    assert main(["--home", str(settings.home), "index"]) == 0
    report = doctor.check(settings)
    assert report.healthy, report.format()


@pytest.mark.slow
def test_killed_web_imports_are_all_or_nothing(live_workspace: LiveWorkspace, tmp_path: Path) -> None:
    kill_web_imports(live_workspace.settings, tmp_path, kills=3, seed=9)


@pytest.mark.long  # deselected by default; `pytest -m long`
def test_killed_web_imports_many_times(live_workspace: LiveWorkspace, tmp_path: Path) -> None:
    kill_web_imports(live_workspace.settings, tmp_path, kills=10, seed=19)
