/* handlers.c - what each request from an adapter does: which Redis
 * Function it calls, what its ack carries, which sessions it opens or
 * closes on this instance. A request whose outcome is unknown (Redis down,
 * connection lost) is not acknowledged: the adapter resends it with the same
 * id and every function is idempotent. Loop thread only. */
#include "router_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "omnirouter/channel.h"
#include "omnirouter/error.h"
#include "omnirouter/log.h"
#include "omnirouter/util.h"

/* ---- customers ---------------------------------------------------------- */

/* The session of the request's connection: "instance:conn". */
static void conn_session(omr_request_t *q)
{
	snprintf(q->session, sizeof(q->session), "%s:%llu", q->r->instance,
	         (unsigned long long)q->env->conn);
}

static void on_conv_state(void *ud, const redisReply *rep)
{
	omr_request_t *q = ud;
	if (!omr_request_ok(q, rep))
		return;
	omr_envelope_t *ack = omr_envelope_new(OMR_ENV_ACK);
	if (ack && rep->type == REDIS_REPLY_STRING)
		omr_envelope_set(&ack->event, rep->str);
	const omr_envelope_t *e = q->env;
	const char *cursor = e->type == OMR_ENV_CONV_RESUME && e->seq ? e->seq : "0";
	/* Ack first: the adapter must send "welcome" before any item. */
	bool waiting = rep->type == REDIS_REPLY_STRING &&
	               (strcmp(rep->str, "queued") == 0 || strcmp(rep->str, "offered") == 0);
	omr_delivery_add_customer(q->r, q->r->cfg->routing_group, e->conv, cursor, &q->peer,
	                          e->conn, waiting);
	omr_request_reply(q, 0, ack);
}

static int handle_conv_start(omr_request_t *q)
{
	const omr_envelope_t *e = q->env;
	char rlang[16], sha[65];
	if (!e->token || !omr_id_is_valid(e->token, OMR_ENV_ID_MAX) || !e->lang ||
	    omr_language_primary(e->lang, rlang, sizeof(rlang)) != 0 ||
	    omr_id_names_subkey(e->customer, OMR_ID_CUSTOMER))
		return -EINVAL;
	omr_sha256_hex(e->token, strlen(e->token), sha);
	/* Customer attributes and requested skills travel as JSON: the queue
	 * rules match them inside the routing function. */
	conn_session(q); /* the customer's connection: it is here (omr_conv_left) */
	cJSON *attrs = cJSON_CreateObject(), *skills = cJSON_CreateArray();
	for (size_t i = 0; attrs && i < e->n_attrs; i++)
		cJSON_AddStringToObject(attrs, e->attrs[i].key, e->attrs[i].value);
	for (size_t i = 0; skills && i < e->n_skills; i++)
		cJSON_AddItemToArray(skills, cJSON_CreateString(e->skills[i]));
	char *attrs_json = attrs ? cJSON_PrintUnformatted(attrs) : NULL;
	char *skills_json = skills ? cJSON_PrintUnformatted(skills) : NULL;
	cJSON_Delete(attrs);
	cJSON_Delete(skills);
	int rc = -ENOMEM;
	if (attrs_json && skills_json) {
		const char *args[] = {e->conv,
		                      sha,
		                      e->lang,
		                      rlang,
		                      omr_str_or_empty(e->name),
		                      omr_channel_name(e->channel ? e->channel : OMR_CHANNEL_CHAT),
		                      e->tenant,
		                      omr_str_or_empty(e->customer),
		                      attrs_json,
		                      skills_json,
		                      q->session};
		rc = omr_request_fcall(q, on_conv_state, "omr_conv_start", 11, args, NULL);
	}
	cJSON_free(attrs_json);
	cJSON_free(skills_json);
	return rc;
}

static int handle_conv_resume(omr_request_t *q)
{
	const omr_envelope_t *e = q->env;
	char sha[65];
	if (!e->token || (e->seq && !omr_id_is_valid(e->seq, OMR_SEQ_MAX)))
		return -EINVAL;
	omr_sha256_hex(e->token, strlen(e->token), sha);
	conn_session(q);
	const char *args[] = {e->conv, sha, omr_str_or_empty(e->tenant), q->session,
	                      omr_str_or_empty(e->seq)};
	return omr_request_fcall(q, on_conv_state, "omr_conv_resume", 5, args, NULL);
}

/* A closed-connection report is answered after whatever Redis ran before it.
 * A hello, resume or login of that connection that went unanswered in time
 * (the adapter reports it when the connection closes, or when it authenticates
 * as someone else) may have run there meanwhile, and its late reply added a
 * watch after the report came: that watch goes too, with the answer (none:
 * the report is sent again, and its answer does it). */
