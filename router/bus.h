/* bus.h - the router's end of the ZeroMQ bus: a ROUTER socket that adapters'
 * DEALERs connect to. Decodes each frame strictly and hands the envelope to
 * the router; sends acks and deliveries back to a peer. Owns the socket and
 * its uv_poll. Loop thread only. */
#ifndef OMR_ROUTER_BUS_H
#define OMR_ROUTER_BUS_H

#include <stdint.h>

#include <uv.h>

#include "omnirouter/config.h"
#include "omnirouter/envelope.h"

typedef struct omr_bus_peer {
	uint8_t len;
	unsigned char id[255];
} omr_bus_peer_t;

typedef struct omr_bus_server omr_bus_server_t;

/* Ownership of *envp moves to the callee (it sets *envp = NULL or leaves
 * it for the bus to destroy). */
typedef void (*omr_bus_request_fn)(void *ud, const omr_bus_peer_t *peer, omr_envelope_t **envp);

/* Creates the ROUTER socket and binds cfg->bus_endpoint. Returns 0 and *out
 * or a negative errno (logged). */
int omr_bus_server_start(uv_loop_t *loop, void *zctx, const omr_config_t *cfg,
                         omr_bus_request_fn on_request, void *ud, omr_bus_server_t **out);

/* Encodes and sends env to peer without blocking. 0, -EHOSTUNREACH (peer
 * gone), -EAGAIN (peer's queue full), -EINVAL/-EMSGSIZE (encode failed). */
int omr_bus_server_send(omr_bus_server_t *b, const omr_bus_peer_t *peer, const omr_envelope_t *env);

/* Sends an already encoded envelope (e.g. a cached ack). Same returns. */
int omr_bus_server_send_frame(omr_bus_server_t *b, const omr_bus_peer_t *peer, const void *buf,
                              size_t len);

/* Closes the poll handle then the socket; frees after the close callback. */
void omr_bus_server_close(omr_bus_server_t **bp);

#endif
