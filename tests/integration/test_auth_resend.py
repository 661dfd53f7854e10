"""test_auth_resend.py - a hello, resume or login that the router answers only after the
adapter gave up on it (Redis held writes longer than bus.ack_timeout_ms x max_attempts, as
in a failover), sent again on the same connection as PROTOCOL.md allows, and welcomed. From a
review of the chat guarantees under chaos: three of these failed against the build they were
written for (their docstrings say how).

    OMR_BUILD_DIR=build/asan python3 tests/integration/test_auth_resend.py [name]

Redis holds writes with CLIENT PAUSE WRITE; the daemon's PING watchdog is set longer than
the pause so it keeps its connection (the requests wait inside Redis and then run).
"""

import asyncio
import os
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from omr_harness import (Agent, Conn, Customer, Disconnected, add_agent,  # noqa: E402
                         agent_key, conv_key, log, poll, run_tests, time_limit, wait_hash)
import websockets.exceptions  # noqa: E402  (Debian's, found by omr_harness)

# A request the router does not answer gives up after ack_timeout_ms x max_attempts = 2 s
# (the defaults: 10 s); the client sends it again 1.4-1.5 s after its `unavailable` (the
# shipped chat page: 3 s).
STALL_CFG = {"redis": {"ping_timeout_ms": 15000},
             "bus": {"ack_timeout_ms": 1000, "max_attempts": 2},
             "chat": {"abandon_after_s": 5}}


def pause(redis, ms):
    """Redis holds writes for ms (CLIENT PAUSE WRITE)."""
    rc = redis.client()
    rc.cmd("CLIENT", "PAUSE", ms, "WRITE")
    rc.close()


async def answer(conn, frame, timeout=30):
    """Sends frame (a hello, resume or login) and returns the welcome or error it gets."""
    start = len(conn.frames)
    await conn.send(frame)
    return await conn.wait_for(lambda f: f.get("type") in ("welcome", "error"), timeout,
                               f"{frame['type']} answer", start)


async def until_welcomed(redis, conn, frame, pause_ms, resend_after_s):
    """Redis holds writes for pause_ms; frame (a hello, resume or login) is sent on conn,
    and again resend_after_s after each `unavailable`, until a welcome. Returns how many
    times it was sent."""
    pause(redis, pause_ms)
    t0 = time.monotonic()
    n = 0
    while True:
        n += 1
        f = await answer(conn, frame)
        log(f"{conn.label}: {frame['type']} #{n}: {f.get('type')} {f.get('code', '')} after "
            f"{time.monotonic() - t0:.2f}s")
        if f["type"] == "welcome":
            break
        assert f.get("code") == "unavailable", f
        await asyncio.sleep(resend_after_s)
    assert n >= 2, f"the first {frame['type']} was not refused as unavailable: no stall?"
    return n


async def sent_until_welcomed(conn, frame):
    """frame (a hello or login) sent on conn, and again 0.5 s after each `unavailable` (at
    most 3 times in all), as a client does: its welcome. The "A, B, then A" tests below want
    the second A welcomed (Redis runs it 0.4 s before its give-up): that is when the bug they
    catch shows. On a machine too busy for that margin a later A is welcomed, and the test
    passes even on a build with the bug (its stray copies have run by then): the retry can
    hide the bug in a slow run, never fail a good build."""
    for n in range(3):
        f = await answer(conn, frame)
        if f.get("type") == "welcome" or f.get("code") != "unavailable":
            break
        log(f"{conn.label}: {frame['type']} again #{n + 1}: unavailable, sent again")
        await asyncio.sleep(0.5)
    return f


