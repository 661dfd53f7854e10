/* ws_render.c - the server's side of docs/PROTOCOL.md as pure functions:
 * acks (and what an acknowledged hello/resume/login does to the session),
 * deliveries and error frames, rendered as JSON. Parsing is in ws_proto.c.
 * Owns nothing between calls. Any thread. */
#include "websocket/ws_proto.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "omnirouter/error.h"
#include "omnirouter/util.h"

/* ---- rendering -------------------------------------------------------- */

/* Adds a string member when value is set; false on ENOMEM. */
static bool add_str(cJSON *obj, const char *key, const char *value)
{
	return !value || cJSON_AddStringToObject(obj, key, value) != NULL;
}

static bool add_num(cJSON *obj, const char *key, double value)
{
	return cJSON_AddNumberToObject(obj, key, value) != NULL;
}

/* Prints and frees obj; NULL on ENOMEM. */
static char *finish(cJSON *obj, bool ok)
{
	char *out = ok && obj ? cJSON_PrintUnformatted(obj) : NULL;
	cJSON_Delete(obj);
	return out;
}

static cJSON *new_frame(const char *type)
{
	cJSON *obj = cJSON_CreateObject();
	if (obj && !cJSON_AddStringToObject(obj, "type", type)) {
		cJSON_Delete(obj);
		return NULL;
	}
	return obj;
}

char *omr_ws_render_error(const omr_ws_error_t *err)
{
	cJSON *obj = new_frame("error");
	bool ok = obj && add_str(obj, "code", err->code) && add_str(obj, "reason", err->reason) &&
	          add_str(obj, "id", err->id[0] ? err->id : NULL);
	return finish(obj, ok);
}

char *omr_ws_render_pong(const char *id)
{
	cJSON *obj = new_frame("pong");
	return finish(obj, obj && add_str(obj, "id", id && id[0] ? id : NULL));
}

/* "es,en" -> ["es","en"] */
static bool add_list(cJSON *obj, const char *key, const char *csv)
{
	cJSON *arr = cJSON_AddArrayToObject(obj, key);
	if (!arr)
		return false;
	for (const char *p = csv; p && *p;) {
		const char *comma = strchr(p, ',');
		size_t n = comma ? (size_t)(comma - p) : strlen(p);
		char item[OMR_ENV_ATTR_VALUE_MAX + 1];
		if (n > 0 && n < sizeof(item)) {
			memcpy(item, p, n);
			item[n] = '\0';
			if (!cJSON_AddItemToArray(arr, cJSON_CreateString(item)))
				return false;
		}
		p = comma ? comma + 1 : p + n;
	}
	return true;
}

static char *render_agent_welcome(const omr_ws_session_t *s, const omr_envelope_t *ack)
{
	int64_t capacity = 0;
	const char *cap = omr_envelope_attr(ack, "capacity");
	cJSON *obj = new_frame("welcome");
	bool ok = obj && add_str(obj, "agent_id", s->agent) &&
	          add_str(obj, "name", ack->name ? ack->name : s->agent) &&
	          add_str(obj, "presence", ack->presence ? ack->presence : "away") &&
	          add_list(obj, "languages", omr_envelope_attr(ack, "languages")) &&
	          add_str(obj, "tenant", s->tenant);
	if (ok && cap && omr_parse_int(cap, 0, 1000000, &capacity) == 0)
		ok = add_num(obj, "capacity", (double)capacity);
	return finish(obj, ok);
}

static char *render_customer_welcome(const omr_ws_session_t *s, const omr_ws_request_t *rq,
                                     const omr_envelope_t *ack)
{
	/* An offer is not the customer's business yet: still queued for them. */
	const char *state =
	        ack->event && strcmp(ack->event, "offered") != 0 ? ack->event : "queued";
	cJSON *obj = new_frame("welcome");
	bool ok = obj && add_str(obj, "conversation_id", s->conv) &&
	          add_str(obj, "resume_token", rq->kind == OMR_WS_HELLO ? rq->token : NULL) &&
	          add_str(obj, "state", state) && add_str(obj, "tenant", s->tenant);
	return finish(obj, ok);
}

