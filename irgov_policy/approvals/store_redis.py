"""The Redis store: approvals shared by many hosts.

Each change is one Lua script, so it is atomic on the server whatever the number of clients.
The consume script also appends `ir.approval_consumed` to the outbox stream: the consumption and
its event are one unit. Keys live for `ttl + retention` from their creation, not until `expires_at`, so a replay
after expiry is still recognised as consumed; the outbox stream likewise keeps its entries for the
retention (a relay must import them within it). Per-tenant indexes are sorted sets of
`created_us:approval_id` members trimmed on every create (older than the longest possible life of
a key, or beyond `index_max` entries), so they never grow without bound.

Layout under the key prefix `P` (default `irgov:`): `P approval:<id>` (hash), `P token:<digest>`
(approval id), `P tenant:<tenant>` (index), `P due` (pending ids by expiry), `P finished`
(finished ids by finish time). Scripts derive a few keys from the prefix, so the store needs a
single Redis node (or a primary with replicas), not Redis Cluster. Times come from the caller's
clock: hosts sharing a store need synchronised clocks.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlencode

from ..errors import StoreError
from ..events.envelope import Event
from ..storage import StoreURL, redis_client, redis_error
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
           "revoked_by", "revoke_reason", "expired_us", "finished_us", "mismatches")
_INT_FIELDS = {"created_us", "expires_us", "consumed_us", "revoked_us", "expired_us", "finished_us", "mismatches"}

# KEYS: approval, token, tenant index, due. ARGV: px (key life), member, trim bound, index max, id, expires_us, fields...
_CREATE = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
if not redis.call('SET', KEYS[2], ARGV[5], 'NX', 'PX', ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 7))
redis.call('PEXPIRE', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[3], 0, ARGV[2])
redis.call('ZREMRANGEBYLEX', KEYS[3], '-', '(' .. ARGV[3])
local extra = redis.call('ZCARD', KEYS[3]) - tonumber(ARGV[4])
if extra > 0 then redis.call('ZREMRANGEBYRANK', KEYS[3], 0, extra - 1) end
-- the index lives as long as its longest-lived approval
if redis.call('PTTL', KEYS[3]) == -1 then
  redis.call('PEXPIRE', KEYS[3], ARGV[1])
else
  redis.call('PEXPIRE', KEYS[3], ARGV[1], 'GT')
end
redis.call('ZADD', KEYS[4], ARGV[6], ARGV[5])
return 1
"""

_COMMON = """
local function finish(key, id, now)
  redis.call('ZREM', KEYS[2], id)
  redis.call('ZADD', KEYS[3], now, id)
end
local function all(key, head)
  local fields = redis.call('HGETALL', key)
  for i = 1, #fields do head[#head + 1] = fields[i] end
  return head
end
"""

# KEYS: approval, due, finished, outbox stream.
# ARGV: tenant, ir_hash, now_us, has_by, by, max_mismatches, event_id, event_tenant, type, critical, body, id,
#       outbox retention in ms
_CONSUME = _COMMON + """
local key, now, id = KEYS[1], ARGV[3], ARGV[12]
if redis.call('EXISTS', key) == 0 then return {'token_not_found', '0', '0'} end
local f = redis.call('HMGET', key, 'tenant_id', 'status', 'ir_hash', 'expires_us')
local status, expires = f[2], f[4]
local live = status == 'pending' and tonumber(expires) > tonumber(now)
local function mismatch(reason)
  if not live then return all(key, {reason, '0', '0'}) end
  local n = redis.call('HINCRBY', key, 'mismatches', 1)
  if n >= tonumber(ARGV[6]) then
    redis.call('HSET', key, 'status', 'revoked', 'revoked_us', now,
               'revoke_reason', 'too_many_mismatches', 'finished_us', now)
    finish(key, id, now)
    return all(key, {reason, '0', '1'})
  end
  return all(key, {reason, '0', '0'})
end
if f[1] ~= ARGV[1] then return mismatch('tenant_mismatch') end
if status == 'consumed' then return all(key, {'already_consumed', '0', '0'}) end
if status == 'revoked' then return all(key, {'revoked', '0', '0'}) end
if status == 'expired' then return all(key, {'expired', '0', '0'}) end
if not live then
  redis.call('HSET', key, 'status', 'expired', 'expired_us', expires, 'finished_us', expires)
  finish(key, id, expires)
  return all(key, {'expired', '1', '0'})
end
if f[3] ~= ARGV[2] then return mismatch('ir_hash_mismatch') end
redis.call('HSET', key, 'status', 'consumed', 'consumed_us', now, 'finished_us', now)
if ARGV[4] == '1' then redis.call('HSET', key, 'consumed_by', ARGV[5]) end
finish(key, id, now)
-- Entries older than the retention go (the stream would grow forever otherwise). Stream ids are
-- the server's milliseconds, so the cut is judged with the server's clock, not the caller's.
local t = redis.call('TIME')
local minid = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) - tonumber(ARGV[13])
if minid < 0 then minid = 0 end
redis.call('XADD', KEYS[4], 'MINID', string.format('%d', minid), '*', 'event_id', ARGV[7],
           'tenant_id', ARGV[8], 'type', ARGV[9], 'critical', ARGV[10], 'body', ARGV[11])
return all(key, {'ok', '0', '0'})
"""

