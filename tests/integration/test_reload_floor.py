"""test_reload_floor.py - a rules reload (SIGHUP, or an instance with other rules connecting)
on a working floor: an open offer whose customer left meets a lowered chat.abandon_after_s; a
longest_idle queue's chats made servable by one reload are spread as new ones would be; a chat
an agent transferred (to a queue, then to an agent) keeps its queue; ladder steps a reload adds
that waiting chats are already past route them by priority; offers a reload makes reach desktops
on another instance; ten SIGHUPs in a row; two instances with different rules reconnecting in
turn (each pushing its rules) never hold a chat twice or go over capacity.

    OMR_BUILD_DIR=build/asan python3 tests/integration/test_reload_floor.py [NAME...]
"""
import asyncio
import json
import os
import signal
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from omr_harness import Customer, add_agent, log, poll, run_tests, time_limit  # noqa: E402
from test_live_floor import available, cluster, conv, explain  # noqa: E402
from test_reload_edges import STRATEGY_Q, reload_file, spanish_chats  # noqa: E402
from test_transfers import transfer  # noqa: E402

P = "omr:{default}"

OFFER_Q = """
queues:
  - name: general
    auto_accept: false
    offer_timeout_s: 120
"""


# 1. An offer is open (auto_accept false, a long offer timeout); its customer closes the page.
#    A reload lowers chat.abandon_after_s below the time the customer has been gone.
#    ROUTING.md "Customers who leave": "a conversation still queued or offered is closed with
#    reason abandoned (an offer is taken back with that reason ...)"; "A reload of
#    chat.abandon_after_s applies to customers who left already: what waits for one gone
#    longer than the new time is closed at the reload."
@time_limit(90)
async def test_open_offer_abandon_lowered_on_reload(env):
    r = env.redis()
    d = env.daemon(r, config={"routing": {"tick_ms": 50}, "chat": {"abandon_after_s": 60}},
                   queues=OFFER_Q)
    ta = add_agent(d, "ana", "Ana", "en", 2)
    ana = await available(d, "ana", ta)
    c = Customer(d.url, "c1")
    await c.hello(language="en", name="C")
    cid = c.conversation_id
    await ana.wait_item(lambda f: f.get("type") == "offer"
                        and f.get("conversation_id") == cid, 10, "offer")
    await c.close()  # the customer leaves with the offer open
    ok = await poll(lambda: conv(r, cid).get("left_ms"), 5)
    assert ok, conv(r, cid)
    await asyncio.sleep(2.0)  # gone 2 s+: longer than the new abandon_after_s (1)

    def edit(text):
        return text.replace("abandon_after_s: 60", "abandon_after_s: 1")
    await reload_file(d, r, edit)
    ok = await poll(lambda: conv(r, cid).get("state") == "closed", 8)
    h = conv(r, cid)
    log(f"after reload: {h.get('state')} agent={h.get('agent')} reason={h.get('close_reason')}")
    env.expect(ok and h.get("close_reason") == "abandoned",
               f"the customer left 2 s+ before a reload set abandon_after_s 1, the offer to ana "
               f"still open: it should be taken back and closed abandoned (at the reload, or "
               f"within a few ticks), not left open until the old 60 s; it is "
               f"{h.get('state')!r}, agent {h.get('agent')!r}")
    # and what ana sees: she may accept a chat whose customer is gone
    rep = await ana.accept(cid)
    log(f"ana accepts after the reload: {rep}; conv {conv(r, cid).get('state')}")
    env.expect(conv(r, cid).get("state") != "assigned",
               f"ana could accept (and now holds) the chat of a customer gone longer than "
               f"abandon_after_s: {rep}")
    await ana.close()


