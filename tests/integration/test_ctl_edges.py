"""test_ctl_edges.py - edges of the operator tooling (omnirouterctl and the
configuration checker). Each test asserts the documented behaviour (README.md
"omnirouterctl", docs/ROUTING.md "Explanations", `omnirouterctl --help`) and
failed against the binary it was written for; the comment above each says
what the operator sees and why.

Run: cd /work/main && OMR_BUILD_DIR=build/asan python3 tests/integration/test_ctl_edges.py [NAME]
"""
import asyncio
import json
import os
import subprocess
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from omr_harness import (CTL_BIN, DAEMON_BIN, Agent, Customer, _sanitizer_env, add_agent, ctl, log,  # noqa: E402
                         run_tests, time_limit)


def ctl_json(d, *args):
    p = ctl(d, "--json", *args)
    try:
        return json.loads(p.stdout)
    except ValueError:
        raise AssertionError(f"omnirouterctl --json {' '.join(args)} printed no JSON: "
                             f"{p.stdout!r}") from None


def daemon_with_queues(env, queues_yaml, config=None):
    """A daemon whose configuration ends with the given queues section."""
    r = env.redis()
    d = env.daemon(r, config=config, start=False)
    with open(d.cfg_path, "a") as f:
        f.write(queues_yaml)
    d.start()
    return d


# ---------------------------------------------------------------------------
# 1. `agent show` and `agent list` (text) cut long lists silently, in the
#    middle of an id. README: "agent list: All agents: ID NAME TENANTS ...
#    SUPERVISES ..."; a supervisor may supervise up to 500 agents (the limit
#    omr_agent_upsert and ctl_spec.h enforce). `agent show sam` prints the
#    first ~120 of 300 ids and ends with half an id ("agent-n"); the list row
#    stops at 511 bytes. format_list()/omr_ctl_format_levels() write into
#    fixed 2048-byte (show) and 512-byte (list cells) buffers and drop the rest
#    (ctl_agent.c print_agent, row_cells).

@time_limit(90)
def test_text_views_do_not_truncate_long_lists(env):
    d = env.daemon(env.redis())
    team = [f"agent-number-{i:03d}" for i in range(300)]
    ctl(d, "agent", "add", "--id", "sam", "--name", "Sam Lead", "--languages", "en",
        "--supervises", ",".join(team))
    assert ctl_json(d, "agent", "show", "sam")["supervises"] == team, "JSON keeps them all"

    out = ctl(d, "agent", "show", "sam").stdout
    line = next((ln for ln in out.splitlines() if ln.startswith("supervises ")), "")
    shown = line.split(None, 1)[1].split(",") if " " in line.strip() else []
    problems = []
    if shown != team:
        problems.append(f"`agent show sam` lists {len(shown)} supervised agents of {len(team)}, "
                        f"the last one {shown[-1] if shown else None!r} (line of {len(line)} "
                        "bytes)")
    rows = ctl(d, "agent", "list").stdout.splitlines()
    col = rows[0].index("SUPERVISES")
    row = next(ln for ln in rows if ln.startswith("sam "))
    cell = row[col:].split()[0] if len(row) > col else ""
    if cell.split(",") != team:
        problems.append(f"`agent list` shows {len(cell.split(','))} supervised agents of "
                        f"{len(team)} for sam, ending {cell[-20:]!r}")
    assert not problems, "text output truncates silently:\n  " + "\n  ".join(problems)


# ---------------------------------------------------------------------------
# 2. --tenant is accepted, and ignored, by every verb that has no use for it.
#    An operator who types `agent update --id ana --tenant acme` (meaning
#    --tenants) gets "updated ana", exit 0, and nothing changed. Every other
#    option that does not apply to a verb is refused with exit 2 ("--X does
#    not apply to agent VERB", check_options in ctl_agent.c), but --tenant is
#    parsed into a separate variable (omnirouterctl.c parse_options) that
#    check_options never looks at. --help documents --tenant only for new
#    agents (add, import) and `agent list`.

@time_limit(90)
def test_tenant_option_refused_where_it_does_not_apply(env):
    d = env.daemon(env.redis())
    add_agent(d, "ana", "Ana", "en", 2)
    problems = []
    for args in (["agent", "update", "--id", "ana", "--name", "Ana B", "--tenant", "acme"],
                 ["agent", "skills", "--id", "ana", "--add", "billing:3", "--tenant", "acme"],
                 ["agent", "state", "--id", "ana", "busy", "--tenant", "acme"],
                 ["agent", "show", "ana", "--tenant", "acme"]):
        p = ctl(d, *args, check=False)
        tenants = ctl_json(d, "agent", "show", "ana")["tenants"]
        log(f"{' '.join(args)}: exit {p.returncode} {p.stdout.strip()!r} {p.stderr.strip()!r}"
            f" tenants {tenants}")
        if p.returncode != 2 and "acme" not in tenants:
            problems.append(f"`{' '.join(args)}` exited {p.returncode} ({p.stdout.strip()!r}) "
                            f"and ignored --tenant (ana still serves {tenants})")
    assert not problems, ("--tenant is silently ignored (want exit 2, '--tenant does not "
                          "apply'):\n  " + "\n  ".join(problems))


