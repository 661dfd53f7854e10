"""test_queue_status.py - `omnirouterctl queue status`: what waits, queue by queue.

One daemon, three queues (vip for tenant acme at priority 5, spanish, a catch-all general).
Customers wait in each; the status must say, per queue in the rules' order, how many wait, the
oldest (the next one served) and since when, their languages, steps, channels and tenants,
who waits for one agent (a transfer to an agent on break) and whose customer is away (page closed);
`queue status QUEUE` lists a queue's waiting conversations oldest first; --tenant keeps one
tenant's. When an agent takes the oldest, the status follows. Bad arguments are usage errors.
Also: 2,600 waiting over several SSCAN pages with stale members of the set (assigned since, or
gone) and a queue no longer in the rules; a Redis no daemon has written rules to (the built-in
default queue); a queue with nothing waiting (its listing once passed NULL to qsort).
"""

import asyncio
import json
import os
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from omr_harness import (Agent, Customer, add_agent, ctl, log, poll,  # noqa: E402
                         run_tests, time_limit, write_config)

QUEUES = """
queues:
  - name: vip
    tenants: [acme]
    priority: 5
  - name: spanish
    languages: [es]
  - name: general
"""


def status(d, *args):
    return json.loads(ctl(d, "--json", "queue", "status", *args).stdout)


def by_name(st):
    return {q["name"]: q for q in st["queues"]}


@time_limit(90)
async def test_queue_status_follows_the_floor(env):
    r = env.redis()
    d = env.daemon(r, config={"routing": {"tick_ms": 50}}, queues=QUEUES)
    st = status(d)
    assert [q["name"] for q in st["queues"]] == ["vip", "spanish", "general"], st
    assert all(q["waiting"] == 0 and q["oldest"] is None for q in st["queues"]), st
    assert by_name(st)["vip"]["priority"] == 5, st

    customers = []
    for lang, tenant in (("es", None), ("es-MX", None), ("en", None), ("fr", "acme")):
        c = Customer(d.url, f"{lang}/{tenant}")
        await c.hello(language=lang, tenant=tenant)
        customers.append(c)
        await asyncio.sleep(0.02)  # distinct enqueue times
    es1, es2, en1, fr1 = customers
    t_before = time.time() * 1000

    st = status(d)
    q = by_name(st)
    assert q["spanish"]["waiting"] == 2 and q["spanish"]["languages"] == {"es": 2}, q["spanish"]
    assert q["spanish"]["oldest"]["conversation"] == es1.conversation_id, q["spanish"]
    assert 0 <= q["spanish"]["oldest"]["waited_ms"] < 30000, q["spanish"]
    assert q["spanish"]["steps"] == {"1": 2} and q["spanish"]["channels"] == {"chat": 2}, q
    assert q["general"]["waiting"] == 1 and q["general"]["languages"] == {"en": 1}, q["general"]
    assert q["vip"]["waiting"] == 1 and q["vip"]["tenants"] == {"acme": 1}, q["vip"]
    assert q["vip"]["oldest"]["conversation"] == fr1.conversation_id, q["vip"]
    assert st["at_ms"] >= t_before - 5000, st

    # One queue: its conversations, oldest first.
    one = status(d, "spanish")["queues"]
    assert [x["name"] for x in one] == ["spanish"], one
    assert [c["conversation"] for c in one[0]["conversations"]] == \
        [es1.conversation_id, es2.conversation_id], one
    text = ctl(d, "queue", "status", "spanish").stdout
    log("queue status spanish:\n" + text)
    lines = text.splitlines()
    assert lines[0].split()[:2] == ["#", "CONVERSATION"], text
    assert lines[1].split()[1] == es1.conversation_id and \
        lines[2].split()[1] == es2.conversation_id, text

    # --tenant: that tenant's only.
    acme = by_name(status(d, "--tenant", "acme"))
    assert (acme["vip"]["waiting"], acme["spanish"]["waiting"], acme["general"]["waiting"]) == \
        (1, 0, 0), acme

    # The table: one line per queue, the oldest named.
    table = ctl(d, "queue", "status").stdout.splitlines()
    log("queue status:\n" + "\n".join(table))
    assert table[0].split()[0] == "QUEUE", table
    row = {ln.split()[0]: ln.split() for ln in table[1:]}
    assert row["spanish"][2] == "2" and row["spanish"][-1] == es1.conversation_id, table
    assert row["general"][2] == "1", table

    # A Spanish agent takes the oldest; the status follows.
    tok = add_agent(d, "sofia", "Sofia", "es", 1)
    sofia = Agent(d.url, "sofia", tok)
    await sofia.login()
    await sofia.presence("available")
    got = await sofia.wait_item(lambda f: f.get("type") == "assigned", 10, "assigned")
    assert got["conversation_id"] == es1.conversation_id, got
    sp = await poll(lambda: by_name(status(d))["spanish"]["waiting"] == 1 and status(d), 5)
    assert sp, "the spanish queue still counts the assigned conversation"
    sp = by_name(sp)["spanish"]
    assert sp["oldest"]["conversation"] == es2.conversation_id, sp

    # Transferred to an agent on break: waits for that agent (FOR-AGENT); the page of the general
    # customer closed: away.
    r1 = await sofia.conn.request({"type": "transfer", "conversation_id": es1.conversation_id,
                                   "agent": "sofia2", "id": "t1"})
    assert r1.get("type") == "error", f"no such agent yet: {r1}"
    tok2 = add_agent(d, "sofia2", "Sofia Two", "es", 1)
    sofia2 = Agent(d.url, "sofia2", tok2)
    await sofia2.login()
    await sofia2.presence("break")
    r2 = await sofia.conn.request({"type": "transfer", "conversation_id": es1.conversation_id,
                                   "agent": "sofia2", "id": "t2"})
    assert r2.get("type") == "ack", r2
    await en1.close()

    def settled():
        q = by_name(status(d))
        return q if q["spanish"]["waiting_for_agent"] == 1 and \
            q["general"]["customer_away"] == 1 else None
    q = await poll(settled, 10)
    assert q, f"transfer to an agent on break and the closed page not shown: {by_name(status(d))}"
    lst = status(d, "spanish")["queues"][0]["conversations"]
    mine = [x for x in lst if x["conversation"] == es1.conversation_id]
    assert mine and mine[0]["waiting_for_agent"] == "sofia2", lst
    # (the transfer kept the original enqueue time: es1 is still the oldest)
    assert lst[0]["conversation"] == es1.conversation_id, lst
    for c in (es2, fr1):
        await c.close()
    await sofia.close()
    await sofia2.close()


