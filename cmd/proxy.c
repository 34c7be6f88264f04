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
#include "cmd_bus.h"
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

/* The ZAP handler's view of the allowed keys (borrowed from cmd_bus). */
typedef struct proxy_zap {
	void *ctx;
	const cmd_bus *keys;
	void *sock; /* REP on the ZAP endpoint, bound before the proxy */
} proxy_zap;

/*
 * ZAP (RFC 27): allow a CURVE peer whose public key is on bus.allow. Runs
 * on its own thread until the context ends.
 */
static void *
proxy_zap_main(void *arg)
{
	proxy_zap *z = arg;

	for (;;) {
		zmq_msg_t f[7];
		int n = 0, more = 1;
		size_t ml = sizeof(more);
		const char *status = "400", *text = "key not allowed";

		while (more && n < 7) {
			zmq_msg_init(&f[n]);
			if (zmq_msg_recv(&f[n], z->sock, 0) < 0) {
				for (int i = 0; i <= n; i++) {
					zmq_msg_close(&f[i]);
				}
				return NULL; /* the context ended */
			}
			zmq_getsockopt(z->sock, ZMQ_RCVMORE, &more, &ml);
			n++;
		}
		while (more) { /* more frames than a request has: drop */
			zmq_msg_t x;
			zmq_msg_init(&x);
			zmq_msg_recv(&x, z->sock, 0);
			zmq_msg_close(&x);
			zmq_getsockopt(z->sock, ZMQ_RCVMORE, &more, &ml);
		}
		/* version, request id, domain, address, identity, mechanism,
		 * client key (32 bytes) */
		if (n == 7 && zmq_msg_size(&f[5]) == 5 &&
		    memcmp(zmq_msg_data(&f[5]), "CURVE", 5) == 0 &&
		    zmq_msg_size(&f[6]) == 32) {
			char z85[41];
			zmq_z85_encode(z85, zmq_msg_data(&f[6]), 32);
			for (size_t i = 0; i < z->keys->nallow; i++) {
				if (strcmp(z->keys->allow[i].key, z85) == 0) {
					status = "200";
					text = "OK";
					break;
				}
			}
			if (strcmp(status, "200") != 0) {
				ls_warn(PROXY_LOG, "refused key %s", z85);
			}
		}
		if (n >= 2) {
			zmq_send(z->sock, "1.0", 3, ZMQ_SNDMORE);
			zmq_send(z->sock, zmq_msg_data(&f[1]),
			         zmq_msg_size(&f[1]), ZMQ_SNDMORE);
			zmq_send(z->sock, status, 3, ZMQ_SNDMORE);
			zmq_send(z->sock, text, strlen(text), ZMQ_SNDMORE);
			zmq_send(z->sock, "", 0, ZMQ_SNDMORE);
			zmq_send(z->sock, "", 0, 0);
		}
		for (int i = 0; i < n; i++) {
			zmq_msg_close(&f[i]);
		}
	}
}

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
	        "  --bus-keys FILE          its CURVE key pair (`lightstream "
	        "keygen`)\n"
	        "  --bus-allow ROLE:KEY     allow a gateway's or app "
	        "server's key\n"
	        "                           (repeatable; any role)\n"
	        "  --bus-insecure           plain text, no keys (development "
	        "only)\n"
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
	struct option opts[12] = {
		{ "xsub", required_argument, NULL, OPT_XSUB },
		{ "xpub", required_argument, NULL, OPT_XPUB },
		{ "help", no_argument, NULL, OPT_HELP },
	};
	int nopts = 3;
	const char *xsub_ep = "tcp://127.0.0.1:5560";
	const char *xpub_ep = "tcp://127.0.0.1:5561";
	ls_settings s;
	proxy_stop st = { 0 };
	proxy_zap zap = { 0 };
	cmd_bus keys = { 0 };
	pthread_t th, zth;
	bool th_started = false, zth_started = false;
	void *xsub = NULL, *xpub = NULL;
	int status = CMD_EXIT_USAGE, c, zero = 0, hwm = PROXY_HWM, one = 1;

	if (cmd_settings_init("proxy", &s) != 0) {
		return CMD_EXIT_FAILURE;
	}
	/* Of the shared options only those that mean something here. */
	for (int i = 0; ls_settings_options[i].name != NULL; i++) {
		const char *n = ls_settings_options[i].name;
		if (strcmp(n, "config") == 0 || strcmp(n, "log-level") == 0 ||
		    strcmp(n, "log-format") == 0 ||
		    strcmp(n, "bus-keys") == 0 ||
		    strcmp(n, "bus-allow") == 0 ||
		    strcmp(n, "bus-insecure") == 0) {
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
	    cmd_apply_logging("proxy", &s) != 0 ||
	    cmd_fabric_proxy("proxy", &s, &keys) != 0) {
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
	if (keys.curve) {
		/* CURVE server on both sides; ZAP checks the allow-list. */
		zap.ctx = st.ctx;
		zap.keys = &keys;
		zap.sock = zmq_socket(st.ctx, ZMQ_REP);
		if (zap.sock == NULL ||
		    zmq_bind(zap.sock, "inproc://zeromq.zap.01") != 0 ||
		    pthread_create(&zth, NULL, proxy_zap_main, &zap) != 0) {
			cmd_error("proxy", "cannot start the ZAP handler");
			goto out;
		}
		zth_started = true;
		void *socks[2] = { xsub, xpub };
		for (int i = 0; i < 2; i++) {
			if (zmq_setsockopt(socks[i], ZMQ_CURVE_SERVER, &one,
			                   sizeof(one)) != 0 ||
			    zmq_setsockopt(socks[i], ZMQ_CURVE_SECRETKEY,
			                   keys.secret_key, 40) != 0 ||
			    zmq_setsockopt(socks[i], ZMQ_ZAP_DOMAIN, "fabric",
			                   6) != 0) {
				cmd_error("proxy", "CURVE: %s",
				          zmq_strerror(errno));
				goto out;
			}
		}
		ls_info(PROXY_LOG,
		        "CURVE on; public key %s; %zu allowed key%s",
		        keys.public_key, keys.nallow,
		        keys.nallow == 1 ? "" : "s");
	}
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
	if (zth_started) {
		zmq_ctx_shutdown(st.ctx); /* ends the ZAP thread's recv */
		pthread_join(zth, NULL);
	}
	if (zap.sock != NULL) {
		zmq_close(zap.sock);
	}
	if (st.ctx != NULL) {
		zmq_ctx_term(st.ctx);
	}
	cmd_bus_clear(&keys);
	ls_settings_clear(&s);
	return status;
}
