"""test_language_edges.py - language as a routing dimension, and supervisors.

Each test asserts documented behaviour (docs/ROUTING.md, docs/PROTOCOL.md, README);
the first four failed against the build they were written for:

1. explain named the fallback language (en) when a bilingual agent (es:10, en:10) that
   freed up took a Spanish chat at the ladder step that also accepts English: the
   agent's slots are walked in sorted order, and the `en` slot found it first
   (pull_waiting); best_agent, the other path, said `es`.
2. the same, through the daemon and `omnirouterctl explain`.
3. a Spanish customer at the step that accepts English agents was told position 1
   while an English chat that waited longer went to the next English agent first: the
   position counted only the same language.

The others document what held: fallback timing, proficiency, tags at every entry,
supervisors' tenants, transfers and read-only monitoring.

    OMR_BUILD_DIR=build/asan python3 tests/integration/test_language_edges.py [NAME...]
"""

import asyncio
import json
import os
import subprocess
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from omr_harness import (DAEMON_BIN, Agent, Customer, add_agent, ctl, log,  # noqa: E402
                         poll, run_tests, time_limit)
from lua_harness import P, T, LuaTestCase, as_run_test, es_then_en  # noqa: E402


class ReviewLua(LuaTestCase):
    def supervisor(self, sid, supervises, tenants=None):
        spec = {"name": sid.upper(), "tenants": tenants or [T], "languages": {"en": 10},
                "capacity": {"chat": 1}, "supervises": supervises}
        self.assertIn(self.fcall("omr_agent_upsert", sid, json.dumps(spec)),
                      ("created", "updated"))

    # =====================================================================
    # Defects
    # =====================================================================

    def test_explain_language_matched_is_the_agents_own_for_a_native_speaker(self):
        # ROUTING.md, Explanation: `omnirouterctl explain CONV` shows "the language
        # matched". A Spanish chat waited into the step that also accepts English;
        # then a bilingual agent (es:10, en:10) frees up and takes it. The agent
        # matched the chat in Spanish, its own language; pull_waiting
        # (20_route.lua) walks the agent's slots in sorted order, meets the
        # conversation first through the `en` slot (a fallback of that step) and
        # records language_matched = "en". (best_agent, the other path, says "es"
        # for the same agent and step: checked below.)
        self.rules(es_then_en(), blocking={})
        self.assertEqual(self.start("c1", "es-MX"), "queued")
        self.escalate("c1", 2)
        self.agent("bi", {"es": 10, "en": 10}, 1)  # logs in, becomes available: pulls c1
        self.assertEqual(self.conv("c1").get("agent"), "bi")
        got = self.explain("c1")
        self.assertEqual(got.get("language_matched"), "es",
                         f"bilingual es/en agent took an es-MX chat; explain says "
                         f"language_matched={got.get('language_matched')!r} "
                         f"(trigger {got.get('trigger')!r}, step {got.get('step')})")

    def test_position_is_a_lower_bound_across_languages(self):
        # PROTOCOL.md, customer `position`: "It is a lower bound: agents who also serve
        # other languages (those a later ladder step accepts, or who speak several of the
        # queue's languages) may take a conversation of another language waiting ahead
        # first." A Spanish chat at the step that accepts English speakers: an English
        # chat that waited longer goes to the English agent first (position 1, served
        # second: the bound), but never is the place higher than the truth (counting the
        # English chats ahead would tell it 2 when only a Spanish agent frees up).
        self.rules(es_then_en(), blocking={})
        self.agent("en1", "en", 1)
        self.assertEqual(self.start("busy", "en"), "assigned")  # en1 is full now
        self.assertEqual(self.start("e1", "en"), "queued")
        time.sleep(0.01)
        self.assertEqual(self.start("s1", "es"), "queued")
        self.escalate("s1", 2)
        self.assertEqual(self.fcall("omr_conv_position", "s1")[1], 1)
        self.fcall("omr_conv_close", "busy", "en1")  # the English agent frees up
        served = [c for c in ("e1", "s1") if self.conv(c)["state"] != "queued"]
        self.assertEqual(served, ["e1"])  # the English chat was ahead
        self.agent("es1", "es", 1)  # a Spanish agent: s1 is next, as told
        self.assertEqual(self.conv("s1").get("agent"), "es1")

    def test_transfer_to_an_agent_who_cannot_take_the_chat_is_refused(self):
        # PROTOCOL.md `bad-request`: "a transfer to a queue or agent that ... cannot take
        # the conversation". A Spanish chat transferred to an English-only colleague was
        # acked `transferred`, then waited for them (up to 120 s) and went to someone else
        # unseen: the agent who passed it on believed the colleague had it.
        self.rules({"name": "q", "languages": ["es", "en"]}, blocking={})
        self.agent("es1", "es", 2)
        self.agent("en1", "en", 2)
        self.agent("bi", {"es": 6, "en": 10}, 2, available=False)
        self.assertEqual(self.start("c1", "es-MX"), "assigned")
        self.assertEqual(self.conv("c1")["agent"], "es1")
        got = self.fcall("omr_conv_transfer", "c1", "es1", "agent", "en1", "note")
        self.assertTrue(str(got).startswith("BADARG"), f"transfer to en1 answered {got!r}")
        self.assertEqual((self.conv("c1")["state"], self.conv("c1")["agent"]), ("assigned", "es1"))
        # one who speaks it (away now: it waits for them) is fine
        self.assertEqual(self.fcall("omr_conv_transfer", "c1", "es1", "agent", "bi", "note"),
                         "transferred")
        self.check_invariants()

    # =====================================================================
    # What held (cheap regression tests)
    # =====================================================================

    def test_fallback_language_never_before_its_step(self):
        # ROUTING.md: "`languages` adds fallback languages (a Spanish conversation
        # accepts English speakers from that step on)".
        self.rules(es_then_en(), blocking={})
        self.agent("en1", "en", 1)
        self.assertEqual(self.start("c1", "es-MX"), "queued")
        # the English agent frees up again (a presence change pulls): still not before
        self.fcall("omr_agent_presence", "en1", "s-en1", "away")
        self.fcall("omr_agent_presence", "en1", "s-en1", "available")
        self.assertEqual(self.conv("c1")["state"], "queued")
        self.escalate("c1", 2)
        self.assertEqual(self.conv("c1").get("agent"), "en1")
        self.assertEqual(self.explain("c1").get("language_matched"), "en")
        self.assertIn("escalated", self.explain("c1").get("trigger", ""))
        self.check_invariants()

    def test_best_agent_path_matches_the_native_language(self):
        self.rules(es_then_en(), blocking={})
        self.agent("bi", {"es": 10, "en": 10}, 1, available=False)
        self.assertEqual(self.start("c1", "es"), "queued")
        self.escalate("c1", 2)
        self.fcall("omr_agent_presence", "bi", "s-bi", "available")
        self.fcall("omr_conv_close", "c1", "bi")
        self.assertEqual(self.start("c2", "ES-mx"), "assigned")
        self.assertEqual(self.explain("c2").get("language_matched"), "es")
        # ROUTING.md: explain shows "what triggered the decision (a new conversation, ...)"
        self.assertEqual(self.explain("c2").get("trigger"), "new conversation")

    def test_min_proficiency_applies_to_the_fallback_language(self):
        self.rules(es_then_en(min_proficiency=5), blocking={})
        self.agent("weak", {"en": 3}, 1)
        self.assertEqual(self.start("c1", "es"), "queued")
        self.escalate("c1", 2)
        self.assertEqual(self.conv("c1")["state"], "queued")
        self.agent("ok", {"en": 5}, 1)
        self.assertEqual(self.conv("c1").get("agent"), "ok")
        self.check_invariants()

    def test_supervisor_tenant_change_applies_at_next_request(self):
        self.rules({"name": "q"}, blocking={})
        self.agent("a", "en", 2, tenants=[T, "t2"])
        self.supervisor("sup", ["a"], tenants=[T])
        self.assertEqual(self.start("c1", tenant="t2"), "assigned")
        self.assertTrue(str(self.fcall("omr_supervisor_monitor", "sup", "c1"))
                        .startswith("NOTASSIGNED"))
        self.update("sup", tenants=[T, "t2"])
        self.assertIsInstance(self.fcall("omr_supervisor_monitor", "sup", "c1"), list)
        self.update("sup", tenants=[T])
        self.assertTrue(str(self.fcall("omr_supervisor_monitor", "sup", "c1"))
                        .startswith("NOTASSIGNED"))
        self.assertEqual(self.fcall("omr_supervisor_team", "sup")[0][6], [])

    def test_supervisor_loses_a_conversation_transferred_to_a_waited_for_agent(self):
        self.rules({"name": "q"}, blocking={})
        self.agent("a", "en", 1)
        self.agent("b", "en", 1, available=False)  # logged in, away: the transfer waits
        self.supervisor("sup", ["a"])
        self.assertEqual(self.start("c1"), "assigned")
        self.assertIsInstance(self.fcall("omr_supervisor_monitor", "sup", "c1"), list)
        self.assertEqual(self.fcall("omr_conv_transfer", "c1", "a", "agent", "b", "note"),
                         "transferred")
        self.assertTrue(str(self.fcall("omr_supervisor_monitor", "sup", "c1"))
                        .startswith("NOTASSIGNED"))
        self.assertEqual(self.fcall("omr_supervisor_team", "sup")[0][6], [])


