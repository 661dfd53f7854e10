/* test_bus_client.c - the adapter side of the bus (adapters/bus_client.c)
 * against a real ZeroMQ ROUTER over inproc: hello, acks, resends with the
 * same id, the timeout after max_attempts, deliveries, the pending cap. The
 * test thread runs both the client's libuv loop and the ROUTER. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <zmq.h>

#include "bus_client.h"
#include "omnirouter/util.h"

#define FRAME_MAX 65536
#define ACK_TIMEOUT_MS 80
#define ATTEMPTS 3

typedef struct fixture {
	void *zctx;
	void *router;
	uv_loop_t loop;
	omr_bus_client_t *bc;
	char rid[64]; /* the DEALER's routing id as the ROUTER saw it */
	size_t rid_len;
	/* what the callbacks saw */
	int done_calls;
	int done_status;
	void *done_ctx;
	char done_seq[64];
	omr_envelope_t *delivered;
} fixture_t;

static void on_done(void *user, void *ctx, int status, const omr_envelope_t *ack)
{
	fixture_t *f = user;
	f->done_calls++;
	f->done_status = status;
	f->done_ctx = ctx;
	snprintf(f->done_seq, sizeof(f->done_seq), "%s", ack && ack->seq ? ack->seq : "");
}

static void on_deliver(void *user, omr_envelope_t **env)
{
	fixture_t *f = user;
	omr_envelope_destroy(&f->delivered);
	f->delivered = *env;
	*env = NULL;
}

static void sleep_ms(long ms)
{
	struct timespec ts = {0, ms * 1000000L};
	nanosleep(&ts, NULL);
}

/* Runs the client's loop and polls the ROUTER until one request arrives
 * (returns it) or timeout_ms passes (NULL). */
static omr_envelope_t *router_recv(fixture_t *f, int timeout_ms)
{
	uint64_t end = omr_mono_ms() + (uint64_t)timeout_ms;
	while (omr_mono_ms() < end) {
		uv_run(&f->loop, UV_RUN_NOWAIT);
		char rid[64], buf[FRAME_MAX];
		int n = zmq_recv(f->router, rid, sizeof(rid), ZMQ_DONTWAIT);
		if (n < 0) {
			sleep_ms(1);
			continue;
		}
		assert_true(n > 0 && (size_t)n < sizeof(rid));
		memcpy(f->rid, rid, (size_t)n);
		f->rid[n] = '\0';
		f->rid_len = (size_t)n;
		int len = zmq_recv(f->router, buf, sizeof(buf), 0);
		assert_true(len > 0);
		omr_envelope_t *env = NULL;
		assert_int_equal(omr_envelope_decode(buf, (size_t)len, FRAME_MAX, &env, NULL), 0);
		return env;
	}
	return NULL;
}

static void router_send(fixture_t *f, const omr_envelope_t *env)
{
	char *buf = NULL;
	size_t len = 0;
	assert_int_equal(omr_envelope_encode(env, FRAME_MAX, &buf, &len, NULL), 0);
	assert_int_equal(zmq_send(f->router, f->rid, f->rid_len, ZMQ_SNDMORE), (int)f->rid_len);
	assert_int_equal(zmq_send(f->router, buf, len, 0), (int)len);
	free(buf);
}

static void router_ack(fixture_t *f, uint64_t re, int status, const char *seq)
{
	omr_envelope_t *ack = omr_envelope_new(OMR_ENV_ACK);
	ack->id = 1000 + re;
	ack->re = re;
	ack->status = status;
	omr_envelope_set(&ack->seq, seq);
	router_send(f, ack);
	omr_envelope_destroy(&ack);
}

/* Runs the loop until cond holds or timeout_ms passes. */
#define PUMP_UNTIL(f, cond, timeout_ms)                                                            \
	do {                                                                                       \
		uint64_t end_ = omr_mono_ms() + (timeout_ms);                                      \
		while (!(cond) && omr_mono_ms() < end_) {                                          \
			uv_run(&(f)->loop, UV_RUN_NOWAIT);                                         \
			sleep_ms(1);                                                               \
		}                                                                                  \
	} while (0)

