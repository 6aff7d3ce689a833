-- requeue: an in-flight (or finished, for retry) task goes back to pending as a new
-- attempt, and its undelivered entry leaves the agent's queue (after move.lua).
-- KEYS[1] task:{taskId}
-- KEYS[2] queue:pending
-- KEYS[3] queue:agent:{agentId} (phase 2; empty from phase 3 on)
-- KEYS[4] scheduler:epoch
-- KEYS[5] assigned:{agentId}
-- ARGV[1] the leader's epoch, or '' when the caller is not a leader (retry, an agent)
-- ARGV[2] the entry for the pending queue (the task's spec)
-- ARGV[3] the delivery to take out of the agent's queue
-- ARGV[4] the spec of the move to PENDING

local task, pending, agent_queue, epoch_key, assigned = unpack(KEYS)
local epoch, entry, delivery, to_pending = unpack(ARGV)
if epoch ~= '' and redis.call('GET', epoch_key) ~= epoch then return {'deposed', '', '0'} end
local requeued = move(task, assigned, to_pending)
if requeued[1] == 'ok' then
  redis.call('LREM', agent_queue, 0, delivery)
  redis.call('LPUSH', pending, entry)
end
return requeued
