"""test_access_live.py - who may read and do what while connections are live.

The site changes an agent while its desktop is connected: revokes or reissues its token,
takes a tenant away, removes it, changes a supervisor's team. And a customer id serves two
tenants, a conversation is transferred, a customer has two conversations open at once. What
the issue promises: an agent reads only conversations of tenants it serves that are assigned
to it (or its supervised agents'), with the customer's earlier conversations as history; a
revoked or reissued token stops working, and a desktop logged in with it is logged out.

Fixed after these tests showed them (each failed before):
  - history listed, and let the agent read live, the customer's other conversation still open
    with another agent (test_history_reads_open_conversation_of_another_agent): history is
    the customer's earlier conversations that are closed;
  - a desktop's replies and close that reached Redis after its token was revoked or reissued
    (its instance stalled, or the requests held by backpressure) were stored and acted on
    (test_revoked_desktop_frames_after_revocation_stored and the two after it): an agent's
    message, close and offer accept carry its desktop session, which must still be its own.
"""

import asyncio
import os
import signal
import sys
import threading
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from omr_harness import (TOKEN_RE, Agent, Customer, conv_key, ctl, log,  # noqa: E402
                         run_tests, time_limit)
from test_security_edges import add, assigned_to  # noqa: E402


async def req(agent, frame, timeout=10):
    """(answer, frames before it) or (None, []) when the connection is gone."""
    if agent.conn.closed:
        return None, []
    start = len(agent.conn.frames)
    try:
        r = await agent.conn.request(frame, timeout)
    except Exception as e:  # noqa: BLE001 (closed meanwhile)
        return {"_exc": str(e)[:200]}, []
    end = agent.conn.frames.index(r)
    return r, [f for f in agent.conn.frames[start:end]
               if f.get("type") in ("history", "monitor", "team")]


async def served_twice(ana, tenant, customer_id, label, secret="secret text"):
    first = Customer(ana.base_url, f"{label} #1")
    await first.hello(language="en", name="Kim", tenant=tenant, customer_id=customer_id)
    await first.send(f"{secret} ({tenant})", id="k-1")
    await assigned_to(ana, first)
    await ana.close_conv(first.conversation_id)
    await first.close()
    second = Customer(ana.base_url, f"{label} #2")
    await second.hello(language="en", name="Kim", tenant=tenant, customer_id=customer_id)
    a = await assigned_to(ana, second)
    return first, second, a


# ----------------------------------------------------------------------------

@time_limit(120)
async def test_revoke_live_desktop_everything_refused(env):
    """README: `omnirouterctl agent revoke` - "Take the token away: no login until a new
    one is issued; a desktop logged in now is logged out." After the ctl returns, nothing
    sent on the old desktop may work (reply, close, history, team, transfer)."""
    d = env.daemon(env.redis())
    tok = add(d, "ana", "Ana", "en", "--capacity", "3", "--tenants", "default")
    add(d, "bob", "Bob", "en", "--capacity", "3")
    ana = Agent(d.url, "ana", tok)
    try:
        await ana.login()
        await ana.presence("available")
        first, second, a = await served_twice(ana, "default", "cust-1", "kim")
        conv = second.conversation_id
        # revoke, and hammer the connection meanwhile
        done = threading.Event()
        result = {}

        def run():
            result["p"] = ctl(d, "agent", "revoke", "--id", "ana")
            result["t"] = time.time()
            done.set()
        th = threading.Thread(target=run)
        th.start()
        i = 0
        while not done.is_set() and not ana.conn.closed:
            i += 1
            r, _ = await req(ana, {"type": "message", "conversation_id": conv,
                                   "id": f"race-{i}", "text": f"race {i}"}, 5)
            if r is None:
                break
        th.join()
        t_revoked = result["t"]
        await asyncio.sleep(0.3)
        # after the ctl returned: every kind of frame
        probes = [
            {"type": "message", "conversation_id": conv, "id": "after-1", "text": "after"},
            {"type": "history", "conversation_id": conv, "earlier": first.conversation_id,
             "id": "after-2"},
            {"type": "team", "id": "after-3"},
            {"type": "transfer", "conversation_id": conv, "agent": "bob", "id": "after-4"},
            {"type": "close", "conversation_id": conv, "id": "after-5"},
        ]
        worked = []
        for p in probes:
            r, items = await req(ana, p, 5)
            if r and r.get("type") == "ack":
                worked.append((p["type"], r, len(items)))
        env.expect(not worked, f"after `agent revoke` returned the old desktop still works: "
                   f"{worked}")
        try:
            await ana.conn.wait_closed(10, "revoke")  # (told through pub/sub: its own schedule)
        except AssertionError:
            pass
        env.expect(ana.conn.closed, f"desktop still open after revoke; frames "
                   f"{[f.get('type') for f in ana.conn.frames[-5:]]}")
        # the stored transcript: any race message stored after the revoke?
        rc = d.redis.client()
        late = []
        for sid, f in rc.xrange(conv_key(conv) + ":log"):
            ms = int(sid.split("-")[0])
            if f.get("from") == "agent" and ms > t_revoked * 1000:
                late.append((sid, f.get("text")))
        env.expect(not late, f"agent replies stored after revoke returned: {late}")
        log(f"race replies sent: {i}; last frames {[f.get('type') for f in ana.conn.frames[-3:]]}")
        # the old token cannot log in
        again = Agent(d.url, "ana", tok, label="relogin old token")
        try:
            await again.login()
            env.expect(False, "the revoked token logs in again")
        except AssertionError as e:
            log(f"relogin refused as expected: {str(e)[:120]}")
        finally:
            await again.close()
    finally:
        await ana.close()


