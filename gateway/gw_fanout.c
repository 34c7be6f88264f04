/*
 * The hot path: streams, subscriptions, per-connection queues and
 * coalesced writes.
 *
 * A delivery frame is {"t":5,"m":{"owner":O,"stream":S,"sub":ID,"data":D}}.
 * Only ID differs between the subscriptions that receive the same D, so a
 * queued frame is two refcounted buffers: the subscription's head (every
 * byte up to "data":, built once at subscribe time) and the message body D
 * (built once per message and shared by every query-less subscription);
 * the closing "}}" is constant. The bytes meet only when the writer copies
 * them into the connection's outgoing batch, which it does anyway to
 * coalesce frames into one send().
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <stdlib.h>
#include <string.h>

#include "gw_internal.h"
#include "gw_json.h"
#include "ls_json.h"
#include "ls_log.h"
#include "ls_proto.h"
#include "ls_time.h"

/* One line per slow consumer would let a crowd of them flood the log. */
static ls_log_limit gw__slow_log = LS_LOG_LIMIT_INIT(10000, 5);

/* ---- streams ------------------------------------------------------------ */

static uint32_t
gw__hash(const char *s, size_t n)
{
	uint32_t h = 2166136261u;

	for (size_t i = 0; i < n; i++) {
		h = (h ^ (unsigned char)s[i]) * 16777619u;
	}
	return h;
}

static gw_stream *
gw__stream_find(gw_gateway *gw, const char *topic, size_t n)
{
	uint32_t h;

	if (gw->nbuckets == 0) {
		return NULL;
	}
	h = gw__hash(topic, n);
	for (gw_stream *s = gw->buckets[h & (gw->nbuckets - 1)]; s != NULL;
	     s = s->hnext) {
		if (s->hash == h && strncmp(s->topic, topic, n) == 0 &&
		    s->topic[n] == '\0') {
			return s;
		}
	}
	return NULL;
}

static int
gw__streams_grow(gw_gateway *gw)
{
	size_t n = gw->nbuckets ? gw->nbuckets * 2 : 64;
	gw_stream **b = calloc(n, sizeof(*b));

	if (b == NULL) {
		return -ENOMEM;
	}
	for (size_t i = 0; i < gw->nbuckets; i++) {
		gw_stream *s = gw->buckets[i];
		while (s != NULL) {
			gw_stream *next = s->hnext;
			s->hnext = b[s->hash & (n - 1)];
			b[s->hash & (n - 1)] = s;
			s = next;
		}
	}
	free(gw->buckets);
	gw->buckets = b;
	gw->nbuckets = n;
	return 0;
}

static gw_stream *
gw__stream_get(gw_gateway *gw, const char *owner, const char *name)
{
	size_t olen = strlen(owner), nlen = strlen(name);
	char topic[LS_APPKEY_MAX + LS_STREAM_MAX + 2];
	gw_stream *s;

	snprintf(topic, sizeof(topic), "%s:%s", owner, name);
	s = gw__stream_find(gw, topic, olen + 1 + nlen);
	if (s != NULL) {
		return s;
	}
	if (gw->nstreams + 1 > gw->nbuckets && gw__streams_grow(gw) != 0) {
		return NULL;
	}
	s = calloc(1, sizeof(*s) + olen + nlen + 2 + olen + 1 + nlen + 1);
	if (s == NULL) {
		return NULL;
	}
	memcpy(s->topic, topic, olen + nlen + 2);
	s->owner = s->topic + olen + nlen + 2;
	memcpy(s->owner, owner, olen + 1);
	s->name = s->owner + olen + 1;
	memcpy(s->name, name, nlen + 1);
	s->hash = gw__hash(s->topic, olen + 1 + nlen);
	if (ps_fabric_subscribe(gw->fabric, s->topic) != 0) {
		free(s);
		return NULL;
	}
	s->hnext = gw->buckets[s->hash & (gw->nbuckets - 1)];
	gw->buckets[s->hash & (gw->nbuckets - 1)] = s;
	gw->nstreams++;
	return s;
}

static void
gw__stream_release(gw_gateway *gw, gw_stream *s)
{
	gw_stream **pp;

	if (s->nsubs > 0) {
		return;
	}
	for (pp = &gw->buckets[s->hash & (gw->nbuckets - 1)]; *pp != NULL;
	     pp = &(*pp)->hnext) {
		if (*pp == s) {
			*pp = s->hnext;
			break;
		}
	}
	if (gw->fabric != NULL) {
		ps_fabric_unsubscribe(gw->fabric, s->topic);
	}
	gw->nstreams--;
	free(s);
}

void
gw_streams_free(gw_gateway *gw)
{
	/* Subscriptions are gone with their connections; only the table. */
	free(gw->buckets);
	gw->buckets = NULL;
	gw->nbuckets = 0;
}

/* ---- subscriptions ------------------------------------------------------ */

