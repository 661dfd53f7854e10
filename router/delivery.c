/* delivery.c - pushes what lands in Redis to the connections on this
 * instance. Loop thread only.
 *
 * Agents: the inbox stream is read through consumer group "desktop" with the
 * agent id as consumer. A read is ">" (new entries), or a history read: the
 * entries delivered to this consumer and not acknowledged, from the start
 * of that list, page by page (hcursor), all of them sent (again: desktops
 * drop a seq they have). The whole history is read at login, after Redis
 * comes back or a failed read, until a read reaches its end. Besides, the
 * first read OMR_HISTORY_RECHECK_MS or more after the last history read is
 * one page of it (periodic): entries another instance's stale watch of the
 * same agent took may be anywhere in it, also before this watch's cursor.
 * The next periodic page goes on from where this one ended and starts over
 * at the end, so a desktop that acks nothing gets at most one page again
 * every OMR_HISTORY_RECHECK_MS, not its whole list (up to the inbox's
 * length). The desktop acks each entry; unacked ones come back at the next
 * login.
 *
 * Customers: the transcript stream is read with XRANGE from the connection's
 * cursor; the customer resumes with the last id it saw.
 *
 * A desktop that moves (a newer login, maybe on another instance) must not
 * lose what the watch of its old connection read: those entries are pending
 * under the agent, but the new watch only reads new ones after its login's
 * history read. So the instance that ends the old session, and one whose
 * read for a watch already gone brought entries, publish "h:AGENT": the
 * instance with the agent's watch reads the whole history again.
 *
 * Reads are triggered by the pub/sub notifications the Functions publish
 * ("a:AGENT", "c:CONV"), and for every watch when Redis becomes ready again
 * (notifications are lost while the subscription is down). One read per
 * watch at a time; a notification during a read marks it dirty. */
#include "router_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "omnirouter/log.h"
#include "omnirouter/util.h"

static void read_watch(omr_router_t *r, omr_watch_t *w);

/* "group/id"; an id too long for any session gives "", which matches none. */
static void watch_key(const char *group, const char *id, char *out, size_t outsize)
{
	int n = snprintf(out, outsize, "%s/%s", group, id);
	if (n < 0 || (size_t)n >= outsize)
		out[0] = '\0';
}

static omr_watch_t *watch_new(const char *group, const char *id, const omr_bus_peer_t *peer,
                              uint64_t conn)
{
	omr_watch_t *w = calloc(1, sizeof(*w));
	if (!w)
		return NULL;
	w->group = strdup(group);
	w->id = strdup(id);
	if (!w->group || !w->id) {
		free(w->group);
		free(w->id);
		free(w);
		return NULL;
	}
	w->peer = *peer;
	w->conn = conn;
	w->refs = 1;
	w->history = true;
	snprintf(w->cursor, sizeof(w->cursor), "0");
	snprintf(w->hcursor, sizeof(w->hcursor), "0");
	return w;
}

static void watch_unref(omr_watch_t *w)
{
	if (--w->refs > 0)
		return;
	free(w->group);
	free(w->id);
	free(w->session);
	free(w);
}

/* ---- stream ids and entries --------------------------------------------- */

static int seq_parse(const char *s, uint64_t *ms, uint64_t *n)
{
	char *end = NULL;
	*ms = strtoull(s, &end, 10);
	*n = 0;
	if (*end == '-')
		*n = strtoull(end + 1, &end, 10);
	return *end == '\0' ? 0 : -EINVAL;
}

/* > 0 when a is after b. */
static int seq_cmp(const char *a, const char *b)
{
	uint64_t am, an, bm, bn;
	seq_parse(a, &am, &an);
	seq_parse(b, &bm, &bn);
	if (am != bm)
		return am > bm ? 1 : -1;
	return an > bn ? 1 : (an < bn ? -1 : 0);
}

static const char *field(const redisReply *fields, const char *name)
{
	if (!fields || fields->type != REDIS_REPLY_ARRAY)
		return NULL;
	for (size_t i = 0; i + 1 < fields->elements; i += 2) {
		const redisReply *k = fields->element[i], *v = fields->element[i + 1];
		if (k->type == REDIS_REPLY_STRING && v->type == REDIS_REPLY_STRING &&
		    strcmp(k->str, name) == 0)
			return v->str;
	}
	return NULL;
}

