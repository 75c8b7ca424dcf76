-- Records delivered attempts: removes their entries from the queue and the retry hash, appends
-- them to the attempt log and clears the circuit state. Writes nothing if the webhook is gone.
-- KEYS[1] webhook hash  KEYS[2] queue  KEYS[3] retry hash  KEYS[4] attempt log  KEYS[5] circuit
-- ARGV[1] attempt log cap  ARGV[2] attempt log ttl (ms)
-- ARGV[3] e = number of entries  ARGV[4] f = fields per attempt record
-- ARGV[5 .. 4+e] the queue entry ids, then e records of 2f values each
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local e, f = tonumber(ARGV[3]), tonumber(ARGV[4])
for s = 5, 4 + e, 500 do
  local t = math.min(s + 499, 4 + e)
  redis.call('XDEL', KEYS[2], unpack(ARGV, s, t))
  redis.call('HDEL', KEYS[3], unpack(ARGV, s, t))
end
local base = 5 + e
for i = 0, e - 1 do
  local from = base + i * 2 * f
  redis.call('XADD', KEYS[4], 'MAXLEN', ARGV[1], '*', unpack(ARGV, from, from + 2 * f - 1))
end
redis.call('PEXPIRE', KEYS[4], ARGV[2])
redis.call('DEL', KEYS[5])
return 1
