"""test_protocol.py - docs/PROTOCOL.md read as a newcomer writing a
client from the doc alone: each test sends the raw frames the doc shows and
checks the answers, fields, error codes and close codes it promises.

Soft checks (env.expect) let one run show every mismatch of a flow.
Run: OMR_BUILD_DIR=build/asan python3 tests/integration/test_protocol.py [NAME...]
"""

import asyncio
import http.client
import json
import os
import signal
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from omr_harness import (OP_TEXT, SEQ_RE, TOKEN_RE, Conn, Resp, add_agent,  # noqa: E402
                         conv_key, ctl, log, poll, reload_limits, run_tests, seq_key,
                         time_limit)

import websockets  # noqa: E402

FAST = {"routing": {"tick_ms": 50}}

QUEUES = """
queues:
  - name: offers
    attributes: {kind: offer}
    auto_accept: false
    offer_timeout_s: 30
  - name: wrap
    attributes: {kind: wrap}
    wrapup_s: 60
  - name: other
    attributes: {kind: other}
  - name: general
"""


def start(env, config=None, queues=QUEUES):
    r = env.redis()
    cfg = {k: dict(v) for k, v in FAST.items()}
    for sec, opts in (config or {}).items():
        cfg.setdefault(sec, {}).update(opts)
    d = env.daemon(r, config=cfg, start=False)
    if queues:
        with open(d.cfg_path, "a") as f:
            f.write(queues)
    d.start()
    return r, d


async def cust_conn(d, label="customer", **kw):
    return await Conn.open(d.url + "/ws/customer", label, **kw)


async def agent_conn(d, label="agent", **kw):
    return await Conn.open(d.url + "/ws/agent", label, **kw)


async def req(conn, frame, timeout=10):
    """Sends a frame with an id; returns the ack or error that echoes it."""
    return await conn.request(frame, timeout)


async def hello(conn, timeout=10, **fields):
    frame = {"type": "hello", "v": 1}
    frame.update(fields)
    start = len(conn.frames)
    await conn.send(frame)
    w = await conn.wait_for(lambda f: f.get("type") in ("welcome", "error"), timeout,
                            "welcome", start)
    assert w.get("type") == "welcome", f"hello {frame} refused: {w}"
    return w


async def login(d, agent_id, token, label=None, **extra):
    conn = await agent_conn(d, label or f"agent {agent_id}")
    frame = {"type": "login", "v": 1, "agent_id": agent_id, "token": token}
    frame.update(extra)
    await conn.send(frame)
    w = await conn.wait_for(lambda f: f.get("type") in ("welcome", "error"), 10, "welcome")
    assert w.get("type") == "welcome", f"login {agent_id} refused: {w}"
    return conn, w


async def item(conn, typ, conv, timeout=10, start=0, extra=None):
    return await conn.wait_for(
        lambda f: f.get("type") == typ and f.get("conversation_id") == conv
        and (extra is None or extra(f)), timeout, f"{typ} item for {conv}", start)


async def ack_all(conn, start=0):
    for f in conn.frames[start:]:
        if isinstance(f.get("seq"), str) and f.get("type") in (
                "offer", "revoked", "assigned", "message", "event", "closed"):
            await conn.send({"type": "ack", "seq": f["seq"]})


async def refused(env, conn, frame, code, close=None, raw=None, echo=True, what=None):
    """Sends `frame` (or raw text/bytes) and checks the error code, the id echo
    and the close code (None: must stay open). Soft: records mismatches."""
    what = what or (raw if raw is not None else json.dumps(frame))[:120]
    start = len(conn.frames)
    if raw is not None:
        if isinstance(raw, bytes):
            await conn.ws.send(raw)
        else:
            await conn.send_text(raw)
    else:
        await conn.send(frame)
    try:
        e = await conn.wait_for(lambda f: f.get("type") in ("error", "ack", "welcome"), 5,
                                f"error {code} for {what}", start)
    except AssertionError as ex:
        env.expect(False, f"{what}: no answer (want {code}): {str(ex)[:300]}")
        return None
    env.expect(e.get("type") == "error" and e.get("code") == code,
               f"{what}: want error {code}, got {e}")
    if echo and isinstance(frame, dict) and "id" in frame and e.get("type") == "error":
        env.expect(e.get("id") == frame["id"], f"{what}: error should echo id: {e}")
    if close is None:
        await asyncio.sleep(0.2)
        env.expect(not conn.closed, f"{what}: connection should stay open, closed with "
                   f"{conn.close_code} {conn.close_reason!r}")
    else:
        try:
            await conn.wait_closed(5, what)
        except AssertionError as ex:
            env.expect(False, str(ex)[:300])
            return e
        env.expect(conn.close_code == close and conn.close_reason == code,
                   f"{what}: want close {close} {code!r}, got {conn.close_code} "
                   f"{conn.close_reason!r}")
    return e


async def assigned_pair(env, d, token, agent_id="ana", attributes=None, customer_id=None,
                        name="Ana C", aconn=None):
    """A logged-in available agent and a customer assigned to it."""
    if aconn is None:
        aconn, _ = await login(d, agent_id, token)
        r = await req(aconn, {"type": "presence", "presence": "available", "id": "p1"})
        assert r.get("type") == "ack", r
    c = await cust_conn(d)
    fields = {"language": "en", "name": name}
    if attributes:
        fields["attributes"] = attributes
    if customer_id:
        fields["customer_id"] = customer_id
    w = await hello(c, **fields)
    conv = w["conversation_id"]
    a = await item(aconn, "assigned", conv)
    await aconn.send({"type": "ack", "seq": a["seq"]})
    await c.wait_for(lambda f: f.get("type") == "event" and f.get("event") == "assigned", 10,
                     "assigned event")
    return aconn, c, w, a


# ==========================================================================
# Frames and errors common to both endpoints.

@time_limit(40)
async def test_bad_json_variants_close_1007(env):
    _, d = start(env)
    cases = [
        ("not json", "hello"),
        ("array", '[{"type":"hello"}]'),
        ("no type", '{"v":1}'),
        ("type not string", '{"type":5}'),
        ("trailing bytes", '{"type":"hello"} x'),
        ("two objects", '{"type":"hello"}{"type":"hello"}'),
        ("NUL byte", '{"type":"hello","name":"a\x00b"}'),
        ("duplicate member", '{"type":"hello","type":"login"}'),
        ("33 members", json.dumps({"type": "hello", **{f"m{i}": 1 for i in range(32)}})),
    ]
    for path in ("/ws/customer", "/ws/agent"):
        for label, raw in cases:
            c = await Conn.open(d.url + path, f"{path} {label}")
            await refused(env, c, None, "bad-json", close=1007, raw=raw, what=f"{path} {label}")
            await c.close()
    # 32 members is still fine.
    c = await cust_conn(d)
    frame = {"type": "hello", "v": 1, **{f"m{i}": 1 for i in range(30)}}
    assert len(frame) == 32
    await c.send(frame)
    w = await c.wait_for(lambda f: f.get("type") in ("welcome", "error"), 10, "welcome")
    env.expect(w.get("type") == "welcome", f"a 32-member hello should be taken: {w}")
    # Nested duplicates are not checked (doc: members of nested values are ignored).
    c2 = await cust_conn(d)
    await c2.send_text('{"type":"hello","v":1,"x":{"a":1,"a":2}}')
    w = await c2.wait_for(lambda f: f.get("type") in ("welcome", "error"), 10, "welcome")
    env.expect(w.get("type") == "welcome", f"nested duplicate should be ignored: {w}")
    # A binary message: closed with 1003.
    c3 = await cust_conn(d)
    await c3.ws.send(b'{"type":"hello"}')
    await c3.wait_closed(5, "binary message")
    env.expect(c3.close_code == 1003, f"binary message: want close 1003, got "
               f"{c3.close_code} {c3.close_reason!r}; frames {c3.frames}")
    for x in (c, c2, c3):
        await x.close()


@time_limit(30)
async def test_unsupported_version_closes_1002(env):
    _, d = start(env)
    for v in (2, "1", 0, None):
        c = await cust_conn(d, f"v={v!r}")
        await refused(env, c, {"type": "hello", "v": v}, "unsupported-version", close=1002,
                      what=f"hello v={v!r}")
        await c.close()
    c = await agent_conn(d)
    await refused(env, c, {"type": "login", "v": 3, "agent_id": "x", "token": "y"},
                  "unsupported-version", close=1002, what="login v=3")
    # No v at all is fine.
    c = await cust_conn(d)
    await hello(c)
    # A later frame with another v on an open conversation.
    await refused(env, c, {"type": "message", "v": 2, "id": "m1", "text": "x"},
                  "unsupported-version", close=1002, what="message v=2 after hello")


@time_limit(30)
async def test_customer_refusals_stay_open_and_echo_id(env):
    _, d = start(env)
    c = await cust_conn(d)
    # Before hello: unknown type is bad-request; a message is not allowed yet.
    await refused(env, c, {"type": "nonsense", "id": "u1"}, "bad-request")
    await refused(env, c, {"type": "message", "id": "m0", "text": "hi"}, "unauthorized",
                  what="message before hello")
    await refused(env, c, {"type": "login", "agent_id": "a", "token": "b", "id": "l1"},
                  "bad-request", what="login on /ws/customer")
    # Invalid hello fields: bad-request, connection stays open.
    bad_hellos = [
        {"language": "e"}, {"language": "es_MX"}, {"language": "a" * 36},
        {"language": "es-" + "x" * 9}, {"language": 5},
        {"name": ""}, {"name": "x" * 257}, {"name": "a\nb"}, {"name": "a\u007fb"},
        {"tenant": "t" * 65}, {"tenant": "bad tenant"}, {"tenant": ""},
        {"customer_id": "has space"}, {"customer_id": "x" * 129}, {"customer_id": ""},
        {"topic": "a/b"}, {"topic": 7},
        {"attributes": {f"k{i}": "v" for i in range(17)}},
        {"attributes": {"tier": "x" * 256}}, {"attributes": {"tier": "a\tb"}},
        {"attributes": {"tier": "a\u007fb"}}, {"attributes": {"tier": "a\u009fb"}},
        {"attributes": {"bad name": "v"}}, {"attributes": {"k" * 65: "v"}},
        {"attributes": {"tier": 5}}, {"attributes": ["tier"]},
        {"customer_signature": "abc"},  # without customer_id, verification off: ignored
    ]
    for i, extra in enumerate(bad_hellos):
        frame = {"type": "hello", "v": 1, "id": f"h{i}", **extra}
        if "customer_signature" in extra:
            continue  # checked below: verification off ignores it
        await refused(env, c, frame, "bad-request", what=f"hello {extra}"[:100])
        if c.closed or c.find(lambda f: f.get("type") == "welcome"):
            await c.close()
            c = await cust_conn(d)
    # Limits at their edges are taken.
    ok = await cust_conn(d)
    w = await hello(ok, language="zh-Hant-TW", name="x" * 256, tenant="t" * 64,
                    customer_id="c" * 128, topic="t" * 128,
                    attributes={**{f"k{i}": "" for i in range(15)}, "z" * 64: "v" * 255})
    env.expect(w.get("tenant") == "t" * 64, f"welcome tenant: {w}")
    # Verification off: a signature without customer_id is ignored (doc table).
    c2 = await cust_conn(d)
    w = await hello(c2, customer_signature="abc")
    env.expect(w.get("type") == "welcome", f"{w}")
    # A second hello on the same connection.
    await refused(env, c2, {"type": "hello", "v": 1, "id": "h2"}, "bad-request",
                  what="second hello")
    await refused(env, c2, {"type": "resume", "conversation_id": w["conversation_id"],
                            "resume_token": w["resume_token"], "id": "r2"}, "bad-request",
                  what="resume after hello")


