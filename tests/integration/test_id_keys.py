"""test_id_keys.py - ids that name another key of a conversation or an agent, and what a
supervisor reads (a review of permission boundaries).

Ids may hold ':' (PROTOCOL.md: 1-128 bytes of [A-Za-z0-9._:@-]), and a conversation's and an
agent's other Redis keys are the id followed by ':SUFFIX' (ARCHITECTURE.md: conv:ID:log,
conv:ID:cust, agent:ID:inbox, ...). A client that sent an existing conversation's or agent's
id with such a suffix (a resume, a login, a monitor, a history, a message, a transfer...) got
no answer: the routing function met a key of another type (WRONGTYPE), the router logged an
error and dropped the request, and the client was told `unavailable` (resend) after its
resends ran out, 10 s at the defaults, a connection that needs no login included. Such an id
now gets what an id that names nothing gets, at once; omnirouterctl refuses it as an agent
id (only the suffixes of an agent's keys: an agent `sales:log` names none of them), and
`explain` or `conversation close` of one says no such conversation (`close C:decl` wrote into
the decline hash of a live conversation). A customer_id ending in `:convs` named the list an
earlier version kept of that customer's conversations: it is refused. Each test on a suffix
failed against the build before its fix. The two supervisor tests held up (kept as they
cover what no other test did).

    OMR_BUILD_DIR=build/asan python3 tests/integration/test_id_keys.py [NAME...]
"""

import json
import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from omr_harness import (Agent, Conn, Customer, add_agent, ctl, log, run_tests,  # noqa: E402
                         time_limit)
from test_admin_live import item_of  # noqa: E402
from test_live_floor import available  # noqa: E402
from test_protocol import refused  # noqa: E402
from test_security_edges import add, assigned_to  # noqa: E402


def bob_and_supervisor(d):
    """bob (en, 2 chats) and sup, who supervises him (not logged in yet)."""
    tok_bob = add(d, "bob", "Bob", "en", "--capacity", "2")
    tok_sup = add(d, "sup", "Sue", "fr", "--supervises", "bob")
    return Agent(d.url, "bob", tok_bob), Agent(d.url, "sup", tok_sup, label="sup")


async def log_in(bob, sup):
    await bob.login()
    await sup.login()
    await bob.presence("available")


async def req(agent, frame, timeout=10):
    """(answer, history/monitor/team frames before it)."""
    start = len(agent.conn.frames)
    r = await agent.conn.request(frame, timeout)
    end = agent.conn.frames.index(r)
    return r, [f for f in agent.conn.frames[start:end]
               if f.get("type") in ("history", "monitor", "team")]


@time_limit(60)
async def test_resume_of_a_key_suffix_is_unauthorized(env):
    """PROTOCOL.md, Resume: "A wrong token gets `unauthorized` and a close, and so does a
    conversation that no longer exists". A resume naming `<own conversation id>:log` (an
    id by the alphabet, no conversation) must be refused at once like any unknown one."""
    d = env.daemon(env.redis())
    kim = Customer(d.url, "customer kim")
    try:
        await kim.hello(language="en", name="Kim")
        await kim.send("hello", id="c-1")
        for suffix in (":log", ":cust"):
            c = await Conn.open(d.url + "/ws/customer", f"resume {suffix}")
            try:
                await refused(env, c, {"type": "resume", "v": 1,
                                       "conversation_id": kim.conversation_id + suffix,
                                       "resume_token": kim.resume_token, "id": "r-1"},
                              "unauthorized", close=1008, what=f"resume of id + {suffix}")
            finally:
                await c.close()
    finally:
        await kim.close()


@time_limit(60)
async def test_login_with_a_key_suffix_is_unauthorized(env):
    """PROTOCOL.md, Log in: "A wrong id or token: `unauthorized` and a close." Agent id
    `ana:inbox` names no agent (ana exists; her inbox is the stream agent:ana:inbox)."""
    d = env.daemon(env.redis())
    tok = add(d, "ana", "Ana", "en")
    for suffix in (":inbox", ":convs"):
        c = await Conn.open(d.url + "/ws/agent", f"login ana{suffix}")
        try:
            await refused(env, c, {"type": "login", "v": 1, "agent_id": "ana" + suffix,
                                   "token": tok, "id": "l-1"},
                          "unauthorized", close=1008, what=f"login as ana{suffix}")
        finally:
            await c.close()


