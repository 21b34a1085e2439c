"""Who may send a body, and how much: authentication and the body limit, before the body is read.

FastAPI reads and parses a declared body before it runs any dependency, so a dependency cannot
authenticate first. The router's routes therefore use `guarded_route_class(...)`: its handler
authenticates the caller (every route but the public ones), then reads the body while streaming,
refusing it with 413 as soon as it exceeds the limit, whether its length was declared or it
arrives chunked, and reads it with the strict JSON reader (400 for duplicate keys, huge integers,
lone surrogates...) so no route sees a body the strict reader refuses. The route class travels with the routes, so the guard holds when a host mounts
the router in its own application, with or without a prefix.
"""

from __future__ import annotations

import inspect
from collections.abc import Collection
from typing import Any

from fastapi import Request
from fastapi.routing import APIRoute
from starlette.types import Message

from ..errors import IRInputError
from ..model import InputLimits
from ..strict_json import loads_strict
from .auth import Authenticator, Principal
from .problems import ProblemError, ProblemRoute

__all__ = ["JSON_SCOPE_KEY", "PRINCIPAL_SCOPE_KEY", "authenticated_principal", "guarded_route_class",
           "invalid_json", "read_bounded_body", "strict_body"]

PRINCIPAL_SCOPE_KEY = "irgov.principal"
JSON_SCOPE_KEY = "irgov.json"


def _too_large(max_bytes: int, declared: str | None = None) -> ProblemError:
    size = f"the body of {declared} bytes" if declared is not None else "the body"
    return ProblemError(413, "too-large", f"{size} exceeds the limit of {max_bytes} bytes")


async def read_bounded_body(request: Request, max_bytes: int) -> bytes:
    """The body, read while streaming and refused as soon as it exceeds `max_bytes`."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise ProblemError(400, "invalid-request", "the content-length header is not a number")
        if int(declared) > max_bytes:
            raise _too_large(max_bytes, declared)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise _too_large(max_bytes)
        chunks.append(chunk)
    return b"".join(chunks)


def invalid_json(exc: IRInputError) -> ProblemError:
    items = [{"pointer": p.pointer or "/", "message": p.message} for p in exc.problems]
    return ProblemError(400, "invalid-json", f"the body is not strict json: {exc}", errors=items)


def strict_body(request: Request, body: bytes, limits: InputLimits) -> Any:
    """The body as strict JSON, parsed once per request (the guard parses it first)."""
    if JSON_SCOPE_KEY not in request.scope:
        try:
            request.scope[JSON_SCOPE_KEY] = loads_strict(body, max_bytes=limits.max_bytes,
                                                         max_depth=limits.max_depth)
        except IRInputError as exc:
            raise invalid_json(exc) from None
    return request.scope[JSON_SCOPE_KEY]


def _replaying(request: Request, body: bytes) -> Request:
    """A request over the same scope whose body is `body`, already read."""
    delivered = False

    async def receive() -> Message:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await request.receive()

    return Request(request.scope, receive)


async def _authenticate(authenticate: Authenticator, request: Request) -> Principal:
    found = authenticate(request)
    principal = await found if inspect.isawaitable(found) else found
    if not isinstance(principal, Principal):
        raise ProblemError(401, "unauthorized", "the request is not authenticated")
    return principal


def authenticated_principal(request: Request) -> Principal:
    """The principal the guard authenticated for this request."""
    principal = request.scope.get(PRINCIPAL_SCOPE_KEY)
    if not isinstance(principal, Principal):
        raise ProblemError(401, "unauthorized", "the request is not authenticated")
    return principal


def guarded_route_class(authenticate: Authenticator, limits: InputLimits,
                        public: Collection[str] = ()) -> type[APIRoute]:
    """A route class that authenticates (except for routes named in `public`) and bounds the
    body before the route reads it; every refusal is a problem document."""

    class GuardedRoute(ProblemRoute):
        async def prepare(self, request: Request) -> Request:
            if self.name not in public:
                request.scope[PRINCIPAL_SCOPE_KEY] = await _authenticate(authenticate, request)
            body = await read_bounded_body(request, limits.max_bytes)
            if body:
                strict_body(request, body, limits)
            return _replaying(request, body)

    return GuardedRoute

