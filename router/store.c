/* store.c - Redis connections, watchdog and reconnect. Loop thread only.
 *
 * hiredis async has no timeouts and its connect callback fires even when
 * Redis is frozen, so "ready" means: functions loaded and a PING answered on
 * the command connection, and the subscription confirmed. A PING unanswered
 * for ping_timeout_ms, or either connection dropping, resets both and
 * reconnects from a timer with exponential backoff. Contexts are freed only
 * from timer callbacks, never inside their own callbacks. */
#include "store.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/async.h>

#include "omnirouter/log.h"
#include "omnirouter/util.h"
#include "redis_uv.h"

#define NOTIFY_PATTERN "omr:*:notify"
/* The stream node size omnirouter recommends (README.md). */
#define OMR_STREAM_NODE_MAX_BYTES 1024

struct omr_store {
	uv_loop_t *loop;
	omr_store_callbacks_t cbs;
	char *host, *username, *password;
	int port, db;
	uint64_t ping_interval_ms, ping_timeout_ms, backoff_min_ms, backoff_max_ms;

	redisAsyncContext *cmd, *sub;
	bool cmd_ok, sub_ok, ready, stopping, freeing;
	uint64_t phase_start, ping_sent;
	bool ping_outstanding;
	bool tuning_checked; /* stream-node-max-bytes, maxmemory-policy looked at (once) */
	uint64_t backoff_ms;
	size_t inflight;
	unsigned open_handles;
	uv_timer_t watchdog, reconnect;
};

typedef struct pending {
	omr_store_t *s;
	omr_store_reply_fn cb;
	void *ud;
} pending_t;

static void schedule_reset(omr_store_t *s, const char *why);

static void set_ready(omr_store_t *s, bool ready)
{
	if (s->ready == ready)
		return;
	s->ready = ready;
	if (ready) {
		s->backoff_ms = s->backoff_min_ms;
		omr_info("redis", "ready host=%s port=%d", s->host, s->port);
	}
	if (s->cbs.on_state)
		s->cbs.on_state(s->cbs.ud, ready);
}

/* Ready when both connections answered, unless a reset is pending: the
 * replies of a connection whose AUTH, SELECT or FUNCTION LOAD failed still
 * come in (PING pipelined after them), and taking that connection for ready
 * would send work to the wrong database and restart the backoff at its
 * minimum on every attempt. */
static void check_ready(omr_store_t *s)
{
	if (s->cmd_ok && s->sub_ok && !uv_is_active((uv_handle_t *)&s->reconnect))
		set_ready(s, true);
}

static void on_reply(redisAsyncContext *ac, void *r, void *priv)
{
	pending_t *p = priv;
	p->s->inflight--;
	if (p->cb)
		p->cb(p->ud, r);
	free(p);
}

static int send_argv(omr_store_t *s, redisAsyncContext *ac, omr_store_reply_fn cb, void *ud,
                     int argc, const char **argv, const size_t *lens)
{
	pending_t *p = malloc(sizeof(*p));
	if (!p)
		return -ENOMEM;
	*p = (pending_t){.s = s, .cb = cb, .ud = ud};
	if (redisAsyncCommandArgv(ac, on_reply, p, argc, argv, lens) != REDIS_OK) {
		free(p);
		return -EIO;
	}
	s->inflight++;
	return 0;
}

static int send_cmd(omr_store_t *s, redisAsyncContext *ac, omr_store_reply_fn cb, int argc,
                    const char **argv)
{
	size_t lens[8];
	for (int i = 0; i < argc; i++)
		lens[i] = strlen(argv[i]);
	return send_argv(s, ac, cb, s, argc, argv, lens);
}

static bool reply_failed(omr_store_t *s, const redisReply *r, const char *what)
{
	if (r && r->type != REDIS_REPLY_ERROR)
		return false;
	if (r)
		omr_error("redis", "%s failed: %s", what, r->str);
	/* (no reply: the connection failed; its error says why, e.g. a port
	 * that does not speak Redis) */
	schedule_reset(s, !r && s->cmd && s->cmd->err ? s->cmd->errstr : what);
	return true;
}

static void on_setup_reply(void *ud, const redisReply *r)
{
	omr_store_t *s = ud;
	reply_failed(s, r, "connection setup (AUTH/SELECT/FUNCTION LOAD)");
}

