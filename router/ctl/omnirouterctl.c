/* omnirouterctl - site administration: agents, roster import, routing
 * explanations, ending conversations. Talks to the same Redis as the
 * daemons (from the same configuration file) and changes routing state only
 * through the Functions library, so a change takes effect on the next
 * routing decision of every instance, without a restart.
 *
 * This file: the command line, the Redis connection and the Functions calls
 * every command shares (ctl.h). The commands live in ctl_agent.c,
 * ctl_import.c, ctl_explain.c and ctl_conv.c; the pure parsers in
 * ctl_spec.c and ctl_csv.c. Single-threaded. */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <hiredis/hiredis.h>

#include "ctl.h"
#include "ctl_spec.h"
#include "omnirouter/config.h"
#include "omnirouter/util.h"
#include "store.h"

static void usage(FILE *f)
{
	fprintf(f,
	        "usage: omnirouterctl [-c FILE] [--tenant T] [--json] COMMAND\n"
	        "  agent add --id ID --name NAME --languages es:10,en:6 [--skills billing:7,...]\n"
	        "            [--capacity chat:3,email:5,voice:1 | --capacity N] [--tenants a,b]\n"
	        "            [--token TOKEN] [--supervises AGENT,...]\n"
	        "        create or replace an agent; prints the agent's new token\n"
	        "  agent update --id ID [--name N] [--languages L] [--skills S] [--capacity C]\n"
	        "            [--tenants T] [--supervises A,B]\n"
	        "                                change the given fields, keeping the token;\n"
	        "                                --supervises \"\" supervises nobody\n"
	        "  agent skills --id ID [--set S] [--add S] [--remove X,Y]\n"
	        "                                replace, add or remove skills\n"
	        "  agent state --id ID available|busy|break|offline|away [--reason TEXT]\n"
	        "  agent token --id ID           issue a new token (the old one stops working)\n"
	        "  agent revoke --id ID          take the token away and log the desktop out\n"
	        "  token issue ID | token revoke ID   the same two, by their usual names\n"
	        "  agent list                    all agents with languages, skills, load, "
	        "presence\n"
	        "  agent show ID                 one agent\n"
	        "  agent remove ID               delete an agent with no open conversations\n"
	        "  agent import FILE.csv [--dry-run]\n"
	        "        create or update agents from a roster (header id,name,languages\n"
	        "        [,skills][,capacity][,tenants][,supervises]; items in a cell\n"
	        "        separated by |);\n"
	        "        prints id,token for each new agent\n"
	        "  queue status [QUEUE]          what waits in each queue: how many, since when,\n"
	        "                                the oldest; with QUEUE, its waiting "
	        "conversations\n"
	        "                                oldest first (--tenant T: that tenant's only)\n"
	        "  explain CONVERSATION          why a conversation went where it went\n"
	        "  conversation close CONVERSATION [--reason TEXT]\n"
	        "        end a conversation in any state: the customer and its agent are\n"
	        "        told (reason admin), the agent gets no wrap-up; TEXT goes to the agent\n"
	        "A language without :N has proficiency 10; levels are 1-10; --capacity N means\n"
	        "chat:N. Options: -c FILE (default /etc/omnirouter/omnirouter.yaml); --tenant T:\n"
	        "tenant of new agents given no --tenants (default routing.default_tenant), and\n"
	        "the tenant `agent list` shows; --json: machine-readable output.\n"
	        "Exit status: 0 ok, 1 runtime error (Redis, not found, refused), 2 usage.\n");
}

__attribute__((format(printf, 2, 0))) static int vreport(int rc, const char *fmt, va_list ap)
{
	char msg[1024];
	vsnprintf(msg, sizeof(msg), fmt, ap);
	fprintf(stderr, "omnirouterctl: %s\n", msg);
	return rc;
}

int omr_ctl_usage_error(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int rc = vreport(OMR_CTL_USAGE, fmt, ap);
	va_end(ap);
	return rc;
}

