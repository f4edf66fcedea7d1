-- ARGV: prefix, project, queue, id.
local set = k(qkey(ARGV[2], ARGV[3]) .. '.subscriptions')
if redis.call('ZSCORE', set, ARGV[4]) ~= false then
  drop_subscription(set, ARGV[4])
  announce(3, ARGV[2], ARGV[3], 0, ARGV[4])
  if redis.call('ZCARD', set) == 0 then log_trim(ARGV[2], ARGV[3], nil) end
end
return 1
