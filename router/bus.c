/* bus.c - ROUTER side of the bus. Loop thread only.
 *
 * ZMQ_FD is edge-triggered: every wakeup drains the socket with ZMQ_DONTWAIT
 * (a capped batch per loop turn, continued from a uv_idle so one busy peer
 * cannot starve timers and Redis replies), and ZMQ_EVENTS is re-checked once
 * before the loop next waits (uv_prepare) after any send, because a send can
 * consume the edge. Once per loop turn, not per send: each check costs libzmq
 * a poll() and a getpid(). */
#include "bus.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <zmq.h>

#include "omnirouter/log.h"

#define BATCH_MAX 512

struct omr_bus_server {
	void *sock;
	uv_poll_t poll;
	uv_idle_t idle;
	uv_prepare_t recheck; /* started by a send, see the top of the file */
	size_t frame_max;
	omr_bus_request_fn on_request;
	void *ud;
	unsigned open_handles;
	uint64_t rejected;
};

static void drain(omr_bus_server_t *b);

static void on_poll(uv_poll_t *h, int status, int events)
{
	drain(h->data);
}

static void on_idle(uv_idle_t *h)
{
	drain(h->data);
}

static bool readable(omr_bus_server_t *b)
{
	int ev = 0;
	size_t len = sizeof(ev);
	if (zmq_getsockopt(b->sock, ZMQ_EVENTS, &ev, &len) != 0)
		return false;
	return (ev & ZMQ_POLLIN) != 0;
}

static void on_recheck(uv_prepare_t *h)
{
	omr_bus_server_t *b = h->data;
	uv_prepare_stop(h);
	if (readable(b))
		uv_idle_start(&b->idle, on_idle);
}

/* Receives the remaining parts of a message we do not want. */
static void skip_rest(void *sock)
{
	int more = 1;
	size_t len = sizeof(more);
	while (zmq_getsockopt(sock, ZMQ_RCVMORE, &more, &len) == 0 && more) {
		zmq_msg_t m;
		zmq_msg_init(&m);
		zmq_msg_recv(&m, sock, ZMQ_DONTWAIT);
		zmq_msg_close(&m);
	}
}

static void handle_frame(omr_bus_server_t *b, const omr_bus_peer_t *peer, zmq_msg_t *payload)
{
	omr_envelope_t *env = NULL;
	const char *why = NULL;
	int rc = omr_envelope_decode(zmq_msg_data(payload), zmq_msg_size(payload), b->frame_max,
	                             &env, &why);
	if (rc != 0) {
		b->rejected++;
		omr_warn("bus", "envelope rejected reason=\"%s\" bytes=%zu", why ? why : "unknown",
		         zmq_msg_size(payload));
		return;
	}
	b->on_request(b->ud, peer, &env);
	omr_envelope_destroy(&env);
}

static bool recv_one(omr_bus_server_t *b)
{
	zmq_msg_t id, payload;
	zmq_msg_init(&id);
	if (zmq_msg_recv(&id, b->sock, ZMQ_DONTWAIT) < 0) {
		zmq_msg_close(&id);
		return false;
	}
	omr_bus_peer_t peer = {0};
	size_t idlen = zmq_msg_size(&id);
	bool ok = idlen > 0 && idlen <= sizeof(peer.id) && zmq_msg_more(&id);
	if (ok) {
		peer.len = (uint8_t)idlen;
		memcpy(peer.id, zmq_msg_data(&id), idlen);
	}
	zmq_msg_close(&id);
	if (!ok) {
		skip_rest(b->sock);
		return true;
	}
	zmq_msg_init(&payload);
	if (zmq_msg_recv(&payload, b->sock, ZMQ_DONTWAIT) >= 0) {
		bool more = zmq_msg_more(&payload);
		if (more) {
			skip_rest(b->sock);
			omr_warn("bus", "multipart envelope rejected");
		} else {
			handle_frame(b, &peer, &payload);
		}
	}
	zmq_msg_close(&payload);
	return true;
}

