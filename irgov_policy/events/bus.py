"""The event bus: what producers publish through. `publish` never raises and never waits for a sink.

Without an outbox (`EventBus(sinks)`), events go to an in-memory queue: sinks marked `inline`
(`MemorySink`) receive them before `publish` returns, the others through the relay thread.
With an outbox (`EventBus(sinks, outbox="sqlite:///...")`), `publish` appends the event to the
outbox and the relay delivers it: a critical event is committed with `synchronous=FULL` before
`publish` returns (concurrent publishers share one commit), any other is committed right after,
off the caller's path. Inside `with bus.batch():` critical events do not wait one by one: the
block's end waits once for all of them. Call `flush(timeout)` to wait for delivery. A failing sink is logged with the event id and type
only (payloads may carry sensitive values) and the decision that published the event is unaffected.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from .envelope import Event
from .outbox import DEFAULT_LEASE_SECONDS, MemoryOutbox, Outbox, SinkBacklog, outbox_from_url
from .relay import Relay, RetryPolicy, deliver_once, sink_name
from .sources import SqliteSource, source_from_url

__all__ = ["BusStatus", "EventBatch", "EventBus", "EventSink", "MemorySink"]

logger = logging.getLogger(__name__)


@runtime_checkable
class EventSink(Protocol):
    """Receives events. `deliver` (plain or `async def`) raises or returns False when delivery
    failed; the relay then retries. A sink may set `inline = True` when delivering is a cheap
    in-memory operation that can run on the publisher's thread."""

    name: str

    def deliver(self, event: Event) -> Any: ...


class MemorySink:
    """Keeps every delivered event in a list; for tests and in-process observers."""

    inline = True

    def __init__(self, name: str = "memory") -> None:
        self.name = name
        self.events: list[Event] = []
        self._lock = threading.Lock()

    def deliver(self, event: Event) -> None:
        with self._lock:
            self.events.append(event)

    def types(self) -> list[str]:
        with self._lock:
            return [e.type for e in self.events]

    def of_type(self, event_type: str) -> list[Event]:
        with self._lock:
            return [e for e in self.events if e.type == event_type]

    def ids(self) -> list[str]:
        with self._lock:
            return [e.id for e in self.events]

    def clear(self) -> None:
        with self._lock:
            self.events.clear()


@dataclass
class EventBatch:
    """The outcome of `EventBus.batch()`: `durable` is True once every event published in the
    block is committed (critical ones synchronously on disk)."""

    durable: bool = False


@dataclass(frozen=True)
class BusStatus:
    outbox: str
    durable: bool
    running: bool
    sinks: tuple[SinkBacklog, ...]
    dropped: int
    failures: int
    append_failures: int

    @property
    def pending(self) -> int:
        return sum(s.pending for s in self.sinks)


