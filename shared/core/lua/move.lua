-- move: the one function that changes a task's status. Every script that changes a
-- status starts with this file (shared/core/scripts.py puts it in front, after
-- steps.lua), so the checks below guard every change, in every phase.
--
-- move(task_key, assigned_key, spec_json) -> {result, status, attempt}
--   task_key      task:{taskId}
--   assigned_key  assigned:{agentId}, the set of tasks the attempt's agent holds
--                 ('assigned:' when no agent is involved; then it is never touched)
--   spec_json     a JSON object, built by move_spec() in shared/core/store.py:
--     target    the status to move to
--     attempt   the attempt the caller believes current (the fencing token)
--     sources   the statuses the task may be in now
--     fields    more hash fields to write in the same step (result, timestamps)
--     agent     the agent that holds, or will hold, this attempt ('' for none)
--     holds     true when the task stays on its agent in the target status
--     restart   true when the target starts a new attempt (back to PENDING)
--     clear     the fields of the old attempt's result, deleted on restart
--     ends      current status -> how the attempt ended, for a move that ends one
--     result    the ended attempt's result fields, when they are not the fields written
--     (ends and result are for the steps a later phase adds: steps/history.lua)
-- result: 'ok', 'missing' (no such task), 'stale' (another attempt is current),
-- 'not-holder' (the attempt is another agent's) or 'forbidden' (not allowed from the
-- current status)
--
-- Every script that includes this file gets eight more KEYS after its own (and before
-- the steps' keys), appended by shared/core/scripts.py: tasks:index:WAITING (phase 5),
-- then :PENDING, :SCHEDULED, :DISPATCHED, :RUNNING, :SUCCESS, :FAILED and :CANCELLED, zsets of the
-- members of tasks:index ('<createdAt>:<taskId>', score 0) of the tasks in that status
-- now, so listing by status reads only tasks in that status. After the checks, each of
-- the store's steps (steps.lua) runs with the move, in the same atomic step.

-- --8<-- [start:index_move]
-- The order of Status in shared/core/states.py, the order of the status indexes in KEYS.
local STATUSES = {
  'WAITING', 'PENDING', 'SCHEDULED', 'DISPATCHED', 'RUNNING', 'SUCCESS', 'FAILED', 'CANCELLED',
}

local function status_index(status)
  local before_first = #KEYS - step_key_count() - #STATUSES
  for i, name in ipairs(STATUSES) do
    if name == status then return KEYS[before_first + i] end
  end
  error('no index for status ' .. tostring(status))
end

local function index_move(task_key, task_id, from, to)
  local old_index, new_index = status_index(from), status_index(to)
  -- the member create.lua put in tasks:index
  local created_at = tonumber(redis.call('HGET', task_key, 'createdAt'))
  local member = string.format('%013d', created_at) .. ':' .. task_id
  redis.call('ZREM', old_index, member)
  redis.call('ZADD', new_index, 0, member)
end
-- --8<-- [end:index_move]

local function move(task_key, assigned_key, spec_json)
  local spec = cjson.decode(spec_json)
  local current = redis.call('HGET', task_key, 'status')
  if not current then return {'missing', '', '0'} end
  local attempt = tonumber(redis.call('HGET', task_key, 'attempt'))
  if attempt ~= tonumber(spec.attempt) then return {'stale', current, tostring(attempt)} end
  local allowed = false
  for _, source in ipairs(spec.sources) do
    if source == current then allowed = true end
  end
  if not allowed then return {'forbidden', current, tostring(attempt)} end
  local holder = redis.call('HGET', task_key, 'agentId') or ''
  if holder ~= '' and holder ~= spec.agent then return {'not-holder', current, tostring(attempt)} end

  local task_id = redis.call('HGET', task_key, 'taskId')
  -- first: were STATUSES out of step with Status, it stops the script before any write
  index_move(task_key, task_id, current, spec.target)
  run_steps('moved', {
    task_key = task_key, task_id = task_id, attempt = attempt,
    from = current, to = spec.target, spec = spec,
  })
  if spec.restart then
    attempt = attempt + 1
    if #spec.clear > 0 then redis.call('HDEL', task_key, unpack(spec.clear)) end
  end
  redis.call('HSET', task_key, 'status', spec.target, 'attempt', attempt)
  for field, value in pairs(spec.fields) do redis.call('HSET', task_key, field, value) end
  if spec.agent ~= '' then
    if spec.holds and not spec.restart then
      redis.call('SADD', assigned_key, task_id)
    else
      redis.call('SREM', assigned_key, task_id)
    end
  end
  return {'ok', spec.target, tostring(attempt)}
end
