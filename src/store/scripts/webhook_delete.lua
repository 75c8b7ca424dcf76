-- Deletes one webhook, its index entries and everything it owns, if its revision is as expected.
-- KEYS[1]   the webhook's hash
-- KEYS[2]   the webhooks version key
-- KEYS[3..] index sets to leave (ARGV[5] of them), then keys to delete (queue, retry, ...)
-- ARGV[1] webhook id, ARGV[2] expected revision, ARGV[3] channel, ARGV[4] new version token,
-- ARGV[5] number of index sets
-- Returns 1 when deleted, 0 when the revision did not match.
if redis.call('HGET', KEYS[1], 'rev') ~= ARGV[2] then
  return 0
end
local sets = tonumber(ARGV[5])
for i = 3, 2 + sets do
  redis.call('ZREM', KEYS[i], ARGV[1])
end
for i = 3 + sets, #KEYS do
  redis.call('DEL', KEYS[i])
end
redis.call('DEL', KEYS[1])
redis.call('SET', KEYS[2], ARGV[4])
redis.call('PUBLISH', ARGV[3], ARGV[1])
return 1
