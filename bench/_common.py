"""Shared helpers for the bench/ scripts: real-data loading, the embedding cache, percentiles, memory."""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from indexer.settings import DATASETS_DIR

RESULTS = Path(__file__).resolve().parent / "results"
PATENT_FILES = [DATASETS_DIR / "eval" / "dev" / "patents.jsonl", DATASETS_DIR / "eval" / "proxy" / "kppatent" / "patents.jsonl"]
DEMANDS_FILE = DATASETS_DIR / "eval" / "dev" / "demands.jsonl"


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in open(path, encoding="utf-8") if line.strip()]


def patent_texts() -> list[str]:
    """title。abstract, exactly as indexer.records builds a passage, for the ~6,100 real abstracts."""
    out = []
    for p in PATENT_FILES:
        out += [f"{r.get('title', '')}。{r.get('abstract', '')}" for r in read_jsonl(p)]
    return out


def demand_texts() -> list[str]:
    return [r["text"] for r in read_jsonl(DEMANDS_FILE)]


def real_vectors() -> tuple[np.ndarray, np.ndarray]:
    """(passages, demands) embedded once with the project's encoder, cached in bench/results/."""
    RESULTS.mkdir(exist_ok=True)
    pf, qf = RESULTS / "real_passages.npy", RESULTS / "real_demands.npy"
    if not (pf.exists() and qf.exists()):
        from indexer.encoder import load_encoder
        from indexer.settings import Settings

        enc = load_encoder(Settings.from_env())
        t0 = time.perf_counter()
        p = enc.encode_passages(patent_texts())
        q = enc.encode_queries(demand_texts())
        print(f"encoded {len(p)} passages + {len(q)} demands in {time.perf_counter() - t0:.0f} s", flush=True)
        np.save(pf, p.astype(np.float32))
        np.save(qf, q.astype(np.float32))
    return np.load(pf), np.load(qf)


def normalise(x: np.ndarray) -> np.ndarray:
    x /= np.linalg.norm(x, axis=1, keepdims=True) + 1e-12
    return x


def synth_vectors(base: np.ndarray, n: int, seed: int, sigma: float = 0.01, chunk: int = 200_000) -> np.ndarray:
    """n vectors that look like the real ones (sigma 0.01 reproduces the real corpus's statistics: mean pairwise
    cosine 0.870 vs 0.865 real, mean nearest-neighbour cosine 0.928 vs 0.932 real, 10th 0.904 vs 0.914): real vectors first, then random convex mixtures of 2 real
    vectors (weight ~ U(0.5, 1) on the first) plus small Gaussian noise, re-normalised."""
    rng = np.random.default_rng(seed)
    d = base.shape[1]
    out = np.empty((n, d), dtype=np.float32)
    m = min(n, len(base))
    out[:m] = base[:m]
    for s in range(m, n, chunk):
        e = min(n, s + chunk)
        k = e - s
        a = base[rng.integers(0, len(base), k)]
        b = base[rng.integers(0, len(base), k)]
        w = rng.uniform(0.5, 1.0, (k, 1)).astype(np.float32)
        v = w * a + (1 - w) * b + rng.normal(0, sigma, (k, d)).astype(np.float32)
        out[s:e] = normalise(v)
    return out


def perturb(q: np.ndarray, n: int, seed: int, sigma: float = 0.01) -> np.ndarray:
    rng = np.random.default_rng(seed)
    v = q[rng.integers(0, len(q), n)] + rng.normal(0, sigma, (n, q.shape[1])).astype(np.float32)
    return normalise(v.astype(np.float32))


def pct(xs, p: float) -> float:
    """Percentile in milliseconds of a list of seconds."""
    return float(np.percentile(np.asarray(xs) * 1000, p))


def rss_mb() -> tuple[float, float]:
    """(VmRSS, VmHWM) of this process in MB, from /proc/self/status."""
    vals = {}
    for line in open("/proc/self/status"):
        if line.startswith(("VmRSS:", "VmHWM:")):
            k, v = line.split(":")
            vals[k] = int(v.split()[0]) / 1024
    return vals.get("VmRSS", 0.0), vals.get("VmHWM", 0.0)


if __name__ == "__main__":
    p, q = real_vectors()
    print(p.shape, q.shape, float(np.linalg.norm(p, axis=1).mean()))


def best_of(fn, repeats: int) -> tuple[float, object]:
    """Fastest of `repeats` timed calls (seconds) and the last result: the least disturbed by other load."""
    best, out = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out
