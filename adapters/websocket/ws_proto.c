/* ws_proto.c - docs/PROTOCOL.md as pure functions: parse and validate client
 * frames into envelopes (the rendering of acks, deliveries and errors is in
 * ws_render.c).
 *
 * Every string taken from a client is checked here (ids against the id
 * alphabet, text with the chat channel's rules, names for UTF-8 and control
 * characters) before it reaches an envelope. cJSON turns "\u0000" into a real
 * NUL that silently truncates the string, so the raw frame is scanned for that
 * escape first; and it keeps repeated member names (look-ups find the first),
 * so a frame whose top-level object repeats a name, or has more than 32
 * members, is refused before anything in it is read. Owns nothing between calls. Any thread. */
#include "websocket/ws_proto.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "omnirouter/channel.h"
#include "omnirouter/error.h"
#include "omnirouter/util.h"
#include "websocket/ws_identity.h"

#define RAND_ID_BYTES 16 /* conversation ids and resume tokens: 32 hex */
#define HELLO_KEY_MIN 16 /* a hello's key: the client's random, 16-128 id characters */

static const char *const kind_names[] = {
        [OMR_WS_NONE] = "none",
        [OMR_WS_HELLO] = "hello",
        [OMR_WS_RESUME] = "resume",
        [OMR_WS_MESSAGE] = "message",
        [OMR_WS_LOGIN] = "login",
        [OMR_WS_PRESENCE] = "presence",
        [OMR_WS_CLOSE] = "close",
        [OMR_WS_ACK] = "ack",
        [OMR_WS_ACCEPT] = "accept",
        [OMR_WS_REJECT] = "reject",
        [OMR_WS_WRAPUP_END] = "wrapup_end",
        [OMR_WS_TYPING] = "typing",
        [OMR_WS_RATE] = "rate",
        [OMR_WS_TRANSFER] = "transfer",
        [OMR_WS_HISTORY] = "history",
        [OMR_WS_TEAM] = "team",
        [OMR_WS_MONITOR] = "monitor",
        [OMR_WS_PING] = "ping",
};

const char *omr_ws_kind_name(omr_ws_kind_t kind)
{
	return (unsigned)kind < sizeof(kind_names) / sizeof(kind_names[0]) ? kind_names[kind]
	                                                                   : "none";
}

void omr_ws_error_set(omr_ws_error_t *err, const char *code, const char *reason, int close_code)
{
	err->code = code;
	err->reason = reason;
	err->close_code = close_code;
}

/* ---- input checks ---------------------------------------------------- */

/* What the raw frame's \u escapes hold that cJSON would mishandle: NUL
 * (cJSON keeps it and silently truncates the string), malformed escapes
 * (cJSON 1.7.15 reads "\uzzzz" as NUL, with the same effect) and lone UTF-16
 * surrogates (cJSON fails the whole parse, losing the id to echo). */
typedef struct escape_scan {
	bool nul;
	bool malformed; /* \u without four hex digits */
	size_t n_bad;   /* lone surrogates */
	size_t bad[16]; /* offsets of the first ones, to patch */
} escape_scan_t;

static long hex4(const char *p, const char *end)
{
	long v = 0;
	if (end - p < 4)
		return -1;
	for (int i = 0; i < 4; i++) {
		char c = p[i];
		int d = c >= '0' && c <= '9'   ? c - '0'
		        : c >= 'a' && c <= 'f' ? c - 'a' + 10
		        : c >= 'A' && c <= 'F' ? c - 'A' + 10
		                               : -1;
		if (d < 0)
			return -1;
		v = v * 16 + d;
	}
	return v;
}

/* Handles the escape at buf[i] == '\\' inside a string; returns how many
 * bytes it spans. Tracks string state so an escaped backslash followed by
 * "u0000" stays text. */
static size_t scan_escape(const char *buf, size_t i, size_t len, escape_scan_t *sc)
{
	const char *end = buf + len;
	if (i + 1 >= len || buf[i + 1] != 'u')
		return 2;
	long v = hex4(buf + i + 2, end);
	if (v < 0) {
		sc->malformed = true; /* not JSON; cJSON may read it as NUL */
		return 2;
	}
	if (v == 0)
		sc->nul = true;
	bool high = v >= 0xD800 && v <= 0xDBFF, low = v >= 0xDC00 && v <= 0xDFFF;
	if (high && i + 12 <= len && buf[i + 6] == '\\' && buf[i + 7] == 'u') {
		long v2 = hex4(buf + i + 8, end);
		if (v2 >= 0xDC00 && v2 <= 0xDFFF)
			return 12; /* a valid pair */
	}
	if (high || low) {
		if (sc->n_bad < sizeof(sc->bad) / sizeof(sc->bad[0]))
			sc->bad[sc->n_bad] = i;
		sc->n_bad++;
	}
	return 6;
}

static void scan_escapes(const char *buf, size_t len, escape_scan_t *sc)
{
	bool in_str = false;
	memset(sc, 0, sizeof(*sc));
	for (size_t i = 0; i < len;) {
		char c = buf[i];
		if (!in_str) {
			in_str = c == '"';
			i++;
		} else if (c == '"') {
			in_str = false;
			i++;
		} else if (c == '\\') {
			i += scan_escape(buf, i, len, sc);
		} else {
			i++;
		}
	}
}

static bool only_space(const char *p, const char *end)
{
	for (; p < end; p++) {
		if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r')
			return false;
	}
	return true;
}

/* Looks up an optional string member. 0 (absent: *out NULL), -EINVAL
 * (present but not a string). */
static int get_str(const cJSON *obj, const char *key, const char **out)
{
	const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
	*out = NULL;
	if (!it)
		return 0;
	if (!cJSON_IsString(it) || !it->valuestring)
		return -EINVAL;
	*out = it->valuestring;
	return 0;
}

