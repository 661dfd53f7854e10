/* ctl_import.c - `omnirouterctl agent import FILE.csv [--dry-run]`: a
 * roster of agents, created or updated through omr_agent_upsert.
 *
 * All or nothing for bad input: every row is checked first (ctl_csv.c,
 * ctl_spec.c) and each bad one reported as FILE:LINE: reason; one bad row
 * and nothing is imported. Then new agents get fresh tokens, printed on
 * stdout as "id,token" lines as each is created (so a Redis failure half way
 * loses no token); existing agents are updated and keep theirs. A Redis
 * failure half way leaves the rows before it imported, and says so.
 * Single-threaded. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "ctl.h"
#include "ctl_csv.h"
#include "ctl_spec.h"
#include "hmap.h"
#include "omnirouter/envelope.h"
#include "omnirouter/util.h"

#define ROSTER_MAX_BYTES (16u << 20)
#define ROSTER_MAX_ROWS 100000u

typedef struct row {
	size_t line;
	char *id;
	cJSON *agent; /* upsert JSON without token_sha */
} row_t;

typedef struct roster {
	row_t *rows;
	size_t n, cap;
	size_t bad;
	bool no_header; /* the header row is missing or wrong */
} roster_t;

static void roster_cleanup(roster_t *r)
{
	for (size_t i = 0; i < r->n; i++) {
		free(r->rows[i].id);
		cJSON_Delete(r->rows[i].agent);
	}
	free(r->rows);
	memset(r, 0, sizeof(*r));
}

/* Reads the whole file; the roster is small and the parser wants a buffer. */
static int read_file(const char *path, char **out, size_t *len)
{
	FILE *f = fopen(path, "rb");
	struct stat st;
	if (!f)
		return omr_ctl_error("%s: cannot open: %s", path, strerror(errno));
	if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
		fclose(f);
		return omr_ctl_error("%s: not a regular file", path);
	}
	if ((unsigned long long)st.st_size > ROSTER_MAX_BYTES) {
		fclose(f);
		return omr_ctl_error("%s: larger than %u MiB", path, ROSTER_MAX_BYTES >> 20);
	}
	char *buf = malloc((size_t)st.st_size + 1);
	size_t n = buf ? fread(buf, 1, (size_t)st.st_size, f) : 0;
	bool failed = !buf || ferror(f);
	fclose(f);
	if (failed) {
		free(buf);
		return omr_ctl_error("%s: cannot read", path);
	}
	buf[n] = '\0';
	*out = buf;
	*len = n;
	return 0;
}

static void bad_row(roster_t *r, const char *path, size_t line, const char *why)
{
	fprintf(stderr, "%s:%zu: %s\n", path, line, why);
	r->bad++;
}

static int keep_row(roster_t *r, size_t line, const char *id, cJSON *agent)
{
	if (r->n == r->cap) {
		size_t ncap = r->cap ? r->cap * 2 : 64;
		row_t *n = realloc(r->rows, ncap * sizeof(*n));
		if (!n)
			return -ENOMEM;
		r->rows = n;
		r->cap = ncap;
	}
	char *copy = omr_strdup(id);
	if (!copy)
		return -ENOMEM;
	r->rows[r->n++] = (row_t){.line = line, .id = copy, .agent = agent};
	return 0;
}

/* The reader's reason, with what a spreadsheet user does about it when the
 * cause is the file's format rather than a row. */
static const char *with_hint(const char *cwhy, char *buf, size_t size)
{
	static const struct {
		const char *why, *hint;
	} hints[] = {
	        {"NUL byte",
	         "the file looks like UTF-16 (Excel's Unicode Text); save it as CSV UTF-8"},
	        {"carriage return without line feed", "its lines end in CR alone (Excel for Mac's "
	                                              "CSV (Macintosh)); save it as CSV UTF-8"},
	};
	for (size_t i = 0; i < sizeof(hints) / sizeof(hints[0]); i++)
		if (strcmp(cwhy, hints[i].why) == 0) {
			snprintf(buf, size, "%s: %s", cwhy, hints[i].hint);
			return buf;
		}
	return cwhy;
}

/* A row whose cells are all empty: how a spreadsheet writes a row that was
 * used once and cleared (",,,,"). Skipped like a blank line. */
static bool all_empty(const omr_csv_record_t *rec)
{
	for (size_t i = 0; i < rec->nfields; i++)
		if (omr_csv_field(rec, i)[0])
			return false;
	return true;
}

