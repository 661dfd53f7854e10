/* envelope.c - the bus envelope and its msgpack codec.
 *
 * Encoding goes through msgpack-c's packer. Decoding does not use msgpack-c:
 * its unpacker has no limits (a 5-byte array32 header reserves 4 GB, trailing
 * bytes pass, duplicate keys pass), so frames from peers go through the small
 * bounds-checked reader below, which knows only the msgpack subset the
 * envelope uses and checks every declared length and count against the bytes
 * left and the limits in envelope.h before anything is allocated. The encoder
 * applies the same rules, so whatever encodes decodes. Rules and limits:
 * docs/ENVELOPE.md.
 *
 * No global state: any thread, on envelopes it owns. */
#include "omnirouter/envelope.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>

/* ---- names ------------------------------------------------------------ */

/* clang-format off */
static const char *const type_names[OMR_ENV_TYPE_COUNT] = {
	[OMR_ENV_NONE] = "none",
	[OMR_ENV_ACK] = "ack",
	[OMR_ENV_ADAPTER_HELLO] = "adapter.hello",
	[OMR_ENV_CONV_START] = "conv.start",
	[OMR_ENV_CONV_RESUME] = "conv.resume",
	[OMR_ENV_CONV_MESSAGE] = "conv.message",
	[OMR_ENV_CONV_CLOSE] = "conv.close",
	[OMR_ENV_CUSTOMER_GONE] = "customer.gone",
	[OMR_ENV_AGENT_LOGIN] = "agent.login",
	[OMR_ENV_AGENT_PRESENCE] = "agent.presence",
	[OMR_ENV_AGENT_ACK] = "agent.ack",
	[OMR_ENV_AGENT_GONE] = "agent.gone",
	[OMR_ENV_DELIVER] = "deliver",
	[OMR_ENV_OFFER_ACCEPT] = "offer.accept",
	[OMR_ENV_OFFER_REJECT] = "offer.reject",
	[OMR_ENV_WRAPUP_END] = "agent.wrapup_end",
	[OMR_ENV_CONV_RATE] = "conv.rate",
	[OMR_ENV_CONV_TYPING] = "conv.typing",
	[OMR_ENV_CONV_TRANSFER] = "conv.transfer",
	[OMR_ENV_CONV_HISTORY] = "conv.history",
	[OMR_ENV_AGENT_TEAM] = "agent.team",
	[OMR_ENV_CONV_MONITOR] = "conv.monitor",
};

static const char *const channel_names[OMR_CHANNEL_COUNT] = {
	[OMR_CHANNEL_NONE] = "none",
	[OMR_CHANNEL_CHAT] = "chat",
	[OMR_CHANNEL_EMAIL] = "email",
	[OMR_CHANNEL_VOICE] = "voice",
};

static const char *const role_names[OMR_ROLE_COUNT] = {
	[OMR_ROLE_NONE] = "none",
	[OMR_ROLE_CUSTOMER] = "customer",
	[OMR_ROLE_AGENT] = "agent",
	[OMR_ROLE_SYSTEM] = "system",
};
/* clang-format on */

/* Index 0 ("none") is never matched: it is what an unknown name maps to. */
static unsigned name_lookup(const char *const *names, unsigned count, const char *s, size_t len)
{
	if (!s)
		return 0;
	for (unsigned i = 1; i < count; i++) {
		if (strlen(names[i]) == len && memcmp(names[i], s, len) == 0)
			return i;
	}
	return 0;
}

const char *omr_env_type_name(omr_env_type_t type)
{
	return (unsigned)type < OMR_ENV_TYPE_COUNT ? type_names[type] : NULL;
}

const char *omr_channel_name(omr_channel_t ch)
{
	return (unsigned)ch < OMR_CHANNEL_COUNT ? channel_names[ch] : NULL;
}

const char *omr_role_name(omr_role_t role)
{
	return (unsigned)role < OMR_ROLE_COUNT ? role_names[role] : NULL;
}

omr_env_type_t omr_env_type_from_name(const char *name, size_t len)
{
	return (omr_env_type_t)name_lookup(type_names, OMR_ENV_TYPE_COUNT, name, len);
}

