/* `lightstream broker`: the service-bus broker alone (docs/bus.md). */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "bus_broker.h"
#include "cmd.h"
#include "cmd_bus.h"
#include "cmd_util.h"
#include "ls_log.h"
#include "ls_settings.h"

enum {
	OPT_HEARTBEAT = 0x2000,
	OPT_QUEUE_LIMIT,
	OPT_TIMEOUT,
	OPT_HELP,
};

static bus_broker *broker_running;

static void
broker_on_signal(int sig)
{
	if (broker_running != NULL) {
		bus_broker_stop(broker_running);
	}
}

static void
broker_usage(FILE *out)
{
	fprintf(out,
	        "Usage: lightstream broker [OPTIONS]\n"
	        "\n"
	        "Run the service-bus broker: clients (gateways, `lightstream "
	        "call`)\n"
	        "connect to the frontend, app-server workers to the "
	        "backend.\n"
	        "CURVE keys are required (--bus-keys: the broker's key file, "
	        "--bus-allow\n"
	        "ROLE:KEY for each peer) unless --bus-insecure.\n"
	        "\n"
	        "Options:\n"
	        "%s"
	        "  --heartbeat-ms MS        heartbeat interval (2500; "
	        "bus.heartbeat_ms)\n"
	        "  --queue-limit N          queued requests per service "
	        "(10000)\n"
	        "  --timeout-ms MS          deadline of a queued request "
	        "(5000; bus.timeout_ms)\n"
	        "  -h, --help               this help\n",
	        ls_settings_help_for(LS_OPTS_FRONTEND | LS_OPTS_BACKEND |
	                             LS_OPTS_BUS_ALLOW));
}

int
cmd_broker(int argc, char **argv)
{
	static const struct option extra[] = {
		{ "heartbeat-ms", required_argument, NULL, OPT_HEARTBEAT },
		{ "queue-limit", required_argument, NULL, OPT_QUEUE_LIMIT },
		{ "timeout-ms", required_argument, NULL, OPT_TIMEOUT },
		{ "help", no_argument, NULL, OPT_HELP },
		{ NULL, 0, NULL, 0 },
	};
	struct option opts[32];
	ls_settings s;
	ls_error err = { 0 };
	bus_broker_options bo = { 0 };
	long heartbeat = -1, queue_limit = 0, timeout = -1;
	cmd_bus bus = { 0 };
	void *ctx = NULL;
	bus_broker *b = NULL;
	int status = CMD_EXIT_USAGE;
	int c;

	if (cmd_settings_init("broker", &s) != 0) {
		return CMD_EXIT_FAILURE;
	}
	ls_settings_options_merge_for(LS_OPTS_FRONTEND | LS_OPTS_BACKEND |
	                                      LS_OPTS_BUS_ALLOW,
	                              extra, opts, 32);
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		int rc = cmd_settings_option("broker", &s, c, optarg, NULL);
		if (rc == 1) {
			continue;
		}
		if (rc < 0) {
			goto out;
		}
		switch (c) {
		case OPT_HEARTBEAT:
			if (cmd_option_long("broker", "heartbeat-ms", optarg,
			                    10, 600000, "ms",
			                    &heartbeat) != 0) {
				goto out;
			}
			break;
		case OPT_QUEUE_LIMIT:
			if (cmd_option_long("broker", "queue-limit", optarg, 1,
			                    10000000, NULL,
			                    &queue_limit) != 0) {
				goto out;
			}
			break;
		case OPT_TIMEOUT:
			if (cmd_option_long("broker", "timeout-ms", optarg, 1,
			                    3600000, "ms", &timeout) != 0) {
				goto out;
			}
			break;
		case 'h':
		case OPT_HELP:
			broker_usage(stdout);
			status = CMD_EXIT_OK;
			goto out;
		default:
			broker_usage(stderr);
			goto out;
		}
	}
	if (cmd_no_operands("broker", optind, argc, argv) != 0 ||
	    cmd_apply_logging("broker", &s) != 0) {
		goto out;
	}
	bo.heartbeat_ms = (int)(heartbeat > 0 ? heartbeat : s.heartbeat_ms);
	bo.queue_limit = (int)queue_limit;
	bo.default_timeout_ms =
	        (int)(timeout > 0 ? timeout : s.bus_timeout_ms);
	if (cmd_bus_broker("broker", &s, &bo, &bus) != 0) {
		goto out;
	}
	status = CMD_EXIT_FAILURE;
	ctx = zmq_ctx_new();
	if (ctx == NULL) {
		fprintf(stderr, "lightstream broker: zmq: %s\n",
		        zmq_strerror(errno));
		goto out;
	}
	b = bus_broker_new(ctx, s.bus_frontend, s.bus_backend, &bo, &err);
	if (b == NULL) {
		ls_err("broker", "%s", err.text);
		goto out;
	}
	ls_info("broker", "frontend %s, backend %s", s.bus_frontend,
	        s.bus_backend);
	broker_running = b;
	cmd_on_stop_signals(broker_on_signal);
	bus_broker_run(b);
	broker_running = NULL;
	status = CMD_EXIT_OK;
out:
	bus_broker_destroy(&b);
	cmd_bus_clear(&bus);
	if (ctx != NULL) {
		zmq_ctx_term(ctx);
	}
	ls_settings_clear(&s);
	return status;
}
