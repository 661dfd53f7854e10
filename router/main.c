/* main.c - omnirouterd: parses arguments, loads the configuration, runs the
 * daemon. Nothing else. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "daemon.h"
#include "omnirouter/config.h"
#include "omnirouter/log.h"

#ifndef OMR_VERSION
#define OMR_VERSION "dev"
#endif

static void usage(FILE *f)
{
	fprintf(f, "usage: omnirouterd [-c FILE] [--check-config] [--version]\n"
	           "  -c, --config FILE   configuration (default /etc/omnirouter/omnirouter.yaml)\n"
	           "  -t, --check-config  validate the configuration and exit (0 = valid)\n"
	           "  -V, --version       print the version and exit\n");
}

int main(int argc, char **argv)
{
	const char *path = "/etc/omnirouter/omnirouter.yaml";
	bool check = false;
	static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
	                                     {"check-config", no_argument, NULL, 't'},
	                                     {"version", no_argument, NULL, 'V'},
	                                     {"help", no_argument, NULL, 'h'},
	                                     {NULL, 0, NULL, 0}};
	int c;
	while ((c = getopt_long(argc, argv, "c:tVh", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			path = optarg;
			break;
		case 't':
			check = true;
			break;
		case 'V':
			printf("omnirouterd %s\n", OMR_VERSION);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	char err[512];
	omr_config_t *cfg = NULL;
	if (omr_config_load(path, &cfg, err, sizeof(err)) != 0) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	if (check) {
		/* The files the daemon reads at start: a path that is wrong would
		 * pass here and stop the daemon (at start, or at its next restart). */
		const struct {
			const char *name, *file;
		} files[] = {{"websocket.tls_cert", cfg->ws_tls_cert},
		             {"websocket.tls_key", cfg->ws_tls_key}};
		for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
			if (!files[i].file || !files[i].file[0])
				continue;
			FILE *f = fopen(files[i].file, "r");
			if (!f) {
				fprintf(stderr, "%s: %s: cannot read %s: %s\n", path, files[i].name,
				        files[i].file, strerror(errno));
				omr_config_destroy(&cfg);
				return 1;
			}
			fclose(f);
		}
		char warnings[4096];
		if (omr_config_shadow_warnings(cfg, warnings, sizeof(warnings)) > 0)
			fprintf(stderr, "%s\n", warnings);
		printf("%s: configuration ok\n", path);
		omr_config_destroy(&cfg);
		return 0;
	}
	omr_log_set_level(cfg->log_level);
	omr_info("daemon", "starting version=%s config=%s", OMR_VERSION, path);
	omr_daemon_warn_config(cfg);
	return omr_daemon_run(&cfg) == 0 ? 0 : 1;
}
