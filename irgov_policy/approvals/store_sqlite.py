"""The SQLite store: the embedded default for approvals that must survive a restart.

WAL with `synchronous=FULL` (the ledger's decision rows alone commit with `NORMAL`), one
connection per thread and per process, and every change inside `BEGIN IMMEDIATE`. Consumption is a single conditional `UPDATE ... WHERE status = 'pending' AND
expires_us > ?` whose row count decides; the `ir.approval_consumed` event is appended to the
outbox table of the same database in the same transaction, so both commit or neither does.
A trigger refuses any status change out of a finished state, whatever code runs the update.
The ledger's tables live in the same database, so `grant` claims the request, inserts its
approval and appends `ir.approval_created` in one transaction too.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..errors import StoreError
from ..events.envelope import Event, format_timestamp
from ..events.outbox_sqlite import append_event_in_transaction
from ..storage import StoreURL, make_private_file
from ..storage.group_commit import GroupCommitWriter
from ..storage.migrations import check, sqlite_versions, upgrade_sqlite
from ..storage.timeouts import DEFAULT_STORE_TIMEOUT, check_store_timeout, sqlite_busy, timed_out
from .ledger_records import ApprovalRequest, Ledger
from .ledger_sqlite import (
    DecisionRow,
    SQLiteLedger,
    claim_for_grant,
    purge_ledger,
    repair_store,
    request_in,
    revoke_in,
    write_decisions,
)
from .records import (
    ApprovalRecord,
    ApprovalStatus,
    ConsumeOutcome,
    ConsumeReason,
    decode_ttl,
    encode_ttl,
    from_us,
)
from .schema_sqlite import SQLITE_COMPONENTS
from .store import check_replay, decide_consume, decode_cursor, encode_cursor, outcome

__all__ = ["SCHEMA_VERSION", "SQLiteApprovalStore"]

logger = logging.getLogger(__name__)

#: the approvals component's version this code writes (schema_sqlite has every component's steps)
SCHEMA_VERSION = SQLITE_COMPONENTS[0].latest

_COLUMNS = ("approval_id", "tenant_id", "ir_hash", "token_kid", "token_digest", "status", "ttl_seconds",
            "created_us", "expires_us", "created_by", "reason", "consumed_us", "consumed_by", "revoked_us",
            "revoked_by", "revoke_reason", "expired_us", "finished_us", "mismatches", "correlation_id")
_SELECT = "SELECT " + ", ".join(_COLUMNS) + " FROM irgov_approvals"


def _row_to_record(row: Sequence[Any]) -> ApprovalRecord:
    values = dict(zip(_COLUMNS, row, strict=True))
    values["status"] = ApprovalStatus(values["status"])
    values["ttl_seconds"] = decode_ttl(values["ttl_seconds"])
    return ApprovalRecord(**values)


def _record_values(record: ApprovalRecord) -> tuple[Any, ...]:
    values = []
    for column in _COLUMNS:
        value = getattr(record, column)
        if column == "status":
            value = value.value
        elif column == "ttl_seconds":
            value = encode_ttl(value)
        values.append(value)
    return tuple(values)


class SQLiteApprovalStore:
    def __init__(self, path: str | os.PathLike[str], *, auto_migrate: bool = True,
                 timeout: float = DEFAULT_STORE_TIMEOUT) -> None:
        """`auto_migrate` (the address option, on by default for this embedded store) upgrades an
        older schema at start-up; off, an older schema is refused until `irgov db upgrade`."""
        self.path = Path(path).resolve()
        self.auto_migrate = auto_migrate
        #: the busy timeout: how long a write waits for another connection's lock (`store_timeout`)
        self.timeout = check_store_timeout(timeout, what="sqlite store")
        self.outbox_url: str | None = StoreURL.for_sqlite_file(self.path).text
        self._local = threading.local()
        self._all_lock = threading.Lock()
        self._all: list[sqlite3.Connection] = []
        self._pid = os.getpid()
        try:
            make_private_file(self.path)
        except OSError as exc:
            raise StoreError(f"cannot create the directory of `{self.path}`: {exc.strerror or exc}") from None
        self._migrate()
        # Decision rows are grouped into shared commits (ledger_sqlite.SQLiteLedger says when).
        self._decisions: GroupCommitWriter[DecisionRow] = GroupCommitWriter(
            self._writer_connection, write_batch=write_decisions, name=str(self.path), error=StoreError,
            what="decisions")
        self.ledger: Ledger = SQLiteLedger(self._write, self._read, str(self.path), self._decisions, self.timeout)

    def __repr__(self) -> str:
        return f"SQLiteApprovalStore({str(self.path)!r})"

    # -- connections -------------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        try:
            # Autocommit mode: transactions are opened explicitly with BEGIN IMMEDIATE.
            # check_same_thread=False only so that close() can close every thread's connection;
            # each connection is still used by the one thread that opened it.
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False,
                                   timeout=self.timeout)
            conn.execute(f"PRAGMA busy_timeout = {max(1, round(self.timeout * 1000))}")
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise StoreError(f"sqlite database `{self.path}` refused WAL mode (got `{mode}`)")
            conn.execute("PRAGMA synchronous = FULL")
        except sqlite3.Error as exc:
            if sqlite_busy(exc):
                raise timed_out("approval store", "sqlite", self.timeout, "open its database") from None
            raise StoreError(f"cannot open sqlite database `{self.path}`: {exc}") from None
        with self._all_lock:
            self._all.append(conn)
        return conn

    def _writer_connection(self) -> sqlite3.Connection:
        """The decisions writer's own connection (it sets its own `synchronous`)."""
        try:
            conn = sqlite3.connect(self.path, isolation_level=None, timeout=self.timeout)
            conn.execute(f"PRAGMA busy_timeout = {max(1, round(self.timeout * 1000))}")
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open sqlite database `{self.path}`: {exc}") from None
        return conn

    def _conn(self) -> sqlite3.Connection:
        if os.getpid() != self._pid:
            # A forked child must not share its parent's connections: open its own.
            self._local = threading.local()
            with self._all_lock:
                self._all = []
            self._pid = os.getpid()
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            self._local.conn = conn
        return conn

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One `BEGIN IMMEDIATE` transaction, committed with `synchronous=FULL`."""
        conn = self._conn()
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            if sqlite_busy(exc):
                # Another connection (an operator's shell, a stuck process) holds the write lock.
                logger.error("sqlite database %s: write-locked by another connection for %g s", self.path,
                             self.timeout)
                raise timed_out("approval store", "sqlite", self.timeout, "begin a transaction") from None
            raise StoreError(f"sqlite database `{self.path}`: cannot begin a transaction: {exc}") from None
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        else:
            try:
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise StoreError(f"sqlite database `{self.path}`: commit failed: {exc}") from None

    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        try:
            return self._conn().execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            if sqlite_busy(exc):
                raise timed_out("approval store", "sqlite", self.timeout, "read") from None
            raise StoreError(f"sqlite database `{self.path}`: {exc}") from None

    def _migrate(self) -> None:
        """Check the schema's versions and apply the missing steps (schema_sqlite), each in its
        own transaction; a newer schema, or an older one without `auto_migrate`, is refused."""
        where = f"sqlite database `{self.path}`"
        try:
            conn = self._conn()
            if check(where, SQLITE_COMPONENTS, sqlite_versions(conn), upgrade_allowed=self.auto_migrate,
                     setting="`auto_migrate=true` on the store's address"):
                for component, version in upgrade_sqlite(conn, SQLITE_COMPONENTS):
                    logger.info("%s: %s schema upgraded to version %d", where, component, version)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot prepare {where}: {exc}") from None

    # -- the store interface -----------------------------------------------------------------

    def insert(self, record: ApprovalRecord) -> None:
        try:
            with self._write() as conn:
                self._insert(conn, record)
        except sqlite3.IntegrityError:
            raise StoreError(f"approval `{record.approval_id}` already exists") from None
        except sqlite3.Error as exc:
            raise StoreError(f"sqlite database `{self.path}`: cannot insert an approval: {exc}") from None

    @staticmethod
    def _insert(conn: sqlite3.Connection, record: ApprovalRecord) -> None:
        conn.execute(f"INSERT INTO irgov_approvals ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' for _ in _COLUMNS)})",
                     _record_values(record))

    def grant(self, request_id: str, *, tenant_id: str, granted_by: str, granted_us: int,
              record: ApprovalRecord, event: Event, delivery: str = "response",
              sealed_token: str | None = None) -> ApprovalRequest | None:
        try:
            with self._write() as conn:
                claimed = claim_for_grant(conn, request_id, tenant_id=tenant_id, granted_by=granted_by,
                                          granted_us=granted_us, approval_id=record.approval_id, delivery=delivery,
                                          sealed_token=sealed_token)
                if claimed is None:
                    return None
                self._insert(conn, record)
                append_event_in_transaction(conn, event)
                return claimed
        except sqlite3.IntegrityError:
            raise StoreError(f"approval `{record.approval_id}` already exists") from None
        except sqlite3.Error as exc:
            raise StoreError(f"sqlite database `{self.path}`: cannot grant an approval request: {exc}") from None

    def repair(self) -> int:
        """Import the previous layout's ledger file once, then put right what a crash between its
        two writes left (ledger_sqlite.repair_store); each repair is logged."""
        return repair_store(self.path, self._write)

    def revoke_request(self, request_id: str, *, tenant_id: str, now_us: int, by: str | None,
                       reason: str | None) -> tuple[ApprovalRequest | None, ApprovalRecord | None]:
        try:
            with self._write() as conn:
                request = request_in(conn, request_id)
                if request is None or request.tenant_id != tenant_id:
                    return None, None
                record = None
                if request.approval_id is not None:
                    conn.execute(
                        "UPDATE irgov_approvals SET status = 'revoked', revoked_us = ?, revoked_by = ?, "
                        "revoke_reason = ?, finished_us = ? WHERE approval_id = ? AND status = 'pending' "
                        "AND expires_us > ?", (now_us, by, reason, now_us, request.approval_id, now_us))
                    row = conn.execute(_SELECT + " WHERE approval_id = ?", (request.approval_id,)).fetchone()
                    record = _row_to_record(row) if row else None
                    if record is not None and record.status is not ApprovalStatus.REVOKED:
                        return request, record  # consumed or expired: the request stays as it is
                return revoke_in(conn, request, now_us=now_us, by=by, reason=reason), record
        except sqlite3.Error as exc:
            raise StoreError(f"sqlite database `{self.path}`: cannot revoke an approval request: {exc}") from None

    def get(self, approval_id: str) -> ApprovalRecord | None:
        rows = self._read(_SELECT + " WHERE approval_id = ?", (approval_id,))
        return _row_to_record(rows[0]) if rows else None

    def bound_consume(self, tenant_id: str, idempotency_key: str) -> tuple[ApprovalRecord, str | None] | None:
        rows = self._read(_SELECT.replace(" FROM", ", consume_answer FROM", 1)
                          + " WHERE tenant_id = ? AND consume_key = ?", (tenant_id, idempotency_key))
        return (_row_to_record(rows[0][:-1]), rows[0][-1]) if rows else None

    def find_by_digests(self, digests: Sequence[str]) -> ApprovalRecord | None:
        if not digests:
            return None
        marks = ", ".join("?" for _ in digests)
        rows = self._read(_SELECT + f" WHERE token_digest IN ({marks})", tuple(digests))
        return _row_to_record(rows[0]) if rows else None

    def consume(self, approval_id: str, *, tenant_id: str, ir_hash: str, now_us: int,
                consumed_by: str | None, event: Event, max_mismatches: int,
                idempotency_key: str | None = None, answer: str | None = None) -> ConsumeOutcome:
        try:
            with self._write() as conn:
                if idempotency_key is not None:
                    # Under the write lock: a key bound by an earlier consume answers this one.
                    bound = conn.execute(_SELECT + " WHERE tenant_id = ? AND consume_key = ?",
                                         (tenant_id, idempotency_key)).fetchone()
                    if bound is not None:
                        return check_replay(idempotency_key, _row_to_record(bound), approval_id=approval_id,
                                            consumed_by=consumed_by, ir_hash=ir_hash)
                # The key (and the gate's answer) is bound in the consume's own transaction: a
                # crash after the commit and before the answer leaves a retry its success to replay.
                cursor = conn.execute(
                    "UPDATE irgov_approvals SET status = 'consumed', consumed_us = ?, consumed_by = ?, "
                    "finished_us = ?, consume_key = ?, consume_answer = ? WHERE approval_id = ? AND tenant_id = ? "
                    "AND ir_hash = ? AND status = 'pending' AND expires_us > ?",
                    (now_us, consumed_by, now_us, idempotency_key, None if idempotency_key is None else answer,
                     approval_id, tenant_id, ir_hash, now_us),
                )
                if cursor.rowcount == 1:
                    append_event_in_transaction(conn, event)
                    row = conn.execute(_SELECT + " WHERE approval_id = ?", (approval_id,)).fetchone()
                    return ConsumeOutcome(None, _row_to_record(row))
                # Not consumable: say why, under the same write lock, and record what follows
                # from it (a first expiry, a counted mismatch, a revocation).
                row = conn.execute(_SELECT + " WHERE approval_id = ?", (approval_id,)).fetchone()
                if row is None:
                    return ConsumeOutcome(ConsumeReason.TOKEN_NOT_FOUND, None)
                before = _row_to_record(row)
                decision = decide_consume(before, tenant_id=tenant_id, ir_hash=ir_hash, now_us=now_us,
                                          consumed_by=consumed_by, max_mismatches=max_mismatches)
                if decision[0] is None:  # cannot happen: the conditional update would have matched
                    raise StoreError(f"approval `{approval_id}` changed during its consumption")
                if decision[1] != before:
                    self._update(conn, decision[1])
                return outcome(decision)
        except sqlite3.Error as exc:
            raise StoreError(f"sqlite database `{self.path}`: cannot consume an approval: {exc}") from None

    def _update(self, conn: sqlite3.Connection, record: ApprovalRecord) -> None:
        columns = [c for c in _COLUMNS if c != "approval_id"]
        values = dict(zip(_COLUMNS, _record_values(record), strict=True))
        conn.execute(
            "UPDATE irgov_approvals SET " + ", ".join(f"{c} = ?" for c in columns) + " WHERE approval_id = ?",
            (*(values[c] for c in columns), record.approval_id),
        )

    def expire(self, approval_id: str, now_us: int) -> tuple[ApprovalRecord | None, bool]:
        try:
            with self._write() as conn:
                changed = conn.execute(
                    "UPDATE irgov_approvals SET status = 'expired', expired_us = expires_us, finished_us = expires_us "
                    "WHERE approval_id = ? AND status = 'pending' AND expires_us <= ?",
                    (approval_id, now_us),
                ).rowcount == 1
                row = conn.execute(_SELECT + " WHERE approval_id = ?", (approval_id,)).fetchone()
        except sqlite3.Error as exc:
            raise StoreError(f"sqlite database `{self.path}`: cannot expire an approval: {exc}") from None
        return (_row_to_record(row) if row else None), changed

    def revoke(self, approval_id: str, *, now_us: int, by: str | None,
               reason: str | None) -> tuple[ApprovalRecord | None, bool]:
        try:
            with self._write() as conn:
                changed = conn.execute(
                    "UPDATE irgov_approvals SET status = 'revoked', revoked_us = ?, revoked_by = ?, "
                    "revoke_reason = ?, finished_us = ? WHERE approval_id = ? AND status = 'pending' "
                    "AND expires_us > ?",
                    (now_us, by, reason, now_us, approval_id, now_us),
                ).rowcount == 1
                row = conn.execute(_SELECT + " WHERE approval_id = ?", (approval_id,)).fetchone()
        except sqlite3.Error as exc:
            raise StoreError(f"sqlite database `{self.path}`: cannot revoke an approval: {exc}") from None
        return (_row_to_record(row) if row else None), changed

    def list_page(self, tenant_id: str, *, status: ApprovalStatus | None, limit: int, cursor: str | None,
             now_us: int) -> tuple[list[ApprovalRecord], str | None]:
        where = ["tenant_id = ?"]
        params: list[Any] = [tenant_id]
        if cursor is not None:
            created_us, approval_id = decode_cursor(cursor)
            where.append("(created_us < ? OR (created_us = ? AND approval_id < ?))")
            params += [created_us, created_us, approval_id]
        if status is ApprovalStatus.PENDING:
            where.append("status = 'pending' AND expires_us > ?")
            params.append(now_us)
        elif status is ApprovalStatus.EXPIRED:
            where.append("(status = 'expired' OR (status = 'pending' AND expires_us <= ?))")
            params.append(now_us)
        elif status is not None:
            where.append("status = ?")
            params.append(status.value)
        rows = self._read(
            _SELECT + " WHERE " + " AND ".join(where) + " ORDER BY created_us DESC, approval_id DESC LIMIT ?",
            (*params, limit + 1),
        )
        records = [_row_to_record(r) for r in rows]
        if len(records) > limit:
            return records[:limit], encode_cursor(records[limit - 1])
        return records, None

    def expire_due(self, now_us: int, limit: int) -> list[ApprovalRecord]:
        try:
            with self._write() as conn:
                rows = conn.execute(
                    "UPDATE irgov_approvals SET status = 'expired', expired_us = expires_us, finished_us = expires_us "
                    "WHERE approval_id IN (SELECT approval_id FROM irgov_approvals "
                    "WHERE status = 'pending' AND expires_us <= ? LIMIT ?) "
                    "RETURNING " + ", ".join(_COLUMNS),
                    (now_us, limit),
                ).fetchall()
        except sqlite3.Error as exc:
            raise StoreError(f"sqlite database `{self.path}`: cannot expire approvals: {exc}") from None
        return [_row_to_record(r) for r in rows]

    def purge(self, cutoff_us: int) -> int:
        """Delete approvals finished before `cutoff_us`, ledger rows older than it (ledger_sqlite.
        purge_ledger), and outbox events recorded before it: a
        relay must import them within the retention, or the table would grow forever. When this
        file is also a relay's own outbox (it holds delivery marks), the relay purges it instead,
        and only what every sink has received."""
        try:
            with self._write() as conn:
                removed = int(conn.execute(
                    "DELETE FROM irgov_approvals WHERE status <> 'pending' AND finished_us < ?", (cutoff_us,)
                ).rowcount)
                relay_owned = conn.execute(
                    "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'irgov_outbox_delivery'"
                ).fetchone()
                if relay_owned is None:
                    conn.execute("DELETE FROM irgov_outbox WHERE created_at < ?",
                                 (format_timestamp(from_us(cutoff_us)),))
                forgotten = purge_ledger(conn, cutoff_us)
                if forgotten:
                    logger.info("purged %d ledger rows of %s", forgotten, self.path)
                return removed
        except sqlite3.Error as exc:
            raise StoreError(f"sqlite database `{self.path}`: cannot purge approvals: {exc}") from None

    def close(self) -> None:
        self._decisions.close(timeout=self.timeout)
        with self._all_lock:
            conns, self._all = self._all, []
        for conn in conns:
            try:
                conn.close()
            except sqlite3.Error:
                logger.debug("closing an sqlite connection of %s failed", self.path)
        self._local = threading.local()

