/*
 * libFuzzer target for the service bus: the broker's handling of client
 * requests and worker messages, and the worker's handling of broker
 * messages, over real ZeroMQ sockets (inproc) in one thread.
 *
 * The broker's translation unit is compiled into this file so that its
 * static handlers (bus__frontend, bus__backend, bus__expire, ...) can be
 * pumped without its thread; nothing of bus_broker.c is changed. Three
 * client DEALERs ("c0".."c2") are connected to the frontend and three
 * worker DEALERs ("w0".."w2") to the backend; whatever the broker sends to
 * "w0" and "w1" is handled by the real worker code (fuzz_worker_glue.c),
 * whose replies go back through the broker to the clients; "w2" answers
 * only what the input makes it send, so it holds requests.
 *
 * Input: a sequence of records; each starts with one byte op.
 *   op & 3 == 0: client (op >> 2) & 3 sends a message (frames below);
 *                client 3 is a real bus_client: bus_client_request()
 *                with frame 0 as the service and frame 1 as the body
 *   op & 3 == 1: worker peer (op >> 2) % 3 sends a message
 *   op & 3 == 2: the message is handed directly to the worker code, as if
 *                a broker had sent it
 *   op & 3 == 3: one byte t: the clock moves t * 100 ms (deadlines,
 *                heartbeats and worker expiry run)
 * A message is one byte n (frames, n % 33; 0: none) then n frames, each
 * one length byte (255: a 16-bit little-endian length follows) and the
 * bytes.
 *
 * Checked after every step: the broker's lists and counters agree with
 * each other; everything a client or worker receives is well formed; no
 * client receives more replies than requests were sent; the bus_client
 * calls back at most once per request, and exactly its unanswered
 * requests are pending.
 */
#include "bus_broker.c"

#include <stdint.h>

#include "bus_client.h"
#include "fuzz_worker_glue.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FZ_PEERS      3
#define FZ_MAX_FRAMES 32
#define FZ_ROUNDS     64
#define FZ_SLOW       2 /* this worker peer answers only as the input says */
#define FZ_API_SLOTS  256

static void *fz_ctx;
static bus_broker *fz_b;
static void *fz_client[FZ_PEERS];
static void *fz_worker[FZ_PEERS];
static int64_t fz_offset;  /* virtual clock: ms ahead of ls_now_ms() */
static size_t fz_requests; /* messages clients sent in this input */
static size_t fz_replies;  /* replies clients received */

/* A real bus_client: its callbacks must run at most once per request. */
static bus_client *fz_api;
static int fz_api_n;
static uint64_t fz_api_id[FZ_API_SLOTS];
static int fz_api_calls[FZ_API_SLOTS];

static int
fz_op_echo(void *ctx, json_t *args, json_t **result, ls_error *err)
{
	*result = json_deep_copy(args);
	return *result ? 0 : ls_error_set(err, -ENOMEM, "out of memory");
}

static int
fz_op_fail(void *ctx, json_t *args, json_t **result, ls_error *err)
{
	const char *why = json_string_value(json_array_get(args, 0));

	return ls_error_set(err, LS_EBADREQUEST, "%s", why ? why : "failed");
}

static const bus_operation fz_ops[] = {
	{ "echo", fz_op_echo },
	{ "fail", fz_op_fail },
};

static const bus_service fz_services[] = {
	{ "echo", fz_ops, 2, NULL },
	{ "auth", fz_ops, 1, NULL },
};

static void
fz_quiet(ls_log_level level, const char *component, const char *message,
         void *user)
{
}

static void *
fz_peer(int type, const char *id, const char *endpoint)
{
	void *s = zmq_socket(fz_ctx, type);
	int linger = 0;

	if (s == NULL ||
	    zmq_setsockopt(s, ZMQ_ROUTING_ID, id, strlen(id)) != 0 ||
	    zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof(linger)) != 0 ||
	    zmq_connect(s, endpoint) != 0) {
		abort();
	}
	return s;
}

