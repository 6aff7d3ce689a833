-- new_task: the library function that stores a new PENDING task once, indexes it and
-- queues it (after steps.lua: the store's steps run with it). create.lua calls it for a
-- submit; phase 5's schedules call it when a tick fires (shared/schedules/lua/fire.lua).
--
-- create_task(keys, task_id, entry, fields) -> {taskId, 1, createdAt} when created,
--                                              {the existing taskId, 0, ''} when known
--   keys     {task:{taskId}, request:{requestId} or '', the queue to LPUSH on or '',
--             tasks:index, tasks:index:PENDING, tasks:clock}
--   entry    the queue entry (the spec as JSON)
--   fields   the hash fields (a Lua table), without createdAt
--
-- createdAt is Redis's time in ms, but always later than the last task's, so the index
-- (whose members start with it) is in creation order, whatever the clock does.

local function create_task(keys, task_id, entry, fields)
  local task_key, request_key, queue_key, index_key, pending_index, clock = unpack(keys)
  if request_key ~= '' then
    local existing = redis.call('GET', request_key)
    if existing then return {existing, 0, ''} end
  end
  if redis.call('EXISTS', task_key) == 1 then return {task_id, 0, ''} end
  local time = redis.call('TIME')
  local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
  local last = tonumber(redis.call('GET', clock) or 0)
  local created_at = string.format('%d', math.max(now, last + 1))
  redis.call('SET', clock, created_at)
  fields['createdAt'] = created_at
  -- the member sorts by creation (move.lua builds it again from createdAt)
  local index_member = string.format('%013d', created_at) .. ':' .. task_id
  for field, value in pairs(fields) do redis.call('HSET', task_key, field, value) end
  redis.call('ZADD', index_key, 0, index_member)
  redis.call('ZADD', pending_index, 0, index_member)
  run_steps('created', task_key, fields)
  if request_key ~= '' then redis.call('SET', request_key, task_id) end
  if queue_key ~= '' then redis.call('LPUSH', queue_key, entry) end
  return {task_id, 1, created_at}
end
