"""test_race.py - three routers, offers, and a storm of conversations.

ONE redis-server, THREE omnirouterd with the same config: one queue with
`auto_accept: false` and `offer_timeout_s: 1`, so every conversation is first
OFFERED to an agent, who accepts it, rejects it, or lets it time out
(routing.max_missed_offers is 100 so nobody is put on break for that; if
someone is anyway, it comes back).

100 agents (en, chat capacity 3) imported from a CSV roster and logged in
spread over the three instances. Each answers an offer at random:
  - 65% accept at once, 5% accept at the deadline (racing the timeout);
  - 13.5% reject at once, 1.5% reject at the deadline;
  - 15% ignore it (it times out after 1 s).
An accepted conversation is closed 20-200 ms after the agent saw it assigned
and got the customer's message, which frees the capacity.

10,000 customers arrive in 20 bursts of 500 (one burst every BURST_GAP_S),
spread over the three instances, at most 300 sockets open at once: each says
hello, sends one message and disconnects (the conversation stays in Redis and
routing goes on without it). They run in a child process (this file with
--customers) so that their handshakes do not delay the agents' answers.

A 1 s offer timeout on a slow or shared box (ASan, two CPUs) can melt down:
answers arrive after the deadline, every offer times out and is offered
again, and that load keeps them late. `Pace` keeps it in bounds the way a
real floor would: while answers are slow, agents keep accepted conversations
a little longer and some step away (presence "away"), and they come back
when answers are fast again; half of them start away. See Pace.

Checked WHILE it runs:
  - every agent-side event (offer, revoked, assigned, message, closed, and the
    ack or error of each accept / reject / close) goes, in arrival order and
    with its monotonic time, through an incremental checker: per agent, the
    conversations it holds (offered or assigned, not yet revoked or closed)
    never exceed its capacity; no conversation is held by two agents at once
    (two holds of one conversation on different agents' streams are ordered by
    the Redis time `ts` of the items: the first must end no later than the
    second begins); an assigned conversation is never revoked; nobody is
    offered again a conversation they rejected; a conversation is assigned
    and accepted by one agent only; items of one agent arrive in seq order;
  - a thread reads Redis every ~50 ms in ONE atomic read-only script: every
    agent's convs set size and load_chat are at most 3 and equal; no
    conversation is in two agents' convs sets; each held conversation is
    offered/assigned to that very agent; and for 50 random conversations
    started so far, state and indexes agree (queued: in the queued set and its
    wait set; offered/assigned: in its agent's convs set; closed: nowhere).
A violation stops the run 3 s later (the first 40 of each kind are printed).
At the end: every conversation is closed (none lost, none stuck queued or
offered), each was accepted exactly once and assigned to that agent, who
received the customer's message; every failed accept and every ignored offer
was revoked with reason "timeout", every reject with "rejected: busy"; Redis
holds nothing waiting or held; no sanitizer report; every daemon exits 0 on
SIGTERM. On failure the whole event stream is written to events.log in the
kept test directory.

Knobs (environment, for experiments): OMR_RACE_CONVERSATIONS (10000),
OMR_RACE_BURSTS (20), OMR_RACE_GAP_S (BURST_GAP_S), OMR_RACE_SEED (per-agent
answer choices; timing is not reproducible).
"""

import asyncio
import collections
import json
import os
import random
import resource
import sys
import threading
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from omr_harness import (Agent, Customer, Resp, agent_key, conv_key, ctl, log,  # noqa: E402
                         run_tests, seq_key, time_limit, TOKEN_RE)

N_AGENTS = 100
CAPACITY = 3
N_CONVERSATIONS = int(os.environ.get("OMR_RACE_CONVERSATIONS", "10000"))
N_BURSTS = int(os.environ.get("OMR_RACE_BURSTS", "20"))
BURST_GAP_S = float(os.environ.get("OMR_RACE_GAP_S", "4"))
MAX_SOCKETS = 300
SEED = int(os.environ.get("OMR_RACE_SEED", str(int(time.time()))))
OFFER_TIMEOUT_S = 1
RUN_DEADLINE_S = 330      # customers + drain; the test's own limit is below
TEST_LIMIT_S = 480        # ctest allows 600
SAMPLE_EVERY_S = 0.05
SAMPLED_CONVS = 50

# Offer answers: cumulative thresholds.
P_ACCEPT, P_ACCEPT_LATE, P_REJECT, P_REJECT_LATE = 0.65, 0.70, 0.835, 0.85  # rest: ignore

CONFIG = {
    # default ack timeout (the harness's 300 ms resends too eagerly under this load)
    "bus": {"ack_timeout_ms": 2000},
    # one agent desktop sends ~6 frames per conversation, bursts included
    "websocket": {"max_messages_per_second": 2000, "max_connections_per_ip": 5000},
    "routing": {"max_missed_offers": 100},
}
QUEUES = f"""
queues:
  - name: race
    auto_accept: false
    offer_timeout_s: {OFFER_TIMEOUT_S}
"""

P = "omr:{default}"


class Violations:
    def __init__(self, what):
        self.what = what
        self.count = 0
        self.first = []
        self.first_t = None
        self.lock = threading.Lock()

    def add(self, msg):
        with self.lock:
            if not self.count:
                self.first_t = time.monotonic()
            self.count += 1
            if len(self.first) < 40:
                self.first.append(msg)
                log(f"{self.what} VIOLATION: {msg}")

    def report(self):
        return f"{self.count} {self.what} violation(s), first ones:\n  " + "\n  ".join(self.first)


