-- Routes a batch of event stream entries: appends each valid event to the queue of every
-- webhook it matched (if that webhook still exists and is enabled), sets malformed entries
-- aside, then acknowledges and deletes every entry of the batch. All or nothing.
-- KEYS[1]      the event stream
-- KEYS[2]      the rejected stream
-- KEYS[1+2w], KEYS[2+2w]   webhook w's hash and queue, for w = 1..ARGV[4]
-- ARGV[1] consumer group, ARGV[2] rejected stream cap, ARGV[3] now (ms), ARGV[4] webhook count
-- ARGV[5..] records:
--   'e', entry id, ev, body tail, n, w1 .. wn    a valid event for webhooks w1..wn
--   'r', entry id, reason, raw value             a malformed entry
--   'a', entry id                                an entry to acknowledge only
-- Returns the new queue entry id for each (event, webhook) in order; false where skipped.
local webhooks = tonumber(ARGV[4])
local open = {}
for w = 1, webhooks do
  open[w] = redis.call('HGET', KEYS[1 + 2 * w], 'enabled') == '1'
end

local out, done = {}, {}
local i = 5
while i <= #ARGV do
  local kind, id = ARGV[i], ARGV[i + 1]
  done[#done + 1] = id
  if kind == 'e' then
    local ev, tail, n = ARGV[i + 2], ARGV[i + 3], tonumber(ARGV[i + 4])
    for t = 1, n do
      local w = tonumber(ARGV[i + 4 + t])
      if open[w] then
        out[#out + 1] = redis.call('XADD', KEYS[2 + 2 * w], '*', 'e', id, 'ev', ev, 'b', tail)
      else
        out[#out + 1] = false
      end
    end
    i = i + 5 + n
  elseif kind == 'r' then
    redis.call('XADD', KEYS[2], 'MAXLEN', ARGV[2], '*',
      'entry', id, 'reason', ARGV[i + 2], 'raw', ARGV[i + 3], 'time', ARGV[3])
    i = i + 4
  else
    i = i + 2
  end
end

-- unpack() is limited by Lua's stack; acknowledge in slices.
for s = 1, #done, 500 do
  local e = math.min(s + 499, #done)
  redis.call('XACK', KEYS[1], ARGV[1], unpack(done, s, e))
  redis.call('XDEL', KEYS[1], unpack(done, s, e))
end
return out
