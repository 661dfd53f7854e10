"""test_reload_live.py - a site changes its routing rules live (SIGHUP reload of the queues,
ROUTING.md) with customers waiting, chats assigned and offered, transfers and sticky waits
open: what waits goes where the new rules say (a transfer to a queue and a wait for one agent
stay while their queue takes them), maximum waits and sticky windows at their new values,
wrap-up of a renamed queue, explain and queue status after it, bad files refused.

    OMR_BUILD_DIR=build/asan python3 tests/integration/test_reload_live.py [NAME...]
"""
import asyncio
import json
import os
import signal
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from omr_harness import Customer, add_agent, ctl, log, poll, run_tests, time_limit  # noqa: E402
from test_live_floor import available, conv, explain  # noqa: E402

P = "omr:{default}"
FAST = {"routing": {"tick_ms": 50}}


def rules_text(r):
    c = r.client()
    try:
        return c.cmd("GET", P + ":rules") or ""
    finally:
        c.close()


async def reload_queues(d, r, queues):
    """Rewrites the queues section of d's file, SIGHUPs d and waits until the new
    rules are in Redis."""
    before = rules_text(r)
    with open(d.cfg_path) as f:
        text = f.read()
    head = text.split("\nqueues:\n")[0]
    with open(d.cfg_path, "w") as f:
        f.write(head + "\n" + queues.lstrip("\n"))
    d.proc.send_signal(signal.SIGHUP)
    ok = await poll(lambda: rules_text(r) != before, 10, 0.05)
    assert ok, f"{d.name}: the reload did not change the rules in Redis; log:\n" + \
        d.log_text()[-3000:]
    await asyncio.sleep(0.3)  # (the re-homing ran in the same call; let the items flow)


async def served_then_busy(d, ana, first_lang="en", **busy_hello):
    """Kim's first chat, served and closed by ana (her next one is sticky to ana); then ana
    busy with another chat (capacity 1). Returns both customers."""
    first = Customer(d.url, "kim-first")
    await first.hello(language=first_lang, name="Kim", customer_id="kim")
    await ana.wait_item(lambda f: f.get("type") == "assigned"
                        and f.get("conversation_id") == first.conversation_id, 10, "first")
    await ana.close_conv(first.conversation_id)
    busy = Customer(d.url, "busy")
    await busy.hello(language="en", name="B", **busy_hello)
    await ana.wait_item(lambda f: f.get("type") == "assigned"
                        and f.get("conversation_id") == busy.conversation_id, 10, "busy")
    return first, busy


def assigned_to(agent, cid):
    return [f for f in agent.order if f.get("type") == "assigned"
            and f.get("conversation_id") == cid]


# ---------------------------------------------------------------------------
# 1. A transfer to a queue survives a later reload. It was undone by any: the waiting
#    conversation was matched again from scratch (the queue a NEW conversation would get),
#    so a chat an agent sent to the billing queue landed in general and went to an agent
#    without the skill.

TRANSFER_BEFORE = """
queues:
  - name: billing
    skills: {billing: 5}
  - name: general
"""

# The same two queues, plus a French queue at the end: nothing about billing changed.
TRANSFER_AFTER = """
queues:
  - name: billing
    skills: {billing: 5}
  - name: general
  - name: french
    languages: [fr]
"""


