/* test_envelope.c - the bus envelope codec (common/envelope.c): names, UTF-8
 * and the helpers; round trips of every field and type; the exact bytes of a
 * known envelope; the encoder's rules; and the fuzz seed corpus, every seed
 * of which must decode and round-trip. The decoder's accepted edges and its
 * hostile frames are in test_envelope_limits.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "omnirouter/envelope.h"
#include "envelope_test.h"

#define CORPUS_DIR OMR_SOURCE_DIR "/tests/fuzz/corpus/envelope"

/* ---- helpers ------------------------------------------------------------ */

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
	        cmocka_unit_test(test_seed_corpus_decodes),
	};
	return cmocka_run_group_tests_name("envelope", tests, NULL, NULL);
}
