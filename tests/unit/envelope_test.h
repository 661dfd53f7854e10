/* envelope_test.h - what the unit tests of the bus envelope codec share
 * (test_envelope.c, test_envelope_limits.c): the default frame cap, comparing
 * two envelopes, the full round trip of one and reading a corpus file.
 * Include after <cmocka.h>. */
#ifndef OMR_TESTS_ENVELOPE_TEST_H
#define OMR_TESTS_ENVELOPE_TEST_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "omnirouter/envelope.h"

#define MAX OMR_ENV_FRAME_MAX_DEFAULT
/* Room for any frame the tests build or read from a corpus. */
#define BIG (MAX + 64)

static inline void assert_str_eq(const char *a, const char *b)
{
	if (!a || !b)
		assert_ptr_equal(a, b);
	else
		assert_string_equal(a, b);
}

static inline void assert_env_equal(const omr_envelope_t *a, const omr_envelope_t *b)
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

/* Encodes, decodes, checks equality and that re-encoding is byte-identical. */
static inline void round_trip(const omr_envelope_t *e)
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

/* Reads a corpus file (at most BIG + 1 bytes, malloc'd); fails the test if it
 * cannot be opened. */
static inline uint8_t *read_file(const char *path, size_t *len)
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

#endif
