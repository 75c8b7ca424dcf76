-- (after bullmq_lib.lua) Same-Redis mode: moves up to a batch of BullMQ jobs into hookrouter's
-- event stream, atomically: each job's data becomes an entry (field 'event') of the stream and
-- the job is removed as removeOnComplete asks, in one step that either happens whole or not at
-- all. A paused queue is left alone.
-- KEYS[12]  hookrouter's event stream
-- ARGV[3]   batch size, ARGV[4] stalled-check interval (ms)
-- Returns {moved, paused (0/1), more (0/1), next delayed job due (ms, -1 = none)}.
local batch = tonumber(ARGV[3])
local paused = is_paused()
check_stalled(tonumber(ARGV[4]), paused)
if paused then return {0, 1, 0, -1} end
promote_delayed(batch, false)

local moved = 0
for _ = 1, batch do
  local id = next_job()
  if not id then break end
  local data = rcall('HGET', base .. id, 'data')
  -- A job whose hash is gone was removed by someone else: there is nothing to move.
  if data then
    local entry = rcall('XADD', KEYS[12], '*', 'event', data)
    remove_job(id)
    emit('event', 'completed', 'jobId', id, 'returnvalue', '{"entry":"' .. entry .. '"}', 'prev', 'waiting')
    moved = moved + 1
  end
end
local more, next_due = after_taking(moved)
return {moved, 0, more, next_due}
