"""test_transfers.py - transfers as agents and customers see them, across one to three
omnirouterd on one Redis (PROTOCOL.md `transfer`, ROUTING.md): to a queue and to an agent,
with notes, languages and history; refusals; loops; the target busy, on break, logging out;
the customer leaving; the time with the first agent not counted as waiting.

    OMR_BUILD_DIR=build/asan python3 tests/integration/test_transfers.py [NAME...]
"""
import asyncio
import json
import os
import signal
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from omr_harness import Customer, add_agent, ctl, poll, run_tests, time_limit  # noqa: E402
from test_live_floor import available, cluster, conv, explain, show  # noqa: E402

GENERAL = """
queues:
  - name: general
"""


def assigned_to(cid):
    return lambda f: f.get("type") == "assigned" and f.get("conversation_id") == cid


async def transfer(agent, cid, queue=None, to=None, note=None, language=None):
    msg = {"type": "transfer", "conversation_id": cid, "id": agent.next_id("t")}
    if queue is not None:
        msg["queue"] = queue
    if to is not None:
        msg["agent"] = to
    if note is not None:
        msg["note"] = note
    if language is not None:
        msg["language"] = language
    return await agent.conn.request(msg)


def ev(agent, cid, name):
    return [f for f in agent.order if f.get("type") == "event"
            and f.get("conversation_id") == cid and f.get("event") == name]


async def held_by(ana, d):
    """A customer's chat (its page on instance d) assigned to ana: (customer, its id)."""
    cust = Customer(d.url, "cust")
    await cust.hello(language="en", name="Cus")
    cid = cust.conversation_id
    await ana.wait_item(assigned_to(cid), 10, "assigned")
    return cust, cid


async def busy_bob_and_ana(env, d_bob, d_ana, d_cust, cap=1):
    """bob (capacity cap) busy with another customer's chat, ana holding cust's: returns
    (bob, other, ana, cust)."""
    bob = await available(d_bob, "bob", add_agent(d_bob, "bob", "Bob", "en", cap))
    other = Customer(d_cust.url, "other")
    await other.hello(language="en", name="Oth")
    await bob.wait_item(lambda f: f.get("type") == "assigned", 10, "bob busy")
    ana = await available(d_ana, "ana", add_agent(d_ana, "ana", "Ana", "en", 1))
    cust, _ = await held_by(ana, d_cust)
    return bob, other, ana, cust


# ---------------------------------------------------------------------------
# Found by a review (each failed before its fix)


@time_limit(60)
async def test_agent_transfer_after_customer_left_is_not_handed_to_next_agent(env):
    """ROUTING.md "Customers who leave": a conversation an agent holds is never closed for
    it, but "if it waits again later (transferred to a queue, its agent lost) while the
    customer is still away, the same clock applies, and one routed again after the time is
    closed rather than handed to an agent". A transfer to a queue did that (route() checks
    abandon_due); a transfer to an AGENT handed the next agent a chat whose customer left
    long ago."""
    r = env.redis()
    (d1,) = cluster(env, r, 1, GENERAL, {"chat": {"abandon_after_s": 1}})
    ana = await available(d1, "ana", add_agent(d1, "ana", "Ana", "en", 2))
    cust = Customer(d1.url, "cust")
    await cust.hello(language="en", name="Cus")
    cid = cust.conversation_id
    await ana.wait_item(lambda f: f.get("type") == "assigned" and f.get("conversation_id") == cid,
                        10, "assigned")
    bob = await available(d1, "bob", add_agent(d1, "bob", "Bob", "en", 2))
    await cust.close()  # the customer closes the page
    await ana.wait_item(lambda f: f.get("event") == "customer-left", 10, "customer-left")
    await asyncio.sleep(2.5)  # well past chat.abandon_after_s (1 s)
    r1 = await transfer(ana, cid, to="bob", note="please help")
    assert r1.get("type") == "ack", r1
    await asyncio.sleep(2.0)
    c = conv(r, cid)
    got_bob = [f for f in bob.assigned(cid)]
    env.expect(not got_bob and c.get("state") == "closed"
               and c.get("close_reason") == "abandoned",
               f"customer gone for {2.5}s > abandon_after_s=1, ana transferred to agent bob: "
               f"expected closed/abandoned and nothing handed to bob; got state="
               f"{c.get('state')} close_reason={c.get('close_reason')} agent={c.get('agent')} "
               f"bob assigned={len(got_bob)}")


