/* test_config_queues.c - the queues section of the configuration (common/config_queues.c)
 * and the syntax of the routing options (routing.group, routing.blocking_channels): the
 * implicit "default" queue, every field of a queue and of a step, every rejection rule with
 * its exact "file:line:column: reason", the overflow references, the limits, the dump of a
 * queue and the queues of the shipped config/omnirouter.yaml. Single-threaded. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "omnirouter/config.h"
#include "config_test.h"

/* REJECT: err is want. REJECT_PREFIX: err starts with want. Literals may hold NUL bytes. */
#define REJECT(yaml, want) reject_at(yaml, sizeof(yaml) - 1, want, true, __FILE__, __LINE__)
#define REJECT_PREFIX(yaml, want) reject_at(yaml, sizeof(yaml) - 1, want, false, __FILE__, __LINE__)
#define REJECT_STR(yaml, want) reject_at(yaml, strlen(yaml), want, true, __FILE__, __LINE__)

/* One queue named q with the given lines after its name (line 3 on). */
#define Q(lines) "queues:\n  - name: q\n" lines

static void assert_strs(char *const *got, size_t n, const char *const *want, size_t nwant)
{
	assert_int_equal(n, nwant);
	for (size_t i = 0; i < n; i++)
		assert_string_equal(got[i], want[i]);
}

#define ASSERT_STRS(got, n, ...)                                                                   \
	do {                                                                                       \
		static const char *const want_[] = {__VA_ARGS__};                                  \
		assert_strs(got, n, want_, sizeof(want_) / sizeof(want_[0]));                      \
	} while (0)

/* A queue with nothing set but its name: the documented defaults. */
static void assert_queue_defaults(const omr_queue_t *q)
{
	assert_int_equal(q->n_tenants, 0);
	assert_int_equal(q->n_channels, 0);
	assert_int_equal(q->n_languages, 0);
	assert_int_equal(q->n_skills, 0);
	assert_int_equal(q->n_attributes, 0);
	assert_int_equal(q->strategy, OMR_STRATEGY_LEAST_LOADED);
	assert_int_equal(q->priority, 0);
	assert_int_equal(q->min_proficiency, 1);
	assert_int_equal(q->max_wait_s, 0);
	assert_null(q->max_wait_overflow);
	assert_int_equal(q->offer_timeout_s, 30);
	assert_true(q->auto_accept);
	assert_int_equal(q->wrapup_s, 0);
	assert_int_equal(q->sticky_window_s, 0);
	assert_int_equal(q->n_steps, 0);
}

static void assert_implicit_default(const omr_config_t *cfg)
{
	assert_int_equal(cfg->n_queues, 1);
	assert_string_equal(cfg->queues[0].name, "default");
	assert_int_equal(cfg->queues[0].line, 0);
	assert_queue_defaults(&cfg->queues[0]);
}

/* The "queues[i] = ..." line of the dump. */
static void queue_dump_line(const omr_config_t *cfg, size_t i, char *out, size_t outsize)
{
	static char dump[64 * 1024];
	char key[32];
	assert_int_equal(omr_config_dump(cfg, dump, sizeof(dump)), 0);
	snprintf(key, sizeof(key), "\nqueues[%zu] = ", i);
	const char *l = strstr(dump, key);
	assert_non_null(l);
	l++;
	size_t n = (size_t)(strchr(l, '\n') - l);
	assert_true(n < outsize);
	memcpy(out, l, n);
	out[n] = '\0';
}

/* ---- the implicit queue, names ---- */

static void test_implicit_default_queue(void **state)
{
	omr_config_t *cfg = omr_config_new_defaults();
	assert_implicit_default(cfg);
	omr_config_destroy(&cfg);

	static const char *const docs[] = {
	        "",
	        "redis:\n  port: 6390\n",
	        "queues:\n",
	        "queues:\n  # - name: vip\n  #   priority: 8\nlog: {}\n",
	};
	for (size_t i = 0; i < sizeof(docs) / sizeof(docs[0]); i++) {
		cfg = ACCEPT(docs[i]);
		assert_implicit_default(cfg);
		assert_non_null(omr_config_find_queue(cfg, "default"));
		omr_config_destroy(&cfg);
	}
}

static void test_strategy_names_and_find(void **state)
{
	assert_string_equal(omr_strategy_name(OMR_STRATEGY_LEAST_LOADED), "least_loaded");
	assert_string_equal(omr_strategy_name(OMR_STRATEGY_LONGEST_IDLE), "longest_idle");
	assert_string_equal(omr_strategy_name(OMR_STRATEGY_BEST_SKILL), "best_skill");
	assert_null(omr_strategy_name(OMR_STRATEGY_COUNT));
	assert_null(omr_strategy_name((omr_strategy_t)-1));

	omr_config_t *cfg = ACCEPT("queues:\n  - name: a\n  - {name: b, strategy: longest_idle}\n"
	                           "  - name: default\n");
	assert_int_equal(cfg->n_queues, 3);
	assert_ptr_equal(omr_config_find_queue(cfg, "b"), &cfg->queues[1]);
	assert_ptr_equal(omr_config_find_queue(cfg, "default"), &cfg->queues[2]);
	assert_null(omr_config_find_queue(cfg, "B"));
	assert_null(omr_config_find_queue(cfg, NULL));
	assert_null(omr_config_find_queue(NULL, "a"));
	assert_int_equal(cfg->queues[1].strategy, OMR_STRATEGY_LONGEST_IDLE);
	/* Given queues replace the implicit one; a queue with only a name has the defaults. */
	assert_queue_defaults(&cfg->queues[0]);
	assert_int_equal(cfg->queues[0].line, 2);
	assert_int_equal(cfg->queues[1].line, 3);
	omr_config_destroy(&cfg);
}

/* ---- a queue with every field ---- */

/* The spec's example queue, with every key set away from its default. */
static const char full_yaml[] = "queues:\n"
                                "  - name: support-es\n"
                                "    tenants: [acme, globex]\n"
                                "    channels: [chat, voice]\n"
                                "    languages: [es, pt-BR]\n"
                                "    skills: {billing: 5, refunds: 2}\n"
                                "    attributes: {vip: \"yes\", region: 'eu west'}\n"
                                "    strategy: best_skill\n"
                                "    priority: 5\n"
                                "    min_proficiency: 3\n"
                                "    max_wait_s: 600\n"
                                "    max_wait_action: overflow:general\n"
                                "    offer_timeout_s: 45\n"
                                "    auto_accept: no\n"
                                "    wrapup_s: 20\n"
                                "    sticky_window_s: 3600\n"
                                "    steps:\n"
                                "      - after_s: 30\n"
                                "        min_level_delta: 2\n"
                                "        languages: [en]\n"
                                "      - after_s: 90\n"
                                "        overflow: general\n"
                                "  - name: general\n";

