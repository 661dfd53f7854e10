/* config_test.h - what the configuration loader's unit tests share
 * (test_config.c, test_config_example.c, test_config_queues.c): the option
 * table as the tests see it, and loading a document that must be accepted or
 * refused, or the shipped example. Each file names its REJECT macros. */
#ifndef OMR_CONFIG_TEST_H
#define OMR_CONFIG_TEST_H

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "omnirouter/config.h"

/* The option table as the test sees it: the same X-macro config.c expands, so nothing here
 * repeats an option, and a new option is covered by the table-driven tests below. */
enum topt_type { T_INT, T_BOOL, T_STR, T_LEVEL };
struct topt {
	const char *name;
	enum topt_type type;
	int64_t min, max;
	bool reloadable;
};
#define OMR_OPT(type, field, path, def, min, max, reload, help) {path, T_##type, min, max, reload},
static const struct topt topts[] __attribute__((unused)) = {
#include "omnirouter/config_options.h"
};
#undef OMR_OPT
#define NOPTS (sizeof(topts) / sizeof(topts[0]))

static inline const struct topt *topt_find(const char *name)
{
	for (size_t i = 0; i < NOPTS; i++) {
		if (strcmp(topts[i].name, name) == 0)
			return &topts[i];
	}
	return NULL;
}

/* Every field equals its default in config_options.h. */
static inline void assert_defaults(const omr_config_t *cfg)
{
	omr_log_level_t lvl;
	assert_non_null(cfg);
#define CHECK_INT(f, d) assert_int_equal(cfg->f, (d));
#define CHECK_BOOL(f, d) assert_int_equal(cfg->f, (d) ? 1 : 0);
#define CHECK_STR(f, d)                                                                            \
	assert_non_null(cfg->f);                                                                   \
	assert_string_equal(cfg->f, (d));
#define CHECK_LEVEL(f, d)                                                                          \
	assert_int_equal(omr_log_level_parse((d), &lvl), 0);                                       \
	assert_int_equal(cfg->f, lvl);
#define OMR_OPT(type, field, path, def, min, max, reload, help) CHECK_##type(field, def)
#include "omnirouter/config_options.h"
#undef OMR_OPT
#undef CHECK_INT
#undef CHECK_BOOL
#undef CHECK_STR
#undef CHECK_LEVEL
}

static inline void reject_at(const char *yaml, size_t len, const char *want, bool exact,
                             const char *file, int line)
{
	omr_config_t *cfg = NULL;
	char err[512] = "(untouched)";
	int rc = omr_config_load_string(yaml, len, "t.yaml", &cfg, err, sizeof(err));
	bool match = exact ? strcmp(err, want) == 0 : strncmp(err, want, strlen(want)) == 0;
	if (rc != -EINVAL || cfg != NULL || !match) {
		print_error("%s:%d: rc=%d\n  got:  %s\n  want: %s%s\n", file, line, rc, err, want,
		            exact ? "" : "...");
		omr_config_destroy(&cfg);
		fail();
	}
}

static inline omr_config_t *accept_at(const char *yaml, size_t len, const char *file, int line)
{
	omr_config_t *cfg = NULL;
	char err[512] = "";
	int rc = omr_config_load_string(yaml, len, "t.yaml", &cfg, err, sizeof(err));
	if (rc != 0 || !cfg) {
		print_error("%s:%d: rc=%d err=%s\n  yaml: %.300s\n", file, line, rc, err, yaml);
		fail();
	}
	return cfg;
}

#define ACCEPT(yaml) accept_at(yaml, strlen(yaml), __FILE__, __LINE__)

#define EXAMPLE OMR_SOURCE_DIR "/config/omnirouter.yaml"

/* The shipped config/omnirouter.yaml, which must load. */
static inline omr_config_t *load_example(void)
{
	omr_config_t *cfg = NULL;
	char err[512] = "";
	int rc = omr_config_load(EXAMPLE, &cfg, err, sizeof(err));
	if (rc != 0)
		print_error("%s\n", err);
	assert_int_equal(rc, 0);
	return cfg;
}

#endif
