"""test_live_floor.py - routing while the floor is changed live, across two or three
omnirouterd on one Redis: capacity lowered below the load, a tenant taken away, agents
removed, replaced and imported, presence set by the site during an offer or while a desktop
is taken for lost, sticky customers, wrap-up ended early, timers due while an instance is
frozen. Each test asserts what README.md, docs/ROUTING.md or docs/PROTOCOL.md promise.

Fixed after these tests showed them (each failed before):
  - a desktop taken for lost (its instance frozen) whose agent the site put on break
    meanwhile was logged out as replaced when its instance came back, and its chats
    re-queued (test_frozen_instance_desktop_back_after_site_set_break): whether a desktop
    is lost is now kept apart from the presence (agent field ended_reason);
  - a customer whose chat was only offered to the lost agent was told "your agent was
    disconnected" (test_offer_only_agent_lost_does_not_tell_customer_agent_disconnected);
  - a returning customer waited for a new agent created with a removed agent's id
    (test_sticky_does_not_follow_a_removed_agents_id_to_a_new_agent);
  - an offer timing out during a break the site set replaced its reason with missed-offers
    (test_break_by_site_during_open_offer).
"""
import asyncio
import json
import os
import signal
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from omr_harness import (Agent, Customer, add_agent, conv_key, ctl, poll,  # noqa: E402
                         run_tests, time_limit)

FAST = {"routing": {"tick_ms": 50, "heartbeat_timeout_s": 3, "agent_grace_s": 1}}


def cluster(env, r, n, queues, extra=None):
    cfg = {k: dict(v) for k, v in FAST.items()}
    for sec, opts in (extra or {}).items():
        cfg.setdefault(sec, {}).update(opts)
    out = []
    for i in range(n):
        d = env.daemon(r, name=f"d{i + 1}", config=cfg, start=False)
        with open(d.cfg_path, "a") as f:
            f.write(queues)
        out.append(d.start())
    return out


def show(d, aid):
    return json.loads(ctl(d, "--json", "agent", "show", aid).stdout)


def explain(d, conv):
    return json.loads(ctl(d, "--json", "explain", conv).stdout)


def conv(r, cid):
    c = r.client()
    try:
        return c.hgetall(conv_key(cid))
    finally:
        c.close()


async def hellos(d, n):
    """n customers (English) who said hello on d, c0 first."""
    out = []
    for i in range(n):
        c = Customer(d.url, f"c{i}")
        await c.hello(language="en", name=f"C{i}")
        out.append(c)
    return out


async def available(d, aid, token, **kw):
    a = Agent(d.url, aid, token, **kw)
    await a.login()
    await a.presence("available")
    return a


# ---------------------------------------------------------------------------

GENERAL = """
queues:
  - name: general
"""


@time_limit(90)
async def test_capacity_lowered_below_load_across_instances(env):
    """ROUTING.md: capacity is per channel; omnirouterctl changes take effect
    on the next decision. Lowered from 3 to 1 while holding 3: nothing more
    is given until the load is below 1, then exactly one."""
    r = env.redis()
    d1, d2 = cluster(env, r, 2, GENERAL)
    tok = add_agent(d1, "ana", "Ana", "en", 3)
    ana = await available(d1, "ana", tok)
    held = await hellos(d2, 3)
    await poll(lambda: len(ana.assigned()) == 3, 10)
    assert len(ana.assigned()) == 3, ana.order
    ctl(d2, "agent", "update", "--id", "ana", "--capacity", "chat:1")
    waiting = []
    for i in range(2):
        c = Customer(d1.url if i else d2.url, f"w{i}")
        await c.hello(language="en", name=f"W{i}")
        waiting.append(c)
    await asyncio.sleep(0.5)
    for i in range(2):
        await ana.close_conv(held[i].conversation_id)
        await asyncio.sleep(0.4)
        a = show(d1, "ana")
        env.expect(a["load"]["chat"] == 2 - i,
                   f"after {i + 1} close(s) at capacity 1, load must be {2 - i}: {a}")
    await ana.close_conv(held[2].conversation_id)
    await poll(lambda: len(ana.assigned()) == 4, 10)
    await asyncio.sleep(0.5)
    a = show(d1, "ana")
    env.expect(a["load"]["chat"] == 1, f"load after the third close must be 1 (cap 1): {a}")
    env.expect(len(ana.assigned()) == 4, f"exactly one new assignment: {ana.assigned()}")
    first = ana.assigned()[-1]["conversation_id"]
    env.expect(first == waiting[0].conversation_id, "the older waiting chat goes first")
    why = explain(d2, first)
    env.expect(why.get("agent") == "ana" and why.get("trigger") == "agent became free", why)
    why2 = explain(d2, waiting[1].conversation_id)
    env.expect(why2.get("state") == "queued" and "agent" not in why2, why2)


