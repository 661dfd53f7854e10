#!lua name=omnirouter
--
-- functions.lua - every routing decision omnirouter makes, as Redis Functions.
--
-- Each function runs atomically inside Redis, so any number of omnirouterd
-- instances can share one Redis without over-filling an agent or assigning a
-- conversation twice. The daemon loads this library with FUNCTION LOAD
-- REPLACE on every (re)connect; omnirouterctl does the same before its calls.
--
-- KEYS[1] is always the routing group prefix P = "omr:{GROUP}" (the braces
-- are a Redis Cluster hash tag: every key of a group lives in one slot, so a
-- decision touching an agent of several tenants stays one atomic call). All
-- other keys are derived from P. docs/ROUTING.md explains the model;
-- docs/ARCHITECTURE.md lists the keys.
--
-- Indexes (no scan over all agents or all waiting work per decision):
--   P:avail:Q|S|C|T|L  zset of agents that could take, right now, a channel C
--                      conversation of tenant T in queue Q at ladder step S,
--                      and speak language L. Score by the queue's strategy.
--   P:wait:Q|S|C|T|L   zset of queued conversations in that slot, language L.
--                      Score (9 - priority) * 1e13 + enqueue time: higher
--                      priority first, then longest waiting.
--   P:waitlangs:Q|S|C|T  languages with waiting work (for language fallback).
--   P:agent:ID:idx     the avail keys the agent is in (to leave them cheaply).
--   P:timers           zset of due timers ("esc:CONV:STEP", "max:CONV:QUEUE").
--
-- Errors are returned as "CODE message"; the daemon maps CODE to a status.

local CHANNELS = {'chat', 'email', 'voice'}
local INBOX_MAXLEN = 10000
local COPY_MAX = 500
local HISTORY_MAXLEN = 1000
local EXPLAIN_MAX = 8

local sticky_route

local DEFAULT_RULES = {
  version = 'default',
  blocking = {voice = {'chat', 'email'}},
  queues = {{name = 'default', tenants = {}, channels = {}, languages = {}, skills = {},
    attributes = {}, strategy = 'least_loaded', priority = 0, min_proficiency = 1,
    max_wait_s = 0, max_wait_action = 'close', steps = {{after_s = 0}}}},
}

-- ---- helpers ---------------------------------------------------------------

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

local function err(code, msg)
  return redis.error_reply(code .. ' ' .. msg)
end

local function notify(P, what)
  redis.call('PUBLISH', P .. ':notify', what)
end

local function decode(s, default)
  if s == nil or s == '' then
    return default
  end
  local ok, v = pcall(cjson.decode, s)
  if ok and type(v) == 'table' then
    return v
  end
  return default
end

local function contains(list, x)
  for _, v in ipairs(list or {}) do
    if v == x then
      return true
    end
  end
  return false
end

local function num(x, default)
  return tonumber(x or '') or default
end

local function rules(P)
  local r = decode(redis.call('GET', P .. ':rules'), nil)
  if r == nil or type(r.queues) ~= 'table' or #r.queues == 0 then
    return DEFAULT_RULES
  end
  return r
end

local function queue_named(R, name)
  for _, q in ipairs(R.queues) do
    if q.name == name then
      return q
    end
  end
  return nil
end

-- ---- agents ----------------------------------------------------------------

local function agent_read(P, id)
  local a = hgetall(P .. ':agent:' .. id)
  if a == nil then
    return nil
  end
  a.id = id
  a.tenants_t = decode(a.tenants, {})
  a.skills_t = decode(a.skills, {})
  a.langs_t = decode(a.languages, {})
  a.cap_t = decode(a.capacity, {})
  return a
end

local function load_of(a, ch)
  return num(a['load_' .. ch], 0)
end

-- Effective skill-level relaxation at step s: the largest min_level_delta
-- of the steps reached so far (steps only ever relax).
local function level_delta(q, s)
  local d = 0
  for i = 1, s do
    d = math.max(d, num(q.steps[i].min_level_delta, 0))
  end
  return d
end

