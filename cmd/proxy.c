/*
 * `lightstream proxy`: the ZeroMQ fan-out fabric's forwarder
 * (docs/pubsub.md, "ZeroMQ"). Gateways publish to its XSUB endpoint and
 * subscribe at its XPUB endpoint; subscriptions travel upstream, so each
 * gateway receives only the streams it has subscribers for.
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <zmq.h>

#include "cmd.h"
#include "cmd_util.h"
#include "ls_log.h"
#include "ls_settings.h"

#define PROXY_LOG "proxy"
#define PROXY_HWM 100000

enum {
	OPT_XSUB = 0x2200,
	OPT_XPUB,
	OPT_HELP,
};

typedef struct proxy_stop {
	void *ctx;
	sigset_t set;
	int sig;
} proxy_stop;

static void
proxy_usage(FILE *out)
{
	fprintf(out,
	        "Usage: lightstream proxy [OPTIONS]\n"
	        "\n"
	        "Forward the ZeroMQ pub/sub fabric: gateways started with\n"
	        "  --fabric zmq://HOST:XSUB_PORT,XPUB_PORT\n"
	        "publish to --xsub and subscribe at --xpub. No history, no "
	        "persistence:\n"
	        "see docs/pubsub.md for when to pick it over Redis. SIGTERM "
	        "or "
	        "SIGINT stops.\n"
	        "\n"
	        "Options:\n"
	        "  --xsub EP                where gateways publish "
	        "(tcp://127.0.0.1:5560)\n"
	        "  --xpub EP                where gateways subscribe "
	        "(tcp://127.0.0.1:5561)\n"
	        "  --log-level LEVEL        debug, info, warn, error (info)\n"
	        "  --log-format FORMAT      text or json (text)\n"
	        "  --config FILE            read log.* settings from a "
	        "configuration file\n"
	        "  -h, --help               this help\n"
	        "\n"
	        "Exit status: 0 stopped by a signal; 1 cannot bind; 2 bad "
	        "arguments.\n");
}

/* Waits for SIGTERM/SIGINT, then ends zmq_proxy by ending the context. */
static void *
proxy_signal_main(void *arg)
{
	proxy_stop *st = arg;

	st->sig = cmd_wait_stop(&st->set);
	zmq_ctx_shutdown(st->ctx);
	return NULL;
}

int
cmd_proxy(int argc, char **argv)
{
	struct option opts[8] = {
		{ "xsub", required_argument, NULL, OPT_XSUB },
		{ "xpub", required_argument, NULL, OPT_XPUB },
		{ "help", no_argument, NULL, OPT_HELP },
	};
	int nopts = 3;
	const char *xsub_ep = "tcp://127.0.0.1:5560";
	const char *xpub_ep = "tcp://127.0.0.1:5561";
	ls_settings s;
	proxy_stop st = { 0 };
	pthread_t th;
	bool th_started = false;
	void *xsub = NULL, *xpub = NULL;
	int status = CMD_EXIT_USAGE, c, zero = 0, hwm = PROXY_HWM, one = 1;

	if (cmd_settings_init("proxy", &s) != 0) {
		return CMD_EXIT_FAILURE;
	}
	/* Of the shared options only those that mean something here. */
	for (int i = 0; ls_settings_options[i].name != NULL; i++) {
		const char *n = ls_settings_options[i].name;
		if (strcmp(n, "config") == 0 || strcmp(n, "log-level") == 0 ||
		    strcmp(n, "log-format") == 0) {
			opts[nopts++] = ls_settings_options[i];
		}
	}
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case OPT_XSUB:
			xsub_ep = optarg;
			break;
		case OPT_XPUB:
			xpub_ep = optarg;
			break;
		case 'h':
		case OPT_HELP:
			proxy_usage(stdout);
			status = CMD_EXIT_OK;
			goto out;
		default: {
			/* --config / --log-*: the shared settings' options. */
			int rc = cmd_settings_option("proxy", &s, c, optarg,
			                             NULL);
			if (rc == 1) {
				break;
			}
			if (rc == 0) {
				proxy_usage(stderr);
			}
			goto out;
		}
		}
	}
	if (cmd_no_operands("proxy", optind, argc, argv) != 0 ||
	    cmd_apply_logging("proxy", &s) != 0) {
		goto out;
	}
	status = CMD_EXIT_FAILURE;
	cmd_block_stop_signals(&st.set);
	st.ctx = zmq_ctx_new();
	xsub = st.ctx ? zmq_socket(st.ctx, ZMQ_XSUB) : NULL;
	xpub = st.ctx ? zmq_socket(st.ctx, ZMQ_XPUB) : NULL;
	if (xsub == NULL || xpub == NULL) {
		cmd_error("proxy", "zmq: %s", zmq_strerror(errno));
		goto out;
	}
	zmq_setsockopt(xsub, ZMQ_LINGER, &zero, sizeof(zero));
	zmq_setsockopt(xpub, ZMQ_LINGER, &zero, sizeof(zero));
	zmq_setsockopt(xsub, ZMQ_RCVHWM, &hwm, sizeof(hwm));
	zmq_setsockopt(xpub, ZMQ_SNDHWM, &hwm, sizeof(hwm));
	/* Every (un)subscription is forwarded, not only the first and last
	 * of a topic: a restarted proxy learns them all again as gateways
	 * reconnect. */
	zmq_setsockopt(xpub, ZMQ_XPUB_VERBOSER, &one, sizeof(one));
	if (zmq_bind(xsub, xsub_ep) != 0) {
		cmd_error("proxy", "cannot bind --xsub %s: %s", xsub_ep,
		          zmq_strerror(errno));
		goto out;
	}
	if (zmq_bind(xpub, xpub_ep) != 0) {
		cmd_error("proxy", "cannot bind --xpub %s: %s", xpub_ep,
		          zmq_strerror(errno));
		goto out;
	}
	if (pthread_create(&th, NULL, proxy_signal_main, &st) != 0) {
		cmd_error("proxy", "cannot start the signal thread");
		goto out;
	}
	th_started = true;
	ls_info(PROXY_LOG, "forwarding %s (publishers) -> %s (subscribers)",
	        xsub_ep, xpub_ep);
	zmq_proxy(xsub, xpub, NULL); /* returns when the context ends */
	pthread_join(th, NULL);
	th_started = false;
	ls_info(PROXY_LOG, "%s: stopped", strsignal(st.sig));
	status = CMD_EXIT_OK;
out:
	if (th_started) {
		pthread_kill(th, SIGTERM);
		pthread_join(th, NULL);
	}
	if (xsub != NULL) {
		zmq_close(xsub);
	}
	if (xpub != NULL) {
		zmq_close(xpub);
	}
	if (st.ctx != NULL) {
		zmq_ctx_term(st.ctx);
	}
	ls_settings_clear(&s);
	return status;
}