TENANTS = """
queues:
  - name: general
"""


@time_limit(90)
async def test_tenant_removed_while_holding_a_chat_of_it(env):
    """PROTOCOL.md history: an agent taken off a tenant keeps the
    conversations of that tenant it holds until it closes or transfers
    them. New work of that tenant no longer comes."""
    r = env.redis()
    d1, d2 = cluster(env, r, 2, TENANTS)
    tok = add_agent(d1, "ana", "Ana", "en", 3, extra=["--tenants", "default,acme"])
    ana = await available(d2, "ana", tok)
    c1 = Customer(d1.url, "acme1")
    await c1.hello(language="en", name="Acme One", tenant="acme", customer_id="k1")
    await c1.send("hello from acme", id="m1")
    await ana.wait_item(lambda f: f.get("type") == "assigned"
                        and f.get("conversation_id") == c1.conversation_id, 10, "acme chat")
    ctl(d1, "agent", "update", "--id", "ana", "--tenants", "default")
    # still holds it: replies reach the customer
    await ana.reply(c1.conversation_id, "still here")
    await c1.wait_item(lambda f: f.get("from") == "agent" and f.get("text") == "still here", 5,
                       "reply after the tenant was removed")
    await c1.send("thanks", id="m2")
    await ana.wait_item(lambda f: f.get("type") == "message" and f.get("id") == "m2", 5,
                        "customer message after the tenant was removed")
    c2 = Customer(d2.url, "acme2")
    w = await c2.hello(language="en", name="Acme Two", tenant="acme")
    env.expect(w["state"] == "queued", f"no acme work for ana any more: {w}")
    c3 = Customer(d1.url, "def1")
    await c3.hello(language="en", name="Def")
    await ana.wait_item(lambda f: f.get("type") == "assigned"
                        and f.get("conversation_id") == c3.conversation_id, 10, "default chat")
    await ana.close_conv(c1.conversation_id)
    await asyncio.sleep(0.5)
    env.expect(conv(r, c2.conversation_id)["state"] == "queued", "acme chat still waits")
    a = show(d1, "ana")
    env.expect(a["load"]["chat"] == 1, a)
    env.expect(c2.conversation_id not in a["conversations"], a)


@time_limit(90)
async def test_agent_remove_refused_while_holding_then_logged_out(env):
    """README: remove is refused while the agent holds open conversations;
    the desktop logged in is closed with logged-out once removed."""
    r = env.redis()
    d1, d2 = cluster(env, r, 2, GENERAL)
    tok = add_agent(d1, "ana", "Ana", "en", 2)
    ana = await available(d1, "ana", tok)
    c1 = Customer(d2.url)
    await c1.hello(language="en", name="K")
    await ana.wait_item(lambda f: f.get("type") == "assigned", 10, "assigned")
    p = ctl(d2, "agent", "remove", "ana", check=False)
    env.expect(p.returncode == 1 and "open conversation" in p.stderr, (p.returncode, p.stderr))
    env.expect(conv(r, c1.conversation_id)["state"] == "assigned", "still assigned")
    await ana.reply(c1.conversation_id, "hi")
    await ana.close_conv(c1.conversation_id)
    ctl(d2, "agent", "remove", "ana")
    code, reason = await ana.conn.wait_closed(10, "agent remove")
    err = [f for f in ana.conn.frames if f.get("type") == "error"]
    env.expect(err and err[-1].get("code") == "logged-out", f"logged-out expected: {err}")
    c2 = Customer(d1.url)
    w = await c2.hello(language="en", name="Z")
    env.expect(w["state"] == "queued", w)


OFFERS = """
queues:
  - name: general
    auto_accept: false
    offer_timeout_s: 3
"""


@time_limit(90)
async def test_break_by_site_during_open_offer(env):
    """A break set by the site while an offer is open: the agent keeps the
    break reason it was given (supervisor views show it), and the timed out
    offer goes to another agent."""
    r = env.redis()
    d1, d2 = cluster(env, r, 2, OFFERS, {"routing": {"max_missed_offers": 1}})
    ta = add_agent(d1, "ana", "Ana", "en", 1)
    tb = add_agent(d1, "bob", "Bob", "en", 1)
    ana = await available(d1, "ana", ta)
    c1 = Customer(d2.url)
    await c1.hello(language="en", name="K")
    await ana.wait_item(lambda f: f.get("type") == "offer", 10, "offer")
    ctl(d2, "agent", "state", "--id", "ana", "break", "--reason", "lunch")
    await ana.conn.wait_for(lambda f: f.get("type") == "presence", 5, "presence notice")
    bob = await available(d2, "bob", tb)
    await ana.wait_item(lambda f: f.get("type") == "revoked", 10, "revoked")
    await bob.wait_item(lambda f: f.get("type") == "offer", 10, "offer to bob")
    a = show(d1, "ana")
    env.expect((a["presence"], a["reason"]) == ("break", "lunch"),
               f"the site's lunch break must stay a lunch break: {a['presence']} {a['reason']}")