static void set_if(char **dst, const char *v)
{
	if (v && *v)
		omr_envelope_set(dst, v);
}

/* attrs "history": the comma-separated earlier conversation ids, most
 * recent first, cut at a comma to fit an attribute value (the envelope
 * refuses longer ones, and with them the whole delivery). */
static void add_history(omr_envelope_t *d, const char *history)
{
	char buf[OMR_ENV_ATTR_VALUE_MAX + 1];
	size_t n = strlen(history);
	if (n > OMR_ENV_ATTR_VALUE_MAX) {
		n = OMR_ENV_ATTR_VALUE_MAX;
		while (n > 0 && history[n] != ',')
			n--;
	}
	memcpy(buf, history, n);
	buf[n] = '\0';
	if (n > 0)
		omr_envelope_add_attr(d, "history", buf);
}

/* Sends one stream entry to the watch's connection as a DELIVER. */
static void deliver_entry(omr_router_t *r, omr_watch_t *w, const char *seq,
                          const redisReply *fields)
{
	omr_envelope_t *d = omr_envelope_new(OMR_ENV_DELIVER);
	if (!d)
		return;
	const char *kind = field(fields, "kind");
	const char *event = kind;
	if (!w->is_agent && kind && strcmp(kind, "event") == 0) {
		event = field(fields, "event");
		if (event && (strcmp(event, "assigned") == 0 || strcmp(event, "closed") == 0))
			w->waiting = false;
		else if (event &&
		         (strcmp(event, "requeued") == 0 || strcmp(event, "transferred") == 0))
			w->waiting = true;
	}
	d->conn = w->conn;
	d->channel = OMR_CHANNEL_CHAT;
	set_if(&d->event, event ? event : "message");
	set_if(&d->seq, seq);
	set_if(&d->tenant, field(fields, "tenant"));
	set_if(&d->conv, w->is_agent ? field(fields, "conv") : w->id);
	if (w->is_agent) /* whose inbox: the adapter checks the connection is that agent's */
		set_if(&d->agent, w->id);
	set_if(&d->msgid, field(fields, "msgid"));
	set_if(&d->text, field(fields, "text"));
	set_if(&d->name, field(fields, "name"));
	set_if(&d->lang, field(fields, "lang"));
	set_if(&d->reason, field(fields, "reason"));
	const char *queue = field(fields, "queue"), *expires = field(fields, "expires");
	if (queue && *queue)
		omr_envelope_add_attr(d, "queue", queue);
	if (expires && *expires)
		omr_envelope_add_attr(d, "expires_ms", expires);
	const char *wrapup = field(fields, "wrapup"); /* a close's wrap-up end, "0": none */
	if (wrapup && *wrapup && strcmp(wrapup, "0") != 0)
		omr_envelope_add_attr(d, "wrapup_until_ms", wrapup);
	/* An assignment: the customer id and its earlier conversations. */
	const char *customer = field(fields, "customer"), *history = field(fields, "history");
	if (customer && *customer)
		omr_envelope_add_attr(d, "customer", customer);
	if (history && *history)
		add_history(d, history);
	const char *from = field(fields, "from");
	if (from)
		d->from = omr_role_from_name(from, strlen(from));
	const char *ts = field(fields, "ts");
	int64_t v;
	if (ts && omr_parse_int(ts, 0, INT64_MAX, &v) == 0)
		d->ts_ms = (uint64_t)v;
	omr_router_send(r, &w->peer, d);
	omr_envelope_destroy(&d);
}

/* Delivers the entries of one stream reply ([id, fields] pairs) that come
 * after the cursor (a history read: after the history cursor; the cursor
 * then only moves forward). Returns how many entries the reply held. */
