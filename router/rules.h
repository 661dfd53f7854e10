/* rules.h - the routing rules (queues, escalation ladders, channel blocking)
 * rendered from the configuration as the JSON document the Functions read
 * (P:rules). Pure; any thread. */
#ifndef OMR_ROUTER_RULES_H
#define OMR_ROUTER_RULES_H

#include "omnirouter/config.h"

/* Writes a malloc'd JSON document into *out (caller frees). Languages are
 * reduced to their primary subtag; "version" is a hash of the rest, so
 * instances with the same rules do not reindex each other's agents.
 * Returns 0, -EINVAL (a rule the config loader should have refused),
 * -ENOMEM. */
int omr_rules_json(const omr_config_t *cfg, char **out);

#endif
