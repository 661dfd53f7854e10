"""test_customer_left.py - a customer who leaves (chat.abandon_after_s).

A waiting conversation whose customer closed every connection and did not
come back within chat.abandon_after_s is closed as `abandoned`, and an open
offer of it is taken back, so no agent is handed a chat nobody is in. The
agent who holds a conversation is told when its customer leaves and comes
back. A reload (resume) in time keeps the place in line; connections closed
by a daemon that stops are not the customer leaving.

The first tests call the Functions on a real redis-server (lua_harness);
the others run the real daemon with real websocket clients.

    OMR_BUILD_DIR=build/asan python3 tests/integration/test_customer_left.py [NAME...]
"""

import asyncio
import os
import signal
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from omr_harness import (Agent, Customer, add_agent, conv_key, ctl, log, poll,  # noqa: E402
                         run_tests, time_limit)
from lua_harness import P, T, LuaTestCase, as_run_test  # noqa: E402


# omr_tick's pause_ms as the daemon passes it: (heartbeat_timeout_s x 1000 + 10000) / 3
PAUSE_30, PAUSE_10, PAUSE_3 = "13333", "6666", "4333"


class LeftLua(LuaTestCase):
    def start_with(self, conv, session, lang="en"):
        return self.fcall("omr_conv_start", conv, "tok", lang, lang, "cust", "chat", T,
                          "", "{}", "[]", session)

    def gone_timers(self, conv):
        return [t for t in self.r("ZRANGE", f"{P}:timers", 0, -1)
                if t.startswith(f"gone|{conv}|")]

    def fire_gone(self, conv):
        """As if an hour passed since the customer left: conv's abandonment
        timers are due, and so is what they check (left_ms), then a tick."""
        for t in self.gone_timers(conv):
            self.r("ZREM", f"{P}:timers", t)
            left = t.split("|")[2]
            earlier = str(int(left) - 3600000)
            if self.conv(conv).get("left_ms") == left:
                self.r("HSET", f"{P}:conv:{conv}", "left_ms", earlier)
            self.r("ZADD", f"{P}:timers", 0, f"gone|{conv}|{earlier}")
        self.fcall("omr_tick")

    def test_waiting_customer_gone_is_abandoned(self):
        self.rules({"name": "q"}, blocking={}, abandon_s=60)
        self.assertEqual(self.start_with("c1", "i1:1"), "queued")
        self.assertEqual(self.fcall("omr_conv_left", "c1", "i1:1"), "away")
        self.assertEqual(self.fcall("omr_conv_left", "c1", "i1:1"), "here")  # resent
        self.assertEqual(len(self.gone_timers("c1")), 1)
        self.fcall("omr_tick")  # not due yet
        self.assertEqual(self.conv("c1")["state"], "queued")
        self.fire_gone("c1")
        c = self.conv("c1")
        self.assertEqual((c["state"], c.get("close_reason")), ("closed", "abandoned"))
        self.assertEqual(self.waiting(queue="q"), [])
        self.assertNotIn("c1", self.r("SMEMBERS", f"{P}:queued"))
        log_ = [dict(zip(e[1][::2], e[1][1::2])) for e in self.r("XRANGE", f"{P}:conv:c1:log",
                                                                  "-", "+")]
        self.assertEqual([(f.get("event"), f.get("reason")) for f in log_],
                         [("closed", "abandoned")])
        # An agent who frees up later is not handed it.
        self.agent("a1", "en", 1)
        self.assertEqual(self.load("a1"), 0)
        self.check_invariants()

    def test_customer_back_in_time_keeps_the_place(self):
        self.rules({"name": "q"}, blocking={}, abandon_s=60)
        self.fcall("omr_tick", "i1")  # the instance is alive
        self.assertEqual(self.start_with("c1", "i1:1"), "queued")
        self.assertEqual(self.fcall("omr_conv_left", "c1", "i1:1"), "away")
        self.assertEqual(self.fcall("omr_conv_resume", "c1", "tok", T, "i1:2"),
                         "queued")
        self.assertNotIn("left_ms", self.conv("c1"))
        self.fire_gone("c1")
        self.assertEqual(self.conv("c1")["state"], "queued")
        # Leaves again: a new clock, and the old timer does not count.
        self.assertEqual(self.fcall("omr_conv_left", "c1", "i1:2"), "away")
        self.fire_gone("c1")
        self.assertEqual(self.conv("c1")["state"], "closed")

    def test_another_tab_still_open_is_not_gone(self):
        self.rules({"name": "q"}, blocking={}, abandon_s=60)
        self.fcall("omr_tick", "i1")  # both instances are alive
        self.fcall("omr_tick", "i2")
        self.assertEqual(self.start_with("c1", "i1:1"), "queued")
        self.assertEqual(self.fcall("omr_conv_resume", "c1", "tok", T, "i2:7"),
                         "queued")
        self.assertEqual(self.fcall("omr_conv_left", "c1", "i1:1"), "here")
        self.assertNotIn("left_ms", self.conv("c1"))
        self.fire_gone("c1")  # looked at again: the other tab is still there
        self.assertEqual(self.conv("c1")["state"], "queued")
        # That tab's instance stops (a crash: nothing reported); its connection no longer
        # counts once the instance is silent for routing.heartbeat_timeout_s.
        self.r("ZADD", f"{P}:instances", int(time.time() * 1000) - 60000, "i2")
        self.fire_gone("c1")
        self.assertEqual((self.conv("c1")["state"], self.conv("c1").get("close_reason")),
                         ("closed", "abandoned"))

    def test_offer_of_an_abandoned_chat_is_taken_back(self):
        self.rules({"name": "q", "auto_accept": False, "offer_timeout_s": 30}, blocking={},
                   abandon_s=60)
        self.agent("a1", "en", 1)
        self.agent("a2", "en", 1)
        self.assertEqual(self.start_with("c1", "i1:1"), "offered")
        self.assertEqual(self.start("w2"), "offered")  # the other agent
        self.assertEqual(self.start("w3"), "queued")  # waits for whoever frees up
        holder = self.conv("c1")["agent"]
        self.assertEqual(self.fcall("omr_conv_left", "c1", "i1:1"), "away")
        self.fire_gone("c1")
        self.assertEqual(self.conv("c1")["state"], "closed")
        revoked = [f for k, f in self.inbox_fields(holder) if k == "revoked"]
        self.assertEqual([(f["conv"], f["reason"]) for f in revoked], [("c1", "abandoned")])
        # Its capacity went to the next waiting chat, not to nothing.
        self.assertEqual((self.conv("w3")["state"], self.conv("w3").get("agent")),
                         ("offered", holder))
        self.assertEqual(self.load(holder), 1)
        self.check_invariants()

    def test_assigned_chat_tells_its_agent_and_is_not_closed(self):
        self.rules({"name": "q"}, blocking={}, abandon_s=60)
        self.agent("a1", "en", 1)
        self.assertEqual(self.start_with("c1", "i1:1"), "assigned")
        self.assertEqual(self.fcall("omr_conv_left", "c1", "i1:1"), "away")
        self.fire_gone("c1")
        self.assertEqual(self.conv("c1")["state"], "assigned")
        self.assertEqual(self.fcall("omr_conv_resume", "c1", "tok", T, "i1:5"),
                         "assigned")
        kinds = [k for k, conv in self.inbox_kinds("a1") if conv == "c1"]
        self.assertEqual(kinds, ["assigned", "customer-left", "customer-back"])
        self.assertEqual(self.load("a1"), 1)

    def test_chat_taken_after_its_customer_left_says_so(self):
        self.rules({"name": "q", "auto_accept": False, "offer_timeout_s": 30}, blocking={},
                   abandon_s=0)
        self.agent("a1", "en", 1)
        self.assertEqual(self.start_with("c1", "i1:1"), "offered")
        self.assertEqual(self.fcall("omr_conv_left", "c1", "i1:1"), "away")
        self.assertEqual(self.fcall("omr_offer_accept", "c1", "a1"), "assigned")
        kinds = [k for k, conv in self.inbox_kinds("a1") if conv == "c1"]
        self.assertEqual(kinds, ["offer", "assigned", "customer-left"])

    def test_connection_of_a_stopped_instance_does_not_count(self):
        # A drain or a crash never reports its customers gone; once that
        # instance stopped ticking, its members do not keep a chat alive.
        self.rules({"name": "q"}, blocking={}, abandon_s=60, heartbeat_timeout_s=30)
        self.r("ZADD", f"{P}:instances", int(time.time() * 1000) - 60000, "old")
        self.fcall("omr_tick", "new")
        self.assertEqual(self.start_with("c1", "old:3"), "queued")
        self.assertEqual(self.fcall("omr_conv_resume", "c1", "tok", T, "new:1"), "queued")
        self.assertEqual(self.fcall("omr_conv_left", "c1", "new:1"), "away")
        # (kept, not counted: the instance may only be frozen; next test)
        self.assertEqual(self.r("SMEMBERS", f"{P}:conv:c1:cust"), ["old:3"])
        self.fire_gone("c1")
        self.assertEqual(self.conv("c1")["state"], "closed")

    def test_connection_of_a_thawed_instance_counts_again(self):
        # An instance frozen (SIGSTOP) or cut off from Redis past the
        # heartbeat timeout looked stopped when the customer's other tab
        # closed; it ticks again with the customer's tab still open there:
        # the chat is not closed as abandoned (a review of 2026-12-07 found
        # it closed under a customer who was writing).
        self.rules({"name": "q"}, {"name": "q2"}, blocking={}, abandon_s=60,
                   heartbeat_timeout_s=30)
        self.stop_instance("frozen")
        self.fcall("omr_tick", "live")
        self.assertEqual(self.start_with("c1", "frozen:3"), "queued")
        self.assertEqual(self.fcall("omr_conv_resume", "c1", "tok", T, "live:1"), "queued")
        self.assertEqual(self.fcall("omr_conv_left", "c1", "live:1"), "away")
        self.fcall("omr_tick", "frozen")  # thawed
        self.fire_gone("c1")
        c = self.conv("c1")
        self.assertEqual((c["state"], c.get("left_ms")), ("queued", None))
        # The same for an assigned chat: its agent is told the customer is back.
        self.agent("a1", "en", 1)
        self.assertEqual(self.conv("c1")["state"], "assigned")
        self.stop_instance("frozen")
        self.assertEqual(self.fcall("omr_conv_resume", "c1", "tok", T, "live:2"), "assigned")
        self.assertEqual(self.fcall("omr_conv_left", "c1", "live:2"), "away")
        self.fcall("omr_tick", "frozen")
        self.fire_gone("c1")
        kinds = [k for k, f in self.inbox_fields("a1") if k.startswith("customer-")]
        self.assertEqual(kinds, ["customer-left", "customer-back"])
        self.assertNotIn("left_ms", self.conv("c1"))

    def test_customer_writing_on_a_thawed_instance_is_back(self):
        # With chat.abandon_after_s 0 no timer looks again: the customer's
        # message through the instance that ticks again tells the agent.
        self.rules({"name": "q"}, blocking={}, abandon_s=0, heartbeat_timeout_s=1)
        self.agent("a1", "en", 1)
        self.fcall("omr_tick", "live")
        self.stop_instance("frozen")
        self.assertEqual(self.start_with("c1", "frozen:3"), "assigned")
        self.assertEqual(self.fcall("omr_conv_resume", "c1", "tok", T, "live:1"), "assigned")
        self.assertEqual(self.fcall("omr_conv_left", "c1", "live:1"), "away")
        self.assertIn("left_ms", self.conv("c1"))
        self.fcall("omr_tick", "frozen")  # thawed
        self.msg("c1", "still here")
        self.assertNotIn("left_ms", self.conv("c1"))
        kinds = [k for k, f in self.inbox_fields("a1") if k.startswith("customer-")]
        self.assertEqual(kinds, ["customer-left", "customer-back"])
        # A message of a customer who is gone (sent before the last connection
        # closed, stored after) does not bring them back.
        self.assertEqual(self.fcall("omr_conv_resume", "c1", "tok", T, "live:2"), "assigned")
        self.stop_instance("frozen")  # frozen again
        self.assertEqual(self.fcall("omr_conv_left", "c1", "live:2"), "away")
        self.msg("c1", "sent before leaving")
        self.assertIn("left_ms", self.conv("c1"))

    def stop_instance(self, name, ago_ms=60000):
        """As if instance `name` last ticked ago_ms ago (heartbeat_timeout_s 30), and no
        instance paused since (instances:resumed: a silence counts from the last pause)."""
        self.r("ZADD", f"{P}:instances", int(time.time() * 1000) - ago_ms, name)
        self.r("DEL", f"{P}:instances:resumed")

    def test_customers_of_a_stopped_instance_are_taken_for_leaving(self):
        # A crash or a drain reports nobody gone. Was: a customer whose page
        # never came back after it waited for ever, and an agent who held the
        # chat was never told the customer had left.
        self.rules({"name": "q"}, blocking={}, abandon_s=60, heartbeat_timeout_s=30)
        self.agent("a1", "en", 1)
        self.fcall("omr_tick", "old")
        self.fcall("omr_tick", "new")
        self.assertEqual(self.start_with("c1", "old:1"), "assigned")  # a1's
        self.assertEqual(self.start_with("c2", "old:2"), "queued")
        self.assertEqual(self.start_with("c3", "old:3"), "queued")
        self.assertEqual(self.fcall("omr_conv_resume", "c3", "tok", T, "new:1"), "queued")
        self.assertEqual(self.start_with("c4", "old:4"), "queued")
        self.assertEqual(self.fcall("omr_conv_left", "c4", "old:4"), "away")  # left before
        left4 = self.conv("c4")["left_ms"]
        self.fcall("omr_tick", "new")  # "old" is alive: nothing happens
        self.assertNotIn("left_ms", self.conv("c2"))
        self.stop_instance("old")
        before = int(time.time() * 1000)
        self.fcall("omr_tick", "new")
        after = int(time.time() * 1000)
        self.assertIn("left_ms", self.conv("c1"))
        kinds = [k for k, conv in self.inbox_kinds("a1") if conv == "c1"]
        self.assertEqual(kinds, ["assigned", "customer-left"])
        # counted from now, not from the instance's last tick: pages that
        # reconnect to the restarted service have chat.abandon_after_s
        self.assertTrue(before <= int(self.conv("c2")["left_ms"]) <= after, self.conv("c2"))
        due = [int(float(sc)) for t, sc in zip(*[iter(self.r("ZRANGE", f"{P}:timers", 0, -1,
                                                               "WITHSCORES"))] * 2)
               if t.startswith("gone|c2|")]
        self.assertEqual(len(due), 1)
        self.assertTrue(before + 60000 <= due[0] <= after + 60000, due)
        self.assertNotIn("left_ms", self.conv("c3"))  # back on another instance
        self.assertEqual(self.conv("c4")["left_ms"], left4)  # its own departure
        self.assertIsNone(self.r("ZSCORE", f"{P}:instances", "old"))
        self.assertEqual(self.r("EXISTS", f"{P}:inst:old:convs"), 0)
        self.fire_gone("c2")
        self.assertEqual((self.conv("c2")["state"], self.conv("c2").get("close_reason")),
                         ("closed", "abandoned"))
        self.fire_gone("c3")
        self.assertEqual(self.conv("c3")["state"], "queued")
        self.assertEqual(self.conv("c1")["state"], "assigned")  # an agent's is never closed
        # Back later (the page reconnects): the agent is told.
        self.assertEqual(self.fcall("omr_conv_resume", "c1", "tok", T, "new:2"), "assigned")
        kinds = [k for k, conv in self.inbox_kinds("a1") if conv == "c1"]
        self.assertEqual(kinds, ["assigned", "customer-left", "customer-back"])
        self.check_invariants()

    def test_stopped_instance_with_many_customers_is_reaped_in_batches(self):
        self.rules({"name": "q"}, blocking={}, abandon_s=60, heartbeat_timeout_s=30)
        self.fcall("omr_tick", "old")
        self.fcall("omr_tick", "new")
        for i in range(150):
            self.assertEqual(self.start_with(f"w{i}", f"old:{i}"), "queued")
        self.stop_instance("old")
        self.fcall("omr_tick", "new")
        marked = sum(1 for i in range(150) if "left_ms" in self.conv(f"w{i}"))
        self.assertEqual(marked, 100)  # REAP_BATCH per tick
        self.assertIsNotNone(self.r("ZSCORE", f"{P}:instances", "old"))
        self.fcall("omr_tick", "new")
        marked = sum(1 for i in range(150) if "left_ms" in self.conv(f"w{i}"))
        self.assertEqual(marked, 150)
        self.assertIsNone(self.r("ZSCORE", f"{P}:instances", "old"))

    def test_reaped_instance_that_ticks_again_keeps_its_customers(self):
        # Frozen (SIGSTOP) or cut off from Redis past the heartbeat timeout,
        # not stopped: once it ticks again its customers never left.
        self.rules({"name": "q"}, blocking={}, abandon_s=60, heartbeat_timeout_s=30)
        self.fcall("omr_tick", "frozen")
        self.fcall("omr_tick", "live")
        self.assertEqual(self.start_with("c1", "frozen:1"), "queued")
        self.stop_instance("frozen")
        self.fcall("omr_tick", "live")
        self.assertIn("left_ms", self.conv("c1"))
        self.fcall("omr_tick", "frozen")  # thawed
        self.fire_gone("c1")
        c = self.conv("c1")
        self.assertEqual((c["state"], c.get("left_ms")), ("queued", None))

    def test_instance_list_follows_the_connections(self):
        # P:inst:NAME:convs: a conversation leaves an instance's list when the
        # last of that instance's connections to it closes, so that a
        # long-running instance's list stays the size of its connections.
        self.rules({"name": "q"}, blocking={}, abandon_s=60)
        self.fcall("omr_tick", "i1")
        self.fcall("omr_tick", "i2")
        self.assertEqual(self.start_with("c1", "i1:1"), "queued")
        self.assertEqual(self.fcall("omr_conv_resume", "c1", "tok", T, "i1:2"), "queued")
        self.assertEqual(self.fcall("omr_conv_resume", "c1", "tok", T, "i2:1"), "queued")
        self.assertEqual(self.fcall("omr_conv_left", "c1", "i1:1"), "here")
        self.assertEqual(self.r("SMEMBERS", f"{P}:inst:i1:convs"), ["c1"])
        self.assertEqual(self.fcall("omr_conv_left", "c1", "i1:2"), "here")
        self.assertEqual(self.r("EXISTS", f"{P}:inst:i1:convs"), 0)
        self.assertEqual(self.r("SMEMBERS", f"{P}:inst:i2:convs"), ["c1"])
        # A customer still on the page after the close (the survey), then gone.
        self.r("HSET", f"{P}:conv:c1", "state", "closed")
        self.assertEqual(self.fcall("omr_conv_left", "c1", "i2:1"), "here")
        self.assertEqual(self.r("EXISTS", f"{P}:inst:i2:convs"), 0)

    def conv_kinds(self, agent, conv):
        return [k for k, c in self.inbox_kinds(agent) if c == conv]

    def test_thawed_instance_that_crashes_later_is_reaped_again(self):
        """An instance frozen past the timeout (SIGSTOP, a VM pause, a long
        network cut to Redis) is reaped by the other one: reap_instance SPOPs
        its whole P:inst:NAME:convs list and ZREMs its name. It thaws and
        ticks again (its customers never left, and fire_gone says so), but
        nothing puts its conversations back in its list. When that instance
        crashes for real later, its customers who never come back are never
        taken for leaving again: the agent holding one is never told
        customer-left, and a waiting one is closed on the stale timer of the
        freeze (left = the first reap's time) instead of chat.abandon_after_s
        after the crash was found. Expected: a crash after a thaw reaps the
        instance's customers like any crash."""
        self.rules({"name": "q"}, blocking={}, abandon_s=60, heartbeat_timeout_s=30)
        self.agent("a1", "en", 1)
        self.fcall("omr_tick", "A")
        self.fcall("omr_tick", "B")
        self.assertEqual(self.start_with("c1", "A:1"), "assigned")  # a1 holds it
        self.assertEqual(self.start_with("c2", "A:2"), "queued")
        # A freezes long enough to be taken for stopped; B reaps it.
        self.stop_instance("A")
        self.fcall("omr_tick", "B")
        self.assertIn("left_ms", self.conv("c1"))
        self.assertEqual(self.conv_kinds("a1", "c1"), ["assigned", "customer-left"])
        reap1 = int(self.conv("c2")["left_ms"])
        # A thaws: it ticks again, its connections count again; the gone timers
        # look (due now: as if chat.abandon_after_s passed) and say so.
        self.fcall("omr_tick", "A")
        for conv in ("c1", "c2"):
            for t in self.gone_timers(conv):
                self.r("ZADD", f"{P}:timers", 0, t)
        self.fcall("omr_tick", "B")
        self.assertNotIn("left_ms", self.conv("c1"))
        self.assertNotIn("left_ms", self.conv("c2"))
        self.assertEqual(self.conv_kinds("a1", "c1"), ["assigned", "customer-left", "customer-back"])
        # Ten minutes later A crashes (SIGKILL): silent past the timeout again.
        # (c2's re-armed look is moved back as if those ten minutes passed.)
        for t in self.gone_timers("c2"):
            self.r("ZREM", f"{P}:timers", t)
            self.r("ZADD", f"{P}:timers", int(time.time() * 1000) + 30000,
                   f"gone|c2|{reap1 - 600000}")
        self.stop_instance("A")
        before = int(time.time() * 1000)
        self.fcall("omr_tick", "B")
        problems = []
        if "left_ms" not in self.conv("c1"):
            problems.append("c1 (assigned to a1, customer on crashed A) not taken for leaving")
        if self.conv_kinds("a1", "c1") != ["assigned", "customer-left", "customer-back",
                                      "customer-left"]:
            problems.append(f"a1 not told customer-left after the crash: "
                            f"{self.conv_kinds('a1', 'c1')}")
        left2 = self.conv("c2").get("left_ms")
        if left2 is None or int(left2) < before:
            problems.append(f"c2 (waiting, customer on crashed A): left_ms {left2}, want the "
                            f"crash's reap time >= {before}")
        # The customer has chat.abandon_after_s (60 s) from the reap to come
        # back; its old look fires 30 s in.
        for t in self.gone_timers("c2"):
            self.r("ZREM", f"{P}:timers", t)
            self.r("ZADD", f"{P}:timers", 0, t)
        self.fcall("omr_tick", "B")
        c2 = self.conv("c2")
        if c2["state"] != "queued":
            problems.append(f"c2 closed ({c2.get('close_reason')}) 30 s after the crash was "
                            f"found, chat.abandon_after_s is 60 s")
        self.assertEqual(problems, [])

    def test_redis_outage_is_not_every_customer_of_the_other_instance_leaving(self):
        """Two instances, both alive; Redis is unreachable (frozen, failing over,
        restarted) for longer than heartbeat_timeout_s + 10 s, so neither
        ticks. When Redis answers again, the first instance to tick finds
        the other one's last tick old and reaps it (it never compares with
        its own silence): every customer connected to the other instance is
        taken for leaving, each agent holding one is told `customer-left`
        for a customer who is there (customer-back only chat.abandon_after_s
        later), and the other instance's list is emptied, so a later real
        crash of it goes unnoticed (see the test above). Expected: an
        instance that was itself silent as long does not take the other's
        silence for a stop."""
        self.rules({"name": "q"}, blocking={}, abandon_s=60, heartbeat_timeout_s=30)
        self.agent("a1", "en", 1)
        self.fcall("omr_tick", "A")
        self.fcall("omr_tick", "B")
        self.assertEqual(self.start_with("c1", "B:1"), "assigned")
        self.assertEqual(self.start_with("c2", "B:2"), "queued")
        # Redis answers nobody for a minute (TIME goes on): both last ticked then.
        self.stop_instance("A", 60000)
        self.stop_instance("B", 59990)
        self.fcall("omr_tick", "A")  # Redis is back: A ticks first, B a moment later
        self.fcall("omr_tick", "B")
        self.assertEqual(
            (self.conv("c1").get("left_ms"), self.conv("c2").get("left_ms"),
             self.conv_kinds("a1", "c1"), sorted(self.r("SMEMBERS", f"{P}:inst:B:convs"))),
            (None, None, ["assigned"], ["c1", "c2"]))

    def test_stall_closes_waiting_chat_of_customer_on_live_instance(self):
        """Bug: the fix made reap_instance wait for the watcher's own run of
        ticks (instances:since), but customer_connected() -> instance_alive()
        (20_route.lua:273) still judges the other instance by its raw last tick.
        After a Redis stall longer than heartbeat_timeout_s + 10 s, the first
        instance to tick (A) fires the timers that fell due during the stall
        before B's queued tick has run: a `gone` look of a waiting chat whose
        customer is connected on B (it closed another tab earlier: the look is
        re-armed every heartbeat_timeout_s while the other tab is open) finds
        no live connection, sets left_ms to that old departure and closes the
        chat as abandoned at once (60_timers.lua fire_gone).
        Site sees: after a Redis stall/failover a waiting customer who is on
        the page has their chat closed as `abandoned`.
        Expected: as for the reap, a silence that the watching instance could
        not observe (its own pause) does not make another instance's
        connections stop counting; the chat keeps waiting."""
        self.rules({"name": "q"}, blocking={}, abandon_s=60, heartbeat_timeout_s=30)
        self.fcall("omr_tick", "A", PAUSE_30)
        self.fcall("omr_tick", "B", PAUSE_30)
        self.assertEqual(self.start_with("c1", "A:1"), "queued")
        self.assertEqual(self.fcall("omr_conv_resume", "c1", "tok", T, "B:1"), "queued")
        self.assertEqual(self.fcall("omr_conv_left", "c1", "A:1"), "here")  # tab 1 closed
        # That tab closed 2 minutes ago; its look was re-armed (B's tab open)
        # and fell due during the stall.
        for t in self.gone_timers("c1"):
            self.r("ZREM", f"{P}:timers", t)
        self.r("ZADD", f"{P}:timers", 0, f"gone|c1|{int(time.time() * 1000) - 120000}")
        # Redis answers nobody for a minute; both last ticked just before.
        self.stop_instance("A", 60000)
        self.stop_instance("B", 59990)
        self.fcall("omr_tick", "A", PAUSE_30)  # Redis back: A's queued tick runs first
        self.fcall("omr_tick", "B", PAUSE_30)  # then B's
        c = self.conv("c1")
        self.assertEqual((c["state"], c.get("close_reason"), c.get("left_ms")),
                         ("queued", None, None))

    def test_stall_tells_agent_customer_left_for_customer_on_live_instance(self):
        """Bug: same cause as above (instance_alive ignores the watcher's own
        pause; 40_conversations.lua customer_connected). Between the first
        tick after a Redis stall and B's first tick, a conv_left of the
        customer's tab on A finds B's tab not counting: `away`, the agent is
        told customer-left though the customer is still in the chat on B, and
        customer-back only comes chat.abandon_after_s later (the re-armed look)
        or when the customer writes.
        Site sees: customer-left on the agent desktop after a Redis stall for a
        customer who is there (the noise 3253810 meant to remove).
        Expected: `here`, no customer-left."""
        self.rules({"name": "q"}, blocking={}, abandon_s=60, heartbeat_timeout_s=30)
        self.agent("a1", "en", 1)
        self.fcall("omr_tick", "A", PAUSE_30)
        self.fcall("omr_tick", "B", PAUSE_30)
        self.assertEqual(self.start_with("c1", "A:1"), "assigned")
        self.assertEqual(self.fcall("omr_conv_resume", "c1", "tok", T, "B:1"), "assigned")
        self.stop_instance("A", 60000)
        self.stop_instance("B", 59990)
        self.fcall("omr_tick", "A", PAUSE_30)  # Redis back: A first
        got = self.fcall("omr_conv_left", "c1", "A:1")  # then a tab's close on A
        self.fcall("omr_tick", "B", PAUSE_30)  # then B's tick
        self.assertEqual((got, self.conv_kinds("a1", "c1"), self.conv("c1").get("left_ms")),
                         ("here", ["assigned"], None))

    def test_stall_just_past_the_pause_does_not_reap_a_live_instance(self):
        """(A review of 3253810 found: a watcher's own pause was detected only past 2 x
        tick_ms + 1 s, a threshold unrelated to the silence that reaps; with tick_ms 10000 and
        heartbeat_timeout_s 10 a Redis stall of 11 s was no pause for A while B looked silent
        20.5 s: A reaped B, a live instance, and its agents were told customer-left.) A pause
        is now a third of the silence (6.7 s here; tick_ms may be at most an eighth, 2.5 s),
        with nobody else ticking: A's 11.5 s without a tick is one, and every silence counts
        from it."""
        self.rules({"name": "q"}, blocking={}, abandon_s=60, heartbeat_timeout_s=10)
        self.agent("a1", "en", 1)
        self.fcall("omr_tick", "A", PAUSE_10)
        self.fcall("omr_tick", "B", PAUSE_10)
        self.assertEqual(self.start_with("c1", "B:1"), "assigned")
        # A ticked 0.5 s before an 11 s stall, B 9.5 s before.
        self.stop_instance("A", 11500)
        self.stop_instance("B", 20500)
        self.fcall("omr_tick", "A", PAUSE_10)  # Redis back: A's queued tick runs first
        self.fcall("omr_tick", "B", PAUSE_10)
        self.assertEqual((self.conv_kinds("a1", "c1"), self.conv("c1").get("left_ms"),
                          self.r("SMEMBERS", f"{P}:inst:B:convs")),
                         (["assigned"], None, ["c1"]))

    def test_partial_reap_is_merged_back(self):
        """(A review of 3253810 found: the reaped list of an instance was merged back only on
        a tick that was a pause by that instance's own measure; after a partial reap (more
        than REAP_BATCH conversations) of an instance that ticked again within it, 100
        conversations were out of its list for good, so a later crash left those customers
        waiting for ever, and inst:B:convs:reaped had no TTL.) Merged back whenever the
        instance ticks."""
        self.rules({"name": "q"}, blocking={}, abandon_s=60, heartbeat_timeout_s=3)
        self.fcall("omr_tick", "A", PAUSE_3)
        self.fcall("omr_tick", "B", PAUSE_3)
        for i in range(150):
            self.assertEqual(self.start_with(f"w{i}", f"B:{i}"), "queued")
        self.stop_instance("B", 14000)  # B silent 14 s >= 13 s
        self.fcall("omr_tick", "A", PAUSE_3)  # reaps 100 of B's 150
        self.assertEqual(self.r("SCARD", f"{P}:inst:B:convs"), 50)
        self.assertGreater(self.r("TTL", f"{P}:inst:B:convs:reaped"), 0)
        self.fcall("omr_tick", "B", PAUSE_3)  # B ticks again
        self.assertEqual((self.r("SCARD", f"{P}:inst:B:convs"),
                          self.r("EXISTS", f"{P}:inst:B:convs:reaped")), (150, 0))

    def test_thawed_instance_conv_left_before_first_tick_tells_left_twice(self):
        """Bug (noise): a frozen instance B is reaped (its customer taken for
        leaving, the agent told customer-left). B thaws; its websocket layer
        reports the customer's connection that closed meanwhile before B's
        first tick: omr_conv_left finds left_ms already set but still calls
        customer_away (40_conversations.lua conv_left), so the agent is told
        customer-left a second time (no customer-back between) and the
        abandon clock restarts from now.
        Site sees: two customer-left notices for one departure.
        Expected: one customer-left; the departure already recorded stands."""
        self.rules({"name": "q"}, blocking={}, abandon_s=60, heartbeat_timeout_s=30)
        self.agent("a1", "en", 1)
        self.fcall("omr_tick", "B", PAUSE_30)
        self.fcall("omr_tick", "A", PAUSE_30)
        self.assertEqual(self.start_with("c1", "B:1"), "assigned")
        self.stop_instance("B")
        self.fcall("omr_tick", "A", PAUSE_30)  # reaps B
        self.assertEqual(self.conv_kinds("a1", "c1"), ["assigned", "customer-left"])
        self.fcall("omr_conv_left", "c1", "B:1")  # B thawed: reports the close
        self.fcall("omr_tick", "B", PAUSE_30)
        self.assertEqual(self.conv_kinds("a1", "c1"), ["assigned", "customer-left"])

    def test_tick_ms_at_its_allowed_limit_never_reaps_a_dead_instance(self):
        """(From a review; now tick_ms is at most an eighth of the silence and a pause is more
        than a third: two regular ticks, one skipped, are no pause.) Was: --check-config
        allowed routing.tick_ms up to exactly a quarter
        of heartbeat_timeout_s + 10 s (common/config.c check_tick_rule:
        4 * tick <= silent), e.g. heartbeat_timeout_s 30 with tick_ms 10000
        (also the top of tick_ms's documented range). The daemon passes
        pause_ms = the same quarter (router/router.c on_tick), and
        instance_ticks (60_timers.lua) takes `now - prev > pause_ms` for a
        pause. A live instance's ticks are tick_ms apart plus the loop's and
        Redis's jitter, i.e. > pause_ms nearly every time: each regular tick
        sets instances:resumed = now, so every silence counts from the last
        tick and no instance is ever found silent.
        Site sees: with such a configuration (accepted by --check-config) the
        customers of a crashed instance are never taken for leaving: waiting
        chats wait for ever and are handed to agents with nobody there (the
        bug eb54818 fixed), and instances names pile up in the zset.
        Expected: a regular tick is never a pause; the dead instance is
        reaped once silent 40 s."""
        self.rules({"name": "q"}, blocking={}, abandon_s=60, heartbeat_timeout_s=30)
        self.fcall("omr_tick", "A", PAUSE_30)
        self.fcall("omr_tick", "dead", PAUSE_30)
        self.assertEqual(self.start_with("c1", "dead:1"), "queued")
        self.stop_instance("dead", 60000)  # crashed a minute ago
        # A ticks every 5 s (tick_ms 5000, the most heartbeat_timeout_s 30 allows); this tick
        # came 10 s + 2 ms after the previous one (one skipped while its previous tick was
        # in flight).
        for _ in range(5):
            self.r("ZADD", f"{P}:instances", int(time.time() * 1000) - 10002, "A")
            self.fcall("omr_tick", "A", PAUSE_30)
        self.assertIn("left_ms", self.conv("c1"),
                      f"dead instance not reaped: instances:resumed="
                      f"{self.r('GET', f'{P}:instances:resumed')}, "
                      f"instances={self.r('ZRANGE', f'{P}:instances', 0, -1, 'WITHSCORES')}")

    def test_one_instance_pausing_keeps_a_dead_instance_from_being_reaped(self):
        """(From a review; a pause now resets the silences only if no other instance ticked
        meanwhile.) Was: instances:resumed is global, but a pause of one instance's own
        ticks is not evidence that the others could not tick: a frozen
        process (GC/VM pause, SIGSTOP) or a cut to Redis of that instance alone
        sets it too (instance_ticks, 60_timers.lua), although every other
        instance ticked all along. An instance whose link to Redis flaps
        (down 15 s every 30 s, heartbeat_timeout_s 30: pause 13.3 s, silence
        40 s) resets every silence each time it comes back, so a crashed
        third instance is never reaped while it flaps.
        Site sees: the customers of a crashed instance wait for ever / agents
        never told customer-left, because some other instance is unhealthy.
        Expected: a pause counts as a stall of everybody only if nobody else
        ticked meanwhile (e.g. the newest score in instances was older than
        pause_ms before this tick); the dead instance is reaped 40 s after its
        last tick."""
        self.rules({"name": "q"}, blocking={}, abandon_s=60, heartbeat_timeout_s=30)
        for name in ("A", "F", "dead"):
            self.fcall("omr_tick", name, PAUSE_30)
        self.assertEqual(self.start_with("c1", "dead:1"), "queued")
        # "dead" crashed 39 s ago; A ticks every 200 ms all along; F was cut off 15 s
        # (longer than the pause).
        self.stop_instance("dead", 39000)
        self.r("ZADD", f"{P}:instances", int(time.time() * 1000) - 15000, "F")
        self.fcall("omr_tick", "A", PAUSE_30)
        self.fcall("omr_tick", "F", PAUSE_30)  # back: "a pause" -> resumed = now
        # 30 s later (simulated: every score 30 s older) F flaps again, and so on.
        for _ in range(4):
            for name, ago in (("dead", None), ("A", 200), ("F", 15000)):
                if ago is None:
                    sc = self.r("ZSCORE", f"{P}:instances", name)
                    if sc is not None:  # (not reaped yet)
                        self.r("ZADD", f"{P}:instances", int(float(sc)) - 30000, name)
                else:
                    self.r("ZADD", f"{P}:instances", int(time.time() * 1000) - ago, name)
            res = self.r("GET", f"{P}:instances:resumed")
            if res is not None:
                self.r("SET", f"{P}:instances:resumed", int(res) - 30000)
            self.fcall("omr_tick", "A", PAUSE_30)
            self.fcall("omr_tick", "F", PAUSE_30)
        dead_silent = int(time.time() * 1000) - int(float(self.r("ZSCORE", f"{P}:instances", "dead") or 0))
        self.assertIn("left_ms", self.conv("c1"),
                      f"dead instance silent {dead_silent} ms (> 40000) never reaped")

    def test_departure_after_thaw_counts_from_the_reap_not_from_the_departure(self):
        """(From a review; fixed.) Was: 46f4227 changed conv_left (40_conversations.lua ~256) to keep
        an existing left_ms. After a freeze the reap set left_ms = T1 (and a
        look at T1 + abandon_s); the instance thaws, its customer is there
        again (counted), and only later the page really disconnects
        (navigation, a network blip) at T1 + 59 s: conv_left keeps T1, so the
        waiting chat is closed as abandoned at T1 + 60 s, one second after
        the connection closed, though chat.abandon_after_s is 60 s.
        Site sees: after an instance froze, a waiting customer whose page
        reloads/navigates has the chat closed as abandoned at once.
        Expected: the departure counts from when the connection closed
        (left_ms moved to now without telling the agent a second time)."""
        self.rules({"name": "q"}, blocking={}, abandon_s=60, heartbeat_timeout_s=30)
        self.fcall("omr_tick", "B", PAUSE_30)
        self.fcall("omr_tick", "A", PAUSE_30)
        self.assertEqual(self.start_with("c1", "B:1"), "queued")
        self.stop_instance("B")
        self.fcall("omr_tick", "A", PAUSE_30)  # reaps frozen B
        t1 = self.conv("c1")["left_ms"]
        # As if the reap was 59.5 s ago: move left_ms and its look back.
        t1b = str(int(t1) - 59500)
        self.r("HSET", f"{P}:conv:c1", "left_ms", t1b)
        for t in self.gone_timers("c1"):
            self.r("ZREM", f"{P}:timers", t)
        self.r("ZADD", f"{P}:timers", int(t1b) + 60000, f"gone|c1|{t1b}")
        self.fcall("omr_tick", "B", PAUSE_30)  # B thawed (just now): the customer is there
        self.fcall("omr_tick", "A", PAUSE_30)
        # The page navigates: its connection closes now, comes back in ~2 s.
        self.assertEqual(self.fcall("omr_conv_left", "c1", "B:1"), "away")
        left_at = int(time.time() * 1000)
        time.sleep(0.7)
        self.fcall("omr_tick", "A", PAUSE_30)
        c = self.conv("c1")
        self.assertEqual((c["state"], c.get("close_reason")), ("queued", None),
                         f"closed {int(time.time() * 1000) - left_at} ms after the connection closed "
                         f"(abandon_after_s 60): left_ms {c.get('left_ms')} vs closed at "
                         f"{left_at}")

    def test_waiting_again_after_the_customer_left_is_abandoned(self):
        # Assigned when its customer left; transferred to a queue later: it
        # waits again, and its customer's absence still counts.
        self.rules({"name": "q"}, {"name": "q2"}, blocking={}, abandon_s=60)
        self.agent("a1", "en", 1)
        self.assertEqual(self.start_with("c1", "i1:1"), "assigned")
        self.assertEqual(self.fcall("omr_conv_left", "c1", "i1:1"), "away")
        self.assertEqual(self.fcall("omr_conv_transfer", "c1", "a1", "queue", "q2", ""),
                         "transferred")
        self.assertEqual(self.conv("c1")["state"], "queued")
        self.fire_gone("c1")
        self.assertEqual((self.conv("c1")["state"], self.conv("c1").get("close_reason")),
                         ("closed", "abandoned"))
        # Routed again long after: closed at once rather than handed to an agent.
        self.assertEqual(self.start_with("c2", "i1:2"), "assigned")  # a1 again
        self.assertEqual(self.fcall("omr_conv_left", "c2", "i1:2"), "away")
        self.r("HSET", f"{P}:conv:c2", "left_ms", int(time.time() * 1000) - 120000)
        self.agent("b1", "en", 1)
        self.assertEqual(self.fcall("omr_conv_transfer", "c2", "a1", "queue", "q2", ""),
                         "transferred")
        self.assertEqual(self.conv("c2")["state"], "closed")
        self.assertNotIn(("assigned", "c2"), self.inbox_kinds("b1"))
        self.check_invariants()

    def test_reloaded_abandon_time_applies_to_who_left(self):
        self.rules({"name": "q"}, blocking={}, abandon_s=60)
        self.assertEqual(self.start_with("c1", "i1:1"), "queued")
        self.assertEqual(self.fcall("omr_conv_left", "c1", "i1:1"), "away")
        self.rules({"name": "q"}, blocking={}, abandon_s=0)  # never
        self.fire_gone("c1")
        self.assertEqual(self.conv("c1")["state"], "queued")
        self.rules({"name": "q"}, blocking={}, abandon_s=1)  # a reload re-queues it
        time.sleep(1.1)
        self.fire_gone("c1")
        self.assertEqual(self.conv("c1")["state"], "closed")

    def test_zero_never_abandons(self):
        self.rules({"name": "q"}, blocking={}, abandon_s=0)
        self.assertEqual(self.start_with("c1", "i1:1"), "queued")
        self.assertEqual(self.fcall("omr_conv_left", "c1", "i1:1"), "away")
        self.assertEqual(self.gone_timers("c1"), [])
        self.assertEqual(self.conv("c1")["state"], "queued")

    def test_closed_conversation_keys_expire(self):
        self.rules({"name": "q"}, blocking={}, abandon_s=60, retention_s=100)
        self.agent("a1", "en", 1)
        self.assertEqual(self.start_with("c1", "i1:1"), "assigned")
        self.fcall("omr_conv_close", "c1", "a1")
        self.assertGreater(self.r("TTL", f"{P}:conv:c1:cust"), 0)


