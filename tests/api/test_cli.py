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
    code, _, err = run(capsys, "--home", home, "index")
    assert code == 0 and "patents: embedded 79/79" in err  # progress, one line per chunk off a terminal
    code, out, _ = run(capsys, "--home", home, "match", "--text", "防爆电池", "-k", "100", "--json")
    ids = [m["id"] for m in json.loads(out)]
    assert len(ids) == 79 and pid not in ids


# --- real exports end to end, filters, show -------------------------------------------------------

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
CNIPA = FIXTURES / "cnipa_sample.csv"  # 61-column CNIPA export, 10 real rows
INCOPAT = FIXTURES / "incopat_sample.xlsx"  # the same patents as incoPat exports them


def test_cnipa_export_dry_run_import_reimport_and_other_exports_merge(capsys, home, tmp_path):
    code, out, _ = run(capsys, "--home", home, "ingest", "patents", str(CNIPA), "--dry-run")
    assert code == 0 and "would import 10 patents: 10 added" in out and "专利转移次数→transfer_count" in out
    assert not Path(home, "ptm.sqlite").exists()  # a dry run creates nothing
    code, out, _ = run(capsys, "--home", home, "ingest", "patents", str(CNIPA), "--json")
    assert code == 0 and json.loads(out)["added"] == 10
    before = _db_rows(home)
    for extra in ((), ("--dry-run",)):
        code, out, _ = run(capsys, "--home", home, "ingest", "patents", str(CNIPA), "--json", *extra)
        assert code == 0 and json.loads(out)["unchanged"] == 10
        assert _db_rows(home) == before
    code, out, _ = run(capsys, "--home", home, "ingest", "patents", str(INCOPAT), "--json")
    report = json.loads(out)
    assert code == 0 and (report["added"], report["unchanged"]) == (0, 10) and report["format"] == "xlsx"
    # A centre's own sheet names the first patent by its granted-patent number (专利号, ZL…) only.
    centre = tmp_path / "centre.csv"
    centre.write_text("专利号,专利名称,摘要,价格\nZL 2022 2 3220665.2,一种无人机机载多功能盒,"
                      "一种无人机机载多功能盒，包括内盒、外盒和内部电路。,30万\n", encoding="utf-8")
    code, out, _ = run(capsys, "--home", home, "ingest", "patents", str(centre), "--json")
    assert code == 0 and json.loads(out)["updated"] == 1 and len(_db_rows(home)) == 10
    code, out, _ = run(capsys, "--home", home, "show", "patent", "CN218751475U", "--json")
    shown = json.loads(out)
    assert shown["patent"]["price_wan"] == 30.0 and shown["patent"]["claims"].startswith("1.一种无人机机载多功能盒")
    assert [n["code"] for n in shown["ipc_paths"]["B64U20/80"]] == ["B", "B64", "B64U", "B64U20/00", "B64U20/80"]
    assert 0 < shown["value"]["total"] <= 100 and "legal.claims" in shown["value"]["missing"]
    code, out, _ = run(capsys, "--home", home, "show", "patent", "CN217546176U")
    assert code == 0 and "H04N 图像通信，如电视" in out and "remaining_term" in out and "value score" in out
    code, _, err = run(capsys, "--home", home, "show", "patent", "CN000000000A")
    assert code == 2 and "CN000000000A" in err


