"""SQL injection: classic payloads in every filter and search field (CLI flags, REST query and body, web search and
forms) give either a validation message or exactly the brute-force result, and every table survives; and a scan
of the code: SQL text is composed only from reviewed, whitelisted parts, never from user values."""
from __future__ import annotations

import ast
import json
from pathlib import Path
from urllib.parse import quote

import pytest

from api.cli import main as ptm
from indexer.records import Patent
from matcher.filters import Filters, build_filters
from tests.security.conftest import World

ROOT = Path(__file__).resolve().parents[2]
PAYLOADS = ["' OR 1=1 --", "'; DROP TABLE patents; --", "%", "_", "\\", "\x00", "\" OR \"\"=\"", "1) OR (1=1"]
#: Filters whose values are checked against a fixed vocabulary: a payload must be refused, naming the parameter.
VALIDATED = ("legal_status", "patent_type", "applicant_type", "ipc", "date_from", "date_to", "min_value")


def _tables(world: World) -> dict[str, int]:
    with world.app.state.web.connect() as con:
        names = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'")]
        # Sign-ins of the test's own callers add sessions; every other table must keep its rows.
        return {n: con.execute(f"SELECT COUNT(*) FROM \"{n}\"").fetchone()[0] if n != "sessions" else -1
                for n in names}  # names from sqlite_master


@pytest.fixture(scope="module")
def seeded(world: World) -> World:
    """Patents whose region contains each payload literally, so a correct filter returns exactly these."""
    from indexer.pipeline import sync_index

    patents = [Patent(id=f"CN8{i:08d}A", title="一种注入测试用防爆阀", region=f"河南{p}郑州", applicants=["测试大学"],
                      abstract="一种用于锂电池包的防爆阀，包括阀体、泄压膜和防水透气膜。")
               for i, p in enumerate(p for p in PAYLOADS if p != "\x00")]
    world.store.upsert("patents", patents)
    sync_index(world.app.state.engine.settings, kinds=("patents",))
    return world


def _brute_force(world: World, region: str) -> set[str]:
    region = region.strip()
    return {p.id for p in world.store.list("patents", limit=1_000_000) if region in (p.region or "")}


@pytest.mark.parametrize("payload", PAYLOADS)
def test_region_payload_in_rest_matches_brute_force_and_tables_survive(seeded: World, payload: str) -> None:
    client, _ = seeded.caller("staff")
    before = _tables(seeded)
    r = client.post("/match", json={"text": "锂电池防爆阀", "k": 1000, "region": payload})
    got = client.get(f"/demands/{seeded.demand_id}/matches", params={"k": 1000, "region": payload})
    assert r.status_code == 200 and got.status_code == 200, (r.text, got.text)
    expected = _brute_force(seeded, payload)
    assert {m["id"] for m in r.json()} == expected
    assert {m["id"] for m in got.json()} == expected
    assert _tables(seeded) == before


@pytest.mark.parametrize("payload", PAYLOADS)
@pytest.mark.parametrize("param", VALIDATED)
def test_payload_in_a_validated_filter_is_refused_naming_it(seeded: World, payload: str, param: str) -> None:
    client, _ = seeded.caller("staff")
    before = _tables(seeded)
    listed = param in ("legal_status", "patent_type", "applicant_type", "ipc")  # JSON arrays in the body
    answers = [(client.post("/match", json={"text": "锂电池防爆阀", param: [payload] if listed else payload}), "body"),
               (client.get(f"/demands/{seeded.demand_id}/matches", params={param: payload}), "query")]
    for r, where in answers:
        if payload.strip("\x00 \\") == "" and param != "min_value":
            # Blank after trimming (NUL, a lone backslash may normalise away): no restriction or a refusal, never 500.
            assert r.status_code in (200, 422), r.text
            continue
        assert r.status_code == 422, (param, payload, r.text)
        assert r.json()["detail"][0]["loc"] == [where, param], r.text
    assert _tables(seeded) == before


@pytest.mark.parametrize("payload", PAYLOADS)
def test_cli_filter_flags_with_payloads(seeded: World, payload: str, capsys) -> None:
    home = str(seeded.app.state.engine.settings.home)
    before = _tables(seeded)
    code = ptm(["--home", home, "match", "--text", "锂电池防爆阀", "-k", "1000", "--region", payload, "--json"])
    out = capsys.readouterr()
    assert code == 0, out.err
    assert {m["id"] for m in json.loads(out.out)} == _brute_force(seeded, payload)
    code = ptm(["--home", home, "match", "--text", "锂电池防爆阀", "--ipc", payload + "x"])
    err = capsys.readouterr().err
    assert code == 2 and "ipc" in err and "Traceback" not in err
    assert _tables(seeded) == before


