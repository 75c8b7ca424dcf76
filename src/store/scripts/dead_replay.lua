-- Puts dead letters back on the webhook's queue (as new entries, so with a fresh attempt
-- count) and removes them from the dead letters.
-- KEYS[1] webhook hash  KEYS[2] dead letters  KEYS[3] queue
-- ARGV: delivery ids to replay; none = every dead letter.
-- Returns how many were replayed.
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local wanted = nil
if #ARGV > 0 then
  wanted = {}
  for i = 1, #ARGV do wanted[ARGV[i]] = true end
end
local replayed = 0
for _, entry in ipairs(redis.call('XRANGE', KEYS[2], '-', '+')) do
  local fields, f = entry[2], {}
  for i = 1, #fields, 2 do f[fields[i]] = fields[i + 1] end
  if (wanted == nil or wanted[f['id']]) and f['e'] and f['ev'] and f['b'] then
    redis.call('XADD', KEYS[3], '*', 'd', f['e'] .. '\n' .. f['ev'] .. '\n' .. f['b'])
    redis.call('XDEL', KEYS[2], entry[1])
    replayed = replayed + 1
  end
end
return replayed
