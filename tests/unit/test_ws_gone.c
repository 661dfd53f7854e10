/* test_ws_gone.c - a connection's kept closed-connection reports
 * (adapters/websocket/ws_gone.c, ws_conn_t.unanswered): one per customer or
 * agent named, newest first, the oldest handed back past the cap. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "websocket/ws_gone.h"

static void test_keep_one_per_customer_or_agent(void **state)
{
	(void)state;
	ws_gone_t *list = NULL;
	assert_null(ws_gone_keep(&list, ws_gone_new(false, 7, "t", "conv-a"), 3));
	/* the same conversation again: kept once */
	assert_null(ws_gone_keep(&list, ws_gone_new(false, 7, "t", "conv-a"), 3));
	/* an agent of the same id, another tenant: others */
	assert_null(ws_gone_keep(&list, ws_gone_new(true, 7, "t", "conv-a"), 3));
	assert_null(ws_gone_keep(&list, ws_gone_new(false, 7, "u", "conv-a"), 3));
	/* past the cap the oldest comes back, for the caller to send */
	ws_gone_t *oldest = ws_gone_keep(&list, ws_gone_new(false, 7, "t", "conv-b"), 3);
	assert_non_null(oldest);
	assert_false(oldest->agent);
	assert_string_equal(oldest->tenant, "t");
	assert_string_equal(oldest->id, "conv-a");
	assert_null(oldest->next);
	free(oldest);
	/* newest first */
	const char *want[][2] = {{"t", "conv-b"}, {"u", "conv-a"}, {"t", "conv-a"}};
	bool agent[] = {false, false, true};
	for (size_t i = 0; i < 3; i++) {
		ws_gone_t *g = ws_gone_take(&list);
		assert_non_null(g);
		assert_string_equal(g->tenant, want[i][0]);
		assert_string_equal(g->id, want[i][1]);
		assert_int_equal(g->agent, agent[i]);
		assert_null(g->next);
		free(g);
	}
	assert_null(ws_gone_take(&list));
}

static void test_free_all(void **state)
{
	(void)state;
	ws_gone_t *list = NULL;
	ws_gone_free_all(&list);
	for (int i = 0; i < 5; i++) {
		char id[8];
		snprintf(id, sizeof(id), "c%d", i);
		ws_gone_t *out = ws_gone_keep(&list, ws_gone_new(false, 1, "t", id), 8);
		assert_null(out);
	}
	ws_gone_free_all(&list); /* LeakSanitizer checks the rest */
	assert_null(list);
}

static void test_same(void **state)
{
	(void)state;
	ws_gone_t *a = ws_gone_new(true, 1, "t", "ana"), *b = ws_gone_new(true, 2, "t", "ana");
	assert_true(ws_gone_same(a, b)); /* the connection aside */
	b->agent = false;
	assert_false(ws_gone_same(a, b));
	free(a);
	free(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_keep_one_per_customer_or_agent),
	        cmocka_unit_test(test_free_all),
	        cmocka_unit_test(test_same),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
