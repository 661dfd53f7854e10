/* ws_server.c - HTTP and websockets on one port with libwebsockets 4.1 on the
 * adapter's libuv loop (foreign loop through the evlib_uv plugin).
 *
 * Binding: the vhost's protocols[0] is "omr.v1", so an upgrade without a
 * Sec-WebSocket-Protocol header (lws binds it to the vhost's default protocol,
 * index 0) and one offering "omr.v1" both land here; the role comes from the
 * URI (/ws/customer, /ws/agent), checked in FILTER_PROTOCOL_CONNECTION.
 * Static files and /healthz are the second protocol's (ws_http.c).
 *
 * Owns the lws context, the connections (by conn id) and the per-IP counts.
 * Loop thread only. */
#include <uv.h>

#include <libwebsockets.h>

#include "websocket/ws_server.h"

#include <errno.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "omnirouter/error.h"
#include "omnirouter/log.h"
#include "omnirouter/util.h"
#include "u64map.h"
#include "websocket/ws_acks.h"
#include "websocket/ws_conn.h"
#include "websocket/ws_gone.h"
#include "websocket/ws_http.h"
#include "websocket/ws_sockets.h"

#define WS_SWEEP_MS 100
#define WS_GONE_RETRY_MS 1000 /* a closed-connection report Redis refused goes again after */
#define WS_CLOSE_GRACE_S 5    /* a closing client that does not read is cut after this */
#define WS_RX_CHUNK 4096
#define WS_DIRECT_MAX 8192 /* larger frames go through the queue */
/* An address may hold twice its websocket limit in sockets, plus this (page
 * loads, connections closing). */
#define WS_SOCKETS_SLACK 16

struct omr_ws_server {
	uv_loop_t *loop;
	struct lws_context *lws;
	omr_bus_client_t *bus;
	uv_timer_t sweep;
	bool sweep_open;
	bool draining;
	bool shut;
	omr_ws_settings_t set;
	omr_ws_limits_t limits;
	size_t max_connections;
	size_t admitted; /* connections not refused at open: what max_connections limits */
	char *listen, *static_dir, *default_tenant;
	omr_u64map_t *conns;  /* conn id -> ws_conn_t */
	omr_u64map_t *per_ip; /* ip key -> count (as a pointer-sized integer) */
	ws_sockets_t sockets; /* every accepted socket, per address (ws_sockets.h) */
	uint64_t ip_seed;
	ws_conn_list_t unauth;
	ws_conn_list_t stalled;     /* connections holding a request until the bus has room */
	ws_conn_list_t overcap;     /* connections whose output queue is past the cap */
	ws_acks_t acks;             /* agent connections' item acks not yet sent (ws_acks.h) */
	ws_gone_queue_t gone;       /* closed-connection reports waiting for room */
	ws_gone_queue_t gone_later; /* ...that Redis refused: again after WS_GONE_RETRY_MS */
	uint64_t gone_later_ms;     /* when gone_later was last sent again */
	struct lws_protocols protocols[3];
	ws_http_tables_t http; /* the static files and /healthz */
	lws_retry_bo_t retry;
};

/* A request in flight: who asked, and what the reply needs. */
typedef struct ws_pending {
	uint64_t conn; /* 0: connection-less (customer.gone, agent.gone) */
	omr_ws_request_t rq;
	ws_gone_t *gone; /* that report, sent again if the bus gave up on it */
} ws_pending_t;

static _Atomic uint64_t ws_next_conn = 1;

static const char *role_name(omr_ws_role_t r)
{
	return r == OMR_WS_ROLE_AGENT ? "agent" : "customer";
}

/* ---- settings ------------------------------------------------------------ */

void omr_ws_settings_from_config(omr_ws_settings_t *s, const omr_config_t *cfg)
{
	memset(s, 0, sizeof(*s));
	s->max_frame_bytes = (size_t)cfg->ws_max_frame_bytes;
	s->max_connections_per_ip = (size_t)cfg->ws_max_connections_per_ip;
	s->max_messages_per_second = (uint32_t)cfg->ws_max_messages_per_second;
	s->auth_timeout_ms = (uint64_t)cfg->ws_auth_timeout_ms;
	s->max_text_bytes = (size_t)cfg->chat_max_text_bytes;
	s->ack_timeout_ms = (uint64_t)cfg->bus_ack_timeout_ms;
	s->max_attempts = (unsigned)cfg->bus_max_attempts;
	/* A resume replays a whole transcript at once: the queue must hold one
	 * (every message at full length plus JSON overhead), within sane bounds. */
	uint64_t q = (uint64_t)cfg->chat_max_messages * ((uint64_t)cfg->chat_max_text_bytes + 512);
	s->max_queue_bytes = (size_t)(q < (1u << 20)    ? (1u << 20)
	                              : q > (64u << 20) ? (64u << 20)
	                                                : q);
	snprintf(s->default_language, sizeof(s->default_language), "%s",
	         cfg->routing_default_language ? cfg->routing_default_language : "en");
	/* The config allows no longer secret; were it cut, no signature would match (closed,
	 * not open). */
	snprintf(s->identity_secret, sizeof(s->identity_secret), "%s",
	         cfg->chat_identity_secret ? cfg->chat_identity_secret : "");
}

void omr_ws_server_apply(omr_ws_server_t *srv, const omr_ws_settings_t *s)
{
	srv->set = *s;
	srv->limits.max_text_bytes = srv->set.max_text_bytes;
	srv->limits.default_language = srv->set.default_language;
	srv->limits.default_tenant = srv->default_tenant;
	srv->limits.identity_secret = srv->set.identity_secret;
}

/* ---- connections ----------------------------------------------------------- */

static void want_write(ws_conn_t *c)
{
	lws_callback_on_writable(c->wsi);
}

