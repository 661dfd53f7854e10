/* test_config.c - the YAML configuration loader (common/config.c): defaults, every
 * rejection rule with its "file:line:column: reason", the cross-field rules, diff_static and
 * dump (common/config_dump.c). The shipped config/omnirouter.yaml is in
 * test_config_example.c; the queues section and the routing options' syntax in
 * test_config_queues.c. Single-threaded. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "omnirouter/config.h"
#include "config_test.h"

/* REJECT: err starts with want. REJECT_EXACT: err is want. Literals may hold NUL bytes. */
#define REJECT(yaml, want) reject_at(yaml, sizeof(yaml) - 1, want, false, __FILE__, __LINE__)
#define REJECT_EXACT(yaml, want) reject_at(yaml, sizeof(yaml) - 1, want, true, __FILE__, __LINE__)
#define REJECT_STR(yaml, want) reject_at(yaml, strlen(yaml), want, false, __FILE__, __LINE__)

/* String options with a syntax of their own (config.c str_checks): a run of 'a's is not
 * valid, so the length tests expect the syntax error where they expect success. */
static const char *const syntax_checked[] = {"routing.blocking_channels",
                                             "routing.default_language", "websocket.listen",
                                             "bus.endpoint"};

static bool has_syntax(const char *name)
{
	for (size_t i = 0; i < sizeof(syntax_checked) / sizeof(syntax_checked[0]); i++) {
		if (strcmp(syntax_checked[i], name) == 0)
			return true;
	}
	return false;
}

/* Pairs the loader requires in order (a multiple of the first, plus a margin, <= second);
 * see config.c order_rules. */
static const char *const order_pairs[][2] = {
        {"redis.reconnect_min_ms", "redis.reconnect_max_ms"},
        {"redis.ping_interval_ms", "redis.ping_timeout_ms"},
        {"chat.max_text_bytes", "websocket.max_frame_bytes"},
        {"chat.max_text_bytes", "bus.max_frame_bytes"},
};

/* Options whose largest values need the second one raised (config.c
 * check_timing_rules: ticks and Redis reconnects within the silence after
 * which an instance is taken for stopped); the second alone loads anywhere. */
static const char *const raise_pairs[][2] = {
        {"routing.tick_ms", "routing.heartbeat_timeout_s"},
        {"redis.reconnect_max_ms", "routing.heartbeat_timeout_s"},
};

/* ---- helpers ---- */

/* The dump line "name = value" of one option, for reading options by name. */
static void dump_line(const omr_config_t *cfg, const char *name, char *out, size_t outsize)
{
	static char dump[64 * 1024];
	assert_int_equal(omr_config_dump(cfg, dump, sizeof(dump)), 0);
	char key[128];
	snprintf(key, sizeof(key), "%s = ", name);
	size_t klen = strlen(key);
	for (const char *l = dump; *l; l = strchr(l, '\n') + 1) {
		if (strncmp(l, key, klen) == 0) {
			size_t n = (size_t)(strchr(l, '\n') - l);
			assert_true(n < outsize);
			memcpy(out, l, n);
			out[n] = '\0';
			return;
		}
	}
	print_error("%s not in dump\n", name);
	fail();
}

/* "section:\n  key: value\n" for name = value, plus the partners of its order rules set to a
 * value that satisfies the rule whatever value is (the ranges allow it: the rule holds for
 * both minimums and for both maximums), in a section of their own when theirs differs, so
 * bound tests do not trip the cross-field checks. */
/* Appends `other: v` to the document of option name (n bytes so far). */
static int append_other(char *out, size_t outsize, int n, const char *name, const char *other,
                        int64_t v)
{
	const char *dot = strchr(name, '.');
	const char *key = strchr(other, '.') + 1;
	int slen = (int)(key - 1 - other);
	bool same = slen == (int)(dot - name) && strncmp(other, name, slen) == 0;
	int m = same ? snprintf(out + n, outsize - (size_t)n, "  %s: %lld\n", key, (long long)v)
	             : snprintf(out + n, outsize - (size_t)n, "%.*s:\n  %s: %lld\n", slen, other,
	                        key, (long long)v);
	assert_true(m > 0 && (size_t)m < outsize - (size_t)n);
	return n + m;
}

static void build_doc(char *out, size_t outsize, const char *name, const char *value)
{
	const char *dot = strchr(name, '.');
	int n = snprintf(out, outsize, "%.*s:\n  %s: %s\n", (int)(dot - name), name, dot + 1,
	                 value);
	assert_true(n > 0 && (size_t)n < outsize);
	const char *given[2] = {name, NULL}; /* the option, and its order partner if any */
	for (size_t r = 0; r < sizeof(order_pairs) / sizeof(order_pairs[0]); r++) {
		for (int k = 0; k < 2; k++) {
			if (strcmp(name, order_pairs[r][k]) != 0)
				continue;
			const struct topt *other = topt_find(order_pairs[r][!k]);
			assert_non_null(other);
			n = append_other(out, outsize, n, name, other->name,
			                 k == 0 ? other->max : other->min);
			given[1] = other->name;
		}
	}
	bool raised = false;
	for (size_t r = 0; r < sizeof(raise_pairs) / sizeof(raise_pairs[0]) && !raised; r++) {
		for (int g = 0; g < 2 && !raised; g++) {
			if (!given[g] || strcmp(given[g], raise_pairs[r][0]) != 0)
				continue;
			const struct topt *other = topt_find(raise_pairs[r][1]);
			assert_non_null(other);
			n = append_other(out, outsize, n, name, other->name, other->max);
			raised = true;
		}
	}
}

