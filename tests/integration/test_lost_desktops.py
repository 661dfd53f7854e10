"""test_lost_desktops.py - a desktop taken for lost (its instance frozen past
routing.heartbeat_timeout_s, still connected) and what the site and the agent may do
meanwhile: its replies, accept and close right after its instance runs again are its own; a
login elsewhere that then disconnects ends it; the agent removed and created again logs it
out (logged-out, not replaced); a presence the site set while it was lost stays and the
restored desktop is told it; and a returning customer does not wait for an agent with no
desktop whom the site put on break.

Fixed after these tests showed them (each failed before): the restored desktop was never
told the presence the site set (test_restored_desktop_told_*); a removed and re-created
agent's old desktop was closed as replaced (test_lost_then_removed_desktop_logged_out); a
sticky customer waited the whole window for an agent with no desktop
(test_sticky_skips_*).
"""
import asyncio
import os
import signal
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from omr_harness import Agent, Customer, add_agent, ctl, poll, run_tests, time_limit  # noqa: E402
from test_live_floor import (GENERAL, available, cluster, explain, frozen_then_back,  # noqa: E402
                             served_once, show)

OFFERS = """
queues:
  - name: general
    auto_accept: false
    offer_timeout_s: 60
"""

STICKY = """
queues:
  - name: general
    sticky_window_s: 30
"""


async def freeze_until_lost(env, d1, d2, aid="ana"):
    d1.proc.send_signal(signal.SIGSTOP)
    lost = await poll(lambda: show(d2, aid)["reason"] == "lost", 8, interval=0.05)
    env.expect(lost, f"{aid} lost: {show(d2, aid)}")


@time_limit(90)
async def test_lost_desktop_replies_closes_accepts_right_after_thaw(env):
    """ROUTING.md: a desktop taken for lost while still connected keeps its work; what it sent
    meanwhile is its own (lost_session_of). Frames queued while frozen and sent at once after."""
    r = env.redis()
    d1, d2 = cluster(env, r, 2, OFFERS, {"routing": {"agent_grace_s": 30}})
    ta = add_agent(d1, "ana", "Ana", "en", 3)
    ana = await available(d1, "ana", ta)
    c1 = Customer(d2.url, "c1")
    await c1.hello(language="en", name="K1")
    await ana.wait_item(lambda f: f.get("type") == "offer", 10, "offer1")
    await ana.accept(c1.conversation_id)
    await ana.wait_item(lambda f: f.get("type") == "assigned", 10, "assigned1")
    c2 = Customer(d2.url, "c2")
    await c2.hello(language="en", name="K2")
    await ana.wait_item(lambda f: f.get("type") == "offer"
                        and f.get("conversation_id") == c2.conversation_id, 10, "offer2")
    await freeze_until_lost(env, d1, d2)
    # frames sent while frozen: reach d1 when it runs again
    t1 = asyncio.ensure_future(ana.reply(c1.conversation_id, "still here", id="r1",
                                         expect_ack=False, timeout=20))
    t2 = asyncio.ensure_future(ana.accept(c2.conversation_id, id="acc2", timeout=20))
    await asyncio.sleep(0.3)
    d1.proc.send_signal(signal.SIGCONT)
    r1, r2 = await t1, await t2
    env.expect(r1.get("type") == "ack", f"reply while lost refused: {r1}")
    env.expect(r2.get("type") == "ack", f"accept while lost refused: {r2}")
    r3 = await ana.close_conv(c1.conversation_id, expect_ack=False)
    env.expect(r3.get("type") == "ack", f"close after thaw refused: {r3}")
    r4 = await ana.reply(c1.conversation_id, "still here", id="r1", expect_ack=False)
    env.expect(r4.get("type") == "ack" and r4.get("seq") == r1.get("seq"),
               f"resend of stored reply: {r4} vs {r1}")
    await asyncio.sleep(1.5)
    env.expect(not ana.conn.closed, f"closed {ana.conn.close_code} {ana.conn.close_reason}")


@time_limit(90)
async def test_lost_then_login_elsewhere_that_disconnects(env):
    """Lost on d1; the agent logs in on d2 and that desktop closes; d1 runs again: its
    desktop must not be restored (a login took over: ROUTING.md), its reply refused."""
    r = env.redis()
    d1, d2 = cluster(env, r, 2, GENERAL, {"routing": {"agent_grace_s": 30}})
    ta = add_agent(d1, "ana", "Ana", "en", 2)
    ana = await available(d1, "ana", ta)
    c1 = Customer(d2.url, "c1")
    await c1.hello(language="en", name="K1")
    await ana.wait_item(lambda f: f.get("type") == "assigned", 10, "assigned1")
    await freeze_until_lost(env, d1, d2)
    try:
        ana2 = Agent(d2.url, "ana", ta, label="ana on d2")
        await ana2.login()
        await asyncio.sleep(0.3)
        await ana2.close()
        await poll(lambda: show(d2, "ana")["reason"] == "disconnected", 5)
    finally:
        d1.proc.send_signal(signal.SIGCONT)
    try:
        rr = await ana.reply(c1.conversation_id, "old desktop", id="old1", expect_ack=False)
    except Exception as e:  # noqa: BLE001 (closed meanwhile: fine)
        rr = {"type": "error", "_exc": str(e)[:100]}
    env.expect(rr is None or rr.get("type") == "error", f"old desktop's reply stored: {rr}")
    await asyncio.sleep(2.5)
    # (d1, just thawed, may have dropped the notification: then its next heartbeat tells it)
    await poll(lambda: ana.conn.closed, 15)
    a = show(d2, "ana")
    env.expect(ana.conn.closed, f"old desktop still open; ana {a['presence']} {a['reason']}")
    env.expect(a["presence"] == "offline", f"ana restored by the old desktop: {a}")