@time_limit(30)
async def test_customer_hello_welcome_and_message_limits(env):
    r, d = start(env, {"chat": {"max_text_bytes": 100}})
    c = await cust_conn(d)
    w = await hello(c, language="es-MX", name="Ana", tenant="default",
                    customer_id="cust-42@acme.example", customer_signature="11e3",
                    topic="billing", attributes={"tier": "gold", "plan": "pro"})
    for k in ("conversation_id", "resume_token"):
        env.expect(isinstance(w.get(k), str) and TOKEN_RE.match(w[k]), f"welcome {k}: {w}")
    env.expect(w.get("state") == "queued", f"welcome state (no agents): {w}")
    env.expect(w.get("tenant") == "default", f"welcome tenant: {w}")
    # Messages: text rules.
    a = await req(c, {"type": "message", "id": "c-1", "text": "x" * 100})
    env.expect(a.get("type") == "ack" and SEQ_RE.match(str(a.get("seq"))), f"100 bytes: {a}")
    a2 = await req(c, {"type": "message", "id": "c-1", "text": "x" * 100})
    env.expect(a2.get("type") == "ack" and a2.get("seq") == a.get("seq"),
               f"resent id c-1 should be de-duplicated (same seq): {a} vs {a2}")
    a3 = await req(c, {"type": "message", "id": "c-2", "text": "é" * 50})
    env.expect(a3.get("type") == "ack", f"100 bytes of 2-byte UTF-8: {a3}")
    for i, (label, frame) in enumerate([
            ("101 bytes", {"text": "x" * 101}),
            ("51 two-byte chars", {"text": "é" * 51}),
            ("empty text", {"text": ""}),
            ("NUL", {"text": "a\u0000b"}),
            ("text not string", {"text": 5}),
            ("no text", {}),
            ("id bad chars", {"text": "x", "id": "a b"}),
            ("id 129 bytes", {"text": "x", "id": "i" * 129}),
            ("id empty", {"text": "x", "id": ""}),
            ("id not string", {"text": "x", "id": 5}),
    ]):
        frame = {"type": "message", "id": f"b-{i}", **frame}
        await refused(env, c, frame, "bad-request", what=f"message {label}",
                      echo=isinstance(frame.get("id"), str) and TOKEN_RE.match(frame["id"]))
    # A lone surrogate escape (raw text: json.dumps would escape it too).
    await refused(env, c, {"id": "b-s"}, "bad-request", what="lone surrogate",
                  raw='{"type":"message","id":"b-s","text":"a\\ud800b"}')
    await refused(env, c, {"id": "b-s2"}, "bad-request", what="lone low surrogate",
                  raw='{"type":"message","id":"b-s2","text":"a\\udc00b"}')
    # A valid surrogate pair is fine.
    await c.send_text('{"type":"message","id":"ok-pair","text":"\\ud83d\\ude00"}')
    p = await c.wait_for(lambda f: f.get("id") == "ok-pair", 5, "pair ack")
    env.expect(p.get("type") == "ack", f"surrogate pair: {p}")
    # Invalid UTF-8 bytes in a text frame (the doc's own example error).
    s0 = len(c.frames)
    await c.send_frame(OP_TEXT, b'{"type":"message","id":"b-u","text":"a\xff\xfeb"}')
    try:
        e = await c.wait_for(lambda f: f.get("type") in ("error", "ack"), 5, "answer", s0)
        log(f"invalid UTF-8 text -> {e}; closed={c.closed} {c.close_code}")
        env.expect(e.get("code") in ("bad-request", "bad-json"), f"invalid UTF-8: {e}")
    except AssertionError as ex:
        env.expect(False, f"invalid UTF-8 text frame: {str(ex)[:300]}")
    if c.closed:
        c = await cust_conn(d, "again")
        await hello(c)
    # A message without id (customer): the doc says id is chosen by the client.
    s0 = len(c.frames)
    await c.send({"type": "message", "text": "no id"})
    f = await c.wait_for(lambda f: f.get("type") in ("ack", "error"), 5, "answer to id-less",
                         s0)
    log(f"customer message without id -> {f}")
    env.expect(f.get("type") == "error" and f.get("code") == "bad-request",
               f"customer message without id: {f}")


@time_limit(30)
async def test_too_big_closes_1009(env):
    _, d = start(env, {"websocket": {"max_frame_bytes": 1024}, "chat": {"max_text_bytes": 384}})
    c = await cust_conn(d)
    await hello(c)
    # Exactly at the limit is read (and refused only for what it says). The text stays under
    # chat.max_text_bytes (which must leave room in a frame): JSON whitespace fills the rest.
    def padded(mid, size):
        head, tail = '{"type":"message","id":"%s",' % mid, '"text":"%s"}' % ("x" * 300)
        return head + " " * (size - len(head) - len(tail)) + tail
    start_n = len(c.frames)
    await c.send_text(padded("m1", 1024))
    a = await c.wait_for(lambda f: f.get("id") == "m1", 5, "ack m1", start_n)
    env.expect(a.get("type") == "ack", f"a 1024-byte message at the limit: {a}")
    await refused(env, c, None, "too-big", close=1009, echo=False, raw=padded("m2", 1025),
                  what="1025 bytes")
    # Fragments: the limit applies to the whole message.
    c2 = await cust_conn(d)
    await hello(c2)
    body = json.dumps({"type": "message", "id": "m3", "text": "y" * 1100})

    async def parts():
        for i in range(0, len(body), 200):
            yield body[i:i + 200]
    start_n = len(c2.frames)
    try:
        await c2.ws.send(parts())
    except websockets.exceptions.ConnectionClosed:
        pass
    try:
        e = await c2.wait_for(lambda f: f.get("type") == "error", 5, "too-big", start_n)
        env.expect(e.get("code") == "too-big", f"fragmented too-big: {e}")
    except AssertionError as ex:
        env.expect(False, f"fragmented over-limit message: {str(ex)[:300]}")
    await c2.wait_closed(5)
    env.expect(c2.close_code == 1009, f"fragmented: close {c2.close_code}")
    # Fragmented under the limit works.
    c3 = await cust_conn(d)
    await hello(c3)
    body = json.dumps({"type": "message", "id": "m4", "text": "z" * 380})

    async def parts3():
        for i in range(0, len(body), 100):
            yield body[i:i + 100]
    await c3.ws.send(parts3())
    a = await c3.wait_for(lambda f: f.get("id") == "m4", 5, "ack m4")
    env.expect(a.get("type") == "ack", f"fragmented message: {a}")


@time_limit(30)
async def test_flood_burst_and_close_1008(env):
    _, d = start(env, {"websocket": {"max_messages_per_second": 5}})
    # A burst of twice the rate is allowed.
    c = await cust_conn(d)
    await hello(c)
    for i in range(9):
        await c.send({"type": "typing"})
    await asyncio.sleep(0.5)
    env.expect(not c.closed and not c.find(lambda f: f.get("type") == "error"),
               f"10 frames (burst of 2x5) should be taken: closed={c.closed} "
               f"{c.close_code} frames={c.frames}")
    # Far more: flood.
    c2 = await cust_conn(d)
    await hello(c2)
    try:
        for i in range(40):
            await c2.send({"type": "typing"})
    except websockets.exceptions.ConnectionClosed:
        pass
    await refused(env, c2, {"type": "typing"}, "flood", close=1008, what="flood") \
        if not c2.closed else None
    if c2.closed:
        e = c2.find(lambda f: f.get("type") == "error")
        env.expect(e is not None and e.get("code") == "flood", f"flood error frame: {c2.frames}")
        env.expect(c2.close_code == 1008 and c2.close_reason == "flood",
                   f"flood close: {c2.close_code} {c2.close_reason!r}")


@time_limit(30)
async def test_auth_timeout_closes_1008(env):
    _, d = start(env, {"websocket": {"auth_timeout_ms": 500}})
    for path in ("/ws/customer", "/ws/agent"):
        c = await Conn.open(d.url + path, path)
        await c.wait_closed(5, "auth timeout")
        e = c.find(lambda f: f.get("type") == "error")
        env.expect(e is not None and e.get("code") == "auth-timeout", f"{path}: {c.frames}")
        env.expect(c.close_code == 1008 and c.close_reason == "auth-timeout",
                   f"{path}: close {c.close_code} {c.close_reason!r}")
    # After hello the timeout no longer applies.
    c = await cust_conn(d)
    await hello(c)
    await asyncio.sleep(1.0)
    env.expect(not c.closed, "closed after hello by the auth timeout")


