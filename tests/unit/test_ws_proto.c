/* test_ws_proto.c - the websocket protocol's parsing half (adapters/websocket/
 * ws_proto.c) against docs/PROTOCOL.md: every client frame to its envelope,
 * every refusal to its documented code and close (the typing, rate, transfer
 * and history tests also check the answer to their own frame). Acks and
 * deliveries to the documented JSON (ws_render.c) are in test_ws_render.c. */
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

static bool is_hex32(const char *s)
{
	if (!s || strlen(s) != 32)
		return false;
	for (; *s; s++) {
		if (!strchr("0123456789abcdef", *s))
			return false;
	}
	return true;
}

/* ---- client frames -> envelopes ------------------------------------------ */

static void test_hello(void **state)
{
	omr_ws_session_t s = customer(false);
	omr_ws_request_t rq =
	        ok(&s, "{\"type\":\"hello\",\"v\":1,\"language\":\"es-MX\",\"name\":\"Ana Gómez\","
	               "\"tenant\":\"t9\"}");
	omr_envelope_t *e = rq.env;
	assert_int_equal(rq.kind, OMR_WS_HELLO);
	assert_int_equal(e->type, OMR_ENV_CONV_START);
	assert_int_equal(e->conn, 41);
	assert_int_equal(e->channel, OMR_CHANNEL_CHAT);
	assert_int_equal(e->from, OMR_ROLE_CUSTOMER);
	assert_string_equal(e->tenant, "t9");
	assert_string_equal(e->lang, "es-MX");
	assert_string_equal(e->name, "Ana Gómez");
	assert_true(is_hex32(e->conv));
	assert_true(is_hex32(e->token));
	assert_string_not_equal(e->conv, e->token);
	assert_string_equal(rq.conv, e->conv);
	assert_string_equal(rq.token, e->token);
	omr_ws_request_cleanup(&rq);

	rq = ok(&s, "{\"type\":\"hello\"}");
	assert_string_equal(rq.env->tenant, "acme");
	assert_string_equal(rq.env->lang, "en");
	assert_null(rq.env->name);
	omr_ws_request_cleanup(&rq);

	/* "und" (undetermined, Java's Locale.ROOT) is no language: the default */
	rq = ok(&s, "{\"type\":\"hello\",\"language\":\"und\"}");
	assert_string_equal(rq.env->lang, "en");
	omr_ws_request_cleanup(&rq);
}

static void test_resume(void **state)
{
	omr_ws_session_t s = customer(false);
	omr_ws_request_t rq = ok(&s, "{\"type\":\"resume\",\"v\":1,\"conversation_id\":\"c7\","
	                             "\"resume_token\":\"tok\",\"after\":\"1700000000000-0\"}");
	assert_int_equal(rq.env->type, OMR_ENV_CONV_RESUME);
	assert_string_equal(rq.env->conv, "c7");
	assert_string_equal(rq.env->token, "tok");
	assert_string_equal(rq.env->seq, "1700000000000-0");
	assert_string_equal(rq.env->tenant, "acme");
	assert_int_equal(rq.env->conn, 41);
	omr_ws_request_cleanup(&rq);

	rq = ok(&s, "{\"type\":\"resume\",\"conversation_id\":\"c7\",\"resume_token\":\"tok\","
	            "\"tenant\":\"t2\"}");
	assert_string_equal(rq.env->seq, "0");
	assert_string_equal(rq.env->tenant, "t2");
	omr_ws_request_cleanup(&rq);
}

static void test_customer_message(void **state)
{
	omr_ws_session_t s = customer(true);
	/* conversation_id from the client is ignored: identity is the session's */
	omr_ws_request_t rq = ok(&s, "{\"type\":\"message\",\"id\":\"c-1\",\"text\":\"hola\","
	                             "\"conversation_id\":\"someone-else\",\"tenant\":\"evil\"}");
	omr_envelope_t *e = rq.env;
	assert_int_equal(e->type, OMR_ENV_CONV_MESSAGE);
	assert_string_equal(e->conv, "conv-1");
	assert_string_equal(e->tenant, "t1");
	assert_string_equal(e->msgid, "c-1");
	assert_string_equal(e->text, "hola");
	assert_int_equal(e->from, OMR_ROLE_CUSTOMER);
	assert_string_equal(rq.id, "c-1");
	omr_ws_request_cleanup(&rq);
}

static void test_login(void **state)
{
	omr_ws_session_t s = agent(false);
	omr_ws_request_t rq =
	        ok(&s, "{\"type\":\"login\",\"v\":1,\"agent_id\":\"ana\",\"token\":\"4f1c\"}");
	assert_int_equal(rq.env->type, OMR_ENV_AGENT_LOGIN);
	assert_string_equal(rq.env->agent, "ana");
	assert_string_equal(rq.env->token, "4f1c");
	assert_string_equal(rq.env->tenant, "acme");
	assert_int_equal(rq.env->conn, 42);
	assert_null(omr_envelope_attr(rq.env, "known")); /* did not say what it shows */
	omr_ws_request_cleanup(&rq);

	/* the conversations the desktop shows: attr "known" */
	rq = ok(&s, "{\"type\":\"login\",\"agent_id\":\"ana\",\"token\":\"t\","
	            "\"conversations\":[\"c1\",\"c2\"]}");
	assert_string_equal(omr_envelope_attr(rq.env, "known"), "c1,c2");
	omr_ws_request_cleanup(&rq);
	rq = ok(&s, "{\"type\":\"login\",\"agent_id\":\"ana\",\"token\":\"t\","
	            "\"conversations\":[]}");
	assert_string_equal(omr_envelope_attr(rq.env, "known"), "");
	omr_ws_request_cleanup(&rq);
	refused(&s,
	        "{\"type\":\"login\",\"agent_id\":\"ana\",\"token\":\"t\","
	        "\"conversations\":\"c1\"}",
	        "bad-request", 0);
	refused(&s,
	        "{\"type\":\"login\",\"agent_id\":\"ana\",\"token\":\"t\","
	        "\"conversations\":[\"c 1\"]}",
	        "bad-request", 0);
	char big[2048];
	int n = snprintf(big, sizeof(big),
	                 "{\"type\":\"login\",\"agent_id\":\"ana\",\"token\":\"t\","
	                 "\"conversations\":[");
	for (int i = 0; i < 40; i++) /* 40 ids of 32 bytes: over 1024 */
		n += snprintf(big + n, sizeof(big) - (size_t)n,
		              "%s\"0123456789abcdef0123456789abcdef\"", i ? "," : "");
	snprintf(big + n, sizeof(big) - (size_t)n, "]}");
	refused(&s, big, "bad-request", 0);
}

