/*
 * The Redis backend: hiredis async on the caller's libev loop.
 *
 * Two connections: the subscriber (one SUBSCRIBE per topic, never
 * PSUBSCRIBE: idle patterns slow every PUBLISH on the server) and the
 * publisher (a subscribed connection cannot PUBLISH). Each reconnects on
 * its own with exponential backoff; the subscriber re-subscribes every
 * topic. The fabric is ready when both are up and the re-subscription is
 * confirmed.
 *
 * History (docs/pubsub.md) lives in Redis, in two keys per stream that share
 * a hash tag: "ls:{owner:stream}" (hash: epoch, seq, ttl) and
 * "ls:{owner:stream}:h" (a Redis Stream of the retained messages, entry id
 * "<offset>-0"). The Redis function library below appends, trims and
 * publishes in one atomic call, so offsets have no gaps; it is loaded
 * (FUNCTION LOAD REPLACE) every time the publisher connects, and any Redis
 * client may call it. A message published with history goes out on the
 * channel "owner:stream#h" as "<epoch>:<offset>\n<data>", so a plain
 * PUBLISH on "owner:stream" (data only) can never be mistaken for one.
 * The subscriber subscribes both channels of a topic.
 *
 * hiredis 0.14 facts this file relies on: after onConnect(ac, REDIS_ERR)
 * the context is already freed; onDisconnect fires only after a
 * successful connect (also from redisAsyncFree, after pending callbacks
 * ran with a NULL reply); there is no connect timeout, so we arm our own.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ev.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include "ls_log.h"
#include "ps_internal.h"
#include "ps_redis_ev.h"

#define PS_REDIS_DEFAULT_PORT 6379
#define PS_REDIS_HOST_MAX     64
#define PS_REDIS_ERROR_MAX    128
/* Suffix of the channel that carries messages published with history. */
#define PS_REDIS_HCHAN     ("#h")
#define PS_REDIS_HCHAN_LEN 2
/* A stream's epoch and counter outlive its messages by at least this. */
#define PS_REDIS_META_TTL_S 86400

typedef enum ps__link_state {
	PS_LINK_DOWN,
	PS_LINK_CONNECTING,
	PS_LINK_UP,
} ps__link_state;

typedef struct ps__redis ps__redis;

typedef struct ps__link {
	ps__redis *r;
	const char *role; /* "subscriber" or "publisher" */
	redisAsyncContext *ac;
	ps__link_state state;
	bool was_up;    /* connected at least once: next success counts */
	int backoff_ms; /* delay before the next attempt */
	ev_timer connect_timer;
	ev_timer retry_timer;
	char error[PS_REDIS_ERROR_MAX];
} ps__link;

struct ps__redis {
	ps_fabric *f;
	char host[PS_REDIS_HOST_MAX];
	int port;
	ps__link sub;
	ps__link pub;
	size_t sync_pending; /* topics re-subscribed at connect, unconfirmed */
	bool control_syncing; /* control channel subscribed, unconfirmed */
	ev_tstamp sync_since; /* when the re-subscription was sent */
	size_t pending;       /* publishes waiting for their reply */
	ev_tstamp progress;   /* last publish reply (or first pending) */
	ev_timer watchdog;
	uint64_t rng; /* xorshift64 state for reconnect jitter */
	/* FUNCTION LOAD was refused (Redis < 7.0, or the command renamed):
	 * publishes go out plain, without history; reads say -ENOTSUP */
	bool no_functions;
	char status[2 * PS_REDIS_ERROR_MAX + PS_REDIS_HOST_MAX + 64];
};

typedef struct ps__pubreq {
	ps__redis *r;
	ps_publish_fn done;
	ps_history_fn hdone; /* a history read instead of a publish */
	void *user;
} ps__pubreq;

static void ps__link_connect(ps__link *l);

static ps__redis *
ps__r(const ps_fabric *f)
{
	return f->state;
}

