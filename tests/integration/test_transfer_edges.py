"""test_transfer_edges.py - transfers at the edges (PROTOCOL.md `transfer`, ROUTING.md):
the place in line kept, offer queues, the decline hold, resends and notes, the customer's
position while it waits; the target's instance frozen, an admin close or a reload while it
waits for its target, the customer leaving meanwhile, a replaced desktop, an open offer.

    OMR_BUILD_DIR=build/asan python3 tests/integration/test_transfer_edges.py [NAME...]
"""
import asyncio
import os
import signal
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from omr_harness import Customer, add_agent, ctl, poll, run_tests, time_limit  # noqa: E402
from test_live_floor import available, cluster, conv, show  # noqa: E402
from test_transfers import (GENERAL, assigned_to, busy_bob_and_ana, ev,  # noqa: E402
                            held_by, queue_avg, transfer)


@time_limit(90)
async def test_transfer_to_queue_keeps_place_before_newer(env):
    """ROUTING "Waiting and ordering": re-queued work keeps its original enqueue time; a
    transferred chat (older) goes before a newer one waiting in the same queue."""
    r = env.redis()
    d1, d2 = cluster(env, r, 2, GENERAL)
    ana = await available(d1, "ana", add_agent(d1, "ana", "Ana", "en", 1))
    x = Customer(d1.url, "x")
    await x.hello(language="en", name="X")
    await ana.wait_item(assigned_to(x.conversation_id), 10, "x")
    bob = await available(d2, "bob", add_agent(d1, "bob", "Bob", "en", 1))
    z = Customer(d2.url, "z")
    await z.hello(language="en", name="Z")
    await bob.wait_item(assigned_to(z.conversation_id), 10, "z")
    await asyncio.sleep(0.3)
    y = Customer(d2.url, "y")
    await y.hello(language="en", name="Y")  # newer, waits
    await ana.presence("break")
    assert (await transfer(ana, x.conversation_id, queue="general")).get("type") == "ack"
    await asyncio.sleep(0.5)
    await bob.close_conv(z.conversation_id)
    await poll(lambda: len(bob.assigned()) >= 2, 5)
    got = bob.assigned()[-1]["conversation_id"] if len(bob.assigned()) >= 2 else None
    env.expect(got == x.conversation_id,
               f"bob freed: expected the older transferred chat x, got "
               f"{'y' if got == y.conversation_id else got}")


OFFERS = """
queues:
  - name: general
    auto_accept: false
    offer_timeout_s: 2
"""


@time_limit(90)
async def test_transfer_to_agent_in_offer_queue_rejected_goes_on(env):
    r = env.redis()
    (d1,) = cluster(env, r, 1, OFFERS)
    ana = await available(d1, "ana", add_agent(d1, "ana", "Ana", "en", 1))
    cust = Customer(d1.url, "cust")
    await cust.hello(language="en", name="Cus")
    cid = cust.conversation_id
    await ana.wait_item(lambda f: f.get("type") == "offer", 10, "offer")
    await ana.accept(cid)
    await ana.wait_item(assigned_to(cid), 10, "assigned")
    bob = await available(d1, "bob", add_agent(d1, "bob", "Bob", "en", 1))
    carl = await available(d1, "carl", add_agent(d1, "carl", "Carl", "en", 1))
    assert (await transfer(ana, cid, to="bob", note="for bob")).get("type") == "ack"
    await bob.wait_item(lambda f: f.get("type") == "offer" and f.get("conversation_id") == cid,
                        5, "bob offered")
    env.expect(not carl.offers(cid), "carl offered a chat transferred to bob")
    rj = await bob.reject(cid)
    env.expect(rj.get("type") == "ack", rj)
    await carl.wait_item(lambda f: f.get("type") == "offer" and f.get("conversation_id") == cid,
                         5, "carl offered")
    env.expect(not ana.offers(cid)[1:], "ana offered it back")
    await carl.accept(cid)
    await carl.wait_item(assigned_to(cid), 5, "carl assigned")
    await poll(lambda: ev(carl, cid, "transferred"), 10)  # (the transcript comes after)
    tr = ev(carl, cid, "transferred")
    env.expect(tr and tr[-1].get("text") == "for bob", f"carl sees the note: {tr}")
    for a in ("ana", "bob", "carl"):
        env.expect(show(d1, a)["load"]["chat"] == (1 if a == "carl" else 0), f"{a} load")


