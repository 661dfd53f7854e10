"""test_ws_edges.py - the websocket adapter (adapters/websocket) on its
edges: connections closing while the router is behind, limits, slow readers,
SIGTERM.

Each test names the behaviour of docs/PROTOCOL.md / docs/ARCHITECTURE.md it
checks. Tests 1-3 failed before their fixes (agent.gone dropped while the bus
was full; per-IP refusals using global slots; a draining `unavailable`
without the frame's id); 4-6 guard what already held (slow readers, close
codes, ids with ':' and '@').
Run: OMR_BUILD_DIR=build/asan python3 tests/integration/test_ws_edges.py"""

import asyncio
import base64
import json
import os
import signal
import socket
import struct
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from omr_harness import (Agent, Conn, Customer, add_agent, agent_key, conv_key,  # noqa: E402
                         log, poll, reload_limits, run_tests, time_limit, wait_field)


# --------------------------------------------------------------------------
# raw websocket client (blocking socket): slow readers, half-closes, a chosen
# source address.

def raw_ws(port, path, src=None, rcvbuf=None, timeout=5.0):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    if src:
        s.bind((src, 0))
    s.settimeout(timeout)
    s.connect(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall((f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
               f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
               f"Sec-WebSocket-Version: 13\r\n\r\n").encode())
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = s.recv(4096)
        if not chunk:
            raise AssertionError(f"handshake: closed after {buf!r}")
        buf += chunk
    head, rest = buf.split(b"\r\n\r\n", 1)
    if b" 101 " not in head.split(b"\r\n")[0]:
        raise AssertionError(f"handshake refused: {head!r}")
    return s, rest


def ws_frame(payload, opcode=1, fin=True):
    if isinstance(payload, str):
        payload = payload.encode()
    mask = os.urandom(4)
    b0 = (0x80 if fin else 0) | opcode
    n = len(payload)
    if n < 126:
        hdr = struct.pack("!BB", b0, 0x80 | n)
    elif n < 65536:
        hdr = struct.pack("!BBH", b0, 0x80 | 126, n)
    else:
        hdr = struct.pack("!BBQ", b0, 0x80 | 127, n)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return hdr + mask + masked


def parse_frames(buf):
    """Returns ([(opcode, payload)], rest)."""
    out = []
    while len(buf) >= 2:
        b0, b1 = buf[0], buf[1]
        n = b1 & 0x7F
        off = 2
        if n == 126:
            if len(buf) < 4:
                break
            n = struct.unpack("!H", buf[2:4])[0]
            off = 4
        elif n == 127:
            if len(buf) < 10:
                break
            n = struct.unpack("!Q", buf[2:10])[0]
            off = 10
        if len(buf) < off + n:
            break
        out.append((b0 & 0x0F, buf[off:off + n]))
        buf = buf[off + n:]
    return out, buf


def read_all_frames(s, timeout, until=None):
    """Reads frames until the peer closes, `until(frames)` is true or
    `timeout` passes. Returns (frames, closed_by_peer)."""
    frames, buf = [], b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        s.settimeout(max(0.05, deadline - time.monotonic()))
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            break
        except ConnectionResetError:
            return frames, True
        if not chunk:
            return frames, True
        buf += chunk
        got, buf = parse_frames(buf)
        frames.extend(got)
        if until and until(frames):
            break
    return frames, False


def text_frames(frames):
    out = []
    for op, p in frames:
        if op == 1:
            try:
                out.append(json.loads(p))
            except ValueError:
                out.append({"_raw": p})
    return out


def close_of(frames):
    for op, p in frames:
        if op == 8:
            code = struct.unpack("!H", p[:2])[0] if len(p) >= 2 else None
            return code, p[2:].decode(errors="replace")
    return None


# --------------------------------------------------------------------------
# 1. A desktop that closes is reported at once (agent.gone, ARCHITECTURE.md
# "Heartbeats"; PROTOCOL.md "Closing the websocket makes the agent offline").
# The report is a bus request like any other; when the bus is full (the
# router is behind, bus.max_pending reached) it must still go out, later.

@time_limit(90)
async def test_agent_gone_reported_when_bus_full(env):
    r = env.redis()
    d = env.daemon(r, config={"bus": {"max_pending": 1, "ack_timeout_ms": 1000,
                                      "max_attempts": 10}})
    token = add_agent(d, "ghost", "Ghost", "en", 2)
    agent = Agent(d.url, "ghost", token)
    await agent.login()
    await agent.presence("available")
    busy = Customer(d.url, "busy customer")
    await busy.hello(language="de", name="Filler")  # a conversation, not for our agent
    assert await wait_field(r, agent_key("ghost"), "presence", "available", 5) == "available"

    # The router falls behind: Redis stops answering. One request fills the bus.
    os.kill(r.proc.pid, signal.SIGSTOP)
    try:
        await busy.conn.send({"type": "message", "id": "fill-1", "text": "filling the bus"})
        await asyncio.sleep(0.3)
        # The agent closes its desktop while the bus is full.
        await agent.close()
        await asyncio.sleep(0.5)
    finally:
        os.kill(r.proc.pid, signal.SIGCONT)
    await busy.conn.wait_for(lambda f: f.get("id") == "fill-1", 20, "answer to fill-1")

    lost = "could not report closed connection" in d.log_text()
    if lost:
        log("daemon log: 'could not report closed connection' (agent.gone dropped)")
    got = await wait_field(r, agent_key("ghost"), "presence", "offline", 8)
    # Harm: a new customer is assigned to the desktop that is gone.
    victim = Customer(d.url, "victim")
    w = await victim.hello(language="en", name="Victim")
    log(f"agent presence 8 s after the desktop closed: {got!r}; new customer welcome "
        f"state={w.get('state')!r}")
    env.expect(got == "offline",
               f"agent 'ghost' closed its desktop while the bus was full; presence stayed "
               f"{got!r} (want 'offline'); agent.gone dropped={lost}; new customer was "
               f"{w.get('state')} (assigned to a desktop that is gone)")
    await victim.close()
    await busy.close()


# --------------------------------------------------------------------------
# 2. Connections refused for the per-IP limit still occupy slots of
# websocket.max_connections until their close handshake ends: one address
# can lock every other address out.

def refused_conn(port, src):
    """Opens /ws/customer from src and returns the socket, never reading."""
    s, _ = raw_ws(port, "/ws/customer", src=src)
    return s


@time_limit(60)
async def test_per_ip_refusals_do_not_use_global_slots(env):
    r = env.redis()
    d = env.daemon(r, config={"websocket": {"max_connections": 6,
                                            "max_connections_per_ip": 2}})
    held = []
    # Address A: its 2 allowed connections, then 8 more the server refuses
    # (too-many-connections, 1013). The client never reads nor answers the
    # close; it also keeps nothing else open.
    for _ in range(2):
        s, _ = raw_ws(d.port, "/ws/customer", src="127.0.0.1")
        held.append(s)
    for _ in range(8):
        held.append(refused_conn(d.port, "127.0.0.1"))
    await asyncio.sleep(0.3)
    # Address B has no connection at all: it must get in.
    s, rest = raw_ws(d.port, "/ws/customer", src="127.0.0.2")
    s.sendall(ws_frame(json.dumps({"type": "hello", "v": 1, "language": "en"})))
    frames, closed = read_all_frames(
        s, 5, until=lambda fs: any(t.get("type") in ("welcome", "error")
                                   for t in text_frames(fs)))
    got = text_frames(parse_frames(rest)[0] + frames) if rest else text_frames(frames)
    first = next((t for t in got if t.get("type") in ("welcome", "error")), None)
    log(f"127.0.0.2 (no other connection) got: {first}")
    env.expect(first is not None and first.get("type") == "welcome",
               f"a client from 127.0.0.2 was refused while 127.0.0.1 held only its 2 allowed "
               f"connections (+8 refused ones): {first}")
    s.close()
    # How long one refused connection keeps its slot (the attacker's cost).
    t0 = time.monotonic()
    while time.monotonic() - t0 < 20:
        s, rest = raw_ws(d.port, "/ws/customer", src="127.0.0.2")
        fr, _ = read_all_frames(s, 0.3)
        s.close()
        if not text_frames(parse_frames(rest)[0] + fr):
            log(f"127.0.0.2 got a slot {time.monotonic() - t0:.1f}s later (refused "
                f"connections of 127.0.0.1 linger that long)")
            break
        await asyncio.sleep(0.3)
    for h in held:
        h.close()


# --------------------------------------------------------------------------
# 3. While the daemon stops it refuses new frames with `unavailable` ("resend
# it"); like every refusal the error must echo the frame's id (PROTOCOL.md
# "Errors": "`id` is echoed when the refused frame had one"), or the client
# cannot tell which request to resend. Then 1001 going-away.

@time_limit(60)
async def test_drain_refusal_echoes_id_then_going_away(env):
    r = env.redis()
    d = env.daemon(r, config={"bus": {"ack_timeout_ms": 3000, "max_attempts": 2}})
    c = Customer(d.url, "drained customer")
    await c.hello(language="en", name="Drain")
    await c.send("before the stop")
    os.kill(r.proc.pid, signal.SIGSTOP)  # keep one request in flight: phase 1 lasts
    try:
        await c.conn.send({"type": "message", "id": "m-inflight", "text": "in flight"})
        await asyncio.sleep(0.3)
        d.proc.send_signal(signal.SIGTERM)
        await asyncio.sleep(0.5)
        start = len(c.conn.frames)
        await c.conn.send({"type": "message", "id": "m-late", "text": "after SIGTERM"})
        f = await c.conn.wait_for(lambda f: f.get("type") == "error", 5,
                                  "error for a frame sent while draining", start)
    finally:
        os.kill(r.proc.pid, signal.SIGCONT)
    log(f"frame sent while draining got: {f}")
    env.expect(f.get("code") == "unavailable", f"want unavailable, got {f}")
    env.expect(f.get("id") == "m-late",
               f"the unavailable error for frame id 'm-late' does not echo the id: {f}")
    code, reason = await c.conn.wait_closed(15, "the stop")
    log(f"closed with {code} {reason!r}; in-flight answered: "
        f"{[x for x in c.conn.frames if x.get('id') == 'm-inflight']}")
    env.expect(code == 1001 and reason == "going-away", f"close {code} {reason!r}")
    d.stop()


# --------------------------------------------------------------------------
# 4. Slow readers: a resume replays a multi-megabyte transcript to clients
# that read slowly or not at all (server queue + lws partial writes). Every
# item must arrive, once, in order; a peer that goes away with frames queued
# and half-written (FIN or RST) must free them; a reader past the queue cap
# that reads nothing for 10 s is cut without a close frame; then SIGTERM with
# readers still stuck.

N_BIG = 1300
TEXT_BIG = 4000


async def big_transcript(d, r):
    c = Customer(d.url, "writer")
    await c.hello(language="en", name="Writer")
    filler = "x" * (TEXT_BIG - 12)
    for n in range(N_BIG):
        await c.conn.send({"type": "message", "id": f"w-{n}", "text": f"{n:08d}:{filler}"})
    await c.conn.wait_for(lambda f: f.get("type") in ("ack", "error")
                          and f.get("id") == f"w-{N_BIG - 1}", 120, "last ack")
    errs = [f for f in c.conn.frames if f.get("type") == "error"]
    assert not errs, f"writer refused: {errs[:3]}"
    seqs = [eid for eid, f in r.client().xrange(conv_key(c.conversation_id) + ":log")]
    return c, seqs


def resume_raw(d, c, rcvbuf=4096, src=None):
    s, rest = raw_ws(d.port, "/ws/customer", src=src, rcvbuf=rcvbuf)
    s.sendall(ws_frame(json.dumps({"type": "resume", "v": 1,
                                   "conversation_id": c.conversation_id,
                                   "resume_token": c.resume_token, "after": "0"})))
    return s, rest


@time_limit(240)
async def test_slow_readers(env):
    r = env.redis()
    d = env.daemon(r, config={"chat": {"max_messages": 2000},
                              "websocket": {"max_messages_per_second": 100000}})
    c, seqs = await big_transcript(d, r)
    log(f"transcript: {len(seqs)} entries, ~{N_BIG * TEXT_BIG >> 20} MiB")

    # (a) a reader that does not read for 3 s, then reads in small bites.
    s, rest = resume_raw(d, c)
    stuck = [resume_raw(d, c) for _ in range(2)]  # never read; closed below
    await asyncio.sleep(3)
    buf, frames = rest, []
    deadline = time.monotonic() + 90
    loop = asyncio.get_running_loop()

    def read_some():
        try:
            s.settimeout(2)
            return s.recv(3000)
        except socket.timeout:
            return None

    while time.monotonic() < deadline:
        chunk = await loop.run_in_executor(None, read_some)
        if chunk is None or chunk == b"":
            break
        buf += chunk
        got, buf = parse_frames(buf)
        frames.extend(got)
        items = [t for t in text_frames(got) if t.get("type") in ("message", "event")]
        if items and items[-1].get("seq") == seqs[-1]:
            break
    texts = text_frames(frames)
    got_seqs = [t["seq"] for t in texts if t.get("type") in ("message", "event")]
    log(f"slow reader: {len(texts)} frames, {len(got_seqs)} items, first {texts[:1]}")
    env.expect(texts and texts[0].get("type") == "welcome", f"first frame {texts[:1]}")
    env.expect(got_seqs == seqs, f"slow reader got {len(got_seqs)} items of {len(seqs)}; "
               f"in order and complete: {got_seqs == seqs}; first difference at "
               f"{next((i for i, (a, b) in enumerate(zip(got_seqs, seqs)) if a != b), None)}")
    s.close()

    # (b) peers that go away with frames queued and half-written: FIN, RST.
    a, _ = stuck[0]
    a.close()
    b, _ = stuck[1]
    b.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    b.close()
    await asyncio.sleep(1)
    alive = Customer(d.url, "after")
    await alive.hello(language="en", name="After")
    await alive.send("still works")

    # (c) past the queue cap (1.8 MiB with 400 messages) but under the ceiling: kept while the
    # reader may still read; once it has read nothing for 10 s it is cut, without a close frame
    # (test_ws_queue: the ceiling; test_send_queue_edges: cut with nothing more sent to it).
    cfg = open(d.cfg_path).read().replace("max_messages: 2000", "max_messages: 400")
    open(d.cfg_path, "w").write(cfg)
    await reload_limits(d)
    def cuts():
        return d.log_text().count("closing slow connection")
    before = cuts()
    stall, rest = resume_raw(d, c)
    await asyncio.sleep(3)
    stall.sendall(ws_frame(json.dumps({"type": "ping", "id": "early"})))
    await asyncio.sleep(1)
    env.expect(cuts() == before, "a reader past the cap is not cut before 10 s without reading")
    await asyncio.sleep(7)
    stall.sendall(ws_frame(json.dumps({"type": "ping", "id": "late"})))
    ok = await poll(lambda: cuts() > before, 10)
    env.expect(ok, "a reader that read nothing for 10 s is cut")
    frames, closed = await loop.run_in_executor(None, read_all_frames, stall, 60)
    n_items = len([t for t in text_frames(frames) if t.get("type") == "message"])
    log(f"stalled reader: peer closed={closed}, close frame={close_of(frames)}, items={n_items}")
    env.expect(closed and close_of(frames) is None and n_items < N_BIG,
               f"a reader past the queue cap that read nothing for 10 s must be cut without a "
               f"close frame: closed={closed} close={close_of(frames)} items={n_items}")
    stall.close()

    # (d) SIGTERM with readers stuck on a full queue and a half message.
    cfg = open(d.cfg_path).read().replace("max_messages: 400", "max_messages: 2000")
    open(d.cfg_path, "w").write(cfg)
    await reload_limits(d)
    stuck = [resume_raw(d, c) for _ in range(2)]
    half, _ = raw_ws(d.port, "/ws/customer")
    half.sendall(ws_frame('{"type":"hel', fin=False))
    hc, _ = raw_ws(d.port, "/ws/customer")
    hc.sendall(ws_frame(json.dumps({"type": "hello", "v": 1})))
    hc.shutdown(socket.SHUT_WR)
    await asyncio.sleep(2)
    t0 = time.monotonic()
    d.stop()
    log(f"SIGTERM with stuck readers: exited 0 in {time.monotonic() - t0:.1f}s")
    await alive.conn.wait_closed(5)
    env.expect(alive.conn.close_code == 1001, f"normal client closed with "
               f"{alive.conn.close_code} {alive.conn.close_reason!r}")
    for x, _ in stuck:
        x.close()
    half.close()
    hc.close()
    await c.close()


# --------------------------------------------------------------------------
# 5. too-many-connections: the error frame, then close 1013 with the code as
# the reason (PROTOCOL.md "Errors").

@time_limit(30)
async def test_too_many_connections_close_code(env):
    r = env.redis()
    d = env.daemon(r, config={"websocket": {"max_connections_per_ip": 1}})
    keep, _ = raw_ws(d.port, "/ws/customer")
    s, rest = raw_ws(d.port, "/ws/customer")
    frames, closed = read_all_frames(s, 5, until=lambda fs: close_of(fs) is not None)
    frames = parse_frames(rest)[0] + frames
    texts = text_frames(frames)
    log(f"second connection: {texts} close={close_of(frames)}")
    env.expect(texts and texts[0].get("code") == "too-many-connections", f"{texts}")
    env.expect(close_of(frames) == (1013, "too-many-connections"), f"{close_of(frames)}")
    s.close()
    keep.close()


# --------------------------------------------------------------------------
# 6. Ids with ':' and '@' everywhere a client gives one.

@time_limit(60)
async def test_ids_with_colon_and_at(env):
    r = env.redis()
    d = env.daemon(r)
    aid = "ana:desk@acme.example"
    token = add_agent(d, aid, "Ana", "en", 2)
    agent = Agent(d.url, aid, token)
    w = await agent.login()
    env.expect(w.get("agent_id") == aid, f"welcome {w}")
    await agent.presence("available")
    c = Customer(d.url, "colon customer")
    await c.hello(language="en", name="C", customer_id="cust:42@acme.example")
    a = await agent.wait_item(lambda f: f.get("type") == "assigned", 10, "assigned")
    env.expect(a.get("customer_id") == "cust:42@acme.example", f"assigned {a}")
    ack = await c.send("hi", id="m:1@x")
    env.expect(ack.get("id") == "m:1@x", f"ack {ack}")
    m = await agent.wait_item(lambda f: f.get("type") == "message" and f.get("id") == "m:1@x",
                              10, "message m:1@x")
    r2 = await agent.reply(c.conversation_id, "hello", id="r:1@y")
    env.expect(r2.get("id") == "r:1@y", f"reply ack {r2}")
    await c.wait_item(lambda f: f.get("id") == "r:1@y", 10, "reply r:1@y")
    # resume with a seq after a reload, and close with a ':'/'@' disposition
    await c.close()
    await c.resume()
    x = await agent.conn.request({"type": "close", "conversation_id": c.conversation_id,
                                  "disposition": "done:ok@1", "id": "x:1@z"})
    env.expect(x.get("type") == "ack" and x.get("id") == "x:1@z", f"close {x}")
    h = r.client().hgetall(conv_key(c.conversation_id))
    env.expect(h.get("disposition") == "done:ok@1", f"disposition stored {h.get('disposition')}")
    await c.close()
    await agent.close()


# --------------------------------------------------------------------------

if __name__ == "__main__":
    run_tests([
        test_agent_gone_reported_when_bus_full,
        test_per_ip_refusals_do_not_use_global_slots,
        test_drain_refusal_echoes_id_then_going_away,
        test_slow_readers,
        test_too_many_connections_close_code,
        test_ids_with_colon_and_at,
    ])