static void on_customer_gone(void *ud, const redisReply *rep)
{
	omr_request_t *q = ud;
	if (rep)
		omr_delivery_remove_customer(q->r, q->r->cfg->routing_group, q->env->conv,
		                             q->env->conn);
	omr_request_on_simple(q, rep);
}

static void on_agent_gone(void *ud, const redisReply *rep)
{
	omr_request_t *q = ud;
	omr_watch_t *late = rep ? omr_request_agent(q) : NULL;
	if (late)
		omr_delivery_remove_agent(q->r, late);
	omr_request_on_simple(q, rep);
}

/* The customer's connection closed: this instance stops delivering there,
 * and the conversation learns its customer may be gone (omr_conv_left). A
 * connection the adapter closed because it is stopping is not the customer
 * leaving: the customer comes back when an instance is there again. */
static int handle_customer_gone(omr_request_t *q)
{
	const omr_envelope_t *e = q->env;
	omr_delivery_remove_customer(q->r, q->r->cfg->routing_group, e->conv, e->conn);
	if (e->reason && strcmp(e->reason, "shutdown") == 0) {
		omr_request_reply(q, 0, NULL);
		return 0;
	}
	conn_session(q);
	const char *args[] = {e->conv, q->session};
	return omr_request_fcall(q, on_customer_gone, "omr_conv_left", 2, args, NULL);
}

void omr_request_on_message(void *ud, const redisReply *rep)
{
	omr_request_t *q = ud;
	if (!omr_request_ok(q, rep))
		return;
	omr_envelope_t *ack = omr_envelope_new(OMR_ENV_ACK);
	if (ack && rep->type == REDIS_REPLY_STRING)
		omr_envelope_set(&ack->seq, rep->str);
	omr_request_reply(q, 0, ack);
}

static int handle_conv_message(omr_request_t *q)
{
	const omr_envelope_t *e = q->env;
	const omr_channel_ops_t *ch = omr_channel_get(OMR_CHANNEL_CHAT);
	const char *why = NULL;
	if (!e->msgid || !omr_id_is_valid(e->msgid, OMR_ENV_ID_MAX) || !e->text)
		return -EINVAL;
	if (e->from != OMR_ROLE_CUSTOMER && e->from != OMR_ROLE_AGENT)
		return -EINVAL;
	if (e->from == OMR_ROLE_AGENT) {
		/* Only from the agent's desktop session on this connection, which the
		 * function checks is still the agent's (not revoked, not taken over;
		 * msgbatch.c passes it). */
		omr_watch_t *w = omr_request_agent(q);
		if (!w)
			return OMR_ERR_BAD_TOKEN;
		snprintf(q->session, sizeof(q->session), "%s", w->session);
	}
	int rc = ch->validate_text(e->text, strlen(e->text), (size_t)q->r->cfg->chat_max_text_bytes,
	                           &why);
	if (rc != 0)
		return rc;
	return omr_msgbatch_add(q);
}

static int handle_conv_close(omr_request_t *q)
{
	const omr_envelope_t *e = q->env;
	omr_watch_t *w = omr_request_agent(q);
	if (!w)
		return OMR_ERR_BAD_TOKEN;
	/* reason = the disposition code the agent chose (optional). */
	if (e->reason && !omr_id_is_valid(e->reason, 64))
		return -EINVAL;
	const char *args[] = {e->conv, w->id, omr_str_or_empty(e->reason), w->session};
	return omr_request_fcall(q, omr_request_on_simple, "omr_conv_close", 4, args, NULL);
}

/* ---- agents ------------------------------------------------------------- */

static const char *element_str(const redisReply *rep, size_t i)
{
	if (rep->type != REDIS_REPLY_ARRAY || i >= rep->elements ||
	    rep->element[i]->type != REDIS_REPLY_STRING)
		return "";
	return rep->element[i]->str;
}

