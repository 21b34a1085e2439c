"""The host's EventStream: any object with an async `publish_event(event)`.

The host's event object carries `id`, `type`, `source`, `target`, `payload`, `timestamp`, `meta`,
and also top-level `tenant_id` and `correlation_id` (the original module put the tenant only in
`meta`). `event_factory` builds the host's own class from those keyword arguments; by default a
`HostEvent`. `type` is handed over as an `EventType` member (or, for a type outside the
contract, a string with `.value`), so a host stream that reads `event.type.value`, as the
contract's own code does, works for events fresh from the bus and read back from the outbox. Raising or returning False is a failed delivery: the relay retries it and never logs
it as delivered.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ..envelope import Event
from ..types import EventType

__all__ = ["EventTypeName", "HostEvent", "HostEventStreamSink", "host_event_type"]


class EventTypeName(str):
    """An event type the contract does not list (a plugin's or an extension's), with the
    `.value` a host reads from its own `EventType` members."""

    @property
    def value(self) -> str:
        return str(self)


def host_event_type(name: str) -> EventType | EventTypeName:
    """The type as a host's `EventType` member would be: `event.type.value` is the type name.
    Events read back from the outbox carry their type as plain text, so it is rebuilt here."""
    try:
        return EventType(name)
    except ValueError:
        return EventTypeName(name)


@dataclass(frozen=True)
class HostEvent:
    id: str
    type: EventType | EventTypeName
    source: str
    target: str | None
    payload: Mapping[str, Any]
    timestamp: datetime
    meta: Mapping[str, Any]
    tenant_id: str | None = None
    correlation_id: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


class HostEventStreamSink:
    def __init__(self, stream: Any, *, name: str = "event_stream",
                 event_factory: Callable[..., Any] | None = None) -> None:
        if not callable(getattr(stream, "publish_event", None)):
            from ...errors import EventError

            raise EventError("the host event stream has no `publish_event` method")
        self.stream = stream
        self.name = name
        self.event_factory: Callable[..., Any] = event_factory or HostEvent

    def host_event(self, event: Event) -> Any:
        return self.event_factory(
            id=event.id,
            type=host_event_type(str(event.type)),
            source=event.source,
            target=event.target,
            payload=dict(event.payload),
            timestamp=event.timestamp,
            meta=dict(event.meta),
            tenant_id=event.tenant_id,
            correlation_id=event.correlation_id,
        )

    async def deliver(self, event: Event) -> bool:
        result = await self.stream.publish_event(self.host_event(event))
        return result is not False
