"""test_config_edges.py - configuration options against what config/omnirouter.yaml (and
docs/ROUTING.md, docs/PROTOCOL.md) say they do: at start, at --check-config and at SIGHUP.

Found by a review of every option (2026-12-06); each test failed on the build it was written
against. Each names the option and the documented behaviour it asserts; the comments above
them say what was wrong.

Run: OMR_BUILD_DIR=build/asan python3 tests/integration/test_config_edges.py [test_name...]
"""

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from omr_harness import (DAEMON_BIN, Agent, Customer, _sanitizer_env,  # noqa: E402
                         add_agent, conv_key, ctl, free_port, log, poll, run_tests,
                         time_limit, wait_log)


# ---------------------------------------------------------------------------
# helpers

def check_config(env, text, name="check.yaml"):
    """Runs `omnirouterd --check-config -c FILE` on text; returns the process."""
    path = os.path.join(env.dir, name)
    with open(path, "w") as f:
        f.write(text)
    p = subprocess.run([DAEMON_BIN, "--check-config", "-c", path], capture_output=True,
                       text=True, timeout=30, env=_sanitizer_env())
    log(f"--check-config {name}: exit {p.returncode} {p.stdout.strip()} {p.stderr.strip()}")
    return p


def refused_at_line(p, option):
    """--check-config refused the file naming file:line:column and the option."""
    return p.returncode != 0 and re.search(r"\.yaml:\d+:\d+: .*" + re.escape(option), p.stderr)


async def wait_state(rc, conv, want, timeout):
    deadline = time.monotonic() + timeout
    h = {}
    while time.monotonic() < deadline:
        h = rc.hgetall(conv_key(conv))
        if h.get("state") == want:
            return h
        await asyncio.sleep(0.1)
    return h


# ---------------------------------------------------------------------------
# 1. queues[].max_wait_s, "SIGHUP: reloaded": a reload that changes a queue's maximum wait
#    does not change it for the conversations already waiting there. rules_load re-enqueues
#    every waiting conversation, but enqueue() arms the deadline with ZADD NX
#    (router/lua/20_route.lua, enqueue; router/lua/30_agents.lua, rules_load), so the old
#    deadline stays and fire_max_wait (60_timers.lua) acts on it without checking it against
#    the queue's current max_wait_s. Raising 4 -> 600 at 3 a.m. still closes the waiting
#    customers after 4 s; lowering 600 -> 2 leaves them waiting 600 s.

@time_limit(60)
async def test_reload_max_wait_applies_to_waiting_conversations(env):
    r = env.redis()
    d = env.daemon(r, queues=("queues:\n"
                              "  - name: en\n    languages: [en]\n    max_wait_s: 4\n"
                              "  - name: es\n    languages: [es]\n    max_wait_s: 600\n"))
    en, es = Customer(d.url, "en customer"), Customer(d.url, "es customer")
    try:
        await en.hello(language="en", name="Eve")
        await es.hello(language="es", name="Ana")
        t0 = time.monotonic()
        with open(d.cfg_path) as f:
            text = f.read()
        text = (text.replace("max_wait_s: 4", "max_wait_s: 60X")
                .replace("max_wait_s: 600", "max_wait_s: 2").replace("60X", "600"))
        with open(d.cfg_path, "w") as f:
            f.write(text)
        d.proc.send_signal(signal.SIGHUP)
        await wait_log(d, "configuration reloaded", 5)
        rc = r.client()

        def max_waits():
            return {q["name"]: q["max_wait_s"]
                    for q in json.loads(rc.cmd("GET", "omr:{default}:rules"))["queues"]}
        # (the rules reach Redis after that log line, with the router's next request)
        await poll(lambda: max_waits() == {"en": 600, "es": 2}, 10)
        rules = max_waits()
        assert rules == {"en": 600, "es": 2}, f"reload not applied to the rules: {rules}"
        await asyncio.sleep(max(0.0, 7 - (time.monotonic() - t0)))
        h_en = rc.hgetall(conv_key(en.conversation_id))
        await poll(lambda: rc.hgetall(conv_key(es.conversation_id)).get("state") == "closed",
                   10)  # (closed at a tick after its new deadline)
        h_es = rc.hgetall(conv_key(es.conversation_id))
        env.expect(h_en.get("state") == "queued",
                   f"queue en: max_wait_s raised 4 -> 600 by SIGHUP, yet its waiting "
                   f"conversation was {h_en.get('state')} ({h_en.get('close_reason')}) 7 s "
                   f"after it started (the old 4 s deadline fired)")
        env.expect(h_es.get("state") == "closed" and h_es.get("close_reason") == "max-wait",
                   f"queue es: max_wait_s lowered 600 -> 2 by SIGHUP, yet its waiting "
                   f"conversation is still {h_es.get('state')} 7 s after it started (the old "
                   f"600 s deadline is kept)")
        rc.close()
    finally:
        await en.close()
        await es.close()


