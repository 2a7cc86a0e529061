"""Tokenisation throughput on the real abstracts (dev + kppatent, ~6,100 texts): indexer.text.jieba_tokens serial
(the baseline) vs bigram_tokens, and jieba_tokens over a multiprocessing pool of 2 workers; output agreement
(identical token lists per text) against the serial jieba output. MB = UTF-8 megabytes of input. Fixed order.

    .venv/bin/python bench/bench_tokenize.py            # all ~6,100 abstracts, best of 3 repeats
    .venv/bin/python bench/bench_tokenize.py --quick    # 1,000 abstracts, 1 repeat
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import best_of, patent_texts  # noqa: E402


def _init() -> None:
    from indexer.text import get_jieba, stopwords

    get_jieba()
    stopwords()


def _jieba_chunk(texts: list[str]) -> list[list[str]]:
    from indexer.text import jieba_tokens

    return [jieba_tokens(t) for t in texts]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    texts = patent_texts()
    if args.quick:
        texts, args.repeats = texts[:1000], 1
    mb = sum(len(t.encode("utf-8")) for t in texts) / 1e6
    from indexer.text import bigram_tokens, get_jieba, jieba_tokens, stopwords

    t0 = time.perf_counter()
    get_jieba()
    stopwords()
    load = time.perf_counter() - t0
    print(f"{len(texts):,} abstracts, {mb:.2f} MB UTF-8, {sum(map(len, texts)) / len(texts):.0f} chars each; "
          f"jieba + user dictionary load {load:.2f} s (not in the timings below)", flush=True)

    base_s, base = best_of(lambda: [jieba_tokens(t) for t in texts], args.repeats)
    big_s, _ = best_of(lambda: [bigram_tokens(t) for t in texts], args.repeats)

    chunks = [texts[i : i + 100] for i in range(0, len(texts), 100)]
    ctx = mp.get_context("fork")
    t0 = time.perf_counter()
    with ctx.Pool(args.workers, initializer=_init) as pool:
        pool.map(_jieba_chunk, chunks[:args.workers])  # workers have loaded jieba by now (fork copies the parent's)
        ready = time.perf_counter() - t0
        pool_s, par = best_of(lambda: [t for c in pool.map(_jieba_chunk, chunks) for t in c], args.repeats)
    # a cold pool (spawn: each worker loads jieba and the user dictionary itself), start-up included
    t0 = time.perf_counter()
    with mp.get_context("spawn").Pool(args.workers, initializer=_init) as pool:
        cold = [t for c in pool.map(_jieba_chunk, chunks) for t in c]
    cold_s = time.perf_counter() - t0

    same = sum(a == b for a, b in zip(base, par)) / len(base)
    same_cold = sum(a == b for a, b in zip(base, cold)) / len(base)
    print(f"{'jieba_tokens, serial (baseline)':48s} {mb / base_s:6.3f} MB/s  {len(texts) / base_s:7.0f} texts/s  ×1.00")
    print(f"{'bigram_tokens, serial':48s} {mb / big_s:6.3f} MB/s  {len(texts) / big_s:7.0f} texts/s  ×{base_s / big_s:.2f}")
    print(f"{f'jieba_tokens, fork pool of {args.workers} (warm)':48s} {mb / pool_s:6.3f} MB/s  {len(texts) / pool_s:7.0f} texts/s  "
          f"×{base_s / pool_s:.2f}  identical token lists {same:.2%}  (pool start {ready:.2f} s)")
    print(f"{f'jieba_tokens, spawn pool of {args.workers} incl. start-up':48s} {mb / cold_s:6.3f} MB/s  {len(texts) / cold_s:7.0f} texts/s  "
          f"×{base_s / cold_s:.2f}  identical token lists {same_cold:.2%}")


if __name__ == "__main__":
    main()
