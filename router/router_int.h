/* router_int.h - the router's private state, shared by router.c (requests)
 * and delivery.c (sessions and stream reads). Loop thread only. */
#ifndef OMR_ROUTER_ROUTER_INT_H
#define OMR_ROUTER_ROUTER_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "ackcache.h"
#include "omnirouter/health.h"
#include "bus.h"
#include "hmap.h"
#include "router.h"
#include "store.h"

#define OMR_ACK_BATCH_MAX 64        /* seqs in attr "more" of one agent.ack */
#define OMR_SEQ_MAX 48              /* "18446744073709551615-18446744073709551615" */
#define OMR_READ_COUNT 200          /* stream entries per read */
#define OMR_SESSION_MAX 160         /* "instance:conn" */
#define OMR_HISTORY_RECHECK_MS 5000 /* agents: re-read the pending history at least this often */
#define OMR_INBOX_TRIM_MS 60000     /* agents: drop acknowledged inbox items at most this often */
#define OMR_MSG_BATCH 64            /* chat messages per omr_conv_messages call */
/* Acks remembered for resends: more than the requests of one resend window
 * (bus.ack_timeout_ms x bus.max_attempts) at a few thousand per second. */
#define OMR_ACK_CACHE_SLOTS 65536

/* One connection on this instance that receives items from a stream: an
 * agent desktop (its inbox, through the consumer group) or a customer (the
 * conversation's transcript, from a cursor). */
typedef struct omr_watch {
	struct omr_watch *next; /* customers: other connections of the same conv */
	bool is_agent;
	char *group, *id; /* agent id or conversation id */
	char *session;    /* agents: the session string stored in Redis */
	omr_bus_peer_t peer;
	uint64_t conn;
	char cursor[OMR_SEQ_MAX]; /* last stream id delivered */
	bool reading, dirty, removed;
	bool history;              /* agents: read the whole pending history next time */
	bool reread;               /* agents: asked to ("h:AGENT"): history at the next read */
	char hcursor[OMR_SEQ_MAX]; /* agents: how far the history pass being made has read */
	uint64_t history_ms;       /* agents: when the history was last read (periodic page) */
	uint64_t trim_ms; /* agents: when acknowledged items were last dropped (0: never) */
	bool waiting;     /* customers: the conversation waits for an agent (positions) */
	struct omr_router *router; /* set while a position or presence read is in flight */
	unsigned refs;
} omr_watch_t;

/* A failure that lasts is logged once a minute, with how many happened since
 * the last line (omr_rate_warn). */
typedef struct omr_rate_warn {
	uint64_t warned_ms; /* when it was last logged; 0: not failing */
	uint64_t count;     /* failures since that line */
} omr_rate_warn_t;

struct omr_router {
	uv_loop_t *loop;
	const omr_config_t *cfg;
	omr_store_t *store;
	omr_bus_server_t *bus;
	omr_router_state_fn on_state;
	void *ud;
	char instance[96];
	char node[72]; /* the instance's stable part: daemon.instance_name or the host name */
	uint64_t next_id;
	omr_hmap_t *agents;        /* "group/agent" -> omr_watch_t */
	omr_hmap_t *customers;     /* "group/conv" -> omr_watch_t list */
	omr_hmap_t *inflight;      /* "peer:id" -> (void *)1: requests being handled */
	omr_ackcache_t *acks;      /* "peer:id" -> the ack sent: answers resends */
	size_t reads;              /* stream reads in flight */
	omr_rate_warn_t tick_warn; /* failed timer ticks */
	/* Redis refusing writes (OOM, MISCONF, READONLY, ...): its last refusal, "" once
	 * a timer tick (a write) worked again; and its log line's pacing. */
	char refusal[160];
	omr_rate_warn_t refusal_warn;
	omr_health_t health;   /* as last told to on_state */
	uv_timer_t *tick;      /* fires due Redis timers (omr_tick) */
	uv_timer_t *heartbeat; /* vouches for the desktops connected here */
	uv_timer_t *positions; /* tells waiting customers their place */
	bool ticking;          /* an omr_tick call is in flight */
	/* conv.message requests of this loop turn, not yet sent (msgbatch.c) */
	struct omr_request *msgs[OMR_MSG_BATCH];
	size_t nmsgs;
	uv_prepare_t *msgflush; /* sends them before the loop waits */
};

/* delivery.c */
void omr_delivery_on_notify(omr_router_t *r, const char *channel, size_t chlen, const char *msg,
                            size_t len);
void omr_delivery_resync(omr_router_t *r);
omr_watch_t *omr_delivery_add_agent(omr_router_t *r, const char *group, const char *agent,
                                    const char *session, const omr_bus_peer_t *peer, uint64_t conn);
