-- Writes one webhook record and moves it between index sets, if its revision is as expected.
-- KEYS[1]   the webhook's hash
-- KEYS[2]   the webhooks version key
-- KEYS[3..] index sets to leave (ARGV[5] of them), then index sets to join
-- ARGV[1]   webhook id
-- ARGV[2]   expected current revision ('' = the webhook must not exist yet)
-- ARGV[3]   change notification channel
-- ARGV[4]   new version token
-- ARGV[5]   number of index sets to leave
-- ARGV[6..] field, value, field, value, ... of the new record
-- Returns 1 when written, 0 when the revision did not match (someone else changed it).
local rev = redis.call('HGET', KEYS[1], 'rev')
if ARGV[2] == '' then
  if rev then return 0 end
elseif rev ~= ARGV[2] then
  return 0
end
local leave = tonumber(ARGV[5])
for i = 3, 2 + leave do
  redis.call('ZREM', KEYS[i], ARGV[1])
end
for i = 3 + leave, #KEYS do
  redis.call('ZADD', KEYS[i], 0, ARGV[1])
end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], unpack(ARGV, 6))
redis.call('SET', KEYS[2], ARGV[4])
redis.call('PUBLISH', ARGV[3], ARGV[1])
return 1
