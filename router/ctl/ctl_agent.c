/* ctl_agent.c - `omnirouterctl agent ...`: add, update, token, skills,
 * state, list, show, remove (import is in ctl_import.c). Every change goes
 * through omr_agent_upsert / omr_agent_state / omr_agent_remove; views read
 * omr_agent_get / omr_agent_list. The command line is checked completely
 * before the first Redis call. Single-threaded. */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ctl.h"
#include "ctl_spec.h"
#include "omnirouter/envelope.h"
#include "omnirouter/util.h"

#define TOKEN_MIN 16u
#define TOKEN_BYTES 24u /* 48 hex characters */

static int check_options(const omr_ctl_t *ctl, const char *verb, unsigned allowed)
{
	return omr_ctl_check_options(ctl, "agent", verb, allowed);
}

/* The agent id: --id, or the word after the verb (`agent show ana`).
 * extra is how many more words the verb takes after the id. */
static int agent_id(const omr_ctl_t *ctl, int argc, char **argv, int extra, const char **id)
{
	int words = argc - 2; /* after "agent VERB" */
	*id = ctl->id;
	if (!*id && words == extra + 1)
		*id = argv[2];
	else if (words != extra)
		return omr_ctl_usage_error("agent %s: wrong number of arguments (see --help)",
		                           argv[1]);
	if (!*id)
		return omr_ctl_usage_error("agent %s: --id is required", argv[1]);
	if (!omr_id_is_valid(*id, OMR_ENV_ID_MAX))
		return omr_ctl_usage_error("--id: ids are 1-128 of A-Z a-z 0-9 . _ : @ -");
	if (omr_id_names_subkey(*id, OMR_ID_AGENT))
		return omr_ctl_usage_error("--id: an agent id " OMR_ID_AGENT_SUBKEY_WHY);
	return 0;
}

/* Adds one parsed option to the agent JSON; a bad value is a usage error
 * naming the option. */
static int add_field(cJSON *a, const char *key, const char *value,
                     int (*parse)(const char *, char, cJSON **, char *, size_t))
{
	char why[256];
	cJSON *v = NULL;
	int rc = parse(value, ',', &v, why, sizeof(why));
	if (rc == -EINVAL)
		return omr_ctl_usage_error("--%s: %s", key, why);
	if (rc != 0)
		return omr_ctl_error("out of memory");
	cJSON_AddItemToObject(a, key, v);
	return 0;
}

/* The fields given on the command line, as upsert JSON, for agent id. */
static int fields_json(const omr_ctl_t *ctl, const char *id, cJSON **out)
{
	char why[256];
	cJSON *a = cJSON_CreateObject();
	int rc = a ? 0 : omr_ctl_error("out of memory");
	if (rc == 0 && ctl->name) {
		if (omr_ctl_check_name(ctl->name, why, sizeof(why)) != 0)
			rc = omr_ctl_usage_error("--name: %s", why);
		else if (!cJSON_AddStringToObject(a, "name", ctl->name))
			rc = omr_ctl_error("out of memory");
	}
	if (rc == 0 && ctl->languages)
		rc = add_field(a, "languages", ctl->languages, omr_ctl_parse_languages);
	if (rc == 0 && ctl->skills)
		rc = add_field(a, "skills", ctl->skills, omr_ctl_parse_skills);
	if (rc == 0 && ctl->capacity)
		rc = add_field(a, "capacity", ctl->capacity, omr_ctl_parse_capacity);
	if (rc == 0 && ctl->tenants)
		rc = add_field(a, "tenants", ctl->tenants, omr_ctl_parse_tenants);
	if (rc == 0 && ctl->supervises)
		rc = add_field(a, "supervises", ctl->supervises, omr_ctl_parse_supervises);
	if (rc == 0 && omr_ctl_list_has(cJSON_GetObjectItemCaseSensitive(a, "supervises"), id))
		rc = omr_ctl_usage_error("--supervises: an agent cannot supervise itself");
	if (rc != 0) {
		cJSON_Delete(a);
		return rc;
	}
	*out = a;
	return 0;
}

