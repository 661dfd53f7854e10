#!/usr/bin/env python3
"""bench/reload/run.py [LIBRARY.lua|- ...] - how long a rules reload blocks Redis with a
backlog: the CPU time of Redis's main thread for one FCALL omr_rules_load that re-homes every
waiting conversation and routes what the new rules make servable (docs/BENCHMARKS.md, "Rules
reload").

"-" is the library of this working tree (router/lua/*.lua, as the build concatenates it); a
file is another one, e.g. the library of an older commit as the baseline:

    for f in $(git ls-tree --name-only OLD router/lua/ | sort); do git show OLD:$f; done > old.lua
    bench/reload/run.py old.lua -

Each scenario is set up afresh for every library and round on a private redis-server (no
persistence): 10 agents (tenant t1, es:5, chat capacity 100, available), rules with a queue
`spanish` (es, min_proficiency 8) and `general`, SERVABLE Spanish chats of tenant t1 (older)
and UNSERVABLE English chats spread over SETS tenants nobody serves, one waiting set each
(SETS 0: UNSERVABLE more Spanish chats of t1, beyond what the agents have room for). The
reload lowers spanish's min_proficiency to 1: the Spanish chats become servable. The
libraries take turns in each round; the report gives each one's median and the ratio to the
first.

Environment: ROUNDS [5]; SCENARIOS ["1000:5000:5000 1000:20000:1 1000:20000:2000 0:5000:5000
1000:20000:0"] (SERVABLE:UNSERVABLE:SETS); CALLGRIND=1: instructions inside redis-server
(valgrind's callgrind, counting only during the reload) instead of its main thread's CPU
time, ROUNDS=1 is enough (the counts repeat).
"""
import glob
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
sys.dont_write_bytecode = True
from omr_harness import RedisError, Resp  # noqa: E402

P = "omr:{bench}"
CALLGRIND = os.environ.get("CALLGRIND") == "1"
AGENTS, CAPACITY = 10, 100


def library(name):
    if name == "-":
        return "".join(open(p).read() for p in sorted(glob.glob(os.path.join(ROOT, "router",
                                                                                "lua", "*.lua"))))
    with open(name) as f:
        return f.read()


def rules(min_proficiency):
    return json.dumps({"version": f"v{min_proficiency}", "blocking": {}, "queues": [
        {"name": "spanish", "languages": ["es"], "min_proficiency": min_proficiency},
        {"name": "general"}]})


