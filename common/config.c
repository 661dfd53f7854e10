/* config.c - loads the YAML configuration file into an omr_config_t and checks every value
 * against the option table in config_options.h (the only place options are declared).
 * Reads libyaml events through the cursor of config_cursor.c, so every error names the line
 * and column of the node at fault. The queues section is loaded by config_queues.c; dumps
 * and diffs are written by config_dump.c.
 * Owns the strings of the configs it returns. No shared state: runs on whichever thread loads
 * (the main thread, at start-up and on SIGHUP). */
#include "omnirouter/config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>

#include <yaml.h>

#include "config_int.h"
#include "omnirouter/channel.h"  /* omr_language_primary */
#include "omnirouter/envelope.h" /* omr_utf8_is_valid, omr_channel_from_name */
#include "omnirouter/error.h"
#include "omnirouter/util.h"

/* A config file is a few kilobytes; anything this large is a mistake (or /dev/zero). */
#define CONFIG_MAX_BYTES (1024 * 1024)

#define OPT_DEF_INT(d) .def_num = (d)
#define OPT_DEF_BOOL(d) .def_num = (d)
#define OPT_DEF_STR(d) .def_str = (d)
#define OPT_DEF_LEVEL(d) .def_str = (d)
#define OMR_OPT(type_, field_, name_, def_, min_, max_, reload_, help_)                            \
	{.name = name_,                                                                            \
	 .type = OMR_CFG_##type_,                                                                  \
	 .offset = offsetof(omr_config_t, field_),                                                 \
	 OPT_DEF_##type_(def_),                                                                    \
	 .min = (min_),                                                                            \
	 .max = (max_),                                                                            \
	 .reloadable = (reload_),                                                                  \
	 .help = (help_)},
const omr_cfg_opt_t omr_cfg_opts[OMR_CFG_NOPTS] = {
#include "omnirouter/config_options.h"
};
#undef OMR_OPT
#undef OPT_DEF_INT
#undef OPT_DEF_BOOL
#undef OPT_DEF_STR
#undef OPT_DEF_LEVEL

#define OPT_COUNT ((size_t)OMR_CFG_NOPTS)
static const omr_cfg_opt_t *const opts = omr_cfg_opts;

/* Pairs where times x the first + plus must not be greater than the second; why (or "") is
 * said after the numbers. */
static const struct {
	size_t lo, hi;
	int64_t times, plus;
	const char *why;
} order_rules[] = {
        {offsetof(omr_config_t, redis_reconnect_min_ms),
         offsetof(omr_config_t, redis_reconnect_max_ms), 1, 0, ""},
        {offsetof(omr_config_t, redis_ping_interval_ms),
         offsetof(omr_config_t, redis_ping_timeout_ms), 1, 0, ""},
        /* the longest text, every byte escaped (a quote, a line break) as JSON does */
        {offsetof(omr_config_t, chat_max_text_bytes), offsetof(omr_config_t, ws_max_frame_bytes), 2,
         256, ": a message of the longest text must fit in one websocket frame"},
        /* the longest text, with the ids and names an envelope carries with it */
        {offsetof(omr_config_t, chat_max_text_bytes), offsetof(omr_config_t, bus_max_frame_bytes),
         1, 4096, ": an envelope with the longest text must fit on the bus"},
};

static void *opt_ptr(omr_config_t *cfg, const omr_cfg_opt_t *o)
{
	return (char *)cfg + o->offset;
}

size_t omr_cfg_section_len(const char *name)
{
	const char *dot = strchr(name, '.');
	return dot ? (size_t)(dot - name) : strlen(name);
}

/* ---- defaults, destroy ---- */

omr_config_t *omr_config_new_defaults(void)
{
	omr_config_t *cfg = calloc(1, sizeof(*cfg));
	if (!cfg)
		return NULL;
	for (size_t i = 0; i < OPT_COUNT; i++) {
		const omr_cfg_opt_t *o = &opts[i];
		void *p = opt_ptr(cfg, o);
		switch (o->type) {
		case OMR_CFG_INT:
			*(int64_t *)p = o->def_num;
			break;
		case OMR_CFG_BOOL:
			*(bool *)p = o->def_num != 0;
			break;
		case OMR_CFG_STR:
			*(char **)p = strdup(o->def_str);
			if (!*(char **)p) {
				omr_config_destroy(&cfg);
				return NULL;
			}
			break;
		case OMR_CFG_LEVEL:
			/* A bad default is a defect in config_options.h; test_config catches it. */
			if (omr_log_level_parse(o->def_str, (omr_log_level_t *)p) != 0)
				abort();
			break;
		}
	}
	if (omr_cfg_queues_init_default(cfg) != 0)
		omr_config_destroy(&cfg);
	return cfg;
}

