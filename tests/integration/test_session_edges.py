"""test_session_edges.py - sessions and connections at their edges: an upgrade onto
the HTTP protocol, a supervisor reading an offered conversation, a token revoked or
reissued while the desktop is lost. Each test asserts the documented behaviour
(quoted in its docstring) and failed against the build it was written for.

    OMR_BUILD_DIR=build/asan python3 tests/integration/test_session_edges.py [name]

The test_lua_* tests call the routing Functions directly on a redis-server
(LuaTestCase, no daemon needed); the others run the real daemon.
"""

import asyncio
import json
import os
import signal
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from omr_harness import (Agent, Conn, Customer, add_agent, agent_key, conv_key,  # noqa: E402
                         ctl, log, poll, run_tests, time_limit, wait_hash)
from lua_harness import P, T, LuaTestCase, as_run_test  # noqa: E402
import websockets  # noqa: E402  (Debian's, found by omr_harness)
import websockets.exceptions  # noqa: E402


# ----------------------------------------------------------------------------
# Websocket port

@time_limit(90)
async def test_upgrade_to_the_http_protocol_is_not_a_free_connection(env):
    """PROTOCOL.md limits: "a connection must send `hello`/`resume`/`login` within
    `websocket.auth_timeout_ms`", and "`websocket.max_connections` connections in all and
    `websocket.max_connections_per_ip` from one address". PROTOCOL.md: "No websocket
    subprotocol is required (a client may offer `omr.v1`; the server then answers with
    it)" - nothing else. A client that offers the subprotocol "omr-http" (the name of the
    static-file protocol, ws_http.h WS_HTTP_PROTOCOL) on /ws/customer is upgraded
    (101, "Sec-WebSocket-Protocol: omr-http") onto ws_http_callback, which accepts
    everything: no auth timeout, no per-IP or total count, no close at shutdown. Such a
    socket stays open for as long as the client answers pings."""
    d = env.daemon(env.redis(), config={"websocket": {"max_connections_per_ip": 1,
                                                      "auth_timeout_ms": 500}})
    held = await websockets.connect(d.url + "/ws/customer", compression=None,
                                    ping_interval=None, open_timeout=10)
    sneaky = []
    try:
        for i in range(3):
            try:
                ws = await websockets.connect(d.url + "/ws/customer", compression=None,
                                              ping_interval=None, open_timeout=10,
                                              subprotocols=["omr-http"])
            except (OSError, websockets.exceptions.WebSocketException):
                continue  # refused at the upgrade: fine
            sneaky.append(ws)
        await asyncio.sleep(3)  # six times auth_timeout_ms
        still_open = [ws for ws in sneaky if not ws.closed]
        log(f"{len(sneaky)} upgrades with subprotocol omr-http accepted, "
            f"{len(still_open)} still open after 3 s (auth_timeout_ms 500, per-IP limit 1, "
            f"one customer connection held)")
        assert not still_open, (
            f"{len(still_open)} websocket(s) upgraded onto the 'omr-http' protocol stay open "
            f"without hello past auth_timeout_ms, beyond max_connections_per_ip=1 "
            f"(subprotocol {still_open[0].subprotocol!r})")
    finally:
        for ws in sneaky:
            await ws.close()
        await held.close()


# ----------------------------------------------------------------------------
# Sessions that end without a new login

