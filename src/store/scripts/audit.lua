-- A delivery actor's self-check (actors/delivery/audit.rs): what Redis holds for its webhook,
-- to compare with what the actor believes. Reads only, a bounded amount.
-- KEYS[1] lease  KEYS[2] queue  KEYS[3] retry hash  KEYS[4] due set
-- ARGV[1] the actor's cursor ('' = none: it has read nothing)  ARGV[2] how many of the
-- queue's first entries to look at
-- Returns {lease value or false, entries in the due set, earliest due or false,
--          the first entry after the cursor or false,
--          {entry, has retry state (0/1), in the due set (0/1), ...} for the queue's first
--          ARGV[2] entries up to the cursor}.
local lease = redis.call('GET', KEYS[1])
local first_due = redis.call('ZRANGE', KEYS[4], 0, 0, 'WITHSCORES')
local after = false
local head = {}
if ARGV[1] == '' then
  local first = redis.call('XRANGE', KEYS[2], '-', '+', 'COUNT', 1)
  if first[1] then after = first[1][1] end
else
  local next_one = redis.call('XRANGE', KEYS[2], '(' .. ARGV[1], '+', 'COUNT', 1)
  if next_one[1] then after = next_one[1][1] end
  for _, item in ipairs(redis.call('XRANGE', KEYS[2], '-', ARGV[1], 'COUNT', ARGV[2])) do
    local id = item[1]
    head[#head + 1] = id
    head[#head + 1] = redis.call('HEXISTS', KEYS[3], id)
    head[#head + 1] = redis.call('ZSCORE', KEYS[4], id) and 1 or 0
  end
end
return {lease, redis.call('ZCARD', KEYS[4]), first_due[2] or false, after, head}
