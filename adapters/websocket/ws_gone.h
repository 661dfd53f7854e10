/* ws_gone.h - reports of closed connections (customer.gone / agent.gone) on
 * their way to the router: the report, the envelope it is sent as, and the
 * queue of those waiting for room on the bus (or sent again after the
 * router did not answer in time). Such a report is never dropped: the router
 * would go on delivering to a connection that is gone, and an agent would
 * stay online with no desktop. Loop thread only. */
#ifndef OMR_WS_GONE_H
#define OMR_WS_GONE_H

#include <stdbool.h>
#include <stdint.h>

#include "omnirouter/envelope.h"

typedef struct ws_gone {
	struct ws_gone *next;
	bool agent;
	bool shutdown; /* closed because this adapter stops (drain): not a client leaving */
	uint64_t conn;
	char tenant[OMR_ENV_ID_MAX + 1], id[OMR_ENV_ID_MAX + 1];
} ws_gone_t;

/* First in, first out. Zero it, then ws_gone_queue_init. */
typedef struct ws_gone_queue {
	ws_gone_t *head, **tail;
} ws_gone_queue_t;

/* The report of connection conn (an agent's or a customer's), or NULL on
 * ENOMEM. */
ws_gone_t *ws_gone_new(bool agent, uint64_t conn, const char *tenant, const char *id);

/* The envelope that tells the router (reason "shutdown" when g->shutdown),
 * or NULL on ENOMEM (the caller destroys it). */
omr_envelope_t *ws_gone_envelope(const ws_gone_t *g);

/* Whether a and b report the same customer or agent (the connection aside). */
bool ws_gone_same(const ws_gone_t *a, const ws_gone_t *b);

/* A connection's kept reports (ws_conn_t.unanswered): a list of distinct
 * customers and agents, newest first, through `next`. ws_gone_keep adds g
 * (freed when the list names its customer or agent already); past max
 * reports it unlinks the oldest and returns it for the caller to send, else
 * NULL. ws_gone_take unlinks and returns the newest, or NULL when empty;
 * ws_gone_free_all frees every report of the list. */
ws_gone_t *ws_gone_keep(ws_gone_t **list, ws_gone_t *g, unsigned max);
ws_gone_t *ws_gone_take(ws_gone_t **list);
void ws_gone_free_all(ws_gone_t **list);

void ws_gone_queue_init(ws_gone_queue_t *q);
void ws_gone_push(ws_gone_queue_t *q, ws_gone_t *g);    /* at the tail */
void ws_gone_unshift(ws_gone_queue_t *q, ws_gone_t *g); /* back at the head */
ws_gone_t *ws_gone_shift(ws_gone_queue_t *q);           /* the head, or NULL */
void ws_gone_clear(ws_gone_queue_t *q);                 /* frees every report */

#endif
