"""test_desktop_day.py - an agent's and a customer's working day on the shipped pages
(web/agent.html + agent.js, web/chat.html + chat.js) in headless Chromium, against a real
daemon (a review of the desktop in a browser). Each test runs one scenario of
tests/browser/desktop_day.js and failed against the build it was written for because of the
bug its docstring names.

    OMR_BUILD_DIR=build/asan python3 tests/integration/test_desktop_day.py [TEST_NAME...]

The scenarios print "CMD NAME" lines; test_desktop_edges.run_browser does it and answers:
restart (SIGTERM, start again on the same port), stop, start, redis-pause (SIGSTOP the private
redis-server), redis-resume (SIGCONT).

Chromium's offline emulation (context.setOffline) leaves open websockets alone (the desktop
stays "online" and keeps talking), so network drops are made with a websocket proxy
(page.routeWebSocket) in the scenarios.
"""

import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from omr_harness import run_tests, time_limit  # noqa: E402
from test_desktop_edges import run_browser as run_edges  # noqa: E402

# A desktop that goes away is offline at once, and its chats go back to routing after 5 s.
LOST = {"routing": {"heartbeat_timeout_s": 5, "agent_grace_s": 5}}


def run_browser(env, scenario, capacity=3, second_agent=False, config=None, offer_s=60):
    """tests/browser/desktop_day.js SCENARIO; luis (capacity 3, es, en, ar, he) is the
    desktop's agent, the "wrap" queue's wrap-up is a minute."""
    return run_edges(env, scenario, capacity=capacity, wrapup_s=60, second_agent=second_agent,
                     config=config, languages="es,en,ar,he", script="desktop_day.js",
                     offer_s=offer_s)


# ---- presence ----------------------------------------------------------------------------------

@time_limit(300)
def test_missed_offers_break_shown_as_available(env):
    """Two offers time out (max_missed_offers 2): the router puts the agent on break
    (missed-offers); the desktop goes on showing "Available", no chat comes, nothing says why."""
    run_browser(env, "missedOffers", offer_s=3, config={"routing": {"max_missed_offers": 2}})


@time_limit(300)
def test_site_break_shown_as_available(env):
    """omnirouterctl agent state luis break --reason meeting: the desktop still shows
    "Available"."""
    run_browser(env, "adminPresence")


# ---- several chats -------------------------------------------------------------------------------

@time_limit(300)
def test_draft_follows_agent_to_another_chat(env):
    """One reply box for every conversation: a half-written reply to Rosa is still in the box
    after switching to Tomas (or accepting an offer), and Enter sends it to the wrong customer."""
    run_browser(env, "draftSwitch")


@time_limit(300)
def test_drafts_survive_a_reload(env):
    """A half-written reply in each of two chats, then a reload (F5, a glitch): every draft was
    gone, though the desktop keeps everything else it shows across a reload."""
    run_browser(env, "draftReload")


@time_limit(300)
def test_new_chat_lands_out_of_sight_after_a_day(env):
    """Closed chats stay in the list and new ones are appended: after 16 chats a new chat (and
    the one being answered) is below the visible part of the list, and nothing else says it
    came."""
    run_browser(env, "longDayList")


@time_limit(300)
def test_reload_forgets_the_conversation_read(env):
    """Opening a conversation is not saved: a reload reopens the one before and marks the
    messages read as new again."""
    run_browser(env, "switchReload")


@time_limit(300)
def test_second_close_hides_running_wrapup(env):
    """Closing a chat with wrap-up, then one of a queue without: the server keeps the wrap-up
    (no chat comes for a minute) but the desktop hides "Wrap-up done"."""
    run_browser(env, "wrapupTwoCloses")


# ---- tabs, drops, restarts -----------------------------------------------------------------------

@time_limit(300)
def test_two_tabs_back_to_the_first(env):
    """A second tab of the same agent takes over; back in the first tab (reloaded) the
    conversation lacks what was said while the second tab was in use."""
    run_browser(env, "twoTabs")


