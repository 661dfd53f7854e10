--
-- 60_timers.lua - the timers in P:timers and omr_tick, which every instance
-- calls: escalation, maximum wait, offers, sticky windows, customers who
-- left while waiting, wrap-up, agent loss.
--

-- ---- functions: timers -----------------------------------------------------

local function fire_escalation(P, R, c, step, now)
  local q = queue_named(R, c.queue)
  if c.state ~= 'queued' or (c.pref_agent or '') ~= '' or q == nil
    or num(c.step, 1) + 1 ~= step or q.steps[step] == nil then
    return
  end
  unqueue(P, c)
  local overflow = q.steps[step].overflow
  local oq = overflow ~= nil and overflow ~= '' and queue_named(R, overflow) or nil
  if oq ~= nil and takes(oq, c) then -- (one that does not take it: the step, in place)
    c.trigger = 'overflowed from queue ' .. q.name .. ' at step ' .. step .. ' of its ladder'
    q = oq
    c.step = 1
  else
    c.step = step
    c.trigger = 'escalated to step ' .. step .. ' of queue ' .. q.name
  end
  redis.call('HSET', P .. ':conv:' .. c.id, 'step', c.step)
  route(P, R, c, q, now)
end

-- c stops waiting: out of its waiting set, and no longer waiting for one
-- agent in particular (sticky, a transfer: P:pref:AGENT).
local function stop_waiting(P, c)
  unqueue(P, c)
  if (c.pref_agent or '') ~= '' then
    stop_waiting_for(P, c)
  end
end

-- Closes c, which waits or is offered, for `reason`: an open offer is taken
-- back (not held against the agent: take_back) and the agent's freed
-- capacity goes to the next work.
local function end_waiting(P, R, c, reason, now)
  local a = nil
  if c.state == 'offered' and (c.agent or '') ~= '' then
    a = c.agent -- (take_back clears c.agent)
    take_back(P, R, c, a, reason, now)
  end
  stop_waiting(P, c)
  close_waiting(P, R, c, reason, now)
  a = a and agent_read(P, a) -- (as it is now)
  if a then
    pull_waiting(P, R, a, now)
  end
end

local function fire_max_wait(P, R, c, queue, now)
  if c.state ~= 'queued' or c.queue ~= queue then
    return
  end
  local q = queue_named(R, queue)
  if q == nil or num(q.max_wait_s, 0) <= 0 then
    return -- the rules no longer have a maximum wait there
  end
  local due = max_wait_from(c, queue, now) + q.max_wait_s * 1000
  if due > now then
    timer_add(P, due, 'max|' .. c.id .. '|' .. queue) -- the rules gave it longer since
    return
  end
  local action = q.max_wait_action or 'close'
  stop_waiting(P, c)
  local target = string.match(action, '^overflow:(.+)$')
  if target and queue_named(R, target) and takes(queue_named(R, target), c) then
    c.step = 1
    c.trigger = 'overflowed from queue ' .. queue .. ' after its maximum wait'
    -- The next queue's wait counts from now (enqueue arms it); from the first
    -- time, when a rules reload sent it back here and it overflows again,
    -- unless an agent held it since (requeued_ms: a transfer, its agent lost).
    local mq, mms = string.match(c.maxw_from or '', '^(.*)|(%d+)$')
    if mq ~= target or tonumber(mms) < num(c.requeued_ms, 0) then
      c.maxw_from = target .. '|' .. int(now)
    end
    redis.call('HSET', P .. ':conv:' .. c.id, 'step', 1, 'maxw_from', c.maxw_from)
    route(P, R, c, queue_named(R, target), now)
    return
  end
  close_waiting(P, R, c, 'max-wait', now)
end

-- The sticky window passed: the conversation stops waiting for its agent.
local function fire_sticky(P, R, c, agent, now)
  if c.state ~= 'queued' or c.pref_agent ~= agent then
    return
  end
  stop_waiting_for(P, c, 'it waited for agent ' .. agent .. ' as long as it may')
  reroute(P, R, c, now, false)
end

