/* ctl_spec.h - the agent fields omnirouterctl accepts, parsed and checked
 * into the JSON omr_agent_upsert takes (ROUTING_SPEC.md, Functions API), from
 * command-line values or from roster CSV rows. No I/O; any thread.
 *
 * Every parser takes the item separator (',' on the command line, '|' inside
 * a CSV cell), trims spaces around items, returns 0 and a new cJSON in *out
 * (the caller deletes it), or -EINVAL with a one-line reason in why. */
#ifndef OMR_CTL_SPEC_H
#define OMR_CTL_SPEC_H

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

#include "ctl_csv.h"

#define OMR_CTL_LEVEL_MIN 1
#define OMR_CTL_LEVEL_MAX 10
#define OMR_CTL_CAPACITY_MAX 100 /* per channel */
#define OMR_CTL_TENANT_MAX 64u   /* as routing.default_tenant */
#define OMR_CTL_SKILL_MAX 64u
#define OMR_CTL_REASON_MAX 64u
#define OMR_CTL_NAME_MAX 256u

/* "es:10,en-US:6" -> {"es":10,"en":6}. Tags reduce to their primary subtag;
 * a tag without ":N" has proficiency 10. At least one language; a language
 * given twice (es, es-MX) is an error. */
int omr_ctl_parse_languages(const char *s, char sep, cJSON **out, char *why, size_t whylen);

/* "billing:7,refunds:3" -> {"billing":7,"refunds":3}. Ids are 1-64 of
 * [A-Za-z0-9._-]; the level is required. "" -> {} (no skills). */
int omr_ctl_parse_skills(const char *s, char sep, cJSON **out, char *why, size_t whylen);

/* 1-64 of [A-Za-z0-9._-]. */
bool omr_ctl_skill_id_is_valid(const char *s);

/* "billing,refunds" -> ["billing","refunds"] (for `agent skills --remove`);
 * at least one. */
int omr_ctl_parse_skill_ids(const char *s, char sep, cJSON **out, char *why, size_t whylen);

/* "chat:3,email:5" -> {"chat":3,"email":5,"voice":0}; "2" -> chat 2. Every
 * channel is present in the result (unnamed ones 0) so the upsert sets the
 * whole capacity; 0..100 each, at least one above 0. */
int omr_ctl_parse_capacity(const char *s, char sep, cJSON **out, char *why, size_t whylen);

/* "acme,globex" -> ["acme","globex"]: 1-64 of [A-Za-z0-9._:@-] each, no
 * duplicates, at least one. */
int omr_ctl_parse_tenants(const char *s, char sep, cJSON **out, char *why, size_t whylen);

/* "ana,bob" -> ["ana","bob"]: the agents an agent supervises, ids of 1-128
 * of [A-Za-z0-9._:@-], no duplicates, at most OMR_CTL_SUPERVISES_MAX (what
 * omr_agent_upsert takes); "" -> [] (supervises nobody). */
#define OMR_CTL_SUPERVISES_MAX 500
int omr_ctl_parse_supervises(const char *s, char sep, cJSON **out, char *why, size_t whylen);

/* list (a cJSON array; NULL is empty) holds the string s. */
bool omr_ctl_list_has(const cJSON *list, const char *s);

/* A display name: 1-256 bytes of UTF-8 without control characters. */
int omr_ctl_check_name(const char *s, char *why, size_t whylen);

/* Free text: 0-64 bytes of UTF-8 without control characters. */
int omr_ctl_check_reason(const char *s, char *why, size_t whylen);

/* Roster CSV: the header row names the columns, in any order. */
enum omr_roster_col {
	OMR_ROSTER_ID,
	OMR_ROSTER_NAME,
	OMR_ROSTER_LANGUAGES,
	OMR_ROSTER_SKILLS,
	OMR_ROSTER_CAPACITY,
	OMR_ROSTER_TENANTS,
	OMR_ROSTER_SUPERVISES,
	OMR_ROSTER_NCOLS
};

typedef struct omr_roster_cols {
	int at[OMR_ROSTER_NCOLS]; /* field index of each column, -1 when absent */
	size_t nfields;           /* fields in the header (every row must match) */
} omr_roster_cols_t;

/* Reads the header: names are case-insensitive and may be padded with
 * spaces; id, name and languages are required; unknown or repeated names
 * are errors. */
int omr_roster_header(const omr_csv_record_t *rec, omr_roster_cols_t *cols, char *why,
                      size_t whylen);

/* Checks one row and builds the upsert JSON (no token_sha). An empty cell of
 * an optional column is left out of the JSON: a new agent gets the default,
 * an existing one keeps its value. *id points into rec. */
int omr_roster_row(const omr_roster_cols_t *cols, const omr_csv_record_t *rec, const char **id,
                   cJSON **out, char *why, size_t whylen);

/* Fills the fields a new agent needs and the JSON lacks: no skills, capacity
 * chat 1, tenants [default_tenant], supervises nobody. -ENOMEM on allocation
 * failure. */
int omr_ctl_new_agent_defaults(cJSON *agent, const char *default_tenant);

#endif
