/* fuzz_ws_proto.c - libFuzzer target for the websocket frame parser.
 *
 * The first byte picks the connection the frame arrives on: bits 0-1 the
 * session (customer before hello, customer after hello, agent before login,
 * agent after login), bit 2 an auth request in flight, bits 3-5 the failure
 * status the reply is rendered with, bit 6 identity verification on
 * (chat.identity_secret set). The rest goes through omr_ws_parse()
 * with the daemon's default limits. A refused frame leaves no envelope, an
 * error that renders, and the session as it was. An accepted frame holds no
 * malformed \u escape, \u0000 or lone surrogate (checked on the raw bytes,
 * independently of cJSON) and gives an envelope the bus takes (it encodes at
 * the default frame cap and decodes back), whose identity comes from the
 * session, never from the frame (and, with verification on, a hello's customer
 * id and attributes are ones the frame's customer_signature signs, and it has no
 * attributes without a customer id); its replies (an ack, then a failure) render
 * as JSON and update the session as docs/PROTOCOL.md says (a ping, which
 * the adapter answers, has no envelope and a pong that renders); an accepted
 * message delivered back to either side renders its text unchanged. Any
 * failure aborts so libFuzzer keeps the input. Built with -fsanitize=fuzzer
 * (OMR_FUZZ) and, for builds without libFuzzer, with replay_main.c.
 * Single-threaded. */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "omnirouter/channel.h"
#include "omnirouter/envelope.h"
#include "omnirouter/error.h"
#include "omnirouter/util.h"
#include "websocket/ws_identity.h"
#include "websocket/ws_proto.h"

#define MAX OMR_ENV_FRAME_MAX_DEFAULT
#define TENANT "acme" /* an authenticated session's, unlike the default */
#define CONV "c7f0a1b2c3d4e5f60718293a4b5c6d7e"
#define AGENT "luis"

static const omr_ws_limits_t limits = {
        .max_text_bytes = 4096,
        .default_tenant = "default",
        .default_language = "en",
};

#define SECRET "fuzz-identity-secret-0123456789" /* make_ws_corpus.py signs with it */

/* Failure statuses the router answers with; -ETIMEDOUT comes without an ack. */
static const int statuses[8] = {
        -ETIMEDOUT,    OMR_ERR_BAD_TOKEN, OMR_ERR_NOT_ASSIGNED, -EINVAL, OMR_ERR_CLOSED,
        OMR_ERR_REDIS, -EMSGSIZE,         OMR_ERR_NO_AGENT,
};

static void die(const char *what, const char *why)
{
	fprintf(stderr, "fuzz_ws_proto: %s (%s)\n", what, why ? why : "-");
	abort();
}

static void check(bool ok, const char *what)
{
	if (!ok)
		die(what, NULL);
}

static bool same(const char *a, const char *b)
{
	return a && b && strcmp(a, b) == 0;
}

static bool is_auth(omr_ws_kind_t k)
{
	return k == OMR_WS_HELLO || k == OMR_WS_RESUME || k == OMR_WS_LOGIN;
}

static bool is_hex32(const char *s)
{
	if (strlen(s) != 32)
		return false;
	for (; *s; s++) {
		if (!strchr("0123456789abcdef", *s))
			return false;
	}
	return true;
}

static int hexval(uint8_t c)
{
	return c >= '0' && c <= '9'   ? c - '0'
	       : c >= 'a' && c <= 'f' ? c - 'a' + 10
	       : c >= 'A' && c <= 'F' ? c - 'A' + 10
	                              : -1;
}

/* What docs/PROTOCOL.md promises about strings, checked on the raw frame and
 * independently of cJSON (which reads a malformed \u escape as U+0000): true
 * when every \u escape in every string has four hex digits, none is \u0000
 * and UTF-16 surrogates come in high-low pairs. Only a frame for which this
 * holds may be accepted. Lexes strings only: for valid JSON that is exact,
 * and anything else must be refused anyway. */
