/* test_ws_render.c - the websocket protocol's rendering half (adapters/
 * websocket/ws_render.c) against docs/PROTOCOL.md: acks (and what an
 * acknowledged hello/resume/login does to the session), error frames and
 * deliveries to the documented JSON. Parsing is in test_ws_proto.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "omnirouter/error.h"
#include "websocket/ws_proto.h"
#include "ws_test.h"

/* ---- acks and deliveries -> JSON -------------------------------------------- */

static void test_reply_hello_and_message(void **state)
{
	omr_ws_session_t s = customer(false);
	omr_ws_request_t rq = ok(&s, "{\"type\":\"hello\",\"tenant\":\"t9\"}");
	omr_envelope_t *a = ack_env(0);
	char *out;
	omr_ws_error_t err;
	omr_envelope_set(&a->event, "queued");
	s.auth_pending = true;
	assert_int_equal(omr_ws_reply(&s, &rq, 0, a, &out, &err), 0);
	assert_null(err.code);
	cJSON *w = parse_out(out);
	assert_string_equal(jstr(w, "type"), "welcome");
	assert_string_equal(jstr(w, "conversation_id"), rq.conv);
	assert_string_equal(jstr(w, "resume_token"), rq.token);
	assert_string_equal(jstr(w, "state"), "queued");
	assert_string_equal(jstr(w, "tenant"), "t9");
	cJSON_Delete(w);
	assert_true(s.authed);
	assert_false(s.auth_pending);
	assert_string_equal(s.conv, rq.conv);
	assert_string_equal(s.tenant, "t9");
	omr_ws_request_cleanup(&rq);

	rq = ok(&s, "{\"type\":\"message\",\"id\":\"c-1\",\"text\":\"hi\"}");
	omr_envelope_set(&a->seq, "1700000000123-0");
	assert_int_equal(omr_ws_reply(&s, &rq, 0, a, &out, &err), 0);
	w = parse_out(out);
	assert_string_equal(jstr(w, "type"), "ack");
	assert_string_equal(jstr(w, "id"), "c-1");
	assert_string_equal(jstr(w, "seq"), "1700000000123-0");
	cJSON_Delete(w);
	omr_ws_request_cleanup(&rq);
	omr_envelope_destroy(&a);
}

