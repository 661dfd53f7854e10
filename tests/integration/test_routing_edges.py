"""Edge cases of the routing functions (router/lua/*.lua) a contact
center hits: agent updates and removal while holding work, offers racing with
presence changes and closes, transfers, sticky routing, wrap-up with channel
blocking, rules reloads, escalation with language fallback, maximum wait, ids
holding ':' and '@', double closes and timers for closed conversations.

Each test calls FCALL directly on a real redis-server (as test_functions.py
does) and, where it makes sense, checks the global invariants at the end
(check_invariants): no agent over capacity, a conversation held by at most one
agent, every open conversation queued / offered / assigned where the indexes
say, waiting sets holding exactly the queued conversations, availability sets
holding only agents that could take that work now."""
import json
import os
import sys
import time
import unittest

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lua_harness import BLOCKING, DEFAULT_QUEUE, Err, LuaTestCase, P, T  # noqa: E402,F401


class RoutingEdgesTest(LuaTestCase):
    # =========================================================================
    # Suspected bugs. Each test states what the docs promise.
    # =========================================================================

    def test_bug_requeue_at_a_step_the_ladder_no_longer_has_loses_the_conversation(self):
        # A conversation escalated to step 2 is offered; a rules reload shortens
        # the queue's ladder to one step (offered work is not re-homed); the
        # agent rejects. withdraw() routes it again at step 2 of a one-step
        # queue: step_langs() indexes q.steps[2] == nil, the function errors
        # after having written state=queued, and the conversation is in no
        # waiting set and not in P:queued: lost. (Same with an offer timeout,
        # or an agent lost after its grace period.)
        self.rules({"name": "q", "auto_accept": False, "offer_timeout_s": 30,
                    "steps": [{"after_s": 0}, {"after_s": 1, "languages": ["en"]}]})
        self.agent("a", "en", 1)
        self.assertEqual(self.start("c1", "fr"), "queued")
        self.tick_after(1.05)
        c = self.conv("c1")
        self.assertEqual((c["state"], c["agent"], c["step"]), ("offered", "a", "2"))
        self.rules({"name": "q", "auto_accept": False, "offer_timeout_s": 30,
                    "steps": [{"after_s": 0}]})
        res = self.fcall("omr_offer_reject", "c1", "a", "wrong language")
        self.agent("fr1", "fr", 1)  # a French speaker logs in: it should get c1
        c = self.conv("c1")
        seen = {"reply": str(res)[:60], "state": c.get("state"), "agent": c.get("agent"),
                "in P:queued": self.r("SISMEMBER", f"{P}:queued", "c1"),
                "wait sets": [k for k in self.keys(f"{P}:wait:*")
                              if self.r("ZSCORE", k, "c1") is not None]}
        self.assertEqual((res, c.get("agent")), ("rejected", "fr1"), seen)
        self.check_invariants()

    def test_bug_agent_lost_with_work_at_a_removed_step_loses_it(self):
        # The same through the agent-loss path (auto-accept queue): assigned at
        # step 2, the ladder is shortened, the agent disconnects; when the grace
        # period ends omr_tick errors and the conversation is lost.
        self.rules({"name": "q", "steps": [{"after_s": 0}, {"after_s": 1, "languages": ["en"]}]},
                   agent_grace_s=1)
        self.agent("a", "en", 1)
        self.assertEqual(self.start("c1", "fr"), "queued")
        self.tick_after(1.05)
        self.assertEqual((self.conv("c1")["agent"], self.conv("c1")["step"]), ("a", "2"))
        self.rules({"name": "q", "steps": [{"after_s": 0}]}, agent_grace_s=1)
        self.assertEqual(self.fcall("omr_agent_gone", "a", "s-a"), "offline")
        res = self.tick_after(1.05)
        self.agent("fr1", "fr", 1)
        c = self.conv("c1")
        seen = {"tick": str(res)[:60], "state": c.get("state"), "agent": c.get("agent"),
                "in P:queued": self.r("SISMEMBER", f"{P}:queued", "c1"),
                "load a": self.load("a")}
        self.assertEqual((isinstance(res, Err), c.get("agent")), (False, "fr1"), seen)
        self.check_invariants()

    def test_bug_customer_id_ending_in_convs_blocks_the_real_customer(self):
        # Customer ids are [A-Za-z0-9._:@-] and, without chat.identity_secret,
        # an unchecked claim. Customer "kim:convs"'s hash is
        # P:customer:T|kim:convs, which is customer "kim"'s list of
        # conversations. Once "kim:convs" was served (its hash exists), every
        # conv_start of "kim" hits WRONGTYPE on LPUSH after writing the
        # conversation in state "new": the conversation is never routed, and a
        # resend answers "new".
        self.agent("a", "en", 2)
        self.assertEqual(self.start("x1", customer="kim:convs"), "assigned")
        self.assertEqual(self.fcall("omr_conv_close", "x1", "a"), "closed")
        res = self.start("k1", customer="kim")
        self.assertEqual(res, "assigned")
        self.check_invariants()

    def test_bug_customer_id_collision_leaks_agent_capacity_on_close(self):
        # The other way round: "kim" was served first (the list exists);
        # closing a conversation of customer "kim:convs" does HSET on that list
        # after the state is already "closed": the close errors before
        # release(), so the agent keeps the load for good (and never gets a
        # second conversation).
        self.agent("a", "en", 2)
        self.assertEqual(self.start("k1", customer="kim"), "assigned")
        self.assertEqual(self.start("x1", customer="kim:convs"), "assigned")
        res = self.fcall("omr_conv_close", "x1", "a")
        self.assertEqual(res, "closed")
        self.assertEqual(self.load("a"), 1)
        self.assertEqual(self.start("n1"), "assigned")
        self.check_invariants()

    def test_bug_ten_declined_heads_hide_later_work_from_a_free_agent(self):
        # pull_waiting() looks at the first 10 entries of each waiting set
        # (wait_head) and skips those the agent declined. Ten conversations the
        # agent rejected (nobody else on shift) hide the 11th: when the agent
        # frees up, the conversation it never declined stays queued.
        self.rules({"name": "q", "auto_accept": False, "offer_timeout_s": 60,
                    "steps": [{"after_s": 0}]})
        self.agent("a", "en", 1)
        for i in range(10):
            self.start(f"d{i}")
            self.assertEqual(self.conv(f"d{i}")["state"], "offered")
            self.assertEqual(self.fcall("omr_offer_reject", f"d{i}", "a", "x"), "rejected")
            time.sleep(0.002)
        self.start("x")
        self.assertEqual(self.fcall("omr_offer_accept", "x", "a"), "assigned")
        self.assertEqual(self.start("late"), "queued")  # a is full
        self.fcall("omr_conv_close", "x", "a")
        self.assertEqual((self.conv("late")["state"], self.conv("late").get("agent")),
                         ("offered", "a"))

    def test_bug_rejected_offer_never_reaches_max_wait(self):
        # max_wait_s is armed only when a conversation is queued at start (or
        # re-homed by a rules load). One offered at once, then rejected (or a
        # timed-out offer, or an agent lost), waits with no maximum: it never
        # closes.
        self.rules({"name": "q", "auto_accept": False, "offer_timeout_s": 30, "max_wait_s": 1,
                    "steps": [{"after_s": 0}]})
        self.agent("a", "en", 1)
        self.start("c1")
        self.assertEqual(self.conv("c1")["state"], "offered")
        self.fcall("omr_offer_reject", "c1", "a", "")
        self.assertEqual(self.conv("c1")["state"], "queued")
        self.tick_after(1.1)
        self.tick_after(0.3)
        c = self.conv("c1")
        self.assertEqual((c["state"], c.get("close_reason")), ("closed", "max-wait"))

    def test_bug_overflow_step_drops_the_max_wait_of_the_new_queue(self):
        # An escalation step that overflows to a queue with max_wait_s routes
        # the conversation there but arms no max-wait timer: it waits forever.
        # (max_wait_action overflow:X and a rules load both arm it.)
        self.rules({"name": "first", "languages": ["de"],
                    "steps": [{"after_s": 0}, {"after_s": 1, "overflow": "second"}]},
                   {"name": "second", "max_wait_s": 2, "steps": [{"after_s": 0}]})
        self.assertEqual(self.start("c1", "de"), "queued")
        self.tick_after(1.05)
        self.assertEqual(self.conv("c1")["queue"], "second")
        self.tick_after(1.2)  # 2.25 s after the enqueue
        self.tick_after(1.0)  # 2 s after the overflow as well
        c = self.conv("c1")
        self.assertEqual((c["state"], c.get("close_reason")), ("closed", "max-wait"))

    def test_bug_sticky_waits_for_an_agent_who_does_not_speak_the_language(self):
        # The last agent is available with free capacity but does not speak
        # the returning customer's language this time: sticky_route() falls
        # through to "logged in but busy" and parks the conversation on that
        # agent for the whole window, while a Spanish speaker is idle; and
        # pull_preferred() then gives it to the non-speaker (it checks only
        # presence and capacity).
        self.rules({"name": "q", "sticky_window_s": 60, "steps": [{"after_s": 0}]})
        self.agent("en1", "en", 2)
        self.start("c1", "en", customer="kim")
        self.fcall("omr_conv_close", "c1", "en1")
        self.agent("es1", "es", 2)
        first = self.start("c2", "es", customer="kim")
        parked = self.conv("c2").get("pref_agent")
        self.fcall("omr_agent_state", "en1", "break", "")  # any re-index of en1 ...
        self.fcall("omr_agent_state", "en1", "available", "")  # ... pulls it
        self.assertEqual((first, parked, self.conv("c2").get("agent")),
                         ("assigned", None, "es1"))

    def test_bug_sticky_gives_a_tenant_to_an_agent_who_no_longer_serves_it(self):
        # The last agent was moved to another tenant (agent update). Available
        # or not, sticky_route() waits for it (the tenant is checked only in
        # the "can take it now" branch) and pull_preferred() assigns the
        # conversation to it as soon as it frees up: a tenant-T conversation
        # held by an agent that does not serve T.
        self.rules({"name": "q", "sticky_window_s": 60, "steps": [{"after_s": 0}]})
        self.agent("a", "en", 1)
        self.start("c1", customer="kim")
        self.fcall("omr_conv_close", "c1", "a")
        self.update("a", tenants=["t2"])
        self.start("c2", customer="kim")
        self.fcall("omr_agent_state", "a", "break", "")
        self.fcall("omr_agent_state", "a", "available", "")
        c = self.conv("c2")
        self.assertNotEqual(c.get("agent"), "a",
                            f"tenant {T} conversation given to an agent serving only t2")

    def test_bug_rules_reload_leaves_a_sticky_conversation_in_a_waiting_set(self):
        # A conversation waiting for its sticky agent is re-homed by a rules
        # load (enqueued in a waiting set) but keeps pref_agent and its entry
        # in P:pref:AGENT. When that agent frees up, pull_preferred() assigns
        # it without taking it out of the waiting set: the waiting set holds an
        # assigned conversation (position, waitlangs and pulls see it).
        self.rules({"name": "q", "sticky_window_s": 60, "steps": [{"after_s": 0}]})
        self.agent("a", "en", 1)
        self.start("c1", customer="kim")
        self.fcall("omr_conv_close", "c1", "a")
        self.start("c0", customer="other")  # a is full
        self.assertEqual(self.start("c2", customer="kim"), "queued")
        self.assertEqual(self.conv("c2")["pref_agent"], "a")
        self.rules({"name": "q", "sticky_window_s": 60, "steps": [{"after_s": 0}]})
        self.fcall("omr_conv_close", "c0", "a")
        self.assertEqual(self.conv("c2")["state"], "assigned")
        self.assertEqual(self.waiting(queue="q"), [])
        self.check_invariants()

    def test_bug_rules_reload_without_max_wait_still_closes(self):
        # A reload that drops max_wait_s (0: no maximum) leaves the old
        # max|CONV|QUEUE timer, which fires in the same queue and closes the
        # conversation (the action defaults to close).
        self.rules({"name": "q", "max_wait_s": 1, "steps": [{"after_s": 0}]})
        self.assertEqual(self.start("c1"), "queued")
        self.rules({"name": "q", "steps": [{"after_s": 0}]})
        self.tick_after(1.1)
        self.assertEqual(self.conv("c1")["state"], "queued")

    def test_bug_missed_offer_of_a_disconnected_agent_puts_it_on_break(self):
        # The desktop got the offer, then disconnected (offline). The offer
        # times out and, as the Nth missed offer, sets presence break
        # (missed-offers) on an agent that is offline: it now looks logged in
        # (sticky routing waits for it, docs: "An offline agent is not waited
        # for") and stays on break after its next login.
        self.rules({"name": "q", "auto_accept": False, "offer_timeout_s": 1,
                    "sticky_window_s": 60, "steps": [{"after_s": 0}]}, max_missed_offers=1)
        self.agent("a", "en", 1)
        self.start("c1")
        self.desktop_reads("a")
        self.assertEqual(self.fcall("omr_agent_gone", "a", "s-a"), "offline")
        self.tick_after(1.05)
        self.assertEqual(self.presence("a")[0], "offline")

    def test_bug_an_older_requeue_timer_cuts_a_later_grace_period_short(self):
        # requeue|AGENT|SESSION fires on any agent without a session, not only
        # when SESSION is still the last one: an agent who disconnected, came
        # back, and disconnected again loses its work at the first grace end.
        self.rules({"name": "q", "steps": [{"after_s": 0}]}, agent_grace_s=2)
        self.agent("a", "en", 1)
        self.start("c1")
        self.fcall("omr_agent_gone", "a", "s-a")
        time.sleep(1.5)
        self.fcall("omr_agent_login", "a", "sha-a", "s-a2")
        self.fcall("omr_agent_gone", "a", "s-a2")  # a new 2 s grace starts now
        self.tick_after(0.6)  # 2.1 s after the first disconnect, 0.6 s after the second
        self.assertEqual(self.conv("c1").get("agent"), "a")

    # =========================================================================
    # What held: kept as regression tests.
    # =========================================================================

    def test_capacity_lowered_below_load_while_holding(self):
        self.agent("a", "en", 3)
        for i in range(3):
            self.assertEqual(self.start(f"c{i}"), "assigned")
        self.update("a", capacity={"chat": 1})
        self.assertEqual(self.start("n1"), "queued")
        self.assertEqual(self.r("HGET", f"{P}:agent:a", "idx"), "")
        self.fcall("omr_conv_close", "c0", "a")
        self.fcall("omr_conv_close", "c1", "a")
        self.assertEqual(self.conv("n1")["state"], "queued")  # 1 of 1 still
        self.fcall("omr_conv_close", "c2", "a")
        self.assertEqual(self.conv("n1")["agent"], "a")
        self.check_invariants()

    def test_update_skills_languages_tenants_while_holding(self):
        self.rules({"name": "billing", "skills": {"billing": 5}, "steps": [{"after_s": 0}]},
                   DEFAULT_QUEUE)
        self.agent("a", "en,es", 2, skills={"billing": 7}, tenants=[T, "t2"])
        self.start("b1", skills=["billing"])
        self.start("g1", "es", tenant="t2")
        self.update("a", skills={"billing": 2}, languages={"en": 10}, tenants=[T])
        self.assertEqual(self.start("b2", skills=["billing"]), "queued")
        self.assertEqual(self.start("g2", "es"), "queued")
        self.assertTrue(self.start("g3", tenant="t2") == "queued")
        self.assertEqual(self.start("e1"), "queued")  # full: 2 of 2
        self.fcall("omr_conv_close", "g1", "a")
        self.assertEqual(self.conv("e1")["agent"], "a")
        for cid in ("b2", "g2", "g3"):
            self.assertEqual(self.conv(cid)["state"], "queued", cid)
        self.check_invariants()

    def test_agent_removal_refused_while_holding_and_clean_after(self):
        self.agent("acme:ana@x", "en", 1)
        self.start("c1")
        self.assertTrue(self.fcall("omr_agent_remove", "acme:ana@x").startswith("BUSY"))
        self.fcall("omr_conv_close", "c1", "acme:ana@x")
        self.assertEqual(self.fcall("omr_agent_remove", "acme:ana@x"), "removed")
        for key in self.keys(f"{P}:avail:*"):
            self.assertIsNone(self.r("ZSCORE", key, "acme:ana@x"))
        self.assertEqual(self.start("c2"), "queued")
        self.check_invariants()

    def test_removed_sticky_agent_is_not_waited_for(self):
        self.rules({"name": "q", "sticky_window_s": 60, "steps": [{"after_s": 0}]})
        self.agent("a", "en", 1)
        self.agent("b", "en", 1, available=False)
        self.start("c1", customer="kim")
        self.fcall("omr_conv_close", "c1", "a")
        self.fcall("omr_agent_remove", "a")
        self.fcall("omr_agent_presence", "b", "s-b", "available")
        self.assertEqual(self.start("c2", customer="kim"), "assigned")
        self.assertEqual(self.conv("c2")["agent"], "b")
        self.check_invariants()

    def test_sticky_offline_or_full_agent(self):
        self.rules({"name": "q", "sticky_window_s": 1, "steps": [{"after_s": 0}]})
        self.agent("a", "en", 1)
        self.agent("b", "en", 1)
        self.start("c1", customer="kim")
        self.assertEqual(self.conv("c1")["agent"], "a")
        self.fcall("omr_conv_close", "c1", "a")
        self.fcall("omr_agent_gone", "a", "s-a")  # offline: not waited for
        self.assertEqual(self.start("c2", customer="kim"), "assigned")
        self.assertEqual(self.conv("c2")["agent"], "b")
        self.fcall("omr_conv_close", "c2", "b")
        self.start("c3", customer="kim")  # b, full now (1 of 1)? no: b is free
        self.assertEqual(self.conv("c3")["agent"], "b")
        self.start("c4", customer="kim")  # b is full: waits for b, then routes
        self.assertEqual((self.conv("c4")["state"], self.conv("c4")["pref_agent"]),
                         ("queued", "b"))
        self.check_invariants()
        self.fcall("omr_agent_login", "a", "sha-a", "s-a3")
        self.fcall("omr_agent_presence", "a", "s-a3", "available")
        self.assertEqual(self.conv("c4")["state"], "queued")  # still b's, in the window
        self.tick_after(1.05)
        self.assertEqual(self.conv("c4")["agent"], "a")
        self.check_invariants()

    def test_presence_changes_during_an_open_offer(self):
        self.rules({"name": "q", "auto_accept": False, "offer_timeout_s": 1,
                    "steps": [{"after_s": 0}]})
        self.agent("a", "en", 1)
        self.agent("b", "en", 1, available=False)
        self.start("c1")
        self.assertEqual(self.conv("c1")["agent"], "a")
        self.fcall("omr_agent_presence", "a", "s-a", "break", "lunch")
        self.check_invariants()
        self.fcall("omr_agent_presence", "b", "s-b", "available")
        self.assertEqual(self.conv("c1")["agent"], "a")  # still a's offer
        self.tick_after(1.05)
        c = self.conv("c1")
        self.assertEqual((c["state"], c["agent"]), ("offered", "b"))
        self.assertEqual(self.load("a"), 0)
        self.check_invariants()

    def test_offer_timeout_and_reject_racing_with_close(self):
        self.rules({"name": "q", "auto_accept": False, "offer_timeout_s": 1,
                    "steps": [{"after_s": 0}]})
        self.agent("a", "en", 2)
        self.start("c1")
        self.start("c2")
        self.assertEqual(self.fcall("omr_offer_accept", "c1", "a"), "assigned")
        self.assertEqual(self.fcall("omr_conv_close", "c1", "a"), "closed")
        # An offer is the agent's only once accepted (PROTOCOL.md): no close before.
        self.assertTrue(self.fcall("omr_conv_close", "c2", "a").startswith("NOTASSIGNED"))
        self.assertEqual(self.conv("c2")["state"], "offered")
        self.assertEqual(self.fcall("omr_offer_accept", "c2", "a"), "assigned")
        self.assertEqual(self.fcall("omr_conv_close", "c2", "a"), "closed")
        self.assertTrue(self.fcall("omr_offer_reject", "c2", "a", "").startswith("NOTASSIGNED"))
        self.assertTrue(self.fcall("omr_offer_accept", "c2", "a").startswith("NOTASSIGNED"))
        self.tick_after(1.05)  # c1's and c2's offer timers fire on closed conversations
        for cid in ("c1", "c2"):
            self.assertEqual(self.conv(cid)["state"], "closed")
        self.assertEqual(self.load("a"), 0)
        self.assertEqual(json.loads(self.fcall("omr_agent_get", "a"))["missed_offers"], 0)
        self.check_invariants()

    def test_close_twice_and_timers_for_closed_conversations(self):
        self.rules({"name": "q", "max_wait_s": 1, "sticky_window_s": 1, "wrapup_s": 1,
                    "steps": [{"after_s": 0}, {"after_s": 1, "languages": ["en"]}]})
        self.agent("a", "en", 2)
        self.assertEqual(self.start("c1", "fr"), "queued")  # esc and max timers armed
        self.fcall("omr_agent_upsert", "a", json.dumps({"languages": {"en": 10, "fr": 10}}))
        self.assertEqual(self.conv("c1")["agent"], "a")
        self.assertEqual(self.fcall("omr_conv_close", "c1", "a"), "closed")
        self.assertEqual(self.fcall("omr_conv_close", "c1", "a"), "closed")
        self.assertTrue(self.fcall("omr_conv_close", "c1", "b").startswith("NOTASSIGNED"))
        self.assertEqual(self.load("a"), 0)
        self.tick_after(1.1)
        c = self.conv("c1")
        self.assertEqual((c["state"], c.get("close_reason")), ("closed", None))
        self.assertEqual(self.load("a"), 0)
        self.check_invariants()

    def test_transfer_to_self_full_and_offline_agents(self):
        self.rules(DEFAULT_QUEUE, blocking={})
        self.agent("a", "en", 1)
        self.agent("full", "en", 1)
        self.agent("off", "en", 1, available=False)
        self.start("c1")
        self.start("c2")
        self.assertEqual((self.conv("c1")["agent"], self.conv("c2")["agent"]), ("a", "full"))
        self.assertTrue(self.fcall("omr_conv_transfer", "c1", "a", "agent", "a", "")
                        .startswith("BADARG"))
        self.assertTrue(self.fcall("omr_conv_transfer", "c1", "a", "agent", "nobody", "")
                        .startswith("BADARG"))
        self.assertEqual(self.fcall("omr_conv_transfer", "c1", "a", "agent", "full", ""),
                         "transferred")
        self.assertEqual((self.conv("c1")["state"], self.conv("c1")["pref_agent"]),
                         ("queued", "full"))
        self.check_invariants()
        self.fcall("omr_conv_close", "c2", "full")
        self.assertEqual(self.conv("c1")["agent"], "full")
        self.assertEqual(self.fcall("omr_conv_transfer", "c1", "full", "agent", "off", ""),
                         "transferred")
        self.check_invariants()
        self.fcall("omr_agent_presence", "off", "s-off", "available")
        self.assertEqual(self.conv("c1")["agent"], "off")
        self.assertEqual(self.load("full"), 0)
        self.check_invariants()

    def test_wrapup_with_voice_blocking_chat(self):
        self.rules({"name": "q", "wrapup_s": 1, "steps": [{"after_s": 0}]})
        self.agent("a", "en", {"chat": 2, "voice": 1})
        self.assertEqual(self.start("v1", channel="voice"), "assigned")
        self.assertEqual(self.start("c1"), "queued")  # on a call
        self.assertEqual(self.start("v2", channel="voice"), "queued")
        self.fcall("omr_conv_close", "v1", "a")
        # voice wrap-up: the chat is no longer blocked; the call waits
        self.assertEqual(self.conv("c1")["agent"], "a")
        self.assertEqual(self.conv("v2")["state"], "queued")
        self.check_invariants()
        self.tick_after(1.05)
        self.assertEqual(self.conv("v2")["agent"], "a")
        self.assertEqual(self.start("c2"), "queued")  # on a call again
        self.check_invariants()

    def test_rules_reload_removing_a_queue_with_waiting_work(self):
        self.rules({"name": "spanish", "languages": ["es"], "priority": 5,
                    "steps": [{"after_s": 0}]}, DEFAULT_QUEUE)
        self.start("s1", "es")
        time.sleep(0.005)
        self.start("d1", "en")
        enq = self.conv("s1")["enqueued_ms"]
        self.rules(DEFAULT_QUEUE)
        c = self.conv("s1")
        self.assertEqual((c["queue"], c["enqueued_ms"], c["state"]), ("default", enq, "queued"))
        self.assertEqual(self.r("EXISTS", f"{P}:wait:spanish|1|chat|{T}|es"), 0)
        self.check_invariants()
        self.agent("bi", "en,es", 1)
        self.assertEqual(self.conv("s1")["agent"], "bi")  # oldest first (priority is gone)
        self.check_invariants()

    def test_escalation_language_fallback_then_pull_when_agent_frees(self):
        self.rules({"name": "q", "languages": ["es"],
                    "steps": [{"after_s": 0}, {"after_s": 1, "languages": ["en"]}]},
                   DEFAULT_QUEUE)
        self.agent("en1", "en", 1)
        self.start("busy")
        self.assertEqual(self.conv("busy")["agent"], "en1")
        self.assertEqual(self.start("s1", "es"), "queued")
        self.tick_after(1.05)
        self.assertEqual((self.conv("s1")["state"], self.conv("s1")["step"]), ("queued", "2"))
        self.check_invariants()
        self.fcall("omr_conv_close", "busy", "en1")
        self.assertEqual(self.conv("s1")["agent"], "en1")
        self.check_invariants()

    def test_order_kept_across_requeue(self):
        self.rules({"name": "q", "auto_accept": False, "offer_timeout_s": 60,
                    "steps": [{"after_s": 0}]})
        self.agent("a", "en", 1)
        self.start("c1")  # offered to a
        time.sleep(0.005)
        self.start("c2")
        time.sleep(0.005)
        self.start("c3")
        self.agent("b", "en", 1, available=False)
        self.fcall("omr_offer_reject", "c1", "a", "")
        # c1 keeps its place: ahead of c2 and c3
        self.assertEqual(self.waiting(queue="q"), ["c1", "c3"])  # c2 went to a
        self.fcall("omr_agent_presence", "b", "s-b", "available")
        self.assertEqual(self.conv("c1")["agent"], "b")
        self.check_invariants()

    def test_ids_with_colons_and_at_signs(self):
        self.agent("acme:ana@eu", "en", 1, tenants=["acme:eu"])
        self.agent("acme:bob.x-1", "en", 1, tenants=["acme:eu"])
        self.assertEqual(self.start("conv:1@x", tenant="acme:eu", customer="c:1@x"),
                         "assigned")
        self.assertEqual(self.start("conv:2@x", tenant="acme:eu", customer="c:2@x"),
                         "assigned")
        self.assertEqual(self.start("conv:3@x", tenant="acme:eu"), "queued")
        holder = self.conv("conv:1@x")["agent"]
        self.assertEqual(self.fcall("omr_conv_close", "conv:1@x", holder), "closed")
        self.assertEqual(self.conv("conv:3@x")["agent"], holder)
        self.check_invariants()


if __name__ == "__main__":
    unittest.main(verbosity=2)
