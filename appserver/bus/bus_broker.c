/*
 * The broker: the Majordomo state machine (zguide mdbroker) on two ROUTER
 * sockets. Clients speak [requestId, service, body] on the frontend;
 * workers speak LSW1 commands on the backend. Everything runs on the
 * thread that calls bus_broker_run(); nothing here blocks but zmq_poll.
 *
 * Guarantees (docs/bus.md): every accepted request is answered exactly
 * once by the broker unless the client is gone - with the worker's reply,
 * with `timeout` when it waited in the queue past its deadline, with
 * `error` when the worker holding it died or left, with `no such service`
 * when no worker ever registered the service, or with `error` when the
 * service's queue is full. A request is never delivered to two workers.
 */
#include "bus_broker.h"

#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#include <jansson.h>

#include "bus_broker_internal.h"
#include "bus_curve.h"
#include "bus_proto.h"
#include "ls_log.h"
#include "ls_proto.h"
#include "ls_time.h"

static const char bus__proto[BUS__PROTOCOL_LEN] = BUS__PROTOCOL;

/* Warn about dropped input, at most BUS__LOG_BURST times a second. */
void
bus__drop(bus_broker *b, const char *fmt, ...)
{
	int64_t now = ls_now_ms();
	char text[256];
	va_list ap;

	if (now - b->log_window >= 1000) {
		if (b->log_suppressed > 0) {
			ls_warn(BUS__C, "%d similar warnings suppressed",
			        b->log_suppressed);
		}
		b->log_window = now;
		b->log_count = 0;
		b->log_suppressed = 0;
	}
	if (b->log_count >= BUS__LOG_BURST) {
		b->log_suppressed++;
		return;
	}
	b->log_count++;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	ls_warn(BUS__C, "%s", text);
}

int
bus__reply(bus_broker *b, const void *client, size_t client_len,
           const void *reqid, unsigned char status, const void *body,
           size_t len)
{
	const void *d[4] = { client, reqid, &status, body ? body : "" };
	size_t l[4] = { client_len, 8, 1, len };
	int rc = bus__send(b->front, 4, d, l);

	if (rc != 0) {
		bus__drop(b, "reply to a client dropped: %s",
		          zmq_strerror(-rc));
	}
	return rc;
}

int
bus__reply_error(bus_broker *b, const void *client, size_t client_len,
                 const void *reqid, ls_proto_code pc, const char *text)
{
	static const char oom[] =
	        "{\"code\":\"server_error\",\"message\":\"out of memory\"}";
	char *body = bus__error_body(pc, text);
	int rc;

	if (body == NULL) {
		return bus__reply(b, client, client_len, reqid, BUS__ST_ERROR,
		                  oom, sizeof(oom) - 1);
	}
	rc = bus__reply(b, client, client_len, reqid, BUS__ST_ERROR, body,
	                strlen(body));
	free(body);
	return rc;
}

static int
bus__reply_req(bus_broker *b, const bus__request *r, unsigned char status,
               const char *text)
{
	return bus__reply(b, r->client, r->client_len, r->reqid, status, text,
	                  strlen(text));
}

/* ---- broadcast ---------------------------------------------------------- */

static const char *
bus__status_word(unsigned char status)
{
	switch (status) {
	case BUS__ST_OK:
		return "ok";
	case BUS__ST_TIMEOUT:
		return "timeout";
	default:
		return "error";
	}
}

/* All parts answered: one reply, [{"worker","status","result"|"error"}]. */
static void
bus__bcast_finish(bus_broker *b, bus__bcast *bc)
{
	size_t cap = 16, len = 1;
	char *out;

	for (int i = 0; i < bc->n; i++) {
		cap += bc->answers[i].len + 96;
	}
	out = malloc(cap);
	if (out == NULL) {
		bus__reply_error(b, bc->client, bc->client_len, bc->reqid,
		                 LS_PC_SERVER_ERROR, "out of memory");
		goto out;
	}
	out[0] = '[';
	for (int i = 0; i < bc->n; i++) {
		const bus__bcast_answer *a = &bc->answers[i];
		len += (size_t)snprintf(
		        out + len, cap - len,
		        "%s{\"worker\":\"%s\",\"status\":\"%s\","
		        "\"%s\":",
		        i ? "," : "", a->worker, bus__status_word(a->status),
		        a->status == BUS__ST_OK ? "result" : "error");
		memcpy(out + len, a->body, a->len);
		len += a->len;
		out[len++] = '}';
	}
	out[len++] = ']';
	bus__reply(b, bc->client, bc->client_len, bc->reqid, BUS__ST_OK, out,
	           len);
	free(out);
out:
	for (int i = 0; i < bc->n; i++) {
		free(bc->answers[i].body);
	}
	free(bc);
}

/*
 * Record one worker's answer to its part of a broadcast. body is JSON: the
 * result (status OK) or {"code","message"}; anything else, or too large, is
 * recorded as an error.
 */
