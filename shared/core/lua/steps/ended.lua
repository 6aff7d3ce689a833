-- ended (phase 5): a move into SUCCESS, FAILED or CANCELLED publishes the task id on
-- ENDED_CHANNEL (shared/core/keys.py), which wakes whoever waits for it (ends.py).
-- With pcall: a Redis user not allowed to publish loses only the wake-up (waiters look
-- at their task every second anyway), never the move.

local ENDED_CHANNEL = 'tasks:ended'
local ENDS = {SUCCESS = true, FAILED = true, CANCELLED = true}

table.insert(STEPS, {
  keys = 0,
  moved = function(keys, m)
    if ENDS[m.to] then redis.pcall('PUBLISH', ENDED_CHANNEL, m.task_id) end
  end,
})
