/*
 * Service-bus client: a DEALER socket, a table of pending requests by id
 * and a list of them ordered by deadline. Loop-agnostic; the libev glue is
 * in bus_client_ev.c.
 */
#include "bus_client.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "bus_client_internal.h"
#include "bus_proto.h"
#include "ls_log.h"
#include "ls_time.h"

#define BUS__MIN_BUCKETS 64

typedef struct bus__pending bus__pending;
struct bus__pending {
	uint64_t id;
	int64_t deadline;
	bus_reply_fn cb;
	void *user;
	bus__pending *hnext;       /* hash chain */
	bus__pending *prev, *next; /* deadline order */
};

struct bus_client {
	void *sock;
	char *endpoint;
	uint64_t next_id;
	bus__pending **buckets;
	size_t nbuckets; /* power of two */
	size_t npending;
	bus__pending *head, *tail; /* earliest deadline first */
	bus__client_ev *ev;        /* libev glue, when attached */
};

static size_t
bus__bucket(const bus_client *c, uint64_t id)
{
	/* Ids are sequential; a multiplicative hash spreads them anyway. */
	return (size_t)((id * 0x9E3779B97F4A7C15ull) >> 32) &
	       (c->nbuckets - 1);
}

static int
bus__grow(bus_client *c)
{
	size_t n = c->nbuckets * 2;
	bus__pending **b = calloc(n, sizeof(*b));

	if (b == NULL) {
		return -ENOMEM;
	}
	for (size_t i = 0; i < c->nbuckets; i++) {
		bus__pending *p = c->buckets[i], *next;
		for (; p != NULL; p = next) {
			next = p->hnext;
			size_t k = (size_t)((p->id * 0x9E3779B97F4A7C15ull) >>
			                    32) &
			           (n - 1);
			p->hnext = b[k];
			b[k] = p;
		}
	}
	free(c->buckets);
	c->buckets = b;
	c->nbuckets = n;
	return 0;
}

static bus__pending *
bus__find(const bus_client *c, uint64_t id)
{
	bus__pending *p = c->buckets[bus__bucket(c, id)];

	while (p != NULL && p->id != id) {
		p = p->hnext;
	}
	return p;
}

/* Unlink p from both structures; the caller frees it. */
static void
bus__unlink(bus_client *c, bus__pending *p)
{
	bus__pending **pp = &c->buckets[bus__bucket(c, p->id)];

	while (*pp != p) {
		pp = &(*pp)->hnext;
	}
	*pp = p->hnext;
	if (p->prev) {
		p->prev->next = p->next;
	} else {
		c->head = p->next;
	}
	if (p->next) {
		p->next->prev = p->prev;
	} else {
		c->tail = p->prev;
	}
	c->npending--;
}

static void
bus__link(bus_client *c, bus__pending *p)
{
	size_t k = bus__bucket(c, p->id);
	bus__pending *at = c->tail;

	p->hnext = c->buckets[k];
	c->buckets[k] = p;
	/* Deadlines mostly arrive in order: search from the tail. */
	while (at != NULL && at->deadline > p->deadline) {
		at = at->prev;
	}
	p->prev = at;
	p->next = at ? at->next : c->head;
	if (p->next) {
		p->next->prev = p;
	} else {
		c->tail = p;
	}
	if (at) {
		at->next = p;
	} else {
		c->head = p;
	}
	c->npending++;
}

bus_client *
bus_client_new(void *zmq_ctx, const char *endpoint, ls_error *err)
{
	return bus_client_new_secure(zmq_ctx, endpoint, NULL, err);
}