static int setup(void **state)
{
	fixture_t *f = calloc(1, sizeof(*f));
	f->zctx = zmq_ctx_new();
	f->router = zmq_socket(f->zctx, ZMQ_ROUTER);
	assert_int_equal(zmq_bind(f->router, "inproc://bus-test"), 0);
	assert_int_equal(uv_loop_init(&f->loop), 0);
	omr_bus_client_opts_t o = {
	        .endpoint = "inproc://bus-test",
	        .adapter_name = "websocket",
	        .id_prefix = "ws",
	        .max_frame_bytes = FRAME_MAX,
	        .ack_timeout_ms = ACK_TIMEOUT_MS,
	        .max_attempts = ATTEMPTS,
	        .max_pending = 3,
	        .on_done = on_done,
	        .on_deliver = on_deliver,
	        .user = f,
	};
	assert_int_equal(omr_bus_client_new(f->zctx, &f->loop, &o, &f->bc), 0);
	/* Every client starts with adapter.hello; ack it. */
	omr_envelope_t *hello = router_recv(f, 2000);
	assert_non_null(hello);
	assert_int_equal(hello->type, OMR_ENV_ADAPTER_HELLO);
	assert_string_equal(hello->name, "websocket");
	assert_true(hello->id > 0);
	assert_int_equal(f->rid_len, 19);
	assert_memory_equal(f->rid, "ws-", 3);
	assert_string_equal(f->rid, omr_bus_client_routing_id(f->bc));
	assert_int_equal(omr_bus_client_pending(f->bc), 1);
	router_ack(f, hello->id, 0, NULL);
	PUMP_UNTIL(f, omr_bus_client_pending(f->bc) == 0, 2000);
	assert_int_equal(omr_bus_client_pending(f->bc), 0);
	assert_int_equal(f->done_calls, 0); /* the hello's ack is the client's own */
	omr_envelope_destroy(&hello);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fixture_t *f = *state;
	omr_bus_client_destroy(&f->bc);
	uv_run(&f->loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&f->loop), 0);
	omr_envelope_destroy(&f->delivered);
	zmq_close(f->router);
	zmq_ctx_term(f->zctx);
	free(f);
	return 0;
}

static omr_envelope_t *message_env(void)
{
	omr_envelope_t *env = omr_envelope_new(OMR_ENV_CONV_MESSAGE);
	env->conn = 7;
	env->channel = OMR_CHANNEL_CHAT;
	env->from = OMR_ROLE_CUSTOMER;
	omr_envelope_set(&env->tenant, "default");
	omr_envelope_set(&env->conv, "c1");
	omr_envelope_set(&env->msgid, "m1");
	omr_envelope_set(&env->text, "hello");
	return env;
}

/* After a reload shortens bus.ack_timeout_ms, a request sent after the reload
 * must be resent after the new timeout, not after the old one of a request
 * queued before it. */
static void test_shorter_timeout_after_reload(void **state)
{
	fixture_t *f = *state;
	int ctx1, ctx2;
	omr_bus_client_set_timing(f->bc, 3000, 3);
	omr_envelope_t *a = message_env(), *b = message_env();
	assert_int_equal(omr_bus_client_send(f->bc, a, &ctx1, NULL), 0);
	omr_envelope_t *got = router_recv(f, 1000);
	assert_non_null(got);
	omr_envelope_destroy(&got);
	omr_bus_client_set_timing(f->bc, 50, 3); /* reload */
	uint64_t t0 = omr_mono_ms();
	assert_int_equal(omr_bus_client_send(f->bc, b, &ctx2, NULL), 0);
	got = router_recv(f, 1000); /* first copy of b */
	assert_non_null(got);
	assert_int_equal(got->id, b->id);
	omr_envelope_destroy(&got);
	/* Its resend, due 50 ms after it was sent (the one before the reload is
	 * resent on the shorter timeout too): within 1.5 s, the old timeout was 3 s. */
	bool resent = false;
	while (!resent && (got = router_recv(f, 1500)) != NULL) {
		resent = got->id == b->id;
		omr_envelope_destroy(&got);
	}
	fprintf(stderr, "resend of the request sent after the reload: %s after %llu ms\n",
	        resent ? "arrived" : "NOT arrived", (unsigned long long)(omr_mono_ms() - t0));
	assert_true(resent);
	omr_envelope_destroy(&a);
	omr_envelope_destroy(&b);
}

