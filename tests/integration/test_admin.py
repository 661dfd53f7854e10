"""test_admin.py - the administration side (omnirouterctl, the YAML
configuration, --check-config, SIGHUP, queues rendered to routing rules). Each
test but the last failed before its fix: a defect a site administrator would
hit. The last guards what held (a bad file on SIGHUP keeps the running rules).

Run: cd /work/main && OMR_BUILD_DIR=build/asan python3 tests/integration/test_admin.py
"""
import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from omr_harness import (DAEMON_BIN, SOURCE_DIR, TOKEN_RE, Agent, Customer, add_agent,  # noqa: E402
                         ctl, free_port, log, run_tests, time_limit, _sanitizer_env)


def check_config(env, text, name="check.yaml"):
    """Runs the real `omnirouterd --check-config -c FILE`; returns the process."""
    path = os.path.join(env.dir, name)
    with open(path, "w") as f:
        f.write(text)
    p = subprocess.run([DAEMON_BIN, "--check-config", "-c", path], capture_output=True,
                       text=True, timeout=30, env=_sanitizer_env())
    log(f"--check-config {name}: exit {p.returncode} {p.stdout.strip()} {p.stderr.strip()}")
    return path, p


def ctl_json(d, *args):
    p = ctl(d, "--json", *args)
    return json.loads(p.stdout)


def port_open(port, host="127.0.0.1"):
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def base_yaml(redis_port, ws_port, extra=""):
    return (f"redis:\n  port: {redis_port}\n"
            f"websocket:\n  port: {ws_port}\n  static_dir: \"{os.path.join(SOURCE_DIR, 'web')}\"\n"
            + extra)


# ---------------------------------------------------------------------------
# 1. websocket.listen: "localhost" passes --check-config; the daemon then says
#    "ready" but never listens (libwebsockets takes the value as an interface
#    name that does not exist and waits for it).

@time_limit(60)
def test_listen_localhost_is_refused(env):
    r = env.redis()
    ws_port = free_port()
    text = base_yaml(r.port, ws_port).replace(
        "websocket:\n", "websocket:\n  listen: \"localhost\"\n", 1)
    path, p = check_config(env, text)
    if p.returncode != 0:
        assert re.search(r":\d+:\d+: .*listen", p.stderr), \
            f"refused, but without file:line:column and the option: {p.stderr!r}"
        return  # fixed: refused up front
    logpath = os.path.join(env.dir, "d.log")
    with open(logpath, "wb") as logf:
        proc = subprocess.Popen([DAEMON_BIN, "-c", path], stdout=logf, stderr=logf,
                                cwd=SOURCE_DIR, env=_sanitizer_env())
    try:
        deadline = time.monotonic() + 8
        listening = False
        while time.monotonic() < deadline and proc.poll() is None:
            if port_open(ws_port):
                listening = True
                break
            time.sleep(0.2)
        with open(logpath, errors="replace") as f:
            text_log = f.read()
        ready = "daemon: ready" in text_log
        assert listening or not ready, (
            "--check-config accepted websocket.listen: \"localhost\" (exit 0), and the daemon "
            f"logged ready but nothing listens on port {ws_port}:\n"
            + "\n".join(ln for ln in text_log.splitlines() if "ws" in ln or "lws" in ln
                        or "ready" in ln))
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# ---------------------------------------------------------------------------
# 2. websocket.tls_cert / tls_key naming files that do not exist: the daemon
#    exits 1 at start, and must say which file (lws only reports that it could
#    not create the vhost, which read as "address in use or invalid").

