"""Leader leases: one process among many (workers, hosts) runs a housekeeping job such as the
approval sweeper, and another takes over when it dies.

The lease lives where the approvals live, so every process that shares a store elects among
the same candidates:

| store | lease | when a dead holder is replaced |
|---|---|---|
| `memory://` | none: the process is alone with its store | - |
| `sqlite:///x.db` | an exclusive `flock` on `x.db.<name>.lease` (one host, like the file) | at once: the kernel drops the lock of a dead process |
| `redis://` | `SET <prefix>lease:<name> <holder> NX PX <ttl>`, renewed by its holder | when the key expires (`ttl`, 15 s by default) |
| `postgresql://` | a session advisory lock on a connection of its own, kept alive by its holder | when the session ends: at once for a dead process, after TCP keepalives (about 25 s) for a dead host |

`hold()` acquires or renews and says whether this process leads now; it never raises (an
unreachable store means "not the leader", logged). Call it every `renew_every` seconds.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
import zlib
from pathlib import Path
from typing import Any, Protocol

from ..errors import StoreError
from .url import StoreURL

__all__ = ["DEFAULT_LEASE_TTL", "Lease", "LocalLease", "PostgresLease", "RedisLease", "SqliteLease",
           "lease_for"]

logger = logging.getLogger(__name__)

DEFAULT_LEASE_TTL = 15.0
# The advisory lock namespace of leases (the first key of `pg_try_advisory_lock(int, int)`), apart
# from the single-key locks the store takes for migrations and outbox appends.
_PG_LEASE_CLASS = 0x1A60


def holder_id() -> str:
    """Who holds a lease: host and process, for logs and for `GET` of the lease's value."""
    return f"{socket.gethostname()}:{os.getpid()}"


class Lease(Protocol):
    name: str
    renew_every: float

    def hold(self) -> bool:
        """Acquire or renew; True while this process holds the lease. Never raises."""
        ...

    def release(self) -> None:
        """Give the lease up now (a clean stop hands over without waiting for expiry)."""
        ...

    def close(self) -> None:
        """Release, and let go of any connection of the lease's own."""
        ...


class LocalLease:
    """A store no other process shares: this process always leads."""

    def __init__(self, name: str, renew_every: float = DEFAULT_LEASE_TTL / 3) -> None:
        self.name = name
        self.renew_every = renew_every

    def hold(self) -> bool:
        return True

    def release(self) -> None:
        return None

    def close(self) -> None:
        return None


