/* bench_route.c - benchmark of one routing decision on a real Redis.
 *
 * A "decision" is FCALL omr_conv_start for a new conversation that an
 * available agent can take, so the reply is "assigned". To keep agents from
 * filling up, every batch of starts is followed by the matching
 * omr_conv_close calls, measured separately: the start figures never include
 * a close. Beside it, the same client runs a minimal "equivalent" Lua script
 * (EVALSHA) that does the essential work of one decision by hand.
 *
 * Commands (bench/route/run.sh drives them; docs/BENCHMARKS.md):
 *   load                     FUNCTION LOAD REPLACE the embedded library and
 *                            SCRIPT LOAD the baseline; prints the baseline sha
 *   setup -a N               FLUSHALL, rules, N available agents, and the
 *                            baseline's availability set of N members
 *   backlog -w N             starts conversations no agent serves until N wait
 *   route                    measures omr_conv_start (+ omr_conv_close)
 *   baseline                 measures the baseline script
 * Options: -s SOCKET | -h HOST -p PORT, -n N (pipelined calls), -l N
 * (one-at-a-time calls), -c CONNS, -P DEPTH (as redis-benchmark: each
 * connection sends DEPTH calls and waits for their replies), -b BATCH
 * (starts between two rounds of closes), -x (print a per-command profile),
 * -L FILE (load: a variant of the Functions library instead of the built-in),
 * -k (route: no closes; for instruction counts of starts alone under
 * callgrind, as long as the agents' capacity holds every start).
 * Results are one "RESULT key=value ..." line on stdout; progress on stderr.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <hiredis/hiredis.h>

#include "store.h"

#define PREFIX "omr:{bench}"
#define BASE_PREFIX "omr:{base}"
#define SEQ_KEY "bench:seq"
#define MAX_CONNS 64
#define MAX_ARGS 16
#define ARG_LEN 320

/* 4 queues, 2 served languages, one skill; queue order decides matching. */
static const char RULES_JSON[] =
        "{\"version\":\"bench-1\",\"blocking\":{\"voice\":[\"chat\",\"email\"]},\"queues\":["
        "{\"name\":\"vip\",\"attributes\":{\"tier\":\"gold\"},\"priority\":8,"
        "\"strategy\":\"longest_idle\",\"max_wait_s\":600,\"steps\":[{\"after_s\":0}]},"
        "{\"name\":\"billing\",\"skills\":{\"billing\":5},\"min_proficiency\":6,"
        "\"steps\":[{\"after_s\":0},{\"after_s\":60,\"min_level_delta\":3}]},"
        "{\"name\":\"spanish\",\"languages\":[\"es\"],\"steps\":[{\"after_s\":0}]},"
        "{\"name\":\"general\",\"steps\":[{\"after_s\":0},{\"after_s\":120,\"languages\":[\"en\"]}]"
        "}"
        "]}";

/* The essential work of one decision, by hand: the head of one availability
 * set, the agent's load, its new score, its conversation set, the
 * conversation hash, one inbox entry, one notification. */
static const char BASELINE_LUA[] =
        "local P, conv = KEYS[1], ARGV[1]\n"
        "local head = redis.call('ZRANGE', P .. ':avail', 0, 0, 'WITHSCORES')\n"
        "if #head == 0 then return redis.error_reply('NOAGENT no agent') end\n"
        "local agent = head[1]\n"
        "local akey = P .. ':agent:' .. agent\n"
        "local load = redis.call('HINCRBY', akey, 'load', 1)\n"
        "redis.call('ZADD', P .. ':avail', load, agent)\n"
        "redis.call('SADD', akey .. ':convs', conv)\n"
        "redis.call('HSET', P .. ':conv:' .. conv, 'state', 'assigned', 'agent', agent,\n"
        "  'queue', 'general', 'step', 1, 'channel', 'chat', 'tenant', 't1', 'lang', 'en')\n"
        "redis.call('XADD', akey .. ':inbox', 'MAXLEN', '~', 10000, '*', 'kind', 'assigned',\n"
        "  'conv', conv, 'lang', 'en', 'tenant', 't1', 'queue', 'general')\n"
        "redis.call('PUBLISH', P .. ':notify', 'a:' .. agent)\n"
        "return 'assigned'\n";

struct conn {
	redisContext *ctx;
	size_t *fifo; /* item indices sent and not yet answered */
	size_t head, count;
};

