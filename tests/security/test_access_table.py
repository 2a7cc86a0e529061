"""Walks EVERY route of the app as anonymous, enterprise, another enterprise, university and staff, and checks each
answer against the access table in api/access.py (which the README's table is generated from); also checks that a
demand's contact shows up only for staff and the enterprise that posted it."""
from __future__ import annotations

import re
import time
from collections.abc import Callable

import pytest

from api.access import ACCESS, VISIBLE_TO, access_table_markdown, allowed, declared_routes, denied_status
from tests.security.conftest import CALLERS, CONTACT, World
from tests.web.helpers import PASSWORD, write_csv

Request = Callable[..., object]  # (client, csrf, world) -> httpx.Response


def _login(c, csrf, w):
    # The login form's token is the page's last CSRF field; a signed-in caller's page also has the logout form's.
    token = re.findall(r'name="csrf" value="([^"]+)"', c.get("/login").text)[-1]
    return c.post("/login", data={"username": "ent1", "password": PASSWORD, "csrf": token})


def _demand_form(w: World) -> dict:
    return {"title": "储能电池热失控防护", "contact": CONTACT,
            "text": "我们生产储能电池，想找防止电池热失控和起火爆炸的安全技术，要求针刺不起火。"}


def _finish(response, w: World):
    """A request that started a background job: wait for it, so the next requests do not race its writes."""
    if response.status_code == 303 and response.headers["location"].startswith("/jobs/"):
        job_id = int(response.headers["location"].rsplit("/", 1)[1])
        for _ in range(600):
            if w.app.state.web.job(job_id).status in ("done", "failed"):
                break
            time.sleep(0.1)
    return response


def _import(c, csrf, w, confirm: bool = False):
    path = write_csv(w.app.state.engine.settings.home / "walk.csv", w.university_org)
    with open(path, "rb") as fh:
        r = c.post("/import", data={"csrf": csrf, "kind": "patents"}, files={"file": ("walk.csv", fh, "text/csv")})
    if not confirm or r.status_code != 200:
        return r
    upload = re.search(r'name="upload" value="([^"]+)"', r.text).group(1)
    return _finish(c.post("/import/confirm", data={"csrf": csrf, "kind": "patents", "upload": upload}), w)


