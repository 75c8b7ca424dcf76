-- Records a failed attempt: into the attempt log, the circuit state, and then either the entry's
-- retry state or its move to the dead letters. Writes nothing if the webhook was deleted.
-- KEYS[1] webhook hash  KEYS[2] queue  KEYS[3] retry hash  KEYS[4] dead letters
-- KEYS[5] attempt log   KEYS[6] circuit hash
-- ARGV[1] queue entry id          ARGV[2] 'retry' or 'dead'       ARGV[3] retry state
-- ARGV[4] consecutive failures    ARGV[5] failing since (ms)
-- ARGV[6] attempt log cap         ARGV[7] attempt log ttl (ms)
-- ARGV[8] dead letter cap         ARGV[9] oldest dead letter id to keep (ms)
-- ARGV[10] n = attempt record fields; ARGV[11 .. 10+2n] the record; the rest: dead letter fields
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local n = tonumber(ARGV[10])
redis.call('XADD', KEYS[5], 'MAXLEN', ARGV[6], '*', unpack(ARGV, 11, 10 + 2 * n))
redis.call('PEXPIRE', KEYS[5], ARGV[7])
redis.call('HSET', KEYS[6], 'failures', ARGV[4], 'since', ARGV[5])
if ARGV[2] == 'retry' then
  redis.call('HSET', KEYS[3], ARGV[1], ARGV[3])
else
  redis.call('XADD', KEYS[4], 'MAXLEN', ARGV[8], '*', unpack(ARGV, 11 + 2 * n))
  redis.call('XTRIM', KEYS[4], 'MINID', '~', ARGV[9])
  redis.call('XDEL', KEYS[2], ARGV[1])
  redis.call('HDEL', KEYS[3], ARGV[1])
end
return 1
