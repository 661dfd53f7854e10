--
-- 10_index.lua - agents: reading them, what they can take, and the availability
-- indexes that make each decision a read of set heads.
--

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
  return P .. ':avail:' .. q .. '|' .. s .. '|' .. ch .. '|' .. t .. '|' .. l
end

local function wait_key(P, q, s, ch, t, l)
  return P .. ':wait:' .. q .. '|' .. s .. '|' .. ch .. '|' .. t .. '|' .. l
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
    local ok = {}
    for _, ch in ipairs(CHANNELS) do
      ok[ch] = can_take(R, a, ch)
    end
    for _, q in ipairs(R.queues) do
      local minp = num(q.min_proficiency, 1)
      for _, ch in ipairs(queue_channels(q)) do
        if ok[ch] then
          for _, t in ipairs(a.tenants_t) do
            if #(q.tenants or {}) == 0 or contains(q.tenants, t) then
              for s = 1, #q.steps do
                if skills_ok(a, q, s) then
                  local score = string.format('%.17g', strategy_score(q, a))
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
  local have = {}
  for _, key in ipairs(redis.call('SMEMBERS', idx)) do
    if want[key] == nil then
      redis.call('ZREM', key, a.id)
      redis.call('SREM', idx, key)
    else
      have[key] = true
    end
  end
  for key, score in pairs(want) do
    redis.call('ZADD', key, score, a.id)
    if not have[key] then
      redis.call('SADD', idx, key)
    end
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