# ==========================================================================
# Daemon-level
# ==========================================================================

ES_THEN_EN_YAML = """queues:
  - name: q
    languages: [es, en, zh]
    steps:
      - after_s: 1
        languages: [en]
"""


def daemon_with_queues(env, yaml_text, config=None):
    return env.daemon(env.redis(), config=config, queues=yaml_text)


def is_for(conv, kind=None):
    return lambda f: f.get("conversation_id") == conv and (kind is None or f.get("type") == kind)


@time_limit(60)
async def test_ctl_explain_names_the_chats_language_for_a_bilingual_agent(env):
    # ROUTING.md: "`omnirouterctl explain CONV` ... shows ... the language matched". A
    # Spanish (es-MX) chat waits into step 2 (English accepted too); then Ana, who
    # speaks Spanish natively (es:10, en:10), becomes available and takes it. The
    # explanation says the chat was matched in English.
    d = daemon_with_queues(env, ES_THEN_EN_YAML)
    tok = add_agent(d, "ana", "Ana", "es:10,en:10", 1)
    ana = Agent(d.url, "ana", tok)
    cust = Customer(d.url, "customer (es-MX)")
    try:
        await ana.login()
        w = await cust.hello(language="es-MX", name="María")
        assert w.get("state") == "queued", w
        await asyncio.sleep(2.0)  # step 2 (after 1 s) is reached; ticks every 200 ms
        await poll(lambda: json.loads(ctl(d, "--json", "explain", cust.conversation_id)
                                      .stdout).get("step") == 2, 10)  # (at a tick: a late one)
        await ana.presence("available")
        a = await ana.wait_item(is_for(cust.conversation_id, "assigned"), 10, "assigned")
        assert a.get("language") == "es-MX", a
        out = json.loads(ctl(d, "--json", "explain", cust.conversation_id).stdout)
        text = ctl(d, "explain", cust.conversation_id).stdout
        log(f"explain: {text.strip()}")
        assert out.get("step") == 2, out
        assert out.get("language_matched") == "es", (
            f"a Spanish speaker took an es-MX chat, but explain says language_matched="
            f"{out.get('language_matched')!r}:\n{text}")
    finally:
        for x in (ana, cust):
            await x.close()


