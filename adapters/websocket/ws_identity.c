/* ws_identity.c - the HMAC of identity verification (see ws_identity.h). The HMAC itself
 * and the constant-time compare are libcrypto's, behind common/util.c. Owns nothing; any
 * thread. */
#include "websocket/ws_identity.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "omnirouter/util.h"
#include "websocket/ws_proto.h"

int omr_ws_identity_sign(const char *secret, const char *tenant, const char *customer,
                         char out[OMR_WS_IDENTITY_SIG_LEN + 1])
{
	char msg[OMR_WS_TENANT_MAX + 1 + OMR_WS_ID_MAX + 1];
	out[0] = '\0';
	if (!secret || !secret[0] || !tenant || !tenant[0] || !customer || !customer[0] ||
	    strlen(tenant) > OMR_WS_TENANT_MAX || strlen(customer) > OMR_WS_ID_MAX)
		return -EINVAL;
	int n = snprintf(msg, sizeof(msg), "%s|%s", tenant, customer);
	return omr_hmac_sha256_hex(secret, strlen(secret), msg, (size_t)n, out);
}

bool omr_ws_identity_is_valid(const char *secret, const char *tenant, const char *customer,
                              const char *signature)
{
	char want[OMR_WS_IDENTITY_SIG_LEN + 1];
	/* The length of a client's string says nothing about the secret. */
	if (!signature || strlen(signature) != OMR_WS_IDENTITY_SIG_LEN ||
	    omr_ws_identity_sign(secret, tenant, customer, want) != 0)
		return false;
	return omr_equal_ct(want, signature, OMR_WS_IDENTITY_SIG_LEN);
}