int
ps__redis_url(const char *url, char *hostout, size_t hostcap, int *portout,
              ls_error *err)
{
	const char *p = url + strlen("redis://");
	const char *host = p, *hend, *port = NULL;
	char buf[sizeof(struct in6_addr)];
	int n;

	if (strncmp(url, "redis://", 8) != 0) {
		goto bad;
	}
	if (*p == '[') {
		host = p + 1;
		hend = strchr(host, ']');
		if (hend == NULL) {
			goto bad;
		}
		p = hend + 1;
	} else {
		hend = p + strcspn(p, ":/");
		p = hend;
	}
	if (*p == ':') {
		port = p + 1;
		p = port + strspn(port, "0123456789");
		if (p == port || p - port > 5) {
			goto bad;
		}
	}
	if (*p == '/') {
		p++;
	}
	if (*p != '\0' || hend == host || (size_t)(hend - host) >= hostcap) {
		goto bad;
	}
	memcpy(hostout, host, (size_t)(hend - host));
	hostout[hend - host] = '\0';
	if (strcmp(hostout, "localhost") == 0) {
		snprintf(hostout, hostcap, "127.0.0.1");
	}
	if (inet_pton(AF_INET, hostout, buf) != 1 &&
	    inet_pton(AF_INET6, hostout, buf) != 1) {
		/* Name resolution would block the loop. */
		return ls_error_set(err, -EINVAL,
		                    "pubsub: redis host \"%s\" must be an IP "
		                    "address (or localhost)",
		                    hostout);
	}
	n = port != NULL ? atoi(port) : PS_REDIS_DEFAULT_PORT;
	if (n <= 0 || n > 65535) {
		goto bad;
	}
	*portout = n;
	return 0;
bad:
	return ls_error_set(err, -EINVAL,
	                    "pubsub: bad redis URL \"%.80s\" (want "
	                    "redis://HOST:PORT)",
	                    url);
}

static const char *
ps__link_state_name(const ps__link *l)
{
	switch (l->state) {
	case PS_LINK_UP:
		return "up";
	case PS_LINK_CONNECTING:
		return "connecting";
	default:
		return "down";
	}
}

/*
 * Up to ±25% around the backoff, so that gateways that lost the same Redis
 * at the same moment do not all come back in the same millisecond.
 */
static double
ps__jitter(ps__redis *r, int ms)
{
	r->rng ^= r->rng << 13;
	r->rng ^= r->rng >> 7;
	r->rng ^= r->rng << 17;
	double unit = (double)(r->rng >> 11) / (double)(1ULL << 53);
	double d = ms * (0.75 + 0.5 * unit);
	/* reconnect_max_ms stays the longest wait, jitter included. */
	return d < r->f->reconnect_max_ms ? d : r->f->reconnect_max_ms;
}

static void
ps__link_retry_later(ps__link *l)
{
	ps__redis *r = l->r;
	l->state = PS_LINK_DOWN;
	if (r->f->destroying) {
		return;
	}
	ev_timer_stop(r->f->loop, &l->retry_timer);
	ev_timer_set(&l->retry_timer, ps__jitter(r, l->backoff_ms) / 1000.0,
	             0.0);
	ev_timer_start(r->f->loop, &l->retry_timer);
	l->backoff_ms *= 2;
	if (l->backoff_ms > r->f->reconnect_max_ms) {
		l->backoff_ms = r->f->reconnect_max_ms;
	}
}

static void
ps__link_set_error(ps__link *l, const char *what)
{
	snprintf(l->error, sizeof(l->error), "%s",
	         what != NULL && *what ? what : "connection lost");
}

static bool
ps__is_control(const redisReply *chan)
{
	return chan->len == strlen(PS_CONTROL_CHANNEL) &&
	       memcmp(chan->str, PS_CONTROL_CHANNEL, chan->len) == 0;
}

/* A message or confirmation on the control channel. */
static void
ps__control_reply(ps__redis *r, const char *kind, const redisReply *msg)
{
	ps_fabric *f = r->f;

	if (strcmp(kind, "message") == 0) {
		if (msg->type == REDIS_REPLY_STRING && f->on_control != NULL &&
		    msg->len <= f->max_payload) {
			f->on_control(msg->str, msg->len, f->user);
		}
		return;
	}
	if (strcmp(kind, "subscribe") != 0 || !r->control_syncing) {
		return;
	}
	r->control_syncing = false;
	r->sync_pending--;
	ps__state_changed(f);
	/* Whatever was announced while we were not listening is lost. */
	if (f->on_resync != NULL) {
		f->on_resync(f->user);
	}
}

static bool
ps__is_hchan(const char *chan, size_t len)
{
	return len > PS_REDIS_HCHAN_LEN &&
	       memcmp(chan + len - PS_REDIS_HCHAN_LEN, PS_REDIS_HCHAN,
	              PS_REDIS_HCHAN_LEN) == 0;
}

