"""The officers' review workspace: server-rendered pages on the same app, signed sessions, CSRF on every form.

Pages: sign-in, the queue, an item with its reasons and the decision form, the history (audit log)
and a dashboard. Officers sign in with a password; API keys do not open these pages, and the
decider is always the signed-in officer, never a form field.
"""

from __future__ import annotations

import hmac
import logging
import math
import secrets
import time
import unicodedata
from datetime import date
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool

from models.lexicon import CATEGORIES
from models.settings import PROJECT_DIR, Settings
from serving import audit, review, users
from serving.observe import LOGGER

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")
router = APIRouter(prefix="/review", include_in_schema=False)
static = StaticFiles(directory=HERE / "static")
log = logging.getLogger(LOGGER)

HEADERS = {
    "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def session_secret(settings: Settings) -> str:
    """The cookie-signing secret: from settings, else generated once into var/secret_key (mode 0600)."""
    if settings.secret_key:
        return settings.secret_key
    path = PROJECT_DIR / "var" / "secret_key"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(48), encoding="utf-8")
        path.chmod(0o600)
    return path.read_text(encoding="utf-8").strip()


class SignIn(Exception):
    """Send the browser to the sign-in page."""


def _session(request: Request) -> dict[str, Any]:
    session: dict[str, Any] = request.session
    if "csrf" not in session:
        session["csrf"] = secrets.token_urlsafe(32)
    return session


def officer(request: Request) -> users.User:
    """The signed-in officer; otherwise to the sign-in page. Sessions end after ``session_seconds``."""
    session = _session(request)
    settings: Settings = request.app.state.settings
    name = session.get("user")
    if not name or time.time() - float(session.get("issued", 0)) > settings.session_seconds:
        session.pop("user", None)
        raise SignIn
    user = users.get(request.app.state.engine, name)
    if user is None:
        session.clear()
        raise SignIn
    return user


Officer = Annotated[users.User, Depends(officer)]


def check_csrf(request: Request, token: str) -> None:
    """Refuse a form whose token is not this session's."""
    expected = str(_session(request).get("csrf", ""))
    if not token or not hmac.compare_digest(expected, token):
        raise HTTPException(403, "this form has expired or did not come from this site; reload the page and retry")