static void
bus__bcast_record(bus_broker *b, bus__bcast *bc, int i, unsigned char status,
                  const void *body, size_t len)
{
	bus__bcast_answer *a = &bc->answers[i];
	char *err = NULL;

	if (a->status != 0) {
		return;
	}
	if (status != BUS__ST_OK && status != BUS__ST_ERROR) {
		err = bus__error_body(status == BUS__ST_TIMEOUT
		                              ? LS_PC_TIMEOUT
		                              : LS_PC_UNAVAILABLE,
		                      len ? (const char *)body : "no answer");
	} else if (len > BUS__BCAST_ANSWER_MAX) {
		err = bus__error_body(LS_PC_TOO_LARGE,
		                      "the answer is larger than 64 KiB");
		status = BUS__ST_ERROR;
	}
	/* Otherwise the body is the result, or an error reply's
	 * {"code","message"}: kept as it is. */
	if (err != NULL) {
		a->body = err;
		a->len = strlen(err);
	} else {
		a->body = malloc(len ? len : 4);
		if (a->body != NULL) {
			if (len == 0) {
				memcpy(a->body, "null", 4);
				len = 4;
			} else {
				memcpy(a->body, body, len);
			}
			a->len = len;
		}
	}
	if (a->body == NULL) {
		a->body = strdup("null");
		a->len = a->body ? 4 : 0;
	}
	a->status = status == BUS__ST_OK        ? BUS__ST_OK
	            : status == BUS__ST_TIMEOUT ? BUS__ST_TIMEOUT
	                                        : BUS__ST_ERROR;
	if (--bc->waiting == 0) {
		bus__bcast_finish(b, bc);
	}
}

/*
 * The answer to a request a worker held: to its client, or into its
 * broadcast. Frees nothing.
 */
static void
bus__answer_held(bus_broker *b, const bus__request *r, unsigned char status,
                 const void *body, size_t len)
{
	if (r->bc != NULL) {
		bus__bcast_record(b, r->bc, r->bc_index, status, body, len);
	} else {
		bus__reply(b, r->client, r->client_len, r->reqid, status, body,
		           len);
	}
}

/*
 * Refuse a request for its sender's role: status 2 with the error body of
 * docs/bus.md, code `forbidden`.
 */
static void
bus__forbid(bus_broker *b, bus__msg *m, int key, const char *why)
{
	char hex[BUS_CURVE_KEY_LEN + 1];

	b->forbidden++;
	bus__key_text(b, key, hex);
	bus__drop(b, "request for '%.*s' from key %s refused: %s",
	          (int)bus__frame_size(m, 2),
	          (const char *)bus__frame_data(m, 2), hex, why);
	bus__reply_error(b, bus__frame_data(m, 0), bus__frame_size(m, 0),
	                 bus__frame_data(m, 1), LS_PC_FORBIDDEN, why);
}

/* accounts.* and db.*: account management, admin keys only. */
static bool
bus__admin_only(const char *svc, size_t len)
{
	return (len == 8 && memcmp(svc, "accounts", 8) == 0) ||
	       (len == 2 && memcmp(svc, "db", 2) == 0);
}

static int
bus__to_worker(bus_broker *b, bus__bworker *w, unsigned char cmd, int n,
               const void *const *data, const size_t *len)
{
	const void *d[8] = { w->id, bus__proto, &cmd };
	size_t l[8] = { w->id_len, BUS__PROTOCOL_LEN, 1 };

	for (int i = 0; i < n && i < 5; i++) {
		d[i + 3] = data[i];
		l[i + 3] = len[i];
	}
	return bus__send(b->back, n + 3, d, l);
}

static void
bus__disconnect_peer(bus_broker *b, const void *id, size_t id_len)
{
	unsigned char cmd = BUS__DISCONNECT;
	const void *d[3] = { id, bus__proto, &cmd };
	size_t l[3] = { id_len, BUS__PROTOCOL_LEN, 1 };

	bus__send(b->back, 3, d, l);
}

bus__service *
bus__service_find(bus_broker *b, const void *name, size_t len)
{
	for (bus__service *s = b->services; s != NULL; s = s->next) {
		if (s->name_len == len && memcmp(s->name, name, len) == 0) {
			return s;
		}
	}
	return NULL;
}

static void
bus__service_remove(bus_broker *b, bus__service *s)
{
	bus__service **pp = &b->services;

	while (*pp != s) {
		pp = &(*pp)->next;
	}
	*pp = s->next;
	b->nservices--;
	ls_info(BUS__C, "service '%s' forgotten (no workers)", s->name);
	free(s);
}

/* Forget one service that has neither workers nor queued requests. */
static bool
bus__service_evict(bus_broker *b)
{
	for (bus__service *s = b->services; s != NULL; s = s->next) {
		if (s->nworkers == 0 && s->qlen == 0) {
			bus__service_remove(b, s);
			return true;
		}
	}
	return false;
}

static bus__service *
bus__service_require(bus_broker *b, const void *name, size_t len)
{
	bus__service *s = bus__service_find(b, name, len);

	if (s != NULL) {
		return s;
	}
	if (b->nservices >= BUS__MAX_SERVICES && !bus__service_evict(b)) {
		return NULL;
	}
	s = calloc(1, sizeof(*s));
	if (s == NULL) {
		return NULL;
	}
	memcpy(s->name, name, len);
	s->name[len] = '\0';
	s->name_len = len;
	s->next = b->services;
	b->services = s;
	b->nservices++;
	ls_info(BUS__C, "service '%s' registered", s->name);
	return s;
}

static bus__bworker *
bus__worker_find(bus_broker *b, const void *id, size_t len)
{
	for (bus__bworker *w = b->workers; w != NULL; w = w->next) {
		if (w->id_len == len && memcmp(w->id, id, len) == 0) {
			return w;
		}
	}
	return NULL;
}

