-- create_workflow: a workflow and all its tasks in one step (after steps.lua, new_task.lua
-- and new_workflow.lua, whose create_workflow names the keys).
-- KEYS    create_workflow's keys (new_workflow.lua)
-- ARGV[1] the workflow's id
-- ARGV[2] the workflow's hash fields (a JSON object), without createdAt
-- ARGV[3] its tasks: a JSON array of {taskId, entry, fields, waiting}
-- returns {workflowId, 1} when created, {the existing workflowId, 0} when known

return create_workflow(KEYS, ARGV[1], cjson.decode(ARGV[2]), cjson.decode(ARGV[3]))