@time_limit(150)
async def test_reissue_then_old_token_and_new_token(env):
    """README: "Issue a new token; the old one stops working". The old token must not log
    in after `token issue`; the new one must, and keep the conversation."""
    d = env.daemon(env.redis())
    tok = add(d, "ana", "Ana", "en", "--capacity", "2")
    ana = Agent(d.url, "ana", tok)
    kim = Customer(d.url, "kim")
    try:
        await ana.login()
        await ana.presence("available")
        await kim.hello(language="en", name="Kim")
        await assigned_to(ana, kim)
        new = ctl(d, "token", "issue", "ana").stdout.strip()
        assert TOKEN_RE.match(new), new
        code = await ana.conn.wait_closed(10, "reissue")
        log(f"old desktop closed {code}")
        old = Agent(d.url, "ana", tok, label="old token")
        try:
            await old.login()
            env.expect(False, "old token still logs in after reissue")
        except AssertionError:
            pass
        finally:
            await old.close()
        n = Agent(d.url, "ana", new, label="new token")
        await n.login()
        await assigned_to(n, kim)
        r = await n.reply(kim.conversation_id, "still here")
        assert r.get("type") == "ack", r
        await n.close()
    finally:
        await ana.close()
        await kim.close()


@time_limit(150)
async def test_tenant_removed_while_holding(env):
    """PROTOCOL.md history: "An agent taken off a tenant keeps the conversations of that
    tenant it holds until it closes or transfers them ...; it no longer reads that
    tenant's earlier ones." Checks: replies still work (documented); history refused;
    a new conversation of the removed tenant is not routed; login resend; after close
    nothing of that tenant is readable."""
    d = env.daemon(env.redis())
    tok = add(d, "ana", "Ana", "en", "--capacity", "3", "--tenants", "acme,globex")
    ana = Agent(d.url, "ana", tok)
    try:
        await ana.login()
        await ana.presence("available")
        first, second, a = await served_twice(ana, "acme", "cust-1", "acme kim")
        assert first.conversation_id in a.get("history", []), a
        ctl(d, "agent", "update", "--id", "ana", "--tenants", "globex")
        r = await ana.reply(second.conversation_id, "still yours", expect_ack=False)
        env.expect(r.get("type") == "ack", f"reply after tenant removal (documented to "
                   f"work): {r}")
        r, items = await req(ana, {"type": "history", "conversation_id":
                                   second.conversation_id,
                                   "earlier": first.conversation_id, "id": "h1"})
        env.expect(r.get("code") == "not-assigned" and not items,
                   f"history after tenant removal: {r} {len(items)} items")
        # new acme customer: not routed to ana
        third = Customer(d.url, "acme new")
        await third.hello(language="en", name="New", tenant="acme")
        await asyncio.sleep(1.0)
        env.expect(not ana.assigned(third.conversation_id),
                   "ana got a new acme conversation after acme was removed")
        # login again: the held one comes back
        await ana.close()
        await asyncio.sleep(0.3)
        ana2 = Agent(d.url, "ana", tok, label="ana relogin")
        await ana2.login()
        try:
            await assigned_to(ana2, second)
        except AssertionError as e:
            env.expect(False, f"held conversation not resent at login: {e}")
        await ana2.close_conv(second.conversation_id)
        r, items = await req(ana2, {"type": "history", "conversation_id":
                                    second.conversation_id,
                                    "earlier": first.conversation_id, "id": "h2"})
        env.expect(r.get("code") == "not-assigned" and not items,
                   f"history after close: {r}")
        await ana2.close()
        await third.close()
        await second.close()
    finally:
        await ana.close()


