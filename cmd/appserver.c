/*
 * `lightstream appserver`: the auth, accounts and db services on a store,
 * served by worker threads connected to the broker's backend (docs/bus.md,
 * docs/operations.md).
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#include "as_appserver.h"
#include "cmd.h"
#include "cmd_announce.h"
#include "cmd_bus.h"
#include "cmd_util.h"
#include "ls_log.h"
#include "ls_settings.h"

enum {
	OPT_WORKERS = 0x2000,
	OPT_FIXTURE,
	OPT_HEARTBEAT,
	OPT_HELP,
};

static void
appserver_usage(FILE *out)
{
	fprintf(out,
	        "Usage: lightstream appserver [OPTIONS]\n"
	        "\n"
	        "Serve the auth, accounts and db services to the broker's "
	        "backend,\n"
	        "on an SQLite or MongoDB store. Several app servers may "
	        "share one\n"
	        "broker (and one store); SIGTERM or SIGINT stops cleanly.\n"
	        "\n"
	        "Options:\n"
	        "%s"
	        "  --workers N              worker threads (2; "
	        "appserver.workers)\n"
	        "  --fixture FILE           replace all accounts with "
	        "FILE's at start\n"
	        "  --heartbeat-ms MS        bus heartbeat, same as the "
	        "broker's (2500;\n"
	        "                           bus.heartbeat_ms)\n"
	        "  -h, --help               this help\n",
	        ls_settings_help_for(LS_OPTS_DATA | LS_OPTS_STORE |
	                             LS_OPTS_FABRIC | LS_OPTS_BACKEND |
	                             LS_OPTS_BUS_PEER));
}

int
cmd_appserver(int argc, char **argv)
{
	static const struct option extra[] = {
		{ "workers", required_argument, NULL, OPT_WORKERS },
		{ "fixture", required_argument, NULL, OPT_FIXTURE },
		{ "heartbeat-ms", required_argument, NULL, OPT_HEARTBEAT },
		{ "help", no_argument, NULL, OPT_HELP },
		{ NULL, 0, NULL, 0 },
	};
	struct option opts[32];
	ls_settings s;
	ls_error err = { 0 };
	as_appserver_options ao = { 0 };
	as_appserver *as = NULL;
	const char *fixture = NULL;
	cmd_bus bus = { 0 }, fabric = { 0 };
	cmd_announcer *announcer = NULL;
	char *store_uri = NULL;
	long workers = -1, heartbeat = -1;
	void *ctx = NULL;
	sigset_t set;
	int status = CMD_EXIT_USAGE, c, sig = 0;

	if (cmd_settings_init("appserver", &s) != 0) {
		return CMD_EXIT_FAILURE;
	}
	ls_settings_options_merge_for(
	        LS_OPTS_DATA | LS_OPTS_STORE | LS_OPTS_FABRIC |
	                LS_OPTS_BACKEND | LS_OPTS_BUS_PEER,
	        extra, opts, 32);
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		int rc = cmd_settings_option("appserver", &s, c, optarg, NULL);
		if (rc == 1) {
			continue;
		}
		if (rc < 0) {
			goto out;
		}
		switch (c) {
		case OPT_WORKERS:
			if (cmd_option_long("appserver", "workers", optarg, 1,
			                    256, NULL, &workers) != 0) {
				goto out;
			}
			break;
		case OPT_FIXTURE:
			fixture = optarg;
			break;
		case OPT_HEARTBEAT:
			if (cmd_option_long("appserver", "heartbeat-ms",
			                    optarg, 10, 600000, NULL,
			                    &heartbeat) != 0) {
				goto out;
			}
			break;
		case 'h':
		case OPT_HELP:
			appserver_usage(stdout);
			status = CMD_EXIT_OK;
			goto out;
		default:
			appserver_usage(stderr);
			goto out;
		}
	}
	if (cmd_no_operands("appserver", optind, argc, argv) != 0 ||
	    cmd_apply_logging("appserver", &s) != 0) {
		goto out;
	}
	if (cmd_bus_peer("appserver", &s, s.bus_backend, &bus) != 0) {
		goto out;
	}
	ao.curve = cmd_bus_keys(&bus);
	status = CMD_EXIT_FAILURE;
	if (s.store_uri == NULL) {
		/* The default store lives in the data directory: create it,
		 * as serve does. */
		int rc = cmd_make_data_dir(s.data_dir);
		if (rc != 0) {
			fprintf(stderr,
			        "lightstream appserver: data directory %s: "
			        "%s\n",
			        s.data_dir, strerror(-rc));
			goto out;
		}
	}
	store_uri = ls_settings_store_uri(&s);
	if (store_uri == NULL) {
		fprintf(stderr, "lightstream appserver: out of memory\n");
		goto out;
	}
	/* Before any thread starts: the workers inherit the mask. */
	cmd_block_stop_signals(&set);

	ctx = zmq_ctx_new();
	if (ctx == NULL) {
		fprintf(stderr, "lightstream appserver: zmq: %s\n",
		        zmq_strerror(errno));
		goto out;
	}
	ao.store_uri = store_uri;
	ao.backend = s.bus_backend;
	ao.workers = (int)(workers > 0 ? workers : s.workers);
	ao.issue_workers = (int)s.issue_workers;
	ao.fixture = fixture;
	ao.heartbeat_ms = (int)(heartbeat > 0 ? heartbeat : s.heartbeat_ms);
	if (strcmp(s.pubsub_url, "local") != 0) {
		/* Revocations and permission changes reach every gateway on
		 * the fabric they share (docs/architecture.md). */
		if (cmd_fabric_peer("appserver", &s, &fabric) != 0) {
			goto out;
		}
		announcer = cmd_announcer_start(s.pubsub_url,
		                                cmd_bus_keys(&fabric), &err);
		if (announcer == NULL) {
			fprintf(stderr, "lightstream appserver: %s\n",
			        err.text);
			status = CMD_EXIT_USAGE;
			goto out;
		}
		ao.on_change = cmd_announcer_change;
		ao.on_change_user = announcer;
	} else {
		ls_warn("appserver",
		        "no --redis (pubsub.url): gateways are not told of "
		        "revocations and permission changes; their open "
		        "connections keep their permissions until they "
		        "reconnect");
	}
	as = as_appserver_start(ctx, &ao, &err);
	if (as == NULL) {
		fprintf(stderr, "lightstream appserver: %s\n", err.text);
		status = err.code == LS_ECONFIG || err.code == LS_EBADREQUEST
		                 ? CMD_EXIT_USAGE
		                 : CMD_EXIT_FAILURE;
		goto out;
	}
	ls_info("appserver", "ready (pid %ld)", (long)getpid());
	sig = cmd_wait_stop(&set);
	ls_info("appserver", "%s: stopping", strsignal(sig));
	as_appserver_stop(&as);
	status = CMD_EXIT_OK;
out:
	as_appserver_stop(&as);
	if (ctx != NULL) {
		zmq_ctx_term(ctx);
	}
	cmd_bus_clear(&bus);
	cmd_bus_clear(&fabric);
	cmd_announcer_stop(&announcer);
	free(store_uri);
	ls_settings_clear(&s);
	return status;
}