static void test_reply_failures(void **state)
{
	omr_ws_session_t s = customer(false);
	omr_ws_request_t rq = ok(&s, "{\"type\":\"resume\",\"conversation_id\":\"c\","
	                             "\"resume_token\":\"t\"}");
	omr_envelope_t *a = ack_env(OMR_ERR_BAD_TOKEN);
	char *out;
	omr_ws_error_t err;
	s.auth_pending = true;
	assert_int_equal(omr_ws_reply(&s, &rq, OMR_ERR_BAD_TOKEN, a, &out, &err), 0);
	assert_null(out);
	assert_string_equal(err.code, "unauthorized");
	assert_int_equal(err.close_code, OMR_WS_CLOSE_POLICY);
	assert_false(s.authed);
	assert_false(s.auth_pending);
	omr_ws_request_cleanup(&rq);

	/* a hello that timed out: unavailable, stays open, may be retried */
	rq = ok(&s, "{\"type\":\"hello\",\"id\":\"h1\"}");
	assert_int_equal(omr_ws_reply(&s, &rq, -ETIMEDOUT, NULL, &out, &err), 0);
	assert_string_equal(err.code, "unavailable");
	assert_string_equal(err.id, "h1");
	assert_int_equal(err.close_code, 0);
	/* refused by the router: the reason says why, not "Invalid argument" */
	assert_int_equal(omr_ws_reply(&s, &rq, -EINVAL, NULL, &out, &err), 0);
	assert_string_equal(err.code, "bad-request");
	assert_non_null(strstr(err.reason, "no queue takes this conversation"));
	omr_ws_request_cleanup(&rq);

	omr_ws_session_t ag = agent(true);
	rq = ok(&ag,
	        "{\"type\":\"message\",\"conversation_id\":\"c7\",\"id\":\"a-1\",\"text\":\"x\"}");
	assert_int_equal(omr_ws_reply(&ag, &rq, OMR_ERR_NOT_ASSIGNED, a, &out, &err), 0);
	assert_string_equal(err.code, "not-assigned");
	assert_string_equal(err.id, "a-1");
	assert_int_equal(err.close_code, 0);
	assert_int_equal(omr_ws_reply(&ag, &rq, OMR_ERR_CLOSED, a, &out, &err), 0);
	assert_string_equal(err.code, "closed");
	omr_ws_request_cleanup(&rq);

	char *json = omr_ws_render_error(&err);
	cJSON *e = parse_out(json);
	assert_string_equal(jstr(e, "type"), "error");
	assert_string_equal(jstr(e, "code"), "closed");
	assert_string_equal(jstr(e, "id"), "a-1");
	assert_non_null(jstr(e, "reason"));
	cJSON_Delete(e);

	/* a transfer to an agent who is not logged in: refused with why */
	rq = ok(&ag, "{\"type\":\"transfer\",\"conversation_id\":\"c7\",\"id\":\"t-1\","
	             "\"agent\":\"bob\"}");
	assert_int_equal(omr_ws_reply(&ag, &rq, OMR_ERR_AGENT_AWAY, NULL, &out, &err), 0);
	assert_string_equal(err.code, "bad-request");
	assert_non_null(strstr(err.reason, "not logged in"));
	assert_int_equal(err.close_code, 0);
	omr_ws_request_cleanup(&rq);

	/* a login from a connection older than the one holding the agent */
	omr_ws_session_t fresh = agent(false);
	rq = ok(&fresh, "{\"type\":\"login\",\"agent_id\":\"ana\",\"token\":\"t\"}");
	fresh.auth_pending = true;
	assert_int_equal(omr_ws_reply(&fresh, &rq, OMR_ERR_REPLACED, NULL, &out, &err), 0);
	assert_null(out);
	assert_string_equal(err.code, "replaced");
	assert_int_equal(err.close_code, OMR_WS_CLOSE_POLICY);
	assert_false(fresh.authed);
	omr_ws_request_cleanup(&rq);
	omr_envelope_destroy(&a);
}