@time_limit(60)
def test_missing_tls_file_is_named_at_start(env):
    r = env.redis()
    ws_port = free_port()
    missing = os.path.join(env.dir, "no-such")
    text = base_yaml(r.port, ws_port).replace(
        "websocket:\n",
        f"websocket:\n  tls_cert: \"{missing}.pem\"\n  tls_key: \"{missing}.key\"\n", 1)
    path, p = check_config(env, text)
    logpath = os.path.join(env.dir, "d.log")
    with open(logpath, "wb") as logf:
        proc = subprocess.Popen([DAEMON_BIN, "-c", path], stdout=logf, stderr=logf,
                                cwd=SOURCE_DIR, env=_sanitizer_env())
    try:
        try:
            rc = proc.wait(15)
        except subprocess.TimeoutExpired:
            rc = None
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(15)
    with open(logpath, errors="replace") as f:
        text_log = f.read()
    # --check-config does not open the files (it may run as another user than the
    # service); the daemon, failing at start, names the file it cannot read.
    assert rc is not None and rc != 0, f"omnirouterd started without its TLS files (rc {rc})"
    assert "websocket.tls_cert" in text_log and f"{missing}.pem" in text_log, (
        "omnirouterd failed at start without naming the TLS file it cannot read:\n"
        + "\n".join(ln for ln in text_log.splitlines() if "error" in ln))


# ---------------------------------------------------------------------------
# 3. routing.default_language is only length-checked: "en_US" passes
#    --check-config, and then every hello without a language is refused.

@time_limit(60)
async def test_default_language_not_a_tag(env):
    _, p = check_config(env, "routing:\n  default_language: \"en_US\"\n")
    refused_up_front = p.returncode != 0
    r = env.redis()
    if refused_up_front:
        assert re.search(r":2:\d+: .*default_language", p.stderr), p.stderr
        return
    d = env.daemon(r, config={"routing": {"default_language": "en_US"}})
    add_agent(d, "en1", "Emma", "en", 2)
    cust = Customer(d.url, "customer without language")
    try:
        try:
            await cust.hello(name="Ann")  # the page declares no language
            ok = True
        except AssertionError as e:
            ok = False
            why = str(e)
        assert ok, ("--check-config accepted routing.default_language: \"en_US\" (exit 0), "
                    f"and then a hello without a language is refused: {why}")
    finally:
        await cust.close()


# ---------------------------------------------------------------------------
# 4. routing.default_tenant is only length-checked (routing.group is checked
#    as an id): "Acme Corp" passes --check-config, omnirouterctl gives it to
#    new agents unchecked (while --tenant "Acme Corp" is refused, exit 2), and
#    the router refuses every request of that tenant (handlers.c dispatch:
#    the tenant must be an id): no agent can log in and no customer can chat
#    unless the page names another tenant.

@time_limit(90)
async def test_default_tenant_not_an_id(env):
    _, p = check_config(env, "routing:\n  default_tenant: \"Acme Corp\"\n")
    if p.returncode != 0:
        assert re.search(r":2:\d+: .*default_tenant", p.stderr), p.stderr
        return
    r = env.redis()
    d = env.daemon(r, config={"routing": {"default_tenant": "Acme Corp"}})
    q = ctl(d, "agent", "add", "--id", "x", "--name", "X", "--languages", "en",
            "--tenant", "Acme Corp", check=False)
    tok = add_agent(d, "ana", "Ana", "en", 2)
    tenants = ctl_json(d, "agent", "show", "ana")["tenants"]
    problems = [f"--check-config accepted routing.default_tenant: \"Acme Corp\" (exit 0)",
                f"`agent add` stored tenants={tenants} although `--tenant 'Acme Corp'` is "
                f"refused (exit {q.returncode}: {q.stderr.strip()!r})"]
    ana = Agent(d.url, "ana", tok)
    cust = Customer(d.url)
    try:
        try:
            await ana.login()  # the desktop names no tenant
        except AssertionError as e:
            problems.append(f"agent login refused: {e}")
        try:
            await cust.hello(language="en", name="Bob")  # the page names no tenant
        except AssertionError as e:
            problems.append(f"customer hello refused: {e}")
    finally:
        await ana.close()
        await cust.close()
    assert len(problems) == 2, "\n  ".join(problems)


# ---------------------------------------------------------------------------
# 5. A queue's skill ids are checked as ids ([A-Za-z0-9._:@-]) but an agent's
#    as [A-Za-z0-9._-]: a queue requiring skill "support@acme" passes
#    --check-config, takes conversations with that topic, and no agent can
#    ever be given the skill, so they wait forever.