@time_limit(60)
async def test_control_queue_transfer_after_customer_left_is_abandoned(env):
    """Control for the test above: the same with a transfer to a QUEUE closes it abandoned."""
    r = env.redis()
    (d1,) = cluster(env, r, 1, GENERAL, {"chat": {"abandon_after_s": 1}})
    ana = await available(d1, "ana", add_agent(d1, "ana", "Ana", "en", 2))
    cust = Customer(d1.url, "cust")
    await cust.hello(language="en", name="Cus")
    cid = cust.conversation_id
    await ana.wait_item(lambda f: f.get("type") == "assigned" and f.get("conversation_id") == cid,
                        10, "assigned")
    bob = await available(d1, "bob", add_agent(d1, "bob", "Bob", "en", 2))
    await cust.close()
    await ana.wait_item(lambda f: f.get("event") == "customer-left", 10, "customer-left")
    await asyncio.sleep(2.5)
    r1 = await transfer(ana, cid, queue="general", note="please help")
    assert r1.get("type") == "ack", r1
    await asyncio.sleep(2.0)
    c = conv(r, cid)
    env.expect(not bob.assigned(cid) and c.get("state") == "closed"
               and c.get("close_reason") == "abandoned", f"queue transfer: {c}")


@time_limit(60)
async def test_agent_transfer_busy_target_after_customer_left_waits_past_abandon(env):
    """Same gap, the busy-target variant: the customer left while ana held the chat; ana
    transfers to bob, who is at capacity. The conversation waits (for bob) while its
    customer is away; ROUTING.md says the abandonment clock applies to one that waits again
    ("the same clock applies"), so it is closed as abandoned once abandon_after_s has
    passed (no `gone` timer was armed by an agent transfer, and when bob freed up he was
    handed the dead chat)."""
    r = env.redis()
    (d1,) = cluster(env, r, 1, GENERAL, {"chat": {"abandon_after_s": 1}})
    bob = await available(d1, "bob", add_agent(d1, "bob", "Bob", "en", 1))
    other = Customer(d1.url, "other")
    await other.hello(language="en", name="Oth")
    await bob.wait_item(lambda f: f.get("type") == "assigned", 10, "bob's first chat")
    ana = await available(d1, "ana", add_agent(d1, "ana", "Ana", "en", 1))
    cust = Customer(d1.url, "cust")
    await cust.hello(language="en", name="Cus")
    cid = cust.conversation_id
    await ana.wait_item(lambda f: f.get("type") == "assigned" and f.get("conversation_id") == cid,
                        10, "assigned")
    await cust.close()
    await ana.wait_item(lambda f: f.get("event") == "customer-left", 10, "customer-left")
    await asyncio.sleep(2.5)  # abandon_after_s passes while ana holds it (never closed: right)
    r1 = await transfer(ana, cid, to="bob", note="n")
    assert r1.get("type") == "ack", r1
    # (abandon_after_s long passed: the timer fires at the next tick)
    await poll(lambda: conv(r, cid).get("state") == "closed", 10)
    c = conv(r, cid)
    env.expect(c.get("state") == "closed" and c.get("close_reason") == "abandoned",
               f"waiting (for bob) with its customer gone 3 s > abandon_after_s=1: "
               f"state={c.get('state')} close_reason={c.get('close_reason')} "
               f"pref_agent={c.get('pref_agent')}")
    await bob.close_conv(other.conversation_id)
    await asyncio.sleep(1.5)
    env.expect(not bob.assigned(cid),
               f"bob freed up and was handed a chat whose customer left >4 s ago: "
               f"{bob.assigned(cid)}")


