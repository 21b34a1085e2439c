"""Event publishing cost on the caller's path, and relay throughput.

    python benchmarks/bench_events.py [--events 2000] [--redis redis://127.0.0.1:6379/15]

Caller's path (`EventBus.publish`, per event), against baselines measured in the same run:
  - a bare `list.append` of the event (what an in-process bus costs at the very least);
  - a plain `sqlite3` INSERT + COMMIT of the event JSON (what any durable outbox costs at least).
Relay throughput: events per second delivered from the SQLite outbox to a JSONL file and to a
Redis stream (skipped when Redis does not answer).
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from irgov_policy.events import EventBus, EventType, MemorySink, new_event
from irgov_policy.events.envelope import Event
from irgov_policy.events.sinks import JsonlSink, RedisStreamSink

PAYLOAD = {"tenant_id": "tenant_123", "request_id": "req_123", "ir_hash": "sha256:" + "ab" * 32,
           "risk_tier": 3, "requires_approval": False, "violations": [], "validated_at": "2026-11-27T10:30:00Z",
           "step_count": 5}


def events(n: int, event_type: EventType) -> list[Event]:
    return [new_event(event_type, PAYLOAD, tenant_id=f"tenant_{i % 8}", correlation_id=f"req_{i}") for i in range(n)]


def per_event_us(fn: Callable[[Event], None], batch: list[Event]) -> tuple[float, float]:
    """Median and 99th percentile cost of one call, in microseconds."""
    costs = []
    for event in batch:
        start = time.perf_counter_ns()
        fn(event)
        costs.append((time.perf_counter_ns() - start) / 1000)
    costs.sort()
    return statistics.median(costs), costs[int(len(costs) * 0.99) - 1]


def plain_sqlite_insert(path: Path, synchronous: str) -> Callable[[Event], None]:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={synchronous}")
    conn.execute("CREATE TABLE t (id TEXT PRIMARY KEY, body TEXT)")

    def insert(event: Event) -> None:
        conn.execute("BEGIN")
        conn.execute("INSERT INTO t VALUES (?, ?)", (event.id, event.to_json()))
        conn.execute("COMMIT")

    return insert


def relay_throughput(sink: object, outbox: str, n: int) -> float:
    bus = EventBus([sink], outbox=outbox, autostart=False)
    for event in events(n, EventType.VALIDATED_PASS):
        bus.publish(event)
    start = time.perf_counter()
    delivered = bus.flush(120)
    elapsed = time.perf_counter() - start
    bus.close()
    if not delivered:
        raise SystemExit("relay did not deliver everything within 120 s")
    return n / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/15")
    args = parser.parse_args()
    n = args.events
    tmp = Path(tempfile.mkdtemp(prefix="irgov-bench-"))

    rows: list[tuple[str, float, float]] = []
    plain: list[Event] = []
    rows.append(("baseline: list.append", *per_event_us(plain.append, events(n, EventType.VALIDATED_PASS))))
    rows.append(("baseline: sqlite insert+commit, NORMAL",
                 *per_event_us(plain_sqlite_insert(tmp / "plain-normal.db", "NORMAL"), events(n, EventType.VALIDATED_PASS))))
    rows.append(("baseline: sqlite insert+commit, FULL",
                 *per_event_us(plain_sqlite_insert(tmp / "plain-full.db", "FULL"), events(n, EventType.VALIDATED_REJECT))))
    memory = EventBus([MemorySink()])
    rows.append(("publish, no outbox, MemorySink inline", *per_event_us(memory.publish, events(n, EventType.VALIDATED_PASS))))
    # autostart=False: the relay would compete for the two cores and blur the caller's cost.
    bus = EventBus([MemorySink()], outbox=f"sqlite:///{tmp}/outbox.db", autostart=False)
    rows.append(("publish, sqlite outbox, non-critical", *per_event_us(bus.publish, events(n, EventType.VALIDATED_PASS))))
    rows.append(("publish, sqlite outbox, critical (FULL)",
                 *per_event_us(bus.publish, events(n, EventType.VALIDATED_REJECT))))
    bus.close()

    base = rows[0][1]
    sql_normal, sql_full = rows[1][1], rows[2][1]
    print(f"caller's path, {n} events each (microseconds per event)")
    print("x sqlite: against the plain sqlite insert+commit with the same synchronous setting")
    print(f"{'':42} {'median':>9} {'p99':>9} {'x list':>8} {'x sqlite':>9}")
    for name, median, p99 in rows:
        sql = sql_full if "FULL" in name else sql_normal
        print(f"{name:42} {median:9.1f} {p99:9.1f} {median / base:8.0f} {median / sql:9.2f}")

    print(f"\nrelay throughput from the sqlite outbox, {n} events")
    jsonl = relay_throughput(JsonlSink(tmp / "events.jsonl"), f"sqlite:///{tmp}/relay-jsonl.db", n)
    print(f"{'jsonl sink':42} {jsonl:9.0f} events/s")
    try:
        import redis

        client = redis.Redis.from_url(args.redis, socket_connect_timeout=1)
        client.ping()
    except Exception as exc:
        print(f"{'redis stream sink':42} skipped: {exc}")
        return
    stream = f"irgov-bench:{uuid.uuid4().hex[:8]}"
    try:
        rate = relay_throughput(RedisStreamSink(f"{args.redis}?stream={stream}"), f"sqlite:///{tmp}/relay-redis.db", n)
        print(f"{'redis stream sink':42} {rate:9.0f} events/s")
    finally:
        client.delete(stream)
        client.close()


if __name__ == "__main__":
    main()
