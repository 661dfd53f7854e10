"""test_customer_chat_edges.py - the customer's chat and the limits, from a review of
2026-12-07: the customer side of docs/PROTOCOL.md (queue position and wait as the queue moves,
resume, the survey), the limits, and the daemon's HTTP side. Each test's docstring says what the
docs promise. These failed on the build of ab16c4a, as their docstrings tell:
test_resume_of_a_full_transcript_with_quotes_is_not_cut,
test_resume_of_a_full_transcript_default_limits, test_agent_taking_a_full_transcript_is_not_cut,
test_agent_with_two_long_chats_can_log_in (a reader cut for a burst past the send queue's cap),
test_wait_average_counts_the_wait_before_a_rejected_offer,
test_second_tab_sees_the_customers_message, test_head_probe_sends_no_body,
test_probe_with_another_method_gets_a_whole_answer.

    OMR_BUILD_DIR=build/asan python3 tests/integration/test_customer_chat_edges.py [NAME...]
"""

import asyncio
import http.client
import os
import socket
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from omr_harness import (Agent, Conn, Customer, add_agent, conv_key, log, poll,  # noqa: E402
                         reload_limits, retry, run_tests, time_limit)

TWO_QUEUES = """
queues:
  - name: billing
    skills: {billing: 1}
  - name: general
"""


def start(env, config=None, queues=TWO_QUEUES):
    r = env.redis()
    cfg = {"routing": {"tick_ms": 50}, "chat": {"position_interval_s": 1}}
    for sec, opts in (config or {}).items():
        cfg.setdefault(sec, {}).update(opts)
    d = env.daemon(r, config=cfg, start=False)
    if queues:
        with open(d.cfg_path, "a") as f:
            f.write(queues)
    d.start()
    return r, d


async def next_position(c, timeout=10):
    """The first `position` frame that arrives from now on."""
    start = len(c.conn.frames)
    f = await c.conn.wait_for(lambda f: f.get("type") == "position", timeout, "position", start)
    return f.get("position")


async def position_becomes(c, want, timeout=15):
    """Polls the position frames until one says `want`; returns the last one seen."""
    deadline = time.monotonic() + timeout
    got = None
    while time.monotonic() < deadline:
        try:
            got = await next_position(c, max(0.1, deadline - time.monotonic()))
        except AssertionError:
            break
        if got == want:
            return got
    return got


# ---- queue position ------------------------------------------------------------------------

@time_limit(90)
async def test_position_follows_the_queue_and_leavers(env):
    """PROTOCOL.md "position": "while the conversation waits for an agent, every
    chat.position_interval_s seconds: its place in line (1 = next) ... The place counts the
    conversations of the same queue, channel and tenant that wait ahead in its language."
    Three customers wait in `general`; one in `billing` (another queue) is number 1 there
    whatever waits in `general`. The first of `general` is served: the others move up. The
    next one leaves and is closed as abandoned (chat.abandon_after_s): the last moves up to 1.
   """
    r, d = start(env, {"chat": {"abandon_after_s": 1}})
    tok = add_agent(d, "luis", "Luis", "en", 1)
    cs = []
    for i in range(3):
        c = Customer(d.url, f"g{i}")
        await c.hello(language="en", name=f"G{i}")
        cs.append(c)
    b = Customer(d.url, "billing")
    await b.hello(language="en", name="B", topic="billing")
    for i, c in enumerate(cs):
        got = await position_becomes(c, i + 1)
        env.expect(got == i + 1, f"{c.label}: position {got}, want {i + 1}")
    got = await position_becomes(b, 1)
    env.expect(got == 1, f"the only customer of queue billing is told {got}, want 1")
    # The agent takes one: the billing one or the first of general (both waited; the
    # oldest first). Serve until the first of general is gone.
    luis = Agent(d.url, "luis", tok)
    await luis.login()
    await luis.presence("available")
    a = await luis.wait_item(lambda f: f.get("type") == "assigned", 15, "an assignment")
    log(f"first assignment: {a['conversation_id']}")
    env.expect(a["conversation_id"] == cs[0].conversation_id,
               "the oldest waiting customer (g0) should be served first")
    for i, c in enumerate(cs[1:]):
        got = await position_becomes(c, i + 1)
        env.expect(got == i + 1, f"after g0 was served {c.label} is told {got}, want {i + 1}")
    # g1 leaves: closed as abandoned after 1 s; g2 becomes number 1.
    await cs[1].close()
    rc = r.client()
    st = await poll(lambda: rc.cmd("HGET", conv_key(cs[1].conversation_id), "state") == "closed",
                    10)
    env.expect(st, "g1 left 10 s ago with chat.abandon_after_s 1 and is not closed")
    got = await position_becomes(cs[2], 1)
    env.expect(got == 1, f"after g1 left, g2 is told {got}, want 1")
    for c in (cs[0], cs[2], b):
        await c.close()
    await luis.close()


