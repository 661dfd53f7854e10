"""test_security_edges.py - security and isolation edges (issues 3 and 4).

Each test asserts the documented (or plainly expected) behaviour; the docs line
it follows is quoted in its docstring. Each failed against the build it was
written for (test_closed_sockets_leave_their_addresss_count guards the fix of
the test before it). Run:
    OMR_BUILD_DIR=build/asan python3 tests/integration/test_security_edges.py [test_name]
"""

import asyncio
import os
import socket
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from omr_harness import (TOKEN_RE, Agent, Customer, add_agent, ctl, log, run_tests,  # noqa: E402
                         time_limit)


def add(d, agent_id, name, languages, *extra):
    return add_agent(d, agent_id, name, languages, extra=extra)


async def assigned_to(agent, customer, timeout=15):
    return await agent.wait_item(lambda f: f.get("type") == "assigned"
                                 and f.get("conversation_id") == customer.conversation_id,
                                 timeout, f"assigned {customer.label}")


async def still_acts(agent, conversation_id, text):
    """The desktop's session still works: a reply in its conversation is acked."""
    if agent.conn.closed:
        return None
    try:
        r = await agent.conn.request({"type": "message", "conversation_id": conversation_id,
                                      "id": agent.next_id("late"), "text": text}, 10)
    except AssertionError:
        return None
    return r if r.get("type") == "ack" else None


async def served_twice_and_closed(ana, tenant, customer_id, label):
    """Customer `customer_id` of `tenant` chats twice with ana, who closes both.
    Returns (first, second) Customers; second's assigned item lists first in history."""
    first = Customer(ana.base_url, f"{label} #1")
    await first.hello(language="en", name="Kim", tenant=tenant, customer_id=customer_id)
    await first.send("my card number is 4111-1111-1111-1111", id="k-1")
    await assigned_to(ana, first)
    await ana.reply(first.conversation_id, "thanks, noted", id="a-k1")
    await ana.close_conv(first.conversation_id)
    await first.close()
    second = Customer(ana.base_url, f"{label} #2")
    await second.hello(language="en", name="Kim", tenant=tenant, customer_id=customer_id)
    a = await assigned_to(ana, second)
    assert first.conversation_id in (a.get("history") or []), a
    await ana.close_conv(second.conversation_id)
    await second.close()
    return first, second


async def history(agent, conv, earlier, rid):
    start = len(agent.conn.frames)
    r = await agent.conn.request({"type": "history", "conversation_id": conv,
                                  "earlier": earlier, "id": rid})
    items = [f for f in agent.conn.frames[start:] if f.get("type") == "history"]
    return r, items


# ----------------------------------------------------------------------------
# Agent tokens

@time_limit(120)
async def test_token_reissue_logs_out_old_session(env):
    """README: `omnirouterctl agent token --id ana` - "Issue a new token; the old one
    stops working." An administrator rotates a token because it leaked: a desktop
    logged in with the old token must not keep working (as `revoke` logs it out).
    The same for `agent add` of an existing id ("Create (or replace) an agent;
    prints the new token")."""
    d = env.daemon(env.redis())
    for how in (("token", "issue", "ana"), ("agent", "add", "--id", "ana", "--name", "Ana",
                                             "--languages", "en", "--capacity", "2")):
        old = add(d, "ana", "Ana", "en", "--capacity", "2")
        desk = Agent(d.url, "ana", old, label=f"desktop with the old token ({how[0]})")
        kim = Customer(d.url, "customer kim")
        try:
            await desk.login()
            await desk.presence("available")
            await kim.hello(language="en", name="Kim")
            await assigned_to(desk, kim)
            new = ctl(d, *how).stdout.strip()
            assert TOKEN_RE.match(new) and new != old, new
            try:
                await desk.conn.wait_closed(10, f"`omnirouterctl {' '.join(how)}`")
            except AssertionError:
                pass
            r = await still_acts(desk, kim.conversation_id, "still logged in with the old token")
            env.expect(desk.conn.closed and r is None,
                       f"after `omnirouterctl {' '.join(how)}` the desktop logged in with the "
                       f"old token keeps working: reply acked {r}")
            # (the old token itself is refused at a new login)
        finally:
            await desk.close()
            await kim.close()
        # clean up for the next round
        await asyncio.sleep(0.5)
        desk2 = Agent(d.url, "ana", new)
        await desk2.login()
        await desk2.close_conv(kim.conversation_id)
        await desk2.close()
        await asyncio.sleep(0.5)
        ctl(d, "agent", "remove", "ana")