void omr_config_destroy(omr_config_t **cfgp)
{
	if (!cfgp || !*cfgp)
		return;
	omr_config_t *cfg = *cfgp;
	for (size_t i = 0; i < OPT_COUNT; i++) {
		if (opts[i].type == OMR_CFG_STR)
			free(*(char **)opt_ptr(cfg, &opts[i]));
	}
	free(cfg->path);
	omr_cfg_queues_free(cfg->queues, cfg->n_queues);
	free(cfg);
	*cfgp = NULL;
}

/* ---- the loader ---- */

typedef struct loader {
	omr_cfg_cursor_t cur;
	omr_config_t *cfg;
	bool seen[OPT_COUNT];            /* option given in this file */
	yaml_mark_t key_mark[OPT_COUNT]; /* where its key is */
	yaml_mark_t val_mark[OPT_COUNT]; /* where its value is */
	bool sec_seen[OPT_COUNT];        /* indexed by the section's first option */
	yaml_mark_t sec_mark[OPT_COUNT];
	omr_cfg_qstate_t queues;
} loader_t;

static const char *ev_text(const yaml_event_t *ev)
{
	return (const char *)ev->data.scalar.value;
}

/* ---- names and suggestions ---- */

/* Index of the first option in section s[0..len), or OPT_COUNT. */
static size_t section_find(const char *s, size_t len)
{
	for (size_t i = 0; i < OPT_COUNT; i++) {
		if (omr_cfg_section_len(opts[i].name) == len && memcmp(opts[i].name, s, len) == 0)
			return i;
	}
	return OPT_COUNT;
}

/* Index of option sec.key (sec is any "section.x" name), or OPT_COUNT. */
static size_t option_find(const char *sec, const char *key, size_t keylen)
{
	size_t slen = omr_cfg_section_len(sec);
	for (size_t i = 0; i < OPT_COUNT; i++) {
		const char *n = opts[i].name;
		if (omr_cfg_section_len(n) == slen && memcmp(n, sec, slen) == 0 &&
		    strlen(n + slen + 1) == keylen && memcmp(n + slen + 1, key, keylen) == 0)
			return i;
	}
	return OPT_COUNT;
}

static const char *suggest_section(const char *s, size_t len)
{
	if (omr_cfg_is_close(s, len, "queues", 6))
		return "queues";
	for (size_t i = 0; i < OPT_COUNT; i++) {
		if (section_find(opts[i].name, omr_cfg_section_len(opts[i].name)) == i &&
		    omr_cfg_is_close(s, len, opts[i].name, omr_cfg_section_len(opts[i].name)))
			return opts[i].name;
	}
	return NULL;
}

/* A near miss in the same section, else the same key in another section. */
static const omr_cfg_opt_t *suggest_option(const char *sec, const char *key, size_t keylen)
{
	size_t slen = omr_cfg_section_len(sec);
	for (size_t i = 0; i < OPT_COUNT; i++) {
		const char *n = opts[i].name;
		if (omr_cfg_section_len(n) == slen && memcmp(n, sec, slen) == 0 &&
		    omr_cfg_is_close(key, keylen, n + slen + 1, strlen(n + slen + 1)))
			return &opts[i];
	}
	for (size_t i = 0; i < OPT_COUNT; i++) {
		const char *k = opts[i].name + omr_cfg_section_len(opts[i].name) + 1;
		if (strlen(k) == keylen && memcmp(k, key, keylen) == 0)
			return &opts[i];
	}
	return NULL;
}

static int fail_unknown_section(loader_t *ld)
{
	const char *s = ev_text(&ld->cur.ev);
	size_t len = ld->cur.ev.data.scalar.length;
	char buf[OMR_CFG_SUGGEST_MAX + 8];
	const char *hint = suggest_section(s, len);
	if (hint)
		return omr_cfg_fail_at(&ld->cur, ld->cur.ev.start_mark,
		                       "unknown section '%s' (did you mean '%.*s'?)",
		                       omr_cfg_echo(buf, sizeof(buf), s, len),
		                       (int)omr_cfg_section_len(hint), hint);
	return omr_cfg_fail_at(&ld->cur, ld->cur.ev.start_mark, "unknown section '%s'",
	                       omr_cfg_echo(buf, sizeof(buf), s, len));
}

static int fail_unknown_option(loader_t *ld, const char *sec)
{
	const char *key = ev_text(&ld->cur.ev);
	size_t keylen = ld->cur.ev.data.scalar.length;
	int slen = (int)omr_cfg_section_len(sec);
	char buf[OMR_CFG_SUGGEST_MAX + 8];
	const omr_cfg_opt_t *hint = suggest_option(sec, key, keylen);
	if (hint)
		return omr_cfg_fail_at(&ld->cur, ld->cur.ev.start_mark,
		                       "unknown option '%.*s.%s' (did you mean '%s'?)", slen, sec,
		                       omr_cfg_echo(buf, sizeof(buf), key, keylen), hint->name);
	return omr_cfg_fail_at(&ld->cur, ld->cur.ev.start_mark, "unknown option '%.*s.%s'", slen,
	                       sec, omr_cfg_echo(buf, sizeof(buf), key, keylen));
}