@time_limit(60)
async def test_position_after_resume_while_waiting(env):
    """PROTOCOL.md "position": sent "while the conversation waits for an agent". A customer
    whose page reloads (resume on a new connection) while it still waits keeps getting its
    place in line."""
    _, d = start(env)
    add_agent(d, "luis", "Luis", "en", 1)
    c1 = Customer(d.url, "first")
    await c1.hello(language="en", name="First")
    c2 = Customer(d.url, "second")
    await c2.hello(language="en", name="Second")
    got = await position_becomes(c2, 2)
    env.expect(got == 2, f"second: {got}")
    await c2.close()
    w = await c2.resume(after="0")
    env.expect(w.get("state") == "queued", f"resume while waiting: {w}")
    got = await position_becomes(c2, 2)
    env.expect(got == 2, f"after the resume the second customer is told {got}, want 2")
    await c1.close()
    await c2.close()


# ---- resume --------------------------------------------------------------------------------

@time_limit(90)
async def test_resume_mid_burst_loses_nothing_and_repeats_nothing(env):
    """PROTOCOL.md "Delivery guarantees": "Customers pass the last seq they saw in resume and
    get only what came after"; "Resume": "then every transcript item after `after` in order".
    The agent writes 80 lines as fast as it can; the customer's page drops after the 10th and
    resumes (after = the last seq it saw) while the agent is still writing. Across both
    connections every line arrives, in order, and the resumed connection repeats none of the
    ones seen before the drop nor any of its own."""
    _, d = start(env, {"websocket": {"max_messages_per_second": 1000}}, queues=None)
    tok = add_agent(d, "luis", "Luis", "en", 1)
    luis = Agent(d.url, "luis", tok)
    await luis.login()
    await luis.presence("available")
    c = Customer(d.url)
    await c.hello(language="en", name="Rosa")
    conv = c.conversation_id
    await luis.wait_item(lambda f: f.get("type") == "assigned", 15, "the assignment")
    n = 80

    async def writer():
        for i in range(n):
            await luis.conn.send({"type": "message", "conversation_id": conv,
                                  "id": f"a-{i}", "text": f"line {i}"})
            await asyncio.sleep(0.01)
    w = asyncio.get_running_loop().create_task(writer())
    await c.wait_item(lambda f: f.get("text") == "line 9", 15, "line 9")
    first = list(c.order)
    await c.conn.close()
    seen = {f["seq"] for f in first}
    after = c.last_seq
    c2 = Customer(d.url, "resumed")
    c2.conversation_id, c2.resume_token = conv, c.resume_token
    await c2.resume(after=after)
    await w
    await c2.wait_item(lambda f: f.get("text") == f"line {n - 1}", 20, "the last line")
    await asyncio.sleep(0.5)  # (anything repeated after the last line would show now)
    again = [f for f in c2.conn.frames if f.get("type") == "message"]
    seqs = [f["seq"] for f in again]
    env.expect(len(seqs) == len(set(seqs)), "an item twice on the resumed connection")
    env.expect(not (set(seqs) & seen),
               f"items seen before the drop sent again after resume(after={after}): "
               f"{sorted(set(seqs) & seen)[:5]}")
    texts = [f.get("text") for f in first if f.get("type") == "message"] + \
        [f.get("text") for f in again]
    want = [f"line {i}" for i in range(n)]
    missing = [t for t in want if t not in texts]
    env.expect(texts == want, f"lines across the drop: {len(texts)} of {n}, missing "
               f"{missing[:5]}, in order: {texts == sorted(texts, key=lambda t: int(t[5:]))}")
    await c2.close()
    await luis.close()


@time_limit(60)
async def test_second_tab_sees_the_customers_message(env):
    """PROTOCOL.md "Send a message" allows the same conversation open in two tabs ("a
    duplicated tab copies sessionStorage"), and "The transcript includes the customer's own
    messages (`"from":"customer"`)". What one tab sends reaches the other tab at once while the
    conversation waits (the transcript changed). Once an agent holds it, a line written in tab 1
    reaches tab 2 only when something else comes (the agent's next reply): until then tab 2
    shows the agent's answer to a question it never displayed. The docs are silent on the
    timing; a customer with two tabs (a chat widget on two pages of one site) reasonably
    expects both to show what they wrote, as they do while waiting."""
    _, d = start(env, queues=None)
    tok = add_agent(d, "luis", "Luis", "en", 1)
    c = Customer(d.url, "tab 1")
    await c.hello(language="en", name="Rosa")
    tab2 = Customer(d.url, "tab 2")
    tab2.conversation_id, tab2.resume_token = c.conversation_id, c.resume_token
    await tab2.resume(after="0")
    await c.send("written while waiting")
    got = await poll(lambda: any(f.get("text") == "written while waiting" for f in tab2.order),
                     5)
    env.expect(got, "while waiting, tab 2 does not get tab 1's line (premise)")
    luis = Agent(d.url, "luis", tok)
    await luis.login()
    await luis.presence("available")
    await luis.wait_item(lambda f: f.get("type") == "assigned", 15, "the assignment")
    await tab2.wait_item(lambda f: f.get("event") == "assigned", 10, "assigned in tab 2")
    await c.send("written while assigned")
    await luis.wait_item(lambda f: f.get("text") == "written while assigned", 10, "the line")
    got = await poll(lambda: any(f.get("text") == "written while assigned" for f in tab2.order),
                     5)
    log(f"tab 2 got tab 1's line within 5 s while assigned: {bool(got)}")
    env.expect(got, "tab 1 wrote 'written while assigned' (acked, and the agent has it); 5 s "
               "later tab 2 still does not show it (it comes only with the agent's next reply)")
    for x in (c, tab2, luis):
        await x.close()


