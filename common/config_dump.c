/* config_dump.c - writes a loaded configuration out: omr_config_dump (every option, secrets
 * masked, then one line per queue) and omr_config_diff_static (the options a reload cannot
 * apply). Reads the option table of config.c through config_int.h. Owns nothing; any thread. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_int.h"
#include "omnirouter/config.h"

/* Indexed by omr_log_level_t; log.c keeps its own copy private. */
static const char *const level_names[] = {"debug", "info", "warn", "error"};

/* Text written into a caller's buffer, always NUL-terminated; ok turns false once something
 * had to be cut. */
typedef struct sink {
	char *out;
	size_t size, used;
	bool ok;
} sink_t;

static void put(sink_t *k, const char *s, size_t len)
{
	if (k->used >= k->size) {
		k->ok = k->ok && len == 0;
		return;
	}
	size_t room = k->size - k->used - 1;
	size_t n = len < room ? len : room;
	memcpy(k->out + k->used, s, n);
	k->used += n;
	k->out[k->used] = '\0';
	k->ok = k->ok && n == len;
}

static void put_str(sink_t *k, const char *s)
{
	put(k, s, strlen(s));
}

__attribute__((format(printf, 2, 3))) static void put_fmt(sink_t *k, const char *fmt, ...)
{
	char buf[64];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(buf)) /* only numbers and ids come through here */
		k->ok = false;
	else
		put(k, buf, (size_t)n);
}

/* Quoted, so an empty string or one with spaces reads unambiguously. */
static void put_quoted(sink_t *k, const char *s)
{
	put_str(k, "\"");
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			put_str(k, "\\");
		put(k, s, 1);
	}
	put_str(k, "\"");
}

/* ---- diff ---- */

static bool opt_equal(const omr_config_t *a, const omr_config_t *b, const omr_cfg_opt_t *o)
{
	const void *pa = omr_cfg_opt_cptr(a, o), *pb = omr_cfg_opt_cptr(b, o);
	switch (o->type) {
	case OMR_CFG_INT:
		return *(const int64_t *)pa == *(const int64_t *)pb;
	case OMR_CFG_BOOL:
		return *(const bool *)pa == *(const bool *)pb;
	case OMR_CFG_LEVEL:
		return *(const omr_log_level_t *)pa == *(const omr_log_level_t *)pb;
	case OMR_CFG_STR: {
		const char *sa = *(char *const *)pa, *sb = *(char *const *)pb;
		return (sa && sb) ? strcmp(sa, sb) == 0 : sa == sb;
	}
	}
	return false;
}

size_t omr_config_diff_static(const omr_config_t *a, const omr_config_t *b, char *out,
                              size_t outsize)
{
	sink_t k = {.out = out, .size = outsize, .used = 0, .ok = true};
	size_t n = 0;
	if (outsize > 0)
		out[0] = '\0';
	for (size_t i = 0; i < OMR_CFG_NOPTS; i++) {
		if (omr_cfg_opts[i].reloadable || opt_equal(a, b, &omr_cfg_opts[i]))
			continue;
		if (n++ > 0)
			put_str(&k, ", ");
		put_str(&k, omr_cfg_opts[i].name);
	}
	return n;
}

int omr_config_keep_static(omr_config_t *next, const omr_config_t *running)
{
	for (size_t i = 0; i < OMR_CFG_NOPTS; i++) {
		const omr_cfg_opt_t *o = &omr_cfg_opts[i];
		if (o->reloadable || opt_equal(next, running, o))
			continue;
		void *pn = (char *)next + o->offset;
		const void *pr = omr_cfg_opt_cptr(running, o);
		switch (o->type) {
		case OMR_CFG_INT:
			*(int64_t *)pn = *(const int64_t *)pr;
			break;
		case OMR_CFG_BOOL:
			*(bool *)pn = *(const bool *)pr;
			break;
		case OMR_CFG_LEVEL:
			*(omr_log_level_t *)pn = *(const omr_log_level_t *)pr;
			break;
		case OMR_CFG_STR: {
			const char *s = *(char *const *)pr;
			char *copy = s ? strdup(s) : NULL;
			if (s && !copy)
				return -ENOMEM;
			free(*(char **)pn);
			*(char **)pn = copy;
			break;
		}
		}
	}
	return 0;
}

/* ---- dump ---- */

/* Options whose values never appear in dumps or logs. */
static bool opt_is_secret(const omr_cfg_opt_t *o)
{
	const char *key = o->name + omr_cfg_section_len(o->name) + 1;
	return strstr(key, "password") || strstr(key, "secret") || strstr(key, "token");
}

