"""test_regression_edges.py - found reviewing the changes of 2026-12-06 (logged-out,
login resend, inbox trim, transfers, positions, explain, overflow circles).

Each test asserts documented behaviour (docs/PROTOCOL.md, docs/ROUTING.md, README);
all of them failed against the build they were written for:

1. test_lua_explain_trigger_of_a_transfer_to_an_agent: a chat transferred to a
   colleague is explained as "sticky: the agent who last served this customer".
2. test_lua_position_counts_english_chats_no_agent_of_its_will_serve: a Spanish
   customer at the English-fallback step is told number 4 while only a Spanish agent
   serves the queue, and is served next (an over-count; PROTOCOL says lower bound).
3. test_lua_heartbeat_after_a_newer_login_ended_says_replaced and
   test_replaced_desktop_missing_the_notification_is_told_replaced: a desktop replaced
   by a newer login (since closed) is told logged-out "this session was ended".
4. test_lua_login_from_a_new_browser_gets_every_chat_held: the login resend of many
   long chats overflows the inbox cap; a held chat never reaches the new desktop.
5. test_lua_inbox_trim_after_the_cap_dropped_a_pending_item: one pending item the cap
   dropped pins the inbox at 10,000 entries; omr_inbox_trim never trims again.
6. test_max_wait_and_ladder_overflow_circle: a max-wait overflow and a ladder overflow
   that form a circle were accepted; the chat bounced between the queues every tick
   (now --check-config and the daemon refuse it).

    OMR_BUILD_DIR=build/asan python3 tests/integration/test_regression_edges.py [NAME...]
"""

import asyncio
import os
import subprocess
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from omr_harness import (DAEMON_BIN, Agent, add_agent, log, run_tests,  # noqa: E402
                         time_limit)
from lua_harness import P, LuaTestCase, as_run_test, es_then_en  # noqa: E402