omr_channel_t omr_channel_from_name(const char *name, size_t len)
{
	return (omr_channel_t)name_lookup(channel_names, OMR_CHANNEL_COUNT, name, len);
}

omr_role_t omr_role_from_name(const char *name, size_t len)
{
	return (omr_role_t)name_lookup(role_names, OMR_ROLE_COUNT, name, len);
}

/* ---- UTF-8 -------------------------------------------------------------- */

/* RFC 3629 section 4: the second byte's range depends on the lead byte, which
 * is what excludes overlongs (E0, F0), surrogates (ED) and > U+10FFFF (F4). */
bool omr_utf8_is_valid(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;

	if (!s)
		return len == 0;
	while (i < len) {
		unsigned c = p[i], lo = 0x80, hi = 0xbf;
		size_t n;

		if (c == 0)
			return false;
		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf)
			n = 1;
		else if (c >= 0xe0 && c <= 0xef)
			n = 2, lo = c == 0xe0 ? 0xa0 : 0x80, hi = c == 0xed ? 0x9f : 0xbf;
		else if (c >= 0xf0 && c <= 0xf4)
			n = 3, lo = c == 0xf0 ? 0x90 : 0x80, hi = c == 0xf4 ? 0x8f : 0xbf;
		else
			return false;
		if (len - i - 1 < n || p[i + 1] < lo || p[i + 1] > hi)
			return false;
		for (size_t k = 2; k <= n; k++) {
			if ((p[i + k] & 0xc0) != 0x80)
				return false;
		}
		i += n + 1;
	}
	return true;
}

/* ---- field table -------------------------------------------------------- */

enum kind { K_VERSION, K_TYPE, K_U64, K_STATUS, K_CHANNEL, K_ROLE, K_STR, K_ATTRS, K_SKILLS };

/* The decoder's *why names the field, so each rule carries its own static
 * messages, built by string-literal concatenation. */
struct msgs {
	const char *type, *toolong, *empty, *nul, *utf8, *ctrl, *range;
};

/* clang-format off */
#define MSGS(label)                                                                            \
	{                                                                                      \
		"wrong type for " label, "string too long for " label, "empty string for " label,  \
			"NUL in " label, "invalid UTF-8 in " label, "control character in " label, \
			"value out of range for " label                                            \
	}

struct str_rule {
	size_t max;       /* bytes; SIZE_MAX = only the frame limits it */
	bool allow_empty; /* attr values only: the rest are omitted when empty */
	bool allow_ctrl;  /* C0 controls and DEL (text, attr values) */
	struct msgs m;
};

#define ID_RULE(k) { OMR_ENV_ID_MAX, false, false, MSGS("field " k) }
#define NAME_RULE(k) { OMR_ENV_NAME_MAX, false, false, MSGS("field " k) }
#define TEXT_RULE(k) { SIZE_MAX, false, true, MSGS("field " k) }
#define NO_RULE(k) { 0, false, false, MSGS("field " k) }
/* clang-format on */

struct field {
	const char *key;
	size_t klen;
	enum kind kind;
	size_t off; /* offset of the member (u64 and string kinds) */
	struct str_rule rule;
};

/* clang-format off */
#define F(k, kind, member, rule) \
	{ k, sizeof(k) - 1, kind, offsetof(omr_envelope_t, member), rule(k) }

/* Wire order. v, type and id come first and are always present. */
static const struct field fields[] = {
	F("v", K_VERSION, v, NO_RULE),
	F("type", K_TYPE, type, NO_RULE),
	F("id", K_U64, id, NO_RULE),
	F("re", K_U64, re, NO_RULE),
	F("conn", K_U64, conn, NO_RULE),
	F("ts", K_U64, ts_ms, NO_RULE),
	F("status", K_STATUS, status, NO_RULE),
	F("ch", K_CHANNEL, channel, NO_RULE),
	F("from", K_ROLE, from, NO_RULE),
	F("tenant", K_STR, tenant, ID_RULE),
	F("conv", K_STR, conv, ID_RULE),
	F("agent", K_STR, agent, ID_RULE),
	F("customer", K_STR, customer, ID_RULE),
	F("lang", K_STR, lang, ID_RULE),
	F("msgid", K_STR, msgid, ID_RULE),
	F("token", K_STR, token, ID_RULE),
	F("seq", K_STR, seq, ID_RULE),
	F("presence", K_STR, presence, ID_RULE),
	F("event", K_STR, event, NAME_RULE),
	F("name", K_STR, name, NAME_RULE),
	F("reason", K_STR, reason, NAME_RULE),
	F("text", K_STR, text, TEXT_RULE),
	F("attrs", K_ATTRS, attrs, NO_RULE),
	F("skills", K_SKILLS, skills, NO_RULE),
};
/* clang-format on */