@time_limit(60)
async def test_transfer_refusal_says_why(env):
    # PROTOCOL.md `bad-request` for a transfer to an agent "that cannot take the
    # conversation"; `reason` is for people: the desktop shows it.
    d = daemon_with_queues(env, ES_THEN_EN_YAML)
    ana = Agent(d.url, "ana", add_agent(d, "ana", "Ana", "es", 2))
    ed = Agent(d.url, "ed", add_agent(d, "ed", "Ed", "en", 2))
    cust = Customer(d.url, "customer (es)")
    try:
        for a in (ana, ed):
            await a.login()
        await ana.presence("available")
        await cust.hello(language="es", name="María")
        await ana.wait_item(is_for(cust.conversation_id, "assigned"), 10, "assigned")
        r = await ana.conn.request({"type": "transfer", "conversation_id": cust.conversation_id,
                                    "agent": "ed", "note": "he can help", "id": "t1"})
        assert r.get("code") == "bad-request" and "cannot take" in r.get("reason", ""), r
        await cust.send("sigo aqui")
        await ana.wait_item(lambda f: f.get("text") == "sigo aqui", 10, "still Ana's chat")
    finally:
        for x in (ana, ed, cust):
            await x.close()


@time_limit(60)
async def test_hello_language_tags(env):
    # PROTOCOL.md: `language` is a BCP-47 tag of at most 35 bytes (2-8 letters, then `-`
    # subtags of 1-8 letters or digits); routing matches its primary subtag.
    d = daemon_with_queues(env, ES_THEN_EN_YAML)
    es = Agent(d.url, "es1", add_agent(d, "es1", "Luis", "es", 5))
    zh = Agent(d.url, "zh1", add_agent(d, "zh1", "Wen", "zh", 5))
    custs = []
    try:
        for a in (es, zh):
            await a.login()
            await a.presence("available")
        for tag, agent in (("ES-mx", es), ("es-419", es), ("zh-Hant-TW", zh), ("ZH-hans", zh)):
            c = Customer(d.url, f"customer {tag}")
            custs.append(c)
            await c.hello(language=tag, name="X")
            item = await agent.wait_item(is_for(c.conversation_id, "assigned"), 10,
                                         f"assigned {tag}")
            assert item.get("language") == tag, item
        for bad in ("es_MX", "", "e", "es-", "es--MX", "español", "en-aaaaaaaa-bbbbbbbb-"
                    "cccccccc-dddddd", 42, "es-abcdefghi"):
            c = Customer(d.url, f"customer bad {bad!r}")
            custs.append(c)
            await c.connect()
            r = await c.conn.request({"type": "hello", "v": 1, "language": bad, "id": "h"})
            assert r.get("type") == "error" and r.get("code") == "bad-request", (bad, r)
    finally:
        for x in [es, zh] + custs:
            await x.close()


