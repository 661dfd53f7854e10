#!lua name=omnirouter
--
-- functions.lua - every routing decision omnirouter makes, as Redis Functions.
--
-- Each function runs atomically inside Redis, so any number of omnirouterd
-- instances can share one Redis without over-filling an agent or assigning a
-- conversation twice. The daemon loads this library with FUNCTION LOAD
-- REPLACE on every (re)connect; omnirouterctl does the same before its calls.
--
-- KEYS[1] is always the tenant prefix "omr:{TENANT}" (the braces are a Redis
-- Cluster hash tag: every key of a tenant lives in one slot). All other keys
-- are derived from it, so they share the slot.
--
-- Key schema (documented in docs/ARCHITECTURE.md):
--   P:agents                 set of agent ids
--   P:agent:ID               hash name languages cap load presence session
--                                 token_sha last_assign_ms created_ms
--   P:agent:ID:convs         set of open conversations assigned to the agent
--   P:agent:ID:inbox         stream read by the desktop through group "desktop"
--   P:avail:LANG             zset of agents available for LANG with capacity
--                            left; score = load * 1e13 + last_assign_ms
--                            (least loaded first, then longest idle)
--   P:wait:LANG              zset of queued conversations; score = wait_score
--                            (strictly increasing per tenant: FIFO)
--   P:conv:ID                hash state lang rlang name token_sha agent
--                                 created_ms enqueued_ms wait_score
--                                 assigned_ms closed_ms nmsg channel
--   P:conv:ID:log            stream: the transcript (messages and events)
--   P:conv:ID:ids            hash msgid -> log entry id (de-duplication)
--   P:meta                   hash last_wait_score
--   P:notify                 pub/sub channel: "a:AGENT" (inbox grew),
--                            "c:CONV" (log grew), "r:AGENT:SESSION" (replaced)
--
-- Errors are returned as "CODE message"; the daemon maps CODE to a status.

local INBOX_MAXLEN = 10000
local COPY_MAX = 500

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function hgetall(key)
  local flat = redis.call('HGETALL', key)
  if #flat == 0 then
    return nil
  end
  local h = {}
  for i = 1, #flat, 2 do
    h[flat[i]] = flat[i + 1]
  end
  return h
end