/* A member that must be an id of at most max bytes; copied into dst. */
static int take_id(const cJSON *obj, const char *key, size_t max, bool required, char *dst,
                   size_t dstsize, omr_ws_error_t *err, const char *why)
{
	const char *s = NULL;
	if (get_str(obj, key, &s) || (!s && required) || (s && !omr_id_is_valid(s, max))) {
		omr_ws_error_set(err, "bad-request", why, 0);
		return -EINVAL;
	}
	if (s)
		snprintf(dst, dstsize, "%s", s);
	return 0;
}

/* min..max bytes of UTF-8 without control characters (C0, DEL, C1). */
static bool is_printable(const char *s, size_t min, size_t max)
{
	size_t len = strlen(s);
	if (len < min || len > max || !omr_utf8_is_valid(s, len))
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c < 0x20 || c == 0x7f)
			return false;
		/* valid UTF-8: a lead byte 0xc2 always has its continuation */
		if (c == 0xc2 && (unsigned char)s[i + 1] >= 0x80 && (unsigned char)s[i + 1] <= 0x9f)
			return false; /* U+0080..U+009F */
	}
	return true;
}

/* A display name: 1-256 bytes of UTF-8 without control characters (C0, DEL, C1). */
static bool name_is_valid(const char *s)
{
	return is_printable(s, 1, OMR_WS_NAME_MAX);
}

/* A reject reason: 1-64 bytes of UTF-8 without control characters. */
static bool reason_is_printable(const char *s)
{
	return is_printable(s, 1, OMR_WS_REASON_MAX);
}

/* A break reason code: 1-64 bytes of [A-Za-z0-9._ -]. */
static bool break_reason_is_valid(const char *s)
{
	size_t len = strlen(s);
	if (len == 0 || len > OMR_WS_REASON_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == ' ' || c == '-'))
			return false;
	}
	return true;
}

static int take_text(const cJSON *obj, const omr_ws_limits_t *lim, const char **text,
                     omr_ws_error_t *err)
{
	const omr_channel_ops_t *chat = omr_channel_get(OMR_CHANNEL_CHAT);
	const char *why = "text must be a string";
	if (get_str(obj, "text", text) || !*text) {
		omr_ws_error_set(err, "bad-request", *text ? why : "text is missing", 0);
		return -EINVAL;
	}
	if (chat->validate_text(*text, strlen(*text), lim->max_text_bytes, &why)) {
		omr_ws_error_set(err, "bad-request", why, 0);
		return -EINVAL;
	}
	return 0;
}

/* An optional free text member (a survey comment, a transfer note): absent
 * or "" leave *text NULL; otherwise the chat text rules apply. */
static int take_opt_text(const cJSON *obj, const char *key, const omr_ws_limits_t *lim,
                         const char **text, omr_ws_error_t *err, const char *why)
{
	const omr_channel_ops_t *chat = omr_channel_get(OMR_CHANNEL_CHAT);
	const char *rule = NULL;
	if (get_str(obj, key, text) ||
	    (*text && **text &&
	     chat->validate_text(*text, strlen(*text), lim->max_text_bytes, &rule))) {
		*text = NULL;
		omr_ws_error_set(err, "bad-request", why, 0);
		return -EINVAL;
	}
	if (*text && !**text)
		*text = NULL;
	return 0;
}

/* An optional "language" member (a hello's; a transfer's, the customer's):
 * a BCP-47 tag, or *lang NULL when absent or "und" ("undetermined", RFC 5646
 * 4.1: as if none was given). */
static int take_language(const cJSON *obj, const char **lang, omr_ws_error_t *err)
{
	char primary[16];
	if (get_str(obj, "language", lang) ||
	    (*lang && (strlen(*lang) > OMR_WS_LANG_MAX ||
	               omr_language_primary(*lang, primary, sizeof(primary))))) {
		*lang = NULL;
		omr_ws_error_set(err, "bad-request", "language must be a BCP-47 tag", 0);
		return -EINVAL;
	}
	if (*lang && strcmp(primary, "und") == 0)
		*lang = NULL;
	return 0;
}

/* hello's "attributes": an object of at most 16 members, each an id (at
 * most 64 bytes) -> 0-255 bytes of UTF-8 without control characters, no name
 * twice (cJSON keeps repeated names; the envelope refuses them). Absent:
 * *out NULL. Identity verification signs NAME=VALUE lines of them and relies on
 * these rules (check_identity). */
static int check_attributes(const cJSON *obj, const cJSON **out, omr_ws_error_t *err)
{
	const cJSON *a = cJSON_GetObjectItemCaseSensitive(obj, "attributes");
	size_t n = 0;
	*out = NULL;
	if (!a)
		return 0;
	bool ok = cJSON_IsObject(a);
	for (const cJSON *it = ok ? a->child : NULL; ok && it; it = it->next) {
		ok = ++n <= OMR_WS_ATTRS_MAX && it->string &&
		     omr_id_is_valid(it->string, OMR_WS_ATTR_KEY_MAX) && cJSON_IsString(it) &&
		     it->valuestring && is_printable(it->valuestring, 0, OMR_WS_ATTR_VALUE_MAX);
		for (const cJSON *prev = a->child; ok && prev != it; prev = prev->next)
			ok = strcmp(prev->string, it->string) != 0;
	}
	if (!ok) {
		omr_ws_error_set(err, "bad-request",
		                 "attributes must be an object of at most 16 distinct ids (64 "
		                 "bytes) -> strings of 0-255 bytes without control characters",
		                 0);
		return -EINVAL;
	}
	*out = a;
	return 0;
}

/* ---- building envelopes ---------------------------------------------- */

