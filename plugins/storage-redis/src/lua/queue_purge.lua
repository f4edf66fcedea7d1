-- ARGV: prefix, project, queue, delete the queue too (0/1).
-- Deletes every message and claim of the queue; with the flag, also the
-- queue itself and its subscriptions. The rank counter stays.
local project, queue, drop = ARGV[2], ARGV[3], ARGV[4] == '1'
local qk = qkey(project, queue)
local set = k(qk .. '.messages')
for _, id in ipairs(redis.call('ZRANGE', set, 0, -1)) do
  redis.call('DEL', k(id))
end
redis.call('DEL', set)
local claims = k(qk .. '.claims')
for _, claim in ipairs(redis.call('ZRANGE', claims, 0, -1)) do
  redis.call('DEL', k(claim), k('messages.' .. claim))
end
redis.call('DEL', claims)
if drop then
  log_trim(project, queue, nil)
  redis.call('ZREM', k(project .. '.queues_set'), qk)
  redis.call('DEL', k(qk))
  redis.call('ZREM', k('msgset_index'), qk .. '.messages')
  local subs = k(qk .. '.subscriptions')
  for _, id in ipairs(redis.call('ZRANGE', subs, 0, -1)) do
    drop_subscription(subs, id)
  end
  redis.call('DEL', subs)
  announce(1, project, queue)
else
  announce(2, project, queue)
end
return 1
