"""The event bus: fan-out of events to sinks, never raising into the caller.

A failing sink is logged (event id and type only: payloads may carry sensitive values) and the
business decision that published the event is unaffected.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from typing import Protocol, runtime_checkable

from .envelope import Event

__all__ = ["EventBus", "EventSink", "MemorySink"]

logger = logging.getLogger(__name__)


@runtime_checkable
class EventSink(Protocol):
    """Receives events. `deliver` raises (or returns False) when delivery failed."""

    name: str

    def deliver(self, event: Event) -> bool | None: ...


class MemorySink:
    """Keeps every delivered event in a list; for tests and in-process observers."""

    def __init__(self, name: str = "memory") -> None:
        self.name = name
        self.events: list[Event] = []
        self._lock = threading.Lock()

    def deliver(self, event: Event) -> None:
        with self._lock:
            self.events.append(event)

    def types(self) -> list[str]:
        with self._lock:
            return [e.type for e in self.events]

    def of_type(self, event_type: str) -> list[Event]:
        with self._lock:
            return [e for e in self.events if e.type == event_type]

    def clear(self) -> None:
        with self._lock:
            self.events.clear()


class EventBus:
    """Publishes events to every sink. `publish` never raises."""

    def __init__(self, sinks: Iterable[EventSink] = ()) -> None:
        self._sinks: list[EventSink] = list(sinks)
        self.failures = 0

    @property
    def sinks(self) -> list[EventSink]:
        return list(self._sinks)

    def add_sink(self, sink: EventSink) -> None:
        self._sinks.append(sink)

    def publish(self, event: Event) -> None:
        for sink in self._sinks:
            try:
                delivered = sink.deliver(event)
            except Exception as exc:  # a sink must never break a decision
                self.failures += 1
                logger.warning(
                    "event sink %s failed to deliver event %s (%s): %s",
                    getattr(sink, "name", type(sink).__name__), event.id, event.type, type(exc).__name__,
                )
                continue
            if delivered is False:
                self.failures += 1
                logger.warning(
                    "event sink %s refused event %s (%s)",
                    getattr(sink, "name", type(sink).__name__), event.id, event.type,
                )
