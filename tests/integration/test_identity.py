"""test_identity.py - identity verification of a customer's hello (chat.identity_secret).

With a secret, the real daemon takes a customer_id only with its customer_signature, the hex
HMAC-SHA256 of TENANT|CUSTOMER_ID (computed here with Python's hmac, as a site would): a signed
id reaches the agent, and a returning signed customer's agent gets the earlier conversation in
`history`; an unsigned id, a wrong signature, or another tenant's signature get `unauthorized`
and a close 1008, create no conversation and reach no agent; a hello without customer_id is
anonymous and accepted; a signature without customer_id is a bad request. The signature covers
the hello's attributes too (TENANT|CUSTOMER_ID, "\n", then NAME=VALUE "\n" in name order): a
signed {"tier":"gold"} lands in the VIP queue, the same hello signed without its attributes
(a forged tier) or attributes without a customer_id are refused and store nothing. Without a
secret an unsigned id is taken as before, and a SIGHUP that adds the secret applies to the next
hello while the conversation already open still resumes.
"""

import asyncio
import hashlib
import hmac
import json
import os
import signal
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from omr_harness import (Agent, Customer, add_agent, ctl, log, run_tests,  # noqa: E402
                         time_limit)

SECRET = "test-identity-secret-9f8e7d6c5b4a"
QUIET_WINDOW = 1.0  # seconds an agent must stay silent to count as "got nothing"


# A VIP queue of gold customers, with priority, and one for everybody else.
QUEUES = """
queues:
  - name: vip
    attributes: {tier: gold}
    priority: 8
  - name: general
"""


def sign(tenant, customer_id, secret=SECRET, attributes=None):
    msg = f"{tenant}|{customer_id}"
    if attributes:
        msg += "\n" + "".join(f"{k}={attributes[k]}\n" for k in sorted(attributes))
    return hmac.new(secret.encode(), msg.encode(), hashlib.sha256).hexdigest()


def assigned_for(conv):
    return lambda f: f.get("type") == "assigned" and f.get("conversation_id") == conv


async def start_agent(d, agent_id="ana"):
    tok = add_agent(d, agent_id, "Ana", "en", 2)
    agent = Agent(d.url, agent_id, tok)
    await agent.login()
    await agent.presence("available")
    return agent


async def refused_hello(d, label, code, close, **fields):
    """Sends a hello that must be refused with `code`; `close` is the close code expected,
    None when the connection must stay open."""
    c = Customer(d.url, label)
    await c.connect()
    await c.conn.send({"type": "hello", "v": 1, "language": "en", "id": "h-1", **fields})
    err = await c.conn.expect_error(code, echo_id="h-1")
    if close is None:
        await c.conn.expect_open()
        await c.close()
        return err
    got = await c.conn.wait_closed(5, f"{code} refusal")
    assert got == (close, code), f"{label}: want close ({close}, {code!r}), got {got}; {err}"
    assert c.conn.find(lambda f: f.get("type") == "welcome") is None, \
        f"{label}: a refused hello must not be welcomed: {c.conn.frames}"
    return err


def conversations(redis):
    """Ids of the conversations stored in Redis (conv:ID hashes, not their :log or :ids)."""
    return {k.split(":conv:")[1] for k in redis.client().keys("omr:{default}:conv:*")
            if ":" not in k.split(":conv:")[1]}


async def log_shows(d, text, timeout=10):
    deadline = time.monotonic() + timeout
    while text not in d.log_text():
        if time.monotonic() > deadline:
            raise AssertionError(f"{d.name}: no {text!r} in the log within {timeout}s")
        await asyncio.sleep(0.05)


async def agent_stays_quiet(agent, what):
    before = len(agent.order)
    await asyncio.sleep(QUIET_WINDOW)
    new = [f for f in agent.order[before:] if f.get("type") == "assigned"]
    assert not new, f"{agent.label} was assigned {what}: {new}"