@time_limit(90)
async def test_decline_hold_then_back_to_transferring_agent(env):
    r = env.redis()
    (d1,) = cluster(env, r, 1, GENERAL, {"routing": {"decline_hold_s": 10}})
    ana = await available(d1, "ana", add_agent(d1, "ana", "Ana", "en", 1))
    cust, cid = await held_by(ana, d1)
    assert (await transfer(ana, cid, queue="general", note="n")).get("type") == "ack"
    await asyncio.sleep(7)
    env.expect(len(ana.assigned(cid)) == 1, "back to ana within the decline hold")
    got = await poll(lambda: len(ana.assigned(cid)) == 2, 8)
    env.expect(bool(got), f"after the hold it may come back to ana: {conv(r, cid)}")


@time_limit(90)
async def test_transfer_resend_and_notes(env):
    r = env.redis()
    d1, d2 = cluster(env, r, 2, GENERAL, {"chat": {"max_text_bytes": 64}})
    ana = await available(d1, "ana", add_agent(d1, "ana", "Ana", "en", 1))
    cust, cid = await held_by(ana, d1)
    bob = await available(d2, "bob", add_agent(d1, "bob", "Bob", "en", 1))
    note = "é" * 32  # 64 bytes exactly
    msg = {"type": "transfer", "conversation_id": cid, "agent": "bob", "note": note,
           "id": "tx-1", "language": "und"}
    a1 = await ana.conn.request(msg)
    a2 = await ana.conn.request(msg)
    env.expect(a1.get("type") == "ack" and a2.get("type") == "ack"
               and a2.get("conversation_id") == cid, f"{a1} {a2}")
    await bob.wait_item(assigned_to(cid), 10, "bob")
    await poll(lambda: ev(bob, cid, "transferred"), 10)  # (the transcript comes after)
    await ana.wait_item(lambda f: f.get("type") == "closed"
                        and f.get("conversation_id") == cid, 10, "ana's closed item")
    tr = ev(bob, cid, "transferred")
    env.expect(len(tr) == 1 and tr[0].get("text") == note, f"note {tr}")
    env.expect(bob.assigned(cid)[0].get("language") == "en", bob.assigned(cid))
    closed = [f for f in ana.order if f.get("type") == "closed" and f.get("conversation_id") == cid]
    env.expect(len(closed) == 1, f"ana closed items {closed}")
    evs = [f.get("event") for f in cust.order if f.get("type") == "event"]
    await cust.wait_item(lambda f: f.get("event") == "assigned" and f.get("name") == "Bob", 5, "b")
    evs = [f.get("event") for f in cust.order if f.get("type") == "event"]
    env.expect(evs == ["assigned", "transferred", "assigned"], evs)


@time_limit(90)
async def test_transfer_queued_customer_position_eta(env):
    """PROTOCOL `position`: eta_ms = the queue's recent average wait less what was already
    waited. A chat transferred to a busy agent: what it already waited must be counted from
    the transfer (time with the agent is not waiting)."""
    r = env.redis()
    (d1,) = cluster(env, r, 1, GENERAL, {"chat": {"position_interval_s": 1}})
    bob = await available(d1, "bob", add_agent(d1, "bob", "Bob", "en", 1))
    other = Customer(d1.url, "other")
    await other.hello(language="en", name="Oth")
    await bob.wait_item(lambda f: f.get("type") == "assigned", 10, "bob busy")
    ana = await available(d1, "ana", add_agent(d1, "ana", "Ana", "en", 1))
    # make the queue's average wait ~ 8 s: a customer who waits 8 s for ana
    await ana.presence("break")
    w = Customer(d1.url, "w")
    await w.hello(language="en", name="W")
    await asyncio.sleep(8)
    await ana.presence("available")
    await ana.wait_item(assigned_to(w.conversation_id), 10, "w")
    await ana.close_conv(w.conversation_id)
    cust, cid = await held_by(ana, d1)
    await asyncio.sleep(8)  # with ana, not waiting
    avg = queue_avg(d1)
    assert (await transfer(ana, cid, to="bob")).get("type") == "ack"
    n = len(cust.conn.frames)
    p = await cust.conn.wait_for(lambda f: f.get("type") == "position", 5, "position", n)
    env.expect(avg and p.get("eta_ms", 0) > avg - 1100,
               f"just transferred to busy bob, queue average_wait_ms {avg}: eta {p} (time with "
               f"ana counted as already waited)")