@time_limit(60)
async def test_transfer_to_queue_survives_unrelated_reload(env):
    r = env.redis()
    d = env.daemon(r, config=FAST, queues=TRANSFER_BEFORE)
    ta = add_agent(d, "ana", "Ana", "en", 1)
    tb = add_agent(d, "bob", "Bob", "en", 1)
    ana = await available(d, "ana", ta)
    c = Customer(d.url, "cust")
    await c.hello(language="en", name="C")
    await ana.wait_item(lambda f: f.get("type") == "assigned"
                        and f.get("conversation_id") == c.conversation_id, 10, "assigned")
    # ana hands it to billing (no billing agent on shift: it waits there)
    rep = await ana.conn.request({"type": "transfer", "conversation_id": c.conversation_id,
                                  "queue": "billing", "note": "refund", "id": "t1"})
    assert rep.get("type") == "ack", rep
    bob = await available(d, "bob", tb)  # general agent, no billing skill
    await asyncio.sleep(0.5)
    before = explain(d, c.conversation_id)
    log(f"before reload: {before}")
    assert before.get("queue") == "billing" and before.get("state") == "queued", before
    assert not assigned_to(bob, c.conversation_id), "bob (no billing skill) got it before"
    await reload_queues(d, r, TRANSFER_AFTER)
    await asyncio.sleep(1.0)
    after = explain(d, c.conversation_id)
    h = conv(r, c.conversation_id)
    log(f"after reload: state={h.get('state')} queue={h.get('queue')} agent={h.get('agent')} "
        f"explain={after}")
    env.expect(not assigned_to(bob, c.conversation_id) and h.get("agent") != "bob",
               f"after a reload that did not touch queue billing, the chat ana transferred to "
               f"billing went to bob, who has no billing skill: state {h.get('state')}, queue "
               f"{h.get('queue')}, agent {h.get('agent')}, explain {after}")
    env.expect(h.get("queue") == "billing",
               f"the transferred chat should still wait in billing, is in {h.get('queue')!r}")
    await c.close()
    await ana.close()
    await bob.close()


# ---------------------------------------------------------------------------
# 2. A customer waiting for its sticky agent: a reload that gives the queue a maximum wait
#    (or lowers it) applies to it (it did not until the sticky window ended). ROUTING.md: "the
#    queue's maximum wait runs meanwhile" and "a changed max_wait_s applies to the
#    conversations already waiting (... a conversation that has waited longer than a
#    lowered maximum meets it at once)".

STICKY_BEFORE = """
queues:
  - name: general
    sticky_window_s: 60
{max_before}
"""

STICKY_AFTER = """
queues:
  - name: general
    sticky_window_s: 60
    max_wait_s: 2
"""


async def sticky_wait_then_max_wait(env, max_before):
    r = env.redis()
    d = env.daemon(r, config=FAST, queues=STICKY_BEFORE.format(max_before=max_before))
    ta = add_agent(d, "ana", "Ana", "en", 1)
    ana = await available(d, "ana", ta)
    _, busy = await served_then_busy(d, ana)
    kim = Customer(d.url, "kim-back")
    await kim.hello(language="en", name="Kim", customer_id="kim")
    why = explain(d, kim.conversation_id)
    assert why.get("waiting_for") == "ana", why
    await asyncio.sleep(2.5)  # it has now waited longer than the new maximum
    t0 = time.monotonic()
    await reload_queues(d, r, STICKY_AFTER)
    closed = await poll(lambda: conv(r, kim.conversation_id).get("state") == "closed", 8)
    h = conv(r, kim.conversation_id)
    log(f"{time.monotonic() - t0:.1f}s after the reload: state {h.get('state')} "
        f"close_reason {h.get('close_reason')} explain {explain(d, kim.conversation_id)}")
    env.expect(closed and h.get("close_reason") == "max-wait",
               f"kim's chat waited >2 s for its sticky agent; the reload set max_wait_s 2 "
               f"(before: {max_before.strip() or 'none'}), yet 8 s later it is still "
               f"{h.get('state')!r} (close_reason {h.get('close_reason')!r}); it waits on "
               f"until the 60 s window ends")
    if closed:
        await kim.wait_item(lambda f: f.get("event") == "closed", 5, "closed event")
    await kim.close()
    await busy.close()
    await ana.close()


@time_limit(60)
async def test_sticky_wait_meets_max_wait_added_on_reload(env):
    await sticky_wait_then_max_wait(env, "")


@time_limit(60)
async def test_sticky_wait_meets_max_wait_lowered_on_reload(env):
    await sticky_wait_then_max_wait(env, "    max_wait_s: 600\n")


# ---------------------------------------------------------------------------
# 3. explain after a reload: a waiting conversation's trigger ("new conversation",
#    "transferred to queue Q by A") is kept by a reload that re-homes the queue (was wiped).
#    ROUTING.md Explanations: while a conversation waits the explanation says ... `trigger`:
#    why it waits.

EXPLAIN_BEFORE = """
queues:
  - name: general
    languages: [en]
  - name: other
"""

