"""Built-in sinks against the real thing: a file, a Redis server, an HTTP server, an async host
stream, and plugin observers."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from irgov_policy.errors import EventError
from irgov_policy.events import EventBus, EventType, MemorySink, RetryPolicy
from irgov_policy.events.config import sink_factories, sink_from_url
from irgov_policy.events.envelope import Event
from irgov_policy.events.sinks import HostEvent, HostEventStreamSink, JsonlSink, LogSink, RedisStreamSink
from irgov_policy.events.sinks.webhook import WebhookSink
from irgov_policy.hookspecs import hookimpl
from irgov_policy.plugins import get_plugin_manager, reset_plugin_manager

from .helpers import WebhookServer, seed_event, wait_until

FAST = RetryPolicy(base_seconds=0.01, max_seconds=0.05)


@pytest.fixture
def outbox_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/outbox.db"


def test_built_in_schemes_are_registered_through_the_hook() -> None:
    assert {"log", "jsonl", "redis", "rediss", "http", "https"} <= set(sink_factories())
    assert isinstance(sink_from_url("log:"), LogSink)
    assert isinstance(sink_from_url("jsonl:///tmp/x/events.jsonl"), JsonlSink)
    with pytest.raises(EventError, match="no sink registered for scheme `kafka`"):
        sink_from_url("kafka://broker/topic")
    with pytest.raises(EventError, match="`maxlen` is not an integer"):
        sink_from_url("redis://127.0.0.1:6379/0?stream=s&maxlen=lots")


def test_jsonl_appends_one_envelope_per_line(tmp_path: Path, outbox_url: str) -> None:
    path = tmp_path / "out" / "events.jsonl"
    with EventBus([sink_from_url(f"jsonl://{path}")], outbox=outbox_url, retry=FAST) as bus:
        events = [seed_event(t) for t in EventType]
        for event in events:
            bus.publish(event)
        assert bus.flush(5)
    lines = path.read_text().splitlines()
    assert [Event.from_json(line) for line in lines] == events


def test_log_sink_logs_ids_not_payloads(caplog: pytest.LogCaptureFixture) -> None:
    event = seed_event(EventType.APPROVAL_CREATED)
    with caplog.at_level(logging.INFO, logger="irgov_policy.events.log"):
        LogSink().deliver(event)
    record = caplog.records[-1]
    assert event.id in record.getMessage() and "admin_user" not in record.getMessage()
    assert record.irgov_event == {  # type: ignore[attr-defined]
        "event_id": event.id, "event_type": "ir.approval_created", "tenant_id": "tenant_123",
        "correlation_id": "req_123", "critical": False,
    }


def test_redis_stream_sink_adds_entries_with_the_event_id(redis_url: str, redis_client: Any,
                                                          redis_prefix: str, outbox_url: str) -> None:
    stream = f"{redis_prefix}events"
    sink = sink_from_url(f"{redis_url}?stream={stream}&maxlen=50")
    assert isinstance(sink, RedisStreamSink) and "stream=" in sink.name
    with EventBus([sink], outbox=outbox_url, retry=FAST) as bus:
        events = [seed_event(EventType.VALIDATED_PASS) for _ in range(120)]
        for event in events:
            bus.publish(event)
        assert bus.flush(10)
    entries = redis_client.xrange(stream)
    assert 50 <= len(entries) < 120  # MAXLEN ~ trims in whole nodes
    last = entries[-1][1]
    assert last[b"event_id"].decode() == events[-1].id
    assert Event.from_json(last[b"body"]) == events[-1]
    assert [e[1][b"event_id"].decode() for e in entries] == [e.id for e in events[-len(entries):]]


def test_webhook_posts_structured_cloudevents_to_a_real_server(outbox_url: str) -> None:
    server = WebhookServer().start()
    try:
        with EventBus([sink_from_url(server.url)], outbox=outbox_url, retry=FAST) as bus:
            event = seed_event(EventType.DAG_DIFF_FAILED)
            bus.publish(event)
            assert bus.flush(5)
        assert server.content_types == ["application/cloudevents+json"]
        body = server.bodies[0]
        assert body["id"] == event.id and body["specversion"] == "1.0" and body["tenantid"] == "tenant_123"
        assert body["data"] == dict(event.payload)
    finally:
        server.stop()


def test_webhook_non_2xx_is_a_failed_delivery_then_retried(outbox_url: str) -> None:
    server = WebhookServer().start()
    server.status = 503
    try:
        with EventBus([WebhookSink(server.url)], outbox=outbox_url, retry=FAST, poll_interval=0.05) as bus:
            event = seed_event(EventType.VALIDATED_REJECT)
            bus.publish(event)
            assert not bus.flush(0.3)
            # the failed attempt is recorded once the relay has made it (a loaded machine may lag)
            assert wait_until(lambda: "503" in (bus.status().sinks[0].last_error or ""))
            (backlog,) = bus.status().sinks
            assert backlog.pending == 1
            server.status = 200
            assert bus.flush(5)
        assert server.ids() == [event.id]
    finally:
        server.stop()


class HostStream:
    """Stands for the host's EventStream: async, bound to the loop it was created on."""

    def __init__(self, answers: list[Any]) -> None:
        self.answers = answers
        self.received: list[Any] = []
        self.loop = asyncio.get_running_loop()

    async def publish_event(self, event: Any) -> Any:
        assert asyncio.get_running_loop() is self.loop
        answer = self.answers.pop(0) if self.answers else True
        if isinstance(answer, Exception):
            raise answer
        if answer is not False:
            self.received.append(event)
        return answer