static void test_request_acked(void **state)
{
	fixture_t *f = *state;
	int ctx;
	omr_envelope_t *env = message_env();
	assert_int_equal(omr_bus_client_send(f->bc, env, &ctx, NULL), 0);
	omr_envelope_t *got = router_recv(f, 2000);
	assert_non_null(got);
	assert_int_equal(got->id, env->id);
	assert_int_equal(got->type, OMR_ENV_CONV_MESSAGE);
	assert_string_equal(got->text, "hello");
	assert_int_equal(got->conn, 7);
	router_ack(f, got->id, 0, "1700000000000-3");
	PUMP_UNTIL(f, f->done_calls > 0, 2000);
	assert_int_equal(f->done_calls, 1);
	assert_int_equal(f->done_status, 0);
	assert_ptr_equal(f->done_ctx, &ctx);
	assert_string_equal(f->done_seq, "1700000000000-3");
	assert_int_equal(omr_bus_client_pending(f->bc), 0);
	/* A duplicate ack (the router answering a resend) is ignored. */
	router_ack(f, got->id, 0, "1700000000000-3");
	PUMP_UNTIL(f, false, 50);
	assert_int_equal(f->done_calls, 1);

	/* Ids grow; a refusal's status reaches the owner as is. */
	uint64_t first = got->id;
	omr_envelope_destroy(&got);
	assert_int_equal(omr_bus_client_send(f->bc, env, &ctx, NULL), 0);
	got = router_recv(f, 2000);
	assert_non_null(got);
	assert_true(got->id > first);
	router_ack(f, got->id, -10002, NULL);
	PUMP_UNTIL(f, f->done_calls > 1, 2000);
	assert_int_equal(f->done_status, -10002);
	omr_envelope_destroy(&got);
	omr_envelope_destroy(&env);
}

static void test_resend_then_timeout(void **state)
{
	fixture_t *f = *state;
	int ctx;
	omr_envelope_t *env = message_env();
	uint64_t t0 = omr_mono_ms();
	assert_int_equal(omr_bus_client_send(f->bc, env, &ctx, NULL), 0);
	uint64_t id = env->id;
	int received = 0;
	for (;;) {
		omr_envelope_t *got = router_recv(f, 1000);
		if (!got)
			break;
		assert_int_equal(got->id, id); /* every resend carries the same id */
		received++;
		omr_envelope_destroy(&got);
	}
	assert_int_equal(received, ATTEMPTS);
	assert_int_equal(f->done_calls, 1);
	assert_int_equal(f->done_status, -ETIMEDOUT);
	assert_ptr_equal(f->done_ctx, &ctx);
	assert_true(omr_mono_ms() - t0 >= (uint64_t)ACK_TIMEOUT_MS * ATTEMPTS);
	assert_int_equal(omr_bus_client_pending(f->bc), 0);
	omr_envelope_destroy(&env);
}