int
gw_sub_add(gw_conn *c, const char *owner, const char *stream, q_query *query,
           gw_sub **out)
{
	gw_gateway *gw = c->gw;
	gw_sub *sub;
	gw_stream *s;
	char head[LS_APPKEY_MAX + LS_STREAM_MAX + LS_SUB_ID_MAX + 64];
	int n;

	if ((long)c->nsubs >= gw->max_subscriptions) {
		return LS_ETOOLARGE;
	}
	sub = calloc(1, sizeof(*sub));
	if (sub == NULL) {
		return -ENOMEM;
	}
	snprintf(sub->id, sizeof(sub->id), "s%llu",
	         (unsigned long long)++c->sub_seq);
	/* owner and stream were checked to be [A-Za-z0-9_.-]: no escaping.
	 * An SSE event carries the Data message itself (the writer closes
	 * it with GW_SSE_TAIL). */
	n = snprintf(head, sizeof(head),
	             "%s{\"owner\":\"%s\",\"stream\":\"%s\","
	             "\"sub\":\"%s\",\"data\":",
	             c->framing == GW_FRAMING_SSE ? "event: data\ndata: "
	                                          : "{\"t\":5,\"m\":",
	             owner, stream, sub->id);
	sub->head = gw_buf_new(head, (size_t)n);
	s = sub->head ? gw__stream_get(gw, owner, stream) : NULL;
	if (s == NULL) {
		gw_buf_unref(&sub->head);
		free(sub);
		return -ENOMEM;
	}
	sub->conn = c;
	sub->stream = s;
	sub->query = query;
	sub->snext = s->subs;
	if (s->subs != NULL) {
		s->subs->sprev = sub;
	}
	s->subs = sub;
	s->nsubs++;
	if (query != NULL) {
		s->nquery++;
	}
	sub->cnext = c->subs;
	if (c->subs != NULL) {
		c->subs->cprev = sub;
	}
	c->subs = sub;
	c->nsubs++;
	gw->nsubs++;
	*out = sub;
	return 0;
}

static void gw__rec_detach(gw_sub *sub);

static void
gw__sub_free(gw_conn *c, gw_sub *sub)
{
	gw_stream *s = sub->stream;

	gw__rec_detach(sub);
	if (sub->sprev != NULL) {
		sub->sprev->snext = sub->snext;
	} else {
		s->subs = sub->snext;
	}
	if (sub->snext != NULL) {
		sub->snext->sprev = sub->sprev;
	}
	s->nsubs--;
	if (sub->query != NULL) {
		s->nquery--;
	}
	if (sub->cprev != NULL) {
		sub->cprev->cnext = sub->cnext;
	} else {
		c->subs = sub->cnext;
	}
	if (sub->cnext != NULL) {
		sub->cnext->cprev = sub->cprev;
	}
	c->nsubs--;
	c->gw->nsubs--;
	gw__stream_release(c->gw, s);
	q_query_destroy(&sub->query);
	gw_buf_unref(&sub->head);
	free(sub);
}

int
gw_sub_remove(gw_conn *c, const char *id)
{
	for (gw_sub *sub = c->subs; sub != NULL; sub = sub->cnext) {
		if (strcmp(sub->id, id) == 0) {
			gw__sub_free(c, sub);
			return 0;
		}
	}
	return LS_ENOTFOUND;
}

void
gw_sub_end(gw_sub *sub, ls_proto_code code, const char *message)
{
	gw_conn *c = sub->conn;

	ls_debug(GW_LOG, "%s: subscription %s on %s ended: %s", c->conn_id,
	         sub->id, sub->stream->topic, ls_proto_code_name(code));
	if (c->framing == GW_FRAMING_SSE) {
		/* The stream is the subscription: event: error, then the
		 * end of the response. */
		unsigned close = ls_proto_error_row(code)->close_code;
		gw_conn_fail(c, close ? (int)close : LS_CLOSE_NORMAL,
		             ls_proto_code_name(code), "%s", message);
		gw__sub_free(c, sub);
		return;
	}
	gw_conn_send(c, LS_T_SUBSCRIPTION_ENDED,
	             json_pack("{s:s,s:{s:s,s:s}}", "subscriptionId", sub->id,
	                       "error", "code", ls_proto_code_name(code),
	                       "message", message));
	gw__sub_free(c, sub);
}

void
gw_subs_clear(gw_conn *c)
{
	while (c->subs != NULL) {
		gw__sub_free(c, c->subs);
	}
}

/* ---- queue -------------------------------------------------------------- */

/* The end of an SSE data event: the Data message's "}", the id line
 * when the message has an offset, and the blank line that dispatches
 * the event. */
#define GW_SSE_TAIL     "}\n"
#define GW_SSE_TAIL_LEN 2
#define GW_SSE_ID       "id: "
#define GW_SSE_ID_LEN   4
#define GW_SSE_OFFSET   ",\"offset\":"
#define GW_SSE_OFFSET_N 10
/* An SSE comment: keeps proxies from timing the response out. */
#define GW_SSE_KEEPALIVE ": keep-alive\n\n"

static size_t
gw__payload_len(const gw_qent *e)
{
	return (e->head ? e->head->len + 2 : 0) + e->body->len;
}

static size_t
gw__header_len(size_t n)
{
	return n < 126 ? 2 : n <= 0xFFFF ? 4 : 10;
}

/*
 * The offset of a delivery body ("" none): a body with an offset ends in
 * ,"offset":N (gw__body_new), which no JSON value itself ends with.
 */
static size_t
gw__sse_offset(const gw_buf *b, const char **digits)
{
	size_t n = 0;

	while (n < b->len && n <= 20 && b->data[b->len - 1 - n] >= '0' &&
	       b->data[b->len - 1 - n] <= '9') {
		n++;
	}
	if (n == 0 || n > 20 || b->len < n + GW_SSE_OFFSET_N ||
	    memcmp(b->data + b->len - n - GW_SSE_OFFSET_N, GW_SSE_OFFSET,
	           GW_SSE_OFFSET_N) != 0) {
		return 0;
	}
	*digits = b->data + b->len - n;
	return n;
}

