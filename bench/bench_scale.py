"""Scale of the index `ptm index` writes (issue 8 targets): the dense type chosen automatically by corpus size
(Settings.index_type "auto": exact below ann_threshold, IVF above) against the exact baseline in the same run,
at 10k / 100k / 1M synthetic patents, through the real write and load paths (indexer/index.py).

Per size: build time (index.build_generation: dense + BM25 main segment with token lists on disk); dense
recall@10 of the chosen index against exact (1,000 queries); a fresh process loads the generation and reports
its VmRSS after load and after 100 queries, and hybrid latency p50/p99 excluding encoding
(matcher.engine.rank_candidates, default settings, 300 queries one at a time, one OpenMP thread) for the chosen
index and for an exact index over the same vectors; then +1,000 patents through index.sync (embed and tokenise
the new ones, delta BM25 segment, main hard-linked) against the same sync forced to merge (what every sync did
before segments: a BM25 rebuild over everything), and the BM25 top-10 agreement of main + delta against one
BM25 rebuilt over the same documents. Corpus: bench/_common.synth_vectors and bigram token lists sampled with the
real corpus's frequencies (as bench_bm25.py); queries: the 126 real dev demands (+ perturbed copies for recall).

    nice -n 10 .venv/bin/python bench/bench_scale.py            # 10k, 100k, 1M (~25 min on 2 shared cores, < 10 GB)
    nice -n 10 .venv/bin/python bench/bench_scale.py --quick    # 10k, 100k
    .venv/bin/python bench/bench_scale.py --sizes 1000000 --workdir W --keep   # then, on an idle machine:
    .venv/bin/python bench/bench_scale.py --child W/scale-1000000-*/index       # latency of the kept generation
"""
from __future__ import annotations

import argparse
import gc
import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import RESULTS, demand_texts, patent_texts, pct, perturb, real_vectors, rss_mb, synth_vectors  # noqa: E402

K = 10
KIND = "patents"


def corpus_model() -> tuple[list[str], np.ndarray, list[list[str]]]:
    """(bigram types, their real frequencies, the real demands' bigram tokens)."""
    from indexer.text import bigram_tokens

    counts = Counter(t for text in patent_texts() for t in bigram_tokens(text))
    types = [w for w, _ in counts.most_common()]
    probs = np.array([counts[w] for w in types], dtype=np.float64)
    return types, probs / probs.sum(), [bigram_tokens(t) for t in demand_texts()]


def doc_stream(ids: np.ndarray, types: list[str], probs: np.ndarray, seed: int) -> Iterator[tuple[int, list[str], list[str]]]:
    """(int_id, tokens, words) per id, 100–200 tokens sampled with the real frequencies, generated in chunks so
    a million lists never exist at once."""
    rng = np.random.default_rng(seed)
    pool = np.array(types, dtype=object)
    cdf = np.cumsum(probs)
    for s in range(0, len(ids), 20_000):
        chunk = ids[s : s + 20_000]
        lens = rng.integers(100, 201, len(chunk))
        flat = pool[np.searchsorted(cdf, rng.random(int(lens.sum())) * cdf[-1])]
        for int_id, toks in zip(chunk, np.split(flat, np.cumsum(lens)[:-1])):
            tokens = toks.tolist()
            yield int(int_id), tokens, tokens


ANN_THRESHOLD: int | None = None  # --ann-threshold: try the IVF path at small sizes


def inputs(merge_fraction: float | None = None, **callables):
    """SyncInputs for the synthetic corpus: index type "auto" as `ptm index` runs it by default."""
    from indexer import index as index_mod

    extra = {} if merge_fraction is None else {"merge_fraction": merge_fraction}
    if ANN_THRESHOLD:
        extra["ann_threshold"] = ANN_THRESHOLD
    return index_mod.SyncInputs(hashes=callables.pop("hashes", {}), fetch_texts=callables.pop("fetch_texts", None),
                                embed=callables.pop("embed", None), tokenize=callables.pop("tokenize", None),
                                words=None, model="synthetic", tokenizer="bigram", index_type="auto", **extra)


def recall_at_k(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(f[:K]) & set(t[:K])) / K for f, t in zip(found, truth)]))


