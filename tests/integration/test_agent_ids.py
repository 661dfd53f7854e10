"""test_agent_ids.py - ids with every allowed character work end to end.

Agent and conversation ids are 1-128 bytes of [A-Za-z0-9._:@-] (PROTOCOL.md).
A BPO names agents per client brand ("acme:ana"), and Redis notifies the
daemons with messages that carry ids ("a:AGENT", "r:AGENT|SESSION",
"ta:AGENT|CONV"): an id with ':' or '@' must still reach its desktop live.
Real redis-server, real omnirouterd, real websocket clients.
"""

import asyncio
import os
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from omr_harness import Agent, Customer, add_agent, log, run_tests, time_limit  # noqa: E402

AGENT_ID = "acme:ana.b@floor-2"


@time_limit(60)
async def test_agent_id_with_colons_gets_live_work(env):
    r = env.redis()
    d = env.daemon(r)
    token = add_agent(d, AGENT_ID, "Ana", "en", 2)
    agent = Agent(d.url, AGENT_ID, token)
    await agent.login()
    await agent.presence("available")
    cust = Customer(d.url)
    await cust.hello(language="en")
    conv = cust.conversation_id
    await agent.wait_item(lambda f: f.get("type") == "assigned"
                          and f.get("conversation_id") == conv, 10, "the assignment")
    await cust.send("hello", id="m1")
    await agent.wait_item(lambda f: f.get("type") == "message" and f.get("id") == "m1", 10,
                          "the customer's message")
    start = len(agent.conn.frames)
    await cust.conn.send({"type": "typing"})
    await agent.conn.wait_for(lambda f: f.get("type") == "typing"
                              and f.get("conversation_id") == conv, 10,
                              "the customer typing", start)
    await agent.reply(conv, "hi, how can I help?")
    await cust.wait_item(lambda f: f.get("type") == "message" and f.get("from") == "agent", 10,
                         "the agent's reply")
    log(f"agent {AGENT_ID}: assignment, message, typing and reply all live")

    # Another login of the same agent takes over: the desktop before it is
    # told and closed. Three times, each once the desktop is idle (the
    # instance then holds nothing else of it).
    await cust.close()
    current = agent
    for n in range(3):
        await asyncio.sleep(0.5)
        nxt = Agent(d.url, AGENT_ID, token, label=f"desktop {n + 2}")
        await nxt.login()
        await current.conn.wait_for(lambda f: f.get("type") == "error"
                                    and f.get("code") == "replaced", 10, "replaced")
        await current.conn.wait_closed(10, "close after replaced")
        assert current.conn.close_code == 1008, current.conn.close_code
        current = nxt
    await current.presence("available")
    await current.close()


@time_limit(60)
async def test_login_on_another_instance_replaces_the_desktop(env):
    # The first instance learns of the newer login from Redis
    # ("r:AGENT|SESSION"), closes its desktop, and work goes to the new one.
    r = env.redis()
    d1 = env.daemon(r, name="d1")
    d2 = env.daemon(r, name="d2")
    token = add_agent(d1, AGENT_ID, "Ana", "en", 2)
    first = Agent(d1.url, AGENT_ID, token, label="desktop on d1")
    await first.login()
    await first.presence("available")
    second = Agent(d2.url, AGENT_ID, token, label="desktop on d2")
    await second.login()
    await first.conn.wait_for(lambda f: f.get("type") == "error"
                              and f.get("code") == "replaced", 10, "replaced")
    await first.conn.wait_closed(10, "close after replaced")
    assert first.conn.close_code == 1008, first.conn.close_code
    await second.presence("available")
    cust = Customer(d1.url)
    await cust.hello(language="en")
    await second.wait_item(lambda f: f.get("type") == "assigned"
                           and f.get("conversation_id") == cust.conversation_id, 10,
                           "the assignment on d2")
    await cust.close()
    await second.close()


if __name__ == "__main__":
    run_tests([test_agent_id_with_colons_gets_live_work,
               test_login_on_another_instance_replaces_the_desktop])