/* Writes a frame at once when nothing is waiting before it: no frame queued
 * here, none half-sent in lws, not closing. lws sends what the socket takes
 * and keeps the rest itself (then lws_partial_buffered() is true and asks for
 * WRITEABLE), which is what it does for a write inside WRITEABLE too. Going
 * through the queue instead costs every frame two poll re-arms and a loop
 * turn. Returns false when the frame must be queued. */
static bool write_now(ws_conn_t *c, const char *text, size_t len)
{
	unsigned char buf[LWS_PRE + WS_DIRECT_MAX];
	if (len > WS_DIRECT_MAX || c->out_head || c->closing || lws_partial_buffered(c->wsi))
		return false;
	memcpy(buf + LWS_PRE, text, len);
	if (lws_write(c->wsi, buf + LWS_PRE, len, LWS_WRITE_TEXT) < 0) {
		/* The socket is gone; lws closes it from its own loop. */
		omr_info("ws", "write failed conn=%llu", (unsigned long long)c->sess.conn);
		c->closing = true;
		lws_set_timeout(c->wsi, PENDING_TIMEOUT_CLOSE_SEND, LWS_TO_KILL_ASYNC);
	}
	return true;
}

/* Cuts a client that stopped reading (or took more than a connection may hold), without a
 * close frame: what it has queued goes. */
static void cut_slow(omr_ws_server_t *srv, ws_conn_t *c, const char *why)
{
	omr_warn("ws", "closing slow connection conn=%llu ip=%s queued=%zu err=%s",
	         (unsigned long long)c->sess.conn, c->ip, c->out_bytes, why);
	ws_conn_list_del(&srv->overcap, c);
	c->closing = true;
	lws_set_timeout(c->wsi, PENDING_TIMEOUT_CLOSE_SEND, LWS_TO_KILL_ASYNC);
}

/* Sends one frame, or queues it behind the others (ws_conn_queue says when a client is cut);
 * a queue past the cap puts the connection on the list the sweep checks for a stop. */
static void send_text(ws_conn_t *c, const char *text)
{
	omr_ws_server_t *srv = lws_context_user(lws_get_context(c->wsi));
	size_t len = strlen(text);
	if (write_now(c, text, len))
		return;
	int rc = ws_conn_queue(c, text, len, srv->set.max_queue_bytes, uv_now(srv->loop));
	if (rc == 0) {
		if (c->out_bytes > srv->set.max_queue_bytes)
			ws_conn_list_add(&srv->overcap, c);
		want_write(c);
		return;
	}
	cut_slow(srv, c, rc == -ENOBUFS ? "queue full" : "no memory");
}

/* Sends an error frame; a close-worthy one also closes after the flush. The
 * address is logged (warn) only with a close, for an operator to block an
 * abusive client; a customer's mistakes stay anonymous (info). */
static void refuse(ws_conn_t *c, const omr_ws_error_t *err)
{
	char *json = omr_ws_render_error(err);
	if (err->close_code)
		omr_warn("ws", "refused conn=%llu ip=%s code=%s reason=\"%s\" closing",
		         (unsigned long long)c->sess.conn, c->ip, err->code, err->reason);
	else
		omr_info("ws", "refused conn=%llu code=%s reason=\"%s\"",
		         (unsigned long long)c->sess.conn, err->code, err->reason);
	if (json)
		send_text(c, json);
	free(json);
	if (err->close_code && !c->closing) {
		c->closing = true;
		c->close_code = err->close_code;
		c->close_reason = err->code;
		want_write(c);
		lws_set_timeout(c->wsi, PENDING_TIMEOUT_CLOSE_SEND, WS_CLOSE_GRACE_S);
	}
}

static void refuse_with(ws_conn_t *c, const char *code, const char *reason, int close_code,
                        const char *id)
{
	omr_ws_error_t err = {0};
	omr_ws_error_set(&err, code, reason, close_code);
	if (id)
		snprintf(err.id, sizeof(err.id), "%s", id);
	refuse(c, &err);
}

static size_t ip_count(omr_ws_server_t *srv, uint64_t key)
{
	return (size_t)(uintptr_t)omr_u64map_get(srv->per_ip, key);
}

static void ip_adjust(omr_ws_server_t *srv, uint64_t key, int delta)
{
	size_t n = ip_count(srv, key) + (size_t)delta;
	if (n == 0)
		omr_u64map_del(srv->per_ip, key);
	else if (omr_u64map_put(srv->per_ip, key, (void *)(uintptr_t)n))
		omr_warn("ws", "per-ip table: out of memory");
}

/* An address's share of the sockets: twice its websockets, plus some. */
static size_t sockets_per_ip(const omr_ws_server_t *srv)
{
	return 2 * srv->set.max_connections_per_ip + WS_SOCKETS_SLACK;
}

static omr_ws_role_t role_of(struct lws *wsi)
{
	char uri[64];
	if (lws_hdr_copy(wsi, uri, sizeof(uri), WSI_TOKEN_GET_URI) <= 0)
		return OMR_WS_ROLE_NONE;
	if (strcmp(uri, "/ws/customer") == 0)
		return OMR_WS_ROLE_CUSTOMER;
	if (strcmp(uri, "/ws/agent") == 0)
		return OMR_WS_ROLE_AGENT;
	return OMR_WS_ROLE_NONE;
}