# ---------------------------------------------------------------------------
# 2. queues[].offer_timeout_s "0..3600, default 30: an offer not accepted in time goes to the
#    next agent". 0 is accepted (every other 0 in the file means "off"), but it makes every
#    offer expire the moment it is made (expires_ms == ts; router/lua/20_route.lua, assign:
#    now + offer_timeout_s * 1000): no agent can ever accept a conversation of that queue.
#    The range comes from common/config_queues.c (load_value, QK_OFFER_TIMEOUT_S: 0..3600).

@time_limit(60)
async def test_offer_timeout_zero_is_refused_or_means_no_timeout(env):
    queues = ("queues:\n  - name: general\n    auto_accept: false\n"
              "    offer_timeout_s: 0\n")
    p = check_config(env, queues)
    if refused_at_line(p, "offer_timeout_s"):
        return  # refused up front, with file:line
    r = env.redis()
    d = env.daemon(r, queues=queues)
    tok = add_agent(d, "ana", "Ana", "en", 1)
    ana = Agent(d.url, "ana", tok)
    cust = Customer(d.url)
    try:
        await ana.login()
        await ana.presence("available")
        await cust.hello(language="en", name="Bob")
        offer = await ana.wait_item(lambda f: f.get("type") == "offer", 10, "offer")
        res = await ana.accept(cust.conversation_id)
        assert res.get("type") == "ack", (
            f"--check-config accepted offer_timeout_s: 0, and then an offer cannot be "
            f"accepted at all: offer {{ts {offer.get('ts')}, expires_ms "
            f"{offer.get('expires_ms')}}}, accept sent at once -> {res}")
    finally:
        await ana.close()
        await cust.close()


# ---------------------------------------------------------------------------
# 3. daemon.instance_name, "Length: 0..64 bytes": any one-line string is accepted (no id check,
#    unlike routing.group; common/config.c str_checks). The name starts every desktop session
#    ("instance:conn", router/handlers.c conn_session), and the logged-out notification
#    "o:AGENT|SESSION|REASON" is split at the first '|' (router/delivery.c, notify_ended ->
#    split_bar): with a '|' in the name no session matches, so revoking (or reissuing) a token
#    or removing the agent no longer logs its desktop out at once (README: "a desktop logged
#    in now is logged out"); only the next heartbeat (heartbeat_timeout_s / 3 later, up to
#    20 minutes) does.

@time_limit(60)
async def test_instance_name_with_bar_keeps_revoked_desktop(env):
    p = check_config(env, 'daemon:\n  instance_name: "site|a"\n')
    if refused_at_line(p, "instance_name"):
        return
    r = env.redis()
    d = env.daemon(r, config={"daemon": {"instance_name": "site|a"}})
    tok = add_agent(d, "ana", "Ana", "en", 1)
    ana = Agent(d.url, "ana", tok)
    try:
        await ana.login()
        ctl(d, "agent", "revoke", "--id", "ana")
        try:
            f = await ana.conn.wait_for(lambda f: f.get("type") == "error", 3, "logged-out")
        except AssertionError as e:
            raise AssertionError(
                "--check-config accepted daemon.instance_name \"site|a\"; with it a revoked "
                f"token's desktop stays logged in (the same steps with \"site-a\" log it out "
                f"at once): {e}") from None
        assert f.get("code") == "logged-out", f
    finally:
        await ana.close()


