"""Relay throughput with 1 and 3 relay processes on one outbox, to JSONL and to a Redis stream.

    python benchmarks/bench_relay.py [--events 5000] [--tenants 12] [--outbox sqlite|postgres|both]
        [--redis redis://127.0.0.1:6379/15] [--postgres postgresql://127.0.0.1:5432/test]

For each sink, each outbox backend and 1 or 3 relays: the relays (`irgov events relay`, real
processes, leases and delivery marks in the outbox) are started on an empty outbox, then
`--events` events are committed at once and the clock runs from that commit until every one is
marked delivered.
Baseline, measured in the same run and sharing no code with the package: one plain loop that
reads the same rows from the outbox table in chunks of 100 (`sqlite3` or `psycopg`, no leases, no
marks) and writes each chunk with one `write` to a JSONL file, or one MULTI/EXEC pipeline of XADDs
to a Redis stream. Printed: events/s and the ratio relay/baseline.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from irgov_policy.events import EventType, new_event, outbox_from_url
from irgov_policy.events.envelope import Event
from irgov_policy.events.outbox import Outbox

PAYLOAD = {"request_id": "req_1", "ir_hash": "sha256:" + "ab" * 32, "risk_tier": 0, "requires_approval": False,
           "violations": [], "validated_at": "2026-11-27T10:30:00Z", "step_count": 5}
CHUNK = 100


def _events(count: int, tenants: int) -> list[Event]:
    return [new_event(EventType.VALIDATED_PASS, {**PAYLOAD, "tenant_id": f"tenant_{i % tenants}"},
                      tenant_id=f"tenant_{i % tenants}") for i in range(count)]


def _fill(outbox: Outbox, count: int, tenants: int) -> None:
    outbox.import_events("bench", _events(count, tenants), "done")


# -- the baseline: a plain loop, no package code ------------------------------------------------

def _rows(url: str) -> Any:
    """Yield chunks of event bodies from the outbox table, in seq order."""
    if url.startswith("sqlite"):
        conn = sqlite3.connect(url.removeprefix("sqlite:///"))
        after = 0
        while True:
            rows = conn.execute("SELECT seq, body FROM irgov_outbox WHERE seq > ? ORDER BY seq LIMIT ?",
                                (after, CHUNK)).fetchall()
            if not rows:
                break
            after = rows[-1][0]
            yield [r[1] for r in rows]
        conn.close()
    else:
        import psycopg

        base, schema = url.split("?schema=")
        with psycopg.connect(base) as pg:
            after = 0
            while True:
                rows = pg.execute(f'SELECT seq, body FROM "{schema}".irgov_outbox WHERE seq > %s ORDER BY seq '
                                  "LIMIT %s", (after, CHUNK)).fetchall()
                if not rows:
                    break
                after = rows[-1][0]
                yield [r[1] for r in rows]


def baseline_jsonl(url: str, path: Path) -> tuple[int, float]:
    start = time.perf_counter()
    count = 0
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        for bodies in _rows(url):
            os.write(fd, "".join(b + "\n" for b in bodies).encode())
            count += len(bodies)
    finally:
        os.close(fd)
    return count, time.perf_counter() - start


def baseline_redis(url: str, redis_url: str, stream: str) -> tuple[int, float]:
    import redis

    client = redis.Redis.from_url(redis_url)
    start = time.perf_counter()
    count = 0
    for bodies in _rows(url):
        pipe = client.pipeline(transaction=True)
        for body in bodies:
            event = json.loads(body)
            pipe.xadd(stream, {"event_id": event["id"], "body": body}, maxlen=100_000, approximate=True)
        pipe.execute()
        count += len(bodies)
    elapsed = time.perf_counter() - start
    client.delete(stream)
    client.close()
    return count, elapsed


# -- the relays -----------------------------------------------------------------------------------

def relay_run(url: str, sink_url: str, relays: int, count: int, tenants: int, workdir: Path) -> float:
    """Seconds from committing `count` events to the last one marked delivered by `relays` relays."""
    env = {**os.environ, "IRGOV_OUTBOX": url, "IRGOV_EVENT_SINKS": sink_url, "IRGOV_APPROVAL_STORE": "memory://"}
    outbox = outbox_from_url(url)
    children = []
    try:
        for _ in range(relays):
            child = subprocess.Popen([sys.executable, "-c", "from irgov_policy.cli import main; main()", "events",
                                      "relay", "--poll", "0.02"], env=env, cwd=workdir, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
            children.append(child)
            assert child.stdout is not None
            line = child.stdout.readline()
            if not line:
                raise SystemExit(f"relay did not start: {child.stderr.read() if child.stderr else ''}")
            sink = json.loads(line)["sinks"][0]
        delivered = _DeliveredCount(url)
        events = _events(count, tenants)
        try:
            outbox.import_events("bench", events, "done")  # one commit: the relays see all at once
            start = time.perf_counter()
            while delivered(sink) < count:
                time.sleep(0.02)
            return time.perf_counter() - start
        finally:
            delivered.close()
    finally:
        for child in children:
            child.send_signal(signal.SIGTERM)
        for child in children:
            child.wait(30)
        outbox.close()


class _DeliveredCount:
    """Counts delivery marks over one connection, so watching does not slow the relays."""

    SQL = "SELECT COUNT(*) FROM {}irgov_outbox_delivery WHERE sink = {} AND delivered_at IS NOT NULL"

    def __init__(self, url: str) -> None:
        self.sqlite = url.startswith("sqlite")
        if self.sqlite:
            self.conn: Any = sqlite3.connect(url.removeprefix("sqlite:///"), timeout=30, isolation_level=None)
            self.sql = self.SQL.format("", "?")
        else:
            import psycopg

            base, schema = url.split("?schema=")
            self.conn = psycopg.connect(base, autocommit=True)
            self.sql = self.SQL.format(f'"{schema}".', "%s")

    def __call__(self, sink: str) -> int:
        return int(self.conn.execute(self.sql, (sink,)).fetchone()[0])

    def close(self) -> None:
        self.conn.close()


def _postgres_schema(base: str) -> str:
    return f"{base}?schema=bench_relay_{uuid.uuid4().hex[:8]}"


def _drop_schema(url: str) -> None:
    import psycopg

    base, schema = url.split("?schema=")
    with psycopg.connect(base, autocommit=True) as pg:
        pg.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--tenants", type=int, default=12)
    parser.add_argument("--outbox", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/15")
    parser.add_argument("--postgres", default="postgresql://127.0.0.1:5432/test")
    args = parser.parse_args()
    backends = ["sqlite", "postgres"] if args.outbox == "both" else [args.outbox]
    try:
        import redis

        redis.Redis.from_url(args.redis, socket_connect_timeout=1).ping()
        sinks = ["jsonl", "redis"]
    except Exception as exc:
        print(f"redis: skipped ({exc})")
        sinks = ["jsonl"]
    print(f"{args.events} events over {args.tenants} tenants, one commit; relays started beforehand")
    print(f"{'sink':<6} {'outbox':<9} {'path':<34} {'events/s':>10} {'ratio':>7}")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for backend in backends:
            for sink in sinks:
                # The baseline reads rows the package wrote: fill a throwaway outbox first.
                url = f"sqlite:///{work}/base-{sink}.db" if backend == "sqlite" else _postgres_schema(args.postgres)
                filled = outbox_from_url(url)
                _fill(filled, args.events, args.tenants)
                filled.close()
                if sink == "jsonl":
                    n, seconds = baseline_jsonl(url, work / f"base-{backend}.jsonl")
                else:
                    n, seconds = baseline_redis(url, args.redis, f"bench-relay:{uuid.uuid4().hex[:8]}")
                base_rate = n / seconds
                if backend == "postgres":
                    _drop_schema(url)
                print(f"{sink:<6} {backend:<9} {'baseline: plain read+write loop':<34} {base_rate:>10,.0f} "
                      f"{1.0:>7.2f}")
                for relays in (1, 3):
                    url = (f"sqlite:///{work}/relay-{sink}-{relays}.db" if backend == "sqlite"
                           else _postgres_schema(args.postgres))
                    stream = f"bench-relay:{uuid.uuid4().hex[:8]}"
                    sink_url = (f"jsonl://{work}/relay-{backend}-{relays}.jsonl" if sink == "jsonl"
                                else f"{args.redis}?stream={stream}")
                    try:
                        seconds = relay_run(url, sink_url, relays, args.events, args.tenants, work)
                    finally:
                        if backend == "postgres":
                            _drop_schema(url)
                        if sink == "redis":
                            import redis

                            redis.Redis.from_url(args.redis).delete(stream)
                    rate = args.events / seconds
                    print(f"{sink:<6} {backend:<9} {f'{relays} relay process(es)':<34} {rate:>10,.0f} "
                          f"{rate / base_rate:>7.2f}")


if __name__ == "__main__":
    main()
