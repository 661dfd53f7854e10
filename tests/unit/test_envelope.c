/* test_envelope.c - the bus envelope codec (common/envelope.c).
 *
 * Round trips of every field and type; the exact bytes of a known envelope;
 * the encoder's rules; and, for every decoder rule, a hostile frame built
 * byte by byte with the exact return code and reason it must get. The
 * hostile frames are also committed as files in tests/fuzz/hostile/envelope/
 * (the fuzz replay runs them); test_hostile_files_match keeps the two in
 * step. To rewrite the files after changing the table:
 *   OMR_WRITE_HOSTILE=tests/fuzz/hostile/envelope build/tests/test_envelope */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <stdbool.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "omnirouter/envelope.h"

#define MAX OMR_ENV_FRAME_MAX_DEFAULT
#define HOSTILE_DIR OMR_SOURCE_DIR "/tests/fuzz/hostile/envelope"
#define CORPUS_DIR OMR_SOURCE_DIR "/tests/fuzz/corpus/envelope"

/* ---- helpers ------------------------------------------------------------ */

static void assert_str_eq(const char *a, const char *b)
{
	if (!a || !b)
		assert_ptr_equal(a, b);
	else
		assert_string_equal(a, b);
}

static void assert_env_equal(const omr_envelope_t *a, const omr_envelope_t *b)
{
	assert_int_equal(a->v, b->v);
	assert_int_equal(a->type, b->type);
	assert_true(a->id == b->id && a->re == b->re && a->conn == b->conn);
	assert_true(a->ts_ms == b->ts_ms);
	assert_int_equal(a->status, b->status);
	assert_int_equal(a->channel, b->channel);
	assert_int_equal(a->from, b->from);
	assert_str_eq(a->tenant, b->tenant);
	assert_str_eq(a->conv, b->conv);
	assert_str_eq(a->agent, b->agent);
	assert_str_eq(a->customer, b->customer);
	assert_str_eq(a->lang, b->lang);
	assert_str_eq(a->msgid, b->msgid);
	assert_str_eq(a->token, b->token);
	assert_str_eq(a->seq, b->seq);
	assert_str_eq(a->presence, b->presence);
	assert_str_eq(a->event, b->event);
	assert_str_eq(a->name, b->name);
	assert_str_eq(a->reason, b->reason);
	assert_str_eq(a->text, b->text);
	assert_int_equal(a->n_attrs, b->n_attrs);
	for (size_t i = 0; i < a->n_attrs; i++) {
		assert_string_equal(a->attrs[i].key, b->attrs[i].key);
		assert_string_equal(a->attrs[i].value, b->attrs[i].value);
	}
	assert_int_equal(a->n_skills, b->n_skills);
	for (size_t i = 0; i < a->n_skills; i++)
		assert_string_equal(a->skills[i], b->skills[i]);
}

/* Every field set, to values near the edges. */
static omr_envelope_t *full_env(omr_env_type_t type)
{
	omr_envelope_t *e = omr_envelope_new(type);

	assert_non_null(e);
	e->id = UINT64_MAX;
	e->re = 1;
	e->conn = 0x100000000ull;
	e->ts_ms = 1700000000123ull;
	e->status = INT32_MIN;
	e->channel = OMR_CHANNEL_VOICE;
	e->from = OMR_ROLE_SYSTEM;
	assert_int_equal(omr_envelope_set(&e->tenant, "acme"), 0);
	assert_int_equal(omr_envelope_set(&e->conv, "c7f0a1"), 0);
	assert_int_equal(omr_envelope_set(&e->agent, "luis"), 0);
	assert_int_equal(omr_envelope_set(&e->customer, "ana@example.com"), 0);
	assert_int_equal(omr_envelope_set(&e->lang, "es-MX"), 0);
	assert_int_equal(omr_envelope_set(&e->msgid, "c-1"), 0);
	assert_int_equal(omr_envelope_set(&e->token, "9a1e9a1e"), 0);
	assert_int_equal(omr_envelope_set(&e->seq, "1700000000000-0"), 0);
	assert_int_equal(omr_envelope_set(&e->presence, "available"), 0);
	assert_int_equal(omr_envelope_set(&e->event, "assigned"), 0);
	assert_int_equal(omr_envelope_set(&e->name, "José Ñandú"), 0);
	assert_int_equal(omr_envelope_set(&e->reason, "resolved"), 0);
	assert_int_equal(omr_envelope_set(&e->text, "¡Hola!\n你好 🙂\ttab"), 0);
	assert_int_equal(omr_envelope_add_attr(e, "ip", "203.0.113.9"), 0);
	assert_int_equal(omr_envelope_add_attr(e, "empty", ""), 0);
	assert_int_equal(omr_envelope_add_skill(e, "es"), 0);
	assert_int_equal(omr_envelope_add_skill(e, "billing"), 0);
	return e;
}

/* Encodes, decodes, checks equality and that re-encoding is byte-identical. */
static void round_trip(const omr_envelope_t *e)
{
	omr_envelope_t *d = NULL;
	char *b1 = NULL, *b2 = NULL;
	size_t n1 = 0, n2 = 0;
	const char *why = "unset";

	assert_int_equal(omr_envelope_encode(e, MAX, &b1, &n1, &why), 0);
	assert_null(why);
	assert_int_equal(omr_envelope_decode(b1, n1, MAX, &d, &why), 0);
	assert_null(why);
	assert_env_equal(e, d);
	assert_int_equal(omr_envelope_encode(d, MAX, &b2, &n2, NULL), 0);
	assert_int_equal(n1, n2);
	assert_memory_equal(b1, b2, n1);
	free(b1);
	free(b2);
	omr_envelope_destroy(&d);
	assert_null(d);
}

static void expect_decode(const void *buf, size_t len, size_t frame_max, int rc, const char *why)
{
	omr_envelope_t *e = (omr_envelope_t *)&e; /* must be reset to NULL on failure */
	const char *w = NULL;

	assert_int_equal(omr_envelope_decode(buf, len, frame_max, &e, &w), rc);
	if (rc) {
		assert_null(e);
		assert_string_equal(w, why);
	} else {
		assert_non_null(e);
		omr_envelope_destroy(&e);
	}
}

static void expect_encode(const omr_envelope_t *e, size_t frame_max, int rc, const char *why)
{
	char *out = (char *)&out;
	size_t n = 7;
	const char *w = NULL;

	assert_int_equal(omr_envelope_encode(e, frame_max, &out, &n, &w), rc);
	if (rc) {
		assert_null(out);
		assert_int_equal(n, 0);
		assert_string_equal(w, why);
	}
	free(rc ? NULL : out);
}

/* A small writer for the frames too long to spell out by hand. */
struct w {
	uint8_t *p;
	size_t n;
};

