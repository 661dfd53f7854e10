"""test_pages_edges.py - edges of the shipped pages (web/chat.js, web/agent.js, web/text.js):
each test runs one scenario of tests/browser/pages_edges.js in headless
Chromium against a real daemon, and asserts the documented (or obviously expected) behaviour.

Run: OMR_BUILD_DIR=build/asan python3 tests/integration/test_pages_edges.py [test_name]
"""

import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from omr_harness import add_agent, conv_key, run_tests, time_limit  # noqa: E402
from test_browser import run_edges_scenario  # noqa: E402

# A desktop that goes away is lost at once (socket closed) and its work re-queued after 3 s.
LOST_CONFIG = {"routing": {"tick_ms": 100, "heartbeat_timeout_s": 5, "agent_grace_s": 3}}


def run_browser(env, scenario, config=None, supervisor=False):
    """supervisor: luis (capacity 1) supervises a second agent, maria."""
    redis = env.redis()
    d = env.daemon(redis, config=config)
    extra = {}
    if supervisor:
        extra = {"OMR_AGENT2_ID": "maria",
                 "OMR_AGENT2_TOKEN": add_agent(d, "maria", "Maria Gil", "es,en", 2)}
        token = add_agent(d, "luis", "Luis Ortega", "es,en,hi", 1,
                          extra=("--supervises", "maria"))
    else:
        token = add_agent(d, "luis", "Luis Ortega", "es,en,hi", 4)
    return d, redis, run_edges_scenario("pages_edges.js", scenario, d, token, extra, timeout=240)


@time_limit(300)
def test_taken_back_then_reassigned_shows_each_message_once(env):
    """PROTOCOL.md "revoked": a conversation taken back (agent-lost) shows as over; the router
    may give it to the same agent again once it is back (a lost agent did not decline it). The
    "assigned" item is followed by the whole transcript again, with new inbox seqs: the desktop,
    which kept what it showed, must not show each earlier message twice."""
    run_browser(env, "takenBackReassigned", config=LOST_CONFIG)


@time_limit(300)
def test_reload_during_hello_makes_one_conversation(env):
    """PROTOCOL.md "key": the key makes a hello sent again get the same conversation "instead
    of a second one that an agent would wait on". A reload while the welcome is on its way must
    not leave a customer-less conversation holding the agent."""
    run_browser(env, "reloadDuringHello")


@time_limit(300)
def test_agent_long_non_ascii_reply_reaches_customer(env):
    """The desktop's reply box takes 4096 characters; the daemon 4096 bytes (PROTOCOL.md
    "Limits"). The page now splits the customer's long text, the desktop does not: a
    2,000-character Hindi reply must reach the customer."""
    run_browser(env, "agentLongReply")


@time_limit(300)
def test_long_non_ascii_survey_comment_is_taken(env):
    """PROTOCOL.md "Limits": a survey comment follows the chat text rules (4 KiB); the
    comment box takes 4096 characters. A 2,000-character Hindi comment the box accepted must be
    stored with the score: its first 4 KiB, cut between characters."""
    d, redis, out = run_browser(env, "longSurveyComment")
    conv = [line.split()[1] for line in out.splitlines() if line.startswith("CONV ")][0]
    h = redis.client().hgetall(conv_key(conv))
    assert h.get("csat") == "5", f"survey answer not stored: {h}"
    comment = h.get("csat_comment", "")
    want = ("सेवा बहुत अच्छी थी धन्यवाद " * 120)[:2000].strip()
    assert 4096 - 4 < len(comment.encode()) <= 4096 and want.startswith(comment), (
        f"stored comment: {len(comment.encode())} bytes, a prefix of the text: "
        f"{want.startswith(comment)}")


@time_limit(300)
def test_taken_back_keeps_supervisor_reading(env):
    """agent.js keeps a supervisor on the team member's transcript it reads when a conversation
    of its own comes ("not while the agent reads a team member's conversation"); a conversation
    of its own taken back (PROTOCOL.md "revoked", agent-lost) after a network drop must not close
    that view either."""
    run_browser(env, "monitorTakenBack", config=LOST_CONFIG, supervisor=True)


@time_limit(300)
def test_checks_that_held_pending_parts_rated(env):
    """Not a bug (passes): pending messages and a reply in between across a reload, a long
    message in parts, a reload after the survey answer starts afresh."""
    run_browser(env, "pendingSplitRated")


if __name__ == "__main__":
    run_tests([test_checks_that_held_pending_parts_rated,
               test_taken_back_keeps_supervisor_reading,
               test_taken_back_then_reassigned_shows_each_message_once,
               test_reload_during_hello_makes_one_conversation,
               test_agent_long_non_ascii_reply_reaches_customer,
               test_long_non_ascii_survey_comment_is_taken])
