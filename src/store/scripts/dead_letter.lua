-- Moves a queue entry to the webhook's dead letters, unless the webhook was deleted meanwhile.
-- KEYS[1] the webhook's hash, KEYS[2] the queue, KEYS[3] the retry hash, KEYS[4] dead letters
-- ARGV[1] queue entry id, ARGV[2] dead letter cap, ARGV[3..] the dead letter's fields/values
redis.call('XDEL', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[2], '*', unpack(ARGV, 3))
return 1