class EventChecker:
    """Fed every agent-side event in arrival order; checks the invariants
    after each one. Items are already de-duplicated by seq (harness)."""

    def __init__(self, capacity):
        self.cap = capacity
        self.v = Violations("event-stream")
        self.log = []                                    # (t, agent, kind, conv, detail)
        self.held = collections.defaultdict(dict)        # agent -> conv -> offered|assigned
        self.holds = collections.defaultdict(list)       # conv -> holds (see acquire)
        self.declined = collections.defaultdict(set)     # conv -> agents it was revoked from
        self.offers = collections.Counter()              # conv -> offers
        self.assigned_to = collections.defaultdict(list)  # conv -> agents (assigned items)
        self.accepted_by = collections.defaultdict(set)   # conv -> agents whose accept was acked
        self.closed = collections.Counter()              # conv -> closed items
        self.closed_total = 0
        # (agent, conv) -> the reasons of its revokes, in order: an offer that timed out
        # before the desktop acknowledged it may be offered to the same agent again at once
        # (ROUTING.md, Offers), so one agent can see the same conversation revoked twice
        self.revoked = collections.defaultdict(list)
        self.msg_seen = set()                            # (agent, conv): customer message item
        self.expect_timeout = set()                      # (agent, conv): must be revoked "timeout"
        self.expect_rejected = set()                     # (agent, conv): must be revoked "rejected"
        self.last_seq = {}
        self.max_held = 0
        self.events = 0
        self.kinds = collections.Counter()
        self.overlaps = 0                                # hand-overs checked at a release

    def _record(self, t, agent, kind, conv, detail=""):
        self.events += 1
        self.kinds[kind] += 1
        self.log.append((t, agent, kind, conv, detail))

    def item(self, agent, f):
        kind, conv, t = f["type"], f.get("conversation_id"), f["_t"]
        seq = f.get("seq")
        self._record(t, agent, kind, conv, f"ts={f.get('ts')} {f.get('reason', '')}")
        last = self.last_seq.get(agent)
        if last is not None and seq_key(seq) <= seq_key(last):
            self.v.add(f"{agent}: item {seq} ({kind} {conv}) after {last}: items out of order")
        self.last_seq[agent] = seq
        ts = f.get("ts")
        if not isinstance(ts, int):
            self.v.add(f"{agent}: {kind} item without an integer ts: {f}")
            return
        held = self.held[agent]
        if kind == "offer":
            if conv in held:
                self.v.add(f"{agent}: offered {conv} again while holding it ({held[conv]})")
            # (within routing.decline_hold_s, longer than this test; a timeout of an
            # offer the desktop had not acknowledged yet is not held against it)
            last = (self.revoked.get((agent, conv)) or [None])[-1]
            if agent in self.declined[conv] and last != "timeout":
                self.v.add(f"{agent}: offered {conv} again after it was revoked from it "
                           f"({last})")
            held[conv] = "offered"
            self.offers[conv] += 1
            self.acquire(agent, conv, ts)
        elif kind in ("revoked", "closed"):
            state = held.pop(conv, None)
            want = "offered" if kind == "revoked" else "assigned"
            if state != want:
                self.v.add(f"{agent}: {kind} {conv} while {state or 'not holding it'}"
                           + (" (an ACCEPTED conversation was taken back)"
                              if kind == "revoked" and state == "assigned" else ""))
            self.release(agent, conv, ts, kind)
            if kind == "revoked":
                self.declined[conv].add(agent)
                self.revoked[(agent, conv)].append(f.get("reason"))
            else:
                self.closed[conv] += 1
                self.closed_total += 1
                if self.closed[conv] > 1:
                    self.v.add(f"{conv} closed {self.closed[conv]} times (last by {agent})")
        elif kind == "assigned":
            if held.get(conv) != "offered":
                self.v.add(f"{agent}: assigned {conv} without an open offer "
                           f"(state {held.get(conv)})")
            held[conv] = "assigned"
            self.assigned_to[conv].append(agent)
            if len(self.assigned_to[conv]) > 1:
                self.v.add(f"{conv} assigned more than once: {self.assigned_to[conv]}")
        elif kind == "message":
            if f.get("from") == "customer":
                if held.get(conv) != "assigned":
                    self.v.add(f"{agent}: got a message of {conv} while "
                               f"{held.get(conv) or 'not holding it'}")
                self.msg_seen.add((agent, conv))
        elif kind == "event" and f.get("event") in ("customer-left", "customer-back"):
            if held.get(conv) != "assigned":  # (told only about what it holds)
                self.v.add(f"{agent}: {f['event']} of {conv} while "
                           f"{held.get(conv) or 'not holding it'}")
        else:
            self.v.add(f"{agent}: unexpected item {f}")
        n = len(held)
        self.max_held = max(self.max_held, n)
        if n > self.cap:
            self.v.add(f"{agent}: holds {n} conversations (capacity {self.cap}) after {kind} "
                       f"{conv}: {sorted(held.items())}")

    # One conversation, two agents. Each agent's items come in Redis order, but
    # two agents' streams are delivered independently, so B's offer may arrive
    # before A's revoke even when Redis revoked first. The holds of one
    # conversation are intervals [offer ts, revoked/closed ts) in Redis time
    # (both items of one routing decision carry the same ts) and must not
    # overlap; when an interval is still open its bound is checked at its end.
    def acquire(self, agent, conv, ts):
        h = {"agent": agent, "start": ts, "end": None, "end_by": []}
        for o in self.holds[conv]:
            if o["agent"] == agent:
                continue
            if o["start"] <= ts:
                if o["end"] is None:
                    o["end_by"].append((agent, ts))     # o must end by the time h began
                    self.overlaps += 1
                elif o["end"] > ts:
                    self.overlap(conv, o, agent, ts)
            else:
                h["end_by"].append((o["agent"], o["start"]))  # h must end before o began
                self.overlaps += 1
        self.holds[conv].append(h)

    def release(self, agent, conv, ts, kind):
        mine = [h for h in self.holds[conv] if h["agent"] == agent and h["end"] is None]
        if not mine:
            return  # reported by the caller (not holding it)
        h = mine[-1]
        h["end"] = ts
        for other, other_start in h["end_by"]:
            if ts > other_start:
                self.overlap(conv, h, other, other_start, kind)
        h["end_by"] = []

    def overlap(self, conv, h, other, other_start, kind="released"):
        self.v.add(f"{conv} HELD BY TWO AGENTS: {other} got it at ts {other_start} while "
                   f"{h['agent']} held it from ts {h['start']} to {h['end']} ({kind})")

    def answer(self, agent, kind, conv, f):
        """The ack or error of an accept / reject / close request."""
        ok = f.get("type") == "ack"
        code = None if ok else f.get("code")
        self._record(f["_t"], agent, f"{kind}-{'ack' if ok else 'error'}", conv, code or "")
        state = self.held[agent].get(conv)
        if kind == "accept":
            if ok:
                if state not in ("offered", "assigned"):
                    self.v.add(f"{agent}: accept of {conv} acked while {state or 'not held'}")
                self.accepted_by[conv].add(agent)
                if len(self.accepted_by[conv]) > 1:
                    self.v.add(f"{conv} accepted by {sorted(self.accepted_by[conv])}")
            elif code == "not-assigned":
                self.expect_timeout.add((agent, conv))
            elif code != "unavailable":
                self.v.add(f"{agent}: accept of {conv} refused: {f}")
        elif kind == "reject":
            if ok:
                self.expect_rejected.add((agent, conv))
            elif code == "not-assigned":
                pass  # a timeout (checked by the end checks) or a retried reject
            elif code != "unavailable":
                self.v.add(f"{agent}: reject of {conv} refused: {f}")
        elif kind == "close":
            if not ok and code != "unavailable":
                self.v.add(f"{agent}: close of {conv} refused: {f}")

    def open_holds(self):
        return {a: dict(h) for a, h in self.held.items() if h}


