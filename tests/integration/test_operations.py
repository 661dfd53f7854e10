"""test_operations.py - operational scenarios of a contact-center site.

Real redis-server, real omnirouterd instances, real websocket clients:
an instance SIGKILLed with desktops, customers and open offers on it; an
instance restarted (SIGTERM drain) mid-chat; a SIGHUP that changes queues
while conversations wait; Redis restarted (appendonly yes) under both
instances.
"""

import asyncio
import json
import os
import signal
import subprocess
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from omr_harness import (Agent, Customer, Disconnected, RedisServer, Resp, add_agent,  # noqa: E402
                         agent_key, conv_key, log, poll, retry, run_tests, tail,
                         time_limit, wait_hash)
import websockets.exceptions  # noqa: E402

P = "omr:{default}"

FAST = {"routing": {"tick_ms": 50, "heartbeat_timeout_s": 3, "agent_grace_s": 2},
        "redis": {"ping_interval_ms": 200, "ping_timeout_ms": 1000,
                  "reconnect_min_ms": 50, "reconnect_max_ms": 300},
        "bus": {"ack_timeout_ms": 500, "max_attempts": 40}}

QUEUES_OFFERS = """
queues:
  - name: offers
    auto_accept: false
    offer_timeout_s: 30
"""

QUEUES_AUTO = """
queues:
  - name: general
"""


def merged(base, extra):
    out = {k: dict(v) for k, v in base.items()}
    for sec, opts in (extra or {}).items():
        out.setdefault(sec, {}).update(opts)
    return out


def make_daemon(env, r, name, queues, config=None, start=True):
    d = env.daemon(r, name=name, config=merged(FAST, config), start=False)
    with open(d.cfg_path, "a") as f:
        f.write(queues)
    return d.start() if start else d


def set_queues(d, queues):
    with open(d.cfg_path) as f:
        text = f.read()
    head = text.split("\nqueues:", 1)[0]
    with open(d.cfg_path, "w") as f:
        f.write(head.rstrip("\n") + "\n" + queues)


class AofRedis(RedisServer):
    """redis-server with appendonly yes, restartable on the same port/dir."""

    def start(self, timeout=10):
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "yes", "--appendfsync", "always",
             "--dir", self.dir, "--logfile", self.logpath, "--daemonize", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"redis-server exited:\n{tail(self.logpath)}")
            try:
                c = Resp(self.port, timeout=1)
                try:
                    if c.cmd("PING") == "PONG":
                        return self
                finally:
                    c.close()
            except Exception:  # noqa: BLE001  (LOADING, refused)
                time.sleep(0.05)
        raise AssertionError("redis-server did not answer")


def aof_redis(env):
    r = AofRedis(env, "redis")
    env.redises.append(r)
    return r.start()




async def resume_on(cust, url, timeout=20):
    cust.base_url = url
    return await retry(lambda: cust.resume(timeout=5), f"{cust.label}: resume on {url}", timeout)


async def login_retry(agent, url, timeout=20):
    agent.base_url = url
    return await retry(lambda: agent.login(timeout=5), f"{agent.label}: log in on {url}", timeout)


def agent_state(rc, aid):
    h = rc.hgetall(agent_key(aid))
    return h, sorted(rc.cmd("SMEMBERS", agent_key(aid) + ":convs") or [])


def log_events(rc, conv):
    return [(f.get("kind"), f.get("event") or f.get("msgid"), f.get("reason"))
            for _, f in rc.xrange(conv_key(conv) + ":log")]


# --------------------------------------------------------------------------
# 1. SIGKILL with an assigned chat and an open offer on the dead instance.

