-- ARGV: prefix, project, queue, ids...
local set = k(qkey(ARGV[2], ARGV[3]) .. '.messages')
for i = 4, #ARGV do
  if redis.call('ZSCORE', set, ARGV[i]) then forget(set, ARGV[i], envelope(ARGV[i])) end
end
return 1