# A consistent snapshot: one read-only script, so nothing moves while it reads.
SNAPSHOT_LUA = """
local P = ARGV[1]
local agents = {}
for i, k in ipairs(KEYS) do
  local h = redis.call('HMGET', k, 'load_chat', 'load', 'capacity', 'presence')
  local convs = {}
  for _, c in ipairs(redis.call('SMEMBERS', k .. ':convs')) do
    local ch = redis.call('HMGET', P .. ':conv:' .. c, 'state', 'agent')
    convs[#convs + 1] = c
    convs[#convs + 1] = ch[1] or ''
    convs[#convs + 1] = ch[2] or ''
  end
  agents[i] = {h[1] or '', h[2] or '', h[3] or '', h[4] or '', convs}
end
local sampled = {}
for i = 2, #ARGV do
  local c = ARGV[i]
  local h = redis.call('HMGET', P .. ':conv:' .. c, 'state', 'agent', 'wait_key')
  local state, agent, wk = h[1] or '', h[2] or '', h[3] or ''
  local in_queued = redis.call('SISMEMBER', P .. ':queued', c)
  local in_wait = 0
  if wk ~= '' and redis.call('ZSCORE', wk, c) then in_wait = 1 end
  local in_agent = 0
  if agent ~= '' then in_agent = redis.call('SISMEMBER', P .. ':agent:' .. agent .. ':convs', c) end
  sampled[#sampled + 1] = {c, state, agent, in_queued, in_wait, in_agent}
end
return {agents, sampled, redis.call('SCARD', P .. ':queued')}
"""


class RedisSampler(threading.Thread):
    def __init__(self, port, agent_ids, conv_list, seed, pace=None):
        super().__init__(daemon=True)
        self.pace = pace
        self.port = port
        self.agent_ids = agent_ids
        self.conv_list = conv_list  # appended to by the event loop; read here
        self.rng = random.Random(seed)
        self.stop_evt = threading.Event()
        self.v = Violations("redis")
        self.errors = []
        self.samples = 0
        self.max_scard = 0
        self.max_load = 0
        self.max_queued = 0
        self.states_seen = collections.Counter()
        self.slowest = 0.0

    def check(self, res):
        agents, sampled, queued = res
        self.max_queued = max(self.max_queued, queued)
        owner = {}
        on_break = set()
        for aid, (load_chat, load, cap, presence, flat) in zip(self.agent_ids, agents):
            if presence == "break":
                on_break.add(aid)
            lc = int(load_chat or 0)
            ld = int(load or 0)
            capj = json.loads(cap or "{}").get("chat")
            convs = flat[0::3]
            n = len(convs)
            self.max_scard = max(self.max_scard, n)
            self.max_load = max(self.max_load, lc)
            if capj != CAPACITY:
                self.v.add(f"{aid}: capacity {cap!r}, want chat {CAPACITY}")
            if n > CAPACITY or lc > CAPACITY or ld > CAPACITY:
                self.v.add(f"{aid} OVER CAPACITY: convs {sorted(convs)} load_chat {lc} load {ld}")
            if lc != n or ld != lc or lc < 0:
                self.v.add(f"{aid}: load_chat {lc}, load {ld}, but {n} conversations in convs")
            for i in range(0, len(flat), 3):
                c, state, agent = flat[i], flat[i + 1], flat[i + 2]
                if c in owner:
                    self.v.add(f"{c} HELD BY TWO AGENTS: in the convs sets of {owner[c]} and "
                               f"{aid}")
                owner[c] = aid
                if state not in ("offered", "assigned") or agent != aid:
                    self.v.add(f"{c} in {aid}'s convs but its hash says state={state!r} "
                               f"agent={agent!r}")
        if self.pace is not None:
            self.pace.on_break = on_break  # one attribute store: safe across threads
        for c, state, agent, in_queued, in_wait, in_agent in sampled:
            self.states_seen[state] += 1
            bad = None
            if state == "queued":
                if not (in_queued and in_wait) or agent:
                    bad = "queued but not in the queued set and its wait set (or has an agent)"
            elif state in ("offered", "assigned"):
                if not in_agent or in_queued or in_wait or owner.get(c) != agent:
                    bad = "held but not (only) in its agent's convs set"
            elif state == "closed":
                if in_queued or in_wait or c in owner:
                    bad = "closed but still queued or held"
            else:
                bad = "unknown state (LOST?)"
            if bad:
                self.v.add(f"{c}: {bad}: state={state!r} agent={agent!r} queued={in_queued} "
                           f"wait={in_wait} agent_convs={in_agent} owner={owner.get(c)}")

    def run(self):
        try:
            c = Resp(self.port)
            sha = c.cmd("SCRIPT", "LOAD", SNAPSHOT_LUA)
            keys = [agent_key(a) for a in self.agent_ids]
            while not self.stop_evt.is_set():
                t0 = time.monotonic()
                n = len(self.conv_list)
                sample = [self.conv_list[self.rng.randrange(n)]
                          for _ in range(min(SAMPLED_CONVS, n))] if n else []
                res = c.cmd("EVALSHA_RO", sha, len(keys), *keys, P, *sample)
                self.check(res)
                self.samples += 1
                dt = time.monotonic() - t0
                self.slowest = max(self.slowest, dt)
                self.stop_evt.wait(max(0.0, SAMPLE_EVERY_S - dt))
            c.close()
        except Exception as e:  # noqa: BLE001
            self.errors.append(repr(e))
            log(f"redis sampler failed: {e!r}")


