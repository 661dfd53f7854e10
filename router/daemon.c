/* daemon.c - process lifecycle. Main thread (the router's loop).
 *
 * Start: bind the bus, connect Redis; once Redis first answered, start the
 * adapters (so nothing listens before it can store) and tell systemd READY.
 * SIGHUP: load the config again; a failed load keeps the old one; only
 * reloadable options change. SIGTERM/SIGINT: STOPPING, stop the adapters on a
 * worker thread (they finish requests in flight, which needs this loop
 * running), wait for Redis replies in flight (bounded), close, exit 0. */
#include "daemon.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include <systemd/sd-daemon.h>
#include <uv.h>
#include <zmq.h>

#include "omnirouter/adapter.h"
#include "omnirouter/health.h"
#include "omnirouter/log.h"
#include "omnirouter/util.h"
#include "router.h"

#define MAX_CONFIGS 64

typedef struct daemon {
	uv_loop_t loop;
	void *zctx;
	omr_config_t *cfg;
	/* Replaced configurations, kept alive a while: the websocket thread applies a
	 * reload later and holds pointers into the one before until then. The oldest
	 * (MAX_CONFIGS reloads ago) is freed to make room. */
	omr_config_t *old_cfgs[MAX_CONFIGS];
	size_t n_old;
	omr_router_t *router;
	omr_adapter_t *ws;
	bool adapters_started, stopping, failed;
	uv_signal_t sigterm, sigint, sighup;
	uv_timer_t watchdog, drain;
	uv_work_t stop_work;
	uint64_t drain_deadline;
} daemon_t;

/* systemd's STATUS line (systemctl status), for each state but starting. */
static void notify_status(const daemon_t *d, omr_health_t h, const char *detail)
{
	switch (h) {
	case OMR_HEALTH_READY:
		sd_notify(0, "STATUS=routing");
		break;
	case OMR_HEALTH_STORE_DOWN:
		sd_notifyf(0,
		           "STATUS=redis unreachable at %s:%lld: requests are answered unavailable",
		           d->cfg->redis_host, (long long)d->cfg->redis_port);
		break;
	case OMR_HEALTH_STORE_REFUSES:
		sd_notifyf(0, "STATUS=redis refuses writes: %s", detail ? detail : "");
		break;
	default:
		break;
	}
}

static void on_router_state(void *ud, omr_health_t h, const char *detail)
{
	daemon_t *d = ud;
	if (d->stopping)
		return;
	omr_health_set(h);
	if (h != OMR_HEALTH_READY || d->adapters_started) {
		notify_status(d, h, detail);
		return;
	}
	d->adapters_started = true;
	int rc = omr_websocket_adapter.start(d->zctx, d->cfg, &d->ws);
	if (rc != 0) {
		omr_error("daemon", "websocket adapter failed to start error=\"%s\"",
		          strerror(-rc));
		d->failed = true;
		uv_kill(uv_os_getpid(), SIGTERM);
		return;
	}
	sd_notify(0, "READY=1\nSTATUS=routing");
	omr_info("daemon", "ready ws=%s:%lld", d->cfg->ws_listen, (long long)d->cfg->ws_port);
}

static void on_watchdog(uv_timer_t *t)
{
	sd_notify(0, "WATCHDOG=1");
}

static void close_all(daemon_t *d)
{
	omr_router_close(&d->router);
	uv_close((uv_handle_t *)&d->sigterm, NULL);
	uv_close((uv_handle_t *)&d->sigint, NULL);
	uv_close((uv_handle_t *)&d->sighup, NULL);
	uv_close((uv_handle_t *)&d->watchdog, NULL);
	uv_close((uv_handle_t *)&d->drain, NULL);
}

static void on_drain(uv_timer_t *t)
{
	daemon_t *d = t->data;
	size_t busy = d->router ? omr_router_busy(d->router) : 0;
	if (busy > 0 && omr_mono_ms() < d->drain_deadline)
		return;
	if (busy > 0)
		omr_warn("daemon", "stopping with redis calls in flight count=%zu", busy);
	uv_timer_stop(t);
	close_all(d);
}

static void stop_adapters(uv_work_t *w)
{
	daemon_t *d = w->data;
	omr_websocket_adapter.stop(&d->ws);
}

static void after_stop_adapters(uv_work_t *w, int status)
{
	daemon_t *d = w->data;
	d->drain_deadline = omr_mono_ms() + (uint64_t)d->cfg->bus_ack_timeout_ms;
	uv_timer_start(&d->drain, on_drain, 0, 20);
}

