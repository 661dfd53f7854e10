/* Unit tests for router/ackcache.c: acks remembered for resent requests. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "ackcache.h"

static void test_put_get(void **state)
{
	omr_ackcache_t *c = omr_ackcache_new(4);
	size_t len = 0;
	assert_null(omr_ackcache_get(c, "p:1", &len));
	omr_ackcache_put(c, "p:1", "ack-one", 7);
	const char *got = omr_ackcache_get(c, "p:1", &len);
	assert_non_null(got);
	assert_int_equal(len, 7);
	assert_memory_equal(got, "ack-one", 7);
	omr_ackcache_destroy(&c);
	assert_null(c);
	omr_ackcache_destroy(&c); /* NULL-safe */
}

static void test_oldest_is_forgotten_first(void **state)
{
	omr_ackcache_t *c = omr_ackcache_new(3);
	char key[16], val[16];
	size_t len;
	for (int i = 1; i <= 5; i++) {
		snprintf(key, sizeof(key), "p:%d", i);
		snprintf(val, sizeof(val), "ack-%d", i);
		omr_ackcache_put(c, key, val, strlen(val));
	}
	assert_null(omr_ackcache_get(c, "p:1", &len));
	assert_null(omr_ackcache_get(c, "p:2", &len));
	for (int i = 3; i <= 5; i++) {
		snprintf(key, sizeof(key), "p:%d", i);
		snprintf(val, sizeof(val), "ack-%d", i);
		const char *got = omr_ackcache_get(c, key, &len);
		assert_non_null(got);
		assert_int_equal(len, strlen(val));
		assert_memory_equal(got, val, len);
	}
	/* The same key put again: the newer ack wins. */
	omr_ackcache_put(c, "p:5", "again", 5);
	const char *got = omr_ackcache_get(c, "p:5", &len);
	assert_int_equal(len, 5);
	assert_memory_equal(got, "again", 5);
	omr_ackcache_destroy(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_put_get),
	        cmocka_unit_test(test_oldest_is_forgotten_first),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
