"""test_docs_edges.py - what a client written from docs/PROTOCOL.md alone ran
into (a review of 2026-12-07), kept as tests.

    OMR_BUILD_DIR=build/asan python3 tests/integration/test_docs_edges.py [NAME...]
"""

import asyncio
import os
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from omr_harness import add_agent, run_tests, time_limit  # noqa: E402
from test_protocol import assigned_pair, cust_conn, refused, req, start  # noqa: E402


@time_limit(60)
async def test_resume_after_a_seq_the_transcript_never_had(env):
    """PROTOCOL.md "Resume": `after` is the last seq the client saw. One that is malformed or
    in the future was welcomed, and then nothing ever came on that connection (Redis refused
    the read, or had nothing after it). Now it is bad-request, the connection stays open, and
    a resume without it works."""
    _, d = start(env)
    tok = add_agent(d, "ana", "Ana", "en", 2)
    aconn, c, w, a = await assigned_pair(env, d, tok)
    conv = w["conversation_id"]
    last = (await req(c, {"type": "message", "id": "c-1", "text": "x"}))["seq"]
    last_ms = int(last.split('-')[0])
    bad = [f"{last_ms + 600000}-0", "99999999999999-0", "99999999999999999999999-0",
           "1700000000000", "abc", "1-2-3"]
    resume = {"type": "resume", "conversation_id": conv, "resume_token": w["resume_token"]}
    for i, after in enumerate(bad):
        c2 = await cust_conn(d, f"resume after {after}")
        await refused(env, c2, {**resume, "after": after, "id": f"r{i}"}, "bad-request",
                      what=f"resume after={after!r}")
        # The same connection resumes without it, and gets live items.
        await c2.send({**resume, "id": f"again{i}"})
        await c2.wait_for(lambda f: f.get("type") == "welcome", 10, "welcome")
        await req(aconn, {"type": "message", "conversation_id": conv, "id": f"a-{i}",
                          "text": "live"})
        await c2.wait_for(lambda f: f.get("id") == f"a-{i}", 5, "the live agent message")
        await c2.close()
    # The last seq itself is a good `after`: nothing before it comes again, live items do.
    # So is a past one the transcript does not have (Redis lost its last second).
    await asyncio.sleep(0.05)
    for i, after in enumerate([last, f"{last_ms + 1}-0"]):
        c3 = await cust_conn(d, f"resume after {after}")
        await c3.send({**resume, "after": after, "id": f"r-last{i}"})
        await c3.wait_for(lambda f: f.get("type") == "welcome", 10, "welcome")
        await req(aconn, {"type": "message", "conversation_id": conv, "id": f"a-last{i}",
                          "text": "live"})
        await c3.wait_for(lambda f: f.get("id") == f"a-last{i}", 5, "the live agent message")
        await asyncio.sleep(0.3)
        env.expect(not any(f.get("id") == "c-1" for f in c3.frames),
                   f"after {after}: an item at or before `after` came again")
        await c3.close()
    await c.close()
    await aconn.close()


if __name__ == "__main__":
    run_tests([test_resume_after_a_seq_the_transcript_never_had])