static size_t deliver_entries(omr_router_t *r, omr_watch_t *w, const redisReply *entries,
                              bool history)
{
	if (!entries || entries->type != REDIS_REPLY_ARRAY)
		return 0;
	for (size_t i = 0; i < entries->elements; i++) {
		const redisReply *e = entries->element[i];
		if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
		    e->element[0]->type != REDIS_REPLY_STRING)
			continue;
		const char *seq = e->element[0]->str;
		if (seq_cmp(seq, history ? w->hcursor : w->cursor) <= 0)
			continue;
		if (history)
			snprintf(w->hcursor, sizeof(w->hcursor), "%s", seq);
		if (seq_cmp(seq, w->cursor) > 0)
			snprintf(w->cursor, sizeof(w->cursor), "%s", seq);
		/* A trimmed entry has nil fields: nothing left to deliver. */
		if (e->element[1]->type == REDIS_REPLY_ARRAY)
			deliver_entry(r, w, seq, e->element[1]);
	}
	return entries->elements;
}

/* XREADGROUP replies [[stream, entries]] (or nil when nothing is new). */
static size_t deliver_xread(omr_router_t *r, omr_watch_t *w, const redisReply *rep, bool history)
{
	if (!rep || rep->type != REDIS_REPLY_ARRAY || rep->elements < 1)
		return 0;
	const redisReply *s = rep->element[0];
	if (s->type != REDIS_REPLY_ARRAY || s->elements != 2)
		return 0;
	return deliver_entries(r, w, s->element[1], history);
}

/* ---- reads -------------------------------------------------------------- */

typedef struct read_op {
	omr_router_t *r;
	omr_watch_t *w;
	size_t got;
	bool history;  /* agents: this is a history read (from hcursor) */
	bool periodic; /* agents: one page of the history (OMR_HISTORY_RECHECK_MS) */
	bool failed;
} read_op_t;

static void read_done(read_op_t *op)
{
	omr_router_t *r = op->r;
	omr_watch_t *w = op->w;
	r->reads--;
	w->reading = false;
	if (op->failed) {
		w->history = true; /* a lost reply may have moved entries into the history */
		snprintf(w->hcursor, sizeof(w->hcursor), "0");
	}
	bool again = !w->removed && !op->failed && (w->dirty || op->got >= OMR_READ_COUNT);
	free(op);
	if (again)
		read_watch(r, w);
	watch_unref(w);
}

/* The reply of a command nobody waits for (ud: what it was, for the log). */
static void warn_if_failed(void *ud, const redisReply *rep)
{
	if (rep && rep->type == REDIS_REPLY_ERROR)
		omr_warn("delivery", "%s failed error=\"%s\"", (const char *)ud, rep->str);
}

/* "h:AGENT" to every instance: the one with the agent's watch reads its
 * whole history again (the file's comment). */
static void publish_reread(omr_router_t *r, const char *group, const char *agent)
{
	char channel[OMR_ENV_ID_MAX + 16], msg[OMR_ENV_ID_MAX + 3];
	snprintf(channel, sizeof(channel), "omr:{%s}:notify", group);
	snprintf(msg, sizeof(msg), "h:%s", agent);
	const char *argv[] = {"PUBLISH", channel, msg};
	size_t lens[] = {7, strlen(channel), strlen(msg)};
	omr_store_command(r->store, warn_if_failed, "re-read notification", 3, argv, lens);
}

/* An XREADGROUP reply with at least one entry. */
static bool xread_has_entries(const redisReply *rep)
{
	if (rep->type != REDIS_REPLY_ARRAY)
		return false;
	for (size_t i = 0; i < rep->elements; i++) {
		const redisReply *s = rep->element[i];
		if (s->type == REDIS_REPLY_ARRAY && s->elements == 2 &&
		    s->element[1]->type == REDIS_REPLY_ARRAY && s->element[1]->elements > 0)
			return true;
	}
	return false;
}

