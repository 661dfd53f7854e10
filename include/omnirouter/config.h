/* config.h - the daemon's configuration: loaded from YAML, validated against
 * the table in config_options.h (each option declared once there).
 * Loading does no I/O but reading the file. Immutable once loaded: a reload
 * loads a new one and swaps it in; a failed reload keeps the old one. */
#ifndef OMNIROUTER_CONFIG_H
#define OMNIROUTER_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "omnirouter/log.h"

/* Limits on the queues section; the loader refuses more. */
#define OMR_CONFIG_MAX_QUEUES 64      /* queues in one file */
#define OMR_CONFIG_MAX_STEPS 16       /* steps in one queue's escalation ladder */
#define OMR_CONFIG_MAX_ITEMS 64       /* entries in one list or map of a queue or step */
#define OMR_CONFIG_ID_MAX 64          /* bytes of a queue, tenant, skill or attribute name */
#define OMR_CONFIG_ATTR_VALUE_MAX 255 /* bytes of an attribute value */

/* How a queue picks among the agents that match. */
typedef enum omr_strategy {
	OMR_STRATEGY_LEAST_LOADED = 0, /* "least_loaded": fewest open conversations (default) */
	OMR_STRATEGY_LONGEST_IDLE,     /* "longest_idle": idle the longest */
	OMR_STRATEGY_BEST_SKILL,       /* "best_skill": highest skill levels */
	OMR_STRATEGY_COUNT
} omr_strategy_t;

/* The name used in the YAML file; NULL for an out-of-range value. */
const char *omr_strategy_name(omr_strategy_t s);

/* skills: {billing: 5}: the agent needs skill `skill` at `level` (1..10) or above. */
typedef struct omr_skill_req {
	char *skill; /* an id */
	int level;
} omr_skill_req_t;

/* attributes: {tier: gold}: the customer's attribute `key` must equal `value` exactly. */
typedef struct omr_kv {
	char *key;   /* an id */
	char *value; /* 0..255 bytes of one-line UTF-8 */
} omr_kv_t;

/* One rung of an escalation ladder: applies from after_s seconds after enqueue on. */
typedef struct omr_queue_step {
	int64_t after_s;     /* 1..86400, strictly increasing within a queue */
	int min_level_delta; /* 0..9: lower every required skill level by this (floor 1) */
	char **languages;    /* primary subtags also accepted from now on */
	size_t n_languages;
	char *overflow; /* queue to move the conversation to; NULL = none */
	size_t line;    /* 1-based line of the step in the file */
} omr_queue_step_t;

/* A routing queue. An empty list or map matches anything. */
typedef struct omr_queue {
	char *name; /* an id, unique in the config */
	char **tenants;
	size_t n_tenants;
	char **channels; /* "chat", "email", "voice" */
	size_t n_channels;
	char **languages; /* lowercase primary subtags ("es-MX" is stored as "es") */
	size_t n_languages;
	omr_skill_req_t *skills;
	size_t n_skills;
	omr_kv_t *attributes;
	size_t n_attributes;
	omr_strategy_t strategy; /* default least_loaded */
	int priority;            /* 0..9, higher is served first; default 0 */
	int min_proficiency;     /* 1..10 language proficiency needed; default 1 */
	int64_t max_wait_s;      /* 0..86400, 0 = no limit */
	char *max_wait_overflow; /* max_wait_action: NULL = "close", else NAME of "overflow:NAME" */
	int64_t offer_timeout_s; /* 0..3600, default 30 */
	bool auto_accept;        /* default true */
	int64_t wrapup_s;        /* 0..3600, default 0 */
	int64_t sticky_window_s; /* 0..86400, default 0 */
	omr_queue_step_t *steps;
	size_t n_steps;
	size_t line; /* 1-based line of the queue in the file; 0 for the implicit "default" */
} omr_queue_t;

typedef struct omr_config {
#define OMR_OPT_INT(field) int64_t field;
#define OMR_OPT_BOOL(field) bool field;
#define OMR_OPT_STR(field) char *field;
#define OMR_OPT_LEVEL(field) omr_log_level_t field;
#define OMR_OPT(type, field, path, def, min, max, reload, help) OMR_OPT_##type(field)
#include "omnirouter/config_options.h"
#undef OMR_OPT
#undef OMR_OPT_INT
#undef OMR_OPT_BOOL
#undef OMR_OPT_STR
#undef OMR_OPT_LEVEL
	char *path; /* file it was loaded from (copy) */
	/* In file order: a conversation goes to the first queue that matches it. Never empty:
	 * without a queues section there is one queue, "default", matching everything. */
	omr_queue_t *queues;
	size_t n_queues;
} omr_config_t;

/* A config with every option at its default and the implicit "default" queue. NULL on
 * ENOMEM. */
omr_config_t *omr_config_new_defaults(void);

/* Loads path over the defaults. Returns 0 and *out, or a negative errno and
 * writes "path:line:column: reason" into err (always NUL-terminated when
 * errlen > 0). Rejects unknown sections and keys, wrong types, values out of
 * range, duplicate keys, and anything but a mapping of mappings of scalars
 * (plus the queues sequence, see config/omnirouter.yaml). */
int omr_config_load(const char *path, omr_config_t **out, char *err, size_t errlen);

/* Same, from a string; `name` stands for the file name in errors. */
int omr_config_load_string(const char *yaml, size_t len, const char *name, omr_config_t **out,
                           char *err, size_t errlen);

void omr_config_destroy(omr_config_t **cfgp);

/* The queue called name, or NULL. */
const omr_queue_t *omr_config_find_queue(const omr_config_t *cfg, const char *name);

/* The earlier queue that matches every new conversation queues[i] would
 * match (so none reaches it), or NULL. Such a queue is not an error: it can
 * still receive overflows and transfers. */
const omr_queue_t *omr_config_shadowing_queue(const omr_config_t *cfg, size_t i);

/* One "path:line: queues[i] 'NAME' is never matched ..." line per such queue,
 * newline-separated, into out (truncated to outsize); returns how many. */
size_t omr_config_shadow_warnings(const omr_config_t *cfg, char *out, size_t outsize);

/* Names the options that differ between a and b and are not reloadable;
 * writes them comma-separated into out. Returns how many. Queues are
 * reloadable, so never named. */
size_t omr_config_diff_static(const omr_config_t *a, const omr_config_t *b, char *out,
                              size_t outsize);

/* A reload applies only what is reloadable: copies every option that is not
 * from `running` into `next` (a restart applies the rest). 0 or -ENOMEM. */
int omr_config_keep_static(omr_config_t *next, const omr_config_t *running);

/* The rules between options (one limit must hold another: a text in a
 * frame, a frame on the bus) on cfg as it is, e.g. after
 * omr_config_keep_static put back running values: 0, or -EINVAL with the
 * broken rule in err. */
int omr_config_check_limits(const omr_config_t *cfg, char *err, size_t errlen);

/* Writes every option as "path = value" lines (secrets masked), then one
 * "queues[i] = name=... " line per queue, to out; used by --check-config -v
 * and tests. Returns 0 or -ENOSPC. */
int omr_config_dump(const omr_config_t *cfg, char *out, size_t outsize);

#endif
