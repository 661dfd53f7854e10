/* test_config_example.c - the shipped config/omnirouter.yaml: it loads with every option
 * at its default, and documents every option (a comment saying what it does, its range or
 * length, whether SIGHUP reloads it). Single-threaded. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>

#include <yaml.h>

#include "config_test.h"

/* Its options are the defaults (its queues are not: test_config_queues.c checks those). */
static void test_example_loads_with_default_values(void **state)
{
	omr_config_t *cfg = load_example();
	assert_defaults(cfg);
	assert_string_equal(cfg->path, EXAMPLE);
	omr_config_destroy(&cfg);
}

static char *read_all(const char *path)
{
	FILE *f = fopen(path, "rb");
	assert_non_null(f);
	static char buf[256 * 1024];
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	assert_true(n < sizeof(buf) - 1);
	fclose(f);
	buf[n] = '\0';
	return buf;
}

/* The comment lines directly above line `line` (0-based), joined; *described counts the
 * letters in those of them that are not the "Range: ... SIGHUP: ..." line. */
static void comment_above(const char *text, size_t line, char *out, size_t outsize,
                          size_t *described)
{
	const char *starts[4096];
	size_t count = 0;
	for (const char *p = text; *p && count < 4096; p = strchr(p, '\n') + 1) {
		starts[count++] = p;
		if (!strchr(p, '\n'))
			break;
	}
	assert_true(line < count);
	size_t first = line;
	while (first > 0) {
		const char *p = starts[first - 1];
		while (*p == ' ')
			p++;
		if (*p != '#')
			break;
		first--;
	}
	*described = 0;
	for (size_t l = first; l < line; l++) {
		size_t n = (size_t)(starts[l + 1] - starts[l]);
		if (memmem(starts[l], n, "SIGHUP:", 7))
			continue;
		for (size_t k = 0; k < n; k++)
			*described += isalpha((unsigned char)starts[l][k]) ? 1 : 0;
	}
	size_t len = (size_t)(starts[line] - starts[first]);
	assert_true(len < outsize);
	memcpy(out, starts[first], len);
	out[len] = '\0';
}

/* Parses the example with libyaml and records the line of each option's key. A sequence (the
 * queues) is skipped whole: it holds no options. */
static void collect_example_keys(const char *text, size_t key_line[], bool found[])
{
	yaml_parser_t parser;
	assert_true(yaml_parser_initialize(&parser));
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, strlen(text));
	bool expect_key[4] = {false};
	int depth = 0, skip = 0;
	char section[64] = "", name[128];
	for (bool done = false; !done;) {
		yaml_event_t ev;
		assert_true(yaml_parser_parse(&parser, &ev));
		if (skip > 0 || ev.type == YAML_SEQUENCE_START_EVENT) {
			if (ev.type == YAML_SEQUENCE_START_EVENT ||
			    ev.type == YAML_MAPPING_START_EVENT)
				skip++;
			else if ((ev.type == YAML_SEQUENCE_END_EVENT ||
			          ev.type == YAML_MAPPING_END_EVENT) &&
			         --skip == 0)
				expect_key[depth] = true; /* the sequence was a value */
		} else if (ev.type == YAML_MAPPING_START_EVENT) {
			assert_true(++depth < 4);
			expect_key[depth] = true;
		} else if (ev.type == YAML_MAPPING_END_EVENT) {
			if (--depth > 0)
				expect_key[depth] = true; /* the mapping was a value */
		} else if (ev.type == YAML_SCALAR_EVENT && !expect_key[depth]) {
			expect_key[depth] = true;
		} else if (ev.type == YAML_SCALAR_EVENT) {
			expect_key[depth] = false;
			const char *v = (const char *)ev.data.scalar.value;
			if (depth == 1)
				snprintf(section, sizeof(section), "%s", v);
			snprintf(name, sizeof(name), "%s.%s", section, v);
			const struct topt *o = depth == 2 ? topt_find(name) : NULL;
			if (depth == 2 && !o)
				print_error("example has unknown option %s\n", name);
			assert_true(depth != 2 || o);
			if (o) {
				assert_false(found[o - topts]);
				found[o - topts] = true;
				key_line[o - topts] = ev.start_mark.line;
			}
		} else if (ev.type == YAML_STREAM_END_EVENT) {
			done = true;
		}
		yaml_event_delete(&ev);
	}
	yaml_parser_delete(&parser);
}

/* Every option is in the example (found by parsing it), under a comment that states its
 * purpose, its range and whether SIGHUP reloads it, as the table says. */
static void test_example_documents_every_option(void **state)
{
	const char *text = read_all(EXAMPLE);
	size_t key_line[NOPTS];
	bool found[NOPTS] = {false};
	collect_example_keys(text, key_line, found);

	for (size_t i = 0; i < NOPTS; i++) {
		if (!found[i])
			print_error("config/omnirouter.yaml lacks %s\n", topts[i].name);
		assert_true(found[i]);
		char comment[2048], want[128];
		size_t described;
		comment_above(text, key_line[i], comment, sizeof(comment), &described);
		if (described < 10)
			print_error("%s: needs a comment saying what it does\n", topts[i].name);
		assert_true(described >= 10);
		switch (topts[i].type) {
		case T_INT:
			snprintf(want, sizeof(want), "Range: %lld..%lld.", (long long)topts[i].min,
			         (long long)topts[i].max);
			break;
		case T_STR:
			snprintf(want, sizeof(want), "Length: %lld..%lld bytes.",
			         (long long)topts[i].min, (long long)topts[i].max);
			break;
		case T_BOOL:
			snprintf(want, sizeof(want), "true or false");
			break;
		case T_LEVEL:
			snprintf(want, sizeof(want), "One of: debug, info, warn, error.");
			break;
		}
		const char *reload = topts[i].reloadable ? "SIGHUP: reloaded."
		                                         : "SIGHUP: not reloaded; needs a restart.";
		if (!strstr(comment, want) || !strstr(comment, reload))
			print_error("%s: comment lacks '%s' or '%s':\n%s", topts[i].name, want,
			            reload, comment);
		assert_non_null(strstr(comment, want));
		assert_non_null(strstr(comment, reload));
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_example_loads_with_default_values),
	        cmocka_unit_test(test_example_documents_every_option),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
