"""Relays sharing one outbox through leases: each event reaches a sink once, a tenant's events in
outbox order, a dead relay's tenants taken over once its lease expires, work shared fairly.
The same tests run on the SQLite file and on the real PostgreSQL server."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from irgov_policy.events import EventBus, EventType, RetryPolicy, outbox_from_url
from irgov_policy.events.envelope import Event
from irgov_policy.events.outbox import Outbox

from .helpers import seed_event, wait_until

OUTBOXES = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
SINK = "shared"


@pytest.fixture(params=OUTBOXES)
def open_outbox(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[], Outbox]]:
    """Opens another outbox object on one store, as a separate relay process would."""
    url = (f"sqlite:///{tmp_path}/outbox.db" if request.param == "sqlite"
           else request.getfixturevalue("postgres_schema_url"))
    opened: list[Outbox] = []

    def open_one() -> Outbox:
        outbox = outbox_from_url(url)
        opened.append(outbox)
        return outbox

    yield open_one
    for outbox in opened:
        outbox.close()


class OrderedSink:
    """One sink object shared by several buses: its list is the order deliveries happened in."""

    name = SINK

    def __init__(self) -> None:
        self.events: list[Event] = []
        self._lock = threading.Lock()

    def deliver(self, event: Event) -> None:
        time.sleep(0.0005)  # a sink that takes a moment, so the relays overlap
        with self._lock:
            self.events.append(event)


def _events(count: int, tenants: int) -> list[Event]:
    return [seed_event(EventType.VALIDATED_PASS, tenant=f"tenant_{i % tenants}") for i in range(count)]


def test_relays_on_one_outbox_deliver_each_event_once_in_tenant_order(open_outbox: Callable[[], Outbox]) -> None:
    writer = open_outbox()
    published = _events(600, tenants=7)
    for event in published:
        writer.append(event)
    sink = OrderedSink()
    buses = [EventBus([sink], outbox=open_outbox(), poll_interval=0.02, observers=False) for _ in range(3)]
    try:
        for bus in buses:
            bus.start()
        assert wait_until(lambda: len(sink.events) >= len(published), timeout=60)
        assert all(bus.flush(10) for bus in buses)
    finally:
        for bus in buses:
            bus.close(timeout=2)
    ids = [e.id for e in sink.events]
    assert len(ids) == len(set(ids)) == len(published)  # once each, nothing missing
    position = {e.id: i for i, e in enumerate(published)}
    for tenant in {e.tenant_id for e in published}:
        order = [position[e.id] for e in sink.events if e.tenant_id == tenant]
        assert order == sorted(order), f"{tenant} out of order"


def test_a_dead_relays_tenants_wait_for_its_lease_then_go_to_another(open_outbox: Callable[[], Outbox]) -> None:
    outbox = open_outbox()
    for event in _events(20, tenants=2):
        outbox.append(event)
    dead = outbox.claim(SINK, "dead-relay", 0, 500, 1.5)  # claims everything, then never comes back
    assert dead.tenants == {"tenant_0", "tenant_1"} and len(dead.records) == 20
    other = open_outbox()
    assert other.claim(SINK, "live-relay", 0, 500, 1.5).records == []  # leased elsewhere
    assert wait_until(lambda: bool(other.claim(SINK, "live-relay", 0, 500, 1.5).records), timeout=10)
    taken = other.claim(SINK, "live-relay", 0, 500, 1.5)
    assert {r.event_id for r in taken.records} == {r.event_id for r in dead.records}
    # The dead relay, were it only slow, learns at its next renewal that it lost both tenants.
    assert outbox.renew(SINK, "dead-relay", [], 1.5) == frozenset()


def test_a_tenant_is_never_leased_twice_and_release_hands_over_the_marks(
        open_outbox: Callable[[], Outbox]) -> None:
    outbox, other = open_outbox(), open_outbox()
    events = _events(10, tenants=1)
    for event in events:
        outbox.append(event)
    first = outbox.claim(SINK, "a", 0, 500, 30)
    assert len(first.records) == 10 and other.claim(SINK, "b", 0, 500, 30).records == []
    outbox.release(SINK, "a", [r.event_id for r in first.records[:4]])
    second = other.claim(SINK, "b", 0, 500, 30)
    assert [r.event_id for r in second.records] == [e.id for e in events[4:]]
    assert second.floor == first.records[3].seq  # every event up to the fourth is delivered
    other.release(SINK, "b", [r.event_id for r in second.records])
    assert outbox.claim(SINK, "a", second.floor, 500, 30).records == []
    assert outbox.backlog([SINK])[0].pending == 0


def test_each_relay_takes_its_share_of_the_tenants(open_outbox: Callable[[], Outbox]) -> None:
    outbox = open_outbox()
    for event in _events(90, tenants=9):
        outbox.append(event)
    relays = [open_outbox() for _ in range(3)]
    for index, relay in enumerate(relays):  # each relay has claimed once: three relays are known
        relay.claim(SINK, f"r{index}", 0, 500, 30)
        relay.release(SINK, f"r{index}", [])
    claims: list[Any] = [relay.claim(SINK, f"r{index}", 0, 500, 30) for index, relay in enumerate(relays)]
    sizes = [len(c.tenants) for c in claims]
    assert sizes == [3, 3, 3]
    assert set().union(*(c.tenants for c in claims)) == {f"tenant_{i}" for i in range(9)}


def test_a_failing_tenant_is_held_back_while_others_flow_with_two_relays(
        open_outbox: Callable[[], Outbox]) -> None:
    class PickySink(OrderedSink):
        refuse = True

        def deliver(self, event: Event) -> None:
            if event.tenant_id == "tenant_0" and self.refuse:
                raise ConnectionError("down for tenant_0")
            super().deliver(event)

    writer = open_outbox()
    published = _events(40, tenants=4)
    for event in published:
        writer.append(event)
    sink = PickySink()
    fast = RetryPolicy(base_seconds=0.02, max_seconds=0.1)
    buses = [EventBus([sink], outbox=open_outbox(), poll_interval=0.02, retry=fast, observers=False)
             for _ in range(2)]
    try:
        for bus in buses:
            bus.start()
        assert wait_until(lambda: len(sink.events) == 30, timeout=30)
        assert {e.tenant_id for e in sink.events} == {"tenant_1", "tenant_2", "tenant_3"}
        sink.refuse = False
        assert wait_until(lambda: len(sink.events) == 40, timeout=30)
    finally:
        for bus in buses:
            bus.close(timeout=2)
    assert [e.id for e in sink.events if e.tenant_id == "tenant_0"] == \
        [e.id for e in published if e.tenant_id == "tenant_0"]


def test_a_relay_killed_on_this_host_frees_its_leases_at_once(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    from irgov_policy.events.relay_owner import new_owner, owner_is_dead

    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    host, _, namespace, tag = new_owner().split(":")
    owner = f"{host}:{child.pid}:{namespace}:{tag}"
    outbox = outbox_from_url(f"sqlite:///{tmp_path}/outbox.db")
    try:
        for event in _events(6, tenants=2):
            outbox.append(event)
        assert len(outbox.claim(SINK, owner, 0, 500, 300).records) == 6
        assert not owner_is_dead(owner) and outbox.claim(SINK, "live", 0, 500, 300).records == []
        child.kill()
        assert wait_until(lambda: owner_is_dead(owner), timeout=10)  # a zombie until reaped counts as dead
        child.wait()
        assert owner_is_dead(owner)
        assert len(outbox.claim(SINK, "live", 0, 500, 300).records) == 6  # no wait for the 300 s lease
    finally:
        child.kill()
        child.wait()
        outbox.close()
    assert not owner_is_dead(new_owner())  # this process
    assert not owner_is_dead(f"elsewhere:{os.getpid() + 1}:{namespace}:{tag}")  # another host: expiry only


@pytest.mark.postgres
def test_the_postgresql_outbox_backs_the_bus_status_replay_tail_and_purge(postgres_schema_url: str) -> None:
    from datetime import UTC, datetime, timedelta

    from irgov_policy.approvals.store_postgres import PostgresApprovalStore
    from irgov_policy.events import MemorySink

    store = PostgresApprovalStore(postgres_schema_url)  # its outbox table is the bus's outbox
    sink = MemorySink("memory")
    bus = EventBus([sink], outbox=postgres_schema_url, poll_interval=0.02, observers=False)
    try:
        bus.attach_outbox(store.outbox_url or "")
        assert bus.relay._sources == []  # nothing to import: the same table
        published = _events(12, tenants=3)
        for event in published:
            bus.publish(event)
        assert bus.flush(20) and sorted(sink.ids()) == sorted(e.id for e in published)
        status = bus.status()
        assert status.durable and status.sinks[0].delivered == 12 and status.pending == 0
        assert [r.event_id for r in bus.outbox.recent(5)] == [e.id for e in published[-5:]]
        assert [r.event_id for r in bus.outbox.recent(50, types=["ir.validated_reject"])] == []
        assert bus.replay(datetime.now(UTC) - timedelta(hours=1)) == 12
        assert bus.flush(20) and len(sink.ids()) == 24
        assert bus.outbox.purge(["memory"], datetime.now(UTC) + timedelta(seconds=1)) == 12
        assert bus.status().sinks[0].delivered == 0
    finally:
        bus.close()
        store.close()


@pytest.mark.postgres
def test_the_postgresql_relay_tables_are_a_migrated_component(postgres_schema_url: str) -> None:
    import psycopg
    from click.testing import CliRunner

    from irgov_policy.approvals.store_postgres import PostgresApprovalStore
    from irgov_policy.cli import main
    from irgov_policy.errors import EventError

    base, schema = postgres_schema_url.split("?schema=")

    def versions() -> dict[str, int]:
        with psycopg.connect(base, autocommit=True) as conn:
            return dict(conn.execute(f'SELECT component, version FROM "{schema}".irgov_schema_version'))

    def set_relay(version: int) -> None:
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f"UPDATE \"{schema}\".irgov_schema_version SET version = {version} WHERE component = 'relay'")

    PostgresApprovalStore(postgres_schema_url).close()
    assert "relay" not in versions()
    outbox_from_url(postgres_schema_url).close()  # a store's schema gets the relay's tables at once
    assert versions()["relay"] == 2 and versions()["outbox"] == 1
    PostgresApprovalStore(postgres_schema_url).close()  # and the store still opens it
    set_relay(1)
    with pytest.raises(EventError, match=r"older schema \(relay 1 -> 2\): run `irgov db upgrade`"):
        outbox_from_url(postgres_schema_url)
    cli = CliRunner()
    status = cli.invoke(main, ["db", "status", "--store", "memory://", "--outbox", postgres_schema_url])
    assert status.exit_code == 2 and "relay      version 1, this version writes 2: upgrade needed" in status.output
    upgrade = cli.invoke(main, ["db", "upgrade", "--store", "memory://", "--outbox", postgres_schema_url])
    assert upgrade.exit_code == 0 and "relay -> version 2" in upgrade.output
    outbox_from_url(postgres_schema_url).close()
    set_relay(5)
    with pytest.raises(EventError, match="relay schema version 5: this version knows up to 2"):
        outbox_from_url(postgres_schema_url)
