"""A randomized, model-based test of the routing Functions (router/lua/*.lua).

For several fixed seeds it runs a few hundred random operations over a small
world (five agents of different tenants, languages, skills and per-channel
capacities; three tenants; three rule sets with an offering queue, a
language-fallback ladder, a skill-relaxing ladder, overflow, wrap-up, sticky
windows and maximum waits) and calls check_invariants() (lua_harness.py)
after EVERY operation. Operations: start a conversation (returning customers
among them), presence changes (omr_agent_presence with the desktop's session,
omr_agent_state as the administrator), login with a new session, disconnect
(omr_agent_gone), heartbeats (omr_agent_seen, with a 1 s loss timeout), the
desktop reading and acking its inbox, accept / reject offers (also by the
wrong agent), close, transfer to a queue or an agent, wrap-up end, agent
updates (skills, languages, tenants, capacity never below what it holds),
agent removal and re-creation, token revocation, rules reloads, and omr_tick (after a short
sleep, or after moving some or all timers' scores to 0 so that they fire now).

Every call is a deterministic function of the seed and of what Redis
answered; time only matters through the timers. On a failure it prints the
seed, the step and the last operations (as FCALL argument lists).

Run: python3 tests/integration/test_routing_random.py
(OMR_RANDOM_SEEDS=1,2,3 and OMR_RANDOM_STEPS=N override the defaults.)
"""
import json
import os
import random
import sys
import time
import unittest
from collections import deque

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lua_harness import BLOCKING, Err, LuaTestCase, P  # noqa: E402

SEEDS = [int(s) for s in os.environ.get("OMR_RANDOM_SEEDS", "11,23,37,41,59,73").split(",")]
STEPS = int(os.environ.get("OMR_RANDOM_STEPS", "300"))

TENANTS = ["t1", "t2", "t3"]
CHANNELS = ["chat", "chat", "chat", "email", "voice"]
LANGS = ["en", "en", "en-GB", "es", "es-MX", "fr"]
CUSTOMERS = ["", "", "k1", "k2", "k3", "k4", "k5"]

AGENTS = {
    "a": {"tenants": ["t1", "t2"], "languages": {"en": 10, "es": 6},
          "capacity": {"chat": 2, "email": 1, "voice": 1}, "skills": {"billing": 7}},
    "b": {"tenants": ["t1"], "languages": {"es": 10},
          "capacity": {"chat": 1, "email": 2}, "skills": {"billing": 3}},
    "c": {"tenants": ["t2", "t3"], "languages": {"en": 8, "fr": 9},
          "capacity": {"chat": 3, "voice": 1}, "skills": {}},
    "d": {"tenants": ["t1", "t3"], "languages": {"en": 10},
          "capacity": {"chat": 1, "email": 1, "voice": 1}, "skills": {"billing": 5}},
    "e": {"tenants": ["t3"], "languages": {"fr": 10, "en": 4},
          "capacity": {"chat": 2}, "skills": {}},
}

RULESETS = {
    "A": dict(queues=[
        {"name": "vip", "tenants": ["t1"], "attributes": {"vip": "1"}, "priority": 5,
         "auto_accept": False, "offer_timeout_s": 1, "sticky_window_s": 20, "max_wait_s": 3,
         "max_wait_action": "overflow:general", "steps": [{"after_s": 0}]},
        {"name": "billing", "skills": {"billing": 5}, "priority": 2, "wrapup_s": 1,
         "max_wait_s": 5,
         "steps": [{"after_s": 0}, {"after_s": 1, "min_level_delta": 3}]},
        {"name": "spanish", "languages": ["es"], "strategy": "longest_idle",
         "sticky_window_s": 20,
         "steps": [{"after_s": 0}, {"after_s": 1, "languages": ["en"]}]},
        {"name": "general", "wrapup_s": 1, "sticky_window_s": 20, "max_wait_s": 4,
         "steps": [{"after_s": 0}]},
    ], blocking=BLOCKING, extra=dict(max_missed_offers=2, agent_grace_s=2,
                                     heartbeat_timeout_s=1, abandon_s=1, decline_hold_s=1)),
    "B": dict(queues=[
        {"name": "mail", "channels": ["email"], "auto_accept": False, "offer_timeout_s": 1,
         "steps": [{"after_s": 0}]},
        {"name": "spanish", "languages": ["es"], "min_proficiency": 5, "sticky_window_s": 20,
         "steps": [{"after_s": 0}, {"after_s": 1, "languages": ["en"]},
                   {"after_s": 2, "overflow": "general"}]},
        {"name": "billing", "skills": {"billing": 5}, "strategy": "best_skill",
         "steps": [{"after_s": 0}]},
        {"name": "general", "tenants": ["t1", "t2"], "wrapup_s": 1, "max_wait_s": 4,
         "steps": [{"after_s": 0}]},
    ], blocking={}, extra=dict(max_missed_offers=3, agent_grace_s=2, abandon_s=2)),
    "C": dict(queues=[
        {"name": "general", "auto_accept": False, "offer_timeout_s": 1, "max_wait_s": 2,
         "max_wait_action": "overflow:late", "wrapup_s": 1, "sticky_window_s": 20,
         "steps": [{"after_s": 0}, {"after_s": 1, "languages": ["en"]}]},
        {"name": "late", "priority": 1, "max_wait_s": 3, "steps": [{"after_s": 0}]},
    ], blocking={"voice": ["chat", "email"], "email": ["voice"]},
        extra=dict(max_missed_offers=2, agent_grace_s=2, abandon_s=1, decline_hold_s=2)),
}


