-- create: store a new PENDING task once, index it, and queue it, in one step.
-- KEYS[1] task:{taskId}
-- KEYS[2] request:{requestId}, or '' when the client gave no requestId
-- KEYS[3] the queue to LPUSH the entry on, or '' for none
-- KEYS[4] tasks:index
-- KEYS[5] stats:tasks (counts by '<type>:<status>', kept by move.lua from then on)
-- KEYS[6] tasks:index:PENDING, the status index of a new task (move.lua moves it on)
-- ARGV[1] the taskId
-- ARGV[2] the queue entry (the spec as JSON)
-- ARGV[3] the task's member in tasks:index
-- ARGV[4] the hash fields (a JSON object)
-- returns {taskId, 1} when created, {the existing taskId, 0} when already known

local task_key, request_key, queue_key, index_key, counts, pending_index = unpack(KEYS)
local task_id, entry, index_member, fields = ARGV[1], ARGV[2], ARGV[3], cjson.decode(ARGV[4])
if request_key ~= '' then
  local existing = redis.call('GET', request_key)
  if existing then return {existing, 0} end
end
if redis.call('EXISTS', task_key) == 1 then return {task_id, 0} end
for field, value in pairs(fields) do redis.call('HSET', task_key, field, value) end
redis.call('ZADD', index_key, 0, index_member)
redis.call('ZADD', pending_index, 0, index_member)
redis.call('HINCRBY', counts, fields['type'] .. ':' .. fields['status'], 1)
if request_key ~= '' then redis.call('SET', request_key, task_id) end
if queue_key ~= '' then redis.call('LPUSH', queue_key, entry) end
return {task_id, 1}