def child(index_dir: str, n_queries: int) -> None:
    """Run in a fresh process: load the generation, RSS after load / after 100 queries, hybrid latency for the
    chosen dense index and for an exact index over the same vectors. Prints one JSON line."""
    import faiss

    from indexer import index as index_mod
    from indexer.settings import Settings
    from matcher.engine import Query, rank_candidates

    out: dict = {"rss_start": rss_mb()[0]}
    t0 = time.perf_counter()
    snap = index_mod.load_snapshot(Path(index_dir), KIND)
    out["load_s"] = time.perf_counter() - t0
    out["rss_load"] = rss_mb()[0]
    _, demands = real_vectors()
    _, _, qtokens = corpus_model()
    queries = [Query(v, t) for v, t in zip(demands, qtokens)]
    settings = Settings()
    faiss.omp_set_num_threads(1)  # one query per call: see bench_ann.py
    explain_df = snap.document_frequencies()  # what the engine's explanations load on the first search

    def run(s, count: int) -> tuple[list[float], list[list[int]]]:
        lat, tops = [], []
        for j in range(count):
            q = queries[j % len(queries)]
            t = time.perf_counter()
            fused, _ = rank_candidates(s, q, K, "hybrid", settings)
            lat.append(time.perf_counter() - t)
            tops.append([f.int_id for f in fused])
            for f in fused[:3]:  # the words of the results being explained, read from disk
                s.words.get(f.int_id)
        return lat, tops

    first, _ = run(snap, 100)
    out["rss_100q"] = rss_mb()[0]
    out["df_terms"] = len(explain_df)
    lat, tops = run(snap, n_queries)
    out.update(type=snap.index_type, p50=pct(lat, 50), p99=pct(lat, 99))
    if snap.index_type != "flat":
        ids = np.fromiter(snap.hashes, dtype=np.int64, count=snap.size)
        exact = faiss.IndexIDMap2(faiss.IndexFlatIP(snap.dense.d))
        exact.add_with_ids(snap.dense.reconstruct_batch(ids), ids)
        base = replace(snap, dense=exact)
        run(base, 5)
        blat, btops = run(base, n_queries)
        out.update(base_p50=pct(blat, 50), base_p99=pct(blat, 99),
                   hybrid_overlap=float(np.mean([len(set(a) & set(b)) / K for a, b in zip(tops, btops)])))
    out["rss_peak"] = rss_mb()[1]
    print(json.dumps(out), flush=True)


def measure_size(n: int, args, base: np.ndarray, xq: np.ndarray, model: tuple) -> dict:
    import faiss

    from indexer import index as index_mod

    types, probs, qtokens = model
    row: dict = {"n": n}
    work = Path(tempfile.mkdtemp(prefix=f"scale-{n}-", dir=args.workdir))
    index_dir = work / "index"
    xb = synth_vectors(base, n + 2 * args.add, seed=1000 + n)
    ids = np.arange(1, n + 1, dtype=np.int64)
    hashes = {int(i): f"h{i}" for i in ids}

    t0 = time.perf_counter()
    index_mod.build_generation(index_dir, KIND, ids, xb[:n], doc_stream(ids, types, probs, seed=n), hashes, inputs())
    row["build_s"] = time.perf_counter() - t0
    snap = index_mod.load_snapshot(index_dir, KIND)
    row["type"] = snap.index_type
    row["disk_mb"] = sum(f.stat().st_size for f in snap.path.rglob("*") if f.is_file()) / 2**20
    print(f"\n== N = {n:,}: auto chose {snap.index_type} ({json.dumps({k: v for k, v in snap.manifest.items() if k in ('nlist', 'nprobe')})}); "
          f"build {row['build_s']:.1f} s; generation on disk {row['disk_mb']:.0f} MB", flush=True)

    # Dense recall@10 of the chosen index against exact, 1,000 queries in one batch.
    exact = faiss.IndexIDMap2(faiss.IndexFlatIP(xb.shape[1]))
    exact.add_with_ids(xb[:n], ids)
    _, truth = exact.search(xq, K)
    _, found = snap.dense.search(xq, K)
    row["recall"] = recall_at_k(found, truth)
    del exact, snap, truth, found
    gc.collect()
    print(f"   dense recall@10 vs exact: {row['recall']:.4f}", flush=True)

    # A fresh process: resident memory of a loaded generation, and hybrid latency (chosen vs exact).
    proc = subprocess.run([sys.executable, __file__, "--child", str(index_dir), "--single", str(args.single)],
                          capture_output=True, text=True, check=True)
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    row.update(res)
    base_p50, base_p99 = res.get("base_p50", res["p50"]), res.get("base_p99", res["p99"])
    print(f"   fresh process: load {res['load_s']:.1f} s, VmRSS {res['rss_start']:.0f} MB at start, "
          f"{res['rss_load']:.0f} MB after load, {res['rss_100q']:.0f} MB after 100 queries (peak {res['rss_peak']:.0f} MB "
          f"incl. the exact baseline index)", flush=True)
    print(f"   hybrid excl. encoding: {res['type']} p50 {res['p50']:.2f} ms p99 {res['p99']:.2f} ms | exact baseline "
          f"p50 {base_p50:.2f} ms p99 {base_p99:.2f} ms | p99 ×{base_p99 / res['p99']:.2f} faster"
          + (f" | hybrid top-10 overlap with exact {res['hybrid_overlap']:.3f}" if "hybrid_overlap" in res else ""), flush=True)

    # +1,000 patents: incremental sync (delta segment) vs the same sync forced to merge (BM25 over everything).
    for label, merge, lo in (("delta", None, n + 1), ("merge (baseline)", 0.0, n + args.add + 1)):
        new_ids = np.arange(lo, lo + args.add, dtype=np.int64)
        new_docs = {str(i): toks for i, toks, _ in doc_stream(new_ids, types, probs, seed=lo)}
        new_vecs = {str(i): v for i, v in zip(new_ids, xb[lo - 1 : lo - 1 + args.add])}
        hashes.update({int(i): f"h{i}" for i in new_ids})
        sync_in = inputs(merge_fraction=merge, hashes=dict(hashes), fetch_texts=lambda want: {int(i): str(i) for i in want},
                         embed=lambda texts, v=new_vecs: np.stack([v[t] for t in texts]),
                         tokenize=lambda texts, d=new_docs: [d[t] for t in texts])
        t0 = time.perf_counter()
        report = index_mod.sync(index_dir, KIND, sync_in)
        row[f"add_{label.split()[0]}_s"] = time.perf_counter() - t0
        segs = index_mod.load_snapshot(index_dir, KIND).manifest["segments"]
        print(f"   +{args.add:,} patents, {label}: {row[f'add_{label.split()[0]}_s']:.1f} s (added {report.added}; "
              f"segments {segs})", flush=True)
        if label == "delta":
            row["bm25_agreement"], row["bm25_rebuild_s"] = bm25_agreement(index_dir, qtokens, work)
            print(f"   BM25 top-10 of main + delta vs one BM25 rebuilt over the same {n + args.add:,} documents: "
                  f"{row['bm25_agreement']:.4f} (that rebuild: {row['bm25_rebuild_s']:.1f} s)", flush=True)
    print(f"   +{args.add:,}: delta ×{row['add_merge_s'] / row['add_delta_s']:.1f} faster than the merge", flush=True)
    del xb
    gc.collect()
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return row