async def unanswered_then_run(redis, conn, frame, pause_ms=3000):
    """frame (a hello, resume or login) is sent on conn while Redis holds writes for
    pause_ms: the adapter answers unavailable at 2 s, Redis runs it at pause_ms (1 s
    later: a give-up timer that fires late on a busy machine still comes first)."""
    pause(redis, pause_ms)
    t0 = time.monotonic()
    f = await answer(conn, frame)
    log(f"{conn.label}: {frame['type']}: {f.get('type')} {f.get('code', '')} after "
        f"{time.monotonic() - t0:.2f}s")
    assert f.get("type") == "error" and f.get("code") == "unavailable", (
        f"the {frame['type']} was not refused as unavailable: {f}")
    await asyncio.sleep(max(0.0, pause_ms / 1000 - (time.monotonic() - t0)) + 0.8)


async def go_available(conn):
    """A welcomed desktop asks for presence available: the ack or error it gets, or
    {"type": "closed", ...} when the connection closed first."""
    start = len(conn.frames)
    try:
        await conn.send({"type": "presence", "presence": "available", "id": "p1"})
        return await conn.wait_for(lambda f: f.get("type") in ("ack", "error")
                                   and f.get("id") == "p1", 10, "presence answer", start)
    except (websockets.exceptions.ConnectionClosed, Disconnected) as e:
        return {"type": "closed", "why": str(e)[:300]}


async def chat(d, agent_id):
    """An available agent and a customer it serves: (agent, customer)."""
    a = Agent(d.url, agent_id, add_agent(d, agent_id, agent_id.upper(), "en", 2))
    await a.login()
    await a.presence("available")
    c = Customer(d.url, "customer")
    await c.hello(language="en", name="Kim")
    await a.wait_item(lambda f: f.get("type") == "assigned", 10, "assignment")
    return a, c


@time_limit(120)
async def test_reload_during_redis_stall_abandons_connected_customer(env):
    """A customer reloads the page while Redis is slow; the first resume gets unavailable,
    the page sends it again on the same connection and is welcomed. ROUTING.md: a waiting
    chat is abandoned only when no connection of the customer is open. Was: the adapter
    reported the connection closed when the first resume went unanswered, and sent that
    report again after the resend; Redis ran it last, so the open, welcomed connection was
    taken for gone and the chat closed as abandoned chat.abandon_after_s later."""
    r = env.redis()
    d = env.daemon(r, "d1", STALL_CFG)
    c = Customer(d.url, "customer")
    await c.hello(language="en", name="Waiting")
    conv = c.conversation_id
    rc = r.client()
    await c.close()  # the reload: the old page's socket closes
    await wait_hash(rc, conv_key(conv), lambda h: h.get("left_ms"), 10, "left_ms set")
    conn = await Conn.open(d.url + "/ws/customer", "reloaded page")
    await until_welcomed(r, conn, {"type": "resume", "v": 1, "conversation_id": conv,
                                   "resume_token": c.resume_token}, 4750, 1.5)
    await asyncio.sleep(5 + 3)  # chat.abandon_after_s + slack
    cust = rc.cmd("SMEMBERS", conv_key(conv) + ":cust")
    h = rc.hgetall(conv_key(conv))
    closed = [f for f in conn.frames if f.get("type") == "event" and f.get("event") == "closed"]
    log(f"8 s later: connections {cust}, state {h.get('state')} ({h.get('close_reason')}), "
        f"left_ms {h.get('left_ms')}; the page's connection open: {not conn.closed}")
    assert not conn.closed
    assert cust, (f"the customer's open, welcomed connection is not among {conv}'s (Redis "
                  f"takes the customer for gone since {h.get('left_ms')})")
    assert h.get("state") != "closed", (
        f"the waiting chat of a connected customer was closed as {h.get('close_reason')}: "
        f"the customer saw {closed}")


