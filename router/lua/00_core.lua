#!lua name=omnirouter
--
-- router/lua/*.lua - every routing decision omnirouter makes, as Redis Functions:
-- the files are concatenated in name order into one library, "omnirouter"
-- (the build embeds it in the binaries; tests load the same concatenation).
-- 00_core.lua - constants, helpers, the rules.
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
--   P:avail:K|T|C|N|L  zset of agents that could take, right now, a channel C
--                      conversation of tenant N at tier T of chain K, and
--                      speak language L. Score by the chain's strategy.
--                      A chain is the ladder of skill requirements of one
--                      or more queues (queues with the same strategy, minimum
--                      proficiency and requirements share one, named after
--                      the first); tier 1 is its strictest step, each later
--                      tier relaxes the levels. An agent is in the set of the
--                      strictest tier it meets only, so one assignment
--                      rewrites one score per (chain, channel, tenant,
--                      language); a step at tier T reads tiers 1..T.
--   P:wait:Q|S|C|N|L   zset of queued conversations of queue Q at step S,
--                      language L. Score (9 - priority) * 1e13 + enqueue
--                      time: higher priority first, then longest waiting.
--   P:waitlangs:Q|S|C|N  languages with waiting work (for language fallback).
--   agent field idx    the avail slots the agent is in, comma-separated (to
--                      leave them cheaply).
--   P:timers           zset of due timers ("esc:CONV:STEP", "max:CONV:QUEUE").
--
-- Errors are returned as "CODE message"; the daemon maps CODE to a status.

local CHANNELS = {'chat', 'email', 'voice'}
local INBOX_MAXLEN = '10000'
-- A sorted-set member longer than zset-max-listpack-value (64 by default),
-- never an id ('~' is not an id character): see reindex.
local SKIPLIST_MARKER = '~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~'
-- A conversation's msgid hash becomes a hashtable at this many messages, by
-- a marker value this long (over hash-max-listpack-value, 64 by default).
local IDS_LISTPACK_MAX = 32
local IDS_MARKER_LEN = 128
-- Transcript entries an agent taking a conversation is sent, and that
-- history and monitor answer: all of them, or the newest this many. Twice
-- chat.max_messages' default, so a default conversation with its events
-- comes whole; the inbox (INBOX_MAXLEN) holds five such copies.
local COPY_MAX = 2000
local HISTORY_MAXLEN = '1000'
local EXPLAIN_MAX = 8
local HISTORY_CONVS = 20 -- earlier conversations remembered per customer
-- The layout of the availability index; omr_rules_load rebuilds the index
-- when the one stored (P:index_format) differs. 2: chains and tiers. 3:
-- longest_idle scores break ties on the load (strategy_score). 4: what waits
-- for an agent in particular (P:pref:AGENT) is scored by its queue's
-- priority, then its enqueue time (wait_score), as the waiting sets are. 5:
-- Chinese by script, an agent of zh in the zh-Hant and zh-Hans sets and one
-- of a script in the zh sets (route_langs).
local INDEX_FORMAT = '5'

local sticky_route
local close_waiting -- (40_conversations.lua)
local close_held -- (40_conversations.lua)
local withdraw -- (50_desktops.lua)

local DEFAULT_RULES = {
  version = 'default',
  blocking = {voice = {'chat', 'email'}},
  queues = {{name = 'default', tenants = {}, channels = {}, languages = {}, skills = {},
    attributes = {}, strategy = 'least_loaded', priority = 0, min_proficiency = 1,
    max_wait_s = 0, max_wait_action = 'close', steps = {{after_s = 0}}}},
}

-- ---- helpers ---------------------------------------------------------------

-- An integer as a string: Redis formats a Lua number argument with %.17g,
-- which costs several times more than this for a 13-digit time.
local function int(x)
  return string.format('%d', x)
end

-- A small integer (a tier, a step, a load) as a string, from a cache: Lua
-- turns a number in a concatenation or tostring() into text with
-- sprintf("%.14g"), which a decision did dozens of times.
-- A string (a step read back from a key) is returned as it is.
local small_ints = {}
local function istr(i)
  local s = small_ints[i]
  if s == nil then
    if type(i) == 'string' then
      return i
    end
    s = string.format('%d', i)
    if i >= 0 and i < 1024 then
      small_ints[i] = s
    end
  end
  return s
end

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- The hash at key, or nil when there is none (nor a hash: an id the daemon
-- and omnirouterctl refuse, such as "ana:inbox", would name another key).
local function hgetall(key)
  local flat = redis.pcall('HGETALL', key)
  if flat.err or #flat == 0 then
    return nil
  end
  local h = {}
  for i = 1, #flat, 2 do
    h[flat[i]] = flat[i + 1]
  end
  return h
end

-- The transcript at key, oldest first: whole, or its newest max (default
-- COPY_MAX) entries (an agent must above all see what the customer said
-- last).
local function transcript(key, max)
  max = max or COPY_MAX
  local log = redis.call('XRANGE', key, '-', '+', 'COUNT', max + 1)
  if #log <= max then
    return log
  end
  log = redis.call('XREVRANGE', key, '+', '-', 'COUNT', max)
  local n = #log
  for i = 1, math.floor(n / 2) do
    log[i], log[n + 1 - i] = log[n + 1 - i], log[i]
  end
  return log
end

-- Stream id a is at or before b ("ms-seq").
local function stream_id_le(a, b)
  local am, as = string.match(a, '^(%d+)-(%d+)$')
  local bm, bs = string.match(b or '', '^(%d+)-(%d+)$')
  if am == nil or bm == nil then
    return false
  end
  am, as, bm, bs = tonumber(am), tonumber(as), tonumber(bm), tonumber(bs)
  return am < bm or (am == bm and as <= bs)
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

-- A field as a number, or default when absent or not a number. tonumber()
-- of a string costs two strtod() calls (about 1,200 instructions), and the
-- same few strings (a load, a capacity, a timestamp) come back all the time:
-- the results are kept, up to 4096 strings.
local numbers, nnumbers = {}, 0
local function num(x, default)
  if x == nil or x == false then
    return default
  elseif type(x) == 'number' then
    return x -- (never a table key: NaN cannot be one)
  end
  local v = numbers[x]
  if v == nil then
    v = tonumber(x) or false
    if nnumbers >= 4096 then
      numbers, nnumbers = {}, 0
    end
    numbers[x], nnumbers = v, nnumbers + 1
  end
  return v or default
end

-- The requirement map and signature of skills `skills` relaxed by d levels.
local function relaxed(skills, d)
  local req, names = {}, {}
  for skill, lvl in pairs(skills or {}) do
    req[skill] = math.max(1, lvl - d)
    names[#names + 1] = skill
  end
  table.sort(names)
  local sig = {}
  for i, skill in ipairs(names) do
    sig[i] = skill .. '=' .. req[skill]
  end
  return req, table.concat(sig, ',')
end

-- Adds what the index needs to decoded rules: each queue's tiers (the
-- distinct skill requirements of its ladder, strictest first) and the tier
-- of each step, and the chains that queues share.
local function prepare(r)
  local by_sig = {}
  r.chain_named, r.chain_list = {}, {}
  r.layouts, r.nlayouts = {}, 0 -- an agent profile's slots (avail_slots)
  for _, q in ipairs(r.queues) do
    if type(q.steps) ~= 'table' or #q.steps == 0 then
      q.steps = {{after_s = 0}}
    end
    -- A queue that takes Chinese (zh) takes it in either script.
    if type(q.languages) == 'table' and contains(q.languages, 'zh') then
      for _, l in ipairs({'zh-Hant', 'zh-Hans'}) do
        if not contains(q.languages, l) then
          q.languages[#q.languages + 1] = l
        end
      end
    end
    q.tiers, q.step_tier = {}, {}
    local sigs, d = {}, 0
    for s, step in ipairs(q.steps) do
      d = math.max(d, num(step.min_level_delta, 0)) -- steps only ever relax
      local req, sig = relaxed(q.skills, d)
      if sig ~= sigs[#sigs] then
        sigs[#sigs + 1] = sig
        q.tiers[#q.tiers + 1] = req
      end
      q.step_tier[s] = #q.tiers
    end
    local key = (q.strategy or 'least_loaded') .. '/' .. num(q.min_proficiency, 1) .. '/'
      .. table.concat(sigs, ';')
    local chain = by_sig[key]
    if chain == nil then
      chain = {name = q.name, strategy = q.strategy, skills = q.skills, tiers = q.tiers,
        minp = num(q.min_proficiency, 1), queues = {}, channels = {}, tenants = {},
        prefixes = {}} -- per tier, "CHAIN|TIER|": how its slot names start
      for i = 1, #q.tiers do
        chain.prefixes[i] = q.name .. '|' .. istr(i) .. '|'
      end
      by_sig[key] = chain
      r.chain_named[q.name] = chain
      r.chain_list[#r.chain_list + 1] = chain
    end
    chain.queues[#chain.queues + 1] = q
    q.chain = chain
    -- The chain's channels and tenants: those of any of its queues.
    for _, ch in ipairs(#(q.channels or {}) > 0 and q.channels or CHANNELS) do
      if not contains(chain.channels, ch) then
        chain.channels[#chain.channels + 1] = ch
      end
    end
    if #(q.tenants or {}) == 0 then
      chain.any_tenant = true
    end
    for _, t in ipairs(q.tenants or {}) do
      chain.tenants[t] = true
    end
  end
  return r
end

-- The rules, decoded and prepared once per version: the library keeps the
-- ones it prepared, keyed by the stored text (routing groups with the same
-- rules share them; a few groups with different rules each keep theirs).
-- Nothing may modify them but avail_slots, which keeps its layouts there.
local prepared, nprepared = {}, 0

local function rules(P)
  local text = redis.call('GET', P .. ':rules') or ''
  local r = prepared[text]
  if r ~= nil then
    return r
  end
  r = decode(text, nil)
  if r == nil or type(r.queues) ~= 'table' or #r.queues == 0 then
    r = DEFAULT_RULES
  end
  if nprepared >= 16 then
    prepared, nprepared = {}, 0
  end
  prepared[text], nprepared = prepare(r), nprepared + 1
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
