"""The outbox table of the PostgreSQL approval store, the twin of `outbox_sqlite`'s table, and
`PostgresOutbox`, the relay's side of it (`outbox = "postgresql://..."`).

A store appends an event inside its own transaction (a consume and its `ir.approval_consumed`
commit together or not at all); the relay drains the table through `sources.PostgresSource`,
reading after the last `seq` it imported. For that cursor to miss nothing, sequence numbers must
become visible in order: each append first takes a transaction-level advisory lock, so appends
(and the commits that follow them) are serialised and a lower `seq` never commits after a higher one.
"""

from __future__ import annotations

import logging
import os
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from ..errors import EventError, StoreError
from ..storage import StoreURL
from ..storage.migrations import (
    Component,
    Step,
    check,
    parse_auto_migrate,
    postgres_versions,
    upgrade_postgres,
)
from ..storage.postgres_client import open_pool, postgres_schema, quoted
from . import leases_postgres
from .envelope import Event, format_timestamp
from .outbox import Claim, OutboxRecord, SinkBacklog

__all__ = [
    "MIGRATION_LOCK",
    "OUTBOX_SCHEMA",
    "PG_OUTBOX_COMPONENT",
    "PG_OUTBOX_COMPONENTS",
    "PG_RELAY_COMPONENT",
    "PostgresOutbox",
    "append_event_in_transaction",
    "append_lock_key",
]

OUTBOX_SCHEMA = """
CREATE TABLE IF NOT EXISTS irgov_outbox (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id TEXT NOT NULL UNIQUE,
    tenant_id TEXT,
    type TEXT NOT NULL,
    critical BOOLEAN NOT NULL,
    body TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS irgov_outbox_tenant ON irgov_outbox (tenant_id, seq);
CREATE INDEX IF NOT EXISTS irgov_outbox_created ON irgov_outbox (created_at);
"""


def append_lock_key(schema: str) -> int:
    """The advisory lock that orders the appends to one schema's outbox."""
    return zlib.crc32(f"irgov_outbox:{schema}".encode())


def append_event_in_transaction(conn: Any, schema: str, event: Event) -> None:
    """Insert `event` on `conn` without committing: the caller's transaction decides. A second
    append of the same event id is ignored, so retries stay idempotent."""
    conn.execute("SELECT pg_advisory_xact_lock(%s)", (append_lock_key(schema),))
    conn.execute(
        "INSERT INTO irgov_outbox (event_id, tenant_id, type, critical, body, created_at) "
        "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (event_id) DO NOTHING",
        (event.id, event.tenant_id, event.type, bool(event.critical), event.to_json(),
         format_timestamp(event.timestamp)),
    )


#: serialises schema changes between processes starting at once (CREATE ... IF NOT EXISTS races);
#: the approval store's migrations take the same lock
MIGRATION_LOCK = 0x6972676F
#: the outbox table as migration steps (storage.migrations), shared with the approval store's schema
PG_OUTBOX_COMPONENT = Component("outbox", (
    Step(1, "outbox table and its indexes", OUTBOX_SCHEMA),
))
#: the relay's own tables: created by the first relay that uses the schema as its outbox
PG_RELAY_COMPONENT = Component("relay", (
    Step(1, "delivery marks and source cursors", leases_postgres.DELIVERY_SCHEMA),
    Step(2, "relay leases per (sink, tenant) and relay presence per sink", leases_postgres.LEASE_SCHEMA),
))
PG_OUTBOX_COMPONENTS = (PG_OUTBOX_COMPONENT, PG_RELAY_COMPONENT)
#: delivery marks between two refreshes of the outbox tables' statistics (`_count_marks`)
_ANALYZE_EVERY = 2000
logger = logging.getLogger(__name__)


