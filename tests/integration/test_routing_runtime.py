"""test_routing_runtime.py - routing at run time, through real daemons (from a review of
2026-12-07): escalation ladders (min_level_delta, a language fallback, an overflow step,
max_wait_s with close or overflow) and what the customer and `omnirouterctl explain` see at
each step; the order in which an agent that frees up takes work across queues, tenants and
channels, with re-queued work keeping its place; capacity per channel and channel blocking;
tenant isolation; strategies and their tie-breaks. Voice and email conversations are started
through the Functions API (FCALL omr_conv_start), as test_reload_edges.py does. The tests
whose docstring starts "Was (ab16c4a)" failed on the build of that commit.

    OMR_BUILD_DIR=build/asan python3 tests/integration/test_routing_runtime.py [NAME...]
"""
import asyncio
import os
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from omr_harness import Customer, add_agent, ctl, log, poll, run_tests, time_limit  # noqa: E402
from test_live_floor import available, conv, explain, show  # noqa: E402

P = "omr:{default}"
FAST = {"routing": {"tick_ms": 50, "heartbeat_timeout_s": 3, "agent_grace_s": 1}}


def cluster(env, r, n, queues, extra=None):
    cfg = {k: dict(v) for k, v in FAST.items()}
    for sec, opts in (extra or {}).items():
        cfg.setdefault(sec, {}).update(opts)
    return [env.daemon(r, name=f"d{i + 1}", config=cfg, queues=queues) for i in range(n)]


def fcall_start(r, cid, channel, tenant="default", lang="en", attrs="{}", skills="[]"):
    """A conversation of a channel the websocket does not carry, started as the Functions
    API allows (test_reload_edges.py does the same for voice)."""
    c = r.client()
    try:
        return c.cmd("FCALL", "omr_conv_start", "1", P, cid, "x", lang, lang.split("-")[0],
                     cid.upper(), channel, tenant, "", attrs, skills)
    finally:
        c.close()


def assigned_ids(agent):
    return [f["conversation_id"] for f in agent.assigned()]


# ---------------------------------------------------------------------------
# 1. A whole ladder walked by a chat nobody can take: step 2 (skills relaxed), step 3 (English
#    accepted), step 4 overflows to `general`, whose max_wait_s counts from the ORIGINAL
#    enqueue time (ROUTING.md: "After max_wait_s in a queue, counted from the original enqueue
#    time however the conversation came to wait there (started, declined, escalated, ...)"; only
#    a max_wait_action overflow counts the next queue's wait from the overflow).

LADDER = """
queues:
  - name: billing-es
    languages: [es]
    skills: {billing: 5}
    steps:
      - after_s: 1
        min_level_delta: 2
      - after_s: 2
        languages: [en]
      - after_s: 3
        overflow: general
  - name: general
    max_wait_s: 6
"""


@time_limit(60)
async def test_ladder_walk_explain_then_max_wait_from_enqueue(env):
    """explain names each step's trigger; the customer sees only `closed` with
    reason max-wait, 6 s after the enqueue (not 6 s after the overflow)."""
    r = env.redis()
    d1, d2 = cluster(env, r, 2, LADDER)
    cust = Customer(d1.url, "kim")
    w = await cust.hello(language="es-MX", name="Kim", topic="billing")
    cid = cust.conversation_id
    env.expect(w["state"] == "queued", w)
    seen = {}

    def stage():
        why = explain(d2, cid)
        key = (why.get("queue"), why.get("step"))
        if key not in seen:
            seen[key] = (why.get("trigger"), why.get("state"))
        return why.get("state") == "closed"
    await poll(stage, 12, 0.05)
    log(f"stages: {seen}")
    env.expect(seen.get(("billing-es", 2), (None,))[0] == "escalated to step 2 of queue billing-es",
               f"step 2 trigger: {seen}")
    env.expect(seen.get(("billing-es", 3), (None,))[0] == "escalated to step 3 of queue billing-es",
               f"step 3 trigger: {seen}")
    env.expect(seen.get(("general", 1), (None,))[0]
               == "overflowed from queue billing-es at step 4 of its ladder", f"overflow: {seen}")
    h = conv(r, cid)
    env.expect(h.get("close_reason") == "max-wait", h)
    waited = int(h.get("closed_ms", 0)) - int(h["enqueued_ms"])
    env.expect(5800 <= waited <= 7500,
               f"general's max_wait_s 6 counts from the enqueue: closed {waited} ms after it")
    ev = await cust.wait_item(lambda f: f.get("event") == "closed", 5, "closed event")
    env.expect(ev.get("reason") == "max-wait", ev)
    env.expect(not [f for f in cust.order if f.get("event") in ("assigned", "requeued")],
               f"no agent ever had it: {cust.order}")
    why = explain(d1, cid)
    env.expect((why.get("state"), why.get("queue"), why.get("close_reason")) ==
               ("closed", "general", "max-wait"), why)
    await cust.close()