static void test_reply_agent(void **state)
{
	omr_ws_session_t s = agent(false);
	omr_ws_request_t rq = ok(&s, "{\"type\":\"login\",\"agent_id\":\"ana\",\"token\":\"tk\"}");
	omr_envelope_t *a = ack_env(0);
	char *out;
	omr_ws_error_t err;
	omr_envelope_set(&a->name, "Ana");
	omr_envelope_set(&a->presence, "away");
	omr_envelope_add_attr(a, "languages", "es,en");
	omr_envelope_add_attr(a, "capacity", "2");
	assert_int_equal(omr_ws_reply(&s, &rq, 0, a, &out, &err), 0);
	cJSON *w = parse_out(out);
	assert_string_equal(jstr(w, "type"), "welcome");
	assert_string_equal(jstr(w, "agent_id"), "ana");
	assert_string_equal(jstr(w, "name"), "Ana");
	assert_string_equal(jstr(w, "presence"), "away");
	assert_int_equal((int)jnum(w, "capacity"), 2);
	const cJSON *langs = cJSON_GetObjectItemCaseSensitive(w, "languages");
	assert_int_equal(cJSON_GetArraySize(langs), 2);
	assert_string_equal(cJSON_GetArrayItem(langs, 0)->valuestring, "es");
	assert_string_equal(cJSON_GetArrayItem(langs, 1)->valuestring, "en");
	cJSON_Delete(w);
	assert_true(s.authed);
	assert_string_equal(s.agent, "ana");
	omr_ws_request_cleanup(&rq);

	rq = ok(&s, "{\"type\":\"presence\",\"presence\":\"available\",\"id\":\"r1\"}");
	omr_envelope_set(&a->presence, "available");
	assert_int_equal(omr_ws_reply(&s, &rq, 0, a, &out, &err), 0);
	w = parse_out(out);
	assert_string_equal(jstr(w, "type"), "ack");
	assert_string_equal(jstr(w, "id"), "r1");
	assert_string_equal(jstr(w, "presence"), "available");
	cJSON_Delete(w);
	omr_ws_request_cleanup(&rq);

	rq = ok(&s, "{\"type\":\"presence\",\"presence\":\"break\",\"reason\":\"lunch\","
	            "\"id\":\"r2\"}");
	omr_envelope_set(&a->presence, "break");
	assert_int_equal(omr_ws_reply(&s, &rq, 0, a, &out, &err), 0);
	w = parse_out(out);
	assert_string_equal(jstr(w, "type"), "ack");
	assert_string_equal(jstr(w, "id"), "r2");
	assert_string_equal(jstr(w, "presence"), "break");
	cJSON_Delete(w);
	omr_ws_request_cleanup(&rq);

	rq = ok(&s, "{\"type\":\"accept\",\"conversation_id\":\"c7\",\"id\":\"r3\"}");
	assert_int_equal(omr_ws_reply(&s, &rq, 0, a, &out, &err), 0);
	w = parse_out(out);
	assert_string_equal(jstr(w, "type"), "ack");
	assert_string_equal(jstr(w, "id"), "r3");
	assert_string_equal(jstr(w, "conversation_id"), "c7");
	assert_null(jstr(w, "presence"));
	cJSON_Delete(w);
	omr_ws_request_cleanup(&rq);

	rq = ok(&s, "{\"type\":\"reject\",\"conversation_id\":\"c8\",\"reason\":\"busy\","
	            "\"id\":\"r4\"}");
	assert_int_equal(omr_ws_reply(&s, &rq, 0, a, &out, &err), 0);
	w = parse_out(out);
	assert_string_equal(jstr(w, "type"), "ack");
	assert_string_equal(jstr(w, "id"), "r4");
	assert_string_equal(jstr(w, "conversation_id"), "c8");
	cJSON_Delete(w);
	/* the offer is no longer open: not-assigned, the connection stays */
	assert_int_equal(omr_ws_reply(&s, &rq, OMR_ERR_NOT_ASSIGNED, a, &out, &err), 0);
	assert_null(out);
	assert_string_equal(err.code, "not-assigned");
	assert_string_equal(err.id, "r4");
	assert_int_equal(err.close_code, 0);
	omr_ws_request_cleanup(&rq);

	rq = ok(&s, "{\"type\":\"wrapup_end\",\"channel\":\"chat\",\"id\":\"r5\"}");
	assert_int_equal(omr_ws_reply(&s, &rq, 0, a, &out, &err), 0);
	w = parse_out(out);
	assert_string_equal(jstr(w, "type"), "ack");
	assert_string_equal(jstr(w, "id"), "r5");
	assert_null(cJSON_GetObjectItemCaseSensitive(w, "conversation_id"));
	assert_null(cJSON_GetObjectItemCaseSensitive(w, "presence"));
	assert_int_equal(cJSON_GetArraySize(w), 2);
	cJSON_Delete(w);
	omr_ws_request_cleanup(&rq);

	rq = ok(&s, "{\"type\":\"ack\",\"seq\":\"1-0\"}");
	assert_int_equal(omr_ws_reply(&s, &rq, 0, a, &out, &err), 0);
	assert_null(out); /* nothing goes back for an ack */
	assert_null(err.code);
	omr_ws_request_cleanup(&rq);
	omr_envelope_destroy(&a);
}

