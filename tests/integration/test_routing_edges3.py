"""test_routing_edges3.py - routing against docs/ROUTING.md: combinations the
other routing tests do not cover, from a review of 2026-12-07 (the fixes it
led to are in the same commit). Lua-level (lua_harness.py: a real
redis-server, FCALL).

    python3 tests/integration/test_routing_edges3.py [-k NAME]
"""
import json
import os
import sys
import time
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lua_harness import LuaTestCase, P  # noqa: E402


def hist(self, aid):
    return [dict(zip(e[1][::2], e[1][1::2]))
            for e in self.r("XRANGE", f"{P}:agent:{aid}:presence", "-", "+")]


class RoutingReview(LuaTestCase):
    # ---- offers and missed offers -------------------------------------------

    def test_reject_between_timeouts_resets_the_streak(self):
        # "N missed offers in a row": timeout, reject, timeout with N=2 is not
        # two in a row.
        self.rules({"name": "q", "auto_accept": False, "offer_timeout_s": 1,
                    "steps": [{"after_s": 0}]}, max_missed_offers=2, decline_hold_s=0)
        self.agent("a", "en", 1)
        self.start("c1")
        self.desktop_reads("a")
        self.tick_after(1.05)  # c1 missed (1); c1 offered again? decline_hold 0
        self.assertEqual(self.presence("a"), ("available", ""))
        c1 = self.conv("c1")
        self.assertEqual((c1["state"], c1.get("agent")), ("offered", "a"))
        self.assertEqual(self.fcall("omr_offer_reject", "c1", "a", "busy"), "rejected")
        # (re-offered at once: decline_hold_s 0)
        self.desktop_reads("a")
        self.tick_after(1.05)
        got = json.loads(self.fcall("omr_agent_get", "a"))
        self.assertEqual((got["presence"], got["missed_offers"]), ("available", 1))

    def test_missed_offer_count_after_coming_back_from_break(self):
        # After a missed-offers break the agent comes back: does ONE more
        # miss put it on break again (counter never reset)?
        self.rules({"name": "q", "auto_accept": False, "offer_timeout_s": 1,
                    "steps": [{"after_s": 0}]}, max_missed_offers=2)
        self.agent("a", "en", 2)
        self.start("c1")
        self.start("c2")
        self.desktop_reads("a")
        self.tick_after(1.05)
        self.assertEqual(self.presence("a"), ("break", "missed-offers"))
        self.fcall("omr_agent_presence", "a", "s-a", "available")
        # a declined c1 and c2 (hold 5 min): a new conversation
        self.start("c3")
        self.assertEqual(self.conv("c3").get("agent"), "a")
        self.desktop_reads("a")
        self.tick_after(1.05)
        got = json.loads(self.fcall("omr_agent_get", "a"))
        self.assertEqual((got["presence"], got["missed_offers"]), ("available", 1),
                         "one missed offer after the break put it on break again")

    def test_admin_offline_while_offered(self):
        # omnirouterctl agent state X offline while X has an offer open.
        self.rules({"name": "q", "auto_accept": False, "offer_timeout_s": 30,
                    "steps": [{"after_s": 0}]})
        self.agent("a", "en", 1)
        self.start("c1")
        self.assertEqual(self.conv("c1")["agent"], "a")
        self.agent("b", "en", 1)
        self.assertEqual(self.fcall("omr_agent_state", "a", "offline", ""), "offline")
        c = self.conv("c1")
        self.assertEqual((c["state"], c.get("agent")), ("offered", "b"),
                         f"offer stays with offline a: {c.get('state')} {c.get('agent')}")

    # ---- sticky ---------------------------------------------------------------

    def test_sticky_agent_in_wrapup_gets_it_when_wrapup_ends(self):
        self.rules({"name": "q", "sticky_window_s": 10, "wrapup_s": 30,
                    "steps": [{"after_s": 0}]})
        self.agent("a", "en", 2)
        self.agent("b", "en", 2)
        self.start("c1", customer="k")
        self.assertEqual(self.conv("c1")["agent"], "a")
        self.fcall("omr_conv_close", "c1", "a")
        self.start("c2", customer="k")
        c = self.conv("c2")
        self.assertEqual((c["state"], c.get("pref_agent")), ("queued", "a"))
        self.fcall("omr_agent_wrapup_end", "a", "s-a", "chat")
        self.assertEqual(self.conv("c2").get("agent"), "a")
        self.check_invariants()

    def test_admin_offline_ends_sticky_wait(self):
        # "An offline agent is not waited for": a conversation waiting for a
        # (sticky) should take the normal route when a goes offline by ctl.
        self.rules({"name": "q", "sticky_window_s": 60, "steps": [{"after_s": 0}]})
        self.agent("a", "en", 1)
        self.start("c1", customer="k")
        self.fcall("omr_conv_close", "c1", "a")
        self.start("busy")  # a full
        self.assertEqual(self.conv("busy")["agent"], "a")
        self.start("c2", customer="k")
        self.assertEqual(self.conv("c2").get("pref_agent"), "a")
        self.agent("b", "en", 1)
        self.assertEqual(self.conv("c2").get("state"), "queued")
        self.fcall("omr_agent_state", "a", "offline", "")
        c = self.conv("c2")
        self.assertEqual((c["state"], c.get("agent")), ("assigned", "b"),
                         f"still waiting for offline a: {c}")

    def test_sticky_agent_at_capacity_window_then_other_agent(self):
        self.rules({"name": "q", "sticky_window_s": 1, "max_wait_s": 30,
                    "steps": [{"after_s": 0}]})
        self.agent("a", "en", 1)
        self.start("c1", customer="k")
        self.fcall("omr_conv_close", "c1", "a")
        self.start("x")
        self.start("c2", customer="k")
        self.agent("b", "en", 1, available=False)
        self.fcall("omr_agent_presence", "b", "s-b", "available")
        self.assertEqual(self.conv("c2")["state"], "queued")  # in the window
        self.tick_after(1.05)
        self.assertEqual(self.conv("c2").get("agent"), "b")
        self.check_invariants()

    # ---- ordering across queues ----------------------------------------------

    def test_agent_serving_two_queues_priority_then_age(self):
        # lo (priority 1, ladder relaxing billing 8 -> 5 after 1 s) and hi
        # (priority 5, language fallback es -> en after 1 s); the agent frees
        # up: the hi conversation first even though lo's is older.
        self.rules({"name": "lo", "skills": {"billing": 8}, "priority": 1,
                    "steps": [{"after_s": 0}, {"after_s": 1, "min_level_delta": 3}]},
                   {"name": "hi", "languages": ["es"], "priority": 5,
                    "steps": [{"after_s": 0}, {"after_s": 1, "languages": ["en"]}]},
                   {"name": "gen"})
        self.agent("a", "en", 1, skills={"billing": 5})
        self.start("busy")
        self.assertEqual(self.conv("busy")["agent"], "a")
        self.start("lo1", skills=["billing"])
        time.sleep(0.01)
        self.start("hi1", "es")
        self.tick_after(1.1)
        self.assertEqual((self.conv("lo1")["step"], self.conv("hi1")["step"]), ("2", "2"))
        self.fcall("omr_conv_close", "busy", "a")
        self.assertEqual(self.conv("hi1").get("agent"), "a")
        self.assertEqual(self.conv("lo1")["state"], "queued")
        why = self.explain("hi1")
        self.assertEqual((why["queue"], why["step"], why["language_matched"]), ("hi", 2, "en"))
        self.check_invariants()

    def test_language_fallback_and_skill_relaxation_same_step(self):
        self.rules({"name": "q", "languages": ["pt"], "skills": {"billing": 8},
                    "steps": [{"after_s": 0}, {"after_s": 1, "languages": ["es"]},
                              {"after_s": 2, "languages": ["en"], "min_level_delta": 4}]})
        self.agent("es8", "es", 1, skills={"billing": 8}, available=False)
        self.agent("en4", "en", 1, skills={"billing": 4}, available=False)
        self.start("c1", "pt-BR", skills=["billing"])
        self.tick_after(1.05)
        self.tick_after(1.05)
        self.assertEqual(self.conv("c1")["step"], "3")
        self.fcall("omr_agent_presence", "en4", "s-en4", "available")
        self.assertEqual(self.conv("c1").get("agent"), "en4")
        why = self.explain("c1")
        self.assertEqual((why["step"], why["language_matched"], why["skills"]["billing"]),
                         (3, "en", {"required": 4, "agent": 4}))
        self.check_invariants()

    # ---- overflow / max wait ----------------------------------------------------

    def test_max_wait_overflow_counts_new_queue_wait_from_overflow(self):
        self.rules({"name": "a", "languages": ["de"], "max_wait_s": 1,
                    "max_wait_action": "overflow:b"},
                   {"name": "b", "max_wait_s": 2, "steps": [{"after_s": 0}]})
        self.start("c1", "de")
        self.tick_after(1.05)
        self.assertEqual((self.conv("c1")["queue"], self.conv("c1")["state"]), ("b", "queued"))
        self.tick_after(1.2)  # 2.25 s after enqueue, 1.2 after overflow
        self.assertEqual(self.conv("c1")["state"], "queued")
        self.tick_after(1.0)
        c = self.conv("c1")
        self.assertEqual((c["state"], c.get("close_reason")), ("closed", "max-wait"))

    # ---- blocking / capacity / wrap-up -------------------------------------------

    def test_email_blocks_chat_when_configured(self):
        self.rules({"name": "q", "steps": [{"after_s": 0}]}, blocking={"email": ["chat"]})
        self.agent("a", "en", {"chat": 2, "email": 1})
        self.assertEqual(self.start("e1", channel="email"), "assigned")
        self.assertEqual(self.start("c1"), "queued")
        self.fcall("omr_conv_close", "e1", "a")
        self.assertEqual(self.conv("c1").get("agent"), "a")
        self.assertEqual(self.start("e2", channel="email"), "assigned")  # chat does not block
        self.check_invariants()

    def test_capacity_lowered_below_load_then_one_close(self):
        self.rules({"name": "q", "steps": [{"after_s": 0}]})
        self.agent("a", "en", 3)
        for i in range(3):
            self.start(f"c{i}")
        self.start("w")
        self.assertEqual(self.conv("w")["state"], "queued")
        self.update("a", capacity={"chat": 1})
        self.fcall("omr_conv_close", "c0", "a")
        self.assertEqual(self.conv("w")["state"], "queued")  # still 2 >= 1
        self.fcall("omr_conv_close", "c1", "a")
        self.assertEqual(self.conv("w")["state"], "queued")  # 1 >= 1
        self.fcall("omr_conv_close", "c2", "a")
        self.assertEqual(self.conv("w").get("agent"), "a")
        self.check_invariants()

    def test_wrapup_is_in_presence_history(self):
        # ROUTING.md: presence includes per-channel wrap-up; "every change is
        # kept in the agent's history stream".
        self.rules({"name": "q", "wrapup_s": 30, "steps": [{"after_s": 0}]})
        self.agent("a", "en", 1)
        self.start("c1")
        before = len(hist(self, "a"))
        self.fcall("omr_conv_close", "c1", "a")
        self.fcall("omr_agent_wrapup_end", "a", "s-a", "chat")
        after = hist(self, "a")
        self.assertGreater(len(after), before,
                           f"wrap-up start/end not in the history: {after[before - 1:]}")

    # ---- explain -----------------------------------------------------------------

    def test_explain_after_requeue_and_overflow(self):
        # a was given c1 in queue a; a rejects; the overflow step moves it to
        # queue b where it waits. explain shows ... ?
        self.rules({"name": "a", "languages": ["de"], "auto_accept": False,
                    "offer_timeout_s": 30,
                    "steps": [{"after_s": 0}, {"after_s": 1, "overflow": "b"}]},
                   {"name": "b", "channels": ["chat"], "steps": [{"after_s": 0}]})
        self.agent("d", "de", 1)
        self.start("c1", "de")
        self.fcall("omr_offer_reject", "c1", "d", "")
        self.tick_after(1.05)
        c = self.conv("c1")
        self.assertEqual((c["state"], c["queue"]), ("queued", "b"))
        why = self.explain("c1")
        self.assertEqual((why.get("queue"), why.get("state"), why.get("agent")),
                         ("b", "queued", None), f"explain: {why}")

    def test_explain_trigger_after_transfer(self):
        self.rules({"name": "q", "steps": [{"after_s": 0}]}, {"name": "r"})
        self.agent("a", "en", 1)
        self.agent("b", "en", 1)
        self.start("c1")
        holder = self.conv("c1")["agent"]
        self.fcall("omr_conv_transfer", "c1", holder, "queue", "r", "note")
        why = self.explain("c1")
        self.assertEqual(why["queue"], "r")
        self.assertIn("transfer", why["trigger"])
        self.assertNotIn("escalated", why["trigger"], why["trigger"])

    # ---- ties -------------------------------------------------------------------

    def test_ties_across_languages_deterministic(self):
        # es conversation at the en-fallback step; "b" speaks es, "a" en,
        # both idle, load 0: tie by agent id -> a.
        self.rules(dict(name="q", languages=["es"],
                        steps=[{"after_s": 0}, {"after_s": 1, "languages": ["en"]}]))
        self.agent("b", "es", 1, available=False)
        self.agent("a", "en", 1, available=False)
        self.start("c1", "es")
        self.tick_after(1.05)
        self.r("HSET", f"{P}:agent:a", "last_assign_ms", 5)
        self.r("HSET", f"{P}:agent:b", "last_assign_ms", 5)
        # both become available in one call? no: presence one by one pulls.
        self.fcall("omr_agent_presence", "b", "s-b", "available")
        self.assertEqual(self.conv("c1").get("agent"), "b")

    def test_sticky_wait_longer_than_max_wait(self):
        # max_wait_s 1 (close), sticky window 3 s, the last agent busy: the
        # conversation waits in queue q; does its maximum wait apply?
        self.rules({"name": "q", "sticky_window_s": 3, "max_wait_s": 1,
                    "steps": [{"after_s": 0}]})
        self.agent("a", "en", 1)
        self.start("c1", customer="k")
        self.fcall("omr_conv_close", "c1", "a")
        self.start("x")
        self.start("c2", customer="k")
        self.assertEqual(self.conv("c2").get("pref_agent"), "a")
        self.tick_after(1.1)
        self.tick_after(0.3)
        c = self.conv("c2")
        self.assertEqual((c["state"], c.get("close_reason")), ("closed", "max-wait"))

    def test_explain_after_escalation_assignment(self):
        self.rules({"name": "q", "skills": {"billing": 8},
                    "steps": [{"after_s": 0}, {"after_s": 1, "min_level_delta": 4}]})
        self.agent("a", "en", 1, skills={"billing": 5})
        self.start("c1", skills=["billing"])
        self.assertEqual(self.conv("c1")["state"], "queued")
        self.tick_after(1.05)
        self.assertEqual(self.conv("c1").get("agent"), "a")
        why = self.explain("c1")
        self.assertEqual((why["step"], why["skills"]["billing"]),
                         (2, {"required": 4, "agent": 5}))
        self.assertIn("escalat", why["trigger"])
        self.assertNotIn("transferred", why["trigger"])

    # ---- added with the fixes ------------------------------------------------

    def test_max_wait_passed_during_offer_then_reject(self):
        # ROUTING.md: an offered conversation whose maximum wait runs out
        # waits for the offer's answer; rejected, it goes to another agent
        # who can take it at once, and is closed when there is none.
        self.rules({"name": "q", "auto_accept": False, "offer_timeout_s": 30, "max_wait_s": 1,
                    "steps": [{"after_s": 0}]})
        self.agent("a", "en", 1)
        self.agent("b", "en", 1)
        self.start("c1")
        self.tick_after(1.1)
        self.assertEqual(self.conv("c1")["state"], "offered")
        first = self.conv("c1")["agent"]
        self.fcall("omr_offer_reject", "c1", first, "")
        c = self.conv("c1")
        self.assertEqual(c["state"], "offered")
        self.fcall("omr_offer_reject", "c1", c["agent"], "")
        self.tick_after(0.01)
        c = self.conv("c1")
        self.assertEqual((c["state"], c.get("close_reason")), ("closed", "max-wait"))

    def test_transferred_old_conversation_is_not_closed_for_max_wait(self):
        # A chat an agent served for ten minutes, transferred to a queue with
        # a 60 s maximum wait: it was closed at the next tick ("No agent could
        # take your chat in time"), its wait counted from its first enqueue.
        # Time with an agent is not waiting: the wait counts from the transfer.
        self.rules({"name": "q"}, {"name": "q2", "max_wait_s": 60}, blocking={})
        self.agent("a1", "en", 1)
        self.assertEqual(self.start("c1"), "assigned")
        old = int(time.time() * 1000) - 600000
        self.r("HSET", f"{P}:conv:c1", "enqueued_ms", old, "created_ms", old)
        self.assertEqual(self.fcall("omr_conv_transfer", "c1", "a1", "queue", "q2", ""),
                         "transferred")
        self.tick_after(0.05)
        self.assertEqual(self.conv("c1")["state"], "queued")
        # ... and its place in line is still its first enqueue time.
        self.assertEqual(self.conv("c1")["enqueued_ms"], str(old))
        due = [int(s) for t, s in zip(*[iter(self.r("ZRANGE", f"{P}:timers", 0, -1,
                                                      "WITHSCORES"))] * 2)
               if t == "max|c1|q2"]
        self.assertEqual(len(due), 1)
        self.assertGreater(due[0], time.time() * 1000 + 50000)

    def test_explain_agent_became_free_lists_what_it_chose_from(self):
        # An agent that becomes free takes the highest priority, then the
        # longest waiting: the explanation lists the waiting heads it chose
        # among, with their scores, the chosen one first.
        self.rules({"name": "hi", "priority": 5, "attributes": {"tier": "gold"}},
                   {"name": "lo"}, blocking={})
        self.start("old", attrs={})
        time.sleep(0.01)
        self.start("gold", attrs={"tier": "gold"})
        self.agent("a", "en", 1)
        self.assertEqual(self.conv("gold").get("agent"), "a")
        why = self.explain("gold")
        self.assertEqual(why["trigger"], "agent became free")
        self.assertEqual([w["conversation"] for w in why["waiting"]], ["gold", "old"])
        self.assertLess(int(why["waiting"][0]["score"]), int(why["waiting"][1]["score"]))


    # ---- from a review of the fixes above ---------------------------------------

    def test_overflow_again_after_transfer_counts_from_the_overflow(self):
        # A (max 1 s, overflow to B), B (max 3 s, close). It overflows A to B
        # (maxw_from B|T1), is served in B, transferred back to A, overflows
        # to B again: B's wait counts from this overflow, not from T1 nor
        # from the transfer.
        self.rules({"name": "A", "max_wait_s": 1, "max_wait_action": "overflow:B",
                    "skills": {"x": 1}},
                   {"name": "B", "max_wait_s": 3, "max_wait_action": "close"}, blocking={})
        self.start("c1", skills=["x"])
        self.tick_after(1.1)
        self.assertEqual((self.conv("c1")["state"], self.conv("c1")["queue"]), ("queued", "B"))
        self.agent("b", "en", 1)
        self.assertEqual(self.conv("c1").get("agent"), "b")
        self.assertEqual(self.fcall("omr_conv_transfer", "c1", "b", "queue", "A", ""),
                         "transferred")
        self.tick_after(1.1)
        overflow = int(time.time() * 1000)
        self.assertEqual((self.conv("c1")["state"], self.conv("c1")["queue"]), ("queued", "B"))
        flat = self.r("ZRANGE", f"{P}:timers", 0, -1, "WITHSCORES")
        due = [int(float(s)) for t, s in zip(flat[::2], flat[1::2]) if t == "max|c1|B"]
        self.assertEqual(len(due), 1)
        self.assertGreater(due[0], overflow + 2500)

    def test_transfer_to_a_queue_is_not_overflowed_away_by_its_ladder_at_once(self):
        # The ladder counts from when the agent gave it back, like the
        # maximum wait: a chat older than Q's overflow step, transferred to Q,
        # stays in Q until that step is due from the transfer.
        self.rules({"name": "g"},
                   {"name": "Q", "skills": {"bill": 1},
                    "steps": [{"after_s": 0}, {"after_s": 1, "overflow": "g"}]},
                   blocking={})
        self.agent("a", "en", 1)
        self.start("c1")
        self.assertEqual(self.conv("c1").get("agent"), "a")
        time.sleep(1.2)
        self.assertEqual(self.fcall("omr_conv_transfer", "c1", "a", "queue", "Q", ""),
                         "transferred")
        self.tick_after(0.05)
        self.assertEqual(self.conv("c1")["queue"], "Q", "overflowed away at once")
        self.tick_after(1.1)
        self.assertEqual(self.conv("c1")["queue"], "g")

    def test_missed_offers_reset_only_when_becoming_available(self):
        # "available" again while available is not a new streak.
        self.rules({"name": "q", "auto_accept": False, "offer_timeout_s": 1},
                   blocking={}, max_missed_offers=2, decline_hold_s=0)
        self.agent("a", "en", 1)
        self.start("c1")
        self.desktop_reads("a")
        self.tick_after(1.1)
        self.assertEqual(json.loads(self.fcall("omr_agent_get", "a"))["missed_offers"], 1)
        self.fcall("omr_agent_presence", "a", "s-a", "available")
        self.assertEqual(json.loads(self.fcall("omr_agent_get", "a"))["missed_offers"], 1)


if __name__ == "__main__":
    unittest.main(verbosity=2)