#define N_FIELDS (sizeof(fields) / sizeof(fields[0]))
enum { I_V = 0, I_TYPE = 1, I_ID = 2 };

static const struct str_rule attr_key_rule = {OMR_ENV_ATTR_KEY_MAX, false, false, MSGS("attr key")};
static const struct str_rule attr_value_rule = {OMR_ENV_ATTR_VALUE_MAX, true, true,
                                                MSGS("attr value")};
static const struct str_rule skill_rule = {OMR_ENV_ID_MAX, false, false, MSGS("skill")};

static char **str_member(const omr_envelope_t *env, const struct field *f)
{
	return (char **)((char *)env + f->off);
}

static uint64_t *u64_member(const omr_envelope_t *env, const struct field *f)
{
	return (uint64_t *)((char *)env + f->off);
}

/* Shared by encoder and decoder so both apply, and name, the same rule. */
static const char *str_check(const struct str_rule *r, const char *s, size_t len)
{
	if (len > r->max)
		return r->m.toolong;
	if (len == 0 && !r->allow_empty)
		return r->m.empty;
	if (memchr(s, 0, len))
		return r->m.nul;
	if (!omr_utf8_is_valid(s, len))
		return r->m.utf8;
	if (!r->allow_ctrl) {
		for (size_t i = 0; i < len; i++) {
			if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
				return r->m.ctrl;
		}
	}
	return NULL;
}

static size_t frame_limit(size_t frame_max)
{
	if (frame_max == 0)
		return OMR_ENV_FRAME_MAX_DEFAULT;
	return frame_max > OMR_ENV_FRAME_MAX_LIMIT ? OMR_ENV_FRAME_MAX_LIMIT : frame_max;
}

static int fail(const char **why, int rc, const char *msg)
{
	if (why)
		*why = msg;
	return rc;
}

/* ---- envelope object ---------------------------------------------------- */

omr_envelope_t *omr_envelope_new(omr_env_type_t type)
{
	omr_envelope_t *env = calloc(1, sizeof(*env));

	if (!env)
		return NULL;
	env->v = OMR_ENVELOPE_VERSION;
	env->type = type;
	return env;
}

void omr_envelope_destroy(omr_envelope_t **envp)
{
	omr_envelope_t *env;

	if (!envp || !*envp)
		return;
	env = *envp;
	for (size_t i = 0; i < N_FIELDS; i++) {
		if (fields[i].kind == K_STR)
			free(*str_member(env, &fields[i]));
	}
	for (size_t i = 0; i < env->n_attrs; i++) {
		free(env->attrs[i].key);
		free(env->attrs[i].value);
	}
	free(env->attrs);
	for (size_t i = 0; i < env->n_skills; i++)
		free(env->skills[i]);
	free(env->skills);
	free(env);
	*envp = NULL;
}

static char *dup_n(const char *s, size_t len)
{
	char *c = malloc(len + 1);

	if (!c)
		return NULL;
	memcpy(c, s, len);
	c[len] = '\0';
	return c;
}

int omr_envelope_setn(char **field, const char *value, size_t len)
{
	char *c = NULL;

	if (!field)
		return -EINVAL;
	if (value && !(c = dup_n(value, len)))
		return -ENOMEM;
	free(*field); /* after the copy: value may be *field itself */
	*field = c;
	return 0;
}

int omr_envelope_set(char **field, const char *value)
{
	return omr_envelope_setn(field, value, value ? strlen(value) : 0);
}

