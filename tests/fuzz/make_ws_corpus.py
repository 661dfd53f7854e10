#!/usr/bin/env python3
"""make_ws_corpus.py - writes the websocket fuzz seeds (tests/fuzz/corpus/ws_proto/) and
hostile frames (tests/fuzz/hostile/ws_proto/).

Each file is one byte choosing the session (see fuzz_ws_proto.c: bits 0-1 customer before
hello, customer after hello, agent before login, agent after login; bit 2 an auth request in
flight; bits 3-5 the failure status the reply is rendered with; bit 6 identity verification
on) followed by one client text
frame. The seeds are the client frames of docs/PROTOCOL.md, each on a session that accepts it
(plus a few the parser must refuse); the hostile frames are what a malicious client sends. Every
file must run clean through fuzz_ws_proto_replay. Inputs a fuzzer run crashed on go to
hostile/ws_proto/ as they are (they are not written here).

Usage: tests/fuzz/make_ws_corpus.py [FUZZDIR]   (default: the folder of this script)
The output is committed; rerun only when the protocol changes.
"""
import hashlib
import hmac
import json
import os
import sys

C0, C1, A0, A1 = 0, 1, 2, 3  # customer/agent, before/after authentication
PENDING = 4                  # an auth request is in flight
IDENTITY = 64                # chat.identity_secret is set (to SECRET)
SECRET = b"fuzz-identity-secret-0123456789"


def sign(tenant, customer, attributes=None):
    """customer_signature: hex HMAC-SHA256 of TENANT|CUSTOMER_ID, then with attributes "\n"
    and NAME=VALUE "\n" for each in name order (docs/PROTOCOL.md)."""
    msg = f"{tenant}|{customer}"
    if attributes:
        msg += "\n" + "".join(f"{k}={attributes[k]}\n" for k in sorted(attributes))
    return hmac.new(SECRET, msg.encode(), hashlib.sha256).hexdigest()


def status(i):
    """Bits 3-5: which failure the reply is rendered with (fuzz_ws_proto.c statuses[])."""
    return i << 3


