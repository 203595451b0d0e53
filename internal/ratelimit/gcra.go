package ratelimit

import "github.com/redis/go-redis/v9"

// gcra decides one request under GCRA with a burst: KEYS[1] holds the key's theoretical
// arrival time; ARGV is burst, rate, period (seconds) and cost. It answers {allowed (cost or
// 0), remaining, retry_after, reset_after}, the last two as strings of seconds (-1: none).
//
// It is the allowN script of github.com/go-redis/redis_rate v10.0.1 (BSD-2-Clause, Copyright
// (c) 2013 The github.com/go-redis/redis_rate Authors), unchanged but for comments, so keys
// written by that library keep their meaning. The project runs it itself because a decision
// must be able to ride in a pipeline with the request's own read (Pending.Ride), which the
// library's Allow cannot.
var gcra = redis.NewScript(`
-- this script has side-effects, so it requires replicate commands mode
redis.replicate_commands()

local rate_limit_key = KEYS[1]
local burst = ARGV[1]
local rate = ARGV[2]
local period = ARGV[3]
local cost = tonumber(ARGV[4])

local emission_interval = period / rate
local increment = emission_interval * cost
local burst_offset = emission_interval * burst

-- seconds since 2017-01-01 as a float (fits a double's 16 digits until 2048)
local jan_1_2017 = 1483228800
local now = redis.call("TIME")
now = (now[1] - jan_1_2017) + (now[2] / 1000000)

local tat = redis.call("GET", rate_limit_key)

if not tat then
  tat = now
else
  tat = tonumber(tat)
end

tat = math.max(tat, now)

local new_tat = tat + increment
local allow_at = new_tat - burst_offset

local diff = now - allow_at
local remaining = diff / emission_interval

if remaining < 0 then
  local reset_after = tat - now
  local retry_after = diff * -1
  return {
    0, -- allowed
    0, -- remaining
    tostring(retry_after),
    tostring(reset_after),
  }
end

local reset_after = new_tat - now
if reset_after > 0 then
  redis.call("SET", rate_limit_key, new_tat, "EX", math.ceil(reset_after))
end
local retry_after = -1
return {cost, remaining, tostring(retry_after), tostring(reset_after)}
`)
