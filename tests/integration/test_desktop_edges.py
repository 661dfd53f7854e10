"""test_desktop_edges.py - a floor agent's working day on the agent desktop (web/agent.html,
web/agent.js): each test runs one scenario of tests/browser/desktop_edges.js in headless
Chromium against a real daemon and asserts the documented (or obviously expected) behaviour.

Run: OMR_BUILD_DIR=build/asan python3 tests/integration/test_desktop_edges.py [test_name]
"""

import os
import signal
import subprocess
import sys
import threading

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from omr_harness import (CTL_BIN, SOURCE_DIR, _sanitizer_env, add_agent, conv_key,  # noqa: E402
                         log, run_tests, time_limit)
from test_browser import BROWSER_DIR, CHROMIUM, SCREENSHOT_DIR, ensure_playwright  # noqa: E402

FLOW_TIMEOUT = 400

QUEUES = """
queues:
  - name: offers
    attributes: {kind: offer}
    auto_accept: false
    offer_timeout_s: OFFER_S
  - name: wrap
    attributes: {kind: wrap}
    wrapup_s: WRAPUP_S
  - name: second
    attributes: {kind: second}
  - name: general
"""

FAST = {"routing": {"tick_ms": 100}}


def run_browser(env, scenario, capacity=4, wrapup_s=8, second_agent=False, config=None,
                languages="es,en", script="desktop_edges.js", offer_s=60):
    """Runs tests/browser/SCRIPT SCENARIO. luis (capacity `capacity`) is the desktop agent;
    second_agent: maria too (capacity 2). The scenario may print "CMD NAME", answered
    "done NAME" once done: restart (the daemon stopped and started again), stop, start,
    redis-pause (SIGSTOP the private redis-server), redis-resume."""
    ensure_playwright()
    redis = env.redis()
    cfg = {k: dict(v) for k, v in FAST.items()}
    for sec, opts in (config or {}).items():
        cfg.setdefault(sec, {}).update(opts)
    d = env.daemon(redis, config=cfg, start=False)
    with open(d.cfg_path, "a") as f:
        f.write(QUEUES.replace("WRAPUP_S", str(wrapup_s)).replace("OFFER_S", str(offer_s)))
    d.start()
    extra = {}
    if second_agent:
        extra = {"OMR_AGENT2_ID": "maria",
                 "OMR_AGENT2_TOKEN": add_agent(d, "maria", "Maria Gil", "es,en", 2)}
    token = add_agent(d, "luis", "Luis Ortega", languages, capacity)
    san = _sanitizer_env()
    flow_env = dict(os.environ, OMR_BASE=f"http://127.0.0.1:{d.port}", OMR_AGENT_ID="luis",
                    OMR_AGENT_TOKEN=token, OMR_CHROMIUM=CHROMIUM, OMR_CTL=CTL_BIN,
                    OMR_CFG=d.cfg_path, OMR_CTL_ASAN=san["ASAN_OPTIONS"],
                    OMR_CTL_UBSAN=san["UBSAN_OPTIONS"], OMR_SHOTS=SCREENSHOT_DIR, **extra)
    os.makedirs(SCREENSHOT_DIR, exist_ok=True)
    for k in ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS"):
        flow_env.pop(k, None)
    name, script = script, os.path.join(BROWSER_DIR, script)
    log(f"node {script} {scenario}")
    p = subprocess.Popen(["node", "--experimental-websocket", script, scenario], env=flow_env,
                         cwd=SOURCE_DIR, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    out = []

    def pump():
        for line in p.stdout:
            out.append(line)
            sys.stdout.write(line)
            sys.stdout.flush()
            s = line.strip()
            if s.startswith("CMD "):
                cmd = s.split()[1]
                if cmd in ("restart", "stop"):
                    d.stop()
                if cmd in ("restart", "start"):
                    d.start()
                if cmd in ("redis-pause", "redis-resume"):
                    redis.proc.send_signal(signal.SIGSTOP if cmd == "redis-pause"
                                           else signal.SIGCONT)
                p.stdin.write(f"done {cmd}\n")
                p.stdin.flush()

    t = threading.Thread(target=pump, daemon=True)
    t.start()
    try:
        p.wait(timeout=FLOW_TIMEOUT)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
        raise AssertionError(f"{name} {scenario} did not finish within {FLOW_TIMEOUT}s")
    finally:
        if redis.proc.poll() is None:
            redis.proc.send_signal(signal.SIGCONT)  # (a scenario that failed while paused)
    t.join(10)
    err = p.stderr.read()
    sys.stdout.write("\n".join(line for line in err.splitlines()
                               if "ExperimentalWarning" not in line and "--trace-warnings"
                               not in line) + "\n")
    assert p.returncode == 0, f"{name} {scenario} exited {p.returncode} (above)"
    return d, redis, "".join(out)


# ---- presence --------------------------------------------------------------------------------

@time_limit(300)
def test_presence_break_reasons_stored_and_kept_across_reload(env):
    """PROTOCOL.md "presence": break with a reason code (lunch, coffee, ...). The desktop's
    choices must be what the server stores (`omnirouterctl agent show`: presence, reason), and a
    reload (the desktop logs in again and restores the chosen presence) must keep both, on the
    server and on screen."""
    run_browser(env, "presenceReasons")


@time_limit(300)
def test_break_while_holding_chats(env):
    """PROTOCOL.md "presence": break is "not taking work"; the conversations held stay the
    agent's. On break with a chat open the agent still replies and closes; no new chat comes
    until available again."""
    run_browser(env, "breakHolding")


# ---- wrap-up -------------------------------------------------------------------------------

@time_limit(300)
def test_wrapup_state_survives_reload(env):
    """PROTOCOL.md "close": with a queue's wrapup_s the agent gets no new conversation until
    it is over or it sends wrapup_end. The desktop offers "Wrap-up done" to end it; a reload
    during the wrap-up (the server still holds it: agent show wrapup_until_ms) must still let
    the agent end it, instead of leaving it waiting for chats that do not come."""
    run_browser(env, "wrapupReload", wrapup_s=120)


@time_limit(400)
def test_wrapup_longer_than_a_minute_can_be_ended(env):
    """PROTOCOL.md "close"/"wrapup_end": a queue's wrapup_s may be up to 3600 (config). At
    wrapup_s 120 the agent is still in wrap-up 70 s after the close (no new chat comes): the
    desktop must still say so and offer "Wrap-up done" (it hides it after a fixed 60 s)."""
    run_browser(env, "wrapupLong", wrapup_s=120)


@time_limit(300)
def test_wrapup_then_next_chat(env):
    """Not expected to fail: close with wrapup_s 8: no new chat of that channel meanwhile; one
    arrives after it; "Wrap-up done" ends it at once."""
    run_browser(env, "wrapupNext", wrapup_s=8)


# ---- offers, capacity -----------------------------------------------------------------------

@time_limit(300)
def test_accept_lost_in_network_drop_can_be_sent_again(env):
    """PROTOCOL.md "offer": keep the buttons until `revoked` comes (the server decides). An
    accept lost with the connection (a network drop as the agent clicks) must be possible again
    once the desktop is back, while the offer is still open."""
    run_browser(env, "acceptLostInDrop")


@time_limit(300)
def test_reject_with_reason_and_capacity(env):
    """PROTOCOL.md "reject": the reason is sent (revoked "rejected: REASON"); at capacity no
    more conversations come; one close frees a slot."""
    d, redis, out = run_browser(env, "rejectCapacity", capacity=2)
    conv = [line.split()[1] for line in out.splitlines() if line.startswith("REJECTED ")][0]
    h = redis.client().hgetall(conv_key(conv))
    assert h.get("last_decline") == "luis:rejected: wrong-language", f"reject reason: {h}"


# ---- history, transfer, disposition -------------------------------------------------------

@time_limit(300)
def test_history_of_same_customer_only(env):
    """PROTOCOL.md "assigned" history: the customer's earlier conversations, listed and
    readable; not another customer's."""
    run_browser(env, "historySameCustomer")


@time_limit(300)
def test_transfer_to_queue_note_and_disposition(env):
    """PROTOCOL.md "transfer" (the next agent sees the note) and "close" (disposition stored in
    the conversation's hash)."""
    d, redis, out = run_browser(env, "transferNoteDisposition", second_agent=True)
    conv = [line.split()[1] for line in out.splitlines() if line.startswith("CLOSED ")][0]
    h = redis.client().hgetall(conv_key(conv))
    assert h.get("disposition") == "follow-up", f"disposition not stored: {h}"


# ---- keyboard, layout, typing, unread -------------------------------------------------------

@time_limit(300)
def test_keyboard_only_day(env):
    """Issue 4: keyboard usable. Log in, go available, accept an offer, switch conversations,
    reply, close with a disposition, without a mouse: the focus must stay somewhere usable."""
    run_browser(env, "keyboardOnly")


@time_limit(300)
def test_no_horizontal_scroll_long_names(env):
    """Issue 4: 1280x800 without horizontal scrolling, with long customer names and ids and
    many conversations (no part of the desktop scrolls sideways), and in a narrow (half-screen,
    640 px) window the conversation keeps a usable reply box."""
    run_browser(env, "layoutLong", capacity=12)


@time_limit(300)
def test_typing_and_unread(env):
    """PROTOCOL.md "typing" both ways (holds); the list's unread counts, and the conversation
    the agent was in, kept across a reload (the desktop keeps what it showed per tab)."""
    run_browser(env, "typingUnread")


@time_limit(240)
def test_customer_left_and_came_back(env):
    """PROTOCOL.md agent events customer-left / customer-back: the desktop shows that the
    customer closed the chat page and came back, in the conversation and the list."""
    run_browser(env, "customerLeft")


@time_limit(180)
def test_ended_by_site(env):
    """omnirouterctl conversation close: the desktop shows the note and starts no wrap-up; the
    chat page says the team ended it and offers the survey of a served chat."""
    run_browser(env, "endedBySite")


@time_limit(400)
def test_daemon_restart_mid_day(env):
    """The daemon restarts (PROTOCOL.md: "Clients reconnect and resume"): the desktop logs in
    again by itself, keeps its chats, its presence, and goes on."""
    run_browser(env, "daemonRestart")


@time_limit(300)
def test_right_to_left_and_cjk_text(env):
    """A multilingual floor: an Arabic customer's messages (and a reply typed in Arabic) read
    right to left on the desktop, a Latin line left to right, and messages carry their
    conversation's language (Japanese text gets Japanese glyphs, not Chinese ones)."""
    run_browser(env, "rightToLeft", languages="es,en,ar,ja")


@time_limit(300)
def test_login_from_a_new_browser_shows_the_chats_held(env):
    """The agent's browser dies mid-chat; a login from another browser shows the chat the
    agent still holds, with its transcript, and a reload of it shows each line once."""
    run_browser(env, "newBrowser")


@time_limit(300)
def test_token_reissued_mid_chat(env):
    """PROTOCOL.md `logged-out`: a desktop whose token is reissued is told why, shows the
    login form, and a login with the new token within the grace period keeps the chat."""
    run_browser(env, "tokenReissued")


if __name__ == "__main__":
    run_tests([test_login_from_a_new_browser_shows_the_chats_held,
               test_token_reissued_mid_chat, test_right_to_left_and_cjk_text,
               test_presence_break_reasons_stored_and_kept_across_reload,
               test_break_while_holding_chats,
               test_wrapup_state_survives_reload,
               test_wrapup_longer_than_a_minute_can_be_ended,
               test_wrapup_then_next_chat,
               test_accept_lost_in_network_drop_can_be_sent_again,
               test_reject_with_reason_and_capacity,
               test_history_of_same_customer_only,
               test_transfer_to_queue_note_and_disposition,
               test_keyboard_only_day,
               test_no_horizontal_scroll_long_names,
               test_typing_and_unread,
               test_customer_left_and_came_back,
               test_ended_by_site,
               test_daemon_restart_mid_day])
