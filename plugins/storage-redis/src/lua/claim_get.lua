-- ARGV: prefix, project, queue, now, claim id.
-- Reply: nil if not live, else {ttl, expires, rows...}.
local project, queue, now, claim = ARGV[2], ARGV[3], tonumber(ARGV[4]), ARGV[5]
local expires, ttl = live_claim(project, queue, claim, now)
if expires == nil then return false end
local set = k(qkey(project, queue) .. '.messages')
local out = {ttl, expires}
for _, id in ipairs(redis.call('LRANGE', k('messages.' .. claim), 0, -1)) do
  local seq = redis.call('ZSCORE', set, id)
  if seq then
    local m = envelope(id)
    if is_live(m, now) and m.claim == claim and is_claimed(m, now) then
      out[#out + 1] = row(m, seq)
    end
  end
end
return out
