--
-- 30_agents.lua - Functions that manage rules and agents (omnirouterctl, the
-- daemon on connect).
--

-- ---- functions: rules and agents -------------------------------------------

-- omr_rules_load P json [instance] -> "loaded" | "unchanged" |
--                                     "replaced VERSION INSTANCE"
-- Stores the queues and channel rules, re-indexes every agent and re-homes
-- queued conversations (keeping their enqueue time) when they changed.
-- "replaced": they changed over rules another instance had pushed (its
-- configuration differs, or it was not reloaded yet): the daemon warns.
local function rules_load(keys, args)
  local P = keys[1]
  local by = args[2] or ''
  local new = decode(args[1], nil)
  if new == nil or type(new.queues) ~= 'table' or #new.queues == 0 then
    return err('BADARG', 'rules must be a JSON object with queues')
  end
  local old = decode(redis.call('GET', P .. ':rules'), {})
  local format = redis.call('GET', P .. ':index_format')
  -- P:rules_pushers: every instance that pushed the rules in force (the
  -- same ones again: 'unchanged'), so that whichever of them pushes other
  -- rules is told the others still run the old ones, whatever the start
  -- order (P:rules_by: the last to change them, as earlier versions keep it).
  local pushers = P .. ':rules_pushers'
  if old.version == new.version and format == INDEX_FORMAT then
    if by ~= '' then
      redis.call('SADD', pushers, by)
    end
    return 'unchanged'
  end
  local R = rules(P) -- (the old rules: whose instances count as alive)
  local now = now_ms()
  -- The names are daemon.instance_name, or the host; their running
  -- instances in P:instances are NAME-RANDOM or HOST-PID-RANDOM. The last to
  -- change the rules counts too: an earlier library does not keep the set.
  local names = redis.call('SMEMBERS', pushers)
  names[#names + 1] = redis.call('GET', P .. ':rules_by') or ''
  local live = {}
  for _, inst in ipairs(redis.call('ZRANGE', P .. ':instances', 0, -1)) do
    if instance_alive(P, R, inst, now) then
      live[#live + 1] = inst
    end
  end
  local others = {}
  for _, name in ipairs(names) do
    for _, inst in ipairs(live) do
      local rest = name ~= '' and name ~= by and string.sub(inst, 1, #name + 1) == name .. '-'
        and string.sub(inst, #name + 2)
      if rest and (string.find(rest, '^[^-]+$') or string.find(rest, '^%d+%-[^-]+$')) then
        others[#others + 1] = name
        break
      end
    end
  end
  table.sort(others)
  local old_by = others[1] or ''
  redis.call('SET', P .. ':rules', args[1])
  redis.call('SET', P .. ':rules_by', by)
  redis.call('DEL', pushers)
  if by ~= '' then
    redis.call('SADD', pushers, by)
  end
  redis.call('SET', P .. ':index_format', INDEX_FORMAT)
  R = rules(P)
  local rehome = {} -- what waits in a queue only, routed again below
  -- open: the tenant|channel pairs an available agent has room for (what
  -- waits in others is not looked at again below)
  local open = {}
  local free, free_agent = {}, {} -- the available agents' ids, and their records
  for _, id in ipairs(redis.call('SMEMBERS', P .. ':agents')) do
    local a = agent_read(P, id)
    if a ~= nil then
      if format ~= INDEX_FORMAT then
        -- Format 1 listed the agent's sets in P:agent:ID:idx.
        local idx = P .. ':agent:' .. id .. ':idx'
        for _, key in ipairs(redis.call('SMEMBERS', idx)) do
          redis.call('ZREM', key, id)
        end
        redis.call('DEL', idx)
      end
      reindex(P, R, a)
      if a.presence == 'available' then
        free[#free + 1], free_agent[id] = id, a
      end
      for ch in pairs(a.cap_t) do
        if can_take(R, a, ch) then
          for _, t in ipairs(a.tenants_t) do
            open[t .. '|' .. ch] = true
          end
        end
      end
      -- What the agent holds in a queue renamed or gone, and what it is
      -- offered (unless an agent transferred it, to that queue or to an
      -- agent): the queue the new rules give it (its wrap-up at the close, a
      -- transfer's checks, a rejected offer's route, as for what waits
      -- below). An offer whose customer left: the gone timer at the new
      -- chat.abandon_after_s (it takes the offer back when it is past).
      for _, conv in ipairs(redis.call('SMEMBERS', P .. ':agent:' .. id .. ':convs')) do
        local c = conv_read(P, conv)
        local q = c and (queue_named(R, c.queue) == nil or c.state == 'offered'
          and (c.transferred_to or '') == '') and queue_for(R, c, true)
        if q and q.name ~= c.queue then
          redis.call('HSET', P .. ':conv:' .. conv, 'queue', q.name, 'step', 1)
        end
        if c and c.state == 'offered' then
          arm_gone(P, R, c)
        end
      end
    end
  end
  for _, id in ipairs(redis.call('SMEMBERS', P .. ':queued')) do
    local c = conv_read(P, id)
    if c ~= nil and c.state == 'queued' and c.rlang == 'zh' and zh_rlang(c.lang) ~= 'zh' then
      -- Chinese an earlier version routed as plain zh: by its script now
      -- (its waiting set, by c.wait_key, is left below).
      c.rlang = zh_rlang(c.lang)
      redis.call('HSET', P .. ':conv:' .. id, 'rlang', c.rlang)
    end
    if c ~= nil and c.state == 'queued' then
      -- The new rules decide the queue; the step is kept only in the same
      -- queue, and the enqueue time always. One waiting for an agent (sticky,
      -- a transfer) or that an agent transferred (to a queue or an agent)
      -- stays in its queue while that still takes it; renamed or gone, it
      -- goes on in the one the new rules give it. Why it waits is kept for
      -- `explain`.
      local pref = (c.pref_agent or '') ~= ''
      local q = queue_for(R, c, not (pref or (c.transferred_to or '') ~= ''))
      c.trigger = c.wait_trigger
      if q ~= nil and (c.queue ~= q.name or num(c.step, 1) > #q.steps) then
        c.step = 1
      end
      -- Its agent free but no longer serving it under the new rules: it stops
      -- waiting for them (as pull_preferred would) and is routed with the
      -- rest below, in its turn, at the ladder step it has waited past (a busy
      -- agent's wait ends when they free up).
      local pa = pref and q ~= nil and agent_read(P, c.pref_agent)
      if pa and pa.presence == 'available' and serves(pa, q, num(c.step, 1), c) == nil then
        stop_waiting_for(P, c, 'agent ' .. pa.id .. ', whom it waited for, no longer serves it')
        c.wait_trigger, pref = c.trigger, false
      end
      -- The steps of its ladder already due (the new ladder's, counted as its
      -- timers count them), but not an overflow: taken now, so that the pass
      -- below routes it by priority rather than the timers by due time.
      if q ~= nil and not pref then
        local s = step_due(c, q, now)
        if s ~= num(c.step, 1) then
          c.step = s
          c.trigger = 'escalated to step ' .. s .. ' of queue ' .. q.name
          c.wait_trigger = c.trigger
        end
      end
      -- Its customer away longer than the new chat.abandon_after_s: closed
      -- (as at its gone timer), never handed to an agent below. Away for
      -- less: the gone timer at the new time, whatever comes of it below
      -- (waiting for an agent in particular or in a queue, offered).
      local gone = abandon_due(R, c)
      local abandoned = gone ~= nil and gone <= now and not customer_connected(P, R, id, now)
      if not abandoned then
        arm_gone(P, R, c)
      end
      if pref and (q == nil or abandoned) then
        stop_waiting_for(P, c)
        close_waiting(P, R, c, abandoned and 'abandoned' or 'no-queue', now)
      elseif abandoned then
        unqueue(P, c)
        close_waiting(P, R, c, 'abandoned', now)
      elseif pref then
        -- Its window's timer routes it if that agent does not take it: a
        -- returning customer's window at the queue's new value (from its
        -- start), a transfer's as it was. The queue's maximum wait at its
        -- new value, and its place among those waiting for that agent by
        -- the queue's new priority.
        c.queue = q.name
        redis.call('HSET', P .. ':conv:' .. id, 'queue', q.name, 'step', c.step)
        redis.call('ZADD', P .. ':pref:' .. c.pref_agent, wait_score(c, q), id)
        if c.transferred_to ~= 'agent|' .. c.pref_agent then
          timer_add(P, num(c.enqueued_ms, now) + num(q.sticky_window_s, 0) * 1000,
            'sticky|' .. id .. '|' .. c.pref_agent)
        end
        arm_max_wait(P, c, q, now)
      else
        unqueue(P, c)
        if q == nil then
          close_waiting(P, R, c, 'no-queue', now)
        elseif open[c.tenant .. '|' .. c.channel] then
          rehome[#rehome + 1] = {c = c, q = q, score = wait_score(c, q)}
        else
          enqueue(P, R, c, q, now)
        end
      end
    else
      redis.call('SREM', P .. ':queued', id)
    end
  end
  -- The free agents take first what waits for them in particular, as when
  -- they free up (in turn by agent id).
  table.sort(free)
  for _, id in ipairs(free) do
    local a = free_agent[id]
    while a.presence == 'available' and pull_preferred(P, R, a, now) do
    end
  end
  -- Then what waits is routed again, the highest priority first, then the
  -- oldest, each to the agent its queue's strategy picks (as a new
  -- conversation is), else to waiting (enqueue arms its maximum wait). Only
  -- the waiting sets a free agent is indexed for are sorted and tried: one
  -- look per set (its conversations have the same requirements). A set one
  -- of whose conversations then found no agent is not tried again in this
  -- pass, unless someone had declined that one (the others they may take).
  local servable, go = {}, {}
  for _, w in ipairs(rehome) do
    local c = w.c
    w.wk = wait_key(P, w.q.name, num(c.step, 1), c.channel, c.tenant, c.rlang)
    if servable[w.wk] == nil then
      local probe = {step = c.step, rlang = c.rlang, channel = c.channel, tenant = c.tenant,
        lang = c.lang, fresh = true}
      servable[w.wk] = best_agent(P, R, probe, w.q, now) ~= nil
    end
    if servable[w.wk] then
      go[#go + 1] = w
    else
      enqueue(P, R, c, w.q, now)
    end
  end
  for _, w in ipairs(in_wait_order(go)) do
    local c, q = w.c, w.q
    local state = false
    if servable[w.wk] then
      c.queue, c.trigger = q.name, 'rules reloaded'
      state = try_assign(P, R, c, q, now)
      if not state and select(2, declined_by(P, R, c.id, now)) == 0 then
        servable[w.wk] = false
      end
    end
    if not state then
      c.trigger = c.wait_trigger
      enqueue(P, R, c, q, now)
    end
  end
  -- What is left that a free agent can take (one passed over above: an
  -- agent had declined it, or gone from the index): in turn by agent id.
  for _, id in ipairs(free) do
    local a = agent_read(P, id)
    if a ~= nil and a.presence == 'available' then
      pull_waiting(P, R, a, now)
    end
  end
  if by ~= '' and old_by ~= '' and old_by ~= by and old.version ~= new.version then
    return 'replaced ' .. tostring(old.version) .. ' ' .. old_by
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

-- The desktop logged in with a token that no longer works is logged out:
-- told why ("o:AGENT|SESSION|REASON": token-revoked, token-reissued), and
-- its work re-queued after the grace period unless the agent logs in again
-- (with its new token) before.
local function log_out(P, a, reason)
  local R, now = rules(P), now_ms()
  if (a.session or '') ~= '' then
    notify(P, 'o:' .. a.id .. '|' .. a.session .. '|' .. reason)
    session_ended(P, R, a, a.session, reason, now)
    a.session = ''
  elseif lost_session_of(a) then
    -- Lost (its instance was cut off from Redis): that instance, back, must
    -- not restore it (agent_seen restores only a desktop lost and not ended).
    redis.call('HSET', P .. ':agent:' .. a.id, 'ended_reason', reason)
    a.ended_reason = reason
    set_presence(P, a, 'offline', reason, now)
  else
    return
  end
  -- Logged out by the site: an offer it had open goes to the next agent
  -- now, not as its decline (as when the site sets it offline); it keeps
  -- what it was assigned for the grace period, as any desktop that ended.
  end_waits_for(P, R, a.id, now, held_in_wait_order(P, R, a, function(c)
    return c.state == 'offered'
  end))
end

-- omr_agent_upsert P id json -> "created" | "updated"
-- json: the fields to set (name, tenants, skills, languages, capacity,
-- supervises, token_sha); must_exist: refuse (NOAGENT) instead of creating;
-- skills_add {id = level} and skills_remove [id] edit the skills (after
-- skills, when both are given), here so concurrent edits are not lost.
-- Everything is checked before anything is written.
local function agent_upsert(keys, args)
  local P, id = keys[1], args[1]
  local spec = decode(args[2], nil)
  if spec == nil then
    return err('BADARG', 'agent must be a JSON object')
  end
  -- supervises: the agents whose conversations this one may read
  -- (47_supervisor.lua).
  if spec.supervises ~= nil then
    local list, seen = spec.supervises, {}
    if type(list) ~= 'table' or #list > 500 then
      return err('BADARG', 'supervises is a list of at most 500 agent ids')
    end
    for k, s in pairs(list) do
      if type(k) ~= 'number' or type(s) ~= 'string' or #s > 128 or not s:match('^[%w._:@-]+$')
        or s == id or seen[s] then
        return err('BADARG', 'supervises: agent ids, each once, not the agent itself')
      end
      seen[s] = true
    end
  end
  local akey = P .. ':agent:' .. id
  local a = agent_read(P, id)
  local created = a == nil
  if created and spec.must_exist then
    return err('NOAGENT', 'no such agent')
  end
  if created and (type(spec.name) ~= 'string' or spec.name == '') then
    return err('BADARG', 'a new agent needs a name')
  end
  local bad = valid_levels(spec.skills or {}, 'skill') or valid_levels(spec.languages or {},
    'language') or valid_levels(spec.skills_add or {}, 'skill')
  if bad then
    return err('BADARG', bad)
  end
  for k, v in pairs(spec.skills_remove or {}) do
    if type(k) ~= 'number' or type(v) ~= 'string' then
      return err('BADARG', 'skills_remove is a list of skill ids')
    end
  end
  for k, v in pairs(spec.capacity or {}) do
    if not contains(CHANNELS, k) or type(v) ~= 'number' or v < 0 or v > 100 then
      return err('BADARG', 'capacity is chat/email/voice: 0-100')
    end
  end
  local now = now_ms()
  if created then
    a = {id = id, presence = 'offline', reason = '', load = '0', last_assign_ms = '0',
      tenants_t = {}, skills_t = {}, langs_t = {}, cap_t = {chat = 1}}
  end
  if spec.name then a.name = spec.name end
  if spec.tenants then a.tenants_t = spec.tenants end
  if spec.skills then a.skills_t = spec.skills end
  if spec.languages then a.langs_t = spec.languages end
  if spec.capacity then a.cap_t = spec.capacity end
  if spec.skills_add or spec.skills_remove then
    local skills = {}
    for k, v in pairs(a.skills_t) do skills[k] = v end
    for k, v in pairs(spec.skills_add or {}) do skills[k] = v end
    for _, k in ipairs(spec.skills_remove or {}) do skills[k] = nil end
    a.skills_t = skills
  end
  if #a.tenants_t == 0 then
    return err('BADARG', 'an agent serves at least one tenant')
  end
  if created then
    redis.call('HSET', akey, 'presence', 'offline', 'reason', '', 'load', 0, 'last_assign_ms', 0,
      'created_ms', now, 'presence_since_ms', now)
  end
  redis.call('HSET', akey, 'name', a.name, 'tenants', cjson.encode(a.tenants_t),
    'skills', cjson.encode(a.skills_t), 'languages', cjson.encode(a.langs_t),
    'capacity', cjson.encode(a.cap_t))
  if spec.token_sha and spec.token_sha ~= '' then
    redis.call('HSET', akey, 'token_sha', spec.token_sha)
    if not created and a.token_sha ~= spec.token_sha then
      log_out(P, a, 'token-reissued') -- the old token's desktop
    end
  end
  if spec.supervises ~= nil and #spec.supervises > 0 then
    redis.call('HSET', akey, 'supervises', cjson.encode(spec.supervises))
  elseif spec.supervises ~= nil then
    redis.call('HDEL', akey, 'supervises')
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
    wrapup_until_ms = wrapup, missed_offers = num(a.missed_offers, 0), conversations = convs,
    supervises = decode(a.supervises, {})}
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
  local R = rules(P)
  reindex(P, R, a)
  redis.call('DEL', akey, akey .. ':convs', akey .. ':inbox', akey .. ':presence')
  end_waits_for(P, R, id, now_ms(), nil, 'was removed')
  redis.call('SREM', P .. ':agents', id)
  if a.session ~= nil and a.session ~= '' then
    notify(P, 'o:' .. id .. '|' .. a.session .. '|agent-removed')
  end
  return 'removed'
end

-- omr_agent_revoke P id -> "revoked"
-- The token stops working and a desktop logged in now is logged out.
local function agent_revoke(keys, args)
  local P, id = keys[1], args[1]
  local a = agent_read(P, id)
  if a == nil then
    return err('NOAGENT', 'no such agent')
  end
  redis.call('HDEL', P .. ':agent:' .. id, 'token_sha')
  log_out(P, a, 'token-revoked')
  return 'revoked'
end

local STATES = {available = true, away = true, busy = true, ['break'] = true, offline = true}

-- asked: the desktop asked for it (its answer says the state; no notice).
local function change_state(P, a, state, reason, asked)
  if not STATES[state] then
    return err('BADARG', 'state must be available, away, busy, break or offline')
  end
  local now = now_ms()
  local R = rules(P)
  local was = a.presence
  set_presence(P, a, state, reason, now, asked)
  reindex(P, R, a)
  if state == 'offline' then
    -- Set offline by the site: not waited for (sticky, a transfer), and an
    -- offer it has open goes to the next agent (not as its decline), all in
    -- wait order.
    end_waits_for(P, R, a.id, now, held_in_wait_order(P, R, a, function(c)
      return c.state == 'offered'
    end))
  elseif state == 'available' and was ~= 'available' and num(a.missed_offers, 0) > 0 then
    -- Back (from the break missed offers put it on, or any other): the
    -- offers it misses in a row count from zero again.
    redis.call('HSET', P .. ':agent:' .. a.id, 'missed_offers', 0)
    a.missed_offers = '0'
  end
  pull_waiting(P, R, a, now)
  return state
end

-- omr_agent_state P id state reason -> state (administrator)
-- Not available without a desktop: work given to it would reach nobody,
-- and no heartbeat would ever take it back.
local function agent_state(keys, args)
  local a = agent_read(keys[1], args[1])
  if a == nil then
    return err('NOAGENT', 'no such agent')
  end
  if args[2] == 'available' and (a.session or '') == '' then
    return err('NOSESSION', 'the agent has no desktop logged in: it cannot be made available')
  end
  return change_state(keys[1], a, args[2], args[3] or '')
end
