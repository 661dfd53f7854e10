/* health.c - the instance's readiness, one atomic (health.h). Any thread. */
#include "omnirouter/health.h"

#include <stdatomic.h>

static _Atomic int health = OMR_HEALTH_STARTING;

omr_health_t omr_health_set(omr_health_t h)
{
	int cur = atomic_load(&health);
	while (cur != OMR_HEALTH_STOPPING && cur != (int)h &&
	       !atomic_compare_exchange_weak(&health, &cur, (int)h))
		;
	return (omr_health_t)atomic_load(&health);
}

omr_health_t omr_health_get(void)
{
	return (omr_health_t)atomic_load(&health);
}

const char *omr_health_text(omr_health_t h)
{
	switch (h) {
	case OMR_HEALTH_READY:
		return "ready";
	case OMR_HEALTH_STORE_DOWN:
		return "redis unreachable";
	case OMR_HEALTH_STORE_REFUSES:
		return "redis refuses writes";
	case OMR_HEALTH_STOPPING:
		return "stopping";
	case OMR_HEALTH_STARTING:
	default:
		return "starting";
	}
}
