/* test_envelope_limits.c - the bus envelope decoder (common/envelope.c) at
 * its edges: integer widths and every limit, exactly at it, accepted; and,
 * for every decoder rule, a hostile frame built byte by byte with the exact
 * return code and reason it must get. The hostile frames are also committed
 * as files in tests/fuzz/hostile/envelope/ (the fuzz replay runs them);
 * test_hostile_files_match keeps the two in step. To rewrite the files after
 * changing the table:
 *   OMR_WRITE_HOSTILE=tests/fuzz/hostile/envelope build/tests/test_envelope_limits
 * Round trips and the encoder are in test_envelope.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdbool.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "omnirouter/envelope.h"
#include "envelope_test.h"

#define HOSTILE_DIR OMR_SOURCE_DIR "/tests/fuzz/hostile/envelope"

/* ---- helpers ------------------------------------------------------------ */

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

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_decode_int_widths),
	        cmocka_unit_test(test_decode_limits_accepted),
	        cmocka_unit_test(test_decode_args),
	        cmocka_unit_test(test_hostile_files_match),
	};
	struct CMUnitTest hostile_tests[N_HOSTILE];
	int failed;

	/* One named test per hostile frame, so a failure names the rule. */
	for (size_t i = 0; i < N_HOSTILE; i++) {
		hostile_tests[i] = (struct CMUnitTest)cmocka_unit_test_prestate(
		        test_hostile, (void *)&hostile[i]);
		hostile_tests[i].name = hostile[i].name;
	}
	failed = cmocka_run_group_tests_name("envelope_limits", tests, NULL, NULL);
	failed += _cmocka_run_group_tests("envelope_hostile", hostile_tests, N_HOSTILE, NULL, NULL);
	return failed ? 1 : 0;
}
