-- ARGV: prefix, project, queue, now, id, what ('update', 'confirm', 'advance'),
-- then for update: subscriber flag, subscriber, ttl flag, ttl, options flag, options;
-- for confirm: 0/1; for advance: delivered seq.
-- Reply: 'ok', 'not_found' or 'conflict'.
local project, queue, now, id, what = ARGV[2], ARGV[3], tonumber(ARGV[4]), ARGV[5], ARGV[6]
local set = k(qkey(project, queue) .. '.subscriptions')
if redis.call('ZSCORE', set, id) == false then return 'not_found' end
local current = subscription(id, now)
if current == nil then return 'not_found' end
if what == 'confirm' then
  redis.call('HSET', k(id), 'c', tonumber(ARGV[7]))
elseif what == 'advance' then
  local seq = tonumber(ARGV[7])
  if seq > current[9] then redis.call('HSET', k(id), 'zq.ds', seq) end
  if redis.call('HEXISTS', k(id), 'zq.ds') == 0 then redis.call('HSET', k(id), 'zq.ds', current[9]) end
else
  if ARGV[7] == '1' and ARGV[8] ~= current[3] then
    for _, other in ipairs(redis.call('ZRANGE', set, 0, -1)) do
      if other ~= id then
        local s = subscription(other, now)
        if s ~= nil and s[3] == ARGV[8] then return 'conflict' end
      end
    end
    redis.call('HSET', k(id), 'u', ARGV[8])
  end
  if ARGV[9] == '1' then
    local ttl = tonumber(ARGV[10])
    local expires = now + ttl * 1000
    redis.call('HSET', k(id), 't', ttl, 'e', secs(expires), 'zq.e', expires)
    redis.call('PEXPIREAT', k(id), expires)
  end
  if ARGV[11] == '1' then redis.call('HSET', k(id), 'o', ARGV[12]) end
end
if what == 'advance' then
  -- Log entries every live subscription has passed are no longer needed.
  local lowest = nil
  for _, other in ipairs(redis.call('ZRANGE', set, 0, -1)) do
    local s = subscription(other, now)
    if s ~= nil and (lowest == nil or s[9] < lowest) then lowest = s[9] end
  end
  if lowest ~= nil then log_trim(project, queue, lowest) end
else
  announce(3, project, queue, 0, id)
end
return 'ok'