@time_limit(120)
async def test_login_during_redis_stall_logs_agent_out(env):
    """A desktop logs in while Redis is slow; the login gets unavailable, is sent again on
    the same connection and is welcomed. It is then the agent's session. Was: the report
    of the first login's connection as closed ran after the resend, so the welcomed desktop
    was closed with `replaced` (no other login existed) and the agent went offline."""
    r = env.redis()
    d = env.daemon(r, "d1", STALL_CFG)
    token = add_agent(d, "st1", "Stall", "en", 2)
    conn = await Conn.open(d.url + "/ws/agent", "desktop")
    await until_welcomed(r, conn, {"type": "login", "v": 1, "agent_id": "st1",
                                   "token": token}, 4750, 1.5)
    await asyncio.sleep(0.5)
    f = await go_available(conn)
    await asyncio.sleep(6)
    rc = r.client()
    a = rc.hgetall(agent_key("st1"))
    log(f"presence available: {f}; 6 s later: session {a.get('session')!r} presence "
        f"{a.get('presence')}; desktop closed: {conn.closed} {conn.close_code} "
        f"{conn.close_reason!r}")
    assert f.get("type") == "ack", f"the welcomed desktop cannot set its presence: {f}"
    assert not conn.closed, (f"the welcomed desktop was closed ({conn.close_code} "
                             f"{conn.close_reason!r}) with no other login")
    assert a.get("session") and a.get("presence") == "available", (
        f"the agent whose desktop is logged in: {a}")


@time_limit(120)
async def test_resume_resent_after_stall_skips_messages(env):
    """A customer reloads while Redis is slow: the resume gets unavailable but Redis runs
    it, and the same resume sent again is welcomed. Every transcript item after its `after`
    must then reach the page. Was: the first resume's watch read on past the agent's
    replies written meanwhile while the adapter dropped them (not welcomed yet), and the
    resent resume kept that watch: the page never showed them, and its next resume asks
    only for what follows the last seq shown."""
    r = env.redis()
    d = env.daemon(r, "d1", STALL_CFG)
    a, c = await chat(d, "gap1")
    conv = c.conversation_id
    await a.reply(conv, "first answer", id="m0")
    m0 = await c.wait_item(lambda f: f.get("id") == "m0", 10, "m0")
    await c.close()  # the reload
    await a.reply(conv, "written while you reloaded 1", id="m1")
    await a.reply(conv, "written while you reloaded 2", id="m2")
    conn = await Conn.open(d.url + "/ws/customer", "reloaded page")
    # Redis holds writes a little longer than the adapter waits: the resume runs at 2.4 s,
    # after its `unavailable`; the page sends it again at 3.4 s
    await until_welcomed(r, conn, {"type": "resume", "v": 1, "conversation_id": conv,
                                   "resume_token": c.resume_token, "after": m0["seq"]},
                         2400, 1.4)
    await asyncio.sleep(1.0)
    await a.reply(conv, "and a later one", id="m3")
    try:  # (an item: it comes on its own schedule)
        await conn.wait_for(lambda f: f.get("id") == "m3", 10, "m3")
    except AssertionError:
        pass
    shown = []
    for f in conn.frames:
        if f.get("type") == "message" and f.get("id") not in shown:
            shown.append(f.get("id"))
    log(f"the reloaded page shows {shown}")
    assert shown[:3] == ["m1", "m2", "m3"], (
        f"the reloaded page shows {shown}, want m1, m2, m3: acked agent messages skipped")


@time_limit(120)
async def test_login_resent_after_stall_keeps_messages_in_order(env):
    """The desktop's side of the test above: its login is refused as unavailable but runs,
    and the same login sent again is welcomed. The customer's messages written meanwhile
    reach it, in order, before the ones written later (this one held before the fixes)."""
    r = env.redis()
    d = env.daemon(r, "d1", STALL_CFG)
    a, c = await chat(d, "ord9")
    await a.close()  # the desktop reloads
    await asyncio.sleep(0.5)
    await c.send("one", id="m1")
    await c.send("two", id="m2")
    conn = await Conn.open(d.url + "/ws/agent", "reloaded desktop")
    await until_welcomed(r, conn, {"type": "login", "v": 1, "agent_id": "ord9",
                                   "token": a.token}, 2400, 1.4)
    await asyncio.sleep(0.5)
    await c.send("three", id="m3")
    t1 = time.monotonic()
    got = []
    while time.monotonic() - t1 < 12 and len(got) < 3:
        got = []
        for f in conn.frames:
            if f.get("type") == "message" and f.get("id") not in got:
                got.append(f.get("id"))
        await asyncio.sleep(0.2)
    log(f"the reloaded desktop shows {got}; closed: {conn.closed} {conn.close_reason!r}")
    assert got[:3] == ["m1", "m2", "m3"], (
        f"the desktop got the customer's messages as {got}, want m1, m2, m3 in order")


