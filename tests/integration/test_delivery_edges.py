"""test_delivery_edges.py - delivery and request edge cases.

Each test drives the real omnirouterd (ASan build) against a real
redis-server with real websocket clients, and shows one way work is lost or
goes to the wrong desktop:

1. test_pending_history_over_one_read_is_not_skipped: an agent logs in with
   more than one read (200) of unacknowledged inbox items while new items
   also wait; the new items ride in the same pipeline as the first history
   read and move the watch's cursor past the rest of the history, which is
   then never delivered to the desktop.
2. test_agent_gone_survives_a_lost_redis_reply: a desktop closes while the
   Redis connection drops with omr_agent_gone in flight; the router already
   forgot the desktop, so the adapter's resend is acked without telling
   Redis, and the agent stays "available" (and gets new work) until the
   heartbeat timeout.
3. test_replaced_desktop_is_told_after_a_missed_notification: a login on
   another instance while this instance's subscription is down; the
   "r:AGENT|SESSION" notification is lost, and nothing else (resync,
   heartbeat) ever closes the replaced desktop, which keeps reading the
   agent's inbox (it takes the next assignment) and answering its chats.
4. test_connected_desktop_stays_online_after_a_redis_outage: Redis is away
   for longer than routing.heartbeat_timeout_s; once it is back, omr_tick
   fires the "lost" timers before any heartbeat, the agent goes offline
   with its desktop still connected, the heartbeat's "replaced" answer is
   ignored, and the desktop is never told (its requests fail).
5. test_periodic_recheck_of_a_desktop_that_never_acks_is_bounded: a desktop
   that acks nothing (a stuck tab, a broken client) while its customer keeps
   writing got its whole unacknowledged list again with every 5-second
   re-read of the pending history: up to the inbox's 10,000 items every 5 s.
6. test_acknowledged_inbox_items_do_not_stay_in_redis: every item a desktop
   acknowledged stayed in the agent's inbox stream until 10,000 had piled up
   (about 3 MB of Redis memory per agent, 2.4 GB for a floor of 800), though
   nothing reads an acknowledged item again.
"""

import asyncio
import os
import signal
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from omr_harness import (Agent, Customer, add_agent, agent_key, log, run_tests,  # noqa: E402
                         time_limit, wait_field, wait_log)

FAST_WS = {"websocket": {"max_messages_per_second": 100000}}


# --------------------------------------------------------------------------

async def unacked_desktop(d, agent_id, name, prefix, count):
    """An agent whose desktop acks nothing, assigned a customer who then
    sends `count` messages (ids PREFIX0...) that reach the desktop.
    Returns (token, desktop, customer, conversation id)."""
    token = add_agent(d, agent_id, name, "en", 2)
    desk = Agent(d.url, agent_id, token, label="desktop (no acks)", auto_ack=False)
    await desk.login()
    await desk.presence("available")
    cust = Customer(d.url)
    await cust.hello(language="en")
    await desk.wait_item(lambda f: f.get("type") == "assigned", 10, "the assignment")
    start = len(cust.conn.frames)
    for n in range(count):
        await cust.conn.send({"type": "message", "id": f"{prefix}{n}", "text": f"unacked {n}"})
    last = f"{prefix}{count - 1}"
    await cust.conn.wait_for(lambda f: f.get("type") == "ack" and f.get("id") == last, 30,
                             "the last ack", start)
    await desk.wait_item(lambda f: f.get("id") == last, 30, "the last message at the desktop")
    return token, desk, cust, cust.conversation_id


PENDING = 250  # more than OMR_READ_COUNT (200) items the last desktop never acked
LATE = 5       # items stored while no desktop was connected


