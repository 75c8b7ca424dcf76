-- The next deliveries of one webhook's queue, with their retry state.
-- KEYS[1] the queue, KEYS[2] the retry hash
-- ARGV[1] start ('-' or '(<id>' for "after id"), ARGV[2] count
-- Returns {id, event id, ev, body tail, retry state or false} per entry.
local out = {}
for _, entry in ipairs(redis.call('XRANGE', KEYS[1], ARGV[1], '+', 'COUNT', ARGV[2])) do
  local id, fields = entry[1], entry[2]
  local e, ev, b = false, false, false
  for i = 1, #fields, 2 do
    if fields[i] == 'e' then e = fields[i + 1]
    elseif fields[i] == 'ev' then ev = fields[i + 1]
    elseif fields[i] == 'b' then b = fields[i + 1] end
  end
  out[#out + 1] = {id, e, ev, b, redis.call('HGET', KEYS[2], id)}
end
return out