def test_host_event_stream_failures_are_retried_and_never_logged_as_delivered(
        outbox_url: str, caplog: pytest.LogCaptureFixture) -> None:
    async def scenario() -> tuple[HostStream, Event, EventBus]:
        stream = HostStream([RuntimeError("stream down"), False, None])
        bus = EventBus([HostEventStreamSink(stream)], outbox=outbox_url, retry=FAST, poll_interval=0.05)
        await bus.start_async()
        event = seed_event(EventType.APPROVAL_CONSUMED, correlation="req_42")
        bus.publish(event)
        assert await bus.aflush(5)
        await bus.stop_async()
        return stream, event, bus

    with caplog.at_level(logging.DEBUG, logger="irgov_policy.events"):
        stream, event, bus = asyncio.run(scenario())
    bus.close()
    (got,) = stream.received
    assert isinstance(got, HostEvent)
    assert (got.id, got.type, got.source, got.target) == (event.id, event.type, "ir_governance", None)
    assert got.tenant_id == "tenant_123" and got.correlation_id == "req_42"
    assert got.meta["tenant_id"] == "tenant_123" and got.payload == dict(event.payload)
    assert got.timestamp == event.timestamp
    failures = [r for r in caplog.records if "failed to deliver" in r.getMessage()]
    delivered = [r for r in caplog.records if "delivered to" in r.getMessage()]
    assert len(failures) == 2 and len(delivered) == 1
    assert "attempt 1" in failures[0].getMessage() and "attempt 2" in failures[1].getMessage()


def test_host_event_stream_with_the_host_event_factory(outbox_url: str) -> None:
    built: list[dict[str, Any]] = []

    def factory(**fields: Any) -> dict[str, Any]:
        built.append(fields)
        return fields

    async def scenario() -> None:
        stream = HostStream([])
        bus = EventBus([HostEventStreamSink(stream, event_factory=factory)], outbox=outbox_url)
        await bus.start_async()
        bus.publish(seed_event(EventType.APPROVAL_CREATED))
        assert await bus.aflush(5)
        await bus.stop_async()
        bus.close()

    asyncio.run(scenario())
    assert set(built[0]) == {"id", "type", "source", "target", "payload", "timestamp", "meta", "tenant_id",
                             "correlation_id"}


def test_an_object_without_publish_event_is_refused() -> None:
    with pytest.raises(EventError, match="no `publish_event` method"):
        HostEventStreamSink(object())


class _Observer:
    def __init__(self) -> None:
        self.seen: list[str] = []

    @hookimpl
    def irgov_on_event(self, event: Event) -> None:
        self.seen.append(event.id)


class _BrokenObserver:
    @hookimpl
    def irgov_on_event(self, event: Event) -> None:
        raise RuntimeError("observer bug")


@pytest.fixture
def observers() -> Iterator[_Observer]:
    reset_plugin_manager()
    manager = get_plugin_manager()
    good = _Observer()
    manager.register(_BrokenObserver(), name="broken-observer")
    manager.register(good, name="good-observer")
    yield good
    reset_plugin_manager()


def test_plugin_observers_see_every_event_and_a_raising_one_changes_nothing(observers: _Observer) -> None:
    memory = MemorySink()
    with EventBus([memory], retry=FAST) as bus:
        events = [seed_event(t) for t in EventType]
        for event in events:
            bus.publish(event)
        assert memory.ids() == [e.id for e in events]
        assert bus.flush(5)
    assert observers.seen == [e.id for e in events]
