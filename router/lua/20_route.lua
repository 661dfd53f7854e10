--
-- 20_route.lua - conversations: assignment and offers, the best agent for a
-- conversation, waiting sets, queue matching, and filling an agent that frees up.
--

-- ---- conversations ---------------------------------------------------------

local function customer_key(P, tenant, customer)
  return P .. ':customer:' .. tenant .. '|' .. customer
end

-- The customer's latest conversations. '|' never appears in an id, so no
-- customer's hash can be another's list (it was "...:convs" before 2026-12,
-- which the hash of a customer id ending in ":convs" collided with).
local function customer_convs_key(P, tenant, customer)
  return customer_key(P, tenant, customer) .. '|convs'
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

-- Sorts {c = conversation, score = wait_score} records as the queues serve
-- them: the highest priority first, then the oldest, then by id.
local function in_wait_order(list)
  table.sort(list, function(x, y)
    return x.score < y.score or (x.score == y.score and x.c.id < y.c.id)
  end)
  return list
end

-- c as an in_wait_order record, scored in its queue (priority 0 when the
-- rules no longer have it).
local function wait_record(R, c)
  return {c = c, score = wait_score(c, queue_named(R, c.queue or '') or {})}
end

-- The conversations agent a holds for which keep(c) is true, in the order
-- the queues serve them (in_wait_order): routed again one by one (its
-- desktop lost, set offline), the first may take the only free agent.
local function held_in_wait_order(P, R, a, keep)
  local held = {}
  for _, conv in ipairs(redis.call('SMEMBERS', P .. ':agent:' .. a.id .. ':convs')) do
    local c = conv_read(P, conv)
    if c ~= nil and c.agent == a.id and keep(c) then
      held[#held + 1] = wait_record(R, c)
    end
  end
  return in_wait_order(held)
end

-- Puts the assignment (time ts) and the transcript so far (the messages,
-- and the notes of earlier transfers; its newest max entries, default
-- COPY_MAX) in the agent's inbox.
local function send_assignment(P, c, a, ts, max)
  local ckey = P .. ':conv:' .. c.id
  -- Its history: the customer's conversations before it (the list is newest first) that are
  -- closed, as omr_conv_history lets the agent read them (one still open is another
  -- agent's, or waits).
  local earlier = {}
  if (c.customer or '') ~= '' then
    local after = false
    for _, id in ipairs(redis.call('LRANGE', customer_convs_key(P, c.tenant, c.customer), 0,
      HISTORY_CONVS - 1)) do
      if id == c.id then
        after = true
      elseif after and redis.call('HGET', P .. ':conv:' .. id, 'state') == 'closed' then
        earlier[#earlier + 1] = id
      end
    end
  end
  inbox_add(P, a.id, 'kind', 'assigned', 'conv', c.id, 'lang', c.lang or '', 'name', c.name or '',
    'tenant', c.tenant or '', 'queue', c.queue or '', 'customer', c.customer or '',
    'history', table.concat(earlier, ','), 'ts', int(ts))
  -- (a conversation started in this call has no transcript yet)
  local log = c.fresh and {} or transcript(ckey .. ':log', max)
  for _, entry in ipairs(log) do
    local f = {}
    for i = 1, #entry[2], 2 do
      f[entry[2][i]] = entry[2][i + 1]
    end
    if f.kind == 'message' then
      inbox_add(P, a.id, 'kind', 'message', 'conv', c.id, 'from', f.from or '', 'msgid',
        f.msgid or '', 'text', f.text or '', 'name', f.name or '', 'ts', f.ts or '')
    elseif f.kind == 'event' and f.event == 'transferred' then
      -- who passed it on, and the note left for the next agent
      inbox_add(P, a.id, 'kind', 'transferred', 'conv', c.id, 'name', f.name or '', 'text',
        f.text or '', 'ts', f.ts or '')
    end
  end
  if (c.left_ms or '') ~= '' then
    -- its customer has no connection open now (omr_conv_left)
    inbox_add(P, a.id, 'kind', 'customer-left', 'conv', c.id, 'ts', c.left_ms)
  end
end

-- Delivers the assignment: the agent's inbox gets it with the transcript,
-- the customer's transcript an "assigned" event.
local function deliver_assignment(P, c, a, now, state_written)
  local ckey = P .. ':conv:' .. c.id
  if not state_written then
    redis.call('HSET', ckey, 'state', 'assigned', 'assigned_ms', int(now))
  end
  -- The queue's recent wait (moving average): what a waiting customer is
  -- told, how long conversations waited for their first agent, from the
  -- enqueue to the assignment (offers rejected or timed out on the way
  -- count: the customer still waited). One an agent held before
  -- (transferred, its agent lost: requeued_ms) is not counted: a hand-over to
  -- a free agent would count as no wait at all.
  if num(c.requeued_ms, 0) == 0 then
    local field = 'wait_ewma_ms:' .. (c.queue or '')
    local waited = math.max(0, now - num(c.enqueued_ms, now))
    local old = tonumber(redis.call('HGET', P .. ':qstats', field) or '')
    redis.call('HSET', P .. ':qstats', field, int(math.floor(old and (0.8 * old + 0.2 * waited)
      or waited)))
  end
  send_assignment(P, c, a, now)
  redis.call('XADD', ckey .. ':log', '*', 'kind', 'event', 'event', 'assigned', 'name',
    a.name or '', 'ts', int(now))
  notify(P, 'a:' .. a.id)
  notify(P, 'c:' .. c.id)
end

-- Offers conversation c to agent a until `expires`: its inbox item, whose
-- id the conversation keeps (offer_seen).
local function send_offer(P, c, a, expires, now)
  local item = inbox_add(P, a.id, 'kind', 'offer', 'conv', c.id, 'lang', c.lang or '', 'name',
    c.name or '', 'tenant', c.tenant or '', 'queue', c.queue or '', 'expires', int(expires), 'ts',
    int(now))
  redis.call('HSET', P .. ':conv:' .. c.id, 'offer_item', item)
  return item
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
  if offer then
    redis.call('HSET', ckey, 'state', 'offered', 'agent', a.id, 'queue', c.queue or '', 'step',
      int(num(c.step, 1)))
  else
    redis.call('HSET', ckey, 'state', 'assigned', 'agent', a.id, 'queue', c.queue or '', 'step',
      int(num(c.step, 1)), 'assigned_ms', int(now))
  end
  -- The explanation has a key of its own: a value this long (over
  -- hash-max-listpack-value) would turn the conversation's hash from a
  -- listpack into a hashtable, three times the memory.
  redis.call('SET', ckey .. ':explain', cjson.encode(why))
  if (c.pref_agent or '') ~= '' then
    redis.call('HDEL', ckey, 'pref_agent')
  end
  if not c.fresh then
    redis.call('SREM', P .. ':queued', c.id)
  end
  a['load_' .. ch] = istr(load_of(a, ch) + 1)
  a.load = istr(num(a.load, 0) + 1)
  a.last_assign_ms = int(now)
  redis.call('HSET', P .. ':agent:' .. a.id, 'load_' .. ch, a['load_' .. ch], 'load', a.load,
    'last_assign_ms', a.last_assign_ms)
  redis.call('SADD', P .. ':agent:' .. a.id .. ':convs', c.id)
  reindex(P, R, a)
  if not offer then
    deliver_assignment(P, c, a, now, true)
    return 'assigned'
  end
  local expires = now + num(q.offer_timeout_s, 30) * 1000
  send_offer(P, c, a, expires, now)
  redis.call('HSET', ckey, 'offered_ms', int(now), 'offer_expires_ms', int(expires))
  timer_add(P, expires, 'offer|' .. c.id .. '|' .. a.id)
  notify(P, 'a:' .. a.id)
  return 'offered'
end

-- An agent who declined a conversation (rejected or missed an offer it
-- received, or transferred it away) is not offered it again for
-- R.decline_hold_s: P:conv:ID:decl, agent -> when. Then it may come back
-- to them (the `decl` timer makes the agent look at the waiting work), so a
-- conversation only they can serve does not wait for good.
local function decline_hold_ms(R)
  return num(R.decline_hold_s, 300) * 1000
end

-- A decline holds for R.decline_hold_s, and only against the agent who made
-- it: not against a new agent given a removed agent's id since (created_ms
-- later than the decline).
local function declined_by(P, R, conv, now)
  local out, n, hold = {}, 0, decline_hold_ms(R)
  local flat = redis.call('HGETALL', P .. ':conv:' .. conv .. ':decl')
  for i = 1, #flat, 2 do
    -- ('?AGENT': an offer its desktop never got timed out once, take_back)
    local t = num(flat[i + 1], 0)
    if string.byte(flat[i], 1) ~= 63 and now - t < hold
      and t >= num(redis.call('HGET', P .. ':agent:' .. flat[i], 'created_ms'), 0) then
      out[flat[i]] = true
      n = n + 1
    end
  end
  return out, n
end

local function has_declined(P, R, conv, a, now)
  local t = num(redis.call('HGET', P .. ':conv:' .. conv .. ':decl', a.id), nil)
  return t ~= nil and now - t < decline_hold_ms(R) and t >= num(a.created_ms, 0)
end

local function decline(P, R, conv, agent, now)
  redis.call('HSET', P .. ':conv:' .. conv .. ':decl', agent, int(now))
  if decline_hold_ms(R) > 0 then
    timer_add(P, now + decline_hold_ms(R), 'decl|' .. agent .. '|' .. conv)
  end
end

-- The best available agent for conversation c where it waits now (queue,
-- step): the lowest score across the availability sets of every language the
-- step accepts and every tier up to the step's. Returns agent id (or nil),
-- the explanation and the set it was found in.
local function best_agent(P, R, c, q, now)
  local s = num(c.step, 1)
  local best, best_score, best_lang, best_key = nil, nil, nil, nil
  local considered = {}
  -- Agents who declined or missed this conversation's offer are skipped;
  -- reading that many more heads per set still finds the best other one.
  local declined, n = {}, 0
  if not c.fresh then
    declined, n = declined_by(P, R, c.id, now)
  end
  local tier = q.step_tier[s] or #q.tiers -- read tiers 1..tier
  for _, l in ipairs(step_langs(q, s, c.rlang)) do
    for i = 1, tier do
      local key = avail_key(P, q.chain.name, i, c.channel, c.tenant, l)
      local head = redis.call('ZRANGE', key, '0', int(2 + n), 'WITHSCORES')
      for j = 1, #head, 2 do
        local id, score = head[j], tonumber(head[j + 1])
        if not declined[id] then
          if #considered < EXPLAIN_MAX then
            -- the score as Redis wrote it: cjson would keep 14 of its 15 digits
            considered[#considered + 1] = {agent = id, score = head[j + 1], language = l}
          end
          if best == nil or score < best_score or (score == best_score and id < best) then
            best, best_score, best_lang, best_key = id, score, l, key
          end
        end
      end
    end
  end
  local why = {queue = q.name, step = s, strategy = q.strategy or 'least_loaded',
    language = c.lang, language_matched = best_lang, candidates = considered}
  return best, why, best_key
end

-- The language in which agent a could serve conversation c at ladder step s
-- of queue q (its tenant, some capacity on the channel, the step's skills, a
-- language the step accepts at the queue's proficiency), or nil: what its
-- availability sets would say, free capacity aside.
local function serves(a, q, s, c)
  if not contains(a.tenants_t, c.tenant) or num(a.cap_t[c.channel], 0) <= 0
    or not skills_ok(a, q, s) then
    return nil
  end
  local served = route_langs(a)
  for _, l in ipairs(step_langs(q, s, c.rlang)) do
    if num(served[l], 0) >= num(q.min_proficiency, 1) then
      return l
    end
  end
  return nil
end

local function explain_skills(q, s, a)
  local out = {}
  for skill, lvl in pairs(step_requires(q, s)) do
    out[skill] = {required = lvl, agent = num(a.skills_t[skill], 0)}
  end
  return out
end

local function try_assign(P, R, c, q, now)
  local id, why, key = best_agent(P, R, c, q, now)
  if id == nil then
    return false
  end
  local a = agent_read(P, id)
  if a == nil then
    -- A removed agent left in an index: drop it; the next decision retries.
    redis.call('ZREM', key, id)
    return false
  end
  if not can_take(R, a, c.channel) then
    reindex(P, R, a)
    return false
  end
  why.agent, why.at_ms, why.skills = id, now, explain_skills(q, num(c.step, 1), a)
  -- (c.trigger: what routed it again, set by whoever did)
  why.trigger = c.fresh and 'new conversation' or c.trigger or 'routed again'
  return assign(P, R, c, a, why, now) -- "assigned" or "offered"
end

-- Every instance says it is alive at each omr_tick (P:instances, instance
-- -> ms); one silent for longer than routing.heartbeat_timeout_s, plus the
-- longest routing.tick_ms (10 s) between two ticks of a live one, stopped.
-- A silence counts from P:instances:resumed at the earliest: the last tick
-- after a pause during which no instance ticked (Redis stalled: nobody
-- could; instance_ticks).
local function instance_silent_ms(R)
  return num(R.heartbeat_timeout_s, 30) * 1000 + 10000
end

local function instance_silent_for(P, at, now)
  return now - math.max(num(at, 0), num(redis.call('GET', P .. ':instances:resumed'), 0))
end

local function instance_alive(P, R, instance, now)
  local at = redis.call('ZSCORE', P .. ':instances', instance)
  return at ~= false and instance_silent_for(P, at, now) < instance_silent_ms(R)
end

-- A customer's connection is "INSTANCE:CONN"; P:inst:INSTANCE:convs holds
-- the conversations an instance has (or had, when it stopped) customers'
-- connections on (omr_tick's reap_instance).
local function instance_of(session)
  return string.match(session, '^(.*):[^:]*$') or session
end

-- Whether the customer has a connection open on conv: one of an instance
-- that is alive (a drain or a crash never reports its customers gone). The
-- members of an instance that stopped ticking are not counted, and kept: one
-- that was only frozen or cut off from Redis for a while ticks again, and
-- its connections count again (fire_gone looks before it closes anything).
-- They go with the conversation's other keys.
local function customer_connected(P, R, conv, now)
  for _, m in ipairs(redis.call('SMEMBERS', P .. ':conv:' .. conv .. ':cust')) do
    if instance_alive(P, R, instance_of(m), now) then
      return true
    end
  end
  return false
end

local function instance_convs_key(P, instance)
  return P .. ':inst:' .. instance .. ':convs'
end

-- When c, whose customer left (`left_ms`, omr_conv_left), is taken for
-- abandoned under the rules now (nil: never, chat.abandon_after_s 0, or the
-- customer is here).
local function abandon_due(R, c)
  local s = num(R.abandon_s, 0)
  if s <= 0 or (c.left_ms or '') == '' then
    return nil
  end
  return num(c.left_ms, 0) + s * 1000
end

-- When c's maximum wait in queue `queue` started: its original enqueue time,
-- or when a maximum wait moved it there (`maxw_from` "QUEUE|MS"), or when an
-- agent who held it gave it back (`requeued_ms`: a transfer, its agent
-- lost), whichever is last: time with an agent is not waiting.
local function max_wait_from(c, queue, now)
  local q, ms = string.match(c.maxw_from or '', '^(.*)|(%d+)$')
  local from = q == queue and tonumber(ms) or num(c.enqueued_ms, now)
  return math.max(from, num(c.requeued_ms, 0))
end

-- Arms c's maximum wait in queue q (if it has one), at the rules' value.
local function arm_max_wait(P, c, q, now)
  if num(q.max_wait_s, 0) > 0 then
    timer_add(P, max_wait_from(c, q.name, now) + q.max_wait_s * 1000,
      'max|' .. c.id .. '|' .. q.name)
  end
end

-- Puts c on the waiting set of its current slot and arms its next timer.
-- The customer-left timer of c's departure at chat.abandon_after_s as the
-- rules say now (fire_gone closes what still waits or is offered then).
local function arm_gone(P, R, c)
  local due = abandon_due(R, c)
  if due ~= nil then
    timer_add(P, due, 'gone|' .. c.id .. '|' .. c.left_ms)
  end
end

-- When c's ladder started: its enqueue time, or when an agent who held it
-- gave it back (a transfer to a queue is not overflowed away at once for
-- the time the customer spent with the agent).
local function ladder_from(c, now)
  return math.max(num(c.enqueued_ms, now), num(c.requeued_ms, 0))
end

-- The step of q's ladder c has reached by now: from its own, the later steps
-- already due (counted as their timers count them), but not an overflow step
-- (its timer moves it).
local function step_due(c, q, now)
  local from, s = ladder_from(c, now), num(c.step, 1)
  while q.steps[s + 1] ~= nil and (q.steps[s + 1].overflow or '') == ''
    and from + num(q.steps[s + 1].after_s, 0) * 1000 <= now do
    s = s + 1
  end
  return s
end

local function enqueue(P, R, c, q, now)
  local s = num(c.step, 1)
  local wk = wait_key(P, q.name, s, c.channel, c.tenant, c.rlang)
  redis.call('ZADD', wk, wait_score(c, q), c.id)
  redis.call('SADD', waitlangs_key(P, q.name, s, c.channel, c.tenant), c.rlang)
  -- (wait_trigger: why it waits, for the explanation while it does)
  redis.call('HSET', P .. ':conv:' .. c.id, 'state', 'queued', 'queue', q.name, 'step', s,
    'wait_key', wk, 'queued_ms', int(num(c.queued_ms, num(c.enqueued_ms, now))),
    'wait_trigger', c.fresh and 'new conversation' or c.trigger or '')
  redis.call('SADD', P .. ':queued', c.id)
  c.state, c.queue, c.wait_key = 'queued', q.name, wk
  -- The queue's maximum wait, from the original enqueue time, whichever way
  -- the conversation came here (started, declined, its agent lost,
  -- escalated, transferred; a max-wait overflow counts the new queue's wait
  -- from the overflow). Armed again each time, at the rules' current value
  -- (a reload that changed it re-queues what waits).
  arm_max_wait(P, c, q, now)
  -- Waiting again (transferred, its agent lost, a reload) while its
  -- customer is away: the abandonment clock of that departure (fire_gone).
  arm_gone(P, R, c)
  local nxt = q.steps[s + 1]
  if nxt ~= nil then
    timer_add(P, ladder_from(c, now) + num(nxt.after_s, 0) * 1000,
      'esc|' .. c.id .. '|' .. (s + 1))
  end
end

-- Takes conv out of waiting set wk; the set's language leaves the slot's
-- waitlangs once nothing waits in it.
local function wait_remove(P, wk, conv)
  redis.call('ZREM', wk, conv)
  if redis.call('ZCARD', wk) == 0 then
    local x = slot_parts(string.sub(wk, #P + 7)) -- after "P:wait:"
    redis.call('SREM', waitlangs_key(P, x[1], x[2], x[3], x[4]), x[5])
  end
end

local function unqueue(P, c)
  if c.wait_key and c.wait_key ~= '' then
    wait_remove(P, c.wait_key, c.id)
  end
end

-- Routes c in queue q from step c.step: to an agent now, else to waiting;
-- closed as abandoned instead when its customer left long enough ago.
local function route(P, R, c, q, now)
  local gone = abandon_due(R, c)
  -- (one whose instance was only frozen for a while is back: its gone timer
  -- tells the agent)
  if gone ~= nil and gone <= now and not customer_connected(P, R, c.id, now) then
    close_waiting(P, R, c, 'abandoned', now) -- nobody is handed a chat nobody is in
    return 'closed'
  end
  -- A step is kept only in its own queue and while the ladder has it (a
  -- rules reload may have shortened or removed the ladder it was on).
  if c.queue ~= q.name or num(c.step, 1) > #q.steps then
    c.step = 1
  end
  c.queue = q.name
  -- Routed again (an offer rejected or timed out, its agent lost, its wait
  -- for an agent in particular over): at the step its wait has reached, as
  -- its timers would have moved it meanwhile, not one tick per step later
  -- (when a newer conversation may take the agent, or its maximum wait end
  -- it at a step that finds nobody).
  local s = step_due(c, q, now)
  if s ~= num(c.step, 1) and string.find(c.trigger or '', '^escalated to step ') then
    c.trigger = 'escalated to step ' .. s .. ' of queue ' .. q.name -- (its timer came late)
  end
  c.step = s
  local state = try_assign(P, R, c, q, now)
  if state then
    return state
  end
  enqueue(P, R, c, q, now)
  return 'queued'
end

-- Queue q takes conversations of c's tenant and channel.
local function takes(q, c)
  return (#(q.tenants or {}) == 0 or contains(q.tenants, c.tenant))
    and (#(q.channels or {}) == 0 or contains(q.channels, c.channel))
end

-- The first queue that takes a conversation: tenant, channel, language,
-- requested skills and customer attributes.
local function match_queue(R, c, attrs, skills)
  for _, q in ipairs(R.queues) do
    local ok = takes(q, c) and (#(q.languages or {}) == 0 or contains(q.languages, c.rlang))
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

-- The queue conversation c routes in now: its own while that still takes it
-- (unless rematch: a rules reload lets the new rules decide), else the first
-- queue that matches it, else its own if it still takes its tenant and
-- channel; nil when no queue can serve it.
local function queue_for(R, c, rematch)
  local own = queue_named(R, c.queue)
  if own ~= nil and not rematch and takes(own, c) then
    return own
  end
  local q = match_queue(R, c, decode(c.attrs, {}), decode(c.skills, {}))
  if q ~= nil then
    return q
  end
  return own ~= nil and takes(own, c) and own or nil
end

-- Routes c again in the queue that now takes it (queue_for), or closes it
-- (reason no-queue) when none does: it would wait forever otherwise.
local function reroute(P, R, c, now, rematch)
  local q = queue_for(R, c, rematch)
  if q == nil then
    close_waiting(P, R, c, 'no-queue', now)
    return 'closed'
  end
  return route(P, R, c, q, now)
end

-- c stops waiting for one agent in particular (sticky, a transfer:
-- P:pref:AGENT); why (for `explain`) becomes its trigger, if given.
local function stop_waiting_for(P, c, why)
  redis.call('ZREM', P .. ':pref:' .. c.pref_agent, c.id)
  redis.call('HDEL', P .. ':conv:' .. c.id, 'pref_agent')
  c.pref_agent, c.trigger = nil, why or c.trigger
end

-- Conversations waiting for agent `id` in particular (sticky, a transfer)
-- stop waiting: it went offline or was removed. `offers` (held_in_wait_order
-- records: the offers it had open, when the site set it offline) are taken
-- back in the same pass, every one of them routed again in wait order.
-- how: what became of the agent, for the trigger ('went offline' unless said).
local function end_waits_for(P, R, id, now, offers, how)
  local pkey = P .. ':pref:' .. id
  local list = offers or {}
  for _, conv in ipairs(redis.call('ZRANGE', pkey, 0, -1)) do
    local c = conv_read(P, conv)
    if c ~= nil and c.state == 'queued' and c.pref_agent == id then
      local w = wait_record(R, c)
      w.waits = true
      list[#list + 1] = w
    end
  end
  for _, w in ipairs(in_wait_order(list)) do
    if w.waits then
      stop_waiting_for(P, w.c,
        'agent ' .. id .. ', whom it waited for, ' .. (how or 'went offline'))
      reroute(P, R, w.c, now, false)
    else
      withdraw(P, R, w.c, id, 'agent-offline', now)
    end
  end
  redis.call('DEL', pkey)
end

-- Whether conversation c, whose `agent` names a, was assigned to this agent
-- and not to an earlier one with the same id (removed, then created again).
local function held_by_this_agent(c, a)
  local since = c.state == 'offered' and c.offered_ms or c.assigned_ms
  return num(since, 0) >= num(a.created_ms, 0)
end

-- The session of agent a's desktop taken for lost (its instance could not vouch for it in
-- time: frozen, cut off from Redis) that nothing ended since: no login took over, no
-- revocation logged it out, the desktop did not close. Its instance, back, vouches for it
-- again (agent_seen), and what it sent meanwhile is its own. The presence does not say: the
-- site may have set one while the desktop was lost. Agents stored before ended_reason was
-- kept: offline as lost.
local function lost_session_of(a)
  if (a.session or '') ~= '' or (a.lost_session or '') == '' then
    return nil
  end
  local lost
  if a.ended_reason ~= nil then
    lost = a.ended_reason == 'lost'
  else
    lost = a.presence == 'offline' and a.reason == 'lost'
  end
  return lost and a.lost_session or nil
end

-- Whether session is the desktop of agent `id`: its current one, or one lost and not ended.
-- Reads the fields that say so, not the whole agent.
local function desktop_session(P, id, session)
  local f = redis.call('HMGET', P .. ':agent:' .. id, 'session', 'lost_session', 'ended_reason',
    'presence', 'reason')
  if f[1] and f[1] ~= '' then
    return f[1] == session
  end
  return lost_session_of({session = '', lost_session = f[2] or nil, ended_reason = f[3] or nil,
    presence = f[4] or nil, reason = f[5] or nil}) == session
end

-- Agent a's desktop (session) is gone: closed, lost, or logged out by its
-- token's revocation or reissue. Offline with `reason`, no longer waited
-- for, and what it holds goes back to routing when the grace period ends,
-- unless it logs in again before (fire_requeue). `...`: more agent fields
-- to set (fire_lost keeps what agent_seen restores).
local function session_ended(P, R, a, session, reason, now, ...)
  redis.call('HSET', P .. ':agent:' .. a.id, 'session', '', 'lost_session', session,
    'ended_reason', reason, ...)
  a.session, a.lost_session, a.ended_reason = '', session, reason
  -- (no desktop to tell: set_presence says nothing)
  set_presence(P, a, 'offline', reason, now)
  reindex(P, R, a)
  end_waits_for(P, R, a.id, now) -- an offline agent is not waited for
  timer_add(P, now + num(R.agent_grace_s, 60) * 1000, 'requeue|' .. a.id .. '|' .. session)
end

-- Fills the agent's free capacity from the waiting sets it can serve, the
-- highest priority then the longest waiting first, across all its queues.
-- Cost: one ZRANGE per (slot, language) the agent is indexed in.
-- The head of waiting set wk that agent id may take (not one it declined
-- within R.decline_hold_s).
local function wait_head(P, R, wk, a, now)
  local from = 0
  while true do
    local head = redis.call('ZRANGE', wk, from, from + 9, 'WITHSCORES')
    for i = 1, #head, 2 do
      if not has_declined(P, R, head[i], a, now) then
        return head[i], tonumber(head[i + 1])
      end
    end
    if #head < 20 then
      return nil, nil
    end
    -- Ten in a row this agent declined (nobody else took them yet): the
    -- next ten. The cost grows only with what this agent declined.
    from = from + 10
  end
end

-- A conversation waiting for this agent in particular (sticky routing) that
-- the agent can take now.
local function pull_preferred(P, R, a, now)
  local pkey = P .. ':pref:' .. a.id
  local from = 0
  while true do
    local page = redis.call('ZRANGE', pkey, from, from + 9)
    for _, conv in ipairs(page) do
      local c = conv_read(P, conv)
      local q = c and queue_named(R, c.queue)
      if c == nil or c.state ~= 'queued' or c.pref_agent ~= a.id then
        redis.call('ZREM', pkey, conv)
        from = from - 1
      elseif q == nil or serves(a, q, num(c.step, 1), c) == nil then
        -- The agent no longer serves it (tenant, skills, languages or
        -- channel changed, or its queue is gone): it stops waiting for them.
        stop_waiting_for(P, c, 'agent ' .. a.id .. ', whom it waited for, no longer serves it')
        reroute(P, R, c, now, false)
        -- That may have given it to this very agent: read it again.
        local fresh = agent_read(P, a.id)
        for k in pairs(a) do
          a[k] = nil
        end
        for k, v in pairs(fresh or {presence = 'offline', id = a.id}) do
          a[k] = v
        end
        return true
      elseif can_take(R, a, c.channel) then
        redis.call('ZREM', pkey, conv)
        local step = num(c.step, 1)
        assign(P, R, c, a, {queue = c.queue, step = step, agent = a.id, at_ms = now,
          strategy = q.strategy, skills = explain_skills(q, step, a), language = c.lang,
          language_matched = serves(a, q, step, c),
          trigger = c.transferred_to == 'agent|' .. a.id
            and 'transferred to this agent by ' .. (c.transferred_from or '?')
            or 'sticky: the agent who last served this customer',
          candidates = {{agent = a.id}}}, now)
        return true
      end
    end
    if #page < 10 then
      return false
    end
    from = from + 10 -- ten it cannot take now (another channel, full): the next ten
  end
end

-- The heads of the waiting sets an agent that became free looked at, the
-- lowest score (highest priority, then longest waiting) first, as many as
-- an explanation keeps.
local function waiting_explained(considered)
  table.sort(considered, function(x, y)
    return x.score < y.score or (x.score == y.score and x.conversation < y.conversation)
  end)
  local out = {}
  for i = 1, math.min(#considered, EXPLAIN_MAX) do
    out[i] = {conversation = considered[i].conversation, score = int(considered[i].score)}
  end
  return out
end

local function pull_waiting(P, R, a, now)
  local assigned = 0
  while a.presence == 'available' and pull_preferred(P, R, a, now) do
    assigned = assigned + 1
  end
  while a.presence == 'available' do
    local best, best_score, best_key, best_lang = nil, nil, nil, nil
    local seen, considered = {}, {}
    -- Each slot the agent is in (chain, tier, channel, tenant, language)
    -- serves the steps of the chain's queues at that tier or a later one.
    for slot in string.gmatch(a.idx or '', '[^,]+') do
      local x = slot_parts(slot)
      local chain, tier, ch, t, l = R.chain_named[x[1]], tonumber(x[2]), x[3], x[4], x[5]
      for _, queue in ipairs(chain and chain.queues or {}) do
        if (#(queue.channels or {}) == 0 or contains(queue.channels, ch))
          and (#(queue.tenants or {}) == 0 or contains(queue.tenants, t)) then
          for s = 1, #queue.steps do
            if queue.step_tier[s] >= tier then
              local langs = {l}
              if contains(step_langs(queue, s, '?'), l) then
                -- a fallback language of this step: any waiting language qualifies
                langs = redis.call('SMEMBERS', waitlangs_key(P, queue.name, s, ch, t))
              end
              for _, wl in ipairs(langs) do
                local wk = wait_key(P, queue.name, s, ch, t, wl)
                if not seen[wk] then
                  seen[wk] = true
                  local conv, sc = wait_head(P, R, wk, a, now)
                  if conv ~= nil then
                    considered[#considered + 1] = {conversation = conv, score = sc}
                    if best == nil or sc < best_score or (sc == best_score and conv < best) then
                      -- l: the agent's language that takes it (wl, or a fallback)
                      best, best_score, best_key, best_lang = conv, sc, wk, l
                    end
                  end
                end
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
      -- The language it is served in: the agent's best one the step accepts
      -- (the slot that found it may be a fallback the agent also speaks).
      local matched = q ~= nil and serves(a, q, num(c.step, 1), c) or best_lang
      local why = {queue = c.queue, step = num(c.step, 1), strategy = q and q.strategy or '',
        language = c.lang, language_matched = matched, agent = a.id, at_ms = now,
        trigger = 'agent became free', candidates = {{agent = a.id}},
        waiting = waiting_explained(considered)}
      if q ~= nil then
        why.skills = explain_skills(q, num(c.step, 1), a)
      end
      assign(P, R, c, a, why, now)
      assigned = assigned + 1
    end
  end
  return assigned
end