EXPLAIN_AFTER = """
queues:
  - name: general
    languages: [en]
  - name: other
    priority: 3
"""


@time_limit(60)
async def test_explain_trigger_of_waiting_chat_survives_reload(env):
    r = env.redis()
    d = env.daemon(r, config=FAST, queues=EXPLAIN_BEFORE)
    c = Customer(d.url, "cust")
    await c.hello(language="en", name="C")
    before = explain(d, c.conversation_id)
    assert before.get("trigger") == "new conversation", before
    await reload_queues(d, r, EXPLAIN_AFTER)
    after = explain(d, c.conversation_id)
    log(f"before {before}\nafter {after}")
    env.expect(after.get("queue") == "general" and after.get("waiting_since_ms")
               == before.get("waiting_since_ms"), f"queue/waiting_since changed: {after}")
    env.expect(after.get("trigger"),
               f"after a reload that did not touch queue general, explain no longer says why "
               f"the chat waits: before {before.get('trigger')!r}, after "
               f"{after.get('trigger')!r} ({after})")
    p = ctl(d, "explain", c.conversation_id)
    log(f"explain text after reload:\n{p.stdout}")
    await c.close()


# ---------------------------------------------------------------------------
# 4. Wrap-up of a chat assigned before a reload that renamed its queue (same wrapup_s):
#    the agent gets its wrap-up (got none, and the next chat at once). ROUTING.md Wrap-up.

WRAP_BEFORE = """
queues:
  - name: support
    wrapup_s: 30
"""

WRAP_AFTER = """
queues:
  - name: helpdesk
    wrapup_s: 30
"""


@time_limit(60)
async def test_wrapup_applies_to_chat_of_renamed_queue(env):
    r = env.redis()
    d = env.daemon(r, config=FAST, queues=WRAP_BEFORE)
    ta = add_agent(d, "ana", "Ana", "en", 1)
    ana = await available(d, "ana", ta)
    c1 = Customer(d.url, "c1")
    await c1.hello(language="en", name="C1")
    await ana.wait_item(lambda f: f.get("type") == "assigned"
                        and f.get("conversation_id") == c1.conversation_id, 10, "c1")
    c2 = Customer(d.url, "c2")
    await c2.hello(language="en", name="C2")
    await reload_queues(d, r, WRAP_AFTER)
    assert conv(r, c2.conversation_id).get("queue") == "helpdesk"
    await ana.close_conv(c1.conversation_id)
    closed = await ana.wait_item(lambda f: f.get("type") == "closed"
                                 and f.get("conversation_id") == c1.conversation_id, 10,
                                 "closed item")
    await asyncio.sleep(1.0)
    got_c2 = bool(assigned_to(ana, c2.conversation_id))
    log(f"closed item {closed}; c2 assigned to ana 1 s later: {got_c2}")
    env.expect(int(closed.get("wrapup_until_ms") or 0) > 0 and not got_c2,
               f"the queue is wrapup_s 30 before and after the rename, yet closing the chat "
               f"assigned before the reload gave no wrap-up (closed item {closed}) and ana "
               f"took the next chat at once: {got_c2}")
    for x in (c1, c2, ana):
        await x.close()


# ---------------------------------------------------------------------------
# 5. A shorter sticky window on reload applies to a wait already running (from its start),
#    as a changed maximum wait does (ROUTING.md, Sticky agent).

SW_BEFORE = """
queues:
  - name: general
    sticky_window_s: 300
"""

SW_AFTER = """
queues:
  - name: general
    sticky_window_s: 2
"""


@time_limit(60)
async def test_sticky_window_shortened_on_reload(env):
    r = env.redis()
    d = env.daemon(r, config=FAST, queues=SW_BEFORE)
    ta = add_agent(d, "ana", "Ana", "en", 1)
    tb = add_agent(d, "bob", "Bob", "en", 1)
    ana = await available(d, "ana", ta)
    first, busy = await served_then_busy(d, ana)
    kim = Customer(d.url, "kim-back")
    await kim.hello(language="en", name="Kim", customer_id="kim")
    bob = await available(d, "bob", tb)
    assert explain(d, kim.conversation_id).get("waiting_for") == "ana"
    await asyncio.sleep(2.5)
    await reload_queues(d, r, SW_AFTER)
    got = await poll(lambda: assigned_to(bob, kim.conversation_id), 6)
    env.expect(got, f"window cut to 2 s (waited 3 s), yet 6 s later kim still waits for ana: "
               f"{explain(d, kim.conversation_id)}")
    for x in (kim, busy, first, ana, bob):
        await x.close()


