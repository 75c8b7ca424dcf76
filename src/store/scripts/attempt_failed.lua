-- Records a failed attempt: into the attempt log, the circuit state, and then either the entry's
-- retry state (its attempt count, and its place in the due set, ordered by due time) or its move
-- to the dead letters. Writes nothing if the webhook was deleted.
-- KEYS[1] webhook hash  KEYS[2] queue  KEYS[3] retry hash  KEYS[4] dead letters
-- KEYS[5] attempt log   KEYS[6] circuit hash  KEYS[7] due set
-- ARGV[1] queue entry id          ARGV[2] 'retry' or 'dead'
-- ARGV[3] retry state ('attempts:due_ms:first_failed_ms')  ARGV[4] due (ms)
-- ARGV[5] consecutive failures    ARGV[6] failing since (ms)
-- ARGV[7] attempt log cap         ARGV[8] attempt log ttl (ms)
-- ARGV[9] dead letter cap         ARGV[10] oldest dead letter id to keep (ms)
-- ARGV[11] n = attempt record fields; ARGV[12 .. 11+2n] the record; the rest: dead letter fields
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local n = tonumber(ARGV[11])
redis.call('XADD', KEYS[5], 'MAXLEN', ARGV[7], '*', unpack(ARGV, 12, 11 + 2 * n))
redis.call('PEXPIRE', KEYS[5], ARGV[8])
if tonumber(ARGV[5]) > 0 then
  redis.call('HSET', KEYS[6], 'failures', ARGV[5], 'since', ARGV[6])
end
if ARGV[2] == 'retry' then
  redis.call('HSET', KEYS[3], ARGV[1], ARGV[3])
  redis.call('ZADD', KEYS[7], ARGV[4], ARGV[1])
else
  redis.call('XADD', KEYS[4], 'MAXLEN', ARGV[9], '*', unpack(ARGV, 12 + 2 * n))
  redis.call('XTRIM', KEYS[4], 'MINID', '~', ARGV[10])
  redis.call('XDEL', KEYS[2], ARGV[1])
  redis.call('HDEL', KEYS[3], ARGV[1])
  redis.call('ZREM', KEYS[7], ARGV[1])
end
return 1