static void test_deliver_customer(void **state)
{
	omr_ws_session_t s = customer(true);
	omr_envelope_t *d = deliver("message");
	char *out;
	omr_ws_error_t err;
	d->from = OMR_ROLE_AGENT;
	omr_envelope_set(&d->msgid, "a-1");
	omr_envelope_set(&d->name, "Luis");
	omr_envelope_set(&d->text, "¡Hola!");
	assert_int_equal(omr_ws_render_deliver(&s, d, &out, &err), 0);
	cJSON *m = parse_out(out);
	assert_string_equal(jstr(m, "type"), "message");
	assert_string_equal(jstr(m, "seq"), "1700000000456-0");
	assert_string_equal(jstr(m, "id"), "a-1");
	assert_string_equal(jstr(m, "from"), "agent");
	assert_string_equal(jstr(m, "name"), "Luis");
	assert_string_equal(jstr(m, "text"), "¡Hola!");
	assert_true(jnum(m, "ts") == 1700000000456.0);
	cJSON_Delete(m);
	omr_envelope_destroy(&d);

	d = deliver("assigned");
	omr_envelope_set(&d->name, "Luis");
	assert_int_equal(omr_ws_render_deliver(&s, d, &out, &err), 0);
	m = parse_out(out);
	assert_string_equal(jstr(m, "type"), "event");
	assert_string_equal(jstr(m, "event"), "assigned");
	assert_string_equal(jstr(m, "name"), "Luis");
	assert_string_equal(jstr(m, "seq"), "1700000000456-0");
	cJSON_Delete(m);
	omr_envelope_destroy(&d);

	/* the agent was lost and the conversation waits again: an event */
	d = deliver("requeued");
	omr_envelope_set(&d->reason, "agent-lost");
	assert_int_equal(omr_ws_render_deliver(&s, d, &out, &err), 0);
	m = parse_out(out);
	assert_string_equal(jstr(m, "type"), "event");
	assert_string_equal(jstr(m, "event"), "requeued");
	assert_string_equal(jstr(m, "seq"), "1700000000456-0");
	assert_true(jnum(m, "ts") == 1700000000456.0);
	assert_null(cJSON_GetObjectItemCaseSensitive(m, "conversation_id"));
	cJSON_Delete(m);
	omr_envelope_destroy(&d);
}

