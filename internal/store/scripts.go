package store

import "github.com/redis/go-redis/v9"

// The Lua scripts below keep a record and its index entries in step: each runs atomically on
// the server, so no reader ever sees an index that disagrees with the record.
//
// Cluster note: the scripts compute most of their key names from the prefix (ARGV[1]) instead
// of declaring them in KEYS, because some of them (the old user's index, the old state's set)
// are only known once the old record has been read. That is correct on a single Redis node
// (Memorystore basic and standard tiers, a local redis-server) but not on Redis Cluster, where
// every key a script touches must be declared and live in one hash slot. Moving to cluster mode
// would mean hash-tagging every key of the store with one tag ("{hyperbola}:...") — all keys in
// one slot, which is what the indexes need anyway.

// luaLib is prepended to every script that writes records.
const luaLib = `
local P = ARGV[1]

-- bytewise a > b (Lua's own < uses strcoll, which follows the server's locale)
local function bytes_gt(a, b)
  local la, lb = #a, #b
  local n = la
  if lb < n then n = lb end
  for i = 1, n do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then return x > y end
  end
  return la > lb
end

local function num(x)
  return string.format('%.0f', x)
end

-- purge_tomb removes the index entries a tombstone keeps (its user's index, state:deleted).
local function purge_tomb(id)
  local u = redis.call('HGET', P .. 'tombuser', id)
  if u then
    redis.call('ZREM', P .. 'u:' .. u, id)
    redis.call('HDEL', P .. 'tombuser', id)
  end
  redis.call('ZREM', P .. 'state:deleted', id)
  redis.call('ZREM', P .. 'tombstones', id)
end

-- prune forgets up to n tombstones whose record has expired.
local function prune(now, n)
  local ids = redis.call('ZRANGEBYSCORE', P .. 'tombstones', '-inf', now, 'LIMIT', 0, n)
  for _, id in ipairs(ids) do
    if redis.call('EXISTS', P .. 's:' .. id) == 0 then purge_tomb(id) end
  end
end

-- unindex_live removes id from the indexes only a live session is in.
local function unindex_live(id)
  for _, z in ipairs({'created', 'activity', 'idle', 'expires', 'pending'}) do
    redis.call('ZREM', P .. z, id)
  end
  redis.call('HDEL', P .. 'idlecfg', id)
end

-- unindex_old removes id from the user index and state set named by the stored record.
local function unindex_old(id, raw)
  if not raw then return end
  local ok, o = pcall(cjson.decode, raw)
  if ok and type(o) == 'table' then
    if type(o['user_id']) == 'string' then redis.call('ZREM', P .. 'u:' .. o['user_id'], id) end
    if type(o['status']) == 'string' then redis.call('ZREM', P .. 'state:' .. o['status'], id) end
  end
end
`

// writeScript stores a record and moves its index entries.
//
// KEYS[1] = the record key, KEYS[2] = the session's lock key
// ARGV: prefix, mode ("reserve" | "put"), id, json, user, state, created ms, activity ms (0 =
// none), idle timeout ms (0 = no idle deadline), expires ms (0 = none), tombstone ttl ms,
// now ms, awake ("1" when the state has an idle deadline), pending step score (ms since the
// step began; "" when the session has no pending step), the writer's lock token.
//
// Returns 1 when written, 0 when mode is "reserve" and a record exists, -1 when the lock key
// does not hold the writer's token (its lock expired: nothing is written).
var writeScript = redis.NewScript(luaLib + `
local rk = KEYS[1]
local mode, id, json, user, state = ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local created, act, idle, exp = ARGV[7], tonumber(ARGV[8]), tonumber(ARGV[9]), tonumber(ARGV[10])
local ttl, now, awake, pending = tonumber(ARGV[11]), tonumber(ARGV[12]), ARGV[13] == '1', ARGV[14]

if redis.call('GET', KEYS[2]) ~= ARGV[15] then return -1 end
local old = redis.call('GET', rk)
if old and mode == 'reserve' then return 0 end
unindex_old(id, old)
purge_tomb(id)
prune(now, 32)

if state == 'deleted' then
  redis.call('SET', rk, json, 'PX', ttl)
  unindex_live(id)
  redis.call('ZADD', P .. 'u:' .. user, created, id)
  redis.call('ZADD', P .. 'state:deleted', created, id)
  redis.call('ZADD', P .. 'tombstones', num(now + ttl), id)
  redis.call('HSET', P .. 'tombuser', id, user)
  return 1
end

redis.call('SET', rk, json)
redis.call('ZADD', P .. 'u:' .. user, created, id)
redis.call('ZADD', P .. 'created', created, id)
redis.call('ZADD', P .. 'state:' .. state, created, id)
if act > 0 then redis.call('ZADD', P .. 'activity', 'GT', num(act), id) end
local a = tonumber(redis.call('ZSCORE', P .. 'activity', id))
if awake and idle > 0 and a then
  redis.call('HSET', P .. 'idlecfg', id, num(idle))
  redis.call('ZADD', P .. 'idle', num(a + idle), id)
else
  redis.call('HDEL', P .. 'idlecfg', id)
  redis.call('ZREM', P .. 'idle', id)
end
if exp > 0 then
  redis.call('ZADD', P .. 'expires', num(exp), id)
else
  redis.call('ZREM', P .. 'expires', id)
end
if pending ~= '' then
  redis.call('ZADD', P .. 'pending', pending, id)
else
  redis.call('ZREM', P .. 'pending', id)
end
return 1
`)

