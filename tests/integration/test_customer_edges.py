"""test_customer_edges.py - edges of the customer side of web chat (issue 4).

Browser scenarios run tests/browser/customer_edges.js (Chromium via playwright-core) against a
real daemon; protocol scenarios use the harness's websocket clients.

Run: OMR_BUILD_DIR=build/asan python3 tests/integration/test_customer_edges.py [test_name]
"""

import asyncio
import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from omr_harness import (Agent, Customer, add_agent, conv_key, ctl, log, run_tests,  # noqa: E402
                         time_limit)
from test_browser import run_edges_scenario  # noqa: E402


def run_browser(env, scenario, config=None, queues=None):
    redis = env.redis()
    d = env.daemon(redis, config=config, start=False)
    if queues:
        with open(d.cfg_path, "a") as f:
            f.write(queues)
    d.start()
    token = add_agent(d, "luis", "Luis Ortega", "es,en,hi,ar", 4)
    return d, redis, run_edges_scenario("customer_edges.js", scenario, d, token)


# ---- browser ---------------------------------------------------------------------------------

@time_limit(240)
def test_reload_with_unacked_message_keeps_order(env):
    """PROTOCOL.md "Delivery guarantees": a client resends what was not acked (after a reconnect
    too); issue 4: after a reload "no message lost, none shown twice, order kept". A message
    that never reached the server is resent after a reload and must be drawn after the
    messages that came before it, not above the whole transcript."""
    run_browser(env, "reloadPending")


@time_limit(240)
def test_survey_survives_reload_after_close(env):
    """PROTOCOL.md "Leaving": the customer can come back with resume ... and after [the close]
    for the survey; "The survey": it may be answered "on the same connection (or after a
    resume)". A reload between the close and the answer must not lose the survey."""
    d, redis, out = run_browser(env, "surveyAfterReload")
    conv = [line.split()[1] for line in out.splitlines() if line.startswith("CONV ")][0]
    h = redis.client().hgetall(conv_key(conv))
    assert h.get("csat") == "4", f"survey answer not stored: {h}"


@time_limit(240)
def test_message_sent_before_the_welcome_after_a_drop(env):
    """PROTOCOL.md "Delivery guarantees": at-least-once, nothing lost. A message typed while
    the page reconnects, sent before the server's welcome, was refused (say hello first) and
    shown as failed: the page now holds it until the welcome."""
    run_browser(env, "sendBeforeWelcome")


@time_limit(240)
def test_customer_away_too_long(env):
    """config chat.abandon_after_s; PROTOCOL.md `closed` reason `abandoned`: a customer who left
    while waiting and comes back too late is told so, without a survey, and no agent gets it."""
    run_browser(env, "awayTooLong", config={"chat": {"abandon_after_s": 1},
                                            "routing": {"tick_ms": 50}})


@time_limit(240)
def test_network_drop_resumes(env):
    run_browser(env, "networkDrop")


@time_limit(240)
def test_widget_on_another_origin(env):
    run_browser(env, "widgetCrossOrigin")


@time_limit(240)
def test_widget_third_party_site_without_storage(env):
    """widget.js "puts the chat on any site"; chat.js means to work without storage ("no
    storage (private mode)"). On a third-party site where the browser denies the iframe web
    storage (Incognito, third-party cookies blocked), the chat must still start."""
    run_browser(env, "widgetNoStorage")


@time_limit(240)
def test_waiting_position_and_typing(env):
    run_browser(env, "waitingAndTyping", config={"chat": {"position_interval_s": 1}})


@time_limit(240)
def test_long_message_in_hindi_reaches_agent(env):
    """chat.html's message box allows 4096 characters; the daemon takes 4096 bytes. A
    2,000-character Hindi message (about 5,300 bytes) that the box accepts must reach the
    agent."""
    run_browser(env, "longNonAscii")


@time_limit(240)
def test_right_to_left_text_reads_right(env):
    """chat.html offers Arabic. Arabic messages, the agent's and the customer's, and the text
    box take their direction from their text (a line ending in a number or "!" shown left to
    right reads scrambled); a Latin line stays left to right; messages carry the language."""
    run_browser(env, "rightToLeft")


@time_limit(240)
def test_network_drop_during_hello_makes_one_conversation(env):
    """Issue 4: the chat "survives ... a network drop". A drop while the hello is being answered
    makes the page say hello again on its new connection: it must not leave a second,
    customer-less conversation assigned to an agent."""
    run_browser(env, "dropDuringHello")