static bool escapes_ok(const uint8_t *p, size_t len)
{
	bool in_str = false, high = false;
	for (size_t i = 0; i < len; i++) {
		if (!in_str) {
			in_str = p[i] == '"';
			continue;
		}
		if (p[i] != '\\' || i + 1 >= len || p[i + 1] != 'u') {
			if (high)
				return false; /* a high surrogate not followed by \u */
			in_str = p[i] != '"';
			i += p[i] == '\\'; /* a short escape: skip what it escapes */
			continue;
		}
		long v = 0;
		for (size_t k = i + 2; k < i + 6; k++) {
			if (k >= len || hexval(p[k]) < 0)
				return false;
			v = v * 16 + hexval(p[k]);
		}
		i += 5;
		bool hi = v >= 0xD800 && v <= 0xDBFF, lo = v >= 0xDC00 && v <= 0xDFFF;
		if (v == 0 || lo != high)
			return false;
		high = hi;
	}
	return !high;
}

/* min..max bytes, no C0, DEL or C1 control (U+0080..U+009F). */
static bool printable_ok(const char *s, size_t min, size_t max)
{
	size_t len = strlen(s);
	if (len < min || len > max || !omr_utf8_is_valid(s, len))
		return false;
	for (size_t i = 0; i < len; i++) {
		uint8_t c = (uint8_t)s[i];
		if (c < 0x20 || c == 0x7f || (c == 0xc2 && (uint8_t)s[i + 1] < 0xa0))
			return false;
	}
	return true;
}

/* A reject reason: 1-64 bytes, no control characters. */
static bool reason_ok(const char *s)
{
	return printable_ok(s, 1, OMR_WS_REASON_MAX);
}

/* Free text the chat rules allow: 1..max_text_bytes of UTF-8. */
static bool text_ok(const char *s)
{
	return s && s[0] && strlen(s) <= limits.max_text_bytes && omr_utf8_is_valid(s, strlen(s));
}

/* A hello's attributes, customer id and topic. */
static bool hello_extras_ok(const omr_envelope_t *env)
{
	if (env->customer && !omr_id_is_valid(env->customer, OMR_WS_ID_MAX))
		return false;
	if (env->n_skills > 1 || (env->n_skills && !omr_id_is_valid(env->skills[0], OMR_WS_ID_MAX)))
		return false;
	if (env->n_attrs > OMR_WS_ATTRS_MAX)
		return false;
	for (size_t i = 0; i < env->n_attrs; i++) {
		if (!omr_id_is_valid(env->attrs[i].key, OMR_WS_ATTR_KEY_MAX) ||
		    !printable_ok(env->attrs[i].value, 0, OMR_WS_ATTR_VALUE_MAX))
			return false;
	}
	return true;
}

/* The only attribute of an agent's or customer's request, when it has one. */
static const char *only_attr(const omr_envelope_t *env, const char *key)
{
	return env->n_attrs == 1 && same(env->attrs[0].key, key) ? env->attrs[0].value : NULL;
}

/* An accepted frame's top-level object has at most OMR_WS_MEMBERS_MAX
 * members, no name twice. */
static bool members_ok(const uint8_t *p, size_t len)
{
	cJSON *root = cJSON_ParseWithLength((const char *)p, len);
	size_t n = 0;
	bool ok = cJSON_IsObject(root);
	for (const cJSON *it = ok ? root->child : NULL; ok && it; it = it->next) {
		ok = ++n <= OMR_WS_MEMBERS_MAX;
		for (const cJSON *prev = root->child; ok && prev != it; prev = prev->next)
			ok = strcmp(prev->string, it->string) != 0;
	}
	cJSON_Delete(root);
	return ok;
}

