/* request.c - one request from an adapter while it is handled: the Redis
 * Function call it becomes, and its acknowledgement. Loop thread only. */
#include "router_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "omnirouter/error.h"
#include "omnirouter/log.h"
#include "omnirouter/util.h"

void omr_request_free(omr_request_t *q)
{
	omr_hmap_del(q->r->inflight, q->inflight_key);
	omr_envelope_destroy(&q->env);
	free(q);
}

/* Acknowledges q with status; extra (may be NULL) carries reply fields and
 * is consumed. Frees q. */
void omr_request_reply(omr_request_t *q, int status, omr_envelope_t *extra)
{
	omr_envelope_t *ack = extra ? extra : omr_envelope_new(OMR_ENV_ACK);
	char *buf = NULL;
	size_t len = 0;
	if (ack) {
		ack->type = OMR_ENV_ACK;
		ack->id = ++q->r->next_id;
		ack->re = q->env->id;
		ack->conn = q->env->conn;
		ack->status = status;
		if (omr_envelope_encode(ack, (size_t)q->r->cfg->bus_max_frame_bytes, &buf, &len,
		                        NULL) == 0) {
			omr_bus_server_send_frame(q->r->bus, &q->peer, buf, len);
			/* A resend of this request gets these same bytes. */
			omr_ackcache_put(q->r->acks, q->inflight_key, buf, len);
		}
		free(buf);
		omr_envelope_destroy(&ack);
	}
	omr_request_free(q);
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
	        {"STALE ", OMR_ERR_REPLACED},
	        {"TOOMANY ", -ENOSPC},
	        /* (before BADARG: a daemon of before this one maps it as any BADARG) */
	        {"BADARG that agent is not logged in", OMR_ERR_AGENT_AWAY},
	        {"BADARG ", -EINVAL},
	        {"BUSY ", -EBUSY},
	        {"NOQUEUE ", -EINVAL},
	};
	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (strncmp(msg, map[i].code, strlen(map[i].code)) == 0)
			return map[i].status;
	return 0;
}

/* An id as it may go in a log line, "-" for none or anything else. */
static const char *loggable_id(const char *id)
{
	return id && omr_id_is_valid(id, OMR_ENV_ID_MAX) ? id : "-";
}

/* Common reply handling: returns true when the caller should go on with a
 * successful reply; otherwise q has been answered or dropped and freed. */
bool omr_request_ok(omr_request_t *q, const redisReply *rep)
{
	if (!rep) {
		/* Outcome unknown: no ack, the adapter resends. */
		omr_request_free(q);
		return false;
	}
	if (rep->type == REDIS_REPLY_ERROR) {
		if (omr_router_is_refusal(rep->str)) {
			/* Not run, so nothing stored: a definite "unavailable", at
			 * once, rather than resends until the adapter gives up. */
			omr_router_refused(q->r, rep->str);
			omr_request_reply(q, OMR_ERR_REDIS, NULL);
			return false;
		}
		int status = error_status(rep->str);
		if (status == 0) {
			omr_error("router", "redis error type=%s error=\"%s\"",
			          omr_env_type_name(q->env->type), rep->str);
			omr_request_free(q);
			return false;
		}
		omr_info("router", "refused type=%s conn=%llu agent=%s conv=%s reason=\"%s\"",
		         omr_env_type_name(q->env->type), (unsigned long long)q->env->conn,
		         loggable_id(q->env->agent), loggable_id(q->env->conv), rep->str);
		omr_request_reply(q, status, NULL);
		return false;
	}
	return true;
}

int omr_request_fcall(omr_request_t *q, omr_store_reply_fn cb, const char *fn, int nargs,
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

const char *omr_str_or_empty(const char *s)
{
	return s ? s : "";
}

/* A reply that carries nothing back: ack 0 once Redis answered. */
void omr_request_on_simple(void *ud, const redisReply *rep)
{
	omr_request_t *q = ud;
	if (omr_request_ok(q, rep))
		omr_request_reply(q, 0, NULL);
}

/* The request must come from the connection this instance knows as the
 * agent's current desktop. */
omr_watch_t *omr_request_agent(omr_request_t *q)
{
	const omr_envelope_t *e = q->env;
	if (!omr_id_is_valid(e->agent, OMR_ENV_ID_MAX))
		return NULL;
	omr_watch_t *w = omr_delivery_find_agent(q->r, q->r->cfg->routing_group, e->agent);
	return w && w->conn == e->conn ? w : NULL;
}
