-- Cancels a running replay: its next step is refused (replay_step.lua), its lease released.
-- KEYS[1] the webhook's replays  KEYS[2] the running replays  KEYS[3] the replay's lease
-- ARGV[1] replay number  ARGV[2] now (ms)  ARGV[3] '<webhook>/<n>'
-- Returns the replay's state (JSON) as it is now, or false when there is no such replay.
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then return false end
local state = cjson.decode(raw)
if state.state == 'running' then
  state.state = 'cancelled'
  state.finished = tonumber(ARGV[2])
  raw = cjson.encode(state)
  redis.call('HSET', KEYS[1], ARGV[1], raw)
  redis.call('ZREM', KEYS[2], ARGV[3])
  redis.call('DEL', KEYS[3])
end
return raw
