"""Governance events: types, the Charter v1.0 envelope, payload schemas and the bus."""

from .bus import EventBus, EventSink, MemorySink
from .envelope import Event, new_event, uuid7
from .types import CRITICAL_EVENT_TYPES, EventType, is_critical

__all__ = [
    "CRITICAL_EVENT_TYPES",
    "Event",
    "EventBus",
    "EventSink",
    "EventType",
    "MemorySink",
    "is_critical",
    "new_event",
    "uuid7",
]
