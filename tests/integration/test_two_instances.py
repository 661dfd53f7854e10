"""test_two_instances.py - two routers on one Redis never over-assign.

ONE redis-server, TWO omnirouterd. 20 agents (en, capacity 2), half logged in
on each instance; 200 customers (en) connect at once, half on each instance,
and each sends one message. An agent answers every `assigned` with one reply
and closes the conversation 50-300 ms later. While this runs a thread reads
Redis every ~20 ms and records any agent whose convs set or load exceeds its
capacity. At the end: every conversation was assigned exactly once, to one
agent, that agent saw the customer's message, the customer got that agent's
reply and the close, every conversation is closed and nothing is left held
or waiting.
"""

import asyncio
import json
import os
import random
import sys
import threading
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from omr_harness import (Agent, Customer, Resp, add_agent, agent_key, conv_key, log,  # noqa: E402
                         run_tests, seq_key, time_limit)

N_AGENTS = 20
CAPACITY = 2
N_CUSTOMERS = 200
MAIN_PHASE_S = 120


class CapacityPoller(threading.Thread):
    """Reads every agent's convs set size and load every ~20 ms."""

    def __init__(self, port, agent_ids):
        super().__init__(daemon=True)
        self.port = port
        self.agent_ids = agent_ids
        self.stop_evt = threading.Event()
        self.violations = []
        self.errors = []
        self.polls = 0
        self.max_scard = 0
        self.max_load = 0

    def run(self):
        try:
            c = Resp(self.port)
            keys = [agent_key(a) for a in self.agent_ids]
            cmds = [("SCARD", k + ":convs") for k in keys] + [("HGET", k, "load") for k in keys]
            while not self.stop_evt.is_set():
                res = c.pipeline(cmds)
                n = len(keys)
                for i, a in enumerate(self.agent_ids):
                    scard, load = res[i], res[n + i]
                    load = int(load) if load is not None else 0
                    self.max_scard = max(self.max_scard, scard)
                    self.max_load = max(self.max_load, load)
                    if scard > CAPACITY or load > CAPACITY or load < 0:
                        self.violations.append((round(time.monotonic(), 3), a, scard, load))
                self.polls += 1
                time.sleep(0.02)
            c.close()
        except Exception as e:  # noqa: BLE001
            self.errors.append(repr(e))