/* The value of a CONFIG GET reply, or NULL (a Redis that refuses CONFIG, a
 * managed one or an ACL user without it, is not an error: the check is skipped, said once at
 * info). */
static const char *config_value(const redisReply *r)
{
	static bool refusal_said;
	if (r && r->type == REDIS_REPLY_ERROR && !refusal_said) {
		refusal_said = true;
		omr_info("redis",
		         "CONFIG GET refused (%s): stream-node-max-bytes and maxmemory-policy are "
		         "not checked (README, Redis settings)",
		         r->str);
	}
	if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
	    r->element[1]->type != REDIS_REPLY_STRING)
		return NULL;
	return r->element[1]->str;
}

/* A conversation's transcript is a stream of its own, and Redis allocates
 * min(stream-node-max-bytes, 4096) bytes for a stream's first entry: at the
 * default 4096, every conversation costs Redis at least 4.3 KB and its first
 * XADD touches a whole new page (README.md, "Running it for real").
 * A Redis that refuses CONFIG (a managed one) is not an error. */
static void on_stream_node_bytes(void *ud, const redisReply *r)
{
	(void)ud;
	const char *value = config_value(r);
	if (!value)
		return;
	long long v = strtoll(value, NULL, 10);
	if (v == 0 || v > OMR_STREAM_NODE_MAX_BYTES)
		omr_warn("redis",
		         "stream-node-max-bytes is %s: each conversation's transcript takes at "
		         "least %lld bytes of Redis memory; set it to %d in redis.conf "
		         "(README, Running it for real)",
		         value, v == 0 || v > 4096 ? 4096 : v, OMR_STREAM_NODE_MAX_BYTES);
}

/* A Redis that evicts keys when it reaches maxmemory deletes agents, queues
 * and conversations without an error to anyone: routing state must never be
 * evicted (README.md, "Redis settings"). Said once, at error level. */
static void on_eviction_policy(void *ud, const redisReply *r)
{
	(void)ud;
	const char *value = config_value(r);
	if (value && strcmp(value, "noeviction") != 0)
		omr_error("redis",
		          "maxmemory-policy is %s: at maxmemory Redis deletes keys (agents, "
		          "waiting conversations, transcripts) without telling anyone; set "
		          "maxmemory-policy noeviction in redis.conf (README, Redis settings)",
		          value);
}

static void on_ping(void *ud, const redisReply *r)
{
	omr_store_t *s = ud;
	if (!r)
		return;
	if (reply_failed(s, r, "PING"))
		return;
	s->ping_outstanding = false;
	if (!s->cmd_ok) {
		s->cmd_ok = true;
		check_ready(s);
	}
}

static void send_ping(omr_store_t *s)
{
	const char *argv[] = {"PING"};
	s->ping_sent = omr_mono_ms();
	if (send_cmd(s, s->cmd, on_ping, 1, argv) == 0)
		s->ping_outstanding = true;
}

/* AUTH USER PASSWORD for an ACL user (redis.username), AUTH PASSWORD for the default one. */
static void send_auth(omr_store_t *s, redisAsyncContext *ac)
{
	if (s->username[0]) {
		const char *argv[] = {"AUTH", s->username, s->password};
		send_cmd(s, ac, on_setup_reply, 3, argv);
	} else if (s->password[0]) {
		const char *argv[] = {"AUTH", s->password};
		send_cmd(s, ac, on_setup_reply, 2, argv);
	}
}

static void on_cmd_connect(const redisAsyncContext *ac, int status)
{
	omr_store_t *s = ac->data;
	if (ac != s->cmd)
		return;
	if (status != REDIS_OK) {
		s->cmd = NULL; /* hiredis frees it after this callback */
		schedule_reset(s, ac->errstr);
		return;
	}
	send_auth(s, s->cmd);
	char db[16];
	snprintf(db, sizeof(db), "%d", s->db);
	const char *sel[] = {"SELECT", db};
	send_cmd(s, s->cmd, on_setup_reply, 2, sel);
	const char *load[] = {"FUNCTION", "LOAD", "REPLACE", omr_functions_lua};
	size_t lens[] = {8, 4, 7, omr_functions_lua_len};
	send_argv(s, s->cmd, on_setup_reply, s, 4, load, lens);
	if (!s->tuning_checked) {
		s->tuning_checked = true;
		const char *get[] = {"CONFIG", "GET", "stream-node-max-bytes"};
		send_cmd(s, s->cmd, on_stream_node_bytes, 3, get);
		const char *policy[] = {"CONFIG", "GET", "maxmemory-policy"};
		send_cmd(s, s->cmd, on_eviction_policy, 3, policy);
	}
	send_ping(s);
}

