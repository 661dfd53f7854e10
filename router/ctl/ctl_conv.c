/* ctl_conv.c - `omnirouterctl conversation close CONVERSATION [--reason
 * TEXT]`: the site ends a conversation whatever its state (omr_conv_end).
 * Single-threaded. */
#include <stdio.h>
#include <string.h>

#include "ctl.h"
#include "ctl_spec.h"
#include "omnirouter/envelope.h"
#include "omnirouter/util.h"

static int conv_close(omr_ctl_t *ctl, const char *conv)
{
	const char *note = ctl->reason ? ctl->reason : "";
	char why[160];
	if (omr_ctl_check_reason(note, why, sizeof(why)) != 0)
		return omr_ctl_usage_error("--reason: %s", why);
	char what[160];
	snprintf(what, sizeof(what), "conversation %s", conv);
	const char *args[] = {conv, note};
	redisReply *r = NULL;
	int rc = omr_ctl_fcall(ctl, "omr_conv_end", what, 2, args, &r);
	if (rc != 0)
		return rc;
	bool already = r->type == REDIS_REPLY_STRING && strcmp(r->str, "already-closed") == 0;
	if (ctl->json) {
		cJSON *o = cJSON_CreateObject();
		if (!o || !cJSON_AddStringToObject(o, "conversation", conv) ||
		    !cJSON_AddStringToObject(o, "result", already ? "already-closed" : "closed")) {
			cJSON_Delete(o);
			freeReplyObject(r);
			return omr_ctl_error("out of memory");
		}
		omr_ctl_print_json(o);
		cJSON_Delete(o);
	} else {
		printf("%s: %s\n", conv, already ? "was already closed" : "closed");
	}
	freeReplyObject(r);
	return OMR_CTL_OK;
}

int omr_ctl_conversation(omr_ctl_t *ctl, int argc, char **argv)
{
	if (argc != 3 || strcmp(argv[1], "close") != 0)
		return omr_ctl_usage_error(
		        "usage: conversation close CONVERSATION [--reason TEXT] [--json]");
	int rc = omr_ctl_check_options(ctl, "conversation", "close", F_REASON);
	if (rc != 0)
		return rc;
	if (!omr_id_is_valid(argv[2], OMR_ENV_ID_MAX))
		return omr_ctl_usage_error("conversation ids are 1-128 of A-Z a-z 0-9 . _ : @ -");
	if (omr_id_names_subkey(argv[2], OMR_ID_CONV)) /* C:decl is a key of C's */
		return omr_ctl_error("conversation %s: no such conversation", argv[2]);
	return conv_close(ctl, argv[2]);
}
