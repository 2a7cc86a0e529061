"""FAISS + BM25 generations: incremental add / update / delete stay consistent with the store; atomic publish."""
from __future__ import annotations

import hashlib

import numpy as np
import pytest

from indexer import index as index_mod
from indexer.records import Patent
from indexer.store import Store
from indexer.text import tokenize_many

DIM = 8


def hash_embed(texts: list[str]) -> np.ndarray:
    """Deterministic unit vectors per text: enough to check bookkeeping without a model."""
    rows = [np.frombuffer(hashlib.sha256(t.encode()).digest()[: DIM * 4], dtype=np.uint32).astype(np.float32) for t in texts]
    m = np.array(rows, dtype=np.float32).reshape(len(texts), DIM)
    return m / np.linalg.norm(m, axis=1, keepdims=True) if len(texts) else m


class Recorder:
    def __init__(self):
        self.embedded: list[str] = []

    def __call__(self, texts):
        self.embedded.extend(texts)
        return hash_embed(texts)


def _inputs(store: Store, embed, model="fake") -> index_mod.SyncInputs:
    return index_mod.SyncInputs(hashes=store.text_hashes("patents"), fetch_texts=lambda ids: store.texts("patents", ids),
                                embed=embed, tokenize=tokenize_many, words=None, model=model)


PATENTS = [
    Patent(id="CN1A", title="锂电池防爆结构", abstract="一种锂电池防爆结构，包括泄压阀和隔热层。"),
    Patent(id="CN2A", title="焊接工装", abstract="一种三维可调机器人零件焊接工装，包括底板和定位组件。"),
    Patent(id="CN3A", title="耐磨涂层", abstract="一种耐磨抗粘钢复合涂层及其制备方法。"),
]


def _assert_consistent(tmp_path, store: Store):
    snap = index_mod.load_snapshot(tmp_path / "index", "patents")
    want = store.text_hashes("patents")
    assert snap.hashes == want
    assert snap.dense.ntotal == len(want) == snap.size
    assert sorted(snap.int_ids.tolist()) == sorted(want)
    texts = store.texts("patents", list(want))
    for i in want:  # each stored vector is the embedding of the record's current text
        np.testing.assert_allclose(snap.vector(i), hash_embed([texts[i]])[0], rtol=1e-6)
    return snap


def test_add_update_delete_incrementally(tmp_path):
    store = Store(tmp_path / "db.sqlite")
    store.upsert("patents", PATENTS[:2])
    rec = Recorder()
    r = index_mod.sync(tmp_path / "index", "patents", _inputs(store, rec))
    assert (r.added, r.total, r.rebuilt) == (2, 2, True)
    _assert_consistent(tmp_path, store)

    store.upsert("patents", [PATENTS[2], Patent(id="CN1A", title="锂电池防爆结构", abstract="一种改进的锂电池防爆壳体。")])
    rec.embedded.clear()
    r = index_mod.sync(tmp_path / "index", "patents", _inputs(store, rec))
    assert (r.added, r.updated, r.removed, r.unchanged) == (1, 1, 0, 1)
    assert len(rec.embedded) == 2  # only the new and the changed text were embedded
    _assert_consistent(tmp_path, store)

    store.delete("patents", ["CN2A"])
    rec.embedded.clear()
    r = index_mod.sync(tmp_path / "index", "patents", _inputs(store, rec))
    assert (r.removed, r.total, rec.embedded) == (1, 2, [])
    snap = _assert_consistent(tmp_path, store)
    assert "焊接" not in snap.bm25.vocab_dict or snap.bm25.get_scores(["焊接"]).max() == 0


def test_nothing_changed_writes_no_new_generation(tmp_path):
    store = Store(tmp_path / "db.sqlite")
    store.upsert("patents", PATENTS)
    index_mod.sync(tmp_path / "index", "patents", _inputs(store, hash_embed))
    gen = index_mod.current_generation(tmp_path / "index", "patents")
    r = index_mod.sync(tmp_path / "index", "patents", _inputs(store, hash_embed))
    assert not r.changed and index_mod.current_generation(tmp_path / "index", "patents") == gen


def test_model_change_forces_a_full_rebuild(tmp_path):
    store = Store(tmp_path / "db.sqlite")
    store.upsert("patents", PATENTS)
    index_mod.sync(tmp_path / "index", "patents", _inputs(store, hash_embed, model="a"))
    rec = Recorder()
    r = index_mod.sync(tmp_path / "index", "patents", _inputs(store, rec, model="b"))
    assert r.rebuilt and len(rec.embedded) == 3