@time_limit(90)
async def test_monitor_and_history_of_a_key_suffix_not_assigned(env):
    """PROTOCOL.md, Supervisors: any other conversation ("one that does not exist") gets
    `not-assigned`, the connection stays open; history: "Any other conversation:
    `not-assigned`". `<conversation id>:log` names no conversation."""
    d = env.daemon(env.redis())
    bob, sup = bob_and_supervisor(d)
    k1, k2 = Customer(d.url, "kim #1"), Customer(d.url, "kim #2")
    try:
        await log_in(bob, sup)
        await k1.hello(language="en", name="Kim", customer_id="cust-1")
        await k1.send("first chat", id="c-1")
        await assigned_to(bob, k1)
        await bob.close_conv(k1.conversation_id)
        await k2.hello(language="en", name="Kim", customer_id="cust-1")
        await assigned_to(bob, k2)
        # sanity: the plain ids work
        r, items = await req(sup, {"type": "monitor", "conversation_id": k2.conversation_id,
                                   "id": "m-0"})
        assert r.get("type") == "ack", r
        r, items = await req(bob, {"type": "history", "conversation_id": k2.conversation_id,
                                   "earlier": k1.conversation_id, "id": "h-0"})
        assert r.get("type") == "ack" and items, r
        for n, (who, frame) in enumerate((
                (sup, {"type": "monitor", "conversation_id": k2.conversation_id + ":log"}),
                (bob, {"type": "history", "conversation_id": k2.conversation_id,
                       "earlier": k1.conversation_id + ":log"}),
                (bob, {"type": "history", "conversation_id": k2.conversation_id + ":log",
                       "earlier": k1.conversation_id}))):
            try:
                r, items = await req(who, {**frame, "id": f"x-{n}"}, timeout=10)
            except AssertionError as e:
                r, items = {"no answer": str(e)[:120]}, []
            log(f"{frame}: {r}")
            env.expect(r.get("type") == "error" and r.get("code") == "not-assigned",
                       f"{frame['type']} {frame}: want not-assigned, got "
                       f"{ {k: v for k, v in r.items() if k != '_t'} }")
        await sup.conn.expect_open()
    finally:
        for x in (bob, sup, k1, k2):
            await x.close()


@time_limit(90)
async def test_agent_requests_on_a_key_suffix(env):
    """PROTOCOL.md Errors: `not-assigned` - "agent acted on a conversation that is not
    theirs"; transfer: "An unknown queue or agent ...: `bad-request`". `<id>:log` is no
    conversation of the agent's, `eve:inbox` no agent (the router answered neither before:
    the function failed with WRONGTYPE, and the desktop got `unavailable`)."""
    d = env.daemon(env.redis())
    tb = add(d, "bob", "Bob", "en", "--capacity", "2")
    add(d, "eve", "Eve", "en", "--capacity", "2")
    bob = Agent(d.url, "bob", tb)
    kim = Customer(d.url, "kim")
    try:
        await bob.login()
        await bob.presence("available")
        await kim.hello(language="en", name="Kim")
        await assigned_to(bob, kim)
        cid = kim.conversation_id
        cases = [
            ({"type": "message", "conversation_id": cid + ":log", "text": "x"},
             "not-assigned"),
            ({"type": "close", "conversation_id": cid + ":log"}, "not-assigned"),
            ({"type": "accept", "conversation_id": cid + ":log"}, "not-assigned"),
            ({"type": "typing", "conversation_id": cid + ":log"}, "not-assigned"),
            ({"type": "transfer", "conversation_id": cid, "agent": "eve:inbox"},
             "bad-request"),
        ]
        for n, (frame, want) in enumerate(cases):
            try:
                r = await bob.conn.request({**frame, "id": f"x-{n}"}, 12)
            except AssertionError as e:
                r = {"no answer": str(e)[:120]}
            log(f"{frame}: {r}")
            env.expect(r.get("type") == "error" and r.get("code") == want,
                       f"{frame}: want {want}, got "
                       f"{ {k: v for k, v in r.items() if k != '_t'} }")
    finally:
        await bob.close()
        await kim.close()


