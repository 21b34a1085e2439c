"""The outbox interface, the bounded in-memory outbox, and `outbox_from_url`.

An outbox holds events until every sink has them. The relay only talks to this interface, so
the SQLite file and the in-memory queue are delivered exactly the same way.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from ..errors import EventError
from ..storage import StoreURL
from .envelope import Event, format_timestamp

__all__ = [
    "DEFAULT_LEASE_SECONDS",
    "DEFAULT_OUTBOX_URL",
    "Claim",
    "MemoryOutbox",
    "Outbox",
    "OutboxRecord",
    "SinkBacklog",
    "lease_key",
    "outbox_from_url",
    "tenants_to_claim",
]

DEFAULT_OUTBOX_URL = "sqlite:///./.irgov/outbox.db"
#: how long a relay holds a tenant's events for one sink without renewing its lease; longer than
#: the sink timeout, so a relay waiting on a slow sink does not lose its lease in normal operation
DEFAULT_LEASE_SECONDS = 30.0


@dataclass(frozen=True)
class OutboxRecord:
    """One stored event, with this sink's delivery state when read through `pending`."""

    seq: int
    event_id: str
    tenant_id: str | None
    type: str
    critical: bool
    body: str
    created_at: str
    attempts: int = 0
    next_attempt_at: float | None = None

    def event(self) -> Event:
        return Event.from_json(self.body)


@dataclass(frozen=True)
class SinkBacklog:
    """What `irgov events status` shows for one sink."""

    sink: str
    pending: int
    oldest_created_at: str | None
    failing: int
    delivered: int
    failed_attempts: int
    last_error: str | None


@dataclass(frozen=True)
class Claim:
    """What one relay pass may deliver to one sink: the pending events of the tenants it leased,
    in outbox order, and `floor`, a sequence number up to which every event was delivered to the
    sink when the claim was made (the next pass reads after it)."""

    records: list[OutboxRecord]
    tenants: frozenset[str]
    floor: int


def lease_key(tenant_id: str | None) -> str:
    """The lease table's key for a tenant: events without a tenant share the empty key (a tenant id
    is never empty)."""
    return tenant_id or ""


def tenants_to_claim(waiting: Sequence[str], leased_elsewhere: int, relays: int) -> list[str]:
    """The tenants one relay takes from `waiting` (free tenants with pending events, oldest event
    first): its fair share of every tenant with work, counting those leased by the others, so that
    the first relay to wake does not take everything while the others idle."""
    share = math.ceil((len(waiting) + leased_elsewhere) / max(1, relays))
    return list(waiting[:max(1, share)])


class Outbox(Protocol):
    url: str
    durable: bool

    def append(self, event: Event) -> bool: ...

    def import_events(self, source: str, events: Iterable[Event], cursor: str) -> int: ...

    def source_cursor(self, source: str) -> str | None: ...

    def pending(self, sink: str, after_seq: int, limit: int) -> list[OutboxRecord]: ...

    def mark_delivered(self, sink: str, event_ids: Sequence[str]) -> None: ...

    def mark_failed(self, sink: str, event_id: str, error: str, next_attempt_at: float) -> None: ...

    def claim(self, sink: str, owner: str, after_seq: int, limit: int, lease_seconds: float) -> Claim: ...

    def renew(self, sink: str, owner: str, delivered: Sequence[str], lease_seconds: float) -> frozenset[str]: ...

    def release(self, sink: str, owner: str, delivered: Sequence[str]) -> None: ...

    def retire(self, owner: str) -> None: ...

    def backlog(self, sinks: Sequence[str]) -> list[SinkBacklog]: ...

    def purge(self, sinks: Sequence[str], older_than: datetime) -> int: ...

    def reset_deliveries(self, since: datetime, sinks: Sequence[str] | None = None) -> int: ...

    def recent(self, limit: int, types: Sequence[str] = (), after_seq: int = 0) -> list[OutboxRecord]: ...

    def close(self) -> None: ...


@dataclass
class _Slot:
    record: OutboxRecord
    delivered: set[str]
    attempts: dict[str, int]
    next_at: dict[str, float]
    errors: dict[str, str]


