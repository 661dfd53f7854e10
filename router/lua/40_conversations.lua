--
-- 40_conversations.lua - Functions for conversations: start (with sticky
-- routing), resume, the customer leaving, messages, close, explain.
--

-- ---- functions: conversations ---------------------------------------------

-- Retention: a closed conversation's keys expire R.retention_s after the
-- close (0 = kept forever), and so does what its customer's later visits
-- use (the last agent, the list of earlier conversations), renewed by each
-- visit.
local function expire_customer(P, R, c)
  local ttl = num(R.retention_s, 0)
  if ttl > 0 and (c.customer or '') ~= '' then
    local key = customer_key(P, c.tenant, c.customer)
    redis.call('EXPIRE', key, int(ttl))
    redis.call('EXPIRE', customer_convs_key(P, c.tenant, c.customer), int(ttl))
  end
end

local function expire_closed(P, R, c)
  local ttl = num(R.retention_s, 0)
  if ttl <= 0 then
    return
  end
  local ckey = P .. ':conv:' .. c.id
  -- (':declined': the set that ':decl' replaced in 2026-12)
  for _, key in ipairs({ckey, ckey .. ':log', ckey .. ':ids', ckey .. ':decl', ckey .. ':declined',
    ckey .. ':explain', ckey .. ':cust'}) do
    redis.call('EXPIRE', key, int(ttl))
  end
  expire_customer(P, R, c)
end

-- Closes a conversation that waits (out of any waiting set already) for
-- `reason`: max-wait, or no-queue when no queue of the rules serves it.
close_waiting = function(P, R, c, reason, now)
  redis.call('HSET', P .. ':conv:' .. c.id, 'state', 'closed', 'closed_ms', now,
    'close_reason', reason)
  redis.call('SREM', P .. ':queued', c.id)
  redis.call('XADD', P .. ':conv:' .. c.id .. ':log', '*', 'kind', 'event', 'event', 'closed',
    'reason', reason, 'ts', now)
  c.state = 'closed'
  expire_closed(P, R, c)
  notify(P, 'c:' .. c.id)
end

-- The customer's connections to a conversation, one "instance:conn" each, are
-- the set P:conv:ID:cust. When the last one closes the customer is away
-- (`left_ms`): the agent who holds the conversation is told, and one that
-- still waits R.abandon_s later is closed as abandoned (the `gone` timer,
-- 60_timers.lua) unless the customer came back. An instance that stops
-- (a crash, a drain) does not report its customers gone: they are not
-- leaving, and may come back elsewhere. Its members stop counting once it
-- is silent (customer_connected), and the first tick of another instance
-- after that takes the customers it held and who are not back for leaving
-- then (reap_instance, 60_timers.lua).
local function tell_agent(P, c, kind, now)
  if c.state == 'assigned' and (c.agent or '') ~= '' then
    inbox_add(P, c.agent, 'kind', kind, 'conv', c.id, 'ts', int(now))
    notify(P, 'a:' .. c.agent)
  end
end

local function customer_here(P, c, session)
  if (session or '') == '' or c.state == 'closed' then
    return
  end
  local ckey = P .. ':conv:' .. c.id
  redis.call('SADD', instance_convs_key(P, instance_of(session)), c.id)
  if redis.call('SADD', ckey .. ':cust', session) == 1 and (c.left_ms or '') ~= '' then
    redis.call('HDEL', ckey, 'left_ms')
    c.left_ms = nil
    tell_agent(P, c, 'customer-back', now_ms())
  end
end

