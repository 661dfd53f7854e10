"""omnirouterctl v2 against a real redis-server and a real omnirouterd: agents
(add, update, token, skills, state, list, show, remove), the roster import
(RFC 4180 CSV, all-or-nothing validation with FILE:LINE errors, tokens only
for new agents) and explain. Routing state is read back through the tool's
own --json output; tokens are proven by logging in on the agent desktop.
Exit statuses: 0 ok, 1 runtime (not found, refused, bad roster), 2 usage."""
import json
import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from omr_harness import (TOKEN_RE, Agent, Customer, add_agent, ctl, log, run_tests,  # noqa: E402
                         time_limit)


def ctl_json(d, *args):
    p = ctl(d, "--json", *args)
    try:
        return json.loads(p.stdout)
    except ValueError:
        raise AssertionError(f"omnirouterctl --json {' '.join(args)} printed no JSON: "
                             f"{p.stdout!r}") from None


def show(d, agent_id):
    a = ctl_json(d, "agent", "show", agent_id)
    assert a.get("id") == agent_id, f"show {agent_id} answered another agent: {a}"
    return a


def fails(d, status, *args, mentions=()):
    """Runs omnirouterctl expecting exit `status` and one clear stderr line."""
    p = ctl(d, *args, check=False)
    assert p.returncode == status, (f"omnirouterctl {' '.join(args)}: exit {p.returncode}, want "
                                    f"{status}\nstdout: {p.stdout}\nstderr: {p.stderr}")
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("omnirouterctl: "), \
        f"omnirouterctl {' '.join(args)}: want one 'omnirouterctl: ...' line, got {p.stderr!r}"
    for word in mentions:
        assert word in lines[0], f"{' '.join(args)}: error {lines[0]!r} should mention {word!r}"
    assert p.stdout == "", f"{' '.join(args)}: nothing on stdout on failure: {p.stdout!r}"
    return lines[0]


async def can_login(d, agent_id, token):
    a = Agent(d.url, agent_id, token)
    try:
        await a.login()
        return True
    except AssertionError as e:
        log(f"login {agent_id} refused: {e}")
        return False
    finally:
        await a.close()


def agent_ids(d):
    return [a["id"] for a in ctl_json(d, "agent", "list")]


