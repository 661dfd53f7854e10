/* ctl_queue.c - `omnirouterctl queue status [QUEUE]`: what waits, queue by queue, as a
 * supervisor or the engineer on call asks it ("are chats piling up, where, since when?").
 *
 * Read-only, and never one long call: the waiting conversations are the set omr:{G}:queued
 * (kept by the routing Functions), read with SSCAN and the conversations' fields with
 * pipelined HMGETs, BATCH at a time, so a floor with 100,000 waiting is not held up for the
 * time it takes. The set may still list a conversation that has just been assigned; only
 * those whose state is `queued` count. The queues, in the rules' order with their priority,
 * come from the rules in force (omr:{G}:rules, written by the daemons), the average wait
 * from omr:{G}:qstats, and "now" from Redis's clock. Single-threaded. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "hmap.h"
#include "omnirouter/envelope.h"
#include "omnirouter/util.h"

#define BATCH 1000

enum { C_STATE, C_QUEUE, C_STEP, C_CHANNEL, C_TENANT, C_RLANG, C_ENQUEUED, C_PREF, C_LEFT, NF };
static const char *const fields[NF] = {"state", "queue",       "step",       "channel", "tenant",
                                       "rlang", "enqueued_ms", "pref_agent", "left_ms"};

typedef struct waiting {
	char *id, *tenant, *lang, *channel, *pref;
	long long enqueued_ms, step;
	bool away;
} waiting_t;

typedef struct queue_stat {
	char *name;
	long long priority;
	bool in_rules;
	size_t n, for_agent, away;
	waiting_t *oldest; /* points into the queue's list */
	waiting_t *list;
	size_t cap;
	cJSON *langs, *steps, *channels, *tenants; /* {"key": count} */
} queue_stat_t;

typedef struct status {
	queue_stat_t *q;
	size_t n, cap;
	omr_hmap_t *seen; /* SSCAN may return an id twice (a rehash meanwhile): counted once */
} status_t;

static char *dup_reply(const redisReply *r)
{
	return strdup(r && r->type == REDIS_REPLY_STRING ? r->str : "");
}

static long long num_reply(const redisReply *r)
{
	return r && r->type == REDIS_REPLY_STRING ? strtoll(r->str, NULL, 10) : 0;
}

static queue_stat_t *queue_get(status_t *st, const char *name)
{
	for (size_t i = 0; i < st->n; i++)
		if (strcmp(st->q[i].name, name) == 0)
			return &st->q[i];
	if (st->n == st->cap) {
		size_t cap = st->cap ? st->cap * 2 : 8;
		queue_stat_t *q = realloc(st->q, cap * sizeof(*q));
		if (!q)
			return NULL;
		st->q = q, st->cap = cap;
	}
	queue_stat_t *q = &st->q[st->n];
	memset(q, 0, sizeof(*q));
	q->name = strdup(name);
	q->langs = cJSON_CreateObject();
	q->steps = cJSON_CreateObject();
	q->channels = cJSON_CreateObject();
	q->tenants = cJSON_CreateObject();
	if (!q->name || !q->langs || !q->steps || !q->channels || !q->tenants) {
		free(q->name);
		cJSON_Delete(q->langs), cJSON_Delete(q->steps);
		cJSON_Delete(q->channels), cJSON_Delete(q->tenants);
		return NULL;
	}
	st->n++;
	return q;
}

static bool count(cJSON *obj, const char *key)
{
	cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key[0] ? key : "-");
	if (v) {
		cJSON_SetNumberValue(v, v->valuedouble + 1);
		return true;
	}
	return cJSON_AddNumberToObject(obj, key[0] ? key : "-", 1) != NULL;
}

static void waiting_free(waiting_t *w)
{
	free(w->id), free(w->tenant), free(w->lang), free(w->channel), free(w->pref);
}

