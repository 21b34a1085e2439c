"""Extra outboxes the relay drains into its own: the `irgov_outbox` table of an approval SQLite
or PostgreSQL database, and the Redis stream written by the approval Redis store's Lua script.

A source is read after a cursor; the relay imports what it read and moves the cursor in one
transaction of its own outbox, so a crash can only re-import (ignored by event id).
"""

from __future__ import annotations

import sqlite3
from typing import Any, Protocol

from ..errors import EventError
from ..storage import StoreURL, redact, redis_client
from .envelope import Event

__all__ = ["OutboxSource", "PostgresSource", "RedisStreamSource", "SqliteSource", "source_from_url"]


class OutboxSource(Protocol):
    key: str
    #: the key an earlier version gave this source, whose saved cursor is still valid (or None)
    legacy_key: str | None

    def read(self, cursor: str | None, limit: int) -> tuple[list[Event], str | None]: ...

    def close(self) -> None: ...


class SqliteSource:
    """The `irgov_outbox` table of another SQLite database (read-only use)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.key = StoreURL.for_sqlite_file(path).text
        # Before StoreURL, an absolute path lost one slash here (`sqlite:///abs/x.db`).
        old = "sqlite:///" + (path[1:] if path.startswith("/") else path)
        self.legacy_key: str | None = old if old != self.key else None
        self._conn: sqlite3.Connection | None = None

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            self._conn = sqlite3.connect(self.path, timeout=5.0, check_same_thread=False, isolation_level=None)
            self._conn.execute("PRAGMA busy_timeout=5000")
        return self._conn

    def read(self, cursor: str | None, limit: int) -> tuple[list[Event], str | None]:
        after = int(cursor) if cursor else 0
        try:
            rows = self._connection().execute(
                "SELECT seq, body FROM irgov_outbox WHERE seq > ? ORDER BY seq LIMIT ?", (after, limit)
            ).fetchall()
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc):
                return [], cursor  # the store has not recorded anything yet
            raise
        if not rows:
            return [], cursor
        return [Event.from_json(body) for _, body in rows], str(rows[-1][0])

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


class RedisStreamSource:
    """A Redis stream of outbox entries with fields `event_id`, `tenant_id`, `type`, `critical`,
    `body` (the event JSON)."""

    def __init__(self, url: str | StoreURL) -> None:
        self.address = StoreURL.parse(url, what="outbox source")
        self.stream = self.address.check_options({"stream"}, what="outbox source").get("stream", "irgov:outbox")
        # The key names the source in logs and in the relay's cursors: never with a password.
        self.key = f"{self.address.scheme}://{self.address.host}:{self.address.port}/{self.address.database}" \
                   f"?stream={self.stream}"
        old = f"{self.address.server_text()}?stream={self.stream}"  # an earlier version's key
        self.legacy_key: str | None = old if old != self.key else None
        self._client: Any = None

    def _redis(self) -> Any:
        if self._client is None:
            self._client = redis_client(self.address, what="redis outbox source", decode_responses=False)
        return self._client

    def read(self, cursor: str | None, limit: int) -> tuple[list[Event], str | None]:
        start = cursor or "0-0"
        entries = self._redis().xrange(self.stream, min=f"({start}", max="+", count=limit)
        if not entries:
            return [], cursor
        events: list[Event] = []
        for _, fields in entries:
            body = fields.get(b"body")
            if body is None:
                continue  # not an outbox entry; the stream may be shared
            events.append(Event.from_json(body))
        last_id = entries[-1][0]
        return events, last_id.decode() if isinstance(last_id, bytes) else str(last_id)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


class PostgresSource:
    """The `irgov_outbox` table of a PostgreSQL approval store (`outbox_postgres`), read after
    the last `seq` imported; appends are serialised there so no lower `seq` commits later."""

    def __init__(self, url: str | StoreURL) -> None:
        from ..storage.postgres_client import postgres_schema

        self.address = StoreURL.parse(url, what="outbox source")
        schema = postgres_schema(self.address, what="outbox source")
        self.key = f"{self.address.scheme}://{self.address.host}:{self.address.port}/" \
                   f"{self.address.database_name}?schema={schema}"
        self.legacy_key: str | None = None
        self._conn: Any = None

    def read(self, cursor: str | None, limit: int) -> tuple[list[Event], str | None]:
        from ..storage.postgres_client import connect

        after = int(cursor) if cursor else 0
        if self._conn is None:
            self._conn = connect(self.address, what="outbox source")
        try:
            rows = self._conn.execute("SELECT seq, body FROM irgov_outbox WHERE seq > %s ORDER BY seq LIMIT %s",
                                      (after, limit)).fetchall()
        except Exception as exc:
            self.close()  # a broken connection is opened again on the next read
            raise EventError(f"outbox source `{redact(self.key)}`: {str(exc).strip().splitlines()[0]}") from None
        if not rows:
            return [], cursor
        return [Event.from_json(body) for _, body in rows], str(rows[-1][0])

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def source_from_url(url: str) -> OutboxSource:
    """`sqlite:///relative.db` / `sqlite:////absolute.db`, `redis://host:port/db?stream=NAME`, or
    `postgresql://host:port/dbname?schema=NAME`."""
    address = StoreURL.parse(url, what="outbox source")
    if address.scheme == "sqlite":
        return SqliteSource(str(address.sqlite_path()))
    if address.is_redis:
        return RedisStreamSource(address)
    if address.is_postgres:
        return PostgresSource(address)
    raise EventError(f"unsupported outbox source `{address}`: use `sqlite:///path`, "
                     "`redis://host:port/db?stream=NAME` or `postgresql://host:port/dbname?schema=NAME`")
