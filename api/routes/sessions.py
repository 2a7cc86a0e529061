"""Staff pages for matchmaking sessions (对接会): plan one on a theme, edit the proposal (remove, pin, re-solve),
save it, look at a saved agenda and export it as XLSX or printable HTML.

The proposal page is one form: its fields carry the theme, capacities and the staff's edits (pinned and removed
patents and enterprises), and every button re-solves with them, so nothing lives on the server between clicks.
Saving solves once more with the same input (the solver is deterministic) and stores that plan.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from api.exports import EXPORT_CSP, FORMATS, MEDIA_TYPES, Timing, parse_start
from api.planning import (Edits, export_session, limits_dict, limits_from_dict, save_plan, session_document, solve,
                          theme_dict, theme_from_dict)
from api.routes.common import PageDenied, checked_form, page_user, render, state
from indexer.ledger import Ledger, LedgerError
from matcher.engine import MatchError

router = APIRouter(prefix="/staff/sessions", include_in_schema=False)
MAX_SLOTS, MAX_SEATS = 60, 200
#: form field → (label, max length)
TEXT_FIELDS = {"title": ("会议名称", 100), "keywords": ("主题关键词", 100), "ipc": ("IPC 前缀", 100),
               "industry": ("行业", 50), "venue": ("地点", 100)}
EDIT_ACTIONS = ("drop", "pin", "clear")
MIN_QUALITIES = ("强", "中")


@dataclass
class SessionForm:
    """The planning form, read and checked: what the template shows back, and what the solver gets."""

    values: dict[str, str]
    errors: dict[str, str] = field(default_factory=dict)
    edits: Edits = field(default_factory=Edits)
    on: date | None = None

    @property
    def ok(self) -> bool:
        return not self.errors


def read_form(form: dict) -> SessionForm:
    names = (*TEXT_FIELDS, "date", "slots", "seats", "max_per_university", "max_per_field", "session_id", "min_quality")
    values = {name: str(form.get(name, "")).strip() for name in names}
    values["min_quality"] = values["min_quality"] or "强"
    f = SessionForm(values, edits=Edits.from_dict({k: str(form.get(k, "")) for k in Edits().to_dict()}))
    for name, (label, limit) in TEXT_FIELDS.items():
        if len(values[name]) > limit:
            f.errors[name] = f"{label}最多 {limit} 字"
    if not (values["keywords"] or values["ipc"] or values["industry"]):
        f.errors["keywords"] = "请至少填写主题关键词、IPC 前缀或行业中的一项"
    for name, label, top, required in (("slots", "路演席位", MAX_SLOTS, True), ("seats", "企业席位", MAX_SEATS, True),
                                       ("max_per_university", "每个单位最多", MAX_SLOTS, False),
                                       ("max_per_field", "每个领域最多", MAX_SLOTS, False)):
        if (values[name] or required) and not (values[name].isdigit() and 1 <= int(values[name]) <= top):
            f.errors[name] = f"{label}须为 1–{top} 的整数" + ("" if required else "（留空表示不限）")
    if values["min_quality"] not in MIN_QUALITIES:
        f.errors["min_quality"] = "最低匹配度只能选“强”或“中”"
    if not values["session_id"].isdigit():
        values["session_id"] = ""
    if values["date"]:
        try:
            f.on = date.fromisoformat(values["date"])
        except ValueError:
            f.errors["date"] = "日期格式应为 2026-12-10"
    return f


def _theme_limits(f: SessionForm):
    from matcher.sessions.candidates import Theme
    from matcher.sessions.plan import Limits

    v = f.values
    theme = Theme(keywords=v["keywords"], ipc=tuple(p for p in re.split(r"[\s,，;；、]+", v["ipc"]) if p),
                  industry=v["industry"])
    limits = Limits(slots=int(v["slots"]), seats=int(v["seats"]),
                    max_per_university=int(v["max_per_university"]) if v["max_per_university"] else None,
                    max_per_field=int(v["max_per_field"]) if v["max_per_field"] else None)
    return theme, limits


def _apply_action(edits: Edits, action: str) -> None:
    """'drop:patents:ID', 'pin:enterprises:NAME', 'clear:patents:ID' from the button pressed."""
    verb, _, rest = action.partition(":")
    what, _, item = rest.partition(":")
    if verb not in EDIT_ACTIONS or what not in ("patents", "enterprises") or not item:
        raise PageDenied("无法识别的操作，请刷新页面后重试")
    getattr(edits, verb)(what, item)


@router.get("")
def sessions_list(request: Request) -> Response:
    page_user(request, "staff")
    _, store, _ = state(request)
    defaults = {"slots": "8", "seats": "10", "title": "", "keywords": "", "ipc": "", "industry": "", "venue": "",
                "date": "", "max_per_university": "", "max_per_field": "", "session_id": "", "min_quality": "强"}
    return render(request, "sessions_list.html", {"records": Ledger(store).sessions(), "values": defaults,
                                                  "errors": {}, "edits": Edits()})


@router.post("/plan")
async def plan(request: Request) -> Response:
    """Solve (or re-solve after an edit) and show the proposal; with action=save, store it and go to it."""
    user, form = await checked_form(request, "staff")
    f = read_form(form)
    action = str(form.get("action", "plan"))
    if action not in ("plan", "save"):
        _apply_action(f.edits, action)
    if not f.ok:
        return render(request, "sessions_list.html", {"records": [], "values": f.values, "errors": f.errors,
                                                      "edits": f.edits, "hide_list": True}, status=422)
    engine = request.app.state.engine
    theme, limits = _theme_limits(f)
    try:
        # Seconds of solver work: off the event loop, so other pages keep answering meanwhile.
        proposal = await run_in_threadpool(solve, engine, theme, limits, f.edits, f.values["min_quality"])
    except MatchError as exc:  # nothing indexed yet
        return _plan_page(request, f, None, f"无法规划：{exc}", status=409)
    except ValueError as exc:  # contradictory edits or a bad theme: the message names them
        return _plan_page(request, f, None, f"无法按这些条件规划：{exc}", status=422)
    if action != "save":
        return _plan_page(request, f, proposal, "")
    if not proposal.patents:
        return _plan_page(request, f, proposal, "方案为空，无法保存：请放宽主题或容量", status=422)
    try:
        sid, _ = save_plan(Ledger(engine.store), proposal, title=f.values["title"] or f"对接会 · {theme.label()}",
                           on=f.on, theme=theme_dict(theme), limits=limits_dict(limits, f.edits, f.values["min_quality"]),
                           venue=f.values["venue"], session_id=int(f.values["session_id"] or 0) or None,
                           user=user.username)
    except LedgerError as exc:
        return _plan_page(request, f, proposal, f"保存失败：{exc}", status=422)
    return RedirectResponse(f"/staff/sessions/{sid}", status_code=303)


def _plan_page(request: Request, f: SessionForm, proposal, error: str, status: int = 200) -> Response:
    _, store, _ = state(request)
    shown = [*(proposal.patents if proposal else []), *f.edits.exclude_patents]
    patents = {pid: store.get("patents", pid) for pid in shown}
    return render(request, "sessions_plan.html", {"values": f.values, "errors": f.errors, "edits": f.edits,
                                                  "plan": proposal, "patents": patents, "error": error}, status=status)


@router.get("/{session_id}")
def show(request: Request, session_id: int) -> Response:
    page_user(request, "staff")
    engine = request.app.state.engine
    ledger = Ledger(engine.store)
    record = _record(ledger, session_id)
    limits, edits, min_quality = limits_from_dict(record.limits)
    theme = theme_from_dict(record.theme) if "keywords" in record.theme else None
    values = {"title": record.title, "venue": record.venue, "date": record.date.isoformat() if record.date else "",
              "slots": str(limits.slots), "seats": str(limits.seats),
              "max_per_university": str(limits.max_per_university or ""), "max_per_field": str(limits.max_per_field or ""),
              "keywords": theme.keywords if theme else "", "ipc": " ".join(theme.ipc) if theme else "",
              "industry": theme.industry if theme else "", "session_id": str(record.id), "min_quality": min_quality}
    return render(request, "sessions_show.html", {
        "record": record, "doc": session_document(engine, record), "formats": FORMATS, "values": values,
        "edits": edits, "replannable": theme is not None, "deals": ledger.deals(session_id=record.id),
    })


@router.get("/{session_id}/export.{fmt}")
def export(request: Request, session_id: int, fmt: str, start: str = "09:30", slot_minutes: int = 15) -> Response:
    """?start=HH:MM&slot_minutes=N set the agenda's times (default 09:30 and 15 minutes)."""
    page_user(request, "staff")
    engine = request.app.state.engine
    if fmt not in FORMATS:
        raise HTTPException(404, f"不支持的导出格式“{fmt}”：可选 {'、'.join(FORMATS)}")
    try:
        timing = Timing(start=parse_start(start), slot_minutes=slot_minutes)
    except ValueError:
        raise HTTPException(422, "开始时间应形如 09:30，每个时段 1–240 分钟") from None
    ledger = Ledger(engine.store)
    _record(ledger, session_id)
    data = export_session(engine, ledger, session_id, fmt, timing)  # type: ignore[arg-type]
    headers = {"Content-Disposition": f'{"attachment" if fmt == "xlsx" else "inline"}; filename="session-{session_id}.{fmt}"'}
    if fmt == "html":
        headers["Content-Security-Policy"] = EXPORT_CSP
    return Response(data, media_type=MEDIA_TYPES[fmt], headers=headers)


@router.post("/{session_id}/delete")
async def delete(request: Request, session_id: int) -> Response:
    await checked_form(request, "staff")
    ledger = Ledger(state(request)[1])
    _record(ledger, session_id)
    ledger.delete_session(session_id)
    return RedirectResponse("/staff/sessions", status_code=303)


def _record(ledger: Ledger, session_id: int):
    record = ledger.session(session_id)
    if record is None:
        raise HTTPException(404, f"没有编号为 {session_id} 的对接会")
    return record