/* ---- values ---- */

static int set_int(loader_t *ld, const omr_cfg_opt_t *o, const char *s, size_t len)
{
	char buf[48];
	int64_t v;
	int rc = omr_parse_int(s, o->min, o->max, &v);
	if (rc == -ERANGE)
		return omr_cfg_fail_at(&ld->cur, ld->cur.ev.start_mark,
		                       "%s: %s is out of range [%" PRId64 ", %" PRId64 "]", o->name,
		                       omr_cfg_echo(buf, sizeof(buf), s, len), o->min, o->max);
	if (rc < 0)
		return omr_cfg_fail_at(&ld->cur, ld->cur.ev.start_mark,
		                       "%s: '%s' is not a whole base-10 number", o->name,
		                       omr_cfg_echo(buf, sizeof(buf), s, len));
	*(int64_t *)opt_ptr(ld->cfg, o) = v;
	return 0;
}

static int set_bool(loader_t *ld, const omr_cfg_opt_t *o, const char *s, size_t len)
{
	char buf[48];
	if (omr_cfg_parse_bool(s, (bool *)opt_ptr(ld->cfg, o)) == 0)
		return 0;
	return omr_cfg_fail_at(&ld->cur, ld->cur.ev.start_mark,
	                       "%s: '%s' is not a boolean (true/false, yes/no, on/off)", o->name,
	                       omr_cfg_echo(buf, sizeof(buf), s, len));
}

static int set_level(loader_t *ld, const omr_cfg_opt_t *o, const char *s, size_t len)
{
	char buf[48];
	if (omr_log_level_parse(s, (omr_log_level_t *)opt_ptr(ld->cfg, o)) == 0)
		return 0;
	return omr_cfg_fail_at(&ld->cur, ld->cur.ev.start_mark,
	                       "%s: '%s' is not a log level (debug, info, warn, error)", o->name,
	                       omr_cfg_echo(buf, sizeof(buf), s, len));
}

/* routing.group goes into every Redis key as the hash tag of "omr:{GROUP}": a brace or a
 * space would change which part Redis Cluster hashes, or break the key. */
static int check_id(const char *s, size_t len, char *why, size_t whylen)
{
	char buf[OMR_CFG_SUGGEST_MAX + 8];
	if (omr_id_is_valid(s, len))
		return 0;
	snprintf(why, whylen, "'%s' is not an id (A-Z a-z 0-9 . _ : @ -)",
	         omr_cfg_echo(buf, sizeof(buf), s, len));
	return -EINVAL;
}

/* One channel name in s[0..len) or OMR_CHANNEL_NONE, with the reason in why. */
static omr_channel_t blocking_channel(const char *s, size_t len, char *why, size_t whylen)
{
	char buf[OMR_CFG_SUGGEST_MAX + 8];
	omr_channel_t ch = omr_channel_from_name(s, len);
	if (ch == OMR_CHANNEL_NONE && len == 0)
		snprintf(why, whylen, "a channel name is missing");
	else if (ch == OMR_CHANNEL_NONE)
		snprintf(why, whylen, "'%s' is not a channel (chat, email, voice)",
		         omr_cfg_echo(buf, sizeof(buf), s, len));
	return ch;
}

/* "A:B,C;D:E": an agent holding a conversation on A gets no new B or C. */
static int check_group(const char *g, size_t len, bool *has_group, char *why, size_t whylen)
{
	char buf[OMR_CFG_SUGGEST_MAX + 8];
	const char *colon = memchr(g, ':', len);
	if (!colon) {
		snprintf(why, whylen, "'%s' is not CHANNEL:CHANNEL[,CHANNEL...]",
		         omr_cfg_echo(buf, sizeof(buf), g, len));
		return -EINVAL;
	}
	omr_channel_t a = blocking_channel(g, (size_t)(colon - g), why, whylen);
	if (a == OMR_CHANNEL_NONE)
		return -EINVAL;
	if (has_group[a]) {
		snprintf(why, whylen, "'%s' starts two groups", omr_channel_name(a));
		return -EINVAL;
	}
	has_group[a] = true;
	bool listed[OMR_CHANNEL_COUNT] = {false};
	const char *p = colon + 1, *end = g + len;
	for (;;) {
		const char *comma = memchr(p, ',', (size_t)(end - p));
		const char *iend = comma ? comma : end;
		omr_channel_t b = blocking_channel(p, (size_t)(iend - p), why, whylen);
		if (b == OMR_CHANNEL_NONE)
			return -EINVAL;
		if (b == a) {
			snprintf(why, whylen, "'%s' cannot block itself", omr_channel_name(a));
			return -EINVAL;
		}
		if (listed[b]) {
			snprintf(why, whylen, "'%s' is listed twice after '%s:'",
			         omr_channel_name(b), omr_channel_name(a));
			return -EINVAL;
		}
		listed[b] = true;
		if (!comma)
			return 0;
		p = comma + 1;
	}
}

