/* daemon.h - one omnirouterd process: the router on the main loop, the
 * adapters on their threads, signals, systemd notifications. Main thread. */
#ifndef OMR_ROUTER_DAEMON_H
#define OMR_ROUTER_DAEMON_H

#include "omnirouter/config.h"

/* Runs until SIGTERM/SIGINT, then drains and returns 0 (or a negative errno
 * when startup failed). Takes ownership of *cfgp. */
int omr_daemon_run(omr_config_t **cfgp);

/* Logs what in cfg is valid but surely not meant (a queue no new conversation
 * reaches); at start and after each reload. */
void omr_daemon_warn_config(const omr_config_t *cfg);

#endif
