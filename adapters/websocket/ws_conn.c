/* ws_conn.c - per-connection buffers and counters of the websocket server:
 * message reassembly with a size cap, the token bucket, the capped output
 * queue. Owns the connection's buffers, not the connection. Loop thread. */
#include "websocket/ws_conn.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "websocket/ws_gone.h"

void ws_conn_list_add(ws_conn_list_t *l, ws_conn_t *c)
{
	ws_link_t *k = &c->links[l->which];
	if (k->in)
		return;
	k->prev = l->tail;
	k->next = NULL;
	if (l->tail)
		l->tail->links[l->which].next = c;
	else
		l->head = c;
	l->tail = c;
	k->in = true;
}

void ws_conn_list_del(ws_conn_list_t *l, ws_conn_t *c)
{
	ws_link_t *k = &c->links[l->which];
	if (!k->in)
		return;
	if (k->prev)
		k->prev->links[l->which].next = k->next;
	else
		l->head = k->next;
	if (k->next)
		k->next->links[l->which].prev = k->prev;
	else
		l->tail = k->prev;
	k->prev = k->next = NULL;
	k->in = false;
}

int ws_conn_rx_append(ws_conn_t *c, const void *in, size_t len, size_t max)
{
	if (len > max || c->rx_len > max - len)
		return -EMSGSIZE;
	if (c->rx_len + len + 1 > c->rx_cap) {
		size_t cap = c->rx_cap ? c->rx_cap : 1024;
		while (cap < c->rx_len + len + 1)
			cap *= 2;
		char *p = realloc(c->rx, cap);
		if (!p)
			return -ENOMEM;
		c->rx = p;
		c->rx_cap = cap;
	}
	memcpy(c->rx + c->rx_len, in, len);
	c->rx_len += len;
	c->rx[c->rx_len] = '\0';
	return 0;
}

void ws_conn_rx_reset(ws_conn_t *c)
{
	c->rx_len = 0;
	/* Give back what one big message grew, keep a small buffer. */
	if (c->rx_cap > 16384) {
		free(c->rx);
		c->rx = NULL;
		c->rx_cap = 0;
	}
}

bool ws_conn_rate_take(ws_conn_t *c, uint64_t now_ms, uint32_t per_second)
{
	double burst = 2.0 * per_second;
	if (now_ms > c->refill_ms) {
		c->tokens += (double)(now_ms - c->refill_ms) * per_second / 1000.0;
		c->refill_ms = now_ms;
	}
	if (c->tokens > burst)
		c->tokens = burst;
	if (c->tokens < 1.0)
		return false;
	c->tokens -= 1.0;
	return true;
}

size_t ws_queue_ceiling(size_t cap)
{
	return cap * WS_QUEUE_BURST > WS_QUEUE_CEILING_MIN ? cap * WS_QUEUE_BURST
	                                                   : WS_QUEUE_CEILING_MIN;
}

bool ws_conn_stalled(const ws_conn_t *c, size_t cap, uint64_t now_ms)
{
	return c->out_head && c->out_bytes > cap && now_ms - c->out_moved_ms >= WS_QUEUE_STALL_MS;
}

int ws_conn_queue(ws_conn_t *c, const char *text, size_t len, size_t cap, uint64_t now_ms)
{
	if (!c->out_head)
		c->out_moved_ms = now_ms; /* (the queue starts) */
	if ((c->out_bytes + len > cap && now_ms - c->out_moved_ms >= WS_QUEUE_STALL_MS) ||
	    c->out_bytes + len > ws_queue_ceiling(cap))
		return -ENOBUFS;
	ws_out_t *m = malloc(sizeof(*m) + LWS_PRE + len);
	if (!m)
		return -ENOMEM;
	m->next = NULL;
	m->len = len;
	memcpy(m->buf + LWS_PRE, text, len);
	if (c->out_tail)
		c->out_tail->next = m;
	else
		c->out_head = m;
	c->out_tail = m;
	c->out_bytes += len;
	return 0;
}

ws_out_t *ws_conn_dequeue(ws_conn_t *c, uint64_t now_ms)
{
	ws_out_t *m = c->out_head;
	if (!m)
		return NULL;
	c->out_head = m->next;
	if (!c->out_head)
		c->out_tail = NULL;
	c->out_bytes -= m->len;
	c->out_moved_ms = now_ms;
	m->next = NULL;
	return m;
}

void ws_conn_release(ws_conn_t *c)
{
	while (c->out_head) {
		ws_out_t *m = c->out_head;
		c->out_head = m->next;
		free(m);
	}
	c->out_tail = NULL;
	c->out_bytes = 0;
	free(c->rx);
	c->rx = NULL;
	c->rx_len = c->rx_cap = 0;
	ws_gone_free_all(&c->unanswered);
}

uint64_t ws_ip_key(const char *ip, uint64_t seed)
{
	/* FNV-1a over a random seed: a client cannot pick addresses that
	 * collide on purpose. */
	uint64_t h = 0xcbf29ce484222325ull ^ seed;
	for (const unsigned char *p = (const unsigned char *)ip; *p; p++) {
		h ^= *p;
		h *= 0x100000001b3ull;
	}
	return h ? h : 1;
}
