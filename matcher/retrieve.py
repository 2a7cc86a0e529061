"""Candidate generation from one index snapshot: dense (FAISS inner product) and sparse (BM25) top-k lists."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from indexer.index import Snapshot


@dataclass(frozen=True)
class Ranked:
    """A retriever's answer, best first: int_ids and their raw scores."""

    ids: np.ndarray
    scores: np.ndarray

    @classmethod
    def empty(cls) -> "Ranked":
        return cls(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32))

    def __len__(self) -> int:
        return len(self.ids)


def dense_search(snapshot: Snapshot, query_vectors: np.ndarray, k: int) -> list[Ranked]:
    """Top-k by cosine similarity for each row of `query_vectors` (already L2-normalised)."""
    k = min(k, snapshot.dense.ntotal)
    if k == 0:
        return [Ranked.empty() for _ in range(len(query_vectors))]
    scores, ids = snapshot.dense.search(np.ascontiguousarray(query_vectors, dtype=np.float32), k)
    # FAISS pads with -1 when fewer than k vectors exist.
    return [Ranked(i[i >= 0], s[i >= 0]) for s, i in zip(scores, ids)]


def bm25_search(snapshot: Snapshot, query_tokens: list[str], k: int) -> Ranked:
    """Top-k BM25 over the snapshot's token lists; tokens the corpus never saw are dropped (bm25s cannot score them)."""
    if snapshot.bm25 is None:
        return Ranked.empty()
    vocab = snapshot.bm25.vocab_dict
    known = [t for t in query_tokens if t in vocab]
    if not known:
        return Ranked.empty()
    scores = snapshot.bm25.get_scores(known)
    k = min(k, int(np.count_nonzero(scores)))
    if k == 0:
        return Ranked.empty()
    top = np.argpartition(-scores, k - 1)[:k]
    top = top[np.argsort(-scores[top], kind="stable")]
    return Ranked(snapshot.int_ids[top], scores[top].astype(np.float32))
