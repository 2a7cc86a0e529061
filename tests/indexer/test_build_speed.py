"""The build-throughput changes that must not change results (no model needed): chunked embedding sorted by
length keeps every vector on its own text, and embedding-cache keys separate precisions."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from indexer import encoder as encoder_mod
from indexer import index as index_mod
from indexer.encoder import EmbeddingCache, cache_key_for, resolve_precision
from indexer.settings import Settings
from tests.indexer.test_index import hash_embed


class ChunkRecorder:
    """An embed callable that remembers the chunks it was given."""

    def __init__(self) -> None:
        self.chunks: list[list[str]] = []

    def __call__(self, texts: list[str]) -> np.ndarray:
        self.chunks.append(list(texts))
        return hash_embed(texts)


def varied_texts(n: int, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    return [f"专利{i}：" + "锂电池" * int(rng.integers(1, 60)) for i in range(n)]


def test_chunked_embedding_matches_one_call_row_for_row() -> None:
    texts = varied_texts(3 * index_mod.EMBED_CHUNK + 17)
    recorder, seen = ChunkRecorder(), []
    vectors = index_mod._embed(recorder, texts, lambda done, total: seen.append((done, total)))
    np.testing.assert_array_equal(vectors, hash_embed(texts))
    assert seen[-1] == (len(texts), len(texts)) and len(seen) == len(recorder.chunks) == 4
    assert sorted(t for chunk in recorder.chunks for t in chunk) == sorted(texts)  # each text once


def test_chunks_are_cut_from_one_global_length_order() -> None:
    texts = varied_texts(2 * index_mod.EMBED_CHUNK + 5, seed=1)
    recorder = ChunkRecorder()
    index_mod._embed(recorder, texts, lambda done, total: None)
    lengths = [len(t) for chunk in recorder.chunks for t in chunk]
    assert lengths == sorted(lengths, reverse=True)  # longest first across chunk borders, not per chunk


def test_unchunked_call_is_unchanged() -> None:
    texts = varied_texts(10)
    recorder = ChunkRecorder()
    np.testing.assert_array_equal(index_mod._embed(recorder, texts, None), hash_embed(texts))
    assert recorder.chunks == [texts]  # one call in input order; the encoder sorts inside it


def test_cache_key_names_the_resolved_precision(monkeypatch: pytest.MonkeyPatch) -> None:
    fp32, bf16 = (cache_key_for(Settings(precision=p)) for p in ("fp32", "bf16"))
    assert fp32 != bf16 and fp32.endswith("|fp32") and bf16.endswith("|bf16")
    assert fp32.rsplit("|", 1)[0] == bf16.rsplit("|", 1)[0]  # same weights
    for native, expected in ((True, bf16), (False, fp32)):
        monkeypatch.setattr(encoder_mod, "cpu_supports_bf16", lambda native=native: native)
        assert cache_key_for(Settings(precision="auto")) == expected
    assert cache_key_for(Settings(model="/models/other", precision="fp32")) == "/models/other|fp32"


def test_resolve_precision_lists_the_options() -> None:
    assert resolve_precision("fp32") == "fp32" and resolve_precision("bf16") == "bf16"
    with pytest.raises(ValueError, match="'auto', 'fp32' or 'bf16'"):
        resolve_precision("int8")


def test_vectors_cached_at_one_precision_are_misses_at_the_other(tmp_path: Path) -> None:
    cache = EmbeddingCache(tmp_path / "emb.sqlite")
    inputs = ["passage: 一种锂电池", "passage: 一种焊接工装"]
    fp32, bf16 = (cache_key_for(Settings(precision=p)) for p in ("fp32", "bf16"))
    cache.put_many(fp32, "passage", inputs, hash_embed(inputs))
    assert cache.get_many(bf16, "passage", inputs) == {}
    assert sorted(cache.get_many(fp32, "passage", inputs)) == [0, 1]