@time_limit(90)
async def test_transfer_target_instance_frozen(env):
    """bob's instance freezes while a chat waits for him: his desktop is taken for lost
    (offline) after heartbeat_timeout_s and the chat stops waiting for him (end_waits_for):
    carl gets it; bob's desktop back later does not get it too."""
    r = env.redis()
    d1, d2 = cluster(env, r, 2, GENERAL)
    bob, other, ana, cust = await busy_bob_and_ana(env, d2, d1, d1)
    cid = cust.conversation_id
    carl = await available(d1, "carl", add_agent(d1, "carl", "Carl", "en", 1))
    assert (await transfer(ana, cid, to="bob", note="nb")).get("type") == "ack"
    os.kill(d2.proc.pid, signal.SIGSTOP)
    try:
        got = await poll(lambda: carl.assigned(cid), 12)
        env.expect(bool(got), f"bob lost: carl should get it: {conv(r, cid)}")
    finally:
        os.kill(d2.proc.pid, signal.SIGCONT)
    await asyncio.sleep(3)
    env.expect(not bob.assigned(cid), "bob got it too")
    c = conv(r, cid)
    env.expect(c.get("agent") == "carl" and c.get("state") == "assigned", c)


@time_limit(90)
async def test_admin_close_while_waiting_for_transfer_target(env):
    r = env.redis()
    d1, d2 = cluster(env, r, 2, GENERAL)
    bob, other, ana, cust = await busy_bob_and_ana(env, d2, d1, d2)
    cid = cust.conversation_id
    assert (await transfer(ana, cid, to="bob", note="nb")).get("type") == "ack"
    ctl(d1, "conversation", "close", cid, "--reason", "spam")
    got = await cust.wait_item(lambda f: f.get("event") == "closed", 5, "closed")
    env.expect(got.get("reason") == "admin", got)
    await bob.close_conv(other.conversation_id)
    await asyncio.sleep(1.5)
    env.expect(not bob.assigned(cid), "bob got an admin-closed chat")


TWO_Q = """
queues:
  - name: general
  - name: other
"""

ONE_Q = """
queues:
  - name: other
"""


@time_limit(90)
async def test_reload_removes_queue_while_waiting_for_transfer_target(env):
    """ROUTING sticky: a reload that removes its queue does not end the wait; it waits on
    in the queue the new rules give it; bob freed gets it, with the note."""
    r = env.redis()
    d1, d2 = cluster(env, r, 2, TWO_Q)
    bob, other, ana, cust = await busy_bob_and_ana(env, d2, d1, d2)
    cid = cust.conversation_id
    carl = await available(d1, "carl", add_agent(d1, "carl", "Carl", "en", 1))
    assert (await transfer(ana, cid, to="bob", note="nb")).get("type") == "ack"
    for d in (d1, d2):
        with open(d.cfg_path) as f:
            text = f.read()
        with open(d.cfg_path, "w") as f:
            f.write(text.replace("  - name: general\n", ""))
        d.proc.send_signal(signal.SIGHUP)
    await asyncio.sleep(2)
    env.expect(not carl.assigned(cid), f"reload gave carl a chat waiting for bob {conv(r, cid)}")
    await bob.close_conv(other.conversation_id)
    got = await poll(lambda: bob.assigned(cid), 5)
    env.expect(bool(got), f"bob freed: {conv(r, cid)}")
    if got:
        env.expect(got[0].get("queue") == "other", got)


@time_limit(90)
async def test_transfer_without_note_has_no_text(env):
    """PROTOCOL: `transferred` event `text` is the note left (absent when none)."""
    r = env.redis()
    (d1,) = cluster(env, r, 1, GENERAL)
    ana = await available(d1, "ana", add_agent(d1, "ana", "Ana", "en", 1))
    cust, cid = await held_by(ana, d1)
    bob = await available(d1, "bob", add_agent(d1, "bob", "Bob", "en", 1))
    assert (await transfer(ana, cid, to="bob")).get("type") == "ack"
    t = await bob.wait_item(lambda f: f.get("event") == "transferred", 10, "transferred")
    env.expect("text" not in t and t.get("name") == "Ana", t)


