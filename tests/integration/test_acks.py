"""test_acks.py - an agent desktop's item acks reach Redis, batched.

The adapter sends an agent's acks to the router together (up to 32 per
request, within 20 ms; docs/ARCHITECTURE.md). Whatever the batching, every
item the desktop acked must be acknowledged in the inbox's consumer group,
so that a new login does not get it again:

1. a burst of 80 customer messages: after the desktop acked them all, the
   group has nothing pending, and a second login receives none again;
2. a desktop that acks and closes at once: its last acks still count.
"""

import asyncio
import os
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from omr_harness import Agent, Customer, add_agent, agent_key, log, run_tests, time_limit  # noqa: E402

BURST = 80


def pending(r, agent_id):
    """Entries of the agent's inbox delivered and not acked."""
    return int(r.client().cmd("XPENDING", agent_key(agent_id) + ":inbox", "desktop")[0])


async def wait_pending_zero(r, agent_id, timeout=10):
    deadline = time.monotonic() + timeout
    while pending(r, agent_id) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    return pending(r, agent_id)


async def relogin_gets_nothing_again(d, agent_id, token, shows):
    """A login of a desktop that shows the conversations `shows` (PROTOCOL.md
    login `conversations`): what was acked must not come again."""
    again = Agent(d.url, agent_id, token, label=f"{agent_id} again")
    await again.login(conversations=shows)
    await asyncio.sleep(1.0)  # the login's history read has come and gone
    redelivered = [f for f in again.order if f.get("type") == "message"]
    await again.close()
    return redelivered


@time_limit(90)
async def test_batched_acks_are_all_applied(env):
    r = env.redis()
    d = env.daemon(r, config={"websocket": {"max_messages_per_second": 1000}})
    token = add_agent(d, "ak1", "Ack Agent", "en", 1)
    agent = Agent(d.url, "ak1", token)
    await agent.login()
    await agent.presence("available")
    cust = Customer(d.url, "burst customer")
    await cust.hello(language="en", name="Burst")
    for n in range(BURST):
        await cust.conn.send({"type": "message", "id": f"m{n}", "text": f"#{n}"})
    await agent.wait_item(lambda f: f.get("type") == "message" and f.get("text") == f"#{BURST - 1}",
                          30, "the last message")
    left = await wait_pending_zero(r, "ak1")
    assert left == 0, f"{left} items the desktop acked are still pending in Redis"
    await agent.close()
    redelivered = await relogin_gets_nothing_again(d, "ak1", token, [cust.conversation_id])
    assert not redelivered, f"{len(redelivered)} acked items delivered again at login"
    log(f"{BURST} items acked in batches: none pending, none delivered again")
    await cust.close()


@time_limit(60)
async def test_acks_sent_just_before_a_close_count(env):
    r = env.redis()
    d = env.daemon(r)
    token = add_agent(d, "ak2", "Quick Closer", "en", 1)
    agent = Agent(d.url, "ak2", token)
    await agent.login()
    await agent.presence("available")
    cust = Customer(d.url, "customer")
    await cust.hello(language="en", name="Quick")
    await cust.send("one last thing")
    await agent.wait_item(lambda f: f.get("type") == "message" and f.get("text") == "one last thing",
                          15, "the message")
    await agent.close()  # right after its ack, well within the batching delay
    left = await wait_pending_zero(r, "ak2")
    assert left == 0, f"{left} items acked just before the close are still pending"
    redelivered = await relogin_gets_nothing_again(d, "ak2", token, [cust.conversation_id])
    assert not redelivered, f"acked before the close, delivered again: {redelivered}"
    await cust.close()


if __name__ == "__main__":
    run_tests([test_batched_acks_are_all_applied, test_acks_sent_just_before_a_close_count])