static void make_session(uint8_t sel, omr_ws_session_t *s)
{
	memset(s, 0, sizeof(*s));
	s->conn = 77;
	s->role = sel & 2 ? OMR_WS_ROLE_AGENT : OMR_WS_ROLE_CUSTOMER;
	s->authed = sel & 1;
	s->auth_pending = !s->authed && (sel & 4);
	if (s->authed) {
		snprintf(s->tenant, sizeof(s->tenant), "%s", TENANT);
		if (s->role == OMR_WS_ROLE_AGENT)
			snprintf(s->agent, sizeof(s->agent), "%s", AGENT);
		else
			snprintf(s->conv, sizeof(s->conv), "%s", CONV);
	}
}

/* The frame kinds each role may send, and the envelope type of each. */
static bool kind_allowed(omr_ws_role_t role, omr_ws_kind_t k)
{
	if (role == OMR_WS_ROLE_CUSTOMER)
		return k == OMR_WS_HELLO || k == OMR_WS_RESUME || k == OMR_WS_MESSAGE ||
		       k == OMR_WS_TYPING || k == OMR_WS_RATE;
	return k == OMR_WS_LOGIN || k == OMR_WS_PRESENCE || k == OMR_WS_MESSAGE ||
	       k == OMR_WS_CLOSE || k == OMR_WS_ACK || k == OMR_WS_ACCEPT || k == OMR_WS_REJECT ||
	       k == OMR_WS_WRAPUP_END || k == OMR_WS_TYPING || k == OMR_WS_TRANSFER ||
	       k == OMR_WS_HISTORY || k == OMR_WS_TEAM || k == OMR_WS_MONITOR;
}

static omr_env_type_t type_for(omr_ws_kind_t k)
{
	static const omr_env_type_t t[] = {
	        [OMR_WS_HELLO] = OMR_ENV_CONV_START,
	        [OMR_WS_RESUME] = OMR_ENV_CONV_RESUME,
	        [OMR_WS_MESSAGE] = OMR_ENV_CONV_MESSAGE,
	        [OMR_WS_LOGIN] = OMR_ENV_AGENT_LOGIN,
	        [OMR_WS_PRESENCE] = OMR_ENV_AGENT_PRESENCE,
	        [OMR_WS_CLOSE] = OMR_ENV_CONV_CLOSE,
	        [OMR_WS_ACK] = OMR_ENV_AGENT_ACK,
	        [OMR_WS_ACCEPT] = OMR_ENV_OFFER_ACCEPT,
	        [OMR_WS_REJECT] = OMR_ENV_OFFER_REJECT,
	        [OMR_WS_WRAPUP_END] = OMR_ENV_WRAPUP_END,
	        [OMR_WS_TYPING] = OMR_ENV_CONV_TYPING,
	        [OMR_WS_RATE] = OMR_ENV_CONV_RATE,
	        [OMR_WS_TRANSFER] = OMR_ENV_CONV_TRANSFER,
	        [OMR_WS_HISTORY] = OMR_ENV_CONV_HISTORY,
	        [OMR_WS_TEAM] = OMR_ENV_AGENT_TEAM,
	        [OMR_WS_MONITOR] = OMR_ENV_CONV_MONITOR,
	};
	return (unsigned)k < sizeof(t) / sizeof(t[0]) ? t[k] : OMR_ENV_NONE;
}

/* Parses JSON the server renders: an object whose "type" is type (any type
 * when NULL). Returns the tree; the caller deletes it. */
static cJSON *rendered(const char *json, const char *type, const char *what)
{
	cJSON *obj = json ? cJSON_Parse(json) : NULL;
	const cJSON *t = cJSON_GetObjectItemCaseSensitive(obj, "type");
	if (!cJSON_IsObject(obj) || !cJSON_IsString(t) || (type && !same(t->valuestring, type)))
		die(what, json);
	return obj;
}

static const char *member(const cJSON *obj, const char *key)
{
	const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
	return cJSON_IsString(it) ? it->valuestring : NULL;
}

