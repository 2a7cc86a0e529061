"""`ptm eval` runner end to end on the small real corpus: every variant scored, splits, calibration, JSON."""
from __future__ import annotations

import json

from api.cli import main
from indexer.settings import DATASETS_DIR
from matcher.experiment import VARIANTS, Variant, run_eval
from tests.conftest import write_jsonl

QUICK = DATASETS_DIR / "eval" / "quick"


def test_runner_scores_each_variant_per_split(tmp_path, settings, small_corpus):
    rows = [json.loads(line) for line in open(QUICK / "demands.jsonl", encoding="utf-8")]
    for i, r in enumerate(rows):
        r["split"] = "tune" if i % 2 else "test"
    queries = write_jsonl(tmp_path / "q.jsonl", rows)
    variants = (Variant("bm25 jieba", "bm25", {"tokenizer": "jieba"}), Variant("hybrid"), Variant("+prf", prf_docs=2),
                Variant("hybrid jieba", overrides={"tokenizer": "jieba", "fusion": "rrf"}))
    res = run_eval(settings, small_corpus[0], queries, QUICK / "qrels.tsv", variants)
    assert res["splits"] == {"all": 42, "test": 21, "tune": 21}
    assert set(res["variants"]) == {v.name for v in variants}
    for per_split in res["variants"].values():
        for scores in per_split.values():
            assert all(0.0 <= x <= 1.0 for x in scores.values())
    cal = res["calibration"]
    assert 0 < cal["medium_threshold"] <= cal["strong_threshold"] < 1


def test_every_lever_has_a_distinct_name():
    assert len({v.name for v in VARIANTS}) == len(VARIANTS)


def test_cli_writes_json(tmp_path, capsys, small_corpus):
    out = tmp_path / "r.json"
    code = main(["--home", str(tmp_path / "ws"), "eval", "--corpus", str(small_corpus[0]), "--queries",
                 str(QUICK / "demands.jsonl"), "--qrels", str(QUICK / "qrels.tsv"), "--json", str(out)])
    assert code == 0 and "hybrid" in capsys.readouterr().out
    assert json.loads(out.read_text(encoding="utf-8"))["queries"] == 42
