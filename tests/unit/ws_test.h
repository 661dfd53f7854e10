/* ws_test.h - what the unit tests of the websocket protocol share
 * (test_ws_proto.c, test_ws_render.c, test_ws_supervisor.c, test_ws_identity.c): sessions, the
 * limits, parsing a frame that must be accepted or refused, reading rendered
 * JSON, acks and deliveries to render. Include after <cmocka.h> and
 * <cjson/cJSON.h>. */
#ifndef OMR_TESTS_WS_TEST_H
#define OMR_TESTS_WS_TEST_H

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "websocket/ws_proto.h"

static const omr_ws_limits_t limits = {
        .max_text_bytes = 64,
        .default_tenant = "acme",
        .default_language = "en",
};

static inline omr_ws_session_t customer(bool authed)
{
	omr_ws_session_t s = {.role = OMR_WS_ROLE_CUSTOMER, .conn = 41, .authed = authed};
	if (authed) {
		snprintf(s.tenant, sizeof(s.tenant), "%s", "t1");
		snprintf(s.conv, sizeof(s.conv), "%s", "conv-1");
	}
	return s;
}

static inline omr_ws_session_t agent(bool authed)
{
	omr_ws_session_t s = {.role = OMR_WS_ROLE_AGENT, .conn = 42, .authed = authed};
	if (authed) {
		snprintf(s.tenant, sizeof(s.tenant), "%s", "t1");
		snprintf(s.agent, sizeof(s.agent), "%s", "ana");
	}
	return s;
}

/* Parses a frame that must be accepted under lim; returns its request. */
static inline omr_ws_request_t ok_lim(const omr_ws_session_t *s, const omr_ws_limits_t *lim,
                                      const char *frame)
{
	omr_ws_request_t rq;
	omr_ws_error_t err;
	int rc = omr_ws_parse(s, lim, frame, strlen(frame), &rq, &err);
	if (rc)
		fail_msg("refused %s: %s (%s)", frame, err.code, err.reason);
	assert_non_null(rq.env);
	return rq;
}

static inline omr_ws_request_t ok(const omr_ws_session_t *s, const char *frame)
{
	return ok_lim(s, &limits, frame);
}

/* Parses a frame that must be refused under lim with code / close; returns the error. */
static inline omr_ws_error_t refused_lim(const omr_ws_session_t *s, const omr_ws_limits_t *lim,
                                         const char *frame, size_t len, const char *code,
                                         int close_code)
{
	omr_ws_request_t rq;
	omr_ws_error_t err;
	int rc = omr_ws_parse(s, lim, frame, len, &rq, &err);
	if (rc != -EINVAL)
		fail_msg("accepted (rc %d): %.*s", rc, (int)len, frame);
	assert_null(rq.env);
	if (strcmp(err.code, code) != 0)
		fail_msg("%.*s: code %s (%s), want %s", (int)len, frame, err.code, err.reason,
		         code);
	assert_int_equal(err.close_code, close_code);
	return err;
}

static inline omr_ws_error_t refused_len(const omr_ws_session_t *s, const char *frame, size_t len,
                                         const char *code, int close_code)
{
	return refused_lim(s, &limits, frame, len, code, close_code);
}

static inline omr_ws_error_t refused(const omr_ws_session_t *s, const char *frame, const char *code,
                                     int close_code)
{
	return refused_len(s, frame, strlen(frame), code, close_code);
}

static inline cJSON *parse_out(char *json)
{
	assert_non_null(json);
	cJSON *obj = cJSON_Parse(json);
	assert_non_null(obj);
	free(json);
	return obj;
}

static inline const char *jstr(const cJSON *obj, const char *key)
{
	const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
	return cJSON_IsString(it) ? it->valuestring : NULL;
}

static inline double jnum(const cJSON *obj, const char *key)
{
	const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
	assert_true(cJSON_IsNumber(it));
	return it->valuedouble;
}

static inline omr_envelope_t *ack_env(int status)
{
	omr_envelope_t *a = omr_envelope_new(OMR_ENV_ACK);
	assert_non_null(a);
	a->status = status;
	return a;
}

static inline omr_envelope_t *deliver(const char *event)
{
	omr_envelope_t *d = omr_envelope_new(OMR_ENV_DELIVER);
	assert_non_null(d);
	omr_envelope_set(&d->event, event);
	omr_envelope_set(&d->seq, "1700000000456-0");
	omr_envelope_set(&d->conv, "c7");
	omr_envelope_set(&d->tenant, "t1");
	d->ts_ms = 1700000000456ull;
	return d;
}

#endif
