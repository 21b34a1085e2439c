"""Relay leases on the SQLite outbox: several relays (processes on one host) share one outbox file.

A relay delivers a tenant's events to a sink only while it holds the lease of that (sink, tenant):
a row of `irgov_outbox_lease` naming its owner and an expiry. A claim reads what is pending,
leases free tenants (those without a live lease of another owner) and returns their events, in
one `BEGIN IMMEDIATE` transaction, so two relays never lease the same tenant and a claim always
sees the delivery marks of the relay that held the lease before (marks and release commit
together). Per-tenant order follows: one relay at a time sends a tenant's events, oldest first.
A relay that dies keeps its leases until they expire (or, killed on this host, until another relay
sees its process gone: `relay_owner`); then another relay takes them and sends again what the dead
one had sent but not yet marked, the only duplicates in this scheme.

`irgov_outbox_relay` records when each relay last claimed for a sink, so a relay takes only its
share of the tenants with work (`outbox.tenants_to_claim`) and the others are not left idle.
Lease times are this host's clock (`time.time()`), the only one an SQLite file is shared on.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence

from .outbox import Claim, OutboxRecord, tenants_to_claim
from .relay_owner import owner_is_dead

__all__ = ["LEASE_SCHEMA", "claim", "mark_delivered_in_transaction", "release", "renew", "retire"]

LEASE_SCHEMA = """
CREATE TABLE IF NOT EXISTS irgov_outbox_lease (
    sink TEXT NOT NULL,
    tenant TEXT NOT NULL,
    owner TEXT NOT NULL,
    expires_at REAL NOT NULL,
    PRIMARY KEY (sink, tenant)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS irgov_outbox_relay (
    sink TEXT NOT NULL,
    owner TEXT NOT NULL,
    seen_at REAL NOT NULL,
    PRIMARY KEY (sink, owner)
) WITHOUT ROWID;
"""

_COLUMNS = "o.seq, o.event_id, o.tenant_id, o.type, o.critical, o.body, o.created_at, d.attempts, d.next_attempt_at"
_UNDELIVERED = ("FROM irgov_outbox o LEFT JOIN irgov_outbox_delivery d ON d.sink = ? AND d.event_id = o.event_id "
                "WHERE o.seq > ? AND d.delivered_at IS NULL")
_NOT_LEASED_ELSEWHERE = ("AND COALESCE(o.tenant_id, '') NOT IN (SELECT tenant FROM irgov_outbox_lease "
                         "WHERE sink = ? AND owner <> ? AND expires_at > ?)")


def _record(row: Sequence[object]) -> OutboxRecord:
    return OutboxRecord(
        seq=int(row[0]),  # type: ignore[call-overload]
        event_id=str(row[1]),
        tenant_id=None if row[2] is None else str(row[2]),
        type=str(row[3]),
        critical=bool(row[4]),
        body=str(row[5]),
        created_at=str(row[6]),
        attempts=int(row[7] or 0),  # type: ignore[call-overload]
        next_attempt_at=None if row[8] is None else float(row[8]),  # type: ignore[arg-type]
    )


def _floor(conn: sqlite3.Connection, sink: str, after_seq: int) -> tuple[int, bool]:
    """The seq up to which every event was delivered to `sink`, and whether anything is pending."""
    row = conn.execute(f"SELECT o.seq {_UNDELIVERED} ORDER BY o.seq LIMIT 1", (sink, after_seq)).fetchone()
    if row is not None:
        return int(row[0]) - 1, True
    last = conn.execute("SELECT MAX(seq) FROM irgov_outbox").fetchone()[0]
    return max(after_seq, int(last or 0)), False


def claim(conn: sqlite3.Connection, sink: str, owner: str, after_seq: int, limit: int,
          lease_seconds: float) -> Claim:
    """Lease this relay's share of the tenants with pending events and return their events.
    Runs its own transaction on `conn` (an autocommit connection)."""
    conn.execute("BEGIN")  # a read snapshot first: an idle relay does not take the write lock
    try:
        floor, waiting = _floor(conn, sink, after_seq)
    finally:
        conn.execute("COMMIT")
    if not waiting:
        return Claim([], frozenset(), floor)
    conn.execute("BEGIN IMMEDIATE")
    try:
        now = time.time()
        floor, _ = _floor(conn, sink, after_seq)
        _forget_dead(conn, sink, owner)
        conn.execute("INSERT INTO irgov_outbox_relay (sink, owner, seen_at) VALUES (?, ?, ?) "
                     "ON CONFLICT(sink, owner) DO UPDATE SET seen_at = excluded.seen_at", (sink, owner, now))
        relays = int(conn.execute("SELECT COUNT(*) FROM irgov_outbox_relay WHERE sink = ? AND seen_at > ?",
                                  (sink, now - lease_seconds)).fetchone()[0])
        elsewhere = int(conn.execute(
            "SELECT COUNT(*) FROM irgov_outbox_lease WHERE sink = ? AND owner <> ? AND expires_at > ?",
            (sink, owner, now)).fetchone()[0])
        free = [str(r[0]) for r in conn.execute(
            f"SELECT t FROM (SELECT COALESCE(o.tenant_id, '') AS t, o.seq AS seq {_UNDELIVERED} "
            f"{_NOT_LEASED_ELSEWHERE} ORDER BY o.seq LIMIT ?) GROUP BY t ORDER BY MIN(seq)",
            (sink, floor, sink, owner, now, limit)).fetchall()]
        mine = tenants_to_claim(free, elsewhere, relays)
        if not mine:
            conn.execute("COMMIT")
            return Claim([], frozenset(), floor)
        conn.executemany(
            "INSERT INTO irgov_outbox_lease (sink, tenant, owner, expires_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT(sink, tenant) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at",
            [(sink, tenant, owner, now + lease_seconds) for tenant in mine])
        marks = ",".join("?" for _ in mine)
        rows = conn.execute(
            f"SELECT {_COLUMNS} {_UNDELIVERED} AND COALESCE(o.tenant_id, '') IN ({marks}) ORDER BY o.seq LIMIT ?",
            (sink, floor, *mine, limit)).fetchall()
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return Claim([_record(r) for r in rows], frozenset(mine), floor)


def _forget_dead(conn: sqlite3.Connection, sink: str, owner: str) -> None:
    """Free at once the leases of relays of this host whose process has ended (`relay_owner`)."""
    others = {str(r[0]) for r in conn.execute(
        "SELECT owner FROM irgov_outbox_lease WHERE sink = ? AND owner <> ? "
        "UNION SELECT owner FROM irgov_outbox_relay WHERE sink = ? AND owner <> ?", (sink, owner, sink, owner))}
    for dead in sorted(o for o in others if owner_is_dead(o)):
        retire(conn, dead)


def mark_delivered_in_transaction(conn: sqlite3.Connection, sink: str, event_ids: Sequence[str], now: str) -> None:
    conn.executemany(
        "INSERT INTO irgov_outbox_delivery (sink, event_id, attempts, delivered_at) VALUES (?, ?, 1, ?) "
        "ON CONFLICT(sink, event_id) DO UPDATE SET delivered_at = excluded.delivered_at, "
        "attempts = attempts + 1, next_attempt_at = NULL",
        [(sink, event_id, now) for event_id in event_ids],
    )


def renew(conn: sqlite3.Connection, sink: str, owner: str, lease_seconds: float) -> frozenset[str]:
    """Extend this relay's leases on `sink` (inside the caller's transaction); the tenants it still
    holds. A lease that expired and was taken by another relay is gone: its tenant is not returned."""
    now = time.time()
    conn.execute("UPDATE irgov_outbox_lease SET expires_at = ? WHERE sink = ? AND owner = ?",
                 (now + lease_seconds, sink, owner))
    conn.execute("UPDATE irgov_outbox_relay SET seen_at = ? WHERE sink = ? AND owner = ?", (now, sink, owner))
    rows = conn.execute("SELECT tenant FROM irgov_outbox_lease WHERE sink = ? AND owner = ?", (sink, owner))
    return frozenset(str(r[0]) for r in rows.fetchall())


def release(conn: sqlite3.Connection, sink: str, owner: str) -> None:
    """Give up this relay's leases on `sink` (inside the caller's transaction, after its marks)."""
    conn.execute("DELETE FROM irgov_outbox_lease WHERE sink = ? AND owner = ?", (sink, owner))


def retire(conn: sqlite3.Connection, owner: str) -> None:
    """A relay that stops: its leases and its place in the count of relays go at once."""
    conn.execute("DELETE FROM irgov_outbox_lease WHERE owner = ?", (owner,))
    conn.execute("DELETE FROM irgov_outbox_relay WHERE owner = ?", (owner,))
