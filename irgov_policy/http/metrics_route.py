"""`GET /metrics`: the Prometheus text format, for the admin role, or for anyone when the
configuration says `metrics_public: true` (a scraper on a private network without a key)."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from ..kernel import Governance
from ..observability.scrape import SinkGauge, render
from .auth import Role
from .guard import authenticated_principal
from .problems import ProblemError, problem_responses

__all__ = ["METRICS_ROUTE", "add_metrics_route"]

logger = logging.getLogger(__name__)

# The endpoint's name, which the guard's list of public routes names when metrics are public.
METRICS_ROUTE = "metrics"


def _age(created_at: str | None, now: datetime) -> float:
    if not created_at:
        return 0.0
    try:
        moment = datetime.fromisoformat(created_at.replace("Z", "+00:00"))
    except ValueError:
        return 0.0
    return max((now - moment).total_seconds(), 0.0)


def _sink_gauges(governance: Governance) -> list[SinkGauge]:
    try:
        status = governance.bus.status()
    except Exception as exc:  # the recorded metrics are still worth answering with
        logger.warning("the outbox backlog could not be read for /metrics: %s", exc)
        return []
    now = datetime.now(UTC)
    return [SinkGauge(s.sink, s.pending, _age(s.oldest_created_at, now), s.failing) for s in status.sinks]


def add_metrics_route(router: APIRouter, governance: Governance) -> None:
    """Add `GET /metrics`. The counters are every tenant's, so only an admin of every tenant
    (`*`) reads them, unless the configuration makes them public."""
    public = governance.config.metrics_public

    async def scrape(request: Request) -> Response:
        if not public:
            principal = authenticated_principal(request)
            if principal.role is not Role.ADMIN:
                raise ProblemError(403, "forbidden-role",
                                   f"role `{principal.role.value}` may not do this: it needs `admin`")
            if principal.tenants is not None:
                raise ProblemError(403, "forbidden-tenant", "the metrics cover every tenant: they need an admin "
                                   "of every tenant, or `metrics_public: true`")
        sinks = await asyncio.to_thread(_sink_gauges, governance)
        try:
            body, content_type = render(sinks)
        except RuntimeError as exc:
            raise ProblemError(501, "metrics-unavailable", str(exc)) from None
        return Response(body, media_type=content_type)

    responses: dict[int | str, dict[str, Any]] = {
        200: {"content": {"text/plain": {}}, "description": "the metrics"}, **problem_responses(401, 403, 501)}
    router.get("/metrics", summary="Prometheus metrics (text format) of every worker", response_class=Response,
               name=METRICS_ROUTE, responses=responses)(scrape)
