-- Takes entries out of the due set into the delivery actor's window: up to ARGV[3] of those
-- due by ARGV[2] (ms; '+inf' for the earliest whatever its time, as a probe), earliest first.
-- A taken entry leaves the due set but keeps its retry state, so the queue reader skips it and
-- a crash puts it back (see retry_prepare.lua). Entries whose queue entry is gone are dropped.
-- Fenced: only the holder of the lease (ARGV[1]) takes; otherwise returns -1.
-- KEYS[1] lease  KEYS[2] queue  KEYS[3] retry hash  KEYS[4] due set
-- Returns {entries left in the due set, earliest due among them or false,
--          {{entry id, fields, retry state}, ...}}.
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end
local ids = redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', ARGV[2], 'LIMIT', 0, ARGV[3])
local taken = {}
for _, id in ipairs(ids) do
  redis.call('ZREM', KEYS[4], id)
  local found = redis.call('XRANGE', KEYS[2], id, id)
  if found[1] then
    taken[#taken + 1] = {found[1][1], found[1][2], redis.call('HGET', KEYS[3], id) or ''}
  else
    redis.call('HDEL', KEYS[3], id)
  end
end
local first = redis.call('ZRANGE', KEYS[4], 0, 0, 'WITHSCORES')
return {redis.call('ZCARD', KEYS[4]), first[2] or false, taken}
