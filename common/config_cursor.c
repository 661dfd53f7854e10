/* config_cursor.c - the event cursor every part of the configuration loader reads through
 * (config.c for the option sections, config_queues.c for the queues): libyaml events with
 * anchors, aliases and tags refused, and errors written as "file:line:column: reason".
 * Also the small helpers both parts need: echoing input safely, booleans, did-you-mean.
 * Owns the current event only; runs on the thread that loads. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "config_int.h"

static const char *const bool_true[] = {"true", "yes", "on"};
static const char *const bool_false[] = {"false", "no", "off"};

const char *omr_cfg_echo(char *buf, size_t size, const char *s, size_t len)
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

int omr_cfg_fail_at(omr_cfg_cursor_t *c, yaml_mark_t m, const char *fmt, ...)
{
	if (c->errlen == 0)
		return -EINVAL;
	int n = snprintf(c->err, c->errlen, "%s:%zu:%zu: ", c->name, m.line + 1, m.column + 1);
	if (n >= 0 && (size_t)n < c->errlen) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(c->err + n, c->errlen - (size_t)n, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

int omr_cfg_nomem(omr_cfg_cursor_t *c)
{
	omr_cfg_set_err(c->err, c->errlen, "%s: out of memory", c->name);
	return -ENOMEM;
}

void omr_cfg_set_err(char *err, size_t errlen, const char *fmt, ...)
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
static yaml_mark_t mark_at_offset(const omr_cfg_cursor_t *c, size_t offset)
{
	yaml_mark_t m = {.index = offset, .line = 0, .column = 0};
	for (size_t i = 0; i < offset && i < c->len; i++) {
		if (c->buf[i] == '\n') {
			m.line++;
			m.column = 0;
		} else if ((c->buf[i] & 0xc0) != 0x80) {
			m.column++;
		}
	}
	return m;
}

static int fail_syntax(omr_cfg_cursor_t *c)
{
	const yaml_parser_t *p = &c->parser;
	if (p->error == YAML_MEMORY_ERROR)
		return omr_cfg_nomem(c);
	const char *problem = p->problem ? p->problem : "syntax error";
	if (p->error == YAML_READER_ERROR) {
		yaml_mark_t m = mark_at_offset(c, p->problem_offset);
		if (p->problem_value != -1)
			return omr_cfg_fail_at(c, m, "%s (0x%x)", problem,
			                       (unsigned)p->problem_value);
		return omr_cfg_fail_at(c, m, "%s", problem);
	}
	if (p->context)
		return omr_cfg_fail_at(c, p->problem_mark, "%s (%s at %zu:%zu)", problem,
		                       p->context, p->context_mark.line + 1,
		                       p->context_mark.column + 1);
	return omr_cfg_fail_at(c, p->problem_mark, "%s", problem);
}

/* Advances to the next event. Anchors, aliases and tags are refused here, for every node:
 * a config is plain data, and aliases are how "billion laughs" documents grow. */
int omr_cfg_next(omr_cfg_cursor_t *c)
{
	if (c->have_ev)
		yaml_event_delete(&c->ev);
	c->have_ev = false;
	if (!yaml_parser_parse(&c->parser, &c->ev))
		return fail_syntax(c);
	c->have_ev = true;

	const yaml_event_t *ev = &c->ev;
	const yaml_char_t *anchor = NULL, *tag = NULL;
	char buf[48];
	switch (ev->type) {
	case YAML_ALIAS_EVENT:
		anchor = ev->data.alias.anchor;
		return omr_cfg_fail_at(c, ev->start_mark, "aliases are not allowed (*%s)",
		                       omr_cfg_echo(buf, sizeof(buf), (const char *)anchor,
		                                    strlen((const char *)anchor)));
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
		return omr_cfg_fail_at(c, ev->start_mark, "anchors are not allowed (&%s)",
		                       omr_cfg_echo(buf, sizeof(buf), (const char *)anchor,
		                                    strlen((const char *)anchor)));
	if (tag)
		return omr_cfg_fail_at(c, ev->start_mark, "tags are not allowed (%s)",
		                       omr_cfg_echo(buf, sizeof(buf), (const char *)tag,
		                                    strlen((const char *)tag)));
	return 0;
}

const char *omr_cfg_node_kind(const yaml_event_t *ev)
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
bool omr_cfg_is_empty_scalar(const yaml_event_t *ev)
{
	return ev->type == YAML_SCALAR_EVENT && ev->data.scalar.length == 0 &&
	       ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
}

/* Optimal string alignment distance: a transposed pair ("hots") costs one edit. */
static size_t edit_distance(const char *a, size_t alen, const char *b, size_t blen)
{
	size_t rows[3][OMR_CFG_SUGGEST_MAX + 1];
	if (alen > OMR_CFG_SUGGEST_MAX || blen > OMR_CFG_SUGGEST_MAX)
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

bool omr_cfg_is_close(const char *typed, size_t len, const char *name, size_t namelen)
{
	size_t limit = len <= 4 ? 1 : 2;
	return edit_distance(typed, len, name, namelen) <= limit;
}

int omr_cfg_parse_bool(const char *s, bool *out)
{
	for (size_t i = 0; i < sizeof(bool_true) / sizeof(bool_true[0]); i++) {
		if (strcmp(s, bool_true[i]) == 0 || strcmp(s, bool_false[i]) == 0) {
			*out = strcmp(s, bool_true[i]) == 0;
			return 0;
		}
	}
	return -EINVAL;
}
