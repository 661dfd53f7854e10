"""test_reload_edges.py - a routing-rules reload (SIGHUP) at the edges: a lowered
chat.abandon_after_s closes what waits for a customer gone longer (never handed to an agent);
an agent a reload frees up serves the customer waiting for them first; a waiting set's head
declined by the only agent does not hold back the rest of a higher-priority queue; the
warning about instances with other rules names only instances still running; conversations
whose record is gone do not abort it; what it makes servable goes to the agent each queue's
strategy picks; a sticky wait it ends goes on at the ladder step already due.

    OMR_BUILD_DIR=build/asan python3 tests/integration/test_reload_edges.py [NAME...]
"""
import asyncio
import os
import signal
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from omr_harness import Customer, add_agent, log, poll, run_tests, time_limit  # noqa: E402
from test_live_floor import available, conv, explain  # noqa: E402
from test_reload_live import rules_text  # noqa: E402

P = "omr:{default}"


async def reload_file(d, r, edit):
    """Rewrites d's whole config with edit(text), SIGHUPs it, waits for new rules in Redis."""
    before = rules_text(r)
    with open(d.cfg_path) as f:
        text = f.read()
    new = edit(text)
    assert new != text
    with open(d.cfg_path, "w") as f:
        f.write(new)
    d.proc.send_signal(signal.SIGHUP)
    ok = await poll(lambda: rules_text(r) != before, 10, 0.05)
    assert ok, f"{d.name}: the reload did not change the rules; log:\n" + d.log_text()[-3000:]
    await asyncio.sleep(0.3)


def warnings(*ds):
    return [ln for d in ds for ln in d.log_text().splitlines()
            if "rules loaded over different ones" in ln]


# ---------------------------------------------------------------------------
# 1. A reload that lowers chat.abandon_after_s below the time a waiting chat's customer has
#    been gone AND makes that chat servable: ROUTING.md "Customers who leave": "A reload of
#    chat.abandon_after_s applies to customers who left already" and "one routed again after
#    the time is closed rather than handed to an agent" (it was assigned by the agents'
#    pull at the end of the reload).

ABANDON_Q = """
queues:
  - name: spanish
    languages: [es]
    min_proficiency: {p}
  - name: general
"""


@time_limit(60)
async def test_abandon_lowered_and_servable_on_reload_is_not_handed_to_agent(env):
    r = env.redis()
    d = env.daemon(r, config={"routing": {"tick_ms": 50}, "chat": {"abandon_after_s": 600}},
                   queues=ABANDON_Q.format(p=8))
    tz = add_agent(d, "zed", "Zed", "en:10,es:5", 2)
    zed = await available(d, "zed", tz)
    es = Customer(d.url, "es")
    await es.hello(language="es", name="S")
    await asyncio.sleep(0.3)
    assert conv(r, es.conversation_id).get("state") == "queued"
    await es.close()  # the customer leaves
    ok = await poll(lambda: conv(r, es.conversation_id).get("left_ms"), 5)
    assert ok, conv(r, es.conversation_id)
    await asyncio.sleep(2.0)  # gone 2 s: longer than the new abandon_after_s (1)

    def edit(text):
        return text.replace("abandon_after_s: 600", "abandon_after_s: 1").replace(
            "min_proficiency: 8", "min_proficiency: 1")
    await reload_file(d, r, edit)
    await asyncio.sleep(1.5)
    h = conv(r, es.conversation_id)
    log(f"after reload: {h.get('state')} agent={h.get('agent')} reason={h.get('close_reason')} "
        f"explain={explain(d, es.conversation_id)}")
    env.expect(h.get("state") == "closed" and h.get("close_reason") == "abandoned"
               and not zed.assigned(es.conversation_id),
               f"the customer left 2 s+ before a reload set abandon_after_s 1 and made the chat "
               f"servable: it should be closed abandoned, not handed to zed; it is "
               f"{h.get('state')!r}, agent {h.get('agent')!r}, close_reason "
               f"{h.get('close_reason')!r}, zed got it: {bool(zed.assigned(es.conversation_id))}")
    await zed.close()


# ---------------------------------------------------------------------------
# 2. Two sets of rules (the warning tests below).

QA = """
queues:
  - name: general
"""
QB = """
queues:
  - name: general
  - name: billing
    skills: {billing: 5}
"""


