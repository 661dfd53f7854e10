"""The routing decisions in router/lua/*.lua, called directly on a real
redis-server: queues and their matching, skills with levels, language
proficiency and fallback, tenants, per-channel capacity and blocking,
strategies, priority then FIFO ordering, escalation and maximum wait through
the Redis timers, explanations, idempotency, session guards. Fast and precise;
the daemon tests exercise the same functions end to end."""
import json
import os
import sys
import time
import unittest

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lua_harness import DEFAULT_QUEUE, Err, LuaTestCase, P, T  # noqa: E402
from omr_harness import RedisError, Resp  # noqa: E402


class FunctionsTest(LuaTestCase):
    # ---- language, capacity, ordering (the default queue) -----------------

    def test_language_routes_only_to_speakers(self):
        self.agent("en1", "en", 2)
        self.agent("es1", "es", 2)
        self.assertEqual(self.start("c1", "es-MX"), "assigned")
        self.assertEqual(self.conv("c1")["agent"], "es1")
        self.assertEqual(self.start("c2", "fr"), "queued")
        self.assertEqual(self.waiting("fr"), ["c2"])

    def test_least_loaded_then_longest_idle(self):
        self.agent("a", "en", 3)
        self.agent("b", "en", 3)
        got = [self.conv(c)["agent"] for c in ("c1", "c2", "c3", "c4")
               if self.start(c) == "assigned"]
        # a and b alternate: never one at 2 while the other is at 0.
        self.assertEqual(sorted(got[:2]), ["a", "b"])
        self.assertEqual(sorted(got[2:]), ["a", "b"])

    def test_capacity_is_never_exceeded_and_waiting_is_fifo(self):
        self.agent("a", "en", 2)
        for i in range(5):
            self.start(f"c{i}")
        self.assertEqual(self.r("SCARD", f"{P}:agent:a:convs"), 2)
        self.assertEqual(self.load("a"), 2)
        self.assertEqual(self.waiting(), ["c2", "c3", "c4"])
        self.assertEqual(self.fcall("omr_conv_close", "c0", "a"), "closed")
        # The freed unit goes to the oldest waiting conversation at once.
        self.assertEqual(self.conv("c2")["agent"], "a")
        self.assertEqual(self.r("SCARD", f"{P}:agent:a:convs"), 2)
        self.assertEqual(self.waiting(), ["c3", "c4"])

    def test_waiting_work_assigned_when_agent_becomes_available(self):
        self.start("c1", "es")
        self.fcall("omr_conv_message", "c1", "customer", "", "m1", "hola", "cust", 100)
        self.agent("es1", "es", 1)
        self.assertEqual(self.conv("c1")["state"], "assigned")
        inbox = self.r("XRANGE", f"{P}:agent:es1:inbox", "-", "+")
        kinds = [dict(zip(e[1][::2], e[1][1::2]))["kind"] for e in inbox]
        self.assertEqual(kinds, ["assigned", "message"])

    def test_multilingual_agent_takes_oldest_across_languages(self):
        self.start("c-es", "es")
        time.sleep(0.005)
        self.start("c-en", "en")
        self.agent("bi", "en,es", 1)
        self.assertEqual(self.conv("c-es")["agent"], "bi")
        self.assertEqual(self.conv("c-en")["state"], "queued")

    # ---- skills, proficiency, tenants, channels ------------------------------

    def test_skills_levels_and_proficiency(self):
        self.rules({"name": "billing", "skills": {"billing": 5}, "min_proficiency": 7,
                    "steps": [{"after_s": 0}]}, DEFAULT_QUEUE)
        self.agent("junior", {"en": 10}, 2, skills={"billing": 3})
        self.agent("weak-en", {"en": 5}, 2, skills={"billing": 9})
        self.assertEqual(self.start("c1", skills=["billing"]), "queued")
        self.assertEqual(self.conv("c1")["queue"], "billing")
        self.agent("senior", {"en": 8}, 2, skills={"billing": 6})
        self.assertEqual(self.conv("c1")["agent"], "senior")
        # A conversation asking for no skill goes to the next queue that takes it.
        self.assertEqual(self.start("c2"), "assigned")
        self.assertEqual(self.conv("c2")["queue"], "default")

    def test_best_skill_strategy(self):
        self.rules({"name": "tech", "skills": {"network": 1}, "strategy": "best_skill",
                    "steps": [{"after_s": 0}]})
        self.agent("good", "en", 5, skills={"network": 6})
        self.agent("best", "en", 5, skills={"network": 9})
        self.agent("ok", "en", 5, skills={"network": 2})
        self.start("c1", skills=["network"])
        self.assertEqual(self.conv("c1")["agent"], "best")

    def test_tenants_are_served_only_by_their_agents(self):
        self.agent("acme-only", "en", 2, tenants=["acme:eu"])
        self.agent("both", "en", 1, tenants=["acme:eu", "globex"])
        self.assertEqual(self.start("g1", tenant="globex"), "assigned")
        self.assertEqual(self.conv("g1")["agent"], "both")
        self.assertEqual(self.start("g2", tenant="globex"), "queued")
        self.assertEqual(self.start("a1", tenant="acme:eu"), "assigned")
        self.assertEqual(self.conv("a1")["agent"], "acme-only")

    def test_per_channel_capacity_and_voice_blocks_chat(self):
        self.agent("a", "en", {"chat": 2, "voice": 1, "email": 2})
        self.assertEqual(self.start("v1", channel="voice"), "assigned")
        self.assertEqual(self.load("a", "voice"), 1)
        # On a call: no new chat and no new email (blocking voice -> chat, email).
        self.assertEqual(self.start("c1"), "queued")
        self.assertEqual(self.start("e1", channel="email"), "queued")
        self.fcall("omr_conv_close", "v1", "a")
        self.assertEqual(self.conv("c1")["agent"], "a")
        self.assertEqual(self.conv("e1")["agent"], "a")
        self.assertEqual(self.load("a", "chat"), 1)
        self.assertEqual(self.load("a", "email"), 1)

    # ---- priority across queues, escalation, max wait ------------------------

    def test_priority_then_longest_waiting_across_queues(self):
        self.rules({"name": "vip", "attributes": {"tier": "gold"}, "priority": 8,
                    "steps": [{"after_s": 0}]}, DEFAULT_QUEUE)
        self.start("old")
        time.sleep(0.005)
        self.start("gold", attrs={"tier": "gold"})
        time.sleep(0.005)
        self.start("new")
        self.assertEqual(self.conv("gold")["queue"], "vip")
        self.agent("a", "en", 1)
        self.assertEqual(self.conv("gold")["agent"], "a")  # higher priority first
        self.fcall("omr_conv_close", "gold", "a")
        self.assertEqual(self.conv("old")["agent"], "a")  # then the longest waiting
        self.assertEqual(self.conv("new")["state"], "queued")

    def test_escalation_relaxes_language_and_level(self):
        self.rules({"name": "es-billing", "languages": ["es"], "skills": {"billing": 8},
                    "steps": [{"after_s": 0},
                              {"after_s": 1, "min_level_delta": 3},
                              {"after_s": 2, "languages": ["en"]}]})
        self.agent("es-mid", "es", 1, skills={"billing": 5}, available=False)
        self.agent("en-top", "en", 1, skills={"billing": 9})
        self.assertEqual(self.start("c1", "es", skills=["billing"]), "queued")
        self.fcall("omr_agent_presence", "es-mid", "s-es-mid", "available")
        self.assertEqual(self.conv("c1")["state"], "queued")  # level 5 < 8
        self.tick_after(1.05)
        c = self.conv("c1")
        self.assertEqual((c["step"], c["agent"]), ("2", "es-mid"))  # 8 - 3 = 5
        why = json.loads(self.fcall("omr_explain", "c1"))
        self.assertEqual((why["queue"], why["step"], why["agent"]), ("es-billing", 2, "es-mid"))
        self.assertEqual(why["skills"]["billing"], {"required": 5, "agent": 5})
        # A second Spanish conversation: es-mid is full; after 2 s English is accepted.
        self.assertEqual(self.start("c2", "es", skills=["billing"]), "queued")
        self.tick_after(1.05)
        self.assertEqual(self.conv("c2")["state"], "queued")
        self.tick_after(1.05)
        self.assertEqual(self.conv("c2")["agent"], "en-top")
        why = json.loads(self.fcall("omr_explain", "c2"))
        self.assertEqual((why["step"], why["language_matched"]), (3, "en"))
        self.assertTrue(why["candidates"], why)

    def test_agent_sits_in_its_strictest_tier_only(self):
        # One queue, two tiers (billing 6, then 3): a strong agent is indexed
        # at tier 1 only, yet a conversation at step 2 (reading tiers 1 and 2)
        # still finds it, before a weaker but less loaded agent of tier 2.
        self.rules({"name": "billing", "skills": {"billing": 6},
                    "steps": [{"after_s": 0}, {"after_s": 1, "min_level_delta": 3}]})
        self.agent("strong", "en", 2, skills={"billing": 8})
        self.agent("weak", "en", 2, skills={"billing": 4})
        self.agent("none", "en", 2, skills={"billing": 1})
        self.assertEqual(self.r("HGET", f"{P}:agent:strong", "idx"), f"billing|1|chat|{T}|en")
        self.assertEqual(self.r("HGET", f"{P}:agent:weak", "idx"), f"billing|2|chat|{T}|en")
        self.assertEqual(self.r("HGET", f"{P}:agent:none", "idx") or "", "")
        self.assertEqual(self.start("c1", skills=["billing"]), "assigned")
        self.assertEqual(self.conv("c1")["agent"], "strong")
        self.assertEqual(self.start("c2", skills=["billing"]), "assigned")  # strong, 2 of 2
        self.assertEqual(self.start("c3", skills=["billing"]), "queued")  # weak: level 4 < 6
        self.tick_after(1.05)
        c = self.conv("c3")
        self.assertEqual((c["step"], c["agent"]), ("2", "weak"))
        # Step 2 reads both tiers: strong (load 2) would come after weak (load 1)
        # by load; close one of strong's so it has the lower load, and it wins.
        self.fcall("omr_conv_close", "c1", "strong")
        self.fcall("omr_conv_close", "c2", "strong")
        self.assertEqual(self.start("c4", skills=["billing"]), "assigned")
        self.assertEqual(self.conv("c4")["agent"], "strong")

    def test_queues_with_the_same_requirements_share_a_chain(self):
        # general and spanish ask the same of an agent: one set per slot.
        # Their tenant and language filters still apply to the conversations.
        self.rules({"name": "spanish", "languages": ["es"], "tenants": ["t2"],
                    "steps": [{"after_s": 0}]},
                   {"name": "general", "tenants": [T], "steps": [{"after_s": 0}]},
                   {"name": "vip", "strategy": "longest_idle", "attributes": {"tier": "gold"},
                    "steps": [{"after_s": 0}]})
        self.agent("bi", "en,es", 5, tenants=[T, "t2"])
        keys = sorted(k.split(":avail:")[1] for k in self.r("KEYS", f"{P}:avail:*"))
        self.assertEqual(keys, sorted(f"{q}|1|chat|{t}|{l}" for q in ("spanish", "vip")
                                      for t in (T, "t2") for l in ("en", "es")))
        self.assertEqual(self.start("s1", "es", tenant="t2"), "assigned")
        self.assertEqual(self.conv("s1")["queue"], "spanish")
        self.assertEqual(self.start("g1", "en"), "assigned")
        self.assertEqual(self.conv("g1")["queue"], "general")
        self.assertEqual(self.start("v1", "en", attrs={"tier": "gold"}, tenant="t3"), "queued")
        self.assertTrue(self.start("x1", "en", tenant="t2").startswith("NOQUEUE"))

    def test_closed_conversations_expire_after_the_retention(self):
        self.rules({"name": "default", "max_wait_s": 1, "steps": [{"after_s": 0}]},
                   retention_s=2)
        self.agent("a", "en", 1)
        self.start("c1", customer="cust-1")
        self.fcall("omr_conv_message", "c1", "customer", "", "m1", "hello", "cust", 100)
        self.assertEqual(self.r("TTL", f"{P}:conv:c1"), -1)  # open: kept
        self.assertEqual(self.fcall("omr_conv_close", "c1", "a"), "closed")
        self.assertEqual(self.fcall("omr_conv_rate", "c1", 5, "thanks"), "rated")
        keys = [f"{P}:conv:c1", f"{P}:conv:c1:log", f"{P}:conv:c1:ids", f"{P}:conv:c1:explain",
                f"{P}:customer:{T}|cust-1", f"{P}:customer:{T}|cust-1|convs"]
        for key in keys:
            self.assertIn(self.r("TTL", key), (1, 2), key)
        self.assertEqual(self.start("c2", "fr"), "queued")  # nobody speaks fr: max wait
        self.tick_after(1.05)
        self.assertEqual(self.conv("c2")["state"], "closed")
        self.assertIn(self.r("TTL", f"{P}:conv:c2"), (1, 2))
        time.sleep(2.1)
        for key in keys + [f"{P}:conv:c2", f"{P}:conv:c2:log"]:
            self.assertEqual(self.r("EXISTS", key), 0, key)
        self.assertTrue(self.fcall("omr_explain", "c1").startswith("NOCONV"))

    def test_retention_zero_keeps_closed_conversations(self):
        self.rules(DEFAULT_QUEUE, retention_s=0)
        self.agent("a", "en", 1)
        self.start("c1", customer="cust-1")
        self.fcall("omr_conv_close", "c1", "a")
        self.assertEqual(self.r("TTL", f"{P}:conv:c1"), -1)
        self.assertEqual(self.r("TTL", f"{P}:conv:c1:log"), -1)

    def test_routing_groups_keep_their_own_rules(self):
        # The library keeps prepared rules per text: two groups with different
        # rules, called in turn, each route by their own.
        P2 = "omr:{g2}"
        self.rules({"name": "alpha", "steps": [{"after_s": 0}]})
        doc = {"version": "g2-1", "queues": [{"name": "beta", "steps": [{"after_s": 0}]}],
               "blocking": {}}
        self.assertEqual(self.r("FCALL", "omr_rules_load", 1, P2, json.dumps(doc)), "loaded")
        self.agent("a", "en", 5)
        spec = {"name": "B", "tenants": [T], "languages": {"en": 10}, "capacity": {"chat": 5},
                "token_sha": "sha-b"}
        self.r("FCALL", "omr_agent_upsert", 1, P2, "b", json.dumps(spec))
        self.r("FCALL", "omr_agent_login", 1, P2, "b", "sha-b", "s-b")
        self.r("FCALL", "omr_agent_presence", 1, P2, "b", "s-b", "available")
        for i in range(3):
            self.assertEqual(self.start(f"c{i}"), "assigned")
            self.assertEqual(self.r("FCALL", "omr_conv_start", 1, P2, f"d{i}", "tok", "en", "en",
                                    "cust", "chat", T, "", "{}", "[]"), "assigned")
            self.assertEqual((self.conv(f"c{i}")["queue"], self.conv(f"c{i}")["agent"]),
                             ("alpha", "a"))
            self.assertEqual(self.r("HMGET", f"{P2}:conv:d{i}", "queue", "agent"), ["beta", "b"])

    def test_older_index_layout_is_rebuilt_on_rules_load(self):
        self.rules(DEFAULT_QUEUE)
        self.agent("a", "en", 2)
        # What format 1 left behind: a set listing the agent's sets.
        self.r("ZADD", f"{P}:avail:default|1|chat|{T}|xx", 5, "a")
        self.r("SADD", f"{P}:agent:a:idx", f"{P}:avail:default|1|chat|{T}|xx")
        self.r("DEL", f"{P}:index_format")
        doc = json.loads(self.r("GET", f"{P}:rules"))
        self.assertEqual(self.fcall("omr_rules_load", json.dumps(doc)), "loaded")
        self.assertEqual(self.r("EXISTS", f"{P}:avail:default|1|chat|{T}|xx"), 0)
        self.assertEqual(self.r("EXISTS", f"{P}:agent:a:idx"), 0)
        self.assertEqual(self.fcall("omr_rules_load", json.dumps(doc)), "unchanged")
        self.assertEqual(self.start("c1"), "assigned")

    def test_overflow_keeps_the_original_enqueue_time(self):
        self.rules({"name": "first", "languages": ["de"], "steps": [{"after_s": 0},
                                                                    {"after_s": 1,
                                                                     "overflow": "second"}]},
                   {"name": "second", "steps": [{"after_s": 0}]})
        self.assertEqual(self.start("c1", "de"), "queued")
        enq = self.conv("c1")["enqueued_ms"]
        self.tick_after(1.05)
        c = self.conv("c1")
        self.assertEqual((c["queue"], c["step"], c["enqueued_ms"]), ("second", "1", enq))
        self.assertEqual(self.waiting("de", queue="second"), ["c1"])

    def test_max_wait_closes(self):
        self.rules({"name": "short", "max_wait_s": 1, "steps": [{"after_s": 0}]})
        self.assertEqual(self.start("c1"), "queued")
        self.tick_after(1.05)
        c = self.conv("c1")
        self.assertEqual((c["state"], c.get("close_reason")), ("closed", "max-wait"))
        self.assertEqual(self.waiting(queue="short"), [])

    def test_timers_fire_once_whoever_ticks(self):
        self.rules({"name": "q", "steps": [{"after_s": 0}, {"after_s": 1, "languages": ["en"]}]})
        self.agent("en1", "en", 5)
        self.start("c1", "fr")
        time.sleep(1.05)
        fired = [self.fcall("omr_tick") for _ in range(3)]  # three instances ticking
        self.assertEqual(sorted(fired), [0, 0, 1])
        self.assertEqual(self.conv("c1")["agent"], "en1")

    def test_rules_reload_rehomes_waiting_work(self):
        self.start("c1", "it")
        self.rules({"name": "italian", "languages": ["it"], "steps": [{"after_s": 0},
                    {"after_s": 1, "languages": ["en"]}]}, DEFAULT_QUEUE)
        self.assertEqual(self.conv("c1")["queue"], "italian")
        self.agent("en1", "en", 1)
        self.tick_after(1.05)
        self.assertEqual(self.conv("c1")["agent"], "en1")

    def test_no_queue_takes_it(self):
        self.rules({"name": "only-es", "languages": ["es"], "steps": [{"after_s": 0}]})
        self.assertTrue(self.start("c1", "en").startswith("NOQUEUE"))

    # ---- idempotency and guards ---------------------------------------------

    def test_messages_are_deduplicated_and_agents_checked(self):
        self.agent("a", "en", 1)
        self.start("c1")
        first = self.fcall("omr_conv_message", "c1", "customer", "", "m1", "hi", "cust", 100)
        again = self.fcall("omr_conv_message", "c1", "customer", "", "m1", "hi", "cust", 100)
        self.assertEqual(first, again)
        reply = self.fcall("omr_conv_message", "c1", "agent", "a", "a1", "hello", "", 100)
        entry = self.r("XRANGE", f"{P}:conv:c1:log", reply, reply)[0][1]
        self.assertEqual(dict(zip(entry[::2], entry[1::2]))["name"], "A")  # the agent's name
        self.assertEqual(self.r("XLEN", f"{P}:conv:c1:log"), 3)  # assigned event + 2 messages
        self.agent("b", "en", 1)
        res = self.fcall("omr_conv_message", "c1", "agent", "b", "x1", "hijack", "B", 100)
        self.assertIsInstance(res, Err)
        self.assertTrue(res.startswith("NOTASSIGNED"), res)

    def test_profile_change_moves_only_that_agent(self):
        # Agents of one profile share their slot layout (avail_slots keeps it
        # per profile); changing one agent's languages moves that agent only,
        # and the next decision follows.
        self.agent("a", "en", 3)
        self.agent("b", "en", 3)
        before = self.r("HGET", f"{P}:agent:b", "idx")
        self.assertEqual(self.r("HGET", f"{P}:agent:a", "idx"), before)
        self.agent("a", "es", 3)  # update: Spanish only
        self.assertEqual(self.r("HGET", f"{P}:agent:b", "idx"), before)
        self.assertNotEqual(self.r("HGET", f"{P}:agent:a", "idx"), before)
        self.assertEqual(self.start("c1", "es"), "assigned")
        self.assertEqual(self.conv("c1")["agent"], "a")
        self.assertEqual(self.start("c2", "en"), "assigned")
        self.assertEqual(self.conv("c2")["agent"], "b")
        self.agent("b", "es", 3)  # now nobody speaks English
        self.assertEqual(self.start("c3", "en"), "queued")
        self.agent("b", "en", 3)  # back to the first profile: c3 is pulled at once
        self.assertEqual(self.conv("c3")["agent"], "b")
        self.assertEqual(self.r("HGET", f"{P}:agent:b", "idx"), before)

    def test_customer_list_of_the_older_layout_is_taken_over(self):
        # Before 2026-12 a customer's conversations were listed under
        # "...|CUSTOMER:convs"; the first conversation after that moves them.
        self.agent("a", "en", 3)
        self.r("RPUSH", f"{P}:customer:{T}|cust-9:convs", "old1", "old2")
        self.start("c1", customer="cust-9")
        self.assertEqual(self.r("LRANGE", f"{P}:customer:{T}|cust-9|convs", 0, -1),
                         ["c1", "old1", "old2"])
        self.assertEqual(self.r("EXISTS", f"{P}:customer:{T}|cust-9:convs"), 0)

    def test_conversation_hash_stays_compact(self):
        # The explanation (hundreds of bytes) has a key of its own, so the
        # conversation's hash stays a listpack; explain reads it, and still
        # reads one kept in the hash by an older version.
        self.agent("a", "en", 2)
        self.assertEqual(self.start("c1", customer="cust-1"), "assigned")
        self.assertEqual(self.r("OBJECT", "ENCODING", f"{P}:conv:c1"), "listpack")
        self.assertNotIn("explain", self.conv("c1"))
        why = json.loads(self.fcall("omr_explain", "c1"))
        self.assertEqual((why["agent"], why["conversation"]), ("a", "c1"))
        old = dict(why, agent="old-agent")
        self.r("DEL", f"{P}:conv:c1:explain")
        self.r("HSET", f"{P}:conv:c1", "explain", json.dumps(old))
        self.assertEqual(json.loads(self.fcall("omr_explain", "c1"))["agent"], "old-agent")

    def test_availability_sets_are_skiplists_without_the_marker(self):
        # An agent entering a set turns a listpack into a skiplist (cheaper to
        # re-score); the long member that converts it is gone at once, and the
        # heads are agents only, in load order.
        self.agent("a", "en", 2)
        self.agent("b", "en", 2)
        self.assertEqual(self.start("c1"), "assigned")
        keys = self.r("KEYS", f"{P}:avail:*")
        self.assertTrue(keys)
        for key in keys:
            self.assertEqual(self.r("OBJECT", "ENCODING", key), "skiplist", key)
            members = self.r("ZRANGE", key, 0, -1)
            self.assertEqual(sorted(members), ["a", "b"], key)
        busy = self.conv("c1")["agent"]
        self.assertEqual(self.start("c2"), "assigned")
        self.assertNotEqual(self.conv("c2")["agent"], busy)  # least loaded first
        # Leaving every set and coming back: the sets are made again, skiplists.
        for aid in ("a", "b"):
            self.assertEqual(self.fcall("omr_agent_state", aid, "break", "lunch"), "break")
        self.assertEqual(self.r("KEYS", f"{P}:avail:*"), [])
        self.assertEqual(self.fcall("omr_agent_presence", "a", "s-a", "available"), "available")
        for key in self.r("KEYS", f"{P}:avail:*"):
            self.assertEqual(self.r("OBJECT", "ENCODING", key), "skiplist", key)
            self.assertEqual(self.r("ZRANGE", key, 0, -1), ["a"], key)

    def test_messages_in_one_call_each_get_their_own_reply(self):
        # omr_conv_messages: the router's batch. Every message is stored or
        # refused on its own, in order; one that hits a Redis error (a key of
        # the wrong type) fails alone.
        self.agent("a", "en", 3)
        self.start("c1")
        self.start("c2")
        self.start("c3")
        self.fcall("omr_conv_close", "c2", "a")
        self.r("SET", f"{P}:conv:c3:ids", "not a hash")
        first = self.fcall("omr_conv_message", "c1", "customer", "", "m0", "before", "", 100)
        batch = ["c1", "customer", "", "m1", "one", "",
                 "c1", "customer", "", "m0", "before", "",      # a resend: the same id
                 "nope", "customer", "", "m1", "x", "",         # no such conversation
                 "c2", "customer", "", "m1", "late", "",        # closed
                 "c3", "customer", "", "m1", "broken", "",      # WRONGTYPE, alone
                 "c1", "agent", "a", "r1", "reply", ""]
        res = self.fcall("omr_conv_messages", 100, *batch)
        self.assertEqual(len(res), 6, res)
        self.assertIsInstance(res[0], str)
        self.assertNotIsInstance(res[0], RedisError)
        self.assertEqual(res[1], first)
        self.assertIsInstance(res[2], RedisError)
        self.assertTrue(str(res[2]).startswith("NOCONV"), res[2])
        self.assertTrue(str(res[3]).startswith("CLOSED"), res[3])
        self.assertIsInstance(res[4], RedisError)
        self.assertIn("WRONGTYPE", str(res[4]))
        self.assertNotIsInstance(res[5], RedisError)
        log = self.r("XRANGE", f"{P}:conv:c1:log", "-", "+")
        texts = [dict(zip(e[1][::2], e[1][1::2])).get("text") for e in log]
        self.assertEqual([t for t in texts if t], ["before", "one", "reply"])
        self.assertEqual(self.r("HGET", f"{P}:conv:c1", "nmsg"), "3")
        self.assertEqual([k for k, _ in self.inbox_fields("a") if k == "message"],
                         ["message", "message"])  # the customer's two, not the reply

    def test_long_conversation_keeps_deduplicating(self):
        # The msgid hash turns into a hashtable at the 33rd message (a listpack
        # is searched end to end by every lookup); ids stored before and after
        # the switch are still found, and the marker is no message.
        self.agent("a", "en", 1)
        self.start("c1")
        seqs = [self.fcall("omr_conv_message", "c1", "customer", "", f"m{i}", "hi", "c", 1000)
                for i in range(40)]
        self.assertEqual(self.r("OBJECT", "ENCODING", f"{P}:conv:c1:ids"), "hashtable")
        self.assertEqual(self.r("HGET", f"{P}:conv:c1", "nmsg"), "40")
        for i in (0, 31, 32, 39):
            self.assertEqual(
                self.fcall("omr_conv_message", "c1", "customer", "", f"m{i}", "hi", "c", 1000),
                seqs[i])
        self.assertEqual(self.r("XLEN", f"{P}:conv:c1:log"), 41)  # assigned event + 40
        self.assertEqual(len(set(seqs)), 40)

    def test_start_is_idempotent_and_resume_checks_token(self):
        self.agent("a", "en", 2)
        self.assertEqual(self.start("c1"), "assigned")
        self.assertEqual(self.start("c1"), "assigned")
        self.assertEqual(self.r("SCARD", f"{P}:agent:a:convs"), 1)
        self.assertEqual(self.fcall("omr_conv_resume", "c1", "tok"), "assigned")
        self.assertTrue(self.fcall("omr_conv_resume", "c1", "bad").startswith("BADTOKEN"))

    def test_stale_session_cannot_take_agent_offline(self):
        self.agent("a", "en", 1)
        self.fcall("omr_agent_login", "a", "sha-a", "s-new")
        self.assertEqual(self.fcall("omr_agent_gone", "a", "s-a"), "ignored")
        self.assertTrue(
            self.fcall("omr_agent_presence", "a", "s-a", "available").startswith("REPLACED"))
        self.assertEqual(self.fcall("omr_agent_gone", "a", "s-new"), "offline")
        self.assertEqual(self.r("HGET", f"{P}:agent:a", "idx"), "")
        for key in self.r("KEYS", f"{P}:avail:*"):
            self.assertIsNone(self.r("ZSCORE", key, "a"), key)

    def test_login_from_an_older_connection_does_not_take_over(self):
        # The newest connection wins, not the last login run (PROTOCOL.md login): a login
        # whose connection was opened before the current session's is refused and changes
        # nothing; one from a newer connection, a resent one, or one that does not say when
        # its connection was opened takes over as before.
        self.agent("a", "en", 1, available=False)
        self.assertIsInstance(self.fcall("omr_agent_login", "a", "sha-a", "s-2", "0", "",
                                         "2000"), list)
        self.assertEqual(self.fcall("omr_agent_presence", "a", "s-2", "available"), "available")
        got = self.fcall("omr_agent_login", "a", "sha-a", "s-1", "0", "", "1000")
        self.assertTrue(str(got).startswith("STALE"), got)
        self.assertEqual(self.r("HMGET", f"{P}:agent:a", "session", "presence"),
                         ["s-2", "available"])
        self.assertEqual(self.fcall("omr_agent_gone", "a", "s-1"), "ignored")
        # the same connection's login again (a resend), then a newer connection's
        self.assertIsInstance(self.fcall("omr_agent_login", "a", "sha-a", "s-2", "0", "",
                                         "2000"), list)
        self.assertIsInstance(self.fcall("omr_agent_login", "a", "sha-a", "s-3", "0", "",
                                         "3000"), list)
        self.assertEqual(self.r("HGET", f"{P}:agent:a", "session"), "s-3")
        # no opened_ms (an older adapter): takes over; so does the next one after it
        self.assertIsInstance(self.fcall("omr_agent_login", "a", "sha-a", "s-4"), list)
        self.assertIsInstance(self.fcall("omr_agent_login", "a", "sha-a", "s-5", "0", "",
                                         "1500"), list)
        self.assertEqual(self.r("HGET", f"{P}:agent:a", "session"), "s-5")
        # after the session ended, any login is taken
        self.assertEqual(self.fcall("omr_agent_gone", "a", "s-5"), "offline")
        self.assertIsInstance(self.fcall("omr_agent_login", "a", "sha-a", "s-6", "0", "",
                                         "100"), list)

    def test_login_from_an_older_connection_while_the_newest_is_lost(self):
        # The newest desktop's instance went silent (the desktop taken for lost): a login
        # from an older connection run late meanwhile is refused too, and the newest is
        # restored when its instance vouches for it again.
        self.rules({"name": "q"}, heartbeat_timeout_s=1, agent_grace_s=60)
        self.agent("a", "en", 1, available=False)
        self.assertIsInstance(self.fcall("omr_agent_login", "a", "sha-a", "s-2", "0", "",
                                         "2000"), list)
        self.assertEqual(self.fcall("omr_agent_seen", "a", "s-2"), "ok")
        self.tick_after(1.1)
        self.assertEqual(self.presence("a"), ("offline", "lost"))
        got = self.fcall("omr_agent_login", "a", "sha-a", "s-1", "0", "", "1000")
        self.assertTrue(str(got).startswith("STALE"), got)
        self.assertEqual(self.fcall("omr_agent_seen", "a", "s-2"), "ok")
        self.assertEqual(self.r("HGET", f"{P}:agent:a", "session"), "s-2")

    def test_an_ended_desktop_session_no_longer_acts(self):
        # An agent's message, close, transfer and offer accept carry its desktop session
        # (the router's): once that session ended (token revoked or reissued, a newer
        # login) they are refused, even if the request reaches Redis late. A stored reply
        # sent again is still answered; a session taken for lost and not ended still acts
        # (its instance may vouch for it again). The batch takes the sessions as one last
        # argument, one per message, which an earlier daemon does not send.
        self.rules({"name": "fr", "languages": ["fr"], "auto_accept": False,
                    "offer_timeout_s": 30}, {"name": "q"}, heartbeat_timeout_s=1,
                   agent_grace_s=60)
        self.agent("a", "en,fr", 3)
        self.assertEqual(self.start("c1"), "assigned")
        self.assertEqual(self.start("c2"), "assigned")
        self.assertEqual(self.start("c3", lang="fr"), "offered")
        stored = self.fcall("omr_conv_message", "c1", "agent", "a", "r1", "hi", "", 100, "s-a")
        self.assertNotIsInstance(stored, RedisError)
        self.assertTrue(str(self.fcall("omr_conv_message", "c1", "agent", "a", "r2", "x", "",
                                       100, "s-old")).startswith("REPLACED"))
        # the router's session of this desktop ends: a newer login took over
        self.assertIsInstance(self.fcall("omr_agent_login", "a", "sha-a", "s-new"), list)
        batch = self.fcall("omr_conv_messages", 100,
                           "c1", "customer", "", "m1", "still there?", "",
                           "c1", "agent", "a", "r3", "late", "", ",s-a")
        self.assertNotIsInstance(batch[0], RedisError)
        refused = [
            batch[1],
            self.fcall("omr_conv_close", "c1", "a", "", "s-a"),
            self.fcall("omr_conv_transfer", "c2", "a", "queue", "q", "", "", "", "s-a"),
            self.fcall("omr_offer_accept", "c3", "a", "s-a")]
        for got in refused:
            self.assertTrue(str(got).startswith("REPLACED"), refused)
        self.assertEqual((self.conv("c1")["state"], self.conv("c2")["agent"],
                          self.conv("c3")["state"]), ("assigned", "a", "offered"))
        self.assertEqual(self.fcall("omr_conv_message", "c1", "agent", "a", "r1", "hi", "",
                                    100, "s-a"), stored)  # a resend of a stored reply
        ok = self.fcall("omr_conv_messages", 100, "c1", "agent", "a", "r4", "new desktop", "",
                        "s-new")
        self.assertNotIsInstance(ok[0], RedisError)
        # an earlier daemon's batch (no sessions): not checked
        ok = self.fcall("omr_conv_messages", 100, "c1", "agent", "a", "r5", "old daemon", "")
        self.assertNotIsInstance(ok[0], RedisError)
        # taken for lost (its instance silent), not ended: it still acts
        self.assertEqual(self.fcall("omr_agent_seen", "a", "s-new"), "ok")
        self.tick_after(1.1)
        self.assertEqual(self.presence("a"), ("offline", "lost"))
        self.assertEqual(self.fcall("omr_offer_accept", "c3", "a", "s-new"), "assigned")
        self.assertEqual(self.fcall("omr_conv_close", "c1", "a", "", "s-new"), "closed")

    def test_login_needs_the_right_token(self):
        self.agent("a", "en", 1, available=False)
        self.assertTrue(self.fcall("omr_agent_login", "a", "wrong", "s").startswith("BADTOKEN"))
        self.assertTrue(self.fcall("omr_agent_login", "zz", "sha-a", "s").startswith("BADTOKEN"))

    def test_close_is_idempotent_and_frees_one_unit(self):
        self.agent("a", "en", 2)
        self.start("c1")
        self.start("c2")
        self.assertEqual(self.fcall("omr_conv_close", "c1", "a"), "closed")
        self.assertEqual(self.fcall("omr_conv_close", "c1", "a"), "closed")
        self.assertEqual(self.load("a"), 1)
        self.assertTrue(
            self.fcall("omr_conv_message", "c1", "customer", "", "m9", "x", "c", 10)
            .startswith("CLOSED"))

    def test_presence_states_and_history(self):
        self.agent("a", "en", 2)
        self.assertEqual(self.fcall("omr_agent_state", "a", "break", "lunch"), "break")
        self.assertEqual(self.start("c1"), "queued")
        got = json.loads(self.fcall("omr_agent_get", "a"))
        self.assertEqual((got["presence"], got["reason"]), ("break", "lunch"))
        self.fcall("omr_agent_state", "a", "available", "")
        self.assertEqual(self.conv("c1")["agent"], "a")
        hist = [dict(zip(e[1][::2], e[1][1::2]))["state"]
                for e in self.r("XRANGE", f"{P}:agent:a:presence", "-", "+")]
        self.assertEqual(hist, ["away", "available", "break", "available"])
        self.assertTrue(self.fcall("omr_agent_state", "a", "dancing", "").startswith("BADARG"))

    # ---- offers, sticky agent, wrap-up, agent loss ---------------------------

    def test_offer_accept_reject_and_timeout(self):
        self.rules({"name": "q", "auto_accept": False, "offer_timeout_s": 1,
                    "steps": [{"after_s": 0}]}, max_missed_offers=2)
        self.agent("a", "en", 1)
        self.agent("b", "en", 1)
        self.assertEqual(self.start("c1"), "offered")  # reserved for the offer
        c = self.conv("c1")
        first = c["agent"]
        other = "b" if first == "a" else "a"
        self.assertEqual(c["state"], "offered")
        self.assertEqual(self.load(first), 1)  # capacity is held while offered
        self.assertIn(("offer", "c1"), self.inbox_kinds(first))
        self.assertEqual(self.fcall("omr_offer_reject", "c1", first, "busy with a call"),
                         "rejected")
        c = self.conv("c1")
        self.assertEqual((c["state"], c["agent"]), ("offered", other))
        self.assertEqual(self.load(first), 0)
        self.assertIn(("revoked", "c1"), self.inbox_kinds(first))
        # The other agent's desktop gets the offer and lets it time out: it goes
        # back to the first agent? No: both declined (for routing.decline_hold_s),
        # so it waits, keeping its enqueue time.
        enq = c["enqueued_ms"]
        self.desktop_reads(other)
        self.tick_after(1.05)
        c = self.conv("c1")
        self.assertEqual((c["state"], c["enqueued_ms"]), ("queued", enq))
        self.assertEqual(json.loads(self.fcall("omr_agent_get", other))["load"]["chat"], 0)
        # A new conversation is offered and accepted.
        self.start("c2")
        c2 = self.conv("c2")
        self.assertEqual(self.fcall("omr_offer_accept", "c2", c2["agent"]), "assigned")
        self.assertEqual(self.conv("c2")["state"], "assigned")
        self.assertIn(("assigned", "c2"), self.inbox_kinds(c2["agent"]))
        self.assertTrue(self.fcall("omr_offer_accept", "c1", first).startswith("NOTASSIGNED"))

    def test_missed_offers_put_the_agent_on_break(self):
        self.rules({"name": "q", "auto_accept": False, "offer_timeout_s": 1,
                    "steps": [{"after_s": 0}]}, max_missed_offers=2)
        self.agent("a", "en", 2)
        self.start("c1")
        self.start("c2")
        # The desktop receives both offers (read and acked) and lets them expire.
        self.desktop_reads("a")
        self.tick_after(1.05)
        got = json.loads(self.fcall("omr_agent_get", "a"))
        self.assertEqual((got["presence"], got["reason"]), ("break", "missed-offers"))
        self.assertEqual(self.conv("c1")["state"], "queued")

    def test_offers_the_desktop_never_received_are_not_missed(self):
        self.rules({"name": "q", "auto_accept": False, "offer_timeout_s": 1,
                    "steps": [{"after_s": 0}]}, max_missed_offers=1)
        self.agent("a", "en", 3)
        self.start("c1")
        # c1's offer is read by a router but never acked by the desktop (the
        # connection dropped); c2's is never read (the server was too slow).
        entries = self.r("XREADGROUP", "GROUP", "desktop", "a", "COUNT", 100, "STREAMS",
                         f"{P}:agent:a:inbox", ">")
        self.assertTrue(entries)
        self.start("c2")
        self.tick_after(1.05)
        got = json.loads(self.fcall("omr_agent_get", "a"))
        self.assertEqual((got["presence"], got["missed_offers"]), ("available", 0))
        # Not held against it either (ROUTING.md, Offers): offered to it again.
        self.assertEqual((self.conv("c1")["state"], self.conv("c2")["state"]),
                         ("offered", "offered"))
        self.assertEqual(self.r("HKEYS", f"{P}:conv:c1:decl"), ["?a"])  # (once)
        # An offer the desktop did get (read and acked) and let expire counts.
        self.start("c3")
        self.desktop_reads("a")
        self.tick_after(1.05)
        got = json.loads(self.fcall("omr_agent_get", "a"))
        self.assertEqual((got["presence"], got["reason"]), ("break", "missed-offers"))

    def test_sticky_agent_first_then_normal_routing(self):
        self.rules({"name": "q", "sticky_window_s": 1, "steps": [{"after_s": 0}]})
        self.agent("a", "en", 1)
        self.agent("b", "en", 1)
        self.start("c1", customer="cust-9")
        self.assertEqual(self.conv("c1")["agent"], "a")  # tie: agent id order
        self.fcall("omr_conv_close", "c1", "a")
        # The returning customer goes to the same agent although b idled longer.
        self.start("c2", customer="cust-9")
        self.assertEqual(self.conv("c2")["agent"], "a")
        why = json.loads(self.fcall("omr_explain", "c2"))
        self.assertIn("sticky", why["trigger"])
        # Their agent is busy: the customer waits for them, not for b...
        self.start("c3", customer="cust-9")
        c3 = self.conv("c3")
        self.assertEqual((c3["state"], c3.get("pref_agent")), ("queued", "a"))
        self.fcall("omr_conv_close", "c2", "a")
        self.assertEqual(self.conv("c3")["agent"], "a")
        # ... but only within the window, then normal routing.
        self.start("c4", customer="cust-9")
        self.assertEqual(self.conv("c4")["state"], "queued")
        self.tick_after(1.05)
        self.assertEqual(self.conv("c4")["agent"], "b")

    def test_wrapup_blocks_the_channel_until_it_ends(self):
        self.rules({"name": "q", "wrapup_s": 1, "steps": [{"after_s": 0}]})
        self.agent("a", "en", 1)
        self.start("c1")
        self.start("c2")
        self.fcall("omr_conv_close", "c1", "a")
        self.assertEqual(self.conv("c2")["state"], "queued")  # in wrap-up
        self.tick_after(1.05)
        self.assertEqual(self.conv("c2")["agent"], "a")
        self.fcall("omr_conv_close", "c2", "a")
        self.start("c3")
        self.assertEqual(self.fcall("omr_agent_wrapup_end", "a", "s-a", "chat"), "ok")
        self.assertEqual(self.conv("c3")["agent"], "a")  # ended by the agent

    def test_lost_agent_work_is_requeued_after_grace(self):
        self.rules({"name": "q", "steps": [{"after_s": 0}]}, heartbeat_timeout_s=1,
                   agent_grace_s=1)
        self.agent("a", "en", 1)
        self.assertEqual(self.fcall("omr_agent_seen", "a", "s-a"), "ok")
        self.start("c1")
        enq = self.conv("c1")["enqueued_ms"]
        self.agent("b", "en", 1, available=False)
        self.tick_after(1.05)  # no heartbeat: lost
        got = json.loads(self.fcall("omr_agent_get", "a"))
        self.assertEqual((got["presence"], got["reason"]), ("offline", "lost"))
        self.assertEqual(self.conv("c1")["agent"], "a")  # kept during the grace period
        self.fcall("omr_agent_presence", "b", "s-b", "available")
        self.tick_after(1.05)
        c = self.conv("c1")
        self.assertEqual((c["agent"], c["enqueued_ms"]), ("b", enq))
        self.assertEqual(self.load("a"), 0)

    def test_agent_back_within_grace_keeps_its_work(self):
        self.rules({"name": "q", "steps": [{"after_s": 0}]}, agent_grace_s=1)
        self.agent("a", "en", 1)
        self.start("c1")
        self.assertEqual(self.fcall("omr_agent_gone", "a", "s-a"), "offline")
        self.fcall("omr_agent_login", "a", "sha-a", "s-a2")
        self.tick_after(1.05)
        self.assertEqual(self.conv("c1")["agent"], "a")
        self.assertEqual(self.load("a"), 1)

    # ---- the customer's side: position, typing, survey, history, transfer ----

    def test_position_and_estimated_wait(self):
        self.rules({"name": "q", "steps": [{"after_s": 0}]})
        for i in range(3):
            self.start(f"w{i}")
        self.assertEqual(self.fcall("omr_conv_position", "w2"), ["queued", 3, 0])
        self.agent("a", "en", 1)
        self.assertEqual(self.fcall("omr_conv_position", "w0"), ["assigned", 0, 0])
        state, pos, eta = self.fcall("omr_conv_position", "w2")
        self.assertEqual((state, pos), ("queued", 2))
        self.assertGreaterEqual(eta, 0)  # the queue's recent wait is now known

    def test_typing_is_published_not_stored(self):
        self.agent("a", "en", 1)
        self.start("c1")
        sub = Resp(self.port)
        sub.sock.sendall(Resp._encode(["SUBSCRIBE", f"{P}:notify"]))
        sub._read()
        self.assertEqual(self.fcall("omr_conv_typing", "c1", "customer", ""), "ok")
        self.assertEqual(self.fcall("omr_conv_typing", "c1", "agent", "a"), "ok")
        got = [sub._read()[2], sub._read()[2]]
        sub.close()
        self.assertEqual(got, ["ta:a|c1", "tc:c1"])
        self.assertTrue(self.fcall("omr_conv_typing", "c1", "agent", "zz")
                        .startswith("NOTASSIGNED"))
        self.assertEqual(self.r("XLEN", f"{P}:conv:c1:log"), 1)  # only the assigned event

    def test_survey_after_close(self):
        self.agent("a", "en", 1)
        self.start("c1")
        self.assertTrue(self.fcall("omr_conv_rate", "c1", 5, "").startswith("BADARG"))
        self.fcall("omr_conv_close", "c1", "a", "resolved")
        self.assertTrue(self.fcall("omr_conv_rate", "c1", 6, "").startswith("BADARG"))
        self.assertEqual(self.fcall("omr_conv_rate", "c1", 4, "quick, thanks"), "rated")
        c = self.conv("c1")
        self.assertEqual((c["csat"], c["csat_comment"], c["disposition"]),
                         ("4", "quick, thanks", "resolved"))

    def test_earlier_conversations_of_the_customer(self):
        self.agent("a", "en", 2)
        self.start("old", customer="kim")
        self.fcall("omr_conv_message", "old", "customer", "", "m1", "first visit", "Kim", 100)
        self.fcall("omr_conv_close", "old", "a")
        self.start("new", customer="kim")
        self.start("other", customer="lee")
        assigned = [f for k, f in self.inbox_fields("a") if k == "assigned"]
        new = next(f for f in assigned if f["conv"] == "new")
        self.assertEqual(new["history"], "old")
        entries = self.fcall("omr_conv_history", "new", "a", "old")
        texts = [dict(zip(e[1][::2], e[1][1::2])).get("text") for e in entries]
        self.assertIn("first visit", texts)
        self.assertTrue(self.fcall("omr_conv_history", "other", "a", "old")
                        .startswith("NOTASSIGNED"))  # another customer's

    def test_transfer_to_queue_and_to_agent(self):
        self.rules({"name": "sales", "attributes": {"topic": "sales"}, "steps": [{"after_s": 0}]},
                   DEFAULT_QUEUE)
        self.agent("a", "en", 1)
        self.start("c1")
        enq = self.conv("c1")["enqueued_ms"]
        self.agent("b", "en", 1)
        self.assertEqual(self.fcall("omr_conv_transfer", "c1", "a", "agent", "b",
                                    "wants a refund"), "transferred")
        c = self.conv("c1")
        self.assertEqual((c["agent"], c["enqueued_ms"], c["transferred_from"]), ("b", enq, "a"))
        self.assertEqual(self.load("a"), 0)
        events = [dict(zip(e[1][::2], e[1][1::2])) for e in
                  self.r("XRANGE", f"{P}:conv:c1:log", "-", "+")]
        self.assertIn(("transferred", "wants a refund"),
                      [(e.get("event"), e.get("text")) for e in events])
        self.assertEqual(self.fcall("omr_conv_transfer", "c1", "b", "queue", "sales", ""),
                         "transferred")
        c = self.conv("c1")
        self.assertEqual((c["queue"], c["state"]), ("sales", "queued"))  # not back to b
        self.assertTrue(self.fcall("omr_conv_transfer", "c1", "b", "queue", "nope", "")
                        .startswith("NOTASSIGNED"))  # b no longer holds it
        self.agent("c", "en", 1)
        self.assertEqual(self.conv("c1")["agent"], "c")

    # ---- supervisors: the team snapshot and read-only transcripts ----------

    def supervisor(self, sid, supervises, tenants=None):
        spec = {"name": sid.upper(), "tenants": tenants or [T], "languages": {"en": 10},
                "capacity": {"chat": 1}, "supervises": supervises}
        self.assertIn(self.fcall("omr_agent_upsert", sid, json.dumps(spec)),
                      ("created", "updated"))

    def test_supervises_is_stored_checked_and_cleared(self):
        self.supervisor("sup", ["a", "b"])
        self.assertEqual(json.loads(self.fcall("omr_agent_get", "sup"))["supervises"],
                         ["a", "b"])
        self.assertEqual(self.r("HGET", f"{P}:agent:sup", "supervises"), '["a","b"]')
        for bad in (["sup"], ["a", "a"], ["a b"], [7], "a", ["x" * 129], ["a"] * 501):
            self.assertTrue(self.fcall("omr_agent_upsert", "sup", json.dumps(
                {"supervises": bad})).startswith("BADARG"), bad)
        # an update without the field keeps it; [] clears it
        self.assertEqual(self.fcall("omr_agent_upsert", "sup", json.dumps({"name": "S"})),
                         "updated")
        self.assertEqual(json.loads(self.fcall("omr_agent_get", "sup"))["supervises"],
                         ["a", "b"])
        self.fcall("omr_agent_upsert", "sup", json.dumps({"supervises": []}))
        self.assertIsNone(self.r("HGET", f"{P}:agent:sup", "supervises"))
        self.assertEqual(json.loads(self.fcall("omr_agent_get", "sup"))["supervises"], {})

    def monitor(self, sid, conv):
        return self.fcall("omr_supervisor_monitor", sid, conv)

    def test_supervisor_reads_its_team_conversations_only(self):
        self.agent("a", "en", 2, tenants=[T, "t2"])
        self.agent("b", "es", 1)
        self.supervisor("sup", ["a", "ghost"])
        self.supervisor("sup2", ["a"], tenants=["t2"])
        self.start("c1")  # a
        self.fcall("omr_conv_message", "c1", "customer", "", "m1", "my order is late", "", 100)
        self.fcall("omr_conv_message", "c1", "agent", "a", "m2", "let me look", "", 100)
        self.start("c2", "es")  # b
        self.start("c3", tenant="t2")  # a, another tenant
        self.assertEqual((self.conv("c1")["agent"], self.conv("c2")["agent"],
                          self.conv("c3")["agent"]), ("a", "b", "a"))
        # authorized: a's conversation in sup's tenant, the whole transcript
        entries = [dict(zip(e[1][::2], e[1][1::2])) for e in self.monitor("sup", "c1")]
        self.assertEqual([(e["kind"], e.get("from"), e.get("text"), e.get("event"))
                          for e in entries],
                         [("event", None, None, "assigned"),
                          ("message", "customer", "my order is late", None),
                          ("message", "agent", "let me look", None)])
        # another tenant: sup serves only t1, sup2 only t2
        self.assertTrue(self.monitor("sup", "c3").startswith("NOTASSIGNED"))
        self.assertTrue(self.monitor("sup2", "c1").startswith("NOTASSIGNED"))
        self.assertEqual(len(self.monitor("sup2", "c3")), 1)
        # an agent sup does not supervise; a plain agent; no such conversation or agent
        self.assertTrue(self.monitor("sup", "c2").startswith("NOTASSIGNED"))
        self.assertTrue(self.monitor("b", "c1").startswith("NOTASSIGNED"))
        self.assertTrue(self.monitor("a", "c1").startswith("NOTASSIGNED"))  # not via monitor
        self.assertTrue(self.monitor("sup", "nope").startswith("NOTASSIGNED"))
        self.assertTrue(self.monitor("nobody", "c1").startswith("NOTASSIGNED"))
        # closed: still readable, through the agent who closed it
        self.assertEqual(self.fcall("omr_conv_close", "c1", "a", "resolved"), "closed")
        entries = [dict(zip(e[1][::2], e[1][1::2])) for e in self.monitor("sup", "c1")]
        self.assertEqual(entries[-1].get("event"), "closed")
        self.assertEqual(len(entries), 4)
        # once sup no longer supervises a, nothing of a's
        self.fcall("omr_agent_upsert", "sup", json.dumps({"supervises": ["b"]}))
        self.assertTrue(self.monitor("sup", "c1").startswith("NOTASSIGNED"))
        self.assertEqual(len(self.monitor("sup", "c2")), 1)

    def test_transferred_conversation_follows_its_holder(self):
        self.agent("a", "en", 1)
        self.agent("b", "en", 1, available=False)
        self.supervisor("sup", ["a"])
        self.start("c1")
        self.assertEqual(len(self.monitor("sup", "c1")), 1)
        self.fcall("omr_conv_transfer", "c1", "a", "agent", "b", "")
        self.assertTrue(self.monitor("sup", "c1").startswith("NOTASSIGNED"))  # queued for b

    def test_team_snapshot(self):
        self.agent("a", "en", {"chat": 3, "email": 1}, tenants=[T, "t2"])
        self.agent("b", "es", 1, available=False)
        self.fcall("omr_agent_presence", "b", "s-b", "break", "lunch")
        self.supervisor("sup", ["b", "ghost", "a"])
        self.start("c1")
        self.start("c2", tenant="t2")  # a's, but not in sup's tenant
        self.fcall("omr_conv_start", "c3", "tok", "en-GB", "en", "Kim", "chat", T, "", "{}",
                   "[]")
        team = self.fcall("omr_supervisor_team", "sup")
        self.assertEqual([t[0] for t in team], ["b", "a"])  # its order; ghost left out
        b, a = team
        self.assertEqual(b[:6], ["b", "B", "break", "lunch", [0, 0, 0], [1, 0, 0]])
        self.assertEqual(b[6], [])
        self.assertEqual(a[:6], ["a", "A", "available", "", [3, 0, 0], [3, 1, 0]])
        self.assertEqual(a[6], [["c1", "cust", "en", "default", "assigned", T],
                                ["c3", "Kim", "en-GB", "default", "assigned", T]])
        self.assertEqual(self.fcall("omr_supervisor_team", "a"), [])  # supervises nobody
        self.assertTrue(self.fcall("omr_supervisor_team", "nobody").startswith("NOAGENT"))


if __name__ == "__main__":
    unittest.main(verbosity=2)
