/* envelope.h - the one message every adapter and the router exchange on the
 * ZeroMQ bus, and its msgpack codec.
 *
 * The struct is transparent on purpose: it is a plain record copied in and out
 * of msgpack, every string field is a heap copy owned by the envelope (NULL
 * when absent), and omr_envelope_destroy() frees them all. Any thread may use
 * an envelope it owns; envelopes are never shared between threads (they cross
 * threads only as encoded bytes on ZeroMQ).
 *
 * The wire format (a msgpack map with short string keys) and every limit are
 * documented in docs/ENVELOPE.md; keep the two in step. */
#ifndef OMNIROUTER_ENVELOPE_H
#define OMNIROUTER_ENVELOPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define OMR_ENVELOPE_VERSION 1u

/* Hard limits, applied by the decoder to untrusted frames and by the encoder
 * to what we send (so we never emit something a peer would reject). */
#define OMR_ENV_FRAME_MAX_DEFAULT (64u * 1024u) /* bytes, whole encoded frame */
#define OMR_ENV_FRAME_MAX_LIMIT (16u * 1024u * 1024u)
#define OMR_ENV_ID_MAX 128u   /* bytes: ids, tenant, lang, token, seq, ... */
#define OMR_ENV_NAME_MAX 256u /* bytes: display names, reason, event */
#define OMR_ENV_ATTRS_MAX 32u /* entries in attrs */
#define OMR_ENV_ATTR_KEY_MAX 64u
#define OMR_ENV_ATTR_VALUE_MAX 1024u
#define OMR_ENV_SKILLS_MAX 32u   /* entries in skills */
#define OMR_ENV_MAP_KEYS_MAX 64u /* keys in the top-level map */
#define OMR_ENV_DEPTH_MAX 2u     /* top map = 1, attrs/skills = 2 */

typedef enum omr_env_type {
	OMR_ENV_NONE = 0,
	OMR_ENV_ACK,            /* "ack": router -> adapter, result of request `re` */
	OMR_ENV_ADAPTER_HELLO,  /* "adapter.hello": adapter announces itself */
	OMR_ENV_CONV_START,     /* "conv.start": a customer opens a conversation */
	OMR_ENV_CONV_RESUME,    /* "conv.resume": a customer comes back (conv+token) */
	OMR_ENV_CONV_MESSAGE,   /* "conv.message": text from customer or agent */
	OMR_ENV_CONV_CLOSE,     /* "conv.close": agent (or customer) ends it */
	OMR_ENV_CUSTOMER_GONE,  /* "customer.gone": customer connection closed */
	OMR_ENV_AGENT_LOGIN,    /* "agent.login": desktop authenticates (agent+token) */
	OMR_ENV_AGENT_PRESENCE, /* "agent.presence": available / away */
	OMR_ENV_AGENT_ACK,      /* "agent.ack": desktop confirmed delivery `seq` */
	OMR_ENV_AGENT_GONE,     /* "agent.gone": desktop connection closed */
	OMR_ENV_DELIVER,        /* "deliver": router -> adapter, item for `conn` */
	OMR_ENV_OFFER_ACCEPT,   /* "offer.accept": the agent takes the offered `conv` */
	OMR_ENV_OFFER_REJECT,   /* "offer.reject": the agent declines it, with `reason` */
	OMR_ENV_WRAPUP_END,     /* "agent.wrapup_end": the agent ends wrap-up on `ch` */
	OMR_ENV_CONV_RATE,      /* "conv.rate": the customer's survey: attrs score, text */
	OMR_ENV_CONV_TYPING,    /* "conv.typing": `from` is typing in `conv` */
	OMR_ENV_CONV_TRANSFER,  /* "conv.transfer": attrs queue or agent, text = note */
	OMR_ENV_CONV_HISTORY,   /* "conv.history": attrs earlier = a past conv to read */
	OMR_ENV_AGENT_TEAM,     /* "agent.team": a supervisor's snapshot of its agents */
	OMR_ENV_CONV_MONITOR,   /* "conv.monitor": a supervisor reads `conv` */
	OMR_ENV_TYPE_COUNT
} omr_env_type_t;

typedef enum omr_channel {
	OMR_CHANNEL_NONE = 0,
	OMR_CHANNEL_CHAT,  /* "chat" */
	OMR_CHANNEL_EMAIL, /* "email" */
	OMR_CHANNEL_VOICE, /* "voice" */
	OMR_CHANNEL_COUNT
} omr_channel_t;

typedef enum omr_role {
	OMR_ROLE_NONE = 0,
	OMR_ROLE_CUSTOMER, /* "customer" */
	OMR_ROLE_AGENT,    /* "agent" */
	OMR_ROLE_SYSTEM,   /* "system" */
	OMR_ROLE_COUNT
} omr_role_t;