# 2. longest_idle at a reload: three free agents (capacity 3, never assigned), five Spanish
#    chats nobody could serve; a reload makes them servable. ROUTING.md: the reload routes
#    each "to the agent its queue's strategy picks" "as a new conversation would be";
#    longest_idle picks "longest since last assignment". As new conversations, the five go
#    aaa, bbb, zed, aaa, bbb (2/2/1). Every assignment of one reload has the same
#    timestamp, so after the first round every agent is "idle since now" and the tie (agent
#    id) gives aaa the 4th and the 5th: aaa 3, bbb 1, zed 1.
async def longest_idle_spread(env, by_reload):
    """aaa, bbb and zed (capacity 3, never assigned) free; five Spanish chats, servable at
    once or made so by a reload: each chat's agent and the counts."""
    r = env.redis()
    d = env.daemon(r, config={"routing": {"tick_ms": 50}},
                   queues=STRATEGY_Q.format(p=8 if by_reload else 1, s="longest_idle"))
    agents = []
    for aid in ("aaa", "bbb", "zed"):
        agents.append(await available(d, aid, add_agent(d, aid, aid.title(), "en:10,es:5", 3)))
    chats = await spanish_chats(d, 5)
    if by_reload:
        for c in chats:
            assert conv(r, c.conversation_id).get("state") == "queued"
        await reload_file(d, r, lambda t: t.replace("min_proficiency: 8", "min_proficiency: 1"))
    for c in chats:
        ok = await poll(lambda: conv(r, c.conversation_id).get("state") == "assigned", 5)
        assert ok, conv(r, c.conversation_id)
    got = [conv(r, c.conversation_id).get("agent") for c in chats]
    counts = {a: got.count(a) for a in ("aaa", "bbb", "zed")}
    log(f"longest_idle, {'by a reload' if by_reload else 'new conversations'}: {got} {counts}")
    for x in chats + agents:
        await x.close()
    return got, counts


@time_limit(90)
async def test_reload_longest_idle_second_round_fair(env):
    got, counts = await longest_idle_spread(env, True)
    env.expect(max(counts.values()) - min(counts.values()) <= 1,
               f"longest_idle, 3 free agents, 5 chats made servable by one reload: as new "
               f"conversations they go 2/2/1 (aaa, bbb, zed, aaa, bbb); the reload gave "
               f"{got} ({counts})")


@time_limit(90)
async def test_baseline_longest_idle_new_conversations(env):
    """The same five chats as new conversations (what the reload should match): 2/2/1."""
    got, counts = await longest_idle_spread(env, False)
    env.expect(max(counts.values()) - min(counts.values()) <= 1, f"{got} ({counts})")


XFER_Q = """
queues:
  - name: general
  - name: billing
    skills: {billing: 5}
    auto_accept: false
    offer_timeout_s: 120
"""


async def expert_offer(env, reload, reload_after=False):
    """yan (general) holds a chat, transfers it to queue billing; zoe (billing) accepts it
    and transfers it to agent xia (billing), who is offered it. If reload: a reload that
    changes nothing about these queues (a queue added at the end). xia rejects; gus (general,
    free) could take a general chat. Returns the conversation's hash after the reject."""
    r = env.redis()
    d = env.daemon(r, config={"routing": {"tick_ms": 50}}, queues=XFER_Q)
    yan = await available(d, "yan", add_agent(d, "yan", "Yan", "en", 2))
    cust = Customer(d.url, "cust")
    await cust.hello(language="en", name="C")
    cid = cust.conversation_id
    await yan.wait_item(lambda f: f.get("type") == "assigned"
                        and f.get("conversation_id") == cid, 10, "assigned to yan")
    zoe = await available(d, "zoe", add_agent(d, "zoe", "Zoe", "en", 2,
                                              extra=("--skills", "billing:5")))
    rep = await transfer(yan, cid, queue="billing")
    assert rep.get("type") == "ack", rep
    await zoe.wait_item(lambda f: f.get("type") == "offer"
                        and f.get("conversation_id") == cid, 10, "offer to zoe")
    rep = await zoe.accept(cid)
    assert rep.get("type") == "ack", rep
    xia = await available(d, "xia", add_agent(d, "xia", "Xia", "en", 2,
                                              extra=("--skills", "billing:5")))
    gus = await available(d, "gus", add_agent(d, "gus", "Gus", "en", 2))
    rep = await transfer(zoe, cid, to="xia")
    assert rep.get("type") == "ack", rep
    await xia.wait_item(lambda f: f.get("type") == "offer"
                        and f.get("conversation_id") == cid, 10, "offer to xia")
    log(f"offered to xia: {conv(r, cid).get('queue')} {conv(r, cid).get('transferred_to')}")
    if reload:
        await reload_file(d, r, lambda t: t + "  - name: extra\n    languages: [fr]\n")
        log(f"after the reload: queue {conv(r, cid).get('queue')}")
    rep = await xia.reject(cid)
    assert rep.get("type") == "ack", rep
    await poll(lambda: conv(r, cid).get("state") != "offered", 5)
    await asyncio.sleep(0.5)
    h = conv(r, cid)
    log(f"after xia rejected: state {h.get('state')} queue {h.get('queue')} agent "
        f"{h.get('agent')}; explain {explain(d, cid)}")
    if reload_after:
        await reload_file(d, r, lambda t: t + "  - name: extra\n    languages: [fr]\n")
        await asyncio.sleep(0.5)
        h = conv(r, cid)
        log(f"after a reload: state {h.get('state')} queue {h.get('queue')} agent "
            f"{h.get('agent')}; explain {explain(d, cid)}")
    for x in (cust, yan, zoe, xia, gus):
        await x.close()
    return h


