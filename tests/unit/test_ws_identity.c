/* test_ws_identity.c - identity verification of a customer's hello
 * (adapters/websocket/ws_identity.c and its check in ws_proto.c) against docs/PROTOCOL.md:
 * the signature is the lowercase hex HMAC-SHA256 of TENANT "|" CUSTOMER_ID under
 * chat.identity_secret, followed when the hello has attributes by "\n" and NAME "=" VALUE
 * "\n" for each in bytewise name order; with a secret a customer_id needs it and attributes
 * need a signed customer_id, without one it is ignored. The
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
/* ... of b"acme|cust-42\ntier=gold\n", b"acme|cust-42\nplan=pro\ntier=gold\n",
 * b"acme|cust-42\ntier=silver\n", b"acme|cust-42\ntier=\n" and
 * b"acme|cust-42\nZ=1\ncity=Bogot\xc3\xa1\n" (uppercase sorts first, values are UTF-8) */
#define SIG_GOLD "690faef4dc919d53ca7dd4130496cf7fa082207166ec9c4c44839ab66f0da99d"
#define SIG_GOLD_PRO "458276613a5262345262d5e5b2cd947c01704a99a1012f6fceed0c194ccad117"
#define SIG_SILVER "aa830e5fc4b05b50c5d8beabaf0b99059df4ccc368866993658b1010ec28a20a"
#define SIG_EMPTY_TIER "84b0424450d00e4cc2cb12056a08dfb05f68659d1578372943a712b273e2ddbe"
#define SIG_CITY "df1574823243cb1924dfa42a939b62a93d0a2c8ffd610cb45eb96e18ef452617"

/* A hello of cust-42 (tenant acme, the default) with these attributes and this signature. */
#define HELLO_ATTRS(attrs, sig)                                                                    \
	"{\"type\":\"hello\",\"customer_id\":\"cust-42\",\"attributes\":" attrs                    \
	",\"customer_signature\":\"" sig "\"}"

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
	assert_int_equal(omr_ws_identity_sign(SECRET, "acme", "cust-42", NULL, 0, out), 0);
	assert_string_equal(out, SIG_ACME_42);
	assert_int_equal(omr_ws_identity_sign(SECRET, "other", "cust-42", NULL, 0, out), 0);
	assert_string_equal(out, SIG_OTHER_42);
	assert_int_equal(omr_ws_identity_sign(SECRET, "acme", "cust-43", NULL, 0, out), 0);
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
		assert_int_equal(
		        omr_ws_identity_sign(bad[i][0], bad[i][1], bad[i][2], NULL, 0, out),
		        -EINVAL);
		assert_string_equal(out, "");
	}
	/* The longest ids still sign. */
	tenant[OMR_WS_TENANT_MAX] = '\0';
	customer[OMR_WS_ID_MAX] = '\0';
	assert_int_equal(omr_ws_identity_sign(SECRET, tenant, customer, NULL, 0, out), 0);
	assert_int_equal(strlen(out), OMR_WS_IDENTITY_SIG_LEN);
}

static void test_is_valid(void **state)
{
	assert_true(omr_ws_identity_is_valid(SECRET, "acme", "cust-42", NULL, 0, SIG_ACME_42));
	/* Another tenant's, another customer's, another key's signature. */
	assert_false(omr_ws_identity_is_valid(SECRET, "other", "cust-42", NULL, 0, SIG_ACME_42));
	assert_false(omr_ws_identity_is_valid(SECRET, "acme", "cust-43", NULL, 0, SIG_ACME_42));
	assert_false(omr_ws_identity_is_valid(SECRET "x", "acme", "cust-42", NULL, 0, SIG_ACME_42));
	/* The pipe separates: "acm" | "e|cust-42" is not an id, and "acme|cust-42" is not
	 * "acmec" | "ust-42". */
	assert_false(omr_ws_identity_is_valid(SECRET, "acmec", "ust-42", NULL, 0, SIG_ACME_42));
	/* No secret, no signature, wrong lengths, uppercase, every single digit changed. */
	assert_false(omr_ws_identity_is_valid("", "acme", "cust-42", NULL, 0, SIG_ACME_42));
	assert_false(omr_ws_identity_is_valid(SECRET, "acme", "cust-42", NULL, 0, NULL));
	assert_false(omr_ws_identity_is_valid(SECRET, "acme", "cust-42", NULL, 0, ""));
	char sig[OMR_WS_IDENTITY_SIG_LEN + 2];
	snprintf(sig, sizeof(sig), "%.63s", SIG_ACME_42);
	assert_false(omr_ws_identity_is_valid(SECRET, "acme", "cust-42", NULL, 0, sig));
	snprintf(sig, sizeof(sig), "%s0", SIG_ACME_42);
	assert_false(omr_ws_identity_is_valid(SECRET, "acme", "cust-42", NULL, 0, sig));
	snprintf(sig, sizeof(sig), "%s",
	         "BDCADE6A5ABD1CC9EAE13AC2E6FFDDE3247F821FC25086CB974BF637AECE9B57");
	assert_false(omr_ws_identity_is_valid(SECRET, "acme", "cust-42", NULL, 0, sig));
	for (size_t i = 0; i < OMR_WS_IDENTITY_SIG_LEN; i++) {
		snprintf(sig, sizeof(sig), "%s", SIG_ACME_42);
		sig[i] = sig[i] == '0' ? '1' : '0';
		assert_false(omr_ws_identity_is_valid(SECRET, "acme", "cust-42", NULL, 0, sig));
	}
}

