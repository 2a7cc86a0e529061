"""Backup and restore while `ptm serve` runs: a backup under live reads and writes is one consistent state, and a
restore refuses to swap the workspace out from under a running server (and works once it is stopped or dead).
"""
from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest

from indexer import doctor
from indexer.backup import DB_FILE
from indexer.settings import REPO_ROOT, Settings
from indexer.store import Store
from tests.reliability.conftest import LiveWorkspace
from tests.reliability.live_server import CLIENT_TIMEOUT, LiveServer


def ptm(home: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "api.cli", "--home", str(home), *args], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=300)


def stored_ids(db: Path, prefix: str) -> set[str]:
    con = sqlite3.connect(db)
    try:
        return {r[0] for r in con.execute("SELECT id FROM demands WHERE id LIKE ?", (prefix + "%",))}
    finally:
        con.close()


@pytest.mark.slow  # the server loads the real encoder for the writes' index syncs
def test_backup_during_live_traffic_is_a_state_that_existed(live_workspace: LiveWorkspace, tmp_path: Path) -> None:
    settings, token = live_workspace.settings, live_workspace.accounts["enterprise_token"]
    acknowledged: list[str] = []
    errors: list[str] = []
    stop = threading.Event()

    def writer(client: httpx.Client) -> None:
        # One writer, so its demands commit in order: any consistent snapshot holds a prefix of them.
        n = 0
        while not stop.is_set():
            r = client.post("/demands", headers={"Authorization": f"Bearer {token}"},
                            json={"id": f"BK-{n:04d}", "title": f"备份期间的需求{n}", "text": f"需要一种污水处理膜材料，编号{n}"})
            if r.status_code == 201:
                acknowledged.append(f"BK-{n:04d}")
            else:
                errors.append(f"HTTP {r.status_code} {r.text[:200]}")
            n += 1

    def reader(client: httpx.Client) -> None:
        while not stop.is_set():
            for r in (client.post("/match", json={"text": "锂电池", "k": 5}), client.get("/health")):
                if r.status_code != 200:
                    errors.append(f"{r.request.url.path}: HTTP {r.status_code} {r.text[:200]}")

    with LiveServer(settings.home) as server, httpx.Client(base_url=server.url, timeout=CLIENT_TIMEOUT) as client:
        client.post("/match", json={"text": "预热", "k": 1})
        threads = [threading.Thread(target=writer, args=(client,))]
        threads += [threading.Thread(target=reader, args=(client,)) for _ in range(2)]
        for t in threads:
            t.start()
        try:
            while len(acknowledged) < 2 and not errors:
                stop.wait(0.2)
            backups = []
            for i in range(2):  # two backups, each taken while writes keep landing
                done = ptm(settings.home, "backup", str(tmp_path / f"bk{i}"))
                assert done.returncode == 0, done.stdout + done.stderr
                backups.append((tmp_path / f"bk{i}", len(acknowledged)))
        finally:
            stop.set()
            for t in threads:
                t.join()
    assert not errors, errors[:5]
    for backup, acked_after in backups:
        ids = stored_ids(backup / DB_FILE, "BK-")
        k = len(ids)
        assert ids == {f"BK-{n:04d}" for n in range(k)}, f"{backup.name}: not a prefix of the writes"
        assert k <= acked_after + 1  # at most the write in flight when the snapshot was taken
        home = tmp_path / f"restored-{backup.name}"
        done = ptm(home, "restore", str(backup))
        assert done.returncode == 0, done.stdout + done.stderr
        restored = Settings.from_env(home=home)
        report = doctor.check(restored)
        # The index is copied first, so it may lag the database by the writes in between, never lead or break.
        assert all(p.drift for p in report.problems), report.format()
        assert ptm(home, "index").returncode == 0
        done = ptm(home, "doctor")
        assert done.returncode == 0, done.stdout
        assert stored_ids(home / DB_FILE, "BK-") == ids


def test_restore_is_refused_while_a_server_holds_the_workspace(live_workspace: LiveWorkspace, tmp_path: Path) -> None:
    settings = live_workspace.settings
    assert ptm(settings.home, "backup", str(tmp_path / "bk")).returncode == 0
    store = Store(settings.db_path)
    before = store.count("demands")
    store.delete("demands", [store.list("demands", limit=1)[0].id])  # a change since the backup
    server = LiveServer(settings.home).start()
    try:
        refused = ptm(settings.home, "restore", str(tmp_path / "bk"), "--force")
        assert refused.returncode != 0
        assert "server" in refused.stderr and "stop the server" in refused.stderr, refused.stderr
        assert httpx.get(server.url + "/health", timeout=CLIENT_TIMEOUT).json()["demands"] == before - 1  # still serving the same workspace
        assert not list(settings.home.parent.glob("ws.before-restore-*"))
    finally:
        server.kill()  # even a killed server leaves no stale lock: the kernel drops it with the process
    done = ptm(settings.home, "restore", str(tmp_path / "bk"), "--force")
    assert done.returncode == 0, done.stderr
    with LiveServer(settings.home) as server:
        assert httpx.get(server.url + "/health", timeout=CLIENT_TIMEOUT).json()["demands"] == before
