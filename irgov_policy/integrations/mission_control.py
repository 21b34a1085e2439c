"""Mission control: mount the governance API in the host's FastAPI application.

`install(app)` includes the router under `/api/ir`, delivers every governance event to the
host's EventStream (`app.state.event_stream`, an object with an async `publish_event`), and
starts the outbox relay and the approval sweeper with the application's lifespan (stopping
them when it ends). The host's own lifespan keeps running around ours.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from ..events.sinks.host_stream import HostEventStreamSink
from ..http.auth import Authenticator
from ..http.router import create_router
from ..kernel import Governance

__all__ = ["install"]

logger = logging.getLogger(__name__)


def install(app: FastAPI, governance: Governance | None = None, prefix: str = "/api/ir", *,
            auth: Authenticator | None = None, event_stream: Any = None,
            event_factory: Callable[..., Any] | None = None) -> Governance:
    """Mount governance into `app` and return the kernel (also on `app.state.governance`).

    Without `governance`, one is built from the embedded defaults and `IRGOV_*` variables and
    closed with the app. `auth` replaces the API-key dependency with the host's own; the event
    stream is `event_stream`, else `app.state.event_stream` when the app starts; `event_factory`
    builds the host's own event objects from the envelope's fields (`id`, `type`, `source`,
    `target`, `payload`, `timestamp`, `meta`, `tenant_id`, `correlation_id`)."""
    gov = governance if governance is not None else Governance.from_config()
    owned = governance is None
    app.state.governance = gov
    app.include_router(create_router(gov, auth=auth), prefix=prefix)
    host_lifespan = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(host_app: Any) -> AsyncIterator[Any]:
        async with host_lifespan(host_app) as state:
            stream = event_stream if event_stream is not None else getattr(app.state, "event_stream", None)
            if stream is not None and not any(s.name == "event_stream" for s in gov.bus.sinks
                                              if isinstance(s, HostEventStreamSink)):
                gov.add_sink(HostEventStreamSink(stream, event_factory=event_factory))
                logger.info("governance events go to the host event stream")
            await gov.astart()
            try:
                yield state
            finally:
                await gov.aflush(2.0)
                if owned:
                    await gov.aclose()
                else:
                    await gov.astop()

    app.router.lifespan_context = lifespan
    return gov
