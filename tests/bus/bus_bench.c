/*
 * Service-bus throughput and latency: a broker and a worker pool in
 * threads, one client on a libev loop keeping WINDOW requests in flight
 * (the gateway's pattern). Not a test: it reports numbers.
 *
 *   bus_bench [--tcp] [--workers N] [--window W] [--requests N]
 */
#include <ev.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "bus_broker.h"
#include "bus_client.h"
#include "bus_worker.h"
#include "ls_log.h"
#include "ls_time.h"

static int
op_echo(void *ctx, json_t *args, json_t **result, ls_error *err)
{
	*result = json_incref(args);
	return 0;
}

static const bus_operation ops[] = { { "echo", op_echo } };
static const bus_service services[] = { { "echo", ops, 1, NULL } };

static struct {
	struct ev_loop *loop;
	bus_client *client;
	json_t *args;
	long sent, done, total, window, failed;
	int64_t *start_ns; /* per request, for latency */
	int64_t *lat_ns;
} bench;

static void on_reply(bus_status status, const char *body, size_t len,
                     void *user);

static void
fill(void)
{
	while (bench.sent < bench.total &&
	       bench.sent - bench.done < bench.window) {
		long i = bench.sent++;
		bench.start_ns[i] = ls_now_ns();
		if (bus_client_call(bench.client, "echo", "echo", bench.args,
		                    10000, on_reply, (void *)(intptr_t)i,
		                    NULL) != 0) {
			bench.failed++;
			bench.done++;
		}
	}
}

static void
on_reply(bus_status status, const char *body, size_t len, void *user)
{
	long i = (long)(intptr_t)user;

	bench.lat_ns[bench.done] = ls_now_ns() - bench.start_ns[i];
	bench.failed += status != BUS_OK;
	if (++bench.done == bench.total) {
		ev_break(bench.loop, EVBREAK_ALL);
	} else {
		fill();
	}
}

static void *
broker_main(void *arg)
{
	bus_broker_run(arg);
	return NULL;
}

static int
cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return (x > y) - (x < y);
}

int
main(int argc, char **argv)
{
	const char *fe = "inproc://bench-front", *be = "inproc://bench-back";
	int workers = 2;
	ls_error err = { 0 };
	bus_worker_pool *pool;
	bus_broker *broker;
	pthread_t thread;
	int64_t t0, t1;
	void *ctx;

	bench.window = 64;
	bench.total = 50000;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--tcp") == 0) {
			fe = "tcp://127.0.0.1:19555";
			be = "tcp://127.0.0.1:19556";
		} else if (strcmp(argv[i], "--workers") == 0 && i + 1 < argc) {
			workers = atoi(argv[++i]);
		} else if (strcmp(argv[i], "--window") == 0 && i + 1 < argc) {
			bench.window = atol(argv[++i]);
		} else if (strcmp(argv[i], "--requests") == 0 &&
		           i + 1 < argc) {
			bench.total = atol(argv[++i]);
		} else {
			fprintf(stderr,
			        "usage: bus_bench [--tcp] [--workers N] "
			        "[--window W] [--requests N]\n");
			return 2;
		}
	}
	if (bench.total < 1 || bench.window < 1 || workers < 1) {
		fprintf(stderr, "bus_bench: counts must be positive\n");
		return 2;
	}
	ls_log_set_level(LS_LOG_WARN);
	ctx = zmq_ctx_new();
	broker = bus_broker_new(ctx, fe, be, NULL, &err);
	if (broker == NULL) {
		fprintf(stderr, "bus_bench: %s\n", err.text);
		return 1;
	}
	pthread_create(&thread, NULL, broker_main, broker);
	pool = bus_worker_pool_start(ctx, be, services, 1, workers, NULL,
	                             &err);
	for (;;) {
		bus_status st;
		char *reply = NULL;
		int ready = bus_call(ctx, fe, "mmi.service", "echo", 4, 1000,
		                     &st, &reply, NULL) == 0 &&
		            strcmp(reply, "200") == 0;
		free(reply);
		if (ready) {
			break;
		}
	}
	bench.loop = ev_default_loop(0);
	bench.client = bus_client_new(ctx, fe, &err);
	bus_client_attach_ev(bench.client, bench.loop);
	bench.args = json_pack("[s]", "a 64-byte argument, about the size of "
	                              "a token request......");
	bench.start_ns = calloc((size_t)bench.total, sizeof(int64_t));
	bench.lat_ns = calloc((size_t)bench.total, sizeof(int64_t));
	t0 = ls_now_ns();
	fill();
	ev_run(bench.loop, 0);
	t1 = ls_now_ns();
	qsort(bench.lat_ns, (size_t)bench.total, sizeof(int64_t), cmp_i64);
	printf("%s, %d workers, %ld in flight: %.0f requests/s, latency p50 "
	       "%.0f us p99 %.0f us, %ld failed\n",
	       fe[0] == 'i' ? "inproc" : "tcp", workers, bench.window,
	       bench.total / ((t1 - t0) / 1e9),
	       bench.lat_ns[bench.total / 2] / 1e3,
	       bench.lat_ns[bench.total * 99 / 100] / 1e3, bench.failed);
	bus_client_destroy(&bench.client);
	json_decref(bench.args);
	free(bench.start_ns);
	free(bench.lat_ns);
	bus_worker_pool_stop(&pool);
	bus_broker_stop(broker);
	pthread_join(thread, NULL);
	bus_broker_destroy(&broker);
	zmq_ctx_term(ctx);
	return bench.failed ? 1 : 0;
}