static void test_full_queue(void **state)
{
	omr_config_t *cfg = ACCEPT(full_yaml);
	assert_int_equal(cfg->n_queues, 2);
	const omr_queue_t *q = &cfg->queues[0];
	assert_string_equal(q->name, "support-es");
	assert_int_equal(q->line, 2);
	ASSERT_STRS(q->tenants, q->n_tenants, "acme", "globex");
	ASSERT_STRS(q->channels, q->n_channels, "chat", "voice");
	ASSERT_STRS(q->languages, q->n_languages, "es", "pt"); /* primary subtags */
	assert_int_equal(q->n_skills, 2);
	assert_string_equal(q->skills[0].skill, "billing");
	assert_int_equal(q->skills[0].level, 5);
	assert_string_equal(q->skills[1].skill, "refunds");
	assert_int_equal(q->skills[1].level, 2);
	assert_int_equal(q->n_attributes, 2);
	assert_string_equal(q->attributes[0].key, "vip");
	assert_string_equal(q->attributes[0].value, "yes");
	assert_string_equal(q->attributes[1].key, "region");
	assert_string_equal(q->attributes[1].value, "eu west");
	assert_int_equal(q->strategy, OMR_STRATEGY_BEST_SKILL);
	assert_int_equal(q->priority, 5);
	assert_int_equal(q->min_proficiency, 3);
	assert_int_equal(q->max_wait_s, 600);
	assert_string_equal(q->max_wait_overflow, "general");
	assert_int_equal(q->offer_timeout_s, 45);
	assert_false(q->auto_accept);
	assert_int_equal(q->wrapup_s, 20);
	assert_int_equal(q->sticky_window_s, 3600);
	assert_int_equal(q->n_steps, 2);
	assert_int_equal(q->steps[0].after_s, 30);
	assert_int_equal(q->steps[0].min_level_delta, 2);
	ASSERT_STRS(q->steps[0].languages, q->steps[0].n_languages, "en");
	assert_null(q->steps[0].overflow);
	assert_int_equal(q->steps[0].line, 18);
	assert_int_equal(q->steps[1].after_s, 90);
	assert_int_equal(q->steps[1].min_level_delta, 0);
	assert_int_equal(q->steps[1].n_languages, 0);
	assert_string_equal(q->steps[1].overflow, "general");
	assert_int_equal(q->steps[1].line, 21);

	assert_string_equal(cfg->queues[1].name, "general");
	assert_int_equal(cfg->queues[1].line, 23);
	assert_queue_defaults(&cfg->queues[1]);

	char line[1024];
	queue_dump_line(cfg, 0, line, sizeof(line));
	assert_string_equal(
	        line, "queues[0] = name=support-es tenants=[acme,globex] channels=[chat,voice] "
	              "languages=[es,pt] skills={billing:5,refunds:2} "
	              "attributes={vip:\"yes\",region:\"eu west\"} strategy=best_skill priority=5 "
	              "min_proficiency=3 max_wait_s=600 max_wait_action=overflow:general "
	              "offer_timeout_s=45 auto_accept=false wrapup_s=20 sticky_window_s=3600 "
	              "steps=[{after_s:30,min_level_delta:2,languages:[en]},"
	              "{after_s:90,overflow:general}]");
	queue_dump_line(cfg, 1, line, sizeof(line));
	assert_string_equal(line, "queues[1] = name=general tenants=[] channels=[] languages=[] "
	                          "skills={} attributes={} strategy=least_loaded priority=0 "
	                          "min_proficiency=1 max_wait_s=0 max_wait_action=close "
	                          "offer_timeout_s=30 auto_accept=true wrapup_s=0 "
	                          "sticky_window_s=0 steps=[]");
	omr_config_destroy(&cfg);
}

/* Flow style, lower and upper bounds of every number, and empty lists and maps (= any). */
static void test_flow_style_bounds_and_empty_values(void **state)
{
	omr_config_t *cfg =
	        ACCEPT("queues: [{name: a, priority: 9, min_proficiency: 10, max_wait_s: 86400,"
	               " offer_timeout_s: 3600, wrapup_s: 3600, sticky_window_s: 86400,"
	               " max_wait_action: close, skills: {s: 10},"
	               " steps: [{after_s: 1, min_level_delta: 0}, {after_s: 86400, "
	               "min_level_delta: 9}]}]\n");
	const omr_queue_t *q = &cfg->queues[0];
	assert_int_equal(q->priority, 9);
	assert_int_equal(q->min_proficiency, 10);
	assert_int_equal(q->max_wait_s, 86400);
	assert_int_equal(q->offer_timeout_s, 3600);
	assert_int_equal(q->wrapup_s, 3600);
	assert_int_equal(q->sticky_window_s, 86400);
	assert_null(q->max_wait_overflow);
	assert_int_equal(q->skills[0].level, 10);
	assert_int_equal(q->steps[0].after_s, 1);
	assert_int_equal(q->steps[1].after_s, 86400);
	assert_int_equal(q->steps[1].min_level_delta, 9);
	omr_config_destroy(&cfg);

	cfg = ACCEPT(Q("    tenants: []\n    channels:\n    languages: []\n    skills: {}\n"
	               "    attributes:\n    steps: []\n    priority: 0\n    min_proficiency: 1\n"
	               "    max_wait_s: 0\n    offer_timeout_s: 1\n    wrapup_s: 0\n"
	               "    sticky_window_s: 0\n"));
	q = &cfg->queues[0];
	assert_int_equal(q->offer_timeout_s, 1);
	cfg->queues[0].offer_timeout_s = 30; /* the one value given away from its default */
	assert_queue_defaults(q);
	omr_config_destroy(&cfg);
}

static void test_booleans(void **state)
{
	static const char *const words[] = {"true", "yes", "on", "false", "no", "off"};
	for (size_t i = 0; i < 6; i++) {
		char yaml[128];
		snprintf(yaml, sizeof(yaml), Q("    auto_accept: %s\n"), words[i]);
		omr_config_t *cfg = ACCEPT(yaml);
		assert_int_equal(cfg->queues[0].auto_accept, i < 3);
		omr_config_destroy(&cfg);
	}
	static const char *const bad[] = {"maybe", "1", "True", "y"};
	for (size_t i = 0; i < 4; i++) {
		char yaml[128], want[256];
		snprintf(yaml, sizeof(yaml), Q("    auto_accept: %s\n"), bad[i]);
		snprintf(want, sizeof(want),
		         "t.yaml:3:18: queues[0].auto_accept: '%s' is not a boolean (true/false, "
		         "yes/no, on/off)",
		         bad[i]);
		REJECT_STR(yaml, want);
	}
}

