--
-- 10_index.lua - agents: reading them, what they can take, and the availability
-- indexes that make each decision a read of set heads.
--

-- ---- agents ----------------------------------------------------------------

-- An agent's tenants, skills, languages, capacity (and supervises) are JSON
-- texts that many agents share (a floor has a few profiles): each distinct
-- text is decoded once and kept by the library. The tables are read-only.
local shared, nshared = {}, 0

local function decode_shared(s)
  local v = shared[s or '']
  if v == nil then
    v = decode(s, {})
    if nshared >= 4096 then
      shared, nshared = {}, 0
    end
    shared[s or ''], nshared = v, nshared + 1
  end
  return v
end

-- Codes an earlier version stored as they were given: the daemon and
-- omnirouterctl now store the current code (common/language.c, whose alias
-- list this is), and an agent saved before is read as if it had been too
-- (the highest proficiency when it has both).
local LANG_ALIAS = {iw = 'he', ['in'] = 'id', ji = 'yi', jw = 'jv', mo = 'ro', tl = 'fil',
  cmn = 'zh', arb = 'ar', zsm = 'ms', swh = 'sw', pes = 'fa', uzn = 'uz'}
local canon_langs, ncanon = {}, 0

-- The routing language of a Chinese tag that an earlier version routed as
-- plain zh (common/language.c's zh_script: the script subtag, else the
-- region): what waited across the upgrade, or what an instance of that
-- version still starts.
local ZH_REGION = {tw = 'zh-Hant', hk = 'zh-Hant', mo = 'zh-Hant', cn = 'zh-Hans',
  sg = 'zh-Hans', my = 'zh-Hans'}
local ZH_SCRIPT = {hant = 'zh-Hant', hanb = 'zh-Hant', hans = 'zh-Hans'}

local function zh_rlang(tag)
  local first = true
  for sub in string.gmatch(string.lower(tag or ''), '[^-]+') do
    if first then
      first = false -- the language (zh, cmn, ...); an extended one is skipped below
    elseif #sub == 1 then
      return 'zh' -- an extension or private use
    elseif #sub == 4 and string.find(sub, '^%a+$') then
      return ZH_SCRIPT[sub] or 'zh'
    elseif #sub == 2 and string.find(sub, '^%a+$') then
      return ZH_REGION[sub] or 'zh'
    end
  end
  return 'zh'
end

local function decode_langs(s)
  local v = canon_langs[s or '']
  if v ~= nil then
    return v
  end
  v = decode_shared(s)
  for l in pairs(v) do
    if LANG_ALIAS[l] then
      local c = {}
      for k, p in pairs(v) do
        local to = LANG_ALIAS[k] or k
        c[to] = math.max(c[to] or 0, tonumber(p) or 0)
      end
      v = c
      break
    end
  end
  if ncanon >= 4096 then
    canon_langs, ncanon = {}, 0
  end
  canon_langs[s or ''], ncanon = v, ncanon + 1
  return v
end

