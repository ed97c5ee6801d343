"""The FastAPI service: scores with explanations for screening systems, behind keys and limits.

The model loads once, in the lifespan, with its hashes verified; no verified model, no readiness.
A new champion is swapped in whole (admin call or alias polling): a request holds the model it
started with, so requests in flight finish on the old one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy import Engine, func, select
from starlette.concurrency import run_in_threadpool
from starlette.middleware.sessions import SessionMiddleware
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from models import registry
from models.settings import Settings, get_settings
from serving import db, keys, schemas, scoring
from serving.limits import Admission, BodyLimit, RateLimiter, Refused
from serving.observe import LOGGER, Metrics, configure_logging

log = logging.getLogger(LOGGER)
bearer = HTTPBearer(auto_error=False, description="an API key from `dualscreen keys create`")


# ----- request context, logging and metrics --------------------------------------------------------


class RequestContext:
    """Pure ASGI middleware: a request id, one JSON log line and the metrics of every request."""

    def __init__(self, app: ASGIApp, fastapi: FastAPI) -> None:
        self.app = app
        self.fastapi = fastapi

    def _route(self, scope: Scope) -> str:
        for route in self.fastapi.router.routes:
            match, _ = route.matches(scope)
            if match == Match.FULL:
                return str(getattr(route, "path", "other"))
        return "unmatched"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = uuid.uuid4().hex
        context: dict[str, Any] = {"request_id": request_id}
        scope.setdefault("state", {})["context"] = context
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            route = self._route(scope)
            metrics: Metrics = self.fastapi.state.metrics
            metrics.requests.labels(route=route, status=str(status)).inc()
            metrics.latency.labels(route=route).observe(elapsed)
            log.info(
                "request",
                extra={
                    **context,
                    "route": route,
                    "method": scope["method"],
                    "status": status,
                    "ms": round(elapsed * 1e3, 2),
                },
            )


def context_of(request: Request) -> dict[str, Any]:
    """The per-request fields that go into the log line (never text or keys)."""
    state = request.scope.setdefault("state", {})
    context: dict[str, Any] = state.setdefault("context", {"request_id": uuid.uuid4().hex})
    return context


# ----- dependencies --------------------------------------------------------------------------------


def _engine(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


def require(role: str) -> Callable[..., keys.ApiKey]:
    """A dependency admitting keys whose role includes ``role``: 401 without a live key, 403 below it, 429 over rate."""

    def dependency(
        request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
    ) -> keys.ApiKey:
        challenge = {"WWW-Authenticate": "Bearer"}
        if credentials is None or credentials.scheme.lower() != "bearer":
            raise HTTPException(401, "missing API key: send 'Authorization: Bearer <key>'", headers=challenge)
        key = keys.verify(_engine(request), credentials.credentials)
        if key is None:
            raise HTTPException(401, "invalid or revoked API key", headers=challenge)
        context = context_of(request)
        context.update(key_id=key.id, role=key.role)
        if not key.allows(role):
            raise HTTPException(403, f"this route needs the {role!r} role; this key has {key.role!r}")
        request.app.state.limiter.check(key.id)
        return key

    return dependency


ScreeningKey = Annotated[keys.ApiKey, Depends(require("screening"))]
OfficerKey = Annotated[keys.ApiKey, Depends(require("officer"))]
AdminKey = Annotated[keys.ApiKey, Depends(require("admin"))]


def served_model(request: Request) -> scoring.Served:
    """The model being served now; 503 while none is loaded."""
    served: scoring.Served | None = request.app.state.served
    if served is None:
        raise Refused(503, "no verified model is loaded; see /readyz", 30)
    context_of(request)["model_version"] = served.info.version
    return served


ServedDep = Annotated[scoring.Served, Depends(served_model)]


# ----- scoring and recording -----------------------------------------------------------------------


def _record(
    engine: Engine,
    served: scoring.Served,
    request_id: str,
    key_id: str,
    items: Sequence[schemas.Item],
    results: Sequence[schemas.Score],
    explained: dict[int, schemas.Score],
) -> None:
    """The audit row of every item; flagged items, with text and explanation, into the review queue."""
    stamp = db.now()
    rows = [
        {
            "request_id": request_id,
            "key_id": key_id,
            "item_id": r.id,
            "created_at": stamp,
            "model_version": served.info.version,
            "model_sha256": served.info.sha256,
            "score": r.score,
            "flagged": r.flagged,
            "category": r.category,
            "description_sha256": scoring.description_hash(item.description),
            "oov_rate": r._oov,
            "novelty": r._novelty,
        }
        for item, r in zip(items, results, strict=True)
    ]
    with engine.begin() as conn:
        ids = conn.execute(db.score_audit.insert().returning(db.score_audit.c.id, sort_by_parameter_order=True), rows)
        audit_ids = [row[0] for row in ids]
        queue = [
            {
                "audit_id": audit_ids[i],
                "request_id": request_id,
                "key_id": key_id,
                "item_id": results[i].id,
                "created_at": stamp,
                "model_version": served.info.version,
                "score": results[i].score,
                "threshold": results[i].threshold,
                "category": results[i].category,
                "description": items[i].description,
                "hs_code": items[i].hs_code,
                "explanation": scoring.explanation_json(explained[i]),
                "status": "open",
            }
            for i in sorted(explained)
        ]
        if queue:
            conn.execute(db.review_items.insert(), queue)


def score_and_record(
    engine: Engine,
    served: scoring.Served,
    request_id: str,
    key_id: str,
    items: Sequence[schemas.Item],
    explain: bool,
    metrics: Metrics,
) -> list[schemas.Score]:
    """Score, explain what the queue needs, record, count. Runs in a worker thread."""
    ids = scoring.item_ids(items)
    results, explained = scoring.score(served, items, ids, explain)
    flagged = sorted(explained)
    _record(engine, served, request_id, key_id, items, results, explained)
    metrics.descriptions.inc(len(items))
    for i in flagged:
        metrics.flags.labels(category=results[i].category).inc()
    return results


async def run_scoring(
    request: Request, served: scoring.Served, key: keys.ApiKey, items: Sequence[schemas.Item], explain: bool
) -> list[schemas.Score]:
    """Wait for a scoring slot (503 when the queue is full), then score in a worker thread."""
    state = request.app.state
    context = context_of(request)
    async with state.admission.slot():
        state.metrics.busy.set(state.admission.busy)
        results: list[schemas.Score] = await run_in_threadpool(
            score_and_record, state.engine, served, context["request_id"], key.id, items, explain, state.metrics
        )
    state.metrics.busy.set(state.admission.busy)
    context.update(items=len(items), flagged=sum(r.flagged for r in results))
    return results


async def unready(app: FastAPI) -> list[str]:
    """Why the service is not ready (empty when it is): a verified model loaded, a database taking writes."""
    state = app.state
    reasons = []
    if state.served is None:
        reasons.append(f"no verified model ({state.model_error or 'loading'})")
    if not await run_in_threadpool(db.writable, state.engine):
        reasons.append("database is not writable")
    return reasons


# ----- model swap ----------------------------------------------------------------------------------


async def swap(app: FastAPI, uri: str | None = None) -> scoring.Served:
    """Load and verify a model, then replace the served one in one assignment."""
    settings: Settings = app.state.settings
    fresh = await run_in_threadpool(scoring.load, settings, uri)
    old: scoring.Served | None = app.state.served
    app.state.served = fresh
    app.state.model_error = None
    app.state.metrics.serving(fresh.info.version, fresh.info.sha256)
    if old is not None:
        app.state.metrics.swaps.inc()
    log.info("model loaded", extra={"model_version": fresh.info.version})
    return fresh


async def poll(app: FastAPI, every: float) -> None:
    """Swap in a new champion when the alias moves (a scheduler-free hot swap)."""
    settings: Settings = app.state.settings
    name, _, alias = settings.model_uri.removeprefix("models:/").partition("@")
    while True:
        await asyncio.sleep(every)
        try:
            version = await run_in_threadpool(registry.alias_version, name, alias)
            current: scoring.Served | None = app.state.served
            if version is not None and (current is None or current.info.version != version):
                await swap(app)
        except Exception as err:  # a registry hiccup must not kill the poller; the next poll retries
            log.warning("model poll failed: %s", type(err).__name__)


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Connect the database, load the model once, poll for new champions; undo it all at shutdown."""
    settings: Settings = app.state.settings
    app.state.engine = db.connect(settings.database_url)
    app.state.limiter = RateLimiter(*settings.rate, engine=app.state.engine)
    if app.state.served is None:
        try:
            if settings.model_uri.startswith("models:/"):
                registry.configure(settings.tracking)
            await swap(app)
        except Exception as err:  # the service stays up, unready, and says why in /readyz
            app.state.model_error = f"{type(err).__name__}: {err}"
            log.error("no model loaded: %s", type(err).__name__)
    else:
        app.state.metrics.serving(app.state.served.info.version, app.state.served.info.sha256)
    poller = None
    if settings.model_poll_seconds > 0 and settings.model_uri.startswith("models:/") and "@" in settings.model_uri:
        poller = asyncio.create_task(poll(app, settings.model_poll_seconds))
    try:
        yield
    finally:
        if poller is not None:
            poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await poller
        app.state.engine.dispose()


