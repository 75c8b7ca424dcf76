-- Puts dead letters back on the webhook's queue (as new entries, so with a fresh attempt
-- count) and removes them from the dead letters: one page of the dead letters per call
-- (ARGV[2] entries from ARGV[1]), so Redis is held for a page, not for the whole stream; the
-- caller goes on from the cursor it gets back. Each page is whole: a letter is either still a
-- dead letter or queued again, never both.
-- KEYS[1] webhook hash  KEYS[2] dead letters  KEYS[3] queue
-- ARGV[1] where the page starts ('-', or '(<entry>' after an entry)  ARGV[2] page size
-- ARGV[3..] delivery ids to replay; none = every dead letter.
-- Returns {how many were replayed, the next page's start or '' at the end}.
if redis.call('EXISTS', KEYS[1]) == 0 then return {0, ''} end
local wanted = nil
if #ARGV > 2 then
  wanted = {}
  for i = 3, #ARGV do wanted[ARGV[i]] = true end
end
local page = redis.call('XRANGE', KEYS[2], ARGV[1], '+', 'COUNT', ARGV[2])
local replayed = 0
for _, entry in ipairs(page) do
  local fields, f = entry[2], {}
  for i = 1, #fields, 2 do f[fields[i]] = fields[i + 1] end
  if (wanted == nil or wanted[f['id']]) and f['e'] and f['ev'] and f['b'] then
    redis.call('XADD', KEYS[3], '*', 'd', f['e'] .. '\n' .. f['ev'] .. '\n' .. f['b'])
    redis.call('XDEL', KEYS[2], entry[1])
    replayed = replayed + 1
  end
end
local next_start = ''
if #page == tonumber(ARGV[2]) then next_start = '(' .. page[#page][1] end
return {replayed, next_start}
