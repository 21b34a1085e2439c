"""Open an approval store from its URL: `memory://`, `sqlite:///path.db`, `redis://host:port/db`."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

from ..errors import StoreError
from .store import ApprovalStore

__all__ = ["open_store"]


def open_store(url: str) -> ApprovalStore:
    """The store a URL names.

    - `memory://[?max_records=N]`: in-process, lost at exit.
    - `sqlite:///relative/path.db` or `sqlite:////absolute/path.db`: a file; its directory is created.
    - `redis://[user:password@]host:port/db[?prefix=irgov:&outbox=STREAM&retention=SECONDS&index_max=N]`
      (and `rediss://` for TLS); the outbox stream defaults to `<prefix>outbox`.
    """
    if not isinstance(url, str) or "://" not in url:
        raise StoreError(f"store url `{url}` must look like `memory://`, `sqlite:///path.db` or `redis://host:port/db`")
    scheme = url.split("://", 1)[0].lower()
    if scheme == "memory":
        from .store_memory import DEFAULT_MAX_RECORDS, MemoryApprovalStore

        options = dict(parse_qsl(urlsplit(url).query, keep_blank_values=True))
        unknown = sorted(set(options) - {"max_records"})
        if unknown:
            raise StoreError("unknown memory store option " + ", ".join(f"`{u}`" for u in unknown))
        text = options.get("max_records", str(DEFAULT_MAX_RECORDS))
        if not text.isdigit():
            raise StoreError(f"memory store option `max_records` must be a positive integer, not `{text}`")
        return MemoryApprovalStore(max_records=int(text))
    if scheme == "sqlite":
        from .store_sqlite import SQLiteApprovalStore

        if not url.startswith("sqlite:///") or len(url) == len("sqlite:///"):
            raise StoreError(f"store url `{url}` must be `sqlite:///relative.db` or `sqlite:////absolute.db`")
        path = url[len("sqlite:///"):]
        if "?" in path:
            raise StoreError(f"store url `{url}` takes no options")
        return SQLiteApprovalStore(path)
    if scheme in ("redis", "rediss"):
        from .store_redis import RedisApprovalStore

        return RedisApprovalStore(url)
    raise StoreError(f"unknown store scheme `{scheme}` in `{url}`: use `memory`, `sqlite` or `redis`")
