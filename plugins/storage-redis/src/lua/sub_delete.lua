-- ARGV: prefix, project, queue, id.
local set = k(qkey(ARGV[2], ARGV[3]) .. '.subscriptions')
if redis.call('ZSCORE', set, ARGV[4]) ~= false then drop_subscription(set, ARGV[4]) end
return 1