-- The languages an agent serves conversations in, by routing language:
-- Chinese is routed by script (common/language.c), and an agent who gave zh
-- serves zh-Hant and zh-Hans conversations, one who gave a script serves
-- conversations in plain zh (at the higher of its scripts), unless the agent
-- gave that one too. Kept per languages table (decode_langs' own, up to
-- 4096; an admin call's new one).
local zh_expanded, nexpanded = {}, 0

local function route_langs(a)
  local t = a.langs_t
  local v = zh_expanded[t]
  if v == nil then
    if nexpanded >= 4096 then
      zh_expanded, nexpanded = {}, 0
    end
    nexpanded = nexpanded + 1
    v = t
    local zh, hant, hans = t.zh, t['zh-Hant'], t['zh-Hans']
    if zh or hant or hans then
      v = {}
      for k, p in pairs(t) do
        v[k] = p
      end
      v['zh-Hant'], v['zh-Hans'] = hant or zh, hans or zh
      v.zh = zh or math.max(hant or 0, hans or 0)
    end
    zh_expanded[t] = v
  end
  return v
end

local function agent_read(P, id)
  local a = hgetall(P .. ':agent:' .. id)
  if a == nil then
    return nil
  end
  a.id = id
  a.tenants_t = decode_shared(a.tenants)
  a.skills_t = decode_shared(a.skills)
  a.langs_t = decode_langs(a.languages)
  a.cap_t = decode_shared(a.capacity)
  return a
end

-- The agent hash's per-channel fields, named once: 'load_' .. ch makes a
-- new string every time, and can_take runs for every channel of every
-- re-index.
local LOAD_FIELD = {chat = 'load_chat', email = 'load_email', voice = 'load_voice'}
local WRAPUP_FIELD = {chat = 'wrapup_chat', email = 'wrapup_email', voice = 'wrapup_voice'}

local function load_of(a, ch)
  return num(a[LOAD_FIELD[ch] or 'load_' .. ch], 0)
end

-- Languages a conversation in language lang accepts at step s.
local function step_langs(q, s, lang)
  local out, seen = {lang}, {[lang] = true}
  for i = 1, math.min(s, #q.steps) do
    for _, l in ipairs(q.steps[i].languages or {}) do
      if not seen[l] then
        seen[l] = true
        out[#out + 1] = l
      end
    end
  end
  return out
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
    and not blocked(R, a, ch) and num(a[WRAPUP_FIELD[ch] or 'wrapup_' .. ch], 0) == 0
end

-- The agent's score in the sets of a chain (lower is better).
local function strategy_score(chain, a)
  local idle = num(a.last_assign_ms, 0)
  if chain.strategy == 'longest_idle' then
    -- Agents assigned in the same millisecond (a reload's pass assigns many
    -- at once) tie: the one with fewer open conversations first.
    return idle * 100 + math.min(99, num(a.load, 0))
  elseif chain.strategy == 'best_skill' then
    local sum = 0
    for skill in pairs(chain.skills or {}) do
      sum = sum + math.min(10, num(a.skills_t[skill], 0))
    end
    return (99 - math.min(99, sum)) * 1e13 + idle
  end
  return num(a.load, 0) * 1e13 + idle
end

local function meets(a, req)
  for skill, lvl in pairs(req) do
    if num(a.skills_t[skill], 0) < lvl then
      return false
    end
  end
  return true
end

-- The skill levels queue q requires at ladder step s (its tier's).
local function step_requires(q, s)
  return q.tiers[q.step_tier[s] or #q.tiers]
end

-- The agent has the skills queue q requires at ladder step s.
local function skills_ok(a, q, s)
  return meets(a, step_requires(q, s))
end

-- Slot keys join their parts with '|', which no id may contain (ids are
-- [A-Za-z0-9._:@-]), so a key splits back into its parts unambiguously.
-- Availability: chain k, tier i; waiting: queue q, step s.
local function avail_key(P, k, i, ch, t, l)
  return P .. ':avail:' .. k .. '|' .. istr(i) .. '|' .. ch .. '|' .. t .. '|' .. l
end

local function wait_key(P, q, s, ch, t, l)
  return P .. ':wait:' .. q .. '|' .. istr(s) .. '|' .. ch .. '|' .. t .. '|' .. l
end

local function waitlangs_key(P, q, s, ch, t)
  return P .. ':waitlangs:' .. q .. '|' .. istr(s) .. '|' .. ch .. '|' .. t
end

-- Splits a slot ("a|b|c|d|e") at '|'.
local function slot_parts(slot)
  local parts = {}
  for part in string.gmatch(slot, '[^|]+') do
    parts[#parts + 1] = part
  end
  return parts
end

-- The availability slots (avail keys without the "P:avail:" prefix) of an
-- agent whose channels ok[ch] are open, in a fixed order: they depend only on
-- its tenants, skills and languages, and the chain of each slot (its score
-- comes from the chain's strategy).
local function slot_layout(R, a, ok)
  local slots, chains, langs, served = {}, {}, {}, route_langs(a)
  for l in pairs(served) do
    langs[#langs + 1] = l
  end
  table.sort(langs)
  for _, chain in ipairs(R.chain_list) do
    local tier = nil
    for i, req in ipairs(chain.tiers) do
      if meets(a, req) then
        tier = i
        break
      end
    end
    if tier ~= nil then
      local prefix = chain.prefixes[tier]
      for _, ch in ipairs(chain.channels) do
        if ok[ch] then
          for _, t in ipairs(a.tenants_t) do
            if chain.any_tenant or chain.tenants[t] then
              for _, l in ipairs(langs) do
                if served[l] >= chain.minp then
                  slots[#slots + 1] = prefix .. ch .. '|' .. t .. '|' .. l
                  chains[#slots] = chain
                end
              end
            end
          end
        end
      end
    end
  end
  return {slots = slots, chains = chains, joined = table.concat(slots, ',')}
end

local NO_LAYOUT = {slots = {}, chains = {}, joined = ''}
local CHANNEL_BIT = {chat = 1, email = 2, voice = 4}

-- The slots that describe what the agent could take now, the score in each
-- and the slots joined with ','. Agents of one profile share their tenants,
-- skills and languages tables (decode_shared), so the layouts are kept per
-- rules (R.layouts), keyed by those tables and the open channels: most
-- re-indexes only look one up. (Up to 4096 are kept.)
local function avail_slots(R, a)
  if a.presence ~= 'available' then
    return NO_LAYOUT.slots, NO_LAYOUT.slots, ''
  end
  local ok, bits = {}, 0
  for _, ch in ipairs(CHANNELS) do
    if can_take(R, a, ch) then
      ok[ch], bits = true, bits + CHANNEL_BIT[ch]
    end
  end
  local by_t = R.layouts[a.tenants_t]
  if by_t == nil then
    by_t = {}
    R.layouts[a.tenants_t] = by_t
  end
  local by_s = by_t[a.skills_t]
  if by_s == nil then
    by_s = {}
    by_t[a.skills_t] = by_s
  end
  local by_l = by_s[a.langs_t]
  if by_l == nil then
    by_l = {}
    by_s[a.langs_t] = by_l
  end
  local layout = by_l[bits]
  if layout == nil then
    layout = slot_layout(R, a, ok)
    if R.nlayouts >= 4096 then
      R.layouts, R.nlayouts = {}, 0
    end
    by_l[bits], R.nlayouts = layout, R.nlayouts + 1
  end
  -- Scores that depend on the agent alone are the same for every chain with
  -- that strategy; best_skill depends on the chain's skills.
  local scores, by_strategy = {}, {}
  for i, chain in ipairs(layout.chains) do
    local key = chain.strategy == 'best_skill' and chain or (chain.strategy or 'least_loaded')
    local score = by_strategy[key]
    if score == nil then
      score = int(strategy_score(chain, a))
      by_strategy[key] = score
    end
    scores[i] = score
  end
  return layout.slots, scores, layout.joined
end

-- Puts the agent in exactly the availability sets that describe what it could
-- take now, with its current score, and nowhere else. The slots it is in are
-- kept in the agent's hash (field idx), read with the agent.
local function reindex(P, R, a)
  local slots, scores, now_in = avail_slots(R, a)
  local was_in = a.idx or ''
  local had = nil -- the slots it was in, when they change
  if now_in ~= was_in then
    local want = {}
    had = {}
    for _, slot in ipairs(slots) do
      want[slot] = true
    end
    for slot in string.gmatch(was_in, '[^,]+') do
      had[slot] = true
      if not want[slot] then
        redis.call('ZREM', P .. ':avail:' .. slot, a.id)
      end
    end
    redis.call('HSET', P .. ':agent:' .. a.id, 'idx', now_in)
    a.idx = now_in
  end
  for i, slot in ipairs(slots) do
    local key = P .. ':avail:' .. slot
    if had and not had[slot] then
      -- Entering a set: make it a skiplist if it is not (a member longer
      -- than zset-max-listpack-value converts it, and it stays one when that
      -- member leaves). A listpack (up to 128 members) is what a site's sets
      -- are, and every ZADD of a new score searched and rewrote it: a fifth
      -- of a decision's work at 100 agents.
      redis.call('ZADD', key, scores[i], a.id, 0, SKIPLIST_MARKER)
      redis.call('ZREM', key, SKIPLIST_MARKER)
    else
      redis.call('ZADD', key, scores[i], a.id)
    end
  end
end

-- A change while a desktop is logged in that it did not ask for itself (quiet)
-- is told to it ("p:" on the notify channel: its instance sends a presence
-- notice): a break the router decided (missed offers), the site's `agent
-- state`. Not an inbox item: one a desktop never read would come back,
-- stale, to its next login, whose welcome says the state already.
local function set_presence(P, a, state, reason, now, quiet)
  if a.presence == state and (a.reason or '') == (reason or '') then
    return
  end
  a.presence, a.reason = state, reason or ''
  redis.call('HSET', P .. ':agent:' .. a.id, 'presence', state, 'reason', a.reason,
    'presence_since_ms', now)
  redis.call('XADD', P .. ':agent:' .. a.id .. ':presence', 'MAXLEN', '~', HISTORY_MAXLEN, '*',
    'state', state, 'reason', a.reason, 'ts', now)
  if not quiet and (a.session or '') ~= '' then
    notify(P, 'p:' .. a.id .. '|' .. state .. '|' .. a.reason)
  end
end

-- Wrap-up of channel ch until `ends` (ms; 0: it ended) in the agent's
-- presence history, beside the presence changes (ROUTING.md, Agents).
local function wrapup_history(P, id, ch, ends, now)
  redis.call('XADD', P .. ':agent:' .. id .. ':presence', 'MAXLEN', '~', HISTORY_MAXLEN, '*',
    'wrapup', ch, 'until', int(ends), 'ts', now)
end

local function inbox_add(P, agent, ...)
  return redis.call('XADD', P .. ':agent:' .. agent .. ':inbox', 'MAXLEN', '~', INBOX_MAXLEN, '*',
    ...)
end

-- ---- timers ----------------------------------------------------------------

local function timer_add(P, due, what)
  redis.call('ZADD', P .. ':timers', due, what)
end