static void test_resend_then_ack(void **state)
{
	fixture_t *f = *state;
	int ctx;
	omr_envelope_t *env = message_env();
	assert_int_equal(omr_bus_client_send(f->bc, env, &ctx, NULL), 0);
	omr_envelope_t *a = router_recv(f, 2000), *b = router_recv(f, 2000);
	assert_non_null(a);
	assert_non_null(b);
	assert_int_equal(a->id, b->id);
	router_ack(f, b->id, 0, "5-0");
	PUMP_UNTIL(f, f->done_calls > 0, 2000);
	assert_int_equal(f->done_status, 0);
	assert_string_equal(f->done_seq, "5-0");
	omr_envelope_destroy(&a);
	omr_envelope_destroy(&b);
	omr_envelope_destroy(&env);
}

static void test_delivery(void **state)
{
	fixture_t *f = *state;
	omr_envelope_t *d = omr_envelope_new(OMR_ENV_DELIVER);
	d->id = 77;
	d->conn = 12;
	d->ts_ms = 1700000000000ull;
	omr_envelope_set(&d->event, "message");
	omr_envelope_set(&d->seq, "1700000000000-1");
	omr_envelope_set(&d->text, "hi there");
	router_send(f, d);
	PUMP_UNTIL(f, f->delivered != NULL, 2000);
	assert_non_null(f->delivered);
	assert_int_equal(f->delivered->type, OMR_ENV_DELIVER);
	assert_int_equal(f->delivered->conn, 12);
	assert_string_equal(f->delivered->event, "message");
	assert_string_equal(f->delivered->text, "hi there");
	assert_int_equal(f->done_calls, 0);
	omr_envelope_destroy(&d);

	/* Garbage from the router is dropped, and the next frame still works. */
	assert_int_equal(zmq_send(f->router, f->rid, f->rid_len, ZMQ_SNDMORE), (int)f->rid_len);
	assert_int_equal(zmq_send(f->router, "\xc1garbage", 8, 0), 8);
	omr_envelope_destroy(&f->delivered);
	d = omr_envelope_new(OMR_ENV_DELIVER);
	d->id = 78;
	d->conn = 13;
	omr_envelope_set(&d->event, "closed");
	router_send(f, d);
	PUMP_UNTIL(f, f->delivered != NULL, 2000);
	assert_non_null(f->delivered);
	assert_int_equal(f->delivered->conn, 13);
	omr_envelope_destroy(&d);
}

static void test_pending_cap_and_cancel(void **state)
{
	fixture_t *f = *state;
	int ctx[4];
	omr_envelope_t *env = message_env();
	for (int i = 0; i < 3; i++)
		assert_int_equal(omr_bus_client_send(f->bc, env, &ctx[i], NULL), 0);
	assert_true(omr_bus_client_is_full(f->bc));
	assert_int_equal(omr_bus_client_send(f->bc, env, &ctx[3], NULL), -EAGAIN);
	assert_int_equal(omr_bus_client_pending(f->bc), 3);
	omr_bus_client_destroy(&f->bc); /* cancels the three */
	assert_null(f->bc);
	assert_int_equal(f->done_calls, 3);
	assert_int_equal(f->done_status, -ECANCELED);
	omr_envelope_destroy(&env);
}

static void test_encode_refusal(void **state)
{
	fixture_t *f = *state;
	int ctx;
	const char *why = NULL;
	char tenant[OMR_ENV_ID_MAX + 2];
	omr_envelope_t *bad = omr_envelope_new(OMR_ENV_CONV_MESSAGE);
	memset(tenant, 't', sizeof(tenant) - 1);
	tenant[sizeof(tenant) - 1] = '\0';
	omr_envelope_set(&bad->tenant, tenant); /* one byte over the id limit */
	int rc = omr_bus_client_send(f->bc, bad, &ctx, &why);
	omr_envelope_destroy(&bad);
	assert_int_equal(rc, -EINVAL);
	assert_non_null(why);
	assert_int_equal(omr_bus_client_pending(f->bc), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(test_request_acked, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_resend_then_timeout, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_resend_then_ack, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_delivery, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_pending_cap_and_cancel, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_encode_refusal, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_shorter_timeout_after_reload, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
