"""test_durability_edges.py - work and messages across failures.

Each test follows the documented behaviour (docs/PROTOCOL.md,
docs/ARCHITECTURE.md, docs/ROUTING.md) and asserts it; each failed against the
binary it was written for:

1. test_hello_resent_after_unavailable_makes_no_ghost: a hello the router
   could not answer in time (Redis stalled) is answered `unavailable`; the
   client sends it again on the same connection, as PROTOCOL.md allows. The
   first one still runs when Redis answers and creates a second conversation
   nobody is in, which takes the only agent; the customer's real
   conversation waits, and the ghost's items reach the customer's connection.
2. test_requeued_long_chat_reaches_new_agent_whole: an agent holding a long
   chat is lost (its desktop closes and grace passes); the chat is re-queued
   to another agent, who must get every message of the transcript, the
   latest ones included (only the first 500 entries are copied).
3. test_item_taken_by_replaced_desktop_reaches_the_new_one: a desktop is
   replaced by a login on another instance while the old instance is paused;
   the old instance's stale watch claims a customer message on resuming.
   The new desktop's periodic re-read of the pending history starts at its
   cursor, already past that message, so it never arrives while connected.
4. test_agent_reply_resent_after_transfer_is_acked: an agent's stored reply
   resent after its ack was lost (PROTOCOL.md: "resending is always safe") is
   refused `not-assigned` once the conversation was transferred, so the
   desktop marks a delivered reply as failed.
5. test_login_from_a_new_browser_shows_the_chats_held: an agent whose
   browser died logs in from another one within the grace period; it still
   holds its chats (and an offer), but the new desktop got nothing: every
   item had been acknowledged by the old browser. The customer saw "joined
   the chat" and nobody answered.
"""

import asyncio
import os
import signal
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from omr_harness import (SEQ_RE, Agent, Customer, Disconnected, Resp, add_agent,  # noqa: E402,F401
                         agent_key, conv_key, log, retry, run_tests, time_limit, wait_field,
                         wait_hash, wait_log, wait_until)
import websockets.exceptions  # noqa: E402,F401

P = "omr:{default}"


def convs_in_redis(rc):
    return [k.split(":")[-1] for k in rc.keys(P + ":conv:*") if k.count(":") == 3]




# --------------------------------------------------------------------------
# 1. A hello resent after `unavailable` must not leave a ghost conversation.

@time_limit(90)
async def test_hello_resent_after_unavailable_makes_no_ghost(env):
    r = env.redis()
    # The adapter gives up after 3 x 150 ms; the router's watchdog notices a
    # stalled Redis only after 10 s, so the FCALL stays queued, not lost.
    d = env.daemon(r, config={
        "redis": {"ping_interval_ms": 500, "ping_timeout_ms": 10000},
        "bus": {"ack_timeout_ms": 150, "max_attempts": 3}})
    token = add_agent(d, "a1", "Alex", "en", 1)  # the only agent, one chat
    agent = Agent(d.url, "a1", token)
    await agent.login()
    await agent.presence("available")

    cust = Customer(d.url, "customer")
    conn = await cust.connect()
    r.proc.send_signal(signal.SIGSTOP)
    try:
        start = len(conn.frames)
        await conn.send({"type": "hello", "v": 1, "language": "en", "name": "Kim"})
        first = await conn.wait_for(lambda f: f.get("type") in ("welcome", "error"), 15,
                                    "answer to the first hello", start)
        log(f"first hello answered: {first}")
    finally:
        r.proc.send_signal(signal.SIGCONT)
    assert first.get("type") == "error" and first.get("code") == "unavailable", (
        f"the first hello should be refused as unavailable while Redis is stalled: {first}")
    await asyncio.sleep(1.0)  # Redis runs what was queued

    # PROTOCOL.md (Errors): "A `hello` or `login` that failed with
    # `unavailable` may be sent again on the same connection."
    w = await cust.hello(language="en", name="Kim", timeout=15)
    conv = cust.conversation_id
    log(f"second hello: {w}")
    rc = r.client()
    convs = convs_in_redis(rc)
    log(f"conversations in Redis: {convs}")
    ghosts = [c for c in convs if c != conv]
    held = sorted(rc.cmd("SMEMBERS", agent_key("a1") + ":convs") or [])
    env.expect(not ghosts or all(rc.hgetall(conv_key(g)).get("state") == "closed"
                                 for g in ghosts),
               f"one hello resent after `unavailable` left another, open conversation the "
               f"customer is not in: {[(g, rc.hgetall(conv_key(g)).get('state')) for g in ghosts]}"
               f"; a1 (capacity 1) holds {held}")
    # The only agent is available with a free seat: the customer's conversation
    # is the one it must get.
    try:
        await wait_hash(rc, conv_key(conv), lambda h: h.get("state") == "assigned"
                        and h.get("agent") == "a1", 10, "the customer's conversation assigned")
    except AssertionError as e:
        env.expect(False, f"the customer's own conversation was never assigned to the only "
                   f"agent (it holds {held}): {e}")

    # Whatever a1 was given, it answers and closes it: nothing of another
    # conversation may reach this customer's connection.
    for g in held:
        if g != conv:
            await agent.reply(g, "hello from the ghost")
            await agent.close_conv(g)
    await asyncio.sleep(1.5)
    own = {eid for eid, _ in rc.xrange(conv_key(conv) + ":log")}
    foreign = [f for f in cust.order if f.get("seq") not in own]
    env.expect(not foreign, f"the customer's connection got items of another conversation: "
               f"{foreign}")
    env.expect(not any(f.get("event") == "closed" for f in cust.order),
               f"the customer was told its conversation closed: {cust.order}")
    rc.close()
    await cust.close()
    await agent.close()