@time_limit(60)
def test_ctl_languages_values(env):
    # README: languages are BCP-47 tags reduced to the primary subtag, proficiency 1..10
    # (none means 10); exit 2 for a bad value; a roster's bad rows as FILE:LINE: reason.
    d = env.daemon(env.redis())
    add_agent(d, "ana", "Ana", "ES-mx:8, en-GB")
    got = json.loads(ctl(d, "--json", "agent", "show", "ana").stdout)
    assert got.get("languages") == {"es": 8, "en": 10}, got
    for bad in ("es_MX", "es:0", "es:11", "es,ES-mx", "es:", ":5", "", "es:abc", "es,,en"):
        p = ctl(d, "agent", "add", "--id", "bad", "--name", "B", "--languages", bad,
                check=False)
        assert p.returncode == 2 and p.stderr.strip(), (bad, p.returncode, p.stdout, p.stderr)
    p = ctl(d, "agent", "update", "--id", "ana", "--languages", "pt-BR:x", check=False)
    assert p.returncode == 2, (p.returncode, p.stderr)
    ctl(d, "agent", "update", "--id", "ana", "--languages", "pt-BR:7")
    got = json.loads(ctl(d, "--json", "agent", "show", "ana").stdout)
    assert got.get("languages") == {"pt": 7}, got
    roster = os.path.join(env.dir, "r.csv")
    with open(roster, "w") as f:
        f.write("id,name,languages\nbob,Bob,es-MX:7|en\ncid,Cid,es_MX\n")
    p = ctl(d, "agent", "import", roster, check=False)
    assert p.returncode == 1 and f"{roster}:3" in p.stderr + p.stdout, (p.returncode, p.stderr)