static void on_sub_message(redisAsyncContext *ac, void *r, void *priv)
{
	omr_store_t *s = ac->data;
	redisReply *reply = r;
	if (!reply || ac != s->sub)
		return;
	if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 3)
		return;
	const redisReply *kind = reply->element[0];
	if (kind->type != REDIS_REPLY_STRING)
		return;
	if (strcmp(kind->str, "psubscribe") == 0) {
		s->sub_ok = true;
		check_ready(s);
	} else if (strcmp(kind->str, "pmessage") == 0 && reply->elements == 4) {
		const redisReply *ch = reply->element[2], *msg = reply->element[3];
		if (ch->type == REDIS_REPLY_STRING && msg->type == REDIS_REPLY_STRING &&
		    s->cbs.on_message)
			s->cbs.on_message(s->cbs.ud, ch->str, ch->len, msg->str, msg->len);
	}
}

static void on_sub_connect(const redisAsyncContext *ac, int status)
{
	omr_store_t *s = ac->data;
	if (ac != s->sub)
		return;
	if (status != REDIS_OK) {
		s->sub = NULL;
		schedule_reset(s, ac->errstr);
		return;
	}
	send_auth(s, s->sub);
	/* The subscription callback is kept by hiredis for every message, so it
	 * is not counted as in flight. */
	redisAsyncCommand(s->sub, on_sub_message, NULL, "PSUBSCRIBE %s", NOTIFY_PATTERN);
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
	omr_store_t *s = ac->data;
	if (ac == s->cmd)
		s->cmd = NULL;
	else if (ac == s->sub)
		s->sub = NULL;
	else
		return; /* freed by us on purpose */
	if (!s->stopping)
		schedule_reset(s, status == REDIS_OK ? "closed by server" : ac->errstr);
}

static redisAsyncContext *connect_one(omr_store_t *s, redisConnectCallback *on_connect)
{
	redisAsyncContext *ac = redisAsyncConnect(s->host, s->port);
	if (!ac)
		return NULL;
	if (ac->err) {
		omr_warn("redis", "connect failed host=%s port=%d error=\"%s\"", s->host, s->port,
		         ac->errstr);
		redisAsyncFree(ac);
		return NULL;
	}
	ac->data = s;
	if (omr_redis_uv_attach(ac, s->loop) != 0) {
		redisAsyncFree(ac);
		return NULL;
	}
	redisAsyncSetConnectCallback(ac, on_connect);
	redisAsyncSetDisconnectCallback(ac, on_disconnect);
	return ac;
}

static void free_contexts(omr_store_t *s)
{
	redisAsyncContext *cmd = s->cmd, *sub = s->sub;
	s->cmd = s->sub = NULL; /* so on_disconnect ignores them */
	s->cmd_ok = s->sub_ok = false;
	s->ping_outstanding = false;
	/* Freeing runs the pending callbacks with NULL replies; they must not
	 * schedule another reset from here. */
	s->freeing = true;
	if (cmd)
		redisAsyncFree(cmd);
	if (sub)
		redisAsyncFree(sub);
	s->freeing = false;
}

static void on_reconnect_timer(uv_timer_t *t)
{
	omr_store_t *s = t->data;
	free_contexts(s);
	if (s->stopping)
		return;
	s->phase_start = omr_mono_ms();
	s->cmd = connect_one(s, on_cmd_connect);
	s->sub = s->cmd ? connect_one(s, on_sub_connect) : NULL;
	if (!s->cmd || !s->sub)
		schedule_reset(s, "connect failed");
}

