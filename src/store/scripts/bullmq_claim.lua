-- (after bullmq_lib.lua) Other-Redis mode, step 1 of 3: claims up to a batch of BullMQ jobs the
-- way a BullMQ worker does (moveToActive): each goes to the active list with a lock holding
-- this instance's token for lock_ms, so no other consumer takes it; the caller then appends
-- their data to hookrouter's event stream and finishes them (bullmq_finish). A claimed job
-- whose lock expires (the caller died) goes back to wait at a later stalled check.
-- ARGV[3] batch size, ARGV[4] lock and stalled-check interval (ms), ARGV[5] token
-- Returns {paused (0/1), more (0/1), next delayed job due (ms, -1 = none), id, data, id, data…}.
local batch, lock_ms, token = tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5]
local paused = is_paused()
check_stalled(lock_ms, paused)
if paused then return {1, 0, -1} end
promote_delayed(batch, false)

local claimed = {}
for _ = 1, batch do
  local id = next_job()
  if not id then break end
  local data = rcall('HGET', base .. id, 'data')
  if data then
    rcall('LPUSH', k.active, id)
    rcall('SET', base .. id .. ':lock', token, 'PX', lock_ms)
    rcall('HSET', base .. id, 'processedOn', now)
    emit('event', 'active', 'jobId', id, 'prev', 'waiting')
    claimed[#claimed + 1] = id
    claimed[#claimed + 1] = data
  end
end
local more, next_due = after_taking(0)
local out = {0, more, next_due}
for i = 1, #claimed do out[#out + 1] = claimed[i] end
return out