@time_limit(60)
async def test_transfer_to_logged_out_agent_waits_for_nobody(env):
    """ROUTING.md: a conversation waiting for one agent (sticky, a transfer) is not waited for
    when that agent is offline ("An offline agent is not waited for (nor any more once set
    offline), nor one with no desktop logged in"), and end_waits_for ends such a wait the
    moment the agent goes offline. A transfer to an agent who is ALREADY logged out was
    accepted and the customer waited the whole 120 s for nobody, while another agent was
    free (carl). It is refused (bad-request, PROTOCOL.md `transfer`): the agent keeps the
    chat and may transfer it to a queue."""
    r = env.redis()
    (d1,) = cluster(env, r, 1, GENERAL)
    ana = await available(d1, "ana", add_agent(d1, "ana", "Ana", "en", 2))
    tok_bob = add_agent(d1, "bob", "Bob", "en", 2)
    cust = Customer(d1.url, "cust")
    await cust.hello(language="en", name="Cus")
    cid = cust.conversation_id
    await ana.wait_item(lambda f: f.get("type") == "assigned" and f.get("conversation_id") == cid,
                        10, "assigned")
    # bob was at work and logged out (his desktop closed): offline
    bob = await available(d1, "bob", tok_bob)
    await bob.close()
    await poll(lambda: show(d1, "bob").get("presence") == "offline", 5)
    carl = await available(d1, "carl", add_agent(d1, "carl", "Carl", "en", 2))
    await refused_then_to_queue(env, r, ana, carl, cid)


async def refused_then_to_queue(env, r, ana, carl, cid):
    """A transfer to bob, who is not logged in, is refused and ana keeps the chat; her
    transfer to the queue then goes to carl, who is free."""
    r1 = await transfer(ana, cid, to="bob", note="for bob")
    c = conv(r, cid)
    env.expect(r1.get("type") == "error" and r1.get("code") == "bad-request"
               and "not logged in" in r1.get("reason", ""), f"transfer to bob: {r1}")
    env.expect(c.get("state") == "assigned" and c.get("agent") == "ana", f"the chat: {c}")
    r2 = await transfer(ana, cid, queue="general", note="for anyone")
    env.expect(r2.get("type") == "ack", r2)
    await carl.wait_item(assigned_to(cid), 10, "the chat at carl")


@time_limit(60)
async def test_transfer_to_never_logged_in_agent_waits_for_nobody(env):
    """As above with an agent who exists but never logged in (offline)."""
    r = env.redis()
    (d1,) = cluster(env, r, 1, GENERAL)
    ana = await available(d1, "ana", add_agent(d1, "ana", "Ana", "en", 2))
    add_agent(d1, "bob", "Bob", "en", 2)
    cust = Customer(d1.url, "cust")
    await cust.hello(language="en", name="Cus")
    cid = cust.conversation_id
    await ana.wait_item(lambda f: f.get("type") == "assigned" and f.get("conversation_id") == cid,
                        10, "assigned")
    carl = await available(d1, "carl", add_agent(d1, "carl", "Carl", "en", 2))
    await refused_then_to_queue(env, r, ana, carl, cid)