/* --token, or a fresh random one; adds its hash to the agent JSON. */
static int new_token(const omr_ctl_t *ctl, cJSON *a, char token[OMR_ENV_ID_MAX + 1])
{
	char sha[65];
	if (ctl->token) {
		if (!omr_id_is_valid(ctl->token, OMR_ENV_ID_MAX) || strlen(ctl->token) < TOKEN_MIN)
			return omr_ctl_usage_error("--token: 16-128 of A-Z a-z 0-9 . _ : @ -");
		snprintf(token, OMR_ENV_ID_MAX + 1, "%s", ctl->token);
	} else if (omr_random_hex(token, OMR_ENV_ID_MAX + 1, TOKEN_BYTES) != 0) {
		return omr_ctl_error("cannot read random bytes for a token");
	}
	omr_sha256_hex(token, strlen(token), sha);
	if (!cJSON_AddStringToObject(a, "token_sha", sha))
		return omr_ctl_error("out of memory");
	return 0;
}

/* Prints the outcome of an upsert: the token alone (the only copy) when
 * there is one, else "RESULT ID". */
static void print_result(const omr_ctl_t *ctl, const char *id, const char *result,
                         const char *token, const cJSON *skills)
{
	if (ctl->json) {
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "id", id);
		cJSON_AddStringToObject(o, "result", result);
		if (token)
			cJSON_AddStringToObject(o, "token", token);
		if (skills)
			cJSON_AddItemToObject(o, "skills", cJSON_Duplicate(skills, true));
		omr_ctl_print_json(o);
		cJSON_Delete(o);
	} else if (token) {
		printf("%s\n", token);
	} else if (skills) {
		printf("%s %s: skills ", result, id);
		omr_ctl_format_levels(skills, stdout);
		fputs("\n", stdout);
	} else {
		printf("%s %s\n", result, id);
	}
}

/* Fails with OMR_CTL_FAIL when the agent does not exist; *agent may be NULL
 * when the caller needs only the check. */
static int get_agent(omr_ctl_t *ctl, const char *id, cJSON **agent)
{
	char what[160];
	snprintf(what, sizeof(what), "agent %s", id);
	const char *args[] = {id};
	cJSON *a = NULL;
	int rc = omr_ctl_fcall_json(ctl, "omr_agent_get", what, 1, args, &a);
	if (rc == OMR_CTL_OK && !cJSON_IsObject(a))
		rc = omr_ctl_error("%s: omr_agent_get did not answer an object", what);
	if (rc != OMR_CTL_OK || !agent) {
		cJSON_Delete(a);
	} else {
		omr_ctl_json_array(a, "conversations");
		omr_ctl_json_array(a, "supervises");
		*agent = a;
	}
	return rc;
}

static int agent_add(omr_ctl_t *ctl, int argc, char **argv)
{
	const char *id, *result;
	char token[OMR_ENV_ID_MAX + 1];
	cJSON *a = NULL;
	int rc = check_options(ctl, "add", F_ID | F_FIELDS | F_TOKEN | F_TENANT);
	if (rc == 0)
		rc = agent_id(ctl, argc, argv, 0, &id);
	if (rc == 0 && (!ctl->name || !ctl->languages))
		rc = omr_ctl_usage_error("agent add: --name and --languages are required");
	if (rc == 0)
		rc = fields_json(ctl, id, &a);
	/* add replaces: every field is sent, with defaults for those not given,
	 * since the upsert keeps the current value of a missing field. */
	if (rc == 0 && omr_ctl_new_agent_defaults(a, ctl->default_tenant) != 0)
		rc = omr_ctl_error("out of memory");
	if (rc == 0)
		rc = new_token(ctl, a, token);
	if (rc == 0)
		rc = omr_ctl_upsert(ctl, id, a, &result);
	if (rc == 0)
		print_result(ctl, id, result, token, NULL);
	cJSON_Delete(a);
	return rc;
}