static char *render_ack(const omr_ws_request_t *rq, const omr_envelope_t *ack)
{
	cJSON *obj = new_frame("ack");
	bool ok = obj && add_str(obj, "id", rq->id[0] ? rq->id : NULL);
	if (ok && rq->kind == OMR_WS_MESSAGE)
		ok = add_str(obj, "seq", ack->seq);
	else if (ok && rq->kind == OMR_WS_PRESENCE)
		ok = add_str(obj, "presence", ack->presence ? ack->presence : rq->presence);
	else if (ok && (rq->kind == OMR_WS_CLOSE || rq->kind == OMR_WS_ACCEPT ||
	                rq->kind == OMR_WS_REJECT || rq->kind == OMR_WS_TRANSFER ||
	                rq->kind == OMR_WS_HISTORY || rq->kind == OMR_WS_MONITOR))
		ok = add_str(obj, "conversation_id", rq->conv);
	return finish(obj, ok);
}

/* The session learns who it is only from an acknowledged auth request. */
static void authenticate(omr_ws_session_t *s, const omr_ws_request_t *rq)
{
	s->authed = true;
	snprintf(s->tenant, sizeof(s->tenant), "%s", rq->tenant);
	if (rq->kind == OMR_WS_LOGIN)
		snprintf(s->agent, sizeof(s->agent), "%s", rq->agent);
	else
		snprintf(s->conv, sizeof(s->conv), "%s", rq->conv);
}

static void fill_failure(const omr_ws_request_t *rq, int status, omr_ws_error_t *err)
{
	const char *code = omr_error_code(status);
	int close_code = 0;
	if ((strcmp(code, "unauthorized") == 0 &&
	     (rq->kind == OMR_WS_LOGIN || rq->kind == OMR_WS_RESUME)) ||
	    status == OMR_ERR_REPLACED)
		close_code = OMR_WS_CLOSE_POLICY;
	/* "too-big" closes only when a frame broke the websocket limit; a
	 * conversation that is full is refused like any other request. */
	const char *reason = omr_strerror(status);
	if (status == -ETIMEDOUT)
		reason = "the router did not answer in time; resend";
	else if (status == OMR_ERR_REDIS) /* Redis refuses writes (out of memory, ...) */
		reason = "the service cannot store anything right now; resend later";
	else if (status == -ENOSPC) /* (TOOMANY: only a message gets it) */
		reason = "the conversation holds chat.max_messages messages already";
	else if (status == -EINVAL && rq->kind == OMR_WS_TRANSFER)
		reason = "no such queue or agent, or it cannot take this conversation (tenant, "
		         "channel, language or skills)";
	else if (status == -EINVAL && rq->kind == OMR_WS_HELLO)
		reason = "no queue takes this conversation (its tenant, channel, language or "
		         "attributes)";
	else if (status == -EINVAL && rq->kind == OMR_WS_RATE)
		reason = "the survey comes after the conversation is closed";
	omr_ws_error_set(err, code, reason, close_code);
	snprintf(err->id, sizeof(err->id), "%s", rq->id);
}

int omr_ws_reply(omr_ws_session_t *s, const omr_ws_request_t *rq, int status,
                 const omr_envelope_t *ack, char **out, omr_ws_error_t *err)
{
	*out = NULL;
	memset(err, 0, sizeof(*err));
	if (omr_ws_kind_is_auth(rq->kind))
		s->auth_pending = false;
	if (status != 0 || !ack) {
		fill_failure(rq, status ? status : -EPROTO, err);
		return 0;
	}
	switch (rq->kind) {
	case OMR_WS_HELLO:
	case OMR_WS_RESUME:
		authenticate(s, rq);
		*out = render_customer_welcome(s, rq, ack);
		break;
	case OMR_WS_LOGIN:
		authenticate(s, rq);
		*out = render_agent_welcome(s, ack);
		break;
	case OMR_WS_ACK:
	case OMR_WS_TYPING:
		return 0; /* answered only when it fails */
	default:
		*out = render_ack(rq, ack);
		break;
	}
	return *out ? 0 : -ENOMEM;
}

static bool add_ts(cJSON *obj, const omr_envelope_t *env)
{
	return !env->ts_ms || add_num(obj, "ts", (double)env->ts_ms);
}

/* An integer attribute as a JSON number; left out when missing or not a
 * number. */
static bool add_int_attr(cJSON *obj, const char *key, const omr_envelope_t *env, const char *attr)
{
	const char *v = omr_envelope_attr(env, attr);
	int64_t n = 0;
	if (!v || omr_parse_int(v, 0, INT64_MAX, &n) != 0)
		return true;
	return add_num(obj, key, (double)n);
}

/* Not stored, so without seq: the other side is typing, and (customers)
 * the place in the queue. */