@time_limit(120)
async def test_agent_lifecycle(env):
    d = env.daemon(env.redis())

    # v2 syntax; the token alone on stdout.
    p = ctl(d, "agent", "add", "--id", "ana", "--name", "Ana López", "--languages",
            "es-MX:10,en:6", "--skills", "billing:7,refunds:3", "--capacity",
            "chat:3,email:5,voice:1", "--tenants", "acme,globex")
    tok_ana = p.stdout.strip()
    assert TOKEN_RE.match(tok_ana) and len(p.stdout.splitlines()) == 1, \
        f"agent add should print the token alone: {p.stdout!r}"
    a = show(d, "ana")
    assert a["name"] == "Ana López", a
    assert a["languages"] == {"es": 10, "en": 6}, f"es-MX:10 should be stored as es: {a}"
    assert a["skills"] == {"billing": 7, "refunds": 3}, a
    assert a["capacity"] == {"chat": 3, "email": 5, "voice": 1}, a
    assert sorted(a["tenants"]) == ["acme", "globex"], a
    assert a["presence"] == "offline" and a["conversations"] == [], a

    # The v1 command line the other tests use still works: languages without
    # levels are 10, --capacity N is chats, tenants default.
    tok_en = add_agent(d, "en1", "Emma English", "en,es", 2)
    e = show(d, "en1")
    assert e["languages"] == {"en": 10, "es": 10}, e
    assert e["capacity"]["chat"] == 2 and e["tenants"] == ["default"], e

    # --json add.
    j = ctl_json(d, "agent", "add", "--id", "x1", "--name", "X", "--languages", "fr",
                 "--tenant", "acme")
    assert j.get("id") == "x1" and j.get("result") == "created" \
        and TOKEN_RE.match(j.get("token", "")), f"add --json: {j}"
    assert show(d, "x1")["tenants"] == ["acme"], "--tenant T: the tenant of a new agent"

    assert await can_login(d, "ana", tok_ana), "the token add printed must log in"
    assert await can_login(d, "en1", tok_en)

    # update keeps the token and changes only what it is given.
    p = ctl(d, "agent", "update", "--id", "ana", "--name", "Ana L.", "--capacity", "chat:4")
    assert p.stdout.strip() == "updated ana", p.stdout
    a = show(d, "ana")
    assert a["name"] == "Ana L." and a["capacity"] == {"chat": 4, "email": 0, "voice": 0}, a
    assert a["skills"] == {"billing": 7, "refunds": 3} and a["languages"] == {"es": 10, "en": 6}
    assert await can_login(d, "ana", tok_ana), "update must keep the token"

    # token: a new one; the old one stops working.
    p = ctl(d, "agent", "token", "--id", "ana")
    tok_new = p.stdout.strip()
    assert TOKEN_RE.match(tok_new) and tok_new != tok_ana, p.stdout
    assert not await can_login(d, "ana", tok_ana), "the old token must stop working"
    assert await can_login(d, "ana", tok_new)

    # update/token of a missing agent: not found, and not created.
    fails(d, 1, "agent", "update", "--id", "ghost", "--name", "G", mentions=("ghost",))
    fails(d, 1, "agent", "token", "--id", "ghost", mentions=("ghost",))
    fails(d, 1, "agent", "show", "ghost", mentions=("ghost",))
    assert "ghost" not in agent_ids(d)

    # add replaces: fields not given go back to their defaults.
    p = ctl(d, "agent", "add", "--id", "ana", "--name", "Ana", "--languages", "pt")
    a = show(d, "ana")
    assert a["languages"] == {"pt": 10} and a["skills"] == {} and a["tenants"] == ["default"] \
        and a["capacity"] == {"chat": 1, "email": 0, "voice": 0}, f"add should replace: {a}"
    assert await can_login(d, "ana", p.stdout.strip())

    # remove.
    assert ctl(d, "agent", "remove", "x1").stdout.strip() == "removed x1"
    fails(d, 1, "agent", "show", "x1")
    fails(d, 1, "agent", "remove", "x1", mentions=("x1",))
    assert agent_ids(d) == ["ana", "en1"]