class EventBus:
    """Publishes events durably (with an outbox) and delivers them to every sink."""

    def __init__(
        self,
        sinks: Iterable[Any] = (),
        *,
        outbox: Outbox | str | None = None,
        max_queue: int = 10_000,
        retry: RetryPolicy | None = None,
        poll_interval: float = 0.5,
        retention_seconds: float | None = None,
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
        autostart: bool = True,
        observers: bool = True,
    ) -> None:
        if isinstance(outbox, str):
            outbox = outbox_from_url(outbox)
        self._outbox: Outbox = outbox if outbox is not None else MemoryOutbox(max_queue)
        self._relay = Relay(self._outbox, retry=retry, poll_interval=poll_interval,
                            retention_seconds=retention_seconds, lease_seconds=lease_seconds)
        set_callback = getattr(self._outbox, "set_commit_callback", None)
        if callable(set_callback):
            set_callback(self._relay.notify)  # grouped commits land after publish returns
        self._autostart = autostart
        self._sinks: list[Any] = []
        self._lock = threading.Lock()
        self._unappended: deque[Event] = deque(maxlen=max_queue)
        self.append_failures = 0
        self._inline_failures = 0
        for sink in sinks:
            self.add_sink(sink)
        if observers:
            from .sinks.observer import observer_sink

            observer = observer_sink()
            if observer is not None:
                self.add_sink(observer)

    # -- configuration -------------------------------------------------------------------------
    @property
    def outbox(self) -> Outbox:
        return self._outbox

    @property
    def sinks(self) -> list[Any]:
        with self._lock:
            return list(self._sinks)

    @property
    def relay(self) -> Relay:
        return self._relay

    def add_sink(self, sink: Any) -> None:
        """Add a sink; its name identifies its delivery marks, so it must be unique and stable."""
        name = sink_name(sink)
        with self._lock:
            if any(sink_name(s) == name for s in self._sinks):
                from ..errors import EventError

                raise EventError(f"a sink named `{name}` is already configured")
            self._sinks.append(sink)
            names = [sink_name(s) for s in self._sinks]
        if isinstance(self._outbox, MemoryOutbox):
            self._outbox.set_sinks(names)
        self._relay.add_sink(sink)

    def attach_outbox(self, url: str) -> None:
        """Also drain another outbox (`sqlite:////abs/approvals.db` or
        `redis://host:port/db?stream=irgov:outbox`) into this bus's outbox and sinks."""
        source = source_from_url(url)
        if isinstance(source, SqliteSource) and getattr(self._outbox, "same_file", None) is not None \
                and self._outbox.same_file(source.path):  # type: ignore[attr-defined]
            return  # the store writes straight into this outbox
        if getattr(source, "key", None) == getattr(self._outbox, "source_key", None):
            return  # the PostgreSQL store's outbox table is this outbox
        self._relay.add_source(source)
        if self._autostart:
            self._relay.start()

    # -- publishing ----------------------------------------------------------------------------
    def publish(self, event: Event) -> None:
        """Record `event` and hand it to the relay. Never raises."""
        try:
            self._publish(event)
        except Exception as exc:  # publishing must never break the caller's decision
            self.append_failures += 1
            log = logger.error if event.critical else logger.warning
            log("event %s (%s) could not be recorded: %s", getattr(event, "id", "?"),
                getattr(event, "type", "?"), exc)

    def _publish(self, event: Event) -> None:
        if isinstance(self._outbox, MemoryOutbox):
            self._publish_memory(event)
            return
        if self._unappended:
            self._retry_unappended()
        try:
            self._outbox.append(event)
        except Exception:
            self._unappended.append(event)
            raise
        finally:
            self._kick()

    @contextlib.contextmanager
    def batch(self, timeout: float = 30.0, *, critical_only: bool = False) -> Iterator[EventBatch]:
        """Publish several events and wait once, at the end of the block, until all of them are
        committed: a batch of decisions shares one synchronous commit instead of one each. With
        `critical_only` (one decision's event), the block waits for the critical ones only, and
        each is committed as soon as it is queued, overlapping the rest of the block; the others
        are committed shortly after, as outside a batch. The result's `durable` says whether
        they were (never raises for the events' sake)."""
        result = EventBatch()
        deferred = getattr(self._outbox, "deferred", None)
        if not callable(deferred):
            yield result
            result.durable = not self._unappended
            return
        with deferred(urgent=critical_only):
            yield result
        try:
            settled = self._outbox.flush(timeout, critical_only=critical_only)  # type: ignore[attr-defined]
            result.durable = bool(settled) and not self._unappended
        except Exception as exc:
            logger.error("events of a batch could not be committed: %s", exc)

    def _publish_memory(self, event: Event) -> None:
        outbox = self._outbox
        assert isinstance(outbox, MemoryOutbox)
        delivered: list[str] = []
        queued_for_relay = False
        for sink in self.sinks:
            if getattr(sink, "inline", False):
                try:
                    deliver_once(sink, event)
                    delivered.append(sink_name(sink))
                    continue
                except Exception as exc:
                    self._inline_failures += 1
                    logger.warning("event sink %s failed to deliver event %s (%s): %s",
                                   sink_name(sink), event.id, event.type, type(exc).__name__)
            queued_for_relay = True
        if not outbox.append_delivered(event, delivered):
            logger.warning("event %s (%s) dropped: the in-memory queue is full", event.id, event.type)
        if queued_for_relay:
            self._kick()

    def _kick(self) -> None:
        if self._autostart and not self._relay.running:
            self._relay.start()
        self._relay.notify()

    def _retry_unappended(self) -> None:
        while self._unappended:
            event = self._unappended[0]
            self._outbox.append(event)
            self._unappended.popleft()

    # -- delivery control ----------------------------------------------------------------------
    def start(self) -> None:
        """Start the relay threads (publish starts them too unless `autostart=False`)."""
        self._relay.start()

    async def start_async(self) -> None:
        """Start the relay from a running event loop: async sinks then run on that loop, which
        is what a host's EventStream bound to it needs."""
        self._relay.host_loop = asyncio.get_running_loop()
        self._relay.start()

    def stop(self, timeout: float = 2.0) -> bool:
        return self._relay.stop(timeout)

    async def stop_async(self, timeout: float = 2.0) -> bool:
        return await asyncio.to_thread(self._relay.stop, timeout)

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until every sink has every event, at most `timeout` seconds; True when nothing is
        pending. What is still pending stays in the outbox for later. An attached outbox that
        cannot be read keeps the answer False (the relay retries it while waiting)."""
        deadline = time.monotonic() + timeout
        try:
            if self._unappended:
                self._retry_unappended()
            settle = getattr(self._outbox, "flush", None)
            if callable(settle) and not settle(timeout):
                return False
            self._relay.start()
            self._relay.import_sources()
            self._relay.notify()
            while True:
                if self._relay.pending_total() == 0 and not self._unappended and self._relay.sources_read:
                    return True
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._relay.wait_progress(min(left, 0.05))
        except Exception as exc:
            logger.warning("flushing events failed: %s", exc)
            return False

    async def aflush(self, timeout: float = 5.0) -> bool:
        return await asyncio.to_thread(self.flush, timeout)

    def replay(self, since: datetime, sinks: Sequence[str] | None = None) -> int:
        """Deliver again every event recorded at or after `since` (to `sinks`, default all)."""
        count = self._outbox.reset_deliveries(since, sinks)
        self._kick()
        self._relay.rescan()
        return count

    def purge(self) -> int:
        """Delete delivered events older than the retention setting; the number deleted."""
        return self._relay.purge_delivered()

    # -- observation ---------------------------------------------------------------------------
    @property
    def dropped(self) -> int:
        """Non-critical events dropped because the in-memory queue was full."""
        return self._outbox.dropped if isinstance(self._outbox, MemoryOutbox) else 0

    @property
    def failures(self) -> int:
        """Failed delivery attempts (each retry counts)."""
        return self._relay.failures + self._inline_failures

    def status(self) -> BusStatus:
        return BusStatus(
            outbox=self._outbox.url,
            durable=self._outbox.durable,
            running=self._relay.running,
            sinks=tuple(self._outbox.backlog(self._relay.sink_names)),
            dropped=self.dropped,
            failures=self.failures,
            append_failures=self.append_failures,
        )

    # -- lifecycle -----------------------------------------------------------------------------
    def close(self, timeout: float = 2.0) -> None:
        """Stop the relay and release the outbox, sources and sinks (without waiting for
        delivery: call `flush` first for that)."""
        self._relay.stop(timeout)
        self._relay.close_sources()
        self._relay.map_sinks(_close_quietly)
        self._outbox.close()

    def __enter__(self) -> EventBus:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _close_quietly(sink: Any) -> None:
    close = getattr(sink, "close", None)
    if callable(close):
        try:
            close()
        except Exception:  # closing is best effort
            logger.debug("closing sink %s failed", sink_name(sink))
