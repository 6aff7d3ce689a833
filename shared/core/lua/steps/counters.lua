-- counters (phase 5): how many tasks are in each status now, and which attempts ended lately.
-- keys[1]     stats:tasks  hash '<type>:<status>' -> tasks in that status now
-- keys[2..4]  stats:finished:SUCCESS, :FAILED, :CANCELLED: zsets of '<taskId>:<attempt>'
--             scored by the time (ms) the attempt ended; the last five minutes are kept,
--             so ZCOUNT answers "how many lately"

local FINISHED_KEPT_MS = 300 * 1000

-- --8<-- [start:count_move]
local function count_move(keys, m)
  local counts = keys[1]
  local finished = {SUCCESS = keys[2], FAILED = keys[3], CANCELLED = keys[4]}
  local kind = redis.call('HGET', m.task_key, 'type')
  redis.call('HINCRBY', counts, kind .. ':' .. m.from, -1)
  redis.call('HINCRBY', counts, kind .. ':' .. m.to, 1)
  if finished[m.to] then
    local time = redis.call('TIME')
    local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
    redis.call('ZADD', finished[m.to], now, m.task_id .. ':' .. m.attempt)
    redis.call('ZREMRANGEBYSCORE', finished[m.to], '-inf', now - FINISHED_KEPT_MS)
  end
end
-- --8<-- [end:count_move]

table.insert(STEPS, {
  keys = 4,
  created = function(keys, task_key, fields)
    redis.call('HINCRBY', keys[1], fields['type'] .. ':' .. fields['status'], 1)
  end,
  moved = count_move,
})