#: How to call each route so that, for a role allowed to, it succeeds with this status; the records named are
#: owned by the 'enterprise' / 'university' callers. Routes without a recipe get a generic probe (see below).
RECIPES: dict[tuple[str, str], tuple[int, Request]] = {
    ("GET", "/"): (200, lambda c, t, w: c.get("/", params={"q": "锂电池防爆安全技术"})),
    ("GET", "/login"): (200, lambda c, t, w: c.get("/login")),
    ("POST", "/login"): (303, _login),
    ("POST", "/logout"): (303, lambda c, t, w: c.post("/logout", data={"csrf": t})),
    ("GET", "/static"): (200, lambda c, t, w: c.get("/static/progress.js")),
    ("GET", "/openapi.json"): (200, lambda c, t, w: c.get("/openapi.json")),
    ("GET", "/docs"): (200, lambda c, t, w: c.get("/docs")),
    ("GET", "/docs/oauth2-redirect"): (200, lambda c, t, w: c.get("/docs/oauth2-redirect")),
    ("GET", "/redoc"): (200, lambda c, t, w: c.get("/redoc")),
    ("GET", "/health"): (200, lambda c, t, w: c.get("/health")),
    ("POST", "/match"): (200, lambda c, t, w: c.post("/match", json={"text": "锂电池热失控防护技术", "k": 3})),
    ("GET", "/jobs/{job_id}"): (200, lambda c, t, w: c.get(f"/jobs/{w.job_id}")),
    ("GET", "/jobs/{job_id}/status"): (200, lambda c, t, w: c.get(f"/jobs/{w.job_id}/status")),
    ("GET", "/enterprise"): (200, lambda c, t, w: c.get("/enterprise")),
    ("GET", "/enterprise/demands/new"): (200, lambda c, t, w: c.get("/enterprise/demands/new")),
    ("POST", "/enterprise/demands/new"): (303, lambda c, t, w: c.post("/enterprise/demands/new", data={"csrf": t, **_demand_form(w)})),
    ("GET", "/enterprise/demands/{demand_id}"): (200, lambda c, t, w: c.get(f"/enterprise/demands/{w.demand_id}")),
    ("GET", "/enterprise/demands/{demand_id}/edit"): (200, lambda c, t, w: c.get(f"/enterprise/demands/{w.demand_id}/edit")),
    ("POST", "/enterprise/demands/{demand_id}/edit"): (303, lambda c, t, w: c.post(
        f"/enterprise/demands/{w.fresh_demand()}/edit", data={"csrf": t, **_demand_form(w)})),
    ("POST", "/enterprise/demands/{demand_id}/delete"): (303, lambda c, t, w: c.post(
        f"/enterprise/demands/{w.fresh_demand()}/delete", data={"csrf": t})),
    ("POST", "/enterprise/demands/{demand_id}/interest"): (303, lambda c, t, w: c.post(
        f"/enterprise/demands/{w.fresh_demand()}/interest", data={"csrf": t, "patent_id": w.patent_id})),
    ("GET", "/university"): (200, lambda c, t, w: c.get("/university")),
    ("GET", "/university/patents/{patent_id}/edit"): (200, lambda c, t, w: c.get(f"/university/patents/{w.patent_id}/edit")),
    ("POST", "/university/patents/{patent_id}/edit"): (303, lambda c, t, w: c.post(
        f"/university/patents/{w.fresh_patent()}/edit", data={"csrf": t, "transferable": "on", "licence_terms": "许可", "price_wan": "30"})),
    ("GET", "/import"): (200, lambda c, t, w: c.get("/import")),
    ("POST", "/import"): (200, _import),
    ("POST", "/import/confirm"): (303, lambda c, t, w: _import(c, t, w, confirm=True)),
    ("GET", "/staff"): (200, lambda c, t, w: c.get("/staff")),
    ("GET", "/staff/demands"): (200, lambda c, t, w: c.get("/staff/demands")),
    ("GET", "/staff/demands/{demand_id}"): (200, lambda c, t, w: c.get(f"/staff/demands/{w.demand_id}")),
    ("POST", "/staff/demands/{demand_id}/shortlist"): (303, lambda c, t, w: c.post(
        f"/staff/demands/{w.demand_id}/shortlist", data={"csrf": t, "patent_id": w.patent_id})),
    ("POST", "/staff/reindex"): (303, lambda c, t, w: _finish(c.post("/staff/reindex", data={"csrf": t}), w)),
    ("POST", "/patents"): (200, lambda c, t, w: c.post("/patents", json=[{
        "id": w.fresh_patent(), "title": "一种走查用电池防爆阀", "abstract": "一种用于锂电池包的防爆阀，包括阀体和泄压膜。"}])),
    ("DELETE", "/patents/{patent_id}"): (200, lambda c, t, w: c.delete(f"/patents/{w.fresh_patent()}")),
    ("POST", "/demands"): (201, lambda c, t, w: c.post("/demands", json={"id": w.fresh_demand(), **_demand_form(w)})),
    ("DELETE", "/demands/{demand_id}"): (200, lambda c, t, w: c.delete(f"/demands/{w.fresh_demand()}")),
    ("GET", "/demands/{demand_id}/matches"): (200, lambda c, t, w: c.get(f"/demands/{w.demand_id}/matches")),
    ("GET", "/patents/{patent_id}/matches"): (200, lambda c, t, w: c.get(f"/patents/{w.patent_id}/matches")),
}


def _probe(method: str, path: str) -> Request:
    """For a route without a recipe (added by later work): path parameters filled with 0, a form with only the CSRF
    token. It proves the denials; for allowed roles it proves only 'not refused and no crash'."""
    url = re.sub(r"\{[^}]+\}", "0", path)
    return lambda c, t, w: c.request(method, url, data={"csrf": t} if method != "GET" else None)