FAST = {"chat": {"abandon_after_s": 1}, "routing": {"tick_ms": 50}}


@time_limit(60)
async def test_customer_who_closes_the_page_is_not_handed_to_an_agent(env):
    r = env.redis()
    d = env.daemon(r, config=FAST)
    gone = Customer(d.url, "customer who leaves")
    await gone.hello(language="en")
    stays = Customer(d.url, "customer who reloads")
    await stays.hello(language="en")
    await stays.send("still here")
    await gone.close()
    await stays.close()
    await stays.resume()  # back within the second
    admin = r.client()
    await poll(lambda: admin.cmd("HGET", conv_key(gone.conversation_id), "state") == "closed",
               10)
    assert admin.cmd("HGET", conv_key(gone.conversation_id), "close_reason") == "abandoned"
    await asyncio.sleep(1.5)
    assert admin.cmd("HGET", conv_key(stays.conversation_id), "state") == "queued"
    token = add_agent(d, "ana", "Ana", "en", capacity=2)
    agent = Agent(d.url, "ana", token)
    await agent.login()
    await agent.presence("available")
    await agent.wait_item(lambda f: f.get("type") == "assigned", 10, "the assignment")
    await asyncio.sleep(0.5)
    got = [f["conversation_id"] for f in agent.assigned()]
    assert got == [stays.conversation_id], f"agent was handed {got}"
    await agent.wait_item(lambda f: f.get("type") == "message" and f.get("text") ==
                          "still here", 5, "the message of the one who stayed")
    # The one who left finds its chat ended when it comes back.
    await gone.resume()
    ev = await gone.wait_item(lambda f: f.get("event") == "closed", 5, "closed")
    assert ev.get("reason") == "abandoned", ev
    await agent.close()
    await stays.close()
    await gone.close()


