-- create: store a new PENDING task once, index it, and queue it, in one step (after
-- steps.lua and new_task.lua: the store's steps run with it; their keys come after these).
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

return create_task({unpack(KEYS, 1, 6)}, ARGV[1], ARGV[2], cjson.decode(ARGV[3]))
