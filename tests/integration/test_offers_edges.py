"""test_offers_edges.py - offers, wrap-up, presence and the agent tools, through the real
daemon (README.md, docs/ROUTING.md "Offers", "Wrap-up", docs/PROTOCOL.md agent endpoint), from
a review of 2026-12-07. Each test's docstring says what the docs promise. These failed on the
build of ab16c4a: test_roster_value_with_a_line_break_is_reported_on_one_line,
test_agent_show_and_list_text_say_the_wrapup, test_site_state_available_with_a_reason,
test_roster_with_trailing_empty_columns_from_a_spreadsheet.

    OMR_BUILD_DIR=build/asan python3 tests/integration/test_offers_edges.py [NAME...]
"""

import asyncio
import os
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from omr_harness import (Agent, Customer, add_agent, agent_key, conv_key, ctl,  # noqa: E402
                         poll, run_tests, time_limit)
from test_live_floor import available, conv, explain, show  # noqa: E402
from test_reload_edges import reload_queues_text  # noqa: E402

FAST = {"routing": {"tick_ms": 50, "heartbeat_timeout_s": 3, "agent_grace_s": 30}}


def cfg(**routing):
    c = {k: dict(v) for k, v in FAST.items()}
    c["routing"].update(routing)
    return c


def history(r, aid):
    c = r.client()
    try:
        return [f for _, f in c.xrange(agent_key(aid) + ":presence")]
    finally:
        c.close()


async def customers(d, n, prefix="k"):
    out = []
    for i in range(n):
        c = Customer(d.url, f"{prefix}{i}")
        await c.hello(language="en", name=f"{prefix}{i}")
        out.append(c)
    return out


def offer_of(agent, cid):
    return lambda f: f.get("type") == "offer" and f.get("conversation_id") == cid


def item_of(kind, cid):
    return lambda f: f.get("type") == kind and f.get("conversation_id") == cid


async def served_one(env, wrapup_s, capacity):
    """Queue general with wrapup_s; agent ana (capacity) served customer k1's chat and closed
    it: she is in wrap-up. Returns (redis, daemon, ana, k1)."""
    r = env.redis()
    q = f"""
queues:
  - name: general
    wrapup_s: {wrapup_s}
"""
    d = env.daemon(r, config=cfg(), queues=q)
    ana = await available(d, "ana", add_agent(d, "ana", "Ana", "en", capacity))
    c1 = Customer(d.url, "k1")
    await c1.hello(language="en")
    await ana.wait_item(item_of("assigned", c1.conversation_id), 5, "assigned")
    await ana.close_conv(c1.conversation_id)
    return r, d, ana, c1


OFFERS = """
queues:
  - name: general
    auto_accept: false
    offer_timeout_s: {timeout}
    wrapup_s: {wrapup}
"""


# ---- offers -------------------------------------------------------------------------

@time_limit(60)
async def test_offers_up_to_capacity_and_a_reject_pulls_the_next(env):
    """ROUTING.md Offers: each offer reserves one unit of capacity at once, so an agent of
    capacity 2 gets two offers at once and a third customer waits; a reject takes the offer
    back (`revoked`, reason `rejected: REASON`), the agent is not offered that conversation
    again for decline_hold_s, and the freed unit takes the next waiting work (the third
    customer). expires_ms is ts + offer_timeout_s."""
    r = env.redis()
    d = env.daemon(r, config=cfg(), queues=OFFERS.format(timeout=20, wrapup=0))
    ana = await available(d, "ana", add_agent(d, "ana", "Ana", "en", 2))
    cs = await customers(d, 3)
    for c in cs[:2]:
        await ana.wait_item(offer_of(ana, c.conversation_id), 10, "offer")
    await asyncio.sleep(0.5)
    env.expect(len(ana.offers()) == 2, f"two offers at capacity 2: {ana.offers()}")
    for o in ana.offers():
        env.expect(o.get("expires_ms", 0) - o.get("ts", 0) == 20000,
                   f"expires_ms is ts + offer_timeout_s (20 s): {o}")
    a = show(d, "ana")
    env.expect(a["load"]["chat"] == 2, f"two offers hold two units: {a}")
    rej = await ana.reject(cs[0].conversation_id, reason="wrong-skill")
    env.expect(rej.get("type") == "ack", rej)
    rv = await ana.wait_item(item_of("revoked", cs[0].conversation_id), 5, "revoked")
    env.expect(rv.get("reason") == "rejected: wrong-skill", rv)
    await ana.wait_item(offer_of(ana, cs[2].conversation_id), 5, "offer of the third")
    await asyncio.sleep(0.3)
    env.expect(len(ana.offers(cs[0].conversation_id)) == 1,
               "the rejected chat is not offered again within decline_hold_s")
    env.expect(conv(r, cs[0].conversation_id).get("state") == "queued",
               conv(r, cs[0].conversation_id))
    acc = await ana.accept(cs[1].conversation_id)
    env.expect(acc.get("type") == "ack", acc)
    await ana.wait_item(item_of("assigned", cs[1].conversation_id), 5, "assigned")
    again = await ana.accept(cs[1].conversation_id, id="acc-again")
    env.expect(again.get("type") == "ack", f"accepting again answers the same ack: {again}")
    late = await ana.reject(cs[0].conversation_id, id="rej-late")
    env.expect(late.get("type") == "error" and late.get("code") == "not-assigned", late)