@time_limit(60)
async def test_agent_is_told_the_customer_left_and_came_back(env):
    r = env.redis()
    d = env.daemon(r, config=FAST)
    token = add_agent(d, "ana", "Ana", "en")
    agent = Agent(d.url, "ana", token)
    await agent.login()
    await agent.presence("available")
    cust = Customer(d.url)
    await cust.hello(language="en")
    await agent.wait_item(lambda f: f.get("type") == "assigned", 10, "assigned")
    await cust.close()
    left = await agent.wait_item(lambda f: f.get("event") == "customer-left", 10,
                                 "customer-left")
    assert left.get("conversation_id") == cust.conversation_id, left
    await asyncio.sleep(1.5)  # past abandon_after_s: an assigned chat stays
    assert r.client().cmd("HGET", conv_key(cust.conversation_id), "state") == "assigned"
    await cust.resume()
    await agent.wait_item(lambda f: f.get("event") == "customer-back", 10, "customer-back")
    await cust.send("sorry, my wifi")
    await agent.wait_item(lambda f: f.get("text") == "sorry, my wifi", 5, "the message")
    await agent.close()
    await cust.close()


@time_limit(90)
async def test_daemon_restart_is_not_the_customer_leaving(env):
    r = env.redis()
    d = env.daemon(r, config=FAST)
    cust = Customer(d.url)
    await cust.hello(language="en")
    d.stop()  # SIGTERM: drains, closing the customer's connection
    await asyncio.sleep(2.5)  # longer than abandon_after_s
    d.start()
    await asyncio.sleep(1.5)  # its timers have run
    admin = r.client()
    state = admin.cmd("HGET", conv_key(cust.conversation_id), "state")
    assert state == "queued", f"conversation of a customer the daemon disconnected: {state}"
    log("a drained daemon's customer still waits after the restart")
    await cust.resume()
    await cust.close()


