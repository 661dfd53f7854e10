/* chat.c - the chat channel's rules: a chat is a session with one customer,
 * it costs one unit of an agent's chat capacity, and its text is short valid
 * UTF-8 without NUL. Pure functions; any thread. */
#include <errno.h>
#include <string.h>

#include "omnirouter/channel.h"

static int chat_validate_text(const char *text, size_t len, size_t max_len, const char **why)
{
	if (!text || len == 0) {
		*why = "text is empty";
		return -EINVAL;
	}
	if (len > max_len) {
		*why = "text is too long";
		return -EMSGSIZE;
	}
	if (!omr_utf8_is_valid(text, len)) {
		*why = "text is not valid UTF-8 or contains NUL";
		return -EINVAL;
	}
	return 0;
}

static const omr_channel_ops_t chat_channel = {
        .id = OMR_CHANNEL_CHAT,
        .name = "chat",
        .capacity_cost = 1,
        .validate_text = chat_validate_text,
};

const omr_channel_ops_t *omr_channel_get(omr_channel_t ch)
{
	return ch == OMR_CHANNEL_CHAT ? &chat_channel : NULL;
}
