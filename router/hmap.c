/* hmap.c - see hmap.h. */
#include "hmap.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct node {
	struct node *next;
	uint64_t hash;
	void *value;
	char key[];
} node_t;

struct omr_hmap {
	node_t **buckets;
	size_t nbuckets, size;
};

static uint64_t hash_str(const char *s)
{
	uint64_t h = 1469598103934665603ull; /* FNV-1a */
	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211ull;
	}
	return h;
}

omr_hmap_t *omr_hmap_new(void)
{
	omr_hmap_t *m = calloc(1, sizeof(*m));
	if (!m)
		return NULL;
	m->nbuckets = 64;
	m->buckets = calloc(m->nbuckets, sizeof(*m->buckets));
	if (!m->buckets) {
		free(m);
		return NULL;
	}
	return m;
}

void omr_hmap_destroy(omr_hmap_t **mp)
{
	omr_hmap_t *m = *mp;
	if (!m)
		return;
	for (size_t i = 0; i < m->nbuckets; i++) {
		node_t *n = m->buckets[i];
		while (n) {
			node_t *next = n->next;
			free(n);
			n = next;
		}
	}
	free(m->buckets);
	free(m);
	*mp = NULL;
}

static node_t **find(const omr_hmap_t *m, const char *key, uint64_t h)
{
	node_t **pp = &m->buckets[h & (m->nbuckets - 1)];
	while (*pp && ((*pp)->hash != h || strcmp((*pp)->key, key) != 0))
		pp = &(*pp)->next;
	return pp;
}

void *omr_hmap_get(const omr_hmap_t *m, const char *key)
{
	node_t **pp = find(m, key, hash_str(key));
	return *pp ? (*pp)->value : NULL;
}

static void grow(omr_hmap_t *m)
{
	size_t nb = m->nbuckets * 2;
	node_t **b = calloc(nb, sizeof(*b));
	if (!b)
		return; /* stay at the current size: slower, still correct */
	for (size_t i = 0; i < m->nbuckets; i++) {
		node_t *n = m->buckets[i];
		while (n) {
			node_t *next = n->next;
			n->next = b[n->hash & (nb - 1)];
			b[n->hash & (nb - 1)] = n;
			n = next;
		}
	}
	free(m->buckets);
	m->buckets = b;
	m->nbuckets = nb;
}

int omr_hmap_put(omr_hmap_t *m, const char *key, void *value)
{
	uint64_t h = hash_str(key);
	node_t **pp = find(m, key, h);
	if (*pp) {
		(*pp)->value = value;
		return 0;
	}
	size_t klen = strlen(key);
	node_t *n = malloc(sizeof(*n) + klen + 1);
	if (!n)
		return -ENOMEM;
	n->hash = h;
	n->value = value;
	memcpy(n->key, key, klen + 1);
	n->next = NULL;
	*pp = n;
	if (++m->size > m->nbuckets)
		grow(m);
	return 0;
}

void *omr_hmap_del(omr_hmap_t *m, const char *key)
{
	node_t **pp = find(m, key, hash_str(key));
	node_t *n = *pp;
	if (!n)
		return NULL;
	void *v = n->value;
	*pp = n->next;
	free(n);
	m->size--;
	return v;
}

size_t omr_hmap_size(const omr_hmap_t *m)
{
	return m->size;
}

void omr_hmap_each(const omr_hmap_t *m, void (*fn)(void *ud, const char *key, void *value),
                   void *ud)
{
	for (size_t i = 0; i < m->nbuckets; i++)
		for (node_t *n = m->buckets[i]; n; n = n->next)
			fn(ud, n->key, n->value);
}