class Pace:
    """Keeps the agents' answers inside the 1 s offer timeout on a slow box.

    100 agents x 3 slots is a closed loop of 300 conversations in flight. When
    the box (two CPUs, ASan, often shared) cannot serve them, every hop
    queues, offers reach the desktops and answers reach Redis after the
    deadline, prompt accepts fail, conversations bounce from offer to offer
    at 300 per second and the load that causes it never drops: no accept ever
    succeeds again, and after max_missed_offers timeouts in a row every agent
    is put on break. So, as a real floor would, agents slow down when the
    system is slow. Every 0.5 s the 90th percentile of offer-to-answer lag
    (Redis time of the offer to the arrival of the ack or error) is compared
    with HIGH and LOW:
      - over HIGH: an accepted conversation is kept `extra` seconds longer
        (up to MAX_EXTRA), and a fifth of the available agents (half, when
        far over) step away (presence "away", down to MIN_STAFF): fewer
        offers in flight;
      - under LOW: `extra` shrinks and ten agents come back.
    Half the agents step away at the start (before the first burst) and come
    back ten at a time while answers are fast.
    Agents the router put on break for missed offers come back too. The
    invariants are checked the same whatever the pace; going away and coming
    back (presence changes while offers are open) is one more race."""

    HIGH, LOW = 0.5, 0.3
    MAX_EXTRA = 2.0
    MIN_STAFF, START_STAFF = 25, 50

    def __init__(self, agents, rng, presence):
        self.agents = agents          # Agent objects
        self.rng = rng
        self.presence = presence      # async (agent, "available"|"away") -> None
        self.staff = min(len(agents), self.START_STAFF)   # like a slow start: grows if fast
        self.available = set(rng.sample(sorted(a.agent_id for a in agents), self.staff))
        self.min_staff = self.staff
        self.window = []
        self.all = []
        self.delivery = []            # offer ts to its arrival at the desktop
        self.extra = 0.0
        self.max_extra = 0.0
        self.slow_time = 0.0          # seconds with extra > 0 or agents away
        self.switches = 0
        self.on_break = set()         # replaced by the Redis sampler after each snapshot
        self.sent_back = set()
        self.back_from_break = 0
        self.errors = []
        self.loop_lag = []

    def note(self, lag, delivery):
        self.window.append(lag)
        self.all.append(lag)
        self.delivery.append(delivery)

    def hold(self, rng):
        return rng.uniform(0.02, 0.2) + self.extra * rng.uniform(0.5, 1.5)

    async def run(self, period=0.5):
        by_id = {a.agent_id: a for a in self.agents}
        while True:
            await asyncio.sleep(period)
            if self.extra > 0 or self.staff < len(self.agents):
                self.slow_time += period
            if len(self.window) >= 10:
                w = sorted(self.window)
                p90 = w[int(len(w) * 0.9)]
                self.window = []
                if p90 > self.HIGH:
                    self.extra = min(self.MAX_EXTRA, self.extra * 1.5 + 0.2)
                    cut = 0.5 if p90 > 4 * self.HIGH else 0.8
                    self.staff = max(self.MIN_STAFF, int(self.staff * cut))
                elif p90 < self.LOW:
                    self.extra = max(0.0, self.extra * 0.8 - 0.05)
                    self.staff = min(len(self.agents), self.staff + 10)
                self.max_extra = max(self.max_extra, self.extra)
                self.min_staff = min(self.min_staff, self.staff)
            moves = []
            avail = sorted(self.available)
            away = sorted(set(by_id) - self.available)
            if len(avail) > self.staff:
                moves += [(aid, "away") for aid in self.rng.sample(avail, len(avail) - self.staff)]
            elif len(avail) < self.staff:
                moves += [(aid, "available")
                          for aid in self.rng.sample(away, min(len(away), self.staff - len(avail)))]
            for aid in sorted(set(self.on_break) & self.available - self.sent_back):
                moves.append((aid, "available"))
                self.sent_back.add(aid)
                self.back_from_break += 1
            self.sent_back &= set(self.on_break)  # left the break: may be sent back again
            for aid, p in moves:
                (self.available.add if p == "available" else self.available.discard)(aid)
            self.switches += len(moves)
            try:
                await asyncio.gather(*(self.presence(by_id[aid], p) for aid, p in moves))
            except Exception as e:  # noqa: BLE001
                self.errors.append(repr(e))
                raise

    async def watch_loop(self, period=0.05):
        """How late this process's event loop runs a timer: the test's own share
        of the lag."""
        while True:
            t = time.monotonic()
            await asyncio.sleep(period)
            self.loop_lag.append(time.monotonic() - t - period)

    def summary(self):
        if not self.all:
            return "no answers"

        def pct(values):
            a = sorted(values)
            q = [a[min(len(a) - 1, int(len(a) * x))] for x in (0.5, 0.9, 0.99)]
            return f"p50 {q[0]:.3f}s p90 {q[1]:.3f}s p99 {q[2]:.3f}s max {a[-1]:.3f}s"
        return (f"offer-to-answer lag {pct(self.all)} over {len(self.all)} prompt answers "
                f"(of which offer delivery {pct(self.delivery)}); test event loop late by "
                f"{pct(self.loop_lag or [0])}; pace: hold extra max "
                f"{self.max_extra:.2f}s, fewest agents available {self.min_staff}, slowed "
                f"for {self.slow_time:.0f}s, {self.switches} presence changes, "
                f"{self.back_from_break} back from a missed-offers break")