struct opts {
	const char *sock, *host;
	const char *library; /* -L: load this file instead of the built-in library */
	int port;
	size_t n, lat_n, batch, agents, waiting;
	int conns, depth;
	bool profile;
	bool keep; /* -k: no closes (the agents' capacity must hold every start) */
	char sha[48];
	uint64_t base; /* baseline conversation ids b<base+i> */
};

struct cmd {
	int argc;
	const char *argv[MAX_ARGS];
	size_t len[MAX_ARGS];
	char buf[MAX_ARGS][ARG_LEN];
};

typedef void (*gen_fn)(void *ud, size_t i, struct cmd *c);
typedef void (*reply_fn)(void *ud, size_t i, const redisReply *r);

static struct conn conns[MAX_CONNS];
static int nconns;
static size_t fifo_cap;

__attribute__((format(printf, 1, 2))) static void die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("bench_route: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(1);
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void cmd_reset(struct cmd *c)
{
	c->argc = 0;
}

__attribute__((format(printf, 2, 3))) static void cmd_add(struct cmd *c, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (c->argc >= MAX_ARGS)
		die("too many arguments");
	va_start(ap, fmt);
	n = vsnprintf(c->buf[c->argc], ARG_LEN, fmt, ap);
	va_end(ap);
	if (n < 0 || n >= ARG_LEN)
		die("argument too long");
	c->argv[c->argc] = c->buf[c->argc];
	c->len[c->argc] = (size_t)n;
	c->argc++;
}

/* An argument that does not fit the fixed buffers (the Lua sources). */
static void cmd_add_ref(struct cmd *c, const char *s, size_t len)
{
	if (c->argc >= MAX_ARGS)
		die("too many arguments");
	c->argv[c->argc] = s;
	c->len[c->argc] = len;
	c->argc++;
}

static bool reply_is(const redisReply *r, const char *s)
{
	return r != NULL && (r->type == REDIS_REPLY_STATUS || r->type == REDIS_REPLY_STRING) &&
	       strcmp(r->str, s) == 0;
}

static const char *reply_text(const redisReply *r)
{
	if (r == NULL)
		return "(no reply)";
	if (r->type == REDIS_REPLY_STATUS || r->type == REDIS_REPLY_STRING ||
	    r->type == REDIS_REPLY_ERROR)
		return r->str;
	return "(non-string reply)";
}

static redisContext *connect_one(const struct opts *o)
{
	redisContext *c = o->sock ? redisConnectUnix(o->sock) : redisConnect(o->host, o->port);
	if (c == NULL || c->err)
		die("cannot connect: %s", c ? c->errstr : "out of memory");
	return c;
}

static void connect_all(const struct opts *o, int n, int depth)
{
	if (n < 1 || n > MAX_CONNS)
		die("-c must be 1-%d", MAX_CONNS);
	for (int k = 0; k < n; k++) {
		conns[k].ctx = connect_one(o);
		conns[k].fifo = calloc((size_t)depth, sizeof(size_t));
		fifo_cap = (size_t)depth;
		if (conns[k].fifo == NULL)
			die("out of memory");
	}
	nconns = n;
}

/* One command on connection 0, waiting for its reply. */
static redisReply *call(struct cmd *c)
{
	redisReply *r = redisCommandArgv(conns[0].ctx, c->argc, c->argv, c->len);
	if (r == NULL)
		die("connection lost: %s", conns[0].ctx->errstr);
	return r;
}

static redisReply *callf(const char *fmt, ...)
{
	va_list ap;
	redisReply *r;

	va_start(ap, fmt);
	r = redisvCommand(conns[0].ctx, fmt, ap);
	va_end(ap);
	if (r == NULL)
		die("connection lost: %s", conns[0].ctx->errstr);
	return r;
}

static void flush_conn(struct conn *cn)
{
	int done = 0;
	do {
		if (redisBufferWrite(cn->ctx, &done) == REDIS_ERR)
			die("write: %s", cn->ctx->errstr);
	} while (!done);
}

/* Sends items 0..n-1 over connections 0..conns-1, each sending `depth`
 * commands and reading their replies before it sends the next `depth` (as
 * redis-benchmark -c conns -P depth). Replies reach on_reply in each
 * connection's order. Returns the elapsed seconds. */
static double pipeline(size_t n, int nc, int depth, gen_fn gen, reply_fn on_reply, void *ud)
{
	static struct cmd c;
	struct pollfd pfd[MAX_CONNS];
	size_t next = 0, done = 0;
	double t0 = now_s();

	if (nc > nconns)
		nc = nconns;
	if ((size_t)depth > fifo_cap)
		die("pipeline depth above %zu", fifo_cap);
	for (int k = 0; k < nc; k++)
		conns[k].head = conns[k].count = 0;
	while (done < n) {
		for (int k = 0; k < nc; k++) {
			struct conn *cn = &conns[k];
			if (cn->count > 0 || next >= n)
				continue;
			for (int j = 0; j < depth && next < n; j++, next++) {
				cmd_reset(&c);
				gen(ud, next, &c);
				if (redisAppendCommandArgv(cn->ctx, c.argc, c.argv, c.len) !=
				    REDIS_OK)
					die("append: %s", cn->ctx->errstr);
				cn->fifo[(cn->head + cn->count) % (size_t)depth] = next;
				cn->count++;
			}
			flush_conn(cn);
		}
		for (int k = 0; k < nc; k++) {
			pfd[k].fd = conns[k].ctx->fd;
			pfd[k].events = conns[k].count > 0 ? POLLIN : 0;
			pfd[k].revents = 0;
		}
		if (poll(pfd, (nfds_t)nc, -1) < 0) {
			if (errno == EINTR)
				continue;
			die("poll: %s", strerror(errno));
		}
		for (int k = 0; k < nc; k++) {
			struct conn *cn = &conns[k];
			void *rep;
			if (!(pfd[k].revents & (POLLIN | POLLERR | POLLHUP)))
				continue;
			if (redisBufferRead(cn->ctx) != REDIS_OK)
				die("read: %s", cn->ctx->errstr);
			for (;;) {
				rep = NULL;
				if (redisGetReplyFromReader(cn->ctx, &rep) != REDIS_OK)
					die("protocol: %s", cn->ctx->errstr);
				if (rep == NULL)
					break;
				if (cn->count == 0)
					die("reply without a request");
				size_t item = cn->fifo[cn->head];
				cn->head = (cn->head + 1) % (size_t)depth;
				cn->count--;
				done++;
				if (on_reply)
					on_reply(ud, item, rep);
				freeReplyObject(rep);
			}
		}
	}
	return now_s() - t0;
}

/* ---- INFO commandstats ------------------------------------------------- */

#define MAX_STATS 64

struct stat_row {
	char name[48];
	unsigned long long calls, usec;
};

struct stats {
	struct stat_row rows[MAX_STATS];
	int n;
	double cpu_us; /* Redis main thread CPU time (user + system) in the windows */
};

/* CPU time of Redis's main thread, in microseconds: unlike wall time it does
 * not count the time Redis waits for a core on a busy machine. */
static double server_cpu_us(void)
{
	redisReply *r = callf("INFO cpu");
	const char *u, *s;
	double user = 0, sys = 0;

	if (r->type != REDIS_REPLY_STRING)
		die("INFO cpu: %s", reply_text(r));
	u = strstr(r->str, "used_cpu_user_main_thread:");
	s = strstr(r->str, "used_cpu_sys_main_thread:");
	if (u == NULL || s == NULL || sscanf(u, "used_cpu_user_main_thread:%lf", &user) != 1 ||
	    sscanf(s, "used_cpu_sys_main_thread:%lf", &sys) != 1)
		die("INFO cpu: no main thread figures");
	freeReplyObject(r);
	return (user + sys) * 1e6;
}

static double window_cpu0;

/* Starts a measured window: command statistics from zero. */
static void stats_reset(void)
{
	freeReplyObject(callf("CONFIG RESETSTAT"));
	window_cpu0 = server_cpu_us();
}

/* Adds the command counts since the last reset to st (all commands but the
 * bench's own bookkeeping). */
static void stats_collect(struct stats *st)
{
	st->cpu_us += server_cpu_us() - window_cpu0;
	redisReply *r = callf("INFO commandstats");
	const char *p;

	if (r->type != REDIS_REPLY_STRING)
		die("INFO: %s", reply_text(r));
	for (p = r->str; (p = strstr(p, "cmdstat_")) != NULL; p++) {
		char name[48];
		unsigned long long calls, usec;
		if (sscanf(p, "cmdstat_%47[^:]:calls=%llu,usec=%llu", name, &calls, &usec) != 3)
			continue;
		if (strcmp(name, "info") == 0 || strncmp(name, "config", 6) == 0)
			continue;
		int i;
		for (i = 0; i < st->n; i++)
			if (strcmp(st->rows[i].name, name) == 0)
				break;
		if (i == st->n) {
			if (st->n == MAX_STATS)
				continue;
			snprintf(st->rows[i].name, sizeof(st->rows[i].name), "%s", name);
			st->rows[i].calls = st->rows[i].usec = 0;
			st->n++;
		}
		st->rows[i].calls += calls;
		st->rows[i].usec += usec;
	}
	freeReplyObject(r);
}

static const struct stat_row *stats_get(const struct stats *st, const char *name)
{
	for (int i = 0; i < st->n; i++)
		if (strcmp(st->rows[i].name, name) == 0)
			return &st->rows[i];
	return NULL;
}

/* Per top-level call: server microseconds (commandstats, wall time inside
 * the call), Redis main-thread CPU microseconds (the call plus its share of
 * reading, parsing and replying), and the commands it issues. */
static void stats_summary(const struct stats *st, const char *top, double *us, double *cpu,
                          double *cmds)
{
	const struct stat_row *t = stats_get(st, top);
	unsigned long long nested = 0;

	*us = *cpu = *cmds = 0;
	if (t == NULL || t->calls == 0)
		return;
	for (int i = 0; i < st->n; i++)
		if (&st->rows[i] != t)
			nested += st->rows[i].calls;
	*us = (double)t->usec / (double)t->calls;
	*cpu = st->cpu_us / (double)t->calls;
	*cmds = (double)nested / (double)t->calls;
}

static void stats_print(const struct stats *st, const char *what, const char *top)
{
	const struct stat_row *t = stats_get(st, top);
	unsigned long long nested_us = 0;

	if (t == NULL || t->calls == 0)
		return;
	for (int i = 0; i < st->n; i++) {
		const struct stat_row *r = &st->rows[i];
		if (r == t)
			continue;
		nested_us += r->usec;
		printf("PROFILE %s cmd=%s calls_per=%.2f usec_per=%.2f\n", what, r->name,
		       (double)r->calls / (double)t->calls, (double)r->usec / (double)t->calls);
	}
	printf("PROFILE %s cmd=%s calls_per=1 usec_per=%.2f (lua and cjson outside commands: "
	       "%.2f)\n",
	       what, top, (double)t->usec / (double)t->calls,
	       (double)(t->usec - nested_us) / (double)t->calls);
}

/* ---- latency samples ---------------------------------------------------- */

struct samples {
	double *v; /* microseconds */
	size_t n, cap;
};

static void samples_add(struct samples *s, double us)
{
	if (s->n == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 4096;
		s->v = realloc(s->v, s->cap * sizeof(double));
		if (s->v == NULL)
			die("out of memory");
	}
	s->v[s->n++] = us;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static double pct(struct samples *s, double p)
{
	if (s->n == 0)
		return 0;
	qsort(s->v, s->n, sizeof(double), cmp_double);
	size_t i = (size_t)(p / 100.0 * (double)(s->n - 1) + 0.5);
	return s->v[i];
}

/* ---- the workload -------------------------------------------------------- */

/* Decision i: a quarter each for the vip queue (attribute), billing (skill),
 * spanish (language) and general. */
static void gen_start_args(struct cmd *c, const char *conv, size_t kind, const char *lang,
                           const char *channel, const char *tenant)
{
	static const char *const attrs[] = {"{\"tier\":\"gold\"}", "{}", "{}", "{}"};
	static const char *const skills[] = {"[]", "[\"billing\"]", "[]", "[]"};
	cmd_add(c, "FCALL");
	cmd_add(c, "omr_conv_start");
	cmd_add(c, "1");
	cmd_add(c, PREFIX);
	cmd_add(c, "%s", conv);
	cmd_add(c, "tok");
	cmd_add(c, "%s", lang);
	cmd_add(c, "%s", lang);
	cmd_add(c, "Customer %s", conv);
	cmd_add(c, "%s", channel);
	cmd_add(c, "%s", tenant);
	cmd_add_ref(c, "", 0); /* no customer: no sticky routing */
	cmd_add(c, "%s", attrs[kind % 4]);
	cmd_add(c, "%s", skills[kind % 4]);
	cmd_add(c, "bench:%s", conv); /* the customer's connection, as the daemon passes it */
}

struct run {
	uint64_t base; /* conversation ids r<base+i> */
	size_t offset; /* index of the first conversation of the batch */
	char (*agent)[32];
	size_t errors;
	char first_error[160];
};

static void note_error(struct run *rn, const redisReply *r)
{
	if (rn->errors++ == 0)
		snprintf(rn->first_error, sizeof(rn->first_error), "%s", reply_text(r));
}

static void gen_start(void *ud, size_t i, struct cmd *c)
{
	struct run *rn = ud;
	char conv[32];
	size_t k = rn->offset + i;
	snprintf(conv, sizeof(conv), "r%" PRIu64, rn->base + k);
	gen_start_args(c, conv, k, k % 4 == 2 ? "es" : "en", "chat", "t1");
}

static void on_start(void *ud, size_t i, const redisReply *r)
{
	(void)i;
	if (!reply_is(r, "assigned"))
		note_error(ud, r);
}

static void gen_agent_of(void *ud, size_t i, struct cmd *c)
{
	struct run *rn = ud;
	cmd_add(c, "HGET");
	cmd_add(c, PREFIX ":conv:r%" PRIu64, rn->base + rn->offset + i);
	cmd_add(c, "agent");
}

static void on_agent_of(void *ud, size_t i, const redisReply *r)
{
	struct run *rn = ud;
	if (r->type != REDIS_REPLY_STRING || r->len >= 32)
		die("no agent for a started conversation: %s", reply_text(r));
	memcpy(rn->agent[i], r->str, (size_t)r->len + 1);
}

static void gen_close(void *ud, size_t i, struct cmd *c)
{
	struct run *rn = ud;
	cmd_add(c, "FCALL");
	cmd_add(c, "omr_conv_close");
	cmd_add(c, "1");
	cmd_add(c, PREFIX);
	cmd_add(c, "r%" PRIu64, rn->base + rn->offset + i);
	cmd_add(c, "%s", rn->agent[i]);
}

static void on_close(void *ud, size_t i, const redisReply *r)
{
	(void)i;
	if (!reply_is(r, "closed"))
		note_error(ud, r);
}

static uint64_t reserve_ids(size_t n)
{
	redisReply *r = callf("INCRBY %s %llu", SEQ_KEY, (unsigned long long)n);
	if (r->type != REDIS_REPLY_INTEGER)
		die("INCRBY: %s", reply_text(r));
	uint64_t end = (uint64_t)r->integer;
	freeReplyObject(r);
	return end - n;
}

static size_t scard(const char *key)
{
	redisReply *r = callf("SCARD %s", key);
	size_t n = r->type == REDIS_REPLY_INTEGER ? (size_t)r->integer : 0;
	freeReplyObject(r);
	return n;
}

/* One-at-a-time round trip of one command on connection 0, in microseconds. */
static double timed_call(struct cmd *c, redisReply **out)
{
	double t0 = now_s();
	*out = call(c);
	return (now_s() - t0) * 1e6;
}

static void cmd_route(const struct opts *o)
{
	struct run rn = {0};
	struct stats st_start = {0}, st_close = {0};
	struct samples lat_start = {0};
	double t_start = 0, t_close = 0, us_start, cpu_start, cmds_start, us_close, cpu_close,
	       cmds_close;
	size_t batch = o->batch;
	static struct cmd c;

	if (o->lat_n > 0 && o->lat_n < 100)
		die("-l: at least 100 samples (or 0)");
	rn.agent = calloc(batch, sizeof(*rn.agent));
	if (rn.agent == NULL)
		die("out of memory");
	size_t waiting = scard(PREFIX ":queued"), agents = scard(PREFIX ":agents");

	/* Throughput: batches of starts, each followed by their closes. */
	rn.base = reserve_ids(o->n + o->lat_n);
	for (rn.offset = 0; rn.offset < o->n; rn.offset += batch) {
		size_t m = o->n - rn.offset < batch ? o->n - rn.offset : batch;
		stats_reset();
		t_start += pipeline(m, o->conns, o->depth, gen_start, on_start, &rn);
		stats_collect(&st_start);
		if (o->keep)
			continue;
		pipeline(m, 1, 100, gen_agent_of, on_agent_of, &rn);
		stats_reset();
		t_close += pipeline(m, o->conns, o->depth, gen_close, on_close, &rn);
		stats_collect(&st_close);
	}
	/* Latency: one call at a time on one connection. */
	for (size_t done = 0; done < o->lat_n; done += batch) {
		size_t m = o->lat_n - done < batch ? o->lat_n - done : batch;
		rn.offset = o->n + done;
		for (size_t i = 0; i < m; i++) {
			redisReply *r;
			cmd_reset(&c);
			gen_start(&rn, i, &c);
			samples_add(&lat_start, timed_call(&c, &r));
			on_start(&rn, i, r);
			freeReplyObject(r);
		}
		if (o->keep)
			continue;
		/* The closes only make room again: pipelined, not timed. */
		pipeline(m, 1, 100, gen_agent_of, on_agent_of, &rn);
		pipeline(m, 1, 100, gen_close, on_close, &rn);
	}
	stats_summary(&st_start, "fcall", &us_start, &cpu_start, &cmds_start);
	stats_summary(&st_close, "fcall", &us_close, &cpu_close, &cmds_close);
	printf("RESULT kind=route agents=%zu waiting=%zu n=%zu lat_n=%zu conns=%d pipeline=%d "
	       "start_per_s=%.0f close_per_s=%.0f cycle_per_s=%.0f start_srv_us=%.2f "
	       "start_cpu_us=%.2f start_cmds=%.1f close_srv_us=%.2f close_cpu_us=%.2f "
	       "close_cmds=%.1f start_p50_us=%.1f "
	       "start_p99_us=%.1f start_p999_us=%.1f errors=%zu\n",
	       agents, waiting, o->n, o->lat_n, o->conns, o->depth, (double)o->n / t_start,
	       t_close > 0 ? (double)o->n / t_close : 0, (double)o->n / (t_start + t_close),
	       us_start, cpu_start, cmds_start, us_close, cpu_close, cmds_close,
	       pct(&lat_start, 50), pct(&lat_start, 99), pct(&lat_start, 99.9), rn.errors);
	if (o->profile) {
		stats_print(&st_start, "start", "fcall");
		stats_print(&st_close, "close", "fcall");
	}
	if (rn.errors)
		die("%zu calls failed, first: %s", rn.errors, rn.first_error);
	free(rn.agent);
	free(lat_start.v);
}

/* ---- the baseline script ------------------------------------------------- */

static void gen_baseline(void *ud, size_t i, struct cmd *c)
{
	const struct opts *o = ud;
	cmd_add(c, "EVALSHA");
	cmd_add(c, "%s", o->sha);
	cmd_add(c, "1");
	cmd_add(c, BASE_PREFIX);
	cmd_add(c, "b%" PRIu64, o->base + i);
}

static void on_baseline(void *ud, size_t i, const redisReply *r)
{
	(void)ud;
	(void)i;
	if (!reply_is(r, "assigned"))
		die("baseline: %s", reply_text(r));
}

static void cmd_baseline(struct opts *o)
{
	struct stats st = {0};
	struct samples lat = {0};
	double us, cpu, cmds, t;
	static struct cmd c;
	redisReply *r = callf("SCRIPT LOAD %b", BASELINE_LUA, sizeof(BASELINE_LUA) - 1);

	if (r->type != REDIS_REPLY_STRING)
		die("SCRIPT LOAD: %s", reply_text(r));
	snprintf(o->sha, sizeof(o->sha), "%s", r->str);
	freeReplyObject(r);
	r = callf("ZCARD %s", BASE_PREFIX ":avail");
	size_t agents = r->type == REDIS_REPLY_INTEGER ? (size_t)r->integer : 0;
	freeReplyObject(r);
	/* Conversation ids never repeat across runs. */
	o->base = reserve_ids(o->n + o->lat_n);

	stats_reset();
	t = pipeline(o->n, o->conns, o->depth, gen_baseline, on_baseline, o);
	stats_collect(&st);
	for (size_t i = 0; i < o->lat_n; i++) {
		cmd_reset(&c);
		gen_baseline(o, o->n + i, &c);
		samples_add(&lat, timed_call(&c, &r));
		on_baseline(o, i, r);
		freeReplyObject(r);
	}
	stats_summary(&st, "evalsha", &us, &cpu, &cmds);
	printf("RESULT kind=baseline agents=%zu n=%zu lat_n=%zu conns=%d pipeline=%d "
	       "per_s=%.0f srv_us=%.2f cpu_us=%.2f cmds=%.1f p50_us=%.1f p99_us=%.1f "
	       "p999_us=%.1f\n",
	       agents, o->n, o->lat_n, o->conns, o->depth, (double)o->n / t, us, cpu, cmds,
	       pct(&lat, 50), pct(&lat, 99), pct(&lat, 99.9));
	if (o->profile)
		stats_print(&st, "baseline", "evalsha");
	free(lat.v);
}

/* ---- setup ---------------------------------------------------------------- */

static void expect(redisReply *r, const char *what, const char *want)
{
	if (r->type == REDIS_REPLY_ERROR || (want && !reply_is(r, want)))
		die("%s: %s", what, reply_text(r));
	freeReplyObject(r);
}

static void cmd_load(struct opts *o)
{
	static struct cmd c;
	redisReply *r;

	cmd_reset(&c);
	cmd_add(&c, "FUNCTION");
	cmd_add(&c, "LOAD");
	cmd_add(&c, "REPLACE");
	if (o->library) {
		/* A variant of the library (to time a change before it is built in). */
		FILE *f = fopen(o->library, "rb");
		static char src[1 << 20];
		size_t len;
		if (f == NULL)
			die("%s: %s", o->library, strerror(errno));
		len = fread(src, 1, sizeof(src), f);
		if (ferror(f) || !feof(f))
			die("%s: unreadable or above 1 MB", o->library);
		fclose(f);
		cmd_add_ref(&c, src, len);
	} else {
		cmd_add_ref(&c, omr_functions_lua, omr_functions_lua_len);
	}
	expect(call(&c), "FUNCTION LOAD", "omnirouter");
	r = callf("SCRIPT LOAD %b", BASELINE_LUA, sizeof(BASELINE_LUA) - 1);
	if (r->type != REDIS_REPLY_STRING)
		die("SCRIPT LOAD: %s", reply_text(r));
	printf("%s\n", r->str);
	freeReplyObject(r);
}

/* Agent i: English (10), Spanish (9) for every other one, billing level
 * 1-10, chat capacity 100 and email 20 (capacity never runs out: the bench
 * closes what it starts). Three calls: upsert, login, presence. */
static void gen_agent(void *ud, size_t i, struct cmd *c)
{
	(void)ud;
	size_t a = i / 3;
	char id[24];
	snprintf(id, sizeof(id), "a%05zu", a);
	cmd_add(c, "FCALL");
	switch (i % 3) {
	case 0:
		cmd_add(c, "omr_agent_upsert");
		cmd_add(c, "1");
		cmd_add(c, PREFIX);
		cmd_add(c, "%s", id);
		cmd_add(c,
		        "{\"name\":\"Agent %zu\",\"tenants\":[\"t1\"],\"languages\":{\"en\":10%s},"
		        "\"skills\":{\"billing\":%zu},\"capacity\":{\"chat\":100,\"email\":20},"
		        "\"token_sha\":\"sha-%s\"}",
		        a, a % 2 == 0 ? ",\"es\":9" : "", a % 10 + 1, id);
		break;
	case 1:
		cmd_add(c, "omr_agent_login");
		cmd_add(c, "1");
		cmd_add(c, PREFIX);
		cmd_add(c, "%s", id);
		cmd_add(c, "sha-%s", id);
		cmd_add(c, "s-%s", id);
		break;
	default:
		cmd_add(c, "omr_agent_presence");
		cmd_add(c, "1");
		cmd_add(c, PREFIX);
		cmd_add(c, "%s", id);
		cmd_add(c, "s-%s", id);
		cmd_add(c, "available");
		break;
	}
}

static void on_setup(void *ud, size_t i, const redisReply *r)
{
	(void)ud;
	if (r->type == REDIS_REPLY_ERROR)
		die("setup call %zu: %s", i, r->str);
}

static void gen_base_agent(void *ud, size_t i, struct cmd *c)
{
	(void)ud;
	cmd_add(c, "ZADD");
	cmd_add(c, BASE_PREFIX ":avail");
	cmd_add(c, "0");
	cmd_add(c, "a%05zu", i);
}

static void cmd_setup(const struct opts *o)
{
	static struct cmd c;

	expect(callf("FLUSHALL"), "FLUSHALL", "OK");
	cmd_reset(&c);
	cmd_add(&c, "FCALL");
	cmd_add(&c, "omr_rules_load");
	cmd_add(&c, "1");
	cmd_add(&c, PREFIX);
	cmd_add_ref(&c, RULES_JSON, sizeof(RULES_JSON) - 1);
	expect(call(&c), "omr_rules_load", "loaded");
	pipeline(o->agents * 3, 1, 200, gen_agent, on_setup, NULL);
	pipeline(o->agents, 1, 200, gen_base_agent, on_setup, NULL);
	if (scard(PREFIX ":agents") != o->agents)
		die("setup: agents missing");
	fprintf(stderr, "setup: %zu agents\n", o->agents);
}

/* Waiting conversation i: half in French (no agent speaks it) for tenant
 * t1, half in English for tenant t2 (no agent serves it), over the vip,
 * billing and general queues, a quarter of them email. */
static void gen_waiting(void *ud, size_t i, struct cmd *c)
{
	uint64_t base = *(const uint64_t *)ud;
	char conv[32];
	size_t k = base + i;
	snprintf(conv, sizeof(conv), "w%zu", k);
	gen_start_args(c, conv, k % 3 == 2 ? 3 : k % 3, k % 2 ? "en" : "fr",
	               k % 4 == 0 ? "email" : "chat", k % 2 ? "t2" : "t1");
}

static void on_waiting(void *ud, size_t i, const redisReply *r)
{
	(void)ud;
	(void)i;
	if (!reply_is(r, "queued"))
		die("backlog: expected queued, got %s", reply_text(r));
}

static void cmd_backlog(const struct opts *o)
{
	size_t have = scard(PREFIX ":queued");
	if (have >= o->waiting)
		return;
	uint64_t base = reserve_ids(o->waiting - have);
	pipeline(o->waiting - have, 1, 200, gen_waiting, on_waiting, &base);
	fprintf(stderr, "backlog: %zu waiting\n", scard(PREFIX ":queued"));
}

static void usage(void)
{
	fputs("usage: bench_route [-s SOCKET | -h HOST -p PORT] [-n N] [-l N] [-c CONNS] "
	      "[-P DEPTH] [-b BATCH] [-a AGENTS] [-w WAITING] [-x] [-k] [-L LIBRARY] "
	      "load|setup|backlog|route|baseline\n",
	      stderr);
	exit(2);
}

static size_t size_arg(const char *s)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || *end || end == s)
		usage();
	return (size_t)v;
}

