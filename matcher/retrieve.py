"""Candidate generation from one index snapshot: dense (FAISS inner product) and sparse (BM25) top-k lists,
optionally restricted to an allowed set of ids inside the search (so a selective filter still fills k)."""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from indexer import dense as dense_mod
from indexer.index import Snapshot
from indexer.qdrant_index import QdrantSnapshot


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


@dataclass(frozen=True)
class Allowed:
    """The int_ids a filter lets through, prepared once for one snapshot: a FAISS ID selector for the dense
    search and a row mask for BM25. Reuse it across the queries of a batch."""

    ids: np.ndarray  # sorted, and only ids the snapshot holds
    rows: np.ndarray  # bool per BM25 row of the snapshot
    selector: object  # faiss.IDSelectorBatch; kept here so it outlives every search that uses it
    generation: Path

    @classmethod
    def build(cls, snapshot: Snapshot, int_ids: Iterable[int]) -> "Allowed":
        import faiss

        wanted = np.fromiter(int_ids, dtype=np.int64)
        rows = np.isin(snapshot.int_ids, wanted)
        ids = np.sort(snapshot.int_ids[rows])
        return cls(ids, rows, faiss.IDSelectorBatch(ids), snapshot.path)

    def fits(self, snapshot: Snapshot) -> bool:
        return self.generation == snapshot.path and len(self.rows) == len(snapshot.int_ids)

    def __len__(self) -> int:
        return len(self.ids)


def dense_search(snapshot: Snapshot, query_vectors: np.ndarray, k: int, allowed: Allowed | None = None) -> list[Ranked]:
    """Top-k by cosine similarity for each row of `query_vectors` (already L2-normalised); with `allowed`,
    FAISS skips every other id while it scans (SearchParameters.sel; an IVF index also scans more lists), and a
    selective filter on an IVF index is answered exactly from the allowed vectors, so k allowed hits come back
    whenever k exist."""
    if isinstance(snapshot, QdrantSnapshot):  # searched inside Qdrant (indexer/qdrant_index.py)
        return [Ranked(*hit) for hit in snapshot.dense_top(query_vectors, k, None if allowed is None else allowed.ids)]
    params = None
    k = min(k, snapshot.dense.ntotal)
    queries = np.ascontiguousarray(query_vectors, dtype=np.float32)
    if allowed is not None:
        k = min(k, len(allowed))
        if k and snapshot.index_type == "ivf" and len(allowed) <= dense_mod.EXACT_FILTER_MAX:
            scores, ids = dense_mod.exact_among(snapshot.dense, allowed.ids, queries, k)
            return [Ranked(i, s) for s, i in zip(scores, ids)]
        params = dense_mod.search_params(snapshot.dense, allowed.selector, len(allowed))
    if k == 0:
        return [Ranked.empty() for _ in range(len(query_vectors))]
    scores, ids = snapshot.dense.search(queries, k, params=params)
    # FAISS pads with -1 when fewer than k vectors exist.
    return [Ranked(i[i >= 0], s[i >= 0]) for s, i in zip(scores, ids)]


def bm25_search(snapshot: Snapshot, query_tokens: list[str], k: int, allowed: Allowed | None = None) -> Ranked:
    """Top-k BM25 over the snapshot's token lists; tokens the corpus never saw are dropped (bm25s cannot score them).
    With `allowed`, the scores of all other documents are zeroed before the top-k is taken."""
    if isinstance(snapshot, QdrantSnapshot):  # BM25 as sparse vectors inside Qdrant
        return Ranked(*snapshot.bm25_top(query_tokens, k, None if allowed is None else allowed.ids))
    if snapshot.bm25 is None:
        return Ranked.empty()
    vocab = snapshot.bm25.vocab_dict
    known = [t for t in query_tokens if t in vocab]
    if not known:
        return Ranked.empty()
    scores = snapshot.bm25.get_scores(known)
    if allowed is not None:
        scores = np.where(allowed.rows, scores, 0.0)
    k = min(k, int(np.count_nonzero(scores)))
    if k == 0:
        return Ranked.empty()
    top = top_k_rows(scores, k)
    return Ranked(snapshot.int_ids[top], scores[top].astype(np.float32))


#: top_k_rows bounds the k-th best score from this many leading rows before it scans the rest.
TOP_K_SAMPLE = 65_536


def top_k_rows(scores: np.ndarray, k: int) -> np.ndarray:
    """Rows of the k highest scores, best first. The k-th best of any subset is a lower bound on the k-th best of
    the whole array, so on long arrays (a 1M-document BM25) only the rows at or above a sample's k-th best are
    partitioned: one comparison pass instead of a partition of every row, and the same rows."""
    if 0 < k <= TOP_K_SAMPLE // 8 and len(scores) > 4 * TOP_K_SAMPLE:
        bound = np.partition(scores[:TOP_K_SAMPLE], TOP_K_SAMPLE - k)[TOP_K_SAMPLE - k]
        rows = np.flatnonzero(scores >= bound)
    else:
        rows = np.arange(len(scores))
    top = rows[np.argpartition(-scores[rows], k - 1)[:k]]
    return top[np.argsort(-scores[top], kind="stable")]
