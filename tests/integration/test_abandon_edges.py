"""test_abandon_edges.py - found by a review of the changes of 2026-12-06 evening
(customers who leave, the decline hold, the max-wait reload, the bus endpoint check). Each
test asserts what the docs say and failed on the code reviewed; the docstring names how.

    OMR_BUILD_DIR=build/asan python3 tests/integration/test_abandon_edges.py [NAME...]
"""

import os
import subprocess
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from omr_harness import (DAEMON_BIN, Customer, _sanitizer_env,  # noqa: E402
                         conv_key, free_port, poll, run_tests, time_limit)
from lua_harness import P, T, LuaTestCase, as_run_test  # noqa: E402


class ReviewLua(LuaTestCase):
    def start_with(self, conv, session, lang="en", customer=""):
        return self.fcall("omr_conv_start", conv, "tok", lang, lang, "cust", "chat", T,
                          customer, "{}", "[]", session)

    def timers(self, prefix):
        return [t for t in self.r("ZRANGE", f"{P}:timers", 0, -1) if t.startswith(prefix)]

    def make_due(self, prefix):
        for t in self.timers(prefix):
            self.r("ZADD", f"{P}:timers", 0, t)

    def fire(self, prefix):
        self.make_due(prefix)
        self.fcall("omr_tick")

    def state(self, conv):
        c = self.conv(conv)
        return c.get("state"), c.get("close_reason"), c.get("agent") or None

    # ---- customers who leave --------------------------------------------------

    def test_transfer_after_customer_left_is_abandoned(self):
        """ROUTING.md "Customers who leave": once every connection of the customer has been
        closed for abandon_after_s, a conversation *still queued* is closed as abandoned.
        The `gone` timer is armed once, when the customer leaves; it fires while the chat is
        assigned (a no-op, correctly) and is then gone. An agent who transfers the chat to a
        queue afterwards puts it back to waiting with no timer at all: nobody is there, and
        with no agent to take it (and no max_wait_s) it waits in Redis for good, its keys
        never expiring. (conv_transfer / fire_gone: nothing re-checks left_ms on re-queue.)"""
        self.rules({"name": "q"}, blocking={}, abandon_s=1)
        self.agent("a1", "en", 1)
        self.assertEqual(self.start_with("c1", "i1:1"), "assigned")
        self.assertEqual(self.fcall("omr_conv_left", "c1", "i1:1"), "away")
        time.sleep(1.1)
        self.fcall("omr_tick")  # abandon_after_s passes while assigned: stays with a1 (right)
        self.assertEqual(self.state("c1"), ("assigned", None, "a1"))
        # The agent passes it on to the queue (only agent: held from it by decline_hold_s).
        self.assertEqual(self.fcall("omr_conv_transfer", "c1", "a1", "queue", "q", ""),
                         "transferred")
        self.fcall("omr_tick")
        time.sleep(0.2)
        self.fcall("omr_tick")
        st = self.state("c1")
        self.assertEqual(st[:2], ("closed", "abandoned"),
                         f"customer gone {1.3:.1f}s > abandon_after_s, chat waiting again "
                         f"after a transfer: state {st}, gone timers "
                         f"{self.timers('gone|c1')}, TTL {self.r('TTL', f'{P}:conv:c1')}")

    def test_requeue_after_customer_left_is_not_handed_to_an_agent(self):
        """ROUTING.md: a customer who left while the conversation waits "is not handed to an
        agent". Customer leaves an assigned chat, abandon_after_s passes (gone timer consumed
        while assigned), then the agent's desktop is lost and the grace period ends: the chat
        is re-queued and handed at once to the next agent - a chat nobody has been in for
        longer than abandon_after_s. (fire_requeue -> withdraw -> reroute; nothing looks at
        left_ms.)"""
        self.rules({"name": "q"}, blocking={}, abandon_s=1, agent_grace_s=0)
        self.agent("a1", "en", 1)
        self.assertEqual(self.start_with("c1", "i1:1"), "assigned")
        self.assertEqual(self.fcall("omr_conv_left", "c1", "i1:1"), "away")
        time.sleep(1.1)
        self.fcall("omr_tick")
        self.assertEqual(self.state("c1"), ("assigned", None, "a1"))
        self.agent("a2", "en", 1)
        self.assertEqual(self.fcall("omr_agent_gone", "a1", "s-a1"), "offline")
        self.fire("requeue|a1|")
        st = self.state("c1")
        self.assertEqual((st[:2], self.load("a2")), (("closed", "abandoned"), 0),
                         f"re-queued chat of a customer gone > abandon_after_s: state {st}, "
                         f"a2 inbox {self.inbox_kinds('a2')}")

    def test_leaving_after_a_drain_and_resume_elsewhere_counts(self):
        """PROTOCOL.md "Leaving": "Gone means no connection of the customer is open on it";
        only "connections that a stopping daemon closes do not count". The member a drained
        instance leaves behind (customer.gone reason shutdown skips omr_conv_left) stays in
        conv:ID:cust for good, so after the customer resumed on another instance and then
        really closed the page, omr_conv_left answers "here" and the chat is never abandoned:
        after any rolling restart, every chat waiting at that moment loses abandonment."""
        self.rules({"name": "q"}, blocking={}, abandon_s=60)
        self.assertEqual(self.start_with("c1", "d1-aaaa:7"), "queued")
        # d1 drains: its customer.gone carries reason "shutdown", no omr_conv_left.
        self.assertEqual(self.fcall("omr_conv_resume", "c1", "tok", T, "d2-bbbb:3"), "queued")
        got = self.fcall("omr_conv_left", "c1", "d2-bbbb:3")  # the customer closes the page
        self.assertEqual(got, "away",
                         f"last open connection closed after a drain+resume: {got!r}, cust "
                         f"{self.r('SMEMBERS', f'{P}:conv:c1:cust')}, gone timers "
                         f"{self.timers('gone|c1')}")

    def test_reload_abandon_after_zero_means_never(self):
        """config/omnirouter.yaml chat.abandon_after_s: "0 = never (it waits for an agent)...
        SIGHUP: reloaded." A `gone` timer armed before the reload to 0 still closes the chat:
        fire_gone does not look at the current R.abandon_s (compare fire_max_wait, which
        re-checks the reloaded max_wait_s)."""
        self.rules({"name": "q"}, blocking={}, abandon_s=1)
        self.assertEqual(self.start_with("c1", "i1:1"), "queued")
        self.assertEqual(self.fcall("omr_conv_left", "c1", "i1:1"), "away")
        self.rules({"name": "q"}, blocking={}, abandon_s=0)  # reload: never abandon
        time.sleep(1.1)
        self.fcall("omr_tick")
        st = self.state("c1")
        self.assertEqual(st[0], "queued",
                         f"abandon_after_s reloaded to 0 (never), yet the chat was: {st}")

    def test_reload_abandon_after_from_zero_applies(self):
        """The reverse: a customer who left while abandon_after_s was 0 gets no timer;
        after a reload to 1 s, the chat (customer gone for longer) still waits for good."""
        self.rules({"name": "q"}, blocking={}, abandon_s=0)
        self.assertEqual(self.start_with("c1", "i1:1"), "queued")
        self.assertEqual(self.fcall("omr_conv_left", "c1", "i1:1"), "away")
        self.rules({"name": "q"}, blocking={}, abandon_s=1)
        time.sleep(1.3)
        self.fcall("omr_tick")
        st = self.state("c1")
        self.assertEqual(st[:2], ("closed", "abandoned"),
                         f"customer gone 1.3 s, abandon_after_s reloaded to 1: {st}, "
                         f"gone timers {self.timers('gone|c1')}")

    # ---- decline hold ---------------------------------------------------------

    def test_reload_longer_decline_hold_strands_the_chat(self):
        """ROUTING.md Offers: after decline_hold_s "if it still waits, it may come back to them
        (a timer makes the agent look at the waiting work), so a conversation only they can
        serve does not wait for good." routing.decline_hold_s is reloadable. The `decl` timer
        is armed at the hold of the moment of the reject; after a reload that lengthens the
        hold, the timer fires while the agent is still held (nothing happens) and nothing
        fires when the longer hold ends: the only capable agent sits free, the chat waits."""
        self.rules({"name": "q", "auto_accept": False, "offer_timeout_s": 30}, blocking={},
                   decline_hold_s=1)
        self.agent("a1", "en", 1)
        self.assertEqual(self.start_with("c1", "i1:1"), "offered")
        self.assertEqual(self.fcall("omr_offer_reject", "c1", "a1", "busy"), "rejected")
        self.rules({"name": "q", "auto_accept": False, "offer_timeout_s": 30}, blocking={},
                   decline_hold_s=2)
        time.sleep(1.1)
        self.fcall("omr_tick")  # the decl timer (old hold): still held under the new one
        time.sleep(1.2)
        self.fcall("omr_tick")  # 2.3 s after the reject: the hold is over
        self.fcall("omr_tick")
        st = self.state("c1")
        self.assertEqual(st[0], "offered",
                         f"decline hold over, only agent free, yet: {st}; a1 load "
                         f"{self.load('a1')}, decl timers {self.timers('decl|')}")

    def test_unseen_offers_do_not_cycle_on_one_dead_desktop(self):
        """ROUTING.md Offers: an offer that expired unacknowledged "is taken back and routed
        on". Since 38525c7 it is neither a decline nor a miss, so best_agent picks the same
        agent again (least_loaded: its load is back to 0) - for ever: a desktop that is
        connected but does not read (a frozen/discarded Chromium tab keeps its socket and
        answers pings) attracts the chat every offer_timeout_s, is never put on break
        (nothing counts), and the free agent b1 never gets it: the customer waits for good."""
        self.rules({"name": "q", "auto_accept": False, "offer_timeout_s": 30}, blocking={})
        self.agent("b1", "en", 2)
        self.assertEqual(self.start_with("busy", "i1:9"), "offered")
        self.assertEqual(self.fcall("omr_offer_accept", "busy", "b1"), "assigned")
        self.desktop_reads("b1")  # b1's desktop works: it holds one chat of two
        self.agent("a1", "en", 1)  # a1's desktop is connected but never reads its inbox
        self.assertEqual(self.start_with("c1", "i1:1"), "offered")
        holders = [self.conv("c1")["agent"]]
        for _ in range(4):
            self.fire("offer|c1|")  # offer_timeout_s passes, a1's desktop read nothing
            holders.append(self.conv("c1").get("agent"))
        self.assertIn("b1", holders,
                      f"holders of c1 after each unseen timeout: {holders}; a1 presence "
                      f"{self.presence('a1')}, b1 load {self.load('b1')} of 2")
        self.check_invariants()

    # ---- max wait --------------------------------------------------------------

    def test_reload_after_max_wait_overflow_keeps_the_start(self):
        """ROUTING.md: after a max-wait overflow "that queue's maximum wait counts from the
        overflow", and "a changed max_wait_s applies to the conversations already waiting (from
        the same start: a conversation that has waited longer than a lowered maximum meets it
        at once)". rules_load re-matches every waiting chat (queue_for(..., true)), which
        puts an overflowed chat back into the first queue; that queue's deadline is past, so
        the next tick overflows it again and maxw_from is rewritten to now: every reload
        restarts the overflow queue's clock, and a lowered maximum is not met at once."""
        a = {"name": "a", "max_wait_s": 1, "max_wait_action": "overflow:b"}
        self.rules(a, {"name": "b", "max_wait_s": 100}, blocking={})
        self.assertEqual(self.start_with("c1", "i1:1"), "queued")
        time.sleep(1.1)
        self.fcall("omr_tick")
        self.assertEqual(self.conv("c1")["queue"], "b")
        before = self.conv("c1").get("maxw_from")
        time.sleep(1.5)  # 1.5 s in b
        self.rules(a, {"name": "b", "max_wait_s": 1}, blocking={})  # lowered below that
        self.fcall("omr_tick")
        self.fcall("omr_tick")
        c = self.conv("c1")
        self.assertEqual((c["state"], c.get("close_reason")), ("closed", "max-wait"),
                         f"waited 1.5 s in b, b's max_wait_s reloaded to 1: state "
                         f"{c['state']} in queue {c.get('queue')}, maxw_from {before} -> "
                         f"{c.get('maxw_from')}")


