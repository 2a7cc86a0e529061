"""Script injection, in a real browser: demand and patent texts carrying HTML/JavaScript payloads, stored through the
API, render as inert text on every page that shows them — no script runs, no dialog opens, no live element or
handler is created — and every page carries a Content-Security-Policy under which the app's own progress.js still
works. Uses tests/web/test_browser.py's uvicorn and Chromium fixtures and its rule: under CI a missing browser fails."""
from __future__ import annotations

import math

import pytest

import tests.web.test_browser as browser_tests
from api.app import CSP
from tests.security.conftest import World
from tests.web.helpers import ENTERPRISE
from tests.web.test_browser import base_url, browser  # noqa: F401  (fixtures)

pytestmark = getattr(browser_tests, "pytestmark", [])
PAYLOADS = ['<script>window.__pwned=1</script>', '<img src=x onerror="window.__pwned=1">',
            '<a href="javascript:window.__pwned=1">点我</a>', '"><svg onload=window.__pwned=1>',
            "'><script>alert(1)</script>", '<iframe srcdoc="<script>parent.__pwned=1</script>">']
PAYLOAD = " ".join(PAYLOADS)
#: Staff pages checked for inertness and the policy only: they list sessions and deals, which hold no payload here.
QUIET = ("/staff/sessions", "/staff/deals", "/staff/reports")
#: DOM facts that only an unescaped payload could create (the app's own pages have none of them).
LIVE_MARKUP = """() => ({
  inlineScripts: [...document.scripts].filter(s => !s.src).length,
  handlers: [...document.querySelectorAll('*')].filter(e => [...e.attributes].some(a => a.name.startsWith('on'))).length,
  jsLinks: [...document.querySelectorAll('a[href]')].filter(a => a.href.trim().toLowerCase().startsWith('javascript:')).length,
  frames: document.querySelectorAll('iframe, img[src="x"]').length,  // the dashboard's own charts are inline SVG
  pwned: typeof window.__pwned,
})"""


@pytest.fixture(scope="module")
def web_app(world: World):
    return world.app


@pytest.fixture(scope="module")
def hostile(world: World) -> dict[str, str]:
    """A demand (enterprise token) and a patent (university token) full of payloads, posted through the JSON API,
    plus an interest linking them and jobs whose messages carry payloads."""
    from fastapi.testclient import TestClient

    def api(who: str) -> TestClient:
        return TestClient(world.app, headers={"Authorization": f"Bearer {world.tokens[who]}"})

    r = api("enterprise").post("/demands", json={"title": "恶意需求" + PAYLOADS[0], "contact": PAYLOADS[1], "industry": PAYLOADS[3],
                                                  "text": "我们需要锂电池防爆阀技术，防止电池包热失控。" + PAYLOAD})
    assert r.status_code == 201, r.text
    demand_id, patent_id = r.json()["id"], "CN700000001A"
    r = api("university").post("/patents", json=[{
        "id": patent_id, "title": "一种锂电池防爆阀" + PAYLOADS[1], "applicants": [world.university_org],
        "abstract": "一种用于锂电池包的防爆阀，防止电池包热失控。" + PAYLOAD, "licence_terms": PAYLOADS[2], "region": PAYLOADS[3]}])
    assert r.status_code == 200, r.text
    web = world.app.state.web
    web.add_interest(demand_id, patent_id, ENTERPRISE)
    uni = web.user_by_name("uni1")[0]
    job = web.add_job("import", uni.id, message=PAYLOAD)
    web.update_job(job, status="done", message="导入完成" + PAYLOAD)
    total, demands = world.store.count("patents"), world.store.count("demands")
    return {"demand": demand_id, "patent": patent_id, "job": str(job),
            "catalogue_page": str(math.ceil(total / 30)), "demands_page": str(math.ceil(demands / 20))}


def _pages(h: dict[str, str]) -> list[tuple[str, str]]:
    return [
        ("anonymous", f"/?page={h['catalogue_page']}"), ("anonymous", "/?q=锂电池防爆阀防止电池包热失控"),
        ("enterprise", "/enterprise"), ("enterprise", f"/enterprise/demands/{h['demand']}"),
        ("enterprise", f"/enterprise/demands/{h['demand']}/edit"),
        ("university", "/university"), ("university", f"/university/patents/{h['patent']}/edit"),
        ("university", f"/jobs/{h['job']}"),
        ("staff", "/staff"), ("staff", f"/staff/demands?page={h['demands_page']}"), ("staff", f"/staff/demands/{h['demand']}"),
        ("staff", f"/jobs/{h['job']}"), *(("staff", path) for path in QUIET),
    ]


def _open(browser, base_url: str, world: World, who: str):  # noqa: F811
    from api.auth import start_session

    context = browser.new_context(base_url=base_url, locale="zh-CN")
    context.set_default_timeout(20_000)
    if who != "anonymous":
        user = world.app.state.web.user_by_name({"enterprise": "ent1", "university": "uni1", "staff": "staff1"}[who])[0]
        context.add_cookies([{"name": "ptm_session", "value": start_session(world.app.state.web, user), "url": base_url}])
    return context


def test_payloads_render_as_inert_text_on_every_page(browser, base_url, world: World, hostile) -> None:  # noqa: F811
    failures = []
    for who, path in _pages(hostile):
        context = _open(browser, base_url, world, who)
        page = context.new_page()
        dialogs: list[str] = []
        page.on("dialog", lambda d, dialogs=dialogs: (dialogs.append(d.message), d.dismiss()))
        response = page.goto(path)
        page.wait_for_load_state("load")
        facts = page.evaluate(LIVE_MARKUP)
        text = page.evaluate("document.body.innerText")
        if response.status != 200:
            failures.append(f"{who} {path}: HTTP {response.status}")
        if response.headers.get("content-security-policy") != CSP:
            failures.append(f"{who} {path}: no Content-Security-Policy header")
        if dialogs or facts["pwned"] != "undefined" or any(facts[k] for k in ("inlineScripts", "handlers", "jsLinks", "frames")):
            failures.append(f"{who} {path}: payload is live: {facts}, dialogs {dialogs}")
        if not any(p in text for p in PAYLOADS) and "/edit" not in path and path not in QUIET:  # edit forms: in values
            failures.append(f"{who} {path}: no payload visible as text")
        context.close()
    assert not failures, "\n".join(failures)


def test_progress_script_still_runs_under_the_policy(browser, base_url, world: World) -> None:  # noqa: F811
    # progress.js is the app's only script: the CSP must let it poll and update the page.
    web = world.app.state.web
    job = web.add_job("index", web.user_by_name("staff1")[0].id)
    web.update_job(job, status="running", total=10, done=3)
    context = _open(browser, base_url, world, "staff")
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(f"/jobs/{job}")
    web.update_job(job, status="done", done=10, message="完成" + PAYLOADS[0])
    page.wait_for_selector("#status:text('已完成')")
    assert page.locator("#message").inner_text() == "完成" + PAYLOADS[0]
    assert page.evaluate("typeof window.__pwned") == "undefined"
    assert not [e for e in errors if "Content Security Policy" in e], errors
    context.close()
