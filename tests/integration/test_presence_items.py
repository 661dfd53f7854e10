"""test_presence_items.py - an agent's desktop is told when its presence changes by anything
but its own request (a review of the desktop in a browser found it showing "Available" while
the router had put the agent on break for missed offers, or the site had with
`omnirouterctl agent state`: no chat came and nothing said why).

Each change while a desktop is logged in is a `presence` notice to it (PROTOCOL.md, "Agent
endpoint"; not an inbox item, nothing to ack); a login's welcome says the state it starts
from, and the changes told to a session that ended never come to the next one.

    OMR_BUILD_DIR=build/asan python3 tests/integration/test_presence_items.py [NAME...]
"""

import asyncio
import json
import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from omr_harness import Agent, Customer, add_agent, ctl, poll, run_tests, time_limit  # noqa: E402

OFFERS = """queues:
  - name: offers
    auto_accept: false
    offer_timeout_s: 1
"""


def presence_notices(agent):
    return [(f.get("presence"), f.get("reason", "")) for f in agent.conn.frames
            if f.get("type") == "presence"]


async def wait_presence(agent, presence, reason, what):
    f = await agent.conn.wait_for(lambda f: f.get("type") == "presence" and
                                  f.get("presence") == presence and
                                  f.get("reason", "") == reason, 10, what)
    assert "seq" not in f and isinstance(f.get("ts"), int), f
    return f


@time_limit(60)
async def test_site_and_router_changes_reach_the_desktop(env):
    d = env.daemon(env.redis(), config={"routing": {"max_missed_offers": 1, "tick_ms": 100}},
                   queues=OFFERS)
    a = Agent(d.url, "a1", add_agent(d, "a1", "Ana", "en", 2))
    cust = Customer(d.url)
    try:
        await a.login()
        await a.presence("available")  # its own request: the ack says it, no notice
        ctl(d, "agent", "state", "a1", "break", "--reason", "meeting")
        await wait_presence(a, "break", "meeting", "the site's break")
        await a.presence("available")
        await cust.hello(language="en")
        # the offer is not answered: it times out and the router puts a1 on break
        await a.wait_item(lambda f: f.get("type") == "revoked", 10, "offer timed out")
        await wait_presence(a, "break", "missed-offers", "the router's break")
        assert presence_notices(a) == [("break", "meeting"), ("break", "missed-offers")], \
            presence_notices(a)
    finally:
        await a.close()
        await cust.close()


@time_limit(60)
async def test_a_new_login_is_not_told_an_old_sessions_changes(env):
    d = env.daemon(env.redis())
    a = Agent(d.url, "a1", add_agent(d, "a1", "Ana", "en", 2))
    await a.login()
    await a.presence("available")
    ctl(d, "agent", "state", "a1", "break", "--reason", "meeting")
    await wait_presence(a, "break", "meeting", "break")
    await a.close()  # offline when it went
    # (the daemon sees the close on its own schedule)
    assert await poll(lambda: json.loads(ctl(d, "--json", "agent", "show", "a1").stdout)
                      .get("presence") == "offline", 10), "a1 not offline after its desktop went"
    b = Agent(d.url, "a1", a.token, label="a1 again")
    try:
        w = await b.login()
        assert w.get("presence") == "away", w  # (from offline: a login is away)
        await asyncio.sleep(1)
        assert presence_notices(b) == [], presence_notices(b)
    finally:
        await b.close()


if __name__ == "__main__":
    run_tests([test_site_and_router_changes_reach_the_desktop,
               test_a_new_login_is_not_told_an_old_sessions_changes])
