-- new_workflow: the library function that stores a workflow and all its tasks once (after
-- steps.lua and new_task.lua): the roots PENDING and queued, the others WAITING; or, for a
-- requestId its owner used already, the workflow made then. create_workflow.lua calls it
-- for a submit; phase 5's schedules call it when a tick starts a workflow (fire.lua).
--
-- create_workflow(keys, workflow_id, fields, tasks) -> {workflowId, 1} when created,
--                                                      {the existing workflowId, 0}
--   keys    {workflow:{id}, workflow-request:{owner}:{requestId} or '', workflows,
--            queue:pending, tasks:index, tasks:index:PENDING, tasks:index:WAITING,
--            tasks:clock, then task:{taskId} of each task, in the order of tasks}
--   fields  the workflow's hash fields (a Lua table), without createdAt
--   tasks   a Lua array of {taskId, entry, fields, waiting}

local function create_workflow(keys, workflow_id, fields, tasks)
  local workflow, request, index, queue, tasks_index, pending, waiting, clock = unpack(keys, 1, 8)
  if request ~= '' then
    local existing = redis.call('GET', request)
    if existing then return {existing, 0} end
  end
  if redis.call('EXISTS', workflow) == 1 then return {workflow_id, 0} end
  for i, task in ipairs(tasks) do
    local task_keys = {keys[8 + i], '', queue, tasks_index, pending, clock}
    if task.waiting then
      task_keys[3], task_keys[5] = '', waiting  -- not queued: released later (settle.lua)
    end
    create_task(task_keys, task.taskId, task.entry, task.fields)
  end
  local created_at = redis.call('GET', clock)  -- the tasks' createdAt, made just above
  fields['createdAt'] = created_at
  for field, value in pairs(fields) do redis.call('HSET', workflow, field, value) end
  redis.call('ZADD', index, 0, string.format('%013d', created_at) .. ':' .. workflow_id)
  if request ~= '' then redis.call('SET', request, workflow_id) end
  return {workflow_id, 1}
end