/* Column (1-based) of the value in "  key: value". */
static int value_column(const char *name)
{
	return (int)strlen(strchr(name, '.') + 1) + 5;
}

/* ---- the table and the defaults ---- */

static void test_table_names_are_unique_and_well_formed(void **state)
{
	for (size_t i = 0; i < NOPTS; i++) {
		const char *dot = strchr(topts[i].name, '.');
		assert_non_null(dot);
		assert_true(dot > topts[i].name && dot[1] != '\0' && !strchr(dot + 1, '.'));
		for (size_t j = i + 1; j < NOPTS; j++)
			assert_string_not_equal(topts[i].name, topts[j].name);
	}
}

static void test_defaults_are_within_their_ranges(void **state)
{
	omr_log_level_t lvl;
#define CHECK_INT(d, lo, hi) assert_in_range((d), (lo), (hi));
#define CHECK_BOOL(d, lo, hi) assert_in_range((d), 0, 1);
#define CHECK_STR(d, lo, hi) assert_in_range(strlen(d), (lo), (hi));
#define CHECK_LEVEL(d, lo, hi) assert_int_equal(omr_log_level_parse((d), &lvl), 0);
#define OMR_OPT(type, field, path, def, min, max, reload, help) CHECK_##type(def, min, max)
#include "omnirouter/config_options.h"
#undef OMR_OPT
#undef CHECK_INT
#undef CHECK_BOOL
#undef CHECK_STR
#undef CHECK_LEVEL
}

static void test_new_defaults(void **state)
{
	omr_config_t *cfg = omr_config_new_defaults();
	assert_defaults(cfg);
	assert_null(cfg->path);
	assert_int_equal(cfg->redis_port, 6379);
	assert_string_equal(cfg->redis_host, "127.0.0.1");
	assert_int_equal(cfg->log_level, OMR_LOG_INFO);
	omr_config_destroy(&cfg);
	assert_null(cfg);
	omr_config_destroy(&cfg); /* NULL-safe */
	omr_config_destroy(NULL);
}

static void test_empty_documents_give_defaults(void **state)
{
	static const char *const docs[] = {
	        "",
	        "\n\n",
	        "# nothing but comments\n\n   # indented comment\n",
	        "---\n",
	        "---\n...\n",
	        "{}\n",
	        "redis: {}\n",
	        "redis:\n  # host: example.org\n  # port: 6380\nbus:\n",
	};
	for (size_t i = 0; i < sizeof(docs) / sizeof(docs[0]); i++) {
		omr_config_t *cfg = ACCEPT(docs[i]);
		assert_defaults(cfg);
		omr_config_destroy(&cfg);
	}
}

/* redis.username: an ACL user for AUTH USER PASSWORD; Redis refuses a name with a space. */
static void test_redis_username(void **state)
{
	(void)state;
	omr_config_t *cfg = ACCEPT("redis:\n  username: omnirouter\n  password: pw\n");
	assert_string_equal(cfg->redis_username, "omnirouter");
	omr_config_destroy(&cfg);
	REJECT_EXACT("redis:\n  username: \"omni router\"\n",
	             "t.yaml:2:13: redis.username: Redis ACL user names cannot contain a space");
}

static void test_values_are_loaded(void **state)
{
	omr_config_t *cfg = ACCEPT("log:\n  level: debug\n"
	                           "redis: {host: \"::1\", port: 6380, password: 's3 cret'}\n"
	                           "daemon:\n  instance_name: yes\n"
	                           "chat:\n  max_messages: 0010\n");
	assert_int_equal(cfg->log_level, OMR_LOG_DEBUG);
	assert_string_equal(cfg->redis_host, "::1");
	assert_int_equal(cfg->redis_port, 6380);
	assert_string_equal(cfg->redis_password, "s3 cret");
	assert_string_equal(cfg->instance_name, "yes"); /* a string option takes "yes" literally */
	assert_int_equal(cfg->chat_max_messages, 10);
	assert_int_equal(cfg->bus_max_attempts, 5); /* untouched options keep their default */
	assert_null(cfg->path);
	omr_config_destroy(&cfg);
}

static void test_length_bounds_the_input(void **state)
{
	const char yaml[] = "redis:\n  port: 1234garbage";
	omr_config_t *cfg = NULL;
	char err[256];
	assert_int_equal(omr_config_load_string(yaml, strlen("redis:\n  port: 1234"), "t.yaml",
	                                        &cfg, err, sizeof(err)),
	                 0);
	assert_int_equal(cfg->redis_port, 1234);
	omr_config_destroy(&cfg);
}

