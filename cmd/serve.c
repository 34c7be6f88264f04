/*
 * `lightstream serve`: the embedded default (docs/configuration.md) — gateway,
 * broker and app-server workers in one process, joined by ZeroMQ inproc://
 * endpoints: the same code as the split deployment, only the endpoints
 * differ. Configured (non-default) bus endpoints are bound instead, so
 * other gateways and app servers may join this broker; the store and the
 * fabric follow the configuration (SQLite and local by default).
 */
#include <errno.h>
#include <ev.h>
#include <getopt.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#include "as_appserver.h"
#include "bus_broker.h"
#include "bus_client.h"
#include "cmd.h"
#include "cmd_announce.h"
#include "cmd_bus.h"
#include "cmd_util.h"
#include "demo.h"
#include "gw_cli.h"
#include "gw_gateway.h"
#include "ls_json.h"
#include "ls_log.h"
#include "ls_settings.h"
#include "ls_time.h"

#define SERVE_FRONTEND   "inproc://lightstream-frontend"
#define SERVE_BACKEND    "inproc://lightstream-backend"
#define DEFAULT_FRONTEND "tcp://127.0.0.1:5555"
#define DEFAULT_BACKEND  "tcp://127.0.0.1:5556"

enum {
	OPT_HELP = 0x2000,
	OPT_FIXTURE,
	OPT_DEMO,
	OPT_WORKERS,
};

static void
serve_usage(FILE *out)
{
	fprintf(out,
	        "Usage: lightstream serve [OPTIONS]\n"
	        "\n"
	        "Run gateway, service-bus broker and app server in one "
	        "process.\n"
	        "Open the printed http:// address for the demo page.\n"
	        "\n"
	        "Options:\n%s%s"
	        "  --fixture FILE           replace all accounts with FILE's "
	        "at start\n"
	        "  --workers N              app-server worker threads (2)\n"
	        "  --demo                   publish demo weather readings to "
	        "svc1/weather\n"
	        "  -h, --help               this help\n",
	        ls_settings_help(), gw_cli_help());
}

/* ---- announcements ------------------------------------------------------ */

/*
 * The app server's changes reach the gateway's control channel: the
 * workers (their own threads) queue announcements, an ev_async hands them
 * to the loop, which publishes them on the fabric (local: applied at once;
 * Redis: every gateway sharing it). Bounded: past SERVE_RELAY_MAX waiting
 * announcements the queue collapses into one "every account changed",
 * whose re-validations find every revoked token too.
 */
#define SERVE_RELAY_MAX 1024

typedef struct serve_relay {
	pthread_mutex_t lock;
	char *items[SERVE_RELAY_MAX];
	size_t n;
	bool overflow;
	ev_async async;
	struct ev_loop *loop;
	gw_gateway *gw; /* loop thread only */
} serve_relay;

static void
relay_change(const as_change *ch, void *user)
{
	serve_relay *r = user;
	ps_control m;
	char *text;

	cmd_change_control(ch, &m);
	text = ps_control_encode(&m, NULL);
	pthread_mutex_lock(&r->lock);
	if (text != NULL && r->n < SERVE_RELAY_MAX) {
		r->items[r->n++] = text;
		text = NULL;
	} else {
		r->overflow = true;
	}
	pthread_mutex_unlock(&r->lock);
	free(text);
	ev_async_send(r->loop, &r->async);
}

static void
relay_send(serve_relay *r, const char *text)
{
	int rc;

	if (r->gw == NULL) {
		return; /* no gateway (yet / any more): no connections */
	}
	rc = gw_gateway_announce(r->gw, text, strlen(text));
	if (rc != 0) {
		ls_warn("lightstream", "announcement not published: %s",
		        ls_strerror(rc));
	}
}

static void
relay_drain(struct ev_loop *loop, ev_async *w, int revents)
{
	serve_relay *r = w->data;
	char *items[SERVE_RELAY_MAX];
	size_t n;
	bool overflow;

	pthread_mutex_lock(&r->lock);
	n = r->n;
	memcpy(items, r->items, n * sizeof(items[0]));
	r->n = 0;
	overflow = r->overflow;
	r->overflow = false;
	pthread_mutex_unlock(&r->lock);
	if (overflow) {
		ps_control all = { .kind = PS_CONTROL_CHANGED };
		char *text = ps_control_encode(&all, NULL);
		if (text != NULL) {
			relay_send(r, text);
		}
		free(text);
	}
	for (size_t i = 0; i < n; i++) {
		relay_send(r, items[i]);
		free(items[i]);
	}
}

