"""test_bus_edges.py - the internal bus (adapter <-> router) when the router
cannot answer in time (Redis away longer than bus.ack_timeout_ms *
bus.max_attempts). Each test failed before its fix:

1. A desktop that closes then: its agent.gone timed out and was dropped, and
   the router kept vouching for the agent, online with no desktop and given
   work. The report is now sent again, and the router forgets the desktop at
   once.
2. A login the adapter gave up on (the client told to resend) that Redis ran
   later: it replaced the working desktop and left the agent held by a dead
   session. The adapter now reports that connection gone."""

import asyncio
import os
import signal
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from omr_harness import (Agent, Customer, add_agent, agent_key, conv_key, log,  # noqa: E402
                         run_tests, time_limit, wait_field, wait_log)

HEARTBEAT_S = 3
CONFIG = {"redis": {"ping_interval_ms": 200, "ping_timeout_ms": 500,
                    "reconnect_min_ms": 50, "reconnect_max_ms": 200},
          "bus": {"ack_timeout_ms": 100, "max_attempts": 3},
          "routing": {"heartbeat_timeout_s": HEARTBEAT_S}}


async def close_desktop_during_outage(env):
    """Agent a1 logged in and available; Redis frozen until the daemon sees
    it (PING timeout); the desktop closes; after the adapter gave up on
    agent.gone (3 attempts x 100 ms) Redis thaws and the daemon reconnects.
    Returns (redis, daemon)."""
    r = env.redis()
    d = env.daemon(r, config=CONFIG)
    token = add_agent(d, "a1", "Alex", "en", 2)
    agent = Agent(d.url, "a1", token)
    await agent.login()
    await agent.presence("available")
    ready_before = d.log_text().count("ready host=")
    r.proc.send_signal(signal.SIGSTOP)
    try:
        await wait_log(d, "PING timeout", 10)
        await asyncio.sleep(0.3)
        await agent.close()  # the desktop goes away while Redis is unavailable
        await asyncio.sleep(1.5)
    finally:
        r.proc.send_signal(signal.SIGCONT)
    await wait_log(d, "ready host=", 15, ready_before + 1)
    return r, d


@time_limit(90)
async def test_desktop_closed_during_long_outage_goes_offline(env):
    r, d = await close_desktop_during_outage(env)
    log("redis is back; agent.gone was: " +
        ("dropped (timed out)" if "connection report" in d.log_text() else "not dropped"))

    # Agent loss takes heartbeat_timeout_s once nobody vouches; allow twice that.
    got = await wait_field(r, agent_key("a1"), "presence", "offline", 3 * HEARTBEAT_S)
    assert got == "offline", (
        f"agent a1 closed its desktop during the outage but is still '{got}' "
        f"{3 * HEARTBEAT_S}s after Redis came back")


@time_limit(90)
async def test_desktop_closed_during_long_outage_gets_no_work(env):
    """The same, seen by a customer: the desktop-less agent takes the chat."""
    r, d = await close_desktop_during_outage(env)
    await asyncio.sleep(3 * HEARTBEAT_S)
    cust = Customer(d.url)
    await cust.hello(language="en")
    await asyncio.sleep(1.0)
    conv = r.client().hgetall(conv_key(cust.conversation_id))
    assert conv.get("agent") != "a1", (
        f"a customer's chat went to agent a1, whose desktop closed {3 * HEARTBEAT_S + 1}s "
        f"earlier: state={conv.get('state')} agent={conv.get('agent')}")
    await cust.close()


@time_limit(90)
async def test_login_timed_out_at_adapter_but_run_by_router(env):
    """2. A login the adapter gave up on (-ETIMEDOUT after max_attempts, the
    client is told "the router did not answer in time") still runs when
    Redis answers late: the router replaces the agent's working desktop with
    the connection that was told its login failed and has closed, and no
    agent.gone ever comes for that connection (the adapter never saw it
    authenticated), so the agent is held by a dead session and vouched for
    forever."""
    r = env.redis()
    cfg = {"redis": {"ping_interval_ms": 200, "ping_timeout_ms": 3000,
                     "reconnect_min_ms": 50, "reconnect_max_ms": 200},
           "bus": {"ack_timeout_ms": 100, "max_attempts": 3},
           "routing": {"heartbeat_timeout_s": HEARTBEAT_S}}
    d = env.daemon(r, config=cfg)
    token = add_agent(d, "a1", "Alex", "en", 2)
    first = Agent(d.url, "a1", token, label="desktop 1")
    await first.login()
    await first.presence("available")
    second = Agent(d.url, "a1", token, label="desktop 2")
    r.proc.send_signal(signal.SIGSTOP)  # slow, not down: shorter than ping_timeout_ms
    try:
        refused = None
        try:
            await second.login(timeout=5)
        except AssertionError as e:
            refused = str(e)
        log(f"second login: {refused or 'welcome'}")
        assert refused, "the second login was welcomed while Redis was frozen"
        await second.close()  # told it failed: the user gives up on this desktop
        await asyncio.sleep(0.3)
    finally:
        r.proc.send_signal(signal.SIGCONT)
    await asyncio.sleep(3 * HEARTBEAT_S)
    a = r.client().hgetall(agent_key("a1"))
    first_alive = not first.conn.closed
    log(f"after: desktop 1 open={first_alive} presence={a.get('presence')} "
        f"session={a.get('session')}")
    assert first_alive or a.get("presence") == "offline", (
        f"the working desktop was replaced by a login the client was told had failed "
        f"(and then closed); the agent is still '{a.get('presence')}' with session "
        f"{a.get('session')!r} and no desktop, {3 * HEARTBEAT_S}s later")


if __name__ == "__main__":
    run_tests([test_desktop_closed_during_long_outage_goes_offline,
               test_desktop_closed_during_long_outage_gets_no_work,
               test_login_timed_out_at_adapter_but_run_by_router])