local function split_csv(s)
  local out = {}
  if s == nil then
    return out
  end
  for item in string.gmatch(s, '[^,]+') do
    out[#out + 1] = item
  end
  return out
end

local function err(code, msg)
  return redis.error_reply(code .. ' ' .. msg)
end

local function notify(P, what)
  redis.call('PUBLISH', P .. ':notify', what)
end

-- Puts the agent in or out of the availability index of each language it
-- speaks, from its current presence, load and capacity.
local function reindex(P, id, a)
  local load = tonumber(a.load or '0')
  local cap = tonumber(a.cap or '0')
  local open = a.presence == 'available' and load < cap
  local score = load * 1e13 + tonumber(a.last_assign_ms or '0')
  for _, lang in ipairs(split_csv(a.languages)) do
    if open then
      redis.call('ZADD', P .. ':avail:' .. lang, score, id)
    else
      redis.call('ZREM', P .. ':avail:' .. lang, id)
    end
  end
end

local function inbox_add(P, agent, ...)
  return redis.call('XADD', P .. ':agent:' .. agent .. ':inbox', 'MAXLEN', '~', INBOX_MAXLEN, '*', ...)
end

-- Gives conversation `conv` to agent `id`: one unit of capacity, the
-- assignment and the transcript so far into the agent's inbox, an event in the
-- transcript for the customer.
local function assign(P, conv, c, id, a, now)
  local ckey = P .. ':conv:' .. conv
  redis.call('HSET', ckey, 'state', 'assigned', 'agent', id, 'assigned_ms', now)
  a.load = tostring(tonumber(a.load or '0') + 1)
  a.last_assign_ms = tostring(now)
  redis.call('HSET', P .. ':agent:' .. id, 'load', a.load, 'last_assign_ms', now)
  redis.call('SADD', P .. ':agent:' .. id .. ':convs', conv)
  reindex(P, id, a)
  inbox_add(P, id, 'kind', 'assigned', 'conv', conv, 'lang', c.lang or '', 'name', c.name or '',
    'ts', now)
  local log = redis.call('XRANGE', ckey .. ':log', '-', '+', 'COUNT', COPY_MAX)
  for _, entry in ipairs(log) do
    local f = {}
    for i = 1, #entry[2], 2 do
      f[entry[2][i]] = entry[2][i + 1]
    end
    if f.kind == 'message' then
      inbox_add(P, id, 'kind', 'message', 'conv', conv, 'from', f.from or '', 'msgid', f.msgid or '',
        'text', f.text or '', 'name', f.name or '', 'ts', f.ts or '')
    end
  end
  redis.call('XADD', ckey .. ':log', '*', 'kind', 'event', 'event', 'assigned', 'name', a.name or '',
    'ts', now)
  notify(P, 'a:' .. id)
  notify(P, 'c:' .. conv)
end

-- Fills the agent's free capacity from the waiting queues of its languages,
-- oldest first across languages. O(languages * log N) per assignment.
local function pull_waiting(P, id, a, now)
  local assigned = 0
  while a.presence == 'available' and tonumber(a.load or '0') < tonumber(a.cap or '0') do
    local best, best_score, best_lang = nil, nil, nil
    for _, lang in ipairs(split_csv(a.languages)) do
      local head = redis.call('ZRANGE', P .. ':wait:' .. lang, 0, 0, 'WITHSCORES')
      if #head == 2 then
        local s = tonumber(head[2])
        if best == nil or s < best_score or (s == best_score and head[1] < best) then
          best, best_score, best_lang = head[1], s, lang
        end
      end
    end
    if best == nil then
      break
    end
    redis.call('ZREM', P .. ':wait:' .. best_lang, best)
    local c = hgetall(P .. ':conv:' .. best)
    if c ~= nil and c.state == 'queued' then
      assign(P, best, c, id, a, now)
      assigned = assigned + 1
    end
  end
  return assigned
end

-- omr_agent_upsert P id name languages cap token_sha
-- Creates or updates an agent; an empty token_sha keeps the current token.
local function agent_upsert(keys, args)
  local P, id = keys[1], args[1]
  local akey = P .. ':agent:' .. id
  local a = hgetall(akey)
  local created = a == nil
  if a ~= nil then
    -- Leave the old languages' indexes before the change.
    local old = {}
    for k, v in pairs(a) do old[k] = v end
    old.presence = 'offline'
    reindex(P, id, old)
  else
    a = {load = '0', presence = 'offline', last_assign_ms = '0'}
    redis.call('HSET', akey, 'load', '0', 'presence', 'offline', 'last_assign_ms', '0',
      'created_ms', now_ms())
  end
  a.name, a.languages, a.cap = args[2], args[3], args[4]
  redis.call('HSET', akey, 'name', args[2], 'languages', args[3], 'cap', args[4])
  if args[5] ~= '' then
    redis.call('HSET', akey, 'token_sha', args[5])
  end
  redis.call('SADD', P .. ':agents', id)
  local ok = pcall(redis.call, 'XGROUP', 'CREATE', akey .. ':inbox', 'desktop', '0', 'MKSTREAM')
  if not ok then
    -- BUSYGROUP: the group exists already.
  end
  reindex(P, id, a)
  pull_waiting(P, id, a, now_ms())
  return created and 'created' or 'updated'
end

-- omr_agent_remove P id
local function agent_remove(keys, args)
  local P, id = keys[1], args[1]
  local akey = P .. ':agent:' .. id
  local a = hgetall(akey)
  if a == nil then
    return err('NOAGENT', 'no such agent')
  end
  local open = redis.call('SCARD', akey .. ':convs')
  if open > 0 then
    return err('BUSY', 'agent has ' .. open .. ' open conversations; close them first')
  end
  a.presence = 'offline'
  reindex(P, id, a)
  redis.call('DEL', akey, akey .. ':convs', akey .. ':inbox')
  redis.call('SREM', P .. ':agents', id)
  if a.session ~= nil and a.session ~= '' then
    notify(P, 'r:' .. id .. ':' .. a.session)
  end
  return 'removed'
end

-- omr_conv_start P conv token_sha lang rlang name channel
-- Stores a new conversation and routes it. Idempotent for a resent request.
local function conv_start(keys, args)
  local P, conv = keys[1], args[1]
  local ckey = P .. ':conv:' .. conv
  local c = hgetall(ckey)
  if c ~= nil then
    if c.token_sha ~= args[2] then
      return err('BADTOKEN', 'conversation id taken')
    end
    return c.state
  end
  local now = now_ms()
  local last = tonumber(redis.call('HGET', P .. ':meta', 'last_wait_score') or '0')
  local score = math.max(now * 1000, last + 1)
  redis.call('HSET', P .. ':meta', 'last_wait_score', string.format('%.0f', score))
  c = {state = 'queued', lang = args[3], rlang = args[4], name = args[5]}
  redis.call('HSET', ckey, 'state', 'queued', 'token_sha', args[2], 'lang', args[3], 'rlang', args[4],
    'name', args[5], 'channel', args[6], 'created_ms', now, 'enqueued_ms', now,
    'wait_score', string.format('%.0f', score), 'nmsg', 0)
  local best = redis.call('ZRANGE', P .. ':avail:' .. args[4], 0, 0)
  if #best == 1 then
    local a = hgetall(P .. ':agent:' .. best[1])
    if a ~= nil then
      assign(P, conv, c, best[1], a, now)
      return 'assigned'
    end
  end
  redis.call('ZADD', P .. ':wait:' .. args[4], score, conv)
  return 'queued'
end

-- omr_conv_resume P conv token_sha -> state
local function conv_resume(keys, args)
  local P, conv = keys[1], args[1]
  local c = hgetall(P .. ':conv:' .. conv)
  if c == nil or c.token_sha ~= args[2] then
    return err('BADTOKEN', 'unknown conversation or wrong token')
  end
  return c.state
end

-- omr_conv_message P conv from agent msgid text name max_messages -> log id
local function conv_message(keys, args)
  local P, conv, from, agent, msgid = keys[1], args[1], args[2], args[3], args[4]
  local ckey = P .. ':conv:' .. conv
  local c = hgetall(ckey)
  if c == nil then
    return err('NOCONV', 'no such conversation')
  end
  if from == 'agent' and (c.agent ~= agent or c.state == 'queued') then
    return err('NOTASSIGNED', 'conversation is not assigned to this agent')
  end
  local dup = redis.call('HGET', ckey .. ':ids', from .. ':' .. msgid)
  if dup then
    return dup
  end
  if c.state == 'closed' then
    return err('CLOSED', 'conversation is closed')
  end
  if tonumber(c.nmsg or '0') >= tonumber(args[7]) then
    return err('TOOMANY', 'conversation holds too many messages')
  end
  local now = now_ms()
  -- The sender's display name: given, else the agent's or the customer's.
  local name = args[6]
  if name == '' then
    if from == 'agent' then
      name = redis.call('HGET', P .. ':agent:' .. agent, 'name') or ''
    else
      name = c.name or ''
    end
  end
  local id = redis.call('XADD', ckey .. ':log', '*', 'kind', 'message', 'from', from, 'msgid', msgid,
    'text', args[5], 'name', name, 'ts', now)
  redis.call('HSET', ckey .. ':ids', from .. ':' .. msgid, id)
  redis.call('HINCRBY', ckey, 'nmsg', 1)
  if from == 'customer' and c.state == 'assigned' then
    inbox_add(P, c.agent, 'kind', 'message', 'conv', conv, 'from', from, 'msgid', msgid,
      'text', args[5], 'name', name, 'ts', now)
    notify(P, 'a:' .. c.agent)
  end
  notify(P, 'c:' .. conv)
  return id
end

-- omr_conv_close P conv agent -> "closed"
local function conv_close(keys, args)
  local P, conv, id = keys[1], args[1], args[2]
  local ckey = P .. ':conv:' .. conv
  local c = hgetall(ckey)
  if c == nil then
    return err('NOCONV', 'no such conversation')
  end
  if c.agent ~= id then
    return err('NOTASSIGNED', 'conversation is not assigned to this agent')
  end
  if c.state == 'closed' then
    return 'closed'
  end
  local now = now_ms()
  redis.call('HSET', ckey, 'state', 'closed', 'closed_ms', now)
  local akey = P .. ':agent:' .. id
  local a = hgetall(akey) or {}
  if redis.call('SREM', akey .. ':convs', conv) == 1 then
    a.load = tostring(math.max(0, tonumber(a.load or '1') - 1))
    redis.call('HSET', akey, 'load', a.load)
  end
  redis.call('XADD', ckey .. ':log', '*', 'kind', 'event', 'event', 'closed', 'ts', now)
  inbox_add(P, id, 'kind', 'closed', 'conv', conv, 'ts', now)
  notify(P, 'c:' .. conv)
  notify(P, 'a:' .. id)
  if a.languages ~= nil then
    reindex(P, id, a)
    pull_waiting(P, id, a, now)
  end
  return 'closed'
end

-- omr_agent_login P agent token_sha session
--   -> {name, presence, languages, cap, previous session}
local function agent_login(keys, args)
  local P, id = keys[1], args[1]
  local akey = P .. ':agent:' .. id
  local a = hgetall(akey)
  if a == nil or a.token_sha == nil or a.token_sha ~= args[2] then
    return err('BADTOKEN', 'unknown agent or wrong token')
  end
  local previous = a.session or ''
  if a.presence == 'offline' then
    a.presence = 'away'
  end
  redis.call('HSET', akey, 'session', args[3], 'presence', a.presence)
  if previous ~= '' and previous ~= args[3] then
    notify(P, 'r:' .. id .. ':' .. previous)
  end
  return {a.name or '', a.presence, a.languages or '', a.cap or '0', previous}
end

-- omr_agent_presence P agent session presence -> presence
local function agent_presence(keys, args)
  local P, id, presence = keys[1], args[1], args[3]
  local akey = P .. ':agent:' .. id
  local a = hgetall(akey)
  if a == nil then
    return err('NOAGENT', 'no such agent')
  end
  if a.session ~= args[2] then
    return err('REPLACED', 'another session of this agent took over')
  end
  if presence ~= 'available' and presence ~= 'away' then
    return err('BADARG', 'presence must be available or away')
  end
  a.presence = presence
  redis.call('HSET', akey, 'presence', presence)
  reindex(P, id, a)
  pull_waiting(P, id, a, now_ms())
  return presence
end

-- omr_agent_gone P agent session -> "offline" | "ignored"
-- Only the session that is current may take the agent offline: a late
-- disconnect of an old desktop must not log out the new one.
local function agent_gone(keys, args)
  local P, id = keys[1], args[1]
  local akey = P .. ':agent:' .. id
  local a = hgetall(akey)
  if a == nil or a.session ~= args[2] then
    return 'ignored'
  end
  a.presence = 'offline'
  redis.call('HSET', akey, 'presence', 'offline', 'session', '')
  reindex(P, id, a)
  return 'offline'
end

redis.register_function('omr_agent_upsert', agent_upsert)
redis.register_function('omr_agent_remove', agent_remove)
redis.register_function('omr_conv_start', conv_start)
redis.register_function('omr_conv_resume', conv_resume)
redis.register_function('omr_conv_message', conv_message)
redis.register_function('omr_conv_close', conv_close)
redis.register_function('omr_agent_login', agent_login)
redis.register_function('omr_agent_presence', agent_presence)
redis.register_function('omr_agent_gone', agent_gone)