/* ---- syntax, structure ---- */

static void test_rejects_yaml_syntax_errors(void **state)
{
	REJECT_EXACT("redis:\n  host: \"unterminated\n",
	             "t.yaml:3:1: found unexpected end of stream "
	             "(while scanning a quoted scalar at 2:9)");
	REJECT("redis:\n host: a\n  port: 1\n",
	       "t.yaml:3:7: mapping values are not allowed in this context");
	REJECT("redis:\n\thost: a\n", "t.yaml:2:1: found character that cannot start any token");
	REJECT("redis: {host: a\n", "t.yaml:2:1: did not find expected ',' or '}'");
}

static void test_rejects_bad_bytes(void **state)
{
	REJECT("redis:\n  host: ab\xff\n", "t.yaml:2:11: invalid leading UTF-8 octet (0xff)");
	REJECT("redis:\n  host: a\xc0\x80\n", "t.yaml:2:10: invalid length of a UTF-8 sequence");
	REJECT("redis:\n  host: a\xed\xa0\x80\n",
	       "t.yaml:2:10: invalid Unicode character (0xd800)");
	REJECT("redis:\n  host: a\0b\n", "t.yaml:2:10: control characters are not allowed (0x0)");
}

static void test_rejects_wrong_shapes(void **state)
{
	REJECT_EXACT("- redis\n",
	             "t.yaml:1:1: the document must be a mapping of sections, found a sequence");
	REJECT_EXACT("hello\n",
	             "t.yaml:1:1: the document must be a mapping of sections, found a scalar");
	REJECT_EXACT("redis: 5\n",
	             "t.yaml:1:8: section 'redis' must be a mapping of options, found a scalar");
	REJECT_EXACT("redis:\n  - host\n",
	             "t.yaml:2:3: section 'redis' must be a mapping of options, found a sequence");
	REJECT_EXACT("? [a]\n: b\n",
	             "t.yaml:1:3: a section name must be a scalar, found a sequence");
	REJECT_EXACT("redis:\n  ? {a: b}\n  : c\n",
	             "t.yaml:2:5: an option name must be a scalar, found a mapping");
	REJECT_EXACT("redis:\n  host: [a, b]\n",
	             "t.yaml:2:9: redis.host: expected a scalar value, found a sequence");
	REJECT_EXACT("redis:\n  host:\n    name: a\n",
	             "t.yaml:3:5: redis.host: expected a scalar value, found a mapping");
	REJECT_EXACT("redis:\n  port: 1\n---\nbus: {}\n",
	             "t.yaml:3:1: only one YAML document is allowed");
}

static void test_rejects_unknown_names(void **state)
{
	REJECT_EXACT("redis:\n  hots: localhost\n",
	             "t.yaml:2:3: unknown option 'redis.hots' (did you mean 'redis.host'?)");
	REJECT_EXACT("redis:\n  colour: blue\n", "t.yaml:2:3: unknown option 'redis.colour'");
	REJECT_EXACT("websocket:\n  max_text_bytes: 5\n",
	             "t.yaml:2:3: unknown option 'websocket.max_text_bytes' "
	             "(did you mean 'chat.max_text_bytes'?)");
	REJECT_EXACT("log:\n  level: info\nrediss:\n  host: x\n",
	             "t.yaml:3:1: unknown section 'rediss' (did you mean 'redis'?)");
	REJECT_EXACT("colours:\n  red: 1\n", "t.yaml:1:1: unknown section 'colours'");
	/* Names are echoed printable-only and cut, never raw. */
	REJECT_EXACT("redis:\n  \"a\\tb\": 1\n", "t.yaml:2:3: unknown option 'redis.a?b'");
}

static void test_rejects_duplicates(void **state)
{
	REJECT_EXACT("redis:\n  port: 1\n  port: 2\n",
	             "t.yaml:3:3: duplicate option 'redis.port' (first at line 2)");
	REJECT_EXACT("redis:\n  port: 1\nbus: {}\nredis:\n  db: 1\n",
	             "t.yaml:4:1: duplicate section 'redis' (first at line 1)");
	REJECT_EXACT("{redis: {host: x}, redis: {}}\n",
	             "t.yaml:1:20: duplicate section 'redis' (first at line 1)");
}

static void test_rejects_anchors_aliases_and_tags(void **state)
{
	REJECT_EXACT("redis: &r\n  port: 5\n", "t.yaml:1:8: anchors are not allowed (&r)");
	REJECT_EXACT("redis:\n  host: &h x\n", "t.yaml:2:9: anchors are not allowed (&h)");
	REJECT_EXACT("redis:\n  host: *h\n", "t.yaml:2:9: aliases are not allowed (*h)");
	REJECT_EXACT("redis:\n  port: !!int 5\n",
	             "t.yaml:2:9: tags are not allowed (tag:yaml.org,2002:int)");
	REJECT_EXACT("redis:\n  port: !local 1\n", "t.yaml:2:9: tags are not allowed (!local)");
	REJECT_EXACT("redis: !!map\n  port: 1\n",
	             "t.yaml:1:8: tags are not allowed (tag:yaml.org,2002:map)");
}

