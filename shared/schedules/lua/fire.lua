-- fire: one tick of a schedule, in one atomic step (after steps.lua, new_task.lua and
-- new_workflow.lua, whose create_task and create_workflow make the tick's task, or
-- workflow, exactly as a submit makes one).
-- KEYS[1..6] create_task's keys for the tick's task: task:{taskId}, '' (no requestId),
--            queue:pending, tasks:index, tasks:index:PENDING, tasks:clock
-- KEYS[7]  schedule:{id}
-- KEYS[8]  schedule:{id}:ticks, its log, newest first
-- KEYS[9]  schedule:{id}:tasks, the index of its tasks
-- KEYS[10] schedules:due
-- KEYS[11] scheduler:epoch
-- KEYS[12] the schedule's previous run: task:{id} or workflow:{id} ('task:' for none)
-- KEYS[13..] create_workflow's keys for the tick's workflow (a workflow's schedule only)
-- ARGV[1]  the intent: FIRE (a tick to run), MISS (a tick to log as missed), or
--          TRIGGER (a task started by hand, outside the ticks: no epoch, no cursor)
-- ARGV[2]  the leader's epoch, which must still be the current one ('' for TRIGGER)
-- ARGV[3]  the schedule's version the caller read: any change since refuses the call
-- ARGV[4]  the tick (UTC ms); for TRIGGER, the time of the trigger
-- ARGV[5]  the schedule's lastTaskId the caller read
-- ARGV[6]  the tick after this one ('' for none, or for TRIGGER)
-- ARGV[7]  the overlap policy: SKIP, ALLOW or CANCEL_PREVIOUS
-- ARGV[8]  '1' when the caller has cancelled the previous task for this tick
-- ARGV[9]  when it fires (UTC ms, the leader's clock)
-- ARGV[10] the tick's taskId; ARGV[11] its queue entry; ARGV[12] its hash fields (JSON)
-- ARGV[13] how many entries the ticks log keeps
-- ARGV[14] what a tick starts: 'task' or 'workflow' (then ARGV[10] is the workflow's id,
--          ARGV[15] its hash fields and ARGV[16] its tasks, as create_workflow takes them)
-- returns {result, outcome, taskId}: result 'ok', 'deposed' (a newer leader's epoch),
-- 'missing' (no such schedule), 'changed' (it changed since the caller read it) or
-- 'done' (this tick, or a later one, was handled already)

local schedule, ticks, tasks, due, epoch_key, previous = unpack(KEYS, 7, 12)
local intent, epoch, version, tick = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
local last_task, next_tick, overlap, cancelled = ARGV[5], ARGV[6], ARGV[7], ARGV[8]
local fired_at, task_id, entry, fields = ARGV[9], ARGV[10], ARGV[11], ARGV[12]
local schedule_id = string.sub(schedule, #'schedule:' + 1)

-- --8<-- [start:fence]
if intent ~= 'TRIGGER' and redis.call('GET', epoch_key) ~= epoch then
  return {'deposed', '', ''}
end
if redis.call('EXISTS', schedule) == 0 then
  redis.call('ZREM', due, schedule_id)
  return {'missing', '', ''}
end
if redis.call('HGET', schedule, 'version') ~= version
    or (redis.call('HGET', schedule, 'lastTaskId') or '') ~= last_task then
  return {'changed', '', ''}
end
if intent ~= 'TRIGGER' then
  -- the cursor: every tick up to it is handled, and is never handled again
  if tick <= tonumber(redis.call('HGET', schedule, 'cursor')) then return {'done', '', ''} end
  redis.call('HSET', schedule, 'cursor', ARGV[4])
  if next_tick ~= '' then
    redis.call('HSET', schedule, 'nextRunAt', next_tick)
    redis.call('ZADD', due, next_tick, schedule_id)
  else
    redis.call('HDEL', schedule, 'nextRunAt')
    redis.call('ZREM', due, schedule_id)
  end
end
-- --8<-- [end:fence]

local TERMINAL = {SUCCESS = true, FAILED = true, CANCELLED = true}
local kind = ARGV[14]
local function running(task)
  local status = redis.call('HGET', task, 'status')
  return status ~= false and not TERMINAL[status]
end
local function previous_running()
  if previous == 'task:' then return false end
  if string.sub(previous, 1, 9) ~= 'workflow:' then return running(previous) end
  local graph = redis.call('HGET', previous, 'graph')
  for _, node in pairs(graph and cjson.decode(graph) or {}) do
    if running('task:' .. node.taskId) then return true end
  end
  return false
end

local outcome
if intent == 'MISS' then
  outcome = 'MISSED'
elseif intent == 'TRIGGER' then
  outcome = 'TRIGGERED'
elseif cancelled == '1' or (overlap == 'CANCEL_PREVIOUS' and previous_running()) then
  outcome = 'CANCELLED_PREVIOUS'
elseif overlap == 'SKIP' and previous_running() then
  outcome = 'SKIPPED_OVERLAP'
else
  outcome = 'STARTED'
end

local function index_task(task_key)  -- in schedule:{id}:tasks, as in tasks:index
  local task_id, created_at = unpack(redis.call('HMGET', task_key, 'taskId', 'createdAt'))
  redis.call('ZADD', tasks, 0, string.format('%013d', created_at) .. ':' .. task_id)
end

local started = ''
if outcome == 'STARTED' or outcome == 'CANCELLED_PREVIOUS' or outcome == 'TRIGGERED' then
  if kind == 'workflow' then
    local keys = {unpack(KEYS, 13, #KEYS - step_key_count())}
    create_workflow(keys, task_id, cjson.decode(ARGV[15]), cjson.decode(ARGV[16]))
    for i = 9, #keys do index_task(keys[i]) end
  else
    create_task({unpack(KEYS, 1, 6)}, task_id, entry, cjson.decode(fields))
    index_task(KEYS[1])
  end
  redis.call('HSET', schedule, 'lastTaskId', task_id)
  started = task_id
end
redis.call('LPUSH', ticks, string.format(
  '{"tick":%d,"firedAt":%d,"outcome":"%s","%s":%s}',
  tick, tonumber(fired_at), outcome, kind == 'workflow' and 'workflowId' or 'taskId',
  started == '' and 'null' or ('"' .. started .. '"')))
redis.call('LTRIM', ticks, 0, tonumber(ARGV[13]) - 1)
return {'ok', outcome, started}