@time_limit(90)
def test_skills_state_list(env):
    d = env.daemon(env.redis())
    add_agent(d, "b1", "Bea", "en", 2)
    ctl(d, "agent", "add", "--id", "a1", "--name", "Al Ñ", "--languages", "es:8",
        "--tenants", "acme", "--capacity", "chat:2,email:1")

    p = ctl(d, "agent", "skills", "--id", "a1", "--set", "billing:7,refunds:3")
    assert "billing:7" in p.stdout and "refunds:3" in p.stdout, p.stdout
    assert show(d, "a1")["skills"] == {"billing": 7, "refunds": 3}
    j = ctl_json(d, "agent", "skills", "--id", "a1", "--add", "refunds:5,vip:2",
                 "--remove", "billing")
    assert j.get("skills") == {"refunds": 5, "vip": 2}, j
    assert show(d, "a1")["skills"] == {"refunds": 5, "vip": 2}
    ctl(d, "agent", "skills", "--id", "a1", "--set", "")
    assert show(d, "a1")["skills"] == {}, "--set '' clears the skills"
    ctl(d, "agent", "skills", "--id", "a1", "--add", "billing:7")
    fails(d, 2, "agent", "skills", "--id", "a1", "--add", "billing:11", mentions=("--add",))
    fails(d, 2, "agent", "skills", "--id", "a1", mentions=("--set",))
    fails(d, 1, "agent", "skills", "--id", "nobody", "--add", "x:1", mentions=("nobody",))

    p = ctl(d, "agent", "state", "--id", "a1", "break", "--reason", "lunch")
    assert p.stdout.strip() == "a1: break (lunch)", p.stdout
    a = show(d, "a1")
    assert a["presence"] == "break" and a["reason"] == "lunch", a
    assert a["presence_since_ms"] > 0, a
    j = ctl_json(d, "agent", "state", "a1", "away")
    assert j == {"id": "a1", "presence": "away", "reason": ""}, j
    assert show(d, "a1")["presence"] == "away"
    # Available needs a desktop: work given to nobody would wait forever.
    fails(d, 1, "agent", "state", "a1", "available", mentions=("desktop",))
    assert show(d, "a1")["presence"] == "away"
    fails(d, 2, "agent", "state", "--id", "a1", "sleeping", mentions=("sleeping",))
    fails(d, 2, "agent", "state", "--id", "a1", "break", "--reason", "x" * 65,
          mentions=("--reason",))
    fails(d, 1, "agent", "state", "--id", "nobody", "busy", mentions=("nobody",))
    ctl(d, "agent", "state", "--id", "b1", "busy")

    # The table: a header and one line per agent, sorted by id.
    out = ctl(d, "agent", "list").stdout.splitlines()
    assert out[0].split() == ["ID", "NAME", "TENANTS", "LANGUAGES", "SKILLS", "LOAD/CAP",
                              "SUPERVISES", "PRESENCE"], out[0]
    assert len(out) == 3 and out[1].startswith("a1 ") and out[2].startswith("b1 "), out
    for want in ("Al Ñ", "acme", "es:8", "billing:7", "chat:0/2,email:0/1", "away"):
        assert want in out[1], f"list row of a1 lacks {want!r}: {out[1]!r}"
    for want in ("default", "en:10", "chat:0/2", "busy"):
        assert want in out[2], f"list row of b1 lacks {want!r}: {out[2]!r}"
    # The columns line up (the name has a 2-byte character).
    col = out[0].index("TENANTS")
    assert out[1][col:].startswith("acme") and out[2][col:].startswith("default"), out

    lst = ctl_json(d, "agent", "list")
    assert [a["id"] for a in lst] == ["a1", "b1"], lst
    assert lst[0]["load"] == {"chat": 0, "email": 0, "voice": 0}, lst[0]
    assert [a["id"] for a in ctl_json(d, "--tenant", "acme", "agent", "list")] == ["a1"]

    # Removing an agent with an open conversation is refused (BUSY): covered in
    # test_explain, where one exists.


@time_limit(90)
def test_usage_errors(env):
    d = env.daemon(env.redis())
    cases = [
        (["agent", "add", "--name", "A", "--languages", "en"], "--id"),
        (["agent", "add", "--id", "a b", "--name", "A", "--languages", "en"], "--id"),
        (["agent", "add", "--id", "a", "--languages", "en"], "--name"),
        (["agent", "add", "--id", "a", "--name", "A"], "--languages"),
        (["agent", "add", "--id", "a", "--name", "A", "--languages", "es:11"], "--languages"),
        (["agent", "add", "--id", "a", "--name", "A", "--languages", "es,es-MX"], "twice"),
        (["agent", "add", "--id", "a", "--name", "A", "--languages", "e_s"], "BCP-47"),
        (["agent", "add", "--id", "a", "--name", "A", "--languages", "en", "--capacity", "0"],
         "--capacity"),
        (["agent", "add", "--id", "a", "--name", "A", "--languages", "en", "--capacity",
          "fax:1"], "fax"),
        (["agent", "add", "--id", "a", "--name", "A", "--languages", "en", "--capacity",
          "chat:101"], "--capacity"),
        (["agent", "add", "--id", "a", "--name", "A", "--languages", "en", "--skills",
          "billing"], "--skills"),
        (["agent", "add", "--id", "a", "--name", "A", "--languages", "en", "--tenants",
          "a b"], "--tenants"),
        (["agent", "add", "--id", "a", "--name", "two\nlines", "--languages", "en"], "--name"),
        (["agent", "add", "--id", "a", "--name", "A", "--languages", "en", "--token", "short"],
         "--token"),
        (["agent", "add", "--id", "a", "--id", "b", "--name", "A", "--languages", "en"],
         "twice"),
        (["agent", "list", "--name", "x"], "--name"),
        (["agent", "list", "extra"], "list"),
        (["agent", "frobnicate"], "frobnicate"),
        (["agent", "show"], "--id"),
        (["agent", "import"], "import"),
        (["explain"], "explain"),
        (["explain", "bad id"], "explain"),
        (["agent", "list", "--bogus"], "--bogus"),
    ]
    for args, word in cases:
        fails(d, 2, *args, mentions=(word,))
    assert agent_ids(d) == [], "no failed command may create an agent"


