/* error.c - text for project error codes. Any thread. */
#include "omnirouter/error.h"

#include <errno.h>
#include <string.h>

const char *omr_strerror(int err)
{
	switch (err) {
	case 0:
		return "ok";
	case OMR_ERR_NOT_ASSIGNED:
		return "conversation is not assigned to this agent";
	case OMR_ERR_BAD_TOKEN:
		return "unknown id or wrong token";
	case OMR_ERR_NO_AGENT:
		return "no such agent";
	case OMR_ERR_CLOSED:
		return "conversation is closed";
	case OMR_ERR_REDIS:
		return "redis unavailable";
	case OMR_ERR_REPLACED:
		return "a newer login for this agent took over";
	case OMR_ERR_AGENT_AWAY:
		return "that agent is not logged in: transfer to a queue";
	default:
		/* strerror is not thread-safe in theory; glibc's is for known codes. */
		return err < 0 ? strerror(-err) : "unknown error";
	}
}

const char *omr_error_code(int err)
{
	switch (err) {
	case 0:
		return "ok";
	case OMR_ERR_NOT_ASSIGNED:
		return "not-assigned";
	case OMR_ERR_BAD_TOKEN:
		return "unauthorized";
	case OMR_ERR_NO_AGENT:
		return "unauthorized";
	case OMR_ERR_CLOSED:
		return "closed";
	case OMR_ERR_REPLACED:
		return "replaced";
	case OMR_ERR_AGENT_AWAY:
	case -EINVAL:
	case -EBADMSG:
	case -ENOSPC: /* conversation holds too many messages */
	case -EBUSY:
		return "bad-request";
	case -EMSGSIZE:
		return "too-big";
	default:
		return "unavailable";
	}
}