typedef struct omr_env_attr {
	char *key;
	char *value;
} omr_env_attr_t;

typedef struct omr_envelope {
	uint32_t v;            /* "v": OMR_ENVELOPE_VERSION, required */
	omr_env_type_t type;   /* "type": required */
	uint64_t id;           /* "id": sender-unique bus message id, required, > 0 */
	uint64_t re;           /* "re": ack only: the id being acknowledged */
	uint64_t conn;         /* "conn": adapter-local connection id */
	uint64_t ts_ms;        /* "ts": unix time in ms */
	int32_t status;        /* "status": ack: 0 or a negative errno */
	omr_channel_t channel; /* "ch" */
	omr_role_t from;       /* "from" */
	char *tenant;          /* "tenant" (id) */
	char *conv;            /* "conv" conversation id (id) */
	char *agent;           /* "agent" agent id (id) */
	char *customer;        /* "customer" customer id (id) */
	char *lang;            /* "lang" BCP-47 tag (id) */
	char *msgid;           /* "msgid" client-chosen message id, dedup key (id) */
	char *token;           /* "token" resume or agent token; secret (id) */
	char *seq;             /* "seq" Redis stream entry id / cursor (id) */
	char *presence;        /* "presence" (id) */
	char *event;           /* "event": deliver: what happened (name) */
	char *name;            /* "name": display name (name) */
	char *reason;          /* "reason": human-readable reason (name) */
	char *text;            /* "text": message body, up to the frame limit */
	omr_env_attr_t *attrs; /* "attrs": map str -> str */
	size_t n_attrs;
	char **skills; /* "skills": array of str (id) */
	size_t n_skills;
} omr_envelope_t;

/* Allocates a zeroed envelope with v and type set. NULL on ENOMEM. No I/O. */
omr_envelope_t *omr_envelope_new(omr_env_type_t type);

/* Frees the envelope and every string it owns; NULL-safe; sets *envp = NULL. */
void omr_envelope_destroy(omr_envelope_t **envp);

/* Replaces *field with a copy of value (NULL clears it). Returns 0 or
 * -ENOMEM. Does not validate: the encoder does. */
int omr_envelope_set(char **field, const char *value);

/* Same, for a value of len bytes (not NUL-terminated). */
int omr_envelope_setn(char **field, const char *value, size_t len);

/* Appends one attribute (copies both). 0, -E2BIG (too many), -ENOMEM. */
int omr_envelope_add_attr(omr_envelope_t *env, const char *key, const char *value);

/* Looks up an attribute's value; NULL when absent. */
const char *omr_envelope_attr(const omr_envelope_t *env, const char *key);

/* Appends one skill (copies). 0, -E2BIG, -ENOMEM. */
int omr_envelope_add_skill(omr_envelope_t *env, const char *skill);

/* Encodes env into a malloc'd buffer (*out, *outlen); the caller frees it.
 * Validates exactly what the decoder checks, so whatever encodes decodes.
 * Returns 0, -EINVAL (a field breaks a rule: *why says which), -EMSGSIZE
 * (over frame_max), -ENOMEM. why may be NULL. */
int omr_envelope_encode(const omr_envelope_t *env, size_t frame_max, char **out, size_t *outlen,
                        const char **why);

/* Decodes one untrusted frame. Strict: frame_max cap, declared lengths and
 * counts checked against the remaining bytes before any allocation, depth and
 * item limits, no trailing bytes, no duplicate or unknown keys, type checks,
 * valid UTF-8 without NUL in every string, required fields present.
 * Returns 0 and *out (caller destroys), -EMSGSIZE (frame over frame_max),
 * -EBADMSG (malformed: *why is a static string naming the rule), -ENOMEM.
 * why may be NULL. */
int omr_envelope_decode(const void *buf, size_t len, size_t frame_max, omr_envelope_t **out,
                        const char **why);

/* Names used on the wire; NULL for out-of-range values. */
const char *omr_env_type_name(omr_env_type_t type);
const char *omr_channel_name(omr_channel_t ch);
const char *omr_role_name(omr_role_t role);

/* Reverse look-ups; return the _NONE value when the name is unknown. */
omr_env_type_t omr_env_type_from_name(const char *name, size_t len);
omr_channel_t omr_channel_from_name(const char *name, size_t len);
omr_role_t omr_role_from_name(const char *name, size_t len);

/* true when s[0..len) is valid UTF-8 (RFC 3629: no overlongs, no surrogates,
 * max U+10FFFF) and has no NUL byte. */
bool omr_utf8_is_valid(const char *s, size_t len);

#endif
