"""test_conv_close.py - the site ends a conversation: `omnirouterctl
conversation close CONVERSATION [--reason TEXT]` (omr_conv_end).

Whatever the conversation's state, it ends with reason `admin`: a waiting one
leaves its queue, an open offer is taken back without counting as the
agent's decline, an assigned one is closed for its agent with no wrap-up, and
the freed capacity goes to the next waiting work at once. The note goes to
the agent, never to the customer.

The first tests call the Function on a real redis-server (lua_harness); the
others run the real daemon and omnirouterctl with real websocket clients.

    OMR_BUILD_DIR=build/asan python3 tests/integration/test_conv_close.py [NAME...]
"""

import asyncio
import json
import os
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from omr_harness import (Agent, Customer, add_agent, conv_key, ctl, poll,  # noqa: E402
                         run_tests, time_limit)
from lua_harness import P, LuaTestCase, as_run_test  # noqa: E402


class EndLua(LuaTestCase):
    def log_events(self, conv):
        entries = self.r("XRANGE", f"{P}:conv:{conv}:log", "-", "+")
        return [dict(zip(e[1][::2], e[1][1::2])) for e in entries]

    def test_waiting_conversation_ends(self):
        self.rules({"name": "q"}, blocking={})
        self.assertEqual(self.start("c1"), "queued")
        self.assertEqual(self.fcall("omr_conv_end", "c1", "spam"), "closed")
        c = self.conv("c1")
        self.assertEqual((c["state"], c.get("close_reason"), c.get("close_note")),
                         ("closed", "admin", "spam"))
        self.assertEqual(self.waiting(queue="q"), [])
        self.assertNotIn("c1", self.r("SMEMBERS", f"{P}:queued"))
        self.assertEqual([(f.get("event"), f.get("reason"), f.get("note"))
                          for f in self.log_events("c1")], [("closed", "admin", None)])
        self.assertEqual(self.fcall("omr_conv_end", "c1", ""), "already-closed")
        # An agent who frees up later is not handed it.
        self.agent("a1", "en", 1)
        self.assertEqual(self.load("a1"), 0)
        self.check_invariants()

    def test_unknown_conversation_is_refused(self):
        self.rules({"name": "q"}, blocking={})
        self.assertTrue(str(self.fcall("omr_conv_end", "nope", "")).startswith("NOCONV"))

    def test_offer_is_taken_back_without_a_decline(self):
        self.rules({"name": "q", "auto_accept": False, "offer_timeout_s": 30}, blocking={})
        self.agent("a1", "en", 1)
        self.assertEqual(self.start("c1"), "offered")
        self.assertEqual(self.start("w2"), "queued")
        self.assertEqual(self.fcall("omr_conv_end", "c1", ""), "closed")
        self.assertEqual(self.conv("c1")["state"], "closed")
        revoked = [f for k, f in self.inbox_fields("a1") if k == "revoked"]
        self.assertEqual([(f["conv"], f["reason"]) for f in revoked], [("c1", "admin")])
        self.assertEqual(self.r("HGETALL", f"{P}:conv:c1:decl"), [])
        self.assertEqual(self.r("HGET", f"{P}:agent:a1", "missed_offers"), None)
        # The agent's capacity went to the next waiting chat.
        self.assertEqual((self.conv("w2")["state"], self.conv("w2").get("agent")),
                         ("offered", "a1"))
        self.check_invariants()

    def test_assigned_conversation_ends_without_wrapup(self):
        self.rules({"name": "q", "wrapup_s": 120}, blocking={})
        self.agent("a1", "en", 1)
        self.assertEqual(self.start("c1", customer="cust-9"), "assigned")
        self.assertEqual(self.start("w2"), "queued")
        self.assertEqual(self.fcall("omr_conv_end", "c1", "customer phoned instead"), "closed")
        c = self.conv("c1")
        self.assertEqual((c["state"], c.get("close_reason"), c["agent"]),
                         ("closed", "admin", "a1"))
        closed = [f for k, f in self.inbox_fields("a1") if k == "closed"]
        self.assertEqual([(f["conv"], f["reason"], f["text"], f["wrapup"]) for f in closed],
                         [("c1", "admin", "customer phoned instead", "0")])
        self.assertEqual(self.r("HGET", f"{P}:agent:a1", "wrapup_chat"), None)
        self.assertEqual([(f.get("event"), f.get("reason")) for f in self.log_events("c1")
                          if f.get("event") == "closed"], [("closed", "admin")])
        # No wrap-up: the next chat is the agent's at once.
        self.assertEqual((self.conv("w2")["state"], self.conv("w2").get("agent")),
                         ("assigned", "a1"))
        self.check_invariants()

    def test_explain_of_a_chat_closed_while_waiting(self):
        # Served, transferred to a queue, closed by the site while it waited
        # there: explain showed the old decision (agent, queue) as if the
        # conversation had been closed with that agent.
        self.rules({"name": "q"}, {"name": "q2"}, blocking={})
        self.agent("a1", "en", 1)
        self.assertEqual(self.start("c1"), "assigned")
        self.assertEqual(self.fcall("omr_conv_transfer", "c1", "a1", "queue", "q2", ""),
                         "transferred")
        self.assertEqual(self.fcall("omr_conv_end", "c1", ""), "closed")
        why = self.explain("c1")
        self.assertEqual((why["state"], why["queue"], why.get("close_reason"), why.get("agent")),
                         ("closed", "q2", "admin", None))
        self.assertEqual(why["previous"]["agent"], "a1")


