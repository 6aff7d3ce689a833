-- create: store a new PENDING task once, index it, and queue it, in one step (after
-- steps.lua: the store's steps run with it; their keys come after these).
-- KEYS[1] task:{taskId}
-- KEYS[2] request:{requestId}, or '' when the client gave no requestId
-- KEYS[3] the queue to LPUSH the entry on, or '' for none
-- KEYS[4] tasks:index
-- KEYS[5] tasks:index:PENDING, the status index of a new task (move.lua moves it on)
-- KEYS[6] tasks:clock, the createdAt of the task created last
-- ARGV[1] the taskId
-- ARGV[2] the queue entry (the spec as JSON)
-- ARGV[3] the hash fields (a JSON object), without createdAt
-- returns {taskId, 1, createdAt} when created, {the existing taskId, 0, ''} when known
--
-- createdAt is Redis's time in ms, but always later than the last task's, so the index
-- (whose members start with it) is in creation order, whatever the clock does.

local task_key, request_key, queue_key, index_key, pending_index, clock = unpack(KEYS)
local task_id, entry, fields = ARGV[1], ARGV[2], cjson.decode(ARGV[3])
if request_key ~= '' then
  local existing = redis.call('GET', request_key)
  if existing then return {existing, 0, ''} end
end
if redis.call('EXISTS', task_key) == 1 then return {task_id, 0, ''} end
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local created_at = string.format('%d', math.max(now, tonumber(redis.call('GET', clock) or 0) + 1))
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
