"""Tests for matcher/sessions/outcomes.py: totals, grouped reports and the ranking evaluation from outcomes."""
from __future__ import annotations

from datetime import date
from itertools import count

import pytest

from indexer.ledger import STAGES, Deal
from indexer.records import Patent
from matcher.sessions.outcomes import (GROUPINGS, PatentMeta, current_ranks, evaluate_ranking, patent_meta,
                                       period_key, rank_metrics, report, totals)

_ids = count(1)


def _deal(stage: str, *, patent: str = "P1", kind: str | None = None, amount: float | None = None,
          signed: date | None = None, rank: int | None = None, session: int | None = None,
          demand: str | None = None, reached: str | None = None) -> Deal:
    """A deal at `stage`; stage_dates holds every forward stage up to `reached` (default: `stage`)."""
    top = reached or stage
    dates = {s: date(2026, 1, 1) for s in STAGES[: STAGES.index(top) + 1]} if top in STAGES else {}
    if signed and "签约" in dates:
        dates["签约"] = signed
    if stage == "终止":
        dates["终止"] = date(2026, 9, 1)
    i = next(_ids)
    return Deal(id=i, patent_id=patent, enterprise=f"E{i}", demand_id=demand, session_id=session, stage=stage,
                kind=kind, amount_wan=amount, engine_rank=rank, created_at="", updated_at="", stage_dates=dates)


def _book() -> list[Deal]:
    return [
        _deal("推荐", patent="P1"),
        _deal("意向", patent="P1", session=1),
        _deal("洽谈", patent="P2", session=1),
        _deal("签约", patent="P2", kind="转让", amount=120, signed=date(2026, 2, 10), session=1),
        _deal("完成", patent="P3", kind="许可", amount=30.5, signed=date(2026, 5, 3)),
        _deal("完成", patent="P1", kind="作价入股", amount=0, signed=date(2025, 12, 31), session=2),
        _deal("终止", patent="P3", reached="洽谈"),
        _deal("终止", patent="P2", kind="转让", amount=999, signed=date(2026, 3, 1), reached="签约"),
    ]


def test_totals_follow_the_counting_rules():
    t = totals(_book())
    assert (t.deals, t.recommended, t.interest, t.negotiating) == (8, 8, 7, 6)
    # The contract dropped after signing (999 万元) is not a transfer.
    assert (t.signed, t.completed, t.dropped) == (3, 2, 2)
    assert t.signed_amount_wan == pytest.approx(150.5) and t.completed_amount_wan == pytest.approx(30.5)
    assert (t.by_kind["转让"].count, t.by_kind["转让"].amount_wan) == (1, 120)
    assert t.by_kind["作价入股"].count == 1 and t.by_kind["许可"].amount_wan == 30.5
    assert totals([]).signed == 0


@pytest.mark.parametrize("period, expected", [
    ("month", ["2025-12", "2026-02", "2026-03", "2026-05", "未签约"]),
    ("quarter", ["2025-Q4", "2026-Q1", "2026-Q2", "未签约"]),
    ("year", ["2025", "2026", "未签约"]),
])
def test_period_groups_by_the_signing_date_in_time_order(period, expected):
    rows = report(_book(), "period", period=period)
    assert [r.key for r in rows] == expected
    assert sum(r.totals.deals for r in rows) == 8


def test_quarter_amounts():
    rows = {r.key: r.totals for r in report(_book(), "period", period="quarter")}
    assert rows["2026-Q1"].signed_amount_wan == 120 and rows["2026-Q1"].dropped == 1
    assert rows["2026-Q2"].completed_amount_wan == 30.5 and rows["未签约"].signed == 0