-- Languages a conversation in language lang accepts at step s.
local function step_langs(q, s, lang)
  local out, seen = {lang}, {[lang] = true}
  for i = 1, s do
    for _, l in ipairs(q.steps[i].languages or {}) do
      if not seen[l] then
        seen[l] = true
        out[#out + 1] = l
      end
    end
  end
  return out
end

local function skills_ok(a, q, s)
  local d = level_delta(q, s)
  for skill, lvl in pairs(q.skills or {}) do
    if num(a.skills_t[skill], 0) < math.max(1, lvl - d) then
      return false
    end
  end
  return true
end

-- Channel ch is blocked for the agent by an open conversation on a channel
-- that blocks it (an agent on a call gets no new chat).
local function blocked(R, a, ch)
  for from, list in pairs(R.blocking or {}) do
    if load_of(a, from) > 0 and contains(list, ch) then
      return true
    end
  end
  return false
end

local function can_take(R, a, ch)
  return a.presence == 'available' and load_of(a, ch) < num(a.cap_t[ch], 0)
    and not blocked(R, a, ch) and num(a['wrapup_' .. ch], 0) == 0
end

local function strategy_score(q, a)
  local idle = num(a.last_assign_ms, 0)
  if q.strategy == 'longest_idle' then
    return idle
  elseif q.strategy == 'best_skill' then
    local sum = 0
    for skill in pairs(q.skills or {}) do
      sum = sum + math.min(10, num(a.skills_t[skill], 0))
    end
    return (99 - math.min(99, sum)) * 1e13 + idle
  end
  return num(a.load, 0) * 1e13 + idle
end

local function queue_channels(q)
  if q.channels and #q.channels > 0 then
    return q.channels
  end
  return CHANNELS
end

-- Slot keys join their parts with '|', which no id may contain (ids are
-- [A-Za-z0-9._:@-]), so a key splits back into its parts unambiguously.
local function avail_key(P, q, s, ch, t, l)
  return P .. ':avail:' .. table.concat({q, s, ch, t, l}, '|')
end

local function wait_key(P, q, s, ch, t, l)
  return P .. ':wait:' .. table.concat({q, s, ch, t, l}, '|')
end

local function waitlangs_key(P, q, s, ch, t)
  return P .. ':waitlangs:' .. table.concat({q, s, ch, t}, '|')
end

-- Splits the part of `key` after `prefix` at '|'.
local function slot_parts(key, prefix)
  local parts = {}
  for part in string.gmatch(string.sub(key, #prefix + 1), '[^|]+') do
    parts[#parts + 1] = part
  end
  return parts
end

-- Puts the agent in exactly the availability sets that describe what it could
-- take now, and nowhere else.
local function reindex(P, R, a)
  local want = {}
  if a.presence == 'available' then
    for _, q in ipairs(R.queues) do
      local minp = num(q.min_proficiency, 1)
      for _, ch in ipairs(queue_channels(q)) do
        if can_take(R, a, ch) then
          for _, t in ipairs(a.tenants_t) do
            if #(q.tenants or {}) == 0 or contains(q.tenants, t) then
              for s = 1, #q.steps do
                if skills_ok(a, q, s) then
                  local score = strategy_score(q, a)
                  for l, prof in pairs(a.langs_t) do
                    if prof >= minp then
                      want[avail_key(P, q.name, s, ch, t, l)] = score
                    end
                  end
                end
              end
            end
          end
        end
      end
    end
  end
  local idx = P .. ':agent:' .. a.id .. ':idx'
  for _, key in ipairs(redis.call('SMEMBERS', idx)) do
    if want[key] == nil then
      redis.call('ZREM', key, a.id)
      redis.call('SREM', idx, key)
    end
  end
  for key, score in pairs(want) do
    redis.call('ZADD', key, score, a.id)
    redis.call('SADD', idx, key)
  end
end

local function set_presence(P, a, state, reason, now)
  if a.presence == state and (a.reason or '') == (reason or '') then
    return
  end
  a.presence, a.reason = state, reason or ''
  redis.call('HSET', P .. ':agent:' .. a.id, 'presence', state, 'reason', a.reason,
    'presence_since_ms', now)
  redis.call('XADD', P .. ':agent:' .. a.id .. ':presence', 'MAXLEN', '~', HISTORY_MAXLEN, '*',
    'state', state, 'reason', a.reason, 'ts', now)
end

local function inbox_add(P, agent, ...)
  return redis.call('XADD', P .. ':agent:' .. agent .. ':inbox', 'MAXLEN', '~', INBOX_MAXLEN, '*',
    ...)
end

-- ---- timers ----------------------------------------------------------------

local function timer_add(P, due, what)
  redis.call('ZADD', P .. ':timers', due, what)
end

-- ---- conversations ---------------------------------------------------------

local function customer_key(P, tenant, customer)
  return P .. ':customer:' .. tenant .. '|' .. customer
end

local function conv_read(P, conv)
  local c = hgetall(P .. ':conv:' .. conv)
  if c ~= nil then
    c.id = conv
  end
  return c
end

local function wait_score(c, q)
  return (9 - num(q.priority, 0)) * 1e13 + num(c.enqueued_ms, 0)
end

-- Sends the assignment and the transcript so far to the agent's inbox and an
-- "assigned" event to the customer's transcript.
local function deliver_assignment(P, c, a, now)
  local ckey = P .. ':conv:' .. c.id
  redis.call('HSET', ckey, 'state', 'assigned', 'assigned_ms', now)
  inbox_add(P, a.id, 'kind', 'assigned', 'conv', c.id, 'lang', c.lang or '', 'name', c.name or '',
    'tenant', c.tenant or '', 'queue', c.queue or '', 'ts', now)
  local log = redis.call('XRANGE', ckey .. ':log', '-', '+', 'COUNT', COPY_MAX)
  for _, entry in ipairs(log) do
    local f = {}
    for i = 1, #entry[2], 2 do
      f[entry[2][i]] = entry[2][i + 1]
    end
    if f.kind == 'message' then
      inbox_add(P, a.id, 'kind', 'message', 'conv', c.id, 'from', f.from or '', 'msgid',
        f.msgid or '', 'text', f.text or '', 'name', f.name or '', 'ts', f.ts or '')
    end
  end
  redis.call('XADD', ckey .. ':log', '*', 'kind', 'event', 'event', 'assigned', 'name',
    a.name or '', 'ts', now)
  notify(P, 'a:' .. a.id)
  notify(P, 'c:' .. c.id)
end

-- Gives conversation c to agent a: one unit of the channel's capacity is
-- reserved at once (so nobody over-fills the agent while an offer is open),
-- the reasons go to `explain`; then the assignment is delivered, or, when the
-- queue wants offers, the agent is offered it with a timeout.
local function assign(P, R, c, a, why, now)
  local ckey = P .. ':conv:' .. c.id
  local ch = c.channel
  local q = queue_named(R, c.queue)
  local offer = q ~= nil and q.auto_accept == false
  redis.call('HSET', ckey, 'state', offer and 'offered' or 'assigned', 'agent', a.id,
    'queue', c.queue or '', 'step', num(c.step, 1), 'explain', cjson.encode(why))
  redis.call('HDEL', ckey, 'pref_agent')
  redis.call('SREM', P .. ':queued', c.id)
  a['load_' .. ch] = tostring(load_of(a, ch) + 1)
  a.load = tostring(num(a.load, 0) + 1)
  a.last_assign_ms = tostring(now)
  redis.call('HSET', P .. ':agent:' .. a.id, 'load_' .. ch, a['load_' .. ch], 'load', a.load,
    'last_assign_ms', now)
  redis.call('SADD', P .. ':agent:' .. a.id .. ':convs', c.id)
  reindex(P, R, a)
  if not offer then
    deliver_assignment(P, c, a, now)
    return
  end
  local expires = now + num(q.offer_timeout_s, 30) * 1000
  redis.call('HSET', ckey, 'offered_ms', now, 'offer_expires_ms', expires)
  inbox_add(P, a.id, 'kind', 'offer', 'conv', c.id, 'lang', c.lang or '', 'name', c.name or '',
    'tenant', c.tenant or '', 'queue', c.queue or '', 'expires', expires, 'ts', now)
  timer_add(P, expires, 'offer|' .. c.id .. '|' .. a.id)
  notify(P, 'a:' .. a.id)
end

-- The best available agent for conversation c where it waits now (queue,
-- step): the lowest score across the availability sets of every language the
-- step accepts. Returns agent id (or nil) and the explanation.
local function best_agent(P, R, c, q)
  local s = num(c.step, 1)
  local best, best_score, best_lang = nil, nil, nil
  local considered = {}
  -- Agents who declined or missed this conversation's offer are skipped;
  -- reading that many more heads per set still finds the best other one.
  local declined = {}
  for _, id in ipairs(redis.call('SMEMBERS', P .. ':conv:' .. c.id .. ':declined')) do
    declined[id] = true
  end
  local n = redis.call('SCARD', P .. ':conv:' .. c.id .. ':declined')
  for _, l in ipairs(step_langs(q, s, c.rlang)) do
    local key = avail_key(P, q.name, s, c.channel, c.tenant, l)
    local head = redis.call('ZRANGE', key, 0, 2 + n, 'WITHSCORES')
    for i = 1, #head, 2 do
      local id, score = head[i], tonumber(head[i + 1])
      if not declined[id] then
        if #considered < EXPLAIN_MAX then
          considered[#considered + 1] = {agent = id, score = score, language = l}
        end
        if best == nil or score < best_score or (score == best_score and id < best) then
          best, best_score, best_lang = id, score, l
        end
      end
    end
  end
  local why = {queue = q.name, step = s, strategy = q.strategy or 'least_loaded',
    language = c.lang, language_matched = best_lang, candidates = considered}
  return best, why
end

local function explain_skills(q, s, a)
  local out, d = {}, level_delta(q, s)
  for skill, lvl in pairs(q.skills or {}) do
    out[skill] = {required = math.max(1, lvl - d), agent = num(a.skills_t[skill], 0)}
  end
  return out
end

local function try_assign(P, R, c, q, now)
  local id, why = best_agent(P, R, c, q)
  if id == nil then
    return false
  end
  local a = agent_read(P, id)
  if a == nil then
    -- A removed agent left in an index: drop it; the next decision retries.
    redis.call('ZREM', avail_key(P, q.name, num(c.step, 1), c.channel, c.tenant,
      why.language_matched), id)
    return false
  end
  if not can_take(R, a, c.channel) then
    reindex(P, R, a)
    return false
  end
  why.agent, why.at_ms, why.skills = id, now, explain_skills(q, num(c.step, 1), a)
  assign(P, R, c, a, why, now)
  return true
end

-- Puts c on the waiting set of its current slot and arms its next timer.
local function enqueue(P, R, c, q, now)
  local s = num(c.step, 1)
  local wk = wait_key(P, q.name, s, c.channel, c.tenant, c.rlang)
  redis.call('ZADD', wk, wait_score(c, q), c.id)
  redis.call('SADD', waitlangs_key(P, q.name, s, c.channel, c.tenant), c.rlang)
  redis.call('HSET', P .. ':conv:' .. c.id, 'state', 'queued', 'queue', q.name, 'step', s,
    'wait_key', wk)
  redis.call('SADD', P .. ':queued', c.id)
  c.state, c.queue, c.wait_key = 'queued', q.name, wk
  local nxt = q.steps[s + 1]
  if nxt ~= nil then
    timer_add(P, num(c.enqueued_ms, now) + num(nxt.after_s, 0) * 1000,
      'esc|' .. c.id .. '|' .. (s + 1))
  end
end

-- Takes conv out of waiting set wk; the set's language leaves the slot's
-- waitlangs once nothing waits in it.
local function wait_remove(P, wk, conv)
  redis.call('ZREM', wk, conv)
  if redis.call('ZCARD', wk) == 0 then
    local x = slot_parts(wk, P .. ':wait:')
    redis.call('SREM', waitlangs_key(P, x[1], x[2], x[3], x[4]), x[5])
  end
end

local function unqueue(P, c)
  if c.wait_key and c.wait_key ~= '' then
    wait_remove(P, c.wait_key, c.id)
  end
end

-- Routes c in queue q from step c.step: to an agent now, else to waiting.
local function route(P, R, c, q, now)
  c.queue = q.name
  if try_assign(P, R, c, q, now) then
    return 'assigned'
  end
  enqueue(P, R, c, q, now)
  return 'queued'
end

-- The first queue that takes a conversation: tenant, channel, language,
-- requested skills and customer attributes.
local function match_queue(R, c, attrs, skills)
  for _, q in ipairs(R.queues) do
    local ok = (#(q.tenants or {}) == 0 or contains(q.tenants, c.tenant))
      and (#(q.channels or {}) == 0 or contains(q.channels, c.channel))
      and (#(q.languages or {}) == 0 or contains(q.languages, c.rlang))
    if ok then
      for k, v in pairs(q.attributes or {}) do
        if attrs[k] ~= v then
          ok = false
        end
      end
    end
    -- A queue that requires skills takes only conversations that ask for
    -- some of them and for nothing else; a queue without skills takes any.
    if ok and next(q.skills or {}) ~= nil then
      ok = #skills > 0
      for _, skill in ipairs(skills) do
        if (q.skills or {})[skill] == nil then
          ok = false
        end
      end
    end
    if ok then
      return q
    end
  end
  return nil
end

-- Fills the agent's free capacity from the waiting sets it can serve, the
-- highest priority then the longest waiting first, across all its queues.
-- Cost: one ZRANGE per (slot, language) the agent is indexed in.
-- The head of waiting set wk that agent id may take (not one that declined
-- it), looking at a few entries at most.
local function wait_head(P, wk, id)
  local head = redis.call('ZRANGE', wk, 0, 9, 'WITHSCORES')
  for i = 1, #head, 2 do
    if redis.call('SISMEMBER', P .. ':conv:' .. head[i] .. ':declined', id) == 0 then
      return head[i], tonumber(head[i + 1])
    end
  end
  return nil, nil
end

-- A conversation waiting for this agent in particular (sticky routing) that
-- the agent can take now.
local function pull_preferred(P, R, a, now)
  local pkey = P .. ':pref:' .. a.id
  for _, conv in ipairs(redis.call('ZRANGE', pkey, 0, 9)) do
    local c = conv_read(P, conv)
    if c == nil or c.state ~= 'queued' or c.pref_agent ~= a.id then
      redis.call('ZREM', pkey, conv)
    elseif can_take(R, a, c.channel) then
      redis.call('ZREM', pkey, conv)
      assign(P, R, c, a, {queue = c.queue, step = num(c.step, 1), agent = a.id, at_ms = now,
        language = c.lang, trigger = 'sticky: the agent who last served this customer',
        candidates = {{agent = a.id}}}, now)
      return true
    end
  end
  return false
end

local function pull_waiting(P, R, a, now)
  local assigned = 0
  while a.presence == 'available' and pull_preferred(P, R, a, now) do
    assigned = assigned + 1
  end
  while a.presence == 'available' do
    local best, best_score, best_key = nil, nil, nil
    local seen = {}
    for _, key in ipairs(redis.call('SMEMBERS', P .. ':agent:' .. a.id .. ':idx')) do
      local x = slot_parts(key, P .. ':avail:')
      local q, s, ch, t, l = x[1], x[2], x[3], x[4], x[5]
      local queue = q and queue_named(R, q)
      if queue ~= nil then
        local langs = {l}
        if contains(step_langs(queue, tonumber(s), '?'), l) then
          -- a fallback language of this step: any waiting language qualifies
          langs = redis.call('SMEMBERS', waitlangs_key(P, q, s, ch, t))
        end
        for _, wl in ipairs(langs) do
          local wk = wait_key(P, q, s, ch, t, wl)
          if not seen[wk] then
            seen[wk] = true
            local conv, sc = wait_head(P, wk, a.id)
            if conv ~= nil then
              if best == nil or sc < best_score or (sc == best_score and conv < best) then
                best, best_score, best_key = conv, sc, wk
              end
            end
          end
        end
      end
    end
    if best == nil then
      break
    end
    wait_remove(P, best_key, best)
    local c = conv_read(P, best)
    if c ~= nil and c.state == 'queued' then
      local q = queue_named(R, c.queue)
      local why = {queue = c.queue, step = num(c.step, 1), strategy = q and q.strategy or '',
        language = c.lang, language_matched = c.rlang, agent = a.id, at_ms = now,
        trigger = 'agent became free', candidates = {{agent = a.id}}}
      if q ~= nil then
        why.skills = explain_skills(q, num(c.step, 1), a)
      end
      assign(P, R, c, a, why, now)
      assigned = assigned + 1
    end
  end
  return assigned
end

-- ---- functions: rules and agents -------------------------------------------

-- omr_rules_load P json -> "loaded" | "unchanged"
-- Stores the queues and channel rules, re-indexes every agent and re-homes
-- queued conversations (keeping their enqueue time) when they changed.
local function rules_load(keys, args)
  local P = keys[1]
  local new = decode(args[1], nil)
  if new == nil or type(new.queues) ~= 'table' or #new.queues == 0 then
    return err('BADARG', 'rules must be a JSON object with queues')
  end
  local old = decode(redis.call('GET', P .. ':rules'), {})
  if old.version == new.version then
    return 'unchanged'
  end
  redis.call('SET', P .. ':rules', args[1])
  local R = rules(P)
  local now = now_ms()
  for _, id in ipairs(redis.call('SMEMBERS', P .. ':agents')) do
    local a = agent_read(P, id)
    if a ~= nil then
      reindex(P, R, a)
    end
  end
  for _, id in ipairs(redis.call('SMEMBERS', P .. ':queued')) do
    local c = conv_read(P, id)
    if c ~= nil and c.state == 'queued' then
      unqueue(P, c)
      -- The new rules decide the queue; the step is kept only in the same
      -- queue, and the enqueue time always.
      local q = match_queue(R, c, decode(c.attrs, {}), decode(c.skills, {}))
      if q == nil then
        q = queue_named(R, c.queue) or R.queues[#R.queues]
      end
      if q.name ~= c.queue or num(c.step, 1) > #q.steps then
        c.step = 1
      end
      if route(P, R, c, q, now) == 'queued' and num(q.max_wait_s, 0) > 0 then
        timer_add(P, num(c.enqueued_ms, now) + q.max_wait_s * 1000, 'max|' .. id .. '|' .. q.name)
      end
    else
      redis.call('SREM', P .. ':queued', id)
    end
  end
  return 'loaded'
end

local function valid_levels(t, what)
  for k, v in pairs(t) do
    if type(k) ~= 'string' or type(v) ~= 'number' or v < 1 or v > 10 or v % 1 ~= 0 then
      return 'each ' .. what .. ' needs a level 1-10'
    end
  end
  return nil
end

-- omr_agent_upsert P id json -> "created" | "updated"
local function agent_upsert(keys, args)
  local P, id = keys[1], args[1]
  local spec = decode(args[2], nil)
  if spec == nil then
    return err('BADARG', 'agent must be a JSON object')
  end
  local akey = P .. ':agent:' .. id
  local a = agent_read(P, id)
  local created = a == nil
  local now = now_ms()
  if created then
    if type(spec.name) ~= 'string' or spec.name == '' then
      return err('BADARG', 'a new agent needs a name')
    end
    a = {id = id, presence = 'offline', reason = '', load = '0', last_assign_ms = '0',
      tenants_t = {}, skills_t = {}, langs_t = {}, cap_t = {chat = 1}}
    redis.call('HSET', akey, 'presence', 'offline', 'reason', '', 'load', 0, 'last_assign_ms', 0,
      'created_ms', now, 'presence_since_ms', now)
  end
  local bad = valid_levels(spec.skills or {}, 'skill') or valid_levels(spec.languages or {},
    'language')
  if bad then
    return err('BADARG', bad)
  end
  for k, v in pairs(spec.capacity or {}) do
    if not contains(CHANNELS, k) or type(v) ~= 'number' or v < 0 or v > 100 then
      return err('BADARG', 'capacity is chat/email/voice: 0-100')
    end
  end
  if spec.name then a.name = spec.name end
  if spec.tenants then a.tenants_t = spec.tenants end
  if spec.skills then a.skills_t = spec.skills end
  if spec.languages then a.langs_t = spec.languages end
  if spec.capacity then a.cap_t = spec.capacity end
  if #a.tenants_t == 0 then
    return err('BADARG', 'an agent serves at least one tenant')
  end
  redis.call('HSET', akey, 'name', a.name, 'tenants', cjson.encode(a.tenants_t),
    'skills', cjson.encode(a.skills_t), 'languages', cjson.encode(a.langs_t),
    'capacity', cjson.encode(a.cap_t))
  if spec.token_sha and spec.token_sha ~= '' then
    redis.call('HSET', akey, 'token_sha', spec.token_sha)
  end
  redis.call('SADD', P .. ':agents', id)
  pcall(redis.call, 'XGROUP', 'CREATE', akey .. ':inbox', 'desktop', '0', 'MKSTREAM')
  local R = rules(P)
  reindex(P, R, a)
  pull_waiting(P, R, a, now)
  return created and 'created' or 'updated'
end

local function agent_json(P, a)
  local load = {}
  for _, ch in ipairs(CHANNELS) do
    load[ch] = load_of(a, ch)
  end
  local convs = redis.call('SMEMBERS', P .. ':agent:' .. a.id .. ':convs')
  table.sort(convs)
  local wrapup = {}
  for _, ch in ipairs(CHANNELS) do
    if num(a['wrapup_' .. ch], 0) > 0 then
      wrapup[ch] = num(a['wrapup_' .. ch], 0) -- until, in ms
    end
  end
  return {id = a.id, name = a.name or '', tenants = a.tenants_t, skills = a.skills_t,
    languages = a.langs_t, capacity = a.cap_t, load = load, presence = a.presence or 'offline',
    reason = a.reason or '', presence_since_ms = num(a.presence_since_ms, 0),
    wrapup_until_ms = wrapup, missed_offers = num(a.missed_offers, 0), conversations = convs}
end

-- omr_agent_get P id -> JSON
local function agent_get(keys, args)
  local a = agent_read(keys[1], args[1])
  if a == nil then
    return err('NOAGENT', 'no such agent')
  end
  return cjson.encode(agent_json(keys[1], a))
end

-- omr_agent_list P -> JSON array sorted by id
local function agent_list(keys, args)
  local P = keys[1]
  local ids = redis.call('SMEMBERS', P .. ':agents')
  table.sort(ids)
  local out = {}
  for _, id in ipairs(ids) do
    local a = agent_read(P, id)
    if a ~= nil then
      out[#out + 1] = agent_json(P, a)
    end
  end
  if #out == 0 then
    return '[]'
  end
  return cjson.encode(out)
end

-- omr_agent_remove P id
local function agent_remove(keys, args)
  local P, id = keys[1], args[1]
  local akey = P .. ':agent:' .. id
  local a = agent_read(P, id)
  if a == nil then
    return err('NOAGENT', 'no such agent')
  end
  local open = redis.call('SCARD', akey .. ':convs')
  if open > 0 then
    return err('BUSY', 'agent has ' .. open .. ' open conversations; close them first')
  end
  a.presence = 'offline'
  reindex(P, rules(P), a)
  redis.call('DEL', akey, akey .. ':convs', akey .. ':inbox', akey .. ':idx', akey .. ':presence')
  redis.call('SREM', P .. ':agents', id)
  if a.session ~= nil and a.session ~= '' then
    notify(P, 'r:' .. id .. ':' .. a.session)
  end
  return 'removed'
end

local STATES = {available = true, away = true, busy = true, ['break'] = true, offline = true}

local function change_state(P, a, state, reason)
  if not STATES[state] then
    return err('BADARG', 'state must be available, away, busy, break or offline')
  end
  local now = now_ms()
  local R = rules(P)
  set_presence(P, a, state, reason, now)
  reindex(P, R, a)
  pull_waiting(P, R, a, now)
  return state
end

-- omr_agent_state P id state reason -> state (administrator)
local function agent_state(keys, args)
  local a = agent_read(keys[1], args[1])
  if a == nil then
    return err('NOAGENT', 'no such agent')
  end
  return change_state(keys[1], a, args[2], args[3] or '')
end

-- ---- functions: conversations ---------------------------------------------

-- Sticky routing: a returning customer goes first to the agent who last
-- served them, if that agent can take it now; if the agent is logged in but
-- busy, the conversation waits for them up to the queue's sticky window, then
-- takes the normal route. Returns the state, or nil for normal routing.
sticky_route = function(P, R, c, q, customer, now)
  if customer == '' or num(q.sticky_window_s, 0) <= 0 then
    return nil
  end
  local last = redis.call('HGET', customer_key(P, c.tenant, customer), 'agent')
  local a = last and agent_read(P, last) -- HGET gives false, not nil, when absent
  if not a or a.presence == 'offline' then
    return nil
  end
  c.queue = q.name
  for _, l in ipairs(step_langs(q, 1, c.rlang)) do
    if redis.call('ZSCORE', avail_key(P, q.name, 1, c.channel, c.tenant, l), a.id) then
      assign(P, R, c, a, {queue = q.name, step = 1, agent = a.id, at_ms = now, language = c.lang,
        language_matched = l, trigger = 'sticky: the agent who last served this customer',
        candidates = {{agent = a.id}}}, now)
      return 'assigned'
    end
  end
  redis.call('HSET', P .. ':conv:' .. c.id, 'state', 'queued', 'queue', q.name, 'step', 1,
    'pref_agent', a.id)
  redis.call('SADD', P .. ':queued', c.id)
  redis.call('ZADD', P .. ':pref:' .. a.id, num(c.enqueued_ms, now), c.id)
  timer_add(P, now + q.sticky_window_s * 1000, 'sticky|' .. c.id .. '|' .. a.id)
  return 'queued'
end

-- omr_conv_start P conv token_sha lang rlang name channel tenant customer
--                attrs_json skills_json -> "assigned" | "queued"
-- Stores a new conversation and routes it. Idempotent for a resent request.
local function conv_start(keys, args)
  local P, conv = keys[1], args[1]
  local ckey = P .. ':conv:' .. conv
  local c = conv_read(P, conv)
  if c ~= nil then
    if c.token_sha ~= args[2] then
      return err('BADTOKEN', 'conversation id taken')
    end
    return c.state
  end
  local R = rules(P)
  local attrs, skills = decode(args[9], {}), decode(args[10], {})
  c = {id = conv, lang = args[3], rlang = args[4], name = args[5], channel = args[6],
    tenant = args[7], step = 1}
  local q = match_queue(R, c, attrs, skills)
  if q == nil then
    return err('NOQUEUE', 'no queue takes this conversation')
  end
  local now = now_ms()
  c.enqueued_ms = now
  redis.call('HSET', ckey, 'state', 'new', 'token_sha', args[2], 'lang', args[3], 'rlang', args[4],
    'name', args[5], 'channel', args[6], 'tenant', args[7], 'customer', args[8],
    'attrs', args[9] ~= '' and args[9] or '{}', 'skills', args[10] ~= '' and args[10] or '[]',
    'created_ms', now, 'enqueued_ms', now, 'priority', num(q.priority, 0), 'nmsg', 0)
  local state = sticky_route(P, R, c, q, args[8], now) or route(P, R, c, q, now)
  if state == 'queued' and num(q.max_wait_s, 0) > 0 then
    timer_add(P, now + q.max_wait_s * 1000, 'max|' .. conv .. '|' .. q.name)
  end
  return state
end

-- omr_conv_resume P conv token_sha -> state
local function conv_resume(keys, args)
  local c = conv_read(keys[1], args[1])
  if c == nil or c.token_sha ~= args[2] then
    return err('BADTOKEN', 'unknown conversation or wrong token')
  end
  return c.state
end

-- omr_conv_message P conv from agent msgid text name max_messages -> log id
local function conv_message(keys, args)
  local P, conv, from, agent, msgid = keys[1], args[1], args[2], args[3], args[4]
  local ckey = P .. ':conv:' .. conv
  local c = conv_read(P, conv)
  if c == nil then
    return err('NOCONV', 'no such conversation')
  end
  if from == 'agent' and (c.agent ~= agent or c.state ~= 'assigned' and c.state ~= 'closed') then
    return err('NOTASSIGNED', 'conversation is not assigned to this agent')
  end
  local dup = redis.call('HGET', ckey .. ':ids', from .. ':' .. msgid)
  if dup then
    return dup
  end
  if c.state == 'closed' then
    return err('CLOSED', 'conversation is closed')
  end
  if num(c.nmsg, 0) >= tonumber(args[7]) then
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
  local id = redis.call('XADD', ckey .. ':log', '*', 'kind', 'message', 'from', from, 'msgid',
    msgid, 'text', args[5], 'name', name, 'ts', now)
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

-- Frees the agent's unit of capacity held by conversation c.
local function release(P, R, c, agent, now)
  local a = agent_read(P, agent)
  if a == nil then
    return
  end
  if redis.call('SREM', P .. ':agent:' .. agent .. ':convs', c.id) == 1 then
    local ch = c.channel or 'chat'
    a['load_' .. ch] = tostring(math.max(0, load_of(a, ch) - 1))
    a.load = tostring(math.max(0, num(a.load, 1) - 1))
    redis.call('HSET', P .. ':agent:' .. agent, 'load_' .. ch, a['load_' .. ch], 'load', a.load)
  end
  reindex(P, R, a)
  pull_waiting(P, R, a, now)
end

-- omr_conv_close P conv agent -> "closed"
local function conv_close(keys, args)
  local P, conv, id = keys[1], args[1], args[2]
  local ckey = P .. ':conv:' .. conv
  local c = conv_read(P, conv)
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
  local R = rules(P)
  redis.call('HSET', ckey, 'state', 'closed', 'closed_ms', now)
  redis.call('XADD', ckey .. ':log', '*', 'kind', 'event', 'event', 'closed', 'ts', now)
  inbox_add(P, id, 'kind', 'closed', 'conv', conv, 'ts', now)
  notify(P, 'c:' .. conv)
  notify(P, 'a:' .. id)
  if (c.customer or '') ~= '' then
    redis.call('HSET', customer_key(P, c.tenant, c.customer), 'agent', id, 'at_ms', now)
  end
  -- Wrap-up: no new work of this channel until it ends (timer or the agent).
  local q = queue_named(R, c.queue)
  if q ~= nil and num(q.wrapup_s, 0) > 0 then
    local ch = c.channel or 'chat'
    redis.call('HSET', P .. ':agent:' .. id, 'wrapup_' .. ch, now + q.wrapup_s * 1000)
    timer_add(P, now + q.wrapup_s * 1000, 'wrapup|' .. id .. '|' .. ch)
  end
  release(P, R, c, id, now)
  return 'closed'
end

-- omr_explain P conv -> JSON
local function explain(keys, args)
  local c = conv_read(keys[1], args[1])
  if c == nil then
    return err('NOCONV', 'no such conversation')
  end
  local why = decode(c.explain, nil)
  if why == nil then
    return cjson.encode({conversation = c.id, state = c.state, queue = c.queue or '',
      step = num(c.step, 1), waiting_since_ms = num(c.enqueued_ms, 0)})
  end
  why.conversation, why.state = c.id, c.state
  return cjson.encode(why)
end

-- ---- functions: desktops ---------------------------------------------------

-- omr_agent_login P agent token_sha session
--   -> {name, presence, languages csv, chat capacity, previous session}
local function agent_login(keys, args)
  local P, id = keys[1], args[1]
  local akey = P .. ':agent:' .. id
  local a = agent_read(P, id)
  if a == nil or a.token_sha == nil or a.token_sha ~= args[2] then
    return err('BADTOKEN', 'unknown agent or wrong token')
  end
  local previous = a.session or ''
  if a.presence == 'offline' then
    set_presence(P, a, 'away', '', now_ms())
  end
  redis.call('HSET', akey, 'session', args[3])
  if previous ~= '' and previous ~= args[3] then
    notify(P, 'r:' .. id .. ':' .. previous)
  end
  local langs = {}
  for l in pairs(a.langs_t) do
    langs[#langs + 1] = l
  end
  table.sort(langs)
  return {a.name or '', a.presence, table.concat(langs, ','), tostring(num(a.cap_t.chat, 0)),
    previous}
end

-- omr_agent_presence P agent session presence reason -> presence
local function agent_presence(keys, args)
  local P, id = keys[1], args[1]
  local a = agent_read(P, id)
  if a == nil then
    return err('NOAGENT', 'no such agent')
  end
  if a.session ~= args[2] then
    return err('REPLACED', 'another session of this agent took over')
  end
  if args[3] ~= 'available' and args[3] ~= 'away' and args[3] ~= 'break' then
    return err('BADARG', 'presence must be available, away or break')
  end
  return change_state(P, a, args[3], args[4] or '')
end

-- omr_agent_gone P agent session -> "offline" | "ignored"
-- Only the session that is current may take the agent offline: a late
-- disconnect of an old desktop must not log out the new one.
local function agent_gone(keys, args)
  local P, id = keys[1], args[1]
  local a = agent_read(P, id)
  if a == nil or a.session ~= args[2] then
    return 'ignored'
  end
  local now = now_ms()
  local R = rules(P)
  redis.call('HSET', P .. ':agent:' .. id, 'session', '')
  set_presence(P, a, 'offline', 'disconnected', now)
  reindex(P, R, a)
  timer_add(P, now + num(R.agent_grace_s, 60) * 1000, 'requeue|' .. id .. '|' .. args[2])
  return 'offline'
end

-- ---- functions: offers, heartbeats, wrap-up -------------------------------

-- Takes an offer back from agent `agent`: frees the reserved capacity,
-- remembers the agent declined, and routes the conversation again with its
-- original enqueue time and ladder step.
local function withdraw(P, R, c, agent, reason, now)
  local ckey = P .. ':conv:' .. c.id
  redis.call('SADD', ckey .. ':declined', agent)
  redis.call('HSET', ckey, 'state', 'queued', 'agent', '', 'last_decline', agent .. ':' .. reason)
  redis.call('HDEL', ckey, 'offered_ms', 'offer_expires_ms')
  inbox_add(P, agent, 'kind', 'revoked', 'conv', c.id, 'reason', reason, 'ts', now)
  notify(P, 'a:' .. agent)
  c.state, c.agent = 'queued', ''
  local q = queue_named(R, c.queue) or R.queues[#R.queues]
  local a = agent_read(P, agent)
  if a ~= nil and redis.call('SREM', P .. ':agent:' .. agent .. ':convs', c.id) == 1 then
    local ch = c.channel or 'chat'
    a['load_' .. ch] = tostring(math.max(0, load_of(a, ch) - 1))
    a.load = tostring(math.max(0, num(a.load, 1) - 1))
    redis.call('HSET', P .. ':agent:' .. agent, 'load_' .. ch, a['load_' .. ch], 'load', a.load)
  end
  if a ~= nil and reason == 'timeout' then
    local missed = redis.call('HINCRBY', P .. ':agent:' .. agent, 'missed_offers', 1)
    if missed >= num(R.max_missed_offers, 3) then
      set_presence(P, a, 'break', 'missed-offers', now)
    end
  end
  if a ~= nil then
    reindex(P, R, a)
  end
  route(P, R, c, q, now)
  if a ~= nil then
    pull_waiting(P, R, a, now)
  end
end

-- omr_offer_accept P conv agent -> "assigned"
local function offer_accept(keys, args)
  local P, conv, agent = keys[1], args[1], args[2]
  local c = conv_read(P, conv)
  if c == nil or c.agent ~= agent then
    return err('NOTASSIGNED', 'no offer of this conversation for this agent')
  end
  if c.state == 'assigned' then
    return 'assigned'
  end
  if c.state ~= 'offered' then
    return err('NOTASSIGNED', 'the offer is no longer open')
  end
  local a = agent_read(P, agent)
  redis.call('HSET', P .. ':agent:' .. agent, 'missed_offers', 0)
  deliver_assignment(P, c, a, now_ms())
  return 'assigned'
end

-- omr_offer_reject P conv agent reason -> "rejected"
local function offer_reject(keys, args)
  local P, conv, agent = keys[1], args[1], args[2]
  local c = conv_read(P, conv)
  if c == nil or c.agent ~= agent or c.state ~= 'offered' then
    return err('NOTASSIGNED', 'no open offer of this conversation for this agent')
  end
  local reason = args[3]
  if reason == nil or reason == '' then
    reason = 'rejected'
  end
  redis.call('HSET', P .. ':agent:' .. agent, 'missed_offers', 0)
  withdraw(P, rules(P), c, agent, 'rejected: ' .. reason, now_ms())
  return 'rejected'
end

-- omr_agent_seen P agent session -> "ok" | "replaced"
-- The desktop of this session is alive: push its loss timer forward.
local function agent_seen(keys, args)
  local P, id, session = keys[1], args[1], args[2]
  local a = agent_read(P, id)
  if a == nil or a.session ~= session then
    return 'replaced'
  end
  local now = now_ms()
  redis.call('HSET', P .. ':agent:' .. id, 'last_seen_ms', now)
  timer_add(P, now + num(rules(P).heartbeat_timeout_s, 30) * 1000,
    'lost|' .. id .. '|' .. session)
  return 'ok'
end

local function end_wrapup(P, R, a, ch, now)
  if num(a['wrapup_' .. ch], 0) == 0 then
    return
  end
  a['wrapup_' .. ch] = '0'
  redis.call('HSET', P .. ':agent:' .. a.id, 'wrapup_' .. ch, 0)
  reindex(P, R, a)
  pull_waiting(P, R, a, now)
end

-- omr_agent_wrapup_end P agent session channel -> "ok"
local function agent_wrapup_end(keys, args)
  local P, id = keys[1], args[1]
  local a = agent_read(P, id)
  if a == nil or a.session ~= args[2] then
    return err('REPLACED', 'another session of this agent took over')
  end
  end_wrapup(P, rules(P), a, args[3], now_ms())
  return 'ok'
end

-- ---- functions: timers -----------------------------------------------------

local function fire_escalation(P, R, c, step, now)
  local q = queue_named(R, c.queue)
  if c.state ~= 'queued' or (c.pref_agent or '') ~= '' or q == nil
    or num(c.step, 1) + 1 ~= step or q.steps[step] == nil then
    return
  end
  unqueue(P, c)
  local overflow = q.steps[step].overflow
  if overflow ~= nil and overflow ~= '' and queue_named(R, overflow) ~= nil then
    q = queue_named(R, overflow)
    c.step = 1
  else
    c.step = step
  end
  redis.call('HSET', P .. ':conv:' .. c.id, 'step', c.step)
  route(P, R, c, q, now)
end

local function fire_max_wait(P, R, c, queue, now)
  if c.state ~= 'queued' or c.queue ~= queue then
    return
  end
  local q = queue_named(R, queue)
  local action = q and q.max_wait_action or 'close'
  unqueue(P, c)
  if (c.pref_agent or '') ~= '' then
    redis.call('ZREM', P .. ':pref:' .. c.pref_agent, c.id)
    redis.call('HDEL', P .. ':conv:' .. c.id, 'pref_agent')
  end
  local target = string.match(action, '^overflow:(.+)$')
  if target and queue_named(R, target) then
    c.step = 1
    redis.call('HSET', P .. ':conv:' .. c.id, 'step', 1)
    local q2 = queue_named(R, target)
    if route(P, R, c, q2, now) == 'queued' and num(q2.max_wait_s, 0) > 0 then
      timer_add(P, now + q2.max_wait_s * 1000, 'max|' .. c.id .. '|' .. q2.name)
    end
    return
  end
  redis.call('HSET', P .. ':conv:' .. c.id, 'state', 'closed', 'closed_ms', now,
    'close_reason', 'max-wait')
  redis.call('SREM', P .. ':queued', c.id)
  redis.call('XADD', P .. ':conv:' .. c.id .. ':log', '*', 'kind', 'event', 'event', 'closed',
    'reason', 'max-wait', 'ts', now)
  notify(P, 'c:' .. c.id)
end

-- The sticky window passed: the conversation stops waiting for its agent.
local function fire_sticky(P, R, c, agent, now)
  if c.state ~= 'queued' or c.pref_agent ~= agent then
    return
  end
  redis.call('ZREM', P .. ':pref:' .. agent, c.id)
  redis.call('HDEL', P .. ':conv:' .. c.id, 'pref_agent')
  c.pref_agent = nil
  route(P, R, c, queue_named(R, c.queue) or R.queues[#R.queues], now)
end

-- The agent's desktop stopped answering: offline now, its work re-queued
-- after the grace period unless it comes back.
local function fire_lost(P, R, a, session, now)
  if a.session ~= session then
    return
  end
  redis.call('HSET', P .. ':agent:' .. a.id, 'session', '')
  set_presence(P, a, 'offline', 'lost', now)
  reindex(P, R, a)
  timer_add(P, now + num(R.agent_grace_s, 60) * 1000, 'requeue|' .. a.id .. '|' .. session)
end

-- Grace is over and the agent did not log in again: every conversation it
-- held goes back to routing with its original enqueue time.
local function fire_requeue(P, R, a, session, now)
  if (a.session or '') ~= '' then
    return -- a new desktop took over and keeps the conversations
  end
  for _, conv in ipairs(redis.call('SMEMBERS', P .. ':agent:' .. a.id .. ':convs')) do
    local c = conv_read(P, conv)
    if c ~= nil and c.agent == a.id and (c.state == 'assigned' or c.state == 'offered') then
      redis.call('XADD', P .. ':conv:' .. conv .. ':log', '*', 'kind', 'event', 'event',
        'requeued', 'reason', 'agent-lost', 'ts', now)
      notify(P, 'c:' .. conv)
      withdraw(P, R, c, a.id, 'agent-lost', now)
    end
  end
end

-- omr_tick P -> number of timers fired. Every instance calls it; whichever
-- runs first fires a due timer, exactly once.
local function tick(keys, args)
  local P = keys[1]
  local now = now_ms()
  local due = redis.call('ZRANGEBYSCORE', P .. ':timers', '-inf', now, 'LIMIT', 0, 200)
  if #due == 0 then
    return 0
  end
  local R = rules(P)
  for _, t in ipairs(due) do
    redis.call('ZREM', P .. ':timers', t)
    local kind, id, arg = string.match(t, '^(%a+)|([^|]+)|(.+)$')
    if kind == 'esc' or kind == 'max' or kind == 'offer' or kind == 'sticky' then
      local c = conv_read(P, id)
      if c ~= nil then
        if kind == 'esc' then
          fire_escalation(P, R, c, tonumber(arg), now)
        elseif kind == 'max' then
          fire_max_wait(P, R, c, arg, now)
        elseif kind == 'offer' and c.state == 'offered' and c.agent == arg then
          withdraw(P, R, c, arg, 'timeout', now)
        elseif kind == 'sticky' then
          fire_sticky(P, R, c, arg, now)
        end
      end
    elseif kind == 'wrapup' or kind == 'lost' or kind == 'requeue' then
      local a = agent_read(P, id)
      if a ~= nil then
        if kind == 'wrapup' then
          end_wrapup(P, R, a, arg, now)
        elseif kind == 'lost' then
          fire_lost(P, R, a, arg, now)
        else
          fire_requeue(P, R, a, arg, now)
        end
      end
    end
  end
  return #due
end

redis.register_function('omr_rules_load', rules_load)
redis.register_function('omr_agent_upsert', agent_upsert)
redis.register_function('omr_agent_get', agent_get)
redis.register_function('omr_agent_list', agent_list)
redis.register_function('omr_agent_remove', agent_remove)
redis.register_function('omr_agent_state', agent_state)
redis.register_function('omr_conv_start', conv_start)
redis.register_function('omr_conv_resume', conv_resume)
redis.register_function('omr_conv_message', conv_message)
redis.register_function('omr_conv_close', conv_close)
redis.register_function('omr_explain', explain)
redis.register_function('omr_agent_login', agent_login)
redis.register_function('omr_agent_presence', agent_presence)
redis.register_function('omr_agent_gone', agent_gone)
redis.register_function('omr_offer_accept', offer_accept)
redis.register_function('omr_offer_reject', offer_reject)
redis.register_function('omr_agent_seen', agent_seen)
redis.register_function('omr_agent_wrapup_end', agent_wrapup_end)
redis.register_function('omr_tick', tick)
