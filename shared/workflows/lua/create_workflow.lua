-- create_workflow: a workflow and all its tasks in one step (after steps.lua and
-- new_task.lua): the roots PENDING and queued, the others WAITING; or, for a requestId
-- already used by the same owner, the workflow made then.
-- KEYS[1] workflow:{id}
-- KEYS[2] workflow-request:{owner}:{requestId}, or '' without one
-- KEYS[3] workflows, the index of every workflow
-- KEYS[4] queue:pending
-- KEYS[5] tasks:index, KEYS[6] tasks:index:PENDING, KEYS[7] tasks:index:WAITING
-- KEYS[8] tasks:clock
-- KEYS[9..] task:{taskId} of each task, in the order of ARGV[3]
-- ARGV[1] the workflow's id
-- ARGV[2] the workflow's hash fields (a JSON object), without createdAt
-- ARGV[3] its tasks: a JSON array of {taskId, entry, fields, waiting}
-- returns {workflowId, 1} when created, {the existing workflowId, 0} when known

local workflow, request, index, queue, tasks_index, pending, waiting, clock = unpack(KEYS, 1, 8)
if request ~= '' then
  local existing = redis.call('GET', request)
  if existing then return {existing, 0} end
end
if redis.call('EXISTS', workflow) == 1 then return {ARGV[1], 0} end

for i, task in ipairs(cjson.decode(ARGV[3])) do
  local keys = {KEYS[8 + i], '', queue, tasks_index, pending, clock}
  if task.waiting then
    keys[3], keys[5] = '', waiting  -- not queued: released later (settle.lua)
  end
  create_task(keys, task.taskId, task.entry, task.fields)
end

local fields = cjson.decode(ARGV[2])
local created_at = redis.call('GET', clock)  -- the tasks' createdAt, made just above
fields['createdAt'] = created_at
for field, value in pairs(fields) do redis.call('HSET', workflow, field, value) end
redis.call('ZADD', index, 0, string.format('%013d', created_at) .. ':' .. ARGV[1])
if request ~= '' then redis.call('SET', request, ARGV[1]) end
return {ARGV[1], 1}