static void on_read_reply(void *ud, const redisReply *rep)
{
	read_op_t *op = ud;
	if (!rep || rep->type == REDIS_REPLY_ERROR) {
		if (rep)
			omr_warn("delivery", "stream read failed id=%s error=\"%s\"", op->w->id,
			         rep->str);
		op->failed = true;
	} else if (!op->w->removed) {
		size_t got = op->w->is_agent ? deliver_xread(op->r, op->w, rep, op->history)
		                             : deliver_entries(op->r, op->w, rep, false);
		op->got += got;
		if (op->history && got < OMR_READ_COUNT) {
			/* Read to its end: the ">" read follows at once. */
			op->w->history = false;
			snprintf(op->w->hcursor, sizeof(op->w->hcursor), "0"); /* the next pass */
			op->w->history_ms = uv_now(op->r->loop);
			op->w->dirty = true;
		} else if (op->periodic) {
			/* One page is all a periodic read takes; the next one goes
			 * on from hcursor. The ">" read follows at once. */
			op->w->history_ms = uv_now(op->r->loop);
			op->w->dirty = true;
		}
	} else if (op->w->is_agent && xread_has_entries(rep)) {
		/* Read for a desktop that is gone from here: nobody sent them. */
		publish_reread(op->r, op->w->group, op->w->id);
	}
	read_done(op);
}

static int send_read(omr_router_t *r, read_op_t *op, const char *last)
{
	omr_watch_t *w = op->w;
	char key[2 * OMR_ENV_ID_MAX + 40], count[16], from[OMR_SEQ_MAX + 2];
	snprintf(count, sizeof(count), "%d", OMR_READ_COUNT);
	if (w->is_agent) {
		snprintf(key, sizeof(key), "omr:{%s}:agent:%s:inbox", w->group, w->id);
		const char *argv[] = {"XREADGROUP", "GROUP",   "desktop", w->id, "COUNT",
		                      count,        "STREAMS", key,       last};
		size_t lens[9];
		for (int i = 0; i < 9; i++)
			lens[i] = strlen(argv[i]);
		return omr_store_command(r->store, on_read_reply, op, 9, argv, lens);
	}
	snprintf(key, sizeof(key), "omr:{%s}:conv:%s:log", w->group, w->id);
	snprintf(from, sizeof(from), "(%s", last);
	const char *argv[] = {"XRANGE", key, from, "+", "COUNT", count};
	size_t lens[6];
	for (int i = 0; i < 6; i++)
		lens[i] = strlen(argv[i]);
	return omr_store_command(r->store, on_read_reply, op, 6, argv, lens);
}

void omr_delivery_trim_inbox(omr_router_t *r, omr_watch_t *w)
{
	uint64_t now = uv_now(r->loop);
	if (w->trim_ms && now - w->trim_ms < OMR_INBOX_TRIM_MS)
		return;
	w->trim_ms = now;
	char prefix[OMR_ENV_ID_MAX + 8];
	omr_router_group_prefix(w->group, prefix, sizeof(prefix));
	const char *argv[] = {"FCALL", "omr_inbox_trim", "1", prefix, w->id};
	size_t lens[5];
	for (int i = 0; i < 5; i++)
		lens[i] = strlen(argv[i]);
	omr_store_command(r->store, warn_if_failed, "inbox trim", 5, argv, lens);
}

static void read_watch(omr_router_t *r, omr_watch_t *w)
{
	if (w->removed)
		return;
	if (w->reading) {
		w->dirty = true;
		return;
	}
	if (!omr_store_is_ready(r->store))
		return; /* resync on ready */
	read_op_t *op = calloc(1, sizeof(*op));
	if (!op)
		return;
	op->r = r;
	op->w = w;
	w->dirty = false;
	if (w->reread) {
		w->reread = false;
		w->history = true;
		snprintf(w->hcursor, sizeof(w->hcursor), "0");
	}
	op->periodic = w->is_agent && !w->history &&
	               uv_now(r->loop) - w->history_ms >= OMR_HISTORY_RECHECK_MS;
	op->history = w->is_agent && (w->history || op->periodic);
	if (w->is_agent) /* a desktop that never acks too: what the inbox's cap dropped */
		omr_delivery_trim_inbox(r, w);
	const char *from = !w->is_agent ? w->cursor : op->history ? w->hcursor : ">";
	if (send_read(r, op, from) != 0) {
		free(op);
		return;
	}
	w->reading = true;
	w->refs++;
	r->reads++;
}

