/* test_ws_supervisor.c - the supervisor's frames of the websocket protocol
 * (adapters/websocket/ws_proto.c, ws_render.c) against docs/PROTOCOL.md:
 * `team` and `monitor` to their envelopes, their refusals, their acks, and
 * the `team` and `monitor` items rendered from the router's deliveries. */
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

/* Renders a delivery on an agent session; returns the parsed frame. */
static cJSON *render(omr_envelope_t *d)
{
	omr_ws_session_t s = agent(true);
	omr_ws_error_t err;
	char *out = NULL;
	assert_int_equal(omr_ws_render_deliver(&s, d, &out, &err), 0);
	assert_null(err.code);
	omr_envelope_destroy(&d);
	return parse_out(out);
}

/* A team item of kind `kind` about agent bob, as the router sends it: no
 * seq, no conversation unless one is set. */
static omr_envelope_t *team_env(const char *kind)
{
	omr_envelope_t *d = deliver("team");
	omr_envelope_set(&d->seq, NULL);
	omr_envelope_set(&d->conv, NULL);
	omr_envelope_set(&d->agent, "bob");
	omr_envelope_add_attr(d, "kind", kind);
	return d;
}

static void test_team_request(void **state)
{
	omr_ws_session_t s = agent(true);
	char *out;
	omr_ws_error_t err;
	/* members other than type and id are ignored: the agent is the session's */
	omr_ws_request_t rq = ok(&s, "{\"type\":\"team\",\"id\":\"s1\",\"agent_id\":\"mallory\"}");
	assert_int_equal(rq.kind, OMR_WS_TEAM);
	assert_int_equal(rq.env->type, OMR_ENV_AGENT_TEAM);
	assert_string_equal(rq.env->agent, "ana");
	assert_string_equal(rq.env->tenant, "t1");
	assert_int_equal(rq.env->conn, 42);
	assert_null(rq.env->conv);
	omr_envelope_t *a = ack_env(0);
	assert_int_equal(omr_ws_reply(&s, &rq, 0, a, &out, &err), 0);
	cJSON *w = parse_out(out);
	assert_string_equal(jstr(w, "type"), "ack");
	assert_string_equal(jstr(w, "id"), "s1");
	assert_null(jstr(w, "conversation_id"));
	cJSON_Delete(w);
	omr_ws_request_cleanup(&rq);
	omr_envelope_destroy(&a);

	omr_ws_session_t before = agent(false);
	refused(&before, "{\"type\":\"team\"}", "unauthorized", 0);
	omr_ws_session_t c = customer(true);
	refused(&c, "{\"type\":\"team\"}", "bad-request", 0);
}

static void test_monitor_request(void **state)
{
	omr_ws_session_t s = agent(true);
	char *out;
	omr_ws_error_t err;
	omr_ws_request_t rq = ok(&s, "{\"type\":\"monitor\",\"conversation_id\":\"c9\","
	                             "\"id\":\"s2\",\"earlier\":\"c3\"}");
	assert_int_equal(rq.kind, OMR_WS_MONITOR);
	assert_int_equal(rq.env->type, OMR_ENV_CONV_MONITOR);
	assert_string_equal(rq.env->conv, "c9");
	assert_string_equal(rq.env->agent, "ana");
	assert_int_equal(rq.env->n_attrs, 0); /* "earlier" is history's, not monitor's */
	omr_envelope_t *a = ack_env(0);
	assert_int_equal(omr_ws_reply(&s, &rq, 0, a, &out, &err), 0);
	cJSON *w = parse_out(out);
	assert_string_equal(jstr(w, "type"), "ack");
	assert_string_equal(jstr(w, "id"), "s2");
	assert_string_equal(jstr(w, "conversation_id"), "c9");
	cJSON_Delete(w);
	/* not one of the supervisor's team: the documented refusal, still open */
	assert_int_equal(omr_ws_reply(&s, &rq, OMR_ERR_NOT_ASSIGNED, a, &out, &err), 0);
	assert_null(out);
	assert_string_equal(err.code, "not-assigned");
	assert_string_equal(err.id, "s2");
	assert_int_equal(err.close_code, 0);
	omr_ws_request_cleanup(&rq);
	omr_envelope_destroy(&a);

	refused(&s, "{\"type\":\"monitor\"}", "bad-request", 0);
	refused(&s, "{\"type\":\"monitor\",\"conversation_id\":\"../c9\"}", "bad-request", 0);
	refused(&s, "{\"type\":\"monitor\",\"conversation_id\":9}", "bad-request", 0);
	refused(&s, "{\"type\":\"monitor\",\"conversation_id\":\"\"}", "bad-request", 0);
	omr_ws_session_t before = agent(false);
	refused(&before, "{\"type\":\"monitor\",\"conversation_id\":\"c9\"}", "unauthorized", 0);
	omr_ws_session_t c = customer(true);
	refused(&c, "{\"type\":\"monitor\",\"conversation_id\":\"c9\"}", "bad-request", 0);
}

