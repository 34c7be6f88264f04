/*
 * Worker pool: one thread per worker, each with its own DEALER socket to
 * the broker's backend (the Majordomo worker state machine: READY, then
 * requests and heartbeats; silence for liveness intervals means the broker
 * is gone: reconnect with backoff and register again).
 *
 * Handlers block (store calls), but the broker must keep hearing from a
 * busy worker, or it would take it for dead and fail its request. So each
 * worker's socket is guarded by a mutex that its thread releases only
 * while a handler runs, and one pool thread sends heartbeats on behalf of
 * busy workers. ZeroMQ sockets may change threads under a full memory
 * barrier, which the mutex provides.
 */
#include "bus_worker.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include <zmq.h>

#include "bus_proto.h"
#include "ls_json.h"
#include "ls_log.h"
#include "ls_time.h"

typedef struct bus__worker {
	bus_worker_pool *pool;
	int index;
	pthread_t thread;
	bool started;
	pthread_mutex_t lock; /* the socket and last_send */
	void *sock;
	atomic_int busy; /* a handler runs; the lock is free meanwhile */
	int64_t last_send;
} bus__worker;

struct bus_worker_pool {
	void *ctx;
	char *endpoint;
	const bus_service *services;
	size_t nservices;
	int hb_ms, liveness, rmin_ms, rmax_ms;
	int stopfd; /* eventfd: readable once stopping */
	atomic_bool stopping;
	int hbfd; /* eventfd: the heartbeat thread stops, after the workers */
	atomic_bool hb_stopping;
	int nworkers;
	bus__worker *workers;
	pthread_t hb_thread;
	bool hb_started;
	bool secure; /* CURVE: keys below */
	char server_public[BUS_CURVE_KEY_LEN + 1];
	char public_key[BUS_CURVE_KEY_LEN + 1];
	char secret_key[BUS_CURVE_KEY_LEN + 1];
};

#define BUS__COMPONENT "bus"

static const char bus__proto[BUS__PROTOCOL_LEN] = BUS__PROTOCOL;

/* Send [LSW1, cmd, frames...] on w's socket (lock held). */
static int
bus__worker_send(bus__worker *w, unsigned char cmd, int n,
                 const void *const *data, const size_t *len)
{
	const void *d[BUS__MAX_WORKER_SERVICES + 2] = { bus__proto, &cmd };
	size_t l[BUS__MAX_WORKER_SERVICES + 2] = { BUS__PROTOCOL_LEN, 1 };
	int rc;

	for (int i = 0; i < n && i < BUS__MAX_WORKER_SERVICES; i++) {
		d[i + 2] = data[i];
		l[i + 2] = len[i];
	}
	rc = bus__send(w->sock, n + 2, d, l);
	if (rc == 0) {
		w->last_send = ls_now_ms();
	}
	return rc;
}

static int
bus__worker_connect(bus__worker *w)
{
	bus_worker_pool *p = w->pool;
	const void *names[BUS__MAX_WORKER_SERVICES];
	size_t lens[BUS__MAX_WORKER_SERVICES];
	size_t n = p->nservices;

	w->sock = zmq_socket(p->ctx, ZMQ_DEALER);
	if (w->sock == NULL) {
		return -errno;
	}
	if (p->secure) {
		bus_curve_keys k = { p->server_public, p->public_key,
			             p->secret_key };
		if (bus__curve_client(w->sock, &k) != 0) {
			zmq_close(w->sock);
			w->sock = NULL;
			return -EINVAL;
		}
	}
	if (bus__socket_setup(w->sock) != 0 ||
	    zmq_connect(w->sock, p->endpoint) != 0) {
		int e = errno;
		zmq_close(w->sock);
		w->sock = NULL;
		return -e;
	}
	for (size_t i = 0; i < n; i++) {
		names[i] = p->services[i].name;
		lens[i] = strlen(p->services[i].name);
	}
	return bus__worker_send(w, BUS__READY, (int)n, names, lens);
}

static void
bus__worker_close(bus__worker *w, bool say_goodbye)
{
	if (w->sock == NULL) {
		return;
	}
	if (say_goodbye) {
		/* Give DISCONNECT a moment to leave before the socket goes. */
		int linger = 200;
		bus__worker_send(w, BUS__DISCONNECT, 0, NULL, NULL);
		zmq_setsockopt(w->sock, ZMQ_LINGER, &linger, sizeof(linger));
	}
	zmq_close(w->sock);
	w->sock = NULL;
}

