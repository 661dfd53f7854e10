/* redis_uv.c - hiredis async <-> libuv glue. Loop thread only. */
#include "redis_uv.h"

#include <errno.h>
#include <stdlib.h>

typedef struct redis_uv {
	redisAsyncContext *ac; /* NULL once hiredis cleaned up */
	uv_poll_t poll;
	int events;
} redis_uv_t;

static void on_poll(uv_poll_t *handle, int status, int events)
{
	redis_uv_t *p = handle->data;
	/* An error status means the socket failed: let hiredis read and write
	 * so it sees the error itself and disconnects. */
	if (status < 0)
		events = UV_READABLE | UV_WRITABLE;
	if (p->ac && (events & UV_READABLE))
		redisAsyncHandleRead(p->ac);
	if (p->ac && (events & UV_WRITABLE))
		redisAsyncHandleWrite(p->ac);
}

static void update(redis_uv_t *p, int events)
{
	if (events == p->events)
		return;
	p->events = events;
	if (events)
		uv_poll_start(&p->poll, events, on_poll);
	else
		uv_poll_stop(&p->poll);
}

static void add_read(void *priv)
{
	redis_uv_t *p = priv;
	update(p, p->events | UV_READABLE);
}

static void del_read(void *priv)
{
	redis_uv_t *p = priv;
	update(p, p->events & ~UV_READABLE);
}

static void add_write(void *priv)
{
	redis_uv_t *p = priv;
	update(p, p->events | UV_WRITABLE);
}

static void del_write(void *priv)
{
	redis_uv_t *p = priv;
	update(p, p->events & ~UV_WRITABLE);
}

static void on_close(uv_handle_t *handle)
{
	free(handle->data);
}

static void cleanup(void *priv)
{
	redis_uv_t *p = priv;
	p->ac = NULL;
	uv_close((uv_handle_t *)&p->poll, on_close);
}

int omr_redis_uv_attach(redisAsyncContext *ac, uv_loop_t *loop)
{
	if (ac->ev.data != NULL)
		return -EEXIST;
	redis_uv_t *p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	if (uv_poll_init(loop, &p->poll, ac->c.fd) != 0) {
		free(p);
		return -EBADF;
	}
	p->ac = ac;
	p->poll.data = p;
	ac->ev.addRead = add_read;
	ac->ev.delRead = del_read;
	ac->ev.addWrite = add_write;
	ac->ev.delWrite = del_write;
	ac->ev.cleanup = cleanup;
	ac->ev.data = p;
	return 0;
}
