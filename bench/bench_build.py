"""Index-build benchmark: `ptm index` end to end (tokenise + embed + add) against a plain encode loop.

Corpus (fixed, seed 0): every distinct real title + abstract we have — the dev patents (= bdci2022_fewshot_patent,
3,139), kppatent_zh (2,962), csl_benchmark's 1,000 Chinese paper abstracts (../shared/data) — topped up to --n
with recombined real texts (title of one patent + abstract of another: real wording and real length, new
text), shuffled; `title。abstract` exactly as the indexer builds a passage. --quick takes the first 1,000.

In one run, on the same texts and the same model folder:
1. baseline: the plain script — `SentenceTransformer.encode(batch)` per batch of 32 in file order, fp32;
2. `pipeline.sync_index` into a fresh workspace (cold embedding cache), called as `ptm index` calls it (with a
   progress callback), then `sync_index(rebuild=True)` with the cache warm;
3. agreement of the indexed vectors with the baseline's (cosine), and the tokenisation share of the build;
4. with --candidates M: encode-only speed-ups on the first M texts (sorting, bf16, int8, truncation, batch),
   each with its cosine to fp32.
Run under `nice -n 10`:
    .venv/bin/python bench/bench_build.py [--quick] [--n 10000] [--candidates 256]
"""
from __future__ import annotations

import argparse
import copy
import json
import random
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import PATENT_FILES, RESULTS, read_jsonl  # noqa: E402

from indexer.settings import REPO_ROOT, Settings  # noqa: E402

CSL_FILE = REPO_ROOT.parent / "shared" / "data" / "csl_benchmark" / "derived_csl_dev.jsonl"
PREFIX = "passage: "
BASELINE_BATCH = 32


def corpus(n: int, seed: int = 0) -> list[tuple[str, str]]:
    """n distinct (title, abstract) pairs: all real ones first, then recombinations; shuffled with `seed`."""
    real = [(r.get("title", ""), r.get("abstract", "")) for p in PATENT_FILES for r in read_jsonl(p)]
    patents = list(dict.fromkeys(real))
    if CSL_FILE.exists():
        real += [(r["title"], r["abstract"]) for r in read_jsonl(CSL_FILE)]
    pairs = list(dict.fromkeys(real))
    seen = set(pairs)
    rng = random.Random(seed)
    while len(pairs) < n:  # a title of one patent with the abstract of another: a new text of a real length
        a, b = rng.sample(patents, 2)
        if (a[0], b[1]) not in seen:
            seen.add((a[0], b[1]))
            pairs.append((a[0], b[1]))
    rng.shuffle(pairs)
    return pairs[:n]


def passages(pairs: list[tuple[str, str]]) -> list[str]:
    return [f"{title}。{abstract}" for title, abstract in pairs]


def timed(fn: Callable[[], Any]) -> tuple[float, float, Any]:
    """(wall seconds, CPU seconds of this process, result). On a shared machine the CPU time is the steadier
    measure: wall time also counts the time other processes held the cores."""
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return time.perf_counter() - t0, time.process_time() - c0, out


def plain_loop(model: Any, texts: list[str], batch: int = BASELINE_BATCH) -> np.ndarray:
    """The baseline: what a plain script does — one encode call per batch, in file order."""
    return np.vstack([model.encode([PREFIX + t for t in texts[i : i + batch]], batch_size=batch,
                                   normalize_embeddings=True) for i in range(0, len(texts), batch)])


def sorted_encode(model: Any, texts: list[str], batch: int = BASELINE_BATCH,
                  context: AbstractContextManager | None = None) -> np.ndarray:
    """One encode call over texts sorted longest first (as indexer.encoder does), order restored."""
    import torch

    order = np.argsort([-len(t) for t in texts], kind="stable")
    with context or nullcontext(), torch.inference_mode():
        vecs = model.encode([PREFIX + texts[i] for i in order], batch_size=batch, normalize_embeddings=True,
                            convert_to_numpy=True)
    vecs = np.asarray(vecs, dtype=np.float32)
    out = np.empty_like(vecs)
    out[order] = vecs / np.linalg.norm(vecs, axis=1, keepdims=True)
    return out


