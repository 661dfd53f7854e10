"""test_browser.py - the shipped pages chat with each other in a real browser.

Starts redis-server and omnirouterd (generated config, static_dir = web/ of the
source tree), creates an agent with omnirouterctl, then runs
tests/browser/chat_flow.js: Debian's headless Chromium (/usr/bin/chromium),
driven by playwright-core from npm, opens web/agent.html and web/chat.html on
the daemon; the agent logs in and goes available, the customer chats in
Spanish, both pages are reloaded mid-conversation and must show every message
exactly once, in order; the agent closes. No page or console error, no
horizontal scroll at 1280x800. A second agent, supervising the first, reads
the conversation from its Team panel, read-only, with the keyboard alone.
Screenshots go to OMR_BUILD_DIR/screenshots/ (customer-*.png, agent-*.png,
supervisor-*.png); their paths are printed.

Needs: chromium and Node.js with npm (scripts/deps.sh --test). When
tests/browser/node_modules is missing it runs `npm ci --prefix tests/browser`
(package-lock.json pins playwright-core; it downloads no browser).
"""

import os
import shutil
import subprocess
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from omr_harness import (BUILD_DIR, SOURCE_DIR, add_agent, ctl, log, run_tests,  # noqa: E402
                         time_limit)

BROWSER_DIR = os.path.join(SOURCE_DIR, "tests", "browser")
CHROMIUM = "/usr/bin/chromium"
SCREENSHOT_DIR = os.path.join(BUILD_DIR, "screenshots")
FLOW_TIMEOUT = 150  # seconds for chat_flow.js; it takes ~10-20 s, its own waits are 15 s each


def ensure_playwright():
    """Installs tests/browser/node_modules from package-lock.json when missing."""
    for tool, hint in (("node", "Node.js"), ("npm", "npm")):
        if shutil.which(tool) is None:
            raise AssertionError(f"{tool} not found: install {hint} (scripts/deps.sh --test)")
    if not os.access(CHROMIUM, os.X_OK):
        raise AssertionError(f"{CHROMIUM} not found: scripts/deps.sh --test installs chromium")
    marker = os.path.join(BROWSER_DIR, "node_modules", "playwright-core", "package.json")
    if os.path.exists(marker):
        return
    log("tests/browser/node_modules missing: npm ci --prefix tests/browser")
    p = subprocess.run(["npm", "ci", "--prefix", BROWSER_DIR, "--no-audit", "--no-fund"],
                       capture_output=True, text=True, timeout=300, cwd=SOURCE_DIR)
    if p.returncode != 0 or not os.path.exists(marker):
        raise AssertionError(f"npm ci --prefix {BROWSER_DIR} exited {p.returncode}:\n"
                             f"{p.stdout}\n{p.stderr}")


def run_edges_scenario(script, scenario, d, token, extra_env=None, timeout=200):
    """Runs one scenario of tests/browser/SCRIPT (an edges_lib.js runner) against daemon d,
    its protocol agent "luis" logged in with token; prints its output; returns its stdout
    and fails unless every check held."""
    ensure_playwright()
    flow_env = dict(os.environ, OMR_BASE=f"http://127.0.0.1:{d.port}", OMR_AGENT_ID="luis",
                    OMR_AGENT_TOKEN=token, OMR_CHROMIUM=CHROMIUM, **(extra_env or {}))
    # Chromium is not built with the sanitizers: the daemon's ASAN_OPTIONS are not for it.
    for k in ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS"):
        flow_env.pop(k, None)
    path = os.path.join(BROWSER_DIR, script)
    log(f"node {path} {scenario}")
    try:
        p = subprocess.run(["node", "--experimental-websocket", path, scenario], env=flow_env,
                           cwd=SOURCE_DIR, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        out = e.stdout.decode(errors="replace") if isinstance(e.stdout, bytes) else (e.stdout or "")
        raise AssertionError(f"{script} {scenario} did not finish within {timeout}s:\n{out}")
    sys.stdout.write(p.stdout)
    sys.stdout.write("\n".join(line for line in p.stderr.splitlines()
                               if "ExperimentalWarning" not in line and "--trace-warnings"
                               not in line))
    sys.stdout.flush()
    assert p.returncode == 0, f"{script} {scenario} exited {p.returncode} (above)"
    return p.stdout


@time_limit(240)
def test_chat_in_browser(env):
    ensure_playwright()
    redis = env.redis()
    d = env.daemon(redis)
    token = add_agent(d, "luis", "Luis Ortega", "es,en", 2)
    sup_token = ctl(d, "agent", "add", "--id", "sue", "--name", "Sue Park", "--languages", "fr",
                    "--supervises", "luis").stdout.strip()
    base = f"http://127.0.0.1:{d.port}"
    flow_env = dict(os.environ,
                    OMR_CHAT_URL=f"{base}/chat.html",
                    OMR_AGENT_URL=f"{base}/agent.html",
                    OMR_AGENT_ID="luis",
                    OMR_AGENT_TOKEN=token,
                    OMR_SUPERVISOR_ID="sue",
                    OMR_SUPERVISOR_TOKEN=sup_token,
                    OMR_SCREENSHOT_DIR=SCREENSHOT_DIR,
                    OMR_CHROMIUM=CHROMIUM)
    # Chromium is not built with the sanitizers: the daemon's ASAN_OPTIONS are not for it.
    for k in ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS"):
        flow_env.pop(k, None)
    script = os.path.join(BROWSER_DIR, "chat_flow.js")
    log(f"node {script}")
    try:
        p = subprocess.run(["node", script], env=flow_env, cwd=SOURCE_DIR, capture_output=True,
                           text=True, timeout=FLOW_TIMEOUT)
    except subprocess.TimeoutExpired as e:
        out = (e.stdout or b"").decode(errors="replace") if isinstance(e.stdout, bytes) \
            else (e.stdout or "")
        err = (e.stderr or b"").decode(errors="replace") if isinstance(e.stderr, bytes) \
            else (e.stderr or "")
        raise AssertionError(f"chat_flow.js did not finish within {FLOW_TIMEOUT}s:\n{out}\n{err}")
    sys.stdout.write(p.stdout)
    if p.stderr:
        sys.stdout.write(p.stderr)
    sys.stdout.flush()
    assert p.returncode == 0, (f"chat_flow.js exited {p.returncode} (its output is above; "
                               f"screenshots in {SCREENSHOT_DIR})")


if __name__ == "__main__":
    run_tests([test_chat_in_browser])
