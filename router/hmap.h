/* hmap.h - a small string-keyed hash map (chained, power-of-two buckets,
 * grows at load 1). Keys are copied; values are borrowed pointers. Used for
 * the router's per-instance session tables. Single thread. */
#ifndef OMR_ROUTER_HMAP_H
#define OMR_ROUTER_HMAP_H

#include <stddef.h>

typedef struct omr_hmap omr_hmap_t;

omr_hmap_t *omr_hmap_new(void);
void omr_hmap_destroy(omr_hmap_t **mp); /* frees keys, not values */

/* Returns the value or NULL. */
void *omr_hmap_get(const omr_hmap_t *m, const char *key);

/* Inserts or replaces; returns 0 or -ENOMEM. */
int omr_hmap_put(omr_hmap_t *m, const char *key, void *value);

/* Removes the key; returns its value or NULL. */
void *omr_hmap_del(omr_hmap_t *m, const char *key);

size_t omr_hmap_size(const omr_hmap_t *m);

/* Calls fn for every entry; fn must not change the map. */
void omr_hmap_each(const omr_hmap_t *m, void (*fn)(void *ud, const char *key, void *value),
                   void *ud);

#endif
