"""test_roster_edges.py - the roster import and the agent table as a site's workforce person
meets them with files from real spreadsheets (a review of omnirouterctl). Each test failed
against the binary it was written for; the docstring says what the user saw.

Run: cd /work/main && OMR_BUILD_DIR=build/asan python3 tests/integration/test_roster_edges.py [NAME]
"""
import json
import os
import subprocess
import sys
import unicodedata

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from omr_harness import CTL_BIN, _sanitizer_env, ctl, run_tests, time_limit  # noqa: E402

HEADER = "id,name,languages,capacity\n"


def write(env, name, data):
    path = os.path.join(env.dir, name)
    with open(path, "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())
    return path


def agent_ids(d):
    return sorted(a["id"] for a in json.loads(ctl(d, "--json", "agent", "list").stdout))


@time_limit(60)
def test_unreadable_header_names_the_file_format(env):
    """A roster whose first line cannot be read (Excel's "Unicode Text", which is UTF-16;
    Excel for Mac's "CSV (Macintosh)", whose lines end in CR alone; a stray quote) was
    reported as "FILE:1: NUL byte" and then "out of memory". It says what is wrong with the
    file and what to save it as, and nothing is imported."""
    d = env.daemon(env.redis())
    cases = {
        "utf16.csv": ("\ufeff" + HEADER + "a1,Ana,en,chat:2\n").encode("utf-16-le"),
        "mac.csv": (HEADER + "a1,Ana,en,chat:2\n").replace("\n", "\r").encode(),
        "quote.csv": ('id,"name,languages\na1,Ana,en\n').encode(),
    }
    hints = {"utf16.csv": "UTF-16", "mac.csv": "CR alone", "quote.csv": "quoted"}
    for name, data in cases.items():
        path = write(env, name, data)
        for dry in ([], ["--dry-run"]):
            p = ctl(d, "agent", "import", *dry, path, check=False)
            assert p.returncode == 1, (name, p.returncode, p.stderr)
            assert "out of memory" not in p.stderr, (name, p.stderr)
            assert f"{path}:1: " in p.stderr and hints[name] in p.stderr, (name, p.stderr)
            assert "nothing imported" in p.stderr, (name, p.stderr)
    assert agent_ids(d) == []


@time_limit(60)
def test_spreadsheet_empty_rows_are_skipped(env):
    """Spreadsheets write rows that were used once and cleared as ",,,": each was refused
    ("id '': ...") and the whole roster with it. They are skipped like blank lines."""
    d = env.daemon(env.redis())
    path = write(env, "roster.csv", HEADER + "a1,Ana,en,chat:2\n,,,\n"
                 "a2,Bo,es,chat:2\n,,,\n,,,\r\n")
    p = ctl(d, "agent", "import", path)
    assert "2 created" in p.stderr, p.stderr
    assert agent_ids(d) == ["a1", "a2"]
    # before the header too: a sheet whose first row was used once and cleared
    first = write(env, "first.csv", ",,,\n" + HEADER + "a4,Di,en,chat:2\n")
    p = ctl(d, "agent", "import", first)
    assert "1 created" in p.stderr, p.stderr
    # a row with one cell filled is still a row, and still refused
    bad = write(env, "bad.csv", HEADER + "a3,Cy,en,chat:2\n,,en,\n")
    p = ctl(d, "agent", "import", bad, check=False)
    assert p.returncode == 1 and f"{bad}:3: " in p.stderr, p.stderr


@time_limit(60)
def test_tokens_are_not_lost_silently_when_stdout_fails(env):
    """`omnirouterctl agent import roster.csv > new-tokens.csv` on a full disk (here
    /dev/full) created the agents, lost every token (the only copy: they are stored hashed)
    and exited 0 saying "2 created". `agent add` the same. Now the write error is reported,
    the import stops at the first lost token and names the agent, and the exit is 1."""
    d = env.daemon(env.redis())
    path = write(env, "roster.csv", HEADER + "a1,Ana,en,chat:2\na2,Bo,es,chat:2\n")
    with open("/dev/full", "w") as full:
        p = subprocess.run([CTL_BIN, "-c", d.cfg_path, "agent", "import", path], stdout=full,
                           stderr=subprocess.PIPE, text=True, env=_sanitizer_env(), timeout=30)
        assert p.returncode == 1, (p.returncode, p.stderr)
        assert "cannot write the token of agent a1" in p.stderr, p.stderr
        assert "token issue a1" in p.stderr and "created" not in p.stderr, p.stderr
        assert agent_ids(d) == ["a1"], "the import goes on after a lost token"
        p = subprocess.run([CTL_BIN, "-c", d.cfg_path, "agent", "add", "--id", "b1", "--name",
                            "Bea", "--languages", "en"], stdout=full, stderr=subprocess.PIPE,
                           text=True, env=_sanitizer_env(), timeout=30)
        assert p.returncode == 1, (p.returncode, p.stderr)
        assert "cannot write to standard output" in p.stderr, p.stderr


@time_limit(60)
def test_agent_list_columns_line_up_with_wide_names(env):
    """`agent list` padded its columns by code points: CJK names and emoji take two
    terminal columns, so every column after NAME was shifted on their rows."""
    d = env.daemon(env.redis())
    for aid, name in (("a1", "Ana Lima"), ("a2", "王小明"), ("a3", "김민준"), ("a4", "Zoë 🙂")):
        ctl(d, "agent", "add", "--id", aid, "--name", name, "--languages", "en")
    lines = ctl(d, "agent", "list").stdout.splitlines()

    def column_of(line, text):
        """The terminal column where text starts in line (East Asian wide: 2 columns)."""
        return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1
                   for ch in line[:line.index(text)])

    want = column_of(lines[0], "TENANTS")
    rows = [ln for ln in lines[1:] if ln.strip()]
    assert len(rows) == 4, lines
    for row in rows:
        assert column_of(row, "default") == want, "\n".join(lines)


if __name__ == "__main__":
    run_tests([test_unreadable_header_names_the_file_format,
               test_spreadsheet_empty_rows_are_skipped,
               test_tokens_are_not_lost_silently_when_stdout_fails,
               test_agent_list_columns_line_up_with_wide_names])