@time_limit(60)
async def test_sigkill_requeues_assigned_and_offered(env):
    r = env.redis()
    d1 = make_daemon(env, r, "d1", QUEUES_OFFERS)
    d2 = make_daemon(env, r, "d2", QUEUES_OFFERS)
    ta = add_agent(d1, "a1", "Alex", "en", 2)
    tb = add_agent(d1, "b1", "Bea", "en", 2)
    a1 = Agent(d1.url, "a1", ta)
    await a1.login()
    await a1.presence("available")
    c1 = Customer(d1.url, "cust1")
    await c1.hello(language="en", name="One")
    off1 = await a1.wait_item(lambda f: f.get("type") == "offer", 10, "offer 1")
    r_ = await a1.accept(off1["conversation_id"])
    assert r_.get("type") == "ack", r_
    await c1.send("hello from one", id="m1")
    await a1.wait_item(lambda f: f.get("type") == "message" and f.get("id") == "m1", 10, "m1")
    c2 = Customer(d2.url, "cust2")
    await c2.hello(language="en", name="Two")
    await a1.wait_item(lambda f: f.get("type") == "offer"
                       and f.get("conversation_id") == c2.conversation_id, 10, "offer 2")
    await asyncio.sleep(0.2)  # the desktop's acks reach Redis
    rc = r.client()

    d1.kill()
    env.daemons.remove(d1)
    d1.scan_logs()
    # the customer of the dead instance comes back on d2 and keeps writing
    await resume_on(c1, d2.url)
    await c1.send("still there?", id="m2")
    b1 = Agent(d2.url, "b1", tb)
    await b1.login()
    await b1.presence("available")
    # heartbeat 3 s + grace 2 s: both go to b1 (c1 as an offer: its queue offers)
    o1 = await b1.wait_item(lambda f: f.get("type") == "offer"
                            and f.get("conversation_id") == c1.conversation_id, 20,
                            "c1 offered to b1 after a1 was lost")
    o2 = await b1.wait_item(lambda f: f.get("type") == "offer"
                            and f.get("conversation_id") == c2.conversation_id, 20,
                            "c2 offered to b1 after a1 was lost")
    for o in (o1, o2):
        r_ = await b1.accept(o["conversation_id"])
        assert r_.get("type") == "ack", r_
    await b1.wait_item(lambda f: f.get("type") == "message" and f.get("id") == "m2"
                       and f.get("conversation_id") == c1.conversation_id, 10,
                       "m2 (sent after the kill) at b1")
    got = [f.get("id") for f in b1.messages(c1.conversation_id)]
    env.expect(got.count("m1") == 1 and got.count("m2") == 1,
               f"b1 should see m1 and m2 once each (by seq): {got}")
    await c1.wait_item(lambda f: f.get("event") == "requeued", 5, "requeued for c1")
    # c2 was only offered to a1: its customer never had that agent, and is not told one
    # was lost (PROTOCOL.md, requeued); it was offered to b1 above all the same
    env.expect(not [f for f in c2.conn.frames if f.get("event") == "requeued"],
               f"c2, only offered to the lost agent, was told requeued: {c2.conn.frames}")
    h, convs = agent_state(rc, "a1")
    env.expect((h.get("presence"), h.get("reason"), h.get("load"), convs)
               == ("offline", "lost", "0", []), f"a1 after loss: {h} convs={convs}")
    env.expect(h.get("missed_offers", "0") == "0",
               f"a lost agent's withdrawn offer must not count as missed: {h}")
    h, convs = agent_state(rc, "b1")
    env.expect(convs == sorted([c1.conversation_id, c2.conversation_id]) and h["load"] == "2",
               f"b1 holds both: {h} {convs}")
    await b1.reply(c1.conversation_id, "b1 here")
    await c1.wait_item(lambda f: f.get("type") == "message" and f.get("text") == "b1 here", 10,
                       "b1's reply at c1")
    for c in (c1, c2):
        await c.close()
    await b1.close()
    rc.close()


# --------------------------------------------------------------------------
# 2. SIGKILL, then the agent logs in again on the other instance in grace.

