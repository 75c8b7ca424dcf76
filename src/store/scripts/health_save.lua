-- Stores a delivery actor's health report, if its instance still holds the webhook's lease
-- (so a deleted webhook, or one another instance delivers now, gets no stale report).
-- KEYS[1] lease, KEYS[2] the health key; ARGV[1] lease value, ARGV[2] the report
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end
redis.call('SET', KEYS[2], ARGV[2])
return 1
