"""The kernel's ledger: which decisions it made, who submitted each IR, and the approval requests.

An approval may only be requested for an ESCALATE decision this kernel made, so the kernel keeps
every decision by `(tenant_id, ir_hash)`; a caller cannot forge one. An approval request is a
human step: a submitter asks, an approver grants, and only the grant mints the token.

Two backends share one interface: SQLite (a file next to the SQLite approval store, or an
in-memory database for `memory://`) and Redis (when the approval store is Redis, so every host
sees the same ledger). Each state change of a request is one conditional update, so a request is
granted at most once even when two approvers click at the same time.
"""

from __future__ import annotations

import logging
import re
import sqlite3
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

from .errors import StoreError
from .storage import StoreURL, redis_client, redis_error
from .text_rules import REQUEST_ID, new_request_id

__all__ = [
    "ApprovalRequest",
    "DecisionEntry",
    "Ledger",
    "RedisLedger",
    "RequestState",
    "SQLiteLedger",
    "decode_cursor",
    "encode_cursor",
    "ledger_for_store",
    "new_request_id",
]

logger = logging.getLogger(__name__)

_CURSOR = re.compile(rf"(\d{{16}}):({REQUEST_ID.pattern})")


class RequestState(StrEnum):
    """A request moves forward only: requested -> granted | revoked, granted -> revoked."""

    REQUESTED = "requested"
    GRANTED = "granted"
    REVOKED = "revoked"


@dataclass(frozen=True)
class DecisionEntry:
    tenant_id: str
    ir_hash: str
    status: str
    risk_tier: int
    request_id: str | None
    decided_us: int


@dataclass(frozen=True)
class ApprovalRequest:
    request_id: str
    tenant_id: str
    ir_hash: str
    requested_by: str
    risk_tier: int
    created_us: int
    state: RequestState = RequestState.REQUESTED
    reason: str | None = None
    approval_id: str | None = None
    granted_by: str | None = None
    granted_us: int | None = None
    revoked_by: str | None = None
    revoked_us: int | None = None
    revoke_reason: str | None = None

    def with_changes(self, **changes: Any) -> ApprovalRequest:
        return replace(self, **changes)


def encode_cursor(request: ApprovalRequest) -> str:
    """Position after `request` in newest-first order."""
    return f"{request.created_us:016d}:{request.request_id}"


def decode_cursor(cursor: str) -> tuple[int, str]:
    match = _CURSOR.fullmatch(cursor) if isinstance(cursor, str) else None
    if match is None:
        raise ValueError(f"cursor `{cursor}` is not one returned by a previous page")
    return int(match.group(1)), match.group(2)


class Ledger(Protocol):
    def record_decision(self, entry: DecisionEntry, submitted_by: str | None) -> None: ...

    def get_decision(self, tenant_id: str, ir_hash: str) -> DecisionEntry | None: ...

    def submitters(self, tenant_id: str, ir_hash: str) -> set[str]: ...

    def insert_request(self, request: ApprovalRequest) -> None: ...

    def get_request(self, request_id: str) -> ApprovalRequest | None: ...

    def transition(self, request_id: str, *, tenant_id: str, from_states: tuple[RequestState, ...],
                   changes: Mapping[str, Any]) -> ApprovalRequest | None:
        """Apply `changes` when the request is in one of `from_states`; the request after, or None."""
        ...

    def list_requests(self, tenant_id: str, *, state: RequestState | None, limit: int,
                      cursor: str | None) -> tuple[list[ApprovalRequest], str | None]: ...

    def purge(self, cutoff_us: int) -> int: ...

    def close(self) -> None: ...


_REQUEST_FIELDS = [f for f in ApprovalRequest.__dataclass_fields__]

