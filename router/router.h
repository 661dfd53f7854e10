/* router.h - the routing engine of one omnirouterd instance: takes requests
 * from adapters on the bus, turns each into one atomic Redis Function call,
 * acknowledges it once Redis stored it, and delivers what lands in Redis to
 * the agents and customers connected to this instance. Owns the bus server,
 * the store and the session tables. Loop thread only. */
#ifndef OMR_ROUTER_ROUTER_H
#define OMR_ROUTER_ROUTER_H

#include <stdbool.h>
#include <stddef.h>

#include <uv.h>

#include "omnirouter/config.h"
#include "omnirouter/health.h"

typedef struct omr_router omr_router_t;

/* Called each time the instance's state changes: Redis became ready, went
 * down, refuses writes (detail: Redis's error text; NULL otherwise), takes
 * writes again. Never with OMR_HEALTH_STOPPING. */
typedef void (*omr_router_state_fn)(void *ud, omr_health_t health, const char *detail);

/* Binds the bus and starts connecting to Redis. 0 or a negative errno. */
int omr_router_start(uv_loop_t *loop, void *zctx, const omr_config_t *cfg,
                     omr_router_state_fn on_state, void *ud, omr_router_t **out);

/* Applies reloadable options. */
void omr_router_reload(omr_router_t *r, const omr_config_t *cfg);

/* Redis calls and stream reads not yet answered (for draining). */
size_t omr_router_busy(const omr_router_t *r);

/* Closes the bus and Redis; frees once the loop ran the close callbacks. */
void omr_router_close(omr_router_t **rp);

#endif