@time_limit(90)
async def test_queue_skill_no_agent_can_have(env):
    queues = ("queues:\n"
              "  - name: acme-support\n"
              "    skills: {\"support@acme\": 3}\n"
              "  - name: general\n")
    _, p = check_config(env, queues)
    if p.returncode != 0:
        assert re.search(r":3:\d+: .*support@acme", p.stderr), p.stderr
        return
    r = env.redis()
    d = env.daemon(r, start=False)
    with open(d.cfg_path, "a") as f:
        f.write(queues)
    d.start()
    tok = add_agent(d, "ana", "Ana", "en", 2)
    q = ctl(d, "agent", "skills", "--id", "ana", "--add", "support@acme:5", check=False)
    q2 = ctl(d, "agent", "update", "--id", "ana", "--skills", "support@acme:5", check=False)
    log(f"skills --add: {q.returncode} {q.stderr.strip()}; update: {q2.returncode}")
    agent_can_have = q.returncode == 0 or q2.returncode == 0
    cust = Customer(d.url)
    ana = Agent(d.url, "ana", tok)
    try:
        await ana.login()
        await ana.presence("available")
        w = await cust.hello(language="en", name="Bob", topic="support@acme")
        e = ctl_json(d, "explain", cust.conversation_id)
        log(f"welcome {w.get('state')}; explain {e}")
        assert agent_can_have or w.get("state") == "assigned", (
            "--check-config accepted a queue requiring skill 'support@acme' (exit 0); the "
            f"conversation with that topic went to queue {e.get('queue')!r} and waits, and "
            f"omnirouterctl refuses to give any agent that skill: {q.stderr.strip()!r}")
    finally:
        await ana.close()
        await cust.close()


# ---------------------------------------------------------------------------
# 6. The roster import promises "every row is checked before anything is
#    written ... nothing is imported". omr_agent_upsert refuses a supervises
#    list of more than 500 agents, which ctl_spec.c does not check: the rows
#    before that one are imported (with tokens), the rest are not.

@time_limit(90)
def test_import_half_applies_on_large_supervises(env):
    d = env.daemon(env.redis())
    roster = os.path.join(env.dir, "roster.csv")
    team = "|".join(f"a{i:03d}" for i in range(501))
    with open(roster, "w", newline="") as f:
        f.write("id,name,languages,supervises\r\n"
                "first,First Agent,en,\r\n"
                f"boss,Big Boss,en,{team}\r\n"
                "last,Last Agent,en,\r\n")
    dry = ctl(d, "agent", "import", roster, "--dry-run", check=False)
    p = ctl(d, "agent", "import", roster, check=False)
    ids = [a["id"] for a in ctl_json(d, "agent", "list")]
    log(f"dry-run: {dry.returncode} {dry.stdout.strip()}\nimport: {p.returncode}\n"
        f"stdout {p.stdout!r}\nstderr {p.stderr!r}\nagents {ids}")
    assert ids in ([], ["boss", "first", "last"]), (
        f"the import half-applied: --dry-run said {dry.stdout.strip()!r} (exit "
        f"{dry.returncode}); the import exited {p.returncode} with agents {ids} created "
        f"and stderr {p.stderr.strip()!r}")


# ---------------------------------------------------------------------------
# 7. SIGHUP: after 64 reloads every further reload is refused ("too many
#    reloads, restart the service"), so a good, changed file is no longer
#    applied; README promises only that a *bad* file is refused.