static void w_raw(struct w *w, const void *b, size_t n)
{
	memcpy(w->p + w->n, b, n);
	w->n += n;
}

static void w_byte(struct w *w, uint8_t b)
{
	w->p[w->n++] = b;
}

static void w_be16(struct w *w, uint8_t tag, uint16_t v)
{
	w_byte(w, tag);
	w_byte(w, (uint8_t)(v >> 8));
	w_byte(w, (uint8_t)v);
}

/* fixstr / str8 / str16 of len copies of c, or of s when s != NULL. */
static void w_str(struct w *w, const char *s, size_t len, char c)
{
	if (len < 32)
		w_byte(w, (uint8_t)(0xa0 | len));
	else if (len < 256)
		w_byte(w, 0xd9), w_byte(w, (uint8_t)len);
	else
		w_be16(w, 0xda, (uint16_t)len);
	if (s)
		w_raw(w, s, len);
	else
		memset(w->p + w->n, c, len), w->n += len;
}

/* ---- names, UTF-8, helpers ---------------------------------------------- */

static void test_names(void **state)
{
	static const char *types[] = {"none",          "ack",
	                              "adapter.hello", "conv.start",
	                              "conv.resume",   "conv.message",
	                              "conv.close",    "customer.gone",
	                              "agent.login",   "agent.presence",
	                              "agent.ack",     "agent.gone",
	                              "deliver",       "offer.accept",
	                              "offer.reject",  "agent.wrapup_end",
	                              "conv.rate",     "conv.typing",
	                              "conv.transfer", "conv.history",
	                              "agent.team",    "conv.monitor"};

	assert_int_equal(sizeof(types) / sizeof(types[0]), OMR_ENV_TYPE_COUNT);
	for (int t = 0; t < OMR_ENV_TYPE_COUNT; t++) {
		assert_string_equal(omr_env_type_name((omr_env_type_t)t), types[t]);
		assert_int_equal(omr_env_type_from_name(types[t], strlen(types[t])), t);
	}
	assert_null(omr_env_type_name(OMR_ENV_TYPE_COUNT));
	assert_null(omr_env_type_name((omr_env_type_t)-1));
	assert_int_equal(omr_env_type_from_name("ack", 2), OMR_ENV_NONE);
	assert_int_equal(omr_env_type_from_name("acks", 4), OMR_ENV_NONE);
	assert_int_equal(omr_env_type_from_name("ACK", 3), OMR_ENV_NONE);
	assert_int_equal(omr_env_type_from_name(NULL, 0), OMR_ENV_NONE);
	assert_int_equal(omr_env_type_from_name("deliverX", 7), OMR_ENV_DELIVER);

	assert_string_equal(omr_channel_name(OMR_CHANNEL_CHAT), "chat");
	assert_string_equal(omr_channel_name(OMR_CHANNEL_EMAIL), "email");
	assert_string_equal(omr_channel_name(OMR_CHANNEL_VOICE), "voice");
	assert_null(omr_channel_name(OMR_CHANNEL_COUNT));
	assert_int_equal(omr_channel_from_name("email", 5), OMR_CHANNEL_EMAIL);
	assert_int_equal(omr_channel_from_name("fax", 3), OMR_CHANNEL_NONE);

	assert_string_equal(omr_role_name(OMR_ROLE_CUSTOMER), "customer");
	assert_string_equal(omr_role_name(OMR_ROLE_AGENT), "agent");
	assert_string_equal(omr_role_name(OMR_ROLE_SYSTEM), "system");
	assert_null(omr_role_name(OMR_ROLE_COUNT));
	assert_int_equal(omr_role_from_name("agent", 5), OMR_ROLE_AGENT);
	assert_int_equal(omr_role_from_name("none", 4), OMR_ROLE_NONE);
}

#define UTF8_OK(s) assert_true(omr_utf8_is_valid(s, sizeof(s) - 1))
#define UTF8_BAD(s) assert_false(omr_utf8_is_valid(s, sizeof(s) - 1))

static void test_utf8(void **state)
{
	UTF8_OK("");
	UTF8_OK("plain ascii \x7f");
	UTF8_OK("\xc2\x80"            /* U+0080 */
	        "\xdf\xbf"            /* U+07FF */
	        "\xe0\xa0\x80"        /* U+0800 */
	        "\xed\x9f\xbf"        /* U+D7FF */
	        "\xee\x80\x80"        /* U+E000 */
	        "\xef\xbf\xbf"        /* U+FFFF */
	        "\xf0\x90\x80\x80"    /* U+10000 */
	        "\xf4\x8f\xbf\xbf");  /* U+10FFFF */
	UTF8_BAD("a\0b");             /* NUL */
	UTF8_BAD("\xc0\xaf");         /* overlong '/' */
	UTF8_BAD("\xc1\xbf");         /* overlong */
	UTF8_BAD("\xe0\x80\xaf");     /* overlong, 3 bytes */
	UTF8_BAD("\xe0\x9f\xbf");     /* overlong U+07FF */
	UTF8_BAD("\xf0\x80\x80\xaf"); /* overlong, 4 bytes */
	UTF8_BAD("\xf0\x8f\xbf\xbf"); /* overlong U+FFFF */
	UTF8_BAD("\xed\xa0\x80");     /* surrogate U+D800 */
	UTF8_BAD("\xed\xbf\xbf");     /* surrogate U+DFFF */
	UTF8_BAD("\xf4\x90\x80\x80"); /* U+110000 */
	UTF8_BAD("\xf5\x80\x80\x80"); /* lead byte past F4 */
	UTF8_BAD("\xff");
	UTF8_BAD("\x80");         /* lone continuation */
	UTF8_BAD("\xe2\x82");     /* truncated euro sign */
	UTF8_BAD("\xe2\x82\x41"); /* bad continuation */
	UTF8_BAD("\xf0\x9f\x99"); /* truncated emoji */
	assert_true(omr_utf8_is_valid("\xe2\x82\xac", 3));
	assert_false(omr_utf8_is_valid("\xe2\x82\xac", 2)); /* length is honoured */
	assert_true(omr_utf8_is_valid(NULL, 0));
	assert_false(omr_utf8_is_valid(NULL, 1));
}

