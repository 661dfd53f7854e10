/* bus_client.c - the adapter side of the bus: a ZeroMQ DEALER driven by a
 * libuv loop, with request ids, acks, resends on timeout and deliveries.
 *
 * ZMQ_FD is edge-triggered: every wakeup drains the socket with ZMQ_DONTWAIT
 * until EAGAIN, at most BUS_BATCH messages per loop turn (the rest continues
 * from a uv_idle so one busy socket cannot starve the loop), and ZMQ_EVENTS is
 * re-checked once before the loop next waits (uv_prepare) after any send,
 * because a send can consume the edge. Once per loop turn, not per send: each
 * check costs libzmq a poll() and a getpid().
 *
 * Pending requests sit in a list ordered by deadline (they all use the same
 * timeout, so appending keeps it sorted) and in an id map for acks.
 * Owns the socket, its handles and the frames. Loop thread only. */
#include "bus_client.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zmq.h>

#include "omnirouter/error.h"
#include "omnirouter/log.h"
#include "omnirouter/util.h"
#include "u64map.h"

#define BUS_BATCH 256
#define BUS_ROUTING_ID_MAX 64

typedef struct bus_req {
	uint64_t id;
	char *frame;
	size_t len;
	unsigned attempts;
	uint64_t deadline; /* uv_now() ms */
	void *ctx;
	bool internal; /* adapter.hello: finished here, not through on_done */
	struct bus_req *prev, *next;
} bus_req_t;

struct omr_bus_client {
	uv_loop_t *loop;
	void *sock;
	uv_poll_t poll;
	uv_timer_t timer;
	uv_idle_t idle;
	uv_prepare_t recheck; /* started by a send, see the top of the file */
	int open_handles;
	bool closing;
	bool skip_more; /* dropping the rest of a multi-part message */
	omr_bus_client_opts_t opts;
	char *endpoint;
	char *adapter_name;
	char routing_id[BUS_ROUTING_ID_MAX];
	omr_u64map_t *by_id;
	bus_req_t *head, *tail;
	size_t pending;
};

/* Ids are unique per process across every bus client (the router dedups by
 * id), start at 1 and only grow. */
static _Atomic uint64_t bus_next_id = 1;

static void on_timer(uv_timer_t *t);
static void on_idle(uv_idle_t *h);

static void req_unlink(omr_bus_client_t *bc, bus_req_t *r)
{
	if (r->prev)
		r->prev->next = r->next;
	else
		bc->head = r->next;
	if (r->next)
		r->next->prev = r->prev;
	else
		bc->tail = r->prev;
	r->prev = r->next = NULL;
}

static void req_append(omr_bus_client_t *bc, bus_req_t *r)
{
	r->prev = bc->tail;
	r->next = NULL;
	if (bc->tail)
		bc->tail->next = r;
	else
		bc->head = r;
	bc->tail = r;
}

static void req_free(bus_req_t *r)
{
	free(r->frame);
	free(r);
}

static void arm_timer(omr_bus_client_t *bc)
{
	if (bc->closing)
		return;
	if (!bc->head) {
		uv_timer_stop(&bc->timer);
		return;
	}
	uint64_t now = uv_now(bc->loop);
	uint64_t delay = bc->head->deadline > now ? bc->head->deadline - now : 0;
	uv_timer_start(&bc->timer, on_timer, delay, 0);
}

/* Removes r from the tables and reports its outcome. */
static void req_finish(omr_bus_client_t *bc, bus_req_t *r, int status, const omr_envelope_t *ack)
{
	req_unlink(bc, r);
	omr_u64map_del(bc->by_id, r->id);
	bc->pending--;
	if (r->internal) {
		if (status == 0)
			omr_info("bus", "router acknowledged adapter.hello adapter=%s id=%s",
			         bc->adapter_name, bc->routing_id);
		else
			omr_warn("bus", "adapter.hello failed adapter=%s err=%s", bc->adapter_name,
			         omr_strerror(status));
	} else if (bc->opts.on_done) {
		bc->opts.on_done(bc->opts.user, r->ctx, status, ack);
	}
	req_free(r);
}