# ---------------------------------------------------------------------------
# 3. A returning customer waits for its agent (sticky), who cannot take a chat because a
#    call blocks chats; an older chat waits in the queue too. A reload that stops voice from
#    blocking chats makes the agent free for one chat: the sticky customer who waits for that
#    agent should get it (ROUTING.md sticky: "goes first to the agent who last served them";
#    the agent freeing up takes what waits for it first: pull_preferred), not the older queue
#    chat (a head-first pass of the reload, backed out, gave it the older one).

STICKY_Q = """
queues:
  - name: general
    sticky_window_s: 60
"""


async def kim_served(d, agent):
    """Customer kim's first chat, served by agent (a desktop) and closed: kim's customer id
    now names that agent for a sticky queue."""
    first = Customer(d.url, "kim-first")
    await first.hello(language="en", name="Kim", customer_id="kim")
    await agent.wait_item(lambda f: f.get("type") == "assigned"
                          and f.get("conversation_id") == first.conversation_id, 10, "first")
    await agent.close_conv(first.conversation_id)
    return first


async def kim_back(d, r, agent_id):
    """kim returns: her new chat waits for agent_id (sticky)."""
    kim = Customer(d.url, "kim-back")
    await kim.hello(language="en", name="Kim", customer_id="kim")
    ok = await poll(lambda: conv(r, kim.conversation_id).get("pref_agent") == agent_id, 5)
    assert ok, conv(r, kim.conversation_id)
    return kim


@time_limit(60)
async def test_reload_unblocking_agent_serves_its_sticky_wait_first(env):
    r = env.redis()
    d = env.daemon(r, config={"routing": {"tick_ms": 50, "blocking_channels": "voice:chat,email"}},
                   queues=STICKY_Q)
    ta = add_agent(d, "ana", "Ana", "en", "chat:1,voice:1")
    ana = await available(d, "ana", ta)
    first = await kim_served(d, ana)
    await asyncio.sleep(0.3)
    c = r.client()
    try:
        st = c.cmd("FCALL", "omr_conv_start", "1", P, "voice1", "x", "en", "en", "V", "voice",
                   "default", "", "{}", "[]")
    finally:
        c.close()
    assert st == "assigned", st
    await ana.wait_item(lambda f: f.get("type") == "assigned"
                        and f.get("conversation_id") == "voice1", 10, "voice call")
    other = Customer(d.url, "other")
    await other.hello(language="en", name="O")
    await asyncio.sleep(0.3)
    kim = await kim_back(d, r, "ana")
    why = explain(d, kim.conversation_id)
    log(f"kim back: {why}; other: {conv(r, other.conversation_id).get('state')}")
    assert why.get("waiting_for") == "ana", why
    assert conv(r, other.conversation_id).get("state") == "queued"

    def edit(text):
        return text.replace("voice:chat,email", "voice:email")
    await reload_file(d, r, edit)
    await poll(lambda: conv(r, kim.conversation_id).get("state") != "queued"
               or conv(r, other.conversation_id).get("state") != "queued", 5)
    hk, ho = conv(r, kim.conversation_id), conv(r, other.conversation_id)
    log(f"after reload: kim {hk.get('state')} {hk.get('agent')}; other {ho.get('state')} "
        f"{ho.get('agent')}; explain other {explain(d, other.conversation_id)}")
    env.expect(hk.get("agent") == "ana" and hk.get("state") == "assigned",
               f"the reload let ana (chat capacity 1) take a chat again: kim, waiting for her "
               f"(sticky), should get her; kim is {hk.get('state')!r} agent {hk.get('agent')!r}, "
               f"the older queue chat is {ho.get('state')!r} agent {ho.get('agent')!r}")
    for x in (first, other, kim, ana):
        await x.close()


# ---------------------------------------------------------------------------
# 4. Priority after a reload, with a decline: ana transferred chat H to queue vip (priority
#    5; she may not be given H back for decline_hold_s), bob transferred the younger H2 there
#    too; a French chat L waits in a priority-0 queue. A reload lets ana serve both queues.
#    ROUTING.md "Waiting and ordering": the highest priority first, then the oldest: ana
#    (capacity 1, the only agent) should get H2 (vip) before L (a
#    head-first pass of the reload, backed out, dropped vip's whole waiting set when its head H
#    found nobody, and gave ana L).