int omr_envelope_add_attr(omr_envelope_t *env, const char *key, const char *value)
{
	omr_env_attr_t *a;
	char *k, *v;

	if (!env || !key || !value)
		return -EINVAL;
	if (env->n_attrs >= OMR_ENV_ATTRS_MAX)
		return -E2BIG;
	a = realloc(env->attrs, (env->n_attrs + 1) * sizeof(*a));
	if (!a)
		return -ENOMEM;
	env->attrs = a;
	k = dup_n(key, strlen(key));
	v = dup_n(value, strlen(value));
	if (!k || !v) {
		free(k);
		free(v);
		return -ENOMEM;
	}
	a[env->n_attrs].key = k;
	a[env->n_attrs].value = v;
	env->n_attrs++;
	return 0;
}

const char *omr_envelope_attr(const omr_envelope_t *env, const char *key)
{
	if (!env || !key)
		return NULL;
	for (size_t i = 0; i < env->n_attrs; i++) {
		if (env->attrs[i].key && strcmp(env->attrs[i].key, key) == 0)
			return env->attrs[i].value;
	}
	return NULL;
}

int omr_envelope_add_skill(omr_envelope_t *env, const char *skill)
{
	char **s, *c;

	if (!env || !skill)
		return -EINVAL;
	if (env->n_skills >= OMR_ENV_SKILLS_MAX)
		return -E2BIG;
	s = realloc(env->skills, (env->n_skills + 1) * sizeof(*s));
	if (!s)
		return -ENOMEM;
	env->skills = s;
	if (!(c = dup_n(skill, strlen(skill))))
		return -ENOMEM;
	s[env->n_skills++] = c;
	return 0;
}

/* ---- encoder ------------------------------------------------------------ */

static bool field_present(const omr_envelope_t *env, const struct field *f)
{
	const char *s;

	switch (f->kind) {
	case K_VERSION:
	case K_TYPE:
		return true;
	case K_U64:
		return f == &fields[I_ID] || *u64_member(env, f) != 0;
	case K_STATUS:
		return env->status != 0;
	case K_CHANNEL:
		return env->channel != OMR_CHANNEL_NONE;
	case K_ROLE:
		return env->from != OMR_ROLE_NONE;
	case K_STR:
		s = *str_member(env, f);
		return s && *s; /* an empty string is absent, like a zero number */
	case K_ATTRS:
		return env->n_attrs > 0;
	case K_SKILLS:
		return env->n_skills > 0;
	}
	return false;
}

static const char *check_attrs(const omr_envelope_t *env)
{
	const char *e;

	if (env->n_attrs > OMR_ENV_ATTRS_MAX)
		return "too many attrs";
	if (env->n_attrs && !env->attrs)
		return "missing attrs";
	for (size_t i = 0; i < env->n_attrs; i++) {
		const omr_env_attr_t *a = &env->attrs[i];

		if (!a->key || !a->value)
			return "missing attr key or value";
		if ((e = str_check(&attr_key_rule, a->key, strlen(a->key))) ||
		    (e = str_check(&attr_value_rule, a->value, strlen(a->value))))
			return e;
		for (size_t j = 0; j < i; j++) {
			if (strcmp(env->attrs[j].key, a->key) == 0)
				return "duplicate attr key";
		}
	}
	return NULL;
}

static const char *check_skills(const omr_envelope_t *env)
{
	const char *e;

	if (env->n_skills > OMR_ENV_SKILLS_MAX)
		return "too many skills";
	if (env->n_skills && !env->skills)
		return "missing skills";
	for (size_t i = 0; i < env->n_skills; i++) {
		if (!env->skills[i])
			return "missing skill";
		if ((e = str_check(&skill_rule, env->skills[i], strlen(env->skills[i]))))
			return e;
	}
	return NULL;
}

static const char *check_scalars(const omr_envelope_t *env)
{
	if (env->v != OMR_ENVELOPE_VERSION)
		return "unsupported version";
	if (env->type == OMR_ENV_NONE)
		return "missing type";
	if ((unsigned)env->type >= OMR_ENV_TYPE_COUNT)
		return "unknown type";
	if (env->id == 0)
		return "missing id";
	if (env->type == OMR_ENV_ACK && env->re == 0)
		return "ack without re";
	if ((unsigned)env->channel >= OMR_CHANNEL_COUNT)
		return "unknown channel";
	if ((unsigned)env->from >= OMR_ROLE_COUNT)
		return "unknown role";
	return NULL;
}