@time_limit(240)
def test_duplicated_tab_loses_no_message(env):
    """Two tabs of one chat (a duplicated tab copies sessionStorage): every line either tab
    shows as sent must reach the agent."""
    run_browser(env, "duplicatedTab")


@time_limit(240)
def test_layout_and_keyboard(env):
    run_browser(env, "layoutKeyboard")


# ---- protocol --------------------------------------------------------------------------------

ESCALATING_QUEUE = """
queues:
  - name: billing
    languages: [es]
    skills: {billing: 5}
    steps:
      - after_s: 2
        min_level_delta: 2
"""


async def latest_position(c, start, timeout=15):
    f = await c.conn.wait_for(lambda f: f.get("type") == "position", timeout, "position", start)
    return f.get("position")


@time_limit(120)
async def test_position_counts_escalated_customers_ahead(env):
    """PROTOCOL.md "position": "its place in line (1 = next)". A customer who has waited long
    enough to reach the next ladder step is still ahead of one who came later (the router serves
    it first), so two customers waiting in one queue, in one language, must not both be told
    they are number 1."""
    redis = env.redis()
    d = env.daemon(redis, config={"chat": {"position_interval_s": 1},
                                  "routing": {"tick_ms": 100}}, start=False)
    with open(d.cfg_path, "a") as f:
        f.write(ESCALATING_QUEUE)
    d.start()
    token = ctl(d, "agent", "add", "--id", "bea", "--name", "Bea", "--languages", "es",
                "--skills", "billing:5", "--capacity", "1").stdout.strip()
    first = Customer(d.url, "first")
    await first.hello(language="es", name="First", topic="billing")
    rc = redis.client()
    deadline = asyncio.get_running_loop().time() + 20
    while rc.hgetall(conv_key(first.conversation_id)).get("step") != "2":
        assert asyncio.get_running_loop().time() < deadline, \
            f"never escalated: {rc.hgetall(conv_key(first.conversation_id))}"
        await asyncio.sleep(0.1)
    log("first customer is at ladder step 2")
    second = Customer(d.url, "second")
    await second.hello(language="es", name="Second", topic="billing")
    s1, s2 = len(first.conn.frames), len(second.conn.frames)
    await asyncio.sleep(1.2)  # the next position round after the second hello
    p1 = await latest_position(first, s1)
    p2 = await latest_position(second, s2)
    log(f"positions: first {p1}, second {p2}")
    # who is served first when an agent frees up
    bea = Agent(d.url, "bea", token)
    await bea.login()
    await bea.presence("available")
    got = await bea.wait_item(lambda f: f.get("type") == "assigned", 15, "an assignment")
    served_first = "first" if got["conversation_id"] == first.conversation_id else "second"
    log(f"the agent was given the {served_first} customer first")
    assert served_first == "first", "test premise: the earlier customer is served first"
    assert p2 == 2 and p1 == 1, (
        f"the customer who came first (escalated) was told {p1}, the one who came later was told "
        f"{p2}; the later one is served second, so it is number 2 in line")
    await first.close()
    await second.close()
    await bea.close()


@time_limit(240)
async def test_every_message_sent_while_waiting_reaches_the_agent(env):
    """PROTOCOL.md "Send a message": "A message sent while no agent is assigned is stored and
    shown to the agent on assignment"; a conversation may hold chat.max_messages (1,000 by
    default). A customer who writes 520 short lines while nobody is logged in: the agent
    who then takes the conversation must get all 520, in order."""
    redis = env.redis()
    d = env.daemon(redis, config={"websocket": {"max_messages_per_second": 2000}})
    token = add_agent(d, "luis", "Luis", "es", 1)
    c = Customer(d.url)
    await c.hello(language="es", name="Rosa")
    n = 520
    for i in range(n):
        await c.conn.send({"type": "message", "id": f"c-{i}", "text": f"line {i}"})
    await c.conn.wait_for(lambda f: f.get("type") == "ack" and f.get("id") == f"c-{n - 1}", 60,
                          "the last ack")
    acks = [f for f in c.conn.frames if f.get("type") == "ack"]
    assert len(acks) == n, f"{len(acks)} acks for {n} messages"
    log(f"{n} messages stored while no agent was logged in")
    a = Agent(d.url, "luis", token)
    await a.login()
    await a.presence("available")
    await a.wait_item(lambda f: f.get("type") == "assigned", 15, "the assignment")
    try:
        await a.wait_item(lambda f: f.get("type") == "message" and f.get("text") == f"line {n - 1}",
                          20, "the last line")
    except AssertionError:
        pass
    texts = [f.get("text") for f in a.messages(c.conversation_id)]
    missing = [i for i in range(n) if f"line {i}" not in texts]
    assert not missing, (f"the agent got {len(texts)} of the {n} messages the customer sent "
                         f"while waiting; missing lines {missing[0]}..{missing[-1]}")
    assert texts == [f"line {i}" for i in range(n)], "messages out of order at the agent"
    await c.close()
    await a.close()