class SqliteLease:
    """An exclusive, non-blocking `flock` on a file beside the database. The lock belongs to the
    open file, so two kernels of one process compete like two processes."""

    def __init__(self, database: Path, name: str, renew_every: float = DEFAULT_LEASE_TTL / 3) -> None:
        self.name = name
        self.renew_every = renew_every
        self.path = Path(f"{database}.{name}.lease")
        self._file: Any = None
        self._lock = threading.Lock()

    def hold(self) -> bool:
        with self._lock:
            if self._file is not None:
                return True
            try:
                import fcntl
            except ImportError:  # pragma: no cover - no flock (Windows): one process per store
                return True
            handle = None
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                # Private like the database beside it; `a+` never truncates another holder's line.
                handle = os.fdopen(os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600), "a+",
                                   encoding="utf-8")
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                if handle is not None:
                    handle.close()
                if not isinstance(exc, BlockingIOError):
                    logger.warning("lease `%s` on `%s`: %s", self.name, self.path, exc)
                return False
            handle.seek(0)
            handle.truncate()
            handle.write(holder_id() + "\n")
            handle.flush()
            self._file = handle
            logger.info("this process leads `%s` (lock file `%s`)", self.name, self.path)
            return True

    def release(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()  # closing the file drops the lock
                self._file = None

    def close(self) -> None:
        self.release()


# KEYS[1] the lease key; ARGV[1] holder, ARGV[2] ttl in ms. Acquire when free, renew when ours.
_REDIS_HOLD = """
local current = redis.call('GET', KEYS[1])
if current == false then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
if current == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
"""
_REDIS_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class RedisLease:
    """A key with an expiry, set only when absent and renewed only by its holder (one script
    each, so a late renewal never extends another holder's lease)."""

    def __init__(self, client: Any, key: str, name: str, ttl: float = DEFAULT_LEASE_TTL) -> None:
        if not 0 < ttl < float("inf"):
            raise StoreError(f"lease ttl must be a positive number of seconds, not `{ttl}`")
        self.name = name
        self.key = key
        self.ttl = ttl
        self.renew_every = ttl / 3
        # Unique per lease object: two kernels of one process are two candidates.
        self.holder = f"{holder_id()}:{secrets.token_hex(4)}"
        self._client = client
        self._leading = False

    def hold(self) -> bool:
        try:
            leading = bool(self._client.eval(_REDIS_HOLD, 1, self.key, self.holder, int(self.ttl * 1000)))
        except Exception as exc:  # unreachable: whoever can still renew leads
            logger.warning("lease `%s` on redis: %s: %s", self.name, type(exc).__name__, exc)
            leading = False
        if leading and not self._leading:
            logger.info("this process leads `%s` (redis key `%s`)", self.name, self.key)
        self._leading = leading
        return leading

    def release(self) -> None:
        if self._leading:
            try:
                self._client.eval(_REDIS_RELEASE, 1, self.key, self.holder)
            except Exception as exc:
                logger.warning("releasing lease `%s` on redis: %s", self.name, exc)
            self._leading = False

    def close(self) -> None:
        self.release()
        self._client.close()


class PostgresLease:
    """A session-level advisory lock held on a connection of its own. The lock lasts as long as
    the session, so the holder checks its connection at every renewal; the server's TCP
    keepalives are shortened so a vanished host's session ends within about 25 s."""

    def __init__(self, url: StoreURL, schema: str, name: str, renew_every: float = DEFAULT_LEASE_TTL / 3) -> None:
        self.name = name
        self.renew_every = renew_every
        self.url = url
        self.key = zlib.crc32(f"{schema}:{name}".encode()) & 0x7FFFFFFF
        self._conn: Any = None

    def hold(self) -> bool:
        try:
            if self._conn is not None:
                self._conn.execute("SELECT 1")
                return True
            return self._acquire()
        except Exception as exc:
            logger.warning("lease `%s` on postgresql: %s", self.name, str(exc).strip().splitlines()[0]
                           if str(exc).strip() else type(exc).__name__)
            self._drop()
            return False

    def _acquire(self) -> bool:
        from .postgres_client import connect

        conn = connect(self.url, what=f"lease `{self.name}`")
        try:
            for setting, value in (("tcp_keepalives_idle", 10), ("tcp_keepalives_interval", 5),
                                   ("tcp_keepalives_count", 3)):
                conn.execute(f"SET {setting} = {value}")
            row = conn.execute("SELECT pg_try_advisory_lock(%s, %s)", (_PG_LEASE_CLASS, self.key)).fetchone()
        except BaseException:
            conn.close()
            raise
        if not row or not row[0]:
            conn.close()
            return False
        self._conn = conn
        logger.info("this process leads `%s` (postgresql advisory lock %d, %d)", self.name, _PG_LEASE_CLASS,
                    self.key)
        return True

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except Exception as exc:  # the session is gone either way
                logger.debug("closing the lease connection: %s", exc)

    def release(self) -> None:
        self._drop()  # ending the session releases its advisory locks

    def close(self) -> None:
        self._drop()


def lease_for(address: str | StoreURL, name: str, *, ttl: float = DEFAULT_LEASE_TTL) -> Lease:
    """The lease named `name` in the store at `address` (an approval store address)."""
    url = StoreURL.parse(address, what="approval store")
    if url.scheme == "sqlite":
        return SqliteLease(url.sqlite_path(), name, renew_every=ttl / 3)
    if url.is_redis:
        from .redis_client import redis_client

        prefix = url.options.get("prefix", "irgov:")
        return RedisLease(redis_client(url, what="lease"), f"{prefix}lease:{name}", name, ttl=ttl)
    if url.is_postgres:
        from .postgres_client import postgres_schema

        return PostgresLease(url, postgres_schema(url, what="approval store"), name, renew_every=ttl / 3)
    return LocalLease(name, renew_every=ttl / 3)