@time_limit(90)
async def test_debug_log_holds_no_credentials(env):
    """ARCHITECTURE.md: "Tokens are stored only as SHA-256 hashes."; README: the
    token printed by `agent add` is "the only copy (tokens are stored hashed)".
    With log.level debug (what an operator turns on to troubleshoot, journald keeps
    it) the daemon writes every client frame, agent login tokens and customer
    resume tokens included, into the log in clear."""
    d = env.daemon(env.redis(), config={"log": {"level": "debug"}})
    tok = add_agent(d, "ana", "Ana", "en", 1)
    desk = Agent(d.url, "ana", tok)
    kim = Customer(d.url, "customer kim")
    try:
        await desk.login()
        await kim.hello(language="en", name="Kim")
        await kim.resume()
        await asyncio.sleep(0.5)
        text = d.log_text()
        env.expect(tok not in text, "the agent's login token is in the daemon log in clear: "
                   + next(ln for ln in text.splitlines() if tok in ln)[:300]
                   if tok in text else "")
        env.expect(kim.resume_token not in text,
                   "the customer's resume token is in the daemon log in clear: "
                   + next(ln for ln in text.splitlines() if kim.resume_token in ln)[:300]
                   if kim.resume_token in text else "")
    finally:
        await desk.close()
        await kim.close()


# ----------------------------------------------------------------------------
# Tenant (brand) isolation and per-agent scope

@time_limit(150)
async def test_history_after_tenant_removed(env):
    """Issue 4: "an agent [reads] only conversations of tenants they serve and that are
    assigned to them"; issue 3: brands must not see each other's data. PROTOCOL.md
    (Supervisors): "Who may read what is decided in Redis at each request, so a change
    of supervises or of the tenants applies to the next request". An agent moved off
    a brand (`agent update --tenants`) must not keep reading that brand's customer
    transcripts through `history`."""
    d = env.daemon(env.redis())
    tok = add(d, "ana", "Ana", "en", "--capacity", "2", "--tenants", "acme")
    ana = Agent(d.url, "ana", tok)
    try:
        await ana.login()
        await ana.presence("available")
        first, second = await served_twice_and_closed(ana, "acme", "cust-1", "acme customer")
        r, items = await history(ana, second.conversation_id, first.conversation_id, "h-1")
        assert r.get("type") == "ack" and items, ("sanity: history works while serving acme",
                                                  r)
        ctl(d, "agent", "update", "--id", "ana", "--tenants", "globex")
        r, items = await history(ana, second.conversation_id, first.conversation_id, "h-2")
        assert r.get("type") == "error" and r.get("code") == "not-assigned" and not items, (
            "ana no longer serves acme but still reads an acme customer's transcript: "
            f"{r} {[i.get('text') for i in items]}")
    finally:
        await ana.close()


@time_limit(150)
async def test_reused_agent_id_inherits_old_conversations(env):
    """Issue 4: an agent reads only conversations "assigned to them". After `agent
    remove ana` (README: "Delete an agent") a new person created later with the same
    id was never assigned the old ana's conversations, yet `history` serves them their
    transcripts (the conversation's `agent` field still names "ana")."""
    d = env.daemon(env.redis())
    tok = add(d, "ana", "Ana Old", "en", "--capacity", "2", "--tenants", "acme")
    ana = Agent(d.url, "ana", tok)
    try:
        await ana.login()
        await ana.presence("available")
        first, second = await served_twice_and_closed(ana, "acme", "cust-1", "acme customer")
        await ana.close()
        await asyncio.sleep(0.5)
        ctl(d, "agent", "remove", "ana")
        tok2 = add(d, "ana", "Ana New", "en", "--capacity", "2", "--tenants", "acme")
        new = Agent(d.url, "ana", tok2, label="new agent reusing id ana")
        await new.login()
        r, items = await history(new, second.conversation_id, first.conversation_id, "h-1")
        assert r.get("type") == "error" and r.get("code") == "not-assigned" and not items, (
            "a new agent that reuses a removed agent's id reads the old agent's customers' "
            f"transcripts: {r} {[i.get('text') for i in items]}")
        await new.close()
    finally:
        await ana.close()


# ----------------------------------------------------------------------------
# Connection limits and HTTP

def _half_upgrade(port, src):
    """A TCP connection from address `src` that starts a websocket upgrade and never
    finishes it (slowloris)."""
    s = socket.socket()
    s.bind((src, 0))
    s.settimeout(3)
    try:
        s.connect(("127.0.0.1", port))
        s.sendall(b"GET /ws/customer HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n")
    except OSError:
        pass
    return s


