"""FastAPI app factory: the REST API over indexer (writes) and matcher.engine (reads), and the web UI (api/routes).

API access (tokens from `ptm token add USER --scope ...`, sent as `Authorization: Bearer <token>`):
GET /health and POST /match are public (the public catalogue); writes need a token with the right scope and,
for enterprise and university accounts, ownership of the record; the match lists of stored demands and
patents need the `read` scope and ownership (staff see all).
"""
from __future__ import annotations

import hashlib
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import Body, Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException
from pydantic import BaseModel, Field, ValidationError

from api.auth import LoginThrottle, Principal, may_write_patent, owns_demand, require_scope
from api.jobs import JobRunner, index_syncs
from api.routes.common import prune_uploads
from api.webstore import WebStore
from indexer.backup import serving
from indexer.records import Demand, Patent, RecordError, check_text, first_error
from indexer.settings import Settings
from indexer.store import StoreError
from matcher.engine import Engine, Match, MatchError, NotFoundError
from matcher.filters import FilterError, Filters, build_filters

MAX_BATCH = 5_000
# Pages run only their own /static scripts: an injected <script>, inline handler or javascript: URL does not run
# even if escaping ever failed. Inline <style> stays allowed for the printable session export (one self-contained
# file); styles cannot run code. /docs and /redoc are FastAPI's pages (CDN script, inline bootstrap): exempt.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
       "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'")
_CSP_EXEMPT = ("/docs", "/redoc")


