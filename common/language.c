/* language.c - BCP-47 tag handling shared by every channel and by the config loader (queue
 * languages), hence in common/ rather than channels/; declared in channel.h. Pure; any
 * thread. */
#include <errno.h>
#include <string.h>

#include "omnirouter/channel.h"

static int is_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
static int is_alnum(char c)
{
	return is_alpha(c) || (c >= '0' && c <= '9');
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
	size_t i = n;
	while (tag[i] == '-') {
		size_t j = i + 1;
		while (is_alnum(tag[j]))
			j++;
		if (j == i + 1 || j - i - 1 > 8)
			return -EINVAL;
		i = j;
	}
	if (tag[i] != '\0' || i > 35)
		return -EINVAL;
	for (size_t k = 0; k < n; k++)
		out[k] = (char)(tag[k] | 0x20);
	out[n] = '\0';
	return 0;
}
