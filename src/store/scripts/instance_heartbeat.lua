-- One instance's heartbeat, timed by Redis's clock (instances' clocks may disagree).
-- KEYS[1] the instance set, KEYS[2] this instance's hash
-- ARGV[1] name, ARGV[2] delivering (1/0), ARGV[3] started at (ms), ARGV[4] webhooks owned,
-- ARGV[5] leases ttl (ms)
-- Forgets instances silent for 10 ttl. Returns Redis's time (ms).
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local keep = tonumber(ARGV[5]) * 10
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('HSET', KEYS[2], 'delivering', ARGV[2], 'startedAt', ARGV[3], 'webhooks', ARGV[4], 'lastSeen', now)
redis.call('PEXPIRE', KEYS[2], keep)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - keep)
return now