static int conn_open(omr_ws_server_t *srv, struct lws *wsi, ws_conn_t **pss)
{
	ws_conn_t *c = calloc(1, sizeof(*c));
	if (!c)
		return -1;
	c->wsi = wsi;
	c->sess.role = role_of(wsi);
	c->sess.conn = atomic_fetch_add(&ws_next_conn, 1);
	c->auth_from_ms = c->refill_ms = uv_now(srv->loop);
	c->opened_wall_ms = omr_now_ms();
	c->tokens = 2.0 * srv->set.max_messages_per_second;
	if (!lws_get_peer_simple(wsi, c->ip, sizeof(c->ip)))
		snprintf(c->ip, sizeof(c->ip), "unknown");
	if (omr_u64map_put(srv->conns, c->sess.conn, c)) {
		free(c);
		return -1;
	}
	*pss = c;
	omr_debug("ws", "connection opened conn=%llu role=%s ip=%s",
	          (unsigned long long)c->sess.conn, role_name(c->sess.role), c->ip);
	/* The address first: connections refused (still closing) count for
	 * neither limit, so one address cannot use up the server's. */
	uint64_t key = ws_ip_key(c->ip, srv->ip_seed);
	if (ip_count(srv, key) >= srv->set.max_connections_per_ip) {
		refuse_with(c, "too-many-connections", "connection limit for your address reached",
		            OMR_WS_CLOSE_TRY_AGAIN, NULL);
		return 0;
	}
	if (srv->admitted >= srv->max_connections) {
		refuse_with(c, "too-many-connections", "server connection limit reached",
		            OMR_WS_CLOSE_TRY_AGAIN, NULL);
		return 0;
	}
	c->ip_key = key;
	ip_adjust(srv, key, 1);
	srv->admitted++;
	ws_conn_list_add(&srv->unauth, c);
	return 0;
}

/* Sends a connection-less request (customer.gone / agent.gone) so the
 * router stops delivering to connection g->conn. On success the request
 * owns g (finish_request frees it, or queues it again). */
static int try_send_gone(omr_ws_server_t *srv, ws_gone_t *g)
{
	omr_envelope_t *env = ws_gone_envelope(g);
	ws_pending_t *p = calloc(1, sizeof(*p));
	int rc = -ENOMEM;
	if (env && p) {
		p->gone = g;
		rc = omr_bus_client_send(srv->bus, env, p, NULL);
	}
	if (rc)
		free(p);
	omr_envelope_destroy(&env);
	return rc;
}

static void report_failed(ws_gone_t *g, int rc)
{
	omr_warn("ws", "could not report closed connection conn=%llu err=%s",
	         (unsigned long long)g->conn, omr_strerror(rc));
	free(g);
}

/* Tells the router a connection closed (it stops delivering there; an
 * agent goes offline; a customer may have left). Never dropped for a full
 * bus or a router that did not answer in time: the report waits, ahead of
 * held requests (release_stalled), and goes again. While draining, the
 * close is ours, not the client's: the report says so. */
static void send_gone_report(omr_ws_server_t *srv, ws_gone_t *g)
{
	g->shutdown = srv->draining;
	int rc = srv->gone.head ? -EAGAIN : try_send_gone(srv, g);
	if (rc == -EAGAIN) {
		ws_gone_push(&srv->gone, g);
		omr_debug("ws", "bus full: closed connection report waits conn=%llu",
		          (unsigned long long)g->conn);
	} else if (rc) {
		report_failed(g, rc);
	}
}

static void send_gone(omr_ws_server_t *srv, bool agent, uint64_t conn, const char *tenant,
                      const char *id)
{
	ws_gone_t *g = ws_gone_new(agent, conn, tenant, id);
	if (!g) {
		omr_warn("ws", "could not report closed connection conn=%llu err=%s",
		         (unsigned long long)conn, omr_strerror(-ENOMEM));
		return;
	}
	send_gone_report(srv, g);
}

/* Reports one connection keeps at most: a client naming more customers or
 * agents while Redis is away has the oldest sent at once. */
#define WS_KEPT_MAX 8

/* The auth request rq of open connection c was not answered in time: keep
 * its report (ws_conn_t.unanswered, one per customer or agent named). */
static void keep_unanswered(omr_ws_server_t *srv, ws_conn_t *c, const omr_ws_request_t *rq)
{
	bool agent = rq->kind == OMR_WS_LOGIN;
	ws_gone_t *g = ws_gone_new(agent, c->sess.conn, rq->tenant, agent ? rq->agent : rq->conv);
	if (!g) {
		omr_warn("ws",
		         "could not keep an unanswered hello/resume/login report conn=%llu err=%s",
		         (unsigned long long)c->sess.conn, omr_strerror(-ENOMEM));
		return;
	}
	ws_gone_t *oldest = ws_gone_keep(&c->unanswered, g, WS_KEPT_MAX);
	if (oldest && srv->bus && !srv->shut)
		send_gone_report(srv, oldest);
	else
		free(oldest);
}

/* Sends c's kept reports but the one of `except` (NULL: all), which is
 * dropped: that customer or agent is the connection's now, and its report
 * goes when it closes. Called when c is welcomed (it can name no one else
 * from then on, so no report sent then can undo a later welcome) and when it
 * closes. */
static void send_unanswered(omr_ws_server_t *srv, ws_conn_t *c, const ws_gone_t *except)
{
	for (ws_gone_t *g; (g = ws_gone_take(&c->unanswered));) {
		if ((except && ws_gone_same(g, except)) || !srv->bus || srv->shut)
			free(g);
		else
			send_gone_report(srv, g);
	}
}

/* Sends the waiting closed-connection reports while the bus has room. */
static void send_waiting_gone(omr_ws_server_t *srv)
{
	while (srv->gone.head && srv->bus && !omr_bus_client_is_full(srv->bus)) {
		ws_gone_t *g = ws_gone_shift(&srv->gone);
		int rc = try_send_gone(srv, g);
		if (rc == -EAGAIN) {
			ws_gone_unshift(&srv->gone, g);
			return;
		}
		if (rc)
			report_failed(g, rc);
	}
}