ROSTER = (
    "\ufeffid,name,languages,skills,capacity,tenants\r\n"
    "keep,Kept Agent,en:9,billing:3,chat:1,acme\r\n"
    "n1,\"Núñez, Luis\",es-MX:10|en:6,billing:7|refunds:3,chat:3|email:5,acme|globex\r\n"
    "\r\n"
    "n2,\"Ann \"\"Annie\"\" Lee\",en,,,\r\n"
    "n3,\"Smith, Jr.\",en|fr:4,,voice:1,globex\r\n"
)


@time_limit(120)
async def test_import(env):
    d = env.daemon(env.redis())
    tok_keep = add_agent(d, "keep", "Old Name", "de", 1)

    # All or nothing: each bad row reported as FILE:LINE, exit 1, nothing written.
    bad = os.path.join(env.dir, "bad.csv")
    with open(bad, "w", newline="") as f:
        f.write(ROSTER
                + "b1,B,es:11,,,\r\n"            # line 7
                + "b2,B,en,billing,,\r\n"         # line 8
                + "n1,Again,en,,,\r\n"            # line 9: duplicate id
                + "b3,B,en,,fax:2,\r\n"           # line 10
                + "b4,B,en,,\r\n"                 # line 11: 5 fields
                + "b6,\"Two\nlines\",en,,,\r\n"  # lines 12-13: a name on two lines
                + "b5,\"B,en,,,\r\n")             # line 14: unterminated quote
    p = ctl(d, "agent", "import", bad, check=False)
    assert p.returncode == 1, f"a bad roster must exit 1: {p.returncode} {p.stderr}"
    lines = p.stderr.strip().splitlines()
    for n, word in ((7, "es"), (8, "billing"), (9, "n1"), (10, "fax"), (11, "header"),
                    (12, "name"), (14, "unterminated")):
        want = f"{bad}:{n}: "
        hit = [ln for ln in lines if ln.startswith(want)]
        assert len(hit) == 1 and word in hit[0], \
            f"want one error line starting {want!r} mentioning {word!r}; stderr:\n{p.stderr}"
    assert not any(ln.startswith(f"{bad}:{n}:") for n in (2, 3, 5, 6, 13)
                   for ln in lines), p.stderr
    assert "nothing imported" in lines[-1], lines[-1]
    assert p.stdout == "", p.stdout
    assert agent_ids(d) == ["keep"], "a bad roster must import nothing"
    assert show(d, "keep")["name"] == "Old Name"

    # --dry-run validates only.
    good = os.path.join(env.dir, "roster.csv")
    with open(good, "w", newline="") as f:
        f.write(ROSTER)
    p = ctl(d, "agent", "import", good, "--dry-run")
    assert "4 rows" in p.stdout and "nothing imported" in p.stdout, p.stdout
    assert agent_ids(d) == ["keep"], "--dry-run must import nothing"

    # The real import: id,token lines for the new agents only.
    p = ctl(d, "agent", "import", good)
    rows = dict(ln.split(",") for ln in p.stdout.splitlines())
    assert sorted(rows) == ["n1", "n2", "n3"], f"want id,token for new agents only: {p.stdout!r}"
    assert all(TOKEN_RE.match(t) for t in rows.values()), rows
    assert "3 created, 1 updated" in p.stderr, p.stderr
    assert agent_ids(d) == ["keep", "n1", "n2", "n3"]

    k = show(d, "keep")
    assert k["name"] == "Kept Agent" and k["languages"] == {"en": 9} \
        and k["skills"] == {"billing": 3} and k["tenants"] == ["acme"], k
    n1 = show(d, "n1")
    assert n1["name"] == "Núñez, Luis" and n1["languages"] == {"es": 10, "en": 6} \
        and n1["skills"] == {"billing": 7, "refunds": 3} \
        and n1["capacity"] == {"chat": 3, "email": 5, "voice": 0} \
        and sorted(n1["tenants"]) == ["acme", "globex"], n1
    n3 = show(d, "n3")
    assert n3["name"] == "Smith, Jr." and n3["languages"] == {"en": 10, "fr": 4} \
        and n3["capacity"] == {"chat": 0, "email": 0, "voice": 1} \
        and n3["tenants"] == ["globex"], n3
    n2 = show(d, "n2")
    assert n2["name"] == 'Ann "Annie" Lee' and n2["skills"] == {} \
        and n2["tenants"] == ["default"] and n2["capacity"]["chat"] == 1, n2

    assert await can_login(d, "keep", tok_keep), "an existing agent keeps its token"
    assert await can_login(d, "n1", rows["n1"]), "a new agent's printed token logs in"
    assert await can_login(d, "n2", rows["n2"])

    # Importing again updates everyone and issues no token.
    j = ctl_json(d, "agent", "import", good)
    assert j == {"created": [], "updated": ["keep", "n1", "n2", "n3"]}, j
    assert await can_login(d, "n1", rows["n1"])

    # Missing required column; missing file.
    hdr = os.path.join(env.dir, "hdr.csv")
    with open(hdr, "w") as f:
        f.write("id,name\nz,Z\n")
    p = ctl(d, "agent", "import", hdr, check=False)
    assert p.returncode == 1 and f"{hdr}:1: " in p.stderr and "languages" in p.stderr, p.stderr
    fails(d, 1, "agent", "import", os.path.join(env.dir, "missing.csv"), mentions=("missing",))


