"""Console sessions, kept server-side in the place the approval store names.

Signing in exchanges an API key for a random session id (256 bits) sent back as a cookie. The
store holds only the id's SHA-256, so reading the store gives no usable cookie; each record names
the principal, its role and tenants, the digest of the API key it was opened with (a key removed
from the configuration ends its sessions), the CSRF token and the expiry. Signing out deletes
the record: the cookie is dead at once, on every worker.

Server-side rather than signed cookies, because a sign-out must end the session everywhere and a
revocation list would need the same shared store anyway. The backend follows `approval_store`:

- `sqlite:///x.db`: the file `x.console-sessions.db` beside it (its own file, so session writes
  never queue behind the approval store's transactions), shared by the workers of one host;
- `redis://...`: keys `<prefix>console:session:<digest>` expiring with the session;
- `postgresql://...`: the table `irgov_console_sessions` in the store's schema;
- `memory://`: this process only (one worker, tests).
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
import sqlite3
import threading
import time
from dataclasses import dataclass
from typing import Any, Protocol

from ...errors import StoreError
from ...storage.files import make_private_file
from ...storage.url import StoreURL

__all__ = ["Session", "SessionStore", "new_session_id", "open_sessions", "session_digest"]

logger = logging.getLogger(__name__)

BUSY_TIMEOUT_MS = 5000


@dataclass(frozen=True)
class Session:
    principal: str
    role: str
    #: None: every tenant
    tenants: tuple[str, ...] | None
    key_digest: str
    csrf: str
    created: float
    expires: float

    def to_json(self) -> str:
        return json.dumps({"principal": self.principal, "role": self.role,
                           "tenants": None if self.tenants is None else list(self.tenants),
                           "key_digest": self.key_digest, "csrf": self.csrf, "created": self.created,
                           "expires": self.expires})

    @classmethod
    def from_json(cls, text: str | bytes) -> Session | None:
        try:
            data = json.loads(text)
            tenants = data["tenants"]
            return cls(str(data["principal"]), str(data["role"]),
                       None if tenants is None else tuple(str(t) for t in tenants), str(data["key_digest"]),
                       str(data["csrf"]), float(data["created"]), float(data["expires"]))
        except (ValueError, KeyError, TypeError):
            return None  # an unreadable record is no session

    @property
    def live(self) -> bool:
        return time.time() < self.expires


def new_session_id() -> str:
    return secrets.token_urlsafe(32)


def session_digest(session_id: str) -> str:
    return hashlib.sha256(session_id.encode("utf-8")).hexdigest()


class SessionStore(Protocol):
    def put(self, digest: str, session: Session) -> None: ...

    def get(self, digest: str) -> Session | None: ...

    def delete(self, digest: str) -> None: ...

    def close(self) -> None: ...


class MemorySessions:
    def __init__(self) -> None:
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()

    def put(self, digest: str, session: Session) -> None:
        now = time.time()
        with self._lock:
            for key in [k for k, s in self._sessions.items() if s.expires <= now]:
                del self._sessions[key]
            self._sessions[digest] = session

    def get(self, digest: str) -> Session | None:
        with self._lock:
            return self._sessions.get(digest)

    def delete(self, digest: str) -> None:
        with self._lock:
            self._sessions.pop(digest, None)

    def close(self) -> None:
        pass


class SqliteSessions:
    def __init__(self, path: Any) -> None:
        self.path = path
        self._local = threading.local()
        try:
            make_private_file(path)
            with self._conn() as conn:
                conn.execute("CREATE TABLE IF NOT EXISTS irgov_console_sessions (digest TEXT PRIMARY KEY, "
                             "record TEXT NOT NULL, expires REAL NOT NULL)")
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"console sessions `{path}`: {exc}") from None

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000, check_same_thread=False)
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            conn.execute("PRAGMA journal_mode = WAL")
            self._local.conn = conn
        return conn

    def _run(self, sql: str, params: tuple[Any, ...]) -> list[Any]:
        try:
            with self._conn() as conn:
                return conn.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise StoreError(f"console sessions `{self.path}`: {exc}") from None

    def put(self, digest: str, session: Session) -> None:
        self._run("DELETE FROM irgov_console_sessions WHERE expires <= ?", (time.time(),))
        self._run("INSERT OR REPLACE INTO irgov_console_sessions VALUES (?, ?, ?)",
                  (digest, session.to_json(), session.expires))

    def get(self, digest: str) -> Session | None:
        rows = self._run("SELECT record FROM irgov_console_sessions WHERE digest = ?", (digest,))
        return Session.from_json(rows[0][0]) if rows else None

    def delete(self, digest: str) -> None:
        self._run("DELETE FROM irgov_console_sessions WHERE digest = ?", (digest,))

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None


class RedisSessions:
    def __init__(self, url: StoreURL) -> None:
        from ...storage.redis_client import redis_client, redis_error

        self._client = redis_client(url, what="console sessions")
        self._error = redis_error("console sessions")
        self._prefix = url.options.get("prefix", "irgov:") + "console:session:"

    def _call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        try:
            return getattr(self._client, method)(*args, **kwargs)
        except self._error as exc:
            raise StoreError(f"console sessions: redis: {type(exc).__name__}") from None

    def put(self, digest: str, session: Session) -> None:
        self._call("set", self._prefix + digest, session.to_json(),
                   px=max(1, int((session.expires - time.time()) * 1000)))

    def get(self, digest: str) -> Session | None:
        text = self._call("get", self._prefix + digest)
        return None if text is None else Session.from_json(text)

    def delete(self, digest: str) -> None:
        self._call("delete", self._prefix + digest)

    def close(self) -> None:
        self._client.close()


class PostgresSessions:
    def __init__(self, url: StoreURL) -> None:
        from ...storage.postgres_client import open_pool

        self._pool = open_pool(url, what="console sessions")
        self._run("CREATE TABLE IF NOT EXISTS irgov_console_sessions (digest TEXT PRIMARY KEY, "
                  "record TEXT NOT NULL, expires DOUBLE PRECISION NOT NULL)", ())

    def _run(self, sql: str, params: tuple[Any, ...], fetch: bool = False) -> list[Any]:
        import psycopg

        try:
            with self._pool.connection() as conn:
                cursor = conn.execute(sql, params)
                return list(cursor.fetchall()) if fetch else []
        except psycopg.Error as exc:
            raise StoreError(f"console sessions: postgresql: {type(exc).__name__}") from None

    def put(self, digest: str, session: Session) -> None:
        self._run("DELETE FROM irgov_console_sessions WHERE expires <= %s", (time.time(),))
        self._run("INSERT INTO irgov_console_sessions VALUES (%s, %s, %s) ON CONFLICT (digest) "
                  "DO UPDATE SET record = excluded.record, expires = excluded.expires",
                  (digest, session.to_json(), session.expires))

    def get(self, digest: str) -> Session | None:
        rows = self._run("SELECT record FROM irgov_console_sessions WHERE digest = %s", (digest,), fetch=True)
        return Session.from_json(rows[0][0]) if rows else None

    def delete(self, digest: str) -> None:
        self._run("DELETE FROM irgov_console_sessions WHERE digest = %s", (digest,))

    def close(self) -> None:
        self._pool.close()


class LazySessions:
    """Opens the store on first use: a router that never serves the console touches nothing."""

    def __init__(self, store_address: str) -> None:
        self._address = store_address
        self._store: SessionStore | None = None
        self._lock = threading.Lock()

    def _opened(self) -> SessionStore:
        with self._lock:
            if self._store is None:
                self._store = _open(self._address)
            return self._store

    def put(self, digest: str, session: Session) -> None:
        self._opened().put(digest, session)

    def get(self, digest: str) -> Session | None:
        return self._opened().get(digest)

    def delete(self, digest: str) -> None:
        self._opened().delete(digest)

    def close(self) -> None:
        with self._lock:
            if self._store is not None:
                self._store.close()
                self._store = None


def open_sessions(store_address: str) -> SessionStore:
    """The session store beside the approval store `store_address` names, opened on first use."""
    return LazySessions(store_address)


def _open(store_address: str) -> SessionStore:
    url = StoreURL.parse(store_address, what="approval store")
    if url.is_redis:
        return RedisSessions(url)
    if url.is_postgres:
        return PostgresSessions(url)
    if url.scheme == "sqlite":
        path = url.sqlite_path()
        return SqliteSessions(path.with_name(path.stem + ".console-sessions.db"))
    return MemorySessions()