# ---- limits --------------------------------------------------------------------------------

def set_option(d, section, key, value):
    """Rewrites `key` of `section` in d's config file (appends it when absent)."""
    with open(d.cfg_path) as f:
        lines = f.read().split("\n")
    out, sec, done = [], None, False
    for ln in lines:
        if ln and not ln.startswith(" ") and ln.endswith(":"):
            if sec == section and not done:
                out.append(f"  {key}: {value}")
                done = True
            sec = ln[:-1]
        elif sec == section and ln.strip().startswith(f"{key}:"):
            ln, done = f"  {key}: {value}", True
        out.append(ln)
    if not done:
        out.append(f"{section}:\n  {key}: {value}")
    with open(d.cfg_path, "w") as f:
        f.write("\n".join(out) + "\n")


@time_limit(60)
async def test_reloaded_rate_and_address_limits(env):
    """PROTOCOL.md "Limits": "all configurable ...; the reloadable ones apply to open
    connections at once after SIGHUP"; config/omnirouter.yaml: max_connections_per_ip and
    max_messages_per_second "SIGHUP: reloaded". Lowered by a reload: a new connection over the
    address's new limit gets too-many-connections and a close 1013, an open connection that
    then sends past the new rate gets flood and a close 1008 "flood"; raised again, a new
    connection gets in."""
    _, d = start(env, {"websocket": {"max_connections_per_ip": 3,
                                     "max_messages_per_second": 100}}, queues=None)
    c1 = Customer(d.url, "one")
    await c1.hello(language="en")
    c2 = Customer(d.url, "two")
    await c2.hello(language="en")
    for i in range(30):  # 30 frames at once: within the burst of 2 x 100
        await c1.conn.send({"type": "typing"})
    await c1.conn.expect_open(0.5)
    set_option(d, "websocket", "max_connections_per_ip", 1)
    set_option(d, "websocket", "max_messages_per_second", 2)
    await reload_limits(d)
    x = await Conn.open(d.url + "/ws/customer", "over the new address limit")
    e = await x.wait_for(lambda f: f.get("type") == "error", 5, "too-many-connections")
    code, reason = await x.wait_closed(5, "refusal")
    env.expect(e.get("code") == "too-many-connections" and code == 1013
               and reason == "too-many-connections",
               f"a third connection with max_connections_per_ip reloaded to 1: {e}, close "
               f"{code} {reason!r}")
    env.expect(not c2.conn.closed, "an open connection was closed by the lower address limit")
    start_n = len(c1.conn.frames)
    try:
        for i in range(30):
            await c1.conn.send({"type": "typing"})
    except Exception:  # noqa: BLE001 (closed meanwhile)
        pass
    e = await c1.conn.wait_for(lambda f: f.get("type") == "error", 5, "flood", start_n)
    code, reason = await c1.conn.wait_closed(5, "flood")
    env.expect(e.get("code") == "flood" and code == 1008 and reason == "flood",
               f"30 frames at once after max_messages_per_second was reloaded to 2: {e}, close "
               f"{code} {reason!r}")
    set_option(d, "websocket", "max_connections_per_ip", 5)
    await reload_limits(d)
    c3 = Customer(d.url, "three")
    w = await c3.hello(language="en")
    env.expect(w.get("type") == "welcome", f"after raising the address limit: {w}")
    for c in (c2, c3):
        await c.close()



# ---- survey --------------------------------------------------------------------------------