static omr_envelope_t *env_for(const omr_ws_session_t *s, omr_env_type_t type, const char *tenant)
{
	omr_envelope_t *env = omr_envelope_new(type);
	if (!env)
		return NULL;
	env->conn = s->conn;
	env->channel = OMR_CHANNEL_CHAT;
	if (omr_envelope_set(&env->tenant, tenant)) {
		omr_envelope_destroy(&env);
		return NULL;
	}
	return env;
}

/* Sets several string fields; stops at the first -ENOMEM. */
static int env_set_all(char **f1, const char *v1, char **f2, const char *v2, char **f3,
                       const char *v3)
{
	int rc = omr_envelope_set(f1, v1);
	if (!rc && f2)
		rc = omr_envelope_set(f2, v2);
	if (!rc && f3)
		rc = omr_envelope_set(f3, v3);
	return rc;
}

/* With chat.identity_secret set, a hello's customer_id must come with the signature of
 * (tenant, customer_id, attributes): an unsigned or wrongly signed one is refused and the
 * connection closed, like a bad resume token; so are attributes without a customer_id (they
 * would be claims nobody signed); a hello with neither stays anonymous. ws_identity.c builds
 * the signed bytes; check_attributes has made them unambiguous: names are ids (no "=", no
 * "\n"), values have no control characters (no "\n"), at most OMR_WS_ATTRS_MAX, each name
 * once. Without a secret customer_signature is ignored, like any unknown member, and
 * attributes stay the page's claims. */
static int check_identity(const omr_ws_limits_t *lim, const cJSON *obj, const cJSON *attrs,
                          const char *tenant, const char *customer, omr_ws_error_t *err)
{
	omr_env_attr_t signed_attrs[OMR_WS_ATTRS_MAX];
	size_t n = 0;
	const char *sig = NULL;
	if (!lim->identity_secret || !lim->identity_secret[0])
		return 0;
	if (get_str(obj, "customer_signature", &sig) || (sig && !customer[0])) {
		omr_ws_error_set(err, "bad-request",
		                 sig ? "customer_signature needs a customer_id"
		                     : "customer_signature must be a string",
		                 0);
		return -EINVAL;
	}
	for (const cJSON *it = attrs ? attrs->child : NULL; it; it = it->next)
		signed_attrs[n++] = (omr_env_attr_t){.key = it->string, .value = it->valuestring};
	if (n && !customer[0]) {
		omr_ws_error_set(err, "unauthorized",
		                 "attributes need a customer_id with its customer_signature",
		                 OMR_WS_CLOSE_POLICY);
		return -EINVAL;
	}
	if (customer[0] && !omr_ws_identity_is_valid(lim->identity_secret, tenant, customer,
	                                             signed_attrs, n, sig)) {
		omr_ws_error_set(
		        err, "unauthorized",
		        !sig ? "customer_id needs a customer_signature"
		        : n  ? "customer_signature does not match customer_id and attributes"
		             : "customer_signature does not match customer_id",
		        OMR_WS_CLOSE_POLICY);
		return -EINVAL;
	}
	return 0;
}

/* A hello's conversation id and resume token are drawn from its key (two
 * SHA-256 of tenant and key, 32 hex each): a hello sent again with the same
 * key names the same conversation, which omr_conv_start then answers
 * without making a second one. */
static void hello_ids(const char *tenant, const char *key, omr_ws_request_t *rq)
{
	char buf[OMR_WS_TENANT_MAX + OMR_WS_ID_MAX + 16], hex[65];
	int n = snprintf(buf, sizeof(buf), "omr-conv|%s|%s", tenant, key);
	omr_sha256_hex(buf, (size_t)n, hex);
	snprintf(rq->conv, sizeof(rq->conv), "%.*s", RAND_ID_BYTES * 2, hex);
	n = snprintf(buf, sizeof(buf), "omr-token|%s|%s", tenant, key);
	omr_sha256_hex(buf, (size_t)n, hex);
	snprintf(rq->token, sizeof(rq->token), "%.*s", RAND_ID_BYTES * 2, hex);
}

static int parse_hello(const omr_ws_session_t *s, const omr_ws_limits_t *lim, const cJSON *obj,
                       omr_ws_request_t *rq, omr_ws_error_t *err)
{
	const char *lang = NULL, *name = NULL;
	const cJSON *attrs = NULL;
	char customer[OMR_WS_ID_MAX + 1] = "", topic[OMR_WS_ID_MAX + 1] = "";
	if (take_id(obj, "tenant", OMR_WS_TENANT_MAX, false, rq->tenant, sizeof(rq->tenant), err,
	            "tenant must be 1-64 of [A-Za-z0-9._:@-]") ||
	    take_id(obj, "customer_id", OMR_WS_ID_MAX, false, customer, sizeof(customer), err,
	            "customer_id must be 1-128 of [A-Za-z0-9._:@-]") ||
	    take_id(obj, "topic", OMR_WS_ID_MAX, false, topic, sizeof(topic), err,
	            "topic must be 1-128 of [A-Za-z0-9._:@-]") ||
	    take_id(obj, "key", OMR_WS_ID_MAX, false, rq->key, sizeof(rq->key), err,
	            "key must be 16-128 of [A-Za-z0-9._:@-]") ||
	    check_attributes(obj, &attrs, err))
		return -EINVAL;
	if (omr_id_names_subkey(customer, OMR_ID_CUSTOMER)) {
		/* the list of that customer's conversations, as versions before 2026-12 kept it */
		omr_ws_error_set(err, "bad-request", "customer_id may not end in :convs", 0);
		return -EINVAL;
	}
	if (rq->key[0] && strlen(rq->key) < HELLO_KEY_MIN) {
		omr_ws_error_set(err, "bad-request", "key must be 16-128 of [A-Za-z0-9._:@-]", 0);
		return -EINVAL;
	}
	if (take_language(obj, &lang, err))
		return -EINVAL;
	if (get_str(obj, "name", &name) || (name && !name_is_valid(name))) {
		omr_ws_error_set(err, "bad-request",
		                 "name must be 1-256 bytes of UTF-8 without control characters", 0);
		return -EINVAL;
	}
	if (!rq->tenant[0])
		snprintf(rq->tenant, sizeof(rq->tenant), "%s", lim->default_tenant);
	if (check_identity(lim, obj, attrs, rq->tenant, customer, err))
		return -EINVAL;
	if (!rq->key[0] && s->hello_key[0])
		snprintf(rq->key, sizeof(rq->key), "%s", s->hello_key);
	else if (!rq->key[0] && omr_random_hex(rq->key, sizeof(rq->key), RAND_ID_BYTES))
		return -ENOMEM; /* the CSPRNG failing is as fatal as no memory */
	hello_ids(rq->tenant, rq->key, rq);
	rq->env = env_for(s, OMR_ENV_CONV_START, rq->tenant);
	if (!rq->env)
		return -ENOMEM;
	rq->env->from = OMR_ROLE_CUSTOMER;
	if (env_set_all(&rq->env->conv, rq->conv, &rq->env->token, rq->token, &rq->env->lang,
	                lang ? lang : lim->default_language) ||
	    omr_envelope_set(&rq->env->name, name) ||
	    (customer[0] && omr_envelope_set(&rq->env->customer, customer)) ||
	    (topic[0] && omr_envelope_add_skill(rq->env, topic)))
		return -ENOMEM;
	for (const cJSON *it = attrs ? attrs->child : NULL; it; it = it->next) {
		if (omr_envelope_add_attr(rq->env, it->string, it->valuestring))
			return -ENOMEM; /* 16 < OMR_ENV_ATTRS_MAX: only ENOMEM */
	}
	return 0;
}

