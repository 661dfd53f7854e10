/* u64map.h - an open-addressing hash map from a non-zero uint64_t key to a
 * pointer, for the adapters' id tables (bus requests by id, connections by
 * conn id). Owns only its slot array, never the values. Not thread-safe: the
 * owning loop thread only. */
#ifndef OMR_ADAPTERS_U64MAP_H
#define OMR_ADAPTERS_U64MAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct omr_u64map omr_u64map_t;

/* A map that grows as needed. NULL on ENOMEM. No I/O. */
omr_u64map_t *omr_u64map_new(void);

/* Frees the slots (not the values); NULL-safe; sets *mapp = NULL. */
void omr_u64map_destroy(omr_u64map_t **mapp);

/* Inserts or replaces key (> 0). Returns 0, -EINVAL (key 0 or value NULL),
 * -ENOMEM. */
int omr_u64map_put(omr_u64map_t *map, uint64_t key, void *value);

/* The value of key, or NULL. */
void *omr_u64map_get(const omr_u64map_t *map, uint64_t key);

/* Removes key and returns its value, or NULL when absent. */
void *omr_u64map_del(omr_u64map_t *map, uint64_t key);

size_t omr_u64map_count(const omr_u64map_t *map);

/* Calls fn for every entry; fn must not change the map. */
void omr_u64map_each(const omr_u64map_t *map, void (*fn)(uint64_t key, void *value, void *arg),
                     void *arg);

#endif
