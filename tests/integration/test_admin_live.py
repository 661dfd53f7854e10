"""test_admin_live.py - what an administrator changes with omnirouterctl while work is in
flight, on two omnirouterd sharing one Redis (a review of live administration). Each test
failed against the build before its fix:

1. `agent remove` of an agent a chat waited for (a transfer to them) was explained as the
   agent having gone offline.
2. A new agent created with a removed agent's id inherited the declines of the removed one:
   a chat only she could take waited routing.decline_hold_s.
3. `agent token` while an offer was open: the offer timed out while the desktop was logged
   out and counted as the agent's decline, so the agent, back within the grace period, was
   not offered the chat again for routing.decline_hold_s.
4. The desktop and the site changing the presence at the same moment: the site's notice
   (pub/sub) could reach the desktop after the ack of the desktop's later change (the
   command connection), which then showed a presence routing did not use.
5. (From a review of 1-4.) `agent revoke` or `agent token` of an agent taken for lost left its
   offer open, to count as its decline; a notice was lost when the desktop logged in again
   at that moment, or while the router re-made its Redis connection.
6. (From a read of 5.) A stop while a presence was being read again sent the notice on the
   closed bus (a null dereference under UBSan).

    OMR_BUILD_DIR=build/asan python3 tests/integration/test_admin_live.py [NAME...]
"""
import asyncio
import os
import signal
import subprocess
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from omr_harness import (CTL_BIN, Agent, Conn, Customer, _sanitizer_env, add_agent,  # noqa: E402
                         ctl, log, poll, run_tests, time_limit, wait_log)
from test_live_floor import available, cluster, conv, explain, show  # noqa: E402
from test_transfers import transfer  # noqa: E402


def item_of(kind, cid):
    return lambda f: f.get("type") == kind and f.get("conversation_id") == cid


GENERAL = """
queues:
  - name: general
"""


@time_limit(60)
async def test_removed_agent_waited_for_is_explained_as_removed(env):
    """ROUTING.md Explanations: "The trigger names its cause". A chat transferred to bob
    (logged in, on break: it waits for him) is routed on when the site removes bob
    (`agent remove bob`, README). The explanation of the next assignment must say why it
    was routed on: bob was removed (it said "agent bob, whom it waited for, went offline",
    a presence bob never had)."""
    r = env.redis()
    d1, d2 = cluster(env, r, 2, GENERAL)
    ana = await available(d1, "ana", add_agent(d1, "ana", "Ana", "en", 1))
    bob = Agent(d2.url, "bob", add_agent(d2, "bob", "Bob", "en", 1))
    await bob.login()
    await bob.presence("break")
    c = Customer(d2.url, "k")
    await c.hello(language="en", name="K")
    await ana.wait_item(item_of("assigned", c.conversation_id), 5, "assigned to ana")
    rr = await transfer(ana, c.conversation_id, to="bob")
    assert rr.get("type") == "ack", rr
    cy = await available(d1, "cy", add_agent(d1, "cy", "Cy", "en", 1))
    await asyncio.sleep(0.3)
    assert not cy.assigned(c.conversation_id), "it waits for bob"
    rc = r.client()
    try:
        states = [f.get("state") for _, f in rc.xrange("omr:{default}:agent:bob:presence")]
    finally:
        rc.close()
    ctl(d2, "agent", "remove", "bob")
    await cy.wait_item(item_of("assigned", c.conversation_id), 5, "routed on to cy")
    why = explain(d1, c.conversation_id)
    env.expect("went offline" not in why.get("trigger", ""),
               f"bob was removed (his presence history: {states}, never offline), but the "
               f"explanation says: {why.get('trigger')!r}")


OFFERS = """
queues:
  - name: general
    auto_accept: false
    offer_timeout_s: 2
"""


@time_limit(60)
async def test_recreated_agent_does_not_inherit_declines(env):
    """README: `agent remove` deletes an agent; `agent add` of that id afterwards creates a
    new one (ROUTING.md Sticky: "not a new agent created since with a removed agent's id").
    The old ana rejected a chat (not offered to her again for routing.decline_hold_s, 300 s
    by default); the site removes her and creates a new agent ana. The new agent never
    declined anything: when she is available, the waiting chat (nobody else can take it)
    must be offered to her (the removed agent's decline held her off for 300 s)."""
    r = env.redis()
    d1, d2 = cluster(env, r, 2, OFFERS)
    ana = await available(d1, "ana", add_agent(d1, "ana", "Ana", "en", 1))
    c = Customer(d2.url, "k")
    await c.hello(language="en", name="K")
    await ana.wait_item(item_of("offer", c.conversation_id), 5, "offer")
    rej = await ana.reject(c.conversation_id, reason="wrong-skill")
    assert rej.get("type") == "ack", rej
    await ana.wait_item(item_of("revoked", c.conversation_id), 5, "revoked")
    ctl(d2, "agent", "remove", "ana")
    await ana.conn.wait_closed(10, "agent remove")
    ana2 = await available(d2, "ana", add_agent(d2, "ana", "Ana New", "en", 1),
                           label="new ana")
    try:
        await ana2.wait_item(item_of("offer", c.conversation_id), 4,
                             "the waiting chat offered to the new agent ana")
    except AssertionError as e:
        env.expect(False, f"new agent ana (created after the removal) is treated as having "
                   f"declined the chat the removed ana rejected; it waits "
                   f"(state {conv(r, c.conversation_id).get('state')}): {e}")


