"""test_multi_edges.py - several instances and a desktop that moves between
them (a review of 2026-12-07 with failures at awkward moments).

A desktop that logs in again on another instance while its customer writes
must get everything: items the old instance's watch read, or was reading,
for the old connection are pending under the agent, and the instance with
the new desktop reads them again when told ("h:AGENT", router/delivery.c).

    OMR_BUILD_DIR=build/asan python3 tests/integration/test_multi_edges.py [NAME...]
"""

import asyncio
import os
import random
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from omr_harness import (Agent, Customer, add_agent, agent_key, log, poll,  # noqa: E402
                         run_tests, time_limit)

FAST = {"routing": {"tick_ms": 50, "heartbeat_timeout_s": 3, "agent_grace_s": 30},
        "websocket": {"max_messages_per_second": 1000}}


@time_limit(60)
async def test_reread_notification_sends_what_another_watch_took(env):
    """Entries of the agent's inbox that a stale reader took (pending under the agent, never
    sent to this desktop) reach the desktop when "h:AGENT" is published, with no other
    traffic for the agent."""
    r = env.redis()
    d = env.daemon(r, config=FAST)
    tok = add_agent(d, "a1", "Alex", "en", 2)
    agent = Agent(d.url, "a1", tok)
    await agent.login()
    await agent.presence("available")
    cust = Customer(d.url)
    await cust.hello(language="en")
    conv = cust.conversation_id
    await agent.wait_item(lambda f: f.get("type") == "assigned", 10, "assigned")
    rc = r.client()
    inbox = agent_key("a1") + ":inbox"
    # A stale watch's read: an entry nobody notified, read for consumer a1.
    rc.cmd("XADD", inbox, "*", "kind", "message", "conv", conv, "from", "customer", "msgid",
           "taken-1", "text", "read by a watch that is gone", "name", "Kim", "ts", "1")
    got = rc.cmd("XREADGROUP", "GROUP", "desktop", "a1", "COUNT", "10", "STREAMS", inbox, ">")
    assert got and got[0][1], f"the stale read took nothing: {got}"
    await asyncio.sleep(0.5)
    assert not agent.messages(conv) or all(f.get("id") != "taken-1"
                                           for f in agent.messages(conv))
    rc.cmd("PUBLISH", "omr:{default}:notify", "h:a1")
    await agent.wait_item(lambda f: f.get("type") == "message" and f.get("id") == "taken-1",
                          5, "the entry the stale watch took")
    rc.close()
    await agent.close()
    await cust.close()


@time_limit(120)
async def test_desktop_moves_while_customer_writes(env):
    """The agent logs in again on the other instance while its customer sends messages back
    to back. Before the fix the old instance's read in flight took the login's resent items
    and dropped them (its watch was gone): the new desktop never got the assignment nor the
    first messages while the customer waited quietly (4 rounds in 22)."""
    r = env.redis()
    da = env.daemon(r, name="dA", config=FAST)
    db = env.daemon(r, name="dB", config=FAST)
    tok = add_agent(da, "a1", "Alex", "en", 5)
    homes = [da, db]
    old = Agent(da.url, "a1", tok, label="a1 old")
    await old.login()
    await old.presence("available")
    problems = []
    for rnd in range(int(os.environ.get("ROUNDS", "8"))):
        dst = homes[(rnd + 1) % 2]
        cust = Customer(dst.url, f"customer {rnd}")
        await cust.hello(language="en")
        conv = cust.conversation_id
        await old.wait_item(lambda f: f.get("type") == "assigned" and
                            f.get("conversation_id") == conv, 10, "assigned")
        sent = []
        stop = asyncio.Event()

        async def writer():
            while not stop.is_set() and len(sent) < 600:
                mid = f"r{rnd}m{len(sent)}"
                await cust.send(mid, id=mid)
                sent.append(mid)

        wt = asyncio.create_task(writer())
        await asyncio.sleep(0.2 + random.random() * 0.2)
        new = Agent(dst.url, "a1", tok, label=f"a1 new {rnd}")
        await new.login()
        await asyncio.sleep(0.3)
        stop.set()
        await wt

        def have_all():
            got = {f.get("id") for f in new.messages(conv)}
            return True if set(sent) <= got and new.assigned(conv) else None
        await poll(have_all, 8)
        got = {f.get("id") for f in new.messages(conv)}
        missing = [m for m in sent if m not in got]
        log(f"round {rnd}: sent {len(sent)}, the new desktop lacks {len(missing)}, "
            f"assigned item {bool(new.assigned(conv))}")
        if missing or not new.assigned(conv):
            problems.append(f"round {rnd}: the new desktop lacks {len(missing)} of {len(sent)} "
                            f"({missing[:5]}), assigned item: {bool(new.assigned(conv))}")
        await new.close_conv(conv)
        await cust.close()
        await old.close()
        old = new
    assert not problems, "\n".join(problems)
    await old.close()


if __name__ == "__main__":
    run_tests([test_reread_notification_sends_what_another_watch_took,
               test_desktop_moves_while_customer_writes])
