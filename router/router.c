/* router.c - requests from adapters: each becomes one Redis Function call
 * (router/lua/) and is acknowledged on the bus once Redis answered. A
 * request whose outcome is unknown (Redis down, connection lost) is not
 * acknowledged: the adapter resends it with the same id and every function
 * is idempotent. Loop thread only. */
#include "router_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "omnirouter/channel.h"
#include "omnirouter/error.h"
#include "omnirouter/log.h"
#include "omnirouter/util.h"
#include "rules.h"

typedef struct request {
	omr_router_t *r;
	omr_bus_peer_t peer;
	omr_envelope_t *env;
	char inflight_key[2 * 255 + 24];
	char session[160];
} request_t;

static void send_seen(omr_router_t *r, const omr_watch_t *w);

void omr_router_group_prefix(const char *group, char *out, size_t outsize)
{
	snprintf(out, outsize, "omr:{%s}", group);
}

void omr_router_send(omr_router_t *r, const omr_bus_peer_t *peer, omr_envelope_t *env)
{
	env->id = ++r->next_id;
	int rc = omr_bus_server_send(r->bus, peer, env);
	if (rc != 0 && rc != -EHOSTUNREACH)
		omr_warn("router", "bus send failed type=%s error=\"%s\"",
		         omr_env_type_name(env->type), omr_strerror(rc));
}

static void request_free(request_t *q)
{
	omr_hmap_del(q->r->inflight, q->inflight_key);
	omr_envelope_destroy(&q->env);
	free(q);
}

/* Acknowledges q with status; extra (may be NULL) carries reply fields and
 * is consumed. Frees q. */
static void reply(request_t *q, int status, omr_envelope_t *extra)
{
	omr_envelope_t *ack = extra ? extra : omr_envelope_new(OMR_ENV_ACK);
	if (ack) {
		ack->type = OMR_ENV_ACK;
		ack->re = q->env->id;
		ack->conn = q->env->conn;
		ack->status = status;
		omr_router_send(q->r, &q->peer, ack);
		omr_envelope_destroy(&ack);
	}
	request_free(q);
}

/* Maps a Functions error ("CODE message") to a status. */
static int error_status(const char *msg)
{
	static const struct {
		const char *code;
		int status;
	} map[] = {
	        {"BADTOKEN ", OMR_ERR_BAD_TOKEN},
	        {"NOTASSIGNED ", OMR_ERR_NOT_ASSIGNED},
	        {"NOCONV ", OMR_ERR_NOT_ASSIGNED},
	        {"CLOSED ", OMR_ERR_CLOSED},
	        {"NOAGENT ", OMR_ERR_NO_AGENT},
	        {"REPLACED ", OMR_ERR_BAD_TOKEN},
	        {"TOOMANY ", -ENOSPC},
	        {"BADARG ", -EINVAL},
	        {"BUSY ", -EBUSY},
	    {"NOQUEUE ", -EINVAL},
	};
	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (strncmp(msg, map[i].code, strlen(map[i].code)) == 0)
			return map[i].status;
	return 0;
}

/* Common reply handling: returns true when the caller should go on with a
 * successful reply; otherwise q has been answered or dropped and freed. */
static bool reply_ok(request_t *q, const redisReply *rep)
{
	if (!rep) {
		/* Outcome unknown: no ack, the adapter resends. */
		request_free(q);
		return false;
	}
	if (rep->type == REDIS_REPLY_ERROR) {
		int status = error_status(rep->str);
		if (status == 0) {
			omr_error("router", "redis error type=%s error=\"%s\"",
			          omr_env_type_name(q->env->type), rep->str);
			request_free(q);
			return false;
		}
		omr_info("router", "refused type=%s conn=%llu reason=\"%s\"",
		         omr_env_type_name(q->env->type), (unsigned long long)q->env->conn,
		         rep->str);
		reply(q, status, NULL);
		return false;
	}
	return true;
}

