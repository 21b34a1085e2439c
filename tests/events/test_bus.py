"""The bus and the outbox: durability, relay delivery, retries, order per tenant, dedupe, drops,
replay, retention, extra outbox sources."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from irgov_policy.errors import EventError, StoreError
from irgov_policy.events import EventBus, EventType, MemoryOutbox, MemorySink, RetryPolicy, outbox_from_url
from irgov_policy.events.envelope import Event
from irgov_policy.events.outbox_sqlite import SqliteOutbox, append_event_in_transaction, ensure_outbox_schema

from .helpers import FlakySink, RaisingSink, seed_event, wait_until

FAST = RetryPolicy(base_seconds=0.01, max_seconds=0.05)


@pytest.fixture
def outbox_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/outbox.db"


@pytest.fixture
def buses() -> Iterator[list[EventBus]]:
    made: list[EventBus] = []
    yield made
    for bus in made:
        bus.close(timeout=1)


def _bus(made: list[EventBus], sinks: list[object], **options: object) -> EventBus:
    options.setdefault("retry", FAST)
    options.setdefault("poll_interval", 0.05)
    bus = EventBus(sinks, **options)  # type: ignore[arg-type]
    made.append(bus)
    return bus


# -- no outbox: in-memory ------------------------------------------------------------------------

def test_memory_sink_receives_the_event_before_publish_returns() -> None:
    sink = MemorySink()
    bus = EventBus([sink])
    event = seed_event(EventType.APPROVAL_CREATED)
    bus.publish(event)
    assert sink.events == [event]
    assert bus.status().pending == 0 and not bus.status().durable


def test_no_sink_configured_still_works() -> None:
    bus = EventBus()
    for event_type in EventType:
        bus.publish(seed_event(event_type))
    assert bus.status().pending == 0 and bus.failures == 0 and bus.flush(1)


def test_a_raising_sink_is_retried_by_the_relay_and_never_raises_into_publish(buses: list[EventBus]) -> None:
    raising, memory = RaisingSink(), MemorySink()
    bus = _bus(buses, [raising, memory])
    event = seed_event(EventType.VALIDATED_REJECT)
    bus.publish(event)
    assert memory.events == [event]
    assert wait_until(lambda: raising.calls >= 3)
    status = {s.sink: s for s in bus.status().sinks}
    assert status["raising"].pending == 1 and status["raising"].failing == 1
    assert "sink is broken" in (status["raising"].last_error or "")
    assert status["memory"].pending == 0


def test_the_bounded_queue_drops_non_critical_events_and_counts_them(buses: list[EventBus]) -> None:
    down = FlakySink()
    bus = _bus(buses, [down], max_queue=3, autostart=False)
    for _ in range(5):
        bus.publish(seed_event(EventType.VALIDATED_PASS))
    critical = [seed_event(EventType.APPROVAL_CONSUMED) for _ in range(2)]
    for event in critical:
        bus.publish(event)
    assert bus.dropped == 2
    assert bus.status().pending == 5  # three kept plus the two critical ones, never dropped
    down.up = True
    assert bus.flush(5)
    assert set(down.ids()) >= {e.id for e in critical}


# -- the durable outbox --------------------------------------------------------------------------

def test_a_critical_event_is_committed_before_publish_returns(outbox_url: str, tmp_path: Path,
                                                             buses: list[EventBus]) -> None:
    bus = _bus(buses, [FlakySink()], outbox=outbox_url, autostart=False)
    event = seed_event(EventType.APPROVAL_CONSUMED)
    bus.publish(event)
    # Another connection (as another process would) sees it at once.
    with sqlite3.connect(tmp_path / "outbox.db") as conn:
        rows = conn.execute("SELECT event_id, critical, body FROM irgov_outbox").fetchall()
    assert rows == [(event.id, 1, event.to_json())]


def test_the_relay_delivers_every_event_to_every_sink_and_marks_each(outbox_url: str,
                                                                     buses: list[EventBus]) -> None:
    first, second = MemorySink("first"), MemorySink("second")
    bus = _bus(buses, [first, second], outbox=outbox_url)
    events = [seed_event(t) for t in EventType]
    for event in events:
        bus.publish(event)
    assert bus.flush(5)
    assert first.ids() == second.ids() == [e.id for e in events]
    assert [s.delivered for s in bus.status().sinks] == [9, 9]


def test_order_per_tenant_holds_while_a_sink_fails_and_other_tenants_flow(outbox_url: str,
                                                                           buses: list[EventBus]) -> None:
    class PickySink:
        """Refuses tenant `a`'s first event twice, then takes everything."""

        name = "picky"

        def __init__(self) -> None:
            self.refusals = 0
            self.events: list[Event] = []

        def deliver(self, event: Event) -> bool:
            if event.tenant_id == "a" and not any(e.tenant_id == "a" for e in self.events) and self.refusals < 2:
                self.refusals += 1
                return False
            self.events.append(event)
            return True

    sink = PickySink()
    bus = _bus(buses, [sink], outbox=outbox_url, autostart=False)
    published = [seed_event(EventType.VALIDATED_PASS, tenant=t) for t in "aabab"]
    for event in published:
        bus.publish(event)
    assert bus.flush(5)
    got = [e.id for e in sink.events]
    assert sorted(got) == sorted(e.id for e in published)
    for tenant in "ab":
        assert [e.id for e in sink.events if e.tenant_id == tenant] == \
            [e.id for e in published if e.tenant_id == tenant]
    assert got[0] == published[2].id  # tenant b went ahead while tenant a waited
    assert sink.refusals == 2