static void status_free(status_t *st)
{
	for (size_t i = 0; i < st->n; i++) {
		queue_stat_t *q = &st->q[i];
		for (size_t k = 0; k < q->n; k++)
			waiting_free(&q->list[k]);
		free(q->list), free(q->name);
		cJSON_Delete(q->langs), cJSON_Delete(q->steps);
		cJSON_Delete(q->channels), cJSON_Delete(q->tenants);
	}
	free(st->q);
	omr_hmap_destroy(&st->seen);
}

/* The queues of the rules in force, in their order, with their priority; a group no daemon
 * has written rules for routes by the built-in single queue "default". */
static int load_rules(omr_ctl_t *ctl, status_t *st)
{
	redisReply *r = redisCommand(ctl->redis, "GET %s:rules", ctl->prefix);
	if (!r)
		return omr_ctl_error("redis: GET rules: %s", ctl->redis->errstr);
	cJSON *rules = r->type == REDIS_REPLY_STRING ? cJSON_ParseWithLength(r->str, r->len) : NULL;
	freeReplyObject(r);
	const cJSON *queues = cJSON_GetObjectItemCaseSensitive(rules, "queues");
	const cJSON *q;
	int rc = OMR_CTL_OK;
	if (!cJSON_IsArray(queues) || cJSON_GetArraySize(queues) == 0) {
		queue_stat_t *d = queue_get(st, "default");
		if (d)
			d->in_rules = true;
		else
			rc = omr_ctl_error("out of memory");
	}
	if (!cJSON_IsArray(queues))
		queues = NULL;
	cJSON_ArrayForEach(q, queues)
	{
		const cJSON *name = cJSON_GetObjectItemCaseSensitive(q, "name");
		const cJSON *prio = cJSON_GetObjectItemCaseSensitive(q, "priority");
		if (!cJSON_IsString(name))
			continue;
		queue_stat_t *s = queue_get(st, name->valuestring);
		if (!s) {
			rc = omr_ctl_error("out of memory");
			break;
		}
		s->in_rules = true;
		s->priority = cJSON_IsNumber(prio) ? (long long)prio->valuedouble : 0;
	}
	cJSON_Delete(rules);
	return rc;
}

/* One waiting conversation into its queue's figures (and list, for `queue status QUEUE`). */
static bool add_waiting(status_t *st, const char *id, redisReply **f, const char *tenant)
{
	if (!f[C_STATE] || f[C_STATE]->type != REDIS_REPLY_STRING ||
	    strcmp(f[C_STATE]->str, "queued") != 0)
		return true; /* assigned, closed or expired since it was listed */
	if (tenant && (f[C_TENANT]->type != REDIS_REPLY_STRING || strcmp(f[C_TENANT]->str, tenant)))
		return true;
	char *qname = dup_reply(f[C_QUEUE]);
	queue_stat_t *q = qname ? queue_get(st, qname) : NULL;
	free(qname);
	if (!q)
		return false;
	if (q->n == q->cap) {
		size_t cap = q->cap ? q->cap * 2 : 16;
		waiting_t *l = realloc(q->list, cap * sizeof(*l));
		if (!l)
			return false;
		/* (oldest points into the list) */
		if (q->oldest)
			q->oldest = l + (q->oldest - q->list);
		q->list = l, q->cap = cap;
	}
	waiting_t *w = &q->list[q->n];
	*w = (waiting_t){.id = strdup(id),
	                 .tenant = dup_reply(f[C_TENANT]),
	                 .lang = dup_reply(f[C_RLANG]),
	                 .channel = dup_reply(f[C_CHANNEL]),
	                 .pref = dup_reply(f[C_PREF]),
	                 .enqueued_ms = num_reply(f[C_ENQUEUED]),
	                 .step = num_reply(f[C_STEP]),
	                 .away = num_reply(f[C_LEFT]) > 0};
	if (!w->id || !w->tenant || !w->lang || !w->channel || !w->pref) {
		waiting_free(w);
		return false;
	}
	char step[24];
	snprintf(step, sizeof(step), "%lld", w->step ? w->step : 1);
	q->n++;
	q->for_agent += w->pref[0] != '\0';
	q->away += w->away;
	if (!q->oldest || w->enqueued_ms < q->oldest->enqueued_ms ||
	    (w->enqueued_ms == q->oldest->enqueued_ms && strcmp(w->id, q->oldest->id) < 0))
		q->oldest = w;
	return count(q->langs, w->lang) && count(q->steps, step) &&
	       count(q->channels, w->channel) && count(q->tenants, w->tenant);
}