static void check_error(const omr_ws_error_t *err, const char *what)
{
	if (!err->code || !err->reason)
		die(what, "no code or reason");
	if (err->id[0] && !omr_id_is_valid(err->id, OMR_WS_ID_MAX))
		die(what, "echoes an invalid id");
	char *json = omr_ws_render_error(err);
	cJSON *obj = rendered(json, "error", "error frame is not JSON");
	if (!same(member(obj, "code"), err->code) ||
	    (err->id[0] && !same(member(obj, "id"), err->id)))
		die("error frame lost the code or id", json);
	cJSON_Delete(obj);
	free(json);
}

/* identity: verification was on, so a hello may be refused with unauthorized and 1008. */
static void check_refusal(int rc, const omr_ws_request_t *rq, const omr_ws_error_t *err,
                          bool identity)
{
	if (rc != -EINVAL && rc != -ENOMEM)
		die("refusal is neither EINVAL nor ENOMEM", err->code);
	if (rq->env)
		die("refused frame left an envelope", err->code);
	bool unsigned_hello = identity && rq->kind == OMR_WS_HELLO &&
	                      err->close_code == OMR_WS_CLOSE_POLICY &&
	                      same(err->code, "unauthorized");
	if (err->close_code != 0 && err->close_code != OMR_WS_CLOSE_PROTOCOL &&
	    err->close_code != OMR_WS_CLOSE_BAD_DATA && !unsigned_hello)
		die("refusal closes with an undocumented code", err->code);
	check_error(err, "refusal");
}

