"""lua_harness.py - a base class for tests that call the routing Functions
(router/lua/*.lua) directly on a real redis-server: test_functions.py,
test_routing_edges.py and test_routing_edges2.py. One redis-server per test class, the library loaded
by concatenating router/lua/*.lua as the build does, FLUSHALL before each
test; helpers that create agents and conversations; and check_invariants(),
which checks the whole routing state at once: no agent over capacity, a
conversation held by at most one agent, every open conversation where the
indexes say, waiting sets holding exactly the queued conversations,
availability sets holding only agents who could take that work now."""
import glob
import json
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
P = "omr:{g1}"
T = "t1"
DEFAULT_QUEUE = {"name": "default", "steps": [{"after_s": 0}]}
BLOCKING = {"voice": ["chat", "email"]}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def served_languages(langs):
    """The routing languages an agent with languages langs serves (10_index.lua's
    route_langs: an agent of zh serves zh-Hant and zh-Hans, one of a script plain zh)."""
    out = set(langs)
    for script in ("zh-Hant", "zh-Hans"):
        if script in out:
            out.add("zh")
    if "zh" in langs:
        out |= {"zh-Hant", "zh-Hans"}
    return out


class Err(str):
    """A Redis error reply, as a value the tests can compare."""


def as_value(reply):
    return Err(str(reply)) if isinstance(reply, RedisError) else reply


