"""The HTTP API through TestClient: batch upsert, demands, both match directions, 422s naming the field; tokens and scopes."""
from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.auth import create_token, create_user

PASSWORD = "a long enough password"


@pytest.fixture(scope="module")
def app(writable_indexed_settings):
    return create_app(writable_indexed_settings)


def token_client(app, username: str, role: str, org: str, scopes: list[str]) -> TestClient:
    create_user(app.state.web, username, role, org, PASSWORD)
    return TestClient(app, headers={"Authorization": f"Bearer {create_token(app.state.web, username, scopes)}"})


@pytest.fixture(scope="module")
def client(app):
    """A script with a staff token holding every scope: what the existing API callers use."""
    return token_client(app, "script", "staff", "", ["read", "patents:write", "demands:write"])


def test_health(client):
    body = client.get("/health").json()
    assert body["status"] == "ok" and body["patents"] >= 80 and body["index"]["patents"]


def test_adhoc_match_returns_explained_results(client):
    r = client.post("/match", json={"text": "需要提高钢材表面的耐磨性能，减少粘钢", "k": 5})
    assert r.status_code == 200
    results = r.json()
    assert len(results) == 5 and results[0]["rank"] == 1
    assert {"dense_rank", "bm25_rank", "matched_terms", "score", "title", "quality", "snippet", "ipc"} <= set(results[0])
    assert results[0]["quality"] in ("强", "中", "弱")
    assert all(f"【{t}】" in results[0]["snippet"] for t in results[0]["matched_terms"][:1])


def test_post_demand_then_its_matches_and_the_reverse(client):
    r = client.post("/demands", json={"title": "电池安全", "text": "我们生产动力电池，想找防止热失控和爆炸的技术", "contact": "王经理 138"})
    assert r.status_code == 201, r.text
    did = r.json()["id"]
    m = client.get(f"/demands/{did}/matches", params={"k": 3})
    assert m.status_code == 200 and len(m.json()) == 3
    top_patent = m.json()[0]["id"]
    rev = client.get(f"/patents/{top_patent}/matches", params={"k": 50}).json()
    assert did in [x["id"] for x in rev]
    assert "王经理" not in m.text + str(rev)  # contacts never appear in match results


def test_post_patents_batch_is_all_or_nothing(client):
    before = client.get("/health").json()["patents"]
    good = {"id": "CN999999999A", "title": "一种新型防爆阀", "abstract": "一种用于锂电池包的防爆阀，包括阀体和泄压膜。"}
    bad = {"id": "CN999999998A", "title": "无摘要", "abstract": ""}
    r = client.post("/patents", json=[good, bad])
    assert r.status_code == 422 and "1.abstract" in str(r.json()["detail"])
    assert client.get("/health").json()["patents"] == before
    r = client.post("/patents", json=[good])
    assert r.status_code == 200 and r.json()["added"] == 1
    assert client.get("/patents/CN999999999A/matches").status_code == 200


@pytest.mark.parametrize("payload, field", [
    ({"k": 5}, "text"),
    ({"text": "", "k": 5}, "text"),
    ({"text": "battery safety only in English", "k": 5}, "text"),
    ({"text": "防爆电池" * 10_000, "k": 5}, "text"),
    ({"text": "防爆电池", "k": 0}, "k"),
])
def test_validation_errors_name_the_field(client, payload, field):
    r = client.post("/match", json=payload)
    assert r.status_code == 422
    assert field in str(r.json()["detail"])


def test_unknown_ids_are_404(client):
    assert client.get("/demands/nope/matches").status_code == 404
    assert client.get("/patents/nope/matches").status_code == 404


def test_openapi_docs(client):
    assert client.get("/docs").status_code == 200
    assert "/match" in client.get("/openapi.json").json()["paths"]


def test_delete_removes_from_store_and_index(client):
    client.post("/patents", json=[{"id": "CN888888888A", "title": "一种茶叶烘干机", "abstract": "一种茶叶烘干机，包括热风炉和多层烘盘。"}])
    assert "CN888888888A" in [m["id"] for m in client.post("/match", json={"text": "茶叶烘干设备", "k": 20}).json()]
    assert client.delete("/patents/CN888888888A").status_code == 200
    assert "CN888888888A" not in [m["id"] for m in client.post("/match", json={"text": "茶叶烘干设备", "k": 20}).json()]
    assert client.delete("/patents/CN888888888A").status_code == 404


def test_filters_on_both_match_endpoints(client):
    from indexer.records import Patent

    engine = client.app.state.engine
    first, second = engine.store.list("patents", limit=2)
    engine.store.upsert("patents", [  # metadata only: the texts, so the index, stay as they are
        Patent(id=first.id, title=first.title, abstract=first.abstract, ipc=["H04N5/225"], legal_status="有效", region="北京市"),
        Patent(id=second.id, title=second.title, abstract=second.abstract, ipc=["G06T7/00"], legal_status="有效", region="上海市"),
    ])
    r = client.post("/match", json={"text": "需要提高钢材表面的耐磨性能", "k": 5, "legal_status": ["有效"], "ipc": ["H04N", "G06T"]})
    assert r.status_code == 200 and sorted(m["id"] for m in r.json()) == sorted([first.id, second.id])
    demand = engine.store.list("demands", limit=1)[0].id
    r = client.get(f"/demands/{demand}/matches", params={"k": 5, "region": "北京", "legal_status": ["有效", "审中"]})
    assert r.status_code == 200 and [m["id"] for m in r.json()] == [first.id]


