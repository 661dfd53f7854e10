/* ws_gone.c - closed-connection reports and their queue (ws_gone.h). */
#include "websocket/ws_gone.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

ws_gone_t *ws_gone_new(bool agent, uint64_t conn, const char *tenant, const char *id)
{
	ws_gone_t *g = calloc(1, sizeof(*g));
	if (!g)
		return NULL;
	g->agent = agent;
	g->conn = conn;
	snprintf(g->tenant, sizeof(g->tenant), "%s", tenant ? tenant : "");
	snprintf(g->id, sizeof(g->id), "%s", id ? id : "");
	return g;
}

bool ws_gone_same(const ws_gone_t *a, const ws_gone_t *b)
{
	return a->agent == b->agent && strcmp(a->tenant, b->tenant) == 0 &&
	       strcmp(a->id, b->id) == 0;
}

ws_gone_t *ws_gone_keep(ws_gone_t **list, ws_gone_t *g, unsigned max)
{
	unsigned n = 0;
	ws_gone_t **last = list; /* the link to the oldest */
	for (ws_gone_t *k = *list; k; k = k->next, n++) {
		if (ws_gone_same(k, g)) {
			free(g);
			return NULL;
		}
		if (k->next)
			last = &k->next;
	}
	ws_gone_t *oldest = NULL;
	if (n >= max && *list) {
		oldest = *last;
		*last = NULL;
	}
	g->next = *list;
	*list = g;
	return oldest;
}

ws_gone_t *ws_gone_take(ws_gone_t **list)
{
	ws_gone_t *g = *list;
	if (g) {
		*list = g->next;
		g->next = NULL;
	}
	return g;
}

void ws_gone_free_all(ws_gone_t **list)
{
	for (ws_gone_t *g; (g = ws_gone_take(list));)
		free(g);
}

omr_envelope_t *ws_gone_envelope(const ws_gone_t *g)
{
	omr_envelope_t *env =
	        omr_envelope_new(g->agent ? OMR_ENV_AGENT_GONE : OMR_ENV_CUSTOMER_GONE);
	if (!env)
		return NULL;
	env->conn = g->conn;
	env->channel = OMR_CHANNEL_CHAT;
	if (omr_envelope_set(&env->tenant, g->tenant) ||
	    omr_envelope_set(g->agent ? &env->agent : &env->conv, g->id) ||
	    (g->shutdown && omr_envelope_set(&env->reason, "shutdown")))
		omr_envelope_destroy(&env);
	return env;
}

void ws_gone_queue_init(ws_gone_queue_t *q)
{
	q->head = NULL;
	q->tail = &q->head;
}

void ws_gone_push(ws_gone_queue_t *q, ws_gone_t *g)
{
	g->next = NULL;
	*q->tail = g;
	q->tail = &g->next;
}

void ws_gone_unshift(ws_gone_queue_t *q, ws_gone_t *g)
{
	g->next = q->head;
	q->head = g;
	if (!g->next)
		q->tail = &g->next;
}

ws_gone_t *ws_gone_shift(ws_gone_queue_t *q)
{
	ws_gone_t *g = q->head;
	if (g) {
		q->head = g->next;
		if (!q->head)
			q->tail = &q->head;
	}
	return g;
}

void ws_gone_clear(ws_gone_queue_t *q)
{
	ws_gone_t *g;
	while ((g = ws_gone_shift(q)))
		free(g);
}