@time_limit(60)
async def test_survey_storage_replaced_whole_and_refusals_store_nothing(env):
    """PROTOCOL.md "The survey": "rate it once, 1 (worst) to 5, with an optional comment ...
    Rating again replaces the answer. Before the close it is refused with bad-request"; "a
    survey `score` is a whole number 1 to 5 (`5` or `5.0`; not `"5"`)". Stored in the
    conversation's hash (`csat`, `csat_comment`): a refused rating (before the close, 0, 6,
    "5") stores nothing, and a second answer without a comment replaces the first whole (its
    comment does not stay behind)."""
    r, d = start(env, queues=None)
    tok = add_agent(d, "luis", "Luis", "en", 1)
    luis = Agent(d.url, "luis", tok)
    await luis.login()
    await luis.presence("available")
    c = Customer(d.url)
    await c.hello(language="en", name="Rosa")
    await luis.wait_item(lambda f: f.get("type") == "assigned", 15, "the assignment")
    rc = r.client()

    def stored():
        h = rc.hgetall(conv_key(c.conversation_id))
        return {k: h.get(k) for k in ("csat", "csat_comment")}
    e = await c.conn.request({"type": "rate", "score": 4, "comment": "early", "id": "s-0"})
    env.expect(e.get("code") == "bad-request", f"rate before the close: {e}")
    env.expect(stored() == {"csat": None, "csat_comment": None},
               f"a refused early rating stored {stored()}")
    await luis.close_conv(c.conversation_id)
    await c.wait_item(lambda f: f.get("event") == "closed", 10, "closed")
    a = await c.conn.request({"type": "rate", "score": 2, "comment": "lento", "id": "s-1"})
    env.expect(a.get("type") == "ack", f"rate 2: {a}")
    env.expect(stored() == {"csat": "2", "csat_comment": "lento"}, f"after rate 2: {stored()}")
    for i, bad in enumerate((0, 6, "5", 2.5)):
        e = await c.conn.request({"type": "rate", "score": bad, "id": f"s-b{i}"})
        env.expect(e.get("code") == "bad-request", f"rate {bad!r}: {e}")
    env.expect(stored() == {"csat": "2", "csat_comment": "lento"},
               f"refused ratings changed the answer: {stored()}")
    # after a reload of the page: the answer replaced whole
    await c.close()
    await c.resume(after="0")
    a = await c.conn.request({"type": "rate", "score": 5.0, "id": "s-2"})
    env.expect(a.get("type") == "ack", f"rate 5.0 after the resume: {a}")
    env.expect(stored() in ({"csat": "5", "csat_comment": ""}, {"csat": "5", "csat_comment": None}),
               f"the second answer (5, no comment) should replace the first whole: {stored()}")
    await c.close()
    await luis.close()


# ---- HTTP ----------------------------------------------------------------------------------

def head_then_get(port, path):
    """HEAD path, then (once its answer is in) GET /healthz on the same kept-alive
    connection: returns (the HEAD's header block, every byte after it)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=3)
    try:
        s.sendall(f"HEAD {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        out = b""
        while b"\r\n\r\n" not in out:
            b = s.recv(65536)
            if not b:
                break
            out += b
        time.sleep(0.3)  # the HEAD is answered: anything more it sends comes meanwhile
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        s.settimeout(2)
        try:
            while True:
                b = s.recv(65536)
                if not b:
                    break
                out += b
        except socket.timeout:
            pass
    finally:
        s.close()
    head, _, rest = out.partition(b"\r\n\r\n")
    return head, rest


@time_limit(30)
async def test_head_probe_sends_no_body(env):
    """PROTOCOL.md: `GET /healthz` "200 ok", `GET /readyz` "200 ready ... the check for a load
    balancer". The docs name GET only; a load balancer's or monitor's health check is often a
    HEAD, and RFC 9110 9.3.2 says a server MUST NOT send content in a response to HEAD. The
    static pages follow it (HEAD /chat.html sends no body); /healthz and /readyz do not: "ok" /
    "ready" follows the headers, so on a kept-alive connection the next response reads
    "okHTTP/1.1 200 OK..." and the client's parser fails (or takes "ok" for the status line)."""
    _, d = start(env, queues=None)
    for path in ("/chat.html", "/healthz", "/readyz"):
        head, rest = head_then_get(d.port, path)
        status = head.split(b"\r\n")[0]
        log(f"HEAD {path} -> {status!r}; then GET /healthz reads {rest[:40]!r}")
        env.expect(status.startswith(b"HTTP/1.1 200"), f"HEAD {path}: {status!r}")
        env.expect(rest.startswith(b"HTTP/1.1 200"),
                   f"HEAD {path}: the next response on the kept-alive connection should start "
                   f"right after the HEAD's headers; it reads {rest[:50]!r} (a body was sent "
                   f"in answer to HEAD)")