static void conn_closed(omr_ws_server_t *srv, ws_conn_t *c)
{
	omr_debug("ws", "connection closed conn=%llu role=%s ip=%s authed=%d",
	          (unsigned long long)c->sess.conn, role_name(c->sess.role), c->ip, c->sess.authed);
	if (c->n_acks && srv->bus && !srv->shut)
		ws_acks_flush(&srv->acks, c); /* what it acked is not sent again */
	send_unanswered(srv, c, NULL);
	if (c->sess.authed && srv->bus && !srv->shut) {
		bool agent = c->sess.role == OMR_WS_ROLE_AGENT;
		send_gone(srv, agent, c->sess.conn, c->sess.tenant,
		          agent ? c->sess.agent : c->sess.conv);
	}
	ws_conn_list_del(&srv->unauth, c);
	ws_conn_list_del(&srv->stalled, c);
	ws_conn_list_del(&srv->overcap, c);
	ws_acks_drop(&srv->acks, c);
	if (c->has_held) {
		omr_ws_request_cleanup(&c->held);
		c->has_held = false;
	}
	omr_u64map_del(srv->conns, c->sess.conn);
	if (c->ip_key) {
		ip_adjust(srv, c->ip_key, -1);
		srv->admitted--;
	}
	ws_conn_release(c);
	free(c);
}

/* ---- requests --------------------------------------------------------------- */

/* A hello/resume/login of c (not authenticated) refused as unavailable: the
 * client may send it again, with a whole websocket.auth_timeout_ms for it
 * (its answer may have taken bus.ack_timeout_ms x max_attempts). */
static void auth_may_resend(omr_ws_server_t *srv, ws_conn_t *c)
{
	c->sess.auth_pending = false;
	c->auth_from_ms = uv_now(srv->loop);
	ws_conn_list_del(&srv->unauth, c);
	ws_conn_list_add(&srv->unauth, c);
}

omr_bus_client_t *ws_server_bus(const omr_ws_server_t *srv)
{
	return srv->bus;
}

void ws_server_submit(omr_ws_server_t *srv, ws_conn_t *c, omr_ws_request_t *rq)
{
	const char *why = NULL;
	ws_pending_t *p = calloc(1, sizeof(*p));
	if (!srv->bus || omr_bus_client_is_full(srv->bus) || !p) {
		free(p);
		refuse_with(c, "unavailable", "too many requests in flight; resend later", 0,
		            rq->id);
		if (omr_ws_kind_is_auth(rq->kind) && !c->sess.authed)
			auth_may_resend(srv, c);
		return;
	}
	p->conn = c->sess.conn;
	p->rq = *rq;
	p->rq.env = NULL;
	int rc = 0;
	if (rq->kind == OMR_WS_LOGIN) {
		char opened[24];
		snprintf(opened, sizeof(opened), "%llu", (unsigned long long)c->opened_wall_ms);
		rc = omr_envelope_add_attr(rq->env, "opened_ms", opened) ? -ENOMEM : 0;
	}
	if (rc == 0)
		rc = omr_bus_client_send(srv->bus, rq->env, p, &why);
	if (rc) {
		free(p);
		omr_warn("ws", "request not sent conn=%llu type=%s err=%s why=%s",
		         (unsigned long long)c->sess.conn, omr_ws_kind_name(rq->kind),
		         omr_strerror(rc), why ? why : "-");
		refuse_with(c, rc == -EINVAL || rc == -EMSGSIZE ? "bad-request" : "unavailable",
		            rc == -EINVAL || rc == -EMSGSIZE ? "request breaks a bus limit"
		                                             : "could not reach the router",
		            0, rq->id);
		if (omr_ws_kind_is_auth(rq->kind) && !c->sess.authed)
			auth_may_resend(srv, c);
		return;
	}
	if (rq->kind == OMR_WS_HELLO || rq->kind == OMR_WS_RESUME || rq->kind == OMR_WS_LOGIN)
		c->sess.auth_pending = true;
	omr_debug("ws", "request conn=%llu type=%s id=%s bus_id=%llu",
	          (unsigned long long)c->sess.conn, omr_ws_kind_name(rq->kind), rq->id,
	          (unsigned long long)rq->env->id);
}

/* Backpressure: the bus is full (the router is behind), so the request just
 * read waits on its connection, and reading from that connection pauses
 * until release_stalled submits it: a client that keeps sending is slowed
 * down by TCP instead of refused, and nothing it sent is lost. Takes rq. */
void ws_server_hold(omr_ws_server_t *srv, ws_conn_t *c, omr_ws_request_t *rq)
{
	c->held = *rq;
	memset(rq, 0, sizeof(*rq));
	c->has_held = true;
	if (omr_ws_kind_is_auth(c->held.kind))
		c->sess.auth_pending = true; /* no auth timeout while it waits */
	lws_rx_flow_control(c->wsi, 0);
	ws_conn_list_add(&srv->stalled, c);
	omr_debug("ws", "bus full: request held, reading paused conn=%llu type=%s",
	          (unsigned long long)c->sess.conn, omr_ws_kind_name(c->held.kind));
}

/* Submits held requests, oldest first, while the bus has room, and resumes
 * reading from their connections. */
static void release_stalled(omr_ws_server_t *srv)
{
	send_waiting_gone(srv);
	while (!srv->gone.head && srv->stalled.head && srv->bus &&
	       !omr_bus_client_is_full(srv->bus)) {
		ws_conn_t *c = srv->stalled.head;
		ws_conn_list_del(&srv->stalled, c);
		omr_ws_request_t rq = c->held;
		memset(&c->held, 0, sizeof(c->held));
		c->has_held = false;
		if (!c->closing) {
			ws_server_submit(srv, c, &rq);
			lws_rx_flow_control(c->wsi, 1);
		}
		omr_ws_request_cleanup(&rq);
	}
}

