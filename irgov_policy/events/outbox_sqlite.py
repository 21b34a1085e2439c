"""The SQLite outbox table: where events become durable.

Kept apart from the relay so that a store can record an event inside its own transaction
(consuming an approval and recording `ir.approval_consumed` commit together or not at all).

`SqliteOutbox` is the relay's side: the same table plus per-sink delivery marks and source cursors.
Its appends go through a group-commit writer (`storage.group_commit`): a critical event is on disk before
`append` returns, sharing its fsync with every event queued meanwhile; other events are committed
right after, off the caller's path.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

from ..errors import EventError, StoreError
from ..storage import StoreURL, make_private_file
from ..storage.group_commit import GroupCommitWriter, flush_writers_of
from ..storage.migrations import Component, Step, check, sqlite_versions, upgrade_sqlite
from . import leases_sqlite
from .envelope import Event, format_timestamp
from .outbox import Claim, OutboxRecord, SinkBacklog

__all__ = [
    "DELIVERY_SCHEMA",
    "OUTBOX_COMPONENT",
    "OUTBOX_FILE_COMPONENTS",
    "OUTBOX_SCHEMA",
    "RELAY_COMPONENT",
    "SqliteOutbox",
    "append_event_in_transaction",
    "ensure_outbox_schema",
    "outbox_row",
    "sqlite_path_from_url",
]

OUTBOX_SCHEMA = """
CREATE TABLE IF NOT EXISTS irgov_outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL UNIQUE,
    tenant_id TEXT,
    type TEXT NOT NULL,
    critical INTEGER NOT NULL,
    body TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS irgov_outbox_tenant ON irgov_outbox (tenant_id, seq);
"""

INSERT_SQL = ("INSERT OR IGNORE INTO irgov_outbox (event_id, tenant_id, type, critical, body, created_at) "
              "VALUES (?, ?, ?, ?, ?, ?)")

OutboxRow = tuple[str, str | None, str, int, str, str]


def _insert_rows(conn: sqlite3.Connection, rows: list[OutboxRow]) -> None:
    conn.executemany(INSERT_SQL, rows)


def ensure_outbox_schema(conn: sqlite3.Connection) -> None:
    """Create the outbox table when missing (idempotent)."""
    conn.executescript(OUTBOX_SCHEMA)


def outbox_row(event: Event) -> OutboxRow:
    """The column values of `event`'s outbox row."""
    return (event.id, event.tenant_id, event.type, 1 if event.critical else 0, event.to_json(),
            format_timestamp(event.timestamp))


def append_event_in_transaction(conn: sqlite3.Connection, event: Event) -> None:
    """Insert `event` into the outbox on `conn` without committing: the caller's transaction
    decides. A second append of the same event id is ignored, so retries stay idempotent."""
    conn.execute(INSERT_SQL, outbox_row(event))


DELIVERY_SCHEMA = """
CREATE TABLE IF NOT EXISTS irgov_outbox_delivery (
    sink TEXT NOT NULL,
    event_id TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    delivered_at TEXT,
    next_attempt_at REAL,
    last_error TEXT,
    PRIMARY KEY (sink, event_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS irgov_outbox_created ON irgov_outbox (created_at);
CREATE TABLE IF NOT EXISTS irgov_outbox_source (
    source TEXT PRIMARY KEY,
    cursor TEXT NOT NULL
);
"""

#: the outbox table as migration steps (storage.migrations); the approval store's file has it too
OUTBOX_COMPONENT = Component("outbox", (
    Step(1, "outbox table and its tenant index", OUTBOX_SCHEMA),
))
#: the relay's own tables (delivery marks, source cursors), only in a relay's outbox file
RELAY_COMPONENT = Component("relay", (
    Step(1, "delivery marks, source cursors and the outbox's age index", DELIVERY_SCHEMA),
    Step(2, "relay leases per (sink, tenant) and relay presence per sink", leases_sqlite.LEASE_SCHEMA),
))
OUTBOX_FILE_COMPONENTS = (OUTBOX_COMPONENT, RELAY_COMPONENT)

_RECORD_COLUMNS = "o.seq, o.event_id, o.tenant_id, o.type, o.critical, o.body, o.created_at"


def sqlite_path_from_url(url: str) -> str:
    """The file of a `sqlite:///...` address (`StoreURL`'s convention: `sqlite:///rel.db` is
    relative to the working directory, `sqlite:////abs/x.db` absolute)."""
    return str(StoreURL.parse(url, what="outbox").sqlite_path())