def cpu_seconds(pid):
    """user+system CPU seconds of a live process (from /proc), or None."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def cpu_report(redis, daemons):
    ru = resource.getrusage(resource.RUSAGE_SELF)
    parts = [f"python {ru.ru_utime + ru.ru_stime:.1f}"]
    for name, proc in [(d.name, d.proc) for d in daemons] + [("redis", redis.proc)]:
        s = cpu_seconds(proc.pid)
        parts.append(f"{name} {s:.1f}" if s is not None else f"{name} ?")
    try:
        with open("/proc/loadavg") as f:
            load = f.read().split()[0]
    except OSError:
        load = "?"
    return f"CPU seconds: {', '.join(parts)}; load average {load} on {os.cpu_count()} CPUs"


def import_agents(env, d, agent_ids):
    roster = os.path.join(env.dir, "roster.csv")
    with open(roster, "w", newline="") as f:
        f.write("id,name,languages,skills,capacity,tenants\r\n")
        for i, aid in enumerate(agent_ids):
            f.write(f"{aid},Race Agent {i},en,,chat:{CAPACITY},\r\n")
    p = ctl(d, "agent", "import", roster)
    tokens = dict(ln.split(",", 1) for ln in p.stdout.splitlines() if ln.strip())
    assert sorted(tokens) == sorted(agent_ids) and all(TOKEN_RE.match(t)
                                                       for t in tokens.values()), \
        f"import printed {p.stdout[:300]!r}"
    return tokens


@time_limit(TEST_LIMIT_S)
async def test_race_offers_three_instances(env):
    t_start = time.monotonic()
    log(f"seed {SEED}: {N_CONVERSATIONS} conversations in {N_BURSTS} bursts every "
        f"{BURST_GAP_S}s, {N_AGENTS} agents x {CAPACITY} over 3 instances")
    r = env.redis()
    daemons = []
    for i in range(3):
        d = env.daemon(r, f"d{i + 1}", config=CONFIG, start=False)
        with open(d.cfg_path, "a") as f:
            f.write(QUEUES)
        daemons.append(d.start())

    agent_ids = [f"ra{i:03d}" for i in range(N_AGENTS)]
    t0 = time.monotonic()
    tokens = import_agents(env, daemons[0], agent_ids)
    log(f"imported {N_AGENTS} agents in {time.monotonic() - t0:.1f}s")

    checker = EventChecker(CAPACITY)
    requests = {}            # request id -> (kind, conv)
    ready = {}               # (agent, conv) -> asyncio.Event: assigned + customer message seen
    got = collections.defaultdict(set)  # (agent, conv) -> {"assigned", "message"}
    stray = []               # frames nobody expected
    stats = collections.Counter()
    agent_rng = {aid: random.Random(f"{SEED}:{aid}") for aid in agent_ids}

    def ready_event(key):
        ev = ready.get(key)
        if ev is None:
            ev = ready[key] = asyncio.Event()
        return ev

    def observer(agent, f):
        aid, kind = agent.agent_id, f.get("type")
        if kind in ("offer", "revoked", "assigned", "closed", "message", "event"):
            checker.item(aid, f)
            conv = f.get("conversation_id")
            if kind == "assigned" or (kind == "message" and f.get("from") == "customer"):
                g = got[(aid, conv)]
                g.add(kind)
                if len(g) == 2:
                    ready_event((aid, conv)).set()
        elif kind in ("ack", "error") and f.get("id") in requests:
            rk, conv = requests.pop(f["id"])
            checker.answer(aid, rk, conv, f)
        elif kind in ("ack", "error") and str(f.get("id", "")).startswith("p-"):
            pass  # presence
        elif kind == "presence" and "seq" not in f and f.get("presence") in (
                "available", "away", "break", "busy", "offline"):
            stats[f"presence notice {f['presence']}"] += 1  # a missed-offers break
        elif kind == "error" and "id" not in f and f.get("code") == "unavailable":
            # an item ack the router could not store in time (overload): the
            # item would come again at the next login; nothing else changes
            stats["item ack unavailable"] += 1
        elif kind != "welcome":
            stray.append((aid, f))
            log(f"{aid}: unexpected frame {f}")

    async def ask(agent, kind, conv):
        """accept / reject / close, resent while the server says unavailable."""
        for attempt in range(30):
            rid = agent.next_id({"accept": "acc", "reject": "rej", "close": "x"}[kind])
            requests[rid] = (kind, conv)
            if kind == "accept":
                f = await agent.accept(conv, id=rid, timeout=60)
            elif kind == "reject":
                f = await agent.reject(conv, "busy", id=rid, timeout=60)
            else:
                f = await agent.close_conv(conv, id=rid, timeout=60, expect_ack=False)
            if f.get("type") == "error" and f.get("code") == "unavailable":
                stats[f"{kind} unavailable"] += 1
                await asyncio.sleep(0.2)
                continue
            return f
        raise AssertionError(f"{agent.agent_id}: {kind} {conv} unavailable 30 times")

    async def on_item(agent, f):
        if f.get("type") != "offer":
            return
        aid, conv = agent.agent_id, f["conversation_id"]
        arrived = time.time() - (time.monotonic() - f["_t"])  # wall clock, like ts
        x = agent_rng[aid].random()
        if x >= P_REJECT_LATE:
            stats["ignored"] += 1
            checker.expect_timeout.add((aid, conv))
            return
        action = "accept" if x < P_ACCEPT_LATE else "reject"
        late = P_ACCEPT <= x < P_ACCEPT_LATE or P_REJECT <= x < P_REJECT_LATE
        if late:
            # answer right at the deadline: sometimes before, sometimes after the timeout
            wait = f["expires_ms"] / 1000 - time.time() + agent_rng[aid].uniform(-0.15, 0.1)
            await asyncio.sleep(max(0.0, wait))
        else:
            await asyncio.sleep(agent_rng[aid].uniform(0, 0.03))
        stats[f"{action}{' late' if late else ''}"] += 1
        res = await ask(agent, action, conv)
        if not late:
            pace.note(time.time() - f["ts"] / 1000, arrived - f["ts"] / 1000)
        if action == "reject" or res.get("type") != "ack":
            return
        try:
            await asyncio.wait_for(ready_event((aid, conv)).wait(), 60)
        except asyncio.TimeoutError:
            raise AssertionError(f"{aid}: accepted {conv} but no assigned + customer message "
                                 f"within 60s (got {sorted(got[(aid, conv)])})") from None
        await asyncio.sleep(pace.hold(agent_rng[aid]))
        res = await ask(agent, "close", conv)
        if res.get("type") != "ack":
            raise AssertionError(f"{aid}: close {conv} refused: {res}")

    agents = []
    for i, aid in enumerate(agent_ids):
        agents.append(Agent(daemons[i % 3].url, aid, tokens[aid], on_item=on_item,
                            observer=observer))

    async def set_presence(agent, presence):
        for attempt in range(30):
            try:
                await agent.presence(presence, timeout=60)
                return
            except AssertionError as e:
                if "unavailable" not in str(e):
                    raise
                stats["presence unavailable"] += 1
                await asyncio.sleep(0.2)
        raise AssertionError(f"{agent.agent_id}: presence {presence} unavailable 30 times")

    pace = Pace(agents, random.Random(f"{SEED}:pace"), set_presence)
    await asyncio.gather(*(a.login(timeout=30) for a in agents))
    await asyncio.gather(*(a.presence("available", timeout=30) for a in agents
                           if a.agent_id in pace.available))
    log(f"{N_AGENTS} agents logged in ({N_AGENTS // 3}+ per instance), {len(pace.available)} "
        f"available to start with ({time.monotonic() - t_start:.1f}s since start)")

    conv_list = []           # every conversation a customer started (sampler reads it)
    conv_of = {}             # conv -> customer index
    cust_errors = []
    cust_stats = {}
    sampler = RedisSampler(r.port, agent_ids, conv_list, SEED, pace)
    sampler.start()

    async def read_customers(proc):
        """Conversation ids as the customer process reports them."""
        while True:
            line = await proc.stdout.readline()
            if not line:
                return
            m = json.loads(line)
            if "conv" in m:
                if m["conv"] in conv_of:
                    cust_errors.append(f"conversation id {m['conv']} given twice")
                conv_of[m["conv"]] = m["i"]
                conv_list.append(m["conv"])
            elif "error" in m:
                cust_errors.append(f"customer {m['i']}: {m['error']}")
            elif "done" in m:
                cust_stats.update(m["stats"])

    async def progress():
        while True:
            await asyncio.sleep(10)
            log(f"progress: {len(conv_of)} started, {sum(checker.offers.values())} offers, "
                f"{checker.closed_total} closed, {checker.events} events checked, held now "
                f"{sum(len(h) for h in checker.held.values())}, redis queued max "
                f"{sampler.max_queued}, {sampler.samples} samples, pace: extra "
                f"{pace.extra:.2f}s, {len(pace.available)} available; {dict(stats)}")

    t_main = time.monotonic()
    prog = asyncio.create_task(progress())
    pacer = asyncio.create_task(pace.run())
    looper = asyncio.create_task(pace.watch_loop())
    try:
        deadline = t_main + RUN_DEADLINE_S
        # The customers run in a child process: their 10,000 handshakes would
        # otherwise delay the agents' answers in this event loop.
        cust = await asyncio.create_subprocess_exec(
            sys.executable, os.path.abspath(__file__), "--customers",
            json.dumps({"urls": [d.url for d in daemons], "n": N_CONVERSATIONS,
                        "bursts": N_BURSTS, "gap": BURST_GAP_S, "sockets": MAX_SOCKETS}),
            stdout=asyncio.subprocess.PIPE)
        cust_reader = asyncio.create_task(read_customers(cust))

        def broken():
            """An invariant broke 3 s ago: stop early, the first violations say it all."""
            t = [v.first_t for v in (checker.v, sampler.v) if v.first_t is not None]
            return bool(t) and time.monotonic() > min(t) + 3

        unfinished = False
        try:
            while not cust_reader.done() and time.monotonic() < deadline and not broken():
                await asyncio.wait([cust_reader], timeout=0.5)
            if cust_reader.done():
                cust_reader.result()  # raises what went wrong reading the customers' reports
                rc = await asyncio.wait_for(cust.wait(), 30)
                if rc != 0:
                    cust_errors.append(f"the customer process exited {rc}")
            else:
                unfinished = True
                cust_reader.cancel()
        finally:
            if cust.returncode is None:
                cust.kill()
                await cust.wait()
        t_customers = time.monotonic() - t_main
        log(f"customers done in {t_customers:.1f}s: {len(conv_of)} conversations started, "
            f"{len(cust_errors)} customer errors{', UNFINISHED' if unfinished else ''}; "
            f"{cust_stats}")

        # Drain: every started conversation must come to its close.
        while time.monotonic() < deadline and not broken():
            if checker.closed_total >= len(conv_of) and \
                    all(not a.tasks for a in agents) and not checker.open_holds():
                break
            await asyncio.sleep(0.2)
        t_drain = time.monotonic() - t_main
        prog.cancel()
        pacer.cancel()
        looper.cancel()
        await asyncio.sleep(2 * SAMPLE_EVERY_S)
        sampler.stop_evt.set()
        sampler.join(10)
        log(f"main phase {t_drain:.1f}s (customers {t_customers:.1f}s); events checked "
            f"{checker.events} {dict(checker.kinds)}; cross-stream hand-overs resolved by ts "
            f"{checker.overlaps}; max held by one agent {checker.max_held}; redis samples "
            f"{sampler.samples} (slowest {sampler.slowest * 1000:.0f} ms), max convs "
            f"{sampler.max_scard}, max load_chat {sampler.max_load}, max queued "
            f"{sampler.max_queued}, sampled states {dict(sampler.states_seen)}; answers "
            f"{dict(stats)}")

        log(pace.summary())
        log(cpu_report(r, daemons))
        final_checks(r, checker, sampler, pace, unfinished, cust_errors, conv_of, agents,
                     agent_ids, stray)
    except BaseException:
        # The event log, for a post-mortem (the directory is kept on failure).
        path = os.path.join(env.dir, "events.log")
        with open(path, "w") as f:
            f.write("# seconds-since-first-burst agent event conversation detail\n")
            for t, aid, kind, conv, detail in checker.log:
                f.write(f"{t - t_main:.3f} {aid} {kind} {conv} {detail}\n")
        log(f"event log written to {path}")
        # Leave no desktop open: the daemons would wait for their close handshakes.
        for t in (prog, pacer, looper):
            t.cancel()
        sampler.stop_evt.set()
        await asyncio.wait([asyncio.ensure_future(a.close()) for a in agents], timeout=20)
        raise

    t0 = time.monotonic()
    await asyncio.gather(*(a.close() for a in agents))
    for d in daemons:
        d.stop()  # exit 0 on SIGTERM, no sanitizer report
    log(f"agents closed and daemons stopped in {time.monotonic() - t0:.1f}s; "
        f"test body {time.monotonic() - t_start:.1f}s")


def final_checks(r, checker, sampler, pace, unfinished, cust_errors, conv_of, agents, agent_ids,
                 stray):
    # The headline invariants first.
    assert not sampler.errors, f"Redis sampler failed: {sampler.errors}"
    assert not pace.errors, f"presence changes failed: {pace.errors}"
    assert checker.v.count == 0, checker.v.report()
    assert sampler.v.count == 0, sampler.v.report()
    assert sampler.samples >= 100, f"the Redis sampler ran only {sampler.samples} times"
    assert sampler.max_scard == CAPACITY and checker.max_held == CAPACITY, \
        f"agents never filled up (redis max {sampler.max_scard}, events max " \
        f"{checker.max_held}): the race was not exercised"

    assert not unfinished and not cust_errors, (
        f"customers {'unfinished' if unfinished else 'finished'}, {len(cust_errors)} failed:\n  "
        + "\n  ".join(cust_errors[:10]))
    assert len(conv_of) == N_CONVERSATIONS, f"{len(conv_of)} conversations started"
    errors = [e for a in agents for e in a.task_errors]
    assert not errors, f"{len(errors)} agent-side failures:\n" + "\n".join(errors[:10])
    assert not stray, f"unexpected frames: {stray[:10]}"
    held = checker.open_holds()
    assert not held, f"agents still hold conversations at the end: {list(held.items())[:10]}"

    # None lost: each started conversation was accepted exactly once, by the agent
    # it was assigned to, who saw the customer's message, and closed once.
    lost = [c for c in conv_of if checker.closed[c] != 1]
    assert not lost, (f"{len(lost)} conversations not closed exactly once within "
                      f"{RUN_DEADLINE_S}s, e.g. " + ", ".join(
                          f"{c} (offers {checker.offers[c]}, assigned "
                          f"{checker.assigned_to[c]}, closed {checker.closed[c]})"
                          for c in lost[:10]))
    bad = []
    for c in conv_of:
        acc, asg = checker.accepted_by[c], checker.assigned_to[c]
        if len(acc) != 1 or asg != list(acc):
            bad.append(f"{c}: accepted by {sorted(acc)}, assigned to {asg}")
        elif (asg[0], c) not in checker.msg_seen:
            bad.append(f"{c}: {asg[0]} never got the customer's message")
    assert not bad, f"{len(bad)} conversations not accepted exactly once:\n  " + \
        "\n  ".join(bad[:10])
    strays = set(checker.offers) - set(conv_of)
    assert not strays, f"offers of conversations no customer started: {sorted(strays)[:10]}"
    wrong = [(a, c, checker.revoked.get((a, c))) for a, c in checker.expect_timeout
             if "timeout" not in checker.revoked.get((a, c), [])]
    assert not wrong, f"{len(wrong)} missed offers not revoked with reason timeout: {wrong[:10]}"
    wrong = [(a, c, checker.revoked.get((a, c))) for a, c in checker.expect_rejected
             if "rejected: busy" not in checker.revoked.get((a, c), [])]
    assert not wrong, f"{len(wrong)} rejected offers not revoked as rejected: {wrong[:10]}"
    n_offers = sum(checker.offers.values())
    n_revoked = sum(len(v) for v in checker.revoked.values())
    assert n_offers == N_CONVERSATIONS + n_revoked, \
        f"{n_offers} offers != {N_CONVERSATIONS} accepted + {n_revoked} revoked"
    timeouts = sum(v.count("timeout") for v in checker.revoked.values())
    home = {aid: i % 3 for i, aid in enumerate(agent_ids)}
    winners = collections.Counter(checker.assigned_to[c][0] for c in conv_of)
    cross = sum(1 for c, i in conv_of.items() if home[checker.assigned_to[c][0]] != i % 3)
    log(f"{n_offers} offers: {N_CONVERSATIONS} accepted, {n_revoked} revoked "
        f"({timeouts} timeouts); {len(checker.expect_timeout)} offers expected to time out; "
        f"{len(winners)} agents accepted conversations ({min(winners.values())} to "
        f"{max(winners.values())} each); {cross} conversations crossed instances")

    # Redis at the end: all closed, nothing held or waiting.
    rc = r.client()
    convs = [k for k in rc.keys(P + ":conv:*") if k.count(":") == 3]
    assert len(convs) == N_CONVERSATIONS, \
        f"Redis holds {len(convs)} conversation hashes, want {N_CONVERSATIONS}"
    res = rc.pipeline([("HGET", conv_key(c), "state") for c in conv_of])
    not_closed = collections.Counter(s for s in res if s != "closed")
    assert not not_closed, f"conversations not closed in Redis: {dict(not_closed)}"
    assert rc.cmd("SCARD", P + ":queued") == 0, "the queued set is not empty"
    for aid in agent_ids:
        h = rc.hgetall(agent_key(aid))
        held = rc.cmd("SMEMBERS", agent_key(aid) + ":convs")
        assert not held and h.get("load_chat", "0") == "0" and h.get("load") == "0", \
            f"{aid} holds something at the end: convs {held} {h}"
    leftovers = []
    for k in rc.keys(P + ":wait:*"):
        if rc.cmd("ZCARD", k):
            leftovers.append((k, rc.cmd("ZCARD", k)))
    assert not leftovers, f"conversations still waiting at the end: {leftovers}"
    rc.close()


async def customers_main(spec):
    """The customer process: bursts of customers, each says hello, sends one
    message and leaves; one JSON line on stdout per conversation started (or
    failure), and a last line with counts."""
    urls, n, bursts = spec["urls"], spec["n"], spec["bursts"]
    sem = asyncio.Semaphore(spec["sockets"])
    stats = collections.Counter()
    out = sys.stdout

    def emit(**m):
        out.write(json.dumps(m) + "\n")
        out.flush()

    async def retry_unavailable(what, send):
        for attempt in range(30):
            f = await send()
            if f.get("type") == "error" and f.get("code") == "unavailable":
                stats[f"{what} unavailable"] += 1
                await asyncio.sleep(0.2)
                continue
            return f
        raise AssertionError(f"{what} unavailable 30 times")

    async def customer(i):
        async with sem:
            c = Customer(urls[i % len(urls)], f"customer {i}")
            try:
                await c.connect()

                async def hello():
                    start = len(c.conn.frames)
                    await c.conn.send({"type": "hello", "v": 1, "language": "en",
                                       "name": f"Customer {i}"})
                    return await c.conn.wait_for(
                        lambda f: f.get("type") in ("welcome", "error"), 60,
                        "welcome after hello", start)
                w = await retry_unavailable("hello", hello)
                if w.get("type") != "welcome" or not TOKEN_RE.match(
                        str(w.get("conversation_id"))):
                    raise AssertionError(f"hello refused: {w}")
                emit(i=i, conv=w["conversation_id"])
                a = await retry_unavailable("message", lambda: c.conn.request(
                    {"type": "message", "id": "c-1", "text": f"hi from {i}"}, 60))
                if a.get("type") != "ack":
                    raise AssertionError(f"message refused: {a}")
                stats["ok"] += 1
            except Exception as e:  # noqa: BLE001
                emit(i=i, error=str(e)[:2000])
            finally:
                await c.close()

    t0 = time.monotonic()
    per_burst = n // bursts
    tasks = []
    for b in range(bursts):
        first = b * per_burst
        k = per_burst if b < bursts - 1 else n - first
        tasks += [asyncio.create_task(customer(i)) for i in range(first, first + k)]
        if b < bursts - 1:
            await asyncio.sleep(max(0.0, t0 + (b + 1) * spec["gap"] - time.monotonic()))
    await asyncio.gather(*tasks)
    ru = resource.getrusage(resource.RUSAGE_SELF)
    stats["cpu_s"] = round(ru.ru_utime + ru.ru_stime, 1)
    emit(done=True, stats=dict(stats))


if __name__ == "__main__":
    if sys.argv[1:2] == ["--customers"]:
        asyncio.run(customers_main(json.loads(sys.argv[2])))
        sys.exit(0)
    run_tests([test_race_offers_three_instances])