# --------------------------------------------------------------------------
# 2. A long chat re-queued after agent loss reaches the next agent whole.

N_PAIRS = 300  # 300 customer lines + 300 replies: 600 transcript messages


@time_limit(240)
async def test_requeued_long_chat_reaches_new_agent_whole(env):
    r = env.redis()
    d = env.daemon(r, config={
        "routing": {"tick_ms": 50, "heartbeat_timeout_s": 3, "agent_grace_s": 2},
        "websocket": {"max_messages_per_second": 100000}})
    ta = add_agent(d, "a1", "Alex", "en", 1)
    tb = add_agent(d, "b1", "Bea", "en", 1)
    a1 = Agent(d.url, "a1", ta)
    await a1.login()
    await a1.presence("available")
    cust = Customer(d.url)
    await cust.hello(language="en", name="Kim")
    conv = cust.conversation_id
    await a1.wait_item(lambda f: f.get("type") == "assigned", 10, "assigned")
    for i in range(1, N_PAIRS + 1):
        await cust.send(f"question {i}", id=f"m{i}", timeout=20)
        await a1.reply(conv, f"answer {i}", id=f"r{i}", timeout=20)
    last = f"m{N_PAIRS}"
    await cust.send("are you still there?", id=last + "-x", timeout=20)
    # a1's desktop goes away and does not come back within the grace period
    await a1.close()
    b1 = Agent(d.url, "b1", tb)
    await b1.login()
    await b1.presence("available")
    await b1.wait_item(lambda f: f.get("type") == "assigned" and f.get("conversation_id") == conv,
                       30, "the re-queued chat at b1")
    await cust.wait_item(lambda f: f.get("event") == "requeued", 10, "requeued")

    want = [f"m{i}" for i in range(1, N_PAIRS + 1)] + [last + "-x"]

    def have_all():
        got = {f.get("id") for f in b1.messages(conv) if f.get("from") == "customer"}
        return True if set(want) <= got else None
    try:
        await wait_until(b1.cond, have_all, 20, "")
    except AssertionError:
        pass
    got = [f.get("id") for f in b1.messages(conv) if f.get("from") == "customer"]
    missing = [m for m in want if m not in got]
    rc = r.client()
    stored = [f.get("msgid") for _, f in rc.xrange(conv_key(conv) + ":log")
              if f.get("kind") == "message" and f.get("from") == "customer"]
    rc.close()
    assert stored == want, f"transcript in Redis holds {len(stored)} customer messages"
    assert not missing, (
        f"b1 took over the chat of lost agent a1 but never got {len(missing)} of the "
        f"{len(want)} customer messages in its transcript (first missing: {missing[:5]}, "
        f"last: {missing[-3:]}); it got {len(b1.messages(conv))} message items in all")
    await cust.close()
    await b1.close()


# --------------------------------------------------------------------------
# 3. An item a replaced desktop's stale watch took must still reach the new
#    desktop (ARCHITECTURE.md, data path 5: the pending history is re-read
#    "with the first read 5 s or more after the last"; delivery.c's header:
#    "entries another instance's stale watch of the same agent took").

