/* ws_server.h - the websocket adapter's HTTP + websocket server: one
 * libwebsockets context on the adapter's libuv loop (a foreign loop), the
 * connections, their limits and their output queues. Private to
 * adapters/websocket. Loop thread only, except omr_ws_settings_from_config. */
#ifndef OMR_WS_SERVER_H
#define OMR_WS_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "bus_client.h"
#include "omnirouter/config.h"
#include "websocket/ws_identity.h"
#include "websocket/ws_proto.h"

/* The reloadable limits, copied by value between threads. */
typedef struct omr_ws_settings {
	size_t max_frame_bytes;
	size_t max_connections_per_ip;
	uint32_t max_messages_per_second;
	uint64_t auth_timeout_ms;
	size_t max_text_bytes;
	size_t max_queue_bytes; /* per-connection output queue cap (derived; see send_text) */
	uint64_t ack_timeout_ms;
	unsigned max_attempts;
	char default_language[OMR_WS_LANG_MAX + 1];
	char identity_secret[OMR_WS_IDENTITY_SECRET_MAX + 1]; /* "" = customer_id not verified */
} omr_ws_settings_t;

/* Copies the reloadable options (any thread: reads cfg only). */
void omr_ws_settings_from_config(omr_ws_settings_t *s, const omr_config_t *cfg);

typedef struct omr_ws_server_opts {
	const char *listen;
	int port;
	const char *static_dir;
	size_t max_connections;
	unsigned ping_interval_s;       /* 0 = off */
	const char *tls_cert, *tls_key; /* PEM files; NULL or "" = plain http/ws */
	const char *default_tenant;
	omr_ws_settings_t settings;
} omr_ws_server_opts_t;

typedef struct omr_ws_server omr_ws_server_t;

/* Creates the lws context on loop and starts listening. Returns 0,
 * -EADDRNOTAVAIL (could not listen), -ENOMEM. The strings in opts are copied.
 * *out is set even on failure (unless -ENOMEM before anything was made): the
 * caller then runs the loop and calls omr_ws_server_destroy as after a stop. */
int omr_ws_server_new(uv_loop_t *loop, const omr_ws_server_opts_t *opts, omr_ws_server_t **out);

/* Where requests go; NULL detaches (requests are then refused). */
void omr_ws_server_set_bus(omr_ws_server_t *srv, omr_bus_client_t *bus);

/* The bus callbacks, forwarded by the adapter. */
void omr_ws_server_on_done(omr_ws_server_t *srv, void *ctx, int status, const omr_envelope_t *ack);
void omr_ws_server_on_deliver(omr_ws_server_t *srv, omr_envelope_t **env);

void omr_ws_server_apply(omr_ws_server_t *srv, const omr_ws_settings_t *s);

/* Stop: refuse new websocket connections and new client frames. */
void omr_ws_server_drain(omr_ws_server_t *srv);

/* Stop: flush every connection's queue and close it with 1001. */
void omr_ws_server_close_all(omr_ws_server_t *srv);

size_t omr_ws_server_connections(const omr_ws_server_t *srv);

/* Stop: detaches the bus, stops the timers and starts lws teardown inside
 * the loop (the first lws_context_destroy). */
void omr_ws_server_shutdown(omr_ws_server_t *srv);

/* After uv_run returned: the second lws_context_destroy and the rest.
 * The loop must run once more afterwards. NULL-safe; sets *srvp = NULL. */
void omr_ws_server_destroy(omr_ws_server_t **srvp);

#endif