@time_limit(120)
async def test_login_of_another_agent_after_unanswered_one_gets_its_items(env):
    """PROTOCOL.md: "A `hello` or `login` that failed with `unavailable` may be sent again on
    the same connection", and "`agent_id` ... are those of the login: members of later frames
    never change them"; a desktop gets its agent's items. A login of agent lx is answered
    unavailable (Redis slow) but runs; a login of agent ly is then sent on the same
    connection and welcomed. Was (the first version of the kept report): the report of lx's
    login waited for the connection's close, so the router kept delivering lx's inbox to
    the connection, ly's desktop now: ly's desktop was shown lx's customer's messages, and
    closed as `replaced` when lx logged in elsewhere (before that version: for as long as
    the next heartbeat took). The report now goes once ly is welcomed, the router drops
    lx's watch of the connection with its answer, and the adapter drops whatever of lx's
    inbox comes meanwhile."""
    r = env.redis()
    d = env.daemon(r, "d1", STALL_CFG)
    ax, cust = await chat(d, "lx")
    tx, ty = ax.token, add_agent(d, "ly", "Lyle", "en", 2)
    conv = cust.conversation_id
    await ax.close()
    rc = r.client()
    await wait_hash(rc, agent_key("lx"), lambda h: h.get("presence") == "offline", 10,
                    "lx offline after its desktop closed")
    conn = await Conn.open(d.url + "/ws/agent", "shared desktop")
    await unanswered_then_run(r, conn, {"type": "login", "v": 1, "agent_id": "lx",
                                        "token": tx})
    log(f"lx after its unanswered login ran: "
        f"{rc.cmd('HMGET', agent_key('lx'), 'session', 'presence')}")
    w = await answer(conn, {"type": "login", "v": 1, "agent_id": "ly", "token": ty})
    assert w.get("type") == "welcome" and w.get("agent_id") == "ly", w
    await cust.send("my card number is 4111", id="secret")
    await asyncio.sleep(2)
    leaked = [f for f in conn.frames if f.get("conversation_id") == conv]
    log(f"ly's desktop got {len(leaked)} frame(s) of lx's conversation: "
        f"{[(f.get('type'), f.get('text')) for f in leaked]}")
    env.expect(not leaked, f"ly's desktop was delivered lx's conversation {conv}: "
               f"{[(f.get('type'), f.get('text')) for f in leaked]}")
    # lx logs in on its own desktop again: ly's desktop must not be told `replaced`
    ax2 = Agent(d.url, "lx", tx, label="lx again")
    await ax2.login()
    await asyncio.sleep(2)
    log(f"ly's desktop closed: {conn.closed} {conn.close_code} {conn.close_reason!r}")
    env.expect(not conn.closed, f"ly's desktop was closed ({conn.close_code} "
               f"{conn.close_reason!r}) by a login of lx")
    assert not env.soft