# ---------------------------------------------------------------------------
# What held before too (kept as checks).

PRIO_BEFORE = """
queues:
  - name: low
    languages: [en]
  - name: high
    languages: [es]
    priority: 5
"""

PRIO_AFTER = """
queues:
  - name: low
    languages: [en]
    priority: 7
  - name: high
    languages: [es]
    priority: 5
"""


@time_limit(60)
async def test_priority_raised_on_reload_orders_waiting_work(env):
    r = env.redis()
    d = env.daemon(r, config=FAST, queues=PRIO_BEFORE)
    ta = add_agent(d, "ana", "Ana", "en,es", 1)
    es1 = Customer(d.url, "es1")
    await es1.hello(language="es", name="E1")
    en1 = Customer(d.url, "en1")
    await en1.hello(language="en", name="N1")
    en2 = Customer(d.url, "en2")
    await en2.hello(language="en", name="N2")
    await reload_queues(d, r, PRIO_AFTER)
    ana = await available(d, "ana", ta)
    order = []
    for _ in range(3):
        f = await ana.wait_item(lambda f: f.get("type") == "assigned"
                                and f.get("conversation_id") not in order, 10, "next")
        order.append(f["conversation_id"])
        await ana.close_conv(f["conversation_id"])
    want = [en1.conversation_id, en2.conversation_id, es1.conversation_id]
    env.expect(order == want, f"order {order}, want {want} (en now priority 7, oldest first)")
    for x in (es1, en1, en2, ana):
        await x.close()


NOQ_BEFORE = """
queues:
  - name: spanish
    languages: [es]
  - name: english
    languages: [en]
"""

NOQ_AFTER = """
queues:
  - name: english
    languages: [en]
"""


@time_limit(60)
async def test_waiting_work_no_queue_takes_is_closed_no_queue(env):
    r = env.redis()
    d = env.daemon(r, config=FAST, queues=NOQ_BEFORE)
    c = Customer(d.url, "es")
    await c.hello(language="es", name="E")
    await reload_queues(d, r, NOQ_AFTER)
    f = await c.wait_item(lambda f: f.get("event") == "closed", 10, "closed")
    h = conv(r, c.conversation_id)
    env.expect(h.get("close_reason") == "no-queue", f"{f} {h}")
    why = explain(d, c.conversation_id)
    env.expect(why.get("close_reason") == "no-queue", why)
    qs = ctl(d, "queue", "status").stdout
    log(f"queue status:\n{qs}")
    env.expect("spanish" not in qs, f"queue status still lists the removed queue:\n{qs}")
    await c.close()


# ---------------------------------------------------------------------------
# 6. A customer waiting for its sticky agent in a queue that, after a reload, no longer
#    takes its tenant (and no queue does): closed no-queue at once like a plain waiting chat
#    of that tenant (it was later handed to its agent in a queue that does not take its
#    tenant). ROUTING.md Sticky: "If no queue takes it any more, it is closed (`no-queue`)
#    like any waiting conversation."

LANG_BEFORE = """
queues:
  - name: general
    tenants: [default, acme]
    sticky_window_s: 60
"""

LANG_AFTER = """
queues:
  - name: general
    tenants: [acme]
    sticky_window_s: 60
"""


