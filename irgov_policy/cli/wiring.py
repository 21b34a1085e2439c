"""The parts a verb works with, built from its configuration by the kernel's builders.

A verb never opens a store, reads a key or loads a pack itself: it asks here, and here asks
`irgov_policy.kernel.build`, the same builders `Governance.from_config` and `irgov serve` use.
What this module adds is the command line's manners: every failure is one line on stderr, and
events published by a command are delivered before it exits.

Two settings are the command line's own: `IRGOV_EVENTS_FLUSH_TIMEOUT` (how long a command waits
for delivery before exiting, default 5 s; what is left stays in the outbox) and
`IRGOV_OUTBOX_SOURCES` (more outboxes this process's relay drains).
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from contextlib import contextmanager

import click

from ..approvals import ApprovalService
from ..config import GovernanceConfig
from ..errors import EventError, IrgovError, PackLoadError, PolicyError
from ..events.bus import EventBus
from ..events.config import split_urls
from ..events.outbox import DEFAULT_OUTBOX_URL, MemoryOutbox, Outbox, outbox_from_url
from ..hashing import HashRegistry
from ..kernel.build import build_approvals, build_bus, build_engine, build_ledger, build_registry
from ..kernel.requests import ApprovalRequests
from ..policy import PolicyEngine
from ._common import fail

__all__ = [
    "DEFAULT_FLUSH_TIMEOUT",
    "approval_requests",
    "approval_service",
    "engine_for",
    "event_bus",
    "flush_timeout_from_env",
    "open_event_bus",
    "registry_for",
]

DEFAULT_FLUSH_TIMEOUT = 5.0


def engine_for(config: GovernanceConfig) -> PolicyEngine:
    """The policy engine of the configuration; a pack that does not load prints each problem as
    `file:line:col: message`, then one summary line."""
    try:
        return build_engine(config)
    except PackLoadError as exc:
        for problem in exc.problems:
            click.echo(str(problem), err=True)
        fail(f"{len(exc.problems)} problem(s) in rule packs")
    except (PolicyError, IrgovError) as exc:
        fail(str(exc))


def registry_for(config: GovernanceConfig) -> HashRegistry:
    """The hash backends, checked against `hash_algorithm` and `allowed_algorithms`."""
    try:
        return build_registry(config)
    except IrgovError as exc:
        fail(str(exc))


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


def open_event_bus(config: GovernanceConfig, *, autostart: bool = True) -> EventBus:
    """The configured bus (`build_bus`), draining the outboxes of `IRGOV_OUTBOX_SOURCES` too. A
    sink that cannot be used is a one-line error; an outbox that cannot be opened falls back to
    memory with a warning, so a read-only working directory does not stop a decision."""
    outbox: Outbox
    try:
        outbox = outbox_from_url(config.outbox or DEFAULT_OUTBOX_URL)
    except EventError as exc:
        click.echo(f"irgov: warning: {exc}: events are kept in memory only", err=True)
        outbox = MemoryOutbox()
    try:
        bus = build_bus(config, outbox=outbox, autostart=autostart)
    except IrgovError as exc:  # an unusable sink, two sinks with the same name
        outbox.close()
        fail(str(exc))
    try:
        for source in split_urls(os.environ.get("IRGOV_OUTBOX_SOURCES")):
            bus.attach_outbox(source)
    except IrgovError as exc:
        bus.close()
        fail(str(exc))
    return bus


@contextmanager
def event_bus(config: GovernanceConfig) -> Iterator[EventBus]:
    """The bus for a command that publishes: on the way out the relay delivers to the sinks for
    at most `IRGOV_EVENTS_FLUSH_TIMEOUT` seconds; what is left stays in the outbox."""
    timeout = flush_timeout_from_env()
    bus = open_event_bus(config)
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


def attach_store_outbox(config: GovernanceConfig, bus: EventBus) -> None:
    """Also drain the configured approval store's own outbox (a SQLite database's table, a Redis
    stream), as the server does; a store that cannot be opened is a warning, not an error."""
    from ..approvals.factory import open_store

    try:
        store = open_store(config.approval_store, retention_seconds=int(config.approval_retention_days * 86400),
                           timeout=config.store_timeout, require_durable_redis=config.require_durable_redis)
    except IrgovError as exc:
        click.echo(f"irgov: warning: {exc}: its events are not relayed by this process", err=True)
        return
    try:
        if store.outbox_url:
            bus.attach_outbox(store.outbox_url)
    except IrgovError as exc:
        click.echo(f"irgov: warning: {exc}", err=True)
    finally:
        store.close()


def _attach_store_outbox(bus: EventBus, service: ApprovalService) -> None:
    # Attached once the command has worked: a store that cannot be reached then fails with its
    # one-line error alone, not with relay warnings too.
    if service.store.outbox_url:
        try:
            bus.attach_outbox(service.store.outbox_url)
        except IrgovError as exc:
            click.echo(f"irgov: warning: {exc}", err=True)


@contextmanager
def approval_service(config: GovernanceConfig, *, needs_key: bool) -> Iterator[ApprovalService]:
    """The approval service of the configuration (`build_approvals`), publishing on the command's
    bus; without `needs_key` and no key configured, it reads, revokes and purges only. It never
    generates a key: only minting a token does."""
    with event_bus(config) as bus:
        try:
            service = build_approvals(config, bus=None, needs_key=needs_key, create_key=False)
        except IrgovError as exc:
            fail(str(exc))
        service.bus = bus
        try:
            yield service
            _attach_store_outbox(bus, service)
        finally:
            service.store.close()


@contextmanager
def approval_requests(config: GovernanceConfig) -> Iterator[ApprovalRequests]:
    """The kernel's approval-request workflow (ledger and approvals) on the command's bus,
    without the policy engine: nothing in it depends on the packs loading."""
    with event_bus(config) as bus:
        try:
            approvals = build_approvals(config, bus=None)
        except IrgovError as exc:
            fail(str(exc))
        approvals.bus = bus
        try:
            yield ApprovalRequests(config, approvals, build_ledger(approvals))
            _attach_store_outbox(bus, approvals)
        finally:
            approvals.store.close()  # the ledger lives in the store's database
