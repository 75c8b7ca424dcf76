-- Routes a batch of event stream entries: appends each valid event to the queue of every
-- webhook it matched, sets malformed entries aside, then acknowledges and deletes every entry
-- of the batch. All or nothing.
--
-- The webhooks are not read: the version check below makes the router's matches current (every
-- write of a webhook record bumps the version, and the router's index holds exactly the enabled
-- webhooks of the version it applied), so a matched webhook exists and is enabled.
--
-- It refuses, writing nothing, when the router's view is not current:
--   'stale'   a webhook changed since the version the router's index reflects (another
--             instance changed it and the notification has not arrived): the router syncs and
--             routes the batch again, so an event published after a change is routed with it;
--   'claimed' an entry of the batch is no longer pending for this consumer (another instance
--             reclaimed it while this one was paused): that one routes it.
--
-- Each valid event is also kept in the retained stream (retained_lib.lua) with the queue
-- entry it got in every queue it went to, when retention is on (ARGV[10] > 0), and the
-- retained stream is trimmed by a budget in proportion to the batch, so trimming keeps pace
-- with what is added.
--
-- KEYS[1] the event stream  KEYS[2] the rejected stream  KEYS[3] the webhooks version
-- KEYS[4] the retained stream  KEYS[5] its index
-- KEYS[5+w]   webhook w's queue, for w = 1..ARGV[4]
-- KEYS[6+ARGV[4]] (with a 'p' record only) the event's progress set
-- ARGV[1] consumer group, ARGV[2] rejected stream cap, ARGV[3] now (ms), ARGV[4] webhook count
-- ARGV[5] the version the router applied, ARGV[6] consumer, ARGV[7] first and ARGV[8] last
-- entry id of the batch, ARGV[9] entries in the batch
-- ARGV[10] the most events retained (0: retention off), ARGV[11] the oldest routing time
-- retained (ms)
-- ARGV[12..] records:
--   'e', entry id, ev, user, body tail, n, w1 .. wn    a valid event for webhooks w1..wn
--   'r', entry id, reason, raw value             a malformed entry
--   'a', entry id                                an entry to acknowledge only
--   'p', entry id, ev, user, body tail, last (1/0), n, w1 .. wn
--        a part of an event that matched more webhooks than one script writes: the only
--        record of its script. Each part skips the queues the progress set says were written
--        (by an earlier part, or by this part's earlier try), appends to the others and adds
--        them to the set (and '<webhook>=<queue entry>' for the retained entry); the last
--        part acknowledges the entry, retains it and deletes the set. So when a part is
--        refused or fails, routing the event again repeats nothing.
-- A queue entry is one field, d = '<entry id>\n<ev>\n<body tail>' (see queues.rs, QueueFields).
-- Returns one string: for each (event, webhook) in order, '<new queue entry id><<the entry
-- before it in that queue>' ('<id><' when the queue was empty), or '-' where skipped,
-- separated by spaces (one value to send and parse per script, not one per pair), in an array
-- so that it cannot be mistaken for a refusal. The entry before tells the webhook's actor
-- whether it has read everything up to the new entry: another instance may have appended in
-- between, and its notice may be lost (a cursor must never pass an unread entry).
if (redis.call('GET', KEYS[3]) or '0') ~= ARGV[5] then
  return 'stale'
end
local mine = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[7], ARGV[8], ARGV[9], ARGV[6])
if #mine ~= tonumber(ARGV[9]) then
  return 'claimed'
end

-- The queue entry's one field for an event (see queues.rs, QueueFields).
local function entry(id, ev, tail)
  return id .. '\n' .. ev .. '\n' .. tail
end

local retaining = tonumber(ARGV[10]) > 0
-- The webhook a queue key belongs to (ids are the last 24 characters of every queue key).
local function owner(queue)
  return string.sub(queue, -24)
end

-- The last entry of each queue written so far: read once per queue, then known.
local last = {}
local function append(queue, d)
  local before = last[queue]
  if before == nil then
    local tail = redis.call('XREVRANGE', queue, '+', '-', 'COUNT', 1)
    before = tail[1] and tail[1][1] or ''
  end
  local id = redis.call('XADD', queue, '*', 'd', d)
  last[queue] = id
  return id, id .. '<' .. before
end

local out, done = {}, {}
local kept = 0
local i = 12
while i <= #ARGV do
  local kind, id = ARGV[i], ARGV[i + 1]
  if kind ~= 'p' then done[#done + 1] = id end
  if kind == 'e' then
    local ev, user, tail, n = ARGV[i + 2], ARGV[i + 3], ARGV[i + 4], tonumber(ARGV[i + 5])
    local d, went = entry(id, ev, tail), {}
    for t = 1, n do
      local queue = KEYS[5 + tonumber(ARGV[i + 5 + t])]
      local appended, answer = append(queue, d)
      out[#out + 1] = answer
      went[#went + 1] = owner(queue) .. '=' .. appended
    end
    if retaining then
      retain(KEYS[4], KEYS[5], id, ev, user, tail, table.concat(went, ' '))
      kept = kept + 1
    end
    i = i + 6 + n
  elseif kind == 'p' then
    local ev, user, tail, final, n = ARGV[i + 2], ARGV[i + 3], ARGV[i + 4], ARGV[i + 5], tonumber(ARGV[i + 6])
    local d = entry(id, ev, tail)
    local progress = KEYS[6 + tonumber(ARGV[4])]
    local queues = {}
    for t = 1, n do queues[t] = KEYS[5 + tonumber(ARGV[i + 6 + t])] end
    local written = redis.call('SMISMEMBER', progress, unpack(queues))
    local added = {}
    for t = 1, n do
      if written[t] == 1 then
        out[#out + 1] = '-'
      else
        local appended, answer = append(queues[t], d)
        out[#out + 1] = answer
        added[#added + 1] = queues[t]
        added[#added + 1] = owner(queues[t]) .. '=' .. appended
      end
    end
    if #added > 0 then
      redis.call('SADD', progress, unpack(added))
      redis.call('PEXPIRE', progress, 86400000)
    end
    if final == '1' then
      if retaining then
        local went = {}
        for _, member in ipairs(redis.call('SMEMBERS', progress)) do
          if string.find(member, '=', 1, true) then went[#went + 1] = member end
        end
        retain(KEYS[4], KEYS[5], id, ev, user, tail, table.concat(went, ' '))
        kept = kept + 1
      end
      redis.call('DEL', progress)
      done[#done + 1] = id
    end
    i = i + 7 + n
  elseif kind == 'r' then
    redis.call('XADD', KEYS[2], 'MAXLEN', ARGV[2], '*',
      'entry', id, 'reason', ARGV[i + 2], 'raw', ARGV[i + 3], 'time', ARGV[3])
    i = i + 4
  else
    i = i + 2
  end
end

-- unpack() is limited by Lua's stack (the parts above are at most max_writes_per_script, which
-- the settings bound); acknowledge in slices.
for s = 1, #done, 500 do
  local e = math.min(s + 499, #done)
  redis.call('XACK', KEYS[1], ARGV[1], unpack(done, s, e))
  redis.call('XDEL', KEYS[1], unpack(done, s, e))
end
if retaining then
  retained_trim(KEYS[4], KEYS[5], tonumber(ARGV[11]), tonumber(ARGV[10]), 2 * kept + 16)
end
return {table.concat(out, ' ')}