static int parse_resume(const omr_ws_session_t *s, const omr_ws_limits_t *lim, const cJSON *obj,
                        omr_ws_request_t *rq, omr_ws_error_t *err)
{
	char after[OMR_WS_ID_MAX + 1] = "0";
	if (take_id(obj, "tenant", OMR_WS_TENANT_MAX, false, rq->tenant, sizeof(rq->tenant), err,
	            "tenant must be 1-64 of [A-Za-z0-9._:@-]") ||
	    take_id(obj, "conversation_id", OMR_WS_ID_MAX, true, rq->conv, sizeof(rq->conv), err,
	            "conversation_id is missing or not an id") ||
	    take_id(obj, "resume_token", OMR_WS_ID_MAX, true, rq->token, sizeof(rq->token), err,
	            "resume_token is missing or not an id") ||
	    take_id(obj, "after", OMR_WS_ID_MAX, false, after, sizeof(after), err,
	            "after must be a seq"))
		return -EINVAL;
	if (!rq->tenant[0])
		snprintf(rq->tenant, sizeof(rq->tenant), "%s", lim->default_tenant);
	rq->env = env_for(s, OMR_ENV_CONV_RESUME, rq->tenant);
	if (!rq->env)
		return -ENOMEM;
	rq->env->from = OMR_ROLE_CUSTOMER;
	return env_set_all(&rq->env->conv, rq->conv, &rq->env->token, rq->token, &rq->env->seq,
	                   after)
	               ? -ENOMEM
	               : 0;
}

static int parse_message(const omr_ws_session_t *s, const omr_ws_limits_t *lim, const cJSON *obj,
                         omr_ws_request_t *rq, omr_ws_error_t *err)
{
	const char *text = NULL;
	bool agent = s->role == OMR_WS_ROLE_AGENT;
	if (!rq->id[0]) {
		omr_ws_error_set(err, "bad-request", "id is required", 0);
		return -EINVAL;
	}
	if (agent && take_id(obj, "conversation_id", OMR_WS_ID_MAX, true, rq->conv,
	                     sizeof(rq->conv), err, "conversation_id is missing or not an id"))
		return -EINVAL;
	if (take_text(obj, lim, &text, err))
		return -EINVAL;
	if (!agent)
		snprintf(rq->conv, sizeof(rq->conv), "%s", s->conv);
	rq->env = env_for(s, OMR_ENV_CONV_MESSAGE, s->tenant);
	if (!rq->env)
		return -ENOMEM;
	rq->env->from = agent ? OMR_ROLE_AGENT : OMR_ROLE_CUSTOMER;
	return env_set_all(&rq->env->conv, rq->conv, &rq->env->msgid, rq->id, &rq->env->text,
	                   text) ||
	                       (agent && omr_envelope_set(&rq->env->agent, s->agent))
	               ? -ENOMEM
	               : 0;
}

/* login's optional "conversations": the ids of the conversations the
 * desktop shows now (the server sends again those the agent holds that are
 * not among them), joined with commas into attr "known". 0, -EINVAL (err
 * set), -ENOMEM. */
static int take_known(const cJSON *obj, omr_envelope_t *env, omr_ws_error_t *err)
{
	const cJSON *list = cJSON_GetObjectItemCaseSensitive(obj, "conversations");
	if (!list)
		return 0;
	char known[OMR_ENV_ATTR_VALUE_MAX + 1];
	size_t len = 0;
	known[0] = '\0';
	const cJSON *it;
	if (!cJSON_IsArray(list))
		goto bad;
	cJSON_ArrayForEach(it, list)
	{
		if (!cJSON_IsString(it) || !omr_id_is_valid(it->valuestring, OMR_WS_ID_MAX))
			goto bad;
		size_t n = strlen(it->valuestring);
		if (len + (len ? 1 : 0) + n > OMR_ENV_ATTR_VALUE_MAX)
			goto bad;
		len += (size_t)snprintf(known + len, sizeof(known) - len, "%s%s", len ? "," : "",
		                        it->valuestring);
	}
	return omr_envelope_add_attr(env, "known", known) ? -ENOMEM : 0;
bad:
	omr_ws_error_set(err, "bad-request",
	                 "conversations must be a list of ids (1024 bytes in all at most)", 0);
	return -EINVAL;
}