/* Parses and checks every row; reports each bad one. Returns 0 (r->bad may
 * be > 0) or -ENOMEM. */
static int parse_roster(const char *path, const char *buf, size_t len, roster_t *r)
{
	omr_csv_t csv;
	omr_csv_record_t rec;
	omr_roster_cols_t cols;
	omr_hmap_t *seen = omr_hmap_new();
	char why[320];
	const char *cwhy;
	size_t errline;
	bool have_header = false;
	int rc = seen ? 0 : -ENOMEM;
	omr_csv_init(&csv, buf, len);
	omr_csv_record_init(&rec);
	while (rc == 0 && (rc = omr_csv_next(&csv, &rec, &cwhy, &errline)) != 0) {
		if (rc == -ENOMEM)
			break;
		if (rc < 0) {
			bad_row(r, path, errline, with_hint(cwhy, why, sizeof(why)));
			rc = 0;
			if (!have_header) {
				r->no_header = true; /* without columns no row can be read */
				break;
			}
			continue;
		}
		rc = 0;
		if (all_empty(&rec))
			continue; /* (before the header too: a cleared first row) */
		if (!have_header) {
			have_header = true;
			if (omr_roster_header(&rec, &cols, why, sizeof(why)) != 0) {
				bad_row(r, path, rec.line, why);
				r->no_header = true;
				break;
			}
			continue;
		}
		if (r->n + r->bad >= ROSTER_MAX_ROWS) {
			snprintf(why, sizeof(why), "more than %u rows", ROSTER_MAX_ROWS);
			bad_row(r, path, rec.line, why);
			break;
		}
		const char *id;
		cJSON *agent = NULL;
		int v = omr_roster_row(&cols, &rec, &id, &agent, why, sizeof(why));
		if (v == -EINVAL) {
			bad_row(r, path, rec.line, why);
			continue;
		}
		if (v != 0) {
			rc = v;
			break;
		}
		uintptr_t first = (uintptr_t)omr_hmap_get(seen, id);
		if (first) {
			snprintf(why, sizeof(why), "id '%s' appears again (first on line %zu)", id,
			         (size_t)first);
			bad_row(r, path, rec.line, why);
			cJSON_Delete(agent);
			continue;
		}
		if (omr_hmap_put(seen, id, (void *)(uintptr_t)rec.line) != 0 ||
		    keep_row(r, rec.line, id, agent) != 0) {
			cJSON_Delete(agent);
			rc = -ENOMEM;
		}
	}
	if (rc == 0 && !have_header && r->bad == 0) {
		bad_row(r, path, 1,
		        "empty file: the header row id,name,languages[,skills]"
		        "[,capacity][,tenants][,supervises] is required");
		r->no_header = true;
	}
	omr_csv_record_cleanup(&rec);
	omr_hmap_destroy(&seen);
	return rc;
}

/* The ids of the agents that exist now. */
static int existing_agents(omr_ctl_t *ctl, omr_hmap_t *ids, cJSON **list)
{
	int rc = omr_ctl_fcall_json(ctl, "omr_agent_list", "agent import", 0, NULL, list);
	if (rc != 0)
		return rc;
	const cJSON *a;
	cJSON_ArrayForEach(a, *list)
	{
		const cJSON *id = cJSON_GetObjectItemCaseSensitive(a, "id");
		if (cJSON_IsString(id) && omr_hmap_put(ids, id->valuestring, (void *)a) != 0)
			return omr_ctl_error("out of memory");
	}
	return 0;
}

/* Adds a fresh token's hash to agent; the token goes to token. */
static int token_for(cJSON *agent, char token[OMR_ENV_ID_MAX + 1])
{
	char sha[65];
	if (omr_random_hex(token, OMR_ENV_ID_MAX + 1, 24) != 0)
		return omr_ctl_error("cannot read random bytes for a token");
	omr_sha256_hex(token, strlen(token), sha);
	cJSON_DeleteItemFromObjectCaseSensitive(agent, "token_sha");
	if (!cJSON_AddStringToObject(agent, "token_sha", sha))
		return omr_ctl_error("out of memory");
	return 0;
}

