/* ctl.h - what the files of omnirouterctl share: the parsed command line,
 * the Redis connection and the Functions calls. Private to router/ctl/.
 * omnirouterctl is single-threaded and short-lived: each command makes a few
 * synchronous hiredis calls and exits. */
#ifndef OMR_CTL_H
#define OMR_CTL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include <cjson/cJSON.h>
#include <hiredis/hiredis.h>

#include "omnirouter/config.h"

/* Exit statuses. */
enum {
	OMR_CTL_OK = 0,
	OMR_CTL_FAIL = 1,  /* runtime: Redis, not found, refused, bad roster rows */
	OMR_CTL_USAGE = 2, /* usage or validation of the command line */
};

typedef struct omr_ctl {
	const omr_config_t *cfg;
	redisContext *redis;        /* connected on first use (omr_ctl_fcall) */
	char prefix[96];            /* "omr:{GROUP}": KEYS[1] of every call */
	const char *default_tenant; /* --tenant, else routing.default_tenant */
	bool tenant_given;          /* --tenant was given (list filters by it) */
	bool json;
	bool dry_run;
	/* Option values; NULL when not given. */
	const char *id, *name, *languages, *skills, *capacity, *tenants, *token, *reason;
	const char *supervises; /* "" clears */
	const char *skills_set, *skills_add, *skills_remove;
} omr_ctl_t;

/* The options a command word takes (omr_ctl_check_options). */
enum {
	F_ID = 1 << 0,
	F_NAME = 1 << 1,
	F_LANGUAGES = 1 << 2,
	F_SKILLS = 1 << 3,
	F_CAPACITY = 1 << 4,
	F_TENANTS = 1 << 5,
	F_TOKEN = 1 << 6,
	F_REASON = 1 << 7,
	F_SET = 1 << 8,
	F_ADD = 1 << 9,
	F_REMOVE = 1 << 10,
	F_DRY_RUN = 1 << 11,
	F_SUPERVISES = 1 << 12,
	F_TENANT = 1 << 13, /* --tenant: new agents' tenant (add, import), the tenant listed */
	F_FIELDS = F_NAME | F_LANGUAGES | F_SKILLS | F_CAPACITY | F_TENANTS | F_SUPERVISES,
};

/* Prints "omnirouterctl: MESSAGE" on stderr and returns OMR_CTL_USAGE
 * (omr_ctl_usage_error) or OMR_CTL_FAIL (omr_ctl_error). */
int omr_ctl_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int omr_ctl_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* OMR_CTL_OK when every option given is in `allowed` (F_ bits), else a
 * usage error naming the first one that is not ("--name does not apply to
 * COMMAND VERB"). */
int omr_ctl_check_options(const omr_ctl_t *ctl, const char *command, const char *verb,
                          unsigned allowed);

/* Connects to Redis (AUTH, SELECT, the functions library) unless connected. OMR_CTL_OK, or
 * OMR_CTL_FAIL after printing why. */
int omr_ctl_connect(omr_ctl_t *ctl);

/* FCALL fn 1 PREFIX args... (connecting first if needed). Returns OMR_CTL_OK
 * and *reply (never an error reply; the caller frees it), or prints one line
 * naming `what` (e.g. "agent ana") and returns OMR_CTL_FAIL, or OMR_CTL_USAGE
 * when the Function refused an argument. */
int omr_ctl_fcall(omr_ctl_t *ctl, const char *fn, const char *what, int nargs, const char **args,
                  redisReply **reply);

/* omr_ctl_fcall for a Function that answers a JSON string; *out is the
 * parsed value (the caller deletes it). */
int omr_ctl_fcall_json(omr_ctl_t *ctl, const char *fn, const char *what, int nargs,
                       const char **args, cJSON **out);

/* FCALL omr_agent_upsert PREFIX id JSON(agent); *result is "created" or
 * "updated" (static). */
int omr_ctl_upsert(omr_ctl_t *ctl, const char *id, const cJSON *agent, const char **result);

/* Lua's cjson encodes an empty array as {}: makes obj[key] [] again when it
 * is an empty object, so --json output keeps the documented types. */
void omr_ctl_json_array(cJSON *obj, const char *key);

/* Prints j unformatted plus a newline on stdout. */
void omr_ctl_print_json(const cJSON *j);

/* Commands. argv[0] is the command word ("agent", "explain"). */
int omr_ctl_agent(omr_ctl_t *ctl, int argc, char **argv);
int omr_ctl_import(omr_ctl_t *ctl, const char *path);
int omr_ctl_explain(omr_ctl_t *ctl, int argc, char **argv);
int omr_ctl_conversation(omr_ctl_t *ctl, int argc, char **argv);
int omr_ctl_queue(omr_ctl_t *ctl, int argc, char **argv);

/* Writes "k:v,k:v" of a JSON object of numbers, highest value first, then by
 * key, or "-" when empty, to out: every member, however many. */
void omr_ctl_format_levels(const cJSON *obj, FILE *out);

/* ms since the epoch as "2025-05-01T10:00:00Z"; "-" for 0 or less. */
void omr_ctl_format_time(double ms, char *out, size_t outsize);

#endif
