"""matcher.retrieve.top_k_rows against a full sort: the sampled lower bound must never drop a top-k row."""
from __future__ import annotations

import numpy as np
import pytest

from matcher.retrieve import TOP_K_SAMPLE, top_k_rows

LONG = 5 * TOP_K_SAMPLE  # past the length where the sampled bound is used


def reference(scores: np.ndarray, k: int) -> np.ndarray:
    return np.argsort(-scores, kind="stable")[:k]


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("k", [1, 10, 300, TOP_K_SAMPLE // 8])
def test_distinct_scores_give_the_reference_rows(seed: int, k: int) -> None:
    rng = np.random.default_rng(seed)
    scores = rng.permutation(LONG).astype(np.float32)  # distinct and exact in float32 (< 2**24)
    scores[rng.choice(LONG, LONG // 2, replace=False)] = 0.0  # BM25: most documents share no query token
    np.testing.assert_array_equal(top_k_rows(scores, k), reference(scores, k))


@pytest.mark.parametrize("layout", ["best_last", "sample_all_high", "ties", "short"])
def test_adversarial_layouts_keep_the_reference_scores(layout: str) -> None:
    rng = np.random.default_rng(7)
    n = 1_000 if layout == "short" else LONG
    scores = rng.random(n).astype(np.float32)
    if layout == "best_last":  # every top row lies outside the sample
        scores[-500:] += 10.0
    elif layout == "sample_all_high":  # the sample's bound is above most of the array
        scores[:TOP_K_SAMPLE] += 5.0
    elif layout == "ties":
        scores = np.round(scores * 20).astype(np.float32)
    for k in (1, 10, 300, min(n, 5_000)):
        got = top_k_rows(scores, k)
        want = reference(scores, k)
        assert len(got) == k and len(set(got.tolist())) == k
        np.testing.assert_array_equal(scores[got], scores[want])  # same scores, best first (ties may swap rows)