TWO = {"chat": {"abandon_after_s": 20}, "routing": {"tick_ms": 50, "heartbeat_timeout_s": 3}}


async def serves(agent_d, cust_d, agent_id, label):
    """Agent agent_id (capacity 1), available on instance agent_d, is assigned the chat of a
    new customer `label` whose connection is on instance cust_d. Returns (agent, customer)."""
    agent = Agent(agent_d.url, agent_id, add_agent(agent_d, agent_id, agent_id.title(), "en",
                                                   capacity=1))
    await agent.login()
    await agent.presence("available")
    cust = Customer(cust_d.url, label)
    await cust.hello(language="en")
    await agent.wait_item(lambda f: f.get("type") == "assigned", 10, f"{agent_id}'s assignment")
    return agent, cust


async def ana_serves_a_customer_of_d1(env, config, d1_config=None):
    """Two instances on one Redis (d1 with d1_config if given); ana (capacity 1, on d2) is
    assigned customer x's chat, whose connection is on d1. Returns r, d1, d2, ana, x."""
    r = env.redis()
    d1 = env.daemon(r, name="d1", config=d1_config or config)
    d2 = env.daemon(r, name="d2", config=config)
    ana, x = await serves(d2, d1, "ana", "x")
    return r, d1, d2, ana, x