# ---- part 2 ------------------------------------------------------------------

OVERFLOW = """
queues:
  - name: expert
    skills: {billing: 9}
    max_wait_s: 3
    max_wait_action: overflow:general
  - name: general
"""


@time_limit(90)
async def test_max_wait_overflow_fires_while_customer_instance_is_stopped(env):
    """ROUTING.md Timers: each due timer fires on whichever instance gets
    there first, so timers fire as long as any instance is alive. The
    customer's instance is SIGSTOPped when the maximum wait is due."""
    r = env.redis()
    d1, d2 = cluster(env, r, 2, OVERFLOW)
    tb = add_agent(d1, "bob", "Bob", "en", 1, extra=["--skills", "billing:2"])
    bob = await available(d2, "bob", tb)
    cust = Customer(d1.url)
    w = await cust.hello(language="en", name="K", topic="billing")
    assert w["state"] == "queued", w
    enq = conv(r, cust.conversation_id)["enqueued_ms"]
    await asyncio.sleep(2.3)
    d1.proc.send_signal(signal.SIGSTOP)
    try:
        got = await bob.wait_item(lambda f: f.get("type") == "assigned", 6,
                                  "overflowed chat while d1 is stopped")
    finally:
        d1.proc.send_signal(signal.SIGCONT)
    env.expect(got["conversation_id"] == cust.conversation_id, got)
    env.expect(got.get("queue") == "general", got)
    c = conv(r, cust.conversation_id)
    env.expect(c["enqueued_ms"] == enq and c["queue"] == "general", c)
    why = explain(d2, cust.conversation_id)
    env.expect(why.get("trigger") == "overflowed from queue expert after its maximum wait", why)
    await cust.wait_item(lambda f: f.get("event") == "assigned", 10, "assigned event after SIGCONT")


PRIO = """
queues:
  - name: general
"""


@time_limit(120)
async def test_lost_agents_chat_keeps_its_place_before_newer_work(env):
    """ROUTING.md Agent loss: re-queued with the original enqueue time; a
    conversation re-queued keeps its place ahead of newer waiting work."""
    r = env.redis()
    d1, d2, d3 = cluster(env, r, 3, PRIO)
    ta = add_agent(d1, "ana", "Ana", "en", 1)
    tb = add_agent(d1, "bob", "Bob", "en", 1)
    ana = await available(d1, "ana", ta)
    old = Customer(d3.url, "old")
    await old.hello(language="en", name="Old")
    await ana.wait_item(lambda f: f.get("type") == "assigned", 10, "old to ana")
    bob = await available(d2, "bob", tb)
    x = Customer(d3.url, "x")
    await x.hello(language="en", name="X")
    await bob.wait_item(lambda f: f.get("type") == "assigned", 10, "x to bob")
    await asyncio.sleep(0.2)
    new = Customer(d3.url, "new")
    w = await new.hello(language="en", name="New")
    assert w["state"] == "queued", w
    enq_old = conv(r, old.conversation_id)["enqueued_ms"]
    d1.kill()
    env.daemons.remove(d1)
    d1.scan_logs()
    await old.wait_item(lambda f: f.get("event") == "requeued", 15, "requeued")
    await asyncio.sleep(0.3)
    await bob.close_conv(x.conversation_id)
    got = await bob.wait_item(lambda f: f.get("type") == "assigned"
                              and f.get("conversation_id") != x.conversation_id, 10, "next")
    env.expect(got["conversation_id"] == old.conversation_id,
               f"the re-queued (older) chat must go first, got "
               f"{'new' if got['conversation_id'] == new.conversation_id else got}")
    env.expect(conv(r, old.conversation_id)["enqueued_ms"] == enq_old, "enqueue time kept")
    why = explain(d2, got["conversation_id"])
    env.expect(why.get("trigger") == "agent became free", why)


