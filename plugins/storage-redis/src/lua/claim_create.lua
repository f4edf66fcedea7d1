-- ARGV: prefix, project, queue, now, claim id, ttl (s), grace (s), limit,
-- dead-letter queue ('' = none), max claim count, dead-letter ttl (s, '' = keep).
-- Reply: rows of the claimed messages.
local project, queue, now, claim = ARGV[2], ARGV[3], tonumber(ARGV[4]), ARGV[5]
local ttl, grace, limit = tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])
local dlq, max_claims, dlq_ttl = ARGV[9], tonumber(ARGV[10]), tonumber(ARGV[11])
local qk = qkey(project, queue)
local set = k(qk .. '.messages')
local claim_expires = now + ttl * 1000
local grace_until = claim_expires + grace * 1000
prune_claims(project, queue, now)

-- Moves a message claimed too often into the dead-letter queue: a new rank
-- there, no claim, expiry per the policy.
local function dead_letter(id, m)
  redis.call('ZREM', set, id)
  ensure_queue(project, dlq, now, nil)
  local rank = take_ranks(project, dlq, 1)
  redis.call('ZADD', k(qkey(project, dlq) .. '.messages'), rank, id)
  announce(0, project, dlq, rank)
  redis.call('HSET', k(id), 'c', '', 'c.e', secs(now), 'zq.ce', now)
  if dlq_ttl ~= nil then
    local expires = now + dlq_ttl * 1000
    redis.call('HSET', k(id), 't', dlq_ttl, 'e', secs(expires), 'zq.e', expires)
    redis.call('PEXPIREAT', k(id), expires)
  end
end

local taken = {}
if limit > 0 then
  walk(set, '-inf', now, function(id, seq, m)
    if is_claimed(m, now) or is_delayed(m, now) then return false end
    if dlq ~= '' and m.count >= max_claims then
      dead_letter(id, m)
      return false
    end
    redis.call('HSET', k(id), 'c', claim, 'c.e', secs(claim_expires), 'zq.ce', claim_expires,
      'c.c', m.count + 1)
    if m.expires < grace_until then
      -- Zaqar's own ttl field becomes claim ttl + grace, as its claim script sets it.
      redis.call('HSET', k(id), 't', ttl + grace, 'e', secs(grace_until), 'zq.e', grace_until)
      redis.call('PEXPIREAT', k(id), grace_until)
    end
    taken[#taken + 1] = {id, seq}
    return #taken >= limit
  end)
end

local out = {}
if #taken > 0 then
  local list = k('messages.' .. claim)
  for _, t in ipairs(taken) do
    redis.call('RPUSH', list, t[1])
    out[#out + 1] = row(envelope(t[1]), t[2])
  end
  redis.call('PEXPIREAT', list, claim_expires)
  redis.call('HSET', k(claim), 'id', claim, 't', ttl, 'e', secs(claim_expires), 'n', #taken,
    'zq.e', claim_expires)
  redis.call('PEXPIREAT', k(claim), claim_expires)
  redis.call('ZADD', k(qk .. '.claims'), secs(claim_expires), claim)
end
return out