bool
bus__serves(const bus__bworker *w, const bus__service *s)
{
	for (int i = 0; i < w->nservices; i++) {
		if (w->services[i] == s) {
			return true;
		}
	}
	return false;
}

static void
bus__idle_remove(bus_broker *b, bus__bworker *w)
{
	if (!w->idle) {
		return;
	}
	if (w->iprev) {
		w->iprev->inext = w->inext;
	} else {
		b->idle_head = w->inext;
	}
	if (w->inext) {
		w->inext->iprev = w->iprev;
	} else {
		b->idle_tail = w->iprev;
	}
	w->iprev = w->inext = NULL;
	w->idle = false;
}

/* Put w last in the available list (most recently used). */
static void
bus__idle_append(bus_broker *b, bus__bworker *w)
{
	w->iprev = b->idle_tail;
	w->inext = NULL;
	if (b->idle_tail) {
		b->idle_tail->inext = w;
	} else {
		b->idle_head = w;
	}
	b->idle_tail = w;
	w->idle = true;
}

/* Its key let a request expire lately (BUS__STRIKE_MS). */
static bool
bus__struck(const bus_broker *b, const bus__bworker *w, int64_t now)
{
	return w->key >= 0 && b->allow[w->key].strike_until > now;
}

/*
 * Requests w may hold at once: one until it has answered one (a worker
 * that never answers cannot gather more) or while its key is struck,
 * BUS__PREFETCH otherwise.
 */
static int
bus__capacity(const bus_broker *b, const bus__bworker *w, int64_t now)
{
	return w->answered == 0 || bus__struck(b, w, now) ? 1 : BUS__PREFETCH;
}

/*
 * The available worker of s to send a request to: workers of a struck key
 * last, then the one holding the fewest requests, then one that has
 * answered before one that has not, then least recently used.
 */
static bus__bworker *
bus__pick(bus_broker *b, bus__service *s)
{
	bus__bworker *best = NULL;
	int64_t now = ls_now_ms();
	long best_rank = 0;

	for (bus__bworker *w = b->idle_head; w != NULL; w = w->inext) {
		long rank;
		if (!bus__serves(w, s)) {
			continue;
		}
		rank = (bus__struck(b, w, now) ? 1000 : 0) + 2L * w->nheld +
		       (w->answered == 0);
		if (best == NULL || rank < best_rank) {
			best = w;
			best_rank = rank;
			if (rank == 0) {
				break;
			}
		}
	}
	return best;
}

/* Send queued requests of s to available workers (bus__pick). */
static void
bus__dispatch(bus_broker *b, bus__service *s)
{
	while (s->qhead != NULL) {
		bus__bworker *w = bus__pick(b, s);
		bus__request *r = s->qhead;

		if (w == NULL) {
			return;
		}
		{
			const void *d[4] = { r->client, r->reqid, s->name,
				             r->body };
			size_t l[4] = { r->client_len, 8, s->name_len,
				        r->body_len };
			int rc = bus__to_worker(b, w, BUS__REQUEST, 4, d, l);
			if (rc != 0) {
				/* EHOSTUNREACH: its connection closed while it
				 * was idle; EAGAIN: its pipe is full, so it is
				 * not really listening. Either way the request
				 * never left: another worker may take it. The
				 * worker is purged after this turn (a live one
				 * is told DISCONNECT on its next message and
				 * registers again). */
				w->gone = true;
				bus__idle_remove(b, w);
				continue;
			}
		}
		s->qhead = r->next;
		if (s->qhead == NULL) {
			s->qtail = NULL;
		}
		s->qlen--;
		b->nqueued--;
		r->next = NULL;
		bus__idle_remove(b, w);
		w->held[w->nheld] = r;
		w->held_svc[w->nheld] = s;
		w->nheld++;
		if (r->deadline < b->held_next) {
			b->held_next = r->deadline;
		}
		if (w->nheld < bus__capacity(b, w, ls_now_ms())) {
			bus__idle_append(b, w);
		}
	}
}

/* w can take more requests: make it available and give it work. */
static void
bus__worker_idle(bus_broker *b, bus__bworker *w)
{
	if (w->nheld >= bus__capacity(b, w, ls_now_ms())) {
		return;
	}
	if (!w->idle) {
		bus__idle_append(b, w);
	}
	for (int i = 0; i < w->nservices && w->idle; i++) {
		bus__dispatch(b, w->services[i]);
	}
}

static void
bus__worker_delete(bus_broker *b, bus__bworker *w, const char *why)
{
	bus__bworker **pp = &b->workers;

	ls_info(BUS__C, "worker %s removed: %s", w->hex, why);
	for (int i = 0; i < w->nheld; i++) {
		/* No retry: the operation may have had effects. */
		/* The app server went away under the request: transient
		 * for the caller, who decides whether to try again. */
		{
			char *e = bus__error_body(
			        LS_PC_UNAVAILABLE,
			        "the worker handling the request failed");
			bus__answer_held(b, w->held[i], BUS__ST_ERROR,
			                 e ? e : "", e ? strlen(e) : 0);
			free(e);
		}
		w->held_svc[i]->failed++;
		free(w->held[i]);
	}
	w->nheld = 0;
	bus__idle_remove(b, w);
	for (int i = 0; i < w->nservices; i++) {
		bus__service *s = w->services[i];
		if (--s->nworkers == 0 && s->qlen == 0) {
			s->empty_since = ls_now_ms();
		}
	}
	while (*pp != w) {
		pp = &(*pp)->next;
	}
	*pp = w->next;
	b->nworkers--;
	free(w);
}