/* ---- rejections ---- */

static void test_rejects_wrong_shapes(void **state)
{
	REJECT("queues: {a: 1}\n",
	       "t.yaml:1:9: queues: expected a sequence of queues, found a mapping");
	REJECT("queues: vip\n",
	       "t.yaml:1:9: queues: expected a sequence of queues, found a scalar");
	REJECT("queues: []\n", "t.yaml:1:9: queues: the list is empty (leave 'queues' out for the "
	                       "one implicit queue 'default')");
	REJECT("queues:\n  - vip\n", "t.yaml:2:5: queues[0]: expected a mapping, found a scalar");
	REJECT("queues:\n  - name: a\n  - [b]\n",
	       "t.yaml:3:5: queues[1]: expected a mapping, found a sequence");
	REJECT("queues:\n  - ? [a]\n    : b\n",
	       "t.yaml:2:7: queues[0]: a key must be a scalar, found a sequence");
	REJECT(Q("    steps: {after_s: 5}\n"),
	       "t.yaml:3:12: queues[0].steps: expected a sequence of steps, found a mapping");
	REJECT(Q("    steps: [5]\n"),
	       "t.yaml:3:13: queues[0].steps[0]: expected a mapping, found a scalar");
	REJECT(Q("    tenants: acme\n"),
	       "t.yaml:3:14: queues[0].tenants: expected a sequence, found a scalar");
	REJECT(Q("    tenants: [{a: b}]\n"),
	       "t.yaml:3:15: queues[0].tenants[0]: expected a scalar value, found a mapping");
	REJECT(Q("    skills: [billing]\n"),
	       "t.yaml:3:13: queues[0].skills: expected a mapping of skill to level, found a "
	       "sequence");
	REJECT(Q("    attributes: tier\n"),
	       "t.yaml:3:17: queues[0].attributes: expected a mapping of attribute to value, "
	       "found a scalar");
	REJECT(Q("    priority: [1]\n"),
	       "t.yaml:3:15: queues[0].priority: expected a scalar value, found a sequence");
	/* queues belongs at the top, not in a section. */
	REJECT("routing:\n  queues: []\n", "t.yaml:2:3: unknown option 'routing.queues'");
}

static void test_rejects_unknown_and_duplicate_keys(void **state)
{
	REJECT(Q("    priorty: 5\n"),
	       "t.yaml:3:5: queues[0]: unknown key 'priorty' (did you mean 'priority'?)");
	REJECT(Q("    colour: red\n"), "t.yaml:3:5: queues[0]: unknown key 'colour'");
	REJECT(Q("    \"name\\0x\": a\n"),
	       "t.yaml:3:5: queues[0]: unknown key 'name?x' (did you mean 'name'?)");
	REJECT(Q("    steps:\n      - after_s: 5\n        overflw: b\n"),
	       "t.yaml:5:9: queues[0].steps[0]: unknown key 'overflw' (did you mean "
	       "'overflow'?)");
	REJECT(Q("    steps:\n      - after_s: 5\n        priority: 1\n"),
	       "t.yaml:5:9: queues[0].steps[0]: unknown key 'priority'");
	REJECT(Q("    priority: 1\n    priority: 2\n"),
	       "t.yaml:4:5: queues[0]: duplicate key 'priority' (first at line 3)");
	REJECT("queues: [{name: a, attributes: {}, attributes: {}}]\n",
	       "t.yaml:1:36: queues[0]: duplicate key 'attributes' (first at line 1)");
	REJECT(Q("    steps:\n      - after_s: 5\n        after_s: 6\n"),
	       "t.yaml:5:9: queues[0].steps[0]: duplicate key 'after_s' (first at line 4)");
	REJECT("queues:\n  - name: a\nredis: {}\nqueues:\n  - name: b\n",
	       "t.yaml:4:1: duplicate section 'queues' (first at line 1)");
	REJECT("queue:\n  - name: a\n", "t.yaml:1:1: unknown section 'queue' (did you mean "
	                                "'queues'?)");
}

static void test_rejects_bad_names(void **state)
{
	REJECT("queues:\n  - priority: 1\n", "t.yaml:2:5: queues[0]: missing 'name'");
	REJECT("queues:\n  - {}\n", "t.yaml:2:5: queues[0]: missing 'name'");
	REJECT("queues:\n  - name: a b\n", "t.yaml:2:11: queues[0].name: 'a b' is not a queue name "
	                                   "(1..64 of A-Z a-z 0-9 . _ : @ -)");
	REJECT("queues:\n  - name: \"\"\n", "t.yaml:2:11: queues[0].name: '' is not a queue name "
	                                    "(1..64 of A-Z a-z 0-9 . _ : @ -)");
	REJECT("queues:\n  - name: a{b}\n", "t.yaml:2:11: queues[0].name: 'a{b}' is not a queue "
	                                    "name (1..64 of A-Z a-z 0-9 . _ : @ -)");
	REJECT("queues:\n  - name: {a: 1}\n",
	       "t.yaml:2:11: queues[0].name: expected a scalar value, found a mapping");
	REJECT("queues:\n  - name: \"a\\0b\"\n",
	       "t.yaml:2:11: queues[0].name: value contains a NUL byte");
	REJECT("queues:\n  - name: a\n  - name: b\n  - priority: 1\n    name: a\n",
	       "t.yaml:5:11: queues[2].name: queue 'a' is already defined (at line 2)");

	char yaml[256], want[256], name[70];
	memset(name, 'n', 64);
	name[64] = '\0';
	snprintf(yaml, sizeof(yaml), "queues:\n  - name: %s\n", name);
	omr_config_t *cfg = ACCEPT(yaml);
	assert_string_equal(cfg->queues[0].name, name);
	omr_config_destroy(&cfg);
	name[64] = 'n';
	name[65] = '\0';
	snprintf(yaml, sizeof(yaml), "queues:\n  - name: %s\n", name);
	snprintf(want, sizeof(want),
	         "t.yaml:2:11: queues[0].name: '%s' is not a queue name (1..64 of A-Z a-z 0-9 . "
	         "_ : @ -)",
	         name);
	REJECT_STR(yaml, want);
}

