#!/usr/bin/env python3
"""make_corpus.py - writes the envelope fuzz seed corpus (tests/fuzz/corpus/envelope/).

Every seed is a valid envelope (tests/unit/test_envelope.c decodes each one),
hand-encoded here with the standard library only, independently of
common/envelope.c, so the seeds also check the decoder against a second
encoder. Some seeds deliberately use wider-than-needed integer, string and
map encodings and a different key order: the decoder must accept them.

Usage: tests/fuzz/make_corpus.py [OUTDIR]   (default: next to this script)
The output is committed; rerun only when the envelope changes.
"""
import os
import struct
import sys


# ---- a minimal msgpack encoder (the subset the envelope uses) -------------

def uint(v, width=None):
    """Positive int; width forces cc/cd/ce/cf (1/2/4/8 bytes)."""
    if width is None:
        if v < 0x80:
            return bytes([v])
        width = 1 if v < 1 << 8 else 2 if v < 1 << 16 else 4 if v < 1 << 32 else 8
    tag = {1: 0xcc, 2: 0xcd, 4: 0xce, 8: 0xcf}[width]
    return bytes([tag]) + v.to_bytes(width, "big")


def sint(v, width=None):
    """Signed int; width forces d0/d1/d2/d3."""
    if width is None:
        if -32 <= v < 0:
            return struct.pack("b", v)
        if v >= 0:
            return uint(v)
        width = 1 if v >= -(1 << 7) else 2 if v >= -(1 << 15) else 4 if v >= -(1 << 31) else 8
    tag = {1: 0xd0, 2: 0xd1, 4: 0xd2, 8: 0xd3}[width]
    return bytes([tag]) + v.to_bytes(width, "big", signed=True)


def string(s, width=None):
    """UTF-8 string; width forces d9/da/db (1/2/4 length bytes)."""
    b = s.encode("utf-8") if isinstance(s, str) else s
    n = len(b)
    if width is None:
        if n < 32:
            return bytes([0xa0 | n]) + b
        width = 1 if n < 1 << 8 else 2 if n < 1 << 16 else 4
    tag = {1: 0xd9, 2: 0xda, 4: 0xdb}[width]
    return bytes([tag]) + n.to_bytes(width, "big") + b


def header(kind, n, width=None):
    """Map or array header; width forces 16/32-bit counts."""
    fix, t16, t32 = {"map": (0x80, 0xde, 0xdf), "array": (0x90, 0xdc, 0xdd)}[kind]
    if width is None:
        if n < 16:
            return bytes([fix | n])
        width = 2 if n < 1 << 16 else 4
    return bytes([t16 if width == 2 else t32]) + n.to_bytes(width, "big")


def value(v):
    if isinstance(v, bytes):  # already encoded
        return v
    if isinstance(v, int):
        return sint(v)
    if isinstance(v, str):
        return string(v)
    if isinstance(v, list):
        return header("array", len(v)) + b"".join(value(x) for x in v)
    if isinstance(v, dict):
        return header("map", len(v)) + b"".join(string(k) + value(x) for k, x in v.items())
    raise TypeError(v)


def envelope(fields, map_width=None):
    return header("map", len(fields), map_width) + b"".join(
        string(k) + value(v) for k, v in fields.items())


def base(type_, id_=1, **more):
    d = {"v": 1, "type": type_, "id": id_}
    d.update(more)
    return d


# ---- seeds ----------------------------------------------------------------

