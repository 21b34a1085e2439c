"""Governance events: types, the Charter v1.0 envelope, payload schemas, the bus, the durable
outbox and its relay, sinks and the CloudEvents mapping."""

from .bus import BusStatus, EventBatch, EventBus, EventSink, MemorySink
from .cloudevent import from_cloudevent, to_cloudevent
from .envelope import Event, format_timestamp, new_event, uuid7
from .outbox import DEFAULT_OUTBOX_URL, MemoryOutbox, Outbox, outbox_from_url
from .relay import RetryPolicy
from .types import CRITICAL_EVENT_TYPES, EXTENSION_EVENT_TYPES, EventType, ExtensionEventType, is_critical

__all__ = [
    "CRITICAL_EVENT_TYPES",
    "DEFAULT_OUTBOX_URL",
    "EXTENSION_EVENT_TYPES",
    "BusStatus",
    "Event",
    "EventBatch",
    "EventBus",
    "EventSink",
    "EventType",
    "ExtensionEventType",
    "MemoryOutbox",
    "MemorySink",
    "Outbox",
    "RetryPolicy",
    "format_timestamp",
    "from_cloudevent",
    "is_critical",
    "new_event",
    "outbox_from_url",
    "to_cloudevent",
    "uuid7",
]
