/* bus_client.h - the adapter side of the ZeroMQ bus, shared by every adapter.
 *
 * One DEALER socket connected to the router's ROUTER, driven by the adapter's
 * libuv loop. Every request gets a process-unique id and exactly one outcome:
 * the router's ack, -ETIMEDOUT after max_attempts sends without an ack, or
 * -ECANCELED when the client is destroyed first. Requests not acked within
 * ack_timeout_ms are resent with the same id (the router dedups by id).
 * Deliveries (anything the router sends that is not an ack) go to on_deliver.
 *
 * Owns the socket, its uv handles and copies of the pending frames. Loop
 * thread only: every function and callback runs on the thread of `loop`. */
#ifndef OMR_ADAPTERS_BUS_CLIENT_H
#define OMR_ADAPTERS_BUS_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "omnirouter/envelope.h"

typedef struct omr_bus_client omr_bus_client_t;

/* A request finished. ctx is what was passed to omr_bus_client_send (its
 * ownership returns to the caller); status is the ack's status (0 or a
 * negative code), -ETIMEDOUT or -ECANCELED; ack is the ack envelope
 * (borrowed, valid during the call) or NULL when there was none. */
typedef void (*omr_bus_done_fn)(void *user, void *ctx, int status, const omr_envelope_t *ack);

/* The router sent a delivery; ownership of *env moves to the callee (which
 * destroys it). */
typedef void (*omr_bus_deliver_fn)(void *user, omr_envelope_t **env);

typedef struct omr_bus_client_opts {
	const char *endpoint;     /* where the router's ROUTER is bound */
	const char *adapter_name; /* sent in adapter.hello, e.g. "websocket" */
	const char *id_prefix;    /* routing id = prefix "-" 16 hex, e.g. "ws" */
	size_t max_frame_bytes;   /* envelope size cap (also ZMQ_MAXMSGSIZE) */
	uint64_t ack_timeout_ms;
	unsigned max_attempts;
	size_t max_pending; /* requests in flight before send refuses */
	omr_bus_done_fn on_done;
	omr_bus_deliver_fn on_deliver;
	void *user;
} omr_bus_client_opts_t;

/* Creates the DEALER, connects it, starts polling and sends adapter.hello
 * (its ack is logged). Returns 0 and *out, or a negative errno. */
int omr_bus_client_new(void *zctx, uv_loop_t *loop, const omr_bus_client_opts_t *opts,
                       omr_bus_client_t **out);

/* Finishes every pending request with -ECANCELED, closes the uv handles and
 * then the socket. The memory is released from the last close callback, so
 * the loop must run once more. NULL-safe; sets *bcp = NULL. */
void omr_bus_client_destroy(omr_bus_client_t **bcp);

/* Sends env as a new request: sets env->id (and env->ts_ms when 0), encodes
 * it and keeps a copy of the frame for resends; env stays the caller's.
 * On success ctx is held until on_done returns it. Returns 0, -EAGAIN
 * (max_pending requests in flight), -EINVAL or -EMSGSIZE (env does not
 * encode; *why may name the rule), -ECANCELED (closing), -ENOMEM.
 * why may be NULL. */
int omr_bus_client_send(omr_bus_client_t *bc, omr_envelope_t *env, void *ctx, const char **why);

/* Requests sent and not finished yet (adapter.hello included). */
size_t omr_bus_client_pending(const omr_bus_client_t *bc);

/* true when a send would return -EAGAIN. */
bool omr_bus_client_is_full(const omr_bus_client_t *bc);

/* Applies new resend timing to requests sent from now on and to resends. */
void omr_bus_client_set_timing(omr_bus_client_t *bc, uint64_t ack_timeout_ms,
                               unsigned max_attempts);

/* The DEALER's routing id ("ws-" + 16 hex), for logs and tests. */
const char *omr_bus_client_routing_id(const omr_bus_client_t *bc);

#endif