/* ---- session tables ----------------------------------------------------- */

omr_watch_t *omr_delivery_find_agent(omr_router_t *r, const char *group, const char *agent)
{
	char key[2 * OMR_ENV_ID_MAX + 2];
	watch_key(group, agent, key, sizeof(key));
	return omr_hmap_get(r->agents, key);
}

omr_watch_t *omr_delivery_add_agent(omr_router_t *r, const char *group, const char *agent,
                                    const char *session, const omr_bus_peer_t *peer, uint64_t conn)
{
	char key[2 * OMR_ENV_ID_MAX + 2];
	watch_key(group, agent, key, sizeof(key));
	omr_watch_t *w = watch_new(group, agent, peer, conn);
	if (!w)
		return NULL;
	w->is_agent = true;
	w->session = strdup(session);
	if (!w->session || omr_hmap_put(r->agents, key, w) != 0) {
		watch_unref(w);
		return NULL;
	}
	read_watch(r, w);
	return w;
}

void omr_delivery_remove_agent(omr_router_t *r, omr_watch_t *w)
{
	char key[2 * OMR_ENV_ID_MAX + 2];
	watch_key(w->group, w->id, key, sizeof(key));
	if (omr_hmap_get(r->agents, key) == w)
		omr_hmap_del(r->agents, key);
	w->removed = true;
	watch_unref(w);
}

int omr_delivery_add_customer(omr_router_t *r, const char *group, const char *conv,
                              const char *cursor, const omr_bus_peer_t *peer, uint64_t conn,
                              bool waiting)
{
	char key[2 * OMR_ENV_ID_MAX + 2];
	watch_key(group, conv, key, sizeof(key));
	/* A start/resume sent again on the same connection (the client was told
	 * to resend, or the bus resent it): the watch of the first one may have
	 * read on past entries the adapter dropped (the client was not welcomed
	 * yet). It is replaced by one that reads from this request's cursor, so
	 * the client gets them (again: it de-duplicates by seq); the old one's
	 * read in flight delivers nothing. */
	omr_delivery_remove_customer(r, group, conv, conn);
	omr_watch_t *head = omr_hmap_get(r->customers, key);
	omr_watch_t *w = watch_new(group, conv, peer, conn);
	if (!w)
		return -ENOMEM;
	snprintf(w->cursor, sizeof(w->cursor), "%s", cursor);
	w->waiting = waiting;
	w->next = head;
	if (omr_hmap_put(r->customers, key, w) != 0) {
		watch_unref(w);
		return -ENOMEM;
	}
	read_watch(r, w);
	return 0;
}

void omr_delivery_remove_customer(omr_router_t *r, const char *group, const char *conv,
                                  uint64_t conn)
{
	char key[2 * OMR_ENV_ID_MAX + 2];
	watch_key(group, conv, key, sizeof(key));
	omr_watch_t *head = omr_hmap_get(r->customers, key);
	omr_watch_t **pp = &head;
	while (*pp && (*pp)->conn != conn)
		pp = &(*pp)->next;
	omr_watch_t *w = *pp;
	if (!w)
		return;
	*pp = w->next;
	if (head)
		omr_hmap_put(r->customers, key, head);
	else
		omr_hmap_del(r->customers, key);
	w->removed = true;
	watch_unref(w);
}

/* ---- notifications ------------------------------------------------------ */

/* Ids may hold ':' (and '@'), never '|': "a:AGENT" is the whole rest, and
 * "r:AGENT|SESSION" and "ta:AGENT|CONV" split at the '|'. */
static bool split_bar(const char *s, char *left, size_t leftsz, const char **right)
{
	const char *bar = strchr(s, '|');
	size_t n = bar ? (size_t)(bar - s) : 0;
	if (n == 0 || n >= leftsz)
		return false;
	memcpy(left, s, n);
	left[n] = '\0';
	*right = bar + 1;
	return true;
}

/* "a:AGENT": new items in the agent's inbox, read them for its desktop;
 * "h:AGENT" (reread): its whole pending history (the file's comment). */
