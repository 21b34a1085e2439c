"""Open an approval store from its address (`docs/deployment.md#store-addresses`).

One opener per scheme in `_OPENERS`; a new backend adds its opener here and its parser in
`irgov_policy.storage.url`."""

from __future__ import annotations

from collections.abc import Callable

from ..errors import StoreError
from ..storage import StoreURL
from ..storage.timeouts import DEFAULT_STORE_TIMEOUT, check_store_timeout
from .store import ApprovalStore

__all__ = ["open_store"]


def _open_memory(url: StoreURL, retention_seconds: int | None, timeout: float) -> ApprovalStore:
    from .store_memory import DEFAULT_MAX_RECORDS, MemoryApprovalStore

    options = url.check_options({"max_records"}, what="memory store")
    text = options.get("max_records", str(DEFAULT_MAX_RECORDS))
    if not text.isdigit() or int(text) < 1:
        raise StoreError(f"memory store option `max_records` must be a positive integer, not `{text}`")
    return MemoryApprovalStore(max_records=int(text))


def _open_sqlite(url: StoreURL, retention_seconds: int | None, timeout: float) -> ApprovalStore:
    from ..storage.migrations import parse_auto_migrate
    from .store_sqlite import SQLiteApprovalStore

    options = url.check_options(("auto_migrate",), what="sqlite store")
    return SQLiteApprovalStore(url.sqlite_path(),
                               auto_migrate=parse_auto_migrate(options, default=True, what="sqlite store"),
                               timeout=timeout)


def _open_redis(url: StoreURL, retention_seconds: int | None, timeout: float, *,
                require_durable: bool = False) -> ApprovalStore:
    from .store_redis import RedisApprovalStore

    return RedisApprovalStore(url, default_retention_seconds=retention_seconds, timeout=timeout,
                              require_durable=require_durable)


def _open_postgres(url: StoreURL, retention_seconds: int | None, timeout: float) -> ApprovalStore:
    from .store_postgres import PostgresApprovalStore

    return PostgresApprovalStore(url, timeout=timeout)


_OPENERS: dict[str, Callable[[StoreURL, int | None, float], ApprovalStore]] = {
    "memory": _open_memory,
    "sqlite": _open_sqlite,
    "redis": _open_redis,
    "rediss": _open_redis,
    "postgresql": _open_postgres,
    "postgres": _open_postgres,
}


def open_store(url: str | StoreURL, *, retention_seconds: int | None = None,
               timeout: float = DEFAULT_STORE_TIMEOUT, require_durable_redis: bool = False) -> ApprovalStore:
    """The store an address names: `memory://[?max_records=N]`, `sqlite:///relative.db`,
    `sqlite:////absolute.db` (`?auto_migrate=false` refuses an older schema), `redis://[user:password@]host:port/db[?options]`, `rediss://`, or
    `postgresql://[user[:password]@]host[:port]/dbname[?schema=NAME]` (`postgres://`; an older
    schema is upgraded at start-up only with `auto_migrate=true`, else by `irgov db upgrade`).

    `retention_seconds` is how long a shared store (Redis) keeps finished approvals, their
    ledger entries and its outbox stream when the address sets no `retention` option. `timeout`
    is how long one call waits on the store before `StoreTimeoutError` (`storage.timeouts`).
    A Redis server without persistence is a warning, or refused with `require_durable_redis`
    (`storage.redis_persistence`)."""
    parsed = StoreURL.parse(url, what="approval store")
    opener = _OPENERS.get(parsed.scheme)
    if opener is None:
        known = ", ".join(f"`{s}`" for s in sorted(_OPENERS))
        raise StoreError(f"approval store address `{parsed}`: no approval store for scheme `{parsed.scheme}`: "
                         f"use {known}")
    timeout = check_store_timeout(timeout, what="approval store")
    if parsed.is_redis:
        return _open_redis(parsed, retention_seconds, timeout, require_durable=require_durable_redis)
    return opener(parsed, retention_seconds, timeout)