/* ---- values ---- */

static void test_rejects_ints_that_are_not_base10_numbers(void **state)
{
	static const char *const bad[] = {"12abc", "0x10",  "+5",  "1.5",
	                                  "1e3",   "1_000", "--5", "'  7'"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char yaml[128], want[128];
		snprintf(yaml, sizeof(yaml), "redis:\n  port: %s\n", bad[i]);
		const char *shown = bad[i][0] == '\'' ? "  7" : bad[i];
		snprintf(want, sizeof(want),
		         "t.yaml:2:9: redis.port: '%s' is not a whole base-10 number", shown);
		REJECT_STR(yaml, want);
	}
	REJECT_EXACT("redis:\n  port: ''\n",
	             "t.yaml:2:9: redis.port: '' is not a whole base-10 number");
	REJECT_EXACT("redis:\n  port:\n",
	             "t.yaml:2:8: redis.port: '' is not a whole base-10 number");
	REJECT_EXACT("redis:\n  port: \"80\\0\"\n",
	             "t.yaml:2:9: redis.port: value contains a NUL byte");
}

static void test_rejects_ints_out_of_range(void **state)
{
	REJECT_EXACT("redis:\n  port: 0\n", "t.yaml:2:9: redis.port: 0 is out of range [1, 65535]");
	REJECT_EXACT("redis:\n  port: 65536\n",
	             "t.yaml:2:9: redis.port: 65536 is out of range [1, 65535]");
	REJECT_EXACT("redis:\n  port: 99999999999999999999\n",
	             "t.yaml:2:9: redis.port: 99999999999999999999 is out of range [1, 65535]");
	REJECT_EXACT("chat:\n  max_text_bytes: -0\n",
	             "t.yaml:2:19: chat.max_text_bytes: -0 is out of range [1, 65536]");
}

/* Every INT option: min and max load, min-1 and max+1 are refused with the range. */
static void test_int_bounds_of_every_option(void **state)
{
	for (size_t i = 0; i < NOPTS; i++) {
		const struct topt *o = &topts[i];
		if (o->type != T_INT)
			continue;
		char yaml[512], want[256], val[64], line[256];
		for (int k = 0; k < 2; k++) {
			long long v = k ? o->max : o->min;
			snprintf(val, sizeof(val), "%lld", v);
			build_doc(yaml, sizeof(yaml), o->name, val);
			omr_config_t *cfg = ACCEPT(yaml);
			dump_line(cfg, o->name, line, sizeof(line));
			snprintf(want, sizeof(want), "%s = %lld", o->name, v);
			assert_string_equal(line, want);
			omr_config_destroy(&cfg);

			v = k ? v + 1 : v - 1;
			snprintf(val, sizeof(val), "%lld", v);
			build_doc(yaml, sizeof(yaml), o->name, val);
			snprintf(want, sizeof(want),
			         "t.yaml:2:%d: %s: %lld is out of range [%lld, %lld]",
			         value_column(o->name), o->name, v, (long long)o->min,
			         (long long)o->max);
			REJECT_STR(yaml, want);
		}
	}
}

/* Every STR option: max bytes load, one more does not; below min does not. */
/* Options that must be given together (the loader's pair rule). */
static const char *paired_with(const char *name)
{
	if (strcmp(name, "websocket.tls_cert") == 0)
		return "websocket.tls_key";
	if (strcmp(name, "websocket.tls_key") == 0)
		return "websocket.tls_cert";
	return NULL;
}

static void test_tls_files_come_in_pairs(void **state)
{
	omr_config_t *cfg = ACCEPT("websocket:\n  tls_cert: /etc/c.pem\n  tls_key: /etc/k.pem\n");
	assert_string_equal(cfg->ws_tls_cert, "/etc/c.pem");
	assert_string_equal(cfg->ws_tls_key, "/etc/k.pem");
	omr_config_destroy(&cfg);
	REJECT("websocket:\n  tls_key: /etc/k.pem\n",
	       "t.yaml:2:12: websocket.tls_key needs websocket.tls_cert too");
}