# 3. A chat transferred to queue billing, then by its billing agent to another billing agent
#    (xia) whose offer is open at a reload that leaves billing as it was. ROUTING.md: "A
#    conversation an agent transferred to a queue, or one waiting for an agent in particular
#    (... a transfer to an agent), stays in its queue while that queue still takes its tenant
#    and channel"; "A conversation an agent holds or is offered in a queue that was renamed or
#    removed belongs to the queue the new rules give it" (billing was neither). xia rejects:
#    without the reload the chat goes back to billing (it waits there: zoe and xia declined);
#    after it, it was moved to general and goes to gus, who has no billing skill.
@time_limit(90)
async def test_offered_transfer_to_agent_keeps_queue_on_reload(env):
    h = await expert_offer(env, True)
    env.expect(h.get("queue") == "billing" and h.get("agent") != "gus",
               f"a billing chat transferred to agent xia, offered when an unrelated reload "
               f"came, rejected by xia: it should go back to billing (it does without the "
               f"reload), not to the general queue and gus; it is {h.get('state')!r} in "
               f"{h.get('queue')!r}, agent {h.get('agent')!r}")


# 3b. The same chat waiting in billing after xia's reject (no reload while it was offered):
#     yan transferred it to queue billing, so a reload that leaves billing as it was should
#     leave it there; it goes to general (gus), since its last transfer was to an agent.
@time_limit(90)
async def test_waiting_after_transfer_chain_keeps_queue_on_reload(env):
    h = await expert_offer(env, False, reload_after=True)
    env.expect(h.get("queue") == "billing" and h.get("agent") != "gus",
               f"a chat yan transferred to queue billing, then zoe to agent xia, who rejected "
               f"it, waits in billing; an unrelated reload should leave it there; it is "
               f"{h.get('state')!r} in {h.get('queue')!r}, agent {h.get('agent')!r}")


@time_limit(90)
async def test_baseline_offered_transfer_to_agent_no_reload(env):
    """(The same without the reload: back to billing.)"""
    h = await expert_offer(env, False)
    env.expect(h.get("queue") == "billing" and h.get("agent") != "gus", h)


TWO_Q = """
queues:
  - name: spanish
    languages: [es]
    min_proficiency: 8
    auto_accept: false
    offer_timeout_s: 60
  - name: general
"""


# 4. (held) Two instances; the agents' desktops on d2, the reload on d1: what the reload
#    offers reaches their desktops on d2.
@time_limit(90)
async def test_reload_offers_reach_other_instance(env):
    r = env.redis()
    d1, d2 = cluster(env, r, 2, TWO_Q)
    ana = await available(d2, "ana", add_agent(d2, "ana", "Ana", "en:10,es:5", 2))
    es = Customer(d2.url, "es")
    await es.hello(language="es", name="S")
    await asyncio.sleep(0.3)
    assert conv(r, es.conversation_id).get("state") == "queued"
    await reload_file(d1, r, lambda t: t.replace("min_proficiency: 8", "min_proficiency: 1"))
    await ana.wait_item(lambda f: f.get("type") == "offer"
                        and f.get("conversation_id") == es.conversation_id, 5, "offer")
    rep = await ana.accept(es.conversation_id)
    env.expect(rep.get("type") == "ack", rep)
    for x in (es, ana):
        await x.close()