def test_undelivered_events_survive_a_new_bus_on_the_same_outbox(outbox_url: str, buses: list[EventBus]) -> None:
    first = _bus(buses, [FlakySink("sink")], outbox=outbox_url, autostart=False)
    events = [seed_event(EventType.VALIDATED_ESCALATE) for _ in range(3)]
    for event in events:
        first.publish(event)
    first.close()
    recovered = FlakySink("sink")
    recovered.up = True
    second = _bus(buses, [recovered], outbox=outbox_url)
    assert second.flush(5)
    assert recovered.ids() == [e.id for e in events]


def test_the_same_event_recorded_twice_is_delivered_once_per_sink(outbox_url: str, buses: list[EventBus]) -> None:
    sink = MemorySink()
    bus = _bus(buses, [sink], outbox=outbox_url)
    event = seed_event(EventType.APPROVAL_CONSUMED)
    bus.publish(event)
    bus.publish(event)
    assert bus.flush(5) and sink.ids() == [event.id]


def test_an_approval_database_outbox_is_drained_too(outbox_url: str, tmp_path: Path, buses: list[EventBus]) -> None:
    approvals = tmp_path / "approvals.db"
    conn = sqlite3.connect(approvals, isolation_level=None)
    ensure_outbox_schema(conn)
    consumed = seed_event(EventType.APPROVAL_CONSUMED)
    conn.execute("BEGIN")
    conn.execute("CREATE TABLE approvals (id TEXT, status TEXT)")
    conn.execute("INSERT INTO approvals VALUES ('appr_1', 'consumed')")
    append_event_in_transaction(conn, consumed)
    conn.execute("COMMIT")
    sink = MemorySink()
    bus = _bus(buses, [sink], outbox=outbox_url)
    bus.attach_outbox(f"sqlite:///{approvals}")
    bus.publish(consumed)  # the approval service publishes the same event on the bus as well
    assert bus.flush(5)
    assert sink.ids() == [consumed.id]
    later = seed_event(EventType.APPROVAL_CONSUMED)
    with conn:
        append_event_in_transaction(conn, later)
    assert bus.flush(5) and sink.ids() == [consumed.id, later.id]
    conn.close()


def test_flush_is_false_while_an_attached_outbox_cannot_be_read(outbox_url: str, tmp_path: Path,
                                                                buses: list[EventBus]) -> None:
    """Events in an unreadable source are pending nowhere: flush must not report them delivered."""
    approvals = tmp_path / "not-yet" / "approvals.db"
    sink = MemorySink()
    bus = _bus(buses, [sink], outbox=outbox_url)
    bus.attach_outbox(f"sqlite:///{approvals}")
    assert not bus.flush(0.3)
    approvals.parent.mkdir()
    conn = sqlite3.connect(approvals, isolation_level=None)
    ensure_outbox_schema(conn)
    consumed = seed_event(EventType.APPROVAL_CONSUMED)
    with conn:
        append_event_in_transaction(conn, consumed)
    conn.close()
    assert bus.flush(5) and sink.ids() == [consumed.id]


def test_attaching_the_outbox_file_itself_is_a_no_op(outbox_url: str, buses: list[EventBus]) -> None:
    bus = _bus(buses, [MemorySink()], outbox=outbox_url)
    bus.attach_outbox(outbox_url)
    assert bus.relay.import_sources() == 0