@time_limit(120)
async def test_roster_import_while_agents_are_live(env):
    """README roster: existing agents keep their tokens (their desktops stay
    logged in); the rows' fields take effect on the next decision."""
    r = env.redis()
    d1, d2 = cluster(env, r, 2, GENERAL)
    ta = add_agent(d1, "ana", "Ana", "en", 2)
    ana = await available(d1, "ana", ta)
    cs = await hellos(d2, 2)
    await poll(lambda: len(ana.assigned()) == 2, 10)
    roster = os.path.join(env.dir, "roster.csv")
    with open(roster, "w") as f:
        f.write("id,name,languages,skills,capacity,tenants,supervises\n")
        f.write("ana,Ana Live,en|es,,chat:1,,\n")
        f.write("cy,Cy,es,,chat:2,,\n")
    p = ctl(d2, "agent", "import", roster)
    lines = [ln for ln in p.stdout.splitlines() if ln]
    env.expect(len(lines) == 1 and lines[0].startswith("cy,"), p.stdout)
    await ana.conn.expect_open(0.5)
    a = show(d1, "ana")
    env.expect(a["capacity"].get("chat") == 1 and a["load"]["chat"] == 2, a)
    env.expect(a["presence"] == "available", a)
    es = Customer(d2.url, "es")
    await es.hello(language="es", name="Es")
    await asyncio.sleep(0.4)
    env.expect(conv(r, es.conversation_id)["state"] == "queued", "cy is not logged in")
    await ana.close_conv(cs[0].conversation_id)
    await asyncio.sleep(0.4)
    env.expect(conv(r, es.conversation_id)["state"] == "queued", "ana is at 1 of 1")
    await ana.close_conv(cs[1].conversation_id)
    got = await ana.wait_item(lambda f: f.get("type") == "assigned"
                              and f.get("conversation_id") == es.conversation_id, 10,
                              "spanish chat once below capacity")
    env.expect(got.get("language") == "es", got)
    # the old token still logs in
    ana2 = Agent(d2.url, "ana", ta, label="ana again")
    await ana2.login()
    await ana2.close()




# ---- part 3 ------------------------------------------------------------------

@time_limit(90)
async def test_agent_replaced_by_add_while_holding_requeues_with_enqueue_time(env):
    """README: `agent add` replaces an agent of the same id with a new
    token; the desktop with the old token is logged out, and its
    conversations go back to routing after agent_grace_s with their
    original enqueue time (ROUTING.md Agent loss)."""
    r = env.redis()
    d1, d2 = cluster(env, r, 2, GENERAL)
    ta = add_agent(d1, "ana", "Ana", "en", 1)
    tb = add_agent(d1, "bob", "Bob", "en", 1)
    ana = await available(d1, "ana", ta)
    c1 = Customer(d2.url)
    await c1.hello(language="en", name="K")
    await c1.send("help", id="m1")
    await ana.wait_item(lambda f: f.get("type") == "assigned", 10, "assigned")
    enq = conv(r, c1.conversation_id)["enqueued_ms"]
    bob = await available(d2, "bob", tb)
    add_agent(d2, "ana", "Ana", "en", 1)
    await ana.conn.wait_closed(10, "replacing add")
    got = await bob.wait_item(lambda f: f.get("type") == "assigned", 10, "ana's chat")
    env.expect(got["conversation_id"] == c1.conversation_id, got)
    await bob.wait_item(lambda f: f.get("type") == "message" and f.get("id") == "m1", 5,
                        "transcript")
    c = conv(r, c1.conversation_id)
    env.expect(c["enqueued_ms"] == enq and c["agent"] == "bob", c)
    a = show(d1, "ana")
    env.expect(a["load"]["chat"] == 0 and not a["conversations"], a)
    why = explain(d1, c1.conversation_id)
    env.expect(why.get("trigger") == "its agent ana was lost", why)


OFFERS_LONG = """
queues:
  - name: general
    auto_accept: false
    offer_timeout_s: 30
"""


@time_limit(90)
async def test_offer_only_agent_lost_does_not_tell_customer_agent_disconnected(env):
    """PROTOCOL.md: the customer's `requeued` event means its agent was
    lost ("Your agent was disconnected"). A customer whose chat was only
    offered (never assigned: still `queued` for the customer) had no agent:
    the agent's loss must not be announced to it, and the conversation
    routes on."""
    r = env.redis()
    d1, d2 = cluster(env, r, 2, OFFERS_LONG)
    ta = add_agent(d1, "ana", "Ana", "en", 1)
    tb = add_agent(d1, "bob", "Bob", "en", 1)
    ana = await available(d1, "ana", ta)
    c1 = Customer(d2.url)
    await c1.hello(language="en", name="K")
    await ana.wait_item(lambda f: f.get("type") == "offer", 10, "offer")
    bob = await available(d2, "bob", tb)
    await ana.close()  # desktop gone with the offer open; grace 1 s
    await bob.wait_item(lambda f: f.get("type") == "offer", 10, "offer to bob after grace")
    await asyncio.sleep(0.5)
    events = [f.get("event") for f in c1.order if f.get("type") == "event"]
    env.expect("requeued" not in events,
               f"customer told its agent was disconnected although none was assigned: {events}")