/* HMGET of each id of one SSCAN page, pipelined. */
static int read_page(omr_ctl_t *ctl, status_t *st, const redisReply *ids, const char *tenant)
{
	const char *argv[2 + NF];
	size_t lens[2 + NF];
	char key[256];
	argv[0] = "HMGET", lens[0] = 5;
	for (int i = 0; i < NF; i++)
		argv[2 + i] = fields[i], lens[2 + i] = strlen(fields[i]);
	bool *fresh = calloc(ids->elements ? ids->elements : 1, sizeof(*fresh));
	if (!fresh)
		return omr_ctl_error("out of memory");
	for (size_t i = 0; i < ids->elements; i++) {
		const char *id = ids->element[i]->str;
		if (ids->element[i]->type != REDIS_REPLY_STRING || omr_hmap_get(st->seen, id))
			continue;
		if (omr_hmap_put(st->seen, id, st) != 0) {
			free(fresh);
			return omr_ctl_error("out of memory");
		}
		fresh[i] = true;
		int n = snprintf(key, sizeof(key), "%s:conv:%s", ctl->prefix, id);
		argv[1] = key, lens[1] = (size_t)n;
		if (redisAppendCommandArgv(ctl->redis, 2 + NF, argv, lens) != REDIS_OK) {
			free(fresh);
			return omr_ctl_error("redis: %s", ctl->redis->errstr);
		}
	}
	int rc = OMR_CTL_OK;
	for (size_t i = 0; i < ids->elements; i++) {
		if (!fresh[i])
			continue;
		redisReply *r = NULL;
		if (redisGetReply(ctl->redis, (void **)&r) != REDIS_OK || !r) {
			free(fresh);
			return omr_ctl_error("redis: %s", ctl->redis->errstr);
		}
		if (rc == OMR_CTL_OK && r->type == REDIS_REPLY_ARRAY && r->elements == NF &&
		    !add_waiting(st, ids->element[i]->str, r->element, tenant))
			rc = omr_ctl_error("out of memory");
		freeReplyObject(r);
	}
	free(fresh);
	return rc;
}

static int read_waiting(omr_ctl_t *ctl, status_t *st, const char *tenant)
{
	char cursor[32] = "0", key[128], batch[16];
	snprintf(key, sizeof(key), "%s:queued", ctl->prefix);
	snprintf(batch, sizeof(batch), "%d", BATCH);
	do {
		const char *argv[] = {"SSCAN", key, cursor, "COUNT", batch};
		redisReply *r = redisCommandArgv(ctl->redis, 5, argv, NULL);
		if (!r)
			return omr_ctl_error("redis: SSCAN: %s", ctl->redis->errstr);
		if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
		    r->element[0]->type != REDIS_REPLY_STRING ||
		    r->element[1]->type != REDIS_REPLY_ARRAY) {
			int rc = omr_ctl_error("redis: SSCAN %s: %s", key,
			                       r->type == REDIS_REPLY_ERROR ? r->str
			                                                    : "unexpected reply");
			freeReplyObject(r);
			return rc;
		}
		snprintf(cursor, sizeof(cursor), "%s", r->element[0]->str);
		int rc = read_page(ctl, st, r->element[1], tenant);
		freeReplyObject(r);
		if (rc != OMR_CTL_OK)
			return rc;
	} while (strcmp(cursor, "0") != 0);
	return OMR_CTL_OK;
}

