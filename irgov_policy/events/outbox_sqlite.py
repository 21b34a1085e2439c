"""The SQLite outbox table: where events become durable.

Kept apart from the relay so that a store can record an event inside its own transaction
(consuming an approval and recording `ir.approval_consumed` commit together or not at all).
"""

from __future__ import annotations

import sqlite3

from .envelope import Event, format_timestamp

__all__ = ["OUTBOX_SCHEMA", "append_event_in_transaction", "ensure_outbox_schema"]

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


def ensure_outbox_schema(conn: sqlite3.Connection) -> None:
    """Create the outbox table when missing (idempotent)."""
    conn.executescript(OUTBOX_SCHEMA)


def append_event_in_transaction(conn: sqlite3.Connection, event: Event) -> None:
    """Insert `event` into the outbox on `conn` without committing: the caller's transaction
    decides. A second append of the same event id is ignored, so retries stay idempotent."""
    conn.execute(
        "INSERT OR IGNORE INTO irgov_outbox (event_id, tenant_id, type, critical, body, created_at) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        (event.id, event.tenant_id, event.type, 1 if event.critical else 0, event.to_json(),
         format_timestamp(event.timestamp)),
    )
