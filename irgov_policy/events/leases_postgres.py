"""Relay leases on the PostgreSQL outbox: relays on any number of hosts share one schema's outbox.

The scheme is `leases_sqlite`'s: a row of `irgov_outbox_lease` per (sink, tenant) names its owner
and expiry, a claim leases free tenants and returns their pending events, renewals come with the
marks, the release commits with the last marks. Here claims do not serialise: each locks the
lease rows it wants with `FOR UPDATE SKIP LOCKED`, so two relays claiming at once never wait for
each other and never take the same tenant (a row another claimer holds is skipped; one it just
took shows its new owner once locked). The events are read after the locks are held, by a new
statement that sees every mark committed by the tenant's previous holder. Expiry uses the
server's clock (`now()`), the one clock all hosts share.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .outbox import Claim, OutboxRecord, tenants_to_claim
from .relay_owner import owner_is_dead

__all__ = ["DELIVERY_SCHEMA", "LEASE_SCHEMA", "claim", "mark_delivered_in_transaction", "release", "renew", "retire"]

DELIVERY_SCHEMA = """
CREATE TABLE IF NOT EXISTS irgov_outbox_delivery (
    sink TEXT NOT NULL,
    event_id TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    delivered_at TEXT,
    next_attempt_at DOUBLE PRECISION,
    last_error TEXT,
    PRIMARY KEY (sink, event_id)
);
CREATE TABLE IF NOT EXISTS irgov_outbox_source (
    source TEXT PRIMARY KEY,
    cursor TEXT NOT NULL
);
"""

LEASE_SCHEMA = """
CREATE TABLE IF NOT EXISTS irgov_outbox_lease (
    sink TEXT NOT NULL,
    tenant TEXT NOT NULL,
    owner TEXT NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (sink, tenant)
);
CREATE TABLE IF NOT EXISTS irgov_outbox_relay (
    sink TEXT NOT NULL,
    owner TEXT NOT NULL,
    seen_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (sink, owner)
);
"""

RECORD_COLUMNS = "o.seq, o.event_id, o.tenant_id, o.type, o.critical, o.body, o.created_at"
_UNDELIVERED = ("FROM irgov_outbox o LEFT JOIN irgov_outbox_delivery d ON d.sink = %s AND d.event_id = o.event_id "
                "WHERE o.seq > %s AND d.delivered_at IS NULL")
# The same test as an anti-join, for the queries that need no delivery columns: with the statistics
# of a freshly filled table the planner turns the LEFT JOIN form into a nested loop over every
# mark (seconds for a few thousand events), while NOT EXISTS probes the marks' primary key.
_PENDING = ("FROM irgov_outbox o WHERE o.seq > %s AND NOT EXISTS (SELECT 1 FROM irgov_outbox_delivery d "
            "WHERE d.sink = %s AND d.event_id = o.event_id AND d.delivered_at IS NOT NULL)")
_NOT_LEASED_ELSEWHERE = ("AND NOT EXISTS (SELECT 1 FROM irgov_outbox_lease l WHERE l.sink = %s "
                         "AND l.tenant = COALESCE(o.tenant_id, '') AND l.owner <> %s AND l.expires_at > now())")


def record(row: Sequence[Any]) -> OutboxRecord:
    return OutboxRecord(
        seq=int(row[0]), event_id=str(row[1]), tenant_id=None if row[2] is None else str(row[2]),
        type=str(row[3]), critical=bool(row[4]), body=str(row[5]), created_at=str(row[6]),
        attempts=int(row[7] or 0) if len(row) > 7 else 0,
        next_attempt_at=None if len(row) <= 8 or row[8] is None else float(row[8]),
    )


def floor(conn: Any, sink: str, after_seq: int) -> tuple[int, bool]:
    """The seq up to which every event was delivered to `sink`, and whether anything is pending.
    Appends commit in `seq` order (`outbox_postgres`), so what is visible is a prefix; both parts
    come from one statement, one snapshot: read apart, an event committed in between could put
    the floor past an event not yet delivered."""
    first, last = conn.execute(f"SELECT (SELECT o.seq {_PENDING} ORDER BY o.seq LIMIT 1), "
                               "(SELECT MAX(seq) FROM irgov_outbox)", (after_seq, sink)).fetchone()
    if first is not None:
        return int(first) - 1, True
    return max(after_seq, int(last or 0)), False


def claim(conn: Any, sink: str, owner: str, after_seq: int, limit: int, lease_seconds: float) -> Claim:
    """Lease this relay's share of the free tenants with pending events; inside the caller's
    transaction, which `floor` found something to do."""
    low, _ = floor(conn, sink, after_seq)
    _forget_dead(conn, sink, owner)
    conn.execute("INSERT INTO irgov_outbox_relay (sink, owner, seen_at) VALUES (%s, %s, now()) "
                 "ON CONFLICT (sink, owner) DO UPDATE SET seen_at = now()", (sink, owner))
    relays = int(conn.execute("SELECT COUNT(*) FROM irgov_outbox_relay WHERE sink = %s "
                              "AND seen_at > now() - make_interval(secs => %s)", (sink, lease_seconds)).fetchone()[0])
    elsewhere = int(conn.execute("SELECT COUNT(*) FROM irgov_outbox_lease WHERE sink = %s AND owner <> %s "
                                 "AND expires_at > now()", (sink, owner)).fetchone()[0])
    free = [str(r[0]) for r in conn.execute(
        f"SELECT t FROM (SELECT COALESCE(o.tenant_id, '') AS t, o.seq AS seq {_PENDING} {_NOT_LEASED_ELSEWHERE} "
        "ORDER BY o.seq LIMIT %s) w GROUP BY t ORDER BY MIN(seq)", (low, sink, sink, owner, limit)).fetchall()]
    wanted = tenants_to_claim(free, elsewhere, relays)
    if not wanted:
        return Claim([], frozenset(), low)
    # Rows are created in one order by everyone, so two claimers inserting the same new tenants
    # wait for each other at most, never deadlock.
    conn.execute("INSERT INTO irgov_outbox_lease (sink, tenant, owner, expires_at) "
                 "SELECT %s, t, '', '-infinity' FROM unnest(%s::text[]) AS t ORDER BY t "
                 "ON CONFLICT (sink, tenant) DO NOTHING", (sink, sorted(wanted)))
    locked = [str(r[0]) for r in conn.execute(
        "SELECT tenant FROM irgov_outbox_lease WHERE sink = %s AND tenant = ANY(%s) "
        "AND (owner = %s OR expires_at <= now()) FOR UPDATE SKIP LOCKED", (sink, wanted, owner)).fetchall()]
    if not locked:
        return Claim([], frozenset(), low)
    conn.execute("UPDATE irgov_outbox_lease SET owner = %s, expires_at = now() + make_interval(secs => %s) "
                 "WHERE sink = %s AND tenant = ANY(%s)", (owner, lease_seconds, sink, locked))
    rows = conn.execute(
        f"SELECT {RECORD_COLUMNS}, d.attempts, d.next_attempt_at {_UNDELIVERED} "
        "AND COALESCE(o.tenant_id, '') = ANY(%s) ORDER BY o.seq LIMIT %s", (sink, low, locked, limit)).fetchall()
    return Claim([record(r) for r in rows], frozenset(locked), low)


def _forget_dead(conn: Any, sink: str, owner: str) -> None:
    """Free at once the leases of relays of this host whose process has ended (`relay_owner`)."""
    others = {str(r[0]) for r in conn.execute(
        "SELECT owner FROM irgov_outbox_lease WHERE sink = %s AND owner NOT IN (%s, '') AND expires_at > now() "
        "UNION SELECT owner FROM irgov_outbox_relay WHERE sink = %s AND owner <> %s",
        (sink, owner, sink, owner)).fetchall()}
    for dead in sorted(o for o in others if owner_is_dead(o)):
        retire(conn, dead)


def mark_delivered_in_transaction(conn: Any, sink: str, event_ids: Sequence[str], now: str) -> None:
    if not event_ids:
        return
    conn.execute(
        "INSERT INTO irgov_outbox_delivery (sink, event_id, attempts, delivered_at) "
        "SELECT %s, e, 1, %s FROM unnest(%s::text[]) AS e ORDER BY e "
        "ON CONFLICT (sink, event_id) DO UPDATE SET delivered_at = excluded.delivered_at, "
        "attempts = irgov_outbox_delivery.attempts + 1, next_attempt_at = NULL",
        (sink, now, sorted(set(event_ids))))


def renew(conn: Any, sink: str, owner: str, lease_seconds: float) -> frozenset[str]:
    """Extend this relay's leases on `sink`; the tenants it still holds (one that expired and was
    taken by another relay is not among them)."""
    rows = conn.execute("UPDATE irgov_outbox_lease SET expires_at = now() + make_interval(secs => %s) "
                        "WHERE sink = %s AND owner = %s RETURNING tenant", (lease_seconds, sink, owner)).fetchall()
    conn.execute("UPDATE irgov_outbox_relay SET seen_at = now() WHERE sink = %s AND owner = %s", (sink, owner))
    return frozenset(str(r[0]) for r in rows)


def release(conn: Any, sink: str, owner: str) -> None:
    """Give up this relay's leases on `sink`; the rows stay, free, for the next claimer to lock."""
    conn.execute("UPDATE irgov_outbox_lease SET owner = '', expires_at = '-infinity' WHERE sink = %s AND owner = %s",
                 (sink, owner))


def retire(conn: Any, owner: str) -> None:
    """A relay that stops (or died on this host): its leases are free and it no longer counts."""
    conn.execute("UPDATE irgov_outbox_lease SET owner = '', expires_at = '-infinity' WHERE (sink, tenant) IN "
                 "(SELECT sink, tenant FROM irgov_outbox_lease WHERE owner = %s FOR UPDATE SKIP LOCKED)", (owner,))
    conn.execute("DELETE FROM irgov_outbox_relay WHERE owner = %s", (owner,))