@time_limit(90)
async def test_customers_of_a_crashed_instance_who_never_return(env):
    """An instance crashes (or drains, and its service is not started again). Its customers'
    pages reconnect to the other instance, or do not: those who do not are taken for leaving
    once the other instance finds the crashed one silent (heartbeat_timeout_s + 10 s). Was:
    such a chat waited for ever, and was handed to the next free agent with nobody in it;
    the agent who held one was never told the customer was gone."""
    r, d1, d2, agent, held = await ana_serves_a_customer_of_d1(
        env, dict(FAST, routing={"tick_ms": 50, "heartbeat_timeout_s": 3}))
    waits = Customer(d1.url, "waits")
    await waits.hello(language="en")  # ana is full
    back = Customer(d1.url, "back")
    await back.hello(language="en")
    d1.kill()
    env.daemons.remove(d1)
    back.base_url = d2.url
    await back.resume()  # this page reconnects to the other instance
    rc = r.client()
    key = conv_key(waits.conversation_id)
    await poll(lambda: rc.cmd("HGET", key, "state") == "closed", 30)
    assert rc.cmd("HGET", key, "close_reason") == "abandoned", rc.hgetall(key)
    left = await agent.wait_item(lambda f: f.get("event") == "customer-left", 5,
                                 "customer-left")
    assert left.get("conversation_id") == held.conversation_id, left
    assert rc.cmd("HGET", conv_key(held.conversation_id), "state") == "assigned"
    # explain says the customer left, for the chat closed and the one an agent holds
    for conv, state in ((waits.conversation_id, "closed"), (held.conversation_id, "assigned")):
        out = ctl(d2, "explain", conv).stdout
        assert f"({state})" in out and "customer      left at " in out, out
    await asyncio.sleep(1.5)  # past abandon_after_s again
    assert rc.cmd("HGET", conv_key(back.conversation_id), "state") == "queued", (
        rc.hgetall(conv_key(back.conversation_id)))
    await agent.close()
    await back.close()


