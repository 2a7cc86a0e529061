"""The access table as data: which roles may call each route of the app, on whose records, and who sees contacts.

tests/security/test_access_table.py walks every route of the running app against this table (a route missing
here fails that test), and `access_table_markdown()` renders it for the README, so the documentation, the test
and the code cannot drift apart. The code enforces the rules itself (api.auth, api.routes.common.page_user);
this module only states them.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Role = Literal["anonymous", "enterprise", "university", "staff"]
Door = Literal["page", "api", "public"]
Record = Literal["demand", "patent", "job"]

ROLES: tuple[Role, ...] = ("anonymous", "enterprise", "university", "staff")
ANYONE: frozenset[Role] = frozenset(ROLES)
SIGNED_IN: frozenset[Role] = frozenset({"enterprise", "university", "staff"})
STAFF: frozenset[Role] = frozenset({"staff"})
ENTERPRISE: frozenset[Role] = frozenset({"enterprise"})
UNIVERSITY: frozenset[Role] = frozenset({"university"})
UNIVERSITY_STAFF: frozenset[Role] = frozenset({"university", "staff"})
ENTERPRISE_STAFF: frozenset[Role] = frozenset({"enterprise", "staff"})


@dataclass(frozen=True)
class Access:
    """Who may call one route. `own`: enterprise and university accounts act only on their own `own` record
    (staff on any); `hidden`: someone else's record answers 404, as if it did not exist, instead of 403."""

    roles: frozenset[Role]
    door: Door
    own: Record | None = None
    hidden: bool = False
    note: str = ""


#: (method, path as the app declares it) → Access. HEAD is implied by GET.
ACCESS: dict[tuple[str, str], Access] = {
    # Public: the catalogue, sign-in, the API's documentation and the ad-hoc match.
    ("GET", "/"): Access(ANYONE, "public", note="patent catalogue and search; no demands, no contacts"),
    ("GET", "/login"): Access(ANYONE, "public"),
    ("POST", "/login"): Access(ANYONE, "public", note="rate-limited: 5 failures per user name in 15 min"),
    ("POST", "/logout"): Access(ANYONE, "public"),
    ("GET", "/static"): Access(ANYONE, "public", note="CSS and progress.js"),
    ("GET", "/openapi.json"): Access(ANYONE, "public"),
    ("GET", "/docs"): Access(ANYONE, "public"),
    ("GET", "/docs/oauth2-redirect"): Access(ANYONE, "public"),
    ("GET", "/redoc"): Access(ANYONE, "public"),
    ("GET", "/health"): Access(ANYONE, "public", note="counts only"),
    ("POST", "/match"): Access(ANYONE, "public", note="ad-hoc text → patents"),
    # Background jobs: their starter and staff.
    ("GET", "/jobs/{job_id}"): Access(SIGNED_IN, "page", own="job", hidden=True),
    ("GET", "/jobs/{job_id}/status"): Access(SIGNED_IN, "page", own="job", hidden=True),
    # Enterprise pages.
    ("GET", "/enterprise"): Access(ENTERPRISE, "page", note="its own demands"),
    ("GET", "/enterprise/demands/new"): Access(ENTERPRISE, "page"),
    ("POST", "/enterprise/demands/new"): Access(ENTERPRISE, "page"),
    ("GET", "/enterprise/demands/{demand_id}"): Access(ENTERPRISE, "page", own="demand", note="ranked candidates"),
    ("GET", "/enterprise/demands/{demand_id}/edit"): Access(ENTERPRISE, "page", own="demand"),
    ("POST", "/enterprise/demands/{demand_id}/edit"): Access(ENTERPRISE, "page", own="demand"),
    ("POST", "/enterprise/demands/{demand_id}/delete"): Access(ENTERPRISE, "page", own="demand"),
    ("POST", "/enterprise/demands/{demand_id}/interest"): Access(ENTERPRISE, "page", own="demand", note="mark 意向"),
    # University pages, and the import pages it shares with staff.
    ("GET", "/university"): Access(UNIVERSITY, "page", note="its own patents and who is interested (no contacts)"),
    ("GET", "/university/patents/{patent_id}/edit"): Access(UNIVERSITY, "page", own="patent"),
    ("POST", "/university/patents/{patent_id}/edit"): Access(UNIVERSITY, "page", own="patent"),
    ("GET", "/import"): Access(UNIVERSITY_STAFF, "page"),
    ("POST", "/import"): Access(UNIVERSITY_STAFF, "page", note="university: patents only; dry run"),
    ("POST", "/import/confirm"): Access(UNIVERSITY_STAFF, "page", note="university: rows naming it only"),
    # Staff pages.
    ("GET", "/staff"): Access(STAFF, "page"),
    ("GET", "/staff/demands"): Access(STAFF, "page", note="every demand with contacts"),
    ("GET", "/staff/demands/{demand_id}"): Access(STAFF, "page"),
    ("POST", "/staff/demands/{demand_id}/shortlist"): Access(STAFF, "page"),
    ("POST", "/staff/reindex"): Access(STAFF, "page"),
    # Matchmaking sessions, deals and reports hold every party's contacts and amounts: staff only.
    ("GET", "/staff/sessions"): Access(STAFF, "page"),
    ("POST", "/staff/sessions/plan"): Access(STAFF, "page"),
    ("GET", "/staff/sessions/{session_id}"): Access(STAFF, "page"),
    ("GET", "/staff/sessions/{session_id}/export.{fmt}"): Access(STAFF, "page", note="XLSX or printable HTML"),
    ("POST", "/staff/sessions/{session_id}/delete"): Access(STAFF, "page"),
    ("GET", "/staff/deals"): Access(STAFF, "page"),
    ("POST", "/staff/deals/record"): Access(STAFF, "page"),
    ("GET", "/staff/reports"): Access(STAFF, "page"),
    # JSON API (Bearer token with the scope; enterprise and university tokens on their own records).
    ("POST", "/patents"): Access(UNIVERSITY_STAFF, "api", own="patent", note="scope patents:write"),
    ("DELETE", "/patents/{patent_id}"): Access(UNIVERSITY_STAFF, "api", own="patent", note="scope patents:write"),
    ("POST", "/demands"): Access(ENTERPRISE_STAFF, "api", own="demand", note="scope demands:write"),
    ("DELETE", "/demands/{demand_id}"): Access(ENTERPRISE_STAFF, "api", own="demand", note="scope demands:write"),
    ("GET", "/demands/{demand_id}/matches"): Access(ENTERPRISE_STAFF, "api", own="demand", note="scope read"),
    ("GET", "/patents/{patent_id}/matches"): Access(UNIVERSITY_STAFF, "api", own="patent",
                                                    note="scope read; lists demands, so not for enterprises"),
}