STALL = {"redis": {"ping_interval_ms": 500, "ping_timeout_ms": 60000}}


@time_limit(120)
async def test_item_taken_by_replaced_desktop_reaches_the_new_one(env):
    r = env.redis()
    d1 = env.daemon(r, "d1", config=STALL)
    d2 = env.daemon(r, "d2", config=STALL)
    d3 = env.daemon(r, "d3", config=STALL)
    token = add_agent(d1, "a1", "Alex", "en", 2)
    cust = Customer(d3.url, "customer on d3")
    await cust.hello(language="en", name="Kim")
    conv = cust.conversation_id
    desk1 = Agent(d1.url, "a1", token, label="desktop on d1")
    await desk1.login()
    await desk1.presence("available")
    await desk1.wait_item(lambda f: f.get("type") == "assigned", 10, "assigned")
    await asyncio.sleep(0.3)  # its ack reaches Redis

    # d1 hangs for a moment (a long GC-like pause, a slow disk, a debugger).
    d1.proc.send_signal(signal.SIGSTOP)
    try:
        await cust.send("one", id="x1")
        # The agent reloads its desktop; the load balancer sends it to d2.
        desk2 = Agent(d2.url, "a1", token, label="desktop on d2")
        await desk2.login()
        await desk2.wait_item(lambda f: f.get("id") == "x1", 10, "x1 at the new desktop")
        d2.proc.send_signal(signal.SIGSTOP)
        try:
            await cust.send("two", id="x2")
            d1.proc.send_signal(signal.SIGCONT)
            await asyncio.sleep(1.0)  # d1 catches up with its notifications
        finally:
            d2.proc.send_signal(signal.SIGCONT)
    finally:
        d1.proc.send_signal(signal.SIGCONT)
    await asyncio.sleep(0.5)
    # The customer keeps writing; the new desktop stays connected.
    for i, pause in ((3, 0.0), (4, 6.0), (5, 6.0)):
        await asyncio.sleep(pause)
        await cust.send(f"more {i}", id=f"x{i}")
        await desk2.wait_item(lambda f, i=i: f.get("id") == f"x{i}", 10, f"x{i}")
    got = [f.get("id") for f in desk2.messages(conv)]
    rc = r.client()
    pend = rc.cmd("XPENDING", agent_key("a1") + ":inbox", "desktop")
    rc.close()
    log(f"new desktop got {got}; inbox pending {pend}")
    try:
        await desk2.wait_item(lambda f: f.get("id") == "x2", 5, "x2")
    except AssertionError:
        raise AssertionError(
            f"customer message x2 (acked, in a1's inbox) never reached a1's connected desktop "
            f"on d2 although later messages did: it got {got}; inbox pending {pend}") from None
    await cust.close()
    await desk2.close()


# --------------------------------------------------------------------------
# 4. An agent's reply resent after its ack was lost is answered with that ack,
#    also when the conversation moved on meanwhile (transfer).

QUEUES_TWO = """
queues:
  - name: general
  - name: second
"""


@time_limit(60)
async def test_agent_reply_resent_after_transfer_is_acked(env):
    r = env.redis()
    d = env.daemon(r, queues=QUEUES_TWO)
    ta = add_agent(d, "a1", "Alex", "en", 1)
    a1 = Agent(d.url, "a1", ta)
    await a1.login()
    await a1.presence("available")
    cust = Customer(d.url)
    await cust.hello(language="en")
    conv = cust.conversation_id
    await a1.wait_item(lambda f: f.get("type") == "assigned", 10, "assigned")
    # The desktop sends its last line and the transfer back to back; the
    # instance dies before either ack reaches it (here: both are stored and
    # the desktop behaves as if it never saw the acks).
    first = await a1.reply(conv, "let me pass you to billing", id="a-last")
    t = await a1.conn.request({"type": "transfer", "conversation_id": conv, "queue": "second",
                               "id": "t-1"})
    assert t.get("type") == "ack", t
    await cust.wait_item(lambda f: f.get("type") == "message" and f.get("id") == "a-last", 10,
                         "the reply at the customer")
    # It reconnects and resends what was not acknowledged (PROTOCOL.md,
    # Delivery guarantees: "resending is always safe").
    await a1.close()
    again = Agent(d.url, "a1", ta, label="a1 reconnected")
    await again.login()
    r2 = await again.conn.request({"type": "message", "conversation_id": conv, "id": "a-last",
                                   "text": "let me pass you to billing"})
    shown = [f.get("id") for f in cust.agent_messages()]
    assert r2.get("type") == "ack" and r2.get("seq") == first.get("seq"), (
        f"the resent reply a-last, stored (seq {first.get('seq')}) and shown to the customer "
        f"({shown}), was answered {r2}: the desktop marks a delivered reply as failed")
    await cust.close()
    await again.close()


