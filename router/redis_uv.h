/* redis_uv.h - attaches a hiredis async context to a libuv loop.
 * Written here instead of hiredis 0.14's bundled adapters/libuv.h, which
 * ignores libuv's error status: libuv reports POLLERR as a negative status
 * and stops the handle, so a dead Redis went unnoticed. Loop thread only. */
#ifndef OMR_ROUTER_REDIS_UV_H
#define OMR_ROUTER_REDIS_UV_H

#include <hiredis/async.h>
#include <uv.h>

/* Returns 0 or -ENOMEM / -EEXIST (already attached). The attachment is freed
 * by hiredis's cleanup hook when the context goes away. */
int omr_redis_uv_attach(redisAsyncContext *ac, uv_loop_t *loop);

#endif
