"""The ledger's tables in the PostgreSQL approval store's own schema (the twin of `ledger_sqlite`).

Decisions, submitters and approval requests sit beside `irgov_approvals`, so the store's `grant`
claims the request, inserts the approval and appends `ir.approval_created` to the outbox in one
transaction. Every query names its tenant, except those by an id the caller checks the tenant of.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import asdict
from typing import Any

from .ledger_records import (
    REQUEST_FIELDS,
    ApprovalRequest,
    DecisionEntry,
    RequestState,
    check_changes,
    decode_request_cursor,
    encode_request_cursor,
)

__all__ = ["LEDGER_DECISION_DETAILS", "LEDGER_SCHEMA", "LEDGER_TOKEN_CLAIM", "PostgresLedger", "claim_for_grant", "purge_ledger", "repair", "request_in",
           "revoke_in"]

LEDGER_SCHEMA = """
CREATE TABLE IF NOT EXISTS irgov_decisions (
    tenant_id  TEXT NOT NULL,
    ir_hash    TEXT NOT NULL,
    status     TEXT NOT NULL,
    risk_tier  INTEGER NOT NULL,
    request_id TEXT,
    decided_us BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, ir_hash)
);
CREATE TABLE IF NOT EXISTS irgov_submitters (
    tenant_id TEXT NOT NULL,
    ir_hash   TEXT NOT NULL,
    principal TEXT NOT NULL,
    PRIMARY KEY (tenant_id, ir_hash, principal)
);
CREATE TABLE IF NOT EXISTS irgov_approval_requests (
    request_id    TEXT PRIMARY KEY,
    tenant_id     TEXT NOT NULL,
    ir_hash       TEXT NOT NULL,
    requested_by  TEXT NOT NULL,
    risk_tier     INTEGER NOT NULL,
    created_us    BIGINT NOT NULL,
    state         TEXT NOT NULL CHECK (state IN ('requested', 'granted', 'revoked')),
    reason        TEXT,
    approval_id   TEXT,
    granted_by    TEXT,
    granted_us    BIGINT,
    revoked_by    TEXT,
    revoked_us    BIGINT,
    revoke_reason TEXT
);
CREATE INDEX IF NOT EXISTS irgov_requests_tenant
    ON irgov_approval_requests (tenant_id, created_us DESC, request_id DESC);