@time_limit(60)
async def test_sigkill_relogin_in_grace_keeps_work(env):
    r = env.redis()
    cfg = {"routing": {"agent_grace_s": 8}}
    d1 = make_daemon(env, r, "d1", QUEUES_OFFERS, cfg)
    d2 = make_daemon(env, r, "d2", QUEUES_OFFERS, cfg)
    ta = add_agent(d1, "a1", "Alex", "en", 2)
    a1 = Agent(d1.url, "a1", ta)
    await a1.login()
    await a1.presence("available")
    c1 = Customer(d1.url, "cust1")
    await c1.hello(language="en")
    off1 = await a1.wait_item(lambda f: f.get("type") == "offer", 10, "offer 1")
    assert (await a1.accept(off1["conversation_id"])).get("type") == "ack"
    c2 = Customer(d1.url, "cust2")
    await c2.hello(language="en")
    await a1.wait_item(lambda f: f.get("type") == "offer"
                       and f.get("conversation_id") == c2.conversation_id, 10, "offer 2")
    await asyncio.sleep(0.2)
    rc = r.client()
    d1.kill()
    env.daemons.remove(d1)
    d1.scan_logs()
    await wait_hash(rc, agent_key("a1"), lambda h: h.get("reason") == "lost", 10, "a1 lost")
    # the agent reloads the desktop against d2, within grace
    a1b = Agent(d2.url, "a1", ta, label="a1 again")
    w = await a1b.login()
    log(f"re-login welcome: {w}")
    await resume_on(c1, d2.url)
    await resume_on(c2, d2.url)
    await c1.send("after the kill", id="k1")
    await a1b.wait_item(lambda f: f.get("type") == "message" and f.get("id") == "k1", 10,
                        "k1 at the re-logged desktop")
    r_ = await a1b.accept(c2.conversation_id)
    env.expect(r_.get("type") == "ack", f"accepting the open offer after re-login: {r_}")
    # past grace + a heartbeat: nothing requeued, the new desktop stays online
    await asyncio.sleep(10)
    h, convs = agent_state(rc, "a1")
    env.expect(h.get("presence") != "offline", f"a1 re-logged in stays online: {h}")
    env.expect(convs == sorted([c1.conversation_id, c2.conversation_id]),
               f"a1 keeps both: {convs}")
    for c in (c1, c2):
        evs = [e for e in log_events(rc, c.conversation_id) if e[1] == "requeued"]
        env.expect(not evs, f"{c.label} requeued although the agent came back: {evs}")
    env.expect(not a1b.revoked(), f"nothing revoked: {a1b.revoked()}")
    for c in (c1, c2):
        await c.close()
    await a1b.close()
    rc.close()


# --------------------------------------------------------------------------
# 2b. SIGKILL, the only agent who can serve the chat comes back after grace.

@time_limit(60)
async def test_lost_agent_back_after_grace_can_take_its_chat_again(env):
    r = env.redis()
    d1 = make_daemon(env, r, "d1", QUEUES_AUTO)
    d2 = make_daemon(env, r, "d2", QUEUES_AUTO)
    ta = add_agent(d1, "a1", "Alex", "en", 2)
    a1 = Agent(d1.url, "a1", ta)
    await a1.login()
    await a1.presence("available")
    c = Customer(d2.url)
    await c.hello(language="en")
    await a1.wait_item(lambda f: f.get("type") == "assigned", 10, "assigned")
    await asyncio.sleep(0.3)  # the desktop's ack reaches Redis
    rc = r.client()
    d1.kill()
    env.daemons.remove(d1)
    d1.scan_logs()
    await c.wait_item(lambda f: f.get("event") == "requeued", 15, "requeued")
    # the only agent of the site logs in again (on d2) and is available
    a1b = Agent(d2.url, "a1", ta, label="a1 again")
    await a1b.login()
    await a1b.presence("available")
    try:
        await wait_hash(rc, conv_key(c.conversation_id),
                         lambda h: h.get("state") == "assigned" and h.get("agent") == "a1", 8,
                         "its requeued chat back (it is the only agent)")
    except AssertionError as e:
        h = rc.hgetall(conv_key(c.conversation_id))
        dec = rc.cmd("HGETALL", conv_key(c.conversation_id) + ":decl")
        raise AssertionError(f"{e}\nconversation: state={h.get('state')} queue={h.get('queue')} "
                             f"last_decline={h.get('last_decline')} declined={dec}") from None
    await c.close()
    await a1b.close()
    rc.close()


QUEUES_STICKY = """
queues:
  - name: general
    sticky_window_s: 40
"""


