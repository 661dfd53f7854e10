"""The routing decisions in router/functions.lua, called directly on a real
redis-server: language matching, least-loaded then longest-idle selection,
FIFO waiting, capacity, idempotency, session guards. Fast and precise; the
daemon tests exercise the same functions end to end."""
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import unittest

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from omr_harness import RedisError, Resp  # noqa: E402

SRC = os.environ.get("OMR_SOURCE_DIR", os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))
P = "omr:{t1}"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Err(str):
    """A Redis error reply, as a value the tests can compare."""


def as_value(reply):
    return Err(str(reply)) if isinstance(reply, RedisError) else reply


class FunctionsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="omr-fn-")
        cls.port = free_port()
        cls.proc = subprocess.Popen(
            ["redis-server", "--port", str(cls.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", cls.dir],
            stdout=subprocess.DEVNULL)
        deadline = time.time() + 10
        while True:
            try:
                client = Resp(cls.port)
                cls.r = staticmethod(lambda *args, c=client: as_value(c.pipeline([args])[0]))
                if cls.r("PING") == "PONG":
                    break
            except OSError:
                pass
            if time.time() > deadline:
                raise RuntimeError("redis-server did not start")
            time.sleep(0.05)
        with open(os.path.join(SRC, "router", "functions.lua")) as f:
            res = cls.r("FUNCTION", "LOAD", "REPLACE", f.read())
        assert res == "omnirouter", res

    @classmethod
    def tearDownClass(cls):
        cls.proc.terminate()
        cls.proc.wait()
        shutil.rmtree(cls.dir, ignore_errors=True)

    def setUp(self):
        self.r("FLUSHALL")

    def fcall(self, fn, *args):
        return self.r("FCALL", fn, 1, P, *args)

    def agent(self, aid, langs, cap, available=True):
        self.assertIn(self.fcall("omr_agent_upsert", aid, aid.upper(), langs, cap, "sha-" + aid),
                      ("created", "updated"))
        self.fcall("omr_agent_login", aid, "sha-" + aid, "s-" + aid)
        if available:
            self.assertEqual(self.fcall("omr_agent_presence", aid, "s-" + aid, "available"),
                             "available")

    def start(self, conv, lang="en", rlang=None):
        return self.fcall("omr_conv_start", conv, "tok", lang, rlang or lang.split("-")[0],
                          "cust", "chat")

    def conv(self, conv):
        flat = self.r("HGETALL", f"{P}:conv:{conv}")
        return dict(zip(flat[::2], flat[1::2]))

    def test_language_routes_only_to_speakers(self):
        self.agent("en1", "en", 2)
        self.agent("es1", "es", 2)
        self.assertEqual(self.start("c1", "es-MX", "es"), "assigned")
        self.assertEqual(self.conv("c1")["agent"], "es1")
        self.assertEqual(self.start("c2", "fr"), "queued")
        self.assertEqual(self.r("ZRANGE", f"{P}:wait:fr", 0, -1), ["c2"])

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
        self.assertEqual(self.r("HGET", f"{P}:agent:a", "load"), "2")
        self.assertEqual(self.r("ZRANGE", f"{P}:wait:en", 0, -1), ["c2", "c3", "c4"])
        self.assertEqual(self.fcall("omr_conv_close", "c0", "a"), "closed")
        # The freed unit goes to the oldest waiting conversation at once.
        self.assertEqual(self.conv("c2")["agent"], "a")
        self.assertEqual(self.r("SCARD", f"{P}:agent:a:convs"), 2)
        self.assertEqual(self.r("ZRANGE", f"{P}:wait:en", 0, -1), ["c3", "c4"])

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
        self.assertEqual(self.r("ZRANGE", f"{P}:avail:en", 0, -1), [])

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
        self.assertEqual(self.r("HGET", f"{P}:agent:a", "load"), "1")
        self.assertTrue(
            self.fcall("omr_conv_message", "c1", "customer", "", "m9", "x", "c", 10)
            .startswith("CLOSED"))

    def test_away_agent_gets_nothing(self):
        self.agent("a", "en", 2)
        self.fcall("omr_agent_presence", "a", "s-a", "away")
        self.assertEqual(self.start("c1"), "queued")
        self.fcall("omr_agent_presence", "a", "s-a", "available")
        self.assertEqual(self.conv("c1")["agent"], "a")


if __name__ == "__main__":
    unittest.main(verbosity=2)