@time_limit(60)
async def test_missed_offer_streak_is_reset_by_accept(env):
    """ROUTING.md Offers: an available agent who lets routing.max_missed_offers offers time out
    in a row goes on break (missed-offers); the count starts again at each accepted or rejected
    offer. With 2: miss, accept, miss leaves the agent available; a second miss in a row then
    puts it on break."""
    r = env.redis()
    d = env.daemon(r, config=cfg(max_missed_offers=2, decline_hold_s=10),
                   queues=OFFERS.format(timeout=1, wrapup=0))
    ana = await available(d, "ana", add_agent(d, "ana", "Ana", "en", 1))
    c1 = Customer(d.url, "k1")
    await c1.hello(language="en")
    await ana.wait_item(item_of("revoked", c1.conversation_id), 10, "c1 timed out")
    env.expect(await poll(lambda: show(d, "ana")["missed_offers"] == 1, 5), show(d, "ana"))
    c2 = Customer(d.url, "k2")
    await c2.hello(language="en")
    await ana.wait_item(offer_of(ana, c2.conversation_id), 5, "offer c2")
    env.expect((await ana.accept(c2.conversation_id)).get("type") == "ack", "accept c2")
    a = show(d, "ana")
    env.expect(a["missed_offers"] == 0, f"an accept resets the count: {a}")
    await ana.close_conv(c2.conversation_id)
    # c1 waits, declined by ana for 10 s: a new one
    c3 = Customer(d.url, "k3")
    await c3.hello(language="en")
    await ana.wait_item(item_of("revoked", c3.conversation_id), 10, "c3 timed out")
    await asyncio.sleep(0.3)
    a = show(d, "ana")
    env.expect((a["presence"], a["missed_offers"]) == ("available", 1),
               f"miss, accept, miss is not two in a row: {a}")


@time_limit(60)
async def test_site_offline_mid_offer_goes_to_next_agent(env):
    """ROUTING.md Offers: an agent the site sets offline has its open offers taken back
    (`revoked`, reason agent-offline, not a decline) and the conversation goes to the next
    agent; the desktop is told its presence (PROTOCOL.md presence notice)."""
    r = env.redis()
    d = env.daemon(r, config=cfg(), queues=OFFERS.format(timeout=30, wrapup=0))
    ana = await available(d, "ana", add_agent(d, "ana", "Ana", "en", 1))
    c1 = Customer(d.url, "k1")
    await c1.hello(language="en")
    await ana.wait_item(offer_of(ana, c1.conversation_id), 5, "offer to ana")
    bob = await available(d, "bob", add_agent(d, "bob", "Bob", "en", 1))
    ctl(d, "agent", "state", "ana", "offline")
    rv = await ana.wait_item(item_of("revoked", c1.conversation_id), 5, "revoked")
    env.expect(rv.get("reason") == "agent-offline", rv)
    await bob.wait_item(offer_of(bob, c1.conversation_id), 5, "offer to bob")
    await ana.conn.wait_for(lambda f: f.get("type") == "presence"
                            and f.get("presence") == "offline", 5, "offline notice")
    c = r.client()
    try:
        decl = c.hgetall(conv_key(c1.conversation_id) + ":decl")
    finally:
        c.close()
    env.expect("ana" not in decl, f"agent-offline is not a decline: {decl}")


@time_limit(60)
async def test_relogin_mid_offer_gets_the_offer_with_its_deadline(env):
    """PROTOCOL.md login: a login gets again each open offer the desktop does not show, as an
    `offer` item; ROUTING.md Agent loss: the agent keeps its work if it logs in again within
    the grace period. The offer keeps its deadline (expires_ms) and can be accepted."""
    r = env.redis()
    d = env.daemon(r, config=cfg(), queues=OFFERS.format(timeout=20, wrapup=0))
    tok = add_agent(d, "ana", "Ana", "en", 1)
    ana = await available(d, "ana", tok)
    c1 = Customer(d.url, "k1")
    await c1.hello(language="en")
    first = await ana.wait_item(offer_of(ana, c1.conversation_id), 5, "offer")
    await ana.close()
    env.expect(await poll(lambda: show(d, "ana")["presence"] == "offline", 5), show(d, "ana"))
    ana2 = Agent(d.url, "ana", tok, label="ana again")
    await ana2.login()
    again = await ana2.wait_item(offer_of(ana2, c1.conversation_id), 5, "offer again")
    env.expect(again.get("expires_ms") == first.get("expires_ms"),
               f"same deadline: {first} / {again}")
    acc = await ana2.accept(c1.conversation_id)
    env.expect(acc.get("type") == "ack", acc)
    await ana2.wait_item(item_of("assigned", c1.conversation_id), 5, "assigned")
    await ana2.close()