static void test_str_bounds_of_every_option(void **state)
{
	static char val[8192], yaml[9000], want[512];
	for (size_t i = 0; i < NOPTS; i++) {
		const struct topt *o = &topts[i];
		if (o->type != T_STR)
			continue;
		assert_true(o->max + 3 < (int64_t)sizeof(val));
		size_t len = (size_t)o->max;
		val[0] = '"';
		memset(val + 1, 'a', len + 1);
		memcpy(val + 1 + len, "\"", 2);
		build_doc(yaml, sizeof(yaml), o->name, val);
		if (has_syntax(o->name)) {
			/* Long enough to pass the length check, so the syntax is what fails. */
			snprintf(want, sizeof(want), "t.yaml:2:%d: %s: 'aaaa",
			         value_column(o->name), o->name);
			REJECT_STR(yaml, want);
		} else if (paired_with(o->name)) {
			/* Alone it is refused for its missing partner, at its value. */
			snprintf(want, sizeof(want), "t.yaml:2:%d: %s needs %s too",
			         value_column(o->name), o->name, paired_with(o->name));
			REJECT_STR(yaml, want);
		} else {
			omr_config_t *cfg = ACCEPT(yaml);
			omr_config_destroy(&cfg);
		}

		memcpy(val + 1 + len, "a\"", 3);
		build_doc(yaml, sizeof(yaml), o->name, val);
		snprintf(want, sizeof(want),
		         "t.yaml:2:%d: %s: value is %zu bytes, the maximum is %lld",
		         value_column(o->name), o->name, len + 1, (long long)o->max);
		REJECT_STR(yaml, want);

		if (o->min == 0)
			continue;
		len = (size_t)o->min - 1;
		memcpy(val + 1 + len, "\"", 2);
		build_doc(yaml, sizeof(yaml), o->name, val);
		if (len == 0)
			snprintf(want, sizeof(want), "t.yaml:2:%d: %s: must not be empty",
			         value_column(o->name), o->name);
		else
			snprintf(want, sizeof(want),
			         "t.yaml:2:%d: %s: value is %zu bytes, the minimum is %lld",
			         value_column(o->name), o->name, len, (long long)o->min);
		REJECT_STR(yaml, want);
	}
}

static void test_rejects_bad_strings(void **state)
{
	REJECT_EXACT("redis:\n  host: \"\"\n", "t.yaml:2:9: redis.host: must not be empty");
	REJECT_EXACT("routing:\n  default_language: e\n",
	             "t.yaml:2:21: routing.default_language: value is 1 bytes, the minimum is 2");
	REJECT_EXACT("redis:\n  host: \"a\\0b\"\n",
	             "t.yaml:2:9: redis.host: value contains a NUL byte");
	REJECT_EXACT("redis:\n  host: \"a\\rb\"\n",
	             "t.yaml:2:9: redis.host: value contains a line break (CR or LF)");
	REJECT_EXACT("redis:\n  host: \"a\\nb\"\n",
	             "t.yaml:2:9: redis.host: value contains a line break (CR or LF)");
	REJECT_EXACT("redis:\n  host: |\n    a\n    b\n",
	             "t.yaml:2:9: redis.host: value contains a line break (CR or LF)");
	/* libyaml refuses surrogate escapes itself; the message still has the position. */
	REJECT("redis:\n  host: \"\\ud800\"\n",
	       "t.yaml:2:12: found invalid Unicode character escape code");
	/* The password is never echoed. */
	omr_config_t *cfg = NULL;
	char err[256];
	const char *pw = "redis:\n  password: \"hunter2\\n\"\n";
	assert_int_equal(omr_config_load_string(pw, strlen(pw), "t.yaml", &cfg, err, sizeof(err)),
	                 -EINVAL);
	assert_null(strstr(err, "hunter2"));
	/* Valid multi-byte UTF-8 is fine. */
	cfg = ACCEPT("websocket:\n  static_dir: \"caf\xc3\xa9-\xe2\x82\xac-\xf0\x9f\x98\x80\"\n");
	assert_string_equal(cfg->ws_static_dir, "caf\xc3\xa9-\xe2\x82\xac-\xf0\x9f\x98\x80");
	omr_config_destroy(&cfg);
}

static void test_levels(void **state)
{
	static const char *const names[] = {"debug", "info", "warn", "error"};
	for (size_t i = 0; i < 4; i++) {
		char yaml[64];
		snprintf(yaml, sizeof(yaml), "log:\n  level: %s\n", names[i]);
		omr_config_t *cfg = ACCEPT(yaml);
		assert_int_equal(cfg->log_level, (int)i);
		omr_config_destroy(&cfg);
	}
	REJECT_EXACT(
	        "log:\n  level: verbose\n",
	        "t.yaml:2:10: log.level: 'verbose' is not a log level (debug, info, warn, error)");
	REJECT_EXACT(
	        "log:\n  level: INFO\n",
	        "t.yaml:2:10: log.level: 'INFO' is not a log level (debug, info, warn, error)");
	REJECT_EXACT("log:\n  level: 1\n",
	             "t.yaml:2:10: log.level: '1' is not a log level (debug, info, warn, error)");
}

/* Table-driven, so it runs as soon as the table has a BOOL option. */
static void test_bools_of_every_option(void **state)
{
	bool any = false;
	for (size_t i = 0; i < NOPTS; i++) {
		const struct topt *o = &topts[i];
		if (o->type != T_BOOL)
			continue;
		any = true;
		static const char *const good[] = {"true", "yes", "on", "false", "no", "off"};
		char yaml[256], want[256], line[256];
		for (size_t k = 0; k < 6; k++) {
			build_doc(yaml, sizeof(yaml), o->name, good[k]);
			omr_config_t *cfg = ACCEPT(yaml);
			dump_line(cfg, o->name, line, sizeof(line));
			snprintf(want, sizeof(want), "%s = %s", o->name, k < 3 ? "true" : "false");
			assert_string_equal(line, want);
			omr_config_destroy(&cfg);
		}
		static const char *const bad[] = {"maybe", "1", "True", "y"};
		for (size_t k = 0; k < 4; k++) {
			build_doc(yaml, sizeof(yaml), o->name, bad[k]);
			snprintf(want, sizeof(want),
			         "t.yaml:2:%d: %s: '%s' is not a boolean (true/false, yes/no, "
			         "on/off)",
			         value_column(o->name), o->name, bad[k]);
			REJECT_STR(yaml, want);
		}
	}
	if (!any)
		skip(); /* config_options.h has no BOOL option yet */
}