@pytest.mark.parametrize(("params", "field", "listed"), [
    ({"legal_status": "good"}, "legal_status", "有效, 审中"),
    ({"ipc": "电视"}, "ipc", "subclass (H04N)"),
    ({"patent_type": "软件"}, "patent_type", "发明, 实用新型, 外观设计"),
    ({"date_from": "yesterday"}, "date_from", "YYYY-MM-DD"),
])
def test_invalid_filters_are_422_listing_the_valid_options(client, params, field, listed):
    demand = client.app.state.engine.store.list("demands", limit=1)[0].id
    r = client.get(f"/demands/{demand}/matches", params=params)
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["query", field] and listed in r.text
    r = client.post("/match", json={"text": "防爆电池", **params})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", field]


# ---- tokens and scopes --------------------------------------------------------------------------
def test_health_and_adhoc_match_are_public(app):
    anon = TestClient(app)
    assert anon.get("/health").status_code == 200
    assert anon.post("/match", json={"text": "防爆电池", "k": 3}).status_code == 200


def test_writes_and_stored_matches_need_a_token(app, client):
    anon = TestClient(app)
    demand = app.state.engine.store.list("demands", limit=1)[0].id
    patent = app.state.engine.store.list("patents", limit=1)[0].id
    for method, path, body in (("post", "/patents", [{"id": "CN1A", "title": "一种阀", "abstract": "一种阀门。"}]),
                               ("post", "/demands", {"text": "我们需要防爆电池"}), ("delete", f"/patents/{patent}", None),
                               ("delete", f"/demands/{demand}", None), ("get", f"/demands/{demand}/matches", None),
                               ("get", f"/patents/{patent}/matches", None)):
        r = anon.request(method, path, json=body)
        assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer", path
        bad = anon.request(method, path, json=body, headers={"Authorization": "Bearer ptm_forged"})
        assert bad.status_code == 401, path
    assert app.state.engine.store.get("patents", patent) and app.state.engine.store.get("demands", demand)


def test_a_token_without_the_scope_is_403(app):
    reader = token_client(app, "reader", "staff", "", ["read"])
    r = reader.post("/patents", json=[{"id": "CN2A", "title": "一种阀", "abstract": "一种阀门。"}])
    assert r.status_code == 403 and "patents:write" in r.text
    assert reader.post("/demands", json={"text": "我们需要防爆电池"}).status_code == 403
    demand = app.state.engine.store.list("demands", limit=1)[0].id
    assert reader.get(f"/demands/{demand}/matches", params={"k": 2}).status_code == 200


def test_role_limits_token_scopes(app):
    create_user(app.state.web, "ent-role", "enterprise", "某企业", PASSWORD)
    with pytest.raises(ValueError, match="cannot hold scope 'patents:write'"):
        create_token(app.state.web, "ent-role", ["patents:write"])


def test_enterprise_token_acts_only_on_its_own_demands(app):
    ent = token_client(app, "ent-api", "enterprise", "甲企业", ["read", "demands:write"])
    other = token_client(app, "ent-api2", "enterprise", "乙企业", ["read", "demands:write"])
    r = ent.post("/demands", json={"title": "电池", "text": "我们生产动力电池，想找防止热失控的技术", "enterprise": ""})
    assert r.status_code == 201
    did = r.json()["id"]
    assert app.state.engine.store.get("demands", did).enterprise == "甲企业"
    assert ent.post("/demands", json={"text": "我们需要防爆电池", "enterprise": "乙企业"}).status_code == 403
    assert other.get(f"/demands/{did}/matches").status_code == 403
    assert other.delete(f"/demands/{did}").status_code == 403
    assert other.post("/demands", json={"id": did, "text": "我们需要防爆电池"}).status_code == 403
    assert ent.get(f"/demands/{did}/matches", params={"k": 2}).status_code == 200
    patent = app.state.engine.store.list("patents", limit=1)[0].id
    assert ent.get(f"/patents/{patent}/matches").status_code == 403  # would list other enterprises' demands
    assert ent.delete(f"/demands/{did}").status_code == 200


def test_university_token_writes_only_its_own_patents(app):
    uni = token_client(app, "uni-api", "university", "测试理工大学", ["read", "patents:write"])
    own = {"id": "CN777777777A", "title": "一种防爆阀", "abstract": "一种用于锂电池包的防爆阀。", "applicants": ["测试理工大学"]}
    foreign = {"id": "CN777777778A", "title": "一种防爆阀", "abstract": "一种用于锂电池包的防爆阀。", "applicants": ["别的大学"]}
    r = uni.post("/patents", json=[own, foreign])
    assert r.status_code == 403 and "item 1" in r.text
    assert app.state.engine.store.get("patents", "CN777777777A") is None  # all or nothing
    assert uni.post("/patents", json=[own]).status_code == 200
    stored_other = next(p for p in app.state.engine.store.list("patents", limit=50) if p.applicants and "测试理工大学" not in p.applicants[0])
    assert uni.delete(f"/patents/{stored_other.id}").status_code == 403
    # Re-posting another's patent with its own name as applicant does not make it the university's.
    claim = {"id": stored_other.id, "title": "x", "abstract": "一种东西。", "applicants": ["测试理工大学"]}
    assert uni.post("/patents", json=[claim]).status_code == 403
    by_number = {**claim, "id": "CN000000001A", "application_number": "CN202110001234.5"}
    app.state.engine.store.upsert("patents", [stored_other.model_copy(update={"application_number": "CN202110001234.5"})])
    assert uni.post("/patents", json=[by_number]).status_code == 403  # the store would merge it into stored_other
    assert app.state.engine.store.get("patents", stored_other.id).applicants == stored_other.applicants
    assert uni.get("/patents/CN777777777A/matches").status_code == 200
    assert uni.get(f"/patents/{stored_other.id}/matches").status_code == 403
    assert uni.delete("/patents/CN777777777A").status_code == 200