/* Sleep up to ms; returns true when the pool is stopping. */
static bool
bus__pool_sleep(bus_worker_pool *p, int ms)
{
	struct pollfd pfd = { p->stopfd, POLLIN, 0 };

	if (atomic_load(&p->stopping)) {
		return true;
	}
	poll(&pfd, 1, ms);
	return atomic_load(&p->stopping);
}

static const bus_service *
bus__find_service(bus_worker_pool *p, const void *name, size_t len)
{
	for (size_t i = 0; i < p->nservices; i++) {
		const char *s = p->services[i].name;
		if (strlen(s) == len && memcmp(s, name, len) == 0) {
			return &p->services[i];
		}
	}
	return NULL;
}

/*
 * The error reply of a failed operation (docs/bus.md, "Errors"). What
 * went wrong inside the app server (store errors, their paths and SQL) is
 * logged here and never sent: the caller learns the code and a generic
 * message.
 */
static char *
bus__failure(const bus_service *svc, const char *op, int rc,
             const ls_error *err)
{
	ls_proto_code pc = ls_proto_code_of(rc);
	const char *text = err->text[0] ? err->text : ls_strerror(rc);

	switch (pc) {
	case LS_PC_UNAVAILABLE:
		ls_warn(BUS__COMPONENT, "%s.%s: %s", svc->name, op, text);
		return bus__error_body(pc, "the service is unavailable; try "
		                           "again later");
	case LS_PC_TIMEOUT:
		ls_warn(BUS__COMPONENT, "%s.%s: %s", svc->name, op, text);
		return bus__error_body(pc, "the operation timed out; try "
		                           "again later");
	case LS_PC_SERVER_ERROR:
		ls_err(BUS__COMPONENT, "%s.%s: %s", svc->name, op, text);
		return bus__error_body(pc, "internal server error");
	default:
		return bus__error_body(pc, text);
	}
}

/*
 * Decode {"o": op, "a": [...]} and run the operation with the lock
 * released. Returns the status byte; *out is a new string (free()), the
 * JSON result or an error body {"code","message"}; NULL when out of
 * memory.
 */
static int
bus__run_request(bus__worker *w, const bus_service *svc, const char *body,
                 size_t len, char **out)
{
	json_error_t jerr;
	json_t *req = NULL, *args, *result = NULL;
	const char *op;
	const bus_operation *found = NULL;
	ls_error err = { 0 };
	char text[LS_ERROR_TEXT_MAX];
	int rc;

	if (svc == NULL) {
		*out = bus__error_body(LS_PC_NOT_FOUND,
		                       "service not served by this worker");
		return BUS__ST_ERROR;
	}
	req = json_loadb(body, len, 0, &jerr);
	if (req == NULL || !json_is_object(req)) {
		snprintf(text, sizeof(text), "malformed request body: %s",
		         req ? "not a JSON object" : jerr.text);
		*out = bus__error_body(LS_PC_BAD_REQUEST, text);
		goto error;
	}
	op = json_string_value(json_object_get(req, "o"));
	args = json_object_get(req, "a");
	if (op == NULL) {
		*out = bus__error_body(LS_PC_BAD_REQUEST,
		                       "malformed request body: \"o\" must be "
		                       "the operation name");
		goto error;
	}
	if (args != NULL && !json_is_array(args)) {
		*out = bus__error_body(LS_PC_BAD_REQUEST,
		                       "malformed request body: \"a\" must be "
		                       "an array of arguments");
		goto error;
	}
	for (size_t i = 0; i < svc->nops && found == NULL; i++) {
		if (strcmp(svc->ops[i].name, op) == 0 ||
		    strcmp(svc->ops[i].name, "*") == 0) {
			found = &svc->ops[i];
		}
	}
	if (found == NULL) {
		snprintf(text, sizeof(text), "unknown operation '%s.%.64s'",
		         svc->name, op);
		*out = bus__error_body(LS_PC_NOT_FOUND, text);
		goto error;
	}
	if (args == NULL) {
		args = json_array();
		json_object_set_new(req, "a", args);
	}
	atomic_store(&w->busy, 1);
	pthread_mutex_unlock(&w->lock);
	/* "*" serves every operation: it needs the name too. */
	rc = found->fn(svc->ctx, strcmp(found->name, "*") == 0 ? req : args,
	               &result, &err);
	pthread_mutex_lock(&w->lock);
	atomic_store(&w->busy, 0);
	if (rc < 0) {
		json_decref(result);
		*out = bus__failure(svc, found->name, rc, &err);
		goto error;
	}
	/* Numbers as written (1277.14, not 1277.1400000000001). */
	*out = ls_json_dumps(result ? result : json_null(), NULL);
	json_decref(result);
	json_decref(req);
	return *out ? BUS__ST_OK : -ENOMEM;
error:
	json_decref(req);
	return *out ? BUS__ST_ERROR : -ENOMEM;
}