class ReviewLua(LuaTestCase):
    # ------------------------------------------------------------------
    def test_explain_trigger_of_a_transfer_to_an_agent(self):
        # ROUTING.md, Explanations: explain shows "what triggered the decision (a new
        # conversation, one routed again after an escalation, overflow, transfer, decline
        # or the loss of its agent, an agent becoming free, sticky routing)".
        # A chat transferred by a1 to colleague b1 (who never served this customer) is
        # explained as sticky routing to "the agent who last served this customer".
        self.rules({"name": "q"}, blocking={})
        self.agent("a1", "en", 1)
        self.agent("b1", "en", 1)
        self.assertEqual(self.start("c1", "en", customer="kim"), "assigned")
        holder = self.conv("c1")["agent"]
        other = "b1" if holder == "a1" else "a1"
        self.assertEqual(self.fcall("omr_conv_transfer", "c1", holder, "agent", other, "n"),
                         "transferred")
        self.assertEqual((self.conv("c1")["state"], self.conv("c1")["agent"]),
                         ("assigned", other))
        got = self.explain("c1")
        trig = str(got.get("trigger"))
        self.assertIn("transfer", trig,
                      f"chat transferred by {holder} to {other}, who never served customer "
                      f"kim, is explained with trigger {trig!r}")

    def test_position_counts_english_chats_no_agent_of_its_will_serve(self):
        # PROTOCOL.md `position`: "its place in line (1 = next)"; "It is a lower bound".
        # Here the queue's only agent speaks Spanish: the English chats ahead will never
        # be served before the Spanish one, yet the Spanish customer was told it is
        # number 4 (the English chats waiting ahead were counted); and the next agent to
        # free up takes it.
        self.rules(es_then_en(), blocking={})
        self.agent("es1", "es", 1)
        self.assertEqual(self.start("busy", "es"), "assigned")  # es1 is full now
        for e in ("e1", "e2", "e3"):
            self.assertEqual(self.start(e, "en"), "queued")
            time.sleep(0.002)
        self.assertEqual(self.start("s1", "es"), "queued")
        self.escalate("s1", 2)
        pos = self.fcall("omr_conv_position", "s1")
        self.fcall("omr_conv_close", "busy", "es1")  # the one agent frees up
        self.assertEqual(self.conv("s1").get("agent"), "es1")  # it was next
        self.assertEqual(pos[1], 1,
                         f"Spanish customer told position {pos[1]} (1 = next) while only "
                         f"a Spanish-only agent serves the queue; the 3 English chats ahead "
                         f"are nobody's competition, and it was served next")

    def test_heartbeat_after_a_newer_login_ended_says_replaced(self):
        # PROTOCOL.md: `replaced` "(agents) a newer login for the same agent took over";
        # `logged-out` "the session ended without a new login: the agent's token was
        # revoked or reissued, or the agent was removed ...; Log in again with a new
        # token". A desktop whose instance missed the r: notification (resubscribing)
        # learns its fate from omr_agent_seen. A newer login took over and has since
        # closed: the old desktop is told logged-out "session-ended" (the page drops
        # its stored token and asks for a new one), though its token still works and
        # another login did replace it.
        self.rules({"name": "q"}, blocking={})
        self.agent("a1", "en", 1)  # session s-a1
        self.assertIsInstance(self.fcall("omr_agent_login", "a1", "sha-a1", "s-new"), list)
        self.assertEqual(self.fcall("omr_agent_gone", "a1", "s-new"), "offline")
        got = self.fcall("omr_agent_seen", "a1", "s-a1", "30")
        self.assertEqual(got, "replaced",
                         f"heartbeat of a desktop replaced by a newer login (which has "
                         f"since closed) answered {got!r}")

    def test_login_from_a_new_browser_gets_every_chat_held(self):
        # PROTOCOL.md login: "The server then sends again what the agent holds and the
        # desktop does not show: each assigned conversation as an `assigned` item ...
        # followed by its transcript". An agent holds 12 chats (capacity chat:12) of 900
        # messages each (chat.max_messages is 1,000 by default); its browser died, it
        # logs in from a new one (shows nothing). All 12 are appended to its inbox in
        # one call, 10,812 entries: the inbox's cap (MAXLEN ~ 10,000) drops the first
        # ones before any desktop reads them, and a chat it holds never appears.
        self.rules({"name": "q"}, blocking={})
        self.agent("a1", "en", 12)
        convs = [f"c{n:02d}" for n in range(12)]
        for cid in convs:
            self.assertEqual(self.start(cid, "en"), "assigned")
        self.seed(convs, 900)
        # the old desktop read and acked all of it; its inbox was trimmed
        inbox = f"{P}:agent:a1:inbox"
        while True:
            got = self.r("XREADGROUP", "GROUP", "desktop", "a1", "COUNT", 5000,
                         "STREAMS", inbox, ">")
            if not got:
                break
            ids = [e[0] for e in got[0][1]]
            self.r("XACK", inbox, "desktop", *ids)
        self.fcall("omr_inbox_trim", "a1")
        # a new browser: it shows nothing
        self.assertIsInstance(self.fcall("omr_agent_login", "a1", "sha-a1", "s-new", "1", ""),
                              list)
        got = self.r("XREADGROUP", "GROUP", "desktop", "a1", "COUNT", 20000,
                     "STREAMS", inbox, ">")
        entries = got[0][1] if got else []
        assigned = [dict(zip(f[::2], f[1::2])).get("conv") for _, f in entries
                    if f and dict(zip(f[::2], f[1::2])).get("kind") == "assigned"]
        missing = [cid for cid in convs if cid not in assigned]
        self.assertEqual(missing, [],
                         f"agent a1 holds {len(convs)} chats; its login from a new browser "
                         f"delivered the assignment of {len(assigned)} ({len(entries)} "
                         f"entries): {missing} never reach its desktop")

    def seed(self, convs, per_conv):
        from omr_harness import Resp
        c = Resp(self.port)
        try:
            for cid in convs:
                for base in range(0, per_conv, 300):
                    args = ["FCALL", "omr_conv_messages", 1, P, "1000"]
                    for n in range(base, min(base + 300, per_conv)):
                        args += [cid, "customer", "", f"m{n}", f"line {n}", ""]
                    c.pipeline([args])
        finally:
            c.close()

    def read_and_ack_all(self, aid):
        """What a desktop does: the pending history from 0, then new entries; each one
        delivered is acked (an entry with nil fields is not delivered: delivery.c)."""
        inbox = f"{P}:agent:{aid}:inbox"
        for start in ("0", ">"):
            while True:
                got = self.r("XREADGROUP", "GROUP", "desktop", aid, "COUNT", 5000,
                             "STREAMS", inbox, start)
                entries = got[0][1] if got else []
                ids = [e[0] for e in entries if e[1]]
                if ids:
                    self.r("XACK", inbox, "desktop", *ids)
                if start == "0" or not entries:
                    break

    def test_inbox_trim_after_the_cap_dropped_a_pending_item(self):
        # README: "An agent's inbox keeps only the items its desktop has not
        # acknowledged, and those of the last minute or so (a desktop that never acks:
        # up to 10,000, about 3 MB)". The desktop had read one item and not acked it
        # (its browser died) when its chats brought 10,800 more: the inbox cap dropped
        # that pending item, which stays in the group's pending list with no fields. The
        # router never delivers it (nil fields), so no desktop ever acks it; and
        # omr_inbox_trim keeps everything after the oldest pending item: the inbox stays
        # at 10,000 entries for good though the desktop acks everything.
        self.rules({"name": "q"}, blocking={})
        self.agent("a1", "en", 12)
        convs = [f"c{n:02d}" for n in range(12)]
        for cid in convs:
            self.assertEqual(self.start(cid, "en"), "assigned")
        inbox = f"{P}:agent:a1:inbox"
        self.r("XREADGROUP", "GROUP", "desktop", "a1", "COUNT", 1, "STREAMS", inbox, ">")
        self.seed(convs, 900)
        self.read_and_ack_all("a1")  # a new desktop acks all it gets
        self.fcall("omr_inbox_trim", "a1")
        n = self.r("XLEN", inbox)
        pend = self.r("XPENDING", inbox, "desktop")
        self.assertLessEqual(n, 200,
                             f"the desktop acknowledged every item it could get, yet after "
                             f"omr_inbox_trim the inbox of a1 holds {n} entries; pending "
                             f"{pend[0]} (oldest {pend[1]}, dropped by the cap: never "
                             f"delivered, never acked)")


