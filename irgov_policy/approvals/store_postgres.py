"""The PostgreSQL store: approvals on the database the host already runs as its system of record.

One psycopg pool per store and process; the tables live in the address's `schema`. Consumption
is a single conditional `UPDATE ... WHERE status = 'pending' AND expires_us > %s RETURNING`: under
READ COMMITTED a second consumer waits for the first's row lock, re-reads the row and no longer
matches, so exactly one wins. The `ir.approval_consumed` event goes into the outbox table of the
same schema in the same transaction (`events.outbox_postgres`), and the ledger's tables sit there
too, so `grant` claims the request, inserts its approval and appends its event in one transaction.
A trigger refuses any status change out of a finished state, whatever code runs the update.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from ..errors import IdempotencyConflictError, StoreError
from ..events.envelope import Event, format_timestamp
from ..events.outbox_postgres import append_event_in_transaction
from ..storage import StoreURL
from ..storage.migrations import Step, check, parse_auto_migrate, postgres_versions, upgrade_postgres
from ..storage.postgres_client import open_pool, postgres_schema, quoted
from ..storage.timeouts import DEFAULT_STORE_TIMEOUT, check_store_timeout, timed_out
from .ledger_postgres import (
    PostgresLedger,
    claim_for_grant,
    purge_ledger,
    repair,
    request_in,
    revoke_in,
)
from .ledger_records import ApprovalRequest, Ledger
from .records import (
    ApprovalRecord,
    ApprovalStatus,
    ConsumeOutcome,
    ConsumeReason,
    decode_ttl,
    encode_ttl,
    from_us,
)
from .schema_postgres import MIGRATION_LOCK, POSTGRES_COMPONENTS
from .store import check_replay, decide_consume, decode_cursor, encode_cursor, outcome

__all__ = ["SCHEMA_VERSION", "PostgresApprovalStore"]

logger = logging.getLogger(__name__)

#: the approvals component's version this code writes (schema_postgres has every component's steps)
SCHEMA_VERSION = POSTGRES_COMPONENTS[0].latest

_COLUMNS = ("approval_id", "tenant_id", "ir_hash", "token_kid", "token_digest", "status", "ttl_seconds",
            "created_us", "expires_us", "created_by", "reason", "consumed_us", "consumed_by", "revoked_us",
            "revoked_by", "revoke_reason", "expired_us", "finished_us", "mismatches", "correlation_id")
_SELECT = "SELECT " + ", ".join(_COLUMNS) + " FROM irgov_approvals"
_RETURNING = " RETURNING " + ", ".join(_COLUMNS)


def _row_to_record(row: Sequence[Any]) -> ApprovalRecord:
    values = dict(zip(_COLUMNS, row, strict=True))
    values["status"] = ApprovalStatus(values["status"])
    values["ttl_seconds"] = decode_ttl(values["ttl_seconds"])
    return ApprovalRecord(**values)


def _record_values(record: ApprovalRecord) -> dict[str, Any]:
    values = {column: getattr(record, column) for column in _COLUMNS}
    values["status"] = record.status.value
    values["ttl_seconds"] = encode_ttl(record.ttl_seconds)
    return values


class PostgresApprovalStore:
    def __init__(self, url: str | StoreURL, *, upgrade: bool = False,
                 progress: Callable[[str, Step], None] | None = None,
                 timeout: float = DEFAULT_STORE_TIMEOUT) -> None:
        """An empty schema is created; an older one is upgraded only with the address option
        `auto_migrate=true` (or `upgrade`, what `irgov db upgrade` passes), refused otherwise:
        on a shared database, changing the schema is the operator's step, not a side effect of
        whichever process starts first."""
        self.address = StoreURL.parse(url, what="approval store")
        #: statement, lock and pool-checkout timeout (`store_timeout`): a stalled database is answered 503
        self.timeout = check_store_timeout(timeout, what="postgresql store")
        self.schema = postgres_schema(self.address, what="postgresql store")
        self.auto_migrate = upgrade or parse_auto_migrate(self.address.options, default=False,
                                                          what="postgresql store")
        # The relay drains this schema's outbox table (events.sources.PostgresSource).
        self.outbox_url: str | None = self.address.secret_text()
        self._pid = os.getpid()
        self._inherited: list[Any] = []
        self._pool = open_pool(self.address, what="postgresql store", statement_timeout=self.timeout)
        try:
            self._migrate(progress)
        except BaseException:
            self._pool.close()
            raise
        self.ledger: Ledger = PostgresLedger(self._transaction, str(self.address))

    def __repr__(self) -> str:
        return f"PostgresApprovalStore({str(self.address)!r})"

    # -- connections -------------------------------------------------------------------------

    @contextmanager
    def _transaction(self, what: str) -> Iterator[Any]:
        """One transaction on a pooled connection: committed when the block ends, rolled back
        when it raises; a database error becomes a one-line `StoreError` naming `what`."""
        import psycopg

        if os.getpid() != self._pid:
            # A forked child must not share its parent's connections (nor its pool's threads):
            # it opens its own pool and keeps the inherited one referenced, unused, so that no
            # finaliser of the child closes a connection the parent is still using.
            self._pid = os.getpid()
            self._inherited.append(self._pool)
            self._pool = open_pool(self.address, what="postgresql store", statement_timeout=self.timeout)
        from psycopg_pool import PoolTimeout

        try:
            with self._pool.connection(timeout=self.timeout) as conn, conn.transaction():
                yield conn
        except (PoolTimeout, psycopg.errors.QueryCanceled, psycopg.errors.LockNotAvailable) as exc:
            # A lock held elsewhere, a saturated pool or a slow server: 503, not a held thread.
            logger.error("postgresql store %s: no answer within %g s to `%s`: %s", self.address, self.timeout,
                         what, type(exc).__name__)
            raise timed_out("approval store", "postgresql", self.timeout, what) from None
        except psycopg.Error as exc:
            text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            if isinstance(exc, psycopg.errors.UniqueViolation) \
                    and getattr(exc.diag, "constraint_name", None) == "irgov_approvals_consume_key":
                # Two consumes of different tokens raced with one key: the first one holds it.
                raise IdempotencyConflictError("the idempotency key was used meanwhile to consume another "
                                               "approval token") from None
            if isinstance(exc, psycopg.errors.UniqueViolation) and "irgov_approvals" in text:
                raise StoreError(f"approval already exists: {text}") from None
            raise StoreError(f"postgresql store `{self.address}`: cannot {what}: {text}") from None

    def _migrate(self, progress: Callable[[str, Step], None] | None) -> None:
        where = f"postgresql store `{self.address}`"
        with self._transaction("read the schema version") as conn:
            found = postgres_versions(conn, self.schema)
        if check(where, POSTGRES_COMPONENTS, found, upgrade_allowed=self.auto_migrate,
                 setting="`auto_migrate=true` on the store's address"):
            self.upgrade(progress)

    def upgrade(self, progress: Callable[[str, Step], None] | None = None) -> list[tuple[str, int]]:
        """Apply the missing steps of every component, one transaction each; what was applied."""
        def prepare(conn: Any) -> None:
            conn.execute(f"CREATE SCHEMA IF NOT EXISTS {quoted(self.schema)}")

        applied = upgrade_postgres(lambda: self._transaction("upgrade the schema"), POSTGRES_COMPONENTS,
                                   lock_key=MIGRATION_LOCK, prepare=prepare, progress=progress)
        for component, version in applied:
            logger.info("postgresql store %s: %s schema upgraded to version %d", self.address, component, version)
        return applied

    # -- the store interface -----------------------------------------------------------------

    def insert(self, record: ApprovalRecord) -> None:
        with self._transaction("insert an approval") as conn:
            self._insert(conn, record)

    @staticmethod
    def _insert(conn: Any, record: ApprovalRecord) -> None:
        values = _record_values(record)
        conn.execute(f"INSERT INTO irgov_approvals ({', '.join(_COLUMNS)}) "
                     f"VALUES ({', '.join('%s' for _ in _COLUMNS)})", tuple(values[c] for c in _COLUMNS))

    def grant(self, request_id: str, *, tenant_id: str, granted_by: str, granted_us: int,
              record: ApprovalRecord, event: Event, delivery: str = "response",
              sealed_token: str | None = None) -> ApprovalRequest | None:
        with self._transaction("grant an approval request") as conn:
            claimed = claim_for_grant(conn, request_id, tenant_id=tenant_id, granted_by=granted_by,
                                      granted_us=granted_us, approval_id=record.approval_id, delivery=delivery,
                                      sealed_token=sealed_token)
            if claimed is None:
                return None
            self._insert(conn, record)
            append_event_in_transaction(conn, self.schema, event)
            return claimed

    def repair(self) -> int:
        with self._transaction("repair the ledger") as conn:
            repaired = repair(conn)
        for request_id in repaired:
            logger.warning("approval request %s was granted without an approval: it is requested again",
                           request_id)
        return len(repaired)

    def revoke_request(self, request_id: str, *, tenant_id: str, now_us: int, by: str | None,
                       reason: str | None) -> tuple[ApprovalRequest | None, ApprovalRecord | None]:
        with self._transaction("revoke an approval request") as conn:
            request = request_in(conn, request_id, for_update=True)
            if request is None or request.tenant_id != tenant_id:
                return None, None
            record = None
            if request.approval_id is not None:
                conn.execute(
                    "UPDATE irgov_approvals SET status = 'revoked', revoked_us = %s, revoked_by = %s, "
                    "revoke_reason = %s, finished_us = %s WHERE approval_id = %s AND tenant_id = %s "
                    "AND status = 'pending' AND expires_us > %s",
                    (now_us, by, reason, now_us, request.approval_id, tenant_id, now_us))
                row = conn.execute(_SELECT + " WHERE approval_id = %s", (request.approval_id,)).fetchone()
                record = _row_to_record(row) if row else None
                if record is not None and record.status is not ApprovalStatus.REVOKED:
                    return request, record  # consumed or expired: the request stays as it is
            return revoke_in(conn, request, now_us=now_us, by=by, reason=reason), record

    def get(self, approval_id: str) -> ApprovalRecord | None:
        with self._transaction("read an approval") as conn:
            row = conn.execute(_SELECT + " WHERE approval_id = %s", (approval_id,)).fetchone()
        return _row_to_record(row) if row else None

    def bound_consume(self, tenant_id: str, idempotency_key: str) -> tuple[ApprovalRecord, str | None] | None:
        with self._transaction("find a consume's idempotency key") as conn:
            row = conn.execute(_SELECT.replace(" FROM", ", consume_answer FROM", 1)
                               + " WHERE tenant_id = %s AND consume_key = %s", (tenant_id, idempotency_key)).fetchone()
        return (_row_to_record(row[:-1]), row[-1]) if row else None

    def find_by_digests(self, digests: Sequence[str]) -> ApprovalRecord | None:
        if not digests:
            return None
        with self._transaction("find an approval") as conn:
            row = conn.execute(_SELECT + " WHERE token_digest = ANY(%s) LIMIT 1", (list(digests),)).fetchone()
        return _row_to_record(row) if row else None

    def consume(self, approval_id: str, *, tenant_id: str, ir_hash: str, now_us: int,
                consumed_by: str | None, event: Event, max_mismatches: int,
                idempotency_key: str | None = None, answer: str | None = None) -> ConsumeOutcome:
        def replay() -> ConsumeOutcome | None:
            if idempotency_key is None:
                return None
            bound = conn.execute(_SELECT + " WHERE tenant_id = %s AND consume_key = %s",
                                 (tenant_id, idempotency_key)).fetchone()
            return None if bound is None else check_replay(
                idempotency_key, _row_to_record(bound), approval_id=approval_id, consumed_by=consumed_by,
                ir_hash=ir_hash)

        with self._transaction("consume an approval") as conn:
            replayed = replay()
            if replayed is not None:
                return replayed
            # The key (and the gate's answer) is bound in the consume's own transaction: a crash
            # after the commit and before the answer leaves a retry its success to replay.
            row = conn.execute(
                "UPDATE irgov_approvals SET status = 'consumed', consumed_us = %s, consumed_by = %s, "
                "finished_us = %s, consume_key = %s, consume_answer = %s WHERE approval_id = %s AND tenant_id = %s "
                "AND ir_hash = %s AND status = 'pending' AND expires_us > %s" + _RETURNING,
                (now_us, consumed_by, now_us, idempotency_key, None if idempotency_key is None else answer,
                 approval_id, tenant_id, ir_hash, now_us)).fetchone()
            if row is not None:
                append_event_in_transaction(conn, self.schema, event)
                return ConsumeOutcome(None, _row_to_record(row))
            # A retry racing its own first attempt waited on the row lock and sees it committed.
            replayed = replay()
            if replayed is not None:
                return replayed
            # Not consumable: say why with the row locked, and record what follows from it
            # (a first expiry, a counted mismatch, a revocation).
            row = conn.execute(_SELECT + " WHERE approval_id = %s FOR UPDATE", (approval_id,)).fetchone()
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

    @staticmethod
    def _update(conn: Any, record: ApprovalRecord) -> None:
        columns = [c for c in _COLUMNS if c != "approval_id"]
        values = _record_values(record)
        conn.execute("UPDATE irgov_approvals SET " + ", ".join(f"{c} = %s" for c in columns)
                     + " WHERE approval_id = %s", (*(values[c] for c in columns), record.approval_id))

    def expire(self, approval_id: str, now_us: int) -> tuple[ApprovalRecord | None, bool]:
        with self._transaction("expire an approval") as conn:
            changed = conn.execute(
                "UPDATE irgov_approvals SET status = 'expired', expired_us = expires_us, finished_us = expires_us "
                "WHERE approval_id = %s AND status = 'pending' AND expires_us <= %s",
                (approval_id, now_us)).rowcount == 1
            row = conn.execute(_SELECT + " WHERE approval_id = %s", (approval_id,)).fetchone()
        return (_row_to_record(row) if row else None), changed

    def revoke(self, approval_id: str, *, now_us: int, by: str | None,
               reason: str | None) -> tuple[ApprovalRecord | None, bool]:
        with self._transaction("revoke an approval") as conn:
            changed = conn.execute(
                "UPDATE irgov_approvals SET status = 'revoked', revoked_us = %s, revoked_by = %s, "
                "revoke_reason = %s, finished_us = %s WHERE approval_id = %s AND status = 'pending' "
                "AND expires_us > %s", (now_us, by, reason, now_us, approval_id, now_us)).rowcount == 1
            row = conn.execute(_SELECT + " WHERE approval_id = %s", (approval_id,)).fetchone()
        return (_row_to_record(row) if row else None), changed

    def list_page(self, tenant_id: str, *, status: ApprovalStatus | None, limit: int, cursor: str | None,
                  now_us: int) -> tuple[list[ApprovalRecord], str | None]:
        where = ["tenant_id = %s"]
        params: list[Any] = [tenant_id]
        if cursor is not None:
            created_us, approval_id = decode_cursor(cursor)
            where.append("(created_us < %s OR (created_us = %s AND approval_id < %s))")
            params += [created_us, created_us, approval_id]
        if status is ApprovalStatus.PENDING:
            where.append("status = 'pending' AND expires_us > %s")
            params.append(now_us)
        elif status is ApprovalStatus.EXPIRED:
            where.append("(status = 'expired' OR (status = 'pending' AND expires_us <= %s))")
            params.append(now_us)
        elif status is not None:
            where.append("status = %s")
            params.append(status.value)
        with self._transaction("list approvals") as conn:
            rows = conn.execute(_SELECT + " WHERE " + " AND ".join(where)
                                + " ORDER BY created_us DESC, approval_id DESC LIMIT %s", (*params, limit + 1)
                                ).fetchall()
        records = [_row_to_record(r) for r in rows]
        if len(records) > limit:
            return records[:limit], encode_cursor(records[limit - 1])
        return records, None

    def expire_due(self, now_us: int, limit: int) -> list[ApprovalRecord]:
        with self._transaction("expire approvals") as conn:
            # SKIP LOCKED: two sweepers share the due rows instead of waiting on each other.
            rows = conn.execute(
                "UPDATE irgov_approvals SET status = 'expired', expired_us = expires_us, finished_us = expires_us "
                "WHERE approval_id IN (SELECT approval_id FROM irgov_approvals WHERE status = 'pending' "
                "AND expires_us <= %s LIMIT %s FOR UPDATE SKIP LOCKED)" + _RETURNING, (now_us, limit)).fetchall()
        return [_row_to_record(r) for r in rows]

    def purge(self, cutoff_us: int) -> int:
        """Delete approvals finished before `cutoff_us`, ledger rows older than it, and outbox
        events recorded before it: a relay must import them within the retention."""
        with self._transaction("purge approvals") as conn:
            removed = int(conn.execute("DELETE FROM irgov_approvals WHERE status <> 'pending' AND finished_us < %s",
                                       (cutoff_us,)).rowcount)
            conn.execute("DELETE FROM irgov_outbox WHERE created_at < %s", (format_timestamp(from_us(cutoff_us)),))
            forgotten = purge_ledger(conn, cutoff_us)
        if forgotten:
            logger.info("purged %d ledger rows of %s", forgotten, self.address)
        return removed

    def close(self) -> None:
        self._pool.close()
