"""Metrics checked against scikit-learn's ndcg_score and hand-computed values (the bm25s/BEIR convention)."""
from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import ndcg_score

from matcher.evaluate import ap_at_k, evaluate_rankings, mrr_at_k, ndcg_at_k, read_qrels, recall_at_k


@pytest.mark.parametrize("seed", range(20))
def test_ndcg_agrees_with_scikit_learn(seed):
    rng = np.random.default_rng(seed)
    docs = [f"d{i}" for i in range(30)]
    grades = {d: int(g) for d, g in zip(docs, rng.integers(0, 3, size=30)) if g > 0}
    if not grades:
        grades = {"d0": 1}
    scores = rng.permutation(30).astype(float)  # distinct scores: no tie handling differences
    ranking = [docs[i] for i in np.argsort(-scores)]
    ref = ndcg_score([[grades.get(d, 0) for d in docs]], [scores], k=10)
    assert ndcg_at_k(ranking, grades, 10) == pytest.approx(ref, abs=1e-12)


def test_hand_computed_values():
    ranking = ["a", "x", "b", "y", "c"]
    rel = {"a": 2, "b": 1, "c": 1, "z": 1}
    dcg = 2 + 1 / math.log2(4) + 1 / math.log2(6)
    idcg = 2 + 1 / math.log2(3) + 1 / math.log2(4) + 1 / math.log2(5)
    assert ndcg_at_k(ranking, rel, 10) == pytest.approx(dcg / idcg)
    assert recall_at_k(ranking, rel, 3) == pytest.approx(2 / 4)
    assert mrr_at_k(["x", "b"], rel, 10) == pytest.approx(0.5)
    assert mrr_at_k(["x", "y"], rel, 10) == 0.0
    assert ap_at_k(ranking, rel, 100) == pytest.approx((1 + 2 / 3 + 3 / 5) / 4)


def test_queries_without_relevant_documents_are_left_out_of_the_mean():
    res = evaluate_rankings({"q1": ["a"], "q2": ["b"]}, {"q1": {"a": 1}, "q2": {}})
    assert res["ndcg@10"] == 1.0


def test_read_qrels_with_header_and_zero_grades(tmp_path):
    p = tmp_path / "q.tsv"
    p.write_text("demand_id\tpatent_id\tgrade\nQ1\tP1\t2\nQ1\tP2\t0\nQ2\tP9\t0\n", encoding="utf-8")
    assert read_qrels(p) == {"Q1": {"P1": 2}, "Q2": {}}


def test_malformed_qrels_line_is_named(tmp_path):
    p = tmp_path / "q.tsv"
    p.write_text("Q1\tP1\n", encoding="utf-8")
    with pytest.raises(ValueError, match="line 1"):
        read_qrels(p)