@time_limit(150)
async def test_offer_of_removed_tenant(env):
    """An offer of tenant acme open when acme is taken from the agent: can it still be
    accepted? (docs say held conversations stay; an offer is not yet the agent's:
    PROTOCOL.md accept "then the conversation is the agent's")."""
    queues = """
queues:
  - name: offers
    auto_accept: false
    offer_timeout_s: 60
"""
    d = env.daemon(env.redis(), queues=queues)
    tok = add(d, "ana", "Ana", "en", "--capacity", "3", "--tenants", "acme,globex")
    ana = Agent(d.url, "ana", tok)
    kim = Customer(d.url, "kim")
    try:
        await ana.login()
        await ana.presence("available")
        await kim.hello(language="en", name="Kim", tenant="acme", customer_id="k1")
        await ana.wait_item(lambda f: f.get("type") == "offer", 10, "offer")
        ctl(d, "agent", "update", "--id", "ana", "--tenants", "globex")
        await asyncio.sleep(0.5)
        revoked = ana.revoked(kim.conversation_id)
        r = await ana.accept(kim.conversation_id)
        log(f"accept after tenant removal: {r}; revoked items: {revoked}")
        # Observation only: PROTOCOL.md counts an offered conversation as held ("team":
        # "per conversation it holds now (offered or assigned)"), and a held one stays.
        log(f"OBSERVATION: accept of an offer of a tenant no longer served -> {r}")
    finally:
        await ana.close()
        await kim.close()


@time_limit(150)
async def test_agent_removed_while_connected(env):
    """README: `agent remove` - "Delete an agent (refused while it holds open
    conversations)". A connected agent without conversations is removed: its desktop is
    logged out (PROTOCOL.md logged-out) and nothing works any more."""
    d = env.daemon(env.redis())
    tok = add(d, "ana", "Ana", "en", "--capacity", "2")
    ana = Agent(d.url, "ana", tok)
    try:
        await ana.login()
        await ana.presence("available")
        first, second, a = await served_twice(ana, "default", "cust-1", "kim")
        p = ctl(d, "agent", "remove", "ana", check=False)
        log(f"remove while holding: rc={p.returncode} {p.stderr.strip()}")
        env.expect(p.returncode != 0, "remove while holding an open conversation worked")
        await ana.close_conv(second.conversation_id)
        await asyncio.sleep(0.3)
        ctl(d, "agent", "remove", "ana")
        try:
            await ana.conn.wait_closed(10, "remove")  # (told through pub/sub: its own schedule)
        except AssertionError:
            pass
        r, items = await req(ana, {"type": "history", "conversation_id":
                                   second.conversation_id,
                                   "earlier": first.conversation_id, "id": "h1"})
        env.expect(r is None or r.get("type") != "ack",
                   f"removed agent's desktop still reads history: {r} {len(items)}")
        env.expect(ana.conn.closed, "desktop of a removed agent still open")
    finally:
        await ana.close()


# ----------------------------------------------------------------------------
# supervisors

