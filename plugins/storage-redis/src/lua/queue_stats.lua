-- ARGV: prefix, project, queue, now.
-- Reply: claimed, free, total, oldest id, oldest created, newest id, newest created.
local project, queue, now = ARGV[2], ARGV[3], tonumber(ARGV[4])
local qk = qkey(project, queue)
prune_claims(project, queue, now)
local claimed, free = 0, 0
local oldest, newest
walk(k(qk .. '.messages'), '-inf', now, function(id, seq, m)
  if is_claimed(m, now) then claimed = claimed + 1 else free = free + 1 end
  if oldest == nil then oldest = m end
  newest = m
  return false
end)
if oldest == nil then return {claimed, free, claimed + free, '', 0, '', 0} end
return {claimed, free, claimed + free, oldest.id, oldest.created, newest.id, newest.created}