static int parse_login(const omr_ws_session_t *s, const omr_ws_limits_t *lim, const cJSON *obj,
                       omr_ws_request_t *rq, omr_ws_error_t *err)
{
	if (take_id(obj, "tenant", OMR_WS_TENANT_MAX, false, rq->tenant, sizeof(rq->tenant), err,
	            "tenant must be 1-64 of [A-Za-z0-9._:@-]") ||
	    take_id(obj, "agent_id", OMR_WS_ID_MAX, true, rq->agent, sizeof(rq->agent), err,
	            "agent_id is missing or not an id") ||
	    take_id(obj, "token", OMR_WS_ID_MAX, true, rq->token, sizeof(rq->token), err,
	            "token is missing or not an id"))
		return -EINVAL;
	if (!rq->tenant[0])
		snprintf(rq->tenant, sizeof(rq->tenant), "%s", lim->default_tenant);
	rq->env = env_for(s, OMR_ENV_AGENT_LOGIN, rq->tenant);
	if (!rq->env)
		return -ENOMEM;
	if (env_set_all(&rq->env->agent, rq->agent, &rq->env->token, rq->token, NULL, NULL))
		return -ENOMEM;
	return take_known(obj, rq->env, err);
}

/* presence: available, away, or break with an optional reason code. */
static int parse_presence(const omr_ws_session_t *s, const cJSON *obj, omr_ws_request_t *rq,
                          omr_ws_error_t *err)
{
	const char *presence = NULL, *reason = NULL;
	if (get_str(obj, "presence", &presence) || !presence ||
	    (strcmp(presence, "available") != 0 && strcmp(presence, "away") != 0 &&
	     strcmp(presence, "break") != 0)) {
		omr_ws_error_set(err, "bad-request",
		                 "presence must be \"available\", \"away\" or \"break\"", 0);
		return -EINVAL;
	}
	if (get_str(obj, "reason", &reason) || (reason && !break_reason_is_valid(reason))) {
		omr_ws_error_set(err, "bad-request", "reason must be 1-64 of [A-Za-z0-9._ -]", 0);
		return -EINVAL;
	}
	if (reason && strcmp(presence, "break") != 0) {
		omr_ws_error_set(err, "bad-request", "reason is allowed only with \"break\"", 0);
		return -EINVAL;
	}
	snprintf(rq->presence, sizeof(rq->presence), "%s", presence);
	rq->env = env_for(s, OMR_ENV_AGENT_PRESENCE, s->tenant);
	if (!rq->env)
		return -ENOMEM;
	return env_set_all(&rq->env->agent, s->agent, &rq->env->presence, presence,
	                   &rq->env->reason, reason)
	               ? -ENOMEM
	               : 0;
}

/* accept and reject: the agent answers an offer. */
static int parse_offer(const omr_ws_session_t *s, const cJSON *obj, omr_ws_request_t *rq,
                       omr_ws_error_t *err)
{
	const char *reason = NULL;
	bool reject = rq->kind == OMR_WS_REJECT;
	if (take_id(obj, "conversation_id", OMR_WS_ID_MAX, true, rq->conv, sizeof(rq->conv), err,
	            "conversation_id is missing or not an id"))
		return -EINVAL;
	if (reject &&
	    (get_str(obj, "reason", &reason) || (reason && !reason_is_printable(reason)))) {
		omr_ws_error_set(err, "bad-request",
		                 "reason must be 1-64 bytes of UTF-8 without control characters",
		                 0);
		return -EINVAL;
	}
	rq->env = env_for(s, reject ? OMR_ENV_OFFER_REJECT : OMR_ENV_OFFER_ACCEPT, s->tenant);
	if (!rq->env)
		return -ENOMEM;
	return env_set_all(&rq->env->agent, s->agent, &rq->env->conv, rq->conv, &rq->env->reason,
	                   reason)
	               ? -ENOMEM
	               : 0;
}

/* wrapup_end: the agent is ready again on one channel. */
static int parse_wrapup_end(const omr_ws_session_t *s, const cJSON *obj, omr_ws_request_t *rq,
                            omr_ws_error_t *err)
{
	const char *ch = NULL;
	omr_channel_t channel = OMR_CHANNEL_NONE;
	if (get_str(obj, "channel", &ch) || !ch ||
	    (channel = omr_channel_from_name(ch, strlen(ch))) == OMR_CHANNEL_NONE) {
		omr_ws_error_set(err, "bad-request",
		                 "channel must be \"chat\", \"email\" or \"voice\"", 0);
		return -EINVAL;
	}
	rq->env = env_for(s, OMR_ENV_WRAPUP_END, s->tenant);
	if (!rq->env)
		return -ENOMEM;
	rq->env->channel = channel;
	return omr_envelope_set(&rq->env->agent, s->agent) ? -ENOMEM : 0;
}

/* close and ack: the agent's small requests. */
static int parse_agent_op(const omr_ws_session_t *s, const cJSON *obj, omr_ws_request_t *rq,
                          omr_ws_error_t *err)
{
	char seq[OMR_WS_ID_MAX + 1] = "", disposition[OMR_WS_REASON_MAX + 1] = "";
	omr_env_type_t type = OMR_ENV_AGENT_ACK;
	if (rq->kind == OMR_WS_CLOSE) {
		type = OMR_ENV_CONV_CLOSE;
		if (take_id(obj, "conversation_id", OMR_WS_ID_MAX, true, rq->conv, sizeof(rq->conv),
		            err, "conversation_id is missing or not an id") ||
		    take_id(obj, "disposition", OMR_WS_REASON_MAX, false, disposition,
		            sizeof(disposition), err,
		            "disposition must be 1-64 of [A-Za-z0-9._:@-]"))
			return -EINVAL;
	} else if (take_id(obj, "seq", OMR_WS_ID_MAX, true, seq, sizeof(seq), err,
	                   "seq is missing or not a seq")) {
		return -EINVAL;
	}
	rq->env = env_for(s, type, s->tenant);
	if (!rq->env)
		return -ENOMEM;
	if (type == OMR_ENV_CONV_CLOSE)
		rq->env->from = OMR_ROLE_AGENT;
	return env_set_all(&rq->env->agent, s->agent, &rq->env->conv, rq->conv[0] ? rq->conv : NULL,
	                   &rq->env->reason, disposition[0] ? disposition : NULL) ||
	                       (seq[0] && omr_envelope_set(&rq->env->seq, seq))
	               ? -ENOMEM
	               : 0;
}

