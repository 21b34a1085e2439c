"""The Redis store: approvals shared by many hosts.

Each change is one Lua script, so it is atomic on the server whatever the number of clients.
The consume script also appends `ir.approval_consumed` to the outbox stream: the consumption and
its event are one unit. Keys live for `ttl + retention` from their creation, not until `expires_at`, so a replay
after expiry is still recognised as consumed; the outbox stream likewise keeps its entries for the
retention (a relay must import them within it). Per-tenant indexes are sorted sets of
`created_us:approval_id` members trimmed on every create (older than the longest possible life of
a key, or beyond `index_max` entries), so they never grow without bound.

Layout under the key prefix `P` (default `irgov:`): `P approval:<id>` (hash; its
`consume_answer` field holds the execution gate's answer of a keyed consume), `P token:<digest>`
(approval id), `P tenant:<tenant>` (index), `P due` (pending ids by expiry), `P finished`
(finished ids by finish time), `P consumekey:<sha256 of tenant and key>` (the approval a consume
with that idempotency key consumed, as long as the approval's key lives). Scripts derive a few keys from the prefix, so the store needs a
single Redis node (or a primary with replicas), not Redis Cluster. Times come from the caller's
clock: hosts sharing a store need synchronised clocks.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlencode

from ..errors import IdempotencyConflictError, StoreError
from ..events.envelope import Event
from ..storage import StoreURL, redis_client, redis_error
from ..storage.redis_client import redis_timeout_error
from ..storage.redis_persistence import check_persistence
from ..storage.timeouts import DEFAULT_STORE_TIMEOUT, check_store_timeout, timed_out
from . import redis_scripts as scripts
from .ledger_records import ApprovalRequest, Ledger, RequestState
from .ledger_redis import RedisLedger
from .ledger_sqlite import ORPHAN_REASON, ORPHAN_WINDOW_US
from .records import ApprovalRecord, ApprovalStatus, ConsumeOutcome, ConsumeReason, decode_ttl, encode_ttl
from .store import decode_cursor, encode_cursor, expire_each

__all__ = ["DEFAULT_OUTBOX_STREAM", "DEFAULT_PREFIX", "DEFAULT_RETENTION", "RedisApprovalStore"]

logger = logging.getLogger(__name__)

DEFAULT_PREFIX = "irgov:"
DEFAULT_OUTBOX_STREAM = "irgov:outbox"
DEFAULT_RETENTION = 7 * 86_400
DEFAULT_INDEX_MAX = 100_000
_LONGEST_TTL = 366 * 86_400  # bound for index trimming; the service refuses longer TTLs anyway

_FIELDS = ("approval_id", "tenant_id", "ir_hash", "token_kid", "token_digest", "status", "ttl_seconds",
           "created_us", "expires_us", "created_by", "reason", "consumed_us", "consumed_by", "revoked_us",
           "revoked_by", "revoke_reason", "expired_us", "finished_us", "mismatches", "correlation_id")
# The consume script's refusals of a reused idempotency key (the words of check_replay).
_CONFLICTS = {"conflict_token": "to consume another approval token", "conflict_caller": "by another caller",
              "conflict_ir": "for another ir hash"}
_INT_FIELDS = {"created_us", "expires_us", "consumed_us", "revoked_us", "expired_us", "finished_us", "mismatches"}




def _key_ref(tenant_id: str, idempotency_key: str) -> str:
    """The name suffix of a consume's key: a digest of (tenant, key), bounded, and no tenant or
    key text can make two pairs collide on one name."""
    return hashlib.sha256(f"{len(tenant_id)}:{tenant_id}:{idempotency_key}".encode()).hexdigest()


def _parse_positive_int(name: str, text: str) -> int:
    if not text.isdigit() or int(text) <= 0:
        raise StoreError(f"redis store option `{name}` must be a positive integer, not `{text}`")
    return int(text)


class RedisApprovalStore:
    def __init__(self, url: str | StoreURL, *, prefix: str | None = None, outbox_stream: str | None = None,
                 retention_seconds: int | None = None, index_max: int | None = None,
                 default_retention_seconds: int | None = None, timeout: float = DEFAULT_STORE_TIMEOUT,
                 require_durable: bool = False) -> None:
        address = StoreURL.parse(url, what="redis store")
        #: each command's socket timeout (`store_timeout`): a paused server is answered 503, not waited for
        self.timeout = check_store_timeout(timeout, what="redis store")
        options = address.check_options({"prefix", "outbox", "retention", "index_max"}, what="redis store")
        self.url = address
        self.prefix = prefix if prefix is not None else options.get("prefix", DEFAULT_PREFIX)
        # Under the store's own prefix by default: deployments (or test runs) that share a server
        # under different prefixes must not share, and relay, each other's outbox.
        self.outbox_stream = outbox_stream or options.get("outbox") or (
            f"{self.prefix}outbox" if self.prefix else DEFAULT_OUTBOX_STREAM)
        self.retention_seconds = retention_seconds or (
            _parse_positive_int("retention", options["retention"]) if "retention" in options
            else max(1, int(default_retention_seconds or DEFAULT_RETENTION)))
        self.index_max = index_max or (
            _parse_positive_int("index_max", options["index_max"]) if "index_max" in options else DEFAULT_INDEX_MAX)
        self.outbox_url: str | None = f"{address.server_text()}?{urlencode({'stream': self.outbox_stream})}"
        self._client: Any = redis_client(address, what="redis store", socket_timeout=self.timeout)
        self._redis_error: type[Exception] = redis_error("redis store")
        self._redis_timeout: type[Exception] = redis_timeout_error("redis store")
        self._create = self._client.register_script(scripts.CREATE)
        self._consume = self._client.register_script(scripts.CONSUME)
        self._expire = self._client.register_script(scripts.EXPIRE)
        self._revoke = self._client.register_script(scripts.REVOKE)
        self._purge_one = self._client.register_script(scripts.PURGE_ONE)
        self._grant = self._client.register_script(scripts.GRANT)
        self._revoke_request = self._client.register_script(scripts.REVOKE_REQUEST)
        self._ledger = RedisLedger(self._client, self.prefix, self.retention_seconds, self._call)
        self.ledger: Ledger = self._ledger
        # The store, its ledger and its outbox stream all live on this server: asked once here.
        try:
            self.persistence = check_persistence(
                self._client, f"redis store {address.scheme}://{address.host}:{address.port}/{address.database}",
                require=require_durable)
        except StoreError:
            self.close()
            raise

    def __repr__(self) -> str:
        return f"RedisApprovalStore(host={self.url.host!r}, prefix={self.prefix!r})"

    def _key(self, *parts: str) -> str:
        return self.prefix + ":".join(parts)

    def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except self._redis_timeout:
            # No retry: a script whose reply was lost may have run (docs/approvals.md, idempotency).
            logger.error("redis store %s: no answer within %g s to `%s`", self.url, self.timeout, what)
            raise timed_out("approval store", "redis", self.timeout, what) from None
        except self._redis_error as exc:
            raise StoreError(f"redis store: cannot {what}: {type(exc).__name__}: {exc}") from None

    # -- records -----------------------------------------------------------------------------

    @staticmethod
    def _encode(record: ApprovalRecord) -> list[str]:
        flat: list[str] = []
        for name in _FIELDS:
            value = getattr(record, name)
            if value is None:
                continue
            if name == "status":
                value = value.value
            elif name == "ttl_seconds":
                value = encode_ttl(value)
            flat += [name, str(value)]
        return flat

    @staticmethod
    def _decode(flat: Sequence[str]) -> ApprovalRecord:
        raw = dict(zip(flat[0::2], flat[1::2], strict=True))
        values: dict[str, Any] = {}
        for name in _FIELDS:
            if name not in raw:
                continue
            text = raw[name]
            if name in _INT_FIELDS:
                values[name] = int(text)
            elif name == "status":
                values[name] = ApprovalStatus(text)
            elif name == "ttl_seconds":
                values[name] = decode_ttl(text)
            else:
                values[name] = text
        return ApprovalRecord(**values)

    def _decode_hash(self, mapping: dict[str, str]) -> ApprovalRecord | None:
        if not mapping:
            return None
        flat: list[str] = []
        for k, v in mapping.items():
            flat += [k, v]
        return self._decode(flat)

    def _life_ms(self, record: ApprovalRecord) -> int:
        # A duration, not a point in time: key lifetimes then depend on the server's clock only,
        # never on the skew between a host's clock and the server's.
        return (record.expires_us - record.created_us) // 1000 + 1 + self.retention_seconds * 1000

    # -- the store interface -----------------------------------------------------------------

    def insert(self, record: ApprovalRecord) -> None:
        trim_before = record.created_us - (_LONGEST_TTL + self.retention_seconds) * 1_000_000
        created = self._call(
            "create an approval", self._create,
            keys=[self._key("approval", record.approval_id), self._key("token", record.token_digest),
                  self._key("tenant", record.tenant_id), self._key("due")],
            args=[self._life_ms(record), encode_cursor(record), f"{max(trim_before, 0):016d}:",
                  self.index_max, record.approval_id, record.expires_us, *self._encode(record)],
        )
        if int(created) != 1:
            raise StoreError(f"approval `{record.approval_id}` already exists")

    def grant(self, request_id: str, *, tenant_id: str, granted_by: str, granted_us: int,
              record: ApprovalRecord, event: Event, delivery: str = "response",
              sealed_token: str | None = None) -> ApprovalRequest | None:
        trim_before = record.created_us - (_LONGEST_TTL + self.retention_seconds) * 1_000_000
        done = int(self._call(
            "grant an approval request", self._grant,
            keys=[self._key("approval", record.approval_id), self._key("token", record.token_digest),
                  self._key("tenant", record.tenant_id), self._key("due"), self._ledger.request_key(request_id),
                  self.outbox_stream],
            args=[self._life_ms(record), encode_cursor(record), f"{max(trim_before, 0):016d}:", self.index_max,
                  record.approval_id, record.expires_us, tenant_id, granted_by, granted_us,
                  self.retention_seconds * 1000, event.id, event.tenant_id or "", event.type,
                  "1" if event.critical else "0", event.to_json(), delivery, sealed_token or "",
                  *self._encode(record)],
        ))
        if done == -1:
            raise StoreError(f"approval `{record.approval_id}` already exists")
        return self._ledger.get_request(request_id) if done == 1 else None

    def revoke_request(self, request_id: str, *, tenant_id: str, now_us: int, by: str | None,
                       reason: str | None) -> tuple[ApprovalRequest | None, ApprovalRecord | None]:
        word = self._call("revoke an approval request", self._revoke_request,
                          keys=[self._ledger.request_key(request_id), self._key("due"), self._key("finished")],
                          args=[tenant_id, now_us, "1" if by is not None else "0", by or "",
                                "1" if reason is not None else "0", reason or "", self.prefix])
        if word == "missing":
            return None, None
        request = self._ledger.get_request(request_id)
        record = self.get(request.approval_id) if request is not None and request.approval_id else None
        return request, record

    def repair(self) -> int:
        """Once per data set (a mark key records it): requests the previous layout left `granted`
        with no approval are requested again, and the approval their grant created but never
        linked (same tenant, IR and approver, within `ORPHAN_WINDOW_US`) is revoked."""
        mark = self._key("ledger", "layout")
        if self._call("read the ledger layout", self._client.get, mark) == "2":
            return 0
        try:
            requests = self._ledger.unlinked_grants()
        except self._redis_error as exc:
            raise StoreError(f"redis store: cannot scan the ledger: {type(exc).__name__}: {exc}") from None
        now_us = time.time_ns() // 1000
        for request in requests:
            granted_us = request.granted_us or 0
            members = self._call("read an index", self._client.zrangebylex, self._key("tenant", request.tenant_id),
                                 f"[{granted_us:016d}:", f"[{granted_us + ORPHAN_WINDOW_US:016d};")
            for member in members:
                orphan = self.get(member.split(":", 1)[1])
                if orphan is not None and orphan.ir_hash == request.ir_hash \
                        and orphan.created_by == request.granted_by:
                    self.revoke(orphan.approval_id, now_us=now_us, by=None, reason=ORPHAN_REASON)
            self._ledger.transition(request.request_id, tenant_id=request.tenant_id,
                                    from_states=(RequestState.GRANTED,),
                                    changes={"state": RequestState.REQUESTED, "granted_by": None, "granted_us": None})
            logger.warning("approval request %s was granted without an approval (a crash of an earlier "
                           "version): it is requested again, and an unlinked approval of it revoked",
                           request.request_id)
        self._call("mark the ledger layout", self._client.set, mark, "2")
        return len(requests)

    def get(self, approval_id: str) -> ApprovalRecord | None:
        mapping = self._call("read an approval", self._client.hgetall, self._key("approval", approval_id))
        return self._decode_hash(mapping)

    def find_by_digests(self, digests: Sequence[str]) -> ApprovalRecord | None:
        if not digests:
            return None
        ids = self._call("look up a token", self._client.mget, [self._key("token", d) for d in digests])
        for approval_id in ids:
            if approval_id:
                return self.get(approval_id)
        return None

    def consume(self, approval_id: str, *, tenant_id: str, ir_hash: str, now_us: int,
                consumed_by: str | None, event: Event, max_mismatches: int,
                idempotency_key: str | None = None, answer: str | None = None) -> ConsumeOutcome:
        ref = "-" if idempotency_key is None else _key_ref(tenant_id, idempotency_key)
        reply = self._call(
            "consume an approval", self._consume,
            keys=[self._key("approval", approval_id), self._key("due"), self._key("finished"),
                  self.outbox_stream, self._key("consumekey", ref)],
            args=[tenant_id, ir_hash, now_us, "1" if consumed_by is not None else "0", consumed_by or "",
                  max_mismatches, event.id, event.tenant_id or "", event.type, "1" if event.critical else "0",
                  event.to_json(), approval_id, self.retention_seconds * 1000,
                  "0" if idempotency_key is None else "1", self.prefix, ref, answer or ""],
        )
        word, expired_now, revoked_now = reply[0], reply[1] == "1", reply[2] == "1"
        if word in _CONFLICTS:
            raise IdempotencyConflictError(f"idempotency key `{idempotency_key}` was used {_CONFLICTS[word]}")
        record = self._decode(reply[3:]) if len(reply) > 3 else None
        if word == "replay":
            return ConsumeOutcome(None, record, replayed=True)
        reason = None if word == "ok" else ConsumeReason(word)
        return ConsumeOutcome(reason, record, expired_now, revoked_now)

    def bound_consume(self, tenant_id: str, idempotency_key: str) -> tuple[ApprovalRecord, str | None] | None:
        # Two reads: the key and the approval's hash are written by one script and die together.
        bound = self._call("read a consume's idempotency key", self._client.get,
                           self._key("consumekey", _key_ref(tenant_id, idempotency_key)))
        if not bound:
            return None
        mapping = self._call("read an approval", self._client.hgetall, self._key("approval", bound))
        record = self._decode_hash(mapping)
        return None if record is None else (record, mapping.get("consume_answer"))

    def expire(self, approval_id: str, now_us: int) -> tuple[ApprovalRecord | None, bool]:
        reply = self._call("expire an approval", self._expire,
                           keys=[self._key("approval", approval_id), self._key("due"), self._key("finished")],
                           args=[now_us, approval_id])
        return (self._decode(reply[1:]) if len(reply) > 1 else None), reply[0] == "1"

    def revoke(self, approval_id: str, *, now_us: int, by: str | None,
               reason: str | None) -> tuple[ApprovalRecord | None, bool]:
        reply = self._call("revoke an approval", self._revoke,
                           keys=[self._key("approval", approval_id), self._key("due"), self._key("finished")],
                           args=[now_us, approval_id, "1" if by is not None else "0", by or "",
                                 "1" if reason is not None else "0", reason or ""])
        return (self._decode(reply[1:]) if len(reply) > 1 else None), reply[0] == "1"

    def list_page(self, tenant_id: str, *, status: ApprovalStatus | None, limit: int, cursor: str | None,
             now_us: int) -> tuple[list[ApprovalRecord], str | None]:
        index = self._key("tenant", tenant_id)
        upper = "+" if cursor is None else "(" + ":".join(map(str, _cursor_parts(cursor)))
        found: list[ApprovalRecord] = []
        batch = max(limit + 1, 50)
        while len(found) <= limit:
            members = self._call("list approvals", self._client.zrange, index, upper, "-",
                                 desc=True, bylex=True, offset=0, num=batch)
            if not members:
                break
            pipe = self._client.pipeline(transaction=False)
            for member in members:
                pipe.hgetall(self._key("approval", member.split(":", 1)[1]))
            mappings = self._call("list approvals", pipe.execute)
            stale = []
            for member, mapping in zip(members, mappings, strict=True):
                record = self._decode_hash(mapping)
                if record is None:
                    stale.append(member)  # the key reached the end of its retention
                    continue
                if status is None or record.effective_status(now_us) is status:
                    found.append(record)
                    if len(found) > limit:
                        break
            if stale:
                self._call("trim an index", self._client.zrem, index, *stale)
            if len(members) < batch:
                break
            upper = "(" + members[-1]
        if len(found) > limit:
            return found[:limit], encode_cursor(found[limit - 1])
        return found, None

    def expire_due(self, now_us: int, limit: int) -> list[ApprovalRecord]:
        ids = self._call("find due approvals", self._client.zrangebyscore, self._key("due"), "-inf", now_us,
                         start=0, num=limit)
        return expire_each(self, ids, now_us)

    def purge(self, cutoff_us: int) -> int:
        removed = 0
        previous: list[str] = []
        while True:
            ids = self._call("find finished approvals", self._client.zrangebyscore, self._key("finished"),
                             "-inf", f"({cutoff_us}", start=0, num=500)
            if not ids or ids == previous:  # the second test stops a loop on entries it cannot remove
                return removed
            previous = ids
            for approval_id in ids:
                removed += int(self._call(
                    "purge an approval", self._purge_one,
                    keys=[self._key("approval", approval_id), self._key("finished")],
                    args=[approval_id, cutoff_us, self.prefix]))

    def close(self) -> None:
        try:
            self._client.close()
        except self._redis_error:
            logger.debug("closing the redis client failed")


def _cursor_parts(cursor: str) -> tuple[str, str]:
    created_us, approval_id = decode_cursor(cursor)
    return f"{created_us:016d}", approval_id
