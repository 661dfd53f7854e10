/* ws_proto.h - the websocket protocol of docs/PROTOCOL.md without any I/O:
 * a client's JSON text frame -> a validated request and the envelope to send;
 * the router's ack -> the client's reply; a delivery -> the client's frame;
 * error frames. Unit tests and fuzz targets call it directly.
 *
 * Pure functions over the caller's data (omr_ws_parse also draws random ids).
 * Any thread; the websocket server calls it from its loop thread. */
#ifndef OMR_WS_PROTO_H
#define OMR_WS_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "omnirouter/envelope.h"

#define OMR_WS_ID_MAX 128u    /* ids, tokens, seq: [A-Za-z0-9._:@-] */
#define OMR_WS_TENANT_MAX 64u /* same alphabet */
#define OMR_WS_NAME_MAX 256u  /* display name: UTF-8, no control characters */
#define OMR_WS_LANG_MAX 35u   /* BCP-47 tag */
#define OMR_WS_REASON_MAX 64u /* reject reason, break reason, close disposition */
#define OMR_WS_ATTRS_MAX 16u  /* hello attributes: members */
#define OMR_WS_ATTR_KEY_MAX 64u
#define OMR_WS_ATTR_VALUE_MAX 255u
#define OMR_WS_MEMBERS_MAX 32u /* members of a client frame's top-level object */
#define OMR_WS_PROTO_VERSION 1

/* Websocket close codes (RFC 6455 section 7.4.1, 1013 from the IANA list). */
#define OMR_WS_CLOSE_NORMAL 1000
#define OMR_WS_CLOSE_GOING_AWAY 1001
#define OMR_WS_CLOSE_PROTOCOL 1002
#define OMR_WS_CLOSE_UNSUPPORTED 1003
#define OMR_WS_CLOSE_BAD_DATA 1007
#define OMR_WS_CLOSE_POLICY 1008
#define OMR_WS_CLOSE_TOO_BIG 1009
#define OMR_WS_CLOSE_TRY_AGAIN 1013

typedef enum omr_ws_role {
	OMR_WS_ROLE_NONE = 0,
	OMR_WS_ROLE_CUSTOMER, /* /ws/customer */
	OMR_WS_ROLE_AGENT,    /* /ws/agent */
} omr_ws_role_t;

typedef enum omr_ws_kind {
	OMR_WS_NONE = 0,
	OMR_WS_HELLO,      /* customer: start a conversation */
	OMR_WS_RESUME,     /* customer: come back to one */
	OMR_WS_MESSAGE,    /* customer or agent: text */
	OMR_WS_LOGIN,      /* agent: authenticate */
	OMR_WS_PRESENCE,   /* agent: available / away / break */
	OMR_WS_CLOSE,      /* agent: end a conversation */
	OMR_WS_ACK,        /* agent: confirm a delivered item */
	OMR_WS_ACCEPT,     /* agent: take an offered conversation */
	OMR_WS_REJECT,     /* agent: decline an offered conversation */
	OMR_WS_WRAPUP_END, /* agent: end wrap-up on a channel */
	OMR_WS_TYPING,     /* customer or agent: is typing (no answer unless it fails) */
	OMR_WS_RATE,       /* customer: the 1-5 survey of a closed conversation */
	OMR_WS_TRANSFER,   /* agent: hand a conversation to a queue or an agent */
	OMR_WS_HISTORY,    /* agent: read an earlier conversation of the customer */
	OMR_WS_TEAM,       /* agent (supervisor): the agents it supervises, their work */
	OMR_WS_MONITOR,    /* agent (supervisor): read a supervised agent's conversation */
	OMR_WS_PING,       /* customer or agent: is the connection alive (the adapter answers) */
} omr_ws_kind_t;

/* What the server knows about one connection. Identity (tenant, conv,
 * agent) is set only from an acknowledged hello/resume/login, never from
 * later client frames. */
typedef struct omr_ws_session {
	omr_ws_role_t role;
	uint64_t conn;     /* process-unique connection id */
	bool authed;       /* hello/resume/login acknowledged */
	bool auth_pending; /* the auth request is in flight */
	char tenant[OMR_WS_TENANT_MAX + 1];
	char conv[OMR_WS_ID_MAX + 1];  /* customer */
	char agent[OMR_WS_ID_MAX + 1]; /* agent */
	/* customer: the key of this connection's last hello; a hello sent again
	 * without one (after `unavailable`) reuses it, so the same conversation */
	char hello_key[OMR_WS_ID_MAX + 1];
} omr_ws_session_t;

