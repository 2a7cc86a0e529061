"""`ptm doctor`: each way the store and the index can disagree is detected, named, and (drift) repaired."""
from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from api.cli import main
from indexer import doctor
from indexer import index as index_mod
from indexer.pipeline import model_signature
from indexer.records import Demand, Patent
from indexer.settings import Settings
from indexer.store import KINDS, Kind, Store
from indexer.text import get_tokenizer, tokenize_many
from tests.indexer.test_index import PATENTS, hash_embed

DEMANDS = [
    Demand(id="D1", title="电池安全", text="我们需要一种防止锂电池热失控爆炸的结构。"),
    Demand(id="D2", title="焊接", text="寻找机器人焊接夹具的自动定位方案。"),
]


def fake_sync(settings: Settings, kinds: tuple[Kind, ...] = KINDS, rebuild: bool = False) -> None:
    """What sync_index does, with the hash embedder instead of the model (same manifest signatures)."""
    store = Store(settings.db_path)
    tokenizer = get_tokenizer(settings.tokenizer)
    for kind in kinds:
        inputs = index_mod.SyncInputs(
            hashes=store.text_hashes(kind), fetch_texts=lambda ids, kind=kind: store.texts(kind, ids),
            embed=hash_embed, tokenize=lambda texts: [tokenizer(t) for t in texts],
            words=None if settings.tokenizer == "jieba" else tokenize_many,
            model=model_signature(settings), tokenizer=settings.tokenizer,
        )
        index_mod.sync(settings.index_dir, kind, inputs, rebuild=rebuild)


def make_workspace(settings: Settings) -> Settings:
    store = Store(settings.db_path)
    store.upsert("patents", PATENTS)
    store.upsert("demands", DEMANDS)
    fake_sync(settings)
    return settings


@pytest.fixture
def ws(settings: Settings) -> Settings:
    return make_workspace(settings)


def live(settings: Settings, kind: str = "patents") -> Path:
    return index_mod.kind_dir(settings.index_dir, kind) / index_mod.current_generation(settings.index_dir, kind)


def _edit_manifest(s: Settings, **changes: object) -> None:
    path = live(s) / "manifest.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), **changes}), encoding="utf-8")


def _drop_doc_line(s: Settings) -> None:
    path = live(s) / "docs.jsonl"
    path.write_text("".join(path.read_text(encoding="utf-8").splitlines(keepends=True)[1:]), encoding="utf-8")


def _corrupt_db(s: Settings) -> None:
    with open(s.db_path, "r+b") as fh:  # page 2 onwards: the header stays, the tables do not
        fh.seek(4096)
        fh.write(os.urandom(8192))


CORRUPTIONS: dict[str, Callable[[Settings], object]] = {
    "missing": lambda s: Store(s.db_path).upsert("patents", [Patent(id="CN9A", title="新专利", abstract="一种新的散热装置。")]),
    "stale": lambda s: Store(s.db_path).upsert("patents", [PATENTS[0].model_copy(update={"abstract": "一种改进的防爆壳体。"})]),
    "extra": lambda s: Store(s.db_path).delete("patents", ["CN2A"]),
    "dangling": lambda s: (index_mod.kind_dir(s.index_dir, "patents") / "CURRENT").write_text("gen-999999"),
    "corrupt": lambda s: (live(s) / "dense.faiss").write_bytes(b"not faiss"),
    "count_mismatch": _drop_doc_line,
    "dim": lambda s: _edit_manifest(s, dim=999),
    "model": lambda s: _edit_manifest(s, model="some-other-model"),
    "tokenizer": lambda s: _edit_manifest(s, tokenizer="0:jieba-nodict"),
    "leftover": lambda s: (index_mod.kind_dir(s.index_dir, "patents") / ".tmp-gen-000009-4242").mkdir(),
    "integrity": _corrupt_db,
}


def test_a_consistent_workspace_is_healthy(ws: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    report = doctor.check(ws)
    assert report.healthy, report.format()
    assert report.kinds["patents"]["store"] == report.kinds["patents"]["indexed"] == len(PATENTS)
    assert main(["--home", str(ws.home), "doctor", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["healthy"] is True


@pytest.mark.parametrize("code", list(CORRUPTIONS))
def test_each_problem_is_detected_with_what_to_do(ws: Settings, code: str, capsys: pytest.CaptureFixture[str]) -> None:
    CORRUPTIONS[code](ws)
    report = doctor.check(ws)
    assert code in report.codes, report.format()
    problem = next(p for p in report.problems if p.code == code)
    assert "`ptm " in problem.message  # says which command fixes it
    assert problem.drift == (code in {"missing", "stale", "extra"})
    assert main(["--home", str(ws.home), "doctor"]) == 1
    assert problem.message in capsys.readouterr().out


def test_drift_names_counts_and_example_ids(ws: Settings) -> None:
    store = Store(ws.db_path)
    store.upsert("demands", [Demand(id=f"N{i}", title="新需求", text=f"需要第{i}种新型传感器。") for i in range(8)])
    missing = next(p for p in doctor.check(ws).problems if p.code == "missing")
    assert (missing.kind, missing.count, len(missing.examples)) == ("demands", 8, doctor.EXAMPLES)
    assert set(missing.examples) <= set(store.text_hashes("demands"))


def test_settings_change_and_unindexed_kind(ws: Settings, settings: Settings) -> None:
    assert "tokenizer" in doctor.check(replace(ws, tokenizer="jieba")).codes
    assert "model" in doctor.check(replace(ws, passage_prefix="p: ")).codes
    shutil.rmtree(ws.index_dir / "demands")
    assert doctor.check(ws).codes == {"no_index"}


def test_no_database(settings: Settings) -> None:
    assert doctor.check(settings).codes == {"no_database"}
    assert not settings.db_path.exists()  # checking creates nothing


def test_temp_folders_of_a_running_sync_are_not_leftovers(ws: Settings) -> None:
    CORRUPTIONS["leftover"](ws)
    with index_mod.writer_lock(ws.index_dir, "patents"):
        assert doctor.check(ws).healthy


def test_repair_cannot_fix_a_damaged_database(ws: Settings) -> None:
    _corrupt_db(ws)
    report = doctor.repair(ws)
    assert report.codes == {"integrity"} and not report.repaired
    assert "ptm restore" in report.problems[0].message


def test_repair_round_trip_with_the_real_encoder(writable_indexed_settings: Settings) -> None:
    """Drift, a broken generation and debris in a real workspace; `ptm doctor --repair` rebuilds from the store."""
    s = writable_indexed_settings
    home = ["--home", str(s.home)]
    assert main([*home, "doctor"]) == 0
    Store(s.db_path).upsert("demands", [Demand(id="NEW1", title="冷链", text="需要冷链运输中的温度监测装置。")])
    _drop_doc_line(s)
    CORRUPTIONS["leftover"](s)
    assert {"missing", "count_mismatch", "leftover"} <= doctor.check(s).codes
    assert main([*home, "doctor"]) == 1
    assert main([*home, "doctor", "--repair"]) == 0
    for kind in KINDS:
        snap = index_mod.load_snapshot(s.index_dir, kind)
        assert snap.hashes == Store(s.db_path).text_hashes(kind)
    assert not list(index_mod.kind_dir(s.index_dir, "patents").glob(".tmp-*"))
