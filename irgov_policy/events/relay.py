"""The relay: delivers outbox events to sinks off the caller's path.

One worker thread per sink, so a slow or dead sink only delays itself. Per sink, events go out in
outbox order; after a failure that sink holds back the rest of the same tenant until a retry
succeeds (order per tenant), while other tenants keep flowing. Several relays (threads, processes
or hosts) may share one outbox: a pass claims a lease on each (sink, tenant) it delivers
(`Outbox.claim`), renews it as it marks events delivered and releases it with the last marks, so
one relay at a time sends a tenant's events to a sink. Retries back off exponentially,
forever: at-least-once means an undelivered event stays pending, visible in `backlog`.
A housekeeping thread imports attached sources and purges delivered events past retention.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from ..errors import EventError
from ..observability import metrics
from .envelope import Event
from .outbox import DEFAULT_LEASE_SECONDS, Outbox, OutboxRecord, lease_key
from .relay_owner import new_owner
from .sources import OutboxSource

__all__ = ["DeliveryFailed", "Relay", "RetryPolicy", "deliver_once", "sink_name"]

logger = logging.getLogger(__name__)

# A private generator: the relay's threads must not touch the global `random` state of the host.
_JITTER = random.Random()


class DeliveryFailed(EventError):
    """A sink refused an event (returned False) or did not answer in time."""


@dataclass(frozen=True)
class RetryPolicy:
    base_seconds: float = 0.2
    max_seconds: float = 30.0
    sink_timeout_seconds: float = 10.0

    def delay(self, attempts: int) -> float:
        raw = min(self.max_seconds, self.base_seconds * 2.0 ** max(0, attempts - 1))
        return raw * (0.5 + _JITTER.random() / 2)  # jitter: many relays must not retry in lockstep


def sink_name(sink: Any) -> str:
    return str(getattr(sink, "name", None) or type(sink).__name__)


def deliver_once(sink: Any, event: Event, *, loop: asyncio.AbstractEventLoop | None = None,
                 private_loop: asyncio.AbstractEventLoop | None = None, timeout: float = 10.0) -> None:
    """Deliver one event; raise when the sink raised, returned False or timed out.

    An async sink runs on `loop` (the host's loop, when the relay was started from it) or else on
    `private_loop`, the worker thread's own loop."""
    result = sink.deliver(event)
    if inspect.isawaitable(result):
        if loop is not None and loop.is_running():
            future = asyncio.run_coroutine_threadsafe(_awaited(result), loop)
            try:
                result = future.result(timeout)
            except TimeoutError as exc:
                future.cancel()
                raise DeliveryFailed(f"no answer within {timeout:g} s") from exc
        else:
            runner = private_loop or asyncio.new_event_loop()
            try:
                result = runner.run_until_complete(asyncio.wait_for(_awaited(result), timeout))
            except TimeoutError as exc:
                raise DeliveryFailed(f"no answer within {timeout:g} s") from exc
            finally:
                if private_loop is None:
                    runner.close()
    if result is False:
        raise DeliveryFailed("the sink refused the event")


async def _awaited(awaitable: Any) -> Any:
    return await awaitable


class _SinkWorker(threading.Thread):
    def __init__(self, relay: Relay, sink: Any) -> None:
        self.sink = sink
        self.sink_name = sink_name(sink)
        super().__init__(name=f"irgov-relay[{self.sink_name}]", daemon=True)
        self.relay = relay
        self.wake = threading.Event()
        self.stopping = threading.Event()
        self._after = 0
        self._rescan_at = 0.0
        self._loop: asyncio.AbstractEventLoop | None = None

    def rescan_now(self) -> None:
        self._rescan_at = 0.0

    def run(self) -> None:
        self._loop = asyncio.new_event_loop()
        try:
            while not self.stopping.is_set():
                try:
                    wait = self.pass_once()
                except Exception as exc:  # an unreadable outbox must not end the relay
                    if self.stopping.is_set():
                        break  # the outbox was closed under a call that outlived `stop`
                    logger.error("relay for sink %s failed a pass: %s", self.sink_name, exc)
                    wait = self.relay.poll_interval
                self.relay._progress()
                self.wake.wait(wait)
                self.wake.clear()
        finally:
            self._loop.close()

    def pass_once(self) -> float:
        """Deliver what is due; return how long to sleep before the next pass."""
        relay = self.relay
        now = time.time()
        if now >= self._rescan_at:
            # Replays (possibly by another process) clear delivery marks behind the watermark.
            self._after = 0
            self._rescan_at = now + relay.rescan_interval
        claim = relay.outbox.claim(self.sink_name, relay.owner, self._after, relay.batch_size, relay.lease_seconds)
        self._after = claim.floor
        records = claim.records
        if not records:
            return relay.poll_interval
        delivered: list[str] = []
        try:
            blocked = self._deliver_claimed(records, claim.tenants, delivered)
        finally:
            try:  # the marks commit with the release, so the next holder of a tenant sees them
                relay.outbox.release(self.sink_name, relay.owner, delivered)
            except Exception as exc:
                logger.error("relay for sink %s cannot release its leases: %s", self.sink_name, exc)
        if len(records) >= relay.batch_size and not blocked:
            return 0.0
        return max(0.0, min([time.time() + relay.poll_interval, *blocked.values()]) - time.time())

    def _deliver_claimed(self, records: list[OutboxRecord], held: frozenset[str],
                         delivered: list[str]) -> dict[str | None, float]:
        """Deliver the claimed records in order; a tenant stops at its first failure or event not
        yet due (order per tenant). `delivered` collects what still has to be marked. Returns the
        blocked tenants with when to look at them again."""
        relay = self.relay
        blocked: dict[str | None, float] = {}
        renew_at = time.monotonic() + relay.lease_seconds / 3
        # A sink with `deliver_many(events)` (all or nothing) gets runs of due events in one call;
        # after a failed run the rest of the pass goes one by one to find the failing event.
        batching = callable(getattr(self.sink, "deliver_many", None))
        index = 0
        while index < len(records):
            if self.stopping.is_set():
                break
            if len(delivered) >= 100 or time.monotonic() >= renew_at:
                # Marks go out in chunks with a lease renewal; a lease lost meanwhile (it expired
                # and another relay took the tenant) ends this relay's part for that tenant.
                held = relay.outbox.renew(self.sink_name, relay.owner, delivered, relay.lease_seconds)
                delivered.clear()
                renew_at = time.monotonic() + relay.lease_seconds / 3
            record = records[index]
            if record.tenant_id in blocked or lease_key(record.tenant_id) not in held:
                index += 1
                continue
            if record.next_attempt_at is not None and record.next_attempt_at > time.time():
                blocked[record.tenant_id] = record.next_attempt_at
                index += 1
                continue
            if batching:
                run = self._due_run(records, index, blocked, held)
                if len(run) > 1:
                    if self._deliver_many(run):
                        delivered.extend(r.event_id for r in run)
                        index += len(run)
                        continue
                    batching = False
            if self._deliver(record):
                delivered.append(record.event_id)
            else:
                blocked[record.tenant_id] = time.time() + relay.retry.delay(record.attempts + 1)
            index += 1
        return blocked

    @staticmethod
    def _due_run(records: list[OutboxRecord], start: int, blocked: dict[str | None, float],
                 held: frozenset[str]) -> list[OutboxRecord]:
        now = time.time()
        run: list[OutboxRecord] = []
        for record in records[start:start + 100]:
            if record.tenant_id in blocked or lease_key(record.tenant_id) not in held \
                    or (record.next_attempt_at is not None and record.next_attempt_at > now):
                break
            run.append(record)
        return run

    def _deliver_many(self, run: list[OutboxRecord]) -> bool:
        try:
            self.sink.deliver_many([r.event() for r in run])
        except Exception as exc:
            logger.info("event sink %s failed a batch of %d events (%s); retrying one by one",
                        self.sink_name, len(run), type(exc).__name__)
            return False
        return True

    def _deliver(self, record: OutboxRecord) -> bool:
        relay = self.relay
        try:
            event = record.event()
            deliver_once(self.sink, event, loop=relay.host_loop, private_loop=self._loop,
                         timeout=relay.retry.sink_timeout_seconds)
        except Exception as exc:
            attempts = record.attempts + 1
            error = f"{type(exc).__name__}: {exc}"
            relay.failures += 1
            metrics.relay_failure(self.sink_name)
            logger.warning("event sink %s failed to deliver event %s (%s), attempt %d: %s",
                           self.sink_name, record.event_id, record.type, attempts, type(exc).__name__)
            try:
                relay.outbox.mark_failed(self.sink_name, record.event_id, error,
                                         time.time() + relay.retry.delay(attempts))
            except Exception as mark_exc:
                logger.error("cannot record the failed delivery of event %s: %s", record.event_id, mark_exc)
            return False
        logger.debug("event %s (%s) delivered to %s", record.event_id, record.type, self.sink_name)
        return True


class Relay:
    """Runs the sink workers and the housekeeping thread over one outbox."""

    def __init__(self, outbox: Outbox, *, retry: RetryPolicy | None = None, poll_interval: float = 0.5,
                 batch_size: int = 500, retention_seconds: float | None = None,
                 rescan_interval: float = 30.0, lease_seconds: float = DEFAULT_LEASE_SECONDS) -> None:
        if not lease_seconds > 0:
            raise EventError(f"relay lease must be a positive number of seconds, not `{lease_seconds}`")
        self.outbox = outbox
        self.lease_seconds = lease_seconds
        #: names this relay in the outbox's leases: unique across hosts, processes and buses
        self.owner = new_owner()
        self.retry = retry or RetryPolicy()
        self.poll_interval = poll_interval
        self.batch_size = batch_size
        self.retention_seconds = retention_seconds
        self.rescan_interval = rescan_interval
        self.host_loop: asyncio.AbstractEventLoop | None = None
        self.failures = 0
        self.import_errors = 0
        #: False while the last import left some attached source unread: what it holds is not
        #: counted as pending anywhere, so nobody may claim that everything was delivered.
        self.sources_read = True
        self._sinks: list[Any] = []
        self._sources: list[OutboxSource] = []
        self._workers: dict[str, _SinkWorker] = {}
        self._housekeeper: threading.Thread | None = None
        self._stopping = threading.Event()
        self._lock = threading.RLock()
        self._progress_cond = threading.Condition()
        self._started = False
        self._last_purge = 0.0

    @property
    def running(self) -> bool:
        return self._started

    @property
    def sink_names(self) -> list[str]:
        with self._lock:
            return [sink_name(s) for s in self._sinks]

    def add_sink(self, sink: Any) -> None:
        with self._lock:
            self._sinks.append(sink)
            if self._started:
                self._start_worker(sink)

    def add_source(self, source: OutboxSource) -> None:
        with self._lock:
            if any(s.key == source.key for s in self._sources):
                return
            self._sources.append(source)
            if self._started and self._housekeeper is None:
                self._start_housekeeper()

    def _start_worker(self, sink: Any) -> None:
        name = sink_name(sink)
        if name in self._workers:
            return
        worker = _SinkWorker(self, sink)
        self._workers[name] = worker
        worker.start()

    def _start_housekeeper(self) -> None:
        self._housekeeper = threading.Thread(target=self._housekeep, name="irgov-relay[housekeeping]", daemon=True)
        self._housekeeper.start()

    def start(self) -> None:
        with self._lock:
            if self._started:
                return
            self._started = True
            self._stopping.clear()
            for sink in self._sinks:
                self._start_worker(sink)
            if self._sources or (self.retention_seconds is not None and self.outbox.durable):
                self._start_housekeeper()

    def rescan(self) -> None:
        """Make every worker read the outbox from the start again (after a replay)."""
        for worker in list(self._workers.values()):
            worker.rescan_now()
        self.notify()

    def notify(self) -> None:
        for worker in list(self._workers.values()):
            worker.wake.set()

    def stop(self, timeout: float = 2.0) -> bool:
        """Stop the threads; True when all of them ended within `timeout` (a sink stuck in a call
        cannot be interrupted: its daemon thread is abandoned)."""
        with self._lock:
            workers = list(self._workers.values())
            housekeeper = self._housekeeper
            self._workers.clear()
            self._housekeeper = None
            self._started = False
            self._stopping.set()
        for worker in workers:
            worker.stopping.set()
            worker.wake.set()
        deadline = time.monotonic() + timeout
        ended = True
        for thread in [*workers, *([housekeeper] if housekeeper else [])]:
            thread.join(max(0.0, deadline - time.monotonic()))
            ended = ended and not thread.is_alive()
        if workers and ended:
            try:  # the other relays need not wait for this one's leases to expire
                self.outbox.retire(self.owner)
            except Exception as exc:
                logger.debug("relay %s could not retire its leases: %s", self.owner, exc)
        return ended

    def import_sources(self) -> int:
        """Copy new events of every attached source into the outbox; the number imported."""
        total = 0
        all_read = True
        for source in list(self._sources):
            try:
                while True:
                    cursor = self.outbox.source_cursor(source.key)
                    legacy = getattr(source, "legacy_key", None)
                    if cursor is None and legacy:  # saved under an earlier version's key: continue there
                        cursor = self.outbox.source_cursor(legacy)
                    events, new_cursor = source.read(cursor, self.batch_size)
                    if new_cursor is None or new_cursor == cursor:
                        break
                    total += self.outbox.import_events(source.key, events, new_cursor)
                    if len(events) < self.batch_size:
                        break
            except Exception as exc:  # a source that is down is retried at the next poll
                self.import_errors += 1
                all_read = False
                logger.warning("cannot read outbox source %s: %s", source.key, exc)
        self.sources_read = all_read
        if total:
            self.notify()
        return total

    def purge_delivered(self) -> int:
        if self.retention_seconds is None:
            return 0
        names = self.sink_names
        try:
            cutoff = datetime.now(UTC) - timedelta(seconds=self.retention_seconds)
        except OverflowError:
            return 0  # a retention reaching before the first representable date: nothing is old enough
        return self.outbox.purge(names, cutoff)

    def _housekeep(self) -> None:
        while not self._stopping.is_set():
            self.import_sources()
            now = time.monotonic()
            if self.retention_seconds is not None and now - self._last_purge > max(1.0, self.poll_interval * 20):
                self._last_purge = now
                try:
                    purged = self.purge_delivered()
                    if purged:
                        logger.info("purged %d delivered events past retention", purged)
                except Exception as exc:
                    logger.warning("cannot purge the outbox: %s", exc)
            self._stopping.wait(self.poll_interval)

    def _progress(self) -> None:
        with self._progress_cond:
            self._progress_cond.notify_all()

    def wait_progress(self, timeout: float) -> None:
        with self._progress_cond:
            self._progress_cond.wait(timeout)

    def pending_total(self, names: Sequence[str] | None = None) -> int:
        return sum(b.pending for b in self.outbox.backlog(list(names if names is not None else self.sink_names)))

    def close_sources(self) -> None:
        for source in self._sources:
            try:
                source.close()
            except Exception:  # closing is best effort
                logger.debug("closing source %s failed", source.key)

    def map_sinks(self, fn: Callable[[Any], None]) -> None:
        with self._lock:
            sinks = list(self._sinks)
        for sink in sinks:
            fn(sink)