/*
 * Whether the services a READY names fit in the table, counting the
 * entries without workers nor queue that would make room: checked before
 * anything is created, so a refused READY leaves the table as it was.
 */
static bool
bus__room_for(bus_broker *b, bus__msg *m)
{
	int need = 0, spare = 0;

	for (int i = 3; i < m->n; i++) {
		bool dup = false;
		for (int k = 3; k < i && !dup; k++) {
			dup = bus__frame_eq(m, k, bus__frame_data(m, i),
			                    bus__frame_size(m, i));
		}
		need += !dup &&
		        bus__service_find(b, bus__frame_data(m, i),
		                          bus__frame_size(m, i)) == NULL;
	}
	if (b->nservices + need <= BUS__MAX_SERVICES) {
		return true;
	}
	for (bus__service *s = b->services; s != NULL; s = s->next) {
		spare += s->nworkers == 0 && s->qlen == 0;
	}
	return b->nservices - spare + need <= BUS__MAX_SERVICES;
}

static void
bus__worker_ready(bus_broker *b, bus__msg *m)
{
	bus__bworker *w;
	int n = m->n - 3, key;
	unsigned roles = bus__peer_roles(b, m, &key);

	if ((roles & BUS_ROLE_WORKER) == 0) {
		char hex[BUS_CURVE_KEY_LEN + 1];
		bus__key_text(b, key, hex);
		b->forbidden++;
		bus__drop(b, "READY from key %s refused: not a worker key",
		          hex);
		goto refuse;
	}
	if (n < 1 || n > BUS__MAX_WORKER_SERVICES || m->truncated) {
		bus__drop(b, "READY with %d services refused", n);
		goto refuse;
	}
	for (int i = 3; i < m->n; i++) {
		size_t len = bus__frame_size(m, i);
		const char *name = bus__frame_data(m, i);
		if (len == 0 || len > BUS__MAX_SERVICE_LEN ||
		    memchr(name, '\0', len) != NULL ||
		    (len >= 4 && memcmp(name, "mmi.", 4) == 0)) {
			bus__drop(b, "READY with an invalid service name "
			             "refused");
			goto refuse;
		}
	}
	if (b->nworkers >= BUS__MAX_WORKERS) {
		bus__drop(b, "READY refused: %d workers registered",
		          b->nworkers);
		goto refuse;
	}
	if (!bus__room_for(b, m)) {
		bus__drop(b, "service table full (%d); READY refused",
		          BUS__MAX_SERVICES);
		goto refuse;
	}
	w = calloc(1, sizeof(*w));
	if (w == NULL) {
		goto refuse;
	}
	w->id_len = bus__frame_size(m, 0);
	memcpy(w->id, bus__frame_data(m, 0), w->id_len);
	bus__hex(w->id, w->id_len < 16 ? w->id_len : 16, w->hex,
	         sizeof(w->hex));
	w->key = key;
	for (int i = 3; i < m->n; i++) {
		bus__service *s = bus__service_require(
		        b, bus__frame_data(m, i), bus__frame_size(m, i));
		if (s == NULL || (!bus__serves(w, s) &&
		                  s->nworkers >= BUS__MAX_SERVICE_WORKERS)) {
			bus__drop(b, s == NULL ? "service table full; READY "
			                         "refused"
			                       : "too many workers for a "
			                         "service; READY refused");
			for (int k = 0; k < w->nservices; k++) {
				w->services[k]->nworkers--;
			}
			free(w);
			goto refuse;
		}
		if (!bus__serves(w, s)) {
			w->services[w->nservices++] = s;
			s->nworkers++;
			s->empty_since = 0;
		}
	}
	w->expiry = ls_now_ms() + (int64_t)b->hb_ms * b->liveness;
	w->next = b->workers;
	b->workers = w;
	b->nworkers++;
	ls_info(BUS__C, "worker %s ready (%d service%s, first '%s')", w->hex,
	        w->nservices, w->nservices == 1 ? "" : "s",
	        w->services[0]->name);
	bus__worker_idle(b, w);
	return;
refuse:
	bus__disconnect_peer(b, bus__frame_data(m, 0), bus__frame_size(m, 0));
}

static void
bus__worker_reply(bus_broker *b, bus__bworker *w, bus__msg *m)
{
	bus__request *r = NULL;
	bus__service *svc = NULL;
	unsigned char status;
	int i = 0;

	/* [id, LSW1, REPLY, client, requestId, status, body]: one of the
	 * requests it holds (normally the oldest). */
	if (m->n == 7 && bus__frame_size(m, 5) == 1) {
		for (i = 0; i < w->nheld; i++) {
			if (bus__frame_eq(m, 3, w->held[i]->client,
			                  w->held[i]->client_len) &&
			    bus__frame_eq(m, 4, w->held[i]->reqid, 8)) {
				r = w->held[i];
				svc = w->held_svc[i];
				break;
			}
		}
	}
	if (r == NULL) {
		bus__drop(b, "worker %s: unexpected REPLY dropped", w->hex);
		return;
	}
	for (; i + 1 < w->nheld; i++) {
		w->held[i] = w->held[i + 1];
		w->held_svc[i] = w->held_svc[i + 1];
	}
	w->nheld--;
	status = *(const unsigned char *)bus__frame_data(m, 5);
	if (status < BUS__ST_OK || status > BUS__ST_NOSERVICE) {
		bus__drop(b, "worker %s: REPLY status %d taken as error",
		          w->hex, status);
		status = BUS__ST_ERROR;
	}
	bus__answer_held(b, r, status, bus__frame_data(m, 6),
	                 bus__frame_size(m, 6));
	if (status == BUS__ST_OK) {
		svc->served++;
	} else {
		svc->failed++;
	}
	w->answered++;
	free(r);
	bus__worker_idle(b, w);
}