bus_client *
bus_client_new_secure(void *zmq_ctx, const char *endpoint,
                      const bus_curve_keys *keys, ls_error *err)
{
	bus_client *c = calloc(1, sizeof(*c));

	if (c == NULL) {
		ls_error_set(err, -ENOMEM, "out of memory");
		return NULL;
	}
	c->nbuckets = BUS__MIN_BUCKETS;
	c->buckets = calloc(c->nbuckets, sizeof(*c->buckets));
	c->endpoint = strdup(endpoint ? endpoint : "");
	c->next_id = 1;
	if (c->buckets == NULL || c->endpoint == NULL) {
		ls_error_set(err, -ENOMEM, "out of memory");
		goto fail;
	}
	c->sock = zmq_socket(zmq_ctx, ZMQ_DEALER);
	if (c->sock == NULL) {
		ls_error_set(err, -errno, "bus client: socket: %s",
		             zmq_strerror(errno));
		goto fail;
	}
	if (bus__curve_client(c->sock, keys) != 0) {
		ls_error_set(err, -EINVAL, "bus client: invalid CURVE keys");
		goto fail;
	}
	if (bus__socket_setup(c->sock) != 0 ||
	    zmq_connect(c->sock, endpoint) != 0) {
		ls_error_set(err, -errno, "bus client: connect %s: %s",
		             endpoint, zmq_strerror(errno));
		goto fail;
	}
	return c;
fail:
	bus_client_destroy(&c);
	return NULL;
}

void
bus_client_destroy(bus_client **cp)
{
	bus_client *c = cp ? *cp : NULL;

	if (c == NULL) {
		return;
	}
	bus__client_ev_detach(c->ev);
	c->ev = NULL;
	while (c->head) {
		bus__pending *p = c->head;
		bus__unlink(c, p);
		free(p);
	}
	if (c->sock) {
		zmq_close(c->sock);
	}
	free(c->buckets);
	free(c->endpoint);
	free(c);
	*cp = NULL;
}

int
bus_client_request_flags(bus_client *c, const char *service, const void *body,
                         size_t len, unsigned flags, int timeout_ms,
                         bus_reply_fn cb, void *user, uint64_t *id)
{
	unsigned char idb[8];
	size_t slen = service ? strlen(service) : 0;
	bus__pending *p;
	int rc;

	if (cb == NULL || slen == 0 || slen > BUS__MAX_SERVICE_LEN ||
	    (body == NULL && len > 0) || timeout_ms <= 0) {
		return -EINVAL;
	}
	if (len > BUS__MAX_MSG_BYTES) {
		return LS_ETOOLARGE;
	}
	if (c->npending >= c->nbuckets && bus__grow(c) != 0) {
		return -ENOMEM;
	}
	p = calloc(1, sizeof(*p));
	if (p == NULL) {
		return -ENOMEM;
	}
	p->id = c->next_id++;
	p->deadline = ls_now_ms() + timeout_ms;
	p->cb = cb;
	p->user = user;
	bus__put_u64le(idb, p->id);
	{
		/* The flags frame only when a flag is set: plain requests
		 * stay the three frames of docs/bus.md. */
		unsigned char fl = (unsigned char)(flags & BUS_CALL_ALL);
		const void *data[4] = { idb, service, body ? body : "", &fl };
		size_t lens[4] = { 8, slen, len, 1 };
		rc = bus__send(c->sock, fl ? 4 : 3, data, lens);
	}
	if (rc != 0) {
		free(p);
		return rc == -EAGAIN ? LS_EUNAVAILABLE : rc;
	}
	bus__link(c, p);
	if (id) {
		*id = p->id;
	}
	return 0;
}

int
bus_client_request(bus_client *c, const char *service, const void *body,
                   size_t len, int timeout_ms, bus_reply_fn cb, void *user,
                   uint64_t *id)
{
	return bus_client_request_flags(c, service, body, len, 0, timeout_ms,
	                                cb, user, id);
}

int
bus_client_call(bus_client *c, const char *service, const char *op,
                json_t *args, int timeout_ms, bus_reply_fn cb, void *user,
                uint64_t *id)
{
	json_t *req;
	char *body;
	int rc;

	if (op == NULL || (args != NULL && !json_is_array(args))) {
		return -EINVAL;
	}
	req = args ? json_pack("{s:s, s:O}", "o", op, "a", args)
	           : json_pack("{s:s, s:[]}", "o", op, "a");
	if (req == NULL) {
		return -ENOMEM;
	}
	body = json_dumps(req, JSON_COMPACT);
	json_decref(req);
	if (body == NULL) {
		return -ENOMEM;
	}
	rc = bus_client_request(c, service, body, strlen(body), timeout_ms, cb,
	                        user, id);
	free(body);
	return rc;
}