@time_limit(60)
async def test_sticky_wait_for_lost_agent_ends(env):
    """A returning customer waits for the agent who served it (busy). That
    agent's instance dies: the customer should not keep waiting for an
    offline agent for the rest of the sticky window while b1 is free."""
    r = env.redis()
    d1 = make_daemon(env, r, "d1", QUEUES_STICKY)
    d2 = make_daemon(env, r, "d2", QUEUES_STICKY)
    ta = add_agent(d1, "a1", "Alex", "en", 1)
    tb = add_agent(d1, "b1", "Bea", "en", 2)
    a1 = Agent(d1.url, "a1", ta)
    await a1.login()
    await a1.presence("available")
    x = Customer(d2.url, "x")
    await x.hello(language="en", customer_id="k1")
    await a1.wait_item(lambda f: f.get("type") == "assigned"
                       and f.get("conversation_id") == x.conversation_id, 10, "x assigned")
    await a1.close_conv(x.conversation_id)
    await x.close()
    y = Customer(d2.url, "y")
    await y.hello(language="en")
    await a1.wait_item(lambda f: f.get("type") == "assigned"
                       and f.get("conversation_id") == y.conversation_id, 10, "y assigned")
    b1 = Agent(d2.url, "b1", tb)
    await b1.login()
    await b1.presence("available")
    x2 = Customer(d2.url, "x returns")
    w = await x2.hello(language="en", customer_id="k1")
    assert w["state"] == "queued", w
    rc = r.client()
    h = rc.hgetall(conv_key(x2.conversation_id))
    assert h.get("pref_agent") == "a1", h
    d1.kill()
    env.daemons.remove(d1)
    d1.scan_logs()
    t0 = time.monotonic()
    await wait_hash(rc, agent_key("a1"), lambda h: h.get("presence") == "offline", 10,
                     "a1 lost")
    try:
        await wait_hash(rc, conv_key(x2.conversation_id),
                         lambda h: h.get("state") == "assigned", 10,
                         "the returning customer routed once its agent is offline")
    except AssertionError as e:
        h = rc.hgetall(conv_key(x2.conversation_id))
        raise AssertionError(f"{e}\n{time.monotonic() - t0:.1f}s after the kill: state="
                             f"{h.get('state')} pref_agent={h.get('pref_agent')} while b1 is "
                             f"available with load {rc.hgetall(agent_key('b1')).get('load')}"
                             ) from None
    for c in (y, x2):
        await c.close()
    await b1.close()
    rc.close()


# --------------------------------------------------------------------------
# 3. SIGTERM drain and restart mid-chat: customers resume, the agent logs in
#    again, nothing acked is lost or stored twice, nothing is requeued.