@time_limit(60)
async def test_agent_transfer_time_with_agent_counted_as_waiting(env):
    """PROTOCOL.md `position`: eta is "the queue's recent average wait less what was already
    waited"; the code (assign: "a transferred or re-queued conversation's time with the agent
    before is not waiting") means to keep time with an agent out of the average. A transfer to
    an agent did not reset queued_ms: a chat that was with ana for 6 s and went to bob at
    once counted 6 s of 'waiting' in queue general's average (queue status average_wait_ms),
    and every next customer was told a longer wait. A transfer to a queue resets it."""
    r = env.redis()
    (d1,) = cluster(env, r, 1, GENERAL)
    ana = await available(d1, "ana", add_agent(d1, "ana", "Ana", "en", 2))
    bob = await available(d1, "bob", add_agent(d1, "bob", "Bob", "en", 2))
    cust = Customer(d1.url, "cust")
    await cust.hello(language="en", name="Cus")
    cid = cust.conversation_id
    await poll(lambda: ana.assigned(cid) or bob.assigned(cid), 10)
    holder, other = (ana, "bob") if ana.assigned(cid) else (bob, "ana")
    before = queue_avg(d1)
    await asyncio.sleep(6)
    r1 = await transfer(holder, cid, to=other, note="n")
    assert r1.get("type") == "ack", r1
    tgt = bob if other == "bob" else ana
    await tgt.wait_item(lambda f: f.get("type") == "assigned" and f.get("conversation_id") == cid,
                        10, "assigned to target")
    after = queue_avg(d1)
    env.expect(after is not None and after < 1000,
               f"the chat waited ~0 s both times (assigned at once, then transferred to a free "
               f"agent and taken at once); queue average wait before {before} ms, after "
               f"{after} ms (time with the first agent counted as waiting)")


def queue_avg(d, name="general"):
    out = json.loads(ctl(d, "--json", "queue", "status").stdout)
    qs = out.get("queues", out) if isinstance(out, dict) else out
    for q in qs:
        if q.get("name") == name:
            return q.get("average_wait_ms")
    return None


@time_limit(90)
async def test_transfer_to_queue_across_three_instances(env):
    """Note reaches the next agent, the customer never sees it, the first agent loses
    access at once and its capacity is freed, the next agent sees the whole transcript,
    the customer's transcript after a reload shows everything once and in order."""
    r = env.redis()
    d1, d2, d3 = cluster(env, r, 3, GENERAL)
    ana = await available(d1, "ana", add_agent(d1, "ana", "Ana", "en", 2))
    cust, cid = await held_by(ana, d3)
    bob = await available(d2, "bob", add_agent(d1, "bob", "Bob", "en", 2))
    await cust.send("hi 1")
    await ana.wait_item(lambda f: f.get("type") == "message" and f.get("text") == "hi 1", 10,
                        "hi 1")
    await ana.reply(cid, "r1 from ana")
    await cust.wait_item(lambda f: f.get("text") == "r1 from ana", 10, "r1")
    await cust.send("hi 2")
    await ana.wait_item(lambda f: f.get("type") == "message" and f.get("text") == "hi 2", 10,
                        "hi 2")
    r1 = await transfer(ana, cid, queue="general", note="wants a refund")
    assert r1.get("type") == "ack" and r1.get("conversation_id") == cid, r1
    await ana.wait_item(lambda f: f.get("type") == "closed" and f.get("conversation_id") == cid
                        and f.get("reason") == "transferred", 10, "closed transferred")
    await bob.wait_item(assigned_to(cid), 10, "bob assigned")
    await bob.wait_item(lambda f: f.get("event") == "transferred", 10, "transfer note")
    await cust.wait_item(lambda f: f.get("event") == "assigned" and f.get("name") == "Bob", 10,
                         "assigned Bob")
    # bob's copy of the transcript
    await asyncio.sleep(0.5)
    items = [f for f in bob.order if f.get("conversation_id") == cid]
    texts = [(f.get("type"), f.get("text")) for f in items if f.get("type") in ("message",
                                                                               "event")]
    env.expect(texts == [("message", "hi 1"), ("message", "r1 from ana"), ("message", "hi 2"),
                         ("event", "wants a refund")],
               f"bob's transcript copy: {texts}")
    tr = ev(bob, cid, "transferred")
    env.expect(len(tr) == 1 and tr[0].get("name") == "Ana", f"transferred item: {tr}")
    # customer never sees the note
    for f in cust.order:
        env.expect("wants a refund" not in str(f), f"customer saw the note: {f}")
    # first agent lost access
    e = await ana.conn.request({"type": "message", "conversation_id": cid, "id": "late-1",
                                "text": "still here?"})
    env.expect(e.get("type") == "error" and e.get("code") == "not-assigned", f"ana msg: {e}")
    e = await ana.close_conv(cid, expect_ack=False)
    env.expect(e.get("type") == "error" and e.get("code") == "not-assigned", f"ana close: {e}")
    n = len(ana.conn.frames)
    await ana.conn.send({"type": "typing", "conversation_id": cid})
    e = await ana.conn.wait_for(lambda f: f.get("type") == "error", 5, "typing error", n)
    env.expect(e.get("code") == "not-assigned", f"ana typing: {e}")
    a = show(d3, "ana")
    env.expect(a["load"]["chat"] == 0, f"ana's capacity not freed: {a}")
    why = explain(d2, cid)
    env.expect(why.get("agent") == "bob" and "transferred to queue general by ana"
               in str(why.get("trigger")), f"explain: {why}")
    # the customer keeps talking to bob only
    await cust.send("hi 3")
    await bob.wait_item(lambda f: f.get("type") == "message" and f.get("text") == "hi 3", 10,
                        "hi 3")
    await bob.reply(cid, "r2 from bob")
    await cust.wait_item(lambda f: f.get("text") == "r2 from bob", 10, "r2")
    await asyncio.sleep(0.5)
    env.expect(not [f for f in ana.messages(cid) if f.get("text") == "hi 3"],
               "ana got a message after the transfer")
    # reload: the page resumes from nothing, on another instance
    before = [(f["seq"], f.get("type"), f.get("event"), f.get("text")) for f in cust.order]
    re = Customer(d1.url, "cust-reload")
    re.conversation_id, re.resume_token = cust.conversation_id, cust.resume_token
    await re.resume(after=None)
    await poll(lambda: len(re.order) >= len(before), 10)
    await asyncio.sleep(1.0)
    seen = [(f["seq"], f.get("type"), f.get("event"), f.get("text")) for f in re.order]
    raw = [f for f in re.conn.frames if f.get("seq")]
    env.expect(len(raw) == len({f["seq"] for f in raw}),
               f"resume sent an item twice: {[f.get('seq') for f in raw]}")
    own = [f for f in seen if f[1] == "message"]
    env.expect([x[3] for x in own] == ["hi 1", "r1 from ana", "hi 2", "hi 3", "r2 from bob"],
               f"resumed transcript messages: {own}")
    evs = [x[2] for x in seen if x[1] == "event"]
    env.expect(evs == ["assigned", "transferred", "assigned"], f"resumed events: {evs}")
    env.expect(seen == sorted(seen, key=lambda x: tuple(int(p) for p in x[0].split("-"))),
               "resumed transcript out of seq order")