/* typing: the customer's is about its own conversation, the agent's names
 * one. Not stored, and not answered unless it fails. */
static int parse_typing(const omr_ws_session_t *s, const cJSON *obj, omr_ws_request_t *rq,
                        omr_ws_error_t *err)
{
	bool agent = s->role == OMR_WS_ROLE_AGENT;
	if (agent && take_id(obj, "conversation_id", OMR_WS_ID_MAX, true, rq->conv,
	                     sizeof(rq->conv), err, "conversation_id is missing or not an id"))
		return -EINVAL;
	if (!agent)
		snprintf(rq->conv, sizeof(rq->conv), "%s", s->conv);
	rq->env = env_for(s, OMR_ENV_CONV_TYPING, s->tenant);
	if (!rq->env)
		return -ENOMEM;
	rq->env->from = agent ? OMR_ROLE_AGENT : OMR_ROLE_CUSTOMER;
	return env_set_all(&rq->env->conv, rq->conv, &rq->env->agent, agent ? s->agent : NULL, NULL,
	                   NULL)
	               ? -ENOMEM
	               : 0;
}

/* rate: the customer's 1-5 answer to the survey, with an optional comment. */
static int parse_rate(const omr_ws_session_t *s, const omr_ws_limits_t *lim, const cJSON *obj,
                      omr_ws_request_t *rq, omr_ws_error_t *err)
{
	const cJSON *score = cJSON_GetObjectItemCaseSensitive(obj, "score");
	const char *comment = NULL;
	char v[2];
	if (!cJSON_IsNumber(score) || !(score->valuedouble >= 1 && score->valuedouble <= 5) ||
	    score->valuedouble != (double)(int)score->valuedouble) {
		omr_ws_error_set(err, "bad-request", "score must be a whole number from 1 to 5", 0);
		return -EINVAL;
	}
	if (take_opt_text(obj, "comment", lim, &comment, err,
	                  "comment must be UTF-8 text of at most chat.max_text_bytes"))
		return -EINVAL;
	v[0] = (char)('0' + (int)score->valuedouble);
	v[1] = '\0';
	snprintf(rq->conv, sizeof(rq->conv), "%s", s->conv);
	rq->env = env_for(s, OMR_ENV_CONV_RATE, s->tenant);
	if (!rq->env)
		return -ENOMEM;
	return omr_envelope_set(&rq->env->conv, rq->conv) ||
	                       omr_envelope_add_attr(rq->env, "score", v) ||
	                       omr_envelope_set(&rq->env->text, comment)
	               ? -ENOMEM
	               : 0;
}

/* transfer: to a queue or to an agent (exactly one), with an optional note
 * for whoever takes it next. */
static int parse_transfer(const omr_ws_session_t *s, const omr_ws_limits_t *lim, const cJSON *obj,
                          omr_ws_request_t *rq, omr_ws_error_t *err)
{
	char queue[OMR_WS_ID_MAX + 1] = "", target[OMR_WS_ID_MAX + 1] = "";
	const char *note = NULL;
	if (take_id(obj, "conversation_id", OMR_WS_ID_MAX, true, rq->conv, sizeof(rq->conv), err,
	            "conversation_id is missing or not an id") ||
	    take_id(obj, "queue", OMR_WS_ID_MAX, false, queue, sizeof(queue), err,
	            "queue must be 1-128 of [A-Za-z0-9._:@-]") ||
	    take_id(obj, "agent", OMR_WS_ID_MAX, false, target, sizeof(target), err,
	            "agent must be 1-128 of [A-Za-z0-9._:@-]"))
		return -EINVAL;
	if (!queue[0] == !target[0]) {
		omr_ws_error_set(err, "bad-request", "give exactly one of queue and agent", 0);
		return -EINVAL;
	}
	if (take_opt_text(obj, "note", lim, &note, err,
	                  "note must be UTF-8 text of at most chat.max_text_bytes"))
		return -EINVAL;
	/* the customer's language, when it is not the one the conversation has
	 * ("und": it keeps its own) */
	const char *lang = NULL;
	if (take_language(obj, &lang, err))
		return -EINVAL;
	rq->env = env_for(s, OMR_ENV_CONV_TRANSFER, s->tenant);
	if (!rq->env)
		return -ENOMEM;
	return env_set_all(&rq->env->conv, rq->conv, &rq->env->agent, s->agent, &rq->env->text,
	                   note) ||
	                       (lang && omr_envelope_set(&rq->env->lang, lang)) ||
	                       omr_envelope_add_attr(rq->env, queue[0] ? "queue" : "agent",
	                                             queue[0] ? queue : target)
	               ? -ENOMEM
	               : 0;
}

/* history and monitor: a transcript outside the agent's inbox, read-only.
 * history: an earlier conversation (`earlier`) of the customer of
 * conversation_id; monitor: conversation_id itself, held by an agent this one
 * supervises. Its items come before the ack. */