static void test_render_team_agent(void **state)
{
	omr_envelope_t *d = team_env("agent");
	omr_envelope_set(&d->name, "Bob Ruiz");
	omr_envelope_set(&d->presence, "break");
	omr_envelope_set(&d->reason, "lunch");
	omr_envelope_add_attr(d, "load_chat", "1");
	omr_envelope_add_attr(d, "load_email", "0");
	omr_envelope_add_attr(d, "load_voice", "0");
	omr_envelope_add_attr(d, "cap_chat", "3");
	omr_envelope_add_attr(d, "cap_email", "5");
	omr_envelope_add_attr(d, "cap_voice", "x"); /* not a number: left out */
	cJSON *m = render(d);
	assert_string_equal(jstr(m, "type"), "team");
	assert_string_equal(jstr(m, "kind"), "agent");
	assert_string_equal(jstr(m, "agent_id"), "bob");
	assert_string_equal(jstr(m, "name"), "Bob Ruiz");
	assert_string_equal(jstr(m, "presence"), "break");
	assert_string_equal(jstr(m, "reason"), "lunch");
	const cJSON *load = cJSON_GetObjectItemCaseSensitive(m, "load");
	const cJSON *cap = cJSON_GetObjectItemCaseSensitive(m, "capacity");
	assert_true(jnum(load, "chat") == 1 && jnum(load, "email") == 0 &&
	            jnum(load, "voice") == 0);
	assert_true(jnum(cap, "chat") == 3 && jnum(cap, "email") == 5);
	assert_null(cJSON_GetObjectItemCaseSensitive(cap, "voice"));
	/* not an inbox item: nothing to acknowledge it by */
	assert_null(cJSON_GetObjectItemCaseSensitive(m, "seq"));
	assert_null(cJSON_GetObjectItemCaseSensitive(m, "conversation_id"));
	cJSON_Delete(m);

	/* no name, presence or reason given: presence offline, the rest left out */
	d = team_env("agent");
	m = render(d);
	assert_string_equal(jstr(m, "presence"), "offline");
	assert_null(jstr(m, "name"));
	assert_null(jstr(m, "reason"));
	assert_true(cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(m, "load")));
	cJSON_Delete(m);
}

static void test_render_team_conversation(void **state)
{
	omr_envelope_t *d = team_env("conversation");
	omr_envelope_set(&d->conv, "c9");
	omr_envelope_set(&d->name, "Ana");
	omr_envelope_set(&d->lang, "es-MX");
	omr_envelope_set(&d->tenant, "t2");
	omr_envelope_add_attr(d, "queue", "sales");
	omr_envelope_add_attr(d, "state", "assigned");
	cJSON *m = render(d);
	assert_string_equal(jstr(m, "type"), "team");
	assert_string_equal(jstr(m, "kind"), "conversation");
	assert_string_equal(jstr(m, "agent_id"), "bob");
	assert_string_equal(jstr(m, "conversation_id"), "c9");
	assert_string_equal(jstr(m, "customer_name"), "Ana");
	assert_string_equal(jstr(m, "language"), "es-MX");
	assert_string_equal(jstr(m, "queue"), "sales");
	assert_string_equal(jstr(m, "state"), "assigned");
	assert_string_equal(jstr(m, "tenant"), "t2");
	assert_null(cJSON_GetObjectItemCaseSensitive(m, "presence"));
	assert_null(cJSON_GetObjectItemCaseSensitive(m, "load"));
	assert_null(cJSON_GetObjectItemCaseSensitive(m, "seq"));
	cJSON_Delete(m);
}

static void test_render_monitor_item(void **state)
{
	omr_envelope_t *d = deliver("monitor");
	omr_envelope_set(&d->conv, "c9");
	omr_envelope_set(&d->seq, "1690000000100-0");
	omr_envelope_set(&d->name, "Ana");
	omr_envelope_set(&d->text, "hola");
	d->from = OMR_ROLE_CUSTOMER;
	d->ts_ms = 1690000000100ull;
	omr_envelope_add_attr(d, "kind", "message");
	cJSON *m = render(d);
	assert_string_equal(jstr(m, "type"), "monitor");
	assert_string_equal(jstr(m, "conversation_id"), "c9");
	assert_string_equal(jstr(m, "seq"), "1690000000100-0");
	assert_string_equal(jstr(m, "kind"), "message");
	assert_string_equal(jstr(m, "from"), "customer");
	assert_string_equal(jstr(m, "name"), "Ana");
	assert_string_equal(jstr(m, "text"), "hola");
	assert_true(jnum(m, "ts") == 1690000000100.0);
	cJSON_Delete(m);

	d = deliver("monitor");
	omr_envelope_add_attr(d, "kind", "event");
	omr_envelope_add_attr(d, "event", "closed");
	m = render(d);
	assert_string_equal(jstr(m, "type"), "monitor");
	assert_string_equal(jstr(m, "kind"), "event");
	assert_string_equal(jstr(m, "event"), "closed");
	assert_null(jstr(m, "from"));
	cJSON_Delete(m);

	/* the same item on a customer's connection is no monitor frame */
	omr_ws_session_t c = customer(true);
	omr_ws_error_t err;
	char *out = NULL;
	d = deliver("monitor");
	assert_int_equal(omr_ws_render_deliver(&c, d, &out, &err), 0);
	m = parse_out(out);
	assert_string_equal(jstr(m, "type"), "event");
	cJSON_Delete(m);
	omr_envelope_destroy(&d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_team_request),
	        cmocka_unit_test(test_monitor_request),
	        cmocka_unit_test(test_render_team_agent),
	        cmocka_unit_test(test_render_team_conversation),
	        cmocka_unit_test(test_render_monitor_item),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