@time_limit(120)
async def test_restart_resume_and_survey(env):
    """A daemon restart mid-conversation: the transcript survives (Redis Streams), the customer
    resumes, gets what the agent wrote meanwhile and nothing twice; the survey after the close
    is stored (conversation hash `csat`), a second answer replaces it, one before the close is
    bad-request."""
    redis = env.redis()
    d = env.daemon(redis)
    token = add_agent(d, "luis", "Luis", "es", 1)
    a = Agent(d.url, "luis", token)
    await a.login()
    await a.presence("available")
    c = Customer(d.url)
    await c.hello(language="es", name="Rosa")
    await a.wait_item(lambda f: f.get("type") == "assigned", 15, "the assignment")
    conv = c.conversation_id
    await c.send("antes del reinicio")
    await a.reply(conv, "respuesta 1")
    await c.wait_item(lambda f: f.get("text") == "respuesta 1", 10, "reply 1")
    r = await c.conn.request({"type": "rate", "score": 5, "id": "s-early"})
    assert r.get("type") == "error" and r.get("code") == "bad-request", f"early rate: {r}"
    d.stop()
    d.start()
    w = await c.resume()
    assert w.get("state") == "assigned", f"after the restart: {w}"
    await c.send("después del reinicio")
    a2 = Agent(d.url, "luis", token)
    await a2.login()
    await a2.presence("available")
    await a2.wait_item(lambda f: f.get("type") == "message" and f.get("text") ==
                       "después del reinicio", 15, "the message after the restart")
    await a2.reply(conv, "respuesta 2", id="a-after-restart")
    await c.wait_item(lambda f: f.get("text") == "respuesta 2", 10, "reply 2")
    await a2.close_conv(conv)
    await c.wait_item(lambda f: f.get("event") == "closed", 10, "closed")
    texts = [f.get("text") for f in c.order if f.get("type") == "message"]
    assert texts == ["antes del reinicio", "respuesta 1", "después del reinicio",
                     "respuesta 2"], texts
    # whole transcript after a reload: nothing twice, in order
    c2 = Customer(d.url, "reloaded")
    c2.conversation_id, c2.resume_token = c.conversation_id, c.resume_token
    w = await c2.resume(after="0")
    assert w.get("state") == "closed", w
    await c2.wait_item(lambda f: f.get("event") == "closed", 10, "closed")
    seqs = [f["seq"] for f in c2.conn.frames if f.get("seq")]
    assert len(seqs) == len(set(seqs)), "an item twice in one resume"
    r = await c2.conn.request({"type": "rate", "score": 2, "comment": "lento", "id": "s-1"})
    assert r.get("type") == "ack", r
    r = await c2.conn.request({"type": "rate", "score": 4, "id": "s-2"})
    assert r.get("type") == "ack", r
    h = redis.client().hgetall(conv_key(conv))
    assert h.get("csat") == "4", f"rating again replaces the answer: {h}"
    await c.close()
    await c2.close()
    await a.close()
    await a2.close()