@time_limit(60)
async def test_sigterm_restart_mid_chat(env):
    r = env.redis()
    cfg = {"routing": {"agent_grace_s": 15}}
    d1 = make_daemon(env, r, "d1", QUEUES_AUTO, cfg)
    ta = add_agent(d1, "a1", "Alex", "en", 3)
    a1 = Agent(d1.url, "a1", ta)
    await a1.login()
    await a1.presence("available")
    custs = [Customer(d1.url, f"cust{i}") for i in range(3)]
    for c in custs:
        await c.hello(language="en")
    acked = {c.label: [] for c in custs}
    stop = asyncio.Event()

    async def chatter(c):
        i = 0
        while not stop.is_set():
            i += 1
            mid = f"{c.label}-m{i}"
            while True:
                try:
                    r_ = await c.conn.request({"type": "message", "id": mid,
                                               "text": f"text {mid}"}, timeout=3)
                except (Disconnected, websockets.exceptions.ConnectionClosed, AssertionError):
                    if c.conn.closed:
                        await resume_on(c, d1.url, 30)
                    else:
                        # Closing but not closed yet (a send fails at once): yield,
                        # or this loop spins and the reader that closes it never runs.
                        await asyncio.sleep(0.05)
                    continue
                if r_.get("type") == "ack":
                    acked[c.label].append(mid)
                    break
                if r_.get("code") == "unavailable":
                    await asyncio.sleep(0.1)
                    continue
                raise AssertionError(f"{mid} refused: {r_}")
            await asyncio.sleep(0.05)

    tasks = [asyncio.ensure_future(chatter(c)) for c in custs]
    await asyncio.sleep(1.0)
    await asyncio.to_thread(d1.stop)
    await asyncio.sleep(0.5)
    await asyncio.to_thread(d1.start)
    a1b = Agent(d1.url, "a1", ta, label="a1 after restart")
    await login_retry(a1b, d1.url)
    await a1b.presence("available")
    await asyncio.sleep(2.0)
    stop.set()
    await asyncio.gather(*tasks)
    rc = r.client()
    for c in custs:
        want = acked[c.label]
        entries = [f.get("msgid") for _, f in rc.xrange(conv_key(c.conversation_id) + ":log")
                   if f.get("kind") == "message"]
        env.expect(entries == want, f"{c.label}: log {entries} != acked {want}")

        def shown(c=c):
            return list(dict.fromkeys(f.get("id") for f in a1.messages(c.conversation_id)
                                      + a1b.messages(c.conversation_id)))
        # (the last messages acked just before the stop reach the agent through its inbox,
        # on their own schedule)
        await poll(lambda: set(want) <= set(shown()), 10)
        seen = shown()
        missing = [m for m in want if m not in seen]
        env.expect(not missing, f"{c.label}: agent never got {missing}")
        evs = [e for e in log_events(rc, c.conversation_id) if e[0] == "event"]
        env.expect([e[1] for e in evs] == ["assigned"],
                   f"{c.label}: events after restart: {evs}")
    h, convs = agent_state(rc, "a1")
    env.expect(len(convs) == 3 and h["presence"] == "available", f"a1: {h} {convs}")
    log(f"acked per customer: { {k: len(v) for k, v in acked.items()} }")
    for c in custs:
        await c.close()
    await a1b.close()
    rc.close()


# --------------------------------------------------------------------------
# 4. SIGHUP that removes a queue with waiting work and adds a ladder step.

QUEUES_ES = """
queues:
  - name: spanish
    languages: [es]
  - name: general
"""

QUEUES_ES_REMOVED = """
queues:
  - name: general
    steps:
      - after_s: 1
        languages: [en]
"""


@time_limit(60)
async def test_sighup_removes_queue_with_waiting_work(env):
    r = env.redis()
    d1 = make_daemon(env, r, "d1", QUEUES_ES)
    d2 = make_daemon(env, r, "d2", QUEUES_ES)
    ta = add_agent(d1, "a1", "Alex", "en", 2)
    a1 = Agent(d2.url, "a1", ta)
    await a1.login()
    await a1.presence("available")
    c = Customer(d1.url, "es customer")
    w = await c.hello(language="es-MX")
    assert w["state"] == "queued", w
    await c.send("hola", id="m1")
    rc = r.client()
    h = rc.hgetall(conv_key(c.conversation_id))
    assert h["queue"] == "spanish", h
    # both instances get the new file (rolling reload: d1 first)
    for d in (d1, d2):
        set_queues(d, QUEUES_ES_REMOVED)
    d1.proc.send_signal(signal.SIGHUP)
    got = await a1.wait_item(lambda f: f.get("type") == "assigned", 10,
                             "the waiting Spanish chat, via general's new English step")
    assert got["conversation_id"] == c.conversation_id, got
    await a1.wait_item(lambda f: f.get("type") == "message" and f.get("id") == "m1", 5, "m1")
    h = rc.hgetall(conv_key(c.conversation_id))
    env.expect((h["queue"], h["state"], h["agent"]) == ("general", "assigned", "a1"), h)
    d2.proc.send_signal(signal.SIGHUP)
    await asyncio.sleep(1)
    leftovers = rc.keys(P + ":wait:spanish*") + rc.keys(P + ":waitlangs:spanish*")
    env.expect(not leftovers, f"the removed queue left keys: {leftovers}")
    queued = rc.cmd("SMEMBERS", P + ":queued")
    env.expect(not queued, f"queued set after assignment: {queued}")
    await c.close()
    await a1.close()
    rc.close()