/* The id line of an SSE delivery: "id: epoch:offset\n", or nothing. */
static size_t
gw__sse_id_len(const gw_conn *c, const gw_buf *body)
{
	const char *digits;
	size_t n = gw__sse_offset(body, &digits);
	size_t elen = strlen(gw_sse_epoch(c));

	return n > 0 && elen > 0 ? GW_SSE_ID_LEN + elen + 1 + n + 1 : 0;
}

/* The bytes e takes on the wire of c (its framing included). */
static size_t
gw__entry_len(const gw_conn *c, const gw_qent *e)
{
	size_t n;

	if (c->framing == GW_FRAMING_SSE) {
		/* A control entry is a whole event already (gw_sse.c). */
		return e->head ? e->head->len + e->body->len +
		                         GW_SSE_TAIL_LEN +
		                         gw__sse_id_len(c, e->body) + 1
		               : e->body->len;
	}
	n = gw__payload_len(e);
	return gw__header_len(n) + n;
}

static void
gw__queue_append(gw_conn *c, gw_buf *head, gw_buf *body, size_t len)
{
	size_t i = c->qhead + c->qcount;
	gw_qent *e = &c->q[i < c->qcap ? i : i - c->qcap];

	e->head = head;
	e->body = body;
	e->len = len;
	c->qcount++;
	c->qbytes += len;
}

static int
gw__queue_reserve(gw_conn *c)
{
	gw_qent *q;
	size_t cap;

	if (c->qcount < c->qcap) {
		return 0;
	}
	cap = c->qcap ? c->qcap * 2 : 8;
	q = malloc(cap * sizeof(*q));
	if (q == NULL) {
		return -ENOMEM;
	}
	for (size_t i = 0; i < c->qcount; i++) {
		q[i] = c->q[(c->qhead + i) % c->qcap];
	}
	free(c->q);
	c->q = q;
	c->qcap = cap;
	c->qhead = 0;
	return 0;
}

void
gw_queue_clear(gw_conn *c)
{
	while (c->qcount > 0) {
		gw_qent *e = &c->q[c->qhead];
		if (e->head != NULL) {
			c->gw->m.dropped++;
		}
		gw_buf_unref(&e->head);
		gw_buf_unref(&e->body);
		c->qhead = (c->qhead + 1) % c->qcap;
		c->qcount--;
	}
	c->qbytes = 0;
	c->qhead = 0;
}

/*
 * Read-ahead: lws reads a connection GW_RX_CHUNK bytes per loop iteration
 * (small chunks keep idle connections small), about one publish. Writing
 * the fan-out after every iteration would then cost one send() per
 * subscriber and message however far behind the loop is, and past
 * saturation the backlog would grow without end. So while a connection
 * that published since the last flush has more input waiting in its
 * socket, the flush is put off and the loop goes round to read it — what
 * had arrived when the flush was first due, not what arrives meanwhile:
 * every message read joins the same batches, one send() per subscriber
 * for all of them. Bounded: for at most as much CPU time as the last
 * flush took (GW_READ_AHEAD_MIN_NS .. GW_READ_AHEAD_MAX_NS), and never past
 * the back-pressure limit (gateway.fanout_pause_bytes) — reading and
 * writing take turns, and a message waits at most about one write pass
 * longer than it would have.
 */
static void
gw__ahead_idle(struct ev_loop *loop, ev_idle *w, int revents)
{
	(void)revents;
	ev_idle_stop(loop, w);
}

static bool
gw__read_ahead(gw_gateway *gw)
{
	int64_t now, limit;
	bool more = false;

	if (gw->readers == NULL || gw->flush == NULL ||
	    gw->fanout_bytes >= (size_t)gw->fanout_pause_bytes) {
		return false;
	}
	/* CPU time: with a CPU limit (a container's quota) or a busy
	 * machine, wall time would leave reading almost nothing. */
	now = ls_thread_cpu_ns();
	limit = gw->flush_took < GW_READ_AHEAD_MIN_NS   ? GW_READ_AHEAD_MIN_NS
	        : gw->flush_took > GW_READ_AHEAD_MAX_NS ? GW_READ_AHEAD_MAX_NS
	                                                : gw->flush_took;
	if (gw->read_since != 0 && now - gw->read_since >= limit) {
		return false;
	}
	for (gw_conn *c = gw->readers; c != NULL; c = c->reader_next) {
		int unread = 0;
		if (c->rx_paused || c->state == GW_CS_CLOSING) {
			continue;
		}
		if ((gw->read_since == 0 || c->ahead_left > 0) &&
		    ioctl((int)lws_get_socket_fd(c->wsi), FIONREAD, &unread) !=
		            0) {
			unread = 0;
		}
		if (gw->read_since == 0 && unread > 0) {
			/* What has arrived by now is read before the flush;
			 * what arrives meanwhile waits for the next one. */
			c->ahead_left = (size_t)unread;
		} else if (unread == 0) {
			/* All read (ahead_left counts no frame headers). */
			c->ahead_left = 0;
		}
		more = more || c->ahead_left > 0;
	}
	if (!more) {
		return false;
	}
	if (gw->read_since == 0) {
		gw->read_since = now;
	}
	gw->m.reads_ahead++;
	/* The loop must not sleep with a flush put off: an active idle
	 * watcher makes this poll return at once. */
	if (!ev_is_active(&gw->ahead_w)) {
		ev_idle_init(&gw->ahead_w, gw__ahead_idle);
		ev_idle_start(gw->loop, &gw->ahead_w);
	}
	return true;
}

/* c read len bytes of a message: what it had to read ahead shrinks (the
 * frame headers are not counted: a little more may be read). */
