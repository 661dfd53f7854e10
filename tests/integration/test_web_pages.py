"""test_web_pages.py - the shipped pages through the real daemon, in a browser.

Starts redis-server and omnirouterd with one queue, `offers` (auto_accept: false, a short
offer_timeout_s, a short agent_grace_s), creates two agents (luis, maria) and runs
tests/browser/pages_flow.js: HTML injection through names, messages, a transfer note and the
survey comment; two offers at once and an offer that expires; a transfer between agents; reloads
(nothing twice, nothing lost); a close and the survey; an agent lost (requeued, and its desktop,
back later, shows the conversation as taken back); no console or page errors. Screenshots go to OMR_BUILD_DIR/screenshots/pages-*.png.

Run: OMR_BUILD_DIR=build/asan python3 tests/integration/test_web_pages.py
"""

import os
import subprocess
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from omr_harness import BUILD_DIR, SOURCE_DIR, add_agent, log, run_tests, time_limit  # noqa: E402
from test_browser import BROWSER_DIR, CHROMIUM, ensure_playwright  # noqa: E402

SCREENSHOT_DIR = os.path.join(BUILD_DIR, "screenshots")
FLOW_TIMEOUT = 240
OFFER_TIMEOUT_S = 8

QUEUES = f"""
queues:
  - name: offers
    auto_accept: false
    offer_timeout_s: {OFFER_TIMEOUT_S}
"""

CONFIG = {"routing": {"tick_ms": 100, "heartbeat_timeout_s": 5, "agent_grace_s": 3}}


@time_limit(300)
def test_pages_in_a_browser(env):
    ensure_playwright()
    redis = env.redis()
    d = env.daemon(redis, config=CONFIG, start=False)
    with open(d.cfg_path, "a") as f:
        f.write(QUEUES)
    d.start()
    t1 = add_agent(d, "luis", "Luis Ortega", "es,en", 2)
    t2 = add_agent(d, "maria", "Maria Gil", "es,en", 2)
    t3 = add_agent(d, "pablo", "Pablo Diaz", "es,en", 2)
    base = f"http://127.0.0.1:{d.port}"
    flow_env = dict(os.environ,
                    OMR_CHAT_URL=f"{base}/chat.html", OMR_AGENT_URL=f"{base}/agent.html",
                    OMR_AGENT1_ID="luis", OMR_AGENT1_TOKEN=t1, OMR_AGENT1_NAME="Luis Ortega",
                    OMR_AGENT2_ID="maria", OMR_AGENT2_TOKEN=t2, OMR_AGENT2_NAME="Maria Gil",
                    OMR_AGENT3_ID="pablo", OMR_AGENT3_TOKEN=t3, OMR_AGENT3_NAME="Pablo Diaz",
                    OMR_OFFER_TIMEOUT_S=str(OFFER_TIMEOUT_S),
                    OMR_SCREENSHOT_DIR=SCREENSHOT_DIR, OMR_CHROMIUM=CHROMIUM)
    for k in ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS"):
        flow_env.pop(k, None)
    script = os.path.join(BROWSER_DIR, "pages_flow.js")
    log(f"node {script}")
    try:
        p = subprocess.run(["node", script], env=flow_env, cwd=SOURCE_DIR, capture_output=True,
                           text=True, timeout=FLOW_TIMEOUT)
    except subprocess.TimeoutExpired as e:
        out = e.stdout.decode(errors="replace") if isinstance(e.stdout, bytes) else (e.stdout or "")
        err = e.stderr.decode(errors="replace") if isinstance(e.stderr, bytes) else (e.stderr or "")
        raise AssertionError(f"pages_flow.js did not finish within {FLOW_TIMEOUT}s:\n{out}\n{err}")
    sys.stdout.write(p.stdout)
    sys.stdout.write(p.stderr)
    sys.stdout.flush()
    assert p.returncode == 0, f"pages_flow.js exited {p.returncode} (output above)"


if __name__ == "__main__":
    run_tests([test_pages_in_a_browser])