PRIO_BEFORE = """
queues:
  - name: french
    languages: [fr]
    min_proficiency: 8
  - name: general
  - name: vip
    priority: 5
    skills: {vip: 5}
"""
PRIO_AFTER = """
queues:
  - name: french
    languages: [fr]
    min_proficiency: 1
  - name: general
  - name: vip
    priority: 5
"""


async def transfer(agent, cid, queue, rid):
    rep = await agent.conn.request({"type": "transfer", "conversation_id": cid, "queue": queue,
                                    "note": "n", "id": rid})
    assert rep.get("type") == "ack", rep


@time_limit(60)
async def test_reload_priority_not_inverted_by_declined_head(env):
    r = env.redis()
    d = env.daemon(r, config={"routing": {"tick_ms": 50}}, queues=PRIO_BEFORE)
    ta = add_agent(d, "ana", "Ana", "en:5,fr:5", 1)
    tb = add_agent(d, "bob", "Bob", "en", 1)
    ana = await available(d, "ana", ta)
    h = Customer(d.url, "H")
    await h.hello(language="en", name="H")
    await ana.wait_item(lambda f: f.get("type") == "assigned"
                        and f.get("conversation_id") == h.conversation_id, 10, "H")
    bob = await available(d, "bob", tb)
    h2 = Customer(d.url, "H2")
    await h2.hello(language="en", name="H2")
    await bob.wait_item(lambda f: f.get("type") == "assigned"
                        and f.get("conversation_id") == h2.conversation_id, 10, "H2")
    await transfer(ana, h.conversation_id, "vip", "t1")
    await transfer(bob, h2.conversation_id, "vip", "t2")
    await bob.close()
    await poll(lambda: r.client().cmd("HGET", P + ":agent:bob", "presence") == "offline", 5)
    lc = Customer(d.url, "L")
    await lc.hello(language="fr", name="L")
    await asyncio.sleep(0.5)
    for cid in (h.conversation_id, h2.conversation_id, lc.conversation_id):
        hh = conv(r, cid)
        assert hh.get("state") == "queued", (cid, hh)
    await reload_queues_text(d, r, PRIO_AFTER)
    await poll(lambda: conv(r, h2.conversation_id).get("state") != "queued"
               or conv(r, lc.conversation_id).get("state") != "queued", 5)
    await asyncio.sleep(0.5)
    s = {n: (conv(r, c.conversation_id).get("state"), conv(r, c.conversation_id).get("agent"))
         for n, c in (("H", h), ("H2", h2), ("L", lc))}
    log(f"after reload: {s}; explain L {explain(d, lc.conversation_id)}")
    env.expect(s["H2"] == ("assigned", "ana") and s["L"][0] == "queued",
               f"ana (capacity 1) can serve vip (priority 5: H, which she declined, and H2) "
               f"and french (priority 0: L, younger) after the reload: she should get H2, "
               f"got {s}")
    for x in (h, h2, lc, ana):
        await x.close()


async def reload_queues_text(d, r, queues):
    def edit(text):
        return text.split("\nqueues:\n")[0] + "\n" + queues.lstrip("\n")
    await reload_file(d, r, edit)


# ---------------------------------------------------------------------------
# 5. rules_pushers: instance "eu" stopped for good and was reaped; "eu-west" (its ids are
#    "eu-west-...") reloaded alone is not warned that eu still runs the old rules (it was:
#    a live id starting with "eu-" counted as eu). ARCHITECTURE.md rules_pushers: "one that
#    pushes different rules while another of them still runs logs a warning".

HB = {"routing": {"tick_ms": 50, "heartbeat_timeout_s": 3}}