/* Checked here, not where it is used: a typo would otherwise leave agents on a call being
 * offered chats, with nothing in the logs. */
static int check_blocking(const char *s, size_t len, char *why, size_t whylen)
{
	bool has_group[OMR_CHANNEL_COUNT] = {false};
	if (len == 0) /* nothing blocks */
		return 0;
	const char *p = s, *end = s + len;
	for (;;) {
		const char *semi = memchr(p, ';', (size_t)(end - p));
		const char *gend = semi ? semi : end;
		if (gend == p) {
			snprintf(why, whylen, "empty group (';' at an end or twice in a row)");
			return -EINVAL;
		}
		if (check_group(p, (size_t)(gend - p), has_group, why, whylen) != 0)
			return -EINVAL;
		if (!semi)
			return 0;
		p = semi + 1;
	}
}

/* A key shorter than this is guessable offline from one signature the page shows; 16 bytes
 * of random text (32 hex digits is better) is the floor. Never echoes the value. */
#define IDENTITY_SECRET_MIN 16

static int check_identity_secret(const char *s, size_t len, char *why, size_t whylen)
{
	if (len == 0 || len >= IDENTITY_SECRET_MIN)
		return 0;
	snprintf(why, whylen,
	         "value is %zu bytes: give at least %d, or \"\" to turn verification off", len,
	         IDENTITY_SECRET_MIN);
	return -EINVAL;
}

/* A language tag the router can reduce to its primary subtag ("es-MX" -> "es"). */
static int check_language(const char *s, size_t len, char *why, size_t whylen)
{
	char buf[OMR_CFG_SUGGEST_MAX + 8], primary[16];
	if (omr_language_primary(s, primary, sizeof(primary)) == 0)
		return 0;
	snprintf(why, whylen, "'%s' is not a language tag (such as en, es-MX, pt-BR)",
	         omr_cfg_echo(buf, sizeof(buf), s, len));
	return -EINVAL;
}

static bool is_ip_address(const char *s)
{
	struct in6_addr a6;
	struct in_addr a4;
	return inet_pton(AF_INET, s, &a4) == 1 || inet_pton(AF_INET6, s, &a6) == 1;
}

/* A numeric IPv4 or IPv6 address: libwebsockets takes anything else for an interface name
 * and, when there is none, listens nowhere while the daemon reports ready. */
static int check_listen(const char *s, size_t len, char *why, size_t whylen)
{
	char buf[OMR_CFG_SUGGEST_MAX + 8];
	if (is_ip_address(s))
		return 0;
	snprintf(why, whylen,
	         "'%s' is not an IP address (such as 127.0.0.1, 0.0.0.0 or ::1; host names are "
	         "not resolved)",
	         omr_cfg_echo(buf, sizeof(buf), s, len));
	return -EINVAL;
}

/* An instance name begins every desktop session ("NAME-RANDOM:CONN") that notifications carry
 * between '|'s: an id, or empty for the host name. */
static int check_instance_name(const char *s, size_t len, char *why, size_t whylen)
{
	return len == 0 ? 0 : check_id(s, len, why, whylen);
}

/* Redis refuses an ACL user name with a space in it (ACL SETUSER), so such a name could only
 * fail AUTH at every connect. */
static int check_redis_username(const char *s, size_t len, char *why, size_t whylen)
{
	if (!memchr(s, ' ', len))
		return 0;
	snprintf(why, whylen, "Redis ACL user names cannot contain a space");
	return -EINVAL;
}

/* The router binds it and the adapters connect to it, so it must work both ways: inproc://NAME,
 * ipc://PATH (at most 107 bytes, a unix socket's limit) or tcp://IPV4:PORT (not "*", which zmq
 * binds but cannot connect to; no host names, which it does not resolve for a bind; no IPv6,
 * which the bus sockets do not enable). Checked here: the daemon would only fail at start,
 * without a line number. */
static int check_endpoint(const char *s, size_t len, char *why, size_t whylen)
{
	char buf[OMR_CFG_SUGGEST_MAX + 8], host[64];
	struct in_addr a4;
	if ((strncmp(s, "inproc://", 9) == 0 && len > 9) ||
	    (strncmp(s, "ipc://", 6) == 0 && len > 6 && len - 6 <= 107))
		return 0;
	if (strncmp(s, "tcp://", 6) == 0) {
		const char *h = s + 6, *colon = strrchr(h, ':');
		char *end = NULL;
		long port = colon ? strtol(colon + 1, &end, 10) : 0;
		size_t n = colon ? (size_t)(colon - h) : 0;
		if (colon && n > 0 && n < sizeof(host) && end && end != colon + 1 && *end == '\0' &&
		    port >= 1 && port <= 65535) {
			memcpy(host, h, n);
			host[n] = '\0';
			if (inet_pton(AF_INET, host, &a4) == 1)
				return 0;
		}
	}
	snprintf(why, whylen,
	         "'%s' is not inproc://NAME, ipc://PATH (up to 107 bytes) or tcp://IPV4:PORT (such "
	         "as tcp://127.0.0.1:5555; not *, a host name or IPv6)",
	         omr_cfg_echo(buf, sizeof(buf), s, len));
	return -EINVAL;
}