static void notify_agent(omr_router_t *r, const char *group, const char *agent, bool reread)
{
	if (strlen(agent) > OMR_ENV_ID_MAX)
		return;
	omr_watch_t *w = omr_delivery_find_agent(r, group, agent);
	if (!w)
		return;
	w->reread = w->reread || reread;
	read_watch(r, w);
}

/* "r:AGENT|SESSION": a newer login replaced that session; "o:AGENT|SESSION|
 * REASON": it was logged out. Close our connection if it is that session. */
static void notify_ended(omr_router_t *r, const char *group, const char *rest, bool logged_out)
{
	char agent[OMR_ENV_ID_MAX + 1], session[OMR_SESSION_MAX];
	const char *after, *reason = NULL;
	if (!split_bar(rest, agent, sizeof(agent), &after))
		return;
	if (!logged_out) {
		omr_delivery_ended(r, group, agent, after, NULL);
		return;
	}
	if (split_bar(after, session, sizeof(session), &reason))
		omr_delivery_ended(r, group, agent, session, reason);
}

void omr_delivery_ended(omr_router_t *r, const char *group, const char *agent, const char *session,
                        const char *reason)
{
	omr_watch_t *w = omr_delivery_find_agent(r, group, agent);
	if (!w || !w->session || strcmp(w->session, session) != 0)
		return;
	omr_envelope_t *d = omr_envelope_new(OMR_ENV_DELIVER);
	if (d) {
		d->conn = w->conn;
		omr_envelope_set(&d->event, reason ? "logged-out" : "replaced");
		if (reason)
			omr_envelope_set(&d->text, reason);
		omr_router_send(r, &w->peer, d);
		omr_envelope_destroy(&d);
	}
	omr_delivery_remove_agent(r, w);
	if (!reason) /* replaced: what this desktop was sent but did not ack is the new one's */
		publish_reread(r, group, agent);
}

static void send_event(omr_router_t *r, const omr_watch_t *w, const char *event, const char *conv,
                       omr_role_t from, omr_envelope_t *d)
{
	d->conn = w->conn;
	d->channel = OMR_CHANNEL_CHAT;
	d->from = from;
	d->ts_ms = omr_now_ms();
	omr_envelope_set(&d->event, event);
	omr_envelope_set(&d->conv, conv);
	omr_router_send(r, &w->peer, d);
}

/* "ta:AGENT|CONV": the customer types, tell the agent's desktop;
 * "tc:CONV": the agent types, tell the customer's connections. */
static void notify_typing(omr_router_t *r, const char *group, const char *body)
{
	omr_envelope_t *d = omr_envelope_new(OMR_ENV_DELIVER);
	if (!d)
		return;
	char agent[OMR_ENV_ID_MAX + 1];
	const char *conv;
	if (strncmp(body, "ta:", 3) == 0) {
		if (split_bar(body + 3, agent, sizeof(agent), &conv)) {
			omr_watch_t *w = omr_delivery_find_agent(r, group, agent);
			if (w)
				send_event(r, w, "typing", conv, OMR_ROLE_CUSTOMER, d);
		}
	} else if (strncmp(body, "tc:", 3) == 0) {
		char key[2 * OMR_ENV_ID_MAX + 2];
		watch_key(group, body + 3, key, sizeof(key));
		for (omr_watch_t *w = omr_hmap_get(r->customers, key); w; w = w->next)
			send_event(r, w, "typing", body + 3, OMR_ROLE_AGENT, d);
	}
	omr_envelope_destroy(&d);
}

/* Sends a command on the Redis connection whose reply cb gets w, kept
 * until then (cb unrefs it). */
static void watch_command(omr_router_t *r, omr_watch_t *w, omr_store_reply_fn cb, int argc,
                          const char **argv)
{
	w->router = r;
	if (omr_store_command(r->store, cb, w, argc, argv, NULL) == 0)
		w->refs++;
}

