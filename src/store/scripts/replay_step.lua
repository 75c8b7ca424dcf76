-- One step of a replay (replays.rs): appends a batch of retained events to the webhook's queue
-- and moves the replay's cursor past them, in one piece, so a replay taken over by another
-- instance goes on exactly where this one stopped: nothing twice, nothing skipped.
-- Fenced: writes nothing unless the caller still holds the replay's lease and the replay is
-- still running (not cancelled, its webhook not deleted).
-- KEYS[1] the replay's lease  KEYS[2] the webhook's replays  KEYS[3] its queue
-- KEYS[4] its dead letters  KEYS[5] the running replays
-- ARGV[1] replay number  ARGV[2] lease token  ARGV[3] lease ttl (ms)  ARGV[4] the new cursor
-- ARGV[5] '1' when this is the last step  ARGV[6] events of the batch that matched
-- ARGV[7] now (ms)  ARGV[8] '<webhook>/<n>'
-- ARGV[9..] pairs: the queue entry's field d (its field r names the replay, whose delivered
-- count settle.lua keeps), and '' or the dead letter it replaces (a letter
-- already gone, replayed or purged meanwhile, is not queued again).
-- Returns how many entries it queued; -1 lease lost; -2 the replay is not running.
if redis.call('GET', KEYS[1]) ~= ARGV[2] then return -1 end
local raw = redis.call('HGET', KEYS[2], ARGV[1])
if not raw then return -2 end
local state = cjson.decode(raw)
if state.state ~= 'running' then return -2 end
local queued = 0
for i = 9, #ARGV, 2 do
  if ARGV[i + 1] == '' or redis.call('XDEL', KEYS[4], ARGV[i + 1]) == 1 then
    redis.call('XADD', KEYS[3], '*', 'd', ARGV[i], 'r', ARGV[1])
    queued = queued + 1
  end
end
state.cursor = ARGV[4]
state.matched = state.matched + tonumber(ARGV[6])
state.queued = state.queued + queued
if ARGV[5] == '1' then
  state.state = 'done'
  state.finished = tonumber(ARGV[7])
  redis.call('ZREM', KEYS[5], ARGV[8])
  redis.call('DEL', KEYS[1])
else
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
end
redis.call('HSET', KEYS[2], ARGV[1], cjson.encode(state))
return queued