# ----- errors --------------------------------------------------------------------------------------


def _field(loc: Sequence[Any]) -> str:
    parts = [p for p in loc if p != "body"]
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "body"


def _message(error: dict[str, Any]) -> str:
    if error.get("type") == "string_pattern_mismatch" and error.get("loc", ("",))[-1] == "description":
        return "description is blank; send the goods description as declared"
    if error.get("type") == "string_too_long" and error.get("loc", ("",))[-1] == "description":
        return f"description is over {schemas.MAX_DESCRIPTION} characters; send the goods description alone"
    if error.get("type") == "too_long" and error.get("loc", ("",))[-1] == "items":
        return f"more than {schemas.MAX_ITEMS} items; split the declaration lines over several requests"
    return str(error.get("msg", "invalid"))


def _error_body(request: Request, detail: Any) -> dict[str, Any]:
    body = {"detail": detail, "request_id": context_of(request)["request_id"]}
    if request.url.path.startswith("/v2/"):  # the Open Inference Protocol reads "error"
        body["error"] = (
            detail if isinstance(detail, str) else "; ".join(f"{e['field']}: {e['message']}" for e in detail)
        )
    return body


def install_error_handlers(app: FastAPI) -> None:
    """Clear errors that name the field and the fix, never the input or a traceback."""

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"field": _field(e.get("loc", ())), "message": _message(e)} for e in exc.errors()]
        return JSONResponse(_error_body(request, errors), status_code=422)

    @app.exception_handler(Refused)
    async def refused(request: Request, exc: Refused) -> JSONResponse:
        reason = {413: "body", 429: "rate", 503: "capacity"}.get(exc.status, str(exc.status))
        request.app.state.metrics.refused.labels(reason=reason).inc()
        headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after is not None else None
        return JSONResponse(_error_body(request, exc.detail), status_code=exc.status, headers=headers)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        return JSONResponse(_error_body(request, exc.detail), status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.error("unhandled %s", type(exc).__name__, extra=context_of(request))
        return JSONResponse(_error_body(request, "internal error; quote the request id to the operator"), 500)


# ----- the app -------------------------------------------------------------------------------------

ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": schemas.Problem, "description": "the body is not JSON"},
    401: {"model": schemas.Problem, "description": "missing, invalid or revoked API key"},
    403: {"model": schemas.Problem, "description": "the key's role does not allow this route"},
    413: {"model": schemas.Problem, "description": "request body over the limit"},
    422: {"model": schemas.Problem, "description": "invalid request; `detail` names each field"},
    429: {"model": schemas.Problem, "description": "rate limit exceeded; see Retry-After"},
    503: {"model": schemas.Problem, "description": "no model loaded or at capacity; see Retry-After"},
}


