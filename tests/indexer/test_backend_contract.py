"""The behaviour every index backend must have (indexer/backends.py), written once as `BackendContract`.

Each backend's test file (test_backend_faiss.py, test_backend_qdrant.py) subclasses it with `backend = "..."`
and, where the backend caches connections, a `reopen` that drops them; pytest collects only those subclasses.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from indexer import index as index_mod
from indexer.backends import get_backend
from indexer.pipeline import model_signature
from indexer.records import Patent
from indexer.settings import Settings
from indexer.store import Store
from indexer.text import tokenize_many
from matcher.engine import Engine, MatchError
from matcher.retrieve import Allowed, bm25_search, dense_search
from tests.indexer.test_index import PATENTS, DIM, Recorder, hash_embed


def sync_inputs(settings: Settings, store: Store, embed=hash_embed) -> index_mod.SyncInputs:
    """The store's patents with hash vectors and jieba tokens, under the settings' model signature."""
    return index_mod.SyncInputs(
        hashes=store.text_hashes("patents"), fetch_texts=lambda ids: store.texts("patents", ids),
        embed=embed, tokenize=tokenize_many, words=None, model=model_signature(settings))


class BackendContract:
    backend: str = ""

    def reopen(self) -> None:
        """Forget anything cached in this process, so the next load reads what was persisted."""

    @pytest.fixture
    def settings(self, tmp_path) -> Settings:
        return Settings.from_env(home=tmp_path / "ws", backend=self.backend)

    @pytest.fixture
    def store(self, settings: Settings) -> Store:
        settings.home.mkdir(parents=True, exist_ok=True)
        return Store(settings.db_path)

    def sync(self, settings: Settings, store: Store, embed=hash_embed, rebuild: bool = False) -> index_mod.SyncReport:
        return get_backend(settings).sync(settings, "patents", sync_inputs(settings, store, embed), rebuild=rebuild)

    def load(self, settings: Settings) -> index_mod.Snapshot:
        snap = get_backend(settings).load_snapshot(settings, "patents")
        assert snap is not None
        return snap

    def assert_matches_store(self, settings: Settings, store: Store) -> index_mod.Snapshot:
        snap = self.load(settings)
        want = store.text_hashes("patents")
        assert snap.hashes == want and sorted(snap.int_ids.tolist()) == sorted(want)
        assert (snap.manifest["count"], snap.manifest["dim"], snap.manifest["model"]) == (
            len(want), DIM, model_signature(settings))
        texts = store.texts("patents", list(want))
        for i in want:  # each stored vector is the embedding of the record's current text
            np.testing.assert_allclose(snap.vector(i), hash_embed([texts[i]])[0], rtol=1e-6)
        return snap

    # ---- the contract ----------------------------------------------------------------------
    def test_nothing_before_the_first_sync(self, settings):
        assert get_backend(settings).load_snapshot(settings, "patents") is None
        assert get_backend(settings).current_generation(settings, "patents") is None

    def test_add_update_delete_touch_only_changed_ids(self, settings, store):
        store.upsert("patents", PATENTS[:2])
        rec = Recorder()
        r = self.sync(settings, store, rec)
        assert (r.added, r.total, r.rebuilt) == (2, 2, True)
        self.assert_matches_store(settings, store)
        cn1 = store.int_id("patents", "CN1A")
        before = self.load(settings).vector(cn1)

        store.upsert("patents", [PATENTS[2], Patent(id="CN1A", title="锂电池防爆结构", abstract="一种改进的锂电池防爆壳体。")])
        rec.embedded.clear()
        r = self.sync(settings, store, rec)
        assert (r.added, r.updated, r.removed, r.unchanged) == (1, 1, 0, 1)
        assert len(rec.embedded) == 2  # only the new and the changed text
        snap = self.assert_matches_store(settings, store)
        assert not np.allclose(snap.vector(cn1), before)  # the update replaced the vector

        cn2 = store.int_id("patents", "CN2A")
        cn2_tokens = snap.tokens[cn2]
        assert cn2 in bm25_search(snap, cn2_tokens, 10).ids
        store.delete("patents", ["CN2A"])
        rec.embedded.clear()
        r = self.sync(settings, store, rec)
        assert (r.removed, r.total, rec.embedded) == (1, 2, [])
        snap = self.assert_matches_store(settings, store)
        assert snap.vector(cn2) is None
        assert cn2 not in dense_search(snap, hash_embed(list(store.texts("patents", [cn2]).values()) or ["x"]), 10)[0].ids
        assert cn2 not in bm25_search(snap, cn2_tokens, 10).ids

    def test_nothing_changed_keeps_the_generation(self, settings, store):
        store.upsert("patents", PATENTS)
        self.sync(settings, store)
        gen = get_backend(settings).current_generation(settings, "patents")
        r = self.sync(settings, store)
        assert not r.changed and get_backend(settings).current_generation(settings, "patents") == gen
        store.delete("patents", ["CN3A"])
        self.sync(settings, store)
        assert get_backend(settings).current_generation(settings, "patents") != gen

    def test_search_finds_the_record_by_vector_and_by_terms(self, settings, store):
        store.upsert("patents", PATENTS)
        self.sync(settings, store)
        snap = self.load(settings)
        ids = {p.id: store.int_id("patents", p.id) for p in PATENTS}
        dense = dense_search(snap, hash_embed([store.texts("patents", [ids["CN3A"]])[ids["CN3A"]]]), 3)[0]
        assert dense.ids[0] == ids["CN3A"] and dense.scores[0] == pytest.approx(1.0, abs=1e-5)
        assert len(dense) == 3 and np.all(np.diff(dense.scores) <= 1e-6)
        bm25 = bm25_search(snap, [t for t in snap.tokens[ids["CN3A"]] if "涂层" in t or "耐磨" in t], 10)
        assert bm25.ids.tolist() == [ids["CN3A"]] and bm25.scores[0] > 0

    def test_filters_restrict_both_retrievers(self, settings, store):
        store.upsert("patents", PATENTS)
        self.sync(settings, store)
        snap = self.load(settings)
        keep = store.int_id("patents", "CN2A")
        allowed = Allowed.build(snap, [keep])
        query = hash_embed(["锂电池"])
        assert len(dense_search(snap, query, 10)[0]) == 3
        assert dense_search(snap, query, 10, allowed)[0].ids.tolist() == [keep]
        other = snap.tokens[store.int_id("patents", "CN1A")]
        assert keep not in bm25_search(snap, other, 10).ids  # the two patents share no term
        assert bm25_search(snap, other + snap.tokens[keep], 10, allowed).ids.tolist() == [keep]
        assert len(bm25_search(snap, other, 10, allowed)) == 0
        assert len(dense_search(snap, query, 10, Allowed.build(snap, []))[0]) == 0

    def test_reopen_reads_what_was_persisted(self, settings, store):
        store.upsert("patents", PATENTS)
        self.sync(settings, store)
        gen = get_backend(settings).current_generation(settings, "patents")
        self.reopen()
        assert get_backend(settings).current_generation(settings, "patents") == gen
        snap = self.assert_matches_store(settings, store)
        assert snap.words == {i: snap.tokens[i] for i in snap.tokens}
        rec = Recorder()
        assert not self.sync(settings, store, rec).changed and rec.embedded == []

    def test_a_changed_model_signature_rebuilds(self, settings, store):
        store.upsert("patents", PATENTS)
        self.sync(settings, store)
        rec = Recorder()
        other = replace(settings, passage_prefix="")
        r = self.sync(other, store, rec)
        assert r.rebuilt and len(rec.embedded) == 3
        assert self.load(other).manifest["model"] == model_signature(other)

    def test_a_different_dimension_is_refused_with_a_message(self, settings, store):
        store.upsert("patents", PATENTS[:2])
        self.sync(settings, store)
        gen = get_backend(settings).current_generation(settings, "patents")
        store.upsert("patents", PATENTS[2:])
        with pytest.raises(index_mod.IndexStateError, match="shape"):
            self.sync(settings, store, lambda texts: np.ones((len(texts), DIM * 2), dtype=np.float32))
        assert get_backend(settings).current_generation(settings, "patents") == gen
        assert self.load(settings).size == 2

    def test_engine_refuses_an_index_of_another_model(self, settings, store):
        store.upsert("patents", PATENTS)
        self.sync(settings, store)
        assert Engine(settings, store).snapshot("patents").size == 3
        with pytest.raises(MatchError, match="run `ptm index`"):
            Engine(replace(settings, model="another-model"), store).snapshot("patents")

    def test_doctor_sees_what_the_backend_holds(self, settings, store):
        from indexer import doctor

        jieba_settings = replace(settings, tokenizer="jieba")  # what sync_inputs tokenises with

        def codes(s: Settings = jieba_settings) -> set[str]:
            return {p.code for p in doctor.check(s).problems if p.kind == "patents"}

        store.upsert("patents", PATENTS[:2])
        assert codes() == {"no_index"}
        self.sync(settings, store)
        report = doctor.check(jieba_settings)
        assert codes() == set() and report.kinds["patents"]["indexed"] == 2
        assert codes(settings) == {"tokenizer"} and codes(replace(jieba_settings, model="another-model")) == {"model"}
        store.upsert("patents", [PATENTS[2], Patent(id="CN1A", title="锂电池防爆结构", abstract="改过的摘要。")])
        store.delete("patents", ["CN2A"])
        assert codes() == {"missing", "stale", "extra"}
        self.sync(settings, store)
        assert codes() == set()

    def test_after_a_restore_one_sync_brings_the_index_in_line_with_the_restored_store(self, settings, store, tmp_path):
        from indexer import doctor
        from indexer.backup import backup, restore

        jieba_settings = replace(settings, tokenizer="jieba")
        store.upsert("patents", PATENTS[:2])
        self.sync(settings, store)
        manifest = backup(settings, tmp_path / "bak")
        assert manifest["backend"] == self.backend and manifest["counts"]["patents"]["stored"] == 2
        store.upsert("patents", PATENTS[2:])
        self.sync(settings, store)  # the index moves on after the backup
        self.reopen()
        restore(settings, tmp_path / "bak", force=True)
        self.reopen()
        restored = Store(settings.db_path)
        assert sorted(restored.text_hashes("patents")) == sorted(store.text_hashes("patents"))[:2]
        rec = Recorder()
        self.sync(settings, restored, rec)
        # FAISS generations are in the backup; Qdrant's local folder is not (a server's collections never are), so
        # it embeds again — through the real pipeline the restored embedding cache answers those texts.
        assert len(rec.embedded) == (0 if self.backend == "faiss" else 2)
        assert {p.code for p in doctor.check(jieba_settings).problems} == set()
        self.assert_matches_store(settings, restored)
