--
-- 70_admin.lua - what the site's administrators do to a conversation with
-- omnirouterctl: end it, whatever its state.
--

-- ---- functions: administration ---------------------------------------------

-- omr_conv_end P conv note -> "closed" | "already-closed"
-- Ends a conversation for the site (`omnirouterctl conversation close`): one
-- stuck with an agent who went on holiday, a spam chat, a test. Its reason
-- is `admin` for the customer and the agent; `note` (free text, may be "")
-- is kept in the conversation (`close_note`) and shown to the agent who
-- held it, never to the customer (the log, which the customer reads, has
-- only the reason).
-- - waiting: out of its waiting set and closed, like a maximum wait;
-- - offered: the offer is taken back (not a decline of the agent's), the
--   freed capacity goes to the next work;
-- - assigned: closed for the agent, whose desktop gets a `closed` item with
--   no wrap-up (the agent did not finish the work), and its capacity goes
--   to the next work. The customer's next visit is sticky to that agent as
--   after any close.
local function conv_end(keys, args)
  local P, conv, note = keys[1], args[1], args[2] or ''
  local c = conv_read(P, conv)
  if c == nil then
    return err('NOCONV', 'no such conversation')
  end
  if c.state == 'closed' then
    return 'already-closed'
  end
  local now = now_ms()
  local R = rules(P)
  if c.state == 'assigned' and (c.agent or '') ~= '' then
    close_held(P, R, c, c.agent, now, {'close_reason', 'admin', 'close_note', note}, 'admin',
      note, 0)
    return 'closed'
  end
  redis.call('HSET', P .. ':conv:' .. c.id, 'close_note', note)
  end_waiting(P, R, c, 'admin', now)
  return 'closed'
end