@time_limit(40)
async def test_probe_with_another_method_gets_a_whole_answer(env):
    """PROTOCOL.md lists `GET /healthz` and `GET /readyz`, "the check for a load balancer";
    it says nothing of other methods. Whatever the answer (200, 405, 404), an HTTP server
    must finish it. A POST (or PUT) to /healthz or /readyz, as some monitors send, gets the
    status line and "content-length: 2" (or 5) and then nothing: the body never comes, and
    about 5 s later the server closes the connection (a truncated answer; the client waits,
    and the socket is held, until then).
    (A POST to a page, /agent.html, is answered 404 at once; a GET works.)"""
    _, d = start(env, queues=None)
    results = {}
    for method, path, body in (("GET", "/readyz", None), ("POST", "/agent.html", b"a=1"),
                               ("POST", "/healthz", b""), ("POST", "/readyz", b"x=1"),
                               ("PUT", "/healthz", b"abc")):
        c = http.client.HTTPConnection("127.0.0.1", d.port, timeout=3)
        t0 = time.monotonic()
        try:
            c.request(method, path, body=body)
            r = c.getresponse()
            got = r.read()
            results[(method, path)] = (r.status, r.getheader("content-length"), got)
        except Exception as e:  # noqa: BLE001
            results[(method, path)] = ("no whole answer", repr(e),
                                       f"after {time.monotonic() - t0:.1f}s")
        finally:
            c.close()
        log(f"{method} {path} -> {results[(method, path)]}")
    bad = {k: v for k, v in results.items() if not isinstance(v[0], int)}
    env.expect(not bad, f"requests whose answer never finished within 3 s: {bad}")


@time_limit(60)
async def test_total_connection_limit_and_slot_returned(env):
    """PROTOCOL.md "Limits": "websocket.max_connections connections in all"; errors table:
    `too-many-connections` "server or per-IP connection limit", "closed, 1013", the close
    reason being the code. With max_connections 3, customers and a desktop from three
    addresses fill it; a fourth, from a fourth address with nothing open, gets the error frame
    and a close 1013 "too-many-connections"; once one of the three closes, a new connection
    gets in."""
    _, d = start(env, {"websocket": {"max_connections": 3}}, queues=None)
    tok = add_agent(d, "luis", "Luis", "en", 1)

    async def open_from(ip, path="/ws/customer"):
        return await Conn.open(d.url + path, f"{path} from {ip}", local_addr=(ip, 0))
    a = await open_from("127.0.0.2", "/ws/agent")
    await a.send({"type": "login", "v": 1, "agent_id": "luis", "token": tok})
    await a.wait_for(lambda f: f.get("type") == "welcome", 10, "welcome")
    held = [a]
    for ip in ("127.0.0.3", "127.0.0.4"):
        c = await open_from(ip)
        await c.send({"type": "hello", "v": 1, "language": "en"})
        await c.wait_for(lambda f: f.get("type") == "welcome", 10, "welcome")
        held.append(c)
    x = await open_from("127.0.0.5")
    e = await x.wait_for(lambda f: f.get("type") == "error", 5, "too-many-connections")
    code, reason = await x.wait_closed(5, "refusal")
    env.expect(e.get("code") == "too-many-connections" and code == 1013
               and reason == "too-many-connections",
               f"a 4th connection with max_connections 3: {e}, close {code} {reason!r}")
    await held[1].close()
    y = None

    async def attempt():
        nonlocal y
        y = await open_from("127.0.0.6")
        await y.send({"type": "hello", "v": 1, "language": "en"})
        f = await y.wait_for(lambda f: f.get("type") in ("welcome", "error"), 5, "answer")
        if f.get("type") != "welcome":
            raise AssertionError(f"still refused: {f}")
        return f
    await retry(attempt, "a connection after one of the three closed", 10)
    for c in (held[0], held[2], y):
        await c.close()


@time_limit(90)
async def test_resume_of_a_full_transcript_with_quotes_is_not_cut(env):
    """PROTOCOL.md "Limits": "the server queues what it sends; a client that stops reading
    until the queue for its connection passes chat.max_messages x (chat.max_text_bytes + 512)
    bytes (at least 1 MiB, at most 64 MiB: a whole transcript always fits) is disconnected";
    and "The frame limit leaves room for the longest text with every byte escaped in two
    (`\\"`, `\\n`)". A conversation holds chat.max_messages (10 here) texts of
    chat.max_text_bytes (65536) that are all quotes, sent JSON-escaped as the doc says
    (websocket.max_frame_bytes 140000 >= 2 x text + 256). A page that reloads resumes with
    after "0" and reads as fast as it can: the server renders each message escaped again,
    about 131 KB each, 1.3 MB in all, more than the 1 MiB queue the formula gives (it counts
    each text once, + 512), and cuts the connection without a close frame, although the client
    never stopped reading. It resumes again and is cut again: the transcript never arrives."""
    text_max = 65536
    _, d = start(env, {"chat": {"max_text_bytes": text_max, "max_messages": 10},
                       "websocket": {"max_frame_bytes": 2 * text_max + 8000,
                                     "max_messages_per_second": 100},
                       "bus": {"max_frame_bytes": 4 * text_max}}, queues=None)
    c = Customer(d.url, "writer")
    await c.hello(language="en", name="Quotes")
    for i in range(10):
        await c.send('"' * text_max, id=f"q-{i}", timeout=20)
    await c.close()
    log("10 messages of 65536 quotes stored")
    r = Customer(d.url, "reloaded page")
    r.conversation_id, r.resume_token = c.conversation_id, c.resume_token
    await r.resume(after="0")
    try:
        await r.conn.wait_for(lambda f: f.get("type") == "message" and f.get("id") == "q-9",
                              30, "the 10th message")
    except AssertionError as e:
        log(str(e)[:300])
    got = [f.get("id") for f in r.conn.frames if f.get("type") == "message"]
    slow = [ln.strip()[:160] for ln in d.log_text().splitlines() if "closing slow" in ln]
    log(f"resumed connection got {len(got)} of 10 messages; closed={r.conn.closed} "
        f"code={r.conn.close_code}; daemon: {slow}")
    env.expect(len(got) == 10 and not r.conn.closed,
               f"a whole transcript should fit: the resumed connection got {len(got)} of the 10 "
               f"messages and was closed={r.conn.closed} (code {r.conn.close_code}); daemon "
               f"log: {slow}")
    await r.close()


