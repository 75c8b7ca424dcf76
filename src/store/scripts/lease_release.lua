-- Deletes a lease if it still holds this value (never another instance's).
-- KEYS[1] lease key, ARGV[1] the expected value. Returns 1 when released.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