/* A message of topic#h: delivered with its offset, or dropped (counted). */
static void
ps__deliver_framed(ps__redis *r, const char *topic, size_t tlen,
                   const char *msg, size_t len)
{
	char epoch[LS_EPOCH_MAX + 1];
	uint64_t offset;
	const char *data;
	size_t dlen;

	if (ps__topics_find(r->f->topics, topic, tlen) == NULL) {
		return;
	}
	if (ps__redis_framed_parse(msg, len, epoch, &offset, &data, &dlen) !=
	    0) {
		ps__count(&r->f->stats.dropped, 1);
		ls_warn("pubsub", "dropped a malformed message on %.*s%s",
		        (int)tlen, topic, PS_REDIS_HCHAN);
		return;
	}
	ps__deliver(r->f, topic, tlen, data, dlen, offset, epoch);
}

/* Subscription replies and messages of the subscriber connection. */
static void
ps__sub_reply(redisAsyncContext *ac, void *reply, void *priv)
{
	ps__redis *r = priv;
	redisReply *rep = reply;
	if (rep == NULL || r->f->destroying) {
		return; /* connection going away */
	}
	if (rep->type != REDIS_REPLY_ARRAY || rep->elements < 3 ||
	    rep->element[0]->type != REDIS_REPLY_STRING ||
	    rep->element[1]->type != REDIS_REPLY_STRING) {
		return;
	}
	const char *kind = rep->element[0]->str;
	redisReply *chan = rep->element[1];
	if (ps__is_control(chan)) {
		ps__control_reply(r, kind, rep->element[2]);
		return;
	}
	if (strcmp(kind, "message") == 0) {
		redisReply *msg = rep->element[2];
		if (msg->type != REDIS_REPLY_STRING) {
			return;
		}
		if (ps__is_hchan(chan->str, chan->len)) {
			ps__deliver_framed(r, chan->str,
			                   chan->len - PS_REDIS_HCHAN_LEN,
			                   msg->str, msg->len);
			return;
		}
		/* A message in flight after our last unsubscribe. */
		if (ps__topics_find(r->f->topics, chan->str, chan->len) ==
		    NULL) {
			return;
		}
		ps__deliver(r->f, chan->str, chan->len, msg->str, msg->len, 0,
		            NULL);
	} else if (strcmp(kind, "subscribe") == 0) {
		/* "SUBSCRIBE topic#h topic": the second confirms both. */
		ps__topic *t =
		        ps__topics_find(r->f->topics, chan->str, chan->len);
		if (t == NULL || t->confirmed) {
			return;
		}
		t->confirmed = true;
		if (t->syncing) {
			t->syncing = false;
			r->sync_pending--;
			ps__state_changed(r->f);
		}
		ps__subscribed(r->f, t);
	}
}

static int
ps__sub_send(ps__redis *r, ps__topic *t)
{
	char hchan[PS_TOPIC_MAX + PS_REDIS_HCHAN_LEN + 1];

	t->confirmed = false;
	snprintf(hchan, sizeof(hchan), "%s%s", t->name, PS_REDIS_HCHAN);
	if (redisAsyncCommand(r->sub.ac, ps__sub_reply, r, "SUBSCRIBE %s %b",
	                      hchan, t->name, t->len) != REDIS_OK) {
		return -EIO;
	}
	return 0;
}

static void
ps__resubscribe_one(ps__topic *t, void *arg)
{
	ps__redis *r = arg;
	t->syncing = true;
	r->sync_pending++;
	if (ps__sub_send(r, t) < 0) {
		/* Only when the context is closing: the reconnect resends. */
		ls_warn("pubsub", "could not re-subscribe %s", t->name);
	}
}

static void
ps__unmark_one(ps__topic *t, void *arg)
{
	t->confirmed = false;
	t->syncing = false;
}

static void
ps__library_loaded(redisAsyncContext *ac, void *reply, void *priv)
{
	redisReply *rep = reply;
	ps__redis *r = priv;

	(void)ac;
	if (rep == NULL) {
		return; /* connection going away: loaded again on connect */
	}
	if (rep->type == REDIS_REPLY_ERROR) {
		/* Live delivery must not depend on it: publish without
		 * history rather than not at all. */
		if (!r->no_functions) {
			ls_warn("pubsub",
			        "redis FUNCTION LOAD failed (Redis >= 7.0 "
			        "needed for history): %s; publishing without "
			        "history",
			        rep->str);
		}
		r->no_functions = true;
	} else {
		r->no_functions = false;
	}
}