static void
relay_clear(serve_relay *r)
{
	for (size_t i = 0; i < r->n; i++) {
		free(r->items[i]);
	}
	r->n = 0;
}

/*
 * Wait (bounded) until the app-server workers have registered with the
 * broker, so that the first client is not told "no such service".
 */
static void
wait_for_workers(void *zctx, const char *frontend)
{
	int64_t deadline = ls_now_ms() + 5000;

	while (ls_now_ms() < deadline) {
		bus_status st = BUS_ERROR;
		char *reply = NULL;
		size_t len = 0;
		bool ok = bus_call(zctx, frontend, "mmi.service", "auth", 4,
		                   500, &st, &reply, &len) == 0 &&
		          st == BUS_OK && len == 3 &&
		          memcmp(reply, "200", 3) == 0;
		free(reply);
		if (ok) {
			return;
		}
		usleep(20 * 1000);
	}
	ls_warn("lightstream", "app-server workers not registered yet");
}

/* ---- broker thread ------------------------------------------------------ */

static void *
broker_main(void *arg)
{
	bus_broker_run(arg);
	return NULL;
}

int
cmd_serve(int argc, char **argv)
{
	static const struct option own[] = {
		{ "help", no_argument, NULL, OPT_HELP },
		{ "fixture", required_argument, NULL, OPT_FIXTURE },
		{ "demo", no_argument, NULL, OPT_DEMO },
		{ "workers", required_argument, NULL, OPT_WORKERS },
		{ NULL, 0, NULL, 0 },
	};
	struct option extra[24], opts[48];
	ls_settings s;
	ls_error err = { 0 };
	gw_options go = { 0 };
	as_appserver_options ao = { 0 };
	bus_broker_options bo = { 0 };
	gw_server *srv = NULL;
	as_appserver *as = NULL;
	bus_broker *broker = NULL;
	pthread_t broker_thread;
	bool broker_running = false, demo = false;
	serve_demo *d = NULL;
	static serve_relay relay;
	bool relay_on = false;
	struct ev_loop *loop = NULL;
	const char *fixture = NULL, *frontend, *backend;
	char *store_uri = NULL;
	long workers = -1;
	void *zctx = NULL;
	cmd_bus bus = { 0 }, fabric = { 0 };
	int status = CMD_EXIT_USAGE, c, n = 0, rc;

	memset(&d, 0, sizeof(d));
	if (cmd_settings_init("serve", &s) != 0) {
		return CMD_EXIT_FAILURE;
	}
	for (int i = 0; gw_cli_options[i].name; i++) {
		extra[n++] = gw_cli_options[i];
	}
	for (int i = 0; own[i].name; i++) {
		extra[n++] = own[i];
	}
	memset(&extra[n], 0, sizeof(extra[n]));
	ls_settings_options_merge(extra, opts, 48);
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		rc = cmd_settings_option("serve", &s, c, optarg,
		                         gw_cli_option);
		if (rc == 1) {
			continue;
		}
		if (rc < 0) {
			goto out;
		}
		switch (c) {
		case OPT_FIXTURE:
			fixture = optarg;
			break;
		case OPT_DEMO:
			demo = true;
			break;
		case OPT_WORKERS:
			if (cmd_option_long("serve", "workers", optarg, 1, 256,
			                    NULL, &workers) != 0) {
				goto out;
			}
			break;
		case 'h':
		case OPT_HELP:
			serve_usage(stdout);
			status = CMD_EXIT_OK;
			goto out;
		default:
			serve_usage(stderr);
			goto out;
		}
	}
	if (cmd_no_operands("serve", optind, argc, argv) != 0 ||
	    cmd_apply_logging("serve", &s) != 0) {
		goto out;
	}
	status = CMD_EXIT_FAILURE;
	if (s.store_uri == NULL) {
		int mk = cmd_make_data_dir(s.data_dir);
		if (mk != 0) {
			fprintf(stderr,
			        "lightstream serve: data directory %s: %s\n",
			        s.data_dir, strerror(-mk));
			goto out;
		}
	}
	store_uri = ls_settings_store_uri(&s);
	zctx = zmq_ctx_new();
	loop = ev_default_loop(EVFLAG_AUTO);
	if (store_uri == NULL || zctx == NULL || loop == NULL) {
		fprintf(stderr, "lightstream serve: cannot start\n");
		goto out;
	}
	/* The pieces in this process use inproc:// (no handshake); the
	 * configured endpoints, the ipc:// socket of `admin --data` and
	 * CURVE are for other processes (cmd_bus.h). */
	frontend = SERVE_FRONTEND;
	backend = SERVE_BACKEND;
	bo.heartbeat_ms = (int)s.heartbeat_ms;
	/* The broker's deadline (also of requests a worker holds) is the
	 * clients' (bus.timeout_ms), as for `lightstream broker`. */
	bo.default_timeout_ms = (int)s.bus_timeout_ms;
	rc = cmd_bus_serve(
	        "serve", &s,
	        strcmp(s.bus_frontend, DEFAULT_FRONTEND) ? s.bus_frontend
	                                                 : NULL,
	        strcmp(s.bus_backend, DEFAULT_BACKEND) ? s.bus_backend : NULL,
	        &bo, &bus);
	if (rc == 0) {
		rc = cmd_fabric_peer("serve", &s, &fabric);
	}
	if (rc != 0) {
		status = rc;
		goto out;
	}
	broker = bus_broker_new(zctx, frontend, backend, &bo, &err);
	if (broker == NULL) {
		fprintf(stderr, "lightstream serve: broker: %s\n", err.text);
		goto out;
	}
	if (pthread_create(&broker_thread, NULL, broker_main, broker) != 0) {
		fprintf(stderr,
		        "lightstream serve: cannot start the broker\n");
		goto out;
	}
	broker_running = true;
	ao.store_uri = store_uri;
	ao.backend = backend;
	ao.workers = (int)(workers > 0 ? workers : s.workers);
	ao.issue_workers = (int)s.issue_workers;
	ao.fixture = fixture;
	pthread_mutex_init(&relay.lock, NULL);
	ev_async_init(&relay.async, relay_drain);
	relay.async.data = &relay;
	relay.loop = loop;
	ev_async_start(loop, &relay.async);
	relay_on = true;
	ao.on_change = relay_change;
	ao.on_change_user = &relay;
	as = as_appserver_start(zctx, &ao, &err);
	if (as == NULL) {
		fprintf(stderr, "lightstream serve: app server: %s\n",
		        err.text);
		status = err.code == LS_ECONFIG || err.code == LS_EBADREQUEST
		                 ? CMD_EXIT_USAGE
		                 : CMD_EXIT_FAILURE;
		goto out;
	}
	wait_for_workers(zctx, frontend);
	go.settings = &s;
	go.zmq_ctx = zctx;
	go.bus_endpoint = frontend;
	go.fabric_curve = cmd_bus_keys(&fabric);
	srv = gw_server_new(loop, &go, gw_cli_loops(&s, 0), &err);
	if (srv == NULL) {
		fprintf(stderr, "lightstream serve: %s\n", err.text);
		status = err.code == LS_ECONFIG ? CMD_EXIT_USAGE
		                                : CMD_EXIT_FAILURE;
		goto out;
	}
	relay.gw = gw_server_gateway(srv);
	if (demo) {
		d = serve_demo_start(loop, gw_server_gateway(srv), zctx,
		                     frontend);
	}
	gw_cli_announce(demo ? "serve (demo publisher on svc1/weather)"
	                     : "serve",
	                gw_server_gateway(srv));
	status = gw_cli_run(loop, srv) == 0 ? CMD_EXIT_OK : CMD_EXIT_FAILURE;
out:
	serve_demo_stop(&d);
	relay.gw = NULL;
	gw_server_destroy(&srv);
	as_appserver_stop(&as);
	if (relay_on) {
		ev_async_stop(loop, &relay.async);
		relay_clear(&relay);
		pthread_mutex_destroy(&relay.lock);
	}
	if (broker_running) {
		bus_broker_stop(broker);
		pthread_join(broker_thread, NULL);
	}
	bus_broker_destroy(&broker);
	if (zctx != NULL) {
		zmq_ctx_term(zctx);
	}
	free(store_uri);
	if (bus.ipc != NULL) {
		unlink(bus.ipc + 6); /* "ipc://" */
	}
	cmd_bus_clear(&bus);
	cmd_bus_clear(&fabric);
	ls_settings_clear(&s);
	return status;
}