/* String options with a syntax of their own, checked once the generic rules pass. */
static const struct {
	size_t offset;
	int (*check)(const char *s, size_t len, char *why, size_t whylen);
} str_checks[] = {
        {offsetof(omr_config_t, routing_group), check_id},
        {offsetof(omr_config_t, routing_tenant), check_id},
        {offsetof(omr_config_t, routing_default_language), check_language},
        {offsetof(omr_config_t, ws_listen), check_listen},
        {offsetof(omr_config_t, routing_blocking_channels), check_blocking},
        {offsetof(omr_config_t, chat_identity_secret), check_identity_secret},
        {offsetof(omr_config_t, instance_name), check_instance_name},
        {offsetof(omr_config_t, bus_endpoint), check_endpoint},
        {offsetof(omr_config_t, redis_username), check_redis_username},
};

/* Strings end up in logs, Redis keys and URLs: one line of valid UTF-8. Never echoed (but by
 * the syntax checks above), since one of them is a password. */
static int set_str(loader_t *ld, const omr_cfg_opt_t *o, const char *s, size_t len)
{
	yaml_mark_t m = ld->cur.ev.start_mark;
	if (memchr(s, '\r', len) || memchr(s, '\n', len))
		return omr_cfg_fail_at(&ld->cur, m, "%s: value contains a line break (CR or LF)",
		                       o->name);
	if (!omr_utf8_is_valid(s, len))
		return omr_cfg_fail_at(&ld->cur, m, "%s: value is not valid UTF-8", o->name);
	if ((uint64_t)len > (uint64_t)o->max)
		return omr_cfg_fail_at(&ld->cur, m,
		                       "%s: value is %zu bytes, the maximum is %" PRId64, o->name,
		                       len, o->max);
	if ((int64_t)len < o->min) {
		if (len == 0)
			return omr_cfg_fail_at(&ld->cur, m, "%s: must not be empty", o->name);
		return omr_cfg_fail_at(&ld->cur, m,
		                       "%s: value is %zu bytes, the minimum is %" PRId64, o->name,
		                       len, o->min);
	}
	for (size_t i = 0; i < sizeof(str_checks) / sizeof(str_checks[0]); i++) {
		char why[160];
		if (str_checks[i].offset == o->offset &&
		    str_checks[i].check(s, len, why, sizeof(why)) != 0)
			return omr_cfg_fail_at(&ld->cur, m, "%s: %s", o->name, why);
	}
	char *copy = malloc(len + 1);
	if (!copy)
		return omr_cfg_nomem(&ld->cur);
	memcpy(copy, s, len);
	copy[len] = '\0';
	char **field = opt_ptr(ld->cfg, o);
	free(*field);
	*field = copy;
	return 0;
}

static int set_value(loader_t *ld, const omr_cfg_opt_t *o)
{
	const char *s = ev_text(&ld->cur.ev);
	size_t len = ld->cur.ev.data.scalar.length;
	/* libyaml's scalars are NUL-terminated, but "\0" in a quoted string puts one inside. */
	if (memchr(s, '\0', len))
		return omr_cfg_fail_at(&ld->cur, ld->cur.ev.start_mark,
		                       "%s: value contains a NUL byte", o->name);
	switch (o->type) {
	case OMR_CFG_INT:
		return set_int(ld, o, s, len);
	case OMR_CFG_BOOL:
		return set_bool(ld, o, s, len);
	case OMR_CFG_STR:
		return set_str(ld, o, s, len);
	case OMR_CFG_LEVEL:
		return set_level(ld, o, s, len);
	}
	return -EINVAL;
}

/* ---- structure ---- */