@time_limit(300)
def test_silent_network_drop_shows_online(env):
    """The network goes silently: the server drops the desktop and gives the chat to maria,
    while luis's desktop says "online", "Available" and lets him reply, with no word."""
    run_browser(env, "silentDrop", second_agent=True, config=LOST)


@time_limit(300)
def test_idle_desktop_silent_drop_shows_online(env):
    """An agent waiting for work (no request in flight) when the network goes silently: the
    desktop said "online" and "Available" for as long as it stayed silent, and no chat could
    reach it (no app-level ping existed; web/liveness.js now pings when idle)."""
    run_browser(env, "idleSilentDrop", config=LOST)


@time_limit(300)
def test_login_on_a_silent_network_waits_for_ever(env):
    """The network goes silently as the desktop connects: its login goes nowhere, and the
    desktop said "connecting…" for as long as it stayed silent (the liveness check ran only
    once logged in)."""
    run_browser(env, "loginSilentDrop")


@time_limit(300)
def test_waiting_customer_silent_drop_shows_connected(env):
    """A customer waiting for an agent when the network goes silently: the chat page went on
    saying it was connected."""
    run_browser(env, "customerIdleSilentDrop", config=LOST)


@time_limit(300)
def test_status_bar_stuck_on_error_after_drop(env):
    """After a drop longer than the grace period the reply typed offline is refused
    (not-assigned); the status bar says "error: ..." for good while the desktop works."""
    run_browser(env, "longDrop", second_agent=True, config=LOST)


@time_limit(300)
def test_reply_refused_unavailable_marked_failed(env):
    """A reply answered `unavailable` (a 2.5-s Redis stall) is marked failed for good and
    never resent, though the customer got it (PROTOCOL.md: unavailable = resend it)."""
    run_browser(env, "unavailableReply")


@time_limit(300)
def test_long_stall_reply_reconnects(env):
    """A site holds requests 25 s (bus.ack_timeout_ms 5000 x max_attempts 5); Redis stalls 20 s
    with a reply in flight: 15 s in, the desktop took its working connection for dead and
    reconnected (the server answers pings throughout)."""
    run_browser(env, "longStallReply", config={"bus": {"ack_timeout_ms": 5000}})


@time_limit(300)
def test_reply_during_drop_shown_out_of_order(env):
    """A reply typed during an 8-s drop shows above the customer's message that came before
    it on the server (and at the customer), also after a reload."""
    run_browser(env, "dropOrder")


# ---- the customer --------------------------------------------------------------------------------

@time_limit(300)
def test_survey_sent_while_down_is_stuck(env):
    """The customer sends the survey while the daemon is down for 2 s: the page never sends it
    and sits with every control disabled, saying "connecting…"."""
    run_browser(env, "surveyWhileDown")


# ---- keyboard ------------------------------------------------------------------------------------

@time_limit(300)
def test_offer_gone_drops_keyboard_focus(env):
    """With no chat in the list, an offer rejected with the keyboard, or timing out while its
    reject form has the focus, leaves the focus on the page's body."""
    run_browser(env, "offerKeyboard", offer_s=8)


TESTS = [test_missed_offers_break_shown_as_available, test_site_break_shown_as_available,
         test_draft_follows_agent_to_another_chat, test_drafts_survive_a_reload,
         test_new_chat_lands_out_of_sight_after_a_day,
         test_reload_forgets_the_conversation_read, test_second_close_hides_running_wrapup,
         test_two_tabs_back_to_the_first,
         test_silent_network_drop_shows_online, test_idle_desktop_silent_drop_shows_online,
         test_waiting_customer_silent_drop_shows_connected,
         test_login_on_a_silent_network_waits_for_ever,
         test_status_bar_stuck_on_error_after_drop,
         test_reply_refused_unavailable_marked_failed, test_long_stall_reply_reconnects,
         test_reply_during_drop_shown_out_of_order, test_survey_sent_while_down_is_stuck,
         test_offer_gone_drops_keyboard_focus]

if __name__ == "__main__":
    run_tests(TESTS)