static void drain(omr_bus_server_t *b)
{
	for (int i = 0; i < BATCH_MAX; i++) {
		if (!recv_one(b)) {
			uv_idle_stop(&b->idle);
			return;
		}
	}
	/* Batch cap reached: continue next loop turn. */
	if (readable(b))
		uv_idle_start(&b->idle, on_idle);
	else
		uv_idle_stop(&b->idle);
}

int omr_bus_server_send(omr_bus_server_t *b, const omr_bus_peer_t *peer, const omr_envelope_t *env)
{
	char *buf = NULL;
	size_t len = 0;
	const char *why = NULL;
	int rc = omr_envelope_encode(env, b->frame_max, &buf, &len, &why);
	if (rc != 0) {
		omr_error("bus", "cannot encode envelope type=%s reason=\"%s\"",
		          omr_env_type_name(env->type), why ? why : "encode failed");
		return rc;
	}
	rc = omr_bus_server_send_frame(b, peer, buf, len);
	free(buf);
	return rc;
}

int omr_bus_server_send_frame(omr_bus_server_t *b, const omr_bus_peer_t *peer, const void *buf,
                              size_t len)
{
	int rc = 0;
	if (zmq_send(b->sock, peer->id, peer->len, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0 ||
	    zmq_send(b->sock, buf, len, ZMQ_DONTWAIT) < 0)
		rc = -errno;
	/* A send may have consumed the readable edge. */
	uv_prepare_start(&b->recheck, on_recheck);
	return rc;
}

int omr_bus_server_start(uv_loop_t *loop, void *zctx, const omr_config_t *cfg,
                         omr_bus_request_fn on_request, void *ud, omr_bus_server_t **out)
{
	omr_bus_server_t *b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	b->frame_max = (size_t)cfg->bus_max_frame_bytes;
	b->on_request = on_request;
	b->ud = ud;
	b->sock = zmq_socket(zctx, ZMQ_ROUTER);
	if (!b->sock) {
		free(b);
		return -errno;
	}
	int one = 1, zero = 0, hwm = 100000;
	int64_t maxmsg = cfg->bus_max_frame_bytes;
	zmq_setsockopt(b->sock, ZMQ_ROUTER_MANDATORY, &one, sizeof(one));
	zmq_setsockopt(b->sock, ZMQ_LINGER, &zero, sizeof(zero));
	zmq_setsockopt(b->sock, ZMQ_MAXMSGSIZE, &maxmsg, sizeof(maxmsg));
	zmq_setsockopt(b->sock, ZMQ_SNDHWM, &hwm, sizeof(hwm));
	zmq_setsockopt(b->sock, ZMQ_RCVHWM, &hwm, sizeof(hwm));
	if (zmq_bind(b->sock, cfg->bus_endpoint) != 0) {
		int err = -errno;
		omr_error("bus", "cannot bind endpoint=%s error=\"%s\"", cfg->bus_endpoint,
		          zmq_strerror(errno));
		zmq_close(b->sock);
		free(b);
		return err;
	}
	int fd;
	size_t fdlen = sizeof(fd);
	zmq_getsockopt(b->sock, ZMQ_FD, &fd, &fdlen);
	uv_poll_init(loop, &b->poll, fd);
	uv_idle_init(loop, &b->idle);
	uv_prepare_init(loop, &b->recheck);
	b->poll.data = b->idle.data = b->recheck.data = b;
	b->open_handles = 3;
	uv_poll_start(&b->poll, UV_READABLE, on_poll);
	omr_info("bus", "listening endpoint=%s", cfg->bus_endpoint);
	*out = b;
	/* Messages may have queued before the poll started. */
	uv_idle_start(&b->idle, on_idle);
	return 0;
}

static void on_closed(uv_handle_t *h)
{
	omr_bus_server_t *b = h->data;
	if (--b->open_handles == 0) {
		zmq_close(b->sock);
		free(b);
	}
}

void omr_bus_server_close(omr_bus_server_t **bp)
{
	omr_bus_server_t *b = *bp;
	if (!b)
		return;
	*bp = NULL;
	uv_close((uv_handle_t *)&b->poll, on_closed);
	uv_close((uv_handle_t *)&b->idle, on_closed);
	uv_close((uv_handle_t *)&b->recheck, on_closed);
}