void
gw_read_ahead_consumed(gw_conn *c, size_t len)
{
	c->ahead_left = len < c->ahead_left ? c->ahead_left - len : 0;
}

static void
gw__readers_clear(gw_gateway *gw)
{
	while (gw->readers != NULL) {
		gw_conn *c = gw->readers;
		gw->readers = c->reader_next;
		c->reader_next = NULL;
		c->reader_listed = false;
		c->ahead_left = 0;
	}
	gw->read_since = 0;
}

/*
 * A fan-out does not ask lws for WRITEABLE on a connection whose queue it
 * started while nothing is buffered inside lws: the connection goes on a
 * list written once per loop iteration, just before the loop waits again
 * (every message handled in the iteration is then in the batch). At light
 * load this saves, per delivery, the epoll_ctl and the loop round trip
 * before the one send(). Writing outside the callback keeps the byte order
 * (lws 4.1.6 lws_issue_raw: a write while output is buffered is appended
 * behind it; an unsent remainder is buffered, WRITEABLE requested, and
 * drained before the next WRITEABLE callback). With buffered output the
 * queue waits for WRITEABLE, so a slow reader still meets the queue limit
 * instead of growing lws's buffer.
 */
static void
gw__flush_cb(struct ev_loop *loop, ev_prepare *w, int revents)
{
	gw_gateway *gw = w->data;
	int64_t start;

	(void)revents;
	if (gw__read_ahead(gw)) {
		return; /* the watcher stays: the next iteration decides */
	}
	ev_prepare_stop(loop, w);
	ev_idle_stop(loop, &gw->ahead_w);
	gw__readers_clear(gw);
	start = gw->flush != NULL ? ls_thread_cpu_ns() : 0;
	gw->fanout_bytes = 0;
	while (gw->flush != NULL) {
		gw_conn *c = gw->flush;

		gw->flush = c->flush_next;
		c->flush_next = NULL;
		c->flush_queued = false;
		if (c->qcount == 0) {
			continue; /* written meanwhile on WRITEABLE */
		}
		/* Closing (the close handshake belongs to the callback) or
		 * behind: the usual way. */
		if (c->state == GW_CS_CLOSING || c->close_code != 0 ||
		    !gw_sse_started(c) || lws_partial_buffered(c->wsi)) {
			lws_callback_on_writable(c->wsi);
			continue;
		}
		if (gw_queue_write(c) != 0) {
			/* What the callback's -1 would do: close it. */
			lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK,
			                LWS_TO_KILL_ASYNC);
		}
	}
	/* Written: the publishers may be read again. */
	while (gw->paused != NULL) {
		gw_conn *c = gw->paused;

		gw->paused = c->paused_next;
		c->paused_next = NULL;
		c->rx_paused = false;
		lws_rx_flow_control(c->wsi, 1);
	}
	if (start != 0) {
		gw->flush_took = ls_thread_cpu_ns() - start;
	}
}

static void
gw__flush_arm(gw_gateway *gw)
{
	if (!ev_is_active(&gw->flush_w)) {
		ev_prepare_init(&gw->flush_w, gw__flush_cb);
		gw->flush_w.data = gw;
		ev_prepare_start(gw->loop, &gw->flush_w);
	}
}

/*
 * Back-pressure: a loop that reads publishes faster than it writes their
 * fan-out would queue without bound (and deliver ever later). Once an
 * iteration has queued gateway.fanout_pause_bytes, the connection whose
 * publish took it there is not read again (lws_rx_flow_control; what lws
 * already read waits in its buffer) until the flush has written the
 * iteration's batches: reading and writing alternate, the publisher's TCP
 * window fills and slows it down. Only bytes queued in this iteration count —
 * a slow subscriber's backlog (bounded by gateway.queue_limit_bytes) never
 * holds publishers back.
 */
void
gw_publisher_check(gw_conn *c)
{
	gw_gateway *gw = c->gw;

	if (c->state == GW_CS_CLOSING) {
		return;
	}
	if (!c->reader_listed && gw->flush != NULL) {
		/* gw__read_ahead looks at its socket before the flush. */
		c->reader_listed = true;
		c->reader_next = gw->readers;
		gw->readers = c;
	}
	if (gw->fanout_bytes < (size_t)gw->fanout_pause_bytes ||
	    c->rx_paused) {
		return;
	}
	if (lws_rx_flow_control(c->wsi, 0) != 0) {
		return;
	}
	c->rx_paused = true;
	c->paused_next = gw->paused;
	gw->paused = c;
	gw->m.publishers_paused++;
	gw__flush_arm(gw);
}

static void
gw__want_write(gw_conn *c)
{
	gw_gateway *gw = c->gw;

	if (!gw->fanout || lws_partial_buffered(c->wsi)) {
		lws_callback_on_writable(c->wsi);
		return;
	}
	if (c->flush_queued) {
		return;
	}
	gw__flush_arm(gw);
	c->flush_queued = true;
	c->flush_next = gw->flush;
	gw->flush = c;
}

/* Take c off one of the gateway's singly linked lists of connections,
 * the one whose link is at offset link in gw_conn. */
static void
gw__list_remove(gw_conn **head, gw_conn *c, size_t link)
{
	for (gw_conn **pp = head; *pp != NULL;
	     pp = (gw_conn **)((char *)*pp + link)) {
		if (*pp == c) {
			*pp = *(gw_conn **)((char *)c + link);
			break;
		}
	}
	*(gw_conn **)((char *)c + link) = NULL;
}

