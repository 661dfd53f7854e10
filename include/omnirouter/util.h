/* util.h - small helpers every folder uses: checked number parsing, ids,
 * time. No I/O except omr_random_hex (reads the kernel's CSPRNG). */
#ifndef OMNIROUTER_UTIL_H
#define OMNIROUTER_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Parses a whole base-10 integer in [min, max]. Returns 0, -EINVAL (not a
 * number, trailing bytes, empty), -ERANGE (outside [min, max]). */
int omr_parse_int(const char *s, int64_t min, int64_t max, int64_t *out);

/* Same for s[0..len), which need not be NUL-terminated. */
int omr_parse_intn(const char *s, size_t len, int64_t min, int64_t max, int64_t *out);

/* Writes 2*nbytes lowercase hex chars of fresh randomness plus NUL into out
 * (outsize >= 2*nbytes+1). Returns 0 or a negative errno. */
int omr_random_hex(char *out, size_t outsize, size_t nbytes);

/* SHA-256 of s as 64 lowercase hex chars plus NUL (out has >= 65 bytes). */
void omr_sha256_hex(const char *s, size_t len, char out[65]);

/* HMAC-SHA256 of msg keyed with key (keylen > 0) as 64 lowercase hex chars plus NUL.
 * Returns 0, or -EINVAL (empty key, or libcrypto failed; out is then ""). */
int omr_hmac_sha256_hex(const void *key, size_t keylen, const void *msg, size_t msglen,
                        char out[65]);

/* true when a and b hold the same len bytes; the time taken does not depend on where they
 * differ (for comparing secrets and signatures). */
bool omr_equal_ct(const void *a, const void *b, size_t len);

/* true when s is 1..max bytes of [A-Za-z0-9._:@-] (safe in Redis keys, logs
 * and URLs). */
bool omr_id_is_valid(const char *s, size_t max);

/* true when id ends in the suffix of one of the other keys an agent, a
 * conversation or a customer has beside its hash: agent "ana:inbox" would
 * name agent ana's inbox, conversation "C:log" conversation C's transcript,
 * so no agent or conversation has such an id. */
typedef enum { OMR_ID_AGENT, OMR_ID_CONV, OMR_ID_CUSTOMER } omr_id_kind_t;
bool omr_id_names_subkey(const char *id, omr_id_kind_t kind);
#define OMR_ID_AGENT_SUBKEY_WHY                                                                    \
	"may not end in :convs, :inbox, :presence or :idx (the agent's other keys)"

/* Wall clock in ms since the epoch; monotonic clock in ms. */
uint64_t omr_now_ms(void);
uint64_t omr_mono_ms(void);

/* strdup that returns NULL for NULL. */
char *omr_strdup(const char *s);

#endif