class SecurityHeaders:
    """ASGI middleware adding CSP, nosniff and a same-origin referrer policy to every HTTP response."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        exempt = scope["path"].startswith(_CSP_EXEMPT)

        async def send_with_headers(message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                if not exempt:
                    headers.setdefault("Content-Security-Policy", CSP)
                headers.setdefault("X-Content-Type-Options", "nosniff")
                headers.setdefault("Referrer-Policy", "same-origin")
            await send(message)

        await self.app(scope, receive, send_with_headers)


class FilterParams(BaseModel):
    """Patent filters, applied inside the search; lists are any-of. A bad value answers 422 listing the valid options."""

    legal_status: list[str] = Field(default_factory=list, description="有效, 审中, 失效, 驳回, 撤回")
    patent_type: list[str] = Field(default_factory=list, description="发明, 实用新型, 外观设计")
    ipc: list[str] = Field(default_factory=list, description="IPC prefixes: H, H04, H04N, H04N5, H04N5/22")
    applicant_type: list[str] = Field(default_factory=list, description="university, research_institute, enterprise, individual")
    region: str = Field(default="", description="part of the region, e.g. 北京")
    transferable_only: bool = False
    min_value: float | None = Field(default=None, description="minimum value score, 0–100")
    date_from: str | None = Field(default=None, description="application date on or after, YYYY-MM-DD")
    date_to: str | None = Field(default=None, description="application date on or before, YYYY-MM-DD")

    def filters(self) -> Filters | None:
        return build_filters(
            legal_status=self.legal_status, patent_type=self.patent_type, ipc_prefix=self.ipc,
            applicant_type=self.applicant_type, region=self.region, transferable_only=self.transferable_only,
            min_value=self.min_value, date_from=self.date_from, date_to=self.date_to,
        )


class MatchRequest(FilterParams):
    text: str = Field(description="the demand text, in Chinese", examples=["我们需要一种防爆锂电池的安全技术"])
    k: int = Field(default=10, ge=1, le=1000)


class DemandIn(BaseModel):
    id: str | None = Field(default=None, description="your own id; generated when absent")
    title: str = Field(default="", max_length=500)
    text: str
    enterprise: str = ""
    industry: str = ""
    region: str = ""
    budget_wan: float | None = Field(default=None, ge=0)
    contact: str = ""


class MatchOut(BaseModel):
    id: str
    rank: int
    score: float
    title: str
    dense_rank: int | None
    bm25_rank: int | None
    dense_score: float | None
    bm25_score: float | None
    matched_terms: list[str]
    quality: str = Field(description="强 / 中 / 弱; no result above 弱 means no good match")
    value_score: float | None = Field(default=None, description="patents: value score 0–100 (README: Patent value score)")
    snippet: str = Field(description="the candidate's text around the shared terms, each marked 【…】")
    ipc: list[str] = Field(description="IPC codes with their Chinese titles (patents)")


class UpsertOut(BaseModel):
    added: int
    updated: int
    unchanged: int
    indexed: int


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings.from_env()
    engine = Engine(settings)

    @asynccontextmanager
    async def hold_workspace(_: FastAPI) -> AsyncIterator[None]:
        # While serving, `ptm restore` refuses to swap the workspace out from under us (indexer/backup.py).
        with serving(settings.home):
            yield

    app = FastAPI(title="Patent transfer matchmaking engine", version="0.1.0", lifespan=hold_workspace,
                  description="Match enterprise technology demands (企业技术需求) with transferable patents.")
    app.state.engine = engine
    app.state.web = web = WebStore(settings.db_path)
    web.fail_interrupted_jobs()
    prune_uploads(settings.home / "uploads")  # those interrupted jobs' files, unconfirmed previews
    app.state.jobs = JobRunner(web)
    app.state.login_throttle = LoginThrottle()
    _add_web_ui(app)
    app.add_middleware(SecurityHeaders)

    @app.exception_handler(RecordError)
    async def _record_error(_: Request, exc: RecordError) -> JSONResponse:
        return JSONResponse(status_code=422, content={"detail": [{"loc": ["body", exc.field], "msg": exc.message}]})

    @app.exception_handler(FilterError)
    async def _filter_error(request: Request, exc: FilterError) -> JSONResponse:
        where = "query" if request.method == "GET" else "body"
        name = "ipc" if exc.field == "ipc_prefix" else exc.field  # the parameter is called ipc, as in the CLI
        return JSONResponse(status_code=422, content={"detail": [{"loc": [where, name], "msg": exc.message}]})

    @app.exception_handler(NotFoundError)
    async def _not_found(_: Request, exc: NotFoundError) -> JSONResponse:
        return JSONResponse(status_code=404, content={"detail": str(exc)})

    @app.exception_handler(MatchError)
    async def _not_ready(_: Request, exc: MatchError) -> JSONResponse:
        return JSONResponse(status_code=409, content={"detail": str(exc)})

    @app.exception_handler(StoreError)
    async def _store(_: Request, exc: StoreError) -> JSONResponse:
        return JSONResponse(status_code=503, content={"detail": str(exc)})

    @app.get("/health")
    def health() -> dict:
        from indexer.index import current_generation

        return {
            "status": "ok",
            "patents": engine.store.count("patents"),
            "demands": engine.store.count("demands"),
            "index": {k: current_generation(settings.index_dir, k) for k in ("patents", "demands")},
            "model": settings.model,
        }

    @app.post("/patents", response_model=UpsertOut, summary="Add or update patents (batch, all or nothing)")
    def post_patents(patents: Annotated[list[dict], Body(max_length=MAX_BATCH)],
                     who: Annotated[Principal, Depends(require_scope("patents:write"))]) -> UpsertOut:
        records = [_validate_patent(p, i, settings) for i, p in enumerate(patents)]
        for i, record in enumerate(records):
            _check_patent_owner(who, record.id, record.applicants if "applicants" in record.model_fields_set else [], i,
                                (record.application_number, record.publication_number))
        return _store_and_index("patents", records)

    @app.post("/demands", status_code=201, summary="Post an enterprise technology demand")
    def post_demand(demand: DemandIn, who: Annotated[Principal, Depends(require_scope("demands:write"))]) -> dict:
        check_text(demand.text, "text", settings.max_text_chars)
        data = demand.model_dump()
        if who.user.role == "enterprise":
            if demand.enterprise not in ("", who.user.org):
                raise HTTPException(403, f"this token posts demands of {who.user.org!r} only")
            data["enterprise"] = who.user.org
            if demand.id and (old := engine.store.get("demands", demand.id)) is not None and not owns_demand(who.user, old.enterprise):
                raise HTTPException(403, f"demand {demand.id!r} belongs to another enterprise")
        data["id"] = demand.id or "D-" + hashlib.sha1(f"{demand.title}\n{demand.text}\n{time.time_ns()}".encode()).hexdigest()[:12]
        try:
            record = Demand.model_validate(data)
        except ValidationError as exc:
            raise first_error(exc) from exc
        counts = _store_and_index("demands", [record])
        return {"id": record.id, "added": counts.added, "updated": counts.updated,
                "matches": f"/demands/{record.id}/matches"}

    @app.delete("/patents/{patent_id}", summary="Remove a patent (and from the index)")
    def delete_patent(patent_id: str, who: Annotated[Principal, Depends(require_scope("patents:write"))]) -> dict:
        _check_patent_owner(who, patent_id, [], None)
        return _delete_and_index("patents", patent_id)

    @app.delete("/demands/{demand_id}", summary="Remove a demand (and from the index)")
    def delete_demand(demand_id: str, who: Annotated[Principal, Depends(require_scope("demands:write"))]) -> dict:
        _check_demand_owner(who, demand_id)
        return _delete_and_index("demands", demand_id)

    @app.get("/demands/{demand_id}/matches", response_model=list[MatchOut], summary="Ranked patents for a stored demand")
    def demand_matches(demand_id: str, filters: Annotated[FilterParams, Query()],
                       who: Annotated[Principal, Depends(require_scope("read"))],
                       k: Annotated[int, Query(ge=1, le=1000)] = 10) -> list[Match]:
        _check_demand_owner(who, demand_id)
        return engine.match_demand(demand_id, k, filters=filters.filters())

    @app.get("/patents/{patent_id}/matches", response_model=list[MatchOut], summary="Demands a stored patent serves")
    def patent_matches(patent_id: str, who: Annotated[Principal, Depends(require_scope("read"))],
                       k: Annotated[int, Query(ge=1, le=1000)] = 10) -> list[Match]:
        if who.user.role == "enterprise":  # the reverse list shows other enterprises' demands
            raise HTTPException(403, "enterprise accounts cannot list the demands a patent serves")
        _check_patent_owner(who, patent_id, [], None)
        return engine.match_patent(patent_id, k)

    @app.post("/match", response_model=list[MatchOut], summary="Ranked patents for an ad-hoc demand text")
    def match(req: MatchRequest) -> list[Match]:
        return engine.match_text(req.text, req.k, filters=req.filters())

    def _check_patent_owner(who: Principal, patent_id: str, applicants: list[str], position: int | None,
                            numbers: tuple[str, ...] = ()) -> None:
        """Universities write only their own patents (api.auth.may_write_patent)."""
        if may_write_patent(engine.store, who.user, patent_id, applicants, numbers):
            return
        if engine.store.get("patents", patent_id) is None and position is None:
            raise NotFoundError(f"no patent with id {patent_id!r}")
        where = f"item {position} ({patent_id})" if position is not None else f"patent {patent_id!r}"
        raise HTTPException(403, f"{where}: {who.user.org!r} is not among its applicants")

    def _check_demand_owner(who: Principal, demand_id: str) -> None:
        if who.user.role == "staff":
            return
        stored = engine.store.get("demands", demand_id)
        if stored is None:
            raise NotFoundError(f"no demand with id {demand_id!r}")
        if not owns_demand(who.user, stored.enterprise):
            raise HTTPException(403, f"demand {demand_id!r} belongs to another account")

    def _store_and_index(kind: str, records: list) -> UpsertOut:
        counts = engine.store.upsert(kind, records)
        report = index_syncs(settings).after_commit(kind)
        return UpsertOut(added=counts.added, updated=counts.updated, unchanged=counts.unchanged, indexed=report.total)

    def _delete_and_index(kind: str, record_id: str) -> dict:
        if not engine.store.delete(kind, [record_id]):
            raise NotFoundError(f"no {kind[:-1]} with id {record_id!r}")
        report = index_syncs(settings).after_commit(kind)
        return {"deleted": record_id, "indexed": report.total}

    return app


def _add_web_ui(app: FastAPI) -> None:
    """The server-rendered pages (api/routes) and their static files, on the same app as the API."""
    from pathlib import Path

    from fastapi.exception_handlers import http_exception_handler

    from api.routes import deals, enterprise, public, sessions, staff, university
    from api.routes.common import LoginRequired, PageDenied, render

    app.mount("/static", StaticFiles(directory=Path(__file__).parent / "static"), name="static")
    for module in (public, enterprise, university, staff, deals, sessions):
        app.include_router(module.router)

    @app.exception_handler(LoginRequired)
    async def _login(request: Request, _: LoginRequired) -> Response:
        return public.login_redirect(request)

    @app.exception_handler(PageDenied)
    async def _denied(request: Request, exc: PageDenied) -> Response:
        return render(request, "error.html", {"message": str(exc)}, status=403)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        # Browsers get a page in Chinese; scripts (Accept: application/json or */*) keep FastAPI's JSON.
        if "text/html" in request.headers.get("accept", "") and exc.status_code != 401:
            return render(request, "error.html", {"message": exc.detail}, status=exc.status_code)
        return await http_exception_handler(request, exc)


def _validate_patent(raw: dict, position: int, settings: Settings) -> Patent:
    """Validate one patent of a batch; errors name the item so the client can fix it."""
    try:
        record = Patent.model_validate(raw)
        check_text(record.abstract, "abstract", settings.max_text_chars)
    except ValidationError as exc:
        err = first_error(exc)
        raise RecordError(f"{position}.{err.field}", err.message) from exc
    except RecordError as exc:
        raise RecordError(f"{position}.{exc.field}", exc.message) from exc
    return record