/* The options of one section; the current event is its MAPPING-START. */
static int load_options(loader_t *ld, size_t sec)
{
	const char *secname = opts[sec].name;
	for (;;) {
		int rc = omr_cfg_next(&ld->cur);
		if (rc < 0)
			return rc;
		if (ld->cur.ev.type == YAML_MAPPING_END_EVENT)
			return 0;
		if (ld->cur.ev.type != YAML_SCALAR_EVENT)
			return omr_cfg_fail_at(&ld->cur, ld->cur.ev.start_mark,
			                       "an option name must be a scalar, found %s",
			                       omr_cfg_node_kind(&ld->cur.ev));
		size_t i =
		        option_find(secname, ev_text(&ld->cur.ev), ld->cur.ev.data.scalar.length);
		if (i == OPT_COUNT)
			return fail_unknown_option(ld, secname);
		if (ld->seen[i])
			return omr_cfg_fail_at(&ld->cur, ld->cur.ev.start_mark,
			                       "duplicate option '%s' (first at line %zu)",
			                       opts[i].name, ld->key_mark[i].line + 1);
		ld->seen[i] = true;
		ld->key_mark[i] = ld->cur.ev.start_mark;

		if ((rc = omr_cfg_next(&ld->cur)) < 0)
			return rc;
		if (ld->cur.ev.type != YAML_SCALAR_EVENT)
			return omr_cfg_fail_at(&ld->cur, ld->cur.ev.start_mark,
			                       "%s: expected a scalar value, found %s",
			                       opts[i].name, omr_cfg_node_kind(&ld->cur.ev));
		ld->val_mark[i] = ld->cur.ev.start_mark;
		if ((rc = set_value(ld, &opts[i])) < 0)
			return rc;
	}
}

/* The sections; the current event is the root MAPPING-START. */
static int load_sections(loader_t *ld)
{
	for (;;) {
		int rc = omr_cfg_next(&ld->cur);
		if (rc < 0)
			return rc;
		if (ld->cur.ev.type == YAML_MAPPING_END_EVENT)
			return 0;
		if (ld->cur.ev.type != YAML_SCALAR_EVENT)
			return omr_cfg_fail_at(&ld->cur, ld->cur.ev.start_mark,
			                       "a section name must be a scalar, found %s",
			                       omr_cfg_node_kind(&ld->cur.ev));
		if (ld->cur.ev.data.scalar.length == 6 &&
		    memcmp(ev_text(&ld->cur.ev), "queues", 6) == 0) {
			if ((rc = omr_cfg_queues_load(&ld->cur, &ld->queues, ld->cfg)) < 0)
				return rc;
			continue;
		}
		size_t sec = section_find(ev_text(&ld->cur.ev), ld->cur.ev.data.scalar.length);
		if (sec == OPT_COUNT)
			return fail_unknown_section(ld);
		int slen = (int)omr_cfg_section_len(opts[sec].name);
		if (ld->sec_seen[sec])
			return omr_cfg_fail_at(&ld->cur, ld->cur.ev.start_mark,
			                       "duplicate section '%.*s' (first at line %zu)", slen,
			                       opts[sec].name, ld->sec_mark[sec].line + 1);
		ld->sec_seen[sec] = true;
		ld->sec_mark[sec] = ld->cur.ev.start_mark;

		if ((rc = omr_cfg_next(&ld->cur)) < 0)
			return rc;
		if (ld->cur.ev.type == YAML_MAPPING_START_EVENT)
			rc = load_options(ld, sec);
		else if (!omr_cfg_is_empty_scalar(&ld->cur.ev))
			rc = omr_cfg_fail_at(
			        &ld->cur, ld->cur.ev.start_mark,
			        "section '%.*s' must be a mapping of options, found %s", slen,
			        opts[sec].name, omr_cfg_node_kind(&ld->cur.ev));
		if (rc < 0)
			return rc;
	}
}

static int load_stream(loader_t *ld)
{
	int rc;
	if ((rc = omr_cfg_next(&ld->cur)) < 0 ||
	    (rc = omr_cfg_next(&ld->cur)) < 0) /* STREAM-START, then */
		return rc;
	if (ld->cur.ev.type == YAML_STREAM_END_EVENT) /* empty, or only comments */
		return 0;
	if ((rc = omr_cfg_next(&ld->cur)) < 0) /* the root node, after DOCUMENT-START */
		return rc;
	if (ld->cur.ev.type == YAML_MAPPING_START_EVENT)
		rc = load_sections(ld);
	else if (!omr_cfg_is_empty_scalar(&ld->cur.ev))
		rc = omr_cfg_fail_at(&ld->cur, ld->cur.ev.start_mark,
		                     "the document must be a mapping of sections, found %s",
		                     omr_cfg_node_kind(&ld->cur.ev));
	if (rc < 0)
		return rc;
	if ((rc = omr_cfg_next(&ld->cur)) < 0 ||
	    (rc = omr_cfg_next(&ld->cur)) < 0) /* DOCUMENT-END, then */
		return rc;
	if (ld->cur.ev.type != YAML_STREAM_END_EVENT)
		return omr_cfg_fail_at(&ld->cur, ld->cur.ev.start_mark,
		                       "only one YAML document is allowed");
	return 0;
}

static size_t opt_by_offset(size_t offset)
{
	for (size_t i = 0; i < OPT_COUNT; i++) {
		if (opts[i].offset == offset)
			return i;
	}
	abort(); /* order_rules names a field that is not in the table: a build defect */
}

