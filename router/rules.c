/* rules.c - configuration -> rules JSON for the Redis Functions. */
#include "rules.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "omnirouter/channel.h"
#include "omnirouter/util.h"

static cJSON *string_list(char *const *items, size_t n, bool languages)
{
	cJSON *arr = cJSON_CreateArray();
	for (size_t i = 0; arr && i < n; i++) {
		char primary[16];
		const char *v = items[i];
		if (languages) {
			if (omr_language_primary(items[i], primary, sizeof(primary)) != 0) {
				cJSON_Delete(arr);
				return NULL;
			}
			v = primary;
		}
		cJSON_AddItemToArray(arr, cJSON_CreateString(v));
	}
	return arr;
}

static cJSON *step_json(const omr_queue_step_t *st)
{
	cJSON *o = cJSON_CreateObject();
	if (!o)
		return NULL;
	cJSON_AddNumberToObject(o, "after_s", (double)st->after_s);
	cJSON_AddNumberToObject(o, "min_level_delta", (double)st->min_level_delta);
	cJSON *langs = string_list(st->languages, st->n_languages, true);
	if (!langs) {
		cJSON_Delete(o);
		return NULL;
	}
	cJSON_AddItemToObject(o, "languages", langs);
	cJSON_AddStringToObject(o, "overflow", st->overflow ? st->overflow : "");
	return o;
}

static cJSON *queue_json(const omr_queue_t *q)
{
	cJSON *o = cJSON_CreateObject();
	cJSON *tenants = string_list(q->tenants, q->n_tenants, false);
	cJSON *channels = string_list(q->channels, q->n_channels, false);
	cJSON *langs = string_list(q->languages, q->n_languages, true);
	cJSON *skills = cJSON_CreateObject(), *attrs = cJSON_CreateObject();
	cJSON *steps = cJSON_CreateArray(), *base = cJSON_CreateObject();
	if (!o || !tenants || !channels || !langs || !skills || !attrs || !steps || !base)
		goto fail;
	cJSON_AddStringToObject(o, "name", q->name);
	cJSON_AddItemToObject(o, "tenants", tenants);
	cJSON_AddItemToObject(o, "channels", channels);
	cJSON_AddItemToObject(o, "languages", langs);
	tenants = channels = langs = NULL;
	for (size_t i = 0; i < q->n_skills; i++)
		cJSON_AddNumberToObject(skills, q->skills[i].skill, (double)q->skills[i].level);
	for (size_t i = 0; i < q->n_attributes; i++)
		cJSON_AddStringToObject(attrs, q->attributes[i].key, q->attributes[i].value);
	cJSON_AddItemToObject(o, "skills", skills);
	cJSON_AddItemToObject(o, "attributes", attrs);
	skills = attrs = NULL;
	cJSON_AddStringToObject(o, "strategy", omr_strategy_name(q->strategy));
	cJSON_AddNumberToObject(o, "priority", (double)q->priority);
	cJSON_AddNumberToObject(o, "min_proficiency", (double)q->min_proficiency);
	cJSON_AddNumberToObject(o, "max_wait_s", (double)q->max_wait_s);
	char action[OMR_CONFIG_ID_MAX + 16] = "close";
	if (q->max_wait_overflow)
		snprintf(action, sizeof(action), "overflow:%s", q->max_wait_overflow);
	cJSON_AddStringToObject(o, "max_wait_action", action);
	cJSON_AddNumberToObject(o, "offer_timeout_s", (double)q->offer_timeout_s);
	cJSON_AddBoolToObject(o, "auto_accept", q->auto_accept);
	cJSON_AddNumberToObject(o, "wrapup_s", (double)q->wrapup_s);
	cJSON_AddNumberToObject(o, "sticky_window_s", (double)q->sticky_window_s);
	/* Step 1 is the queue's own requirements; the ladder follows. */
	cJSON_AddNumberToObject(base, "after_s", 0);
	cJSON_AddItemToArray(steps, base);
	base = NULL;
	for (size_t i = 0; i < q->n_steps; i++) {
		cJSON *st = step_json(&q->steps[i]);
		if (!st)
			goto fail;
		cJSON_AddItemToArray(steps, st);
	}
	cJSON_AddItemToObject(o, "steps", steps);
	return o;
fail:
	cJSON_Delete(o);
	cJSON_Delete(tenants);
	cJSON_Delete(channels);
	cJSON_Delete(langs);
	cJSON_Delete(skills);
	cJSON_Delete(attrs);
	cJSON_Delete(steps);
	cJSON_Delete(base);
	return NULL;
}

/* "voice:chat,email;email:voice" -> {"voice":["chat","email"],"email":["voice"]} */
static cJSON *blocking_json(const char *spec)
{
	cJSON *o = cJSON_CreateObject();
	char buf[256];
	snprintf(buf, sizeof(buf), "%s", spec ? spec : "");
	char *save = NULL;
	for (char *grp = strtok_r(buf, ";", &save); o && grp; grp = strtok_r(NULL, ";", &save)) {
		char *colon = strchr(grp, ':');
		if (!colon)
			continue;
		*colon = '\0';
		cJSON *list = cJSON_AddArrayToObject(o, grp);
		char *s2 = NULL;
		for (char *ch = strtok_r(colon + 1, ",", &s2); list && ch;
		     ch = strtok_r(NULL, ",", &s2))
			cJSON_AddItemToArray(list, cJSON_CreateString(ch));
	}
	return o;
}

int omr_rules_json(const omr_config_t *cfg, char **out)
{
	cJSON *root = cJSON_CreateObject(), *queues = cJSON_CreateArray();
	cJSON *blocking = blocking_json(cfg->routing_blocking_channels);
	int rc = -ENOMEM;
	if (!root || !queues || !blocking)
		goto done;
	cJSON_AddItemToObject(root, "blocking", blocking);
	cJSON_AddNumberToObject(root, "heartbeat_timeout_s",
	                        (double)cfg->routing_heartbeat_timeout_s);
	cJSON_AddNumberToObject(root, "agent_grace_s", (double)cfg->routing_agent_grace_s);
	cJSON_AddNumberToObject(root, "max_missed_offers", (double)cfg->routing_max_missed_offers);
	cJSON_AddNumberToObject(root, "decline_hold_s", (double)cfg->routing_decline_hold_s);
	cJSON_AddNumberToObject(root, "abandon_s", (double)cfg->chat_abandon_after_s);
	cJSON_AddNumberToObject(root, "retention_s", (double)cfg->chat_retention_days * 86400.0);
	blocking = NULL;
	for (size_t i = 0; i < cfg->n_queues; i++) {
		cJSON *q = queue_json(&cfg->queues[i]);
		if (!q) {
			rc = -EINVAL;
			goto done;
		}
		cJSON_AddItemToArray(queues, q);
	}
	cJSON_AddItemToObject(root, "queues", queues);
	queues = NULL;
	/* The version is a hash of the document without it. */
	char *body = cJSON_PrintUnformatted(root);
	if (!body)
		goto done;
	char sha[65];
	omr_sha256_hex(body, strlen(body), sha);
	cJSON_free(body);
	cJSON_AddStringToObject(root, "version", sha);
	*out = cJSON_PrintUnformatted(root);
	rc = *out ? 0 : -ENOMEM;
done:
	cJSON_Delete(root);
	cJSON_Delete(queues);
	cJSON_Delete(blocking);
	return rc;
}