# ---------------------------------------------------------------------------
# daemon tests

FAST = {"chat": {"abandon_after_s": 1}, "routing": {"tick_ms": 50}}


@time_limit(60)
async def test_customer_who_leaves_after_a_rolling_restart_is_abandoned(env):
    """The daemon-level form of test_lua_leaving_after_a_drain_and_resume_elsewhere_counts: a
    rolling restart (SIGTERM drain, start again), the customer's page resumes on the new
    instance, then the customer closes the page for good. PROTOCOL.md: gone = "no connection
    of the customer is open on it"; none is. Expected: closed as abandoned after
    abandon_after_s (1 s), once the drained instance is silent for heartbeat_timeout_s (3 s)
    + 10 s. Was: the drained instance's member stayed in conv:ID:cust, the chat waited for
    good."""
    r = env.redis()
    # (the drained instance's connections count until it is silent for heartbeat_timeout_s)
    d = env.daemon(r, config=dict(FAST, routing={"tick_ms": 50, "heartbeat_timeout_s": 3}))
    cust = Customer(d.url, "customer")
    await cust.hello(language="en")
    d.stop()  # drain: the customer's connection is closed with customer.gone reason shutdown
    d.start()
    await cust.resume()  # the page reconnects to the new instance
    await cust.close()  # and then the customer leaves for good
    rc = r.client()
    key = conv_key(cust.conversation_id)
    await poll(lambda: rc.cmd("HGET", key, "state") == "closed", 25)
    state = rc.cmd("HGET", key, "state")
    members = rc.cmd("SMEMBERS", key + ":cust")
    assert state == "closed" and rc.cmd("HGET", key, "close_reason") == "abandoned", (
        f"customer gone 5 s (abandon_after_s 1) after a restart+resume: state {state}, "
        f"left_ms {rc.cmd('HGET', key, 'left_ms')}, conv:ID:cust {members}")