# ---- part 4: sticky and wrap-up ------------------------------------------------

STICKY = """
queues:
  - name: general
    sticky_window_s: 4
    wrapup_s: 30
"""


async def served_once(d_cust, agent, customer_id, name="K"):
    """A customer served and closed by `agent`: the next visit is sticky."""
    c = Customer(d_cust.url, f"{customer_id}-first")
    await c.hello(language="en", name=name, customer_id=customer_id)
    await agent.wait_item(lambda f: f.get("type") == "assigned"
                          and f.get("conversation_id") == c.conversation_id, 10, "first visit")
    await agent.close_conv(c.conversation_id)
    await c.close()
    return c


@time_limit(90)
async def test_sticky_customer_returns_during_wrapup_agent_ends_it_early(env):
    """ROUTING.md Sticky/Wrap-up: the returning customer waits for its agent
    (logged in, in wrap-up) up to the window; the agent ending wrap-up early
    takes it at once, over an older chat waiting in the queue? No: the sticky
    one is the agent's; explain says sticky."""
    r = env.redis()
    d1, d2 = cluster(env, r, 2, STICKY)
    ta = add_agent(d1, "ana", "Ana", "en", 2)
    add_agent(d1, "bob", "Bob", "en", 1)  # (offline: not a candidate)
    ana = await available(d1, "ana", ta)
    first = await served_once(d2, ana, "kim")
    # The closed item is a stream item: it may reach the desktop after the
    # close's ack.
    closed = await ana.wait_item(lambda f: f.get("type") == "closed"
                                 and f.get("conversation_id") == first.conversation_id, 5,
                                 "closed of the first visit")
    env.expect(closed.get("wrapup_until_ms", 0) > 0, closed)
    back = Customer(d2.url, "kim-back")
    w = await back.hello(language="en", name="Kim", customer_id="kim")
    env.expect(w["state"] == "queued", w)
    why = explain(d1, back.conversation_id)
    env.expect(why.get("waiting_for") == "ana", f"waits for ana: {why}")
    r1 = await ana.conn.request({"type": "wrapup_end", "channel": "chat", "id": "we1"})
    env.expect(r1.get("type") == "ack", r1)
    got = await ana.wait_item(lambda f: f.get("type") == "assigned"
                              and f.get("conversation_id") == back.conversation_id, 5,
                              "sticky chat after wrapup_end")
    why = explain(d2, back.conversation_id)
    env.expect(why.get("agent") == "ana"
               and why.get("trigger") == "sticky: the agent who last served this customer", why)
    del got


@time_limit(90)
async def test_sticky_agent_on_break_window_expires_to_other_agent(env):
    """ROUTING.md Sticky: waits for the logged-in agent up to the window,
    then the normal route; explain says why."""
    r = env.redis()
    d1, d2, d3 = cluster(env, r, 3, STICKY.replace("wrapup_s: 30", "wrapup_s: 0"))
    ta = add_agent(d1, "ana", "Ana", "en", 2)
    tb = add_agent(d1, "bob", "Bob", "en", 1)
    ana = await available(d1, "ana", ta)
    await served_once(d3, ana, "kim")
    ctl(d2, "agent", "state", "--id", "ana", "break", "--reason", "coffee")
    bob = await available(d2, "bob", tb)
    back = Customer(d3.url, "kim-back")
    t0 = time.monotonic()
    w = await back.hello(language="en", name="Kim", customer_id="kim")
    env.expect(w["state"] == "queued", w)
    got = await bob.wait_item(lambda f: f.get("type") == "assigned", 10, "after the window")
    took = time.monotonic() - t0
    env.expect(3.0 <= took <= 12.0, f"routed after {took:.1f}s, window 4 s")
    env.expect(got["conversation_id"] == back.conversation_id, got)
    why = explain(d1, back.conversation_id)
    env.expect(why.get("trigger") == "it waited for agent ana as long as it may", why)
    txt = ctl(d1, "explain", back.conversation_id).stdout
    env.expect("agent         bob" in txt and "as long as it may" in txt, txt)