QUEUES_ES_OFFER = """
queues:
  - name: es-old
    languages: [es]
    auto_accept: false
    offer_timeout_s: 30
  - name: general
"""

QUEUES_ES_OFFER_RENAMED = """
queues:
  - name: es-new
    languages: [es]
    auto_accept: false
    offer_timeout_s: 30
    max_wait_s: 600
  - name: general
"""


@time_limit(60)
async def test_sighup_renames_queue_while_offer_open(env):
    """A Spanish chat is offered (queue es-old) when a reload replaces es-old
    by es-new (same match). The agent rejects: the chat should be routed by
    the new rules (es-new, which offers), not dropped into the last queue."""
    r = env.redis()
    d1 = make_daemon(env, r, "d1", QUEUES_ES_OFFER)
    ta = add_agent(d1, "a1", "Alex", "es", 2)
    tb = add_agent(d1, "b1", "Bea", "es", 2)
    a1 = Agent(d1.url, "a1", ta)
    await a1.login()
    await a1.presence("available")
    c = Customer(d1.url)
    await c.hello(language="es")
    await a1.wait_item(lambda f: f.get("type") == "offer", 10, "offer")
    set_queues(d1, QUEUES_ES_OFFER_RENAMED)
    d1.proc.send_signal(signal.SIGHUP)
    rc = r.client()
    deadline = time.monotonic() + 5
    while "es-new" not in (rc.cmd("GET", P + ":rules") or ""):
        assert time.monotonic() < deadline, "rules not reloaded"
        await asyncio.sleep(0.05)
    b1 = Agent(d1.url, "b1", tb)
    await b1.login()
    await b1.presence("available")
    r_ = await a1.reject(c.conversation_id, reason="busy")
    assert r_.get("type") == "ack", r_
    await poll(lambda: b1.offers(c.conversation_id), 10)  # (an inbox item: its own schedule)
    h = rc.hgetall(conv_key(c.conversation_id))
    log(f"after reject: state={h.get('state')} queue={h.get('queue')} agent={h.get('agent')}")
    env.expect(h.get("queue") == "es-new",
               f"the rejected chat went to queue {h.get('queue')!r} "
               f"(state {h.get('state')}), not es-new, the queue the new rules give it")
    env.expect(h.get("state") == "offered" and bool(b1.offers(c.conversation_id)),
               f"b1 should be offered it (es-new offers): state {h.get('state')}, "
               f"b1 items {[f.get('type') for f in b1.order]}")
    await c.close()
    await a1.close()
    await b1.close()
    rc.close()


# --------------------------------------------------------------------------
# 5. Instances with different configurations: what happens, is it reported?

@time_limit(60)
async def test_mismatched_queues_are_reported(env):
    r = env.redis()
    d1 = make_daemon(env, r, "d1", QUEUES_ES)
    d2 = make_daemon(env, r, "d2", QUEUES_ES)
    c = Customer(d1.url, "es customer")
    await c.hello(language="es")
    rc = r.client()
    set_queues(d1, QUEUES_ES_REMOVED)  # only d1 gets the new file
    d1.proc.send_signal(signal.SIGHUP)
    await wait_hash(rc, conv_key(c.conversation_id), lambda h: h.get("queue") == "general", 5,
                     "re-homed to general")
    # d2 reconnects to Redis (a blip): it pushes its own, older rules
    killed = rc.cmd("CLIENT", "KILL", "TYPE", "pubsub")
    rc.cmd("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes")
    log(f"killed {killed} pubsub clients")
    await asyncio.sleep(2)
    h = rc.hgetall(conv_key(c.conversation_id))
    rules = json.loads(rc.cmd("GET", P + ":rules"))
    names = [q["name"] for q in rules["queues"]]
    log(f"after the blip: rules queues={names} conversation queue={h.get('queue')}")

    def rule_warnings():
        text = d1.log_text() + d2.log_text()
        return [ln for ln in text.splitlines()
                if ("warn" in ln.lower() or "error" in ln.lower())
                and ("rule" in ln.lower() or "config" in ln.lower())]
    await poll(rule_warnings, 10)  # (logged once d2 is back and pushed: its own schedule)
    warned = rule_warnings()
    log(f"warnings about rules: {warned}")
    env.expect(warned, "instances with different queues overwrite each other's rules in Redis "
               f"(now {names}) and nothing is logged at warn/error")
    await c.close()
    rc.close()


