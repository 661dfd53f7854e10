/* log.h - one line per event on stderr: "level module: message key=value".
 * journald adds the timestamp. Thread-safe: each line is one write(2).
 * Message bodies, tokens and customer addresses go at debug level only. */
#ifndef OMNIROUTER_LOG_H
#define OMNIROUTER_LOG_H

#include <stdbool.h>

typedef enum omr_log_level {
	OMR_LOG_DEBUG = 0,
	OMR_LOG_INFO,
	OMR_LOG_WARN,
	OMR_LOG_ERROR,
} omr_log_level_t;

/* Sets the minimum level written (any thread; takes effect at once). */
void omr_log_set_level(omr_log_level_t level);
omr_log_level_t omr_log_get_level(void);
bool omr_log_enabled(omr_log_level_t level);

/* Parses "debug", "info", "warn", "error". Returns 0 or -EINVAL. */
int omr_log_level_parse(const char *name, omr_log_level_t *out);

/* Writes one line; fmt is printf-like. Newlines in the result are replaced by
 * spaces so one event is always one line. */
void omr_log(omr_log_level_t level, const char *module, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

#define omr_debug(mod, ...) omr_log(OMR_LOG_DEBUG, mod, __VA_ARGS__)
#define omr_info(mod, ...) omr_log(OMR_LOG_INFO, mod, __VA_ARGS__)
#define omr_warn(mod, ...) omr_log(OMR_LOG_WARN, mod, __VA_ARGS__)
#define omr_error(mod, ...) omr_log(OMR_LOG_ERROR, mod, __VA_ARGS__)

#endif