static void
ps__on_connect(const redisAsyncContext *cac, int status)
{
	redisAsyncContext *ac = (redisAsyncContext *)cac;
	ps__link *l = ac->data;
	ps__redis *r = l->r;
	ev_timer_stop(r->f->loop, &l->connect_timer);
	if (status != REDIS_OK) {
		/* hiredis frees ac when we return. */
		ps__link_set_error(l, ac->errstr);
		l->ac = NULL;
		ls_debug("pubsub", "redis %s %s:%d: %s", l->role, r->host,
		         r->port, l->error);
		ps__link_retry_later(l);
		ps__state_changed(r->f);
		return;
	}
	l->state = PS_LINK_UP;
	l->backoff_ms = r->f->reconnect_min_ms;
	l->error[0] = '\0';
	redisEnableKeepAlive(&ac->c);
	if (l->was_up) {
		ps__count(&r->f->stats.reconnects, 1);
		ls_info("pubsub", "redis %s reconnected to %s:%d", l->role,
		        r->host, r->port);
	} else {
		ls_info("pubsub", "redis %s connected to %s:%d", l->role,
		        r->host, r->port);
	}
	l->was_up = true;
	if (l == &r->sub) {
		r->sync_pending = 0;
		r->control_syncing = false;
		r->sync_since = ev_now(r->f->loop);
		if (r->f->on_control != NULL) {
			if (redisAsyncCommand(
			            ac, ps__sub_reply, r, "SUBSCRIBE %s",
			            PS_CONTROL_CHANNEL) == REDIS_OK) {
				r->control_syncing = true;
				r->sync_pending++;
			} else {
				ls_warn("pubsub", "could not subscribe the "
				                  "control channel");
			}
		}
		ps__topics_each(r->f->topics, ps__resubscribe_one, r);
	} else {
		/* Before any publish on this connection (replies in order). */
		(void)redisAsyncCommand(ac, ps__library_loaded, r,
		                        "FUNCTION LOAD REPLACE %s",
		                        ps__redis_library);
	}
	ps__state_changed(r->f);
}

static void
ps__on_disconnect(const redisAsyncContext *cac, int status)
{
	redisAsyncContext *ac = (redisAsyncContext *)cac;
	ps__link *l = ac->data;
	ps__redis *r = l->r;
	l->ac = NULL;
	l->state = PS_LINK_DOWN;
	if (l == &r->sub) {
		r->sync_pending = 0;
		r->control_syncing = false;
		if (r->f->topics != NULL) {
			ps__topics_each(r->f->topics, ps__unmark_one, NULL);
		}
	}
	if (r->f->destroying) {
		return;
	}
	if (l->error[0] == '\0') {
		ps__link_set_error(l, ac->errstr);
	}
	ls_warn("pubsub", "redis %s lost %s:%d: %s; reconnecting", l->role,
	        r->host, r->port, l->error);
	ps__link_retry_later(l);
	ps__state_changed(r->f);
}

/* Give up on the link's connection (from timers only, never callbacks). */
static void
ps__link_drop(ps__link *l, const char *why)
{
	redisAsyncContext *ac = l->ac;
	if (ac == NULL) {
		return;
	}
	ps__link_set_error(l, why);
	if (l->state == PS_LINK_UP) {
		/* ps__on_disconnect runs from inside and schedules a retry. */
		redisAsyncFree(ac);
		return;
	}
	l->ac = NULL;
	redisAsyncFree(ac);
	ps__link_retry_later(l);
	ps__state_changed(l->r->f);
}

static void
ps__on_connect_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
	ps__link *l = w->data;
	if (l->state == PS_LINK_CONNECTING) {
		ls_debug("pubsub", "redis %s: connect timeout", l->role);
		ps__link_drop(l, "connect timeout");
	}
}

static void
ps__on_retry(struct ev_loop *loop, ev_timer *w, int revents)
{
	ps__link_connect(w->data);
}