/* -EINVAL or -EMSGSIZE with *why, or 0. */
static int check_env(const omr_envelope_t *env, size_t max, const char **why)
{
	const char *e;

	if ((e = check_scalars(env)) || (e = check_attrs(env)) || (e = check_skills(env)))
		return fail(why, -EINVAL, e);
	for (size_t i = 0; i < N_FIELDS; i++) {
		const struct field *f = &fields[i];
		size_t len;

		if (f->kind != K_STR || !field_present(env, f))
			continue;
		len = strlen(*str_member(env, f));
		if (len > max) /* text: only the frame limits it; fail before scanning */
			return fail(why, -EMSGSIZE, "frame too large");
		if ((e = str_check(&f->rule, *str_member(env, f), len)))
			return fail(why, -EINVAL, e);
	}
	return 0;
}

static int pack_cstr(msgpack_packer *pk, const char *s)
{
	size_t len = strlen(s);

	return msgpack_pack_str(pk, len) || msgpack_pack_str_body(pk, s, len);
}

static int pack_value(msgpack_packer *pk, const omr_envelope_t *env, const struct field *f)
{
	int rc = 0;

	switch (f->kind) {
	case K_VERSION:
		return msgpack_pack_uint32(pk, env->v);
	case K_TYPE:
		return pack_cstr(pk, type_names[env->type]);
	case K_U64:
		return msgpack_pack_uint64(pk, *u64_member(env, f));
	case K_STATUS:
		return msgpack_pack_int32(pk, env->status);
	case K_CHANNEL:
		return pack_cstr(pk, channel_names[env->channel]);
	case K_ROLE:
		return pack_cstr(pk, role_names[env->from]);
	case K_STR:
		return pack_cstr(pk, *str_member(env, f));
	case K_ATTRS:
		rc = msgpack_pack_map(pk, env->n_attrs);
		for (size_t i = 0; !rc && i < env->n_attrs; i++)
			rc = pack_cstr(pk, env->attrs[i].key) || pack_cstr(pk, env->attrs[i].value);
		return rc;
	case K_SKILLS:
		rc = msgpack_pack_array(pk, env->n_skills);
		for (size_t i = 0; !rc && i < env->n_skills; i++)
			rc = pack_cstr(pk, env->skills[i]);
		return rc;
	}
	return -1;
}

static int pack_env(msgpack_packer *pk, const omr_envelope_t *env)
{
	size_t n = 0;

	for (size_t i = 0; i < N_FIELDS; i++)
		n += field_present(env, &fields[i]);
	if (msgpack_pack_map(pk, n))
		return -1;
	for (size_t i = 0; i < N_FIELDS; i++) {
		const struct field *f = &fields[i];

		if (!field_present(env, f))
			continue;
		if (msgpack_pack_str_with_body(pk, f->key, f->klen) || pack_value(pk, env, f))
			return -1;
	}
	return 0;
}

int omr_envelope_encode(const omr_envelope_t *env, size_t frame_max, char **out, size_t *outlen,
                        const char **why)
{
	size_t max = frame_limit(frame_max);
	msgpack_sbuffer sb;
	msgpack_packer pk;
	int rc;

	if (why)
		*why = NULL;
	if (out)
		*out = NULL;
	if (outlen)
		*outlen = 0;
	if (!env || !out || !outlen)
		return fail(why, -EINVAL, "null argument");
	if ((rc = check_env(env, max, why)))
		return rc;
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	if (pack_env(&pk, env)) {
		msgpack_sbuffer_destroy(&sb);
		return fail(why, -ENOMEM, "out of memory");
	}
	if (sb.size > max) {
		msgpack_sbuffer_destroy(&sb);
		return fail(why, -EMSGSIZE, "frame too large");
	}
	*outlen = sb.size;
	*out = msgpack_sbuffer_release(&sb);
	return 0;
}

/* ---- decoder: a bounds-checked reader of our msgpack subset ------------- */

enum tag { T_OTHER, T_INT, T_SINT, T_STR, T_MAP, T_ARR };

struct item {
	enum tag t; /* T_SINT only while reading: becomes T_INT */
	bool neg;   /* T_INT: value is i (< 0); else u */
	uint64_t u; /* T_INT value, or T_STR length, or T_MAP/T_ARR count */
	int64_t i;
};