static char *render_notice(const omr_ws_session_t *s, const omr_envelope_t *env)
{
	bool typing = strcmp(env->event, "typing") == 0;
	cJSON *obj = new_frame(env->event);
	bool ok = obj != NULL;
	if (ok && s->role == OMR_WS_ROLE_AGENT)
		ok = add_str(obj, "conversation_id", env->conv);
	else if (ok && typing)
		ok = add_str(obj, "from", "agent");
	else if (ok)
		ok = add_int_attr(obj, "position", env, "position") &&
		     add_int_attr(obj, "eta_ms", env, "eta_ms");
	return finish(obj, ok);
}

static char *render_customer_item(const omr_envelope_t *env)
{
	bool msg = strcmp(env->event, "message") == 0;
	cJSON *obj = new_frame(msg ? "message" : "event");
	bool ok = obj && add_str(obj, "seq", env->seq);
	if (ok && msg)
		ok = add_str(obj, "id", env->msgid) &&
		     add_str(obj, "from", env->from ? omr_role_name(env->from) : NULL) &&
		     add_str(obj, "name", env->name) && add_str(obj, "text", env->text);
	else if (ok)
		ok = add_str(obj, "event", env->event) && add_str(obj, "name", env->name) &&
		     add_str(obj, "reason", env->reason); /* closed: max-wait, no-queue */
	ok = ok && add_ts(obj, env);
	return finish(obj, ok);
}

/* An agent reads an earlier conversation ("history"), or a supervisor a
 * conversation of its team ("monitor"): one transcript entry of it, in a
 * frame of that type. Not part of the agent's inbox (its seq is that
 * conversation's), so not acknowledged. */
static char *render_transcript_item(const omr_envelope_t *env)
{
	cJSON *obj = new_frame(env->event);
	bool ok = obj && add_str(obj, "conversation_id", env->conv) &&
	          add_str(obj, "seq", env->seq) &&
	          add_str(obj, "kind", omr_envelope_attr(env, "kind")) &&
	          add_str(obj, "event", omr_envelope_attr(env, "event")) &&
	          add_str(obj, "from", env->from ? omr_role_name(env->from) : NULL) &&
	          add_str(obj, "name", env->name) && add_str(obj, "text", env->text) &&
	          add_ts(obj, env);
	return finish(obj, ok);
}

/* {"chat":N,"email":N,"voice":N} from the attributes PREFIXchat, ... */
static bool add_channels(cJSON *obj, const char *key, const omr_envelope_t *env, const char *prefix)
{
	cJSON *o = cJSON_AddObjectToObject(obj, key);
	bool ok = o != NULL;
	for (int ch = OMR_CHANNEL_NONE + 1; ok && ch < OMR_CHANNEL_COUNT; ch++) {
		char attr[32];
		snprintf(attr, sizeof(attr), "%s%s", prefix, omr_channel_name((omr_channel_t)ch));
		ok = add_int_attr(o, omr_channel_name((omr_channel_t)ch), env, attr);
	}
	return ok;
}

/* A supervisor's team snapshot: one frame per supervised agent (kind
 * "agent") and per conversation it holds (kind "conversation"). Not an
 * inbox item: no seq, not acknowledged. */
static char *render_team_item(const omr_envelope_t *env)
{
	const char *kind = omr_envelope_attr(env, "kind");
	bool agent = kind && strcmp(kind, "agent") == 0;
	cJSON *obj = new_frame("team");
	bool ok = obj && add_str(obj, "kind", agent ? "agent" : "conversation") &&
	          add_str(obj, "agent_id", env->agent);
	if (ok && agent)
		ok = add_str(obj, "name", env->name) &&
		     add_str(obj, "presence", env->presence ? env->presence : "offline") &&
		     add_str(obj, "reason", env->reason) &&
		     add_channels(obj, "load", env, "load_") &&
		     add_channels(obj, "capacity", env, "cap_");
	else if (ok)
		ok = add_str(obj, "conversation_id", env->conv) &&
		     add_str(obj, "customer_name", env->name) &&
		     add_str(obj, "language", env->lang) &&
		     add_str(obj, "queue", omr_envelope_attr(env, "queue")) &&
		     add_str(obj, "state", omr_envelope_attr(env, "state")) &&
		     add_str(obj, "tenant", env->tenant);
	return finish(obj, ok);
}