def create_app(settings: Settings | None = None, served: scoring.Served | None = None) -> FastAPI:
    """The service. ``served`` skips loading from the registry (tests, embedding)."""
    settings = settings or get_settings()
    configure_logging()
    app = FastAPI(
        title="dualscreen",
        version="1",
        summary="Scores goods descriptions for CBRN and dual-use relevance, with reasons an officer can check.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.served = served
    app.state.model_error = None
    app.state.metrics = Metrics()
    app.state.admission = Admission(settings.scoring_slots, settings.queue_limit)
    install_error_handlers(app)
    register_routes(app)
    from serving import kserve, web

    app.include_router(kserve.router)
    app.include_router(web.router)
    app.mount("/review/static", web.static, name="review-static")

    @app.exception_handler(web.SignIn)
    async def sign_in(request: Request, exc: web.SignIn) -> RedirectResponse:
        return RedirectResponse("/review/login", status_code=303)

    @app.get("/", include_in_schema=False)
    async def root() -> RedirectResponse:
        return RedirectResponse("/review", status_code=307)

    app.add_middleware(
        SessionMiddleware,
        secret_key=web.session_secret(settings),
        session_cookie="dualscreen_session",
        max_age=settings.session_seconds,
        same_site="strict",
        https_only=settings.secure_cookies,
    )
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)
    app.add_middleware(RequestContext, fastapi=app)
    return app