static void test_rejects_bad_lists(void **state)
{
	REJECT(Q("    tenants: [acme, \"glo bex\"]\n"),
	       "t.yaml:3:21: queues[0].tenants[1]: 'glo bex' is not a tenant id (1..64 of A-Z a-z "
	       "0-9 . _ : @ -)");
	REJECT(Q("    tenants: [acme, acme]\n"),
	       "t.yaml:3:21: queues[0].tenants[1]: 'acme' is listed twice");
	REJECT(Q("    channels: [chat, sms]\n"),
	       "t.yaml:3:22: queues[0].channels[1]: 'sms' is not a channel (chat, email, voice)");
	REJECT(Q("    channels: [Chat]\n"),
	       "t.yaml:3:16: queues[0].channels[0]: 'Chat' is not a channel (chat, email, voice)");
	REJECT(Q("    channels: [email, email]\n"),
	       "t.yaml:3:23: queues[0].channels[1]: 'email' is listed twice");
	REJECT(Q("    languages: [es, es_MX]\n"),
	       "t.yaml:3:21: queues[0].languages[1]: 'es_MX' is not a BCP-47 language tag");
	REJECT(Q("    languages: [e]\n"),
	       "t.yaml:3:17: queues[0].languages[0]: 'e' is not a BCP-47 language tag");
	/* Matched on the primary subtag, so es-MX repeats es. */
	REJECT(Q("    languages: [es, ES-mx]\n"),
	       "t.yaml:3:21: queues[0].languages[1]: 'es' is listed twice");
	REJECT(Q("    languages: [\"es\\0\"]\n"),
	       "t.yaml:3:17: queues[0].languages[0]: value contains a NUL byte");
}

static void test_rejects_bad_skills_and_attributes(void **state)
{
	REJECT(Q("    skills: {billing: 11}\n"),
	       "t.yaml:3:23: queues[0].skills.billing: 11 is out of range [1, 10]");
	REJECT(Q("    skills: {billing: 0}\n"),
	       "t.yaml:3:23: queues[0].skills.billing: 0 is out of range [1, 10]");
	REJECT(Q("    skills: {billing: high}\n"),
	       "t.yaml:3:23: queues[0].skills.billing: 'high' is not a whole base-10 number");
	REJECT(Q("    skills: {billing: {a: 1}}\n"),
	       "t.yaml:3:23: queues[0].skills.billing: expected a scalar value, found a mapping");
	REJECT(Q("    skills: {\"bil ling\": 3}\n"),
	       "t.yaml:3:14: queues[0].skills: 'bil ling' is not a skill id (1..64 of A-Z a-z 0-9 "
	       ". _ : @ -)");
	REJECT(Q("    skills: {billing: 3, billing: 4}\n"),
	       "t.yaml:3:26: queues[0].skills: 'billing' is given twice");
	REJECT(Q("    skills:\n      ? [a]\n      : 1\n"),
	       "t.yaml:4:9: queues[0].skills: a key must be a scalar, found a sequence");

	REJECT(Q("    attributes: {tier: [gold]}\n"),
	       "t.yaml:3:24: queues[0].attributes.tier: expected a scalar value, found a "
	       "sequence");
	REJECT(Q("    attributes: {tier: \"a\\nb\"}\n"),
	       "t.yaml:3:24: queues[0].attributes.tier: value contains a line break (CR or LF)");
	REJECT(Q("    attributes: {tier: \"a\\rb\"}\n"),
	       "t.yaml:3:24: queues[0].attributes.tier: value contains a line break (CR or LF)");
	REJECT(Q("    attributes: {tier: \"a\\0b\"}\n"),
	       "t.yaml:3:24: queues[0].attributes.tier: value contains a NUL byte");
	REJECT(Q("    attributes: {\"ti er\": gold}\n"),
	       "t.yaml:3:18: queues[0].attributes: 'ti er' is not an attribute name (1..64 of "
	       "A-Z a-z 0-9 . _ : @ -)");
	REJECT(Q("    attributes: {tier: gold, tier: silver}\n"),
	       "t.yaml:3:30: queues[0].attributes: 'tier' is given twice");

	/* Values are kept as written: "yes" is a string here, not a boolean. 255 bytes fit. */
	char yaml[512], want[256], value[300];
	memset(value, 'v', 255);
	value[255] = '\0';
	snprintf(yaml, sizeof(yaml), Q("    attributes: {vip: yes, note: \"%s\", empty: ''}\n"),
	         value);
	omr_config_t *cfg = ACCEPT(yaml);
	assert_string_equal(cfg->queues[0].attributes[0].value, "yes");
	assert_string_equal(cfg->queues[0].attributes[1].value, value);
	assert_string_equal(cfg->queues[0].attributes[2].value, "");
	omr_config_destroy(&cfg);
	size_t vlen = strlen(value);
	value[vlen] = 'v';
	value[vlen + 1] = '\0';
	snprintf(yaml, sizeof(yaml), Q("    attributes: {note: \"%s\"}\n"), value);
	snprintf(want, sizeof(want),
	         "t.yaml:3:24: queues[0].attributes.note: value is 256 bytes, the maximum is 255");
	REJECT_STR(yaml, want);
}

static void test_rejects_bad_scalars(void **state)
{
	REJECT(Q("    strategy: fastest\n"),
	       "t.yaml:3:15: queues[0].strategy: 'fastest' is not a strategy (least_loaded, "
	       "longest_idle, best_skill)");
	REJECT(Q("    strategy: Best_Skill\n"),
	       "t.yaml:3:15: queues[0].strategy: 'Best_Skill' is not a strategy (least_loaded, "
	       "longest_idle, best_skill)");
	REJECT(Q("    priority: 10\n"),
	       "t.yaml:3:15: queues[0].priority: 10 is out of range [0, 9]");
	REJECT(Q("    priority: -1\n"),
	       "t.yaml:3:15: queues[0].priority: -1 is out of range [0, 9]");
	REJECT(Q("    priority: 1.5\n"),
	       "t.yaml:3:15: queues[0].priority: '1.5' is not a whole base-10 number");
	REJECT(Q("    priority: \"5\\0\"\n"),
	       "t.yaml:3:15: queues[0].priority: value contains a NUL byte");
	REJECT(Q("    min_proficiency: 0\n"),
	       "t.yaml:3:22: queues[0].min_proficiency: 0 is out of range [1, 10]");
	REJECT(Q("    min_proficiency: 11\n"),
	       "t.yaml:3:22: queues[0].min_proficiency: 11 is out of range [1, 10]");
	REJECT(Q("    max_wait_s: 86401\n"),
	       "t.yaml:3:17: queues[0].max_wait_s: 86401 is out of range [0, 86400]");
	REJECT(Q("    max_wait_s: -1\n"),
	       "t.yaml:3:17: queues[0].max_wait_s: -1 is out of range [0, 86400]");
	REJECT(Q("    offer_timeout_s: 3601\n"),
	       "t.yaml:3:22: queues[0].offer_timeout_s: 3601 is out of range [1, 3600]");
	/* 0 would take every offer back the moment it is made: nobody could accept one. */
	REJECT(Q("    offer_timeout_s: 0\n"),
	       "t.yaml:3:22: queues[0].offer_timeout_s: 0 is out of range [1, 3600]");
	REJECT(Q("    wrapup_s: 3601\n"),
	       "t.yaml:3:15: queues[0].wrapup_s: 3601 is out of range [0, 3600]");
	REJECT(Q("    sticky_window_s: 86401\n"),
	       "t.yaml:3:22: queues[0].sticky_window_s: 86401 is out of range [0, 86400]");
	REJECT(Q("    sticky_window_s: 1e3\n"),
	       "t.yaml:3:22: queues[0].sticky_window_s: '1e3' is not a whole base-10 number");
}