def cosines(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    c = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    return float(c.mean()), float(c.min())


def padded_tokens(model: Any, texts: list[str], batch: int, chunk: int | None) -> dict[str, int]:
    """Tokens the model processes (padding included) for file-order batches, length-sorted chunks of `chunk`
    texts (None: one global sort), and without padding — a load-independent view of the sorting gain."""
    lengths = np.asarray([len(ids) for ids in model.tokenizer([PREFIX + t for t in texts], truncation=True,
                                                              max_length=model.max_seq_length)["input_ids"]])

    def cost(ls: np.ndarray) -> int:
        return int(sum(len(ls[i : i + batch]) * ls[i : i + batch].max() for i in range(0, len(ls), batch)))

    step = chunk or len(texts)
    by_chunk = sum(cost(np.sort(lengths[i : i + step])[::-1]) for i in range(0, len(lengths), step))
    return {"file_order": cost(lengths), "sorted": by_chunk, "useful": int(lengths.sum()),
            "mean_tokens": float(lengths.mean()), "max_tokens": int(lengths.max())}


def build(pairs: list[tuple[str, str]], home: Path) -> dict[str, Any]:
    """Baseline loop, then ingest + cold `ptm index`, then a warm re-index; all in one workspace."""
    from indexer import index as index_mod
    from indexer.encoder import EmbeddingCache, cache_key_for, load_encoder
    from indexer.pipeline import ingest_file, sync_index
    from indexer.text import bigram_tokens, tokenize

    texts = passages(pairs)
    n = len(texts)
    settings = Settings.from_env(home=home)
    fp32 = load_encoder(Settings.from_env(home=home, precision="fp32"))  # model loads are not timed
    ours = load_encoder(settings)
    for enc in (fp32, ours):
        enc.encode_passages(["预热"])
    print(f"{n} texts; ours: {ours!r}, cache key {ours.cache_key!r}", flush=True)

    base_s, base_cpu, base_vecs = timed(lambda: plain_loop(fp32.model, texts))
    print(f"baseline plain loop: {n / base_s:7.2f} patents/s ({base_s:.0f} s, CPU {base_cpu:.0f} s)", flush=True)

    src = home.parent / "patents.jsonl"
    src.write_text("".join(json.dumps({"id": f"bench{k:05d}", "title": t, "abstract": a}, ensure_ascii=False) + "\n"
                           for k, (t, a) in enumerate(pairs)), encoding="utf-8")
    ingest_s, _, _ = timed(lambda: ingest_file(settings, "patents", src))
    calls: list[int] = []
    progress = lambda kind, done, total: calls.append(done)  # noqa: E731 - as `ptm index` passes one
    cold_s, cold_cpu, _ = timed(lambda: sync_index(settings, kinds=("patents",), progress=progress))
    print(f"ptm index, cold cache: {n / cold_s:7.2f} patents/s ({cold_s:.0f} s, CPU {cold_cpu:.0f} s), "
          f"×{base_s / cold_s:.2f} (CPU ×{base_cpu / cold_cpu:.2f})", flush=True)
    warm_s, warm_cpu, _ = timed(lambda: sync_index(settings, kinds=("patents",), rebuild=True, progress=progress))

    cached = EmbeddingCache(settings.embedding_cache).get_many(cache_key_for(settings), "passage",
                                                               [PREFIX + t for t in texts], dim=ours.dim)
    # The reader normalises some texts (whitespace, full-width forms) before they reach the model; compare
    # the rest, whose model input is the baseline's exactly.
    same = sorted(cached)
    snap = index_mod.load_snapshot(settings.index_dir, "patents")
    tok_s, _, _ = timed(lambda: [(bigram_tokens(t), tokenize(t)) for t in texts])  # BM25 bigrams + jieba words
    return {
        "n": n, "precision": "bf16" if ours.bf16 else "fp32", "baseline_s": base_s, "ingest_s": ingest_s,
        "cold_s": cold_s, "warm_s": warm_s, "baseline_cpu": base_cpu, "cold_cpu": cold_cpu, "warm_cpu": warm_cpu, "tokenise_s": tok_s, "indexed": len(snap.int_ids),
        "cos_to_baseline": cosines(np.stack([cached[i] for i in same]), base_vecs[same]), "compared": len(same),
        "padding": {"chunks_of_256": padded_tokens(fp32.model, texts, BASELINE_BATCH, 256),
                    "global": padded_tokens(fp32.model, texts, BASELINE_BATCH, None)},
    }


def candidates(texts: list[str], home: Path) -> list[dict[str, Any]]:
    """Encode-only variants on the same texts; speed against the plain loop, vectors against fp32 sorted."""
    import torch

    from indexer.encoder import load_encoder

    fp32 = load_encoder(Settings.from_env(home=home, precision="fp32")).model
    bf16 = load_encoder(Settings.from_env(home=home, precision="bf16")).model
    int8 = torch.ao.quantization.quantize_dynamic(copy.deepcopy(fp32), {torch.nn.Linear}, dtype=torch.qint8)
    autocast = lambda: torch.autocast("cpu", dtype=torch.bfloat16)  # noqa: E731

    def truncated(model: Any, length: int) -> np.ndarray:
        old, model.max_seq_length = model.max_seq_length, length
        try:
            return sorted_encode(model, texts)
        finally:
            model.max_seq_length = old

    variants: list[tuple[str, Callable[[], np.ndarray]]] = [
        ("plain loop, fp32 (baseline)", lambda: plain_loop(fp32, texts)),
        ("global length sort, fp32", lambda: sorted_encode(fp32, texts)),
        ("sort + bf16 autocast (before)", lambda: sorted_encode(fp32, texts, context=autocast())),
        ("sort + bf16 weights (now)", lambda: sorted_encode(bf16, texts)),
        ("sort + int8 dynamic (Linear)", lambda: sorted_encode(int8, texts)),
        ("sort + bf16 + max_seq_length 256", lambda: truncated(bf16, 256)),
        ("sort + bf16 + max_seq_length 128", lambda: truncated(bf16, 128)),
        ("sort + bf16, batch 16", lambda: sorted_encode(bf16, texts, 16)),
        ("sort + bf16, batch 64", lambda: sorted_encode(bf16, texts, 64)),
    ]
    rows, ref, base = [], None, None
    for name, fn in variants:
        seconds, cpu, vecs = timed(fn)
        ref = vecs if name.startswith("global") else ref
        base = (seconds, cpu) if base is None else base
        rows.append({"variant": name, "n": len(texts), "per_s": len(texts) / seconds, "ratio": base[0] / seconds,
                     "cpu_ratio": base[1] / cpu, "vecs": vecs})
        print(f"  {name:<34} {len(texts) / seconds:7.2f} texts/s  ×{base[0] / seconds:.2f}  CPU ×{base[1] / cpu:.2f}",
              flush=True)
    for row in rows:
        row["cos_mean"], row["cos_min"] = cosines(row.pop("vecs"), ref)
    return rows


def importable(pairs: list[tuple[str, str]], folder: Path) -> list[tuple[str, str]]:
    """The pairs `ptm ingest` accepts (it refuses e.g. an abstract with no Chinese in it), so the baseline and the
    build embed the same texts."""
    from indexer.readers import read_file

    src = folder / "check.jsonl"
    src.write_text("".join(json.dumps({"id": f"c{k}", "title": t, "abstract": a}, ensure_ascii=False) + "\n"
                           for k, (t, a) in enumerate(pairs)), encoding="utf-8")
    refused = {r.row - 1 for r in read_file(src, "patents", Settings()).rejected}
    return [pair for k, pair in enumerate(pairs) if k not in refused]


def report(res: dict[str, Any], rows: list[dict[str, Any]]) -> None:
    if "baseline_s" in res:
        report_build(res)
    if rows:
        print(f"\n{'candidate (encode only, ' + str(rows[0]['n']) + ' texts)':<40}{'texts/s':>9}{'vs plain':>10}"
              f"{'CPU vs':>8}{'cos mean':>10}{'cos min':>10}")
        for r in rows:
            print(f"{r['variant']:<40}{r['per_s']:9.2f}{r['ratio']:9.2f}x{r['cpu_ratio']:7.2f}x"
                  f"{r['cos_mean']:10.5f}{r['cos_min']:10.5f}")


def report_build(res: dict[str, Any]) -> None:
    n, base = res["n"], res["baseline_s"]
    print(f"\n{n} texts, 2 cores, precision {res['precision']}; model loads not timed")
    cpu = res["baseline_cpu"]
    print(f"baseline plain ST loop (fp32, batch 32, file order): {n / base:7.2f} patents/s  (CPU {cpu:.0f} s)")
    print(f"ptm index, cold embedding cache (tokenise+embed+add): {n / res['cold_s']:7.2f} patents/s  "
          f"×{base / res['cold_s']:.2f}  CPU ×{cpu / res['cold_cpu']:.2f}  (+ ingest {res['ingest_s']:.1f} s, not in it)")
    print(f"ptm index --rebuild, embedding cache warm           : {n / res['warm_s']:7.1f} patents/s  "
          f"×{base / res['warm_s']:.1f}  CPU ×{cpu / res['warm_cpu']:.1f}")
    print(f"indexed vectors vs baseline ({res['compared']} texts the reader left unchanged): "
          f"cosine mean {res['cos_to_baseline'][0]:.6f} min {res['cos_to_baseline'][1]:.6f}")
    print(f"tokenisation (bigrams + jieba words) alone: {res['tokenise_s']:.1f} s = "
          f"{100 * res['tokenise_s'] / res['cold_s']:.1f} % of the cold build")
    for name, pad in res["padding"].items():
        print(f"tokens through the model, {name:>13}: file order {pad['file_order']:,} / sorted {pad['sorted']:,} "
              f"(×{pad['file_order'] / pad['sorted']:.2f} fewer) / unpadded {pad['useful']:,}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--quick", action="store_true", help="1,000 texts")
    ap.add_argument("--candidates", type=int, default=0, help="also time encode-only variants on this many texts")
    ap.add_argument("--skip-build", action="store_true", help="only the candidates")
    args = ap.parse_args()
    n = 1_000 if args.quick else args.n
    with tempfile.TemporaryDirectory() as tmp:
        # --quick is a prefix of the full corpus; texts ingest refuses (1 of 10,000) are dropped before any timing
        pairs = importable(corpus(max(n, args.candidates, 10_000)), Path(tmp))
        res = {} if args.skip_build else build(pairs[:n], Path(tmp) / "ws")
        rows = candidates(passages(pairs[: args.candidates]), Path(tmp) / "ws") if args.candidates else []
    report(res, rows)
    RESULTS.mkdir(exist_ok=True)
    name = f"build-{0 if args.skip_build else n}-c{args.candidates}.json"
    (RESULTS / name).write_text(json.dumps({"build": res, "candidates": rows}, indent=1), encoding="utf-8")

if __name__ == "__main__":
    main()
