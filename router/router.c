/* router.c - one instance's routing engine: its lifecycle, the rules it
 * pushes to Redis, the timer ticks and the heartbeats for its desktops.
 * Requests are handled in handlers.c, deliveries in delivery.c. Loop thread
 * only. */
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

/* ---- lifecycle ---------------------------------------------------------- */

/* ---- rules and timers --------------------------------------------------- */

static void on_rules_loaded(void *ud, const redisReply *rep)
{
	if (rep && rep->type == REDIS_REPLY_ERROR)
		omr_error("router", "routing rules refused by redis error=\"%s\"", rep->str);
	else if (rep && rep->type == REDIS_REPLY_STRING && strcmp(rep->str, "loaded") == 0)
		omr_info("router", "routing rules loaded");
	else if (rep && rep->type == REDIS_REPLY_STRING && strncmp(rep->str, "replaced ", 9) == 0)
		omr_warn("router",
		         "routing rules loaded over different ones (version and instance: %s): "
		         "instances sharing a Redis must share one configuration; if they are "
		         "being reloaded one by one, reload the others",
		         rep->str + 9);
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
	/* The stable name: one instance restarted with a new configuration
	 * replaces its own rules without a warning. */
	const char *argv[] = {"FCALL", "omr_rules_load", "1", prefix, json, r->node};
	size_t lens[] = {5, 14, 1, strlen(prefix), strlen(json), strlen(r->node)};
	omr_store_command(r->store, on_rules_loaded, r, 6, argv, lens);
	cJSON_free(json);
}

#define WARN_EVERY_MS 60000 /* a failure that lasts is logged at most this often */

/* What to tell the daemon: Redis down beats refusing, which beats ready. */
static void update_health(omr_router_t *r)
{
	omr_health_t h = OMR_HEALTH_READY;
	if (!omr_store_is_ready(r->store))
		h = r->health == OMR_HEALTH_STARTING ? OMR_HEALTH_STARTING : OMR_HEALTH_STORE_DOWN;
	else if (r->refusal[0])
		h = OMR_HEALTH_STORE_REFUSES;
	if (h == r->health)
		return;
	r->health = h;
	if (r->on_state)
		r->on_state(r->ud, h, h == OMR_HEALTH_STORE_REFUSES ? r->refusal : NULL);
}

bool omr_router_is_refusal(const char *err)
{
	/* Each is Redis refusing the call before it ran: out of memory, a failed
	 * RDB save with stop-writes-on-bgsave-error, a replica, a dataset still
	 * loading, a replica cut from its master, too few replicas, a script
	 * running too long. (Our own codes never look like these.) */
	static const char *const codes[] = {"OOM ",        "MISCONF ",    "READONLY ",  "LOADING ",
	                                    "MASTERDOWN ", "NOREPLICAS ", "BUSY Redis "};
	for (size_t i = 0; err && i < sizeof(codes) / sizeof(codes[0]); i++)
		if (strncmp(err, codes[i], strlen(codes[i])) == 0)
			return true;
	return false;
}

/* Counts a failure; true when it is to be logged now (the first, then once a
 * minute), with w->count failures (then counted from zero again). */
static bool rate_warn(omr_rate_warn_t *w, uint64_t now, uint64_t *count)
{
	w->count++;
	if (w->warned_ms && now - w->warned_ms < WARN_EVERY_MS)
		return false;
	*count = w->count;
	w->warned_ms = now ? now : 1;
	w->count = 0;
	return true;
}

/* The failure is over: true when it had been logged (say so), with the count
 * since that line. */
static bool rate_warn_end(omr_rate_warn_t *w, uint64_t *count)
{
	bool was = w->warned_ms != 0;
	*count = w->count;
	*w = (omr_rate_warn_t){0};
	return was;
}

void omr_router_refused(omr_router_t *r, const char *err)
{
	uint64_t n;
	snprintf(r->refusal, sizeof(r->refusal), "%s", err);
	/* (a floor's requests would log one line each) */
	if (rate_warn(&r->refusal_warn, uv_now(r->loop), &n))
		omr_error("router",
		          "redis refuses writes error=\"%s\" refused=%llu (requests are answered "
		          "unavailable until it takes writes again)",
		          err, (unsigned long long)n);
	update_health(r);
}

/* A write worked: Redis takes writes again, if it had refused them. */
static void writes_work(omr_router_t *r)
{
	uint64_t n;
	if (!r->refusal[0])
		return;
	if (rate_warn_end(&r->refusal_warn, &n))
		omr_info("router", "redis takes writes again refused=%llu", (unsigned long long)n);
	r->refusal[0] = '\0';
	update_health(r);
}

