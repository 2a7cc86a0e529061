"""The index backend contract (test_backend_contract.py) on Qdrant in local mode (indexer/qdrant_index.py),
and its BM25-as-sparse-vectors against bm25s."""
from __future__ import annotations

import numpy as np
import pytest

from indexer import qdrant_index
from indexer.backends import get_backend
from tests.indexer.test_backend_contract import BackendContract


@pytest.fixture(autouse=True)
def _close_qdrant_clients():
    yield
    qdrant_index.close_clients()  # each test's local folder is released with its tmp_path


class TestQdrantBackend(BackendContract):
    backend = "qdrant"

    def reopen(self) -> None:
        qdrant_index.close_clients()


def _both_backends(home, patents: list[dict]):
    """One store, indexed by both backends (character-bigram BM25 tokens, hash vectors)."""
    from indexer.records import Patent
    from indexer.settings import Settings
    from indexer.store import Store
    from indexer.text import get_tokenizer

    from tests.indexer.test_backend_contract import sync_inputs

    faiss_settings = Settings.from_env(home=home, backend="faiss")
    qdrant_settings = Settings.from_env(home=home, backend="qdrant")
    home.mkdir(parents=True)
    store = Store(faiss_settings.db_path)
    store.upsert("patents", [Patent(**p) for p in patents])
    bigrams = get_tokenizer("bigram")
    snaps = []
    for s in (faiss_settings, qdrant_settings):
        inputs = sync_inputs(s, store)
        inputs.tokenize = lambda texts: [bigrams(t) for t in texts]
        get_backend(s).sync(s, "patents", inputs)
        snaps.append(get_backend(s).load_snapshot(s, "patents"))
    return snaps


def test_ranks_like_the_faiss_backend_on_demo_patents(tmp_path):
    from indexer.text import get_tokenizer
    from matcher.retrieve import bm25_search, dense_search
    from tests.conftest import demo_rows
    from tests.indexer.test_index import hash_embed

    faiss_snap, qdrant_snap = _both_backends(tmp_path / "ws", demo_rows("patents", 120))
    queries = [d["text"] for d in demo_rows("demands", 20)]
    for q in queries:
        dense = [dense_search(s, hash_embed([q]), 10)[0] for s in (faiss_snap, qdrant_snap)]
        assert dense[0].ids.tolist() == dense[1].ids.tolist()
        np.testing.assert_allclose(dense[0].scores, dense[1].scores, atol=1e-5)
        tokens = get_tokenizer("bigram")(q)
        bm25 = [bm25_search(s, tokens, 10) for s in (faiss_snap, qdrant_snap)]
        assert len(bm25[0]) == len(bm25[1]) == 10
        # Same BM25 formula and IDF: the scores agree to float32 rounding, so the rankings do too.
        np.testing.assert_allclose(bm25[0].scores, bm25[1].scores, rtol=1e-4)
        assert bm25[0].ids.tolist() == bm25[1].ids.tolist()


@pytest.mark.slow
def test_the_engine_answers_like_faiss_with_the_real_encoder(writable_indexed_settings):
    from dataclasses import replace

    from indexer.pipeline import sync_index
    from matcher.engine import Engine
    from tests.conftest import demo_rows

    faiss_settings = writable_indexed_settings
    qdrant_settings = replace(faiss_settings, backend="qdrant")
    sync_index(qdrant_settings)  # vectors come from the workspace's embedding cache
    engines = Engine(faiss_settings), Engine(qdrant_settings)
    for demand in demo_rows("demands", 12):
        for method in ("dense", "bm25", "hybrid"):
            a, b = (e.match_demand(demand["id"], k=10, method=method) for e in engines)
            assert [m.id for m in a] == [m.id for m in b], (demand["id"], method)
            assert [m.matched_terms for m in a] == [m.matched_terms for m in b]
            assert a.no_good_match == b.no_good_match
    patent = demo_rows("patents", 1)[0]["id"]
    assert [m.id for m in engines[0].match_patent(patent)] == [m.id for m in engines[1].match_patent(patent)]