static void schedule_reset(omr_store_t *s, const char *why)
{
	if (s->stopping || s->freeing || uv_is_active((uv_handle_t *)&s->reconnect))
		return;
	omr_warn("redis",
	         "connection lost, reconnecting host=%s port=%d reason=\"%s\" delay_ms=%llu",
	         s->host, s->port, why ? why : "unknown", (unsigned long long)s->backoff_ms);
	set_ready(s, false);
	s->cmd_ok = s->sub_ok = false;
	uv_timer_start(&s->reconnect, on_reconnect_timer, s->backoff_ms, 0);
	s->backoff_ms =
	        s->backoff_ms * 2 > s->backoff_max_ms ? s->backoff_max_ms : s->backoff_ms * 2;
}

static void on_watchdog(uv_timer_t *t)
{
	omr_store_t *s = t->data;
	uint64_t now = omr_mono_ms();
	if (uv_is_active((uv_handle_t *)&s->reconnect))
		return;
	if (!s->ready && now - s->phase_start > s->ping_timeout_ms) {
		schedule_reset(s, "not ready in time");
	} else if (s->ping_outstanding && now - s->ping_sent > s->ping_timeout_ms) {
		schedule_reset(s, "PING timeout");
	} else if (s->cmd_ok && !s->ping_outstanding) {
		send_ping(s);
	}
}

static void copy_timings(omr_store_t *s, const omr_config_t *cfg)
{
	s->ping_interval_ms = (uint64_t)cfg->redis_ping_interval_ms;
	s->ping_timeout_ms = (uint64_t)cfg->redis_ping_timeout_ms;
	s->backoff_min_ms = (uint64_t)cfg->redis_reconnect_min_ms;
	s->backoff_max_ms = (uint64_t)cfg->redis_reconnect_max_ms;
}

omr_store_t *omr_store_new(uv_loop_t *loop, const omr_config_t *cfg,
                           const omr_store_callbacks_t *cbs)
{
	omr_store_t *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->loop = loop;
	s->cbs = *cbs;
	s->host = strdup(cfg->redis_host);
	s->username = strdup(cfg->redis_username);
	s->password = strdup(cfg->redis_password);
	if (!s->host || !s->username || !s->password) {
		free(s->host);
		free(s->username);
		free(s->password);
		free(s);
		return NULL;
	}
	s->port = (int)cfg->redis_port;
	s->db = (int)cfg->redis_db;
	copy_timings(s, cfg);
	s->backoff_ms = s->backoff_min_ms;
	uv_timer_init(loop, &s->watchdog);
	uv_timer_init(loop, &s->reconnect);
	s->watchdog.data = s->reconnect.data = s;
	s->open_handles = 2;
	return s;
}

int omr_store_start(omr_store_t *s)
{
	uv_timer_start(&s->watchdog, on_watchdog, s->ping_interval_ms, s->ping_interval_ms);
	uv_timer_start(&s->reconnect, on_reconnect_timer, 0, 0);
	return 0;
}

void omr_store_reload(omr_store_t *s, const omr_config_t *cfg)
{
	copy_timings(s, cfg);
	if (uv_timer_get_repeat(&s->watchdog) != s->ping_interval_ms) {
		/* now, not after one more run at the old period */
		uv_timer_set_repeat(&s->watchdog, s->ping_interval_ms);
		uv_timer_again(&s->watchdog);
	}
}

int omr_store_command(omr_store_t *s, omr_store_reply_fn cb, void *ud, int argc, const char **argv,
                      const size_t *argvlen)
{
	if (!s->ready || !s->cmd)
		return -EAGAIN;
	return send_argv(s, s->cmd, cb, ud, argc, argv, argvlen);
}

bool omr_store_is_ready(const omr_store_t *s)
{
	return s->ready;
}

size_t omr_store_inflight(const omr_store_t *s)
{
	return s->inflight;
}

static void on_handle_closed(uv_handle_t *h)
{
	omr_store_t *s = h->data;
	if (--s->open_handles == 0) {
		free(s->host);
		free(s->username);
		free(s->password);
		free(s);
	}
}

void omr_store_close(omr_store_t **sp)
{
	omr_store_t *s = *sp;
	if (!s)
		return;
	*sp = NULL;
	s->stopping = true;
	s->ready = false;
	free_contexts(s);
	uv_close((uv_handle_t *)&s->watchdog, on_handle_closed);
	uv_close((uv_handle_t *)&s->reconnect, on_handle_closed);
}