@time_limit(60)
async def test_sticky_wait_in_queue_that_dropped_its_tenant(env):
    r = env.redis()
    d = env.daemon(r, config=FAST, queues=LANG_BEFORE)
    ta = add_agent(d, "ana", "Ana", "en", 1, extra=["--tenants", "default,acme"])
    ana = await available(d, "ana", ta)
    first, busy = await served_then_busy(d, ana, tenant="acme")
    plain = Customer(d.url, "plain")
    await plain.hello(language="en", name="P")
    kim = Customer(d.url, "kim-back")
    await kim.hello(language="en", name="Kim", customer_id="kim")
    assert explain(d, kim.conversation_id).get("waiting_for") == "ana"
    await reload_queues(d, r, LANG_AFTER)
    await plain.wait_item(lambda f: f.get("event") == "closed", 10, "plain closed no-queue")
    env.expect(conv(r, plain.conversation_id).get("close_reason") == "no-queue",
               conv(r, plain.conversation_id))
    await ana.close_conv(busy.conversation_id)
    await asyncio.sleep(1.5)
    h = conv(r, kim.conversation_id)
    log(f"kim after ana freed up: {h.get('state')} queue {h.get('queue')} agent "
        f"{h.get('agent')} close_reason {h.get('close_reason')}")
    env.expect(h.get("state") == "closed" and h.get("close_reason") == "no-queue",
               f"no queue takes tenant default any more (the plain chat of it was closed "
               f"no-queue), yet kim's chat of tenant default went {h.get('state')!r} to "
               f"{h.get('agent')!r} in queue {h.get('queue')!r} (tenants [acme]) when ana "
               f"freed up; explain {explain(d, kim.conversation_id)}")
    for x in (kim, plain, busy, first, ana):
        await x.close()


# ---------------------------------------------------------------------------
# 7. An offer open during a reload that moves its language to another queue: rejected,
#    the chat is routed in the queue the new rules give it, as a chat that was waiting
#    (it was routed again in its old queue, which no longer takes its language).

OFFER_BEFORE = """
queues:
  - name: general
    languages: [en, fr]
    auto_accept: false
  - name: english
    languages: [en]
    auto_accept: false
"""

OFFER_AFTER = """
queues:
  - name: general
    languages: [fr]
    auto_accept: false
  - name: english
    languages: [en]
    auto_accept: false
"""


@time_limit(60)
async def test_offer_open_during_reload_rejected_goes_to_new_rules_queue(env):
    r = env.redis()
    d = env.daemon(r, config=FAST, queues=OFFER_BEFORE)
    ta = add_agent(d, "ana", "Ana", "en", 1)
    ana = await available(d, "ana", ta)
    c = Customer(d.url, "cust")
    await c.hello(language="en", name="C")
    await ana.wait_item(lambda f: f.get("type") == "offer", 10, "offer")
    waiting = Customer(d.url, "waiting")
    await waiting.hello(language="en", name="W")
    await reload_queues(d, r, OFFER_AFTER)
    env.expect(conv(r, waiting.conversation_id).get("queue") == "english",
               conv(r, waiting.conversation_id))
    rep = await ana.reject(c.conversation_id, reason="busy")
    assert rep.get("type") == "ack", rep
    await asyncio.sleep(0.5)
    h = conv(r, c.conversation_id)
    log(f"after reject: {h.get('state')} queue {h.get('queue')}")
    env.expect(h.get("queue") == "english",
               f"rejected after the reload, the English chat is routed in queue "
               f"{h.get('queue')!r} (now French only), not in 'english' as the new rules "
               f"give it (the chat that was waiting moved there): "
               f"{explain(d, c.conversation_id)}")
    for x in (c, waiting, ana):
        await x.close()


# ---------------------------------------------------------------------------
# 8. Two instances, different configurations, one Redis: the later push wins and a
#    warning is logged (README "Run several instances"), whatever the start order (with
#    one, nobody warned: the second push of the same rules was not recorded).

Q_A = """
queues:
  - name: general
"""

Q_B = """
queues:
  - name: general
  - name: spare
"""


def rules_names(r):
    t = rules_text(r)
    return [q["name"] for q in json.loads(t)["queues"]] if t else None


@time_limit(60)
async def test_two_instances_different_queues_warn(env):
    r = env.redis()
    d1 = env.daemon(r, name="d1", config=FAST, queues=Q_A)
    await poll(lambda: rules_names(r) == ["general"], 5)
    d2 = env.daemon(r, name="d2", config=FAST, queues=Q_B)
    ok = await poll(lambda: rules_names(r) == ["general", "spare"], 5)
    env.expect(ok, f"the later push should win: {rules_names(r)}")

    def warnings():
        return [ln for ln in (d1.log_text() + d2.log_text()).splitlines()
                if ln.startswith("warn") and "rules" in ln]
    await poll(warnings, 5)
    warned = warnings()
    log(f"warnings: {warned}")
    env.expect(warned, "no warning about the differing queues")


