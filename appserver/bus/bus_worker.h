/*
 * Service-bus workers (docs/bus.md): each worker is one thread with its own
 * DEALER socket connected to the broker's backend. A worker registers one
 * or more services, each a table of operations, and answers requests
 * with blocking calls (store access happens here, never on a loop thread).
 * Heartbeats both ways; when the broker goes silent the worker reconnects
 * with backoff (1 s doubling to 2 s) and registers again.
 */
#ifndef BUS_WORKER_H
#define BUS_WORKER_H

#include <jansson.h>
#include <stddef.h>

#include "bus_curve.h"
#include "ls_error.h"

/*
 * One operation. args (borrowed) is the JSON array of the request's "a".
 * On success return 0 and set *result (new reference; the worker sends it
 * with status 1). On failure return a negative error and fill err: its
 * text is sent with status 2.
 * ctx is the service's ctx; handlers of different worker threads run
 * concurrently, so whatever ctx points to must be thread-safe.
 */
typedef int (*bus_op_fn)(void *ctx, json_t *args, json_t **result,
                         ls_error *err);

typedef struct bus_operation {
	/* e.g. "generateToken"; "*" (last in the table) serves any operation
	 * and its handler gets the whole request {"o": name, "a": [...]}
	 * instead of the arguments. */
	const char *name;
	bus_op_fn fn;
} bus_operation;

typedef struct bus_service {
	const char *name; /* e.g. "auth" */
	const bus_operation *ops;
	size_t nops;
	void *ctx;
} bus_service;

typedef struct bus_worker_options {
	int heartbeat_ms;     /* 0: default 2500 */
	int liveness;         /* 0: default 3 */
	int reconnect_min_ms; /* 0: default 1000 */
	int reconnect_max_ms; /* 0: default 2000 */
	/* CURVE keys when the broker uses CURVE (copied); NULL: plain. */
	const bus_curve_keys *curve;
} bus_worker_options;

/* A set of worker threads serving the same services. */
typedef struct bus_worker_pool bus_worker_pool;

/*
 * Start nthreads (1-256) workers serving 1-16 services (names must not
 * start with "mmi.") connected to endpoint. zmq_ctx, services (and
 * what they point to) are borrowed and must outlive the pool. opt may be
 * NULL. Returns NULL with err set on failure.
 */
bus_worker_pool *bus_worker_pool_start(void *zmq_ctx, const char *endpoint,
                                       const bus_service *services,
                                       size_t nservices, int nthreads,
                                       const bus_worker_options *opt,
                                       ls_error *err);

/*
 * Ask every worker to send DISCONNECT and stop, wait for the threads and
 * free. Accepts NULL and clears *pool.
 */
void bus_worker_pool_stop(bus_worker_pool **pool);

#endif
