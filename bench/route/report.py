#!/usr/bin/env python3
"""report.py RESULTS - the Markdown report of bench/route/run.sh from its
results.txt (RESULT, PROFILE, MACHINE and MEMORY lines of key=value pairs)."""
import re
import statistics
import sys

TARGET_RATIO = 0.6
TARGET_SCALE = 1.5


def pairs(line):
    return dict(re.findall(r"(\w+)=(\S+)", line))


def main(path):
    results, profiles, machine, memory = {}, {}, {}, ""
    rounds = {}  # round -> {(kind, side): kv}
    with open(path) as f:
        for line in f:
            kind, _, rest = line.strip().partition(" ")
            if kind == "RESULT" and pairs(rest)["kind"].startswith("pair"):
                kv = pairs(rest)
                rounds.setdefault(int(kv["round"]), {})[(kv["kind"], kv["side"])] = kv
            elif kind == "RESULT":
                kv = pairs(rest)
                key = (int(kv["agents"]), int(kv["waiting"]))
                results.setdefault(key, {})[kv["kind"]] = kv
            elif kind == "PROFILE":
                kv = pairs(rest)
                key = (int(kv["agents"]), int(kv["waiting"]))
                what = rest.split()[2]
                profiles.setdefault((key, what), []).append(
                    (kv["cmd"], float(kv["calls_per"]), float(kv["usec_per"]), rest))
            elif kind == "MACHINE":
                machine.update(pairs(rest))
            elif kind == "MEMORY":
                memory = rest
    if not results:
        sys.exit("report.py: no results")
    keys = sorted(results)
    f = lambda kv, k: float(kv[k])  # noqa: E731
    out = []
    p = out.append
    p(f"Machine: {machine.get('cpu', '?').replace('_', ' ')}, {machine.get('cores')} cores, "
      f"Linux {machine.get('kernel')}, Redis {machine.get('redis')}, hiredis "
      f"{machine.get('hiredis')}; {machine.get('transport')} socket; library sha1 "
      f"{machine.get('library_sha1')}; load average "
      f"{machine.get('load_before')} before, {machine.get('load_after')} after. "
      f"Per scenario: {machine.get('n')} pipelined decisions (-c {machine.get('conns')} "
      f"-P {machine.get('pipeline')}), {machine.get('lat_n')} one at a time; baseline "
      f"{machine.get('base_n')} pipelined calls. Redis memory at the end: "
      f"{memory.split(':')[-1] if memory else '?'}.")
    p("")
    p("Throughput, pipelined (decisions per second; the baseline is the equivalent script):")
    p("")
    p("| agents | waiting | decisions/s | redis-benchmark script/s | ratio | bench_route "
      "script/s | ratio | closes/s |")
    p("|---:|---:|---:|---:|---:|---:|---:|---:|")
    ratios = []
    for k in keys:
        r = results[k]
        ours, rb, br = f(r["route"], "start_per_s"), f(r["rb_tput"], "per_s"), \
            f(r["baseline"], "per_s")
        ratios.append((k, ours / rb, ours / br))
        p(f"| {k[0]:,} | {k[1]:,} | {ours:,.0f} | {rb:,.0f} | {ours / rb:.3f} | {br:,.0f} | "
          f"{ours / br:.3f} | {f(r['route'], 'close_per_s'):,.0f} |")
    p("")
    p("Latency, one call at a time on one connection (µs, client round trip):")
    p("")
    p("| agents | waiting | p50 | p99 | p99.9 | redis-benchmark script p50 / p99 | "
      "bench_route script p50 / p99 |")
    p("|---:|---:|---:|---:|---:|---:|---:|")
    for k in keys:
        r = results[k]
        p(f"| {k[0]:,} | {k[1]:,} | {f(r['route'], 'start_p50_us'):.0f} | "
          f"{f(r['route'], 'start_p99_us'):.0f} | {f(r['route'], 'start_p999_us'):.0f} | "
          f"{f(r['rb_lat'], 'p50_us'):.0f} / {f(r['rb_lat'], 'p99_us'):.0f} | "
          f"{f(r['baseline'], 'p50_us'):.0f} / {f(r['baseline'], 'p99_us'):.0f} |")
    p("")
    p("Cost inside Redis per call (pipelined runs): `INFO commandstats` µs per FCALL/EVALSHA "
      "(wall time inside the call), Redis main-thread CPU µs per call (`INFO cpu`, includes "
      "reading and replying), Redis commands issued per call:")
    p("")
    p("| agents | waiting | start µs | start CPU µs | commands | script µs | script CPU µs | "
      "commands | close µs | close commands |")
    p("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for k in keys:
        r, b = results[k]["route"], results[k]["baseline"]
        p(f"| {k[0]:,} | {k[1]:,} | {f(r, 'start_srv_us'):.0f} | {f(r, 'start_cpu_us'):.0f} | "
          f"{f(r, 'start_cmds'):.1f} | {f(b, 'srv_us'):.1f} | {f(b, 'cpu_us'):.1f} | "
          f"{f(b, 'cmds'):.0f} | {f(r, 'close_srv_us'):.0f} | {f(r, 'close_cmds'):.1f} |")
    p("")
    worst = min(ratios, key=lambda x: x[1])
    best = max(ratios, key=lambda x: x[1])
    ok1 = worst[1] >= TARGET_RATIO
    p(f"Target 1 (throughput at least {TARGET_RATIO}x the redis-benchmark figure): "
      f"{'MET' if ok1 else 'MISSED'}; ratio {worst[1]:.3f} (worst, {worst[0][0]:,} agents, "
      f"{worst[0][1]:,} waiting) to {best[1]:.3f} (best); against the same script run by "
      f"bench_route {min(x[2] for x in ratios):.3f} to {max(x[2] for x in ratios):.3f}.")
    lo, hi = keys[0], keys[-1]
    if lo in results and hi in results and lo != hi:
        a, b = results[lo]["route"], results[hi]["route"]
        figs = [("1 / throughput", f(a, "start_per_s") / f(b, "start_per_s")),
                ("p50 latency", f(b, "start_p50_us") / f(a, "start_p50_us")),
                ("commandstats µs", f(b, "start_srv_us") / f(a, "start_srv_us")),
                ("CPU µs", f(b, "start_cpu_us") / f(a, "start_cpu_us"))]
        p("")
        p(f"Target 2 (cost per decision at {hi[0]:,} agents and {hi[1]:,} waiting at most "
          f"{TARGET_SCALE}x the cost at {lo[0]:,} agents and {lo[1]:,} waiting), from the "
          "scenario tables above (minutes apart, so the machine load differs): "
          + ", ".join(f"{n} {v:.2f}x" for n, v in figs) + ".")
    full = [r for r in sorted(rounds) if len(rounds[r]) == 4]
    if full:
        def ratio(r, k, inverse=False):
            small = float(rounds[r][("pair", "small")][k])
            large = float(rounds[r][("pair", "large")][k])
            return small / large if inverse else large / small
        med = statistics.median
        figs = [("1 / throughput", med(ratio(r, "start_per_s", True) for r in full)),
                ("p50 latency", med(ratio(r, "start_p50_us") for r in full)),
                ("commandstats µs", med(ratio(r, "start_srv_us") for r in full)),
                ("CPU µs", med(ratio(r, "start_cpu_us") for r in full))]
        ok2 = all(v <= TARGET_SCALE for _, v in figs)
        s0 = rounds[full[0]][("pair", "small")]
        s1 = rounds[full[0]][("pair", "large")]
        p("")
        p(f"Scale check, {len(full)} rounds alternating between a Redis holding "
          f"{int(s0['agents']):,} agents + {int(s0['waiting']):,} waiting and the one holding "
          f"{int(s1['agents']):,} + {int(s1['waiting']):,} ({s0['n']} pipelined and "
          f"{s0['lat_n']} one-at-a-time decisions per side and round), per round "
          "(large / small):")
        p("")
        p("| round | 1 / throughput | p50 | commandstats µs | CPU µs | small: decisions/s, "
          "script/s | large: decisions/s, script/s |")
        p("|---:|---:|---:|---:|---:|---:|---:|")
        for r in full:
            sm, lg = rounds[r][("pair", "small")], rounds[r][("pair", "large")]
            bs, bl = rounds[r][("pair_base", "small")], rounds[r][("pair_base", "large")]
            p(f"| {r} | {ratio(r, 'start_per_s', True):.2f} | {ratio(r, 'start_p50_us'):.2f} | "
              f"{ratio(r, 'start_srv_us'):.2f} | {ratio(r, 'start_cpu_us'):.2f} | "
              f"{f(sm, 'start_per_s'):,.0f}, {f(bs, 'per_s'):,.0f} | "
              f"{f(lg, 'start_per_s'):,.0f}, {f(bl, 'per_s'):,.0f} |")
        p("")
        p(f"Target 2 on the medians of the rounds: {'MET' if ok2 else 'MISSED'}; "
          + ", ".join(f"{n} {v:.2f}x" for n, v in figs) + ".")
        t1 = [f(rounds[r][("pair", side)], "start_per_s") /
              f(rounds[r][("pair_base", side)], "per_s") for r in full
              for side in ("small", "large")]
        p("")
        p(f"Target 1 in the same rounds (decisions/s over the script's calls/s, both by "
          f"bench_route, back to back): median {med(t1):.3f}, range {min(t1):.3f} to "
          f"{max(t1):.3f}.")
    for k in (lo, hi):
        rows = profiles.get((k, "start"))
        if not rows:
            continue
        p("")
        p(f"Where one decision's time goes ({k[0]:,} agents, {k[1]:,} waiting; commandstats, "
          "per decision):")
        p("")
        p("| command | calls | µs |")
        p("|---|---:|---:|")
        top = None
        for cmd, calls, usec, rest in sorted(rows, key=lambda x: -x[2]):
            if cmd == "fcall":
                top = (usec, rest)
                continue
            p(f"| {cmd.upper()} | {calls:.1f} | {usec:.1f} |")
        if top:
            m = re.search(r"outside commands: ([0-9.]+)", top[1])
            p(f"| (Lua, cjson, argument and reply conversion) | | {m.group(1) if m else '?'} |")
            p(f"| **FCALL omr_conv_start total** | 1 | {top[0]:.1f} |")
    print("\n".join(out))


if __name__ == "__main__":
    main(sys.argv[1])
