-- Puts webhooks in or out of the paused and disabled index sets by what their records say
-- (for webhooks written before those sets existed; later changes maintain them).
-- KEYS[1] the paused set, KEYS[2] the disabled set, KEYS[3..] the webhooks' hashes
-- ARGV[1..] the webhooks' ids, in the same order as their hashes
-- Returns how many webhooks were looked at.
local seen = 0
for i = 3, #KEYS do
  local id = ARGV[i - 2]
  local fields = redis.call('HMGET', KEYS[i], 'enabled', 'paused')
  if fields[1] then
    seen = seen + 1
    if fields[2] == '1' then
      redis.call('ZADD', KEYS[1], 0, id)
    else
      redis.call('ZREM', KEYS[1], id)
    end
    if fields[1] == '1' then
      redis.call('ZREM', KEYS[2], id)
    else
      redis.call('ZADD', KEYS[2], 0, id)
    end
  end
end
return seen
