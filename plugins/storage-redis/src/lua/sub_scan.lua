-- ARGV: prefix, now, marker ('' = start: first adopt the subscriptions Zaqar
-- created, found through msgset_index), limit. Subscription rows; the last
-- id read is the next marker (reply: {next marker or '', rows...}).
local now, marker, limit = tonumber(ARGV[2]), ARGV[3], tonumber(ARGV[4])
local index = k(SUBS_INDEX)
if marker == '' then
  for _, msgset in ipairs(redis.call('ZRANGE', k('msgset_index'), 0, -1)) do
    local base = string.sub(msgset, 1, #msgset - #'messages')
    for _, id in ipairs(redis.call('ZRANGE', k(base .. 'subscriptions'), 0, -1)) do
      redis.call('ZADD', index, 0, id)
    end
  end
end
local from = '-'
if marker ~= '' then from = '(' .. marker end
local out = {''}
local last = nil
while #out - 1 < limit do
  local ids = redis.call('ZRANGEBYLEX', index, from, '+', 'LIMIT', 0, 100)
  if #ids == 0 then last = nil break end
  for _, id in ipairs(ids) do
    from = '(' .. id
    last = id
    local s = subscription(id, now)
    if s == nil then
      if redis.call('EXISTS', k(id)) == 0 then redis.call('ZREM', index, id) end
    else
      out[#out + 1] = s
      if #out - 1 >= limit then break end
    end
  end
end
if #out - 1 >= limit and last ~= nil then out[1] = last end
return out