static void
bus__backend(bus_broker *b, bus__msg *m)
{
	bus__bworker *w;
	unsigned char cmd;

	if (m->n < 3 || !bus__frame_eq(m, 1, bus__proto, BUS__PROTOCOL_LEN) ||
	    bus__frame_size(m, 2) != 1) {
		bus__drop(b,
		          "malformed message on the backend dropped "
		          "(%d frames)",
		          m->n);
		return;
	}
	cmd = *(const unsigned char *)bus__frame_data(m, 2);
	w = bus__worker_find(b, bus__frame_data(m, 0), bus__frame_size(m, 0));
	if (w == NULL) {
		if (cmd == BUS__READY) {
			bus__worker_ready(b, m);
		} else if (cmd != BUS__DISCONNECT) {
			/* A worker from before a restart, or a purged one:
			 * make it start over with READY. */
			bus__disconnect_peer(b, bus__frame_data(m, 0),
			                     bus__frame_size(m, 0));
		}
		return;
	}
	w->expiry = ls_now_ms() + (int64_t)b->hb_ms * b->liveness;
	switch (cmd) {
	case BUS__REPLY:
		bus__worker_reply(b, w, m);
		break;
	case BUS__HEARTBEAT:
		break;
	case BUS__DISCONNECT:
		bus__worker_delete(b, w, "disconnected");
		break;
	case BUS__READY:
		bus__disconnect_peer(b, w->id, w->id_len);
		bus__worker_delete(b, w, "READY twice");
		break;
	default:
		bus__drop(b, "worker %s: unknown command 0x%02x dropped",
		          w->hex, cmd);
		break;
	}
}

/*
 * Send m's request to every live worker of s at once, whatever it holds
 * (up to BUS__PREFETCH: a worker that holds that many answers `unavailable`
 * for this part), and answer the client once every part is answered or
 * expired.
 */
static void
bus__broadcast(bus_broker *b, bus__service *s, bus__msg *m)
{
	int64_t now = ls_now_ms();
	size_t body_len = bus__frame_size(m, 3);
	bus__bcast *bc;
	int n = 0;

	for (bus__bworker *w = b->workers; w != NULL; w = w->next) {
		n += !w->gone && bus__serves(w, s);
	}
	bc = calloc(1, sizeof(*bc) + (size_t)n * sizeof(bc->answers[0]));
	if (bc == NULL) {
		bus__reply_error(b, bus__frame_data(m, 0),
		                 bus__frame_size(m, 0), bus__frame_data(m, 1),
		                 LS_PC_SERVER_ERROR, "out of memory");
		return;
	}
	memcpy(bc->reqid, bus__frame_data(m, 1), 8);
	bc->client_len = bus__frame_size(m, 0);
	memcpy(bc->client, bus__frame_data(m, 0), bc->client_len);
	bc->n = bc->waiting = n;
	/* Every part is counted before any is answered: an answer made
	 * here cannot finish the broadcast early. */
	bc->waiting++;
	int i = 0;
	for (bus__bworker *w = b->workers; w != NULL && i < n; w = w->next) {
		bus__request *r;
		if (w->gone || !bus__serves(w, s)) {
			continue;
		}
		snprintf(bc->answers[i].worker, sizeof(bc->answers[i].worker),
		         "%s", w->hex);
		r = w->nheld < BUS__PREFETCH
		            ? malloc(sizeof(*r) + body_len + 1)
		            : NULL;
		if (r == NULL) {
			bus__bcast_record(b, bc, i, BUS__ST_NOSERVICE,
			                  "the worker is busy", 18);
			i++;
			continue;
		}
		memset(r, 0, sizeof(*r));
		r->deadline = now + b->timeout_ms;
		r->bc = bc;
		r->bc_index = i;
		memcpy(r->reqid, bc->reqid, 8);
		r->client_len = bc->client_len;
		memcpy(r->client, bc->client, bc->client_len);
		r->body_len = body_len;
		memcpy(r->body, bus__frame_data(m, 3), body_len);
		r->body[body_len] = '\0';
		const void *d[4] = { r->client, r->reqid, s->name, r->body };
		size_t l[4] = { r->client_len, 8, s->name_len, r->body_len };
		if (bus__to_worker(b, w, BUS__REQUEST, 4, d, l) != 0) {
			free(r);
			bus__bcast_record(b, bc, i, BUS__ST_NOSERVICE,
			                  "the worker is gone", 18);
			i++;
			continue;
		}
		w->held[w->nheld] = r;
		w->held_svc[w->nheld] = s;
		w->nheld++;
		if (r->deadline < b->held_next) {
			b->held_next = r->deadline;
		}
		if (w->nheld >= bus__capacity(b, w, now)) {
			bus__idle_remove(b, w);
		}
		i++;
	}
	if (--bc->waiting == 0) {
		bus__bcast_finish(b, bc);
	}
}