static void
fz_setup(void)
{
	bus_broker_options opt = { .queue_limit = 3 };
	ls_error err;

	ls_log_set_sink(fz_quiet, NULL);
	fz_ctx = zmq_ctx_new();
	fz_b = bus_broker_new(fz_ctx, "inproc://fz-front", "inproc://fz-back",
	                      &opt, &err);
	if (fz_ctx == NULL || fz_b == NULL) {
		abort();
	}
	fz_api = bus_client_new(fz_ctx, "inproc://fz-front", &err);
	if (fz_api == NULL) {
		abort();
	}
	for (int i = 0; i < FZ_PEERS; i++) {
		char id[3] = { 'c', (char)('0' + i), '\0' };
		fz_client[i] = fz_peer(ZMQ_DEALER, id, "inproc://fz-front");
		id[0] = 'w';
		fz_worker[i] = fz_peer(ZMQ_DEALER, id, "inproc://fz-back");
	}
}

static void
fz_api_reply(bus_status status, const char *body, size_t len, void *user)
{
	int slot = (int)(uintptr_t)user;

	if (slot < 0 || slot >= fz_api_n || ++fz_api_calls[slot] > 1 ||
	    status < BUS_OK || status > BUS_NOSERVICE || body == NULL ||
	    body[len] != '\0') {
		abort();
	}
}

/* The client API sends [service = frame 0, body = frame 1]. */
static void
fz_api_request(zmq_msg_t *f, int n)
{
	char svc[BUS__MAX_SERVICE_LEN + 2];
	size_t len = n > 0 ? zmq_msg_size(&f[0]) : 0;
	uint64_t id;

	if (fz_api_n >= FZ_API_SLOTS) {
		return;
	}
	if (len >= sizeof(svc)) {
		len = sizeof(svc) - 1;
	}
	if (len > 0) {
		memcpy(svc, zmq_msg_data(&f[0]), len);
	}
	svc[len] = '\0';
	if (bus_client_request(fz_api, svc, n > 1 ? zmq_msg_data(&f[1]) : "",
	                       n > 1 ? zmq_msg_size(&f[1]) : 0, 60000,
	                       fz_api_reply, (void *)(uintptr_t)fz_api_n,
	                       &id) == 0) {
		fz_api_id[fz_api_n++] = id;
	}
}

/* Requests the client API has not answered are exactly its pending. */
static void
fz_api_check(void)
{
	size_t open = 0;

	for (int i = 0; i < fz_api_n; i++) {
		open += fz_api_calls[i] == 0;
	}
	if (open != bus_client_pending(fz_api)) {
		abort();
	}
}

/* The broker's state must agree with itself. */
static void
fz_check_state(void)
{
	bus_broker *b = fz_b;
	int nworkers = 0, nservices = 0, nidle = 0;
	bus__bworker *prev = NULL;

	/* The available list: workers holding fewer than BUS__PREFETCH. */
	for (bus__bworker *w = b->idle_head; w != NULL; w = w->inext) {
		if (!w->idle || w->nheld >= BUS__PREFETCH ||
		    w->iprev != prev || ++nidle > b->nworkers) {
			abort();
		}
		prev = w;
	}
	if (b->idle_tail != prev) {
		abort();
	}
	for (bus__bworker *w = b->workers; w != NULL; w = w->next) {
		nworkers++;
		/* Available means it may take one more now; one that is not
		 * available must hold something, or it would never get work
		 * again (a worker holds one request until it has answered
		 * one; its capacity only grows while it lives). */
		if (w->nheld < 0 || w->nheld > BUS__PREFETCH ||
		    (!w->gone && w->idle &&
		     w->nheld >= bus__capacity(b, w, ls_now_ms())) ||
		    (!w->gone && !w->idle && w->nheld == 0) ||
		    w->nservices < 1 ||
		    w->nservices > BUS__MAX_WORKER_SERVICES) {
			abort();
		}
		for (int i = 0; i < w->nheld; i++) {
			if (w->held[i] == NULL ||
			    !bus__serves(w, w->held_svc[i])) {
				abort();
			}
		}
	}
	for (bus__service *s = b->services; s != NULL; s = s->next) {
		int qlen = 0, serving = 0;
		bus__request *last = NULL;

		nservices++;
		for (bus__request *r = s->qhead; r != NULL; r = r->next) {
			qlen++;
			last = r;
		}
		for (bus__bworker *w = b->workers; w != NULL; w = w->next) {
			serving += bus__serves(w, s);
		}
		/* No request waits while an available worker serves it. */
		for (bus__bworker *w = b->idle_head; qlen > 0 && w != NULL;
		     w = w->inext) {
			if (!w->gone && bus__serves(w, s)) {
				abort();
			}
		}
		if (qlen != s->qlen || s->qtail != last ||
		    qlen > b->queue_limit || serving != s->nworkers ||
		    s->name_len == 0 || s->name_len > BUS__MAX_SERVICE_LEN ||
		    strlen(s->name) != s->name_len) {
			abort();
		}
	}
	if (nworkers != b->nworkers || nservices != b->nservices) {
		abort();
	}
}