def register_routes(app: FastAPI) -> None:
    """Health, metrics, scoring, review and admin routes."""

    @app.get("/healthz", tags=["operations"])
    async def healthz() -> dict[str, str]:
        """Alive: the process answers."""
        return {"status": "alive"}

    @app.get("/readyz", tags=["operations"], responses={503: {"description": "not ready, with reasons"}})
    async def readyz(request: Request) -> JSONResponse:
        """Ready: a verified model is loaded and the database takes writes."""
        reasons = await unready(request.app)
        if reasons:
            return JSONResponse({"status": "not ready", "reasons": reasons}, status_code=503)
        return JSONResponse({"status": "ready", "model": request.app.state.served.info.model_dump()})

    @app.get("/metrics", tags=["operations"], response_class=Response)
    async def metrics(request: Request) -> Response:
        """Prometheus metrics: requests, latency, flags by category, the model served."""
        return Response(request.app.state.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    @app.post("/v1/score", tags=["scoring"], response_model=schemas.ScoreResponse, responses=ERRORS)
    async def score(body: schemas.ScoreRequest, request: Request, key: ScreeningKey, served: ServedDep) -> Any:
        """Score up to 256 descriptions; with ``explain``, cite provisions, hits, words and the HS check."""
        results = await run_scoring(request, served, key, body.items, body.explain)
        request_id = context_of(request)["request_id"]
        payload = schemas.ScoreResponse(request_id=request_id, model=served.info, results=results).model_dump()
        # Without explain, a result carries only its scores; nested nulls (an HS check's verdict) stay.
        payload["results"] = [{k: v for k, v in r.items() if v is not None} for r in payload["results"]]
        return JSONResponse(payload)

    @app.get("/v1/model", tags=["scoring"], responses=ERRORS)
    async def model(key: ScreeningKey, served: ServedDep) -> dict[str, Any]:
        """The model being served and its decision threshold."""
        return {**served.info.model_dump(), "threshold": served.threshold, "parts": list(served.flagger.parts)}

    @app.get("/v1/review/items", tags=["review"], responses=ERRORS)
    async def review_items(
        request: Request,
        key: OfficerKey,
        status: Annotated[str, Query(pattern="^(open|decided|referred)$")] = "open",
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
        offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    ) -> dict[str, Any]:
        """Flagged items waiting for review, newest first."""

        def read() -> dict[str, Any]:
            table = db.review_items
            with request.app.state.engine.connect() as conn:
                total = conn.execute(select(func.count()).select_from(table).where(table.c.status == status)).scalar()
                rows = conn.execute(
                    select(table)
                    .where(table.c.status == status)
                    .order_by(table.c.created_at.desc(), table.c.id.desc())
                    .limit(limit)
                    .offset(offset)
                ).mappings()
                items = [
                    {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in row.items() if k != "explanation"}
                    for row in rows
                ]
            return {"total": total, "items": items}

        return await run_in_threadpool(read)

    @app.post("/v1/admin/reload", tags=["admin"], responses={**ERRORS, 409: {"model": schemas.Problem}})
    async def reload(request: Request, key: AdminKey) -> dict[str, Any]:
        """Load the configured model again (the new champion) and swap it in without a restart."""
        try:
            fresh = await swap(request.app)
        except Exception as err:  # the old model keeps serving; the admin learns why the new one did not load
            raise HTTPException(
                409, f"the new model did not load ({type(err).__name__}); still serving the old one"
            ) from None
        return fresh.info.model_dump()

    @app.get("/v1/admin/keys", tags=["admin"], responses=ERRORS)
    async def list_keys(request: Request, key: AdminKey) -> list[dict[str, Any]]:
        """Every API key's id, name, role and dates (never a secret)."""
        found = await run_in_threadpool(keys.listing, request.app.state.engine)
        return [
            {
                "id": k.id,
                "name": k.name,
                "role": k.role,
                "created_at": k.created_at.isoformat(),
                "revoked_at": k.revoked_at.isoformat() if k.revoked_at else None,
            }
            for k in found
        ]

    @app.delete("/v1/admin/keys/{key_id}", tags=["admin"], responses={**ERRORS, 404: {"model": schemas.Problem}})
    async def revoke_key(
        request: Request, key: AdminKey, key_id: Annotated[str, PathParam(pattern="^[0-9a-f]{12}$")]
    ) -> dict[str, str]:
        """Revoke a key; it fails authentication from the next request on."""
        if not await run_in_threadpool(keys.revoke, request.app.state.engine, key_id):
            raise HTTPException(404, f"no live key with id {key_id}; see GET /v1/admin/keys")
        return {"revoked": key_id}