/* One row; *token is set (non-empty) when the agent got a new token. */
static int apply_row(omr_ctl_t *ctl, const row_t *row, bool exists, char token[OMR_ENV_ID_MAX + 1],
                     const char **result)
{
	token[0] = '\0';
	if (!exists && (omr_ctl_new_agent_defaults(row->agent, ctl->default_tenant) != 0 ||
	                token_for(row->agent, token) != 0))
		return OMR_CTL_FAIL;
	int rc = omr_ctl_upsert(ctl, row->id, row->agent, result);
	if (rc != 0 || !exists || strcmp(*result, "created") != 0)
		return rc;
	/* Removed between the listing and now: it was created without a token
	 * and with only the row's fields. Complete it as a new agent. */
	const char *again;
	if (omr_ctl_new_agent_defaults(row->agent, ctl->default_tenant) != 0 ||
	    token_for(row->agent, token) != 0)
		return OMR_CTL_FAIL;
	return omr_ctl_upsert(ctl, row->id, row->agent, &again);
}

static int apply_roster(omr_ctl_t *ctl, const char *path, const roster_t *r)
{
	omr_hmap_t *ids = omr_hmap_new();
	cJSON *list = NULL, *created = cJSON_CreateArray(), *updated = cJSON_CreateArray();
	char token[OMR_ENV_ID_MAX + 1];
	size_t done = 0;
	int rc = ids && created && updated ? existing_agents(ctl, ids, &list)
	                                   : omr_ctl_error("out of memory");
	for (; rc == 0 && done < r->n; done++) {
		const row_t *row = &r->rows[done];
		const char *result = NULL;
		rc = apply_row(ctl, row, omr_hmap_get(ids, row->id) != NULL, token, &result);
		if (rc != 0) {
			fprintf(stderr, "%s:%zu: not imported; the %zu rows before it were\n", path,
			        row->line, done);
			break;
		}
		if (token[0]) {
			cJSON *o = cJSON_CreateObject();
			cJSON_AddStringToObject(o, "id", row->id);
			cJSON_AddStringToObject(o, "token", token);
			cJSON_AddItemToArray(created, o);
			if (!ctl->json &&
			    (printf("%s,%s\n", row->id, token) < 0 || fflush(stdout) != 0)) {
				/* The token's only copy: stop here rather than lose more. */
				rc = omr_ctl_error(
				        "%s:%zu: cannot write the token of agent %s to "
				        "standard output (%s); it is lost: `omnirouterctl "
				        "token issue %s` gives the agent a new one; the rows "
				        "after it were not imported",
				        path, row->line, row->id, strerror(errno), row->id);
				done++;
				break;
			}
		} else {
			cJSON_AddItemToArray(updated, cJSON_CreateString(row->id));
		}
	}
	if (ctl->json && created && updated) {
		cJSON *o = cJSON_CreateObject();
		cJSON_AddItemReferenceToObject(o, "created", created);
		cJSON_AddItemReferenceToObject(o, "updated", updated);
		omr_ctl_print_json(o);
		cJSON_Delete(o);
	}
	if (rc == 0)
		fprintf(stderr, "%s: %d created, %d updated\n", path, cJSON_GetArraySize(created),
		        cJSON_GetArraySize(updated));
	cJSON_Delete(created);
	cJSON_Delete(updated);
	cJSON_Delete(list);
	omr_hmap_destroy(&ids);
	return rc;
}

int omr_ctl_import(omr_ctl_t *ctl, const char *path)
{
	char *buf = NULL;
	size_t len = 0;
	roster_t r = {0};
	int rc = read_file(path, &buf, &len);
	if (rc != 0)
		return rc;
	if (parse_roster(path, buf, len, &r) != 0) {
		rc = omr_ctl_error("out of memory");
	} else if (r.no_header) {
		rc = omr_ctl_error("%s: nothing imported", path);
	} else if (r.bad) {
		rc = omr_ctl_error("%s: %zu bad row%s; nothing imported", path, r.bad,
		                   r.bad == 1 ? "" : "s");
	} else if (ctl->dry_run) {
		if (ctl->json) {
			cJSON *o = cJSON_CreateObject();
			cJSON_AddStringToObject(o, "file", path);
			cJSON_AddNumberToObject(o, "rows", (double)r.n);
			cJSON_AddBoolToObject(o, "dry_run", true);
			omr_ctl_print_json(o);
			cJSON_Delete(o);
		} else {
			printf("%s: %zu rows valid; dry run, nothing imported\n", path, r.n);
		}
	} else {
		rc = apply_roster(ctl, path, &r);
	}
	roster_cleanup(&r);
	free(buf);
	return rc;
}
