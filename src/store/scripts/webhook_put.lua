-- Writes one webhook record and moves it between index sets, if its revision is as expected.
-- KEYS[1]   the webhook's hash
-- KEYS[2]   the webhooks version counter
-- KEYS[3]   the change log (entry `<version>-0`: the webhook this version changed)
-- KEYS[4..] index sets to leave (ARGV[4] of them), then index sets to join
-- ARGV[1]   webhook id
-- ARGV[2]   expected current revision ('' = the webhook must not exist yet)
-- ARGV[3]   change notification channel
-- ARGV[4]   number of index sets to leave
-- ARGV[5..] field, value, field, value, ... of the new record
-- Returns the new version when written, 0 when the revision did not match (someone else
-- changed it). The id and version are published as '<id>:<version>'.
local rev = redis.call('HGET', KEYS[1], 'rev')
if ARGV[2] == '' then
  if rev then return 0 end
elseif rev ~= ARGV[2] then
  return 0
end
local leave = tonumber(ARGV[4])
for i = 4, 3 + leave do
  redis.call('ZREM', KEYS[i], ARGV[1])
end
for i = 4 + leave, #KEYS do
  redis.call('ZADD', KEYS[i], 0, ARGV[1])
end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], unpack(ARGV, 5))
local version = redis.call('INCR', KEYS[2])
redis.call('XADD', KEYS[3], 'MAXLEN', '~', 10000, version .. '-0', 'id', ARGV[1])
redis.call('PUBLISH', ARGV[3], ARGV[1] .. ':' .. version)
return version
