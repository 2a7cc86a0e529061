"""The HTTP API through TestClient: batch upsert, demands, both match directions, 422s naming the field."""
from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from api.app import create_app


@pytest.fixture(scope="module")
def client(writable_indexed_settings):
    return TestClient(create_app(writable_indexed_settings))


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