static void test_rejects_bad_max_wait_action(void **state)
{
	/* (A plain "overflow:" at the end of a line would be the key of a mapping.) */
	static const char *const bad[] = {"drop",          "Close",          "overflow",
	                                  "'overflow:'",   "'overflow:a b'", "'close '",
	                                  "overflow:x:{y}"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char yaml[128], want[256], shown[32];
		snprintf(yaml, sizeof(yaml), Q("    max_wait_action: %s\n"), bad[i]);
		snprintf(shown, sizeof(shown), "%s", bad[i] + (bad[i][0] == '\''));
		if (bad[i][0] == '\'')
			shown[strlen(shown) - 1] = '\0';
		snprintf(want, sizeof(want),
		         "t.yaml:3:22: queues[0].max_wait_action: '%s' is not 'close' or "
		         "'overflow:QUEUE'",
		         shown);
		REJECT_STR(yaml, want);
	}
	omr_config_t *cfg = ACCEPT(Q("    max_wait_action: close\n"));
	assert_null(cfg->queues[0].max_wait_overflow);
	omr_config_destroy(&cfg);
}

static void test_rejects_bad_steps(void **state)
{
	REJECT(Q("    steps:\n      - min_level_delta: 1\n"),
	       "t.yaml:4:9: queues[0].steps[0]: missing 'after_s'");
	REJECT(Q("    steps: [{}]\n"), "t.yaml:3:13: queues[0].steps[0]: missing 'after_s'");
	REJECT(Q("    steps:\n      - after_s: 0\n"),
	       "t.yaml:4:18: queues[0].steps[0].after_s: 0 is out of range [1, 86400]");
	REJECT(Q("    steps:\n      - after_s: 86401\n"),
	       "t.yaml:4:18: queues[0].steps[0].after_s: 86401 is out of range [1, 86400]");
	REJECT(Q("    steps:\n      - after_s: 30\n      - after_s: 30\n"),
	       "t.yaml:5:18: queues[0].steps[1].after_s: 30 must be greater than the previous "
	       "step's 30 (steps are in order)");
	/* Reported at the value even when after_s is not the step's first key. */
	REJECT(Q("    steps:\n      - after_s: 60\n      - languages: [en]\n        after_s: 30\n"),
	       "t.yaml:6:18: queues[0].steps[1].after_s: 30 must be greater than the previous "
	       "step's 60 (steps are in order)");
	REJECT(Q("    steps:\n      - after_s: 5\n        min_level_delta: 10\n"),
	       "t.yaml:5:26: queues[0].steps[0].min_level_delta: 10 is out of range [0, 9]");
	REJECT(Q("    steps:\n      - after_s: 5\n        min_level_delta: -1\n"),
	       "t.yaml:5:26: queues[0].steps[0].min_level_delta: -1 is out of range [0, 9]");
	REJECT(Q("    steps:\n      - after_s: 5\n        languages: [xx_y]\n"),
	       "t.yaml:5:21: queues[0].steps[0].languages[0]: 'xx_y' is not a BCP-47 language "
	       "tag");
	REJECT(Q("    steps:\n      - after_s: 5\n        overflow: \"a b\"\n"),
	       "t.yaml:5:19: queues[0].steps[0].overflow: 'a b' is not a queue name (1..64 of A-Z "
	       "a-z 0-9 . _ : @ -)");
	REJECT(Q("    steps:\n      - after_s: 5\n        overflow: [a]\n"),
	       "t.yaml:5:19: queues[0].steps[0].overflow: expected a scalar value, found a "
	       "sequence");
}

