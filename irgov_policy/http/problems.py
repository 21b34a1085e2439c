"""RFC 9457 problem details: every error of the router is `application/problem+json`.

A router cannot install exception handlers on its host's application, so the routes use
`ProblemRoute`, which turns every error raised while handling a request (authentication,
request validation, kernel refusals, unexpected failures) into a problem document itself.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Coroutine, Mapping
from typing import Any

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException

from ..errors import (
    ApprovalError,
    ApprovalKeyError,
    ConflictError,
    DigestError,
    EventError,
    IdempotencyConflictError,
    IrgovError,
    IRInputError,
    NotClaimantError,
    NotEscalatedError,
    NotFoundError,
    RateLimitedError,
    SeparationOfDutiesError,
    StoreError,
    StoreTimeoutError,
)
from ..strict_json import json_pointer
from ..text_rules import redact_tokens

__all__ = [
    "PROBLEM_MEDIA_TYPE",
    "PROBLEM_TYPE_BASE",
    "ProblemDetails",
    "ProblemError",
    "ProblemRoute",
    "problem_from_exception",
    "problem_response",
]

logger = logging.getLogger(__name__)

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_TYPE_BASE = "https://irgov.dev/problems/"

_TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Content",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


class ProblemItem(BaseModel):
    pointer: str = Field(description="RFC 6901 JSON pointer into the request body, or the parameter")
    message: str


class ProblemDetails(BaseModel):
    """An RFC 9457 problem document."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(description="a URI naming the kind of problem")
    title: str
    status: int
    detail: str
    instance: str | None = None
    errors: list[ProblemItem] | None = None


