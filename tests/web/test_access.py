"""Access rules, each denial tested: enterprise ↔ own demands, contacts for staff only, university ↔ own patents,
anonymous ↔ public catalogue only; sessions, CSRF and escaping."""
from __future__ import annotations

from tests.web.helpers import ENTERPRISE, PASSWORD, csrf_of, login


def post_demand(client, **fields) -> object:
    page = client.get("/enterprise/demands/new")
    data = {"title": "动力电池热失控防护", "text": "我们生产动力电池，想找防止电池热失控和爆炸的安全技术，要求针刺不起火。",
            "contact": "王经理 13800000000", "csrf": csrf_of(page.text), **fields}
    return client.post("/enterprise/demands/new", data=data, follow_redirects=False)


def demand_id_of(response) -> str:
    assert response.status_code == 303, response.text[:500]
    return response.headers["location"].rsplit("/", 1)[1]


def test_anonymous_sees_only_the_public_catalogue(anon, web_app):
    home = anon.get("/")
    assert home.status_code == 200 and "可转化专利目录" in home.text
    r = anon.get("/", params={"q": "锂电池安全防爆"})
    assert r.status_code == 200 and "<mark>" in r.text
    for path in ("/enterprise", "/enterprise/demands/new", "/university", "/staff", "/staff/demands", "/import"):
        r = anon.get(path, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"].startswith("/login?next="), path
    demand = web_app.state.engine.store.list("demands", limit=1)[0]
    assert anon.get(f"/staff/demands/{demand.id}", follow_redirects=False).status_code == 303
    assert demand.text[:20] not in home.text  # no demands in the catalogue
    # The JSON API: demand matches and the reverse need a token.
    assert anon.get(f"/demands/{demand.id}/matches").status_code == 401


def test_wrong_password_and_forged_login_are_refused(web_app):
    from fastapi.testclient import TestClient

    c = TestClient(web_app)
    page = c.get("/login")
    r = c.post("/login", data={"username": "ent1", "password": "wrong password", "csrf": csrf_of(page.text)})
    assert r.status_code == 401 and "用户名或密码不正确" in r.text
    r = TestClient(web_app).post("/login", data={"username": "ent1", "password": PASSWORD, "csrf": "forged"})
    assert r.status_code == 403


def test_repeated_wrong_passwords_lock_the_name_for_a_while(web_app):
    from fastapi.testclient import TestClient

    from api.auth import create_user

    create_user(web_app.state.web, "victim", "staff", "", PASSWORD)
    c = TestClient(web_app)
    for _ in range(5):
        r = c.post("/login", data={"username": "victim", "password": "guess guess", "csrf": csrf_of(c.get("/login").text)})
        assert r.status_code == 401
    r = c.post("/login", data={"username": "victim", "password": PASSWORD, "csrf": csrf_of(c.get("/login").text)})
    assert r.status_code == 429 and "15 分钟" in r.text
    assert login(web_app, "ent1")  # other names are unaffected


def test_session_cookie_is_httponly_lax_and_stored_hashed(web_app):
    from fastapi.testclient import TestClient

    c = TestClient(web_app)
    page = c.get("/login")
    r = c.post("/login", data={"username": "ent1", "password": PASSWORD, "csrf": csrf_of(page.text)}, follow_redirects=False)
    cookie = r.headers["set-cookie"]
    assert "ptm_session=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie.replace("Lax", "lax")
    value = c.cookies["ptm_session"]
    with web_app.state.web.connect() as con:
        stored = [row[0] for row in con.execute("SELECT token_hash FROM sessions")]
        hashes = [row[0] for row in con.execute("SELECT password_hash FROM users")]
    assert value not in stored and all(h.startswith("$argon2") for h in hashes)


def test_every_form_post_needs_the_csrf_token(as_ent, as_staff):
    r = as_ent.post("/enterprise/demands/new", data={"title": "x", "text": "我们需要一种防爆电池技术方案，用于储能电站。"})
    assert r.status_code == 403
    r = as_ent.post("/enterprise/demands/new", data={"title": "x", "text": "我们需要一种防爆电池技术方案，用于储能电站。", "csrf": "nope"})
    assert r.status_code == 403
    assert as_staff.post("/staff/reindex", data={}).status_code == 403
    assert as_staff.post("/logout", data={}).status_code == 403


def test_enterprise_posts_a_demand_and_sees_explained_candidates(as_ent, web_app):
    did = demand_id_of(post_demand(as_ent))
    stored = web_app.state.engine.store.get("demands", did)
    assert stored.enterprise == ENTERPRISE
    page = as_ent.get(f"/enterprise/demands/{did}")
    assert page.status_code == 200 and "候选专利" in page.text and "匹配度" in page.text
    assert "<mark>" in page.text or "没有合适的匹配" in page.text
    assert did in as_ent.get("/enterprise").text


def test_field_level_validation_messages(as_ent):
    r = post_demand(as_ent, title="", text="太短", budget_wan="很多")
    assert r.status_code == 422
    assert "请填写需求标题" in r.text and "请至少写 20 字" in r.text and "预算须为" in r.text
    r = post_demand(as_ent, title="标" * 101)
    assert r.status_code == 422 and "需求标题最多 100 字" in r.text
    r = post_demand(as_ent, text="we need a better battery separator for electric vehicles please")
    assert r.status_code == 422 and "请用中文描述" in r.text


def test_enterprise_cannot_see_or_edit_another_enterprises_demand(as_ent, as_ent2, web_app):
    did = demand_id_of(post_demand(as_ent, title="专属需求"))
    for path in (f"/enterprise/demands/{did}", f"/enterprise/demands/{did}/edit"):
        assert as_ent2.get(path).status_code == 403
    csrf = csrf_of(as_ent2.get("/enterprise/demands/new").text)
    r = as_ent2.post(f"/enterprise/demands/{did}/edit", data={"title": "改掉", "text": "我们需要一种防爆电池技术方案，用于储能电站。", "csrf": csrf})
    assert r.status_code == 403
    assert as_ent2.post(f"/enterprise/demands/{did}/delete", data={"csrf": csrf}).status_code == 403
    patent = web_app.state.engine.store.list("patents", limit=1)[0].id
    assert as_ent2.post(f"/enterprise/demands/{did}/interest", data={"csrf": csrf, "patent_id": patent}).status_code == 403
    assert web_app.state.engine.store.get("demands", did).title == "专属需求"
    assert did not in as_ent2.get("/enterprise").text
    # Other roles' pages are closed to an enterprise.
    assert as_ent2.get("/staff").status_code == 403 and as_ent2.get("/university").status_code == 403


def test_enterprise_edits_its_own_demand_and_marks_interest(as_ent, web_app, as_uni):
    did = demand_id_of(post_demand(as_ent, title="原标题"))
    csrf = csrf_of(as_ent.get(f"/enterprise/demands/{did}/edit").text)
    r = as_ent.post(f"/enterprise/demands/{did}/edit", data={"title": "新标题", "text": "我们需要提高钢材表面的耐磨性能，减少轧辊粘钢现象。", "csrf": csrf},
                    follow_redirects=False)
    assert r.status_code == 303 and web_app.state.engine.store.get("demands", did).title == "新标题"
    # Interest in one of the university's patents shows on the university's page, without the contact.
    uni_patent = next(p for p in web_app.state.engine.store.list("patents", limit=100)
                      if any(as_uni_org(web_app) in a for a in p.applicants))
    r = as_ent.post(f"/enterprise/demands/{did}/interest", data={"csrf": csrf, "patent_id": uni_patent.id}, follow_redirects=False)
    assert r.status_code == 303
    assert web_app.state.web.interests(demand_id=did)[0]["patent_id"] == uni_patent.id
    page = as_uni.get("/university").text
    assert ENTERPRISE in page and "新标题" in page and "13800000000" not in page


def as_uni_org(web_app) -> str:
    return web_app.state.web.user_by_name("uni1")[0].org


def test_contacts_are_visible_to_staff_only(as_ent, as_staff, as_uni, anon, web_app):
    did = demand_id_of(post_demand(as_ent, contact="李工 13912345678"))
    assert "13912345678" in as_staff.get(f"/staff/demands/{did}").text
    for client in (as_uni, anon):
        for path in (f"/staff/demands/{did}", "/", "/university"):
            assert "13912345678" not in client.get(path).text
    # The enterprise sees its own contact (it wrote it); no other enterprise can open the demand at all.


def test_user_text_is_escaped(as_ent, as_staff):
    did = demand_id_of(post_demand(as_ent, title="<script>alert(1)</script>防爆",
                                   text="我们需要<script>alert('x')</script>防止锂电池热失控的安全技术方案，用于储能电站。"))
    for client, path in ((as_ent, f"/enterprise/demands/{did}"), (as_staff, f"/staff/demands/{did}"), (as_ent, "/enterprise")):
        html = client.get(path).text
        assert "<script>alert" not in html and "&lt;script&gt;alert" in html


def test_university_edits_only_its_own_patents(as_uni, web_app):
    store = web_app.state.engine.store
    org = as_uni_org(web_app)
    mine = next(p for p in store.list("patents", limit=100) if any(org in a for a in p.applicants))
    other = next(p for p in store.list("patents", limit=100) if p.applicants and not any(org in a for a in p.applicants))
    assert mine.id in as_uni.get("/university").text and other.id not in as_uni.get("/university").text
    page = as_uni.get(f"/university/patents/{mine.id}/edit")
    csrf = csrf_of(page.text)
    r = as_uni.post(f"/university/patents/{mine.id}/edit", data={"csrf": csrf, "licence_terms": "作价入股", "price_wan": "88"},
                    follow_redirects=False)
    assert r.status_code == 303
    saved = store.get("patents", mine.id)
    assert (saved.transferable, saved.licence_terms, saved.price_wan) == (False, "作价入股", 88.0)
    assert saved.abstract == mine.abstract
    r = as_uni.post(f"/university/patents/{mine.id}/edit", data={"csrf": csrf, "licence_terms": "白送", "price_wan": "-1"})
    assert r.status_code == 422 and "请选择" in r.text and "报价须为" in r.text
    assert as_uni.get(f"/university/patents/{other.id}/edit").status_code == 403
    r = as_uni.post(f"/university/patents/{other.id}/edit", data={"csrf": csrf, "transferable": "on", "price_wan": "1"})
    assert r.status_code == 403 and store.get("patents", other.id).price_wan == other.price_wan
    assert as_uni.get("/staff").status_code == 403 and as_uni.get("/enterprise").status_code == 403


def test_staff_dashboard_demands_and_shortlist(as_staff, web_app):
    dash = as_staff.get("/staff")
    assert dash.status_code == 200 and "可转化专利" in dash.text and "已完成转化" in dash.text
    lst = as_staff.get("/staff/demands")
    assert lst.status_code == 200 and "前三名候选专利" in lst.text
    demand = web_app.state.engine.store.list("demands", limit=1)[0]
    page = as_staff.get(f"/staff/demands/{demand.id}")
    patent = web_app.state.engine.match_demand(demand.id, 1)[0].id
    r = as_staff.post(f"/staff/demands/{demand.id}/shortlist", data={"csrf": csrf_of(page.text), "patent_id": patent},
                      follow_redirects=False)
    assert r.status_code == 303 and web_app.state.web.shortlist(demand.id) == [patent]
    assert "移出候选清单" in as_staff.get(f"/staff/demands/{demand.id}").text


def test_logout_ends_the_session(web_app):
    c = login(web_app, "staff1")
    page = c.get("/staff")
    assert c.post("/logout", data={"csrf": csrf_of(page.text)}, follow_redirects=False).status_code == 303
    assert c.get("/staff", follow_redirects=False).status_code == 303
