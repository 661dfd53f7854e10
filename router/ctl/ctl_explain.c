/* ctl_explain.c - `omnirouterctl explain CONVERSATION`: the routing
 * engine's record of its last decision for a conversation (omr_explain),
 * as JSON or as a few aligned lines. Single-threaded. */
#include <stdio.h>
#include <string.h>

#include "ctl.h"
#include "omnirouter/envelope.h"
#include "omnirouter/util.h"

static const char *str_or(const cJSON *o, const char *key, const char *dflt)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
	return cJSON_IsString(v) && v->valuestring[0] ? v->valuestring : dflt;
}

/* Candidates in the order considered; a lower score wins (the engine's
 * sort key: load, then idle time, or skill for best_skill). */
static void print_candidates(const cJSON *list)
{
	const cJSON *c;
	size_t n = 0;
	cJSON_ArrayForEach(c, list)
	{
		const cJSON *score = cJSON_GetObjectItemCaseSensitive(c, "score");
		printf("%s  %s", n++ ? "\n            " : "candidates  ", str_or(c, "agent", "?"));
		if (cJSON_IsString(score)) /* all its digits (a JSON number would round) */
			printf("  score %s", score->valuestring);
		else if (cJSON_IsNumber(score))
			printf("  score %.15g", score->valuedouble);
		if (str_or(c, "language", NULL))
			printf("  language %s", str_or(c, "language", ""));
	}
	printf("%s\n", n ? "" : "candidates    none");
}

/* The customer has had no connection open since customer_left_ms (closed
 * the page, lost the network, or was on an instance that stopped). */
static void print_left(const cJSON *e)
{
	const cJSON *left = cJSON_GetObjectItemCaseSensitive(e, "customer_left_ms");
	char buf[64];
	if (!cJSON_IsNumber(left))
		return;
	omr_ctl_format_time(left->valuedouble, buf, sizeof(buf));
	printf("customer      left at %s (no connection open since)\n", buf);
}

/* The skills the queue asked for against the agent's: the engine writes
 * {"skill":{"required":N,"agent":M}} as "skills" (ROUTING_SPEC.md calls it
 * skills_matched {"skill":level}); both are read. */
static void print_skills(const cJSON *e)
{
	const cJSON *sk = cJSON_GetObjectItemCaseSensitive(e, "skills");
	const cJSON *it;
	size_t n = 0;
	if (!cJSON_IsObject(sk))
		sk = cJSON_GetObjectItemCaseSensitive(e, "skills_matched");
	printf("skills        ");
	cJSON_ArrayForEach(it, sk)
	{
		const cJSON *req = cJSON_GetObjectItemCaseSensitive(it, "required");
		const cJSON *has = cJSON_GetObjectItemCaseSensitive(it, "agent");
		printf("%s%s", n++ ? ", " : "", it->string ? it->string : "?");
		if (cJSON_IsNumber(it))
			printf(" %g", it->valuedouble);
		if (cJSON_IsNumber(has))
			printf(" %g", has->valuedouble);
		if (cJSON_IsNumber(req))
			printf(" (needs %g)", req->valuedouble);
	}
	printf("%s\n", n ? "" : "none required");
}

/* An agent that became free chose among these (the lowest score first). */
static void print_waiting(const cJSON *list)
{
	const cJSON *c;
	size_t n = 0;
	cJSON_ArrayForEach(c, list)
	{
		printf("%s  %s  score %s", n++ ? "\n            " : "waiting     ",
		       str_or(c, "conversation", "?"), str_or(c, "score", "?"));
	}
	if (n)
		printf("\n");
}