static int agent_update(omr_ctl_t *ctl, int argc, char **argv)
{
	const char *id, *result;
	cJSON *a = NULL;
	int rc = check_options(ctl, "update", F_ID | F_FIELDS);
	if (rc == 0)
		rc = agent_id(ctl, argc, argv, 0, &id);
	if (rc == 0)
		rc = fields_json(ctl, id, &a);
	/* The upsert would create a missing agent; update must not. */
	if (rc == 0 && !cJSON_AddTrueToObject(a, "must_exist"))
		rc = omr_ctl_error("out of memory");
	if (rc == 0)
		rc = omr_ctl_upsert(ctl, id, a, &result);
	if (rc == 0)
		print_result(ctl, id, result, NULL, NULL);
	cJSON_Delete(a);
	return rc;
}

static int agent_token(omr_ctl_t *ctl, int argc, char **argv)
{
	const char *id, *result;
	char token[OMR_ENV_ID_MAX + 1];
	cJSON *a = cJSON_CreateObject();
	int rc = a ? check_options(ctl, "token", F_ID | F_TOKEN) : omr_ctl_error("out of memory");
	if (rc == 0)
		rc = agent_id(ctl, argc, argv, 0, &id);
	if (rc == 0)
		rc = new_token(ctl, a, token);
	if (rc == 0 && !cJSON_AddTrueToObject(a, "must_exist"))
		rc = omr_ctl_error("out of memory");
	if (rc == 0)
		rc = omr_ctl_upsert(ctl, id, a, &result);
	if (rc == 0)
		print_result(ctl, id, result, token, NULL);
	cJSON_Delete(a);
	return rc;
}

/* Parses --set (an object), --add (an object) and --remove (an array of
 * ids). */
static int skill_edits(const omr_ctl_t *ctl, cJSON **set, cJSON **add, cJSON **remove)
{
	char why[256];
	int rc = 0;
	*set = *add = *remove = NULL;
	if (!ctl->skills_set && !ctl->skills_add && !ctl->skills_remove)
		return omr_ctl_usage_error("agent skills: give --set, --add or --remove");
	if (ctl->skills_set &&
	    (rc = omr_ctl_parse_skills(ctl->skills_set, ',', set, why, sizeof(why))) != 0)
		return rc == -EINVAL ? omr_ctl_usage_error("--set: %s", why)
		                     : omr_ctl_error("out of memory");
	if (ctl->skills_add &&
	    (rc = omr_ctl_parse_skills(ctl->skills_add, ',', add, why, sizeof(why))) != 0)
		return rc == -EINVAL ? omr_ctl_usage_error("--add: %s", why)
		                     : omr_ctl_error("out of memory");
	if (ctl->skills_remove &&
	    (rc = omr_ctl_parse_skill_ids(ctl->skills_remove, ',', remove, why, sizeof(why))) != 0)
		return rc == -EINVAL ? omr_ctl_usage_error("--remove: %s", why)
		                     : omr_ctl_error("out of memory");
	return 0;
}

/* The edit is done by omr_agent_upsert, inside Redis: two edits at once both
 * apply. --set replaces the skills, then --add and --remove apply. */
static int agent_skills(omr_ctl_t *ctl, int argc, char **argv)
{
	const char *id, *result;
	cJSON *set = NULL, *add = NULL, *remove = NULL, *now = NULL;
	cJSON *a = cJSON_CreateObject();
	int rc = a ? check_options(ctl, "skills", F_ID | F_SET | F_ADD | F_REMOVE)
	           : omr_ctl_error("out of memory");
	if (rc == 0)
		rc = agent_id(ctl, argc, argv, 0, &id);
	if (rc == 0)
		rc = skill_edits(ctl, &set, &add, &remove);
	if (rc != 0)
		goto out;
	if (!cJSON_AddTrueToObject(a, "must_exist") ||
	    (set && !cJSON_AddItemReferenceToObject(a, "skills", set)) ||
	    (add && !cJSON_AddItemReferenceToObject(a, "skills_add", add)) ||
	    (remove && !cJSON_AddItemReferenceToObject(a, "skills_remove", remove))) {
		rc = omr_ctl_error("out of memory");
		goto out;
	}
	rc = omr_ctl_upsert(ctl, id, a, &result);
	if (rc == 0)
		rc = get_agent(ctl, id, &now);
	if (rc == 0)
		print_result(ctl, id, result, NULL,
		             cJSON_GetObjectItemCaseSensitive(now, "skills"));
out:
	cJSON_Delete(a);
	cJSON_Delete(now);
	cJSON_Delete(set);
	cJSON_Delete(add);
	cJSON_Delete(remove);
	return rc;
}