/* Redis's clock in ms (the one enqueue times were taken with). */
static int redis_now(omr_ctl_t *ctl, long long *now)
{
	redisReply *r = redisCommand(ctl->redis, "TIME");
	if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
		freeReplyObject(r);
		return omr_ctl_error("redis: TIME: %s",
		                     r ? "unexpected reply" : ctl->redis->errstr);
	}
	*now = strtoll(r->element[0]->str, NULL, 10) * 1000 +
	       strtoll(r->element[1]->str, NULL, 10) / 1000;
	freeReplyObject(r);
	return OMR_CTL_OK;
}

/* The queues' recent average waits, ms, by queue name: {"Q": ms}. */
static int read_averages(omr_ctl_t *ctl, cJSON **out)
{
	redisReply *r = redisCommand(ctl->redis, "HGETALL %s:qstats", ctl->prefix);
	if (!r)
		return omr_ctl_error("redis: HGETALL qstats: %s", ctl->redis->errstr);
	*out = cJSON_CreateObject();
	static const char pre[] = "wait_ewma_ms:";
	for (size_t i = 0; *out && r->type == REDIS_REPLY_ARRAY && i + 1 < r->elements; i += 2) {
		const char *k = r->element[i]->str;
		if (r->element[i]->type == REDIS_REPLY_STRING &&
		    strncmp(k, pre, sizeof(pre) - 1) == 0)
			cJSON_AddNumberToObject(*out, k + sizeof(pre) - 1,
			                        (double)num_reply(r->element[i + 1]));
	}
	freeReplyObject(r);
	return *out ? OMR_CTL_OK : omr_ctl_error("out of memory");
}

/* "2h05m", "3m12s", "45s"; "-" for none. */
static void format_duration(long long ms, bool have, char *out, size_t outsize)
{
	long long s = ms < 0 ? 0 : ms / 1000;
	if (!have)
		snprintf(out, outsize, "-");
	else if (s >= 3600)
		snprintf(out, outsize, "%lldh%02lldm", s / 3600, s / 60 % 60);
	else if (s >= 60)
		snprintf(out, outsize, "%lldm%02llds", s / 60, s % 60);
	else
		snprintf(out, outsize, "%llds", s);
}

static double average_of(const cJSON *avg, const char *queue, bool *have)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(avg, queue);
	*have = cJSON_IsNumber(v);
	return *have ? v->valuedouble : 0;
}

static int cmp_waiting(const void *a, const void *b)
{
	const waiting_t *x = a, *y = b;
	if (x->enqueued_ms != y->enqueued_ms)
		return x->enqueued_ms < y->enqueued_ms ? -1 : 1;
	return strcmp(x->id, y->id);
}

