-- history (phase 5): each ended attempt goes into the task's runs, its execution history.
-- keys[1] runs:{taskId}: one JSON entry per ended attempt
-- An attempt ends when the move's spec says so: spec.ends maps the current status to how
-- the attempt ended (into a terminal status, or taken back from its agent to PENDING);
-- spec.result holds its result when the fields written to the task are not it (an
-- automatic retry writes the new attempt's).

-- --8<-- [start:record_run]
local RUN_FIELDS = {'agentId', 'scheduledAt', 'startedAt'}
local RESULT_FIELDS = {'finishedAt', 'exitCode', 'error'}

local function record_run(runs_key, task_key, attempt, ended, fields, result)
  local run = {attempt = attempt, status = ended}
  local held = redis.call('HMGET', task_key, unpack(RUN_FIELDS))
  for i, name in ipairs(RUN_FIELDS) do
    if held[i] and held[i] ~= '' then run[name] = held[i] end
  end
  for _, name in ipairs(RESULT_FIELDS) do
    local value = result[name] or fields[name]
    if value and value ~= '' then run[name] = value end
  end
  redis.call('RPUSH', runs_key, cjson.encode(run))
end
-- --8<-- [end:record_run]

table.insert(STEPS, {
  keys = 1,
  moved = function(keys, m)
    local ended = m.spec.ends[m.from]
    if ended then record_run(keys[1], m.task_key, m.attempt, ended, m.spec.fields, m.spec.result) end
  end,
})