@time_limit(120)
async def test_redis_freeze_tells_agents_their_customers_left(env):
    """Two instances share one Redis; ana (on d2) chats with a customer on d1, bob (on d1)
    with a customer on d2. Redis freezes (SIGSTOP: a stall, a failover) for longer than
    heartbeat_timeout_s + 10 s, then answers again. Nobody left, no instance stopped; but
    the first instance to tick reaps the other: one agent's desktop is told `customer-left`
    for a customer who is still in the chat (and customer-back only chat.abandon_after_s
    later). Expected: no customer-left."""
    r, d1, d2, ana, x = await ana_serves_a_customer_of_d1(env, TWO)
    bob, y = await serves(d1, d2, "bob", "y")
    r.proc.send_signal(signal.SIGSTOP)
    try:
        await asyncio.sleep(15)  # > heartbeat_timeout_s + 10 s
    finally:
        r.proc.send_signal(signal.SIGCONT)
    log("redis thawed")
    await asyncio.sleep(5)
    left = [(who.label, f) for who in (ana, bob)
            for f in who.order if f.get("event") == "customer-left"]
    rc = r.client()
    marks = {c.label: rc.cmd("HGET", conv_key(c.conversation_id), "left_ms") for c in (x, y)}
    for c in (x, y, ana, bob):
        await c.close()
    assert not left and marks == {"x": None, "y": None}, (left, marks)


