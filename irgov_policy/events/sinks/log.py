"""`log:` - one structured log record per event, without the payload (it may carry secrets)."""

from __future__ import annotations

import logging

from ..envelope import Event

__all__ = ["LogSink"]

logger = logging.getLogger("irgov_policy.events.log")


class LogSink:
    inline = False

    def __init__(self, url: str = "log:", *, level: int = logging.INFO) -> None:
        self.name = url
        self.level = level

    def deliver(self, event: Event) -> None:
        fields = {
            "event_id": event.id,
            "event_type": event.type,
            "tenant_id": event.tenant_id,
            "correlation_id": event.correlation_id,
            "critical": event.critical,
        }
        logger.log(self.level, "governance event %s %s tenant=%s correlation=%s", event.type, event.id,
                   event.tenant_id, event.correlation_id, extra={"irgov_event": fields})