static void test_helpers(void **state)
{
	omr_envelope_t *e = omr_envelope_new(OMR_ENV_CONV_START);
	char *s = NULL;

	assert_non_null(e);
	assert_int_equal(e->v, OMR_ENVELOPE_VERSION);
	assert_int_equal(e->type, OMR_ENV_CONV_START);
	assert_true(e->id == 0 && e->tenant == NULL && e->n_attrs == 0);

	assert_int_equal(omr_envelope_set(&s, "abc"), 0);
	assert_string_equal(s, "abc");
	assert_int_equal(omr_envelope_set(&s, s + 1), 0); /* aliasing its own value */
	assert_string_equal(s, "bc");
	assert_int_equal(omr_envelope_setn(&s, "xyz123", 3), 0);
	assert_string_equal(s, "xyz");
	assert_int_equal(omr_envelope_set(&s, NULL), 0);
	assert_null(s);
	assert_int_equal(omr_envelope_set(NULL, "x"), -EINVAL);

	assert_int_equal(omr_envelope_add_attr(e, "k1", "v1"), 0);
	assert_int_equal(omr_envelope_add_attr(e, "k2", ""), 0);
	assert_string_equal(omr_envelope_attr(e, "k1"), "v1");
	assert_string_equal(omr_envelope_attr(e, "k2"), "");
	assert_null(omr_envelope_attr(e, "k3"));
	assert_null(omr_envelope_attr(NULL, "k1"));
	for (unsigned i = 2; i < OMR_ENV_ATTRS_MAX; i++) {
		char k[16];

		snprintf(k, sizeof(k), "a%u", i);
		assert_int_equal(omr_envelope_add_attr(e, k, "v"), 0);
	}
	assert_int_equal(omr_envelope_add_attr(e, "one", "more"), -E2BIG);
	assert_int_equal(e->n_attrs, OMR_ENV_ATTRS_MAX);
	assert_int_equal(omr_envelope_add_attr(e, NULL, "v"), -EINVAL);

	for (unsigned i = 0; i < OMR_ENV_SKILLS_MAX; i++)
		assert_int_equal(omr_envelope_add_skill(e, "s"), 0);
	assert_int_equal(omr_envelope_add_skill(e, "s"), -E2BIG);
	assert_int_equal(e->n_skills, OMR_ENV_SKILLS_MAX);

	omr_envelope_destroy(&e);
	assert_null(e);
	omr_envelope_destroy(&e); /* NULL-safe */
	omr_envelope_destroy(NULL);
}

/* ---- round trips and exact bytes ---------------------------------------- */

static void test_round_trip_every_field(void **state)
{
	omr_envelope_t *e = full_env(OMR_ENV_ACK);

	round_trip(e);
	e->status = INT32_MAX;
	e->re = UINT64_MAX;
	e->channel = OMR_CHANNEL_EMAIL;
	e->from = OMR_ROLE_AGENT;
	round_trip(e);
	omr_envelope_destroy(&e);
}

static void test_round_trip_every_type(void **state)
{
	for (int t = OMR_ENV_NONE + 1; t < OMR_ENV_TYPE_COUNT; t++) {
		omr_envelope_t *e = omr_envelope_new((omr_env_type_t)t);

		e->id = (uint64_t)t;
		e->re = t == OMR_ENV_ACK ? 99 : 0;
		round_trip(e);
		omr_envelope_destroy(&e);

		e = full_env((omr_env_type_t)t);
		e->channel = OMR_CHANNEL_CHAT;
		e->from = OMR_ROLE_CUSTOMER;
		round_trip(e);
		omr_envelope_destroy(&e);
	}
}

/* The example in docs/ENVELOPE.md, byte for byte (computed independently by
 * tests/fuzz/make_corpus.py's encoder). */
/* clang-format off */
static const char doc_example[] =
	"\x8b"
	"\xa1" "v" "\x01"
	"\xa4" "type" "\xac" "conv.message"
	"\xa2" "id" "\xcd\x03\xe9"
	"\xa4" "conn" "\x03"
	"\xa2" "ts" "\xcf\x00\x00\x01\x8b\xcf\xe5\x68\x7b"
	"\xa2" "ch" "\xa4" "chat"
	"\xa4" "from" "\xa8" "customer"
	"\xa6" "tenant" "\xa7" "default"
	"\xa4" "conv" "\xa4" "c7f0"
	"\xa5" "msgid" "\xa3" "c-1"
	"\xa4" "text" "\xa4" "hola";
/* clang-format on */

static void test_encode_exact_bytes(void **state)
{
	omr_envelope_t *e = omr_envelope_new(OMR_ENV_CONV_MESSAGE), *d = NULL;
	char *out = NULL;
	size_t n = 0;

	e->id = 1001;
	e->conn = 3;
	e->ts_ms = 1700000000123ull;
	e->channel = OMR_CHANNEL_CHAT;
	e->from = OMR_ROLE_CUSTOMER;
	omr_envelope_set(&e->tenant, "default");
	omr_envelope_set(&e->conv, "c7f0");
	omr_envelope_set(&e->msgid, "c-1");
	omr_envelope_set(&e->text, "hola");
	assert_int_equal(omr_envelope_encode(e, MAX, &out, &n, NULL), 0);
	assert_int_equal(n, sizeof(doc_example) - 1);
	assert_int_equal(n, 113);
	assert_memory_equal(out, doc_example, n);
	assert_int_equal(omr_envelope_decode(doc_example, n, MAX, &d, NULL), 0);
	assert_env_equal(e, d);
	free(out);
	omr_envelope_destroy(&d);
	omr_envelope_destroy(&e);
}

/* Zero numbers, NONE enums, NULL and empty strings are left out; v, type and
 * id never are. */
static void test_encode_omits_absent(void **state)
{
	static const char want[] = "\x83\xa1v\x01\xa4type\xa7"
	                           "deliver\xa2id\x01";
	omr_envelope_t *e = omr_envelope_new(OMR_ENV_DELIVER), *d = NULL;
	char *out = NULL;
	size_t n = 0;

	e->id = 1;
	omr_envelope_set(&e->tenant, "");
	omr_envelope_set(&e->text, "");
	assert_int_equal(omr_envelope_encode(e, MAX, &out, &n, NULL), 0);
	assert_int_equal(n, sizeof(want) - 1);
	assert_memory_equal(out, want, n);
	assert_int_equal(omr_envelope_decode(out, n, MAX, &d, NULL), 0);
	assert_null(d->tenant);
	assert_null(d->text);
	free(out);
	omr_envelope_destroy(&d);
	omr_envelope_destroy(&e);
}

/* ---- encoder rules ------------------------------------------------------ */

static omr_envelope_t *ok_env(void)
{
	omr_envelope_t *e = omr_envelope_new(OMR_ENV_CONV_MESSAGE);

	e->id = 7;
	return e;
}

#define ENC_FIELD(member, value, why)                                                              \
	do {                                                                                       \
		omr_envelope_t *e_ = ok_env();                                                     \
		assert_int_equal(omr_envelope_set(&e_->member, value), 0);                         \
		expect_encode(e_, MAX, -EINVAL, why);                                              \
		omr_envelope_destroy(&e_);                                                         \
	} while (0)

