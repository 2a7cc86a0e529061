"""Staff pages for outcomes: the deal pipeline (/staff/deals, record a move) and the reports (/staff/reports)."""
from __future__ import annotations

from datetime import date

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from markupsafe import Markup

from api.charts import bar_chart
from api.routes.common import checked_form, page_user, render, state
from indexer.ledger import ALL_STAGES, KINDS, Ledger, LedgerError
from matcher.sessions.outcomes import GROUPINGS, PERIODS, GroupRow, Totals, ledger_reports

router = APIRouter(prefix="/staff", include_in_schema=False)

GROUPING_LABELS = {"period": "按时间（签约日期）", "university": "按高校（第一申请人）", "field": "按技术领域（IPC 大类）",
                   "session": "按对接会"}
PERIOD_LABELS = {"month": "月", "quarter": "季度", "year": "年"}


def amount_chart(rows: list[GroupRow], title: str) -> Markup:
    """The signed amount per group as an SVG bar chart; bar_chart escapes every label, so the SVG is safe."""
    return Markup(bar_chart([r.key for r in rows], [r.totals.signed_amount_wan for r in rows], title, "万元"))


def dashboard_outcomes(request: Request) -> tuple[Totals, Markup]:
    """The staff dashboard's outcome figures and its amount-by-quarter chart."""
    _, store, _ = state(request)
    overall, reports = ledger_reports(Ledger(store), ["period"], "quarter")
    return overall, amount_chart([r for r in reports["period"] if r.totals.signed], "签约金额（按季度）")


def _deals_page(request: Request, *, error: str = "", values: dict | None = None, status: int = 200) -> Response:
    _, store, _ = state(request)
    ledger = Ledger(store)
    deals = ledger.deals()
    patents = {pid: store.get("patents", pid) for pid in {d.patent_id for d in deals}}
    titles = {pid: p.title if p else "（已删除的专利）" for pid, p in patents.items()}
    groups = [(stage, [d for d in deals if d.stage == stage]) for stage in ALL_STAGES]
    return render(request, "staff_deals.html", {
        "groups": groups, "titles": titles, "sessions": {s.id: s.title for s in ledger.sessions()},
        "stages": ALL_STAGES, "kinds": KINDS, "error": error, "values": values or {}, "today": date.today().isoformat(),
    }, status=status)


@router.get("/deals")
def deals(request: Request) -> Response:
    page_user(request, "staff")
    return _deals_page(request)


def _form_amount(text: str) -> float | None:
    """"" → not given; the ledger validates the number itself (finite, >= 0, bounded)."""
    text = text.strip().replace(",", "")
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        raise LedgerError(f"金额须为数字（万元），而不是 {text!r}") from None


def _form_date(text: str) -> date | None:
    text = text.strip()
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise LedgerError(f"日期格式应为 2026-05-01，而不是 {text!r}") from None


def _form_int(text: str, what: str) -> int | None:
    text = text.strip()
    if not text:
        return None
    if not text.isdigit():
        raise LedgerError(f"{what}须为数字编号，而不是 {text!r}")
    return int(text)


@router.post("/deals/record")
async def record(request: Request) -> Response:
    user, form = await checked_form(request, "staff")
    _, store, _ = state(request)
    values = {k: str(v) for k, v in form.items() if k != "csrf"}
    try:
        deal = Ledger(store).record(
            values.get("patent_id", ""), values.get("enterprise", ""), values.get("stage", ""),
            demand_id=values.get("demand_id", "").strip() or None, kind=values.get("kind") or None,
            amount_wan=_form_amount(values.get("amount_wan", "")), on=_form_date(values.get("on", "")),
            session_id=_form_int(values.get("session_id", ""), "对接会"), note=values.get("note", ""),
            user=user.username, correct=values.get("correct") == "1",
        )
    except LedgerError as exc:
        return _deals_page(request, error=str(exc), values=values, status=422)
    return RedirectResponse(f"/staff/deals#deal-{deal.id}", status_code=303)


@router.get("/reports")
def reports(request: Request, period: str = "quarter") -> Response:
    page_user(request, "staff")
    _, store, _ = state(request)
    if period not in PERIODS:
        return render(request, "error.html", {"message": f"周期须为 {'、'.join(PERIODS)} 之一"}, status=422)
    overall, reports = ledger_reports(Ledger(store), GROUPINGS, period)  # type: ignore[arg-type]
    sections = [(by, GROUPING_LABELS[by], rows, amount_chart(rows, f"签约金额 · {GROUPING_LABELS[by]}"))
                for by, rows in reports.items()]
    return render(request, "staff_reports.html", {
        "totals": overall, "sections": sections, "period": period, "periods": PERIODS, "period_labels": PERIOD_LABELS,
    })

