/* error.h - project error codes. Functions return 0 or a negative errno;
 * the few conditions errno has no name for get a code below -OMR_ERR_BASE. */
#ifndef OMNIROUTER_ERROR_H
#define OMNIROUTER_ERROR_H

#define OMR_ERR_BASE 10000
#define OMR_ERR_NOT_ASSIGNED (-(OMR_ERR_BASE + 1)) /* conversation not assigned to you */
#define OMR_ERR_BAD_TOKEN (-(OMR_ERR_BASE + 2))    /* unknown agent or token */
#define OMR_ERR_NO_AGENT (-(OMR_ERR_BASE + 3))     /* agent does not exist */
#define OMR_ERR_CLOSED (-(OMR_ERR_BASE + 4))       /* conversation is closed */
#define OMR_ERR_REDIS (-(OMR_ERR_BASE + 5))        /* Redis unavailable or error */
#define OMR_ERR_REPLACED (-(OMR_ERR_BASE + 6))     /* a newer login holds the agent */
#define OMR_ERR_AGENT_AWAY (-(OMR_ERR_BASE + 7))   /* transfer target not logged in */

/* Text for 0, a negative errno or a project code. Never NULL. */
const char *omr_strerror(int err);

/* Short stable token for the wire ("bad-token", "not-assigned", ...). */
const char *omr_error_code(int err);

#endif