# ---- wrap-up ------------------------------------------------------------------------

@time_limit(60)
async def test_wrapup_with_two_chats_open(env):
    """ROUTING.md Wrap-up: an agent who closes a conversation gets no new work of that channel
    for wrapup_s, even with capacity left (it still holds a second chat); a second close during
    the wrap-up runs it to the later end; `agent show --json` says the agent is available with
    wrapup_until_ms.chat; when it ends the waiting chat comes."""
    r = env.redis()
    q = """
queues:
  - name: general
    wrapup_s: 3
"""
    d = env.daemon(r, config=cfg(), queues=q)
    ana = await available(d, "ana", add_agent(d, "ana", "Ana", "en", 2))
    cs = await customers(d, 2)
    for c in cs:
        await ana.wait_item(item_of("assigned", c.conversation_id), 5, "assigned")
    await ana.close_conv(cs[0].conversation_id)
    cl1 = await ana.wait_item(item_of("closed", cs[0].conversation_id), 5, "closed 1")
    c3 = Customer(d.url, "k3")
    await c3.hello(language="en")
    a = show(d, "ana")
    env.expect(a["presence"] == "available" and a["load"]["chat"] == 1, a)
    env.expect(a["wrapup_until_ms"].get("chat") == cl1.get("wrapup_until_ms"),
               f"agent show gives the wrap-up end the desktop was told: {a} / {cl1}")
    await asyncio.sleep(1.0)
    env.expect(not ana.assigned(c3.conversation_id), "no chat during wrap-up")
    await ana.close_conv(cs[1].conversation_id)
    cl2 = await ana.wait_item(item_of("closed", cs[1].conversation_id), 5, "closed 2")
    env.expect(cl2.get("wrapup_until_ms", 0) > cl1.get("wrapup_until_ms", 0), (cl1, cl2))
    got = await ana.wait_item(item_of("assigned", c3.conversation_id), 8, "after wrap-up")
    env.expect(got.get("ts", 0) >= cl2["wrapup_until_ms"] - 100,
               f"assigned at {got.get('ts')}, wrap-up until {cl2['wrapup_until_ms']}")
    a = show(d, "ana")
    env.expect(a["wrapup_until_ms"] in ({}, []), f"wrap-up over: {a}")


# ---- presence history -----------------------------------------------------------------

@time_limit(60)
async def test_presence_history_of_a_short_day(env):
    """ROUTING.md Agents: presence offline, away, available, busy, break (with a reason), and
    per-channel wrap-up; every change is kept in omr:{GROUP}:agent:ID:presence
    (ARCHITECTURE.md: `state reason ts`, and `wrapup CHANNEL until MS ts` when a wrap-up
    starts, `until` 0 when it ends)."""
    r, d, ana, c1 = await served_one(env, 30, 1)
    await ana.conn.request({"type": "wrapup_end", "channel": "chat", "id": "we"})
    r1 = await ana.conn.request({"type": "presence", "presence": "break", "reason": "lunch",
                                 "id": "p-b"})
    env.expect(r1.get("presence") == "break", r1)
    ctl(d, "agent", "state", "ana", "busy")
    await ana.presence("available")
    await ana.close()
    env.expect(await poll(lambda: show(d, "ana")["presence"] == "offline", 5), show(d, "ana"))
    h = history(r, "ana")
    got = [(e["state"], e.get("reason", "")) if "state" in e else
           ("wrapup", "end" if e.get("until") == "0" else "start") for e in h]
    want = [("away", ""), ("available", ""), ("wrapup", "start"), ("wrapup", "end"),
            ("break", "lunch"), ("busy", ""), ("available", ""), ("offline", "disconnected")]
    env.expect(got == want, f"presence history {got}, want {want}")
    a = show(d, "ana")
    env.expect((a["presence"], a["reason"]) == ("offline", "disconnected"), a)


# ---- the agent tools ------------------------------------------------------------------