"""

#: the ledger's step that keeps what a human needs to judge an ESCALATE decision with it
LEDGER_DECISION_DETAILS = """
ALTER TABLE irgov_decisions ADD COLUMN IF NOT EXISTS step_count INTEGER;
ALTER TABLE irgov_decisions ADD COLUMN IF NOT EXISTS intent_summary TEXT;
ALTER TABLE irgov_decisions ADD COLUMN IF NOT EXISTS snapshot TEXT;
"""
#: the ledger's step for tokens claimed by their requester (`approvals.sealing`)
LEDGER_TOKEN_CLAIM = """
ALTER TABLE irgov_approval_requests ADD COLUMN IF NOT EXISTS delivery TEXT;
ALTER TABLE irgov_approval_requests ADD COLUMN IF NOT EXISTS sealed_token TEXT;
ALTER TABLE irgov_approval_requests ADD COLUMN IF NOT EXISTS claimed_by TEXT;
ALTER TABLE irgov_approval_requests ADD COLUMN IF NOT EXISTS claimed_us BIGINT;
"""
_DECISION = "tenant_id, ir_hash, status, risk_tier, request_id, decided_us, step_count, intent_summary"
_SELECT = f"SELECT {', '.join(REQUEST_FIELDS)} FROM irgov_approval_requests"


def _request(row: Sequence[Any]) -> ApprovalRequest:
    values = dict(zip(REQUEST_FIELDS, row, strict=True))
    values["state"] = RequestState(values["state"])
    return ApprovalRequest(**values)


class PostgresLedger:
    """The ledger on the store's pool: `transaction()` opens one transaction of the store, which
    commits when the block ends and rolls back when it raises."""

    def __init__(self, transaction: Callable[[str], AbstractContextManager[Any]], where: str) -> None:
        self._transaction = transaction
        self._where = where

    def __repr__(self) -> str:
        return f"PostgresLedger({self._where!r})"

    def record_decision(self, entry: DecisionEntry, submitted_by: str | None) -> None:
        with self._transaction("record a decision") as conn:
            conn.execute(
                f"INSERT INTO irgov_decisions ({_DECISION}, snapshot) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (tenant_id, ir_hash) DO UPDATE SET "
                "status = excluded.status, risk_tier = excluded.risk_tier, "
                "request_id = excluded.request_id, decided_us = excluded.decided_us, "
                "step_count = excluded.step_count, intent_summary = excluded.intent_summary, "
                "snapshot = excluded.snapshot",
                (entry.tenant_id, entry.ir_hash, entry.status, entry.risk_tier, entry.request_id, entry.decided_us,
                 entry.step_count, entry.intent_summary, entry.snapshot))
            if submitted_by is not None:
                conn.execute("INSERT INTO irgov_submitters VALUES (%s, %s, %s) ON CONFLICT DO NOTHING",
                             (entry.tenant_id, entry.ir_hash, submitted_by))

    def get_decision(self, tenant_id: str, ir_hash: str, *, with_snapshot: bool = False) -> DecisionEntry | None:
        with self._transaction("read a decision") as conn:
            row = conn.execute(f"SELECT {_DECISION}{', snapshot' if with_snapshot else ''} "
                               "FROM irgov_decisions WHERE tenant_id = %s AND ir_hash = %s",
                               (tenant_id, ir_hash)).fetchone()
        return DecisionEntry(*row) if row else None

    def submitters(self, tenant_id: str, ir_hash: str) -> set[str]:
        with self._transaction("read submitters") as conn:
            rows = conn.execute("SELECT principal FROM irgov_submitters WHERE tenant_id = %s AND ir_hash = %s",
                                (tenant_id, ir_hash)).fetchall()
        return {r[0] for r in rows}

    def insert_request(self, request: ApprovalRequest) -> None:
        values = asdict(request)
        values["state"] = request.state.value
        with self._transaction("record an approval request") as conn:
            conn.execute(f"INSERT INTO irgov_approval_requests ({', '.join(REQUEST_FIELDS)}) "
                         f"VALUES ({', '.join('%s' for _ in REQUEST_FIELDS)})",
                         tuple(values[f] for f in REQUEST_FIELDS))

    def get_request(self, request_id: str) -> ApprovalRequest | None:
        with self._transaction("read an approval request") as conn:
            return request_in(conn, request_id)

    def transition(self, request_id: str, *, tenant_id: str, from_states: tuple[RequestState, ...],
                   changes: Mapping[str, Any]) -> ApprovalRequest | None:
        check_changes(changes)
        with self._transaction("change an approval request") as conn:
            return _transition(conn, request_id, tenant_id, from_states, changes)

    def take_sealed_token(self, request_id: str, *, tenant_id: str, claimed_by: str,
                          claimed_us: int) -> str | None:
        with self._transaction("claim a token") as conn:
            row = conn.execute("SELECT sealed_token FROM irgov_approval_requests WHERE request_id = %s AND "
                               "tenant_id = %s AND state = 'granted' AND sealed_token IS NOT NULL FOR UPDATE",
                               (request_id, tenant_id)).fetchone()
            if row is None:
                return None
            conn.execute("UPDATE irgov_approval_requests SET sealed_token = NULL, claimed_by = %s, claimed_us = %s "
                         "WHERE request_id = %s", (claimed_by, claimed_us, request_id))
            return str(row[0])

    def list_requests(self, tenant_id: str, *, state: RequestState | None, limit: int,
                      cursor: str | None) -> tuple[list[ApprovalRequest], str | None]:
        where = ["tenant_id = %s"]
        args: list[Any] = [tenant_id]
        if state is not None:
            where.append("state = %s")
            args.append(state.value)
        if cursor is not None:
            created_us, request_id = decode_request_cursor(cursor)
            where.append("(created_us < %s OR (created_us = %s AND request_id < %s))")
            args += [created_us, created_us, request_id]
        with self._transaction("list approval requests") as conn:
            rows = conn.execute(_SELECT + f" WHERE {' AND '.join(where)} ORDER BY created_us DESC, "
                                "request_id DESC LIMIT %s", (*args, limit + 1)).fetchall()
        page = [_request(r) for r in rows[:limit]]
        return page, (encode_request_cursor(page[-1]) if len(rows) > limit and page else None)


def _transition(conn: Any, request_id: str, tenant_id: str, from_states: tuple[RequestState, ...],
                changes: Mapping[str, Any]) -> ApprovalRequest | None:
    values = {k: (v.value if isinstance(v, RequestState) else v) for k, v in changes.items()}
    row = conn.execute(
        f"UPDATE irgov_approval_requests SET {', '.join(f'{k} = %s' for k in values)} "
        f"WHERE request_id = %s AND tenant_id = %s AND state = ANY(%s) "
        f"RETURNING {', '.join(REQUEST_FIELDS)}",
        (*values.values(), request_id, tenant_id, [s.value for s in from_states])).fetchone()
    return _request(row) if row else None


def request_in(conn: Any, request_id: str, *, for_update: bool = False) -> ApprovalRequest | None:
    """The request as the store's open transaction sees it (locked until commit with `for_update`)."""
    row = conn.execute(_SELECT + " WHERE request_id = %s" + (" FOR UPDATE" if for_update else ""),
                       (request_id,)).fetchone()
    return _request(row) if row else None


