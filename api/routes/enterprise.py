"""Enterprise pages: post and edit its own demands, see ranked candidate patents with explanations, mark 意向."""
from __future__ import annotations

import hashlib
import re
import time

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from api.auth import owns_demand
from api.jobs import index_syncs
from api.routes.common import PageDenied, checked_form, page_user, render, state
from api.webstore import User
from indexer.ledger import Ledger
from indexer.records import Demand
from indexer.store import Store
from matcher.engine import MatchError, Matches

router = APIRouter(prefix="/enterprise", include_in_schema=False)
_HAN = re.compile(r"[\u3400-\u9fff]")
#: field → (label, max length); the same limits are in the form's maxlength attributes.
DEMAND_FIELDS = {"title": ("需求标题", 100), "text": ("需求内容", 5000), "industry": ("所属行业", 50),
                 "region": ("所在地区", 50), "budget_wan": ("预算（万元）", 12), "contact": ("联系方式", 100)}
MIN_TEXT = 20


def validate_demand(form: dict) -> tuple[dict, dict[str, str]]:
    """(cleaned values, field → message); messages are shown under the field they concern."""
    values = {name: str(form.get(name, "")).strip() for name in DEMAND_FIELDS}
    errors: dict[str, str] = {}
    for name, (label, limit) in DEMAND_FIELDS.items():
        if len(values[name]) > limit:
            errors[name] = f"{label}最多 {limit} 字，现有 {len(values[name])} 字"
    if not values["title"]:
        errors.setdefault("title", "请填写需求标题")
    if not values["text"]:
        errors.setdefault("text", "请填写需求内容")
    elif len(values["text"]) < MIN_TEXT:
        errors.setdefault("text", f"请至少写 {MIN_TEXT} 字，说明要解决的技术问题和指标")
    elif not _HAN.search(values["text"]):
        errors.setdefault("text", "请用中文描述技术需求（匹配基于中文专利文本）")
    if values["budget_wan"]:
        try:
            budget = float(values["budget_wan"])
            if not 0 <= budget <= 1_000_000:
                raise ValueError
        except ValueError:
            errors.setdefault("budget_wan", "预算须为 0 到 1000000 之间的数字（单位：万元）")
    return values, errors


def my_demands(store: Store, user: User) -> list[Demand]:
    return [d for d in store.list("demands", limit=1_000_000) if owns_demand(user, d.enterprise)]


def own_demand(request: Request, user: User, demand_id: str) -> Demand:
    _, store, _ = state(request)
    demand = store.get("demands", demand_id)
    if demand is None or not owns_demand(user, demand.enterprise):
        # The same answer for "not yours" and "does not exist": ids of other enterprises' demands stay unknown.
        raise PageDenied("没有这个需求，或它不属于您的企业")
    return demand


@router.get("")
def home(request: Request) -> Response:
    user = page_user(request, "enterprise")
    _, store, web = state(request)
    demands = my_demands(store, user)
    counts = {d.id: len(web.interests(demand_id=d.id)) for d in demands}
    return render(request, "enterprise_home.html", {"demands": demands, "interest_counts": counts})


@router.get("/demands/new")
def new_demand(request: Request) -> Response:
    page_user(request, "enterprise")
    return render(request, "demand_form.html", {"values": {}, "errors": {}, "fields": DEMAND_FIELDS, "action": "/enterprise/demands/new"})


@router.post("/demands/new")
async def post_demand(request: Request) -> Response:
    user, form = await checked_form(request, "enterprise")
    return _save(request, user, form, None)


@router.get("/demands/{demand_id}/edit")
def edit_demand(request: Request, demand_id: str) -> Response:
    user = page_user(request, "enterprise")
    d = own_demand(request, user, demand_id)
    values = {"title": d.title, "text": d.text, "industry": d.industry, "region": d.region, "contact": d.contact,
              "budget_wan": "" if d.budget_wan is None else f"{d.budget_wan:g}"}
    return render(request, "demand_form.html", {"values": values, "errors": {}, "fields": DEMAND_FIELDS,
                                                 "action": f"/enterprise/demands/{demand_id}/edit", "editing": d})


@router.post("/demands/{demand_id}/edit")
async def save_demand(request: Request, demand_id: str) -> Response:
    user, form = await checked_form(request, "enterprise")
    return _save(request, user, form, own_demand(request, user, demand_id))


def _save(request: Request, user: User, form: dict, old: Demand | None) -> Response:
    settings, store, _ = state(request)
    values, errors = validate_demand(form)
    if errors:
        action = f"/enterprise/demands/{old.id}/edit" if old else "/enterprise/demands/new"
        return render(request, "demand_form.html", {"values": values, "errors": errors, "fields": DEMAND_FIELDS,
                                                     "action": action, "editing": old}, status=422)
    demand_id = old.id if old else "D-" + hashlib.sha1(f"{user.org}\n{values['text']}\n{time.time_ns()}".encode()).hexdigest()[:12]
    demand = Demand(id=demand_id, title=values["title"], text=values["text"], industry=values["industry"],
                    region=values["region"], contact=values["contact"], enterprise=user.org,
                    budget_wan=float(values["budget_wan"]) if values["budget_wan"] else None)
    store.upsert("demands", [demand])
    index_syncs(settings).after_commit("demands")  # one text: well under a second once the model is loaded
    return RedirectResponse(f"/enterprise/demands/{demand_id}", status_code=303)


@router.post("/demands/{demand_id}/delete")
async def delete_demand(request: Request, demand_id: str) -> Response:
    user, _ = await checked_form(request, "enterprise")
    settings, store, _ = state(request)
    own_demand(request, user, demand_id)
    store.delete("demands", [demand_id])
    index_syncs(settings).after_commit("demands")
    return RedirectResponse("/enterprise", status_code=303)


@router.get("/demands/{demand_id}")
def demand_page(request: Request, demand_id: str) -> Response:
    user = page_user(request, "enterprise")
    demand = own_demand(request, user, demand_id)
    _, store, web = state(request)
    matches: Matches | list = []
    error = ""
    try:
        matches = request.app.state.engine.match_demand(demand_id, 10)
    except MatchError:
        error = "匹配结果正在生成，请稍后刷新页面"
    patents = {m.id: store.get("patents", m.id) for m in matches}
    interested = {i["patent_id"] for i in web.interests(demand_id=demand_id)}
    return render(request, "demand_matches.html", {
        "demand": demand, "matches": matches, "patents": patents, "interested": interested, "error": error,
        "no_good_match": bool(matches) and getattr(matches, "no_good_match", False), "show_contact": True,
    })


@router.post("/demands/{demand_id}/interest")
async def interest(request: Request, demand_id: str) -> Response:
    user, form = await checked_form(request, "enterprise")
    _, store, web = state(request)
    demand = own_demand(request, user, demand_id)
    patent_id = str(form.get("patent_id", ""))
    if store.get("patents", patent_id) is None:
        raise PageDenied("没有这个专利")
    if form.get("action") == "remove":
        web.remove_interest(demand_id, patent_id)
    else:
        web.add_interest(demand_id, patent_id, user.org)
        # Marked interest is the 意向 stage of the centre's ledger (issue 7): a new or recommended deal advances;
        # the enterprise is named as sessions name it (the demand's enterprise, else its id).
        Ledger(store).note_interest(patent_id, demand.enterprise.strip() or demand.id, demand_id=demand_id,
                                    user=user.username)
    return RedirectResponse(f"/enterprise/demands/{demand_id}#p-{patent_id}", status_code=303)