class Failure(Exception):
    pass


class RandomRoutingTest(LuaTestCase):
    def call(self, fn, *args):
        self.log.append((fn,) + tuple(str(a) for a in args))
        if fn == "SLEEP":
            time.sleep(float(args[0]))
            return None
        if fn in ("ZADD", "ZUNIONSTORE", "XREADGROUP", "XACK"):
            return self.r(fn, *args)
        res = self.fcall(fn, *args)
        what = str(res).split(" ")[0] if isinstance(res, (str, Err)) else type(res).__name__
        key = f"{fn} -> {what}"
        self.stats[key] = self.stats.get(key, 0) + 1
        return res

    # ---- world ---------------------------------------------------------------

    def load_rules(self, name):
        rs = RULESETS[name]
        self.blocking = rs["blocking"]
        self.ruleset = name
        doc = {"version": f"{name}-{self.nrules}", "queues": rs["queues"],
               "blocking": rs["blocking"]}
        doc.update(rs["extra"])
        self.nrules += 1
        res = self.call("omr_rules_load", json.dumps(doc, sort_keys=True))
        if res not in ("loaded", "unchanged"):
            raise Failure(f"rules_load answered {res!r}")

    def create_agent(self, aid, spec=None):
        spec = dict(spec or AGENTS[aid])
        spec.update(name=aid.upper(), token_sha="sha-" + aid)
        self.call("omr_agent_upsert", aid, json.dumps(spec, sort_keys=True))
        self.login(aid)

    def login(self, aid):
        self.nsess += 1
        sess = f"s-{aid}-{self.nsess}"
        res = self.call("omr_agent_login", aid, "sha-" + aid, sess)
        if not isinstance(res, Err):
            self.sessions[aid] = sess
        return sess

    def agent_hash(self, aid):
        flat = self.r("HGETALL", f"{P}:agent:{aid}")
        return dict(zip(flat[::2], flat[1::2]))

    def convs_in(self, *states):
        out = []
        for key in sorted(self.keys(f"{P}:conv:*")):
            if self.r("TYPE", key) != "hash":
                continue
            cid = key[len(P) + 6:]
            st, agent = self.r("HMGET", key, "state", "agent")
            if st in states:
                out.append((cid, agent))
        return sorted(out)

    def existing_agents(self):
        return sorted(self.r("SMEMBERS", f"{P}:agents"))

    # ---- operations ----------------------------------------------------------

    def op_start(self, rnd):
        if len(self.r("SMEMBERS", f"{P}:queued")) >= 8:
            # keep the world small: serve some of what waits instead
            return rnd.choice([self.op_close, self.op_tick, self.op_presence])(rnd)
        self.nconv += 1
        cid = f"c{self.nconv}"
        lang = rnd.choice(LANGS)
        attrs = {"vip": "1"} if rnd.random() < 0.2 else {}
        skills = ["billing"] if rnd.random() < 0.2 else []
        tenant = rnd.choice(TENANTS)
        self.tenant_of[cid] = tenant
        self.call("omr_conv_start", cid, "tok", lang, lang.split("-")[0], "cust",
                  rnd.choice(CHANNELS), tenant, rnd.choice(CUSTOMERS),
                  json.dumps(attrs), json.dumps(skills), f"i1:{cid}-0")

    def op_customer_left(self, rnd):
        # the customer's page closes (chat.abandon_after_s: abandon_s)
        cid = rnd.choice(sorted(self.tenant_of) or ["none"])
        for m in self.r("SMEMBERS", f"{P}:conv:{cid}:cust"):
            self.call("omr_conv_left", cid, m)

    def op_customer_back(self, rnd):
        cid = rnd.choice(sorted(self.tenant_of) or ["none"])
        if cid in self.tenant_of:
            self.nsess += 1
            self.call("omr_conv_resume", cid, "tok", self.tenant_of[cid], f"i1:{cid}-{self.nsess}")

    def op_presence(self, rnd):
        aid = rnd.choice(self.existing_agents() or ["a"])
        sess = self.agent_hash(aid).get("session", "")
        if sess and rnd.random() < 0.7:
            state = rnd.choice(["available", "available", "available", "away", "break"])
            self.call("omr_agent_presence", aid, sess, state, "r" if state == "break" else "")
        else:
            state = rnd.choice(["available", "busy", "break", "offline", "away"])
            self.call("omr_agent_state", aid, state, "admin")

    def op_login(self, rnd):
        aid = rnd.choice(self.existing_agents() or ["a"])
        self.login(aid)
        if rnd.random() < 0.6:
            self.call("omr_agent_presence", aid, self.sessions.get(aid, ""), "available", "")

    def op_gone(self, rnd):
        aid = rnd.choice(self.existing_agents() or ["a"])
        sess = self.agent_hash(aid).get("session", "")
        if rnd.random() < 0.2:
            sess = self.sessions.get(aid, "") + "-old"
        self.call("omr_agent_gone", aid, sess)

    def op_seen(self, rnd):
        aid = rnd.choice(self.existing_agents() or ["a"])
        sess = self.agent_hash(aid).get("session", "") or self.sessions.get(aid, "")
        self.call("omr_agent_seen", aid, sess, "1")

    def op_read_inbox(self, rnd):
        aid = rnd.choice(self.existing_agents() or ["a"])
        key = f"{P}:agent:{aid}:inbox"
        got = self.call("XREADGROUP", "GROUP", "desktop", aid, "COUNT", "1000", "STREAMS", key,
                        ">")
        if isinstance(got, list):
            for _, entries in got:
                for entry_id, _ in entries:
                    self.r("XACK", key, "desktop", entry_id)

    def op_answer_offer(self, rnd):
        offered = self.convs_in("offered")
        if not offered:
            return self.op_tick(rnd)
        cid, agent = rnd.choice(offered)
        if rnd.random() < 0.1:
            agent = rnd.choice(list(AGENTS))
        if rnd.random() < 0.6:
            self.call("omr_offer_accept", cid, agent)
        else:
            self.call("omr_offer_reject", cid, agent, rnd.choice(["", "busy"]))

    def op_close(self, rnd):
        assigned = self.convs_in("assigned")
        if not assigned:
            return self.op_start(rnd)
        cid, agent = rnd.choice(assigned)
        self.call("omr_conv_close", cid, agent, "done")

    def op_transfer(self, rnd):
        assigned = self.convs_in("assigned")
        if not assigned:
            return self.op_start(rnd)
        cid, agent = rnd.choice(assigned)
        if rnd.random() < 0.5:
            queues = [q["name"] for q in RULESETS[self.ruleset]["queues"]]
            self.call("omr_conv_transfer", cid, agent, "queue", rnd.choice(queues), "note")
        else:
            self.call("omr_conv_transfer", cid, agent, "agent", rnd.choice(list(AGENTS)), "n")

    def op_wrapup_end(self, rnd):
        aid = rnd.choice(self.existing_agents() or ["a"])
        sess = self.agent_hash(aid).get("session", "")
        self.call("omr_agent_wrapup_end", aid, sess, rnd.choice(["chat", "chat", "email"]))

    def op_update(self, rnd):
        aids = self.existing_agents()
        if not aids:
            return
        aid = rnd.choice(aids)
        spec = {}
        what = rnd.choice(["skills", "languages", "capacity", "tenants"])
        if what == "skills":
            spec["skills"] = rnd.choice([{}, {"billing": 2}, {"billing": 5}, {"billing": 9}])
        elif what == "languages":
            spec["languages"] = rnd.choice([{"en": 10}, {"es": 10, "en": 3}, {"fr": 7},
                                            {"en": 6, "es": 6, "fr": 6}])
        elif what == "tenants":
            spec["tenants"] = rnd.sample(TENANTS, rnd.randint(1, 3))
        else:
            # never below what it holds now (that would be an administrator's doing)
            held = {}
            for cid in self.r("SMEMBERS", f"{P}:agent:{aid}:convs"):
                ch = self.r("HGET", f"{P}:conv:{cid}", "channel") or "chat"
                held[ch] = held.get(ch, 0) + 1
            spec["capacity"] = {ch: max(held.get(ch, 0), rnd.randint(0, 3))
                                for ch in ("chat", "email", "voice")}
        self.call("omr_agent_upsert", aid, json.dumps(spec, sort_keys=True))

    def op_remove_or_add(self, rnd):
        aids = self.existing_agents()
        missing = [a for a in AGENTS if a not in aids]
        if missing and rnd.random() < 0.6:
            aid = rnd.choice(missing)
            self.create_agent(aid)
            self.call("omr_agent_presence", aid, self.sessions.get(aid, ""), "available", "")
        elif aids:
            self.call("omr_agent_remove", rnd.choice(aids))

    def op_revoke(self, rnd):
        aids = self.existing_agents()
        if aids:
            aid = rnd.choice(aids)
            self.call("omr_agent_revoke", aid)
            # the administrator gives it a token again
            self.call("omr_agent_upsert", aid, json.dumps({"token_sha": "sha-" + aid}))

    def op_rules(self, rnd):
        self.load_rules(rnd.choice(sorted(RULESETS)))

    def op_tick(self, rnd):
        x = rnd.random()
        if x < 0.1:
            self.call("ZUNIONSTORE", f"{P}:timers", "1", f"{P}:timers", "WEIGHTS", "0")
        elif x < 0.4:
            timers = sorted(self.r("ZRANGE", f"{P}:timers", 0, -1))
            if timers:
                for t in rnd.sample(timers, min(len(timers), rnd.randint(1, 3))):
                    self.call("ZADD", f"{P}:timers", "0", t)
        elif x < 0.6:
            self.call("SLEEP", "0.05")
        self.call("omr_tick")

    OPS = [
        ("op_start", 22), ("op_presence", 8), ("op_login", 4), ("op_gone", 3), ("op_seen", 3),
        ("op_read_inbox", 5), ("op_answer_offer", 10), ("op_close", 12), ("op_transfer", 6),
        ("op_wrapup_end", 4), ("op_update", 5), ("op_remove_or_add", 2), ("op_revoke", 1),
        ("op_rules", 3), ("op_customer_left", 4), ("op_customer_back", 2),
        ("op_tick", 14),
    ]

    # ---- the run -------------------------------------------------------------

    def run_seed(self, seed, steps):
        self.r("FLUSHALL")
        rnd = random.Random(seed)
        self.log = deque(maxlen=15)
        self.sessions, self.nsess, self.nconv, self.nrules = {}, 0, 0, 0
        self.tenant_of = {}
        self.load_rules("A")
        for aid in ("a", "b", "c", "d"):
            self.create_agent(aid)
            self.call("omr_agent_presence", aid, self.sessions[aid], "available", "")
        names = [n for n, _ in self.OPS]
        weights = [w for _, w in self.OPS]
        for step in range(steps):
            op = rnd.choices(names, weights)[0]
            getattr(self, op)(rnd)
            try:
                self.check_invariants()
            except AssertionError as e:
                lines = [f"seed {seed}, step {step} ({op}), rules {self.ruleset}: {e}",
                         "last operations:"]
                lines += ["  " + repr(list(x)) for x in self.log]
                return "\n".join(lines)
        return None

    def test_random_operations(self):
        t0 = time.time()
        self.stats = {}
        failures = []
        for seed in SEEDS:
            problem = self.run_seed(seed, STEPS)
            if problem:
                print("\n" + problem, file=sys.stderr)
                failures.append(problem)
        if os.environ.get("OMR_RANDOM_STATS"):
            for k in sorted(self.stats):
                print(f"  {self.stats[k]:6d}  {k}", file=sys.stderr)
        print(f"\n{len(SEEDS)} seeds x {STEPS} steps in {time.time() - t0:.1f} s",
              file=sys.stderr)
        self.assertEqual(failures, [])


if __name__ == "__main__":
    unittest.main(verbosity=2)