OFFERS_GRACE = """
queues:
  - name: general
    auto_accept: false
    offer_timeout_s: 2
"""


@time_limit(60)
async def test_token_reissued_with_an_offer_open_does_not_bar_the_agent(env):
    """README: `agent token` issues a new token, the desktop logged in with the old one is
    logged out, "Either way the agent's conversations go back to routing after
    routing.agent_grace_s unless it logs in again before" (ROUTING.md Agent loss: "if it
    logs in again by then it keeps them"). An offer open at the reissue: the agent logs in
    again with the new token within the grace period and is available; the chat, which
    only she can take, must come back to her. It did not: the offer timed out while she
    was logged out and was recorded as her decline (not offered again for
    routing.decline_hold_s, 300 s), though she never declined it. A logout by the site now
    takes the offer back as `agent state offline` does, not as a decline."""
    r = env.redis()
    d1, d2 = cluster(env, r, 2, OFFERS_GRACE, {"routing": {"agent_grace_s": 30}})
    ana = await available(d1, "ana", add_agent(d1, "ana", "Ana", "en", 1))
    c = Customer(d2.url, "k")
    await c.hello(language="en", name="K")
    await ana.wait_item(item_of("offer", c.conversation_id), 5, "offer")
    await asyncio.sleep(0.2)  # (acked)
    tok = ctl(d2, "agent", "token", "--id", "ana").stdout.strip()
    await ana.conn.wait_closed(10, "token reissue")
    await asyncio.sleep(2.5)  # the offer's 2 s run out while she logs in again
    ana2 = Agent(d2.url, "ana", tok, label="ana new token")
    await ana2.login()
    await ana2.presence("available")
    try:
        await ana2.wait_item(item_of("offer", c.conversation_id), 4,
                             "the chat offered again after logging in within the grace")
    except AssertionError as e:
        rc = r.client()
        try:
            decl = rc.hgetall(f"omr:{{default}}:conv:{c.conversation_id}:decl")
        finally:
            rc.close()
        env.expect(False, f"ana logged in again within agent_grace_s (30 s) with the new "
                   f"token and is available, but the chat only she can take waits: its "
                   f"declines {decl}; {e}")


OFFERS_LONG = """
queues:
  - name: general
    auto_accept: false
    offer_timeout_s: 20
"""


async def lost_with_offer(env, r, how):
    """ana, with an offer open (acked), taken for lost (her instance stopped); then the site
    runs `agent HOW` for her: the offer goes to bob at once, not as ana's decline."""
    d1, d2 = cluster(env, r, 2, OFFERS_LONG, {"routing": {"agent_grace_s": 60}})
    ana = await available(d1, "ana", add_agent(d1, "ana", "Ana", "en", 1))
    c = Customer(d2.url, "k")
    await c.hello(language="en", name="K")
    await ana.wait_item(item_of("offer", c.conversation_id), 5, "offer")
    await asyncio.sleep(0.2)  # (acked: the desktop got it)
    d1.proc.send_signal(signal.SIGSTOP)
    try:
        lost = await poll(lambda: show(d2, "ana")["reason"] == "lost", 8, interval=0.05)
        env.expect(lost, f"ana lost: {show(d2, 'ana')}")
        bob = await available(d2, "bob", add_agent(d2, "bob", "Bob", "en", 1))
        tok = None
        if how == "revoke":
            ctl(d2, "agent", "revoke", "--id", "ana")
        elif how == "state offline":
            ctl(d2, "agent", "state", "--id", "ana", "offline")
        else:
            tok = ctl(d2, "agent", "token", "--id", "ana").stdout.strip()
        got = True
        try:
            await bob.wait_item(item_of("offer", c.conversation_id), 3,
                                "the offer goes to bob at once")
        except AssertionError:
            got = False
        env.expect(got, f"`agent {how}` of lost ana with an offer open: the offer was not "
                   f"taken back at once (README: 'an offer open then goes to the next agent "
                   f"at once'); the chat: {conv(r, c.conversation_id)}")
        if not got:
            # let the offer time out, then see whether it counted as ana's decline
            await poll(lambda: conv(r, c.conversation_id).get("agent") != "ana", 25)
            rc = r.client()
            try:
                decl = rc.hgetall(f"omr:{{default}}:conv:{c.conversation_id}:decl")
            finally:
                rc.close()
            env.expect("ana" not in decl,
                       f"the offer open at `agent {how}` counted as ana's decline: {decl}; "
                       f"last_decline {conv(r, c.conversation_id).get('last_decline')}")
    finally:
        d1.proc.send_signal(signal.SIGCONT)
    return d1, d2, c, tok