static void test_encode_rules(void **state)
{
	omr_envelope_t *e = ok_env();
	char id129[130], name257[258], key65[66], val1025[1026];

	memset(id129, 'i', 129), id129[129] = '\0';
	memset(name257, 'n', 257), name257[257] = '\0';
	memset(key65, 'k', 65), key65[65] = '\0';
	memset(val1025, 'v', 1025), val1025[1025] = '\0';

	e->v = 2;
	expect_encode(e, MAX, -EINVAL, "unsupported version");
	e->v = 1, e->type = OMR_ENV_NONE;
	expect_encode(e, MAX, -EINVAL, "missing type");
	e->type = OMR_ENV_TYPE_COUNT;
	expect_encode(e, MAX, -EINVAL, "unknown type");
	e->type = OMR_ENV_ACK;
	expect_encode(e, MAX, -EINVAL, "ack without re");
	e->re = 1, e->id = 0;
	expect_encode(e, MAX, -EINVAL, "missing id");
	e->id = 1, e->channel = OMR_CHANNEL_COUNT;
	expect_encode(e, MAX, -EINVAL, "unknown channel");
	e->channel = OMR_CHANNEL_CHAT, e->from = (omr_role_t)77;
	expect_encode(e, MAX, -EINVAL, "unknown role");
	e->from = OMR_ROLE_AGENT;
	expect_encode(e, MAX, 0, NULL);
	expect_encode(NULL, MAX, -EINVAL, "null argument");

	ENC_FIELD(conv, id129, "string too long for field conv");
	ENC_FIELD(token, id129, "string too long for field token");
	ENC_FIELD(name, name257, "string too long for field name");
	ENC_FIELD(tenant, "a\nb", "control character in field tenant");
	ENC_FIELD(reason, "bad\r\nheader", "control character in field reason");
	ENC_FIELD(text, "\xc0\xaf", "invalid UTF-8 in field text");
	ENC_FIELD(agent, "\xed\xa0\x80", "invalid UTF-8 in field agent");

	assert_int_equal(omr_envelope_add_attr(e, "k", "v"), 0);
	assert_int_equal(omr_envelope_add_attr(e, "k", "w"), 0);
	expect_encode(e, MAX, -EINVAL, "duplicate attr key");
	omr_envelope_set(&e->attrs[1].key, key65);
	expect_encode(e, MAX, -EINVAL, "string too long for attr key");
	omr_envelope_set(&e->attrs[1].key, "");
	expect_encode(e, MAX, -EINVAL, "empty string for attr key");
	omr_envelope_set(&e->attrs[1].key, "k2");
	omr_envelope_set(&e->attrs[1].value, val1025);
	expect_encode(e, MAX, -EINVAL, "string too long for attr value");
	omr_envelope_set(&e->attrs[1].value, "ok\r\nmulti-line is fine in a value");
	expect_encode(e, MAX, 0, NULL);
	e->n_attrs = OMR_ENV_ATTRS_MAX + 1; /* as a caller bypassing add_attr could */
	expect_encode(e, MAX, -EINVAL, "too many attrs");
	e->n_attrs = 2;

	assert_int_equal(omr_envelope_add_skill(e, ""), 0);
	expect_encode(e, MAX, -EINVAL, "empty string for skill");
	omr_envelope_set(&e->skills[0], id129);
	expect_encode(e, MAX, -EINVAL, "string too long for skill");
	omr_envelope_set(&e->skills[0], "es");
	expect_encode(e, MAX, 0, NULL);
	e->n_skills = OMR_ENV_SKILLS_MAX + 1;
	expect_encode(e, MAX, -EINVAL, "too many skills");
	e->n_skills = 1;
	omr_envelope_destroy(&e);
}

static void test_encode_frame_max(void **state)
{
	omr_envelope_t *e = ok_env();
	char *big = malloc(MAX + 2), *out = NULL;
	size_t n = 0, base;

	/* Size of the frame without text, then fill text to exactly MAX. */
	assert_int_equal(omr_envelope_encode(e, MAX, &out, &n, NULL), 0);
	base = n + 1 + 4 + 3; /* "text" key + str16 header */
	free(out);
	memset(big, 'x', MAX + 1);
	big[MAX - base] = '\0';
	omr_envelope_set(&e->text, big);
	assert_int_equal(omr_envelope_encode(e, MAX, &out, &n, NULL), 0);
	assert_int_equal(n, MAX);
	free(out);

	big[MAX - base] = 'x', big[MAX - base + 1] = '\0';
	omr_envelope_set(&e->text, big);
	expect_encode(e, MAX, -EMSGSIZE, "frame too large");
	expect_encode(e, 100, -EMSGSIZE, "frame too large");
	big[MAX + 1] = '\0';
	omr_envelope_set(&e->text, big); /* text alone over the cap: fails early */
	expect_encode(e, MAX, -EMSGSIZE, "frame too large");
	free(big);
	omr_envelope_destroy(&e);
}

/* ---- decoder: accepted edges -------------------------------------------- */

/* clang-format off */
#define V1 "\xa1" "v" "\x01"
#define TYPE_MSG "\xa4" "type" "\xac" "conv.message"
#define TYPE_ACK "\xa4" "type" "\xa3" "ack"
#define ID7 "\xa2" "id" "\x07"
#define BASE V1 TYPE_MSG ID7
#define FRAME(s) (s), sizeof(s) - 1
/* clang-format on */

static void decode_id(const char *frame, size_t len, uint64_t want)
{
	omr_envelope_t *e = NULL;

	assert_int_equal(omr_envelope_decode(frame, len, MAX, &e, NULL), 0);
	assert_true(e->id == want);
	omr_envelope_destroy(&e);
}