async def pushers_stopped_peer(env, other):
    r = env.redis()
    d1 = env.daemon(r, name="eu", config=HB, queues=QA)
    d2 = env.daemon(r, name=other, config=HB, queues=QA)
    await asyncio.sleep(0.5)
    d1.stop()
    c = r.client()
    try:
        ok = await poll(lambda: not [i for i in c.cmd("ZRANGE", P + ":instances", 0, -1)
                                     if i.startswith("eu-") and not i.startswith(other)], 30)
        log(f"instances: {c.cmd('ZRANGE', P + ':instances', 0, -1)} pushers "
            f"{c.cmd('SMEMBERS', P + ':rules_pushers')}")
    finally:
        c.close()
    assert ok, "eu was not reaped"
    await reload_queues_text(d2, r, QB)
    await asyncio.sleep(0.5)
    w = warnings(d2)
    log(f"{other} reloaded alone: warnings {w}")
    env.expect(not w, f"eu stopped and was reaped; {other}, the only instance, reloaded and "
                      f"warned another instance still runs the old rules: {w}")


@time_limit(90)
async def test_pushers_name_prefix_stopped_instance_no_false_warning(env):
    await pushers_stopped_peer(env, "eu-west")


# ---------------------------------------------------------------------------
# 6. Lua errors abort a reload: leftovers whose conversation hash is gone (a waiting set's
#    head, P:queued, an agent's convs, a pref set) must not stop it.

GHOST_BEFORE = """
queues:
  - name: general
    languages: [en]
    min_proficiency: 8
"""
GHOST_AFTER = """
queues:
  - name: general
    languages: [en]
    min_proficiency: 1
"""


@time_limit(60)
async def test_reload_survives_ghost_conversations(env):
    r = env.redis()
    d = env.daemon(r, config={"routing": {"tick_ms": 50}}, queues=GHOST_BEFORE)
    ta = add_agent(d, "ana", "Ana", "en:5", 2)
    ana = await available(d, "ana", ta)
    real = Customer(d.url, "real")
    await real.hello(language="en", name="R")
    await asyncio.sleep(0.3)
    h = conv(r, real.conversation_id)
    assert h.get("state") == "queued", h
    wk = h["wait_key"]
    c = r.client()
    try:
        c.cmd("ZADD", wk, "1", "ghost1")  # older than anything: the set's head
        c.cmd("SADD", P + ":queued", "ghost2")
        c.cmd("SADD", P + ":agent:ana:convs", "ghost3")
        c.cmd("ZADD", P + ":pref:ana", "1", "ghost4")
    finally:
        c.close()
    before = rules_text(r)
    with open(d.cfg_path) as f:
        text = f.read()
    with open(d.cfg_path, "w") as f:
        f.write(text.replace("min_proficiency: 8", "min_proficiency: 1"))
    d.proc.send_signal(signal.SIGHUP)
    changed = await poll(lambda: rules_text(r) != before, 5)
    await asyncio.sleep(0.5)
    errs = [ln for ln in d.log_text().splitlines() if "refused by redis" in ln]
    got = await poll(lambda: conv(r, real.conversation_id).get("agent") == "ana", 5)
    env.expect(changed and not errs and got,
               f"reload with leftover ids: rules changed {changed}, errors {errs}, the real "
               f"chat went to ana: {got}")
    await real.close()
    await ana.close()


# ---------------------------------------------------------------------------
# 7. What a reload makes servable goes to the agent each queue's strategy picks, as a new
#    conversation would (ROUTING.md "Strategies"; the agents used to pull it in turn by agent
#    id, so agent "aaa" took every chat it had room for while "zed" sat idle).

STRATEGY_Q = """
queues:
  - name: spanish
    languages: [es]
    min_proficiency: {p}
    strategy: {s}
  - name: general
"""


def strategy_daemon(env, strategy):
    r = env.redis()
    d = env.daemon(r, config={"routing": {"tick_ms": 50}},
                   queues=STRATEGY_Q.format(p=8, s=strategy))
    return d, r


async def agent_with_chat(d, agent_id, close):
    """Agent agent_id (capacity 3, en:10,es:5) free, given an English chat, which it closes
    if close."""
    a = await available(d, agent_id, add_agent(d, agent_id, agent_id.title(), "en:10,es:5", 3))
    en = Customer(d.url, "en-" + agent_id)
    await en.hello(language="en", name="E")
    await a.wait_item(lambda f: f.get("type") == "assigned"
                      and f.get("conversation_id") == en.conversation_id, 10, "en chat")
    if close:
        await a.close_conv(en.conversation_id)
    return a


async def spanish_chats(d, n):
    """n customers' Spanish chats, started in turn (the older first)."""
    chats = []
    for i in range(n):
        c = Customer(d.url, f"es{i}")
        await c.hello(language="es", name=f"S{i}")
        chats.append(c)
        await asyncio.sleep(0.05)  # (distinct enqueue times)
    return chats


