-- Takes a replay's lease when nobody holds it, or extends it when the caller does.
-- KEYS[1] the replay's lease  ARGV[1] the caller's token  ARGV[2] ttl (ms)
-- Returns 1 when the caller holds it now, 0 when another instance does.
local holder = redis.call('GET', KEYS[1])
if holder == false then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