@time_limit(150)
async def test_frozen_then_crashed_instance_customer_never_taken_for_leaving(env):
    """d1 is frozen (SIGSTOP) past heartbeat_timeout_s + 10 s: d2 reaps it (ana is told
    customer-left, then customer-back once d1 ticks again and abandon_after_s passed: the
    documented behaviour). Later d1 crashes (SIGKILL) and its customer never comes back.
    Expected, as for any crash: ana is told `customer-left` once d2 finds d1 silent. Seen:
    nothing, ever (d1's list P:inst:d1-*:convs was emptied by the first reap and never
    filled again), so ana waits on a chat nobody is in, and one transferred to a queue
    would wait for ever and be handed to the next agent."""
    r, d1, d2, ana, x = await ana_serves_a_customer_of_d1(env, dict(TWO, chat={
        "abandon_after_s": 3}))

    def events():
        return [f.get("event") for f in ana.order
                if f.get("event") in ("customer-left", "customer-back")]
    d1.proc.send_signal(signal.SIGSTOP)
    try:
        assert await poll(lambda: events() == ["customer-left"], 25), events()
    finally:
        d1.proc.send_signal(signal.SIGCONT)
    assert await poll(lambda: events() == ["customer-left", "customer-back"], 20), events()
    log("d1 thawed: ana was told customer-left then customer-back")
    await asyncio.sleep(2)
    d1.kill()
    env.daemons.remove(d1)
    await poll(lambda: len(events()) == 3, 30)  # 13 s to be found silent: 30 s is ample
    rc = r.client()
    got = (events(), rc.cmd("HGET", conv_key(x.conversation_id), "left_ms") is not None)
    await ana.close()
    assert got == (["customer-left", "customer-back", "customer-left"], True), got


RESTART = {"chat": {"abandon_after_s": 12}, "routing": {"tick_ms": 50, "heartbeat_timeout_s": 3}}


async def restart_flow(env, crash):
    """A single-instance site restarts (systemctl restart: a drain; or a crash, then
    systemd starts it again) with two chats ana holds and two waiting. One of each
    customer's pages comes back, one does not: only the one that never came back is
    taken for leaving (ana told customer-left for hers; the waiting one abandoned), the
    others keep their chat and place. (A review of the change that takes the customers
    of a stopped instance for leaving; it held.)"""
    r = env.redis()
    d = env.daemon(r, config=RESTART)
    tok = add_agent(d, "ana", "Ana", "en", capacity=2)
    ana = Agent(d.url, "ana", tok)
    await ana.login()
    await ana.presence("available")
    cs = {}
    for name in ("h_back", "h_gone", "w_back", "w_gone"):
        cs[name] = Customer(d.url, name)
        await cs[name].hello(language="en")
        await asyncio.sleep(0.2)
    rc = r.client()
    st = {n: rc.cmd("HGET", conv_key(c.conversation_id), "state") for n, c in cs.items()}
    assert st == {"h_back": "assigned", "h_gone": "assigned", "w_back": "queued",
                  "w_gone": "queued"}, st
    if crash:
        d.kill()
    else:
        d.stop()
    await ana.close()
    for c in cs.values():
        await c.close()
    await asyncio.sleep(1)
    d.start()
    ana = Agent(d.url, "ana", tok, label="ana again")
    await ana.login(conversations=[cs["h_back"].conversation_id, cs["h_gone"].conversation_id])
    await ana.presence("available")
    await cs["h_back"].resume()
    await cs["w_back"].resume()
    # the reap (3 + 10 s after the last tick before the stop), then abandon_after_s
    await poll(lambda: rc.cmd("HGET", conv_key(cs["w_gone"].conversation_id), "state")
               == "closed", 40)
    # (ana's customer-left item comes on her inbox's schedule, not with that close)
    await poll(lambda: [f for f in ana.order if f.get("event") == "customer-left"], 10)
    left = sorted(f.get("conversation_id") for f in ana.order
                  if f.get("event") == "customer-left")
    st = {n: rc.cmd("HGET", conv_key(c.conversation_id), "state") for n, c in cs.items()}
    reason = rc.cmd("HGET", conv_key(cs["w_gone"].conversation_id), "close_reason")
    await cs["h_back"].send("still here")
    await ana.wait_item(lambda f: f.get("text") == "still here", 5, "the message")
    await ana.close()
    for n in ("h_back", "w_back"):
        await cs[n].close()
    assert left == [cs["h_gone"].conversation_id], (left, {n: c.conversation_id
                                                           for n, c in cs.items()})
    assert st == {"h_back": "assigned", "h_gone": "assigned", "w_back": "queued",
                  "w_gone": "closed"} and reason == "abandoned", (st, reason)
    log("restart: only the customer who never came back was taken for leaving")


@time_limit(90)
async def test_single_instance_crash_and_start(env):
    await restart_flow(env, True)


@time_limit(90)
async def test_single_instance_drain_and_start(env):
    await restart_flow(env, False)


STALL = {"chat": {"abandon_after_s": 5}, "routing": {"tick_ms": 50, "heartbeat_timeout_s": 3}}


async def two_tabs(first_url, second_url, label):
    """A waiting customer with a tab on each instance; the tab on the first closes.
    Returns (the conversation's customer, the tab still open)."""
    tab1 = Customer(first_url, label + " tab 1")
    await tab1.hello(language="en")
    tab2 = Customer(second_url, label + " tab 2")
    tab2.conversation_id, tab2.resume_token = tab1.conversation_id, tab1.resume_token
    await tab2.resume(after=None)
    await tab1.close()
    return tab1, tab2