class PostgresOutbox:
    """The outbox of one PostgreSQL schema, the relay's side: the table the store appends to in its
    transactions, with per-sink delivery marks, source cursors and relay leases
    (`leases_postgres`), so relays on several hosts share it. One pool per process."""

    durable = True

    def __init__(self, url: str | StoreURL, *, upgrade: bool = False,
                 progress: Callable[[str, Step], None] | None = None) -> None:
        self.address = StoreURL.parse(url, what="outbox")
        try:
            self.schema = postgres_schema(self.address, what="postgresql outbox")
            self.auto_migrate = upgrade or parse_auto_migrate(self.address.options, default=False,
                                                              what="postgresql outbox")
        except StoreError as exc:
            raise EventError(str(exc)) from None
        self.url = str(self.address)
        #: the key `sources.PostgresSource` gives this schema: the bus does not import it into itself
        self.source_key = f"{self.address.scheme}://{self.address.host}:{self.address.port}/" \
                          f"{self.address.database_name}?schema={self.schema}"
        self._pid = os.getpid()
        self._inherited: list[Any] = []
        self._marks = _ANALYZE_EVERY  # statistics refreshed at the first marks of this process
        try:
            self._pool = open_pool(self.address, what="postgresql outbox")
        except StoreError as exc:
            raise EventError(str(exc)) from None
        try:
            self._migrate(progress)
        except StoreError as exc:
            self._pool.close()
            raise EventError(str(exc)) from None
        except BaseException:
            self._pool.close()
            raise

    @contextmanager
    def _transaction(self, what: str) -> Iterator[Any]:
        import psycopg

        if os.getpid() != self._pid:  # a forked child opens its own pool (see the approval store)
            self._pid = os.getpid()
            self._inherited.append(self._pool)
            self._pool = open_pool(self.address, what="postgresql outbox")
        try:
            with self._pool.connection() as conn, conn.transaction():
                yield conn
        except psycopg.Error as exc:
            text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise EventError(f"postgresql outbox `{self.address}`: cannot {what}: {text}") from None

    def _migrate(self, progress: Callable[[str, Step], None] | None) -> None:
        """A component not there yet is created (the relay's tables, on a schema an approval store
        made); one that is older is upgraded only with `auto_migrate=true` or `upgrade`, as the
        store's are; a newer one is refused."""
        with self._transaction("read the schema version") as conn:
            found = postgres_versions(conn, self.schema)
        present = [c for c in PG_OUTBOX_COMPONENTS if found.get(c.name)]
        check(f"postgresql outbox `{self.address}`", present, found, upgrade_allowed=self.auto_migrate,
              setting="`auto_migrate=true` on the outbox's address")
        if all(found.get(c.name, 0) == c.latest for c in PG_OUTBOX_COMPONENTS):
            return

        def prepare(conn: Any) -> None:
            conn.execute(f"CREATE SCHEMA IF NOT EXISTS {quoted(self.schema)}")

        try:
            upgrade_postgres(lambda: self._transaction("upgrade the schema"), PG_OUTBOX_COMPONENTS,
                             lock_key=MIGRATION_LOCK, prepare=prepare, progress=progress)
        except StoreError as exc:
            raise EventError(str(exc)) from None

    # -- writing -----------------------------------------------------------------------------

    def append(self, event: Event) -> bool:
        with self._transaction("append an event") as conn:
            append_event_in_transaction(conn, self.schema, event)
        return True

    def import_events(self, source: str, events: Iterable[Event], cursor: str) -> int:
        added = 0
        with self._transaction("import events") as conn:
            for event in events:
                before = conn.execute("SELECT 1 FROM irgov_outbox WHERE event_id = %s", (event.id,)).fetchone()
                if before is None:
                    append_event_in_transaction(conn, self.schema, event)
                    added += 1
            conn.execute("INSERT INTO irgov_outbox_source (source, cursor) VALUES (%s, %s) "
                         "ON CONFLICT (source) DO UPDATE SET cursor = excluded.cursor", (source, cursor))
        return added

    def source_cursor(self, source: str) -> str | None:
        with self._transaction("read a source cursor") as conn:
            row = conn.execute("SELECT cursor FROM irgov_outbox_source WHERE source = %s", (source,)).fetchone()
        return None if row is None else str(row[0])

    # -- delivery ----------------------------------------------------------------------------

    def pending(self, sink: str, after_seq: int, limit: int) -> list[OutboxRecord]:
        with self._transaction("read pending events") as conn:
            rows = conn.execute(
                f"SELECT {leases_postgres.RECORD_COLUMNS}, d.attempts, d.next_attempt_at FROM irgov_outbox o "
                "LEFT JOIN irgov_outbox_delivery d ON d.sink = %s AND d.event_id = o.event_id "
                "WHERE o.seq > %s AND d.delivered_at IS NULL ORDER BY o.seq LIMIT %s", (sink, after_seq, limit),
            ).fetchall()
        return [leases_postgres.record(r) for r in rows]

    def mark_delivered(self, sink: str, event_ids: Sequence[str]) -> None:
        with self._transaction("mark events delivered") as conn:
            leases_postgres.mark_delivered_in_transaction(conn, sink, event_ids, _now())

    def mark_failed(self, sink: str, event_id: str, error: str, next_attempt_at: float) -> None:
        with self._transaction("record a failed delivery") as conn:
            conn.execute(
                "INSERT INTO irgov_outbox_delivery (sink, event_id, attempts, next_attempt_at, last_error) "
                "VALUES (%s, %s, 1, %s, %s) ON CONFLICT (sink, event_id) DO UPDATE SET "
                "attempts = irgov_outbox_delivery.attempts + 1, next_attempt_at = excluded.next_attempt_at, "
                "last_error = excluded.last_error", (sink, event_id, next_attempt_at, error[:500]))

    def claim(self, sink: str, owner: str, after_seq: int, limit: int, lease_seconds: float) -> Claim:
        with self._transaction("look for pending events") as conn:
            low, waiting = leases_postgres.floor(conn, sink, after_seq)
        if not waiting:  # an idle relay writes nothing
            return Claim([], frozenset(), low)
        with self._transaction("claim events") as conn:
            return leases_postgres.claim(conn, sink, owner, after_seq, limit, lease_seconds)

    def renew(self, sink: str, owner: str, delivered: Sequence[str], lease_seconds: float) -> frozenset[str]:
        with self._transaction("renew leases") as conn:
            leases_postgres.mark_delivered_in_transaction(conn, sink, delivered, _now())
            held = leases_postgres.renew(conn, sink, owner, lease_seconds)
        self._count_marks(len(delivered))
        return held

    def release(self, sink: str, owner: str, delivered: Sequence[str]) -> None:
        with self._transaction("release leases") as conn:  # the marks commit with the release
            leases_postgres.mark_delivered_in_transaction(conn, sink, delivered, _now())
            leases_postgres.release(conn, sink, owner)
        self._count_marks(len(delivered))

    def _count_marks(self, count: int) -> None:
        """Refresh the planner's statistics of the outbox tables after every few thousand marks.
        Autovacuum analyses them a minute or more after a burst; until then the planner takes the
        fresh delivery table for a handful of rows and joins it by scanning it for every event,
        which slows a relay draining a burst a hundredfold. Best effort: a role that may not
        ANALYZE leaves it to autovacuum."""
        self._marks += count
        if self._marks < _ANALYZE_EVERY:
            return
        self._marks = 0
        try:
            with self._transaction("analyze the outbox") as conn:
                conn.execute("ANALYZE irgov_outbox, irgov_outbox_delivery")
        except EventError as exc:
            logger.debug("outbox statistics not refreshed: %s", exc)

    def retire(self, owner: str) -> None:
        with self._transaction("retire a relay") as conn:
            leases_postgres.retire(conn, owner)

    # -- inspection and housekeeping ---------------------------------------------------------

    def backlog(self, sinks: Sequence[str]) -> list[SinkBacklog]:
        result: list[SinkBacklog] = []
        with self._transaction("read the backlog") as conn:
            for sink in sinks:
                pending, oldest, failing = conn.execute(
                    "SELECT COUNT(*), MIN(o.created_at), COUNT(*) FILTER (WHERE d.attempts > 0) FROM irgov_outbox o "
                    "LEFT JOIN irgov_outbox_delivery d ON d.sink = %s AND d.event_id = o.event_id "
                    "WHERE d.delivered_at IS NULL", (sink,)).fetchone()
                delivered, failed_attempts = conn.execute(
                    "SELECT COUNT(*) FILTER (WHERE delivered_at IS NOT NULL), COALESCE(SUM(CASE WHEN delivered_at "
                    "IS NOT NULL THEN attempts - 1 ELSE attempts END), 0) FROM irgov_outbox_delivery WHERE sink = %s",
                    (sink,)).fetchone()
                last = conn.execute(
                    "SELECT last_error FROM irgov_outbox_delivery WHERE sink = %s AND delivered_at IS NULL "
                    "AND last_error IS NOT NULL ORDER BY next_attempt_at DESC LIMIT 1", (sink,)).fetchone()
                result.append(SinkBacklog(sink=sink, pending=int(pending), oldest_created_at=oldest,
                                          failing=int(failing or 0), delivered=int(delivered or 0),
                                          failed_attempts=int(failed_attempts or 0),
                                          last_error=None if last is None else str(last[0])))
        return result

    def purge(self, sinks: Sequence[str], older_than: datetime) -> int:
        """Delete events created before `older_than` that every sink in `sinks` has received."""
        names = sorted(set(sinks))
        with self._transaction("purge delivered events") as conn:
            rows = conn.execute(
                "DELETE FROM irgov_outbox o WHERE o.created_at < %s AND %s = (SELECT COUNT(*) FROM "
                "irgov_outbox_delivery d WHERE d.event_id = o.event_id AND d.delivered_at IS NOT NULL "
                "AND d.sink = ANY(%s)) RETURNING o.event_id", (format_timestamp(older_than), len(names), names),
            ).fetchall()
            ids = [str(r[0]) for r in rows]
            conn.execute("DELETE FROM irgov_outbox_delivery WHERE event_id = ANY(%s)", (ids,))
        return len(ids)

    def reset_deliveries(self, since: datetime, sinks: Sequence[str] | None = None) -> int:
        with self._transaction("reset deliveries") as conn:
            cur = conn.execute(
                "DELETE FROM irgov_outbox_delivery WHERE event_id IN (SELECT event_id FROM irgov_outbox "
                "WHERE created_at >= %s) AND (%s::text[] IS NULL OR sink = ANY(%s::text[]))",
                (format_timestamp(since), list(sinks) if sinks else None, list(sinks) if sinks else None))
            return int(cur.rowcount)

    def recent(self, limit: int, types: Sequence[str] = (), after_seq: int = 0) -> list[OutboxRecord]:
        with self._transaction("read recent events") as conn:
            rows = conn.execute(
                f"SELECT {leases_postgres.RECORD_COLUMNS} FROM irgov_outbox o WHERE o.seq > %s "
                "AND (%s::text[] IS NULL OR o.type = ANY(%s::text[])) ORDER BY o.seq DESC LIMIT %s",
                (after_seq, list(types) or None, list(types) or None, limit)).fetchall()
        return [leases_postgres.record(r) for r in reversed(rows)]

    def count(self) -> int:
        with self._transaction("count events") as conn:
            return int(conn.execute("SELECT COUNT(*) FROM irgov_outbox").fetchone()[0])

    def close(self) -> None:
        self._pool.close()


def _now() -> str:
    return format_timestamp(datetime.now(UTC))