/* The envelope: what the bus takes, with identity from the session. */
static void check_envelope(const omr_ws_session_t *s, const omr_ws_request_t *rq)
{
	omr_envelope_t *env = rq->env, *back = NULL;
	char *buf = NULL;
	size_t n = 0;
	const char *why = NULL;
	bool agent = s->role == OMR_WS_ROLE_AGENT;

	check(env != NULL, "accepted frame has no envelope");
	check(kind_allowed(s->role, rq->kind), "kind not allowed on this endpoint");
	check(is_auth(rq->kind) ? !s->authed && !s->auth_pending : s->authed,
	      "kind not allowed in this session state");
	check(!rq->id[0] || omr_id_is_valid(rq->id, OMR_WS_ID_MAX), "request id is not an id");
	check(env->type == type_for(rq->kind), "wrong envelope type");
	check(env->conn == s->conn && (env->channel == OMR_CHANNEL_CHAT ||
	                               (rq->kind == OMR_WS_WRAPUP_END && env->channel != 0 &&
	                                env->channel < OMR_CHANNEL_COUNT)),
	      "wrong conn or channel");
	if (rq->kind == OMR_WS_HELLO)
		check(hello_extras_ok(env), "hello: customer id, topic or attributes");
	else
		check(!env->customer && !env->n_skills &&
		              (!env->n_attrs || rq->kind == OMR_WS_RATE ||
		               rq->kind == OMR_WS_TRANSFER || rq->kind == OMR_WS_HISTORY),
		      "unexpected envelope fields");

	env->id = 1; /* the bus numbers what it sends */
	if (omr_envelope_encode(env, MAX, &buf, &n, &why) != 0)
		die("parsed envelope does not encode", why);
	if (omr_envelope_decode(buf, n, MAX, &back, &why) != 0)
		die("encoded envelope does not decode", why);
	omr_envelope_destroy(&back);
	free(buf);

	if (is_auth(rq->kind)) {
		/* Identity is being claimed: it comes from the frame or the defaults. */
		check(same(env->tenant, rq->tenant) &&
		              omr_id_is_valid(rq->tenant, OMR_WS_TENANT_MAX),
		      "auth request tenant");
		check(!env->agent == (rq->kind != OMR_WS_LOGIN), "auth request agent");
		if (rq->kind == OMR_WS_LOGIN)
			check(same(env->agent, rq->agent) && same(env->token, rq->token) &&
			              env->from == OMR_ROLE_NONE,
			      "login envelope");
		else
			check(same(env->conv, rq->conv) && same(env->token, rq->token) &&
			              env->from == OMR_ROLE_CUSTOMER,
			      "hello/resume envelope");
		if (rq->kind == OMR_WS_HELLO)
			check(is_hex32(rq->conv) && is_hex32(rq->token) && env->lang,
			      "hello: conversation id, token or language");
		if (rq->kind == OMR_WS_RESUME)
			check(env->seq != NULL, "resume without after");
		return;
	}
	/* Authenticated: tenant, conversation (customer) and agent are the session's. */
	check(same(env->tenant, s->tenant), "tenant does not come from the session");
	check(agent ? same(env->agent, s->agent) : !env->agent,
	      "agent does not come from the session");
	/* a transfer may name the customer's language; nothing else carries one */
	check(!env->token && !env->name && (!env->lang || rq->kind == OMR_WS_TRANSFER),
	      "request carries auth fields");
	switch (rq->kind) {
	case OMR_WS_MESSAGE:
		check(agent || (same(env->conv, s->conv) && same(rq->conv, s->conv)),
		      "customer message conversation does not come from the session");
		check(env->conv && rq->id[0] && same(env->msgid, rq->id), "message conv or id");
		check(env->from == (agent ? OMR_ROLE_AGENT : OMR_ROLE_CUSTOMER), "message from");
		check(env->text && env->text[0] && strlen(env->text) <= limits.max_text_bytes,
		      "message text");
		break;
	case OMR_WS_PRESENCE:
		check(same(env->presence, rq->presence) &&
		              (same(rq->presence, "available") || same(rq->presence, "away") ||
		               same(rq->presence, "break")),
		      "presence");
		check(!env->reason || (same(rq->presence, "break") && env->reason[0] &&
		                       strlen(env->reason) <= OMR_WS_REASON_MAX &&
		                       strspn(env->reason, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLM"
		                                           "NOPQRSTUVWXYZ0123456789._ -") ==
		                               strlen(env->reason)),
		      "presence reason");
		check(!env->conv && !env->seq, "presence carries conv or seq");
		break;
	case OMR_WS_ACCEPT:
	case OMR_WS_REJECT:
		check(same(env->conv, rq->conv) && env->from == OMR_ROLE_NONE, "offer answer");
		check(!env->reason || (rq->kind == OMR_WS_REJECT && reason_ok(env->reason)),
		      "reject reason");
		break;
	case OMR_WS_WRAPUP_END:
		check(!env->conv && !env->reason && !env->seq, "wrapup_end fields");
		break;
	case OMR_WS_CLOSE:
		check(same(env->conv, rq->conv) && env->from == OMR_ROLE_AGENT, "close");
		check(!env->reason || omr_id_is_valid(env->reason, OMR_WS_REASON_MAX),
		      "close disposition");
		break;
	case OMR_WS_TYPING:
		check(env->from == (agent ? OMR_ROLE_AGENT : OMR_ROLE_CUSTOMER) &&
		              same(env->conv, rq->conv) && (agent || same(env->conv, s->conv)),
		      "typing");
		check(!env->text && !env->reason && !env->seq, "typing fields");
		break;
	case OMR_WS_RATE: {
		const char *score = only_attr(env, "score");
		check(same(env->conv, s->conv) && score && strlen(score) == 1 && score[0] >= '1' &&
		              score[0] <= '5',
		      "rate");
		check(!env->text || text_ok(env->text), "rate comment");
		break;
	}
	case OMR_WS_TRANSFER: {
		const char *target = only_attr(env, "queue");
		if (!target)
			target = only_attr(env, "agent");
		check(same(env->conv, rq->conv) && target && omr_id_is_valid(target, OMR_WS_ID_MAX),
		      "transfer target");
		check(!env->text || text_ok(env->text), "transfer note");
		char primary[16];
		check(!env->lang ||
		              (strlen(env->lang) <= OMR_WS_LANG_MAX &&
		               omr_language_primary(env->lang, primary, sizeof(primary)) == 0 &&
		               !same(primary, "und")),
		      "transfer language");
		break;
	}
	case OMR_WS_HISTORY: {
		const char *earlier = only_attr(env, "earlier");
		check(same(env->conv, rq->conv) && earlier &&
		              omr_id_is_valid(earlier, OMR_WS_ID_MAX),
		      "history");
		break;
	}
	case OMR_WS_MONITOR:
		check(same(env->conv, rq->conv) && env->n_attrs == 0 && !env->text, "monitor");
		break;
	case OMR_WS_TEAM:
		check(!env->conv && env->n_attrs == 0 && !env->seq && !env->text, "team");
		break;
	case OMR_WS_ACK:
		check(env->seq && !env->conv, "ack");
		break;
	default:
		die("unexpected kind", omr_ws_kind_name(rq->kind));
	}
}