@time_limit(90)
async def test_desktop_is_told_why_it_was_logged_out(env):
    """PROTOCOL.md error codes: `replaced` is "a newer login for the same agent took
    over"; `logged-out` is "the session ended without a new login: the agent's token was
    revoked or reissued, or the agent was removed (or no longer exists: Redis lost its
    data); `reason` says which". Before, every one of these closed the desktop with
    `replaced`, and the desktop said "logged in elsewhere" to an agent whose token a
    supervisor had just revoked, or whose Redis had been restarted without its data."""
    r = env.redis()
    d = env.daemon(r, config={"routing": {"heartbeat_timeout_s": 3}})

    async def ended_by(action, agent_id, want_reason):
        token = add_agent(d, agent_id, agent_id.upper(), "en", 1)
        desk = Agent(d.url, agent_id, token)
        await desk.login()
        await desk.presence("available")
        action(agent_id)
        code, why = await desk.conn.wait_closed(10, f"{agent_id}'s desktop closed")
        err = desk.conn.find(lambda f: f.get("type") == "error") or {}
        log(f"{agent_id}: closed {code} {why!r} after {err}")
        assert (code, why, err.get("code")) == (1008, "logged-out", "logged-out") \
            and want_reason in err.get("reason", ""), (
                f"{agent_id}'s desktop was closed with {code} {why!r} after {err}, not "
                f"logged-out ({want_reason!r})")

    await ended_by(lambda a: ctl(d, "token", "revoke", a), "rv1", "revoked")
    await ended_by(lambda a: ctl(d, "token", "issue", a), "ri1", "new token")
    await ended_by(lambda a: ctl(d, "agent", "remove", "--id", a), "rm1", "removed")
    # Redis restarted without its data: the next heartbeat finds no agent.
    await ended_by(lambda a: r.client().cmd("FLUSHALL"), "fl1", "no longer exists")


async def give_up_after_login(stale, agent_id, token):
    """A desktop sends its login on connection stale (none when token is None), hears
    nothing (the instance is stalled) and gives the connection up: the socket is gone,
    the login sits in the instance's buffers."""
    if token is not None:
        await stale.send({"type": "login", "v": 1, "agent_id": agent_id, "token": token})
    stale.ws.transport.close()


@time_limit(120)
async def test_login_run_late_by_a_stalled_instance_does_not_take_over(env):
    """PROTOCOL.md login: "A login from a second connection for the same agent takes over";
    ARCHITECTURE.md: "A late disconnect of an old desktop cannot take the new one offline".
    A desktop's connection to d2 drops; it reconnects to d1 and sends its login just as d1
    stalls (a VM pause); hearing nothing, it gives that connection up and logs in on d2
    again. When d1 ran again it ran the old login: the live desktop on d2 was closed with
    `replaced` (the shipped desktop then stops, saying "logged in elsewhere"), the stale
    connection's close took the agent offline, and its chat went to another agent after
    routing.agent_grace_s (a review of an 800-agent floor)."""
    r = env.redis()
    d1, d2 = env.daemon(r, name="d1"), env.daemon(r, name="d2")
    token = add_agent(d2, "st1", "Stella", "en", 2)
    other_token = add_agent(d2, "other", "Otto", "en", 2)
    desk = Agent(d2.url, "st1", token)
    await desk.login()
    await desk.presence("available")
    cust = Customer(d2.url, "customer")
    await cust.hello(language="en", name="Kim")
    await desk.wait_item(lambda f: f.get("type") == "assigned", 10, "the chat")
    await desk.conn.close()
    stale = await Conn.open(d1.url + "/ws/agent", "st1 stale@d1")
    d1.proc.send_signal(signal.SIGSTOP)
    try:
        await give_up_after_login(stale, "st1", token)
        await asyncio.sleep(1)
        desk = Agent(d2.url, "st1", token, label="st1 again")
        await desk.login()
        await desk.presence("available")
    finally:
        d1.proc.send_signal(signal.SIGCONT)
    await asyncio.sleep(4)
    # another agent is free for the chat, should the router take it from st1
    other = Agent(d2.url, "other", other_token)
    await other.login()
    await other.presence("available")
    await asyncio.sleep(2)
    rc = r.client()
    state = rc.cmd("HMGET", agent_key("st1"), "presence", "session")
    conv = rc.cmd("HMGET", conv_key(cust.conversation_id), "agent", "state")
    log(f"after d1 ran again: desktop on d2 closed {desk.conn.closed} "
        f"({desk.conn.close_code} {desk.conn.close_reason!r}); agent {state}; chat {conv}; "
        f"d1: {[ln for ln in d1.log_text().splitlines() if 'st1' in ln][-3:]}")
    assert not desk.conn.closed, (
        f"d1 ran the login of a connection given up before the desktop logged in on d2, "
        f"and the live desktop was closed: {desk.conn.close_code} {desk.conn.close_reason!r}")
    assert state[0] == "available", f"the agent whose desktop is logged in on d2 is {state}"
    # the newest connection still wins: a new login through d1 takes over
    newer = Agent(d1.url, "st1", token, label="st1 newer@d1")
    await newer.login()
    code, why = await desk.conn.wait_closed(10, "the d2 desktop replaced by a newer login")
    assert (code, why) == (1008, "replaced"), (code, why)
    assert conv == ["st1", "assigned"], f"the agent's chat: {conv}"


