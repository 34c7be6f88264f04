#include "gw_cli.h"

#include <ev.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ls_log.h"

enum {
	GW__OPT_TLS_LISTEN = 0x3000,
	GW__OPT_TLS_CERT,
	GW__OPT_TLS_KEY,
	GW__OPT_STATIC_DIR,
	GW__OPT_ORIGIN,
	GW__OPT_TRUSTED_PROXY,
	GW__OPT_TOKEN_HTTP_REMOTE,
	GW__OPT_GATEWAYS,
	GW__OPT_REUSE_PORT,
};

const struct option gw_cli_options[] = {
	{ "tls-listen", required_argument, NULL, GW__OPT_TLS_LISTEN },
	{ "tls-cert", required_argument, NULL, GW__OPT_TLS_CERT },
	{ "tls-key", required_argument, NULL, GW__OPT_TLS_KEY },
	{ "static-dir", required_argument, NULL, GW__OPT_STATIC_DIR },
	{ "origin", required_argument, NULL, GW__OPT_ORIGIN },
	{ "trusted-proxy", required_argument, NULL, GW__OPT_TRUSTED_PROXY },
	{ "token-http-remote", no_argument, NULL, GW__OPT_TOKEN_HTTP_REMOTE },
	{ "gateways", required_argument, NULL, GW__OPT_GATEWAYS },
	{ "reuse-port", no_argument, NULL, GW__OPT_REUSE_PORT },
	{ NULL, 0, NULL, 0 },
};

static int
gw__set(char **target, const char *value, ls_error *err)
{
	char *copy = strdup(value);

	if (copy == NULL) {
		return ls_error_set(err, -ENOMEM, "out of memory");
	}
	free(*target);
	*target = copy;
	return 1;
}

int
gw_cli_option(ls_settings *s, int opt, const char *arg, ls_error *err)
{
	switch (opt) {
	case GW__OPT_TLS_LISTEN:
		return gw__set(&s->tls_listen, arg, err);
	case GW__OPT_TLS_CERT:
		return gw__set(&s->tls_cert, arg, err);
	case GW__OPT_TLS_KEY:
		return gw__set(&s->tls_key, arg, err);
	case GW__OPT_STATIC_DIR:
		return gw__set(&s->static_dir, arg, err);
	case GW__OPT_ORIGIN:
		return ls_strlist_add(&s->origins, arg) == 0
		               ? 1
		               : ls_error_set(err, -ENOMEM, "out of memory");
	case GW__OPT_TRUSTED_PROXY:
		return ls_strlist_add(&s->trusted_proxies, arg) == 0
		               ? 1
		               : ls_error_set(err, -ENOMEM, "out of memory");
	case GW__OPT_TOKEN_HTTP_REMOTE:
		s->token_http_remote = true;
		return 1;
	case GW__OPT_GATEWAYS: {
		char *end = NULL;
		long n;
		errno = 0;
		n = strtol(arg, &end, 10);
		if (errno != 0 || end == arg || *end != '\0' || n < 1 ||
		    n > LS_SETTINGS_LOOPS_MAX) {
			return ls_error_set(err, LS_ECONFIG,
			                    "--gateways: expected a number "
			                    "from 1 to %d",
			                    LS_SETTINGS_LOOPS_MAX);
		}
		s->loops = n;
		return 1;
	}
	case GW__OPT_REUSE_PORT:
		s->reuse_port = true;
		return 1;
	default:
		return 0;
	}
}

const char *
gw_cli_help(void)
{
	return "  --tls-listen HOST:PORT   TLS listener (wss/https); needs "
	       "--tls-cert/--tls-key\n"
	       "  --tls-cert FILE          PEM certificate chain\n"
	       "  --tls-key FILE           PEM private key\n"
	       "  --static-dir DIR         browser client and demo page\n"
	       "  --origin ORIGIN          allow this WebSocket Origin "
	       "(repeat; default any)\n"
	       "  --trusted-proxy ADDR     trust X-Forwarded-For from "
	       "ADDR[/BITS] (repeat)\n"
	       "  --token-http-remote      issue tokens over plain HTTP to "
	       "non-loopback clients\n"
	       "  --gateways N             gateway event loops (threads) "
	       "sharing the port\n"
	       "                           (serve: one per core; gateway: 1)\n"
	       "  --reuse-port             share the listen port with other "
	       "gateway processes\n";
}

void
gw_cli_announce(const char *command, const gw_gateway *gw)
{
	const char *tls = gw_gateway_tls_address(gw);

	if (tls != NULL) {
		ls_info("lightstream",
		        "%s listening: http://%s/ "
		        "ws://%s/lightstream/websocket "
		        "https://%s/ wss://%s/lightstream/websocket",
		        command, gw_gateway_address(gw),
		        gw_gateway_address(gw), tls, tls);
	} else {
		ls_info("lightstream",
		        "%s listening: http://%s/ "
		        "ws://%s/lightstream/websocket",
		        command, gw_gateway_address(gw),
		        gw_gateway_address(gw));
	}
}

typedef struct gw__run {
	struct ev_loop *loop;
	gw_server *srv;
	ev_signal term, intr;
	bool stopping;
} gw__run;

static void
gw__drained(void *user)
{
	gw__run *r = user;

	ev_break(r->loop, EVBREAK_ALL);
}

static void
gw__signal(struct ev_loop *loop, ev_signal *w, int revents)
{
	gw__run *r = w->data;

	if (r->stopping) {
		/* A second signal: stop now. */
		ev_break(loop, EVBREAK_ALL);
		return;
	}
	r->stopping = true;
	ls_info("lightstream", "signal %d: shutting down", w->signum);
	gw_server_shutdown(r->srv, gw__drained, r);
}

int
gw_cli_run(struct ev_loop *loop, gw_server *srv)
{
	gw__run r;

	memset(&r, 0, sizeof(r));
	r.loop = loop;
	r.srv = srv;
	ev_signal_init(&r.term, gw__signal, SIGTERM);
	r.term.data = &r;
	ev_signal_init(&r.intr, gw__signal, SIGINT);
	r.intr.data = &r;
	ev_signal_start(loop, &r.term);
	ev_signal_start(loop, &r.intr);
	ev_run(loop, 0);
	ev_signal_stop(loop, &r.term);
	ev_signal_stop(loop, &r.intr);
	return gw_server_failed(srv) ? -1 : 0;
}

int
gw_cli_loops(const ls_settings *s, int dflt)
{
	long n = s->loops > 0 ? s->loops : dflt;

	if (n <= 0) {
		n = sysconf(_SC_NPROCESSORS_ONLN);
	}
	if (n < 1) {
		n = 1;
	}
	return (int)(n > LS_SETTINGS_LOOPS_MAX ? LS_SETTINGS_LOOPS_MAX : n);
}