def test_failed_sync_leaves_the_previous_generation_live(tmp_path):
    store = Store(tmp_path / "db.sqlite")
    store.upsert("patents", PATENTS[:2])
    index_mod.sync(tmp_path / "index", "patents", _inputs(store, hash_embed))
    gen = index_mod.current_generation(tmp_path / "index", "patents")
    store.upsert("patents", PATENTS[2:])

    def broken(texts):
        raise RuntimeError("encoder crashed")

    with pytest.raises(RuntimeError):
        index_mod.sync(tmp_path / "index", "patents", _inputs(store, broken))
    assert index_mod.current_generation(tmp_path / "index", "patents") == gen
    assert index_mod.load_snapshot(tmp_path / "index", "patents").size == 2


def test_unreadable_generation_is_reported_and_rebuilt(tmp_path):
    store = Store(tmp_path / "db.sqlite")
    store.upsert("patents", PATENTS)
    index_mod.sync(tmp_path / "index", "patents", _inputs(store, hash_embed))
    snap = index_mod.load_snapshot(tmp_path / "index", "patents")
    (snap.path / "dense.faiss").write_bytes(b"garbage")
    with pytest.raises(index_mod.IndexStateError, match="ptm index --rebuild"):
        index_mod.load_snapshot(tmp_path / "index", "patents")
    r = index_mod.sync(tmp_path / "index", "patents", _inputs(store, hash_embed))
    assert r.rebuilt and index_mod.load_snapshot(tmp_path / "index", "patents").size == 3


def test_leftover_temp_dirs_from_a_killed_run_are_cleaned(tmp_path):
    store = Store(tmp_path / "db.sqlite")
    store.upsert("patents", PATENTS)
    base = tmp_path / "index" / "patents"
    (base / ".tmp-gen-000009-12345").mkdir(parents=True)
    index_mod.sync(tmp_path / "index", "patents", _inputs(store, hash_embed))
    assert not list(base.glob(".tmp-*"))
    assert index_mod.load_snapshot(tmp_path / "index", "patents").size == 3


def test_progress_callback_hears_each_embedded_chunk(tmp_path, monkeypatch):
    monkeypatch.setattr(index_mod, "EMBED_CHUNK", 2)
    store = Store(tmp_path / "db.sqlite")
    store.upsert("patents", [Patent(id=f"CN{i}B", title=f"锂电池结构{i}", abstract=f"一种锂电池防爆结构，编号{i}。") for i in range(5)])
    calls: list[tuple[int, int]] = []
    r = index_mod.sync(tmp_path / "index", "patents", _inputs(store, Recorder()), progress=lambda d, t: calls.append((d, t)))
    assert calls == [(2, 5), (4, 5), (5, 5)] and r.total == 5
    _assert_consistent(tmp_path, store)


def test_document_frequencies_are_kept_per_field(tmp_path):
    store = Store(tmp_path / "db.sqlite")
    store.upsert("patents", PATENTS)
    inputs = _inputs(store, hash_embed)
    inputs.tokenize = lambda texts: [["锂电"] for _ in texts]  # BM25 tokens differ from the explanation words
    inputs.words = tokenize_many
    index_mod.sync(tmp_path / "index", "patents", inputs)
    snap = index_mod.load_snapshot(tmp_path / "index", "patents")
    assert snap.document_frequencies("tokens") == {"锂电": 3}
    assert snap.document_frequencies()["涂层"] == 1
    with pytest.raises(ValueError, match="'words' or 'tokens'"):
        snap.document_frequencies("bigrams")


def test_store_hashes_are_read_under_the_index_lock(tmp_path):
    """A write that commits while another process holds the index lock is in the sync that follows: the
    store's hashes are read after the lock is taken, not before (a cross-process race found by issue 9's tests)."""
    import threading

    store = Store(tmp_path / "db.sqlite")
    store.upsert("patents", PATENTS[:1])
    inputs = index_mod.SyncInputs(hashes=lambda: store.text_hashes("patents"),
                                  fetch_texts=lambda ids: store.texts("patents", ids),
                                  embed=hash_embed, tokenize=tokenize_many, words=None, model="fake")
    with index_mod.writer_lock(tmp_path / "index", "patents"):
        waiting = threading.Thread(target=index_mod.sync, args=(tmp_path / "index", "patents", inputs))
        waiting.start()
        waiting.join(0.5)
        assert waiting.is_alive()  # queued for the lock
        store.upsert("patents", PATENTS[1:])  # committed while the other sync waits
    waiting.join(30)
    _assert_consistent(tmp_path, store)