@time_limit(150)
async def test_stale_login_while_newest_desktop_is_lost_takes_over(env, stale_login=True):
    """ARCHITECTURE.md: "The newest connection wins, not the last login run ... Otherwise an
    instance that stalled with a login in its buffers, while the desktop gave that
    connection up and logged in elsewhere, would run it late, close the live desktop, and
    take the agent offline when the stale connection's close followed." 50_desktops.lua
    agent_seen: "A desktop taken for lost ... and still connected is back: its session and
    presence are restored". Was: the stale-login check ran only while the agent had a
    session; while the newest desktop was taken for lost (its instance d1 silent past
    routing.heartbeat_timeout_s) the stale login run late on d2 took over, and when d1 was
    back its desktop, the newest connection, was closed as `replaced`, the agent offline.
    With stale_login False (the control): the desktop is restored."""
    r = env.redis()
    cfg = {"routing": {"heartbeat_timeout_s": 3, "agent_grace_s": 60}}
    d1 = env.daemon(r, "d1", cfg)
    d2 = env.daemon(r, "d2", cfg)
    d3 = env.daemon(r, "d3", cfg)  # ticks while d1 and d2 are stopped
    token = add_agent(d3, "st1", "Stella", "en", 2)
    stale = await Conn.open(d2.url + "/ws/agent", "st1 stale@d2")
    await asyncio.sleep(0.3)
    d2.proc.send_signal(signal.SIGSTOP)
    rc = r.client()
    try:
        await give_up_after_login(stale, "st1", token if stale_login else None)
        await asyncio.sleep(0.5)
        desk = Agent(d1.url, "st1", token, label="st1 newest@d1")
        await desk.login()
        await desk.presence("available")
        d1.proc.send_signal(signal.SIGSTOP)
        try:
            h = await wait_hash(rc, agent_key("st1"), lambda h: h.get("reason") == "lost", 8,
                                "st1 taken for lost while d1 is silent")
            log(f"st1 lost: session {h.get('session')!r} lost_session "
                f"{h.get('lost_session')!r} session_opened_ms {h.get('session_opened_ms')}")
        finally:
            d2.proc.send_signal(signal.SIGCONT)
            await asyncio.sleep(2.5)  # d2 runs the stale login, then its connection's close
            log("after d2 ran: " + str(rc.cmd("HMGET", agent_key("st1"), "session",
                                              "presence", "reason", "session_opened_ms")))
    finally:
        d1.proc.send_signal(signal.SIGCONT)
        d2.proc.send_signal(signal.SIGCONT)
    await asyncio.sleep(4)
    # (restored at d1's next heartbeat, on its own schedule)
    await poll(lambda: rc.cmd("HGET", agent_key("st1"), "presence") == "available", 10)
    state = rc.cmd("HMGET", agent_key("st1"), "presence", "reason", "session")
    log(f"d1 back: newest desktop closed {desk.conn.closed} ({desk.conn.close_code} "
        f"{desk.conn.close_reason!r}); agent {state}; d2: "
        f"{[ln for ln in d2.log_text().splitlines() if 'st1' in ln][-3:]}")
    assert not desk.conn.closed, (
        f"the newest desktop (d1) was closed ({desk.conn.close_code} "
        f"{desk.conn.close_reason!r}) after d2 ran the login of a connection opened before it")
    assert state[0] == "available", f"the agent with its newest desktop logged in: {state}"


@time_limit(150)
async def test_lost_desktop_restored_without_stale_login(env):
    """The control of the test above: without the stale login, d1's desktop is restored
    when d1 is back."""
    await test_stale_login_while_newest_desktop_is_lost_takes_over(env, stale_login=False)


# ----------------------------------------------------------------------------
# Routing Functions (Lua)

