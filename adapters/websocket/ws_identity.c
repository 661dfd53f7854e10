/* ws_identity.c - the signed bytes and the HMAC of identity verification (see
 * ws_identity.h). The HMAC itself and the constant-time compare are libcrypto's, behind
 * common/util.c. Owns nothing; any thread. */
#include "websocket/ws_identity.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "omnirouter/util.h"
#include "websocket/ws_proto.h"

/* The longest signed message, with its NUL. */
#define SIGNED_MAX                                                                                 \
	(OMR_WS_TENANT_MAX + 1 + OMR_WS_ID_MAX + 1 +                                               \
	 OMR_WS_ATTRS_MAX * (OMR_WS_ATTR_KEY_MAX + 1 + OMR_WS_ATTR_VALUE_MAX + 1) + 1)

static bool attr_is_signable(const omr_env_attr_t *a)
{
	return omr_id_is_valid(a->key, OMR_WS_ATTR_KEY_MAX) && a->value &&
	       strlen(a->value) <= OMR_WS_ATTR_VALUE_MAX && !strchr(a->value, '\n');
}

/* Fills order with the indexes of attrs sorted bytewise by name (strcmp compares as
 * unsigned char). -EINVAL when an attribute cannot be signed or a name appears twice (its
 * values' order would then be the caller's). */
static int sort_attrs(const omr_env_attr_t *attrs, size_t n, size_t order[OMR_WS_ATTRS_MAX])
{
	for (size_t i = 0; i < n; i++) {
		if (!attr_is_signable(&attrs[i]))
			return -EINVAL;
		size_t j = i;
		for (; j > 0; j--) {
			int cmp = strcmp(attrs[order[j - 1]].key, attrs[i].key);
			if (cmp == 0)
				return -EINVAL;
			if (cmp < 0)
				break;
			order[j] = order[j - 1];
		}
		order[j] = i;
	}
	return 0;
}

/* Writes the signed bytes (ws_identity.h) into msg; returns their length or -EINVAL. */
static int signed_message(const char *tenant, const char *customer, const omr_env_attr_t *attrs,
                          size_t n_attrs, char msg[SIGNED_MAX])
{
	size_t order[OMR_WS_ATTRS_MAX];
	if (!tenant || !tenant[0] || !customer || !customer[0] ||
	    strlen(tenant) > OMR_WS_TENANT_MAX || strlen(customer) > OMR_WS_ID_MAX ||
	    n_attrs > OMR_WS_ATTRS_MAX || (n_attrs && !attrs) || sort_attrs(attrs, n_attrs, order))
		return -EINVAL;
	int len = snprintf(msg, SIGNED_MAX, "%s|%s%s", tenant, customer, n_attrs ? "\n" : "");
	for (size_t i = 0; i < n_attrs; i++)
		len += snprintf(msg + len, SIGNED_MAX - (size_t)len, "%s=%s\n", attrs[order[i]].key,
		                attrs[order[i]].value);
	return len;
}

int omr_ws_identity_sign(const char *secret, const char *tenant, const char *customer,
                         const omr_env_attr_t *attrs, size_t n_attrs,
                         char out[OMR_WS_IDENTITY_SIG_LEN + 1])
{
	char msg[SIGNED_MAX];
	out[0] = '\0';
	int len = signed_message(tenant, customer, attrs, n_attrs, msg);
	if (!secret || !secret[0] || len < 0)
		return -EINVAL;
	return omr_hmac_sha256_hex(secret, strlen(secret), msg, (size_t)len, out);
}

bool omr_ws_identity_is_valid(const char *secret, const char *tenant, const char *customer,
                              const omr_env_attr_t *attrs, size_t n_attrs, const char *signature)
{
	char want[OMR_WS_IDENTITY_SIG_LEN + 1];
	/* The length of a client's string says nothing about the secret. */
	if (!signature || strlen(signature) != OMR_WS_IDENTITY_SIG_LEN ||
	    omr_ws_identity_sign(secret, tenant, customer, attrs, n_attrs, want) != 0)
		return false;
	return omr_equal_ct(want, signature, OMR_WS_IDENTITY_SIG_LEN);
}