@time_limit(60)
async def test_mismatched_heartbeat_requeues_connected_agents(env):
    """d1 vouches every 10 s (heartbeat_timeout_s 30); d2, started later (or
    reloaded first in a rolling reload), stores heartbeat_timeout_s 3 in the
    shared rules: d1's connected agent is taken for lost and its chat is
    requeued."""
    r = env.redis()
    d1 = make_daemon(env, r, "d1", QUEUES_AUTO,
                     {"routing": {"heartbeat_timeout_s": 30, "agent_grace_s": 2}})
    ta = add_agent(d1, "a1", "Alex", "en", 2)
    a1 = Agent(d1.url, "a1", ta)
    await a1.login()
    await a1.presence("available")
    c = Customer(d1.url)
    await c.hello(language="en")
    await a1.wait_item(lambda f: f.get("type") == "assigned", 10, "assigned")
    make_daemon(env, r, "d2", QUEUES_AUTO,
                {"routing": {"heartbeat_timeout_s": 3, "agent_grace_s": 2}})
    rc = r.client()
    await asyncio.sleep(20)
    pres = [f for _, f in rc.xrange(agent_key("a1") + ":presence")]
    evs = log_events(rc, c.conversation_id)
    log(f"a1 presence history: {[(p['state'], p['reason']) for p in pres]}")
    log(f"conversation events: {evs}")
    h = rc.hgetall(conv_key(c.conversation_id))
    log(f"conversation now: state={h.get('state')} agent={h.get('agent')!r} "
        f"declined={rc.cmd('HGETALL', conv_key(c.conversation_id) + ':decl')}")
    env.expect(not any(p["reason"] == "lost" for p in pres),
               "a connected agent of d1 was taken for lost (rules of d2 carry "
               "heartbeat_timeout_s 3, d1 vouches every 10 s)")
    env.expect(not any(e[1] == "requeued" for e in evs),
               f"the chat of a connected agent was requeued: {evs}")
    await c.close()
    await a1.close()
    rc.close()


# --------------------------------------------------------------------------
# 6. Redis restarted (appendonly yes) under two instances, offers in flight.

@time_limit(60)
async def test_redis_restart_under_two_instances(env):
    r = aof_redis(env)
    d1 = make_daemon(env, r, "d1", QUEUES_OFFERS, {"routing": {"heartbeat_timeout_s": 6}})
    d2 = make_daemon(env, r, "d2", QUEUES_OFFERS, {"routing": {"heartbeat_timeout_s": 6}})
    ta = add_agent(d1, "a1", "Alex", "en", 2)
    tb = add_agent(d1, "b1", "Bea", "en", 2)
    a1 = Agent(d1.url, "a1", ta)
    b1 = Agent(d2.url, "b1", tb)
    for ag in (a1, b1):
        await ag.login()
        await ag.presence("available")
    c1 = Customer(d1.url, "cust1")
    c2 = Customer(d2.url, "cust2")
    await c1.hello(language="en")
    await c2.hello(language="en")
    # each gets one offer; accept c1's, leave c2's open across the restart
    await poll(lambda: {o["conversation_id"] for ag in (a1, b1) for o in ag.offers()}
               >= {c1.conversation_id, c2.conversation_id}, 10)
    holders = {}
    for ag in (a1, b1):
        for o in ag.offers():
            holders[o["conversation_id"]] = ag
    assert set(holders) == {c1.conversation_id, c2.conversation_id}, holders
    h1 = holders[c1.conversation_id]
    assert (await h1.accept(c1.conversation_id)).get("type") == "ack"
    await c1.send("before", id="m1")
    await h1.wait_item(lambda f: f.get("id") == "m1", 5, "m1")

    r.stop()
    await asyncio.sleep(1.0)
    sent = asyncio.ensure_future(c1.send("during", id="m2", timeout=30))
    await asyncio.sleep(1.0)
    await asyncio.to_thread(r.start)
    ack = await sent
    log(f"m2 acked {ack}")
    await h1.wait_item(lambda f: f.get("id") == "m2", 10, "m2 after the restart")
    h2 = holders[c2.conversation_id]
    r_ = await h2.accept(c2.conversation_id)
    env.expect(r_.get("type") == "ack", f"accepting the offer made before the restart: {r_}")
    await c2.send("hi", id="n1")
    await h2.wait_item(lambda f: f.get("id") == "n1", 10, "n1")
    await h1.reply(c1.conversation_id, "reply after restart")
    await c1.wait_item(lambda f: f.get("text") == "reply after restart", 10, "reply at c1")
    rc = r.client()
    for aid in ("a1", "b1"):
        pres = [(f["state"], f["reason"]) for _, f in rc.xrange(agent_key(aid) + ":presence")]
        env.expect(("offline", "lost") not in pres, f"{aid} taken for lost: {pres}")
    msgs = [f.get("msgid") for _, f in rc.xrange(conv_key(c1.conversation_id) + ":log")
            if f.get("kind") == "message" and f.get("from") == "customer"]
    env.expect(msgs == ["m1", "m2"], f"c1 log: {msgs}")
    for c in (c1, c2):
        await c.close()
    for ag in (a1, b1):
        await ag.close()
    rc.close()


