-- ARGV: prefix, project, queue, now, after seq, limit. Message rows (no
-- claim) of the logged copies after `after`, live at `now`.
local project, queue, now = ARGV[2], ARGV[3], tonumber(ARGV[4])
local after, limit = ARGV[5], tonumber(ARGV[6])
local key = log_key(project, queue)
local out = {}
local start = '(' .. after
while #out < limit do
  local page = redis.call('ZRANGEBYSCORE', key, start, '+inf', 'WITHSCORES', 'LIMIT', 0, 100)
  if #page == 0 then break end
  for i = 1, #page, 2 do
    local id, seq = page[i], page[i + 1]
    start = '(' .. seq
    local v = redis.call('HMGET', k('zaqar-rs.logged.' .. id), 'cr', 'e', 'd', 'u', 'b')
    local expires = tonumber(v[2])
    if expires == nil or expires <= now then
      redis.call('ZREM', key, id)
    else
      out[#out + 1] = {id, tonumber(seq), tonumber(v[1]), expires, tonumber(v[3]), v[4] or '',
                       '', 0, 0, v[5] or ''}
      if #out >= limit then break end
    end
  end
end
return out
