-- Records a batch of finished attempts of one webhook (one flush of its delivery actor), if
-- the actor's instance still holds the webhook's lease (the fencing token): otherwise writes
-- nothing and returns -1. A deleted webhook has no lease, so nothing is written for it either.
-- KEYS[1] lease  KEYS[2] queue  KEYS[3] retry hash  KEYS[4] due set  KEYS[5] dead letters
-- KEYS[6] attempt log  KEYS[7] circuit hash
-- ARGV[1] lease value  ARGV[2] attempt log cap  ARGV[3] attempt log ttl (ms)
-- ARGV[4] dead letter cap  ARGV[5] oldest dead letter id to keep (ms)
-- ARGV[6] the circuit's run of failures (or 'keep')  ARGV[7] since (ms)
-- ARGV[8..] records, each one of:
--   'd', entry, retried (1/0), attempt        delivered: leaves the queue (and its retry state)
--   'r', entry, retry state, due, attempt     failed, retried when due: joins the due set
--   'x', entry, attempt ('' = none), n, the dead letter's n field/value pairs
--                                             failed for the last time (or unreadable): a dead letter
-- Returns 1.
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end
local logged, dead = false, false
local function log(attempt)
  if attempt ~= '' then
    redis.call('XADD', KEYS[6], 'MAXLEN', ARGV[2], '*', 'a', attempt)
    logged = true
  end
end
local i = 8
while i <= #ARGV do
  local kind, entry = ARGV[i], ARGV[i + 1]
  if kind == 'd' then
    redis.call('XDEL', KEYS[2], entry)
    if ARGV[i + 2] == '1' then redis.call('HDEL', KEYS[3], entry) end
    log(ARGV[i + 3])
    i = i + 4
  elseif kind == 'r' then
    redis.call('HSET', KEYS[3], entry, ARGV[i + 2])
    redis.call('ZADD', KEYS[4], ARGV[i + 3], entry)
    log(ARGV[i + 4])
    i = i + 5
  else
    log(ARGV[i + 2])
    local n = tonumber(ARGV[i + 3])
    redis.call('XADD', KEYS[5], 'MAXLEN', ARGV[4], '*', unpack(ARGV, i + 4, i + 3 + 2 * n))
    redis.call('XDEL', KEYS[2], entry)
    redis.call('HDEL', KEYS[3], entry)
    redis.call('ZREM', KEYS[4], entry)
    dead = true
    i = i + 4 + 2 * n
  end
end
if dead then redis.call('XTRIM', KEYS[5], 'MINID', '~', ARGV[5]) end
if logged then redis.call('PEXPIRE', KEYS[6], ARGV[3]) end
if ARGV[6] == 'keep' then
  -- (unreadable entries set aside: the circuit's run is not this write's business)
elseif tonumber(ARGV[6]) > 0 then
  redis.call('HSET', KEYS[7], 'failures', ARGV[6], 'since', ARGV[7])
else
  redis.call('DEL', KEYS[7])
end
return 1
