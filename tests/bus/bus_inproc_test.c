/*
 * The client API over inproc:// with the broker and a worker pool in
 * threads of this process: the same code as the split deployment, only
 * the endpoints differ. Covers libev integration, deadlines, late replies
 * being dropped, cancellation and the plain fd/process interface.
 */
#include <errno.h>
#include <ev.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#include "bus_broker.h"
#include "bus_client.h"
#include "bus_worker.h"
#include "ls_log.h"
#include "ls_test.h"

#define FRONT "inproc://bus-test-front"
#define BACK  "inproc://bus-test-back"

static void *zctx;
static bus_broker *broker;
static pthread_t broker_thread;
static bus_worker_pool *pool;
static atomic_int dropped_replies; /* "reply to unknown request" logs */

static int
op_echo(void *ctx, json_t *args, json_t **result, ls_error *err)
{
	*result = json_incref(args);
	return 0;
}

static int
op_sleep(void *ctx, json_t *args, json_t **result, ls_error *err)
{
	long ms = (long)json_integer_value(json_array_get(args, 0));
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
	*result = json_integer(ms);
	return 0;
}

static int
op_fail(void *ctx, json_t *args, json_t **result, ls_error *err)
{
	return ls_error_set(err, LS_ENOTFOUND, "nothing here");
}

static const bus_operation echo_ops[] = {
	{ "echo", op_echo },
	{ "sleep", op_sleep },
	{ "fail", op_fail },
};
static const bus_service services[] = {
	{ "echo", echo_ops, 3, NULL },
};

static void
log_sink(ls_log_level level, const char *component, const char *message,
         void *user)
{
	if (strstr(message, "reply to unknown request") != NULL) {
		atomic_fetch_add(&dropped_replies, 1);
	}
}

static void *
broker_main(void *arg)
{
	bus_broker_run(broker);
	return NULL;
}

static void
start_bus(int broker_timeout_ms)
{
	bus_broker_options bo = { .heartbeat_ms = 100,
		                  .default_timeout_ms = broker_timeout_ms };
	bus_worker_options wo = { .heartbeat_ms = 100 };
	ls_error err = { 0 };

	zctx = zmq_ctx_new();
	broker = bus_broker_new(zctx, FRONT, BACK, &bo, &err);
	LS_CHECK(broker != NULL);
	pthread_create(&broker_thread, NULL, broker_main, NULL);
	pool = bus_worker_pool_start(zctx, BACK, services, 1, 2, &wo, &err);
	LS_CHECK(pool != NULL);
}

static void
stop_bus(void)
{
	bus_worker_pool_stop(&pool);
	LS_CHECK(pool == NULL);
	bus_broker_stop(broker);
	pthread_join(broker_thread, NULL);
	bus_broker_destroy(&broker);
	LS_CHECK(broker == NULL);
	zmq_ctx_term(zctx);
}

/* Blocking call until the service answers (workers register at start). */
static void
wait_ready(void)
{
	for (int i = 0; i < 200; i++) {
		bus_status st;
		char *reply = NULL;
		if (bus_call(zctx, FRONT, "mmi.service", "echo", 4, 1000, &st,
		             &reply, NULL) == 0 &&
		    st == BUS_OK && strcmp(reply, "200") == 0) {
			free(reply);
			return;
		}
		free(reply);
		struct timespec ts = { 0, 10000000 };
		nanosleep(&ts, NULL);
	}
	LS_CHECK(!"echo service never registered");
}

typedef struct reply {
	int calls;
	bus_status status;
	char body[256];
} reply;

static void
on_reply(bus_status status, const char *body, size_t len, void *user)
{
	reply *r = user;

	r->calls++;
	r->status = status;
	snprintf(r->body, sizeof(r->body), "%s", body);
	LS_CHECK_INT(strlen(body), len);
}

/* Run the loop until *done or the safety bound (a failure) passes. */
static struct ev_loop *loop;
static ev_timer bound;

static void
bound_cb(struct ev_loop *l, ev_timer *w, int revents)
{
	ev_break(l, EVBREAK_ALL);
}

static bool (*until_fn)(void *);
static void *until_arg;
static ev_prepare until_prepare;

static void
until_cb(struct ev_loop *l, ev_prepare *w, int revents)
{
	if (until_fn(until_arg)) {
		ev_break(l, EVBREAK_ALL);
	}
}

static bool
run_until(bool (*fn)(void *), void *arg, double bound_s)
{
	until_fn = fn;
	until_arg = arg;
	ev_timer_init(&bound, bound_cb, bound_s, 0.);
	ev_timer_start(loop, &bound);
	ev_prepare_init(&until_prepare, until_cb);
	ev_prepare_start(loop, &until_prepare);
	if (!fn(arg)) {
		ev_run(loop, 0);
	}
	ev_timer_stop(loop, &bound);
	ev_prepare_stop(loop, &until_prepare);
	return fn(arg);
}

