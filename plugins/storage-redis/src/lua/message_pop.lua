-- ARGV: prefix, project, queue, now, limit. Rows of the removed messages.
local project, queue, now, limit = ARGV[2], ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5])
local set = k(qkey(project, queue) .. '.messages')
local out = {}
if limit <= 0 then return out end
walk(set, '-inf', now, function(id, seq, m)
  if not is_claimed(m, now) and not is_delayed(m, now) then
    out[#out + 1] = row(m, seq)
    forget(set, id, m)
  end
  return #out >= limit
end)
return out