-- Sticky routing: a returning customer goes first to the agent who last
-- served them, if that agent can take it now; if the agent is logged in but
-- busy, the conversation waits for them up to the queue's sticky window, then
-- takes the normal route. Returns the state, or nil for normal routing.
sticky_route = function(P, R, c, q, customer, now)
  if customer == '' or num(q.sticky_window_s, 0) <= 0 then
    return nil
  end
  local h = redis.call('HMGET', customer_key(P, c.tenant, customer), 'agent', 'at_ms')
  local a = h[1] and agent_read(P, h[1]) -- HMGET gives false, not nil, when absent
  -- Not waited for: an agent with no desktop logged in (offline, lost, or put on break by
  -- the site since), or one created again with a removed agent's id after that close.
  if not a or a.presence == 'offline' or (a.session or '') == ''
    or num(h[2], 0) < num(a.created_ms, 0) then
    return nil
  end
  -- An agent who cannot serve this conversation at all (its tenant, the
  -- skills, a language the queue's first step takes) is not waited for.
  local l = serves(a, q, 1, c)
  if l == nil then
    return nil
  end
  c.queue = q.name
  if can_take(R, a, c.channel) then
    return assign(P, R, c, a, {queue = q.name, step = 1, agent = a.id, at_ms = now,
      strategy = q.strategy, skills = explain_skills(q, 1, a), language = c.lang,
      language_matched = l,
      trigger = 'sticky: the agent who last served this customer',
      candidates = {{agent = a.id}}}, now)
  end
  redis.call('HSET', P .. ':conv:' .. c.id, 'state', 'queued', 'queue', q.name, 'step', 1,
    'pref_agent', a.id)
  redis.call('SADD', P .. ':queued', c.id)
  redis.call('ZADD', P .. ':pref:' .. a.id, wait_score(c, q), c.id)
  timer_add(P, now + q.sticky_window_s * 1000, 'sticky|' .. c.id .. '|' .. a.id)
  arm_max_wait(P, c, q, now) -- (the window may be longer than the queue's maximum wait)
  return 'queued'
end

-- omr_conv_start P conv token_sha lang rlang name channel tenant customer
--                attrs_json skills_json [session] -> "assigned" | "offered" | "queued"
-- Stores a new conversation and routes it. Idempotent for a resent request.
-- session: the customer's connection ("instance:conn"; customer_here).
local function conv_start(keys, args)
  local P, conv = keys[1], args[1]
  local ckey = P .. ':conv:' .. conv
  local c = conv_read(P, conv)
  if c ~= nil then
    if c.token_sha ~= args[2] then
      return err('BADTOKEN', 'conversation id taken')
    end
    customer_here(P, c, args[11])
    return c.state
  end
  local R = rules(P)
  local attrs, skills = decode(args[9], {}), decode(args[10], {})
  -- (an instance of an earlier version routes Chinese as plain zh)
  local rlang = args[4] == 'zh' and zh_rlang(args[3]) or args[4]
  c = {id = conv, lang = args[3], rlang = rlang, name = args[5], channel = args[6],
    tenant = args[7], step = 1, fresh = true}
  local q = match_queue(R, c, attrs, skills)
  if q == nil then
    return err('NOQUEUE', 'no queue takes this conversation')
  end
  local now = now_ms()
  c.enqueued_ms = now
  redis.call('HSET', ckey, 'state', 'new', 'token_sha', args[2], 'lang', args[3], 'rlang', rlang,
    'name', args[5], 'channel', args[6], 'tenant', args[7], 'customer', args[8],
    'attrs', args[9] ~= '' and args[9] or '{}', 'skills', args[10] ~= '' and args[10] or '[]',
    'created_ms', int(now), 'enqueued_ms', int(now), 'priority', int(num(q.priority, 0)), 'nmsg',
    '0')
  if args[8] ~= '' then
    c.customer = args[8]
    local lkey = customer_convs_key(P, c.tenant, args[8])
    if redis.call('LPUSH', lkey, conv) == 1 then
      -- A new list: take over the one of the older layout, if any.
      local old = customer_key(P, c.tenant, args[8]) .. ':convs'
      if redis.call('TYPE', old).ok == 'list' then
        for _, id in ipairs(redis.call('LRANGE', old, 0, HISTORY_CONVS - 1)) do
          redis.call('RPUSH', lkey, id)
        end
        redis.call('DEL', old)
      end
    end
    redis.call('LTRIM', lkey, 0, HISTORY_CONVS - 1)
    expire_customer(P, R, c)
  end
  if (args[11] or '') ~= '' then
    redis.call('SADD', ckey .. ':cust', args[11])
    redis.call('SADD', instance_convs_key(P, instance_of(args[11])), conv)
  end
  local state = sticky_route(P, R, c, q, args[8], now) or route(P, R, c, q, now)
  return state
end

-- omr_conv_resume P conv token_sha [tenant [session [after]]] -> state (the
-- tenant must be the conversation's, as the hello gave it; session: the
-- customer's connection, "instance:conn"; after: the last seq the customer
-- saw, "" or "0" for none)
local function conv_resume(keys, args)
  local c = conv_read(keys[1], args[1])
  if c == nil or c.token_sha ~= args[2] or ((args[3] or '') ~= '' and c.tenant ~= args[3]) then
    return err('BADTOKEN', 'unknown conversation or wrong token')
  end
  -- The connection reads the transcript after `after`: one that is not a
  -- seq makes every read fail, and one in the future (later than the clock
  -- and than the last entry) gets nothing until then. A seq the transcript
  -- lost (Redis restarted without its last second) is in the past: taken.
  local after = args[5] or ''
  if after ~= '' and after ~= '0' then
    local ms, sq = string.match(after, '^(%d+)-(%d+)$')
    if ms == nil or #ms > 19 or #sq > 19 then
      return err('BADARG', 'after is not a seq')
    end
    local last = redis.call('XREVRANGE', keys[1] .. ':conv:' .. c.id .. ':log', '+', '-',
      'COUNT', 1)[1]
    if tonumber(ms) > now_ms() and not stream_id_le(after, last and last[1]) then
      return err('BADARG', 'after is a seq this conversation does not have yet')
    end
  end
  customer_here(keys[1], c, args[4])
  return c.state
end

-- c's customer has no connection left, from now: its agent is told (unless
-- quiet), and the abandonment clock starts.
local function customer_away(P, R, c, now, quiet)
  c.left_ms = int(now)
  redis.call('HSET', P .. ':conv:' .. c.id, 'left_ms', c.left_ms)
  if not quiet then
    tell_agent(P, c, 'customer-left', now)
  end
  arm_gone(P, R, c) -- (whatever the state: one that waits by then is closed)
end

-- omr_conv_left P conv session -> "away" (that was the customer's last
-- connection) or "here" (another is open, or this one was reported already)
local function conv_left(keys, args)
  local P, conv, session = keys[1], args[1], args[2]
  local cust = P .. ':conv:' .. conv .. ':cust'
  local removed = redis.call('SREM', cust, session) == 1
  -- Out of the instance's list once none of its connections is left here.
  local instance = instance_of(session)
  local others = false
  for _, m in ipairs(redis.call('SMEMBERS', cust)) do
    others = others or instance_of(m) == instance
  end
  if not others then
    local ikey = instance_convs_key(P, instance)
    redis.call('SREM', ikey, conv)
    redis.call('SREM', ikey .. ':reaped', conv)
  end
  local c = conv_read(P, conv)
  if c == nil or c.state == 'closed' or not removed then
    return 'here'
  end
  local now = now_ms()
  local R = rules(P)
  if customer_connected(P, R, conv, now) then
    if num(R.abandon_s, 0) > 0 then
      -- (looked at again then: the other may be of an instance that stopped
      -- just now and still looks alive; fire_gone)
      timer_add(P, now + R.abandon_s * 1000, 'gone|' .. conv .. '|' .. int(now))
    end
    return 'here'
  end
  -- (its agent was told already of one taken for away while its instance
  -- looked stopped, reap_instance: the clock counts from this departure)
  customer_away(P, R, c, now, (c.left_ms or '') ~= '')
  return 'away'
end

-- One chat message: stored in the transcript (once per sender and msgid), and into
-- the agent's inbox when a customer writes to an assigned conversation.
-- An agent's is taken from its desktop's session only (session: nil, not
-- checked): a desktop logged out by its token's revocation or reissue, or
-- taken over by a newer login, no longer writes, even in a message that
-- reaches Redis late (its instance stalled, the request held by
-- backpressure). Returns the log id, or an error reply.
local function store_message(P, conv, from, agent, msgid, text, name, max, session)
  local ckey = P .. ':conv:' .. conv
  -- Only the fields a message needs: the hash also holds the explanation.
  local f = redis.call('HMGET', ckey, 'state', 'agent', 'nmsg', 'name', 'left_ms')
  local state, holder = f[1], f[2]
  if not state then
    return err('NOCONV', 'no such conversation')
  end
  -- An agent's ids are its own ('|' is in no id): two agents of one
  -- conversation (a transfer) may both count r-1, r-2...
  local ids = ckey .. ':ids'
  local idkey = from == 'agent' and 'agent|' .. agent .. '|' .. msgid or from .. ':' .. msgid
  -- A resend is answered first: the reply was stored, even if the
  -- conversation was transferred or taken back since.
  local dup = redis.call('HGET', ids, idkey)
  if dup then
    return dup
  end
  if from == 'agent' and (holder ~= agent or state ~= 'assigned' and state ~= 'closed') then
    return err('NOTASSIGNED', 'conversation is not assigned to this agent')
  end
  if state == 'closed' then
    return err('CLOSED', 'conversation is closed')
  end
  if from == 'agent' and session ~= nil and not desktop_session(P, agent, session) then
    return err('REPLACED', 'this desktop session of the agent has ended')
  end
  local nmsg = num(f[3], 0)
  if nmsg >= max then
    return err('TOOMANY', 'conversation holds too many messages')
  end
  local ts = int(now_ms())
  -- The sender's display name: given, else the agent's or the customer's.
  if name == '' then
    if from == 'agent' then
      name = redis.call('HGET', P .. ':agent:' .. agent, 'name') or ''
    else
      name = f[4] or ''
    end
  end
  local id = redis.call('XADD', ckey .. ':log', '*', 'kind', 'message', 'from', from, 'msgid',
    msgid, 'text', text, 'name', name, 'ts', ts)
  if nmsg == IDS_LISTPACK_MAX then
    -- From here on the msgid hash is a hashtable (a value longer than
    -- hash-max-listpack-value converts it). Redis keeps a hash of up to 512
    -- entries as a listpack, which every HGET and HSET searches end to end:
    -- each message of a long chat paid for all the earlier ones.
    redis.call('HSET', ids, idkey, id, '~', string.rep('~', IDS_MARKER_LEN))
  else
    redis.call('HSET', ids, idkey, id)
  end
  redis.call('HINCRBY', ckey, 'nmsg', 1)
  if from == 'customer' and f[5] and f[5] ~= ''
    and customer_connected(P, rules(P), conv, now_ms()) then
    -- Taken for gone while its connection was on an instance that looked
    -- stopped (frozen, cut off from Redis) and ticks again: it writes.
    redis.call('HDEL', ckey, 'left_ms')
    tell_agent(P, {id = conv, state = state, agent = holder}, 'customer-back', now_ms())
  end
  if from == 'customer' and state == 'assigned' then
    inbox_add(P, holder, 'kind', 'message', 'conv', conv, 'from', from, 'msgid', msgid,
      'text', text, 'name', name, 'ts', ts)
    notify(P, 'a:' .. holder)
    -- The customer's other connections (another tab) read it now (the one
    -- that sent it reads it too and drops it: it has the seq from its ack).
    if redis.call('SCARD', ckey .. ':cust') > 1 then
      notify(P, 'c:' .. conv)
    end
  else
    -- The customer's own message is not pushed back to it (its ack carries
    -- the seq); its connections see it at their next read of the transcript.
    notify(P, 'c:' .. conv)
  end
  return id
