"""What the page routes share: templates (autoescaped), the signed-in user, CSRF checks, uploads and imports."""
from __future__ import annotations

import re
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path

from fastapi import HTTPException, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from markupsafe import Markup, escape

from api.auth import csrf_ok, may_write_patent, owns_patent, session_user
from api.webstore import ROLE_LABELS, User, WebStore
from indexer.records import Patent
from indexer.settings import Settings
from indexer.store import Kind, Store

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).resolve().parent.parent / "templates"))
assert TEMPLATES.env.autoescape  # every {{ value }} is escaped unless a filter below builds Markup on purpose

LICENCE_MODES = ("转让", "许可", "作价入股")
UPLOAD_SUFFIXES = (".csv", ".xlsx", ".jsonl")
MAX_UPLOAD_BYTES = 50 * 1024 * 1024
_UPLOAD_RE = re.compile(r"^u(\d+)-[0-9a-f]{16}\.(csv|xlsx|jsonl)$")
#: An upload not confirmed (or whose import was killed) within this many seconds is deleted.
UPLOAD_TTL_S = 24 * 3600


def _marks(snippet: str) -> Markup:
    """【term】 → <mark>term</mark>, escaping everything else first (the snippet is user text)."""
    return Markup(str(escape(snippet)).replace("【", "<mark>").replace("】", "</mark>"))


TEMPLATES.env.filters["marks"] = _marks


class LoginRequired(Exception):
    """The page needs a signed-in user; answered by a redirect to /login?next=…"""


class PageDenied(Exception):
    """Signed in, but this page or record is not theirs; answered by a 403 page saying so."""


def render(request: Request, name: str, context: dict | None = None, status: int = 200) -> HTMLResponse:
    signed = session_user(request)
    ctx = {"user": signed[0] if signed else None, "csrf": signed[1] if signed else "", "role_labels": ROLE_LABELS,
           **(context or {})}
    return TEMPLATES.TemplateResponse(request, name, ctx, status_code=status)


def page_user(request: Request, *roles: str) -> User:
    signed = session_user(request)
    if signed is None:
        raise LoginRequired()
    if roles and signed[0].role not in roles:
        raise PageDenied("此页面仅对" + "、".join(ROLE_LABELS[r] for r in roles) + "账号开放")
    return signed[0]


async def checked_form(request: Request, *roles: str) -> tuple[User, dict]:
    """The user and form of a POST, after checking the role and the session's CSRF token."""
    user = page_user(request, *roles)
    form = await request.form()
    if not csrf_ok(session_user(request)[1], form.get("csrf")):
        raise HTTPException(403, "表单已失效（CSRF 校验失败），请刷新页面后重试")
    return user, dict(form)


def state(request: Request) -> tuple[Settings, Store, WebStore]:
    engine = request.app.state.engine
    return engine.settings, engine.store, request.app.state.web


def own_patents(store: Store, user: User) -> list[Patent]:
    # A linear scan: a centre holds thousands of patents, not millions, and this keeps store.py untouched.
    return [p for p in store.list("patents", limit=1_000_000) if owns_patent(user, p.applicants)]


# ---- uploads and imports ----------------------------------------------------------------------
async def save_upload(settings: Settings, user: User, upload) -> Path:  # a starlette UploadFile
    """Save an upload under <home>/uploads with a name only this user's confirm form can name."""
    suffix = Path(upload.filename or "").suffix.lower()
    if suffix not in UPLOAD_SUFFIXES:
        raise ValueError(f"请上传 CSV、XLSX 或 JSONL 文件（收到的是“{upload.filename or '无文件'}”）")
    folder = settings.home / "uploads"
    folder.mkdir(parents=True, exist_ok=True)
    prune_uploads(folder)
    path = folder / f"u{user.id}-{secrets.token_hex(8)}{suffix}"
    size = 0
    with open(path, "wb") as fh:
        while chunk := await upload.read(1 << 20):
            size += len(chunk)
            if size > MAX_UPLOAD_BYTES:
                fh.close()
                path.unlink(missing_ok=True)
                raise ValueError(f"文件超过 {MAX_UPLOAD_BYTES // (1 << 20)} MB；请分批上传")
            fh.write(chunk)
    return path


def prune_uploads(folder: Path, max_age_s: float = UPLOAD_TTL_S) -> int:
    """Delete uploads older than `max_age_s`: previews nobody confirmed, files of imports a killed server never
    finished (a finished import deletes its own). Called at start-up and on every upload; returns how many went."""
    removed, cutoff = 0, time.time() - max_age_s
    for path in folder.glob("u*-*.*") if folder.is_dir() else ():
        try:
            if _UPLOAD_RE.match(path.name) and path.stat().st_mtime < cutoff:
                path.unlink()
                removed += 1
        except FileNotFoundError:  # another request pruned it first
            pass
    return removed


def upload_path(settings: Settings, user: User, name: str) -> Path:
    m = _UPLOAD_RE.match(name or "")
    path = settings.home / "uploads" / (name or "x")
    if not m or int(m.group(1)) != user.id or not path.exists():
        raise ValueError("上传的文件已失效，请重新上传")
    return path


@dataclass
class ImportPreview:
    """What the confirm page shows: the dry-run report, plus the rows this account may not import."""

    file_format: str = ""
    encoding: str | None = None
    valid: int = 0
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: list[tuple[int | str, str, str]] = field(default_factory=list)  # (row, id, reason)
    warnings: list[tuple[int | str, str, str]] = field(default_factory=list)
    mapping: dict[str, str] = field(default_factory=dict)
    unmapped: list[str] = field(default_factory=list)
    importable: int = 0


def not_owned(store: Store, user: User, records: list) -> set[str]:
    """Ids of uploaded patents a university account may not write (api.auth.may_write_patent)."""
    if user.role != "university":
        return set()
    return {rec.id for rec in records
            if not may_write_patent(store, user, rec.id, rec.applicants if "applicants" in rec.model_fields_set else [],
                                    (rec.application_number, rec.publication_number))}


def preview_import(settings: Settings, store: Store, user: User, kind: Kind, path: Path) -> ImportPreview:
    from indexer.pipeline import ingest_file

    result = ingest_file(settings, kind, path, dry_run=True)
    report, counts = result.report, result.counts
    foreign = not_owned(store, user, report.records) if kind == "patents" else set()
    rejected = [(r.row, r.id or "", r.reason) for r in report.rejected]
    rejected += [("—", pid, f"申请人中没有“{user.org}”，不能由本账号导入或修改") for pid in sorted(foreign)]
    return ImportPreview(
        file_format=report.file_format, encoding=report.encoding, valid=len(report.records),
        added=counts.added, updated=counts.updated, unchanged=counts.unchanged, rejected=rejected,
        warnings=[(r.row, r.id or "", r.reason) for r in report.warnings], mapping=report.mapping,
        unmapped=report.unmapped, importable=len(report.records) - len(foreign),
    )