# KEYS: approval, due, finished. ARGV: now_us, id
_EXPIRE = _COMMON + """
local key, now, id = KEYS[1], ARGV[1], ARGV[2]
if redis.call('EXISTS', key) == 0 then
  redis.call('ZREM', KEYS[2], id)
  return {'0'}
end
local f = redis.call('HMGET', key, 'status', 'expires_us')
if f[1] == 'pending' and tonumber(f[2]) <= tonumber(now) then
  redis.call('HSET', key, 'status', 'expired', 'expired_us', f[2], 'finished_us', f[2])
  finish(key, id, f[2])
  return all(key, {'1'})
end
return all(key, {'0'})
"""

# KEYS: approval, due, finished. ARGV: now_us, id, has_by, by, has_reason, reason
_REVOKE = _COMMON + """
local key, now, id = KEYS[1], ARGV[1], ARGV[2]
if redis.call('EXISTS', key) == 0 then return {'0'} end
local f = redis.call('HMGET', key, 'status', 'expires_us')
if f[1] == 'pending' and tonumber(f[2]) > tonumber(now) then
  redis.call('HSET', key, 'status', 'revoked', 'revoked_us', now, 'finished_us', now)
  if ARGV[3] == '1' then redis.call('HSET', key, 'revoked_by', ARGV[4]) end
  if ARGV[5] == '1' then redis.call('HSET', key, 'revoke_reason', ARGV[6]) end
  finish(key, id, now)
  return all(key, {'1'})
end
return all(key, {'0'})
"""

# KEYS: approval, finished. ARGV: id, cutoff_us, prefix
_PURGE_ONE = """
local key, id = KEYS[1], ARGV[1]
if redis.call('EXISTS', key) == 0 then
  redis.call('ZREM', KEYS[2], id)
  return 0
end
local f = redis.call('HMGET', key, 'status', 'finished_us', 'token_digest', 'tenant_id', 'created_us')
if f[1] == 'pending' or not f[2] or tonumber(f[2]) >= tonumber(ARGV[2]) then return 0 end
redis.call('DEL', key, ARGV[3] .. 'token:' .. f[3])
redis.call('ZREM', ARGV[3] .. 'tenant:' .. f[4], string.format('%016d', tonumber(f[5])) .. ':' .. id)
redis.call('ZREM', KEYS[2], id)
return 1
"""


def _parse_positive_int(name: str, text: str) -> int:
    if not text.isdigit() or int(text) <= 0:
        raise StoreError(f"redis store option `{name}` must be a positive integer, not `{text}`")
    return int(text)


class RedisApprovalStore:
    def __init__(self, url: str | StoreURL, *, prefix: str | None = None, outbox_stream: str | None = None,
                 retention_seconds: int | None = None, index_max: int | None = None,
                 default_retention_seconds: int | None = None) -> None:
        address = StoreURL.parse(url, what="redis store")
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
        self._client: Any = redis_client(address, what="redis store")
        self._redis_error: type[Exception] = redis_error("redis store")
        self._create = self._client.register_script(_CREATE)
        self._consume = self._client.register_script(_CONSUME)
        self._expire = self._client.register_script(_EXPIRE)
        self._revoke = self._client.register_script(_REVOKE)
        self._purge_one = self._client.register_script(_PURGE_ONE)

    def __repr__(self) -> str:
        return f"RedisApprovalStore(host={self.url.host!r}, prefix={self.prefix!r})"

    def _key(self, *parts: str) -> str:
        return self.prefix + ":".join(parts)

    def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
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
                consumed_by: str | None, event: Event, max_mismatches: int) -> ConsumeOutcome:
        reply = self._call(
            "consume an approval", self._consume,
            keys=[self._key("approval", approval_id), self._key("due"), self._key("finished"),
                  self.outbox_stream],
            args=[tenant_id, ir_hash, now_us, "1" if consumed_by is not None else "0", consumed_by or "",
                  max_mismatches, event.id, event.tenant_id or "", event.type, "1" if event.critical else "0",
                  event.to_json(), approval_id, self.retention_seconds * 1000],
        )
        word, expired_now, revoked_now = reply[0], reply[1] == "1", reply[2] == "1"
        record = self._decode(reply[3:]) if len(reply) > 3 else None
        reason = None if word == "ok" else ConsumeReason(word)
        return ConsumeOutcome(reason, record, expired_now, revoked_now)

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
