"""test_routing_daemon.py - the routing engine through real daemons.

Several omnirouterd share one Redis; timers live in Redis and whichever
instance is alive fires them:
1. An escalation ladder: a Spanish conversation waits for a Spanish speaker,
   then a step accepts English and the English agent (on the other instance)
   gets it; `omnirouterctl explain` says why.
2. Agent loss: the instance holding an agent's desktop is SIGKILLed; after
   the heartbeat timeout the agent is offline (lost), after the grace period
   its conversation is re-queued with its original enqueue time and goes to
   an agent on the surviving instance, transcript included.
3. Max wait: a conversation nobody can take is closed when its queue's
   max_wait_s passes, and the customer is told.
"""

import asyncio
import json
import os
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from omr_harness import (Agent, Customer, add_agent, conv_key, ctl, run_tests,  # noqa: E402
                         time_limit)

QUEUES = """
queues:
  - name: spanish
    languages: [es]
    steps:
      - after_s: 2
        languages: [en]
  - name: german
    languages: [de]
    max_wait_s: 2
  - name: general
"""

FAST = {"routing": {"tick_ms": 50, "heartbeat_timeout_s": 3, "agent_grace_s": 1}}


def daemons(env, r, n):
    out = []
    for i in range(n):
        d = env.daemon(r, name=f"d{i + 1}", config=FAST, start=False)
        with open(d.cfg_path, "a") as f:
            f.write(QUEUES)
        out.append(d.start())
    return out


@time_limit(60)
async def test_escalation_fires_on_any_instance(env):
    r = env.redis()
    d1, d2 = daemons(env, r, 2)
    token = add_agent(d1, "en1", "Emma", "en", 2)
    agent = Agent(d2.url, "en1", token)
    await agent.login()
    await agent.presence("available")
    cust = Customer(d1.url)
    w = await cust.hello(language="es", name="Ana")
    assert w["state"] == "queued", f"nobody speaks Spanish yet: {w}"
    t0 = time.monotonic()
    await cust.send("hola", id="m1")
    got = await agent.wait_item(lambda f: f.get("type") == "assigned", 10, "assigned after step 2")
    waited = time.monotonic() - t0
    assert got["conversation_id"] == cust.conversation_id, got
    assert 1.0 <= waited <= 12.0, f"assigned after {waited:.1f}s; the step starts at 2 s"
    await agent.wait_item(lambda f: f.get("type") == "message" and f.get("id") == "m1", 5,
                          "the message sent while waiting")
    why = json.loads(ctl(d2, "--json", "explain", cust.conversation_id).stdout)
    assert (why["queue"], why["step"], why["agent"], why["language_matched"]) == \
        ("spanish", 2, "en1", "en"), why
    await agent.close()
    await cust.close()


@time_limit(90)
async def test_lost_instance_work_is_requeued(env):
    r = env.redis()
    d1, d2 = daemons(env, r, 2)
    t1 = add_agent(d1, "a1", "Alex", "en", 1)
    t2 = add_agent(d1, "b1", "Bea", "en", 1)
    a1 = Agent(d1.url, "a1", t1)
    await a1.login()
    await a1.presence("available")
    cust = Customer(d2.url)
    await cust.hello(language="en", name="Kim")
    await cust.send("my order is late", id="m1")
    await a1.wait_item(lambda f: f.get("type") == "assigned", 10, "assigned to a1")
    rc = r.client()
    enqueued = rc.hgetall(conv_key(cust.conversation_id))["enqueued_ms"]
    b1 = Agent(d2.url, "b1", t2)
    await b1.login()
    await b1.presence("available")

    d1.kill()  # a1's desktop vanishes with its instance: no agent.gone is sent
    env.daemons.remove(d1)  # dead on purpose: only its log is checked
    d1.scan_logs()
    t0 = time.monotonic()
    got = await b1.wait_item(lambda f: f.get("type") == "assigned", 20,
                             "the lost agent's conversation")
    took = time.monotonic() - t0
    assert got["conversation_id"] == cust.conversation_id, got
    assert took >= 2.0, f"re-queued after {took:.1f}s, before heartbeat timeout + grace"
    await b1.wait_item(lambda f: f.get("type") == "message" and f.get("id") == "m1", 5,
                       "the transcript so far")
    conv = rc.hgetall(conv_key(cust.conversation_id))
    assert (conv["agent"], conv["state"], conv["enqueued_ms"]) == ("b1", "assigned", enqueued), \
        conv
    a = json.loads(ctl(d2, "--json", "agent", "show", "a1").stdout)
    assert (a["presence"], a["reason"], a["load"]["chat"]) == ("offline", "lost", 0), a
    await cust.wait_item(lambda f: f.get("event") == "requeued", 5, "requeued event")
    rc.close()
    await b1.close()
    await cust.close()


@time_limit(60)
async def test_max_wait_closes_and_tells_the_customer(env):
    r = env.redis()
    (d1,) = daemons(env, r, 1)
    cust = Customer(d1.url)
    await cust.hello(language="de")
    closed = await cust.wait_item(lambda f: f.get("event") == "closed", 10, "closed by max wait")
    assert closed["type"] == "event", closed
    conv = r.client().hgetall(conv_key(cust.conversation_id))
    assert (conv["state"], conv.get("close_reason")) == ("closed", "max-wait"), conv
    await cust.close()


if __name__ == "__main__":
    run_tests([test_escalation_fires_on_any_instance, test_lost_instance_work_is_requeued,
               test_max_wait_closes_and_tells_the_customer])