static void on_login(void *ud, const redisReply *rep)
{
	omr_request_t *q = ud;
	if (!omr_request_ok(q, rep))
		return;
	const omr_envelope_t *e = q->env;
	omr_envelope_t *ack = omr_envelope_new(OMR_ENV_ACK);
	if (ack) {
		omr_envelope_set(&ack->name, element_str(rep, 0));
		omr_envelope_set(&ack->presence, element_str(rep, 1));
		omr_envelope_add_attr(ack, "languages", element_str(rep, 2));
		omr_envelope_add_attr(ack, "capacity", element_str(rep, 3));
	}
	/* A login on this instance replaces an older local connection. */
	omr_watch_t *old = omr_delivery_find_agent(q->r, q->r->cfg->routing_group, e->agent);
	bool same = old && old->conn == e->conn; /* a resent login */
	if (old && !same) {
		omr_envelope_t *d = omr_envelope_new(OMR_ENV_DELIVER);
		if (d) {
			d->conn = old->conn;
			omr_envelope_set(&d->event, "replaced");
			omr_router_send(q->r, &old->peer, d);
			omr_envelope_destroy(&d);
		}
		omr_delivery_remove_agent(q->r, old); /* may free old */
	}
	if (!same) {
		omr_watch_t *w = omr_delivery_add_agent(q->r, q->r->cfg->routing_group, e->agent,
		                                        q->session, &q->peer, e->conn);
		if (w)
			omr_router_vouch(q->r, w);
	}
	omr_info("router", "agent logged in agent=%s tenant=%s conn=%llu", e->agent, e->tenant,
	         (unsigned long long)e->conn);
	omr_request_reply(q, 0, ack);
}

static int handle_agent_login(omr_request_t *q)
{
	const omr_envelope_t *e = q->env;
	char sha[65];
	if (!omr_id_is_valid(e->agent, OMR_ENV_ID_MAX) || !e->token)
		return -EINVAL;
	omr_sha256_hex(e->token, strlen(e->token), sha);
	conn_session(q);
	/* The conversations the desktop shows (when it says): the others it
	 * holds are sent again. opened_ms: when its connection was opened (a
	 * login from a connection older than the current session's is refused). */
	const char *known = omr_envelope_attr(e, "known");
	const char *args[] = {e->agent,
	                      sha,
	                      q->session,
	                      known ? "1" : "0",
	                      omr_str_or_empty(known),
	                      omr_str_or_empty(omr_envelope_attr(e, "opened_ms"))};
	return omr_request_fcall(q, on_login, "omr_agent_login", 6, args, NULL);
}

static void on_presence(void *ud, const redisReply *rep)
{
	omr_request_t *q = ud;
	if (!omr_request_ok(q, rep))
		return;
	omr_envelope_t *ack = omr_envelope_new(OMR_ENV_ACK);
	if (ack && rep->type == REDIS_REPLY_STRING)
		omr_envelope_set(&ack->presence, rep->str);
	omr_request_reply(q, 0, ack);
}

static int handle_agent_presence(omr_request_t *q)
{
	omr_watch_t *w = omr_request_agent(q);
	if (!w)
		return OMR_ERR_BAD_TOKEN;
	const char *p = q->env->presence;
	if (!p ||
	    (strcmp(p, "available") != 0 && strcmp(p, "away") != 0 && strcmp(p, "break") != 0))
		return -EINVAL;
	const char *args[] = {w->id, w->session, p, omr_str_or_empty(q->env->reason)};
	return omr_request_fcall(q, on_presence, "omr_agent_presence", 4, args, NULL);
}

/* Offers: the agent takes or declines the conversation offered to it. */
static int handle_offer(omr_request_t *q)
{
	const omr_envelope_t *e = q->env;
	omr_watch_t *w = omr_request_agent(q);
	if (!w)
		return OMR_ERR_BAD_TOKEN;
	if (e->type == OMR_ENV_OFFER_ACCEPT) {
		const char *args[] = {e->conv, w->id, w->session};
		return omr_request_fcall(q, omr_request_on_simple, "omr_offer_accept", 3, args,
		                         NULL);
	}
	const char *args[] = {e->conv, w->id, omr_str_or_empty(e->reason)};
	return omr_request_fcall(q, omr_request_on_simple, "omr_offer_reject", 3, args, NULL);
}

static int handle_wrapup_end(omr_request_t *q)
{
	omr_watch_t *w = omr_request_agent(q);
	if (!w)
		return OMR_ERR_BAD_TOKEN;
	const char *ch = omr_channel_name(q->env->channel);
	if (!q->env->channel || !ch)
		return -EINVAL;
	const char *args[] = {w->id, w->session, ch};
	return omr_request_fcall(q, omr_request_on_simple, "omr_agent_wrapup_end", 3, args, NULL);
}

/* The desktop received items: seq, and the comma-separated seqs of attr
 * "more" (the adapter batches an agent's acks), in one XACK. */
