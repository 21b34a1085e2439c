"""The console's protections, applied by its route class to every response it sends.

- Headers: a strict Content-Security-Policy (`default-src 'self'`, no inline script or style,
  no framing, forms post only to this origin), `X-Frame-Options: DENY`,
  `Referrer-Policy: no-referrer`, `X-Content-Type-Options: nosniff`, and `Cache-Control:
  no-store` on pages (they show a tenant's requests).
- Forms: bodies are read bounded (`MAX_FORM_BYTES`) as `application/x-www-form-urlencoded`,
  and every POST must carry the session's CSRF token (compared in constant time) or is refused 403.
- Errors: whatever a handler raises ends in an HTML page with the status and one sentence, never a
  traceback and never a JSON problem document inside the browser.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable, Coroutine, Mapping
from typing import Any
from urllib.parse import parse_qsl

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException

from ...errors import (
    ApprovalError,
    InvalidTTLError,
    IrgovError,
    NotFoundError,
    SeparationOfDutiesError,
    StoreError,
)
from ..guard import read_bounded_body
from ..problems import ProblemError
from .sessions import Session

__all__ = ["CSP", "MAX_FORM_BYTES", "SIGN_IN_KIND", "refusal", "sign_in_required",  "console_route_class", "read_form", "require_csrf",
           "security_headers"]

logger = logging.getLogger(__name__)

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
       "font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
MAX_FORM_BYTES = 16 * 1024


def security_headers(response: Response, *, cache: bool = False) -> Response:
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cross-Origin-Opener-Policy"] = "same-origin"
    if not cache:
        response.headers["Cache-Control"] = "no-store"
    return response


SIGN_IN_KIND = "console-sign-in"


def refusal(status: int, message: str) -> ProblemError:
    """A refusal the console shows as a page: `status` and one sentence."""
    return ProblemError(status, "console", message)


def sign_in_required() -> ProblemError:
    """No live session: the browser is sent to the sign-in form."""
    return ProblemError(401, SIGN_IN_KIND, "sign in first")


async def read_form(request: Request) -> dict[str, str]:
    """The urlencoded body, bounded; a field sent twice is refused (which one would count?)."""
    try:
        body = await read_bounded_body(request, MAX_FORM_BYTES)
    except ProblemError as exc:
        raise refusal(exc.status, exc.detail) from None
    if not body:
        return {}  # no field at all: the CSRF check refuses it
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        raise refusal(415, "the console accepts only form posts")
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False,
                          max_num_fields=32)
    except (UnicodeDecodeError, ValueError):
        raise refusal(400, "the form could not be read") from None
    form: dict[str, str] = {}
    for name, value in pairs:
        if name in form:
            raise refusal(400, f"the form field `{name}` was sent twice")
        form[name] = value
    return form


def require_csrf(session: Session, form: Mapping[str, str]) -> None:
    sent = form.get("csrf_token", "")
    if not sent or not hmac.compare_digest(sent.encode("utf-8"), session.csrf.encode("utf-8")):
        raise refusal(403, "the form's security token is missing or stale: reload the page and try again")


def _status_of(exc: Exception) -> tuple[int, str]:
    if isinstance(exc, ProblemError):
        return exc.status, exc.detail
    if isinstance(exc, RequestValidationError):
        return 422, "the request is not valid"
    if isinstance(exc, StarletteHTTPException):
        return exc.status_code, str(exc.detail)
    if isinstance(exc, NotFoundError):
        return 404, str(exc)
    if isinstance(exc, SeparationOfDutiesError):
        return 403, str(exc)
    if isinstance(exc, StoreError):
        logger.error("console: %s", exc)
        return 503, "the approval store does not answer: try again shortly"
    if isinstance(exc, InvalidTTLError):
        return 422, str(exc)
    if isinstance(exc, ApprovalError | IrgovError):
        return 409, str(exc)
    logger.exception("console: unexpected error")
    return 500, "an unexpected error, described in the server log"


ErrorPage = Callable[[Request, int, str], Response]


def console_route_class(error_page: ErrorPage, sign_in: Callable[[Request], Response]) -> type[APIRoute]:
    """Routes whose every response carries the security headers, errors included."""

    class ConsoleRoute(APIRoute):
        def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
            handler = super().get_route_handler()
            static = self.name == "console_static"

            async def route(request: Request) -> Response:
                try:
                    response = await handler(request)
                except ProblemError as exc:
                    response = sign_in(request) if exc.kind == SIGN_IN_KIND else \
                        error_page(request, exc.status, exc.detail)
                except Exception as exc:
                    status, message = _status_of(exc)
                    response = error_page(request, status, message)
                return security_headers(response, cache=static and response.status_code == 200)

            return route

    return ConsoleRoute