static void on_recheck(uv_prepare_t *h)
{
	omr_bus_client_t *bc = h->data;
	int events = 0;
	size_t sz = sizeof(events);
	uv_prepare_stop(h);
	if (bc->closing)
		return;
	if (zmq_getsockopt(bc->sock, ZMQ_EVENTS, &events, &sz) == 0 && (events & ZMQ_POLLIN))
		uv_idle_start(&bc->idle, on_idle);
}

/* One send attempt; a refusal (no router connected yet, high-water mark)
 * still counts: the resend timer tries again. */
static void req_transmit(omr_bus_client_t *bc, bus_req_t *r)
{
	r->attempts++;
	r->deadline = uv_now(bc->loop) + bc->opts.ack_timeout_ms;
	if (zmq_send(bc->sock, r->frame, r->len, ZMQ_DONTWAIT) < 0)
		omr_debug("bus", "send deferred id=%llu attempt=%u err=%s",
		          (unsigned long long)r->id, r->attempts, zmq_strerror(errno));
	if (!bc->closing)
		uv_prepare_start(&bc->recheck, on_recheck);
}

static void on_timer(uv_timer_t *t)
{
	omr_bus_client_t *bc = t->data;
	uint64_t now = uv_now(bc->loop);
	while (bc->head && bc->head->deadline <= now && !bc->closing) {
		bus_req_t *r = bc->head;
		if (r->attempts >= bc->opts.max_attempts) {
			omr_warn("bus", "request timed out id=%llu attempts=%u",
			         (unsigned long long)r->id, r->attempts);
			req_finish(bc, r, -ETIMEDOUT, NULL);
			continue;
		}
		req_unlink(bc, r);
		req_append(bc, r);
		omr_debug("bus", "resending id=%llu attempt=%u", (unsigned long long)r->id,
		          r->attempts + 1);
		req_transmit(bc, r);
	}
	arm_timer(bc);
}

static void handle_frame(omr_bus_client_t *bc, const void *data, size_t len)
{
	omr_envelope_t *env = NULL;
	const char *why = NULL;
	int rc = omr_envelope_decode(data, len, bc->opts.max_frame_bytes, &env, &why);
	if (rc) {
		omr_warn("bus", "dropped undecodable frame len=%zu err=%d why=%s", len, rc,
		         why ? why : "-");
		return;
	}
	if (env->type == OMR_ENV_ACK) {
		bus_req_t *r = omr_u64map_get(bc->by_id, env->re);
		if (r)
			req_finish(bc, r, env->status, env);
		else
			omr_debug("bus", "ack for unknown id re=%llu (duplicate or late)",
			          (unsigned long long)env->re);
		omr_envelope_destroy(&env);
		arm_timer(bc);
		return;
	}
	if (bc->opts.on_deliver)
		bc->opts.on_deliver(bc->opts.user, &env);
	omr_envelope_destroy(&env);
}

/* Receives until the socket is empty or the batch is used up. */
static void drain(omr_bus_client_t *bc)
{
	for (int n = 0; n < BUS_BATCH && !bc->closing; n++) {
		zmq_msg_t msg;
		zmq_msg_init(&msg);
		if (zmq_msg_recv(&msg, bc->sock, ZMQ_DONTWAIT) < 0) {
			int err = errno;
			zmq_msg_close(&msg);
			if (err == EINTR)
				continue;
			if (err != EAGAIN)
				omr_warn("bus", "receive failed err=%s", zmq_strerror(err));
			uv_idle_stop(&bc->idle);
			return;
		}
		/* The contract is one frame per message: drop anything else whole. */
		bool more = zmq_msg_more(&msg);
		if (bc->skip_more || more) {
			if (!bc->skip_more)
				omr_warn("bus", "dropped multi-part message");
			bc->skip_more = more;
		} else {
			handle_frame(bc, zmq_msg_data(&msg), zmq_msg_size(&msg));
		}
		zmq_msg_close(&msg);
	}
	if (!bc->closing)
		uv_idle_start(&bc->idle, on_idle);
}