/* clang-format off */
static void test_decode_int_widths(void **state)
{
	omr_envelope_t *e = NULL;

	decode_id(FRAME("\x83" V1 TYPE_MSG "\xa2" "id" "\xcc\xff"), 0xff);
	decode_id(FRAME("\x83" V1 TYPE_MSG "\xa2" "id" "\xcd\x01\x00"), 0x100);
	decode_id(FRAME("\x83" V1 TYPE_MSG "\xa2" "id" "\xce\x00\x00\x00\x01"), 1);
	decode_id(FRAME("\x83" V1 TYPE_MSG "\xa2" "id" "\xcf\xff\xff\xff\xff\xff\xff\xff\xff"),
		  UINT64_MAX);
	decode_id(FRAME("\x83" V1 TYPE_MSG "\xa2" "id" "\xd0\x7f"), 127);
	decode_id(FRAME("\x83" V1 TYPE_MSG "\xa2" "id" "\xd1\x7f\xff"), 0x7fff);
	decode_id(FRAME("\x83" V1 TYPE_MSG "\xa2" "id" "\xd2\x00\x00\x00\x05"), 5);
	decode_id(FRAME("\x83" V1 TYPE_MSG "\xa2" "id" "\xd3\x7f\xff\xff\xff\xff\xff\xff\xff"),
		  INT64_MAX);
	/* v as int64, map16 and str8 headers, keys out of wire order */
	decode_id(FRAME("\xde\x00\x03" "\xa2" "id" "\x09" "\xd9\x04" "type" "\xac" "conv.message"
			"\xa1" "v" "\xd3\x00\x00\x00\x00\x00\x00\x00\x01"), 9);

	static const char st[] = "\x84" BASE "\xa6" "status" "\xd2\x80\x00\x00\x00";
	assert_int_equal(omr_envelope_decode(FRAME(st), MAX, &e, NULL), 0);
	assert_int_equal(e->status, INT32_MIN);
	omr_envelope_destroy(&e);
	static const char st2[] = "\x84" BASE "\xa6" "status" "\xf5"; /* -11 */
	assert_int_equal(omr_envelope_decode(FRAME(st2), MAX, &e, NULL), 0);
	assert_int_equal(e->status, -11);
	omr_envelope_destroy(&e);
	static const char st3[] = "\x84" BASE "\xa6" "status" "\xce\x7f\xff\xff\xff";
	assert_int_equal(omr_envelope_decode(FRAME(st3), MAX, &e, NULL), 0);
	assert_int_equal(e->status, INT32_MAX);
	omr_envelope_destroy(&e);
	/* zero values and empty containers are accepted (and left out when re-encoded) */
	static const char z[] = "\x87" BASE "\xa2" "re" "\x00" "\xa6" "status" "\x00"
				"\xa5" "attrs" "\x80" "\xa6" "skills" "\x90";
	assert_int_equal(omr_envelope_decode(FRAME(z), MAX, &e, NULL), 0);
	assert_true(e->re == 0 && e->status == 0 && e->n_attrs == 0 && e->n_skills == 0);
	omr_envelope_destroy(&e);
}

/* clang-format on */
/* Every limit is inclusive: a frame exactly at each one decodes. */
static void test_decode_limits_accepted(void **state)
{
	uint8_t *buf = malloc(MAX);
	struct w w = {buf, 0};
	omr_envelope_t *e = NULL;

	w_byte(&w, 0x88);
	w_raw(&w, BASE, sizeof(BASE) - 1);
	w_str(&w, "conv", 4, 0), w_str(&w, NULL, OMR_ENV_ID_MAX, 'c');
	w_str(&w, "name", 4, 0), w_str(&w, NULL, OMR_ENV_NAME_MAX, 'n');
	w_str(&w, "attrs", 5, 0), w_byte(&w, 0xde), w_byte(&w, 0), w_byte(&w, OMR_ENV_ATTRS_MAX);
	for (unsigned i = 0; i < OMR_ENV_ATTRS_MAX; i++) {
		char k[OMR_ENV_ATTR_KEY_MAX];

		memset(k, 'k', sizeof(k));
		k[0] = (char)('A' + i);
		w_str(&w, k, sizeof(k), 0);
		w_str(&w, NULL, i ? 1 : OMR_ENV_ATTR_VALUE_MAX, 'v');
	}
	w_str(&w, "skills", 6, 0), w_byte(&w, 0xdc), w_byte(&w, 0), w_byte(&w, OMR_ENV_SKILLS_MAX);
	for (unsigned i = 0; i < OMR_ENV_SKILLS_MAX; i++)
		w_str(&w, NULL, 2, (char)('a' + i % 26));
	/* text fills the frame to exactly MAX bytes */
	size_t text = MAX - w.n - 1 - 4 - 3;
	w_str(&w, "text", 4, 0), w_str(&w, NULL, text, 't');
	assert_int_equal(w.n, MAX);

	assert_int_equal(omr_envelope_decode(buf, w.n, MAX, &e, NULL), 0);
	assert_int_equal(strlen(e->conv), OMR_ENV_ID_MAX);
	assert_int_equal(strlen(e->name), OMR_ENV_NAME_MAX);
	assert_int_equal(e->n_attrs, OMR_ENV_ATTRS_MAX);
	assert_int_equal(strlen(e->attrs[0].value), OMR_ENV_ATTR_VALUE_MAX);
	assert_int_equal(e->n_skills, OMR_ENV_SKILLS_MAX);
	assert_int_equal(strlen(e->text), text);
	round_trip(e);
	omr_envelope_destroy(&e);

	/* the same frame, one byte over a smaller cap */
	expect_decode(buf, w.n, MAX - 1, -EMSGSIZE, "frame too large");
	/* frame_max 0 is the default cap; a cap over the hard limit is clamped */
	expect_decode(buf, w.n, 0, 0, NULL);
	free(buf);
	buf = calloc(1, OMR_ENV_FRAME_MAX_LIMIT + 1);
	expect_decode(buf, OMR_ENV_FRAME_MAX_LIMIT + 1, SIZE_MAX, -EMSGSIZE, "frame too large");
	expect_decode(buf, OMR_ENV_FRAME_MAX_LIMIT, SIZE_MAX, -EBADMSG, "frame is not a map");
	free(buf);
}

static void test_decode_args(void **state)
{
	omr_envelope_t *e = NULL;

	assert_int_equal(omr_envelope_decode(FRAME("\x83" BASE), MAX, NULL, NULL), -EINVAL);
	assert_int_equal(omr_envelope_decode(NULL, 3, MAX, &e, NULL), -EINVAL);
	expect_decode(NULL, 0, MAX, -EBADMSG, "empty frame");
	/* why may be NULL, on failure too */
	assert_int_equal(omr_envelope_decode(FRAME("\x83" BASE "\x00"), MAX, &e, NULL), -EBADMSG);
	assert_null(e);
}

/* ---- decoder: hostile frames -------------------------------------------- */

struct hostile {
	const char *name; /* also the file name in tests/fuzz/hostile/envelope/ */
	const char *bytes;
	size_t len;
	size_t (*build)(uint8_t *buf); /* instead of bytes, for long frames */
	size_t frame_max;              /* 0: MAX */
	int rc;
	const char *why;
};

#define BIG (MAX + 64)

static size_t build_keys_65(uint8_t *buf)
{
	struct w w = {buf, 0};

	w_be16(&w, 0xde, OMR_ENV_MAP_KEYS_MAX + 1);
	w_raw(&w, BASE, sizeof(BASE) - 1);
	for (unsigned i = 3; i <= OMR_ENV_MAP_KEYS_MAX; i++)
		w_byte(&w, 0xa1), w_byte(&w, (uint8_t)('0' + i % 64)), w_byte(&w, 0x01);
	return w.n;
}

