"""test_chat_language.py - a customer chat is routed by language.

Agents en1 (en) and es1 (es) are online and available. Customers who declare
`es` or `es-MX` reach es1 only; `en` and no language (routing.default_language
= en) reach en1 only. Replies come back to the customer from the agent,
customer messages are acked with a stream-id seq, a message sent while no
agent is available is delivered after the assignment. Also --check-config and
--version.
"""

import asyncio
import os
import re
import subprocess
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from omr_harness import (DAEMON_BIN, SEQ_RE, SOURCE_DIR, Agent, Customer, add_agent,  # noqa: E402
                         agent_key, conv_key, log, run_tests, seq_key, time_limit)

QUIET_WINDOW = 1.5  # seconds an agent must stay silent to count as "got nothing"


def is_for(conv, kind=None):
    return lambda f: f.get("conversation_id") == conv and (kind is None or f.get("type") == kind)


def position(items, pred):
    for i, f in enumerate(items):
        if pred(f):
            return i
    raise AssertionError(f"no item matches in {items}")


def check_config(path):
    return subprocess.run([DAEMON_BIN, "--check-config", "-c", path], capture_output=True,
                          text=True, timeout=30)


def test_check_config_and_version(env):
    example = os.path.join(SOURCE_DIR, "config", "omnirouter.yaml")
    p = check_config(example)
    assert p.returncode == 0, (f"--check-config on the example config exited {p.returncode}:\n"
                               f"{p.stdout}{p.stderr}")

    cases = [
        ("unknown-key.yaml", "redis:\n  port: 6379\n  bogus_key: 1\n", 3, "bogus_key"),
        ("unknown-section.yaml", "log:\n  level: info\nnosuch:\n  x: 1\n", 3, "nosuch"),
        ("out-of-range.yaml", "redis:\n  port: 70000\n", 2, "port"),
    ]
    for name, text, line, word in cases:
        path = os.path.join(env.dir, name)
        with open(path, "w") as f:
            f.write(text)
        p = check_config(path)
        out = p.stdout + p.stderr
        assert p.returncode != 0, f"--check-config accepted {name}:\n{text}\noutput: {out}"
        want = re.compile(re.escape(path) + rf":{line}:[0-9]+")
        assert want.search(out), (f"--check-config on {name} should print {path}:{line}:COLUMN "
                                  f"(1-based line of the offending key); printed:\n{out}")
        assert word in out, f"--check-config on {name} should name {word!r}; printed:\n{out}"

    p = subprocess.run([DAEMON_BIN, "--version"], capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, f"--version exited {p.returncode}: {p.stderr}"
    assert re.search(r"[0-9]+\.[0-9]+\.[0-9]+", p.stdout + p.stderr), \
        f"--version prints no version number: {p.stdout!r} {p.stderr!r}"


async def start_agents(d):
    tok_en = add_agent(d, "en1", "Emma English", "en", 2)
    tok_es = add_agent(d, "es1", "Luis Núñez", "es", 2)
    en1 = Agent(d.url, "en1", tok_en)
    es1 = Agent(d.url, "es1", tok_es)
    w = await en1.login()
    assert w.get("name") == "Emma English" and w.get("languages") == ["en"] \
        and w.get("capacity") == 2, f"en1 welcome does not describe the agent: {w}"
    assert w.get("presence") == "away", f"login must not make an agent available: {w}"
    w = await es1.login()
    assert w.get("name") == "Luis Núñez" and w.get("languages") == ["es"], \
        f"es1 welcome does not describe the agent: {w}"
    return en1, es1


@time_limit(90)
async def test_language_routing(env):
    r = env.redis()
    d = env.daemon(r)
    en1, es1 = await start_agents(d)
    await en1.presence("available")
    await es1.presence("available")

    # es: only es1.
    ana = Customer(d.url, "customer ana (es)")
    await ana.hello(language="es", name="Ana")
    ack = await ana.send("hola, necesito ayuda", id="c-1")
    assert ack.get("id") == "c-1", f"ack must echo the message id: {ack}"
    a = await es1.wait_item(is_for(ana.conversation_id, "assigned"), 10,
                            f"assigned for ana's conversation {ana.conversation_id}")
    assert a.get("language") == "es" and a.get("customer_name") == "Ana" \
        and a.get("tenant") == "default", f"assigned item does not describe the chat: {a}"
    m = await es1.wait_item(lambda f: is_for(ana.conversation_id, "message")(f)
                            and f.get("id") == "c-1", 10, "ana's message c-1")
    assert m.get("from") == "customer" and m.get("text") == "hola, necesito ayuda", \
        f"es1 got a different message: {m}"
    assert position(es1.order, is_for(ana.conversation_id, "assigned")) < \
        position(es1.order, is_for(ana.conversation_id, "message")), \
        f"assigned must come before the messages: {es1.order}"

    ev = await ana.wait_item(lambda f: f.get("type") == "event" and f.get("event") == "assigned",
                             10, "assigned event")
    assert ev.get("name") == "Luis Núñez", f"assigned event should name the agent: {ev}"

    rep = await es1.reply(ana.conversation_id, "¡Hola! ¿En qué le ayudo?", id="a-1")
    assert rep.get("id") == "a-1", f"reply ack must echo the id: {rep}"
    got = await ana.wait_item(lambda f: f.get("type") == "message" and f.get("from") == "agent",
                              10, "the agent's reply")
    assert got.get("text") == "¡Hola! ¿En qué le ayudo?" and got.get("id") == "a-1" \
        and SEQ_RE.match(str(got.get("seq"))), f"customer got a different reply: {got}"
    env.expect(got.get("name") == "Luis Núñez",
               f"the agent's reply should carry the agent's name (PROTOCOL.md): {got}")

    # es-MX falls back to es.
    maria = Customer(d.url, "customer maria (es-MX)")
    await maria.hello(language="es-MX", name="María")
    await maria.send("buenas tardes", id="c-1")
    a = await es1.wait_item(is_for(maria.conversation_id, "assigned"), 10,
                            "assigned for maria's es-MX conversation")
    assert a.get("language") == "es-MX" and a.get("customer_name") == "María", \
        f"assigned item for es-MX: {a}"
    await es1.wait_item(lambda f: is_for(maria.conversation_id, "message")(f)
                        and f.get("text") == "buenas tardes", 10, "maria's message")

    # en and no language (default en): only en1.
    john = Customer(d.url, "customer john (en)")
    await john.hello(language="en", name="John")
    await john.send("hello there", id="c-1")
    await en1.wait_item(lambda f: is_for(john.conversation_id, "message")(f)
                        and f.get("text") == "hello there", 10, "john's message")
    nolang = Customer(d.url, "customer without language")
    await nolang.hello(name="Pat")
    await nolang.send("hi", id="c-1")
    await en1.wait_item(is_for(nolang.conversation_id, "assigned"), 10,
                        "assigned for a customer without language (default en)")

    await asyncio.sleep(QUIET_WINDOW)
    wrong = [f for f in en1.order if f.get("conversation_id") in
             (ana.conversation_id, maria.conversation_id)]
    assert not wrong, f"en1 received items of Spanish conversations: {wrong}"
    wrong = [f for f in es1.order if f.get("conversation_id") in
             (john.conversation_id, nolang.conversation_id)]
    assert not wrong, f"es1 received items of English conversations: {wrong}"
    assert len(es1.assigned()) == 2 and len(en1.assigned()) == 2, \
        f"each agent should hold exactly 2 assignments: es1 {es1.assigned()} en1 {en1.assigned()}"

    # Later messages follow the assignment.
    ack2 = await ana.send("segundo mensaje", id="c-2")
    assert seq_key(ack2["seq"]) > seq_key(ack["seq"]), f"seqs must grow: {ack} then {ack2}"
    await es1.wait_item(lambda f: is_for(ana.conversation_id, "message")(f)
                        and f.get("id") == "c-2", 10, "ana's second message")

    # Another agent cannot write into ana's conversation.
    bad = await en1.reply(ana.conversation_id, "intruder", expect_ack=False)
    assert bad.get("type") == "error" and bad.get("code") == "not-assigned", \
        f"en1 replying in es1's conversation must get not-assigned: {bad}"

    # The stored transcript, as a reloaded page sees it.
    again = Customer(d.url, "customer ana (reload)")
    again.conversation_id, again.resume_token = ana.conversation_id, ana.resume_token
    await again.resume(after=None)
    await again.wait_item(lambda f: f.get("type") == "message" and f.get("id") == "c-2",
                          10, "transcript up to c-2")
    transcript = [(f.get("from"), f.get("id"), f.get("text")) for f in again.order
                  if f.get("type") == "message"]
    assert transcript == [("customer", "c-1", "hola, necesito ayuda"),
                          ("agent", "a-1", "¡Hola! ¿En qué le ayudo?"),
                          ("customer", "c-2", "segundo mensaje")], \
        f"transcript after resume is wrong: {transcript}"
    assert not any(f.get("text") == "intruder" for f in again.order), "a refused reply was stored"
    seqs = [f["seq"] for f in again.order]
    assert seqs == sorted(seqs, key=seq_key), f"transcript not in seq order: {seqs}"
    await again.close()

    # Closing: the customer sees it, further messages are refused, Redis agrees.
    await es1.close_conv(ana.conversation_id)
    await ana.wait_item(lambda f: f.get("type") == "event" and f.get("event") == "closed", 10,
                        "closed event")
    refused = await ana.conn.request({"type": "message", "id": "c-3", "text": "¿sigue ahí?"})
    assert refused.get("type") == "error" and refused.get("code") == "closed", \
        f"a message in a closed conversation must get error closed: {refused}"
    await ana.conn.expect_open()
    rc = r.client()
    conv = rc.hgetall(conv_key(ana.conversation_id))
    assert conv.get("state") == "closed" and conv.get("agent") == "es1" \
        and conv.get("lang", "es").startswith("es"), f"conversation hash after close: {conv}"
    members = rc.cmd("SMEMBERS", agent_key("es1") + ":convs")
    assert ana.conversation_id not in members and maria.conversation_id in members, \
        f"es1 convs set after closing ana's chat: {members}"
    rc.close()
    for c in (ana, maria, john, nolang):
        await c.close()
    await en1.close()
    await es1.close()
    d.stop()


@time_limit(90)
async def test_message_before_agent_available(env):
    r = env.redis()
    d = env.daemon(r)
    en1, es1 = await start_agents(d)
    await en1.presence("available")  # es1 stays away

    cust = Customer(d.url, "customer (es, queued)")
    w = await cust.hello(language="es", name="Carmen")
    assert w.get("state") == "queued", f"no Spanish agent available, state must be queued: {w}"
    await cust.send("primero", id="c-1")
    await cust.send("segundo", id="c-2")
    await asyncio.sleep(QUIET_WINDOW)
    assert not es1.order and not en1.order, \
        f"nothing may be delivered while no es agent is available: es1 {es1.order} en1 {en1.order}"
    rc = r.client()
    conv = rc.hgetall(conv_key(cust.conversation_id))
    assert conv.get("state") == "queued", f"conversation hash while waiting: {conv}"

    log("es1 becomes available")
    await es1.presence("available")
    await es1.wait_item(is_for(cust.conversation_id, "assigned"), 10, "assigned after available")
    await es1.wait_item(lambda f: is_for(cust.conversation_id, "message")(f)
                        and f.get("id") == "c-2", 10, "both queued messages")
    order = [(f["type"], f.get("id")) for f in es1.order]
    assert order == [("assigned", None), ("message", "c-1"), ("message", "c-2")], \
        f"es1 must get assigned, then the queued messages in order: {order}"
    assert [f.get("text") for f in es1.messages()] == ["primero", "segundo"]

    await es1.reply(cust.conversation_id, "Ya estoy aquí")
    got = await cust.wait_item(lambda f: f.get("type") == "message" and f.get("from") == "agent",
                               10, "the reply after a queued start")
    assert got.get("text") == "Ya estoy aquí", got
    conv = rc.hgetall(conv_key(cust.conversation_id))
    assert conv.get("state") == "assigned" and conv.get("agent") == "es1", \
        f"conversation hash after assignment: {conv}"
    assert int(conv.get("assigned_ms", 0)) >= int(conv.get("enqueued_ms", 1)), conv
    await asyncio.sleep(0.5)
    assert not en1.order, f"en1 must not get the Spanish conversation: {en1.order}"
    rc.close()
    await cust.close()
    await en1.close()
    await es1.close()
    d.stop()


if __name__ == "__main__":
    run_tests([test_check_config_and_version, test_language_routing,
               test_message_before_agent_available])