class ProblemError(IrgovError):
    """An error that is answered with a problem document."""

    def __init__(self, status: int, kind: str, detail: str, *, errors: list[dict[str, str]] | None = None,
                 headers: Mapping[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.kind = kind
        self.detail = detail
        self.errors = errors
        self.headers = dict(headers or {})


def _text(value: object) -> str:
    """`value` as text that always encodes, token-shaped substrings redacted: lone surrogates and
    other unencodable code points are written as escapes (`\\ud800`), so no input can make a problem document fail to render."""
    try:
        text = value if isinstance(value, str) else str(value)
    except Exception:
        return "an unprintable value"
    return redact_tokens(text.encode("utf-8", "backslashreplace").decode("utf-8"))


def _header_safe(name: object, value: object) -> bool:
    if not isinstance(name, str) or not isinstance(value, str) or "\r" in value or "\n" in value:
        return False
    try:
        name.encode("latin-1")
        value.encode("latin-1")
    except UnicodeEncodeError:
        return False
    return True


def _render(problem: ProblemError, instance: str | None) -> Response:
    status = problem.status if isinstance(problem.status, int) and 400 <= problem.status <= 599 else 500
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE_BASE + _text(problem.kind),
        "title": _TITLES.get(status, "Error"),
        "status": status,
        "detail": _text(problem.detail),
    }
    if instance is not None:
        body["instance"] = _text(instance)
    if problem.errors is not None:
        body["errors"] = [{_text(k): _text(v) for k, v in dict(item).items()} for item in problem.errors]
    content = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    headers = {k: v for k, v in dict(problem.headers).items() if _header_safe(k, v)}
    return Response(content, status_code=status, media_type=PROBLEM_MEDIA_TYPE, headers=headers)


# The answer when even a sanitised problem cannot be built (a broken `errors` list, say).
_LAST_RESORT = json.dumps({"type": PROBLEM_TYPE_BASE + "internal-error", "title": _TITLES[500], "status": 500,
                           "detail": "the server failed to handle the request"}).encode("utf-8")


def problem_response(problem: ProblemError, instance: str | None = None) -> Response:
    """The problem document of `problem`. It never fails, whatever the problem holds."""
    try:
        return _render(problem, instance)
    except Exception:
        logger.exception("cannot render a problem document")
        return Response(_LAST_RESORT, status_code=500, media_type=PROBLEM_MEDIA_TYPE)


def _validation_problem(exc: RequestValidationError) -> ProblemError:
    items: list[dict[str, str]] = []
    for error in exc.errors():
        location = [p for p in error.get("loc", ()) if isinstance(p, str | int)]
        where = location[0] if location else "body"
        path = location[1:] if location else []
        pointer = json_pointer(path) if where == "body" else f"{where}:{'.'.join(map(str, path))}"
        items.append({"pointer": pointer or "/", "message": str(error.get("msg", "invalid value")).lower()})
    detail = "; ".join(f"{i['pointer']}: {i['message']}" for i in items) or "the request is not valid"
    return ProblemError(422, "invalid-request", detail, errors=items)


def problem_from_exception(exc: BaseException) -> ProblemError:
    """The problem an exception is answered with. Unexpected exceptions say nothing of their cause."""
    if isinstance(exc, ProblemError):
        return exc
    if isinstance(exc, RequestValidationError):
        return _validation_problem(exc)
    if isinstance(exc, HTTPException):
        return ProblemError(exc.status_code, "http-error", str(exc.detail).rstrip("."),
                            headers=exc.headers)
    if isinstance(exc, IRInputError):
        items = [{"pointer": p.pointer or "/", "message": p.message} for p in exc.problems]
        return ProblemError(422, "invalid-ir", str(exc), errors=items)
    if isinstance(exc, NotFoundError):
        return ProblemError(404, "not-found", str(exc))
    if isinstance(exc, SeparationOfDutiesError):
        return ProblemError(403, "separation-of-duties", str(exc))
    if isinstance(exc, NotClaimantError):
        return ProblemError(403, "not-claimant", str(exc))
    if isinstance(exc, NotEscalatedError):
        return ProblemError(409, "not-escalated", str(exc))
    if isinstance(exc, RateLimitedError):
        return ProblemError(429, "rate-limited", str(exc), headers={"Retry-After": str(math.ceil(exc.retry_after))})
    if isinstance(exc, IdempotencyConflictError):
        return ProblemError(409, "idempotency-conflict", str(exc))
    if isinstance(exc, ConflictError):
        return ProblemError(409, "conflict", str(exc))
    if isinstance(exc, ApprovalKeyError):
        logger.error("approval key problem: %s", exc)
        return ProblemError(503, "unavailable", "approvals are not configured on this server")
    if isinstance(exc, StoreTimeoutError):
        # Which store is slow, and for how long it was waited on; its address stays in the log.
        logger.error("store timeout: %s", exc)
        return ProblemError(503, "store-timeout", f"the {exc.store} ({exc.backend}) did not answer within "
                            f"{exc.seconds:g} s: retry later", headers={"Retry-After": "1"})
    if isinstance(exc, StoreError | EventError):
        logger.error("store unavailable: %s", exc)
        return ProblemError(503, "unavailable", "the approval store or the ledger does not answer")
    if isinstance(exc, ApprovalError | DigestError):
        return ProblemError(422, "invalid-request", str(exc))
    if isinstance(exc, IrgovError):
        return ProblemError(422, "invalid-request", str(exc))
    logger.exception("unexpected error while handling a request", exc_info=exc)
    return ProblemError(500, "internal-error", "the server failed to handle the request")


class ProblemRoute(APIRoute):
    """An `APIRoute` whose every error, including request validation, dependencies and
    `prepare`, is a problem document."""

    async def prepare(self, request: Request) -> Request:
        """Runs before the route reads its body or its dependencies; returns the request to handle."""
        return request

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        original = super().get_route_handler()

        async def handler(request: Request) -> Response:
            try:
                return await original(await self.prepare(request))
            except Exception as exc:
                return problem_response(problem_from_exception(exc), request.url.path)

        return handler


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` entries for the given error statuses."""
    return {
        status: {
            "model": ProblemDetails,
            "description": _TITLES.get(status, "Error"),
            "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/ProblemDetails"}}},
        }
        for status in statuses
    }
