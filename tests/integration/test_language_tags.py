"""test_language_tags.py - language tags as real clients send them, and a chat that came in
the wrong language (a review of language handling). Each test failed against the build it
was written for:

1. Deprecated ISO 639 codes that Java (Locale.getLanguage() before JDK 17), Android and
   older CRMs still send (iw, in, ji, mo, jw) never reached the agents registered with the
   current codes (he, id, yi, ro, jv): routing compared codes as written, so such a chat
   waited for ever while a Hebrew agent sat free. The same for Tagalog (tl, which the
   shipped chat page sends) against agents registered as Filipino (fil), for the extended
   form zh-yue (Cantonese), which went to a Mandarin (zh) agent, and for zh-min-nan and
   cmn. RFC 5646 4.5 and CLDR canonicalize them; so does routing now.
2. "und" (undetermined, Java's Locale.ROOT) was a language nobody speaks: it is served like
   a hello without a language (routing.default_language).
3. An agent who got a chat in the wrong language could not hand it to someone who speaks
   the customer's: a transfer to queue "spanish" was acknowledged and routed by the chat's
   English tag to another English speaker; one to a Spanish agent was refused. A transfer
   now says the customer's language (`language`), and a queue transfer in a language the
   queue is not for is refused.
4. Traditional and Simplified Chinese were one language (zh): a Taiwanese customer's chat
   went to an agent who reads only Simplified. Chinese is routed by script now.

    OMR_BUILD_DIR=build/asan python3 tests/integration/test_language_tags.py [NAME...]
"""

import json
import os
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from omr_harness import Agent, Customer, add_agent, ctl, run_tests, time_limit  # noqa: E402

CODES = [("iw-IL", "he"), ("in-ID", "id"), ("ji", "yi"), ("mo", "ro"), ("jw", "jv"),
         ("tl", "fil"), ("zh-yue-HK", "yue"), ("zh-cmn", "zh"), ("cmn", "zh"),
         ("zh-min-nan", "nan")]


def is_for(conv, kind=None):
    return lambda f: f.get("conversation_id") == conv and (kind is None or f.get("type") == kind)


def conv_field(d, conv, field):
    return d.redis.client().hgetall(f"omr:{{default}}:conv:{conv}").get(field)


@time_limit(90)
async def test_old_and_alias_codes_reach_agents_of_the_current_code(env):
    d = env.daemon(env.redis(), queues="queues:\n  - name: hebrew\n    languages: [he]\n"
                                       "  - name: general\n")
    agents = {}
    try:
        for lang in sorted({code for _, code in CODES}):
            a = Agent(d.url, f"a-{lang}", add_agent(d, f"a-{lang}", lang, lang, 5))
            await a.login()
            await a.presence("available")
            agents[lang] = a
        for tag, code in CODES:
            c = Customer(d.url, f"customer {tag}")
            await c.hello(language=tag, name="X")
            item = await agents[code].wait_item(is_for(c.conversation_id, "assigned"), 10,
                                                f"{tag} at the {code} agent")
            assert item.get("language") == tag, item  # the agent sees the tag as sent
            await c.close()
        # the queue for Hebrew takes a chat tagged iw-IL
        c = Customer(d.url, "customer iw")
        await c.hello(language="iw-IL", name="X")
        await agents["he"].wait_item(is_for(c.conversation_id, "assigned"), 10, "iw-IL")
        assert conv_field(d, c.conversation_id, "queue") == "hebrew"
        await c.close()
        # an agent's languages are the same codes: iw and he are one language
        p = ctl(d, "agent", "add", "--id", "x", "--name", "X", "--languages", "iw,he",
                check=False)
        assert p.returncode == 2 and "twice" in p.stderr, (p.returncode, p.stderr)
        ctl(d, "agent", "add", "--id", "y", "--name", "Y", "--languages", "iw:7,tl:5")
        got = json.loads(ctl(d, "--json", "agent", "show", "y").stdout)
        assert got.get("languages") == {"he": 7, "fil": 5}, got
    finally:
        for a in agents.values():
            await a.close()


