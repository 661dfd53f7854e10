/* ackcache.c - see ackcache.h. */
#include "ackcache.h"

#include <stdlib.h>
#include <string.h>

#include "hmap.h"

typedef struct slot {
	char *key;
	void *frame;
	size_t len;
} slot_t;

struct omr_ackcache {
	omr_hmap_t *index; /* key -> slot_t */
	slot_t *ring;
	size_t slots, next;
};

omr_ackcache_t *omr_ackcache_new(size_t slots)
{
	omr_ackcache_t *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->slots = slots ? slots : 1;
	c->ring = calloc(c->slots, sizeof(*c->ring));
	c->index = omr_hmap_new();
	if (!c->ring || !c->index) {
		omr_ackcache_destroy(&c);
		return NULL;
	}
	return c;
}

static void slot_clear(omr_ackcache_t *c, slot_t *s)
{
	if (s->key && omr_hmap_get(c->index, s->key) == s)
		omr_hmap_del(c->index, s->key);
	free(s->key);
	free(s->frame);
	*s = (slot_t){0};
}

void omr_ackcache_destroy(omr_ackcache_t **cp)
{
	omr_ackcache_t *c = *cp;
	if (!c)
		return;
	for (size_t i = 0; c->ring && c->index && i < c->slots; i++)
		slot_clear(c, &c->ring[i]);
	free(c->ring);
	omr_hmap_destroy(&c->index);
	free(c);
	*cp = NULL;
}

void omr_ackcache_put(omr_ackcache_t *c, const char *key, const void *frame, size_t len)
{
	slot_t *s = &c->ring[c->next];
	c->next = (c->next + 1) % c->slots;
	slot_clear(c, s);
	s->key = strdup(key);
	s->frame = malloc(len ? len : 1);
	if (!s->key || !s->frame || omr_hmap_put(c->index, key, s) != 0) {
		free(s->key);
		free(s->frame);
		*s = (slot_t){0};
		return; /* forgetting an ack only costs a Redis call later */
	}
	memcpy(s->frame, frame, len);
	s->len = len;
}

const void *omr_ackcache_get(const omr_ackcache_t *c, const char *key, size_t *len)
{
	const slot_t *s = omr_hmap_get(c->index, key);
	if (!s)
		return NULL;
	*len = s->len;
	return s->frame;
}