@time_limit(90)
async def test_signed_ids_only(env):
    r = env.redis()
    d = env.daemon(r, config={"chat": {"identity_secret": SECRET}})
    assert "identity_verification=on" in d.log_text(), \
        "the start-up log should say identity verification is on"
    assert SECRET not in d.log_text(), "the secret must never be logged"
    ana = await start_agent(d)

    # A signed id (default tenant) is taken, and the agent sees it.
    kim = Customer(d.url, "customer kim (signed)")
    await kim.hello(language="en", name="Kim", customer_id="cust-42",
                    customer_signature=sign("default", "cust-42"))
    first = kim.conversation_id
    a = await ana.wait_item(assigned_for(first), 10, "assigned for kim's conversation")
    assert a.get("customer_id") == "cust-42", f"the agent must see the signed id: {a}"
    assert a.get("history") == [], f"kim has no earlier conversation yet: {a}"
    await kim.send("my order is late")
    await ana.close_conv(first)
    await kim.close()

    # Anyone else claiming cust-42: no signature, a wrong one, another customer's, another
    # tenant's. Each is refused and closed; none reaches Redis or the agent.
    stored = conversations(r)
    assert first in stored, f"kim's conversation {first} should be in Redis: {stored}"
    cases = [
        ("no signature", {"customer_id": "cust-42"}),
        ("garbage", {"customer_id": "cust-42", "customer_signature": "0" * 64}),
        ("another customer's", {"customer_id": "cust-42",
                                "customer_signature": sign("default", "cust-43")}),
        ("another secret's", {"customer_id": "cust-42",
                              "customer_signature": sign("default", "cust-42", "x" * 32)}),
        ("another tenant's", {"tenant": "acme", "customer_id": "cust-42",
                              "customer_signature": sign("default", "cust-42")}),
        ("the default tenant's, for acme's", {"customer_id": "cust-42",
                                              "customer_signature": sign("acme", "cust-42")}),
    ]
    for what, fields in cases:
        err = await refused_hello(d, f"impostor ({what})", "unauthorized", 1008, **fields)
        log(f"{what}: {err.get('reason')}")
    assert conversations(r) == stored, \
        f"refused hellos stored conversations: {conversations(r) - stored}"
    await agent_stays_quiet(ana, "a conversation of a refused hello")

    # A signature without an id to sign: a bad request, the connection stays open.
    await refused_hello(d, "signature alone", "bad-request", None,
                        customer_signature=sign("default", "cust-42"))

    # kim returns, signed again: the agent gets the earlier conversation to read.
    kim2 = Customer(d.url, "customer kim (returning)")
    await kim2.hello(language="en", customer_id="cust-42",
                     customer_signature=sign("default", "cust-42"))
    a = await ana.wait_item(assigned_for(kim2.conversation_id), 10, "assigned for kim's return")
    assert a.get("customer_id") == "cust-42" and a.get("history") == [first], \
        f"the returning signed customer's agent should see {first} in history: {a}"
    await ana.close_conv(kim2.conversation_id)
    await kim2.close()

    # Anonymous: no customer_id, accepted; the agent sees no id and no history.
    anon = Customer(d.url, "customer (anonymous)")
    await anon.hello(language="en")
    a = await ana.wait_item(assigned_for(anon.conversation_id), 10, "assigned for anonymous")
    assert "customer_id" not in a and a.get("history") == [], \
        f"an anonymous customer has no id and no history: {a}"
    await ana.close_conv(anon.conversation_id)
    await anon.close()

    # Another tenant, signed for it: accepted (no agent serves acme: it waits).
    lee = Customer(d.url, "customer lee (acme)")
    w = await lee.hello(language="en", tenant="acme", customer_id="cust-42",
                        customer_signature=sign("acme", "cust-42"))
    assert w.get("tenant") == "acme" and w.get("state") == "queued", \
        f"acme's signed customer should be queued in acme: {w}"
    await lee.close()
    await ana.close()
    assert SECRET not in d.log_text(), "the secret must never be logged"


def queue_of(d, conv):
    """The queue that routed conv (omnirouterctl explain)."""
    return json.loads(ctl(d, "--json", "explain", conv).stdout).get("queue")


