"""The index backend contract (test_backend_contract.py) on Qdrant in local mode (indexer/qdrant_index.py),
its BM25-as-sparse-vectors against bm25s, token lists read from Qdrant on demand rather than held by the
snapshot, and the mean document length kept by a running total rather than by reading every list."""
from __future__ import annotations

import numpy as np
import pytest

from indexer import qdrant_index
from indexer.backends import get_backend
from indexer.records import Patent
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


# ---- token lists stay in Qdrant; the mean length is tracked, not recomputed --------------------------------
def _workspace(tmp_path, rows: list[dict]):
    from indexer.settings import Settings
    from indexer.store import Store

    settings = Settings.from_env(home=tmp_path / "ws", backend="qdrant")
    settings.home.mkdir(parents=True)
    store = Store(settings.db_path)
    store.upsert("patents", [Patent(**p) for p in rows])
    return settings, store


def _sync(settings, store, explain_words: bool = True):
    """Bigram BM25 tokens; with `explain_words` jieba explanation words too, so points carry a "w" list."""
    from indexer.text import get_tokenizer, tokenize_many

    from tests.indexer.test_backend_contract import sync_inputs

    inputs = sync_inputs(settings, store)
    bigrams = get_tokenizer("bigram")
    inputs.tokenize = lambda texts: [bigrams(t) for t in texts]
    inputs.words = tokenize_many if explain_words else None
    return get_backend(settings).sync(settings, "patents", inputs)


def _full_read(settings) -> tuple[dict[int, list[str]], dict[int, list[str]]]:
    """Every point's tokens and words, read in full as the loader once did: what the lazy mappings must equal."""
    client, name = qdrant_index.client_for(settings), qdrant_index.collection_name(settings, "patents")
    tokens, words, offset = {}, {}, None
    while True:
        points, offset = client.scroll(name, limit=100, offset=offset, with_payload=True, with_vectors=False)
        for p in points:
            tokens[p.id], words[p.id] = p.payload["t"], p.payload.get("w", p.payload["t"])
        if offset is None:
            return tokens, words


@pytest.mark.parametrize("explain_words", [True, False], ids=["words-stored", "words-are-tokens"])
def test_a_snapshot_reads_token_lists_from_qdrant_on_demand(tmp_path, monkeypatch, explain_words):
    from collections import Counter

    from tests.conftest import demo_rows

    settings, store = _workspace(tmp_path, demo_rows("patents", 60))
    _sync(settings, store, explain_words)
    client = qdrant_index.client_for(settings)
    asked: list = []
    scroll = client.scroll

    def spy(*args, **kwargs):
        asked.append(kwargs.get("with_payload"))
        return scroll(*args, **kwargs)

    monkeypatch.setattr(client, "scroll", spy)
    snap = get_backend(settings).load_snapshot(settings, "patents")
    assert asked and all(a == ["h"] for a in asked)  # loading reads the hashes, no token list
    assert isinstance(snap.tokens, qdrant_index.QdrantDocs) and not isinstance(snap.tokens, dict)
    assert isinstance(snap.words, qdrant_index.QdrantDocs)

    tokens, words = _full_read(settings)
    assert any(words[i] != tokens[i] for i in tokens) == explain_words
    assert len(snap.tokens) == len(snap.words) == len(tokens) == 60
    assert sorted(snap.tokens) == sorted(tokens) == snap.int_ids.tolist()
    for i in tokens:
        assert snap.tokens[i] == tokens[i] and snap.words[i] == words[i]
    assert -1 not in snap.words and snap.words.get(-1, []) == []
    with pytest.raises(KeyError):
        snap.tokens[-1]

    asked.clear()
    assert snap.document_frequencies() == Counter(w for ws in words.values() for w in set(ws))
    assert snap.document_frequencies("tokens") == Counter(t for ts in tokens.values() for t in set(ts))
    assert asked and all(a in (["w"], ["t"]) for a in asked)  # streamed one list kind at a time, never whole payloads


def test_incremental_syncs_keep_the_mean_length_without_reading_every_list(tmp_path):
    from tests.conftest import demo_rows

    rows = demo_rows("patents", 120)
    settings, store = _workspace(tmp_path, rows[:80])
    client, name = qdrant_index.client_for(settings), qdrant_index.collection_name(settings, "patents")

    def check() -> dict:
        """The manifest's total and count against a recount; every stored BM25 weight against its avgdl."""
        manifest = qdrant_index._manifest(client, name)
        tokens, _ = _full_read(settings)
        mean = float(np.mean([len(t) for t in tokens.values()]))
        assert manifest["count"] == len(tokens) == len(store.text_hashes("patents"))
        assert manifest["tokens_total"] / manifest["count"] == pytest.approx(mean, rel=1e-9)
        assert abs(manifest["avgdl"] - mean) <= qdrant_index.AVGDL_TOLERANCE * manifest["avgdl"]
        for p in client.retrieve(name, list(tokens), with_vectors=[qdrant_index.SPARSE], with_payload=False):
            indices, values = qdrant_index.doc_sparse(tokens[p.id], manifest["avgdl"])
            stored = p.vector[qdrant_index.SPARSE]
            got = dict(zip(stored.indices, stored.values))
            assert got.keys() == set(indices)
            np.testing.assert_allclose([got[j] for j in indices], values, rtol=1e-6)
        return manifest

    _sync(settings, store)
    first = check()
    assert first["avgdl"] == pytest.approx(first["tokens_total"] / first["count"], rel=1e-9)

    # Adds, updates and deletes that move the mean by less than the tolerance: the weights stay, the total moves.
    store.upsert("patents", [Patent(**p) for p in rows[80:90]])
    store.upsert("patents", [Patent(**{**rows[3], "abstract": rows[3]["abstract"][:40]})])
    store.delete("patents", [rows[5]["id"], rows[6]["id"]])
    r = _sync(settings, store)
    assert (r.added, r.updated, r.removed) == (10, 1, 2)
    assert check()["avgdl"] == first["avgdl"]

    # Long documents push the mean past the tolerance: every old point is re-weighed (streamed) to the new mean.
    store.upsert("patents", [Patent(**{**p, "abstract": p["abstract"] * 6}) for p in rows[90:110]])
    _sync(settings, store)
    grown = check()
    assert grown["avgdl"] > first["avgdl"] * (1 + qdrant_index.AVGDL_TOLERANCE)
    assert grown["avgdl"] == pytest.approx(grown["tokens_total"] / grown["count"], rel=1e-9)

    # Points and a manifest written before "n" and tokens_total were stored (or by an interrupted sync).
    live = store.text_hashes("patents")
    old = [i for i in (store.int_id("patents", p["id"]) for p in rows[:20]) if i in live]
    client.delete_payload(name, keys=["n"], points=old, wait=True)
    client.update_collection(name, metadata={"tokens_total": None})
    store.upsert("patents", [Patent(**{**rows[0], "abstract": rows[0]["abstract"][:20]}), Patent(**rows[110])])
    store.delete("patents", [rows[1]["id"]])
    _sync(settings, store)
    check()
    # And with the total in place again, points lacking "n" are counted from their token lists.
    store.delete("patents", [rows[2]["id"], rows[4]["id"]])
    _sync(settings, store)
    check()