@time_limit(60)
async def test_ladder_english_fallback_with_relaxed_skill(env):
    """An English agent with billing 3 gets the Spanish billing chat at step 3
    (2 s: English accepted, and step 2's delta 2 still applies: 'the largest delta reached'),
    not before; explain: step 3, matched en, billing needs 3, agent 3."""
    r = env.redis()
    d1, d2 = cluster(env, r, 2, LADDER)
    tok = add_agent(d1, "eli", "Eli", "en", 1, extra=["--skills", "billing:3"])
    eli = await available(d2, "eli", tok)
    cust = Customer(d1.url, "kim")
    await cust.hello(language="es", name="Kim", topic="billing")
    t0 = time.monotonic()
    got = await eli.wait_item(lambda f: f.get("type") == "assigned", 8, "assigned at step 3")
    took = time.monotonic() - t0
    env.expect(1.7 <= took <= 3.5, f"assigned {took:.2f}s after the hello; step 3 is at 2 s")
    why = explain(d1, got["conversation_id"])
    env.expect((why.get("step"), why.get("language_matched"), why.get("trigger")) ==
               (3, "en", "escalated to step 3 of queue billing-es"), why)
    env.expect(why.get("skills") == {"billing": {"required": 3, "agent": 3}}, why)
    await cust.wait_item(lambda f: f.get("event") == "assigned", 5, "assigned event")
    await eli.close()
    await cust.close()


# ---------------------------------------------------------------------------
# 2. max_wait_action overflow keeps the enqueue time: the chat that overflowed is older than
#    one that waits in the target queue, so a free agent takes it first (ROUTING.md "Waiting
#    and ordering"; "overflow ... keeping its enqueue time").

OVERFLOW = """
queues:
  - name: german
    languages: [de]
    min_proficiency: 9
    max_wait_s: 1
    max_wait_action: overflow:general
  - name: general
"""


@time_limit(60)
async def test_max_wait_overflow_keeps_place_before_newer_work(env):
    r = env.redis()
    d1, d2 = cluster(env, r, 2, OVERFLOW)
    tok = add_agent(d1, "ana", "Ana", "de:5,en", 1)
    x = Customer(d1.url, "x")
    await x.hello(language="de", name="X")
    await asyncio.sleep(0.3)
    y = Customer(d2.url, "y")
    await y.hello(language="en", name="Y")
    ok = await poll(lambda: conv(r, x.conversation_id).get("queue") == "general", 5, 0.05)
    env.expect(ok, conv(r, x.conversation_id))
    why = explain(d2, x.conversation_id)
    env.expect(why.get("trigger") == "overflowed from queue german after its maximum wait", why)
    ana = await available(d2, "ana", tok)
    got = await ana.wait_item(lambda f: f.get("type") == "assigned", 5, "first")
    env.expect(got["conversation_id"] == x.conversation_id,
               "the overflowed chat (enqueued first) must go before the newer one")
    why = explain(d1, x.conversation_id)
    env.expect(why.get("trigger") == "agent became free" and
               [w["conversation"] for w in why.get("waiting", [])][:2] ==
               [x.conversation_id, y.conversation_id], why)
    for c in (ana, x, y):
        await c.close()


