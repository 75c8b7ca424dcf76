-- Records a queue entry's retry state, unless the webhook was deleted meanwhile.
-- KEYS[1] the webhook's hash, KEYS[2] the retry hash; ARGV[1] entry id, ARGV[2] state
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
return 1
