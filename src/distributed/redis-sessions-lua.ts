/**
 * The server side of the `RedisSessionStore` (`redis-sessions.ts`): the Lua scripts that write sessions and take, renew and release
 * ownership leases, each one atomic in Redis (a late write never lowers a stored sequence; a fenced write needs the
 * lease).
 * @packageDocumentation
 */
import { LuaScript } from './redis-client.js';

// KEYS: per shard (session key, lease key). ARGV[1] owner, ARGV[2] ttl; then 6 per shard:
// sessionId, sequence, resumeUrl, total, startedAt, fenced ('1' = only while this owner holds the lease).
// Per shard returns 2 replaced | 1 raised | 0 not raised | -1 lease not held | -2 older session (ignored).
export const WRITE_SESSIONS = new LuaScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local owner = ARGV[1]
local out = {}
for i = 1, #KEYS / 2 do
  local sk = KEYS[2 * i - 1]
  local lk = KEYS[2 * i]
  local a = 2 + (i - 1) * 6
  local sid = ARGV[a + 1]
  local seq = tonumber(ARGV[a + 2])
  local started = tonumber(ARGV[a + 5])
  if ARGV[a + 6] == '1' and redis.call('GET', lk) ~= owner then
    out[i] = -1
  else
    local cur = redis.call('HMGET', sk, 'sessionId', 'sequence', 'startedAt')
    if cur[1] == sid then
      if seq > (tonumber(cur[2]) or -1) then
        redis.call('HSET', sk, 'sequence', seq, 'owner', owner, 'updatedAt', now)
        out[i] = 1
      else
        out[i] = 0
      end
      redis.call('PEXPIRE', sk, ARGV[2])
    elseif (not cur[1]) or started >= (tonumber(cur[3]) or 0) then
      redis.call('DEL', sk)
      redis.call('HSET', sk, 'sessionId', sid, 'sequence', seq, 'resumeUrl', ARGV[a + 3], 'total', ARGV[a + 4],
        'startedAt', started, 'owner', owner, 'updatedAt', now)
      redis.call('PEXPIRE', sk, ARGV[2])
      out[i] = 2
    else
      out[i] = -2
    end
  end
end
return out
`);

// KEYS[1] lease. ARGV owner, ttl. Returns {1} held | {0, pttl, holder}.
export const TAKE_LEASE = new LuaScript(`
local cur = redis.call('GET', KEYS[1])
if (not cur) or cur == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return {1}
end
return {0, redis.call('PTTL', KEYS[1]), cur}
`);

// KEYS: leases. ARGV owner, ttl. Per lease returns 1 renewed | 0 not held.
export const RENEW_LEASES = new LuaScript(`
local out = {}
for i, k in ipairs(KEYS) do
  if redis.call('GET', k) == ARGV[1] then
    redis.call('PEXPIRE', k, ARGV[2])
    out[i] = 1
  else
    out[i] = 0
  end
end
return out
`);

// KEYS: leases. ARGV owner. Deletes the ones still held; returns how many.
export const RELEASE_LEASES = new LuaScript(`
local n = 0
for i, k in ipairs(KEYS) do
  if redis.call('GET', k) == ARGV[1] then
    redis.call('DEL', k)
    n = n + 1
  end
end
return n
`);