SEEDS = {
    "ack-ok": base("ack", 5000, re=17, status=0),
    "ack-error": base("ack", 5001, re=18, status=-110, reason="redis unavailable"),
    "ack-welcome": base("ack", 5002, re=19, conn=3, conv="c7f0a1", token="9a1e" * 8,
                        seq="1700000000000-0", presence="queued"),
    "adapter-hello": base("adapter.hello", 1, name="websocket", ts=1700000000000,
                          attrs={"pid": "4242", "version": "0.1.0"}),
    "conv-start": base("conv.start", 2, conn=11, ch="chat", tenant="default", lang="es-MX",
                       name="Ana", ts=1700000000001,
                       attrs={"ip": "203.0.113.9", "ua": "Mozilla/5.0"}),
    "conv-resume": base("conv.resume", 3, conn=12, ch="chat", tenant="default", conv="c7f0a1",
                        token="9a1e" * 8, seq="1700000000400-0"),
    "conv-message-customer": base("conv.message", 4, conn=11, ch="chat", **{"from": "customer"},
                                  conv="c7f0a1", msgid="c-1", text="hola, necesito ayuda"),
    "conv-message-agent": base("conv.message", 5, conn=21, ch="chat", **{"from": "agent"},
                               agent="luis", conv="c7f0a1", msgid="a-1",
                               text="¡Hola! ¿En qué puedo ayudarte? 你好 🙂"),
    "conv-close": base("conv.close", 6, conn=21, agent="luis", conv="c7f0a1",
                       reason="resolved"),
    "customer-gone": base("customer.gone", 7, conn=11, conv="c7f0a1"),
    "agent-login": base("agent.login", 8, conn=21, agent="luis", token="4f1c" * 8),
    "agent-presence": base("agent.presence", 9, conn=21, agent="luis", presence="available"),
    "agent-ack": base("agent.ack", 10, conn=21, agent="luis", seq="1700000000401-0"),
    "agent-gone": base("agent.gone", 11, conn=21, agent="luis"),
    "deliver-assigned": base("deliver", 12, conn=11, event="assigned", name="Luis",
                             conv="c7f0a1", seq="1700000000400-0", ts=1700000000400,
                             ch="chat", **{"from": "system"}),
    "deliver-message": base("deliver", 13, conn=21, event="message", conv="c7f0a1",
                            seq="1700000000401-0", ts=1700000000123, **{"from": "customer"},
                            msgid="c-1", text="hola\nlínea dos\ttab", customer="cust-9",
                            lang="es"),
    "deliver-welcome-agent": base("deliver", 14, conn=21, event="welcome", agent="ana",
                                  name="Ana", presence="away", skills=["es", "en", "billing"],
                                  attrs={"capacity": "2", "note": ""}),
    "email-start": base("conv.start", 15, conn=1, ch="email", tenant="acme",
                        customer="ana@example.com", msgid="<abc.123@mail.example.com>",
                        lang="en", text="Subject: refund\r\n\r\nPlease refund order 17.",
                        attrs={"subject": "refund", "from": "Ana <ana@example.com>"}),
    "voice-start": base("conv.start", 16, conn=2, ch="voice", tenant="acme",
                        customer="+34600000000", attrs={"call-id": "a84b4c76e66710"}),
    # The same content as conv-start with every integer, string and the map
    # written wider than needed, in reverse key order: must decode the same.
    "wide-encodings": None,
    "max-ids": base("deliver", (1 << 64) - 1, re=(1 << 64) - 1, conn=(1 << 64) - 1,
                    ts=(1 << 64) - 1, status=-(1 << 31), event="x" * 256, conv="c" * 128,
                    skills=["s%02d" % i for i in range(32)],
                    attrs={("k%02d" % i) + "k" * 61: "v" * 1024 for i in range(32)}),
}


def wide_encodings():
    d = [
        ("attrs", header("map", 1, 4) + string("ip", 4) + string("203.0.113.9", 2)),
        ("name", string("Ana", 2)),
        ("lang", string("es-MX", 1)),
        ("tenant", string("default", 4)),
        ("ch", string("chat", 1)),
        ("ts", uint(1700000000001, 8)),
        ("conn", sint(11, 8)),
        ("id", uint(2, 4)),
        ("type", string("conv.start", 2)),
        ("v", sint(1, 8)),
    ]
    return header("map", len(d), 4) + b"".join(string(k, 1) + v for k, v in d)


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "corpus", "envelope")
    os.makedirs(out, exist_ok=True)
    for name, fields in SEEDS.items():
        data = wide_encodings() if fields is None else envelope(fields)
        with open(os.path.join(out, "seed-" + name), "wb") as f:
            f.write(data)
    print("wrote %d seeds to %s" % (len(SEEDS), out))


if __name__ == "__main__":
    main()
