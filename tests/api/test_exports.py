"""Session exports (api/exports.py): formula injection neutralised in every XLSX cell, HTML escaped, the agenda's
times, sheets, letters and briefs; the explanation of a pair agrees with the engine's own."""
from __future__ import annotations

import io
from datetime import date, time

import openpyxl
import pytest

from api.exports import (FORMATS, Timing, build_document, explain_pairs, export_document, parse_start, safe_cell,
                         summarize, to_html, to_xlsx)
from indexer.pipeline import open_store
from indexer.records import Patent
from matcher.engine import Engine
from matcher.sessions.plan import Pair, SessionPlan

ABSTRACT = ("本发明公开了一种锂离子电池正极材料及其制备方法。该材料由镍钴锰前驱体与锂盐混合烧结而成，"
            "表面包覆一层氧化铝。所得正极材料循环寿命长、热稳定性好，适用于动力电池。"
            "制备方法工艺简单，成本低，便于工业化生产，具有良好的应用前景和推广价值，可广泛用于储能电站。"
            "此外，该正极材料在高温高压条件下仍能保持结构稳定，显著降低电池热失控的风险。")
HOSTILE = ['=HYPERLINK("http://evil.example","点我")', "@SUM(1)", "+1", "-1"]


def _patent(pid: str, title: str, **extra) -> Patent:
    return Patent(id=pid, title=title, abstract=ABSTRACT, applicants=["清华大学", "某研究院"], ipc=["H01M4/525"], **extra)


@pytest.fixture
def engine(settings):
    """A store-only workspace (nothing indexed): exports must still work, without shared words."""
    store = open_store(settings)
    patents = [_patent(f"P{i}", t) for i, t in enumerate(HOSTILE)]
    patents.append(_patent("PX", "<script>alert(1)</script>正极", licence_terms="许可", price_wan=35))
    store.upsert("patents", patents)
    return Engine(settings, store)


def _plan(patents: list[str], enterprises: list[str]) -> SessionPlan:
    pairs = [Pair(p, e, f"D-{e}", round(0.95 - 0.01 * i - 0.001 * j, 4), i + 1)
             for i, p in enumerate(patents) for j, e in enumerate(enterprises)]
    pairs.sort(key=lambda q: -q.score)
    return SessionPlan(theme="锂电池 · H01M", patents=patents, enterprises=enterprises, pairs=pairs,
                       objective=sum(q.score for q in pairs), status="optimal", unfilled_slots=1, unfilled_seats=0)


@pytest.mark.parametrize("value", ["=1+1", "+1", "-1", "@SUM(1)", "\tx", "\rx", '=HYPERLINK("a")'])
def test_safe_cell_quotes_what_a_spreadsheet_would_run(value):
    assert safe_cell(value) == "'" + value


@pytest.mark.parametrize("value", ["锂电池", "a=b", "1-2", 3.5, -1, None, date(2026, 12, 10)])
def test_safe_cell_leaves_everything_else(value):
    assert safe_cell(value) == value


def test_xlsx_read_back_has_no_formula_and_the_hostile_titles_as_text(engine):
    enterprises = ["=cmd|' /C calc'!A0", "星火电池有限公司"]
    doc = build_document(engine, _plan([f"P{i}" for i in range(4)], enterprises), title="-2+3 对接会",
                         on=date(2026, 12, 10))
    wb = openpyxl.load_workbook(io.BytesIO(to_xlsx(doc)))
    assert wb.sheetnames == ["议程", "邀请企业", "专利简介"]
    strings = []
    for ws in wb.worksheets:
        for row in ws.iter_rows():
            for cell in row:
                assert cell.data_type != "f", f"{ws.title}!{cell.coordinate} is a formula: {cell.value!r}"
                if isinstance(cell.value, str):
                    strings.append(cell.value)
                    assert not cell.value.startswith(("=", "+", "-", "@", "\t", "\r")), (ws.title, cell.value)
    agenda = wb["议程"]
    assert [agenda.cell(row=r, column=4).value for r in range(2, 6)] == ["'" + t for t in HOSTILE]
    assert "'=cmd|' /C calc'!A0" in strings