-- The customer left a conversation that still waits and did not come back
-- in R.abandon_s (omr_conv_left): it is closed as abandoned, and an open
-- offer is taken back.
local function fire_gone(P, R, c, left, now)
  if c.state == 'closed' or ((c.left_ms or '') ~= '' and c.left_ms ~= left) then
    return -- (a later departure has its own timer)
  end
  if customer_connected(P, R, c.id, now) then
    local back = (c.left_ms or '') ~= ''
    if back then
      -- The instance of a connection taken for gone (frozen, cut off from
      -- Redis) ticks again: the customer never left.
      redis.call('HDEL', P .. ':conv:' .. c.id, 'left_ms')
      c.left_ms = nil
      tell_agent(P, c, 'customer-back', now)
    end
    -- Another connection is open: looked at again, it may be of an instance
    -- that stopped just now and still looks alive (a departure from then
    -- when the customer was back: the one at `left` is over).
    if (c.state == 'queued' or c.state == 'offered') and num(R.abandon_s, 0) > 0 then
      timer_add(P, now + num(R.heartbeat_timeout_s, 30) * 1000,
        'gone|' .. c.id .. '|' .. (back and int(now) or left))
    end
    return
  end
  if c.state ~= 'queued' and c.state ~= 'offered' then
    return
  end
  if (c.left_ms or '') == '' then
    -- Another connection was open when this one left (omr_conv_left): if it
    -- was of an instance that stopped, the customer left at `left`.
    c.left_ms = left
    redis.call('HSET', P .. ':conv:' .. c.id, 'left_ms', left)
  end
  local due = abandon_due(R, c)
  if due == nil then
    return -- (chat.abandon_after_s reloaded to 0)
  elseif due > now then
    timer_add(P, due, 'gone|' .. c.id .. '|' .. left) -- (reloaded to a longer time)
    return
  end
  end_waiting(P, R, c, 'abandoned', now)
end

-- The agent's desktop stopped answering: offline now, its work re-queued
-- after the grace period unless it comes back.
local function fire_lost(P, R, a, session, now)
  if a.session ~= session then
    return
  end
  -- (what it was doing, should its instance vouch for it again: agent_seen)
  session_ended(P, R, a, session, 'lost', now, 'lost_presence', a.presence or 'away',
    'lost_reason', a.reason or '')
end

-- Grace is over and the agent did not log in again: every conversation it
-- held goes back to routing with its original enqueue time.
local function fire_requeue(P, R, a, session, now)
  if (a.session or '') ~= '' or (a.lost_session or session) ~= session then
    return -- a new desktop took over and keeps them (or lost them later: its own timer)
  end
  local held = held_in_wait_order(P, R, a, function(c)
    return c.state == 'assigned' or c.state == 'offered'
  end)
  for _, w in ipairs(held) do
    local c, conv = w.c, w.c.id
    if c.state == 'assigned' then
      -- The customer had this agent: told it was lost (an offer only
      -- goes to the next agent; its customer never had one).
      redis.call('XADD', P .. ':conv:' .. conv .. ':log', '*', 'kind', 'event', 'event',
        'requeued', 'reason', 'agent-lost', 'ts', now)
      notify(P, 'c:' .. conv)
      -- (its maximum wait counts from now: max_wait_from)
      redis.call('HSET', P .. ':conv:' .. conv, 'requeued_ms', now)
      c.requeued_ms = now
    end
    c.trigger = 'its agent ' .. a.id .. ' was lost'
    withdraw(P, R, c, a.id, 'agent-lost', now)
  end
end

-- Customers of an instance that stopped (a drain, a crash: it reports
-- nobody gone) and did not come back elsewhere are taken for leaving once
-- it has been silent for instance_silent_ms (instance_silent_for: counted
-- from the last Redis stall at the earliest): the agent who holds
-- such a conversation is told `customer-left`, and one that waits is closed
-- as abandoned chat.abandon_after_s later (fire_gone), counted from now, so
-- that customers whose pages reconnect to the restarted service have that
-- long whatever the length of the outage. REAP_BATCH conversations per tick;
-- they are kept aside (inst:NAME:convs:reaped, a day) and the instance's
-- name goes once its list is done. One that was only frozen or cut off from
-- Redis and ticks again is alive again: its connections count again
-- (fire_gone looks before it closes anything) and its list is whole again
-- (instance_ticks).
local REAP_BATCH = 100