@time_limit(40)
def test_bus_endpoint_ipv6_passes_check_config_but_cannot_bind(env):
    """bus.endpoint is "checked (inproc://, ipc://, tcp://IP:PORT) at --check-config" so that
    "the daemon would [not] only fail at start" (common/config.c check_endpoint). An IPv6
    address ("tcp://[::1]:PORT", its [IPv6] form is parsed on purpose, or "tcp://::1:PORT")
    passes, but the bus socket is never given ZMQ_IPV6 (router/bus.c): the daemon exits 1
    at start, "cannot bind ... No such device". Likewise an ipc:// path longer than a unix
    socket path can be (108 bytes) passes, then "File name too long"."""
    r = env.redis()
    bad = []
    long_dir = os.path.join(env.dir, "x" * 60)
    os.makedirs(long_dir)
    for ep in (f"tcp://[::1]:{free_port()}", f"tcp://::1:{free_port()}",
               "ipc://" + os.path.join(long_dir, "y" * 60 + ".sock")):
        path = os.path.join(env.dir, "ep.yaml")
        with open(path, "w") as f:
            f.write(f'bus:\n  endpoint: "{ep}"\n')
        p = subprocess.run([DAEMON_BIN, "--check-config", "-c", path], capture_output=True,
                           text=True, timeout=30, env=_sanitizer_env())
        if p.returncode != 0:
            continue  # refused at --check-config: consistent
        d = env.daemon(r, name=f"d{len(env.daemons)}", config={"bus": {"endpoint": ep}},
                       start=False)
        try:
            d.start(timeout=10)
            d.stop()
        except AssertionError as e:
            env.daemons.remove(d)
            bad.append(f"{ep}: --check-config ok, then: {str(e).splitlines()[-3:]}")
    assert not bad, "\n  ".join(["bus.endpoint values accepted but unusable:"] + bad)


def _lua(name):
    return as_run_test(ReviewLua, name)


LUA = ["test_transfer_after_customer_left_is_abandoned",
       "test_requeue_after_customer_left_is_not_handed_to_an_agent",
       "test_leaving_after_a_drain_and_resume_elsewhere_counts",
       "test_reload_abandon_after_zero_means_never",
       "test_reload_abandon_after_from_zero_applies",
       "test_reload_longer_decline_hold_strands_the_chat",
       "test_unseen_offers_do_not_cycle_on_one_dead_desktop",
       "test_reload_after_max_wait_overflow_keeps_the_start"]

if __name__ == "__main__":
    run_tests([_lua(n) for n in LUA] +
              [test_customer_who_leaves_after_a_rolling_restart_is_abandoned,
               test_bus_endpoint_ipv6_passes_check_config_but_cannot_bind])