static int agent_state(omr_ctl_t *ctl, int argc, char **argv)
{
	static const char *const states[] = {"available", "busy", "break", "offline", "away"};
	const char *id, *reason = ctl->reason ? ctl->reason : "";
	char why[256], what[160];
	int rc = check_options(ctl, "state", F_ID | F_REASON);
	if (rc == 0)
		rc = agent_id(ctl, argc, argv, 1, &id);
	if (rc != 0)
		return rc;
	const char *state = argv[argc - 1];
	size_t i = 0;
	while (i < sizeof(states) / sizeof(states[0]) && strcmp(state, states[i]) != 0)
		i++;
	if (i == sizeof(states) / sizeof(states[0]))
		return omr_ctl_usage_error("agent state: '%s' is not one of available, busy, "
		                           "break, offline, away",
		                           state);
	if (omr_ctl_check_reason(reason, why, sizeof(why)) != 0)
		return omr_ctl_usage_error("--reason: %s", why);
	/* As for the desktop (PROTOCOL.md presence): a reason says why an agent is not taking
	 * work. */
	if (reason[0] && (strcmp(state, "available") == 0 || strcmp(state, "away") == 0))
		return omr_ctl_usage_error(
		        "agent state: --reason goes with busy, break or offline, "
		        "not %s",
		        state);
	snprintf(what, sizeof(what), "agent %s", id);
	const char *args[] = {id, state, reason};
	redisReply *r = NULL;
	rc = omr_ctl_fcall(ctl, "omr_agent_state", what, 3, args, &r);
	if (rc != 0)
		return rc;
	const char *now = r->type == REDIS_REPLY_STRING ? r->str : state;
	if (ctl->json) {
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "id", id);
		cJSON_AddStringToObject(o, "presence", now);
		cJSON_AddStringToObject(o, "reason", reason);
		omr_ctl_print_json(o);
		cJSON_Delete(o);
	} else {
		printf("%s: %s%s%s%s\n", id, now, reason[0] ? " (" : "", reason,
		       reason[0] ? ")" : "");
	}
	freeReplyObject(r);
	return 0;
}

/* `agent VERB ID`: one Function call on the agent, printing "RESULT ID". */
static int agent_call(omr_ctl_t *ctl, int argc, char **argv, const char *fn, const char *result)
{
	const char *id;
	char what[160];
	int rc = check_options(ctl, argv[1], F_ID);
	if (rc == 0)
		rc = agent_id(ctl, argc, argv, 0, &id);
	if (rc != 0)
		return rc;
	snprintf(what, sizeof(what), "agent %s", id);
	const char *args[] = {id};
	redisReply *r = NULL;
	rc = omr_ctl_fcall(ctl, fn, what, 1, args, &r);
	if (rc != 0)
		return rc;
	print_result(ctl, id, result, NULL, NULL);
	freeReplyObject(r);
	return 0;
}

static int agent_remove(omr_ctl_t *ctl, int argc, char **argv)
{
	return agent_call(ctl, argc, argv, "omr_agent_remove", "removed");
}

/* Takes the agent's token away: it can no longer log in, and a desktop that
 * is logged in now is logged out. `agent token` issues a new one. */
static int agent_revoke(omr_ctl_t *ctl, int argc, char **argv)
{
	return agent_call(ctl, argc, argv, "omr_agent_revoke", "revoked");
}

/* ---- views ---- */

static long long num(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
	return cJSON_IsNumber(v) ? (long long)v->valuedouble : 0;
}

static const char *str(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
	return cJSON_IsString(v) ? v->valuestring : "";
}

