-- ARGV: prefix, key, holder, ttl (ms), now. 1 if `holder` holds the lease now.
-- The value is "<expiry ms> <holder>"; expiry is judged by `now`, the Redis
-- key expiry only collects it.
local key = k('zaqar-rs.lease.' .. ARGV[2])
local holder, ttl, now = ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5])
local current = redis.call('GET', key)
if current then
  local space = string.find(current, ' ', 1, true)
  local expires = tonumber(string.sub(current, 1, space - 1))
  local owner = string.sub(current, space + 1)
  if owner ~= holder and expires > now then return 0 end
end
local expires = now + ttl
redis.call('SET', key, string.format('%d', expires) .. ' ' .. holder)
redis.call('PEXPIREAT', key, expires)
return 1
