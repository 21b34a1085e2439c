"""The ledger's tables in the SQLite approval store's own database.

Decisions, submitters and approval requests sit beside `irgov_approvals`, so the store's
`grant` claims the request, inserts the approval and appends `ir.approval_created` to the outbox
in one `BEGIN IMMEDIATE` transaction. Before this layout the ledger was a separate file,
`<store>.ledger.db`; `import_legacy_file` moves its rows in once and renames it, and `repair`
undoes what a crash between the old layout's two writes left behind.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import asdict
from pathlib import Path
from typing import Any

from ..errors import StoreError
from ..storage.group_commit import GroupCommitWriter
from .ledger_records import (
    APPROVABLE_STATUS,
    REQUEST_FIELDS,
    ApprovalRequest,
    DecisionEntry,
    RequestState,
    check_changes,
    decode_request_cursor,
    encode_request_cursor,
)

__all__ = ["DecisionRow", "LEDGER_DECISION_DETAILS", "LEDGER_SCHEMA", "LEDGER_TOKEN_CLAIM", "ORPHAN_REASON", "ORPHAN_WINDOW_US", "SQLiteLedger", "claim_for_grant", "import_legacy_file",
           "legacy_ledger_path", "purge_ledger", "read_legacy_file", "repair", "repair_store", "request_in",
           "revoke_in", "write_decisions"]

logger = logging.getLogger(__name__)

LEDGER_SCHEMA = """
CREATE TABLE IF NOT EXISTS irgov_decisions (
    tenant_id  TEXT NOT NULL,
    ir_hash    TEXT NOT NULL,
    status     TEXT NOT NULL,
    risk_tier  INTEGER NOT NULL,
    request_id TEXT,
    decided_us INTEGER NOT NULL,
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
    created_us    INTEGER NOT NULL,
    state         TEXT NOT NULL CHECK (state IN ('requested', 'granted', 'revoked')),
    reason        TEXT,
    approval_id   TEXT,
    granted_by    TEXT,
    granted_us    INTEGER,
    revoked_by    TEXT,
    revoked_us    INTEGER,
    revoke_reason TEXT
);
CREATE INDEX IF NOT EXISTS irgov_requests_tenant
    ON irgov_approval_requests (tenant_id, created_us DESC, request_id DESC);