# ---------------------------------------------------------------------------
# 3. `agent skills --add/--remove` is a read-modify-write done in the tool
#    (ctl_agent.c agent_skills: omr_agent_get, edit, then omr_agent_upsert
#    of the whole skill map), not one atomic Function. Two supervisors, or a
#    script adding skills in parallel, lose each other's changes: 12 parallel
#    `--add skN:3` leave 8-9 skills. README: "--add: add or change"; the tool
#    "changes routing state only through the routing Functions".

@time_limit(180)
def test_concurrent_skill_adds_are_not_lost(env):
    d = env.daemon(env.redis())
    add_agent(d, "ana", "Ana", "en", 2)
    for rnd in range(5):
        want = {f"r{rnd}s{i}" for i in range(16)}
        procs = [subprocess.Popen([CTL_BIN, "-c", d.cfg_path, "agent", "skills", "--id", "ana",
                                   "--add", f"{s}:3"], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, env=_sanitizer_env()) for s in want]
        for p in procs:
            _, err = p.communicate(timeout=120)
            assert p.returncode == 0, err
        have = set(ctl_json(d, "agent", "show", "ana")["skills"])
        lost = sorted(want - have)
        assert not lost, (f"round {rnd}: 16 concurrent `agent skills --add` each exited 0, "
                          f"but {len(lost)} skills are missing: {lost}")


# ---------------------------------------------------------------------------
# 4. explain names the wrong matched language when a waiting conversation is
#    taken by an agent through a ladder step's fallback language. A Spanish
#    conversation waits into step 2 (which accepts English speakers); an
#    English-only agent then becomes available and takes it. `explain` says
#    "language es, matched es" for an agent who speaks no Spanish:
#    pull_waiting (router/lua/20_route.lua, "agent became free") records
#    language_matched = c.rlang, the conversation's language, instead of the
#    language of the agent's slot it was served in (x[5]). ROUTING.md: explain
#    shows "the language matched".

@time_limit(120)
async def test_explain_fallback_language_when_agent_frees_up(env):
    d = daemon_with_queues(env, "queues:\n"
                                "  - name: spanish\n"
                                "    languages: [es]\n"
                                "    steps:\n"
                                "      - after_s: 1\n"
                                "        languages: [en]\n")
    tok = add_agent(d, "emma", "Emma", "en", 2)
    cust = Customer(d.url)
    emma = Agent(d.url, "emma", tok)
    try:
        w = await cust.hello(language="es", name="Ana")
        assert w.get("state") == "queued", w
        await asyncio.sleep(2.5)  # into step 2, which accepts English speakers
        await emma.login()
        await emma.presence("available")
        await emma.wait_item(lambda f: f.get("type") == "assigned"
                             and f.get("conversation_id") == cust.conversation_id, 15,
                             "the Spanish conversation, through the fallback language")
        e = ctl_json(d, "explain", cust.conversation_id)
        log(f"explain: {e}")
        assert e.get("agent") == "emma" and e.get("step") == 2, e
        assert e.get("language_matched") == "en", (
            f"emma speaks only en, but explain says the language matched was "
            f"{e.get('language_matched')!r}: {e}")
    finally:
        await emma.close()
        await cust.close()


# ---------------------------------------------------------------------------
# 5. explain of a sticky assignment omits the queue's required skills and
#    the strategy: for a queue that requires billing:5, `explain` prints
#    "strategy -" and "skills none required". ROUTING.md "Explanations":
#    explain shows "the strategy, the language matched, each required skill
#    with the agent's level". sticky_route (router/lua/40_conversations.lua)
#    and pull_preferred (20_route.lua) build `why` without strategy and
#    skills (try_assign and pull_waiting add explain_skills()).