# 5. (held) Ten SIGHUPs in a row, alternating rules that make Spanish chats servable or not
#    (offers, auto_accept false), ending on the servable ones: every chat ends up offered or
#    assigned once, nobody over capacity, the rules in Redis are the last file's.
@time_limit(120)
async def test_sighup_storm(env):
    r = env.redis()
    d = env.daemon(r, config={"routing": {"tick_ms": 50}}, queues=TWO_Q)
    ags = []
    for aid in ("ana", "bob"):
        ags.append(await available(d, aid, add_agent(d, aid, aid.title(), "en:10,es:5", 2)))
    chats = await spanish_chats(d, 6)
    with open(d.cfg_path) as f:
        base = f.read()
    texts = [base.replace("min_proficiency: 8", "min_proficiency: 1"), base]
    for i in range(10):
        with open(d.cfg_path, "w") as f:
            f.write(texts[(i + 1) % 2].replace("offer_timeout_s: 60", f"offer_timeout_s: {60 + i}"))
        d.proc.send_signal(signal.SIGHUP)
        await asyncio.sleep(0.02)
    # (each SIGHUP is a reload of its own: the last one's rules, then its offers, may come
    # late on a busy machine)
    def spanish():
        rules = json.loads(r.client().cmd("GET", P + ":rules"))
        return [q for q in rules["queues"] if q["name"] == "spanish"][0]
    await poll(lambda: spanish().get("offer_timeout_s") == 69, 10)
    await poll(lambda: sum(1 for x in chats if conv(r, x.conversation_id).get("state")
                           in ("offered", "assigned")) >= 4, 10)
    c = r.client()
    try:
        rules = json.loads(c.cmd("GET", P + ":rules"))
        loads = {a: c.cmd("HGET", P + ":agent:" + a, "load_chat") for a in ("ana", "bob")}
        held = {a: sorted(c.cmd("SMEMBERS", P + ":agent:" + a + ":convs")) for a in ("ana", "bob")}
    finally:
        c.close()
    sp = [q for q in rules["queues"] if q["name"] == "spanish"][0]
    states = [(conv(r, x.conversation_id).get("state"), conv(r, x.conversation_id).get("agent"))
              for x in chats]
    log(f"after the storm: spanish {sp}; loads {loads}; held {held}; states {states}")
    env.expect(sp.get("offer_timeout_s") == 69 and sp.get("min_proficiency") == 1,
               f"the rules in Redis are not the last file's: {sp}")
    env.expect(all(int(v or 0) <= 2 for v in loads.values()), loads)
    env.expect(sum(1 for s in states if s[0] in ("offered", "assigned")) == 4, states)
    offers = {a.aid if hasattr(a, "aid") else i: len(a.offers()) for i, a in enumerate(ags)}
    log(f"offers seen: {offers}")
    for x in chats + ags:
        await x.close()


LADDER_Q = """
queues:
  - name: vip
    languages: [es]
    attributes: {tier: gold}
    priority: 5
  - name: general
    languages: [es]
"""
LADDER_Q2 = LADDER_Q.replace("    languages: [es]\n", "    languages: [es]\n    steps:\n"
                             "      - after_s: 1\n        languages: [en]\n")