static void dump_value(sink_t *k, const omr_config_t *cfg, const omr_cfg_opt_t *o)
{
	const void *p = omr_cfg_opt_cptr(cfg, o);
	switch (o->type) {
	case OMR_CFG_INT:
		put_fmt(k, "%" PRId64, *(const int64_t *)p);
		return;
	case OMR_CFG_BOOL:
		put_str(k, *(const bool *)p ? "true" : "false");
		return;
	case OMR_CFG_LEVEL: {
		unsigned lvl = (unsigned)*(const omr_log_level_t *)p;
		put_str(k, lvl < sizeof(level_names) / sizeof(level_names[0]) ? level_names[lvl]
		                                                              : "?");
		return;
	}
	case OMR_CFG_STR:
		break;
	}
	const char *s = *(char *const *)p;
	if (!s)
		s = "";
	if (opt_is_secret(o) && *s)
		put_str(k, "\"********\"");
	else
		put_quoted(k, s);
}

/* "[a,b]"; "[]" (any) when empty. Items are ids or language subtags: no quoting needed. */
static void dump_list(sink_t *k, char *const *items, size_t n)
{
	put_str(k, "[");
	for (size_t i = 0; i < n; i++) {
		if (i > 0)
			put_str(k, ",");
		put_str(k, items[i]);
	}
	put_str(k, "]");
}

static void dump_steps(sink_t *k, const omr_queue_t *q)
{
	put_str(k, "[");
	for (size_t i = 0; i < q->n_steps; i++) {
		const omr_queue_step_t *st = &q->steps[i];
		put_fmt(k, "%s{after_s:%" PRId64, i > 0 ? "," : "", st->after_s);
		if (st->min_level_delta > 0)
			put_fmt(k, ",min_level_delta:%d", st->min_level_delta);
		if (st->n_languages > 0) {
			put_str(k, ",languages:");
			dump_list(k, st->languages, st->n_languages);
		}
		if (st->overflow) {
			put_str(k, ",overflow:");
			put_str(k, st->overflow);
		}
		put_str(k, "}");
	}
	put_str(k, "]");
}

static void dump_queue(sink_t *k, size_t idx, const omr_queue_t *q)
{
	put_fmt(k, "queues[%zu] = name=", idx);
	put_str(k, q->name);
	put_str(k, " tenants=");
	dump_list(k, q->tenants, q->n_tenants);
	put_str(k, " channels=");
	dump_list(k, q->channels, q->n_channels);
	put_str(k, " languages=");
	dump_list(k, q->languages, q->n_languages);
	put_str(k, " skills={");
	for (size_t i = 0; i < q->n_skills; i++) {
		put_str(k, i > 0 ? "," : "");
		put_str(k, q->skills[i].skill);
		put_fmt(k, ":%d", q->skills[i].level);
	}
	put_str(k, "} attributes={");
	for (size_t i = 0; i < q->n_attributes; i++) {
		put_str(k, i > 0 ? "," : "");
		put_str(k, q->attributes[i].key);
		put_str(k, ":");
		put_quoted(k, q->attributes[i].value);
	}
	const char *strategy = omr_strategy_name(q->strategy);
	put_str(k, "} strategy=");
	put_str(k, strategy ? strategy : "?");
	put_fmt(k, " priority=%d min_proficiency=%d max_wait_s=%" PRId64, q->priority,
	        q->min_proficiency, q->max_wait_s);
	put_str(k, " max_wait_action=");
	if (q->max_wait_overflow) {
		put_str(k, "overflow:");
		put_str(k, q->max_wait_overflow);
	} else {
		put_str(k, "close");
	}
	put_fmt(k, " offer_timeout_s=%" PRId64 " auto_accept=%s", q->offer_timeout_s,
	        q->auto_accept ? "true" : "false");
	put_fmt(k, " wrapup_s=%" PRId64 " sticky_window_s=%" PRId64, q->wrapup_s,
	        q->sticky_window_s);
	put_str(k, " steps=");
	dump_steps(k, q);
	put_str(k, "\n");
}

int omr_config_dump(const omr_config_t *cfg, char *out, size_t outsize)
{
	if (outsize == 0)
		return -ENOSPC;
	sink_t k = {.out = out, .size = outsize, .used = 0, .ok = true};
	out[0] = '\0';
	for (size_t i = 0; i < OMR_CFG_NOPTS && k.ok; i++) {
		put_str(&k, omr_cfg_opts[i].name);
		put_str(&k, " = ");
		dump_value(&k, cfg, &omr_cfg_opts[i]);
		put_str(&k, "\n");
	}
	for (size_t i = 0; i < cfg->n_queues && k.ok; i++)
		dump_queue(&k, i, &cfg->queues[i]);
	return k.ok ? 0 : -ENOSPC;
}
