"""Demo-corpus benchmark: index build and single-demand match latency, with in-run baselines.

Baselines measured in the same run: index build vs a plain per-batch `SentenceTransformer.encode` of the
same texts (fp32, input order, batch 32); match latency vs dense-only search. Run:
    .venv/bin/python bench/bench_demo.py [--n 400] [--queries 42]
"""
from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from indexer.settings import DATASETS_DIR, Settings


def pct(xs: list[float], p: float) -> float:
    return float(np.percentile(np.asarray(xs) * 1000, p))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=400)
    ap.add_argument("--queries", type=int, default=42)
    args = ap.parse_args()

    from indexer.encoder import load_encoder
    from indexer.pipeline import ingest_file, sync_index
    from matcher.engine import Engine

    rows = [json.loads(line) for line in open(DATASETS_DIR / "demo" / "patents.jsonl", encoding="utf-8")][: args.n]
    queries = [json.loads(line)["text"] for line in open(DATASETS_DIR / "eval" / "quick" / "demands.jsonl", encoding="utf-8")][: args.queries]
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "p.jsonl"
        corpus.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
        s = Settings.from_env(home=Path(tmp) / "ws")
        enc = load_encoder(s)  # model load is not part of either timing
        enc.encode_passages(["预热"])

        texts = [f"{r['title']}。{r['abstract']}" for r in rows]
        t0 = time.perf_counter()
        for i in range(0, len(texts), 32):  # baseline: what a plain script does
            enc.model.encode(["passage: " + t for t in texts[i : i + 32]], batch_size=32, normalize_embeddings=True)
        base = time.perf_counter() - t0

        t0 = time.perf_counter()
        ingest_file(s, "patents", corpus)
        sync_index(s, kinds=("patents",))
        build = time.perf_counter() - t0
        t0 = time.perf_counter()
        sync_index(s, kinds=("patents",), rebuild=True)
        rebuild_cached = time.perf_counter() - t0

        engine = Engine(s)
        encoded = engine.text_queries(queries)
        lat = {"hybrid (no encode)": [], "dense only (no encode)": [], "hybrid incl. encode": []}
        for _ in range(3):
            for q, e in zip(queries, encoded):
                for name, fn in (("hybrid (no encode)", lambda: engine.search("patents", e, 10, "hybrid")),
                                 ("dense only (no encode)", lambda: engine.search("patents", e, 10, "dense")),
                                 ("hybrid incl. encode", lambda: engine.match_text(q, 10))):
                    t0 = time.perf_counter()
                    fn()
                    lat[name].append(time.perf_counter() - t0)

    n = len(rows)
    print(f"corpus: {n} demo patents, {len(queries)} demands × 3 rounds; 2 threads, bf16={enc.bf16}")
    print(f"baseline plain ST encode (fp32 path as called, batch 32): {n / base:8.1f} patents/s")
    print(f"ptm ingest + index (cold cache)                        : {n / build:8.1f} patents/s  ratio {base / build:4.2f}x")
    print(f"ptm index --rebuild (embedding cache warm)             : {n / rebuild_cached:8.1f} patents/s  ratio {base / rebuild_cached:4.1f}x")
    ref = statistics.median(lat["dense only (no encode)"])
    for name, xs in lat.items():
        print(f"match latency {name:<24}: p50 {pct(xs, 50):6.1f} ms  p99 {pct(xs, 99):6.1f} ms  "
              f"(p50 ratio to dense-only {statistics.median(xs) / ref:4.1f}x)")


if __name__ == "__main__":
    main()