/* Pairs of string options that are given together or not at all. */
static const struct {
	size_t a, b;
} pair_rules[] = {
        {offsetof(omr_config_t, ws_tls_cert), offsetof(omr_config_t, ws_tls_key)},
};

static int check_pair_rules(loader_t *ld)
{
	for (size_t r = 0; r < sizeof(pair_rules) / sizeof(pair_rules[0]); r++) {
		size_t ia = opt_by_offset(pair_rules[r].a), ib = opt_by_offset(pair_rules[r].b);
		const char *a = *(char *const *)omr_cfg_opt_cptr(ld->cfg, &opts[ia]);
		const char *b = *(char *const *)omr_cfg_opt_cptr(ld->cfg, &opts[ib]);
		if ((a[0] != '\0') == (b[0] != '\0'))
			continue;
		size_t given = a[0] ? ia : ib;
		return omr_cfg_fail_at(&ld->cur, ld->val_mark[given], "%s needs %s too",
		                       opts[given].name, opts[given == ia ? ib : ia].name);
	}
	return 0;
}

/* Whether cfg breaks order rule r; if so, msg says how. */
static bool order_broken(const omr_config_t *cfg, size_t r, char *msg, size_t msglen)
{
	const omr_cfg_opt_t *lo = &opts[opt_by_offset(order_rules[r].lo)];
	const omr_cfg_opt_t *hi = &opts[opt_by_offset(order_rules[r].hi)];
	int64_t a = *(const int64_t *)omr_cfg_opt_cptr(cfg, lo);
	int64_t b = *(const int64_t *)omr_cfg_opt_cptr(cfg, hi);
	int64_t need = order_rules[r].times * a + order_rules[r].plus;
	if (need <= b)
		return false;
	if (order_rules[r].times == 1 && order_rules[r].plus == 0)
		snprintf(msg, msglen,
		         "%s (%" PRId64 ") must not be greater than %s (%" PRId64 ")%s", lo->name,
		         a, hi->name, b, order_rules[r].why);
	else
		snprintf(msg, msglen,
		         "%" PRId64 " x %s + %" PRId64 " (%" PRId64
		         ") must not be greater than %s (%" PRId64 ")%s",
		         order_rules[r].times, lo->name, order_rules[r].plus, need, hi->name, b,
		         order_rules[r].why);
	return true;
}

/* Where the later of options at offsets a and b is given, or the top if neither is. */
static yaml_mark_t later_mark(const loader_t *ld, size_t a, size_t b)
{
	yaml_mark_t m = {0, 0, 0};
	bool found = false;
	for (size_t k = 0; k < 2; k++) {
		size_t i = opt_by_offset(k ? b : a);
		if (ld->seen[i] && (!found || ld->val_mark[i].index > m.index)) {
			m = ld->val_mark[i];
			found = true;
		}
	}
	return m;
}

static int check_order_rules(loader_t *ld)
{
	char msg[512];
	for (size_t r = 0; r < sizeof(order_rules) / sizeof(order_rules[0]); r++) {
		if (order_broken(ld->cfg, r, msg, sizeof(msg)))
			return omr_cfg_fail_at(&ld->cur,
			                       later_mark(ld, order_rules[r].lo, order_rules[r].hi),
			                       "%s", msg);
	}
	return 0;
}

/* An instance is taken for stopped once it has been silent for
 * routing.heartbeat_timeout_s + 10 s, and a pause of more than a third of
 * that in its own ticks, nobody else ticking, is how it knows Redis stalled
 * (docs/ROUTING.md, "Customers who leave"). So an instance ticks well within
 * it (an eighth: a tick skipped while the one before is in flight still
 * fits), and is back from a Redis outage within half of the silence. */
static int check_timing_rules(loader_t *ld)
{
	const omr_config_t *c = ld->cfg;
	long long silent = c->routing_heartbeat_timeout_s * 1000LL + 10000;
	size_t hb = offsetof(omr_config_t, routing_heartbeat_timeout_s);
	if (8LL * c->routing_tick_ms > silent)
		return omr_cfg_fail_at(&ld->cur,
		                       later_mark(ld, offsetof(omr_config_t, routing_tick_ms), hb),
		                       "routing.tick_ms (%lld) must be at most an eighth of "
		                       "routing.heartbeat_timeout_s + 10 s, %lld ms: an instance "
		                       "silent that long is taken for stopped",
		                       (long long)c->routing_tick_ms, silent / 8);
	long long back = (long long)c->redis_reconnect_max_ms + c->routing_tick_ms;
	if (2 * back > silent)
		return omr_cfg_fail_at(
		        &ld->cur,
		        later_mark(ld, offsetof(omr_config_t, redis_reconnect_max_ms), hb),
		        "redis.reconnect_max_ms + routing.tick_ms (%lld) must be at most half of "
		        "routing.heartbeat_timeout_s + 10 s, %lld ms: an instance back from a "
		        "Redis "
		        "outage later than that is taken for stopped",
		        back, silent / 2);
	return 0;
}