@time_limit(90)
async def test_wrapup_end_early_then_offer_then_next_close_wrapup(env):
    """PROTOCOL.md wrapup_end: ends the wrap-up at once, new conversations
    may come; a later close starts a full wrap-up again (not cut short by
    the first one's timer)."""
    r = env.redis()
    q = """
queues:
  - name: general
    auto_accept: false
    offer_timeout_s: 20
    wrapup_s: 3
"""
    d1, d2 = cluster(env, r, 2, q)
    ta = add_agent(d1, "ana", "Ana", "en", 1)
    ana = await available(d1, "ana", ta)
    cs = await hellos(d2, 3)
    await ana.wait_item(lambda f: f.get("type") == "offer", 10, "offer 1")
    r1 = await ana.accept(cs[0].conversation_id)
    assert r1.get("type") == "ack", r1
    await ana.close_conv(cs[0].conversation_id)
    await asyncio.sleep(0.5)
    env.expect(len(ana.offers()) == 1, "no offer during wrap-up")
    await ana.conn.request({"type": "wrapup_end", "channel": "chat", "id": "we1"})
    await ana.wait_item(lambda f: f.get("type") == "offer"
                        and f.get("conversation_id") == cs[1].conversation_id, 5, "offer 2")
    await ana.accept(cs[1].conversation_id)
    await asyncio.sleep(1.0)
    await ana.close_conv(cs[1].conversation_id)  # wrap-up until now + 3 s
    t0 = time.monotonic()
    await ana.wait_item(lambda f: f.get("type") == "offer"
                        and f.get("conversation_id") == cs[2].conversation_id, 8, "offer 3")
    took = time.monotonic() - t0
    env.expect(took >= 2.5, f"offer 3 came {took:.1f}s after the close: wrap-up is 3 s")


# ---- part 5: an instance frozen while the site changes the agent -----------------

async def frozen_then_back(env, site_change):
    """ana (desktop on d1) holds a chat; d1 is frozen until ana is taken for
    lost; site_change (or nothing) is done meanwhile; d1 runs again. Returns
    (ana, c1, r, d2) once agent_grace_s (6 s) has passed since the loss."""
    r = env.redis()
    d1, d2 = cluster(env, r, 2, GENERAL, {"routing": {"agent_grace_s": 6}})
    ta = add_agent(d1, "ana", "Ana", "en", 2)
    ana = await available(d1, "ana", ta)
    c1 = Customer(d2.url)
    await c1.hello(language="en", name="K")
    await ana.wait_item(lambda f: f.get("type") == "assigned", 10, "assigned")
    d1.proc.send_signal(signal.SIGSTOP)
    try:
        lost = await poll(lambda: show(d2, "ana")["reason"] == "lost", 8, interval=0.05)
        t_lost = time.monotonic()
        env.expect(lost, f"ana taken for lost: {show(d2, 'ana')}")
        if site_change:
            ctl(d2, *site_change)
    finally:
        d1.proc.send_signal(signal.SIGCONT)
    await asyncio.sleep(max(0.0, t_lost + 8.0 - time.monotonic()))
    return ana, c1, r, d2


@time_limit(90)
async def test_frozen_instance_desktop_back_after_site_set_break(env):
    """ROUTING.md Agent loss: a desktop taken for lost while it was still
    connected (its instance frozen longer than heartbeat_timeout_s) gets its
    session back, and keeps its work, at its instance's next heartbeat.
    PROTOCOL.md: `replaced` means a newer login took over. Here the site put
    the lost agent on break meanwhile; nobody else logged in."""
    ana, c1, r, d2 = await frozen_then_back(
        env, ["agent", "state", "--id", "ana", "break", "--reason", "lunch"])
    errs = [f for f in ana.conn.frames if f.get("type") == "error"]
    env.expect(not ana.conn.closed,
               f"desktop closed ({ana.conn.close_code} {ana.conn.close_reason!r}, errors {errs}) "
               f"though no other login took over")
    a = show(d2, "ana")
    env.expect(c1.conversation_id in a["conversations"],
               f"ana keeps her chat (she never left): state "
               f"{conv(r, c1.conversation_id).get('state')}, agent "
               f"{conv(r, c1.conversation_id).get('agent')!r}, ana {a['presence']} {a['reason']}")
    events = [f.get("event") for f in c1.order if f.get("type") == "event"]
    env.expect("requeued" not in events, f"customer told its agent was lost: {events}")


@time_limit(90)
async def test_control_frozen_instance_desktop_back_without_site_change(env):
    """The same without the site's change: the desktop is back, work kept."""
    ana, c1, r, d2 = await frozen_then_back(env, None)
    env.expect(not ana.conn.closed, f"desktop closed {ana.conn.close_code}")
    env.expect(c1.conversation_id in show(d2, "ana")["conversations"], "work kept")