static bool
replied(void *arg)
{
	return ((reply *)arg)->calls > 0;
}

static bool
no_pending(void *arg)
{
	return bus_client_pending(arg) == 0;
}

static bool
one_dropped(void *arg)
{
	return atomic_load(&dropped_replies) >= *(int *)arg;
}

LS_TEST(blocking_call_round_trip)
{
	bus_status st;
	char *body = NULL;
	size_t len = 0;

	start_bus(0);
	wait_ready();
	LS_CHECK_INT(bus_call(zctx, FRONT, "echo",
	                      "{\"o\":\"echo\",\"a\":[1,\"x\"]}", 24, 2000,
	                      &st, &body, &len),
	             0);
	LS_CHECK_INT(st, BUS_OK);
	LS_CHECK_STR(body, "[1,\"x\"]");
	LS_CHECK_INT(len, 7);
	free(body);
	LS_CHECK_INT(bus_call(zctx, FRONT, "echo", "{\"o\":\"fail\"}", 12,
	                      2000, &st, &body, NULL),
	             0);
	LS_CHECK_INT(st, BUS_ERROR);
	LS_CHECK_STR(body, "{\"code\":\"not_found\",\"message\":\"nothing "
	                   "here\"}");
	{
		char msg[64];
		LS_CHECK_INT(bus_reply_error(st, body, strlen(body), msg,
		                             sizeof(msg)),
		             LS_PC_NOT_FOUND);
		LS_CHECK_STR(msg, "nothing here");
	}
	free(body);
	LS_CHECK_INT(bus_call(zctx, FRONT, "nosuch", "{}", 2, 2000, &st, &body,
	                      NULL),
	             0);
	LS_CHECK_INT(st, BUS_NOSERVICE);
	free(body);
	stop_bus();
}

#define MANY 200

LS_TEST(libev_many_requests)
{
	static reply replies[MANY];
	bus_client *c;
	ls_error err = { 0 };

	memset(replies, 0, sizeof(replies));
	start_bus(0);
	wait_ready();
	loop = ev_loop_new(EVFLAG_AUTO);
	c = bus_client_new(zctx, FRONT, &err);
	LS_CHECK(c != NULL);
	LS_CHECK_INT(bus_client_attach_ev(c, loop), 0);
	LS_CHECK_INT(bus_client_attach_ev(c, loop), -EALREADY);
	LS_CHECK_INT(bus_client_next_timeout_ms(c), -1);
	for (int i = 0; i < MANY; i++) {
		json_t *args = json_pack("[i]", i);
		LS_CHECK_INT(bus_client_call(c, "echo", "echo", args, 5000,
		                             on_reply, &replies[i], NULL),
		             0);
		json_decref(args);
	}
	LS_CHECK_INT(bus_client_pending(c), MANY);
	LS_CHECK(bus_client_next_timeout_ms(c) > 0);
	LS_CHECK(bus_client_next_timeout_ms(c) <= 5000);
	LS_CHECK(run_until(no_pending, c, 10.0));
	for (int i = 0; i < MANY; i++) {
		char want[32];
		snprintf(want, sizeof(want), "[%d]", i);
		LS_CHECK_INT(replies[i].calls, 1);
		LS_CHECK_INT(replies[i].status, BUS_OK);
		LS_CHECK_STR(replies[i].body, want);
	}
	LS_CHECK_INT(bus_client_next_timeout_ms(c), -1);
	bus_client_destroy(&c);
	LS_CHECK(c == NULL);
	ev_loop_destroy(loop);
	stop_bus();
}

LS_TEST(deadline_then_late_reply_dropped)
{
	reply slow = { 0 }, after = { 0 };
	json_t *args = json_pack("[i]", 1000);
	bus_client *c;
	int want_dropped;

	start_bus(0);
	wait_ready();
	loop = ev_loop_new(EVFLAG_AUTO);
	c = bus_client_new(zctx, FRONT, NULL);
	LS_CHECK_INT(bus_client_attach_ev(c, loop), 0);
	want_dropped = atomic_load(&dropped_replies) + 1;
	LS_CHECK_INT(bus_client_call(c, "echo", "sleep", args, 50, on_reply,
	                             &slow, NULL),
	             0);
	LS_CHECK(run_until(replied, &slow, 5.0));
	LS_CHECK_INT(slow.status, BUS_TIMEOUT);
	LS_CHECK_INT(bus_client_pending(c), 0);
	/* The worker still answers at 1000 ms: dropped, no second call. */
	LS_CHECK(run_until(one_dropped, &want_dropped, 5.0));
	LS_CHECK_INT(slow.calls, 1);
	LS_CHECK_INT(bus_client_call(c, "echo", "echo", NULL, 2000, on_reply,
	                             &after, NULL),
	             0);
	LS_CHECK(run_until(replied, &after, 5.0));
	LS_CHECK_INT(after.status, BUS_OK);
	LS_CHECK_STR(after.body, "[]");
	json_decref(args);
	bus_client_destroy(&c);
	ev_loop_destroy(loop);
	stop_bus();
}