static void handle_message(omr_ws_server_t *srv, ws_conn_t *c)
{
	omr_ws_request_t rq;
	omr_ws_error_t err;
	int rc = omr_ws_parse(&c->sess, &srv->limits, c->rx, c->rx_len, &rq, &err);
	/* Not the body: logins, hellos and resumes carry credentials. */
	omr_debug("ws", "frame conn=%llu len=%zu type=%s%s%s", (unsigned long long)c->sess.conn,
	          c->rx_len, rc == 0 ? omr_ws_kind_name(rq.kind) : "refused",
	          rc == 0 ? "" : " code=",
	          rc == 0    ? ""
	          : err.code ? err.code
	                     : "?");
	/* The frame's id, for a refusal (PROTOCOL.md: echoed when it had one);
	 * the parser fills err.id even for a frame it refuses. */
	char id[sizeof(err.id)];
	snprintf(id, sizeof(id), "%s", rc == 0 ? rq.id : err.id);
	/* An agent's ack of an item it was sent is paid for by that item; every
	 * other frame (and acks beyond what was sent) takes a rate token. */
	if (rc == 0 && rq.kind == OMR_WS_ACK && c->ack_credit > 0) {
		c->ack_credit--;
	} else if (!ws_conn_rate_take(c, uv_now(srv->loop), srv->set.max_messages_per_second)) {
		if (rc == 0)
			omr_ws_request_cleanup(&rq);
		refuse_with(c, "flood", "over the message rate", OMR_WS_CLOSE_POLICY,
		            id[0] ? id : NULL);
		return;
	}
	if (rc == 0 && rq.kind == OMR_WS_PING) {
		/* The connection is alive, whatever the router or Redis: a
		 * client's liveness check (a desktop that sends nothing for a
		 * while learns a silently dead connection from it). */
		char *json = omr_ws_render_pong(rq.id);
		omr_ws_request_cleanup(&rq);
		if (json)
			send_text(c, json);
		free(json);
		return;
	}
	if (srv->draining) {
		if (rc == 0)
			omr_ws_request_cleanup(&rq);
		refuse_with(c, "unavailable", "server is shutting down", 0, id[0] ? id : NULL);
		return;
	}
	if (rc) {
		refuse(c, &err);
		return;
	}
	if (rq.kind == OMR_WS_ACK) {
		ws_acks_add(&srv->acks, c, &rq);
		return;
	}
	if (rq.kind == OMR_WS_HELLO) /* a resend after `unavailable` names the same conversation */
		snprintf(c->sess.hello_key, sizeof(c->sess.hello_key), "%s", rq.key);
	if (srv->bus && omr_bus_client_is_full(srv->bus) && !c->has_held) {
		ws_server_hold(srv, c, &rq);
		return;
	}
	ws_server_submit(srv, c, &rq);
	omr_ws_request_cleanup(&rq);
}

static int on_receive(omr_ws_server_t *srv, ws_conn_t *c, const void *in, size_t len)
{
	if (c->closing)
		return 0;
	if (lws_frame_is_binary(c->wsi)) {
		refuse_with(c, "bad-json", "binary messages are not supported",
		            OMR_WS_CLOSE_UNSUPPORTED, NULL);
		return 0;
	}
	size_t max = srv->set.max_frame_bytes;
	size_t rest = lws_remaining_packet_payload(c->wsi);
	int rc = ws_conn_rx_append(c, in, len, max);
	if (rc == 0 && c->rx_len + rest > max)
		rc = -EMSGSIZE; /* refuse early: do not wait for the rest */
	if (rc) {
		ws_conn_rx_reset(c);
		refuse_with(c, rc == -EMSGSIZE ? "too-big" : "unavailable",
		            rc == -EMSGSIZE ? "frame over the limit" : "out of memory",
		            OMR_WS_CLOSE_TOO_BIG, NULL);
		return 0;
	}
	if (rest || !lws_is_final_fragment(c->wsi))
		return 0;
	handle_message(srv, c);
	ws_conn_rx_reset(c);
	return 0;
}

static int on_writeable(ws_conn_t *c)
{
	omr_ws_server_t *srv = lws_context_user(lws_get_context(c->wsi));
	ws_out_t *m = ws_conn_dequeue(c, uv_now(srv->loop));
	if (m) {
		if (c->out_bytes <= srv->set.max_queue_bytes)
			ws_conn_list_del(&srv->overcap, c);
		/* One lws_write per WRITEABLE: lws buffers a partial write itself.
		 * The close frame too needs a WRITEABLE of its own. */
		int n = lws_write(c->wsi, m->buf + LWS_PRE, m->len, LWS_WRITE_TEXT);
		free(m);
		if (n < 0)
			return -1;
		if (c->out_head || c->closing)
			want_write(c);
		return 0;
	}
	if (c->closing && c->close_code) {
		/* lws 4.1 treats -1 from WRITEABLE (and any timeout) as a dead
		 * socket and sends no close frame; -1 from LWS_CALLBACK_TIMER closes
		 * politely with the lws_close_reason set here. */
		lws_close_reason(c->wsi, (enum lws_close_status)c->close_code,
		                 (unsigned char *)c->close_reason, strlen(c->close_reason));
		c->close_code = 0;
		c->close_now = true;
		lws_set_timer_usecs(c->wsi, 1);
	}
	return 0;
}