static size_t build_attrs_33(uint8_t *buf)
{
	struct w w = {buf, 0};

	w_byte(&w, 0x84);
	w_raw(&w, BASE, sizeof(BASE) - 1);
	w_str(&w, "attrs", 5, 0);
	w_be16(&w, 0xde, OMR_ENV_ATTRS_MAX + 1);
	for (unsigned i = 0; i <= OMR_ENV_ATTRS_MAX; i++) {
		char k[3] = {'k', (char)('A' + i / 26), (char)('a' + i % 26)};

		w_str(&w, k, 3, 0), w_str(&w, "v", 1, 0);
	}
	return w.n;
}

static size_t build_skills_33(uint8_t *buf)
{
	struct w w = {buf, 0};

	w_byte(&w, 0x84);
	w_raw(&w, BASE, sizeof(BASE) - 1);
	w_str(&w, "skills", 6, 0);
	w_be16(&w, 0xdc, OMR_ENV_SKILLS_MAX + 1);
	for (unsigned i = 0; i <= OMR_ENV_SKILLS_MAX; i++)
		w_str(&w, "es", 2, 0);
	return w.n;
}

/* A valid envelope whose text makes the frame one byte over the default cap. */
static size_t build_frame_over_max(uint8_t *buf)
{
	struct w w = {buf, 0};
	size_t head = 1 + (sizeof(BASE) - 1) + 5 + 3;

	w_byte(&w, 0x84);
	w_raw(&w, BASE, sizeof(BASE) - 1);
	w_str(&w, "text", 4, 0);
	w_str(&w, NULL, MAX + 1 - head, 't');
	return w.n;
}

static size_t one_string(uint8_t *buf, const char *key, size_t len, char c)
{
	struct w w = {buf, 0};

	w_byte(&w, 0x84);
	w_raw(&w, BASE, sizeof(BASE) - 1);
	w_str(&w, key, strlen(key), 0);
	w_str(&w, NULL, len, c);
	return w.n;
}

static size_t build_conv_129(uint8_t *buf)
{
	return one_string(buf, "conv", OMR_ENV_ID_MAX + 1, 'c');
}

static size_t build_name_257(uint8_t *buf)
{
	return one_string(buf, "name", OMR_ENV_NAME_MAX + 1, 'n');
}

static size_t one_attr(uint8_t *buf, size_t klen, size_t vlen)
{
	struct w w = {buf, 0};

	w_byte(&w, 0x84);
	w_raw(&w, BASE, sizeof(BASE) - 1);
	w_str(&w, "attrs", 5, 0);
	w_byte(&w, 0x81);
	w_str(&w, NULL, klen, 'k');
	w_str(&w, NULL, vlen, 'v');
	return w.n;
}

static size_t build_attr_key_65(uint8_t *buf)
{
	return one_attr(buf, OMR_ENV_ATTR_KEY_MAX + 1, 1);
}

static size_t build_attr_value_1025(uint8_t *buf)
{
	return one_attr(buf, 1, OMR_ENV_ATTR_VALUE_MAX + 1);
}

/* clang-format off */
#define HB(s) (s), sizeof(s) - 1, NULL
#define HF(f) NULL, 0, f
#define BADMSG(name, frame, why) { name, frame, 0, -EBADMSG, why }