@time_limit(150)
async def test_supervisor_scope_changes_live(env):
    """PROTOCOL.md Supervisors: "Who may read what is decided in Redis at each request, so
    a change of supervises or of the tenants applies to the next request"."""
    d = env.daemon(env.redis())
    tok_bob = add(d, "bob", "Bob", "en", "--capacity", "3", "--tenants", "acme,globex")
    tok_sup = add(d, "sup", "Sue", "fr", "--tenants", "acme,globex", "--supervises", "bob")
    bob, sup = Agent(d.url, "bob", tok_bob), Agent(d.url, "sup", tok_sup, label="sup")
    a1, g1 = Customer(d.url, "acme"), Customer(d.url, "globex")
    try:
        await bob.login()
        await sup.login()
        await bob.presence("available")
        await a1.hello(language="en", name="A", tenant="acme")
        await a1.send("acme secret", id="s1")
        await assigned_to(bob, a1)
        await g1.hello(language="en", name="G", tenant="globex")
        await g1.send("globex secret", id="s1")
        await assigned_to(bob, g1)

        async def can(conv, rid):
            r, items = await req(sup, {"type": "monitor", "conversation_id": conv, "id": rid})
            return r.get("type") == "ack", r, [i.get("text") for i in items]

        ok, r, t = await can(g1.conversation_id, "m1")
        assert ok, (r, t)
        # sup loses globex
        ctl(d, "agent", "update", "--id", "sup", "--tenants", "acme")
        ok, r, t = await can(g1.conversation_id, "m2")
        env.expect(not ok, f"sup reads globex after losing it: {t}")
        r, team = await req(sup, {"type": "team", "id": "t1"})
        convs = [x.get("conversation_id") for x in team if x.get("kind") == "conversation"]
        env.expect(g1.conversation_id not in convs, f"team still lists globex conv: {team}")
        # sup loses bob
        ctl(d, "agent", "update", "--id", "sup", "--supervises", "")
        ok, r, t = await can(a1.conversation_id, "m3")
        env.expect(not ok, f"sup reads bob's conversation after bob left the team: {t}")
        # bob transfers acme conv to another, sup supervises bob again
        ctl(d, "agent", "update", "--id", "sup", "--supervises", "bob")
        tok_eve = add(d, "eve", "Eve", "en", "--capacity", "3", "--tenants", "acme")
        eve = Agent(d.url, "eve", tok_eve)
        await eve.login()
        await eve.presence("available")
        r = await bob.conn.request({"type": "transfer", "conversation_id": a1.conversation_id,
                                    "agent": "eve", "id": "tr1"})
        assert r.get("type") == "ack", r
        await assigned_to(eve, a1)
        ok, r, t = await can(a1.conversation_id, "m4")
        env.expect(not ok, f"sup reads the conversation bob transferred to eve: {t}")
        # and bob: history of it?
        await eve.close()
    finally:
        for x in (bob, sup, a1, g1):
            await x.close()


@time_limit(150)
async def test_supervisor_revoked_live(env):
    """A supervisor whose token is revoked while connected: team/monitor stop."""
    d = env.daemon(env.redis())
    tok_bob = add(d, "bob", "Bob", "en", "--capacity", "3")
    tok_sup = add(d, "sup", "Sue", "fr", "--supervises", "bob")
    bob, sup = Agent(d.url, "bob", tok_bob), Agent(d.url, "sup", tok_sup, label="sup")
    a1 = Customer(d.url, "a1")
    try:
        await bob.login()
        await sup.login()
        await bob.presence("available")
        await a1.hello(language="en", name="A")
        await assigned_to(bob, a1)
        ctl(d, "agent", "revoke", "--id", "sup")
        await asyncio.sleep(0.3)
        r, items = await req(sup, {"type": "monitor", "conversation_id": a1.conversation_id,
                                   "id": "m1"})
        env.expect(r is None or r.get("type") != "ack", f"revoked sup monitors: {r}")
        try:
            await sup.conn.wait_closed(10, "revoke")  # (told through pub/sub: its own schedule)
        except AssertionError:
            pass
        env.expect(sup.conn.closed, "revoked supervisor's desktop still open")
    finally:
        for x in (bob, sup, a1):
            await x.close()


# ----------------------------------------------------------------------------
# history