/* A reply to a client: [requestId, status, body]. */
static void
fz_check_reply(bus__msg *m)
{
	unsigned char st;

	if (m->truncated || m->n != 3 || bus__frame_size(m, 0) != 8 ||
	    bus__frame_size(m, 1) != 1) {
		abort();
	}
	st = *(const unsigned char *)bus__frame_data(m, 1);
	if (st < BUS__ST_OK || st > BUS__ST_NOSERVICE) {
		abort();
	}
	if (++fz_replies > fz_requests) {
		abort(); /* a request answered twice, or an invented reply */
	}
}

/* A broker message to a worker: [LSW1, cmd, ...]. */
static void
fz_check_to_worker(bus__msg *m)
{
	unsigned char cmd;

	if (m->truncated || m->n < 2 ||
	    !bus__frame_eq(m, 0, BUS__PROTOCOL, BUS__PROTOCOL_LEN) ||
	    bus__frame_size(m, 1) != 1) {
		abort();
	}
	cmd = *(const unsigned char *)bus__frame_data(m, 1);
	if (cmd == BUS__REQUEST) {
		size_t svc = bus__frame_size(m, 4);
		if (m->n != 6 || bus__frame_size(m, 3) != 8 || svc == 0 ||
		    svc > BUS__MAX_SERVICE_LEN) {
			abort();
		}
	} else if ((cmd != BUS__HEARTBEAT && cmd != BUS__DISCONNECT) ||
	           m->n != 2) {
		abort();
	}
}

/* Move messages until nothing moves: broker, workers, clients. */
static void
fz_pump(void)
{
	for (int round = 0; round < FZ_ROUNDS; round++) {
		int moved = 0;
		bus__msg m;

		while (bus__msg_recv(fz_b->back, &m) == 0) {
			bus__backend(fz_b, &m);
			bus__msg_close(&m);
			fz_check_state();
			moved++;
		}
		while (bus__msg_recv(fz_b->front, &m) == 0) {
			bus__frontend(fz_b, &m);
			bus__msg_close(&m);
			fz_check_state();
			moved++;
		}
		bus__purge_gone(fz_b);
		for (int i = 0; i < FZ_PEERS; i++) {
			while (bus__msg_recv(fz_worker[i], &m) == 0) {
				fz_check_to_worker(&m);
				if (i != FZ_SLOW) {
					fz_worker_message(fz_worker[i],
					                  fz_services, 2, &m);
				}
				bus__msg_close(&m);
				moved++;
			}
			while (bus__msg_recv(fz_client[i], &m) == 0) {
				fz_check_reply(&m);
				bus__msg_close(&m);
				moved++;
			}
		}
		{
			size_t before = bus_client_pending(fz_api);
			bus_client_process(fz_api);
			moved += before != bus_client_pending(fz_api);
		}
		fz_check_state();
		fz_api_check();
		if (moved == 0) {
			return;
		}
	}
}

/* Forget everything between inputs: each input starts from scratch. */
static void
fz_reset(void)
{
	bus_broker *b = fz_b;
	bus__msg m;

	while (b->workers) {
		bus__bworker *w = b->workers;
		b->workers = w->next;
		for (int i = 0; i < w->nheld; i++) {
			free(w->held[i]);
		}
		free(w);
	}
	while (b->services) {
		bus__service *s = b->services;
		b->services = s->next;
		while (s->qhead) {
			bus__request *r = s->qhead;
			s->qhead = r->next;
			free(r);
		}
		free(s);
	}
	b->nworkers = b->nservices = 0;
	b->idle_head = b->idle_tail = NULL;
	b->log_window = 0;
	b->log_count = b->log_suppressed = 0;
	b->hb_at = 0;
	for (int i = 0; i < FZ_PEERS; i++) {
		while (bus__msg_recv(fz_worker[i], &m) == 0) {
			bus__msg_close(&m);
		}
		while (bus__msg_recv(fz_client[i], &m) == 0) {
			bus__msg_close(&m);
		}
	}
	while (bus__msg_recv(b->back, &m) == 0) {
		bus__msg_close(&m);
	}
	while (bus__msg_recv(b->front, &m) == 0) {
		bus__msg_close(&m);
	}
	for (int i = 0; i < fz_api_n; i++) {
		if (fz_api_calls[i] == 0) {
			bus_client_cancel(fz_api, fz_api_id[i]);
		}
		fz_api_calls[i] = 0;
	}
	fz_api_n = 0;
	bus_client_process(fz_api);
	if (bus_client_pending(fz_api) != 0) {
		abort();
	}
	fz_offset = 0;
	fz_requests = fz_replies = 0;
}