static int fcall(request_t *q, omr_store_reply_fn cb, const char *fn, int nargs,
                 const char **args, const size_t *lens)
{
	char prefix[OMR_ENV_ID_MAX + 8];
	omr_router_group_prefix(q->r->cfg->routing_group, prefix, sizeof(prefix));
	const char *argv[16] = {"FCALL", fn, "1", prefix};
	size_t argl[16] = {5, strlen(fn), 1, strlen(prefix)};
	for (int i = 0; i < nargs && i < 12; i++) {
		argv[4 + i] = args[i] ? args[i] : "";
		argl[4 + i] = lens && lens[i] ? lens[i] : strlen(argv[4 + i]);
	}
	return omr_store_command(q->r->store, cb, q, 4 + nargs, argv, argl);
}

static const char *str_or_empty(const char *s)
{
	return s ? s : "";
}

/* ---- customers ---------------------------------------------------------- */

static void on_conv_state(void *ud, const redisReply *rep)
{
	request_t *q = ud;
	if (!reply_ok(q, rep))
		return;
	omr_envelope_t *ack = omr_envelope_new(OMR_ENV_ACK);
	if (ack && rep->type == REDIS_REPLY_STRING)
		omr_envelope_set(&ack->event, rep->str);
	const omr_envelope_t *e = q->env;
	const char *cursor = e->type == OMR_ENV_CONV_RESUME && e->seq ? e->seq : "0";
	/* Ack first: the adapter must send "welcome" before any item. */
	omr_delivery_add_customer(q->r, q->r->cfg->routing_group, e->conv, cursor, &q->peer, e->conn);
	reply(q, 0, ack);
}

static int handle_conv_start(request_t *q)
{
	const omr_envelope_t *e = q->env;
	char rlang[16], sha[65];
	if (!e->token || !omr_id_is_valid(e->token, OMR_ENV_ID_MAX) || !e->lang ||
	    omr_language_primary(e->lang, rlang, sizeof(rlang)) != 0)
		return -EINVAL;
	omr_sha256_hex(e->token, strlen(e->token), sha);
	/* Customer attributes and requested skills travel as JSON: the queue
	 * rules match them inside the routing function. */
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
		                      str_or_empty(e->name),
		                      omr_channel_name(e->channel ? e->channel : OMR_CHANNEL_CHAT),
		                      e->tenant,
		                      str_or_empty(e->customer),
		                      attrs_json,
		                      skills_json};
		rc = fcall(q, on_conv_state, "omr_conv_start", 10, args, NULL);
	}
	cJSON_free(attrs_json);
	cJSON_free(skills_json);
	return rc;
}

static int handle_conv_resume(request_t *q)
{
	const omr_envelope_t *e = q->env;
	char sha[65];
	if (!e->token || (e->seq && !omr_id_is_valid(e->seq, OMR_SEQ_MAX)))
		return -EINVAL;
	omr_sha256_hex(e->token, strlen(e->token), sha);
	const char *args[] = {e->conv, sha};
	return fcall(q, on_conv_state, "omr_conv_resume", 2, args, NULL);
}

static void on_message_stored(void *ud, const redisReply *rep)
{
	request_t *q = ud;
	if (!reply_ok(q, rep))
		return;
	omr_envelope_t *ack = omr_envelope_new(OMR_ENV_ACK);
	if (ack && rep->type == REDIS_REPLY_STRING)
		omr_envelope_set(&ack->seq, rep->str);
	reply(q, 0, ack);
}

static int handle_conv_message(request_t *q)
{
	const omr_envelope_t *e = q->env;
	const omr_channel_ops_t *ch = omr_channel_get(OMR_CHANNEL_CHAT);
	const char *why = NULL;
	if (!e->msgid || !omr_id_is_valid(e->msgid, OMR_ENV_ID_MAX) || !e->text)
		return -EINVAL;
	if (e->from != OMR_ROLE_CUSTOMER && e->from != OMR_ROLE_AGENT)
		return -EINVAL;
	if (e->from == OMR_ROLE_AGENT && !omr_id_is_valid(e->agent, OMR_ENV_ID_MAX))
		return -EINVAL;
	int rc = ch->validate_text(e->text, strlen(e->text), (size_t)q->r->cfg->chat_max_text_bytes,
	                           &why);
	if (rc != 0)
		return rc;
	char max[24];
	snprintf(max, sizeof(max), "%lld", (long long)q->r->cfg->chat_max_messages);
	const char *args[] = {e->conv,
	                      omr_role_name(e->from),
	                      e->from == OMR_ROLE_AGENT ? e->agent : "",
	                      e->msgid,
	                      e->text,
	                      str_or_empty(e->name),
	                      max};
	return fcall(q, on_message_stored, "omr_conv_message", 7, args, NULL);
}