@time_limit(120)
async def test_pending_history_over_one_read_is_not_skipped(env):
    r = env.redis()
    d = env.daemon(r, config=FAST_WS)
    # The desktop receives many items and acks none (a frozen tab, a
    # half-open TCP connection): they stay pending for consumer h1.
    token, first, cust, conv = await unacked_desktop(d, "h1", "Hana", "p", PENDING)
    await first.close()
    got = await wait_field(r, agent_key("h1"), "presence", "offline", 10)
    assert got == "offline", f"agent not offline after its desktop closed: {got}"

    # While nobody is connected the customer writes on (the conversation
    # stays assigned for the grace period).
    for n in range(LATE):
        await cust.send(f"late {n}", id=f"late{n}")
    c = r.client()
    pend = c.cmd("XPENDING", agent_key("h1") + ":inbox", "desktop")
    log(f"inbox pending for consumer h1: {pend[0]} (never acked by desktop 1)")
    c.close()

    # The next login must get every item: the unacknowledged ones and the new.
    second = Agent(d.url, "h1", token, label="desktop 2")
    await second.login()
    want = {f"p{n}" for n in range(PENDING)} | {f"late{n}" for n in range(LATE)}

    def have():
        return {f.get("id") for f in second.messages(conv)}
    deadline = time.monotonic() + 12  # more than OMR_HISTORY_RECHECK_MS
    while time.monotonic() < deadline and not want <= have():
        await asyncio.sleep(0.2)
    missing = sorted(want - have(), key=lambda s: (s[0], int(s.lstrip("plate"))))
    log(f"desktop 2 got {len(want & have())} of {len(want)} messages")
    assert not missing, (f"desktop 2 never got {len(missing)} of the {len(want)} messages of "
                         f"its conversation: {missing[:3]} ... {missing[-3:]}")
    await cust.close()
    await second.close()


# --------------------------------------------------------------------------

@time_limit(90)
async def test_agent_gone_survives_a_lost_redis_reply(env):
    r = env.redis()
    # A long heartbeat timeout: only agent.gone can take the agent offline
    # within the test.
    d = env.daemon(r, config={"routing": {"heartbeat_timeout_s": 120},
                              "bus": {"ack_timeout_ms": 300, "max_attempts": 20}})
    token = add_agent(d, "g1", "Gina", "en", 2)
    agent = Agent(d.url, "g1", token)
    await agent.login()
    await agent.presence("available")

    admin = r.client()
    # Writes (every Function) wait; the daemon's PINGs still pass.
    assert admin.cmd("CLIENT", "PAUSE", "5000", "WRITE") == "OK"
    try:
        await agent.close()
        await wait_log(d, "agent disconnected agent=g1", 10)  # omr_agent_gone sent
        await asyncio.sleep(0.2)
        # The command connection drops before Redis ran it (a failover, a
        # proxy restart): the reply is lost, the outcome unknown.
        killed = admin.cmd("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes")
        log(f"killed {killed} normal connection(s) with omr_agent_gone in flight")
    finally:
        admin.cmd("CLIENT", "UNPAUSE")
    await wait_log(d, "connection lost", 10)

    got = await wait_field(r, agent_key("g1"), "presence", "offline", 8)
    session = admin.cmd("HGET", agent_key("g1"), "session")
    admin.close()
    cust = Customer(d.url)
    w = await cust.hello(language="en")
    log(f"after the lost reply: presence={got!r} session={session!r}; a new chat is "
        f"{w.get('state')}")
    await cust.close()
    assert got == "offline", (
        f"the desktop of g1 closed 8 s ago, but Redis still has presence={got!r} "
        f"session={session!r}; a new chat was {w.get('state')!r} "
        f"(to a desktop that is gone)")


# --------------------------------------------------------------------------

