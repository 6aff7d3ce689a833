-- transition: one fenced status change (after move.lua).
-- KEYS[1] task:{taskId}
-- KEYS[2] assigned:{agentId} of the attempt's agent
-- ARGV[1] the move's spec (JSON, see move.lua)

return move(KEYS[1], KEYS[2], ARGV[1])
