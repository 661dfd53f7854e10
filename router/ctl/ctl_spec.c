/* ctl_spec.c - agent field parsers and roster rows (ctl_spec.h). Pure: no
 * I/O; allocates only the cJSON it returns. */
#include "ctl_spec.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "omnirouter/channel.h"
#include "omnirouter/envelope.h"
#include "omnirouter/util.h"

#define ITEM_MAX (OMR_ENV_ID_MAX + 1u) /* the longest item: an agent id */

__attribute__((format(printf, 3, 4))) static int fail(char *why, size_t whylen, const char *fmt,
                                                      ...)
{
	if (why && whylen) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(why, whylen, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

static bool is_space(char c)
{
	return c == ' ' || c == '\t';
}

/* Copies the next sep-separated item of *p, without surrounding spaces, into
 * item; *p becomes NULL after the last one. Returns 1 (an item), 0 (no
 * more), -EINVAL (empty, as in "a,,b" or "a,", or too long). */
static int next_item(const char **p, char sep, char item[ITEM_MAX])
{
	const char *s = *p;
	if (!s)
		return 0;
	const char *end = strchr(s, sep);
	*p = end ? end + 1 : NULL;
	if (!end)
		end = s + strlen(s);
	while (s < end && is_space(*s))
		s++;
	while (end > s && is_space(end[-1]))
		end--;
	if (end == s || (size_t)(end - s) >= ITEM_MAX) {
		item[0] = '\0';
		return -EINVAL;
	}
	memcpy(item, s, (size_t)(end - s));
	item[end - s] = '\0';
	return 1;
}

/* Splits "key:N" at the last ':' into item (key, trimmed) and *level; no ':'
 * leaves *has_level false. */
static int split_level(char *item, bool *has_level, int64_t *level)
{
	char *colon = strrchr(item, ':');
	*has_level = colon != NULL;
	if (!colon)
		return 0;
	char *num = colon + 1;
	while (is_space(*num))
		num++;
	*colon = '\0';
	for (char *e = colon; e > item && is_space(e[-1]); e--)
		e[-1] = '\0';
	return omr_parse_int(num, INT64_MIN, INT64_MAX, level) == 0 ? 0 : -EINVAL;
}

/* s without leading/trailing spaces is empty. */
static bool blank(const char *s)
{
	while (is_space(*s))
		s++;
	return *s == '\0';
}

int omr_ctl_parse_languages(const char *s, char sep, cJSON **out, char *why, size_t whylen)
{
	cJSON *o = cJSON_CreateObject();
	char item[ITEM_MAX];
	int rc;
	*out = NULL;
	if (!o)
		return -ENOMEM;
	if (blank(s)) {
		rc = fail(why, whylen, "at least one language is required");
		goto bad;
	}
	while ((rc = next_item(&s, sep, item)) != 0) {
		bool has_level;
		int64_t level = OMR_CTL_LEVEL_MAX;
		char lang[16];
		if (rc < 0) {
			rc = fail(why, whylen, "empty or over-long item in the language list");
			goto bad;
		}
		if (split_level(item, &has_level, &level) != 0 || level < OMR_CTL_LEVEL_MIN ||
		    level > OMR_CTL_LEVEL_MAX) {
			rc = fail(why, whylen, "proficiency of '%s' must be %d-%d", item,
			          OMR_CTL_LEVEL_MIN, OMR_CTL_LEVEL_MAX);
			goto bad;
		}
		if (omr_language_primary(item, lang, sizeof(lang)) != 0) {
			rc = fail(why, whylen, "'%s' is not a BCP-47 language tag (e.g. es, en-US)",
			          item);
			goto bad;
		}
		if (cJSON_GetObjectItemCaseSensitive(o, lang)) {
			rc = fail(why, whylen, "language '%s' is given twice", lang);
			goto bad;
		}
		if (!cJSON_AddNumberToObject(o, lang, (double)level)) {
			rc = -ENOMEM;
			goto bad;
		}
	}
	*out = o;
	return 0;
bad:
	cJSON_Delete(o);
	return rc;
}

bool omr_ctl_skill_id_is_valid(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > OMR_CTL_SKILL_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-'))
			return false;
	}
	return true;
}

int omr_ctl_parse_skills(const char *s, char sep, cJSON **out, char *why, size_t whylen)
{
	cJSON *o = cJSON_CreateObject();
	char item[ITEM_MAX];
	int rc;
	*out = NULL;
	if (!o)
		return -ENOMEM;
	if (blank(s))
		s = NULL; /* "" clears the skills */
	while ((rc = next_item(&s, sep, item)) != 0) {
		bool has_level;
		int64_t level = 0;
		if (rc < 0) {
			rc = fail(why, whylen, "empty or over-long item in the skill list");
			goto bad;
		}
		rc = split_level(item, &has_level, &level);
		if (!omr_ctl_skill_id_is_valid(item)) {
			rc = fail(why, whylen, "skill '%s': ids are 1-64 of A-Z a-z 0-9 . _ -",
			          item);
			goto bad;
		}
		if (!has_level || rc != 0 || level < OMR_CTL_LEVEL_MIN ||
		    level > OMR_CTL_LEVEL_MAX) {
			rc = fail(why, whylen, "skill '%s' needs a level %d-%d, e.g. %s:7", item,
			          OMR_CTL_LEVEL_MIN, OMR_CTL_LEVEL_MAX, item);
			goto bad;
		}
		if (cJSON_GetObjectItemCaseSensitive(o, item)) {
			rc = fail(why, whylen, "skill '%s' is given twice", item);
			goto bad;
		}
		if (!cJSON_AddNumberToObject(o, item, (double)level)) {
			rc = -ENOMEM;
			goto bad;
		}
	}
	*out = o;
	return 0;
bad:
	cJSON_Delete(o);
	return rc;
}

int omr_ctl_parse_skill_ids(const char *s, char sep, cJSON **out, char *why, size_t whylen)
{
	cJSON *a = cJSON_CreateArray();
	char item[ITEM_MAX];
	int rc;
	*out = NULL;
	if (!a)
		return -ENOMEM;
	if (blank(s)) {
		rc = fail(why, whylen, "at least one skill is required");
		goto bad;
	}
	while ((rc = next_item(&s, sep, item)) != 0) {
		if (rc < 0 || !omr_ctl_skill_id_is_valid(item)) {
			rc = fail(why, whylen, "skill '%s': ids are 1-64 of A-Z a-z 0-9 . _ -",
			          item);
			goto bad;
		}
		if (!cJSON_AddItemToArray(a, cJSON_CreateString(item))) {
			rc = -ENOMEM;
			goto bad;
		}
	}
	*out = a;
	return 0;
bad:
	cJSON_Delete(a);
	return rc;
}

int omr_ctl_parse_capacity(const char *s, char sep, cJSON **out, char *why, size_t whylen)
{
	int64_t cap[OMR_CHANNEL_COUNT] = {0};
	bool seen[OMR_CHANNEL_COUNT] = {false};
	char item[ITEM_MAX];
	int rc;
	*out = NULL;
	if (blank(s))
		return fail(why, whylen, "capacity is empty (e.g. chat:3,email:5,voice:1)");
	while ((rc = next_item(&s, sep, item)) != 0) {
		bool has_level;
		int64_t n = 0;
		if (rc < 0)
			return fail(why, whylen, "empty or over-long item in the capacity list");
		rc = split_level(item, &has_level, &n);
		omr_channel_t ch = OMR_CHANNEL_CHAT;
		if (!has_level) {
			/* "--capacity 2": the v1 form, chats only. */
			if (omr_parse_int(item, INT64_MIN, INT64_MAX, &n) != 0)
				return fail(
				        why, whylen,
				        "capacity '%s': use a number of chats or channel:N items "
				        "(chat, email, voice)",
				        item);
		} else {
			ch = omr_channel_from_name(item, strlen(item));
			if (ch == OMR_CHANNEL_NONE)
				return fail(why, whylen,
				            "capacity: unknown channel '%s' (chat, email, voice)",
				            item);
			if (rc != 0)
				n = -1;
		}
		if (seen[ch])
			return fail(why, whylen, "capacity of %s is given twice",
			            omr_channel_name(ch));
		if (n < 0 || n > OMR_CTL_CAPACITY_MAX)
			return fail(why, whylen, "capacity of %s must be 0-%d",
			            omr_channel_name(ch), OMR_CTL_CAPACITY_MAX);
		seen[ch] = true;
		cap[ch] = n;
	}
	cJSON *o = cJSON_CreateObject();
	if (!o)
		return -ENOMEM;
	int64_t total = 0;
	for (int ch = OMR_CHANNEL_NONE + 1; ch < OMR_CHANNEL_COUNT; ch++) {
		total += cap[ch];
		if (!cJSON_AddNumberToObject(o, omr_channel_name((omr_channel_t)ch),
		                             (double)cap[ch])) {
			cJSON_Delete(o);
			return -ENOMEM;
		}
	}
	if (total == 0) {
		cJSON_Delete(o);
		return fail(why, whylen, "capacity must allow at least one conversation");
	}
	*out = o;
	return 0;
}

bool omr_ctl_list_has(const cJSON *list, const char *s)
{
	const cJSON *t;
	cJSON_ArrayForEach(t, list)
	{
		if (cJSON_IsString(t) && strcmp(t->valuestring, s) == 0)
			return true;
	}
	return false;
}

/* "a,b" -> ["a","b"]: ids of at most max bytes, no duplicates; at least one
 * unless may_be_empty ("" -> []). what names an item in errors. */
/* Ids of 1-max bytes; at most max_count of them (0: no limit). */
static int parse_ids(const char *s, char sep, size_t max, size_t max_count, bool may_be_empty,
                     const char *what, cJSON **out, char *why, size_t whylen)
{
	cJSON *a = cJSON_CreateArray();
	char item[ITEM_MAX];
	int rc;
	*out = NULL;
	if (!a)
		return -ENOMEM;
	if (blank(s) && !may_be_empty) {
		rc = fail(why, whylen, "at least one %s is required", what);
		goto bad;
	}
	if (blank(s))
		s = NULL;
	while ((rc = next_item(&s, sep, item)) != 0) {
		if (rc < 0 || !omr_id_is_valid(item, max)) {
			rc = fail(why, whylen, "%s '%.*s': ids are 1-%zu of A-Z a-z 0-9 . _ : @ -",
			          what, 64, item, max);
			goto bad;
		}
		if (strcmp(what, "agent") == 0 && omr_id_names_subkey(item, OMR_ID_AGENT)) {
			rc = fail(why, whylen, "%s '%s': an agent id " OMR_ID_AGENT_SUBKEY_WHY,
			          what, item);
			goto bad;
		}
		if (omr_ctl_list_has(a, item)) {
			rc = fail(why, whylen, "%s '%s' is given twice", what, item);
			goto bad;
		}
		if (max_count && (size_t)cJSON_GetArraySize(a) >= max_count) {
			rc = fail(why, whylen, "at most %zu %ss", max_count, what);
			goto bad;
		}
		if (!cJSON_AddItemToArray(a, cJSON_CreateString(item))) {
			rc = -ENOMEM;
			goto bad;
		}
	}
	*out = a;
	return 0;
bad:
	cJSON_Delete(a);
	return rc;
}

int omr_ctl_parse_tenants(const char *s, char sep, cJSON **out, char *why, size_t whylen)
{
	return parse_ids(s, sep, OMR_CTL_TENANT_MAX, 0, false, "tenant", out, why, whylen);
}

int omr_ctl_parse_supervises(const char *s, char sep, cJSON **out, char *why, size_t whylen)
{
	return parse_ids(s, sep, OMR_ENV_ID_MAX, OMR_CTL_SUPERVISES_MAX, true, "agent", out, why,
	                 whylen);
}

static bool has_control(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return true;
	return false;
}

int omr_ctl_check_name(const char *s, char *why, size_t whylen)
{
	size_t n = strlen(s);
	if (n == 0 || blank(s) || n > OMR_CTL_NAME_MAX || !omr_utf8_is_valid(s, n) ||
	    has_control(s))
		return fail(why, whylen,
		            "name must be 1-%u bytes of UTF-8 on one line, without control "
		            "characters",
		            OMR_CTL_NAME_MAX);
	return 0;
}

int omr_ctl_check_reason(const char *s, char *why, size_t whylen)
{
	size_t n = strlen(s);
	if (n > OMR_CTL_REASON_MAX || !omr_utf8_is_valid(s, n) || has_control(s))
		return fail(why, whylen,
		            "reason must be at most %u bytes of UTF-8 on one line, without control "
		            "characters",
		            OMR_CTL_REASON_MAX);
	return 0;
}

static const char *const roster_names[OMR_ROSTER_NCOLS] = {
        "id", "name", "languages", "skills", "capacity", "tenants", "supervises",
};

int omr_roster_header(const omr_csv_record_t *rec, omr_roster_cols_t *cols, char *why,
                      size_t whylen)
{
	for (int c = 0; c < OMR_ROSTER_NCOLS; c++)
		cols->at[c] = -1;
	cols->nfields = rec->nfields;
	for (size_t i = 0; i < rec->nfields; i++) {
		const char *f = omr_csv_field(rec, i);
		while (is_space(*f))
			f++;
		size_t n = strlen(f);
		while (n && is_space(f[n - 1]))
			n--;
		int c = 0;
		while (c < OMR_ROSTER_NCOLS &&
		       !(strlen(roster_names[c]) == n && strncasecmp(f, roster_names[c], n) == 0))
			c++;
		if (n == 0)
			continue; /* (a spreadsheet's empty trailing columns: their cells must be
			             too) */
		if (c == OMR_ROSTER_NCOLS)
			return fail(why, whylen,
			            "unknown column '%.*s' (header: id,name,languages[,skills]"
			            "[,capacity][,tenants][,supervises])",
			            (int)(n > 64 ? 64 : n), f);
		if (cols->at[c] >= 0)
			return fail(why, whylen, "column '%s' appears twice", roster_names[c]);
		cols->at[c] = (int)i;
	}
	for (int c = OMR_ROSTER_ID; c <= OMR_ROSTER_LANGUAGES; c++)
		if (cols->at[c] < 0)
			return fail(why, whylen,
			            "header row lacks column '%s' (header: id,name,languages"
			            "[,skills][,capacity][,tenants][,supervises])",
			            roster_names[c]);
	return 0;
}

/* The name of the column field i of a row is under; NULL when the header names none. */
static const char *column_of(const omr_roster_cols_t *cols, size_t i)
{
	for (int c = 0; c < OMR_ROSTER_NCOLS; c++)
		if (cols->at[c] == (int)i)
			return roster_names[c];
	return NULL;
}

static const char *cell(const omr_roster_cols_t *cols, const omr_csv_record_t *rec, int c)
{
	return cols->at[c] < 0 ? "" : omr_csv_field(rec, (size_t)cols->at[c]);
}

/* Parses an optional list cell into field `key` of o; an empty cell adds
 * nothing. */
static int add_list(cJSON *o, const char *key, const char *s,
                    int (*parse)(const char *, char, cJSON **, char *, size_t), char *why,
                    size_t whylen)
{
	if (blank(s))
		return 0;
	cJSON *v = NULL;
	char inner[192];
	int rc = parse(s, '|', &v, inner, sizeof(inner));
	if (rc == -EINVAL)
		return fail(why, whylen, "%s: %s", key, inner);
	if (rc != 0)
		return rc;
	cJSON_AddItemToObject(o, key, v);
	return 0;
}

int omr_roster_row(const omr_roster_cols_t *cols, const omr_csv_record_t *rec, const char **id,
                   cJSON **out, char *why, size_t whylen)
{
	*out = NULL;
	*id = cell(cols, rec, OMR_ROSTER_ID);
	if (rec->nfields != cols->nfields)
		return fail(why, whylen, "%zu fields, but the header has %zu", rec->nfields,
		            cols->nfields);
	for (size_t i = 0; i < rec->nfields; i++) {
		const char *f = omr_csv_field(rec, i);
		const char *column = column_of(cols, i);
		if (column && strpbrk(f, "\r\n"))
			return fail(why, whylen, "%s: a value may not hold a line break", column);
		if (!column && !blank(f))
			return fail(why, whylen,
			            "field %zu has a value but no column name in the header",
			            i + 1);
	}
	if (!omr_id_is_valid(*id, OMR_ENV_ID_MAX))
		return fail(why, whylen, "id '%.64s': ids are 1-128 of A-Z a-z 0-9 . _ : @ -", *id);
	if (omr_id_names_subkey(*id, OMR_ID_AGENT))
		return fail(why, whylen, "id '%s': an agent id " OMR_ID_AGENT_SUBKEY_WHY, *id);
	const char *name = cell(cols, rec, OMR_ROSTER_NAME);
	if (omr_ctl_check_name(name, why, whylen) != 0)
		return -EINVAL;
	if (blank(cell(cols, rec, OMR_ROSTER_LANGUAGES)))
		return fail(why, whylen, "languages: at least one language is required");
	cJSON *o = cJSON_CreateObject();
	if (!o || !cJSON_AddStringToObject(o, "name", name)) {
		cJSON_Delete(o);
		return -ENOMEM;
	}
	int rc = add_list(o, "languages", cell(cols, rec, OMR_ROSTER_LANGUAGES),
	                  omr_ctl_parse_languages, why, whylen);
	if (rc == 0)
		rc = add_list(o, "skills", cell(cols, rec, OMR_ROSTER_SKILLS), omr_ctl_parse_skills,
		              why, whylen);
	if (rc == 0)
		rc = add_list(o, "capacity", cell(cols, rec, OMR_ROSTER_CAPACITY),
		              omr_ctl_parse_capacity, why, whylen);
	if (rc == 0)
		rc = add_list(o, "tenants", cell(cols, rec, OMR_ROSTER_TENANTS),
		              omr_ctl_parse_tenants, why, whylen);
	if (rc == 0)
		rc = add_list(o, "supervises", cell(cols, rec, OMR_ROSTER_SUPERVISES),
		              omr_ctl_parse_supervises, why, whylen);
	if (rc == 0 && omr_ctl_list_has(cJSON_GetObjectItemCaseSensitive(o, "supervises"), *id))
		rc = fail(why, whylen, "supervises: an agent cannot supervise itself");
	if (rc != 0) {
		cJSON_Delete(o);
		return rc;
	}
	*out = o;
	return 0;
}

int omr_ctl_new_agent_defaults(cJSON *agent, const char *default_tenant)
{
	if (!cJSON_HasObjectItem(agent, "skills") && !cJSON_AddObjectToObject(agent, "skills"))
		return -ENOMEM;
	if (!cJSON_HasObjectItem(agent, "capacity")) {
		cJSON *cap = NULL;
		if (omr_ctl_parse_capacity("chat:1", ',', &cap, NULL, 0) != 0)
			return -ENOMEM;
		cJSON_AddItemToObject(agent, "capacity", cap);
	}
	if (!cJSON_HasObjectItem(agent, "tenants")) {
		cJSON *t = cJSON_AddArrayToObject(agent, "tenants");
		if (!t || !cJSON_AddItemToArray(t, cJSON_CreateString(default_tenant)))
			return -ENOMEM;
	}
	if (!cJSON_HasObjectItem(agent, "supervises") &&
	    !cJSON_AddArrayToObject(agent, "supervises"))
		return -ENOMEM;
	return 0;
}