static void test_overflow_references(void **state)
{
	REJECT("queues:\n  - name: general\n  - name: a\n    steps:\n      - after_s: 5\n"
	       "        overflow: genral\n",
	       "t.yaml:6:19: queues[1].steps[0].overflow: there is no queue 'genral' (did you mean "
	       "'general'?)");
	REJECT(Q("    steps:\n      - after_s: 5\n      - after_s: 9\n        overflow: "
	         "elsewhere\n"),
	       "t.yaml:6:19: queues[0].steps[1].overflow: there is no queue 'elsewhere'");
	REJECT(Q("    steps:\n      - after_s: 5\n        overflow: q\n"),
	       "t.yaml:5:19: queues[0].steps[0].overflow: queue 'q' cannot overflow to itself");
	REJECT(Q("    max_wait_action: overflow:elsewhere\n"),
	       "t.yaml:3:22: queues[0].max_wait_action: there is no queue 'elsewhere'");
	REJECT(Q("    max_wait_action: overflow:q\n"),
	       "t.yaml:3:22: queues[0].max_wait_action: queue 'q' cannot overflow to itself");
	/* A queue that takes none of the channels (or tenants) of the one that
	 * overflows to it: the router would never move anything there. */
	REJECT("queues:\n  - name: calls\n    channels: [voice]\n    steps:\n      - after_s: 5\n"
	       "        overflow: chats\n  - name: chats\n    channels: [chat]\n",
	       "t.yaml:6:19: queues[0].steps[0].overflow: queue 'chats' takes none of the channels "
	       "queue 'calls' takes, so nothing would ever overflow there");
	REJECT("queues:\n  - name: a\n    tenants: [acme]\n    max_wait_s: 9\n"
	       "    max_wait_action: overflow:b\n  - name: b\n    tenants: [globex]\n",
	       "t.yaml:5:22: queues[0].max_wait_action: queue 'b' takes none of the tenants "
	       "queue 'a' takes, so nothing would ever overflow there");
	/* (one channel in common is enough; an empty list takes everything) */
	omr_config_t *ok = ACCEPT("queues:\n  - name: a\n    channels: [voice, chat]\n"
	                          "    max_wait_s: 9\n    max_wait_action: overflow:b\n"
	                          "  - name: b\n    channels: [chat]\n  - name: c\n"
	                          "    steps:\n      - after_s: 5\n        overflow: b\n");
	omr_config_destroy(&ok);
	/* The implicit "default" queue is gone once queues are given. */
	REJECT(Q("    max_wait_action: overflow:default\n"),
	       "t.yaml:3:22: queues[0].max_wait_action: there is no queue 'default'");
	/* Checked after the whole file is read: a later error in the file wins, */
	REJECT(Q("    max_wait_action: overflow:zz\n") "colours: 1\n",
	       "t.yaml:4:1: unknown section 'colours'");
	/* and a queue may name one defined after it. */
	/* Overflows that go round in a circle would never end: maximum waits, */
	REJECT("queues:\n  - name: a\n    max_wait_s: 60\n    max_wait_action: overflow:b\n"
	       "  - name: b\n    max_wait_s: 30\n    max_wait_action: overflow:c\n"
	       "  - name: c\n    max_wait_s: 30\n    max_wait_action: overflow:a\n",
	       "t.yaml:10:22: queues[2].max_wait_action: overflows go round in a circle "
	       "(a -> b -> c -> a): a conversation there would move between these queues "
	       "forever; end the chain with a queue that does not overflow back");
	/* (a circle further down the chain is named from where it starts) */
	REJECT("queues:\n  - name: a\n    max_wait_s: 60\n    max_wait_action: overflow:b\n"
	       "  - name: b\n    max_wait_s: 30\n    max_wait_action: overflow:c\n"
	       "  - name: c\n    max_wait_s: 30\n    max_wait_action: overflow:b\n",
	       "t.yaml:10:22: queues[2].max_wait_action: overflows go round in a circle "
	       "(b -> c -> b): a conversation there would move between these queues "
	       "forever; end the chain with a queue that does not overflow back");
	/* a maximum wait and a ladder step (due from the enqueue time: every tick), */
	REJECT("queues:\n  - name: general\n    max_wait_s: 3\n"
	       "    max_wait_action: overflow:sales\n"
	       "  - name: sales\n    steps:\n      - after_s: 5\n        overflow: general\n",
	       "t.yaml:8:19: queues[1].steps[0].overflow: overflows go round in a circle "
	       "(general -> sales -> general): a conversation there would move between these "
	       "queues forever; end the chain with a queue that does not overflow back");
	/* ladder steps alone. */
	REJECT("queues:\n  - name: a\n    steps:\n      - after_s: 5\n        overflow: b\n"
	       "  - name: b\n    steps:\n      - after_s: 5\n        overflow: a\n",
	       "t.yaml:9:19: queues[1].steps[0].overflow: overflows go round in a circle "
	       "(a -> b -> a): a conversation there would move between these queues forever; "
	       "end the chain with a queue that does not overflow back");
	/* A queue without a maximum wait ends the chain: no circle. */
	omr_config_t *open_end =
	        ACCEPT("queues:\n  - name: a\n    max_wait_s: 60\n    max_wait_action: overflow:b\n"
	               "  - name: b\n    max_wait_action: overflow:a\n");
	omr_config_destroy(&open_end);
	omr_config_t *cfg = ACCEPT("queues:\n  - name: a\n    max_wait_action: overflow:c\n"
	                           "    steps:\n      - after_s: 5\n        overflow: b\n"
	                           "  - name: b\n    max_wait_action: overflow:a\n  - name: c\n");
	assert_string_equal(cfg->queues[0].max_wait_overflow, "c");
	assert_string_equal(cfg->queues[0].steps[0].overflow, "b");
	assert_string_equal(cfg->queues[1].max_wait_overflow, "a");
	omr_config_destroy(&cfg);
}

static void test_rejects_anchors_aliases_and_tags(void **state)
{
	REJECT("queues:\n  - name: &n a\n", "t.yaml:2:11: anchors are not allowed (&n)");
	REJECT("queues:\n  - &q\n    name: a\n", "t.yaml:2:5: anchors are not allowed (&q)");
	REJECT(Q("    tenants: *t\n"), "t.yaml:3:14: aliases are not allowed (*t)");
	REJECT(Q("    priority: !!int 5\n"),
	       "t.yaml:3:15: tags are not allowed (tag:yaml.org,2002:int)");
	REJECT("queues: !!seq\n  - name: a\n",
	       "t.yaml:1:9: tags are not allowed (tag:yaml.org,2002:seq)");
}

/* ---- limits ---- */

static char big[64 * 1024];

/* head, then count lines "<pre>N<post>" for N = first, first + 1, ... */
static void build(const char *head, const char *pre, const char *post, int first, int count)
{
	size_t n = (size_t)snprintf(big, sizeof(big), "%s", head);
	for (int i = 0; i < count; i++) {
		int m = snprintf(big + n, sizeof(big) - n, "%s%d%s", pre, first + i, post);
		assert_true(m > 0 && (size_t)m < sizeof(big) - n);
		n += (size_t)m;
	}
}

static void test_limits(void **state)
{
	omr_config_t *cfg;
	build("queues:\n", "  - name: q", "\n", 0, OMR_CONFIG_MAX_QUEUES);
	cfg = ACCEPT(big);
	assert_int_equal(cfg->n_queues, 64);
	omr_config_destroy(&cfg);
	build("queues:\n", "  - name: q", "\n", 0, OMR_CONFIG_MAX_QUEUES + 1);
	REJECT_STR(big, "t.yaml:66:5: queues: more than 64 queues");

	build(Q("    steps:\n"), "      - after_s: ", "\n", 1, OMR_CONFIG_MAX_STEPS);
	cfg = ACCEPT(big);
	assert_int_equal(cfg->queues[0].n_steps, 16);
	assert_int_equal(cfg->queues[0].steps[15].after_s, 16);
	omr_config_destroy(&cfg);
	build(Q("    steps:\n"), "      - after_s: ", "\n", 1, OMR_CONFIG_MAX_STEPS + 1);
	REJECT_STR(big, "t.yaml:20:9: queues[0].steps: more than 16 steps");

	build(Q("    tenants:\n"), "      - t", "\n", 0, OMR_CONFIG_MAX_ITEMS);
	cfg = ACCEPT(big);
	assert_int_equal(cfg->queues[0].n_tenants, 64);
	omr_config_destroy(&cfg);
	build(Q("    tenants:\n"), "      - t", "\n", 0, OMR_CONFIG_MAX_ITEMS + 1);
	REJECT_STR(big, "t.yaml:68:9: queues[0].tenants: more than 64 entries");

	build(Q("    skills:\n"), "      s", ": 1\n", 0, OMR_CONFIG_MAX_ITEMS);
	cfg = ACCEPT(big);
	assert_int_equal(cfg->queues[0].n_skills, 64);
	omr_config_destroy(&cfg);
	build(Q("    skills:\n"), "      s", ": 1\n", 0, OMR_CONFIG_MAX_ITEMS + 1);
	REJECT_STR(big, "t.yaml:68:7: queues[0].skills: more than 64 entries");

	build(Q("    attributes:\n"), "      a", ": x\n", 0, OMR_CONFIG_MAX_ITEMS + 1);
	REJECT_STR(big, "t.yaml:68:7: queues[0].attributes: more than 64 entries");
}