static void on_tick_reply(void *ud, const redisReply *rep)
{
	omr_router_t *r = ud;
	r->ticking = false;
	uint64_t n;
	if (rep && rep->type == REDIS_REPLY_ERROR && omr_router_is_refusal(rep->str)) {
		omr_router_refused(r, rep->str);
		return;
	}
	if (rep && rep->type == REDIS_REPLY_ERROR) {
		/* (one line per tick_ms would flood the journal) */
		if (rate_warn(&r->tick_warn, uv_now(r->loop), &n))
			omr_warn("router", "timer tick failed error=\"%s\" failures=%llu", rep->str,
			         (unsigned long long)n);
		return;
	}
	if (rep && rate_warn_end(&r->tick_warn, &n))
		omr_info("router", "timer ticks work again");
	if (rep)
		writes_work(r);
	if (rep && rep->type == REDIS_REPLY_INTEGER && rep->integer > 0)
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
	/* (the instance: it is alive, for the customers' connections it holds;
	 * a pause in its own ticks longer than a third of the silence after
	 * which an instance is taken for stopped, with nobody else ticking,
	 * means Redis stalled, and every silence counts again from then:
	 * 60_timers.lua) */
	char pause[24];
	snprintf(pause, sizeof(pause), "%lld",
	         (long long)(r->cfg->routing_heartbeat_timeout_s * 1000 + 10000) / 3);
	const char *argv[] = {"FCALL", "omr_tick", "1", prefix, r->instance, pause};
	size_t lens[] = {5, 8, 1, strlen(prefix), strlen(r->instance), strlen(pause)};
	if (omr_store_command(r->store, on_tick_reply, r, 6, argv, lens) == 0)
		r->ticking = true;
}

/* Heartbeats: this instance vouches for every desktop connected to it, so
 * the agents of an instance that died go offline ("lost") once
 * routing.heartbeat_timeout_s passes, and their work is re-queued after the
 * grace period. A desktop that closes is reported at once (agent.gone). */
typedef struct vouch {
	omr_router_t *r;
	char group[OMR_ENV_ID_MAX + 1], agent[OMR_ENV_ID_MAX + 1];
	char session[OMR_SESSION_MAX];
} vouch_t;

/* "replaced" (Redis knows a newer login) or "logged-out REASON" (no login
 * now, or no such agent): a desktop that missed the notification (this
 * instance was resubscribing) learns it here. */
static void on_vouched(void *ud, const redisReply *rep)
{
	vouch_t *v = ud;
	if (rep && rep->type == REDIS_REPLY_STRING && strcmp(rep->str, "replaced") == 0)
		omr_delivery_ended(v->r, v->group, v->agent, v->session, NULL);
	else if (rep && rep->type == REDIS_REPLY_STRING &&
	         strncmp(rep->str, "logged-out ", 11) == 0)
		omr_delivery_ended(v->r, v->group, v->agent, v->session, rep->str + 11);
	free(v);
}

void omr_router_vouch(omr_router_t *r, const omr_watch_t *w)
{
	char prefix[OMR_ENV_ID_MAX + 8];
	vouch_t *v = calloc(1, sizeof(*v));
	if (!v)
		return;
	v->r = r;
	snprintf(v->group, sizeof(v->group), "%s", w->group);
	snprintf(v->agent, sizeof(v->agent), "%s", w->id);
	snprintf(v->session, sizeof(v->session), "%s", w->session);
	omr_router_group_prefix(w->group, prefix, sizeof(prefix));
	/* This instance's own timeout: it vouches every third of it. */
	char timeout[24];
	snprintf(timeout, sizeof(timeout), "%lld", (long long)r->cfg->routing_heartbeat_timeout_s);
	const char *argv[] = {"FCALL", "omr_agent_seen", "1", prefix, w->id, w->session, timeout};
	size_t lens[7];
	for (int i = 0; i < 7; i++)
		lens[i] = strlen(argv[i]);
	if (omr_store_command(r->store, on_vouched, v, 7, argv, lens) != 0)
		free(v);
}

