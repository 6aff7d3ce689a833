-- retry_later: a failed attempt becomes a new PENDING attempt that waits in queue:retry
-- until it is due; the leader moves it to queue:pending then (after move.lua).
-- KEYS[1] task:{taskId}
-- KEYS[2] assigned:{agentId} of the failed attempt
-- KEYS[3] queue:retry, scored by the time (ms) the new attempt is due
-- ARGV[1] the spec of the move to PENDING (ending FAILED, the failure in its result)
-- ARGV[2] the backoff in ms
-- ARGV[3] the entry for the pending queue (the task's spec)
-- returns {result, status, attempt} like move

local task, assigned, retry_queue = unpack(KEYS)
local to_pending, backoff_ms, entry = ARGV[1], tonumber(ARGV[2]), ARGV[3]
local moved = move(task, assigned, to_pending)
if moved[1] == 'ok' then
  local time = redis.call('TIME')  -- one clock, Redis', for every process
  local due = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000) + backoff_ms
  redis.call('HSET', task, 'nextAttemptAt', due)
  redis.call('ZADD', retry_queue, due, entry)
end
return moved