@time_limit(200)
async def test_two_instances_no_double_assignment(env):
    r = env.redis()
    d1 = env.daemon(r, "d1")
    d2 = env.daemon(r, "d2")
    rng = random.Random(1234)

    assignments = []  # (agent_id, conversation_id, seq)

    # The agent answers a conversation once its customer's message came, and then
    # closes it (closing sooner raced the customer's message under load: "closed").
    customer_wrote = {}  # conversation id -> asyncio.Event

    def wrote(conv):
        return customer_wrote.setdefault(conv, asyncio.Event())

    async def on_item(agent, f):
        if f.get("type") == "message" and f.get("from") == "customer":
            wrote(f["conversation_id"]).set()
        if f.get("type") != "assigned":
            return
        conv = f["conversation_id"]
        assignments.append((agent.agent_id, conv, f["seq"]))
        await asyncio.wait_for(wrote(conv).wait(), MAIN_PHASE_S)
        await agent.reply(conv, f"reply {conv}", timeout=30)
        await asyncio.sleep(rng.uniform(0.05, 0.3))
        await agent.close_conv(conv, timeout=30)

    agent_ids = [f"ag{i:02d}" for i in range(N_AGENTS)]
    agents = []
    for i, aid in enumerate(agent_ids):
        token = add_agent(d1, aid, f"Agent {i}", "en", CAPACITY)
        home = d1 if i < N_AGENTS // 2 else d2
        agents.append(Agent(home.url, aid, token, on_item=on_item))
    await asyncio.gather(*(a.login(timeout=20) for a in agents))
    await asyncio.gather(*(a.presence("available", timeout=20) for a in agents))
    log(f"{N_AGENTS} agents available ({N_AGENTS // 2} per instance)")

    poller = CapacityPoller(r.port, agent_ids)
    poller.start()

    customers = []
    for i in range(N_CUSTOMERS):
        home = d1 if i % 2 == 0 else d2
        customers.append(Customer(home.url, f"customer {i} on {'d1' if i % 2 == 0 else 'd2'}"))

    async def run_customer(i, c):
        await c.hello(language="en", name=f"Customer {i}", timeout=30)
        await c.send(f"hi from {i}", id="c-1", timeout=30)
        await c.wait_item(lambda f: f.get("type") == "message" and f.get("from") == "agent",
                          MAIN_PHASE_S, "an agent reply")
        await c.wait_item(lambda f: f.get("type") == "event" and f.get("event") == "closed",
                          MAIN_PHASE_S, "the closed event")

    t0 = time.monotonic()
    tasks = [asyncio.create_task(run_customer(i, c)) for i, c in enumerate(customers)]
    done, pending = await asyncio.wait(tasks, timeout=MAIN_PHASE_S)
    elapsed = time.monotonic() - t0
    for t in pending:
        t.cancel()
    poller.stop_evt.set()
    poller.join(5)
    failures = [(i, t.exception()) for i, t in enumerate(tasks)
                if t in done and t.exception() is not None]
    log(f"main phase {elapsed:.1f}s: {len(done)} customers finished, {len(failures)} failed, "
        f"{len(pending)} still waiting; {len(assignments)} assignments; {poller.polls} polls, "
        f"max convs {poller.max_scard}, max load {poller.max_load}")

    # Over-assignment is the headline: report it before anything else.
    assert not poller.errors, f"Redis poller failed: {poller.errors}"
    assert not poller.violations, (
        f"agents over capacity {CAPACITY} ({len(poller.violations)} samples; time, agent, "
        f"SCARD convs, load): {poller.violations[:20]}")
    assert poller.polls >= 20, f"the poller ran only {poller.polls} times"
    assert poller.max_scard >= 1, "the poller never saw an assigned conversation: wrong keys?"

    assert not pending and not failures, (
        f"{len(pending)} customers unfinished after {MAIN_PHASE_S}s and {len(failures)} failed; "
        f"first failures:\n" + "\n".join(f"  customer {i}: {e}" for i, e in failures[:5]))
    errors = [e for a in agents for e in a.task_errors]
    assert not errors, "agent side failures:\n" + "\n".join(errors[:10])

    conv_of = {c.conversation_id: i for i, c in enumerate(customers)}
    assert len(conv_of) == N_CUSTOMERS, "two customers got the same conversation id"
    by_conv = {}
    for aid, conv, seq in assignments:
        by_conv.setdefault(conv, set()).add((aid, seq))
    multi = {c: sorted(v) for c, v in by_conv.items() if len(v) != 1}
    assert not multi, f"conversations assigned more than once: {list(multi.items())[:10]}"
    unknown = set(by_conv) - set(conv_of)
    assert not unknown, f"assignments of conversations no customer started: {sorted(unknown)[:10]}"
    missing = set(conv_of) - set(by_conv)
    assert not missing, f"{len(missing)} conversations never assigned: {sorted(missing)[:10]}"

    agent_by_id = {a.agent_id: a for a in agents}
    cross = 0
    for conv, ((aid, _seq),) in by_conv.items():
        i = conv_of[conv]
        c = customers[i]
        msgs = [f.get("text") for f in agent_by_id[aid].messages(conv)]
        assert msgs == [f"hi from {i}"], \
            f"{aid} assigned {conv} (customer {i}) but got messages {msgs}"
        replies = [f.get("text") for f in c.agent_messages()]
        assert replies == [f"reply {conv}"], \
            f"customer {i} ({conv}) got agent messages {replies}, want one reply for its chat"
        closed = [f for f in c.order if f.get("type") == "event" and f.get("event") == "closed"]
        reply = c.agent_messages()[0]
        assert seq_key(reply["seq"]) < seq_key(closed[0]["seq"]), \
            f"customer {i}: closed before the reply: {c.order}"
        cust_home = "d1" if i % 2 == 0 else "d2"
        agent_home = "d1" if int(aid[2:]) < N_AGENTS // 2 else "d2"
        cross += cust_home != agent_home
    log(f"{cross} of {N_CUSTOMERS} conversations crossed instances")

    rc = r.client()
    convs = [k for k in rc.keys("omr:{default}:conv:*") if k.count(":") == 3]
    assert len(convs) == N_CUSTOMERS, \
        f"Redis holds {len(convs)} conversation hashes, want {N_CUSTOMERS}: {convs[:5]}"
    res = rc.pipeline([("HGET", conv_key(c), "state") for c in conv_of])
    not_closed = [(c, s) for c, s in zip(conv_of, res) if s != "closed"]
    assert not not_closed, f"{len(not_closed)} conversations not closed: {not_closed[:10]}"
    for aid in agent_ids:
        h = rc.hgetall(agent_key(aid))
        held = rc.cmd("SMEMBERS", agent_key(aid) + ":convs")
        assert not held and int(h.get("load", "0")) == 0, \
            f"{aid} still holds conversations at the end: load {h.get('load')} convs {held}"
        assert json.loads(h.get("capacity", "{}")).get("chat") == CAPACITY, \
            f"{aid} capacity changed: {h}"
    leftovers = []
    for k in rc.keys("omr:{default}:*"):
        low = k.lower()
        if "queue" not in low and "wait" not in low:
            continue
        kind = rc.cmd("TYPE", k)
        size = {"zset": "ZCARD", "list": "LLEN", "set": "SCARD"}.get(kind)
        if size and rc.cmd(size, k):
            leftovers.append((k, kind, rc.cmd(size, k)))
    assert not leftovers, f"conversations still waiting at the end: {leftovers}"
    rc.close()

    await asyncio.gather(*(c.close() for c in customers))
    await asyncio.gather(*(a.close() for a in agents))
    d1.stop()
    d2.stop()


if __name__ == "__main__":
    run_tests([test_two_instances_no_double_assignment])