/* ---- the routing options ---- */

static void test_blocking_channels(void **state)
{
	static const char *const good[] = {
	        "\"\"",
	        "voice:chat",
	        "voice:chat,email",
	        "voice:chat,email;chat:voice",
	        "chat:email,voice;email:chat,voice;voice:chat,email",
	};
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		char yaml[128];
		snprintf(yaml, sizeof(yaml), "routing:\n  blocking_channels: %s\n", good[i]);
		omr_config_t *cfg = ACCEPT(yaml);
		assert_string_equal(cfg->routing_blocking_channels, i == 0 ? "" : good[i]);
		omr_config_destroy(&cfg);
	}
	static const char *const bad[][2] = {
	        {"voice", "'voice' is not CHANNEL:CHANNEL[,CHANNEL...]"},
	        {"voice:sms", "'sms' is not a channel (chat, email, voice)"},
	        {"Voice:chat", "'Voice' is not a channel (chat, email, voice)"},
	        {"\"voice: chat\"", "' chat' is not a channel (chat, email, voice)"},
	        {"\"voice:\"", "a channel name is missing"},
	        {"\":chat\"", "a channel name is missing"},
	        {"voice:chat,,email", "a channel name is missing"},
	        {"voice:chat,", "a channel name is missing"},
	        {"voice:voice", "'voice' cannot block itself"},
	        {"voice:chat,voice", "'voice' cannot block itself"},
	        {"voice:chat,chat", "'chat' is listed twice after 'voice:'"},
	        {"voice:chat;voice:email", "'voice' starts two groups"},
	        {"voice:chat;", "empty group (';' at an end or twice in a row)"},
	        {"\";voice:chat\"", "empty group (';' at an end or twice in a row)"},
	        {"voice:chat;;chat:voice", "empty group (';' at an end or twice in a row)"},
	        {"voice:chat;chat", "'chat' is not CHANNEL:CHANNEL[,CHANNEL...]"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char yaml[128], want[256];
		snprintf(yaml, sizeof(yaml), "routing:\n  blocking_channels: %s\n", bad[i][0]);
		snprintf(want, sizeof(want), "t.yaml:2:22: routing.blocking_channels: %s",
		         bad[i][1]);
		REJECT_STR(yaml, want);
	}
}

static void test_group_and_tick(void **state)
{
	omr_config_t *cfg = ACCEPT("routing:\n  group: site-1.floor_2:a@b\n  tick_ms: 20\n");
	assert_string_equal(cfg->routing_group, "site-1.floor_2:a@b");
	assert_int_equal(cfg->routing_tick_ms, 20);
	omr_config_destroy(&cfg);
	/* The group is a Redis hash tag: no braces, no spaces. */
	REJECT("routing:\n  group: a{b}\n",
	       "t.yaml:2:10: routing.group: 'a{b}' is not an id (A-Z a-z 0-9 . _ : @ -)");
	REJECT("routing:\n  group: \"a b\"\n",
	       "t.yaml:2:10: routing.group: 'a b' is not an id (A-Z a-z 0-9 . _ : @ -)");
	REJECT("routing:\n  group: \"\"\n", "t.yaml:2:10: routing.group: must not be empty");
	REJECT("routing:\n  tick_ms: 19\n",
	       "t.yaml:2:12: routing.tick_ms: 19 is out of range [20, 10000]");
}

/* ---- diff, the shipped example ---- */

static void test_queues_are_reloadable(void **state)
{
	omr_config_t *a = omr_config_new_defaults();
	omr_config_t *b = ACCEPT(full_yaml);
	omr_config_t *c = ACCEPT("routing:\n  group: other\n  tick_ms: 500\n"
	                         "  blocking_channels: \"\"\n");
	char out[256];
	assert_int_equal(omr_config_diff_static(a, b, out, sizeof(out)), 0);
	assert_string_equal(out, "");
	/* group is the only one of the three new options that needs a restart. */
	assert_int_equal(omr_config_diff_static(a, c, out, sizeof(out)), 1);
	assert_string_equal(out, "routing.group");
	omr_config_destroy(&a);
	omr_config_destroy(&b);
	omr_config_destroy(&c);
}

/* A queue after one that takes every conversation it would is valid (it can
 * get overflows and transfers) but no new conversation reaches it: warned. */
static void test_shadowed_queues(void **state)
{
	(void)state;
	static const char yaml[] =
	        "queues:\n"
	        "  - name: es-chat\n" /* line 2 */
	        "    languages: [es, fr]\n"
	        "    channels: [chat]\n"
	        "  - name: es-only\n" /* 5: covered by es-chat? no: any channel */
	        "    languages: [es]\n"
	        "  - name: es-chat-gold\n" /* 7: covered by es-chat */
	        "    languages: [es-MX]\n"
	        "    channels: [chat]\n"
	        "    attributes: {tier: gold}\n"
	        "  - name: billing\n" /* 11: skills */
	        "    skills: {billing: 5, refunds: 3}\n"
	        "  - name: refunds\n" /* 13: covered by billing */
	        "    skills: {refunds: 2}\n"
	        "    tenants: [acme]\n"
	        "  - name: gold\n" /* 16 */
	        "    attributes: {tier: gold}\n"
	        "  - name: gold-acme\n" /* 18: covered by gold */
	        "    attributes: {tier: gold, region: eu}\n"
	        "    tenants: [acme]\n"
	        "  - name: all\n"       /* 21 */
	        "  - name: after-all\n" /* 22: covered by all */
	        "    channels: [email]\n";
	omr_config_t *cfg = ACCEPT(yaml);
	const char *want[] = {NULL, NULL, "es-chat", NULL, "billing", NULL, "gold", NULL, "all"};
	assert_int_equal(cfg->n_queues, sizeof(want) / sizeof(want[0]));
	for (size_t i = 0; i < cfg->n_queues; i++) {
		const omr_queue_t *e = omr_config_shadowing_queue(cfg, i);
		if (!want[i]) {
			if (e)
				print_error("queues[%zu] %s: shadowed by %s\n", i,
				            cfg->queues[i].name, e->name);
			assert_null(e);
		} else {
			assert_non_null(e);
			assert_string_equal(e->name, want[i]);
		}
	}
	char text[2048];
	assert_int_equal(omr_config_shadow_warnings(cfg, text, sizeof(text)), 4);
	assert_non_null(
	        strstr(text, "config:7: warning: queues[2] 'es-chat-gold' is never matched"));
	assert_non_null(strstr(text, "queue 'all' (line 21) comes first"));
	omr_config_destroy(&cfg);
}

