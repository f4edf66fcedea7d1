-- ARGV: prefix, project, queue, now, id. The subscription row or nil.
local set = k(qkey(ARGV[2], ARGV[3]) .. '.subscriptions')
if redis.call('ZSCORE', set, ARGV[5]) == false then return false end
return subscription(ARGV[5], tonumber(ARGV[4])) or false