# ---------------------------------------------------------------------------
# 5. Limits that contradict each other pass --check-config. bus.max_frame_bytes accepts 1024
#    ("Range: 1024..16777216") next to chat.max_text_bytes 4096 (its default): then a chat
#    text of 900 bytes, well under chat.max_text_bytes, is refused "request breaks a bus
#    limit". Likewise chat.max_text_bytes up to 65536 is accepted with websocket.max_frame_bytes
#    at its default 16384: a 20000-byte text (under the text limit, which PROTOCOL.md says
#    is refused with bad-request, connection open) gets too-big and the connection is closed
#    (1009). Nothing relates these options (common/config.c order_rules holds only the two
#    redis pairs).

@time_limit(60)
async def test_chat_text_limit_fits_the_frame_limits(env):
    r = env.redis()
    cases = [("bus.max_frame_bytes", {"bus": {"max_frame_bytes": 1024}},
              "bus:\n  max_frame_bytes: 1024\n", 900),
             ("websocket.max_frame_bytes", {"chat": {"max_text_bytes": 65536}},
              "chat:\n  max_text_bytes: 65536\n", 20000)]
    for i, (option, cfg, text, n) in enumerate(cases):
        p = check_config(env, text, name=f"limits{i}.yaml")
        if p.returncode != 0 and re.search(r"\.yaml:\d+:\d+: ", p.stderr):
            continue  # the contradiction is refused up front
        d = env.daemon(r, name=f"d{i}", config=cfg)
        cust = Customer(d.url, f"customer ({option})")
        try:
            await cust.hello(language="en", name="Bob")
            try:
                res = await cust.conn.request({"type": "message", "id": "m1", "text": "x" * n})
            except AssertionError as e:
                res = {"disconnected": str(e).splitlines()[0]}
            env.expect(res.get("type") == "ack",
                       f"{text.strip()!r} passes --check-config, and then a {n}-byte chat "
                       f"text (under chat.max_text_bytes) fails on {option}: {res}")
        finally:
            await cust.close()
        d.stop()


# ---------------------------------------------------------------------------
# 6. bus.endpoint is only length-checked (common/config.c has no syntax check for it, as it
#    now has for websocket.listen): "nonsense" and the usual ZeroMQ bind form "tcp://*:PORT"
#    pass --check-config; the daemon then exits 1 at start ("cannot bind endpoint=nonsense",
#    or, for tcp://*, after Redis answered: "bus client setup failed ... Invalid argument",
#    the adapters connect to the same string), with no file:line. The file's header promises a
#    bad value is refused with file, line and column.

@time_limit(30)
def test_bus_endpoint_checked_by_check_config(env):
    bad = []
    for ep in ("nonsense", f"tcp://*:{free_port()}"):
        p = check_config(env, f'bus:\n  endpoint: "{ep}"\n', name="endpoint.yaml")
        if not refused_at_line(p, "bus.endpoint"):
            bad.append(f"{ep!r}: exit {p.returncode} {p.stdout.strip()!r}")
    assert not bad, ("bus.endpoint values the daemon cannot use pass --check-config:\n  "
                     + "\n  ".join(bad))


# ---------------------------------------------------------------------------
# 7. redis.password (and reconnect_min_ms / reconnect_max_ms: "it doubles after each failed
#    attempt"). A password given for a Redis that has none (or `password: null`, which is
#    taken as the password "null") fails AUTH, but SELECT, FUNCTION LOAD and PING succeed:
#    router/store.c on_setup_reply schedules a reset, then on_ping declares the store ready
#    anyway (check_ready -> set_ready, which also resets the backoff to reconnect_min_ms).
#    The daemon logs "redis: ready" after every failed setup and reconnects about ten times a
#    second for as long as it runs, never backing off.