static void vouch_one(void *ud, const char *key, void *value)
{
	omr_router_vouch(ud, value);
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

static void on_positions(uv_timer_t *t)
{
	omr_delivery_poll_positions(t->data);
}

static void start_positions(omr_router_t *r)
{
	uint64_t ms = (uint64_t)r->cfg->chat_position_interval_s * 1000u;
	if (ms)
		uv_timer_start(r->positions, on_positions, ms, ms);
	else
		uv_timer_stop(r->positions);
}

static void on_store_state(void *ud, bool ready)
{
	omr_router_t *r = ud;
	if (ready) {
		/* Vouch first: after an outage longer than the heartbeat timeout,
		 * this instance's first tick would otherwise take its own connected
		 * desktops for lost (agent_seen also restores one that another
		 * instance's tick took for lost meanwhile). */
		omr_hmap_each(r->agents, vouch_one, r);
		push_rules(r);
		/* Then say this instance is back before anything of its customers
		 * (a connection that closed meanwhile) is judged by it. */
		on_tick(r->tick);
		omr_delivery_resync(r);
	}
	update_health(r);
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
		snprintf(r->node, sizeof(r->node), "%s", r->cfg->instance_name);
		snprintf(r->instance, sizeof(r->instance), "%s-%s", r->cfg->instance_name, rnd);
		return;
	}
	char host[64] = "host";
	gethostname(host, sizeof(host) - 1);
	host[sizeof(host) - 1] = '\0';
	if (!omr_id_is_valid(host, sizeof(host)))
		snprintf(host, sizeof(host), "host");
	snprintf(r->node, sizeof(r->node), "%s", host);
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
	r->acks = omr_ackcache_new(OMR_ACK_CACHE_SLOTS);
	omr_store_callbacks_t cbs = {
	        .on_state = on_store_state, .on_message = on_store_message, .ud = r};
	r->store = omr_store_new(loop, cfg, &cbs);
	int rc = -ENOMEM;
	if (!r->agents || !r->customers || !r->inflight || !r->acks || !r->store)
		goto fail;
	rc = omr_bus_server_start(loop, zctx, cfg, omr_router_on_request, r, &r->bus);
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
	r->positions = calloc(1, sizeof(*r->positions));
	if (!r->positions) {
		rc = -ENOMEM;
		goto fail;
	}
	uv_timer_init(loop, r->positions);
	r->positions->data = r;
	start_positions(r);
	r->heartbeat = calloc(1, sizeof(*r->heartbeat));
	if (!r->heartbeat) {
		rc = -ENOMEM;
		goto fail;
	}
	uv_timer_init(loop, r->heartbeat);
	r->heartbeat->data = r;
	uv_timer_start(r->heartbeat, on_heartbeat, heartbeat_interval_ms(cfg),
	               heartbeat_interval_ms(cfg));
	r->msgflush = calloc(1, sizeof(*r->msgflush));
	if (!r->msgflush) {
		rc = -ENOMEM;
		goto fail;
	}
	uv_prepare_init(loop, r->msgflush);
	r->msgflush->data = r;
	omr_store_start(r->store);
	omr_info("router", "started instance=%s group=%s", r->instance, cfg->routing_group);
	*out = r;
	return 0;
fail:
	omr_router_close(&r);
	return rc;
}

/* A new period applies now, not after one more run at the old one (a
 * reload from 10 s to 100 ms would otherwise wait out the 10 s). */
static void timer_set_period(uv_timer_t *t, uint64_t period_ms)
{
	if (uv_timer_get_repeat(t) == period_ms)
		return;
	uv_timer_set_repeat(t, period_ms);
	uv_timer_again(t);
}

void omr_router_reload(omr_router_t *r, const omr_config_t *cfg)
{
	r->cfg = cfg;
	omr_store_reload(r->store, cfg);
	timer_set_period(r->tick, (uint64_t)cfg->routing_tick_ms);
	timer_set_period(r->heartbeat, heartbeat_interval_ms(cfg));
	start_positions(r);
	if (omr_store_is_ready(r->store))
		push_rules(r);
}

size_t omr_router_busy(const omr_router_t *r)
{
	return (r->store ? omr_store_inflight(r->store) : 0) + r->reads + r->nmsgs;
}

static void free_request(void *ud, const char *key, void *value)
{
	omr_request_t *q = value;
	omr_envelope_destroy(&q->env);
	free(q);
}

static void free_handle(uv_handle_t *h)
{
	free(h);
}

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
	if (r->positions)
		uv_close((uv_handle_t *)r->positions, free_handle);
	if (r->msgflush)
		uv_close((uv_handle_t *)r->msgflush, free_handle);
	r->nmsgs = 0; /* still in inflight, freed below: never sent, never acked */
	omr_bus_server_close(&r->bus);
	/* Closing the store runs every pending callback with a NULL reply,
	 * which frees those requests and reads. */
	omr_store_close(&r->store);
	omr_delivery_free_all(r);
	if (r->inflight)
		omr_hmap_each(r->inflight, free_request, NULL);
	omr_hmap_destroy(&r->inflight);
	omr_ackcache_destroy(&r->acks);
	omr_hmap_destroy(&r->agents);
	omr_hmap_destroy(&r->customers);
	free(r);
}