_SQLITE_SCHEMA = """
CREATE TABLE IF NOT EXISTS irgov_decisions (
    tenant_id  TEXT NOT NULL,
    ir_hash    TEXT NOT NULL,
    status     TEXT NOT NULL,
    risk_tier  INTEGER NOT NULL,
    request_id TEXT,
    decided_us INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, ir_hash)
);
CREATE TABLE IF NOT EXISTS irgov_submitters (
    tenant_id TEXT NOT NULL,
    ir_hash   TEXT NOT NULL,
    principal TEXT NOT NULL,
    PRIMARY KEY (tenant_id, ir_hash, principal)
);
CREATE TABLE IF NOT EXISTS irgov_approval_requests (
    request_id    TEXT PRIMARY KEY,
    tenant_id     TEXT NOT NULL,
    ir_hash       TEXT NOT NULL,
    requested_by  TEXT NOT NULL,
    risk_tier     INTEGER NOT NULL,
    created_us    INTEGER NOT NULL,
    state         TEXT NOT NULL CHECK (state IN ('requested', 'granted', 'revoked')),
    reason        TEXT,
    approval_id   TEXT,
    granted_by    TEXT,
    granted_us    INTEGER,
    revoked_by    TEXT,
    revoked_us    INTEGER,
    revoke_reason TEXT
);
CREATE INDEX IF NOT EXISTS irgov_requests_tenant
    ON irgov_approval_requests (tenant_id, created_us DESC, request_id DESC);
"""