static void
bus__handle_request(bus__worker *w, bus__msg *m)
{
	const bus_service *svc;
	char *out = NULL;
	unsigned char status;
	int rc;

	/* [LSW1, REQUEST, client, requestId, service, body] */
	if (m->n != 6 || bus__frame_size(m, 3) != 8) {
		ls_warn(BUS__COMPONENT, "worker %d: malformed REQUEST dropped",
		        w->index);
		return;
	}
	svc = bus__find_service(w->pool, bus__frame_data(m, 4),
	                        bus__frame_size(m, 4));
	rc = bus__run_request(w, svc, bus__frame_data(m, 5),
	                      bus__frame_size(m, 5), &out);
	if (rc < 0) {
		free(out);
		out = NULL;
		rc = BUS__ST_ERROR;
	}
	status = (unsigned char)rc;
	if (w->sock == NULL) {
		free(out);
		return;
	}
	{
		const char *body =
		        out ? out
		            : "{\"code\":\"server_error\",\"message\":"
		              "\"out of memory\"}";
		const void *d[4] = { bus__frame_data(m, 2),
			             bus__frame_data(m, 3), &status, body };
		size_t l[4] = { bus__frame_size(m, 2), 8, 1, strlen(body) };
		if (bus__worker_send(w, BUS__REPLY, 4, d, l) != 0) {
			ls_warn(BUS__COMPONENT,
			        "worker %d: reply not sent: %s", w->index,
			        zmq_strerror(errno));
		}
	}
	free(out);
}

/* Handle one message from the broker; returns false to reconnect now. */
static bool
bus__worker_message(bus__worker *w, bus__msg *m)
{
	unsigned char cmd;

	if (m->truncated || m->n < 2 ||
	    !bus__frame_eq(m, 0, bus__proto, BUS__PROTOCOL_LEN) ||
	    bus__frame_size(m, 1) != 1) {
		ls_warn(BUS__COMPONENT, "worker %d: malformed message dropped",
		        w->index);
		return true;
	}
	cmd = *(const unsigned char *)bus__frame_data(m, 1);
	switch (cmd) {
	case BUS__REQUEST:
		bus__handle_request(w, m);
		return true;
	case BUS__HEARTBEAT:
		return true;
	case BUS__DISCONNECT:
		ls_info(BUS__COMPONENT, "worker %d: broker asked to reconnect",
		        w->index);
		return false;
	default:
		ls_warn(BUS__COMPONENT,
		        "worker %d: unexpected command 0x%02x dropped",
		        w->index, cmd);
		return true;
	}
}

/* Close the socket and wait *backoff ms (lock released), then double it. */
static void
bus__worker_backoff(bus__worker *w, int *backoff)
{
	bus_worker_pool *p = w->pool;

	bus__worker_close(w, false);
	pthread_mutex_unlock(&w->lock);
	bus__pool_sleep(p, *backoff);
	pthread_mutex_lock(&w->lock);
	*backoff = *backoff * 2 > p->rmax_ms ? p->rmax_ms : *backoff * 2;
}