@time_limit(60)
async def test_import_over_a_logged_in_agent_routes_at_once(env):
    """README: `agent import` updates existing agents (they keep their tokens) and changes
    take effect on the next routing decision without a restart: giving a logged-in, available
    agent Spanish hands it the Spanish chat that waits; its desktop stays logged in."""
    r = env.redis()
    q = """
queues:
  - name: spanish
    languages: [es]
  - name: general
"""
    d = env.daemon(r, config=cfg(), queues=q)
    tok = add_agent(d, "ana", "Ana", "en", 2)
    ana = await available(d, "ana", tok)
    c1 = Customer(d.url, "k1")
    w = await c1.hello(language="es")
    env.expect(w["state"] == "queued", w)
    path = os.path.join(env.dir, "roster.csv")
    with open(path, "w") as f:
        f.write("id,name,languages,skills,capacity\nana,Ana Lima,en|es:8,,\n"
                "bob,Bob,es,,chat:1\n")
    p = ctl(d, "agent", "import", path)
    lines = [ln for ln in p.stdout.splitlines() if ln.strip()]
    env.expect(len(lines) == 1 and lines[0].startswith("bob,"),
               f"only the new agent gets a token: {p.stdout!r}")
    env.expect("1 created, 1 updated" in p.stderr, p.stderr)
    await ana.wait_item(item_of("assigned", c1.conversation_id), 5, "the Spanish chat")
    a = show(d, "ana")
    env.expect(a["name"] == "Ana Lima" and a["languages"] == {"en": 10, "es": 8}
               and a["capacity"].get("chat") == 2, f"row applied, capacity kept: {a}")
    await ana.conn.expect_open()


@time_limit(60)
async def test_remove_agent_holding_work_is_refused(env):
    """README: `agent remove` is refused while the agent holds open conversations (exit 1,
    one line on stderr); nothing changes, and once its work is closed it is removed."""
    r = env.redis()
    d = env.daemon(r, config=cfg(), queues=OFFERS.format(timeout=30, wrapup=0))
    ana = await available(d, "ana", add_agent(d, "ana", "Ana", "en", 1))
    c1 = Customer(d.url, "k1")
    await c1.hello(language="en")
    await ana.wait_item(offer_of(ana, c1.conversation_id), 5, "offer")
    p = ctl(d, "agent", "remove", "ana", check=False)
    env.expect(p.returncode == 1 and len(p.stderr.strip().splitlines()) == 1,
               f"refused with one line: {p.returncode} {p.stderr!r}")
    await ana.accept(c1.conversation_id)
    await ana.wait_item(item_of("assigned", c1.conversation_id), 5, "assigned")
    p = ctl(d, "agent", "remove", "ana", check=False)
    env.expect(p.returncode == 1, p)
    a = show(d, "ana")
    env.expect(a["conversations"] == [c1.conversation_id] and a["presence"] == "available", a)
    await ana.close_conv(c1.conversation_id)
    ctl(d, "agent", "remove", "ana")
    await ana.conn.wait_closed(5, "agent removed")



def write(env, name, text):
    path = os.path.join(env.dir, name)
    with open(path, "w", newline="") as f:
        f.write(text)
    return path


@time_limit(60)
def test_roster_value_with_a_line_break_is_reported_on_one_line(env):
    """README: the roster is CSV in which "no value may hold a line break"; "each bad row is
    reported as `FILE:LINE: reason`" and "errors are one line on stderr". A quoted cell holding
    a line break (a spreadsheet cell with Alt+Enter) is refused, but the reason quotes the
    value with its line break: the report of one row spans two lines, and the second
    ("x': ids are ...") reads as neither FILE:LINE nor a reason."""
    d = env.daemon(env.redis())
    path = write(env, "roster.csv", 'id,name,languages\nana,Ana,en\n"b\nx",Bob,en\n'
                 'cy,Cy,"en\nes"\n')
    p = ctl(d, "agent", "import", "--dry-run", path, check=False)
    env.expect(p.returncode == 1, (p.returncode, p.stderr))
    lines = p.stderr.rstrip("\n").split("\n")
    bad = [ln for ln in lines if not (ln.startswith(path + ":") or
                                      ln.startswith("omnirouterctl: "))]
    env.expect(f"{path}:3: " in p.stderr and f"{path}:5: " in p.stderr, p.stderr)
    env.expect(not bad, f"every line of the report is FILE:LINE: reason or the summary; "
               f"these are not: {bad}; stderr:\n{p.stderr}")


@time_limit(60)
async def test_agent_show_and_list_text_say_the_wrapup(env):
    """ROUTING.md Agents: presence is "offline, away, available, busy, break (with a reason
    ...), and per-channel wrap-up"; README: `agent list` shows "PRESENCE (reason)" and
    `agent show` one agent. (The docs do not spell out the text views; a supervisor expects
    them to say why an agent with free capacity gets nothing.) `--json` has
    wrapup_until_ms, but the text of `agent show` and `agent list` says only "available"
    during a wrap-up: nothing tells the supervisor the agent is wrapping up."""
    r, d, ana, c1 = await served_one(env, 120, 2)
    a = show(d, "ana")
    env.expect(a["wrapup_until_ms"].get("chat", 0) > 0, f"json has the wrap-up: {a}")
    text = ctl(d, "agent", "show", "ana").stdout
    env.expect("wrap" in text.lower(), f"agent show says nothing of the wrap-up:\n{text}")
    text = ctl(d, "agent", "list").stdout
    env.expect("wrap" in text.lower(), f"agent list says nothing of the wrap-up:\n{text}")


