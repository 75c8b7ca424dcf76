-- Starts a replay of a webhook (replays.rs): numbers it, stores its state and lists it as
-- running. Keeps the last ARGV[4] replays of the webhook (a finished one past that goes).
-- KEYS[1] the webhook's record  KEYS[2] its replays  KEYS[3] the running replays
-- ARGV[1] the state (JSON, id 0)  ARGV[2] now (ms)  ARGV[3] the webhook id  ARGV[4] replays kept
-- Returns the replay's number, or 0 when the webhook does not exist.
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local n = redis.call('HINCRBY', KEYS[2], 'next', 1)
local state = cjson.decode(ARGV[1])
state.id = n
redis.call('HSET', KEYS[2], tostring(n), cjson.encode(state))
redis.call('ZADD', KEYS[3], ARGV[2], ARGV[3] .. '/' .. n)
local old = n - tonumber(ARGV[4])
if old > 0 then
  local kept = redis.call('HGET', KEYS[2], tostring(old))
  if kept and cjson.decode(kept).state ~= 'running' then
    redis.call('HDEL', KEYS[2], tostring(old), old .. ':delivered')
  end
end
return n
