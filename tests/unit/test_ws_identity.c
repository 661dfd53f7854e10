/* test_ws_identity.c - identity verification of a customer's hello
 * (adapters/websocket/ws_identity.c and its check in ws_proto.c) against docs/PROTOCOL.md:
 * the signature is the lowercase hex HMAC-SHA256 of TENANT "|" CUSTOMER_ID under
 * chat.identity_secret; with a secret a customer_id needs it, without one it is ignored. The
 * expected signatures were computed with Python's hmac module (and the RFC 4231 vector checks
 * the HMAC itself), so a mistake in how the signed bytes are built cannot cancel out. */
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

#include "omnirouter/util.h"
#include "websocket/ws_identity.h"
#include "websocket/ws_proto.h"
#include "ws_test.h"

#define SECRET "0123456789abcdef-sekrit"
/* hmac.new(SECRET, b"acme|cust-42", sha256).hexdigest(), and so on */
#define SIG_ACME_42 "bdcade6a5abd1cc9eae13ac2e6ffdde3247f821fc25086cb974bf637aece9b57"
#define SIG_OTHER_42 "f34bbd5f5a000d3eea5914c0c19c9b0db0e507229c55fe58a6a2036a2ff2fd2b"
#define SIG_ACME_43 "cec3ba077a3b1e349aa1fc9a67bcba5483c208fb8043bc426d49c5f0daf51e4e"

/* The limits of ws_test.h (default tenant "acme") with identity_secret set to secret. */
static omr_ws_limits_t with_secret(const char *secret)
{
	omr_ws_limits_t lim = limits;
	lim.identity_secret = secret;
	return lim;
}

/* ---- the HMAC and the signature ---- */

