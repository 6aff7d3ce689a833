-- park: the leader takes up to ARGV[2] notes of ended tasks to settle their children,
-- moving each from workflows:ended to workflows:settling, if its epoch is still current.
-- KEYS[1] scheduler:epoch, KEYS[2] workflows:ended, KEYS[3] workflows:settling
-- ARGV[1] the leader's epoch, ARGV[2] the most notes to take
-- returns the notes taken, or false for a deposed leader

if redis.call('GET', KEYS[1]) ~= ARGV[1] then return false end
local parked = {}
for _ = 1, tonumber(ARGV[2]) do
  local note = redis.call('LMOVE', KEYS[2], KEYS[3], 'LEFT', 'RIGHT')
  if not note then break end
  table.insert(parked, note)
end
return parked
