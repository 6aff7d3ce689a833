-- workflows (phase 5): a task of a workflow that ends is noted in workflows:ended, in the
-- same step as its end, for the leader to settle the tasks that wait for it
-- (shared/workflows/release.py). Its end and the note are one step: no crash between them
-- can lose a release.
-- keys[1] workflows:ended

local WORKFLOW_ENDS = {SUCCESS = true, FAILED = true, CANCELLED = true}

table.insert(STEPS, {
  keys = 1,
  moved = function(keys, m)
    if WORKFLOW_ENDS[m.to] and redis.call('HEXISTS', m.task_key, 'workflowId') == 1 then
      redis.call('RPUSH', keys[1], m.task_id)
    end
  end,
})
