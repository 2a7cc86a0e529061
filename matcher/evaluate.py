"""Retrieval metrics (nDCG@k, Recall@k, MRR@k, MAP@k, Acc@k) and the runner behind `ptm eval`."""
from __future__ import annotations

import csv
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path


Qrels = dict[str, dict[str, int]]  # query id → {doc id: grade > 0}


def dcg(gains: Sequence[float]) -> float:
    # Linear gain and log2 discount, as trec_eval and scikit-learn's ndcg_score compute it.
    return sum(g / math.log2(i + 2) for i, g in enumerate(gains))


def ndcg_at_k(ranking: Sequence[str], relevant: Mapping[str, int], k: int) -> float:
    ideal = dcg(sorted(relevant.values(), reverse=True)[:k])
    return dcg([relevant.get(d, 0) for d in ranking[:k]]) / ideal if ideal > 0 else 0.0


def recall_at_k(ranking: Sequence[str], relevant: Mapping[str, int], k: int) -> float:
    return len(set(ranking[:k]) & set(relevant)) / len(relevant) if relevant else 0.0


def mrr_at_k(ranking: Sequence[str], relevant: Mapping[str, int], k: int) -> float:
    return next((1.0 / r for r, d in enumerate(ranking[:k], 1) if d in relevant), 0.0)


def ap_at_k(ranking: Sequence[str], relevant: Mapping[str, int], k: int) -> float:
    hits, total = 0, 0.0
    for r, d in enumerate(ranking[:k], 1):
        if d in relevant:
            hits += 1
            total += hits / r
    return total / min(len(relevant), k) if relevant else 0.0


def accuracy_at_k(ranking: Sequence[str], relevant: Mapping[str, int], k: int) -> float:
    return 1.0 if set(ranking[:k]) & set(relevant) else 0.0


METRICS = {
    "ndcg@10": lambda r, q: ndcg_at_k(r, q, 10),
    "recall@10": lambda r, q: recall_at_k(r, q, 10),
    "recall@50": lambda r, q: recall_at_k(r, q, 50),
    "mrr@10": lambda r, q: mrr_at_k(r, q, 10),
    "map@100": lambda r, q: ap_at_k(r, q, 100),
    "acc@1": lambda r, q: accuracy_at_k(r, q, 1),
}


def evaluate_rankings(rankings: Mapping[str, Sequence[str]], qrels: Qrels) -> dict[str, float]:
    """Mean of each metric over the queries that have at least one relevant document."""
    judged = [q for q, rel in qrels.items() if rel]
    if not judged:
        raise ValueError("the qrels list no relevant (grade > 0) documents; nothing to evaluate")
    return {name: sum(fn(rankings.get(q, []), qrels[q]) for q in judged) / len(judged) for name, fn in METRICS.items()}


_HEADER_WORDS = {"grade", "relevance", "label", "score"}


def read_qrels(path: Path) -> Qrels:
    """`demand_id<TAB>patent_id<TAB>grade`, an optional header; grade 0 rows mark judged non-relevant pairs."""
    qrels: Qrels = {}
    with open(path, encoding="utf-8-sig", newline="") as fh:
        for n, row in enumerate(csv.reader(fh, delimiter="\t"), 1):
            if not row or row[0].startswith("#") or (n == 1 and row[-1].strip().lower() in _HEADER_WORDS):
                continue
            if len(row) != 3:
                raise ValueError(f"{path} line {n}: expected demand_id<TAB>patent_id<TAB>grade, got {row!r}")
            qid, did, grade = row[0].strip(), row[1].strip(), int(row[2])
            qrels.setdefault(qid, {})
            if grade > 0:
                qrels[qid][did] = grade
    return qrels


def read_queries(path: Path) -> dict[str, str]:
    """Demand id → title。text, validated as `ptm match --demands` validates its input."""
    from api.cli import read_demand_lines

    return dict(read_demand_lines(path, 100_000))


def read_splits(path: Path) -> dict[str, str]:
    """Demand id → its `split` field ("tune" / "test"), for files that carry one."""
    out = {}
    with open(path, encoding="utf-8-sig") as fh:
        for line in fh:
            if line.strip():
                obj = json.loads(line)
                if obj.get("split"):
                    out[str(obj["id"])] = str(obj["split"])
    return out
