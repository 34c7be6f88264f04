/*
 * The local backend: in-process fan-out between the loops of one process.
 *
 * Every local fabric is a member of a hub (ps_hub). The hub knows, per
 * topic, which members have subscribers (a bit mask). Publishing copies
 * the message once into a reference-counted block and, under the hub's
 * lock, appends a reference to the inbox of every interested member; a
 * member whose inbox was empty is woken through its ev_async. Each member
 * delivers its inbox on its own loop, in inbox order — the order in which
 * the hub accepted the messages, the same on every loop. The publishing
 * member delivers its own inbox before publish returns (as a single local
 * fabric always did), so done() still follows the local delivery.
 *
 * Announcements on the control channel (ps_fabric_control_publish) go the
 * same way to every member that listens to it (on_control), so a change
 * announced on one loop reaches the connections of every loop.
 *
 * History lives in the hub (ps_history.c), shared by every loop: a publish
 * with history gets its offset and is appended under the same lock that
 * queues it to the inboxes, so the history and the live order agree. It is
 * lost with the process, and every stream gets a new epoch when it starts
 * again.
 */
#include <errno.h>
#include <ev.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ls_log.h"
#include "ls_time.h"
#include "ps_history.h"
#include "ps_internal.h"

/* Expired history is swept this often (seconds). */
#define PS_LOCAL_SWEEP_S 1.0

/*
 * Bounds of one member's inbox (messages queued to a loop that has not
 * taken them yet): a publish that would pass them on any member is refused
 * with -ENOBUFS as a whole (no loop gets it), so a loop that cannot keep up
 * slows its publishers down instead of growing without bound. Control
 * announcements are never refused.
 */
#define PS_HUB_INBOX_MAX   PS_PENDING_MAX
#define PS_HUB_INBOX_BYTES (64u * 1024 * 1024)

/* One published message, shared by every member's inbox. */
typedef struct ps__msg {
	unsigned refs;   /* atomic */
	uint64_t offset; /* 0: published without history */
	char epoch[LS_EPOCH_MAX + 1];
	size_t tlen;
	size_t len;
	char *payload; /* NUL-terminated, after the topic */
	char data[];   /* topic NUL payload NUL */
} ps__msg;

typedef struct ps__vec {
	ps__msg **items;
	size_t n, cap;
} ps__vec;

typedef struct ps__member {
	ps_hub *hub;
	ps_fabric *f;
	unsigned index;
	bool own_hub; /* the private hub of a lone fabric */
	bool control; /* listens to the control channel */
	ev_async wake;
	ev_timer sweep;     /* expired history */
	ps__vec inbox;      /* under hub->lock */
	size_t inbox_bytes; /* under hub->lock: payloads in inbox */
	ps__vec spare;      /* the loop thread's: reused drained vector */
} ps__member;

struct ps_hub {
	pthread_mutex_t lock;
	ps__member *members[PS_HUB_MEMBERS];
	unsigned nmembers;
	uint64_t control;   /* members listening to the control channel */
	ps__topics *topics; /* topic -> members mask */
	ps__hist *hist;     /* created by the first member */
};

ps_hub *
ps_hub_new(void)
{
	ps_hub *h = calloc(1, sizeof(*h));

	if (h == NULL) {
		return NULL;
	}
	h->topics = ps__topics_new();
	if (h->topics == NULL || pthread_mutex_init(&h->lock, NULL) != 0) {
		ps__topics_destroy(&h->topics);
		free(h);
		return NULL;
	}
	return h;
}

void
ps_hub_destroy(ps_hub **hp)
{
	ps_hub *h = hp ? *hp : NULL;

	if (h == NULL) {
		return;
	}
	if (h->nmembers > 0) {
		ls_err("pubsub", "hub destroyed with %u member(s)",
		       h->nmembers);
	}
	ps__topics_destroy(&h->topics);
	ps__hist_destroy(&h->hist);
	pthread_mutex_destroy(&h->lock);
	free(h);
	*hp = NULL;
}

