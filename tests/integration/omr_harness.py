"""omr_harness.py - shared helpers for the integration tests.

Each test_*.py file starts the real `omnirouterd` (from OMR_BUILD_DIR) against a
real `redis-server`, on free ports, with a generated config, and talks to it
with real websocket clients speaking docs/PROTOCOL.md. Only the stdlib and
Debian's python3-websockets 10.4 (legacy asyncio API) are used.

What this module gives a test:
  - run_tests(): a tiny runner. One temp dir per test (removed on success,
    kept and printed on failure), a time bound per test, the daemons' log
    tails on failure, a closing "N passed, N failed" line, exit status 1 on
    any failure. `python3 test_x.py NAME...` runs only the named tests.
  - Env: per-test resources: env.redis(), env.daemon(redis, ...). Whatever is
    still running when the test ends is stopped; a daemon must exit 0 on
    SIGTERM within 15 s and its log must hold no sanitizer report.
  - Resp: a small blocking RESP client used only to READ Redis state.
  - ctl(), add_agent(): omnirouterctl with the daemon's config.
  - Conn / Customer / Agent: asyncio websocket clients. Every wait has a
    timeout and fails with what was expected and what arrived instead.
"""

import asyncio
import http.client
import inspect
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback

if "/usr/lib/python3/dist-packages" not in sys.path:
    sys.path.append("/usr/lib/python3/dist-packages")
import websockets  # noqa: E402  (Debian python3-websockets 10.4)
import websockets.exceptions  # noqa: E402
from websockets.frames import OP_BINARY, OP_TEXT  # noqa: E402,F401 (re-exported)

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.environ.get("OMR_SOURCE_DIR") or os.path.dirname(os.path.dirname(HERE))
BUILD_DIR = os.environ.get("OMR_BUILD_DIR") or os.path.join(SOURCE_DIR, "build")
DAEMON_BIN = os.path.join(BUILD_DIR, "omnirouterd")
CTL_BIN = os.path.join(BUILD_DIR, "omnirouterctl")

SANITIZER_RE = re.compile(
    r"AddressSanitizer|UndefinedBehaviorSanitizer|LeakSanitizer|runtime error: |"
    r"ThreadSanitizer|MemorySanitizer")
SEQ_RE = re.compile(r"^[0-9]+-[0-9]+$")
TOKEN_RE = re.compile(r"^[A-Za-z0-9._:@-]{1,128}$")


def _sanitizer_env():
    env = dict(os.environ)
    env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0")
    env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")
    return env


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def seq_key(seq):
    """Orders Redis stream ids ("ms-n") numerically."""
    ms, n = seq.split("-")
    return (int(ms), int(n))


def tail(path, lines=40):
    try:
        with open(path, "r", errors="replace") as f:
            return "".join(f.readlines()[-lines:])
    except OSError as e:
        return f"(cannot read {path}: {e})"


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# --------------------------------------------------------------------------
# Redis: a minimal RESP2 client, to READ state (and to set up a fresh server).

class RedisError(Exception):
    pass


