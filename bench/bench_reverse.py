"""Reverse and batch matching, dense stage: all 1,300 patents × 1,000 demands.

Patents: the first 1,300 real dev abstracts (project encoder, cached vectors). Demands: the 126 real dev demands
plus perturbed copies, 1,000 in all (fixed seed). Both directions use the project's index type,
IndexIDMap2(IndexFlatIP), at the engine's candidate depth. Baseline: the per-query loop the engine runs today
(Engine.match_texts / match_patent → dense_search with one vector per call). Compared: one FAISS batch search
call with all queries, and one numpy matrix product giving the full 1,300 × 1,000 score matrix (both directions
at once) + argpartition. Results are compared with the baseline's (top-k sets; the BLAS
batch path and the one-query SIMD path round differently, so near-ties at rank ~300 can swap).

    .venv/bin/python bench/bench_reverse.py            # 1,300 × 1,000, best of 3
    .venv/bin/python bench/bench_reverse.py --quick    # same sizes, 1 repeat (a few seconds)
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import best_of, perturb, real_vectors  # noqa: E402


def topk_rows(scores: np.ndarray, k: int) -> np.ndarray:
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(scores, part, 1), axis=1, kind="stable")
    return np.take_along_axis(part, order, 1)


def main() -> None:
    import faiss

    from indexer.settings import Settings

    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--patents", type=int, default=1300)
    ap.add_argument("--demands", type=int, default=1000)
    ap.add_argument("--k", type=int, default=Settings.from_env().candidates)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    if args.quick:
        args.repeats = 1
    base, dem = real_vectors()
    P = np.ascontiguousarray(base[: args.patents])
    D = np.ascontiguousarray(np.concatenate([dem, perturb(dem, args.demands - len(dem), seed=8)])[: args.demands])
    d = P.shape[1]
    print(f"{len(P):,} patents × {len(D):,} demands, dim {d}, depth k={args.k}, faiss threads {faiss.omp_get_max_threads()}")

    def index_of(x):
        ix = faiss.IndexIDMap2(faiss.IndexFlatIP(d))
        ix.add_with_ids(x, np.arange(len(x), dtype=np.int64))
        return ix

    pidx, didx = index_of(P), index_of(D)
    results = {}
    for label, ix, Q in (("demands → patents (batch matching)", pidx, D), ("patents → demands (reverse matching)", didx, P)):
        loop_s, loop = best_of(lambda: np.vstack([ix.search(Q[i : i + 1], args.k)[1] for i in range(len(Q))]), args.repeats)
        batch_s, (_, batch) = best_of(lambda: ix.search(Q, args.k), args.repeats)
        print(f"\n{label}: {len(Q):,} queries")
        print(f"  per-query loop (engine today, baseline) {loop_s * 1000:8.1f} ms  {len(Q) / loop_s:9.0f} q/s  ×1.0")
        print(f"  one FAISS batch search                  {batch_s * 1000:8.1f} ms  {len(Q) / batch_s:9.0f} q/s  ×{loop_s / batch_s:.1f}"
              f"  same top-{args.k} set {np.mean([set(a) == set(b) for a, b in zip(loop, batch)]):.2%}, "
              f"mean overlap {np.mean([len(set(a) & set(b)) / args.k for a, b in zip(loop, batch)]):.4f}")
        results[label] = loop
    # both directions from one score matrix
    def both():
        S = D @ P.T
        return topk_rows(S, args.k), topk_rows(np.ascontiguousarray(S.T), args.k)
    mat_s, (fw, rv) = best_of(both, args.repeats)
    ok_f = np.mean([set(a) == set(b) for a, b in zip(fw, results["demands → patents (batch matching)"])])
    ok_r = np.mean([set(a) == set(b) for a, b in zip(rv, results["patents → demands (reverse matching)"])])
    print(f"\nboth directions from one numpy score matrix ({len(D)}×{len(P)}) + argpartition: {mat_s * 1000:.1f} ms "
          f"(same top-{args.k} sets: forward {ok_f:.2%}, reverse {ok_r:.2%})")


if __name__ == "__main__":
    main()
