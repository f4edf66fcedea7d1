-- ARGV: prefix, project, queue, metadata. 0 if the queue does not exist.
if not queue_exists(ARGV[2], ARGV[3]) then return 0 end
redis.call('HSET', k(qkey(ARGV[2], ARGV[3])), 'm', ARGV[4])
return 1