static int handle_agent_ack(omr_request_t *q)
{
	const omr_envelope_t *e = q->env;
	omr_watch_t *w = omr_request_agent(q);
	if (!w)
		return OMR_ERR_BAD_TOKEN;
	if (!e->seq || !omr_id_is_valid(e->seq, OMR_SEQ_MAX))
		return -EINVAL;
	char key[OMR_ENV_ID_MAX * 2 + 32], more[OMR_ENV_ATTR_VALUE_MAX + 1] = "";
	snprintf(key, sizeof(key), "omr:{%s}:agent:%s:inbox", w->group, w->id);
	const char *argv[4 + OMR_ACK_BATCH_MAX] = {"XACK", key, "desktop", e->seq};
	size_t lens[4 + OMR_ACK_BATCH_MAX] = {4, strlen(key), 7, strlen(e->seq)};
	int n = 4;
	const char *m = omr_envelope_attr(e, "more");
	if (m && strlen(m) < sizeof(more)) {
		snprintf(more, sizeof(more), "%s", m);
		char *save = NULL;
		for (char *s = strtok_r(more, ",", &save); s; s = strtok_r(NULL, ",", &save)) {
			if (n == 4 + OMR_ACK_BATCH_MAX || !omr_id_is_valid(s, OMR_SEQ_MAX))
				return -EINVAL;
			argv[n] = s;
			lens[n++] = strlen(s);
		}
	} else if (m) {
		return -EINVAL;
	}
	int rc = omr_store_command(q->r->store, omr_request_on_simple, q, n, argv, lens);
	if (rc == 0)
		/* after the XACK: the same connection, in order */
		omr_delivery_trim_inbox(q->r, w);
	return rc;
}

static int handle_agent_gone(omr_request_t *q)
{
	const omr_envelope_t *e = q->env;
	omr_watch_t *w = omr_request_agent(q);
	if (!w) {
		/* Replaced, never logged in, or a resend whose first reply was
		 * lost after the watch went: tell Redis all the same, with the
		 * session this connection's login had; Redis ignores a session
		 * that is not the agent's current one. */
		if (!omr_id_is_valid(e->agent, OMR_ENV_ID_MAX)) {
			omr_request_reply(q, 0, NULL);
			return 0;
		}
		conn_session(q);
		const char *args[] = {e->agent, q->session};
		return omr_request_fcall(q, on_agent_gone, "omr_agent_gone", 2, args, NULL);
	}
	snprintf(q->session, sizeof(q->session), "%s", w->session);
	const char *args[] = {w->id, q->session};
	omr_info("router", "agent disconnected agent=%s conn=%llu", w->id,
	         (unsigned long long)w->conn);
	int rc = omr_request_fcall(q, on_agent_gone, "omr_agent_gone", 2, args, NULL);
	/* Forgotten even if Redis cannot be told now: this instance stops
	 * vouching for the desktop (the adapter's resend tells Redis, through
	 * the session of the connection, or the heartbeat timeout does). */
	omr_delivery_remove_agent(q->r, w);
	return rc;
}

/* ---- dispatch ----------------------------------------------------------- */

static bool needs_conv(omr_env_type_t t)
{
	return t == OMR_ENV_CONV_START || t == OMR_ENV_CONV_RESUME || t == OMR_ENV_CONV_MESSAGE ||
	       t == OMR_ENV_CONV_CLOSE || t == OMR_ENV_CUSTOMER_GONE || t == OMR_ENV_OFFER_ACCEPT ||
	       t == OMR_ENV_OFFER_REJECT || t == OMR_ENV_CONV_RATE || t == OMR_ENV_CONV_TYPING ||
	       t == OMR_ENV_CONV_TRANSFER || t == OMR_ENV_CONV_HISTORY || t == OMR_ENV_CONV_MONITOR;
}