static void on_simple(void *ud, const redisReply *rep)
{
	request_t *q = ud;
	if (reply_ok(q, rep))
		reply(q, 0, NULL);
}

static int handle_conv_close(request_t *q)
{
	const omr_envelope_t *e = q->env;
	if (!omr_id_is_valid(e->agent, OMR_ENV_ID_MAX))
		return -EINVAL;
	const char *args[] = {e->conv, e->agent};
	return fcall(q, on_simple, "omr_conv_close", 2, args, NULL);
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
	request_t *q = ud;
	if (!reply_ok(q, rep))
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
	if (old && old->conn != e->conn) {
		omr_envelope_t *d = omr_envelope_new(OMR_ENV_DELIVER);
		if (d) {
			d->conn = old->conn;
			omr_envelope_set(&d->event, "replaced");
			omr_router_send(q->r, &old->peer, d);
			omr_envelope_destroy(&d);
		}
		omr_delivery_remove_agent(q->r, old);
	}
	if (!old || old->conn != e->conn) {
		omr_watch_t *w = omr_delivery_add_agent(q->r, q->r->cfg->routing_group, e->agent,
		                                        q->session, &q->peer, e->conn);
		if (w)
			send_seen(q->r, w);
	}
	omr_info("router", "agent logged in agent=%s tenant=%s conn=%llu", e->agent, e->tenant,
	         (unsigned long long)e->conn);
	reply(q, 0, ack);
}

static int handle_agent_login(request_t *q)
{
	const omr_envelope_t *e = q->env;
	char sha[65];
	if (!omr_id_is_valid(e->agent, OMR_ENV_ID_MAX) || !e->token)
		return -EINVAL;
	omr_sha256_hex(e->token, strlen(e->token), sha);
	snprintf(q->session, sizeof(q->session), "%s:%llu", q->r->instance,
	         (unsigned long long)e->conn);
	const char *args[] = {e->agent, sha, q->session};
	return fcall(q, on_login, "omr_agent_login", 3, args, NULL);
}

/* The request must come from the connection this instance knows as the
 * agent's current desktop. */
static omr_watch_t *agent_session(request_t *q)
{
	const omr_envelope_t *e = q->env;
	if (!omr_id_is_valid(e->agent, OMR_ENV_ID_MAX))
		return NULL;
	omr_watch_t *w = omr_delivery_find_agent(q->r, q->r->cfg->routing_group, e->agent);
	return w && w->conn == e->conn ? w : NULL;
}

static void on_presence(void *ud, const redisReply *rep)
{
	request_t *q = ud;
	if (!reply_ok(q, rep))
		return;
	omr_envelope_t *ack = omr_envelope_new(OMR_ENV_ACK);
	if (ack && rep->type == REDIS_REPLY_STRING)
		omr_envelope_set(&ack->presence, rep->str);
	reply(q, 0, ack);
}

static int handle_agent_presence(request_t *q)
{
	omr_watch_t *w = agent_session(q);
	if (!w)
		return OMR_ERR_BAD_TOKEN;
	const char *p = q->env->presence;
	if (!p || (strcmp(p, "available") != 0 && strcmp(p, "away") != 0 &&
	           strcmp(p, "break") != 0))
		return -EINVAL;
	const char *args[] = {w->id, w->session, p, str_or_empty(q->env->reason)};
	return fcall(q, on_presence, "omr_agent_presence", 4, args, NULL);
}

/* Offers: the agent takes or declines the conversation offered to it. */
static int handle_offer(request_t *q)
{
	const omr_envelope_t *e = q->env;
	omr_watch_t *w = agent_session(q);
	if (!w)
		return OMR_ERR_BAD_TOKEN;
	if (e->type == OMR_ENV_OFFER_ACCEPT) {
		const char *args[] = {e->conv, w->id};
		return fcall(q, on_simple, "omr_offer_accept", 2, args, NULL);
	}
	const char *args[] = {e->conv, w->id, str_or_empty(e->reason)};
	return fcall(q, on_simple, "omr_offer_reject", 3, args, NULL);
}