@time_limit(150)
async def test_history_same_customer_id_two_tenants(env):
    """PROTOCOL.md assigned: "`history` lists the customer's earlier conversations in this
    tenant". An agent serving acme and globex: customer id cust-1 in both tenants. The
    globex conversation must not list nor read acme's."""
    d = env.daemon(env.redis())
    tok = add(d, "ana", "Ana", "en", "--capacity", "3", "--tenants", "acme,globex")
    ana = Agent(d.url, "ana", tok)
    try:
        await ana.login()
        await ana.presence("available")
        af, asec, aa = await served_twice(ana, "acme", "cust-1", "acme kim", "ACME-SECRET")
        g = Customer(d.url, "globex kim")
        await g.hello(language="en", name="Kim", tenant="globex", customer_id="cust-1")
        ga = await assigned_to(ana, g)
        env.expect(not set(ga.get("history") or []) & {af.conversation_id,
                                                          asec.conversation_id},
                   f"globex assigned lists acme conversations: {ga}")
        for e in (af.conversation_id, asec.conversation_id):
            r, items = await req(ana, {"type": "history", "conversation_id": g.conversation_id,
                                       "earlier": e, "id": "h-" + e[:4]})
            env.expect(r.get("code") == "not-assigned" and not items,
                       f"globex conversation reads acme's: {r} {[i.get('text') for i in items]}")
        # Another agent of globex only
        tok_b = add(d, "bob", "Bob", "en", "--capacity", "3", "--tenants", "globex")
        await g.close()
        await ana.close_conv(g.conversation_id)
        await ana.presence("away")
        bob = Agent(d.url, "bob", tok_b)
        await bob.login()
        await bob.presence("available")
        g2 = Customer(d.url, "globex kim 2")
        await g2.hello(language="en", name="Kim", tenant="globex", customer_id="cust-1")
        ba = await assigned_to(bob, g2)
        env.expect(not set(ba.get("history") or []) & {af.conversation_id,
                                                          asec.conversation_id},
                   f"bob (globex) sees acme conversation ids: {ba}")
        for e in (af.conversation_id, asec.conversation_id):
            r, items = await req(bob, {"type": "history", "conversation_id":
                                       g2.conversation_id, "earlier": e, "id": "b-" + e[:4]})
            env.expect(r.get("code") == "not-assigned" and not items,
                       f"bob reads acme's: {r} {[i.get('text') for i in items]}")
        await bob.close()
        await g2.close()
    finally:
        await ana.close()


@time_limit(150)
async def test_history_after_transfer(env):
    """PROTOCOL.md transfer: "the conversation is no longer this agent's"; history:
    conversation_id "must be this agent's (assigned or closed)". After ana transfers the
    conversation to bob, ana reads no history through it, gets none of its new messages."""
    d = env.daemon(env.redis())
    tok_a = add(d, "ana", "Ana", "en", "--capacity", "3")
    tok_b = add(d, "bob", "Bob", "en", "--capacity", "3")
    ana, bob = Agent(d.url, "ana", tok_a), Agent(d.url, "bob", tok_b)
    try:
        await ana.login()
        await ana.presence("available")
        first, second, a = await served_twice(ana, "default", "cust-1", "kim")
        await bob.login()
        await bob.presence("available")
        r = await ana.conn.request({"type": "transfer", "conversation_id":
                                    second.conversation_id, "agent": "bob", "id": "t1"})
        assert r.get("type") == "ack", r
        await assigned_to(bob, second)
        r, items = await req(ana, {"type": "history", "conversation_id": second.conversation_id,
                                   "earlier": first.conversation_id, "id": "h1"})
        env.expect(r.get("code") == "not-assigned" and not items,
                   f"ana still reads history through the transferred conversation: {r}")
        await second.send("for bob only", id="c-after")
        await asyncio.sleep(1.0)
        leaked = [m for m in ana.messages(second.conversation_id) if m.get("text") ==
                  "for bob only"]
        env.expect(not leaked, f"ana received a message after transfer: {leaked}")
        r = await ana.reply(second.conversation_id, "ana again", expect_ack=False)
        env.expect(r.get("type") != "ack", f"ana replies after transfer: {r}")
        # ana re-login: the transferred conversation must not come back
        await ana.close()
        await asyncio.sleep(0.3)
        ana2 = Agent(d.url, "ana", tok_a, label="ana relogin")
        await ana2.login()
        await asyncio.sleep(1.0)
        got = [f for f in ana2.order if f.get("conversation_id") == second.conversation_id
               and f.get("type") == "message" and f.get("text") == "for bob only"]
        env.expect(not got, f"ana's relogin delivers bob's new message: {got}")
        await ana2.close()
    finally:
        await ana.close()
        await bob.close()
        await second.close()


