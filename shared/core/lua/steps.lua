-- steps: what a later phase adds to every create and every move, in the same atomic
-- step. shared/core/scripts.py puts this file first, then each step file the store
-- was built with, then the libraries and the script. A step file appends one table:
--   {keys = n,                                     the number of KEYS it needs
--    created = function(keys, task_key, fields),   after create.lua stored a task (optional)
--    moved = function(keys, m)}                    in a move, after its checks (optional)
-- keys: its own n KEYS, which scripts.py appends (in the steps' order) after every other
-- key of the script. m: {task_key, task_id, attempt, from, to, spec}, the task as it is
-- before the move writes (a step runs before the task's hash changes).

local STEPS = {}

-- the number of KEYS the steps take, all at the end
local function step_key_count()
  local count = 0
  for _, step in ipairs(STEPS) do count = count + step.keys end
  return count
end

local function run_steps(hook, ...)
  local at = #KEYS - step_key_count()
  for _, step in ipairs(STEPS) do
    if step[hook] then step[hook]({unpack(KEYS, at + 1, at + step.keys)}, ...) end
    at = at + step.keys
  end
end