def revoke_in(conn: Any, request: ApprovalRequest, *, now_us: int, by: str | None,
              reason: str | None) -> ApprovalRequest:
    """Inside the store's revoke transaction: the request `-> revoked` (a revoked one stays)."""
    after = _transition(conn, request.request_id, request.tenant_id, (RequestState.REQUESTED, RequestState.GRANTED),
                        {"state": RequestState.REVOKED, "revoked_by": by, "revoked_us": now_us,
                         "revoke_reason": reason, "sealed_token": None})
    return after or request


def claim_for_grant(conn: Any, request_id: str, *, tenant_id: str, granted_by: str, granted_us: int,
                    approval_id: str, delivery: str = "response",
                    sealed_token: str | None = None) -> ApprovalRequest | None:
    """Inside the store's grant transaction: `requested -> granted`, linked to `approval_id`,
    with how its token is delivered (and, for a claim, the token sealed)."""
    return _transition(conn, request_id, tenant_id, (RequestState.REQUESTED,),
                       {"state": RequestState.GRANTED, "granted_by": granted_by, "granted_us": granted_us,
                        "approval_id": approval_id, "delivery": delivery, "sealed_token": sealed_token})


def purge_ledger(conn: Any, cutoff_us: int) -> int:
    """Forget decisions decided and requests created before `cutoff_us`, except a request whose
    approval is still pending (it is still to be consumed)."""
    removed = conn.execute(
        "DELETE FROM irgov_approval_requests r WHERE r.created_us < %s AND NOT EXISTS (SELECT 1 FROM "
        "irgov_approvals a WHERE a.approval_id = r.approval_id AND a.status = 'pending')", (cutoff_us,)).rowcount
    conn.execute(
        "DELETE FROM irgov_submitters s USING irgov_decisions d WHERE d.tenant_id = s.tenant_id "
        "AND d.ir_hash = s.ir_hash AND d.decided_us < %s", (cutoff_us,))
    removed += conn.execute("DELETE FROM irgov_decisions WHERE decided_us < %s", (cutoff_us,)).rowcount
    return int(removed)


def repair(conn: Any) -> list[str]:
    """Inside a store transaction: every request `granted` with no approval linked goes back to
    `requested`. Grants here are one transaction, so only a hand edit of the tables leaves one;
    the check is the same as on SQLite so that start-up means the same on every backend.
    The ids of the requests repaired."""
    rows = conn.execute("UPDATE irgov_approval_requests SET state = 'requested', granted_by = NULL, "
                        "granted_us = NULL WHERE state = 'granted' AND approval_id IS NULL "
                        "RETURNING request_id").fetchall()
    return [r[0] for r in rows]