/* Tells the desktop of the agent that is here now, if any, its presence. */
static void send_presence(omr_router_t *r, const char *group, const char *agent, const char *state,
                          const char *reason)
{
	omr_watch_t *w = omr_delivery_find_agent(r, group, agent);
	if (!w)
		return;
	omr_envelope_t *d = omr_envelope_new(OMR_ENV_DELIVER);
	if (d && omr_envelope_add_attr(d, "presence", state) == 0 &&
	    (!reason || !reason[0] || omr_envelope_set(&d->reason, reason) == 0))
		send_event(r, w, "presence", NULL, OMR_ROLE_NONE, d);
	omr_envelope_destroy(&d);
}

/* A presence notice whose presence is being read again: the "p:" message's
 * group and body ("AGENT|STATE|REASON"). */
typedef struct presence_read {
	omr_router_t *r;
	char *group, *body;
} presence_read_t;

/* body "AGENT|STATE|REASON" into agent and state; *reason points into body. */
static bool presence_parts(const char *body, char *agent, size_t agentsz, char *state,
                           size_t statesz, const char **reason)
{
	const char *rest;
	return split_bar(body, agent, agentsz, &rest) && split_bar(rest, state, statesz, reason);
}

static void on_presence_read(void *ud, const redisReply *rep)
{
	presence_read_t *p = ud;
	char agent[OMR_ENV_ID_MAX + 1], state[16];
	const char *reason;
	if (presence_parts(p->body, agent, sizeof(agent), state, sizeof(state), &reason)) {
		if (rep && rep->type == REDIS_REPLY_ARRAY && rep->elements == 2 &&
		    rep->element[0]->type == REDIS_REPLY_STRING)
			send_presence(p->r, p->group, agent, rep->element[0]->str,
			              rep->element[1]->type == REDIS_REPLY_STRING
			                      ? rep->element[1]->str
			                      : NULL);
		else if (!rep && p->r->bus) /* the connection went (not at close): as said */
			send_presence(p->r, p->group, agent, state, reason);
	}
	free(p->group);
	free(p->body);
	free(p);
}

/* "p:AGENT|STATE|REASON" (REASON may be empty): the agent's presence changed
 * (set_presence); its desktop, if it is here, is told (a notice, not an
 * inbox item) the presence in effect, read again on the Redis connection
 * the desktop's own requests take: the notice then never comes after the
 * ack of a later change the desktop asked for (pub/sub messages come on
 * another connection, in no order with the replies), and it reaches a
 * desktop whose login was in flight (the read's answer comes after the
 * login's). Read whether or not the agent's desktop is here now; when Redis
 * cannot be asked, the notice says what the message said. */
static void notify_presence(omr_router_t *r, const char *group, const char *body)
{
	char agent[OMR_ENV_ID_MAX + 1], state[16], prefix[OMR_ENV_ID_MAX + 8];
	char key[2 * OMR_ENV_ID_MAX + 16];
	const char *reason;
	if (!presence_parts(body, agent, sizeof(agent), state, sizeof(state), &reason))
		return;
	presence_read_t *p = calloc(1, sizeof(*p));
	if (p) {
		p->r = r;
		p->group = strdup(group);
		p->body = strdup(body);
	}
	omr_router_group_prefix(group, prefix, sizeof(prefix));
	snprintf(key, sizeof(key), "%s:agent:%s", prefix, agent);
	const char *argv[] = {"HMGET", key, "presence", "reason"};
	if (p && p->group && p->body &&
	    omr_store_command(r->store, on_presence_read, p, 4, argv, NULL) == 0)
		return;
	if (p) {
		free(p->group);
		free(p->body);
		free(p);
	}
	send_presence(r, group, agent, state, reason);
}

/* ---- queue positions ---------------------------------------------------- */

static void on_position(void *ud, const redisReply *rep)
{
	omr_watch_t *w = ud;
	omr_router_t *r = w->router;
	if (rep && !w->removed && rep->type == REDIS_REPLY_ARRAY && rep->elements == 3 &&
	    rep->element[0]->type == REDIS_REPLY_STRING) {
		if (strcmp(rep->element[0]->str, "offered") == 0) {
			/* an agent is deciding: no position now, and maybe again */
		} else if (strcmp(rep->element[0]->str, "queued") != 0) {
			w->waiting = false;
		} else {
			char pos[24], eta[24];
			snprintf(pos, sizeof(pos), "%lld", rep->element[1]->integer);
			snprintf(eta, sizeof(eta), "%lld", rep->element[2]->integer);
			omr_envelope_t *d = omr_envelope_new(OMR_ENV_DELIVER);
			if (d) {
				omr_envelope_add_attr(d, "position", pos);
				omr_envelope_add_attr(d, "eta_ms", eta);
				send_event(r, w, "position", w->id, OMR_ROLE_SYSTEM, d);
				omr_envelope_destroy(&d);
			}
		}
	}
	watch_unref(w);
}

