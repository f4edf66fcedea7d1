-- Shared by every script of the redis store (prepended to each one).
-- ARGV[1] is the key prefix ("" when sharing the database with Zaqar).
-- Zaqar's fields hold whole seconds; the `zq.*` companions hold the
-- milliseconds and count only while they agree with Zaqar's field.
local PREFIX = ARGV[1]
local EMPTY_MAP = '\128'
local SUBS_INDEX = 'zaqar-rs.subscriptions'

local function k(name) return PREFIX .. name end
local function secs(ms) return math.floor(ms / 1000) end
local function qkey(project, queue) return project .. '.' .. queue end

local function ms(zaqar_secs, companion)
  local s = tonumber(zaqar_secs)
  if s == nil then return nil end
  local c = tonumber(companion)
  if c ~= nil and math.floor(c / 1000) == s then return c end
  return s * 1000
end

local MSG_FIELDS = {'t', 'cr', 'e', 'u', 'c', 'c.e', 'c.c', 'd', 'zq.cr', 'zq.e', 'zq.d', 'zq.ce'}

-- The envelope of a message, or nil if its hash is gone.
local function envelope(id)
  local v = redis.call('HMGET', k(id), unpack(MSG_FIELDS))
  if v[3] == false then return nil end
  local m = {id = id}
  m.created = ms(v[2], v[9]) or 0
  m.expires = ms(v[3], v[10]) or 0
  m.client = v[4] or ''
  m.claim = v[5] or ''
  m.claim_expires = ms(v[6], v[12]) or 0
  m.count = tonumber(v[7]) or 0
  m.visible = ms(v[8], v[11]) or m.created
  return m
end

local function is_live(m, now) return m ~= nil and m.expires > now end
local function is_claimed(m, now) return m.claim ~= '' and m.claim_expires > now end
local function is_delayed(m, now) return m.visible > now end

-- The reply row of a message: id, seq, created, expires, visible, client,
-- claim, claim expiry, claim count, body.
local function row(m, seq)
  local body = redis.call('HGET', k(m.id), 'b') or ''
  return {m.id, tonumber(seq), m.created, m.expires, m.visible, m.client,
          m.claim, m.claim_expires, m.count, body}
end

-- Removes a message with Zaqar's bookkeeping: set member, hash, and its
-- entry in the list and count of a claim that still exists.
local function forget(set, id, m)
  redis.call('ZREM', set, id)
  redis.call('DEL', k(id))
  if m ~= nil and m.claim ~= '' and redis.call('EXISTS', k(m.claim)) == 1 then
    redis.call('LREM', k('messages.' .. m.claim), 1, id)
    redis.call('HINCRBY', k(m.claim), 'n', -1)
  end
end

local function queue_exists(project, queue)
  return redis.call('ZSCORE', k(project .. '.queues_set'), qkey(project, queue)) ~= false
end

-- Creates the queue as Zaqar does (index entry, hash, message set index);
-- false if it existed.
local function ensure_queue(project, queue, now, metadata)
  if queue_exists(project, queue) then return false end
  local qk = qkey(project, queue)
  redis.call('ZADD', k(project .. '.queues_set'), 1, qk)
  redis.call('HSET', k(qk), 'c', 0, 'cl', 0, 'm', metadata or EMPTY_MAP, 't', secs(now))
  redis.call('ZADD', k('msgset_index'), 1, qk .. '.messages')
  return true
end

-- Hands out `n` consecutive ranks from the queue's counter, as Zaqar's
-- index_messages script does; returns the first.
local function take_ranks(project, queue, n)
  local counter = k(qkey(project, queue) .. '.rank_counter')
  local first = tonumber(redis.call('GET', counter) or 1)
  redis.call('SET', counter, first + n)
  return first
end

-- Drops expired claims from the queue's claims set (by score, seconds).
local function prune_claims(project, queue, now)
  redis.call('ZREMRANGEBYSCORE', k(qkey(project, queue) .. '.claims'), '-inf', secs(now))
end