@time_limit(30)
async def test_queue_status_usage(env):
    r = env.redis()
    d = env.daemon(r, queues=QUEUES)
    for args, code in ((["queue"], 2), (["queue", "show"], 2), (["queue", "status", "a b"], 2),
                       (["queue", "status", "nope"], 1),
                       (["queue", "status", "--name", "x"], 2)):
        p = ctl(d, *args, check=False)
        assert p.returncode == code and p.stderr.startswith("omnirouterctl: ") and \
            not p.stdout, (args, p.returncode, p.stdout, p.stderr)


QUEUES2 = """
queues:
  - name: vip
    priority: 5
  - name: general
"""


def status_json(d, *args):
    return json.loads(ctl(d, "--json", "queue", "status", *args).stdout)


@time_limit(120)
async def test_queue_status_many_pages_stale_members_and_an_old_queue(env):
    r = env.redis()
    d = env.daemon(r, queues=QUEUES2)
    c = r.client()
    P = "omr:{default}"
    cmds = []
    truth = {}
    for i in range(2600):
        cid = f"c{i:05d}"
        q = ["vip", "general", "oldq"][i % 3]
        state = "queued" if i % 7 else "assigned"
        tenant = "acme" if i % 2 else "default"
        enq = 1_700_000_000_000 + (5000 - i) * 10
        cmds.append(["HSET", f"{P}:conv:{cid}", "state", state, "queue", q, "step", "1",
                     "channel", "chat", "tenant", tenant, "rlang", "en", "enqueued_ms", str(enq)])
        cmds.append(["SADD", f"{P}:queued", cid])
        if state == "queued":
            t = truth.setdefault((q, None), [])
            t.append((enq, cid))
            truth.setdefault((q, tenant), []).append((enq, cid))
    # an id in the set with no hash at all (expired)
    cmds.append(["SADD", f"{P}:queued", "ghost"])
    for i in range(0, len(cmds), 500):
        c.pipeline(cmds[i:i + 500])
    st = status_json(d)
    qs = {q["name"]: q for q in st["queues"]}
    for name in ("vip", "general", "oldq"):
        exp = sorted(truth[(name, None)])
        env.expect(qs[name]["waiting"] == len(exp), (name, qs[name]["waiting"], len(exp)))
        env.expect(qs[name]["oldest"]["conversation"] == exp[0][1], (name, qs[name]["oldest"]))
    env.expect(not qs["oldq"]["in_rules"], qs["oldq"])
    st = status_json(d, "--tenant", "acme")
    qs = {q["name"]: q for q in st["queues"]}
    for name in ("vip", "general", "oldq"):
        exp = sorted(truth[(name, "acme")])
        env.expect(qs[name]["waiting"] == len(exp), ("acme", name, qs[name]["waiting"], len(exp)))
    one = status_json(d, "oldq")
    lst = one["queues"][0]["conversations"]
    env.expect([x["conversation"] for x in lst] == [x[1] for x in sorted(truth[("oldq", None)])],
               "oldq list order")
    p = ctl(d, "queue", "status")
    env.expect("not in the rules" in p.stdout, p.stdout[:500])
    p = ctl(d, "queue", "status", "general")
    env.expect(len(p.stdout.splitlines()) == len(truth[("general", None)]) + 1, "list lines")
    c.close()


@time_limit(60)
async def test_queue_status_before_any_daemon(env):
    r = env.redis()
    cfg = os.path.join(env.dir, "ctl.yaml")
    write_config(cfg, {"redis": {"host": "127.0.0.1", "port": r.port}})
    p = ctl(cfg, "--json", "queue", "status")
    st = json.loads(p.stdout)
    env.expect([q["name"] for q in st["queues"]] == ["default"], st)
    p = ctl(cfg, "queue", "status", "nope", check=False)
    env.expect(p.returncode == 1, (p.returncode, p.stderr))
    for args in (["queue", "status", "a", "b"], ["queue", "status", "x" * 129],
                 ["queue", "status", "--tenant"], ["queue", "status", "--id", "x"]):
        p = ctl(cfg, *args, check=False)
        env.expect(p.returncode == 2 and not p.stdout, (args, p.returncode, p.stdout, p.stderr))


@time_limit(60)
async def test_queue_status_of_an_empty_queue(env):
    """README: `queue status spanish` lists one queue's waiting conversations; a queue of the
    rules with nothing waiting must list nothing, exit 0, with no sanitizer report."""
    r = env.redis()
    d = env.daemon(r, queues=QUEUES2)
    p = ctl(d, "queue", "status", "vip")
    env.expect(p.returncode == 0, p)


if __name__ == "__main__":
    run_tests([test_queue_status_follows_the_floor, test_queue_status_usage,
               test_queue_status_many_pages_stale_members_and_an_old_queue,
               test_queue_status_before_any_daemon, test_queue_status_of_an_empty_queue])