class ReviewLua(LuaTestCase):
    def supervisor(self, sid, supervises):
        spec = {"name": sid.upper(), "tenants": [T], "languages": {"en": 10},
                "capacity": {"chat": 1}, "supervises": supervises}
        self.assertIn(self.fcall("omr_agent_upsert", sid, json.dumps(spec)),
                      ("created", "updated"))

    def test_monitor_reads_an_offered_conversation_team_lists(self):
        # PROTOCOL.md Supervisors: `team` lists "one of kind `conversation` per
        # conversation it holds now (offered or assigned ...)"; `monitor`: "the
        # transcript of conversation `conversation_id`, which the supervisor may read
        # when the agent holding it ... is one it supervises". An offered conversation
        # has no assigned_ms, so held_by_this_agent (20_route.lua) takes its holder for
        # an earlier agent of the same id and monitor answers NOTASSIGNED (it worked
        # before 6533abf).
        self.rules({"name": "q", "auto_accept": False, "offer_timeout_s": 60})
        self.agent("a", "en", 1)
        self.supervisor("sup", ["a"])
        self.assertEqual(self.start("c1"), "offered")
        self.msg("c1", "my order never came")
        team = self.fcall("omr_supervisor_team", "sup")
        self.assertEqual([c[0] for c in team[0][6]], ["c1"], team)  # listed, offered
        got = self.fcall("omr_supervisor_monitor", "sup", "c1")
        self.assertIsInstance(got, list, f"monitor of the offered conversation: {got}")
        texts = [dict(zip(e[1][::2], e[1][1::2])).get("text") for e in got]
        self.assertIn("my order never came", texts)

    def _lost_then(self, take_token_away, why):
        self.rules({"name": "q"}, heartbeat_timeout_s=1, agent_grace_s=60)
        self.agent("a", "en", 1)
        self.assertEqual(self.fcall("omr_agent_seen", "a", "s-a"), "ok")
        self.assertEqual(self.start("c1"), "assigned")
        self.tick_after(1.1)  # no heartbeat in time: lost (its instance was cut off)
        self.assertEqual(self.presence("a"), ("offline", "lost"))
        take_token_away()
        # the cut-off instance is back and vouches for the desktop it still holds,
        # the one logged in with the token just taken away
        seen = self.fcall("omr_agent_seen", "a", "s-a")
        a = dict(zip(*[iter(self.r("HGETALL", f"{P}:agent:a"))] * 2))
        reply = self.fcall("omr_conv_message", "c1", "agent", "a", "r-1", "still here", "",
                           "100")
        self.assertEqual(
            (seen, a.get("session")), ("logged-out " + why, ""),
            f"the desktop of a token taken away got its session back at the next heartbeat "
            f"(presence {a.get('presence')}, its reply stored: {reply})")

    def test_revoke_while_lost_is_not_undone_by_the_next_heartbeat(self):
        # README: `omnirouterctl agent revoke --id ana` - "Take the token away: no login
        # until a new one is issued; a desktop logged in now is logged out." A desktop
        # taken for lost (session '' , lost_session kept) is not logged out by
        # log_out (30_agents.lua: only when session ~= ''), and agent_seen
        # (50_desktops.lua) then restores its session: it works on with no token.
        self._lost_then(lambda: self.assertEqual(self.fcall("omr_agent_revoke", "a"),
                                                 "revoked"), "token-revoked")

    def test_token_reissue_while_lost_is_not_undone_by_the_next_heartbeat(self):
        # README: `omnirouterctl agent token --id ana` - "Issue a new token; the old one
        # stops working, and a desktop logged in with it is logged out."
        self._lost_then(lambda: self.update("a", token_sha="sha-a-new", must_exist=True),
                        "token-reissued")


def _lua(name):
    return as_run_test(ReviewLua, name)


if __name__ == "__main__":
    run_tests([test_upgrade_to_the_http_protocol_is_not_a_free_connection,
               test_desktop_is_told_why_it_was_logged_out,
               test_login_run_late_by_a_stalled_instance_does_not_take_over,
               test_stale_login_while_newest_desktop_is_lost_takes_over,
               test_lost_desktop_restored_without_stale_login,
               _lua("test_monitor_reads_an_offered_conversation_team_lists"),
               _lua("test_revoke_while_lost_is_not_undone_by_the_next_heartbeat"),
               _lua("test_token_reissue_while_lost_is_not_undone_by_the_next_heartbeat")])