size_t
ps_hub_topics(ps_hub *h)
{
	size_t n;

	pthread_mutex_lock(&h->lock);
	n = ps__topics_count(h->topics);
	pthread_mutex_unlock(&h->lock);
	return n;
}

static void
ps__msg_unref(ps__msg *m)
{
	if (__atomic_sub_fetch(&m->refs, 1, __ATOMIC_ACQ_REL) == 0) {
		free(m);
	}
}

static ps__msg *
ps__msg_new(const char *topic, size_t tlen, const char *payload, size_t len)
{
	ps__msg *m = malloc(sizeof(*m) + tlen + 1 + len + 1);

	if (m == NULL) {
		return NULL;
	}
	m->refs = 1;
	m->offset = 0;
	m->epoch[0] = '\0';
	m->tlen = tlen;
	m->len = len;
	memcpy(m->data, topic, tlen);
	m->data[tlen] = '\0';
	m->payload = m->data + tlen + 1;
	memcpy(m->payload, payload, len);
	m->payload[len] = '\0';
	return m;
}

static int
ps__vec_push(ps__vec *v, ps__msg *m)
{
	if (v->n == v->cap) {
		size_t cap = v->cap ? v->cap * 2 : 16;
		ps__msg **items = realloc(v->items, cap * sizeof(*items));
		if (items == NULL) {
			return -ENOMEM;
		}
		v->items = items;
		v->cap = cap;
	}
	v->items[v->n++] = m;
	return 0;
}

static void
ps__vec_release(ps__vec *v)
{
	for (size_t i = 0; i < v->n; i++) {
		ps__msg_unref(v->items[i]);
	}
	free(v->items);
	memset(v, 0, sizeof(*v));
}

/*
 * Deliver everything in this member's inbox, in order. Takes the inbox
 * under the lock (leaving the spare vector in its place), delivers without
 * it, and keeps the drained vector as the next spare. Safe to re-enter
 * from a delivery callback (the inner call finds its own inbox).
 */
static void
ps__drain(ps__member *mb)
{
	ps_hub *h = mb->hub;
	ps__vec work;

	pthread_mutex_lock(&h->lock);
	work = mb->inbox;
	mb->inbox = mb->spare;
	mb->inbox.n = 0;
	mb->inbox_bytes = 0;
	memset(&mb->spare, 0, sizeof(mb->spare));
	pthread_mutex_unlock(&h->lock);
	for (size_t i = 0; i < work.n; i++) {
		ps__msg *m = work.items[i];
		if (m->tlen == sizeof(PS_CONTROL_CHANNEL) - 1 &&
		    memcmp(m->data, PS_CONTROL_CHANNEL, m->tlen) == 0) {
			if (mb->f->on_control != NULL) {
				mb->f->on_control(m->payload, m->len,
				                  mb->f->user);
			}
		} else if (ps__topics_find(mb->f->topics, m->data, m->tlen) !=
		           NULL) {
			/* (not unsubscribed since it was queued) */
			ps__deliver(mb->f, m->data, m->tlen, m->payload,
			            m->len, m->offset,
			            m->offset ? m->epoch : NULL);
		}
		ps__msg_unref(m);
	}
	work.n = 0;
	if (mb->spare.items == NULL) {
		mb->spare = work;
	} else {
		free(work.items);
	}
}

static void
ps__wake(struct ev_loop *loop, ev_async *w, int revents)
{
	ps__drain(w->data);
}

/* A stream with subscribers on some loop keeps its history record. */
static bool
ps__local_keep(const char *topic, size_t tlen, void *arg)
{
	ps_hub *h = arg;
	return ps__topics_find(h->topics, topic, tlen) != NULL;
}