# --------------------------------------------------------------------------
# 5. A login from a new browser gets what the agent holds.

QUEUES_OFFER = """
queues:
  - name: offers
    attributes: {kind: offer}
    auto_accept: false
    offer_timeout_s: 60
  - name: general
"""


@time_limit(90)
async def test_login_from_a_new_browser_shows_the_chats_held(env):
    r = env.redis()
    d = env.daemon(r, queues=QUEUES_OFFER)
    token = add_agent(d, "a1", "Alex", "en", 3)
    old = Agent(d.url, "a1", token, label="old browser")
    await old.login()
    await old.presence("available")
    cust = Customer(d.url, "customer")
    await cust.hello(language="en", name="Kim")
    conv = cust.conversation_id
    await old.wait_item(lambda f: f.get("type") == "assigned", 10, "assigned")
    await cust.send("my parcel is lost", id="m1")
    await old.wait_item(lambda f: f.get("id") == "m1", 10, "m1")
    await old.reply(conv, "let me check", id="r1")
    offered = Customer(d.url, "customer with an offer")
    await offered.hello(language="en", name="Lee", attributes={"kind": "offer"})
    await old.wait_item(lambda f: f.get("type") == "offer", 10, "the offer")
    await asyncio.sleep(0.5)  # the old browser's acks reach Redis
    await old.close()  # the browser dies; the agent opens another one at once

    fresh = Agent(d.url, "a1", token, label="new browser")
    await fresh.login()
    try:
        a = await fresh.wait_item(lambda f: f.get("type") == "assigned"
                                  and f.get("conversation_id") == conv, 5, "the chat held")
        o = await fresh.wait_item(lambda f: f.get("type") == "offer"
                                  and f.get("conversation_id") == offered.conversation_id, 5,
                                  "the open offer")
    except AssertionError:
        raise AssertionError(
            f"agent a1 holds chat {conv} and an open offer, but a login from a new browser "
            f"got {[(f.get('type'), f.get('conversation_id')) for f in fresh.order]}: the "
            f"customer waits for an agent who cannot see the chat") from None
    await fresh.wait_item(lambda f: f.get("id") == "m1", 5, "the transcript with it")
    await fresh.wait_item(lambda f: f.get("id") == "r1" and f.get("from") == "agent", 5,
                          "the agent's own reply")
    assert a.get("customer_name") == "Kim" and o.get("expires_ms"), (a, o)
    await fresh.reply(conv, "found it", id="r2")
    await cust.wait_item(lambda f: f.get("text") == "found it", 10, "the reply")
    await fresh.accept(offered.conversation_id)
    await offered.wait_item(lambda f: f.get("event") == "assigned", 10, "assigned")
    # (the desktop's own assigned item comes through its inbox, apart from the customer's
    # event: acked before the desktop closes, it is not sent again as unacked)
    await fresh.wait_item(lambda f: f.get("type") == "assigned"
                          and f.get("conversation_id") == offered.conversation_id, 10,
                          "the assigned item after accept")
    # A desktop that says what it shows gets nothing again.
    await fresh.close()
    same = Agent(d.url, "a1", token, label="reloaded tab")
    await same.login(conversations=[conv, offered.conversation_id])
    await asyncio.sleep(1.5)
    again = [f for f in same.order if f.get("type") in ("assigned", "offer")]
    assert not again, f"a desktop that showed both chats got them again: {again}"
    for c in (cust, offered):
        await c.close()
    await same.close()


if __name__ == "__main__":
    run_tests([test_hello_resent_after_unavailable_makes_no_ghost,
               test_requeued_long_chat_reaches_new_agent_whole,
               test_item_taken_by_replaced_desktop_reaches_the_new_one,
               test_agent_reply_resent_after_transfer_is_acked,
               test_login_from_a_new_browser_shows_the_chats_held])
