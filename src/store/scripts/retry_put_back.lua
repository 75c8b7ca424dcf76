-- Returns entries the actor took from the due set but did not send (paused meanwhile), due at
-- ARGV[2]. Fenced: only the holder of the lease (ARGV[1]); otherwise returns -1.
-- KEYS[1] lease  KEYS[2] due set; ARGV[3..] the entries
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end
for i = 3, #ARGV do
  redis.call('ZADD', KEYS[2], ARGV[2], ARGV[i])
end
return 1
