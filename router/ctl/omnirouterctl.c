/* omnirouterctl - site administration: agents. Talks to the same Redis as
 * the daemons (from the same configuration file) and changes routing state
 * only through the Functions library, so a change takes effect on the next
 * routing decision of every instance, without a restart. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <hiredis/hiredis.h>

#include "omnirouter/channel.h"
#include "omnirouter/config.h"
#include "omnirouter/envelope.h"
#include "omnirouter/util.h"
#include "store.h"

typedef struct opts {
	const char *config, *tenant, *id, *name, *languages, *token;
	int64_t capacity;
	bool json;
} opts_t;

static void usage(FILE *f)
{
	fprintf(f,
	        "usage: omnirouterctl [-c FILE] [--tenant T] [--json] COMMAND\n"
	        "  agent add --id ID --name NAME --languages en,es --capacity N [--token TOKEN]\n"
	        "        create or replace an agent; prints the agent's new token\n"
	        "  agent update --id ID [--name NAME] [--languages L] [--capacity N]\n"
	        "        change an agent, keeping its token\n"
	        "  agent token --id ID      issue a new token (the old one stops working)\n"
	        "  agent list               all agents with presence and load\n"
	        "  agent show ID            one agent\n"
	        "  agent remove ID          delete an agent with no open conversations\n"
	        "options: -c FILE (default /etc/omnirouter/omnirouter.yaml), --tenant T\n"
	        "(default routing.default_tenant), --json (machine-readable output)\n");
}

static redisContext *connect_redis(const omr_config_t *cfg)
{
	struct timeval tv = {5, 0};
	redisContext *c = redisConnectWithTimeout(cfg->redis_host, (int)cfg->redis_port, tv);
	if (!c || c->err) {
		fprintf(stderr, "omnirouterctl: cannot connect to redis %s:%lld: %s\n",
		        cfg->redis_host, (long long)cfg->redis_port,
		        c ? c->errstr : "out of memory");
		redisFree(c);
		return NULL;
	}
	redisSetTimeout(c, tv);
	redisReply *r = NULL;
	if (cfg->redis_password[0])
		r = redisCommand(c, "AUTH %s", cfg->redis_password);
	freeReplyObject(r);
	r = redisCommand(c, "SELECT %lld", (long long)cfg->redis_db);
	freeReplyObject(r);
	const char *argv[] = {"FUNCTION", "LOAD", "REPLACE", omr_functions_lua};
	size_t lens[] = {8, 4, 7, omr_functions_lua_len};
	r = redisCommandArgv(c, 4, argv, lens);
	if (!r || r->type == REDIS_REPLY_ERROR) {
		fprintf(stderr, "omnirouterctl: cannot load functions: %s\n",
		        r ? r->str : c->errstr);
		freeReplyObject(r);
		redisFree(c);
		return NULL;
	}
	freeReplyObject(r);
	return c;
}

/* Normalizes "en, es-MX" to "en,es"; returns 0 or -EINVAL. */
static int normalize_languages(const char *in, char *out, size_t outsize)
{
	char buf[512];
	snprintf(buf, sizeof(buf), "%s", in);
	size_t n = 0;
	out[0] = '\0';
	char *save = NULL;
	for (char *tok = strtok_r(buf, ", ", &save); tok; tok = strtok_r(NULL, ", ", &save)) {
		char lang[16];
		if (omr_language_primary(tok, lang, sizeof(lang)) != 0)
			return -EINVAL;
		int w = snprintf(out + n, outsize - n, "%s%s", n ? "," : "", lang);
		if (w < 0 || (size_t)w >= outsize - n)
			return -EINVAL;
		n += (size_t)w;
	}
	return n ? 0 : -EINVAL;
}

static redisReply *fcall(redisContext *c, const char *fn, const char *tenant, int nargs,
                         const char **args)
{
	char prefix[OMR_ENV_ID_MAX + 8];
	snprintf(prefix, sizeof(prefix), "omr:{%s}", tenant);
	const char *argv[12] = {"FCALL", fn, "1", prefix};
	for (int i = 0; i < nargs; i++)
		argv[4 + i] = args[i];
	redisReply *r = redisCommandArgv(c, 4 + nargs, argv, NULL);
	if (!r)
		fprintf(stderr, "omnirouterctl: redis: %s\n", c->errstr);
	else if (r->type == REDIS_REPLY_ERROR)
		fprintf(stderr, "omnirouterctl: %s\n", r->str);
	else
		return r;
	freeReplyObject(r);
	return NULL;
}

static redisReply *agent_hash(redisContext *c, const char *tenant, const char *id)
{
	return redisCommand(c, "HGETALL omr:{%s}:agent:%s", tenant, id);
}