@time_limit(90)
async def test_transfer_racing_customer_leaving(env):
    """The customer closes the page as the agent transfers to a queue nobody can take: it is
    closed as abandoned after abandon_after_s, never handed to an agent."""
    r = env.redis()
    (d1,) = cluster(env, r, 1, GENERAL, {"chat": {"abandon_after_s": 1}})
    ana = await available(d1, "ana", add_agent(d1, "ana", "Ana", "en", 1))
    cust, cid = await held_by(ana, d1)
    bob = await available(d1, "bob", add_agent(d1, "bob", "Bob", "en", 1))
    await bob.presence("break")
    await asyncio.gather(cust.close(), transfer(ana, cid, queue="general"))
    await asyncio.sleep(2.5)
    await bob.presence("available")
    await poll(lambda: conv(r, cid).get("state") == "closed", 10)
    c = conv(r, cid)
    env.expect(c.get("state") == "closed" and c.get("close_reason") == "abandoned"
               and not bob.assigned(cid), c)


@time_limit(90)
async def test_transfer_sent_from_replaced_desktop_refused(env):
    r = env.redis()
    d1, d2 = cluster(env, r, 2, GENERAL)
    tok = add_agent(d1, "ana", "Ana", "en", 1)
    ana = await available(d1, "ana", tok)
    cust, cid = await held_by(ana, d1)
    bob = await available(d2, "bob", add_agent(d1, "bob", "Bob", "en", 1))
    ana2 = await available(d2, "ana", tok)
    await asyncio.sleep(0.5)
    if not ana.conn.closed:
        e = await transfer(ana, cid, to="bob")
        env.expect(e.get("type") == "error", f"old desktop transferred: {e}")
    e = await transfer(ana2, cid, to="bob", note="from new")
    env.expect(e.get("type") == "ack", e)
    await bob.wait_item(assigned_to(cid), 10, "bob")


@time_limit(90)
async def test_reply_ids_of_two_agents_do_not_collide(env):
    """store_message: an agent's ids are its own; bob's reply with the id ana used is a new
    message that reaches the customer."""
    r = env.redis()
    (d1,) = cluster(env, r, 1, GENERAL)
    ana = await available(d1, "ana", add_agent(d1, "ana", "Ana", "en", 1))
    cust, cid = await held_by(ana, d1)
    bob = await available(d1, "bob", add_agent(d1, "bob", "Bob", "en", 1))
    await ana.reply(cid, "from ana", id="r-1")
    assert (await transfer(ana, cid, to="bob")).get("type") == "ack"
    await bob.wait_item(assigned_to(cid), 10, "bob")
    await bob.reply(cid, "from bob", id="r-1")
    await cust.wait_item(lambda f: f.get("text") == "from bob", 5, "bob's reply")
    env.expect(len([f for f in cust.order if f.get("type") == "message"]) == 2, cust.order)


OFFERS_5S = """
queues:
  - name: general
    auto_accept: false
    offer_timeout_s: 5
"""


@time_limit(90)
async def test_transfer_of_open_offer_refused(env):
    r = env.redis()
    (d1,) = cluster(env, r, 1, OFFERS_5S)
    ana = await available(d1, "ana", add_agent(d1, "ana", "Ana", "en", 1))
    cust = Customer(d1.url, "cust")
    await cust.hello(language="en", name="Cus")
    cid = cust.conversation_id
    await ana.wait_item(lambda f: f.get("type") == "offer", 10, "offer")
    add_agent(d1, "bob", "Bob", "en", 1)
    e = await transfer(ana, cid, to="bob")
    env.expect(e.get("code") == "not-assigned", e)



