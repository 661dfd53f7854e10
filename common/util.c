/* util.c - checked number parsing, random ids, hashing (SHA-256, HMAC-SHA256 and a
 * constant-time compare, over libcrypto, which omr_common links), clocks. Any thread. */
#include "omnirouter/util.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

/* Writes n bytes as 2n lowercase hex chars plus NUL. */
static void hex_encode(const unsigned char *raw, size_t n, char *out)
{
	static const char hex[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = hex[raw[i] >> 4];
		out[2 * i + 1] = hex[raw[i] & 15];
	}
	out[2 * n] = '\0';
}

int omr_parse_intn(const char *s, size_t len, int64_t min, int64_t max, int64_t *out)
{
	char buf[32];
	if (!s || len == 0 || len >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, s, len);
	buf[len] = '\0';
	return omr_parse_int(buf, min, max, out);
}

int omr_parse_int(const char *s, int64_t min, int64_t max, int64_t *out)
{
	if (!s || !*s)
		return -EINVAL;
	/* strtoll skips leading space and accepts '+': we do not. */
	if (!(s[0] == '-' || (s[0] >= '0' && s[0] <= '9')))
		return -EINVAL;
	errno = 0;
	char *end = NULL;
	long long v = strtoll(s, &end, 10);
	if (end == s || *end != '\0')
		return -EINVAL;
	if (errno == ERANGE || v < min || v > max)
		return -ERANGE;
	*out = (int64_t)v;
	return 0;
}

int omr_random_hex(char *out, size_t outsize, size_t nbytes)
{
	unsigned char raw[64];
	if (nbytes == 0 || nbytes > sizeof(raw) || outsize < 2 * nbytes + 1)
		return -EINVAL;
	size_t got = 0;
	while (got < nbytes) {
		ssize_t r = getrandom(raw + got, nbytes - got, 0);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		got += (size_t)r;
	}
	hex_encode(raw, nbytes, out);
	return 0;
}

void omr_sha256_hex(const char *s, size_t len, char out[65])
{
	unsigned char md[SHA256_DIGEST_LENGTH];
	SHA256((const unsigned char *)s, len, md);
	hex_encode(md, sizeof(md), out);
}

int omr_hmac_sha256_hex(const void *key, size_t keylen, const void *msg, size_t msglen,
                        char out[65])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	out[0] = '\0';
	if (keylen == 0 || keylen > INT_MAX ||
	    !HMAC(EVP_sha256(), key, (int)keylen, msg, msglen, md, &mdlen) ||
	    mdlen != SHA256_DIGEST_LENGTH)
		return -EINVAL;
	hex_encode(md, mdlen, out);
	OPENSSL_cleanse(md, sizeof(md));
	return 0;
}

bool omr_equal_ct(const void *a, const void *b, size_t len)
{
	return CRYPTO_memcmp(a, b, len) == 0;
}

bool omr_id_is_valid(const char *s, size_t max)
{
	if (!s)
		return false;
	size_t n = 0;
	for (; s[n]; n++) {
		char c = s[n];
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		          (c >= '0' && c <= '9') || c == '.' || c == '_' || c == ':' || c == '@' ||
		          c == '-';
		if (!ok || n >= max)
			return false;
	}
	return n > 0;
}

static bool ends_in_one_of(const char *id, const char *const *suffixes, size_t n)
{
	size_t len = id ? strlen(id) : 0;
	for (size_t i = 0; i < n; i++) {
		size_t k = strlen(suffixes[i]);
		if (len > k && strcmp(id + len - k, suffixes[i]) == 0)
			return true;
	}
	return false;
}

/* docs/ARCHITECTURE.md, Redis keys (idx and declined: earlier versions';
 * customer:T|ID:convs: the list before 2026-12) */
bool omr_id_names_subkey(const char *id, omr_id_kind_t kind)
{
	static const char *const agent[] = {":convs", ":inbox", ":presence", ":idx"};
	static const char *const conv[] = {":explain", ":log",  ":ids",
	                                   ":decl",    ":cust", ":declined"};
	static const char *const customer[] = {":convs"};
	switch (kind) {
	case OMR_ID_AGENT:
		return ends_in_one_of(id, agent, sizeof(agent) / sizeof(agent[0]));
	case OMR_ID_CONV:
		return ends_in_one_of(id, conv, sizeof(conv) / sizeof(conv[0]));
	case OMR_ID_CUSTOMER:
		return ends_in_one_of(id, customer, 1);
	}
	return false;
}

static uint64_t clock_ms(clockid_t id)
{
	struct timespec ts;
	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t omr_now_ms(void)
{
	return clock_ms(CLOCK_REALTIME);
}

uint64_t omr_mono_ms(void)
{
	return clock_ms(CLOCK_MONOTONIC);
}

char *omr_strdup(const char *s)
{
	return s ? strdup(s) : NULL;
}
