/* config.c - loads the YAML configuration file into an omr_config_t and checks every value
 * against the option table in config_options.h (the only place options are declared).
 * Uses libyaml's event parser, so every error names the line and column of the node at fault.
 * Owns the strings of the configs it returns. No shared state: runs on whichever thread loads
 * (the main thread, at start-up and on SIGHUP). */
#include "omnirouter/config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <yaml.h>

#include "omnirouter/envelope.h" /* omr_utf8_is_valid */
#include "omnirouter/error.h"
#include "omnirouter/util.h"

/* A config file is a few kilobytes; anything this large is a mistake (or /dev/zero). */
#define CONFIG_MAX_BYTES (1024 * 1024)
/* Longest name we try to match for a did-you-mean suggestion. */
#define SUGGEST_MAX 64

typedef enum opt_type { OPT_INT, OPT_BOOL, OPT_STR, OPT_LEVEL } opt_type_t;

typedef struct opt_desc {
	const char *name; /* "section.key" */
	opt_type_t type;
	size_t offset;       /* of the field in omr_config_t */
	int64_t def_num;     /* INT, BOOL */
	const char *def_str; /* STR, LEVEL */
	int64_t min, max;    /* INT: the value; STR: its length in bytes */
	bool reloadable;     /* SIGHUP applies it without a restart */
	const char *help;
} opt_desc_t;

#define OPT_DEF_INT(d) .def_num = (d)
#define OPT_DEF_BOOL(d) .def_num = (d)
#define OPT_DEF_STR(d) .def_str = (d)
#define OPT_DEF_LEVEL(d) .def_str = (d)
#define OMR_OPT(type_, field_, name_, def_, min_, max_, reload_, help_)                            \
	{.name = name_,                                                                            \
	 .type = OPT_##type_,                                                                      \
	 .offset = offsetof(omr_config_t, field_),                                                 \
	 OPT_DEF_##type_(def_),                                                                    \
	 .min = (min_),                                                                            \
	 .max = (max_),                                                                            \
	 .reloadable = (reload_),                                                                  \
	 .help = (help_)},
static const opt_desc_t opts[] = {
#include "omnirouter/config_options.h"
};
#undef OMR_OPT
#undef OPT_DEF_INT
#undef OPT_DEF_BOOL
#undef OPT_DEF_STR
#undef OPT_DEF_LEVEL

#define OPT_COUNT (sizeof(opts) / sizeof(opts[0]))

/* Pairs whose first option must not be greater than the second. */
static const struct {
	size_t lo, hi;
} order_rules[] = {
        {offsetof(omr_config_t, redis_reconnect_min_ms),
         offsetof(omr_config_t, redis_reconnect_max_ms)},
        {offsetof(omr_config_t, redis_ping_interval_ms),
         offsetof(omr_config_t, redis_ping_timeout_ms)},
};

/* Indexed by omr_log_level_t; log.c keeps its own copy private. */
static const char *const level_names[] = {"debug", "info", "warn", "error"};

static const char *const bool_true[] = {"true", "yes", "on"};
static const char *const bool_false[] = {"false", "no", "off"};

static void *opt_ptr(omr_config_t *cfg, const opt_desc_t *o)
{
	return (char *)cfg + o->offset;
}

static const void *opt_cptr(const omr_config_t *cfg, const opt_desc_t *o)
{
	return (const char *)cfg + o->offset;
}

static size_t section_len(const char *name)
{
	const char *dot = strchr(name, '.');
	return dot ? (size_t)(dot - name) : strlen(name);
}

/* Copies s[0..len) into buf for an error message: printable ASCII only, cut with "...". */
static const char *echo(char *buf, size_t size, const char *s, size_t len)
{
	size_t n = len < size ? len : size - 4;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		buf[i] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
	}
	if (n < len) {
		memcpy(buf + n, "...", 3);
		n += 3;
	}
	buf[n] = '\0';
	return buf;
}

/* ---- defaults, destroy ---- */