@time_limit(90)
async def test_transfer_to_busy_agent_waits_then_gets_it(env):
    r = env.redis()
    d1, d2 = cluster(env, r, 2, GENERAL)
    bob, other, ana, cust = await busy_bob_and_ana(env, d2, d1, d2)
    cid = cust.conversation_id
    carl = await available(d1, "carl", add_agent(d1, "carl", "Carl", "en", 1))
    r1 = await transfer(ana, cid, to="bob", note="bob knows this one")
    assert r1.get("type") == "ack", r1
    await asyncio.sleep(2)
    env.expect(not carl.assigned(cid), "carl took a chat transferred to bob")
    why = explain(d1, cid)
    env.expect(why.get("state") == "queued" and why.get("waiting_for") == "bob", f"{why}")
    # ana's capacity free: a new customer goes to ana or carl, not to bob
    await bob.close_conv(other.conversation_id)
    await bob.wait_item(assigned_to(cid), 10, "bob got it")
    await poll(lambda: ev(bob, cid, "transferred"), 10)  # (the transcript comes after)
    tr = ev(bob, cid, "transferred")
    env.expect(tr and tr[-1].get("text") == "bob knows this one", f"note: {tr}")
    why = explain(d2, cid)
    env.expect("transferred to this agent by ana" in str(why.get("trigger")), why)
    b = show(d1, "bob")
    env.expect(b["load"]["chat"] == 1, f"bob load {b}")