static char *render_agent_item(const omr_envelope_t *env)
{
	const char *ev = env->event;
	bool assigned = strcmp(ev, "assigned") == 0, msg = strcmp(ev, "message") == 0;
	bool closed = strcmp(ev, "closed") == 0, offer = strcmp(ev, "offer") == 0;
	bool revoked = strcmp(ev, "revoked") == 0, presence = strcmp(ev, "presence") == 0;
	cJSON *obj =
	        new_frame(assigned || msg || closed || offer || revoked || presence ? ev : "event");
	bool ok =
	        obj && add_str(obj, "seq", env->seq) && add_str(obj, "conversation_id", env->conv);
	if (ok && presence) /* set by the router, the site or this desktop */
		ok = add_str(obj, "presence", omr_envelope_attr(env, "presence")) &&
		     (!env->reason || !env->reason[0] || add_str(obj, "reason", env->reason));
	else if (ok && (assigned || offer))
		ok = add_str(obj, "language", env->lang) &&
		     add_str(obj, "customer_name", env->name) &&
		     add_str(obj, "tenant", env->tenant) &&
		     add_str(obj, "queue", omr_envelope_attr(env, "queue")) &&
		     (!offer || add_int_attr(obj, "expires_ms", env, "expires_ms")) &&
		     (!assigned ||
		      (add_str(obj, "customer_id", omr_envelope_attr(env, "customer")) &&
		       add_list(obj, "history", omr_envelope_attr(env, "history"))));
	else if (ok && (revoked || closed))
		ok = add_str(obj, "reason", env->reason) &&
		     (!closed || (add_int_attr(obj, "wrapup_until_ms", env, "wrapup_until_ms") &&
		                  add_str(obj, "note", env->text))); /* (reason admin) */
	else if (ok && msg)
		ok = add_str(obj, "id", env->msgid) &&
		     add_str(obj, "from", env->from ? omr_role_name(env->from) : NULL) &&
		     add_str(obj, "name", env->name) && add_str(obj, "text", env->text);
	else if (ok) /* e.g. "transferred": name = who passed it on, text = the note */
		ok = add_str(obj, "event", ev) && add_str(obj, "name", env->name) &&
		     add_str(obj, "text", env->text);
	ok = ok && add_ts(obj, env);
	return finish(obj, ok);
}

/* What an agent is told when its session was ended without a new login
 * (the reason codes of omr_delivery_ended). */
static const char *logged_out_reason(const char *why)
{
	static const struct {
		const char *why, *text;
	} texts[] = {
	        {"token-revoked", "this agent's token was revoked"},
	        {"token-reissued", "a new token was issued for this agent"},
	        {"agent-removed", "this agent was removed"},
	        {"agent-unknown", "this agent no longer exists (removed, or Redis lost its data)"},
	};
	for (size_t i = 0; why && i < sizeof(texts) / sizeof(texts[0]); i++)
		if (strcmp(why, texts[i].why) == 0)
			return texts[i].text;
	return "this session was ended";
}

bool omr_ws_deliver_is_acked(const omr_envelope_t *env)
{
	static const char *const not_items[] = {"typing",   "history",    "monitor", "team",
	                                        "replaced", "logged-out", "presence"};
	if (!env || !env->event)
		return false;
	for (size_t i = 0; i < sizeof(not_items) / sizeof(not_items[0]); i++)
		if (strcmp(env->event, not_items[i]) == 0)
			return false;
	return true;
}

int omr_ws_render_deliver(const omr_ws_session_t *s, const omr_envelope_t *env, char **out,
                          omr_ws_error_t *err)
{
	*out = NULL;
	memset(err, 0, sizeof(*err));
	if (!env || env->type != OMR_ENV_DELIVER || !env->event)
		return -EINVAL;
	if (s->role == OMR_WS_ROLE_AGENT && strcmp(env->event, "replaced") == 0) {
		omr_ws_error_set(err, "replaced", "a newer login for this agent took over",
		                 OMR_WS_CLOSE_POLICY);
		return 0;
	}
	if (s->role == OMR_WS_ROLE_AGENT && strcmp(env->event, "logged-out") == 0) {
		omr_ws_error_set(err, "logged-out", logged_out_reason(env->text),
		                 OMR_WS_CLOSE_POLICY);
		return 0;
	}
	bool agent = s->role == OMR_WS_ROLE_AGENT;
	if (strcmp(env->event, "typing") == 0 || (!agent && strcmp(env->event, "position") == 0))
		*out = render_notice(s, env);
	else if (agent &&
	         (strcmp(env->event, "history") == 0 || strcmp(env->event, "monitor") == 0))
		*out = render_transcript_item(env);
	else if (agent && strcmp(env->event, "team") == 0)
		*out = render_team_item(env);
	else
		*out = agent ? render_agent_item(env) : render_customer_item(env);
	return *out ? 0 : -ENOMEM;
}
