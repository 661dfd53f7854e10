/* ws_http.c - the plain HTTP side of the websocket port. Static files come
 * from a "/" file mount; /healthz from a callback mount on this protocol,
 * which also adds the security headers to every file
 * (LWS_CALLBACK_ADD_HEADERS): lws's canned "best practices" set forbids
 * framing everywhere, and the chat page must be framable by the widget. */
#include "websocket/ws_http.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* ---- security headers -------------------------------------------------------- */

/* Same origin only for everything; no framing, except that the chat page may
 * be framed by any site (web/widget.js embeds it in an iframe) and the demo
 * page may frame pages of this origin. */
#define CSP_HEAD "default-src 'none'; img-src 'self' data:; script-src 'self'; style-src 'self'; "
#define CSP_TAIL "base-uri 'none'; form-action 'self'; "

typedef enum page_kind {
	PAGE_STRICT = 0, /* everything else, /healthz, the agent desktop */
	PAGE_FRAMABLE,   /* / and /chat.html */
	PAGE_FRAMER,     /* /demo.html */
} page_kind_t;

static bool uri_is(const char *uri, int len, const char *path)
{
	return (size_t)len == strlen(path) && memcmp(uri, path, (size_t)len) == 0;
}

static page_kind_t page_kind(struct lws *wsi)
{
	char *uri = NULL;
	int len = 0;
	if (lws_http_get_uri_and_method(wsi, &uri, &len) < 0 || !uri)
		return PAGE_STRICT;
	if (uri_is(uri, len, "/") || uri_is(uri, len, "/chat.html"))
		return PAGE_FRAMABLE;
	return uri_is(uri, len, "/demo.html") ? PAGE_FRAMER : PAGE_STRICT;
}

static bool is_healthz(struct lws *wsi)
{
	char *uri = NULL;
	int len = 0;
	return lws_http_get_uri_and_method(wsi, &uri, &len) >= 0 && uri && len >= 8 &&
	       memcmp(uri, "/healthz", 8) == 0 && (len == 8 || uri[8] == '/');
}

static int add_header(struct lws *wsi, const char *name, const char *value, uint8_t **p,
                      uint8_t *end)
{
	return lws_add_http_header_by_name(wsi, (const unsigned char *)name,
	                                   (const unsigned char *)value, (int)strlen(value), p,
	                                   end);
}

/* connect-src: this origin's websockets only. CSP 3 counts ws: and wss: of
 * the same host as 'self', but Safari before 15.4 does not: they are named
 * (from the request's Host; a Host with other characters gets 'self' alone). */
static void connect_src(struct lws *wsi, char *out, size_t outsize)
{
	char host[256];
	int n = lws_hdr_copy(wsi, host, sizeof(host), WSI_TOKEN_HOST);
	bool ok = n > 0;
	for (int i = 0; ok && i < n; i++)
		ok = isalnum((unsigned char)host[i]) || strchr(".-:[]", host[i]);
	if (ok)
		snprintf(out, outsize, "connect-src 'self' ws://%s wss://%s; ", host, host);
	else
		snprintf(out, outsize, "connect-src 'self'; ");
}

static int add_security_headers(struct lws *wsi, page_kind_t kind, uint8_t **p, uint8_t *end)
{
	static const char *const frames[] = {
	        [PAGE_STRICT] = "frame-ancestors 'none'",
	        [PAGE_FRAMABLE] = "frame-ancestors *",
	        [PAGE_FRAMER] = "frame-src 'self'; frame-ancestors 'none'",
	};
	char connect[600], csp[1024];
	connect_src(wsi, connect, sizeof(connect));
	snprintf(csp, sizeof(csp), CSP_HEAD "%s" CSP_TAIL "%s", connect, frames[kind]);
	if (add_header(wsi, "content-security-policy:", csp, p, end) ||
	    add_header(wsi, "x-content-type-options:", "nosniff", p, end) ||
	    add_header(wsi, "referrer-policy:", "no-referrer", p, end))
		return 1;
	return kind == PAGE_FRAMABLE ? 0 : add_header(wsi, "x-frame-options:", "deny", p, end);
}

int ws_http_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                     size_t len)
{
	uint8_t buf[LWS_PRE + 2048], *start = &buf[LWS_PRE], *p = start,
	                             *end = &buf[sizeof(buf) - 1];
	static const char body[] = "ok";
	switch (reason) {
	case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
		/* No websocket on this protocol: an upgrade offering "omr-http"
		 * would skip the auth timeout and the connection limits. */
		return 1;
	case LWS_CALLBACK_HTTP:
		/* Also called for a path of the "/" mount that names no file. */
		if (!is_healthz(wsi)) {
			if (lws_add_http_common_headers(wsi, HTTP_STATUS_NOT_FOUND, "text/plain", 0,
			                                &p, end) ||
			    add_security_headers(wsi, PAGE_STRICT, &p, end) ||
			    lws_finalize_write_http_header(wsi, start, &p, end))
				return 1;
			return lws_http_transaction_completed(wsi) ? -1 : 0;
		}
		if (lws_add_http_common_headers(wsi, HTTP_STATUS_OK, "text/plain", sizeof(body) - 1,
		                                &p, end) ||
		    add_security_headers(wsi, PAGE_STRICT, &p, end) ||
		    lws_finalize_write_http_header(wsi, start, &p, end))
			return 1;
		lws_callback_on_writable(wsi);
		return 0;
	case LWS_CALLBACK_ADD_HEADERS: {
		/* a file of the "/" mount is about to be served */
		struct lws_process_html_args *args = in;
		uint8_t *hp = (uint8_t *)args->p;
		if (add_security_headers(wsi, page_kind(wsi), &hp, hp + args->max_len))
			return 1;
		args->p = (char *)hp;
		return 0;
	}
	case LWS_CALLBACK_HTTP_WRITEABLE:
		memcpy(start, body, sizeof(body) - 1);
		if (lws_write(wsi, start, sizeof(body) - 1, LWS_WRITE_HTTP_FINAL) !=
		    (int)sizeof(body) - 1)
			return 1;
		return lws_http_transaction_completed(wsi) ? -1 : 0;
	default:
		return lws_callback_http_dummy(wsi, reason, user, in, len);
	}
}

void ws_http_fill(ws_http_tables_t *t, const char *static_dir)
{
	/* Pages declare UTF-8; say it in the header too. */
	t->mimes[0] = (struct lws_protocol_vhost_options){&t->mimes[1], NULL, ".html",
	                                                  "text/html; charset=utf-8"};
	t->mimes[1] = (struct lws_protocol_vhost_options){&t->mimes[2], NULL, ".js",
	                                                  "text/javascript; charset=utf-8"};
	t->mimes[2] =
	        (struct lws_protocol_vhost_options){NULL, NULL, ".css", "text/css; charset=utf-8"};
	t->mounts[0] = (struct lws_http_mount){
	        .mount_next = &t->mounts[1],
	        .mountpoint = "/healthz",
	        .origin = WS_HTTP_PROTOCOL,
	        .origin_protocol = LWSMPRO_CALLBACK,
	        .mountpoint_len = 8,
	};
	t->mounts[1] = (struct lws_http_mount){
	        .mountpoint = "/",
	        .origin = static_dir,
	        .def = "chat.html",
	        .protocol = WS_HTTP_PROTOCOL, /* LWS_CALLBACK_ADD_HEADERS */
	        .extra_mimetypes = t->mimes,
	        .origin_protocol = LWSMPRO_FILE,
	        .mountpoint_len = 1,
	};
}