# ---------------------------------------------------------------------------
# 3. A blended agent (chat 1, email 1, voice 1) serving two tenants and two queues: when it
#    becomes available it takes the highest priority first, then the oldest, channel by
#    channel; voice blocks new chat and email (routing.blocking_channels default); never over
#    capacity.

BLEND = """
queues:
  - name: vip
    attributes: {tier: gold}
    priority: 5
  - name: general
"""


@time_limit(60)
async def test_blended_agent_priority_age_channels_blocking(env):
    r = env.redis()
    d1, d2 = cluster(env, r, 2, BLEND)
    tok = add_agent(d1, "ana", "Ana", "en", "chat:1,email:1,voice:1",
                    extra=["--tenants", "acme,globex"])
    chat = Customer(d1.url, "acme-chat")
    await chat.hello(language="en", name="C", tenant="acme")
    await asyncio.sleep(0.02)
    env.expect(fcall_start(r, "email1", "email", tenant="globex") == "queued", "email1")
    await asyncio.sleep(0.02)
    env.expect(fcall_start(r, "voice1", "voice", tenant="acme") == "queued", "voice1")
    await asyncio.sleep(0.02)
    vip = Customer(d2.url, "vip")
    await vip.hello(language="en", name="V", tenant="globex", attributes={"tier": "gold"})
    ana = await available(d2, "ana", tok)
    await poll(lambda: len(ana.assigned()) >= 3, 5)
    await asyncio.sleep(0.3)
    got = assigned_ids(ana)
    env.expect(got == [vip.conversation_id, "email1", "voice1"],
               f"priority first, then the oldest per free channel: {got}")
    a = show(d1, "ana")
    env.expect(a["load"] == {"chat": 1, "email": 1, "voice": 1}, a)
    await ana.close_conv(vip.conversation_id)
    await asyncio.sleep(0.5)
    env.expect(conv(r, chat.conversation_id).get("state") == "queued",
               "the call blocks a new chat even with chat capacity free")
    await ana.close_conv("voice1")
    got = await ana.wait_item(lambda f: f.get("type") == "assigned"
                              and f.get("conversation_id") == chat.conversation_id, 5,
                              "the chat once the call ends")
    a = show(d1, "ana")
    env.expect(a["load"] == {"chat": 1, "email": 1, "voice": 0}, a)
    for c in (ana, chat, vip):
        await c.close()


# ---------------------------------------------------------------------------
# 4. Tenant isolation: a globex chat never goes to an agent serving only acme, even free,
#    and goes to the agent serving both once it frees up.

@time_limit(60)
async def test_tenant_isolation_with_multi_tenant_agent(env):
    r = env.redis()
    d1, d2 = cluster(env, r, 2, "\nqueues:\n  - name: general\n")
    ta = add_agent(d1, "aaa", "A", "en", 3, extra=["--tenants", "acme"])
    tm = add_agent(d1, "mmm", "M", "en", 1, extra=["--tenants", "acme,globex"])
    a = await available(d1, "aaa", ta)
    m = await available(d2, "mmm", tm)
    first = Customer(d1.url, "g1")
    await first.hello(language="en", name="G1", tenant="globex")
    await m.wait_item(lambda f: f.get("type") == "assigned", 5, "g1 to mmm")
    second = Customer(d2.url, "g2")
    w = await second.hello(language="en", name="G2", tenant="globex")
    env.expect(w["state"] == "queued", f"only mmm serves globex and it is full: {w}")
    await asyncio.sleep(0.5)
    env.expect(not a.assigned(), f"aaa serves only acme: {a.assigned()}")
    await m.close_conv(first.conversation_id)
    await m.wait_item(lambda f: f.get("type") == "assigned"
                      and f.get("conversation_id") == second.conversation_id, 5, "g2 to mmm")
    env.expect(not a.assigned(), f"aaa serves only acme: {a.assigned()}")
    for c in (a, m, first, second):
        await c.close()


