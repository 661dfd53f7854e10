"""test_routing_requeue.py - from a review of 2026-12-07 (of efe4443 and ab16c4a): the order
in which work routed again at once goes, the ladder steps route() takes when it routes a
conversation again, what waits for one agent in particular scored like the waiting sets.
Lua-level tests (the Functions on a real redis-server, lua_harness.py) run through
as_run_test. The first two failed on the library of efe4443.

    OMR_BUILD_DIR=build/asan python3 tests/integration/test_routing_requeue.py [NAME...]
"""
import json
import os
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from omr_harness import run_tests  # noqa: E402
from lua_harness import P, LuaTestCase, as_run_test  # noqa: E402

VIP = {"name": "vip", "priority": 5, "attributes": {"vip": "yes"}, "auto_accept": False,
       "offer_timeout_s": 60, "steps": [{"after_s": 0}]}
GENERAL = {"name": "general", "sticky_window_s": 60, "steps": [{"after_s": 0}]}


class RequeueOrder(LuaTestCase):

    def test_offline_routes_sticky_waiter_before_older_vip_offer(self):
        """ROUTING.md (Waiting and ordering): "Several routed again at once (an agent lost
        with the conversations it held, an agent set offline with offers open) go in that
        order too [highest queue priority, then longest waiting], as do those waiting for one
        agent in particular (sticky, a transfer to the agent) when that agent ... goes
        offline." Agent x, set offline, has an open offer of an older VIP chat (priority 5)
        and a priority-0 returning customer waiting for it; y, the only free agent, has room
        for one. Instead the sticky waiter is routed first (end_waits_for runs before the
        offers are taken back, change_state 30_agents.lua:474-480) and takes y; the VIP chat,
        older and of higher priority, waits."""
        self.rules(VIP, GENERAL)
        self.agent("x", "en", 1)
        self.assertEqual(self.start("c1", customer="kim"), "assigned")
        self.fcall("omr_conv_close", "c1", "x")
        self.assertEqual(self.start("v", attrs={"vip": "yes"}), "offered")
        time.sleep(0.01)
        self.assertEqual(self.start("c2", customer="kim"), "queued")
        self.assertEqual(self.conv("c2").get("pref_agent"), "x")
        self.agent("y", "en", 1)  # free: nothing in the waiting sets for it
        self.assertEqual(self.load("y"), 0)
        self.fcall("omr_agent_state", "x", "offline", "")
        v, c2 = self.conv("v"), self.conv("c2")
        self.assertEqual((v.get("state"), v.get("agent")), ("offered", "y"),
                         f"the VIP chat (priority 5, older) waits: v={v.get('state')} "
                         f"c2={c2.get('state')} to {c2.get('agent')!r}")
        self.check_invariants()

    def test_late_escalation_explains_an_earlier_step(self):
        """ROUTING.md (Explanations): "The trigger names its cause: ... `escalated to step 2 of
        queue billing`"; the explanation of a waiting conversation is "where it waits now
        (`queue`, `step`, ..., and `trigger`: why it waits ...)". An escalation timer that
        fires late (no instance ticked for a while: an outage, a stall), when steps 2 and 3
        are both due: route() now takes step 3 at once (step_due) but the trigger stays the
        one fire_escalation set for step 2 (60_timers.lua:23, then route() in
        20_route.lua:466 moves the step without renaming the cause): explain says step 3,
        `escalated to step 2 of queue q`. (Before efe4443 the step-3 timer fired at the next
        tick and named step 3.)"""
        self.rules({"name": "q", "skills": {"billing": 5},
                    "steps": [{"after_s": 0}, {"after_s": 1, "min_level_delta": 1},
                              {"after_s": 2, "min_level_delta": 2}]})
        self.assertEqual(self.start("c1", skills=["billing"]), "queued")
        self.tick_after(2.2)  # both steps due: one late tick
        why = self.explain("c1")
        self.assertEqual(self.conv("c1")["step"], "3")
        self.assertEqual((why.get("step"), why.get("trigger")),
                         (3, "escalated to step 3 of queue q"), why)

    def test_format_change_rescores_old_pref_entries(self):
        """README (Upgrading): a library that scores "the priority in what waits for one
        agent" differently "rebuilds the availability index when its daemon connects". Entries
        of P:pref:x scored as an older library did (enqueued_ms alone) and P:index_format 3:
        the same rules loaded again (the daemon's connect) re-score them, so the VIP waiter,
        newer, is first (pull_preferred, conv_position) and x, freed, takes it."""
        vip = dict(VIP, auto_accept=True, sticky_window_s=60)
        doc = {"version": "v1", "queues": [vip, GENERAL], "blocking": self.blocking}
        self.assertEqual(self.fcall("omr_rules_load", json.dumps(doc)), "loaded")
        self.agent("x", "en", 1)
        for conv, cust, attrs in (("k1", "kim", {}), ("a1", "ann", {"vip": "yes"})):
            self.assertEqual(self.start(conv, customer=cust, attrs=attrs), "assigned")
            self.fcall("omr_conv_close", conv, "x")
        self.assertEqual(self.start("c0", customer="other"), "assigned")  # x full
        self.assertEqual(self.start("k2", customer="kim"), "queued")
        time.sleep(0.01)
        self.assertEqual(self.start("a2", customer="ann", attrs={"vip": "yes"}), "queued")
        pkey = f"{P}:pref:x"
        self.assertEqual(self.r("ZRANGE", pkey, 0, -1), ["a2", "k2"])
        for conv in ("k2", "a2"):  # as the older library scored them
            self.r("ZADD", pkey, self.conv(conv)["enqueued_ms"], conv)
        self.r("SET", f"{P}:index_format", "3")
        self.assertEqual(self.r("ZRANGE", pkey, 0, -1), ["k2", "a2"])
        self.assertEqual(self.fcall("omr_rules_load", json.dumps(doc)), "loaded")
        self.assertEqual(self.r("ZRANGE", pkey, 0, -1), ["a2", "k2"])
        self.assertEqual(self.fcall("omr_conv_position", "a2")[:2], ["queued", 1])
        self.assertEqual(self.fcall("omr_conv_position", "k2")[:2], ["queued", 2])
        self.assertEqual(self.r("GET", f"{P}:index_format"), "5")
        self.fcall("omr_conv_close", "c0", "x")
        self.assertEqual((self.conv("a2").get("agent"), self.conv("k2")["state"]),
                         ("x", "queued"))
        self.check_invariants()

    def test_transfer_to_queue_restarts_ladder(self):
        """ROUTING.md (Escalation ladder): steps count "from the enqueue time (or from
        when an agent who held the conversation gave it back ...)"; route() now takes the
        steps due (step_due). A chat held 1.3 s by hi, then transferred to its own queue, is
        routed at step 1 (its ladder starts again: lo, billing 3, may take it only at step 2,
        1 s later), not at step 2 at once; lo gets it after its step-2 timer."""
        self.rules({"name": "q", "skills": {"billing": 5},
                    "steps": [{"after_s": 0}, {"after_s": 1, "min_level_delta": 2}]})
        self.agent("hi", "en", 1, skills={"billing": 5})
        self.assertEqual(self.start("c1", skills=["billing"]), "assigned")
        self.agent("lo", "en", 1, skills={"billing": 3})
        time.sleep(1.3)
        self.fcall("omr_tick")
        self.assertEqual(self.fcall("omr_conv_transfer", "c1", "hi", "queue", "q", "n"),
                         "transferred")
        c = self.conv("c1")
        self.assertEqual((c["state"], c["step"]), ("queued", "1"), c)
        self.tick_after(0.5)
        self.assertEqual(self.conv("c1")["state"], "queued")
        self.tick_after(0.7)
        c = self.conv("c1")
        self.assertEqual((c["state"], c.get("agent"), c["step"]), ("assigned", "lo", "2"), c)
        self.check_invariants()


def lua(name):
    return as_run_test(RequeueOrder, name)


TESTS = [
    lua("test_offline_routes_sticky_waiter_before_older_vip_offer"),
    lua("test_late_escalation_explains_an_earlier_step"),
    lua("test_format_change_rescores_old_pref_entries"),
    lua("test_transfer_to_queue_restarts_ladder"),
]

if __name__ == "__main__":
    run_tests(TESTS)