@time_limit(90)
async def test_monitor_of_an_offered_conversation(env):
    """PROTOCOL.md, Supervisors: team lists each conversation the agent "holds now (offered
    or assigned)", and monitor reads one "the agent holding it" holds. Probe: the offered
    one is listed and readable."""
    queues = """
queues:
  - name: offers
    auto_accept: false
    offer_timeout_s: 60
"""
    d = env.daemon(env.redis(), queues=queues)
    bob, sup = bob_and_supervisor(d)
    kim = Customer(d.url, "kim")
    try:
        await log_in(bob, sup)
        await kim.hello(language="en", name="Kim")
        await kim.send("waiting for someone", id="c-1")
        await bob.wait_item(lambda f: f.get("type") == "offer", 10, "offer")
        r, team = await req(sup, {"type": "team", "id": "t-1"})
        convs = [t for t in team if t.get("kind") == "conversation"]
        env.expect([(c.get("conversation_id"), c.get("state")) for c in convs]
                   == [(kim.conversation_id, "offered")], f"team: {team}")
        r, items = await req(sup, {"type": "monitor", "conversation_id": kim.conversation_id,
                                   "id": "m-1"})
        env.expect(r.get("type") == "ack" and any(i.get("text") == "waiting for someone"
                                                  for i in items), f"monitor: {r} {items}")
    finally:
        for x in (bob, sup, kim):
            await x.close()


@time_limit(90)
async def test_monitor_after_agent_removed_and_recreated(env):
    """PROTOCOL.md, monitor: a closed conversation is readable through "the agent who had
    it when it was closed, if that agent was not removed since"."""
    d = env.daemon(env.redis())
    bob, sup = bob_and_supervisor(d)
    kim = Customer(d.url, "kim")
    try:
        await log_in(bob, sup)
        await kim.hello(language="en", name="Kim")
        await kim.send("secret", id="c-1")
        await assigned_to(bob, kim)
        await bob.close_conv(kim.conversation_id)
        r, items = await req(sup, {"type": "monitor", "conversation_id": kim.conversation_id,
                                   "id": "m-1"})
        assert r.get("type") == "ack", r
        await bob.close()
        ctl(d, "agent", "remove", "bob")
        r, items = await req(sup, {"type": "monitor", "conversation_id": kim.conversation_id,
                                   "id": "m-2"})
        env.expect(r.get("code") == "not-assigned", f"after remove: {r}")
        r, team = await req(sup, {"type": "team", "id": "t-1"})
        env.expect(team == [], f"team after remove: {team}")
        add(d, "bob", "Bob II", "en", "--capacity", "2")
        r, items = await req(sup, {"type": "monitor", "conversation_id": kim.conversation_id,
                                   "id": "m-3"})
        env.expect(r.get("code") == "not-assigned", f"after re-create: {r}")
        r, team = await req(sup, {"type": "team", "id": "t-2"})
        env.expect([t.get("name") for t in team] == ["Bob II"], f"team: {team}")
    finally:
        for x in (bob, sup, kim):
            await x.close()


@time_limit(60)
async def test_ctl_refuses_agent_ids_that_name_another_key(env):
    """An agent `ana:inbox` would be agent ana's inbox stream (and `x:convs` the set of x's
    conversations): omnirouterctl refuses such an id, as an agent's id, in --supervises and
    in a roster; a conversation id of that form is one that does not exist."""
    d = env.daemon(env.redis())
    add(d, "ana", "Ana", "en")
    for agent_id in ("ana:inbox", "bob:convs", "x:presence"):
        p = ctl(d, "agent", "add", "--id", agent_id, "--name", "X", "--languages", "en",
                check=False)
        assert p.returncode == 2 and "may not end in" in p.stderr, (agent_id, p.stderr)
    p = ctl(d, "agent", "add", "--id", "sup", "--name", "S", "--languages", "en",
            "--supervises", "ana,ana:inbox", check=False)
    assert p.returncode == 2 and "ana:inbox" in p.stderr, p.stderr
    roster = os.path.join(env.dir, "roster.csv")
    with open(roster, "w") as f:
        f.write("id,name,languages\nok1,Ok,en\nana:presence,Bad,en\n")
    p = ctl(d, "agent", "import", roster, check=False)
    assert p.returncode != 0 and "may not end in" in p.stderr, (p.returncode, p.stderr)
    # ana is untouched and her inbox still a stream
    c = d.redis.client()
    assert c.cmd("TYPE", "omr:{default}:agent:ana:inbox") == "stream"
    # a conversation id naming a transcript: no such conversation, not a Redis error
    kim = Customer(d.url, "kim")
    try:
        await kim.hello(language="en", name="Kim")
        p = ctl(d, "explain", kim.conversation_id + ":log", check=False)
        assert p.returncode == 1 and "WRONGTYPE" not in p.stderr, (p.returncode, p.stderr)
    finally:
        await kim.close()