@pytest.mark.parametrize("payload", PAYLOADS)
def test_web_search_and_forms_with_payloads(seeded: World, payload: str) -> None:
    before = _tables(seeded)
    anon, _ = seeded.caller("anonymous")
    assert anon.get("/", params={"q": "锂电池防爆" + payload}).status_code == 200
    assert anon.get("/", params={"q": payload}).status_code == 200
    assert anon.get("/", params={"page": payload}).status_code == 422  # not an int: FastAPI's validation
    staff, _ = seeded.caller("staff")
    assert staff.get("/staff/demands", params={"page": payload}).status_code == 422
    assert staff.get("/staff/demands/" + quote(payload, safe="")).status_code in (403, 404)
    ent, csrf = seeded.caller("enterprise")
    text = "我们需要一种锂电池防爆技术，用于储能电站电池包的安全防护" + payload.replace("\x00", "")
    r = ent.post("/enterprise/demands/new", data={"csrf": csrf, "title": "注入" + payload.replace("\x00", ""), "text": text})
    assert r.status_code == 303, r.text
    stored = seeded.store.get("demands", r.headers["location"].rsplit("/", 1)[1])
    assert stored.text == text  # stored verbatim, as data
    after = _tables(seeded)
    assert after.pop("demands") == before.pop("demands") + 1 and after == before


def test_login_with_payload_is_just_a_wrong_password(seeded: World) -> None:
    import re

    anon, _ = seeded.caller("anonymous")
    for payload in PAYLOADS:
        token = re.findall(r'name="csrf" value="([^"]+)"', anon.get("/login").text)[-1]
        r = anon.post("/login", data={"username": "ent1" + payload, "password": payload or "x", "csrf": token})
        assert r.status_code in (401, 429), r.text


@pytest.mark.parametrize("payload", PAYLOADS)
def test_filter_sql_never_contains_the_value(payload: str) -> None:
    # The property behind the above: whatever is typed goes to the parameters, never into the SQL text.
    where, params = Filters(region="x" + payload).to_sql()
    assert where == "instr(region, ?) > 0" and params == ["x" + payload.strip()]
    assert build_filters(region="") is None


# ---- the code scan --------------------------------------------------------------------------------
#: Every expression that is spliced into SQL text anywhere in api/, indexer/, matcher/, with why it is safe.
#: A new one fails the scan: bind the value with `?` instead, or add it here after checking its whitelist.
REVIEWED_SQL_PARTS = {
    "marks": "only '?' placeholders: ','.join('?' * n)",
    "_table(kind)": "indexer.store._table: KINDS only, else ValueError",
    "table": "_table(kind) result in Store.upsert",
    "kind": "a KINDS value (doctor, backup iterate over the constant)",
    "assignments": "column names from a fixed dict (store: FILTER/NUMBER_COLUMNS; webstore.update_job: allowed set)",
    "name": "store migration: keys of FILTER_COLUMNS / NUMBER_COLUMNS",
    "sql_type": "store migration: values of FILTER_COLUMNS / NUMBER_COLUMNS",
    "where": "Filters.to_sql / store clauses: fixed column names, values bound",
    "statement": "store migration: a constant statement list",
    "_SCHEMA": "constant DDL",
    "sql + ' ORDER BY created DESC'": "webstore.interests: constant text plus '?' placeholders",
    "'ROLLBACK' if rollback else 'COMMIT'": "constant",
    "int(self.busy_timeout_ms)": "an int",
    "_EVENT_COLUMNS": "ledger: constant column list",
    "_SESSION_COLUMNS": "ledger: constant column list",
    "_DEAL_COLUMNS": "ledger: constant column list",
    "_NOW": "ledger: constant SQL expression",
    "clause": "ledger.deals: fixed 'WHERE <column>=?' choices",
}
SQL_CALLS = {"execute", "executemany", "executescript", "select_int_ids"}


def _spliced_parts(sql: ast.expr) -> list[str]:
    if isinstance(sql, ast.Constant):
        return []
    if isinstance(sql, ast.JoinedStr):
        return [ast.unparse(v.value) for v in sql.values if isinstance(v, ast.FormattedValue)]
    return [ast.unparse(sql)]


def test_sql_text_is_composed_only_from_reviewed_parts() -> None:
    unreviewed = []
    for path in sorted(p for d in ("api", "indexer", "matcher") for p in (ROOT / d).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in SQL_CALLS):
                continue
            args = node.args[1:] if node.func.attr == "select_int_ids" else node.args
            if not args:
                continue
            if isinstance(args[0], ast.Call) and ast.unparse(args[0].func).endswith("format"):
                unreviewed.append(f"{path.relative_to(ROOT)}:{node.lineno}: str.format() SQL")
            unreviewed += [f"{path.relative_to(ROOT)}:{node.lineno}: {part}" for part in _spliced_parts(args[0])
                           if part not in REVIEWED_SQL_PARTS]
    assert not unreviewed, ("SQL text built from unreviewed expressions (bind user values with ?; add a whitelisted "
                            "name to REVIEWED_SQL_PARTS only after checking it):\n" + "\n".join(unreviewed))


def test_the_whitelists_behind_the_reviewed_parts_refuse_other_names(seeded: World) -> None:
    from indexer import store as store_module

    with pytest.raises(ValueError, match="kind must be one of"):
        store_module._table("patents; DROP TABLE patents")
    with pytest.raises(ValueError):
        seeded.app.state.web.update_job(seeded.job_id, **{"status=status; --": "x"})
    with pytest.raises(ValueError):
        seeded.app.state.web.count("users")
    assert set(store_module.FILTER_COLUMNS) | set(store_module.NUMBER_COLUMNS) <= {
        "legal_status", "patent_type", "applicant_type", "region", "transferable", "application_date", "ipc",
        "application_number", "publication_number", "value_score", "claim_count", "citation_count", "transfer_count",
        "licence_count", "pledge_count"}