/* Unanswered publishes or subscriptions: the server or path is stuck. */
static void
ps__on_watchdog(struct ev_loop *loop, ev_timer *w, int revents)
{
	ps__redis *r = w->data;
	ev_tstamp now = ev_now(loop);
	ev_tstamp limit = r->f->connect_timeout_ms / 1000.0;
	if (r->pub.state == PS_LINK_UP && r->pending > 0 &&
	    now - r->progress > limit) {
		ls_warn("pubsub", "redis publisher: %zu PUBLISH unanswered",
		        r->pending);
		ps__link_drop(&r->pub, "PUBLISH not answered");
	}
	if (r->sub.state == PS_LINK_UP && r->sync_pending > 0 &&
	    now - r->sync_since > limit) {
		ls_warn("pubsub",
		        "redis subscriber: %zu SUBSCRIBE unconfirmed",
		        r->sync_pending);
		ps__link_drop(&r->sub, "SUBSCRIBE not confirmed");
	}
}

static void
ps__link_connect(ps__link *l)
{
	ps__redis *r = l->r;
	redisAsyncContext *ac = redisAsyncConnect(r->host, r->port);
	if (ac == NULL) {
		ps__link_set_error(l, "out of memory");
		goto retry;
	}
	if (ac->err) {
		ps__link_set_error(l, ac->errstr);
		redisAsyncFree(ac);
		goto retry;
	}
	ac->data = l;
	if (ps__redis_ev_attach(r->f->loop, ac) < 0) {
		ps__link_set_error(l, "out of memory");
		redisAsyncFree(ac);
		goto retry;
	}
	l->ac = ac;
	l->state = PS_LINK_CONNECTING;
	/* After attaching: setting the callback arms the write watcher. */
	redisAsyncSetConnectCallback(ac, ps__on_connect);
	redisAsyncSetDisconnectCallback(ac, ps__on_disconnect);
	ev_timer_set(&l->connect_timer, r->f->connect_timeout_ms / 1000.0,
	             0.0);
	ev_timer_start(r->f->loop, &l->connect_timer);
	return;
retry:
	ls_debug("pubsub", "redis %s %s:%d: %s", l->role, r->host, r->port,
	         l->error);
	ps__link_retry_later(l);
	ps__state_changed(r->f);
}

static void
ps__link_init(ps__redis *r, ps__link *l, const char *role)
{
	l->r = r;
	l->role = role;
	l->state = PS_LINK_DOWN;
	l->backoff_ms = r->f->reconnect_min_ms;
	snprintf(l->error, sizeof(l->error), "not connected yet");
	ev_timer_init(&l->connect_timer, ps__on_connect_timeout, 0.0, 0.0);
	ev_timer_init(&l->retry_timer, ps__on_retry, 0.0, 0.0);
	l->connect_timer.data = l;
	l->retry_timer.data = l;
}

static int
ps__redis_start(ps_fabric *f, const char *url, ls_error *err)
{
	ps__redis *r = calloc(1, sizeof(*r));
	if (r == NULL) {
		return ls_error_set(err, -ENOMEM, "pubsub: out of memory");
	}
	r->f = f;
	int rc = ps__redis_url(url, r->host, sizeof(r->host), &r->port, err);
	if (rc < 0) {
		free(r);
		return rc;
	}
	f->state = r;
	r->rng = (uint64_t)(ev_time() * 1e6) ^ ((uint64_t)getpid() << 32) ^
	         (uint64_t)(uintptr_t)r;
	if (r->rng == 0) {
		r->rng = 0x9e3779b97f4a7c15ULL;
	}
	ps__link_init(r, &r->sub, "subscriber");
	ps__link_init(r, &r->pub, "publisher");
	ev_tstamp tick = f->connect_timeout_ms / 2000.0;
	ev_timer_init(&r->watchdog, ps__on_watchdog, tick, tick);
	r->watchdog.data = r;
	ev_timer_start(f->loop, &r->watchdog);
	ps__link_connect(&r->sub);
	ps__link_connect(&r->pub);
	return 0;
}

static void
ps__link_stop(ps__link *l)
{
	struct ev_loop *loop = l->r->f->loop;
	ev_timer_stop(loop, &l->connect_timer);
	ev_timer_stop(loop, &l->retry_timer);
	redisAsyncContext *ac = l->ac;
	if (ac != NULL) {
		l->ac = NULL;
		/* Pending callbacks run now with a NULL reply. */
		redisAsyncFree(ac);
	}
	l->state = PS_LINK_DOWN;
}

