/* ws_adapter.c - the websocket adapter's thread: its own libuv loop carrying
 * the libwebsockets server (ws_server.c) and the bus client (bus_client.c),
 * and the start / stop / reload entry points of omr_websocket_adapter.
 *
 * Other threads only touch the small handoff block under `mu` (start result,
 * stop and reload requests) and wake the loop with a uv_async; everything else
 * belongs to the adapter thread.
 *
 * Stop runs in three phases on the loop: (1) refuse new connections and
 * frames, wait for requests in flight (up to bus.ack_timeout_ms); (2) close
 * every connection with 1001 and wait for them and their reports (bounded
 * again); (3) tear down lws, the bus and the handles so uv_run returns. */
#include <uv.h>

#include "omnirouter/adapter.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "bus_client.h"
#include "omnirouter/error.h"
#include "omnirouter/log.h"
#include "websocket/ws_server.h"

#define STOP_POLL_MS 20
#define STOP_CLOSE_MAX_MS 2000 /* phase 2 bound when the ack timeout is longer */

struct omr_adapter {
	pthread_t thread;
	uv_loop_t loop;
	uv_async_t wake;
	uv_timer_t stop_timer;
	void *zctx;
	/* copies of the configuration (the caller's cfg may go away) */
	char *bus_endpoint;
	size_t bus_max_frame;
	size_t bus_max_pending;
	char *listen, *static_dir, *tenant;
	omr_ws_server_opts_t sopts;
	/* handoff between threads, under mu */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool ready;
	int start_rc;
	bool stop_req;
	bool reload_req;
	omr_ws_settings_t next;
	/* loop thread only */
	omr_bus_client_t *bus;
	omr_ws_server_t *srv;
	int phase;
	uint64_t deadline;
};

static void bus_done(void *user, void *ctx, int status, const omr_envelope_t *ack)
{
	omr_adapter_t *a = user;
	if (a->srv)
		omr_ws_server_on_done(a->srv, ctx, status, ack);
	else
		free(ctx);
}

static void bus_deliver(void *user, omr_envelope_t **env)
{
	omr_adapter_t *a = user;
	if (a->srv)
		omr_ws_server_on_deliver(a->srv, env);
}

static void on_handle_closed(uv_handle_t *h)
{
	(void)h;
}

/* Phase 3: after this nothing keeps the loop alive. */
static void teardown(omr_adapter_t *a)
{
	if (a->srv)
		omr_ws_server_set_bus(a->srv, NULL);
	omr_bus_client_destroy(&a->bus);
	omr_ws_server_shutdown(a->srv);
	uv_close((uv_handle_t *)&a->wake, on_handle_closed);
	uv_close((uv_handle_t *)&a->stop_timer, on_handle_closed);
}

static void on_stop_timer(uv_timer_t *t)
{
	omr_adapter_t *a = t->data;
	uint64_t now = uv_now(&a->loop);
	size_t pending = omr_bus_client_pending(a->bus);
	if (a->phase == 1 && (pending == 0 || now >= a->deadline)) {
		if (pending)
			omr_warn("ws", "stopping with requests unanswered pending=%zu", pending);
		a->phase = 2;
		uint64_t bound = a->sopts.settings.ack_timeout_ms;
		a->deadline = now + (bound < STOP_CLOSE_MAX_MS ? bound : STOP_CLOSE_MAX_MS);
		omr_ws_server_close_all(a->srv);
		return;
	}
	if (a->phase == 2 &&
	    ((pending == 0 && omr_ws_server_connections(a->srv) == 0) || now >= a->deadline)) {
		a->phase = 3;
		uv_timer_stop(t);
		teardown(a);
	}
}

static void on_wake(uv_async_t *h)
{
	omr_adapter_t *a = h->data;
	omr_ws_settings_t s;
	pthread_mutex_lock(&a->mu);
	bool stop = a->stop_req, reload = a->reload_req;
	a->reload_req = false;
	s = a->next;
	pthread_mutex_unlock(&a->mu);
	if (reload && a->phase == 0) {
		a->sopts.settings = s;
		omr_ws_server_apply(a->srv, &s);
		omr_bus_client_set_timing(a->bus, s.ack_timeout_ms, s.max_attempts);
		omr_info("ws",
		         "limits reloaded max_frame=%zu per_ip=%zu rate=%u auth_timeout_ms=%llu "
		         "identity_verification=%s",
		         s.max_frame_bytes, s.max_connections_per_ip, s.max_messages_per_second,
		         (unsigned long long)s.auth_timeout_ms,
		         s.identity_secret[0] ? "on" : "off");
	}
	if (stop && a->phase == 0) {
		a->phase = 1;
		a->deadline = uv_now(&a->loop) + a->sopts.settings.ack_timeout_ms;
		omr_ws_server_drain(a->srv);
		uv_timer_start(&a->stop_timer, on_stop_timer, 0, STOP_POLL_MS);
	}
}

static void report_start(omr_adapter_t *a, int rc)
{
	pthread_mutex_lock(&a->mu);
	a->start_rc = rc;
	a->ready = true;
	pthread_cond_signal(&a->cv);
	pthread_mutex_unlock(&a->mu);
}