def _truncated_xlsx(_tmp) -> bytes:
    whole = INCOPAT.read_bytes()
    return whole[: len(whole) // 2]


def _mixed_csv(_tmp) -> bytes:
    lines = CNIPA.read_bytes().split(b"\r\n")
    lines[3] = lines[3].decode("utf-8").encode("gbk")
    return b"\r\n".join(lines)


def _duplicate_numbers(_tmp) -> bytes:
    rows = CNIPA.read_bytes().decode("utf-8").split("\r\n")
    again = rows[1].replace("CN218751475U", "218751475 U")  # the same publication number, spelled otherwise
    return "\r\n".join([rows[0], rows[1], rows[2], again]).encode("utf-8")


@pytest.mark.parametrize(("name", "content", "expect"), [
    ("people.csv", lambda _: "姓名,年龄\n张三,30\n".encode("utf-8"), ["missing required column", "Headers found: 姓名, 年龄"]),
    ("mixed.csv", _mixed_csv, ["mixed text encodings", "line(s) 4", "re-save the whole file in one encoding"]),
    ("truncated.xlsx", _truncated_xlsx, ["damaged or truncated; re-export it"]),
    ("dupes.csv", _duplicate_numbers, ["row 4 (CN218751475U): duplicate id CN218751475U, first seen in row 2",
                                       "remove one of the two rows", "nothing was imported"]),
])
def test_bad_exports_are_explained_and_nothing_stored_is_lost(capsys, home, tmp_path, name, content, expect):
    run(capsys, "--home", home, "ingest", "patents", str(CNIPA))
    before = _db_rows(home)
    bad = tmp_path / name
    bad.write_bytes(content(tmp_path))
    code, _, err = run(capsys, "--home", home, "ingest", "patents", str(bad))
    assert code == 2
    for text in expect:
        assert text in err, err
    assert _db_rows(home) == before


@pytest.fixture(scope="module")
def tagged_settings(writable_indexed_settings):
    """The indexed demo workspace with two patents tagged (metadata only: the texts, so the index, are unchanged)."""
    from indexer.records import Patent
    from indexer.store import Store

    store = Store(writable_indexed_settings.db_path)
    first, second = store.list("patents", limit=2)
    store.upsert("patents", [
        Patent(id=first.id, title=first.title, abstract=first.abstract, ipc=["H04N5/225"], legal_status="有效", patent_type="发明"),
        Patent(id=second.id, title=second.title, abstract=second.abstract, ipc=["H04N7/18"], legal_status="审中", patent_type="发明"),
    ])
    return writable_indexed_settings, [first.id, second.id]


def test_match_with_filters(capsys, tagged_settings):
    settings, tagged = tagged_settings
    ws = str(settings.home)
    demand = demo_rows("demands", 1)[0]["id"]
    code, out, err = run(capsys, "--home", ws, "match", "--demand", demand, "-k", "5", "--ipc", "H04N", "--json")
    assert code == 0, err
    assert sorted(m["id"] for m in json.loads(out)) == sorted(tagged)
    code, out, _ = run(capsys, "--home", ws, "match", "--demand", demand, "-k", "5", "--ipc", "H04N",
                       "--legal-status", "有效", "--patent-type", "发明", "--date-to", "2030-01-01")
    assert code == 0 and "(no candidates)" in out and "ipc_prefix=H04N" in out  # no tagged patent has a date
    code, out, _ = run(capsys, "--home", ws, "match", "--demand", demand, "-k", "5", "--ipc", "H04N5", "--ipc", "H04N7",
                       "--legal-status", "有效", "--legal-status", "审中", "--json")
    assert sorted(m["id"] for m in json.loads(out)) == sorted(tagged)


@pytest.mark.parametrize(("argv", "expect"), [
    (["--legal-status", "good"], "use one of 有效, 审中, 失效, 驳回, 撤回"),
    (["--applicant-type", "school"], "use one of university, research_institute"),
    (["--ipc", "电视"], "not an IPC prefix"),
    (["--min-value", "101"], "outside 0–100"),
    (["--date-from", "2021-13-01"], "YYYY-MM-DD"),
])
def test_invalid_filters_exit_2_with_the_valid_options(capsys, indexed_settings, argv, expect):
    demand = demo_rows("demands", 1)[0]["id"]
    code, out, err = run(capsys, "--home", str(indexed_settings.home), "match", "--demand", demand, *argv)
    assert code == 2 and expect in err and out == ""


def test_filters_do_not_apply_to_the_reverse_direction(capsys, indexed_settings):
    pid = demo_rows("patents", 1)[0]["id"]
    code, _, err = run(capsys, "--home", str(indexed_settings.home), "match", "--patent", pid, "--ipc", "H04N")
    assert code == 2 and "do not apply to --patent" in err


def test_user_and_token_commands(capsys, home, monkeypatch):
    import io

    from api.auth import authenticate
    from api.webstore import WebStore
    from indexer.settings import Settings

    monkeypatch.setattr("sys.stdin", io.StringIO("a secret password 1\n"))
    code, out, err = run(capsys, "--home", home, "user", "add", "--role", "staff", "--name", "alice", "--password-stdin")
    assert code == 0 and "a secret password 1" not in out + err
    web = WebStore(Settings.from_env(home=home).db_path)
    assert authenticate(web, "alice", "a secret password 1").role == "staff"
    code, out, _ = run(capsys, "--home", home, "user", "add", "bob", "--role", "university", "--org", "浙江大学")
    assert code == 0 and "password: " in out
    assert authenticate(web, "bob", out.split("password: ")[1].split()[0]).org == "浙江大学"
    code, _, err = run(capsys, "--home", home, "user", "add", "carol", "--role", "enterprise")
    assert code == 2 and "--org" in err
    code, out, _ = run(capsys, "--home", home, "token", "add", "bob", "--scope", "patents:write", "--scope", "read")
    assert code == 0 and out.startswith("ptm_")
    assert web.token(__import__("api.auth", fromlist=["hash_secret"]).hash_secret(out.strip()))[1] == ["patents:write", "read"]
    code, _, err = run(capsys, "--home", home, "token", "add", "bob", "--scope", "demands:write")
    assert code == 2 and "cannot hold scope" in err
    code, out, _ = run(capsys, "--home", home, "user", "list")
    assert "alice\tstaff" in out and "bob\tuniversity\t浙江大学" in out
