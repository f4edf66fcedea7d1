-- ARGV: prefix, project, queue, now, marker ('' = start), limit. Subscription rows.
local project, queue, now, marker, limit = ARGV[2], ARGV[3], tonumber(ARGV[4]), ARGV[5], tonumber(ARGV[6])
local set = k(qkey(project, queue) .. '.subscriptions')
local from = '-'
if marker ~= '' then from = '(' .. marker end
local out = {}
while #out < limit do
  local ids = redis.call('ZRANGEBYLEX', set, from, '+', 'LIMIT', 0, 100)
  if #ids == 0 then break end
  for _, id in ipairs(ids) do
    from = '(' .. id
    local s = subscription(id, now)
    if s == nil then
      drop_subscription(set, id)
    else
      out[#out + 1] = s
      if #out >= limit then break end
    end
  end
end
return out