static int cmp_level(const void *pa, const void *pb)
{
	const cJSON *a = *(const cJSON *const *)pa, *b = *(const cJSON *const *)pb;
	if (a->valuedouble != b->valuedouble)
		return a->valuedouble > b->valuedouble ? -1 : 1;
	return strcmp(a->string, b->string);
}

void omr_ctl_format_levels(const cJSON *obj, FILE *out)
{
	const cJSON *it, **items = NULL;
	size_t n = 0;
	cJSON_ArrayForEach(it, obj) n++;
	if (n && !(items = calloc(n, sizeof(*items)))) {
		fputs("?", out);
		return;
	}
	n = 0;
	cJSON_ArrayForEach(it, obj)
	{
		if (it->string && cJSON_IsNumber(it))
			items[n++] = it;
	}
	if (n > 1)
		qsort(items, n, sizeof(items[0]), cmp_level);
	for (size_t i = 0; i < n; i++)
		fprintf(out, "%s%s:%g", i ? "," : "", items[i]->string, items[i]->valuedouble);
	if (n == 0)
		fputs("-", out);
	free(items);
}

/* Comma-separated strings of an array (or the keys of an object: an empty
 * Lua table may come as {}). */
static void format_list(const cJSON *a, FILE *out)
{
	const cJSON *it;
	bool any = false;
	cJSON_ArrayForEach(it, a)
	{
		const char *s = cJSON_IsString(it) ? it->valuestring : it->string;
		if (s) {
			fprintf(out, "%s%s", any ? "," : "", s);
			any = true;
		}
	}
	if (!any)
		fputs("-", out);
}

/* "chat:1/3,email:0/5": load/capacity of every channel with either. */
static void format_load(const cJSON *agent, FILE *out)
{
	static const char *const channels[] = {"chat", "email", "voice"};
	const cJSON *cap = cJSON_GetObjectItemCaseSensitive(agent, "capacity");
	const cJSON *load = cJSON_GetObjectItemCaseSensitive(agent, "load");
	bool any = false;
	for (size_t i = 0; i < 3; i++) {
		long long c = num(cap, channels[i]), l = num(load, channels[i]);
		if (c == 0 && l == 0)
			continue;
		fprintf(out, "%s%s:%lld/%lld", any ? "," : "", channels[i], l, c);
		any = true;
	}
	if (!any)
		fputs("-", out);
}

/* "PRESENCE (reason)", then the channels in wrap-up: "available + wrap-up chat,email". */
static void format_presence(const cJSON *agent, FILE *out)
{
	const char *p = str(agent, "presence"), *reason = str(agent, "reason");
	fprintf(out, "%s%s%s%s", p[0] ? p : "-", reason[0] ? " (" : "", reason,
	        reason[0] ? ")" : "");
	const cJSON *ch, *wrapup = cJSON_GetObjectItemCaseSensitive(agent, "wrapup_until_ms");
	const char *sep = " + wrap-up ";
	cJSON_ArrayForEach(ch, wrapup)
	{
		if (cJSON_IsNumber(ch) && ch->valuedouble > 0 && ch->string) {
			fprintf(out, "%s%s", sep, ch->string);
			sep = ",";
		}
	}
}