@time_limit(60)
async def test_rejected_chat_comes_back_after_decline_hold(env):
    """ROUTING.md Offers: the agent is not offered that conversation again for
    routing.decline_hold_s; after that, if it still waits, it may come back to them (a timer
    makes the agent look at the waiting work), so a conversation only they can serve does not
    wait for good."""
    r = env.redis()
    d = env.daemon(r, config=cfg(decline_hold_s=10), queues=OFFERS.format(timeout=30, wrapup=0))
    ana = await available(d, "ana", add_agent(d, "ana", "Ana", "en", 1))
    c1 = Customer(d.url, "k1")
    await c1.hello(language="en")
    await ana.wait_item(offer_of(ana, c1.conversation_id), 5, "offer")
    t0 = time.monotonic()
    await ana.reject(c1.conversation_id, reason=None)
    rv = await ana.wait_item(item_of("revoked", c1.conversation_id), 5, "revoked")
    env.expect(rv.get("reason") == "rejected", rv)
    await ana.wait_item(lambda f: len(ana.offers(c1.conversation_id)) == 2, 16,
                        "the offer again after the hold")
    took = time.monotonic() - t0
    env.expect(9.0 <= took <= 16.0, f"offered again {took:.1f}s after the reject (hold 10 s)")


@time_limit(60)
async def test_reload_changes_the_wrapup_of_the_next_close(env):
    """ROUTING.md Wrap-up and rules reload: wrapup_s is the queue's; after a reload that
    lowers it, the next close of a chat held in that queue gets the new time; a chat held in a
    queue the reload renamed wraps up by the queue the new rules give it."""
    r = env.redis()
    q1 = """
queues:
  - name: general
    wrapup_s: 60
"""
    q2 = """
queues:
  - name: main
    wrapup_s: 2
"""
    d = env.daemon(r, config=cfg(), queues=q1)
    ana = await available(d, "ana", add_agent(d, "ana", "Ana", "en", 1))
    c1 = Customer(d.url, "k1")
    await c1.hello(language="en")
    await ana.wait_item(item_of("assigned", c1.conversation_id), 5, "assigned")
    await reload_queues_text(d, r, q2)
    await ana.close_conv(c1.conversation_id)
    cl = await ana.wait_item(item_of("closed", c1.conversation_id), 5, "closed")
    left = cl.get("wrapup_until_ms", 0) - cl.get("ts", 0)
    env.expect(1500 <= left <= 2500, f"wrap-up of the renamed queue (2 s): {cl}")
    c2 = Customer(d.url, "k2")
    await c2.hello(language="en")
    await ana.wait_item(item_of("assigned", c2.conversation_id), 8, "after the 2 s wrap-up")



@time_limit(60)
async def test_site_state_available_with_a_reason(env):
    """PROTOCOL.md presence: a reason goes with break ("a `reason` with `available` or `away` is
    refused"); ROUTING.md Agents: break has a reason such as lunch or missed-offers. README
    `agent state` gives --reason with break. (The docs do not say what the CLI does with a
    reason for available; a site expects the same refusal as the desktop's.) `agent state ana
    available --reason lunch` is taken: the agent is listed "available (lunch)" and its desktop
    is told {"presence":"available","reason":"lunch"}, a state the desktop itself can never
    ask for."""
    r = env.redis()
    d = env.daemon(r, config=cfg())
    ana = await available(d, "ana", add_agent(d, "ana", "Ana", "en", 1))
    await ana.presence("away")
    p = ctl(d, "agent", "state", "ana", "available", "--reason", "lunch", check=False)
    a = show(d, "ana")
    env.expect(p.returncode == 2 or a["reason"] == "",
               f"a reason with available is refused or dropped: exit {p.returncode} "
               f"{p.stdout!r} {p.stderr!r}; agent {a['presence']} ({a['reason']})")
    await asyncio.sleep(0.5)
    notes = [f for f in ana.conn.frames if f.get("type") == "presence"]
    env.expect(all(f.get("reason", "") == "" for f in notes if f.get("presence") == "available"),
               f"desktop told available with a reason: {notes}")