def test_university_field_and_session_groupings():
    patents = {"P1": PatentMeta("清华大学", "H01 电气元件"), "P2": PatentMeta("湖南大学", "G06 计算；推算；计数"),
               "P3": PatentMeta("", "")}
    by_uni = report(_book(), "university", patents=patents)
    assert [r.key for r in by_uni] == ["湖南大学", "清华大学", "未知"]  # largest signed amount first, unknown last
    assert by_uni[0].totals.signed_amount_wan == 120
    assert [r.key for r in report(_book(), "field", patents=patents)][-1] == "未知"
    by_session = {r.key: r.totals.deals for r in report(_book(), "session", sessions={1: "锂电池专场"})}
    assert by_session == {"锂电池专场": 3, "对接会 #2": 1, "未关联对接会": 4}


def test_the_dispatchers_list_the_valid_options():
    with pytest.raises(ValueError) as err:
        report(_book(), "enterprise")
    assert all(g in str(err.value) for g in GROUPINGS)
    with pytest.raises(ValueError, match="month, quarter, year"):
        report(_book(), "period", period="week")
    with pytest.raises(ValueError, match="month"):
        period_key(date(2026, 1, 1), "week")


def test_patent_meta_takes_the_first_applicant_and_the_class_of_the_first_ipc():
    p = Patent(id="CN1", title="电池", abstract="一种电池。", applicants=["中南大学", "某公司"], ipc=["H01M 4/00", "C01B"])
    meta = patent_meta(p)
    assert meta.university == "中南大学" and meta.field.startswith("H01 ") and len(meta.field) > 4
    assert patent_meta(Patent(id="CN2", title="x", abstract="y")) == PatentMeta("", "")


def test_rank_metrics_by_hand():
    m = rank_metrics([1, 2, 7, None])
    assert m.pairs == 4 and m.found == 3
    assert m.mrr == pytest.approx((1 + 1 / 2 + 1 / 7) / 4)
    assert m.recall == {1: 0.25, 5: 0.5, 10: 0.75}
    assert m.median_rank == 2.0
    empty = rank_metrics([])
    assert (empty.mrr, empty.median_rank) == (0.0, None)


def test_evaluation_uses_pairs_that_reached_interest_and_signature():
    deals = [_deal("推荐", rank=1),  # never went further: not evaluated
             _deal("意向", rank=4), _deal("终止", rank=2, reached="洽谈"),
             _deal("签约", kind="转让", amount=1, rank=3), _deal("完成", kind="许可", amount=2, rank=None)]
    rows = {(r.outcome, r.source): r.metrics for r in evaluate_ranking(deals)}
    assert set(rows) == {("意向", "recorded"), ("签约", "recorded")}
    assert rows[("意向", "recorded")].pairs == 3 and rows[("意向", "recorded")].median_rank == 3.0
    assert rows[("签约", "recorded")].pairs == 1 and rows[("签约", "recorded")].mrr == pytest.approx(1 / 3)
    now = evaluate_ranking(deals, current={deals[3].id: 1, deals[4].id: None})
    current = {r.outcome: r.metrics for r in now if r.source == "current"}
    assert current["签约"].pairs == 2 and current["签约"].recall[1] == 0.5


class _FakeEngine:
    """match_demand returns a fixed ranking; an unknown demand raises like the real engine."""

    def __init__(self, rankings: dict[str, list[str]]):
        self.rankings = rankings
        self.calls: list[str] = []

    def match_demand(self, demand_id: str, k: int = 10):
        from matcher.engine import NotFoundError

        self.calls.append(demand_id)
        if demand_id not in self.rankings:
            raise NotFoundError(demand_id)
        return [type("M", (), {"id": pid, "rank": r})() for r, pid in enumerate(self.rankings[demand_id][:k], 1)]


def test_current_ranks_rematch_each_demand_once():
    deals = [_deal("签约", patent="P2", demand="D1"), _deal("意向", patent="P9", demand="D1"),
             _deal("意向", patent="P1", demand="GONE"), _deal("意向", patent="P1")]
    engine = _FakeEngine({"D1": ["P1", "P2", "P3"]})
    ranks = current_ranks(engine, deals, depth=3)
    assert ranks == {deals[0].id: 2, deals[1].id: None}
    assert sorted(engine.calls) == ["D1", "GONE"]