async def spanish_after_reload(d, r, strategy, n):
    """n Spanish chats waiting (the queue wants es:8), then a reload to es:1: the agents
    they went to, the oldest chat's first, and the oldest chat's explanation."""
    chats = await spanish_chats(d, n)
    for c in chats:
        assert conv(r, c.conversation_id).get("state") == "queued", conv(r, c.conversation_id)
    await reload_queues_text(d, r, STRATEGY_Q.format(p=1, s=strategy))
    for c in chats:
        ok = await poll(lambda: conv(r, c.conversation_id).get("state") == "assigned", 5)
        assert ok, conv(r, c.conversation_id)
    got = [conv(r, c.conversation_id).get("agent") for c in chats]
    why = explain(d, chats[0].conversation_id)
    log(f"after reload: {got}; explain {why}")
    return got, why


@time_limit(60)
async def test_reload_routes_by_least_loaded(env):
    d, r = strategy_daemon(env, "least_loaded")
    await agent_with_chat(d, "aaa", close=False)
    await available(d, "zed", add_agent(d, "zed", "Zed", "en:10,es:5", 3))
    got, why = await spanish_after_reload(d, r, "least_loaded", 2)
    # the older to zed (no chat), then a tie (one each): longest since the last assignment
    env.expect(got == ["zed", "aaa"],
               f"least_loaded: the older Spanish chat to zed (0 chats, aaa has 1), the next "
               f"to aaa (1 each, aaa assigned longer ago); got {got}")
    env.expect(why.get("trigger") == "rules reloaded" and why.get("strategy") == "least_loaded"
               and len(why.get("candidates") or []) == 2, why)


@time_limit(60)
async def test_reload_routes_by_longest_idle(env):
    d, r = strategy_daemon(env, "longest_idle")
    await agent_with_chat(d, "zed", close=False)  # zed: 1 chat, assigned first
    await asyncio.sleep(0.05)
    await agent_with_chat(d, "aaa", close=True)  # aaa: none, but assigned since
    got, why = await spanish_after_reload(d, r, "longest_idle", 1)
    env.expect(got == ["zed"] and why.get("strategy") == "longest_idle",
               f"longest_idle: the Spanish chat to zed (idle longer than aaa); got {got} {why}")


@time_limit(60)
async def test_reload_strategy_pass_does_not_skip_other_sets(env):
    """A set whose conversations nobody can serve (tenant nobody serves) sorted before a
    servable one (older) does not keep the servable one from its agent."""
    r = env.redis()
    d = env.daemon(r, config={"routing": {"tick_ms": 50}},
                   queues=STRATEGY_Q.format(p=8, s="least_loaded"))
    zed = await available(d, "zed", add_agent(d, "zed", "Zed", "en:10,es:5", 2))
    c = r.client()
    try:
        for i in range(3):  # older than the Spanish chat, in a set nobody serves
            st = c.cmd("FCALL", "omr_conv_start", "1", P, f"u{i}", "x", "en", "en", "U",
                       "chat", "nobody", "", "{}", "[]")
            assert st == "queued", st
    finally:
        c.close()
    es = Customer(d.url, "es")
    await es.hello(language="es", name="S")
    await asyncio.sleep(0.3)
    assert conv(r, es.conversation_id).get("state") == "queued"
    await reload_queues_text(d, r, STRATEGY_Q.format(p=1, s="least_loaded"))
    await zed.wait_item(lambda f: f.get("type") == "assigned"
                        and f.get("conversation_id") == es.conversation_id, 5, "es chat")
    for i in range(3):
        env.expect(conv(r, f"u{i}").get("state") == "queued", conv(r, f"u{i}"))


# ---------------------------------------------------------------------------
# 8. A reload that lowers (or turns on) chat.abandon_after_s reaches a customer who left
#    while their chat waited: also when the reload offers that chat at once (auto_accept
#    false: the strategy pass of section 7 offered it without arming the customer-left
#    clock), and when it waits for one agent in particular (sticky: that clock was never
#    re-armed; the chat waited for the whole sticky window).