static int loop_setup(omr_adapter_t *a)
{
	omr_bus_client_opts_t bo = {
	        .endpoint = a->bus_endpoint,
	        .adapter_name = "websocket",
	        .id_prefix = "ws",
	        .max_frame_bytes = a->bus_max_frame,
	        .ack_timeout_ms = a->sopts.settings.ack_timeout_ms,
	        .max_attempts = a->sopts.settings.max_attempts,
	        .max_pending = a->bus_max_pending,
	        .on_done = bus_done,
	        .on_deliver = bus_deliver,
	        .user = a,
	};
	uv_async_init(&a->loop, &a->wake, on_wake);
	a->wake.data = a;
	uv_timer_init(&a->loop, &a->stop_timer);
	a->stop_timer.data = a;
	int rc = omr_bus_client_new(a->zctx, &a->loop, &bo, &a->bus);
	if (rc)
		return rc;
	rc = omr_ws_server_new(&a->loop, &a->sopts, &a->srv);
	if (rc)
		return rc;
	omr_ws_server_set_bus(a->srv, a->bus);
	return 0;
}

static void *thread_main(void *arg)
{
	omr_adapter_t *a = arg;
	sigset_t all;
	/* Signals are the main thread's business. */
	sigfillset(&all);
	sigdelset(&all, SIGSEGV);
	sigdelset(&all, SIGBUS);
	sigdelset(&all, SIGFPE);
	sigdelset(&all, SIGILL);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	int rc = uv_loop_init(&a->loop);
	if (rc) {
		report_start(a, rc);
		return NULL;
	}
	rc = loop_setup(a);
	if (rc)
		teardown(a);
	else
		report_start(a, 0);
	uv_run(&a->loop, UV_RUN_DEFAULT);
	/* lws with a foreign loop: destroy again after the loop ended, then let
	 * the loop run once more for what that closed. */
	omr_ws_server_destroy(&a->srv);
	uv_run(&a->loop, UV_RUN_DEFAULT);
	if (uv_loop_close(&a->loop))
		omr_warn("ws", "event loop closed with handles still open");
	if (rc)
		report_start(a, rc);
	else
		omr_info("ws", "websocket adapter stopped");
	return NULL;
}

static void adapter_free(omr_adapter_t *a)
{
	pthread_mutex_destroy(&a->mu);
	pthread_cond_destroy(&a->cv);
	free(a->bus_endpoint);
	free(a->listen);
	free(a->static_dir);
	free(a->tenant);
	free(a);
}

static int copy_config(omr_adapter_t *a, const omr_config_t *cfg)
{
	a->bus_endpoint = strdup(cfg->bus_endpoint);
	a->listen = strdup(cfg->ws_listen);
	a->static_dir = strdup(cfg->ws_static_dir);
	a->tenant = strdup(cfg->routing_tenant);
	if (!a->bus_endpoint || !a->listen || !a->static_dir || !a->tenant)
		return -ENOMEM;
	a->bus_max_frame = (size_t)cfg->bus_max_frame_bytes;
	a->bus_max_pending = (size_t)cfg->bus_max_pending;
	a->sopts.listen = a->listen;
	a->sopts.port = (int)cfg->ws_port;
	a->sopts.static_dir = a->static_dir;
	a->sopts.max_connections = (size_t)cfg->ws_max_connections;
	a->sopts.ping_interval_s = (unsigned)cfg->ws_ping_interval_s;
	/* Read while the vhost is created, during start: cfg outlives that. */
	a->sopts.tls_cert = cfg->ws_tls_cert;
	a->sopts.tls_key = cfg->ws_tls_key;
	a->sopts.default_tenant = a->tenant;
	omr_ws_settings_from_config(&a->sopts.settings, cfg);
	return 0;
}

static int ws_start(void *zctx, const omr_config_t *cfg, omr_adapter_t **out)
{
	if (!zctx || !cfg || !out)
		return -EINVAL;
	omr_adapter_t *a = calloc(1, sizeof(*a));
	if (!a)
		return -ENOMEM;
	a->zctx = zctx;
	pthread_mutex_init(&a->mu, NULL);
	pthread_cond_init(&a->cv, NULL);
	int rc = copy_config(a, cfg);
	if (!rc)
		rc = -pthread_create(&a->thread, NULL, thread_main, a);
	if (rc) {
		omr_error("ws", "websocket adapter not started err=%s", omr_strerror(rc));
		adapter_free(a);
		return rc;
	}
	pthread_mutex_lock(&a->mu);
	while (!a->ready)
		pthread_cond_wait(&a->cv, &a->mu);
	rc = a->start_rc;
	pthread_mutex_unlock(&a->mu);
	if (rc) {
		pthread_join(a->thread, NULL);
		omr_error("ws", "websocket adapter not started err=%s", omr_strerror(rc));
		adapter_free(a);
		return rc;
	}
	*out = a;
	return 0;
}

static void ws_stop(omr_adapter_t **ap)
{
	if (!ap || !*ap)
		return;
	omr_adapter_t *a = *ap;
	*ap = NULL;
	pthread_mutex_lock(&a->mu);
	a->stop_req = true;
	pthread_mutex_unlock(&a->mu);
	uv_async_send(&a->wake);
	pthread_join(a->thread, NULL);
	adapter_free(a);
}

static int ws_reload(omr_adapter_t *a, const omr_config_t *cfg)
{
	if (!a || !cfg)
		return -EINVAL;
	omr_ws_settings_t s;
	omr_ws_settings_from_config(&s, cfg);
	pthread_mutex_lock(&a->mu);
	a->next = s;
	a->reload_req = true;
	pthread_mutex_unlock(&a->mu);
	uv_async_send(&a->wake);
	return 0;
}

const omr_adapter_ops_t omr_websocket_adapter = {
        .name = "websocket",
        .start = ws_start,
        .stop = ws_stop,
        .reload = ws_reload,
};
