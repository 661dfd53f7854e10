/* language.c - BCP-47 tag handling shared by every channel and by the config loader (queue
 * languages), hence in common/ rather than channels/; declared in channel.h. Pure; any
 * thread. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "omnirouter/channel.h"

static int is_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
static int is_alnum(char c)
{
	return is_alpha(c) || (c >= '0' && c <= '9');
}

/* Whole tags the IANA registry grandfathered, with the language they name
 * (RFC 5646 2.2.8; matched up to a further "-subtag", the longer first). */
static const struct {
	const char *tag, *lang;
} grandfathered[] = {
        {"zh-min-nan", "nan"}, {"zh-min", "zh"},   {"zh-hakka", "hak"},
        {"zh-xiang", "hsn"},   {"zh-guoyu", "zh"}, {"art-lojban", "jbo"},
};

/* Codes for a language that has a current code (router/lua/10_index.lua's
 * LANG_ALIAS reads agents an earlier version stored with them): the registry's Preferred-Value
 * of the deprecated ISO 639 codes; CLDR's aliases of an individual language to
 * the macrolanguage code sites staff it under (Mandarin as zh, Standard Arabic
 * as ar, ...); and Tagalog as Filipino, as CLDR and the browsers do. */
static const struct {
	const char *from, *to;
} aliases[] = {
        {"iw", "he"},  {"in", "id"},  {"ji", "yi"},  {"jw", "jv"},  {"mo", "ro"},  {"tl", "fil"},
        {"cmn", "zh"}, {"arb", "ar"}, {"zsm", "ms"}, {"swh", "sw"}, {"pes", "fa"}, {"uzn", "uz"},
};

/* Chinese is routed by script, as sites staff it: Traditional (zh-Hant) for
 * Taiwan, Hong Kong and Macau, Simplified (zh-Hans) for the mainland,
 * Singapore and Malaysia (CLDR's likely subtags). A script subtag decides
 * (Hanb, Han with Bopomofo, is Traditional; Latn, pinyin, stays zh); without
 * one, the region; without either it stays zh. router/lua/10_index.lua's
 * zh_rlang does the same for what an earlier version routed as zh. */
static const struct {
	const char *region, *script;
} zh_regions[] = {
        {"tw", "Hant"}, {"hk", "Hant"}, {"mo", "Hant"},
        {"cn", "Hans"}, {"sg", "Hans"}, {"my", "Hans"},
};

/* The script of a zh tag from its subtags after the language (rest starts
 * at a '-' or is ""): "Hant", "Hans" or NULL. */
static const char *zh_script(const char *rest)
{
	while (*rest == '-') {
		const char *sub = rest + 1;
		size_t n = strcspn(sub, "-");
		/* an extension or private use: nothing after it is a script or region */
		if (n == 1)
			break;
		if (n == 4 && is_alpha(sub[0])) /* Hanb: Han with Bopomofo, Taiwan's */
			return strncasecmp(sub, "hant", 4) == 0 || strncasecmp(sub, "hanb", 4) == 0
			               ? "Hant"
			       : strncasecmp(sub, "hans", 4) == 0 ? "Hans"
			                                          : NULL; /* zh-Latn: pinyin */
		if (n == 2 && is_alpha(sub[0])) {
			for (size_t k = 0; k < sizeof(zh_regions) / sizeof(zh_regions[0]); k++)
				if (strncasecmp(sub, zh_regions[k].region, 2) == 0)
					return zh_regions[k].script;
			return NULL;
		}
		rest = sub + n;
	}
	return NULL;
}

static void lower(const char *from, size_t n, char *out)
{
	for (size_t k = 0; k < n; k++)
		out[k] = (char)(from[k] | 0x20);
	out[n] = '\0';
}

static bool starts_tag(const char *tag, const char *prefix)
{
	size_t n = strlen(prefix);
	return strncasecmp(tag, prefix, n) == 0 && (tag[n] == '\0' || tag[n] == '-');
}

int omr_language_primary(const char *tag, char *out, size_t outsize)
{
	if (!tag || outsize < 9)
		return -EINVAL;
	size_t n = 0;
	while (is_alpha(tag[n]))
		n++;
	if (n < 2 || n > 8)
		return -EINVAL;
	/* The rest must be "-subtag" groups of 1-8 alphanumerics. */
	size_t i = n, second = 0;
	while (tag[i] == '-') {
		size_t j = i + 1;
		while (is_alnum(tag[j]))
			j++;
		if (j == i + 1 || j - i - 1 > 8)
			return -EINVAL;
		if (i == n)
			second = j - i - 1;
		i = j;
	}
	if (tag[i] != '\0' || i > 35)
		return -EINVAL;
	for (size_t k = 0; k < sizeof(grandfathered) / sizeof(grandfathered[0]); k++)
		if (starts_tag(tag, grandfathered[k].tag)) {
			snprintf(out, outsize, "%s", grandfathered[k].lang);
			return 0;
		}
	/* An extended language subtag (three letters after a two- or three-letter
	 * language: zh-yue) is the language itself (RFC 5646 4.5). Scripts have
	 * four letters, regions two letters or three digits. */
	size_t after = n; /* where the subtags after the language begin */
	if (n <= 3 && second == 3 && is_alpha(tag[n + 1]) && is_alpha(tag[n + 2]) &&
	    is_alpha(tag[n + 3])) {
		lower(tag + n + 1, 3, out);
		after = n + 4;
	} else {
		lower(tag, n, out);
	}
	for (size_t k = 0; k < sizeof(aliases) / sizeof(aliases[0]); k++)
		if (strcmp(out, aliases[k].from) == 0) {
			snprintf(out, outsize, "%s", aliases[k].to);
			break;
		}
	const char *script = strcmp(out, "zh") == 0 ? zh_script(tag + after) : NULL;
	if (script)
		snprintf(out, outsize, "zh-%s", script);
	return 0;
}