@time_limit(150)
async def test_resume_of_a_full_transcript_default_limits(env):
    """The same promise as test_resume_of_a_full_transcript_with_quotes_is_not_cut ("a whole
    transcript always fits"), with the default limits (chat.max_messages 1000,
    chat.max_text_bytes 4096, websocket.max_frame_bytes 16384: queue cap 1000 x 4608 =
    4.6 MB); only websocket.max_messages_per_second is raised so the test can fill the
    conversation quickly. 1000 texts of 4096 quotes (a pasted CSV or code is full of them), each
    escaped to about 8.2 KB when sent out: the transcript is 8.3 MB. A reloaded page that
    resumes with after "0" and reads at once is cut when the router's reads (200 entries each)
    pile up faster than it reads."""
    _, d = start(env, {"websocket": {"max_messages_per_second": 5000}}, queues=None)
    c = Customer(d.url, "writer")
    await c.hello(language="en", name="Quotes")
    n = 1000
    for i in range(n):
        await c.conn.send({"type": "message", "id": f"q-{i}", "text": '"' * 4096})
    await c.conn.wait_for(lambda f: f.get("type") == "ack" and f.get("id") == f"q-{n - 1}", 90,
                          "the last ack")
    acks = [f for f in c.conn.frames if f.get("type") == "ack"]
    assert len(acks) == n, f"premise: {len(acks)} of {n} messages acked"
    await c.close()
    log(f"{n} messages of 4096 quotes stored")
    r = Customer(d.url, "reloaded page")
    r.conversation_id, r.resume_token = c.conversation_id, c.resume_token
    await r.resume(after="0")
    try:
        await r.conn.wait_for(lambda f: f.get("type") == "message"
                              and f.get("id") == f"q-{n - 1}", 40, "the last message")
    except AssertionError as e:
        log(str(e)[:200])
    got = [f.get("id") for f in r.conn.frames if f.get("type") == "message"]
    slow = [ln.strip()[:160] for ln in d.log_text().splitlines() if "closing slow" in ln]
    log(f"resumed connection got {len(got)} of {n}; closed={r.conn.closed} "
        f"code={r.conn.close_code}; daemon: {slow}")
    env.expect(len(got) == n and not r.conn.closed,
               f"a whole transcript should fit: the resumed connection got {len(got)} of {n} "
               f"messages, closed={r.conn.closed} (code {r.conn.close_code}); daemon log: {slow}")
    await r.close()


@time_limit(150)
async def test_agent_taking_a_full_transcript_is_not_cut(env):
    """PROTOCOL.md "assigned": "The messages so far follow it as `message` items (a
    conversation that waited...): the whole transcript up to 2,000 entries", and the queue
    limit "(at least 1 MiB, at most 64 MiB: a whole transcript always fits)". Default limits
    (only the message rate raised to fill the conversation fast): a customer who waited wrote
    1000 lines of 4096 quotes. The agent who takes it gets `assigned` and then the desktop is
    cut (no close frame: "closing slow connection ... queue full"); logging in again sends the
    transcript again (what was not acked), and it is cut again."""
    _, d = start(env, {"websocket": {"max_messages_per_second": 5000}}, queues=None)
    tok = add_agent(d, "luis", "Luis", "en", 2)
    c = Customer(d.url, "writer")
    await c.hello(language="en", name="Quotes")
    n = 1000
    for i in range(n):
        await c.conn.send({"type": "message", "id": f"q-{i}", "text": '"' * 4096})
    await c.conn.wait_for(lambda f: f.get("type") == "ack" and f.get("id") == f"q-{n - 1}", 90,
                          "the last ack")
    log(f"{n} messages of 4096 quotes stored while waiting")
    cuts = []
    for attempt in range(2):
        luis = Agent(d.url, "luis", tok, label=f"luis #{attempt + 1}")
        await luis.login()
        if attempt == 0:
            await luis.presence("available")
        await poll(lambda: luis.conn.closed or any(
            f.get("id") == f"q-{n - 1}" for f in luis.messages(c.conversation_id)), 30)
        got = len(luis.messages(c.conversation_id))
        log(f"desktop #{attempt + 1}: {got} of {n} lines; closed={luis.conn.closed} "
            f"code={luis.conn.close_code}")
        if luis.conn.closed:
            cuts.append((attempt + 1, got, luis.conn.close_code))
        await luis.close()
    slow = [ln.strip()[:160] for ln in d.log_text().splitlines() if "closing slow" in ln]
    env.expect(not cuts, f"the desktop taking the conversation was cut (login, lines received, "
               f"close code): {cuts}; daemon log: {slow}")
    await c.close()