int omr_ctl_error(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int rc = vreport(OMR_CTL_FAIL, fmt, ap);
	va_end(ap);
	return rc;
}

int omr_ctl_check_options(const omr_ctl_t *ctl, const char *command, const char *verb,
                          unsigned allowed)
{
	const struct {
		const char *name;
		bool given;
		unsigned bit;
	} o[] = {
	        {"id", ctl->id != NULL, F_ID},
	        {"name", ctl->name != NULL, F_NAME},
	        {"languages", ctl->languages != NULL, F_LANGUAGES},
	        {"skills", ctl->skills != NULL, F_SKILLS},
	        {"capacity", ctl->capacity != NULL, F_CAPACITY},
	        {"tenants", ctl->tenants != NULL, F_TENANTS},
	        {"token", ctl->token != NULL, F_TOKEN},
	        {"reason", ctl->reason != NULL, F_REASON},
	        {"set", ctl->skills_set != NULL, F_SET},
	        {"add", ctl->skills_add != NULL, F_ADD},
	        {"remove", ctl->skills_remove != NULL, F_REMOVE},
	        {"dry-run", ctl->dry_run, F_DRY_RUN},
	        {"supervises", ctl->supervises != NULL, F_SUPERVISES},
	        {"tenant", ctl->tenant_given, F_TENANT},
	};
	for (size_t i = 0; i < sizeof(o) / sizeof(o[0]); i++)
		if (o[i].given && !(allowed & o[i].bit))
			return omr_ctl_usage_error("--%s does not apply to %s %s", o[i].name,
			                           command, verb);
	return 0;
}

void omr_ctl_json_array(cJSON *obj, const char *key)
{
	cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
	if (cJSON_IsObject(v) && !v->child)
		cJSON_ReplaceItemInObjectCaseSensitive(obj, key, cJSON_CreateArray());
}

void omr_ctl_print_json(const cJSON *j)
{
	char *s = cJSON_PrintUnformatted(j);
	if (s)
		printf("%s\n", s);
	free(s);
}

/* One command on a fresh connection, before any Function is called. */
static int setup_command(redisContext *c, const char *what, int argc, const char **argv,
                         const size_t *lens)
{
	redisReply *r = redisCommandArgv(c, argc, argv, lens);
	int rc = 0;
	if (!r || r->type == REDIS_REPLY_ERROR)
		rc = omr_ctl_error("redis: %s: %s", what, r ? r->str : c->errstr);
	freeReplyObject(r);
	return rc;
}

static int connect_redis(omr_ctl_t *ctl)
{
	const omr_config_t *cfg = ctl->cfg;
	struct timeval tv = {5, 0};
	redisContext *c = redisConnectWithTimeout(cfg->redis_host, (int)cfg->redis_port, tv);
	if (!c || c->err) {
		omr_ctl_error("cannot connect to redis %s:%lld: %s", cfg->redis_host,
		              (long long)cfg->redis_port, c ? c->errstr : "out of memory");
		redisFree(c);
		return OMR_CTL_FAIL;
	}
	redisSetTimeout(c, tv);
	char db[24];
	snprintf(db, sizeof(db), "%lld", (long long)cfg->redis_db);
	/* AUTH USER PASSWORD for an ACL user, AUTH PASSWORD for the default one, as the
	 * daemon does (router/store.c). */
	const char *user_auth[] = {"AUTH", cfg->redis_username, cfg->redis_password};
	const char *auth[] = {"AUTH", cfg->redis_password};
	bool acl_user = cfg->redis_username[0] != '\0';
	const char *select[] = {"SELECT", db};
	/* The daemons load the same library on every connect; loading it here
	 * too lets the tool work before any daemon has run. */
	const char *load[] = {"FUNCTION", "LOAD", "REPLACE", omr_functions_lua};
	size_t load_lens[] = {8, 4, 7, omr_functions_lua_len};
	if ((acl_user && setup_command(c, "AUTH", 3, user_auth, NULL) != 0) ||
	    (!acl_user && cfg->redis_password[0] && setup_command(c, "AUTH", 2, auth, NULL) != 0) ||
	    setup_command(c, "SELECT", 2, select, NULL) != 0 ||
	    setup_command(c, "cannot load the functions library", 4, load, load_lens) != 0) {
		redisFree(c);
		return OMR_CTL_FAIL;
	}
	ctl->redis = c;
	return OMR_CTL_OK;
}