@time_limit(30)
async def test_http_paths_and_headers(env):
    _, d = start(env)

    def get(path):
        h = http.client.HTTPConnection("127.0.0.1", d.port, timeout=5)
        h.request("GET", path)
        r = h.getresponse()
        body = r.read()
        hdrs = {k.lower(): v for k, v in r.getheaders()}
        h.close()
        return r.status, hdrs, body
    for path in ("/", "/chat.html", "/widget.js", "/demo.html", "/agent.html", "/healthz"):
        st, h, body = get(path)
        env.expect(st == 200, f"GET {path}: {st}")
        env.expect(h.get("x-content-type-options") == "nosniff", f"{path} nosniff: {h}")
        env.expect(h.get("referrer-policy") == "no-referrer", f"{path} referrer: {h}")
        csp = h.get("content-security-policy", "")
        env.expect("default-src" in csp or "script-src" in csp, f"{path} CSP: {csp!r}")
        if path in ("/", "/chat.html"):
            env.expect("frame-ancestors *" in csp, f"{path}: frame-ancestors *: {csp!r}")
            env.expect("x-frame-options" not in h, f"{path}: X-Frame-Options: {h}")
        else:
            if path == "/demo.html":  # it frames the chat page of its own origin
                env.expect("frame-src 'self'" in csp, f"{path}: frame-src: {csp!r}")
            env.expect("frame-ancestors 'none'" in csp, f"{path}: {csp!r}")
            env.expect(h.get("x-frame-options", "").lower() == "deny", f"{path}: XFO {h}")
        if path == "/healthz":
            env.expect(body.strip() == b"ok", f"healthz body {body!r}")
    st, h, body = get("/nope.html")
    env.expect(st == 404 and body == b"", f"404: {st} {body!r}")
    # Subprotocol omr.v1 is echoed; none is needed.
    ws = await websockets.connect(d.url + "/ws/customer", subprotocols=["omr.v1"],
                                  compression=None, ping_interval=None)
    env.expect(ws.subprotocol == "omr.v1", f"subprotocol: {ws.subprotocol!r}")
    await ws.close()
    # Other /ws/ paths are refused in the upgrade (how is not said; a path
    # that names no file gets 404 with an empty body).
    rd, wr = await asyncio.open_connection("127.0.0.1", d.port)
    wr.write(b"GET /ws/other HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
             b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
             b"Sec-WebSocket-Version: 13\r\n\r\n")
    await wr.drain()
    resp = await asyncio.wait_for(rd.read(4096), 5)
    wr.close()
    log(f"/ws/other upgrade -> {resp[:200]!r}")
    env.expect(b" 101 " not in resp.split(b"\r\n")[0], f"/ws/other upgraded: {resp!r}")
    # (Observed: the TCP connection is closed with no HTTP answer at all; the
    # doc does not say how, so only "not upgraded" is checked.)


# ==========================================================================
# Customer flows.

@time_limit(40)
async def test_resume_after_seq_and_bad_token(env):
    _, d = start(env)
    tok = add_agent(d, "ana", "Ana", "en", 2)
    aconn, c, w, a = await assigned_pair(env, d, tok)
    conv = w["conversation_id"]
    r1 = await req(c, {"type": "message", "id": "c-1", "text": "one"})
    ra = await req(aconn, {"type": "message", "conversation_id": conv, "id": "a-1",
                           "text": "reply"})
    env.expect(ra.get("type") == "ack" and SEQ_RE.match(str(ra.get("seq"))), f"agent ack {ra}")
    m = await c.wait_for(lambda f: f.get("type") == "message" and f.get("from") == "agent", 10,
                         "agent reply")
    env.expect(m.get("id") == "a-1" and m.get("name") == "Ana" and m.get("text") == "reply"
               and m.get("seq") == ra.get("seq") and isinstance(m.get("ts"), int),
               f"customer's copy of the agent message: {m}")
    # Does the customer get its own message as a live item? (doc: transcript includes it)
    own = c.find(lambda f: f.get("type") == "message" and f.get("from") == "customer")
    log(f"customer's own message live: {own}")
    await c.close()
    # Resume with after = the customer's message seq: only what came after.
    c2 = await cust_conn(d, "resumed")
    await c2.send({"type": "resume", "v": 1, "conversation_id": conv,
                   "resume_token": w["resume_token"], "after": r1["seq"]})
    w2 = await c2.wait_for(lambda f: f.get("type") in ("welcome", "error"), 10, "welcome")
    env.expect(w2.get("type") == "welcome" and w2.get("conversation_id") == conv
               and "resume_token" not in w2 and w2.get("state") == "assigned"
               and w2.get("tenant") == "default", f"resume welcome: {w2}")
    await c2.wait_for(lambda f: f.get("id") == "a-1", 10, "the reply after resume")
    await asyncio.sleep(0.3)
    items = [f for f in c2.frames if "seq" in f]
    env.expect(all(seq_key(f["seq"]) > seq_key(r1["seq"]) for f in items),
               f"resume after {r1['seq']} gave earlier items: {items}")
    env.expect(c2.frames.index(w2) == 0, f"welcome first: {c2.frames}")
    # Whole transcript with after "0" and without after; in order.
    for after in ("0", None):
        c3 = await cust_conn(d, f"resume after={after}")
        fr = {"type": "resume", "conversation_id": conv, "resume_token": w["resume_token"]}
        if after:
            fr["after"] = after
        await c3.send(fr)
        await c3.wait_for(lambda f: f.get("id") == "a-1", 10, "the reply")
        await asyncio.sleep(0.3)
        seqs = [f["seq"] for f in c3.frames if "seq" in f]
        env.expect(seqs == sorted(seqs, key=seq_key), f"transcript order {seqs}")
        kinds = [(f.get("type"), f.get("event") or f.get("from")) for f in c3.frames
                 if "seq" in f]
        env.expect(("event", "assigned") in kinds and ("message", "customer") in kinds,
                   f"whole transcript (after={after}): {kinds}")
        await c3.close()
    # Wrong token: unauthorized and close 1008.
    c4 = await cust_conn(d, "bad token")
    await refused(env, c4, {"type": "resume", "conversation_id": conv,
                            "resume_token": "wrong", "id": "r1"}, "unauthorized", close=1008,
                  what="resume bad token")
    c5 = await cust_conn(d, "unknown conv")
    await refused(env, c5, {"type": "resume", "conversation_id": "nope",
                            "resume_token": w["resume_token"], "id": "r2"}, "unauthorized",
                  close=1008, what="resume unknown conversation")
    c7 = await cust_conn(d, "bad after")
    await refused(env, c7, {"type": "resume", "conversation_id": conv, "after": "x y",
                            "resume_token": w["resume_token"], "id": "r4"}, "bad-request",
                  what="resume bad after")


@time_limit(40)
async def test_typing_both_ways(env):
    _, d = start(env)
    tok = add_agent(d, "ana", "Ana", "en", 2)
    # Typing while queued: dropped, no answer.
    c0 = await cust_conn(d)
    await hello(c0)
    await c0.send({"type": "typing", "id": "t-0"})
    await asyncio.sleep(0.5)
    env.expect(not c0.find(lambda f: f.get("id") == "t-0"),
               f"typing while queued should get no answer: {c0.frames}")
    await c0.close()
    aconn, c, w, a = await assigned_pair(env, d, tok)
    conv = w["conversation_id"]
    s = len(aconn.frames)
    await c.send({"type": "typing", "id": "t-1"})
    t = await aconn.wait_for(lambda f: f.get("type") == "typing", 5, "typing", s)
    env.expect(t == {"type": "typing", "conversation_id": conv, "_t": t["_t"]},
               f"agent typing frame: {t}")
    env.expect("seq" not in t, f"typing must have no seq: {t}")
    s = len(c.frames)
    await aconn.send({"type": "typing", "conversation_id": conv, "id": "at-1"})
    t = await c.wait_for(lambda f: f.get("type") == "typing", 5, "agent typing", s)
    env.expect(t.get("from") == "agent" and "seq" not in t, f"customer typing frame: {t}")
    # Agent typing on a conversation that is not theirs: not-assigned.
    tok_b = add_agent(d, "bob", "Bob", "en", 1)
    bconn, _ = await login(d, "bob", tok_b)
    await refused(env, bconn, {"type": "typing", "conversation_id": conv, "id": "bt-1"},
                  "not-assigned", what="agent typing in another agent's conversation")
    await refused(env, aconn, {"type": "typing", "id": "at-3"}, "bad-request",
                  what="agent typing without conversation_id")


@time_limit(40)
async def test_ping_answered_by_the_server_itself(env):
    """PROTOCOL.md "Ping": either endpoint, before hello/login too, gets a pong at once with
    the ping's id, whatever the state of Redis (the websocket server answers it)."""
    r, d = start(env)
    tok = add_agent(d, "ana", "Ana", "en", 2)
    c = await cust_conn(d)
    a = await agent_conn(d)
    for conn in (c, a):
        await conn.send({"type": "ping", "id": "p-1"})
        p = await conn.wait_for(lambda f: f.get("type") in ("pong", "error"), 5, "pong")
        env.expect({k: v for k, v in p.items() if k != "_t"} == {"type": "pong", "id": "p-1"},
                   f"ping before hello/login: {p}")
    await hello(c)
    await a.send({"type": "login", "v": 1, "agent_id": "ana", "token": tok})
    await a.wait_for(lambda f: f.get("type") == "welcome", 10, "welcome")
    r.proc.send_signal(signal.SIGSTOP)  # Redis frozen: requests wait, pings do not
    try:
        for conn in (c, a):
            s = len(conn.frames)
            await conn.send({"type": "ping"})
            p = await conn.wait_for(lambda f: f.get("type") in ("pong", "error"), 2,
                                    "pong while Redis is frozen", s)
            env.expect(p.get("type") == "pong" and "id" not in p, f"ping, Redis frozen: {p}")
    finally:
        r.proc.send_signal(signal.SIGCONT)
    await refused(env, c, {"type": "ping", "id": "not valid"}, "bad-request",
                  echo=False, what="ping with a bad id")
    await c.close()
    await a.close()


@time_limit(40)
async def test_position_while_waiting(env):
    _, d = start(env, {"chat": {"position_interval_s": 1}})
    c1 = await cust_conn(d, "first")
    await hello(c1)
    c2 = await cust_conn(d, "second")
    await hello(c2)
    p1 = await c1.wait_for(lambda f: f.get("type") == "position", 5, "position")
    p2 = await c2.wait_for(lambda f: f.get("type") == "position", 5, "position")
    for p, want in ((p1, 1), (p2, 2)):
        env.expect(p.get("position") == want and isinstance(p.get("eta_ms"), int)
                   and p["eta_ms"] >= 0 and "seq" not in p, f"position (want {want}): {p}")