@time_limit(120)
def test_reload_refused_after_64_reloads(env):
    r = env.redis()
    d = env.daemon(r, start=False)
    with open(d.cfg_path) as f:
        base = f.read()

    def write(qname):
        with open(d.cfg_path, "w") as f:
            f.write(base + f"queues:\n  - name: {qname}\n")

    write("q0")
    d.start()
    client = r.client()

    def rules_queue():
        raw = client.cmd("GET", "omr:{default}:rules")
        return json.loads(raw)["queues"][0]["name"] if raw else None

    def wait_rules(want, timeout=5):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if rules_queue() == want:
                return True
            time.sleep(0.05)
        return False

    assert wait_rules("q0"), rules_queue()
    for i in range(1, 70):
        write(f"q{i}")
        d.proc.send_signal(signal.SIGHUP)
        if not wait_rules(f"q{i}"):
            refused = [ln for ln in d.log_text().splitlines() if "reload" in ln][-2:]
            raise AssertionError(
                f"SIGHUP number {i} with a valid, changed file was not applied (rules still "
                f"name queue {rules_queue()!r}); log: {refused}")


# ---------------------------------------------------------------------------
# 9. Options that do not apply are refused everywhere (exit 2) but in
#    explain, which ignores --supervises (and --tenant) silently.

@time_limit(60)
def test_explain_ignores_supervises(env):
    d = env.daemon(env.redis())
    p = ctl(d, "explain", "no-such-conv", "--supervises", "ana", check=False)
    assert p.returncode == 2 and ("--supervises" in p.stderr or "explain takes only" in p.stderr), (
        f"explain --supervises should be a usage error (exit 2) like every option that does "
        f"not apply; got exit {p.returncode}: {p.stderr.strip()!r}")


# ---------------------------------------------------------------------------
# 10. config/omnirouter.yaml says "--check-config -v shows it masked" (the
#     Redis password): omnirouterd has no -v and exits 2 with its usage.

@time_limit(30)
def test_check_config_verbose_documented_but_missing(env):
    with open(os.path.join(SOURCE_DIR, "config", "omnirouter.yaml")) as f:
        documented = "--check-config -v" in f.read()
    path, p = check_config(env, "redis:\n  password: \"s3cret-password\"\n")
    v = subprocess.run([DAEMON_BIN, "--check-config", "-v", "-c", path], capture_output=True,
                       text=True, timeout=30, env=_sanitizer_env())
    assert not documented or (v.returncode == 0 and "s3cret" not in v.stdout
                              and "password" in v.stdout), (
        "config/omnirouter.yaml documents `--check-config -v` (shows the password masked), "
        f"but omnirouterd -v exits {v.returncode}: {v.stderr.strip()!r}")


# ---------------------------------------------------------------------------
# 11. `agent state ID available` for an agent with no desktop logged in:
#     routing then gives it conversations nobody will ever see, and nothing
#     (heartbeat timeout, grace period) takes them back.

@time_limit(60)
async def test_admin_available_without_desktop(env):
    d = env.daemon(env.redis(), config={"routing": {"heartbeat_timeout_s": 3,
                                                    "agent_grace_s": 0}})
    add_agent(d, "ghost", "Ghost", "en", 2)
    p = ctl(d, "agent", "state", "ghost", "available", check=False)
    log(f"state available: exit {p.returncode} {p.stdout.strip()} {p.stderr.strip()}")
    cust = Customer(d.url)
    try:
        w = await cust.hello(language="en", name="Bob")
        await asyncio.sleep(6)  # twice the heartbeat timeout
        a = ctl_json(d, "agent", "show", "ghost")
        stuck = cust.conversation_id in a["conversations"]
        assert p.returncode != 0 or not stuck, (
            f"`agent state ghost available` (exit 0) made an agent with no desktop available; "
            f"conversation {cust.conversation_id} (welcome state {w.get('state')!r}) is still "
            f"held by it after 2x heartbeat_timeout_s: presence={a['presence']!r} "
            f"conversations={a['conversations']}")
    finally:
        await cust.close()


# ---------------------------------------------------------------------------
# 12. routing.group is "SIGHUP: not reloaded; needs a restart", and a reload
#     that changes it logs "restart needed". But the router reads the group
#     from the new config on every request (handlers.c, request.c, router.c
#     take r->cfg->routing_group): after the SIGHUP, the running
#     conversations and agents are in the old group and every request goes to
#     the new one.