omr_config_t *omr_config_new_defaults(void)
{
	omr_config_t *cfg = calloc(1, sizeof(*cfg));
	if (!cfg)
		return NULL;
	for (size_t i = 0; i < OPT_COUNT; i++) {
		const opt_desc_t *o = &opts[i];
		void *p = opt_ptr(cfg, o);
		switch (o->type) {
		case OPT_INT:
			*(int64_t *)p = o->def_num;
			break;
		case OPT_BOOL:
			*(bool *)p = o->def_num != 0;
			break;
		case OPT_STR:
			*(char **)p = strdup(o->def_str);
			if (!*(char **)p) {
				omr_config_destroy(&cfg);
				return NULL;
			}
			break;
		case OPT_LEVEL:
			/* A bad default is a defect in config_options.h; test_config catches it. */
			if (omr_log_level_parse(o->def_str, (omr_log_level_t *)p) != 0)
				abort();
			break;
		}
	}
	return cfg;
}

void omr_config_destroy(omr_config_t **cfgp)
{
	if (!cfgp || !*cfgp)
		return;
	omr_config_t *cfg = *cfgp;
	for (size_t i = 0; i < OPT_COUNT; i++) {
		if (opts[i].type == OPT_STR)
			free(*(char **)opt_ptr(cfg, &opts[i]));
	}
	free(cfg->path);
	free(cfg);
	*cfgp = NULL;
}

/* ---- the loader ---- */

typedef struct loader {
	yaml_parser_t parser;
	yaml_event_t ev; /* the current event, owned; valid when have_ev */
	bool have_ev;
	const char *name; /* file name for errors */
	const unsigned char *buf;
	size_t len;
	omr_config_t *cfg;
	char *err;
	size_t errlen;
	bool seen[OPT_COUNT];            /* option given in this file */
	yaml_mark_t key_mark[OPT_COUNT]; /* where its key is */
	yaml_mark_t val_mark[OPT_COUNT]; /* where its value is */
	bool sec_seen[OPT_COUNT];        /* indexed by the section's first option */
	yaml_mark_t sec_mark[OPT_COUNT];
} loader_t;