@time_limit(120)
async def test_explain_sticky_assignment_lists_required_skills(env):
    d = daemon_with_queues(env, "queues:\n"
                                "  - name: billing\n"
                                "    skills: {billing: 5}\n"
                                "    sticky_window_s: 600\n"
                                "  - name: general\n")
    tok = add_agent(d, "ana", "Ana", "en", 3)
    ctl(d, "agent", "skills", "--id", "ana", "--set", "billing:7")
    ana = Agent(d.url, "ana", tok)
    first, again = Customer(d.url, "first visit"), Customer(d.url, "second visit")
    try:
        await ana.login()
        await ana.presence("available")
        await first.hello(language="en", name="Bob", topic="billing", customer_id="cust-1")
        await ana.wait_item(lambda f: f.get("type") == "assigned"
                            and f.get("conversation_id") == first.conversation_id, 10, "first")
        e1 = ctl_json(d, "explain", first.conversation_id)
        assert e1.get("skills") == {"billing": {"required": 5, "agent": 7}}, e1
        await ana.close_conv(first.conversation_id)
        await again.hello(language="en", name="Bob", topic="billing", customer_id="cust-1")
        await ana.wait_item(lambda f: f.get("type") == "assigned"
                            and f.get("conversation_id") == again.conversation_id, 10, "sticky")
        e = ctl_json(d, "explain", again.conversation_id)
        text = ctl(d, "explain", again.conversation_id).stdout
        log(f"explain (sticky): {e}\n{text}")
        assert e.get("queue") == "billing" and e.get("agent") == "ana" \
            and "sticky" in e.get("trigger", ""), e
        problems = []
        if e.get("skills") != {"billing": {"required": 5, "agent": 7}}:
            problems.append(f"skills {e.get('skills')!r} (text: "
                            f"{[ln for ln in text.splitlines() if ln.startswith('skills')]})")
        if e.get("strategy") != "least_loaded":
            problems.append(f"strategy {e.get('strategy')!r}")
        assert not problems, ("explain of a sticky assignment in a queue requiring billing:5 "
                              "lacks: " + "; ".join(problems))
    finally:
        await ana.close()
        await first.close()
        await again.close()


# ---------------------------------------------------------------------------
# 6. README: "errors are one line on stderr ... 2 usage". A mistyped command
#    word (`omnirouterctl agnet list`) or `token issue` without its id prints
#    the whole 28-line usage on stderr instead of one line naming the
#    mistake (omnirouterctl.c main: usage(stderr) for any unknown word and
#    for a `token` command that is not exactly three words).

@time_limit(60)
def test_command_errors_are_one_line(env):
    d = env.daemon(env.redis())
    problems = []
    for args in (["agnet", "list"], ["token", "issue"], ["token", "revoke"],
                 ["token", "renew", "ana"]):
        # Not the harness's ctl(): the usage text contains "runtime error",
        # which its sanitizer check takes for a UBSan report.
        p = subprocess.run([CTL_BIN, "-c", d.cfg_path, *args], capture_output=True, text=True,
                           timeout=60, env=_sanitizer_env())
        assert "Sanitizer" not in p.stderr and "SUMMARY" not in p.stderr, p.stderr
        lines = p.stderr.strip().splitlines()
        if p.returncode != 2 or len(lines) != 1 or not lines[0].startswith("omnirouterctl: "):
            problems.append(f"`omnirouterctl {' '.join(args)}`: exit {p.returncode}, "
                            f"{len(lines)} lines on stderr, first {lines[:1]}")
    assert not problems, ("want exit 2 and one 'omnirouterctl: ...' line:\n  "
                          + "\n  ".join(problems))


# ---------------------------------------------------------------------------
# 7. `agent update` racing `agent remove` leaves a ghost agent: `agent show
#    z` answers (exit 0) an agent with an empty name, no tenants, no
#    languages, that `agent list` does not show and that nobody can route
#    to; `agent update z` then "succeeds" on it. Two causes: agent_update
#    (ctl_agent.c) checks existence with omr_agent_get and then calls
#    omr_agent_upsert, which creates a missing agent; and omr_agent_upsert
#    (router/lua/30_agents.lua) HSETs a new agent's presence/load/created_ms
#    before it validates (it then refuses "an agent serves at least one
#    tenant", but a Function's error reply does not undo its writes).

@time_limit(240)
def test_update_racing_remove_leaves_no_ghost_agent(env):
    d = env.daemon(env.redis())

    def spawn(*args):
        return subprocess.Popen([CTL_BIN, "-c", d.cfg_path, *args], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, env=_sanitizer_env())

    for i in range(40):
        zid = f"z{i}"
        add_agent(d, zid, "Zed", "en", 1)
        procs = [spawn("agent", "update", "--id", zid, "--name", f"Zed {k}") for k in range(3)]
        procs.append(spawn("agent", "remove", zid))
        for p in procs:
            p.communicate(timeout=120)
        show = ctl(d, "--json", "agent", "show", zid, check=False)
        listed = zid in [a["id"] for a in ctl_json(d, "agent", "list")]
        if show.returncode == 0 and not listed:
            raise AssertionError(
                f"iteration {i}: after `agent update` raced `agent remove`, `agent show {zid}` "
                f"exits 0 with {show.stdout.strip()} but `agent list` does not list it (a ghost "
                "agent nobody can route to)")
        if show.returncode == 0:
            a = json.loads(show.stdout)
            assert a["name"] and a["tenants"] and a["languages"], f"half an agent: {a}"