# ---------------------------------------------------------------------------
# 5. Agent loss re-queues everything the agent held at once (routing.agent_grace_s after its
#    desktop went): ROUTING.md "Agent loss": "they are re-queued with their original enqueue
#    time"; "Waiting and ordering": "A conversation that is re-queued (offer timed out or
#    rejected, agent lost, ...) keeps its original enqueue time, so it does not lose its place",
#    and the place is "highest queue priority, then longest waiting". With one free agent and
#    several conversations re-queued in the same instant, the free agent should get the one with
#    the best place. fire_requeue (router/lua/60_timers.lua) routes them one by one in the
#    order of SMEMBERS of the agent's set of conversations (an intset, sorted by value, when the
#    ids are numbers; a hash table's order otherwise), each straight to try_assign, so the first
#    in that order takes the free agent whatever its place. Emails (a channel the websocket does
#    not carry) are started through the Functions API with numeric ids, which makes the order
#    deterministic: ids 1, 2, 3 in that order; with random ids it fails as often as a worse
#    one comes first.

LOSS_Q = """
queues:
  - name: vip
    attributes: {tier: gold}
    priority: 5
  - name: general
"""


async def loss_setup(env, starts):
    """ana (email:3) holds the emails `starts` (id, attrs) started in that order; bob
    (email:1) is free on the other instance; ana's desktop goes away."""
    r = env.redis()
    d1, d2 = cluster(env, r, 2, LOSS_Q)
    ta = add_agent(d1, "ana", "Ana", "en", "email:3")
    tb = add_agent(d1, "bob", "Bob", "en", "email:1")
    ana = await available(d1, "ana", ta)
    for cid, attrs in starts:
        env.expect(fcall_start(r, cid, "email", attrs=attrs) == "assigned", f"{cid} to ana")
        await asyncio.sleep(0.02)
    await poll(lambda: len(ana.assigned()) == len(starts), 5)
    bob = await available(d2, "bob", tb)
    enq = {cid: int(conv(r, cid)["enqueued_ms"]) for cid, _ in starts}
    await ana.close()  # offline at once; re-queued after agent_grace_s (1 s)
    got = await bob.wait_item(lambda f: f.get("type") == "assigned", 10, "a re-queued email")
    await asyncio.sleep(0.3)
    states = {cid: (conv(r, cid).get("state"), conv(r, cid).get("agent")) for cid, _ in starts}
    log(f"bob got {got['conversation_id']}; enqueued {enq}; states {states}")
    return d1, r, bob, got["conversation_id"], enq, states


@time_limit(60)
async def test_agent_lost_requeue_oldest_goes_first(env):
    """Was (ab16c4a): ana held emails 3, 2, 1 (enqueued in that order: 3 is the oldest)
    when her desktop went; after the grace period bob, the only free agent (capacity 1), gets
    email 1, the newest, and the older 3 and 2 wait behind it."""
    d1, r, bob, got, enq, states = await loss_setup(
        env, [("3", "{}"), ("2", "{}"), ("1", "{}")])
    oldest = min(enq, key=enq.get)
    env.expect(got == oldest,
               f"re-queued together with their enqueue times {enq}, the oldest ({oldest}) should "
               f"go to the free agent first (ROUTING.md: re-queued work 'keeps its original "
               f"enqueue time, so it does not lose its place'); bob got {got}; now {states}")
    why = explain(d1, got)
    env.expect(why.get("trigger") == "its agent ana was lost", why)
    await bob.close()


@time_limit(60)
async def test_agent_lost_requeue_higher_priority_goes_first(env):
    """Was (ab16c4a): ana held email 1 (queue general, priority 0) and then email 2
    (queue vip, priority 5); when both are re-queued after her loss, bob (the only free agent,
    capacity 1) gets the priority-0 email 1 and the VIP one waits."""
    d1, r, bob, got, enq, states = await loss_setup(
        env, [("1", "{}"), ("2", '{"tier":"gold"}')])
    env.expect(conv(r, "2").get("queue") == "vip", conv(r, "2"))
    env.expect(got == "2",
               f"the VIP email (priority 5) should go to the free agent before the priority-0 "
               f"one (ROUTING.md 'Waiting and ordering': highest queue priority, then longest "
               f"waiting; re-queued work keeps its place); bob got {got}; now {states}")
    await bob.close()