OFFER_Q = """
queues:
  - name: spanish
    languages: [es]
    min_proficiency: 8
    auto_accept: false
    offer_timeout_s: 60
  - name: general
"""


async def offered_after_reload(env, abandon_before, abandon_after):
    """A Spanish chat waits (nobody speaks es:8), its customer closes the page; a reload sets
    chat.abandon_after_s to abandon_after and min_proficiency 1: zed (es:5) is offered it."""
    r = env.redis()
    d = env.daemon(r, config={"routing": {"tick_ms": 50},
                              "chat": {"abandon_after_s": abandon_before}}, queues=OFFER_Q)
    zed = await available(d, "zed", add_agent(d, "zed", "Zed", "en:10,es:5", 2))
    es = Customer(d.url, "es")
    await es.hello(language="es", name="S")
    ok = await poll(lambda: conv(r, es.conversation_id).get("state") == "queued", 5)
    assert ok, conv(r, es.conversation_id)
    await es.close()  # the customer leaves
    ok = await poll(lambda: conv(r, es.conversation_id).get("left_ms"), 5)
    assert ok, conv(r, es.conversation_id)

    def edit(text):
        return text.replace(f"abandon_after_s: {abandon_before}",
                            f"abandon_after_s: {abandon_after}").replace(
            "min_proficiency: 8", "min_proficiency: 1")
    await reload_file(d, r, edit)
    await zed.wait_item(lambda f: f.get("type") == "offer"
                        and f.get("conversation_id") == es.conversation_id, 5, "es offer")
    left = int(conv(r, es.conversation_id)["left_ms"])
    return d, r, zed, es, left


async def expect_abandoned(env, d, r, zed, es, left, abandon_after):
    # ROUTING.md "Customers who leave": gone for abandon_after_s, a conversation still queued
    # or offered is closed as abandoned (the offer taken back with that reason); "a reload of
    # chat.abandon_after_s applies to customers who left already".
    closed = await poll(lambda: conv(r, es.conversation_id).get("state") == "closed",
                        abandon_after + 6)
    h = conv(r, es.conversation_id)
    log(f"after the reload: {h.get('state')} {h.get('close_reason')} at "
        f"{h.get('closed_ms')} (left {left}); zed revoked {zed.revoked(es.conversation_id)}")
    env.expect(closed and h.get("close_reason") == "abandoned",
               f"customer gone since {left}, chat.abandon_after_s reloaded to {abandon_after}, "
               f"the chat offered to zed at the reload (offer_timeout_s 60): it should be closed "
               f"abandoned within ~{abandon_after} s of the departure; it is {h.get('state')!r} "
               f"(reason {h.get('close_reason')!r}, agent {h.get('agent')!r}) "
               f"{abandon_after + 6} s later; explain {explain(d, es.conversation_id)}")
    await zed.close()


@time_limit(60)
async def test_reload_offer_abandon_lowered(env):
    """abandon_after_s 600 -> 3 with the customer gone under a second: the offer made at the
    reload keeps only the old clock (600 s)."""
    d, r, zed, es, left = await offered_after_reload(env, 600, 3)
    await expect_abandoned(env, d, r, zed, es, left, 3)


@time_limit(60)
async def test_reload_offer_abandon_enabled(env):
    """abandon_after_s 0 (never) -> 3: nothing was armed when the customer left, and the
    offer made at the reload arms nothing either."""
    d, r, zed, es, left = await offered_after_reload(env, 0, 3)
    await expect_abandoned(env, d, r, zed, es, left, 3)



STICKY_600 = """
queues:
  - name: general
    sticky_window_s: 600
"""


