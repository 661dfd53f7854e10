/* log.c - stderr logger: one write(2) per line so threads never interleave.
 * Any thread. */
#include "omnirouter/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static _Atomic int log_level = OMR_LOG_INFO;
static const char *const level_names[] = {"debug", "info", "warn", "error"};

void omr_log_set_level(omr_log_level_t level)
{
	atomic_store(&log_level, (int)level);
}

omr_log_level_t omr_log_get_level(void)
{
	return (omr_log_level_t)atomic_load(&log_level);
}

bool omr_log_enabled(omr_log_level_t level)
{
	return (int)level >= atomic_load(&log_level);
}

int omr_log_level_parse(const char *name, omr_log_level_t *out)
{
	for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
		if (name && strcmp(name, level_names[i]) == 0) {
			*out = (omr_log_level_t)i;
			return 0;
		}
	}
	return -EINVAL;
}

void omr_log(omr_log_level_t level, const char *module, const char *fmt, ...)
{
	if (!omr_log_enabled(level))
		return;
	char line[2048];
	int n = snprintf(line, sizeof(line), "%s %s: ", level_names[level], module);
	if (n < 0)
		return;
	size_t used = (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1;
	va_list ap;
	va_start(ap, fmt);
	int m = vsnprintf(line + used, sizeof(line) - used, fmt, ap);
	va_end(ap);
	if (m < 0)
		return;
	used += (size_t)m < sizeof(line) - used ? (size_t)m : sizeof(line) - used - 1;
	for (size_t i = 0; i < used; i++) {
		if (line[i] == '\n' || line[i] == '\r')
			line[i] = ' ';
	}
	line[used++] = '\n';
	ssize_t w;
	do {
		w = write(STDERR_FILENO, line, used);
	} while (w < 0 && errno == EINTR);
}
