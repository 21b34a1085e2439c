"""Plugins observing events through `irgov_on_event(event)`, delivered by the relay like a sink.

Each implementation is called on its own (traced like every hook call under `IRGOV_TRACE_PLUGINS`):
one that raises is logged and does not keep the others from seeing the event, and is not retried
(an observer must not raise)."""

from __future__ import annotations

import logging
from typing import Any

from ..envelope import Event

__all__ = ["ObserverSink", "observer_sink"]

logger = logging.getLogger(__name__)


class ObserverSink:
    name = "observers"

    def __init__(self, manager: Any) -> None:
        self.manager = manager

    def deliver(self, event: Event) -> None:
        for impl in self.manager.hook.irgov_on_event.get_hookimpls():
            try:
                self.manager.call_impl(impl, "irgov_on_event", {"event": event})
            except Exception as exc:
                logger.warning("plugin %s failed observing event %s (%s): %s", impl.plugin_name, event.id,
                               event.type, type(exc).__name__)


def observer_sink() -> ObserverSink | None:
    """An observer sink when some plugin implements `irgov_on_event`, else None."""
    try:
        from ...plugins import get_plugin_manager

        manager = get_plugin_manager()
    except Exception as exc:  # a broken plugin must not keep events from being published
        logger.warning("event observers disabled: %s", exc)
        return None
    if not manager.hook.irgov_on_event.get_hookimpls():
        return None
    return ObserverSink(manager)