static void test_agent_requests(void **state)
{
	omr_ws_session_t s = agent(true);
	omr_ws_request_t rq =
	        ok(&s, "{\"type\":\"presence\",\"presence\":\"available\",\"id\":\"r1\","
	               "\"agent_id\":\"mallory\"}");
	assert_int_equal(rq.env->type, OMR_ENV_AGENT_PRESENCE);
	assert_string_equal(rq.env->presence, "available");
	assert_string_equal(rq.env->agent, "ana");
	assert_string_equal(rq.env->tenant, "t1");
	assert_string_equal(rq.id, "r1");
	omr_ws_request_cleanup(&rq);

	rq = ok(&s, "{\"type\":\"message\",\"conversation_id\":\"c7\",\"id\":\"a-1\","
	            "\"text\":\"¡Hola!\"}");
	assert_int_equal(rq.env->type, OMR_ENV_CONV_MESSAGE);
	assert_string_equal(rq.env->conv, "c7");
	assert_string_equal(rq.env->agent, "ana");
	assert_string_equal(rq.env->msgid, "a-1");
	assert_string_equal(rq.env->text, "¡Hola!");
	assert_int_equal(rq.env->from, OMR_ROLE_AGENT);
	omr_ws_request_cleanup(&rq);

	rq = ok(&s, "{\"type\":\"close\",\"conversation_id\":\"c7\",\"id\":\"r2\"}");
	assert_int_equal(rq.env->type, OMR_ENV_CONV_CLOSE);
	assert_string_equal(rq.env->conv, "c7");
	assert_string_equal(rq.env->agent, "ana");
	assert_int_equal(rq.env->from, OMR_ROLE_AGENT);
	omr_ws_request_cleanup(&rq);

	rq = ok(&s, "{\"type\":\"ack\",\"seq\":\"1700000000123-0\"}");
	assert_int_equal(rq.env->type, OMR_ENV_AGENT_ACK);
	assert_string_equal(rq.env->seq, "1700000000123-0");
	assert_string_equal(rq.env->agent, "ana");
	assert_string_equal(rq.id, "");
	omr_ws_request_cleanup(&rq);
}

