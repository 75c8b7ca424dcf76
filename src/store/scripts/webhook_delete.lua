-- Deletes one webhook, its index entries and everything it owns, if its revision is as expected.
-- KEYS[1]   the webhook's hash
-- KEYS[2]   the webhooks version counter
-- KEYS[3]   the change log (entry `<version>-0`: the webhook this version changed)
-- KEYS[4..] index sets to leave (ARGV[4] of them), then keys to delete (queue, retry, ...)
-- ARGV[1] webhook id, ARGV[2] expected revision, ARGV[3] channel, ARGV[4] number of index sets
-- Returns the new version when deleted, 0 when the revision did not match.
if redis.call('HGET', KEYS[1], 'rev') ~= ARGV[2] then
  return 0
end
local sets = tonumber(ARGV[4])
for i = 4, 3 + sets do
  redis.call('ZREM', KEYS[i], ARGV[1])
end
-- UNLINK: a queue or log of a million entries is freed in the background, not while Redis
-- (and everyone on it) waits.
for i = 4 + sets, #KEYS do
  redis.call('UNLINK', KEYS[i])
end
redis.call('DEL', KEYS[1])
local version = redis.call('INCR', KEYS[2])
redis.call('XADD', KEYS[3], 'MAXLEN', '~', 10000, version .. '-0', 'id', ARGV[1])
redis.call('PUBLISH', ARGV[3], ARGV[1] .. ':' .. version)
return version
