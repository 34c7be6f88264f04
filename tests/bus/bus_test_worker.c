/*
 * A real bus worker for the integration tests: serves the service `echo`
 * (or --service NAME) through bus_worker_pool with operations
 *   echo ARG...  -> ARG (one argument) or [ARG...]
 *   sleep MS     -> {"slept": MS, "pid": PID} after sleeping MS ms
 *   fail [TEXT]  -> status 2 with TEXT ("failed on request")
 *   pid          -> PID
 * Runs until SIGTERM/SIGINT, then stops the pool (DISCONNECT) and exits 0.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "bus_worker.h"
#include "ls_log.h"

static int
op_echo(void *ctx, json_t *args, json_t **result, ls_error *err)
{
	*result = json_array_size(args) == 1
	                  ? json_incref(json_array_get(args, 0))
	                  : json_incref(args);
	return 0;
}

static int
op_sleep(void *ctx, json_t *args, json_t **result, ls_error *err)
{
	json_t *ms = json_array_get(args, 0);
	struct timespec ts;

	if (!json_is_integer(ms) || json_integer_value(ms) < 0 ||
	    json_integer_value(ms) > 600000) {
		return ls_error_set(err, -EINVAL,
		                    "sleep: expected milliseconds");
	}
	ts.tv_sec = json_integer_value(ms) / 1000;
	ts.tv_nsec = (json_integer_value(ms) % 1000) * 1000000L;
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
	}
	*result = json_pack("{s:O, s:i}", "slept", ms, "pid", (int)getpid());
	return 0;
}

/* A refusal the caller should read: bad_request with the text given. */
static int
op_fail(void *ctx, json_t *args, json_t **result, ls_error *err)
{
	const char *text = json_string_value(json_array_get(args, 0));

	return ls_error_set(err, LS_EBADREQUEST, "%s",
	                    text ? text : "failed on request");
}

/* An internal failure (store down): its text must stay in the log. */
static int
op_broken(void *ctx, json_t *args, json_t **result, ls_error *err)
{
	const char *text = json_string_value(json_array_get(args, 0));

	return ls_error_set(err, LS_EUNAVAILABLE, "%s",
	                    text ? text : "store: /secret/path failed");
}

static int
op_pid(void *ctx, json_t *args, json_t **result, ls_error *err)
{
	*result = json_integer(getpid());
	return 0;
}

static const bus_operation ops[] = {
	{ "echo", op_echo },     { "sleep", op_sleep }, { "fail", op_fail },
	{ "broken", op_broken }, { "pid", op_pid },
};

int
main(int argc, char **argv)
{
	const char *endpoint = NULL, *service = "echo";
	bus_worker_options opt = { 0 };
	int threads = 1;
	const char *server_key = NULL, *keys_path = NULL;
	char pub[BUS_CURVE_KEY_LEN + 1], secret[BUS_CURVE_KEY_LEN + 1];
	bus_curve_keys keys = { NULL, pub, secret };
	bus_service svc;
	bus_worker_pool *pool;
	ls_error err = { 0 };
	sigset_t set;
	void *ctx;
	int sig;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc) {
			threads = atoi(argv[++i]);
		} else if (strcmp(argv[i], "--heartbeat-ms") == 0 &&
		           i + 1 < argc) {
			opt.heartbeat_ms = atoi(argv[++i]);
		} else if (strcmp(argv[i], "--reconnect-ms") == 0 &&
		           i + 1 < argc) {
			opt.reconnect_min_ms = atoi(argv[++i]);
		} else if (strcmp(argv[i], "--curve-server-key") == 0 &&
		           i + 1 < argc) {
			server_key = argv[++i];
		} else if (strcmp(argv[i], "--curve-keys") == 0 &&
		           i + 1 < argc) {
			keys_path = argv[++i];
		} else if (strcmp(argv[i], "--service") == 0 && i + 1 < argc) {
			service = argv[++i];
		} else if (argv[i][0] != '-' && endpoint == NULL) {
			endpoint = argv[i];
		} else {
			fprintf(stderr,
			        "usage: bus_test_worker ENDPOINT [--threads "
			        "N] "
			        "[--heartbeat-ms MS] [--reconnect-ms MS] "
			        "[--service NAME]\n");
			return 2;
		}
	}
	if (endpoint == NULL) {
		fprintf(stderr, "bus_test_worker: missing ENDPOINT\n");
		return 2;
	}
	if (server_key != NULL && keys_path != NULL) {
		if (bus_curve_read_keyfile(keys_path, pub, secret, &err) !=
		    0) {
			fprintf(stderr, "bus_test_worker: %s\n", err.text);
			return 2;
		}
		keys.server_public = server_key;
		opt.curve = &keys;
	}
	ls_log_set_level(LS_LOG_DEBUG);
	/* Signals go to sigwait below, not to the worker threads. */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	svc.name = service;
	svc.ops = ops;
	svc.nops = sizeof(ops) / sizeof(ops[0]);
	svc.ctx = NULL;
	ctx = zmq_ctx_new();
	pool = bus_worker_pool_start(ctx, endpoint, &svc, 1, threads, &opt,
	                             &err);
	if (pool == NULL) {
		fprintf(stderr, "bus_test_worker: %s\n", err.text);
		zmq_ctx_term(ctx);
		return 1;
	}
	fprintf(stderr, "bus_test_worker: %d worker(s) on %s\n", threads,
	        endpoint);
	sigwait(&set, &sig);
	bus_worker_pool_stop(&pool);
	zmq_ctx_term(ctx);
	return 0;
}