static void
ps__local_sweep(struct ev_loop *loop, ev_timer *w, int revents)
{
	ps__member *mb = w->data;
	ps_hub *h = mb->hub;

	pthread_mutex_lock(&h->lock);
	ps__hist_sweep(h->hist, ls_now_ms(), ps__local_keep, h);
	pthread_mutex_unlock(&h->lock);
}

static int
ps__local_start(ps_fabric *f, const char *url, ls_error *err)
{
	ps__member *mb = calloc(1, sizeof(*mb));
	ps_hub *h = f->hub;

	if (mb == NULL) {
		return ls_error_set(err, -ENOMEM, "pubsub: out of memory");
	}
	if (h == NULL) {
		h = ps_hub_new();
		if (h == NULL) {
			free(mb);
			return ls_error_set(err, -ENOMEM,
			                    "pubsub: out of memory");
		}
		mb->own_hub = true;
	}
	mb->hub = h;
	mb->f = f;
	mb->control = f->on_control != NULL;
	pthread_mutex_lock(&h->lock);
	if (h->hist == NULL) {
		h->hist = ps__hist_new(f->history_bytes);
	}
	if (h->nmembers == PS_HUB_MEMBERS || h->hist == NULL) {
		bool full = h->nmembers == PS_HUB_MEMBERS;
		pthread_mutex_unlock(&h->lock);
		if (mb->own_hub) {
			ps_hub_destroy(&h);
		}
		free(mb);
		if (!full) {
			return ls_error_set(err, -ENOMEM,
			                    "pubsub: out of memory");
		}
		return ls_error_set(err, -EINVAL,
		                    "pubsub: more than %d local fabrics",
		                    PS_HUB_MEMBERS);
	}
	for (unsigned i = 0; i < PS_HUB_MEMBERS; i++) {
		if (h->members[i] == NULL) {
			mb->index = i;
			h->members[i] = mb;
			h->nmembers++;
			if (mb->control) {
				h->control |= 1ULL << i;
			}
			break;
		}
	}
	pthread_mutex_unlock(&h->lock);
	ev_async_init(&mb->wake, ps__wake);
	mb->wake.data = mb;
	ev_async_start(f->loop, &mb->wake);
	ev_timer_init(&mb->sweep, ps__local_sweep, PS_LOCAL_SWEEP_S,
	              PS_LOCAL_SWEEP_S);
	mb->sweep.data = mb;
	ev_timer_start(f->loop, &mb->sweep);
	/* The wake-up and the sweep alone do not keep the loop running. */
	ev_unref(f->loop);
	ev_unref(f->loop);
	f->state = mb;
	return 0;
}

static void
ps__forget(ps__topic *t, void *arg)
{
	ps__member *mb = arg;
	ps__topic *ht = ps__topics_find(mb->hub->topics, t->name, t->len);

	if (ht != NULL) {
		ht->members &= ~(1ULL << mb->index);
		if (ht->members == 0) {
			ps__topics_remove(mb->hub->topics, ht);
		}
	}
}

static void
ps__local_stop(ps_fabric *f)
{
	ps__member *mb = f->state;
	ps_hub *h;

	if (mb == NULL) {
		return;
	}
	h = mb->hub;
	ev_ref(f->loop);
	ev_async_stop(f->loop, &mb->wake);
	ev_ref(f->loop);
	ev_timer_stop(f->loop, &mb->sweep);
	pthread_mutex_lock(&h->lock);
	ps__topics_each(f->topics, ps__forget, mb);
	h->members[mb->index] = NULL;
	h->nmembers--;
	h->control &= ~(1ULL << mb->index);
	pthread_mutex_unlock(&h->lock);
	ps__vec_release(&mb->inbox);
	ps__vec_release(&mb->spare);
	if (mb->own_hub) {
		ps_hub_destroy(&h);
	}
	free(mb);
	f->state = NULL;
}