static int parse_transcript(const omr_ws_session_t *s, const cJSON *obj, omr_ws_request_t *rq,
                            omr_ws_error_t *err)
{
	char earlier[OMR_WS_ID_MAX + 1] = "";
	bool history = rq->kind == OMR_WS_HISTORY;
	if (take_id(obj, "conversation_id", OMR_WS_ID_MAX, true, rq->conv, sizeof(rq->conv), err,
	            "conversation_id is missing or not an id") ||
	    (history && take_id(obj, "earlier", OMR_WS_ID_MAX, true, earlier, sizeof(earlier), err,
	                        "earlier is missing or not an id")))
		return -EINVAL;
	rq->env = env_for(s, history ? OMR_ENV_CONV_HISTORY : OMR_ENV_CONV_MONITOR, s->tenant);
	if (!rq->env)
		return -ENOMEM;
	return env_set_all(&rq->env->conv, rq->conv, &rq->env->agent, s->agent, NULL, NULL) ||
	                       (history && omr_envelope_add_attr(rq->env, "earlier", earlier))
	               ? -ENOMEM
	               : 0;
}

/* team: the supervisor's snapshot of the agents it supervises. No members;
 * its items come before the ack. */
static int parse_team(const omr_ws_session_t *s, omr_ws_request_t *rq)
{
	rq->env = env_for(s, OMR_ENV_AGENT_TEAM, s->tenant);
	if (!rq->env)
		return -ENOMEM;
	return omr_envelope_set(&rq->env->agent, s->agent) ? -ENOMEM : 0;
}

/* ---- frame dispatch --------------------------------------------------- */

static omr_ws_kind_t kind_for(omr_ws_role_t role, const char *type)
{
	static const struct {
		omr_ws_role_t role;
		const char *name;
		omr_ws_kind_t kind;
	} table[] = {
	        {OMR_WS_ROLE_CUSTOMER, "hello", OMR_WS_HELLO},
	        {OMR_WS_ROLE_CUSTOMER, "resume", OMR_WS_RESUME},
	        {OMR_WS_ROLE_CUSTOMER, "message", OMR_WS_MESSAGE},
	        {OMR_WS_ROLE_CUSTOMER, "typing", OMR_WS_TYPING},
	        {OMR_WS_ROLE_CUSTOMER, "rate", OMR_WS_RATE},
	        {OMR_WS_ROLE_AGENT, "login", OMR_WS_LOGIN},
	        {OMR_WS_ROLE_AGENT, "presence", OMR_WS_PRESENCE},
	        {OMR_WS_ROLE_AGENT, "message", OMR_WS_MESSAGE},
	        {OMR_WS_ROLE_AGENT, "close", OMR_WS_CLOSE},
	        {OMR_WS_ROLE_AGENT, "ack", OMR_WS_ACK},
	        {OMR_WS_ROLE_AGENT, "accept", OMR_WS_ACCEPT},
	        {OMR_WS_ROLE_AGENT, "reject", OMR_WS_REJECT},
	        {OMR_WS_ROLE_AGENT, "wrapup_end", OMR_WS_WRAPUP_END},
	        {OMR_WS_ROLE_AGENT, "typing", OMR_WS_TYPING},
	        {OMR_WS_ROLE_AGENT, "transfer", OMR_WS_TRANSFER},
	        {OMR_WS_ROLE_AGENT, "history", OMR_WS_HISTORY},
	        {OMR_WS_ROLE_AGENT, "team", OMR_WS_TEAM},
	        {OMR_WS_ROLE_AGENT, "monitor", OMR_WS_MONITOR},
	        {OMR_WS_ROLE_CUSTOMER, "ping", OMR_WS_PING},
	        {OMR_WS_ROLE_AGENT, "ping", OMR_WS_PING},
	};
	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
		if (table[i].role == role && strcmp(table[i].name, type) == 0)
			return table[i].kind;
	}
	return OMR_WS_NONE;
}

bool omr_ws_kind_is_auth(omr_ws_kind_t k)
{
	return k == OMR_WS_HELLO || k == OMR_WS_RESUME || k == OMR_WS_LOGIN;
}

/* The top-level object's member names: at most OMR_WS_MEMBERS_MAX, each
 * once. cJSON keeps every duplicate and its look-ups return the first, so a
 * frame like {"type":"hello","type":"login"} would mean one thing here and
 * another to a different JSON reader: refuse it. Non-objects pass (the
 * frame check refuses them). */
static int check_members(const cJSON *root, omr_ws_error_t *err)
{
	size_t n = 0;
	if (!cJSON_IsObject(root))
		return 0;
	for (const cJSON *it = root->child; it; it = it->next) {
		if (++n > OMR_WS_MEMBERS_MAX) {
			omr_ws_error_set(err, "bad-json", "frame has more than 32 members",
			                 OMR_WS_CLOSE_BAD_DATA);
			return -EINVAL;
		}
		for (const cJSON *prev = root->child; prev != it; prev = prev->next) {
			if (prev->string && it->string && strcmp(prev->string, it->string) == 0) {
				omr_ws_error_set(err, "bad-json", "frame repeats a member name",
				                 OMR_WS_CLOSE_BAD_DATA);
				return -EINVAL;
			}
		}
	}
	return 0;
}

/* Checks the envelope of the frame: type, v, id, and what the session allows
 * before authentication. Fills rq->kind and rq->id. */