@time_limit(60)
def test_redis_auth_failure_backs_off_and_is_not_ready(env):
    r = env.redis()
    d = env.daemon(r, config={"redis": {"password": "not-the-password", "reconnect_min_ms": 100,
                                        "reconnect_max_ms": 5000}}, start=False)
    d.launch()
    time.sleep(4.5)
    text = d.log_text()
    resets = text.count("connection lost, reconnecting")
    readies = text.count("info redis: ready")
    deadline = time.monotonic() + 10  # (the first attempt's AUTH error: a slow start)
    while "AUTH" not in d.log_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    auth = "AUTH" in d.log_text()
    log(f"in 4.5 s: {resets} reconnects, {readies} 'redis: ready', AUTH error logged: {auth}")
    env.expect(auth, "the AUTH failure is not logged")
    # 100, 200, 400, 800, 1600 ms: at most 6 attempts in 4.5 s (8 leaves slack)
    env.expect(resets <= 8, f"{resets} reconnects in 4.5 s with reconnect_min_ms 100 doubling "
               f"to reconnect_max_ms 5000 (at most 6 expected)")
    env.expect(readies == 0, f"'redis: ready' logged {readies} times although every "
               f"connection setup failed (AUTH)")


# ---------------------------------------------------------------------------
# 8. log.level: "Message bodies and tokens are logged only at debug; client IP addresses
#    too, except in the warnings about a connection refused and closed (...) or cut for not
#    reading". A refusal that keeps the connection (info) logged the address as well, and so
#    did "write failed" (adapters/websocket/ws_server.c refuse, write_now).

@time_limit(30)
async def test_info_log_has_no_customer_address(env):
    r = env.redis()
    d = env.daemon(r, config={"websocket": {"auth_timeout_ms": 300}})  # log.level info
    c = Customer(d.url)
    await c.hello(language="en")
    start = len(c.conn.frames)
    await c.conn.send({"type": "no-such-frame", "id": "x1"})  # bad-request, stays open
    await c.conn.wait_for(lambda f: f.get("id") == "x1", 5, "the refusal", start)
    await c.close()
    silent = Customer(d.url, "says nothing")  # auth-timeout, closed
    await silent.connect()
    await silent.conn.wait_closed(5, "the auth-timeout close")
    assert silent.conn.close_reason == "auth-timeout", silent.conn.close_reason
    await asyncio.sleep(0.3)
    lines = d.log_text().splitlines()
    leaks = [ln for ln in lines if ln.startswith("info") and "ip=" in ln]
    assert any("code=bad-request" in ln for ln in lines), "no log of the bad request"
    assert not leaks, ("log.level info: a customer's address is logged at info:\n  "
                       + "\n  ".join(leaks))
    closing = [ln for ln in lines if "auth-timeout" in ln and ln.startswith("warn")]
    assert closing and "ip=127.0.0.1" in closing[0], (
        f"the refusal that closes names the address for the operator: {closing}")


# ---------------------------------------------------------------------------
# 9. routing.tick_ms, "SIGHUP: reloaded": the new period applies only after one more tick at
#    the old period. router/router.c omr_router_reload calls uv_timer_set_repeat, which libuv
#    applies after the next expiry; so lowering tick_ms 10000 -> 100 leaves every routing timer
#    (maximum waits, escalation steps, offer timeouts, wrap-up ends) up to 10 s late after
#    the reload. The same call reloads the heartbeat period (routing.heartbeat_timeout_s / 3:
#    up to 20 minutes late from 3600) and, in router/store.c omr_store_reload, the Redis
#    watchdog (redis.ping_interval_ms, up to 60 s).

@time_limit(60)
async def test_reload_tick_ms_applies_at_once(env):
    r = env.redis()
    # (heartbeat_timeout_s 70: tick_ms may be at most an eighth of it + 10 s)
    d = env.daemon(r, config={"routing": {"tick_ms": 10000, "heartbeat_timeout_s": 70}},
                   queues="queues:\n  - name: q\n    max_wait_s: 1\n")
    cust = Customer(d.url)
    try:
        await cust.hello(language="en", name="Bob")
        t0 = time.monotonic()
        with open(d.cfg_path) as f:
            text = f.read()
        with open(d.cfg_path, "w") as f:
            f.write(text.replace("tick_ms: 10000", "tick_ms: 100"))
        d.proc.send_signal(signal.SIGHUP)
        await wait_log(d, "configuration reloaded", 5)
        try:
            await cust.conn.wait_for(lambda f: f.get("type") == "event"
                                     and f.get("event") == "closed", 4, "closed (max-wait)")
        except AssertionError:
            raise AssertionError(
                "routing.tick_ms reloaded 10000 -> 100, yet a conversation whose max_wait_s "
                "(1 s) passed was not closed within 4 s: the old 10 s period still runs "
                "until its next tick") from None
        log(f"closed {time.monotonic() - t0:.1f} s after the hello")
    finally:
        await cust.close()