void
gw_flush_forget(gw_conn *c)
{
	if (c->reader_listed) {
		gw__list_remove(&c->gw->readers, c,
		                offsetof(gw_conn, reader_next));
		c->reader_listed = false;
		c->ahead_left = 0;
	}
	if (c->rx_paused) {
		gw__list_remove(&c->gw->paused, c,
		                offsetof(gw_conn, paused_next));
		c->rx_paused = false;
	}
	if (!c->flush_queued) {
		return;
	}
	gw__list_remove(&c->gw->flush, c, offsetof(gw_conn, flush_next));
	c->flush_queued = false;
	if (c->gw->flush == NULL && c->gw->paused == NULL) {
		ev_prepare_stop(c->gw->loop, &c->gw->flush_w);
	}
}

int
gw_queue_push(gw_conn *c, gw_buf *head, gw_buf *body)
{
	gw_gateway *gw = c->gw;
	gw_qent probe = { head, body, 0 };
	size_t n = gw__entry_len(c, &probe);

	if (c->state == GW_CS_CLOSING) {
		if (head != NULL) {
			gw->m.dropped++;
		}
		goto drop;
	}
	/* An empty queue takes any one frame: a single message larger than
	 * the limit is not a slow consumer. */
	if (c->qcount > 0 && (long)(c->qbytes + n) > gw->queue_limit_bytes) {
		if (head != NULL) {
			gw->m.dropped++;
		}
		gw_buf_unref(&head);
		gw_buf_unref(&body);
		gw->m.slow_consumers++;
		gw_queue_clear(c);
		ls_log_ratelimited(&gw__slow_log, LS_LOG_INFO, GW_LOG,
		                   "slow consumer %s from %s: more than %ld "
		                   "bytes unsent, closing",
		                   c->conn_id, c->ip, gw->queue_limit_bytes);
		gw_conn_error(
		        c, LS_PC_SLOW_CONSUMER,
		        "unsent data passed the queue limit of %ld bytes",
		        gw->queue_limit_bytes);
		return LS_ESLOW;
	}
	if (gw__queue_reserve(c) != 0) {
		gw->m.dropped++;
		goto drop;
	}
	gw__queue_append(c, head, body, n);
	gw->fanout_bytes += n;
	if (head != NULL) {
		gw->m.messages_out++;
	}
	/* A non-empty queue always has a write pending (a writeable request,
	 * or a place on the fan-out's write list; the writer asks again while
	 * frames remain): arrange it only on the first. */
	if (c->qcount == 1) {
		gw__want_write(c);
	}
	return 0;
drop:
	gw_buf_unref(&head);
	gw_buf_unref(&body);
	return 0;
}

void
gw__queue_force(gw_conn *c, gw_buf *body)
{
	gw_qent probe = { NULL, body, 0 };

	if (gw__queue_reserve(c) != 0) {
		gw_buf_unref(&body);
		return;
	}
	gw__queue_append(c, NULL, body, gw__entry_len(c, &probe));
	lws_callback_on_writable(c->wsi);
}

static unsigned char *
gw__frame_header(unsigned char *p, size_t n)
{
	*p++ = 0x81; /* FIN, text; server frames are not masked */
	if (n < 126) {
		*p++ = (unsigned char)n;
	} else if (n <= 0xFFFF) {
		*p++ = 126;
		*p++ = (unsigned char)(n >> 8);
		*p++ = (unsigned char)n;
	} else {
		*p++ = 127;
		for (int i = 7; i >= 0; i--) {
			*p++ = (unsigned char)((uint64_t)n >> (8 * i));
		}
	}
	return p;
}

/* Room for need more bytes after used in the batch buffer. */
static int
gw__wbuf_room(gw_gateway *gw, size_t used, size_t need)
{
	if (LWS_PRE + used + need > gw->wcap) {
		size_t cap = LWS_PRE + used + need;
		unsigned char *w = realloc(gw->wbuf, cap);
		if (w == NULL) {
			return -1;
		}
		gw->wbuf = w;
		gw->wcap = cap;
	}
	return 0;
}

/*
 * Copy a message body into an SSE event. A "data:" line ends at a line
 * break, and valid JSON may hold raw CR or LF only as whitespace between
 * tokens (inside strings they are escaped), so they become spaces: the
 * same JSON value on one line.
 */
static unsigned char *
gw__sse_body(unsigned char *p, const gw_buf *b)
{
	const char *s = b->data, *end = s + b->len;

	while (s < end) {
		const char *nl = s;
		while (nl < end && *nl != '\n' && *nl != '\r') {
			nl++;
		}
		memcpy(p, s, (size_t)(nl - s));
		p += nl - s;
		if (nl < end) {
			*p++ = ' ';
			nl++;
		}
		s = nl;
	}
	return p;
}