@time_limit(120)
async def test_redis_stall_closes_waiting_chat_of_customer_still_connected(env):
    """Two instances, one Redis. Two waiting customers each closed one of two
    tabs (x keeps a tab on d2, y a tab on d1): a `gone` look of each is armed
    and re-armed every heartbeat_timeout_s while the other tab is open. Redis
    stalls (SIGSTOP) past heartbeat_timeout_s + 10 s; the daemons drop and
    reconnect (ping timeout, backoff). Whichever instance ticks first after the
    stall fires the looks that fell due before the other instance's first
    tick: customer_connected -> instance_alive (20_route.lua:273) judges the
    other instance by its raw last tick, ignoring that the watcher itself
    could not tick, so the customer's open tab does not count, left_ms is set
    to the old departure and the chat is closed as `abandoned` at once
    (fire_gone). (From a review; every silence now counts from the pause.)
    Site sees: after a Redis stall, a waiting customer who is on the page is
    told their chat ended (abandoned), whichever instance reconnects first.
    Expected: both chats still waiting."""
    r = env.redis()
    d1 = env.daemon(r, name="d1", config=STALL)
    d2 = env.daemon(r, name="d2", config=STALL)
    x1, x2 = await two_tabs(d1.url, d2.url, "x")
    y1, y2 = await two_tabs(d2.url, d1.url, "y")
    await asyncio.sleep(7)  # past abandon_after_s: the looks re-armed, chats wait
    rc = r.client()
    st = {c.label: rc.cmd("HGET", conv_key(c.conversation_id), "state") for c in (x2, y2)}
    assert st == {"x tab 2": "queued", "y tab 2": "queued"}, st
    r.proc.send_signal(signal.SIGSTOP)
    try:
        await asyncio.sleep(16)  # > heartbeat_timeout_s + 10 s
    finally:
        r.proc.send_signal(signal.SIGCONT)
    log("redis thawed")
    await asyncio.sleep(12)  # both reconnected (backoff <= 5 s) and ticking
    rc = r.client()
    got = {c.label: (rc.cmd("HGET", conv_key(c.conversation_id), "state"),
                     rc.cmd("HGET", conv_key(c.conversation_id), "close_reason"))
           for c in (x2, y2)}
    for c in (x2, y2):
        await c.close()
    assert got == {"x tab 2": ("queued", None), "y tab 2": ("queued", None)}, got


@time_limit(90)
async def test_daemon_tick_ms_at_limit_never_reaps_crashed_instance(env):
    """(From a review, at the daemon level: with heartbeat_timeout_s 3 and tick_ms 3250, which
    --check-config accepted then, every tick was "a pause" and a crashed instance was never
    reaped. Now 1625, the most allowed, an eighth.) d1
    crashes with a waiting customer whose page never returns; d2 keeps
    running. Expected: taken for leaving ~13 s after d1's last tick and closed
    as abandoned chat.abandon_after_s (3 s) later. Seen: d2's every tick is
    "a pause" and sets instances:resumed, so d1 never looks silent: the chat waits for
    ever."""
    cfg = {"chat": {"abandon_after_s": 3},
           "routing": {"tick_ms": 1625, "heartbeat_timeout_s": 3}}
    r = env.redis()
    d1 = env.daemon(r, name="d1", config=cfg)
    env.daemon(r, name="d2", config=cfg)  # lives on
    cust = Customer(d1.url, "waits")
    await cust.hello(language="en")
    rc = r.client()
    await asyncio.sleep(4)
    d1.kill()
    env.daemons.remove(d1)
    killed = time.time()
    key = conv_key(cust.conversation_id)
    resets = set()

    def closed():
        v = rc.cmd("GET", "omr:{default}:instances:resumed")
        if v:
            resets.add(v)
        return rc.cmd("HGET", key, "state") == "closed"
    ok = await poll(closed, 40)
    got = (rc.cmd("HGET", key, "state"), rc.cmd("HGET", key, "left_ms"),
           rc.cmd("ZRANGE", "omr:{default}:instances", 0, -1, "WITHSCORES"))
    log(f"after {time.time() - killed:.0f} s: {got}; instances:resumed took {len(resets)} values")
    assert ok, (f"crashed instance's waiting customer not taken for leaving in 40 s "
                f"(13 s + 3 s expected): {got}; instances:resumed set {len(resets)} times")


@time_limit(150)
async def test_daemon_reconnect_backoff_after_redis_stall_reaps_live_instance(env):
    """(From a review: redis.reconnect_max_ms, up to 600000, was tied to nothing; now
    reconnect_max_ms + tick_ms is at most half of heartbeat_timeout_s + 10 s.) After a Redis
    stall each daemon comes back when its reconnect backoff says: d2 at once, and its tick
    sets instances:resumed; d1, with the slowest reconnect allowed, later. Was (with d1 back
    more than heartbeat_timeout_s + 10 s after d2): d2 reaped d1, ana (on d2), who holds the
    chat of a customer on d1, was told customer-left, and a waiting customer on d1 (its page
    open all along) had the chat closed as abandoned. Expected: neither."""
    base = {"chat": {"abandon_after_s": 3}, "routing": {"tick_ms": 50, "heartbeat_timeout_s": 3}}
    slow = dict(base, redis={"reconnect_min_ms": 6000, "reconnect_max_ms": 6400})
    r, d1, d2, ana, x = await ana_serves_a_customer_of_d1(env, base, d1_config=slow)
    w = Customer(d1.url, "w")
    await w.hello(language="en")  # waits: ana is full
    r.proc.send_signal(signal.SIGSTOP)
    try:
        await asyncio.sleep(5)  # > the pause (4333 ms): a stall
    finally:
        r.proc.send_signal(signal.SIGCONT)
    log("redis thawed")
    rc = r.client()
    await asyncio.sleep(22)
    left = [f for f in ana.order if f.get("event") == "customer-left"]
    wstate = (rc.cmd("HGET", conv_key(w.conversation_id), "state"),
              rc.cmd("HGET", conv_key(w.conversation_id), "close_reason"))
    for c in (ana, x, w):
        await c.close()
    assert not left and wstate == ("queued", None), (left, wstate)


def _lua(name):
    return as_run_test(LeftLua, name)


LUA = ["test_waiting_customer_gone_is_abandoned",
       "test_customer_back_in_time_keeps_the_place",
       "test_another_tab_still_open_is_not_gone",
       "test_offer_of_an_abandoned_chat_is_taken_back",
       "test_assigned_chat_tells_its_agent_and_is_not_closed",
       "test_chat_taken_after_its_customer_left_says_so",
       "test_connection_of_a_stopped_instance_does_not_count",
       "test_connection_of_a_thawed_instance_counts_again",
       "test_customer_writing_on_a_thawed_instance_is_back",
       "test_customers_of_a_stopped_instance_are_taken_for_leaving",
       "test_stopped_instance_with_many_customers_is_reaped_in_batches",
       "test_reaped_instance_that_ticks_again_keeps_its_customers",
       "test_instance_list_follows_the_connections",
       "test_thawed_instance_that_crashes_later_is_reaped_again",
       "test_redis_outage_is_not_every_customer_of_the_other_instance_leaving",
       "test_stall_closes_waiting_chat_of_customer_on_live_instance",
       "test_stall_tells_agent_customer_left_for_customer_on_live_instance",
       "test_stall_just_past_the_pause_does_not_reap_a_live_instance",
       "test_partial_reap_is_merged_back",
       "test_thawed_instance_conv_left_before_first_tick_tells_left_twice",
       "test_tick_ms_at_its_allowed_limit_never_reaps_a_dead_instance",
       "test_one_instance_pausing_keeps_a_dead_instance_from_being_reaped",
       "test_departure_after_thaw_counts_from_the_reap_not_from_the_departure",
       "test_waiting_again_after_the_customer_left_is_abandoned",
       "test_reloaded_abandon_time_applies_to_who_left",
       "test_zero_never_abandons",
       "test_closed_conversation_keys_expire"]

if __name__ == "__main__":
    run_tests([_lua(n) for n in LUA] +
              [test_customer_who_closes_the_page_is_not_handed_to_an_agent,
               test_agent_is_told_the_customer_left_and_came_back,
               test_daemon_restart_is_not_the_customer_leaving,
               test_customers_of_a_crashed_instance_who_never_return,
               test_redis_freeze_tells_agents_their_customers_left,
               test_frozen_then_crashed_instance_customer_never_taken_for_leaving,
               test_single_instance_crash_and_start, test_single_instance_drain_and_start,
               test_redis_stall_closes_waiting_chat_of_customer_still_connected,
               test_daemon_tick_ms_at_limit_never_reaps_crashed_instance,
               test_daemon_reconnect_backoff_after_redis_stall_reaps_live_instance])
