-- settle: one WAITING task of a workflow, once its parents decide it (after move.lua).
-- Released to PENDING (its first attempt) and queued when its rule holds; CANCELLED,
-- naming the parent whose end made the rule impossible, when it can no longer hold;
-- left WAITING otherwise. A task that is not WAITING is left alone: settling twice, or
-- by two leaders at once, changes nothing the second time.
-- KEYS[1] task:{taskId}
-- KEYS[2] queue:pending
-- KEYS[3] scheduler:epoch: only the current leader settles
-- KEYS[4..] task:{parentId} of each parent, in the order of ARGV[2]
-- ARGV[1] its rule: ALL_SUCCESS, ALL_DONE or ANY_FAILED
-- ARGV[2] the parents' keys in the workflow (a JSON array)
-- ARGV[3] the release's move spec (WAITING -> PENDING), ARGV[4] the cancel's
-- ARGV[5] its queue entry (the spec as JSON)
-- ARGV[6] the bytes of a parent's output its file keeps (the last ones)
-- ARGV[7] the leader's epoch
-- returns {what: 'released', 'cancelled', 'waiting', 'settled' or 'deposed', the parents
-- still running}

local task, queue, epoch_key = KEYS[1], KEYS[2], KEYS[3]
local rule, names = ARGV[1], cjson.decode(ARGV[2])
local ENDS = {SUCCESS = true, FAILED = true, CANCELLED = true}

if redis.call('GET', epoch_key) ~= ARGV[7] then return {'deposed', '[]'} end
if redis.call('HGET', task, 'status') ~= 'WAITING' then return {'settled', '[]'} end

-- --8<-- [start:decide]
local parents, running = {}, {}
for i, name in ipairs(names) do
  local got = redis.call('HMGET', KEYS[3 + i], 'status', 'finishedAt', 'exitCode')
  parents[i] = {name = name, key = KEYS[3 + i], status = got[1],
                finished = tonumber(got[2]) or 0, exit_code = tonumber(got[3])}
  if not ENDS[parents[i].status] then table.insert(running, name) end
end

-- the parent whose end decided: the first to end among those that match, or the last
local function first_ended(match)
  local found
  for _, p in ipairs(parents) do
    if ENDS[p.status] and match(p) and (not found or p.finished < found.finished) then
      found = p
    end
  end
  return found
end
local function last_ended()
  local found
  for _, p in ipairs(parents) do
    if not found or p.finished >= found.finished then found = p end
  end
  return found
end

local verdict, blame = 'waiting', nil
if rule == 'ALL_SUCCESS' then
  blame = first_ended(function(p) return p.status ~= 'SUCCESS' end)
  if blame then verdict = 'cancelled' elseif #running == 0 then verdict = 'released' end
elseif #running == 0 then
  if rule == 'ALL_DONE' or first_ended(function(p) return p.status == 'FAILED' end) then
    verdict = 'released'
  else  -- ANY_FAILED, and none failed: the last parent to end decided it
    verdict, blame = 'cancelled', last_ended()
  end
end
-- --8<-- [end:decide]

if verdict == 'waiting' then
  redis.call('HSET', task, 'waitingFor', cjson.encode(running))
  return {'waiting', cjson.encode(running)}
end

local function tail(text, bytes)  -- the last bytes, from a whole UTF-8 character on
  if #text <= bytes then return text end
  local start = #text - bytes + 1
  while start <= #text and string.byte(text, start) >= 0x80 and string.byte(text, start) < 0xC0 do
    start = start + 1
  end
  return string.sub(text, start)
end

local spec
if verdict == 'released' then
  spec = cjson.decode(ARGV[3])
  local upstream = {}
  for _, p in ipairs(parents) do
    local output = redis.call('HGET', p.key, 'stdout') or ''  -- read only to release
    upstream[p.name] = {status = p.status, exitCode = p.exit_code or cjson.null,
                        output = tail(output, tonumber(ARGV[6]))}
  end
  spec.fields.upstream = cjson.encode(upstream)
else
  spec = cjson.decode(ARGV[4])
  spec.fields.error = 'upstream ' .. blame.name .. ' ' .. blame.status
end
spec.fields.waitingFor = '[]'
local moved = move(task, 'assigned:', cjson.encode(spec))
if moved[1] ~= 'ok' then return {'settled', '[]'} end
if verdict == 'released' then redis.call('LPUSH', queue, ARGV[5]) end
return {verdict, '[]'}