static void test_hmac_sha256_known_answer(void **state)
{
	char out[65];
	/* RFC 4231, test case 2 */
	const char *msg = "what do ya want for nothing?";
	assert_int_equal(omr_hmac_sha256_hex("Jefe", 4, msg, strlen(msg), out), 0);
	assert_string_equal(out,
	                    "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
	assert_int_equal(omr_hmac_sha256_hex("", 0, msg, strlen(msg), out), -EINVAL);
	assert_string_equal(out, "");

	assert_true(omr_equal_ct("abc", "abc", 3));
	assert_false(omr_equal_ct("abc", "abd", 3));
	assert_true(omr_equal_ct("abc", "abd", 2));
}

static void test_sign(void **state)
{
	char out[OMR_WS_IDENTITY_SIG_LEN + 1];
	assert_int_equal(omr_ws_identity_sign(SECRET, "acme", "cust-42", out), 0);
	assert_string_equal(out, SIG_ACME_42);
	assert_int_equal(omr_ws_identity_sign(SECRET, "other", "cust-42", out), 0);
	assert_string_equal(out, SIG_OTHER_42);
	assert_int_equal(omr_ws_identity_sign(SECRET, "acme", "cust-43", out), 0);
	assert_string_equal(out, SIG_ACME_43);

	/* Nothing to sign with, or nothing to sign: no signature at all. */
	char tenant[OMR_WS_TENANT_MAX + 2], customer[OMR_WS_ID_MAX + 2];
	memset(tenant, 't', sizeof(tenant) - 1);
	tenant[sizeof(tenant) - 1] = '\0';
	memset(customer, 'c', sizeof(customer) - 1);
	customer[sizeof(customer) - 1] = '\0';
	const char *bad[][3] = {
	        {"", "acme", "cust-42"}, {NULL, "acme", "cust-42"},  {SECRET, "", "cust-42"},
	        {SECRET, "acme", ""},    {SECRET, NULL, "cust-42"},  {SECRET, "acme", NULL},
	        {SECRET, tenant, "c"},   {SECRET, "acme", customer},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memcpy(out, "x", 2);
		assert_int_equal(omr_ws_identity_sign(bad[i][0], bad[i][1], bad[i][2], out),
		                 -EINVAL);
		assert_string_equal(out, "");
	}
	/* The longest ids still sign. */
	tenant[OMR_WS_TENANT_MAX] = '\0';
	customer[OMR_WS_ID_MAX] = '\0';
	assert_int_equal(omr_ws_identity_sign(SECRET, tenant, customer, out), 0);
	assert_int_equal(strlen(out), OMR_WS_IDENTITY_SIG_LEN);
}

static void test_is_valid(void **state)
{
	assert_true(omr_ws_identity_is_valid(SECRET, "acme", "cust-42", SIG_ACME_42));
	/* Another tenant's, another customer's, another key's signature. */
	assert_false(omr_ws_identity_is_valid(SECRET, "other", "cust-42", SIG_ACME_42));
	assert_false(omr_ws_identity_is_valid(SECRET, "acme", "cust-43", SIG_ACME_42));
	assert_false(omr_ws_identity_is_valid(SECRET "x", "acme", "cust-42", SIG_ACME_42));
	/* The pipe separates: "acm" | "e|cust-42" is not an id, and "acme|cust-42" is not
	 * "acmec" | "ust-42". */
	assert_false(omr_ws_identity_is_valid(SECRET, "acmec", "ust-42", SIG_ACME_42));
	/* No secret, no signature, wrong lengths, uppercase, every single digit changed. */
	assert_false(omr_ws_identity_is_valid("", "acme", "cust-42", SIG_ACME_42));
	assert_false(omr_ws_identity_is_valid(SECRET, "acme", "cust-42", NULL));
	assert_false(omr_ws_identity_is_valid(SECRET, "acme", "cust-42", ""));
	char sig[OMR_WS_IDENTITY_SIG_LEN + 2];
	snprintf(sig, sizeof(sig), "%.63s", SIG_ACME_42);
	assert_false(omr_ws_identity_is_valid(SECRET, "acme", "cust-42", sig));
	snprintf(sig, sizeof(sig), "%s0", SIG_ACME_42);
	assert_false(omr_ws_identity_is_valid(SECRET, "acme", "cust-42", sig));
	snprintf(sig, sizeof(sig), "%s",
	         "BDCADE6A5ABD1CC9EAE13AC2E6FFDDE3247F821FC25086CB974BF637AECE9B57");
	assert_false(omr_ws_identity_is_valid(SECRET, "acme", "cust-42", sig));
	for (size_t i = 0; i < OMR_WS_IDENTITY_SIG_LEN; i++) {
		snprintf(sig, sizeof(sig), "%s", SIG_ACME_42);
		sig[i] = sig[i] == '0' ? '1' : '0';
		assert_false(omr_ws_identity_is_valid(SECRET, "acme", "cust-42", sig));
	}
}

/* ---- hello with a secret ---- */

/* Parses a hello that must be accepted under lim; checks its tenant and customer. */
static void accepted(const omr_ws_limits_t *lim, const char *frame, const char *tenant,
                     const char *want_customer)
{
	omr_ws_session_t s = customer(false);
	omr_ws_request_t rq = ok_lim(&s, lim, frame);
	assert_int_equal(rq.kind, OMR_WS_HELLO);
	assert_string_equal(rq.tenant, tenant);
	assert_string_equal(rq.env->tenant, tenant);
	if (want_customer)
		assert_string_equal(rq.env->customer, want_customer);
	else
		assert_null(rq.env->customer);
	omr_ws_request_cleanup(&rq);
}

static omr_ws_error_t refused_hello(const omr_ws_limits_t *lim, const char *frame, const char *code,
                                    int close_code)
{
	omr_ws_session_t s = customer(false);
	return refused_lim(&s, lim, frame, strlen(frame), code, close_code);
}

static void test_hello_signed(void **state)
{
	const omr_ws_limits_t verifying = with_secret(SECRET);
	/* The default tenant ("acme" here) is the one signed when hello names none. */
	accepted(&verifying,
	         "{\"type\":\"hello\",\"customer_id\":\"cust-42\",\"customer_signature\":"
	         "\"" SIG_ACME_42 "\"}",
	         "acme", "cust-42");
	accepted(&verifying,
	         "{\"type\":\"hello\",\"tenant\":\"acme\",\"customer_id\":\"cust-42\","
	         "\"customer_signature\":\"" SIG_ACME_42 "\"}",
	         "acme", "cust-42");
	accepted(&verifying,
	         "{\"type\":\"hello\",\"tenant\":\"other\",\"customer_id\":\"cust-42\","
	         "\"customer_signature\":\"" SIG_OTHER_42 "\"}",
	         "other", "cust-42");
	/* Anonymous: no customer_id, nothing to verify. */
	accepted(&verifying, "{\"type\":\"hello\",\"language\":\"es\"}", "acme", NULL);
}

static void test_hello_unsigned_or_wrong(void **state)
{
	const omr_ws_limits_t verifying = with_secret(SECRET);
	static const char *const frames[] = {
	        /* no signature */
	        "{\"type\":\"hello\",\"customer_id\":\"cust-42\"}",
	        /* another customer's */
	        "{\"type\":\"hello\",\"customer_id\":\"cust-43\",\"customer_signature\":"
	        "\"" SIG_ACME_42 "\"}",
	        /* another tenant's: signed for other, sent to acme (the default) and back */
	        "{\"type\":\"hello\",\"customer_id\":\"cust-42\",\"customer_signature\":"
	        "\"" SIG_OTHER_42 "\"}",
	        "{\"type\":\"hello\",\"tenant\":\"other\",\"customer_id\":\"cust-42\","
	        "\"customer_signature\":\"" SIG_ACME_42 "\"}",
	        /* not the lowercase hex digest */
	        "{\"type\":\"hello\",\"customer_id\":\"cust-42\",\"customer_signature\":\"\"}",
	        "{\"type\":\"hello\",\"customer_id\":\"cust-42\",\"customer_signature\":"
	        "\"BDCADE6A5ABD1CC9EAE13AC2E6FFDDE3247F821FC25086CB974BF637AECE9B57\"}",
	        "{\"type\":\"hello\",\"customer_id\":\"cust-42\",\"customer_signature\":"
	        "\"" SIG_ACME_42 "00\"}",
	};
	for (size_t i = 0; i < sizeof(frames) / sizeof(frames[0]); i++) {
		omr_ws_error_t err =
		        refused_hello(&verifying, frames[i], "unauthorized", OMR_WS_CLOSE_POLICY);
		assert_non_null(strstr(err.reason, "customer_signature"));
	}
	/* The error echoes the frame's id, as every error does. */
	omr_ws_error_t err = refused_hello(
	        &verifying, "{\"type\":\"hello\",\"id\":\"h-1\",\"customer_id\":\"cust-42\"}",
	        "unauthorized", OMR_WS_CLOSE_POLICY);
	assert_string_equal(err.id, "h-1");
}

static void test_hello_malformed_signature(void **state)
{
	const omr_ws_limits_t verifying = with_secret(SECRET);
	/* A signature without an id to sign, or not a string: a bad request, the
	 * connection stays open. */
	refused_hello(&verifying, "{\"type\":\"hello\",\"customer_signature\":\"" SIG_ACME_42 "\"}",
	              "bad-request", 0);
	refused_hello(&verifying,
	              "{\"type\":\"hello\",\"customer_id\":\"cust-42\",\"customer_signature\":42}",
	              "bad-request", 0);
	refused_hello(
	        &verifying,
	        "{\"type\":\"hello\",\"customer_id\":\"cust-42\",\"customer_signature\":null}",
	        "bad-request", 0);
	/* The customer_id itself is checked first, as without a secret. */
	refused_hello(&verifying,
	              "{\"type\":\"hello\",\"customer_id\":\"cust "
	              "42\",\"customer_signature\":\"" SIG_ACME_42 "\"}",
	              "bad-request", 0);
}

/* ---- without a secret, and resume ---- */

static void test_no_secret_ignores_signature(void **state)
{
	const omr_ws_limits_t off = with_secret("");
	const omr_ws_limits_t *both[] = {&limits, &off}; /* NULL and "" */
	for (size_t i = 0; i < 2; i++) {
		accepted(both[i], "{\"type\":\"hello\",\"customer_id\":\"cust-42\"}", "acme",
		         "cust-42");
		accepted(both[i],
		         "{\"type\":\"hello\",\"customer_id\":\"cust-42\",\"customer_signature\":"
		         "\"nonsense\"}",
		         "acme", "cust-42");
		accepted(both[i], "{\"type\":\"hello\",\"customer_signature\":42}", "acme", NULL);
	}
}

static void test_resume_needs_no_signature(void **state)
{
	const omr_ws_limits_t verifying = with_secret(SECRET);
	omr_ws_session_t s = customer(false);
	omr_ws_request_t rq = ok_lim(&s, &verifying,
	                             "{\"type\":\"resume\",\"conversation_id\":\"c7\","
	                             "\"resume_token\":\"9a1e\"}");
	assert_int_equal(rq.kind, OMR_WS_RESUME);
	omr_ws_request_cleanup(&rq);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_hmac_sha256_known_answer),
	        cmocka_unit_test(test_sign),
	        cmocka_unit_test(test_is_valid),
	        cmocka_unit_test(test_hello_signed),
	        cmocka_unit_test(test_hello_unsigned_or_wrong),
	        cmocka_unit_test(test_hello_malformed_signature),
	        cmocka_unit_test(test_no_secret_ignores_signature),
	        cmocka_unit_test(test_resume_needs_no_signature),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
