-- Run when a webhook's delivery actor starts: every entry with retry state that is not in the
-- due set was in flight when its previous actor stopped (a crash, or another instance owned
-- it); put it back, due at the time its state records. Then report the due set.
-- Run again by a running actor after a take of due entries whose answer it did not get (the
-- take may have removed them from the set): then the entries it holds in memory are named in
-- ARGV[4..] and left alone.
-- One page of the retry hash per call (HSCAN, about ARGV[3] entries), so that a webhook with a
-- million failed entries holds Redis for one page at a time; the caller goes on from the
-- cursor it gets back until that is 0. Nothing is needed when every state is in the set.
-- Fenced: only the holder of the lease (ARGV[1]) does this; otherwise returns -1.
-- KEYS[1] lease  KEYS[2] retry hash  KEYS[3] due set
-- ARGV[1] lease value  ARGV[2] HSCAN cursor ('0' to begin)  ARGV[3] page size
-- ARGV[4..] entries in the actor's memory (being sent, or their outcome being written)
-- Returns {entries in the due set, earliest due or false, next cursor ('0': done)}.
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end
local held = {}
for i = 4, #ARGV do held[ARGV[i]] = true end
local next_cursor = '0'
if redis.call('HLEN', KEYS[2]) > redis.call('ZCARD', KEYS[3]) then
  local page = redis.call('HSCAN', KEYS[2], ARGV[2], 'COUNT', ARGV[3])
  next_cursor = page[1]
  local states = page[2]
  for i = 1, #states, 2 do
    if not held[states[i]] and not redis.call('ZSCORE', KEYS[3], states[i]) then
      local due = string.match(states[i + 1], '^%d+:(%d+)') or '0'
      redis.call('ZADD', KEYS[3], due, states[i])
    end
  end
end
local first = redis.call('ZRANGE', KEYS[3], 0, 0, 'WITHSCORES')
return {redis.call('ZCARD', KEYS[3]), first[2] or false, next_cursor}
