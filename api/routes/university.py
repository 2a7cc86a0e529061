"""University pages: its own patents (applicants contain its name), their transfer terms, who is interested; imports.

The import pages are shared with staff (staff may import demands too and are not limited to own patents):
upload → dry-run report (nothing written) → confirm → a background job that imports and indexes.
"""
from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from api.auth import owns_patent
from api.jobs import import_body
from api.routes.common import (LICENCE_MODES, PageDenied, checked_form, not_owned, own_patents, page_user,
                               preview_import, render, save_upload, state, upload_path)
from api.webstore import User
from indexer.readers import ImportFileError
from indexer.records import Patent

router = APIRouter(include_in_schema=False)
MAX_PRICE_WAN = 1_000_000


@router.get("/university")
def home(request: Request) -> Response:
    user = page_user(request, "university")
    _, store, web = state(request)
    patents = own_patents(store, user)
    interests = web.interests(patent_ids=[p.id for p in patents])
    by_patent: dict[str, list[dict]] = {}
    for i in interests:
        demand = store.get("demands", i["demand_id"])
        # The enterprise's name and what it needs, never its contact details (those are for staff).
        by_patent.setdefault(i["patent_id"], []).append({**i, "demand_title": demand.title if demand else "（需求已撤回）"})
    return render(request, "university_home.html", {"patents": patents, "interests": by_patent,
                                                     "jobs": web.jobs(5, user_id=user.id)})


def _own_patent(request: Request, user: User, patent_id: str) -> Patent:
    _, store, _ = state(request)
    patent = store.get("patents", patent_id)
    if patent is None or not owns_patent(user, patent.applicants):
        raise PageDenied("没有这个专利，或它的申请人不是贵校，不能修改")
    return patent


@router.get("/university/patents/{patent_id}/edit")
def edit_patent(request: Request, patent_id: str) -> Response:
    user = page_user(request, "university")
    p = _own_patent(request, user, patent_id)
    values = {"transferable": p.transferable, "licence_terms": p.licence_terms,
              "price_wan": "" if p.price_wan is None else f"{p.price_wan:g}"}
    return render(request, "patent_form.html", {"patent": p, "values": values, "errors": {}, "modes": LICENCE_MODES})


@router.post("/university/patents/{patent_id}/edit")
async def save_patent(request: Request, patent_id: str) -> Response:
    user, form = await checked_form(request, "university")
    _, store, _ = state(request)
    p = _own_patent(request, user, patent_id)
    values = {"transferable": form.get("transferable") == "on", "licence_terms": str(form.get("licence_terms", "")).strip(),
              "price_wan": str(form.get("price_wan", "")).strip()}
    errors = {}
    if values["licence_terms"] and values["licence_terms"] not in LICENCE_MODES:
        errors["licence_terms"] = "请选择 " + "、".join(LICENCE_MODES) + " 之一"
    price = None
    if values["price_wan"]:
        try:
            price = float(values["price_wan"])
            if not 0 <= price <= MAX_PRICE_WAN:
                raise ValueError
        except ValueError:
            errors["price_wan"] = f"报价须为 0 到 {MAX_PRICE_WAN} 之间的数字（单位：万元）"
    if errors:
        return render(request, "patent_form.html", {"patent": p, "values": values, "errors": errors, "modes": LICENCE_MODES}, status=422)
    # Only these three fields change; the text (so the index) stays as it is.
    store.upsert("patents", [p.model_copy(update={"transferable": values["transferable"],
                                                  "licence_terms": values["licence_terms"], "price_wan": price})])
    return RedirectResponse("/university#p-" + patent_id, status_code=303)


# ---- imports (university: own patents; staff: patents or demands) -----------------------------
def _import_kinds(user: User) -> tuple[str, ...]:
    return ("patents", "demands") if user.role == "staff" else ("patents",)


@router.get("/import")
def import_page(request: Request) -> Response:
    user = page_user(request, "university", "staff")
    return render(request, "import.html", {"kinds": _import_kinds(user), "error": "", "preview": None})


@router.post("/import")
async def upload(request: Request) -> Response:
    user, form = await checked_form(request, "university", "staff")
    settings, store, _ = state(request)
    kind = str(form.get("kind", "patents"))
    kinds = _import_kinds(user)
    ctx = {"kinds": kinds, "preview": None, "kind": kind}
    file = form.get("file")
    if kind not in kinds:
        return render(request, "import.html", {**ctx, "error": "不能导入这种数据"}, status=422)
    if not getattr(file, "filename", ""):  # a starlette UploadFile when a file was chosen, else a string
        return render(request, "import.html", {**ctx, "error": "请选择要上传的文件"}, status=422)
    try:
        path = await save_upload(settings, user, file)
    except ValueError as exc:
        return render(request, "import.html", {**ctx, "error": str(exc)}, status=422)
    try:
        preview = preview_import(settings, store, user, kind, path)
    except (ImportFileError, ValueError) as exc:
        path.unlink(missing_ok=True)
        return render(request, "import.html", {**ctx, "error": f"文件无法导入：{exc}"}, status=422)
    return render(request, "import.html", {**ctx, "error": "", "preview": preview, "upload": path.name,
                                           "filename": file.filename})


@router.post("/import/confirm")
async def confirm(request: Request) -> Response:
    user, form = await checked_form(request, "university", "staff")
    settings, store, _ = state(request)
    kind = str(form.get("kind", "patents"))
    if kind not in _import_kinds(user):
        raise PageDenied("不能导入这种数据")
    try:
        path = upload_path(settings, user, str(form.get("upload", "")))
    except ValueError as exc:
        return render(request, "import.html", {"kinds": _import_kinds(user), "error": str(exc), "preview": None}, status=422)

    def keep(records: list) -> list:
        # Checked again at import time: the store may have changed since the preview.
        foreign = not_owned(store, user, records)
        return [r for r in records if r.id not in foreign]

    job_id = request.app.state.jobs.start("import", user, import_body(settings, store, kind, path, keep))
    return RedirectResponse(f"/jobs/{job_id}", status_code=303)