@time_limit(60)
async def test_two_open_offers_taken_back_when_site_sets_offline(env):
    """ROUTING.md Offers: the site setting an agent offline takes back every open offer
    (`revoked`, agent-offline); each goes to the next agent; the agent's reserved capacity
    is freed (load 0)."""
    r = env.redis()
    d = env.daemon(r, config=cfg(), queues=OFFERS.format(timeout=30, wrapup=0))
    ana = await available(d, "ana", add_agent(d, "ana", "Ana", "en", 2))
    cs = await customers(d, 2)
    for c in cs:
        await ana.wait_item(offer_of(ana, c.conversation_id), 5, "offer")
    bob = await available(d, "bob", add_agent(d, "bob", "Bob", "en", 2))
    ctl(d, "agent", "state", "ana", "offline", "--reason", "end-of-shift")
    for c in cs:
        rv = await ana.wait_item(item_of("revoked", c.conversation_id), 5, "revoked")
        env.expect(rv.get("reason") == "agent-offline", rv)
        await bob.wait_item(offer_of(bob, c.conversation_id), 5, "offer to bob")
    a = show(d, "ana")
    env.expect((a["presence"], a["reason"], a["load"]["chat"], a["conversations"]) ==
               ("offline", "end-of-shift", 0, []), a)


@time_limit(60)
async def test_missed_offers_break_is_shown_and_kept_in_history(env):
    """ROUTING.md Offers/Agents: the router's break has reason missed-offers; `agent list`
    shows PRESENCE (reason) (README), `agent show --json` the same, and the change is kept in
    the presence history; the chats it let time out go to the next agent."""
    r = env.redis()
    d = env.daemon(r, config=cfg(max_missed_offers=2), queues=OFFERS.format(timeout=1, wrapup=0))
    ana = await available(d, "ana", add_agent(d, "ana", "Ana", "en", 2))
    cs = await customers(d, 2)
    await ana.conn.wait_for(lambda f: f.get("type") == "presence"
                            and f.get("reason") == "missed-offers", 10, "missed-offers notice")
    a = show(d, "ana")
    env.expect((a["presence"], a["reason"], a["load"]["chat"]) == ("break", "missed-offers", 0),
               a)
    text = ctl(d, "agent", "list").stdout
    env.expect("break (missed-offers)" in text, text)
    h = [(e.get("state"), e.get("reason")) for e in history(r, "ana") if "state" in e]
    env.expect(h[-1] == ("break", "missed-offers"), h)
    bob = await available(d, "bob", add_agent(d, "bob", "Bob", "en", 2))
    for c in cs:
        await bob.wait_item(offer_of(bob, c.conversation_id), 5, "offer to bob")
    await ana.presence("available")
    env.expect(show(d, "ana")["missed_offers"] == 0, show(d, "ana"))


@time_limit(60)
async def test_wrapup_survives_a_new_login_and_ends_from_it(env):
    """ROUTING.md Wrap-up: no new work of the channel until wrapup_s passes or the desktop
    sends wrapup_end; a desktop that reconnects (new login, made available again) is still in
    the wrap-up, and its wrapup_end ends it: the waiting chat comes at once."""
    r = env.redis()
    q = """
queues:
  - name: general
    wrapup_s: 120
"""
    d = env.daemon(r, config=cfg(), queues=q)
    tok = add_agent(d, "ana", "Ana", "en", 1)
    ana = await available(d, "ana", tok)
    c1 = Customer(d.url, "k1")
    await c1.hello(language="en")
    await ana.wait_item(item_of("assigned", c1.conversation_id), 5, "assigned")
    await ana.close_conv(c1.conversation_id)
    await ana.close()
    env.expect(await poll(lambda: show(d, "ana")["presence"] == "offline", 5), show(d, "ana"))
    ana2 = await available(d, "ana", tok, label="ana again")
    c2 = Customer(d.url, "k2")
    await c2.hello(language="en")
    await asyncio.sleep(0.5)
    env.expect(not ana2.assigned(c2.conversation_id), "no chat while still in wrap-up")
    env.expect(show(d, "ana")["wrapup_until_ms"].get("chat", 0) > 0, show(d, "ana"))
    rq = await ana2.conn.request({"type": "wrapup_end", "channel": "chat", "id": "we"})
    env.expect(rq.get("type") == "ack", rq)
    await ana2.wait_item(item_of("assigned", c2.conversation_id), 5, "after wrapup_end")



@time_limit(60)
def test_roster_with_trailing_empty_columns_from_a_spreadsheet(env):
    """README: the roster is what a spreadsheet saves as "CSV UTF-8"; "blank lines and rows of
    empty cells, as spreadsheets write them, are skipped". (The docs do not name trailing
    empty columns; a spreadsheet writes them the same way, when a cell right of the table was
    used once: every line, the header too, ends in ",,".) Such a roster is refused whole:
    "FILE:1: unknown column ''", nothing imported, although no cell of those columns holds
    anything."""
    d = env.daemon(env.redis())
    path = write(env, "roster.csv", "id,name,languages,capacity,,\r\n"
                 "ana,Ana,en,chat:2,,\r\nbob,Bob,es,,,\r\n")
    p = ctl(d, "agent", "import", path, check=False)
    env.expect(p.returncode == 0 and "2 created" in p.stderr,
               f"a roster with two empty trailing columns is imported: exit {p.returncode}, "
               f"stderr {p.stderr!r}")



