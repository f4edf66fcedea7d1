-- ARGV: prefix, project, queue, now, id, claim id ('' = none), claim flag (0/1).
-- Reply: 'ok', 'claimed', 'not_claimed' or 'claim_not_found'.
local project, queue, now, id = ARGV[2], ARGV[3], tonumber(ARGV[4]), ARGV[5]
local claim = ARGV[7] == '1' and ARGV[6] or nil
local set = k(qkey(project, queue) .. '.messages')
if redis.call('ZSCORE', set, id) == false then return 'ok' end
local m = envelope(id)
if is_live(m, now) then
  if is_claimed(m, now) then
    if claim == nil or claim ~= m.claim then return 'claimed' end
  elseif claim ~= nil then
    if live_claim(project, queue, claim, now) then return 'not_claimed' end
    return 'claim_not_found'
  end
end
forget(set, id, m)
return 'ok'