struct dec {
	const uint8_t *p;
	size_t n; /* bytes left */
	omr_envelope_t *env;
	uint32_t seen; /* bit per fields[] index */
	const char *why;
};

/* Tags 0xc0-0xdf: the kind and the width of the big-endian value or length
 * that follows. Unset entries (nil, bool, float, bin, ext, 0xc1) are
 * T_OTHER: never valid in an envelope. */
/* clang-format off */
static const struct {
	uint8_t t, width;
} tags[32] = {
	[0x0c] = { T_INT, 1 },  [0x0d] = { T_INT, 2 },  [0x0e] = { T_INT, 4 },  /* uint */
	[0x0f] = { T_INT, 8 },
	[0x10] = { T_SINT, 1 }, [0x11] = { T_SINT, 2 }, [0x12] = { T_SINT, 4 }, /* int */
	[0x13] = { T_SINT, 8 },
	[0x19] = { T_STR, 1 },  [0x1a] = { T_STR, 2 },  [0x1b] = { T_STR, 4 },
	[0x1c] = { T_ARR, 2 },  [0x1d] = { T_ARR, 4 },
	[0x1e] = { T_MAP, 2 },  [0x1f] = { T_MAP, 4 },
};
/* clang-format on */

static int bad(struct dec *d, const char *why)
{
	d->why = why;
	return -EBADMSG;
}

static int rd_be(struct dec *d, size_t width, uint64_t *out)
{
	uint64_t v = 0;

	if (d->n < width)
		return bad(d, "truncated frame");
	for (size_t i = 0; i < width; i++)
		v = v << 8 | d->p[i];
	d->p += width;
	d->n -= width;
	*out = v;
	return 0;
}

/* A negative int of `width` bytes held in it->u becomes it->i. */
static void to_signed(struct item *it, size_t width)
{
	unsigned bits = 8 * (unsigned)width;
	uint64_t mask = bits == 64 ? UINT64_MAX : (UINT64_C(1) << bits) - 1;

	it->t = T_INT;
	if (it->u >> (bits - 1) & 1) {
		it->neg = true;
		it->i = -(int64_t)(~it->u & mask) - 1; /* two's complement, no overflow */
	}
}

static int rd_tag(struct dec *d, uint8_t b, struct item *it)
{
	if (b <= 0x7f || b >= 0xe0) { /* positive / negative fixint */
		it->t = T_INT;
		it->neg = b >= 0xe0;
		it->u = b;
		it->i = (int)b - 256;
		return 0;
	}
	if (b <= 0xbf) { /* fixmap 8x, fixarray 9x, fixstr ax/bx */
		it->t = b <= 0x8f ? T_MAP : b <= 0x9f ? T_ARR : T_STR;
		it->u = b & (it->t == T_STR ? 0x1f : 0x0f);
		return 0;
	}
	it->t = tags[b - 0xc0].t;
	if (it->t == T_OTHER || rd_be(d, tags[b - 0xc0].width, &it->u))
		return it->t == T_OTHER ? 0 : -EBADMSG;
	if (it->t == T_SINT)
		to_signed(it, tags[b - 0xc0].width);
	return 0;
}

/* Reads one header. A string's length and a container's count are checked
 * against the bytes left here, before any caller can act on them: every
 * string byte must be present, and every map entry / array element takes at
 * least one byte per key and value. */
static int rd_item(struct dec *d, struct item *it)
{
	uint64_t b;

	memset(it, 0, sizeof(*it));
	if (rd_be(d, 1, &b) || rd_tag(d, (uint8_t)b, it))
		return -EBADMSG;
	if (it->t == T_STR && it->u > d->n)
		return bad(d, "string exceeds frame");
	if ((it->t == T_ARR && it->u > d->n) || (it->t == T_MAP && it->u > d->n / 2))
		return bad(d, "count exceeds frame");
	return 0;
}

/* Reads a string for rule r inside a container at depth `depth`. On success
 * *s points into the frame (not NUL-terminated). */
