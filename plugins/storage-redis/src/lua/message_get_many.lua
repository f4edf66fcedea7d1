-- ARGV: prefix, project, queue, now, ids... Rows of the live ones.
local project, queue, now = ARGV[2], ARGV[3], tonumber(ARGV[4])
local set = k(qkey(project, queue) .. '.messages')
local out = {}
for i = 5, #ARGV do
  local seq = redis.call('ZSCORE', set, ARGV[i])
  if seq then
    local m = envelope(ARGV[i])
    if is_live(m, now) then out[#out + 1] = row(m, seq) end
  end
end
return out