@time_limit(120)
async def test_revoke_of_lost_agent_takes_offer_back(env):
    await lost_with_offer(env, env.redis(), "revoke")


@time_limit(120)
async def test_token_reissue_of_lost_agent_takes_offer_back(env):
    await lost_with_offer(env, env.redis(), "token")


@time_limit(120)
async def test_control_state_offline_of_lost_agent_takes_offer_back(env):
    """As `agent state ana offline` of the same lost agent did already."""
    await lost_with_offer(env, env.redis(), "state offline")


@time_limit(240)
async def test_presence_set_by_site_during_relogin(env):
    """A desktop logs in again while the site changes the presence (100 rounds, 0-2 ms
    apart): when the login ran first, the welcome showed the old presence and the notice
    went to the replaced connection's desktop, so the new one showed a presence not in
    effect. The notice goes to the desktop here when the presence is read again."""
    r = env.redis()
    d = env.daemon(r, queues=GENERAL)
    tok = add_agent(d, "ana", "Ana", "en", 1)
    ana = await available(d, "ana", tok)
    conns = [ana.conn]
    rc = r.client()
    bad = []
    try:
        for i in range(100):
            site = "break" if i % 2 == 0 else "available"
            old_start = len(conns[0].frames)
            conn = await Conn.open(d.url + "/ws/agent", f"ana#{i}", asyncio.Condition())
            await conn.send({"type": "login", "v": 1, "agent_id": "ana", "token": tok})
            delay = (i % 50) * 40e-6  # 0 .. 2 ms
            t0 = time.perf_counter()
            while time.perf_counter() - t0 < delay:
                pass
            rc.cmd("FCALL", "omr_agent_state", "1", "omr:{default}", "ana", site,
                   "lunch" if site == "break" else "")
            w = await conn.wait_for(lambda f: f.get("type") in ("welcome", "error"), 10,
                                    "welcome")
            assert w.get("type") == "welcome", w
            await asyncio.sleep(0.3)
            view = w.get("presence")
            seen = [("welcome", view)]
            for f in conn.frames:
                if f.get("type") == "presence":
                    view = f.get("presence")
                    seen.append(("notice", view))
            truth = rc.cmd("HGET", "omr:{default}:agent:ana", "presence")
            if view != truth:
                old = [(f.get("type"), f.get("presence"), f.get("code"))
                       for f in conns[0].frames[old_start:]]
                bad.append(f"round {i} (delay {delay * 1e3:.2f} ms, site {site}): desktop "
                           f"shows {view}, in effect {truth}; frames {seen}; the replaced "
                           f"connection got {old}")
                log(bad[-1])
            for c in conns:
                await c.close()
            conns = [conn]
    finally:
        rc.close()
        for c in conns:
            await c.close()
    env.expect(not bad, f"{len(bad)} of 100 relogins ended showing a presence not in "
               f"effect:\n  " + "\n  ".join(bad[:5]))


def command_connections(rc):
    """Ids of the clients that are not subscribers and not rc itself."""
    me = rc.cmd("CLIENT", "ID")
    out = []
    for line in rc.cmd("CLIENT", "LIST").splitlines():
        f = dict(kv.split("=", 1) for kv in line.split() if "=" in kv)
        if int(f["id"]) != me and f.get("psub", "0") == "0" and f.get("sub", "0") == "0":
            out.append(f["id"])
    return out


@time_limit(60)
async def test_presence_notice_while_command_connection_reconnects(env):
    """The site changes the presence while the router re-makes its command connection (the
    pub/sub one stays): the notice, which cannot be read again then, says what the message
    said (it was dropped)."""
    r = env.redis()
    d = env.daemon(r, config={"redis": {"reconnect_min_ms": 1500, "reconnect_max_ms": 5000}},
                   queues=GENERAL)
    ana = await available(d, "ana", add_agent(d, "ana", "Ana", "en", 1))
    rc = r.client()
    try:
        ids = command_connections(rc)
        assert len(ids) == 1, f"one command connection expected: {ids}"
        rc.cmd("CLIENT", "KILL", "ID", ids[0])
        await wait_log(d, "connection lost", 5)
        # the site puts ana on break (what omnirouterctl agent state does)
        rc.cmd("FCALL", "omr_agent_state", "1", "omr:{default}", "ana", "break", "lunch")
        await wait_log(d, "redis: ready", 10, count=2)
        await asyncio.sleep(1.0)
        truth = rc.cmd("HGET", "omr:{default}:agent:ana", "presence")
    finally:
        rc.close()
    notices = [f for f in ana.conn.frames if f.get("type") == "presence"]
    env.expect(not ana.conn.closed, "the desktop stays connected")
    env.expect(truth == "break" and any(f.get("presence") == "break" for f in notices),
               f"ana is on {truth} (set by the site while the router re-made its command "
               f"connection); her desktop, still connected, got no notice: {notices}")


