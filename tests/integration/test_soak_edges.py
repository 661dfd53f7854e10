"""test_soak_edges.py - nothing a site keeps running for weeks grows without bound.

Found by a soak review (a workday of churn with Redis accounted by key family, 2026-12-06);
each test but the last-but-one failed on the build it was written against:

1. Conversations whose customer left while waiting, that no agent on the floor can take
   (a language nobody speaks; the shipped catch-all queue has no max_wait_s), were kept in
   Redis with no TTL, for good (now closed as abandoned: chat.abandon_after_s).
2. An offer the desktop never received barred the agent from that conversation for good,
   though ROUTING.md says such an offer is not held against it; one the only capable agent
   rejected waited for good while that agent sat free (routing.decline_hold_s).
3. Every key of a finished conversation expires (a guarantee worth keeping; passed).
4. A desktop that never acks held a pending list that grew by one entry per item for as
   long as it stayed logged in (now trimmed on the periodic read, once a minute).

    OMR_BUILD_DIR=build/asan python3 tests/integration/test_soak_edges.py [NAME...]
"""

import asyncio
import os
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from omr_harness import (Agent, Customer, add_agent, log, poll, run_tests,  # noqa: E402
                         time_limit)

P = "omr:{default}"


def key_report(rc, cid):
    """{key suffix: (type, pttl)} of a conversation's keys that exist."""
    out = {}
    for suf in ("", ":log", ":ids", ":decl", ":explain", ":cust"):
        k = f"{P}:conv:{cid}{suf}"
        t = rc.cmd("TYPE", k)
        if t != "none":
            out[suf or "hash"] = (t, rc.cmd("PTTL", k))
    return out


@time_limit(120)
async def test_abandoned_chats_nobody_can_take_expire(env):
    """ARCHITECTURE.md, Retention: "nothing else grows with the number of conversations".
    12 German-speaking customers come to an English-speaking floor (no max_wait_s), write,
    and give up waiting: each must end (abandoned) and expire, not wait in Redis for good."""
    r = env.redis()
    d = env.daemon(r, config={"chat": {"retention_days": 1, "abandon_after_s": 2},
                              "routing": {"tick_ms": 50}})
    tok = add_agent(d, "emma", "Emma", "en", 2)
    desk = Agent(d.url, "emma", tok)
    await desk.login()
    await desk.presence("available")
    convs = []
    for i in range(12):
        c = Customer(d.url, f"de customer {i}")
        await c.hello(language="de-DE", name=f"Kunde {i}", customer_id=f"kunde-{i}")
        await c.send("Hallo, ich habe eine Frage zu meiner Rechnung")
        convs.append(c.conversation_id)
        await c.close()  # gives up waiting, never comes back
    rc = r.client()
    await poll(lambda: rc.cmd("SCARD", P + ":queued") == 0, 10)
    kept = {cid: key_report(rc, cid) for cid in convs}
    no_ttl = {cid: rep for cid, rep in kept.items() if any(p == -1 for _, p in rep.values())}
    states = {rc.cmd("HGET", f"{P}:conv:{cid}", "close_reason") for cid in convs}
    assert not no_ttl and rc.cmd("SCARD", P + ":queued") == 0 and states == {"abandoned"}, (
        f"{len(no_ttl)} of 12 conversations whose customer left while waiting are kept with "
        f"no TTL (close reasons {states}); e.g. {convs[0]}: {kept[convs[0]]}")
    await desk.close()


@time_limit(120)
async def test_offer_the_desktop_never_received_is_not_held_against_the_agent(env):
    """ROUTING.md, Offers: "An offer that expired undelivered or unacknowledged (a slow
    server, a dropped connection) is taken back and routed on, but is not held against the
    agent". Here the one Arabic speaker's desktop never acks the offer; once it does, the
    conversation must still reach that agent, not wait for good."""
    r = env.redis()
    queues = """queues:
  - name: general
    auto_accept: false
    offer_timeout_s: 2
"""
    d = env.daemon(r, config={"chat": {"retention_days": 1}}, queues=queues)
    tok = add_agent(d, "omar", "Omar", "ar", 2)
    slow = Agent(d.url, "omar", tok, label="omar (desktop not acking)", auto_ack=False)
    await slow.login()
    await slow.presence("available")
    c = Customer(d.url, "ar customer")
    await c.hello(language="ar", name="Layla")
    await c.send("مرحبا")
    cid = c.conversation_id
    await slow.wait_item(lambda f: f.get("type") == "offer", 10, "the offer")
    await slow.wait_item(lambda f: f.get("type") == "revoked", 10, "the offer taken back")
    await slow.close()
    desk = Agent(d.url, "omar", tok)  # the desktop catches up
    await desk.login()
    await desk.presence("available")
    offer = await desk.wait_item(lambda f: f.get("type") == "offer" and
                                 f.get("conversation_id") == cid, 10, "the offer again")
    assert (await desk.accept(cid)).get("type") == "ack"
    await desk.wait_item(lambda f: f.get("type") == "assigned", 10, "assigned")
    log(f"offered again to the one agent who serves it: {offer.get('seq')}")
    await desk.close()
    await c.close()


