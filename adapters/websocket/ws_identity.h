/* ws_identity.h - identity verification of a customer's hello (docs/PROTOCOL.md, "Identity
 * verification"): a site that knows who its customer is signs TENANT "|" CUSTOMER_ID with
 * HMAC-SHA256 under chat.identity_secret, and the chat page sends the lowercase hex digest
 * as customer_signature next to customer_id. The pipe cannot occur in either id, so the
 * signed bytes name exactly one (tenant, customer) pair.
 *
 * Pure functions over the caller's strings; any thread. Private to adapters/websocket. */
#ifndef OMR_WS_IDENTITY_H
#define OMR_WS_IDENTITY_H

#include <stdbool.h>
#include <stddef.h>

#define OMR_WS_IDENTITY_SIG_LEN 64u     /* hex digits of a customer_signature */
#define OMR_WS_IDENTITY_SECRET_MAX 256u /* chat.identity_secret's maximum (config_options.h) */

/* Writes the signature of (tenant, customer) under secret into out: 64 lowercase hex digits
 * plus NUL. Returns 0, or -EINVAL (an empty secret, tenant or customer, or a tenant or
 * customer longer than the protocol allows; out is then ""). */
int omr_ws_identity_sign(const char *secret, const char *tenant, const char *customer,
                         char out[OMR_WS_IDENTITY_SIG_LEN + 1]);

/* true when signature (NUL-terminated, from the client) is the signature of (tenant,
 * customer) under secret. Lowercase only, as sign writes it. The comparison takes the same
 * time wherever a wrong signature differs. */
bool omr_ws_identity_is_valid(const char *secret, const char *tenant, const char *customer,
                              const char *signature);

#endif
