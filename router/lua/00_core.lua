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
local INBOX_MAXLEN = '10000'
local COPY_MAX = 500
local HISTORY_MAXLEN = '1000'
local EXPLAIN_MAX = 8
local HISTORY_CONVS = 20 -- earlier conversations remembered per customer

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
