-- wait_again: a workflow's retry puts a task its upstream cancelled back to WAITING (a new
-- attempt) and, in the same step, notes each of its parents that has ended and will not be
-- retried with it, so the leader settles the task from them (after move.lua). In one step:
-- no parent can end between the move and the look at it, and no crash can come between.
-- KEYS[1] task:{taskId}, KEYS[2] workflows:ended, KEYS[3..] task:{parentId} of each parent
-- ARGV[1] the move's spec (CANCELLED -> WAITING), ARGV[2] the parents' ids (a JSON array)
-- returns the move's {result, status, attempt}

local moved = move(KEYS[1], 'assigned:', ARGV[1])
if moved[1] ~= 'ok' then return moved end
for i, parent in ipairs(cjson.decode(ARGV[2])) do
  local status, error = unpack(redis.call('HMGET', KEYS[2 + i], 'status', 'error'))
  -- a parent cancelled by its own upstream waits again too, and ends later: not noted
  local again = status == 'CANCELLED' and string.sub(error or '', 1, 9) == 'upstream '
  if (status == 'SUCCESS' or status == 'FAILED' or status == 'CANCELLED') and not again then
    redis.call('RPUSH', KEYS[2], parent)
  end
end
return moved
