-- The retained events (`P:retained`, see retained.rs): shared by fanout.lua, which keeps each
-- routed event, and retained_trim.lua, the periodic trim.

-- Keeps an event: its entry in the retained stream (e event id, ev type, u user, b body tail,
-- w '<webhook>=<queue entry> …' of every queue it went to) and its place in the index.
local function retain(stream, index, id, ev, user, tail, went)
  local kept = redis.call('XADD', stream, '*', 'e', id, 'ev', ev, 'u', user, 'b', tail, 'w', went)
  redis.call('HSET', index, id, kept)
end

-- Removes retained events routed before `oldest` (ms), and the oldest beyond `max_len`, at
-- most `budget` of them, oldest first (their index entries too). Returns how many went.
-- The common case (nothing to trim) costs two commands and reads one entry.
local function retained_trim(stream, index, oldest, max_len, budget)
  local over = redis.call('XLEN', stream) - max_len
  local first = redis.call('XRANGE', stream, '-', '+', 'COUNT', 1)[1]
  if first == nil then return 0 end
  if over <= 0 and tonumber(string.match(first[1], '^%d+')) >= oldest then return 0 end
  local old = redis.call('XRANGE', stream, '-', '+', 'COUNT', budget)
  local gone, last = {}, nil
  for i, entry in ipairs(old) do
    local ms = tonumber(string.match(entry[1], '^%d+'))
    if i > over and ms >= oldest then break end
    last = entry[1]
    local f = entry[2]
    for j = 1, #f, 2 do
      if f[j] == 'e' then gone[#gone + 1] = f[j + 1]; break end
    end
  end
  if last == nil then return 0 end
  for s = 1, #gone, 500 do
    redis.call('HDEL', index, unpack(gone, s, math.min(s + 499, #gone)))
  end
  local ms, seq = string.match(last, '^(%d+)-(%d+)$')
  redis.call('XTRIM', stream, 'MINID', ms .. '-' .. (tonumber(seq) + 1))
  return #gone
end
