-- ARGV: prefix, project, marker ('' = from the start), limit, with metadata (0/1).
-- Flat reply: name, metadata (or '') per queue.
local project, marker, limit, with_meta = ARGV[2], ARGV[3], tonumber(ARGV[4]), ARGV[5] == '1'
local from = '[' .. project .. '.'
if marker ~= '' then from = '(' .. project .. '.' .. marker end
local members = redis.call('ZRANGEBYLEX', k(project .. '.queues_set'), from, '+', 'LIMIT', 0, limit)
local out = {}
local cut = #project + 2
for _, member in ipairs(members) do
  out[#out + 1] = string.sub(member, cut)
  if with_meta then
    out[#out + 1] = redis.call('HGET', k(member), 'm') or EMPTY_MAP
  else
    out[#out + 1] = ''
  end
end
return out
