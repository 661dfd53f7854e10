--
-- 47_supervisor.lua - Functions for supervisors: an agent whose `supervises`
-- list (agent hash field, JSON, set by omr_agent_upsert) names other agents
-- sees their presence, load and open conversations, and reads, read-only,
-- the transcripts of the conversations they hold or held, in the tenants
-- the supervisor itself serves. Nothing here writes.
--

-- Supervisor s may read conversation c: c's agent (the holder; after a close
-- the `agent` field keeps the agent who closed it) is one s supervises, and
-- c's tenant is one of s's. A queued conversation has no holder: nobody's.
local function may_monitor(s, c)
  local holder = c.agent or ''
  return holder ~= '' and holder ~= s.id and contains(decode_shared(s.supervises), holder)
    and contains(s.tenants_t, c.tenant)
end

-- omr_supervisor_team P supervisor
--   -> one entry per supervised agent that exists, in the `supervises` order:
--      {id, name, presence, reason, {load chat, email, voice},
--       {capacity chat, email, voice},
--       {{conv, customer name, language, queue, state, tenant}, ...}}
-- The conversations are those the agent holds now (offered or assigned) in
-- the supervisor's tenants, oldest assignment first.
local function supervisor_team(keys, args)
  local P = keys[1]
  local s = agent_read(P, args[1])
  if s == nil then
    return err('NOAGENT', 'no such agent')
  end
  local out = {}
  for _, id in ipairs(decode_shared(s.supervises)) do
    local a = agent_read(P, id)
    if a ~= nil then
      local load, cap = {}, {}
      for i, ch in ipairs(CHANNELS) do
        load[i], cap[i] = load_of(a, ch), num(a.cap_t[ch], 0)
      end
      local convs = {}
      for _, conv in ipairs(redis.call('SMEMBERS', P .. ':agent:' .. id .. ':convs')) do
        local c = conv_read(P, conv)
        if c ~= nil and c.agent == id and may_monitor(s, c) then
          convs[#convs + 1] = {conv, c.name or '', c.lang or '', c.queue or '', c.state or '',
            c.tenant or '', num(c.assigned_ms, num(c.created_ms, 0))}
        end
      end
      table.sort(convs, function(x, y)
        return x[7] < y[7] or (x[7] == y[7] and x[1] < y[1])
      end)
      for _, c in ipairs(convs) do
        c[7] = nil
      end
      out[#out + 1] = {id, a.name or '', a.presence or 'offline', a.reason or '', load, cap, convs}
    end
  end
  return out
end

-- omr_supervisor_monitor P supervisor conv -> transcript entries of conv
-- (as omr_conv_history answers them), or NOTASSIGNED when the supervisor may
-- not read it: no such agent or conversation, an agent it does not
-- supervise, a tenant it does not serve.
local function supervisor_monitor(keys, args)
  local P, sid, conv = keys[1], args[1], args[2]
  local s = agent_read(P, sid)
  local c = conv_read(P, conv)
  local holder = c and agent_read(P, c.agent or '')
  if s == nil or c == nil or not may_monitor(s, c) or holder == nil
    or not held_by_this_agent(c, holder) then
    return err('NOTASSIGNED', 'not a conversation of an agent this agent supervises')
  end
  return transcript(P .. ':conv:' .. conv .. ':log')
end
