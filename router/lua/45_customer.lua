--
-- 45_customer.lua - Functions around a conversation's people: the customer's
-- place in the queue, typing notices, the satisfaction survey, earlier
-- conversations of the same customer, and transfers.
--

-- omr_conv_position P conv -> {state, position (1-based, 0 when not
-- waiting), estimated wait in ms}
-- The position counts conversations ahead in the queue (its steps, for the
-- same channel, tenant and language): a lower bound, since agents who also
-- serve other languages (a fallback step's, bilingual ones) may take a
-- conversation of another language waiting ahead first, and counting those
-- would count some no agent of this one serves first; the estimate is the
-- queue's recent average wait less what was already waited since it was
-- last queued.
local TRANSFER_WAIT_S = 120
-- The refusal of a transfer to an agent nobody can wait for (router/request.c
-- maps it by this text).
local AGENT_AWAY = 'that agent is not logged in: transfer to a queue'

local function conv_position(keys, args)
  local P = keys[1]
  local c = conv_read(P, args[1])
  if c == nil then
    return err('NOCONV', 'no such conversation')
  end
  if c.state ~= 'queued' then
    return {c.state, 0, 0}
  end
  local pos = 1
  if (c.pref_agent or '') ~= '' then
    pos = (redis.call('ZRANK', P .. ':pref:' .. c.pref_agent, c.id) or 0) + 1
  elseif (c.wait_key or '') ~= '' then
    pos = (redis.call('ZRANK', c.wait_key, c.id) or 0) + 1
    -- Those waiting in the queue's other steps (same channel, tenant and
    -- language) with a better score are served first too (pull_waiting
    -- takes the lowest score across the steps).
    local score = redis.call('ZSCORE', c.wait_key, c.id)
    local q = queue_named(rules(P), c.queue or '')
    if score and q then
      for s = 1, #q.steps do
        local k = wait_key(P, q.name, s, c.channel, c.tenant, c.rlang)
        if k ~= c.wait_key then
          pos = pos + redis.call('ZCOUNT', k, '-inf', '(' .. score)
        end
      end
    end
  end
  local avg = tonumber(redis.call('HGET', P .. ':qstats', 'wait_ewma_ms:' .. (c.queue or '')) or '')
  local eta = 0
  if avg then
    -- (waited since its enqueue, offers rejected or timed out included, or
    -- since an agent who held it gave it back: as the average counts)
    local now = now_ms()
    eta = math.max(0, math.floor(avg - (now - ladder_from(c, now))))
  end
  return {c.state, pos, eta}
end

-- omr_conv_typing P conv from agent -> "ok"
-- Not stored: the other side's instance is told through the notify channel.
local function conv_typing(keys, args)
  local P, conv, from, agent = keys[1], args[1], args[2], args[3]
  local c = conv_read(P, conv)
  if from == 'agent' and (c == nil or c.agent ~= agent or c.state ~= 'assigned') then
    return err('NOTASSIGNED', 'conversation is not assigned to this agent')
  end
  if c == nil or c.state ~= 'assigned' then
    return 'ok' -- nobody to tell
  end
  if from == 'agent' then
    notify(P, 'tc:' .. conv)
  else
    notify(P, 'ta:' .. c.agent .. '|' .. conv)
  end
  return 'ok'
end

-- omr_conv_rate P conv score comment -> "rated"
-- The customer's 1-5 satisfaction answer, once the conversation is closed.
local function conv_rate(keys, args)
  local P, conv = keys[1], args[1]
  local c = conv_read(P, conv)
  if c == nil then
    return err('NOCONV', 'no such conversation')
  end
  if c.state ~= 'closed' then
    return err('BADARG', 'the survey comes after the conversation is closed')
  end
  local score = tonumber(args[2])
  if score == nil or score < 1 or score > 5 or score % 1 ~= 0 then
    return err('BADARG', 'score must be 1 to 5')
  end
  local now = now_ms()
  redis.call('HSET', P .. ':conv:' .. conv, 'csat', score, 'csat_comment', args[3] or '',
    'csat_ms', now)
  return 'rated'