static void finish_request(omr_ws_server_t *srv, void *ctx, int status, const omr_envelope_t *ack)
{
	ws_pending_t *p = ctx;
	ws_conn_t *c = p->conn ? omr_u64map_get(srv->conns, p->conn) : NULL;
	bool live = srv->bus && !srv->shut;
	if (p->gone) {
		/* A closed-connection report. The router did not answer in time
		 * (Redis away): it goes again, or the router would keep vouching
		 * for a desktop that is gone. */
		if ((status == -ETIMEDOUT || status == -ECANCELED) && live) {
			omr_info("ws",
			         "closed connection report not answered, sending it again "
			         "conn=%llu",
			         (unsigned long long)p->gone->conn);
			ws_gone_push(&srv->gone, p->gone);
		} else if (status == OMR_ERR_REDIS && live) {
			/* Redis refuses writes (maxmemory...): refused at once, so
			 * sent again a little later (on_sweep), until it is taken. */
			omr_debug("ws",
			          "closed connection report refused, sending it again conn=%llu",
			          (unsigned long long)p->gone->conn);
			ws_gone_push(&srv->gone_later, p->gone);
		} else {
			if (status)
				omr_info("ws", "router refused a connection report err=%s",
				         omr_strerror(status));
			free(p->gone);
		}
		free(p);
		return;
	}
	/* A hello/resume/login the router accepted, or may have (no answer in
	 * time: it may still run), for a client that left: the router may now
	 * watch this connection, so tell it that connection's session is gone
	 * (Redis ignores a session not current). For a client still here (told
	 * to resend) that waits for its close (keep_unanswered). */
	bool maybe_watched = omr_ws_kind_is_auth(p->rq.kind) && p->conn &&
	                     (status == -ETIMEDOUT || (status == 0 && (!c || c->closing)));
	if (maybe_watched && c && !c->closing) {
		keep_unanswered(srv, c, &p->rq);
	} else if (maybe_watched && live) {
		bool agent = p->rq.kind == OMR_WS_LOGIN;
		send_gone(srv, agent, p->conn, p->rq.tenant, agent ? p->rq.agent : p->rq.conv);
	}
	if (!c || c->closing) {
		free(p);
		return;
	}
	char *json = NULL;
	omr_ws_error_t err;
	bool was_authed = c->sess.authed;
	if (omr_ws_reply(&c->sess, &p->rq, status, ack, &json, &err))
		omr_warn("ws", "out of memory rendering a reply conn=%llu",
		         (unsigned long long)c->sess.conn);
	if (json)
		send_text(c, json);
	free(json);
	if (err.code)
		refuse(c, &err);
	if (err.code && !c->sess.authed && omr_ws_kind_is_auth(p->rq.kind) &&
	    strcmp(err.code, "unavailable") == 0)
		auth_may_resend(srv, c);
	if (!was_authed && c->sess.authed) {
		ws_gone_t self = {.agent = c->sess.role == OMR_WS_ROLE_AGENT};
		snprintf(self.tenant, sizeof(self.tenant), "%s", c->sess.tenant);
		snprintf(self.id, sizeof(self.id), "%s", self.agent ? c->sess.agent : c->sess.conv);
		send_unanswered(srv, c, &self);
		ws_conn_list_del(&srv->unauth, c);
		omr_info("ws", "%s authenticated conn=%llu tenant=%s %s=%s",
		         role_name(c->sess.role), (unsigned long long)c->sess.conn, c->sess.tenant,
		         c->sess.role == OMR_WS_ROLE_AGENT ? "agent" : "conv",
		         c->sess.role == OMR_WS_ROLE_AGENT ? c->sess.agent : c->sess.conv);
	}
	free(p);
}

void omr_ws_server_on_done(omr_ws_server_t *srv, void *ctx, int status, const omr_envelope_t *ack)
{
	finish_request(srv, ctx, status, ack);
	release_stalled(srv); /* one request fewer in flight: room for a held one */
}

void omr_ws_server_on_deliver(omr_ws_server_t *srv, omr_envelope_t **envp)
{
	omr_envelope_t *env = *envp;
	ws_conn_t *c = omr_u64map_get(srv->conns, env->conn);
	if (!c || c->closing || !c->sess.authed) {
		omr_debug("ws", "delivery for a gone connection conn=%llu dropped",
		          (unsigned long long)env->conn);
		return;
	}
	if (c->sess.role == OMR_WS_ROLE_CUSTOMER && env->conv && strcmp(env->conv, c->sess.conv)) {
		/* (the router's watch of an earlier hello of this connection that
		 * it answered too late) a customer reads its own conversation only */
		omr_info("ws", "delivery of another conversation dropped conn=%llu conv=%s",
		         (unsigned long long)env->conn, env->conv);
		return;
	}
	if (c->sess.role == OMR_WS_ROLE_AGENT && env->agent && env->event &&
	    strcmp(env->event, "team") != 0 && strcmp(env->agent, c->sess.agent) != 0) {
		/* (the router's watch of an earlier login of this connection, for
		 * another agent, that it answered too late) a desktop gets its
		 * agent's inbox only; a team snapshot names the agent it is about */
		omr_info("ws", "delivery for another agent dropped conn=%llu agent=%s",
		         (unsigned long long)env->conn, env->agent);
		return;
	}
	char *json = NULL;
	omr_ws_error_t err;
	int rc = omr_ws_render_deliver(&c->sess, env, &json, &err);
	if (rc) {
		omr_warn("ws", "delivery not rendered conn=%llu err=%s",
		         (unsigned long long)env->conn, omr_strerror(rc));
		return;
	}
	if (json) {
		send_text(c, json);
		/* (only items the desktop acks pay for an ack: a history of
		 * thousands of entries must not buy as many free frames) */
		if (c->sess.role == OMR_WS_ROLE_AGENT && c->ack_credit < UINT32_MAX &&
		    omr_ws_deliver_is_acked(env))
			c->ack_credit++;
	}
	free(json);
	if (err.code)
		refuse(c, &err);
}

/* ---- lws callbacks ---------------------------------------------------------- */

static int ws_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                       size_t len)
{
	struct lws_context *ctx = lws_get_context(wsi);
	omr_ws_server_t *srv = ctx ? lws_context_user(ctx) : NULL;
	ws_conn_t **pss = user;
	switch (reason) {
	case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
		/* Unknown paths and upgrades during shutdown are refused here. */
		return !srv || srv->draining || role_of(wsi) == OMR_WS_ROLE_NONE;
	case LWS_CALLBACK_ESTABLISHED:
		return conn_open(srv, wsi, pss);
	case LWS_CALLBACK_RECEIVE:
		return *pss ? on_receive(srv, *pss, in, len) : -1;
	case LWS_CALLBACK_SERVER_WRITEABLE:
		return *pss ? on_writeable(*pss) : -1;
	case LWS_CALLBACK_TIMER:
		return *pss && (*pss)->close_now ? -1 : 0;
	case LWS_CALLBACK_CLOSED:
		if (*pss)
			conn_closed(srv, *pss);
		*pss = NULL;
		return 0;
	case LWS_CALLBACK_FILTER_NETWORK_CONNECTION:
		return srv ? ws_sockets_filter(&srv->sockets, user, sockets_per_ip(srv),
		                               uv_now(srv->loop))
		           : 0;
	case LWS_CALLBACK_SERVER_NEW_CLIENT_INSTANTIATED:
		if (srv)
			ws_sockets_accepted(&srv->sockets, wsi, sockets_per_ip(srv));
		return 0;
	case LWS_CALLBACK_WSI_DESTROY:
		if (srv)
			ws_sockets_close(&srv->sockets, wsi);
		return lws_callback_http_dummy(wsi, reason, user, in, len);
	default:
		return lws_callback_http_dummy(wsi, reason, user, in, len);
	}
}