@time_limit(90)
async def test_replaced_desktop_is_told_after_a_missed_notification(env):
    r = env.redis()
    # d1 reconnects slowly (its backoff grew in an earlier outage), d2 fast.
    d1 = env.daemon(r, name="d1", config={"redis": {"reconnect_min_ms": 3000,
                                                    "reconnect_max_ms": 3000,
                                                    "ping_timeout_ms": 5000}})
    d2 = env.daemon(r, name="d2", config={"bus": {"max_attempts": 30}})
    token = add_agent(d1, "x1", "Xena", "en", 2)
    first = Agent(d1.url, "x1", token, label="desktop on d1")
    await first.login()
    await first.presence("available")

    admin = r.client()
    killed = admin.cmd("CLIENT", "KILL", "TYPE", "pubsub")
    log(f"killed {killed} subscriber connection(s)")
    await wait_log(d1, "connection lost", 5)
    # The agent opens the desktop elsewhere while d1 is not subscribed.
    second = Agent(d2.url, "x1", token, label="desktop on d2")
    await second.login()
    await second.presence("available")
    log("second desktop logged in on d2 while d1 was not subscribed")
    deadline = time.monotonic() + 10  # d1's first "ready" was at its start
    while time.monotonic() < deadline and d1.log_text().count("ready host=") < 2:
        await asyncio.sleep(0.05)
    assert d1.log_text().count("ready host=") >= 2, "d1 did not reconnect to Redis"

    # Whatever the notification missed, d1 must not keep serving the old
    # desktop: a heartbeat (every heartbeat_timeout_s / 3 = 10 s) answers
    # "replaced" for it, and a resync could check the session too.
    cust = Customer(d2.url)
    await cust.hello(language="en")
    conv = cust.conversation_id
    try:  # (the heartbeat's 10 s, and some for a busy machine)
        await first.conn.wait_closed(25, "the second login")
    except AssertionError:
        pass
    log(f"assignment of the new chat: at the old desktop {len(first.assigned(conv))}, "
        f"at the new desktop {len(second.assigned(conv))}")
    replaced = first.conn.find(lambda f: f.get("type") == "error"
                               and f.get("code") == "replaced")
    still_open = not first.conn.closed
    # The replaced desktop still speaks for the agent: it can answer (and
    # close) the chat that the new desktop holds.
    said = None
    if still_open:
        said = await first.reply(conv, "sent from the replaced desktop", expect_ack=False)
    log(f"old desktop: replaced={bool(replaced)} open={still_open} its reply in the new "
        f"chat: {said}")
    await cust.close()
    await second.close()
    await first.close()
    assert replaced and not still_open, (
        f"desktop on d1 was replaced by a login on d2 12+ s ago but was never told "
        f"(replaced={bool(replaced)}, still open={still_open}); its reply in chat {conv} "
        f"that desktop 2 holds got: {said}")


# --------------------------------------------------------------------------

OUTAGE = {"routing": {"heartbeat_timeout_s": 3},
          "redis": {"ping_interval_ms": 200, "ping_timeout_ms": 1000,
                    "reconnect_min_ms": 50, "reconnect_max_ms": 300},
          "bus": {"ack_timeout_ms": 1000, "max_attempts": 20}}


@time_limit(90)
async def test_connected_desktop_stays_online_after_a_redis_outage(env):
    # Redis is unreachable for longer than routing.heartbeat_timeout_s (a
    # failover, a restart): the instance could not vouch for its desktops,
    # but they are still connected, and it can again once Redis is back.
    r = env.redis()
    d = env.daemon(r, config=OUTAGE)
    token = add_agent(d, "o1", "Omar", "en", 3)
    agent = Agent(d.url, "o1", token)
    await agent.login()
    await agent.presence("available")
    cust = Customer(d.url, "customer 1")
    await cust.hello(language="en")
    await agent.wait_item(lambda f: f.get("type") == "assigned", 10, "the assignment")

    r.proc.send_signal(signal.SIGSTOP)
    try:
        await wait_log(d, "PING timeout", 10)
        await asyncio.sleep(4.5)
    finally:
        r.proc.send_signal(signal.SIGCONT)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and d.log_text().count("ready host=") < 2:
        await asyncio.sleep(0.05)
    await asyncio.sleep(3)  # ticks and heartbeats run again
    await wait_field(r, agent_key("o1"), "presence", "available", 10)  # (its next heartbeat)

    c = r.client()
    a = c.hgetall(agent_key("o1"))
    c.close()
    start = len(agent.conn.frames)
    p = await agent.conn.request({"type": "presence", "presence": "available", "id": "p-after"})
    cust2 = Customer(d.url, "customer 2")
    w = await cust2.hello(language="en")
    log(f"after the outage: desktop open={not agent.conn.closed}, Redis presence="
        f"{a.get('presence')!r} reason={a.get('reason')!r} session={a.get('session')!r}; "
        f"presence request -> {p}; a new chat is {w.get('state')}")
    frames = agent.conn.frames[start:]
    await cust.close()
    await cust2.close()
    await agent.close()
    assert a.get("presence") == "available" and p.get("type") == "ack", (
        f"the desktop of o1 stayed connected through a {4.5 + 1:.1f} s Redis outage, but "
        f"afterwards Redis has presence={a.get('presence')!r} reason={a.get('reason')!r} "
        f"session={a.get('session')!r}, the desktop was told nothing ({frames[:2]}), its "
        f"presence request got {p}, and a new chat is {w.get('state')!r}")


# --------------------------------------------------------------------------