static const struct hostile hostile[] = {
	/* structure and sizes */
	BADMSG("empty_frame", HB(""), "empty frame"),
	BADMSG("array32_1e8_top_level", HB("\xdd\x05\xf5\xe1\x00"), "count exceeds frame"),
	BADMSG("map32_4g_top_level", HB("\xdf\xff\xff\xff\xff"), "count exceeds frame"),
	BADMSG("skills_array32_1e8", HB("\x84" BASE "\xa6" "skills" "\xdd\x05\xf5\xe1\x00"),
	       "count exceeds frame"),
	BADMSG("attrs_map32_4g", HB("\x84" BASE "\xa5" "attrs" "\xdf\xff\xff\xff\xff"),
	       "count exceeds frame"),
	BADMSG("text_str32_4g", HB("\x84" BASE "\xa4" "text" "\xdb\xff\xff\xff\xff" "abc"),
	       "string exceeds frame"),
	BADMSG("key_str32_4g", HB("\x84" BASE "\xdb\xff\xff\xff\xff"), "string exceeds frame"),
	BADMSG("fixmap_count_over_bytes", HB("\x8f" BASE), "count exceeds frame"),
	BADMSG("truncated_entry", HB("\x84" BASE "\xa4" "text"), "truncated frame"),
	BADMSG("truncated_uint64", HB("\x83" V1 TYPE_MSG "\xa2" "id" "\xcf\x00\x01"),
	       "truncated frame"),
	BADMSG("truncated_str16_header", HB("\x84" BASE "\xa4" "text" "\xda\x00"),
	       "truncated frame"),
	BADMSG("trailing_bytes", HB("\x83" BASE "\x00\xff"), "trailing bytes"),
	/* allocations happen before the error: must all be freed */
	BADMSG("trailing_bytes_after_strings",
	       HB("\x86" BASE "\xa6" "tenant" "\xa1" "t" "\xa5" "attrs" "\x81\xa1" "k" "\xa1" "v"
		  "\xa6" "skills" "\x91\xa1" "s" "\xc1"),
	       "trailing bytes"),
	BADMSG("top_level_not_map", HB("\x93\x01\x02\x03"), "frame is not a map"),
	BADMSG("top_level_ext", HB("\xd4\x01\x00"), "frame is not a map"),
	BADMSG("top_level_nil", HB("\xc0"), "frame is not a map"),
	{ "keys_65", HF(build_keys_65), 0, -EBADMSG, "too many keys" },
	{ "frame_over_max", HF(build_frame_over_max), 0, -EMSGSIZE, "frame too large" },
	{ "frame_over_small_max", HB("\x83" BASE), 24, -EMSGSIZE, "frame too large" },
	/* keys */
	BADMSG("duplicate_key", HB("\x84" BASE "\xa2" "id" "\x08"), "duplicate key"),
	BADMSG("duplicate_key_v", HB("\x84" BASE V1), "duplicate key"),
	BADMSG("unknown_key", HB("\x84" BASE "\xa3" "foo" "\x01"), "unknown key"),
	BADMSG("unknown_key_prefix", HB("\x84" BASE "\xa7" "tenantX" "\xa1" "t"), "unknown key"),
	BADMSG("key_with_nul", HB("\x84" BASE "\xa3" "id\0" "\x01"), "unknown key"),
	BADMSG("key_not_string", HB("\x84" BASE "\x01\x01"), "key is not a string"),
	BADMSG("key_bin", HB("\x84" BASE "\xc4\x02" "id" "\x01"), "key is not a string"),
	/* nesting */
	BADMSG("depth3_attrs_map", HB("\x84" BASE "\xa5" "attrs" "\x81\xa1" "k" "\x80"),
	       "nesting too deep"),
	BADMSG("depth3_skills_array", HB("\x84" BASE "\xa6" "skills" "\x91\x90"),
	       "nesting too deep"),
	BADMSG("depth3_attr_key_map", HB("\x84" BASE "\xa5" "attrs" "\x81\x80\xa1" "v"),
	       "nesting too deep"),
	BADMSG("map_for_string_field", HB("\x84" BASE "\xa6" "tenant" "\x80"),
	       "wrong type for field tenant"),
	/* limits */
	{ "attrs_33", HF(build_attrs_33), 0, -EBADMSG, "too many attrs" },
	{ "skills_33", HF(build_skills_33), 0, -EBADMSG, "too many skills" },
	{ "conv_129_bytes", HF(build_conv_129), 0, -EBADMSG, "string too long for field conv" },
	{ "name_257_bytes", HF(build_name_257), 0, -EBADMSG, "string too long for field name" },
	{ "attr_key_65_bytes", HF(build_attr_key_65), 0, -EBADMSG, "string too long for attr key" },
	{ "attr_value_1025_bytes", HF(build_attr_value_1025), 0, -EBADMSG,
	  "string too long for attr value" },
	BADMSG("duplicate_attr_key",
	       HB("\x84" BASE "\xa5" "attrs" "\x82\xa1" "k" "\xa1" "v" "\xa1" "k" "\xa1" "w"),
	       "duplicate attr key"),
	/* strings */
	BADMSG("utf8_overlong_2", HB("\x84" BASE "\xa4" "name" "\xa2\xc0\xaf"),
	       "invalid UTF-8 in field name"),
	BADMSG("utf8_overlong_3", HB("\x84" BASE "\xa4" "text" "\xa3\xe0\x80\xaf"),
	       "invalid UTF-8 in field text"),
	BADMSG("utf8_overlong_4", HB("\x84" BASE "\xa4" "text" "\xa4\xf0\x80\x80\xaf"),
	       "invalid UTF-8 in field text"),
	BADMSG("utf8_surrogate", HB("\x84" BASE "\xa4" "text" "\xa3\xed\xa0\x80"),
	       "invalid UTF-8 in field text"),
	BADMSG("utf8_above_10ffff", HB("\x84" BASE "\xa4" "text" "\xa4\xf4\x90\x80\x80"),
	       "invalid UTF-8 in field text"),
	BADMSG("utf8_truncated", HB("\x84" BASE "\xa4" "text" "\xa2\xe2\x82"),
	       "invalid UTF-8 in field text"),
	BADMSG("utf8_bad_skill", HB("\x84" BASE "\xa6" "skills" "\x91\xa1\xff"),
	       "invalid UTF-8 in skill"),
	BADMSG("utf8_bad_attr_value", HB("\x84" BASE "\xa5" "attrs" "\x81\xa1" "k" "\xa1\x80"),
	       "invalid UTF-8 in attr value"),
	BADMSG("nul_in_conv", HB("\x84" BASE "\xa4" "conv" "\xa3" "a\0b"), "NUL in field conv"),
	BADMSG("nul_in_text", HB("\x84" BASE "\xa4" "text" "\xa1\0"), "NUL in field text"),
	BADMSG("nul_in_attr_key", HB("\x84" BASE "\xa5" "attrs" "\x81\xa2" "k\0" "\xa1" "v"),
	       "NUL in attr key"),
	BADMSG("control_char_in_tenant", HB("\x84" BASE "\xa6" "tenant" "\xa3" "a\nb"),
	       "control character in field tenant"),
	BADMSG("control_char_in_name", HB("\x84" BASE "\xa4" "name" "\xa3" "a\rb"),
	       "control character in field name"),
	BADMSG("empty_conv", HB("\x84" BASE "\xa4" "conv" "\xa0"), "empty string for field conv"),
	BADMSG("empty_text", HB("\x84" BASE "\xa4" "text" "\xa0"), "empty string for field text"),
	BADMSG("empty_skill", HB("\x84" BASE "\xa6" "skills" "\x91\xa0"),
	       "empty string for skill"),
	/* types */
	BADMSG("id_string", HB("\x83" V1 TYPE_MSG "\xa2" "id" "\xa1" "7"),
	       "wrong type for field id"),
	BADMSG("id_float64", HB("\x83" V1 TYPE_MSG "\xa2" "id" "\xcb\x40\x1c\0\0\0\0\0\0"),
	       "wrong type for field id"),
	BADMSG("id_nil", HB("\x83" V1 TYPE_MSG "\xa2" "id" "\xc0"), "wrong type for field id"),
	BADMSG("id_true", HB("\x83" V1 TYPE_MSG "\xa2" "id" "\xc3"), "wrong type for field id"),
	BADMSG("id_negative_fixint", HB("\x83" V1 TYPE_MSG "\xa2" "id" "\xff"),
	       "value out of range for field id"),
	BADMSG("id_negative_int64",
	       HB("\x83" V1 TYPE_MSG "\xa2" "id" "\xd3\x80\x00\x00\x00\x00\x00\x00\x00"),
	       "value out of range for field id"),
	BADMSG("re_negative_int8", HB("\x84" BASE "\xa2" "re" "\xd0\x80"),
	       "value out of range for field re"),
	BADMSG("ts_string", HB("\x84" BASE "\xa2" "ts" "\xa1" "1"), "wrong type for field ts"),
	BADMSG("text_bin", HB("\x84" BASE "\xa4" "text" "\xc4\x01" "a"),
	       "wrong type for field text"),
	BADMSG("tenant_nil", HB("\x84" BASE "\xa6" "tenant" "\xc0"),
	       "wrong type for field tenant"),
	BADMSG("type_int", HB("\x83" V1 "\xa4" "type" "\x01" ID7), "wrong type for field type"),
	BADMSG("attrs_array", HB("\x84" BASE "\xa5" "attrs" "\x91\xa1" "k"),
	       "wrong type for field attrs"),
	BADMSG("skills_map", HB("\x84" BASE "\xa6" "skills" "\x80"), "wrong type for field skills"),
	BADMSG("skill_int", HB("\x84" BASE "\xa6" "skills" "\x91\x01"), "wrong type for skill"),
	BADMSG("attr_value_int", HB("\x84" BASE "\xa5" "attrs" "\x81\xa1" "k" "\x01"),
	       "wrong type for attr value"),
	BADMSG("status_2_31", HB("\x84" BASE "\xa6" "status" "\xce\x80\x00\x00\x00"),
	       "value out of range for field status"),
	BADMSG("status_below_int32",
	       HB("\x84" BASE "\xa6" "status" "\xd3\xff\xff\xff\xff\x7f\xff\xff\xff"),
	       "value out of range for field status"),
	BADMSG("v_uint64_max",
	       HB("\x83" "\xa1" "v" "\xcf\xff\xff\xff\xff\xff\xff\xff\xff" TYPE_MSG ID7),
	       "value out of range for field v"),
	/* enums */
	BADMSG("unknown_type", HB("\x83" V1 "\xa4" "type" "\xa4" "conv" ID7), "unknown type"),
	BADMSG("type_none", HB("\x83" V1 "\xa4" "type" "\xa4" "none" ID7), "unknown type"),
	BADMSG("unknown_channel", HB("\x84" BASE "\xa2" "ch" "\xa3" "fax"), "unknown channel"),
	BADMSG("unknown_role", HB("\x84" BASE "\xa4" "from" "\xa4" "boss"), "unknown role"),
	/* required fields */
	BADMSG("version_2", HB("\x83" "\xa1" "v" "\x02" TYPE_MSG ID7), "unsupported version"),
	BADMSG("version_0", HB("\x83" "\xa1" "v" "\x00" TYPE_MSG ID7), "unsupported version"),
	BADMSG("version_negative", HB("\x83" "\xa1" "v" "\xff" TYPE_MSG ID7),
	       "unsupported version"),
	BADMSG("missing_v", HB("\x82" TYPE_MSG ID7), "missing v"),
	BADMSG("missing_type", HB("\x82" V1 ID7), "missing type"),
	BADMSG("missing_id", HB("\x82" V1 TYPE_MSG), "missing id"),
	BADMSG("zero_id", HB("\x83" V1 TYPE_MSG "\xa2" "id" "\x00"), "zero id"),
	BADMSG("empty_map", HB("\x80"), "missing v"),
	BADMSG("ack_without_re", HB("\x83" V1 TYPE_ACK ID7), "ack without re"),
	BADMSG("ack_zero_re", HB("\x84" V1 TYPE_ACK ID7 "\xa2" "re" "\x00"), "ack without re"),
};
/* clang-format on */