def test_xlsx_agenda_times_rows_and_letters(engine):
    plan = _plan(["PX", "P0", "P1"], ["企业甲", "企业乙"])
    doc = build_document(engine, plan, title="对接会", on=date(2026, 12, 10), timing=Timing(time(14, 0), 20))
    wb = openpyxl.load_workbook(io.BytesIO(export_document(doc, "xlsx")))
    agenda = list(wb["议程"].iter_rows(min_row=2, values_only=True))
    assert [r[0] for r in agenda] == [1, 2, 3]
    assert [r[1] for r in agenda] == ["2026-12-10 14:00–14:20", "2026-12-10 14:20–14:40", "2026-12-10 14:40–15:00"]
    assert [r[2] for r in agenda] == plan.patents
    assert agenda[0][4] == "清华大学"  # the presenting university is the first applicant
    assert agenda[0][5].startswith("H01M4/525 ") and len(agenda[0][5]) > len("H01M4/525 ")  # with its Chinese title
    assert "企业甲（0.950 强）" in agenda[0][7]  # 0.95 is above the default strong threshold (0.919)
    letters = list(wb["邀请企业"].iter_rows(min_row=2, values_only=True))
    assert len(letters) == len(plan.pairs)
    assert {(r[0], r[2]) for r in letters} == {(q.enterprise, q.patent_id) for q in plan.pairs}
    briefs = list(wb["专利简介"].iter_rows(min_row=2, values_only=True))
    assert briefs[0][7:9] == ("许可", 35)
    assert briefs[0][3] == summarize(ABSTRACT) and len(briefs[0][3]) < len(ABSTRACT)


def test_timing_without_a_date_and_bad_values():
    assert Timing().slot(0) == "09:30–09:45" and Timing().slot(2) == "10:00–10:15"
    assert parse_start("9:05") == time(9, 5)
    for bad in ("25:00", "9.30", ""):
        with pytest.raises(ValueError, match="09:30"):
            parse_start(bad)
    with pytest.raises(ValueError, match="1–240"):
        Timing(slot_minutes=0)


def test_summary_cuts_at_a_sentence_end():
    s = summarize(ABSTRACT)
    assert len(ABSTRACT) > 150 and ABSTRACT.startswith(s) and s.endswith("。") and 100 < len(s) <= 150
    assert summarize("短摘要。") == "短摘要。"
    clauses = "一种电池，包括壳体；" + "所述壳体内设有电芯；" * 20
    assert summarize(clauses) == clauses[:150][: clauses[:150].rfind("；") + 1]  # no 。 in reach: whole clauses
    short_first = summarize("第一句。" + clauses)  # a 4-character sentence is too little: clauses instead
    assert short_first.startswith("第一句。") and short_first.endswith("；") and 100 < len(short_first) <= 150
    long_sentence = "一" * 200
    assert summarize(long_sentence) == "一" * 150 + "…"


def test_html_escapes_and_has_agenda_letters_and_briefs(engine):
    plan = _plan(["PX", "P0"], ["<b>企业</b>", "企业乙"])
    html = to_html(build_document(engine, plan, title="<script>x()</script>", on=date(2026, 12, 10), venue="会议室"))
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<b>企业</b>" not in html and "&lt;b&gt;企业&lt;/b&gt;" in html
    assert html.count('class="letter"') == 2 and html.count('class="brief"') == 2
    assert "page-break-before: always" in html and "@media print" in html
    assert "许可" in html and "35 万元" in html and "清华大学；某研究院" in html
    assert "2026-12-10 09:30–09:45" in html


def test_export_dispatcher_lists_the_formats(engine):
    doc = build_document(engine, _plan(["P0"], ["企业甲"]), title="t")
    assert export_document(doc, "html").startswith(b"<!doctype html>")
    with pytest.raises(ValueError, match="xlsx, html"):
        export_document(doc, "pdf")  # type: ignore[arg-type]
    assert FORMATS == ("xlsx", "html")


def test_a_deleted_patent_keeps_its_slot(engine):
    doc = build_document(engine, _plan(["P0", "GONE"], ["企业甲"]), title="t")
    assert [b.patent_id for b in doc.briefs] == ["P0", "GONE"] and doc.briefs[1].title == ""
    assert "（专利已删除）" in to_html(doc)


def test_reasons_agree_with_the_engines_explanation(indexed_settings):
    engine = Engine(indexed_settings)
    demand = engine.store.list("demands", limit=1)[0]
    top = engine.match_demand(demand.id, 1)[0]
    pair = Pair(top.id, demand.enterprise or demand.id, demand.id, top.dense_score, 1)
    (reason,) = explain_pairs(engine, [pair])
    assert list(reason.terms) == top.matched_terms and reason.quality == top.quality
    assert reason.patent_title == top.title
