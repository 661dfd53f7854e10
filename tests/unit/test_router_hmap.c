/* Unit tests for router/hmap.c: the session tables' map. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include "hmap.h"

static void test_put_get_del(void **state)
{
	omr_hmap_t *m = omr_hmap_new();
	int a = 1, b = 2;
	assert_int_equal(omr_hmap_put(m, "t/ana", &a), 0);
	assert_int_equal(omr_hmap_put(m, "t/luis", &b), 0);
	assert_ptr_equal(omr_hmap_get(m, "t/ana"), &a);
	assert_ptr_equal(omr_hmap_get(m, "t/luis"), &b);
	assert_null(omr_hmap_get(m, "t/an"));
	assert_int_equal(omr_hmap_put(m, "t/ana", &b), 0); /* replace */
	assert_ptr_equal(omr_hmap_get(m, "t/ana"), &b);
	assert_int_equal(omr_hmap_size(m), 2);
	assert_ptr_equal(omr_hmap_del(m, "t/ana"), &b);
	assert_null(omr_hmap_del(m, "t/ana"));
	assert_int_equal(omr_hmap_size(m), 1);
	omr_hmap_destroy(&m);
	assert_null(m);
	omr_hmap_destroy(&m); /* NULL-safe */
}

static void count(void *ud, const char *key, void *value)
{
	(*(size_t *)ud) += (size_t)(uintptr_t)value;
}

static void test_growth_keeps_every_entry(void **state)
{
	omr_hmap_t *m = omr_hmap_new();
	char key[32];
	for (uintptr_t i = 1; i <= 10000; i++) {
		snprintf(key, sizeof(key), "k%lu", (unsigned long)i);
		assert_int_equal(omr_hmap_put(m, key, (void *)i), 0);
	}
	assert_int_equal(omr_hmap_size(m), 10000);
	for (uintptr_t i = 1; i <= 10000; i++) {
		snprintf(key, sizeof(key), "k%lu", (unsigned long)i);
		assert_ptr_equal(omr_hmap_get(m, key), (void *)i);
	}
	size_t sum = 0;
	omr_hmap_each(m, count, &sum);
	assert_int_equal(sum, 10000u * 10001u / 2u);
	omr_hmap_destroy(&m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_put_get_del),
	        cmocka_unit_test(test_growth_keeps_every_entry),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