@time_limit(90)
async def test_open_offer_follows_the_agent_to_another_instance(env):
    """PROTOCOL.md login: a login from a second connection takes over; the
    new desktop gets again what the agent holds and it does not show, an
    open offer as an offer (its expiry unchanged); accepting it there gives
    the assignment and the transcript."""
    r = env.redis()
    d1, d2, d3 = cluster(env, r, 3, OFFERS_LONG)
    ta = add_agent(d1, "ana", "Ana", "en", 1)
    ana = await available(d1, "ana", ta)
    c1 = Customer(d3.url)
    await c1.hello(language="en", name="K")
    await c1.send("before", id="m1")
    off = await ana.wait_item(lambda f: f.get("type") == "offer", 10, "offer")
    ana2 = Agent(d2.url, "ana", ta, label="ana on d2")
    await ana2.login()
    await ana.conn.wait_closed(10, "second login")
    off2 = await ana2.wait_item(lambda f: f.get("type") == "offer", 10, "offer again on d2")
    env.expect(off2.get("expires_ms") == off.get("expires_ms"), (off, off2))
    res = await ana2.accept(c1.conversation_id)
    env.expect(res.get("type") == "ack", res)
    await ana2.wait_item(lambda f: f.get("type") == "assigned", 10, "assigned on d2")
    await ana2.wait_item(lambda f: f.get("type") == "message" and f.get("id") == "m1", 5,
                         "transcript on d2")
    await c1.send("after", id="m2")
    await ana2.wait_item(lambda f: f.get("type") == "message" and f.get("id") == "m2", 5,
                         "live message on d2")
    await c1.wait_item(lambda f: f.get("event") == "assigned", 5, "assigned event")


LADDER = """
queues:
  - name: german
    languages: [de]
    skills: {billing: 8}
    steps:
      - after_s: 2
        min_level_delta: 4
      - after_s: 4
        languages: [en]
    max_wait_s: 8
  - name: general
"""


@time_limit(90)
async def test_ladder_steps_and_max_wait_close_with_a_frozen_instance(env):
    """ROUTING.md Escalation ladder / Timers with three instances, the one
    each step is due on frozen: step 2 (min_level_delta) and step 3
    (language fallback) relax in turn; a second chat that nobody can take
    is closed at max_wait_s, and its customer, on the frozen instance, is
    told max-wait once it runs again."""
    r = env.redis()
    d1, d2, d3 = cluster(env, r, 3, LADDER)
    t_de = add_agent(d1, "dora", "Dora", "de", 1, extra=["--skills", "billing:4"])
    t_en = add_agent(d1, "eli", "Eli", "en", 1, extra=["--skills", "billing:5"])
    c1 = Customer(d1.url, "c1")
    await c1.hello(language="de", name="K1", topic="billing")
    c2 = Customer(d1.url, "c2")
    await c2.hello(language="de", name="K2", topic="billing")
    dora = await available(d2, "dora", t_de)
    eli = await available(d3, "eli", t_en)
    # step 2 at 2 s: dora (billing 4 >= 8-4) takes c1 (the older)
    await asyncio.sleep(1.5)
    d3.proc.send_signal(signal.SIGSTOP)
    try:
        got = await dora.wait_item(lambda f: f.get("type") == "assigned", 4, "step 2")
    finally:
        d3.proc.send_signal(signal.SIGCONT)
    env.expect(got["conversation_id"] == c1.conversation_id, got)
    why = explain(d1, c1.conversation_id)
    env.expect((why.get("step"), why.get("trigger")) == (2, "escalated to step 2 of queue german"),
               why)
    # step 3 at 4 s: eli (English fallback; billing 5 >= 4) takes c2
    await asyncio.sleep(max(0, 3.5 - 2.0))
    d2.proc.send_signal(signal.SIGSTOP)
    try:
        got = await eli.wait_item(lambda f: f.get("type") == "assigned", 4, "step 3")
    finally:
        d2.proc.send_signal(signal.SIGCONT)
    env.expect(got["conversation_id"] == c2.conversation_id, got)
    why = explain(d1, c2.conversation_id)
    env.expect((why.get("step"), why.get("language_matched")) == (3, "en"), why)
    # a third chat nobody can take now: closed at max_wait_s while d1 is frozen
    c3 = Customer(d1.url, "c3")
    await c3.hello(language="de", name="K3", topic="billing")
    await asyncio.sleep(7.5)
    d1.proc.send_signal(signal.SIGSTOP)
    try:
        st = await poll(lambda: conv(r, c3.conversation_id).get("close_reason") == "max-wait", 4)
    finally:
        d1.proc.send_signal(signal.SIGCONT)
    env.expect(st, f"closed max-wait while d1 frozen: {conv(r, c3.conversation_id)}")
    ev = await c3.wait_item(lambda f: f.get("event") == "closed", 8, "closed event")
    env.expect(ev.get("reason") == "max-wait", ev)