@time_limit(60)
async def test_unacked_offers_are_not_missed_and_come_back_once(env):
    """ROUTING.md Offers: only offers the desktop received (delivered and acknowledged) count;
    one that expired unacknowledged is taken back and routed on, not counted as missed, and
    the first time for that conversation not a decline (it may be offered to them again at
    once); the second time it is. A desktop that reads but never acks: offered twice, then the
    chat waits; the agent stays available with missed_offers 0."""
    r = env.redis()
    d = env.daemon(r, config=cfg(max_missed_offers=1), queues=OFFERS.format(timeout=1, wrapup=0))
    tok = add_agent(d, "ana", "Ana", "en", 1)
    ana = Agent(d.url, "ana", tok, auto_ack=False)
    await ana.login()
    await ana.presence("available")
    c1 = Customer(d.url, "k1")
    await c1.hello(language="en")
    await ana.wait_item(lambda f: len(ana.revoked(c1.conversation_id)) >= 2, 10,
                        "two timeouts")
    await asyncio.sleep(2.0)
    env.expect(len(ana.offers(c1.conversation_id)) == 2,
               f"offered twice, then held as a decline: {len(ana.offers())} offers")
    a = show(d, "ana")
    env.expect((a["presence"], a["missed_offers"]) == ("available", 0),
               f"unacked offers are not missed: {a}")
    env.expect(conv(r, c1.conversation_id).get("state") == "queued",
               conv(r, c1.conversation_id))



@time_limit(60)
async def test_skills_and_capacity_changes_route_at_once(env):
    """README/ROUTING.md: changes made with omnirouterctl take effect on the next decision
    without a restart; a changed skill or capacity frees an agent up, and it takes what waits.
    `agent skills --add billing:5` hands a logged-in agent the waiting billing chat;
    `agent update --capacity chat:2` then hands it the next waiting chat; `--remove` stops
    new billing work."""
    r = env.redis()
    q = """
queues:
  - name: billing
    skills: {billing: 5}
  - name: general
"""
    d = env.daemon(r, config=cfg(), queues=q)
    ana = await available(d, "ana", add_agent(d, "ana", "Ana", "en", 1))
    b1 = Customer(d.url, "b1")
    await b1.hello(language="en", topic="billing")
    b2 = Customer(d.url, "b2")
    await b2.hello(language="en", topic="billing")
    await asyncio.sleep(0.3)
    env.expect(not ana.assigned(), "no billing skill yet")
    p = ctl(d, "agent", "skills", "--id", "ana", "--add", "billing:5")
    env.expect("billing:5" in p.stdout, p.stdout)
    await ana.wait_item(item_of("assigned", b1.conversation_id), 5, "the billing chat")
    ctl(d, "agent", "update", "--id", "ana", "--capacity", "chat:3")
    await ana.wait_item(item_of("assigned", b2.conversation_id), 5, "the second one")
    ctl(d, "agent", "skills", "--id", "ana", "--remove", "billing")
    b3 = Customer(d.url, "b3")
    w = await b3.hello(language="en", topic="billing")
    env.expect(w["state"] == "queued", f"no billing agent any more: {w}")
    a = show(d, "ana")
    env.expect(a["skills"] in ({}, []) and a["load"]["chat"] == 2, a)



@time_limit(60)
async def test_missed_offer_streak_after_logout_and_login(env):
    """ROUTING.md Offers: the count of missed offers starts again when the agent becomes
    available (from any other state). With max_missed_offers 2: miss one, log out (desktop
    closed: offline), log in (away) and become available, miss one: still available, count
    1; a timeout while away is not counted."""
    r = env.redis()
    d = env.daemon(r, config=cfg(max_missed_offers=2, decline_hold_s=10),
                   queues=OFFERS.format(timeout=1, wrapup=0))
    tok = add_agent(d, "ana", "Ana", "en", 1)
    ana = await available(d, "ana", tok)
    c1 = Customer(d.url, "k1")
    await c1.hello(language="en")
    await ana.wait_item(item_of("revoked", c1.conversation_id), 10, "c1 timed out")
    env.expect(await poll(lambda: show(d, "ana")["missed_offers"] == 1, 5), show(d, "ana"))
    await ana.close()
    env.expect(await poll(lambda: show(d, "ana")["presence"] == "offline", 5), show(d, "ana"))
    ana2 = await available(d, "ana", tok, label="ana again")
    env.expect(show(d, "ana")["missed_offers"] == 0, f"reset on becoming available: "
               f"{show(d, 'ana')}")
    c2 = Customer(d.url, "k2")
    await c2.hello(language="en")
    await ana2.wait_item(offer_of(ana2, c2.conversation_id), 5, "offer c2")
    await ana2.presence("away")
    await ana2.wait_item(item_of("revoked", c2.conversation_id), 5, "c2 timed out while away")
    await asyncio.sleep(0.3)
    a = show(d, "ana")
    env.expect((a["presence"], a["missed_offers"]) == ("away", 0), a)
    await ana2.presence("available")
    c3 = Customer(d.url, "k3")
    await c3.hello(language="en")
    await ana2.wait_item(item_of("revoked", c3.conversation_id), 10, "c3 timed out")
    await asyncio.sleep(0.3)
    a = show(d, "ana")
    env.expect((a["presence"], a["missed_offers"]) == ("available", 1), a)



