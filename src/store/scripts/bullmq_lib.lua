-- Shared head of the BullMQ scripts (bullmq_take, bullmq_claim, bullmq_finish): BullMQ's own
-- rules for its keys, re-stated from its scripts (5.23.1 and 5.81.5 agree on all of these).
-- KEYS[1..11]  the queue's keys, in BullMqKeys::script_keys order
-- ARGV[1]      the queue's key base '<prefix>:<queue>:' (a job's hash is base .. id)
-- ARGV[2]      now, ms since the epoch
local rcall = redis.call
local k = {
  wait = KEYS[1], paused = KEYS[2], meta = KEYS[3], active = KEYS[4], prioritized = KEYS[5],
  delayed = KEYS[6], stalled = KEYS[7], stalled_check = KEYS[8], marker = KEYS[9],
  events = KEYS[10], pc = KEYS[11],
}
local base = ARGV[1]
local now = tonumber(ARGV[2])
local max_events = tonumber(rcall('HGET', k.meta, 'opts.maxLenEvents')) or 10000

-- An entry in BullMQ's event log, capped as BullMQ caps it.
local function emit(...)
  rcall('XADD', k.events, 'MAXLEN', '~', max_events, '*', ...)
end

-- BullMQ's getTargetQueueList: a paused queue is one whose meta hash has 'paused'.
local function is_paused()
  return rcall('HEXISTS', k.meta, 'paused') == 1
end

-- The next job to run, in BullMQ's order (moveToActive): the right end of wait (skipping the
-- '0:…' markers BullMQ 4 left in lists), then the lowest-scored prioritized job.
local function next_job()
  while true do
    local id = rcall('RPOP', k.wait)
    if not id then break end
    if string.sub(id, 1, 2) ~= '0:' then return id end
  end
  local top = rcall('ZPOPMIN', k.prioritized)
  if #top > 0 then return top[1] end
  return nil
end

-- BullMQ's promoteDelayedJobs, bounded: due delayed jobs go to wait (or prioritized).
local function promote_delayed(limit, paused)
  local due = rcall('ZRANGEBYSCORE', k.delayed, 0, (now + 1) * 0x1000 - 1, 'LIMIT', 0, limit)
  if #due == 0 then return end
  rcall('ZREM', k.delayed, unpack(due))
  for _, id in ipairs(due) do
    local priority = tonumber(rcall('HGET', base .. id, 'priority')) or 0
    if priority == 0 then
      rcall('LPUSH', paused and k.paused or k.wait, id)
    else
      rcall('ZADD', k.prioritized, priority * 0x100000000 + rcall('INCR', k.pc) % 0x100000000, id)
    end
    rcall('HSET', base .. id, 'delay', 0)
    emit('event', 'waiting', 'jobId', id, 'prev', 'delayed')
  end
end

-- BullMQ's moveStalledJobsToWait, at most once per `interval` ms across every BullMQ worker
-- and hookrouter instance (the stalled-check key): jobs marked at the previous check that are
-- still active without a lock go back to the right end of wait, to be taken next; then every
-- active job is marked. Unlike BullMQ, a job that stalled many times is never failed: it goes
-- back too, so no event is lost.
local function check_stalled(interval, paused)
  if not rcall('SET', k.stalled_check, now, 'PX', interval, 'NX') then return end
  local stalling = rcall('SMEMBERS', k.stalled)
  if #stalling > 0 then
    rcall('DEL', k.stalled)
    for _, id in ipairs(stalling) do
      if string.sub(id, 1, 2) == '0:' then
        rcall('LREM', k.active, 1, id)
      elseif rcall('EXISTS', base .. id .. ':lock') == 0 and rcall('LREM', k.active, 1, id) > 0 then
        rcall('RPUSH', paused and k.paused or k.wait, id)
        if not paused then rcall('ZADD', k.marker, 0, '0') end
        emit('event', 'waiting', 'jobId', id, 'prev', 'active')
        emit('event', 'stalled', 'jobId', id)
      end
    end
  end
  local active = rcall('LRANGE', k.active, 0, -1)
  for s = 1, #active, 5000 do
    rcall('SADD', k.stalled, unpack(active, s, math.min(s + 4999, #active)))
  end
end

-- What removeOnComplete does (moveToFinished): the job's keys go, and its deduplication key
-- if it still points at this job.
local function remove_job(id)
  local key = base .. id
  local deid = rcall('HGET', key, 'deid')
  if deid then
    local dedup = base .. 'de:' .. deid
    local pttl = rcall('PTTL', dedup)
    if pttl == 0 or (pttl == -1 and rcall('GET', dedup) == id) then rcall('DEL', dedup) end
  end
  rcall('DEL', key, key .. ':logs', key .. ':dependencies', key .. ':processed', key .. ':failed',
    key .. ':unsuccessful', key .. ':lock')
end

-- After taking jobs: wake other consumers if work is left (as BullMQ's moveToActive does),
-- say 'drained' when nothing is, and tell the caller when the next delayed job is due.
-- Returns more (0/1) and the next delayed job's due time in ms (-1 when there is none).
local function after_taking(took)
  local more = rcall('LLEN', k.wait) > 0 or rcall('ZCARD', k.prioritized) > 0
  if more then
    rcall('ZADD', k.marker, 0, '0')
  elseif took > 0 and rcall('LLEN', k.active) == 0 then
    emit('event', 'drained')
  end
  local next_due = -1
  local first = rcall('ZRANGE', k.delayed, 0, 0, 'WITHSCORES')
  if #first > 0 then next_due = math.floor(tonumber(first[2]) / 0x1000) end
  return more and 1 or 0, next_due
end
