"""The event bus the CLI publishes through.

Commands open it as a context manager so that events are delivered to the configured sinks
before the process exits."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from ..events.bus import EventBus


@contextmanager
def cli_event_bus() -> Iterator[EventBus]:
    bus = EventBus()
    yield bus