OFFER_Q = """
queues:
  - name: general
    auto_accept: false
    offer_timeout_s: 60
"""


@time_limit(60)
async def test_agent_set_offline_offers_taken_back_oldest_goes_first(env):
    """Was (ab16c4a): The same through the site's `agent state ana offline`
    (ROUTING.md Offers: "has its open offers taken back (revoked, reason agent-offline, not a
    decline)"): ana had three emails offered (3, 2, 1, enqueued in that order); bob, the only
    free agent (email:1), is offered email 1, the newest. change_state (router/lua/30_agents.lua)
    withdraws the offers in SMEMBERS order, each routed at once."""
    r = env.redis()
    d1, d2 = cluster(env, r, 2, OFFER_Q)
    ta = add_agent(d1, "ana", "Ana", "en", "email:3")
    tb = add_agent(d1, "bob", "Bob", "en", "email:1")
    ana = await available(d1, "ana", ta)
    for cid in ("3", "2", "1"):
        env.expect(fcall_start(r, cid, "email") == "offered", f"{cid} offered to ana")
        await asyncio.sleep(0.02)
    await poll(lambda: len(ana.offers()) == 3, 5)
    bob = await available(d2, "bob", tb)
    enq = {cid: int(conv(r, cid)["enqueued_ms"]) for cid in ("3", "2", "1")}
    ctl(d1, "agent", "state", "--id", "ana", "offline")
    got = await bob.wait_item(lambda f: f.get("type") == "offer", 10, "an offer taken back")
    await asyncio.sleep(0.3)
    states = {cid: (conv(r, cid).get("state"), conv(r, cid).get("agent")) for cid in enq}
    log(f"bob offered {got['conversation_id']}; enqueued {enq}; states {states}")
    env.expect(got["conversation_id"] == "3",
               f"taken back together, the oldest (3) should be offered to the free agent first "
               f"(re-queued work keeps its place); bob was offered {got['conversation_id']}; "
               f"now {states}")
    await ana.close()
    await bob.close()


# ---------------------------------------------------------------------------
# 6. An offer answered after the maximum wait, with ladder steps long due. ROUTING.md: "A
#    conversation that is offered when its time runs out waits for the offer's answer; rejected
#    or timed out, it goes to another agent who can take it at once, if any, and the final action
#    applies otherwise", and the ladder's steps are "counted from the enqueue time". Offered at
#    once (step 1), rejected 3.3 s later: step 3 (English accepted, due at 2 s) has long applied,
#    and an English agent is free. withdraw routes it at step 1 (nobody), enqueue arms the next
#    step (2) and the maximum wait, both due; the next omr_tick fires step 2 (nobody yet), whose
#    enqueue arms step 3 for a later tick, and then, in the same tick, the maximum wait closes it
#    (router/lua/60_timers.lua tick / fire_escalation: one step per tick; 50_desktops.lua
#    withdraw: re-routed at the step it was offered at).

OFFER_LADDER = """
queues:
  - name: spanish
    languages: [es]
    skills: {billing: 5}
    auto_accept: false
    offer_timeout_s: 30
    max_wait_s: 3
    steps:
      - after_s: 1
        min_level_delta: 1
      - after_s: 2
        languages: [en]
  - name: general
"""


