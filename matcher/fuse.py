"""Fusion of ranked lists from several retrievers into one ranking (reciprocal rank fusion or score sum)."""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from matcher.retrieve import Ranked

FusionMethod = Literal["rrf", "score"]


@dataclass
class Fused:
    int_id: int
    score: float
    ranks: dict[str, int] = field(default_factory=dict)  # retriever → 1-based rank (absent: not retrieved)
    scores: dict[str, float] = field(default_factory=dict)  # retriever → raw score


def rrf(lists: Mapping[str, Ranked], weights: Mapping[str, float], k: int = 60) -> dict[int, float]:
    """Weighted reciprocal rank fusion (Cormack et al. 2009): sum of w / (k + rank)."""
    fused: dict[int, float] = {}
    for name, ranked in lists.items():
        w = weights.get(name, 1.0)
        for rank, doc in enumerate(ranked.ids.tolist(), start=1):
            fused[doc] = fused.get(doc, 0.0) + w / (k + rank)
    return fused


def score_sum(lists: Mapping[str, Ranked], weights: Mapping[str, float], k: int = 60) -> dict[int, float]:
    """Weighted sum of min-max normalised scores (CombSUM); a list's missing docs count as 0."""
    fused: dict[int, float] = {}
    for name, ranked in lists.items():
        if len(ranked) == 0:
            continue
        s = ranked.scores.astype(np.float64)
        span = s.max() - s.min()
        norm = (s - s.min()) / span if span > 0 else np.ones_like(s)
        w = weights.get(name, 1.0)
        for doc, v in zip(ranked.ids.tolist(), norm.tolist()):
            fused[doc] = fused.get(doc, 0.0) + w * v
    return fused


FUSERS: dict[str, Callable[..., dict[int, float]]] = {"rrf": rrf, "score": score_sum}


def fuse(lists: Mapping[str, Ranked], weights: Mapping[str, float], top: int,
         method: FusionMethod = "rrf", k: int = 60) -> list[Fused]:
    """Fuse, keep the `top` best, and record each retriever's rank and score for the explanation."""
    if method not in FUSERS:
        raise ValueError(f"fusion method must be one of {', '.join(sorted(FUSERS))}, not {method!r}")
    if len(lists) == 1:  # nothing to fuse: keep the retriever's own scores (cosine, BM25), which mean something
        (only,) = lists.values()
        fused = dict(zip(only.ids.tolist(), only.scores.astype(float).tolist()))
    else:
        fused = FUSERS[method](lists, weights, k)
    # Ties broken by int_id so results are deterministic across runs.
    best = sorted(fused.items(), key=lambda kv: (-kv[1], kv[0]))[:top]
    where = {name: {d: (r, s) for r, (d, s) in enumerate(zip(rk.ids.tolist(), rk.scores.tolist()), 1)}
             for name, rk in lists.items()}
    out = []
    for doc, score in best:
        item = Fused(doc, score)
        for name, pos in where.items():
            if doc in pos:
                item.ranks[name], item.scores[name] = pos[doc]
        out.append(item)
    return out
