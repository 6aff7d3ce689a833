-- drop: a note whose children are settled leaves workflows:settling (and, set aside as
-- unsettleable, goes to workflows:unsettled when ARGV[3] says so), if the leader's epoch
-- is still current: a deposed leader must not drop a note its successor parked again.
-- KEYS[1] scheduler:epoch, KEYS[2] workflows:settling, KEYS[3] workflows:unsettled
-- ARGV[1] the leader's epoch, ARGV[2] the note, ARGV[3] '1' to set it aside
-- returns 1 when dropped, 0 for a deposed leader

if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('LREM', KEYS[2], 1, ARGV[2])
if ARGV[3] == '1' then redis.call('RPUSH', KEYS[3], ARGV[2]) end
return 1