@time_limit(90)
async def test_sticky_does_not_follow_a_removed_agents_id_to_a_new_agent(env):
    """ROUTING.md Sticky: a returning customer goes first to the agent who
    last served them. That agent was removed (README `agent remove`); a new
    person was then created with the same id (sites reuse seat ids). The
    project itself holds that "an agent created again with a removed
    agent's id is not that agent" (45_customer.lua history, resend_held):
    the customer must take the normal route, not wait for the newcomer."""
    r = env.redis()
    q = """
queues:
  - name: general
    sticky_window_s: 30
"""
    d1, d2 = cluster(env, r, 2, q)
    ta = add_agent(d1, "seat1", "Ana", "en", 1)
    seat1 = await available(d1, "seat1", ta)
    await served_once(d2, seat1, "kim")
    await seat1.close()
    await asyncio.sleep(0.3)
    ctl(d1, "agent", "remove", "seat1")
    tn = add_agent(d1, "seat1", "Nadia (new hire)", "en", 1)
    tb = add_agent(d1, "bob", "Bob", "en", 1)
    nadia = await available(d2, "seat1", tn)
    other = Customer(d1.url, "other")
    await other.hello(language="en", name="O")
    await nadia.wait_item(lambda f: f.get("type") == "assigned", 10, "nadia busy")
    await available(d1, "bob", tb)
    back = Customer(d2.url, "kim-back")
    w = await back.hello(language="en", name="Kim", customer_id="kim")
    why = explain(d1, back.conversation_id)
    env.expect(w["state"] == "assigned" and why.get("agent") == "bob",
               f"kim must go to bob at once, not wait for the new seat1: welcome {w}, "
               f"explain {why}")


RENAME_BEFORE = """
queues:
  - name: spanish
    languages: [es]
    sticky_window_s: 60
  - name: general
    sticky_window_s: 60
"""


@time_limit(90)
async def test_sticky_wait_survives_its_queue_renamed_on_reload(env):
    """ROUTING.md Sticky: the returning customer waits for its agent up to the
    window. A reload that renames its queue (spanish to es) is not a reason
    to stop waiting: it waits on in the queue the new rules give it, and when
    its agent frees up it is the agent's, before an older chat of the queue."""
    r = env.redis()
    d = env.daemon(r, config={"routing": {"tick_ms": 50}}, queues=RENAME_BEFORE)
    ta = add_agent(d, "ana", "Ana", "es:10", 1)
    ana = await available(d, "ana", ta)
    first = Customer(d.url, "kim-first")
    await first.hello(language="es", name="Kim", customer_id="kim")
    await ana.wait_item(lambda f: f.get("type") == "assigned"
                        and f.get("conversation_id") == first.conversation_id, 10, "first visit")
    await ana.close_conv(first.conversation_id)
    await first.close()
    busy = Customer(d.url, "busy")
    await busy.hello(language="es", name="B")
    await ana.wait_item(lambda f: f.get("type") == "assigned"
                        and f.get("conversation_id") == busy.conversation_id, 10, "busy")
    older = Customer(d.url, "older")
    await older.hello(language="es", name="O")
    await asyncio.sleep(0.05)
    kim = Customer(d.url, "kim-back")
    await kim.hello(language="es", name="Kim", customer_id="kim")
    env.expect(explain(d, kim.conversation_id).get("waiting_for") == "ana",
               explain(d, kim.conversation_id))
    with open(d.cfg_path) as f:
        text = f.read()
    with open(d.cfg_path, "w") as f:
        f.write(text.replace("name: spanish", "name: es"))
    d.proc.send_signal(signal.SIGHUP)
    assert await poll(lambda: conv(r, older.conversation_id).get("queue") == "es", 10), \
        "the reload did not re-home the waiting chat"
    why = explain(d, kim.conversation_id)
    env.expect(why.get("waiting_for") == "ana" and why.get("queue") == "es",
               f"after the rename, still waits for ana, in es: {why}")
    await ana.close_conv(busy.conversation_id)
    got = await ana.wait_item(lambda f: f.get("type") == "assigned"
                              and f.get("conversation_id") != busy.conversation_id
                              and f.get("conversation_id") != first.conversation_id, 10,
                              "the next chat")
    env.expect(got["conversation_id"] == kim.conversation_id,
               f"ana got {got['conversation_id']} (older {older.conversation_id}), not kim's: "
               f"{explain(d, kim.conversation_id)}")
    why = explain(d, kim.conversation_id)
    env.expect(why.get("trigger") == "sticky: the agent who last served this customer", why)


if __name__ == "__main__":
    run_tests([v for k, v in list(globals().items()) if k.startswith("test_")])