@time_limit(120)
async def test_hello_unanswered_then_resume_of_another_chat_keeps_it_waiting(env):
    """ROUTING.md / PROTOCOL.md: a waiting chat whose customer has no connection open is
    closed as abandoned after chat.abandon_after_s. A page's hello (new chat A) is answered
    unavailable but runs; the page then resumes its earlier chat B on the same connection
    and is welcomed there. Chat A has no page: nobody was ever welcomed to it. Was (the first
    version of the kept report): A's report waited for the close of B's connection, so A
    waited, then was given to an agent, as if its customer were there, for as long as B's
    page stayed open."""
    r = env.redis()
    d = env.daemon(r, "d1", STALL_CFG)
    b = Customer(d.url, "chat B")
    await b.hello(language="en", name="Bea")
    await b.close()
    conn = await Conn.open(d.url + "/ws/customer", "page")
    key = "k" * 8 + "0123456789abcdef"
    await unanswered_then_run(r, conn, {"type": "hello", "v": 1, "language": "en",
                                        "name": "Ann", "key": key})
    w = await answer(conn, {"type": "resume", "v": 1, "conversation_id": b.conversation_id,
                            "resume_token": b.resume_token})
    assert w.get("type") == "welcome" and w.get("conversation_id") == b.conversation_id, w
    rc = r.client()

    def conv_keys():
        return [k for k in rc.keys("omr:{default}:conv:*") if k.count(":") == 3]
    await poll(lambda: len(conv_keys()) >= 2, 10)  # (Redis runs hello A once writes resume)
    convs = conv_keys()
    a_key = [k for k in convs if not k.endswith(b.conversation_id)]
    assert len(a_key) == 1, f"the hello's chat A was not created: {convs}"
    a_key = a_key[0]
    await asyncio.sleep(5 + 4)
    await poll(lambda: rc.hgetall(a_key).get("state") == "closed", 10)  # (at a later tick)
    h = rc.hgetall(a_key)
    cust = rc.cmd("SMEMBERS", a_key + ":cust")
    log(f"chat A 9 s later: state {h.get('state')} ({h.get('close_reason')}), connections "
        f"{cust}; the page (on chat B) open: {not conn.closed}")
    assert h.get("state") == "closed", (
        f"chat A, which no page was welcomed to, still {h.get('state')} with connections "
        f"{cust} (B's page's connection counts as A's customer)")

@time_limit(120)
async def test_unavailable_hello_can_be_sent_again_with_default_timeouts(env):
    """PROTOCOL.md: "A `hello` or `login` that failed with `unavailable` may be sent again on
    the same connection"; "a connection must send `hello`/`resume`/`login` within
    `websocket.auth_timeout_ms` (not enforced while that request is being answered)". With the
    shipped defaults (bus.ack_timeout_ms 2000 x bus.max_attempts 5 = 10 s,
    websocket.auth_timeout_ms 10000) a hello unanswered while Redis holds writes is answered
    unavailable at 10 s. Was: the auth timeout, counted from the connection's open, closed
    the connection within 100 ms: there was no time to send it again."""
    r = env.redis()
    d = env.daemon(r, "d1", {"redis": {"ping_timeout_ms": 30000},
                             "bus": {"ack_timeout_ms": 2000, "max_attempts": 5}})
    conn = await Conn.open(d.url + "/ws/customer", "page")
    pause(r, 11500)
    t0 = time.monotonic()
    f = await answer(conn, {"type": "hello", "v": 1, "language": "en", "name": "Ann",
                            "key": "resend-key-0123456789"})
    log(f"hello: {f} after {time.monotonic() - t0:.2f}s")
    assert f.get("code") == "unavailable", f
    await asyncio.sleep(0.5)  # a client resending at once (the chat page waits 3 s)
    try:
        f2 = await answer(conn, {"type": "hello", "v": 1, "language": "en", "name": "Ann",
                                 "key": "resend-key-0123456789"}, timeout=20)
    except (Disconnected, websockets.exceptions.ConnectionClosed) as e:
        f2 = {"closed": str(e)[:300]}
    errs = [x for x in conn.frames if x.get("type") == "error"]
    log(f"resent hello: {f2}; errors {errs}; closed {conn.closed} {conn.close_reason!r}")
    assert f2.get("type") == "welcome", (
        f"the hello sent again on its connection 0.5 s after `unavailable` was not welcomed: "
        f"{f2}, errors {errs}, closed {conn.close_code} {conn.close_reason!r}")