/* ---- attributes in the signature ---- */

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

static void test_sign_attributes(void **state)
{
	char out[OMR_WS_IDENTITY_SIG_LEN + 1];
	omr_env_attr_t gold[] = {{"tier", "gold"}};
	omr_env_attr_t gold_pro[] = {{"tier", "gold"}, {"plan", "pro"}};
	omr_env_attr_t pro_gold[] = {{"plan", "pro"}, {"tier", "gold"}};
	omr_env_attr_t empty[] = {{"tier", ""}};
	omr_env_attr_t city[] = {{"city", "Bogot\xc3\xa1"}, {"Z", "1"}};
	struct {
		const omr_env_attr_t *attrs;
		size_t n;
		const char *want;
	} good[] = {
	        {gold, N_OF(gold), SIG_GOLD},
	        {gold_pro, N_OF(gold_pro), SIG_GOLD_PRO},
	        {pro_gold, N_OF(pro_gold), SIG_GOLD_PRO}, /* the caller's order is irrelevant */
	        {empty, N_OF(empty), SIG_EMPTY_TIER},
	        {city, N_OF(city), SIG_CITY},
	        {gold, 0, SIG_ACME_42}, /* none: TENANT|CUSTOMER_ID as before */
	};
	for (size_t i = 0; i < N_OF(good); i++) {
		assert_int_equal(omr_ws_identity_sign(SECRET, "acme", "cust-42", good[i].attrs,
		                                      good[i].n, out),
		                 0);
		assert_string_equal(out, good[i].want);
	}

	/* What cannot be signed unambiguously, or is more than a hello carries. */
	char long_value[OMR_WS_ATTR_VALUE_MAX + 2], long_name[OMR_WS_ATTR_KEY_MAX + 2];
	memset(long_value, 'v', sizeof(long_value) - 1);
	long_value[sizeof(long_value) - 1] = '\0';
	memset(long_name, 'n', sizeof(long_name) - 1);
	long_name[sizeof(long_name) - 1] = '\0';
	omr_env_attr_t bad[][2] = {
	        {{"tier", "gold"}, {"tier", "silver"}}, /* a name twice */
	        {{"tier", "gold"}, {"tier", "gold"}},
	        {{"ti=er", "gold"}, {"a", "b"}}, /* not an id */
	        {{"tier\n", "gold"}, {"a", "b"}},
	        {{"", "gold"}, {"a", "b"}},
	        {{NULL, "gold"}, {"a", "b"}},
	        {{"tier", NULL}, {"a", "b"}},
	        {{"tier", "gold\nplan=pro"}, {"a", "b"}}, /* a value with a line break */
	        {{"tier", long_value}, {"a", "b"}},
	        {{long_name, "gold"}, {"a", "b"}},
	};
	for (size_t i = 0; i < N_OF(bad); i++) {
		memcpy(out, "x", 2);
		assert_int_equal(omr_ws_identity_sign(SECRET, "acme", "cust-42", bad[i], 2, out),
		                 -EINVAL);
		assert_string_equal(out, "");
	}
	assert_int_equal(omr_ws_identity_sign(SECRET, "acme", "cust-42", NULL, 1, out), -EINVAL);

	/* The most a hello carries still signs: 16 names of 64 bytes, values of 255, the
	 * longest ids; a 17th is refused. */
	char tenant[OMR_WS_TENANT_MAX + 1], customer[OMR_WS_ID_MAX + 1];
	char names[OMR_WS_ATTRS_MAX + 1][OMR_WS_ATTR_KEY_MAX + 1];
	omr_env_attr_t most[OMR_WS_ATTRS_MAX + 1];
	memset(tenant, 't', sizeof(tenant) - 1);
	tenant[sizeof(tenant) - 1] = '\0';
	memset(customer, 'c', sizeof(customer) - 1);
	customer[sizeof(customer) - 1] = '\0';
	long_value[OMR_WS_ATTR_VALUE_MAX] = '\0';
	for (size_t i = 0; i < N_OF(most); i++) {
		snprintf(names[i], sizeof(names[i]), "%02zu%.*s", i, (int)OMR_WS_ATTR_KEY_MAX - 2,
		         long_name);
		assert_int_equal(strlen(names[i]), OMR_WS_ATTR_KEY_MAX);
		most[i] = (omr_env_attr_t){names[i], long_value};
	}
	assert_int_equal(
	        omr_ws_identity_sign(SECRET, tenant, customer, most, OMR_WS_ATTRS_MAX, out), 0);
	assert_int_equal(strlen(out), OMR_WS_IDENTITY_SIG_LEN);
	assert_int_equal(
	        omr_ws_identity_sign(SECRET, tenant, customer, most, OMR_WS_ATTRS_MAX + 1, out),
	        -EINVAL);
}

