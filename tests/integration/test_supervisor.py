"""test_supervisor.py - a supervisor watches its team through the real daemon.

Starts redis-server and omnirouterd, creates agents with omnirouterctl (bob
serves two tenants, eve is not supervised, sup supervises bob and someone who
does not exist), then drives real websockets: customers chat with bob and eve;
the supervisor's desktop asks for its `team` (bob's presence, load, capacity
and open conversations, and nothing of eve's or of the tenant it does not
serve) and `monitor`s bob's conversation (the transcript, read-only, before
the ack); monitoring eve's conversation, another tenant's, or as a plain agent
is refused with `not-assigned` and the connection stays open; a closed
conversation of bob's stays readable and leaves the team snapshot.
docs/PROTOCOL.md, "Supervisors".
"""

import asyncio
import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from omr_harness import (Agent, Customer, add_agent, ctl, log, run_tests,  # noqa: E402
                         time_limit)


def add(d, agent_id, name, languages, *extra):
    return add_agent(d, agent_id, name, languages, extra=extra)


async def read(agent, frame, item_type):
    """Sends a team/monitor request; returns (answer, the items before it)."""
    start = len(agent.conn.frames)
    answer = await agent.conn.request(frame)
    items = [f for f in agent.conn.frames[start:] if f.get("type") == item_type]
    # The items come before the answer, never after it.
    end = agent.conn.frames.index(answer)
    assert all(agent.conn.frames.index(f) < end for f in items), agent.conn.frames[start:]
    return answer, items


async def assigned_to(agent, customer):
    return await agent.wait_item(lambda f: f.get("type") == "assigned"
                                 and f.get("conversation_id") == customer.conversation_id, 10,
                                 f"assigned {customer.label}")


