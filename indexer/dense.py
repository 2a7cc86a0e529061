"""The dense (FAISS) index of a generation: which type to build for a corpus size, building and converting it,
and the search parameters each type needs.

Types (figures in bench/README.md, "Choose the index type automatically by corpus size"):
    flat  IndexIDMap2(IndexFlatIP): exact; a single query scans every vector (p99 17 ms at 100k, 85 ms at 1M).
    ivf   IndexIVFFlat (inner product, nlist ≈ 4·√N, spherical k-means) with a hash-table direct map: scans
          `nprobe` of the lists, keeps fp32 vectors (scores are exact, only candidates can be missed), and unlike
          HNSW supports `remove_ids`, so updates and deletes stay in place and `ntotal` is always the live count.
`auto` picks flat below `ann_threshold` patents and ivf from there on.
"""
from __future__ import annotations

import math
from typing import Literal

import numpy as np

IndexType = Literal["flat", "ivf"]
IndexChoice = Literal["auto", "flat", "ivf"]
INDEX_CHOICES: tuple[str, ...] = ("auto", "flat", "ivf")

#: Below this many vectors `auto` stays exact: 100k answers in 17 ms p99, so 200k in ≲ 35 ms (bench/README.md).
ANN_THRESHOLD = 200_000
#: Lists scanned per query. Strict recall@10 against exact on the synthetic 1M set (4,096 lists, bench_ann.py):
#: 0.919 / 0.949 / 0.975 at nprobe 128 / 256 / 512; 512 is the smallest measured value clearing 0.95.
IVF_NPROBE = 512
#: k-means training sample per list and iterations: the settings of those bench_ann.py measurements.
TRAIN_PER_LIST = 40
KMEANS_ITER = 10
#: A filter letting through at most this many patents is answered exactly from their vectors (a few ms at 1M).
EXACT_FILTER_MAX = 50_000


def resolve_index_type(choice: str, n: int, threshold: int = ANN_THRESHOLD) -> IndexType:
    """The type to hold `n` vectors under the `index_type` setting."""
    if choice not in INDEX_CHOICES:
        raise ValueError(f"index_type must be one of {', '.join(INDEX_CHOICES)}, not {choice!r}")
    if choice == "auto":
        return "ivf" if n >= threshold else "flat"
    return choice  # type: ignore[return-value]


def index_type_of(index: "faiss.Index") -> IndexType:  # noqa: F821 - faiss is imported lazily
    import faiss

    return "ivf" if isinstance(index, faiss.IndexIVF) else "flat"


def nlist_for(n: int) -> int:
    """≈ 4·√n lists, a power of two, at least 1 and at most n / 39 (FAISS wants ≥ 39 training points per list)."""
    target = 4 * math.sqrt(max(n, 1))
    return max(1, min(2 ** round(math.log2(target)), n // 39 or 1))


def build_dense(kind: IndexType, vectors: np.ndarray, ids: np.ndarray, nprobe: int = IVF_NPROBE,
                seed: int = 1234) -> "faiss.Index":  # noqa: F821
    """A new index of `kind` holding `vectors` (L2-normalised rows, so inner product is cosine) under `ids`."""
    import faiss

    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    ids = np.ascontiguousarray(ids, dtype=np.int64)
    d = vectors.shape[1]
    if kind == "flat":
        index = faiss.IndexIDMap2(faiss.IndexFlatIP(d))
    elif kind == "ivf":
        index = _trained_ivf(vectors, nlist_for(len(vectors)), nprobe, seed)
    else:
        raise ValueError(f"index type must be one of flat, ivf, not {kind!r}")
    if len(ids):
        index.add_with_ids(vectors, ids)
    return index


def _trained_ivf(vectors: np.ndarray, nlist: int, nprobe: int, seed: int) -> "faiss.IndexIVFFlat":  # noqa: F821
    import faiss

    d = vectors.shape[1]
    rng = np.random.default_rng(seed)
    sample = vectors[rng.choice(len(vectors), min(len(vectors), TRAIN_PER_LIST * nlist), replace=False)]
    quantizer = faiss.IndexFlatIP(d)
    clus = faiss.Clustering(d, nlist)
    clus.niter, clus.seed, clus.spherical = KMEANS_ITER, seed, True
    clus.train(sample, quantizer)
    index = faiss.IndexIVFFlat(quantizer, d, nlist, faiss.METRIC_INNER_PRODUCT)
    index.own_fields = True
    quantizer.this.disown()  # the IVF index owns (and frees) its quantizer from now on
    index.is_trained = True
    # A hash-table direct map gives reconstruct(int_id) (stored queries, PRF) and keeps remove_ids working.
    index.set_direct_map_type(faiss.DirectMap.Hashtable)
    index.nprobe = min(nprobe, nlist)
    return index


def convert(index: "faiss.Index", kind: IndexType, ids: np.ndarray, nprobe: int = IVF_NPROBE) -> "faiss.Index":  # noqa: F821
    """The same vectors (those under `ids`) in a new index of `kind`, without re-embedding anything."""
    ids = np.asarray(ids, dtype=np.int64)
    vectors = index.reconstruct_batch(ids) if len(ids) else np.zeros((0, index.d), dtype=np.float32)
    return build_dense(kind, vectors, ids, nprobe)


def remove(index: "faiss.Index", ids: np.ndarray) -> None:  # noqa: F821
    """Drop `ids` in place. The IVF hash-table direct map accepts only an explicit id array; the flat id map
    tests membership per stored vector, for which the hashed batch selector is the fast one."""
    import faiss

    ids = np.ascontiguousarray(ids, dtype=np.int64)
    if len(ids):
        index.remove_ids(faiss.IDSelectorArray(ids) if isinstance(index, faiss.IndexIVF) else faiss.IDSelectorBatch(ids))


def prepare_for_search(index: "faiss.Index", nprobe: int | None) -> "faiss.Index":  # noqa: F821
    """The loaded index with its search-time settings applied (`nprobe` from the manifest)."""
    import faiss

    if isinstance(index, faiss.IndexIVF) and nprobe:
        index.nprobe = min(int(nprobe), index.nlist)
    return index


def search_params(index: "faiss.Index", selector: object, allowed: int) -> object:  # noqa: F821
    """SearchParameters restricting `index` to the ids of `selector`. IVF needs its own parameter type, and
    scans more lists when the filter is selective so that k allowed hits are still found."""
    import faiss

    if isinstance(index, faiss.IndexIVF):
        share = max(allowed, 1) / max(index.ntotal, 1)
        nprobe = min(index.nlist, max(index.nprobe, math.ceil(index.nprobe / share)))
        return faiss.SearchParametersIVF(sel=selector, nprobe=nprobe)
    return faiss.SearchParameters(sel=selector)


def exact_among(index: "faiss.Index", ids: np.ndarray, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:  # noqa: F821
    """(scores, ids) of the top-k by inner product among `ids` only, from their stored vectors: exact, and
    cheaper than an approximate search told to skip all but a few ids."""
    vectors = index.reconstruct_batch(np.asarray(ids, dtype=np.int64))
    sims = queries @ vectors.T
    k = min(k, len(ids))
    top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
    part = np.take_along_axis(sims, top, axis=1)
    order = np.argsort(-part, axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1), np.asarray(ids)[np.take_along_axis(top, order, axis=1)]