__attribute__((format(printf, 3, 4))) static int fail_at(loader_t *ld, yaml_mark_t m,
                                                         const char *fmt, ...)
{
	if (ld->errlen == 0)
		return -EINVAL;
	int n = snprintf(ld->err, ld->errlen, "%s:%zu:%zu: ", ld->name, m.line + 1, m.column + 1);
	if (n >= 0 && (size_t)n < ld->errlen) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(ld->err + n, ld->errlen - (size_t)n, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

__attribute__((format(printf, 3, 4))) static void set_err(char *err, size_t errlen, const char *fmt,
                                                          ...)
{
	if (errlen == 0)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* libyaml gives reader errors (bad UTF-8, control characters) only as a byte offset. Columns
 * count characters, as libyaml's own marks do. */
static yaml_mark_t mark_at_offset(const loader_t *ld, size_t offset)
{
	yaml_mark_t m = {.index = offset, .line = 0, .column = 0};
	for (size_t i = 0; i < offset && i < ld->len; i++) {
		if (ld->buf[i] == '\n') {
			m.line++;
			m.column = 0;
		} else if ((ld->buf[i] & 0xc0) != 0x80) {
			m.column++;
		}
	}
	return m;
}

static int fail_syntax(loader_t *ld)
{
	const yaml_parser_t *p = &ld->parser;
	if (p->error == YAML_MEMORY_ERROR) {
		set_err(ld->err, ld->errlen, "%s: out of memory", ld->name);
		return -ENOMEM;
	}
	const char *problem = p->problem ? p->problem : "syntax error";
	if (p->error == YAML_READER_ERROR) {
		yaml_mark_t m = mark_at_offset(ld, p->problem_offset);
		if (p->problem_value != -1)
			return fail_at(ld, m, "%s (0x%x)", problem, (unsigned)p->problem_value);
		return fail_at(ld, m, "%s", problem);
	}
	if (p->context)
		return fail_at(ld, p->problem_mark, "%s (%s at %zu:%zu)", problem, p->context,
		               p->context_mark.line + 1, p->context_mark.column + 1);
	return fail_at(ld, p->problem_mark, "%s", problem);
}

/* Advances to the next event. Anchors, aliases and tags are refused here, for every node:
 * a config is plain data, and aliases are how "billion laughs" documents grow. */
static int next_event(loader_t *ld)
{
	if (ld->have_ev)
		yaml_event_delete(&ld->ev);
	ld->have_ev = false;
	if (!yaml_parser_parse(&ld->parser, &ld->ev))
		return fail_syntax(ld);
	ld->have_ev = true;

	const yaml_event_t *ev = &ld->ev;
	const yaml_char_t *anchor = NULL, *tag = NULL;
	char buf[48];
	switch (ev->type) {
	case YAML_ALIAS_EVENT:
		anchor = ev->data.alias.anchor;
		return fail_at(
		        ld, ev->start_mark, "aliases are not allowed (*%s)",
		        echo(buf, sizeof(buf), (const char *)anchor, strlen((const char *)anchor)));
	case YAML_SCALAR_EVENT:
		anchor = ev->data.scalar.anchor;
		tag = ev->data.scalar.tag;
		break;
	case YAML_SEQUENCE_START_EVENT:
		anchor = ev->data.sequence_start.anchor;
		tag = ev->data.sequence_start.tag;
		break;
	case YAML_MAPPING_START_EVENT:
		anchor = ev->data.mapping_start.anchor;
		tag = ev->data.mapping_start.tag;
		break;
	default:
		break;
	}
	if (anchor)
		return fail_at(
		        ld, ev->start_mark, "anchors are not allowed (&%s)",
		        echo(buf, sizeof(buf), (const char *)anchor, strlen((const char *)anchor)));
	if (tag)
		return fail_at(
		        ld, ev->start_mark, "tags are not allowed (%s)",
		        echo(buf, sizeof(buf), (const char *)tag, strlen((const char *)tag)));
	return 0;
}

static const char *node_kind(const yaml_event_t *ev)
{
	switch (ev->type) {
	case YAML_SCALAR_EVENT:
		return "a scalar";
	case YAML_SEQUENCE_START_EVENT:
		return "a sequence";
	case YAML_MAPPING_START_EVENT:
		return "a mapping";
	default:
		return "something else";
	}
}

/* "key:" with nothing after it; for a section, that is one whose options are all commented. */
static bool is_empty_scalar(const yaml_event_t *ev)
{
	return ev->type == YAML_SCALAR_EVENT && ev->data.scalar.length == 0 &&
	       ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
}

static const char *ev_text(const yaml_event_t *ev)
{
	return (const char *)ev->data.scalar.value;
}

/* ---- names and suggestions ---- */

/* Index of the first option in section s[0..len), or OPT_COUNT. */
static size_t section_find(const char *s, size_t len)
{
	for (size_t i = 0; i < OPT_COUNT; i++) {
		if (section_len(opts[i].name) == len && memcmp(opts[i].name, s, len) == 0)
			return i;
	}
	return OPT_COUNT;
}

/* Index of option sec.key (sec is any "section.x" name), or OPT_COUNT. */
static size_t option_find(const char *sec, const char *key, size_t keylen)
{
	size_t slen = section_len(sec);
	for (size_t i = 0; i < OPT_COUNT; i++) {
		const char *n = opts[i].name;
		if (section_len(n) == slen && memcmp(n, sec, slen) == 0 &&
		    strlen(n + slen + 1) == keylen && memcmp(n + slen + 1, key, keylen) == 0)
			return i;
	}
	return OPT_COUNT;
}

/* Optimal string alignment distance: a transposed pair ("hots") costs one edit. */
static size_t edit_distance(const char *a, size_t alen, const char *b, size_t blen)
{
	size_t rows[3][SUGGEST_MAX + 1];
	if (alen > SUGGEST_MAX || blen > SUGGEST_MAX)
		return SIZE_MAX;
	size_t *pp = rows[0], *prev = rows[1], *cur = rows[2];
	for (size_t j = 0; j <= blen; j++)
		prev[j] = j;
	for (size_t i = 1; i <= alen; i++) {
		cur[0] = i;
		for (size_t j = 1; j <= blen; j++) {
			size_t cost = a[i - 1] != b[j - 1];
			size_t d = prev[j - 1] + cost;
			if (prev[j] + 1 < d)
				d = prev[j] + 1;
			if (cur[j - 1] + 1 < d)
				d = cur[j - 1] + 1;
			if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
			    pp[j - 2] + 1 < d)
				d = pp[j - 2] + 1;
			cur[j] = d;
		}
		size_t *t = pp;
		pp = prev;
		prev = cur;
		cur = t;
	}
	return prev[blen];
}

static bool is_close(const char *typed, size_t len, const char *name, size_t namelen)
{
	size_t limit = len <= 4 ? 1 : 2;
	return edit_distance(typed, len, name, namelen) <= limit;
}

static const char *suggest_section(const char *s, size_t len)
{
	for (size_t i = 0; i < OPT_COUNT; i++) {
		if (section_find(opts[i].name, section_len(opts[i].name)) == i &&
		    is_close(s, len, opts[i].name, section_len(opts[i].name)))
			return opts[i].name;
	}
	return NULL;
}

/* A near miss in the same section, else the same key in another section. */
static const opt_desc_t *suggest_option(const char *sec, const char *key, size_t keylen)
{
	size_t slen = section_len(sec);
	for (size_t i = 0; i < OPT_COUNT; i++) {
		const char *n = opts[i].name;
		if (section_len(n) == slen && memcmp(n, sec, slen) == 0 &&
		    is_close(key, keylen, n + slen + 1, strlen(n + slen + 1)))
			return &opts[i];
	}
	for (size_t i = 0; i < OPT_COUNT; i++) {
		const char *k = opts[i].name + section_len(opts[i].name) + 1;
		if (strlen(k) == keylen && memcmp(k, key, keylen) == 0)
			return &opts[i];
	}
	return NULL;
}

static int fail_unknown_section(loader_t *ld)
{
	const char *s = ev_text(&ld->ev);
	size_t len = ld->ev.data.scalar.length;
	char buf[SUGGEST_MAX + 8];
	const char *hint = suggest_section(s, len);
	if (hint)
		return fail_at(ld, ld->ev.start_mark, "unknown section '%s' (did you mean '%.*s'?)",
		               echo(buf, sizeof(buf), s, len), (int)section_len(hint), hint);
	return fail_at(ld, ld->ev.start_mark, "unknown section '%s'",
	               echo(buf, sizeof(buf), s, len));
}

static int fail_unknown_option(loader_t *ld, const char *sec)
{
	const char *key = ev_text(&ld->ev);
	size_t keylen = ld->ev.data.scalar.length;
	int slen = (int)section_len(sec);
	char buf[SUGGEST_MAX + 8];
	const opt_desc_t *hint = suggest_option(sec, key, keylen);
	if (hint)
		return fail_at(ld, ld->ev.start_mark,
		               "unknown option '%.*s.%s' (did you mean '%s'?)", slen, sec,
		               echo(buf, sizeof(buf), key, keylen), hint->name);
	return fail_at(ld, ld->ev.start_mark, "unknown option '%.*s.%s'", slen, sec,
	               echo(buf, sizeof(buf), key, keylen));
}

/* ---- values ---- */

static int set_int(loader_t *ld, const opt_desc_t *o, const char *s, size_t len)
{
	char buf[48];
	int64_t v;
	int rc = omr_parse_int(s, o->min, o->max, &v);
	if (rc == -ERANGE)
		return fail_at(ld, ld->ev.start_mark,
		               "%s: %s is out of range [%" PRId64 ", %" PRId64 "]", o->name,
		               echo(buf, sizeof(buf), s, len), o->min, o->max);
	if (rc < 0)
		return fail_at(ld, ld->ev.start_mark, "%s: '%s' is not a whole base-10 number",
		               o->name, echo(buf, sizeof(buf), s, len));
	*(int64_t *)opt_ptr(ld->cfg, o) = v;
	return 0;
}

static int set_bool(loader_t *ld, const opt_desc_t *o, const char *s, size_t len)
{
	char buf[48];
	for (size_t i = 0; i < sizeof(bool_true) / sizeof(bool_true[0]); i++) {
		if (strcmp(s, bool_true[i]) == 0 || strcmp(s, bool_false[i]) == 0) {
			*(bool *)opt_ptr(ld->cfg, o) = strcmp(s, bool_true[i]) == 0;
			return 0;
		}
	}
	return fail_at(ld, ld->ev.start_mark,
	               "%s: '%s' is not a boolean (true/false, yes/no, on/off)", o->name,
	               echo(buf, sizeof(buf), s, len));
}

static int set_level(loader_t *ld, const opt_desc_t *o, const char *s, size_t len)
{
	char buf[48];
	if (omr_log_level_parse(s, (omr_log_level_t *)opt_ptr(ld->cfg, o)) == 0)
		return 0;
	return fail_at(ld, ld->ev.start_mark,
	               "%s: '%s' is not a log level (debug, info, warn, error)", o->name,
	               echo(buf, sizeof(buf), s, len));
}

/* Strings end up in logs, Redis keys and URLs: one line of valid UTF-8. Never echoed, since
 * one of them is a password. */
static int set_str(loader_t *ld, const opt_desc_t *o, const char *s, size_t len)
{
	yaml_mark_t m = ld->ev.start_mark;
	if (memchr(s, '\r', len) || memchr(s, '\n', len))
		return fail_at(ld, m, "%s: value contains a line break (CR or LF)", o->name);
	if (!omr_utf8_is_valid(s, len))
		return fail_at(ld, m, "%s: value is not valid UTF-8", o->name);
	if ((uint64_t)len > (uint64_t)o->max)
		return fail_at(ld, m, "%s: value is %zu bytes, the maximum is %" PRId64, o->name,
		               len, o->max);
	if ((int64_t)len < o->min) {
		if (len == 0)
			return fail_at(ld, m, "%s: must not be empty", o->name);
		return fail_at(ld, m, "%s: value is %zu bytes, the minimum is %" PRId64, o->name,
		               len, o->min);
	}
	char *copy = malloc(len + 1);
	if (!copy) {
		set_err(ld->err, ld->errlen, "%s: out of memory", ld->name);
		return -ENOMEM;
	}
	memcpy(copy, s, len);
	copy[len] = '\0';
	char **field = opt_ptr(ld->cfg, o);
	free(*field);
	*field = copy;
	return 0;
}

static int set_value(loader_t *ld, const opt_desc_t *o)
{
	const char *s = ev_text(&ld->ev);
	size_t len = ld->ev.data.scalar.length;
	/* libyaml's scalars are NUL-terminated, but "\0" in a quoted string puts one inside. */
	if (memchr(s, '\0', len))
		return fail_at(ld, ld->ev.start_mark, "%s: value contains a NUL byte", o->name);
	switch (o->type) {
	case OPT_INT:
		return set_int(ld, o, s, len);
	case OPT_BOOL:
		return set_bool(ld, o, s, len);
	case OPT_STR:
		return set_str(ld, o, s, len);
	case OPT_LEVEL:
		return set_level(ld, o, s, len);
	}
	return -EINVAL;
}

/* ---- structure ---- */

/* The options of one section; the current event is its MAPPING-START. */
static int load_options(loader_t *ld, size_t sec)
{
	const char *secname = opts[sec].name;
	for (;;) {
		int rc = next_event(ld);
		if (rc < 0)
			return rc;
		if (ld->ev.type == YAML_MAPPING_END_EVENT)
			return 0;
		if (ld->ev.type != YAML_SCALAR_EVENT)
			return fail_at(ld, ld->ev.start_mark,
			               "an option name must be a scalar, found %s",
			               node_kind(&ld->ev));
		size_t i = option_find(secname, ev_text(&ld->ev), ld->ev.data.scalar.length);
		if (i == OPT_COUNT)
			return fail_unknown_option(ld, secname);
		if (ld->seen[i])
			return fail_at(ld, ld->ev.start_mark,
			               "duplicate option '%s' (first at line %zu)", opts[i].name,
			               ld->key_mark[i].line + 1);
		ld->seen[i] = true;
		ld->key_mark[i] = ld->ev.start_mark;

		if ((rc = next_event(ld)) < 0)
			return rc;
		if (ld->ev.type != YAML_SCALAR_EVENT)
			return fail_at(ld, ld->ev.start_mark,
			               "%s: expected a scalar value, found %s", opts[i].name,
			               node_kind(&ld->ev));
		ld->val_mark[i] = ld->ev.start_mark;
		if ((rc = set_value(ld, &opts[i])) < 0)
			return rc;
	}
}

/* The sections; the current event is the root MAPPING-START. */
static int load_sections(loader_t *ld)
{
	for (;;) {
		int rc = next_event(ld);
		if (rc < 0)
			return rc;
		if (ld->ev.type == YAML_MAPPING_END_EVENT)
			return 0;
		if (ld->ev.type != YAML_SCALAR_EVENT)
			return fail_at(ld, ld->ev.start_mark,
			               "a section name must be a scalar, found %s",
			               node_kind(&ld->ev));
		size_t sec = section_find(ev_text(&ld->ev), ld->ev.data.scalar.length);
		if (sec == OPT_COUNT)
			return fail_unknown_section(ld);
		int slen = (int)section_len(opts[sec].name);
		if (ld->sec_seen[sec])
			return fail_at(ld, ld->ev.start_mark,
			               "duplicate section '%.*s' (first at line %zu)", slen,
			               opts[sec].name, ld->sec_mark[sec].line + 1);
		ld->sec_seen[sec] = true;
		ld->sec_mark[sec] = ld->ev.start_mark;

		if ((rc = next_event(ld)) < 0)
			return rc;
		if (ld->ev.type == YAML_MAPPING_START_EVENT)
			rc = load_options(ld, sec);
		else if (!is_empty_scalar(&ld->ev))
			rc = fail_at(ld, ld->ev.start_mark,
			             "section '%.*s' must be a mapping of options, found %s", slen,
			             opts[sec].name, node_kind(&ld->ev));
		if (rc < 0)
			return rc;
	}
}

static int load_stream(loader_t *ld)
{
	int rc;
	if ((rc = next_event(ld)) < 0 || (rc = next_event(ld)) < 0) /* STREAM-START, then */
		return rc;
	if (ld->ev.type == YAML_STREAM_END_EVENT) /* empty, or only comments */
		return 0;
	if ((rc = next_event(ld)) < 0) /* the root node, after DOCUMENT-START */
		return rc;
	if (ld->ev.type == YAML_MAPPING_START_EVENT)
		rc = load_sections(ld);
	else if (!is_empty_scalar(&ld->ev))
		rc = fail_at(ld, ld->ev.start_mark,
		             "the document must be a mapping of sections, found %s",
		             node_kind(&ld->ev));
	if (rc < 0)
		return rc;
	if ((rc = next_event(ld)) < 0 || (rc = next_event(ld)) < 0) /* DOCUMENT-END, then */
		return rc;
	if (ld->ev.type != YAML_STREAM_END_EVENT)
		return fail_at(ld, ld->ev.start_mark, "only one YAML document is allowed");
	return 0;
}

static size_t opt_by_offset(size_t offset)
{
	for (size_t i = 0; i < OPT_COUNT; i++) {
		if (opts[i].offset == offset)
			return i;
	}
	abort(); /* order_rules names a field that is not in the table: a build defect */
}

/* Reported where the later of the two options is given, or at the top if neither is. */
static int check_order_rules(loader_t *ld)
{
	for (size_t r = 0; r < sizeof(order_rules) / sizeof(order_rules[0]); r++) {
		const opt_desc_t *lo = &opts[opt_by_offset(order_rules[r].lo)];
		const opt_desc_t *hi = &opts[opt_by_offset(order_rules[r].hi)];
		int64_t a = *(const int64_t *)opt_cptr(ld->cfg, lo);
		int64_t b = *(const int64_t *)opt_cptr(ld->cfg, hi);
		if (a <= b)
			continue;
		yaml_mark_t m = {0, 0, 0};
		bool found = false;
		for (size_t k = 0; k < 2; k++) {
			size_t i = opt_by_offset(k ? order_rules[r].hi : order_rules[r].lo);
			if (ld->seen[i] && (!found || ld->val_mark[i].index > m.index)) {
				m = ld->val_mark[i];
				found = true;
			}
		}
		return fail_at(ld, m, "%s (%" PRId64 ") must not be greater than %s (%" PRId64 ")",
		               lo->name, a, hi->name, b);
	}
	return 0;
}

int omr_config_load_string(const char *yaml, size_t len, const char *name, omr_config_t **out,
                           char *err, size_t errlen)
{
	if (errlen > 0)
		err[0] = '\0';
	if (!name)
		name = "<string>";
	if (!out || (!yaml && len > 0)) {
		set_err(err, errlen, "%s: invalid arguments", name);
		return -EINVAL;
	}
	loader_t *ld = calloc(1, sizeof(*ld));
	if (!ld) {
		set_err(err, errlen, "%s: out of memory", name);
		return -ENOMEM;
	}
	int rc = -ENOMEM;
	ld->name = name;
	ld->buf = (const unsigned char *)(yaml ? yaml : "");
	ld->len = len;
	ld->err = err;
	ld->errlen = errlen;
	if (!(ld->cfg = omr_config_new_defaults()))
		goto out_free;
	if (!yaml_parser_initialize(&ld->parser))
		goto out_cfg;
	yaml_parser_set_input_string(&ld->parser, ld->buf, len);
	rc = load_stream(ld);
	if (rc == 0)
		rc = check_order_rules(ld);
	if (ld->have_ev)
		yaml_event_delete(&ld->ev);
	yaml_parser_delete(&ld->parser);
	if (rc == 0) {
		*out = ld->cfg;
		ld->cfg = NULL;
	}
out_cfg:
	omr_config_destroy(&ld->cfg);
out_free:
	if (rc == -ENOMEM && errlen > 0 && err[0] == '\0')
		set_err(err, errlen, "%s: out of memory", name);
	free(ld);
	return rc;
}

/* Reads all of path into *bufp (caller frees). */
static int read_file(const char *path, char **bufp, size_t *lenp, char *err, size_t errlen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		int rc = -errno;
		set_err(err, errlen, "%s: cannot open: %s", path, omr_strerror(rc));
		return rc;
	}
	/* One byte over the limit tells a file that is too large from one that just fits. */
	size_t cap = 4096, len = 0;
	char *buf = malloc(cap);
	int rc = 0;
	while (buf) {
		if (len == cap) {
			size_t want =
			        cap * 2 > CONFIG_MAX_BYTES + 1 ? CONFIG_MAX_BYTES + 1 : cap * 2;
			char *bigger = realloc(buf, want);
			if (!bigger)
				break;
			buf = bigger;
			cap = want;
		}
		ssize_t n = read(fd, buf + len, cap - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = -errno;
			set_err(err, errlen, "%s: cannot read: %s", path, omr_strerror(rc));
			break;
		}
		len += (size_t)n;
		if (len > CONFIG_MAX_BYTES) {
			rc = -EFBIG;
			set_err(err, errlen, "%s: larger than %d bytes", path, CONFIG_MAX_BYTES);
			break;
		}
		if (n == 0) {
			close(fd);
			*bufp = buf;
			*lenp = len;
			return 0;
		}
	}
	if (rc == 0) {
		rc = -ENOMEM;
		set_err(err, errlen, "%s: out of memory", path);
	}
	free(buf);
	close(fd);
	return rc;
}

int omr_config_load(const char *path, omr_config_t **out, char *err, size_t errlen)
{
	if (errlen > 0)
		err[0] = '\0';
	if (!path || !out) {
		set_err(err, errlen, "invalid arguments");
		return -EINVAL;
	}
	char *buf = NULL;
	size_t len = 0;
	int rc = read_file(path, &buf, &len, err, errlen);
	if (rc < 0)
		return rc;
	omr_config_t *cfg = NULL;
	rc = omr_config_load_string(buf, len, path, &cfg, err, errlen);
	free(buf);
	if (rc < 0)
		return rc;
	if (!(cfg->path = strdup(path))) {
		omr_config_destroy(&cfg);
		set_err(err, errlen, "%s: out of memory", path);
		return -ENOMEM;
	}
	*out = cfg;
	return 0;
}

/* ---- diff, dump ---- */

/* Appends s to out, cutting it if it does not fit. false if cut. */
static bool append(char *out, size_t outsize, size_t *used, const char *s, size_t len)
{
	if (*used >= outsize)
		return false;
	size_t room = outsize - *used - 1;
	size_t n = len < room ? len : room;
	memcpy(out + *used, s, n);
	*used += n;
	out[*used] = '\0';
	return n == len;
}

static bool append_str(char *out, size_t outsize, size_t *used, const char *s)
{
	return append(out, outsize, used, s, strlen(s));
}

static bool opt_equal(const omr_config_t *a, const omr_config_t *b, const opt_desc_t *o)
{
	const void *pa = opt_cptr(a, o), *pb = opt_cptr(b, o);
	switch (o->type) {
	case OPT_INT:
		return *(const int64_t *)pa == *(const int64_t *)pb;
	case OPT_BOOL:
		return *(const bool *)pa == *(const bool *)pb;
	case OPT_LEVEL:
		return *(const omr_log_level_t *)pa == *(const omr_log_level_t *)pb;
	case OPT_STR: {
		const char *sa = *(char *const *)pa, *sb = *(char *const *)pb;
		return (sa && sb) ? strcmp(sa, sb) == 0 : sa == sb;
	}
	}
	return false;
}

size_t omr_config_diff_static(const omr_config_t *a, const omr_config_t *b, char *out,
                              size_t outsize)
{
	size_t n = 0, used = 0;
	if (outsize > 0)
		out[0] = '\0';
	for (size_t i = 0; i < OPT_COUNT; i++) {
		if (opts[i].reloadable || opt_equal(a, b, &opts[i]))
			continue;
		if (n++ > 0)
			append_str(out, outsize, &used, ", ");
		append_str(out, outsize, &used, opts[i].name);
	}
	return n;
}

/* Options whose values never appear in dumps or logs. */
static bool opt_is_secret(const opt_desc_t *o)
{
	const char *key = o->name + section_len(o->name) + 1;
	return strstr(key, "password") || strstr(key, "secret") || strstr(key, "token");
}

static bool dump_value(const omr_config_t *cfg, const opt_desc_t *o, char *out, size_t outsize,
                       size_t *used)
{
	const void *p = opt_cptr(cfg, o);
	char num[32];
	switch (o->type) {
	case OPT_INT:
		snprintf(num, sizeof(num), "%" PRId64, *(const int64_t *)p);
		return append_str(out, outsize, used, num);
	case OPT_BOOL:
		return append_str(out, outsize, used, *(const bool *)p ? "true" : "false");
	case OPT_LEVEL: {
		unsigned lvl = (unsigned)*(const omr_log_level_t *)p;
		return append_str(out, outsize, used,
		                  lvl < sizeof(level_names) / sizeof(level_names[0])
		                          ? level_names[lvl]
		                          : "?");
	}
	case OPT_STR:
		break;
	}
	const char *s = *(char *const *)p;
	if (!s)
		s = "";
	if (opt_is_secret(o) && *s)
		return append_str(out, outsize, used, "\"********\"");
	/* Quoted, so an empty string or one with spaces reads unambiguously. */
	bool ok = append_str(out, outsize, used, "\"");
	for (; *s && ok; s++) {
		if (*s == '"' || *s == '\\')
			ok = append_str(out, outsize, used, "\\");
		ok = ok && append(out, outsize, used, s, 1);
	}
	return ok && append_str(out, outsize, used, "\"");
}

int omr_config_dump(const omr_config_t *cfg, char *out, size_t outsize)
{
	size_t used = 0;
	if (outsize == 0)
		return -ENOSPC;
	out[0] = '\0';
	for (size_t i = 0; i < OPT_COUNT; i++) {
		if (!append_str(out, outsize, &used, opts[i].name) ||
		    !append_str(out, outsize, &used, " = ") ||
		    !dump_value(cfg, &opts[i], out, outsize, &used) ||
		    !append_str(out, outsize, &used, "\n"))
			return -ENOSPC;
	}
	return 0;
}