static const char *hfield(const redisReply *h, const char *name)
{
	for (size_t i = 0; h && i + 1 < h->elements; i += 2)
		if (strcmp(h->element[i]->str, name) == 0)
			return h->element[i + 1]->str;
	return "";
}

static int64_t hint(const redisReply *h, const char *name)
{
	int64_t v = 0;
	return omr_parse_int(hfield(h, name), 0, INT64_MAX, &v) == 0 ? v : 0;
}

static int upsert(redisContext *c, const opts_t *o, bool keep_token)
{
	char langs[512], cap[24], token[65] = "", sha[65] = "";
	if (!o->id || !omr_id_is_valid(o->id, OMR_ENV_ID_MAX)) {
		fprintf(stderr, "omnirouterctl: --id is required: 1-128 of [A-Za-z0-9._:@-]\n");
		return 2;
	}
	redisReply *cur = agent_hash(c, o->tenant, o->id);
	bool exists = cur && cur->type == REDIS_REPLY_ARRAY && cur->elements > 0;
	const char *name = o->name ? o->name : (exists ? hfield(cur, "name") : NULL);
	const char *languages =
	        o->languages ? o->languages : (exists ? hfield(cur, "languages") : NULL);
	int64_t capacity = o->capacity ? o->capacity : (exists ? hint(cur, "cap") : 0);
	int rc = 2;
	if (keep_token && !exists) {
		fprintf(stderr, "omnirouterctl: no agent %s (use agent add)\n", o->id);
		goto out;
	}
	if (!name || !*name || strlen(name) > OMR_ENV_NAME_MAX ||
	    !omr_utf8_is_valid(name, strlen(name)) || strpbrk(name, "\r\n")) {
		fprintf(stderr,
		        "omnirouterctl: --name is required (1-256 bytes of UTF-8, one line)\n");
		goto out;
	}
	if (!languages || normalize_languages(languages, langs, sizeof(langs)) != 0) {
		fprintf(stderr, "omnirouterctl: --languages must be BCP-47 tags, e.g. en,es-MX\n");
		goto out;
	}
	if (capacity < 1 || capacity > 100) {
		fprintf(stderr, "omnirouterctl: --capacity must be 1-100 chats\n");
		goto out;
	}
	snprintf(cap, sizeof(cap), "%lld", (long long)capacity);
	if (!keep_token) {
		if (o->token) {
			if (!omr_id_is_valid(o->token, OMR_ENV_ID_MAX) || strlen(o->token) < 16) {
				fprintf(stderr,
				        "omnirouterctl: --token: 16-128 of [A-Za-z0-9._:@-]\n");
				goto out;
			}
			snprintf(token, sizeof(token), "%s", o->token);
		} else if (omr_random_hex(token, sizeof(token), 24) != 0) {
			fprintf(stderr, "omnirouterctl: no randomness\n");
			goto out;
		}
		omr_sha256_hex(token, strlen(token), sha);
	}
	const char *args[] = {o->id, name, langs, cap, sha};
	redisReply *r = fcall(c, "omr_agent_upsert", o->tenant, 5, args);
	if (!r) {
		rc = 1;
		goto out;
	}
	if (o->json)
		printf("{\"id\":\"%s\",\"result\":\"%s\"%s%s%s}\n", o->id, r->str,
		       token[0] ? ",\"token\":\"" : "", token, token[0] ? "\"" : "");
	else if (token[0])
		printf("%s\n", token);
	else
		printf("%s %s\n", r->str, o->id);
	freeReplyObject(r);
	rc = 0;
out:
	freeReplyObject(cur);
	return rc;
}

static cJSON *agent_json(const char *id, const redisReply *h)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "id", id);
	cJSON_AddStringToObject(o, "name", hfield(h, "name"));
	cJSON *langs = cJSON_AddArrayToObject(o, "languages");
	char buf[512];
	snprintf(buf, sizeof(buf), "%s", hfield(h, "languages"));
	char *save = NULL;
	for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save))
		cJSON_AddItemToArray(langs, cJSON_CreateString(t));
	cJSON_AddNumberToObject(o, "capacity", (double)hint(h, "cap"));
	cJSON_AddNumberToObject(o, "load", (double)hint(h, "load"));
	cJSON_AddStringToObject(o, "presence", hfield(h, "presence"));
	return o;
}

static int show(redisContext *c, const opts_t *o, const char *id, cJSON *list)
{
	redisReply *h = agent_hash(c, o->tenant, id);
	if (!h || h->type != REDIS_REPLY_ARRAY || h->elements == 0) {
		fprintf(stderr, "omnirouterctl: no agent %s\n", id);
		freeReplyObject(h);
		return 1;
	}
	if (list) {
		cJSON_AddItemToArray(list, agent_json(id, h));
	} else if (o->json) {
		cJSON *j = agent_json(id, h);
		char *s = cJSON_PrintUnformatted(j);
		printf("%s\n", s);
		free(s);
		cJSON_Delete(j);
	} else {
		printf("%-20s %-24s %-12s %3s/%-3s %s\n", id, hfield(h, "name"),
		       hfield(h, "languages"), hfield(h, "load"), hfield(h, "cap"),
		       hfield(h, "presence"));
	}
	freeReplyObject(h);
	return 0;
}