static int
ps__local_subscribe(ps_fabric *f, ps__topic *t)
{
	ps__member *mb = f->state;
	ps_hub *h = mb->hub;
	ps__topic *ht;
	int rc = 0;

	pthread_mutex_lock(&h->lock);
	ht = ps__topics_find(h->topics, t->name, t->len);
	if (ht == NULL) {
		ht = ps__topics_add(h->topics, t->name, t->len);
	}
	if (ht != NULL) {
		ht->members |= 1ULL << mb->index;
	} else {
		rc = -ENOMEM;
	}
	pthread_mutex_unlock(&h->lock);
	t->confirmed = rc == 0;
	return rc;
}

static void
ps__local_unsubscribe(ps_fabric *f, ps__topic *t)
{
	ps__member *mb = f->state;
	ps_hub *h = mb->hub;
	ps__topic *ht;

	pthread_mutex_lock(&h->lock);
	ht = ps__topics_find(h->topics, t->name, t->len);
	if (ht != NULL) {
		ht->members &= ~(1ULL << mb->index);
		if (ht->members == 0) {
			ps__topics_remove(h->topics, ht);
		}
	}
	pthread_mutex_unlock(&h->lock);
}

/*
 * Queue m to the members with subscribers of its topic (or, with control,
 * to those listening to the control channel) and wake them; deliver this
 * member's own share before returning. Returns 0, -ENOBUFS when another
 * member's inbox is full (nobody got it), or -ENOMEM when it reached
 * nobody.
 */
static int
ps__post(ps__member *mb, ps__msg *m, bool control, const ps_history_cfg *hist)
{
	ps_hub *h = mb->hub;
	ps__member *wake[PS_HUB_MEMBERS];
	unsigned nwake = 0, reached = 0;
	bool self = false;
	uint64_t bits = 0;
	int rc = 0;

	pthread_mutex_lock(&h->lock);
	if (control) {
		bits = h->control;
	} else {
		ps__topic *ht = ps__topics_find(h->topics, m->data, m->tlen);
		bits = ht != NULL ? ht->members : 0;
	}
	for (uint64_t b = control ? 0 : bits; b != 0; b &= b - 1) {
		ps__member *to = h->members[__builtin_ctzll(b)];
		/* Our own inbox is delivered before this call returns. */
		if (to != NULL && to != mb &&
		    (to->inbox.n >= PS_HUB_INBOX_MAX ||
		     to->inbox_bytes + m->len > PS_HUB_INBOX_BYTES)) {
			pthread_mutex_unlock(&h->lock);
			return -ENOBUFS; /* before history: nothing kept */
		}
	}
	if (hist != NULL) {
		/* The offset and the inbox order are decided together. */
		const char *epoch = NULL;
		rc = ps__hist_append(h->hist, m->data, m->tlen, m->payload,
		                     m->len, hist, ls_now_ms(), &m->offset,
		                     &epoch);
		if (rc != 0) {
			pthread_mutex_unlock(&h->lock);
			return rc;
		}
		snprintf(m->epoch, sizeof(m->epoch), "%s", epoch);
	}
	while (bits != 0) {
		unsigned i = (unsigned)__builtin_ctzll(bits);
		ps__member *to = h->members[i];
		bool was_empty;
		bits &= bits - 1;
		if (to == NULL) {
			continue;
		}
		was_empty = to->inbox.n == 0;
		if (ps__vec_push(&to->inbox, m) != 0) {
			rc = -ENOMEM;
			continue;
		}
		__atomic_add_fetch(&m->refs, 1, __ATOMIC_RELAXED);
		to->inbox_bytes += m->len;
		reached++;
		if (to == mb) {
			self = true;
		} else if (was_empty) {
			wake[nwake++] = to;
		}
	}
	pthread_mutex_unlock(&h->lock);
	for (unsigned i = 0; i < nwake; i++) {
		ev_async_send(wake[i]->f->loop, &wake[i]->wake);
	}
	if (self) {
		ps__drain(mb);
	}
	return rc != 0 && reached == 0 ? rc : 0;
}

