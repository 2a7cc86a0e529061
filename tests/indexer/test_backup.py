"""`ptm backup` / `ptm restore`: round trip, hash verification, all-or-nothing swap, snapshots under concurrent writes."""
from __future__ import annotations

import json
import sqlite3
import threading
from dataclasses import replace
from pathlib import Path

import pytest

from api.cli import main
from indexer import doctor
from indexer.backup import BackupError, backup, restore
from indexer.records import Demand
from indexer.settings import Settings
from indexer.store import Store
from tests.indexer.test_doctor import fake_sync, make_workspace

BATCH = 5


@pytest.fixture
def ws(settings: Settings) -> Settings:
    return make_workspace(settings)


def elsewhere(s: Settings, name: str) -> Settings:
    return replace(s, home=s.home.parent / name)


def test_round_trip(ws: Settings, tmp_path: Path) -> None:
    manifest = backup(ws, tmp_path / "bk")
    assert manifest["counts"]["patents"] == {"stored": 3, "indexed": 3, "generation": "gen-000001"}
    assert {"ptm.sqlite", "index/patents/CURRENT", "index/demands/gen-000001/manifest.json"} <= set(manifest["files"])
    assert manifest["cache"] is False  # the hash embedder fills no embedding cache
    assert not list(tmp_path.glob(".bk.tmp-*"))
    target = elsewhere(ws, "restored")
    restored, aside = restore(target, tmp_path / "bk")
    assert aside is None and restored["created"] == manifest["created"]
    assert doctor.check(target).healthy
    assert Store(target.db_path).text_hashes("demands") == Store(ws.db_path).text_hashes("demands")


def test_cli_round_trip_of_a_real_workspace(writable_indexed_settings: Settings, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    s = writable_indexed_settings
    assert main(["--home", str(s.home), "backup", str(tmp_path / "bk")]) == 0
    assert (tmp_path / "bk" / "cache" / "embeddings.sqlite").is_file()
    assert main(["--home", str(s.home), "backup", str(tmp_path / "bk")]) == 1  # not over an existing backup
    assert "not empty" in capsys.readouterr().err
    new_home = tmp_path / "new"
    assert main(["--home", str(new_home), "restore", str(tmp_path / "bk")]) == 0
    assert main(["--home", str(new_home), "doctor"]) == 0


def test_no_cache(ws: Settings, tmp_path: Path) -> None:
    (ws.embedding_cache.parent).mkdir(parents=True, exist_ok=True)
    sqlite3.connect(ws.embedding_cache).close()
    assert main(["--home", str(ws.home), "backup", str(tmp_path / "bk"), "--no-cache"]) == 0
    assert not (tmp_path / "bk" / "cache").exists()
    assert json.loads((tmp_path / "bk" / "manifest.json").read_text())["cache"] is False


def test_a_damaged_backup_is_refused_and_nothing_changes(ws: Settings, tmp_path: Path) -> None:
    backup(ws, tmp_path / "bk")
    target = elsewhere(ws, "restored")
    gen_manifest = tmp_path / "bk" / "index" / "patents" / "gen-000001" / "manifest.json"
    gen_manifest.write_text(gen_manifest.read_text().replace('"count": 3', '"count": 4'))
    with pytest.raises(BackupError, match="damaged.*gen-000001/manifest.json \\(sha256 differs\\)"):
        restore(target, tmp_path / "bk")
    (tmp_path / "bk" / "ptm.sqlite").unlink()
    with pytest.raises(BackupError, match="ptm.sqlite \\(missing\\)"):
        restore(target, tmp_path / "bk")
    assert not target.home.exists() and not list(target.home.parent.glob(".restored.restore-*"))
    with pytest.raises(BackupError, match="not a ptm backup"):
        restore(target, tmp_path)


def test_a_non_empty_home_needs_force_and_is_kept_aside(ws: Settings, tmp_path: Path) -> None:
    backup(ws, tmp_path / "bk")
    Store(ws.db_path).delete("patents", ["CN1A"])
    with pytest.raises(BackupError, match="--force"):
        restore(ws, tmp_path / "bk")
    assert Store(ws.db_path).count("patents") == 2  # untouched
    _, aside = restore(ws, tmp_path / "bk", force=True)
    assert aside.name.startswith(f"{ws.home.name}.before-restore-")
    assert Store(aside / "ptm.sqlite").count("patents") == 2
    assert Store(ws.db_path).count("patents") == 3


def test_backup_while_demands_are_written_is_a_consistent_snapshot(ws: Settings, tmp_path: Path) -> None:
    """A writer commits batches of BATCH demands throughout; each backup holds whole batches and restores cleanly."""
    store, start = Store(ws.db_path), Store(ws.db_path).count("demands")
    stop = threading.Event()
    errors: list[BaseException] = []

    def write() -> None:
        try:
            n = 0
            while not stop.is_set():
                store.upsert("demands", [Demand(id=f"W{n}-{j}", title="在线写入", text=f"需要第{n}批第{j}种检测设备。")
                                         for j in range(BATCH)])
                n += 1
        except BaseException as exc:  # surfaced in the main thread
            errors.append(exc)

    writer = threading.Thread(target=write)
    writer.start()
    try:
        for k in range(3):
            backup(ws, tmp_path / f"bk{k}")
    finally:
        stop.set()
        writer.join()
    assert not errors and store.count("demands") > start
    for k in range(3):
        target = elsewhere(ws, f"restored{k}")
        restore(target, tmp_path / f"bk{k}")
        report = doctor.check(target)
        assert report.codes <= {"missing"}, report.format()  # only demands written since the last `ptm index`
        stored = Store(target.db_path).count("demands")
        assert (stored - start) % BATCH == 0
        fake_sync(target)
        assert doctor.check(target).healthy