@time_limit(120)
async def test_one_address_cannot_exhaust_the_server(env):
    """PROTOCOL.md limits: "websocket.max_connections connections in all and
    websocket.max_connections_per_ip from one address (the address's limit is checked
    first ...)"; ws_server.c:256: "so one address cannot use up the server's". The
    limits are checked only once the websocket upgrade completed: connections that
    never finish their HTTP upgrade (slowloris) or plain HTTP connections count for
    neither, so one address takes every descriptor the process has. Modelled at small
    scale: the daemon's RLIMIT_NOFILE is set to what it uses now plus 60 (the unit's
    LimitNOFILE=65536 is the same wall, a little further); one address (127.0.0.2),
    allowed 4 connections, opens 100 half upgrades; a customer from another address
    (127.0.0.3) must still get in."""
    import resource
    import websockets
    d = env.daemon(env.redis(), config={"websocket": {"max_connections_per_ip": 4,
                                                      "max_connections": 50}})
    pid = d.proc.pid
    base = len(os.listdir(f"/proc/{pid}/fd"))
    resource.prlimit(pid, resource.RLIMIT_NOFILE, (base + 60, base + 60))
    socks = [_half_upgrade(d.port, "127.0.0.2") for _ in range(100)]
    try:
        await asyncio.sleep(0.5)
        held = len(os.listdir(f"/proc/{pid}/fd")) - base
        log(f"the daemon holds {held} descriptors for one address allowed 4 connections")
        got = None
        try:
            ws = await websockets.connect(d.url + "/ws/customer", compression=None,
                                          ping_interval=None, open_timeout=6,
                                          local_addr=("127.0.0.3", 0))
            try:
                await ws.send('{"type":"hello","v":1,"language":"en"}')
                got = await asyncio.wait_for(ws.recv(), 5)
            finally:
                await ws.close()
        except (OSError, asyncio.TimeoutError, websockets.exceptions.WebSocketException) as e:
            got = repr(e)
        await asyncio.sleep(1)
        spins = d.log_text().count("accept: errno 24")
        env.expect(spins < 1000, f"while its descriptors are used up the daemon logged "
                   f"'accept: errno 24' {spins} times (a busy loop that floods the log)")
        assert isinstance(got, str) and '"welcome"' in got, (
            f"one address (4 connections allowed) holds {held} descriptors with unfinished "
            f"upgrades; a customer from another address cannot connect: {got}")
    finally:
        for s in socks:
            s.close()


@time_limit(120)
async def test_closed_sockets_leave_their_addresss_count(env):
    """The per-address socket count (test above) must go down as sockets close,
    whatever they were (plain HTTP, refused, websockets, closed by either side):
    a leak would shut an office behind one NAT address out for good."""
    import websockets
    d = env.daemon(env.redis(), config={"websocket": {"max_connections_per_ip": 2}})
    for i in range(60):  # share: 2 * 2 + 16 = 20 sockets
        _raw_http(d.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        s = socket.create_connection(("127.0.0.1", d.port), timeout=5)
        s.close()  # closed by the client before a byte
    for i in range(30):
        ws = await websockets.connect(d.url + "/ws/customer", compression=None,
                                      ping_interval=None, open_timeout=10)
        await ws.close()
    held = [await websockets.connect(d.url + "/ws/customer", compression=None,
                                     ping_interval=None, open_timeout=10) for _ in range(3)]
    try:
        # the third is over max_connections_per_ip: refused by the websocket limit
        got = await asyncio.wait_for(held[2].recv(), 10)
        assert "too-many-connections" in got, got
        await held[0].send('{"type":"hello","v":1,"language":"en"}')
        got = await asyncio.wait_for(held[0].recv(), 10)
        assert '"welcome"' in got, got
    finally:
        for ws in held:
            await ws.close()
    status, _ = _raw_http(d.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert "200" in status, status

def _raw_http(port, request, timeout=5):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.sendall(request)
    out = b""
    try:
        while True:
            x = s.recv(65536)
            if not x:
                break
            out += x
    except socket.timeout:
        pass
    s.close()
    head = out.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
    headers = {}
    for ln in head[1:]:
        k, _, v = ln.partition(":")
        headers[k.strip().lower()] = v.strip()
    return head[0], headers


@time_limit(60)
def test_pages_connect_only_to_their_own_origin(env):
    """PROTOCOL.md: "Every response carries a strict `Content-Security-Policy` (scripts,
    styles and connections from the same origin only ...)". `connect-src 'self' ws: wss:`
    allowed websocket connections to any host (a script injected into the agent desktop
    could send transcripts anywhere). (Methods lws does not know, such as TRACE, get lws's
    own 403 page without these headers: a static page with no script, left as is.)"""
    d = env.daemon(env.redis())
    problems = []
    for path in ("/agent.html", "/chat.html", "/healthz", "/nope"):
        status, h = _raw_http(d.port, f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{d.port}\r\n"
                                      f"Connection: close\r\n\r\n".encode())
        csp = h.get("content-security-policy", "")
        connect = next((p.split()[1:] for p in csp.split(";")
                        if p.split()[:1] == ["connect-src"]), [])
        want = ["'self'", f"ws://127.0.0.1:{d.port}", f"wss://127.0.0.1:{d.port}"]
        if connect != want:
            problems.append(f"GET {path} -> {status!r}: connect-src {connect}, want {want} "
                            f"({csp})")
    # a Host that is not a host name: 'self' alone
    status, h = _raw_http(d.port, b"GET /agent.html HTTP/1.1\r\nHost: a b;c\r\n"
                                  b"Connection: close\r\n\r\n")
    csp = h.get("content-security-policy", "")
    if "connect-src 'self';" not in csp:
        problems.append(f"GET /agent.html with a bad Host: {csp}")
    assert not problems, "\n  ".join(problems)

if __name__ == "__main__":
    run_tests([test_token_reissue_logs_out_old_session, test_debug_log_holds_no_credentials,
               test_history_after_tenant_removed, test_reused_agent_id_inherits_old_conversations,
               test_one_address_cannot_exhaust_the_server,
               test_closed_sockets_leave_their_addresss_count,
               test_pages_connect_only_to_their_own_origin])