static int rd_str(struct dec *d, const struct str_rule *r, unsigned depth, const char **s,
                  size_t *len)
{
	struct item it;
	const char *e;

	if (rd_item(d, &it))
		return -EBADMSG;
	if ((it.t == T_MAP || it.t == T_ARR) && depth + 1 > OMR_ENV_DEPTH_MAX)
		return bad(d, "nesting too deep");
	if (it.t != T_STR)
		return bad(d, r->m.type);
	*s = (const char *)d->p;
	*len = (size_t)it.u;
	d->p += it.u;
	d->n -= it.u;
	if ((e = str_check(r, *s, *len)))
		return bad(d, e);
	return 0;
}

static int rd_int(struct dec *d, const struct field *f, struct item *it)
{
	if (rd_item(d, it))
		return -EBADMSG;
	return it->t == T_INT ? 0 : bad(d, f->rule.m.type);
}

static int dec_u64(struct dec *d, const struct field *f)
{
	struct item it;

	if (rd_int(d, f, &it))
		return -EBADMSG;
	if (it.neg)
		return bad(d, f->rule.m.range);
	*u64_member(d->env, f) = it.u;
	return 0;
}

static int dec_i32(struct dec *d, const struct field *f, int32_t *out)
{
	struct item it;

	if (rd_int(d, f, &it))
		return -EBADMSG;
	if (it.neg ? it.i < INT32_MIN : it.u > INT32_MAX)
		return bad(d, f->rule.m.range);
	*out = it.neg ? (int32_t)it.i : (int32_t)it.u;
	return 0;
}

static int dec_version(struct dec *d, const struct field *f)
{
	int32_t v;

	if (dec_i32(d, f, &v))
		return -EBADMSG;
	if (v != (int32_t)OMR_ENVELOPE_VERSION)
		return bad(d, "unsupported version");
	d->env->v = (uint32_t)v;
	return 0;
}

/* type, ch, from: a name from the table, nothing allocated. */
static int dec_enum(struct dec *d, const struct field *f, const char *const *names, unsigned count,
                    const char *unknown, unsigned *out)
{
	struct item it;

	if (rd_item(d, &it))
		return -EBADMSG;
	if (it.t != T_STR)
		return bad(d, f->rule.m.type);
	*out = name_lookup(names, count, (const char *)d->p, (size_t)it.u);
	d->p += it.u;
	d->n -= it.u;
	return *out ? 0 : bad(d, unknown);
}

static int dec_str(struct dec *d, const struct field *f)
{
	const char *s;
	size_t len;
	char **m = str_member(d->env, f);

	if (rd_str(d, &f->rule, 1, &s, &len))
		return -EBADMSG;
	if (!(*m = dup_n(s, len)))
		return -ENOMEM;
	return 0;
}

static int dec_attrs(struct dec *d, const struct field *f)
{
	omr_envelope_t *env = d->env;
	const char *k, *v;
	size_t klen, vlen;
	struct item it;

	if (rd_item(d, &it))
		return -EBADMSG;
	if (it.t != T_MAP)
		return bad(d, f->rule.m.type);
	if (it.u > OMR_ENV_ATTRS_MAX)
		return bad(d, "too many attrs");
	if (it.u && !(env->attrs = calloc((size_t)it.u, sizeof(*env->attrs))))
		return -ENOMEM;
	for (size_t i = 0; i < it.u; i++) {
		if (rd_str(d, &attr_key_rule, 2, &k, &klen))
			return -EBADMSG;
		for (size_t j = 0; j < i; j++) {
			if (strlen(env->attrs[j].key) == klen &&
			    !memcmp(env->attrs[j].key, k, klen))
				return bad(d, "duplicate attr key");
		}
		if (!(env->attrs[i].key = dup_n(k, klen)))
			return -ENOMEM;
		env->n_attrs = i + 1; /* so destroy frees what is set so far */
		if (rd_str(d, &attr_value_rule, 2, &v, &vlen))
			return -EBADMSG;
		if (!(env->attrs[i].value = dup_n(v, vlen)))
			return -ENOMEM;
	}
	return 0;
}