@time_limit(90)
async def test_transfer_loop_a_b_a(env):
    """A->B->A: ana passed it on (decline hold 300 s), bob passes it back to ana in
    particular: an explicit transfer is not a decline of ana's; ana gets it with both notes."""
    r = env.redis()
    d1, d2 = cluster(env, r, 2, GENERAL)
    ana = await available(d1, "ana", add_agent(d1, "ana", "Ana", "en", 2))
    cust, cid = await held_by(ana, d2)
    bob = await available(d2, "bob", add_agent(d1, "bob", "Bob", "en", 2))
    await cust.send("hello")
    assert (await transfer(ana, cid, to="bob", note="n1")).get("type") == "ack"
    await bob.wait_item(assigned_to(cid), 10, "bob")
    await bob.reply(cid, "bob here")
    assert (await transfer(bob, cid, to="ana", note="n2")).get("type") == "ack"
    await poll(lambda: len(ana.assigned(cid)) == 2, 10)
    env.expect(len(ana.assigned(cid)) == 2, f"ana did not get it back: {ana.assigned(cid)}")

    def texts():  # (the transcript comes after the assigned item, on its own schedule)
        second = ana.order[ana.order.index(ana.assigned(cid)[-1]):]
        return [f.get("text") for f in second if f.get("conversation_id") == cid
                and f.get("type") in ("message", "event")]
    await poll(lambda: len(texts()) >= 4, 10)
    env.expect(texts() == ["hello", "n1", "bob here", "n2"], f"ana's copy: {texts()}")
    assert (await transfer(ana, cid, to="bob", note="n3")).get("type") == "ack"
    await poll(lambda: len(bob.assigned(cid)) == 2, 10)
    env.expect(len(bob.assigned(cid)) == 2, "third hop")
    env.expect(show(d1, "ana")["load"]["chat"] == 0 and show(d1, "bob")["load"]["chat"] == 1,
               "loads")

    def events():
        return [f.get("event") for f in cust.order if f.get("type") == "event"]
    await poll(lambda: len(events()) >= 7, 10)
    evs = events()
    env.expect(evs == ["assigned", "transferred", "assigned", "transferred", "assigned",
                       "transferred", "assigned"], f"customer events {evs}")


TENANT_Q = """
queues:
  - name: acme-q
    tenants: [acme]
  - name: spanish
    languages: [es]
  - name: general
"""


@time_limit(90)
async def test_transfer_refusals(env):
    r = env.redis()
    (d1,) = cluster(env, r, 1, TENANT_Q, {"chat": {"max_text_bytes": 100}})
    ana = await available(d1, "ana", add_agent(d1, "ana", "Ana", "en", 2))
    add_agent(d1, "zed", "Zed", "en", 2, extra=["--tenants", "acme"])
    es = await available(d1, "esa", add_agent(d1, "esa", "Esa", "es", 2))
    cust, cid = await held_by(ana, d1)
    for kw, what in ((dict(queue="acme-q"), "another tenant's queue"),
                     (dict(queue="spanish"), "queue of another language"),
                     (dict(queue="nope"), "unknown queue"),
                     (dict(to="zed"), "agent of another tenant"),
                     (dict(to="ana"), "oneself"),
                     (dict(to="esa"), "agent without the language"),
                     (dict(to="ghost"), "unknown agent")):
        e = await transfer(ana, cid, **kw)
        env.expect(e.get("type") == "error" and e.get("code") == "bad-request",
                   f"{what}: {e}")
    e = await transfer(ana, cid, queue="general", note="x" * 101)
    env.expect(e.get("type") == "error", f"note over max_text_bytes: {e}")
    e = await ana.reply(cid, "still mine", expect_ack=False)
    env.expect(e.get("type") == "ack", f"after refusals ana still holds it: {e}")
    ok = await transfer(ana, cid, queue="spanish", language="es-MX", note="habla")
    env.expect(ok.get("type") == "ack", f"with language: {ok}")
    await es.wait_item(assigned_to(cid), 10, "esa assigned")
    env.expect(es.assigned(cid)[0].get("language") == "es-MX", es.assigned(cid))
    why = explain(d1, cid)
    env.expect("(language es)" in str(why.get("trigger")), why)