static void *
bus__worker_main(void *arg)
{
	bus__worker *w = arg;
	bus_worker_pool *p = w->pool;
	int backoff = p->rmin_ms;
	int64_t expiry = 0, next_hb = 0;
	bool heard = false; /* the broker accepted this connection */
	int rc;

	pthread_mutex_lock(&w->lock);
	while (!atomic_load(&p->stopping)) {
		zmq_pollitem_t items[2] = { { NULL, p->stopfd, ZMQ_POLLIN, 0 },
			                    { NULL, -1, ZMQ_POLLIN, 0 } };
		bool reconnect = false;
		int64_t now = ls_now_ms(), wait;

		if (w->sock == NULL) {
			rc = bus__worker_connect(w);
			if (rc != 0) {
				ls_err(BUS__COMPONENT,
				       "worker %d: cannot connect to %s: %s",
				       w->index, p->endpoint,
				       zmq_strerror(-rc));
				bus__worker_backoff(w, &backoff);
				continue;
			}
			heard = false;
			ls_debug(BUS__COMPONENT, "worker %d: ready on %s",
			         w->index, p->endpoint);
			expiry = now + (int64_t)p->hb_ms * p->liveness;
			next_hb = now + p->hb_ms;
		}
		items[1].socket = w->sock;
		wait = (next_hb < expiry ? next_hb : expiry) - now;
		rc = zmq_poll(items, 2, wait < 0 ? 0 : (long)wait);
		if (rc < 0 && errno != EINTR) {
			ls_err(BUS__COMPONENT, "worker %d: poll: %s", w->index,
			       zmq_strerror(errno));
			break;
		}
		if (atomic_load(&p->stopping)) {
			break;
		}
		for (int i = 0; i < 1000 && !reconnect; i++) {
			bus__msg m;
			if (bus__msg_recv(w->sock, &m) != 0) {
				break;
			}
			expiry = ls_now_ms() + (int64_t)p->hb_ms * p->liveness;
			reconnect = !bus__worker_message(w, &m);
			bus__msg_close(&m);
			if (!reconnect) {
				heard = true;
				backoff = p->rmin_ms;
			}
		}
		if (reconnect && heard) {
			/* A broker that lost us (restart, or it took us for
			 * dead): register again at once. */
			bus__worker_close(w, false);
			continue;
		}
		if (reconnect) {
			/* Refused right after READY: do not hammer it. */
			ls_warn(BUS__COMPONENT,
			        "worker %d: broker refused registration; "
			        "retrying in %d ms",
			        w->index, backoff);
			bus__worker_backoff(w, &backoff);
			continue;
		}
		now = ls_now_ms();
		if (now >= expiry) {
			ls_warn(BUS__COMPONENT,
			        "worker %d: broker silent for %d ms; "
			        "reconnecting in %d ms",
			        w->index, p->hb_ms * p->liveness, backoff);
			bus__worker_backoff(w, &backoff);
			continue;
		}
		if (now >= next_hb) {
			bus__worker_send(w, BUS__HEARTBEAT, 0, NULL, NULL);
			next_hb = now + p->hb_ms;
		}
	}
	bus__worker_close(w, true);
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

/* Heartbeats on behalf of workers whose handler is running. */
static void *
bus__heartbeat_main(void *arg)
{
	bus_worker_pool *p = arg;

	/* Runs until the workers are gone: a handler still running while
	 * the pool stops must keep its worker alive in the broker's eyes. */
	while (!atomic_load(&p->hb_stopping)) {
		struct pollfd pfd = { p->hbfd, POLLIN, 0 };
		poll(&pfd, 1, p->hb_ms / 2 > 0 ? p->hb_ms / 2 : 1);
		for (int i = 0; i < p->nworkers; i++) {
			bus__worker *w = &p->workers[i];
			if (!atomic_load(&w->busy) ||
			    pthread_mutex_trylock(&w->lock) != 0) {
				continue;
			}
			if (atomic_load(&w->busy) && w->sock != NULL &&
			    ls_now_ms() - w->last_send >= p->hb_ms) {
				bus__worker_send(w, BUS__HEARTBEAT, 0, NULL,
				                 NULL);
			}
			pthread_mutex_unlock(&w->lock);
		}
	}
	return NULL;
}

bus_worker_pool *
bus_worker_pool_start(void *zmq_ctx, const char *endpoint,
                      const bus_service *services, size_t nservices,
                      int nthreads, const bus_worker_options *opt,
                      ls_error *err)
{
	bus_worker_pool *p;

	if (zmq_ctx == NULL || endpoint == NULL || services == NULL ||
	    nservices == 0 || nservices > BUS__MAX_WORKER_SERVICES ||
	    nthreads <= 0 || nthreads > 256) {
		ls_error_set(err, -EINVAL,
		             "worker pool: need 1-16 services and 1-256 "
		             "threads");
		return NULL;
	}
	for (size_t i = 0; i < nservices; i++) {
		size_t n = services[i].name ? strlen(services[i].name) : 0;
		if (n == 0 || n > BUS__MAX_SERVICE_LEN ||
		    strncmp(services[i].name, "mmi.", 4) == 0) {
			ls_error_set(err, -EINVAL,
			             "worker pool: invalid service name '%s'",
			             services[i].name ? services[i].name : "");
			return NULL;
		}
	}
	{
		/* A bad endpoint is a configuration error: say so now
		 * rather than from every worker's retry loop. */
		void *probe = zmq_socket(zmq_ctx, ZMQ_DEALER);
		int linger = 0, rc = -1;
		if (probe != NULL) {
			zmq_setsockopt(probe, ZMQ_LINGER, &linger,
			               sizeof(linger));
			rc = zmq_connect(probe, endpoint);
		}
		if (rc != 0) {
			ls_error_set(err, -errno,
			             "worker pool: cannot connect to '%s': %s",
			             endpoint, zmq_strerror(errno));
			if (probe != NULL) {
				zmq_close(probe);
			}
			return NULL;
		}
		zmq_close(probe);
	}
	p = calloc(1, sizeof(*p));
	if (p == NULL) {
		ls_error_set(err, -ENOMEM, "out of memory");
		return NULL;
	}
	p->ctx = zmq_ctx;
	if (opt != NULL && opt->curve != NULL) {
		const bus_curve_keys *k = opt->curve;
		if (!bus_curve_key_valid(k->server_public) ||
		    !bus_curve_key_valid(k->public_key) ||
		    !bus_curve_key_valid(k->secret_key)) {
			free(p);
			ls_error_set(err, -EINVAL,
			             "worker pool: invalid CURVE keys");
			return NULL;
		}
		p->secure = true;
		memcpy(p->server_public, k->server_public,
		       sizeof(p->server_public));
		memcpy(p->public_key, k->public_key, sizeof(p->public_key));
		memcpy(p->secret_key, k->secret_key, sizeof(p->secret_key));
	}
	p->services = services;
	p->nservices = nservices;
	p->hb_ms = opt && opt->heartbeat_ms > 0 ? opt->heartbeat_ms
	                                        : BUS__DEFAULT_HB_MS;
	p->liveness = opt && opt->liveness > 0 ? opt->liveness
	                                       : BUS__DEFAULT_LIVENESS;
	p->rmin_ms = opt && opt->reconnect_min_ms > 0 ? opt->reconnect_min_ms
	                                              : 1000;
	/* Short: while it waits with its socket closed, a worker misses a
	 * broker that came back. The broker being silent already costs the
	 * liveness interval, so a longer wait protects nobody. */
	p->rmax_ms = opt && opt->reconnect_max_ms > 0 ? opt->reconnect_max_ms
	                                              : 2000;
	if (p->rmax_ms < p->rmin_ms) {
		p->rmax_ms = p->rmin_ms;
	}
	p->stopfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	p->hbfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	p->endpoint = strdup(endpoint);
	p->workers = calloc((size_t)nthreads, sizeof(*p->workers));
	if (p->stopfd < 0 || p->hbfd < 0 || p->endpoint == NULL ||
	    p->workers == NULL) {
		ls_error_set(err, -ENOMEM, "worker pool: out of resources");
		goto fail;
	}
	for (int i = 0; i < nthreads; i++) {
		bus__worker *w = &p->workers[i];
		w->pool = p;
		w->index = i;
		pthread_mutex_init(&w->lock, NULL);
		p->nworkers++;
		if (pthread_create(&w->thread, NULL, bus__worker_main, w) !=
		    0) {
			ls_error_set(err, -EAGAIN,
			             "worker pool: cannot start a thread");
			goto fail;
		}
		w->started = true;
	}
	if (pthread_create(&p->hb_thread, NULL, bus__heartbeat_main, p) != 0) {
		ls_error_set(err, -EAGAIN,
		             "worker pool: cannot start a thread");
		goto fail;
	}
	p->hb_started = true;
	return p;
fail:
	bus_worker_pool_stop(&p);
	return NULL;
}

void
bus_worker_pool_stop(bus_worker_pool **pp)
{
	bus_worker_pool *p = pp ? *pp : NULL;
	uint64_t one = 1;

	if (p == NULL) {
		return;
	}
	atomic_store(&p->stopping, true);
	if (p->stopfd >= 0 && write(p->stopfd, &one, sizeof(one)) < 0) {
		/* Then the flag stops each loop within an interval. */
	}
	for (int i = 0; i < p->nworkers; i++) {
		if (p->workers[i].started) {
			pthread_join(p->workers[i].thread, NULL);
		}
		pthread_mutex_destroy(&p->workers[i].lock);
	}
	atomic_store(&p->hb_stopping, true);
	if (p->hbfd >= 0 && write(p->hbfd, &one, sizeof(one)) < 0) {
		/* Then it notices the flag within half an interval. */
	}
	if (p->hb_started) {
		pthread_join(p->hb_thread, NULL);
	}
	if (p->stopfd >= 0) {
		close(p->stopfd);
	}
	if (p->hbfd >= 0) {
		close(p->hbfd);
	}
	free(p->workers);
	free(p->endpoint);
	explicit_bzero(p->secret_key, sizeof(p->secret_key));
	free(p);
	*pp = NULL;
}
