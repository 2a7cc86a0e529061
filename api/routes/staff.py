"""Staff pages: the centre's dashboard, every demand with its top matches and contacts, shortlists, re-matching."""
from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from api.jobs import KIND_LABELS, index_body
from api.routes.common import PageDenied, checked_form, page_user, render, state
from api.routes.deals import dashboard_outcomes
from matcher.engine import MatchError

router = APIRouter(prefix="/staff", include_in_schema=False)
PAGE_SIZE = 20


@router.get("")
def dashboard(request: Request) -> Response:
    page_user(request, "staff")
    _, store, web = state(request)
    transferable = len(store.select_int_ids("patents", "transferable = 1", []))
    outcomes, amount_chart = dashboard_outcomes(request)
    figures = [
        ("专利", store.count("patents")), ("可转化专利", transferable), ("企业需求", store.count("demands")),
        ("意向", web.count("interests")), ("入围（候选清单）", web.count("shortlist")), ("在线会话", web.count_sessions()),
        # From the ledger (indexer/ledger.py): signed excludes contracts dropped after signing.
        ("签约项目", outcomes.signed), ("签约金额（万元）", f"{outcomes.signed_amount_wan:,.2f}"),
        ("已完成转化", outcomes.completed),
    ]
    return render(request, "staff_dashboard.html", {"figures": figures, "jobs": web.jobs(10), "kind_labels": KIND_LABELS,
                                                    "amount_chart": amount_chart})


@router.get("/demands")
def demands(request: Request, page: int = 1) -> Response:
    page_user(request, "staff")
    _, store, _ = state(request)
    page = max(1, page)
    total = store.count("demands")
    rows = []
    for d in store.list("demands", limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE):
        try:
            top = request.app.state.engine.match_demand(d.id, 3)
        except MatchError:
            top = None  # stored but not indexed yet: the page says so instead of failing
        rows.append((d, top))
    return render(request, "staff_demands.html", {"rows": rows, "page": page, "pages": max(1, -(-total // PAGE_SIZE)),
                                                   "total": total})


@router.get("/demands/{demand_id}")
def demand(request: Request, demand_id: str) -> Response:
    page_user(request, "staff")
    _, store, web = state(request)
    d = store.get("demands", demand_id)
    if d is None:
        raise PageDenied("没有这个需求")
    error, matches = "", []
    try:
        matches = request.app.state.engine.match_demand(demand_id, 20)
    except MatchError:
        error = "该需求尚未建立索引：请点击“重新匹配”"
    interests = web.interests(demand_id=demand_id)
    patents = {pid: store.get("patents", pid) for pid in {m.id for m in matches} | {i["patent_id"] for i in interests}}
    return render(request, "demand_matches.html", {
        "demand": d, "matches": matches, "patents": patents, "interests": interests,
        "interested": {i["patent_id"] for i in interests}, "error": error,
        "no_good_match": bool(matches) and getattr(matches, "no_good_match", False),
        "shortlist": set(web.shortlist(demand_id)), "show_contact": True, "staff_view": True,
    })


@router.post("/demands/{demand_id}/shortlist")
async def shortlist(request: Request, demand_id: str) -> Response:
    _, form = await checked_form(request, "staff")
    _, store, web = state(request)
    patent_id = str(form.get("patent_id", ""))
    if store.get("demands", demand_id) is None or store.get("patents", patent_id) is None:
        raise PageDenied("没有这个需求或专利")
    web.set_shortlisted(demand_id, patent_id, form.get("action") != "remove")
    return RedirectResponse(f"/staff/demands/{demand_id}#p-{patent_id}", status_code=303)


@router.post("/reindex")
async def reindex(request: Request) -> Response:
    user, _ = await checked_form(request, "staff")
    settings, _, _ = state(request)
    job_id = request.app.state.jobs.start("index", user, index_body(settings))
    return RedirectResponse(f"/jobs/{job_id}", status_code=303)
