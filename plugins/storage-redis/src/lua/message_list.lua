-- ARGV: prefix, project, queue, now, after seq, limit, exclude client
-- ('' = none), exclude flag (0/1), include claimed (0/1), include delayed (0/1).
local project, queue, now = ARGV[2], ARGV[3], tonumber(ARGV[4])
local after, limit = ARGV[5], tonumber(ARGV[6])
local exclude = ARGV[8] == '1' and ARGV[7] or nil
local claimed_ok, delayed_ok = ARGV[9] == '1', ARGV[10] == '1'
local out = {}
if limit <= 0 then return out end
walk(k(qkey(project, queue) .. '.messages'), '(' .. after, now, function(id, seq, m)
  if (claimed_ok or not is_claimed(m, now)) and (delayed_ok or not is_delayed(m, now))
      and (exclude == nil or m.client ~= exclude) then
    out[#out + 1] = row(m, seq)
  end
  return #out >= limit
end)
return out
