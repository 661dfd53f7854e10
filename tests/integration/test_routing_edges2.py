"""More edge cases of the routing functions (router/lua/*.lua), what
test_routing_edges.py does not cover. Sticky and transfer waits meeting a
rules reload, rules reloads that re-home work, transfers to queues, the
customer's history, wrap-up of two closes, offers answered late, and (kept
as regression tests) supervisors, languages with proficiency, strategy
ties, many timers in one tick, email and voice with blocking, offers and
the customer functions.

Each test calls FCALL directly on a real redis-server (helpers in lua_harness.py) and, where it makes sense, checks the
global invariants at the end (check_invariants)."""
import json
import os
import sys
import time
import unittest

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lua_harness import BLOCKING, DEFAULT_QUEUE, Err, LuaTestCase, P, T  # noqa: E402,F401


class RoutingEdges2Test(LuaTestCase):
    # =========================================================================
    # Suspected bugs. Each test states what the docs promise.
    # =========================================================================

    def test_escalation_overflow_to_a_queue_without_the_tenant_stays(self):
        # An escalation step that overflows to a queue which does not take the
        # conversation's tenant would strand it where no agent is indexed:
        # the step applies in place instead, and a fitting agent takes it.
        self.rules({"name": "spanish", "languages": ["es"],
                    "steps": [{"after_s": 0}, {"after_s": 1, "overflow": "general"}]},
                   {"name": "general", "tenants": [T]}, blocking={})
        self.assertEqual(self.start("c1", "es", tenant="t3"), "queued")
        self.r("ZADD", f"{P}:timers", 0, "esc|c1|2")
        self.fcall("omr_tick")
        self.assertEqual(self.conv("c1")["queue"], "spanish")
        self.agent("x", "es", 1, tenants=["t3"])
        self.assertEqual((self.conv("c1")["state"], self.conv("c1").get("agent")),
                         ("assigned", "x"))
        self.check_invariants()

    def test_bug_pull_preferred_reroute_overfills_the_agent(self):
        # pull_preferred() routes a conversation waiting for agent `a` whose
        # queue is gone (a rules reload removed it; waiting conversations
        # with pref_agent are not re-homed) with route(): try_assign() reads
        # the agent afresh and may give it to `a` itself. The loop then goes
        # on with its own, now stale, copy of `a` (load 0) and assigns the
        # next waiting conversation as well: a over capacity, its load field
        # lower than what it holds.
        self.rules({"name": "old", "attributes": {"vip": "1"}, "sticky_window_s": 60,
                    "steps": [{"after_s": 0}]},
                   {"name": "default", "sticky_window_s": 60, "steps": [{"after_s": 0}]})
        self.agent("a", "en", 1)
        self.assertEqual(self.start("k0", customer="kim", attrs={"vip": "1"}), "assigned")
        self.fcall("omr_conv_close", "k0", "a")
        self.assertEqual(self.start("l0", customer="lee"), "assigned")
        self.fcall("omr_conv_close", "l0", "a")
        self.assertEqual(self.start("x"), "assigned")  # a is full (1 of 1)
        self.assertEqual(self.start("k1", customer="kim", attrs={"vip": "1"}), "queued")
        time.sleep(0.005)
        self.assertEqual(self.start("l1", customer="lee"), "queued")
        self.assertEqual((self.conv("k1")["pref_agent"], self.conv("l1")["pref_agent"]),
                         ("a", "a"))
        self.rules({"name": "default", "sticky_window_s": 60, "steps": [{"after_s": 0}]})
        self.fcall("omr_conv_close", "x", "a")
        held = sorted(self.r("SMEMBERS", f"{P}:agent:a:convs"))
        self.assertLessEqual(len(held), 1, f"a (chat capacity 1) holds {held}, "
                             f"load_chat={self.load('a')}")
        self.check_invariants()

    def test_bug_rules_reload_rehomes_in_set_order_not_priority(self):
        # omr_rules_load re-routes the waiting conversations one by one in
        # SMEMBERS order of P:queued (hash order), each taking the best free
        # agent. An agent that the new rules make eligible takes whichever
        # comes first in the set, not the one of highest priority (then
        # longest waiting), as docs/ROUTING.md promises.
        def scenario(n):
            self.r("FLUSHALL")
            billing = {"billing": 5}
            self.rules({"name": "vip", "attributes": {"tier": "gold"}, "priority": 5,
                        "skills": billing, "steps": [{"after_s": 0}]},
                       {"name": "normal", "skills": billing, "steps": [{"after_s": 0}]})
            self.agent("a", "en", 1, skills={"billing": 3})
            for i in range(n):
                self.assertEqual(self.start(f"n{i}", skills=["billing"]), "queued")
            time.sleep(0.005)
            self.assertEqual(self.start("v", attrs={"tier": "gold"}, skills=["billing"]),
                             "queued")
            return self.r("SMEMBERS", f"{P}:queued")
        for _ in range(6):  # an attempt where "v" is not first in the set shows it
            order = scenario(8)
            if order[0] != "v":
                break
        billing = {"billing": 3}
        self.rules({"name": "vip", "attributes": {"tier": "gold"}, "priority": 5,
                    "skills": billing, "steps": [{"after_s": 0}]},
                   {"name": "normal", "skills": billing, "steps": [{"after_s": 0}]})
        held = self.r("SMEMBERS", f"{P}:agent:a:convs")
        self.assertEqual(held, ["v"], f"P:queued order was {order}")
        self.check_invariants()

    def test_bug_rules_reload_rehomes_to_a_queue_without_the_channel(self):
        # No queue of the new rules takes a waiting email conversation and its
        # own queue is gone: rules_load puts it in the LAST queue, which takes
        # only chat. Its chain has no email availability sets and
        # pull_waiting() skips queues without the channel: no agent can ever
        # take it, even an idle one with email capacity; nothing tells the
        # customer (no max wait in that queue).
        self.rules({"name": "mail", "channels": ["email"], "steps": [{"after_s": 0}]},
                   {"name": "default", "channels": ["chat"], "steps": [{"after_s": 0}]})
        self.assertEqual(self.start("e1", channel="email"), "queued")
        self.rules({"name": "default", "channels": ["chat"], "steps": [{"after_s": 0}]})
        self.agent("m", "en", {"chat": 1, "email": 2})
        c = self.conv("e1")
        self.assertNotEqual(c["state"], "queued",
                            f"e1 waits in {c.get('wait_key')} where nobody can take it, "
                            f"while m has email capacity")

    def test_bug_rules_reload_keeps_work_in_a_queue_that_dropped_its_tenant(self):
        # Same with a queue that still exists but no longer serves the
        # conversation's tenant: queue_named(c.queue) keeps it there.
        self.rules({"name": "q", "tenants": [T, "t2"], "steps": [{"after_s": 0}]})
        self.assertEqual(self.start("c1"), "queued")
        self.rules({"name": "q", "tenants": ["t2"], "steps": [{"after_s": 0}]})
        self.agent("a", "en", 1, tenants=[T, "t2"])
        c = self.conv("c1")
        self.assertNotEqual(c["state"], "queued",
                            f"c1 waits in {c.get('wait_key')} where nobody can take it")

    def test_bug_transfer_to_a_queue_of_another_tenant_is_accepted_and_stuck(self):
        # A transfer to an agent checks the agent serves the tenant; a
        # transfer to a queue checks only that the queue exists. A tenant-t1
        # conversation transferred to t2's queue waits there for good: the
        # queue's chain has no t1 availability sets, so no agent (not even
        # one serving both tenants) can take it.
        self.rules({"name": "globex", "tenants": ["t2"], "steps": [{"after_s": 0}]},
                   {"name": "default", "tenants": [T], "steps": [{"after_s": 0}]})
        self.agent("a", "en", 1)
        self.assertEqual(self.start("c1"), "assigned")
        res = self.fcall("omr_conv_transfer", "c1", "a", "queue", "globex", "to globex")
        self.agent("both", "en", 1, tenants=[T, "t2"])
        c = self.conv("c1")
        seen = {"reply": str(res)[:60], "state": c["state"], "wait_key": c.get("wait_key")}
        self.assertTrue(str(res).startswith("BADARG") or c.get("agent") == "both", seen)

    def test_bug_transfer_to_a_queue_without_the_channel_is_accepted_and_stuck(self):
        self.rules({"name": "chatq", "channels": ["chat"], "steps": [{"after_s": 0}]},
                   {"name": "default", "steps": [{"after_s": 0}]})
        self.agent("a", "en", {"email": 1})
        self.assertEqual(self.start("e1", channel="email"), "assigned")
        res = self.fcall("omr_conv_transfer", "e1", "a", "queue", "chatq", "")
        self.agent("b", "en", {"chat": 1, "email": 1})
        c = self.conv("e1")
        seen = {"reply": str(res)[:60], "state": c["state"], "wait_key": c.get("wait_key")}
        self.assertTrue(str(res).startswith("BADARG") or c.get("agent") == "b", seen)

    def test_bug_history_reads_a_later_conversation_held_by_another_agent(self):
        # docs/PROTOCOL.md: `history` reads an EARLIER conversation (one of
        # the ids of the assigned item's history) of the customer of a
        # conversation that is the agent's (assigned or closed). The function
        # checks only same customer and tenant: an agent that once closed a
        # conversation of this customer reads every later one, including
        # one assigned right now to another agent.
        self.agent("a", "en", 1)
        self.agent("b", "en", 1, available=False)
        self.assertEqual(self.start("c1", customer="kim"), "assigned")
        self.fcall("omr_conv_close", "c1", "a")
        self.fcall("omr_agent_presence", "a", "s-a", "break", "lunch")
        self.fcall("omr_agent_presence", "b", "s-b", "available")
        self.assertEqual(self.start("c2", customer="kim"), "assigned")
        self.assertEqual(self.conv("c2")["agent"], "b")
        self.msg("c2", "my new card number is 4111 1111 1111 1111")
        got = self.fcall("omr_conv_history", "c1", "a", "c2")
        leaked = [] if isinstance(got, Err) else [e for e in got if "4111" in str(e)]
        self.assertTrue(isinstance(got, Err) and got.startswith("NOTASSIGNED"),
                        f"a read b's live conversation c2: {leaked}")

    def test_bug_sticky_waits_for_an_agent_without_capacity_on_the_channel(self):
        # The customer's last agent takes no email at all (email capacity 0):
        # sticky_route() treats it as "logged in but busy" and parks the
        # email on it for the whole window while an email agent is idle
        # (serves() checks tenant, skills and language, not the channel).
        self.rules({"name": "q", "sticky_window_s": 60, "steps": [{"after_s": 0}]})
        self.agent("a", "en", {"chat": 2})
        self.assertEqual(self.start("c1", customer="kim"), "assigned")
        self.fcall("omr_conv_close", "c1", "a")
        self.agent("m", "en", {"email": 2})
        res = self.start("e1", channel="email", customer="kim")
        c = self.conv("e1")
        self.assertEqual((res, c.get("agent"), c.get("pref_agent")), ("assigned", "m", None))

    def test_bug_a_shorter_wrapup_cuts_an_earlier_longer_one_short(self):
        # Two closes in a row on one channel, from queues with different
        # wrap-up times: the second overwrites wrapup_chat and moves the
        # single timer wrapup|AGENT|chat to its own, earlier end. The agent
        # gets new chat work 1 s after closing a conversation whose queue
        # asks for 3 s of wrap-up.
        self.rules({"name": "long", "attributes": {"k": "long"}, "wrapup_s": 3,
                    "steps": [{"after_s": 0}]},
                   {"name": "short", "wrapup_s": 1, "steps": [{"after_s": 0}]})
        self.agent("a", "en", 2)
        self.assertEqual(self.start("cl", attrs={"k": "long"}), "assigned")
        self.assertEqual(self.start("cs"), "assigned")
        self.fcall("omr_conv_close", "cl", "a")
        until_long = int(self.r("HGET", f"{P}:agent:a", "wrapup_chat"))
        self.fcall("omr_conv_close", "cs", "a")
        self.assertEqual(self.start("n1"), "queued")
        self.tick_after(1.2)
        c = self.conv("n1")
        self.assertEqual(c["state"], "queued",
                         f"n1 assigned {until_long - int(c.get('assigned_ms', 0))} ms "
                         f"before the wrap-up of cl ended")
        self.check_invariants()

    def test_bug_offer_accepted_after_it_expired(self):
        # The offer said expires_ms; omr_offer_accept checks only the state,
        # so an accept that arrives after expires_ms but before any instance
        # ticked (tick_ms, or later when timers pile up: 200 per tick) is
        # taken. docs/PROTOCOL.md: an offer that is no longer open (it
        # expired...) is answered not-assigned.
        self.rules({"name": "q", "auto_accept": False, "offer_timeout_s": 1,
                    "steps": [{"after_s": 0}]})
        self.agent("a", "en", 1)
        self.start("c1")
        expires = int(self.conv("c1")["offer_expires_ms"])
        time.sleep(1.3)
        res = self.fcall("omr_offer_accept", "c1", "a")
        t = self.r("TIME")
        now = int(t[0]) * 1000 + int(t[1]) // 1000
        self.assertTrue(str(res).startswith("NOTASSIGNED"),
                        f"accepted {now - expires} ms after the offer expired: {res}")

    def test_bug_transfer_target_removed_is_still_waited_for(self):
        # A conversation transferred to agent b (busy) waits for b; b is then
        # removed (allowed: it holds nothing). The conversation keeps
        # waiting for an agent that no longer exists until the 120 s
        # transfer window ends, while agent c is idle.
        self.rules({"name": "q", "steps": [{"after_s": 0}]}, blocking={})
        self.agent("a", "en", 1)
        self.agent("b", "en", 1, available=False)
        self.assertEqual(self.start("c1"), "assigned")
        self.assertEqual(self.fcall("omr_conv_transfer", "c1", "a", "agent", "b", ""),
                         "transferred")
        self.assertEqual(self.conv("c1")["pref_agent"], "b")
        self.assertEqual(self.fcall("omr_agent_remove", "b"), "removed")
        self.agent("c", "en", 1)
        self.tick_after(0.05)
        c = self.conv("c1")
        self.assertEqual((c["state"], c.get("agent")), ("assigned", "c"),
                         f"still waiting for removed agent {c.get('pref_agent')}")
        self.check_invariants()


    def test_bug_ten_preferred_heads_hide_a_sticky_conversation_the_agent_can_take(self):
        # pull_preferred() reads only the first 10 entries of P:pref:AGENT.
        # Ten returning email customers waiting for their agent (its email
        # capacity is full) hide an 11th, a chat, when the agent frees a chat
        # unit: the chat waits out the sticky window although its agent is
        # free for it (the same limit test_routing_edges fixed in wait_head).
        self.rules({"name": "q", "sticky_window_s": 60, "steps": [{"after_s": 0}]}, blocking={})
        self.agent("a", "en", {"chat": 1, "email": 1})
        for i in range(11):
            ch = "email" if i < 10 else "chat"
            self.assertEqual(self.start(f"old{i}", channel=ch, customer=f"k{i}"), "assigned")
            self.fcall("omr_conv_close", f"old{i}", "a")
        self.assertEqual(self.start("busy_e", channel="email"), "assigned")
        self.assertEqual(self.start("busy_c"), "assigned")
        for i in range(11):
            ch = "email" if i < 10 else "chat"
            self.assertEqual(self.start(f"n{i}", channel=ch, customer=f"k{i}"), "queued")
            time.sleep(0.002)
        self.fcall("omr_conv_close", "busy_c", "a")
        c = self.conv("n10")
        self.assertEqual((c["state"], c.get("agent")), ("assigned", "a"),
                         f"chat n10 still waits for a (pref {c.get('pref_agent')}), a's chat "
                         f"load {self.load('a')}")
        self.check_invariants()

    def test_bug_queue_wait_estimate_counts_the_previous_agents_handling_time(self):
        # assign() feeds the queue's average wait (what conv_position tells
        # a waiting customer) with now - enqueued_ms. For a conversation that
        # was served, then transferred (or re-queued after an agent loss),
        # that is the whole time the first agent had it, not a wait: one
        # transfer of a 1.5 s chat taken at once raises the estimate by 300 ms.
        self.rules(DEFAULT_QUEUE)
        self.agent("a", "en", 1)
        self.agent("b", "en", 1)
        self.assertEqual(self.start("c1"), "assigned")  # waited 0
        before = int(self.r("HGET", f"{P}:qstats", "wait_ewma_ms:default"))
        time.sleep(1.5)
        holder = self.conv("c1")["agent"]
        self.fcall("omr_conv_transfer", "c1", holder, "queue", "default", "")
        self.assertEqual(self.conv("c1")["state"], "assigned")  # taken at once
        after = int(self.r("HGET", f"{P}:qstats", "wait_ewma_ms:default"))
        self.assertLess(after - before, 50, f"estimate went {before} -> {after} ms")

    # =========================================================================
    # What held: kept as regression tests.
    # =========================================================================

    def test_supervisor_reads_only_its_agents_in_its_tenants(self):
        self.rules(DEFAULT_QUEUE)
        self.agent("s", "en", 1, available=False, tenants=[T])
        self.update("s", supervises=["a"])
        self.agent("a", "en", 2, tenants=[T, "t2"])
        self.agent("b", "en", 2, available=False, tenants=[T, "t2"])
        self.assertEqual(self.start("c1"), "assigned")
        self.assertEqual(self.start("c2", tenant="t2"), "assigned")
        self.fcall("omr_agent_presence", "b", "s-b", "available")
        self.assertEqual(self.start("c3"), "assigned")
        self.assertEqual([self.conv(x)["agent"] for x in ("c1", "c2", "c3")], ["a", "a", "b"])
        mon = lambda cid: self.fcall("omr_supervisor_monitor", "s", cid)  # noqa: E731
        self.assertFalse(isinstance(mon("c1"), Err))
        for cid in ("c2", "c3", "nope"):  # other tenant, other agent, unknown
            self.assertTrue(str(mon(cid)).startswith("NOTASSIGNED"), cid)
        team = self.fcall("omr_supervisor_team", "s")
        self.assertEqual([t[0] for t in team], ["a"])
        self.assertEqual([c[0] for c in team[0][6]], ["c1"])
        # transferred away: no longer readable; closed by b: b's
        self.assertEqual(self.fcall("omr_conv_transfer", "c1", "a", "agent", "b", ""),
                         "transferred")
        self.assertTrue(str(mon("c1")).startswith("NOTASSIGNED"))
        self.assertEqual(self.conv("c1")["agent"], "b")
        self.assertTrue(str(mon("c1")).startswith("NOTASSIGNED"))
        # a supervisor does not read its own, nor anyone's once supervises is emptied
        self.assertEqual(self.fcall("omr_conv_close", "c2", "a"), "closed")
        self.update("s", supervises=[])
        self.assertEqual(self.fcall("omr_supervisor_team", "s"), [])
        self.check_invariants()

    def test_es_mx_and_min_proficiency(self):
        self.rules({"name": "q", "min_proficiency": 5, "steps": [{"after_s": 0}]})
        self.agent("es4", {"es": 4, "en": 10}, 1)
        self.agent("es9", {"es": 9}, 1)
        self.agent("es6", {"es": 6}, 1)
        self.assertEqual(self.start("m1", "es-MX"), "assigned")
        self.assertEqual(self.conv("m1")["agent"], "es6")  # tie: by id
        self.assertEqual(self.start("m2", "es-MX"), "assigned")
        self.assertEqual(self.conv("m2")["agent"], "es9")
        self.assertEqual(self.start("m3", "es-ES"), "queued")  # es4 is below 5
        self.assertEqual(self.waiting("es", queue="q"), ["m3"])
        self.assertEqual(self.start("e1", "en-GB"), "assigned")
        self.assertEqual(self.conv("e1")["agent"], "es4")
        self.update("es4", languages={"es": 5, "en": 10})
        self.assertEqual(self.conv("m3")["state"], "queued")  # es4 is full (1 of 1)
        self.fcall("omr_conv_close", "e1", "es4")
        self.assertEqual(self.conv("m3")["agent"], "es4")
        self.check_invariants()

    def test_strategy_ties_break_by_agent_id(self):
        for strategy in ("longest_idle", "best_skill", "least_loaded"):
            self.r("FLUSHALL")
            self.rules({"name": "q", "strategy": strategy, "skills": {"billing": 3},
                        "steps": [{"after_s": 0}]})
            for aid, lvl in (("c", 8), ("a", 6), ("b", 8)):
                self.agent(aid, "en", 2, skills={"billing": lvl})
            self.start("x1", skills=["billing"])
            first = self.conv("x1")["agent"]
            self.start("x2", skills=["billing"])
            second = self.conv("x2")["agent"]
            want = {"best_skill": ("b", "c"), "longest_idle": ("a", "b"),
                    "least_loaded": ("a", "b")}[strategy]
            self.assertEqual((first, second), want, strategy)
            self.check_invariants()

    def test_tick_fires_many_timers_200_per_call(self):
        self.rules({"name": "q", "max_wait_s": 1, "steps": [{"after_s": 0}]})
        for i in range(230):
            self.start(f"c{i:03d}")
        time.sleep(1.05)
        self.assertEqual(self.fcall("omr_tick"), 200)
        self.assertEqual(self.fcall("omr_tick"), 30)
        self.assertEqual(self.fcall("omr_tick"), 0)
        self.assertEqual({self.conv(f"c{i:03d}")["state"] for i in range(230)}, {"closed"})
        self.check_invariants()

    def test_one_tick_of_offer_timeouts_reroutes_in_order(self):
        self.rules({"name": "q", "auto_accept": False, "offer_timeout_s": 1,
                    "steps": [{"after_s": 0}]}, max_missed_offers=10)
        self.agent("a", "en", 3)
        for i in range(3):
            self.start(f"c{i}")
            time.sleep(0.003)
        self.agent("b", "en", 1)
        self.start("d")  # b
        self.desktop_reads("a")  # (offers their desktops got: missed ones count as declined)
        self.desktop_reads("b")
        self.tick_after(1.05)  # the three offers to a and the one to b time out
        c = {x: self.conv(x) for x in ("c0", "c1", "c2", "d")}
        # b took the oldest it had not declined; a got d
        self.assertEqual(c["c0"].get("agent"), "b")
        self.assertEqual(c["d"].get("agent"), "a")
        self.assertEqual((c["c1"]["state"], c["c2"]["state"]), ("queued", "queued"))
        self.check_invariants()

    def test_email_and_voice_capacities_with_blocking(self):
        self.rules(DEFAULT_QUEUE)
        self.agent("a", "en", {"chat": 2, "email": 1, "voice": 1})
        self.assertEqual(self.start("e1", channel="email"), "assigned")
        self.assertEqual(self.start("e2", channel="email"), "queued")
        self.assertEqual(self.start("c1"), "assigned")
        self.assertEqual(self.start("v1", channel="voice"), "assigned")  # chat does not block voice
        self.assertEqual(self.start("c2"), "queued")  # the call blocks chat
        self.assertEqual(self.start("v2", channel="voice"), "queued")
        self.check_invariants()
        self.fcall("omr_conv_close", "e1", "a")  # the call blocks email too
        self.assertEqual(self.conv("e2")["state"], "queued")
        self.fcall("omr_conv_close", "v1", "a")
        # v2 came after e2 and c2: the oldest first; then the call blocks the rest
        self.assertEqual(self.conv("e2")["agent"], "a")
        self.assertEqual(self.conv("c2")["agent"], "a")
        self.assertEqual(self.conv("v2")["agent"], "a")
        self.check_invariants()

    def test_offers_capacity_one_wrong_agent_and_break(self):
        self.rules({"name": "q", "auto_accept": False, "offer_timeout_s": 30,
                    "steps": [{"after_s": 0}]})
        self.agent("a", "en", 1)
        self.agent("b", "en", 1, available=False)
        self.start("c1")
        self.assertEqual(self.start("c2"), "queued")  # a's one unit is reserved
        self.assertTrue(self.fcall("omr_offer_accept", "c1", "b").startswith("NOTASSIGNED"))
        self.assertTrue(self.fcall("omr_offer_reject", "c1", "b", "").startswith("NOTASSIGNED"))
        self.assertTrue(self.fcall("omr_offer_accept", "c2", "a").startswith("NOTASSIGNED"))
        self.fcall("omr_agent_presence", "a", "s-a", "break", "coffee")
        self.assertEqual(self.fcall("omr_offer_accept", "c1", "a"), "assigned")
        self.assertEqual(self.fcall("omr_offer_accept", "c1", "a"), "assigned")
        self.assertEqual(self.load("a"), 1)
        self.fcall("omr_agent_presence", "a", "s-a", "available")
        self.assertEqual(self.conv("c2")["state"], "queued")
        self.fcall("omr_conv_close", "c1", "a")
        self.assertEqual((self.conv("c2")["state"], self.conv("c2")["agent"]), ("offered", "a"))
        self.check_invariants()

    def test_customer_functions_with_wrong_or_stale_arguments(self):
        self.rules({"name": "q", "steps": [{"after_s": 0}]})
        self.agent("a", "en", 1)
        self.start("c1")
        self.start("c2")
        time.sleep(0.003)
        self.start("c3")
        self.assertEqual(self.fcall("omr_conv_position", "c1")[:2], ["assigned", 0])
        self.assertEqual(self.fcall("omr_conv_position", "c3")[:2], ["queued", 2])
        self.assertTrue(str(self.fcall("omr_conv_position", "zz")).startswith("NOCONV"))
        self.assertTrue(str(self.fcall("omr_conv_rate", "c1", "5", "")).startswith("BADARG"))
        self.assertEqual(self.fcall("omr_conv_typing", "c2", "customer", ""), "ok")
        self.assertTrue(str(self.fcall("omr_conv_typing", "c1", "agent", "b"))
                        .startswith("NOTASSIGNED"))
        self.fcall("omr_conv_close", "c1", "a")
        for bad in ("0", "6", "2.5", "x", "nan", "inf"):
            self.assertTrue(str(self.fcall("omr_conv_rate", "c1", bad, "")).startswith("BADARG"),
                            bad)
        self.assertEqual(self.fcall("omr_conv_rate", "c1", "4", "ok"), "rated")
        self.assertEqual(self.fcall("omr_conv_position", "c3")[:2], ["queued", 1])
        self.assertTrue(str(self.fcall("omr_conv_history", "c2", "b", "c1"))
                        .startswith("NOTASSIGNED"))
        self.check_invariants()

    def test_wrapup_end_by_agent_then_timer_is_harmless(self):
        self.rules({"name": "q", "wrapup_s": 1, "steps": [{"after_s": 0}]})
        self.agent("a", "en", 1)
        self.start("c1")
        self.fcall("omr_conv_close", "c1", "a")
        self.assertEqual(self.start("c2"), "queued")
        self.assertTrue(str(self.fcall("omr_agent_wrapup_end", "a", "wrong", "chat"))
                        .startswith("REPLACED"))
        self.assertEqual(self.fcall("omr_agent_wrapup_end", "a", "s-a", "fax"), "ok")
        self.assertEqual(self.fcall("omr_agent_wrapup_end", "a", "s-a", "chat"), "ok")
        self.assertEqual(self.conv("c2")["agent"], "a")
        self.fcall("omr_conv_close", "c2", "a")  # a new wrap-up: the timer moves to its end
        self.assertEqual(self.start("c3"), "queued")
        self.tick_after(0.5)
        self.assertEqual(self.conv("c3")["state"], "queued")
        self.tick_after(0.6)
        self.assertEqual(self.conv("c3")["agent"], "a")
        self.check_invariants()

    def test_agents_serving_several_tenants(self):
        self.rules({"name": "acme", "tenants": ["acme"], "priority": 2, "steps": [{"after_s": 0}]},
                   {"name": "globex", "tenants": ["globex"], "steps": [{"after_s": 0}]})
        self.agent("x", "en", 1, available=False, tenants=["acme", "globex"])
        self.agent("g", "en", 1, available=False, tenants=["globex"])
        self.assertEqual(self.start("g1", tenant="globex"), "queued")
        time.sleep(0.003)
        self.assertEqual(self.start("a1", tenant="acme"), "queued")
        self.fcall("omr_agent_presence", "x", "s-x", "available")
        self.assertEqual(self.conv("a1")["agent"], "x")  # priority first
        self.fcall("omr_agent_presence", "g", "s-g", "available")
        self.assertEqual(self.conv("g1")["agent"], "g")
        self.assertEqual(self.start("a2", tenant="acme"), "queued")
        self.check_invariants()

    def test_revoked_or_reissued_token_requeues_the_agents_work_after_grace(self):
        # Revoking an agent's token (or issuing a new one) logged its desktop
        # out but left its conversations assigned to it for good: nobody
        # answered those customers. Now they go back to routing when the
        # grace period ends, unless the agent logs in again before.
        self.rules({"name": "default"})
        self.agent("a", "en", 1)
        self.assertEqual(self.start("c1"), "assigned")
        self.assertEqual(self.fcall("omr_agent_revoke", "a"), "revoked")
        a = dict(zip(*[iter(self.r("HGETALL", f"{P}:agent:a"))] * 2))
        self.assertEqual((a["presence"], a["reason"], a["session"]),
                         ("offline", "token-revoked", ""))
        self.assertIsNotNone(self.r("ZSCORE", f"{P}:timers", "requeue|a|s-a"))
        self.agent("b", "en", 1)
        self.r("ZADD", f"{P}:timers", 0, "requeue|a|s-a")
        self.fcall("omr_tick")
        self.assertEqual(self.conv("c1").get("agent"), "b")
        self.check_invariants()
        # a new token: the old desktop is logged out; logging in again within
        # grace keeps the work
        self.assertEqual(self.start("c2"), "queued")
        self.update("b", token_sha="sha-b2")
        self.assertEqual(self.r("HGET", f"{P}:agent:b", "reason"), "token-reissued")
        self.fcall("omr_agent_login", "b", "sha-b2", "s-b2")
        self.assertEqual(self.fcall("omr_agent_presence", "b", "s-b2", "available"),
                         "available")
        self.r("ZADD", f"{P}:timers", 0, "requeue|b|s-b")
        self.fcall("omr_tick")
        self.assertEqual((self.conv("c1").get("agent"), self.conv("c1")["state"]),
                         ("b", "assigned"))
        self.check_invariants()

    def test_agents_reply_ids_are_their_own_and_resends_are_answered(self):
        # After a transfer, the new agent's r-1 is not the old agent's r-1
        # (it was answered with the old reply's id and never stored), and
        # the old agent's resend of its stored r-1 gets that id back rather
        # than not-assigned (its desktop would show a delivered reply as
        # failed).
        self.rules({"name": "default"})
        self.agent("a", "en", 1)
        self.assertEqual(self.start("c1"), "assigned")
        msg = ("omr_conv_message", "c1", "agent")
        first = self.fcall(*msg, "a", "r-1", "hello from a", "", 1000)
        self.agent("b", "en", 1)
        self.assertEqual(self.fcall("omr_conv_transfer", "c1", "a", "agent", "b", ""),
                         "transferred")
        self.assertEqual(self.conv("c1")["agent"], "b")
        # the transfer sent again (its answer lost) is answered the same
        self.assertEqual(self.fcall("omr_conv_transfer", "c1", "a", "agent", "b", ""),
                         "transferred")
        self.assertEqual(self.conv("c1")["agent"], "b")
        second = self.fcall(*msg, "b", "r-1", "hello from b", "", 1000)
        self.assertNotEqual(second, first)
        self.assertEqual(self.fcall(*msg, "a", "r-1", "hello from a", "", 1000), first)
        self.assertTrue(str(self.fcall(*msg, "a", "r-2", "late", "", 1000)).startswith(
            "NOTASSIGNED"))
        texts = [dict(zip(e[1][::2], e[1][1::2])).get("text")
                 for e in self.r("XRANGE", f"{P}:conv:c1:log", "-", "+")]
        self.assertIn("hello from b", texts)
        self.check_invariants()

    def test_long_transcript_reaches_the_next_agent_newest_kept(self):
        # An agent taking a conversation gets its transcript: whole up to
        # 2,000 entries, else the newest 2,000 (it copied the OLDEST 500,
        # so what the customer said last never reached the agent).
        self.rules({"name": "default"})
        self.assertEqual(self.start("c1"), "queued")
        log = f"{P}:conv:c1:log"
        for i in range(2100):
            self.r("XADD", log, "*", "kind", "message", "from", "customer", "msgid",
                   f"m{i}", "text", f"t{i}", "name", "Cust", "ts", i)
        self.agent("x", "en", 1)
        self.assertEqual(self.conv("c1").get("agent"), "x")
        texts = [dict(zip(e[1][::2], e[1][1::2])).get("text")
                 for e in self.r("XRANGE", f"{P}:agent:x:inbox", "-", "+")
                 if dict(zip(e[1][::2], e[1][1::2])).get("kind") == "message"]
        self.assertEqual(len(texts), 2000)
        self.assertEqual((texts[0], texts[-1]), ("t100", "t2099"))
        self.check_invariants()


if __name__ == "__main__":
    unittest.main(verbosity=2)
