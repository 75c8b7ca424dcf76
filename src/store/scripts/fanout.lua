-- Routes a batch of event stream entries: appends each valid event to the queue of every
-- webhook it matched (if that webhook still exists and is enabled), sets malformed entries
-- aside, then acknowledges and deletes every entry of the batch. All or nothing.
--
-- It refuses, writing nothing, when the router's view is not current:
--   'stale'   a webhook changed since the version the router's index reflects (another
--             instance changed it and the notification has not arrived): the router syncs and
--             routes the batch again, so an event published after a change is routed with it;
--   'claimed' an entry of the batch is no longer pending for this consumer (another instance
--             reclaimed it while this one was paused): that one routes it.
--
-- KEYS[1] the event stream  KEYS[2] the rejected stream  KEYS[3] the webhooks version
-- KEYS[2+2w], KEYS[3+2w]   webhook w's hash and queue, for w = 1..ARGV[4]
-- ARGV[1] consumer group, ARGV[2] rejected stream cap, ARGV[3] now (ms), ARGV[4] webhook count
-- ARGV[5] the version the router applied, ARGV[6] consumer, ARGV[7] first and ARGV[8] last
-- entry id of the batch, ARGV[9] entries in the batch
-- ARGV[10..] records:
--   'e', entry id, ev, body tail, n, w1 .. wn    a valid event for webhooks w1..wn
--   'r', entry id, reason, raw value             a malformed entry
--   'a', entry id                                an entry to acknowledge only
-- Returns the new queue entry id for each (event, webhook) in order; false where skipped.
if (redis.call('GET', KEYS[3]) or '0') ~= ARGV[5] then
  return 'stale'
end
local mine = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[7], ARGV[8], ARGV[9], ARGV[6])
if #mine ~= tonumber(ARGV[9]) then
  return 'claimed'
end

local webhooks = tonumber(ARGV[4])
local open = {}
for w = 1, webhooks do
  open[w] = redis.call('HGET', KEYS[2 + 2 * w], 'enabled') == '1'
end

local out, done = {}, {}
local i = 10
while i <= #ARGV do
  local kind, id = ARGV[i], ARGV[i + 1]
  done[#done + 1] = id
  if kind == 'e' then
    local ev, tail, n = ARGV[i + 2], ARGV[i + 3], tonumber(ARGV[i + 4])
    for t = 1, n do
      local w = tonumber(ARGV[i + 4 + t])
      if open[w] then
        out[#out + 1] = redis.call('XADD', KEYS[3 + 2 * w], '*', 'e', id, 'ev', ev, 'b', tail)
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