/* ---- cross-field rules ---- */

static void test_cross_field_rules(void **state)
{
	/* Only one of the pair given: reported there. */
	REJECT_EXACT("redis:\n  reconnect_min_ms: 9000\n",
	             "t.yaml:2:21: redis.reconnect_min_ms (9000) must not be greater than "
	             "redis.reconnect_max_ms (5000)");
	REJECT_EXACT("redis:\n  ping_timeout_ms: 500\n",
	             "t.yaml:2:20: redis.ping_interval_ms (1000) must not be greater than "
	             "redis.ping_timeout_ms (500)");
	/* Both given: reported at the later one. */
	REJECT_EXACT("redis:\n  reconnect_max_ms: 50\n  reconnect_min_ms: 60\n",
	             "t.yaml:3:21: redis.reconnect_min_ms (60) must not be greater than "
	             "redis.reconnect_max_ms (50)");
	REJECT_EXACT("redis:\n  reconnect_min_ms: 60\n  reconnect_max_ms: 50\n",
	             "t.yaml:3:21: redis.reconnect_min_ms (60) must not be greater than "
	             "redis.reconnect_max_ms (50)");
	/* The whole file is read before the cross-field rules: a later error wins. */
	REJECT_EXACT("redis:\n  ping_timeout_ms: 500\nlog: {}\nredis2: 1\n",
	             "t.yaml:4:1: unknown section 'redis2' (did you mean 'redis'?)");
	/* The longest chat text must fit in a websocket frame and in a bus envelope. */
	REJECT_EXACT("chat:\n  max_text_bytes: 65536\n",
	             "t.yaml:2:19: 2 x chat.max_text_bytes + 256 (131328) must not be greater than "
	             "websocket.max_frame_bytes (16384): a message of the longest text must fit in "
	             "one websocket frame");
	REJECT_EXACT("websocket:\n  max_frame_bytes: 131328\nchat:\n  max_text_bytes: 65536\n",
	             "t.yaml:4:19: 1 x chat.max_text_bytes + 4096 (69632) must not be greater than "
	             "bus.max_frame_bytes (65536): an envelope with the longest text must fit on "
	             "the bus");
	omr_config_t *big = ACCEPT("websocket:\n  max_frame_bytes: 131328\nchat:\n"
	                           "  max_text_bytes: 65536\nbus:\n  max_frame_bytes: 69632\n");
	omr_config_destroy(&big);
	/* An instance ticks well within the silence after which the others take
	 * it for stopped (heartbeat_timeout_s + 10 s), and is back from a Redis
	 * outage within half of it. */
	REJECT_EXACT("routing:\n  heartbeat_timeout_s: 3\n  tick_ms: 1700\n",
	             "t.yaml:3:12: routing.tick_ms (1700) must be at most an eighth of "
	             "routing.heartbeat_timeout_s + 10 s, 1625 ms: an instance silent that long is "
	             "taken for stopped");
	REJECT_EXACT("routing:\n  tick_ms: 5000\n  heartbeat_timeout_s: 20\n",
	             "t.yaml:3:24: routing.tick_ms (5000) must be at most an eighth of "
	             "routing.heartbeat_timeout_s + 10 s, 3750 ms: an instance silent that long is "
	             "taken for stopped");
	REJECT_EXACT(
	        "redis:\n  reconnect_max_ms: 20000\n",
	        "t.yaml:2:21: redis.reconnect_max_ms + routing.tick_ms (20200) must be at most "
	        "half of routing.heartbeat_timeout_s + 10 s, 20000 ms: an instance back from a "
	        "Redis outage later than that is taken for stopped");
	omr_config_t *ticks = ACCEPT("routing:\n  heartbeat_timeout_s: 3\n  tick_ms: 1625\n"
	                             "redis:\n  reconnect_max_ms: 4875\n");
	omr_config_destroy(&ticks);
	ticks = ACCEPT("routing:\n  tick_ms: 10000\n  heartbeat_timeout_s: 70\n");
	omr_config_destroy(&ticks);
	ticks = ACCEPT("redis:\n  reconnect_max_ms: 19800\n");
	omr_config_destroy(&ticks);
	/* Equal is fine. */
	omr_config_t *cfg = ACCEPT("redis:\n  ping_interval_ms: 2000\n  ping_timeout_ms: 2000\n"
	                           "  reconnect_min_ms: 700\n  reconnect_max_ms: 700\n");
	assert_int_equal(cfg->redis_ping_timeout_ms, 2000);
	assert_int_equal(cfg->redis_reconnect_max_ms, 700);
	omr_config_destroy(&cfg);
}

