-- Stores a delivery actor's health report, unless the webhook was deleted meanwhile.
-- KEYS[1] the webhook's hash, KEYS[2] the health key; ARGV[1] the report
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('SET', KEYS[2], ARGV[1])
return 1