# ---------------------------------------------------------------------------
# 8. --check-config accepts a catch-all queue ahead of a narrower one, so the
#    narrower queue can never receive a conversation ("a new conversation
#    goes to the FIRST queue that matches it", config/omnirouter.yaml). The
#    VIP queue below is dead, and the checker says "configuration ok" with
#    nothing on stderr. README: --check-config "names the file:line:column
#    of any mistake"; issue 3: bad rules are rejected at --check-config with
#    file:line and a reason. (A warning naming the line would do.)

@time_limit(60)
def test_check_config_names_unreachable_queue(env):
    path = os.path.join(env.dir, "shadow.yaml")
    with open(path, "w") as f:
        f.write("queues:\n"
                "  - name: general\n"          # line 2: takes every conversation
                "  - name: vip\n"              # line 3: never reached
                "    attributes: {tier: gold}\n"
                "    priority: 8\n")
    p = subprocess.run([DAEMON_BIN, "--check-config", "-c", path], capture_output=True,
                       text=True, timeout=60, env=_sanitizer_env())
    out = p.stdout + p.stderr
    log(f"--check-config: exit {p.returncode}: {out.strip()!r}")
    assert p.returncode != 0 or ("vip" in out and "shadow.yaml:3" in out), (
        f"queue 'vip' (line 3) comes after the catch-all 'general' (line 2) and can never "
        f"get a conversation, yet --check-config exits {p.returncode}: {out.strip()!r}")


# ---------------------------------------------------------------------------
# 9. explain rounds the candidates' scores. A best_skill score is
#    (99 - skill sum) * 1e13 + last_assign_ms (router/lua/10_index.lua
#    strategy_score), 15 digits; Redis's cjson encodes numbers with 14
#    significant digits, so `explain` shows 9.2179...e+14 with the last
#    milliseconds gone: candidates assigned within the same ~100 ms show the
#    same score though one won, and no score matches the index.
#    (Redis's cjson refuses a precision above 14, so scores are strings of
#    their digits now.)

@time_limit(120)
async def test_explain_scores_are_exact(env):
    d = daemon_with_queues(env, "queues:\n"
                                "  - name: billing\n"
                                "    skills: {billing: 5}\n"
                                "    strategy: best_skill\n")
    desks = []
    try:
        for aid in ("a1", "a2"):
            tok = add_agent(d, aid, aid.upper(), "en", 3)
            ctl(d, "agent", "skills", "--id", aid, "--set", "billing:7")
            desk = Agent(d.url, aid, tok)
            await desk.login()
            await desk.presence("available")
            desks.append(desk)
        c1, c2 = Customer(d.url, "c1"), Customer(d.url, "c2")
        desks += [c1, c2]
        await c1.hello(language="en", name="One", topic="billing")
        first = ctl_json(d, "explain", c1.conversation_id)["agent"]
        await c2.hello(language="en", name="Two", topic="billing")
        e = ctl_json(d, "explain", c2.conversation_id)
        client = d.redis.client()
        h = client.hgetall(f"omr:{{default}}:agent:{first}")
        log(f"explain c1 agent {first!r}; hash {h}")
        last = int(h["last_assign_ms"])
        want = (99 - 7) * 10**13 + last
        got = {c["agent"]: c.get("score") for c in e["candidates"]}
        log(f"explain candidates {e['candidates']}; {first} last_assign_ms {last}")
        assert first in got, e
        # a string of all its digits (a JSON number from Redis keeps 14)
        assert got[first] == str(want), (
            f"explain shows {first}'s score as {got[first]!r}; its index score is {want} "
            f"((99-7)*1e13 + last_assign_ms {last})")
    finally:
        for x in desks:
            await x.close()


if __name__ == "__main__":
    run_tests([test_text_views_do_not_truncate_long_lists,
               test_tenant_option_refused_where_it_does_not_apply,
               test_concurrent_skill_adds_are_not_lost,
               test_explain_fallback_language_when_agent_frees_up,
               test_explain_sticky_assignment_lists_required_skills,
               test_command_errors_are_one_line,
               test_update_racing_remove_leaves_no_ghost_agent,
               test_check_config_names_unreachable_queue,
               test_explain_scores_are_exact])