static void poll_one(void *ud, const char *key, void *value)
{
	omr_router_t *r = ud;
	char prefix[OMR_ENV_ID_MAX + 8];
	for (omr_watch_t *w = value; w; w = w->next) {
		if (!w->waiting)
			continue;
		omr_router_group_prefix(w->group, prefix, sizeof(prefix));
		const char *argv[] = {"FCALL", "omr_conv_position", "1", prefix, w->id};
		watch_command(r, w, on_position, 5, argv);
	}
}

void omr_delivery_poll_positions(omr_router_t *r)
{
	if (omr_store_is_ready(r->store))
		omr_hmap_each(r->customers, poll_one, r);
}

void omr_delivery_on_notify(omr_router_t *r, const char *channel, size_t chlen, const char *msg,
                            size_t len)
{
	/* channel is "omr:{TENANT}:notify" */
	static const char pre[] = "omr:{", post[] = "}:notify";
	char group[OMR_ENV_ID_MAX + 1], body[2 * OMR_ENV_ID_MAX + 200];
	if (chlen <= sizeof(pre) - 1 + sizeof(post) - 1 || memcmp(channel, pre, 5) != 0 ||
	    memcmp(channel + chlen - (sizeof(post) - 1), post, sizeof(post) - 1) != 0)
		return;
	size_t tlen = chlen - (sizeof(pre) - 1) - (sizeof(post) - 1);
	if (tlen > OMR_ENV_ID_MAX || len < 3 || len >= sizeof(body))
		return;
	memcpy(group, channel + 5, tlen);
	group[tlen] = '\0';
	memcpy(body, msg, len);
	body[len] = '\0';
	if (body[0] == 't') {
		notify_typing(r, group, body);
	} else if (body[0] == 'p') {
		notify_presence(r, group, body + 2);
	} else if (body[0] == 'a' || body[0] == 'h') {
		notify_agent(r, group, body + 2, body[0] == 'h');
	} else if (body[0] == 'r' || body[0] == 'o') {
		notify_ended(r, group, body + 2, body[0] == 'o');
	} else if (body[0] == 'c') {
		char key[2 * OMR_ENV_ID_MAX + 2];
		watch_key(group, body + 2, key, sizeof(key));
		for (omr_watch_t *w = omr_hmap_get(r->customers, key); w; w = w->next)
			read_watch(r, w);
	}
}

static void resync_agent(void *ud, const char *key, void *value)
{
	omr_watch_t *w = value;
	w->history = true; /* replies lost with the connection may have moved entries */
	snprintf(w->hcursor, sizeof(w->hcursor), "0");
	read_watch(ud, w);
}

static void resync_customers(void *ud, const char *key, void *value)
{
	for (omr_watch_t *w = value; w; w = w->next)
		read_watch(ud, w);
}

void omr_delivery_resync(omr_router_t *r)
{
	omr_hmap_each(r->agents, resync_agent, r);
	omr_hmap_each(r->customers, resync_customers, r);
}

static void drop_agent(void *ud, const char *key, void *value)
{
	omr_watch_t *w = value;
	w->removed = true;
	watch_unref(w);
}

static void drop_customers(void *ud, const char *key, void *value)
{
	omr_watch_t *w = value;
	while (w) {
		omr_watch_t *next = w->next;
		w->removed = true;
		watch_unref(w);
		w = next;
	}
}

void omr_delivery_free_all(omr_router_t *r)
{
	if (r->agents)
		omr_hmap_each(r->agents, drop_agent, r);
	if (r->customers)
		omr_hmap_each(r->customers, drop_customers, r);
}