static int handle_wrapup_end(request_t *q)
{
	omr_watch_t *w = agent_session(q);
	if (!w)
		return OMR_ERR_BAD_TOKEN;
	const char *ch = omr_channel_name(q->env->channel);
	if (!q->env->channel || !ch)
		return -EINVAL;
	const char *args[] = {w->id, w->session, ch};
	return fcall(q, on_simple, "omr_agent_wrapup_end", 3, args, NULL);
}

static int handle_agent_ack(request_t *q)
{
	const omr_envelope_t *e = q->env;
	omr_watch_t *w = agent_session(q);
	if (!w)
		return OMR_ERR_BAD_TOKEN;
	if (!e->seq || !omr_id_is_valid(e->seq, OMR_SEQ_MAX))
		return -EINVAL;
	char key[OMR_ENV_ID_MAX * 2 + 32];
	snprintf(key, sizeof(key), "omr:{%s}:agent:%s:inbox", w->group, w->id);
	const char *argv[] = {"XACK", key, "desktop", e->seq};
	size_t lens[] = {4, strlen(key), 7, strlen(e->seq)};
	return omr_store_command(q->r->store, on_simple, q, 4, argv, lens);
}

static int handle_agent_gone(request_t *q)
{
	omr_watch_t *w = agent_session(q);
	if (!w) {
		reply(q, 0, NULL); /* replaced or never logged in: nothing to do */
		return 0;
	}
	snprintf(q->session, sizeof(q->session), "%s", w->session);
	const char *args[] = {w->id, q->session};
	int rc = fcall(q, on_simple, "omr_agent_gone", 2, args, NULL);
	if (rc == 0) {
		omr_info("router", "agent disconnected agent=%s conn=%llu", w->id,
		         (unsigned long long)w->conn);
		omr_delivery_remove_agent(q->r, w);
	}
	return rc;
}

/* ---- dispatch ----------------------------------------------------------- */

static bool needs_conv(omr_env_type_t t)
{
	return t == OMR_ENV_CONV_START || t == OMR_ENV_CONV_RESUME || t == OMR_ENV_CONV_MESSAGE ||
	       t == OMR_ENV_CONV_CLOSE || t == OMR_ENV_CUSTOMER_GONE || t == OMR_ENV_OFFER_ACCEPT ||
	       t == OMR_ENV_OFFER_REJECT;
}