def bm25_agreement(index_dir: Path, qtokens: list[list[str]], work: Path) -> tuple[float, float]:
    """Mean top-10 overlap of the live main + delta BM25 against one segment rebuilt over the same documents."""
    from indexer import index as index_mod
    from indexer import segments as seg_mod
    from matcher.retrieve import bm25_search

    snap = index_mod.load_snapshot(index_dir, KIND)
    live = seg_mod.live_rows(snap.segments, np.fromiter(snap.hashes, dtype=np.int64, count=snap.size))
    t0 = time.perf_counter()
    seg_mod.write_segment(work / "merged", seg_mod.iter_live(snap.segments, live, set()))
    rebuild_s = time.perf_counter() - t0
    merged = seg_mod.read_segment(work / "merged")
    one = replace(snap, bm25=seg_mod.SegmentedBM25([merged], [np.ones(len(merged), dtype=bool)]), int_ids=merged.ids)
    overlaps = []
    for q in qtokens:
        a, b = bm25_search(snap, q, K).ids.tolist(), bm25_search(one, q, K).ids.tolist()
        overlaps.append(len(set(a) & set(b)) / max(len(b), 1))
    return float(np.mean(overlaps)), rebuild_s


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="10k and 100k")
    ap.add_argument("--sizes", default="10000,100000,1000000")
    ap.add_argument("--add", type=int, default=1000)
    ap.add_argument("--queries", type=int, default=1000, help="for recall")
    ap.add_argument("--single", type=int, default=300, help="hybrid queries timed one at a time")
    ap.add_argument("--workdir", default=None, help="where the generations are written (default: a temp dir)")
    ap.add_argument("--keep", action="store_true", help="keep the generations")
    ap.add_argument("--ann-threshold", type=int, default=None, help="override Settings.ann_threshold")
    ap.add_argument("--child", default=None, metavar="INDEX_DIR",
                    help="re-time a kept generation (W/scale-N-*/index) as the run's fresh process does: RSS and hybrid "
                         "latency, chosen vs exact; prints one JSON line")
    args = ap.parse_args()
    global ANN_THRESHOLD
    ANN_THRESHOLD = args.ann_threshold
    if args.child:
        child(args.child, args.single)
        return
    if args.quick:
        args.sizes = "10000,100000"
    import faiss

    print(f"faiss {faiss.__version__}, omp threads {faiss.omp_get_max_threads()}", flush=True)
    base, demands = real_vectors()
    xq = np.ascontiguousarray(np.concatenate([demands, perturb(demands, args.queries - len(demands), seed=42)]), dtype=np.float32)
    model = corpus_model()
    rows = [measure_size(int(s), args, base, xq, model) for s in args.sizes.split(",")]
    print(f"\nparent peak RSS {rss_mb()[1]:.0f} MB")
    out = RESULTS / ("scale-quick.json" if args.quick else "scale.json")
    out.write_text(json.dumps(rows, indent=1))
    print(f"rows written to {out}")


if __name__ == "__main__":
    main()