@time_limit(120)
async def test_team_and_monitor(env):
    d = env.daemon(env.redis())
    tok_bob = add(d, "bob", "Bob Ruiz", "en", "--capacity", "chat:2,email:1",
                  "--tenants", "default,acme")
    tok_eve = add(d, "eve", "Eve", "es")
    tok_sup = add(d, "sup", "Sue", "fr", "--supervises", "bob,ghost")
    bob, eve = Agent(d.url, "bob", tok_bob), Agent(d.url, "eve", tok_eve)
    sup = Agent(d.url, "sup", tok_sup, label="supervisor sup")
    ana, luz = Customer(d.url, "customer ana"), Customer(d.url, "customer luz")
    kim = Customer(d.url, "customer kim (acme)")
    try:
        for a in (bob, eve, sup):
            await a.login()
        await bob.presence("available")
        await eve.presence("available")
        await ana.hello(language="en-GB", name="Ana")
        await ana.send("my order is late", id="c-1")
        await assigned_to(bob, ana)
        await bob.reply(ana.conversation_id, "let me check", id="b-1")
        await luz.hello(language="es", name="Luz")
        await assigned_to(eve, luz)
        await kim.hello(language="en", name="Kim", tenant="acme")
        await assigned_to(bob, kim)

        # The team: bob only (ghost does not exist, eve is not supervised).
        r, team = await read(sup, {"type": "team", "id": "s-1"}, "team")
        assert r == {**r, "type": "ack", "id": "s-1"}, r
        agents = [t for t in team if t.get("kind") == "agent"]
        convs = [t for t in team if t.get("kind") == "conversation"]
        assert [a["agent_id"] for a in agents] == ["bob"], team
        b = agents[0]
        assert (b["name"], b["presence"]) == ("Bob Ruiz", "available"), b
        assert "reason" not in b, b
        assert b["load"] == {"chat": 2, "email": 0, "voice": 0}, b
        assert b["capacity"] == {"chat": 2, "email": 1, "voice": 0}, b
        # kim's conversation is acme's, a tenant sup does not serve
        assert len(convs) == 1, team
        c = convs[0]
        want = {"agent_id": "bob", "conversation_id": ana.conversation_id,
                "customer_name": "Ana", "language": "en-GB", "queue": "default",
                "state": "assigned", "tenant": "default"}
        assert {k: c.get(k) for k in want} == want, c
        assert all("seq" not in t for t in team), "team items are not inbox items"

        # The transcript of bob's conversation, read-only, then the ack.
        r, items = await read(sup, {"type": "monitor", "conversation_id": ana.conversation_id,
                                    "id": "s-2"}, "monitor")
        assert r.get("type") == "ack" and r.get("conversation_id") == ana.conversation_id, r
        assert all(i.get("conversation_id") == ana.conversation_id for i in items), items
        got = [(i.get("kind"), i.get("event") or i.get("from"), i.get("text")) for i in items]
        assert got == [("event", "assigned", None),
                       ("message", "customer", "my order is late"),
                       ("message", "agent", "let me check")], got
        assert [i.get("name") for i in items] == ["Bob Ruiz", "Ana", "Bob Ruiz"], items
        assert all(isinstance(i.get("seq"), str) and isinstance(i.get("ts"), int)
                   for i in items), items

        # Refusals: the documented code, the connection stays open.
        for conv, why in ((luz.conversation_id, "eve is not supervised"),
                          (kim.conversation_id, "acme is not sup's tenant"),
                          ("no-such-conversation", "no such conversation")):
            r = await sup.conn.request({"type": "monitor", "conversation_id": conv,
                                        "id": "s-x"})
            assert r.get("type") == "error" and r.get("code") == "not-assigned", (why, r)
        r = await sup.conn.request({"type": "monitor", "conversation_id": "a b", "id": "s-y"})
        assert r.get("code") == "bad-request", r
        await sup.conn.expect_open()
        # A plain agent supervises nobody: an empty team, and no monitoring.
        r, team = await read(eve, {"type": "team", "id": "e-1"}, "team")
        assert r.get("type") == "ack" and team == [], (r, team)
        r = await eve.conn.request({"type": "monitor", "conversation_id": ana.conversation_id,
                                    "id": "e-2"})
        assert r.get("code") == "not-assigned", r
        # Nor does bob read his own through monitor (his desktop has it).
        r = await bob.conn.request({"type": "monitor", "conversation_id": ana.conversation_id,
                                    "id": "b-2"})
        assert r.get("code") == "not-assigned", r
        await eve.conn.expect_open()

        # Closed: still readable; no longer in the snapshot, and bob's load drops.
        await bob.close_conv(ana.conversation_id)
        r, items = await read(sup, {"type": "monitor", "conversation_id": ana.conversation_id,
                                    "id": "s-3"}, "monitor")
        assert r.get("type") == "ack" and len(items) == 4, items
        assert (items[-1].get("kind"), items[-1].get("event")) == ("event", "closed"), items
        r, team = await read(sup, {"type": "team", "id": "s-4"}, "team")
        assert [t.get("kind") for t in team] == ["agent"], team
        assert team[0]["load"]["chat"] == 1, team

        # Presence with a reason shows as such.
        r = await bob.conn.request({"type": "presence", "presence": "break",
                                    "reason": "lunch", "id": "b-3"})
        assert r.get("presence") == "break", r
        r, team = await read(sup, {"type": "team", "id": "s-5"}, "team")
        assert (team[0]["presence"], team[0].get("reason")) == ("break", "lunch"), team
        # Monitor frames were never inbox items: nothing for sup to acknowledge.
        assert sup.order == [], sup.order
        log("team snapshot and monitor transcript as documented")
    finally:
        for x in (bob, eve, sup, ana, luz, kim):
            await x.close()


@time_limit(60)
async def test_supervises_changes_take_effect(env):
    d = env.daemon(env.redis())
    tok_bob = add(d, "bob", "Bob", "en")
    tok_sup = add(d, "sup", "Sue", "fr")
    bob, sup = Agent(d.url, "bob", tok_bob), Agent(d.url, "sup", tok_sup)
    ana = Customer(d.url, "customer ana")
    try:
        await bob.login()
        await sup.login()
        await bob.presence("available")
        await ana.hello(language="en", name="Ana")
        await assigned_to(bob, ana)
        frame = {"type": "monitor", "conversation_id": ana.conversation_id}
        r = await sup.conn.request({**frame, "id": "m-1"})
        assert r.get("code") == "not-assigned", r
        # The supervisor list is read at each request: no new login needed.
        ctl(d, "agent", "update", "--id", "sup", "--supervises", "bob")
        r, items = await read(sup, {**frame, "id": "m-2"}, "monitor")
        assert r.get("type") == "ack" and items, (r, items)
        ctl(d, "agent", "update", "--id", "sup", "--supervises", "")
        r = await sup.conn.request({**frame, "id": "m-3"})
        assert r.get("code") == "not-assigned", r
        r, team = await read(sup, {"type": "team", "id": "m-4"}, "team")
        assert r.get("type") == "ack" and team == [], team
    finally:
        for x in (bob, sup, ana):
            await x.close()
        await asyncio.sleep(0)


if __name__ == "__main__":
    run_tests([test_team_and_monitor, test_supervises_changes_take_effect])