@time_limit(60)
async def test_redis_outage_longer_than_heartbeat_and_grace(env):
    """Redis away 7 s (heartbeat 3 s + grace 2 s): connected desktops keep
    their work and their presence when it comes back."""
    r = aof_redis(env)
    d1 = make_daemon(env, r, "d1", QUEUES_AUTO)
    d2 = make_daemon(env, r, "d2", QUEUES_AUTO)
    ta = add_agent(d1, "a1", "Alex", "en", 1)
    tb = add_agent(d1, "b1", "Bea", "en", 1)
    a1 = Agent(d1.url, "a1", ta)
    b1 = Agent(d2.url, "b1", tb)
    custs = []
    for ag, d in ((a1, d1), (b1, d2)):
        await ag.login()
        await ag.presence("available")
        c = Customer(d.url, f"cust of {ag.agent_id}")
        await c.hello(language="en")
        await ag.wait_item(lambda f: f.get("type") == "assigned", 10, "assigned")
        custs.append((c, ag))
    r.stop()
    await asyncio.sleep(7)
    await asyncio.to_thread(r.start)
    await asyncio.sleep(4)
    rc = r.client()
    for c, ag in custs:
        h = rc.hgetall(conv_key(c.conversation_id))
        env.expect((h.get("state"), h.get("agent")) == ("assigned", ag.agent_id),
                   f"{c.label}: {h.get('state')} agent={h.get('agent')!r} "
                   f"events={log_events(rc, c.conversation_id)}")
        a = rc.hgetall(agent_key(ag.agent_id))
        env.expect(a.get("presence") == "available", f"{ag.agent_id}: {a.get('presence')} "
                   f"{a.get('reason')}")
    for c, ag in custs:
        await c.send("after outage", id="x1")
        await ag.wait_item(lambda f: f.get("id") == "x1", 10, "x1")
        await c.close()
        await ag.close()
    rc.close()


if __name__ == "__main__":
    run_tests([test_sigkill_requeues_assigned_and_offered,
               test_sigkill_relogin_in_grace_keeps_work,
               test_lost_agent_back_after_grace_can_take_its_chat_again,
               test_sticky_wait_for_lost_agent_ends,
               test_sigterm_restart_mid_chat,
               test_sighup_removes_queue_with_waiting_work,
               test_sighup_renames_queue_while_offer_open,
               test_mismatched_queues_are_reported,
               test_mismatched_heartbeat_requeues_connected_agents,
               test_redis_restart_under_two_instances,
               test_redis_outage_longer_than_heartbeat_and_grace])