LS_TEST(cancel_suppresses_callback)
{
	reply cancelled = { 0 }, other = { 0 };
	json_t *args = json_pack("[i]", 100);
	uint64_t id = 0;
	bus_client *c;
	int want_dropped;

	start_bus(0);
	wait_ready();
	loop = ev_loop_new(EVFLAG_AUTO);
	c = bus_client_new(zctx, FRONT, NULL);
	LS_CHECK_INT(bus_client_attach_ev(c, loop), 0);
	want_dropped = atomic_load(&dropped_replies) + 1;
	LS_CHECK_INT(bus_client_call(c, "echo", "sleep", args, 5000, on_reply,
	                             &cancelled, &id),
	             0);
	LS_CHECK(id != 0);
	bus_client_cancel(c, id);
	bus_client_cancel(c, id + 1000); /* unknown: ignored */
	LS_CHECK_INT(bus_client_pending(c), 0);
	LS_CHECK_INT(bus_client_call(c, "echo", "echo", NULL, 5000, on_reply,
	                             &other, NULL),
	             0);
	LS_CHECK(run_until(replied, &other, 5.0));
	LS_CHECK(run_until(one_dropped, &want_dropped, 5.0));
	LS_CHECK_INT(cancelled.calls, 0);
	json_decref(args);
	bus_client_destroy(&c);
	ev_loop_destroy(loop);
	stop_bus();
}

LS_TEST(plain_fd_interface)
{
	reply r = { 0 };
	bus_client *c;

	start_bus(0);
	wait_ready();
	c = bus_client_new(zctx, FRONT, NULL);
	LS_CHECK(bus_client_fd(c) >= 0);
	LS_CHECK_INT(bus_client_request(c, "echo", "{\"o\":\"echo\"}", 12,
	                                5000, on_reply, &r, NULL),
	             0);
	/* The edge-triggered rule: process, then sleep on the fd only when
	 * processing left nothing to do. */
	for (int i = 0; i < 1000 && r.calls == 0; i++) {
		struct pollfd pfd = { bus_client_fd(c), POLLIN, 0 };
		bus_client_process(c);
		if (r.calls == 0) {
			poll(&pfd, 1, 10);
		}
	}
	LS_CHECK_INT(r.calls, 1);
	LS_CHECK_INT(r.status, BUS_OK);
	LS_CHECK_STR(r.body, "[]");
	bus_client_destroy(&c);
	stop_bus();
}

LS_TEST(invalid_requests_refused_without_callback)
{
	reply r = { 0 };
	json_t *notarray = json_object();
	bus_client *c;

	zctx = zmq_ctx_new();
	c = bus_client_new(zctx, FRONT, NULL);
	LS_CHECK_INT(
	        bus_client_request(c, "", "x", 1, 100, on_reply, &r, NULL),
	        -EINVAL);
	LS_CHECK_INT(
	        bus_client_request(c, "echo", "x", 1, 0, on_reply, &r, NULL),
	        -EINVAL);
	LS_CHECK_INT(
	        bus_client_request(c, "echo", "x", 1, 100, NULL, &r, NULL),
	        -EINVAL);
	LS_CHECK_INT(bus_client_call(c, "echo", "op", notarray, 100, on_reply,
	                             &r, NULL),
	             -EINVAL);
	/* Pending requests are forgotten on destroy: no callback. */
	LS_CHECK_INT(
	        bus_client_request(c, "echo", "x", 1, 100, on_reply, &r, NULL),
	        0);
	bus_client_destroy(&c);
	bus_client_destroy(&c); /* NULL: no-op */
	LS_CHECK_INT(r.calls, 0);
	json_decref(notarray);
	zmq_ctx_term(zctx);
}

LS_TEST(stopped_pool_means_broker_timeout)
{
	bus_status st;
	char *body = NULL;

	start_bus(200);
	wait_ready();
	bus_worker_pool_stop(&pool); /* DISCONNECT: the service has none */
	LS_CHECK_INT(bus_call(zctx, FRONT, "echo", "{\"o\":\"echo\"}", 12,
	                      5000, &st, &body, NULL),
	             0);
	LS_CHECK_INT(st, BUS_TIMEOUT);
	free(body);
	LS_CHECK_INT(bus_call(zctx, FRONT, "mmi.service", "echo", 4, 5000, &st,
	                      &body, NULL),
	             0);
	LS_CHECK_STR(body, "404");
	free(body);
	stop_bus();
}

static void __attribute__((constructor)) quiet_logs(void)
{
	ls_log_set_level(LS_LOG_DEBUG);
	ls_log_set_sink(log_sink, NULL);
}

LS_TEST_MAIN()