@time_limit(60)
async def test_offer_rejected_after_max_wait_skips_due_ladder_step(env):
    """Was (ab16c4a): closed max-wait while an English agent, who can take it at the
    ladder step it waited past, is free."""
    r = env.redis()
    d1, d2 = cluster(env, r, 2, OFFER_LADDER)
    t_es = add_agent(d1, "esme", "Esme", "es", 1, extra=["--skills", "billing:5"])
    t_en = add_agent(d1, "eli", "Eli", "en", 1, extra=["--skills", "billing:5"])
    esme = await available(d1, "esme", t_es)
    eli = await available(d2, "eli", t_en)
    cust = Customer(d1.url, "kim")
    await cust.hello(language="es", name="Kim", topic="billing")
    cid = cust.conversation_id
    await esme.wait_item(lambda f: f.get("type") == "offer", 5, "offer")
    await asyncio.sleep(3.3)  # time passes: max_wait_s 3 and step 3 (2 s) are behind it
    rep = await esme.reject(cid, "wrong-language")
    env.expect(rep.get("type") == "ack", rep)
    await poll(lambda: conv(r, cid).get("state") in ("closed", "assigned")
               or eli.offers(cid), 5, 0.05)
    await asyncio.sleep(0.3)
    h = conv(r, cid)
    log(f"after the reject: {h.get('state')} {h.get('agent')} step {h.get('step')} "
        f"{h.get('close_reason')}; eli offers {len(eli.offers(cid))}")
    env.expect(eli.offers(cid) and h.get("close_reason") is None,
               f"rejected after its maximum wait, it should go to eli, who can take it at once "
               f"(English is accepted from step 3, 2 s after the enqueue), before the final "
               f"action applies; it is {h.get('state')!r} (reason {h.get('close_reason')!r}, "
               f"step {h.get('step')}); explain {explain(d1, cid)}")
    for c in (esme, eli, cust):
        await c.close()


# ---------------------------------------------------------------------------
# 7. Capacity per channel (voice 1, chat 3, email 5) with the default blocking (voice blocks
#    chat and email): never over capacity on any channel, a call takes no new chat or email,
#    and the freed capacity takes the oldest waiting work of that channel.

@time_limit(60)
async def test_capacity_per_channel_and_blocking(env):
    r = env.redis()
    d1, d2 = cluster(env, r, 2, "\nqueues:\n  - name: general\n")
    tok = add_agent(d1, "ana", "Ana", "en", "chat:3,email:5,voice:1")
    ana = await available(d2, "ana", tok)
    states = [fcall_start(r, f"e{i}", "email") for i in range(6)]
    env.expect(states == ["assigned"] * 5 + ["queued"], states)
    chats = []
    for i in range(4):
        c = Customer(d1.url if i % 2 else d2.url, f"c{i}")
        await c.hello(language="en", name=f"C{i}")
        chats.append(c)
    await poll(lambda: len(ana.assigned()) == 8, 5)
    a = show(d1, "ana")
    env.expect(a["load"] == {"chat": 3, "email": 5, "voice": 0}, a)
    env.expect(fcall_start(r, "v1", "voice") == "assigned", "a call: voice is not blocked")
    env.expect(fcall_start(r, "v2", "voice") == "queued", "voice capacity 1")
    await ana.close_conv(chats[0].conversation_id)
    await ana.close_conv("e0")
    await asyncio.sleep(0.5)
    a = show(d1, "ana")
    env.expect(a["load"] == {"chat": 2, "email": 4, "voice": 1},
               f"on a call: the freed chat and email take nothing new: {a}")
    await ana.close_conv("v1")
    await poll(lambda: show(d1, "ana")["load"] == {"chat": 3, "email": 5, "voice": 1}, 5)
    a = show(d1, "ana")
    env.expect(a["load"] == {"chat": 3, "email": 5, "voice": 1}, a)
    env.expect(conv(r, "v2").get("agent") == "ana" and conv(r, "e5").get("agent") == "ana" and
               conv(r, chats[3].conversation_id).get("agent") == "ana",
               "after the call: the waiting call, email and chat")
    for c in [ana] + chats:
        await c.close()


# ---------------------------------------------------------------------------
# 8. Strategies and their tie-breaks (ROUTING.md table): least_loaded (fewest open, then
#    longest since last assignment, then id), longest_idle (longest since last assignment),
#    best_skill (highest sum of the queue's skill levels, then longest idle, then id).

STRAT_Q = """
queues:
  - name: ll
    skills: {ll: 1}
  - name: li
    skills: {li: 1}
    strategy: longest_idle
  - name: bs
    skills: {bs: 1, bs2: 1}
    strategy: best_skill
"""