end

-- omr_conv_message P conv from agent msgid text name max_messages [session] -> log id
-- session: an agent's desktop session (store_message checks it).
local function conv_message(keys, args)
  return store_message(keys[1], args[1], args[2], args[3], args[4], args[5], args[6],
    tonumber(args[7]), (args[8] or '') ~= '' and args[8] or nil)
end

-- omr_conv_messages P max_messages (conv from agent msgid text name)... [sessions] ->
-- one reply per message, in order: its log id or its error. The router sends
-- the messages of one loop turn together: one call, not one per message. A
-- message that fails (a Redis error) fails alone, not the others. sessions:
-- the agents' desktop sessions, comma-separated, one per message ("" for a
-- customer's; ',' is in no session), which store_message checks. A daemon of
-- an earlier version sends none (not checked), and a library of an earlier
-- version ignores them: instances of two versions share one Redis during a
-- rolling upgrade, served by the library loaded last.
local function conv_messages(keys, args)
  local P, max, out = keys[1], tonumber(args[1]), {}
  local n = math.floor((#args - 1) / 6)
  local sessions = {}
  if #args == 2 + 6 * n then
    local from = 1
    local text = args[#args]
    for k = 1, n do
      local comma = string.find(text, ',', from, true) or #text + 1
      sessions[k] = string.sub(text, from, comma - 1)
      from = comma + 1
    end
  end
  for k = 1, n do
    local i = 2 + 6 * (k - 1)
    local session = sessions[k]
    local ok, r = pcall(store_message, P, args[i], args[i + 1], args[i + 2], args[i + 3],
      args[i + 4], args[i + 5], max, session ~= '' and session or nil)
    if not ok and not (type(r) == 'table' and r.err) then
      r = redis.error_reply('ERR ' .. tostring(r))
    end
    out[#out + 1] = r
  end
  return out
end

-- Frees the agent's unit of capacity held by conversation c.
local function release(P, R, c, agent, now)
  local a = agent_read(P, agent)
  if a == nil then
    return
  end
  if redis.call('SREM', P .. ':agent:' .. agent .. ':convs', c.id) == 1 then
    local ch = c.channel or 'chat'
    a['load_' .. ch] = istr(math.max(0, load_of(a, ch) - 1))
    a.load = istr(math.max(0, num(a.load, 1) - 1))
    redis.call('HSET', P .. ':agent:' .. agent, 'load_' .. ch, a['load_' .. ch], 'load', a.load)
  end
  reindex(P, R, a)
  pull_waiting(P, R, a, now)
end

-- Closes conversation c, which agent `id` holds: `fields` are more fields of
-- the conversation's hash; `reason` (nil for the agent's own close) goes on
-- the log and, with `note`, on the agent's `closed` item; `ends` is the end
-- of the agent's wrap-up (0: none). The customer's next visit is sticky to
-- the agent, and its capacity takes the next work.
close_held = function(P, R, c, id, now, fields, reason, note, ends)
  local ckey = P .. ':conv:' .. c.id
  redis.call('HSET', ckey, 'state', 'closed', 'closed_ms', now, unpack(fields))
  local item = {'kind', 'closed', 'conv', c.id, 'wrapup', int(ends), 'ts', now}
  if reason then
    redis.call('XADD', ckey .. ':log', '*', 'kind', 'event', 'event', 'closed', 'reason', reason,
      'ts', now)
    item[#item + 1], item[#item + 2], item[#item + 3], item[#item + 4] =
      'reason', reason, 'text', note or ''
  else
    redis.call('XADD', ckey .. ':log', '*', 'kind', 'event', 'event', 'closed', 'ts', now)
  end
  inbox_add(P, id, unpack(item))
  notify(P, 'c:' .. c.id)
  notify(P, 'a:' .. id)
  if (c.customer or '') ~= '' then
    redis.call('HSET', customer_key(P, c.tenant, c.customer), 'agent', id, 'at_ms', now)
  end
  c.state = 'closed'
  expire_closed(P, R, c)
  release(P, R, c, id, now)
end

-- omr_conv_close P conv agent [disposition [session]] -> "closed"
-- session (given by the router): the agent's desktop session, which must
-- not have ended (as for its messages, store_message).
local function conv_close(keys, args)
  local P, conv, id = keys[1], args[1], args[2]
  local c = conv_read(P, conv)
  if c == nil then
    return err('NOCONV', 'no such conversation')
  end
  if c.agent ~= id or (c.state ~= 'assigned' and c.state ~= 'closed') then
    -- (an offer becomes the agent's only when accepted)
    return err('NOTASSIGNED', 'conversation is not assigned to this agent')
  end
  if c.state == 'closed' then
    return 'closed'
  end
  if (args[4] or '') ~= '' and not desktop_session(P, id, args[4]) then
    return err('REPLACED', 'this desktop session of the agent has ended')
  end
  local now = now_ms()
  local R = rules(P)
  -- Wrap-up: no new work of this channel until it ends (timer or the agent);
  -- the desktop is told when (the closed item's `wrapup`, 0 = none).
  local q = queue_named(R, c.queue)
  local ends = 0
  if q ~= nil and num(q.wrapup_s, 0) > 0 then
    local ch = c.channel or 'chat'
    -- A wrap-up already running that ends later is not cut short.
    ends = math.max(now + q.wrapup_s * 1000,
      num(redis.call('HGET', P .. ':agent:' .. id, 'wrapup_' .. ch), 0))
    redis.call('HSET', P .. ':agent:' .. id, 'wrapup_' .. ch, int(ends))
    timer_add(P, ends, 'wrapup|' .. id .. '|' .. ch)
    wrapup_history(P, id, ch, ends, now)
  end
  close_held(P, R, c, id, now, {'disposition', args[3] or ''}, nil, nil, ends)
  return 'closed'
end

-- omr_explain P conv -> JSON
local function explain(keys, args)
  local c = conv_read(keys[1], args[1])
  if c == nil then
    return err('NOCONV', 'no such conversation')
  end
  -- (before 2026-12 the explanation was a field of the conversation's hash)
  local why = decode(redis.call('GET', keys[1] .. ':conv:' .. c.id .. ':explain') or c.explain,
    nil)
  -- (its customer has no connection open since then: omr_conv_left, reap_instance)
  local left = (c.left_ms or '') ~= '' and num(c.left_ms, 0) or nil
  if why == nil or c.state == 'queued' or (c.state == 'closed' and (c.agent or '') == '') then
    -- Waiting (again), or closed while it waited (no agent held it then):
    -- where it waits or waited; the decision that gave it to an agent
    -- before, if any, as `previous`.
    local pref, trig = c.pref_agent or '', c.wait_trigger or ''
    return cjson.encode({conversation = c.id, state = c.state, queue = c.queue or '',
      step = num(c.step, 1), waiting_since_ms = num(c.enqueued_ms, 0),
      waiting_for = pref ~= '' and pref or nil, previous = why, language = c.lang,
      trigger = trig ~= '' and trig or nil,
      close_reason = c.state == 'closed' and c.close_reason or nil,
      customer_left_ms = left})
  end
  why.conversation, why.state, why.customer_left_ms = c.id, c.state, left
  return cjson.encode(why)
end
