-- Records a batch of finished attempts of one webhook (one flush of its delivery actor), if
-- the actor's instance still holds the webhook's lease (the fencing token): otherwise writes
-- nothing and returns -1. A deleted webhook has no lease, so nothing is written for it either.
-- Each kind of write is one command for the whole batch (one XDEL of every entry that leaves
-- the queue, one XADD of every attempt to the log, ...), so a flush of 12 deliveries costs
-- Redis about as much as a flush of one.
-- KEYS[1] lease  KEYS[2] queue  KEYS[3] retry hash  KEYS[4] due set  KEYS[5] dead letters
-- KEYS[6] attempt log  KEYS[7] circuit hash  KEYS[8] the webhook's replays (replays.rs)
-- ARGV[1] lease value  ARGV[2] attempt log cap (attempts)  ARGV[3] attempt log ttl (ms; 0 leaves
-- the expiry as it is)  ARGV[4] trimming the log to its cap now: '0' not now, '1' by counting
-- back from the newest entry, or an entry id: the entries older than it go (the writer counted
-- that its entries from that one on hold the cap; see upkeep.rs)
-- ARGV[5] dead letter cap  ARGV[6] oldest dead letter id to keep (ms)
-- ARGV[7] the circuit's run of failures (or 'keep')  ARGV[8] since (ms)
-- ARGV[9] '1' when these records may have been written already (the actor writes them again
-- after a write whose answer it did not get: the script may have run all the same): then each
-- record is applied only if it was not (the entry is still queued; a retry's attempt count is
-- newer than the one stored), so a repeat appends no dead letter, attempt or retry twice
-- ARGV[10..] records (at most MAX_RECORDS: the writer cuts bigger flushes), each one of:
--   'd', entry, retried (1/0), attempt, replay ('' or its number)
--                                             delivered: leaves the queue (and its retry state);
--                                             counted in `<replay>:delivered` of KEYS[8]
--   'r', entry, retry state, due, attempt     failed, retried when due: joins the due set
--                                             (state `tries:due:first failure:spared`, queues.rs)
--   'x', entry, attempt ('' = none), n, the dead letter's n field/value pairs
--                                             failed for the last time (or unreadable): a dead letter
-- The attempt log holds one stream entry per flush, with one field `a` per attempt (oldest
-- first). XADD's MAXLEN caps its entries at the cap, so it never holds more than cap flushes;
-- the exact cap in attempts is applied when asked (ARGV[4]): the newest entries holding `cap`
-- attempts are kept, the older ones trimmed.
-- Returns the id of the log entry added ('' when no attempt was logged).
--
-- Nothing is written before every record is read and checked, and no command can fail after
-- (every list is sliced, see `batched`): Redis does not undo a script that errors half-way, and
-- a half-applied flush that is written again would repeat what it had applied.
local MAX_RECORDS = 256
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end
local repeating = ARGV[9] == '1'