static int check_frame(const omr_ws_session_t *s, const cJSON *root, omr_ws_request_t *rq,
                       omr_ws_error_t *err)
{
	const char *type = NULL, *id = NULL;
	if (!cJSON_IsObject(root) || get_str(root, "type", &type) || !type) {
		omr_ws_error_set(err, "bad-json", "frame is not a JSON object with a string type",
		                 OMR_WS_CLOSE_BAD_DATA);
		return -EINVAL;
	}
	if (get_str(root, "id", &id) == 0 && id && omr_id_is_valid(id, OMR_WS_ID_MAX))
		snprintf(err->id, sizeof(err->id), "%s", id);
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, "v");
	if (v && !(cJSON_IsNumber(v) && v->valuedouble == OMR_WS_PROTO_VERSION)) {
		omr_ws_error_set(err, "unsupported-version", "this server speaks version 1",
		                 OMR_WS_CLOSE_PROTOCOL);
		return -EINVAL;
	}
	if (cJSON_GetObjectItemCaseSensitive(root, "id") && !err->id[0]) {
		omr_ws_error_set(err, "bad-request", "id must be 1-128 of [A-Za-z0-9._:@-]", 0);
		return -EINVAL;
	}
	snprintf(rq->id, sizeof(rq->id), "%s", err->id);
	rq->kind = kind_for(s->role, type);
	if (rq->kind == OMR_WS_NONE) {
		omr_ws_error_set(err, "bad-request", "unknown type", 0);
		return -EINVAL;
	}
	if (!s->authed && !omr_ws_kind_is_auth(rq->kind) && rq->kind != OMR_WS_PING) {
		omr_ws_error_set(err, "unauthorized",
		                 s->role == OMR_WS_ROLE_AGENT ? "log in first" : "say hello first",
		                 0);
		return -EINVAL;
	}
	if (omr_ws_kind_is_auth(rq->kind) && (s->authed || s->auth_pending)) {
		omr_ws_error_set(err, "bad-request",
		                 s->authed ? "already authenticated" : "authentication in progress",
		                 0);
		return -EINVAL;
	}
	return 0;
}

static int parse_kind(const omr_ws_session_t *s, const omr_ws_limits_t *lim, const cJSON *root,
                      omr_ws_request_t *rq, omr_ws_error_t *err)
{
	switch (rq->kind) {
	case OMR_WS_HELLO:
		return parse_hello(s, lim, root, rq, err);
	case OMR_WS_RESUME:
		return parse_resume(s, lim, root, rq, err);
	case OMR_WS_MESSAGE:
		return parse_message(s, lim, root, rq, err);
	case OMR_WS_LOGIN:
		return parse_login(s, lim, root, rq, err);
	case OMR_WS_PRESENCE:
		return parse_presence(s, root, rq, err);
	case OMR_WS_ACCEPT:
	case OMR_WS_REJECT:
		return parse_offer(s, root, rq, err);
	case OMR_WS_WRAPUP_END:
		return parse_wrapup_end(s, root, rq, err);
	case OMR_WS_CLOSE:
	case OMR_WS_ACK:
		return parse_agent_op(s, root, rq, err);
	case OMR_WS_TYPING:
		return parse_typing(s, root, rq, err);
	case OMR_WS_RATE:
		return parse_rate(s, lim, root, rq, err);
	case OMR_WS_TRANSFER:
		return parse_transfer(s, lim, root, rq, err);
	case OMR_WS_HISTORY:
	case OMR_WS_MONITOR:
		return parse_transcript(s, root, rq, err);
	case OMR_WS_TEAM:
		return parse_team(s, rq);
	case OMR_WS_PING:
		return 0; /* answered by the adapter: nothing goes to the router */
	default:
		omr_ws_error_set(err, "bad-request", "unknown type", 0);
		return -EINVAL;
	}
}

int omr_ws_parse(const omr_ws_session_t *s, const omr_ws_limits_t *lim, const char *buf, size_t len,
                 omr_ws_request_t *out, omr_ws_error_t *err)
{
	memset(out, 0, sizeof(*out));
	memset(err, 0, sizeof(*err));
	const char *end = NULL;
	if (len == 0 || memchr(buf, '\0', len)) {
		omr_ws_error_set(err, "bad-json", "frame is empty or holds a NUL byte",
		                 OMR_WS_CLOSE_BAD_DATA);
		return -EINVAL;
	}
	escape_scan_t sc;
	scan_escapes(buf, len, &sc);
	if (sc.malformed) {
		omr_ws_error_set(err, "bad-json", "frame is not valid JSON", OMR_WS_CLOSE_BAD_DATA);
		return -EINVAL;
	}
	char *patched = NULL;
	if (sc.n_bad) {
		/* Parse a copy with each lone surrogate turned into U+FFFD (same
		 * length) to read the id, then refuse the frame. */
		if (sc.n_bad > sizeof(sc.bad) / sizeof(sc.bad[0]) || !(patched = malloc(len))) {
			omr_ws_error_set(err, "bad-request",
			                 "a string holds a lone UTF-16 surrogate", 0);
			return -EINVAL;
		}
		memcpy(patched, buf, len);
		for (size_t i = 0; i < sc.n_bad; i++)
			memcpy(patched + sc.bad[i] + 2, "fffd", 4);
	}
	const char *text = patched ? patched : buf;
	cJSON *root = cJSON_ParseWithLengthOpts(text, len, &end, false);
	if (!root || !end || !only_space(end, text + len)) {
		cJSON_Delete(root);
		free(patched);
		omr_ws_error_set(err, "bad-json", "frame is not valid JSON", OMR_WS_CLOSE_BAD_DATA);
		return -EINVAL;
	}
	free(patched);
	int rc = check_members(root, err);
	if (!rc)
		rc = check_frame(s, root, out, err);
	if (!rc && (sc.nul || sc.n_bad)) {
		omr_ws_error_set(err, "bad-request",
		                 sc.nul ? "a string contains NUL (\\u0000)"
		                        : "a string holds a lone UTF-16 surrogate",
		                 0);
		rc = -EINVAL;
	}
	if (!rc)
		rc = parse_kind(s, lim, root, out, err);
	cJSON_Delete(root);
	if (rc) {
		omr_ws_request_cleanup(out);
		if (rc == -ENOMEM)
			omr_ws_error_set(err, "unavailable", "out of memory", 0);
	}
	return rc;
}

void omr_ws_request_cleanup(omr_ws_request_t *req)
{
	if (req)
		omr_envelope_destroy(&req->env);
}