int omr_config_check_limits(const omr_config_t *cfg, char *err, size_t errlen)
{
	for (size_t r = 0; r < sizeof(order_rules) / sizeof(order_rules[0]); r++)
		if (order_broken(cfg, r, err, errlen))
			return -EINVAL;
	return 0;
}

int omr_config_load_string(const char *yaml, size_t len, const char *name, omr_config_t **out,
                           char *err, size_t errlen)
{
	if (errlen > 0)
		err[0] = '\0';
	if (!name)
		name = "<string>";
	if (!out || (!yaml && len > 0)) {
		omr_cfg_set_err(err, errlen, "%s: invalid arguments", name);
		return -EINVAL;
	}
	loader_t *ld = calloc(1, sizeof(*ld));
	if (!ld) {
		omr_cfg_set_err(err, errlen, "%s: out of memory", name);
		return -ENOMEM;
	}
	int rc = -ENOMEM;
	ld->cur.name = name;
	ld->cur.buf = (const unsigned char *)(yaml ? yaml : "");
	ld->cur.len = len;
	ld->cur.err = err;
	ld->cur.errlen = errlen;
	if (!(ld->cfg = omr_config_new_defaults()))
		goto out_free;
	if (!yaml_parser_initialize(&ld->cur.parser))
		goto out_cfg;
	yaml_parser_set_input_string(&ld->cur.parser, ld->cur.buf, len);
	rc = load_stream(ld);
	if (rc == 0)
		rc = omr_cfg_queues_check_refs(&ld->cur, &ld->queues, ld->cfg);
	if (rc == 0)
		rc = check_order_rules(ld);
	if (rc == 0)
		rc = check_timing_rules(ld);
	if (rc == 0)
		rc = check_pair_rules(ld);
	if (ld->cur.have_ev)
		yaml_event_delete(&ld->cur.ev);
	yaml_parser_delete(&ld->cur.parser);
	if (rc == 0) {
		*out = ld->cfg;
		ld->cfg = NULL;
	}
out_cfg:
	omr_config_destroy(&ld->cfg);
out_free:
	if (rc == -ENOMEM && errlen > 0 && err[0] == '\0')
		omr_cfg_set_err(err, errlen, "%s: out of memory", name);
	free(ld);
	return rc;
}

/* Reads all of path into *bufp (caller frees). */
static int read_file(const char *path, char **bufp, size_t *lenp, char *err, size_t errlen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		int rc = -errno;
		omr_cfg_set_err(err, errlen, "%s: cannot open: %s", path, omr_strerror(rc));
		return rc;
	}
	/* One byte over the limit tells a file that is too large from one that just fits. */
	size_t cap = 4096, len = 0;
	char *buf = malloc(cap);
	int rc = 0;
	while (buf) {
		if (len == cap) {
			size_t want =
			        cap * 2 > CONFIG_MAX_BYTES + 1 ? CONFIG_MAX_BYTES + 1 : cap * 2;
			char *bigger = realloc(buf, want);
			if (!bigger)
				break;
			buf = bigger;
			cap = want;
		}
		ssize_t n = read(fd, buf + len, cap - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = -errno;
			omr_cfg_set_err(err, errlen, "%s: cannot read: %s", path, omr_strerror(rc));
			break;
		}
		len += (size_t)n;
		if (len > CONFIG_MAX_BYTES) {
			rc = -EFBIG;
			omr_cfg_set_err(err, errlen, "%s: larger than %d bytes", path,
			                CONFIG_MAX_BYTES);
			break;
		}
		if (n == 0) {
			close(fd);
			*bufp = buf;
			*lenp = len;
			return 0;
		}
	}
	if (rc == 0) {
		rc = -ENOMEM;
		omr_cfg_set_err(err, errlen, "%s: out of memory", path);
	}
	free(buf);
	close(fd);
	return rc;
}

int omr_config_load(const char *path, omr_config_t **out, char *err, size_t errlen)
{
	if (errlen > 0)
		err[0] = '\0';
	if (!path || !out) {
		omr_cfg_set_err(err, errlen, "invalid arguments");
		return -EINVAL;
	}
	char *buf = NULL;
	size_t len = 0;
	int rc = read_file(path, &buf, &len, err, errlen);
	if (rc < 0)
		return rc;
	omr_config_t *cfg = NULL;
	rc = omr_config_load_string(buf, len, path, &cfg, err, errlen);
	free(buf);
	if (rc < 0)
		return rc;
	if (!(cfg->path = strdup(path))) {
		omr_config_destroy(&cfg);
		omr_cfg_set_err(err, errlen, "%s: out of memory", path);
		return -ENOMEM;
	}
	*out = cfg;
	return 0;
}
