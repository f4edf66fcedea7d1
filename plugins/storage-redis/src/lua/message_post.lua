-- ARGV: prefix, project, queue, now, client, count, then per message:
-- id, ttl (s), delay (s), body (MessagePack). Reply: the first rank.
local project, queue, now, client, n = ARGV[2], ARGV[3], tonumber(ARGV[4]), ARGV[5], tonumber(ARGV[6])
ensure_queue(project, queue, now, nil)
local set = k(qkey(project, queue) .. '.messages')
local first = take_ranks(project, queue, n)
local now_s = secs(now)
local logged = redis.call('ZCARD', k(qkey(project, queue) .. '.subscriptions')) > 0
for i = 0, n - 1 do
  local a = 7 + i * 4
  local id, ttl, delay, body = ARGV[a], tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2]), ARGV[a + 3]
  local expires = now + ttl * 1000
  local visible = now + delay * 1000
  redis.call('HSET', k(id), 'id', id, 't', ttl, 'cr', now_s, 'e', secs(expires), 'u', client,
    'c', '', 'c.e', now_s, 'c.c', 0, 'd', secs(visible), 'b', body,
    'zq.cr', now, 'zq.e', expires, 'zq.d', visible)
  redis.call('PEXPIREAT', k(id), expires)
  redis.call('ZADD', set, first + i, id)
  if logged then log_copy(project, queue, id, first + i, now, expires, visible, client, body) end
end
announce(0, project, queue, first + n - 1)
return first
