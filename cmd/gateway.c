/*
 * `lightstream gateway`: the WebSocket/HTTP gateway alone
 * (docs/configuration.md), with a bus client to --broker-frontend and the
 * fabric of --redis (or local). Several gateway processes share one address
 * only with --reuse-port (SO_REUSEPORT); --gateways N runs N loops.
 */
#include <ev.h>
#include <getopt.h>
#include <stdio.h>
#include <zmq.h>

#include "cmd.h"
#include "cmd_bus.h"
#include "cmd_util.h"
#include "gw_cli.h"
#include "gw_gateway.h"
#include "ls_log.h"
#include "ls_settings.h"

enum { OPT_HELP = 0x2000 };

static void
gateway_usage(FILE *out)
{
	fprintf(out,
	        "Usage: lightstream gateway [OPTIONS]\n"
	        "\n"
	        "Serve WebSocket clients and the HTTP API, authenticating "
	        "through the\n"
	        "broker at --broker-frontend and fanning out through "
	        "--redis (or locally).\n"
	        "SIGTERM closes every connection with 1001 and exits 0.\n"
	        "\n"
	        "Options:\n%s%s"
	        "  -h, --help               this help\n",
	        ls_settings_help_for(LS_OPTS_LISTEN | LS_OPTS_DATA |
	                             LS_OPTS_FABRIC | LS_OPTS_FRONTEND |
	                             LS_OPTS_BUS_PEER),
	        gw_cli_help());
}

int
cmd_gateway(int argc, char **argv)
{
	static const struct option help[] = {
		{ "help", no_argument, NULL, OPT_HELP },
		{ NULL, 0, NULL, 0 },
	};
	struct option extra[16], opts[40];
	ls_settings s;
	ls_error err = { 0 };
	gw_options go = { 0 };
	gw_server *srv = NULL;
	struct ev_loop *loop = NULL;
	void *zctx = NULL;
	cmd_bus bus = { 0 }, fabric = { 0 };
	int status = CMD_EXIT_USAGE, c, n = 0;

	if (cmd_settings_init("gateway", &s) != 0) {
		return CMD_EXIT_FAILURE;
	}
	for (int i = 0; gw_cli_options[i].name; i++) {
		extra[n++] = gw_cli_options[i];
	}
	extra[n++] = help[0];
	extra[n] = help[1];
	ls_settings_options_merge_for(
	        LS_OPTS_LISTEN | LS_OPTS_DATA | LS_OPTS_FABRIC |
	                LS_OPTS_FRONTEND | LS_OPTS_BUS_PEER,
	        extra, opts, 40);
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		int rc = cmd_settings_option("gateway", &s, c, optarg,
		                             gw_cli_option);
		if (rc == 1) {
			continue;
		}
		if (rc < 0) {
			goto out;
		}
		if (c == 'h' || c == OPT_HELP) {
			gateway_usage(stdout);
			status = CMD_EXIT_OK;
			goto out;
		}
		gateway_usage(stderr);
		goto out;
	}
	if (cmd_no_operands("gateway", optind, argc, argv) != 0 ||
	    cmd_apply_logging("gateway", &s) != 0) {
		goto out;
	}
	if (cmd_bus_peer("gateway", &s, s.bus_frontend, &bus) != 0 ||
	    cmd_fabric_peer("gateway", &s, &fabric) != 0) {
		goto out;
	}
	status = CMD_EXIT_FAILURE;
	zctx = zmq_ctx_new();
	loop = ev_default_loop(EVFLAG_AUTO);
	if (zctx == NULL || loop == NULL) {
		fprintf(stderr, "lightstream gateway: cannot start\n");
		goto out;
	}
	go.settings = &s;
	go.zmq_ctx = zctx;
	go.bus_curve = cmd_bus_keys(&bus);
	go.fabric_curve = cmd_bus_keys(&fabric);
	srv = gw_server_new(loop, &go, gw_cli_loops(&s, 1), &err);
	if (srv == NULL) {
		fprintf(stderr, "lightstream gateway: %s\n", err.text);
		status = err.code == LS_ECONFIG ? CMD_EXIT_USAGE
		                                : CMD_EXIT_FAILURE;
		goto out;
	}
	gw_cli_announce("gateway", gw_server_gateway(srv));
	status = gw_cli_run(loop, srv) == 0 ? CMD_EXIT_OK : CMD_EXIT_FAILURE;
out:
	gw_server_destroy(&srv);
	if (zctx != NULL) {
		zmq_ctx_term(zctx);
	}
	cmd_bus_clear(&bus);
	cmd_bus_clear(&fabric);
	ls_settings_clear(&s);
	return status;
}
