"""test_redis_acl.py - omnirouterd and omnirouterctl as a Redis ACL user of their own.

A site's Redis is shared and has users (Redis 6 ACL): README.md ("A Redis user of its own")
gives the ACL SETUSER line for omnirouter's user. These tests create that user from the
README's own line, so the documented rules are the ones tested, and run the product as it:
  - a whole chat (agent created and its token issued by omnirouterctl, login, hello, messages
    both ways, a customer's reload, a desktop's reconnect, the close, explain, queue status),
    with every daemon connection logged in as that user, and no command, key or channel
    refused anywhere but CONFIG GET (ACL LOG: the functions' own commands are checked too);
  - a wrong password: the daemon says WRONGPASS and is not ready (it does not listen before
    Redis is); omnirouterctl exits with the error;
  - a channel rule that does not name the notification pattern literally (`&omr:*`): the
    daemon logs the NOPERM of its PSUBSCRIBE at every attempt and stays not ready.
"""

import asyncio
import json
import os
import re
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from omr_harness import (SOURCE_DIR, Agent, Customer, add_agent, ctl,  # noqa: E402
                         http_status, log, run_tests, time_limit, wait_log)

USER, PASSWORD = "omnirouter", "acl-s3cret"


def readme_acl_rules():
    """The rules of the README's ACL SETUSER line, PASSWORD replaced."""
    with open(os.path.join(SOURCE_DIR, "README.md")) as f:
        lines = [ln.strip() for ln in f if ln.strip().startswith("ACL SETUSER omnirouter ")]
    assert len(lines) == 1, f"README.md: one ACL SETUSER omnirouter line expected: {lines}"
    words = lines[0].split()[3:]
    assert ">PASSWORD" in words, lines[0]
    return [">" + PASSWORD if w == ">PASSWORD" else w for w in words]


def acl_redis(env, rules):
    r = env.redis()
    rc = r.client()
    assert rc.cmd("ACL", "SETUSER", USER, *rules) == "OK"
    rc.cmd("ACL", "LOG", "RESET")
    return r, rc


def acl_daemon(env, r, password=PASSWORD, wait_ready=True):
    d = env.daemon(r, config={"redis": {"username": USER, "password": password}},
                   start=wait_ready)
    if not wait_ready:
        d.launch()  # (not ready, it never listens: Daemon.start would wait for /healthz)
        return d
    deadline = time.monotonic() + 10
    while http_status(d.port, "/readyz") != 200:
        assert time.monotonic() < deadline, "not ready in 10 s:\n" + d.log_text()[-2000:]
        time.sleep(0.05)
    return d


def acl_denials(rc):
    log_entries = rc.cmd("ACL", "LOG")
    out = []
    for e in log_entries:
        fields = dict(zip(e[::2], e[1::2]))
        out.append(f"{fields.get('reason')} {fields.get('object')} "
                   f"(user {fields.get('username')}, {fields.get('context')})")
    return out


@time_limit(90)
async def test_whole_chat_as_the_readme_acl_user(env):
    r, rc = acl_redis(env, readme_acl_rules())
    d = acl_daemon(env, r)
    token = add_agent(d, "acl1", "Ada", "en", 2)
    agent = Agent(d.url, "acl1", token)
    await agent.login()
    await agent.presence("available")
    cust = Customer(d.url)
    await cust.hello(language="en", name="Kim")
    await cust.send("where is my parcel", id="m1")
    got = await agent.wait_item(lambda f: f.get("type") == "assigned", 10, "the assignment")
    conv = got["conversation_id"]
    assert conv == cust.conversation_id, got
    await agent.wait_item(lambda f: f.get("type") == "message" and f.get("id") == "m1", 10,
                          "the customer's message")
    await agent.reply(conv, "on its way", id="r1")
    await cust.wait_item(lambda f: f.get("type") == "message" and f.get("text") == "on its way",
                         10, "the agent's reply")
    # A reload and a reconnect read the transcript and the inbox back.
    await cust.resume()
    await cust.send("thanks", id="m2")
    await agent.close()
    agent = Agent(d.url, "acl1", token, label="acl1 again")
    await agent.login()
    await agent.wait_item(lambda f: f.get("type") == "message" and f.get("id") == "m2", 10,
                          "the message sent while the desktop was away")
    await agent.close_conv(conv)
    why = json.loads(ctl(d, "--json", "explain", conv).stdout)
    assert why.get("agent") == "acl1", why
    st = json.loads(ctl(d, "--json", "queue", "status").stdout)
    assert [q["waiting"] for q in st["queues"]] == [0], st
    issued = ctl(d, "token", "issue", "acl1").stdout.strip()
    assert issued and issued != token, issued
    await agent.close()
    await cust.close()
    users = re.findall(r"name=(\S*) .*? user=(\S+)", rc.cmd("CLIENT", "LIST"))
    log(f"clients: {users}")
    mine = [u for name, u in users if u == USER]
    assert len(mine) >= 2, f"the daemon's two connections log in as {USER}: {users}"
    await asyncio.sleep(1.5)  # a few ticks run the timer function as the user too
    denied = [d for d in acl_denials(rc) if not d.startswith("command config|get ")]
    assert not denied, "the README's ACL refused:\n  " + "\n  ".join(denied)
    text = d.log_text()
    assert "CONFIG GET refused" in text, "the skipped checks are not said in the log"


@time_limit(60)
async def test_wrong_password_is_named(env):
    r, rc = acl_redis(env, readme_acl_rules())
    d = acl_daemon(env, r, password="not-it", wait_ready=False)
    await wait_log(d, "WRONGPASS", 10)
    assert http_status(d.port, "/readyz") != 200, "ready with a wrong password"
    p = ctl(d, "agent", "list", check=False)
    assert p.returncode != 0 and "WRONGPASS" in p.stderr, (p.returncode, p.stderr)


@time_limit(60)
async def test_channel_rule_not_literal_is_named(env):
    rules = [w.replace("&omr:*:notify", "&omr:*") for w in readme_acl_rules()]
    r, rc = acl_redis(env, rules)
    d = acl_daemon(env, r, wait_ready=False)
    # (hiredis drops the subscription connection on the refusal, with its reason)
    await wait_log(d, 'reason="NOPERM this user has no permissions to access one of the '
                   'channels', 10, count=2)
    await asyncio.sleep(0.5)
    assert http_status(d.port, "/readyz") != 200, "ready without its subscription"


if __name__ == "__main__":
    run_tests([test_whole_chat_as_the_readme_acl_user, test_wrong_password_is_named,
               test_channel_rule_not_literal_is_named])
