-- Extends leases that still hold the value this instance gave them.
-- KEYS[i] lease key, ARGV[1] ttl (ms), ARGV[1 + i] the expected value of KEYS[i].
-- Returns, for each lease, 1 when renewed, 0 when lost (expired, or another's now).
local kept = {}
for i = 1, #KEYS do
  if redis.call('GET', KEYS[i]) == ARGV[1 + i] then
    redis.call('PEXPIRE', KEYS[i], ARGV[1])
    kept[i] = 1
  else
    kept[i] = 0
  end
end
return kept
