/* handlers_conv.c - the requests around a conversation's people: the
 * customer's survey and typing, the agent's typing, transfers and reading
 * the customer's earlier conversations (and the transcript reply that
 * handlers_supervisor.c shares). Loop thread only. */
#include "router_int.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "omnirouter/channel.h"
#include "omnirouter/error.h"
#include "omnirouter/log.h"
#include "omnirouter/util.h"

int omr_handle_conv_rate(omr_request_t *q)
{
	const omr_envelope_t *e = q->env;
	const char *score = omr_envelope_attr(e, "score");
	int64_t v;
	if (!score || omr_parse_int(score, 1, 5, &v) != 0)
		return -EINVAL;
	if (e->text && strlen(e->text) > (size_t)q->r->cfg->chat_max_text_bytes)
		return -EMSGSIZE;
	const char *args[] = {e->conv, score, omr_str_or_empty(e->text)};
	return omr_request_fcall(q, omr_request_on_simple, "omr_conv_rate", 3, args, NULL);
}

int omr_handle_conv_typing(omr_request_t *q)
{
	const omr_envelope_t *e = q->env;
	const char *agent = "";
	if (e->from == OMR_ROLE_AGENT) {
		omr_watch_t *w = omr_request_agent(q);
		if (!w)
			return OMR_ERR_BAD_TOKEN;
		agent = w->id;
	} else if (e->from != OMR_ROLE_CUSTOMER) {
		return -EINVAL;
	}
	const char *args[] = {e->conv, omr_role_name(e->from), agent};
	return omr_request_fcall(q, omr_request_on_simple, "omr_conv_typing", 3, args, NULL);
}

int omr_handle_conv_transfer(omr_request_t *q)
{
	const omr_envelope_t *e = q->env;
	omr_watch_t *w = omr_request_agent(q);
	if (!w)
		return OMR_ERR_BAD_TOKEN;
	const char *queue = omr_envelope_attr(e, "queue"), *agent = omr_envelope_attr(e, "agent");
	if ((queue != NULL) == (agent != NULL))
		return -EINVAL; /* exactly one target */
	const char *target = queue ? queue : agent;
	if (!omr_id_is_valid(target, OMR_ENV_ID_MAX))
		return -EINVAL;
	if (e->text && strlen(e->text) > (size_t)q->r->cfg->chat_max_text_bytes)
		return -EMSGSIZE;
	/* A new language for the conversation (the customer's, when it came in
	 * another): its tag and the code routing matches on. */
	char rlang[16] = "";
	if (e->lang && omr_language_primary(e->lang, rlang, sizeof(rlang)) != 0)
		return -EINVAL;
	const char *args[] = {e->conv,
	                      w->id,
	                      queue ? "queue" : "agent",
	                      target,
	                      omr_str_or_empty(e->text),
	                      e->lang && rlang[0] ? e->lang : "",
	                      rlang,
	                      w->session};
	return omr_request_fcall(q, omr_request_on_simple, "omr_conv_transfer", 8, args, NULL);
}

static const char *field(const redisReply *fields, const char *name)
{
	for (size_t i = 0; fields && i + 1 < fields->elements; i += 2) {
		const redisReply *k = fields->element[i], *v = fields->element[i + 1];
		if (k->type == REDIS_REPLY_STRING && v->type == REDIS_REPLY_STRING &&
		    strcmp(k->str, name) == 0)
			return v->str;
	}
	return NULL;
}

void omr_request_on_transcript(void *ud, const redisReply *rep)
{
	omr_request_t *q = ud;
	if (!omr_request_ok(q, rep))
		return;
	bool history = q->env->type == OMR_ENV_CONV_HISTORY;
	const char *conv = history ? omr_envelope_attr(q->env, "earlier") : q->env->conv;
	for (size_t i = 0; rep->type == REDIS_REPLY_ARRAY && i < rep->elements; i++) {
		const redisReply *entry = rep->element[i];
		if (entry->type != REDIS_REPLY_ARRAY || entry->elements != 2 ||
		    entry->element[1]->type != REDIS_REPLY_ARRAY)
			continue;
		const redisReply *f = entry->element[1];
		omr_envelope_t *d = omr_envelope_new(OMR_ENV_DELIVER);
		if (!d)
			continue;
		const char *kind = field(f, "kind"), *from = field(f, "from"), *ts = field(f, "ts");
		const char *text = field(f, "text"), *name = field(f, "name"),
		           *ev = field(f, "event");
		int64_t t = 0;
		d->conn = q->env->conn;
		d->channel = OMR_CHANNEL_CHAT;
		omr_envelope_set(&d->event, history ? "history" : "monitor");
		omr_envelope_set(&d->conv, conv);
		omr_envelope_set(&d->seq, entry->element[0]->str);
		omr_envelope_add_attr(d, "kind", kind ? kind : "message");
		if (ev && *ev)
			omr_envelope_add_attr(d, "event", ev);
		if (text && *text)
			omr_envelope_set(&d->text, text);
		if (name && *name)
			omr_envelope_set(&d->name, name);
		if (from)
			d->from = omr_role_from_name(from, strlen(from));
		if (ts && omr_parse_int(ts, 0, INT64_MAX, &t) == 0)
			d->ts_ms = (uint64_t)t;
		omr_router_send(q->r, &q->peer, d);
		omr_envelope_destroy(&d);
	}
	omr_request_reply(q, 0, NULL);
}

int omr_handle_conv_history(omr_request_t *q)
{
	const omr_envelope_t *e = q->env;
	omr_watch_t *w = omr_request_agent(q);
	if (!w)
		return OMR_ERR_BAD_TOKEN;
	const char *earlier = omr_envelope_attr(e, "earlier");
	if (!omr_id_is_valid(earlier, OMR_ENV_ID_MAX))
		return -EINVAL;
	const char *args[] = {e->conv, w->id, earlier};
	return omr_request_fcall(q, omr_request_on_transcript, "omr_conv_history", 3, args, NULL);
}
