-- (after bullmq_lib.lua) Other-Redis mode, step 3 of 3: the claimed jobs are in hookrouter's
-- event stream now; remove them from BullMQ (as moveToFinished does with removeOnComplete).
-- A job is removed wherever it is: still active under our lock (the usual case), or already
-- put back in wait by a stalled check (our lock expired), where leaving it would make it a
-- second event. If another consumer claimed it again meanwhile, that copy is a duplicate this
-- cannot undo; it is bounded by one batch per expired lock.
-- ARGV[3] token, ARGV[4..] job id, stream entry id, job id, stream entry id…
-- Returns the number of jobs that were still active under our lock.
local token = ARGV[3]
local ours = 0
for i = 4, #ARGV, 2 do
  local id, entry = ARGV[i], ARGV[i + 1]
  if rcall('GET', base .. id .. ':lock') == token then ours = ours + 1 end
  rcall('SREM', k.stalled, id)
  if rcall('LREM', k.active, -1, id) == 0 then
    rcall('LREM', k.wait, 0, id)
    rcall('LREM', k.paused, 0, id)
  end
  local existed = rcall('EXISTS', base .. id) == 1
  remove_job(id)
  if existed then
    emit('event', 'completed', 'jobId', id, 'returnvalue', '{"entry":"' .. entry .. '"}', 'prev', 'active')
  end
end
if rcall('LLEN', k.wait) == 0 and rcall('LLEN', k.active) == 0 and rcall('ZCARD', k.prioritized) == 0 then
  emit('event', 'drained')
end
return ours
