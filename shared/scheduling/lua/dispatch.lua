-- dispatch (phase 2): PENDING -> SCHEDULED -> DISPATCHED on one agent, in one step
-- (after move.lua and leader.lua).
-- KEYS[1] task:{taskId}
-- KEYS[2] queue:scheduling
-- KEYS[3] queue:pending
-- KEYS[4] queue:agent:{agentId}
-- KEYS[5] scheduler:epoch
-- KEYS[6] assigned:{agentId}
-- ARGV[1] the leader's epoch
-- ARGV[2] the parked entry
-- ARGV[3] the delivery for the agent's queue ({taskId, attempt})
-- ARGV[4] the spec of the move to SCHEDULED
-- ARGV[5] the spec of the move to DISPATCHED

local task, scheduling, pending, agent_queue, epoch_key, assigned = unpack(KEYS)
local epoch, entry, delivery, to_scheduled, to_dispatched = unpack(ARGV)
if deposed(epoch_key, epoch, scheduling, pending, entry) then return {'deposed', '', '0'} end
redis.call('LREM', scheduling, 1, entry)
local scheduled = move(task, assigned, to_scheduled)
if scheduled[1] ~= 'ok' then return scheduled end
local dispatched = move(task, assigned, to_dispatched)
redis.call('LPUSH', agent_queue, delivery)
return dispatched