/* Copy entry e, framed for c, to p (gw__entry_len bytes). */
static unsigned char *
gw__put(const gw_conn *c, unsigned char *p, const gw_qent *e)
{
	if (c->framing == GW_FRAMING_SSE) {
		if (e->head == NULL) {
			memcpy(p, e->body->data, e->body->len);
			return p + e->body->len;
		}
		const char *epoch = gw_sse_epoch(c), *digits;
		size_t n = gw__sse_offset(e->body, &digits);
		memcpy(p, e->head->data, e->head->len);
		p = gw__sse_body(p + e->head->len, e->body);
		memcpy(p, GW_SSE_TAIL, GW_SSE_TAIL_LEN);
		p += GW_SSE_TAIL_LEN;
		if (n > 0 && epoch[0] != '\0') {
			/* EventSource sends it back as Last-Event-ID */
			size_t elen = strlen(epoch);
			memcpy(p, GW_SSE_ID, GW_SSE_ID_LEN);
			memcpy(p + GW_SSE_ID_LEN, epoch, elen);
			p += GW_SSE_ID_LEN + elen;
			*p++ = ':';
			memcpy(p, digits, n);
			p += n;
			*p++ = '\n';
		}
		*p++ = '\n';
		return p;
	}
	p = gw__frame_header(p, gw__payload_len(e));
	if (e->head != NULL) {
		memcpy(p, e->head->data, e->head->len);
		p += e->head->len;
	}
	memcpy(p, e->body->data, e->body->len);
	p += e->body->len;
	if (e->head != NULL) {
		*p++ = '}';
		*p++ = '}';
	}
	return p;
}

/*
 * Write a batch (LWS_PRE bytes of room before p). A plain-TCP WebSocket
 * with nothing buffered inside lws takes it with send() on its socket:
 * lws_write would make the same one send() through several layers of
 * checks, which at one small frame per connection and message cost as
 * much again as the rest of the delivery. What the kernel does not take
 * goes to lws_write, which buffers it, asks for WRITEABLE and drains it
 * before anything else is written on the connection — so nothing lws
 * writes itself (a pong, a close frame) can land inside a frame, and no
 * direct write can pass bytes lws holds: it is tried only when lws holds
 * none. TLS connections (the record layer belongs to lws) and SSE
 * responses (an HTTP body: lws may frame or count it) always take
 * lws_write.
 */
