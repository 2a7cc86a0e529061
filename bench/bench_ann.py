"""Dense search at scale: exact (IndexIDMap2(IndexFlatIP), what indexer/index.py builds — the baseline) vs
HNSW (IndexHNSWFlat M=32, efSearch 64/128/256) vs IVF-Flat and IVF-PQ (nprobe 16/32/64), all inner product.

Vectors look like real embeddings: the ~6,100 real abstracts (dev + kppatent) embedded once with the project's
encoder (cached in bench/results/*.npy; the first run takes ~5 min for that), then convex mixtures of two real
vectors plus small Gaussian noise, re-normalised. Queries: the 126 real dev demands (encode_queries) plus
perturbed copies. Per index and size: build time, memory (bytes held by the index and the process RSS growth),
single-query latency p50/p99 (one query per search call, the match path), batch throughput (all queries in one
call) and recall@10 against exact search; ratios are against exact measured in the same run. Fixed seeds.

    .venv/bin/python bench/bench_ann.py            # 10k, 100k, 1M (about 25 min on 2 cores)
    .venv/bin/python bench/bench_ann.py --quick    # 10k only, fewer queries, PQ96 only (< 1 min once vectors are cached)
    .venv/bin/python bench/bench_ann.py --sizes 1000000 --skip-hnsw
"""
from __future__ import annotations

import argparse
import gc
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import RESULTS, pct, perturb, real_vectors, rss_mb, synth_vectors  # noqa: E402

K = 10


def recall_at_k(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(f[:K]) & set(t[:K])) / K for f, t in zip(found, truth)]))


def tolerant_recall(found: np.ndarray, xb: np.ndarray, xq: np.ndarray, kth: np.ndarray, eps: float) -> float:
    """Share of the returned top-10 whose exact cosine is within eps of the exact 10th best: counts a near-tie
    swapped in for an exact neighbour as a hit (the synthetic corpus has many near-duplicates, see README)."""
    f = np.where(found[:, :K] < 0, 0, found[:, :K])
    sims = np.einsum("qkd,qd->qk", xb[f], xq)
    return float(np.mean((sims >= kth[:, None] - eps) & (found[:, :K] >= 0)))


def time_queries(index, xq: np.ndarray, n_single: int) -> tuple[float, float, float, np.ndarray]:
    """(p50 ms, p99 ms, batch queries/s, batch result ids). Single queries run with one OpenMP thread: FAISS
    parallelises a search over its queries, so one query gains nothing from a second thread, and on a shared
    2-core machine the idle thread's barrier waits turn a busy neighbour into ms of jitter. The batch uses all."""
    import faiss

    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    for i in range(min(5, n_single)):  # warm-up
        index.search(xq[i : i + 1], K)
    lat = []
    for i in range(n_single):
        t0 = time.perf_counter()
        index.search(xq[i : i + 1], K)
        lat.append(time.perf_counter() - t0)
    faiss.omp_set_num_threads(threads)
    t0 = time.perf_counter()
    _, ids = index.search(xq, K)
    qps = len(xq) / (time.perf_counter() - t0)
    return pct(lat, 50), pct(lat, 99), qps, ids


def nlist_for(n: int) -> int:
    # ~4·sqrt(N), a power of two, capped at 4096 (the 1M setting the issue names)
    return int(min(4096, max(64, 2 ** round(np.log2(4 * np.sqrt(n))))))