OFFERS = """
queues:
  - name: general
    auto_accept: false
    offer_timeout_s: 30
"""


@time_limit(60)
async def test_ctl_explain_of_ids_key_names_nothing(env):
    """`omnirouterctl explain C:ids` (C a live conversation with a message, so its
    de-duplication hash conv:C:ids exists) must say no such conversation (exit 1), as for
    any id that names nothing (README: exit 1 "not found")."""
    r = env.redis()
    d = env.daemon(r)
    c = Customer(d.url, "k")
    await c.hello(language="en", name="K")
    await c.send("hello there")
    rc = r.client()
    try:
        ids = rc.hgetall(f"omr:{{default}}:conv:{c.conversation_id}:ids")
    finally:
        rc.close()
    assert ids, "the conversation's ids hash exists"
    p = ctl(d, "--json", "explain", f"{c.conversation_id}:ids", check=False)
    env.expect(p.returncode == 1,
               f"explain {c.conversation_id}:ids (no such conversation) exited "
               f"{p.returncode}: stdout {p.stdout!r} stderr {p.stderr!r}")


@time_limit(60)
async def test_ctl_close_of_decl_key_does_not_touch_the_live_conversation(env):
    """`omnirouterctl conversation close C:decl` (C waits, an agent declined it: its decline
    hash conv:C:decl exists) must say no such conversation (exit 1) and leave C's keys as
    they are. It must not write `state closed` and `closed_ms` into C's decline hash (read
    by declined_by as agents who declined)."""
    r = env.redis()
    d = env.daemon(r, queues=OFFERS)
    ana = await available(d, "ana", add_agent(d, "ana", "Ana", "en", 1))
    c = Customer(d.url, "k")
    await c.hello(language="en", name="K")
    await ana.wait_item(item_of("offer", c.conversation_id), 5, "offer")
    rej = await ana.reject(c.conversation_id, reason="busy")
    assert rej.get("type") == "ack", rej
    key = f"omr:{{default}}:conv:{c.conversation_id}:decl"
    rc = r.client()
    try:
        before = rc.hgetall(key)
        assert "ana" in before, before
        p = ctl(d, "--json", "conversation", "close", f"{c.conversation_id}:decl", check=False)
        after = rc.hgetall(key)
        junk = rc.keys(f"omr:{{default}}:conv:{c.conversation_id}:decl:*")
    finally:
        rc.close()
    env.expect(p.returncode == 1,
               f"conversation close {c.conversation_id}:decl (no such conversation) exited "
               f"{p.returncode}: stdout {p.stdout!r} stderr {p.stderr!r}")
    env.expect(after == before,
               f"the live conversation's decline hash was changed: {before} -> {after}")
    env.expect(not junk, f"keys created under the decline hash's name: {junk}")


@time_limit(60)
async def test_ctl_close_of_ids_key_leaves_the_live_dedup_hash(env):
    """`omnirouterctl conversation close C:ids` (C open, one message): no such conversation
    (exit 1); C's de-duplication hash keeps no expiry (it is an open conversation's: a
    resent message must still be answered with its first seq, PROTOCOL.md)."""
    r = env.redis()
    d = env.daemon(r)
    c = Customer(d.url, "k")
    await c.hello(language="en", name="K")
    await c.send("hello there")
    key = f"omr:{{default}}:conv:{c.conversation_id}:ids"
    p = ctl(d, "--json", "conversation", "close", f"{c.conversation_id}:ids", check=False)
    rc = r.client()
    try:
        ttl = rc.cmd("TTL", key)
        fields = sorted(rc.hgetall(key))
    finally:
        rc.close()
    env.expect(p.returncode == 1, f"close {c.conversation_id}:ids exited {p.returncode}: "
               f"{p.stdout!r}")
    env.expect(ttl == -1 and fields == sorted(f for f in fields if f.startswith("customer:")),
               f"the open conversation's ids hash: ttl {ttl}, fields {fields}")


