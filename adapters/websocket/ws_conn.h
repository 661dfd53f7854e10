/* ws_conn.h - one websocket connection's state: its session, the fragments of
 * the message being received, its token bucket and its output queue. Shared
 * by ws_server.c (lws callbacks) and ws_conn.c. Loop thread only. */
#ifndef OMR_WS_CONN_H
#define OMR_WS_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include <libwebsockets.h>

#include "websocket/ws_proto.h"

typedef struct ws_out {
	struct ws_out *next;
	size_t len;
	unsigned char buf[]; /* LWS_PRE bytes of headroom, then len bytes */
} ws_out_t;

/* The lists a connection can be on, oldest first: unauthenticated (auth
 * timeout sweep), stalled (holding a request until the bus has room),
 * acking (an agent's item acks waiting to go to the router together) and
 * over its queue's cap (the sweep cuts it once it stopped reading). */
typedef enum ws_list_which {
	WS_LIST_UNAUTH = 0,
	WS_LIST_STALLED,
	WS_LIST_ACKS,
	WS_LIST_OVERCAP,
	WS_LIST_COUNT
} ws_list_which_t;

typedef struct ws_link {
	struct ws_conn *prev, *next;
	bool in;
} ws_link_t;

typedef struct ws_conn {
	struct lws *wsi;
	omr_ws_session_t sess;
	char ip[64];
	uint64_t ip_key;       /* per-IP counter key; 0 = not counted */
	uint64_t auth_from_ms; /* (loop time) the auth timeout counts from here: the
	                        * open, or the last `unavailable` answer to a
	                        * hello/resume/login */
	/* the wall clock (ms) at the open: a login says how old its connection is, and
	 * one from a connection older than the agent's current session's is
	 * refused (a login run late, by an instance that stalled) */
	uint64_t opened_wall_ms;
	bool closing;   /* no more input; close once the queue is flushed */
	int close_code; /* the close to send once the queue is flushed */
	bool close_now; /* close frame reason set: close from the timer */
	const char *close_reason;
	/* receive: fragments of the current message */
	char *rx;
	size_t rx_len, rx_cap;
	/* rate limit */
	double tokens;
	uint64_t refill_ms;
	/* items delivered to an agent and not yet acked: that many acks are not
	 * counted against the rate (a desktop acks every item it receives) */
	uint32_t ack_credit;
	/* output queue */
	ws_out_t *out_head, *out_tail;
	size_t out_bytes;
	uint64_t out_moved_ms; /* when a frame last left the queue (or it started) */
	/* links in the server's lists (ws_list_which_t) */
	ws_link_t links[WS_LIST_COUNT];
	/* a request read while the bus was full: submitted once it has room,
	 * reading from this connection paused meanwhile (backpressure) */
	omr_ws_request_t held;
	bool has_held;
	/* an agent's item acks batched into one request: the first ack's
	 * request, and the other seqs comma-separated (attr "more") */
	omr_ws_request_t acks;
	char *acks_more;
	unsigned n_acks;
	/* the hellos/resumes/logins the router did not answer in time (the
	 * client was told to resend), one per customer or agent named: each may
	 * still run and have the router watch this connection as that one. A
	 * report now could run after the resend that succeeds and take the live
	 * connection for closed: they go when the connection is welcomed (but
	 * the one it is welcomed as) or closes. */
	struct ws_gone *unanswered;
} ws_conn_t;

typedef struct ws_conn_list {
	ws_conn_t *head, *tail;
	ws_list_which_t which; /* the link the list uses */
} ws_conn_list_t;

void ws_conn_list_add(ws_conn_list_t *l, ws_conn_t *c);
void ws_conn_list_del(ws_conn_list_t *l, ws_conn_t *c);

/* Appends rx bytes; -EMSGSIZE when the message would pass max. */
int ws_conn_rx_append(ws_conn_t *c, const void *in, size_t len, size_t max);
void ws_conn_rx_reset(ws_conn_t *c);

/* Takes one token; false when the connection is over its rate. */
bool ws_conn_rate_take(ws_conn_t *c, uint64_t now_ms, uint32_t per_second);

/* A connection whose queue is past cap bytes has stopped reading when nothing of it left for
 * WS_QUEUE_STALL_MS; one that reads may take a burst (a resume, a login's resend of several
 * long chats, escaped texts) up to ws_queue_ceiling(cap), the memory a connection may hold. */
#define WS_QUEUE_STALL_MS 10000
#define WS_QUEUE_BURST 4
#define WS_QUEUE_CEILING_MIN ((size_t)64 << 20)

/* WS_QUEUE_BURST x cap, at least WS_QUEUE_CEILING_MIN. */
size_t ws_queue_ceiling(size_t cap);

/* Whether c's queue is past cap and nothing of it left for WS_QUEUE_STALL_MS at now_ms. */
bool ws_conn_stalled(const ws_conn_t *c, size_t cap, uint64_t now_ms);

/* Queues a text frame (copied) at now_ms. -ENOBUFS when the client stopped reading
 * (ws_conn_stalled) or the queue would pass ws_queue_ceiling(cap), -ENOMEM. */
int ws_conn_queue(ws_conn_t *c, const char *text, size_t len, size_t cap, uint64_t now_ms);

/* Takes the first queued frame (the caller frees it) at now_ms; NULL when none. */
ws_out_t *ws_conn_dequeue(ws_conn_t *c, uint64_t now_ms);

/* Frees the queue and the rx buffer (not c). */
void ws_conn_release(ws_conn_t *c);

/* Per-IP key: a keyed hash of the address text (never 0). */
uint64_t ws_ip_key(const char *ip, uint64_t seed);

#endif