#define N_HOSTILE (sizeof(hostile) / sizeof(hostile[0]))

/* Returns the frame of h (malloc'd) and its length. */
static uint8_t *hostile_frame(const struct hostile *h, size_t *len)
{
	uint8_t *buf = malloc(BIG);

	assert_non_null(buf);
	if (h->build) {
		*len = h->build(buf);
		assert_true(*len <= BIG);
	} else {
		memcpy(buf, h->bytes, h->len);
		*len = h->len;
	}
	return buf;
}

static void test_hostile(void **state)
{
	const struct hostile *h = *state;
	size_t len;
	uint8_t *buf = hostile_frame(h, &len);

	expect_decode(buf, len, h->frame_max ? h->frame_max : MAX, h->rc, h->why);
	free(buf);
}

static uint8_t *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf;

	if (!f) {
		print_error("cannot open %s\n", path);
		fail();
	}
	assert_non_null(buf = malloc(BIG + 1));
	*len = fread(buf, 1, BIG + 1, f);
	fclose(f);
	return buf;
}

/* The committed hostile corpus holds exactly these frames (the ones decoded
 * with the default cap, which is what the fuzz replay uses). */
static void test_hostile_files_match(void **state)
{
	const char *write_dir = getenv("OMR_WRITE_HOSTILE");

	for (size_t i = 0; i < N_HOSTILE; i++) {
		const struct hostile *h = &hostile[i];
		char path[512];
		size_t len, flen;
		uint8_t *buf, *file;

		if (h->frame_max)
			continue;
		buf = hostile_frame(h, &len);
		if (write_dir) {
			FILE *f;

			snprintf(path, sizeof(path), "%s/%s", write_dir, h->name);
			assert_non_null(f = fopen(path, "wb"));
			assert_int_equal(fwrite(buf, 1, len, f), len);
			fclose(f);
		}
		snprintf(path, sizeof(path), "%s/%s", HOSTILE_DIR, h->name);
		file = read_file(path, &flen);
		bool same = flen == len && memcmp(file, buf, len) == 0;
		free(file);
		free(buf);
		if (!same) {
			print_error("%s differs from the test's frame\n", path);
			fail();
		}
	}
}

/* Every seed of the fuzz corpus is a valid envelope and round-trips. */
static void test_seed_corpus_decodes(void **state)
{
	DIR *d = opendir(CORPUS_DIR);
	struct dirent *de;
	unsigned n = 0;

	assert_non_null(d);
	while ((de = readdir(d))) {
		char path[512];
		size_t len;
		uint8_t *buf;
		omr_envelope_t *e = NULL;
		const char *why = NULL;

		if (strncmp(de->d_name, "seed-", 5) != 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", CORPUS_DIR, de->d_name);
		buf = read_file(path, &len);
		if (omr_envelope_decode(buf, len, MAX, &e, &why) != 0) {
			print_error("%s: %s\n", de->d_name, why);
			fail();
		}
		round_trip(e);
		if (strcmp(de->d_name, "seed-wide-encodings") == 0) {
			assert_int_equal(e->type, OMR_ENV_CONV_START);
			assert_true(e->ts_ms == 1700000000001ull && e->conn == 11 && e->id == 2);
			assert_string_equal(omr_envelope_attr(e, "ip"), "203.0.113.9");
		}
		omr_envelope_destroy(&e);
		free(buf);
		n++;
	}
	closedir(d);
	assert_true(n >= 20);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_names),
	        cmocka_unit_test(test_utf8),
	        cmocka_unit_test(test_helpers),
	        cmocka_unit_test(test_round_trip_every_field),
	        cmocka_unit_test(test_round_trip_every_type),
	        cmocka_unit_test(test_encode_exact_bytes),
	        cmocka_unit_test(test_encode_omits_absent),
	        cmocka_unit_test(test_encode_rules),
	        cmocka_unit_test(test_encode_frame_max),
	        cmocka_unit_test(test_decode_int_widths),
	        cmocka_unit_test(test_decode_limits_accepted),
	        cmocka_unit_test(test_decode_args),
	        cmocka_unit_test(test_hostile_files_match),
	        cmocka_unit_test(test_seed_corpus_decodes),
	};
	struct CMUnitTest hostile_tests[N_HOSTILE];
	int failed;

	/* One named test per hostile frame, so a failure names the rule. */
	for (size_t i = 0; i < N_HOSTILE; i++) {
		hostile_tests[i] = (struct CMUnitTest)cmocka_unit_test_prestate(
		        test_hostile, (void *)&hostile[i]);
		hostile_tests[i].name = hostile[i].name;
	}
	failed = cmocka_run_group_tests_name("envelope", tests, NULL, NULL);
	failed += _cmocka_run_group_tests("envelope_hostile", hostile_tests, N_HOSTILE, NULL, NULL);
	return failed ? 1 : 0;
}