@time_limit(40)
async def test_survey_rules(env):
    r, d = start(env)
    tok = add_agent(d, "ana", "Ana", "en", 2)
    aconn, c, w, a = await assigned_pair(env, d, tok)
    conv = w["conversation_id"]
    await refused(env, c, {"type": "rate", "score": 5, "id": "s-0"}, "bad-request",
                  what="rate before close")
    ra = await req(aconn, {"type": "close", "conversation_id": conv, "disposition": "resolved",
                           "id": "r2"})
    env.expect(ra.get("type") == "ack" and ra.get("conversation_id") == conv, f"close ack {ra}")
    ev = await c.wait_for(lambda f: f.get("type") == "event" and f.get("event") == "closed",
                          10, "closed event")
    env.expect(SEQ_RE.match(str(ev.get("seq"))) and "reason" not in ev,
               f"closed event by agent: {ev}")
    for i, (label, extra) in enumerate([
            ("score 0", {"score": 0}), ("score 6", {"score": 6}), ("score '5'", {"score": "5"}),
            ("score 4.5", {"score": 4.5}), ("no score", {}), ("score true", {"score": True}),
            ("comment NUL", {"score": 3, "comment": "a\u0000"}),
            ("comment too long", {"score": 3, "comment": "x" * 4097}),
            ("comment number", {"score": 3, "comment": 7})]):
        await refused(env, c, {"type": "rate", "id": f"s-b{i}", **extra}, "bad-request",
                      what=f"rate {label}")
    a1 = await req(c, {"type": "rate", "score": 5, "comment": "Muy amables, gracias",
                       "id": "s-1"})
    env.expect(a1.get("type") == "ack" and a1.get("id") == "s-1", f"rate ack {a1}")
    a2 = await req(c, {"type": "rate", "score": 3.0, "comment": "", "id": "s-2"})
    env.expect(a2.get("type") == "ack", f"rate 3.0 with empty comment: {a2}")
    # Message after close: `closed`.
    await refused(env, c, {"type": "message", "id": "late", "text": "hi"}, "closed",
                  what="customer message after close")
    await refused(env, aconn, {"type": "message", "conversation_id": conv, "id": "late",
                               "text": "hi"}, "closed", what="agent message after close")
    # Survey after resume.
    c2 = await cust_conn(d, "resumed")
    await c2.send({"type": "resume", "conversation_id": conv, "resume_token": w["resume_token"]})
    w2 = await c2.wait_for(lambda f: f.get("type") in ("welcome", "error"), 10, "welcome")
    log(f"resume of a closed conversation: {w2}")
    a3 = await req(c2, {"type": "rate", "score": 1, "id": "s-3"})
    env.expect(a3.get("type") == "ack", f"rate after resume: {a3}")
    # Disposition stored in the conversation hash.
    rc = Resp(r.port)
    h = rc.hgetall(conv_key(conv))
    rc.close()
    env.expect(h.get("disposition") == "resolved", f"disposition in hash: {h}")


@time_limit(30)
async def test_customer_close_frame(env):
    # The brief's list of customer frames has `close`; PROTOCOL.md documents
    # none for customers. What does the daemon do with it?
    _, d = start(env)
    c = await cust_conn(d)
    await hello(c)
    r = await req(c, {"type": "close", "id": "x1"})
    log(f"customer close -> {r}")
    env.expect(r.get("type") == "error" and r.get("code") == "bad-request",
               f"an undocumented customer `close` should be refused as unknown: {r}")


# ==========================================================================
# Agent flows.

@time_limit(30)
async def test_agent_login_welcome_and_refusals(env):
    _, d = start(env)
    tok = add_agent(d, "ana", "Ana", "es,en", 2)
    # Frames before login: unauthorized, stays open; unknown type: bad-request.
    c = await agent_conn(d)
    await refused(env, c, {"type": "presence", "presence": "available", "id": "p0"},
                  "unauthorized", what="presence before login")
    await refused(env, c, {"type": "hello", "id": "h0"}, "bad-request",
                  what="hello on /ws/agent")
    for i, extra in enumerate([{"agent_id": "ana"}, {"token": tok},
                               {"agent_id": "a b", "token": tok},
                               {"agent_id": "ana", "token": 5}]):
        await refused(env, c, {"type": "login", "id": f"l{i}", **extra}, "bad-request",
                      what=f"login {extra}"[:80])
        if c.closed:
            c = await agent_conn(d)
    await refused(env, c, {"type": "login", "agent_id": "ana", "token": "wrong", "id": "lw"},
                  "unauthorized", close=1008, what="wrong token")
    c = await agent_conn(d)
    await refused(env, c, {"type": "login", "agent_id": "ghost", "token": tok, "id": "lg"},
                  "unauthorized", close=1008, what="unknown agent")
    conn, w = await login(d, "ana", tok)
    env.expect(w.get("agent_id") == "ana" and w.get("name") == "Ana"
               and w.get("presence") == "away" and sorted(w.get("languages") or []) == ["en", "es"]
               and w.get("capacity") == 2 and w.get("tenant") == "default",
               f"welcome shape: {w}")
    await refused(env, conn, {"type": "login", "agent_id": "ana", "token": tok, "id": "l2"},
                  "bad-request", what="second login on the connection")
    # A newer login replaces.
    conn2, w2 = await login(d, "ana", tok, label="second")
    await conn.wait_closed(5, "replaced")
    e = conn.find(lambda f: f.get("code") == "replaced")
    env.expect(e is not None and conn.close_code == 1008 and conn.close_reason == "replaced",
               f"replaced: {conn.frames} {conn.close_code} {conn.close_reason!r}")
    # ack errors: no id.
    s = len(conn2.frames)
    await conn2.send({"type": "ack", "seq": "9999999999999-0"})
    await conn2.send({"type": "ack", "seq": "a b"})
    await conn2.send({"type": "ack"})
    await asyncio.sleep(0.8)
    await poll(lambda: len([f for f in conn2.frames[s:] if f.get("type") == "error"]) >= 2, 10)
    errs = [f for f in conn2.frames[s:] if f.get("type") == "error"]
    log(f"bad acks -> {errs}")
    env.expect(len(errs) >= 2 and all("id" not in f for f in errs),
               f"bad acks should get errors without id: {conn2.frames[s:]}")
    env.expect(not conn2.closed, "ack errors closed the connection")


@time_limit(30)
async def test_presence_and_break_reasons(env):
    _, d = start(env)
    tok = add_agent(d, "ana", "Ana", "en", 2)
    conn, _ = await login(d, "ana", tok)
    r = await req(conn, {"type": "presence", "presence": "available", "id": "r1"})
    env.expect(r == {"type": "ack", "id": "r1", "presence": "available", "_t": r["_t"]},
               f"available ack: {r}")
    r = await req(conn, {"type": "presence", "presence": "break", "reason": "lunch", "id": "r5"})
    env.expect(r.get("type") == "ack" and r.get("presence") == "break", f"break ack {r}")
    r = await req(conn, {"type": "presence", "presence": "break", "reason": "Team meeting_2.x-y",
                         "id": "r5b"})
    env.expect(r.get("type") == "ack", f"break reason with space . _ -: {r}")
    r = await req(conn, {"type": "presence", "presence": "break", "id": "r6"})
    env.expect(r.get("type") == "ack", f"break without reason: {r}")
    r = await req(conn, {"type": "presence", "presence": "away", "id": "r7"})
    env.expect(r.get("type") == "ack" and r.get("presence") == "away", f"away: {r}")
    for i, extra in enumerate([
            {"presence": "available", "reason": "lunch"},
            {"presence": "away", "reason": "lunch"},
            {"presence": "break", "reason": "a:b"},
            {"presence": "break", "reason": "x" * 65},
            {"presence": "break", "reason": ""},
            {"presence": "break", "reason": "café"},
            {"presence": "busy"}, {"presence": "offline"}, {"presence": "Available"},
            {}, {"presence": 1}]):
        await refused(env, conn, {"type": "presence", "id": f"b{i}", **extra}, "bad-request",
                      what=f"presence {extra}"[:80])
    r = await req(conn, {"type": "presence", "presence": "break", "reason": "x" * 64,
                         "id": "r8"})
    env.expect(r.get("type") == "ack", f"64-byte reason: {r}")
    # Team view shows the reason (README: agent list shows presence (reason)).
    out = ctl(d, "--json", "agent", "show", "ana").stdout
    env.expect("x" * 64 in out, f"break reason stored: {out[:400]}")
    # Welcome of a new login shows the presence in effect.
    conn2, w = await login(d, "ana", tok, label="relogin")
    env.expect(w.get("presence") == "break", f"welcome after break: {w}")


@time_limit(40)
async def test_assigned_items_and_redelivery(env):
    _, d = start(env)
    tok = add_agent(d, "ana", "Ana", "en", 2)
    conn, _ = await login(d, "ana", tok)
    await req(conn, {"type": "presence", "presence": "available", "id": "p"})
    c = await cust_conn(d)
    w = await hello(c, language="en-GB", name="Carla", customer_id="cust-1",
                    attributes={"kind": "other"})
    conv = w["conversation_id"]
    a = await item(conn, "assigned", conv)
    env.expect(SEQ_RE.match(str(a.get("seq"))) and a.get("language") == "en-GB"
               and a.get("customer_name") == "Carla" and a.get("tenant") == "default"
               and a.get("queue") == "other" and a.get("customer_id") == "cust-1"
               and a.get("history") == [] and isinstance(a.get("ts"), int),
               f"assigned item shape: {a}")
    ev = await c.wait_for(lambda f: f.get("type") == "event" and f.get("event") == "assigned",
                          10, "assigned event")
    env.expect(ev.get("name") == "Ana" and SEQ_RE.match(str(ev.get("seq"))),
               f"customer's assigned event: {ev}")
    cm = await req(c, {"type": "message", "id": "c-1", "text": "hola"})
    m = await item(conn, "message", conv)
    # (the item's seq is its place in the agent's inbox, the ack's in the transcript: two
    # streams, equal only when both entries were written in the same millisecond)
    env.expect(m.get("id") == "c-1" and m.get("from") == "customer" and m.get("text") == "hola"
               and SEQ_RE.match(str(m.get("seq"))) and SEQ_RE.match(str(cm.get("seq")))
               and isinstance(m.get("ts"), int),
               f"agent's message item: {m} (customer ack {cm})")
    log(f"message item name: {m.get('name')!r}")
    # Ack only the assigned; the message must come again at the next login
    # (a desktop that says it shows the conversation gets nothing else).
    await conn.send({"type": "ack", "seq": a["seq"]})
    await asyncio.sleep(0.5)
    await conn.close()
    conn2, w2 = await login(d, "ana", tok, label="relogin", conversations=[conv])
    m2 = await item(conn2, "message", conv, timeout=5)
    env.expect(m2.get("seq") == m.get("seq"), f"redelivered message: {m2}")
    await asyncio.sleep(0.5)
    env.expect(not conn2.find(lambda f: f.get("type") == "assigned"),
               f"acked assigned must not come again: {conn2.frames}")
    env.expect(conn2.frames.index(w2) == 0, "welcome first")
    await conn2.send({"type": "ack", "seq": m2["seq"]})
    await asyncio.sleep(0.5)
    await conn2.close()
    conn3, _ = await login(d, "ana", tok, label="third", conversations=[conv])
    await asyncio.sleep(1.0)
    env.expect(not [f for f in conn3.frames if "seq" in f],
               f"everything acked, nothing should come again: {conn3.frames}")
    await conn3.close()
    # A desktop that does not say what it shows (a new browser: []) gets what
    # the agent holds again: the assignment (its first ts) and the transcript.
    conn4, _ = await login(d, "ana", tok, label="new browser", conversations=[])
    a4 = await item(conn4, "assigned", conv, timeout=5)
    m4 = await item(conn4, "message", conv, timeout=5)
    env.expect(a4.get("seq") != a.get("seq") and a4.get("ts") == a.get("ts")
               and a4.get("customer_name") == "Carla" and m4.get("id") == "c-1",
               f"held conversation sent again: {a4} {m4}")


