"""The outbox table of the PostgreSQL approval store, the twin of `outbox_sqlite`'s table.

A store appends an event inside its own transaction (a consume and its `ir.approval_consumed`
commit together or not at all); the relay drains the table through `sources.PostgresSource`,
reading after the last `seq` it imported. For that cursor to miss nothing, sequence numbers must
become visible in order: each append first takes a transaction-level advisory lock, so appends
(and the commits that follow them) are serialised and a lower `seq` never commits after a higher one.
"""

from __future__ import annotations

import zlib
from typing import Any

from .envelope import Event, format_timestamp

__all__ = ["OUTBOX_SCHEMA", "append_event_in_transaction", "append_lock_key"]

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
