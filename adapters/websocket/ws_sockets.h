/* ws_sockets.h - every accepted socket of the websocket port, counted per
 * address from the moment lws accepts it: plain HTTP and unfinished upgrades
 * too, which the websocket limits (counted at the upgrade) never see. One
 * address cannot hold more than its share of the process's descriptors, so
 * it cannot keep others out by opening upgrades it never finishes; and all
 * of them together leave descriptors for Redis, the bus and files. Loop
 * thread only. */
#ifndef OMR_WS_SOCKETS_H
#define OMR_WS_SOCKETS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libwebsockets.h>

#include "u64map.h"

typedef struct ws_sockets {
	omr_u64map_t *by_wsi; /* (uintptr_t)wsi -> its address key */
	omr_u64map_t *per_ip; /* address key -> sockets (as a pointer-sized integer) */
	size_t total;
	size_t max;       /* in all: RLIMIT_NOFILE less a reserve (SIZE_MAX: no limit) */
	uint64_t seed;    /* of the address keys (ws_ip_key) */
	uint64_t refused; /* since the last log line */
	uint64_t logged_ms;
} ws_sockets_t;

/* 0 or -ENOMEM. */
int ws_sockets_init(ws_sockets_t *s, uint64_t seed);
void ws_sockets_free(ws_sockets_t *s);

/* LWS_CALLBACK_FILTER_NETWORK_CONNECTION: 1 (lws closes the socket at once)
 * when its address already has per_ip sockets or all addresses s->max; a
 * flood of refusals logs once a second (now_ms: the loop's clock). */
int ws_sockets_filter(ws_sockets_t *s, const struct lws_filter_network_conn_args *f, size_t per_ip,
                      uint64_t now_ms);

/* LWS_CALLBACK_SERVER_NEW_CLIENT_INSTANTIATED: counts the socket until
 * ws_sockets_close (over the limit after all: lws kills it). */
void ws_sockets_accepted(ws_sockets_t *s, struct lws *wsi, size_t per_ip);

/* LWS_CALLBACK_WSI_DESTROY; a socket that was not counted is ignored. */
void ws_sockets_close(ws_sockets_t *s, const struct lws *wsi);

#endif
