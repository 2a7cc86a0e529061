"""The engine with the real bundled encoder on 80 real demo patents: ranking, both directions, stale state."""
from __future__ import annotations

import json
from dataclasses import replace

import pytest

from indexer.records import Demand
from indexer.settings import DATASETS_DIR
from matcher.engine import Engine, MatchError, NotFoundError

QUICK = DATASETS_DIR / "eval" / "quick"


def quick_targets(corpus_ids: set[str]) -> list[tuple[str, str]]:
    """(demand text, target patent id) for the hand-written demands whose grade-2 patent is in the corpus."""
    rows = [json.loads(line) for line in open(QUICK / "demands.jsonl", encoding="utf-8")]
    texts = {r["id"]: f"{r['title']}。{r['text']}" for r in rows}
    rows = [line.split("\t") for line in (QUICK / "qrels.tsv").read_text(encoding="utf-8").splitlines()[1:]]
    return [(texts[d], p) for d, p, g in rows if g == "2" and p in corpus_ids]


@pytest.fixture(scope="module")
def engine(indexed_settings):
    return Engine(indexed_settings)


# BM25 alone misses paraphrases (摊晾 vs the patent's 摊青) and gets a looser bound: that gap is why hybrid exists.
@pytest.mark.parametrize("method, depth", [("hybrid", 5), ("dense", 3), ("bm25", 10)])
def test_written_demands_find_their_patent(engine, method, depth):
    ids = {p.id for p in engine.store.list("patents", limit=1000)}
    cases = quick_targets(ids)
    assert len(cases) >= 4
    for text, target in cases:
        ranked = [m.id for m in engine.match_text(text, depth, method)]
        assert target in ranked[:depth], (method, text[:30], ranked)


def test_results_explain_themselves(engine):
    res = engine.match_text("想找一种可降解的育苗钵，移栽时不用脱钵", 10)
    assert [m.rank for m in res] == list(range(1, 11))
    assert all(a.score >= b.score for a, b in zip(res, res[1:]))
    top = res[0]
    assert top.dense_rank is not None and top.bm25_rank is not None and top.matched_terms
    assert all(len(t) > 1 for t in top.matched_terms)


def test_reverse_direction_is_consistent_with_forward(engine):
    demand = engine.store.list("demands", limit=1)[0]
    best = engine.match_demand(demand.id, 1)[0]
    reverse = [m.id for m in engine.match_patent(best.id, 12)]
    assert demand.id in reverse


def test_batch_equals_one_by_one(engine):
    texts = ["污泥膨胀怎么快速处理", "口罩消毒烘干盒"]
    batch = engine.match_texts(texts, 5)
    single = [engine.match_text(t, 5) for t in texts]
    assert [[m.id for m in r] for r in batch] == [[m.id for m in r] for r in single]


def test_unknown_and_stale_records_are_explained(writable_indexed_settings):
    engine = Engine(writable_indexed_settings)
    with pytest.raises(NotFoundError, match="no patent with id 'nope'"):
        engine.match_patent("nope")
    demand = engine.store.list("demands", limit=1)[0]
    engine.store.upsert("demands", [Demand(id=demand.id, title=demand.title, text=demand.text + "补充：要求耐高温。")])
    with pytest.raises(MatchError, match="ptm index"):
        engine.match_demand(demand.id)


def test_an_index_built_with_another_model_is_refused(indexed_settings):
    other = Engine(replace(indexed_settings, query_prefix="查询："))
    with pytest.raises(MatchError, match="ptm index"):
        other.match_patent(other.store.list("patents", limit=1)[0].id)


def test_k_out_of_range(engine):
    with pytest.raises(MatchError, match="between 1 and"):
        engine.match_text("防爆电池", 0)


def test_value_prior_moves_valuable_patents_up_and_is_off_by_default(writable_indexed_settings):
    engine = Engine(writable_indexed_settings)
    text = "提高钢材表面的耐磨性能"
    plain = engine.match_text(text, 10)
    assert all(m.value_score is not None for m in plain)  # shown next to each patent
    # Make the 10th candidate the most valuable patent in the store, then turn the prior on.
    last = plain[-1].id
    with engine.store.transaction() as con:
        con.execute("UPDATE patents SET value_score = CASE WHEN id=? THEN 100 ELSE 0 END", (last,))
    assert [m.id for m in engine.match_text(text, 10)] == [m.id for m in plain]  # prior 0: ranking unchanged
    boosted = Engine(replace(writable_indexed_settings, value_prior=5.0)).match_text(text, 10)
    assert boosted[0].id == last and boosted[0].value_score == 100