local function reap_instance(P, now)
  local old = redis.call('ZRANGE', P .. ':instances', 0, 0, 'WITHSCORES')
  local silent = #old > 0 and instance_silent_for(P, old[2], now) or 0
  if silent < 10000 then
    return -- (the rules only when one may be silent long enough)
  end
  local R = rules(P)
  if silent < instance_silent_ms(R) then
    return
  end
  local ikey = instance_convs_key(P, old[1])
  local convs = redis.call('SPOP', ikey, REAP_BATCH)
  for _, conv in ipairs(convs) do
    redis.call('SADD', ikey .. ':reaped', conv)
    local c = conv_read(P, conv)
    if c ~= nil and c.state ~= 'closed' and (c.left_ms or '') == ''
      and not customer_connected(P, R, conv, now) then
      customer_away(P, R, c, now)
    end
  end
  redis.call('EXPIRE', ikey .. ':reaped', 86400)
  if #convs < REAP_BATCH then
    redis.call('ZREM', P .. ':instances', old[1])
  end
end

-- Instance `name` ticks: it is alive (instance_alive). A pause of its own
-- longer than pause_ms (a third of instance_silent_ms; routing.tick_ms is at
-- most an eighth: --check-config) during which no other instance ticked
-- either means Redis stalled (or every instance did), so every silence
-- counts from now (P:instances:resumed); one that paused alone (frozen, its
-- own connection lost) while others ticked was watched meanwhile. Its own
-- first tick is not a pause: a restarted instance has a new name, and the
-- one it replaces is reaped as soon as it has been silent long enough.
local function instance_ticks(P, name, pause_ms, now)
  local prev = redis.call('ZSCORE', P .. ':instances', name)
  if prev ~= false and now - num(prev, 0) > pause_ms then
    local newest = redis.call('ZREVRANGE', P .. ':instances', 0, 0, 'WITHSCORES')
    if now - num(newest[2], 0) > pause_ms then
      redis.call('SET', P .. ':instances:resumed', now)
    end
  end
  redis.call('ZADD', P .. ':instances', now, name)
  local ikey = instance_convs_key(P, name)
  if redis.call('EXISTS', ikey .. ':reaped') == 1 then
    -- taken for stopped, and was not: its conversations are its own again
    redis.call('SUNIONSTORE', ikey, ikey, ikey .. ':reaped')
    redis.call('DEL', ikey .. ':reaped')
  end
  reap_instance(P, now)
end

-- omr_tick P [instance [pause_ms]] -> number of timers fired. Every instance calls it; whichever
-- runs first fires a due timer, exactly once.
local function tick(keys, args)
  local P = keys[1]
  local now = now_ms()
  if (args[1] or '') ~= '' then
    -- (a restarted one has a new name; those that stopped go once reaped)
    instance_ticks(P, args[1], num(args[2], 13333), now)
  end
  local due = redis.call('ZRANGEBYSCORE', P .. ':timers', '-inf', now, 'LIMIT', 0, 200)
  if #due == 0 then
    return 0
  end
  local R = rules(P)
  for _, t in ipairs(due) do
    redis.call('ZREM', P .. ':timers', t)
    local kind, id, arg = string.match(t, '^(%a+)|([^|]+)|(.+)$')
    if kind == 'esc' or kind == 'max' or kind == 'offer' or kind == 'sticky' or kind == 'gone' then
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
        elseif kind == 'gone' then
          fire_gone(P, R, c, arg, now)
        end
      end
    elseif kind == 'wrapup' or kind == 'lost' or kind == 'requeue' or kind == 'decl' then
      local a = agent_read(P, id)
      if a ~= nil then
        if kind == 'wrapup' then
          end_wrapup(P, R, a, arg, now)
        elseif kind == 'lost' then
          fire_lost(P, R, a, arg, now)
        elseif kind == 'decl' then
          -- Its hold on a conversation it declined is over (or was made
          -- longer by a reload: then later): the agent, if free, looks at
          -- what waits (that one may be the oldest there).
          local at = redis.call('HGET', P .. ':conv:' .. arg .. ':decl', id)
          if at and num(at, 0) + decline_hold_ms(R) > now then
            timer_add(P, num(at, 0) + decline_hold_ms(R), t)
          else
            pull_waiting(P, R, a, now)
          end
        else
          fire_requeue(P, R, a, arg, now)
        end
      end
    end
  end
  return #due
end
