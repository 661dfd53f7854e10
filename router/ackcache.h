/* ackcache.h - the acknowledgements the router sent most recently, by
 * request ("peer:id"), so a resent request that arrives after its first copy
 * was answered gets the same ack again without another Redis call. Under
 * overload the adapter resends what waited too long in the queue; without
 * this every resend ran its Function again (idempotent, but it doubled the
 * load exactly when there was none to spare). A fixed ring: the oldest entry
 * is forgotten first; Redis-side idempotency stays the correctness backstop.
 * Loop thread only. */
#ifndef OMR_ROUTER_ACKCACHE_H
#define OMR_ROUTER_ACKCACHE_H

#include <stddef.h>

typedef struct omr_ackcache omr_ackcache_t;

omr_ackcache_t *omr_ackcache_new(size_t slots);
void omr_ackcache_destroy(omr_ackcache_t **cp);

/* Remembers frame (len bytes, copied) as the ack of request key. */
void omr_ackcache_put(omr_ackcache_t *c, const char *key, const void *frame, size_t len);

/* The ack sent for key, or NULL; *len is set when found. Valid until the
 * next put. */
const void *omr_ackcache_get(const omr_ackcache_t *c, const char *key, size_t *len);

#endif