void
bus_client_cancel(bus_client *c, uint64_t id)
{
	bus__pending *p = bus__find(c, id);

	if (p != NULL) {
		bus__unlink(c, p);
		free(p);
	}
}

int
bus_client_fd(const bus_client *c)
{
	int fd = -1;
	size_t sz = sizeof(fd);

	if (zmq_getsockopt(c->sock, ZMQ_FD, &fd, &sz) != 0) {
		return -1;
	}
	return fd;
}

bool
bus__client_readable(const bus_client *c)
{
	int events = 0;
	size_t sz = sizeof(events);

	/* Querying ZMQ_EVENTS also processes pending commands, which is what
	 * re-arms the edge-triggered ZMQ_FD. */
	if (zmq_getsockopt(c->sock, ZMQ_EVENTS, &events, &sz) != 0) {
		return false;
	}
	return (events & ZMQ_POLLIN) != 0;
}

static void
bus__deliver(bus_client *c, bus__msg *m)
{
	char stackbuf[512];
	char *body = stackbuf;
	bus__pending *p;
	uint64_t id;
	int status;
	size_t len;

	if (m->truncated || m->n != 3 || bus__frame_size(m, 0) != 8 ||
	    bus__frame_size(m, 1) != 1) {
		ls_warn("bus", "client: malformed reply dropped (%d frames)",
		        m->n);
		return;
	}
	id = bus__get_u64le(bus__frame_data(m, 0));
	status = *(const unsigned char *)bus__frame_data(m, 1);
	p = bus__find(c, id);
	if (p == NULL) {
		/* Late (past its deadline) or cancelled. */
		ls_debug("bus",
		         "client: reply to unknown request %llu dropped",
		         (unsigned long long)id);
		return;
	}
	if (status < BUS_OK || status > BUS_NOSERVICE) {
		ls_warn("bus", "client: reply with unknown status %d", status);
		status = BUS_ERROR;
	}
	len = bus__frame_size(m, 2);
	if (len >= sizeof(stackbuf)) {
		body = malloc(len + 1);
		if (body == NULL) {
			/* Still answer: the caller must hear once. */
			body = stackbuf;
			len = 0;
			status = BUS_ERROR;
		}
	}
	if (len > 0) {
		memcpy(body, bus__frame_data(m, 2), len);
	}
	body[len] = '\0';
	bus__unlink(c, p);
	p->cb((bus_status)status, body, len, p->user);
	free(p);
	if (body != stackbuf) {
		free(body);
	}
}

static void
bus__expire(bus_client *c)
{
	static const char msg[] = "request timed out";
	int64_t now = ls_now_ms();

	/* Re-read the head each time: a callback may add or cancel. */
	while (c->head != NULL && c->head->deadline <= now) {
		bus__pending *p = c->head;
		bus__unlink(c, p);
		p->cb(BUS_TIMEOUT, msg, sizeof(msg) - 1, p->user);
		free(p);
	}
}

void
bus_client_process(bus_client *c)
{
	/* Deadlines first: a reply that arrives after its deadline is
	 * dropped even when the loop was too busy to notice in time. */
	bus__expire(c);
	/* Bounded per call so one busy socket cannot starve a loop. */
	for (int i = 0; i < 10000; i++) {
		bus__msg m;
		if (bus__msg_recv(c->sock, &m) != 0) {
			break;
		}
		bus__deliver(c, &m);
		bus__msg_close(&m);
	}
	bus__expire(c);
}

int
bus_client_next_timeout_ms(const bus_client *c)
{
	int64_t left;

	if (c->head == NULL) {
		return -1;
	}
	left = c->head->deadline - ls_now_ms();
	if (left < 0) {
		return 0;
	}
	return left > 0x7fffffff ? 0x7fffffff : (int)left;
}

size_t
bus_client_pending(const bus_client *c)
{
	return c->npending;
}

void
bus__client_set_ev(bus_client *c, bus__client_ev *ev)
{
	c->ev = ev;
}

bus__client_ev *
bus__client_get_ev(const bus_client *c)
{
	return c->ev;
}

