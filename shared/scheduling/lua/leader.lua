-- deposed: the leader's fence, a library for the scripts a leader runs.
--
-- deposed(epoch_key, epoch, scheduling, pending, entry) -> true when refused
--   epoch_key   scheduler:epoch, the current leader's term
--   epoch       the term of the leader calling
--   scheduling  queue:scheduling, where the entry being placed is parked
--   pending     queue:pending
--   entry       the parked entry
-- A write of a leader whose term is over is refused; the entry it took goes back to
-- pending (unless the new leader already put it back).

local function deposed(epoch_key, epoch, scheduling, pending, entry)
  if redis.call('GET', epoch_key) == epoch then return false end
  if redis.call('LREM', scheduling, 1, entry) == 1 then redis.call('RPUSH', pending, entry) end
  return true
end
