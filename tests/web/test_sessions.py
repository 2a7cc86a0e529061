"""Staff session pages: plan, edit (remove / pin → re-solve), save, show, export; nobody else gets in; CSRF; escaping."""
from __future__ import annotations

import io
import re

import openpyxl
import pytest

from api.exports import EXPORT_CSP
from indexer.ledger import Ledger
from tests.conftest import SESSION_ENTERPRISES, add_session_demands
from tests.web.helpers import csrf_of

FORM = {"industry": "我们企业需要", "slots": "4", "seats": "3", "title": "<i>测试</i>对接会", "date": "2026-12-10"}


@pytest.fixture(scope="module")
def session_data(web_app):
    return add_session_demands(web_app.state.engine.settings)


def post_plan(client, **fields):
    data = {**FORM, "csrf": csrf_of(client.get("/staff/sessions").text), **fields}
    return client.post("/staff/sessions/plan", data=data, follow_redirects=False)


def slot_patents(html: str) -> list[str]:
    return re.findall(r'value="drop:patents:([^"]+)"', html)


def test_staff_plans_edits_saves_and_exports(as_staff, session_data, web_app):
    r = post_plan(as_staff)
    assert r.status_code == 200, r.text[:500]
    presented = slot_patents(r.text)
    assert 1 <= len(presented) <= 4 and all(web_app.state.engine.store.get("patents", p) for p in presented)
    assert "&lt;b&gt;华信&lt;/b&gt;通信" in r.text and "<b>华信" not in r.text

    dropped = presented[0]
    r = post_plan(as_staff, action=f"drop:patents:{dropped}")
    assert r.status_code == 200 and dropped not in slot_patents(r.text)
    assert f'name="exclude_patents" value="{dropped}"' in r.text and f'value="clear:patents:{dropped}"' in r.text
    pinned = SESSION_ENTERPRISES[0]
    r = post_plan(as_staff, exclude_patents=dropped, action=f"pin:enterprises:{pinned}")
    assert r.status_code == 200 and "已固定" in r.text and f'name="include_enterprises" value="{pinned}"' in r.text

    r = post_plan(as_staff, exclude_patents=dropped, include_enterprises=pinned, action="save")
    assert r.status_code == 303, r.text[:500]
    sid = int(r.headers["location"].rsplit("/", 1)[1])
    record = Ledger(web_app.state.engine.store).session(sid)
    assert dropped not in record.plan["patents"] and pinned in record.plan["enterprises"]
    assert record.limits["edits"]["exclude_patents"] == [dropped] and record.date.isoformat() == "2026-12-10"

    page = as_staff.get(f"/staff/sessions/{sid}")
    assert page.status_code == 200 and "&lt;i&gt;测试&lt;/i&gt;对接会" in page.text
    assert f"/staff/sessions/{sid}/export.xlsx" in page.text and f"/staff/sessions/{sid}/export.html" in page.text
    assert "推荐 " in page.text  # the recommendations recorded on saving
    assert f"/staff/sessions/{sid}" in as_staff.get("/staff/sessions").text

    x = as_staff.get(f"/staff/sessions/{sid}/export.xlsx")
    assert x.status_code == 200 and x.headers["content-type"].startswith("application/vnd.openxmlformats")
    assert "attachment" in x.headers["content-disposition"]
    wb = openpyxl.load_workbook(io.BytesIO(x.content))
    assert [row[2] for row in wb["议程"].iter_rows(min_row=2, values_only=True)] == record.plan["patents"]
    h = as_staff.get(f"/staff/sessions/{sid}/export.html")
    assert h.status_code == 200 and h.headers["content-security-policy"] == EXPORT_CSP
    assert "&lt;i&gt;测试&lt;/i&gt;对接会" in h.text and "<i>测试" not in h.text
    assert as_staff.get(f"/staff/sessions/{sid}/export.pdf", headers={"accept": "text/html"}).status_code == 404
    later = as_staff.get(f"/staff/sessions/{sid}/export.html", params={"start": "14:00", "slot_minutes": 20})
    assert "2026-12-10 14:20–14:40" in later.text
    assert as_staff.get(f"/staff/sessions/{sid}/export.html", params={"start": "2pm"}).status_code == 422


def test_form_errors_are_shown_in_chinese(as_staff, session_data):
    r = post_plan(as_staff, industry="", slots="0", date="12/10/2026")
    assert r.status_code == 422
    assert "请至少填写主题关键词、IPC 前缀或行业中的一项" in r.text and "路演席位须为 1–60 的整数" in r.text
    assert "日期格式应为 2026-12-10" in r.text
    r = post_plan(as_staff, include_patents="NOPE")
    assert r.status_code == 422 and "无法按这些条件规划" in r.text


def test_csrf_is_enforced(as_staff, session_data):
    r = as_staff.post("/staff/sessions/plan", data={**FORM, "csrf": "forged"}, follow_redirects=False)
    assert r.status_code == 403
    r = as_staff.post("/staff/sessions/plan", data=FORM, follow_redirects=False)
    assert r.status_code == 403


def test_others_cannot_plan_see_or_export(web_app, anon, as_ent, as_uni, as_staff, session_data):
    r = post_plan(as_staff, action="save")
    sid = int(r.headers["location"].rsplit("/", 1)[1])
    paths = ("/staff/sessions", f"/staff/sessions/{sid}", f"/staff/sessions/{sid}/export.xlsx",
             f"/staff/sessions/{sid}/export.html")
    for path in paths:
        r = anon.get(path, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"].startswith("/login?next="), path
    for client in (as_ent, as_uni):
        for path in paths:
            assert client.get(path, follow_redirects=False).status_code == 403, path
        token = csrf_of(client.get("/").text)
        r = client.post("/staff/sessions/plan", data={**FORM, "csrf": token, "action": "save"}, follow_redirects=False)
        assert r.status_code == 403
        r = client.post(f"/staff/sessions/{sid}/delete", data={"csrf": token}, follow_redirects=False)
        assert r.status_code == 403
    assert as_staff.get(f"/staff/sessions/{sid}").status_code == 200  # still there
    r = as_staff.post(f"/staff/sessions/{sid}/delete", data={"csrf": csrf_of(as_staff.get("/staff/sessions").text)},
                      follow_redirects=False)
    assert r.status_code == 303
    assert as_staff.get(f"/staff/sessions/{sid}", headers={"accept": "text/html"}).status_code == 404


def test_staff_nav_links_to_sessions(as_staff, as_ent):
    assert 'href="/staff/sessions"' in as_staff.get("/staff").text
    assert 'href="/staff/sessions"' not in as_ent.get("/enterprise").text