-- Calls `command` with `head` then the items of `list`, in chunks (Lua's unpack is bounded).
local function batched(head, list)
  local chunk = 1000
  for first = 1, #list, chunk do
    local args = {}
    for _, value in ipairs(head) do args[#args + 1] = value end
    for j = first, math.min(first + chunk - 1, #list) do args[#args + 1] = list[j] end
    redis.call(unpack(args))
  end
end

-- Whether a record of a repeated flush was applied by the first try.
local function still_queued(entry)
  return #redis.call('XRANGE', KEYS[2], entry, entry) > 0
end
local function newer_attempt(entry, state)
  local stored = redis.call('HGET', KEYS[3], entry)
  if not stored then return true end
  return tonumber(string.match(state, '^(%d+)')) > tonumber(string.match(stored, '^(%d+)') or '0')
end

local leaving, forget, unschedule = {}, {}, {}
local retry_state, due, log, letters = {}, {}, {}, {}
local replayed = {}
local function logged(attempt)
  if attempt ~= '' then
    log[#log + 1] = 'a'
    log[#log + 1] = attempt
  end
end
local records, i = 0, 10
while i <= #ARGV do
  records = records + 1
  if records > MAX_RECORDS then
    return redis.error_reply('settle: more than ' .. MAX_RECORDS .. ' records in one flush; nothing written')
  end
  local kind, entry = ARGV[i], ARGV[i + 1]
  if kind == 'd' then
    if not repeating or still_queued(entry) then
      leaving[#leaving + 1] = entry
      if ARGV[i + 2] == '1' then forget[#forget + 1] = entry end
      logged(ARGV[i + 3])
      local replay = ARGV[i + 4]
      if replay ~= '' then replayed[replay] = (replayed[replay] or 0) + 1 end
    end
    i = i + 5
  elseif kind == 'r' then
    if not repeating or newer_attempt(entry, ARGV[i + 2]) then
      retry_state[#retry_state + 1] = entry
      retry_state[#retry_state + 1] = ARGV[i + 2]
      due[#due + 1] = ARGV[i + 3]
      due[#due + 1] = entry
      logged(ARGV[i + 4])
    end
    i = i + 5
  else
    local n = tonumber(ARGV[i + 3])
    if not repeating or still_queued(entry) then
      logged(ARGV[i + 2])
      letters[#letters + 1] = {i + 4, i + 3 + 2 * n}
      leaving[#leaving + 1] = entry
      forget[#forget + 1] = entry
      unschedule[#unschedule + 1] = entry
    end
    i = i + 4 + 2 * n
  end
end

-- Every record is read: now the writes.
for _, span in ipairs(letters) do
  redis.call('XADD', KEYS[5], 'MAXLEN', ARGV[5], '*', unpack(ARGV, span[1], span[2]))
end
if #leaving > 0 then batched({'XDEL', KEYS[2]}, leaving) end
if #forget > 0 then batched({'HDEL', KEYS[3]}, forget) end
if #unschedule > 0 then batched({'ZREM', KEYS[4]}, unschedule) end
if #retry_state > 0 then
  batched({'HSET', KEYS[3]}, retry_state)
  batched({'ZADD', KEYS[4]}, due)
end
if #letters > 0 then redis.call('XTRIM', KEYS[5], 'MINID', '~', ARGV[6]) end
for replay, count in pairs(replayed) do
  -- Only while the replay is kept (a webhook keeps its last 20): no counter outlives its state.
  if redis.call('HEXISTS', KEYS[8], replay) == 1 then
    redis.call('HINCRBY', KEYS[8], replay .. ':delivered', count)
  end
end
local logged = ''
if #log > 0 then
  local cap = tonumber(ARGV[2])
  -- One entry per flush: at most MAX_RECORDS attempts, 2 values each, well within unpack's
  -- limit (about 8,000).
  logged = redis.call('XADD', KEYS[6], 'MAXLEN', cap, '*', unpack(log))
  if ARGV[4] == '1' then
    -- Walk back from the newest entry until `cap` attempts are counted; trim what is older.
    local kept, cursor = 0, '+'
    while kept < cap do
      local page = redis.call('XREVRANGE', KEYS[6], cursor, '-', 'COUNT', 100)
      if #page == 0 then break end
      for _, item in ipairs(page) do
        kept = kept + #item[2] / 2
        if kept >= cap then
          redis.call('XTRIM', KEYS[6], 'MINID', item[1])
          break
        end
      end
      cursor = '(' .. page[#page][1]
    end
  elseif ARGV[4] ~= '0' then
    redis.call('XTRIM', KEYS[6], 'MINID', ARGV[4])
  end
  if ARGV[3] ~= '0' then redis.call('PEXPIRE', KEYS[6], ARGV[3]) end
end
if ARGV[7] == 'keep' then
  -- (the circuit's run is as it was written last)
elseif tonumber(ARGV[7]) > 0 then
  redis.call('HSET', KEYS[7], 'failures', ARGV[7], 'since', ARGV[8])
else
  redis.call('DEL', KEYS[7])
end
return logged
