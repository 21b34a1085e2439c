"""The Lua scripts of the Redis approval store and its ledger: each change is one script, so it
is atomic on the server whatever the number of clients (docs/approvals.md, Redis)."""

from __future__ import annotations

__all__ = ["CONSUME", "CREATE", "EXPIRE", "GRANT", "PURGE_ONE", "REVOKE", "REVOKE_REQUEST", "TAKE_SEALED", "TRANSITION"]

# Creating an approval, as a Lua function shared by CREATE and GRANT. Every check comes before
# the first write: a script that stops half-way leaves its writes in place (Redis has no rollback).
_CREATE_FN = """
local function create(k_approval, k_token, k_index, k_due, px, member, trim, index_max, id, expires, first)
  if redis.call('EXISTS', k_approval) == 1 or redis.call('EXISTS', k_token) == 1 then return 0 end
  redis.call('SET', k_token, id, 'PX', px)
  redis.call('HSET', k_approval, unpack(ARGV, first))
  redis.call('PEXPIRE', k_approval, px)
  redis.call('ZADD', k_index, 0, member)
  redis.call('ZREMRANGEBYLEX', k_index, '-', '(' .. trim)
  local extra = redis.call('ZCARD', k_index) - tonumber(index_max)
  if extra > 0 then redis.call('ZREMRANGEBYRANK', k_index, 0, extra - 1) end
  -- the index lives as long as its longest-lived approval
  if redis.call('PTTL', k_index) == -1 then
    redis.call('PEXPIRE', k_index, px)
  else
    redis.call('PEXPIRE', k_index, px, 'GT')
  end
  redis.call('ZADD', k_due, expires, id)
  return 1
end
"""

# Appending an event to the outbox stream. Entries older than the retention go (the stream would
# grow forever otherwise). Stream ids are the server's milliseconds, so the cut is judged with
# the server's clock, not the caller's.
_APPEND_FN = """
local function append(stream, retention_ms, event_id, tenant, type, critical, body)
  local t = redis.call('TIME')
  local minid = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) - tonumber(retention_ms)
  if minid < 0 then minid = 0 end
  redis.call('XADD', stream, 'MINID', string.format('%d', minid), '*', 'event_id', event_id,
             'tenant_id', tenant, 'type', type, 'critical', critical, 'body', body)
end
"""

# KEYS: approval, token, tenant index, due. ARGV: px (key life), member, trim bound, index max, id, expires_us, fields...
CREATE = _CREATE_FN + """
return create(KEYS[1], KEYS[2], KEYS[3], KEYS[4], ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], 7)
"""

# The grant of an approval request: the request moves requested -> granted and is linked to the
# approval, the approval is created, and `ir.approval_created` is appended to the outbox, in one
# script. 0: the request is not `requested` for this tenant; -1: the approval exists; 1: done.
# KEYS: approval, token, tenant index, due, request, outbox stream.
# ARGV: px, member, trim bound, index max, id, expires_us, tenant, granted_by, granted_us,
#       outbox retention in ms, event_id, event tenant, type, critical, body, delivery,
#       sealed token ('' for none), fields...
GRANT = _CREATE_FN + _APPEND_FN + """
if redis.call('HGET', KEYS[5], 'state') ~= 'requested' then return 0 end
if redis.call('HGET', KEYS[5], 'tenant_id') ~= ARGV[7] then return 0 end
if create(KEYS[1], KEYS[2], KEYS[3], KEYS[4], ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], 18) == 0 then
  return -1
end
redis.call('HSET', KEYS[5], 'state', 'granted', 'granted_by', ARGV[8], 'granted_us', ARGV[9], 'approval_id', ARGV[5],
           'delivery', ARGV[16])
if ARGV[17] ~= '' then redis.call('HSET', KEYS[5], 'sealed_token', ARGV[17]) end
-- the request lives at least as long as its approval
redis.call('PEXPIRE', KEYS[5], ARGV[1], 'GT')
append(KEYS[6], ARGV[10], ARGV[11], ARGV[12], ARGV[13], ARGV[14], ARGV[15])
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

# A consume's idempotency key (KEYS[5], derived from tenant and key by the caller) holds the id of
# the approval it consumed, for as long as that approval's key lives. A key already bound answers
# first: 'replay' (this very consume again: same approval, caller and ir hash; nothing written),
# or 'conflict_token', 'conflict_caller', 'conflict_ir'.
# KEYS: approval, due, finished, outbox stream, idempotency key.
# ARGV: tenant, ir_hash, now_us, has_by, by, max_mismatches, event_id, event_tenant, type, critical, body, id,
#       outbox retention in ms, has_key, prefix, idempotency key reference (the KEYS[5] suffix),
#       the execution gate's answer to keep beside the key ('' for none)
CONSUME = _COMMON + _APPEND_FN + """
local key, now, id = KEYS[1], ARGV[3], ARGV[12]
if ARGV[14] == '1' then
  local bound = redis.call('GET', KEYS[5])
  local bkey = bound and (ARGV[15] .. 'approval:' .. bound)
  if bkey and redis.call('EXISTS', bkey) == 1 then
    if bound ~= id then return {'conflict_token', '0', '0'} end
    local g = redis.call('HMGET', bkey, 'consumed_by', 'ir_hash')
    if (ARGV[4] == '1' and g[1] ~= ARGV[5]) or (ARGV[4] ~= '1' and g[1]) then return {'conflict_caller', '0', '0'} end
    if g[2] ~= ARGV[2] then return {'conflict_ir', '0', '0'} end
    return all(bkey, {'replay', '0', '0'})
  end
