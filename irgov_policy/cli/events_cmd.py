"""`irgov events status|tail|replay|deliver|relay|purge`: operate the outbox and its relay."""

from __future__ import annotations

import json
import re
import signal
import threading
import time
from datetime import UTC, datetime, timedelta

import click
from rich.console import Console
from rich.table import Table

from ..events.bus import EventBus
from ..events.envelope import parse_timestamp
from ..events.types import EventType
from ._common import echo_json, fail
from .options import command_config, config_option, format_option, outbox_option
from .wiring import attach_store_outbox, open_event_bus

# More lines than any outbox keeps; the bound also keeps the number inside SQLite's integers.
MAX_TAIL_LINES = 1_000_000

__all__ = ["events_group", "parse_since"]

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """`2026-01-02T03:04:05Z` (tz-aware) or a duration back from now: `90s`, `15m`, `2h`, `7d`."""
    match = _DURATION.match(text.strip())
    if match:
        try:
            return (now or datetime.now(UTC)) - timedelta(seconds=float(match[1]) * _UNITS[match[2]])
        except OverflowError:
            fail(f"`--since` = `{text}` reaches back before the first representable date")
    try:
        return parse_timestamp(text.strip())
    except ValueError:
        fail(f"`--since` = `{text}` is neither a tz-aware timestamp nor a duration like `15m`")


def _age(created_at: str | None, now: datetime) -> str:
    if created_at is None:
        return "-"
    seconds = (now - parse_timestamp(created_at)).total_seconds()
    return f"{seconds:.1f}s" if seconds < 120 else f"{seconds / 60:.1f}m" if seconds < 7200 else f"{seconds / 3600:.1f}h"


@click.group("events")
def events_group() -> None:
    """Inspect and operate the event outbox and sinks of the configuration (`outbox`,
    `event_sinks`: `--config`, `IRGOV_OUTBOX`, `IRGOV_EVENT_SINKS`)."""


def _status_dict(bus: EventBus, now: datetime) -> dict[str, object]:
    status = bus.status()
    return {
        "outbox": status.outbox,
        "durable": status.durable,
        "pending": status.pending,
        "dropped": status.dropped,
        "sinks": [
            {
                "sink": s.sink,
                "pending": s.pending,
                "oldest_pending_at": s.oldest_created_at,
                "oldest_pending_age_seconds": None if s.oldest_created_at is None
                else round((now - parse_timestamp(s.oldest_created_at)).total_seconds(), 3),
                "failing": s.failing,
                "failed_attempts": s.failed_attempts,
                "delivered": s.delivered,
                "last_error": s.last_error,
            }
            for s in status.sinks
        ],
    }


@events_group.command("status")
@config_option
@outbox_option
@format_option("text", "json")
def status_command(output_format: str) -> None:
    """Pending deliveries per sink, oldest pending age, failures and drops. Exit 0 when nothing is
    pending, 1 otherwise."""
    bus = open_event_bus(command_config(), autostart=False)
    try:
        now = datetime.now(UTC)
        data = _status_dict(bus, now)
        if output_format == "json":
            echo_json(data)
        else:
            console = Console(highlight=False)
            console.print(f"outbox {data['outbox']}: {data['pending']} pending, {data['dropped']} dropped")
            if not bus.status().sinks:
                console.print("no sink configured (IRGOV_EVENT_SINKS)")
            else:
                table = Table("sink", "pending", "oldest", "failing", "failed attempts", "delivered", "last error")
                for s in bus.status().sinks:
                    table.add_row(s.sink, str(s.pending), _age(s.oldest_created_at, now), str(s.failing),
                                  str(s.failed_attempts), str(s.delivered), s.last_error or "")
                console.print(table)
        pending = data["pending"]
    finally:
        bus.close()
    raise SystemExit(0 if pending == 0 else 1)


@events_group.command("tail")
@config_option
@outbox_option
@click.option("--type", "types", multiple=True, type=click.Choice([t.value for t in EventType]),
              help="only events of this type (repeatable)")