@time_limit(90)
async def test_reload_applies_group_that_needs_restart(env):
    r = env.redis()
    d = env.daemon(r, config={"routing": {"group": "g1"}})
    tok = add_agent(d, "ana", "Ana", "en", 2)
    ana = Agent(d.url, "ana", tok)
    cust = Customer(d.url)
    try:
        await ana.login()
        await ana.presence("available")
        await cust.hello(language="en", name="Bob")
        await cust.send("before the reload")
        with open(d.cfg_path) as f:
            text = f.read()
        assert 'group: "g1"' in text, text
        with open(d.cfg_path, "w") as f:
            f.write(text.replace('group: "g1"', 'group: "g2"'))
        d.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and "restart needed" not in d.log_text():
            await asyncio.sleep(0.05)
        warned = [ln for ln in d.log_text().splitlines() if "restart needed" in ln]
        problems = []
        try:
            await cust.send("after the reload")
        except AssertionError as e:
            problems.append(f"the customer's next message: {e}")
        try:
            await ana.presence("break")
        except AssertionError as e:
            problems.append(f"the agent's next presence change: {e}")
        assert not problems, (f"after a SIGHUP that changed routing.group (log: {warned}), "
                              "the running instance already uses the new group:\n  "
                              + "\n  ".join(problems))
    finally:
        await ana.close()
        await cust.close()


# ---------------------------------------------------------------------------
# Held (kept as a regression test): a SIGHUP with a bad file (an overflow to a
# queue that does not exist) is refused with file:line:column and the running
# rules stay; the corrected file is then applied.

@time_limit(60)
def test_reload_bad_file_keeps_running_rules(env):
    r = env.redis()
    d = env.daemon(r, start=False)
    with open(d.cfg_path) as f:
        base = f.read()
    good = base + "queues:\n  - name: first\n  - name: second\n"
    bad = base + ("queues:\n  - name: first\n    steps:\n      - after_s: 5\n"
                  "        overflow: secnod\n  - name: second\n")
    with open(d.cfg_path, "w") as f:
        f.write(good)
    d.start()
    client = r.client()

    def names():
        raw = client.cmd("GET", "omr:{default}:rules")
        return [q["name"] for q in json.loads(raw)["queues"]] if raw else None

    deadline = time.monotonic() + 5
    while names() != ["first", "second"] and time.monotonic() < deadline:
        time.sleep(0.05)
    before = client.cmd("GET", "omr:{default}:rules")
    with open(d.cfg_path, "w") as f:
        f.write(bad)
    d.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 5
    while "reload failed" not in d.log_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    line = next((ln for ln in d.log_text().splitlines() if "reload failed" in ln), "")
    assert re.search(r"d1\.yaml:\d+:\d+: .*no queue 'secnod' \(did you mean 'second'\?\)",
                     line), d.log_text()
    time.sleep(0.5)
    assert client.cmd("GET", "omr:{default}:rules") == before, "a bad file changed the rules"
    assert d.running()
    with open(d.cfg_path, "w") as f:
        f.write(bad.replace("secnod", "second"))
    d.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 5
    while client.cmd("GET", "omr:{default}:rules") == before and time.monotonic() < deadline:
        time.sleep(0.05)
    rules = json.loads(client.cmd("GET", "omr:{default}:rules"))
    assert rules["queues"][0]["steps"][1] == {"after_s": 5, "min_level_delta": 0,
                                              "languages": [], "overflow": "second"}, rules


if __name__ == "__main__":
    run_tests([test_listen_localhost_is_refused,
               test_missing_tls_file_is_named_at_start,
               test_default_language_not_a_tag,
               test_default_tenant_not_an_id,
               test_queue_skill_no_agent_can_have,
               test_import_half_applies_on_large_supervises,
               test_reload_refused_after_64_reloads,
               test_explain_ignores_supervises,
               test_check_config_verbose_documented_but_missing,
               test_admin_available_without_desktop,
               test_reload_applies_group_that_needs_restart,
               test_reload_bad_file_keeps_running_rules])