# 10. A reload that raises chat.max_text_bytes (reloaded) together with bus.max_frame_bytes (a
#     restart) passes --check-config, but the running bus keeps its limit: long texts were then
#     refused ("request breaks a bus limit") though acked limits said they fit (a review of
#     2026-12-07). The reload is refused instead, saying why, and the old limits stay.

@time_limit(60)
async def test_reload_checks_limits_against_the_running_values(env):
    r = env.redis()
    d = env.daemon(r, config={"bus": {"max_frame_bytes": 65536},
                              "chat": {"max_text_bytes": 4096},
                              "websocket": {"max_frame_bytes": 16384}})
    with open(d.cfg_path) as f:
        text = f.read()
    for old, new in (("max_frame_bytes: 65536", "max_frame_bytes: 262144"),
                     ("max_text_bytes: 4096", "max_text_bytes: 65536"),
                     ("max_frame_bytes: 16384", "max_frame_bytes: 262144")):
        assert old in text, old
        text = text.replace(old, new)
    with open(d.cfg_path, "w") as f:
        f.write(text)
    p = subprocess.run([DAEMON_BIN, "--check-config", "-c", d.cfg_path], capture_output=True,
                       text=True)
    assert p.returncode == 0, p.stderr  # valid as a file for a fresh start
    d.proc.send_signal(signal.SIGHUP)
    await wait_log(d, "reload failed, keeping the running configuration: with the options "
                   "that need a restart at their running values", 5)
    assert "bus.max_frame_bytes (65536)" in d.log_text(), d.log_text()[-1500:]
    cust = Customer(d.url)
    try:
        await cust.hello(language="en", name="Bob")
        err = await cust.conn.request({"type": "message", "id": "long", "text": "z" * 5000}, 10)
        assert err.get("code") == "bad-request", err  # the old limit, 4096, still holds
    finally:
        await cust.close()


# 11. websocket.tls_cert / tls_key: --check-config said "configuration ok" for files that do
#     not exist; the daemon then failed to start (a review of 2026-12-07).

def test_tls_files_checked_by_check_config(env):
    cfg = os.path.join(env.dir, "tls.yaml")
    for cert, rc, text in (("/nonexistent/cert.pem", 1,
                            "websocket.tls_cert: cannot read /nonexistent/cert.pem"),
                           (cfg, 0, "configuration ok")):  # (readable: PEM is checked at start)
        with open(cfg, "w") as f:
            f.write(f"websocket:\n  tls_cert: {cert}\n  tls_key: {cfg}\n")
        p = subprocess.run([DAEMON_BIN, "--check-config", "-c", cfg], capture_output=True,
                           text=True, env=_sanitizer_env())
        assert p.returncode == rc and text in p.stdout + p.stderr, (cert, p.returncode,
                                                                     p.stdout, p.stderr)


if __name__ == "__main__":
    run_tests([
        test_reload_max_wait_applies_to_waiting_conversations,
        test_offer_timeout_zero_is_refused_or_means_no_timeout,
        test_instance_name_with_bar_keeps_revoked_desktop,
        test_chat_text_limit_fits_the_frame_limits,
        test_bus_endpoint_checked_by_check_config,
        test_redis_auth_failure_backs_off_and_is_not_ready,
        test_info_log_has_no_customer_address,
        test_reload_tick_ms_applies_at_once,
        test_reload_checks_limits_against_the_running_values,
        test_tls_files_checked_by_check_config,
    ])
