/* config.h - the daemon's configuration: loaded from YAML, validated against
 * the table in config_options.h (each option declared once there).
 * Loading does no I/O but reading the file. Immutable once loaded: a reload
 * loads a new one and swaps it in; a failed reload keeps the old one. */
#ifndef OMNIROUTER_CONFIG_H
#define OMNIROUTER_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "omnirouter/log.h"

typedef struct omr_config {
#define OMR_OPT_INT(field) int64_t field;
#define OMR_OPT_BOOL(field) bool field;
#define OMR_OPT_STR(field) char *field;
#define OMR_OPT_LEVEL(field) omr_log_level_t field;
#define OMR_OPT(type, field, path, def, min, max, reload, help) OMR_OPT_##type(field)
#include "omnirouter/config_options.h"
#undef OMR_OPT
#undef OMR_OPT_INT
#undef OMR_OPT_BOOL
#undef OMR_OPT_STR
#undef OMR_OPT_LEVEL
	char *path; /* file it was loaded from (copy) */
} omr_config_t;

/* A config with every option at its default. NULL on ENOMEM. */
omr_config_t *omr_config_new_defaults(void);

/* Loads path over the defaults. Returns 0 and *out, or a negative errno and
 * writes "path:line:column: reason" into err (always NUL-terminated when
 * errlen > 0). Rejects unknown sections and keys, wrong types, values out of
 * range, duplicate keys, and anything but a mapping of mappings of scalars. */
int omr_config_load(const char *path, omr_config_t **out, char *err, size_t errlen);

/* Same, from a string; `name` stands for the file name in errors. */
int omr_config_load_string(const char *yaml, size_t len, const char *name, omr_config_t **out,
                           char *err, size_t errlen);

void omr_config_destroy(omr_config_t **cfgp);

/* Names the options that differ between a and b and are not reloadable;
 * writes them comma-separated into out. Returns how many. */
size_t omr_config_diff_static(const omr_config_t *a, const omr_config_t *b, char *out,
                              size_t outsize);

/* Writes every option as "path = value" lines (secrets masked) to out;
 * used by --check-config -v and tests. Returns 0 or -ENOSPC. */
int omr_config_dump(const omr_config_t *cfg, char *out, size_t outsize);

#endif
