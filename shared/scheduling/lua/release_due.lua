-- release_due: attempts whose backoff is over move from queue:retry to queue:pending.
-- KEYS[1] queue:retry
-- KEYS[2] queue:pending
-- ARGV[1] the most entries to move in one call
-- returns how many moved

local retry_queue, pending = unpack(KEYS)
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local due = redis.call('ZRANGEBYSCORE', retry_queue, '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
for _, entry in ipairs(due) do redis.call('LPUSH', pending, entry) end
if #due > 0 then redis.call('ZREM', retry_queue, unpack(due)) end
return #due
