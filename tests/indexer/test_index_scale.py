"""Index at scale (issue 8): the dense type chosen by corpus size, BM25 main + delta segments with hard-linked
main, merges, token lists read from disk, and format 2 generations still loading."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from indexer import dense as dense_mod
from indexer import index as index_mod
from indexer import segments as seg_mod
from indexer.records import Patent
from indexer.store import Store
from indexer.text import tokenize_many
from matcher.retrieve import Allowed, bm25_search, dense_search
from tests.indexer.test_index import PATENTS, Recorder, _inputs, hash_embed

MORE = [Patent(id=f"CN{i}X", title=f"光伏组件支架{i}", abstract=f"一种光伏组件安装支架，型号{i}，包括立柱和横梁。")
        for i in range(6)]


def _sync(tmp_path, store, embed=hash_embed, **options):
    inputs = _inputs(store, embed)
    for name, value in options.items():
        setattr(inputs, name, value)
    return index_mod.sync(tmp_path / "index", "patents", inputs)


def _snap(tmp_path) -> index_mod.Snapshot:
    return index_mod.load_snapshot(tmp_path / "index", "patents")


def _live_rows(snap) -> list[int]:
    return sorted(snap.int_ids[snap.int_ids >= 0].tolist())


@pytest.mark.parametrize("choice, n, want", [("auto", 199_999, "flat"), ("auto", 200_000, "ivf"),
                                             ("flat", 10**7, "flat"), ("ivf", 10, "ivf")])
def test_index_type_follows_the_setting_and_the_corpus_size(choice, n, want):
    assert dense_mod.resolve_index_type(choice, n) == want


def test_unknown_index_type_lists_the_options():
    with pytest.raises(ValueError, match="auto, flat, ivf"):
        dense_mod.resolve_index_type("hnsw", 10)


def test_settings_refuse_an_unknown_index_type():
    from indexer.settings import Settings

    assert Settings.from_env(index_type="ivf", ann_threshold=5).index_type == "ivf"
    with pytest.raises(ValueError, match="index_type must be one of auto, flat, ivf"):
        Settings.from_env(index_type="hnsw")


def test_crossing_the_threshold_converts_the_dense_index_without_re_embedding(tmp_path):
    store = Store(tmp_path / "db.sqlite")
    store.upsert("patents", PATENTS)
    _sync(tmp_path, store, ann_threshold=5)
    assert _snap(tmp_path).manifest["index_type"] == "flat"

    store.upsert("patents", MORE)
    rec = Recorder()
    _sync(tmp_path, store, rec, ann_threshold=5, ivf_nprobe=2)
    snap = _snap(tmp_path)
    assert len(rec.embedded) == len(MORE)  # the three old vectors moved over from the flat index
    assert (snap.index_type, snap.manifest["index_type"]) == ("ivf", "ivf")
    assert snap.dense.nprobe == snap.manifest["nprobe"] == min(2, snap.dense.nlist)
    assert snap.dense.ntotal == snap.size == 9
    texts = store.texts("patents", list(snap.hashes))
    for i, text in texts.items():
        np.testing.assert_allclose(snap.vector(i), hash_embed([text])[0], rtol=1e-6)

    store.delete("patents", [p.id for p in MORE])  # below the threshold again: back to exact
    _sync(tmp_path, store, ann_threshold=5)
    assert _snap(tmp_path).index_type == "flat" and _snap(tmp_path).dense.ntotal == 3


def test_ivf_updates_and_deletes_in_place_and_filters_stay_exact(tmp_path):
    store = Store(tmp_path / "db.sqlite")
    store.upsert("patents", PATENTS + MORE)
    _sync(tmp_path, store, index_type="ivf")
    ids = {p.id: store.int_id("patents", p.id) for p in PATENTS + MORE}
    store.delete("patents", ["CN2A"])
    store.upsert("patents", [Patent(id="CN1A", title="锂电池防爆结构", abstract="一种改进的锂电池防爆壳体。")])
    _sync(tmp_path, store, index_type="ivf")
    snap = _snap(tmp_path)
    assert snap.index_type == "ivf" and snap.dense.ntotal == snap.size == len(PATENTS + MORE) - 1
    query = hash_embed([store.texts("patents", [ids["CN1A"]])[ids["CN1A"]]])
    (top,) = dense_search(snap, query, 20)
    assert top.ids[0] == ids["CN1A"] and ids["CN2A"] not in top.ids.tolist()
    allowed = Allowed.build(snap, [ids["CN3A"], ids["CN0X"], ids["CN2A"]])
    (hits,) = dense_search(snap, query, 10, allowed)
    assert sorted(hits.ids.tolist()) == sorted([ids["CN3A"], ids["CN0X"]])


def test_small_additions_go_to_a_delta_and_main_is_hard_linked(tmp_path):
    store = Store(tmp_path / "db.sqlite")
    store.upsert("patents", PATENTS + MORE[:5])
    _sync(tmp_path, store)
    first = _snap(tmp_path)
    assert first.manifest["segments"] == [seg_mod.MAIN]

    store.upsert("patents", MORE[5:])
    _sync(tmp_path, store, merge_fraction=0.5)
    snap = _snap(tmp_path)
    assert snap.manifest["segments"] == [seg_mod.MAIN, seg_mod.DELTA]
    for f in (first.path / seg_mod.MAIN).iterdir():
        assert (snap.path / seg_mod.MAIN / f.name).stat().st_ino == f.stat().st_ino
    new_id = store.int_id("patents", "CN5X")
    hits = bm25_search(snap, tokenize_many(["光伏组件支架"])[0], 10)
    more = {store.int_id("patents", p.id) for p in MORE}
    assert new_id in more and set(hits.ids[: len(MORE)].tolist()) == more  # main and delta ranked together
    assert _live_rows(snap) == sorted(snap.hashes) and len(snap.int_ids) == snap.size


def test_delta_scores_use_the_idf_of_the_whole_corpus(tmp_path):
    store = Store(tmp_path / "db.sqlite")
    store.upsert("patents", PATENTS + MORE[:5])
    _sync(tmp_path, store)
    store.upsert("patents", MORE[5:])
    _sync(tmp_path, store, merge_fraction=0.5)
    incremental = _snap(tmp_path)
    index_mod.sync(tmp_path / "index", "patents", _inputs(store, hash_embed), rebuild=True)
    rebuilt = _snap(tmp_path)
    query = tokenize_many(["光伏组件安装支架"])[0]
    new_id = store.int_id("patents", "CN5X")
    inc, full = (_scores(snap, query)[new_id] for snap in (incremental, rebuilt))
    # With the delta's own IDF (one document) the score would be a third lower; rescaled it is within the
    # length-normalisation difference of the full rebuild.
    assert inc == pytest.approx(full, rel=0.15)


def _scores(snap, query: list[str]) -> dict[int, float]:
    hits = bm25_search(snap, query, 20)
    return dict(zip(hits.ids.tolist(), hits.scores.tolist()))


def test_updates_and_deletes_leave_dead_rows_until_a_merge(tmp_path):
    store = Store(tmp_path / "db.sqlite")
    store.upsert("patents", PATENTS + MORE)
    _sync(tmp_path, store)
    store.upsert("patents", [Patent(id="CN2A", title="焊接工装", abstract="一种用于汽车车身的点焊夹具。")])
    store.delete("patents", ["CN3A"])
    _sync(tmp_path, store, merge_fraction=0.5)
    snap = _snap(tmp_path)
    assert snap.manifest["segments"] == [seg_mod.MAIN, seg_mod.DELTA]
    assert (snap.int_ids == -1).sum() == 2 and _live_rows(snap) == sorted(snap.hashes)
    assert bm25_search(snap, ["耐磨"], 5).ids.size == 0  # the deleted document's row is dead
    cn2 = store.int_id("patents", "CN2A")
    assert "点焊" in snap.words[cn2] and "三维" not in snap.words[cn2]
    assert bm25_search(snap, tokenize_many(["三维可调机器人"])[0], 5).ids.size == 0
    allowed = Allowed.build(snap, [cn2])  # a filter over main + delta rows, dead ones included
    assert allowed.fits(snap) and bm25_search(snap, tokenize_many(["点焊夹具"])[0], 5, allowed).ids.tolist() == [cn2]

    store.delete("patents", ["CN1A"])
    _sync(tmp_path, store, merge_fraction=0.1)  # delta + dead rows now exceed a tenth of main: merged
    merged = _snap(tmp_path)
    assert merged.manifest["segments"] == [seg_mod.MAIN] and (merged.int_ids >= 0).all()
    assert sorted(merged.int_ids.tolist()) == sorted(store.text_hashes("patents"))


def test_token_lists_are_read_from_disk_and_survive_the_generation_being_removed(tmp_path):
    store = Store(tmp_path / "db.sqlite")
    store.upsert("patents", PATENTS)
    _sync(tmp_path, store)
    snap = _snap(tmp_path)
    assert isinstance(snap.words, seg_mod.SegmentDocs) and not isinstance(snap.tokens, dict)
    texts = store.texts("patents", list(snap.hashes))
    expected = {i: tokenize_many([t])[0] for i, t in texts.items()}
    shutil.rmtree(snap.path)  # two newer syncs would remove it under a long-lived reader
    assert {i: snap.words[i] for i in snap.hashes} == expected
    assert snap.document_frequencies()["涂层"] == 1


def _write_format2(base, store: Store) -> None:
    """A generation as the code before segments wrote it: token lists in docs.jsonl, one BM25, format 2."""
    import faiss

    hashes = store.text_hashes("patents")
    texts = store.texts("patents", list(hashes))
    order = sorted(hashes)
    gen = base / "gen-000001"
    gen.mkdir(parents=True)
    flat = faiss.IndexIDMap2(faiss.IndexFlatIP(8))
    flat.add_with_ids(hash_embed([texts[i] for i in order]), np.asarray(order, dtype=np.int64))
    faiss.write_index(flat, str(gen / "dense.faiss"))
    tokens = {i: tokenize_many([texts[i]])[0] for i in order}
    index_mod.build_bm25([tokens[i] for i in order]).save(str(gen / "bm25"), show_progress=False)
    with open(gen / "docs.jsonl", "w", encoding="utf-8") as fh:
        for i in order:
            fh.write(json.dumps({"i": i, "h": hashes[i], "t": tokens[i]}, ensure_ascii=False) + "\n")
    manifest = {"format": 2, "kind": "patents", "model": "fake", "dim": 8, "count": len(order),
                "tokenizer": index_mod.tokenizer_signature("jieba")}
    (gen / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    (base / "CURRENT").write_text("gen-000001", encoding="utf-8")


def test_a_format_2_generation_loads_and_is_carried_over_without_re_embedding(tmp_path):
    store = Store(tmp_path / "db.sqlite")
    store.upsert("patents", PATENTS)
    _write_format2(tmp_path / "index" / "patents", store)
    old = _snap(tmp_path)
    assert old.size == 3 and old.index_type == "flat"
    query = tokenize_many(["机器人零件焊接工装"])[0]
    assert bm25_search(old, query, 3).ids.tolist() == [store.int_id("patents", "CN2A")]

    store.upsert("patents", MORE[:1])
    rec = Recorder()
    r = _sync(tmp_path, store, rec)
    snap = _snap(tmp_path)
    assert (r.rebuilt, len(rec.embedded), snap.manifest["format"]) == (False, 1, index_mod.FORMAT_VERSION)
    assert snap.words[store.int_id("patents", "CN2A")] == old.words[store.int_id("patents", "CN2A")]
    assert bm25_search(snap, query, 3).ids.tolist() == [store.int_id("patents", "CN2A")]
