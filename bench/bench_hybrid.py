"""Hybrid match latency at scale, through the engine's own ranking (matcher.engine.rank_candidates: dense top-300
+ BM25 top-300 + fusion, default Settings), excluding the demand's encoding. Baseline: the index the project
builds today (exact IndexIDMap2(IndexFlatIP)); compared: the same with IndexHNSWFlat(M=32) as the dense index.
Corpus: synthetic vectors and bigram token lists (bench/_common.synth_vectors, bench_bm25.synth_docs);
queries: the 126 real dev demands, their real vectors and bigram tokens. Also prints the process RSS holding
both indexes. Fixed seeds.

    .venv/bin/python bench/bench_hybrid.py            # 1M (about 7 min, ~9 GB peak RSS)
    .venv/bin/python bench/bench_hybrid.py --quick    # 20k
"""
from __future__ import annotations

import argparse
import gc
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import demand_texts, patent_texts, pct, real_vectors, rss_mb, synth_vectors  # noqa: E402
from bench_bm25 import build as build_bm25, synth_docs  # noqa: E402


def main() -> None:
    import faiss

    from indexer.index import Snapshot
    from indexer.settings import Settings
    from indexer.text import bigram_tokens
    from matcher.engine import Query, rank_candidates

    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--ef-search", type=int, default=512)
    ap.add_argument("--ef-construction", type=int, default=40)
    args = ap.parse_args()
    if args.quick:
        args.n = 20_000
    n = args.n
    settings = Settings.from_env()
    base, dem = real_vectors()
    texts = demand_texts()
    queries = [Query(v, bigram_tokens(t)) for v, t in zip(dem, texts)]
    print(f"N = {n:,}; {len(queries)} real demands; depth {settings.candidates} per retriever, fusion {settings.fusion}", flush=True)

    r0 = rss_mb()[0]
    counts = Counter(t for text in patent_texts() for t in bigram_tokens(text))
    words = [w for w, _ in counts.most_common()]
    vocab = {w: i for i, w in enumerate(words)}
    probs = np.array([counts[w] for w in words], dtype=np.float64)
    docs = synth_docs(n, probs / probs.sum(), seed=n)
    t0 = time.perf_counter()
    bm25 = build_bm25(docs, vocab)
    print(f"BM25 build {time.perf_counter() - t0:.1f} s", flush=True)
    del docs
    gc.collect()
    xb = synth_vectors(base, n, seed=1000 + n)
    exact = faiss.IndexIDMap2(faiss.IndexFlatIP(xb.shape[1]))
    exact.add_with_ids(xb, np.arange(n, dtype=np.int64))
    t0 = time.perf_counter()
    hnsw = faiss.IndexHNSWFlat(xb.shape[1], 32, faiss.METRIC_INNER_PRODUCT)
    hnsw.hnsw.efConstruction = args.ef_construction
    hnsw.add(xb)
    hnsw.hnsw.efSearch = args.ef_search
    print(f"HNSW build {time.perf_counter() - t0:.1f} s (efConstruction {args.ef_construction}, efSearch {args.ef_search})", flush=True)
    del xb
    gc.collect()
    rss = rss_mb()[0]
    print(f"RSS with BM25 + exact + HNSW loaded: {rss:.0f} MB (+{rss - r0:.0f} MB); BM25 score matrix "
          f"{sum(bm25.scores[k].nbytes for k in ('data', 'indices', 'indptr')) / 2**20:.0f} MB, exact "
          f"{n * (384 * 4 + 8) / 2**20:.0f} MB, HNSW {n * (384 * 4 + 264) / 2**20:.0f} MB", flush=True)

    faiss.omp_set_num_threads(1)  # one query per call: see bench_ann.py
    ids = np.arange(n, dtype=np.int64)
    res = {}
    for label, dense in (("exact (baseline)", exact), (f"HNSW32 ef{args.ef_search}", hnsw)):
        snap = Snapshot(path=Path("/nonexistent"), manifest={}, dense=dense, bm25=bm25, int_ids=ids, hashes={}, tokens={}, words={})
        for method in ("hybrid", "dense", "bm25"):
            rank_candidates(snap, queries[0], 10, method, settings)  # warm-up
            lat, tops = [], []
            for q in queries:
                t0 = time.perf_counter()
                fused, _ = rank_candidates(snap, q, 10, method, settings)
                lat.append(time.perf_counter() - t0)
                tops.append([f.int_id for f in fused])
            res[(label, method)] = (pct(lat, 50), pct(lat, 99), tops)
    b50, b99, btops = res[("exact (baseline)", "hybrid")]
    for (label, method), (p50, p99, tops) in res.items():
        extra = ""
        if method == "hybrid" and label != "exact (baseline)":
            agree = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(tops, btops)])
            extra = f"  p99 ×{b99 / p99:.2f} faster than the baseline; hybrid top-10 overlap with baseline {agree:.3f}"
        print(f"{label:20s} {method:7s} p50 {p50:7.2f} ms  p99 {p99:7.2f} ms{extra}")
    print(f"peak RSS {rss_mb()[1]:.0f} MB")


if __name__ == "__main__":
    main()
