"""test_message_order.py - Redis runs an agent's requests in the order sent.

The router sends the chat messages that reach it in one loop turn to Redis
together (one omr_conv_messages call). An agent who types a last line and
transfers the conversation at once sends both frames back to back: the line
must be stored (acked, in the transcript before the transfer), not refused
because the transfer ran first. Repeated, since two frames do not always
reach the router in the same turn.
"""

import asyncio
import os
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from omr_harness import Agent, Customer, add_agent, conv_key, log, run_tests, time_limit  # noqa: E402

ROUNDS = 10


@time_limit(120)
async def test_last_line_then_transfer_keeps_its_order(env):
    r = env.redis()
    d = env.daemon(r)
    token_a = add_agent(d, "ord1", "First", "en", ROUNDS)
    token_b = add_agent(d, "ord2", "Second", "en", ROUNDS)
    first = Agent(d.url, "ord1", token_a)
    await first.login()
    await first.presence("available")
    customers = []
    for n in range(ROUNDS):
        c = Customer(d.url, f"customer {n}")
        await c.hello(language="en", name=f"Order {n}")
        customers.append(c)
    for c in customers:
        await first.wait_item(lambda f, c=c: f.get("type") == "assigned"
                              and f.get("conversation_id") == c.conversation_id,
                              15, "the assignment")
    second = Agent(d.url, "ord2", token_b)
    await second.login()
    await second.presence("available")

    for n, c in enumerate(customers):
        start = len(first.conn.frames)
        await first.conn.send({"type": "message", "conversation_id": c.conversation_id,
                               "id": f"last{n}", "text": f"goodbye {n}"})
        await first.conn.send({"type": "transfer", "conversation_id": c.conversation_id,
                               "agent": "ord2", "note": "over to you", "id": f"tr{n}"})
        for rid in (f"last{n}", f"tr{n}"):
            f = await first.conn.wait_for(
                lambda f, rid=rid: f.get("type") in ("ack", "error") and f.get("id") == rid,
                15, f"ack for {rid}", start)
            assert f["type"] == "ack", f"round {n}: {rid} refused: {f}"
        log_entries = r.client().xrange(conv_key(c.conversation_id) + ":log")
        kinds = [(e.get("kind"), e.get("event"), e.get("text")) for _, e in log_entries]
        said = kinds.index(("message", None, f"goodbye {n}"))
        moved = next(i for i, k in enumerate(kinds) if k[1] == "transferred")
        assert said < moved, f"round {n}: the line was stored after the transfer: {kinds}"
    log(f"{ROUNDS} last lines sent with their transfer: all stored, each before its transfer")
    for c in customers:
        await c.close()
    await first.close()
    await second.close()


if __name__ == "__main__":
    run_tests([test_last_line_then_transfer_keeps_its_order])