@time_limit(60)
async def test_rolling_reload_warning_does_not_depend_on_start_order(env):
    """d1 then d2 start with the same queues; d1 is reloaded with new ones and d2 is
    forgotten. Same with d2 started first. Either way the instances now differ."""
    results = {}
    for first in ("d1", "d2"):
        r = env.redis(name=f"redis-{first}")
        names = ["d1", "d2"] if first == "d1" else ["d2", "d1"]
        ds = {}
        for n in names:
            ds[n] = env.daemon(r, name=f"{n}-{first}first", config=FAST, queues=Q_A)
            await poll(lambda: rules_names(r) == ["general"], 5)
            await asyncio.sleep(0.3)
        d1 = ds["d1"]
        await reload_queues(d1, r, Q_B)

        def warned(d1=d1, d2=ds["d2"]):
            return [ln for ln in (d1.log_text() + d2.log_text()).splitlines()
                    if ln.startswith("warn") and "rules loaded over different ones" in ln]
        await poll(warned, 5)
        results[first] = warned()
        log(f"{first} started first: warnings {results[first]}")
    env.expect(results["d1"] and results["d2"],
               f"d1 reloaded with queues d2 does not have: a warning whichever started first "
               f"(d2 first: {len(results['d2'])} lines, d1 first: {len(results['d1'])}): "
               f"{results}")


# ---------------------------------------------------------------------------
# 10. Bad files on reload keep the running rules, with file:line.

GOOD = """
queues:
  - name: a
    max_wait_s: 60
    max_wait_action: overflow:b
  - name: b
"""

BAD_CIRCLE = """
queues:
  - name: a
    max_wait_s: 60
    max_wait_action: overflow:b
  - name: b
    max_wait_s: 60
    max_wait_action: overflow:a
"""

BAD_DUP = """
queues:
  - name: a
  - name: a
"""


@time_limit(60)
async def test_bad_reload_keeps_rules_and_waiting_work(env):
    r = env.redis()
    d = env.daemon(r, config=FAST, queues=GOOD)
    c = Customer(d.url, "c")
    await c.hello(language="en", name="C")
    before = rules_text(r)
    for i, bad in enumerate((BAD_CIRCLE, BAD_DUP, "\nqueues:\n  - name: [oops\n")):
        with open(d.cfg_path) as f:
            text = f.read()
        head = text.split("\nqueues:\n")[0]
        with open(d.cfg_path, "w") as f:
            f.write(head + "\n" + bad.lstrip("\n"))
        n = d.log_text().count("reload failed")
        d.proc.send_signal(signal.SIGHUP)
        ok = await poll(lambda: d.log_text().count("reload failed") > n, 5)
        line = [ln for ln in d.log_text().splitlines() if "reload failed" in ln][-1:] 
        log(f"bad file {i}: {line}")
        env.expect(ok and line and ".yaml:" in line[0], f"bad file {i}: {line}")
        env.expect(rules_text(r) == before, f"bad file {i} changed the rules")
        env.expect(d.running(), "daemon died")
    h = conv(r, c.conversation_id)
    env.expect(h.get("state") == "queued" and h.get("queue") == "a", h)
    await c.close()


# ---------------------------------------------------------------------------
# 11. Reload that makes a backlog servable: nobody over capacity, oldest first, an agent
#     in wrap-up gets nothing.

BACKLOG_BEFORE = """
queues:
  - name: spanish
    languages: [es]
    min_proficiency: 8
    wrapup_s: 30
  - name: general
    wrapup_s: 30
"""

BACKLOG_AFTER = """
queues:
  - name: spanish
    languages: [es]
    min_proficiency: 1
    wrapup_s: 30
  - name: general
    wrapup_s: 30
"""