static void test_deliver_agent(void **state)
{
	omr_ws_session_t s = agent(true);
	omr_envelope_t *d = deliver("assigned");
	char *out;
	omr_ws_error_t err;
	omr_envelope_set(&d->lang, "es-MX");
	omr_envelope_set(&d->name, "Ana");
	assert_int_equal(omr_ws_render_deliver(&s, d, &out, &err), 0);
	cJSON *m = parse_out(out);
	assert_string_equal(jstr(m, "type"), "assigned");
	assert_string_equal(jstr(m, "conversation_id"), "c7");
	assert_string_equal(jstr(m, "language"), "es-MX");
	assert_string_equal(jstr(m, "customer_name"), "Ana");
	assert_string_equal(jstr(m, "tenant"), "t1");
	assert_string_equal(jstr(m, "seq"), "1700000000456-0");
	assert_null(cJSON_GetObjectItemCaseSensitive(m, "queue")); /* none in the envelope */
	cJSON_Delete(m);
	omr_envelope_destroy(&d);

	d = deliver("assigned");
	omr_envelope_set(&d->lang, "es-MX");
	omr_envelope_add_attr(d, "queue", "spanish");
	assert_int_equal(omr_ws_render_deliver(&s, d, &out, &err), 0);
	m = parse_out(out);
	assert_string_equal(jstr(m, "type"), "assigned");
	assert_string_equal(jstr(m, "queue"), "spanish");
	assert_null(cJSON_GetObjectItemCaseSensitive(m, "expires_ms"));
	cJSON_Delete(m);
	omr_envelope_destroy(&d);

	d = deliver("message");
	d->from = OMR_ROLE_CUSTOMER;
	omr_envelope_set(&d->msgid, "c-1");
	omr_envelope_set(&d->text, "hola");
	assert_int_equal(omr_ws_render_deliver(&s, d, &out, &err), 0);
	m = parse_out(out);
	assert_string_equal(jstr(m, "type"), "message");
	assert_string_equal(jstr(m, "conversation_id"), "c7");
	assert_string_equal(jstr(m, "id"), "c-1");
	assert_string_equal(jstr(m, "from"), "customer");
	assert_string_equal(jstr(m, "text"), "hola");
	cJSON_Delete(m);
	omr_envelope_destroy(&d);

	d = deliver("closed");
	assert_int_equal(omr_ws_render_deliver(&s, d, &out, &err), 0);
	m = parse_out(out);
	assert_string_equal(jstr(m, "type"), "closed");
	assert_string_equal(jstr(m, "conversation_id"), "c7");
	assert_true(jnum(m, "ts") == 1700000000456.0);
	assert_null(cJSON_GetObjectItemCaseSensitive(m, "wrapup_until_ms")); /* no wrap-up */
	cJSON_Delete(m);
	omr_envelope_destroy(&d);

	/* with a wrap-up: when it ends */
	d = deliver("closed");
	omr_envelope_add_attr(d, "wrapup_until_ms", "1700000030456");
	assert_int_equal(omr_ws_render_deliver(&s, d, &out, &err), 0);
	m = parse_out(out);
	assert_true(jnum(m, "wrapup_until_ms") == 1700000030456.0);
	cJSON_Delete(m);
	omr_envelope_destroy(&d);

	d = deliver("offer");
	omr_envelope_set(&d->lang, "es-MX");
	omr_envelope_set(&d->name, "Ana");
	omr_envelope_add_attr(d, "queue", "sales");
	omr_envelope_add_attr(d, "expires_ms", "1700000030456");
	assert_int_equal(omr_ws_render_deliver(&s, d, &out, &err), 0);
	m = parse_out(out);
	assert_string_equal(jstr(m, "type"), "offer");
	assert_string_equal(jstr(m, "seq"), "1700000000456-0");
	assert_string_equal(jstr(m, "conversation_id"), "c7");
	assert_string_equal(jstr(m, "language"), "es-MX");
	assert_string_equal(jstr(m, "customer_name"), "Ana");
	assert_string_equal(jstr(m, "tenant"), "t1");
	assert_string_equal(jstr(m, "queue"), "sales");
	assert_true(jnum(m, "expires_ms") == 1700000030456.0);
	assert_true(jnum(m, "ts") == 1700000000456.0);
	assert_null(cJSON_GetObjectItemCaseSensitive(m, "event"));
	cJSON_Delete(m);
	omr_envelope_destroy(&d);

	/* an expires_ms that is not a number is left out, not passed on */
	d = deliver("offer");
	omr_envelope_add_attr(d, "expires_ms", "soon");
	assert_int_equal(omr_ws_render_deliver(&s, d, &out, &err), 0);
	m = parse_out(out);
	assert_string_equal(jstr(m, "type"), "offer");
	assert_null(cJSON_GetObjectItemCaseSensitive(m, "expires_ms"));
	assert_null(cJSON_GetObjectItemCaseSensitive(m, "queue"));
	cJSON_Delete(m);
	omr_envelope_destroy(&d);

	d = deliver("revoked");
	omr_envelope_set(&d->reason, "timeout");
	omr_envelope_add_attr(d, "queue", "sales");
	assert_int_equal(omr_ws_render_deliver(&s, d, &out, &err), 0);
	m = parse_out(out);
	assert_string_equal(jstr(m, "type"), "revoked");
	assert_string_equal(jstr(m, "seq"), "1700000000456-0");
	assert_string_equal(jstr(m, "conversation_id"), "c7");
	assert_string_equal(jstr(m, "reason"), "timeout");
	assert_true(jnum(m, "ts") == 1700000000456.0);
	assert_int_equal(cJSON_GetArraySize(m), 5); /* type, seq, conversation_id, reason, ts */
	cJSON_Delete(m);
	omr_envelope_destroy(&d);

	/* other events stay generic; a transfer's note is for the next agent */
	d = deliver("transferred");
	omr_envelope_set(&d->name, "Luis");
	omr_envelope_set(&d->text, "wants a refund");
	assert_int_equal(omr_ws_render_deliver(&s, d, &out, &err), 0);
	m = parse_out(out);
	assert_string_equal(jstr(m, "type"), "event");
	assert_string_equal(jstr(m, "event"), "transferred");
	assert_string_equal(jstr(m, "conversation_id"), "c7");
	assert_string_equal(jstr(m, "name"), "Luis");
	assert_string_equal(jstr(m, "text"), "wants a refund");
	cJSON_Delete(m);
	omr_envelope_destroy(&d);

	d = deliver("replaced");
	assert_int_equal(omr_ws_render_deliver(&s, d, &out, &err), 0);
	assert_null(out);
	assert_string_equal(err.code, "replaced");
	assert_int_equal(err.close_code, OMR_WS_CLOSE_POLICY);
	omr_envelope_destroy(&d);

	d = deliver("logged-out");
	omr_envelope_set(&d->text, "token-revoked");
	assert_int_equal(omr_ws_render_deliver(&s, d, &out, &err), 0);
	assert_null(out);
	assert_string_equal(err.code, "logged-out");
	assert_string_equal(err.reason, "this agent's token was revoked");
	assert_int_equal(err.close_code, OMR_WS_CLOSE_POLICY);
	omr_envelope_destroy(&d);
	d = deliver("logged-out"); /* a reason this version does not know */
	omr_envelope_set(&d->text, "some-new-reason");
	assert_int_equal(omr_ws_render_deliver(&s, d, &out, &err), 0);
	assert_string_equal(err.reason, "this session was ended");
	omr_envelope_destroy(&d);

	omr_envelope_t *notdeliver = omr_envelope_new(OMR_ENV_ACK);
	assert_int_equal(omr_ws_render_deliver(&s, notdeliver, &out, &err), -EINVAL);
	omr_envelope_destroy(&notdeliver);
}