@time_limit(60)
async def test_reload_lowered_abandon_applies_to_sticky_wait(env):
    r = env.redis()
    d = env.daemon(r, config={"routing": {"tick_ms": 50}, "chat": {"abandon_after_s": 600}},
                   queues=STICKY_600)
    ana = await available(d, "ana", add_agent(d, "ana", "Ana", "en", 1))
    first = await kim_served(d, ana)
    other = Customer(d.url, "other")  # ana (capacity 1) busy with another chat
    await other.hello(language="en", name="O")
    await ana.wait_item(lambda f: f.get("type") == "assigned"
                        and f.get("conversation_id") == other.conversation_id, 10, "other")
    kim = await kim_back(d, r, "ana")
    await kim.close()  # kim leaves while waiting for ana
    ok = await poll(lambda: conv(r, kim.conversation_id).get("left_ms"), 5)
    assert ok, conv(r, kim.conversation_id)
    await reload_file(d, r, lambda t: t.replace("abandon_after_s: 600", "abandon_after_s: 2"))
    left = int(conv(r, kim.conversation_id)["left_ms"])
    # ROUTING.md "Customers who leave": gone for chat.abandon_after_s, a conversation still
    # queued is closed as abandoned; "a reload of chat.abandon_after_s applies to customers
    # who left already". A non-sticky chat waiting the same way is (the reload re-queues it,
    # which arms the clock at the new value); one waiting for its agent is not.
    closed = await poll(lambda: conv(r, kim.conversation_id).get("state") == "closed", 8)
    h = conv(r, kim.conversation_id)
    log(f"after the reload: {h.get('state')} {h.get('close_reason')} (left {left}, "
        f"closed {h.get('closed_ms')})")
    env.expect(closed and h.get("close_reason") == "abandoned",
               f"kim left at {left} while waiting for ana (sticky_window_s 600); the reload set "
               f"chat.abandon_after_s 2: the chat should be closed abandoned ~2 s after she "
               f"left; 8 s after the reload it is {h.get('state')!r}; explain "
               f"{explain(d, kim.conversation_id)}")
    for x in (first, other, ana):
        await x.close()


# ---------------------------------------------------------------------------
# 9. A chat waiting for an agent (sticky) whom the reload no longer lets serve it was routed
#    again (pull_preferred) before the waiting work the reload made servable, and took the
#    only free agent from an older chat of a higher-priority queue.

STICKY_JUMP_Q = """
queues:
  - name: spanish
    languages: [es]
    priority: 5
    min_proficiency: {spanish}
  - name: general
    sticky_window_s: 600
    min_proficiency: {general}
"""


async def zed_full(d):
    """Agent zed (en:3, capacity 1) served kim's first chat and now holds another: kim's
    return waits for zed (sticky). Returns (zed, kim's first chat, the other chat)."""
    zed = await available(d, "zed", add_agent(d, "zed", "Zed", "en:3", 1))
    first = await kim_served(d, zed)
    other = Customer(d.url, "other")
    await other.hello(language="en", name="O")  # zed is full
    await zed.wait_item(lambda f: f.get("type") == "assigned"
                        and f.get("conversation_id") == other.conversation_id, 10, "other")
    return zed, first, other


@time_limit(90)
async def test_sticky_reroute_does_not_jump_the_reloaded_queue(env):
    """ROUTING.md (the reload paragraph): "the free agents first take what waits for them in
    particular, then the waiting work goes, the highest priority first, then the oldest". Kim
    waits for zed (sticky; zed is full). A reload lowers spanish to es:1 (bob, es:5, may now
    take the older Spanish chat W, priority 5) and raises general to en:5 (zed, en:3, no
    longer serves Kim). bob (capacity 1) is the only free agent: W should be his; Kim, routed
    again, should wait."""
    r = env.redis()
    d = env.daemon(r, config={"routing": {"tick_ms": 50}},
                   queues=STICKY_JUMP_Q.format(spanish=8, general=1))
    zed, first, other = await zed_full(d)
    w = Customer(d.url, "w")
    await w.hello(language="es", name="W")  # nobody speaks es:8
    ok = await poll(lambda: conv(r, w.conversation_id).get("state") == "queued", 5)
    assert ok, conv(r, w.conversation_id)
    await asyncio.sleep(0.05)
    kim = await kim_back(d, r, "zed")
    bob = await available(d, "bob", add_agent(d, "bob", "Bob", "en:5,es:5", 1))
    await asyncio.sleep(0.3)
    assert conv(r, w.conversation_id).get("state") == "queued", conv(r, w.conversation_id)
    await reload_queues_text(d, r, STICKY_JUMP_Q.format(spanish=1, general=5))
    await poll(lambda: conv(r, w.conversation_id).get("state") != "queued"
               or conv(r, kim.conversation_id).get("state") != "queued", 5)
    hw, hk = conv(r, w.conversation_id), conv(r, kim.conversation_id)
    log(f"after reload: W {hw.get('state')} {hw.get('agent')}; kim {hk.get('state')} "
        f"{hk.get('agent')}; explain kim {explain(d, kim.conversation_id)}")
    env.expect(hw.get("state") == "assigned" and hw.get("agent") == "bob",
               f"bob (capacity 1) should get the older, priority-5 Spanish chat W; W is "
               f"{hw.get('state')!r} {hw.get('agent')!r}, kim (routed again, priority 0, "
               f"newer) is {hk.get('state')!r} {hk.get('agent')!r}")
    why = explain(d, kim.conversation_id)
    env.expect(why.get("state") == "queued"
               and why.get("trigger") == "agent zed, whom it waited for, no longer serves it",
               f"kim waits again, and says why: {why}")
    for x in (first, other, w, kim, zed, bob):
        await x.close()