@time_limit(60)
async def test_strategies_and_tie_breaks(env):
    r = env.redis()
    d1, d2 = cluster(env, r, 2, STRAT_Q)
    sk = ["--skills", "ll:1,li:1,bs:5,bs2:5"]
    toks = {aid: add_agent(d1, aid, aid.upper(), "en", 3, extra=sk)
            for aid in ("zed", "amy", "bob")}
    ctl(d1, "agent", "skills", "--id", "bob", "--set", "ll:1,li:1,bs:9,bs2:2")
    agents = {aid: await available(d1 if aid != "bob" else d2, aid, t)
              for aid, t in toks.items()}
    who = []

    async def start(topic):
        c = Customer(d1.url, topic)
        await c.hello(language="en", name="X", topic=topic)
        ok = await poll(lambda: conv(r, c.conversation_id).get("agent"), 5, 0.05)
        who.append(conv(r, c.conversation_id).get("agent"))
        return c, ok
    # all idle, no load: least_loaded ties on load and idle: the lowest id
    c1, _ = await start("ll")
    env.expect(who[-1] == "amy", f"least_loaded tie -> agent id: {who}")
    # best_skill: sums amy 10, zed 10, bob 11 -> bob
    c2, _ = await start("bs")
    env.expect(who[-1] == "bob", f"best_skill: highest sum: {who}")
    # longest_idle: zed never assigned, amy and bob assigned since -> zed
    c3, _ = await start("li")
    env.expect(who[-1] == "zed", f"longest_idle: {who}")
    # least_loaded now: all hold 1; longest since last assignment: amy (first)
    c4, _ = await start("ll")
    env.expect(who[-1] == "amy", f"least_loaded: equal load, longest since assignment: {who}")
    why = explain(d2, c4.conversation_id)
    env.expect(why.get("strategy") == "least_loaded" and why.get("agent") == "amy", why)
    for c in list(agents.values()) + [c1, c2, c3, c4]:
        await c.close()


# ---------------------------------------------------------------------------
# 9. The same with the conversations waiting for one agent (sticky): the site sets that agent
#    offline ("An offline agent is not waited for (nor any more once set offline)"), and every
#    conversation waiting for them takes the normal route at once. end_waits_for
#    (router/lua/20_route.lua) re-routes them one by one in the order of the agent's P:pref set
#    (enqueue time only), each straight to an agent: the older priority-0 chat takes the only
#    free agent, the newer VIP chat (priority 5) waits. ROUTING.md "Waiting and ordering":
#    highest queue priority, then longest waiting.

STICKY_Q = """
queues:
  - name: vip
    attributes: {tier: gold}
    priority: 5
    sticky_window_s: 60
  - name: general
    sticky_window_s: 60
"""


async def sticky_setup(env):
    """k1 (queue general) and then k2 (queue vip) come back while xav, who served both before,
    is busy (capacity 1, a filler chat): both wait for xav. bob (capacity 1) is free."""
    r = env.redis()
    d1, d2 = cluster(env, r, 2, STICKY_Q)
    tx = add_agent(d1, "xav", "Xav", "en", 1)
    tb = add_agent(d1, "bob", "Bob", "en", 1)
    xav = await available(d1, "xav", tx)
    for cust_id, attrs in (("k1", {}), ("k2", {"tier": "gold"})):
        c = Customer(d2.url, cust_id)
        await c.hello(language="en", name=cust_id, customer_id=cust_id, attributes=attrs)
        await xav.wait_item(lambda f: f.get("type") == "assigned"
                            and f.get("conversation_id") == c.conversation_id, 5, "first visit")
        await xav.close_conv(c.conversation_id)
        await c.close()
    filler = Customer(d1.url, "filler")
    await filler.hello(language="en", name="F")
    await xav.wait_item(lambda f: f.get("type") == "assigned"
                        and f.get("conversation_id") == filler.conversation_id, 5, "filler")
    bob = await available(d2, "bob", tb)
    back = {}
    for cust_id, attrs in (("k1", {}), ("k2", {"tier": "gold"})):
        c = Customer(d2.url, cust_id + "-back")
        await c.hello(language="en", name=cust_id, customer_id=cust_id, attributes=attrs)
        back[cust_id] = c
        why = explain(d1, c.conversation_id)
        env.expect(why.get("waiting_for") == "xav", f"{cust_id} waits for xav: {why}")
        await asyncio.sleep(0.05)
    env.expect(conv(r, back["k2"].conversation_id).get("queue") == "vip",
               conv(r, back["k2"].conversation_id))
    return d1, r, xav, bob, filler, back