@time_limit(40)
async def test_messages_before_assignment_follow_assigned(env):
    _, d = start(env)
    tok = add_agent(d, "ana", "Ana", "en", 2)
    c = await cust_conn(d)
    w = await hello(c, name="Early")
    conv = w["conversation_id"]
    for i in range(3):
        a = await req(c, {"type": "message", "id": f"c-{i}", "text": f"m{i}"})
        env.expect(a.get("type") == "ack", f"queued message ack: {a}")
    conn, _ = await login(d, "ana", tok)
    await req(conn, {"type": "presence", "presence": "available", "id": "p"})
    await item(conn, "message", conv, extra=lambda f: f.get("id") == "c-2")
    order = [(f["type"], f.get("id")) for f in conn.frames if f.get("conversation_id") == conv]
    env.expect(order == [("assigned", None), ("message", "c-0"), ("message", "c-1"),
                         ("message", "c-2")], f"assigned first, then messages: {order}")


@time_limit(40)
async def test_agent_message_and_close_rules(env):
    r, d = start(env)
    tok = add_agent(d, "ana", "Ana", "en", 2)
    tok_b = add_agent(d, "bob", "Bob", "fr", 2)
    aconn, c, w, a = await assigned_pair(env, d, tok)
    conv = w["conversation_id"]
    bconn, _ = await login(d, "bob", tok_b)
    await refused(env, bconn, {"type": "message", "conversation_id": conv, "id": "b1",
                               "text": "x"}, "not-assigned", what="message to someone's conv")
    await refused(env, bconn, {"type": "close", "conversation_id": conv, "id": "b2"},
                  "not-assigned", what="close someone's conv")
    await refused(env, aconn, {"type": "message", "conversation_id": conv, "text": "x"},
                  "bad-request", what="agent message without id", echo=False)
    await refused(env, aconn, {"type": "message", "id": "x1", "text": "x"}, "bad-request",
                  what="agent message without conversation_id")
    await refused(env, aconn, {"type": "message", "conversation_id": conv, "id": "x2",
                               "text": ""}, "bad-request", what="agent empty text")
    await refused(env, aconn, {"type": "message", "conversation_id": "a/b", "id": "x3",
                               "text": "x"}, "bad-request", what="conversation_id bad chars")
    r1 = await req(aconn, {"type": "message", "conversation_id": conv, "id": "a-1",
                           "text": "¡Hola!"})
    r2 = await req(aconn, {"type": "message", "conversation_id": conv, "id": "a-1",
                           "text": "¡Hola!"})
    env.expect(r1.get("seq") and r1.get("seq") == r2.get("seq"), f"agent dedup: {r1} {r2}")
    for i, disp in enumerate(["a b", "x" * 65, "", 5]):
        await refused(env, aconn, {"type": "close", "conversation_id": conv,
                                   "disposition": disp, "id": f"d{i}"}, "bad-request",
                      what=f"disposition {disp!r}"[:60])
    rc = await req(aconn, {"type": "close", "conversation_id": conv,
                           "disposition": "x" * 64, "id": "r2"})
    env.expect(rc.get("type") == "ack" and rc.get("conversation_id") == conv, f"close ack {rc}")
    cl = await item(aconn, "closed", conv)
    env.expect(SEQ_RE.match(str(cl.get("seq"))) and "reason" not in cl
               and isinstance(cl.get("ts"), int), f"closed item: {cl}")
    await aconn.send({"type": "ack", "seq": cl["seq"]})
    # Closing again.
    again = await req(aconn, {"type": "close", "conversation_id": conv, "id": "r3"})
    log(f"second close -> {again}")
    env.expect(again.get("type") == "error" and again.get("code") in ("closed", "not-assigned")
               or again.get("type") == "ack", f"second close: {again}")
    rcl = Resp(r.port)
    h = rcl.hgetall(conv_key(conv))
    rcl.close()
    env.expect(h.get("disposition") == "x" * 64, f"disposition stored: {h}")


@time_limit(40)
async def test_offer_accept_reject(env):
    _, d = start(env)
    tok = add_agent(d, "ana", "Ana", "en", 2)
    conn, _ = await login(d, "ana", tok)
    await req(conn, {"type": "presence", "presence": "available", "id": "p"})
    c = await cust_conn(d)
    w = await hello(c, name="Olga", language="en-US", attributes={"kind": "offer"})
    conv = w["conversation_id"]
    o = await item(conn, "offer", conv)
    env.expect(SEQ_RE.match(str(o.get("seq"))) and o.get("language") == "en-US"
               and o.get("customer_name") == "Olga" and o.get("tenant") == "default"
               and o.get("queue") == "offers" and isinstance(o.get("expires_ms"), int)
               and isinstance(o.get("ts"), int)
               and 29000 <= o["expires_ms"] - o["ts"] <= 31000, f"offer shape: {o}")
    await conn.send({"type": "ack", "seq": o["seq"]})
    # Offered is not assigned: no replies or close before the accept.
    await refused(env, conn, {"type": "message", "conversation_id": conv, "id": "early",
                              "text": "x"}, "not-assigned", what="message to an open offer")
    s = len(conn.frames)
    a1 = await req(conn, {"type": "accept", "conversation_id": conv, "id": "r3"})
    env.expect(a1.get("type") == "ack" and a1.get("conversation_id") == conv, f"accept {a1}")
    asg = await item(conn, "assigned", conv, start=s)
    env.expect(conn.frames.index(a1) < conn.frames.index(asg), "ack before assigned")
    a2 = await req(conn, {"type": "accept", "conversation_id": conv, "id": "r3b"})
    env.expect(a2.get("type") == "ack" and a2.get("conversation_id") == conv,
               f"accepting again answers the same ack: {a2}")
    rj = await req(conn, {"type": "reject", "conversation_id": conv, "id": "r3c"})
    env.expect(rj.get("type") == "error" and rj.get("code") == "not-assigned",
               f"reject after accept: {rj}")
    # Second offer: reject with a reason.
    c2 = await cust_conn(d, "second")
    w2 = await hello(c2, attributes={"kind": "offer"})
    conv2 = w2["conversation_id"]
    o2 = await item(conn, "offer", conv2)
    await conn.send({"type": "ack", "seq": o2["seq"]})
    for i, reason in enumerate(["", "x" * 65, "a\nb", "a\u007fb", "a\u0085b", 5]):
        await refused(env, conn, {"type": "reject", "conversation_id": conv2, "reason": reason,
                                  "id": f"rr{i}"}, "bad-request",
                      what=f"reject reason {reason!r}"[:60])
    s = len(conn.frames)
    rj = await req(conn, {"type": "reject", "conversation_id": conv2, "reason": "wrong language",
                          "id": "r4"})
    env.expect(rj.get("type") == "ack" and rj.get("conversation_id") == conv2, f"reject {rj}")
    rv = await item(conn, "revoked", conv2, start=s)
    env.expect(rv.get("reason") == "rejected: wrong language" and SEQ_RE.match(str(rv.get("seq"))),
               f"revoked after reject: {rv}")
    await conn.send({"type": "ack", "seq": rv["seq"]})
    # Accept/reject of an offer never made: not-assigned.
    await refused(env, conn, {"type": "accept", "conversation_id": "nope", "id": "n1"},
                  "not-assigned", what="accept never offered")
    await refused(env, conn, {"type": "reject", "conversation_id": conv2, "id": "n2"},
                  "not-assigned", what="reject after reject")
    # Third: reject without reason -> plain `rejected`. Needs another agent
    # (the conversation is not offered to ana again).
    c3 = await cust_conn(d, "third")
    w3 = await hello(c3, attributes={"kind": "offer"})
    o3 = await item(conn, "offer", w3["conversation_id"])
    s = len(conn.frames)
    await req(conn, {"type": "reject", "conversation_id": w3["conversation_id"], "id": "r5"})
    rv = await item(conn, "revoked", w3["conversation_id"], start=s)
    env.expect(rv.get("reason") == "rejected", f"reject without reason: {rv}")
    del o3