/* ---- errors, files ---- */

static void test_error_buffer_and_out_on_failure(void **state)
{
	omr_config_t *keep = omr_config_new_defaults();
	omr_config_t *out = keep;
	char err[10];
	assert_int_equal(
	        omr_config_load_string("redis:\n  port: 0\n", 17, "t.yaml", &out, err, sizeof(err)),
	        -EINVAL);
	assert_ptr_equal(out, keep); /* untouched on failure */
	assert_string_equal(err, "t.yaml:2:");
	assert_int_equal(omr_config_load_string("redis:\n  port: 0\n", 17, "t.yaml", &out, NULL, 0),
	                 -EINVAL);
	assert_ptr_equal(out, keep);
	omr_config_destroy(&keep);
}

static void write_file(const char *path, const char *data, size_t len)
{
	FILE *f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

static void test_load_files(void **state)
{
	omr_config_t *cfg = NULL;
	char err[512], want[512];

	assert_int_equal(omr_config_load("/nonexistent-omr/x.yaml", &cfg, err, sizeof(err)),
	                 -ENOENT);
	assert_string_equal(err, "/nonexistent-omr/x.yaml: cannot open: No such file or directory");
	assert_int_equal(omr_config_load(OMR_SOURCE_DIR "/config", &cfg, err, sizeof(err)),
	                 -EISDIR);
	assert_string_equal(err, OMR_SOURCE_DIR "/config: cannot read: Is a directory");
	assert_null(cfg);

	/* mkstemp wants the name to end in six capital X. */
	char path[] = "/tmp/omr-test-config-______";
	memset(path + sizeof(path) - 7, 'X', 6);
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	close(fd);

	write_file(path, "redis:\n  hots: x\n", 17);
	assert_int_equal(omr_config_load(path, &cfg, err, sizeof(err)), -EINVAL);
	snprintf(want, sizeof(want), "%s:2:3: unknown option 'redis.hots'", path);
	assert_memory_equal(err, want, strlen(want));
	assert_null(cfg);

	write_file(path, "redis:\n  port: 6390\n", 20);
	assert_int_equal(omr_config_load(path, &cfg, err, sizeof(err)), 0);
	assert_int_equal(cfg->redis_port, 6390);
	assert_string_equal(cfg->path, path);
	omr_config_destroy(&cfg);

	/* A file over the 1 MiB cap is refused before parsing. */
	size_t big = 1024 * 1024 + 1;
	char *junk = malloc(big);
	assert_non_null(junk);
	memset(junk, '#', big);
	write_file(path, junk, big);
	free(junk);
	assert_int_equal(omr_config_load(path, &cfg, err, sizeof(err)), -EFBIG);
	snprintf(want, sizeof(want), "%s: larger than 1048576 bytes", path);
	assert_string_equal(err, want);
	assert_null(cfg);
	unlink(path);
}

/* chat.identity_secret: empty (verification off) or 16..256 bytes; never echoed, masked in
 * dumps, reloadable (a new key applies without a restart). */
static void test_identity_secret(void **state)
{
	REJECT_EXACT("chat:\n  identity_secret: \"fifteen-bytes!!\"\n",
	             "t.yaml:2:20: chat.identity_secret: value is 15 bytes: give at least 16, or "
	             "\"\" to turn verification off");
	char err[256];
	omr_config_t *bad = NULL;
	const char *shortk = "chat:\n  identity_secret: hunter2\n";
	assert_int_equal(
	        omr_config_load_string(shortk, strlen(shortk), "t.yaml", &bad, err, sizeof(err)),
	        -EINVAL);
	assert_null(strstr(err, "hunter2"));

	omr_config_t *off = ACCEPT("chat:\n  identity_secret: \"\"\n");
	omr_config_t *on = ACCEPT("chat:\n  identity_secret: \"sixteen-bytes-ok\"\n");
	assert_string_equal(off->chat_identity_secret, "");
	assert_string_equal(on->chat_identity_secret, "sixteen-bytes-ok");
	char out[64];
	assert_int_equal(omr_config_diff_static(off, on, out, sizeof(out)), 0);

	char line[256];
	dump_line(on, "chat.identity_secret", line, sizeof(line));
	assert_string_equal(line, "chat.identity_secret = \"********\"");
	dump_line(off, "chat.identity_secret", line, sizeof(line));
	assert_string_equal(line, "chat.identity_secret = \"\"");
	omr_config_destroy(&off);
	omr_config_destroy(&on);
}

/* ---- diff_static, dump ---- */

static void test_diff_static(void **state)
{
	omr_config_t *a = omr_config_new_defaults();
	omr_config_t *b = ACCEPT("log:\n  level: debug\n"
	                         "redis:\n  port: 6380\n  ping_interval_ms: 2000\n  password: x\n"
	                         "chat:\n  max_messages: 20\n");
	char out[256];
	assert_int_equal(omr_config_diff_static(a, b, out, sizeof(out)), 2);
	assert_string_equal(out, "redis.port, redis.password");
	assert_int_equal(omr_config_diff_static(b, a, out, sizeof(out)), 2);

	/* Only reloadable options differ: nothing to report. */
	omr_config_t *c = ACCEPT("log:\n  level: error\nchat:\n  max_messages: 20\n");
	assert_int_equal(omr_config_diff_static(a, c, out, sizeof(out)), 0);
	assert_string_equal(out, "");
	assert_int_equal(omr_config_diff_static(a, a, out, sizeof(out)), 0);

	/* A short buffer is cut and terminated; the count is still right. */
	char small[8];
	assert_int_equal(omr_config_diff_static(a, b, small, sizeof(small)), 2);
	assert_string_equal(small, "redis.p");
	assert_int_equal(omr_config_diff_static(a, b, NULL, 0), 2);

	omr_config_destroy(&a);
	omr_config_destroy(&b);
	omr_config_destroy(&c);
}

static void test_dump(void **state)
{
	omr_config_t *cfg = ACCEPT("redis:\n  password: \"s3cr3t-pw\"\n  port: 6381\n"
	                           "websocket:\n  static_dir: 'say \"hi\"'\n");
	static char dump[64 * 1024];
	assert_int_equal(omr_config_dump(cfg, dump, sizeof(dump)), 0);
	assert_null(strstr(dump, "s3cr3t"));
	assert_non_null(strstr(dump, "\nredis.password = \"********\"\n"));
	assert_non_null(strstr(dump, "\nredis.port = 6381\n"));
	assert_non_null(strstr(dump, "\nredis.host = \"127.0.0.1\"\n"));
	assert_non_null(strstr(dump, "\nwebsocket.static_dir = \"say \\\"hi\\\"\"\n"));
	assert_int_equal(strncmp(dump, "log.level = info\n", 17), 0);

	/* One line per option, in table order, then one per queue (here the implicit one). */
	const char *l = dump;
	for (size_t i = 0; i < NOPTS; i++) {
		size_t n = strlen(topts[i].name);
		assert_int_equal(strncmp(l, topts[i].name, n), 0);
		assert_int_equal(strncmp(l + n, " = ", 3), 0);
		l = strchr(l, '\n') + 1;
	}
	assert_string_equal(l, "queues[0] = name=default tenants=[] channels=[] languages=[] "
	                       "skills={} attributes={} strategy=least_loaded priority=0 "
	                       "min_proficiency=1 max_wait_s=0 max_wait_action=close "
	                       "offer_timeout_s=30 auto_accept=true wrapup_s=0 sticky_window_s=0 "
	                       "steps=[]\n");

	/* An empty password is shown as empty, so "no AUTH" is visible. */
	omr_config_t *def = omr_config_new_defaults();
	char line[256];
	dump_line(def, "redis.password", line, sizeof(line));
	assert_string_equal(line, "redis.password = \"\"");

	char small[32];
	assert_int_equal(omr_config_dump(cfg, small, sizeof(small)), -ENOSPC);
	assert_int_equal(strlen(small), sizeof(small) - 1);
	assert_int_equal(omr_config_dump(cfg, NULL, 0), -ENOSPC);
	omr_config_destroy(&def);
	omr_config_destroy(&cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_table_names_are_unique_and_well_formed),
	        cmocka_unit_test(test_defaults_are_within_their_ranges),
	        cmocka_unit_test(test_new_defaults),
	        cmocka_unit_test(test_empty_documents_give_defaults),
	        cmocka_unit_test(test_values_are_loaded),
	        cmocka_unit_test(test_redis_username),
	        cmocka_unit_test(test_length_bounds_the_input),
	        cmocka_unit_test(test_rejects_yaml_syntax_errors),
	        cmocka_unit_test(test_rejects_bad_bytes),
	        cmocka_unit_test(test_rejects_wrong_shapes),
	        cmocka_unit_test(test_rejects_unknown_names),
	        cmocka_unit_test(test_rejects_duplicates),
	        cmocka_unit_test(test_rejects_anchors_aliases_and_tags),
	        cmocka_unit_test(test_rejects_ints_that_are_not_base10_numbers),
	        cmocka_unit_test(test_rejects_ints_out_of_range),
	        cmocka_unit_test(test_int_bounds_of_every_option),
	        cmocka_unit_test(test_str_bounds_of_every_option),
	        cmocka_unit_test(test_tls_files_come_in_pairs),
	        cmocka_unit_test(test_rejects_bad_strings),
	        cmocka_unit_test(test_levels),
	        cmocka_unit_test(test_bools_of_every_option),
	        cmocka_unit_test(test_cross_field_rules),
	        cmocka_unit_test(test_error_buffer_and_out_on_failure),
	        cmocka_unit_test(test_load_files),
	        cmocka_unit_test(test_identity_secret),
	        cmocka_unit_test(test_diff_static),
	        cmocka_unit_test(test_dump),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
