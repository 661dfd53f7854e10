/* ws_acks.h - an agent connection's item acks, batched: a desktop acks every
 * item it receives, and those acks go to the router together, at most
 * WS_ACK_BATCH per request (their seqs fit one envelope attribute) and at
 * most WS_ACK_FLUSH_MS late. An ack only stops the item coming back at the
 * next login, so a short delay costs nothing. Used by ws_server.c. Loop
 * thread only. */
#ifndef OMR_WS_ACKS_H
#define OMR_WS_ACKS_H

#include <stdbool.h>

#include <uv.h>

#include "bus_client.h"
#include "websocket/ws_conn.h"
#include "websocket/ws_server.h"

typedef struct ws_acks {
	omr_ws_server_t *srv;
	ws_conn_list_t conns; /* agent connections with acks not yet sent */
	uv_timer_t timer;
	bool timer_open;
} ws_acks_t;

/* From ws_server.c: its bus (NULL once shutting down), and a request sent
 * on it or, while the bus is full, held on its connection (both take rq). */
omr_bus_client_t *ws_server_bus(const omr_ws_server_t *srv);
void ws_server_submit(omr_ws_server_t *srv, ws_conn_t *c, omr_ws_request_t *rq);
void ws_server_hold(omr_ws_server_t *srv, ws_conn_t *c, omr_ws_request_t *rq);

void ws_acks_init(ws_acks_t *a, uv_loop_t *loop, omr_ws_server_t *srv);
/* Closes the timer (cb: uv_close's callback). */
void ws_acks_close(ws_acks_t *a, uv_close_cb cb);
/* Adds an item ack (takes rq); a full batch goes at once. */
void ws_acks_add(ws_acks_t *a, ws_conn_t *c, omr_ws_request_t *rq);
/* Sends the connection's batch as one request (the first ack, with the other
 * seqs in attr "more"). False, keeping them, while the bus is full. */
bool ws_acks_flush(ws_acks_t *a, ws_conn_t *c);
/* Forgets the connection's batch (it closed: its items come back at the
 * next login). */
void ws_acks_drop(ws_acks_t *a, ws_conn_t *c);

#endif