def _refused_by_role(r) -> bool:
    """A sign-in demand or a role refusal; a probe's made-up id may still get 'no such record' (403/404 page)."""
    login = r.status_code == 303 and r.headers["location"].startswith("/login")
    return login or r.status_code == 401 or (r.status_code == 403 and ("此页面仅对" in r.text or "lacks the scope" in r.text))


def _role(caller: str) -> str:
    return "enterprise" if caller == "other_enterprise" else caller


#: Whose records the requests name, by kind (see the RECIPES and World).
OWNERS = {"demand": "enterprise", "patent": "university", "job": "university"}


def _owner(caller: str, record: str | None) -> bool:
    return record is not None and OWNERS[record] == caller


def _sees_contact(caller: str) -> bool:
    who = {"staff"} | ({"owner"} if caller == "enterprise" else set())
    return bool(who & VISIBLE_TO["demand.contact"])


def test_every_route_is_in_the_access_table(world: World) -> None:
    routes = declared_routes(world.app)
    missing = sorted(routes - set(ACCESS))
    assert not missing, (f"routes without an access rule: {missing}. Add each to ACCESS in api/access.py (who may call "
                         "it, on whose records), then paste access_table_markdown() into README's access table")
    stale = sorted(set(ACCESS) - routes)
    assert not stale, f"ACCESS lists routes the app no longer has: {stale}; remove them from api/access.py"
    assert not set(RECIPES) - routes, f"RECIPES name routes the app no longer has: {sorted(set(RECIPES) - routes)}"


@pytest.mark.parametrize("caller", CALLERS)
def test_each_route_answers_each_role_as_the_table_says(world: World, caller: str) -> None:
    failures = []
    for route in sorted(declared_routes(world.app) & set(ACCESS)):
        rule = ACCESS[route]
        ok_status, send = RECIPES.get(route, (None, _probe(*route)))
        client, csrf = world.caller(caller)
        r = send(client, csrf, world)
        got = r.status_code
        if allowed(rule, _role(caller), _owner(caller, rule.own)):
            good = got == ok_status if ok_status else (not _refused_by_role(r) and got < 500)
        else:
            expected = 404 if rule.hidden and caller != "anonymous" and _role(caller) in rule.roles else denied_status(rule, _role(caller))
            good = got == expected and (got != 303 or r.headers["location"].startswith("/login?next="))
            ok_status = expected
        if not good:
            failures.append(f"{route[0]} {route[1]}: expected {ok_status}, got {got} {r.text[:160]!r}")
        if CONTACT in r.text and not _sees_contact(caller):
            failures.append(f"{route[0]} {route[1]}: shows the enterprise's contact to {caller}")
    assert not failures, f"as {caller}:\n" + "\n".join(failures)


@pytest.mark.parametrize(("caller", "path"), [("staff", "/staff/demands/{d}"), ("enterprise", "/enterprise/demands/{d}")])
def test_contact_is_shown_where_the_table_allows(world: World, caller: str, path: str) -> None:
    # The positive control: without it, a contact missing everywhere would pass the walk above.
    client, _ = world.caller(caller)
    assert CONTACT in client.get(path.format(d=world.demand_id)).text


def test_contact_is_never_in_json_match_lists(world: World) -> None:
    client, _ = world.caller("enterprise")
    assert CONTACT not in client.get(f"/demands/{world.demand_id}/matches").text
    staff, _ = world.caller("staff")
    assert CONTACT not in staff.get(f"/patents/{world.patent_id}/matches").text


def test_readme_table_is_generated_from_the_same_data() -> None:
    table = access_table_markdown()
    assert table.count("\n") == len(ACCESS) + 2
    assert "| GET | `/staff` | — | — | — | ✓ |" in table
    assert "| GET | `/enterprise/demands/{demand_id}` | — | own | — | — |" in table
