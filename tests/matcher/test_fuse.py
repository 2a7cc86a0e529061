"""Rank fusion: reciprocal rank fusion against hand-computed values, weights, and the method dispatcher."""
from __future__ import annotations

import numpy as np
import pytest

from matcher.fuse import fuse, rrf
from matcher.retrieve import Ranked


def R(*ids: int) -> Ranked:
    return Ranked(np.array(ids, dtype=np.int64), np.linspace(1.0, 0.5, len(ids)).astype(np.float32))


def test_rrf_matches_the_formula():
    scores = rrf({"dense": R(1, 2, 3), "bm25": R(3, 1)}, {"dense": 1.0, "bm25": 1.0}, k=60)
    assert scores[1] == pytest.approx(1 / 61 + 1 / 62)
    assert scores[3] == pytest.approx(1 / 63 + 1 / 61)
    assert scores[2] == pytest.approx(1 / 62)


def test_fuse_orders_and_records_each_retrievers_rank():
    out = fuse({"dense": R(1, 2, 3), "bm25": R(3, 1)}, {"dense": 1.0, "bm25": 1.0}, top=3)
    assert [f.int_id for f in out] == [1, 3, 2]
    assert out[0].ranks == {"dense": 1, "bm25": 2}
    assert out[2].ranks == {"dense": 2}


def test_weights_shift_the_ranking():
    lists = {"dense": R(1, 2), "bm25": R(2, 1)}
    assert fuse(lists, {"dense": 2.0, "bm25": 1.0}, top=1)[0].int_id == 1
    assert fuse(lists, {"dense": 1.0, "bm25": 2.0}, top=1)[0].int_id == 2


def test_a_zero_weight_list_only_breaks_ties():
    out = fuse({"dense": R(5, 6), "bm25": R(6, 5)}, {"dense": 1.0, "bm25": 0.0}, top=2)
    assert [f.int_id for f in out] == [5, 6]


def test_score_fusion_normalises_each_list():
    out = fuse({"a": Ranked(np.array([1, 2]), np.array([10.0, 0.0])), "b": Ranked(np.array([2, 1]), np.array([0.9, 0.8]))},
               {"a": 1.0, "b": 1.0}, top=2, method="score")
    assert [f.int_id for f in out] == [1, 2] and out[0].score == pytest.approx(1.0)


def test_unknown_method_lists_the_valid_ones():
    with pytest.raises(ValueError, match="rrf, score"):
        fuse({}, {}, top=1, method="borda")


def test_empty_lists_give_no_results():
    assert fuse({"dense": Ranked.empty(), "bm25": Ranked.empty()}, {}, top=5) == []


def test_a_single_list_keeps_its_own_scores():
    out = fuse({"dense": Ranked(np.array([4, 2]), np.array([0.91, 0.88], dtype=np.float32))}, {"dense": 1.0}, top=2)
    assert [(f.int_id, round(f.score, 2)) for f in out] == [(4, 0.91), (2, 0.88)]