/* The router acknowledged the request. */
static void check_reply_ok(const omr_ws_session_t *s, const omr_ws_request_t *rq)
{
	omr_ws_session_t after = *s;
	omr_envelope_t *ack = omr_envelope_new(OMR_ENV_ACK);
	omr_ws_error_t err;
	char *out = NULL;

	check(ack != NULL, "out of memory");
	ack->id = 2;
	ack->re = 1;
	after.auth_pending = is_auth(rq->kind); /* the server sets it when sending */
	if (omr_ws_reply(&after, rq, 0, ack, &out, &err) != 0 || err.code)
		die("reply to an ack failed", err.code);
	check(!after.auth_pending, "auth still pending after the reply");
	if (rq->kind == OMR_WS_ACK || rq->kind == OMR_WS_TYPING) {
		check(!out, "an agent's ack or a typing notice got an answer");
	} else {
		cJSON *obj =
		        rendered(out, is_auth(rq->kind) ? "welcome" : "ack", "reply is not JSON");
		check(!rq->id[0] || is_auth(rq->kind) || same(member(obj, "id"), rq->id),
		      "ack does not echo the id");
		check(same(member(obj, "tenant"), after.tenant) || !is_auth(rq->kind),
		      "welcome tenant");
		cJSON_Delete(obj);
	}
	if (is_auth(rq->kind)) {
		check(after.authed && same(after.tenant, rq->tenant), "auth did not authenticate");
		check(rq->kind == OMR_WS_LOGIN ? same(after.agent, rq->agent)
		                               : same(after.conv, rq->conv),
		      "auth identity");
	} else {
		check(memcmp(&after, s, sizeof(after)) == 0, "a request changed the session");
	}
	free(out);
	omr_envelope_destroy(&ack);
}

/* The router refused it, or did not answer. */
static void check_reply_failure(const omr_ws_session_t *s, const omr_ws_request_t *rq, int status)
{
	omr_ws_session_t after = *s;
	omr_envelope_t *ack = NULL;
	omr_ws_error_t err;
	char *out = NULL;

	if (status != -ETIMEDOUT) {
		check((ack = omr_envelope_new(OMR_ENV_ACK)) != NULL, "out of memory");
		ack->id = 2;
		ack->re = 1;
		ack->status = status;
	}
	after.auth_pending = is_auth(rq->kind);
	if (omr_ws_reply(&after, rq, status, ack, &out, &err) != 0 || out)
		die("failure reply rendered a frame", out);
	check_error(&err, "failure reply");
	check(same(err.id, rq->id), "failure reply does not echo the id");
	check(!after.auth_pending && after.authed == s->authed,
	      "a failed request changed authentication");
	omr_envelope_destroy(&ack);
}

