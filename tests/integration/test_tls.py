"""test_tls.py - with websocket.tls_cert/tls_key the daemon serves https and
wss only: the pages and /healthz over https, a customer and an agent chat over
wss, and a plain-text client gets nothing. The certificate is made here with
openssl (self-signed for 127.0.0.1)."""

import asyncio
import json
import os
import socket
import ssl
import subprocess
import sys
import urllib.request

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import omr_harness  # noqa: E402
from omr_harness import add_agent, run_tests, time_limit  # noqa: E402
import websockets  # noqa: E402  (Debian's, found by omr_harness)


def make_cert(d):
    cert, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", key, "-out", cert], check=True, capture_output=True)
    return cert, key


@time_limit(60)
async def test_https_and_wss(env):
    cert, key = make_cert(env.dir)
    r = env.redis()
    d = env.daemon(r, config={"websocket": {"tls_cert": cert, "tls_key": key}}, start=False)
    ctx = ssl.create_default_context(cafile=cert)
    # The harness waits for /healthz over http: make it ask over https.
    orig = omr_harness.http_status

    def https_status(port, path, timeout=2.0):
        try:
            with urllib.request.urlopen(f"https://127.0.0.1:{port}{path}", timeout=timeout,
                                        context=ctx) as resp:
                return resp.status
        except OSError:
            return None
    omr_harness.http_status = https_status
    try:
        d.start()
    finally:
        omr_harness.http_status = orig
    with urllib.request.urlopen(f"https://127.0.0.1:{d.port}/", context=ctx) as resp:
        page = resp.read().decode()
    assert resp.status == 200 and "<html" in page.lower(), page[:200]
    # Plain http on the TLS port: refused, no page.
    with socket.create_connection(("127.0.0.1", d.port), timeout=5) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        s.settimeout(5)
        try:
            got = s.recv(4096)
        except OSError:
            got = b""
    assert b"<html" not in got.lower(), got[:200]

    token = add_agent(d, "a1", "Alex", "en", 1)
    url = f"wss://127.0.0.1:{d.port}"
    async with websockets.connect(url + "/ws/agent", ssl=ctx) as agent, \
            websockets.connect(url + "/ws/customer", ssl=ctx) as cust:
        await agent.send(json.dumps({"type": "login", "v": 1, "agent_id": "a1", "token": token}))
        assert json.loads(await agent.recv())["type"] == "welcome"
        await agent.send(json.dumps({"type": "presence", "presence": "available", "id": "p"}))
        assert json.loads(await agent.recv())["type"] == "ack"
        await cust.send(json.dumps({"type": "hello", "v": 1, "language": "en"}))
        w = json.loads(await cust.recv())
        assert w["type"] == "welcome" and w["state"] == "assigned", w
        await cust.send(json.dumps({"type": "message", "id": "m1", "text": "over tls"}))
        while True:
            f = json.loads(await asyncio.wait_for(agent.recv(), 10))
            if f.get("type") == "message":
                assert f["text"] == "over tls", f
                break


if __name__ == "__main__":
    run_tests([test_https_and_wss])