static void on_idle(uv_idle_t *h)
{
	drain(h->data);
}

static void on_poll(uv_poll_t *p, int status, int events)
{
	if (status < 0)
		omr_debug("bus", "poll status=%s", uv_strerror(status));
	drain(p->data);
}

static int set_opt_int(void *sock, int opt, int value)
{
	return zmq_setsockopt(sock, opt, &value, sizeof(value)) ? -errno : 0;
}

static int socket_setup(omr_bus_client_t *bc)
{
	char hex[17];
	int rc = omr_random_hex(hex, sizeof(hex), 8);
	if (rc)
		return rc;
	snprintf(bc->routing_id, sizeof(bc->routing_id), "%s-%s", bc->opts.id_prefix, hex);
	int64_t maxmsg = (int64_t)bc->opts.max_frame_bytes;
	int hwm = bc->opts.max_pending > 1000000 ? 1000000 : (int)bc->opts.max_pending + 16;
	if (zmq_setsockopt(bc->sock, ZMQ_ROUTING_ID, bc->routing_id, strlen(bc->routing_id)) ||
	    zmq_setsockopt(bc->sock, ZMQ_MAXMSGSIZE, &maxmsg, sizeof(maxmsg)))
		return -errno;
	if ((rc = set_opt_int(bc->sock, ZMQ_IMMEDIATE, 1)) ||
	    (rc = set_opt_int(bc->sock, ZMQ_LINGER, 0)) ||
	    (rc = set_opt_int(bc->sock, ZMQ_SNDHWM, hwm)) ||
	    (rc = set_opt_int(bc->sock, ZMQ_RCVHWM, 100000)))
		return rc;
	if (zmq_connect(bc->sock, bc->endpoint))
		return -errno;
	return 0;
}

static int handles_start(omr_bus_client_t *bc)
{
	int fd = -1;
	size_t sz = sizeof(fd);
	if (zmq_getsockopt(bc->sock, ZMQ_FD, &fd, &sz))
		return -errno;
	int rc = uv_poll_init(bc->loop, &bc->poll, fd);
	if (rc)
		return rc;
	bc->poll.data = bc;
	bc->open_handles++;
	uv_timer_init(bc->loop, &bc->timer);
	bc->timer.data = bc;
	bc->open_handles++;
	uv_idle_init(bc->loop, &bc->idle);
	bc->idle.data = bc;
	bc->open_handles++;
	uv_prepare_init(bc->loop, &bc->recheck);
	bc->recheck.data = bc;
	bc->open_handles++;
	return uv_poll_start(&bc->poll, UV_READABLE, on_poll);
}

static int send_hello(omr_bus_client_t *bc)
{
	omr_envelope_t *env = omr_envelope_new(OMR_ENV_ADAPTER_HELLO);
	if (!env)
		return -ENOMEM;
	int rc = omr_envelope_set(&env->name, bc->adapter_name);
	const char *why = NULL;
	if (!rc)
		rc = omr_bus_client_send(bc, env, NULL, &why);
	if (!rc && bc->tail)
		bc->tail->internal = true;
	if (rc)
		omr_error("bus", "cannot send adapter.hello err=%d why=%s", rc, why ? why : "-");
	omr_envelope_destroy(&env);
	return rc;
}

int omr_bus_client_new(void *zctx, uv_loop_t *loop, const omr_bus_client_opts_t *opts,
                       omr_bus_client_t **out)
{
	if (!zctx || !loop || !opts || !opts->endpoint || !opts->adapter_name || !opts->id_prefix ||
	    !opts->max_pending || !opts->max_attempts || !out)
		return -EINVAL;
	omr_bus_client_t *bc = calloc(1, sizeof(*bc));
	if (!bc)
		return -ENOMEM;
	bc->loop = loop;
	bc->opts = *opts;
	bc->endpoint = strdup(opts->endpoint);
	bc->adapter_name = strdup(opts->adapter_name);
	bc->by_id = omr_u64map_new();
	int rc = -ENOMEM;
	if (!bc->endpoint || !bc->adapter_name || !bc->by_id)
		goto fail;
	bc->opts.endpoint = bc->endpoint;
	bc->opts.adapter_name = bc->adapter_name;
	bc->sock = zmq_socket(zctx, ZMQ_DEALER);
	if (!bc->sock) {
		rc = -errno;
		goto fail;
	}
	if ((rc = socket_setup(bc)) || (rc = handles_start(bc)) || (rc = send_hello(bc)))
		goto fail;
	omr_info("bus", "connected endpoint=%s id=%s", bc->endpoint, bc->routing_id);
	*out = bc;
	return 0;
fail:
	omr_error("bus", "bus client setup failed endpoint=%s err=%s", opts->endpoint,
	          omr_strerror(rc));
	omr_bus_client_destroy(&bc);
	return rc;
}