static cJSON *queue_json(const queue_stat_t *q, const cJSON *avg, long long now, bool list)
{
	bool have;
	double a = average_of(avg, q->name, &have);
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "name", q->name);
	cJSON_AddNumberToObject(o, "priority", (double)q->priority);
	cJSON_AddBoolToObject(o, "in_rules", q->in_rules);
	cJSON_AddNumberToObject(o, "waiting", (double)q->n);
	cJSON_AddNumberToObject(o, "waiting_for_agent", (double)q->for_agent);
	cJSON_AddNumberToObject(o, "customer_away", (double)q->away);
	if (q->oldest) {
		cJSON *old = cJSON_AddObjectToObject(o, "oldest");
		cJSON_AddStringToObject(old, "conversation", q->oldest->id);
		cJSON_AddNumberToObject(old, "enqueued_ms", (double)q->oldest->enqueued_ms);
		cJSON_AddNumberToObject(old, "waited_ms", (double)(now - q->oldest->enqueued_ms));
	} else {
		cJSON_AddNullToObject(o, "oldest");
	}
	if (have)
		cJSON_AddNumberToObject(o, "average_wait_ms", a);
	else
		cJSON_AddNullToObject(o, "average_wait_ms");
	cJSON_AddItemToObject(o, "languages", cJSON_Duplicate(q->langs, true));
	cJSON_AddItemToObject(o, "steps", cJSON_Duplicate(q->steps, true));
	cJSON_AddItemToObject(o, "channels", cJSON_Duplicate(q->channels, true));
	cJSON_AddItemToObject(o, "tenants", cJSON_Duplicate(q->tenants, true));
	if (list) {
		cJSON *arr = cJSON_AddArrayToObject(o, "conversations");
		for (size_t i = 0; arr && i < q->n; i++) {
			const waiting_t *w = &q->list[i];
			cJSON *c = cJSON_CreateObject();
			cJSON_AddStringToObject(c, "conversation", w->id);
			cJSON_AddStringToObject(c, "tenant", w->tenant);
			cJSON_AddStringToObject(c, "channel", w->channel);
			cJSON_AddStringToObject(c, "language", w->lang);
			cJSON_AddNumberToObject(c, "step", (double)(w->step ? w->step : 1));
			cJSON_AddNumberToObject(c, "enqueued_ms", (double)w->enqueued_ms);
			cJSON_AddNumberToObject(c, "waited_ms", (double)(now - w->enqueued_ms));
			cJSON_AddStringToObject(c, "waiting_for_agent", w->pref);
			cJSON_AddBoolToObject(c, "customer_away", w->away);
			cJSON_AddItemToArray(arr, c);
		}
	}
	return o;
}

/* "es:2,en:1" (most first), in a buffer the caller frees, or NULL. */
static char *levels_text(const cJSON *obj)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	if (!f)
		return NULL;
	omr_ctl_format_levels(obj, f);
	if (fclose(f) != 0) {
		free(buf);
		return NULL;
	}
	return buf;
}

static int width(int min, const char *s)
{
	int n = (int)strlen(s);
	return n > min ? n : min;
}

static int print_table(const status_t *st, const cJSON *avg, long long now)
{
	int wq = 5, wl = 9;
	char **langs = calloc(st->n ? st->n : 1, sizeof(*langs));
	if (!langs)
		return omr_ctl_error("out of memory");
	for (size_t i = 0; i < st->n; i++) {
		langs[i] = levels_text(st->q[i].langs);
		if (!langs[i]) {
			for (size_t k = 0; k < i; k++)
				free(langs[k]);
			free(langs);
			return omr_ctl_error("out of memory");
		}
		wq = width(wq, st->q[i].name);
		wl = width(wl, langs[i]);
	}
	printf("%-*s  %8s  %7s  %9s  %4s  %8s  %8s  %-*s  %s\n", wq, "QUEUE", "PRIORITY", "WAITING",
	       "FOR-AGENT", "AWAY", "WAITED", "AVG-WAIT", wl, "LANGUAGES", "OLDEST");
	for (size_t i = 0; i < st->n; i++) {
		const queue_stat_t *q = &st->q[i];
		bool have;
		double a = average_of(avg, q->name, &have);
		char waited[32], average[32];
		format_duration(q->oldest ? now - q->oldest->enqueued_ms : 0, q->oldest != NULL,
		                waited, sizeof(waited));
		format_duration((long long)a, have, average, sizeof(average));
		printf("%-*s  %8lld  %7zu  %9zu  %4zu  %8s  %8s  %-*s  %s%s\n", wq, q->name,
		       q->priority, q->n, q->for_agent, q->away, waited, average, wl, langs[i],
		       q->oldest ? q->oldest->id : "-",
		       q->in_rules ? "" : "  (not in the rules in force)");
		free(langs[i]);
	}
	free(langs);
	return OMR_CTL_OK;
}