@time_limit(150)
async def test_kept_reports_at_drain_flood_and_close(env):
    """Kept reports (ws_conn_t.unanswered) of every kind end cleanly: the connection closes
    itself, is refused for flood, or is closed by the drain (SIGTERM); the daemon exits 0
    with no sanitizer (leak) report (this one held)."""
    r = env.redis()
    d = env.daemon(r, "d1", STALL_CFG)
    t = add_agent(d, "kx", "Kay", "en", 2)
    t2 = add_agent(d, "ky", "Kyo", "en", 2)
    held = []
    # a customer that keeps its connection over the drain
    c1 = await Conn.open(d.url + "/ws/customer", "c1")
    c2 = await Conn.open(d.url + "/ws/customer", "c2 (floods)")
    c3 = await Conn.open(d.url + "/ws/customer", "c3 (closes)")
    a1 = await Conn.open(d.url + "/ws/agent", "a1")
    a2 = await Conn.open(d.url + "/ws/agent", "a2 (two agents)")
    pause(r, 2400)
    frames = [(c1, {"type": "hello", "v": 1, "language": "en", "key": "drain-key-0123456789"}),
              (c2, {"type": "hello", "v": 1, "language": "en", "key": "flood-key-0123456789"}),
              (c3, {"type": "hello", "v": 1, "language": "en", "key": "close-key-0123456789"}),
              (a1, {"type": "login", "v": 1, "agent_id": "kx", "token": t}),
              (a2, {"type": "login", "v": 1, "agent_id": "ky", "token": t2})]
    got = await asyncio.gather(*(answer(c, f) for c, f in frames))
    log(f"answers: {[g.get('code') for g in got]}")
    await asyncio.sleep(1.5)
    # a2: a second unanswered login of another agent, then one welcomed
    pause(r, 2400)
    f = await answer(a2, {"type": "login", "v": 1, "agent_id": "kx", "token": t})
    log(f"a2 second login: {f}")
    await asyncio.sleep(1.5)
    for _ in range(200):
        try:
            await c2.send({"type": "ping"})
        except websockets.exceptions.ConnectionClosed:
            break
    await c3.close()
    await asyncio.sleep(2)
    rc = r.client()
    a_conv = [k for k in rc.keys("omr:{default}:conv:*") if k.count(":") == 3]
    log(f"conversations: {a_conv}; c2 closed {c2.closed} {c2.close_reason!r}")
    d.stop()
    held.append(d)
    await asyncio.sleep(0.5)
    for k in a_conv:
        log(f"{k}: {rc.cmd('HMGET', k, 'state', 'close_reason', 'left_ms')} "
            f"cust {rc.cmd('SMEMBERS', k + ':cust')}")


def cfg(**more):
    """STALL_CFG with more options, section by section."""
    out = {k: dict(v) for k, v in STALL_CFG.items()}
    for sec, opts in more.items():
        out.setdefault(sec, {}).update(opts)
    return out


def hello(key, name="Ann"):
    return {"type": "hello", "v": 1, "language": "en", "name": name, "key": key}


KA, KB, KY = "keyA-0123456789abcdef", "keyB-0123456789abcdef", "keyY-0123456789abcdef"


@time_limit(90)
async def test_hello_after_a_kept_report_refused_with_room(env):
    """PROTOCOL.md: when bus.max_pending requests are in flight the server stops reading;
    "Nothing is refused for that". bus.max_pending 1: a page's hello A goes unanswered, then
    the page starts chat B on the same connection with Redis fine and nothing in flight.
    Was (a second version of the kept report, sent before a request for someone else): A's
    report took the one slot and hello B was refused `unavailable`."""
    r = env.redis()
    d = env.daemon(r, "d1", cfg(bus={"max_pending": 1}))
    x = await Conn.open(d.url + "/ws/customer", "page X")
    await unanswered_then_run(r, x, hello(KA))
    f = await answer(x, hello(KB, "Bea"))
    log(f"hello B with Redis up and an empty bus: {f}")
    assert f.get("type") == "welcome", (
        f"hello B, sent with Redis up and no request in flight, was refused: {f}")