@time_limit(60)
async def test_explain_says_why_an_offer_moved_on(env):
    """ROUTING.md Explanations: the trigger names its cause: `the offer to AGENT timed out` or
    `was rejected: REASON`, `AGENT went offline with the offer open`; the agent who declined is
    not among the candidates of the next decision; while it waits again, the explanation is
    where it waits, with that trigger."""
    r = env.redis()
    d = env.daemon(r, config=cfg(), queues=OFFERS.format(timeout=1, wrapup=0))
    ana = await available(d, "ana", add_agent(d, "ana", "Ana", "en", 1))
    c1 = Customer(d.url, "k1")
    await c1.hello(language="en")
    await ana.wait_item(item_of("revoked", c1.conversation_id), 10, "timed out")
    why = explain(d, c1.conversation_id)
    env.expect(why.get("state") == "queued" and why.get("trigger") == "the offer to ana timed out",
               f"waiting, with the timeout as trigger: {why}")
    bob = await available(d, "bob", add_agent(d, "bob", "Bob", "en", 1))
    await bob.wait_item(offer_of(bob, c1.conversation_id), 5, "offer to bob")
    rej = await bob.reject(c1.conversation_id, reason="wrong-skill")
    env.expect(rej.get("type") == "ack", rej)
    cy = await available(d, "cy", add_agent(d, "cy", "Cy", "en", 1))
    await cy.wait_item(offer_of(cy, c1.conversation_id), 5, "offer to cy")
    why = explain(d, c1.conversation_id)
    env.expect(why.get("agent") == "cy", why)
    env.expect(why.get("trigger") in ("the offer to bob was rejected: wrong-skill",
                                      "agent became free"), why)
    names = [c.get("agent") for c in why.get("candidates", [])]
    env.expect("ana" not in names and "bob" not in names, f"decliners not candidates: {why}")



@time_limit(60)
async def test_chat_wrapup_does_not_block_email(env):
    """ROUTING.md Wrap-up: the agent gets no new work of *that channel* during a wrap-up; an
    email (started here with omr_conv_start, as the coming email adapter would) still goes to
    an agent in chat wrap-up who has email capacity, and a second chat does not."""
    r, d, ana, c1 = await served_one(env, 120, "chat:2,email:2")
    c = r.client()
    try:
        state = c.cmd("FCALL", "omr_conv_start", 1, "omr:{default}", "e-1", "x" * 64, "en",
                      "en", "Mail", "email", "default", "", "{}", "[]", "")
    finally:
        c.close()
    env.expect(state == "assigned", f"the email goes to ana in chat wrap-up: {state}")
    a = show(d, "ana")
    env.expect(a["load"].get("email") == 1 and "e-1" in a["conversations"], a)
    c2 = Customer(d.url, "k2")
    w = await c2.hello(language="en")
    env.expect(w["state"] == "queued", f"no chat during the chat wrap-up: {w}")


if __name__ == "__main__":
    run_tests([
        test_offers_up_to_capacity_and_a_reject_pulls_the_next,
        test_missed_offer_streak_is_reset_by_accept,
        test_site_offline_mid_offer_goes_to_next_agent,
        test_relogin_mid_offer_gets_the_offer_with_its_deadline,
        test_wrapup_with_two_chats_open,
        test_presence_history_of_a_short_day,
        test_import_over_a_logged_in_agent_routes_at_once,
        test_remove_agent_holding_work_is_refused,
        test_roster_value_with_a_line_break_is_reported_on_one_line,
        test_agent_show_and_list_text_say_the_wrapup,
        test_rejected_chat_comes_back_after_decline_hold,
        test_reload_changes_the_wrapup_of_the_next_close,
        test_site_state_available_with_a_reason,
        test_two_open_offers_taken_back_when_site_sets_offline,
        test_missed_offers_break_is_shown_and_kept_in_history,
        test_wrapup_survives_a_new_login_and_ends_from_it,
        test_roster_with_trailing_empty_columns_from_a_spreadsheet,
        test_unacked_offers_are_not_missed_and_come_back_once,
        test_skills_and_capacity_changes_route_at_once,
        test_missed_offer_streak_after_logout_and_login,
        test_explain_says_why_an_offer_moved_on,
        test_chat_wrapup_does_not_block_email,
    ])