static void on_sweep(uv_timer_t *t)
{
	omr_ws_server_t *srv = t->data;
	uint64_t now = uv_now(srv->loop);
	/* Room on the bus also comes back when something without a reply here
	 * is answered (the adapter.hello): held requests must not wait for the
	 * next reply that comes here, which may never come. */
	if (srv->gone_later.head && now - srv->gone_later_ms >= WS_GONE_RETRY_MS) {
		srv->gone_later_ms = now;
		for (ws_gone_t *g; (g = ws_gone_shift(&srv->gone_later));)
			ws_gone_push(&srv->gone, g);
	}
	if (srv->stalled.head || srv->gone.head)
		release_stalled(srv);
	/* A queue past the cap that nothing left for WS_QUEUE_STALL_MS: the client stopped
	 * reading (cut here too when nothing more is sent to it, so that it holds no memory). */
	for (ws_conn_t *c = srv->overcap.head, *next; c; c = next) {
		next = c->links[WS_LIST_OVERCAP].next;
		if (c->out_bytes <= srv->set.max_queue_bytes)
			ws_conn_list_del(&srv->overcap, c); /* (a reload raised the cap) */
		else if (!c->closing && ws_conn_stalled(c, srv->set.max_queue_bytes, now))
			cut_slow(srv, c, "stopped reading");
	}
	ws_conn_t *c = srv->unauth.head;
	while (c && now - c->auth_from_ms >= srv->set.auth_timeout_ms) {
		ws_conn_t *next = c->links[WS_LIST_UNAUTH].next;
		if (!c->sess.auth_pending && !c->closing) {
			ws_conn_list_del(&srv->unauth, c);
			refuse_with(c, "auth-timeout", "no hello or login in time",
			            OMR_WS_CLOSE_POLICY, NULL);
		}
		c = next;
	}
}

#define LWS_LOG_PER_S 20 /* lws lines logged per second at most (it can repeat one in a loop) */

/* lws logs from the adapter's thread only. */
static void lws_to_omr_log(int level, const char *line)
{
	static struct timespec window;
	static unsigned lines, dropped;
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	if (now.tv_sec != window.tv_sec) {
		if (dropped)
			omr_warn("lws", "%u lws log lines dropped (over %d per second)", dropped,
			         LWS_LOG_PER_S);
		window = now;
		lines = dropped = 0;
	}
	if (++lines > LWS_LOG_PER_S) {
		dropped++;
		return;
	}
	size_t n = strlen(line);
	while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		n--;
	omr_log(level == LLL_ERR    ? OMR_LOG_WARN
	        : level == LLL_WARN ? OMR_LOG_INFO
	                            : OMR_LOG_DEBUG,
	        "lws", "%.*s", (int)n, line);
}

/* ---- setup and teardown ------------------------------------------------------ */

static void fill_tables(omr_ws_server_t *srv)
{
	srv->protocols[0] = (struct lws_protocols){
	        .name = "omr.v1",
	        .callback = ws_callback,
	        .per_session_data_size = sizeof(ws_conn_t *),
	        .rx_buffer_size = WS_RX_CHUNK,
	};
	srv->protocols[1] = (struct lws_protocols){.name = WS_HTTP_PROTOCOL,
	                                           .callback = ws_http_callback,
	                                           .per_session_data_size = sizeof(ws_http_pss_t)};
	ws_http_fill(&srv->http, srv->static_dir);
}

static int create_context(omr_ws_server_t *srv, const omr_ws_server_opts_t *opts)
{
	struct lws_context_creation_info info;
	void *loops[1] = {srv->loop};
	memset(&info, 0, sizeof(info));
	/* No LWS_SERVER_OPTION_HTTP_HEADERS_SECURITY_BEST_PRACTICES_ENFORCE: it
	 * forbids framing on every page; add_security_headers() replaces it. */
	info.options = LWS_SERVER_OPTION_LIBUV | LWS_SERVER_OPTION_UV_NO_SIGSEGV_SIGFPE_SPIN;
	/* An IPv4 address cannot be bound on an IPv6 socket by lws. */
	if (!strchr(srv->listen, ':'))
		info.options |= LWS_SERVER_OPTION_DISABLE_IPV6;
	info.foreign_loops = loops;
	info.port = opts->port;
	info.iface = srv->listen;
	info.protocols = srv->protocols;
	info.mounts = srv->http.mounts;
	info.vhost_name = "omnirouter";
	info.user = srv;
	if (opts->ping_interval_s) {
		srv->retry.secs_since_valid_ping = (uint16_t)opts->ping_interval_s;
		srv->retry.secs_since_valid_hangup = (uint16_t)(opts->ping_interval_s * 2 + 10);
	} else {
		srv->retry.secs_since_valid_ping = UINT16_MAX - 1; /* lws has no "never" */
		srv->retry.secs_since_valid_hangup = UINT16_MAX;
	}
	info.retry_and_idle_policy = &srv->retry;
	if (opts->tls_cert && opts->tls_cert[0]) {
		/* lws only says it cannot create the vhost: name the file. */
		const char *files[] = {opts->tls_cert, opts->tls_key};
		for (int i = 0; i < 2; i++) {
			if (files[i] && access(files[i], R_OK) != 0) {
				int e = errno;
				omr_error("ws", "cannot read %s file=%s error=\"%s\"",
				          i ? "websocket.tls_key" : "websocket.tls_cert", files[i],
				          strerror(e));
				return -e;
			}
		}
		info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
		info.ssl_cert_filepath = opts->tls_cert;
		info.ssl_private_key_filepath = opts->tls_key;
	}
	/* lws 4.1 returns a context even when its default vhost cannot bind:
	 * create the vhost explicitly to learn whether we listen. */
	info.options |= LWS_SERVER_OPTION_EXPLICIT_VHOSTS;
	srv->lws = lws_create_context(&info);
	if (!srv->lws || !lws_create_vhost(srv->lws, &info))
		return -EADDRNOTAVAIL;
	return 0;
}

