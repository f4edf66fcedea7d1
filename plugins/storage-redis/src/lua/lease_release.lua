-- ARGV: prefix, key, holder. Deletes the lease if `holder` holds it.
local key = k('zaqar-rs.lease.' .. ARGV[2])
local current = redis.call('GET', key)
if current then
  local space = string.find(current, ' ', 1, true)
  if string.sub(current, space + 1) == ARGV[3] then redis.call('DEL', key) end
end
return 1