@time_limit(90)
async def test_reload_backlog_capacity_order_and_wrapup(env):
    r = env.redis()
    d = env.daemon(r, config=FAST, queues=BACKLOG_BEFORE)
    agents = {}
    for aid in ("a1", "a2", "a3"):
        agents[aid] = await available(d, aid, add_agent(d, aid, aid, "en:10,es:5", 2))
    # a3 closes an English chat: in wrap-up (30 s) at the reload
    en = Customer(d.url, "en")
    await en.hello(language="en", name="E")
    f = await poll(lambda: conv(r, en.conversation_id).get("agent"), 5)
    holder = agents[f]
    await holder.close_conv(en.conversation_id)
    await holder.wait_item(lambda x: x.get("type") == "closed", 5, "closed")
    backlog = []
    for i in range(8):
        c = Customer(d.url, f"es{i}")
        await c.hello(language="es", name=f"S{i}")
        backlog.append(c)
        await asyncio.sleep(0.02)
    await reload_queues(d, r, BACKLOG_AFTER)
    await asyncio.sleep(1.0)
    rc = r.client()
    loads = {aid: int(rc.cmd("HGET", f"{P}:agent:{aid}", "load") or 0)
             for aid in agents}
    convs = {aid: rc.cmd("SCARD", f"{P}:agent:{aid}:convs") for aid in agents}
    rc.close()
    states = [conv(r, c.conversation_id).get("state") for c in backlog]
    log(f"loads {loads} convs {convs} states {states} wrap-up agent {f}")
    env.expect(all(v <= 2 for v in loads.values()) and all(v <= 2 for v in convs.values()),
               f"over capacity: {loads} {convs}")
    env.expect(loads[f] == 0, f"{f} was in wrap-up and got work: {loads}")
    want = ["assigned"] * 4 + ["queued"] * 4
    env.expect(states == want, f"oldest first: {states}")
    for x in backlog + [en] + list(agents.values()):
        await x.close()


# ---------------------------------------------------------------------------
# 12. queue status after a reload that renames and reorders queues, with a sticky wait.

QS_BEFORE = """
queues:
  - name: spanish
    languages: [es]
    sticky_window_s: 60
  - name: general
    sticky_window_s: 60
"""

QS_AFTER = """
queues:
  - name: general
    languages: [en]
    sticky_window_s: 60
  - name: es
    languages: [es]
    sticky_window_s: 60
    priority: 2
"""


@time_limit(60)
async def test_queue_status_after_rename_and_reorder(env):
    r = env.redis()
    d = env.daemon(r, config=FAST, queues=QS_BEFORE)
    ta = add_agent(d, "ana", "Ana", "es,en", 1)
    ana = await available(d, "ana", ta)
    first, busy = await served_then_busy(d, ana, first_lang="es")
    es1 = Customer(d.url, "es1")
    await es1.hello(language="es", name="S1")
    en1 = Customer(d.url, "en1")
    await en1.hello(language="en", name="N1")
    kim = Customer(d.url, "kim")
    await kim.hello(language="es", name="Kim", customer_id="kim")
    await reload_queues(d, r, QS_AFTER)
    st = json.loads(ctl(d, "--json", "queue", "status").stdout)
    log(f"queue status: {json.dumps(st)[:1500]}")
    txt = ctl(d, "queue", "status").stdout
    log(f"\n{txt}")
    env.expect("spanish" not in txt, f"the renamed queue is still listed:\n{txt}")
    es_txt = ctl(d, "queue", "status", "es").stdout
    log(f"\n{es_txt}")
    env.expect(es1.conversation_id in es_txt and kim.conversation_id in es_txt,
               f"queue es should list es1 and kim:\n{es_txt}")
    # ana frees up: kim first (sticky), then es1 (priority 2), then en1
    order = []
    await ana.close_conv(busy.conversation_id)
    for _ in range(3):
        f = await ana.wait_item(lambda f: f.get("type") == "assigned"
                                and f.get("conversation_id") not in order
                                and f.get("conversation_id") not in
                                (first.conversation_id, busy.conversation_id), 10, "next")
        order.append(f["conversation_id"])
        await ana.close_conv(f["conversation_id"])
    want = [kim.conversation_id, es1.conversation_id, en1.conversation_id]
    env.expect(order == want, f"order {order} want {want}")
    for x in (first, busy, es1, en1, kim, ana):
        await x.close()


if __name__ == "__main__":
    run_tests([v for k, v in list(globals().items()) if k.startswith("test_")])
