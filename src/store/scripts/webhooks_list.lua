-- One page of webhook ids from the intersection of unions of index sets.
-- KEYS[1], KEYS[2]  scratch sets (deleted before returning)
-- KEYS[3]           the set of all webhook ids (used when there are no groups)
-- KEYS[4..]         members of the groups, group after group
-- ARGV[1] direction: 'first' | 'next' | 'prev'
-- ARGV[2] bound id for 'next' (ids after it) and 'prev' (ids before it)
-- ARGV[3] page size
-- ARGV[4] number of groups, ARGV[5..] size of each group
-- Result = group1 ∩ group2 ∩ …, where each group is the union of its sets.
-- Returns {total, has_previous, has_next, id, id, ...} with ids ascending.
local scratch, scratch2 = KEYS[1], KEYS[2]
local src = KEYS[3]
local groups = tonumber(ARGV[4])
local k = 4
for g = 1, groups do
  local size = tonumber(ARGV[4 + g])
  local target = (g == 1) and scratch or scratch2
  redis.call('ZUNIONSTORE', target, size, unpack(KEYS, k, k + size - 1))
  if g > 1 then
    redis.call('ZINTERSTORE', scratch, 2, scratch, scratch2)
  end
  src = scratch
  k = k + size
end

local limit = tonumber(ARGV[3])
local dir, bound = ARGV[1], ARGV[2]
local total = redis.call('ZCARD', src)
local ids
if dir == 'prev' then
  local rev = redis.call('ZRANGE', src, '(' .. bound, '-', 'BYLEX', 'REV', 'LIMIT', 0, limit)
  ids = {}
  for i = #rev, 1, -1 do ids[#ids + 1] = rev[i] end
else
  local start = (dir == 'next') and ('(' .. bound) or '-'
  ids = redis.call('ZRANGE', src, start, '+', 'BYLEX', 'LIMIT', 0, limit)
end

local has_prev, has_next = 0, 0
if #ids > 0 then
  if #redis.call('ZRANGE', src, '(' .. ids[1], '-', 'BYLEX', 'REV', 'LIMIT', 0, 1) > 0 then has_prev = 1 end
  if #redis.call('ZRANGE', src, '(' .. ids[#ids], '+', 'BYLEX', 'LIMIT', 0, 1) > 0 then has_next = 1 end
end
redis.call('DEL', scratch, scratch2)
local out = {total, has_prev, has_next}
for i = 1, #ids do out[#out + 1] = ids[i] end
return out