@time_limit(40)
async def test_transfer_to_queue_and_agent(env):
    _, d = start(env)
    tok = add_agent(d, "ana", "Ana", "en", 2)
    tok_l = add_agent(d, "luis", "Luis", "en", 2)
    aconn, c, w, a = await assigned_pair(env, d, tok)
    conv = w["conversation_id"]
    lconn, _ = await login(d, "luis", tok_l)
    for i, extra in enumerate([{}, {"queue": "other", "agent": "luis"},
                               {"queue": "no-such-queue"}, {"agent": "ghost"},
                               {"agent": "ana"}, {"queue": "a b"},
                               {"agent": "luis", "note": "x" * 4097}]):
        await refused(env, aconn, {"type": "transfer", "conversation_id": conv,
                                   "id": f"t{i}", **extra}, "bad-request",
                      what=f"transfer {extra}"[:70])
    await refused(env, lconn, {"type": "transfer", "conversation_id": conv, "agent": "ana",
                               "id": "tl"}, "not-assigned", what="transfer someone's conv")
    await req(lconn, {"type": "presence", "presence": "available", "id": "p"})
    s = len(aconn.frames)
    sc = len(c.frames)
    t = await req(aconn, {"type": "transfer", "conversation_id": conv, "agent": "luis",
                          "note": "Wants a refund", "id": "r8"})
    env.expect(t.get("type") == "ack" and t.get("conversation_id") == conv, f"transfer ack {t}")
    cl = await item(aconn, "closed", conv, start=s)
    env.expect(cl.get("reason") == "transferred", f"closed after transfer: {cl}")
    await aconn.send({"type": "ack", "seq": cl["seq"]})
    la = await item(lconn, "assigned", conv)
    le = await item(lconn, "event", conv)
    env.expect(le.get("event") == "transferred" and le.get("name") == "Ana"
               and le.get("text") == "Wants a refund", f"transferred event for luis: {le}")
    env.expect(lconn.frames.index(la) < lconn.frames.index(le), "assigned before event")
    await ack_all(lconn)
    ce = await c.wait_for(lambda f: f.get("type") == "event" and f.get("event") == "transferred",
                          10, "customer transferred event", sc)
    env.expect(ce.get("name") == "Ana" and "text" not in ce, f"customer's transferred: {ce}")
    await c.wait_for(lambda f: f.get("type") == "event" and f.get("event") == "assigned", 10,
                     "assigned after transfer", c.frames.index(ce))
    env.expect(not any("Wants a refund" in json.dumps(f) for f in c.frames),
               "customer saw the transfer note")
    # Transfer to a queue.
    s = len(lconn.frames)
    s_a = len(aconn.frames)
    t = await req(lconn, {"type": "transfer", "conversation_id": conv, "queue": "other",
                          "id": "r7"})
    env.expect(t.get("type") == "ack" and t.get("conversation_id") == conv, f"to queue {t}")
    cl = await item(lconn, "closed", conv, start=s)
    env.expect(cl.get("reason") == "transferred", f"closed after queue transfer: {cl}")
    # Neither luis (who transferred it now) nor ana (who transferred it
    # before) gets it back; a third agent takes it from queue `other`.
    tok_m = add_agent(d, "maria", "Maria", "en", 2)
    mconn, _ = await login(d, "maria", tok_m)
    await req(mconn, {"type": "presence", "presence": "available", "id": "p"})
    a2 = await item(mconn, "assigned", conv, timeout=10)
    env.expect(a2.get("queue") == "other", f"assigned from queue 'other': {a2}")
    env.expect(not aconn.find(lambda f: f.get("type") == "assigned", s_a)
               and not lconn.find(lambda f: f.get("type") == "assigned", s),
               "routed back to an agent who transferred it")


@time_limit(40)
async def test_wrapup_end(env):
    _, d = start(env)
    tok = add_agent(d, "ana", "Ana", "en", 2)
    await refused_wrapup(env, d, tok)


async def refused_wrapup(env, d, tok):
    aconn, c, w, a = await assigned_pair(env, d, tok, attributes={"kind": "wrap"})
    conv = w["conversation_id"]
    r = await req(aconn, {"type": "wrapup_end", "channel": "chat", "id": "r0"})
    env.expect(r == {"type": "ack", "id": "r0", "_t": r["_t"]},
               f"wrapup_end outside wrap-up: {r}")
    for i, extra in enumerate([{}, {"channel": "fax"}, {"channel": 1}]):
        await refused(env, aconn, {"type": "wrapup_end", "id": f"w{i}", **extra},
                      "bad-request", what=f"wrapup_end {extra}")
    await req(aconn, {"type": "close", "conversation_id": conv, "id": "x"})
    await ack_all(aconn)
    # In wrap-up (60 s): a new chat waits.
    c2 = await cust_conn(d, "second")
    w2 = await hello(c2, attributes={"kind": "wrap"})
    await asyncio.sleep(1.0)
    env.expect(not aconn.find(lambda f: f.get("type") == "assigned"
                              and f.get("conversation_id") == w2["conversation_id"]),
               "assigned during wrap-up")
    r = await req(aconn, {"type": "wrapup_end", "channel": "chat", "id": "r6"})
    env.expect(r.get("type") == "ack" and r.get("id") == "r6", f"wrapup_end: {r}")
    await item(aconn, "assigned", w2["conversation_id"], timeout=5)
    r = await req(aconn, {"type": "wrapup_end", "channel": "email", "id": "r7"})
    env.expect(r.get("type") == "ack", f"wrapup_end email: {r}")


@time_limit(40)
async def test_history_of_earlier_conversations(env):
    _, d = start(env)
    tok = add_agent(d, "ana", "Ana", "en", 2)
    tok_b = add_agent(d, "bob", "Bob", "en", 2)
    aconn, c, w, a = await assigned_pair(env, d, tok, customer_id="cust-h", name="Hana")
    conv1 = w["conversation_id"]
    await req(c, {"type": "message", "id": "c-1", "text": "hola"})
    await req(aconn, {"type": "message", "conversation_id": conv1, "id": "a-1", "text": "hi"})
    await req(aconn, {"type": "close", "conversation_id": conv1, "id": "x1"})
    await ack_all(aconn)
    await c.close()
    c2 = await cust_conn(d, "returning")
    w2 = await hello(c2, customer_id="cust-h", name="Hana")
    conv2 = w2["conversation_id"]
    a2 = await item(aconn, "assigned", conv2)
    env.expect(a2.get("history") == [conv1] and a2.get("customer_id") == "cust-h",
               f"assigned history: {a2}")
    await ack_all(aconn)
    s = len(aconn.frames)
    r = await req(aconn, {"type": "history", "conversation_id": conv2, "earlier": conv1,
                          "id": "r9"})
    env.expect(r.get("type") == "ack" and r.get("conversation_id") == conv2,
               f"history ack: {r}")
    hist = [f for f in aconn.frames[s:aconn.frames.index(r)] if f.get("type") == "history"]
    env.expect(all(f.get("conversation_id") == conv1 and SEQ_RE.match(str(f.get("seq")))
                   for f in hist), f"history items: {hist}")
    seqs = [f["seq"] for f in hist]
    env.expect(seqs == sorted(seqs, key=seq_key), f"history order: {seqs}")
    msgs = [f for f in hist if f.get("kind") == "message"]
    env.expect([(f.get("from"), f.get("text")) for f in msgs]
               == [("customer", "hola"), ("agent", "hi")], f"history messages: {msgs}")
    env.expect(msgs and msgs[0].get("name") == "Hana" and msgs[1].get("name") == "Ana",
               f"history message names: {msgs}")
    evs = [f.get("event") for f in hist if f.get("kind") == "event"]
    env.expect("assigned" in evs and evs[-1] == "closed", f"history events: {evs}")
    # Not this agent's conversation: not-assigned; bad earlier: bad-request/not-assigned.
    bconn, _ = await login(d, "bob", tok_b)
    await refused(env, bconn, {"type": "history", "conversation_id": conv2, "earlier": conv1,
                               "id": "h1"}, "not-assigned", what="history of another's conv")
    await refused(env, aconn, {"type": "history", "conversation_id": conv2, "earlier": "zzz",
                               "id": "h2"}, "not-assigned", what="history: earlier not in list")
    await refused(env, aconn, {"type": "history", "conversation_id": conv2, "id": "h3"},
                  "bad-request", what="history without earlier")
    # After the close the conversation is still "this agent's (closed)".
    await req(aconn, {"type": "close", "conversation_id": conv2, "id": "x2"})
    r = await req(aconn, {"type": "history", "conversation_id": conv2, "earlier": conv1,
                          "id": "r10"})
    env.expect(r.get("type") == "ack", f"history after close: {r}")


@time_limit(40)
async def test_supervisor_team_and_monitor(env):
    _, d = start(env)
    tok = add_agent(d, "ana", "Ana", "en", 2)
    tok_e = add_agent(d, "eve", "Eve", "en", 1)
    tok_s = ctl(d, "agent", "add", "--id", "sam", "--name", "Sam", "--languages", "fr",
                "--capacity", "1", "--supervises", "ana,ghost").stdout.strip()
    aconn, c, w, a = await assigned_pair(env, d, tok, name="Ana C")
    conv = w["conversation_id"]
    await req(aconn, {"type": "message", "conversation_id": conv, "id": "a-1", "text": "hi"})
    await req(c, {"type": "message", "id": "c-1", "text": "hola"})
    await req(aconn, {"type": "presence", "presence": "break", "reason": "lunch", "id": "pb"})
    sconn, _ = await login(d, "sam", tok_s)
    s = len(sconn.frames)
    r = await req(sconn, {"type": "team", "id": "r10"})
    env.expect(r == {"type": "ack", "id": "r10", "_t": r["_t"]}, f"team ack {r}")
    team = [f for f in sconn.frames[s:sconn.frames.index(r)] if f.get("type") == "team"]
    env.expect(len(team) == 2, f"team frames: {team}")
    if len(team) == 2:
        ag, cv = team
        env.expect(ag.get("kind") == "agent" and ag.get("agent_id") == "ana"
                   and ag.get("name") == "Ana" and ag.get("presence") == "break"
                   and ag.get("reason") == "lunch"
                   and ag.get("load") == {"chat": 1, "email": 0, "voice": 0}
                   and ag.get("capacity") == {"chat": 2, "email": 0, "voice": 0}
                   and "seq" not in ag, f"team agent frame: {ag}")
        env.expect(cv.get("kind") == "conversation" and cv.get("agent_id") == "ana"
                   and cv.get("conversation_id") == conv and cv.get("customer_name") == "Ana C"
                   and cv.get("language") == "en" and cv.get("queue") == "general"
                   and cv.get("state") == "assigned" and cv.get("tenant") == "default",
                   f"team conversation frame: {cv}")
    s = len(sconn.frames)
    r = await req(sconn, {"type": "monitor", "conversation_id": conv, "id": "r11"})
    env.expect(r.get("type") == "ack" and r.get("conversation_id") == conv, f"monitor ack {r}")
    mon = [f for f in sconn.frames[s:sconn.frames.index(r)] if f.get("type") == "monitor"]
    kinds = [(f.get("kind"), f.get("event") or f.get("from")) for f in mon]
    env.expect(kinds[:1] == [("event", "assigned")] and ("message", "agent") in kinds
               and ("message", "customer") in kinds, f"monitor frames: {kinds}")
    ev = mon[0] if mon else {}
    env.expect(ev.get("name") == "Ana" and SEQ_RE.match(str(ev.get("seq"))),
               f"monitor assigned event name: {ev}")
    # Cannot write to it.
    await refused(env, sconn, {"type": "message", "conversation_id": conv, "id": "s1",
                               "text": "x"}, "not-assigned", what="supervisor writes")
    # Not supervised / nonexistent / bad id.
    econn, _ = await login(d, "eve", tok_e)
    await refused(env, econn, {"type": "monitor", "conversation_id": conv, "id": "e1"},
                  "not-assigned", what="monitor by non-supervisor")
    r = await req(econn, {"type": "team", "id": "e2"})
    env.expect(r.get("type") == "ack" and not [f for f in econn.frames
                                               if f.get("type") == "team"],
               f"team of nobody: ack alone: {r}")
    await refused(env, sconn, {"type": "monitor", "conversation_id": "nope", "id": "s2"},
                  "not-assigned", what="monitor unknown")
    await refused(env, sconn, {"type": "monitor", "conversation_id": "a b", "id": "s3"},
                  "bad-request", what="monitor bad id")
    await refused(env, sconn, {"type": "monitor", "id": "s4"}, "bad-request",
                  what="monitor without conversation_id")