static void test_example_queues(void **state)
{
	omr_config_t *cfg = load_example();
	assert_int_equal(cfg->n_queues, 4);

	const omr_queue_t *vip = &cfg->queues[0];
	assert_string_equal(vip->name, "vip");
	assert_int_equal(vip->n_attributes, 1);
	assert_string_equal(vip->attributes[0].key, "tier");
	assert_string_equal(vip->attributes[0].value, "gold");
	assert_int_equal(vip->strategy, OMR_STRATEGY_BEST_SKILL);
	assert_int_equal(vip->priority, 8);
	assert_int_equal(vip->n_tenants + vip->n_channels + vip->n_languages + vip->n_skills, 0);

	const omr_queue_t *bill = &cfg->queues[1];
	assert_string_equal(bill->name, "billing-es");
	ASSERT_STRS(bill->languages, bill->n_languages, "es");
	assert_int_equal(bill->n_skills, 1);
	assert_string_equal(bill->skills[0].skill, "billing");
	assert_int_equal(bill->skills[0].level, 5);
	assert_int_equal(bill->n_steps, 3);
	assert_int_equal(bill->steps[0].after_s, 30);
	assert_int_equal(bill->steps[0].min_level_delta, 2);
	assert_int_equal(bill->steps[1].after_s, 60);
	ASSERT_STRS(bill->steps[1].languages, bill->steps[1].n_languages, "en");
	assert_int_equal(bill->steps[2].after_s, 120);
	assert_string_equal(bill->steps[2].overflow, "general");

	const omr_queue_t *sup = &cfg->queues[2];
	assert_string_equal(sup->name, "support");
	ASSERT_STRS(sup->languages, sup->n_languages, "en", "es", "fr");
	assert_int_equal(sup->strategy, OMR_STRATEGY_LEAST_LOADED);
	assert_int_equal(sup->max_wait_s, 600);
	assert_string_equal(sup->max_wait_overflow, "general");

	/* The catch-all: matches anything, so it is last. */
	const omr_queue_t *gen = &cfg->queues[3];
	assert_string_equal(gen->name, "general");
	assert_int_equal(gen->strategy, OMR_STRATEGY_LONGEST_IDLE);
	assert_int_equal(gen->n_tenants + gen->n_channels + gen->n_languages + gen->n_skills +
	                         gen->n_attributes + gen->n_steps,
	                 0);

	char line[1024];
	queue_dump_line(cfg, 1, line, sizeof(line));
	assert_string_equal(line, "queues[1] = name=billing-es tenants=[] channels=[] "
	                          "languages=[es] skills={billing:5} attributes={} "
	                          "strategy=least_loaded priority=0 min_proficiency=1 max_wait_s=0 "
	                          "max_wait_action=close offer_timeout_s=30 auto_accept=true "
	                          "wrapup_s=0 sticky_window_s=0 steps=[{after_s:30,"
	                          "min_level_delta:2},{after_s:60,languages:[en]},"
	                          "{after_s:120,overflow:general}]");
	omr_config_destroy(&cfg);
}

/* The comment above the queues section names every key of a queue and of a step. */
static void test_example_documents_queue_keys(void **state)
{
	static const char *const keys[] = {"name",        "tenants",         "channels",
	                                   "languages",   "skills",          "attributes",
	                                   "strategy",    "priority",        "min_proficiency",
	                                   "max_wait_s",  "max_wait_action", "offer_timeout_s",
	                                   "auto_accept", "wrapup_s",        "sticky_window_s",
	                                   "steps",       "after_s",         "min_level_delta",
	                                   "overflow"};
	static char text[256 * 1024];
	FILE *f = fopen(EXAMPLE, "rb");
	assert_non_null(f);
	size_t n = fread(text, 1, sizeof(text) - 1, f);
	fclose(f);
	text[n] = '\0';
	const char *section = strstr(text, "\nqueues:\n");
	assert_non_null(section);
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		char want[64];
		bool found = false;
		for (int indent = 3; indent <= 5 && !found; indent += 2) {
			snprintf(want, sizeof(want), "\n#%*s%s ", indent, "", keys[i]);
			const char *at = strstr(text, want);
			found = at && at < section;
		}
		if (!found)
			print_error("the queues comment does not document '%s'\n", keys[i]);
		assert_true(found);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_implicit_default_queue),
	        cmocka_unit_test(test_strategy_names_and_find),
	        cmocka_unit_test(test_full_queue),
	        cmocka_unit_test(test_flow_style_bounds_and_empty_values),
	        cmocka_unit_test(test_booleans),
	        cmocka_unit_test(test_rejects_wrong_shapes),
	        cmocka_unit_test(test_rejects_unknown_and_duplicate_keys),
	        cmocka_unit_test(test_rejects_bad_names),
	        cmocka_unit_test(test_rejects_bad_lists),
	        cmocka_unit_test(test_rejects_bad_skills_and_attributes),
	        cmocka_unit_test(test_rejects_bad_scalars),
	        cmocka_unit_test(test_rejects_bad_max_wait_action),
	        cmocka_unit_test(test_rejects_bad_steps),
	        cmocka_unit_test(test_overflow_references),
	        cmocka_unit_test(test_rejects_anchors_aliases_and_tags),
	        cmocka_unit_test(test_limits),
	        cmocka_unit_test(test_blocking_channels),
	        cmocka_unit_test(test_group_and_tick),
	        cmocka_unit_test(test_queues_are_reloadable),
	        cmocka_unit_test(test_shadowed_queues),
	        cmocka_unit_test(test_example_queues),
	        cmocka_unit_test(test_example_documents_queue_keys),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