@time_limit(120)
async def test_chat_rejected_by_its_only_agent_comes_back_after_the_hold(env):
    """routing.decline_hold_s: an agent who rejected a conversation is not offered it again
    for that long; then, when nobody else took it, it comes back to them. The only French
    speaker rejects a chat by mistake: it must not wait for good while she sits free."""
    r = env.redis()
    queues = """queues:
  - name: general
    auto_accept: false
    offer_timeout_s: 30
"""
    d = env.daemon(r, config={"routing": {"decline_hold_s": 10, "tick_ms": 50}},
                   queues=queues)
    tok = add_agent(d, "lea", "Lea", "fr", 2)
    desk = Agent(d.url, "lea", tok)
    await desk.login()
    await desk.presence("available")
    c = Customer(d.url, "fr customer")
    await c.hello(language="fr", name="Jules")
    await c.send("Bonjour")
    cid = c.conversation_id
    await desk.wait_item(lambda f: f.get("type") == "offer", 10, "the offer")
    t0 = time.monotonic()
    assert (await desk.reject(cid, "wrong-skill")).get("type") == "ack"
    await asyncio.sleep(5)
    assert len(desk.offers(cid)) == 1, "offered again within the hold"
    await desk.wait_item(lambda f: f.get("type") == "offer" and f.get("seq") !=
                         desk.offers(cid)[0].get("seq"), 15, "the offer after the hold")
    waited = time.monotonic() - t0
    log(f"offered again {waited:.1f} s after the reject (hold 10 s)")
    assert waited >= 9.5, waited
    await desk.close()
    await c.close()


@time_limit(150)
async def test_every_key_of_a_finished_conversation_expires(env):
    """Pins ARCHITECTURE.md, Retention: whichever way a conversation ends (the agent
    closes it after a survey, after a transfer, after a declined offer; the maximum wait
    closes it), its five keys and its customer's two keys carry a TTL of about
    chat.retention_days. (Passes on this build: a guarantee worth keeping.)"""
    r = env.redis()
    queues = """queues:
  - name: offers
    languages: [fr]
    auto_accept: false
    offer_timeout_s: 5
  - name: timed
    languages: [de]
    max_wait_s: 2
  - name: general
"""
    d = env.daemon(r, config={"chat": {"retention_days": 1}}, queues=queues)
    ta = add_agent(d, "ana", "Ana", "en,fr", 2)
    tb = add_agent(d, "bob", "Bob", "en,fr", 2)
    a = Agent(d.url, "ana", ta)
    b = Agent(d.url, "bob", tb)
    for x in (a, b):
        await x.login()
        await x.presence("available")
    rc = r.client()
    ends = {}

    def holder(cid):
        return rc.cmd("HGET", f"{P}:conv:{cid}", "agent")

    # 1. closed by its agent, then rated
    c1 = Customer(d.url, "c1")
    await c1.hello(language="en", customer_id="cust-1")
    await c1.send("hello")
    await asyncio.sleep(0.5)
    ag = a if holder(c1.conversation_id) == "ana" else b
    await ag.reply(c1.conversation_id, "hi")
    await ag.close_conv(c1.conversation_id)
    await c1.wait_item(lambda f: f.get("event") == "closed", 10, "closed")
    assert (await c1.conn.request({"type": "rate", "score": 4, "id": "s1"}))["type"] == "ack"
    ends["closed+survey"] = c1.conversation_id
    # 2. transferred to the other agent, who closes it
    c2 = Customer(d.url, "c2")
    await c2.hello(language="en", customer_id="cust-2")
    await c2.send("hello")
    await asyncio.sleep(0.5)
    first = holder(c2.conversation_id)
    ag, other = (a, b) if first == "ana" else (b, a)
    rq = await ag.conn.request({"type": "transfer", "conversation_id": c2.conversation_id,
                                "agent": other.agent_id, "note": "n", "id": "t1"})
    assert rq["type"] == "ack", rq
    await other.wait_item(lambda f: f.get("type") == "assigned"
                          and f.get("conversation_id") == c2.conversation_id, 10, "assigned")
    await other.close_conv(c2.conversation_id)
    ends["transferred+closed"] = c2.conversation_id
    # 3. offered, rejected by one, accepted and closed by the other
    c3 = Customer(d.url, "c3")
    await c3.hello(language="fr", customer_id="cust-3")
    await c3.send("bonjour")
    cid = c3.conversation_id
    off = None
    for _ in range(50):
        off = next((x for x in (a, b) if x.offers(cid)), None)
        if off:
            break
        await asyncio.sleep(0.1)
    assert off, "no offer"
    assert (await off.reject(cid))["type"] == "ack"
    nxt = b if off is a else a
    await nxt.wait_item(lambda f: f.get("type") == "offer" and f.get("conversation_id") == cid,
                        10, "second offer")
    assert (await nxt.accept(cid))["type"] == "ack"
    await nxt.wait_item(lambda f: f.get("type") == "assigned" and f.get("conversation_id") == cid,
                        10, "assigned")
    await nxt.close_conv(cid)
    ends["declined+closed"] = cid
    # 4. closed by the maximum wait (nobody speaks de), customer gone
    c4 = Customer(d.url, "c4")
    await c4.hello(language="de", customer_id="cust-4")
    await c4.send("hallo")
    await c4.close()
    ends["max-wait"] = c4.conversation_id
    await asyncio.sleep(4)
    await poll(lambda: rc.cmd("HGET", f"{P}:conv:{c4.conversation_id}", "state") == "closed",
               10)  # (max_wait_s 2: closed at a tick after it)
    bad = {}
    for how, cid in ends.items():
        rep = key_report(rc, cid)
        st = rc.cmd("HGET", f"{P}:conv:{cid}", "state")
        if st != "closed" or any(not (0 < p <= 86400 * 1000) for _, p in rep.values()):
            bad[how] = (st, rep)
    for cust in ("cust-1", "cust-2", "cust-3", "cust-4"):
        for k in (f"{P}:customer:default|{cust}", f"{P}:customer:default|{cust}|convs"):
            p = rc.cmd("PTTL", k)
            if p == -1:
                bad[k] = p
    assert not bad, f"keys of finished conversations without a retention TTL: {bad}"