/* Function errors are "CODE message"; a refused argument is a usage error. */
static int report_refusal(const char *what, const char *err)
{
	static const char *const usage_codes[] = {"BADARG", "BADJSON", "BADREQ", "INVALID"};
	size_t n = strcspn(err, " ");
	bool coded = n > 0 && err[n] == ' ';
	for (size_t i = 0; coded && i < n; i++)
		coded = (err[i] >= 'A' && err[i] <= 'Z') || err[i] == '_';
	if (!coded || strncmp(err, "ERR", n) == 0 || strncmp(err, "WRONGTYPE", n) == 0)
		return omr_ctl_error("%s: %s", what, err);
	int rc = OMR_CTL_FAIL;
	for (size_t i = 0; i < sizeof(usage_codes) / sizeof(usage_codes[0]); i++)
		if (strlen(usage_codes[i]) == n && strncmp(err, usage_codes[i], n) == 0)
			rc = OMR_CTL_USAGE;
	fprintf(stderr, "omnirouterctl: %s: %s (%.*s)\n", what, err + n + 1, (int)n, err);
	return rc;
}

int omr_ctl_connect(omr_ctl_t *ctl)
{
	return ctl->redis ? OMR_CTL_OK : connect_redis(ctl);
}

int omr_ctl_fcall(omr_ctl_t *ctl, const char *fn, const char *what, int nargs, const char **args,
                  redisReply **reply)
{
	const char *argv[16] = {"FCALL", fn, "1", ctl->prefix};
	*reply = NULL;
	if (nargs < 0 || nargs > 12)
		return omr_ctl_error("internal: %d arguments to %s", nargs, fn);
	if (omr_ctl_connect(ctl) != OMR_CTL_OK)
		return OMR_CTL_FAIL;
	for (int i = 0; i < nargs; i++)
		argv[4 + i] = args[i];
	redisReply *r = redisCommandArgv(ctl->redis, 4 + nargs, argv, NULL);
	if (!r)
		return omr_ctl_error("redis: %s: %s", fn, ctl->redis->errstr);
	if (r->type == REDIS_REPLY_ERROR) {
		int rc = report_refusal(what, r->str);
		freeReplyObject(r);
		return rc;
	}
	*reply = r;
	return OMR_CTL_OK;
}

int omr_ctl_fcall_json(omr_ctl_t *ctl, const char *fn, const char *what, int nargs,
                       const char **args, cJSON **out)
{
	redisReply *r = NULL;
	*out = NULL;
	int rc = omr_ctl_fcall(ctl, fn, what, nargs, args, &r);
	if (rc != OMR_CTL_OK)
		return rc;
	if (r->type == REDIS_REPLY_STRING)
		*out = cJSON_ParseWithLength(r->str, r->len);
	freeReplyObject(r);
	if (!*out)
		return omr_ctl_error("%s: %s did not answer a JSON string", what, fn);
	return OMR_CTL_OK;
}

