"""The one place a `redis.Redis` client is built, so every Redis user (the approval store and
its ledger, the Redis event sink, the outbox stream source) connects with the same settings.

- `CONNECT_TIMEOUT` (5 s): a server that does not accept the connection fails fast, and the
  caller reports the store unreachable instead of hanging a request.
- `SOCKET_TIMEOUT` (30 s): a command (a Lua script, a purge batch) may take a while on a busy
  server, but never blocks a thread for ever. The approval store passes its own, shorter
  `socket_timeout` (`store_timeout`, `storage.timeouts`): it is on the request path.
- `HEALTH_CHECK_INTERVAL` (30 s): a connection idle for longer is checked with a PING before
  use, so one dropped by a proxy or a server restart is replaced instead of failing a command.
- No automatic retry on timeout: a write whose reply was lost may have been applied, and a
  retried XADD would record an event twice.
"""

from __future__ import annotations

from typing import Any

from ..errors import StoreError
from .url import StoreURL

__all__ = ["CONNECT_TIMEOUT", "HEALTH_CHECK_INTERVAL", "SOCKET_TIMEOUT", "redis_client", "redis_error",
           "redis_timeout_error"]

CONNECT_TIMEOUT = 5.0
SOCKET_TIMEOUT = 30.0
HEALTH_CHECK_INTERVAL = 30


def _redis_module(what: str) -> Any:
    try:
        import redis
    except ImportError:  # pragma: no cover - the redis extra is installed in CI
        raise StoreError(f"the {what} needs the `redis` extra: pip install 'irgov-policy[redis]'") from None
    return redis


def redis_client(url: StoreURL, *, what: str = "redis store", decode_responses: bool = True,
                 socket_timeout: float = SOCKET_TIMEOUT) -> Any:
    """A client of the server and database `url` names (its options are the caller's business).
    No connection is made until the first command. `socket_timeout` bounds each command, and the
    connect timeout too when it is shorter than `CONNECT_TIMEOUT`."""
    if not url.is_redis:
        raise StoreError(f"{what} address `{url}` is not a `redis://` or `rediss://` address")
    redis = _redis_module(what)
    try:
        return redis.Redis.from_url(url.server_text(), decode_responses=decode_responses,
                                    socket_connect_timeout=min(CONNECT_TIMEOUT, socket_timeout),
                                    socket_timeout=socket_timeout,
                                    health_check_interval=HEALTH_CHECK_INTERVAL)
    except ValueError as exc:
        raise StoreError(f"{what} address `{url}` is invalid: {exc}") from None


def redis_error(what: str = "redis store") -> type[Exception]:
    """`redis.RedisError`, the base of every error a client raises."""
    error: type[Exception] = _redis_module(what).RedisError
    return error


def redis_timeout_error(what: str = "redis store") -> type[Exception]:
    """`redis.TimeoutError`: a command or a connection that did not answer within its timeout."""
    error: type[Exception] = _redis_module(what).TimeoutError
    return error