class Resp:
    def __init__(self, port, host="127.0.0.1", timeout=5.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.rf = self.sock.makefile("rb")

    def close(self):
        try:
            self.rf.close()
            self.sock.close()
        except OSError:
            pass

    @staticmethod
    def _encode(args):
        out = [b"*%d\r\n" % len(args)]
        for a in args:
            if isinstance(a, str):
                a = a.encode()
            elif isinstance(a, int):
                a = str(a).encode()
            out.append(b"$%d\r\n%s\r\n" % (len(a), a))
        return b"".join(out)

    def _read(self):
        line = self.rf.readline()
        if not line:
            raise ConnectionError("redis closed the connection")
        kind, rest = line[:1], line[1:-2]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            return RedisError(rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            if n < 0:
                return None
            data = self.rf.read(n + 2)[:-2]
            return data.decode("utf-8", "surrogateescape")
        if kind == b"*":
            n = int(rest)
            if n < 0:
                return None
            return [self._read() for _ in range(n)]
        raise ConnectionError(f"bad RESP reply line {line!r}")

    def cmd(self, *args):
        self.sock.sendall(self._encode(args))
        r = self._read()
        if isinstance(r, RedisError):
            raise r
        return r

    def pipeline(self, cmds):
        self.sock.sendall(b"".join(self._encode(c) for c in cmds))
        return [self._read() for _ in cmds]

    def hgetall(self, key):
        flat = self.cmd("HGETALL", key) or []
        return dict(zip(flat[0::2], flat[1::2]))

    def xrange(self, key):
        out = []
        for entry_id, flat in self.cmd("XRANGE", key, "-", "+") or []:
            out.append((entry_id, dict(zip(flat[0::2], flat[1::2]))))
        return out

    def keys(self, pattern):
        cursor, found = "0", []
        while True:
            cursor, batch = self.cmd("SCAN", cursor, "MATCH", pattern, "COUNT", 1000)
            found.extend(batch)
            if cursor == "0":
                return sorted(set(found))


class RedisServer:
    def __init__(self, env, name="redis"):
        self.env = env
        self.name = name
        self.port = free_port()
        self.dir = os.path.join(env.dir, name)
        os.makedirs(self.dir, exist_ok=True)
        self.logpath = os.path.join(self.dir, "redis.log")
        self.proc = None

    def start(self, timeout=10):
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no", "--dir", self.dir,
             "--logfile", self.logpath, "--daemonize", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"redis-server exited ({self.proc.returncode}):\n"
                                     + tail(self.logpath))
            try:
                c = Resp(self.port, timeout=1)
                try:
                    if c.cmd("PING") == "PONG":
                        return self
                finally:
                    c.close()
            except (OSError, RedisError):
                time.sleep(0.05)
        raise AssertionError(f"redis-server on port {self.port} did not answer PING in "
                             f"{timeout}s:\n" + tail(self.logpath))

    def client(self):
        return Resp(self.port)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


# --------------------------------------------------------------------------
# The daemon.

def _yaml_scalar(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    return json.dumps(str(v))  # a JSON string is a valid YAML double-quoted scalar


def write_config(path, sections):
    with open(path, "w") as f:
        for section, opts in sections.items():
            f.write(f"{section}:\n")
            for k, v in opts.items():
                f.write(f"  {k}: {_yaml_scalar(v)}\n")


class Daemon:
    """One omnirouterd. The config is written once; start() may be called
    again after kill()/stop() and reuses the same ports and config."""

    def __init__(self, env, redis, name="d1", config=None):
        self.env = env
        self.name = name
        self.redis = redis
        self.port = free_port()
        self.cfg_path = os.path.join(env.dir, f"{name}.yaml")
        sections = {
            "log": {"level": "info"},
            "daemon": {"instance_name": name},
            "redis": {"host": "127.0.0.1", "port": redis.port,
                      "ping_interval_ms": 500, "ping_timeout_ms": 2000,
                      "reconnect_min_ms": 50, "reconnect_max_ms": 500},
            "bus": {"ack_timeout_ms": 300},
            "websocket": {"listen": "127.0.0.1", "port": self.port,
                          "static_dir": os.path.join(SOURCE_DIR, "web")},
        }
        for sec, opts in (config or {}).items():
            sections.setdefault(sec, {}).update(opts)
        write_config(self.cfg_path, sections)
        self.proc = None
        self.logs = []
        self.starts = 0
        self.scanned = set()

    @property
    def url(self):
        return f"ws://127.0.0.1:{self.port}"

    @property
    def logpath(self):
        return self.logs[-1] if self.logs else None

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def launch(self):
        """Starts the process and returns its log path, without waiting for it to listen
        (a daemon that never gets Redis ready never does)."""
        if not os.access(DAEMON_BIN, os.X_OK):
            raise AssertionError(f"{DAEMON_BIN} is missing (set OMR_BUILD_DIR)")
        self.starts += 1
        path = os.path.join(self.env.dir, f"{self.name}.{self.starts}.log")
        self.logs.append(path)
        with open(path, "wb") as logf:
            self.proc = subprocess.Popen([DAEMON_BIN, "-c", self.cfg_path],
                                         stdin=subprocess.DEVNULL, stdout=logf, stderr=logf,
                                         cwd=SOURCE_DIR, env=_sanitizer_env())
        return path

    def start(self, timeout=20):
        path = self.launch()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"{self.name}: omnirouterd exited with {self.proc.returncode} before "
                    f"/healthz answered; log tail:\n{tail(path)}")
            if http_status(self.port, "/healthz", timeout=1) == 200:
                log(f"{self.name}: ready on port {self.port} (pid {self.proc.pid})")
                return self
            time.sleep(0.05)
        self.proc.kill()
        self.proc.wait()
        raise AssertionError(f"{self.name}: /healthz on port {self.port} not 200 within "
                             f"{timeout}s; log tail:\n{tail(path)}")

    def stop(self, timeout=15):
        """SIGTERM; asserts exit 0 within `timeout` and a clean log."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError(f"{self.name}: did not exit within {timeout}s of SIGTERM; "
                                     f"log tail:\n{tail(self.logpath)}")
        rc = self.proc.returncode
        self.scan_logs()
        if rc != 0:
            raise AssertionError(f"{self.name}: exit status {rc} after SIGTERM (want 0); "
                                 f"log tail:\n{tail(self.logpath)}")

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
            log(f"{self.name}: SIGKILLed")

    def scan_logs(self):
        for path in self.logs:
            if path in self.scanned:
                continue
            self.scanned.add(path)
            with open(path, "r", errors="replace") as f:
                text = f.read()
            m = SANITIZER_RE.search(text)
            if m:
                start = max(0, m.start() - 2000)
                raise AssertionError(f"{self.name}: sanitizer report in {path}:\n"
                                     f"{text[start:m.start() + 6000]}")

    def log_text(self):
        out = []
        for path in self.logs:
            with open(path, "r", errors="replace") as f:
                out.append(f.read())
        return "".join(out)


def http_get(port, path, timeout=2.0):
    """(status, body text) of GET path on 127.0.0.1:port, or (None, the error)."""
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        try:
            c.request("GET", path)
            r = c.getresponse()
            return r.status, r.read().decode(errors="replace")
        finally:
            c.close()
    except (OSError, http.client.HTTPException) as e:
        return None, str(e)


def http_status(port, path, timeout=2.0):
    return http_get(port, path, timeout)[0]


def ctl(daemon_or_cfg, *args, check=True, timeout=30):
    cfg = daemon_or_cfg.cfg_path if isinstance(daemon_or_cfg, Daemon) else daemon_or_cfg
    argv = [CTL_BIN, "-c", cfg, *args]
    p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                       env=_sanitizer_env())
    if check and p.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} exited {p.returncode}\nstdout: {p.stdout}\n"
                             f"stderr: {p.stderr}")
    if SANITIZER_RE.search(p.stderr):
        raise AssertionError(f"sanitizer report from omnirouterctl {' '.join(args)}:\n{p.stderr}")
    return p


def add_agent(daemon, agent_id, name, languages, capacity=None, tenant=None, extra=()):
    """Creates the agent with omnirouterctl (extra: more of its options); returns its
    token."""
    args = ["agent", "add", "--id", agent_id, "--name", name, "--languages", languages]
    if capacity is not None:
        args += ["--capacity", str(capacity)]
    if tenant:
        args += ["--tenant", tenant]
    args += list(extra)
    out = ctl(daemon, *args).stdout
    lines = [ln for ln in out.splitlines() if ln.strip()]
    if len(lines) != 1 or not TOKEN_RE.match(lines[0].strip()):
        raise AssertionError(f"agent add {agent_id}: expected the token alone on stdout, got "
                             f"{out!r}")
    return lines[0].strip()


# --------------------------------------------------------------------------
# The runner.

class Env:
    def __init__(self, name):
        self.name = name
        self.dir = tempfile.mkdtemp(prefix=f"omr-{name}-")
        self.daemons = []
        self.redises = []
        self.soft = []

    def expect(self, cond, msg):
        """A check that does not stop the test: it fails at the end, so one run
        shows every mismatch of a flow and not only the first."""
        if not cond:
            self.soft.append(str(msg))
            log(f"CHECK FAILED: {msg}")
        return cond

    def redis(self, name="redis"):
        r = RedisServer(self, name)
        self.redises.append(r)
        return r.start()

    def daemon(self, redis, name="d1", config=None, start=True, queues=None):
        """queues: YAML text of a queues section, appended to the config."""
        d = Daemon(self, redis, name, config)
        self.daemons.append(d)
        if queues:
            with open(d.cfg_path, "a") as f:
                f.write(queues)
        return d.start() if start else d

    def finish(self, ok):
        """Stops everything. On success a daemon's unclean exit is a failure;
        on failure it is reported too, but the first error stays the cause."""
        errors = []
        for d in self.daemons:
            try:
                if d.running() or ok:
                    d.stop()
                else:
                    d.scan_logs()
            except AssertionError as e:
                errors.append(str(e))
            except Exception as e:  # noqa: BLE001
                errors.append(f"{d.name}: {e!r}")
        for r in self.redises:
            r.stop()
        return errors

    def dump_logs(self):
        for d in self.daemons:
            for path in d.logs:
                print(f"--- {path} (tail) ---\n{tail(path, 60)}", flush=True)


def time_limit(seconds):
    """Decorator: the test fails if it runs longer than `seconds`."""
    def deco(fn):
        fn.time_limit = seconds
        return fn
    return deco


def run_tests(tests):
    wanted = set(sys.argv[1:])
    selected = [t for t in tests if not wanted or t.__name__ in wanted]
    passed = failed = 0
    for t in selected:
        env = Env(t.__name__)
        log(f"=== {t.__name__} (dir {env.dir})")
        t0 = time.monotonic()
        ok = True
        try:
            limit = getattr(t, "time_limit", 90)
            if inspect.iscoroutinefunction(t):
                async def bounded():
                    try:
                        await asyncio.wait_for(t(env), limit)
                    except asyncio.TimeoutError:
                        raise AssertionError(f"{t.__name__} did not finish within {limit}s")
                asyncio.run(bounded())
            else:
                t(env)
        except BaseException:  # noqa: BLE001
            ok = False
            traceback.print_exc()
            sys.stdout.flush()
        if env.soft:
            ok = False
            print(f"{len(env.soft)} check(s) failed:\n  " + "\n  ".join(env.soft), flush=True)
        errors = env.finish(ok)
        if errors:
            for e in errors:
                print(f"CLEANUP FAILURE: {e}", flush=True)
            ok = False
        dt = time.monotonic() - t0
        if ok:
            passed += 1
            shutil.rmtree(env.dir, ignore_errors=True)
            log(f"PASS {t.__name__} ({dt:.1f}s)")
        else:
            failed += 1
            env.dump_logs()
            log(f"FAIL {t.__name__} ({dt:.1f}s); kept {env.dir}")
    if not selected:
        print(f"no test matches {sorted(wanted)}", flush=True)
        failed += 1
    print(f"{passed} passed, {failed} failed", flush=True)
    sys.exit(0 if failed == 0 else 1)


# --------------------------------------------------------------------------
# Websocket clients.

class Disconnected(AssertionError):
    """The connection closed while a reply was awaited."""


def _short(frames, n=8):
    def one(f):
        f = {k: v for k, v in f.items() if k != "_t"}
        s = json.dumps(f, ensure_ascii=True)
        return s if len(s) < 300 else s[:300] + "..."
    return "\n    ".join(one(f) for f in frames[-n:]) or "(none)"


async def wait_until(cond, check, timeout, describe):
    """Waits under asyncio.Condition `cond` until check() returns non-None."""
    async def inner():
        async with cond:
            while True:
                r = check()
                if r is not None:
                    return r
                await cond.wait()
    try:
        return await asyncio.wait_for(inner(), timeout)
    except asyncio.TimeoutError:
        raise AssertionError(describe() if callable(describe) else describe) from None


class Conn:
    """One websocket connection. Every frame received is kept in `frames`
    (JSON-decoded; a non-JSON text frame becomes {"_raw": text}, a binary one
    {"_binary": bytes})."""

    def __init__(self, ws, label, cond, on_frame):
        self.ws = ws
        self.label = label
        self.cond = cond
        self.on_frame = on_frame
        self.frames = []
        self.closed = False
        self.reader = asyncio.get_running_loop().create_task(self._read())

    @classmethod
    async def open(cls, url, label, cond=None, on_frame=None, **kw):
        opts = dict(compression=None, ping_interval=None, max_size=None, open_timeout=30,
                    close_timeout=2)
        opts.update(kw)
        ws = await websockets.connect(url, **opts)
        return cls(ws, label, cond or asyncio.Condition(), on_frame)

    async def _read(self):
        try:
            async for msg in self.ws:
                if isinstance(msg, bytes):
                    f = {"_binary": msg}
                else:
                    try:
                        f = json.loads(msg)
                        if not isinstance(f, dict):
                            f = {"_raw": msg}
                    except ValueError:
                        f = {"_raw": msg}
                f["_t"] = time.monotonic()
                self.frames.append(f)
                if self.on_frame:
                    try:
                        await self.on_frame(self, f)
                    except websockets.exceptions.ConnectionClosed:
                        pass
                async with self.cond:
                    self.cond.notify_all()
        except websockets.exceptions.ConnectionClosed:
            pass
        except Exception as e:  # noqa: BLE001
            log(f"{self.label}: reader error {e!r}")
        finally:
            self.closed = True
            async with self.cond:
                self.cond.notify_all()

    @property
    def close_code(self):
        return self.ws.close_code

    @property
    def close_reason(self):
        return self.ws.close_reason

    async def send(self, obj):
        await self.ws.send(json.dumps(obj))

    async def send_text(self, text):
        await self.ws.send(text)

    async def send_frame(self, opcode, data):
        await self.ws.write_frame(True, opcode, data)

    def find(self, pred, start=0):
        for f in self.frames[start:]:
            if pred(f):
                return f
        return None

    async def wait_for(self, pred, timeout, what, start=0):
        def check():
            f = self.find(pred, start)
            if f is not None:
                return f
            if self.closed:
                raise Disconnected(
                    f"{self.label}: connection closed (code {self.close_code}, reason "
                    f"{self.close_reason!r}) while waiting for {what}; frames:\n    "
                    f"{_short(self.frames[start:])}")
            return None
        return await wait_until(self.cond, check, timeout, lambda: (
            f"{self.label}: no {what} within {timeout}s; frames received:\n    "
            f"{_short(self.frames[start:])}"))

    async def wait_closed(self, timeout, what="close"):
        try:
            await asyncio.wait_for(asyncio.shield(self.reader), timeout)
        except asyncio.TimeoutError:
            raise AssertionError(f"{self.label}: connection still open {timeout}s after "
                                 f"{what}; frames:\n    {_short(self.frames)}") from None
        return self.close_code, self.close_reason

    async def request(self, obj, timeout=10):
        """Sends obj (with an "id") and returns the ack or error echoing it."""
        start = len(self.frames)
        rid = obj["id"]
        await self.send(obj)
        return await self.wait_for(
            lambda f: f.get("type") in ("ack", "error") and f.get("id") == rid,
            timeout, f"ack/error for {obj.get('type')} id={rid}", start)

    async def expect_error(self, code, timeout=10, start=0, echo_id=None):
        f = await self.wait_for(lambda f: f.get("type") == "error", timeout,
                                f"error {code}", start)
        if f.get("code") != code:
            raise AssertionError(f"{self.label}: expected error {code}, got {f}")
        if echo_id is not None and f.get("id") != echo_id:
            raise AssertionError(f"{self.label}: error {code} should echo id {echo_id!r}: {f}")
        return f

    async def expect_open(self, settle=0.3):
        """Asserts the server did not close the connection (after `settle`)."""
        await asyncio.sleep(settle)
        if self.closed:
            raise AssertionError(f"{self.label}: server closed the connection (code "
                                 f"{self.close_code} {self.close_reason!r}) but it should stay "
                                 f"open; frames:\n    {_short(self.frames)}")

    async def close(self):
        try:
            await asyncio.wait_for(self.ws.close(), 5)
        except Exception:  # noqa: BLE001
            pass
        self.reader.cancel()


ITEM_TYPES = ("message", "event", "assigned", "closed")
# What an agent desktop receives with a seq (and acknowledges).
AGENT_ITEM_TYPES = ("assigned", "message", "closed", "offer", "revoked", "event")


class Customer:
    """A chat customer. Keeps its conversation across reconnects; items
    (frames with a seq) are de-duplicated by seq in `items` (seq -> frame)
    and `order` (first-seen order)."""

    def __init__(self, base_url, label="customer"):
        self.base_url = base_url
        self.label = label
        self.cond = asyncio.Condition()
        self.conn = None
        self.conversation_id = None
        self.resume_token = None
        self.tenant = None
        self.items = {}
        self.order = []
        self.counter = 0

    async def _on_frame(self, conn, f):
        if f.get("type") in ("message", "event") and isinstance(f.get("seq"), str):
            if f["seq"] not in self.items:
                self.items[f["seq"]] = f
                self.order.append(f)

    @property
    def last_seq(self):
        seqs = [s for s in self.items if SEQ_RE.match(s)]
        return max(seqs, key=seq_key) if seqs else None

    async def connect(self):
        self.conn = await Conn.open(self.base_url + "/ws/customer", self.label, self.cond,
                                    self._on_frame)
        return self.conn

    async def hello(self, language=None, name=None, tenant=None, timeout=10, **extra):
        if self.conn is None or self.conn.closed:
            await self.connect()
        msg = {"type": "hello", "v": 1}
        if language is not None:
            msg["language"] = language
        if name is not None:
            msg["name"] = name
        if tenant is not None:
            msg["tenant"] = tenant
        msg.update(extra)
        start = len(self.conn.frames)
        await self.conn.send(msg)
        w = await self.conn.wait_for(lambda f: f.get("type") in ("welcome", "error"), timeout,
                                     "welcome after hello", start)
        if w.get("type") != "welcome":
            raise AssertionError(f"{self.label}: hello {msg} refused: {w}")
        for k in ("conversation_id", "resume_token"):
            if not isinstance(w.get(k), str) or not TOKEN_RE.match(w[k]):
                raise AssertionError(f"{self.label}: welcome lacks a valid {k}: {w}")
        if w.get("state") not in ("queued", "assigned"):
            raise AssertionError(f"{self.label}: welcome state must be queued|assigned: {w}")
        self.conversation_id = w["conversation_id"]
        self.resume_token = w["resume_token"]
        self.tenant = tenant
        return w

    async def resume(self, after="last", timeout=10, reconnect=True):
        if reconnect or self.conn is None or self.conn.closed:
            await self.connect()
        msg = {"type": "resume", "v": 1, "conversation_id": self.conversation_id,
               "resume_token": self.resume_token}
        if after == "last":
            after = self.last_seq
        if after is not None:
            msg["after"] = after
        if self.tenant is not None:
            msg["tenant"] = self.tenant
        start = len(self.conn.frames)
        await self.conn.send(msg)
        w = await self.conn.wait_for(lambda f: f.get("type") in ("welcome", "error"), timeout,
                                     "welcome after resume", start)
        if w.get("type") != "welcome" or w.get("conversation_id") != self.conversation_id:
            raise AssertionError(f"{self.label}: resume refused or wrong conversation: {w}")
        return w

    def next_id(self):
        self.counter += 1
        return f"c-{self.counter}"

    async def send(self, text, id=None, timeout=10):
        """Sends a message; returns the ack (asserting its id and seq)."""
        mid = id or self.next_id()
        r = await self.conn.request({"type": "message", "id": mid, "text": text}, timeout)
        if r.get("type") != "ack":
            raise AssertionError(f"{self.label}: message {mid} refused: {r}")
        if not isinstance(r.get("seq"), str) or not SEQ_RE.match(r["seq"]):
            raise AssertionError(f"{self.label}: ack for {mid} lacks a stream-id seq: {r}")
        return r

    async def wait_item(self, pred, timeout, what):
        def check():
            for f in self.order:
                if pred(f):
                    return f
            return None
        return await wait_until(self.cond, check, timeout, lambda: (
            f"{self.label}: no {what} within {timeout}s; items:\n    {_short(self.order, 12)}"))

    def agent_messages(self):
        return [f for f in self.order if f.get("type") == "message" and f.get("from") == "agent"]

    async def close(self):
        if self.conn:
            await self.conn.close()


class Agent:
    """An agent desktop. Acks every item with a seq (assigned, message,
    closed, offer, revoked, event); items are de-duplicated by seq (`items`,
    `order`); on_item(agent, item) is awaited once per new item (run as a task
    so it may send requests). observer(agent, frame), when given, is called
    synchronously, in arrival order, for every new item and every other frame
    (acks, errors, welcome): a test can log and check each event as it comes."""

    def __init__(self, base_url, agent_id, token, label=None, auto_ack=True, on_item=None,
                 observer=None):
        self.base_url = base_url
        self.agent_id = agent_id
        self.token = token
        self.label = label or f"agent {agent_id}"
        self.auto_ack = auto_ack
        self.on_item = on_item
        self.observer = observer
        self.cond = asyncio.Condition()
        self.conn = None
        self.items = {}
        self.order = []
        self.counter = 0
        self.tasks = set()
        self.task_errors = []

    async def _on_frame(self, conn, f):
        if f.get("type") in AGENT_ITEM_TYPES and isinstance(f.get("seq"), str):
            if self.auto_ack:
                await conn.send({"type": "ack", "seq": f["seq"]})
            if f["seq"] not in self.items:
                self.items[f["seq"]] = f
                self.order.append(f)
                if self.observer:
                    self.observer(self, f)
                if self.on_item:
                    t = asyncio.get_running_loop().create_task(self._run_hook(f))
                    self.tasks.add(t)
                    t.add_done_callback(self.tasks.discard)
        elif self.observer:
            self.observer(self, f)

    async def _run_hook(self, f):
        try:
            await self.on_item(self, f)
        except Exception as e:  # noqa: BLE001
            self.task_errors.append(f"{self.label}: on_item({f}) failed: {e!r}")

    async def login(self, timeout=10, token=None, conversations=None):
        """conversations: the ids the desktop shows (PROTOCOL.md login), or
        None to leave the member out."""
        self.conn = await Conn.open(self.base_url + "/ws/agent", self.label, self.cond,
                                    self._on_frame)
        start = len(self.conn.frames)
        frame = {"type": "login", "v": 1, "agent_id": self.agent_id, "token": token or self.token}
        if conversations is not None:
            frame["conversations"] = conversations
        await self.conn.send(frame)
        w = await self.conn.wait_for(lambda f: f.get("type") in ("welcome", "error"), timeout,
                                     "welcome after login", start)
        if w.get("type") != "welcome" or w.get("agent_id") != self.agent_id:
            raise AssertionError(f"{self.label}: login refused: {w}")
        return w

    def next_id(self, prefix="a"):
        self.counter += 1
        return f"{prefix}-{self.agent_id}-{self.counter}"

    async def presence(self, presence, timeout=10):
        r = await self.conn.request({"type": "presence", "presence": presence,
                                     "id": self.next_id("p")}, timeout)
        if r.get("type") != "ack" or r.get("presence") != presence:
            raise AssertionError(f"{self.label}: presence {presence} not acked: {r}")
        return r

    async def reply(self, conversation_id, text, id=None, timeout=10, expect_ack=True):
        r = await self.conn.request({"type": "message", "conversation_id": conversation_id,
                                     "id": id or self.next_id(), "text": text}, timeout)
        if expect_ack and (r.get("type") != "ack" or not SEQ_RE.match(str(r.get("seq")))):
            raise AssertionError(f"{self.label}: reply in {conversation_id} not acked: {r}")
        return r

    async def close_conv(self, conversation_id, timeout=10, expect_ack=True, id=None):
        r = await self.conn.request({"type": "close", "conversation_id": conversation_id,
                                     "id": id or self.next_id("x")}, timeout)
        if expect_ack and r.get("type") != "ack":
            raise AssertionError(f"{self.label}: close {conversation_id} not acked: {r}")
        return r

    async def accept(self, conversation_id, id=None, timeout=10):
        """Accepts an offer; returns the ack or the error (an offer that timed
        out meanwhile is refused with not-assigned)."""
        return await self.conn.request({"type": "accept", "conversation_id": conversation_id,
                                        "id": id or self.next_id("acc")}, timeout)

    async def reject(self, conversation_id, reason="busy", id=None, timeout=10):
        """Declines an offer; returns the ack or the error."""
        msg = {"type": "reject", "conversation_id": conversation_id,
               "id": id or self.next_id("rej")}
        if reason is not None:
            msg["reason"] = reason
        return await self.conn.request(msg, timeout)

    async def wait_item(self, pred, timeout, what):
        def check():
            for f in self.order:
                if pred(f):
                    return f
            return None
        return await wait_until(self.cond, check, timeout, lambda: (
            f"{self.label}: no {what} within {timeout}s; items:\n    {_short(self.order, 12)}"))

    def offers(self, conversation_id=None):
        return [f for f in self.order if f.get("type") == "offer"
                and (conversation_id is None or f.get("conversation_id") == conversation_id)]

    def revoked(self, conversation_id=None):
        return [f for f in self.order if f.get("type") == "revoked"
                and (conversation_id is None or f.get("conversation_id") == conversation_id)]

    def assigned(self, conversation_id=None):
        return [f for f in self.order if f.get("type") == "assigned"
                and (conversation_id is None or f.get("conversation_id") == conversation_id)]

    def messages(self, conversation_id=None):
        return [f for f in self.order if f.get("type") == "message"
                and (conversation_id is None or f.get("conversation_id") == conversation_id)]

    async def close(self):
        if self.conn:
            await self.conn.close()


def conv_key(conversation_id, tenant="default"):
    return f"omr:{{{tenant}}}:conv:{conversation_id}"


def agent_key(agent_id, tenant="default"):
    return f"omr:{{{tenant}}}:agent:{agent_id}"


# ---- polling the daemon's log and Redis ------------------------------------

async def wait_log(d, needle, timeout, count=1):
    """Waits until the daemon's log holds needle (count times)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if d.log_text().count(needle) >= count:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{d.name}: log never said {needle!r} ({count} times)")


async def reload_limits(d, timeout=10):
    """SIGHUP: reloads d's configuration and waits until its websocket server
    applied the new limits (it does so on its own thread, after the reload)."""
    n = d.log_text().count("limits reloaded")
    d.proc.send_signal(signal.SIGHUP)
    await wait_log(d, "limits reloaded", timeout, count=n + 1)


async def wait_field(redis, key, field, want, timeout):
    """Polls hash field `field` of `key` until it is `want`; returns the last
    value seen (the caller asserts, with its own message)."""
    c = redis.client()
    try:
        deadline = time.monotonic() + timeout
        got = None
        while time.monotonic() < deadline:
            got = c.cmd("HGET", key, field)
            if got == want:
                return got
            await asyncio.sleep(0.05)
        return got
    finally:
        c.close()


async def poll(check, timeout, interval=0.1):
    """Calls check() until it returns something true or `timeout` s passed;
    returns its last value (the caller asserts on it)."""
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if got or time.monotonic() > deadline:
            return got
        await asyncio.sleep(interval)


async def wait_hash(rc, key, pred, timeout, what):
    """Polls hash `key` through client rc until pred(its fields) holds; returns them."""
    deadline = time.monotonic() + timeout
    h = None
    while time.monotonic() < deadline:
        h = rc.hgetall(key)
        if pred(h):
            return h
        await asyncio.sleep(0.05)
    raise AssertionError(f"{what}: not reached within {timeout}s; last {key}: {h}")


async def retry(attempt, what, timeout=20):
    """Calls `await attempt()` until it succeeds (a daemon restarting, a
    connection refused meanwhile)."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            return await attempt()
        except (OSError, asyncio.TimeoutError, websockets.exceptions.WebSocketException,
                AssertionError) as e:
            last = e
        await asyncio.sleep(0.2)
    raise AssertionError(f"{what}: not done within {timeout}s: {last}")

