-- retry_later: a failed or lost attempt becomes a new PENDING attempt (after move.lua).
-- With a backoff the entry waits in queue:retry until it is due (phase 5's leader moves
-- it to queue:pending then); without one it goes to queue:pending at once.
-- KEYS[1] task:{taskId}
-- KEYS[2] assigned:{agentId} of the ended attempt
-- KEYS[3] queue:retry, scored by the time (ms) the new attempt is due
-- KEYS[4] queue:pending
-- ARGV[1] the spec of the move to PENDING (how the attempt ended, its result)
-- ARGV[2] the backoff in ms (0: none)
-- ARGV[3] the entry for the queue (the task's spec)
-- returns {result, status, attempt} like move

local task, assigned, retry_queue, pending = unpack(KEYS)
local to_pending, backoff_ms, entry = ARGV[1], tonumber(ARGV[2]), ARGV[3]
local moved = move(task, assigned, to_pending)
if moved[1] == 'ok' then
  if backoff_ms > 0 then
    local time = redis.call('TIME')  -- one clock, Redis', for every process
    local due = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000) + backoff_ms
    redis.call('HSET', task, 'nextAttemptAt', due)
    redis.call('ZADD', retry_queue, due, entry)
  else
    redis.call('LPUSH', pending, entry)
  end
end
return moved