class MemoryOutbox:
    """A bounded queue in memory, for when no outbox is configured.

    Nothing here survives the process. When full, a new non-critical event is dropped and
    counted in `dropped`; a critical event is still queued (the bound is soft for them) because
    losing one silently is worse than using the memory. An event leaves the queue once every
    sink in `sinks` has it."""

    durable = False
    url = "memory:"

    def __init__(self, max_events: int = 10_000) -> None:
        self.max_events = max_events
        self.dropped = 0
        self._slots: dict[int, _Slot] = {}
        self._by_id: dict[str, int] = {}
        self._cursors: dict[str, str] = {}
        self._sinks: tuple[str, ...] = ()
        self._seq = 0
        self._lock = threading.Lock()

    def set_sinks(self, sinks: Sequence[str]) -> None:
        with self._lock:
            self._sinks = tuple(sinks)

    def _add(self, event: Event) -> bool:
        if event.id in self._by_id:
            return True
        if not self._sinks:
            return True  # nobody to deliver to: nothing to keep
        if len(self._slots) >= self.max_events and not event.critical:
            self.dropped += 1
            return False
        self._seq += 1
        record = OutboxRecord(self._seq, event.id, event.tenant_id, event.type, event.critical,
                              event.to_json(), format_timestamp(event.timestamp))
        self._slots[self._seq] = _Slot(record, set(), {}, {}, {})
        self._by_id[event.id] = self._seq
        return True

    def append(self, event: Event) -> bool:
        with self._lock:
            return self._add(event)

    def append_delivered(self, event: Event, delivered_to: Iterable[str]) -> bool:
        """Queue `event` already delivered to some sinks (inline delivery); nothing is kept when
        every sink has it."""
        done = set(delivered_to)
        with self._lock:
            if set(self._sinks) <= done:
                return True
            added = self._add(event)
            seq = self._by_id.get(event.id)
            if seq is not None:
                self._slots[seq].delivered |= done
            return added

    def import_events(self, source: str, events: Iterable[Event], cursor: str) -> int:
        with self._lock:
            before = len(self._by_id)
            for event in events:
                self._add(event)
            self._cursors[source] = cursor
            return len(self._by_id) - before

    def source_cursor(self, source: str) -> str | None:
        with self._lock:
            return self._cursors.get(source)

    def pending(self, sink: str, after_seq: int, limit: int) -> list[OutboxRecord]:
        out: list[OutboxRecord] = []
        with self._lock:
            for seq in sorted(s for s in self._slots if s > after_seq):
                slot = self._slots[seq]
                if sink in slot.delivered:
                    continue
                r = slot.record
                out.append(OutboxRecord(r.seq, r.event_id, r.tenant_id, r.type, r.critical, r.body, r.created_at,
                                        slot.attempts.get(sink, 0), slot.next_at.get(sink)))
                if len(out) >= limit:
                    break
        return out

    def mark_delivered(self, sink: str, event_ids: Sequence[str]) -> None:
        with self._lock:
            for event_id in event_ids:
                seq = self._by_id.get(event_id)
                if seq is None:
                    continue
                slot = self._slots[seq]
                slot.delivered.add(sink)
                slot.next_at.pop(sink, None)
                if set(self._sinks) <= slot.delivered:
                    del self._slots[seq]
                    del self._by_id[event_id]

    # One process holds the queue, so there is nobody to share it with: a claim is the pending list.
    def claim(self, sink: str, owner: str, after_seq: int, limit: int, lease_seconds: float) -> Claim:
        records = self.pending(sink, after_seq, limit)
        return Claim(records, frozenset(lease_key(r.tenant_id) for r in records), after_seq)

    def renew(self, sink: str, owner: str, delivered: Sequence[str], lease_seconds: float) -> frozenset[str]:
        self.mark_delivered(sink, delivered)
        return frozenset(self._tenants())

    def _tenants(self) -> set[str]:
        with self._lock:
            return {lease_key(s.record.tenant_id) for s in self._slots.values()}

    def release(self, sink: str, owner: str, delivered: Sequence[str]) -> None:
        self.mark_delivered(sink, delivered)

    def retire(self, owner: str) -> None:
        return None

    def mark_failed(self, sink: str, event_id: str, error: str, next_attempt_at: float) -> None:
        with self._lock:
            seq = self._by_id.get(event_id)
            if seq is None:
                return
            slot = self._slots[seq]
            slot.attempts[sink] = slot.attempts.get(sink, 0) + 1
            slot.next_at[sink] = next_attempt_at
            slot.errors[sink] = error[:500]

    def backlog(self, sinks: Sequence[str]) -> list[SinkBacklog]:
        out: list[SinkBacklog] = []
        with self._lock:
            for sink in sinks:
                waiting = [s for s in self._slots.values() if sink not in s.delivered]
                errors = [s.errors[sink] for s in waiting if sink in s.errors]
                out.append(SinkBacklog(
                    sink=sink,
                    pending=len(waiting),
                    oldest_created_at=min((s.record.created_at for s in waiting), default=None),
                    failing=sum(1 for s in waiting if s.attempts.get(sink, 0) > 0),
                    delivered=0,
                    failed_attempts=sum(s.attempts.get(sink, 0) for s in waiting),
                    last_error=errors[-1] if errors else None,
                ))
        return out

    def purge(self, sinks: Sequence[str], older_than: datetime) -> int:
        return 0  # delivered events leave the queue at once

    def reset_deliveries(self, since: datetime, sinks: Sequence[str] | None = None) -> int:
        return 0  # delivered events are gone: nothing to replay from memory

    def recent(self, limit: int, types: Sequence[str] = (), after_seq: int = 0) -> list[OutboxRecord]:
        with self._lock:
            records = [self._slots[s].record for s in sorted(self._slots) if s > after_seq]
        if types:
            records = [r for r in records if r.type in types]
        return records[-limit:] if limit else []

    def close(self) -> None:
        return None


def outbox_from_url(url: str) -> Outbox:
    """`sqlite:///relative.db` or `sqlite:////absolute.db` (a durable file), a PostgreSQL schema
    `postgresql://host:port/dbname?schema=NAME` (shared by relays on several hosts), or `memory://`
    (also written `memory:` or `none`: the bounded in-memory queue)."""
    text = url.strip()
    if text in ("memory:", "none", ""):
        return MemoryOutbox()
    address = StoreURL.parse(text, what="outbox")
    if address.scheme == "memory":
        address.check_options((), what="memory outbox")
        return MemoryOutbox()
    if address.scheme == "sqlite":
        from .outbox_sqlite import SqliteOutbox

        address.check_options((), what="sqlite outbox")
        return SqliteOutbox(address.sqlite_path())
    if address.is_postgres:
        from .outbox_postgres import PostgresOutbox

        return PostgresOutbox(address)
    raise EventError(f"unsupported outbox address `{address}`: use `sqlite:///relative.db`, "
                     "`sqlite:////absolute.db`, `postgresql://host:port/dbname?schema=NAME` or `memory://`")