async def long_chats(d, k, n, text):
    """k customers (writer 0..k-1), each writing n messages m-0..m-{n-1} of `text`, all
    acked. Returns them."""
    custs = []
    for w in range(k):
        c = Customer(d.url, f"writer {w}")
        await c.hello(language="en", name=f"W{w}")
        for i in range(n):
            await c.conn.send({"type": "message", "id": f"m-{i}", "text": text})
        await c.conn.wait_for(lambda f: f.get("type") in ("ack", "error")
                              and f.get("id") == f"m-{n - 1}", 90, "the last ack")
        errs = [f for f in c.conn.frames if f.get("type") == "error"]
        assert not errs, f"writer refused: {errs[:2]}"
        custs.append(c)
    return custs


async def two_logins(d, tok, custs, n, timeout):
    """Agent luis logs in (and goes available) holding the chats of custs, each of n lines
    ending with id m-{n-1}, then logs in again. For each login: (login, lines received per
    chat, close code, closed)."""
    out = []
    for attempt in range(2):
        luis = Agent(d.url, "luis", tok, label=f"luis #{attempt + 1}")
        await luis.login()
        if attempt == 0:
            await luis.presence("available")

        def done():
            return luis.conn.closed or all(
                any(f.get("id") == f"m-{n - 1}" for f in luis.messages(c.conversation_id))
                for c in custs)
        await poll(done, timeout)
        got = [len(luis.messages(c.conversation_id)) for c in custs]
        log(f"desktop #{attempt + 1}: lines {got}; closed={luis.conn.closed} "
            f"code={luis.conn.close_code}")
        out.append((attempt + 1, got, luis.conn.close_code, luis.conn.closed))
        await luis.close()
    return out


@time_limit(150)
async def test_agent_with_two_long_chats_can_log_in(env):
    """PROTOCOL.md "assigned": each conversation's transcript follows its `assigned` (up to
    2,000 entries), and login without `conversations` sends "everything held" again (the
    conversations sent again share 5,000 entries); "Limits": the send queue is cut only for "a
    client that stops reading", sized so that "a whole transcript always fits". Default limits,
    plain text (no escaping): two customers who waited each wrote chat.max_messages (1000)
    lines of 4096 letters. An agent with chat capacity 2 logs in and takes both: about 8.6 MB
    of items, against a 4.6 MB queue. The desktop, reading all the while, is cut (no close
    frame, "closing slow connection ... queue full"), and the next login is cut too (only what
    the desktop acked before the cut is not sent again: it gets through, if at all, after many
    reconnects)."""
    _, d = start(env, {"websocket": {"max_messages_per_second": 5000}}, queues=None)
    tok = add_agent(d, "luis", "Luis", "en", 2)
    n = 1000
    custs = await long_chats(d, 2, n, "x" * 4096)
    log(f"two conversations of {n} lines of 4096 letters wait")
    cuts = [x for x in await two_logins(d, tok, custs, n, 40) if x[3]]
    slow = [ln.strip()[:160] for ln in d.log_text().splitlines() if "closing slow" in ln]
    env.expect(not cuts, f"the desktop holding the two chats was cut (login, lines received, "
               f"close code, closed): {cuts}; daemon log: {slow}")
    for c in custs:
        await c.close()


OFFER_QUEUE = """
queues:
  - name: offers
    auto_accept: false
    offer_timeout_s: 30
"""