const char *
bus_status_name(bus_status status)
{
	switch (status) {
	case BUS_OK:
		return "ok";
	case BUS_ERROR:
		return "error";
	case BUS_TIMEOUT:
		return "timeout";
	case BUS_NOSERVICE:
		return "no such service";
	}
	return "unknown";
}

struct bus__call_state {
	bool done;
	bus_status status;
	char *reply;
	size_t len;
};

static void
bus__call_cb(bus_status status, const char *body, size_t len, void *user)
{
	struct bus__call_state *st = user;

	st->done = true;
	st->status = status;
	st->reply = malloc(len + 1);
	if (st->reply != NULL) {
		memcpy(st->reply, body, len);
		st->reply[len] = '\0';
		st->len = len;
	}
}

int
bus_call(void *zmq_ctx, const char *endpoint, const char *service,
         const void *body, size_t len, int timeout_ms, bus_status *status,
         char **reply, size_t *replylen)
{
	return bus_call_secure(zmq_ctx, endpoint, NULL, service, body, len,
	                       timeout_ms, status, reply, replylen);
}

int
bus_call_secure(void *zmq_ctx, const char *endpoint,
                const bus_curve_keys *keys, const char *service,
                const void *body, size_t len, int timeout_ms,
                bus_status *status, char **reply, size_t *replylen)
{
	return bus_call_flags(zmq_ctx, endpoint, keys, service, body, len, 0,
	                      timeout_ms, status, reply, replylen);
}

int
bus_call_flags(void *zmq_ctx, const char *endpoint, const bus_curve_keys *keys,
               const char *service, const void *body, size_t len,
               unsigned flags, int timeout_ms, bus_status *status,
               char **reply, size_t *replylen)
{
	struct bus__call_state st = { 0 };
	bus_client *c;
	int rc;

	c = bus_client_new_secure(zmq_ctx, endpoint, keys, NULL);
	if (c == NULL) {
		return keys ? -EINVAL : LS_EUNAVAILABLE;
	}
	rc = bus_client_request_flags(c, service, body, len, flags, timeout_ms,
	                              bus__call_cb, &st, NULL);
	while (rc == 0 && !st.done) {
		zmq_pollitem_t item = { c->sock, 0, ZMQ_POLLIN, 0 };
		int wait = bus_client_next_timeout_ms(c);
		if (zmq_poll(&item, 1, wait) < 0 && errno != EINTR) {
			rc = -errno;
			break;
		}
		bus_client_process(c);
	}
	bus_client_destroy(&c);
	if (rc != 0) {
		return rc;
	}
	if (st.reply == NULL) {
		return -ENOMEM;
	}
	*status = st.status;
	*reply = st.reply;
	if (replylen) {
		*replylen = st.len;
	}
	return 0;
}

ls_proto_code
bus_reply_error(bus_status status, const char *body, size_t len, char *msg,
                size_t cap)
{
	ls_proto_code pc = LS_PC_SERVER_ERROR;
	const char *text = NULL;
	json_t *j = NULL;

	switch (status) {
	case BUS_TIMEOUT:
		/* No worker answered in time: the app server is overloaded
		 * or gone, which is transient (docs/protocol.md). */
		pc = LS_PC_UNAVAILABLE;
		text = "the app server did not answer in time; try again "
		       "later";
		break;
	case BUS_NOSERVICE:
		pc = LS_PC_UNAVAILABLE;
		text = "no app server serves this service; try again later";
		break;
	case BUS_OK:
		text = "not an error";
		break;
	case BUS_ERROR:
	default: {
		const ls_proto_error *row;
		j = body != NULL ? json_loadb(body, len, 0, NULL) : NULL;
		row = ls_proto_error_by_name(
		        json_string_value(json_object_get(j, "code")));
		if (row != NULL) {
			pc = row->pc;
			text = json_string_value(
			        json_object_get(j, "message"));
		} else {
			text = "malformed error reply on the service bus";
		}
		break;
	}
	}
	if (msg != NULL && cap > 0) {
		snprintf(msg, cap, "%s",
		         text != NULL ? text : ls_proto_code_name(pc));
	}
	json_decref(j);
	return pc;
}