static void
ps__redis_stop(ps_fabric *f)
{
	ps__redis *r = ps__r(f);
	ev_timer_stop(f->loop, &r->watchdog);
	ps__link_stop(&r->sub);
	ps__link_stop(&r->pub);
	free(r);
	f->state = NULL;
}

static int
ps__redis_subscribe(ps_fabric *f, ps__topic *t)
{
	ps__redis *r = ps__r(f);
	t->confirmed = false;
	t->syncing = false;
	if (r->sub.state != PS_LINK_UP) {
		return 0; /* subscribed when the connection comes up */
	}
	if (ps__sub_send(r, t) < 0) {
		ls_warn("pubsub",
		        "could not subscribe %s now; will on "
		        "reconnect",
		        t->name);
	}
	return 0;
}

static void
ps__redis_unsubscribe(ps_fabric *f, ps__topic *t)
{
	ps__redis *r = ps__r(f);
	if (t->syncing) {
		t->syncing = false;
		r->sync_pending--;
	}
	if (r->sub.state != PS_LINK_UP) {
		return;
	}
	char hchan[PS_TOPIC_MAX + PS_REDIS_HCHAN_LEN + 1];
	snprintf(hchan, sizeof(hchan), "%s%s", t->name, PS_REDIS_HCHAN);
	/* REDIS_ERR only when nothing is subscribed: nothing to undo. */
	(void)redisAsyncCommand(r->sub.ac, NULL, NULL, "UNSUBSCRIBE %b %s",
	                        t->name, t->len, hchan);
}

/* {epoch, latest, complete, offset, data, ...} of ls_history. */
static void
ps__history_reply(ps__pubreq *req, redisReply *rep)
{
	ps_history_fn done = req->hdone;
	void *user = req->user;

	free(req);
	ps__redis_history_done(rep, done, user);
}

static void
ps__pub_reply(redisAsyncContext *ac, void *reply, void *priv)
{
	ps__pubreq *req = priv;
	ps__redis *r = req->r;
	redisReply *rep = reply;
	uint64_t offset = 0;
	int status;
	r->pending--;
	r->progress = ev_now(r->f->loop);
	if (req->hdone != NULL) {
		ps__history_reply(req, rep);
		return;
	}
	status = ps__redis_publish_reply(rep, &offset);
	if (status != 0) {
		if (rep != NULL) {
			ls_warn("pubsub", "redis PUBLISH failed: %s",
			        rep->str);
		}
		ps__count(&r->f->stats.failed, 1);
	} else {
		ps__count(&r->f->stats.published, 1);
	}
	ps_publish_fn done = req->done;
	void *user = req->user;
	free(req);
	if (done != NULL) {
		done(status, offset, user);
	}
}

static int
ps__redis_publish(ps_fabric *f, const char *topic, size_t tlen,
                  const char *payload, size_t len, const ps_history_cfg *hist,
                  ps_publish_fn done, void *user)
{
	char meta[PS_TOPIC_MAX + 8], hkey[PS_TOPIC_MAX + 16];
	char size[16], ttl[16];
	int rc;

	ps__redis *r = ps__r(f);
	if (r->pub.state != PS_LINK_UP) {
		goto unavailable;
	}
	if (r->pending >= PS_PENDING_MAX) {
		return -ENOBUFS;
	}
	ps__pubreq *req = malloc(sizeof(*req));
	if (req == NULL) {
		return -ENOMEM;
	}
	req->r = r;
	req->done = done;
	req->hdone = NULL;
	req->user = user;
	if (hist != NULL && !r->no_functions) {
		snprintf(meta, sizeof(meta), "ls:{%.*s}", (int)tlen, topic);
		snprintf(hkey, sizeof(hkey), "ls:{%.*s}:h", (int)tlen, topic);
		snprintf(size, sizeof(size), "%u", hist->size);
		snprintf(ttl, sizeof(ttl), "%u", hist->ttl);
		rc = redisAsyncCommand(r->pub.ac, ps__pub_reply, req,
		                       "FCALL ls_publish 2 %s %s %b %s %s",
		                       meta, hkey, payload, len, size, ttl);
	} else {
		rc = redisAsyncCommand(r->pub.ac, ps__pub_reply, req,
		                       "PUBLISH %b %b", topic, tlen, payload,
		                       len);
	}
	if (rc != REDIS_OK) {
		free(req);
		goto unavailable;
	}
	if (r->pending++ == 0) {
		r->progress = ev_now(f->loop);
	}
	return 0;
unavailable:
	ps__count(&f->stats.failed, 1);
	if (done != NULL) {
		done(LS_EUNAVAILABLE, 0, user);
	}
	return 0;
}