static void on_stop_signal(uv_signal_t *s, int signum)
{
	daemon_t *d = s->data;
	if (d->stopping)
		return;
	d->stopping = true;
	omr_health_set(OMR_HEALTH_STOPPING);
	omr_info("daemon", "stopping signal=%d", signum);
	sd_notify(0, "STOPPING=1\nSTATUS=stopping: draining connections");
	uv_queue_work(&d->loop, &d->stop_work, stop_adapters, after_stop_adapters);
}

void omr_daemon_warn_config(const omr_config_t *cfg)
{
	char text[4096];
	if (omr_config_shadow_warnings(cfg, text, sizeof(text)) == 0)
		return;
	for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n"))
		omr_warn("config", "%s", line);
}

static void on_hup(uv_signal_t *s, int signum)
{
	daemon_t *d = s->data;
	char err[512];
	omr_config_t *next = NULL;
	sd_notify(0, "RELOADING=1");
	int rc = omr_config_load(d->cfg->path, &next, err, sizeof(err));
	char fixed[512];
	if (rc == 0 && omr_config_diff_static(d->cfg, next, fixed, sizeof(fixed)) > 0)
		omr_warn("daemon",
		         "reload: restart needed for options=%s (running on the old values)",
		         fixed);
	if (rc != 0) {
		omr_error("daemon", "reload failed, keeping the running configuration: %s", err);
	} else if (omr_config_keep_static(next, d->cfg) != 0) {
		omr_error("daemon",
		          "reload failed, keeping the running configuration: out of memory");
		omr_config_destroy(&next);
	} else if (omr_config_check_limits(next, err, sizeof(err)) != 0) {
		/* e.g. a longer chat.max_text_bytes (reloaded) beside the running
		 * bus.max_frame_bytes (a restart): texts the bus would refuse */
		omr_error("daemon",
		          "reload failed, keeping the running configuration: with the options "
		          "that need a restart at their running values, %s",
		          err);
		omr_config_destroy(&next);
	} else {
		if (d->n_old == MAX_CONFIGS) {
			omr_config_destroy(&d->old_cfgs[0]);
			memmove(d->old_cfgs, d->old_cfgs + 1,
			        (MAX_CONFIGS - 1) * sizeof(d->old_cfgs[0]));
			d->n_old--;
		}
		d->old_cfgs[d->n_old++] = d->cfg;
		d->cfg = next;
		omr_log_set_level(next->log_level);
		omr_router_reload(d->router, next);
		if (d->ws && omr_websocket_adapter.reload)
			omr_websocket_adapter.reload(d->ws, next);
		omr_info("daemon", "configuration reloaded path=%s", next->path);
		omr_daemon_warn_config(next);
	}
	sd_notify(0, "READY=1");
}

static void start_watchdog(daemon_t *d)
{
	uint64_t usec = 0;
	if (sd_watchdog_enabled(0, &usec) > 0 && usec > 0) {
		uint64_t ms = usec / 2000;
		uv_timer_start(&d->watchdog, on_watchdog, ms ? ms : 1, ms ? ms : 1);
		omr_info("daemon", "systemd watchdog interval_ms=%llu",
		         (unsigned long long)(usec / 1000));
	}
}

int omr_daemon_run(omr_config_t **cfgp)
{
	daemon_t *d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	d->cfg = *cfgp;
	*cfgp = NULL;
	signal(SIGPIPE, SIG_IGN);
	uv_loop_init(&d->loop);
	d->zctx = zmq_ctx_new();
	uv_signal_init(&d->loop, &d->sigterm);
	uv_signal_init(&d->loop, &d->sigint);
	uv_signal_init(&d->loop, &d->sighup);
	uv_timer_init(&d->loop, &d->watchdog);
	uv_timer_init(&d->loop, &d->drain);
	d->sigterm.data = d->sigint.data = d->sighup.data = d->drain.data = d->stop_work.data = d;
	uv_signal_start(&d->sigterm, on_stop_signal, SIGTERM);
	uv_signal_start(&d->sigint, on_stop_signal, SIGINT);
	uv_signal_start(&d->sighup, on_hup, SIGHUP);
	start_watchdog(d);
	int rc = omr_router_start(&d->loop, d->zctx, d->cfg, on_router_state, d, &d->router);
	if (rc != 0) {
		close_all(d);
		d->failed = true;
	} else {
		sd_notify(0, "STATUS=connecting to redis");
	}
	uv_run(&d->loop, UV_RUN_DEFAULT);
	uv_loop_close(&d->loop);
	zmq_ctx_term(d->zctx);
	bool failed = d->failed;
	for (size_t i = 0; i < d->n_old; i++)
		omr_config_destroy(&d->old_cfgs[i]);
	omr_config_destroy(&d->cfg);
	free(d);
	omr_info("daemon", "stopped");
	return failed ? (rc ? rc : -EIO) : 0;
}
