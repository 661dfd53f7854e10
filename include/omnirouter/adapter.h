/* adapter.h - the one interface every protocol adapter implements.
 *
 * An adapter owns its thread, its sockets and its event loop. It talks to the
 * router only through envelopes on the ZeroMQ bus (a DEALER connected to
 * cfg->bus_endpoint): requests it sends are acknowledged by the router once
 * stored in Redis; deliveries come back on the same socket. */
#ifndef OMNIROUTER_ADAPTER_H
#define OMNIROUTER_ADAPTER_H

#include "omnirouter/config.h"

typedef struct omr_adapter omr_adapter_t;

typedef struct omr_adapter_ops {
	const char *name;
	/* Starts the adapter's thread; returns 0 once it listens, or a negative
	 * errno (logged by the adapter). zctx is the process's ZeroMQ context. */
	int (*start)(void *zctx, const omr_config_t *cfg, omr_adapter_t **out);
	/* Asks the thread to stop taking new input, finish requests in flight
	 * (bounded by cfg->bus_ack_timeout_ms), close, and joins it. NULL-safe. */
	void (*stop)(omr_adapter_t **adapter);
	/* Applies reloadable options from cfg (called from any thread; the
	 * adapter copies what it needs). May be NULL. */
	int (*reload)(omr_adapter_t *adapter, const omr_config_t *cfg);
} omr_adapter_ops_t;

/* The websocket adapter (customer chat + agent desktop). */
extern const omr_adapter_ops_t omr_websocket_adapter;

#endif
