/* health.h - whether this instance can take work, for /readyz (websocket
 * thread) and systemd's STATUS (main thread). The router sets it; any thread
 * reads it. */
#ifndef OMR_HEALTH_H
#define OMR_HEALTH_H

typedef enum omr_health {
	OMR_HEALTH_STARTING = 0,  /* Redis has not answered yet */
	OMR_HEALTH_READY,         /* routing */
	OMR_HEALTH_STORE_DOWN,    /* Redis unreachable: requests wait, then "unavailable" */
	OMR_HEALTH_STORE_REFUSES, /* Redis answers but refuses writes (OOM, MISCONF, READONLY...) */
	OMR_HEALTH_STOPPING,      /* SIGTERM: draining; final */
} omr_health_t;

/* Sets the state, except that nothing follows OMR_HEALTH_STOPPING. Returns
 * the state now held. */
omr_health_t omr_health_set(omr_health_t h);
omr_health_t omr_health_get(void);
/* "ready", "redis unreachable", ... (a static string). */
const char *omr_health_text(omr_health_t h);

#endif