static int
ps__local_publish(ps_fabric *f, const char *topic, size_t tlen,
                  const char *payload, size_t len, const ps_history_cfg *hist,
                  ps_publish_fn done, void *user)
{
	ps__msg *m = ps__msg_new(topic, tlen, payload, len);
	uint64_t offset;
	int rc;

	if (m == NULL) {
		return -ENOMEM;
	}
	rc = ps__post(f->state, m, false, hist);
	offset = m->offset;
	ps__msg_unref(m);
	if (rc != 0) {
		static ls_log_limit lim = LS_LOG_LIMIT_INIT(10000, 3);
		ps__count(&f->stats.failed, 1);
		ls_log_ratelimited(&lim, LS_LOG_WARN, "pubsub",
		                   "publish on %.*s refused: %s", (int)tlen,
		                   topic,
		                   rc == -ENOBUFS ? "a loop's inbox is full"
		                                  : "out of memory");
		return rc;
	}
	ps__count(&f->stats.published, 1);
	if (done != NULL) {
		done(0, offset, user);
	}
	return 0;
}

/*
 * Read under the hub's lock, into a copy, so the callback runs without it
 * (and other loops may publish meanwhile).
 */
static int
ps__local_history(ps_fabric *f, const char *topic, size_t tlen, uint64_t since,
                  size_t limit, ps_history_fn done, void *user)
{
	ps__member *mb = f->state;
	ps_hub *h = mb->hub;
	ps_history_result r;
	ps_history_msg *copy = NULL;
	char epoch[LS_EPOCH_MAX + 1];
	char *blob = NULL;
	size_t bytes = 0;
	int rc;

	pthread_mutex_lock(&h->lock);
	rc = ps__hist_read(h->hist, topic, tlen, since, limit, ls_now_ms(),
	                   &r);
	if (rc == 0) {
		for (size_t i = 0; i < r.count; i++) {
			bytes += r.msgs[i].len + 1;
		}
		copy = calloc(r.count ? r.count : 1, sizeof(*copy));
		blob = malloc(bytes ? bytes : 1);
		if (copy == NULL || blob == NULL) {
			rc = -ENOMEM;
		} else {
			char *p = blob;
			for (size_t i = 0; i < r.count; i++) {
				memcpy(p, r.msgs[i].data, r.msgs[i].len + 1);
				copy[i] = r.msgs[i];
				copy[i].data = p;
				p += r.msgs[i].len + 1;
			}
			snprintf(epoch, sizeof(epoch), "%s", r.epoch);
		}
		free((void *)r.msgs);
	}
	pthread_mutex_unlock(&h->lock);
	if (rc == 0) {
		r.epoch = epoch;
		r.msgs = copy;
		done(0, &r, user);
	}
	free(copy);
	free(blob);
	return rc;
}

static int
ps__local_control(ps_fabric *f, const char *payload, size_t len)
{
	ps__msg *m = ps__msg_new(PS_CONTROL_CHANNEL,
	                         sizeof(PS_CONTROL_CHANNEL) - 1, payload, len);
	int rc;

	if (m == NULL) {
		return -ENOMEM;
	}
	rc = ps__post(f->state, m, true, NULL);
	ps__msg_unref(m);
	return rc;
}

static bool
ps__local_ready(const ps_fabric *f)
{
	return true;
}

static const char *
ps__local_status(const ps_fabric *f)
{
	return "ready";
}

const ps__backend ps__local_backend = {
	.name = "local",
	.start = ps__local_start,
	.stop = ps__local_stop,
	.subscribe = ps__local_subscribe,
	.unsubscribe = ps__local_unsubscribe,
	.publish = ps__local_publish,
	.history = ps__local_history,
	.control = ps__local_control,
	.ready = ps__local_ready,
	.status = ps__local_status,
};