@time_limit(60)
def test_config_queue_language_errors(env):
    path = os.path.join(env.dir, "bad.yaml")
    for lang_line, where in (("    languages: [es_MX]\n", 3),
                             ("    steps:\n      - after_s: 5\n"
                              "        languages: [\"en US\"]\n", 5)):
        with open(path, "w") as f:
            f.write("queues:\n  - name: q\n" + lang_line)
        p = subprocess.run([DAEMON_BIN, "--check-config", "-c", path], capture_output=True,
                           text=True, timeout=30)
        out = p.stdout + p.stderr
        assert p.returncode != 0 and f"{path}:{where}:" in out, (lang_line, p.returncode, out)


@time_limit(60)
async def test_supervisor_cannot_write_to_a_monitored_conversation(env):
    # PROTOCOL.md, Supervisors: "It never writes to them: it cannot send, close or
    # transfer them, and it gets none of their items in its inbox."
    d = env.daemon(env.redis())
    bob = Agent(d.url, "bob", add_agent(d, "bob", "Bob", "es", 2))
    eve = Agent(d.url, "eve", add_agent(d, "eve", "Eve", "es", 2))
    sup = Agent(d.url, "sup", add_agent(d, "sup", "Sue", "en", 1,
                                        extra=("--supervises", "bob")), label="supervisor")
    cust = Customer(d.url, "customer")
    try:
        for a in (bob, eve, sup):
            await a.login()
        await bob.presence("available")
        await cust.hello(language="ES-mx", name="Ana")
        await cust.send("hola")
        await bob.wait_item(is_for(cust.conversation_id, "assigned"), 10, "assigned")
        await eve.presence("available")
        conv = cust.conversation_id
        r = await sup.conn.request({"type": "monitor", "conversation_id": conv, "id": "m1"})
        assert r.get("type") == "ack", r
        tries = [
            {"type": "message", "conversation_id": conv, "text": "hi from sup", "id": "w1"},
            {"type": "close", "conversation_id": conv, "id": "w2"},
            {"type": "transfer", "conversation_id": conv, "agent": "eve", "id": "w3"},
            {"type": "transfer", "conversation_id": conv, "queue": "default", "id": "w4"},
            {"type": "accept", "conversation_id": conv, "id": "w5"},
            {"type": "reject", "conversation_id": conv, "id": "w6"},
        ]
        for frame in tries:
            r = await sup.conn.request(frame)
            assert r.get("type") == "error" and r.get("code") == "not-assigned", (frame, r)
        await sup.conn.expect_open()
        await cust.send("sigo aqui")
        await bob.wait_item(lambda f: is_for(conv, "message")(f) and f.get("text") == "sigo aqui",
                            10, "second message")
        await asyncio.sleep(0.5)
        assert sup.order == [], sup.order
        assert not cust.agent_messages(), cust.order
        r = await sup.conn.request({"type": "team", "id": "t1"})
        assert r.get("type") == "ack", r
        team = [f for f in sup.conn.frames if f.get("type") == "team"]
        convs = [f for f in team if f.get("kind") == "conversation"]
        assert [(c["conversation_id"], c["language"]) for c in convs] == [(conv, "ES-mx")], team
    finally:
        for x in (bob, eve, sup, cust):
            await x.close()


def _lua(name):
    return as_run_test(ReviewLua, name)


LUA_FIXED = ["test_explain_language_matched_is_the_agents_own_for_a_native_speaker",
             "test_position_is_a_lower_bound_across_languages",
             "test_transfer_to_an_agent_who_cannot_take_the_chat_is_refused"]
LUA_HELD = ["test_fallback_language_never_before_its_step",
            "test_best_agent_path_matches_the_native_language",
            "test_min_proficiency_applies_to_the_fallback_language",
            "test_supervisor_tenant_change_applies_at_next_request",
            "test_supervisor_loses_a_conversation_transferred_to_a_waited_for_agent"]

if __name__ == "__main__":
    run_tests([_lua(n) for n in LUA_FIXED]
              + [test_ctl_explain_names_the_chats_language_for_a_bilingual_agent,
                 test_transfer_refusal_says_why]
              + [_lua(n) for n in LUA_HELD]
              + [test_hello_language_tags, test_ctl_languages_values,
                 test_config_queue_language_errors,
                 test_supervisor_cannot_write_to_a_monitored_conversation])
