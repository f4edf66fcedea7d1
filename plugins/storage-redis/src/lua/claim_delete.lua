-- ARGV: prefix, project, queue, now, claim id. Releases the claim's messages.
local project, queue, now, claim = ARGV[2], ARGV[3], tonumber(ARGV[4]), ARGV[5]
local claims = k(qkey(project, queue) .. '.claims')
if redis.call('ZSCORE', claims, claim) == false then return 0 end
local list = k('messages.' .. claim)
for _, id in ipairs(redis.call('LRANGE', list, 0, -1)) do
  local m = envelope(id)
  if m ~= nil and m.claim == claim then
    redis.call('HSET', k(id), 'c', '', 'c.e', secs(now), 'zq.ce', now)
  end
end
redis.call('ZREM', claims, claim)
redis.call('DEL', k(claim), list)
return 1
