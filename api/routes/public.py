"""Pages anyone may open: the public patent catalogue (no contacts, no demands), login and logout; job progress."""
from __future__ import annotations

import secrets
from urllib.parse import quote

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

from api.auth import SESSION_COOKIE, SESSION_HOURS, authenticate, csrf_ok, hash_secret, session_user, start_session
from api.jobs import KIND_LABELS
from api.routes.common import page_user, render, state
from indexer.records import RecordError
from matcher.engine import MatchError

router = APIRouter(include_in_schema=False)
PAGE_SIZE = 30
MAX_QUERY = 500
LOGIN_CSRF_COOKIE = "ptm_login_csrf"  # before sign-in there is no session; a double-submit cookie guards the form
HOME = {"staff": "/staff", "enterprise": "/enterprise", "university": "/university"}


@router.get("/")
def catalogue(request: Request, q: str = "", page: int = 1) -> Response:
    settings, store, _ = state(request)
    q = q.strip()
    error, results, patents = "", [], []
    page = max(1, page)
    if len(q) > MAX_QUERY:
        error = f"检索内容最多 {MAX_QUERY} 字"
    elif q:
        try:
            matches = request.app.state.engine.match_text(q, 20)
            records = {m.id: store.get("patents", m.id) for m in matches}
            results = [(m, records[m.id]) for m in matches if records.get(m.id)]
        except RecordError as exc:
            error = "请用中文描述您需要的技术" if "Chinese" in exc.message else f"检索内容无效：{exc.message}"
        except MatchError:
            error = "专利库尚未建立索引，请稍后再试"
    else:
        patents = store.list("patents", limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE)
    total = store.count("patents")
    return render(request, "catalogue.html", {
        "q": q, "error": error, "results": results, "patents": patents, "page": page, "total": total,
        "pages": max(1, -(-total // PAGE_SIZE)),
    })


@router.get("/login")
def login_page(request: Request, next: str = "") -> Response:
    token = secrets.token_urlsafe(24)
    response = render(request, "login.html", {"login_csrf": token, "next": _safe_next(next), "error": "", "username": ""})
    response.set_cookie(LOGIN_CSRF_COOKIE, token, httponly=True, samesite="lax", secure=request.url.scheme == "https", max_age=3600)
    return response


@router.post("/login")
async def login(request: Request) -> Response:
    form = await request.form()
    if not csrf_ok(request.cookies.get(LOGIN_CSRF_COOKIE), form.get("csrf")):
        raise HTTPException(403, "登录表单已失效（CSRF 校验失败），请刷新页面后重试")
    username, password = str(form.get("username", ""))[:64], str(form.get("password", ""))[:256]
    web, throttle = request.app.state.web, request.app.state.login_throttle
    blocked = throttle.blocked(username)
    user = authenticate(web, username, password) if username and password and not blocked else None
    if user is None:
        if not blocked:
            throttle.failed(username)
        token = secrets.token_urlsafe(24)
        error = "该账号连续登录失败次数过多，请 15 分钟后再试" if blocked else "用户名或密码不正确"
        response = render(request, "login.html", {"login_csrf": token, "next": _safe_next(str(form.get("next", ""))),
                                                  "error": error, "username": username}, status=429 if blocked else 401)
        response.set_cookie(LOGIN_CSRF_COOKIE, token, httponly=True, samesite="lax", secure=request.url.scheme == "https")
        return response
    throttle.succeeded(username)
    response = RedirectResponse(_safe_next(str(form.get("next", ""))) or HOME[user.role], status_code=303)
    response.set_cookie(SESSION_COOKIE, start_session(web, user), httponly=True, samesite="lax",
                        secure=request.url.scheme == "https", max_age=SESSION_HOURS * 3600)
    response.delete_cookie(LOGIN_CSRF_COOKIE)
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    signed = session_user(request)
    form = await request.form()
    if signed is not None:
        if not csrf_ok(signed[1], form.get("csrf")):
            raise HTTPException(403, "表单已失效（CSRF 校验失败），请刷新页面后重试")
        request.app.state.web.delete_session(hash_secret(request.cookies[SESSION_COOKIE]))
    response = RedirectResponse("/", status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    return response


def _safe_next(target: str) -> str:
    # Only local paths: an open redirect to another site would make phishing links look like ours.
    return target if target.startswith("/") and not target.startswith("//") and "\\" not in target else ""


def _visible_job(request: Request, job_id: int):
    user = page_user(request)
    job = request.app.state.web.job(job_id)
    if job is None or (user.role != "staff" and job.user_id != user.id):
        raise HTTPException(404, "没有这个任务")
    return job


@router.get("/jobs/{job_id}")
def job_page(request: Request, job_id: int) -> Response:
    return render(request, "job.html", {"job": _visible_job(request, job_id), "kind_labels": KIND_LABELS})


@router.get("/jobs/{job_id}/status")
def job_json(request: Request, job_id: int) -> JSONResponse:
    return JSONResponse(_visible_job(request, job_id).to_dict())


def login_redirect(request: Request) -> RedirectResponse:
    return RedirectResponse("/login?next=" + quote(request.url.path), status_code=303)
