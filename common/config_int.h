/* config_int.h - what the files of the configuration loader share; private to common/.
 * config.c: the option table and the option sections, and the syntax of the string options
 * that have one; config_cursor.c: the libyaml event cursor with the "file:line:column:
 * reason" error helpers; config_queues.c: the queues section, read through that cursor;
 * config_dump.c: dumps and diffs. No state of its own: everything runs on the thread that
 * loads. */
#ifndef OMR_COMMON_CONFIG_INT_H
#define OMR_COMMON_CONFIG_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <yaml.h>

#include "omnirouter/config.h"

/* ---- the option table (config.c) ---- */

typedef enum omr_cfg_type { OMR_CFG_INT, OMR_CFG_BOOL, OMR_CFG_STR, OMR_CFG_LEVEL } omr_cfg_type_t;

typedef struct omr_cfg_opt {
	const char *name; /* "section.key" */
	omr_cfg_type_t type;
	size_t offset;       /* of the field in omr_config_t */
	int64_t def_num;     /* INT, BOOL */
	const char *def_str; /* STR, LEVEL */
	int64_t min, max;    /* INT: the value; STR: its length in bytes */
	bool reloadable;     /* SIGHUP applies it without a restart */
	const char *help;
} omr_cfg_opt_t;

#define OMR_OPT(type, field, path, def, min, max, reload, help) +1
enum {
	OMR_CFG_NOPTS = 0
#include "omnirouter/config_options.h"
};
#undef OMR_OPT

extern const omr_cfg_opt_t omr_cfg_opts[OMR_CFG_NOPTS];

static inline const void *omr_cfg_opt_cptr(const omr_config_t *cfg, const omr_cfg_opt_t *o)
{
	return (const char *)cfg + o->offset;
}

/* Length of the "section" part of "section.key". */
size_t omr_cfg_section_len(const char *name);

/* ---- the event cursor and errors (config_cursor.c) ---- */

typedef struct omr_cfg_cursor {
	yaml_parser_t parser;
	yaml_event_t ev; /* the current event, owned; valid when have_ev */
	bool have_ev;
	const char *name; /* file name for errors */
	const unsigned char *buf;
	size_t len;
	char *err;
	size_t errlen;
} omr_cfg_cursor_t;

/* Advances to the next event; refuses anchors, aliases and tags. 0 or a negative errno with
 * the error written. */
int omr_cfg_next(omr_cfg_cursor_t *c);

/* Writes "name:line:column: " and the message into the error buffer; returns -EINVAL. */
__attribute__((format(printf, 3, 4))) int omr_cfg_fail_at(omr_cfg_cursor_t *c, yaml_mark_t m,
                                                          const char *fmt, ...);

/* Writes "name: out of memory"; returns -ENOMEM. */
int omr_cfg_nomem(omr_cfg_cursor_t *c);

__attribute__((format(printf, 3, 4))) void omr_cfg_set_err(char *err, size_t errlen,
                                                           const char *fmt, ...);

/* Copies s[0..len) into buf for an error message: printable ASCII only, cut with "...". */
const char *omr_cfg_echo(char *buf, size_t size, const char *s, size_t len);

/* "a scalar", "a sequence", "a mapping". */
const char *omr_cfg_node_kind(const yaml_event_t *ev);

/* "key:" with nothing after it. */
bool omr_cfg_is_empty_scalar(const yaml_event_t *ev);

/* true/yes/on, false/no/off. 0 or -EINVAL. */
int omr_cfg_parse_bool(const char *s, bool *out);

/* Longest name matched for a did-you-mean hint. */
#define OMR_CFG_SUGGEST_MAX 64

/* typed[0..len) is a likely typo of name[0..namelen) (for did-you-mean hints). */
bool omr_cfg_is_close(const char *typed, size_t len, const char *name, size_t namelen);

/* ---- the queues section (config_queues.c) ---- */

/* An overflow target, resolved once the whole file is read. */
typedef struct omr_cfg_qref {
	size_t queue;
	size_t step; /* SIZE_MAX: the queue's max_wait_action */
	yaml_mark_t mark;
} omr_cfg_qref_t;

typedef struct omr_cfg_qstate {
	bool seen; /* the queues key was given */
	yaml_mark_t key_mark;
	size_t nrefs;
	omr_cfg_qref_t refs[OMR_CONFIG_MAX_QUEUES * (OMR_CONFIG_MAX_STEPS + 1)];
} omr_cfg_qstate_t;

/* Gives cfg the implicit "default" queue. 0 or -ENOMEM. */
int omr_cfg_queues_init_default(omr_config_t *cfg);

void omr_cfg_queues_free(omr_queue_t *queues, size_t n);

/* The value of the top-level queues key is the current event. Replaces cfg's queues. */
int omr_cfg_queues_load(omr_cfg_cursor_t *c, omr_cfg_qstate_t *st, omr_config_t *cfg);

/* Checks every overflow target once the whole file is read. */
int omr_cfg_queues_check_refs(omr_cfg_cursor_t *c, const omr_cfg_qstate_t *st,
                              const omr_config_t *cfg);

#endif