#: Fields only some roles may see, checked in every JSON and HTML response of the walk.
#: "owner" is the enterprise that posted the demand.
VISIBLE_TO: dict[str, frozenset[str]] = {"demand.contact": frozenset({"staff", "owner"})}


def declared_routes(app) -> set[tuple[str, str]]:
    """(method, path) of every endpoint and mount of a FastAPI app, HEAD left out (it follows GET)."""
    found: set[tuple[str, str]] = set()

    def walk(routes: list, prefix: str) -> None:
        for route in routes:
            if hasattr(route, "original_router"):  # FastAPI ≥ 0.16x keeps included routers nested
                walk(route.original_router.routes, prefix + route.include_context.prefix)
            elif hasattr(route, "methods") and route.methods:
                found.update((m, prefix + route.path) for m in route.methods if m != "HEAD")
            elif hasattr(route, "path"):  # a Mount (static files): reached with GET
                found.add(("GET", prefix + route.path))

    walk(app.routes, "")
    return found


def denied_status(access: Access, role: Role) -> int:
    """What a caller outside `access.roles` gets: sign-in first (page: redirect, API: 401), else 403."""
    if role == "anonymous":
        return 303 if access.door == "page" else 401
    return 403


def allowed(access: Access, role: Role, owner: bool) -> bool:
    """`owner`: the caller's account owns the record the request names (ignored where `own` is None)."""
    return role in access.roles and (access.own is None or role == "staff" or owner)


_LABELS = {"anonymous": "anyone", "enterprise": "enterprise", "university": "university", "staff": "staff"}


def access_table_markdown() -> str:
    """The README's access table: one row per route, ✓ / own / — per role."""
    head = "| method | path | " + " | ".join(_LABELS[r] for r in ROLES) + " | notes |"
    lines = [head, "|" + "---|" * (len(ROLES) + 3)]
    for (method, path), a in ACCESS.items():
        cells = ["own" if r in a.roles and a.own and r != "staff" else "✓" if r in a.roles else "—" for r in ROLES]
        note = "; ".join(filter(None, [a.note, "API token" if a.door == "api" else ""]))
        lines.append(f"| {method} | `{path}` | " + " | ".join(cells) + f" | {note} |")
    return "\n".join(lines) + "\n"