end
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
if ARGV[14] == '1' then
  -- bound in this script, with the consume: lives exactly as long as the approval's key
  redis.call('SET', KEYS[5], id, 'PX', math.max(1, redis.call('PTTL', key)))
  redis.call('HSET', key, 'consume_ref', ARGV[16])
  if ARGV[17] ~= '' then redis.call('HSET', key, 'consume_answer', ARGV[17]) end
end
finish(key, id, now)
append(KEYS[4], ARGV[13], ARGV[7], ARGV[8], ARGV[9], ARGV[10], ARGV[11])
return all(key, {'ok', '0', '0'})
"""

# KEYS: approval, due, finished. ARGV: now_us, id
EXPIRE = _COMMON + """
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
REVOKE = _COMMON + """
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
PURGE_ONE = """
local key, id = KEYS[1], ARGV[1]
if redis.call('EXISTS', key) == 0 then
  redis.call('ZREM', KEYS[2], id)
  return 0
end
local f = redis.call('HMGET', key, 'status', 'finished_us', 'token_digest', 'tenant_id', 'created_us', 'consume_ref')
if f[1] == 'pending' or not f[2] or tonumber(f[2]) >= tonumber(ARGV[2]) then return 0 end
redis.call('DEL', key, ARGV[3] .. 'token:' .. f[3])
if f[6] then redis.call('DEL', ARGV[3] .. 'consumekey:' .. f[6]) end
redis.call('ZREM', ARGV[3] .. 'tenant:' .. f[4], string.format('%016d', tonumber(f[5])) .. ':' .. id)
redis.call('ZREM', KEYS[2], id)
return 1
"""

# A change of an approval request (ledger): applied only when the request is in one of the
# states listed, for its own tenant. ARGV: tenant, states (comma-separated), name, value, ...
# (a value of NUL deletes the field).
TRANSITION = """
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

# The revocation of an approval request and of its pending approval, in one script. The
# approval's key is derived from the prefix. 'missing': no such request for this tenant;
# 'conflict': its approval is consumed or expired (nothing written); 'ok'.
# KEYS: request, due, finished. ARGV: tenant, now_us, has_by, by, has_reason, reason, prefix
REVOKE_REQUEST = _COMMON + """
local r, now = KEYS[1], ARGV[2]
if redis.call('EXISTS', r) == 0 or redis.call('HGET', r, 'tenant_id') ~= ARGV[1] then return 'missing' end
local id = redis.call('HGET', r, 'approval_id')
if id then
  local key = ARGV[7] .. 'approval:' .. id
  if redis.call('EXISTS', key) == 1 then
    local f = redis.call('HMGET', key, 'status', 'expires_us')
    if f[1] == 'pending' and tonumber(f[2]) > tonumber(now) then
      redis.call('HSET', key, 'status', 'revoked', 'revoked_us', now, 'finished_us', now)
      if ARGV[3] == '1' then redis.call('HSET', key, 'revoked_by', ARGV[4]) end
      if ARGV[5] == '1' then redis.call('HSET', key, 'revoke_reason', ARGV[6]) end
      finish(key, id, now)
    elseif f[1] ~= 'revoked' then
      return 'conflict'
    end
  end
end
if redis.call('HGET', r, 'state') ~= 'revoked' then
  redis.call('HSET', r, 'state', 'revoked', 'revoked_us', now)
  redis.call('HDEL', r, 'sealed_token')
  if ARGV[3] == '1' then redis.call('HSET', r, 'revoked_by', ARGV[4]) end
  if ARGV[5] == '1' then redis.call('HSET', r, 'revoke_reason', ARGV[6]) end
end
return 'ok'
"""

# Taking the sealed token of a granted request: read and erased with the claim recorded, in one
# script, so two claims at once get it once. KEYS: request. ARGV: tenant, claimed_by, claimed_us.
TAKE_SEALED = """
local f = redis.call('HMGET', KEYS[1], 'tenant_id', 'state', 'sealed_token')
if f[1] ~= ARGV[1] or f[2] ~= 'granted' or not f[3] then return false end
redis.call('HDEL', KEYS[1], 'sealed_token')
redis.call('HSET', KEYS[1], 'claimed_by', ARGV[2], 'claimed_us', ARGV[3])
return f[3]
"""