@time_limit(150)
async def test_history_reads_open_conversation_of_another_agent(env):
    """Issue: "an agent [reads] only conversations ... that are assigned to them"; the
    exception is "history from earlier conversations of the same customer". 45_customer.lua
    conv_history says an agent may not read "a later one, which another agent may hold
    now". An EARLIER conversation of the same customer that is still OPEN with another
    agent is held by that agent now too: can ana read bob's live chat through `history`,
    again and again, seeing what bob writes after ana got her own chat?"""
    d = env.daemon(env.redis())
    tok_b = add(d, "bob", "Bob", "en", "--capacity", "1")
    tok_a = add(d, "ana", "Ana", "en", "--capacity", "1")
    bob, ana = Agent(d.url, "bob", tok_b), Agent(d.url, "ana", tok_a)
    x, y = Customer(d.url, "kim tab 1"), Customer(d.url, "kim tab 2")
    try:
        await bob.login()
        await bob.presence("available")
        await x.hello(language="en", name="Kim", customer_id="cust-1")
        await x.send("tab one: my account number is 12345", id="x1")
        await assigned_to(bob, x)
        await ana.login()
        await ana.presence("available")
        await y.hello(language="en", name="Kim", customer_id="cust-1")
        a = await assigned_to(ana, y)
        env.expect(x.conversation_id not in (a.get("history") or []),
                   f"ana's assigned lists bob's OPEN conversation as history: {a}")
        r, items = await req(ana, {"type": "history", "conversation_id": y.conversation_id,
                                   "earlier": x.conversation_id, "id": "h1"})
        first = [i.get("text") for i in items]
        await bob.reply(x.conversation_id, "BOB-LIVE-REPLY after ana got her chat")
        r2, items2 = await req(ana, {"type": "history", "conversation_id": y.conversation_id,
                                     "earlier": x.conversation_id, "id": "h2"})
        live = [i.get("text") for i in items2 if i.get("text") and "BOB-LIVE" in i["text"]]
        env.expect(r.get("code") == "not-assigned" and not items,
                   f"ana reads bob's open conversation through history: {r.get('type')} "
                   f"{first}")
        env.expect(not live, f"ana keeps reading bob's open conversation live: {live}")
        # ana's own chat ends; bob's goes on
        await ana.close_conv(y.conversation_id)
        await bob.reply(x.conversation_id, "BOB-AFTER-ANA-CLOSED")
        r3, items3 = await req(ana, {"type": "history", "conversation_id": y.conversation_id,
                                     "earlier": x.conversation_id, "id": "h3"})
        after = [i.get("text") for i in items3 if "BOB-AFTER" in (i.get("text") or "")]
        env.expect(not after, f"after closing her own chat ana still reads bob's open one: "
                   f"{after}")
    finally:
        for c in (bob, ana, x, y):
            await c.close()


async def ana_serving_kim(agent_daemon, customer_daemon):
    """ana (capacity 2, logged in and available on agent_daemon) holding the chat of kim (who
    said hello on customer_daemon)."""
    tok = add(agent_daemon, "ana", "Ana", "en", "--capacity", "2")
    ana = Agent(agent_daemon.url, "ana", tok)
    kim = Customer(customer_daemon.url, "kim")
    await ana.login()
    await ana.presence("available")
    await kim.hello(language="en", name="Kim")
    await assigned_to(ana, kim)
    return ana, kim


async def works_for(agent, conv, seconds):
    """Sends a reply every 0.2 s for `seconds`; returns the times (s after start) of the
    replies acked."""
    t0 = time.monotonic()
    acked = []
    i = 0
    while time.monotonic() - t0 < seconds and not agent.conn.closed:
        i += 1
        try:
            r = await agent.conn.request({"type": "message", "conversation_id": conv,
                                          "id": f"w-{i}", "text": f"after revoke {i}"}, 3)
        except AssertionError:
            break
        if r.get("type") == "ack":
            acked.append(round(time.monotonic() - t0, 2))
        await asyncio.sleep(0.2)
    return acked


@time_limit(120)
async def test_revoke_desktop_on_other_instance(env):
    r = env.redis()
    d1 = env.daemon(r, "d1")
    d2 = env.daemon(r, "d2")
    ana, kim = await ana_serving_kim(d2, d1)
    try:
        ctl(d1, "agent", "revoke", "--id", "ana")
        acked = await works_for(ana, kim.conversation_id, 3)
        env.expect(not acked, f"desktop on the other instance kept working after revoke: "
                   f"acks at {acked}")
    finally:
        await ana.close()
        await kim.close()