def page(request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
    """Render a template with the session's CSRF token and the signed-in officer, with security headers."""
    session = _session(request)
    response = templates.TemplateResponse(
        request,
        name,
        {"csrf": session["csrf"], "user": session.get("user"), "flash": session.pop("flash", None), **context},
        status_code=status,
    )
    response.headers.update(HEADERS)
    return response


def redirect(url: str) -> RedirectResponse:
    """A redirect after a POST (303: the browser follows with GET)."""
    return RedirectResponse(url, status_code=303, headers={"Cache-Control": "no-store"})


# ----- rendering helpers -------------------------------------------------------------------------------


def _invisible(ch: str) -> bool:
    return unicodedata.category(ch) in ("Cf", "Cc", "Zl", "Zp") and ch not in "\n\t"


def segments(description: str, tokens: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The description as runs of text, each with its word weight's shade, invisible characters made visible."""
    weight = [0.0] * len(description)
    for t in tokens:
        for i in range(max(0, t["start"]), min(len(description), t["end"])):
            weight[i] = float(t["weight"])
    top = max((abs(w) for w in weight), default=0.0) or 1.0
    out: list[dict[str, Any]] = []
    for i, ch in enumerate(description):
        w = weight[i]
        shade = 0 if abs(w) < 0.05 * top else min(5, math.ceil(5 * abs(w) / top))
        css = f"w{'p' if w > 0 else 'n'}{shade}" if shade else ""
        if _invisible(ch):
            name = unicodedata.name(ch, "CONTROL CHARACTER")
            out.append({"text": f"U+{ord(ch):04X}", "css": "invisible", "title": f"removed: {name}"})
            continue
        if out and out[-1]["css"] == css and "title" not in out[-1]:
            out[-1]["text"] += ch
            out[-1]["weight"] = max(out[-1]["weight"], w, key=abs)
        else:
            out.append({"text": ch, "css": css, "weight": w})
    return out


# ----- routes ------------------------------------------------------------------------------------------


@router.get("/login")
async def login_form(request: Request) -> HTMLResponse:
    """The sign-in page."""
    return page(request, "login.html")


@router.post("/login")
async def login(
    request: Request,
    username: Annotated[str, Form(max_length=64)],
    password: Annotated[str, Form(max_length=256)],
    csrf: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    """Check the password; on success start a fresh session (new CSRF token) and go to the queue."""
    check_csrf(request, csrf)
    engine = request.app.state.engine
    user, why = await run_in_threadpool(users.authenticate, engine, username, password)
    outcome = "sign-in" if user else "sign-in refused"

    def record() -> None:
        with engine.begin() as conn:
            audit.append(conn, username[:64] if user else "-", outcome, None, {"reason": why} if not user else {})

    await run_in_threadpool(record)
    if user is None:
        log.info("sign-in refused", extra={"status": 401})
        message = "wrong name or password, or the account is locked for a while after repeated failures"
        return page(request, "login.html", status=401, error=message)
    request.session.clear()
    request.session.update(user=user.username, issued=time.time(), csrf=secrets.token_urlsafe(32))
    return redirect("/review")


@router.post("/logout")
async def logout(request: Request, csrf: Annotated[str, Form(max_length=100)] = "") -> Response:
    """End the session."""
    check_csrf(request, csrf)
    request.session.clear()
    return redirect("/review/login")


@router.get("")
async def queue_page(
    request: Request,
    user: Officer,
    status: Annotated[str, Query(pattern="^(open|decided|referred)$")] = "open",
    category: Annotated[str, Query(max_length=32)] = "",
    since: date | None = None,
    until: date | None = None,
    sort: Annotated[str, Query(pattern="^(newest|score)$")] = "newest",
    page_number: Annotated[int, Query(alias="page", ge=1, le=100_000)] = 1,
) -> HTMLResponse:
    """The queue of flagged items, filtered, sorted and paginated, with counts at the top."""
    filters = review.Filters(status, category if category in CATEGORIES else "", since, until, sort, page_number)
    items, total, counts = await run_in_threadpool(review.queue, request.app.state.engine, filters)
    pages = max(1, math.ceil(total / filters.per_page))
    return page(
        request,
        "queue.html",
        items=items,
        total=total,
        counts=counts,
        filters=filters,
        pages=pages,
        categories=[c for c in CATEGORIES if c != "none"],
    )


@router.get("/items/{item_id}")
async def item_page(request: Request, user: Officer, item_id: int) -> HTMLResponse:
    """One flagged item: the description with its words shaded, the reasons, the decision form, the history."""
    engine = request.app.state.engine
    try:
        found = await run_in_threadpool(review.item, engine, item_id)
    except review.NotFound:
        return page(request, "missing.html", status=404, item_id=item_id)
    explanation = found["explanation"]
    events = await run_in_threadpool(audit.history, engine, item_id)
    return page(
        request,
        "item.html",
        item=found,
        explanation=explanation,
        segments=segments(found["description"], explanation.get("tokens") or []),
        events=events,
        categories=[c for c in CATEGORIES if c != "none"],
        pending=[d for d in found["decisions"] if d["needs_confirmation"] and not d["confirmed_by"]],
    )


@router.post("/items/{item_id}/decide")
async def decide(
    request: Request,
    user: Officer,
    item_id: int,
    decision: Annotated[str, Form(pattern="^(controlled|not_controlled|referred)$")],
    version: Annotated[int, Form(ge=0)],
    csrf: Annotated[str, Form(max_length=100)] = "",
    comment: Annotated[str, Form(max_length=2000)] = "",
    category: Annotated[str, Form(max_length=32)] = "",
) -> Response:
    """Record the signed-in officer's decision; then on to the next open item."""
    check_csrf(request, csrf)
    engine = request.app.state.engine
    chosen = category if category in CATEGORIES and category != "none" else ""
    try:
        await run_in_threadpool(review.decide, engine, item_id, version, decision, comment, chosen, user)
    except review.NotFound:
        return page(request, "missing.html", status=404, item_id=item_id)
    except review.Conflict as err:
        request.session["flash"] = str(err)
        return redirect(f"/review/items/{item_id}")
    request.session["flash"] = f"item {item_id}: {decision.replace('_', ' ')} recorded"
    following = await run_in_threadpool(review.next_open, engine, item_id)
    return redirect(f"/review/items/{following}" if following else "/review")


@router.post("/items/{item_id}/confirm")
async def confirm(
    request: Request, user: Officer, item_id: int, csrf: Annotated[str, Form(max_length=100)] = ""
) -> Response:
    """A second officer confirms a 'not controlled' decision on a watch-listed substance."""
    check_csrf(request, csrf)
    try:
        await run_in_threadpool(review.confirm, request.app.state.engine, item_id, user)
        request.session["flash"] = f"item {item_id}: decision confirmed"
    except review.Conflict as err:
        request.session["flash"] = str(err)
    return redirect(f"/review/items/{item_id}")


@router.get("/history")
async def history_page(request: Request, user: Officer) -> HTMLResponse:
    """Who decided what, when, under which model version: the audit log, newest first."""
    events = await run_in_threadpool(audit.history, request.app.state.engine, None, 500)
    return page(request, "history.html", events=events)


@router.get("/dashboard")
async def dashboard_page(request: Request, user: Officer) -> HTMLResponse:
    """Flags per day and category, decisions, and the officers' precision by category, as charts."""
    data = await run_in_threadpool(review.dashboard, request.app.state.engine)
    return page(request, "dashboard.html", data=data, chart=day_chart(data["per_day"]))


COLOURS = {
    "chemical": "#b8482e", "biological": "#5a8f29", "nuclear": "#7b4fa0", "missile": "#2f6db5",
    "military": "#6b6b6b", "materials": "#c28b16", "electronics": "#138d8d", "other": "#999999",
}  # fmt: skip


def day_chart(per_day: dict[str, dict[str, int]], width: int = 720, height: int = 200) -> dict[str, Any]:
    """Stacked bars of flags per day and category, as SVG rectangles (no script, no external library)."""
    days = list(per_day)
    peak = max((sum(c.values()) for c in per_day.values()), default=0) or 1
    bar = width / max(1, len(days))
    rects = []
    for i, day in enumerate(days):
        y = float(height)
        for category, n in sorted(per_day[day].items()):
            h = height * n / peak
            y -= h
            colour = COLOURS.get(category, COLOURS["other"])
            rects.append(
                {
                    "x": i * bar + 2,
                    "y": y,
                    "w": max(1.0, bar - 4),
                    "h": h,
                    "fill": colour,
                    "title": f"{day} {category}: {n}",
                }
            )
        rects.append({"x": i * bar + 2, "y": height + 14, "label": day[5:]})
    legend = sorted({c for counts in per_day.values() for c in counts})
    return {
        "rects": rects,
        "width": width,
        "height": height + 20,
        "peak": peak,
        "legend": [(c, COLOURS.get(c, COLOURS["other"])) for c in legend],
    }