static void test_offer_answers(void **state)
{
	omr_ws_session_t s = agent(true);
	char frame[256], reason[80];
	/* identity members of the frame are ignored, as for the other requests */
	omr_ws_request_t rq =
	        ok(&s, "{\"type\":\"accept\",\"conversation_id\":\"c7\",\"id\":\"r3\","
	               "\"agent_id\":\"mallory\",\"tenant\":\"evil\",\"reason\":\"x\"}");
	assert_int_equal(rq.kind, OMR_WS_ACCEPT);
	assert_int_equal(rq.env->type, OMR_ENV_OFFER_ACCEPT);
	assert_int_equal(rq.env->conn, 42);
	assert_int_equal(rq.env->channel, OMR_CHANNEL_CHAT);
	assert_string_equal(rq.env->tenant, "t1");
	assert_string_equal(rq.env->agent, "ana");
	assert_string_equal(rq.env->conv, "c7");
	assert_null(rq.env->reason); /* accept has no reason */
	assert_string_equal(rq.id, "r3");
	assert_string_equal(rq.conv, "c7");
	omr_ws_request_cleanup(&rq);

	rq = ok(&s, "{\"type\":\"reject\",\"conversation_id\":\"c7\",\"reason\":\"busy\","
	            "\"id\":\"r4\"}");
	assert_int_equal(rq.kind, OMR_WS_REJECT);
	assert_int_equal(rq.env->type, OMR_ENV_OFFER_REJECT);
	assert_string_equal(rq.env->tenant, "t1");
	assert_string_equal(rq.env->agent, "ana");
	assert_string_equal(rq.env->conv, "c7");
	assert_string_equal(rq.env->reason, "busy");
	assert_int_equal(rq.env->from, OMR_ROLE_NONE);
	omr_ws_request_cleanup(&rq);

	rq = ok(&s, "{\"type\":\"reject\",\"conversation_id\":\"c7\"}");
	assert_null(rq.env->reason);
	assert_string_equal(rq.id, "");
	omr_ws_request_cleanup(&rq);

	/* 64 bytes of printable UTF-8 (32 x "é") pass, 65 do not */
	for (int i = 0; i < 32; i++)
		memcpy(reason + 2 * i, "\xc3\xa9", 2);
	reason[64] = '\0';
	snprintf(frame, sizeof(frame),
	         "{\"type\":\"reject\",\"conversation_id\":\"c7\",\"reason\":\"%s\"}", reason);
	rq = ok(&s, frame);
	assert_string_equal(rq.env->reason, reason);
	omr_ws_request_cleanup(&rq);
	snprintf(frame, sizeof(frame),
	         "{\"type\":\"reject\",\"conversation_id\":\"c7\",\"reason\":\"%sx\","
	         "\"id\":\"r5\"}",
	         reason);
	omr_ws_error_t e = refused(&s, frame, "bad-request", 0);
	assert_string_equal(e.id, "r5");

	const char *bad[] = {
	        "{\"type\":\"accept\"}",
	        "{\"type\":\"accept\",\"conversation_id\":\"\"}",
	        "{\"type\":\"accept\",\"conversation_id\":\"c/7\"}",
	        "{\"type\":\"accept\",\"conversation_id\":7}",
	        "{\"type\":\"reject\",\"reason\":\"busy\"}",
	        "{\"type\":\"reject\",\"conversation_id\":\"c7\",\"reason\":\"\"}",
	        "{\"type\":\"reject\",\"conversation_id\":\"c7\",\"reason\":5}",
	        "{\"type\":\"reject\",\"conversation_id\":\"c7\",\"reason\":null}",
	        "{\"type\":\"reject\",\"conversation_id\":\"c7\",\"reason\":\"a\\nb\"}",
	        "{\"type\":\"reject\",\"conversation_id\":\"c7\",\"reason\":\"a\\u0001b\"}",
	        "{\"type\":\"reject\",\"conversation_id\":\"c7\",\"reason\":\"a\x7f\"}",
	        "{\"type\":\"reject\",\"conversation_id\":\"c7\",\"reason\":\"a\\u0085b\"}",
	        "{\"type\":\"reject\",\"conversation_id\":\"c7\",\"reason\":\"bad \xc3\x28\"}",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		refused(&s, bad[i], "bad-request", 0);

	/* agents only, and only after login */
	omr_ws_session_t a = agent(false), c = customer(true);
	refused(&a, "{\"type\":\"accept\",\"conversation_id\":\"c7\"}", "unauthorized", 0);
	refused(&c, "{\"type\":\"accept\",\"conversation_id\":\"c7\"}", "bad-request", 0);
	refused(&c, "{\"type\":\"reject\",\"conversation_id\":\"c7\"}", "bad-request", 0);
	refused(&c, "{\"type\":\"wrapup_end\",\"channel\":\"chat\"}", "bad-request", 0);
}

static void test_presence_break(void **state)
{
	omr_ws_session_t s = agent(true);
	char frame[256], reason[80];
	omr_ws_request_t rq = ok(&s, "{\"type\":\"presence\",\"presence\":\"break\","
	                             "\"reason\":\"lunch\",\"id\":\"p1\"}");
	assert_int_equal(rq.env->type, OMR_ENV_AGENT_PRESENCE);
	assert_string_equal(rq.env->presence, "break");
	assert_string_equal(rq.env->reason, "lunch");
	assert_string_equal(rq.env->agent, "ana");
	assert_string_equal(rq.presence, "break");
	omr_ws_request_cleanup(&rq);

	rq = ok(&s, "{\"type\":\"presence\",\"presence\":\"break\"}");
	assert_null(rq.env->reason);
	omr_ws_request_cleanup(&rq);

	rq = ok(&s, "{\"type\":\"presence\",\"presence\":\"away\"}");
	assert_null(rq.env->reason);
	omr_ws_request_cleanup(&rq);

	rq = ok(&s, "{\"type\":\"presence\",\"presence\":\"break\","
	            "\"reason\":\"Team meeting_2.b-c\"}");
	assert_string_equal(rq.env->reason, "Team meeting_2.b-c");
	omr_ws_request_cleanup(&rq);

	memset(reason, 'r', 64);
	reason[64] = '\0';
	snprintf(frame, sizeof(frame),
	         "{\"type\":\"presence\",\"presence\":\"break\",\"reason\":\"%s\"}", reason);
	rq = ok(&s, frame);
	omr_ws_request_cleanup(&rq);
	snprintf(frame, sizeof(frame),
	         "{\"type\":\"presence\",\"presence\":\"break\",\"reason\":\"%sr\","
	         "\"id\":\"p2\"}",
	         reason);
	omr_ws_error_t e = refused(&s, frame, "bad-request", 0);
	assert_string_equal(e.id, "p2");

	const char *bad[] = {
	        "{\"type\":\"presence\",\"presence\":\"Break\"}",
	        "{\"type\":\"presence\",\"presence\":\"offline\"}",
	        "{\"type\":\"presence\",\"presence\":\"busy\"}",
	        "{\"type\":\"presence\",\"reason\":\"lunch\"}",
	        "{\"type\":\"presence\",\"presence\":\"available\",\"reason\":\"lunch\"}",
	        "{\"type\":\"presence\",\"presence\":\"away\",\"reason\":\"lunch\"}",
	        "{\"type\":\"presence\",\"presence\":\"break\",\"reason\":\"\"}",
	        "{\"type\":\"presence\",\"presence\":\"break\",\"reason\":\"lunch!\"}",
	        "{\"type\":\"presence\",\"presence\":\"break\",\"reason\":\"caf\xc3\xa9\"}",
	        "{\"type\":\"presence\",\"presence\":\"break\",\"reason\":\"a\\tb\"}",
	        "{\"type\":\"presence\",\"presence\":\"break\",\"reason\":\"a:b\"}",
	        "{\"type\":\"presence\",\"presence\":\"break\",\"reason\":7}",
	        "{\"type\":\"presence\",\"presence\":\"break\",\"reason\":[\"lunch\"]}",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		refused(&s, bad[i], "bad-request", 0);
}

static void test_wrapup_end(void **state)
{
	omr_ws_session_t s = agent(true);
	static const struct {
		const char *name;
		omr_channel_t ch;
	} chans[] = {{"chat", OMR_CHANNEL_CHAT},
	             {"email", OMR_CHANNEL_EMAIL},
	             {"voice", OMR_CHANNEL_VOICE}};
	char frame[128];
	for (size_t i = 0; i < sizeof(chans) / sizeof(chans[0]); i++) {
		snprintf(frame, sizeof(frame),
		         "{\"type\":\"wrapup_end\",\"channel\":\"%s\",\"id\":\"w1\","
		         "\"agent_id\":\"mallory\"}",
		         chans[i].name);
		omr_ws_request_t rq = ok(&s, frame);
		assert_int_equal(rq.kind, OMR_WS_WRAPUP_END);
		assert_int_equal(rq.env->type, OMR_ENV_WRAPUP_END);
		assert_int_equal(rq.env->channel, chans[i].ch);
		assert_string_equal(rq.env->agent, "ana");
		assert_string_equal(rq.env->tenant, "t1");
		assert_int_equal(rq.env->conn, 42);
		assert_null(rq.env->conv);
		assert_string_equal(rq.id, "w1");
		omr_ws_request_cleanup(&rq);
	}
	const char *bad[] = {
	        "{\"type\":\"wrapup_end\"}",
	        "{\"type\":\"wrapup_end\",\"channel\":\"\"}",
	        "{\"type\":\"wrapup_end\",\"channel\":\"sms\"}",
	        "{\"type\":\"wrapup_end\",\"channel\":\"Chat\"}",
	        "{\"type\":\"wrapup_end\",\"channel\":\"chat \"}",
	        "{\"type\":\"wrapup_end\",\"channel\":1}",
	        "{\"type\":\"wrapup_end\",\"channel\":[\"chat\"]}",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		refused(&s, bad[i], "bad-request", 0);
	omr_ws_session_t a = agent(false);
	refused(&a, "{\"type\":\"wrapup_end\",\"channel\":\"chat\"}", "unauthorized", 0);
}

/* ---- refusals ------------------------------------------------------------- */

static void test_bad_json(void **state)
{
	omr_ws_session_t s = customer(true);
	const char *frames[] = {"{not json",
	                        "[1,2]",
	                        "\"hello\"",
	                        "{\"v\":1}",
	                        "{\"type\":7}",
	                        "{\"type\":\"hello\"",
	                        "{\"type\":\"message\"}{\"type\":\"x\"}",
	                        "{\"type\":\"message\",\"text\":\"\\ud83d\\ude00\\u12\"}"};
	for (size_t i = 0; i < sizeof(frames) / sizeof(frames[0]); i++)
		refused(&s, frames[i], "bad-json", OMR_WS_CLOSE_BAD_DATA);
	refused_len(&s, "", 0, "bad-json", OMR_WS_CLOSE_BAD_DATA);
	refused_len(&s, "{\"type\":\"message\"\0}", 19, "bad-json", OMR_WS_CLOSE_BAD_DATA);
}

static void test_members(void **state)
{
	omr_ws_session_t c = customer(false), a = agent(true);
	char frame[2048];
	/* a repeated top-level name is bad-json, whichever member it is and
	 * before anything else is looked at (the id is not echoed) */
	const char *dups[] = {
	        "{\"type\":\"hello\",\"type\":\"login\"}",
	        "{\"type\":\"hello\",\"type\":\"hello\"}",
	        "{\"type\":\"hello\",\"v\":1,\"v\":2}",
	        "{\"type\":\"hello\",\"id\":\"h1\",\"id\":\"h2\"}",
	        "{\"type\":\"hello\",\"name\":\"a\",\"x\":1,\"name\":\"b\"}",
	        "{\"type\":\"hello\",\"zz\":1,\"zz\":1}",
	        "{\"type\":\"dance\",\"x\":1,\"x\":2}",
	};
	for (size_t i = 0; i < sizeof(dups) / sizeof(dups[0]); i++) {
		omr_ws_error_t e = refused(&c, dups[i], "bad-json", OMR_WS_CLOSE_BAD_DATA);
		assert_string_equal(e.id, "");
	}
	refused(&a, "{\"type\":\"ack\",\"seq\":\"1-0\",\"seq\":\"2-0\"}", "bad-json",
	        OMR_WS_CLOSE_BAD_DATA);
	refused(&a, "{\"type\":\"accept\",\"conversation_id\":\"a\",\"conversation_id\":\"b\"}",
	        "bad-json", OMR_WS_CLOSE_BAD_DATA);
	/* names differing in case are different names; repeats inside a nested
	 * (ignored) member are not the frame's business */
	omr_ws_request_t rq = ok(&c, "{\"type\":\"hello\",\"Type\":\"login\","
	                             "\"x\":{\"a\":1,\"a\":2}}");
	omr_ws_request_cleanup(&rq);

	/* 32 members pass, 33 do not */
	size_t n = (size_t)snprintf(frame, sizeof(frame), "{\"type\":\"hello\"");
	for (int i = 1; i < 32; i++)
		n += (size_t)snprintf(frame + n, sizeof(frame) - n, ",\"k%d\":%d", i, i);
	snprintf(frame + n, sizeof(frame) - n, "}");
	rq = ok(&c, frame);
	omr_ws_request_cleanup(&rq);
	snprintf(frame + n, sizeof(frame) - n, ",\"k32\":32}");
	refused(&c, frame, "bad-json", OMR_WS_CLOSE_BAD_DATA);
}

static void test_version(void **state)
{
	omr_ws_session_t s = customer(false);
	omr_ws_error_t e = refused(&s, "{\"type\":\"hello\",\"v\":2,\"id\":\"h1\"}",
	                           "unsupported-version", OMR_WS_CLOSE_PROTOCOL);
	assert_string_equal(e.id, "h1");
	refused(&s, "{\"type\":\"hello\",\"v\":\"1\"}", "unsupported-version",
	        OMR_WS_CLOSE_PROTOCOL);
	refused(&s, "{\"type\":\"hello\",\"v\":1.5}", "unsupported-version", OMR_WS_CLOSE_PROTOCOL);
}

static void test_unknown_type_and_order(void **state)
{
	omr_ws_session_t c = customer(false), a = agent(false);
	refused(&c, "{\"type\":\"dance\"}", "bad-request", 0);
	refused(&c, "{\"type\":\"login\",\"agent_id\":\"a\",\"token\":\"t\"}", "bad-request", 0);
	refused(&a, "{\"type\":\"hello\"}", "bad-request", 0);
	/* before hello / login only the auth frame is accepted; stays open */
	omr_ws_error_t e = refused(&c, "{\"type\":\"message\",\"id\":\"c-1\",\"text\":\"x\"}",
	                           "unauthorized", 0);
	assert_string_equal(e.id, "c-1");
	refused(&a, "{\"type\":\"presence\",\"presence\":\"away\"}", "unauthorized", 0);
	/* a second hello while the first is in flight, or after it */
	c.auth_pending = true;
	refused(&c, "{\"type\":\"hello\"}", "bad-request", 0);
	omr_ws_session_t done = customer(true);
	refused(&done, "{\"type\":\"resume\",\"conversation_id\":\"c\",\"resume_token\":\"t\"}",
	        "bad-request", 0);
}

static void test_ids(void **state)
{
	omr_ws_session_t s = customer(true);
	char frame[512], big[200];
	memset(big, 'x', 129);
	big[129] = '\0';
	refused(&s, "{\"type\":\"message\",\"text\":\"x\"}", "bad-request", 0);
	omr_ws_error_t e = refused(&s, "{\"type\":\"message\",\"id\":\"a b\",\"text\":\"x\"}",
	                           "bad-request", 0);
	assert_string_equal(e.id, ""); /* an invalid id is never echoed */
	refused(&s, "{\"type\":\"message\",\"id\":\"\",\"text\":\"x\"}", "bad-request", 0);
	refused(&s, "{\"type\":\"message\",\"id\":7,\"text\":\"x\"}", "bad-request", 0);
	snprintf(frame, sizeof(frame), "{\"type\":\"message\",\"id\":\"%s\",\"text\":\"x\"}", big);
	refused(&s, frame, "bad-request", 0);
	big[128] = '\0';
	snprintf(frame, sizeof(frame), "{\"type\":\"message\",\"id\":\"%s\",\"text\":\"x\"}", big);
	omr_ws_request_t rq = ok(&s, frame);
	omr_ws_request_cleanup(&rq);

	omr_ws_session_t c = customer(false), a = agent(false), ag = agent(true);
	refused(&c, "{\"type\":\"resume\",\"resume_token\":\"t\"}", "bad-request", 0);
	refused(&c, "{\"type\":\"resume\",\"conversation_id\":\"c/1\",\"resume_token\":\"t\"}",
	        "bad-request", 0);
	refused(&c,
	        "{\"type\":\"resume\",\"conversation_id\":\"c\",\"resume_token\":\"t\","
	        "\"after\":5}",
	        "bad-request", 0);
	refused(&c, "{\"type\":\"hello\",\"tenant\":\"a b\"}", "bad-request", 0);
	refused(&a, "{\"type\":\"login\",\"agent_id\":\"ana\"}", "bad-request", 0);
	refused(&a, "{\"type\":\"login\",\"agent_id\":[],\"token\":\"t\"}", "bad-request", 0);
	refused(&ag, "{\"type\":\"message\",\"id\":\"a1\",\"text\":\"x\"}", "bad-request", 0);
	refused(&ag, "{\"type\":\"close\"}", "bad-request", 0);
	refused(&ag, "{\"type\":\"ack\"}", "bad-request", 0);
	refused(&ag, "{\"type\":\"ack\",\"seq\":\"1 2\"}", "bad-request", 0);
	refused(&ag, "{\"type\":\"presence\",\"presence\":\"busy\"}", "bad-request", 0);
	refused(&ag, "{\"type\":\"presence\",\"presence\":true}", "bad-request", 0);
}

static void test_text(void **state)
{
	omr_ws_session_t s = customer(true);
	char frame[256], text[80];
	refused(&s, "{\"type\":\"message\",\"id\":\"m\"}", "bad-request", 0);
	refused(&s, "{\"type\":\"message\",\"id\":\"m\",\"text\":5}", "bad-request", 0);
	refused(&s, "{\"type\":\"message\",\"id\":\"m\",\"text\":\"\"}", "bad-request", 0);
	/* exactly the limit passes, one byte more does not */
	memset(text, 'a', 64);
	text[64] = '\0';
	snprintf(frame, sizeof(frame), "{\"type\":\"message\",\"id\":\"m\",\"text\":\"%s\"}", text);
	omr_ws_request_t rq = ok(&s, frame);
	omr_ws_request_cleanup(&rq);
	text[64] = 'a';
	text[65] = '\0';
	snprintf(frame, sizeof(frame), "{\"type\":\"message\",\"id\":\"m\",\"text\":\"%s\"}", text);
	omr_ws_error_t e = refused(&s, frame, "bad-request", 0);
	assert_string_equal(e.id, "m");
	assert_non_null(strstr(e.reason, "too long"));
	/* raw invalid UTF-8, NUL by escape, lone surrogates: refused, id echoed */
	e = refused(&s, "{\"type\":\"message\",\"id\":\"u0\",\"text\":\"bad \xc3\x28\"}",
	            "bad-request", 0);
	assert_string_equal(e.id, "u0");
	e = refused(&s, "{\"type\":\"message\",\"id\":\"n1\",\"text\":\"a\\u0000b\"}",
	            "bad-request", 0);
	assert_string_equal(e.id, "n1");
	e = refused(&s, "{\"type\":\"message\",\"id\":\"u1\",\"text\":\"x \\udc80\"}",
	            "bad-request", 0);
	assert_string_equal(e.id, "u1");
	e = refused(&s, "{\"type\":\"message\",\"id\":\"u2\",\"text\":\"\\ud800\\ud800\"}",
	            "bad-request", 0);
	assert_string_equal(e.id, "u2");
	/* an escaped backslash followed by u0000 is text, and a valid pair is fine */
	rq = ok(&s, "{\"type\":\"message\",\"id\":\"t1\",\"text\":\"a\\\\u0000 \\ud83d\\ude00\"}");
	assert_string_equal(rq.env->text, "a\\u0000 \xf0\x9f\x98\x80");
	omr_ws_request_cleanup(&rq);
}

/* A hello's key names its conversation: the same key (and tenant) gives the
 * same id and token, so a hello sent again is not a second conversation.
 * Without one, a hello sent again on the connection reuses its last key. */
static void test_hello_key(void **state)
{
	omr_ws_session_t s = customer(false);
	const char *f = "{\"type\":\"hello\",\"key\":\"k-0123456789abcdef\"}";
	omr_ws_request_t a = ok(&s, f), b = ok(&s, f);
	assert_string_equal(a.key, "k-0123456789abcdef");
	assert_true(is_hex32(a.conv) && is_hex32(a.token));
	assert_string_equal(a.conv, b.conv);
	assert_string_equal(a.token, b.token);
	assert_string_not_equal(a.conv, a.token);
	omr_ws_request_t t = ok(&s, "{\"type\":\"hello\",\"key\":\"k-0123456789abcdef\","
	                            "\"tenant\":\"t9\"}");
	assert_string_not_equal(t.conv, a.conv);
	omr_ws_request_t o = ok(&s, "{\"type\":\"hello\",\"key\":\"k-0123456789abcdeF\"}");
	assert_string_not_equal(o.conv, a.conv);
	assert_string_not_equal(o.token, a.token);
	omr_ws_request_cleanup(&a);
	omr_ws_request_cleanup(&b);
	omr_ws_request_cleanup(&t);
	omr_ws_request_cleanup(&o);
	refused(&s, "{\"type\":\"hello\",\"key\":\"short-15-chars!\"}", "bad-request", 0);
	refused(&s, "{\"type\":\"hello\",\"key\":\"0123456789abcde\"}", "bad-request", 0);
	refused(&s, "{\"type\":\"hello\",\"key\":5}", "bad-request", 0);

	/* no key: a fresh one each time, unless the connection has one */
	omr_ws_request_t x = ok(&s, "{\"type\":\"hello\"}"), y = ok(&s, "{\"type\":\"hello\"}");
	assert_true(is_hex32(x.key));
	assert_string_not_equal(x.conv, y.conv);
	snprintf(s.hello_key, sizeof(s.hello_key), "%s", x.key);
	omr_ws_request_t z = ok(&s, "{\"type\":\"hello\"}");
	assert_string_equal(z.conv, x.conv);
	assert_string_equal(z.token, x.token);
	omr_ws_request_cleanup(&x);
	omr_ws_request_cleanup(&y);
	omr_ws_request_cleanup(&z);
}

static void test_hello_fields(void **state)
{
	omr_ws_session_t s = customer(false);
	char frame[600], name[300];
	refused(&s, "{\"type\":\"hello\",\"language\":\"e\"}", "bad-request", 0);
	refused(&s, "{\"type\":\"hello\",\"language\":\"es_MX\"}", "bad-request", 0);
	refused(&s, "{\"type\":\"hello\",\"language\":5}", "bad-request", 0);
	refused(&s, "{\"type\":\"hello\",\"name\":\"a\\nb\"}", "bad-request", 0);
	refused(&s, "{\"type\":\"hello\",\"name\":\"\"}", "bad-request", 0);
	memset(name, 'n', 257);
	name[257] = '\0';
	snprintf(frame, sizeof(frame), "{\"type\":\"hello\",\"name\":\"%s\"}", name);
	refused(&s, frame, "bad-request", 0);
	name[256] = '\0';
	snprintf(frame, sizeof(frame), "{\"type\":\"hello\",\"name\":\"%s\"}", name);
	omr_ws_request_t rq = ok(&s, frame);
	omr_ws_request_cleanup(&rq);
}

/* ---- the customer's identity, topic and attributes; typing, survey ------- */

static void test_hello_customer(void **state)
{
	omr_ws_session_t s = customer(false);
	omr_ws_request_t rq = ok(&s, "{\"type\":\"hello\",\"customer_id\":\"cust-42@acme.example\","
	                             "\"topic\":\"billing\",\"attributes\":{\"tier\":\"gold\","
	                             "\"plan\":\"Pro – año\",\"empty\":\"\"}}");
	omr_envelope_t *e = rq.env;
	assert_int_equal(e->type, OMR_ENV_CONV_START);
	assert_string_equal(e->customer, "cust-42@acme.example");
	assert_int_equal(e->n_skills, 1);
	assert_string_equal(e->skills[0], "billing");
	assert_int_equal(e->n_attrs, 3);
	assert_string_equal(omr_envelope_attr(e, "tier"), "gold");
	assert_string_equal(omr_envelope_attr(e, "plan"), "Pro – año");
	assert_string_equal(omr_envelope_attr(e, "empty"), "");
	omr_ws_request_cleanup(&rq);

	/* all optional */
	rq = ok(&s, "{\"type\":\"hello\",\"attributes\":{}}");
	assert_null(rq.env->customer);
	assert_int_equal(rq.env->n_skills, 0);
	assert_int_equal(rq.env->n_attrs, 0);
	omr_ws_request_cleanup(&rq);

	/* 16 attributes, a 64-byte key and a 255-byte value are the limits */
	char frame[4096], key[80], value[300];
	size_t n = (size_t)snprintf(frame, sizeof(frame), "{\"type\":\"hello\",\"attributes\":{");
	for (int i = 0; i < 16; i++)
		n += (size_t)snprintf(frame + n, sizeof(frame) - n, "%s\"k%d\":\"v%d\"",
		                      i ? "," : "", i, i);
	snprintf(frame + n, sizeof(frame) - n, "}}");
	rq = ok(&s, frame);
	assert_int_equal(rq.env->n_attrs, 16);
	assert_string_equal(omr_envelope_attr(rq.env, "k15"), "v15");
	omr_ws_request_cleanup(&rq);
	snprintf(frame + n, sizeof(frame) - n, ",\"k16\":\"v\"}}");
	refused(&s, frame, "bad-request", 0);

	memset(key, 'k', 64);
	key[64] = '\0';
	memset(value, 'v', 255);
	value[255] = '\0';
	snprintf(frame, sizeof(frame), "{\"type\":\"hello\",\"attributes\":{\"%s\":\"%s\"}}", key,
	         value);
	rq = ok(&s, frame);
	assert_string_equal(omr_envelope_attr(rq.env, key), value);
	omr_ws_request_cleanup(&rq);
	snprintf(frame, sizeof(frame), "{\"type\":\"hello\",\"attributes\":{\"%sk\":\"v\"}}", key);
	refused(&s, frame, "bad-request", 0);
	snprintf(frame, sizeof(frame), "{\"type\":\"hello\",\"attributes\":{\"k\":\"%sv\"}}",
	         value);
	refused(&s, frame, "bad-request", 0);

	memset(value, 'c', 129);
	value[129] = '\0';
	snprintf(frame, sizeof(frame), "{\"type\":\"hello\",\"customer_id\":\"%s\"}", value);
	refused(&s, frame, "bad-request", 0);
	value[128] = '\0';
	snprintf(frame, sizeof(frame), "{\"type\":\"hello\",\"customer_id\":\"%s\"}", value);
	rq = ok(&s, frame);
	assert_string_equal(rq.env->customer, value);
	omr_ws_request_cleanup(&rq);

	const char *bad[] = {
	        "{\"type\":\"hello\",\"customer_id\":\"\"}",
	        "{\"type\":\"hello\",\"customer_id\":\"ana smith\"}",
	        "{\"type\":\"hello\",\"customer_id\":42}",
	        "{\"type\":\"hello\",\"customer_id\":null}",
	        "{\"type\":\"hello\",\"customer_id\":\"a/b\"}",
	        "{\"type\":\"hello\",\"topic\":\"\"}",
	        "{\"type\":\"hello\",\"topic\":\"billing es\"}",
	        "{\"type\":\"hello\",\"topic\":[\"billing\"]}",
	        "{\"type\":\"hello\",\"attributes\":[]}",
	        "{\"type\":\"hello\",\"attributes\":\"tier=gold\"}",
	        "{\"type\":\"hello\",\"attributes\":null}",
	        "{\"type\":\"hello\",\"attributes\":{\"tier\":1}}",
	        "{\"type\":\"hello\",\"attributes\":{\"tier\":true}}",
	        "{\"type\":\"hello\",\"attributes\":{\"tier\":null}}",
	        "{\"type\":\"hello\",\"attributes\":{\"tier\":{\"a\":\"b\"}}}",
	        "{\"type\":\"hello\",\"attributes\":{\"tier\":[\"gold\"]}}",
	        "{\"type\":\"hello\",\"attributes\":{\"\":\"x\"}}",
	        "{\"type\":\"hello\",\"attributes\":{\"ti er\":\"x\"}}",
	        "{\"type\":\"hello\",\"attributes\":{\"tïer\":\"x\"}}",
	        "{\"type\":\"hello\",\"attributes\":{\"tier\":\"a\\nb\"}}",
	        "{\"type\":\"hello\",\"attributes\":{\"tier\":\"a\\u0085b\"}}",
	        "{\"type\":\"hello\",\"attributes\":{\"tier\":\"a\x7f\"}}",
	        "{\"type\":\"hello\",\"attributes\":{\"tier\":\"bad \xc3\x28\"}}",
	        /* a repeated name inside attributes: the envelope would refuse it */
	        "{\"type\":\"hello\",\"attributes\":{\"tier\":\"gold\",\"tier\":\"x\"}}",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		refused(&s, bad[i], "bad-request", 0);
	refused(&s, "{\"type\":\"hello\",\"attributes\":{\"tier\":\"a\\u0000b\"}}", "bad-request",
	        0);
}

static void test_typing(void **state)
{
	omr_ws_session_t s = customer(true);
	char *out;
	omr_ws_error_t err;
	/* the customer's conversation is the session's */
	omr_ws_request_t rq = ok(&s, "{\"type\":\"typing\",\"conversation_id\":\"other\"}");
	assert_int_equal(rq.kind, OMR_WS_TYPING);
	assert_int_equal(rq.env->type, OMR_ENV_CONV_TYPING);
	assert_string_equal(rq.env->conv, "conv-1");
	assert_string_equal(rq.env->tenant, "t1");
	assert_int_equal(rq.env->from, OMR_ROLE_CUSTOMER);
	assert_null(rq.env->agent);
	assert_int_equal(rq.env->conn, 41);
	/* no answer when it worked; an error when it did not */
	omr_envelope_t *a = ack_env(0);
	assert_int_equal(omr_ws_reply(&s, &rq, 0, a, &out, &err), 0);
	assert_null(out);
	assert_null(err.code);
	assert_int_equal(omr_ws_reply(&s, &rq, -ETIMEDOUT, NULL, &out, &err), 0);
	assert_null(out);
	assert_string_equal(err.code, "unavailable");
	assert_int_equal(err.close_code, 0);
	omr_ws_request_cleanup(&rq);

	omr_ws_session_t ag = agent(true);
	rq = ok(&ag, "{\"type\":\"typing\",\"conversation_id\":\"c7\"}");
	assert_int_equal(rq.env->type, OMR_ENV_CONV_TYPING);
	assert_string_equal(rq.env->conv, "c7");
	assert_string_equal(rq.env->agent, "ana");
	assert_int_equal(rq.env->from, OMR_ROLE_AGENT);
	assert_int_equal(omr_ws_reply(&ag, &rq, 0, a, &out, &err), 0);
	assert_null(out);
	assert_int_equal(omr_ws_reply(&ag, &rq, OMR_ERR_NOT_ASSIGNED, a, &out, &err), 0);
	assert_string_equal(err.code, "not-assigned");
	omr_ws_request_cleanup(&rq);
	omr_envelope_destroy(&a);

	refused(&ag, "{\"type\":\"typing\"}", "bad-request", 0);
	refused(&ag, "{\"type\":\"typing\",\"conversation_id\":7}", "bad-request", 0);
	omr_ws_session_t c0 = customer(false);
	refused(&c0, "{\"type\":\"typing\"}", "unauthorized", 0);
}

/* A ping is the adapter's: answered at any time, before a hello or login
 * too, with nothing for the router (no envelope). */
static void test_ping(void **state)
{
	(void)state;
	omr_ws_session_t sessions[] = {customer(false), customer(true), agent(false), agent(true)};
	const char *frames[] = {"{\"type\":\"ping\",\"id\":\"p-1\"}", "{\"type\":\"ping\"}"};
	for (size_t i = 0; i < sizeof(sessions) / sizeof(sessions[0]); i++) {
		for (size_t f = 0; f < 2; f++) {
			omr_ws_request_t rq;
			omr_ws_error_t err;
			assert_int_equal(omr_ws_parse(&sessions[i], &limits, frames[f],
			                              strlen(frames[f]), &rq, &err),
			                 0);
			assert_int_equal(rq.kind, OMR_WS_PING);
			assert_string_equal(rq.id, f == 0 ? "p-1" : "");
			assert_null(rq.env);
			omr_ws_request_cleanup(&rq);
		}
	}
	omr_ws_session_t c = customer(true);
	refused(&c, "{\"type\":\"ping\",\"id\":\"no spaces\"}", "bad-request", 0);
	assert_string_equal(omr_ws_kind_name(OMR_WS_PING), "ping");

	char *json = omr_ws_render_pong("p-1");
	cJSON *o = cJSON_Parse(json);
	assert_non_null(o);
	assert_string_equal(cJSON_GetObjectItem(o, "type")->valuestring, "pong");
	assert_string_equal(cJSON_GetObjectItem(o, "id")->valuestring, "p-1");
	assert_int_equal(cJSON_GetArraySize(o), 2);
	cJSON_Delete(o);
	free(json);
	json = omr_ws_render_pong("");
	assert_string_equal(json, "{\"type\":\"pong\"}");
	free(json);
}

static void test_rate(void **state)
{
	omr_ws_session_t s = customer(true);
	char *out;
	omr_ws_error_t err;
	omr_ws_request_t rq = ok(&s, "{\"type\":\"rate\",\"score\":5,\"comment\":\"¡Muy bien!\","
	                             "\"id\":\"r-1\",\"conversation_id\":\"other\"}");
	assert_int_equal(rq.kind, OMR_WS_RATE);
	assert_int_equal(rq.env->type, OMR_ENV_CONV_RATE);
	assert_string_equal(rq.env->conv, "conv-1");
	assert_string_equal(rq.env->tenant, "t1");
	assert_string_equal(omr_envelope_attr(rq.env, "score"), "5");
	assert_string_equal(rq.env->text, "¡Muy bien!");
	assert_null(rq.env->agent);
	omr_envelope_t *a = ack_env(0);
	assert_int_equal(omr_ws_reply(&s, &rq, 0, a, &out, &err), 0);
	cJSON *w = parse_out(out);
	assert_string_equal(jstr(w, "type"), "ack");
	assert_string_equal(jstr(w, "id"), "r-1");
	assert_int_equal(cJSON_GetArraySize(w), 2);
	cJSON_Delete(w);
	omr_ws_request_cleanup(&rq);
	omr_envelope_destroy(&a);

	for (int score = 1; score <= 5; score++) {
		char frame[64], want[2] = {(char)('0' + score), 0};
		snprintf(frame, sizeof(frame), "{\"type\":\"rate\",\"score\":%d}", score);
		rq = ok(&s, frame);
		assert_string_equal(omr_envelope_attr(rq.env, "score"), want);
		assert_null(rq.env->text);
		omr_ws_request_cleanup(&rq);
	}
	rq = ok(&s, "{\"type\":\"rate\",\"score\":4.0,\"comment\":\"\"}");
	assert_string_equal(omr_envelope_attr(rq.env, "score"), "4");
	assert_null(rq.env->text); /* an empty comment is no comment */
	omr_ws_request_cleanup(&rq);

	/* limits.max_text_bytes is 64 */
	char frame[256], text[80];
	memset(text, 'x', 64);
	text[64] = '\0';
	snprintf(frame, sizeof(frame), "{\"type\":\"rate\",\"score\":3,\"comment\":\"%s\"}", text);
	rq = ok(&s, frame);
	omr_ws_request_cleanup(&rq);
	snprintf(frame, sizeof(frame),
	         "{\"type\":\"rate\",\"score\":3,\"comment\":\"%sx\",\"id\":\"r-2\"}", text);
	omr_ws_error_t e = refused(&s, frame, "bad-request", 0);
	assert_string_equal(e.id, "r-2");

	const char *bad[] = {
	        "{\"type\":\"rate\"}",
	        "{\"type\":\"rate\",\"score\":0}",
	        "{\"type\":\"rate\",\"score\":6}",
	        "{\"type\":\"rate\",\"score\":-1}",
	        "{\"type\":\"rate\",\"score\":2.5}",
	        "{\"type\":\"rate\",\"score\":\"5\"}",
	        "{\"type\":\"rate\",\"score\":null}",
	        "{\"type\":\"rate\",\"score\":true}",
	        "{\"type\":\"rate\",\"score\":1e999}",
	        "{\"type\":\"rate\",\"score\":5,\"comment\":5}",
	        "{\"type\":\"rate\",\"score\":5,\"comment\":null}",
	        "{\"type\":\"rate\",\"score\":5,\"comment\":\"bad \xc3\x28\"}",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		refused(&s, bad[i], "bad-request", 0);
	refused(&s, "{\"type\":\"rate\",\"score\":5,\"comment\":\"a\\u0000\"}", "bad-request", 0);

	/* customers only, after hello */
	omr_ws_session_t ag = agent(true), c0 = customer(false);
	refused(&ag, "{\"type\":\"rate\",\"score\":5}", "bad-request", 0);
	refused(&c0, "{\"type\":\"rate\",\"score\":5}", "unauthorized", 0);
}

/* ---- the agent's transfer, history and close disposition ------------------ */

static void test_transfer(void **state)
{
	omr_ws_session_t s = agent(true);
	char *out;
	omr_ws_error_t err;
	omr_ws_request_t rq = ok(&s, "{\"type\":\"transfer\",\"conversation_id\":\"c7\","
	                             "\"queue\":\"billing-es\",\"note\":\"Wants a refund\\nof "
	                             "€20\",\"id\":\"t1\",\"agent_id\":\"mallory\"}");
	assert_int_equal(rq.kind, OMR_WS_TRANSFER);
	assert_int_equal(rq.env->type, OMR_ENV_CONV_TRANSFER);
	assert_string_equal(rq.env->conv, "c7");
	assert_string_equal(rq.env->agent, "ana");
	assert_string_equal(rq.env->tenant, "t1");
	assert_int_equal(rq.env->n_attrs, 1);
	assert_string_equal(omr_envelope_attr(rq.env, "queue"), "billing-es");
	assert_string_equal(rq.env->text, "Wants a refund\nof €20");
	omr_envelope_t *a = ack_env(0);
	assert_int_equal(omr_ws_reply(&s, &rq, 0, a, &out, &err), 0);
	cJSON *w = parse_out(out);
	assert_string_equal(jstr(w, "type"), "ack");
	assert_string_equal(jstr(w, "id"), "t1");
	assert_string_equal(jstr(w, "conversation_id"), "c7");
	cJSON_Delete(w);
	assert_int_equal(omr_ws_reply(&s, &rq, -EINVAL, a, &out, &err), 0);
	assert_null(out);
	assert_string_equal(err.code, "bad-request");
	assert_string_equal(err.id, "t1");
	omr_ws_request_cleanup(&rq);
	omr_envelope_destroy(&a);

	rq = ok(&s, "{\"type\":\"transfer\",\"conversation_id\":\"c7\",\"agent\":\"luis\"}");
	assert_int_equal(rq.env->n_attrs, 1);
	assert_string_equal(omr_envelope_attr(rq.env, "agent"), "luis");
	assert_null(omr_envelope_attr(rq.env, "queue"));
	assert_string_equal(rq.env->agent, "ana"); /* who transfers; attrs agent is the target */
	assert_null(rq.env->text);
	omr_ws_request_cleanup(&rq);

	const char *bad[] = {
	        "{\"type\":\"transfer\",\"queue\":\"q\"}",
	        "{\"type\":\"transfer\",\"conversation_id\":\"c7\"}",
	        "{\"type\":\"transfer\",\"conversation_id\":\"c7\",\"queue\":\"q\",\"agent\":"
	        "\"a\"}",
	        "{\"type\":\"transfer\",\"conversation_id\":\"c7\",\"queue\":\"\"}",
	        "{\"type\":\"transfer\",\"conversation_id\":\"c7\",\"queue\":\"a q\"}",
	        "{\"type\":\"transfer\",\"conversation_id\":\"c7\",\"queue\":7}",
	        "{\"type\":\"transfer\",\"conversation_id\":\"c7\",\"agent\":[\"luis\"]}",
	        "{\"type\":\"transfer\",\"conversation_id\":\"c7\",\"agent\":\"luis\",\"note\":1}",
	        "{\"type\":\"transfer\",\"conversation_id\":\"c7\",\"agent\":\"luis\","
	        "\"note\":\"\xff\"}",
	        "{\"type\":\"transfer\",\"conversation_id\":\"c7\",\"agent\":\"luis\","
	        "\"note\":\"0123456789012345678901234567890123456789012345678901234567890123"
	        "4\"}",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		refused(&s, bad[i], "bad-request", 0);
	omr_ws_session_t c = customer(true);
	refused(&c, "{\"type\":\"transfer\",\"conversation_id\":\"c7\",\"queue\":\"q\"}",
	        "bad-request", 0);
}

static void test_history(void **state)
{
	omr_ws_session_t s = agent(true);
	char *out;
	omr_ws_error_t err;
	omr_ws_request_t rq = ok(&s, "{\"type\":\"history\",\"conversation_id\":\"c7\","
	                             "\"earlier\":\"c3\",\"id\":\"h1\"}");
	assert_int_equal(rq.kind, OMR_WS_HISTORY);
	assert_int_equal(rq.env->type, OMR_ENV_CONV_HISTORY);
	assert_string_equal(rq.env->conv, "c7");
	assert_string_equal(rq.env->agent, "ana");
	assert_string_equal(omr_envelope_attr(rq.env, "earlier"), "c3");
	omr_envelope_t *a = ack_env(0);
	assert_int_equal(omr_ws_reply(&s, &rq, 0, a, &out, &err), 0);
	cJSON *w = parse_out(out);
	assert_string_equal(jstr(w, "type"), "ack");
	assert_string_equal(jstr(w, "id"), "h1");
	assert_string_equal(jstr(w, "conversation_id"), "c7");
	cJSON_Delete(w);
	assert_int_equal(omr_ws_reply(&s, &rq, OMR_ERR_NOT_ASSIGNED, a, &out, &err), 0);
	assert_string_equal(err.code, "not-assigned");
	assert_string_equal(err.id, "h1");
	omr_ws_request_cleanup(&rq);
	omr_envelope_destroy(&a);

	refused(&s, "{\"type\":\"history\",\"conversation_id\":\"c7\"}", "bad-request", 0);
	refused(&s, "{\"type\":\"history\",\"earlier\":\"c3\"}", "bad-request", 0);
	refused(&s, "{\"type\":\"history\",\"conversation_id\":\"c7\",\"earlier\":\"c 3\"}",
	        "bad-request", 0);
	refused(&s, "{\"type\":\"history\",\"conversation_id\":\"c7\",\"earlier\":3}",
	        "bad-request", 0);
	omr_ws_session_t c = customer(true);
	refused(&c, "{\"type\":\"history\",\"conversation_id\":\"c7\",\"earlier\":\"c3\"}",
	        "bad-request", 0);
}

static void test_close_disposition(void **state)
{
	omr_ws_session_t s = agent(true);
	char frame[256], code[80];
	omr_ws_request_t rq = ok(&s, "{\"type\":\"close\",\"conversation_id\":\"c7\","
	                             "\"disposition\":\"follow-up\",\"id\":\"r2\"}");
	assert_int_equal(rq.env->type, OMR_ENV_CONV_CLOSE);
	assert_string_equal(rq.env->reason, "follow-up");
	omr_ws_request_cleanup(&rq);

	rq = ok(&s, "{\"type\":\"close\",\"conversation_id\":\"c7\"}");
	assert_null(rq.env->reason);
	omr_ws_request_cleanup(&rq);

	memset(code, 'd', 64);
	code[64] = '\0';
	snprintf(frame, sizeof(frame),
	         "{\"type\":\"close\",\"conversation_id\":\"c7\",\"disposition\":\"%s\"}", code);
	rq = ok(&s, frame);
	assert_string_equal(rq.env->reason, code);
	omr_ws_request_cleanup(&rq);
	snprintf(frame, sizeof(frame),
	         "{\"type\":\"close\",\"conversation_id\":\"c7\",\"disposition\":\"%sd\"}", code);
	refused(&s, frame, "bad-request", 0);
	refused(&s, "{\"type\":\"close\",\"conversation_id\":\"c7\",\"disposition\":\"\"}",
	        "bad-request", 0);
	refused(&s, "{\"type\":\"close\",\"conversation_id\":\"c7\",\"disposition\":\"follow up\"}",
	        "bad-request", 0);
	refused(&s, "{\"type\":\"close\",\"conversation_id\":\"c7\",\"disposition\":3}",
	        "bad-request", 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_hello),
	        cmocka_unit_test(test_resume),
	        cmocka_unit_test(test_customer_message),
	        cmocka_unit_test(test_login),
	        cmocka_unit_test(test_agent_requests),
	        cmocka_unit_test(test_offer_answers),
	        cmocka_unit_test(test_presence_break),
	        cmocka_unit_test(test_wrapup_end),
	        cmocka_unit_test(test_members),
	        cmocka_unit_test(test_bad_json),
	        cmocka_unit_test(test_version),
	        cmocka_unit_test(test_unknown_type_and_order),
	        cmocka_unit_test(test_ids),
	        cmocka_unit_test(test_text),
	        cmocka_unit_test(test_hello_key),
	        cmocka_unit_test(test_hello_fields),
	        cmocka_unit_test(test_hello_customer),
	        cmocka_unit_test(test_typing),
	        cmocka_unit_test(test_rate),
	        cmocka_unit_test(test_transfer),
	        cmocka_unit_test(test_history),
	        cmocka_unit_test(test_close_disposition),
	        cmocka_unit_test(test_ping),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