@time_limit(120)
async def test_revoke_while_notification_missed(env):
    """ARCHITECTURE/router.c: a desktop that missed the logged-out notification (its
    instance was resubscribing) learns it at the next vouch. How long does the revoked
    desktop keep working? (expectation: at most until the instance is ready again)"""
    r = env.redis()
    d1 = env.daemon(r, "d1")
    ana, kim = await ana_serving_kim(d1, d1)
    try:
        rc = r.client()
        out = rc.pipeline([["CLIENT", "KILL", "TYPE", "pubsub"],
                           ["FCALL", "omr_agent_revoke", "1", "omr:{default}", "ana"]])
        log(f"kill+revoke: {out}")
        acked = await works_for(ana, kim.conversation_id, 15)
        log(f"acked after revoke at {acked}; closed={ana.conn.closed} "
            f"code={ana.conn.close_code}")
        env.expect(len(acked) == 0 or max(acked) < 2.0,
                   f"revoked desktop (notification missed) kept replying for "
                   f"{max(acked) if acked else 0}s: acks at {acked}")
        env.expect(ana.conn.closed, "revoked desktop never closed")
    finally:
        await ana.close()
        await kim.close()


async def frozen_revoke(env, d, ana, kim, frames, how=("agent", "revoke", "--id", "ana")):
    """Freezes the daemon, revokes ana's token (Redis answers: the ctl works), has the old
    desktop send `frames`, thaws the daemon. Returns the frames answered."""
    os.kill(d.proc.pid, signal.SIGSTOP)
    try:
        p = ctl(d, *how)
        log(f"while frozen: {' '.join(how)} -> {p.stdout.strip()}")
        t_rev = time.time()
        for f in frames:
            await ana.conn.send(f)
    finally:
        os.kill(d.proc.pid, signal.SIGCONT)
    await asyncio.sleep(2.0)
    return t_rev


def agent_entries(r, conv):
    rc = r.client()
    try:
        return [(sid, f) for sid, f in rc.xrange(f"omr:{{default}}:conv:{conv}:log")
                if f.get("from") == "agent" or f.get("event") == "closed"]
    finally:
        rc.close()


@time_limit(120)
async def test_revoked_desktop_frames_after_revocation_stored(env):
    """README: revoke - "Take the token away ... a desktop logged in now is logged out";
    PROTOCOL.md logged-out. Frames the old desktop sends AFTER the revocation was stored
    (here: while its daemon was briefly frozen, as a busy/stalled instance is) must not
    act: a reply must not reach the customer, a close must not close the chat."""
    r = env.redis()
    d1 = env.daemon(r, "d1")
    ana, kim = await ana_serving_kim(d1, d1)
    try:
        conv = kim.conversation_id
        frames = [{"type": "message", "conversation_id": conv, "id": "post-revoke-1",
                   "text": "sent after my token was revoked"},
                  {"type": "message", "conversation_id": conv, "id": "post-revoke-2",
                   "text": "second after revoke"},
                  {"type": "close", "conversation_id": conv, "id": "post-revoke-close",
                   "disposition": "spam"}]
        t_rev = await frozen_revoke(env, d1, ana, kim, frames)
        got = agent_entries(r, conv)
        late = [(sid, f.get("msgid") or f.get("event")) for sid, f in got
                if int(sid.split("-")[0]) > t_rev * 1000]
        log(f"entries after revoke: {late}; desktop closed={ana.conn.closed}")
        seen = [f.get("text") for f in kim.conn.frames if f.get("from") == "agent"]
        rc = r.client()
        state = rc.cmd("HGET", f"omr:{{default}}:conv:{conv}", "state")
        disp = rc.cmd("HGET", f"omr:{{default}}:conv:{conv}", "disposition")
        rc.close()
        env.expect(not late, f"frames the revoked desktop sent after `agent revoke` were "
                   f"stored: {late}; the customer saw {seen}; conversation state={state} "
                   f"disposition={disp}")
    finally:
        await ana.close()
        await kim.close()


@time_limit(120)
async def test_reissued_desktop_frames_after_reissue_stored(env):
    """Same with `omnirouterctl token issue` (README: "the old one stops working")."""
    r = env.redis()
    d1 = env.daemon(r, "d1")
    ana, kim = await ana_serving_kim(d1, d1)
    try:
        conv = kim.conversation_id
        frames = [{"type": "message", "conversation_id": conv, "id": "post-reissue-1",
                   "text": "old token after reissue"}]
        t_rev = await frozen_revoke(env, d1, ana, kim, frames, ("token", "issue", "ana"))
        late = [(sid, f.get("msgid")) for sid, f in agent_entries(r, conv)
                if int(sid.split("-")[0]) > t_rev * 1000]
        env.expect(not late, f"old-token desktop's reply after reissue stored: {late}")
    finally:
        await ana.close()
        await kim.close()