int main(int argc, char **argv)
{
	struct opts o = {.host = "127.0.0.1",
	                 .port = 6379,
	                 .n = 50000,
	                 .lat_n = 20000,
	                 .batch = 1000,
	                 .conns = 1,
	                 .depth = 50};
	int ch;

	while ((ch = getopt(argc, argv, "s:h:p:n:l:c:P:b:a:w:xkL:")) != -1) {
		switch (ch) {
		case 's':
			o.sock = optarg;
			break;
		case 'h':
			o.host = optarg;
			break;
		case 'p':
			o.port = (int)size_arg(optarg);
			break;
		case 'n':
			o.n = size_arg(optarg);
			break;
		case 'l':
			o.lat_n = size_arg(optarg);
			break;
		case 'c':
			o.conns = (int)size_arg(optarg);
			break;
		case 'P':
			o.depth = (int)size_arg(optarg);
			break;
		case 'b':
			o.batch = size_arg(optarg);
			break;
		case 'a':
			o.agents = size_arg(optarg);
			break;
		case 'w':
			o.waiting = size_arg(optarg);
			break;
		case 'x':
			o.profile = true;
			break;
		case 'k':
			o.keep = true;
			break;
		case 'L':
			o.library = optarg;
			break;
		default:
			usage();
		}
	}
	if (optind != argc - 1 || o.depth < 1 || o.depth > 100000 || o.batch < 1)
		usage();
	const char *what = argv[optind];
	if ((strcmp(what, "route") == 0 || strcmp(what, "baseline") == 0) && o.n == 0)
		die("-n: at least 1");
	connect_all(&o, o.conns, o.depth < 200 ? 200 : o.depth);
	if (strcmp(what, "load") == 0)
		cmd_load(&o);
	else if (strcmp(what, "setup") == 0)
		cmd_setup(&o);
	else if (strcmp(what, "backlog") == 0)
		cmd_backlog(&o);
	else if (strcmp(what, "route") == 0)
		cmd_route(&o);
	else if (strcmp(what, "baseline") == 0)
		cmd_baseline(&o);
	else
		usage();
	for (int k = 0; k < nconns; k++) {
		redisFree(conns[k].ctx);
		free(conns[k].fifo);
	}
	fflush(stdout);
	return 0;
}
