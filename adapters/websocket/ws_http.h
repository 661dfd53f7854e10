/* ws_http.h - the plain HTTP side of the websocket port: the static files of
 * the "/" mount with their security headers, /healthz and /readyz. Loop
 * thread only. */
#ifndef OMR_WS_HTTP_H
#define OMR_WS_HTTP_H

#include <stddef.h>

#include <libwebsockets.h>

#define WS_HTTP_PROTOCOL "omr-http"

/* The mount and mime tables lws reads for as long as the context lives. */
typedef struct ws_http_tables {
	struct lws_http_mount mounts[3];
	struct lws_protocol_vhost_options mimes[3];
} ws_http_tables_t;

/* Per HTTP connection of the protocol: the body still to write. */
typedef struct ws_http_pss {
	const char *body;
} ws_http_pss_t;

/* Fills t: "/healthz" and "/readyz" answered by ws_http_callback, and "/" serving the files of
 * static_dir (kept by the caller) with chat.html as the index. */
void ws_http_fill(ws_http_tables_t *t, const char *static_dir);

/* The callback of the protocol named WS_HTTP_PROTOCOL. */
int ws_http_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                     size_t len);

#endif