static void test_is_valid_attributes(void **state)
{
	omr_env_attr_t gold_pro[] = {{"tier", "gold"}, {"plan", "pro"}};
	omr_env_attr_t silver_pro[] = {{"tier", "silver"}, {"plan", "pro"}};
	omr_env_attr_t gold_pro_vip[] = {{"tier", "gold"}, {"plan", "pro"}, {"vip", "yes"}};
	omr_env_attr_t plan_gold[] = {{"tier", "pro"}, {"plan", "gold"}}; /* values swapped */
	assert_true(omr_ws_identity_is_valid(SECRET, "acme", "cust-42", gold_pro, 2, SIG_GOLD_PRO));
	/* One attribute changed, added or removed; all removed; a signature without them. */
	assert_false(
	        omr_ws_identity_is_valid(SECRET, "acme", "cust-42", silver_pro, 2, SIG_GOLD_PRO));
	assert_false(
	        omr_ws_identity_is_valid(SECRET, "acme", "cust-42", gold_pro_vip, 3, SIG_GOLD_PRO));
	assert_false(
	        omr_ws_identity_is_valid(SECRET, "acme", "cust-42", gold_pro, 1, SIG_GOLD_PRO));
	assert_false(
	        omr_ws_identity_is_valid(SECRET, "acme", "cust-42", gold_pro, 0, SIG_GOLD_PRO));
	assert_false(
	        omr_ws_identity_is_valid(SECRET, "acme", "cust-42", plan_gold, 2, SIG_GOLD_PRO));
	assert_false(omr_ws_identity_is_valid(SECRET, "acme", "cust-42", gold_pro, 1, SIG_ACME_42));
	/* Another customer's or tenant's attributes. */
	assert_false(
	        omr_ws_identity_is_valid(SECRET, "acme", "cust-43", gold_pro, 2, SIG_GOLD_PRO));
	assert_false(
	        omr_ws_identity_is_valid(SECRET, "other", "cust-42", gold_pro, 2, SIG_GOLD_PRO));
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

/* Accepted under verification; the envelope carries exactly the frame's attributes. */
static void accepted_attrs(const omr_ws_limits_t *lim, const char *frame, const char *tier,
                           const char *plan)
{
	omr_ws_session_t s = customer(false);
	omr_ws_request_t rq = ok_lim(&s, lim, frame);
	assert_int_equal(rq.env->n_attrs, (tier != NULL) + (plan != NULL));
	if (tier)
		assert_string_equal(omr_envelope_attr(rq.env, "tier"), tier);
	if (plan)
		assert_string_equal(omr_envelope_attr(rq.env, "plan"), plan);
	omr_ws_request_cleanup(&rq);
}

static void test_hello_signed_attributes(void **state)
{
	const omr_ws_limits_t verifying = with_secret(SECRET);
	accepted_attrs(&verifying, HELLO_ATTRS("{\"tier\":\"gold\"}", SIG_GOLD), "gold", NULL);
	/* The order of the members in the JSON does not matter, nor where attributes is. */
	accepted_attrs(&verifying,
	               HELLO_ATTRS("{\"tier\":\"gold\",\"plan\":\"pro\"}", SIG_GOLD_PRO), "gold",
	               "pro");
	accepted_attrs(&verifying,
	               HELLO_ATTRS("{\"plan\":\"pro\",\"tier\":\"gold\"}", SIG_GOLD_PRO), "gold",
	               "pro");
	accepted_attrs(
	        &verifying,
	        "{\"attributes\":{\"plan\":\"pro\",\"tier\":\"gold\"},\"customer_signature\":"
	        "\"" SIG_GOLD_PRO "\",\"type\":\"hello\",\"customer_id\":\"cust-42\"}",
	        "gold", "pro");
	accepted_attrs(&verifying, HELLO_ATTRS("{\"tier\":\"\"}", SIG_EMPTY_TIER), "", NULL);
	/* The decoded UTF-8 is signed, however the JSON spells it. */
	static const char *const city[] = {
	        HELLO_ATTRS("{\"city\":\"Bogot\\u00e1\",\"Z\":\"1\"}", SIG_CITY),
	        HELLO_ATTRS("{\"Z\":\"1\",\"city\":\"Bogot\xc3\xa1\"}", SIG_CITY),
	};
	for (size_t i = 0; i < N_OF(city); i++) {
		omr_ws_session_t s = customer(false);
		omr_ws_request_t rq = ok_lim(&s, &verifying, city[i]);
		assert_string_equal(omr_envelope_attr(rq.env, "city"), "Bogot\xc3\xa1");
		omr_ws_request_cleanup(&rq);
	}
	/* An empty object is no attributes: the signature of TENANT|CUSTOMER_ID, or anonymous. */
	accepted_attrs(&verifying, HELLO_ATTRS("{}", SIG_ACME_42), NULL, NULL);
	accepted(&verifying, "{\"type\":\"hello\",\"attributes\":{}}", "acme", NULL);
}

static void test_hello_attributes_not_signed(void **state)
{
	const omr_ws_limits_t verifying = with_secret(SECRET);
	static const char *const frames[] = {
	        /* forged: the signature of the id alone, the attributes added */
	        HELLO_ATTRS("{\"tier\":\"gold\"}", SIG_ACME_42),
	        /* one changed, added, removed */
	        HELLO_ATTRS("{\"tier\":\"gold\",\"plan\":\"max\"}", SIG_GOLD_PRO),
	        HELLO_ATTRS("{\"tier\":\"platinum\"}", SIG_GOLD),
	        HELLO_ATTRS("{\"tier\":\"gold\",\"plan\":\"pro\",\"vip\":\"1\"}", SIG_GOLD_PRO),
	        HELLO_ATTRS("{\"tier\":\"gold\"}", SIG_GOLD_PRO),
	        HELLO_ATTRS("{\"plan\":\"pro\"}", SIG_GOLD_PRO),
	        HELLO_ATTRS("{}", SIG_GOLD),
	        /* a name changed (same value), the case of a value */
	        HELLO_ATTRS("{\"Tier\":\"gold\"}", SIG_GOLD),
	        HELLO_ATTRS("{\"tier\":\"Gold\"}", SIG_GOLD),
	};
	for (size_t i = 0; i < N_OF(frames); i++) {
		omr_ws_error_t err =
		        refused_hello(&verifying, frames[i], "unauthorized", OMR_WS_CLOSE_POLICY);
		assert_non_null(strstr(err.reason, "customer_signature"));
	}
	/* Another customer's signature over the same attributes. */
	refused_hello(&verifying,
	              "{\"type\":\"hello\",\"customer_id\":\"cust-43\",\"attributes\":{\"tier\":"
	              "\"gold\"},\"customer_signature\":\"" SIG_GOLD "\"}",
	              "unauthorized", OMR_WS_CLOSE_POLICY);
	/* Attributes without a customer_id: nobody signed them. */
	omr_ws_error_t err = refused_hello(
	        &verifying,
	        "{\"type\":\"hello\",\"id\":\"h-2\",\"attributes\":{\"tier\":\"gold\"}}",
	        "unauthorized", OMR_WS_CLOSE_POLICY);
	assert_non_null(strstr(err.reason, "attributes"));
	assert_string_equal(err.id, "h-2");
	refused_hello(&verifying, "{\"type\":\"hello\",\"attributes\":{\"tier\":\"\"}}",
	              "unauthorized", OMR_WS_CLOSE_POLICY);
	/* Malformed attributes stay a bad request, checked before the signature. */
	refused_hello(&verifying, HELLO_ATTRS("{\"tier\":1}", SIG_GOLD), "bad-request", 0);
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
		/* Attributes are the page's claims: taken unsigned, with or without an id. */
		accepted_attrs(both[i], "{\"type\":\"hello\",\"attributes\":{\"tier\":\"gold\"}}",
		               "gold", NULL);
		accepted_attrs(both[i], HELLO_ATTRS("{\"tier\":\"gold\"}", SIG_ACME_42), "gold",
		               NULL);
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
	        cmocka_unit_test(test_sign_attributes),
	        cmocka_unit_test(test_is_valid_attributes),
	        cmocka_unit_test(test_hello_signed),
	        cmocka_unit_test(test_hello_unsigned_or_wrong),
	        cmocka_unit_test(test_hello_malformed_signature),
	        cmocka_unit_test(test_hello_signed_attributes),
	        cmocka_unit_test(test_hello_attributes_not_signed),
	        cmocka_unit_test(test_no_secret_ignores_signature),
	        cmocka_unit_test(test_resume_needs_no_signature),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