@time_limit(60)
async def test_agents_stored_with_old_codes_are_read_as_current(env):
    """An agent an earlier version stored with `iw` (and `tl`) would no longer match the
    chats it used to get, now tagged `he`: it is read as `he`, its highest proficiency kept."""
    d = env.daemon(env.redis())
    token = add_agent(d, "old", "Old", "en", 2)
    c = d.redis.client()
    key = "omr:{default}:agent:old"
    assert c.cmd("HSET", key, "languages", json.dumps({"iw": 6, "he": 8, "tl": 5})) == 0
    got = json.loads(ctl(d, "--json", "agent", "show", "old").stdout)
    assert got.get("languages") == {"he": 8, "fil": 5}, got
    a = Agent(d.url, "old", token)
    cust = Customer(d.url, "customer iw")
    try:
        await a.login()
        await a.presence("available")
        await cust.hello(language="iw-IL", name="X")
        await a.wait_item(is_for(cust.conversation_id, "assigned"), 10, "iw-IL at old")
    finally:
        await a.close()
        await cust.close()


@time_limit(60)
async def test_undetermined_language_is_the_default(env):
    d = env.daemon(env.redis())
    en = Agent(d.url, "en1", add_agent(d, "en1", "Ed", "en", 2))
    c = Customer(d.url, "customer und")
    try:
        await en.login()
        await en.presence("available")
        await c.hello(language="und", name="X")
        item = await en.wait_item(is_for(c.conversation_id, "assigned"), 10, "und at en1")
        assert item.get("language") == "en", item
    finally:
        await en.close()
        await c.close()


SPANISH_YAML = """queues:
  - name: spanish
    languages: [es]
  - name: general
"""


@time_limit(90)
async def test_transfer_names_the_customers_language(env):
    d = env.daemon(env.redis(), queues=SPANISH_YAML)
    en1 = Agent(d.url, "en1", add_agent(d, "en1", "Ed", "en", 3))
    en2 = Agent(d.url, "en2", add_agent(d, "en2", "Eve", "en", 3))
    es1 = Agent(d.url, "es1", add_agent(d, "es1", "Luis", "es", 3))
    es2 = Agent(d.url, "es2", add_agent(d, "es2", "Ana", "es", 3))
    c1, c2 = Customer(d.url, "customer 1"), Customer(d.url, "customer 2")
    try:
        await en1.login()
        await en1.presence("available")
        for c in (c1, c2):  # the page was left on English
            await c.hello(language="en", name="María")
            await en1.wait_item(is_for(c.conversation_id, "assigned"), 10, "at en1")
        for a in (en2, es1, es2):
            await a.login()
        for a in (en2, es1):
            await a.presence("available")

        # to the Spanish queue without saying the language: refused, still en1's
        r = await en1.conn.request({"type": "transfer", "conversation_id": c1.conversation_id,
                                    "queue": "spanish", "id": "t1"})
        assert r.get("type") == "error" and r.get("code") == "bad-request", r
        assert conv_field(d, c1.conversation_id, "agent") == "en1"
        # saying it: a Spanish agent takes it, in Spanish
        r = await en1.conn.request({"type": "transfer", "conversation_id": c1.conversation_id,
                                    "queue": "spanish", "language": "es-MX", "id": "t2",
                                    "note": "habla español"})
        assert r.get("type") == "ack", r
        item = await es1.wait_item(is_for(c1.conversation_id, "assigned"), 10, "c1 at es1")
        assert item.get("language") == "es-MX", item
        assert not [f for f in en2.items.values() if is_for(c1.conversation_id)(f)]
        out = json.loads(ctl(d, "--json", "explain", c1.conversation_id).stdout)
        assert out.get("language_matched") == "es" and out.get("queue") == "spanish", out
        assert "language es" in json.dumps(out), out

        # to a Spanish agent: refused in English, taken when the language is said
        r = await en1.conn.request({"type": "transfer", "conversation_id": c2.conversation_id,
                                    "agent": "es2", "id": "t3"})
        assert r.get("type") == "error" and r.get("code") == "bad-request", r
        r = await en1.conn.request({"type": "transfer", "conversation_id": c2.conversation_id,
                                    "agent": "es2", "language": "es", "id": "t4"})
        assert r.get("type") == "ack", r
        # es2 is not available yet: it waits for es2, and explain says why
        out = json.loads(ctl(d, "--json", "explain", c2.conversation_id).stdout)
        assert out.get("state") == "queued" and out.get("waiting_for") == "es2", out
        assert out.get("trigger") == "transferred to agent es2 by en1 (language es)", out
        assert out.get("language") == "es", out
        text = ctl(d, "explain", c2.conversation_id).stdout
        assert "trigger       transferred to agent es2 by en1 (language es)" in text, text
        await es2.presence("available")
        item = await es2.wait_item(is_for(c2.conversation_id, "assigned"), 10, "c2 at es2")
        assert item.get("language") == "es", item
        # a tag that is not one
        c3 = Customer(d.url, "customer 3")
        await c3.hello(language="en", name="X")
        holder = en1 if conv_field(d, c3.conversation_id, "agent") == "en1" else en2
        await holder.wait_item(is_for(c3.conversation_id, "assigned"), 10, "c3 assigned")
        for bad in ("es_MX", "", 5):
            r = await holder.conn.request({"type": "transfer", "id": f"b{bad}",
                                           "conversation_id": c3.conversation_id,
                                           "queue": "spanish", "language": bad})
            assert r.get("code") == "bad-request" and "BCP-47" in r.get("reason", ""), (bad, r)
        await c3.close()
    finally:
        for x in (en1, en2, es1, es2, c1, c2):
            await x.close()


