/* ws_acks.c - an agent connection's item acks, batched (ws_acks.h). Loop
 * thread only. */
#include "websocket/ws_acks.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "omnirouter/log.h"

#define WS_ACK_BATCH 32
#define WS_ACK_MORE_MAX 1024 /* OMR_ENV_ATTR_VALUE_MAX */
#define WS_ACK_FLUSH_MS 20

void ws_acks_init(ws_acks_t *a, uv_loop_t *loop, omr_ws_server_t *srv)
{
	a->srv = srv;
	a->conns.which = WS_LIST_ACKS;
	uv_timer_init(loop, &a->timer);
	a->timer.data = a;
	a->timer_open = true;
}

void ws_acks_close(ws_acks_t *a, uv_close_cb cb)
{
	if (a->timer_open)
		uv_close((uv_handle_t *)&a->timer, cb);
	a->timer_open = false;
}

void ws_acks_drop(ws_acks_t *a, ws_conn_t *c)
{
	ws_conn_list_del(&a->conns, c);
	if (c->n_acks)
		omr_ws_request_cleanup(&c->acks);
	free(c->acks_more);
	c->acks_more = NULL;
	c->n_acks = 0;
	if (!a->conns.head && a->timer_open)
		uv_timer_stop(&a->timer);
}

bool ws_acks_flush(ws_acks_t *a, ws_conn_t *c)
{
	if (!c->n_acks)
		return true;
	omr_bus_client_t *bus = ws_server_bus(a->srv);
	if (!bus) { /* shutting down: they come back at the next login */
		ws_acks_drop(a, c);
		return true;
	}
	if (omr_bus_client_is_full(bus))
		return false;
	if (c->acks_more && omr_envelope_add_attr(c->acks.env, "more", c->acks_more))
		omr_warn("ws", "acks dropped (out of memory) conn=%llu n=%u",
		         (unsigned long long)c->sess.conn, c->n_acks);
	else
		ws_server_submit(a->srv, c, &c->acks);
	ws_acks_drop(a, c);
	return true;
}

static void on_timer(uv_timer_t *t)
{
	ws_acks_t *a = t->data;
	while (a->conns.head && ws_acks_flush(a, a->conns.head))
		;
}

void ws_acks_add(ws_acks_t *a, ws_conn_t *c, omr_ws_request_t *rq)
{
	const char *seq = rq->env->seq;
	size_t have = c->acks_more ? strlen(c->acks_more) : 0;
	if (c->n_acks && (c->n_acks >= WS_ACK_BATCH || have + 1 + strlen(seq) > WS_ACK_MORE_MAX) &&
	    !ws_acks_flush(a, c)) {
		/* the bus is full and the batch too: this ack waits with a request */
		if (!c->has_held)
			ws_server_hold(a->srv, c, rq);
		else
			omr_ws_request_cleanup(rq); /* comes back at the next login */
		return;
	}
	if (!c->n_acks) {
		c->acks = *rq;
		memset(rq, 0, sizeof(*rq));
		c->n_acks = 1;
		ws_conn_list_add(&a->conns, c);
		if (a->timer_open && !uv_is_active((uv_handle_t *)&a->timer))
			uv_timer_start(&a->timer, on_timer, WS_ACK_FLUSH_MS, WS_ACK_FLUSH_MS);
		return;
	}
	if (!c->acks_more)
		c->acks_more = calloc(1, WS_ACK_MORE_MAX + 1);
	if (c->acks_more) {
		snprintf(c->acks_more + have, WS_ACK_MORE_MAX + 1 - have, "%s%s", have ? "," : "",
		         seq);
		c->n_acks++;
	}
	omr_ws_request_cleanup(rq);
}