static void
bus__frontend(bus_broker *b, bus__msg *m)
{
	const char *svc;
	size_t svc_len, body_len;
	bus__service *s;
	bus__request *r;

	/* [client, requestId, service, body] or, to every worker of the
	 * service, [client, requestId, service, body, flags 0x01] */
	bool all =
	        m->n == 5 && bus__frame_size(m, 4) == 1 &&
	        *(const unsigned char *)bus__frame_data(m, 4) == BUS__FLAG_ALL;
	if (m->truncated || (m->n != 4 && !all) ||
	    bus__frame_size(m, 1) != 8 || bus__frame_size(m, 2) == 0 ||
	    bus__frame_size(m, 2) > BUS__MAX_SERVICE_LEN) {
		bus__drop(b,
		          "malformed request on the frontend dropped (%d "
		          "frames)",
		          m->n);
		return;
	}
	svc = bus__frame_data(m, 2);
	svc_len = bus__frame_size(m, 2);
	{
		int key;
		unsigned roles = bus__peer_roles(b, m, &key);
		if ((roles & (BUS_ROLE_CLIENT | BUS_ROLE_ADMIN)) == 0) {
			bus__forbid(b, m, key,
			            "this key may not call services");
			return;
		}
		if (bus__admin_only(svc, svc_len) &&
		    (roles & BUS_ROLE_ADMIN) == 0) {
			bus__forbid(b, m, key,
			            "only admin keys may call accounts.* and "
			            "db.*");
			return;
		}
	}
	if (svc_len >= 4 && memcmp(svc, "mmi.", 4) == 0) {
		bus__mmi(b, m, svc, svc_len);
		return;
	}
	s = bus__service_find(b, svc, svc_len);
	if (all && s != NULL && s->nworkers > 0) {
		bus__broadcast(b, s, m);
		return;
	}
	if (s == NULL) {
		static const char msg[] = "no such service";
		bus__reply(b, bus__frame_data(m, 0), bus__frame_size(m, 0),
		           bus__frame_data(m, 1), BUS__ST_NOSERVICE, msg,
		           sizeof(msg) - 1);
		return;
	}
	if (s->qlen >= b->queue_limit || b->nqueued >= BUS__MAX_QUEUED) {
		s->rejected++;
		bus__reply_error(b, bus__frame_data(m, 0),
		                 bus__frame_size(m, 0), bus__frame_data(m, 1),
		                 LS_PC_UNAVAILABLE,
		                 "service queue full; try again later");
		return;
	}
	body_len = bus__frame_size(m, 3);
	r = malloc(sizeof(*r) + body_len + 1);
	if (r == NULL) {
		bus__reply_error(b, bus__frame_data(m, 0),
		                 bus__frame_size(m, 0), bus__frame_data(m, 1),
		                 LS_PC_SERVER_ERROR, "out of memory");
		return;
	}
	r->next = NULL;
	r->bc = NULL;
	r->bc_index = 0;
	r->deadline = ls_now_ms() + b->timeout_ms;
	memcpy(r->reqid, bus__frame_data(m, 1), 8);
	r->client_len = bus__frame_size(m, 0);
	memcpy(r->client, bus__frame_data(m, 0), r->client_len);
	r->body_len = body_len;
	memcpy(r->body, bus__frame_data(m, 3), body_len);
	r->body[body_len] = '\0';
	if (s->qtail) {
		s->qtail->next = r;
	} else {
		s->qhead = r;
	}
	s->qtail = r;
	s->qlen++;
	b->nqueued++;
	bus__dispatch(b, s);
}

/*
 * Requests held by a worker past their deadline: answer each `timeout`,
 * strike the worker's key and purge the worker (DISCONNECT; a live one
 * registers again). A worker that holds requests and never answers thus
 * keeps each for one deadline at most, and its key is chosen last for a
 * while (bus__pick).
 */
static void
bus__expire_held(bus_broker *b, int64_t now)
{
	static const char msg[] = "the worker did not answer in time";
	int64_t next = INT64_MAX;
	bus__bworker *w, *wnext;

	if (now < b->held_next) {
		return;
	}
	for (w = b->workers; w != NULL; w = wnext) {
		int kept = 0, late = 0;
		wnext = w->next;
		for (int i = 0; i < w->nheld; i++) {
			bus__request *r = w->held[i];
			if (r->deadline <= now) {
				w->held_svc[i]->timed_out++;
				bus__answer_held(b, r, BUS__ST_TIMEOUT, msg,
				                 strlen(msg));
				free(r);
				late++;
				continue;
			}
			if (r->deadline < next) {
				next = r->deadline;
			}
			w->held[kept] = r;
			w->held_svc[kept] = w->held_svc[i];
			kept++;
		}
		w->nheld = kept;
		if (late > 0) {
			char hex[BUS_CURVE_KEY_LEN + 1];
			if (w->key >= 0) {
				b->allow[w->key].strike_until =
				        now + BUS__STRIKE_MS;
			}
			bus__key_text(b, w->key, hex);
			bus__drop(b,
			          "worker %s (key %s) let %d request%s "
			          "expire: purged",
			          w->hex, hex, late, late == 1 ? "" : "s");
			bus__disconnect_peer(b, w->id, w->id_len);
			bus__worker_delete(b, w, "requests expired");
		}
	}
	b->held_next = next;
}

