"""The console's routes: sign-in and sign-out, the queue and its live feed, a request's detail
with Approve and Deny, the history, and the static files.

Every page is rendered on the server by Jinja2 with autoescape on, so every string from an IR or
a request is text, in element content and in attributes alike. The kernel decides everything
(tenant scope, separation of duties, TTL bounds); the pages only explain its answers.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse, StreamingResponse
from jinja2 import Environment, PackageLoader, select_autoescape

from ...errors import SeparationOfDutiesError
from ...kernel import Governance
from ...kernel.request_details import list_item
from ...kernel.requests import now_us
from ...text_rules import REQUEST_ID
from ..auth import ApiKeyAuth, Principal, Role, hash_api_key
from ..problems import ProblemError
from .feed import STREAM_SECONDS, feed_for, queue_stream
from .present import HISTORY_STATUSES, QUEUE_STATUSES, TIERS, QueueFilter, detail_model, queue_rows
from .security import console_route_class, read_form, refusal, require_csrf, sign_in_required
from .sessions import Session, SessionStore, new_session_id, session_digest

__all__ = ["ConsoleSettings", "build_console_router"]

logger = logging.getLogger(__name__)

COOKIE = "irgov_console"
PRE_COOKIE = "irgov_console_signin"
STATIC_FILES = {"console.css": "text/css; charset=utf-8", "console.js": "text/javascript; charset=utf-8"}
MAX_LISTED = 500
STEPS_PAGE = 50
#: fixed messages after a redirect: the query names one, no user text is ever reflected
NOTICES = {
    "approved": "Approved. The requester claims the token through the API; it is never shown here.",
    "denied": "Denied. The requester sees your reason.",
    "signed-out": "You are signed out.",
}


@dataclass(frozen=True)
class ConsoleSettings:
    session_seconds: float = 8 * 3600.0
    #: how often a live stream reads the queue when no event woke it
    poll_interval: float = 2.0
    #: how long one live stream lasts before the browser reconnects
    stream_seconds: float = STREAM_SECONDS


def _templates() -> Environment:
    env = Environment(loader=PackageLoader("irgov_policy.http.console", "templates"),
                      autoescape=select_autoescape(default=True, default_for_string=True), auto_reload=False)
    return env


def grant_for_claim(governance: Governance, request_id: str, approver: str, tenant: str,
                    ttl_seconds: float, reason: str | None) -> Any:
    """Grant without the token reaching the approver: it is sealed for the requester to claim
    (`POST /approvals/{id}/claim`); the grant holds none."""
    return governance.agrant(request_id, approver, tenant, ttl_seconds=ttl_seconds, reason=reason, deliver="claim")


def build_console_router(governance: Governance, settings: ConsoleSettings, sessions: SessionStore) -> APIRouter:
    env = _templates()
    keys = ApiKeyAuth(governance.config.api_keys)
    feed = feed_for(governance.bus)

    def render(request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
        base = request.url_for("console_queue").path
        html = env.get_template(name).render(
            url=lambda route, **params: request.url_for(route, **params).path,
            static=lambda file: request.url_for("console_static", name=file).path,
            base=base, **context)
        return HTMLResponse(html, status_code=status)

    def error_page(request: Request, status: int, message: str) -> Response:
        try:
            return render(request, "error.html", status=status, status_code=status, message=message,
                          session=request.scope.get("irgov.console.session"))
        except Exception:  # a broken template must not hide the original error
            logger.exception("console: cannot render the error page")
            return HTMLResponse("error", status_code=status)

    def to_sign_in(request: Request) -> Response:
        return RedirectResponse(request.url_for("console_sign_in").path, status_code=303)

    router = APIRouter(route_class=console_route_class(error_page, to_sign_in), include_in_schema=False)

    def cookie_path(request: Request) -> str:
        return request.url_for("console_queue").path.rstrip("/") or "/"

    def set_cookie(request: Request, response: Response, name: str, value: str, max_age: int) -> None:
        response.set_cookie(name, value, max_age=max_age, path=cookie_path(request), httponly=True,
                            secure=request.url.scheme == "https", samesite="strict")

    async def session_of(request: Request) -> tuple[str, Session] | None:
        cookie = request.cookies.get(COOKIE)
        if not cookie or len(cookie) > 100:
            return None
        digest = session_digest(cookie)
        found = await asyncio.to_thread(sessions.get, digest)
        if found is None or not found.live:
            return None
        # A key removed from the configuration, or given another role, ends its sessions.
        principal = keys.principal_for_digest(found.key_digest)
        if principal is None or principal.name != found.principal or principal.role.value != found.role:
            return None
        request.scope["irgov.console.session"] = found
        return digest, found

    async def signed_in(request: Request) -> Session:
        found = await session_of(request)
        if found is None:
            raise sign_in_required()
        return found[1]

    def principal_of(session: Session) -> Principal:
        return Principal(session.principal, Role(session.role),
                         None if session.tenants is None else frozenset(session.tenants))

    def tenants_for(session: Session, chosen: str | None) -> list[str]:
        if session.tenants is not None:
            if chosen and chosen in session.tenants:
                return [chosen]
            return sorted(session.tenants)
        return [chosen] if chosen else []

    async def collect(tenants: list[str], status: str | None) -> list[dict[str, Any]]:
        """List items (the request, its IR's summary, age and deadline) of every tenant shown."""
        views: list[dict[str, Any]] = []
        for tenant in tenants:
            cursor: str | None = None
            while len(views) < MAX_LISTED:
                page, cursor = await governance.alist_requests(tenant, status=status, limit=200, cursor=cursor)
                now, retention = now_us(), governance.retention_us
                views.extend(list_item(v, now_us=now, retention_us=retention) for v in page)
                if cursor is None:
                    break
        return views

    async def queue_state(session: Session, chosen: QueueFilter, tenant: str | None) -> dict[str, Any]:
        tenants = tenants_for(session, tenant)
        views = [v for v in await collect(tenants, chosen.status) if chosen.accepts(v)]
        rows = queue_rows(views, datetime.now(UTC))
        waiting = len(rows) if chosen.status == "requested" else sum(1 for r in rows if r["status"] == "requested")
        return {"rows": rows, "waiting": waiting, "tenants": tenants}

    def sign_in_page(request: Request, status: int = 200, message: str | None = None,
                     notice: str | None = None) -> Response:
        token = secrets.token_urlsafe(24)
        response = render(request, "signin.html", status=status, csrf=token, message=message, notice=notice,
                          session=None)
        set_cookie(request, response, PRE_COOKIE, token, 600)
        return response

    @router.get("/", name="console_queue")
    async def queue(request: Request, status: str | None = None, tier: str | None = None,
                    tenant: str | None = None, done: str | None = None) -> Response:
        session = await signed_in(request)
        chosen = QueueFilter.parse(status, tier)
        tenant = tenant if tenant and len(tenant) <= 100 else None
        state = await queue_state(session, chosen, tenant)
        return render(request, "queue.html", session=session, state=state, filter=chosen,
                      statuses=QUEUE_STATUSES, tiers=TIERS, tenant=tenant or "",
                      all_tenants=session.tenants is None, notice=NOTICES.get(done or ""))

    @router.get("/events", name="console_events")
    async def events(request: Request, status: str | None = None, tier: str | None = None,
                     tenant: str | None = None) -> Response:
        await signed_in(request)
        chosen = QueueFilter.parse(status, tier)
        tenant = tenant if tenant and len(tenant) <= 100 else None

        async def snapshot() -> dict[str, Any] | None:
            found = await session_of(request)
            if found is None:
                return None
            state = await queue_state(found[1], chosen, tenant)
            key = [[r["request_id"], r["status"], r["risk_tier"]] for r in state["rows"]]
            return {"key": key, "data": state}

        stream = queue_stream(feed, snapshot, poll_interval=settings.poll_interval,
                              is_disconnected=request.is_disconnected, stream_seconds=settings.stream_seconds)
        return StreamingResponse(stream, media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

    @router.get("/sign-in", name="console_sign_in")
    async def sign_in_form(request: Request, done: str | None = None) -> Response:
        if await session_of(request) is not None:
            return RedirectResponse(request.url_for("console_queue").path, status_code=303)
        return sign_in_page(request, notice=NOTICES.get(done or ""))

    @router.post("/sign-in", name="console_sign_in_post")
    async def sign_in(request: Request) -> Response:
        form = await read_form(request)
        expected = request.cookies.get(PRE_COOKIE, "")
        sent = form.get("csrf_token", "")
        if not expected or not sent or not hmac.compare_digest(expected.encode(), sent.encode()):
            raise refusal(403, "the form's security token is missing or stale: reload the page and try again")
        key = form.get("api_key", "").strip()
        try:
            principal = keys.authenticate(f"Bearer {key}")
        except ProblemError:
            return sign_in_page(request, 401, "this api key is not valid")
        if principal.role not in (Role.APPROVER, Role.ADMIN):
            return sign_in_page(request, 403, f"role `{principal.role.value}` cannot use the console: it needs "
                                              "`approver` or `admin`")
        now = time.time()
        session = Session(principal.name, principal.role.value,
                          None if principal.tenants is None else tuple(sorted(principal.tenants)),
                          hash_api_key(key), secrets.token_urlsafe(32), now, now + settings.session_seconds)
        session_id = new_session_id()
        await asyncio.to_thread(sessions.put, session_digest(session_id), session)
        logger.info("console: %s signed in", principal.name)
        response = RedirectResponse(request.url_for("console_queue").path, status_code=303)
        set_cookie(request, response, COOKIE, session_id, int(settings.session_seconds))
        response.delete_cookie(PRE_COOKIE, path=cookie_path(request))
        return response

    @router.post("/sign-out", name="console_sign_out")
    async def sign_out(request: Request) -> Response:
        found = await session_of(request)
        if found is None:
            raise sign_in_required()
        require_csrf(found[1], await read_form(request))
        await asyncio.to_thread(sessions.delete, found[0])
        logger.info("console: %s signed out", found[1].principal)
        response = RedirectResponse(request.url_for("console_sign_in").path + "?done=signed-out", status_code=303)
        response.delete_cookie(COOKIE, path=cookie_path(request), httponly=True,
                               secure=request.url.scheme == "https", samesite="strict")
        return response

    async def tenant_in_scope(session: Session, request_id: str) -> str:
        if not REQUEST_ID.fullmatch(request_id):
            raise refusal(404, f"approval request `{request_id}` does not exist")
        tenant = await governance.arequest_tenant(request_id)
        if tenant is None or not principal_of(session).can_access(tenant):
            raise refusal(404, f"approval request `{request_id}` does not exist")
        return tenant

    async def details(session: Session, request_id: str, steps_offset: int = 0) -> tuple[str, dict[str, Any]]:
        tenant = await tenant_in_scope(session, request_id)
        found = await governance.arequest_details(request_id, tenant, steps_offset=steps_offset,
                                                  steps_limit=STEPS_PAGE, viewer=session.principal)
        return tenant, found.to_dict()

    def why_not(session: Session, view: Mapping[str, Any]) -> str | None:
        """Why this principal may not approve, in words; the kernel decides (`grant_refused`) and
        refuses a forced grant in any case."""
        refused = view.get("grant_refused")
        if not refused:
            return None
        if view.get("requested_by") == session.principal:
            lead = "You asked for this approval."
        elif session.principal in (view.get("submitted_by") or ()):
            lead = "You submitted this plan for validation."
        else:
            lead = "You may not approve this request."
        return (f"{lead} Separation of duties is on: someone other than the submitter of the plan and the "
                f"requester must approve it ({refused}).")

    def ttl_bounds() -> tuple[int, int, int]:
        maximum = max(1, int(governance.approvals.max_ttl // 60))
        default = max(1, min(maximum, int(governance.approvals.default_ttl // 60)))
        return 1, default, maximum

    @router.get("/requests/{request_id}", name="console_request")
    async def detail(request: Request, request_id: str, done: str | None = None, steps: str | None = None) -> Response:
        session = await signed_in(request)
        offset = int(steps) if steps is not None and steps.isdigit() and len(steps) < 9 else 0
        _, view = await details(session, request_id, offset)
        threshold = getattr(getattr(governance.engine, "policy", None), "escalation_threshold", None)
        model = detail_model(view, escalation_tier=threshold if isinstance(threshold, int) else 2)
        low, default, high = ttl_bounds()
        return render(request, "detail.html", session=session, model=model, view=view,
                      blocked=why_not(session, view), ttl_min=low, ttl_default=default,
                      ttl_max=high, notice=NOTICES.get(done or ""))

    @router.post("/requests/{request_id}/approve", name="console_approve")
    async def approve(request: Request, request_id: str) -> Response:
        session = await signed_in(request)
        form = await read_form(request)
        require_csrf(session, form)
        tenant, view = await details(session, request_id)
        low, _, high = ttl_bounds()
        minutes_text = form.get("ttl_minutes", "").strip()
        if not minutes_text.isdigit() or not low <= int(minutes_text) <= high:
            raise refusal(422, f"the token lifetime must be a whole number of minutes from {low} to {high}")
        reason = form.get("reason", "").strip() or None
        blocked = why_not(session, view)
        try:
            await grant_for_claim(governance, request_id, session.principal, tenant, int(minutes_text) * 60, reason)
        except SeparationOfDutiesError as exc:
            raise refusal(403, f"{blocked or exc}") from None
        return RedirectResponse(request.url_for("console_request", request_id=request_id).path + "?done=approved",
                                status_code=303)

    @router.post("/requests/{request_id}/deny", name="console_deny")
    async def deny(request: Request, request_id: str) -> Response:
        session = await signed_in(request)
        form = await read_form(request)
        require_csrf(session, form)
        tenant = await tenant_in_scope(session, request_id)
        reason = form.get("reason", "").strip()
        if not reason:
            raise refusal(422, "a denial needs a reason: the requester reads it")
        await governance.arevoke(request_id, tenant, by=session.principal, reason=reason)
        return RedirectResponse(request.url_for("console_request", request_id=request_id).path + "?done=denied",
                                status_code=303)

    @router.get("/history", name="console_history")
    async def history(request: Request, tenant: str | None = None) -> Response:
        session = await signed_in(request)
        tenants = tenants_for(session, tenant if tenant and len(tenant) <= 100 else None)
        views = []
        for status in HISTORY_STATUSES:
            views.extend(await collect(tenants, status))
        views.sort(key=lambda v: str(v.get("revoked_at") or v.get("granted_at") or v.get("requested_at")),
                   reverse=True)
        rows = [{"view": v, "model": detail_model(v)} for v in views[:MAX_LISTED]]
        return render(request, "history.html", session=session, rows=rows, tenant=tenant or "",
                      all_tenants=session.tenants is None)

    @router.get("/static/{name}", name="console_static")
    async def static(name: str) -> Response:
        media = STATIC_FILES.get(name)
        if media is None:
            raise refusal(404, "no such file")
        body = resources.files("irgov_policy.http.console").joinpath("static", name).read_bytes()
        return Response(body, media_type=media, headers={"Cache-Control": "max-age=300"})

    return router