def copy_agent(r, src, dst):
    """Agent dst as an earlier omnirouterctl would have created it: agent src's fields."""
    rc = r.client()
    try:
        h = rc.hgetall(f"omr:{{default}}:agent:{src}")
        args = []
        for k, v in h.items():
            args += [k, v]
        rc.cmd("HSET", f"omr:{{default}}:agent:{dst}", *args)
        rc.cmd("SADD", "omr:{default}:agents", dst)
        rc.cmd("XGROUP", "CREATE", f"omr:{{default}}:agent:{dst}:inbox", "desktop", "0",
               "MKSTREAM")
    finally:
        rc.close()


@time_limit(60)
async def test_existing_agent_with_conv_suffix_can_be_removed_and_log_in(env):
    """An agent an earlier omnirouterctl created as `sales:log` names none of an agent's
    other keys (only a conversation's): it logs in and can be removed (it was refused when
    one list of suffixes served agents and conversations alike)."""
    r = env.redis()
    d = env.daemon(r)
    tok = add_agent(d, "sales", "Sales", "en", 1)
    copy_agent(r, "sales", "sales:log")
    listed = [a.get("id") for a in json.loads(ctl(d, "--json", "agent", "list").stdout)]
    assert "sales:log" in listed, listed
    a = Agent(d.url, "sales:log", tok)
    try:
        await a.login()
        ok = True
    except AssertionError as e:
        ok = False
        env.expect(False, f"agent sales:log (listed by `agent list`, its token good) cannot "
                   f"log in: {e}")
    if ok:
        await a.close()
    p = ctl(d, "agent", "remove", "--id", "sales:log", check=False)
    env.expect(p.returncode == 0,
               f"`agent remove --id sales:log` of a listed agent exited {p.returncode}: "
               f"{p.stderr.strip()}")


@time_limit(60)
async def test_customer_id_naming_the_old_list_is_refused(env):
    """customer_id `bob:convs` named the list of bob's conversations as versions before
    2026-12 kept it (customer:T|bob:convs, still read at bob's next hello): the hello wrote
    into it and failed halfway (a close then left the agent's capacity taken). It is refused
    now with a reason, and the list is left as it is."""
    r = env.redis()
    d = env.daemon(r)
    rc = r.client()
    key = "omr:{default}:customer:default|bob:convs"
    try:
        rc.cmd("RPUSH", key, "0ldc0nv1")
        c = Customer(d.url, "k")
        await c.connect()
        await c.conn.send({"type": "hello", "v": 1, "language": "en", "name": "K",
                           "customer_id": "bob:convs", "id": "h-1"})
        w = await c.conn.wait_for(lambda f: f.get("type") in ("welcome", "error"), 10,
                                  "an answer to the hello")
        assert w.get("code") == "bad-request" and ":convs" in w.get("reason", ""), w
        assert rc.cmd("LRANGE", key, 0, -1) == ["0ldc0nv1"]
        await c.close()
        # bob himself still gets his old list read as ever
        b = Customer(d.url, "bob")
        await b.hello(language="en", name="Bob", customer_id="bob")
        await b.close()
    finally:
        rc.close()


TESTS = [test_resume_of_a_key_suffix_is_unauthorized,
         test_login_with_a_key_suffix_is_unauthorized,
         test_monitor_and_history_of_a_key_suffix_not_assigned,
         test_agent_requests_on_a_key_suffix,
         test_monitor_of_an_offered_conversation,
         test_monitor_after_agent_removed_and_recreated,
         test_ctl_refuses_agent_ids_that_name_another_key,
         test_ctl_explain_of_ids_key_names_nothing,
         test_ctl_close_of_ids_key_leaves_the_live_dedup_hash,
         test_ctl_close_of_decl_key_does_not_touch_the_live_conversation,
         test_existing_agent_with_conv_suffix_can_be_removed_and_log_in,
         test_customer_id_naming_the_old_list_is_refused]

if __name__ == "__main__":
    run_tests(TESTS)