# 6. A reload adds a ladder step (English speakers from 1 s) that both waiting Spanish chats
#    are past: G (queue general, priority 0, older) and V (queue vip, priority 5). ana
#    (English, capacity 1) is free. ROUTING.md: "What the new rules make servable is routed
#    at the reload ... the highest priority first, then the oldest"; and an agent who frees up
#    with both waiting at step 2 takes V (pull_waiting). The reload routes neither (both at
#    step 1); the ticks escalate them in the order their steps fell due, and G takes ana.
@time_limit(60)
async def test_reload_added_step_already_due_priority(env):
    r = env.redis()
    d = env.daemon(r, config={"routing": {"tick_ms": 50}}, queues=LADDER_Q)
    ana = await available(d, "ana", add_agent(d, "ana", "Ana", "en", 1))
    c = r.client()
    try:
        for cid, attrs in (("G", "{}"), ("V", '{"tier":"gold"}')):
            st = c.cmd("FCALL", "omr_conv_start", "1", P, cid, "x", "es", "es", cid, "chat",
                       "default", "", attrs, "[]")
            assert st == "queued", st
            await asyncio.sleep(0.05)
    finally:
        c.close()
    assert conv(r, "V").get("queue") == "vip" and conv(r, "G").get("queue") == "general"
    await asyncio.sleep(1.5)  # both past the step the reload adds
    await reload_file(d, r, lambda t: t.split("\nqueues:\n")[0] + "\n" + LADDER_Q2.lstrip("\n"))
    ok = await poll(lambda: "assigned" in (conv(r, "V").get("state"), conv(r, "G").get("state")), 5)
    await asyncio.sleep(0.3)
    s = {x: (conv(r, x).get("state"), conv(r, x).get("agent"), conv(r, x).get("step"))
         for x in ("V", "G")}
    log(f"after the reload: {s}; explain V {explain(d, 'V')}; G {explain(d, 'G')}")
    env.expect(ok and s["V"][:2] == ("assigned", "ana"),
               f"a reload made both Spanish chats servable by English speakers (a step both "
               f"are past): ana (capacity 1) should get V (vip, priority 5) before G "
               f"(priority 0); got {s}")
    await ana.close()


def floor_problems(r, agents, cap):
    c = r.client()
    out = []
    try:
        holders = {}
        for a in agents:
            held = c.cmd("SMEMBERS", P + ":agent:" + a + ":convs")
            load = int(c.cmd("HGET", P + ":agent:" + a, "load_chat") or 0)
            if load != len(held) or load > cap:
                out.append(f"{a}: load {load}, holds {held}")
            for cid in held:
                holders.setdefault(cid, []).append(a)
                h = c.cmd("HMGET", P + ":conv:" + cid, "state", "agent")
                if h[0] not in ("offered", "assigned") or h[1] != a:
                    out.append(f"{a} holds {cid} {h}")
        for cid, hs in holders.items():
            if len(hs) > 1:
                out.append(f"{cid} held by {hs}")
        ntimers = c.cmd("ZCARD", P + ":timers")
    finally:
        c.close()
    return out, ntimers


# 7. (held) Two instances with different rules (d1: Spanish needs es:8, offers; d2: es:1,
#    auto-assigned) whose Redis connections drop together several times: each reconnect pushes
#    its rules (a reload each). Nothing held twice, nobody over capacity, timers bounded.
@time_limit(120)
async def test_two_rules_reconnect_pingpong(env):
    r = env.redis()
    q1 = TWO_Q + "    max_wait_s: 600\n"
    q2 = TWO_Q.replace("min_proficiency: 8", "min_proficiency: 1").replace(
        "auto_accept: false", "auto_accept: true")
    d1 = env.daemon(r, name="d1", config={"routing": {"tick_ms": 50}}, queues=q1)
    d2 = env.daemon(r, name="d2", config={"routing": {"tick_ms": 50}}, queues=q2)
    ags = [await available(d1, "ana", add_agent(d1, "ana", "Ana", "en:10,es:5", 2)),
           await available(d2, "bob", add_agent(d2, "bob", "Bob", "en:10,es:5", 2))]
    chats = await spanish_chats(d1, 6)
    hist = []
    for i in range(6):
        c = r.client()
        try:
            c.cmd("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes")
        finally:
            c.close()
        await asyncio.sleep(1.0)
        probs, nt = floor_problems(r, ["ana", "bob"], 2)
        rules = json.loads(r.client().cmd("GET", P + ":rules"))
        sp = [q for q in rules["queues"] if q["name"] == "spanish"][0]
        states = [(conv(r, x.conversation_id).get("state"), conv(r, x.conversation_id).get("agent"))
                  for x in chats]
        hist.append((sp["min_proficiency"], nt, states))
        log(f"round {i}: minp {sp['min_proficiency']} timers {nt} problems {probs} {states}")
        env.expect(not probs, probs)
    for x in chats + ags:
        await x.close()


if __name__ == "__main__":
    run_tests([v for k, v in list(globals().items()) if k.startswith("test_")])