/* Forget services without workers nor queue for BUS__SERVICE_LINGER_MS. */
static void
bus__sweep(bus_broker *b, int64_t now)
{
	bus__service *s, *next;

	if (now < b->sweep_at) {
		return;
	}
	b->sweep_at = now + 1000;
	for (s = b->services; s != NULL; s = next) {
		next = s->next;
		if (s->nworkers > 0 || s->qlen > 0) {
			s->empty_since = 0;
		} else if (s->empty_since == 0) {
			s->empty_since = now;
		} else if (now - s->empty_since >= BUS__SERVICE_LINGER_MS) {
			bus__service_remove(b, s);
		}
	}
}

/* Answer `timeout` to requests that waited past their deadline. */
static void
bus__expire(bus_broker *b, int64_t now)
{
	static const char msg[] = "no worker took the request in time";

	for (bus__service *s = b->services; s != NULL; s = s->next) {
		/* Deadlines grow along a queue: stop at the first live one. */
		while (s->qhead != NULL && s->qhead->deadline <= now) {
			bus__request *r = s->qhead;
			s->qhead = r->next;
			if (s->qhead == NULL) {
				s->qtail = NULL;
			}
			s->qlen--;
			b->nqueued--;
			s->timed_out++;
			bus__reply_req(b, r, BUS__ST_TIMEOUT, msg);
			free(r);
		}
	}
	bus__expire_held(b, now);
	bus__sweep(b, now);
}

static void
bus__heartbeat(bus_broker *b, int64_t now)
{
	bus__bworker *w, *next;

	if (now < b->hb_at) {
		return;
	}
	for (w = b->workers; w != NULL; w = next) {
		next = w->next;
		if (w->expiry <= now) {
			bus__worker_delete(b, w, "silent (expired)");
			continue;
		}
		if (bus__to_worker(b, w, BUS__HEARTBEAT, 0, NULL, NULL) ==
		    -EHOSTUNREACH) {
			bus__worker_delete(b, w, "connection closed");
		}
	}
	b->hb_at = now + b->hb_ms;
}

static void
bus__purge_gone(bus_broker *b)
{
	bus__bworker *w, *next;

	for (w = b->workers; w != NULL; w = next) {
		next = w->next;
		if (w->gone) {
			bus__worker_delete(b, w, "connection closed");
		}
	}
}

static long
bus__next_wait(bus_broker *b, int64_t now)
{
	int64_t at = b->hb_at < b->held_next ? b->hb_at : b->held_next;

	if (b->sweep_at < at) {
		at = b->sweep_at;
	}
	for (bus__service *s = b->services; s != NULL; s = s->next) {
		if (s->qhead != NULL && s->qhead->deadline < at) {
			at = s->qhead->deadline;
		}
	}
	return at <= now ? 0 : (long)(at - now);
}

/*
 * Bind an endpoint; an ipc:// socket file is created 0600 (owner only),
 * whatever the umask: the umask is narrowed around the bind (it only
 * ever narrows, so other threads creating files meanwhile lose nothing)
 * and the mode set again after it.
 */
static int
bus__bind_one(void *sock, const char *endpoint)
{
	int rc, saved;

	if (strncmp(endpoint, "ipc://", 6) != 0) {
		return zmq_bind(sock, endpoint);
	}
	{
		mode_t old = umask(0177);
		rc = zmq_bind(sock, endpoint);
		saved = errno;
		umask(old);
	}
	if (rc == 0 && endpoint[6] != '@' && chmod(endpoint + 6, 0600) != 0) {
		saved = errno;
		zmq_unbind(sock, endpoint);
		rc = -1;
	}
	errno = saved;
	return rc;
}

static void *
bus__bind(bus_broker *b, void *ctx, int type, const char *const *endpoints,
          int n, const char *what, const char *secret, ls_error *err)
{
	void *sock = zmq_socket(ctx, type);
	int on = 1;

	if (sock == NULL) {
		ls_error_set(err, -errno, "broker %s: %s", what,
		             zmq_strerror(errno));
		return NULL;
	}
	if (secret != NULL &&
	    (zmq_setsockopt(sock, ZMQ_CURVE_SERVER, &on, sizeof(on)) != 0 ||
	     zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, secret,
	                    BUS_CURVE_KEY_LEN + 1) != 0 ||
	     zmq_setsockopt(sock, ZMQ_ZAP_DOMAIN, what, strlen(what)) != 0)) {
		ls_error_set(err, -errno, "broker %s: CURVE: %s", what,
		             zmq_strerror(errno));
		zmq_close(sock);
		return NULL;
	}
	if (bus__socket_setup(sock) != 0) {
		ls_error_set(err, -errno, "broker %s: %s", what,
		             zmq_strerror(errno));
		zmq_close(sock);
		return NULL;
	}
	for (int i = 0; i < n; i++) {
		const char *ep = endpoints[i];
		if (ep != NULL && bus__bind_one(sock, ep) != 0) {
			ls_error_set(err, -errno,
			             "broker %s: cannot bind %s: %s", what, ep,
			             zmq_strerror(errno));
			zmq_close(sock);
			return NULL;
		}
	}
	return sock;
}