static void print_list(const queue_stat_t *q, long long now)
{
	int wc = 12, wt = 6;
	for (size_t i = 0; i < q->n; i++) {
		wc = width(wc, q->list[i].id);
		wt = width(wt, q->list[i].tenant);
	}
	printf("%-4s  %-*s  %-*s  %-7s  %-8s  %4s  %8s  %s\n", "#", wc, "CONVERSATION", wt,
	       "TENANT", "CHANNEL", "LANGUAGE", "STEP", "WAITED", "NOTE");
	for (size_t i = 0; i < q->n; i++) {
		const waiting_t *w = &q->list[i];
		char waited[32];
		format_duration(now - w->enqueued_ms, true, waited, sizeof(waited));
		printf("%-4zu  %-*s  %-*s  %-7s  %-8s  %4lld  %8s  ", i + 1, wc, w->id, wt,
		       w->tenant, w->channel, w->lang[0] ? w->lang : "-", w->step ? w->step : 1,
		       waited);
		if (w->pref[0])
			printf("waiting for agent %s%s", w->pref, w->away ? "; " : "");
		printf("%s\n", w->away ? "customer away" : (w->pref[0] ? "" : "-"));
	}
}

int omr_ctl_queue(omr_ctl_t *ctl, int argc, char **argv)
{
	if (argc < 2 || argc > 3 || strcmp(argv[1], "status") != 0)
		return omr_ctl_usage_error("usage: queue status [QUEUE] [--tenant T] [--json]");
	int rc = omr_ctl_check_options(ctl, "queue", "status", F_TENANT);
	if (rc != 0)
		return rc;
	const char *only = argc == 3 ? argv[2] : NULL;
	if (only && !omr_id_is_valid(only, OMR_ENV_ID_MAX))
		return omr_ctl_usage_error("queue names are 1-128 of A-Z a-z 0-9 . _ : @ -");
	if (omr_ctl_connect(ctl) != OMR_CTL_OK)
		return OMR_CTL_FAIL;
	status_t st = {.seen = omr_hmap_new()};
	if (!st.seen)
		return omr_ctl_error("out of memory");
	cJSON *avg = NULL;
	long long now = 0;
	const char *tenant = ctl->tenant_given ? ctl->default_tenant : NULL;
	rc = load_rules(ctl, &st);
	if (rc == OMR_CTL_OK)
		rc = read_waiting(ctl, &st, tenant);
	if (rc == OMR_CTL_OK)
		rc = read_averages(ctl, &avg);
	if (rc == OMR_CTL_OK)
		rc = redis_now(ctl, &now);
	queue_stat_t *one = NULL;
	for (size_t i = 0; rc == OMR_CTL_OK && only && i < st.n; i++)
		if (strcmp(st.q[i].name, only) == 0)
			one = &st.q[i];
	if (rc == OMR_CTL_OK && only && !one)
		rc = omr_ctl_error(
		        "queue %s: no such queue in the rules in force, and nothing waits "
		        "in it",
		        only);
	if (rc == OMR_CTL_OK && one) {
		/* oldest first, the order of cmp_waiting (its pointer would move with the sort) */
		if (one->n > 0) /* (list is NULL when nothing waits) */
			qsort(one->list, one->n, sizeof(*one->list), cmp_waiting);
		one->oldest = one->n ? one->list : NULL;
	}
	if (rc == OMR_CTL_OK && ctl->json) {
		cJSON *o = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(o, "queues");
		cJSON_AddNumberToObject(o, "at_ms", (double)now);
		if (tenant)
			cJSON_AddStringToObject(o, "tenant", tenant);
		for (size_t i = 0; arr && i < st.n; i++)
			if (!one || one == &st.q[i])
				cJSON_AddItemToArray(arr,
				                     queue_json(&st.q[i], avg, now, one != NULL));
		omr_ctl_print_json(o);
		cJSON_Delete(o);
	} else if (rc == OMR_CTL_OK && one) {
		print_list(one, now);
	} else if (rc == OMR_CTL_OK) {
		rc = print_table(&st, avg, now);
	}
	cJSON_Delete(avg);
	status_free(&st);
	return rc;
}