class LuaTestCase(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="omr-lua-")
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
        lib = "".join(open(path).read() for path in
                      sorted(glob.glob(os.path.join(SRC, "router", "lua", "*.lua"))))
        res = cls.r("FUNCTION", "LOAD", "REPLACE", lib)
        assert res == "omnirouter", res

    @classmethod
    def tearDownClass(cls):
        cls.proc.terminate()
        cls.proc.wait()
        shutil.rmtree(cls.dir, ignore_errors=True)

    def setUp(self):
        self.r("FLUSHALL")
        self.blocking = BLOCKING

    # ---- helpers -------------------------------------------------------------

    def fcall(self, fn, *args):
        return self.r("FCALL", fn, 1, P, *args)

    def rules(self, *queues, blocking=None, **extra):
        self.blocking = blocking if blocking is not None else BLOCKING
        doc = {"version": str(time.monotonic_ns()), "queues": list(queues),
               "blocking": self.blocking}
        doc.update(extra)
        self.assertIn(self.fcall("omr_rules_load", json.dumps(doc)), ("loaded", "unchanged"))

    def agent(self, aid, langs, cap, available=True, skills=None, tenants=None):
        """langs: "en,es" (proficiency 10) or a dict; cap: chat capacity or a dict."""
        if isinstance(langs, str):
            langs = {l: 10 for l in langs.split(",")}
        spec = {"name": aid.upper(), "tenants": tenants or [T], "languages": langs,
                "capacity": cap if isinstance(cap, dict) else {"chat": cap},
                "skills": skills or {}, "token_sha": "sha-" + aid}
        self.assertIn(self.fcall("omr_agent_upsert", aid, json.dumps(spec)),
                      ("created", "updated"))
        self.fcall("omr_agent_login", aid, "sha-" + aid, "s-" + aid)
        if available:
            self.assertEqual(self.fcall("omr_agent_presence", aid, "s-" + aid, "available"),
                             "available")

    def update(self, aid, **spec):
        self.assertEqual(self.fcall("omr_agent_upsert", aid, json.dumps(spec)), "updated")

    def start(self, conv, lang="en", channel="chat", tenant=T, attrs=None, skills=None,
              customer=""):
        return self.fcall("omr_conv_start", conv, "tok", lang, lang.split("-")[0].lower(), "cust",
                          channel, tenant, customer, json.dumps(attrs or {}),
                          json.dumps(skills or []))

    def conv(self, conv):
        flat = self.r("HGETALL", f"{P}:conv:{conv}")
        return dict(zip(flat[::2], flat[1::2]))

    def waiting(self, lang="en", queue="default", step=1, channel="chat", tenant=T):
        return self.r("ZRANGE", f"{P}:wait:{queue}|{step}|{channel}|{tenant}|{lang}", 0, -1)

    def load(self, aid, channel="chat"):
        return int(self.r("HGET", f"{P}:agent:{aid}", f"load_{channel}") or 0)

    def inbox_fields(self, aid):
        return [(f["kind"], f) for f in
                (dict(zip(e[1][::2], e[1][1::2]))
                 for e in self.r("XRANGE", f"{P}:agent:{aid}:inbox", "-", "+"))]

    def inbox_kinds(self, aid):
        return [(f["kind"], f.get("conv")) for f in
                (dict(zip(e[1][::2], e[1][1::2]))
                 for e in self.r("XRANGE", f"{P}:agent:{aid}:inbox", "-", "+"))]

    def desktop_reads(self, aid):
        key = f"{P}:agent:{aid}:inbox"
        got = self.r("XREADGROUP", "GROUP", "desktop", aid, "COUNT", 1000, "STREAMS", key, ">")
        for _, entries in got or []:
            for entry_id, _ in entries:
                self.r("XACK", key, "desktop", entry_id)

    def msg(self, conv, text, frm="customer", agent="", msgid=None):
        msgid = msgid or f"m{time.monotonic_ns()}"
        return self.fcall("omr_conv_message", conv, frm, agent, msgid, text, "", "1000")

    def explain(self, conv):
        """omr_explain's JSON of conv, decoded."""
        return json.loads(self.fcall("omr_explain", conv))

    def escalate(self, conv, step):
        """Fires conv's escalation to `step` now (as omr_tick would when it is due)."""
        self.r("ZADD", f"{P}:timers", 0, f"esc|{conv}|{step}")
        self.fcall("omr_tick")
        self.assertEqual(self.conv(conv)["step"], str(step))

    def tick_after(self, seconds):
        time.sleep(seconds)
        return self.fcall("omr_tick")

    def presence(self, aid):
        got = json.loads(self.fcall("omr_agent_get", aid))
        return got["presence"], got["reason"]

    # ---- the invariants ------------------------------------------------------

    def keys(self, pattern):
        out, cursor = [], "0"
        while True:
            cursor, batch = self.r("SCAN", cursor, "MATCH", pattern, "COUNT", 1000)
            out += batch
            if cursor == "0":
                return out

    def check_invariants(self, allow_over_capacity=()):
        problems = []
        agents = {}
        for aid in self.r("SMEMBERS", f"{P}:agents"):
            flat = self.r("HGETALL", f"{P}:agent:{aid}")
            agents[aid] = dict(zip(flat[::2], flat[1::2]))
        convs = {}
        for key in self.keys(f"{P}:conv:*"):
            # (a conversation's message-id and decline hashes and explanation are not
            # conversations)
            if self.r("TYPE", key) != "hash" or key.endswith((":ids", ":explain", ":decl")):
                continue
            cid = key[len(P) + 6:]
            flat = self.r("HGETALL", key)
            convs[cid] = dict(zip(flat[::2], flat[1::2]))
        holders = {}
        for aid, a in agents.items():
            cap = json.loads(a.get("capacity", "{}"))
            held = self.r("SMEMBERS", f"{P}:agent:{aid}:convs")
            per_ch = {}
            for cid in held:
                c = convs.get(cid, {})
                holders.setdefault(cid, []).append(aid)
                if c.get("agent") != aid or c.get("state") not in ("offered", "assigned"):
                    problems.append(f"agent {aid} holds {cid} in state {c.get('state')} "
                                    f"of agent {c.get('agent')!r}")
                ch = c.get("channel", "chat")
                per_ch[ch] = per_ch.get(ch, 0) + 1
            for ch in ("chat", "email", "voice"):
                load = int(a.get(f"load_{ch}", 0) or 0)
                if load != per_ch.get(ch, 0):
                    problems.append(f"agent {aid} load_{ch}={load} but holds "
                                    f"{per_ch.get(ch, 0)}")
                if per_ch.get(ch, 0) > int(cap.get(ch, 0)) and aid not in allow_over_capacity:
                    problems.append(f"agent {aid} holds {per_ch.get(ch, 0)} {ch} > cap "
                                    f"{cap.get(ch, 0)}")
        queued_set = set(self.r("SMEMBERS", f"{P}:queued"))
        in_wait = {}
        for key in self.keys(f"{P}:wait:*"):
            for cid in self.r("ZRANGE", key, 0, -1):
                in_wait.setdefault(cid, []).append(key)
                c = convs.get(cid, {})
                if c.get("state") != "queued":
                    problems.append(f"{key} holds {cid} in state {c.get('state')}")
        for cid, c in convs.items():
            st = c.get("state")
            if st in ("offered", "assigned"):
                if holders.get(cid) != [c.get("agent")]:
                    problems.append(f"{cid} {st} to {c.get('agent')!r}, held by "
                                    f"{holders.get(cid)}")
            elif st == "queued":
                if cid not in queued_set:
                    problems.append(f"{cid} queued but not in P:queued")
                pref = c.get("pref_agent", "")
                if pref:
                    if self.r("ZSCORE", f"{P}:pref:{pref}", cid) is None:
                        problems.append(f"{cid} waits for {pref} but not in its pref set")
                elif len(in_wait.get(cid, [])) != 1:
                    problems.append(f"{cid} queued in wait sets {in_wait.get(cid, [])}")
            elif st == "closed":
                if holders.get(cid):
                    problems.append(f"{cid} closed but held by {holders[cid]}")
            else:
                problems.append(f"{cid} in state {st!r}")
        # availability: a member could take that work now
        for key in self.keys(f"{P}:avail:*"):
            _, _, ch, tenant, lang = key.split(":avail:")[1].split("|")
            for aid in self.r("ZRANGE", key, 0, -1):
                a = agents.get(aid)
                if a is None:
                    problems.append(f"{key} holds unknown agent {aid}")
                    continue
                cap = json.loads(a.get("capacity", "{}"))
                load = int(a.get(f"load_{ch}", 0) or 0)
                blocked = any(int(a.get(f"load_{f}", 0) or 0) > 0 and ch in lst
                              for f, lst in self.blocking.items())
                ok = (a.get("presence") == "available" and load < int(cap.get(ch, 0))
                      and not blocked and int(a.get(f"wrapup_{ch}", 0) or 0) == 0
                      and tenant in json.loads(a.get("tenants", "[]"))
                      and lang in served_languages(json.loads(a.get("languages", "{}"))))
                if not ok:
                    problems.append(f"{key} holds {aid}, who cannot take it")
                if key.split(":avail:")[1] not in (a.get("idx") or "").split(","):
                    problems.append(f"{key} holds {aid} but its idx does not list it")
        self.assertEqual(problems, [])


def es_then_en(**extra):
    """Rules for a Spanish and English queue whose second step (after 1 s) also accepts
    English speakers for Spanish chats."""
    q = {"name": "q", "languages": ["es", "en"],
         "steps": [{"after_s": 0}, {"after_s": 1, "languages": ["en"]}]}
    q.update(extra)
    return q


def as_run_test(case_class, name):
    """Test method `name` of LuaTestCase subclass case_class as a test for
    omr_harness.run_tests (named test_lua_..., 60 s), so a file can mix Lua
    and daemon tests."""
    def run(env):
        suite = unittest.TestSuite([case_class(name)])
        res = unittest.TextTestRunner(stream=sys.stdout, verbosity=2).run(suite)
        if not res.wasSuccessful():
            raise AssertionError(f"{name} failed")
    run.__name__ = "test_lua_" + name[len("test_"):]
    run.time_limit = 60
    return run