static void print_explain(const cJSON *e)
{
	char buf[64];
	const cJSON *step = cJSON_GetObjectItemCaseSensitive(e, "step");
	const cJSON *at = cJSON_GetObjectItemCaseSensitive(e, "at_ms");
	const cJSON *since = cJSON_GetObjectItemCaseSensitive(e, "waiting_since_ms");
	printf("conversation  %s", str_or(e, "conversation", "-"));
	if (str_or(e, "state", NULL))
		printf(" (%s)", str_or(e, "state", ""));
	printf("\nqueue         %s", str_or(e, "queue", "-"));
	if (cJSON_IsNumber(step))
		printf(", step %g", step->valuedouble);
	printf("\n");
	if (!cJSON_IsNumber(at)) {
		/* It waits: no decision yet, or waiting again after one (previous). */
		const cJSON *prev = cJSON_GetObjectItemCaseSensitive(e, "previous");
		omr_ctl_format_time(cJSON_IsNumber(since) ? since->valuedouble : 0, buf,
		                    sizeof(buf));
		if (strcmp(str_or(e, "state", ""), "closed") == 0)
			printf("agent         none: closed (%s) while it waited, since %s\n",
			       str_or(e, "close_reason", "-"), buf);
		else
			printf("agent         none: waiting since %s%s%s\n", buf,
			       str_or(e, "waiting_for", NULL) ? ", for agent " : "",
			       str_or(e, "waiting_for", ""));
		if (str_or(e, "trigger", NULL)) /* why it waits (again) */
			printf("trigger       %s\n", str_or(e, "trigger", ""));
		if (str_or(e, "language", NULL))
			printf("language      %s\n", str_or(e, "language", ""));
		print_left(e);
		if (cJSON_IsObject(prev)) {
			const cJSON *pat = cJSON_GetObjectItemCaseSensitive(prev, "at_ms");
			omr_ctl_format_time(cJSON_IsNumber(pat) ? pat->valuedouble : 0, buf,
			                    sizeof(buf));
			printf("previous      %s in queue %s at %s (%s)\n",
			       str_or(prev, "agent", "?"), str_or(prev, "queue", "-"), buf,
			       str_or(prev, "trigger", "-"));
		}
		return;
	}
	printf("strategy      %s\n", str_or(e, "strategy", "-"));
	printf("agent         %s\n", str_or(e, "agent", "none"));
	if (str_or(e, "trigger", NULL))
		printf("trigger       %s\n", str_or(e, "trigger", ""));
	printf("language      %s, matched %s\n", str_or(e, "language", "-"),
	       str_or(e, "language_matched", "-"));
	print_left(e);
	print_skills(e);
	print_candidates(cJSON_GetObjectItemCaseSensitive(e, "candidates"));
	print_waiting(cJSON_GetObjectItemCaseSensitive(e, "waiting"));
	omr_ctl_format_time(at->valuedouble, buf, sizeof(buf));
	printf("at            %s\n", buf);
}

int omr_ctl_explain(omr_ctl_t *ctl, int argc, char **argv)
{
	if (argc != 2)
		return omr_ctl_usage_error("usage: explain CONVERSATION [--json]");
	if (ctl->id || ctl->name || ctl->languages || ctl->skills || ctl->capacity ||
	    ctl->tenants || ctl->token || ctl->reason || ctl->skills_set || ctl->skills_add ||
	    ctl->skills_remove || ctl->dry_run || ctl->supervises || ctl->tenant_given)
		return omr_ctl_usage_error("explain takes only a conversation id and --json");
	const char *conv = argv[1];
	if (!omr_id_is_valid(conv, OMR_ENV_ID_MAX))
		return omr_ctl_usage_error("explain: conversation ids are 1-128 of "
		                           "A-Z a-z 0-9 . _ : @ -");
	if (omr_id_names_subkey(conv, OMR_ID_CONV)) /* C:ids is a key of C's */
		return omr_ctl_error("conversation %s: no such conversation", conv);
	char what[160];
	snprintf(what, sizeof(what), "conversation %s", conv);
	const char *args[] = {conv};
	cJSON *e = NULL;
	int rc = omr_ctl_fcall_json(ctl, "omr_explain", what, 1, args, &e);
	if (rc != 0)
		return rc;
	omr_ctl_json_array(e, "candidates");
	omr_ctl_json_array(e, "waiting");
	if (ctl->json)
		omr_ctl_print_json(e);
	else
		print_explain(e);
	cJSON_Delete(e);
	return 0;
}