/* ---- notices, transfers and the agent's history -> JSON ------------------ */

/* Which deliveries are inbox items an agent acks: each pays for one ack
 * frame outside the rate limit; transcript reads and notices do not. */
static void test_deliver_is_acked(void **state)
{
	static const struct {
		const char *event;
		bool acked;
	} cases[] = {{"assigned", true},  {"message", true},     {"offer", true},
	             {"revoked", true},   {"closed", true},      {"typing", false},
	             {"history", false},  {"monitor", false},    {"team", false},
	             {"replaced", false}, {"logged-out", false}, {"presence", false}};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		omr_envelope_t *d = omr_envelope_new(OMR_ENV_DELIVER);
		omr_envelope_set(&d->event, cases[i].event);
		if (omr_ws_deliver_is_acked(d) != cases[i].acked)
			print_error("%s: %d\n", cases[i].event, !cases[i].acked);
		assert_int_equal(omr_ws_deliver_is_acked(d), cases[i].acked);
		omr_envelope_destroy(&d);
	}
	assert_false(omr_ws_deliver_is_acked(NULL));
}

static void test_deliver_notices(void **state)
{
	omr_ws_session_t s = customer(true), ag = agent(true);
	char *out;
	omr_ws_error_t err;

	/* typing, both ways: not stored, so no seq */
	omr_envelope_t *d = omr_envelope_new(OMR_ENV_DELIVER);
	omr_envelope_set(&d->event, "typing");
	omr_envelope_set(&d->conv, "c7");
	d->from = OMR_ROLE_AGENT;
	d->ts_ms = 1700000000456ull;
	assert_int_equal(omr_ws_render_deliver(&s, d, &out, &err), 0);
	cJSON *m = parse_out(out);
	assert_string_equal(jstr(m, "type"), "typing");
	assert_string_equal(jstr(m, "from"), "agent");
	assert_int_equal(cJSON_GetArraySize(m), 2);
	cJSON_Delete(m);
	d->from = OMR_ROLE_CUSTOMER;
	assert_int_equal(omr_ws_render_deliver(&ag, d, &out, &err), 0);
	m = parse_out(out);
	assert_string_equal(jstr(m, "type"), "typing");
	assert_string_equal(jstr(m, "conversation_id"), "c7");
	assert_int_equal(cJSON_GetArraySize(m), 2);
	cJSON_Delete(m);
	omr_envelope_destroy(&d);

	/* the agent's presence, set elsewhere: a notice without seq */
	d = omr_envelope_new(OMR_ENV_DELIVER);
	omr_envelope_set(&d->event, "presence");
	omr_envelope_add_attr(d, "presence", "break");
	omr_envelope_set(&d->reason, "missed-offers");
	d->ts_ms = 1700000000900ull;
	assert_int_equal(omr_ws_render_deliver(&ag, d, &out, &err), 0);
	m = parse_out(out);
	assert_string_equal(jstr(m, "type"), "presence");
	assert_string_equal(jstr(m, "presence"), "break");
	assert_string_equal(jstr(m, "reason"), "missed-offers");
	assert_true(jnum(m, "ts") == 1700000000900.0);
	assert_int_equal(cJSON_GetArraySize(m), 4);
	cJSON_Delete(m);
	omr_envelope_destroy(&d);

	d = omr_envelope_new(OMR_ENV_DELIVER);
	omr_envelope_set(&d->event, "position");
	omr_envelope_set(&d->conv, "c7");
	omr_envelope_add_attr(d, "position", "3");
	omr_envelope_add_attr(d, "eta_ms", "95000");
	assert_int_equal(omr_ws_render_deliver(&s, d, &out, &err), 0);
	m = parse_out(out);
	assert_string_equal(jstr(m, "type"), "position");
	assert_true(jnum(m, "position") == 3.0);
	assert_true(jnum(m, "eta_ms") == 95000.0);
	assert_int_equal(cJSON_GetArraySize(m), 3);
	cJSON_Delete(m);
	omr_envelope_destroy(&d);

	/* a transfer's note is for the next agent, never for the customer */
	d = deliver("transferred");
	omr_envelope_set(&d->name, "Luis");
	omr_envelope_set(&d->text, "customer is rude");
	assert_int_equal(omr_ws_render_deliver(&s, d, &out, &err), 0);
	m = parse_out(out);
	assert_string_equal(jstr(m, "type"), "event");
	assert_string_equal(jstr(m, "event"), "transferred");
	assert_null(cJSON_GetObjectItemCaseSensitive(m, "text"));
	char *js = cJSON_PrintUnformatted(m);
	assert_non_null(js);
	assert_null(strstr(js, "rude"));
	cJSON_free(js);
	cJSON_Delete(m);
	omr_envelope_destroy(&d);
}

