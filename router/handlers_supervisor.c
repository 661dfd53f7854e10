/* handlers_supervisor.c - a supervisor's requests: the snapshot of the agents
 * it supervises (agent.team) and a read-only transcript of one of their
 * conversations (conv.monitor). Who may read what is decided in Redis
 * (router/lua/47_supervisor.lua); this file turns the answers into deliver
 * items for the desktop, then the ack that ends them. Loop thread only. */
#include "router_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "omnirouter/error.h"
#include "omnirouter/util.h"

/* The string at a[i], or NULL when a is not an array that has one there. An
 * empty string is NULL too: the envelope refuses empty fields. */
static const char *elem_str(const redisReply *a, size_t i)
{
	if (!a || a->type != REDIS_REPLY_ARRAY || i >= a->elements)
		return NULL;
	const redisReply *e = a->element[i];
	return e->type == REDIS_REPLY_STRING && e->len > 0 ? e->str : NULL;
}

static const redisReply *elem_array(const redisReply *a, size_t i)
{
	if (!a || a->type != REDIS_REPLY_ARRAY || i >= a->elements ||
	    a->element[i]->type != REDIS_REPLY_ARRAY)
		return NULL;
	return a->element[i];
}

/* A new "team" deliver for the request's connection, of kind `kind`. */
static omr_envelope_t *team_item(const omr_request_t *q, const char *kind, const char *agent)
{
	omr_envelope_t *d = omr_envelope_new(OMR_ENV_DELIVER);
	if (!d)
		return NULL;
	d->conn = q->env->conn;
	d->channel = OMR_CHANNEL_CHAT;
	if (omr_envelope_set(&d->event, "team") || omr_envelope_set(&d->agent, agent) ||
	    omr_envelope_add_attr(d, "kind", kind))
		omr_envelope_destroy(&d);
	return d;
}

/* attrs PREFIXchat, PREFIXemail, PREFIXvoice from the integers of a. */
static int add_channels(omr_envelope_t *d, const char *prefix, const redisReply *a)
{
	int rc = 0;
	for (int ch = OMR_CHANNEL_NONE + 1; rc == 0 && ch < OMR_CHANNEL_COUNT; ch++) {
		size_t i = (size_t)(ch - OMR_CHANNEL_NONE - 1);
		if (!a || i >= a->elements || a->element[i]->type != REDIS_REPLY_INTEGER)
			continue;
		char key[32], v[24];
		snprintf(key, sizeof(key), "%s%s", prefix, omr_channel_name((omr_channel_t)ch));
		snprintf(v, sizeof(v), "%lld", a->element[i]->integer);
		rc = omr_envelope_add_attr(d, key, v);
	}
	return rc;
}

/* One supervised agent: {id, name, presence, reason, load[3], cap[3], convs}. */
static void send_team_agent(omr_request_t *q, const redisReply *a)
{
	const char *id = elem_str(a, 0);
	if (!id)
		return;
	omr_envelope_t *d = team_item(q, "agent", id);
	if (d && (omr_envelope_set(&d->name, elem_str(a, 1)) ||
	          omr_envelope_set(&d->presence, elem_str(a, 2)) ||
	          omr_envelope_set(&d->reason, elem_str(a, 3)) ||
	          add_channels(d, "load_", elem_array(a, 4)) ||
	          add_channels(d, "cap_", elem_array(a, 5))))
		omr_envelope_destroy(&d);
	if (d)
		omr_router_send(q->r, &q->peer, d);
	omr_envelope_destroy(&d);
	const redisReply *convs = elem_array(a, 6);
	for (size_t i = 0; convs && i < convs->elements; i++) {
		/* {conv, customer name, language, queue, state, tenant} */
		const redisReply *c = convs->element[i];
		if (!elem_str(c, 0))
			continue;
		d = team_item(q, "conversation", id);
		if (d && (omr_envelope_set(&d->conv, elem_str(c, 0)) ||
		          omr_envelope_set(&d->name, elem_str(c, 1)) ||
		          omr_envelope_set(&d->lang, elem_str(c, 2)) ||
		          (elem_str(c, 3) && omr_envelope_add_attr(d, "queue", elem_str(c, 3))) ||
		          (elem_str(c, 4) && omr_envelope_add_attr(d, "state", elem_str(c, 4))) ||
		          omr_envelope_set(&d->tenant, elem_str(c, 5))))
			omr_envelope_destroy(&d);
		if (d)
			omr_router_send(q->r, &q->peer, d);
		omr_envelope_destroy(&d);
	}
}

static void on_team(void *ud, const redisReply *rep)
{
	omr_request_t *q = ud;
	if (!omr_request_ok(q, rep))
		return;
	for (size_t i = 0; rep->type == REDIS_REPLY_ARRAY && i < rep->elements; i++)
		send_team_agent(q, rep->element[i]);
	omr_request_reply(q, 0, NULL);
}

int omr_handle_agent_team(omr_request_t *q)
{
	omr_watch_t *w = omr_request_agent(q);
	if (!w)
		return OMR_ERR_BAD_TOKEN;
	const char *args[] = {w->id};
	return omr_request_fcall(q, on_team, "omr_supervisor_team", 1, args, NULL);
}

int omr_handle_conv_monitor(omr_request_t *q)
{
	omr_watch_t *w = omr_request_agent(q);
	if (!w)
		return OMR_ERR_BAD_TOKEN;
	const char *args[] = {w->id, q->env->conv};
	return omr_request_fcall(q, omr_request_on_transcript, "omr_supervisor_monitor", 2, args,
	                         NULL);
}