bus_broker *
bus_broker_new(void *zmq_ctx, const char *frontend, const char *backend,
               const bus_broker_options *opt, ls_error *err)
{
	bus_broker *b = calloc(1, sizeof(*b));
	const char *secret = opt ? opt->curve_secret_key : NULL;

	if (b == NULL) {
		ls_error_set(err, -ENOMEM, "out of memory");
		return NULL;
	}
	b->stopfd = -1;
	b->held_next = INT64_MAX;
	b->hb_ms = opt && opt->heartbeat_ms > 0 ? opt->heartbeat_ms
	                                        : BUS__DEFAULT_HB_MS;
	b->liveness = opt && opt->liveness > 0 ? opt->liveness
	                                       : BUS__DEFAULT_LIVENESS;
	b->queue_limit = opt && opt->queue_limit > 0 ? opt->queue_limit
	                                             : BUS__DEFAULT_QUEUE;
	b->timeout_ms = opt && opt->default_timeout_ms > 0
	                        ? opt->default_timeout_ms
	                        : BUS__DEFAULT_TIMEOUT_MS;
	if (zmq_ctx == NULL || frontend == NULL || backend == NULL) {
		ls_error_set(err, -EINVAL, "broker: missing endpoint");
		goto fail;
	}
	b->stopfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (b->stopfd < 0) {
		ls_error_set(err, -errno, "broker: eventfd: %s",
		             strerror(errno));
		goto fail;
	}
	if (secret != NULL && bus__curve_setup(b, zmq_ctx, opt, err) != 0) {
		goto fail;
	}
	{
		const char *eps[3] = { frontend,
			               opt ? opt->frontend_also[0] : NULL,
			               opt ? opt->frontend_also[1] : NULL };
		b->front = bus__bind(b, zmq_ctx, ZMQ_ROUTER, eps, 3,
		                     "frontend", secret, err);
	}
	if (b->front == NULL) {
		goto fail;
	}
	{
		const char *eps[2] = { backend,
			               opt ? opt->backend_also : NULL };
		b->back = bus__bind(b, zmq_ctx, ZMQ_ROUTER, eps, 2, "backend",
		                    secret, err);
	}
	if (b->back == NULL) {
		goto fail;
	}
	/* Sending to a worker whose connection closed then fails with
	 * EHOSTUNREACH instead of vanishing: a dead idle worker is noticed
	 * before a request is lost on it. */
	{
		int on = 1;
		if (zmq_setsockopt(b->back, ZMQ_ROUTER_MANDATORY, &on,
		                   sizeof(on)) != 0) {
			ls_error_set(err, -errno, "broker backend: %s",
			             zmq_strerror(errno));
			goto fail;
		}
	}
	return b;
fail:
	bus_broker_destroy(&b);
	return NULL;
}

int
bus_broker_run(bus_broker *b)
{
	ls_info(BUS__C,
	        "serving (heartbeat %d ms, liveness %d, queue limit "
	        "%d, timeout %d ms)",
	        b->hb_ms, b->liveness, b->queue_limit, b->timeout_ms);
	b->hb_at = ls_now_ms() + b->hb_ms;
	while (!atomic_load(&b->stopping)) {
		zmq_pollitem_t items[4] = { { b->back, 0, ZMQ_POLLIN, 0 },
			                    { b->front, 0, ZMQ_POLLIN, 0 },
			                    { NULL, b->stopfd, ZMQ_POLLIN, 0 },
			                    { b->zap, 0, ZMQ_POLLIN, 0 } };
		int64_t now = ls_now_ms();

		if (zmq_poll(items, b->zap ? 4 : 3, bus__next_wait(b, now)) <
		            0 &&
		    errno != EINTR) {
			ls_err(BUS__C, "poll: %s", zmq_strerror(errno));
			break;
		}
		if (items[2].revents || atomic_load(&b->stopping)) {
			break;
		}
		for (int i = 0; b->zap != NULL && i < BUS__BATCH; i++) {
			bus__msg m;
			if (bus__msg_recv(b->zap, &m) != 0) {
				break;
			}
			bus__zap(b, &m);
			bus__msg_close(&m);
		}
		/* Workers first: replies free workers for queued work. */
		for (int i = 0; i < BUS__BATCH; i++) {
			bus__msg m;
			if (bus__msg_recv(b->back, &m) != 0) {
				break;
			}
			bus__backend(b, &m);
			bus__msg_close(&m);
		}
		for (int i = 0; i < BUS__BATCH; i++) {
			bus__msg m;
			if (bus__msg_recv(b->front, &m) != 0) {
				break;
			}
			bus__frontend(b, &m);
			bus__msg_close(&m);
		}
		bus__purge_gone(b);
		now = ls_now_ms();
		bus__expire(b, now);
		bus__heartbeat(b, now);
	}
	ls_info(BUS__C, "stopped");
	return 0;
}

void
bus_broker_stop(bus_broker *b)
{
	uint64_t one = 1;

	/* Async-signal-safe: an atomic store and a write(). */
	atomic_store(&b->stopping, true);
	if (b->stopfd >= 0 && write(b->stopfd, &one, sizeof(one)) < 0) {
		/* Already signalled (counter full) is fine. */
	}
}

void
bus_broker_destroy(bus_broker **bp)
{
	bus_broker *b = bp ? *bp : NULL;

	if (b == NULL) {
		return;
	}
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
	if (b->front) {
		zmq_close(b->front);
	}
	if (b->back) {
		zmq_close(b->back);
	}
	if (b->zap) {
		zmq_close(b->zap);
	}
	if (b->stopfd >= 0) {
		close(b->stopfd);
	}
	free(b->allow);
	free(b);
	*bp = NULL;
}