static int dec_skills(struct dec *d, const struct field *f)
{
	omr_envelope_t *env = d->env;
	const char *s;
	size_t len;
	struct item it;

	if (rd_item(d, &it))
		return -EBADMSG;
	if (it.t != T_ARR)
		return bad(d, f->rule.m.type);
	if (it.u > OMR_ENV_SKILLS_MAX)
		return bad(d, "too many skills");
	if (it.u && !(env->skills = calloc((size_t)it.u, sizeof(*env->skills))))
		return -ENOMEM;
	for (size_t i = 0; i < it.u; i++) {
		if (rd_str(d, &skill_rule, 2, &s, &len))
			return -EBADMSG;
		if (!(env->skills[i] = dup_n(s, len)))
			return -ENOMEM;
		env->n_skills = i + 1;
	}
	return 0;
}

static int dec_value(struct dec *d, const struct field *f)
{
	omr_envelope_t *env = d->env;
	unsigned e = 0;
	int rc;

	switch (f->kind) {
	case K_VERSION:
		return dec_version(d, f);
	case K_TYPE:
		rc = dec_enum(d, f, type_names, OMR_ENV_TYPE_COUNT, "unknown type", &e);
		env->type = (omr_env_type_t)e;
		return rc;
	case K_U64:
		return dec_u64(d, f);
	case K_STATUS:
		return dec_i32(d, f, &env->status);
	case K_CHANNEL:
		rc = dec_enum(d, f, channel_names, OMR_CHANNEL_COUNT, "unknown channel", &e);
		env->channel = (omr_channel_t)e;
		return rc;
	case K_ROLE:
		rc = dec_enum(d, f, role_names, OMR_ROLE_COUNT, "unknown role", &e);
		env->from = (omr_role_t)e;
		return rc;
	case K_STR:
		return dec_str(d, f);
	case K_ATTRS:
		return dec_attrs(d, f);
	case K_SKILLS:
		return dec_skills(d, f);
	}
	return bad(d, "internal error");
}

static int dec_entry(struct dec *d)
{
	struct item it;
	const char *k;
	size_t i;

	if (rd_item(d, &it))
		return -EBADMSG;
	if (it.t != T_STR)
		return bad(d, "key is not a string");
	k = (const char *)d->p;
	d->p += it.u;
	d->n -= it.u;
	for (i = 0; i < N_FIELDS; i++) {
		if (fields[i].klen == it.u && !memcmp(fields[i].key, k, fields[i].klen))
			break;
	}
	if (i == N_FIELDS)
		return bad(d, "unknown key");
	if (d->seen & (UINT32_C(1) << i))
		return bad(d, "duplicate key");
	d->seen |= UINT32_C(1) << i;
	return dec_value(d, &fields[i]);
}

static int dec_frame(struct dec *d)
{
	struct item it;
	int rc;

	if (d->n == 0)
		return bad(d, "empty frame");
	if (rd_item(d, &it))
		return -EBADMSG;
	if (it.t != T_MAP)
		return bad(d, "frame is not a map");
	if (it.u > OMR_ENV_MAP_KEYS_MAX)
		return bad(d, "too many keys");
	for (size_t i = 0; i < it.u; i++) {
		if ((rc = dec_entry(d)))
			return rc;
	}
	if (d->n)
		return bad(d, "trailing bytes");
	if (!(d->seen & (1u << I_V)))
		return bad(d, "missing v");
	if (!(d->seen & (1u << I_TYPE)))
		return bad(d, "missing type");
	if (!(d->seen & (1u << I_ID)))
		return bad(d, "missing id");
	if (d->env->id == 0)
		return bad(d, "zero id");
	if (d->env->type == OMR_ENV_ACK && d->env->re == 0)
		return bad(d, "ack without re");
	return 0;
}

int omr_envelope_decode(const void *buf, size_t len, size_t frame_max, omr_envelope_t **out,
                        const char **why)
{
	struct dec d = {.p = buf, .n = len};
	int rc;

	if (why)
		*why = NULL;
	if (out)
		*out = NULL;
	if (!out || (!buf && len))
		return fail(why, -EINVAL, "null argument");
	if (len > frame_limit(frame_max))
		return fail(why, -EMSGSIZE, "frame too large");
	if (!(d.env = calloc(1, sizeof(*d.env))))
		return fail(why, -ENOMEM, "out of memory");
	rc = dec_frame(&d);
	if (rc) {
		omr_envelope_destroy(&d.env);
		return fail(why, rc, rc == -ENOMEM ? "out of memory" : d.why);
	}
	*out = d.env;
	return 0;
}