int omr_ws_server_new(uv_loop_t *loop, const omr_ws_server_opts_t *opts, omr_ws_server_t **out)
{
	omr_ws_server_t *srv = calloc(1, sizeof(*srv));
	*out = NULL;
	if (!srv)
		return -ENOMEM;
	srv->loop = loop;
	ws_gone_queue_init(&srv->gone);
	ws_gone_queue_init(&srv->gone_later);
	srv->stalled.which = WS_LIST_STALLED;
	srv->overcap.which = WS_LIST_OVERCAP;
	srv->max_connections = opts->max_connections;
	srv->listen = strdup(opts->listen);
	srv->default_tenant = strdup(opts->default_tenant);
	char *real = realpath(opts->static_dir, NULL);
	srv->static_dir = real ? real : strdup(opts->static_dir);
	srv->conns = omr_u64map_new();
	srv->per_ip = omr_u64map_new();
	char seed[17];
	int rc = -ENOMEM;
	if (!srv->listen || !srv->default_tenant || !srv->static_dir || !srv->conns ||
	    !srv->per_ip || omr_random_hex(seed, sizeof(seed), 8))
		goto fail;
	srv->ip_seed = strtoull(seed, NULL, 16);
	if (ws_sockets_init(&srv->sockets, srv->ip_seed))
		goto fail;
	omr_ws_server_apply(srv, &opts->settings);
	if (!real)
		omr_warn("ws", "static directory not found dir=%s", opts->static_dir);
	lws_set_log_level(LLL_ERR | LLL_WARN | (omr_log_enabled(OMR_LOG_DEBUG) ? LLL_NOTICE : 0),
	                  lws_to_omr_log);
	fill_tables(srv);
	uv_timer_init(loop, &srv->sweep);
	srv->sweep.data = srv;
	srv->sweep_open = true;
	uv_timer_start(&srv->sweep, on_sweep, WS_SWEEP_MS, WS_SWEEP_MS);
	ws_acks_init(&srv->acks, loop, srv);
	if ((rc = create_context(srv, opts))) {
		omr_error("ws", "cannot listen on %s:%d (address in use or invalid?)", srv->listen,
		          opts->port);
		goto fail;
	}
	omr_info("ws", "listening on %s:%d static=%s identity_verification=%s", srv->listen,
	         opts->port, srv->static_dir, srv->set.identity_secret[0] ? "on" : "off");
	*out = srv;
	return 0;
fail:
	omr_ws_server_shutdown(srv);
	*out = srv; /* the caller runs the loop and destroys it */
	return rc;
}

void omr_ws_server_set_bus(omr_ws_server_t *srv, omr_bus_client_t *bus)
{
	srv->bus = bus;
}

void omr_ws_server_drain(omr_ws_server_t *srv)
{
	srv->draining = true;
	omr_info("ws", "draining: no new connections or requests connections=%zu",
	         omr_u64map_count(srv->conns));
}

static void close_one(uint64_t key, void *value, void *arg)
{
	ws_conn_t *c = value;
	if (c->closing && c->close_code)
		return;
	c->closing = true;
	c->close_code = OMR_WS_CLOSE_GOING_AWAY;
	c->close_reason = "going-away";
	want_write(c);
	lws_set_timeout(c->wsi, PENDING_TIMEOUT_CLOSE_SEND, WS_CLOSE_GRACE_S);
}

void omr_ws_server_close_all(omr_ws_server_t *srv)
{
	omr_u64map_each(srv->conns, close_one, srv);
}

size_t omr_ws_server_connections(const omr_ws_server_t *srv)
{
	return srv ? omr_u64map_count(srv->conns) : 0;
}

static void on_sweep_closed(uv_handle_t *h)
{
	(void)h;
}

void omr_ws_server_shutdown(omr_ws_server_t *srv)
{
	if (!srv || srv->shut)
		return;
	srv->shut = true;
	srv->draining = true;
	srv->bus = NULL;
	if (srv->sweep_open)
		uv_close((uv_handle_t *)&srv->sweep, on_sweep_closed);
	srv->sweep_open = false;
	ws_acks_close(&srv->acks, on_sweep_closed);
	/* First of two: starts closing lws's handles inside the loop. */
	if (srv->lws)
		lws_context_destroy(srv->lws);
}

static void free_conn(uint64_t key, void *value, void *arg)
{
	ws_conn_release(value);
	free(value);
}

void omr_ws_server_destroy(omr_ws_server_t **srvp)
{
	if (!srvp || !*srvp)
		return;
	omr_ws_server_t *srv = *srvp;
	*srvp = NULL;
	/* Second call after uv_run returned: frees what the first left. */
	if (srv->lws)
		lws_context_destroy(srv->lws);
	ws_gone_clear(&srv->gone);
	ws_gone_clear(&srv->gone_later);
	omr_u64map_each(srv->conns, free_conn, NULL);
	omr_u64map_destroy(&srv->conns);
	omr_u64map_destroy(&srv->per_ip);
	ws_sockets_free(&srv->sockets);
	free(srv->listen);
	free(srv->default_tenant);
	free(srv->static_dir);
	free(srv);
}