@time_limit(90)
def test_supervises(env):
    d = env.daemon(env.redis())
    ctl(d, "agent", "add", "--id", "sup", "--name", "Sue", "--languages", "en",
        "--supervises", "a1,b1")
    a = show(d, "sup")
    assert a["supervises"] == ["a1", "b1"], a
    out = ctl(d, "agent", "show", "sup").stdout
    assert "supervises     a1,b1" in out, out
    ctl(d, "agent", "add", "--id", "a1", "--name", "Al", "--languages", "en")
    assert show(d, "a1")["supervises"] == [], "supervises nobody: [] (not {})"
    # update changes only what it is given; "" supervises nobody
    ctl(d, "agent", "update", "--id", "sup", "--name", "Sue R")
    assert show(d, "sup")["supervises"] == ["a1", "b1"]
    ctl(d, "agent", "update", "--id", "sup", "--supervises", "b1, c1")
    assert show(d, "sup")["supervises"] == ["b1", "c1"]
    lst = {a["id"]: a for a in ctl_json(d, "agent", "list")}
    assert lst["sup"]["supervises"] == ["b1", "c1"] and lst["a1"]["supervises"] == [], lst
    out = ctl(d, "agent", "list").stdout.splitlines()
    col = out[0].index("SUPERVISES")
    row = next(ln for ln in out if ln.startswith("sup "))
    assert row[col:].startswith("b1,c1 "), out
    ctl(d, "agent", "update", "--id", "sup", "--supervises", "")
    assert show(d, "sup")["supervises"] == []
    # add replaces: an add without --supervises supervises nobody
    ctl(d, "agent", "update", "--id", "sup", "--supervises", "a1")
    ctl(d, "agent", "add", "--id", "sup", "--name", "Sue", "--languages", "en")
    assert show(d, "sup")["supervises"] == []
    # ids are checked like other ids, before Redis is called
    fails(d, 2, "agent", "update", "--id", "sup", "--supervises", "a b", mentions=("--supervises",))
    fails(d, 2, "agent", "update", "--id", "sup", "--supervises", "a1,a1", mentions=("twice",))
    fails(d, 2, "agent", "update", "--id", "sup", "--supervises", "sup", mentions=("itself",))
    fails(d, 2, "agent", "update", "--id", "sup", "--supervises", "x" * 129,
          mentions=("--supervises",))
    fails(d, 2, "agent", "skills", "--id", "sup", "--add", "x:1", "--supervises", "a1",
          mentions=("--supervises",))
    # the roster's optional supervises column
    roster = os.path.join(env.dir, "team.csv")
    with open(roster, "w", newline="") as f:
        f.write("id,name,languages,supervises\r\nlead,Lead,en,a1|sup\r\nsup,Sue,en,\r\n")
    ctl(d, "agent", "import", roster)
    assert show(d, "lead")["supervises"] == ["a1", "sup"]
    assert show(d, "sup")["supervises"] == [], "an empty cell keeps the current list"
    with open(roster, "w", newline="") as f:
        f.write("id,name,languages,supervises\r\nlead,Lead,en,lead\r\n")
    p = ctl(d, "agent", "import", roster, check=False)
    assert p.returncode == 1 and f"{roster}:2: " in p.stderr and "itself" in p.stderr, p.stderr