static int list(redisContext *c, const opts_t *o)
{
	redisReply *ids = redisCommand(c, "SMEMBERS omr:{%s}:agents", o->tenant);
	if (!ids || ids->type != REDIS_REPLY_ARRAY) {
		freeReplyObject(ids);
		return 1;
	}
	cJSON *arr = o->json ? cJSON_CreateArray() : NULL;
	if (!o->json)
		printf("%-20s %-24s %-12s %-7s %s\n", "ID", "NAME", "LANGUAGES", "LOAD",
		       "PRESENCE");
	for (size_t i = 0; i < ids->elements; i++)
		show(c, o, ids->element[i]->str, arr);
	if (arr) {
		char *s = cJSON_PrintUnformatted(arr);
		printf("%s\n", s);
		free(s);
		cJSON_Delete(arr);
	}
	freeReplyObject(ids);
	return 0;
}

static int remove_agent(redisContext *c, const opts_t *o, const char *id)
{
	const char *args[] = {id};
	redisReply *r = fcall(c, "omr_agent_remove", o->tenant, 1, args);
	if (!r)
		return 1;
	printf("removed %s\n", id);
	freeReplyObject(r);
	return 0;
}

static int run(redisContext *c, opts_t *o, int argc, char **argv)
{
	const char *verb = argv[1];
	if (strcmp(verb, "add") == 0)
		return upsert(c, o, false);
	if (strcmp(verb, "update") == 0)
		return upsert(c, o, true);
	if (strcmp(verb, "token") == 0) {
		o->name = o->languages = NULL;
		o->capacity = 0;
		return upsert(c, o, false);
	}
	if (strcmp(verb, "list") == 0)
		return list(c, o);
	const char *id = argc > 2 ? argv[2] : o->id;
	if (!id) {
		usage(stderr);
		return 2;
	}
	if (strcmp(verb, "show") == 0)
		return show(c, o, id, NULL);
	if (strcmp(verb, "remove") == 0)
		return remove_agent(c, o, id);
	usage(stderr);
	return 2;
}

int main(int argc, char **argv)
{
	opts_t o = {.config = "/etc/omnirouter/omnirouter.yaml"};
	static const struct option lo[] = {{"config", required_argument, NULL, 'c'},
	                                   {"tenant", required_argument, NULL, 'T'},
	                                   {"id", required_argument, NULL, 'i'},
	                                   {"name", required_argument, NULL, 'n'},
	                                   {"languages", required_argument, NULL, 'l'},
	                                   {"capacity", required_argument, NULL, 'k'},
	                                   {"token", required_argument, NULL, 't'},
	                                   {"json", no_argument, NULL, 'j'},
	                                   {"help", no_argument, NULL, 'h'},
	                                   {NULL, 0, NULL, 0}};
	int ch;
	while ((ch = getopt_long(argc, argv, "c:h", lo, NULL)) != -1) {
		switch (ch) {
		case 'c':
			o.config = optarg;
			break;
		case 'T':
			o.tenant = optarg;
			break;
		case 'i':
			o.id = optarg;
			break;
		case 'n':
			o.name = optarg;
			break;
		case 'l':
			o.languages = optarg;
			break;
		case 't':
			o.token = optarg;
			break;
		case 'j':
			o.json = true;
			break;
		case 'k':
			if (omr_parse_int(optarg, 1, 100, &o.capacity) != 0) {
				fprintf(stderr, "omnirouterctl: --capacity must be 1-100\n");
				return 2;
			}
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (argc - optind < 2 || strcmp(argv[optind], "agent") != 0) {
		usage(stderr);
		return 2;
	}
	char err[512];
	omr_config_t *cfg = NULL;
	if (omr_config_load(o.config, &cfg, err, sizeof(err)) != 0) {
		fprintf(stderr, "omnirouterctl: %s\n", err);
		return 1;
	}
	if (!o.tenant)
		o.tenant = cfg->routing_tenant;
	int rc = 1;
	if (!omr_id_is_valid(o.tenant, OMR_ENV_ID_MAX)) {
		fprintf(stderr, "omnirouterctl: bad --tenant\n");
	} else {
		redisContext *c = connect_redis(cfg);
		if (c) {
			rc = run(c, &o, argc - optind, argv + optind);
			redisFree(c);
		}
	}
	omr_config_destroy(&cfg);
	return rc;
}
