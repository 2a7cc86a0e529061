"""`ptm sessions plan|series|list|show|export`: plans within their limits, saving with 推荐 deals (a deal further on
is left alone), exports of a saved session, and errors that say what to fix."""
from __future__ import annotations

import io
import json

import openpyxl
import pytest

from api.cli import main
from indexer.ledger import Ledger
from indexer.pipeline import open_store
from tests.conftest import SESSION_ENTERPRISES, add_session_demands

THEME = ("--industry", "我们企业需要")  # what the demands add_session_demands writes say; the demo demands do not


@pytest.fixture(scope="module")
def home(writable_indexed_settings):
    add_session_demands(writable_indexed_settings)
    return str(writable_indexed_settings.home)


def run(capsys, home: str, *argv: str) -> tuple[int, str, str]:
    code = main(["--home", home, "sessions", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def plan_json(capsys, home: str, *argv: str) -> dict:
    code, out, err = run(capsys, home, "plan", *THEME, "--json", *argv)
    assert code == 0, err
    return json.loads(out)


def test_plan_respects_the_limits_and_only_pairs_what_is_in_the_room(capsys, home):
    plan = plan_json(capsys, home, "--slots", "3", "--seats", "2")
    assert plan["status"] == "optimal" and plan["session_id"] is None
    assert 1 <= len(plan["patents"]) <= 3 and 1 <= len(plan["enterprises"]) <= 2
    assert set(plan["enterprises"]) <= set(SESSION_ENTERPRISES)
    assert plan["pairs"] and all(q["patent_id"] in plan["patents"] and q["enterprise"] in plan["enterprises"]
                                 for q in plan["pairs"])
    assert plan["objective"] == pytest.approx(sum(q["score"] for q in plan["pairs"]))
    wider = plan_json(capsys, home, "--slots", "6", "--seats", "3")
    assert wider["objective"] > plan["objective"]  # more room never lowers the optimum; here it raises it


def test_edits_pin_and_remove(capsys, home):
    base = plan_json(capsys, home, "--slots", "3", "--seats", "2")
    dropped = base["patents"][0]
    edited = plan_json(capsys, home, "--slots", "3", "--seats", "2", "--exclude-patent", dropped,
                       "--include-enterprise", SESSION_ENTERPRISES[2])
    assert dropped not in edited["patents"] and SESSION_ENTERPRISES[2] in edited["enterprises"]


def test_text_output_lists_slots_and_enterprises(capsys, home):
    code, out, err = run(capsys, home, "plan", *THEME, "--slots", "2", "--seats", "2")
    assert code == 0, err
    assert out.startswith("session plan: 我们企业需要  [optimal]") and "\nslots\n" in out and "invited enterprises" in out
    assert "→ " in out


def test_save_records_recommendations_but_never_sets_a_deal_back(capsys, home, writable_indexed_settings):
    ledger = Ledger(open_store(writable_indexed_settings))
    code, out, err = run(capsys, home, "plan", *THEME, "--slots", "4", "--seats", "3", "--save", "--date", "2026-12-10",
                         "--title", "锂电池对接会", "--venue", "二楼会议室")
    assert code == 0, err
    sid = int(out.split("saved as session ")[1].split(";")[0])
    record = ledger.session(sid)
    assert record.title == "锂电池对接会" and record.date.isoformat() == "2026-12-10" and record.venue == "二楼会议室"
    deals = ledger.deals(session_id=sid)
    assert {(d.patent_id, d.enterprise, d.engine_rank) for d in deals} == {
        (q["patent_id"], q["enterprise"], q["rank"]) for q in record.plan["pairs"]}
    assert {d.stage for d in deals} == {"推荐"} and f"{len(deals)} 推荐 deal(s) recorded" in out
    moved = deals[0]
    ledger.record(moved.patent_id, moved.enterprise, "意向")
    code, out, err = run(capsys, home, "plan", *THEME, "--slots", "4", "--seats", "3", "--save")
    assert code == 0, err
    assert f"{len(deals) - 1} 推荐 deal(s) recorded" in out
    assert ledger.deal(moved.patent_id, moved.enterprise).stage == "意向"
    code, out, _ = run(capsys, home, "list")
    assert code == 0 and "锂电池对接会" in out and "2026-12-10" in out
    code, out, _ = run(capsys, home, "show", str(sid))
    assert code == 0 and out.startswith(f"session {sid}: 锂电池对接会  2026-12-10  二楼会议室")


def test_export_writes_xlsx_and_escaped_html(capsys, home, tmp_path):
    code, out, err = run(capsys, home, "plan", *THEME, "--slots", "6", "--seats", "3", "--save", "--json")
    assert code == 0, err
    sid = json.loads(out)["session_id"]
    xlsx, html = tmp_path / "a.xlsx", tmp_path / "a.html"
    code, out, err = run(capsys, home, "export", str(sid), "--format", "xlsx", "-o", str(xlsx), "--start", "14:00")
    assert code == 0 and out.startswith(f"wrote {xlsx}"), err
    wb = openpyxl.load_workbook(io.BytesIO(xlsx.read_bytes()))
    assert wb.sheetnames == ["议程", "邀请企业", "专利简介"]
    assert wb["议程"]["B2"].value == "14:00–14:15"
    invited = {row[0] for row in wb["邀请企业"].iter_rows(min_row=2, values_only=True)}
    assert "'" + SESSION_ENTERPRISES[1] in invited  # the "=HYPERLINK" enterprise stays text
    code, _, err = run(capsys, home, "export", str(sid), "--format", "html", "-o", str(html))
    text = html.read_text(encoding="utf-8")
    assert code == 0 and "&lt;b&gt;华信&lt;/b&gt;通信" in text and "<b>华信" not in text


def test_series_prints_sessions_and_coverage(capsys, home):
    code, out, err = run(capsys, home, "series", "--k", "2", "--slots", "3", "--seats", "3", "--json")
    assert code == 0, err
    series = json.loads(out)
    cov = series["coverage"]
    assert len(series["sessions"]) == 2 and cov["with_strong_match"] >= len(SESSION_ENTERPRISES)
    assert cov["covered"] + len(cov["uncovered"]) == cov["with_strong_match"]
    presented = [p for s in series["sessions"] for p in s["patents"]]
    assert len(presented) == len(set(presented))  # each patent once in the whole series
    code, out, err = run(capsys, home, "series", "--k", "2", "--slots", "3", "--seats", "3")
    assert code == 0 and "== session 1/2" in out and "coverage: " in out, err


@pytest.mark.parametrize("argv, message", [
    (("plan", "--slots", "3", "--seats", "2"), "give a theme"),
    (("plan", *THEME, "--slots", "3", "--seats", "2", "--date", "10.12.2026"), "--date must be a date like 2026-12-10"),
    (("plan", *THEME, "--slots", "0", "--seats", "2"), "slots must be a whole number >= 1"),
    (("export", "999", "--format", "xlsx"), "there is no session 999"),
    (("show", "999"), "there is no session 999"),
    (("export", "1", "--format", "xlsx", "--start", "9h30"), "start time must look like 09:30"),
])
def test_errors_say_what_to_fix(capsys, home, argv, message):
    code, _, err = run(capsys, home, *argv)
    assert code == 2 and message in err


def test_edits_keep_the_latest_action_per_item():
    from api.planning import Edits

    e = Edits.from_dict({"include_patents": "A\nB\n\nA", "exclude_enterprises": ["x", " x "]})
    assert e.include_patents == ["A", "B"] and e.exclude_enterprises == ["x"]
    e.drop("patents", "A")
    assert (e.include_patents, e.exclude_patents) == (["B"], ["A"])
    e.pin("patents", "A")
    assert (e.include_patents, e.exclude_patents) == (["B", "A"], [])
    e.clear("enterprises", "x")
    assert e.exclude_enterprises == [] and Edits.from_dict(e.to_dict()) == e
    with pytest.raises(ValueError, match="patents or enterprises"):
        e.pin("demands", "D1")