@time_limit(40)
async def test_agent_disconnect_goes_offline_and_keeps_work(env):
    _, d = start(env, {"routing": {"agent_grace_s": 30}})
    tok = add_agent(d, "ana", "Ana", "en", 2)
    aconn, c, w, a = await assigned_pair(env, d, tok)
    conv = w["conversation_id"]
    await aconn.close()
    # (the daemon sees the close on its own schedule)
    await poll(lambda: '"offline"' in ctl(d, "--json", "agent", "show", "ana").stdout, 10)
    out = ctl(d, "--json", "agent", "show", "ana").stdout
    log(f"agent show after disconnect: {out[:300]}")
    env.expect('"offline"' in out, f"agent offline after disconnect: {out[:300]}")
    await req(c, {"type": "message", "id": "c-9", "text": "still there?"})
    conn2, w2 = await login(d, "ana", tok, label="back")
    m = await item(conn2, "message", conv, timeout=5)
    env.expect(m.get("id") == "c-9", f"message waits in the inbox: {m}")
    env.expect(w2.get("presence") == "away", f"login does not make available: {w2}")


@time_limit(40)
async def test_ack_rate_exemption(env):
    # Doc: an agent's `ack` frames are not counted (as long as they do not
    # outnumber the frames the server sent).
    _, d = start(env, {"websocket": {"max_messages_per_second": 2}})
    tok = add_agent(d, "ana", "Ana", "en", 2)
    conn, _ = await login(d, "ana", tok)
    await req(conn, {"type": "presence", "presence": "available", "id": "p"})
    c = await cust_conn(d)
    w = await hello(c)
    conv = w["conversation_id"]
    await item(conn, "assigned", conv)
    for i in range(8):
        await req(c, {"type": "message", "id": f"c-{i}", "text": "x"})
        await asyncio.sleep(0.45)
    await item(conn, "message", conv, extra=lambda f: f.get("id") == "c-7")
    await ack_all(conn)
    await asyncio.sleep(0.5)
    env.expect(not conn.closed, f"acks counted as flood: {conn.close_code} "
               f"{conn.frames[-3:]}")
    # More acks than frames sent (repeat acks): counted then.
    try:
        for _ in range(30):
            await conn.send({"type": "ack", "seq": conn.frames[1].get("seq", "1-0")})
    except websockets.exceptions.ConnectionClosed:
        pass
    await asyncio.sleep(0.5)
    await poll(lambda: conn.closed, 10)  # (the flood close comes on the server's schedule)
    log(f"after 30 surplus acks: closed={conn.closed} {conn.close_code}")
    env.expect(conn.closed and conn.close_code == 1008,
               f"surplus acks should count toward the flood limit: closed={conn.closed}")


@time_limit(40)
async def test_offer_timeout_revoked_and_missed_offers_break(env):
    _, d = start(env, {"routing": {"max_missed_offers": 1}}, queues="""
queues:
  - name: offers
    auto_accept: false
    offer_timeout_s: 1
""")
    tok = add_agent(d, "ana", "Ana", "en", 2)
    conn, _ = await login(d, "ana", tok)
    await req(conn, {"type": "presence", "presence": "available", "id": "p"})
    c = await cust_conn(d)
    w = await hello(c)
    conv = w["conversation_id"]
    o = await item(conn, "offer", conv)
    await conn.send({"type": "ack", "seq": o["seq"]})
    rv = await item(conn, "revoked", conv, timeout=10)
    env.expect(rv.get("reason") == "timeout", f"revoked after the offer timeout: {rv}")
    await conn.send({"type": "ack", "seq": rv["seq"]})
    await refused(env, conn, {"type": "accept", "conversation_id": conv, "id": "late"},
                  "not-assigned", what="accept after the timeout")
    await asyncio.sleep(0.5)
    conn2, w2 = await login(d, "ana", tok, label="relogin")
    env.expect(w2.get("presence") == "break", f"after missed offers the welcome shows break: {w2}")
    out = ctl(d, "--json", "agent", "show", "ana").stdout
    env.expect("missed-offers" in out, f"reason missed-offers: {out[:300]}")


@time_limit(30)
async def test_too_many_connections_per_ip(env):
    _, d = start(env, {"websocket": {"max_connections_per_ip": 2}})
    a = await cust_conn(d, "one")
    b = await cust_conn(d, "two")
    c = await cust_conn(d, "three")
    await c.wait_closed(5, "third connection")
    e = c.find(lambda f: f.get("type") == "error")
    env.expect(e is not None and e.get("code") == "too-many-connections",
               f"third connection: {c.frames}")
    env.expect(c.close_code == 1013 and c.close_reason == "too-many-connections",
               f"close: {c.close_code} {c.close_reason!r}")
    await a.close()
    await asyncio.sleep(0.3)
    dd = await cust_conn(d, "four")
    await hello(dd)
    del b


@time_limit(30)
async def test_shutdown_closes_1001_going_away(env):
    _, d = start(env)
    tok = add_agent(d, "ana", "Ana", "en", 1)
    c = await cust_conn(d)
    await hello(c)
    ag, _ = await login(d, "ana", tok)
    d.stop()
    for conn in (c, ag):
        await conn.wait_closed(5, "shutdown")
        env.expect(conn.close_code == 1001 and conn.close_reason == "going-away",
                   f"{conn.label}: close {conn.close_code} {conn.close_reason!r}")


SECRET = "s3cr3t-0123456789abcdef"


def test_doc_signature_examples(env):
    import hashlib
    import hmac

    def sig(tenant, cid, attrs={}):
        msg = f"{tenant}|{cid}"
        if attrs:
            msg += "\n" + "".join(f"{k}={attrs[k]}\n" for k in sorted(attrs))
        return hmac.new(SECRET.encode(), msg.encode(), hashlib.sha256).hexdigest()
    a = sig("default", "cust-42")
    b = sig("default", "cust-42", {"tier": "gold", "plan": "pro"})
    assert a == "966b1250266f565bfe421c0b732a23d079c818d1a4dfd8326c69c995be00fc9e", a
    assert b == "60202ac9ce2743cb7d1c00ca69574e3b49ddd73462736bf9cdb7c195e90df2e3", b


@time_limit(40)
async def test_identity_verification_table(env):
    _, d = start(env, {"chat": {"identity_secret": SECRET}})
    good = "966b1250266f565bfe421c0b732a23d079c818d1a4dfd8326c69c995be00fc9e"
    good_attrs = "60202ac9ce2743cb7d1c00ca69574e3b49ddd73462736bf9cdb7c195e90df2e3"
    c = await cust_conn(d)
    w = await hello(c, customer_id="cust-42", customer_signature=good)
    env.expect(w.get("type") == "welcome", f"{w}")
    c = await cust_conn(d)
    w = await hello(c, customer_id="cust-42", customer_signature=good_attrs,
                    attributes={"plan": "pro", "tier": "gold"})
    c = await cust_conn(d)
    w = await hello(c, attributes={})
    for label, fields, code, close in [
            ("no signature", {"customer_id": "cust-42"}, "unauthorized", 1008),
            ("uppercase", {"customer_id": "cust-42", "customer_signature": good.upper()},
             "unauthorized", 1008),
            ("other tenant", {"customer_id": "cust-42", "customer_signature": good,
                              "tenant": "acme"}, "unauthorized", 1008),
            ("attrs not covered", {"customer_id": "cust-42", "customer_signature": good,
                                   "attributes": {"tier": "gold"}}, "unauthorized", 1008),
            ("attr changed", {"customer_id": "cust-42", "customer_signature": good_attrs,
                              "attributes": {"tier": "gold", "plan": "max"}},
             "unauthorized", 1008),
            ("attrs without id", {"attributes": {"tier": "gold"}}, "unauthorized", 1008),
            ("signature without id", {"customer_signature": good}, "bad-request", None),
            ("signature not string", {"customer_id": "cust-42", "customer_signature": 5},
             "bad-request", None)]:
        c = await cust_conn(d, label)
        await refused(env, c, {"type": "hello", "id": "h", **fields}, code, close=close,
                      what=f"verification on: {label}")
        await c.close()


@time_limit(30)
async def test_sighup_limits_apply_to_open_connections(env):
    _, d = start(env)
    c = await cust_conn(d)
    await hello(c)
    a = await req(c, {"type": "message", "id": "m1", "text": "x" * 700})
    env.expect(a.get("type") == "ack", f"700-byte text before the reload: {a}")
    with open(d.cfg_path) as f:
        text = f.read()
    text = text.replace("websocket:\n", "websocket:\n  max_frame_bytes: 512\n", 1)
    text += "chat:\n  max_text_bytes: 128\n"  # (the frame must hold the longest text)
    with open(d.cfg_path, "w") as f:
        f.write(text)
    await reload_limits(d)
    await refused(env, c, {"type": "message", "id": "m2", "text": "x" * 700}, "too-big",
                  close=1009, echo=False, what="700-byte frame after the reload to 512")


@time_limit(30)
async def test_customer_closed_reason_max_wait(env):
    _, d = start(env, queues="""
queues:
  - name: general
    max_wait_s: 1
""")
    c = await cust_conn(d)
    await hello(c)
    ev = await c.wait_for(lambda f: f.get("type") == "event" and f.get("event") == "closed", 10,
                          "closed event")
    env.expect(ev.get("reason") == "max-wait" and SEQ_RE.match(str(ev.get("seq"))),
               f"closed by max wait: {ev}")
    r = await req(c, {"type": "rate", "score": 2, "id": "s1"})
    env.expect(r.get("type") == "ack", f"survey after a max-wait close: {r}")


