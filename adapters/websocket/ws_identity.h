/* ws_identity.h - identity verification of a customer's hello (docs/PROTOCOL.md, "Identity
 * verification"): a site that knows who its customer is signs TENANT "|" CUSTOMER_ID, and the
 * customer's hello attributes when it has any, with HMAC-SHA256 under chat.identity_secret,
 * and the chat page sends the lowercase hex digest as customer_signature next to customer_id.
 *
 * The signed bytes: TENANT "|" CUSTOMER_ID without attributes; with attributes
 * TENANT "|" CUSTOMER_ID "\n" and then NAME "=" VALUE "\n" for each attribute, in bytewise
 * order of the names. The pipe cannot occur in either id; "=" and "\n" cannot occur in a name
 * (the id alphabet) and "\n" cannot occur in an id or a value (no control characters, see
 * check_attributes in ws_proto.c). So the signed bytes name exactly one (tenant, customer,
 * attributes), and the two forms cannot be confused: only the second contains a "\n".
 *
 * Pure functions over the caller's strings; any thread. Private to adapters/websocket. */
#ifndef OMR_WS_IDENTITY_H
#define OMR_WS_IDENTITY_H

#include <stdbool.h>
#include <stddef.h>

#include "omnirouter/envelope.h"

#define OMR_WS_IDENTITY_SIG_LEN 64u     /* hex digits of a customer_signature */
#define OMR_WS_IDENTITY_SECRET_MAX 256u /* chat.identity_secret's maximum (config_options.h) */

/* Writes the signature of (tenant, customer, attrs) under secret into out: 64 lowercase hex
 * digits plus NUL. attrs are n_attrs name (key) / value pairs in any order; n_attrs 0 (attrs
 * may then be NULL) signs TENANT "|" CUSTOMER_ID alone. Returns 0, or -EINVAL (an empty
 * secret, tenant or customer, a tenant or customer longer than the protocol allows, more
 * than OMR_WS_ATTRS_MAX attributes, a name that is not an id of at most OMR_WS_ATTR_KEY_MAX
 * bytes or appears twice, a value longer than OMR_WS_ATTR_VALUE_MAX or holding a "\n"; out
 * is then ""). */
int omr_ws_identity_sign(const char *secret, const char *tenant, const char *customer,
                         const omr_env_attr_t *attrs, size_t n_attrs,
                         char out[OMR_WS_IDENTITY_SIG_LEN + 1]);

/* true when signature (NUL-terminated, from the client) is the signature of (tenant,
 * customer, attrs) under secret, as omr_ws_identity_sign writes it (lowercase only). The
 * comparison takes the same time wherever a wrong signature differs. */
bool omr_ws_identity_is_valid(const char *secret, const char *tenant, const char *customer,
                              const omr_env_attr_t *attrs, size_t n_attrs, const char *signature);

#endif