/* One message read from the input: up to FZ_MAX_FRAMES frames. */
typedef struct fz_frames {
	int n;
	zmq_msg_t f[FZ_MAX_FRAMES];
} fz_frames;

static void
fz_frames_close(fz_frames *m)
{
	for (int i = 0; i < m->n; i++) {
		zmq_msg_close(&m->f[i]);
	}
	m->n = 0;
}

/* Read one message of the input into m. 0 or -1 (end of input). */
static int
fz_read_msg(const uint8_t **p, const uint8_t *end, fz_frames *m)
{
	int n;

	m->n = 0;
	if (*p >= end) {
		return -1;
	}
	n = *(*p)++ % (FZ_MAX_FRAMES + 1);
	for (int i = 0; i < n && *p < end; i++) {
		size_t len = *(*p)++;

		if (len == 255) {
			if (end - *p < 2) {
				break;
			}
			len = (size_t)(*p)[0] | (size_t)(*p)[1] << 8;
			*p += 2;
		}
		if ((size_t)(end - *p) < len) {
			len = (size_t)(end - *p);
		}
		if (zmq_msg_init_size(&m->f[m->n], len) != 0) {
			abort();
		}
		memcpy(zmq_msg_data(&m->f[m->n]), *p, len);
		*p += len;
		m->n++;
	}
	return 0;
}

/* Send the frames of m from sock (the frames are consumed). */
static void
fz_send(void *sock, fz_frames *m)
{
	for (int i = 0; i < m->n; i++) {
		int more = i + 1 < m->n ? ZMQ_SNDMORE : 0;
		if (zmq_msg_send(&m->f[i], sock, ZMQ_DONTWAIT | more) < 0) {
			abort();
		}
	}
	m->n = 0;
}

/* Hand m to the worker code as bus__msg_recv would have received it. */
static void
fz_to_worker_code(fz_frames *in)
{
	bus__msg m = { .n = 0, .truncated = in->n > BUS__MAX_FRAMES };

	for (int i = 0; i < in->n && i < BUS__MAX_FRAMES; i++) {
		zmq_msg_init(&m.f[i]);
		zmq_msg_move(&m.f[i], &in->f[i]);
		m.n++;
	}
	fz_worker_message(NULL, fz_services, 2, &m);
	bus__msg_close(&m);
}

static void
fz_tick(unsigned step)
{
	int64_t now;

	fz_offset += (int64_t)step * 100;
	now = ls_now_ms() + fz_offset;
	bus__purge_gone(fz_b);
	bus__expire(fz_b, now);
	bus__heartbeat(fz_b, now);
	fz_check_state();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *p = data, *end = data + size;

	if (fz_b == NULL) {
		fz_setup();
	}
	while (p < end) {
		unsigned op = *p++;
		fz_frames m;

		if ((op & 3) == 3) {
			fz_tick(p < end ? *p++ : 1);
			fz_pump();
			continue;
		}
		if (fz_read_msg(&p, end, &m) != 0) {
			break;
		}
		if ((op & 3) == 2) {
			fz_to_worker_code(&m);
		} else if ((op & 3) == 0 && ((op >> 2) & 3) == FZ_PEERS) {
			fz_api_request(m.f, m.n);
		} else if (m.n > 0) {
			if ((op & 3) == 0) {
				fz_requests++;
			}
			fz_send((op & 3) == 0
			                ? fz_client[(op >> 2) & 3]
			                : fz_worker[(op >> 2) % FZ_PEERS],
			        &m);
		}
		fz_frames_close(&m);
		fz_pump();
	}
	fz_pump();
	fz_reset();
	return 0;
}