static int
gw__send(gw_conn *c, unsigned char *p, size_t n)
{
	bool direct = c->framing == GW_FRAMING_WS && !lws_is_ssl(c->wsi) &&
	              !lws_partial_buffered(c->wsi);
	int fd = direct ? (int)lws_get_socket_fd(c->wsi) : -1;
	int mode =
	        c->framing == GW_FRAMING_SSE ? LWS_WRITE_HTTP : LWS_WRITE_RAW;
	size_t sent = 0;

	if (fd >= 0) {
		ssize_t k = send(fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (k > 0) {
			sent = (size_t)k;
		} else if (k < 0 && errno != EAGAIN && errno != EWOULDBLOCK &&
		           errno != EINTR) {
			/* Reset or gone: what lws_write would report. */
			return -1;
		}
		c->gw->m.direct_writes++;
		if (sent == n) {
			return 0;
		}
	}
	/* The rest (or all): lws sends what it can and buffers the tail. */
	if (lws_write(c->wsi, p + sent, n - sent,
	              (enum lws_write_protocol)mode) < (int)(n - sent)) {
		return -1;
	}
	return 0;
}

int
gw_queue_write(gw_conn *c)
{
	gw_gateway *gw = c->gw;
	bool sse = c->framing == GW_FRAMING_SSE;
	size_t used = 0;

	if (!gw_sse_started(c)) {
		/* The response head goes first, on its own (gw_sse.c). */
		return gw_sse_write_head(c);
	}
	while (c->qcount > 0) {
		gw_qent *e = &c->q[c->qhead];
		size_t need = e->len;

		if (used > 0 && used + need > GW_BATCH_BYTES) {
			break;
		}
		if (gw__wbuf_room(gw, used, need) != 0) {
			return -1;
		}
		gw__put(c, gw->wbuf + LWS_PRE + used, e);
		used += need;
		c->qbytes -= need;
		gw_buf_unref(&e->head);
		gw_buf_unref(&e->body);
		if (++c->qhead == c->qcap) {
			c->qhead = 0;
		}
		c->qcount--;
	}
	if (c->qcount == 0) {
		c->qhead = 0;
	}
	if (!sse && c->qcount == 0 && c->close_code != 0 && !c->close_sent) {
		/* Our own close frame, after the queue: the socket stays until
		 * the peer answers it or the reaper's deadline cuts it (lws's
		 * close handshake would arm a timeout per connection in one
		 * sorted list, a walk past every other closing connection). */
		char reason[16];
		int rn = snprintf(reason, sizeof(reason), "%d", c->close_code);
		unsigned char *p;
		if (gw__wbuf_room(gw, used, 4 + (size_t)rn) != 0) {
			return -1;
		}
		p = gw->wbuf + LWS_PRE + used;
		*p++ = 0x88; /* FIN, close */
		*p++ = (unsigned char)(2 + rn);
		*p++ = (unsigned char)(c->close_code >> 8);
		*p++ = (unsigned char)c->close_code;
		memcpy(p, reason, (size_t)rn);
		used += 4 + (size_t)rn;
		c->close_sent = true;
	}
	if (c->ping_due && c->close_code == 0) {
		/* A ping rides along with the batch. It carries a payload:
		 * lws 4.1 does not report a pong with an empty one. SSE has
		 * no pings: a comment line keeps the response alive. */
		static const unsigned char ping[4] = { 0x89, 0x02, 'l', 's' };
		const void *k = sse ? (const void *)GW_SSE_KEEPALIVE : ping;
		size_t kn = sse ? sizeof(GW_SSE_KEEPALIVE) - 1 : sizeof(ping);
		if (gw__wbuf_room(gw, used, kn) != 0) {
			return -1;
		}
		memcpy(gw->wbuf + LWS_PRE + used, k, kn);
		used += kn;
		c->ping_due = false;
	}
	if (used > 0) {
		/* Raw: our own frames, one send() for the batch (DESIGN); an
		 * SSE response is the body of an HTTP answer without length,
		 * ended by closing the connection. */
		if (gw__send(c, gw->wbuf + LWS_PRE, used) != 0) {
			return -1;
		}
		if (sse && !lws_partial_buffered(c->wsi)) {
			/* The peer reads (it sends nothing to show it is
			 * there): what the kernel took counts as alive. */
			gw_conn_alive(c);
		}
		if (c->qcount > 0 || (sse && c->close_code != 0)) {
			lws_callback_on_writable(c->wsi);
		}
		return 0;
	}
	if (sse && c->close_code != 0) {
		return -1; /* the end of the response */
	}
	return 0;
}

/* ---- fan-out ------------------------------------------------------------ */

/* Longest body suffix: ,"offset":18446744073709551615 */
#define GW_OFFSET_SUFFIX_MAX 40

/*
 * A body buffer: len bytes of JSON followed, for a message with an offset,
 * by ,"offset":N — the frame's "}}" closes the object after it. The offset
 * is per message, so it lives in the body that all subscriptions share,
 * never in the per-subscription head.
 */
static gw_buf *
gw__body_new(const char *json, size_t len, uint64_t offset)
{
	char suffix[GW_OFFSET_SUFFIX_MAX];
	int n = 0;
	gw_buf *b;

	if (offset > 0) {
		n = snprintf(suffix, sizeof(suffix), ",\"offset\":%llu",
		             (unsigned long long)offset);
	}
	b = gw_buf_new(NULL, len + (size_t)n);
	if (b != NULL) {
		memcpy(b->data, json, len);
		memcpy(b->data + len, suffix, (size_t)n);
	}
	return b;
}

static gw_buf *
gw__dump(json_t *v, uint64_t offset)
{
	size_t n = 0;
	char *text = ls_json_dumps(v, &n);
	gw_buf *b;

	if (text == NULL) {
		return NULL;
	}
	b = gw__body_new(text, n, offset);
	free(text);
	return b;
}

gw_buf *
gw_message(const char *payload, size_t len, uint64_t offset, bool parse,
           json_t **msg, size_t *jlen)
{
	size_t from, to, n = 0;
	gw_buf *shared;
	char *text;

	*msg = NULL;
	if (gw_json_valid(payload, len, &from, &to)) {
		*jlen = to - from;
		shared = gw__body_new(payload + from, to - from, offset);
		if (shared != NULL && parse) {
			*msg = json_loadb(payload + from, to - from,
			                  JSON_DECODE_ANY, NULL);
		}
		return shared;
	}
	json_t *str = json_stringn(payload, len);
	text = str ? ls_json_dumps(str, &n) : NULL;
	shared = text ? gw__body_new(text, n, offset) : NULL;
	free(text);
	*jlen = n;
	if (parse && shared != NULL) {
		*msg = str;
	} else {
		json_decref(str);
	}
	return shared;
}

/*
 * Queue one message for sub (a live subscription). Returns false when the
 * subscription was ended (its query ran out of budget): sub is freed.
 */
static bool
gw__deliver(gw_sub *sub, gw_buf *shared, json_t *msg, uint64_t offset)
{
	gw_gateway *gw = sub->conn->gw;
	json_t *out = NULL;
	gw_buf *body;
	int rc;

	if (sub->query == NULL) {
		gw_queue_push(sub->conn, gw_buf_ref(sub->head),
		              gw_buf_ref(shared));
		return true;
	}
	if (msg == NULL) {
		gw->m.dropped++; /* JSON jansson refuses (huge number) */
		return true;
	}
	rc = q_query_apply(sub->query, msg, &out);
	if (rc == LS_ECOSTLY) {
		/* Ended rather than left to cost every message its budget
		 * again. */
		char text[160];
		snprintf(text, sizeof(text),
		         "the query ran out of its budget of %ld steps on a "
		         "message (docs/query.md)",
		         (long)Q_EVAL_BUDGET);
		gw->m.queries_too_costly++;
		gw_sub_end(sub, LS_PC_QUERY_TOO_COSTLY, text);
		return false;
	}
	if (rc != 1) {
		return true;
	}
	body = out == msg ? gw_buf_ref(shared) : gw__dump(out, offset);
	json_decref(out);
	if (body == NULL) {
		gw->m.dropped++;
		return true;
	}
	gw_queue_push(sub->conn, gw_buf_ref(sub->head), body);
	return true;
}

/* ---- recovery (the merge itself is gw_recover.c) ------------------------ */

/* The subscription goes: a read in flight frees the gw_rec itself. */
static void
gw__rec_detach(gw_sub *sub)
{
	gw_rec *r = sub->rec;

	sub->rec = NULL;
	gw_rec_release(r);
}

static void
gw__rec_buffer(gw_sub *sub, gw_buf *shared, size_t jlen, uint64_t offset,
               const char *epoch)
{
	gw_conn *c = sub->conn;
	int rc = gw_rec_buffer(sub->rec, shared, jlen, offset, epoch,
	                       (size_t)c->gw->queue_limit_bytes);

	if (rc == -ENOBUFS) {
		/* Bounded like the queue the messages are headed for. */
		c->gw->m.slow_consumers++;
		ls_log_ratelimited(&gw__slow_log, LS_LOG_INFO, GW_LOG,
		                   "slow consumer %s from %s: more than %ld "
		                   "bytes buffered during recovery, closing",
		                   c->conn_id, c->ip,
		                   c->gw->queue_limit_bytes);
		gw_conn_error(c, LS_PC_SLOW_CONSUMER,
		              "messages buffered during recovery passed the "
		              "queue limit of %ld bytes",
		              c->gw->queue_limit_bytes);
	} else if (rc != 0) {
		c->gw->m.dropped++;
	}
}

static bool
gw__rec_emit(void *user, gw_buf *shared, json_t *msg, uint64_t offset)
{
	return gw__deliver(user, shared, msg, offset);
}

static void
gw__rec_finish(gw_sub *sub, int status, const ps_history_result *res)
{
	gw_rec *r = sub->rec;
	gw_conn *c = sub->conn;
	bool recovered = false;
	json_t *m;

	if (status == 0 && res != NULL) {
		recovered = gw_rec_recovered(r, res);
	} else if (status != -ENOTSUP) {
		ls_warn(GW_LOG, "history of %s unavailable (%s): live only",
		        sub->stream->topic, ls_strerror(status));
	}
	m = json_pack("{s:O,s:b,s:s}", "requestId", gw_rec_request_id(r), "ok",
	              1, "subscriptionId", sub->id);
	if (m != NULL && status == 0 && res != NULL) {
		json_object_set_new(m, "epoch", json_string(res->epoch));
		json_object_set_new(m, "offset",
		                    json_integer((json_int_t)res->latest));
	}
	if (status == 0 && res != NULL && res->latest > 0) {
		sub->floor = res->latest;
		snprintf(sub->floor_epoch, sizeof(sub->floor_epoch), "%s",
		         res->epoch);
	}
	if (m != NULL && gw_rec_has_since(r)) {
		json_object_set_new(m, "recovered", json_boolean(recovered));
	}
	gw_conn_send(c, LS_T_SUBSCRIBE_RESPONSE, m);
	sub->rec = NULL; /* live from here on */
	gw_rec_merge(r, status == 0 ? res : NULL, sub->query != NULL,
	             gw__rec_emit, sub);
	gw_rec_release(r);
}

static void
gw__rec_read_done(int status, const ps_history_result *res, void *user)
{
	gw_sub *sub = gw_rec_read_done(user);

	if (sub != NULL) {
		gw__rec_finish(sub, status, res);
	}
}

static void
gw__rec_read(gw_sub *sub)
{
	gw_rec *r = sub->rec;
	uint64_t since = 0;
	int rc;

	gw_rec_read_start(r);
	rc = ps_fabric_history(sub->conn->gw->fabric, sub->stream->topic,
	                       gw_rec_since(r, &since) ? since : 0,
	                       gw_rec_has_since(r) ? LS_HISTORY_SIZE_MAX : 0,
	                       gw__rec_read_done, r);
	if (rc != 0) {
		gw_rec_read_done(r);
		gw__rec_finish(sub, rc, NULL);
	}
}

void
gw_sub_start(gw_sub *sub, json_t *request_id, const char *since_epoch,
             uint64_t since_offset)
{
	gw_gateway *gw = sub->conn->gw;

	sub->rec = gw_rec_new(sub, request_id, since_epoch, since_offset);
	if (sub->rec == NULL) {
		gw_conn_fail(sub->conn, LS_CLOSE_SERVER_ERROR, "server_error",
		             "out of memory");
		return;
	}
	if (!ps_fabric_ready(gw->fabric)) {
		/* No history to ask: live only, said at once. */
		gw__rec_finish(sub, LS_EUNAVAILABLE, NULL);
		return;
	}
	if (ps_fabric_confirmed(gw->fabric, sub->stream->topic)) {
		gw__rec_read(sub);
	}
	/* else gw_fanout_subscribed starts it */
}

void
gw_fanout_subscribed(const char *topic, size_t topiclen, void *user)
{
	gw_gateway *gw = user;
	gw_stream *s = gw__stream_find(gw, topic, topiclen);

	if (s == NULL) {
		return;
	}
	for (gw_sub *sub = s->subs, *next; sub != NULL; sub = next) {
		next = sub->snext;
		if (sub->rec != NULL && !gw_rec_reading(sub->rec)) {
			gw__rec_read(sub);
		}
	}
}

/* ---- fan-out: the hot path ---------------------------------------------- */

void
gw_fanout_message(const char *topic, size_t topiclen, const char *payload,
                  size_t len, uint64_t offset, const char *epoch, void *user)
{
	gw_gateway *gw = user;
	gw_stream *s = gw__stream_find(gw, topic, topiclen);
	gw_buf *shared = NULL;
	json_t *msg = NULL;
	size_t jlen;

	gw->m.messages_fabric++;
	if (s == NULL || s->nsubs == 0) {
		return;
	}
	/* Parsed once, for every query of the stream. */
	shared = gw_message(payload, len, offset, s->nquery > 0, &msg, &jlen);
	if (shared == NULL) {
		ls_debug(GW_LOG, "dropped a message on %s: not UTF-8", topic);
		gw->m.dropped += s->nsubs;
		return;
	}
	gw->fanout = true;
	for (gw_sub *sub = s->subs, *next; sub != NULL; sub = next) {
		next = sub->snext;
		if (sub->rec != NULL) {
			gw__rec_buffer(sub, shared, jlen, offset, epoch);
			continue;
		}
		if (sub->floor != 0 && offset != 0) {
			if (offset <= sub->floor &&
			    strcmp(epoch, sub->floor_epoch) == 0) {
				continue; /* delivered by the history read */
			}
			sub->floor = 0; /* past it: no duplicate can follow */
		}
		(void)gw__deliver(sub, shared, msg, offset); /* keeps next */
	}
	gw->fanout = false;
	gw_buf_unref(&shared);
	json_decref(msg);
}
