/* ws_http.c - the plain HTTP side of the websocket port. Static files come
 * from a "/" file mount; /healthz (the process answers) and /readyz (it can
 * take work: omr_health_get()) from callback mounts on this protocol,
 * which also adds the security headers to every file
 * (LWS_CALLBACK_ADD_HEADERS): lws's canned "best practices" set forbids
 * framing everywhere, and the chat page must be framable by the widget. */
#include "websocket/ws_http.h"

#include "omnirouter/health.h"

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

/* uri is path, or path followed by "/..." */
static bool path_is(const char *uri, int len, const char *path)
{
	size_t n = strlen(path);
	return (size_t)len >= n && memcmp(uri, path, n) == 0 && ((size_t)len == n || uri[n] == '/');
}

/* The body (a static string) of a /healthz or /readyz answer, and its status;
 * NULL for another path. */
static const char *probe_body(struct lws *wsi, int *status, bool *head)
{
	char *uri = NULL;
	int len = 0;
	int method = lws_http_get_uri_and_method(wsi, &uri, &len);
	if (method < 0 || !uri || (!path_is(uri, len, "/healthz") && !path_is(uri, len, "/readyz")))
		return NULL;
	/* GET, or HEAD: the same headers without the body (RFC 9110). Another method: 405. */
	if (method != LWSHUMETH_GET && method != LWSHUMETH_HEAD) {
		*status = HTTP_STATUS_METHOD_NOT_ALLOWED;
		return NULL;
	}
	*head = method == LWSHUMETH_HEAD;
	if (path_is(uri, len, "/healthz")) {
		*status = HTTP_STATUS_OK;
		return "ok";
	}
	omr_health_t h = omr_health_get();
	*status = h == OMR_HEALTH_READY ? HTTP_STATUS_OK : HTTP_STATUS_SERVICE_UNAVAILABLE;
	return omr_health_text(h);
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
	ws_http_pss_t *pss = user;
	switch (reason) {
	case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
		/* No websocket on this protocol: an upgrade offering "omr-http"
		 * would skip the auth timeout and the connection limits. */
		return 1;
	case LWS_CALLBACK_HTTP: {
		/* Also called for a path of the "/" mount that names no file. */
		int status = HTTP_STATUS_NOT_FOUND;
		bool head = false;
		const char *body = probe_body(wsi, &status, &head);
		if (body && !pss)
			return 1; /* (lws gives the mounts of this protocol their pss) */
		size_t n = body ? strlen(body) : 0;
		if (lws_add_http_common_headers(wsi, (unsigned)status, "text/plain", n, &p, end) ||
		    add_header(wsi, "cache-control:", "no-store", &p, end) ||
		    (status == HTTP_STATUS_METHOD_NOT_ALLOWED &&
		     add_header(wsi, "allow:", "GET, HEAD", &p, end)) ||
		    add_security_headers(wsi, PAGE_STRICT, &p, end) ||
		    lws_finalize_write_http_header(wsi, start, &p, end))
			return 1;
		if (!body || head)
			return lws_http_transaction_completed(wsi) ? -1 : 0;
		/* the state may change before writable: the body is the one counted */
		pss->body = body;
		lws_callback_on_writable(wsi);
		return 0;
	}
	case LWS_CALLBACK_ADD_HEADERS: {
		/* a file of the "/" mount is about to be served */
		struct lws_process_html_args *args = in;
		uint8_t *hp = (uint8_t *)args->p;
		if (add_security_headers(wsi, page_kind(wsi), &hp, hp + args->max_len))
			return 1;
		args->p = (char *)hp;
		return 0;
	}
	case LWS_CALLBACK_HTTP_WRITEABLE: {
		if (!pss || !pss->body)
			return 1;
		size_t n = strlen(pss->body);
		memcpy(start, pss->body, n);
		pss->body = NULL;
		if (lws_write(wsi, start, n, LWS_WRITE_HTTP_FINAL) != (int)n)
			return 1;
		return lws_http_transaction_completed(wsi) ? -1 : 0;
	}
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
	        .mount_next = &t->mounts[2],
	        .mountpoint = "/readyz",
	        .origin = WS_HTTP_PROTOCOL,
	        .origin_protocol = LWSMPRO_CALLBACK,
	        .mountpoint_len = 7,
	};
	t->mounts[2] = (struct lws_http_mount){
	        .mountpoint = "/",
	        .origin = static_dir,
	        .def = "chat.html",
	        .protocol = WS_HTTP_PROTOCOL, /* LWS_CALLBACK_ADD_HEADERS */
	        .extra_mimetypes = t->mimes,
	        .origin_protocol = LWSMPRO_FILE,
	        .mountpoint_len = 1,
	};
}
