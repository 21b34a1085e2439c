"""Three `irgov events relay` processes on one outbox, SQLite or PostgreSQL, all writing to one
JSONL file while 5,000 events arrive; one relay is SIGKILLed while it holds leases. Every event
reaches the file, a tenant's events arrive in outbox order, and the only duplicates are events of
the tenants the killed relay had leased, sent by it and sent again by the relay that took over."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from irgov_policy.events import EventType, outbox_from_url

from .helpers import seed_event

EVENTS = 5_000
TENANTS = 12
CHUNK = 100
BATCH = 500  # the relay's batch: the most one pass can have in flight
DEADLINE = 90.0


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def outbox_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/outbox.db"
    else:
        yield request.getfixturevalue("postgres_schema_url")


def _leased_by(url: str, owner: str) -> set[str]:
    """The tenants `owner` holds a live lease on, read straight from the outbox's table."""
    if url.startswith("sqlite"):
        conn = sqlite3.connect(url.removeprefix("sqlite:///"), timeout=10)
        try:
            rows = conn.execute("SELECT tenant FROM irgov_outbox_lease WHERE owner = ? AND expires_at > ?",
                                (owner, time.time())).fetchall()
        finally:
            conn.close()
    else:
        import psycopg

        base, schema = url.split("?schema=")
        with psycopg.connect(base, autocommit=True) as pg:
            rows = pg.execute(f'SELECT tenant FROM "{schema}".irgov_outbox_lease WHERE owner = %s '
                              "AND expires_at > now()", (owner,)).fetchall()
    return {str(r[0]) for r in rows}


def _start_relay(env: dict[str, str], cwd: Path) -> tuple[subprocess.Popen[str], str]:
    child = subprocess.Popen([sys.executable, "-c", "from irgov_policy.cli import main; main()",
                              "events", "relay", "--poll", "0.05"],
                             env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert child.stdout is not None
    line = child.stdout.readline()
    if not line:
        child.wait(10)
        pytest.fail(f"the relay did not start: {child.stderr.read() if child.stderr else ''}")
    return child, str(json.loads(line)["relay"])


def _lines(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    text = path.read_text("utf-8")
    return [json.loads(line) for line in text[:text.rfind("\n") + 1].splitlines()]


def test_three_relays_one_killed_deliver_every_event_in_tenant_order(outbox_url: str, tmp_path: Path) -> None:
    out = tmp_path / "events.jsonl"
    env = {**os.environ, "IRGOV_OUTBOX": outbox_url, "IRGOV_EVENT_SINKS": f"jsonl://{out}",
           "IRGOV_APPROVAL_STORE": "memory://", "IRGOV_RELAY_LEASE_SECONDS": "10"}
    writer = outbox_from_url(outbox_url)  # creates the schema before the relays open it
    events = [seed_event(EventType.VALIDATED_PASS, tenant=f"tenant_{i % TENANTS:02d}") for i in range(EVENTS)]
    relays: list[subprocess.Popen[str]] = []
    try:
        owners = []
        for _ in range(3):
            child, owner = _start_relay(env, tmp_path)
            relays.append(child)
            owners.append(owner)
        victim, victim_owner = relays[0], owners[0]
        victim_tenants: set[str] = set()
        kill_offset = -1
        deadline = time.monotonic() + DEADLINE
        written = 0
        while written < EVENTS or kill_offset < 0:
            assert time.monotonic() < deadline, f"no kill within {DEADLINE:g} s (written {written})"
            if written < EVENTS:  # the events keep arriving while the relays deliver
                writer.import_events("test", events[written:written + CHUNK], str(written))
                written += CHUNK
                time.sleep(0.01)
            if kill_offset < 0 and out.exists() and out.stat().st_size > 0:
                # Frozen first, so its leases can be read as they are at the moment it dies.
                victim.send_signal(signal.SIGSTOP)
                held = _leased_by(outbox_url, victim_owner)
                if held:
                    victim.kill()
                    victim.wait(10)
                    victim_tenants = held
                    kill_offset = out.stat().st_size
                else:
                    victim.send_signal(signal.SIGCONT)
        while len({line["id"] for line in _lines(out)}) < EVENTS:
            assert time.monotonic() < deadline, f"only {len({x['id'] for x in _lines(out)})} events delivered"
            time.sleep(0.05)
        for child in relays[1:]:
            child.send_signal(signal.SIGTERM)
        for child in relays[1:]:
            assert child.wait(20) == 0, child.stderr.read() if child.stderr else ""
    finally:
        for child in relays:
            if child.poll() is None:
                child.kill()
                child.wait(10)
        writer.close()

    lines = _lines(out)
    delivered = [line["id"] for line in lines]
    assert set(delivered) == {e.id for e in events}
    counts = Counter(delivered)
    duplicated = {event_id for event_id, n in counts.items() if n > 1}
    tenant_of = {e.id: e.tenant_id for e in events}
    assert all(counts[i] == 2 for i in duplicated), "an event was sent more than twice"
    assert {tenant_of[i] for i in duplicated} <= victim_tenants, "a duplicate outside the killed relay's leases"
    assert len(duplicated) <= BATCH
    before_kill = {line["id"] for line in _lines_until(out, kill_offset)}
    assert duplicated <= before_kill, "a duplicate first sent after the kill"
    position = {e.id: i for i, e in enumerate(events)}
    for tenant in {e.tenant_id for e in events}:
        first_seen: list[int] = []
        seen: set[str] = set()
        for event_id in delivered:
            if tenant_of[event_id] == tenant and event_id not in seen:
                seen.add(event_id)
                first_seen.append(position[event_id])
        assert first_seen == sorted(first_seen), f"{tenant}'s events out of order"


def _lines_until(path: Path, offset: int) -> list[dict[str, Any]]:
    with path.open("rb") as handle:
        text = handle.read(offset).decode("utf-8")
    return [json.loads(line) for line in text[:text.rfind("\n") + 1].splitlines()]


def test_a_relay_without_sinks_is_a_one_line_error(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from irgov_policy.cli import main

    result = CliRunner().invoke(main, ["events", "relay", "--outbox", f"sqlite:///{tmp_path}/o.db"],
                                env={"IRGOV_EVENT_SINKS": "", "IRGOV_APPROVAL_STORE": "memory://"})
    assert result.exit_code == 1 and result.output.strip().count("\n") == 0
    assert "no event sinks are configured" in result.output
