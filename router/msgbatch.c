/* msgbatch.c - the chat messages of one loop turn go to Redis together: one
 * FCALL omr_conv_messages instead of one omr_conv_message each. Under load a
 * turn brings dozens, and the fixed cost of a call was a sixth of a message's
 * work inside Redis; a lone message goes by itself in the same turn, with no
 * added wait. Each message keeps its own reply, ack and errors.
 *
 * Order: a request that is not a message flushes the messages before it, so
 * Redis runs every request in the order it arrived (a reply, then the close
 * that follows it). Loop thread only. */
#include "router_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "omnirouter/log.h"

#define MSG_ARGS 6 /* conv from agent msgid text name */

typedef struct batch_call {
	size_t n;
	omr_request_t *q[];
} batch_call_t;

static void on_stored(void *ud, const redisReply *rep)
{
	batch_call_t *b = ud;
	for (size_t i = 0; i < b->n; i++) {
		/* No reply or an error for the whole call: the same for each. */
		const redisReply *one = rep;
		if (rep && rep->type == REDIS_REPLY_ARRAY)
			one = i < rep->elements ? rep->element[i] : NULL;
		omr_request_on_message(b->q[i], one);
	}
	free(b);
}

/* Drops requests that cannot be sent: no ack, their adapter resends them. */
static void drop(omr_request_t **q, size_t n)
{
	for (size_t i = 0; i < n; i++)
		omr_request_free(q[i]);
}

void omr_msgbatch_flush(omr_router_t *r)
{
	size_t n = r->nmsgs;
	if (n == 0)
		return;
	r->nmsgs = 0;
	uv_prepare_stop(r->msgflush);
	/* The messages' fields, then one more argument: the agents' desktop
	 * sessions, comma-separated, one per message ("" for a customer's). A
	 * library of an earlier version, which another instance may have loaded
	 * during a rolling upgrade, reads the messages and ignores it. */
	int argc = 5 + MSG_ARGS * (int)n + 1;
	size_t slen = n;
	for (size_t i = 0; i < n; i++)
		if (r->msgs[i]->env->from == OMR_ROLE_AGENT)
			slen += strlen(r->msgs[i]->session);
	batch_call_t *b = malloc(sizeof(*b) + n * sizeof(b->q[0]));
	const char **argv = malloc((size_t)argc * sizeof(*argv));
	size_t *lens = malloc((size_t)argc * sizeof(*lens));
	char *sessions = malloc(slen + 1);
	if (!b || !argv || !lens || !sessions) {
		drop(r->msgs, n);
		free(b);
		free(argv);
		free(lens);
		free(sessions);
		return;
	}
	char *s = sessions;
	char prefix[OMR_ENV_ID_MAX + 8], max[24];
	omr_router_group_prefix(r->cfg->routing_group, prefix, sizeof(prefix));
	snprintf(max, sizeof(max), "%lld", (long long)r->cfg->chat_max_messages);
	argv[0] = "FCALL";
	argv[1] = "omr_conv_messages";
	argv[2] = "1";
	argv[3] = prefix;
	argv[4] = max;
	for (size_t i = 0; i < n; i++) {
		const omr_envelope_t *e = r->msgs[i]->env;
		const char **a = argv + 5 + MSG_ARGS * i;
		a[0] = e->conv;
		a[1] = omr_role_name(e->from);
		a[2] = e->from == OMR_ROLE_AGENT ? e->agent : "";
		a[3] = e->msgid;
		a[4] = e->text;
		a[5] = omr_str_or_empty(e->name);
		if (i > 0)
			*s++ = ',';
		if (e->from == OMR_ROLE_AGENT) {
			size_t k = strlen(r->msgs[i]->session);
			memcpy(s, r->msgs[i]->session, k);
			s += k;
		}
		b->q[i] = r->msgs[i];
	}
	*s = '\0';
	argv[argc - 1] = sessions;
	for (int i = 0; i < argc; i++)
		lens[i] = strlen(argv[i]);
	b->n = n;
	int rc = omr_store_command(r->store, on_stored, b, argc, argv, lens);
	free(argv);
	free(lens);
	free(sessions);
	if (rc != 0) {
		drop(b->q, n);
		free(b);
	}
}

static void on_flush(uv_prepare_t *h)
{
	omr_msgbatch_flush(h->data);
}

int omr_msgbatch_add(omr_request_t *q)
{
	omr_router_t *r = q->r;
	if (!omr_store_is_ready(r->store))
		return -EAGAIN;
	r->msgs[r->nmsgs++] = q;
	if (r->nmsgs == OMR_MSG_BATCH)
		omr_msgbatch_flush(r);
	else
		uv_prepare_start(r->msgflush, on_flush);
	return 0;
}
