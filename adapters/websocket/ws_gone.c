/* ws_gone.c - closed-connection reports and their queue (ws_gone.h). */
#include "websocket/ws_gone.h"

#include <stdio.h>
#include <stdlib.h>

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