static int dispatch(omr_request_t *q)
{
	const omr_envelope_t *e = q->env;
	if (e->type == OMR_ENV_ADAPTER_HELLO) {
		omr_info("router", "adapter connected name=%s", omr_str_or_empty(e->name));
		omr_request_reply(q, 0, NULL);
		return 0;
	}
	if (!omr_id_is_valid(e->tenant, OMR_ENV_ID_MAX))
		return -EINVAL;
	if (needs_conv(e->type) && !omr_id_is_valid(e->conv, OMR_ENV_ID_MAX))
		return -EINVAL;
	/* An id that names another key of a conversation or an agent ("C:log",
	 * "ana:inbox") is answered as one that names nothing, without a Redis
	 * call: that would meet a key of another type and get no answer. */
	if (needs_conv(e->type) && omr_id_names_subkey(e->conv, OMR_ID_CONV))
		return e->type == OMR_ENV_CONV_RESUME ? OMR_ERR_BAD_TOKEN : OMR_ERR_NOT_ASSIGNED;
	if (e->type == OMR_ENV_AGENT_LOGIN && omr_id_names_subkey(e->agent, OMR_ID_AGENT))
		return OMR_ERR_BAD_TOKEN;
	if (e->type == OMR_ENV_CONV_TRANSFER &&
	    omr_id_names_subkey(omr_envelope_attr(e, "agent"), OMR_ID_AGENT))
		return -EINVAL; /* as an unknown agent */
	if (e->type == OMR_ENV_CONV_HISTORY &&
	    omr_id_names_subkey(omr_envelope_attr(e, "earlier"), OMR_ID_CONV))
		return OMR_ERR_NOT_ASSIGNED;
	switch (e->type) {
	case OMR_ENV_CONV_START:
		return handle_conv_start(q);
	case OMR_ENV_CONV_RESUME:
		return handle_conv_resume(q);
	case OMR_ENV_CONV_MESSAGE:
		return handle_conv_message(q);
	case OMR_ENV_CONV_CLOSE:
		return handle_conv_close(q);
	case OMR_ENV_CONV_RATE:
		return omr_handle_conv_rate(q);
	case OMR_ENV_CONV_TYPING:
		return omr_handle_conv_typing(q);
	case OMR_ENV_CONV_TRANSFER:
		return omr_handle_conv_transfer(q);
	case OMR_ENV_CONV_HISTORY:
		return omr_handle_conv_history(q);
	case OMR_ENV_CONV_MONITOR:
		return omr_handle_conv_monitor(q);
	case OMR_ENV_AGENT_TEAM:
		return omr_handle_agent_team(q);
	case OMR_ENV_CUSTOMER_GONE:
		return handle_customer_gone(q);
	case OMR_ENV_AGENT_LOGIN:
		return handle_agent_login(q);
	case OMR_ENV_AGENT_PRESENCE:
		return handle_agent_presence(q);
	case OMR_ENV_AGENT_ACK:
		return handle_agent_ack(q);
	case OMR_ENV_OFFER_ACCEPT:
	case OMR_ENV_OFFER_REJECT:
		return handle_offer(q);
	case OMR_ENV_WRAPUP_END:
		return handle_wrapup_end(q);
	case OMR_ENV_AGENT_GONE:
		return handle_agent_gone(q);
	default:
		return -EPROTO;
	}
}

static void peer_key(const omr_bus_peer_t *peer, uint64_t id, char *out, size_t outsize)
{
	static const char hex[] = "0123456789abcdef";
	size_t n = 0;
	for (size_t i = 0; i < peer->len && n + 2 < outsize; i++) {
		out[n++] = hex[peer->id[i] >> 4];
		out[n++] = hex[peer->id[i] & 15];
	}
	snprintf(out + n, outsize - n, ":%llu", (unsigned long long)id);
}

void omr_router_on_request(void *ud, const omr_bus_peer_t *peer, omr_envelope_t **envp)
{
	omr_router_t *r = ud;
	omr_envelope_t *e = *envp;
	if (e->type == OMR_ENV_ACK || e->type == OMR_ENV_DELIVER)
		return; /* router-to-adapter types are not requests */
	omr_request_t *q = calloc(1, sizeof(*q));
	if (!q)
		return; /* no ack: the adapter resends */
	q->r = r;
	q->peer = *peer;
	peer_key(peer, e->id, q->inflight_key, sizeof(q->inflight_key));
	size_t cached_len = 0;
	const void *cached = omr_ackcache_get(r->acks, q->inflight_key, &cached_len);
	if (cached) {
		/* Answered already: the adapter resent it before our ack arrived. */
		omr_bus_server_send_frame(r->bus, peer, cached, cached_len);
		free(q);
		return;
	}
	if (omr_hmap_get(r->inflight, q->inflight_key)) {
		/* A resend of a request still being handled: its ack will come. */
		free(q);
		return;
	}
	if (omr_hmap_put(r->inflight, q->inflight_key, q) != 0) {
		free(q);
		return;
	}
	q->env = e;
	*envp = NULL;
	/* Redis runs requests in arrival order: messages waiting for this turn's
	 * batch go first. Acks and typing touch nothing a message does. */
	if (e->type != OMR_ENV_CONV_MESSAGE && e->type != OMR_ENV_AGENT_ACK &&
	    e->type != OMR_ENV_CONV_TYPING)
		omr_msgbatch_flush(r);
	int rc = dispatch(q);
	if (rc == -EAGAIN) {
		omr_request_free(q); /* Redis not ready: the adapter resends */
	} else if (rc != 0) {
		omr_info("router", "request refused type=%s conn=%llu error=\"%s\"",
		         omr_env_type_name(e->type), (unsigned long long)e->conn, omr_strerror(rc));
		omr_request_reply(q, rc, NULL);
	}
}
