-- Trims the retained events when no fan-out does (quiet hours): see retained_lib.lua.
-- KEYS[1] the retained stream  KEYS[2] its index
-- ARGV[1] the oldest routing time kept (ms)  ARGV[2] the most entries kept  ARGV[3] budget
return retained_trim(KEYS[1], KEYS[2], tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]))
