-- mark_dispatched (phase 3 on): SCHEDULED -> DISPATCHED once the broker has the
-- dispatch, and the parked entry is done (after move.lua).
-- KEYS[1] task:{taskId}
-- KEYS[2] queue:scheduling
-- KEYS[3] assigned:{agentId}
-- ARGV[1] the parked entry
-- ARGV[2] the attempt that was published
-- ARGV[3] the spec of the move to DISPATCHED

local task, scheduling, assigned = unpack(KEYS)
local entry, attempt, to_dispatched = unpack(ARGV)
-- the parked entry is this attempt's only while the attempt is still the task's
if redis.call('HGET', task, 'attempt') == attempt then
  redis.call('LREM', scheduling, 1, entry)
end
return move(task, assigned, to_dispatched)