@time_limit(120)
async def test_explain(env):
    d = env.daemon(env.redis())
    tok = add_agent(d, "es1", "Luis", "es", 2)
    ctl(d, "agent", "add", "--id", "en1", "--name", "Emma", "--languages", "en")
    es1 = Agent(d.url, "es1", tok)
    cust = Customer(d.url, "customer (es)")
    try:
        await es1.login()
        await es1.presence("available")
        await cust.hello(language="es-MX", name="Ana")
        await cust.send("hola", id="c-1")
        await es1.wait_item(lambda f: f.get("type") == "assigned"
                            and f.get("conversation_id") == cust.conversation_id, 10,
                            "assigned")
        e = ctl_json(d, "explain", cust.conversation_id)
        assert e.get("conversation") == cust.conversation_id and e.get("agent") == "es1", e
        assert e.get("language_matched") == "es" and e.get("queue") == "default", e
        assert isinstance(e.get("candidates"), list) and \
            [c.get("agent") for c in e["candidates"]] == ["es1"], e
        out = ctl(d, "explain", cust.conversation_id).stdout
        for want in (f"conversation  {cust.conversation_id}", "queue         default",
                     "agent         es1", "language      es-MX, matched es",
                     "candidates    es1", "strategy      least_loaded"):
            assert want in out, f"explain output lacks {want!r}:\n{out}"
        fails(d, 1, "explain", "no-such-conv", mentions=("no-such-conv",))

        a = show(d, "es1")
        assert a["conversations"] == [cust.conversation_id] and a["load"]["chat"] == 1, a
        fails(d, 1, "agent", "remove", "es1", mentions=("es1", "open conversations"))
        assert "es1" in agent_ids(d)
    finally:
        await es1.close()
        await cust.close()


@time_limit(60)
async def test_token_issue_and_revoke(env):
    r = env.redis()
    d = env.daemon(r)
    first = add_agent(d, "ana", "Ana", "en", 1)
    second = ctl(d, "token", "issue", "ana").stdout.strip()
    assert TOKEN_RE.match(second) and second != first, second
    assert not await can_login(d, "ana", first), "the old token must stop working"
    desk = Agent(d.url, "ana", second)
    await desk.login()
    assert ctl(d, "token", "revoke", "ana").stdout.strip() == "revoked ana"
    code, why = await desk.conn.wait_closed(10, "the logged-in desktop is logged out")
    err = desk.conn.find(lambda f: f.get("type") == "error")
    assert (code, why) == (1008, "logged-out") and err and err.get("code") == "logged-out" \
        and "revoked" in err.get("reason", ""), (code, why, err)
    assert not await can_login(d, "ana", second), "a revoked token must not log in"
    shown = ctl_json(d, "agent", "show", "ana")
    assert (shown["presence"], shown["reason"]) == ("offline", "token-revoked"), shown
    assert "token_sha" not in r.client().hgetall("omr:{default}:agent:ana")
    third = ctl(d, "token", "issue", "ana").stdout.strip()
    assert await can_login(d, "ana", third), "a new token works again"
    fails(d, 1, "token", "revoke", "nobody", mentions=("nobody",))


if __name__ == "__main__":
    run_tests([test_agent_lifecycle, test_skills_state_list, test_usage_errors, test_import,
               test_supervises, test_explain, test_token_issue_and_revoke])