int omr_ctl_upsert(omr_ctl_t *ctl, const char *id, const cJSON *agent, const char **result)
{
	char what[160];
	snprintf(what, sizeof(what), "agent %s", id);
	char *json = cJSON_PrintUnformatted(agent);
	if (!json)
		return omr_ctl_error("out of memory");
	const char *args[] = {id, json};
	redisReply *r = NULL;
	int rc = omr_ctl_fcall(ctl, "omr_agent_upsert", what, 2, args, &r);
	free(json);
	if (rc != OMR_CTL_OK)
		return rc;
	if (r->type == REDIS_REPLY_STRING && strcmp(r->str, "created") == 0)
		*result = "created";
	else if (r->type == REDIS_REPLY_STRING && strcmp(r->str, "updated") == 0)
		*result = "updated";
	else
		rc = omr_ctl_error("%s: unexpected answer from omr_agent_upsert", what);
	freeReplyObject(r);
	return rc;
}

enum {
	OPT_TENANT = 256,
	OPT_ID,
	OPT_NAME,
	OPT_LANGUAGES,
	OPT_SKILLS,
	OPT_CAPACITY,
	OPT_TENANTS,
	OPT_TOKEN,
	OPT_REASON,
	OPT_SET,
	OPT_ADD,
	OPT_REMOVE,
	OPT_SUPERVISES,
	OPT_DRY_RUN,
	OPT_JSON,
};

/* Stores a string option; an option given twice is a usage error (a
 * script that passes --id twice has a bug). */
static int set_once(const char **slot, const char *name, const char *value)
{
	if (*slot)
		return omr_ctl_usage_error("--%s given twice", name);
	*slot = value;
	return 0;
}

static int parse_options(omr_ctl_t *ctl, const char **config, const char **tenant, int argc,
                         char **argv)
{
	static const struct option lo[] = {
	        {"config", required_argument, NULL, 'c'},
	        {"tenant", required_argument, NULL, OPT_TENANT},
	        {"id", required_argument, NULL, OPT_ID},
	        {"name", required_argument, NULL, OPT_NAME},
	        {"languages", required_argument, NULL, OPT_LANGUAGES},
	        {"skills", required_argument, NULL, OPT_SKILLS},
	        {"capacity", required_argument, NULL, OPT_CAPACITY},
	        {"tenants", required_argument, NULL, OPT_TENANTS},
	        {"token", required_argument, NULL, OPT_TOKEN},
	        {"reason", required_argument, NULL, OPT_REASON},
	        {"set", required_argument, NULL, OPT_SET},
	        {"add", required_argument, NULL, OPT_ADD},
	        {"remove", required_argument, NULL, OPT_REMOVE},
	        {"supervises", required_argument, NULL, OPT_SUPERVISES},
	        {"dry-run", no_argument, NULL, OPT_DRY_RUN},
	        {"json", no_argument, NULL, OPT_JSON},
	        {"help", no_argument, NULL, 'h'},
	        {NULL, 0, NULL, 0},
	};
	/* Where each string option goes: lo[1 + k] is stored in slots[k]. */
	const char **slots[] = {
	        tenant,           &ctl->id,         &ctl->name,       &ctl->languages,
	        &ctl->skills,     &ctl->capacity,   &ctl->tenants,    &ctl->token,
	        &ctl->reason,     &ctl->skills_set, &ctl->skills_add, &ctl->skills_remove,
	        &ctl->supervises,
	};
	_Static_assert(sizeof(slots) / sizeof(slots[0]) == OPT_SUPERVISES - OPT_TENANT + 1,
	               "one slot per string option");
	int ch, rc = 0;
	opterr = 0;
	/* glibc permutes: options may come before or after the command words
	 * ("--json agent list", "agent add --id x"); the words end up last. */
	while (rc == 0 && (ch = getopt_long(argc, argv, "c:h", lo, NULL)) != -1) {
		if (ch >= OPT_TENANT && ch <= OPT_SUPERVISES) {
			rc = set_once(slots[ch - OPT_TENANT], lo[1 + ch - OPT_TENANT].name, optarg);
			continue;
		}
		switch (ch) {
		case 'c':
			*config = optarg;
			break;
		case OPT_DRY_RUN:
			ctl->dry_run = true;
			break;
		case OPT_JSON:
			ctl->json = true;
			break;
		case 'h':
			usage(stdout);
			return -1;
		default:
			if (optopt == 'c' || (optopt >= OPT_TENANT && optopt <= OPT_SUPERVISES))
				rc = omr_ctl_usage_error("%s needs a value", argv[optind - 1]);
			else if (optopt >= OPT_TENANT)
				rc = omr_ctl_usage_error("%s takes no value", argv[optind - 1]);
			else if (optopt)
				rc = omr_ctl_usage_error("unknown option -%c (see --help)", optopt);
			else
				rc = omr_ctl_usage_error("unknown option %s (see --help)",
				                         argv[optind - 1]);
		}
	}
	return rc;
}