@time_limit(90)
async def test_transfer_racing_customer_messages(env):
    """Customer writes fast while the agent transfers: each message reaches exactly one of
    the agents at the time it holds it, and the next agent has every one once."""
    r = env.redis()
    d1, d2 = cluster(env, r, 2, GENERAL)
    ana = await available(d1, "ana", add_agent(d1, "ana", "Ana", "en", 2))
    cust, cid = await held_by(ana, d2)
    bob = await available(d2, "bob", add_agent(d1, "bob", "Bob", "en", 2))

    async def writer():
        for i in range(40):
            await cust.send(f"m{i}")
            await asyncio.sleep(0.01)
    w = asyncio.ensure_future(writer())
    await asyncio.sleep(0.15)
    assert (await transfer(ana, cid, to="bob", note="race")).get("type") == "ack"
    await w
    await poll(lambda: len([f for f in bob.messages(cid)]) >= 40, 10)
    await asyncio.sleep(1.0)
    ids = [f.get("id") for f in bob.messages(cid)]
    env.expect(sorted(ids, key=lambda x: int(x[2:])) == [f"c-{i + 1}" for i in range(40)]
               and len(ids) == 40, f"bob's messages: {ids}")
    env.expect(ids == [f"c-{i + 1}" for i in range(40)], f"bob's messages out of order: {ids}")


@time_limit(90)
async def test_transfer_target_logs_out_then_normal_route(env):
    r = env.redis()
    d1, d2 = cluster(env, r, 2, GENERAL)
    bob, other, ana, cust = await busy_bob_and_ana(env, d2, d1, d2)
    cid = cust.conversation_id
    carl = await available(d1, "carl", add_agent(d1, "carl", "Carl", "en", 1))
    assert (await transfer(ana, cid, to="bob", note="nb")).get("type") == "ack"
    await asyncio.sleep(1)
    await bob.close()
    got = await poll(lambda: carl.assigned(cid), 5)
    env.expect(bool(got), f"bob logged out: carl should get it: {conv(r, cid)}")
    await poll(lambda: ev(carl, cid, "transferred"), 10)
    tr = ev(carl, cid, "transferred")
    env.expect(tr and tr[-1].get("text") == "nb", f"carl sees note {tr}")


@time_limit(90)
async def test_transfer_target_break_then_back(env):
    """A transfer to an agent on break (desktop open) waits for them; back available, they
    get it (ROUTING: sticky-like; PROTOCOL 120 s)."""
    r = env.redis()
    (d1,) = cluster(env, r, 1, GENERAL)
    ana = await available(d1, "ana", add_agent(d1, "ana", "Ana", "en", 1))
    cust, cid = await held_by(ana, d1)
    bob = await available(d1, "bob", add_agent(d1, "bob", "Bob", "en", 1))
    await bob.presence("break")
    assert (await transfer(ana, cid, to="bob")).get("type") == "ack"
    await asyncio.sleep(1)
    env.expect(not bob.assigned(cid), "given during break")
    await bob.presence("available")
    got = await poll(lambda: bob.assigned(cid), 5)
    env.expect(bool(got), "not given when back")


MAXW = """
queues:
  - name: general
    max_wait_s: 3
"""


@time_limit(90)
async def test_transfer_to_busy_agent_max_wait_counts_from_transfer(env):
    r = env.redis()
    (d1,) = cluster(env, r, 1, MAXW)
    bob, other, ana, cust = await busy_bob_and_ana(env, d1, d1, d1)
    cid = cust.conversation_id
    await asyncio.sleep(4)  # longer than max_wait_s with ana: not waiting
    assert (await transfer(ana, cid, to="bob")).get("type") == "ack"
    await asyncio.sleep(1.5)
    env.expect(conv(r, cid).get("state") == "queued", f"closed too early {conv(r, cid)}")
    got = await cust.wait_item(lambda f: f.get("event") == "closed", 6, "closed")
    env.expect(got.get("reason") == "max-wait", got)