class Redis:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="omr-bench-reload-")
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self.cg = CALLGRIND and os.path.join(self.dir, "cg.out")
        wrap = ["valgrind", "--tool=callgrind", "--instr-atstart=no",
                "--callgrind-out-file=" + self.cg] if self.cg else []
        self.proc = subprocess.Popen(
            wrap + ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                    "--appendonly", "no", "--dir", self.dir, "--stream-node-max-bytes", "1024",
                    "--busy-reply-threshold", "600000"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 60
        while True:
            try:
                self.c = Resp(port, timeout=600)
                break
            except OSError:
                if time.time() > deadline:
                    raise RuntimeError("redis-server did not start")
                time.sleep(0.05)

    def cmds(self, cmds):
        for k in range(0, len(cmds), 500):
            for reply in self.c.pipeline(cmds[k:k + 500]):
                if isinstance(reply, RedisError):
                    raise reply

    def stop(self):
        self.proc.terminate()
        self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def fcall(fn, *args):
    return ["FCALL", fn, "1", P] + [str(a) for a in args]


def main_thread_cpu(redis):
    """Redis's main thread's CPU seconds (user + system): unlike wall time, not the time it
    waited for a core on a busy machine."""
    info = dict(ln.split(":", 1) for ln in redis.c.cmd("INFO", "cpu").splitlines()
                if ":" in ln)
    return float(info["used_cpu_user_main_thread"]) + float(info["used_cpu_sys_main_thread"])


def callgrind(redis, what):
    subprocess.run(["callgrind_control", what, str(redis.proc.pid)], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def instructions(redis, call):
    """The instructions redis-server runs for call() (under callgrind): noise-free."""
    for f in glob.glob(redis.cg + "*"):
        os.unlink(f)
    callgrind(redis, "--instr=on")
    call()
    callgrind(redis, "--instr=off")
    callgrind(redis, "--dump")
    total = 0
    for f in glob.glob(redis.cg + "*"):
        with open(f) as fh:
            for ln in fh:
                if ln.startswith(("summary:", "totals:")):
                    total = max(total, int(ln.split()[1]))
    return total


def one(redis, lib, servable, unservable, sets):
    """Sets the scenario up with library lib; returns the reload's ms and what it assigned."""
    redis.cmds([["FLUSHALL"], ["FUNCTION", "LOAD", "REPLACE", lib]])
    redis.cmds([fcall("omr_rules_load", rules(8))])
    cmds = []
    for i in range(AGENTS):
        aid = f"ag{i:02d}"
        spec = {"name": aid, "tenants": ["t1"], "languages": {"es": 5},
                "capacity": {"chat": CAPACITY}, "skills": {}, "token_sha": "sha-" + aid}
        cmds += [fcall("omr_agent_upsert", aid, json.dumps(spec)),
                 fcall("omr_agent_login", aid, "sha-" + aid, "s-" + aid),
                 fcall("omr_agent_presence", aid, "s-" + aid, "available")]
    for i in range(servable):
        cmds.append(fcall("omr_conv_start", f"s{i:06d}", "x", "es", "es", "S", "chat", "t1",
                          "", "{}", "[]"))
    for i in range(unservable):  # (SETS 0: more Spanish chats, beyond the agents' room)
        lang = "es" if sets == 0 else "en"
        cmds.append(fcall("omr_conv_start", f"u{i:06d}", "x", lang, lang, "U", "chat",
                          "t1" if sets == 0 else f"u{i % sets}", "", "{}", "[]"))
    redis.cmds(cmds)
    out = []
    if redis.cg:  # (millions of instructions)
        ms = instructions(redis, lambda: out.append(redis.c.cmd(*fcall("omr_rules_load",
                                                                        rules(1))))) / 1e6
    else:
        cpu0 = main_thread_cpu(redis)
        out.append(redis.c.cmd(*fcall("omr_rules_load", rules(1))))
        ms = (main_thread_cpu(redis) - cpu0) * 1000
    assert out == ["loaded"], out
    loads = [int(redis.c.cmd("HGET", f"{P}:agent:ag{i:02d}", "load_chat") or 0)
             for i in range(AGENTS)]
    assert max(loads) <= CAPACITY, loads
    return ms, sum(loads)


def main():
    names = sys.argv[1:] or ["-"]
    libs = [library(n) for n in names]
    rounds = int(os.environ.get("ROUNDS", "5"))
    scenarios = os.environ.get("SCENARIOS", "1000:5000:5000 1000:20000:1 1000:20000:2000 "
                               "0:5000:5000 1000:20000:0").split()
    redis = Redis()
    try:
        unit = "M instructions" if CALLGRIND else "CPU ms"
        print("| servable | unservable | sets | " + " | ".join(
            f"{n} {unit}, median (range)" for n in names) + " | ratio to the first |")
        print("|---:|---:|---:|" + "---:|" * len(names) + "---|")
        for sc in scenarios:
            servable, unservable, sets = (int(x) for x in sc.split(":"))
            times = [[] for _ in names]
            for r in range(rounds):
                order = range(len(names)) if r % 2 == 0 else reversed(range(len(names)))
                for i in order:
                    ms, assigned = one(redis, libs[i], servable, unservable, sets)
                    want = min(servable, AGENTS * CAPACITY)
                    assert assigned == want, f"{names[i]}: {assigned} assigned, want {want}"
                    times[i].append(ms)
            med = [statistics.median(t) for t in times]
            print(f"| {servable} | {unservable} | {sets} | "
                  + " | ".join(f"{m:.0f} ({min(t):.0f}-{max(t):.0f})" for m, t in zip(med, times))
                  + " | " + ", ".join(f"{m / med[0]:.2f}" for m in med) + " |", flush=True)
    finally:
        redis.stop()


if __name__ == "__main__":
    main()
