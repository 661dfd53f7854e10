/* fuzz_envelope.c - libFuzzer target for the envelope decoder.
 *
 * Every input goes through omr_envelope_decode() with the default frame cap.
 * What decodes must also encode (the encoder checks the same rules), the
 * encoding must decode, and encoding that again must give the same bytes: the
 * canonical form is a fixed point. Any failure aborts so libFuzzer keeps the
 * input. Built with -fsanitize=fuzzer (OMR_FUZZ) and, for builds without
 * libFuzzer, with replay_main.c. Single-threaded. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "omnirouter/envelope.h"

#define MAX OMR_ENV_FRAME_MAX_DEFAULT

static void die(const char *what, const char *why)
{
	fprintf(stderr, "fuzz_envelope: %s (%s)\n", what, why ? why : "-");
	abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	omr_envelope_t *env = NULL, *again = NULL;
	char *b1 = NULL, *b2 = NULL;
	size_t n1 = 0, n2 = 0;
	const char *why = NULL;

	if (omr_envelope_decode(data, size, MAX, &env, &why) != 0) {
		if (env || !why)
			die("failed decode left an envelope or no reason", why);
		return 0;
	}
	if (omr_envelope_encode(env, MAX, &b1, &n1, &why) != 0)
		die("decoded envelope does not encode", why);
	if (n1 > size)
		die("canonical encoding is longer than the input", NULL);
	if (omr_envelope_decode(b1, n1, MAX, &again, &why) != 0)
		die("encoded envelope does not decode", why);
	if (omr_envelope_encode(again, MAX, &b2, &n2, &why) != 0)
		die("re-decoded envelope does not encode", why);
	if (n1 != n2 || memcmp(b1, b2, n1) != 0)
		die("re-encoding differs", NULL);
	free(b1);
	free(b2);
	omr_envelope_destroy(&env);
	omr_envelope_destroy(&again);
	return 0;
}
