-- ARGV: prefix, project, queue, now, claim id, ttl (s), grace (s). 0 if not live.
local project, queue, now, claim = ARGV[2], ARGV[3], tonumber(ARGV[4]), ARGV[5]
local ttl, grace = tonumber(ARGV[6]), tonumber(ARGV[7])
prune_claims(project, queue, now)
if live_claim(project, queue, claim, now) == nil then return 0 end
local claim_expires = now + ttl * 1000
local grace_until = claim_expires + grace * 1000
local list = k('messages.' .. claim)
for _, id in ipairs(redis.call('LRANGE', list, 0, -1)) do
  local m = envelope(id)
  if is_live(m, now) and m.claim == claim then
    redis.call('HSET', k(id), 'c.e', secs(claim_expires), 'zq.ce', claim_expires)
    if m.expires < grace_until then
      redis.call('HSET', k(id), 't', ttl + grace, 'e', secs(grace_until), 'zq.e', grace_until)
      redis.call('PEXPIREAT', k(id), grace_until)
    end
  end
end
redis.call('HSET', k(claim), 't', ttl, 'e', secs(claim_expires), 'zq.e', claim_expires)
redis.call('PEXPIREAT', k(claim), claim_expires)
redis.call('PEXPIREAT', list, claim_expires)
redis.call('ZADD', k(qkey(project, queue) .. '.claims'), secs(claim_expires), claim)
return 1