static int dispatch(request_t *q)
{
	const omr_envelope_t *e = q->env;
	if (e->type == OMR_ENV_ADAPTER_HELLO) {
		omr_info("router", "adapter connected name=%s", str_or_empty(e->name));
		reply(q, 0, NULL);
		return 0;
	}
	if (!omr_id_is_valid(e->tenant, OMR_ENV_ID_MAX))
		return -EINVAL;
	if (needs_conv(e->type) && !omr_id_is_valid(e->conv, OMR_ENV_ID_MAX))
		return -EINVAL;
	switch (e->type) {
	case OMR_ENV_CONV_START:
		return handle_conv_start(q);
	case OMR_ENV_CONV_RESUME:
		return handle_conv_resume(q);
	case OMR_ENV_CONV_MESSAGE:
		return handle_conv_message(q);
	case OMR_ENV_CONV_CLOSE:
		return handle_conv_close(q);
	case OMR_ENV_CUSTOMER_GONE:
		omr_delivery_remove_customer(q->r, q->r->cfg->routing_group, e->conv, e->conn);
		reply(q, 0, NULL);
		return 0;
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

static void on_request(void *ud, const omr_bus_peer_t *peer, omr_envelope_t **envp)
{
	omr_router_t *r = ud;
	omr_envelope_t *e = *envp;
	if (e->type == OMR_ENV_ACK || e->type == OMR_ENV_DELIVER)
		return; /* router-to-adapter types are not requests */
	request_t *q = calloc(1, sizeof(*q));
	if (!q)
		return; /* no ack: the adapter resends */
	q->r = r;
	q->peer = *peer;
	peer_key(peer, e->id, q->inflight_key, sizeof(q->inflight_key));
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
	int rc = dispatch(q);
	if (rc == -EAGAIN) {
		request_free(q); /* Redis not ready: the adapter resends */
	} else if (rc != 0) {
		omr_info("router", "request refused type=%s conn=%llu error=\"%s\"",
		         omr_env_type_name(e->type), (unsigned long long)e->conn, omr_strerror(rc));
		reply(q, rc, NULL);
	}
}

/* ---- lifecycle ---------------------------------------------------------- */

/* ---- rules and timers --------------------------------------------------- */

static void on_rules_loaded(void *ud, const redisReply *rep)
{
	if (rep && rep->type == REDIS_REPLY_ERROR)
		omr_error("router", "routing rules refused by redis error=\"%s\"", rep->str);
	else if (rep && rep->type == REDIS_REPLY_STRING && strcmp(rep->str, "loaded") == 0)
		omr_info("router", "routing rules loaded");
}

/* Stores the configuration's queues in Redis (P:rules), where every routing
 * function reads them. Sent on every connect and reload; instances with the
 * same rules leave them unchanged. */
static void push_rules(omr_router_t *r)
{
	char *json = NULL;
	int rc = omr_rules_json(r->cfg, &json);
	if (rc != 0) {
		omr_error("router", "cannot render routing rules error=\"%s\"", omr_strerror(rc));
		return;
	}
	char prefix[OMR_ENV_ID_MAX + 8];
	omr_router_group_prefix(r->cfg->routing_group, prefix, sizeof(prefix));
	const char *argv[] = {"FCALL", "omr_rules_load", "1", prefix, json};
	size_t lens[] = {5, 14, 1, strlen(prefix), strlen(json)};
	omr_store_command(r->store, on_rules_loaded, r, 5, argv, lens);
	cJSON_free(json);
}

static void on_tick_reply(void *ud, const redisReply *rep)
{
	omr_router_t *r = ud;
	r->ticking = false;
	if (rep && rep->type == REDIS_REPLY_ERROR)
		omr_warn("router", "timer tick failed error=\"%s\"", rep->str);
	else if (rep && rep->type == REDIS_REPLY_INTEGER && rep->integer > 0)
		omr_debug("router", "timers fired count=%lld", (long long)rep->integer);
}

/* Timers (escalation steps, maximum waits) live in Redis; every instance
 * fires the due ones, so they fire while any instance is alive. */
static void on_tick(uv_timer_t *t)
{
	omr_router_t *r = t->data;
	if (r->ticking || !omr_store_is_ready(r->store))
		return;
	char prefix[OMR_ENV_ID_MAX + 8];
	omr_router_group_prefix(r->cfg->routing_group, prefix, sizeof(prefix));
	const char *argv[] = {"FCALL", "omr_tick", "1", prefix};
	size_t lens[] = {5, 8, 1, strlen(prefix)};
	if (omr_store_command(r->store, on_tick_reply, r, 4, argv, lens) == 0)
		r->ticking = true;
}

/* Heartbeats: this instance vouches for every desktop connected to it, so
 * the agents of an instance that died go offline ("lost") once
 * routing.heartbeat_timeout_s passes, and their work is re-queued after the
 * grace period. A desktop that closes is reported at once (agent.gone). */
static void send_seen(omr_router_t *r, const omr_watch_t *w)
{
	char prefix[OMR_ENV_ID_MAX + 8];
	omr_router_group_prefix(r->cfg->routing_group, prefix, sizeof(prefix));
	const char *argv[] = {"FCALL", "omr_agent_seen", "1", prefix, w->id, w->session};
	size_t lens[6];
	for (int i = 0; i < 6; i++)
		lens[i] = strlen(argv[i]);
	omr_store_command(r->store, NULL, NULL, 6, argv, lens);
}

static void vouch_one(void *ud, const char *key, void *value)
{
	send_seen(ud, value);
}

static uint64_t heartbeat_interval_ms(const omr_config_t *cfg)
{
	return (uint64_t)cfg->routing_heartbeat_timeout_s * 1000u / 3u;
}

static void on_heartbeat(uv_timer_t *t)
{
	omr_router_t *r = t->data;
	if (omr_store_is_ready(r->store))
		omr_hmap_each(r->agents, vouch_one, r);
}

static void on_store_state(void *ud, bool ready)
{
	omr_router_t *r = ud;
	if (ready) {
		push_rules(r);
		omr_delivery_resync(r);
	}
	if (r->on_state)
		r->on_state(r->ud, ready);
}

static void on_store_message(void *ud, const char *channel, size_t chlen, const char *msg,
                             size_t len)
{
	omr_delivery_on_notify(ud, channel, chlen, msg, len);
}

static void make_instance_name(omr_router_t *r)
{
	char rnd[9] = "0";
	omr_random_hex(rnd, sizeof(rnd), 4);
	if (r->cfg->instance_name[0]) {
		snprintf(r->instance, sizeof(r->instance), "%s-%s", r->cfg->instance_name, rnd);
		return;
	}
	char host[64] = "host";
	gethostname(host, sizeof(host) - 1);
	host[sizeof(host) - 1] = '\0';
	if (!omr_id_is_valid(host, sizeof(host)))
		snprintf(host, sizeof(host), "host");
	snprintf(r->instance, sizeof(r->instance), "%s-%d-%s", host, (int)getpid(), rnd);
}

int omr_router_start(uv_loop_t *loop, void *zctx, const omr_config_t *cfg,
                     omr_router_state_fn on_state, void *ud, omr_router_t **out)
{
	omr_router_t *r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->loop = loop;
	r->cfg = cfg;
	r->on_state = on_state;
	r->ud = ud;
	make_instance_name(r);
	r->agents = omr_hmap_new();
	r->customers = omr_hmap_new();
	r->inflight = omr_hmap_new();
	omr_store_callbacks_t cbs = {
	        .on_state = on_store_state, .on_message = on_store_message, .ud = r};
	r->store = omr_store_new(loop, cfg, &cbs);
	int rc = -ENOMEM;
	if (!r->agents || !r->customers || !r->inflight || !r->store)
		goto fail;
	rc = omr_bus_server_start(loop, zctx, cfg, on_request, r, &r->bus);
	if (rc != 0)
		goto fail;
	r->tick = calloc(1, sizeof(*r->tick));
	if (!r->tick) {
		rc = -ENOMEM;
		goto fail;
	}
	uv_timer_init(loop, r->tick);
	r->tick->data = r;
	uv_timer_start(r->tick, on_tick, (uint64_t)cfg->routing_tick_ms,
	               (uint64_t)cfg->routing_tick_ms);
	r->heartbeat = calloc(1, sizeof(*r->heartbeat));
	if (!r->heartbeat) {
		rc = -ENOMEM;
		goto fail;
	}
	uv_timer_init(loop, r->heartbeat);
	r->heartbeat->data = r;
	uv_timer_start(r->heartbeat, on_heartbeat, heartbeat_interval_ms(cfg),
	               heartbeat_interval_ms(cfg));
	omr_store_start(r->store);
	omr_info("router", "started instance=%s group=%s", r->instance, cfg->routing_group);
	*out = r;
	return 0;
fail:
	omr_router_close(&r);
	return rc;
}

void omr_router_reload(omr_router_t *r, const omr_config_t *cfg)
{
	r->cfg = cfg;
	omr_store_reload(r->store, cfg);
	uv_timer_set_repeat(r->tick, (uint64_t)cfg->routing_tick_ms);
	uv_timer_set_repeat(r->heartbeat, heartbeat_interval_ms(cfg));
	if (omr_store_is_ready(r->store))
		push_rules(r);
}

size_t omr_router_busy(const omr_router_t *r)
{
	return (r->store ? omr_store_inflight(r->store) : 0) + r->reads;
}

static void free_request(void *ud, const char *key, void *value)
{
	request_t *q = value;
	omr_envelope_destroy(&q->env);
	free(q);
}

static void free_handle(uv_handle_t *h) { free(h); }

void omr_router_close(omr_router_t **rp)
{
	omr_router_t *r = *rp;
	if (!r)
		return;
	*rp = NULL;
	if (r->tick)
		uv_close((uv_handle_t *)r->tick, free_handle);
	if (r->heartbeat)
		uv_close((uv_handle_t *)r->heartbeat, free_handle);
	omr_bus_server_close(&r->bus);
	/* Closing the store runs every pending callback with a NULL reply,
	 * which frees those requests and reads. */
	omr_store_close(&r->store);
	omr_delivery_free_all(r);
	if (r->inflight)
		omr_hmap_each(r->inflight, free_request, NULL);
	omr_hmap_destroy(&r->inflight);
	omr_hmap_destroy(&r->agents);
	omr_hmap_destroy(&r->customers);
	free(r);
}
