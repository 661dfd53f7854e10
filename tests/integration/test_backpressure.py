"""test_backpressure.py - when the router falls behind, clients are slowed
down, not refused, and nothing they sent is lost.

The daemon runs with bus.max_pending = 2: at most two websocket requests may
wait for the router at once. Three customers each send a burst of messages
without waiting for acks, while their agent replies. Every message must be
acked (no `unavailable` error), stored once, and reach the agent in the
order each customer sent it. Before backpressure, everything past the two
in flight was refused with `unavailable`.
"""

import asyncio
import os
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from omr_harness import Agent, Customer, add_agent, conv_key, log, run_tests, time_limit  # noqa: E402

BURST = 60
CUSTOMERS = 3


@time_limit(120)
async def test_full_bus_slows_clients_down_and_loses_nothing(env):
    r = env.redis()
    d = env.daemon(r, config={"bus": {"max_pending": 2},
                              "websocket": {"max_messages_per_second": 1000}})
    token = add_agent(d, "bp1", "Back Pressure", "en", CUSTOMERS)
    agent = Agent(d.url, "bp1", token)
    await agent.login()
    await agent.presence("available")

    customers = []
    for i in range(CUSTOMERS):
        c = Customer(d.url, f"customer {i}")
        await c.hello(language="en", name=f"Burst {i}")
        customers.append(c)

    # Each customer writes its whole burst at once, as fast as the socket
    # takes it; the agent replies meanwhile (its requests share the bus).
    async def burst(i, c):
        for n in range(BURST):
            await c.conn.send({"type": "message", "id": f"b{i}-{n}", "text": f"{i}:{n}"})

    async def replies():
        for n in range(10):
            for c in customers:
                await agent.reply(c.conversation_id, f"reply {n}", timeout=30)

    await asyncio.gather(*(burst(i, c) for i, c in enumerate(customers)), replies())

    for i, c in enumerate(customers):
        want = {f"b{i}-{n}" for n in range(BURST)}

        def all_answered(f, c=c, want=want):
            got = {x.get("id") for x in c.conn.frames if x.get("type") in ("ack", "error")}
            return want <= got

        await c.conn.wait_for(all_answered, 60, f"answers to all {BURST} messages")
        errors = [f for f in c.conn.frames if f.get("type") == "error"]
        assert not errors, f"customer {i}: refused while the bus was full: {errors[:5]}"
        acks = {f["id"]: f["seq"] for f in c.conn.frames if f.get("type") == "ack"
                and f.get("id", "").startswith(f"b{i}-")}
        assert len(acks) == BURST, f"customer {i}: {len(acks)} of {BURST} acked"

    for i, c in enumerate(customers):
        await agent.wait_item(lambda f, c=c: f.get("type") == "message"
                              and f.get("conversation_id") == c.conversation_id
                              and f.get("text") == f"{i}:{BURST - 1}", 60,
                              f"customer {i}'s last message")
        texts = [f.get("text") for f in agent.messages(c.conversation_id)
                 if f.get("from") == "customer"]
        assert texts == [f"{i}:{n}" for n in range(BURST)], \
            f"customer {i}: the agent got {len(texts)} messages, not in order: {texts[:10]}"
        stored = [f.get("text") for _, f in r.client().xrange(conv_key(c.conversation_id) + ":log")
                  if f.get("kind") == "message" and f.get("from") == "customer"]
        assert stored == [f"{i}:{n}" for n in range(BURST)], \
            f"customer {i}: transcript holds {len(stored)} messages: {stored[:10]}"
    log(f"{CUSTOMERS} customers x {BURST} messages acked, delivered in order, stored once")

    for c in customers:
        await c.close()
    await agent.close()


if __name__ == "__main__":
    run_tests([test_full_bus_slows_clients_down_and_loses_nothing])