# ---------------------------------------------------------------------------
# 10. A chat waiting for an agent (sticky) whom the reload no longer lets serve it goes on at
#     the step of its queue's ladder it has already waited past (ROUTING.md: "Ladder steps the
#     new rules give that a conversation has already waited past are taken at once"), so
#     the reload's pass routes it in its turn. It was routed at step 1 and left to the timers:
#     a newer chat took the only agent its step 2 would have found.

STICKY_LADDER_Q = """
queues:
  - name: french
    languages: [fr]
    min_proficiency: {french}
  - name: general
    sticky_window_s: 600
    min_proficiency: {general}
"""
STICKY_LADDER_AFTER = STICKY_LADDER_Q.format(french=1, general=5) + (
    "    steps:\n      - after_s: 1\n        languages: [es]\n")


@time_limit(90)
async def test_sticky_wait_ended_by_reload_takes_due_ladder_steps(env):
    """Kim waits for zed (sticky; zed, en:3, is full). A reload raises general to
    proficiency 5 (zed no longer serves her) and gives it a step from 1 s taking Spanish
    speakers, and lowers french to 1. bob (es:5, fr:5, capacity 1) is the only free agent:
    Kim (older, at step 2 by now) should get him before the newer French chat N."""
    r = env.redis()
    d = env.daemon(r, config={"routing": {"tick_ms": 50}},
                   queues=STICKY_LADDER_Q.format(french=8, general=1))
    zed, first, other = await zed_full(d)
    kim = await kim_back(d, r, "zed")
    await asyncio.sleep(0.05)
    n = Customer(d.url, "n")
    await n.hello(language="fr", name="N")  # nobody speaks fr:8
    ok = await poll(lambda: conv(r, n.conversation_id).get("state") == "queued", 5)
    assert ok, conv(r, n.conversation_id)
    bob = await available(d, "bob", add_agent(d, "bob", "Bob", "es:5,fr:5", 1))
    await asyncio.sleep(1.2)  # kim has waited past the new step's 1 s
    assert conv(r, n.conversation_id).get("state") == "queued", conv(r, n.conversation_id)
    assert conv(r, kim.conversation_id).get("state") == "queued", conv(r, kim.conversation_id)
    await reload_queues_text(d, r, STICKY_LADDER_AFTER)
    await poll(lambda: conv(r, n.conversation_id).get("state") != "queued"
               or conv(r, kim.conversation_id).get("state") != "queued", 5)
    hk, hn = conv(r, kim.conversation_id), conv(r, n.conversation_id)
    why = explain(d, kim.conversation_id)
    log(f"after reload: kim {hk.get('state')} {hk.get('agent')} step {hk.get('step')}; "
        f"N {hn.get('state')} {hn.get('agent')}; explain kim {why}")
    env.expect(hk.get("state") == "assigned" and hk.get("agent") == "bob",
               f"bob (capacity 1) should get kim, older than N and at step 2 of general (Spanish "
               f"speakers) by the time of the reload; kim is {hk.get('state')!r} "
               f"{hk.get('agent')!r} at step {hk.get('step')!r}, N is {hn.get('state')!r} "
               f"{hn.get('agent')!r}")
    env.expect(why.get("step") == 2 and why.get("language_matched") == "es",
               f"kim's explanation names step 2 and Spanish: {why}")
    for x in (first, other, n, kim, zed, bob):
        await x.close()


if __name__ == "__main__":
    run_tests([v for k, v in list(globals().items()) if k.startswith("test_")])
