/* config_queues.c - the routing parts of the configuration: the queues sequence with each
 * queue's escalation ladder. Reads through the event cursor of config_cursor.c, so errors
 * carry file:line:column.
 * Owns the queues it builds until they are handed to the omr_config_t; runs on the thread
 * that loads. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_int.h"
#include "omnirouter/channel.h"  /* omr_language_primary */
#include "omnirouter/envelope.h" /* omr_channel_from_name, omr_utf8_is_valid */
#include "omnirouter/util.h"

/* Room for a path such as "queues[63].steps[15].languages[63]" or "queues[1].skills.NAME". */
#define WHERE_MAX (OMR_CONFIG_ID_MAX + 48)
#define ECHO_MAX 72
#define NO_STEP SIZE_MAX

static const char *const strategy_names[OMR_STRATEGY_COUNT] = {"least_loaded", "longest_idle",
                                                               "best_skill"};

const char *omr_strategy_name(omr_strategy_t s)
{
	return (unsigned)s < OMR_STRATEGY_COUNT ? strategy_names[s] : NULL;
}

const omr_queue_t *omr_config_find_queue(const omr_config_t *cfg, const char *name)
{
	for (size_t i = 0; cfg && name && i < cfg->n_queues; i++) {
		if (strcmp(cfg->queues[i].name, name) == 0)
			return &cfg->queues[i];
	}
	return NULL;
}

/* Writes a path for messages ("queues[1].steps[0].after_s") into out, WHERE_MAX bytes. The
 * limits keep every path shorter than that. */
__attribute__((format(printf, 2, 3))) static const char *path(char *out, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(out, WHERE_MAX, fmt, ap);
	va_end(ap);
	return out;
}

/* ---- building and freeing ---- */