@time_limit(30)
async def test_agent_lost_requeues_for_customer(env):
    _, d = start(env, {"routing": {"agent_grace_s": 0}})
    tok = add_agent(d, "ana", "Ana", "en", 1)
    tok_b = add_agent(d, "bob", "Bob", "en", 1)
    aconn, c, w, a = await assigned_pair(env, d, tok)
    conv = w["conversation_id"]
    s = len(c.frames)
    await aconn.close()
    ev = await c.wait_for(lambda f: f.get("type") == "event" and f.get("event") == "requeued",
                          10, "requeued event", s)
    env.expect(SEQ_RE.match(str(ev.get("seq"))), f"requeued: {ev}")
    bconn, _ = await login(d, "bob", tok_b)
    await req(bconn, {"type": "presence", "presence": "available", "id": "p"})
    await item(bconn, "assigned", conv)
    ev2 = await c.wait_for(lambda f: f.get("type") == "event" and f.get("event") == "assigned"
                           and f.get("name") == "Bob", 10, "assigned to Bob", s)
    env.expect(c.frames.index(ev) < c.frames.index(ev2), "requeued before assigned")


@time_limit(30)
async def test_language_tag_case_insensitive(env):
    # BCP-47 tags are case-insensitive; the doc's rule is "2-8 letters".
    _, d = start(env)
    tok = add_agent(d, "ana", "Ana", "es", 1)
    conn, _ = await login(d, "ana", tok)
    await req(conn, {"type": "presence", "presence": "available", "id": "p"})
    c = await cust_conn(d)
    await c.send({"type": "hello", "language": "ES-mx", "id": "h"})
    w = await c.wait_for(lambda f: f.get("type") in ("welcome", "error"), 10, "welcome")
    env.expect(w.get("type") == "welcome", f"hello language ES-mx: {w}")
    if w.get("type") == "welcome":
        a = await conn.wait_for(lambda f: f.get("type") == "assigned", 5, "assigned")
        log(f"ES-mx assigned: {a}")


@time_limit(30)
async def test_conversation_message_limit(env):
    # PROTOCOL.md (limits): a conversation holds at most chat.max_messages
    # messages; one more gets bad-request.
    _, d = start(env, {"chat": {"max_messages": 10}})
    c = await cust_conn(d)
    await hello(c)
    answers = []
    for i in range(12):
        answers.append(await req(c, {"type": "message", "id": f"m{i}", "text": "x"}))
    codes = [(a.get("type"), a.get("code"), a.get("reason")) for a in answers]
    log(f"answers: {codes}")
    refusals = [a for a in answers if a.get("type") == "error"]
    env.expect(refusals and all(a.get("code") in ("bad-request",) for a in refusals),
               f"a full conversation's refusal should use a documented code: {codes}")
    env.expect(refusals and all("max_messages" in (a.get("reason") or "") for a in refusals),
               f"a full conversation's refusal should say why: {codes}")
    env.expect(not c.closed, "closed by a full conversation")


# ==========================================================================
# Mismatches found by a review of 2026-12-06 (each failed before its fix).

@time_limit(30)
async def test_hello_name_rejects_c1_controls(env):
    # PROTOCOL.md l.49: `name` is 1-256 bytes of UTF-8 without control
    # characters (C1 U+0080-U+009F are control characters; attribute values,
    # reject reasons are checked for them).
    _, d = start(env)
    for ch in ("\u0085", "\u009b", "\u0080"):
        c = await cust_conn(d, f"name with {ch!r}")
        await refused(env, c, {"type": "hello", "name": f"a{ch}b", "id": "h"}, "bad-request",
                      what=f"hello name with C1 {ch!r}")
        await c.close()


@time_limit(40)
async def test_resume_with_another_tenant_is_refused(env):
    # PROTOCOL.md l.176: "`tenant` must be the one given in `hello` (omit it
    # when `hello` omitted it)". A wrong token is `unauthorized` and a close.
    _, d = start(env)
    c = await cust_conn(d)
    w = await hello(c)  # default tenant, omitted
    ct = await cust_conn(d, "tenant acme")
    wt = await hello(ct, tenant="acme")
    await c.close()
    await ct.close()
    c1 = await cust_conn(d, "resume naming another tenant")
    e = await refused(env, c1, {"type": "resume", "conversation_id": w["conversation_id"],
                                "tenant": "other", "resume_token": w["resume_token"],
                                "id": "r1"}, "unauthorized", close=1008,
                      what="resume with tenant other (hello had none)")
    if e and e.get("type") == "welcome":
        env.expect(e.get("tenant") == "default",
                   f"the welcome at least should name the conversation's tenant: {e}")
    c2 = await cust_conn(d, "resume omitting tenant acme")
    e = await refused(env, c2, {"type": "resume", "conversation_id": wt["conversation_id"],
                                "resume_token": wt["resume_token"], "id": "r2"},
                      "unauthorized", close=1008, what="resume omitting the hello's tenant acme")
    if e and e.get("type") == "welcome":
        env.expect(e.get("tenant") == "acme",
                   f"the welcome at least should name the conversation's tenant: {e}")


@time_limit(30)
async def test_agent_typing_unknown_conversation_not_assigned(env):
    # PROTOCOL.md l.417-419: agent `typing`: "no answer unless it fails
    # (`not-assigned` when the conversation is not the agent's)".
    _, d = start(env)
    tok = add_agent(d, "ana", "Ana", "en", 2)
    conn, _ = await login(d, "ana", tok)
    await refused(env, conn, {"type": "typing", "conversation_id": "nope", "id": "t1"},
                  "not-assigned", what="agent typing in a conversation that does not exist")
    c = await cust_conn(d)
    w = await hello(c)  # queued: ana is away
    await refused(env, conn, {"type": "typing", "conversation_id": w["conversation_id"],
                              "id": "t2"}, "not-assigned",
                  what="agent typing in a queued conversation that is not hers")


@time_limit(40)
async def test_welcome_state_values(env):
    # PROTOCOL.md l.168: "`state` is `queued` or `assigned`" (hello and resume
    # welcome, l.180 "same shape").
    _, d = start(env)
    tok = add_agent(d, "ana", "Ana", "en", 2)
    conn, _ = await login(d, "ana", tok)
    await req(conn, {"type": "presence", "presence": "available", "id": "p"})
    # An offer not yet accepted: the customer gets no `assigned` event until
    # the accept, and a reject sends it back to waiting.
    c = await cust_conn(d)
    w = await hello(c, attributes={"kind": "offer"})
    conv = w["conversation_id"]
    await item(conn, "offer", conv)
    env.expect(w.get("state") == "queued",
               f"hello welcome while the conversation is only offered: {w}")
    cr = await cust_conn(d, "resume while offered")
    await cr.send({"type": "resume", "conversation_id": conv, "resume_token": w["resume_token"]})
    wr = await cr.wait_for(lambda f: f.get("type") in ("welcome", "error"), 10, "welcome")
    env.expect(wr.get("state") in ("queued", "assigned"),
               f"resume welcome while offered: {wr}")
    # A closed conversation resumed (e.g. for the survey).
    await req(conn, {"type": "accept", "conversation_id": conv, "id": "a"})
    await item(conn, "assigned", conv)
    await req(conn, {"type": "close", "conversation_id": conv, "id": "x"})
    c2 = await cust_conn(d, "resume closed")
    await c2.send({"type": "resume", "conversation_id": conv, "resume_token": w["resume_token"]})
    w2 = await c2.wait_for(lambda f: f.get("type") in ("welcome", "error"), 10, "welcome")
    env.expect(w2.get("state") == "closed",
               f"resume welcome of a closed conversation (documented: closed): {w2}")


@time_limit(40)
async def test_close_or_transfer_of_open_offer_is_not_assigned(env):
    # PROTOCOL.md l.90 `not-assigned`: "agent acted on a conversation that is
    # not theirs"; l.435-437: an offer becomes the agent's by `accept` (the
    # `assigned` item follows). l.411: `close` ends the conversation. An offer
    # not yet accepted must not be closable (nor transferable) by the agent.
    tok_b = None
    _, d = start(env)
    tok = add_agent(d, "ana", "Ana", "en", 2)
    tok_b = add_agent(d, "bob", "Bob", "en", 2)
    conn, _ = await login(d, "ana", tok)
    await req(conn, {"type": "presence", "presence": "available", "id": "p"})
    c = await cust_conn(d)
    w = await hello(c, attributes={"kind": "offer"})
    conv = w["conversation_id"]
    o = await item(conn, "offer", conv)
    await conn.send({"type": "ack", "seq": o["seq"]})
    await refused(env, conn, {"type": "transfer", "conversation_id": conv, "agent": "bob",
                              "id": "t1"}, "not-assigned", what="transfer of an open offer")
    await refused(env, conn, {"type": "close", "conversation_id": conv, "id": "x1",
                              "disposition": "spam"}, "not-assigned",
                  what="close of an open offer")
    await asyncio.sleep(0.3)
    closed = c.find(lambda f: f.get("type") == "event" and f.get("event") == "closed")
    env.expect(closed is None, f"the customer's conversation was closed by an agent who never "
               f"accepted it: {closed}")
    a = await req(conn, {"type": "accept", "conversation_id": conv, "id": "acc"})
    env.expect(a.get("type") == "ack", f"the offer should still be open to accept: {a}")
    del tok_b


if __name__ == "__main__":
    run_tests([
        test_bad_json_variants_close_1007,
        test_unsupported_version_closes_1002,
        test_customer_refusals_stay_open_and_echo_id,
        test_customer_hello_welcome_and_message_limits,
        test_too_big_closes_1009,
        test_flood_burst_and_close_1008,
        test_auth_timeout_closes_1008,
        test_http_paths_and_headers,
        test_resume_after_seq_and_bad_token,
        test_typing_both_ways,
        test_ping_answered_by_the_server_itself,
        test_position_while_waiting,
        test_survey_rules,
        test_customer_close_frame,
        test_agent_login_welcome_and_refusals,
        test_presence_and_break_reasons,
        test_assigned_items_and_redelivery,
        test_messages_before_assignment_follow_assigned,
        test_agent_message_and_close_rules,
        test_offer_accept_reject,
        test_transfer_to_queue_and_agent,
        test_wrapup_end,
        test_history_of_earlier_conversations,
        test_supervisor_team_and_monitor,
        test_agent_disconnect_goes_offline_and_keeps_work,
        test_ack_rate_exemption,
        test_offer_timeout_revoked_and_missed_offers_break,
        test_too_many_connections_per_ip,
        test_shutdown_closes_1001_going_away,
        test_doc_signature_examples,
        test_identity_verification_table,
        test_sighup_limits_apply_to_open_connections,
        test_customer_closed_reason_max_wait,
        test_agent_lost_requeues_for_customer,
        test_language_tag_case_insensitive,
        test_conversation_message_limit,
        test_hello_name_rejects_c1_controls,
        test_resume_with_another_tenant_is_refused,
        test_agent_typing_unknown_conversation_not_assigned,
        test_welcome_state_values,
        test_close_or_transfer_of_open_offer_is_not_assigned,
    ])