"""

#: the ledger's step that keeps what a human needs to judge an ESCALATE decision with it
LEDGER_DECISION_DETAILS = """
ALTER TABLE irgov_decisions ADD COLUMN step_count INTEGER;
ALTER TABLE irgov_decisions ADD COLUMN intent_summary TEXT;
ALTER TABLE irgov_decisions ADD COLUMN snapshot TEXT;
"""
#: the ledger's step for tokens claimed by their requester (`approvals.sealing`)
LEDGER_TOKEN_CLAIM = """
ALTER TABLE irgov_approval_requests ADD COLUMN delivery TEXT;
ALTER TABLE irgov_approval_requests ADD COLUMN sealed_token TEXT;
ALTER TABLE irgov_approval_requests ADD COLUMN claimed_by TEXT;
ALTER TABLE irgov_approval_requests ADD COLUMN claimed_us INTEGER;
"""
_TABLES = ("irgov_decisions", "irgov_submitters", "irgov_approval_requests")
_DECISION = "tenant_id, ir_hash, status, risk_tier, request_id, decided_us, step_count, intent_summary"
_SELECT = f"SELECT {', '.join(REQUEST_FIELDS)} FROM irgov_approval_requests"
#: why repair revokes an approval a crash left unlinked: its token never reached anyone
ORPHAN_REASON = "grant_not_recorded"
#: how long after the grant the previous layout's approval was created (it followed at once)
ORPHAN_WINDOW_US = 120_000_000


def _request(row: Sequence[Any]) -> ApprovalRequest:
    values = dict(zip(REQUEST_FIELDS, row, strict=True))
    values["state"] = RequestState(values["state"])
    return ApprovalRequest(**values)


DecisionRow = tuple[DecisionEntry, str | None]

_UPSERT_DECISION = (
    f"INSERT INTO irgov_decisions ({_DECISION}, snapshot) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (tenant_id, ir_hash) DO UPDATE SET "
    "status = excluded.status, risk_tier = excluded.risk_tier, "
    "request_id = excluded.request_id, decided_us = excluded.decided_us, "
    "step_count = excluded.step_count, intent_summary = excluded.intent_summary, "
    "snapshot = excluded.snapshot")


def write_decisions(conn: sqlite3.Connection, rows: list[DecisionRow]) -> None:
    """Record decisions (and who submitted them) inside the caller's transaction, in order: a
    later decision on the same IR replaces an earlier one."""
    conn.executemany(_UPSERT_DECISION, [
        (e.tenant_id, e.ir_hash, e.status, e.risk_tier, e.request_id, e.decided_us, e.step_count,
         e.intent_summary, e.snapshot) for e, _ in rows])
    submitters = [(e.tenant_id, e.ir_hash, by) for e, by in rows if by is not None]
    if submitters:
        conn.executemany("INSERT OR IGNORE INTO irgov_submitters VALUES (?, ?, ?)", submitters)


class SQLiteLedger:
    """The ledger on the store's connections: `write()` opens the store's `BEGIN IMMEDIATE`
    transaction, `read(sql, args)` runs one query (after the decisions this process queued are
    committed), `decisions` is the store's group-commit writer of decision rows.

    Decision rows are committed in groups, off the deciding thread, without fsync: an ESCALATE
    decision (the one an approval request needs, possibly in another process) is committed before
    `record_decision` returns; a PASS or REJECT one is queued and committed within a few
    milliseconds (`storage.group_commit`). Losing either to a crash only makes an approval request
    be refused until the IR is validated again; every read of this process sees its own rows."""

    def __init__(self, write: Callable[..., AbstractContextManager[sqlite3.Connection]],
                 read: Callable[[str, Sequence[Any]], list[Any]], where: str,
                 decisions: GroupCommitWriter[DecisionRow], timeout: float) -> None:
        self._write = write
        self._timeout = timeout
        self._read = read
        self._where = where
        self._decisions = decisions

    def __repr__(self) -> str:
        return f"SQLiteLedger({self._where!r})"

    def _fail(self, what: str, exc: sqlite3.Error) -> StoreError:
        return StoreError(f"sqlite database `{self._where}`: cannot {what}: {exc}")

    def record_decision(self, entry: DecisionEntry, submitted_by: str | None) -> None:
        self._decisions.submit((entry, submitted_by), critical=False, wait=entry.status == APPROVABLE_STATUS)

    def _settle(self, tenant_id: str, ir_hash: str) -> None:
        """Wait until the decision this process queued for this IR, if any, is committed; an IR
        with none queued goes on at once (a write lock on the database then holds up only the
        readers of the rows it holds up)."""
        if self._decisions.holds(lambda row: row[0].tenant_id == tenant_id and row[0].ir_hash == ir_hash) and \
                not self._decisions.flush(self._timeout):
            raise StoreError(f"sqlite database `{self._where}`: the decisions this process made are not "
                             f"committed after {self._timeout:g} s (locked or failing database)")

    def get_decision(self, tenant_id: str, ir_hash: str, *, with_snapshot: bool = False) -> DecisionEntry | None:
        self._settle(tenant_id, ir_hash)
        rows = self._read(f"SELECT {_DECISION}{', snapshot' if with_snapshot else ''} "
                          "FROM irgov_decisions WHERE tenant_id = ? AND ir_hash = ?", (tenant_id, ir_hash))
        return DecisionEntry(*rows[0]) if rows else None

    def submitters(self, tenant_id: str, ir_hash: str) -> set[str]:
        self._settle(tenant_id, ir_hash)
        rows = self._read("SELECT principal FROM irgov_submitters WHERE tenant_id = ? AND ir_hash = ?",
                          (tenant_id, ir_hash))
        return {r[0] for r in rows}

    def insert_request(self, request: ApprovalRequest) -> None:
        values = asdict(request)
        values["state"] = request.state.value
        try:
            with self._write() as conn:
                conn.execute(f"INSERT INTO irgov_approval_requests ({', '.join(REQUEST_FIELDS)}) "
                             f"VALUES ({', '.join('?' for _ in REQUEST_FIELDS)})",
                             tuple(values[f] for f in REQUEST_FIELDS))
        except sqlite3.Error as exc:
            raise self._fail("record an approval request", exc) from None

    def get_request(self, request_id: str) -> ApprovalRequest | None:
        rows = self._read(_SELECT + " WHERE request_id = ?", (request_id,))
        return _request(rows[0]) if rows else None

    def transition(self, request_id: str, *, tenant_id: str, from_states: tuple[RequestState, ...],
                   changes: Mapping[str, Any]) -> ApprovalRequest | None:
        check_changes(changes)
        try:
            with self._write() as conn:
                return _transition(conn, request_id, tenant_id, from_states, changes)
        except sqlite3.Error as exc:
            raise self._fail("change an approval request", exc) from None

    def take_sealed_token(self, request_id: str, *, tenant_id: str, claimed_by: str,
                          claimed_us: int) -> str | None:
        try:
            with self._write() as conn:
                row = conn.execute("SELECT sealed_token FROM irgov_approval_requests WHERE request_id = ? AND "
                                   "tenant_id = ? AND state = 'granted' AND sealed_token IS NOT NULL",
                                   (request_id, tenant_id)).fetchone()
                if row is None:
                    return None
                conn.execute("UPDATE irgov_approval_requests SET sealed_token = NULL, claimed_by = ?, claimed_us = ? "
                             "WHERE request_id = ?", (claimed_by, claimed_us, request_id))
                return str(row[0])
        except sqlite3.Error as exc:
            raise self._fail("claim a token", exc) from None

    def list_requests(self, tenant_id: str, *, state: RequestState | None, limit: int,
                      cursor: str | None) -> tuple[list[ApprovalRequest], str | None]:
        where = ["tenant_id = ?"]
        args: list[Any] = [tenant_id]
        if state is not None:
            where.append("state = ?")
            args.append(state.value)
        if cursor is not None:
            created_us, request_id = decode_request_cursor(cursor)
            where.append("(created_us < ? OR (created_us = ? AND request_id < ?))")
            args += [created_us, created_us, request_id]
        rows = self._read(_SELECT + f" WHERE {' AND '.join(where)} ORDER BY created_us DESC, request_id DESC "
                          "LIMIT ?", (*args, limit + 1))
        page = [_request(r) for r in rows[:limit]]
        return page, (encode_request_cursor(page[-1]) if len(rows) > limit and page else None)


def _transition(conn: sqlite3.Connection, request_id: str, tenant_id: str,
                from_states: tuple[RequestState, ...], changes: Mapping[str, Any]) -> ApprovalRequest | None:
    values = {k: (v.value if isinstance(v, RequestState) else v) for k, v in changes.items()}
    states = ", ".join("?" for _ in from_states)
    cursor = conn.execute(
        f"UPDATE irgov_approval_requests SET {', '.join(f'{k} = ?' for k in values)} "
        f"WHERE request_id = ? AND tenant_id = ? AND state IN ({states})",
        (*values.values(), request_id, tenant_id, *(s.value for s in from_states)))
    if cursor.rowcount != 1:
        return None
    return _request(conn.execute(_SELECT + " WHERE request_id = ?", (request_id,)).fetchone())


def request_in(conn: sqlite3.Connection, request_id: str) -> ApprovalRequest | None:
    """The request as the store's open transaction sees it."""
    row = conn.execute(_SELECT + " WHERE request_id = ?", (request_id,)).fetchone()
    return _request(row) if row else None