/* An accepted message as the router delivers it: the text arrives unchanged. */
static void check_delivery(const omr_ws_request_t *rq)
{
	omr_envelope_t *d = omr_envelope_new(OMR_ENV_DELIVER);
	check(d != NULL, "out of memory");
	d->id = 3;
	d->ts_ms = 1700000000123u;
	d->from = rq->env->from;
	if (omr_envelope_set(&d->event, "message") || omr_envelope_set(&d->seq, "1-0") ||
	    omr_envelope_set(&d->conv, rq->env->conv) ||
	    omr_envelope_set(&d->msgid, rq->env->msgid) ||
	    omr_envelope_set(&d->text, rq->env->text))
		die("out of memory", NULL);
	for (int role = OMR_WS_ROLE_CUSTOMER; role <= OMR_WS_ROLE_AGENT; role++) {
		omr_ws_session_t s;
		omr_ws_error_t err;
		char *out = NULL;

		make_session(role == OMR_WS_ROLE_AGENT ? 3 : 1, &s);
		if (omr_ws_render_deliver(&s, d, &out, &err) != 0)
			die("delivery did not render", err.code);
		cJSON *obj = rendered(out, "message", "delivery is not JSON");
		check(same(member(obj, "text"), d->text) && same(member(obj, "id"), d->msgid),
		      "delivery changed the text or id");
		cJSON_Delete(obj);
		free(out);
	}
	omr_envelope_destroy(&d);
}

/* An accepted hello under verification: attributes only with a customer id, and the
 * frame's customer_signature (read back from the raw frame) is that of the envelope's
 * tenant, customer and attributes. */
static void check_signed(const uint8_t *frame, size_t len, const omr_envelope_t *env)
{
	char want[OMR_WS_IDENTITY_SIG_LEN + 1];
	check(env->customer || env->n_attrs == 0,
	      "hello: attributes accepted without a customer id");
	if (!env->customer)
		return;
	cJSON *obj = cJSON_ParseWithLength((const char *)frame, len);
	check(omr_ws_identity_sign(SECRET, env->tenant, env->customer, env->attrs, env->n_attrs,
	                           want) == 0,
	      "hello: customer id cannot be signed");
	check(same(member(obj, "customer_signature"), want),
	      "hello: customer id accepted without its signature");
	cJSON_Delete(obj);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	omr_ws_session_t s, before;
	omr_ws_request_t rq;
	omr_ws_error_t err;

	if (size < 1)
		return 0;
	make_session(data[0], &s);
	before = s;
	bool identity = data[0] & 64;
	omr_ws_limits_t lim = limits;
	lim.identity_secret = identity ? SECRET : NULL;
	int rc = omr_ws_parse(&s, &lim, (const char *)data + 1, size - 1, &rq, &err);
	if (memcmp(&before, &s, sizeof(s)) != 0)
		die("parse changed the session", NULL);
	if (rc != 0) {
		check_refusal(rc, &rq, &err, identity);
		return 0;
	}
	if (!escapes_ok(data + 1, size - 1))
		die("accepted a string with a malformed \\u escape, \\u0000 or a lone surrogate",
		    NULL);
	check(members_ok(data + 1, size - 1), "accepted a repeated member name or over 32 members");
	if (rq.kind == OMR_WS_PING) {
		/* the adapter's own: no envelope, any session; a pong that renders */
		check(rq.env == NULL, "ping has an envelope");
		check(!rq.id[0] || omr_id_is_valid(rq.id, OMR_WS_ID_MAX),
		      "request id is not an id");
		char *pong = omr_ws_render_pong(rq.id);
		cJSON *obj = pong ? cJSON_Parse(pong) : NULL;
		check(obj != NULL, "pong does not render as JSON");
		cJSON_Delete(obj);
		free(pong);
		return 0;
	}
	check_envelope(&s, &rq);
	if (identity && rq.kind == OMR_WS_HELLO)
		check_signed(data + 1, size - 1, rq.env);
	check_reply_ok(&s, &rq);
	check_reply_failure(&s, &rq, statuses[(data[0] >> 3) & 7]);
	if (rq.kind == OMR_WS_MESSAGE)
		check_delivery(&rq);
	omr_ws_request_cleanup(&rq);
	check(rq.env == NULL, "cleanup left the envelope");
	return 0;
}
