/* store.h - the daemon's connection to Redis: one command connection (all
 * routing calls, pipelined by hiredis) and one subscriber connection (the
 * notify channels). Owns both hiredis contexts, the PING watchdog and the
 * reconnect timer. Loads the Functions library (router/lua/) on every
 * connect. Loop thread only. */
#ifndef OMR_ROUTER_STORE_H
#define OMR_ROUTER_STORE_H

#include <stdbool.h>
#include <stddef.h>

#include <hiredis/hiredis.h>
#include <uv.h>

#include "omnirouter/config.h"

typedef struct omr_store omr_store_t;

/* reply is NULL when the connection failed before Redis answered: the
 * request's outcome is unknown, so callers do not acknowledge it (the
 * adapter resends; every routing function is idempotent). */
typedef void (*omr_store_reply_fn)(void *ud, const redisReply *reply);
/* Called when the store becomes ready (functions loaded, PING answered,
 * subscribed) and when it goes down. */
typedef void (*omr_store_state_fn)(void *ud, bool ready);
/* A pub/sub message on a notify channel. */
typedef void (*omr_store_message_fn)(void *ud, const char *channel, size_t chlen, const char *msg,
                                     size_t len);

typedef struct omr_store_callbacks {
	omr_store_state_fn on_state;
	omr_store_message_fn on_message;
	void *ud;
} omr_store_callbacks_t;

/* No I/O. Copies what it needs from cfg. NULL on ENOMEM. */
omr_store_t *omr_store_new(uv_loop_t *loop, const omr_config_t *cfg,
                           const omr_store_callbacks_t *cbs);

/* Starts connecting (and keeps reconnecting with backoff). 0 or -errno. */
int omr_store_start(omr_store_t *s);

/* Applies reloadable options (watchdog and backoff timings). */
void omr_store_reload(omr_store_t *s, const omr_config_t *cfg);

/* Sends one command (argvlen NULL: each argument is a C string, as hiredis
 * takes it). Returns 0 (cb will be called exactly once), -EAGAIN (not ready:
 * nothing sent, cb not called), -ENOMEM. */
int omr_store_command(omr_store_t *s, omr_store_reply_fn cb, void *ud, int argc, const char **argv,
                      const size_t *argvlen);

bool omr_store_is_ready(const omr_store_t *s);

/* Commands sent and not yet answered. */
size_t omr_store_inflight(const omr_store_t *s);

/* Disconnects (pending callbacks get NULL), closes the timers. The store is
 * freed once the loop has run its close callbacks; *sp is set to NULL. */
void omr_store_close(omr_store_t **sp);

/* The Functions library source (generated from the files in router/lua/). */
extern const char omr_functions_lua[];
extern const size_t omr_functions_lua_len;

#endif