void omr_ctl_format_time(double ms, char *out, size_t outsize)
{
	struct tm tm;
	time_t t = (time_t)(ms / 1000);
	if (ms <= 0 || !gmtime_r(&t, &tm) || strftime(out, outsize, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(out, outsize, "-");
}

/* Whether code point c takes two terminal columns: the East Asian Wide and
 * Fullwidth blocks (Hangul, CJK, kana, fullwidth forms) and the emoji
 * blocks, as wcwidth() says in a UTF-8 locale (which this tool does not
 * assume it runs in). */
static bool wide(uint32_t c)
{
	static const uint32_t ranges[][2] = {
	        {0x1100, 0x115F},   {0x2E80, 0x303E},   {0x3041, 0x33FF},   {0x3400, 0x4DBF},
	        {0x4E00, 0x9FFF},   {0xA000, 0xA4CF},   {0xAC00, 0xD7A3},   {0xF900, 0xFAFF},
	        {0xFE30, 0xFE4F},   {0xFF00, 0xFF60},   {0xFFE0, 0xFFE6},   {0x1F300, 0x1F64F},
	        {0x1F680, 0x1F6FF}, {0x1F900, 0x1F9FF}, {0x20000, 0x2FFFD}, {0x30000, 0x3FFFD},
	};
	for (size_t i = 0; i < sizeof(ranges) / sizeof(ranges[0]); i++)
		if (c >= ranges[i][0] && c <= ranges[i][1])
			return true;
	return false;
}

/* Display width of UTF-8 text (names may be in any script): one column a
 * code point, two for the wide ones. */
static size_t width(const char *s)
{
	size_t n = 0;
	const unsigned char *p = (const unsigned char *)s;
	while (*p) {
		uint32_t c = *p;
		size_t len = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
		c &= len == 1 ? 0x7F : len == 2 ? 0x1F : len == 3 ? 0x0F : 0x07;
		size_t i = 1;
		for (; i < len && (p[i] & 0xC0) == 0x80; i++)
			c = (c << 6) | (p[i] & 0x3F);
		p += i; /* (stored text is valid UTF-8; a short sequence stops at its end) */
		n += wide(c) ? 2 : 1;
	}
	return n;
}

#define NCOLS 8

/* A table cell: whatever length its lists have (NULL when out of memory). */
typedef char *cells_t[NCOLS];

static char *cell(void (*fmt)(const cJSON *, FILE *), const cJSON *v)
{
	char *s = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&s, &len);
	if (!f)
		return NULL;
	fmt(v, f);
	if (fclose(f) != 0) {
		free(s);
		return NULL;
	}
	return s;
}

static void format_id(const cJSON *agent, FILE *out)
{
	fputs(str(agent, "id"), out);
}

static void format_name(const cJSON *agent, FILE *out)
{
	fputs(str(agent, "name"), out);
}

static const cJSON *member(const cJSON *o, const char *key)
{
	return cJSON_GetObjectItemCaseSensitive(o, key);
}

static void row_cells(const cJSON *agent, cells_t cells)
{
	cells[0] = cell(format_id, agent);
	cells[1] = cell(format_name, agent);
	cells[2] = cell(format_list, member(agent, "tenants"));
	cells[3] = cell(omr_ctl_format_levels, member(agent, "languages"));
	cells[4] = cell(omr_ctl_format_levels, member(agent, "skills"));
	cells[5] = cell(format_load, agent);
	cells[6] = cell(format_list, member(agent, "supervises"));
	cells[7] = cell(format_presence, agent);
}

static void free_cells(cells_t cells)
{
	for (int c = 0; c < NCOLS; c++)
		free(cells[c]);
}

static const char *cell_text(const char *s)
{
	return s ? s : "?";
}

static void print_row(char *const cells[NCOLS], const size_t *w)
{
	for (int c = 0; c < NCOLS - 1; c++)
		printf("%s%*s  ", cell_text(cells[c]), (int)(w[c] - width(cell_text(cells[c]))),
		       "");
	printf("%s\n", cell_text(cells[NCOLS - 1]));
}

static void print_table(const cJSON *agents)
{
	static char *const head[NCOLS] = {"ID",     "NAME",     "TENANTS",    "LANGUAGES",
	                                  "SKILLS", "LOAD/CAP", "SUPERVISES", "PRESENCE"};
	cells_t cells;
	size_t w[NCOLS];
	const cJSON *a;
	for (int c = 0; c < NCOLS; c++)
		w[c] = width(head[c]);
	cJSON_ArrayForEach(a, agents)
	{
		row_cells(a, cells);
		for (int c = 0; c < NCOLS; c++)
			if (width(cell_text(cells[c])) > w[c])
				w[c] = width(cell_text(cells[c]));
		free_cells(cells);
	}
	print_row(head, w);
	cJSON_ArrayForEach(a, agents)
	{
		row_cells(a, cells);
		print_row(cells, w);
		free_cells(cells);
	}
}

static int agent_list(omr_ctl_t *ctl, int argc, char **argv)
{
	cJSON *all = NULL;
	int rc = check_options(ctl, "list", F_TENANT);
	if (rc == 0 && argc != 2)
		rc = omr_ctl_usage_error("agent list takes no arguments");
	if (rc == 0)
		rc = omr_ctl_fcall_json(ctl, "omr_agent_list", "agent list", 0, NULL, &all);
	if (rc != 0)
		return rc;
	cJSON *shown = cJSON_CreateArray();
	for (cJSON *a = all ? all->child : NULL, *next; a; a = next) {
		next = a->next;
		if (cJSON_IsObject(a) &&
		    (!ctl->tenant_given ||
		     omr_ctl_list_has(cJSON_GetObjectItemCaseSensitive(a, "tenants"),
		                      ctl->default_tenant))) {
			omr_ctl_json_array(a, "conversations");
			omr_ctl_json_array(a, "supervises");
			cJSON_AddItemToArray(shown, cJSON_DetachItemViaPointer(all, a));
		}
	}
	if (ctl->json)
		omr_ctl_print_json(shown);
	else
		print_table(shown);
	cJSON_Delete(shown);
	cJSON_Delete(all);
	return 0;
}

static void print_agent(const cJSON *a)
{
	char since[32];
	printf("id             %s\n", str(a, "id"));
	printf("name           %s\n", str(a, "name"));
	fputs("tenants        ", stdout);
	format_list(member(a, "tenants"), stdout);
	fputs("\nlanguages      ", stdout);
	omr_ctl_format_levels(member(a, "languages"), stdout);
	fputs("\nskills         ", stdout);
	omr_ctl_format_levels(member(a, "skills"), stdout);
	fputs("\nload/capacity  ", stdout);
	format_load(a, stdout);
	fputs("\npresence       ", stdout);
	format_presence(a, stdout);
	omr_ctl_format_time((double)num(a, "presence_since_ms"), since, sizeof(since));
	printf(" since %s\nsupervises     ", since);
	format_list(member(a, "supervises"), stdout);
	fputs("\nconversations  ", stdout);
	format_list(member(a, "conversations"), stdout);
	fputs("\n", stdout);
}

static int agent_show(omr_ctl_t *ctl, int argc, char **argv)
{
	const char *id;
	cJSON *a = NULL;
	int rc = check_options(ctl, "show", F_ID);
	if (rc == 0)
		rc = agent_id(ctl, argc, argv, 0, &id);
	if (rc == 0)
		rc = get_agent(ctl, id, &a);
	if (rc != 0)
		return rc;
	if (ctl->json)
		omr_ctl_print_json(a);
	else
		print_agent(a);
	cJSON_Delete(a);
	return 0;
}

static int agent_import(omr_ctl_t *ctl, int argc, char **argv)
{
	int rc = check_options(ctl, "import", F_DRY_RUN | F_TENANT);
	if (rc == 0 && argc != 3)
		rc = omr_ctl_usage_error("agent import FILE.csv [--dry-run]");
	return rc ? rc : omr_ctl_import(ctl, argv[2]);
}

int omr_ctl_agent(omr_ctl_t *ctl, int argc, char **argv)
{
	static const struct {
		const char *verb;
		int (*run)(omr_ctl_t *, int, char **);
	} verbs[] = {
	        {"add", agent_add},       {"update", agent_update}, {"token", agent_token},
	        {"skills", agent_skills}, {"state", agent_state},   {"list", agent_list},
	        {"show", agent_show},     {"remove", agent_remove}, {"import", agent_import},
	        {"revoke", agent_revoke},
	};
	if (argc < 2)
		return omr_ctl_usage_error("agent: give a command: add, update, skills, state, "
		                           "token, revoke, list, show, remove, import");
	for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
		if (strcmp(argv[1], verbs[i].verb) == 0)
			return verbs[i].run(ctl, argc, argv);
	return omr_ctl_usage_error("agent: unknown command '%s' (see --help)", argv[1]);
}
