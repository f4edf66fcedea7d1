-- ARGV: prefix, project, queue, now, metadata (MessagePack). 1 if created.
if ensure_queue(ARGV[2], ARGV[3], tonumber(ARGV[4]), ARGV[5]) then return 1 end
return 0