# ----------------------------------------------------------------------------
# Daemon-level

QUEUES_MIXED_CIRCLE = """
queues:
  - name: sales
    attributes: {kind: sales}
    steps:
      - after_s: 2
        overflow: general
  - name: general
    max_wait_s: 3
    max_wait_action: overflow:sales
"""


@time_limit(60)
def test_max_wait_and_ladder_overflow_circle(env):
    """ROUTING.md: "Overflows that go round in a circle (`a` to `b` and back, by ladder
    steps or maximum waits) would never end ..., so the configuration is refused with the
    circle named". general's maximum wait overflows to sales, and sales' ladder overflows
    back to general: both count from the original enqueue time, so once both were due the
    conversation bounced between the two queues at every timer tick (20 moves in 4 s),
    and --check-config said "configuration ok"."""
    path = os.path.join(env.dir, "circle.yaml")
    with open(path, "w") as f:
        f.write(QUEUES_MIXED_CIRCLE)
    p = subprocess.run([DAEMON_BIN, "--check-config", "-c", path], capture_output=True,
                       text=True, timeout=30)
    out = p.stdout + p.stderr
    log(out.strip())
    assert p.returncode != 0 and "circle (sales -> general -> sales)" in out \
        and f"{path}:10:" in out, (p.returncode, out)


@time_limit(90)
async def test_replaced_desktop_missing_the_notification_is_told_replaced(env):
    """PROTOCOL.md error codes: `replaced` "(agents) a newer login for the same agent took
    over"; `logged-out` "the session ended without a new login: the agent's token was
    revoked or reissued, or the agent was removed (or no longer exists: Redis lost its
    data); `reason` says which. Log in again with a new token".
    d1 misses the r: notification (resubscribing); the agent's newer desktop on d2 has
    closed by the time d1's heartbeat asks Redis: the old desktop is closed with
    logged-out "this session was ended" (the page drops its stored token and asks for a
    new one), though a newer login did take over and the token still works."""
    r = env.redis()
    d1 = env.daemon(r, name="d1", config={"redis": {"reconnect_min_ms": 3000,
                                                    "reconnect_max_ms": 3000,
                                                    "ping_timeout_ms": 5000}})
    d2 = env.daemon(r, name="d2", config={"bus": {"max_attempts": 30}})
    token = add_agent(d1, "x1", "Xena", "en", 2)
    first = Agent(d1.url, "x1", token, label="desktop on d1")
    await first.login()
    admin = r.client()
    admin.cmd("CLIENT", "KILL", "TYPE", "pubsub")
    await wait_until_log(d1, "connection lost", 5)
    second = Agent(d2.url, "x1", token, label="desktop on d2")
    await second.login()
    await second.close()  # the newer desktop is closed again
    await asyncio.sleep(0.5)
    # d1's heartbeat (every 10 s) asks Redis about the old session
    code, why = await first.conn.wait_closed(20, "the old desktop closed")
    err = first.conn.find(lambda f: f.get("type") == "error") or {}
    log(f"old desktop closed {code} {why!r} after {err}")
    assert err.get("code") == "replaced", (
        f"desktop on d1, replaced by a newer login on d2 (since closed), was closed with "
        f"{err}: told to log in again with a new token, though its token works")


async def wait_until_log(d, needle, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if needle in d.log_text():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{d.name}: log never said {needle!r}")


def _lua(name):
    return as_run_test(ReviewLua, name)


LUA = ["test_explain_trigger_of_a_transfer_to_an_agent",
       "test_position_counts_english_chats_no_agent_of_its_will_serve",
       "test_heartbeat_after_a_newer_login_ended_says_replaced",
       "test_login_from_a_new_browser_gets_every_chat_held",
       "test_inbox_trim_after_the_cap_dropped_a_pending_item"]

if __name__ == "__main__":
    run_tests([_lua(n) for n in LUA] + [test_max_wait_and_ladder_overflow_circle,
                                        test_replaced_desktop_missing_the_notification_is_told_replaced])