def test_replay_delivers_again_and_retention_purges_delivered_events(outbox_url: str,
                                                                    buses: list[EventBus]) -> None:
    sink = MemorySink()
    bus = _bus(buses, [sink], outbox=outbox_url)  # no retention: no housekeeping thread races the test
    old = seed_event(EventType.DAG_DIFF_OK)
    bus.publish(old)
    assert bus.flush(5)
    assert bus.replay(datetime.now(UTC) - timedelta(minutes=1)) == 1
    assert bus.flush(5) and sink.ids() == [old.id, old.id]
    assert bus.purge() == 0  # retention not set
    bus.relay.retention_seconds = 0
    assert bus.purge() == 1
    assert bus.outbox.recent(10) == []


def test_retention_keeps_events_a_sink_has_not_received(outbox_url: str, buses: list[EventBus]) -> None:
    down = FlakySink()
    bus = _bus(buses, [down, MemorySink()], outbox=outbox_url, autostart=False)
    bus.publish(seed_event(EventType.DAG_DIFF_FAILED))
    bus.flush(0.2)
    bus.relay.retention_seconds = 0
    assert bus.purge() == 0 and len(bus.outbox.recent(10)) == 1


def test_outbox_urls() -> None:
    assert isinstance(outbox_from_url("memory:"), MemoryOutbox)
    with pytest.raises(StoreError, match="outbox address `ftp://x` has unknown scheme `ftp`"):
        outbox_from_url("ftp://x")
    with pytest.raises(EventError, match="unsupported outbox address `redis://h:6379/0`"):
        outbox_from_url("redis://h:6379/0")
    with pytest.raises(EventError, match="cannot open the outbox"):
        SqliteOutbox("/proc/forbidden/outbox.db")


def test_publish_never_raises_even_when_the_outbox_is_gone(outbox_url: str, buses: list[EventBus]) -> None:
    bus = _bus(buses, [MemorySink()], outbox=outbox_url, autostart=False)
    bus.outbox.close()
    bus.publish(seed_event(EventType.VALIDATED_REJECT))
    assert bus.append_failures == 1


def test_publishing_from_many_threads_keeps_every_event(outbox_url: str, buses: list[EventBus]) -> None:
    sink = MemorySink()
    bus = _bus(buses, [sink], outbox=outbox_url)
    events = [seed_event(EventType.VALIDATED_PASS, tenant=f"t{i % 4}") for i in range(200)]
    threads = [threading.Thread(target=lambda chunk=events[i::4]: [bus.publish(e) for e in chunk]) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert bus.flush(10)
    assert sorted(sink.ids()) == sorted(e.id for e in events)


def test_duplicate_sink_names_are_refused() -> None:
    with pytest.raises(EventError, match="sink named `memory` is already configured"):
        EventBus([MemorySink(), MemorySink()])


def test_a_failed_batch_falls_back_to_one_by_one_and_keeps_order_per_tenant(outbox_url: str,
                                                                            buses: list[EventBus]) -> None:
    class BatchSink:
        """Takes runs of events at once; refuses tenant `bad` until `healed`."""

        name = "batch"

        def __init__(self) -> None:
            self.healed = False
            self.batches = 0
            self.events: list[Event] = []

        def _check(self, event: Event) -> None:
            if event.tenant_id == "bad" and not self.healed:
                raise ConnectionError("refused")

        def deliver_many(self, events: list[Event]) -> None:
            for event in events:
                self._check(event)
            self.batches += 1
            self.events.extend(events)

        def deliver(self, event: Event) -> None:
            self._check(event)
            self.events.append(event)

    sink = BatchSink()
    bus = _bus(buses, [sink], outbox=outbox_url, autostart=False)
    published = [seed_event(EventType.VALIDATED_PASS, tenant="bad" if i == 3 else f"t{i % 2}") for i in range(8)]
    published.append(seed_event(EventType.VALIDATED_PASS, tenant="bad"))
    for event in published:
        bus.publish(event)
    assert not bus.flush(0.3)
    good = [e.id for e in published if e.tenant_id != "bad"]
    assert [e.id for e in sink.events] == good
    sink.healed = True
    assert bus.flush(5)
    assert [e.id for e in sink.events if e.tenant_id == "bad"] == [e.id for e in published if e.tenant_id == "bad"]
    assert sink.batches >= 1
