/* test_ws_queue.c - a connection's output queue (adapters/websocket/ws_conn.c): a client that
 * reads may take a burst past the cap up to the ceiling (WS_QUEUE_BURST times it, at least
 * WS_QUEUE_CEILING_MIN); one whose queue is past the cap and took nothing of it for
 * WS_QUEUE_STALL_MS has stopped reading. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "websocket/ws_conn.h"

#define CAP 100

static char frame[60];

static void take_all(ws_conn_t *c, uint64_t now)
{
	for (ws_out_t *m; (m = ws_conn_dequeue(c, now));)
		free(m);
}

static void test_ceiling(void **state)
{
	(void)state;
	assert_int_equal(ws_queue_ceiling(CAP), WS_QUEUE_CEILING_MIN);
	assert_int_equal(ws_queue_ceiling((size_t)32 << 20), (size_t)32 << 20 << 2);
}

static void test_burst_past_the_cap_up_to_the_ceiling(void **state)
{
	(void)state;
	const size_t mib = (size_t)1 << 20;
	char *big = malloc(mib);
	assert_non_null(big);
	memset(big, 'y', mib);
	ws_conn_t c = {0};
	size_t queued = 0;
	/* all at once (a login's resend): past the cap, never past the ceiling */
	while (queued + mib <= ws_queue_ceiling(mib)) {
		assert_int_equal(ws_conn_queue(&c, big, mib, mib, 1000), 0);
		queued += mib;
	}
	assert_int_equal(queued, WS_QUEUE_CEILING_MIN);
	assert_false(ws_conn_stalled(&c, mib, 1000 + WS_QUEUE_STALL_MS - 1));
	assert_int_equal(ws_conn_queue(&c, big, mib, mib, 1000), -ENOBUFS);
	assert_int_equal(c.out_bytes, queued); /* (nothing added) */
	ws_conn_release(&c);
	free(big);
}

static void test_stalled_past_the_cap(void **state)
{
	(void)state;
	ws_conn_t c = {0};
	assert_int_equal(ws_conn_queue(&c, frame, sizeof(frame), CAP, 0), 0);
	assert_int_equal(ws_conn_queue(&c, frame, sizeof(frame), CAP, 5000), 0);
	/* past the cap, nothing taken since the queue started 10 s ago: stopped reading */
	assert_int_equal(ws_conn_queue(&c, frame, sizeof(frame), CAP, WS_QUEUE_STALL_MS), -ENOBUFS);
	/* it reads one frame: reading again, the next fits */
	free(ws_conn_dequeue(&c, WS_QUEUE_STALL_MS + 1));
	assert_false(ws_conn_stalled(&c, CAP, WS_QUEUE_STALL_MS + 2));
	assert_int_equal(ws_conn_queue(&c, frame, sizeof(frame), CAP, WS_QUEUE_STALL_MS + 2), 0);
	ws_conn_release(&c);
}

static void test_under_the_cap_never_stalled(void **state)
{
	(void)state;
	ws_conn_t c = {0};
	/* a quiet client with a little queued for minutes: under the cap, kept */
	assert_int_equal(ws_conn_queue(&c, frame, sizeof(frame), CAP, 0), 0);
	assert_false(ws_conn_stalled(&c, CAP, 10 * WS_QUEUE_STALL_MS));
	assert_int_equal(ws_conn_queue(&c, frame, 30, CAP, 10 * WS_QUEUE_STALL_MS), 0);
	/* emptied and filled again later: the stall counts from the new start */
	take_all(&c, 10 * WS_QUEUE_STALL_MS + 1);
	assert_null(c.out_head);
	assert_int_equal(c.out_bytes, 0);
	assert_int_equal(ws_conn_queue(&c, frame, sizeof(frame), CAP, 20 * WS_QUEUE_STALL_MS), 0);
	assert_int_equal(ws_conn_queue(&c, frame, sizeof(frame), CAP, 20 * WS_QUEUE_STALL_MS + 1),
	                 0);
	ws_conn_release(&c);
}

static void test_dequeue_keeps_order(void **state)
{
	(void)state;
	ws_conn_t c = {0};
	assert_int_equal(ws_conn_queue(&c, "one", 3, CAP, 0), 0);
	assert_int_equal(ws_conn_queue(&c, "two", 3, CAP, 0), 0);
	ws_out_t *m = ws_conn_dequeue(&c, 1);
	assert_non_null(m);
	assert_int_equal(m->len, 3);
	assert_memory_equal(m->buf + LWS_PRE, "one", 3);
	free(m);
	m = ws_conn_dequeue(&c, 2);
	assert_memory_equal(m->buf + LWS_PRE, "two", 3);
	free(m);
	assert_null(ws_conn_dequeue(&c, 3));
	assert_null(c.out_tail);
	assert_int_equal(c.out_bytes, 0);
	ws_conn_release(&c);
}

int main(void)
{
	memset(frame, 'x', sizeof(frame));
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_ceiling),
	        cmocka_unit_test(test_burst_past_the_cap_up_to_the_ceiling),
	        cmocka_unit_test(test_stalled_past_the_cap),
	        cmocka_unit_test(test_under_the_cap_never_stalled),
	        cmocka_unit_test(test_dequeue_keeps_order),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