static void free_strs(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

static void free_queue(omr_queue_t *q)
{
	free(q->name);
	free_strs(q->tenants, q->n_tenants);
	free_strs(q->channels, q->n_channels);
	free_strs(q->languages, q->n_languages);
	for (size_t i = 0; i < q->n_skills; i++)
		free(q->skills[i].skill);
	free(q->skills);
	for (size_t i = 0; i < q->n_attributes; i++) {
		free(q->attributes[i].key);
		free(q->attributes[i].value);
	}
	free(q->attributes);
	free(q->max_wait_overflow);
	for (size_t i = 0; i < q->n_steps; i++) {
		free_strs(q->steps[i].languages, q->steps[i].n_languages);
		free(q->steps[i].overflow);
	}
	free(q->steps);
}

void omr_cfg_queues_free(omr_queue_t *queues, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free_queue(&queues[i]);
	free(queues);
}

/* The documented defaults of a queue (spec "Config (YAML) additions"). */
static void queue_defaults(omr_queue_t *q)
{
	memset(q, 0, sizeof(*q));
	q->strategy = OMR_STRATEGY_LEAST_LOADED;
	q->priority = 0;
	q->min_proficiency = 1;
	q->offer_timeout_s = 30;
	q->auto_accept = true;
}

int omr_cfg_queues_init_default(omr_config_t *cfg)
{
	omr_queue_t *q = calloc(1, sizeof(*q));
	if (!q)
		return -ENOMEM;
	queue_defaults(q);
	if (!(q->name = strdup("default"))) {
		free(q);
		return -ENOMEM;
	}
	omr_cfg_queues_free(cfg->queues, cfg->n_queues);
	cfg->queues = q;
	cfg->n_queues = 1;
	return 0;
}

/* The array v of n elements of size sz, reallocated with one more, zeroed, at the end; NULL
 * on ENOMEM (then v is untouched). */
static void *grow(void *v, size_t n, size_t sz)
{
	char *bigger = realloc(v, (n + 1) * sz);
	if (bigger)
		memset(bigger + n * sz, 0, sz);
	return bigger;
}

/* ---- the reader ---- */

typedef struct qloader {
	omr_cfg_cursor_t *c;
	omr_cfg_qstate_t *st;
	omr_queue_t *queues; /* being built; handed to the config at the end */
	size_t n;
} qloader_t;

static const yaml_event_t *cur(const qloader_t *ql)
{
	return &ql->c->ev;
}

static const char *text(const qloader_t *ql)
{
	return (const char *)ql->c->ev.data.scalar.value;
}

static size_t text_len(const qloader_t *ql)
{
	return ql->c->ev.data.scalar.length;
}

static yaml_mark_t here(const qloader_t *ql)
{
	return ql->c->ev.start_mark;
}

static const char *echo_text(const qloader_t *ql, char *buf, size_t size)
{
	return omr_cfg_echo(buf, size, text(ql), text_len(ql));
}

static char *dup_text(const qloader_t *ql)
{
	return strndup(text(ql), text_len(ql));
}

/* The current event must be a scalar with no NUL inside (libyaml allows "\0" when quoted). */
static int want_scalar(qloader_t *ql, const char *where)
{
	if (cur(ql)->type != YAML_SCALAR_EVENT)
		return omr_cfg_fail_at(ql->c, here(ql), "%s: expected a scalar value, found %s",
		                       where, omr_cfg_node_kind(cur(ql)));
	if (memchr(text(ql), '\0', text_len(ql)))
		return omr_cfg_fail_at(ql->c, here(ql), "%s: value contains a NUL byte", where);
	return 0;
}

/* A scalar that is an id: name, tenant, skill, attribute key, overflow target. */
static int want_id(qloader_t *ql, const char *where, const char *what)
{
	char buf[ECHO_MAX];
	int rc = want_scalar(ql, where);
	if (rc == 0 && !omr_id_is_valid(text(ql), OMR_CONFIG_ID_MAX))
		rc = omr_cfg_fail_at(ql->c, here(ql),
		                     "%s: '%s' is not %s (1..64 of A-Z a-z 0-9 . _ : @ -)", where,
		                     echo_text(ql, buf, sizeof(buf)), what);
	return rc;
}

static int get_int(qloader_t *ql, const char *where, int64_t min, int64_t max, int64_t *out)
{
	char buf[ECHO_MAX];
	int rc = want_scalar(ql, where);
	if (rc < 0)
		return rc;
	rc = omr_parse_int(text(ql), min, max, out);
	if (rc == -ERANGE)
		return omr_cfg_fail_at(ql->c, here(ql),
		                       "%s: %s is out of range [%" PRId64 ", %" PRId64 "]", where,
		                       echo_text(ql, buf, sizeof(buf)), min, max);
	if (rc < 0)
		return omr_cfg_fail_at(ql->c, here(ql), "%s: '%s' is not a whole base-10 number",
		                       where, echo_text(ql, buf, sizeof(buf)));
	return 0;
}

static int get_small_int(qloader_t *ql, const char *where, int min, int max, int *out)
{
	int64_t v;
	int rc = get_int(ql, where, min, max, &v);
	if (rc == 0)
		*out = (int)v;
	return rc;
}

/* Checks one list item (the current event, a scalar) and returns its stored form in out
 * (at least 16 bytes) or, when it is stored as written, an empty out. */
typedef int (*item_fn)(qloader_t *ql, const char *where, char *out, size_t outsize);

static int tenant_item(qloader_t *ql, const char *where, char *out, size_t outsize)
{
	out[0] = '\0';
	return want_id(ql, where, "a tenant id");
}

static int channel_item(qloader_t *ql, const char *where, char *out, size_t outsize)
{
	char buf[ECHO_MAX];
	int rc = want_scalar(ql, where);
	if (rc < 0)
		return rc;
	omr_channel_t ch = omr_channel_from_name(text(ql), text_len(ql));
	if (ch == OMR_CHANNEL_NONE)
		return omr_cfg_fail_at(ql->c, here(ql),
		                       "%s: '%s' is not a channel (chat, email, voice)", where,
		                       echo_text(ql, buf, sizeof(buf)));
	snprintf(out, outsize, "%s", omr_channel_name(ch));
	return 0;
}

/* Stored as the lowercase primary subtag, the part routing matches on. */
static int language_item(qloader_t *ql, const char *where, char *out, size_t outsize)
{
	char buf[ECHO_MAX];
	int rc = want_scalar(ql, where);
	if (rc < 0)
		return rc;
	if (omr_language_primary(text(ql), out, outsize) != 0)
		return omr_cfg_fail_at(ql->c, here(ql), "%s: '%s' is not a BCP-47 language tag",
		                       where, echo_text(ql, buf, sizeof(buf)));
	return 0;
}

/* A sequence of scalars into *items (absent, "key:" alone and [] all mean empty). */
static int get_list(qloader_t *ql, const char *where, item_fn check, char ***items, size_t *n)
{
	char item[WHERE_MAX], norm[16], buf[ECHO_MAX];
	if (omr_cfg_is_empty_scalar(cur(ql)))
		return 0;
	if (cur(ql)->type != YAML_SEQUENCE_START_EVENT)
		return omr_cfg_fail_at(ql->c, here(ql), "%s: expected a sequence, found %s", where,
		                       omr_cfg_node_kind(cur(ql)));
	for (;;) {
		int rc = omr_cfg_next(ql->c);
		if (rc < 0)
			return rc;
		if (cur(ql)->type == YAML_SEQUENCE_END_EVENT)
			return 0;
		if (*n == OMR_CONFIG_MAX_ITEMS)
			return omr_cfg_fail_at(ql->c, here(ql), "%s: more than %d entries", where,
			                       OMR_CONFIG_MAX_ITEMS);
		path(item, "%s[%zu]", where, *n);
		if ((rc = check(ql, item, norm, sizeof(norm))) < 0)
			return rc;
		const char *value = norm[0] ? norm : text(ql);
		for (size_t i = 0; i < *n; i++) {
			if (strcmp((*items)[i], value) == 0)
				return omr_cfg_fail_at(
				        ql->c, here(ql), "%s: '%s' is listed twice", item,
				        omr_cfg_echo(buf, sizeof(buf), value, strlen(value)));
		}
		char **bigger = grow(*items, *n, sizeof(char *));
		if (!bigger)
			return omr_cfg_nomem(ql->c);
		*items = bigger;
		if (!(bigger[*n] = strdup(value)))
			return omr_cfg_nomem(ql->c);
		(*n)++;
	}
}

/* Next key of a map of ids (skills, attributes): 1 with the key current and its path in item
 * (WHERE_MAX bytes), 0 at the end. */
static int map_next_key(qloader_t *ql, const char *where, const char *what, size_t n, char *item)
{
	int rc = omr_cfg_next(ql->c);
	if (rc < 0)
		return rc;
	if (cur(ql)->type == YAML_MAPPING_END_EVENT)
		return 0;
	if (n == OMR_CONFIG_MAX_ITEMS)
		return omr_cfg_fail_at(ql->c, here(ql), "%s: more than %d entries", where,
		                       OMR_CONFIG_MAX_ITEMS);
	if (cur(ql)->type != YAML_SCALAR_EVENT)
		return omr_cfg_fail_at(ql->c, here(ql), "%s: a key must be a scalar, found %s",
		                       where, omr_cfg_node_kind(cur(ql)));
	if ((rc = want_id(ql, where, what)) < 0)
		return rc;
	path(item, "%s.%s", where, text(ql));
	return 1;
}

static int want_map(qloader_t *ql, const char *where, const char *what)
{
	if (cur(ql)->type == YAML_MAPPING_START_EVENT)
		return 0;
	return omr_cfg_fail_at(ql->c, here(ql), "%s: expected a mapping of %s, found %s", where,
	                       what, omr_cfg_node_kind(cur(ql)));
}

static int fail_twice(qloader_t *ql, const char *where)
{
	char buf[ECHO_MAX];
	return omr_cfg_fail_at(ql->c, here(ql), "%s: '%s' is given twice", where,
	                       echo_text(ql, buf, sizeof(buf)));
}

/* skills: {billing: 5} */
static int get_skills(qloader_t *ql, const char *where, omr_queue_t *q)
{
	char item[WHERE_MAX];
	int rc;
	if (omr_cfg_is_empty_scalar(cur(ql)))
		return 0;
	if ((rc = want_map(ql, where, "skill to level")) < 0)
		return rc;
	while ((rc = map_next_key(ql, where, "a skill id", q->n_skills, item)) > 0) {
		/* An agent's skill ids (omnirouterctl) cannot hold ':' (the level separator)
		 * or '@': a queue requiring one would wait for nobody. */
		if (strpbrk(text(ql), ":@")) {
			char buf[ECHO_MAX];
			return omr_cfg_fail_at(
			        ql->c, here(ql),
			        "%s: '%s' is not a skill id (1..64 of A-Z a-z 0-9 . _ -)", where,
			        echo_text(ql, buf, sizeof(buf)));
		}
		for (size_t i = 0; i < q->n_skills; i++) {
			if (strcmp(q->skills[i].skill, text(ql)) == 0)
				return fail_twice(ql, where);
		}
		omr_skill_req_t *bigger = grow(q->skills, q->n_skills, sizeof(*bigger));
		if (!bigger)
			return omr_cfg_nomem(ql->c);
		q->skills = bigger;
		omr_skill_req_t *s = &bigger[q->n_skills];
		if (!(s->skill = dup_text(ql)))
			return omr_cfg_nomem(ql->c);
		q->n_skills++;
		if ((rc = omr_cfg_next(ql->c)) < 0 ||
		    (rc = get_small_int(ql, item, 1, 10, &s->level)) < 0)
			return rc;
	}
	return rc;
}

/* attributes: {tier: gold}; values are compared exactly with the customer's, so they are
 * kept as written, but one line of UTF-8 like every string that reaches logs and Redis. */
static int get_attributes(qloader_t *ql, const char *where, omr_queue_t *q)
{
	char item[WHERE_MAX];
	int rc;
	if (omr_cfg_is_empty_scalar(cur(ql)))
		return 0;
	if ((rc = want_map(ql, where, "attribute to value")) < 0)
		return rc;
	while ((rc = map_next_key(ql, where, "an attribute name", q->n_attributes, item)) > 0) {
		for (size_t i = 0; i < q->n_attributes; i++) {
			if (strcmp(q->attributes[i].key, text(ql)) == 0)
				return fail_twice(ql, where);
		}
		omr_kv_t *bigger = grow(q->attributes, q->n_attributes, sizeof(*bigger));
		if (!bigger)
			return omr_cfg_nomem(ql->c);
		q->attributes = bigger;
		omr_kv_t *kv = &bigger[q->n_attributes];
		if (!(kv->key = dup_text(ql)))
			return omr_cfg_nomem(ql->c);
		q->n_attributes++;
		if ((rc = omr_cfg_next(ql->c)) < 0 || (rc = want_scalar(ql, item)) < 0)
			return rc;
		size_t len = text_len(ql);
		if (memchr(text(ql), '\r', len) || memchr(text(ql), '\n', len))
			return omr_cfg_fail_at(ql->c, here(ql),
			                       "%s: value contains a line break (CR or LF)", item);
		if (!omr_utf8_is_valid(text(ql), len))
			return omr_cfg_fail_at(ql->c, here(ql), "%s: value is not valid UTF-8",
			                       item);
		if (len > OMR_CONFIG_ATTR_VALUE_MAX)
			return omr_cfg_fail_at(ql->c, here(ql),
			                       "%s: value is %zu bytes, the maximum is %d", item,
			                       len, OMR_CONFIG_ATTR_VALUE_MAX);
		if (!(kv->value = dup_text(ql)))
			return omr_cfg_nomem(ql->c);
	}
	return rc;
}

/* An overflow target: checked to exist once the whole file is read. */
static int add_ref(qloader_t *ql, size_t step, yaml_mark_t mark)
{
	omr_cfg_qstate_t *st = ql->st;
	if (st->nrefs == sizeof(st->refs) / sizeof(st->refs[0])) /* limits make this impossible */
		return omr_cfg_fail_at(ql->c, mark, "too many overflow targets");
	st->refs[st->nrefs++] = (omr_cfg_qref_t){.queue = ql->n - 1, .step = step, .mark = mark};
	return 0;
}

static int get_wait_action(qloader_t *ql, const char *where, omr_queue_t *q)
{
	char buf[ECHO_MAX];
	int rc = want_scalar(ql, where);
	if (rc < 0 || strcmp(text(ql), "close") == 0)
		return rc;
	const char *target = text(ql) + strlen("overflow:");
	if (strncmp(text(ql), "overflow:", strlen("overflow:")) != 0 ||
	    !omr_id_is_valid(target, OMR_CONFIG_ID_MAX))
		return omr_cfg_fail_at(ql->c, here(ql),
		                       "%s: '%s' is not 'close' or 'overflow:QUEUE'", where,
		                       echo_text(ql, buf, sizeof(buf)));
	if (!(q->max_wait_overflow = strdup(target)))
		return omr_cfg_nomem(ql->c);
	return add_ref(ql, NO_STEP, here(ql));
}

/* ---- keys ---- */

enum {
	QK_NAME,
	QK_TENANTS,
	QK_CHANNELS,
	QK_LANGUAGES,
	QK_SKILLS,
	QK_ATTRIBUTES,
	QK_STRATEGY,
	QK_PRIORITY,
	QK_MIN_PROFICIENCY,
	QK_MAX_WAIT_S,
	QK_MAX_WAIT_ACTION,
	QK_OFFER_TIMEOUT_S,
	QK_AUTO_ACCEPT,
	QK_WRAPUP_S,
	QK_STICKY_WINDOW_S,
	QK_STEPS,
	QK_COUNT
};
static const char *const queue_keys[QK_COUNT] = {
        "name",        "tenants",         "channels",
        "languages",   "skills",          "attributes",
        "strategy",    "priority",        "min_proficiency",
        "max_wait_s",  "max_wait_action", "offer_timeout_s",
        "auto_accept", "wrapup_s",        "sticky_window_s",
        "steps"};

enum { SK_AFTER_S, SK_MIN_LEVEL_DELTA, SK_LANGUAGES, SK_OVERFLOW, SK_COUNT };
static const char *const step_keys[SK_COUNT] = {"after_s", "min_level_delta", "languages",
                                                "overflow"};

/* Reads the next key of a queue or step mapping and moves to its value. Returns the key's
 * index in keys, nkeys at the end of the mapping, or a negative errno. */
static int next_key(qloader_t *ql, const char *where, const char *const *keys, int nkeys,
                    yaml_mark_t *seen_at, bool *seen)
{
	char buf[ECHO_MAX];
	int rc = omr_cfg_next(ql->c);
	if (rc < 0)
		return rc;
	if (cur(ql)->type == YAML_MAPPING_END_EVENT)
		return nkeys;
	if (cur(ql)->type != YAML_SCALAR_EVENT)
		return omr_cfg_fail_at(ql->c, here(ql), "%s: a key must be a scalar, found %s",
		                       where, omr_cfg_node_kind(cur(ql)));
	int k = 0; /* by length too: a quoted "name\0x" is not "name" */
	while (k < nkeys &&
	       (strlen(keys[k]) != text_len(ql) || memcmp(keys[k], text(ql), text_len(ql)) != 0))
		k++;
	if (k == nkeys) {
		for (int i = 0; i < nkeys; i++) {
			if (omr_cfg_is_close(text(ql), text_len(ql), keys[i], strlen(keys[i])))
				return omr_cfg_fail_at(ql->c, here(ql),
				                       "%s: unknown key '%s' (did you mean '%s'?)",
				                       where, echo_text(ql, buf, sizeof(buf)),
				                       keys[i]);
		}
		return omr_cfg_fail_at(ql->c, here(ql), "%s: unknown key '%s'", where,
		                       echo_text(ql, buf, sizeof(buf)));
	}
	if (seen[k])
		return omr_cfg_fail_at(ql->c, here(ql),
		                       "%s: duplicate key '%s' (first at line %zu)", where, keys[k],
		                       seen_at[k].line + 1);
	seen[k] = true;
	seen_at[k] = here(ql);
	if ((rc = omr_cfg_next(ql->c)) < 0)
		return rc;
	return k;
}

static int load_step(qloader_t *ql, const char *where, omr_queue_t *q, omr_queue_step_t *st)
{
	char sub[WHERE_MAX];
	yaml_mark_t start = here(ql), seen_at[SK_COUNT], after_mark = start;
	bool seen[SK_COUNT] = {false};
	st->line = start.line + 1;
	for (;;) {
		int k = next_key(ql, where, step_keys, SK_COUNT, seen_at, seen);
		if (k < 0)
			return k;
		if (k == SK_COUNT)
			break;
		path(sub, "%s.%s", where, step_keys[k]);
		int rc = 0;
		switch (k) {
		case SK_AFTER_S:
			after_mark = here(ql);
			rc = get_int(ql, sub, 1, 86400, &st->after_s);
			break;
		case SK_MIN_LEVEL_DELTA:
			rc = get_small_int(ql, sub, 0, 9, &st->min_level_delta);
			break;
		case SK_LANGUAGES:
			rc = get_list(ql, sub, language_item, &st->languages, &st->n_languages);
			break;
		case SK_OVERFLOW:
			if ((rc = want_id(ql, sub, "a queue name")) == 0 &&
			    (rc = add_ref(ql, (size_t)(st - q->steps), here(ql))) == 0 &&
			    !(st->overflow = dup_text(ql)))
				rc = omr_cfg_nomem(ql->c);
			break;
		}
		if (rc < 0)
			return rc;
	}
	if (!seen[SK_AFTER_S])
		return omr_cfg_fail_at(ql->c, start, "%s: missing 'after_s'", where);
	if (st > q->steps && st->after_s <= st[-1].after_s)
		return omr_cfg_fail_at(ql->c, after_mark,
		                       "%s.after_s: %" PRId64 " must be greater than the previous "
		                       "step's %" PRId64 " (steps are in order)",
		                       where, st->after_s, st[-1].after_s);
	return 0;
}

static int load_steps(qloader_t *ql, const char *where, omr_queue_t *q)
{
	char sub[WHERE_MAX];
	if (omr_cfg_is_empty_scalar(cur(ql)))
		return 0;
	if (cur(ql)->type != YAML_SEQUENCE_START_EVENT)
		return omr_cfg_fail_at(ql->c, here(ql),
		                       "%s: expected a sequence of steps, found %s", where,
		                       omr_cfg_node_kind(cur(ql)));
	for (;;) {
		int rc = omr_cfg_next(ql->c);
		if (rc < 0)
			return rc;
		if (cur(ql)->type == YAML_SEQUENCE_END_EVENT)
			return 0;
		if (q->n_steps == OMR_CONFIG_MAX_STEPS)
			return omr_cfg_fail_at(ql->c, here(ql), "%s: more than %d steps", where,
			                       OMR_CONFIG_MAX_STEPS);
		path(sub, "%s[%zu]", where, q->n_steps);
		if (cur(ql)->type != YAML_MAPPING_START_EVENT)
			return omr_cfg_fail_at(ql->c, here(ql), "%s: expected a mapping, found %s",
			                       sub, omr_cfg_node_kind(cur(ql)));
		omr_queue_step_t *bigger = grow(q->steps, q->n_steps, sizeof(*bigger));
		if (!bigger)
			return omr_cfg_nomem(ql->c);
		q->steps = bigger;
		omr_queue_step_t *st = &bigger[q->n_steps++];
		if ((rc = load_step(ql, sub, q, st)) < 0)
			return rc;
	}
}

static int get_strategy(qloader_t *ql, const char *where, omr_queue_t *q)
{
	char buf[ECHO_MAX];
	int rc = want_scalar(ql, where);
	if (rc < 0)
		return rc;
	for (int s = 0; s < OMR_STRATEGY_COUNT; s++) {
		if (strcmp(text(ql), strategy_names[s]) == 0) {
			q->strategy = (omr_strategy_t)s;
			return 0;
		}
	}
	return omr_cfg_fail_at(
	        ql->c, here(ql),
	        "%s: '%s' is not a strategy (least_loaded, longest_idle, best_skill)", where,
	        echo_text(ql, buf, sizeof(buf)));
}

static int get_bool(qloader_t *ql, const char *where, bool *out)
{
	char buf[ECHO_MAX];
	int rc = want_scalar(ql, where);
	if (rc == 0 && omr_cfg_parse_bool(text(ql), out) != 0)
		rc = omr_cfg_fail_at(ql->c, here(ql),
		                     "%s: '%s' is not a boolean (true/false, yes/no, on/off)",
		                     where, echo_text(ql, buf, sizeof(buf)));
	return rc;
}

static int get_name(qloader_t *ql, const char *where, omr_queue_t *q)
{
	char buf[ECHO_MAX];
	int rc = want_id(ql, where, "a queue name");
	if (rc < 0)
		return rc;
	for (size_t i = 0; i + 1 < ql->n; i++) {
		if (strcmp(ql->queues[i].name, text(ql)) == 0)
			return omr_cfg_fail_at(
			        ql->c, here(ql), "%s: queue '%s' is already defined (at line %zu)",
			        where, echo_text(ql, buf, sizeof(buf)), ql->queues[i].line);
	}
	if (!(q->name = dup_text(ql)))
		return omr_cfg_nomem(ql->c);
	return 0;
}

static int load_value(qloader_t *ql, int k, const char *sub, omr_queue_t *q)
{
	switch (k) {
	case QK_NAME:
		return get_name(ql, sub, q);
	case QK_TENANTS:
		return get_list(ql, sub, tenant_item, &q->tenants, &q->n_tenants);
	case QK_CHANNELS:
		return get_list(ql, sub, channel_item, &q->channels, &q->n_channels);
	case QK_LANGUAGES:
		return get_list(ql, sub, language_item, &q->languages, &q->n_languages);
	case QK_SKILLS:
		return get_skills(ql, sub, q);
	case QK_ATTRIBUTES:
		return get_attributes(ql, sub, q);
	case QK_STRATEGY:
		return get_strategy(ql, sub, q);
	case QK_PRIORITY:
		return get_small_int(ql, sub, 0, 9, &q->priority);
	case QK_MIN_PROFICIENCY:
		return get_small_int(ql, sub, 1, 10, &q->min_proficiency);
	case QK_MAX_WAIT_S:
		return get_int(ql, sub, 0, 86400, &q->max_wait_s);
	case QK_MAX_WAIT_ACTION:
		return get_wait_action(ql, sub, q);
	case QK_OFFER_TIMEOUT_S:
		return get_int(ql, sub, 1, 3600, &q->offer_timeout_s);
	case QK_AUTO_ACCEPT:
		return get_bool(ql, sub, &q->auto_accept);
	case QK_WRAPUP_S:
		return get_int(ql, sub, 0, 3600, &q->wrapup_s);
	case QK_STICKY_WINDOW_S:
		return get_int(ql, sub, 0, 86400, &q->sticky_window_s);
	case QK_STEPS:
		return load_steps(ql, sub, q);
	}
	return -EINVAL;
}

/* One queue; the current event is its MAPPING-START. */
static int load_queue(qloader_t *ql, const char *where, omr_queue_t *q)
{
	char sub[WHERE_MAX];
	yaml_mark_t start = here(ql), seen_at[QK_COUNT];
	bool seen[QK_COUNT] = {false};
	q->line = start.line + 1;
	for (;;) {
		int k = next_key(ql, where, queue_keys, QK_COUNT, seen_at, seen);
		if (k < 0)
			return k;
		if (k == QK_COUNT)
			break;
		path(sub, "%s.%s", where, queue_keys[k]);
		int rc = load_value(ql, k, sub, q);
		if (rc < 0)
			return rc;
	}
	if (!seen[QK_NAME])
		return omr_cfg_fail_at(ql->c, start, "%s: missing 'name'", where);
	return 0;
}

static int load_queues(qloader_t *ql)
{
	char where[WHERE_MAX];
	yaml_mark_t start = here(ql);
	if (cur(ql)->type != YAML_SEQUENCE_START_EVENT)
		return omr_cfg_fail_at(ql->c, start,
		                       "queues: expected a sequence of queues, found %s",
		                       omr_cfg_node_kind(cur(ql)));
	for (;;) {
		int rc = omr_cfg_next(ql->c);
		if (rc < 0)
			return rc;
		if (cur(ql)->type == YAML_SEQUENCE_END_EVENT)
			break;
		if (ql->n == OMR_CONFIG_MAX_QUEUES)
			return omr_cfg_fail_at(ql->c, here(ql), "queues: more than %d queues",
			                       OMR_CONFIG_MAX_QUEUES);
		path(where, "queues[%zu]", ql->n);
		if (cur(ql)->type != YAML_MAPPING_START_EVENT)
			return omr_cfg_fail_at(ql->c, here(ql), "%s: expected a mapping, found %s",
			                       where, omr_cfg_node_kind(cur(ql)));
		omr_queue_t *bigger = grow(ql->queues, ql->n, sizeof(*bigger));
		if (!bigger)
			return omr_cfg_nomem(ql->c);
		ql->queues = bigger;
		omr_queue_t *q = &bigger[ql->n++];
		queue_defaults(q);
		if ((rc = load_queue(ql, where, q)) < 0)
			return rc;
	}
	if (ql->n == 0)
		return omr_cfg_fail_at(ql->c, start,
		                       "queues: the list is empty (leave 'queues' out for the one "
		                       "implicit queue 'default')");
	return 0;
}

int omr_cfg_queues_load(omr_cfg_cursor_t *c, omr_cfg_qstate_t *st, omr_config_t *cfg)
{
	if (st->seen)
		return omr_cfg_fail_at(c, c->ev.start_mark,
		                       "duplicate section 'queues' (first at line %zu)",
		                       st->key_mark.line + 1);
	st->seen = true;
	st->key_mark = c->ev.start_mark;
	int rc = omr_cfg_next(c);
	if (rc < 0)
		return rc;
	/* "queues:" with every queue commented out, like an empty section: the default. */
	if (omr_cfg_is_empty_scalar(&c->ev))
		return 0;
	qloader_t ql = {.c = c, .st = st, .queues = NULL, .n = 0};
	if ((rc = load_queues(&ql)) < 0) {
		omr_cfg_queues_free(ql.queues, ql.n);
		return rc;
	}
	omr_cfg_queues_free(cfg->queues, cfg->n_queues);
	cfg->queues = ql.queues;
	cfg->n_queues = ql.n;
	return 0;
}

/* The queue overflow reference ref sends conversations to, or NULL: a
 * max_wait_action fires only with a max_wait_s. */
static const omr_queue_t *ref_target(const omr_config_t *cfg, const omr_cfg_qref_t *ref)
{
	const omr_queue_t *q = &cfg->queues[ref->queue];
	if (ref->step != NO_STEP)
		return omr_config_find_queue(cfg, q->steps[ref->step].overflow);
	return q->max_wait_s > 0 ? omr_config_find_queue(cfg, q->max_wait_overflow) : NULL;
}

/* Depth-first search from queue u over the overflow references (trail:
 * the queues of the current path, in order, n_path of them); returns the
 * reference that closes a circle, or NULL. */
static const omr_cfg_qref_t *find_circle(const omr_cfg_qstate_t *st, const omr_config_t *cfg,
                                         size_t u, unsigned char *state, size_t *trail,
                                         size_t *n_path)
{
	state[u] = 1; /* on the path */
	trail[(*n_path)++] = u;
	for (size_t r = 0; r < st->nrefs; r++) {
		if (st->refs[r].queue != u)
			continue;
		const omr_queue_t *to = ref_target(cfg, &st->refs[r]);
		if (!to)
			continue;
		size_t v = (size_t)(to - cfg->queues);
		if (state[v] == 1)
			return &st->refs[r];
		if (state[v] == 0) {
			const omr_cfg_qref_t *hit = find_circle(st, cfg, v, state, trail, n_path);
			if (hit)
				return hit;
		}
	}
	state[u] = 2; /* done: no circle through it */
	(*n_path)--;
	return NULL;
}

/* Overflows that go round in a circle (a -> b -> a, by ladder steps or
 * maximum waits) never end: a ladder step counts from the original enqueue
 * time, so once due it sends the conversation on at every tick, and each
 * queue counts its maximum wait from the overflow, so the conversation
 * never reaches a final action. Called once every target exists. */
static int check_overflow_circles(omr_cfg_cursor_t *c, const omr_cfg_qstate_t *st,
                                  const omr_config_t *cfg)
{
	unsigned char *state = calloc(cfg->n_queues, 1);
	size_t *trail = calloc(cfg->n_queues, sizeof(*trail));
	if (!state || !trail) {
		free(state);
		free(trail);
		return -ENOMEM;
	}
	const omr_cfg_qref_t *hit = NULL;
	size_t n_path = 0;
	for (size_t u = 0; u < cfg->n_queues && !hit; u++)
		if (state[u] == 0)
			hit = find_circle(st, cfg, u, state, trail, &n_path);
	int rc = 0;
	if (hit) {
		/* the circle: from the target of hit along the path back to hit's queue */
		size_t to = (size_t)(ref_target(cfg, hit) - cfg->queues), first = 0;
		while (trail[first] != to)
			first++;
		char where[WHERE_MAX], circle[256];
		size_t len = 0;
		for (size_t k = first; k < n_path; k++) {
			int n = snprintf(circle + len, sizeof(circle) - len, "%s -> ",
			                 cfg->queues[trail[k]].name);
			if (n < 0 || (size_t)n >= sizeof(circle) - len)
				break;
			len += (size_t)n;
		}
		snprintf(circle + len, sizeof(circle) - len, "%s", cfg->queues[to].name);
		if (hit->step == NO_STEP)
			path(where, "queues[%zu].max_wait_action", hit->queue);
		else
			path(where, "queues[%zu].steps[%zu].overflow", hit->queue, hit->step);
		rc = omr_cfg_fail_at(
		        c, hit->mark,
		        "%s: overflows go round in a circle (%s): a conversation there "
		        "would move between these queues forever; end the chain with a "
		        "queue that does not overflow back",
		        where, circle);
	}
	free(state);
	free(trail);
	return rc;
}

/* Two lists with no item in common; an empty list holds everything. */
static bool lists_disjoint(char *const *a, size_t n_a, char *const *b, size_t n_b)
{
	if (n_a == 0 || n_b == 0)
		return false;
	for (size_t i = 0; i < n_a; i++)
		for (size_t k = 0; k < n_b; k++)
			if (strcmp(a[i], b[k]) == 0)
				return false;
	return true;
}

int omr_cfg_queues_check_refs(omr_cfg_cursor_t *c, const omr_cfg_qstate_t *st,
                              const omr_config_t *cfg)
{
	for (size_t r = 0; r < st->nrefs; r++) {
		const omr_cfg_qref_t *ref = &st->refs[r];
		const omr_queue_t *q = &cfg->queues[ref->queue];
		char where[WHERE_MAX];
		const char *target;
		if (ref->step == NO_STEP) {
			target = q->max_wait_overflow;
			path(where, "queues[%zu].max_wait_action", ref->queue);
		} else {
			target = q->steps[ref->step].overflow;
			path(where, "queues[%zu].steps[%zu].overflow", ref->queue, ref->step);
		}
		const omr_queue_t *to = omr_config_find_queue(cfg, target);
		if (to == q)
			return omr_cfg_fail_at(c, ref->mark,
			                       "%s: queue '%s' cannot overflow to itself", where,
			                       target);
		/* (the router moves a conversation only to a queue that takes its
		 * channel and tenant: with none in common, the overflow never
		 * happens) */
		const char *apart = NULL;
		if (to && lists_disjoint(q->channels, q->n_channels, to->channels, to->n_channels))
			apart = "channels";
		else if (to && lists_disjoint(q->tenants, q->n_tenants, to->tenants, to->n_tenants))
			apart = "tenants";
		if (apart)
			return omr_cfg_fail_at(c, ref->mark,
			                       "%s: queue '%s' takes none of the %s queue '%s' "
			                       "takes, so nothing would ever overflow there",
			                       where, target, apart, q->name);
		if (to)
			continue;
		for (size_t i = 0; i < cfg->n_queues; i++) {
			const char *name = cfg->queues[i].name;
			if (omr_cfg_is_close(target, strlen(target), name, strlen(name)))
				return omr_cfg_fail_at(c, ref->mark,
				                       "%s: there is no queue '%s' (did you mean "
				                       "'%s'?)",
				                       where, target, name);
		}
		return omr_cfg_fail_at(c, ref->mark, "%s: there is no queue '%s'", where, target);
	}
	return check_overflow_circles(c, st, cfg);
}

/* ---- queues no new conversation reaches ---- */

/* Every item of the list b (n_b) is in a (n_a); an empty a holds everything,
 * an empty b (anything) is held only by an empty a. */
static bool list_covers(char *const *a, size_t n_a, char *const *b, size_t n_b)
{
	if (n_a == 0)
		return true;
	if (n_b == 0)
		return false;
	for (size_t i = 0; i < n_b; i++) {
		bool found = false;
		for (size_t k = 0; k < n_a && !found; k++)
			found = strcmp(a[k], b[i]) == 0;
		if (!found)
			return false;
	}
	return true;
}

/* Every conversation that later queue q matches, earlier queue e matches too
 * (the matching of router/lua/20_route.lua, match_queue). */
static bool queue_covers(const omr_queue_t *e, const omr_queue_t *q)
{
	if (!list_covers(e->tenants, e->n_tenants, q->tenants, q->n_tenants) ||
	    !list_covers(e->channels, e->n_channels, q->channels, q->n_channels) ||
	    !list_covers(e->languages, e->n_languages, q->languages, q->n_languages))
		return false;
	/* e's attributes are q's too, with the same values */
	for (size_t i = 0; i < e->n_attributes; i++) {
		bool found = false;
		for (size_t k = 0; k < q->n_attributes && !found; k++)
			found = strcmp(e->attributes[i].key, q->attributes[k].key) == 0 &&
			        strcmp(e->attributes[i].value, q->attributes[k].value) == 0;
		if (!found)
			return false;
	}
	/* a conversation's skills are all among q's, so among e's */
	if (e->n_skills == 0)
		return true;
	if (q->n_skills == 0)
		return false;
	for (size_t i = 0; i < q->n_skills; i++) {
		bool found = false;
		for (size_t k = 0; k < e->n_skills && !found; k++)
			found = strcmp(e->skills[k].skill, q->skills[i].skill) == 0;
		if (!found)
			return false;
	}
	return true;
}

const omr_queue_t *omr_config_shadowing_queue(const omr_config_t *cfg, size_t i)
{
	for (size_t e = 0; e < i && i < cfg->n_queues; e++)
		if (queue_covers(&cfg->queues[e], &cfg->queues[i]))
			return &cfg->queues[e];
	return NULL;
}

size_t omr_config_shadow_warnings(const omr_config_t *cfg, char *out, size_t outsize)
{
	size_t n = 0, used = 0;
	if (outsize)
		out[0] = '\0';
	for (size_t i = 0; i < cfg->n_queues; i++) {
		const omr_queue_t *q = &cfg->queues[i], *e = omr_config_shadowing_queue(cfg, i);
		if (!e)
			continue;
		n++;
		int w = snprintf(
		        out + used, outsize > used ? outsize - used : 0,
		        "%s%s:%zu: warning: queues[%zu] '%s' is never matched by a new "
		        "conversation: "
		        "queue '%s' (line %zu) comes first and takes every conversation it "
		        "would (it can still receive overflows and transfers)",
		        n > 1 ? "\n" : "", cfg->path ? cfg->path : "config", q->line, i, q->name,
		        e->name, e->line);
		if (w > 0)
			used = used + (size_t)w < outsize ? used + (size_t)w : outsize;
	}
	return n;
}