async def thawed(env, kind):
    """ROUTING.md "Customers who leave": a customer whose page is on an instance that was
    frozen long enough to be reaped is taken for gone; when the instance ticks again its
    connections count again. A transfer after abandon_after_s passed closed such a chat as
    abandoned though the page was connected: it goes to bob."""
    r = env.redis()
    d1, d2 = cluster(env, r, 2, GENERAL, {"chat": {"abandon_after_s": 1}})
    ana = await available(d1, "ana", add_agent(d1, "ana", "Ana", "en", 2))
    cust, cid = await held_by(ana, d2)
    bob = await available(d1, "bob", add_agent(d1, "bob", "Bob", "en", 2))
    d2.proc.send_signal(signal.SIGSTOP)
    try:
        # silent heartbeat_timeout_s (3) + 10 s: its customers are taken for gone
        await poll(lambda: conv(r, cid).get("left_ms"), 25)
        assert conv(r, cid).get("left_ms"), conv(r, cid)
        await asyncio.sleep(2.0)  # abandon_after_s passes (the conversation is ana's)
    finally:
        d2.proc.send_signal(signal.SIGCONT)
    await asyncio.sleep(2.0)  # d2 ticks again: the page's connection counts again

    def d2_ticked():  # (its last tick recent by Redis's clock: on a busy machine, later)
        rc = r.client()
        try:
            tnow = rc.cmd("TIME")
            now = int(tnow[0]) * 1000 + int(tnow[1]) // 1000
            ticks = rc.cmd("ZRANGE", "omr:{default}:instances", 0, -1, "WITHSCORES")
            return any(str(m).startswith("d2") and now - int(sc) < 1000
                       for m, sc in zip(ticks[::2], ticks[1::2]))
        finally:
            rc.close()
    await poll(d2_ticked, 15)
    rc = r.client()
    try:
        ikeys = [k for k in rc.keys("*instances") if not str(k).endswith("resumed")]
        ticks = {m: s for m, s in zip(*[iter(rc.cmd("ZRANGE", ikeys[0], 0, -1,
                                                     "WITHSCORES"))] * 2)}
        tnow = rc.cmd("TIME")
        members = rc.cmd("SMEMBERS", [k for k in rc.keys("*conv:" + cid + ":cust")][0])
    finally:
        rc.close()
    now_ms = int(tnow[0]) * 1000 + int(tnow[1]) // 1000
    print("instances (ms since last tick):",
          {(m.decode() if isinstance(m, bytes) else m): now_ms - int(s) for m, s in ticks.items()},
          "customer connections:", members)
    env.expect(not cust.conn.closed, "the customer's page stayed connected")
    msg = {"type": "transfer", "conversation_id": cid, "id": ana.next_id("t")}
    msg[kind] = "bob" if kind == "agent" else "general"
    rep = await ana.conn.request(msg)
    assert rep.get("type") == "ack", rep
    await poll(lambda: bob.assigned(cid), 10)
    c = conv(r, cid)
    env.expect(c.get("state") != "closed" and bob.assigned(cid),
               f"transfer ({kind}) of a chat whose customer is connected again (its instance "
               f"thawed): state={c.get('state')} close_reason={c.get('close_reason')} "
               f"left_ms={c.get('left_ms')} bob assigned={bool(bob.assigned(cid))}")


@time_limit(90)
async def test_agent_transfer_customer_on_thawed_instance_not_abandoned(env):
    await thawed(env, "agent")


@time_limit(90)
async def test_queue_transfer_customer_on_thawed_instance_not_abandoned(env):
    """The same with a transfer to a queue (route(): it closed it abandoned too)."""
    await thawed(env, "queue")


@time_limit(90)
async def test_agent_to_agent_transfers_do_not_drag_queue_average_to_zero(env):
    """PROTOCOL `position`: the estimate is the queue's recent average wait for a first agent
    (queue status average_wait_ms). A customer waited ~6 s; then the chat is handed back and
    forth between free agents 4 times (nobody waits): each hand-over counted as a 0 ms wait,
    and the average a new customer is told dropped from ~6 s to ~2.5 s."""
    r = env.redis()
    (d1,) = cluster(env, r, 1, GENERAL)
    tok_b = add_agent(d1, "bob", "Bob", "en", 3)
    tok_a = add_agent(d1, "ana", "Ana", "en", 3)
    c1 = Customer(d1.url, "c1")
    await c1.hello(language="en", name="C1")
    await asyncio.sleep(6)
    ana = await available(d1, "ana", tok_a)
    await ana.wait_item(assigned_to(c1.conversation_id), 10, "ana takes c1")
    bob = await available(d1, "bob", tok_b)
    avg = queue_avg(d1)
    cid = c1.conversation_id
    holder, other = ana, bob
    for i in range(4):
        assert (await transfer(holder, cid, to=other.agent_id)).get("type") == "ack"
        await poll(lambda: len(other.assigned(cid)) >= (i // 2) + 1, 10)
        holder, other = other, holder
    await asyncio.sleep(0.5)
    avg2 = queue_avg(d1)
    env.expect(avg2 is not None and avg2 > avg * 0.8,
               f"queue average after 4 agent-to-agent hand-overs (no customer waited): "
               f"{avg} -> {avg2} ms")


if __name__ == "__main__":
    run_tests([v for k, v in list(globals().items()) if k.startswith("test_")])
