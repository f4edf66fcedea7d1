-- ARGV: prefix, project, queue, now, new id, subscriber, ttl (s), options (MessagePack).
-- Reply: {created (0/1), id, confirmed (0/1)}.
local project, queue, now, id = ARGV[2], ARGV[3], tonumber(ARGV[4]), ARGV[5]
local subscriber, ttl, options = ARGV[6], tonumber(ARGV[7]), ARGV[8]
local qk = qkey(project, queue)
local set = k(qk .. '.subscriptions')
for _, other in ipairs(redis.call('ZRANGE', set, 0, -1)) do
  local s = subscription(other, now)
  if s == nil then
    drop_subscription(set, other)
  elseif s[3] == subscriber then
    return {0, other, s[8]}
  end
end
local expires = now + ttl * 1000
local counter = redis.call('GET', k(qk .. '.rank_counter'))
redis.call('HSET', k(id), 'id', id, 's', queue, 'u', subscriber, 't', ttl, 'e', secs(expires),
  'o', options, 'p', project, 'c', 0, 'zq.e', expires, 'zq.cr', now,
  'zq.ds', (tonumber(counter) or 1) - 1)
redis.call('PEXPIREAT', k(id), expires)
redis.call('ZADD', set, 1, id)
redis.call('ZADD', k(SUBS_INDEX), 0, id)
announce(3, project, queue, 0, id)
return {1, id, 0}