@time_limit(60)
async def test_stop_with_a_presence_read_in_flight(env):
    """The daemon stops (SIGTERM) while it reads a presence again for a notice (Redis held by
    CLIENT PAUSE right after the change): the read ends unanswered at the close, and the
    notice must not be sent then (the bus is closed): exit 0, no sanitizer report."""
    r = env.redis()
    d = env.daemon(r, queues=GENERAL)
    await available(d, "ana", add_agent(d, "ana", "Ana", "en", 1))
    rc = r.client()
    try:
        rc.pipeline([("FCALL", "omr_agent_state", "1", "omr:{default}", "ana", "break",
                      "lunch"), ("CLIENT", "PAUSE", "3000", "ALL")])
        await asyncio.sleep(0.3)  # the "p:" message came; its read waits for Redis
        d.stop()
    finally:
        rc.cmd("CLIENT", "UNPAUSE")
        rc.close()


def desktop_view(agent, start):
    """The presence the desktop shows after frames[start:], applied in arrival order."""
    view = None
    for f in agent.conn.frames[start:]:
        if f.get("type") == "ack" and "presence" in f:
            view = f["presence"]
        elif f.get("type") == "presence":
            view = f["presence"]
    return view


@time_limit(150)
async def test_presence_changed_by_the_desktop_and_the_site_at_once(env):
    """PROTOCOL.md presence: the desktop shows the presence routing uses ("Show it: the agent
    is not getting work"). 100 rounds of `agent state` on the other instance while the
    desktop asks for the opposite: what the desktop shows at the end (its ack and the
    notices, in arrival order) must be the presence in effect."""
    r = env.redis()
    d1, d2 = cluster(env, r, 2, GENERAL)
    ana = await available(d1, "ana", add_agent(d1, "ana", "Ana", "en", 1))
    bad = []
    for i in range(100):
        mine, site = ("available", "break") if i % 2 == 0 else ("break", "available")
        start = len(ana.conn.frames)
        rid = ana.next_id("p")
        argv = [CTL_BIN, "-c", d2.cfg_path, "agent", "state", "--id", "ana", site]
        if site == "break":
            argv += ["--reason", "lunch"]
        proc = await asyncio.create_subprocess_exec(*argv, stdout=subprocess.DEVNULL,
                                                    stderr=subprocess.DEVNULL,
                                                    env=_sanitizer_env())
        await asyncio.sleep(0.005 * (i % 7))
        msg = {"type": "presence", "presence": mine, "id": rid}
        if mine == "break":
            msg["reason"] = "coffee"
        await ana.conn.request(msg, 10)
        await proc.wait()
        await asyncio.sleep(0.25)
        truth = show(d1, "ana")["presence"]
        view = desktop_view(ana, start)
        if view != truth:
            frames = [(f.get("type"), f.get("presence"), f.get("reason"))
                      for f in ana.conn.frames[start:]]
            rc = r.client()
            try:
                hist = [(h.get("state"), h.get("reason"))
                        for _, h in rc.xrange("omr:{default}:agent:ana:presence")[-2:]]
            finally:
                rc.close()
            bad.append(f"round {i}: desktop shows {view}, router has {truth}; the desktop "
                       f"got, in this order, {frames}; the router's presence history ends "
                       f"with {hist}")
    log(f"{len(bad)} mismatches")
    env.expect(not bad, "the desktop shows another presence than the one routed by:\n  "
               + "\n  ".join(bad[:10]))


if __name__ == "__main__":
    run_tests([test_removed_agent_waited_for_is_explained_as_removed,
               test_recreated_agent_does_not_inherit_declines,
               test_token_reissued_with_an_offer_open_does_not_bar_the_agent,
               test_presence_changed_by_the_desktop_and_the_site_at_once,
               test_revoke_of_lost_agent_takes_offer_back,
               test_token_reissue_of_lost_agent_takes_offer_back,
               test_control_state_offline_of_lost_agent_takes_offer_back,
               test_presence_set_by_site_during_relogin,
               test_presence_notice_while_command_connection_reconnects,
               test_stop_with_a_presence_read_in_flight])