@time_limit(60)
async def test_customer_reads_only_own_conversation(env):
    """"A customer can only read their own conversation": another conversation's token, another
    tenant, a made-up id: unauthorized and closed; a message always goes to the resumed one."""
    redis = env.redis()
    d = env.daemon(redis)
    add_agent(d, "luis", "Luis", "es", 2)
    c1 = Customer(d.url, "one")
    await c1.hello(language="es", name="One")
    await c1.send("secreto de uno")
    c2 = Customer(d.url, "two")
    await c2.hello(language="es", name="Two")
    cases = [
        ({"conversation_id": c1.conversation_id, "resume_token": c2.resume_token}, "token of c2"),
        ({"conversation_id": c1.conversation_id, "resume_token": c1.resume_token,
          "tenant": "other"}, "another tenant"),
        ({"conversation_id": "nope", "resume_token": c1.resume_token}, "unknown conv"),
    ]
    for extra, what in cases:
        x = Customer(d.url, what)
        await x.connect()
        await x.conn.send(dict({"type": "resume", "v": 1, "after": "0"}, **extra))
        f = await x.conn.wait_for(lambda f: f.get("type") in ("welcome", "error"), 10, what)
        assert f.get("type") == "error" and f.get("code") == "unauthorized", f"{what}: {f}"
        code, _ = await x.conn.wait_closed(5, what)
        assert code == 1008, f"{what}: close {code}"
        assert not any("secreto" in str(g.get("text")) for g in x.conn.frames), what
    await c1.close()
    await c2.close()


ONE_QUEUE = """
queues:
  - name: main
"""


@time_limit(120)
async def test_wait_estimate_after_transfer(env):
    """PROTOCOL.md "position": eta_ms is "the queue's recent average wait less what was already
    waited; 0 when there is no estimate". The router's average counts only the time since a
    conversation was (re)queued (20_route.lua: "a transferred or re-queued conversation's time
    with the agent before is not waiting"). A customer transferred back into the queue after
    talking longer than that average must still get the queue's estimate, not "no estimate"."""
    redis = env.redis()
    d = env.daemon(redis, config={"chat": {"position_interval_s": 1},
                                  "routing": {"tick_ms": 100}}, start=False)
    with open(d.cfg_path, "a") as f:
        f.write(ONE_QUEUE)
    d.start()
    token = add_agent(d, "luis", "Luis", "es", 2)
    luis = Agent(d.url, "luis", token)
    await luis.login()
    # 1. the queue's average wait: one customer waits about 4 s
    x = Customer(d.url, "x")
    await x.hello(language="es", name="X")
    await asyncio.sleep(4)
    await luis.presence("available")
    await luis.wait_item(lambda f: f.get("type") == "assigned", 15, "x assigned")
    ewma = int(redis.client().cmd("HGET", "omr:{default}:qstats", "wait_ewma_ms:main"))
    log(f"queue average wait: {ewma} ms")
    assert ewma >= 3000, ewma
    # 2. a customer served at once talks for longer than that, then is transferred to the queue
    y = Customer(d.url, "y")
    await y.hello(language="es", name="Y")
    await luis.wait_item(lambda f: f.get("type") == "assigned"
                         and f.get("conversation_id") == y.conversation_id, 15, "y assigned")
    ewma = int(redis.client().cmd("HGET", "omr:{default}:qstats", "wait_ewma_ms:main"))
    await asyncio.sleep(ewma / 1000 + 1.5)
    r = await luis.conn.request({"type": "transfer", "conversation_id": y.conversation_id,
                                 "queue": "main", "id": "tr-1"})
    assert r.get("type") == "ack", r
    await y.wait_item(lambda f: f.get("event") == "transferred", 10, "transferred")
    start = len(y.conn.frames)
    pos = await y.conn.wait_for(lambda f: f.get("type") == "position", 10, "position", start)
    log(f"after the transfer: {pos} (queue average {ewma} ms)")
    assert pos.get("eta_ms", 0) > 0, (
        f"a customer waiting again after a transfer is told eta_ms {pos.get('eta_ms')} (no "
        f"estimate) although the queue's average wait is {ewma} ms and it has waited only about "
        f"a second since it was queued again")
    for c in (x, y):
        await c.close()
    await luis.close()


TESTS = [
    test_reload_with_unacked_message_keeps_order,
    test_survey_survives_reload_after_close,
    test_network_drop_resumes,
    test_customer_away_too_long,
    test_message_sent_before_the_welcome_after_a_drop,
    test_widget_on_another_origin,
    test_widget_third_party_site_without_storage,
    test_layout_and_keyboard,
    test_waiting_position_and_typing,
    test_long_message_in_hindi_reaches_agent,
    test_right_to_left_text_reads_right,
    test_network_drop_during_hello_makes_one_conversation,
    test_duplicated_tab_loses_no_message,
    test_position_counts_escalated_customers_ahead,
    test_every_message_sent_while_waiting_reaches_the_agent,
    test_restart_resume_and_survey,
    test_customer_reads_only_own_conversation,
    test_wait_estimate_after_transfer,
]

if __name__ == "__main__":
    run_tests(TESTS)