@click.option("-n", "--lines", "limit", type=click.IntRange(1, MAX_TAIL_LINES), default=20, show_default=True)
@click.option("--follow", "-f", is_flag=True, help="keep printing new events until interrupted")
def tail_command(types: tuple[str, ...], limit: int, follow: bool) -> None:
    """Print the latest events of the outbox, one JSON envelope per line."""
    bus = open_event_bus(command_config(), autostart=False)
    try:
        records = bus.outbox.recent(limit, types)
        for record in records:
            click.echo(record.body)
        last = records[-1].seq if records else 0
        while follow:
            time.sleep(0.5)
            for record in bus.outbox.recent(1000, types, after_seq=last):
                click.echo(record.body)
                last = record.seq
    except KeyboardInterrupt:
        pass
    finally:
        bus.close()


def _deliver(bus: EventBus, timeout: float) -> None:
    drained = bus.flush(timeout)
    pending = bus.status().pending
    click.echo(json.dumps({"delivered_all": drained, "pending": pending}))
    raise SystemExit(0 if drained else 1)


@events_group.command("replay")
@config_option
@outbox_option
@click.option("--since", required=True, help="timestamp (`2026-01-02T03:04:05Z`) or duration (`15m`, `2h`, `7d`)")
@click.option("--sink", "sinks", multiple=True, help="only re-deliver to this sink name (repeatable)")
@click.option("--timeout", type=click.FloatRange(min=0), default=30.0, show_default=True)
def replay_command(since: str, sinks: tuple[str, ...], timeout: float) -> None:
    """Deliver again every event recorded since a moment. Exit 0 once all are delivered."""
    moment = parse_since(since)
    bus = open_event_bus(command_config())
    try:
        names = [s.sink for s in bus.status().sinks]
        unknown = [s for s in sinks if s not in names]
        if unknown:
            fail(f"unknown sink `{unknown[0]}`: configured sinks are {', '.join(f'`{n}`' for n in names) or 'none'}")
        count = bus.replay(moment, list(sinks) or None)
        click.echo(json.dumps({"replayed_deliveries": count, "since": moment.isoformat()}))
        _deliver(bus, timeout)
    finally:
        bus.close(timeout=0.5)


@events_group.command("deliver")
@config_option
@outbox_option
@click.option("--timeout", type=click.FloatRange(min=0), default=30.0, show_default=True)
def deliver_command(timeout: float) -> None:
    """Run the relay until every pending event is delivered (exit 0) or the timeout passes (exit 1)."""
    bus = open_event_bus(command_config())
    try:
        _deliver(bus, timeout)
    finally:
        bus.close(timeout=0.5)


@events_group.command("relay")
@config_option
@outbox_option
@click.option("--poll", type=click.FloatRange(min=0.01, max=60), default=0.5, show_default=True,
              help="seconds between looks at the outbox when it has nothing due")
def relay_command(poll: float) -> None:
    """Deliver the outbox's events to the sinks until stopped (SIGTERM or Ctrl-C), then exit 0.

    Several relays may run on one outbox (a SQLite file on one host, a PostgreSQL schema on any
    number): each takes a lease on the tenants it delivers, so an event reaches a sink once and a
    tenant's events arrive in order. A relay that dies keeps its tenants until
    `relay_lease_seconds` pass (at once, on its own host, once its process is gone)."""
    config = command_config()
    bus = open_event_bus(config, autostart=False)
    stop = threading.Event()
    try:
        if not bus.sinks:
            fail("no event sinks are configured (`event_sinks`, `IRGOV_EVENT_SINKS`): nothing to relay to")
        attach_store_outbox(config, bus)
        bus.relay.poll_interval = poll
        for number in (signal.SIGTERM, signal.SIGINT):
            signal.signal(number, lambda *_: stop.set())
        bus.start()
        click.echo(json.dumps({"relay": bus.relay.owner, "outbox": bus.outbox.url,
                               "sinks": [s.sink for s in bus.status().sinks]}))
        while not stop.wait(1.0):
            pass
    finally:
        bus.close(timeout=5.0)


@events_group.command("purge")
@config_option
@outbox_option
def purge_command() -> None:
    """Delete delivered events older than `event_retention_days` (`IRGOV_EVENT_RETENTION_DAYS`, default 7)."""
    bus = open_event_bus(command_config(), autostart=False)
    try:
        click.echo(json.dumps({"purged": bus.purge()}))
    finally:
        bus.close()
