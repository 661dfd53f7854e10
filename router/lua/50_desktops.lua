--
-- 50_desktops.lua - Functions the agent desktops drive: login, presence,
-- disconnect, offers, heartbeats, wrap-up.
--

-- ---- functions: desktops ---------------------------------------------------

-- The transcripts sent again at a login fit in this many inbox entries
-- together (the inbox keeps INBOX_MAXLEN: what is sent must not push itself
-- out).
local RESEND_MAX = 5000

-- What the agent holds and a desktop does not show (a new browser, or
-- another one that took and acked the items) would stay out of sight while
-- the customer waits: each held conversation not in `known` (the ids the
-- desktop shows, comma-separated; nil: it did not say) is sent again, an
-- assignment with its transcript, an open offer as an offer.
local function resend_held(P, a, known, now)
  local shown = {}
  for cid in string.gmatch(known or '', '[^,]+') do
    shown[cid] = true
  end
  local held = {}
  for _, cid in ipairs(redis.call('SMEMBERS', P .. ':agent:' .. a.id .. ':convs')) do
    local c = not shown[cid] and conv_read(P, cid) or nil
    if c ~= nil and c.agent == a.id and held_by_this_agent(c, a) then
      held[#held + 1] = c
    end
  end
  -- each transcript's newest entries, an equal share of RESEND_MAX
  local share = math.min(COPY_MAX, math.floor(RESEND_MAX / math.max(1, #held)))
  local sent = false
  for _, c in ipairs(held) do
    if c.state == 'assigned' then
      send_assignment(P, c, a, num(c.assigned_ms, now), share)
      sent = true
    elseif c.state == 'offered' and num(c.offer_expires_ms, 0) > now then
      send_offer(P, c, a, num(c.offer_expires_ms, 0), num(c.offered_ms, now))
      sent = true
    end
  end
  if sent then
    notify(P, 'a:' .. a.id)
  end
end

-- omr_agent_login P agent token_sha session given known [opened_ms]
--   -> {name, presence, languages csv, chat capacity, previous session}
-- given "1": known lists the conversations the desktop shows; else it did
-- not say (resend_held sends everything held again). opened_ms: when the
-- login's connection was opened (the instance's clock). The newest
-- connection wins: a login from a connection opened before the current
-- session's is refused (STALE) and changes nothing. Such a login was run
-- late (its instance stalled, or was behind) after the desktop gave that
-- connection up and logged in again elsewhere; taking over would close
-- the live desktop, and the stale connection's close would then take the
-- agent offline. The same holds while that desktop is taken for lost (its
-- instance stalled too): its instance may vouch for it again (agent_seen).
local function agent_login(keys, args)
  local P, id = keys[1], args[1]
  local akey = P .. ':agent:' .. id
  local a = agent_read(P, id)
  if a == nil or a.token_sha == nil or a.token_sha ~= args[2] then
    return err('BADTOKEN', 'unknown agent or wrong token')
  end
  local previous = a.session or ''
  local opened = tonumber(args[6] or '')
  local held = previous
  if held == '' then
    held = lost_session_of(a) or ''
  end
  if held ~= '' and held ~= args[3] and opened ~= nil and
      opened < (tonumber(a.session_opened_ms or '') or opened) then
    return err('STALE', 'a newer login for this agent holds it')
  end
  if a.presence == 'offline' then
    set_presence(P, a, 'away', '', now_ms())
  end
  redis.call('HSET', akey, 'session', args[3], 'session_opened_ms', args[6] or '')
  if previous ~= '' and previous ~= args[3] then
    notify(P, 'r:' .. id .. '|' .. previous)
  end
  resend_held(P, a, args[4] == '1' and args[5] or nil, now_ms())
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
  return change_state(P, a, args[3], args[4] or '', true) -- (its answer says it)
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
  session_ended(P, rules(P), a, args[2], 'disconnected', now_ms())
  return 'offline'
end

-- ---- functions: offers, heartbeats, wrap-up -------------------------------

-- The agent's desktop received offer c: its inbox entry was read and then
-- acknowledged (a desktop acks each item as it arrives). An offer still
-- pending, or never read at all, was not seen: a slow server or a dropped
-- connection must not count as the agent missing it.
-- The last entry of an agent's inbox that group "desktop" read, or nil.
local function inbox_last_delivered(inbox)
  for _, g in ipairs(redis.call('XINFO', 'GROUPS', inbox)) do
    local f = {}
    for i = 1, #g, 2 do
      f[g[i]] = g[i + 1]
    end
    if f.name == 'desktop' then
      return f['last-delivered-id']
    end
  end
  return nil
end

local function offer_seen(P, c, agent)
  local item = c.offer_item or ''
  if item == '' then
    return true -- an offer made before offer_item was recorded
  end
  local inbox = P .. ':agent:' .. agent .. ':inbox'
  if #redis.call('XPENDING', inbox, 'desktop', item, item, 1) > 0 then
    return false
  end
  local last = inbox_last_delivered(inbox)
  return last ~= nil and stream_id_le(item, last)
end

-- Why an offer may be taken back without the agent declining it.
local NOT_DECLINES = {['agent-lost'] = true, ['agent-offline'] = true, abandoned = true,
  admin = true}

-- Takes an offer back from agent `agent`: tells its desktop, frees the
-- reserved capacity and remembers the agent declined (a reject, or a
-- timeout of an offer its desktop received). The conversation is left
-- queued in no waiting set; returns the agent (nil when gone).
local function take_back(P, R, c, agent, reason, now)
  local ckey = P .. ':conv:' .. c.id
  local seen = reason == 'timeout' and offer_seen(P, c, agent)
  -- (a lost agent did not decline: back later, it may take it at once;
  -- nor did one set offline, nor one whose offer ended with the conversation)
  local declined = not NOT_DECLINES[reason]
  if reason == 'timeout' and not seen then
    -- Its desktop never got the offer: not held against the agent the first
    -- time; the second time it is (a desktop connected but not reading would
    -- get it back at every timeout, for ever).
    declined = redis.call('HSETNX', ckey .. ':decl', '?' .. agent, int(now)) == 0
  end
  if declined then
    decline(P, R, c.id, agent, now)
  end
  redis.call('HSET', ckey, 'state', 'queued', 'agent', '', 'last_decline', agent .. ':' .. reason)
  redis.call('HDEL', ckey, 'offered_ms', 'offer_expires_ms', 'offer_item')
  inbox_add(P, agent, 'kind', 'revoked', 'conv', c.id, 'reason', reason, 'ts', now)
  notify(P, 'a:' .. agent)
  c.state, c.agent, c.queued_ms = 'queued', '', now
  local a = agent_read(P, agent)
  if a ~= nil and redis.call('SREM', P .. ':agent:' .. agent .. ':convs', c.id) == 1 then
    local ch = c.channel or 'chat'
    a['load_' .. ch] = istr(math.max(0, load_of(a, ch) - 1))
    a.load = istr(math.max(0, num(a.load, 1) - 1))
    redis.call('HSET', P .. ':agent:' .. agent, 'load_' .. ch, a['load_' .. ch], 'load', a.load)
  end
  if a ~= nil and seen and a.presence == 'available' then
    -- (an agent who went on break, away or busy with the offer open keeps its reason)
    local missed = redis.call('HINCRBY', P .. ':agent:' .. agent, 'missed_offers', 1)
    if missed >= num(R.max_missed_offers, 3) then
      set_presence(P, a, 'break', 'missed-offers', now)
    end
  end
  if a ~= nil then
    reindex(P, R, a)
  end
  return a
end

-- Takes an offer back (take_back) and routes the conversation again with
-- its original enqueue time and ladder step.
withdraw = function(P, R, c, agent, reason, now)
  c.trigger = c.trigger or (reason == 'timeout' and 'the offer to ' .. agent .. ' timed out'
    or reason == 'agent-offline' and agent .. ' went offline with the offer open'
    or 'the offer to ' .. agent .. ' was ' .. reason)
  if take_back(P, R, c, agent, reason, now) == nil then
    reroute(P, R, c, now, false)
    return
  end
  reroute(P, R, c, now, false)
  -- Read again: the reroute may have given it back to this agent (an offer
  -- its desktop never got is not a decline), and filling it from what it
  -- held before would put it over its capacity.
  local a = agent_read(P, agent)
  if a ~= nil then
    pull_waiting(P, R, a, now)
  end
end

-- omr_offer_accept P conv agent [session] -> "assigned"
-- session (given by the router): the desktop's, which must not have ended.
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
  if (args[3] or '') ~= '' and not desktop_session(P, agent, args[3]) then
    return err('REPLACED', 'this desktop session of the agent has ended')
  end
  local now = now_ms()
  if now > num(c.offer_expires_ms, now) then
    -- Expired, its timer not fired yet: taken back as a timeout.
    redis.call('ZREM', P .. ':timers', 'offer|' .. conv .. '|' .. agent)
    withdraw(P, rules(P), c, agent, 'timeout', now)
    return err('NOTASSIGNED', 'the offer is no longer open')
  end
  local a = agent_read(P, agent)
  redis.call('HSET', P .. ':agent:' .. agent, 'missed_offers', 0)
  deliver_assignment(P, c, a, now)
  return 'assigned'
end

-- omr_offer_reject P conv agent reason -> "rejected"
local function offer_reject(keys, args)
  local P, conv, agent = keys[1], args[1], args[2]
  local c = conv_read(P, conv)
  if c == nil or c.agent ~= agent or c.state ~= 'offered' then
    return err('NOTASSIGNED', 'no open offer of this conversation for this agent')
  end
  local reason = 'rejected'
  if args[3] ~= nil and args[3] ~= '' then
    reason = 'rejected: ' .. args[3]
  end
  redis.call('HSET', P .. ':agent:' .. agent, 'missed_offers', 0)
  withdraw(P, rules(P), c, agent, reason, now_ms())
  return 'rejected'
end

-- Why a session ended that no other login replaced, as agent_seen tells
-- its desktop ("logged-out REASON").
local LOGGED_OUT = {['token-revoked'] = true, ['token-reissued'] = true}

-- omr_agent_seen P agent session [timeout_s]
--   -> "ok" | "replaced" | "logged-out REASON"
-- (timeout_s: the vouching instance's routing.heartbeat_timeout_s; it
-- vouches every third of it)
-- The desktop of this session is alive: push its loss timer forward. A
-- desktop taken for lost (its instance could not vouch for it in time, as
-- when Redis was away longer than the timeout) and still connected is back:
-- its session and presence are restored, its work was never re-queued.
-- Otherwise the desktop missed the notification of its end: "logged-out"
-- with the reason when its token was revoked or reissued (REASON
-- agent-unknown: no such agent now; it was removed, or Redis lost its
-- data), else "replaced" (another login took over).
local function agent_seen(keys, args)
  local P, id, session = keys[1], args[1], args[2]
  local a = agent_read(P, id)
  if a == nil then
    return 'logged-out agent-unknown'
  end
  local now = now_ms()
  if a.session ~= session then
    if (a.session or '') ~= '' then
      return 'replaced'
    end
    if (a.lost_session or '') == '' then
      -- No session of this agent ever ended: the desktop's agent was removed
      -- (and one with its id created since).
      return 'logged-out agent-unknown'
    end
    if lost_session_of(a) ~= session then
      -- Logged out by its token's revocation or reissue; else a newer login
      -- took over (and may have ended since).
      local why = a.ended_reason or a.reason or ''
      return LOGGED_OUT[why] and 'logged-out ' .. why or 'replaced'
    end
    local R = rules(P)
    redis.call('HSET', P .. ':agent:' .. id, 'session', session)
    a.session = session
    if a.presence == 'offline' and a.reason == 'lost' then
      set_presence(P, a, a.lost_presence or 'away', a.lost_reason or '', now)
    else
      -- The site set a presence while it was lost: that one stays, and the
      -- desktop, which was not there to be told, is told now.
      notify(P, 'p:' .. a.id .. '|' .. a.presence .. '|' .. (a.reason or ''))
    end
    reindex(P, R, a)
    pull_waiting(P, R, a, now)
  end
  redis.call('HSET', P .. ':agent:' .. id, 'last_seen_ms', now)
  timer_add(P, now + num(args[3], num(rules(P).heartbeat_timeout_s, 30)) * 1000,
    'lost|' .. id .. '|' .. session)
  return 'ok'
end

local function end_wrapup(P, R, a, ch, now)
  if num(a['wrapup_' .. ch], 0) == 0 then
    return
  end
  a['wrapup_' .. ch] = '0'
  redis.call('HSET', P .. ':agent:' .. a.id, 'wrapup_' .. ch, 0)
  wrapup_history(P, a.id, ch, 0, now)
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

-- omr_inbox_trim P agent -> entries removed
-- An item the desktop acknowledged is never read again (a login reads the
-- pending ones; transcripts come from the conversation's log), so the
-- inbox drops what comes before its oldest pending item, or before the
-- last item read when none is pending: items not read yet stay. Pending
-- items the cap dropped are acknowledged first (up to 5,000 a call). The
-- router calls it after an agent's acks and when it reads the agent's
-- inbox, at most once a minute per desktop.
local function inbox_trim(keys, args)
  local inbox = keys[1] .. ':agent:' .. args[1] .. ':inbox'
  if redis.call('EXISTS', inbox) == 0 then
    return 0
  end
  local ok, p = pcall(redis.call, 'XPENDING', inbox, 'desktop')
  if not ok then
    return 0 -- no group (yet)
  end
  -- Pending items the inbox's cap dropped can never be delivered (nor
  -- acked): they would hold the trim back for good.
  local first = redis.call('XRANGE', inbox, '-', '+', 'COUNT', 1)[1]
  local before = first and '(' .. first[1] or '+'
  for _ = 1, 50 do
    local gone = redis.call('XPENDING', inbox, 'desktop', '-', before, 100)
    if #gone == 0 then
      break
    end
    local ids = {}
    for i, e in ipairs(gone) do
      ids[i] = e[1]
    end
    redis.call('XACK', inbox, 'desktop', unpack(ids))
    p = redis.call('XPENDING', inbox, 'desktop')
  end
  local keep = p[2] or inbox_last_delivered(inbox)
  if not keep or keep == '0-0' then
    return 0
  end
  return redis.call('XTRIM', inbox, 'MINID', '~', keep)
end