def revoke_in(conn: sqlite3.Connection, request: ApprovalRequest, *, now_us: int, by: str | None,
              reason: str | None) -> ApprovalRequest:
    """Inside the store's revoke transaction: the request `-> revoked` (a revoked one stays)."""
    after = _transition(conn, request.request_id, request.tenant_id, (RequestState.REQUESTED, RequestState.GRANTED),
                        {"state": RequestState.REVOKED, "revoked_by": by, "revoked_us": now_us,
                         "revoke_reason": reason, "sealed_token": None})
    return after or request


def claim_for_grant(conn: sqlite3.Connection, request_id: str, *, tenant_id: str, granted_by: str,
                    granted_us: int, approval_id: str, delivery: str = "response",
                    sealed_token: str | None = None) -> ApprovalRequest | None:
    """Inside the store's grant transaction: `requested -> granted`, linked to `approval_id`,
    with how its token is delivered (and, for a claim, the token sealed)."""
    return _transition(conn, request_id, tenant_id, (RequestState.REQUESTED,),
                       {"state": RequestState.GRANTED, "granted_by": granted_by, "granted_us": granted_us,
                        "approval_id": approval_id, "delivery": delivery, "sealed_token": sealed_token})


def purge_ledger(conn: sqlite3.Connection, cutoff_us: int) -> int:
    """Forget decisions decided and requests created before `cutoff_us`, except a request whose
    approval is still pending (it is still to be consumed)."""
    removed = conn.execute(
        "DELETE FROM irgov_approval_requests WHERE created_us < ? AND NOT EXISTS (SELECT 1 FROM irgov_approvals a "
        "WHERE a.approval_id = irgov_approval_requests.approval_id AND a.status = 'pending')",
        (cutoff_us,)).rowcount
    conn.execute(
        "DELETE FROM irgov_submitters WHERE EXISTS (SELECT 1 FROM irgov_decisions d WHERE "
        "d.tenant_id = irgov_submitters.tenant_id AND d.ir_hash = irgov_submitters.ir_hash "
        "AND d.decided_us < ?)", (cutoff_us,))
    removed += conn.execute("DELETE FROM irgov_decisions WHERE decided_us < ?", (cutoff_us,)).rowcount
    return int(removed)


