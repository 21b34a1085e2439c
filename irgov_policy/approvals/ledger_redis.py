"""The ledger of the Redis store, on the store's own client, under `<prefix>ledger:`.

Layout: `ledger:decision:<n>:<tenant>:<ir_hash>` (hash), `ledger:submitters:<n>:<tenant>:<ir_hash>`
(set), `ledger:request:<id>` (hash), `ledger:index:<n>:<tenant>` (sorted set of
`created_us:request_id`), where `<n>` is the length of the tenant id. Keys live for the store's
retention; a granted request at least as long as its approval. The store's GRANT script writes a
request's grant together with its approval (redis_scripts.GRANT); other changes are one
TRANSITION script each.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import asdict
from typing import Any

from .ledger_records import (
    REQUEST_FIELDS,
    REQUEST_INT_FIELDS,
    ApprovalRequest,
    DecisionEntry,
    RequestState,
    check_changes,
    decode_request_cursor,
    encode_request_cursor,
)
from .redis_scripts import TAKE_SEALED, TRANSITION

__all__ = ["RedisLedger"]

#: the fields of a decision's hash read with every entry (the snapshot only when asked for)
_DECISION_FIELDS = ("status", "risk_tier", "request_id", "has_request_id", "decided_us", "step_count",
                    "intent_summary")

logger = logging.getLogger(__name__)


class RedisLedger:
    """`call(what, fn, *args)` runs a client call and turns a Redis error into a `StoreError`."""

    def __init__(self, client: Any, prefix: str, retention_seconds: int, call: Callable[..., Any]) -> None:
        self.prefix = prefix + "ledger:"
        self.retention_seconds = max(1, int(retention_seconds))
        self._client = client
        self._call = call
        self._transition = client.register_script(TRANSITION)
        self._take_sealed = client.register_script(TAKE_SEALED)

    def __repr__(self) -> str:
        return f"RedisLedger(prefix={self.prefix!r})"

    def decision_key(self, tenant_id: str, ir_hash: str) -> str:
        return f"{self.prefix}decision:{len(tenant_id)}:{tenant_id}:{ir_hash}"

    def submitters_key(self, tenant_id: str, ir_hash: str) -> str:
        return f"{self.prefix}submitters:{len(tenant_id)}:{tenant_id}:{ir_hash}"

    def request_key(self, request_id: str) -> str:
        return f"{self.prefix}request:{request_id}"

    def index_key(self, tenant_id: str) -> str:
        return f"{self.prefix}index:{len(tenant_id)}:{tenant_id}"

    def record_decision(self, entry: DecisionEntry, submitted_by: str | None) -> None:
        pipe = self._client.pipeline(transaction=True)
        key = self.decision_key(entry.tenant_id, entry.ir_hash)
        fields: dict[str, Any] = {"status": entry.status, "risk_tier": entry.risk_tier,
                                  "request_id": entry.request_id or "", "decided_us": entry.decided_us,
                                  "has_request_id": int(entry.request_id is not None)}
        optional = {"step_count": entry.step_count, "intent_summary": entry.intent_summary,
                    "snapshot": entry.snapshot}
        # A re-decision replaces the whole entry: a field it does not have is removed, not kept.
        pipe.delete(key)
        pipe.hset(key, mapping={**fields, **{k: v for k, v in optional.items() if v is not None}})
        pipe.expire(key, self.retention_seconds)
        if submitted_by is not None:
            skey = self.submitters_key(entry.tenant_id, entry.ir_hash)
            pipe.sadd(skey, submitted_by)
            pipe.expire(skey, self.retention_seconds)
        self._call("record a decision", pipe.execute)

    def get_decision(self, tenant_id: str, ir_hash: str, *, with_snapshot: bool = False) -> DecisionEntry | None:
        names = [*_DECISION_FIELDS, *(("snapshot",) if with_snapshot else ())]
        values = self._call("read a decision", self._client.hmget, self.decision_key(tenant_id, ir_hash), names)
        data = dict(zip(names, values, strict=True))
        if data["status"] is None:
            return None
        return DecisionEntry(tenant_id, ir_hash, data["status"], int(data["risk_tier"]),
                             data["request_id"] if data["has_request_id"] == "1" else None,
                             int(data["decided_us"]),
                             None if data["step_count"] is None else int(data["step_count"]),
                             data["intent_summary"], data.get("snapshot"))

    def submitters(self, tenant_id: str, ir_hash: str) -> set[str]:
        return set(self._call("read submitters", self._client.smembers, self.submitters_key(tenant_id, ir_hash)))

    @staticmethod
    def _encode(request: ApprovalRequest) -> dict[str, str]:
        out: dict[str, str] = {}
        for name, value in asdict(request).items():
            if value is not None:
                out[name] = value.value if isinstance(value, RequestState) else str(value)
        return out

    @staticmethod
    def decode(data: Mapping[str, str]) -> ApprovalRequest:
        values: dict[str, Any] = {name: None for name in REQUEST_FIELDS}
        for name, text in data.items():
            if name in REQUEST_INT_FIELDS:
                values[name] = int(text)
            elif name in values:
                values[name] = text
        values["state"] = RequestState(values["state"])
        return ApprovalRequest(**values)

    def insert_request(self, request: ApprovalRequest) -> None:
        pipe = self._client.pipeline(transaction=True)
        key = self.request_key(request.request_id)
        pipe.hset(key, mapping=self._encode(request))
        pipe.expire(key, self.retention_seconds)
        index = self.index_key(request.tenant_id)
        pipe.zadd(index, {encode_request_cursor(request): 0})
        pipe.expire(index, self.retention_seconds)
        self._call("record an approval request", pipe.execute)

    def get_request(self, request_id: str) -> ApprovalRequest | None:
        data = self._call("read an approval request", self._client.hgetall, self.request_key(request_id))
        return self.decode(data) if data else None

    def transition(self, request_id: str, *, tenant_id: str, from_states: tuple[RequestState, ...],
                   changes: Mapping[str, Any]) -> ApprovalRequest | None:
        check_changes(changes)
        args: list[str] = [tenant_id, ",".join(s.value for s in from_states)]
        for name, value in changes.items():
            args += [name, "\0" if value is None else (value.value if isinstance(value, RequestState) else str(value))]
        done = self._call("change an approval request", self._transition,
                          keys=[self.request_key(request_id)], args=args)
        return self.get_request(request_id) if done == 1 else None

    def list_requests(self, tenant_id: str, *, state: RequestState | None, limit: int,
                      cursor: str | None) -> tuple[list[ApprovalRequest], str | None]:
        index = self.index_key(tenant_id)
        # Members sort lexicographically as `created_us:request_id`, so newest first is ZREVRANGEBYLEX.
        if cursor is None:
            upper = "+"
        else:
            created_us, request_id = decode_request_cursor(cursor)
            upper = f"({created_us:016d}:{request_id}"
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
        return result, (encode_request_cursor(result[-1]) if len(page) > limit and result else None)

    def take_sealed_token(self, request_id: str, *, tenant_id: str, claimed_by: str,
                          claimed_us: int) -> str | None:
        sealed = self._call("claim a token", self._take_sealed, keys=[self.request_key(request_id)],
                            args=[tenant_id, claimed_by, claimed_us])
        return None if sealed is None else str(sealed)

    def unlinked_grants(self) -> list[ApprovalRequest]:
        """Requests `granted` with no approval linked: only the previous layout (two writes)
        could leave one. Scans the ledger's request keys."""
        found = []
        for key in self._client.scan_iter(match=f"{self.prefix}request:*", count=1000):
            data = self._call("read an approval request", self._client.hgetall, key)
            if data and data.get("state") == RequestState.GRANTED.value and not data.get("approval_id"):
                found.append(self.decode(data))
        return found
