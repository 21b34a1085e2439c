"""The event bus the CLI publishes through.

Commands open it as a context manager: on the way out the relay delivers to the configured sinks
for at most `IRGOV_EVENTS_FLUSH_TIMEOUT` seconds (default 5); whatever is still undelivered stays
in the outbox for the next relay (`irgov events deliver`, or any later command).
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from contextlib import contextmanager

import click

from ..config import load_config
from ..errors import ConfigError, EventError
from ..events.bus import EventBus
from ..events.config import sinks_from_urls, split_urls
from ..events.outbox import DEFAULT_OUTBOX_URL, MemoryOutbox, Outbox, outbox_from_url
from ._common import fail

__all__ = ["DEFAULT_FLUSH_TIMEOUT", "cli_event_bus", "flush_timeout_from_env", "open_cli_bus"]

DEFAULT_FLUSH_TIMEOUT = 5.0


def flush_timeout_from_env() -> float:
    raw = os.environ.get("IRGOV_EVENTS_FLUSH_TIMEOUT", "")
    if not raw.strip():
        return DEFAULT_FLUSH_TIMEOUT
    try:
        value = float(raw)
    except ValueError:
        fail(f"`IRGOV_EVENTS_FLUSH_TIMEOUT` = `{raw}` is not a number of seconds")
    if not math.isfinite(value) or value < 0:
        # The wait before exit must stay bounded: NaN or infinity would hang or skip it.
        fail(f"`IRGOV_EVENTS_FLUSH_TIMEOUT` = `{raw}` must be a finite number of seconds, 0 or more")
    return value


def open_cli_bus(*, autostart: bool = True) -> EventBus:
    """The configured bus (`irgov_policy.config`: file, then `IRGOV_*`; extra outboxes to drain in
    `IRGOV_OUTBOX_SOURCES`). A configuration or sink that cannot be used is a one-line error; an
    outbox that cannot be opened falls back to memory with a warning, so a read-only working
    directory does not stop a decision from being made."""
    try:
        config = load_config()
        sinks = sinks_from_urls(config.event_sinks)
    except (ConfigError, EventError) as exc:
        fail(str(exc))
    retention = config.event_retention_days * 86400.0
    url = config.outbox or DEFAULT_OUTBOX_URL
    outbox: Outbox
    try:
        outbox = outbox_from_url(url)
    except EventError as exc:
        click.echo(f"irgov: warning: {exc}: events are kept in memory only", err=True)
        outbox = MemoryOutbox()
    try:
        bus = EventBus(sinks, outbox=outbox, retention_seconds=retention, autostart=autostart)
    except EventError as exc:  # e.g. two sinks with the same name
        outbox.close()
        fail(str(exc))
    try:
        for source in split_urls(os.environ.get("IRGOV_OUTBOX_SOURCES")):
            bus.attach_outbox(source)
    except EventError as exc:
        bus.close()
        fail(str(exc))
    return bus


@contextmanager
def cli_event_bus() -> Iterator[EventBus]:
    timeout = flush_timeout_from_env()
    bus = open_cli_bus()
    try:
        yield bus
    finally:
        if bus.sinks and not bus.flush(timeout):
            pending = bus.status().pending
            fate = (f"they stay in the outbox `{bus.outbox.url}`" if bus.outbox.durable
                    else "they are lost with this process (no outbox)")
            click.echo(f"irgov: warning: {pending} event deliveries still pending after {timeout:g} s; {fate}",
                       err=True)
        try:
            bus.purge()
        except Exception as exc:  # retention is housekeeping: never fails a command
            click.echo(f"irgov: warning: cannot purge the outbox: {exc}", err=True)
        bus.close(timeout=0.5)