CHINESE_YAML = """queues:
  - name: chinese
    languages: [zh]
  - name: general
"""


@time_limit(90)
async def test_chinese_is_routed_by_script(env):
    """Traditional (Taiwan, Hong Kong) and Simplified (mainland) Chinese were one language,
    zh: a Taiwanese customer's chat went to whichever zh agent was first, one who reads only
    Simplified included. The script decides now (a Hant/Hans subtag, else the region); an
    agent given plain zh serves both, and a queue for zh takes both."""
    d = env.daemon(env.redis(), queues=CHINESE_YAML)
    tw = Agent(d.url, "tw", add_agent(d, "tw", "Mei", "zh-TW:9", 9))
    cn = Agent(d.url, "cn", add_agent(d, "cn", "Wei", "zh-Hans:9", 9))
    gen = Agent(d.url, "gen", add_agent(d, "gen", "Li", "zh:8", 9))
    custs = []

    async def chat(tag, at):
        c = Customer(d.url, f"customer {tag}")
        custs.append(c)
        await c.hello(language=tag, name="X")
        if at is not None:
            item = await at.wait_item(is_for(c.conversation_id, "assigned"), 10, f"{tag} at {at}")
            assert item.get("language") == tag, item
        return c

    try:
        got = json.loads(ctl(d, "--json", "agent", "show", "tw").stdout)
        assert got.get("languages") == {"zh-Hant": 9}, got
        for a in (tw, cn, gen):
            await a.login()
        for a in (tw, cn):
            await a.presence("available")
        for tag in ("zh-TW", "zh-Hant", "zh-hk", "zh-Hant-CN", "cmn-TW"):
            c = await chat(tag, tw)
            assert conv_field(d, c.conversation_id, "queue") == "chinese", tag
            assert conv_field(d, c.conversation_id, "rlang") == "zh-Hant", tag
        out = json.loads(ctl(d, "--json", "explain", c.conversation_id).stdout)
        assert out.get("language_matched") == "zh-Hant" and out.get("agent") == "tw", out
        for tag in ("zh-CN", "zh-SG", "zh-Hans-HK"):
            c = await chat(tag, cn)
            assert conv_field(d, c.conversation_id, "queue") == "chinese", tag
        # plain zh: either script's agent serves it
        c = await chat("zh", None)
        await (tw if conv_field(d, c.conversation_id, "agent") == "tw" else cn).wait_item(
            is_for(c.conversation_id, "assigned"), 10, "zh at tw or cn")
        assert conv_field(d, c.conversation_id, "agent") in ("tw", "cn")
        # Simplified with only the Traditional agent free: it waits, and a Traditional
        # chat that comes after it is served
        await cn.presence("away")
        waiting = await chat("zh-CN", None)
        await chat("zh-TW", tw)
        assert conv_field(d, waiting.conversation_id, "state") == "queued"
        assert not [f for f in tw.items.values() if is_for(waiting.conversation_id)(f)]
        # the agent of plain zh takes it, and a Traditional one too
        await gen.presence("available")
        await gen.wait_item(is_for(waiting.conversation_id, "assigned"), 10, "zh-CN at gen")
        await tw.presence("away")
        await chat("zh-MO", gen)
    finally:
        for x in [tw, cn, gen] + custs:
            await x.close()


if __name__ == "__main__":
    run_tests([test_old_and_alias_codes_reach_agents_of_the_current_code,
               test_agents_stored_with_old_codes_are_read_as_current,
               test_undetermined_language_is_the_default,
               test_transfer_names_the_customers_language,
               test_chinese_is_routed_by_script])