@time_limit(300)
async def test_desktop_that_never_acks_is_trimmed_to_the_inbox_cap(env):
    """README, Running it for real: "An agent's inbox keeps only the items its desktop
    has not acknowledged, and those of the last minute or so (a desktop that never
    acks: up to 10,000, about 3 MB)". The stream is capped (XADD MAXLEN ~ 10000,
    inbox_add in router/lua/10_index.lua), but what a desktop was delivered and did
    not ack also sits in the consumer group's pending list, and XADD's trim does not
    touch it; omr_inbox_trim (router/lua/50_desktops.lua), which acks the pending
    entries the cap dropped, runs only after the desktop's acks (trim_inbox in
    router/handlers.c). So for a desktop that never acks, the pending list grows by
    one entry per item for as long as it stays logged in. 11,000 customer messages
    to one assigned chat; within a minute the pending list is back within the cap
    (README: "the newest 10,000 ... plus what came in the last minute")."""
    n = 11000
    r = env.redis()
    d = env.daemon(r, config={"websocket": {"max_messages_per_second": 400},
                              "chat": {"max_messages": 20000}, "log": {"level": "warn"}})
    tok = add_agent(d, "zoe", "Zoe", "en", 1)
    desk = Agent(d.url, "zoe", tok, auto_ack=False)
    await desk.login()
    await desk.presence("available")
    c = Customer(d.url, "chatty")
    await c.hello(language="en")
    cid = c.conversation_id
    await desk.wait_item(lambda f: f.get("type") == "assigned", 10, "assigned")
    start = len(c.conn.frames)
    for i in range(n):
        await c.conn.send({"type": "message", "id": f"m{i}", "text": f"message {i}"})
        if i % 200 == 199:
            await asyncio.sleep(0.5)
    await c.conn.wait_for(lambda f: f.get("type") in ("ack", "error") and f.get("id") ==
                          f"m{n - 1}", 120, "the last message's ack", start)
    rc = r.client()
    inbox = f"{P}:agent:zoe:inbox"
    # The trim comes with a read of the inbox, at most once a minute: the chat goes on.
    deadline = time.monotonic() + 75
    while rc.cmd("XPENDING", inbox, "desktop")[0] > 10100 and time.monotonic() < deadline:
        await c.send("still there?")
        await asyncio.sleep(1)
    xlen = rc.cmd("XLEN", inbox)
    pending = rc.cmd("XPENDING", inbox, "desktop")[0]
    mem = rc.cmd("MEMORY", "USAGE", inbox)
    log(f"after {n} messages to a desktop that never acks: XLEN {xlen}, pending {pending}, "
        f"MEMORY USAGE {mem} B, desktop got {len(desk.messages(cid))} messages")
    assert pending <= 10100, (
        f"the inbox of a desktop that never acks holds {pending} pending entries (stream "
        f"XLEN {xlen}): the pending list outgrows the documented 10,000 by one entry per "
        f"item delivered, for as long as the desktop stays logged in")


if __name__ == "__main__":
    run_tests([test_abandoned_chats_nobody_can_take_expire,
               test_offer_the_desktop_never_received_is_not_held_against_the_agent,
               test_chat_rejected_by_its_only_agent_comes_back_after_the_hold,
               test_every_key_of_a_finished_conversation_expires,
               test_desktop_that_never_acks_is_trimmed_to_the_inbox_cap])