def frame(**members):
    return json.dumps(members, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


CONV = "c7f0a1b2c3d4e5f60718293a4b5c6d7e"
TOKEN = "9a1e" * 8

# ---- seeds: every client frame of docs/PROTOCOL.md ----------------------------------

SEEDS = {
    # customer, before hello
    "hello-min": (C0, frame(type="hello")),
    "hello-full": (C0, frame(type="hello", v=1, language="es-MX", name="Ana",
                             tenant="default")),
    "hello-unicode": (C0 | status(2), frame(type="hello", id="h-1", language="zh-Hant-TW",
                                            name="Zoë 李 🙂", tenant="acme.eu:1@x_y-z")),
    "hello-wrong-endpoint-login": (C0, frame(type="login", agent_id="ana", token="t")),
    "hello-pending": (C0 | PENDING, frame(type="hello")),
    "resume-full": (C0 | status(1), frame(type="resume", v=1, conversation_id=CONV,
                                          resume_token=TOKEN, after="1700000000000-0",
                                          tenant="default")),
    "resume-min": (C0, frame(type="resume", conversation_id=CONV, resume_token=TOKEN)),
    "resume-after-0": (C0 | status(0), frame(type="resume", conversation_id="c7f0",
                                             resume_token="9a1e", after="0")),
    "message-before-hello": (C0, frame(type="message", id="c-1", text="hola")),
    # customer, after hello
    "message": (C1, frame(type="message", id="c-1", text="hola, necesito ayuda")),
    "message-v1-escapes": (C1, b'{"type":"message","v":1,"id":"c-2","text":'
                               b'"l\\u00ednea\\none \\"q\\" \\\\ \\t \\ud83d\\ude00 \\/"}'),
    "message-utf8": (C1 | status(4), frame(type="message", id="c-3",
                                           text="¡Hola! ¿En qué puedo ayudarte? 你好 🙂")),
    "message-foreign-identity": (C1, frame(type="message", id="c-4", text="x",
                                           conversation_id="someone-else", tenant="other",
                                           agent_id="mallory", v=1.0)),
    "message-whitespace": (C1, b' \r\n\t{ "type" : "message" , "id" : "c-5" , '
                               b'"text" : "spaced" } \n'),
    "message-text-at-limit": (C1, frame(type="message", id="c-6", text="a" * 4096)),
    "hello-after-hello": (C1, frame(type="hello")),
    # agent, before login
    "login": (A0 | status(1), frame(type="login", v=1, agent_id="ana", token="4f1c" * 8)),
    "login-tenant-id": (A0 | status(7), frame(type="login", id="l-1", agent_id="luis",
                                              token="secret", tenant="acme")),
    "presence-before-login": (A0, frame(type="presence", presence="available")),
    # agent, after login
    "presence-available": (A1, frame(type="presence", presence="available", id="r1")),
    "presence-away": (A1 | status(5), frame(type="presence", v=1, presence="away")),
    "agent-message": (A1 | status(2), frame(type="message", conversation_id=CONV, id="a-1",
                                            text="¡Hola!")),
    "agent-message-foreign-identity": (A1, frame(type="message", conversation_id=CONV,
                                                 id="a-2", text="hi", agent_id="mallory",
                                                 tenant="other")),
    "close": (A1 | status(4), frame(type="close", conversation_id=CONV, id="r2")),
    "ack": (A1, frame(type="ack", seq="1700000000123-0")),
    "ack-id": (A1 | status(3), frame(type="ack", v=1, id="k-1", seq="1700000000123-0")),
    "hello-on-agent": (A1, frame(type="hello")),
    # agent, after login: offers, break, wrap-up
    "accept": (A1 | status(2), frame(type="accept", conversation_id=CONV, id="r3")),
    "accept-foreign-identity": (A1, frame(type="accept", conversation_id=CONV, id="r3",
                                          agent_id="mallory", tenant="other")),
    "reject": (A1 | status(2), frame(type="reject", conversation_id=CONV, reason="busy",
                                     id="r4")),
    "reject-no-reason": (A1 | status(0), frame(type="reject", conversation_id=CONV)),
    "reject-reason-unicode": (A1, frame(type="reject", conversation_id=CONV,
                                        reason="idioma equivocado · 言語 🙂", v=1)),
    "reject-reason-at-limit": (A1, frame(type="reject", conversation_id=CONV,
                                         reason="é" * 32)),
    "presence-break": (A1, frame(type="presence", presence="break", reason="lunch", id="p1")),
    "presence-break-no-reason": (A1 | status(3), frame(type="presence", presence="break")),
    "presence-break-reason-at-limit": (A1, frame(type="presence", presence="break",
                                                 reason="Team meeting_2.b-" + "x" * 47)),
    "wrapup-end": (A1, frame(type="wrapup_end", channel="chat", id="w1")),
    "wrapup-end-email": (A1 | status(4), frame(type="wrapup_end", channel="email")),
    "wrapup-end-voice": (A1 | status(5), frame(type="wrapup_end", channel="voice", id="w2")),
    "accept-before-login": (A0, frame(type="accept", conversation_id=CONV)),
    "members-32": (C0, frame(type="hello", **{"k%d" % i: i for i in range(1, 32)})),
    # customer: identity, topic and attributes; typing; the survey
    "hello-customer-topic": (C0 | status(1), frame(type="hello", v=1, language="es-MX",
                                                   name="Ana", customer_id="cust-42@acme.example",
                                                   topic="billing",
                                                   attributes={"tier": "gold",
                                                               "plan": "Pro – año"})),
    "hello-attributes-16": (C0, frame(type="hello", attributes={"k%d" % i: "v" * 255
                                                                for i in range(16)})),
    "hello-attributes-empty": (C0, frame(type="hello", customer_id="c" * 128,
                                         attributes={"a" * 64: ""})),
    "typing": (C1, frame(type="typing")),
    "typing-failed": (C1 | status(0), frame(type="typing", v=1, id="t-1")),
    "rate": (C1 | status(2), frame(type="rate", score=5, comment="¡Muy bien! 🙂", id="r-1")),
    "rate-min": (C1, frame(type="rate", score=1)),
    "rate-float": (C1 | status(4), frame(type="rate", score=3.0, comment="")),
    "rate-comment-at-limit": (C1, frame(type="rate", score=4, comment="é" * 2048)),
    "typing-before-hello": (C0, frame(type="typing")),
    "ping-before-hello": (C0, frame(type="ping", id="p-1")),
    "agent-ping": (A1, frame(type="ping")),
    # agent: typing, transfer, history, close with a disposition
    "agent-typing": (A1, frame(type="typing", conversation_id=CONV)),
    "agent-typing-failed": (A1 | status(2), frame(type="typing", conversation_id=CONV)),
    "transfer-queue": (A1 | status(3), frame(type="transfer", conversation_id=CONV,
                                             queue="billing-es",
                                             note="Wants a refund\nof €20", id="t1")),
    "transfer-agent": (A1, frame(type="transfer", conversation_id=CONV, agent="luis", id="t2")),
    "transfer-language": (A1, frame(type="transfer", conversation_id=CONV, queue="billing",
                                    language="es-MX", id="t3")),
    "history": (A1 | status(2), frame(type="history", conversation_id=CONV,
                                      earlier="0123456789abcdef0123456789abcdef", id="h1")),
    "close-disposition": (A1, frame(type="close", conversation_id=CONV, disposition="follow-up",
                                    id="r7")),
    # agent: a supervisor's team snapshot and read-only transcript
    "team": (A1, frame(type="team", id="s1")),
    "monitor": (A1 | status(2), frame(type="monitor", conversation_id=CONV, id="s2")),
    "rate-on-agent": (A1, frame(type="rate", score=5)),
    # customer: identity verification (a signed id; the default tenant is "default")
    "hello-signed": (C0 | IDENTITY, frame(type="hello", customer_id="cust-42",
                                          customer_signature=sign("default", "cust-42"))),
    "hello-signed-tenant": (C0 | IDENTITY | status(1),
                            frame(type="hello", tenant="acme", customer_id="c" * 128,
                                  customer_signature=sign("acme", "c" * 128))),
    "hello-anonymous-verifying": (C0 | IDENTITY, frame(type="hello", language="es")),
    "hello-signed-attributes": (C0 | IDENTITY, frame(
        type="hello", customer_id="cust-42", attributes={"tier": "gold", "plan": "Pro – año"},
        customer_signature=sign("default", "cust-42", {"tier": "gold", "plan": "Pro – año"}))),
    "hello-signature-ignored": (C0, frame(type="hello", customer_id="cust-42",
                                          customer_signature="not checked")),
}

# ---- hostile frames ---------------------------------------------------------------------


def msg(text_json, sess=C1):
    """A customer message whose text member is the raw JSON text_json."""
    return sess, b'{"type":"message","id":"h","text":' + text_json + b"}"


def nested(depth, open_, close):
    return (b'{"type":"message","id":"d","text":"x","deep":' + open_ * depth + close * depth +
            b"}")


BIG = 100 * 1024

HOSTILE = {
    "empty": (None, b""),
    "session-byte-only": (C1, b""),
    "just-brace": (C1, b"{"),
    "just-brace-agent": (A0, b"{"),
    "nul-byte": (C1, b'{"type":"message","id":"n","text":"a\x00b"}'),
    "nested-arrays-10000": (C1, nested(10000, b"[", b"]")),
    "nested-objects-10000": (C1, nested(10000, b'{"a":', b"}")),
    "nested-unclosed-10000": (A1, b'{"type":"ack","seq":"1-0","x":' + b"[" * 10000),
    "nested-top-10000": (C0, b"[" * 10000 + b"]" * 10000),
    # \u0000: cJSON would truncate the string at it
    "nul-escape-text": msg(b'"a\\u0000b"'),
    "nul-escape-type": (C1, b'{"type":"message\\u0000x","id":"n","text":"t"}'),
    "nul-escape-key": (C1, b'{"type":"message","id":"n","te\\u0000xt":"t","text":"u"}'),
    "nul-escape-id": (C1, b'{"type":"message","id":"n\\u0000<script>","text":"t"}'),
    "nul-escape-tenant": (C0, b'{"type":"hello","tenant":"acme\\u0000evil"}'),
    "nul-escape-conv": (A1, b'{"type":"close","conversation_id":"c\\u0000/../x"}'),
    "escaped-backslash-u0000": msg(b'"a\\\\u0000"'),
    # malformed \u escapes: cJSON 1.7.15 reads non-hex digits as U+0000, which truncated
    # the string ("ab\uzzzzcd" was accepted as "ab"); found by fuzz_ws_proto
    "malformed-u-escape-text": msg(b'"ab\\uzzzzcd"'),
    "malformed-u-escape-partial-hex": msg(b'"ab\\u00g0cd"'),
    "malformed-u-escape-conv": (A1, b'{"type":"close","conversation_id":"c1\\uXXXX/../../x"}'),
    "malformed-u-escape-name": (C0, b'{"type":"hello","name":"Ana\\u-123evil"}'),
    "malformed-u-escape-id": (C1, b'{"type":"message","id":"ok\\u\\u\\u<script>","text":"t"}'),
    "malformed-u-escape-low-half": msg(b'"\\ud800\\udcZZ"'),
    # lone UTF-16 surrogates
    "surrogate-high": msg(b'"\\ud800"'),
    "surrogate-low": msg(b'"x \\udc80"'),
    "surrogate-reversed": msg(b'"\\udc00\\ud800"'),
    "surrogate-high-high": msg(b'"\\ud800\\ud800"'),
    "surrogate-high-then-ascii": msg(b'"\\ud800\\u0041"'),
    "surrogate-high-at-end": (C1, b'{"type":"message","id":"h","text":"\\ud800'),
    "surrogate-high-short-pair": msg(b'"\\ud800\\udc"'),
    "surrogate-in-key": (C1, b'{"type":"message","id":"h","\\udfff":1,"text":"t"}'),
    "surrogate-in-type": (A1, b'{"type":"\\ud83dack","seq":"1-0"}'),
    "surrogate-17": msg(b'"' + b"\\udc00" * 17 + b'"'),
    "surrogate-16": msg(b'"' + b"\\udc00" * 16 + b'"'),
    "surrogate-outside-string": (C1, b'{"type":"message","id":"h",\\ud800"text":"t"}'),
    # numbers
    "v-huge": (C0, b'{"type":"hello","v":1e999}'),
    "v-huge-negative": (C0, b'{"type":"hello","v":-1e999}'),
    "v-tiny": (C0, b'{"type":"hello","v":1e-999}'),
    "v-rounds-to-1": (C0, b'{"type":"hello","v":1.00000000000000000000001}'),
    "v-many-digits": (C0, b'{"type":"hello","v":' + b"9" * 5000 + b"}"),
    "v-long-fraction": (C0, b'{"type":"hello","v":1.' + b"0" * 5000 + b"}"),
    "v-int-overflow": (A0, b'{"type":"login","v":4294967297,"agent_id":"a","token":"t"}'),
    "v-minus-zero": (C0, b'{"type":"hello","v":-0}'),
    "id-number": (C1, b'{"type":"message","id":1e400,"text":"t"}'),
    "number-malformed": (C0, b'{"type":"hello","v":1e}'),
    # duplicate keys: cJSON returns the first
    "dup-type": (C0, b'{"type":"hello","type":"login","agent_id":"a","token":"t"}'),
    "dup-text": (C1, b'{"type":"message","id":"h","text":"first","text":"' + b"x" * 5000 +
                 b'"}'),
    "dup-id": (C1, b'{"type":"message","id":"ok","id":"not ok","text":"t"}'),
    "dup-id-bad-first": (C1, b'{"type":"message","id":"not ok","id":"ok","text":"t"}'),
    "dup-conv": (A1, b'{"type":"message","conversation_id":"a","conversation_id":7,'
                     b'"id":"x","text":"t"}'),
    "dup-v": (C0, b'{"type":"hello","v":1,"v":2}'),
    # type confusion
    "type-number": (C1, b'{"type":1}'),
    "type-array": (C1, b'{"type":["message"],"id":"h","text":"t"}'),
    "type-object": (C1, b'{"type":{"type":"message"},"id":"h","text":"t"}'),
    "type-null": (C0, b'{"type":null}'),
    "type-true": (C0, b'{"type":true}'),
    "text-array": msg(b'["a","b"]'),
    "text-object": msg(b'{"text":"t"}'),
    "text-number": msg(b"12"),
    "text-null": msg(b"null"),
    "text-bool": msg(b"false"),
    "id-array": (C1, b'{"type":"message","id":["h"],"text":"t"}'),
    "id-null": (C1, b'{"type":"message","id":null,"text":"t"}'),
    "conv-object": (A1, b'{"type":"close","conversation_id":{"a":1}}'),
    "presence-number": (A1, b'{"type":"presence","presence":1}'),
    "presence-case": (A1, b'{"type":"presence","presence":"Available"}'),
    "presence-prefix": (A1, b'{"type":"presence","presence":"availableX"}'),
    "seq-bool": (A1, b'{"type":"ack","seq":true}'),
    "v-string": (C0, b'{"type":"hello","v":"1"}'),
    "v-true": (C0, b'{"type":"hello","v":true}'),
    "v-null": (C0, b'{"type":"hello","v":null}'),
    "v-array": (C0, b'{"type":"hello","v":[1]}'),
    "language-number": (C0, b'{"type":"hello","language":5}'),
    "name-object": (C0, b'{"type":"hello","name":{}}'),
    "tenant-array": (A0, b'{"type":"login","agent_id":"a","token":"t","tenant":["x"]}'),
    "frame-array": (C1, b'[{"type":"message","id":"h","text":"t"}]'),
    "frame-string": (C1, b'"message"'),
    "frame-number": (C1, b"42"),
    "frame-null": (C1, b"null"),
    "frame-empty-object": (C1, b"{}"),
    # 100 KB strings
    "text-100k": msg(b'"' + b"a" * BIG + b'"'),
    "text-4097": msg(b'"' + b"a" * 4097 + b'"'),
    "text-4096-escaped": msg(b'"' + b"\\u00e9" * 2048 + b'"'),
    "text-4097-escaped": msg(b'"' + b"\\u00e9" * 2048 + b'a"'),
    "name-100k": (C0, b'{"type":"hello","name":"' + b"n" * BIG + b'"}'),
    "name-257": (C0, b'{"type":"hello","name":"' + b"n" * 257 + b'"}'),
    "name-256-multibyte": (C0, b'{"type":"hello","name":"' + "é".encode() * 128 + b'"}'),
    "id-100k": (C1, b'{"type":"message","id":"' + b"i" * BIG + b'","text":"t"}'),
    "id-129": (C1, b'{"type":"message","id":"' + b"i" * 129 + b'","text":"t"}'),
    "tenant-65": (C0, b'{"type":"hello","tenant":"' + b"t" * 65 + b'"}'),
    "conv-129": (A1, b'{"type":"close","conversation_id":"' + b"c" * 129 + b'"}'),
    "language-36": (C0, b'{"type":"hello","language":"en' + b"-abcdefgh" * 3 + b'-abcdef"}'),
    "language-35": (C0, b'{"type":"hello","language":"en' + b"-abcdefgh" * 3 + b'-abcde"}'),
    "language-bad-subtag": (C0, b'{"type":"hello","language":"en-"}'),
    # invalid UTF-8
    "utf8-bad-text": msg(b'"bad \xc3\x28"'),
    "utf8-overlong-slash": msg(b'"\xc0\xaf"'),
    "utf8-raw-surrogate": msg(b'"\xed\xa0\x80"'),
    "utf8-above-10ffff": msg(b'"\xf4\x90\x80\x80"'),
    "utf8-truncated-at-end": msg(b'"ab\xe2\x82"'),
    "utf8-lone-continuation": msg(b'"\x80"'),
    "utf8-ff": msg(b'"\xff\xfe"'),
    "utf8-bad-name": (C0, b'{"type":"hello","name":"Ana \xc3"}'),
    "utf8-bad-key": (C1, b'{"type":"message","id":"h","\xff":1,"text":"t"}'),
    "utf8-bad-type": (A1, b'{"type":"ack\xff","seq":"1-0"}'),
    "utf8-bad-id": (C1, b'{"type":"message","id":"h\xc3\xa9","text":"t"}'),
    "utf8-bom": (C1, b'\xef\xbb\xbf{"type":"message","id":"h","text":"t"}'),
    "utf8-bad-outside-string": (C1, b'{"type":"message","id":"h","text":"t"}\xff'),
    # control characters and structure
    "name-control-escape": (C0, b'{"type":"hello","name":"a\\u0001b"}'),
    "name-del": (C0, b'{"type":"hello","name":"a\x7fb"}'),
    "name-newline": (C0, b'{"type":"hello","name":"a\\nb"}'),
    "name-c1-control": (C0, b'{"type":"hello","name":"a\\u0085b"}'),
    "text-raw-control": msg(b'"a\x01b"'),
    "trailing-object": (C1, b'{"type":"message","id":"h","text":"t"}{"type":"x"}'),
    "trailing-garbage": (C1, b'{"type":"message","id":"h","text":"t"} x'),
    "trailing-nul-escape": (C1, b'{"type":"message","id":"h","text":"t"}"\\u0000"'),
    "unterminated-string": (C1, b'{"type":"message","id":"h","text":"t'),
    "bad-escape": msg(b'"\\x41"'),
    "short-u-escape": msg(b'"\\u12"'),
    "short-u-escape-end": (C1, b'{"type":"message","id":"h","text":"\\u'),
    "backslash-at-end": (C1, b'{"type":"message","id":"h","text":"\\'),
    "single-quotes": (C1, b"{'type':'message','id':'h','text':'t'}"),
    "comment": (C1, b'{"type":"message",/* c */"id":"h","text":"t"}'),
    "unknown-type": (C1, b'{"type":"dance","id":"h"}'),
    "type-case": (C0, b'{"type":"Hello"}'),
    "customer-close": (C1, b'{"type":"close","conversation_id":"c"}'),
    "agent-message-no-conv": (A1, b'{"type":"message","id":"a","text":"t"}'),
    "message-no-id": (C1, b'{"type":"message","text":"t"}'),
    "ack-bad-seq": (A1, b'{"type":"ack","seq":"1 2"}'),
    "resume-after-number": (C0, b'{"type":"resume","conversation_id":"c","resume_token":"t",'
                                b'"after":5}'),
    "many-members": (C1, b'{"type":"message","id":"h","text":"t",' +
                     b",".join(b'"k%d":%d' % (i, i) for i in range(3000)) + b"}"),
    "session-all-bits": (0xFF, frame(type="ack", seq="1-0")),
    # offers, break, wrap-up
    "accept-no-conv": (A1, b'{"type":"accept","id":"r"}'),
    "accept-conv-number": (A1, b'{"type":"accept","conversation_id":7}'),
    "accept-on-customer": (C1, b'{"type":"accept","conversation_id":"c"}'),
    "reject-reason-empty": (A1, b'{"type":"reject","conversation_id":"c","reason":""}'),
    "reject-reason-65": (A1, b'{"type":"reject","conversation_id":"c","reason":"' + b"r" * 65 +
                         b'"}'),
    "reject-reason-newline": (A1, b'{"type":"reject","conversation_id":"c","reason":"a\\nb"}'),
    "reject-reason-c1": (A1, b'{"type":"reject","conversation_id":"c","reason":"a\\u0085b"}'),
    "reject-reason-c1-raw": (A1, b'{"type":"reject","conversation_id":"c",'
                                 b'"reason":"a\xc2\x9fb"}'),
    "reject-reason-del": (A1, b'{"type":"reject","conversation_id":"c","reason":"a\x7f"}'),
    "reject-reason-bad-utf8": (A1, b'{"type":"reject","conversation_id":"c","reason":"\xc3"}'),
    "reject-reason-object": (A1, b'{"type":"reject","conversation_id":"c","reason":{}}'),
    "presence-reason-with-away": (A1, b'{"type":"presence","presence":"away","reason":"x"}'),
    "presence-reason-bang": (A1, b'{"type":"presence","presence":"break","reason":"lunch!"}'),
    "presence-reason-unicode": (A1, b'{"type":"presence","presence":"break",'
                                    b'"reason":"caf\xc3\xa9"}'),
    "presence-reason-65": (A1, b'{"type":"presence","presence":"break","reason":"' +
                           b"r" * 65 + b'"}'),
    "presence-break-case": (A1, b'{"type":"presence","presence":"Break"}'),
    "wrapup-no-channel": (A1, b'{"type":"wrapup_end","id":"w"}'),
    "wrapup-channel-case": (A1, b'{"type":"wrapup_end","channel":"Chat"}'),
    "wrapup-channel-unknown": (A1, b'{"type":"wrapup_end","channel":"sms"}'),
    "wrapup-channel-nul": (A1, b'{"type":"wrapup_end","channel":"chat\\u0000x"}'),
    # repeated member names and too many members: bad-json before anything is read
    "dup-type-accept-reject": (A1, b'{"type":"accept","type":"reject","conversation_id":"c"}'),
    "dup-reason": (A1, b'{"type":"reject","conversation_id":"c","reason":"a","reason":"\x01"}'),
    "dup-type-escaped": (C0, b'{"type":"hello","typ\\u0065":"login","agent_id":"a",'
                             b'"token":"t"}'),
    "dup-type-nul-truncated": (C0, b'{"type":"hello","type\\u0000x":"login"}'),
    "dup-nested-ok": (C0, b'{"type":"hello","x":{"a":1,"a":2}}'),
    "members-33": (C0, frame(type="hello", **{"k%d" % i: i for i in range(1, 33)})),
    # hello: customer id, topic, attributes
    "customer-id-129": (C0, frame(type="hello", customer_id="c" * 129)),
    "customer-id-space": (C0, frame(type="hello", customer_id="ana smith")),
    "customer-id-number": (C0, b'{"type":"hello","customer_id":42}'),
    "customer-id-nul": (C0, b'{"type":"hello","customer_id":"a\\u0000b"}'),
    "topic-array": (C0, b'{"type":"hello","topic":["billing"]}'),
    "topic-empty": (C0, b'{"type":"hello","topic":""}'),
    "attributes-17": (C0, frame(type="hello", attributes={"k%d" % i: "v" for i in range(17)})),
    "attributes-array": (C0, b'{"type":"hello","attributes":[["tier","gold"]]}'),
    "attributes-nested": (C0, b'{"type":"hello","attributes":{"tier":{"a":"b"}}}'),
    "attributes-number": (C0, b'{"type":"hello","attributes":{"tier":1}}'),
    "attributes-null": (C0, b'{"type":"hello","attributes":{"tier":null}}'),
    "attributes-dup": (C0, b'{"type":"hello","attributes":{"tier":"gold","tier":"x"}}'),
    "attributes-key-65": (C0, frame(type="hello", attributes={"k" * 65: "v"})),
    "attributes-key-unicode": (C0, frame(type="hello", attributes={"tïer": "v"})),
    "attributes-key-empty": (C0, b'{"type":"hello","attributes":{"":"v"}}'),
    "attributes-value-256": (C0, frame(type="hello", attributes={"k": "v" * 256})),
    "attributes-value-newline": (C0, b'{"type":"hello","attributes":{"k":"a\\nb"}}'),
    "attributes-value-c1": (C0, b'{"type":"hello","attributes":{"k":"a\\u0085b"}}'),
    "attributes-value-nul": (C0, b'{"type":"hello","attributes":{"k":"a\\u0000b"}}'),
    "attributes-value-bad-utf8": (C0, b'{"type":"hello","attributes":{"k":"\xc3"}}'),
    "attributes-deep": (C0, b'{"type":"hello","attributes":' + b'{"a":' * 5000 +
                        b'"x"' + b"}" * 5000 + b"}"),
    # rate
    "rate-0": (C1, b'{"type":"rate","score":0}'),
    "rate-6": (C1, b'{"type":"rate","score":6}'),
    "rate-fraction": (C1, b'{"type":"rate","score":4.5}'),
    "rate-string": (C1, b'{"type":"rate","score":"5"}'),
    "rate-huge": (C1, b'{"type":"rate","score":1e999}'),
    "rate-negative-zero": (C1, b'{"type":"rate","score":-0}'),
    "rate-no-score": (C1, b'{"type":"rate","comment":"x"}'),
    "rate-comment-number": (C1, b'{"type":"rate","score":5,"comment":5}'),
    "rate-comment-4097": (C1, b'{"type":"rate","score":5,"comment":"' + b"a" * 4097 + b'"}'),
    "rate-comment-nul": (C1, b'{"type":"rate","score":5,"comment":"a\\u0000"}'),
    "rate-before-hello": (C0, b'{"type":"rate","score":5}'),
    # transfer, history, typing, close
    "transfer-both": (A1, b'{"type":"transfer","conversation_id":"c","queue":"q","agent":"a"}'),
    "transfer-neither": (A1, b'{"type":"transfer","conversation_id":"c","note":"n"}'),
    "transfer-queue-empty": (A1, b'{"type":"transfer","conversation_id":"c","queue":""}'),
    "transfer-agent-object": (A1, b'{"type":"transfer","conversation_id":"c","agent":{}}'),
    "transfer-note-4097": (A1, b'{"type":"transfer","conversation_id":"c","agent":"a",'
                               b'"note":"' + b"n" * 4097 + b'"}'),
    "transfer-on-customer": (C1, b'{"type":"transfer","conversation_id":"c","queue":"q"}'),
    "hello-customer-old-list": (C0, b'{"type":"hello","customer_id":"bob:convs"}'),
    "transfer-language-und": (A1, b'{"type":"transfer","conversation_id":"c","queue":"q",'
                                  b'"language":"und"}'),
    "transfer-language-bad": (A1, b'{"type":"transfer","conversation_id":"c","queue":"q",'
                                  b'"language":"es_ES!"}'),
    "transfer-language-number": (A1, b'{"type":"transfer","conversation_id":"c","queue":"q",'
                                     b'"language":7}'),
    "history-no-earlier": (A1, b'{"type":"history","conversation_id":"c"}'),
    "history-earlier-path": (A1, b'{"type":"history","conversation_id":"c",'
                                 b'"earlier":"../c"}'),
    "history-on-customer": (C1, b'{"type":"history","conversation_id":"c","earlier":"e"}'),
    "team-before-login": (A0, b'{"type":"team"}'),
    "team-on-customer": (C1, b'{"type":"team"}'),
    "monitor-no-conv": (A1, b'{"type":"monitor"}'),
    "monitor-conv-path": (A1, b'{"type":"monitor","conversation_id":"../c"}'),
    "monitor-on-customer": (C1, b'{"type":"monitor","conversation_id":"c"}'),
    "typing-agent-no-conv": (A1, b'{"type":"typing"}'),
    "close-disposition-65": (A1, b'{"type":"close","conversation_id":"c","disposition":"' +
                             b"d" * 65 + b'"}'),
    "close-disposition-space": (A1, b'{"type":"close","conversation_id":"c",'
                                    b'"disposition":"follow up"}'),
    # identity verification: unsigned, another tenant's, another customer's, malformed,
    # attributes the signature does not cover
    "hello-unsigned-verifying": (C0 | IDENTITY, b'{"type":"hello","customer_id":"7"}'),
    "hello-signature-other-tenant": (C0 | IDENTITY, frame(
        type="hello", tenant="acme", customer_id="cust-42",
        customer_signature=sign("default", "cust-42"))),
    "hello-signature-other-customer": (C0 | IDENTITY, frame(
        type="hello", customer_id="cust-43", customer_signature=sign("default", "cust-42"))),
    "hello-signature-uppercase": (C0 | IDENTITY, frame(
        type="hello", customer_id="cust-42",
        customer_signature=sign("default", "cust-42").upper())),
    "hello-signature-no-id": (C0 | IDENTITY, frame(
        type="hello", customer_signature=sign("default", "cust-42"))),
    "hello-signature-number": (C0 | IDENTITY, b'{"type":"hello","customer_id":"7",'
                                              b'"customer_signature":7}'),
    "hello-attributes-forged": (C0 | IDENTITY, frame(
        type="hello", customer_id="cust-42", attributes={"tier": "gold"},
        customer_signature=sign("default", "cust-42"))),
    "hello-attributes-no-id": (C0 | IDENTITY, frame(type="hello", attributes={"tier": "gold"})),
    "hello-signature-nul": (C0 | IDENTITY, b'{"type":"hello","customer_id":"7",'
                                           b'"customer_signature":"ab\u0000cd"}'),
}


def write(folder, name, sess, data):
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, name), "wb") as f:
        f.write((b"" if sess is None else bytes([sess])) + data)


def main():
    base = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))
    for name, (sess, data) in SEEDS.items():
        write(os.path.join(base, "corpus", "ws_proto"), "seed-" + name, sess, data)
    for name, (sess, data) in HOSTILE.items():
        write(os.path.join(base, "hostile", "ws_proto"), name, sess, data)
    print("wrote %d seeds and %d hostile frames under %s" % (len(SEEDS), len(HOSTILE), base))


if __name__ == "__main__":
    main()