int main(int argc, char **argv)
{
	omr_ctl_t ctl = {0};
	const char *config = "/etc/omnirouter/omnirouter.yaml", *tenant = NULL;
	int rc = parse_options(&ctl, &config, &tenant, argc, argv);
	if (rc != 0)
		return rc < 0 ? OMR_CTL_OK : rc;
	char **pos = argv + optind;
	int npos = argc - optind;
	/* `token issue ID` and `token revoke ID` are `agent token ID` and
	 * `agent revoke ID` under the names a site administrator looks for. */
	char *alias[4];
	if (npos >= 1 && strcmp(pos[0], "token") == 0) {
		if (npos != 3 || (strcmp(pos[1], "issue") != 0 && strcmp(pos[1], "revoke") != 0))
			return omr_ctl_usage_error("usage: token issue ID | token revoke ID");
		alias[0] = "agent";
		alias[1] = strcmp(pos[1], "issue") == 0 ? "token" : "revoke";
		alias[2] = pos[2];
		alias[3] = NULL;
		pos = alias;
	}
	if (npos < 1)
		return omr_ctl_usage_error(
		        "give a command: agent, token, queue, explain, conversation (see --help)");
	if (strcmp(pos[0], "agent") != 0 && strcmp(pos[0], "explain") != 0 &&
	    strcmp(pos[0], "conversation") != 0 && strcmp(pos[0], "queue") != 0)
		return omr_ctl_usage_error("unknown command '%s': agent, token, queue, explain, "
		                           "conversation (see --help)",
		                           pos[0]);
	if (tenant && !omr_id_is_valid(tenant, OMR_CTL_TENANT_MAX))
		return omr_ctl_usage_error("--tenant: ids are 1-64 of A-Z a-z 0-9 . _ : @ -");
	char err[512];
	omr_config_t *cfg = NULL;
	if (omr_config_load(config, &cfg, err, sizeof(err)) != 0)
		return omr_ctl_error("%s", err);
	ctl.cfg = cfg;
	ctl.default_tenant = tenant ? tenant : cfg->routing_tenant;
	ctl.tenant_given = tenant != NULL;
	/* Every routing key of a site lives under one hash tag: the routing
	 * group (ROUTING_SPEC.md, "Keys and groups"). */
	const char *group = cfg->routing_group;
	snprintf(ctl.prefix, sizeof(ctl.prefix), "omr:{%s}", group);
	if (strcmp(pos[0], "agent") == 0)
		rc = omr_ctl_agent(&ctl, npos, pos);
	else if (strcmp(pos[0], "conversation") == 0)
		rc = omr_ctl_conversation(&ctl, npos, pos);
	else if (strcmp(pos[0], "queue") == 0)
		rc = omr_ctl_queue(&ctl, npos, pos);
	else
		rc = omr_ctl_explain(&ctl, npos, pos);
	redisFree(ctl.redis);
	omr_config_destroy(&cfg);
	if ((fflush(stdout) != 0 || ferror(stdout)) && rc == OMR_CTL_OK)
		rc = omr_ctl_error(
		        "cannot write to standard output (%s): what this command printed "
		        "is lost, a new agent's token too (`omnirouterctl token issue ID` "
		        "gives it a new one)",
		        strerror(errno ? errno : EIO));
	return rc;
}