UNACKED = 1000  # items a broken desktop never acks


@time_limit(120)
async def test_periodic_recheck_of_a_desktop_that_never_acks_is_bounded(env):
    r = env.redis()
    d = env.daemon(r, config={**FAST_WS, "chat": {"max_messages": 5000}})
    _, desk, cust, conv = await unacked_desktop(d, "n1", "Nico", "u", UNACKED)

    # The customer writes on, one line a second, for 16 s: three or four
    # periodic re-reads of the pending history happen meanwhile.
    before = len(desk.conn.frames)
    for n in range(16):
        await cust.send(f"more {n}", id=f"m{n}")
        await asyncio.sleep(1.0)
    await desk.wait_item(lambda f: f.get("id") == "m15", 10, "the last new message")
    frames = desk.conn.frames[before:]
    resent = sum(1 for f in frames if f.get("type") == "message"
                 and str(f.get("id", "")).startswith("u"))
    log(f"in 16 s the non-acking desktop got {len(frames)} frames, {resent} of them resends "
        f"of its {UNACKED} unacknowledged items")
    # One page (200 items) per re-read at most; the new messages are 16.
    assert resent <= 4 * 200, (
        f"a desktop that acks nothing got {resent} resent items in 16 s ({len(frames)} frames): "
        f"each periodic re-read sends its whole pending list ({UNACKED}) again")
    # It still gets every new message once.
    new = [f.get("id") for f in frames if str(f.get("id", "")).startswith("m")]
    assert sorted(set(new)) == sorted(f"m{n}" for n in range(16)), f"new messages: {new}"
    await cust.close()
    await desk.close()


# --------------------------------------------------------------------------

ACKED = 300


@time_limit(120)
async def test_acknowledged_inbox_items_do_not_stay_in_redis(env):
    r = env.redis()
    d = env.daemon(r, config=FAST_WS)
    token = add_agent(d, "k1", "Kai", "en", 2)
    desk = Agent(d.url, "k1", token, label="desktop 1")
    await desk.login()
    await desk.presence("available")
    cust = Customer(d.url)
    await cust.hello(language="en")
    conv = cust.conversation_id
    await desk.wait_item(lambda f: f.get("type") == "assigned", 10, "the assignment")
    for n in range(ACKED):
        await cust.conn.send({"type": "message", "id": f"k{n}", "text": f"line {n}"})
    await desk.wait_item(lambda f: f.get("id") == f"k{ACKED - 1}", 30, "the last message")
    c = r.client()
    inbox = agent_key("k1") + ":inbox"

    def pending():
        return int(c.cmd("XPENDING", inbox, "desktop")[0])
    deadline = time.monotonic() + 10
    while pending() and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    assert pending() == 0, f"{pending()} items still pending after the desktop acked them all"
    # The desktop reloads (a new connection; it shows the conversation and
    # acks what comes next).
    await desk.close()
    desk = Agent(d.url, "k1", token, label="desktop 2")
    await desk.login(conversations=[conv])
    await cust.send("after the reload", id="k-last")
    await desk.wait_item(lambda f: f.get("id") == "k-last", 10, "the message after the reload")
    deadline = time.monotonic() + 10
    while int(c.cmd("XLEN", inbox)) > 50 and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    length, mem = int(c.cmd("XLEN", inbox)), c.cmd("MEMORY", "USAGE", inbox)
    log(f"inbox of k1: {length} entries, {mem} bytes, none pending; {ACKED + 2} items acked")
    c.close()
    assert length <= 50, (
        f"the inbox of agent k1 still holds {length} entries ({mem} bytes) that its desktop "
        f"acknowledged and nothing reads again")
    # Nothing the desktop still needs went: the conversation goes on.
    await cust.send("still here?", id="k-more")
    await desk.wait_item(lambda f: f.get("id") == "k-more", 10, "a later message")
    await cust.close()
    await desk.close()


if __name__ == "__main__":
    run_tests([test_pending_history_over_one_read_is_not_skipped,
               test_agent_gone_survives_a_lost_redis_reply,
               test_replaced_desktop_is_told_after_a_missed_notification,
               test_connected_desktop_stays_online_after_a_redis_outage,
               test_periodic_recheck_of_a_desktop_that_never_acks_is_bounded,
               test_acknowledged_inbox_items_do_not_stay_in_redis])