def legacy_ledger_path(store_path: Path) -> Path:
    """Where the previous layout kept the ledger of the store `store_path`."""
    return store_path.with_name(store_path.stem + ".ledger.db")


LegacyRows = dict[str, tuple[tuple[str, ...], list[tuple[Any, ...]]]]


def read_legacy_file(path: Path) -> LegacyRows:
    """Every row of the previous layout's ledger file (its WAL included), with its column names:
    the store's tables may have gained columns since (schema_sqlite)."""
    conn = sqlite3.connect(path, timeout=30.0)
    try:
        present = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        tables: LegacyRows = {}
        for table in _TABLES:
            if table in present:
                cursor = conn.execute(f"SELECT * FROM {table}")
                tables[table] = (tuple(d[0] for d in cursor.description), cursor.fetchall())
        return tables
    finally:
        conn.close()


def import_legacy_file(conn: sqlite3.Connection, rows: LegacyRows) -> int:
    """Inside a store transaction: copy the rows read by `read_legacy_file`; rows already present
    (an import that ran before, from another process) are kept as they are."""
    imported = 0
    for table, (columns, table_rows) in rows.items():
        names = ", ".join(columns)
        marks = ", ".join("?" for _ in columns)
        for row in table_rows:
            imported += conn.execute(f"INSERT OR IGNORE INTO {table} ({names}) VALUES ({marks})", row).rowcount
    return imported


def repair(conn: sqlite3.Connection, now_us: int) -> list[str]:
    """Inside a store transaction: every request `granted` with no approval linked goes back to
    `requested` (grantable again), and an approval its grant created but never linked is revoked.

    Only the previous layout (ledger and approvals in two files, two writes) could leave this:
    its grant returned the token after linking, so an unlinked approval's token reached no one.
    The ids of the requests repaired."""
    repaired = []
    rows = conn.execute("SELECT request_id, tenant_id, ir_hash, granted_by, granted_us FROM irgov_approval_requests "
                        "WHERE state = 'granted' AND approval_id IS NULL").fetchall()
    for request_id, tenant_id, ir_hash, granted_by, granted_us in rows:
        conn.execute(
            "UPDATE irgov_approvals SET status = 'revoked', revoked_us = ?, revoke_reason = ?, finished_us = ? "
            "WHERE status = 'pending' AND tenant_id = ? AND ir_hash = ? AND created_by IS ? AND created_us >= ? "
            "AND created_us <= ? AND approval_id NOT IN (SELECT approval_id FROM irgov_approval_requests WHERE approval_id IS NOT NULL)",
            (now_us, ORPHAN_REASON, now_us, tenant_id, ir_hash, granted_by, granted_us or 0,
             (granted_us or 0) + ORPHAN_WINDOW_US))
        conn.execute("UPDATE irgov_approval_requests SET state = 'requested', granted_by = NULL, granted_us = NULL "
                     "WHERE request_id = ?", (request_id,))
        repaired.append(request_id)
    return repaired


def repair_store(store_path: Path, write: Callable[[], AbstractContextManager[sqlite3.Connection]]) -> int:
    """The SQLite store's start-up repair: import the previous layout's ledger file (then rename
    it `*.imported`), and `repair` in one transaction of the store. Each step is logged."""
    legacy = legacy_ledger_path(store_path)
    rows = None
    if legacy.exists():
        try:
            rows = read_legacy_file(legacy)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot read the previous ledger file `{legacy}`: {exc}") from None
    try:
        with write() as conn:
            imported = import_legacy_file(conn, rows) if rows is not None else 0
            repaired = repair(conn, time.time_ns() // 1000)
    except sqlite3.Error as exc:
        raise StoreError(f"sqlite database `{store_path}`: cannot repair the ledger: {exc}") from None
    if rows is not None:
        done = legacy.with_name(legacy.name + ".imported")
        with contextlib.suppress(FileNotFoundError):  # another process imported it meanwhile
            legacy.rename(done)
            logger.warning("imported %d rows of the previous ledger file %s into %s; the file is now %s",
                           imported, legacy, store_path, done)
    for request_id in repaired:
        logger.warning("approval request %s was granted without an approval (a crash of an earlier "
                       "version): it is requested again, and an unlinked approval of it revoked", request_id)
    return len(repaired)