// removeScript deletes a record and every index entry of its id.
//
// KEYS[1] = the record key; ARGV: prefix, id, then every state name.
var removeScript = redis.NewScript(luaLib + `
local id = ARGV[2]
unindex_old(id, redis.call('GET', KEYS[1]))
redis.call('DEL', KEYS[1])
for i = 3, #ARGV do redis.call('ZREM', P .. 'state:' .. ARGV[i], id) end
unindex_live(id)
purge_tomb(id)
return 1
`)

// touchScript records activity (never moving it backwards) and, for an awake session, its
// idle deadline.
//
// KEYS[1] = the record key; ARGV: prefix, id, t ms.
// Returns 0 when there is no record, 2 for a tombstone (nothing recorded), 1 otherwise.
var touchScript = redis.NewScript(luaLib + `
local id, t = ARGV[2], ARGV[3]
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if redis.call('ZSCORE', P .. 'state:deleted', id) then return 2 end
redis.call('ZADD', P .. 'activity', 'GT', t, id)
local to = redis.call('HGET', P .. 'idlecfg', id)
if to then
  local a = tonumber(redis.call('ZSCORE', P .. 'activity', id))
  redis.call('ZADD', P .. 'idle', num(a + tonumber(to)), id)
end
return 1
`)

// listScript pages an index (a zset scored by created ms) from a cursor, filters it and
// returns the records with their activity, in one round trip.
//
// ARGV: prefix, index suffix, include suffix ("" = none: the member must be in that zset),
// exclude suffix ("" = none: the member must not be in that zset), cursor score ("" = from the
// start), cursor id, limit, max entries to examine.
//
// Returns {more, cursor score, cursor id, id1, json1, activity1, id2, ...}. more is 1 when the
// listing should go on from the cursor. Index entries whose record has expired (tombstones)
// are dropped on the way.
var listScript = redis.NewScript(luaLib + `
local index = P .. ARGV[2]
local inc, exc = nil, nil
if ARGV[3] ~= '' then inc = P .. ARGV[3] end
if ARGV[4] ~= '' then exc = P .. ARGV[4] end
local cs, cid = ARGV[5], ARGV[6]
local limit, maxscan = tonumber(ARGV[7]), tonumber(ARGV[8])

-- The first rank after the cursor: entries with a lower score come before it; among those
-- with the cursor's score (ordered bytewise by member), binary-search the first member above
-- the cursor's id. O(log N) whether or not the cursor's own entry still exists.
local rank = 0
if cs ~= '' then
  local lo = redis.call('ZCOUNT', index, '-inf', '(' .. cs)
  local hi = redis.call('ZCOUNT', index, '-inf', cs)
  while lo < hi do
    local mid = math.floor((lo + hi) / 2)
    local m = redis.call('ZRANGE', index, mid, mid)[1]
    if bytes_gt(m, cid) then hi = mid else lo = mid + 1 end
  end
  rank = lo
end

local out = {0, '', ''}
local n, scanned = 0, 0
local batch = limit + 1
if batch < 64 then batch = 64 end
local lastS, lastId = '', ''
local stale = {}
local done = false
while not done do
  local r = redis.call('ZRANGE', index, rank, rank + batch - 1, 'WITHSCORES')
  if #r == 0 then break end
  rank = rank + #r / 2
  for i = 1, #r, 2 do
    local m, s = r[i], num(tonumber(r[i + 1]))
    if scanned >= maxscan then
      out[1], out[2], out[3] = 1, lastS, lastId
      done = true
      break
    end
    scanned = scanned + 1
    local ok = true
    if inc and not redis.call('ZSCORE', inc, m) then ok = false end
    if ok and exc and redis.call('ZSCORE', exc, m) then ok = false end
    local j = nil
    if ok then
      j = redis.call('GET', P .. 's:' .. m)
      if not j then
        ok = false
        table.insert(stale, m)
      end
    end
    if ok then
      if n == limit then
        -- one more match exists: the page ends at the previous match
        out[1] = 1
        done = true
        break
      end
      local a = redis.call('ZSCORE', P .. 'activity', m) or ''
      table.insert(out, m)
      table.insert(out, j)
      table.insert(out, a)
      n = n + 1
      out[2], out[3] = s, m
    end
    lastS, lastId = s, m
  end
  if #r / 2 < batch then break end
end
for _, m in ipairs(stale) do
  redis.call('ZREM', index, m)
  if redis.call('EXISTS', P .. 's:' .. m) == 0 then purge_tomb(m) end
end
if out[1] == 0 then out[2], out[3] = '', '' end
return out
`)

// claimScript claims an idempotency key for an id, or returns the id that holds it.
//
// KEYS[1] = the request key; ARGV: id, ttl ms.
var claimScript = redis.NewScript(`
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return ARGV[1] end
return redis.call('GET', KEYS[1])
`)

// releaseScript deletes a lock only when it still holds the caller's token.
//
// KEYS[1] = the lock key; ARGV[1] = the token.
var releaseScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`)

// extendScript resets a lock's expiry only when it still holds the caller's token.
//
// KEYS[1] = the lock key; ARGV: token, ttl ms.
var extendScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
`)
