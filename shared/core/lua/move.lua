-- move: the one function that changes a task's status. Every script that changes a
-- status starts with this file (shared/core/scripts.py puts it in front), so the
-- checks below guard every change, in every phase.
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
--               (into a terminal status, or out of an agent back to PENDING): the
--               attempt is then added to the task's runs, its execution history
--     result    the ended attempt's result fields for its run, when they are not the
--               fields written to the task (an automatic retry writes the new attempt's)
-- result: 'ok', 'missing' (no such task), 'stale' (another attempt is current),
-- 'not-holder' (the attempt is another agent's) or 'forbidden' (not allowed from the
-- current status)
--
-- Every script that includes this file gets twelve more KEYS after its own, appended by
-- shared/core/scripts.py, where each move is recorded in the same atomic step:
--   KEYS[#KEYS - 11] tasks:index:PENDING, then :SCHEDULED, :DISPATCHED, :RUNNING,
--   .. KEYS[#KEYS - 5] :SUCCESS, :FAILED and :CANCELLED: zsets of the members of
--                    tasks:index ('<createdAt>:<taskId>', score 0) of the tasks in that
--                    status now, so listing by status reads only tasks in that status
--   KEYS[#KEYS - 4]  runs:{taskId}, one JSON entry per ended attempt (KEYS[1] is the task)
--   KEYS[#KEYS - 3]  stats:tasks  hash '<type>:<status>' -> tasks in that status now
--   KEYS[#KEYS - 2]  stats:finished:SUCCESS, then :FAILED, then :CANCELLED: zsets of
--   .. KEYS[#KEYS]   '<taskId>:<attempt>' scored by the time (ms) the attempt ended;
--                    the last five minutes are kept, so ZCOUNT answers "how many lately"
-- A move into one of those statuses also publishes the task id on the channel
-- ENDED_CHANNEL (shared/core/keys.py), which wakes whoever waits for it (ends.py):
-- last, and with pcall, so a Redis user not allowed to publish loses only the wake-up
-- (waiters look at their task every second anyway), never half a move.

local ENDED_CHANNEL = 'tasks:ended'

local FINISHED_KEPT_MS = 300 * 1000

-- --8<-- [start:count_move]
local function count_move(task_key, task_id, attempt, from, to)
  local counts = KEYS[#KEYS - 3]
  local finished = {SUCCESS = KEYS[#KEYS - 2], FAILED = KEYS[#KEYS - 1], CANCELLED = KEYS[#KEYS]}
  local kind = redis.call('HGET', task_key, 'type')
  redis.call('HINCRBY', counts, kind .. ':' .. from, -1)
  redis.call('HINCRBY', counts, kind .. ':' .. to, 1)
  if finished[to] then
    local time = redis.call('TIME')
    local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
    redis.call('ZADD', finished[to], now, task_id .. ':' .. attempt)
    redis.call('ZREMRANGEBYSCORE', finished[to], '-inf', now - FINISHED_KEPT_MS)
  end
end
-- --8<-- [end:count_move]

-- --8<-- [start:index_move]
-- The order of Status in shared/core/states.py, the order of the status indexes in KEYS.
local STATUSES = {'PENDING', 'SCHEDULED', 'DISPATCHED', 'RUNNING', 'SUCCESS', 'FAILED', 'CANCELLED'}

local function status_index(status)
  local before_first = #KEYS - 5 - #STATUSES
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

-- --8<-- [start:record_run]
local RUN_FIELDS = {'agentId', 'scheduledAt', 'startedAt'}
local RESULT_FIELDS = {'finishedAt', 'exitCode', 'error'}

local function record_run(task_key, attempt, ended, fields, result)
  local run = {attempt = attempt, status = ended}
  local held = redis.call('HMGET', task_key, unpack(RUN_FIELDS))
  for i, name in ipairs(RUN_FIELDS) do
    if held[i] and held[i] ~= '' then run[name] = held[i] end
  end
  for _, name in ipairs(RESULT_FIELDS) do
    local value = result[name] or fields[name]
    if value and value ~= '' then run[name] = value end
  end
  redis.call('RPUSH', KEYS[#KEYS - 4], cjson.encode(run))
end
-- --8<-- [end:record_run]

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
  count_move(task_key, task_id, attempt, current, spec.target)
  local ended = spec.ends[current]
  if ended then record_run(task_key, attempt, ended, spec.fields, spec.result) end
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
  if spec.target == 'SUCCESS' or spec.target == 'FAILED' or spec.target == 'CANCELLED' then
    redis.pcall('PUBLISH', ENDED_CHANNEL, task_id)
  end
  return {'ok', spec.target, tostring(attempt)}
end