@time_limit(90)
async def test_signed_attributes(env):
    r = env.redis()
    d = env.daemon(r, config={"chat": {"identity_secret": SECRET}}, start=False)
    with open(d.cfg_path, "a") as f:
        f.write(QUEUES)
    d.start()
    ana = await start_agent(d)
    gold = {"tier": "gold"}

    # Signed with its attributes: the VIP queue takes it.
    kim = Customer(d.url, "customer kim (signed gold)")
    await kim.hello(language="en", customer_id="cust-42", attributes=gold,
                    customer_signature=sign("default", "cust-42", attributes=gold))
    await ana.wait_item(assigned_for(kim.conversation_id), 10, "assigned for kim (gold)")
    assert queue_of(d, kim.conversation_id) == "vip", "a signed gold customer goes to vip"
    await ana.close_conv(kim.conversation_id)
    await kim.close()

    # Signed without attributes: the general queue.
    lee = Customer(d.url, "customer lee (signed, no attributes)")
    await lee.hello(language="en", customer_id="cust-43",
                    customer_signature=sign("default", "cust-43"))
    await ana.wait_item(assigned_for(lee.conversation_id), 10, "assigned for lee")
    assert queue_of(d, lee.conversation_id) == "general", "no attributes, no vip"
    await ana.close_conv(lee.conversation_id)
    await lee.close()

    # A forged tier: the id's own signature, which covers no attributes, with tier=gold added;
    # a signature over another tier; attributes without an id to sign. Refused, closed,
    # nothing stored, nothing routed.
    stored = conversations(r)
    cases = [
        ("forged tier", {"customer_id": "cust-43", "attributes": gold,
                         "customer_signature": sign("default", "cust-43")}),
        ("another tier's", {"customer_id": "cust-42", "attributes": gold,
                            "customer_signature": sign("default", "cust-42",
                                                       attributes={"tier": "silver"})}),
        ("attributes added", {"customer_id": "cust-42",
                              "attributes": {"tier": "gold", "plan": "pro"},
                              "customer_signature": sign("default", "cust-42",
                                                         attributes=gold)}),
        ("no customer_id", {"attributes": gold}),
    ]
    for what, fields in cases:
        err = await refused_hello(d, f"impostor ({what})", "unauthorized", 1008, **fields)
        log(f"{what}: {err.get('reason')}")
    assert "attributes" in err.get("reason", ""), \
        f"attributes without customer_id: the reason should say why: {err}"
    assert conversations(r) == stored, \
        f"refused hellos stored conversations: {conversations(r) - stored}"
    await agent_stays_quiet(ana, "a conversation of a refused hello")
    await ana.close()


@time_limit(90)
async def test_no_secret_then_reload(env):
    r = env.redis()
    d = env.daemon(r)
    assert "identity_verification=off" in d.log_text(), \
        "the start-up log should say identity verification is off"
    ana = await start_agent(d)

    # Without a secret an unsigned id is a claim taken as given; a signature is ignored.
    bob = Customer(d.url, "customer bob (unsigned)")
    await bob.hello(language="en", customer_id="cust-7")
    a = await ana.wait_item(assigned_for(bob.conversation_id), 10, "assigned for bob")
    assert a.get("customer_id") == "cust-7", f"the agent must see the unsigned id: {a}"
    await bob.send("hello")
    eve = Customer(d.url, "customer eve (nonsense signature)")
    await eve.hello(language="en", customer_id="cust-8", customer_signature="nonsense")
    await eve.close()

    # SIGHUP with a secret: the next unsigned hello is refused, a signed one is taken, and
    # bob's open conversation still resumes (the resume token proves it).
    with open(d.cfg_path, "a") as f:
        f.write(f'chat:\n  identity_secret: "{SECRET}"\n')
    d.proc.send_signal(signal.SIGHUP)
    await log_shows(d, "identity_verification=on")
    await refused_hello(d, "unsigned after reload", "unauthorized", 1008, customer_id="cust-7")
    signed = Customer(d.url, "customer (signed after reload)")
    await signed.hello(language="en", customer_id="cust-9",
                       customer_signature=sign("default", "cust-9"))
    await signed.close()
    await bob.resume()
    await bob.send("still here")
    await bob.close()
    await ana.close()
    assert SECRET not in d.log_text(), "the secret must never be logged"


if __name__ == "__main__":
    run_tests([test_signed_ids_only, test_signed_attributes, test_no_secret_then_reload])