@time_limit(120)
async def test_removed_agent_frames_after_removal(env):
    """`agent remove` of a connected agent (no open conversation): frames sent after it
    must not act. Control: history/typing need the watch; here a `close` of a closed
    conversation and a message to it."""
    r = env.redis()
    d1 = env.daemon(r, "d1")
    ana, kim = await ana_serving_kim(d1, d1)
    try:
        await ana.close_conv(kim.conversation_id)
        await asyncio.sleep(0.3)
        frames = [{"type": "presence", "presence": "available", "id": "p-after"},
                  {"type": "team", "id": "t-after"}]
        await frozen_revoke(env, d1, ana, kim, frames, ("agent", "remove", "ana"))
        acks = [f for f in ana.conn.frames if f.get("type") == "ack"
                and f.get("id") in ("p-after", "t-after")]
        env.expect(not acks, f"removed agent's frames acked: {acks}")
        rc = r.client()
        ex = rc.cmd("EXISTS", "omr:{default}:agent:ana")
        rc.close()
        env.expect(ex == 0, "the removed agent's hash exists again")
    finally:
        await ana.close()
        await kim.close()


@time_limit(120)
async def test_revoke_held_frames_under_backpressure(env):
    """No freeze: bus.max_pending 1 (PROTOCOL.md: past it "the server stops reading from a
    connection ... the frame waits"). Redis is busy 1 s; the revoke (the FCALL omnirouterctl
    makes) is queued, then the desktop sends 3 replies: the first is in flight, the others
    wait in the server and go to Redis only after the first is answered, i.e. after the
    revoke ran. They must not be stored."""
    r = env.redis()
    d1 = env.daemon(r, "d1", config={"bus": {"max_pending": 1}})
    ana, kim = await ana_serving_kim(d1, d1)
    try:
        conv = kim.conversation_id
        busy = r.client()
        busy.sock.settimeout(10)
        script = ("local t0 = redis.call('TIME') local s0 = t0[1]*1000000 + t0[2] "
                  "while true do local t = redis.call('TIME') "
                  "if t[1]*1000000 + t[2] - s0 > 1000000 then break end end return 1")
        busy.sock.sendall(busy._encode(["EVAL", script, "0"]))
        await asyncio.sleep(0.1)
        rev = r.client()
        rev.sock.settimeout(10)
        rev.sock.sendall(rev._encode(["FCALL", "omr_agent_revoke", "1", "omr:{default}",
                                      "ana"]))
        await asyncio.sleep(0.2)
        for i in range(3):
            await ana.conn.send({"type": "message", "conversation_id": conv,
                                 "id": f"bp-{i}", "text": f"held reply {i}"})
        log(f"revoke: {rev._read()}")
        busy._read()
        rev.close()
        busy.close()
        await asyncio.sleep(2.0)
        rc = r.client()
        stored = [f.get("msgid") for _, f in rc.xrange(f"omr:{{default}}:conv:{conv}:log")
                  if (f.get("msgid") or "").startswith("bp-")]
        rc.close()
        log(f"stored: {stored}")
        env.expect(not [m for m in stored if m != "bp-0"],
                   f"replies held by backpressure and sent to Redis after the revoke ran "
                   f"were stored: {stored}")
    finally:
        await ana.close()
        await kim.close()


if __name__ == "__main__":
    run_tests([test_revoke_live_desktop_everything_refused,
               test_reissue_then_old_token_and_new_token,
               test_tenant_removed_while_holding, test_offer_of_removed_tenant,
               test_agent_removed_while_connected, test_supervisor_scope_changes_live,
               test_supervisor_revoked_live, test_history_same_customer_id_two_tenants,
               test_history_after_transfer,
               test_history_reads_open_conversation_of_another_agent,
               test_revoke_desktop_on_other_instance, test_revoke_while_notification_missed,
               test_revoked_desktop_frames_after_revocation_stored,
               test_reissued_desktop_frames_after_reissue_stored,
               test_removed_agent_frames_after_removal,
               test_revoke_held_frames_under_backpressure])
