"""BM25 (bm25s, as indexer/index.build_bm25 builds it) at 100k and 1M synthetic documents.

Documents are token lists sampled from the real corpus's character-bigram vocabulary (bigram_tokens over the
~6,100 real abstracts) with the real token frequencies (Zipf-like), 100–200 tokens each (mean 150). Queries are
the 126 real dev demands, bigram-tokenised. Measured: build time; single-query latency p50/p99 of what
matcher/retrieve.bm25_search does (get_scores + argpartition; the baseline) vs bm25s's own retrieve(k=10);
the index's memory (its score matrix) and process RSS growth; and the cost of adding 1,000 documents — bm25s has
no incremental add, so that is a full rebuild over N+1,000 documents. Fixed seeds.

    .venv/bin/python bench/bench_bm25.py            # 100k and 1M (about 10 min, ~10 GB peak RSS at 1M)
    .venv/bin/python bench/bench_bm25.py --quick    # 20k (< 1 min)
"""
from __future__ import annotations

import argparse
import gc
import json
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import RESULTS, demand_texts, patent_texts, pct, rss_mb  # noqa: E402

K = 10


def build(docs: list[list[int]], vocab: dict[str, int]):
    """Exactly indexer/index.build_bm25 after its string → id mapping."""
    import bm25s
    from bm25s.tokenization import Tokenized

    retriever = bm25s.BM25()
    retriever.index(Tokenized(ids=docs, vocab=dict(vocab)), show_progress=False)
    return retriever


def synth_docs(n: int, probs: np.ndarray, seed: int) -> list[list[int]]:
    rng = np.random.default_rng(seed)
    pool = np.array(list(range(len(probs))), dtype=object)  # shared int objects: lists hold pointers only
    lens = rng.integers(100, 201, n)
    out: list[list[int]] = []
    cdf = np.cumsum(probs)
    for s in range(0, n, 50_000):
        ln = lens[s : s + 50_000]
        flat = np.searchsorted(cdf, rng.random(int(ln.sum())) * cdf[-1])
        objs = pool[flat]
        cuts = np.cumsum(ln)[:-1]
        out += [a.tolist() for a in np.split(objs, cuts)]
    return out


def bm25_search(bm25, tokens: list[str], k: int) -> np.ndarray:
    """matcher/retrieve.bm25_search without the filter branch."""
    vocab = bm25.vocab_dict
    known = [t for t in tokens if t in vocab]
    if not known:
        return np.zeros(0, dtype=np.int64)
    scores = bm25.get_scores(known)
    k = min(k, int(np.count_nonzero(scores)))
    top = np.argpartition(-scores, k - 1)[:k]
    return top[np.argsort(-scores[top], kind="stable")]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--sizes", default="100000,1000000")
    ap.add_argument("--add", type=int, default=1000)
    args = ap.parse_args()
    if args.quick:
        args.sizes = "20000"
    from indexer.text import bigram_tokens

    counts = Counter(t for text in patent_texts() for t in bigram_tokens(text))
    words = [w for w, _ in counts.most_common()]
    vocab = {w: i for i, w in enumerate(words)}
    probs = np.array([counts[w] for w in words], dtype=np.float64)
    probs /= probs.sum()
    queries = [bigram_tokens(t) for t in demand_texts()]
    print(f"real bigram vocabulary {len(words):,} tokens; top-10 share {probs[:10].sum():.3f}; "
          f"{len(queries)} real demand queries, {np.mean([len(q) for q in queries]):.0f} tokens each", flush=True)
    rows = []
    for n in (int(s) for s in args.sizes.split(",")):
        docs = synth_docs(n + args.add, probs, seed=n)
        base_docs = docs[:n]
        gc.collect()
        r0 = rss_mb()[0]
        t0 = time.perf_counter()
        bm25 = build(base_docs, vocab)
        build_s = time.perf_counter() - t0
        grow = rss_mb()[0] - r0
        sc = bm25.scores
        index_mb = (sc["data"].nbytes + sc["indices"].nbytes + sc["indptr"].nbytes) / 2**20
        # warm-up, then time each query singly, both ways
        bm25_search(bm25, queries[0], K)
        bm25.retrieve([queries[0]], k=K, show_progress=False)
        lat_gs, lat_rt, agree = [], [], []
        for q in queries:
            t0 = time.perf_counter()
            a = bm25_search(bm25, q, K)
            lat_gs.append(time.perf_counter() - t0)
            known = [t for t in q if t in bm25.vocab_dict]
            t0 = time.perf_counter()
            b, _ = bm25.retrieve([known], k=K, show_progress=False, n_threads=1)
            lat_rt.append(time.perf_counter() - t0)
            agree.append(len(set(a.tolist()) & set(b[0].tolist())) / K)
        t0 = time.perf_counter()
        bm25.retrieve([[t for t in q if t in bm25.vocab_dict] for q in queries], k=K, show_progress=False, n_threads=2)
        batch_qps = len(queries) / (time.perf_counter() - t0)
        del bm25
        gc.collect()
        t0 = time.perf_counter()
        bm25 = build(docs, vocab)  # adding 1,000 documents = rebuilding over N + 1,000
        add_s = time.perf_counter() - t0
        del bm25, docs, base_docs
        gc.collect()
        row = {"n": n, "build_s": round(build_s, 1), "index_mb": round(index_mb, 1), "rss_growth_mb": round(grow, 1),
               "get_scores_p50_ms": round(pct(lat_gs, 50), 2), "get_scores_p99_ms": round(pct(lat_gs, 99), 2),
               "retrieve_p50_ms": round(pct(lat_rt, 50), 2), "retrieve_p99_ms": round(pct(lat_rt, 99), 2),
               "retrieve_batch_qps_2threads": round(batch_qps, 1), "top10_agreement": round(float(np.mean(agree)), 4),
               f"add_{args.add}_rebuild_s": round(add_s, 1)}
        rows.append(row)
        print(f"\n== N = {n:,} documents (~150 bigram tokens each)")
        print(f"build {build_s:.1f} s ({n / build_s:,.0f} docs/s); index {index_mb:.0f} MB; RSS +{grow:.0f} MB")
        print(f"single query, get_scores+argpartition (retrieve.bm25_search, baseline): p50 {row['get_scores_p50_ms']} ms  p99 {row['get_scores_p99_ms']} ms")
        print(f"single query, bm25s retrieve(k=10):                                   p50 {row['retrieve_p50_ms']} ms  p99 {row['retrieve_p99_ms']} ms"
              f"  (p99 ×{row['retrieve_p99_ms'] / row['get_scores_p99_ms']:.2f} the baseline's; top-10 agreement {row['top10_agreement']:.3f})")
        print(f"bm25s retrieve, all {len(queries)} queries in one call, 2 threads: {batch_qps:.1f} q/s")
        print(f"adding {args.add:,} documents = full rebuild over {n + args.add:,}: {add_s:.1f} s "
              f"(×{add_s / build_s:.2f} the original build)", flush=True)
    rss, hwm = rss_mb()
    print(f"\nprocess RSS now {rss:.0f} MB, peak {hwm:.0f} MB")
    out = RESULTS / ("bm25-quick.json" if args.quick else "bm25.json")
    out.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
