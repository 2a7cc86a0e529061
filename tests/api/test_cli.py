"""The `ptm` CLI contract: ingest reports, index, `match --demands ... --json` lines, errors that say what to fix."""
from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from api.cli import main
from tests.conftest import demo_rows, write_jsonl


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def home(tmp_path):
    return str(tmp_path / "ws")


def test_match_demands_json_contract(capsys, indexed_settings, small_corpus, tmp_path):
    patents = {r["id"] for r in demo_rows("patents", 80)}
    queries = write_jsonl(tmp_path / "q.jsonl", [
        {"id": "q1", "title": "防爆电池", "text": "我们需要提高锂电池的安全性，防止起火爆炸"},
        {"id": "q2", "text": "寻找能提升钢材表面耐磨性能的涂层技术"},
    ])
    code, out, err = run(capsys, "--home", str(indexed_settings.home), "match", "--demands", str(queries), "-k", "50", "--json")
    assert code == 0, err
    lines = [json.loads(line) for line in out.splitlines()]
    assert [line["demand_id"] for line in lines] == ["q1", "q2"]
    for line in lines:
        assert set(line) == {"demand_id", "results"}
        assert len(line["results"]) == 50
        assert [r["rank"] for r in line["results"]] == list(range(1, 51))
        scores = [r["score"] for r in line["results"]]
        assert scores == sorted(scores, reverse=True)
        assert all(set(r) == {"patent_id", "rank", "score"} and r["patent_id"] in patents for r in line["results"])


def test_match_text_table_and_reverse(capsys, indexed_settings):
    code, out, _ = run(capsys, "--home", str(indexed_settings.home), "match", "--text", "提高钢材表面耐磨性的涂层", "-k", "3")
    assert code == 0 and "score" in out and len([ln for ln in out.splitlines() if ln.strip()[:1].isdigit()]) == 3
    pid = demo_rows("patents", 1)[0]["id"]
    code, out, _ = run(capsys, "--home", str(indexed_settings.home), "match", "--patent", pid, "-k", "2", "--json")
    assert code == 0 and len(json.loads(out)) == 2


def test_bad_demand_line_fails_before_any_output(capsys, indexed_settings, tmp_path):
    q = tmp_path / "q.jsonl"
    q.write_text('{"id": "a", "text": "需要防爆电池技术"}\n{"id": "b", "text": ""}\n', encoding="utf-8")
    code, out, err = run(capsys, "--home", str(indexed_settings.home), "match", "--demands", str(q), "--json")
    assert code == 2 and out == "" and "line 2" in err and "empty" in err


def test_ingest_report_and_idempotent_reimport(capsys, home, small_corpus):
    code, out, _ = run(capsys, "--home", home, "ingest", "patents", str(small_corpus[0]), "--json")
    rep = json.loads(out)
    assert code == 0 and rep["added"] == 80 and rep["rejected"] == []
    code, out, _ = run(capsys, "--home", home, "ingest", "patents", str(small_corpus[0]), "--json")
    assert json.loads(out)["unchanged"] == 80


def _db_rows(home: str) -> list:
    if not Path(home, "ptm.sqlite").exists():
        return []
    with sqlite3.connect(f"{home}/ptm.sqlite") as con:
        return con.execute("SELECT id, data FROM patents ORDER BY id").fetchall()


@pytest.mark.parametrize("content, expect", [
    (b"", "empty"),
    (b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 20, "PNG image"),
    (bytes(range(256)) * 40, "binary"),
    ("名称,作者\n一种电池,张三\n".encode("utf-8"), "摘要"),
])
def test_bad_files_change_nothing(capsys, home, small_corpus, tmp_path, content, expect):
    run(capsys, "--home", home, "ingest", "patents", str(small_corpus[0]))
    before = _db_rows(home)
    bad = tmp_path / "bad.csv"
    bad.write_bytes(content)
    code, _, err = run(capsys, "--home", home, "ingest", "patents", str(bad))
    assert code == 2 and expect in err, err
    assert _db_rows(home) == before


def test_rejected_rows_abort_the_file_unless_skip_invalid(capsys, home, tmp_path):
    rows = demo_rows("patents", 3)
    rows[1] = {**rows[1], "abstract": "x" * 100_000}
    rows.append(dict(rows[0]))  # duplicate id
    f = write_jsonl(tmp_path / "p.jsonl", rows)
    code, _, err = run(capsys, "--home", home, "ingest", "patents", str(f))
    assert code == 2 and "row 2" in err and "row 4" in err and "nothing was imported" in err
    assert _db_rows(home) == []
    code, out, _ = run(capsys, "--home", home, "ingest", "patents", str(f), "--skip-invalid", "--json")
    assert code == 0 and json.loads(out)["added"] == 2


def test_non_utf8_csv_is_read_or_explained(capsys, home, tmp_path):
    rows = demo_rows("patents", 2)
    csv = "公开号,发明名称,摘要,申请人\n" + "".join(f"{r['id']},{r['title']},{r['abstract'].replace(',', '，')},{r['applicants'][0]}\n" for r in rows)
    f = tmp_path / "gbk.csv"
    f.write_bytes(csv.encode("gb18030"))
    code, out, err = run(capsys, "--home", home, "ingest", "patents", str(f), "--json")
    assert code == 0, err
    assert json.loads(out)["added"] == 2


def test_match_before_indexing_says_what_to_do(capsys, home):
    code, _, err = run(capsys, "--home", home, "match", "--text", "防爆电池")
    assert code == 2 and "ptm index" in err


def test_unknown_ids_are_named(capsys, indexed_settings):
    code, _, err = run(capsys, "--home", str(indexed_settings.home), "match", "--patent", "CN000000000A")
    assert code == 2 and "CN000000000A" in err


def test_delete_then_index_drops_the_patent(capsys, home, small_corpus):
    run(capsys, "--home", home, "ingest", "patents", str(small_corpus[0]))
    pid = demo_rows("patents", 1)[0]["id"]
    code, out, _ = run(capsys, "--home", home, "delete", "patents", pid, "nope")
    assert code == 0 and "deleted 1" in out and "1 id(s) were not stored" in out
    run(capsys, "--home", home, "index")
    code, out, _ = run(capsys, "--home", home, "match", "--text", "防爆电池", "-k", "100", "--json")
    ids = [m["id"] for m in json.loads(out)]
    assert len(ids) == 79 and pid not in ids