def _record(row: Sequence[object], attempts: object = 0, next_at: object = None) -> OutboxRecord:
    return OutboxRecord(
        seq=int(row[0]),  # type: ignore[call-overload]
        event_id=str(row[1]),
        tenant_id=None if row[2] is None else str(row[2]),
        type=str(row[3]),
        critical=bool(row[4]),
        body=str(row[5]),
        created_at=str(row[6]),
        attempts=int(attempts or 0),  # type: ignore[call-overload]
        next_attempt_at=None if next_at is None else float(next_at),  # type: ignore[arg-type]
    )


class SqliteOutbox:
    """The durable outbox in one SQLite file (WAL). `append` hands the event to the group-commit
    writer: a critical event returns once committed with `synchronous=FULL` (concurrent ones
    share the fsync); another returns at once and is committed with `NORMAL` right after (the
    crash window is in `storage.group_commit`). Inside `deferred()`, critical events do not wait either:
    the caller waits once with `flush()`. Each thread gets its own connection for everything else."""

    durable = True

    def __init__(self, path: str | os.PathLike[str], *, busy_timeout_ms: int = 5000) -> None:
        self.path = str(path)
        self.url = StoreURL.for_sqlite_file(self.path).text
        self._busy_timeout_ms = busy_timeout_ms
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._all_lock = threading.Lock()
        self._closed = False
        self._deferring = threading.local()
        self._writer: GroupCommitWriter[OutboxRow] = GroupCommitWriter(
            self._writer_connection, write_batch=_insert_rows, name=os.path.realpath(self.path),
            error=EventError, what="events")
        try:
            make_private_file(Path(self.path))
            conn = self._conn()
            conn.execute("PRAGMA journal_mode=WAL")
            # The embedded outbox upgrades itself at start-up; a newer schema is refused.
            if check(f"outbox `{self.path}`", OUTBOX_FILE_COMPONENTS, sqlite_versions(conn),
                     upgrade_allowed=True, setting="nothing"):
                upgrade_sqlite(conn, OUTBOX_FILE_COMPONENTS)
        except StoreError as exc:
            self.close()
            raise EventError(str(exc)) from None
        except (OSError, sqlite3.Error) as exc:
            self.close()
            raise EventError(f"cannot open the outbox `{self.path}`: {exc}") from exc

    @classmethod
    def from_url(cls, url: str) -> SqliteOutbox:
        return cls(sqlite_path_from_url(url))

    def same_file(self, path: str) -> bool:
        try:
            return os.path.samefile(self.path, path)
        except OSError:
            return False

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            if self._closed:
                raise EventError(f"the outbox `{self.path}` is closed")
            conn = sqlite3.connect(self.path, timeout=self._busy_timeout_ms / 1000, check_same_thread=False,
                                   isolation_level=None)
            conn.execute(f"PRAGMA busy_timeout={int(self._busy_timeout_ms)}")
            conn.execute("PRAGMA synchronous=NORMAL")
            self._local.conn = conn
            self._local.sync_full = False
            with self._all_lock:
                self._all.append(conn)
        return conn

    def _writer_connection(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=self._busy_timeout_ms / 1000, isolation_level=None)
        conn.execute(f"PRAGMA busy_timeout={int(self._busy_timeout_ms)}")
        return conn

    def set_commit_callback(self, callback: Callable[[], None] | None) -> None:
        """`callback` runs on the writer thread after each commit (the bus wakes its relay)."""
        self._writer.on_commit = callback

    @contextlib.contextmanager
    def deferred(self, *, urgent: bool = False) -> Iterator[None]:
        """Appends on this thread do not wait, critical ones included, until the block ends; then
        `flush()` waits once for all of them (a command line batch commits per chunk this way).
        With `urgent`, the writer commits a critical one at once instead of letting the chunk
        gather (a single decision whose caller waits right after its ledger write)."""
        before = getattr(self._deferring, "on", False), getattr(self._deferring, "urgent", False)
        self._deferring.on, self._deferring.urgent = True, urgent
        try:
            yield
        finally:
            self._deferring.on, self._deferring.urgent = before

    def flush(self, timeout: float | None = None, *, critical_only: bool = False) -> bool:
        """Wait until every event appended so far is committed (critical ones with
        `synchronous=FULL`; with `critical_only`, only up to the last critical one); False when
        `timeout` seconds passed first."""
        return self._writer.flush(timeout, critical_only=critical_only)

    def _settled(self) -> sqlite3.Connection:
        # Readers in this process see its own appends (through any outbox object on this file), as
        # they did before appends were grouped.
        flush_writers_of(self._writer.name, self._busy_timeout_ms / 1000)
        return self._conn()

    def _set_sync(self, conn: sqlite3.Connection, full: bool) -> None:
        if self._local.sync_full != full:
            conn.execute("PRAGMA synchronous=FULL" if full else "PRAGMA synchronous=NORMAL")
            self._local.sync_full = full

    def append(self, event: Event) -> bool:
        if self._closed:
            raise EventError(f"the outbox `{self.path}` is closed")
        critical = bool(event.critical)
        deferring = getattr(self._deferring, "on", False)
        self._writer.submit(outbox_row(event), critical=critical, wait=critical and not deferring,
                            urgent=critical and deferring and self._deferring.urgent)
        return True

    def import_events(self, source: str, events: Iterable[Event], cursor: str) -> int:
        """Record events read from another outbox and move that source's cursor, atomically:
        a crash between the two can only re-import, and re-imports are ignored by event id."""
        conn = self._conn()
        batch = list(events)
        self._set_sync(conn, any(e.critical for e in batch))
        conn.execute("BEGIN IMMEDIATE")
        try:
            before = conn.total_changes
            for event in batch:
                append_event_in_transaction(conn, event)
            added = conn.total_changes - before
            conn.execute(
                "INSERT INTO irgov_outbox_source (source, cursor) VALUES (?, ?) "
                "ON CONFLICT(source) DO UPDATE SET cursor = excluded.cursor",
                (source, cursor),
            )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return added

    def source_cursor(self, source: str) -> str | None:
        row = self._conn().execute("SELECT cursor FROM irgov_outbox_source WHERE source = ?", (source,)).fetchone()
        return None if row is None else str(row[0])

    def pending(self, sink: str, after_seq: int, limit: int) -> list[OutboxRecord]:
        rows = self._settled().execute(
            f"SELECT {_RECORD_COLUMNS}, d.attempts, d.next_attempt_at FROM irgov_outbox o "
            "LEFT JOIN irgov_outbox_delivery d ON d.sink = ? AND d.event_id = o.event_id "
            "WHERE o.seq > ? AND d.delivered_at IS NULL ORDER BY o.seq LIMIT ?",
            (sink, after_seq, limit),
        ).fetchall()
        return [_record(r[:7], r[7], r[8]) for r in rows]

    def mark_delivered(self, sink: str, event_ids: Sequence[str]) -> None:
        if not event_ids:
            return
        conn = self._conn()
        self._set_sync(conn, False)
        conn.execute("BEGIN IMMEDIATE")
        try:
            leases_sqlite.mark_delivered_in_transaction(conn, sink, event_ids, format_timestamp(datetime.now(UTC)))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    # -- leases: several relays on this file (`leases_sqlite`) --------------------------------

    def claim(self, sink: str, owner: str, after_seq: int, limit: int, lease_seconds: float) -> Claim:
        conn = self._settled()
        self._set_sync(conn, False)
        return leases_sqlite.claim(conn, sink, owner, after_seq, limit, lease_seconds)

    def renew(self, sink: str, owner: str, delivered: Sequence[str], lease_seconds: float) -> frozenset[str]:
        conn = self._conn()
        self._set_sync(conn, False)
        conn.execute("BEGIN IMMEDIATE")
        try:
            leases_sqlite.mark_delivered_in_transaction(conn, sink, delivered, format_timestamp(datetime.now(UTC)))
            held = leases_sqlite.renew(conn, sink, owner, lease_seconds)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return held

    def release(self, sink: str, owner: str, delivered: Sequence[str]) -> None:
        conn = self._conn()
        self._set_sync(conn, False)
        conn.execute("BEGIN IMMEDIATE")
        try:  # the marks commit with the release: the next holder sees what was delivered
            leases_sqlite.mark_delivered_in_transaction(conn, sink, delivered, format_timestamp(datetime.now(UTC)))
            leases_sqlite.release(conn, sink, owner)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def retire(self, owner: str) -> None:
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            leases_sqlite.retire(conn, owner)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def mark_failed(self, sink: str, event_id: str, error: str, next_attempt_at: float) -> None:
        conn = self._conn()
        self._set_sync(conn, False)
        conn.execute(
            "INSERT INTO irgov_outbox_delivery (sink, event_id, attempts, next_attempt_at, last_error) "
            "VALUES (?, ?, 1, ?, ?) ON CONFLICT(sink, event_id) DO UPDATE SET attempts = attempts + 1, "
            "next_attempt_at = excluded.next_attempt_at, last_error = excluded.last_error",
            (sink, event_id, next_attempt_at, error[:500]),
        )

    def backlog(self, sinks: Sequence[str]) -> list[SinkBacklog]:
        conn = self._settled()
        result: list[SinkBacklog] = []
        for sink in sinks:
            pending, oldest, failing = conn.execute(
                "SELECT COUNT(*), MIN(o.created_at), SUM(CASE WHEN d.attempts > 0 THEN 1 ELSE 0 END) "
                "FROM irgov_outbox o LEFT JOIN irgov_outbox_delivery d "
                "ON d.sink = ? AND d.event_id = o.event_id WHERE d.delivered_at IS NULL",
                (sink,),
            ).fetchone()
            delivered, failed_attempts = conn.execute(
                "SELECT SUM(CASE WHEN delivered_at IS NOT NULL THEN 1 ELSE 0 END), "
                "COALESCE(SUM(CASE WHEN delivered_at IS NOT NULL THEN attempts - 1 ELSE attempts END), 0) "
                "FROM irgov_outbox_delivery WHERE sink = ?",
                (sink,),
            ).fetchone()
            last = conn.execute(
                "SELECT last_error FROM irgov_outbox_delivery WHERE sink = ? AND delivered_at IS NULL "
                "AND last_error IS NOT NULL ORDER BY next_attempt_at DESC LIMIT 1",
                (sink,),
            ).fetchone()
            result.append(
                SinkBacklog(
                    sink=sink,
                    pending=int(pending),
                    oldest_created_at=oldest,
                    failing=int(failing or 0),
                    delivered=int(delivered or 0),
                    failed_attempts=int(failed_attempts or 0),
                    last_error=None if last is None else str(last[0]),
                )
            )
        return result

    def count(self) -> int:
        return int(self._settled().execute("SELECT COUNT(*) FROM irgov_outbox").fetchone()[0])

    def purge(self, sinks: Sequence[str], older_than: datetime) -> int:
        """Delete events created before `older_than` that every sink in `sinks` has received
        (with no sink at all, every such event)."""
        cutoff = format_timestamp(older_than)
        names = sorted(set(sinks))
        marks = ",".join("?" for _ in names) or "NULL"
        conn = self._conn()
        self._set_sync(conn, False)
        conn.execute("BEGIN IMMEDIATE")
        try:
            ids = [
                r[0]
                for r in conn.execute(
                    f"SELECT o.event_id FROM irgov_outbox o WHERE o.created_at < ? AND ? = ("
                    f"SELECT COUNT(*) FROM irgov_outbox_delivery d WHERE d.event_id = o.event_id "
                    f"AND d.delivered_at IS NOT NULL AND d.sink IN ({marks}))",
                    (cutoff, len(names), *names),
                ).fetchall()
            ]
            conn.executemany("DELETE FROM irgov_outbox WHERE event_id = ?", [(i,) for i in ids])
            conn.executemany("DELETE FROM irgov_outbox_delivery WHERE event_id = ?", [(i,) for i in ids])
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return len(ids)

    def reset_deliveries(self, since: datetime, sinks: Sequence[str] | None = None) -> int:
        """Forget delivery marks of events created at or after `since`, so the relay sends them again."""
        cutoff = format_timestamp(since)
        params: list[object] = [cutoff]
        sink_clause = ""
        if sinks:
            sink_clause = " AND sink IN (" + ",".join("?" for _ in sinks) + ")"
            params.extend(sinks)
        conn = self._conn()
        cur = conn.execute(
            "DELETE FROM irgov_outbox_delivery WHERE event_id IN "
            f"(SELECT event_id FROM irgov_outbox WHERE created_at >= ?){sink_clause}",
            params,
        )
        return int(cur.rowcount)

    def recent(self, limit: int, types: Sequence[str] = (), after_seq: int = 0) -> list[OutboxRecord]:
        """The last `limit` events after `after_seq` (of `types` when given), oldest first."""
        params: list[object] = [after_seq]
        clause = ""
        if types:
            clause = " AND o.type IN (" + ",".join("?" for _ in types) + ")"
            params.extend(types)
        params.append(limit)
        rows = self._settled().execute(
            f"SELECT {_RECORD_COLUMNS} FROM irgov_outbox o WHERE o.seq > ?{clause} ORDER BY o.seq DESC LIMIT ?",
            params,
        ).fetchall()
        return [_record(r) for r in reversed(rows)]

    def close(self) -> None:
        """Commit what is still queued (at most the busy timeout), then close every connection."""
        if not self._closed:
            self._writer.close(timeout=max(5.0, self._busy_timeout_ms / 1000))
        self._closed = True
        with self._all_lock:
            conns, self._all = self._all, []
        for conn in conns:
            with contextlib.suppress(sqlite3.Error):  # best effort: the file stays consistent
                conn.close()
        self._local = threading.local()