static void
ps__control_done(int status, uint64_t offset, void *user)
{
	if (status != 0) {
		ls_warn("pubsub",
		        "an announcement on %s was not published: %s",
		        PS_CONTROL_CHANNEL, ls_strerror(status));
	}
}

static int
ps__redis_control(ps_fabric *f, const char *payload, size_t len)
{
	ps__redis *r = ps__r(f);

	if (r->pub.state != PS_LINK_UP) {
		return LS_EUNAVAILABLE;
	}
	return ps__redis_publish(f, PS_CONTROL_CHANNEL,
	                         strlen(PS_CONTROL_CHANNEL), payload, len,
	                         NULL, ps__control_done, NULL);
}

static int
ps__redis_history(ps_fabric *f, const char *topic, size_t tlen, uint64_t since,
                  size_t limit, ps_history_fn done, void *user)
{
	ps__redis *r = ps__r(f);
	char meta[PS_TOPIC_MAX + 8], hkey[PS_TOPIC_MAX + 16];
	char a_since[24], a_limit[24];
	ps__pubreq *req;

	if (r->pub.state != PS_LINK_UP) {
		goto unavailable;
	}
	if (r->no_functions) {
		return -ENOTSUP; /* no history on this Redis */
	}
	if (r->pending >= PS_PENDING_MAX) {
		return -ENOBUFS;
	}
	req = calloc(1, sizeof(*req));
	if (req == NULL) {
		return -ENOMEM;
	}
	req->r = r;
	req->hdone = done;
	req->user = user;
	snprintf(meta, sizeof(meta), "ls:{%.*s}", (int)tlen, topic);
	snprintf(hkey, sizeof(hkey), "ls:{%.*s}:h", (int)tlen, topic);
	snprintf(a_since, sizeof(a_since), "%llu", (unsigned long long)since);
	snprintf(a_limit, sizeof(a_limit), "%zu", limit);
	if (redisAsyncCommand(r->pub.ac, ps__pub_reply, req,
	                      "FCALL ls_history 2 %s %s %s %s", meta, hkey,
	                      a_since, a_limit) != REDIS_OK) {
		free(req);
		goto unavailable;
	}
	if (r->pending++ == 0) {
		r->progress = ev_now(f->loop);
	}
	return 0;
unavailable:
	done(LS_EUNAVAILABLE, NULL, user);
	return 0;
}

static bool
ps__redis_ready(const ps_fabric *f)
{
	const ps__redis *r = ps__r(f);
	return r != NULL && r->sub.state == PS_LINK_UP &&
	       r->pub.state == PS_LINK_UP && r->sync_pending == 0;
}

static const char *
ps__link_text(const ps__link *l)
{
	return l->state == PS_LINK_DOWN && l->error[0]
	               ? l->error
	               : ps__link_state_name(l);
}

static const char *
ps__redis_status(const ps_fabric *f)
{
	ps__redis *r = ps__r(f);
	if (ps__redis_ready(f)) {
		return "ready";
	}
	if (r->sub.state == PS_LINK_UP && r->pub.state == PS_LINK_UP) {
		snprintf(r->status, sizeof(r->status),
		         "redis %s:%d: %zu subscriptions unconfirmed", r->host,
		         r->port, r->sync_pending);
	} else {
		snprintf(r->status, sizeof(r->status),
		         "redis %s:%d: subscriber %s, publisher %s", r->host,
		         r->port, ps__link_text(&r->sub),
		         ps__link_text(&r->pub));
	}
	return r->status;
}

const ps__backend ps__redis_backend = {
	.name = "redis",
	.start = ps__redis_start,
	.stop = ps__redis_stop,
	.subscribe = ps__redis_subscribe,
	.unsubscribe = ps__redis_unsubscribe,
	.publish = ps__redis_publish,
	.control = ps__redis_control,
	.history = ps__redis_history,
	.ready = ps__redis_ready,
	.status = ps__redis_status,
};
