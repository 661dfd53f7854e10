"""test_sigkill.py - SIGKILL loses nothing that was acknowledged.

An agent is online; a customer sends m1..m5 (waiting for each ack), then keeps
sending m6..m20 in a loop while the daemon is SIGKILLed and restarted on the
same ports. The customer reconnects with `resume` and resends whatever was not
acked, with the same id. The agent logs in again. Every message the customer
saw acked must be in the conversation log in Redis exactly once and in order,
and must reach the agent (after de-duplication by message id), in order.
"""

import asyncio
import os
import random
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from omr_harness import (SEQ_RE, Agent, Customer, Disconnected, add_agent, conv_key,  # noqa: E402
                         log, run_tests, time_limit, wait_until)
import websockets.exceptions  # noqa: E402  (after omr_harness, which finds Debian's copy)

N_BEFORE = 5
N_TOTAL = 20
KILL_AFTER_ACK = "m8"


def text_of(i):
    return f"message number {i} ✓"


@time_limit(120)
async def test_sigkill_loses_nothing_acked(env):
    r = env.redis()
    d = env.daemon(r)
    rng = random.Random()
    token = add_agent(d, "a1", "Alex", "en", 2)
    agent = Agent(d.url, "a1", token)
    await agent.login()
    await agent.presence("available")

    cust = Customer(d.url, "customer")
    await cust.hello(language="en", name="Kim")
    conv = cust.conversation_id
    acked = {}      # msgid -> seq of its first ack
    sends = {}      # msgid -> how many times it was sent
    refusals = []   # error frames seen while resending

    for i in range(1, N_BEFORE + 1):
        mid = f"m{i}"
        sends[mid] = 1
        ack = await cust.send(text_of(i), id=mid)
        acked[mid] = ack["seq"]
    await agent.wait_item(lambda f: f.get("type") == "assigned" and f.get("conversation_id") == conv,
                          10, "assigned")

    state = {"reconnects": 0, "killed": False, "dup_resends": 0}

    async def reconnect():
        deadline = time.monotonic() + 40
        last = None
        while time.monotonic() < deadline:
            try:
                await cust.resume(timeout=5)
                state["reconnects"] += 1
                log(f"customer resumed (after={cust.last_seq})")
                return
            except (OSError, asyncio.TimeoutError, websockets.exceptions.WebSocketException,
                    Disconnected) as e:
                last = e
            except AssertionError as e:  # a timeout waiting for welcome, or a refusal
                last = e
            await asyncio.sleep(0.1)
        raise AssertionError(f"customer could not resume within 40 s; last error: {last}")

    async def resend_acked():
        """After a reconnect, resend the last two acked messages as a client
        that lost their acks would: the ack must come again, nothing stored
        twice."""
        for mid in sorted(acked, key=lambda m: int(m[1:]))[-2:]:
            sends[mid] += 1
            r_ = await cust.conn.request({"type": "message", "id": mid,
                                          "text": text_of(int(mid[1:]))}, timeout=10)
            assert r_.get("type") == "ack", f"resending acked {mid} after resume: {r_}"
            env.expect(r_.get("seq") == acked[mid],
                       f"a resent {mid} should be acked with its original seq {acked[mid]}: {r_}")
            state["dup_resends"] += 1

    async def sender():
        i = N_BEFORE + 1
        while i <= N_TOTAL:
            mid = f"m{i}"
            sends[mid] = sends.get(mid, 0) + 1
            try:
                r_ = await cust.conn.request({"type": "message", "id": mid, "text": text_of(i)},
                                             timeout=5)
            except (Disconnected, websockets.exceptions.ConnectionClosed):
                await reconnect()
                await resend_acked()
                continue
            except AssertionError:  # no answer in time: resend the same id
                continue
            if r_.get("type") == "ack":
                assert SEQ_RE.match(str(r_.get("seq"))), f"ack without seq: {r_}"
                acked.setdefault(mid, r_["seq"])
                i += 1
                await asyncio.sleep(0.01)
            elif r_.get("code") == "unavailable":
                refusals.append(r_)
                await asyncio.sleep(0.1)
            else:
                raise AssertionError(f"message {mid} refused while resending: {r_}")

    async def killer():
        deadline = time.monotonic() + 30
        while KILL_AFTER_ACK not in acked:
            assert time.monotonic() < deadline, f"{KILL_AFTER_ACK} not acked within 30 s"
            await asyncio.sleep(0.002)
        await asyncio.sleep(rng.uniform(0, 0.02))
        d.kill()
        state["killed"] = True
        await asyncio.sleep(0.5)
        await asyncio.to_thread(d.start)

    await asyncio.gather(sender(), killer())
    log(f"all {N_TOTAL} acked; {state['reconnects']} reconnects; resent: "
        f"{sorted(k for k, v in sends.items() if v > 1)}; refusals {len(refusals)}")
    assert state["killed"], "the daemon was never killed"
    assert state["reconnects"] >= 1, "the customer never had to reconnect: nothing was tested"
    assert state["dup_resends"] >= 2, "no acked message was resent: dedup was not exercised"
    want = [f"m{i}" for i in range(1, N_TOTAL + 1)]
    assert sorted(acked, key=lambda m: int(m[1:])) == want, f"acked: {sorted(acked)}"

    # The agent comes back and gets everything it had not confirmed.
    await agent.login(timeout=20)

    def agent_msgids():
        return [f.get("id") for f in agent.messages(conv)]

    def have_all():
        return True if set(want) <= set(agent_msgids()) else None
    await wait_until(agent.cond, have_all, 30, lambda: (
        f"agent got only {sorted(set(agent_msgids()))} of {want}"))
    got = agent_msgids()
    first_seen = list(dict.fromkeys(got))
    assert first_seen == want, f"agent got the messages out of order: {first_seen}"
    texts = {f.get("id"): f.get("text") for f in agent.messages(conv)}
    assert all(texts[f"m{i}"] == text_of(i) for i in range(1, N_TOTAL + 1)), texts
    dups = len(got) - len(first_seen)
    if dups:
        log(f"note: the agent got {dups} message(s) twice under different seqs")

    # The stored transcript: each acked message exactly once, in order.
    rc = r.client()
    entries = rc.xrange(conv_key(conv) + ":log")
    cust_entries = [(eid, f) for eid, f in entries if f.get("from") == "customer"]
    ids = [f.get("msgid") for _, f in cust_entries]
    assert ids == want, (f"conversation log customer messages (want {want} once each, in "
                         f"order):\n{ids}\nfull log: {entries}")
    for eid, f in cust_entries:
        assert f.get("text") == text_of(int(f["msgid"][1:])), f"log entry {eid}: {f}"
    mismatched = [(m, acked[m], eid) for (eid, f), m in zip(cust_entries, ids) if acked[m] != eid]
    if mismatched:
        log(f"note: ack seq differs from the log entry id for {mismatched[:5]}")
    h = rc.hgetall(conv_key(conv))
    assert h.get("state") == "assigned" and h.get("agent") == "a1", \
        f"conversation after restart: {h}"
    rc.close()

    # The conversation still works both ways on the restarted daemon.
    await agent.reply(conv, "got all twenty")
    await cust.wait_item(lambda f: f.get("type") == "message" and f.get("from") == "agent"
                         and f.get("text") == "got all twenty", 10, "reply after restart")

    # A reloaded page redraws each message once, in order.
    page = Customer(d.url, "customer (reload)")
    page.conversation_id, page.resume_token = cust.conversation_id, cust.resume_token
    await page.resume(after="0")
    await page.wait_item(lambda f: f.get("type") == "message" and f.get("text") == "got all twenty",
                         10, "full transcript")
    mine = [f.get("id") for f in page.order if f.get("type") == "message"
            and f.get("from") == "customer"]
    assert mine == want, f"transcript after resume shows {mine}"
    await page.close()
    await cust.close()
    await agent.close()
    d.stop()


if __name__ == "__main__":
    run_tests([test_sigkill_loses_nothing_acked])
