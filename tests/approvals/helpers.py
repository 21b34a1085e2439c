"""Helpers shared by the approvals tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from irgov_policy.approvals import ApprovalService, KeyRing, open_store
from irgov_policy.events import EventBus, MemorySink
from irgov_policy.events.payloads import payload_problems

H1 = "sha256:" + "1" * 64
H2 = "sha256:" + "2" * 64
START = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)


class Clock:
    """An injectable clock that only moves when told to."""

    def __init__(self, start: datetime = START) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def make_service(url: str, *, clock: Clock | None = None, key: KeyRing | None = None,
                 **kwargs: Any) -> tuple[ApprovalService, MemorySink, EventBus]:
    sink = MemorySink()
    bus = EventBus([sink], observers=False)
    service = ApprovalService(open_store(url), key or KeyRing.generate(), bus=bus, clock=clock, **kwargs)
    return service, sink, bus


def assert_events_valid(sink: MemorySink) -> None:
    for event in sink.events:
        assert payload_problems(event.type, event.payload) == [], (event.type, event.payload)