RELOAD_A = """
queues:
  - name: general
"""


@time_limit(90)
async def test_transfer_waiting_for_busy_agent_survives_reload(env):
    r = env.redis()
    (d1,) = cluster(env, r, 1, RELOAD_A)
    bob, other, ana, cust = await busy_bob_and_ana(env, d1, d1, d1)
    cid = cust.conversation_id
    carl = await available(d1, "carl", add_agent(d1, "carl", "Carl", "en", 1))
    assert (await transfer(ana, cid, to="bob", note="nn")).get("type") == "ack"
    with open(d1.cfg_path) as f:
        text = f.read()
    with open(d1.cfg_path, "w") as f:
        f.write(text.replace("  - name: general\n", "  - name: general\n    priority: 2\n"))
    d1.proc.send_signal(signal.SIGHUP)
    await asyncio.sleep(2)
    env.expect(not carl.assigned(cid), "reload gave carl a chat waiting for bob")
    await bob.close_conv(other.conversation_id)
    got = await poll(lambda: bob.assigned(cid), 5)
    env.expect(bool(got), f"bob did not get it after reload: {conv(r, cid)}")


@time_limit(90)
async def test_first_agent_relogin_does_not_get_transferred_chat_back(env):
    r = env.redis()
    d1, d2 = cluster(env, r, 2, GENERAL)
    tok = add_agent(d1, "ana", "Ana", "en", 2)
    ana = await available(d1, "ana", tok)
    cust, cid = await held_by(ana, d2)
    bob = await available(d2, "bob", add_agent(d1, "bob", "Bob", "en", 2))
    assert (await transfer(ana, cid, to="bob", note="x")).get("type") == "ack"
    await ana.close()  # desktop drops right after
    ana2 = await available(d2, "ana", tok)
    await bob.wait_item(assigned_to(cid), 10, "bob")
    await asyncio.sleep(1.5)
    env.expect(not ana2.assigned(cid), f"ana's new desktop got the chat back {ana2.order}")
    e = await ana2.reply(cid, "x", expect_ack=False)
    env.expect(e.get("code") == "not-assigned", e)
    env.expect(show(d1, "ana")["load"]["chat"] == 0, "ana load")


@time_limit(90)
async def test_transfer_keeps_history_for_next_agent(env):
    r = env.redis()
    (d1,) = cluster(env, r, 1, GENERAL)
    ana = await available(d1, "ana", add_agent(d1, "ana", "Ana", "en", 2))
    old = Customer(d1.url, "old")
    await old.hello(language="en", name="Cus", customer_id="cust-9")
    await ana.wait_item(assigned_to(old.conversation_id), 10, "old")
    await old.send("first visit")
    await ana.close_conv(old.conversation_id)
    cust = Customer(d1.url, "cust")
    await cust.hello(language="en", name="Cus", customer_id="cust-9")
    cid = cust.conversation_id
    await ana.wait_item(assigned_to(cid), 10, "assigned")
    bob = await available(d1, "bob", add_agent(d1, "bob", "Bob", "en", 2))
    assert (await transfer(ana, cid, to="bob")).get("type") == "ack"
    a = await bob.wait_item(assigned_to(cid), 10, "bob")
    env.expect(a.get("history") == [old.conversation_id] and a.get("customer_id") == "cust-9",
               a)
    n = len(bob.conn.frames)
    rep = await bob.conn.request({"type": "history", "conversation_id": cid,
                                  "earlier": old.conversation_id, "id": "h1"})
    env.expect(rep.get("type") == "ack", rep)
    hist = [f for f in bob.conn.frames[n:] if f.get("type") == "history"]
    env.expect(any(f.get("text") == "first visit" for f in hist), hist)
    rep = await ana.conn.request({"type": "history", "conversation_id": cid,
                                  "earlier": old.conversation_id, "id": "h2"})
    env.expect(rep.get("code") == "not-assigned", f"ana reads history after transfer: {rep}")


if __name__ == "__main__":
    run_tests([v for k, v in list(globals().items()) if k.startswith("test_")])