class SQLiteLedger:
    """The ledger in SQLite. `path=":memory:"` keeps it in process (for the memory store)."""

    def __init__(self, path: str) -> None:
        self.path = path
        try:
            if path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(path, timeout=30.0, check_same_thread=False, isolation_level=None)
            if path != ":memory:":
                self._conn.execute("PRAGMA journal_mode=WAL")
                self._conn.execute("PRAGMA synchronous=FULL")
            self._conn.execute("PRAGMA busy_timeout=30000")
            self._conn.executescript(_SQLITE_SCHEMA)
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(f"cannot open the ledger `{path}`: {exc}") from None
        # One connection guarded by a lock: ledger calls are short and SQLite serialises writers anyway.
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"SQLiteLedger({self.path!r})"

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                try:
                    yield self._conn
                except BaseException:
                    self._conn.execute("ROLLBACK")
                    raise
                self._conn.execute("COMMIT")
            except sqlite3.Error as exc:
                raise StoreError(f"ledger `{self.path}`: {exc}") from None

    def _read(self, sql: str, args: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        with self._lock:
            try:
                return self._conn.execute(sql, args).fetchall()
            except sqlite3.Error as exc:
                raise StoreError(f"ledger `{self.path}`: {exc}") from None

    def record_decision(self, entry: DecisionEntry, submitted_by: str | None) -> None:
        with self._tx() as conn:
            conn.execute(
                "INSERT INTO irgov_decisions (tenant_id, ir_hash, status, risk_tier, request_id, decided_us) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (tenant_id, ir_hash) DO UPDATE SET "
                "status = excluded.status, risk_tier = excluded.risk_tier, "
                "request_id = excluded.request_id, decided_us = excluded.decided_us",
                (entry.tenant_id, entry.ir_hash, entry.status, entry.risk_tier, entry.request_id,
                 entry.decided_us),
            )
            if submitted_by is not None:
                conn.execute("INSERT OR IGNORE INTO irgov_submitters VALUES (?, ?, ?)",
                             (entry.tenant_id, entry.ir_hash, submitted_by))

    def get_decision(self, tenant_id: str, ir_hash: str) -> DecisionEntry | None:
        rows = self._read("SELECT tenant_id, ir_hash, status, risk_tier, request_id, decided_us "
                          "FROM irgov_decisions WHERE tenant_id = ? AND ir_hash = ?", (tenant_id, ir_hash))
        return DecisionEntry(*rows[0]) if rows else None

    def submitters(self, tenant_id: str, ir_hash: str) -> set[str]:
        rows = self._read("SELECT principal FROM irgov_submitters WHERE tenant_id = ? AND ir_hash = ?",
                          (tenant_id, ir_hash))
        return {r[0] for r in rows}

    def insert_request(self, request: ApprovalRequest) -> None:
        values = asdict(request)
        values["state"] = request.state.value
        with self._tx() as conn:
            conn.execute(
                f"INSERT INTO irgov_approval_requests ({', '.join(_REQUEST_FIELDS)}) "
                f"VALUES ({', '.join('?' for _ in _REQUEST_FIELDS)})",
                tuple(values[f] for f in _REQUEST_FIELDS),
            )

    @staticmethod
    def _request(row: tuple[Any, ...]) -> ApprovalRequest:
        values = dict(zip(_REQUEST_FIELDS, row, strict=True))
        values["state"] = RequestState(values["state"])
        return ApprovalRequest(**values)

    def get_request(self, request_id: str) -> ApprovalRequest | None:
        rows = self._read(f"SELECT {', '.join(_REQUEST_FIELDS)} FROM irgov_approval_requests "
                          "WHERE request_id = ?", (request_id,))
        return self._request(rows[0]) if rows else None

    def transition(self, request_id: str, *, tenant_id: str, from_states: tuple[RequestState, ...],
                   changes: Mapping[str, Any]) -> ApprovalRequest | None:
        unknown = set(changes) - set(_REQUEST_FIELDS)
        if unknown or {"request_id", "tenant_id"} & set(changes):
            raise ValueError(f"cannot change {sorted(unknown | {'request_id', 'tenant_id'} & set(changes))}")
        values = {k: (v.value if isinstance(v, RequestState) else v) for k, v in changes.items()}
        assignments = ", ".join(f"{k} = ?" for k in values)
        states = ", ".join("?" for _ in from_states)
        with self._tx() as conn:
            cursor = conn.execute(
                f"UPDATE irgov_approval_requests SET {assignments} "
                f"WHERE request_id = ? AND tenant_id = ? AND state IN ({states})",
                (*values.values(), request_id, tenant_id, *(s.value for s in from_states)),
            )
            if cursor.rowcount != 1:
                return None
            row = conn.execute(f"SELECT {', '.join(_REQUEST_FIELDS)} FROM irgov_approval_requests "
                               "WHERE request_id = ?", (request_id,)).fetchone()
        return self._request(row)

    def list_requests(self, tenant_id: str, *, state: RequestState | None, limit: int,
                      cursor: str | None) -> tuple[list[ApprovalRequest], str | None]:
        where = ["tenant_id = ?"]
        args: list[Any] = [tenant_id]
        if state is not None:
            where.append("state = ?")
            args.append(state.value)
        if cursor is not None:
            created_us, request_id = decode_cursor(cursor)
            where.append("(created_us < ? OR (created_us = ? AND request_id < ?))")
            args += [created_us, created_us, request_id]
        rows = self._read(
            f"SELECT {', '.join(_REQUEST_FIELDS)} FROM irgov_approval_requests WHERE {' AND '.join(where)} "
            "ORDER BY created_us DESC, request_id DESC LIMIT ?", (*args, limit + 1))
        page = [self._request(r) for r in rows[:limit]]
        return page, (encode_cursor(page[-1]) if len(rows) > limit and page else None)

    def purge(self, cutoff_us: int) -> int:
        """Forget decisions decided and requests created before `cutoff_us`."""
        with self._tx() as conn:
            removed = conn.execute("DELETE FROM irgov_approval_requests WHERE created_us < ?",
                                   (cutoff_us,)).rowcount
            conn.execute(
                "DELETE FROM irgov_submitters WHERE EXISTS (SELECT 1 FROM irgov_decisions d WHERE "
                "d.tenant_id = irgov_submitters.tenant_id AND d.ir_hash = irgov_submitters.ir_hash "
                "AND d.decided_us < ?)", (cutoff_us,))
            removed += conn.execute("DELETE FROM irgov_decisions WHERE decided_us < ?", (cutoff_us,)).rowcount
        return int(removed)

    def close(self) -> None:
        with self._lock:
            self._conn.close()


# In Redis, a request is a hash; a state change is one Lua script so it is atomic across hosts.
_TRANSITION = """
local state = redis.call('HGET', KEYS[1], 'state')
if not state then return 0 end
if redis.call('HGET', KEYS[1], 'tenant_id') ~= ARGV[1] then return 0 end
local allowed = false
for s in string.gmatch(ARGV[2], '[^,]+') do if s == state then allowed = true end end
if not allowed then return 0 end
for i = 3, #ARGV, 2 do
  if ARGV[i + 1] == '\\0' then redis.call('HDEL', KEYS[1], ARGV[i])
  else redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
end
return 1
"""


class RedisLedger:
    """The ledger in Redis, under `<prefix>ledger:`. Keys expire after the retention period."""

    def __init__(self, url: str, *, prefix: str = "irgov:", retention_seconds: int = 30 * 86400) -> None:
        self.prefix = prefix + "ledger:"
        self.retention_seconds = max(1, int(retention_seconds))
        self._client: Any = redis_client(StoreURL.parse(url, what="redis ledger"), what="redis ledger")
        self._redis_error: type[Exception] = redis_error("redis ledger")
        self._transition = self._client.register_script(_TRANSITION)

    def __repr__(self) -> str:
        return f"RedisLedger(prefix={self.prefix!r})"

    def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except self._redis_error as exc:
            raise StoreError(f"redis ledger: cannot {what}: {type(exc).__name__}: {exc}") from None

    def _dkey(self, tenant_id: str, ir_hash: str) -> str:
        return f"{self.prefix}decision:{len(tenant_id)}:{tenant_id}:{ir_hash}"

    def _skey(self, tenant_id: str, ir_hash: str) -> str:
        return f"{self.prefix}submitters:{len(tenant_id)}:{tenant_id}:{ir_hash}"

    def _rkey(self, request_id: str) -> str:
        return f"{self.prefix}request:{request_id}"

    def _ikey(self, tenant_id: str) -> str:
        return f"{self.prefix}index:{len(tenant_id)}:{tenant_id}"

    def record_decision(self, entry: DecisionEntry, submitted_by: str | None) -> None:
        pipe = self._client.pipeline(transaction=True)
        key = self._dkey(entry.tenant_id, entry.ir_hash)
        pipe.hset(key, mapping={"status": entry.status, "risk_tier": entry.risk_tier,
                                "request_id": entry.request_id or "", "decided_us": entry.decided_us,
                                "has_request_id": int(entry.request_id is not None)})
        pipe.expire(key, self.retention_seconds)
        if submitted_by is not None:
            skey = self._skey(entry.tenant_id, entry.ir_hash)
            pipe.sadd(skey, submitted_by)
            pipe.expire(skey, self.retention_seconds)
        self._call("record a decision", pipe.execute)

    def get_decision(self, tenant_id: str, ir_hash: str) -> DecisionEntry | None:
        data = self._call("read a decision", self._client.hgetall, self._dkey(tenant_id, ir_hash))
        if not data:
            return None
        return DecisionEntry(tenant_id, ir_hash, data["status"], int(data["risk_tier"]),
                             data["request_id"] if data.get("has_request_id") == "1" else None,
                             int(data["decided_us"]))

    def submitters(self, tenant_id: str, ir_hash: str) -> set[str]:
        return set(self._call("read submitters", self._client.smembers, self._skey(tenant_id, ir_hash)))

    @staticmethod
    def _encode(request: ApprovalRequest) -> dict[str, str]:
        out: dict[str, str] = {}
        for name, value in asdict(request).items():
            if value is not None:
                out[name] = value.value if isinstance(value, RequestState) else str(value)
        return out

    @staticmethod
    def _decode(data: Mapping[str, str]) -> ApprovalRequest:
        ints = {"risk_tier", "created_us", "granted_us", "revoked_us"}
        values: dict[str, Any] = {name: None for name in _REQUEST_FIELDS}
        for name, text in data.items():
            if name in ints:
                values[name] = int(text)
            elif name in values:
                values[name] = text
        values["state"] = RequestState(values["state"])
        return ApprovalRequest(**values)

    def insert_request(self, request: ApprovalRequest) -> None:
        pipe = self._client.pipeline(transaction=True)
        key = self._rkey(request.request_id)
        pipe.hset(key, mapping=self._encode(request))
        pipe.expire(key, self.retention_seconds)
        index = self._ikey(request.tenant_id)
        pipe.zadd(index, {encode_cursor(request): 0})
        pipe.expire(index, self.retention_seconds)
        self._call("record an approval request", pipe.execute)

    def get_request(self, request_id: str) -> ApprovalRequest | None:
        data = self._call("read an approval request", self._client.hgetall, self._rkey(request_id))
        return self._decode(data) if data else None

    def transition(self, request_id: str, *, tenant_id: str, from_states: tuple[RequestState, ...],
                   changes: Mapping[str, Any]) -> ApprovalRequest | None:
        args: list[str] = [tenant_id, ",".join(s.value for s in from_states)]
        for name, value in changes.items():
            if name not in _REQUEST_FIELDS or name in ("request_id", "tenant_id"):
                raise ValueError(f"cannot change `{name}`")
            args += [name, "\0" if value is None else (value.value if isinstance(value, RequestState) else str(value))]
        done = self._call("change an approval request", self._transition,
                          keys=[self._rkey(request_id)], args=args)
        return self.get_request(request_id) if done == 1 else None

    def list_requests(self, tenant_id: str, *, state: RequestState | None, limit: int,
                      cursor: str | None) -> tuple[list[ApprovalRequest], str | None]:
        index = self._ikey(tenant_id)
        # Members sort lexicographically as `created_us:request_id`, so newest first is ZREVRANGEBYLEX.
        upper = "+" if cursor is None else "(" + ":".join(map(str, _cursor_key(cursor)))
        page: list[ApprovalRequest] = []
        while len(page) <= limit:
            members = self._call("list approval requests", self._client.zrevrangebylex, index, upper, "-",
                                 start=0, num=max(limit * 2, 10))
            if not members:
                break
            for member in members:
                request = self.get_request(member.split(":", 1)[1])
                if request is None:  # expired from Redis: drop it from the index too
                    self._call("prune the index", self._client.zrem, index, member)
                    continue
                if state is None or request.state is state:
                    page.append(request)
                    if len(page) > limit:
                        break
            upper = "(" + members[-1]
        result = page[:limit]
        return result, (encode_cursor(result[-1]) if len(page) > limit and result else None)

    def purge(self, cutoff_us: int) -> int:
        return 0  # keys carry their own expiry

    def close(self) -> None:
        self._client.close()


def _cursor_key(cursor: str) -> tuple[str, str]:
    created_us, request_id = decode_cursor(cursor)
    return f"{created_us:016d}", request_id


def ledger_for_store(store_url: str | StoreURL, *, retention_seconds: float) -> Ledger:
    """The ledger that lives next to the approval store `store_url`."""
    address = StoreURL.parse(store_url, what="approval store")
    if address.scheme == "memory":
        return SQLiteLedger(":memory:")
    if address.scheme == "sqlite":
        path = address.sqlite_path()
        return SQLiteLedger(str(path.with_name(path.stem + ".ledger.db")))
    if address.is_redis:
        return RedisLedger(address.server_text(), prefix=address.options.get("prefix", "irgov:"),
                           retention_seconds=int(retention_seconds))
    raise StoreError(f"no ledger for the approval store `{address}`: use `memory`, `sqlite` or `redis`")