def run_size(n: int, base: np.ndarray, xq: np.ndarray, args, rows: list[dict]) -> None:
    import faiss

    d = base.shape[1]
    t0 = time.perf_counter()
    xb = synth_vectors(base, n, seed=1000 + n)
    ids = np.arange(n, dtype=np.int64)
    print(f"\n== N = {n:,}  (dim {d}; {len(xq)} queries, {args.single} timed one at a time; synth {time.perf_counter() - t0:.1f} s)", flush=True)

    def record(name, build_s, index_bytes, rss_grow, p50, p99, qps, rec, extra="", found=None):
        tol = tolerant_recall(found, xb, xq, kth, args.eps) if found is not None else 1.0  # noqa: F821 - xb is deleted only after the last record()
        row = {"n": n, "index": name, "build_s": round(build_s, 2), "index_mb": round(index_bytes / 2**20, 1),
               "rss_growth_mb": round(rss_grow, 1), "p50_ms": round(p50, 3), "p99_ms": round(p99, 3),
               "batch_qps": round(qps, 1), "recall10": round(rec, 4), f"recall10_within_{args.eps}": round(tol, 4), "note": extra}
        rows.append(row)
        ex = rows_for(n, "exact")
        ratio = ""
        if ex and name != "exact":
            ratio = f"  | vs exact: p99 speed-up ×{ex['p99_ms'] / p99:.1f}, batch qps ×{qps / ex['batch_qps']:.1f}"
        print(f"{name:32s} build {build_s:7.1f}s  mem {row['index_mb']:8.1f} MB (RSS +{rss_grow:7.1f})  "
              f"p50 {p50:7.2f} ms  p99 {p99:7.2f} ms  batch {qps:9.0f} q/s  recall@10 {rec:.4f} (±{args.eps}: {tol:.4f}){ratio}", flush=True)

    def rows_for(n_, name):
        return next((r for r in rows if r["n"] == n_ and r["index"] == name), None)

    # --- exact, the baseline (what the project builds today)
    r0 = rss_mb()[0]
    t0 = time.perf_counter()
    exact = faiss.IndexIDMap2(faiss.IndexFlatIP(d))
    exact.add_with_ids(xb, ids)
    build = time.perf_counter() - t0
    grow = rss_mb()[0] - r0
    p50, p99, qps, truth = time_queries(exact, xq, args.single)
    tsims = np.einsum("qkd,qd->qk", xb[truth[:, :K]], xq)
    kth = tsims[:, K - 1]
    print(f"   exact top-10 cosine: 1st {tsims[:, 0].mean():.4f}, 10th {kth.mean():.4f} "
          f"(mean gap {np.mean(tsims[:, 0] - kth):.4f})", flush=True)
    record("exact", build, exact.ntotal * (d * 4 + 8), grow, p50, p99, qps, 1.0)
    del exact
    gc.collect()

    # --- HNSW
    if not args.skip_hnsw:
        r0 = rss_mb()[0]
        t0 = time.perf_counter()
        hnsw = faiss.IndexHNSWFlat(d, 32, faiss.METRIC_INNER_PRODUCT)
        hnsw.hnsw.efConstruction = args.ef_construction
        hnsw.add(xb)
        build = time.perf_counter() - t0
        grow = rss_mb()[0] - r0
        # flat vectors + level-0 links (2M) + upper levels (~M per node / (M-1)), int32 each
        hbytes = hnsw.ntotal * (d * 4 + 2 * 32 * 4 * (1 + 1 / 31))
        for ef in args.ef_search:
            hnsw.hnsw.efSearch = ef
            p50, p99, qps, found = time_queries(hnsw, xq, args.single)
            record(f"HNSW32 ef{ef}", build, hbytes, grow, p50, p99, qps, recall_at_k(found, truth),
                   f"efConstruction {args.ef_construction}", found)
        del hnsw
        gc.collect()

    if args.skip_ivf:
        del xb
        gc.collect()
        return
    # --- IVF: one coarse quantizer trained on a sample, shared by IVF-Flat and IVF-PQ
    nlist = nlist_for(n)
    rng = np.random.default_rng(7)
    sample = xb[rng.choice(n, min(n, args.train_per_list * nlist), replace=False)]
    t0 = time.perf_counter()
    quantizer = faiss.IndexFlatIP(d)
    clus = faiss.Clustering(d, nlist)
    clus.niter = args.kmeans_iter
    clus.seed = 1234
    clus.spherical = True
    clus.train(sample, quantizer)
    t1 = time.perf_counter()
    _, assign = quantizer.search(xb, 1)  # the list of every vector, computed once and shared by the IVF variants
    assign_s = time.perf_counter() - t1
    qtrain = time.perf_counter() - t0
    print(f"   IVF coarse quantizer: nlist {nlist}, k-means on {len(sample):,} vectors, {args.kmeans_iter} iter + assigning all {n:,}: {qtrain:.1f} s (assign {assign_s:.1f} s)", flush=True)

    variants = [("IVF%d,Flat" % nlist, None)] + [("IVF%d,PQ%d" % (nlist, m), m) for m in args.pq]
    for name, m in variants:
        r0 = rss_mb()[0]
        t0 = time.perf_counter()
        if m is None:
            ivf = faiss.IndexIVFFlat(quantizer, d, nlist, faiss.METRIC_INNER_PRODUCT)
            code = d * 4
        else:
            ivf = faiss.IndexIVFPQ(quantizer, d, nlist, m, 8, faiss.METRIC_INNER_PRODUCT)
            ivf.pq.cp.seed = 1234
            ivf.train(sample[: args.pq_train])  # quantizer already trained: this trains only the PQ
            code = m
        ivf.is_trained = True
        ivf.make_direct_map(False)
        # = ivf.add_with_ids(xb, ids) with the shared assignment; IVF keeps ids itself, so remove_ids works without IDMap
        ivf.add_core(n, faiss.swig_ptr(xb), faiss.swig_ptr(ids), faiss.swig_ptr(assign))
        build = time.perf_counter() - t0 + qtrain
        grow = rss_mb()[0] - r0
        ibytes = ivf.ntotal * (code + 8) + nlist * d * 4
        for nprobe in args.nprobe:
            ivf.nprobe = nprobe
            p50, p99, qps, found = time_queries(ivf, xq, args.single)
            record(f"{name} np{nprobe}", build, ibytes, grow, p50, p99, qps, recall_at_k(found, truth), "", found)
        if m is not None and args.refine:
            # IVF-PQ candidates re-ranked with exact inner products (IndexRefineFlat keeps the fp32 vectors too)
            t0 = time.perf_counter()
            flat = faiss.IndexFlatIP(d)
            flat.add(xb)
            ref = faiss.IndexRefine(ivf, flat)
            rbuild = build + time.perf_counter() - t0
            for nprobe in args.nprobe:
                ivf.nprobe = nprobe
                ref.k_factor = 4
                p50, p99, qps, found = time_queries(ref, xq, args.single)
                record(f"{name}+refine×4 np{nprobe}", rbuild, ibytes + n * d * 4, grow + n * d * 4 / 2**20, p50, p99, qps,
                       recall_at_k(found, truth), f"fp32 re-rank of {4 * K} PQ candidates", found)
            ref.own_fields = False
            del ref, flat
        ivf.own_fields = False
        del ivf
        gc.collect()
    del xb
    gc.collect()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="10k vectors, 200 queries, 100 timed singly")
    ap.add_argument("--sizes", default="10000,100000,1000000")
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--single", type=int, default=300)
    ap.add_argument("--ef-construction", type=int, default=40)
    ap.add_argument("--ef-search", default="64,128,256,512")
    ap.add_argument("--eps", type=float, default=0.005, help="cosine tolerance of the tie-tolerant recall")
    ap.add_argument("--nprobe", default="16,32,64")
    ap.add_argument("--pq", default="48,96")
    ap.add_argument("--refine", action="store_true", default=True)
    ap.add_argument("--no-refine", dest="refine", action="store_false")
    ap.add_argument("--train-per-list", type=int, default=40)
    ap.add_argument("--kmeans-iter", type=int, default=10)
    ap.add_argument("--pq-train", type=int, default=32768, help="vectors the PQ codebooks are trained on")
    ap.add_argument("--skip-hnsw", action="store_true")
    ap.add_argument("--skip-ivf", action="store_true")
    ap.add_argument("--json", default=None, help="write the rows here (default bench/results/ann[-quick].json)")
    args = ap.parse_args()
    if args.quick:
        args.sizes, args.queries, args.single, args.pq = "10000", 200, 100, "96"
    args.nprobe = [int(x) for x in args.nprobe.split(",")]
    args.ef_search = [int(x) for x in args.ef_search.split(",")]
    args.pq = [int(x) for x in args.pq.split(",") if x]
    import faiss

    print(f"faiss {faiss.__version__}, omp threads {faiss.omp_get_max_threads()}", flush=True)
    base, demands = real_vectors()
    xq = np.concatenate([demands, perturb(demands, max(0, args.queries - len(demands)), seed=42)])[: args.queries]
    xq = np.ascontiguousarray(xq, dtype=np.float32)
    rows: list[dict] = []
    for n in (int(s) for s in args.sizes.split(",")):
        run_size(n, base, xq, args, rows)
    rss, hwm = rss_mb()
    print(f"\nprocess RSS now {rss:.0f} MB, peak {hwm:.0f} MB")
    out = Path(args.json) if args.json else RESULTS / ("ann-quick.json" if args.quick else "ann.json")
    out.write_text(json.dumps(rows, indent=1))
    print(f"rows written to {out}")


if __name__ == "__main__":
    main()