def _lua(name):
    return as_run_test(EndLua, name)


LUA = ["test_waiting_conversation_ends",
       "test_unknown_conversation_is_refused",
       "test_offer_is_taken_back_without_a_decline",
       "test_assigned_conversation_ends_without_wrapup",
       "test_explain_of_a_chat_closed_while_waiting"]

QUEUES = """
queues:
  - name: general
    wrapup_s: 300
"""


@time_limit(90)
async def test_site_ends_an_assigned_chat(env):
    r = env.redis()
    d = env.daemon(r, config={"routing": {"tick_ms": 100}}, queues=QUEUES)
    token = add_agent(d, "ana", "Ana", "en", capacity=1)
    agent = Agent(d.url, "ana", token)
    await agent.login()
    await agent.presence("available")
    cust = Customer(d.url, "served customer")
    await cust.hello(language="en")
    await agent.wait_item(lambda f: f.get("type") == "assigned" and
                          f.get("conversation_id") == cust.conversation_id, 10, "assigned")
    nxt = Customer(d.url, "next customer")
    await nxt.hello(language="en")
    p = ctl(d, "conversation", "close", cust.conversation_id, "--reason", "duplicate of a call")
    assert p.stdout.strip() == f"{cust.conversation_id}: closed", p.stdout
    ev = await cust.wait_item(lambda f: f.get("event") == "closed", 10, "closed")
    assert ev.get("reason") == "admin", ev
    assert "duplicate" not in json.dumps(cust.order), "the note reached the customer"
    closed = await agent.wait_item(lambda f: f.get("type") == "closed", 10, "closed item")
    assert (closed.get("conversation_id"), closed.get("reason"), closed.get("note")) == \
        (cust.conversation_id, "admin", "duplicate of a call"), closed
    assert "wrapup_until_ms" not in closed, closed
    # No wrap-up and capacity 1: the waiting chat is the agent's next.
    await agent.wait_item(lambda f: f.get("type") == "assigned" and
                          f.get("conversation_id") == nxt.conversation_id, 10,
                          "the next chat, with no wrap-up in between")
    # The customer may still rate the chat an agent served.
    await cust.conn.send({"type": "rate", "id": "s1", "score": 4})
    await poll(lambda: r.client().cmd("HGET", conv_key(cust.conversation_id), "csat") == "4",
               10)
    # Again: nothing to do, and said so.
    p = ctl(d, "--json", "conversation", "close", cust.conversation_id)
    assert json.loads(p.stdout) == {"conversation": cust.conversation_id,
                                    "result": "already-closed"}, p.stdout
    await agent.close()
    await cust.close()
    await nxt.close()


@time_limit(60)
async def test_site_ends_a_waiting_chat(env):
    r = env.redis()
    d = env.daemon(r, config={"routing": {"tick_ms": 100}}, queues=QUEUES)
    cust = Customer(d.url, "waiting customer")
    await cust.hello(language="en")
    ctl(d, "conversation", "close", cust.conversation_id)
    ev = await cust.wait_item(lambda f: f.get("event") == "closed", 10, "closed")
    assert ev.get("reason") == "admin", ev
    admin = r.client()
    assert admin.cmd("SISMEMBER", f"omr:{{default}}:queued", cust.conversation_id) == 0
    # An agent who logs in later is not handed it.
    token = add_agent(d, "ana", "Ana", "en")
    agent = Agent(d.url, "ana", token)
    await agent.login()
    await agent.presence("available")
    await asyncio.sleep(1)
    assert agent.assigned() == [], agent.assigned()
    await agent.close()
    await cust.close()


def test_command_line_mistakes(env):
    r = env.redis()
    d = env.daemon(r)
    cases = [
        (["conversation", "close", "no-such-conv"], 1, "no such conversation"),
        (["conversation", "close", "bad id!"], 2, "conversation ids"),
        (["conversation", "close"], 2, "usage: conversation close"),
        (["conversation", "open", "c1"], 2, "usage: conversation close"),
        (["conversation", "close", "c1", "--reason", "two\nlines"], 2, "--reason"),
        (["conversation", "close", "c1", "--id", "ana"], 2,
         "--id does not apply to conversation close"),
    ]
    for args, rc, text in cases:
        p = ctl(d, *args, check=False)
        assert p.returncode == rc and text in p.stderr, (args, p.returncode, p.stderr)


if __name__ == "__main__":
    run_tests([_lua(n) for n in LUA] +
              [test_site_ends_an_assigned_chat, test_site_ends_a_waiting_chat,
               test_command_line_mistakes])