-- The claim's expiry in ms if it is live, else nil.
local function live_claim(project, queue, claim, now)
  if redis.call('ZSCORE', k(qkey(project, queue) .. '.claims'), claim) == false then return nil end
  local v = redis.call('HMGET', k(claim), 'e', 'zq.e', 't')
  local e = ms(v[1], v[2])
  if e == nil or e <= now then return nil end
  return e, tonumber(v[3]) or 0
end

-- Walks the queue's message set in rank order after `after` (a score
-- bound), calling visit(id, seq, m) for live messages until it returns
-- true; removes dead ones met on the way.
local function walk(set, after, now, visit)
  local start = after
  while true do
    local page = redis.call('ZRANGEBYSCORE', set, start, '+inf', 'WITHSCORES', 'LIMIT', 0, 100)
    if #page == 0 then return end
    for i = 1, #page, 2 do
      local id, seq = page[i], page[i + 1]
      start = '(' .. seq
      local m = envelope(id)
      if not is_live(m, now) then
        forget(set, id, m)
      elseif visit(id, seq, m) then
        return
      end
    end
  end
end

local SUB_FIELDS = {'s', 'u', 't', 'e', 'o', 'p', 'c', 'zq.e', 'zq.cr', 'zq.ds'}

-- A subscription as a reply row (id, queue, subscriber, ttl, created,
-- expires, options, confirmed, delivered_seq, project), or nil if gone or
-- expired at `now`.
local function subscription(id, now)
  local v = redis.call('HMGET', k(id), unpack(SUB_FIELDS))
  if v[4] == false then return nil end
  local ttl = tonumber(v[3]) or 0
  local expires = ms(v[4], v[8])
  if expires <= now then return nil end
  local created = tonumber(v[9]) or (expires - ttl * 1000)
  local project = v[6] or ''
  local delivered = tonumber(v[10])
  if delivered == nil then
    local counter = redis.call('GET', k(qkey(project, v[1]) .. '.rank_counter'))
    delivered = (tonumber(counter) or 1) - 1
  end
  return {id, v[1], v[2] or '', ttl, created, expires, v[5] or EMPTY_MAP,
          tonumber(v[7]) or 1, delivered, project}
end

-- Removes a subscription id whose hash is gone or expired.
local function drop_subscription(set, id)
  redis.call('ZREM', set, id)
  redis.call('ZREM', k(SUBS_INDEX), id)
  redis.call('DEL', k(id))
end

-- Announces a committed change to every zaqar-server attached to this
-- database (the `changes_watch` feed), in the same script as the write.
-- Kinds: 0 messages posted (with the last seq), 1 queue deleted, 2 queue
-- purged, 3 a subscription changed (with its id).
local CHANGES = 'zaqar-rs.changes'
local function announce(kind, project, queue, last_seq, subscription)
  redis.call('PUBLISH', k(CHANGES), kind .. '\n' .. project .. '\n' .. queue .. '\n'
    .. string.format('%d', last_seq or 0) .. '\n' .. (subscription or ''))
end

-- The notification log: while a queue has subscriptions, each message
-- posted to it is copied (`zaqar-rs.log.<P.Q>`: sorted set seq -> id;
-- `zaqar-rs.logged.<id>`: the copy, expiring with the message) so that
-- notification delivery sees it even once it is consumed.
local function log_key(project, queue) return k('zaqar-rs.log.' .. qkey(project, queue)) end
local function log_copy(project, queue, id, seq, created, expires, visible, client, body)
  redis.call('ZADD', log_key(project, queue), seq, id)
  local copy = k('zaqar-rs.logged.' .. id)
  redis.call('HSET', copy, 'cr', created, 'e', expires, 'd', visible, 'u', client, 'b', body)
  redis.call('PEXPIREAT', copy, expires)
end

-- Drops every log entry at or below `upto` (all of them when nil).
local function log_trim(project, queue, upto)
  local key = log_key(project, queue)
  local bound = '+inf'
  if upto ~= nil then bound = string.format('%d', upto) end
  for _, id in ipairs(redis.call('ZRANGEBYSCORE', key, '-inf', bound)) do
    redis.call('DEL', k('zaqar-rs.logged.' .. id))
  end
  redis.call('ZREMRANGEBYSCORE', key, '-inf', bound)
end