@time_limit(90)
async def test_lost_then_removed_desktop_logged_out(env):
    """PROTOCOL.md: a desktop whose agent is removed is closed with logged-out. The agent
    was lost (no conversations) when removed, then re-added with the same id."""
    for readd in (False, True):
        r = env.redis(name=f"redis{int(readd)}")
        d1, d2 = cluster(env, r, 2, GENERAL) if not readd else (None, None)
        if readd:
            # (fresh names)
            cfg = {"routing": {"tick_ms": 50, "heartbeat_timeout_s": 3, "agent_grace_s": 1}}
            d1 = env.daemon(r, name="e1", config=cfg, queues=GENERAL)
            d2 = env.daemon(r, name="e2", config=cfg, queues=GENERAL)
        ta = add_agent(d1, "ana", "Ana", "en", 2)
        ana = await available(d1, "ana", ta)
        await freeze_until_lost(env, d1, d2)
        try:
            ctl(d2, "agent", "remove", "ana")
            if readd:
                add_agent(d2, "ana", "Ana again", "en", 2)
        finally:
            d1.proc.send_signal(signal.SIGCONT)
        await poll(lambda: ana.conn.closed, 10)
        errs = [f for f in ana.conn.frames if f.get("type") == "error"]
        env.expect(ana.conn.closed and any(f.get("code") == "logged-out" for f in errs),
                   f"readd={readd}: closed={ana.conn.closed} {ana.conn.close_code} "
                   f"{ana.conn.close_reason!r} errors={errs}")


async def restored_after(env, state):
    ana, c1, r, d2 = await frozen_then_back(
        env, ["agent", "state", "--id", "ana", state, "--reason", "lunch"])
    # (the notice comes when d1's heartbeat restores the desktop: its own schedule)
    await poll(lambda: [f for f in ana.conn.frames if f.get("type") == "presence"
                        and f.get("presence") == state], 10)
    a = show(d2, "ana")
    notices = [f for f in ana.conn.frames if f.get("type") == "presence"]
    env.expect(not ana.conn.closed, f"closed {ana.conn.close_code}")
    env.expect(a["presence"] == state, f"presence kept: {a}")
    env.expect(any(f.get("presence") == state for f in notices),
               f"site set {state} while the desktop was taken for lost; restored with "
               f"presence {a['presence']} ({a['reason']}) but the desktop was never told "
               f"(its last answer was 'available'): presence notices {notices}")
    # the desktop believes it is available; a new customer is not routed to ana
    return ana, a


@time_limit(90)
async def test_restored_desktop_told_break(env):
    await restored_after(env, "break")


@time_limit(90)
async def test_restored_desktop_told_offline(env):
    await restored_after(env, "offline")


async def sticky_to_deskless(env, how):
    r = env.redis()
    d1, d2 = cluster(env, r, 2, STICKY, {"routing": {"agent_grace_s": 2}})
    ta = add_agent(d1, "ana", "Ana", "en", 1)
    tb = add_agent(d2, "bob", "Bob", "en", 1)
    ana = await available(d1, "ana", ta)
    await served_once(d2, ana, "kim")
    if how == "lost":
        d1.proc.send_signal(signal.SIGKILL)
        d1.proc.wait()
        env.daemons.remove(d1)  # (killed on purpose)
        ok = await poll(lambda: show(d2, "ana")["reason"] == "lost", 8, interval=0.05)
    else:
        await ana.close()
        ok = await poll(lambda: show(d2, "ana")["presence"] == "offline", 5)
    env.expect(ok, show(d2, "ana"))
    ctl(d2, "agent", "state", "--id", "ana", "break", "--reason", "lunch")
    await available(d2, "bob", tb)
    back = Customer(d2.url, "kim-back")
    w = await back.hello(language="en", name="Kim", customer_id="kim")
    why = explain(d2, back.conversation_id)
    env.expect(w["state"] == "assigned" and why.get("agent") == "bob",
               f"{how}: ana has no desktop (ROUTING.md: an offline agent is not waited for; "
               f"only one 'logged in but busy' is); kim must go to bob at once: "
               f"welcome {w}, explain {why}, ana {show(d2, 'ana')['presence']}")


@time_limit(90)
async def test_sticky_skips_lost_agent_site_put_on_break(env):
    await sticky_to_deskless(env, "lost")


@time_limit(90)
async def test_sticky_skips_disconnected_agent_site_put_on_break(env):
    await sticky_to_deskless(env, "closed")


if __name__ == "__main__":
    run_tests([v for k, v in list(globals().items()) if k.startswith("test_")])
