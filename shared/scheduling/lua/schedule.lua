-- schedule (phase 3 on): PENDING -> SCHEDULED on one agent; the entry stays parked
-- until mark_dispatched.lua (after move.lua and leader.lua).
-- KEYS[1] task:{taskId}
-- KEYS[2] queue:scheduling
-- KEYS[3] queue:pending
-- KEYS[4] scheduler:epoch
-- KEYS[5] assigned:{agentId}
-- ARGV[1] the leader's epoch
-- ARGV[2] the parked entry
-- ARGV[3] the spec of the move to SCHEDULED

local task, scheduling, pending, epoch_key, assigned = unpack(KEYS)
local epoch, entry, to_scheduled = unpack(ARGV)
if deposed(epoch_key, epoch, scheduling, pending, entry) then return {'deposed', '', '0'} end
local scheduled = move(task, assigned, to_scheduled)
if scheduled[1] ~= 'ok' then redis.call('LREM', scheduling, 1, entry) end
return scheduled