end

-- omr_conv_history P conv agent earlier -> transcript entries of `earlier`
-- An agent may read an earlier conversation of the customer of a
-- conversation it holds (same tenant, same customer id, started before it,
-- closed), in a tenant it serves now, nothing else: not a later one, nor one
-- still open, which another agent may hold now.
local function conv_history(keys, args)
  local P, conv, agent, earlier = keys[1], args[1], args[2], args[3]
  local c = conv_read(P, conv)
  local e = conv_read(P, earlier)
  if c == nil or c.agent ~= agent or (c.state ~= 'assigned' and c.state ~= 'closed') then
    return err('NOTASSIGNED', 'conversation is not assigned to this agent')
  end
  -- An agent taken off a tenant no longer reads that tenant's past; an
  -- agent created again with a removed agent's id is not that agent.
  local a = agent_read(P, agent)
  if a == nil or not contains(a.tenants_t, c.tenant) then
    return err('NOTASSIGNED', 'the agent does not serve this tenant')
  end
  if not held_by_this_agent(c, a) then
    return err('NOTASSIGNED', 'conversation is not assigned to this agent')
  end
  if e == nil or (c.customer or '') == '' or e.customer ~= c.customer or e.tenant ~= c.tenant then
    return err('NOTASSIGNED', 'not an earlier conversation of this customer')
  end
  -- Earlier: after c in the customer's list, which is newest first.
  local pc, pe = nil, nil
  for i, id in ipairs(redis.call('LRANGE', customer_convs_key(P, c.tenant, c.customer), 0,
    HISTORY_CONVS)) do
    if id == conv then
      pc = i
    elseif id == earlier and pc ~= nil then
      pe = i
    end
  end
  if pe == nil then
    return err('NOTASSIGNED', 'not an earlier conversation of this customer')
  end
  if e.state ~= 'closed' then
    -- Still open (the customer's other chat or email): another agent's now.
    return err('NOTASSIGNED', 'that conversation is still open')
  end
  return transcript(P .. ':conv:' .. earlier .. ':log')
end

-- omr_conv_transfer P conv agent kind target note [lang rlang [session]] -> "transferred"
-- kind "queue": the conversation is routed in queue `target` (ladder from the
-- start, original enqueue time kept); kind "agent": it waits for agent
-- `target` in particular (taken as soon as that agent can, for at most
-- TRANSFER_WAIT_S, then routed normally). The note goes
-- into the transcript, so the next agent reads it. lang/rlang (the tag and
-- the code routing matches on), when given, are the customer's language:
-- the conversation has it from now on (it came in another). session (given
-- by the router): the agent's desktop session, which must not have ended.
local function conv_transfer(keys, args)
  local P, conv, agent, kind, target, note = keys[1], args[1], args[2], args[3], args[4], args[5]
  local lang, rlang = args[6] or '', args[7] or ''
  local c = conv_read(P, conv)
  if c ~= nil and c.agent ~= agent and c.transferred_from == agent
    and c.transferred_to == kind .. '|' .. target then
    return 'transferred' -- sent again (its answer was lost): done already
  end
  if c == nil or c.agent ~= agent or c.state ~= 'assigned' then
    return err('NOTASSIGNED', 'conversation is not assigned to this agent')
  end
  if (args[8] or '') ~= '' and not desktop_session(P, agent, args[8]) then
    return err('REPLACED', 'this desktop session of the agent has ended')
  end
  local relang = rlang ~= '' and rlang ~= c.rlang
  if rlang ~= '' then
    c.lang, c.rlang = lang, rlang
  end
  local R = rules(P)
  local q = nil
  if kind == 'queue' then
    q = queue_named(R, target)
    if q == nil then
      return err('BADARG', 'no such queue')
    end
    if not takes(q, c) then
      return err('BADARG', 'that queue does not take this tenant or channel')
    end
    -- Nor its language: the queue's agents would be chosen for a language
    -- the queue is not for (give the customer's, `language`).
    if #(q.languages or {}) > 0 and not contains(q.languages, c.rlang) then
      return err('BADARG', 'that queue does not take language ' .. c.rlang)
    end
  elseif kind == 'agent' then
    local t = agent_read(P, target)
    if t == nil or target == agent then
      return err('BADARG', 'no such agent')
    end
    if not contains(t.tenants_t, c.tenant) then
      return err('BADARG', 'that agent does not serve this tenant')
    end
    -- Nobody to wait for (as for a returning customer: sticky_route). (A
    -- BADARG, which a daemon of before this refusal answers bad-request.)
    if t.presence == 'offline' or (t.session or '') == '' then
      return err('BADARG', AGENT_AWAY)
    end
    -- One who cannot take it (language, skills at its step, channel) would
    -- never get it: it would wait for them, then go elsewhere unseen.
    local cq = queue_named(R, c.queue or '')
    if cq ~= nil and serves(t, cq, num(c.step, 1), c) == nil then
      return err('BADARG', 'that agent cannot take this conversation (language, skills or '
        .. 'channel)')
    end
    -- It goes back to its queue if the agent does not take it in time.
    if relang and cq ~= nil and #(cq.languages or {}) > 0
      and not contains(cq.languages, c.rlang) then
      return err('BADARG', 'its queue does not take language ' .. c.rlang
        .. ': transfer it to a queue that does')
    end
  else
    return err('BADARG', 'transfer to a queue or an agent')
  end
  local now = now_ms()
  local ckey = P .. ':conv:' .. conv
  redis.call('XADD', ckey .. ':log', '*', 'kind', 'event', 'event', 'transferred', 'name',
    redis.call('HGET', P .. ':agent:' .. agent, 'name') or '', 'text', note or '', 'ts', now)
  inbox_add(P, agent, 'kind', 'closed', 'conv', conv, 'reason', 'transferred', 'ts', now)
  -- (requeued_ms: its maximum wait counts from now, max_wait_from)
  local langnote = relang and ' (language ' .. c.rlang .. ')' or ''
  redis.call('HSET', ckey, 'state', 'queued', 'agent', '', 'transferred_from', agent,
    'transferred_to', kind .. '|' .. target, 'requeued_ms', now, 'lang', c.lang,
    'rlang', c.rlang, 'wait_trigger', 'transferred to ' .. kind .. ' ' .. target .. ' by '
    .. agent .. langnote)
  decline(P, R, conv, agent, now) -- not routed back at once to who passed it on
  notify(P, 'c:' .. conv)
  notify(P, 'a:' .. agent)
  c.state, c.agent, c.queued_ms, c.requeued_ms = 'queued', '', now, now
  release(P, R, c, agent, now)
  if kind == 'queue' then
    c.step = 1
    c.trigger = 'transferred to queue ' .. q.name .. ' by ' .. agent .. langnote
    route(P, R, c, q, now)
  else
    -- Its customer away long enough: closed, never handed on (route does
    -- the same for a transfer to a queue); away, not that long: the clock
    -- of that departure goes on while it waits.
    local gone = abandon_due(R, c)
    if gone ~= nil and gone <= now and not customer_connected(P, R, c.id, now) then
      close_waiting(P, R, c, 'abandoned', now)
      return 'transferred'
    end
    arm_gone(P, R, c)
    -- (queued_ms: its time with the agent is not waiting, for the queue's
    -- average and the customer's estimate)
    redis.call('HSET', ckey, 'pref_agent', target, 'queued_ms', now)
    redis.call('SADD', P .. ':queued', conv)
    local cq = queue_named(R, c.queue or '')
    redis.call('ZADD', P .. ':pref:' .. target, wait_score(c, cq or {}), conv)
    -- Not forever: after TRANSFER_WAIT_S it takes the normal route of its queue.
    timer_add(P, now + TRANSFER_WAIT_S * 1000, 'sticky|' .. conv .. '|' .. target)
    if cq ~= nil then
      arm_max_wait(P, c, cq, now)
    end
    local t = agent_read(P, target)
    pull_waiting(P, R, t, now)
  end
  return 'transferred'
end
