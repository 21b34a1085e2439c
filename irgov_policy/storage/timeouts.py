"""How long a request waits on a store before it is answered 503 (`store_timeout`).

One setting for every backend, each applying it its own way: SQLite as the busy timeout (a
database write-locked by another connection), Redis as the socket timeout of each command (a
server paused or overloaded), PostgreSQL as the statement and lock timeouts and the wait for a
pooled connection. Short by default: a request held for tens of seconds holds a thread of the
shared pool, and enough of them stall every route. `/health` probes on threads of its own.
"""

from __future__ import annotations

import math
import sqlite3

from ..errors import StoreError, StoreTimeoutError

__all__ = ["DEFAULT_STORE_TIMEOUT", "check_store_timeout", "sqlite_busy", "timed_out"]

DEFAULT_STORE_TIMEOUT = 5.0
_BUSY_CODES = {sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED}


def check_store_timeout(seconds: object, *, what: str) -> float:
    """`seconds` as a float when it is a positive finite number, else a `StoreError`."""
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not math.isfinite(seconds) \
            or seconds <= 0:
        raise StoreError(f"{what} timeout must be a positive number of seconds, not `{seconds!r}`")
    return float(seconds)


def sqlite_busy(exc: BaseException) -> bool:
    """Whether a sqlite error says another connection holds the lock (after the busy timeout)."""
    code = getattr(exc, "sqlite_errorcode", None)
    if isinstance(code, int):
        return code & 0xFF in _BUSY_CODES
    return "database is locked" in str(exc)


def timed_out(store: str, backend: str, seconds: float, what: str) -> StoreTimeoutError:
    """The error of a store that did not answer `what` within `seconds`; the message names the
    store and its kind, never its address (it reaches the server log only)."""
    return StoreTimeoutError(f"the {store} ({backend}) did not answer within {seconds:g} s: cannot {what}",
                             store=store, backend=backend, seconds=seconds)
