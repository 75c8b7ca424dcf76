-- Takes entries out of the due set into the delivery actor's window: up to ARGV[2] of those
-- due by ARGV[1] (ms; '+inf' for the earliest whatever its time, as a probe), earliest first.
-- A taken entry leaves the due set but keeps its retry state, so the queue reader skips it and
-- a crash puts it back (see retry_prepare.lua). Entries whose queue entry is gone are dropped.
-- KEYS[1] queue  KEYS[2] retry hash  KEYS[3] due set
-- Returns {entries left in the due set, earliest due among them or false,
--          {{entry id, fields, retry state}, ...}}.
local ids = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
local taken = {}
for _, id in ipairs(ids) do
  redis.call('ZREM', KEYS[3], id)
  local found = redis.call('XRANGE', KEYS[1], id, id)
  if found[1] then
    taken[#taken + 1] = {found[1][1], found[1][2], redis.call('HGET', KEYS[2], id) or ''}
  else
    redis.call('HDEL', KEYS[2], id)
  end
end
local first = redis.call('ZRANGE', KEYS[3], 0, 0, 'WITHSCORES')
return {redis.call('ZCARD', KEYS[3]), first[2] or false, taken}