@time_limit(90)
async def test_login_held_after_a_kept_report_gets_stuck(env):
    """Backpressure: a login read while the bus is full waits and goes when a request is
    answered. Desktop X's login of lx goes unanswered; Redis stalls again, desktop Y's login
    fills the bus (max_pending 1) and X's login of ly is held. Was (the same second version):
    when released, lx's report took the slot, the login was refused `unavailable` and the
    connection stayed "authentication in progress" for good: every login sent again was
    refused, and the auth timeout never closed it. Now it is welcomed (or answered
    unavailable and welcomed when sent again), and lx's late login leaves no trace."""
    r = env.redis()
    d = env.daemon(r, "d1", cfg(bus={"max_pending": 1}))
    tx = add_agent(d, "lx", "Lexi", "en", 2)
    ty = add_agent(d, "ly", "Lyle", "en", 2)
    tz = add_agent(d, "lz", "Liz", "en", 2)
    x = await Conn.open(d.url + "/ws/agent", "desktop X")
    y = await Conn.open(d.url + "/ws/agent", "desktop Y")
    await unanswered_then_run(r, x, {"type": "login", "v": 1, "agent_id": "lx", "token": tx})
    pause(r, 2400)
    await y.send({"type": "login", "v": 1, "agent_id": "lz", "token": tz})
    await asyncio.sleep(0.3)
    login = {"type": "login", "v": 1, "agent_id": "ly", "token": ty}
    answers = [await answer(x, login)]
    while answers[-1].get("type") != "welcome" and len(answers) < 4:
        await asyncio.sleep(1.5)
        answers.append(await answer(x, login))
    log(f"X's login of ly (held while Y's filled the bus), then sent again: {answers}")
    assert answers[-1].get("type") == "welcome", (
        f"desktop X can no longer log in on its connection: {answers}")
    await asyncio.sleep(1.0)
    rc = r.client()
    lx = rc.cmd("HMGET", agent_key("lx"), "session", "presence")
    assert not lx[0], f"lx, whose login on X went unanswered, still holds X: {lx}"


@time_limit(120)
async def test_early_report_sent_again_after_the_welcome_abandons(env):
    """A waiting chat is abandoned only when no connection of its customer is open. One
    connection: hello A unanswered; hello B unanswered; hello A again, welcomed. Was (the
    same second version): A's report, sent before hello B, was sent again at each give-up,
    and its last copy ran after the welcomed hello A: the live connection was taken for
    gone and the waiting chat closed as abandoned while its page was open."""
    r = env.redis()
    d = env.daemon(r, "d1", STALL_CFG)
    x = await Conn.open(d.url + "/ws/customer", "page")
    pause(r, 6600)
    t0 = time.monotonic()
    fa = await answer(x, hello(KA))
    fb = await answer(x, hello(KB, "Bea"))
    await asyncio.sleep(max(0.0, 5.0 - (time.monotonic() - t0)))
    fa2 = await sent_until_welcomed(x, hello(KA))
    log(f"hello A {fa.get('code')}, hello B {fb.get('code')}, hello A again {fa2.get('type')}"
        f" at {time.monotonic() - t0:.2f}s")
    assert fa.get("code") == "unavailable" and fb.get("code") == "unavailable", (fa, fb)
    assert fa2.get("type") == "welcome", f"hello A again not welcomed: {fa2}"
    conv = fa2["conversation_id"]
    rc = r.client()
    await asyncio.sleep(5 + 3)
    h = rc.hgetall(conv_key(conv))
    cust = rc.cmd("SMEMBERS", conv_key(conv) + ":cust")
    log(f"8 s later: chat A {h.get('state')} ({h.get('close_reason')}), connections {cust}")
    assert not x.closed
    assert cust and h.get("state") != "closed", (
        f"chat A, welcomed on an open connection, is {h.get('state')} "
        f"({h.get('close_reason')}) with connections {cust}")


