/* u64map.c - linear-probing hash map uint64_t -> pointer with backward-shift
 * deletion (no tombstones, so heavy churn of connection and request ids never
 * degrades lookups). Owner's thread only. */
#include "u64map.h"

#include <errno.h>
#include <stdlib.h>

struct omr_u64map {
	uint64_t *keys; /* 0 = empty slot */
	void **vals;
	size_t cap; /* power of two */
	size_t count;
};

#define U64MAP_MIN_CAP 16u

static size_t slot_of(uint64_t key, size_t cap)
{
	/* splitmix64 finaliser: ids are sequential, spread them. */
	key ^= key >> 30;
	key *= 0xbf58476d1ce4e5b9ull;
	key ^= key >> 27;
	key *= 0x94d049bb133111ebull;
	key ^= key >> 31;
	return (size_t)key & (cap - 1);
}

omr_u64map_t *omr_u64map_new(void)
{
	omr_u64map_t *m = calloc(1, sizeof(*m));
	if (!m)
		return NULL;
	m->keys = calloc(U64MAP_MIN_CAP, sizeof(*m->keys));
	m->vals = calloc(U64MAP_MIN_CAP, sizeof(*m->vals));
	if (!m->keys || !m->vals) {
		omr_u64map_destroy(&m);
		return NULL;
	}
	m->cap = U64MAP_MIN_CAP;
	return m;
}

void omr_u64map_destroy(omr_u64map_t **mapp)
{
	if (!mapp || !*mapp)
		return;
	free((*mapp)->keys);
	free((*mapp)->vals);
	free(*mapp);
	*mapp = NULL;
}

static void insert_slot(uint64_t *keys, void **vals, size_t cap, uint64_t key, void *value)
{
	size_t i = slot_of(key, cap);
	while (keys[i] && keys[i] != key)
		i = (i + 1) & (cap - 1);
	keys[i] = key;
	vals[i] = value;
}

static int grow(omr_u64map_t *m)
{
	size_t ncap = m->cap * 2;
	uint64_t *nkeys = calloc(ncap, sizeof(*nkeys));
	void **nvals = calloc(ncap, sizeof(*nvals));
	if (!nkeys || !nvals) {
		free(nkeys);
		free(nvals);
		return -ENOMEM;
	}
	for (size_t i = 0; i < m->cap; i++) {
		if (m->keys[i])
			insert_slot(nkeys, nvals, ncap, m->keys[i], m->vals[i]);
	}
	free(m->keys);
	free(m->vals);
	m->keys = nkeys;
	m->vals = nvals;
	m->cap = ncap;
	return 0;
}

int omr_u64map_put(omr_u64map_t *m, uint64_t key, void *value)
{
	if (!key || !value)
		return -EINVAL;
	if (omr_u64map_get(m, key)) {
		insert_slot(m->keys, m->vals, m->cap, key, value);
		return 0;
	}
	/* Keep the load under 1/2 so probe runs stay short. */
	if ((m->count + 1) * 2 > m->cap) {
		int rc = grow(m);
		if (rc)
			return rc;
	}
	insert_slot(m->keys, m->vals, m->cap, key, value);
	m->count++;
	return 0;
}

static size_t find(const omr_u64map_t *m, uint64_t key)
{
	size_t i = slot_of(key, m->cap);
	while (m->keys[i]) {
		if (m->keys[i] == key)
			return i;
		i = (i + 1) & (m->cap - 1);
	}
	return m->cap;
}

void *omr_u64map_get(const omr_u64map_t *m, uint64_t key)
{
	if (!m || !key)
		return NULL;
	size_t i = find(m, key);
	return i < m->cap ? m->vals[i] : NULL;
}

void *omr_u64map_del(omr_u64map_t *m, uint64_t key)
{
	if (!m || !key)
		return NULL;
	size_t i = find(m, key);
	if (i == m->cap)
		return NULL;
	void *value = m->vals[i];
	size_t mask = m->cap - 1;
	/* Backward-shift: pull later members of the probe run into the hole
	 * when their home slot is not between the hole and themselves. */
	size_t hole = i;
	size_t j = (i + 1) & mask;
	while (m->keys[j]) {
		size_t home = slot_of(m->keys[j], m->cap);
		int movable = hole <= j ? (home <= hole || home > j) : (home <= hole && home > j);
		if (movable) {
			m->keys[hole] = m->keys[j];
			m->vals[hole] = m->vals[j];
			hole = j;
		}
		j = (j + 1) & mask;
	}
	m->keys[hole] = 0;
	m->vals[hole] = NULL;
	m->count--;
	return value;
}

size_t omr_u64map_count(const omr_u64map_t *m)
{
	return m ? m->count : 0;
}

void omr_u64map_each(const omr_u64map_t *m, void (*fn)(uint64_t key, void *value, void *arg),
                     void *arg)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->cap; i++) {
		if (m->keys[i])
			fn(m->keys[i], m->vals[i], arg);
	}
}