@time_limit(60)
async def test_wait_average_counts_the_wait_before_a_rejected_offer(env):
    """PROTOCOL.md "position": eta_ms is "the queue's recent average wait for a first agent";
    ROUTING.md: "A conversation that is re-queued (offer timed out or rejected, ...) keeps its
    original enqueue time, so it does not lose its place" (and 20_route.lua says of the
    average: "an offer's time counts: it was still waiting"). The only customer of the queue
    waits about 3 s with nobody free, is offered to ana, who rejects, then to bob, who accepts
    at once: it waited about 3 s for its first agent, so the queue's average
    (`wait_ewma_ms:offers`) should be about 3 s. It is about 2.4 s: each offer is a sample
    (ana's: 3 s), and the one after the reject counts from the reject (bob's: a few ms; the
    conversation's queued_ms was reset to the reject time), so 0.8 x 3013 + 0.2 x 4. Every
    rejected or timed-out offer pulls the estimate shown to later customers towards 0."""
    r, d = start(env, queues=OFFER_QUEUE)
    ana_tok = add_agent(d, "ana", "Ana", "en", 1)
    bob_tok = add_agent(d, "bob", "Bob", "en", 1)
    c = Customer(d.url)
    await c.hello(language="en", name="Rosa")
    t0 = time.monotonic()
    ana = Agent(d.url, "ana", ana_tok)
    await ana.login()
    bob = Agent(d.url, "bob", bob_tok)
    await bob.login()
    await asyncio.sleep(3)  # the customer waits with nobody available
    await ana.presence("available")
    await ana.wait_item(lambda f: f.get("type") == "offer", 10, "the offer to ana")
    rj = await ana.reject(c.conversation_id, reason="busy")
    assert rj.get("type") == "ack", rj
    await ana.wait_item(lambda f: f.get("type") == "revoked", 10, "revoked")
    await bob.presence("available")
    await bob.wait_item(lambda f: f.get("type") == "offer", 10, "the offer to bob")
    ac = await bob.accept(c.conversation_id)
    assert ac.get("type") == "ack", ac
    await bob.wait_item(lambda f: f.get("type") == "assigned", 10, "assigned to bob")
    waited_ms = int((time.monotonic() - t0) * 1000)
    ewma = int(r.client().cmd("HGET", "omr:{default}:qstats", "wait_ewma_ms:offers") or -1)
    h = r.client().hgetall(conv_key(c.conversation_id))
    log("conversation: " + ", ".join(f"{k}={h.get(k)}" for k in (
        "created_ms", "enqueued_ms", "queued_ms", "requeued_ms", "assigned_ms", "last_decline")))
    log(f"the customer waited about {waited_ms} ms for its first agent; the queue's average "
        f"wait (first sample) is {ewma} ms")
    env.expect(ewma >= 3000, f"the customer waited about {waited_ms} ms for its first agent "
               f"(over 3 s before the rejected offer); the queue's average wait records "
               f"{ewma} ms")
    for x in (c, ana, bob):
        await x.close()


def raw_exchange(port, data, timeout=2.0):
    """Sends raw bytes, returns (status line, lower-cased headers, body) of the answer."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    out = b""
    try:
        s.sendall(data)
        while True:
            b = s.recv(65536)
            if not b:
                break
            out += b
    except socket.timeout:
        pass
    finally:
        s.close()
    head, _, body = out.partition(b"\r\n\r\n")
    lines = head.decode(errors="replace").split("\r\n")
    hdrs = {}
    for ln in lines[1:]:
        k, _, v = ln.partition(":")
        hdrs[k.strip().lower()] = v.strip()
    return lines[0], hdrs, body


@time_limit(30)
async def test_path_traversal_and_host_injection(env):
    """PROTOCOL.md: the port serves the pages of `web/`; "A path that names no file gets `404`
    with an empty body"; every answer carries a strict CSP whose connect-src names the Host.
    Encoded and plain `..` paths do not reach files outside `web/` (README.md, /etc/passwd),
    and a Host header holding CSP syntax does not add a directive."""
    _, d = start(env, queues=None)
    for path in ("/../README.md", "/%2e%2e/README.md", "/..%2fREADME.md", "/%2e%2e%2fREADME.md",
                 "//etc/passwd", "/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
                 "/..%5cREADME.md", "/web/../../README.md", "/.%2e/config/omnirouter.yaml"):
        status, h, body = raw_exchange(
            d.port, f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        leaked = b"omnirouter" in body or b"root:" in body or b"websocket:" in body
        log(f"GET {path} -> {status!r} {len(body)} bytes")
        env.expect(not leaked and not status.endswith("200 OK"),
                   f"GET {path}: {status!r}, body {body[:80]!r}")
    status, h, _ = raw_exchange(d.port, b"GET / HTTP/1.1\r\nHost: x; script-src *\r\n"
                                        b"Connection: close\r\n\r\n")
    csp = h.get("content-security-policy", "")
    env.expect("script-src *" not in csp and "script-src 'self'" in csp,
               f"a Host with CSP syntax: {status!r} CSP {csp!r}")


TESTS = [
    test_position_follows_the_queue_and_leavers,
    test_position_after_resume_while_waiting,
    test_head_probe_sends_no_body,
    test_resume_mid_burst_loses_nothing_and_repeats_nothing,
    test_second_tab_sees_the_customers_message,
    test_survey_storage_replaced_whole_and_refusals_store_nothing,
    test_reloaded_rate_and_address_limits,
    test_probe_with_another_method_gets_a_whole_answer,
    test_path_traversal_and_host_injection,
    test_total_connection_limit_and_slot_returned,
    test_resume_of_a_full_transcript_with_quotes_is_not_cut,
    test_resume_of_a_full_transcript_default_limits,
    test_agent_taking_a_full_transcript_is_not_cut,
    test_agent_with_two_long_chats_can_log_in,
    test_wait_average_counts_the_wait_before_a_rejected_offer,
]

if __name__ == "__main__":
    run_tests(TESTS)
