/* channel.h - what a conversation is on each channel: the rules the router
 * and adapters apply to it. Pure functions; any thread. */
#ifndef OMNIROUTER_CHANNEL_H
#define OMNIROUTER_CHANNEL_H

#include <stddef.h>

#include "omnirouter/envelope.h"

typedef struct omr_channel_ops {
	omr_channel_t id;
	const char *name;
	/* Units of an agent's capacity one conversation of this channel takes. */
	unsigned capacity_cost;
	/* Checks a message body: 0, or -EINVAL / -EMSGSIZE with *why set. */
	int (*validate_text)(const char *text, size_t len, size_t max_len, const char **why);
} omr_channel_ops_t;

/* The rules of a channel; NULL for a channel not built yet. */
const omr_channel_ops_t *omr_channel_get(omr_channel_t ch);

/* Reduces a BCP-47 tag to the lowercase language code routing matches on
 * ("es-MX" -> "es"): the primary subtag, or the extended language subtag
 * ("zh-yue" -> "yue"), or the language of a grandfathered tag ("zh-min-nan"
 * -> "nan"), with a deprecated or alias code replaced by the current one
 * ("iw" -> "he", "in" -> "id", "tl" -> "fil", "cmn" -> "zh"); Chinese with
 * its script, when the tag gives one or a region that implies one ("zh-TW",
 * "zh-Hant-HK" -> "zh-Hant"; "zh-CN", "cmn-Hans" -> "zh-Hans"; "zh" stays
 * "zh"). The result is lowercase but for the script's "Hant"/"Hans". Returns 0, or
 * -EINVAL when tag is not 2-8 letters optionally followed by "-" subtags of
 * [A-Za-z0-9]. out holds at least 9 bytes. */
int omr_language_primary(const char *tag, char *out, size_t outsize);

#endif