static void test_deliver_agent_history(void **state)
{
	omr_ws_session_t s = agent(true);
	char *out;
	omr_ws_error_t err;

	omr_envelope_t *d = deliver("assigned");
	omr_envelope_add_attr(d, "queue", "billing-es");
	omr_envelope_add_attr(d, "customer", "cust-42");
	omr_envelope_add_attr(d, "history", "c3,c2,,c1");
	assert_int_equal(omr_ws_render_deliver(&s, d, &out, &err), 0);
	cJSON *m = parse_out(out);
	assert_string_equal(jstr(m, "type"), "assigned");
	assert_string_equal(jstr(m, "customer_id"), "cust-42");
	const cJSON *h = cJSON_GetObjectItemCaseSensitive(m, "history");
	assert_true(cJSON_IsArray(h));
	assert_int_equal(cJSON_GetArraySize(h), 3);
	assert_string_equal(cJSON_GetArrayItem(h, 0)->valuestring, "c3");
	assert_string_equal(cJSON_GetArrayItem(h, 2)->valuestring, "c1");
	cJSON_Delete(m);
	omr_envelope_destroy(&d);

	/* no customer id, no earlier conversations: an empty list */
	d = deliver("assigned");
	assert_int_equal(omr_ws_render_deliver(&s, d, &out, &err), 0);
	m = parse_out(out);
	assert_null(cJSON_GetObjectItemCaseSensitive(m, "customer_id"));
	h = cJSON_GetObjectItemCaseSensitive(m, "history");
	assert_true(cJSON_IsArray(h));
	assert_int_equal(cJSON_GetArraySize(h), 0);
	cJSON_Delete(m);
	omr_envelope_destroy(&d);

	/* an offer carries neither */
	d = deliver("offer");
	omr_envelope_add_attr(d, "customer", "cust-42");
	assert_int_equal(omr_ws_render_deliver(&s, d, &out, &err), 0);
	m = parse_out(out);
	assert_null(cJSON_GetObjectItemCaseSensitive(m, "customer_id"));
	assert_null(cJSON_GetObjectItemCaseSensitive(m, "history"));
	cJSON_Delete(m);
	omr_envelope_destroy(&d);

	/* the conversation went to someone else */
	d = deliver("closed");
	omr_envelope_set(&d->reason, "transferred");
	assert_int_equal(omr_ws_render_deliver(&s, d, &out, &err), 0);
	m = parse_out(out);
	assert_string_equal(jstr(m, "type"), "closed");
	assert_string_equal(jstr(m, "reason"), "transferred");
	cJSON_Delete(m);
	omr_envelope_destroy(&d);

	/* items of an earlier conversation */
	d = deliver("history");
	omr_envelope_set(&d->conv, "c3");
	omr_envelope_set(&d->seq, "1690000000000-0");
	omr_envelope_add_attr(d, "kind", "message");
	omr_envelope_set(&d->text, "hola");
	omr_envelope_set(&d->name, "Ana");
	d->from = OMR_ROLE_CUSTOMER;
	d->ts_ms = 1690000000000ull;
	assert_int_equal(omr_ws_render_deliver(&s, d, &out, &err), 0);
	m = parse_out(out);
	assert_string_equal(jstr(m, "type"), "history");
	assert_string_equal(jstr(m, "conversation_id"), "c3");
	assert_string_equal(jstr(m, "seq"), "1690000000000-0");
	assert_string_equal(jstr(m, "kind"), "message");
	assert_string_equal(jstr(m, "from"), "customer");
	assert_string_equal(jstr(m, "name"), "Ana");
	assert_string_equal(jstr(m, "text"), "hola");
	assert_true(jnum(m, "ts") == 1690000000000.0);
	assert_null(cJSON_GetObjectItemCaseSensitive(m, "event"));
	cJSON_Delete(m);
	omr_envelope_destroy(&d);

	d = deliver("history");
	omr_envelope_add_attr(d, "kind", "event");
	omr_envelope_add_attr(d, "event", "closed");
	assert_int_equal(omr_ws_render_deliver(&s, d, &out, &err), 0);
	m = parse_out(out);
	assert_string_equal(jstr(m, "type"), "history");
	assert_string_equal(jstr(m, "kind"), "event");
	assert_string_equal(jstr(m, "event"), "closed");
	assert_null(cJSON_GetObjectItemCaseSensitive(m, "text"));
	cJSON_Delete(m);
	omr_envelope_destroy(&d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_reply_hello_and_message),
	        cmocka_unit_test(test_reply_failures),
	        cmocka_unit_test(test_reply_agent),
	        cmocka_unit_test(test_deliver_customer),
	        cmocka_unit_test(test_deliver_agent),
	        cmocka_unit_test(test_deliver_is_acked),
	        cmocka_unit_test(test_deliver_notices),
	        cmocka_unit_test(test_deliver_agent_history),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