@time_limit(120)
async def test_early_login_report_sent_again_after_the_welcome(env):
    """The desktop's side of the test above: login lx unanswered, login ly unanswered,
    login lx again, welcomed. Was: a copy of lx's early report ran after the welcome, set
    the welcomed desktop's agent offline and stopped the router delivering to it."""
    r = env.redis()
    d = env.daemon(r, "d1", STALL_CFG)
    tx = add_agent(d, "lx", "Lexi", "en", 2)
    ty = add_agent(d, "ly", "Lyle", "en", 2)
    x = await Conn.open(d.url + "/ws/agent", "desktop")
    lx = {"type": "login", "v": 1, "agent_id": "lx", "token": tx}
    pause(r, 6600)
    t0 = time.monotonic()
    fa = await answer(x, lx)
    fb = await answer(x, {"type": "login", "v": 1, "agent_id": "ly", "token": ty})
    await asyncio.sleep(max(0.0, 5.0 - (time.monotonic() - t0)))
    fa2 = await sent_until_welcomed(x, lx)
    log(f"login lx {fa.get('code')}, login ly {fb.get('code')}, login lx again "
        f"{fa2.get('type')} at {time.monotonic() - t0:.2f}s")
    assert fa2.get("type") == "welcome", fa2
    await asyncio.sleep(1.0)
    f = await go_available(x)
    await asyncio.sleep(1.0)
    rc = r.client()
    a = rc.hgetall(agent_key("lx"))
    log(f"presence available: {f}; lx: session {a.get('session')!r} presence "
        f"{a.get('presence')} ({a.get('reason')})")
    assert f.get("type") == "ack" and a.get("session") and a.get("presence") == "available", (
        f"the welcomed desktop of lx: presence answer {f}, agent {a.get('presence')} "
        f"({a.get('reason')}) session {a.get('session')!r}")


@time_limit(120)
async def test_many_unanswered_hellos_on_one_connection(env):
    """A page names ten chats on one connection while Redis is away (a broken or hostile
    client): the connection keeps at most eight reports (the oldest goes at once); every
    chat, none of which was welcomed, is abandoned once the connection closes."""
    r = env.redis()
    d = env.daemon(r, "d1", cfg(bus={"ack_timeout_ms": 200, "max_attempts": 1}))
    x = await Conn.open(d.url + "/ws/customer", "page")
    pause(r, 4000)
    for i in range(10):
        f = await answer(x, hello(f"many-{i:02d}-0123456789abcdef"))
        assert f.get("code") == "unavailable", f
    await asyncio.sleep(4.5)  # Redis ran them all
    await x.close()
    rc = r.client()

    def conv_keys():
        return [k for k in rc.keys("omr:{default}:conv:*") if k.count(":") == 3]
    await poll(lambda: len(conv_keys()) >= 10, 10)
    convs = conv_keys()
    assert len(convs) == 10, convs
    await asyncio.sleep(5 + 3)  # chat.abandon_after_s + slack

    def states_now():
        return sorted((rc.cmd("HMGET", k, "state", "close_reason")) for k in convs)
    await poll(lambda: all(st == ["closed", "abandoned"] for st in states_now()), 10)
    states = states_now()
    log(f"the ten chats: {states}")
    assert all(st == ["closed", "abandoned"] for st in states), states


if __name__ == "__main__":
    run_tests([test_reload_during_redis_stall_abandons_connected_customer,
               test_login_during_redis_stall_logs_agent_out,
               test_resume_resent_after_stall_skips_messages,
               test_login_resent_after_stall_keeps_messages_in_order,
               test_login_of_another_agent_after_unanswered_one_gets_its_items,
               test_hello_unanswered_then_resume_of_another_chat_keeps_it_waiting,
               test_unavailable_hello_can_be_sent_again_with_default_timeouts,
               test_kept_reports_at_drain_flood_and_close,
               test_hello_after_a_kept_report_refused_with_room,
               test_login_held_after_a_kept_report_gets_stuck,
               test_early_report_sent_again_after_the_welcome_abandons,
               test_early_login_report_sent_again_after_the_welcome,
               test_many_unanswered_hellos_on_one_connection])