static void release(omr_bus_client_t *bc)
{
	if (bc->sock)
		zmq_close(bc->sock);
	omr_u64map_destroy(&bc->by_id);
	free(bc->endpoint);
	free(bc->adapter_name);
	free(bc);
}

static void on_handle_closed(uv_handle_t *h)
{
	omr_bus_client_t *bc = h->data;
	if (--bc->open_handles == 0)
		release(bc);
}

void omr_bus_client_destroy(omr_bus_client_t **bcp)
{
	if (!bcp || !*bcp)
		return;
	omr_bus_client_t *bc = *bcp;
	*bcp = NULL;
	/* Cancel before closing: owners must get their contexts back. */
	while (bc->head)
		req_finish(bc, bc->head, -ECANCELED, NULL);
	bc->closing = true;
	if (bc->open_handles == 0) {
		release(bc);
		return;
	}
	/* The poll handle is closed before the socket (from the last close
	 * callback): libuv must stop watching the fd ZeroMQ owns first. */
	uv_close((uv_handle_t *)&bc->poll, on_handle_closed);
	uv_close((uv_handle_t *)&bc->timer, on_handle_closed);
	uv_close((uv_handle_t *)&bc->idle, on_handle_closed);
	uv_close((uv_handle_t *)&bc->recheck, on_handle_closed);
}

int omr_bus_client_send(omr_bus_client_t *bc, omr_envelope_t *env, void *ctx, const char **why)
{
	if (!bc || !env)
		return -EINVAL;
	if (bc->closing)
		return -ECANCELED;
	if (bc->pending >= bc->opts.max_pending)
		return -EAGAIN;
	bus_req_t *r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	env->id = atomic_fetch_add(&bus_next_id, 1);
	if (!env->ts_ms)
		env->ts_ms = omr_now_ms();
	int rc = omr_envelope_encode(env, bc->opts.max_frame_bytes, &r->frame, &r->len, why);
	if (!rc)
		rc = omr_u64map_put(bc->by_id, env->id, r);
	if (rc) {
		req_free(r);
		return rc;
	}
	r->id = env->id;
	r->ctx = ctx;
	bc->pending++;
	req_append(bc, r);
	req_transmit(bc, r);
	if (bc->head == r)
		arm_timer(bc);
	return 0;
}

size_t omr_bus_client_pending(const omr_bus_client_t *bc)
{
	return bc ? bc->pending : 0;
}

bool omr_bus_client_is_full(const omr_bus_client_t *bc)
{
	return !bc || bc->pending >= bc->opts.max_pending;
}

void omr_bus_client_set_timing(omr_bus_client_t *bc, uint64_t ack_timeout_ms, unsigned max_attempts)
{
	if (!bc || !ack_timeout_ms || !max_attempts)
		return;
	bc->opts.ack_timeout_ms = ack_timeout_ms;
	bc->opts.max_attempts = max_attempts;
	/* A shorter timeout applies to what is in flight too. Capping every
	 * deadline keeps the list in deadline order, which on_timer relies on. */
	uint64_t cap = uv_now(bc->loop) + ack_timeout_ms;
	for (bus_req_t *r = bc->head; r; r = r->next)
		if (r->deadline > cap)
			r->deadline = cap;
	arm_timer(bc);
}

const char *omr_bus_client_routing_id(const omr_bus_client_t *bc)
{
	return bc ? bc->routing_id : "";
}
