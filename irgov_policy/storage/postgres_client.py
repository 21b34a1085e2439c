"""PostgreSQL connections for a `postgresql://` address: one pool per store and process.

The address is libpq's URI; this package reads two options of its own and hands libpq the rest:
`schema` (where the tables live, `public` by default: one schema per deployment or per test)
and `pool_size` (most connections the pool opens, 8 by default). Every connection the pool hands
out has `search_path` set to that schema, so queries name bare tables.

psycopg 3 and psycopg-pool are the optional `postgres` extra: they are imported here only.
"""

from __future__ import annotations

import re
from typing import Any

from ..errors import StoreError
from .url import StoreURL

__all__ = ["LIBPQ_OPTIONS", "POSTGRES_OPTIONS", "connect", "open_pool", "postgres_schema", "quoted"]

#: options this package reads itself (`auto_migrate`: storage.migrations, read by the store)
POSTGRES_OPTIONS = ("schema", "pool_size", "auto_migrate")
#: libpq options an address may carry through to the server connection
LIBPQ_OPTIONS = ("sslmode", "sslrootcert", "sslcert", "sslkey", "connect_timeout", "application_name",
                 "target_session_attrs")
DEFAULT_POOL_SIZE = 8
CONNECT_TIMEOUT_SECONDS = 5.0
_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]{0,62}")


def _psycopg() -> Any:
    try:
        import psycopg
    except ImportError:
        raise StoreError("a `postgresql://` address needs psycopg: install `irgov-policy[postgres]`") from None
    return psycopg


def postgres_schema(url: StoreURL, *, what: str) -> str:
    """The schema an address names (`public` when none), after checking its options."""
    options = url.check_options((*POSTGRES_OPTIONS, *LIBPQ_OPTIONS), what=what)
    schema = options.get("schema", "public")
    if not _IDENTIFIER.fullmatch(schema):
        raise StoreError(f"{what} option `schema` must be a lowercase identifier, not `{schema}`")
    return schema


def quoted(schema: str) -> str:
    """The schema as an SQL identifier (checked by `postgres_schema`, so quoting is enough)."""
    return f'"{schema}"'


def _conninfo(url: StoreURL) -> str:
    return url.without_options(POSTGRES_OPTIONS)


def connect(url: StoreURL, *, what: str) -> Any:
    """One autocommit connection with `search_path` set to the address's schema."""
    schema = postgres_schema(url, what=what)
    psycopg = _psycopg()
    try:
        conn = psycopg.connect(_conninfo(url), autocommit=True, connect_timeout=int(CONNECT_TIMEOUT_SECONDS))
        conn.execute(f"SET search_path TO {quoted(schema)}")
    except psycopg.Error as exc:
        raise StoreError(f"{what} `{url}`: cannot connect: {_first_line(exc)}") from None
    return conn


def open_pool(url: StoreURL, *, what: str, statement_timeout: float | None = None) -> Any:
    """A psycopg pool on the address, opened and checked (a `StoreError` when no server answers).
    With `statement_timeout` (seconds), every statement and every lock wait of its connections is
    cancelled by the server past it (`storage.timeouts`)."""
    schema = postgres_schema(url, what=what)
    size_text = url.options.get("pool_size", str(DEFAULT_POOL_SIZE))
    if not size_text.isdigit() or int(size_text) < 1:
        raise StoreError(f"{what} option `pool_size` must be a positive integer, not `{size_text}`")
    _psycopg()
    from psycopg_pool import ConnectionPool, PoolTimeout

    def configure(conn: Any) -> None:
        conn.execute(f"SET search_path TO {quoted(schema)}")
        conn.commit()

    kwargs: dict[str, Any] = {"connect_timeout": int(CONNECT_TIMEOUT_SECONDS)}
    if statement_timeout is not None:
        ms = max(1, round(statement_timeout * 1000))
        kwargs["options"] = f"-c statement_timeout={ms} -c lock_timeout={ms}"
    pool = ConnectionPool(_conninfo(url), min_size=1, max_size=int(size_text), configure=configure,
                          open=False, name=f"irgov:{url}", kwargs=kwargs)
    try:
        pool.open(wait=True, timeout=CONNECT_TIMEOUT_SECONDS)
    except PoolTimeout:
        pool.close()
        raise StoreError(f"{what} `{url}`: no postgresql server answers") from None
    return pool


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