@time_limit(60)
async def test_sticky_waits_ended_by_offline_go_by_priority(env):
    """Was (ab16c4a): the VIP chat waited, bob got the priority-0 one."""
    d1, r, xav, bob, filler, back = await sticky_setup(env)
    ctl(d1, "agent", "state", "--id", "xav", "offline")
    got = await bob.wait_item(lambda f: f.get("type") == "assigned", 5, "a chat for bob")
    await asyncio.sleep(0.3)
    k1, k2 = back["k1"].conversation_id, back["k2"].conversation_id
    log(f"bob got {'k1 (general)' if got['conversation_id'] == k1 else 'k2 (vip)'}; "
        f"k1 {conv(r, k1).get('state')}, k2 {conv(r, k2).get('state')}")
    env.expect(got["conversation_id"] == k2,
               f"xav set offline: both chats waiting for xav take the normal route together; "
               f"bob (the only free agent) should get the VIP one (priority 5) first; he got "
               f"the priority-0 one; the VIP chat is {conv(r, k2).get('state')!r}")
    for c in [xav, bob, filler] + list(back.values()):
        await c.close()


@time_limit(60)
async def test_sticky_agent_frees_up_takes_priority_first(env):
    """Was (ab16c4a): xav frees up (closes the filler) with two returning customers
    waiting for him: ROUTING.md "Waiting and ordering": an agent that frees up takes "the waiting
    conversation of highest queue priority, then longest waiting"; pull_preferred
    (router/lua/20_route.lua) takes the agent's P:pref set in enqueue order (its score is the
    enqueue time alone, sticky_route in 40_conversations.lua), so the older priority-0 chat
    goes first and the VIP customer keeps waiting (then goes to bob or waits out its window)."""
    d1, r, xav, bob, filler, back = await sticky_setup(env)
    k1, k2 = back["k1"].conversation_id, back["k2"].conversation_id
    await xav.close_conv(filler.conversation_id)
    got = await xav.wait_item(lambda f: f.get("type") == "assigned"
                              and f.get("conversation_id") in (k1, k2), 5, "a returning customer")
    await asyncio.sleep(0.3)
    log(f"xav took {'k1 (general)' if got['conversation_id'] == k1 else 'k2 (vip)'}; "
        f"k1 {conv(r, k1).get('state')}, k2 {conv(r, k2).get('state')}")
    env.expect(got["conversation_id"] == k2,
               f"xav freed up: of the two chats waiting for him, the VIP one (priority 5) should "
               f"come first; he took the priority-0 one (older); the VIP chat is "
               f"{conv(r, k2).get('state')!r} with {conv(r, k2).get('agent') or 'nobody'}")
    for c in [xav, bob, filler] + list(back.values()):
        await c.close()


if __name__ == "__main__":
    run_tests([test_ladder_walk_explain_then_max_wait_from_enqueue,
               test_ladder_english_fallback_with_relaxed_skill,
               test_max_wait_overflow_keeps_place_before_newer_work,
               test_blended_agent_priority_age_channels_blocking,
               test_tenant_isolation_with_multi_tenant_agent,
               test_agent_lost_requeue_oldest_goes_first,
               test_agent_lost_requeue_higher_priority_goes_first,
               test_agent_set_offline_offers_taken_back_oldest_goes_first,
               test_offer_rejected_after_max_wait_skips_due_ladder_step,
               test_capacity_per_channel_and_blocking,
               test_strategies_and_tie_breaks,
               test_sticky_waits_ended_by_offline_go_by_priority,
               test_sticky_agent_frees_up_takes_priority_first])
