"""`ptm deals record|list|report|eval`: the ledger from the command line, aligned tables, errors that say what to fix."""
from __future__ import annotations

import json

import pytest

from api.cli import _display_width, main
from tests.conftest import demo_rows, write_jsonl


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def home(tmp_path, capsys) -> str:
    home = str(tmp_path / "ws")
    assert main(["--home", home, "ingest", "patents", str(write_jsonl(tmp_path / "p.jsonl", demo_rows("patents", 4)))]) == 0
    capsys.readouterr()
    return home


@pytest.fixture
def pids() -> list[str]:
    return [r["id"] for r in demo_rows("patents", 4)]


def test_record_list_and_report(capsys, home, pids):
    assert run(capsys, "--home", home, "deals", "record", pids[0], "长沙锂电", "--stage", "推荐", "--demand", "D1")[0] == 0
    code, out, _ = run(capsys, "--home", home, "deals", "record", pids[0], "长沙锂电", "--stage", "signed", "--kind", "转让",
                       "--amount", "120", "--date", "2026-05-01", "--note", "首单")
    assert code == 0 and "→ 签约 (转让, 120.00 万元) on 2026-05-01" in out
    run(capsys, "--home", home, "deals", "record", pids[1], "株洲材料", "--stage", "签约", "--kind", "licence",
        "--amount", "0.5", "--date", "2026-08-15")
    run(capsys, "--home", home, "deals", "record", pids[2], "株洲材料", "--stage", "洽谈")

    code, out, _ = run(capsys, "--home", home, "deals", "list")
    assert code == 0 and "长沙锂电" in out and out.strip().endswith("3 deals; 2 signed or completed, 120.50 万元")
    code, out, _ = run(capsys, "--home", home, "deals", "list", "--stage", "negotiation", "--json")
    assert [d["patent_id"] for d in json.loads(out)] == [pids[2]]

    code, out, _ = run(capsys, "--home", home, "deals", "report", "--by", "period", "--json")
    report = json.loads(out)
    assert [r["key"] for r in report["rows"]] == ["2026-Q2", "2026-Q3", "未签约"]
    assert report["totals"]["signed_amount_wan"] == 120.5 and report["totals"]["by_kind"]["许可"]["count"] == 1
    code, out, _ = run(capsys, "--home", home, "deals", "report", "--by", "period", "--period", "month")
    table = out.splitlines()[:-1]  # the last line is the by-kind summary
    assert table[0].startswith("period") and table[-1].startswith("合计") and "120.50" in table[-1]
    assert "2026-05" in out and "2026-08" in out
    # Right-aligned last column: every line has the same display width, Chinese included.
    assert len({_display_width(line) for line in table}) == 1


def test_report_by_university_and_field(capsys, home, pids):
    run(capsys, "--home", home, "deals", "record", pids[0], "甲", "--stage", "签约", "--kind", "作价入股", "--amount", "30")
    first_applicant = demo_rows("patents", 1)[0]["applicants"]
    first_applicant = first_applicant[0] if isinstance(first_applicant, list) else str(first_applicant).split(";")[0]
    code, out, _ = run(capsys, "--home", home, "deals", "report", "--by", "university", "--json")
    assert code == 0 and json.loads(out)["rows"][0]["key"] == first_applicant.strip()
    code, out, _ = run(capsys, "--home", home, "deals", "report", "--by", "field", "--json")
    assert json.loads(out)["rows"][0]["signed_amount_wan"] == 30


@pytest.mark.parametrize("argv, message", [
    (["--stage", "won"], "推荐 (recommended)"),
    (["--stage", "签约", "--kind", "转让"], "签约需要合同类型"),
    (["--stage", "签约", "--kind", "sale", "--amount", "1"], "作价入股"),
    (["--stage", "签约", "--kind", "转让", "--amount", "-1"], "不小于 0"),
    (["--stage", "签约", "--kind", "转让", "--amount", "1e9"], "万元过大"),
    (["--stage", "推荐", "--date", "2026/05/01"], "--date"),
    (["--stage", "推荐", "--session", "9"], "没有编号为 9 的对接会"),
])
def test_bad_records_exit_2_with_a_message(capsys, home, pids, argv, message):
    code, out, err = run(capsys, "--home", home, "deals", "record", pids[0], "甲", *argv)
    assert code == 2 and out == "" and message in err
    assert json.loads(run(capsys, "--home", home, "deals", "list", "--json")[1]) == []


def test_backwards_needs_correct_and_unknown_patent_is_named(capsys, home, pids):
    run(capsys, "--home", home, "deals", "record", pids[0], "甲", "--stage", "洽谈")
    code, _, err = run(capsys, "--home", home, "deals", "record", pids[0], "甲", "--stage", "意向")
    assert code == 2 and "不能退回意向" in err and "--correct" in err
    assert run(capsys, "--home", home, "deals", "record", pids[0], "甲", "--stage", "意向", "--correct")[0] == 0
    code, _, err = run(capsys, "--home", home, "deals", "record", "CN000NOPE", "甲", "--stage", "推荐")
    assert code == 2 and "CN000NOPE" in err and "不存在" in err


def test_report_grouping_and_period_are_checked(capsys, home):
    code, _, err = run(capsys, "--home", home, "deals", "report", "--by", "enterprise")
    assert code == 2 and "period, university, field, session" in err
    code, _, err = run(capsys, "--home", home, "deals", "report", "--period", "week")
    assert code == 2 and "month, quarter, year" in err


def test_eval_recorded_only_without_outcomes_says_so(capsys, home, pids):
    run(capsys, "--home", home, "deals", "record", pids[0], "甲", "--stage", "推荐")
    code, out, _ = run(capsys, "--home", home, "deals", "eval", "--recorded-only")
    assert code == 0 and "no deal has reached 意向" in out


def test_eval_rematches_demands_and_reports_recorded_ranks(capsys, writable_indexed_settings):
    from indexer.ledger import Ledger
    from matcher.engine import Engine

    engine = Engine(writable_indexed_settings)
    demand = engine.store.list("demands", limit=1)[0]
    ranking = engine.match_demand(demand.id, k=20)
    ledger = Ledger(engine.store)
    # Two pairs the engine ranks 2nd and 7th now; recorded at recommendation as 1st and 4th.
    ledger.record(ranking[1].id, "甲", "签约", demand_id=demand.id, engine_rank=1, kind="转让", amount_wan=10)
    ledger.record(ranking[6].id, "乙", "意向", demand_id=demand.id, engine_rank=4)
    home = str(writable_indexed_settings.home)
    code, out, err = run(capsys, "--home", home, "deals", "eval", "--json")
    assert code == 0, err
    rows = {(r["outcome"], r["source"]): r for r in json.loads(out)}
    assert rows[("意向", "current")]["median_rank"] == 4.5 and rows[("签约", "current")]["mrr"] == 0.5
    assert rows[("意向", "recorded")]["recall@1"] == 0.5 and rows[("签约", "recorded")]["pairs"] == 1
    code, out, _ = run(capsys, "--home", home, "deals", "eval")
    assert code == 0 and out.splitlines()[0].split()[:5] == ["reached", "rank", "pairs", "found", "MRR"]