/* Options parse applies; the caller keeps the strings alive. */
typedef struct omr_ws_limits {
	size_t max_text_bytes;        /* chat.max_text_bytes */
	const char *default_tenant;   /* routing.default_tenant */
	const char *default_language; /* routing.default_language */
	/* chat.identity_secret: a hello's customer_id must come with its customer_signature
	 * (ws_identity.h); NULL or "" = customer_id is taken as given. */
	const char *identity_secret;
} omr_ws_limits_t;

/* A refusal: the error frame to send, and whether to close after it. */
typedef struct omr_ws_error {
	const char *code;           /* wire code, static: "bad-request", ... */
	const char *reason;         /* static, human-readable */
	char id[OMR_WS_ID_MAX + 1]; /* echoed request id, "" when none */
	int close_code;             /* 0: the connection stays open */
} omr_ws_error_t;

/* A parsed request: what the reply needs once the router acks it, and the
 * envelope to send (owned; NULL once handed off). */
typedef struct omr_ws_request {
	omr_ws_kind_t kind;
	char id[OMR_WS_ID_MAX + 1]; /* client's id, "" when none */
	char tenant[OMR_WS_TENANT_MAX + 1];
	char conv[OMR_WS_ID_MAX + 1];
	char token[OMR_WS_ID_MAX + 1]; /* hello: the new resume token */
	char key[OMR_WS_ID_MAX + 1];   /* hello: its key (given or drawn) */
	char agent[OMR_WS_ID_MAX + 1];
	char presence[16];
	omr_envelope_t *env;
} omr_ws_request_t;

/* Parses one client text frame for session s. Returns 0 with *out filled
 * (env has conn, tenant, channel and the frame's fields; the bus sets id),
 * -EINVAL with *err filled (the frame is refused), -ENOMEM. Never changes s. */
int omr_ws_parse(const omr_ws_session_t *s, const omr_ws_limits_t *lim, const char *buf, size_t len,
                 omr_ws_request_t *out, omr_ws_error_t *err);

/* Frees req->env; NULL-safe. */
void omr_ws_request_cleanup(omr_ws_request_t *req);

/* The router finished req with status (and ack, NULL on timeout). Updates s
 * (an acknowledged hello/resume/login authenticates it; a failed one lets the
 * client try again) and writes the reply into *out (malloc'd JSON, NULL when
 * the client gets nothing) or, when the request failed, fills *err.
 * Returns 0 or -ENOMEM. */
int omr_ws_reply(omr_ws_session_t *s, const omr_ws_request_t *req, int status,
                 const omr_envelope_t *ack, char **out, omr_ws_error_t *err);

/* Renders a delivery for the connection of session s into *out (malloc'd
 * JSON). An agent's "replaced" event renders nothing and fills *err (code
 * "replaced", close 1008). Returns 0, -EINVAL (not a delivery), -ENOMEM. */
/* Whether a delivery to an agent is an inbox item, which the desktop acks
 * (not typing, nor history, monitor or team frames). */
bool omr_ws_deliver_is_acked(const omr_envelope_t *env);

int omr_ws_render_deliver(const omr_ws_session_t *s, const omr_envelope_t *env, char **out,
                          omr_ws_error_t *err);

/* {"type":"error","code":...,"reason":...[,"id":...]}; NULL on ENOMEM. */
char *omr_ws_render_error(const omr_ws_error_t *err);

/* {"type":"pong"[,"id":...]}: the answer to a ping; NULL on ENOMEM. */
char *omr_ws_render_pong(const char *id);

/* Fills *err; reason and code must be static strings. */
void omr_ws_error_set(omr_ws_error_t *err, const char *code, const char *reason, int close_code);

const char *omr_ws_kind_name(omr_ws_kind_t kind);

/* true for the frames that authenticate a connection: hello, resume, login. */
bool omr_ws_kind_is_auth(omr_ws_kind_t kind);

#endif
