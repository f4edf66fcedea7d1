-- ARGV: prefix, project, queue. The metadata (MessagePack) or nil.
if not queue_exists(ARGV[2], ARGV[3]) then return false end
return redis.call('HGET', k(qkey(ARGV[2], ARGV[3])), 'm') or EMPTY_MAP