omr_watch_t *omr_delivery_find_agent(omr_router_t *r, const char *group, const char *agent);
void omr_delivery_remove_agent(omr_router_t *r, omr_watch_t *w);
/* The agent's session `session` ended: a newer login replaced it (reason
 * NULL), or it was logged out (reason: token-revoked, token-reissued,
 * agent-removed, agent-unknown). If this instance holds that
 * desktop, tell it ("replaced", or "logged-out" with the reason in text)
 * and forget it. */
void omr_delivery_ended(omr_router_t *r, const char *group, const char *agent, const char *session,
                        const char *reason);
int omr_delivery_add_customer(omr_router_t *r, const char *group, const char *conv,
                              const char *cursor, const omr_bus_peer_t *peer, uint64_t conn,
                              bool waiting);
/* Tells every waiting customer on this instance its queue position. */
void omr_delivery_poll_positions(omr_router_t *r);
void omr_delivery_remove_customer(omr_router_t *r, const char *group, const char *conv,
                                  uint64_t conn);
void omr_delivery_free_all(omr_router_t *r);
/* Drops what the agent's desktop acknowledged from its inbox, and the pending
 * items its cap dropped (omr_inbox_trim), after its acks and when its inbox
 * is read, at most every OMR_INBOX_TRIM_MS: Redis memory stays with what
 * is pending, not the inbox's last 10,000 items, even for a desktop that
 * never acks. */
void omr_delivery_trim_inbox(omr_router_t *r, omr_watch_t *w);

/* One request from an adapter while it is handled (request.c). */
typedef struct omr_request {
	omr_router_t *r;
	omr_bus_peer_t peer;
	omr_envelope_t *env;
	char inflight_key[2 * 255 + 24];
	char session[OMR_SESSION_MAX];
} omr_request_t;

void omr_request_free(omr_request_t *q);
/* Acknowledges q with status; extra (may be NULL) carries reply fields and
 * is consumed. Frees q. */
void omr_request_reply(omr_request_t *q, int status, omr_envelope_t *extra);
/* true when the reply is a success to go on with; otherwise q was answered
 * (a refusal) or dropped (outcome unknown) and freed. */
bool omr_request_ok(omr_request_t *q, const redisReply *rep);

/* router.c: Redis refused a call before running it (nothing was written):
 * err is its error text. Logged at most once a minute; the instance is not
 * ready (/readyz, systemd STATUS) until a timer tick works again. */
bool omr_router_is_refusal(const char *err);
void omr_router_refused(omr_router_t *r, const char *err);
/* FCALL fn with the group prefix as its key and nargs arguments. */
int omr_request_fcall(omr_request_t *q, omr_store_reply_fn cb, const char *fn, int nargs,
                      const char **args, const size_t *lens);
void omr_request_on_simple(void *ud, const redisReply *rep);
/* A stored chat message's reply (its log id, or an error): the ack. */
void omr_request_on_message(void *ud, const redisReply *rep);
/* The agent session of the request's connection on this instance, or NULL. */
omr_watch_t *omr_request_agent(omr_request_t *q);
const char *omr_str_or_empty(const char *s);

/* handlers_conv.c */
int omr_handle_conv_rate(omr_request_t *q);
int omr_handle_conv_typing(omr_request_t *q);
int omr_handle_conv_transfer(omr_request_t *q);
int omr_handle_conv_history(omr_request_t *q);
/* Answers a transcript read (conv.history, conv.monitor): each entry as a
 * "history" or "monitor" deliver, then the ack that ends them. */
void omr_request_on_transcript(void *ud, const redisReply *rep);

/* handlers_supervisor.c */
int omr_handle_agent_team(omr_request_t *q);
int omr_handle_conv_monitor(omr_request_t *q);

/* msgbatch.c */
/* Queues a conv.message request for this loop turn's omr_conv_messages call.
 * 0, or -EAGAIN when Redis is not ready (nothing queued). */
int omr_msgbatch_add(omr_request_t *q);
/* Sends the queued messages now (before a request that must follow them). */
void omr_msgbatch_flush(omr_router_t *r);

/* handlers.c */
void omr_router_on_request(void *ud, const omr_bus_peer_t *peer, omr_envelope_t **envp);

/* router.c */
void omr_router_vouch(omr_router_t *r, const omr_watch_t *w);
void omr_router_send(omr_router_t *r, const omr_bus_peer_t *peer, omr_envelope_t *env);
void omr_router_group_prefix(const char *group, char *out, size_t outsize);

#endif
