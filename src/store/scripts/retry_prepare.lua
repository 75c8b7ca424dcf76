-- Run when a webhook's delivery actor starts: every entry with retry state that is not in the
-- due set was in flight when its previous actor stopped (a crash, or another instance owned
-- it); put it back, due at the time its state records. Then report the due set.
-- KEYS[1] retry hash  KEYS[2] due set
-- Returns {entries in the due set, earliest due or false}.
if redis.call('HLEN', KEYS[1]) > redis.call('ZCARD', KEYS[2]) then
  local states = redis.call('HGETALL', KEYS[1])
  for i = 1, #states, 2 do
    if not redis.call('ZSCORE', KEYS[2], states[i]) then
      local due = string.match(states[i + 1], '^%d+:(%d+)') or '0'
      redis.call('ZADD', KEYS[2], due, states[i])
    end
  end
end
local first = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
return {redis.call('ZCARD', KEYS[2]), first[2] or false}
