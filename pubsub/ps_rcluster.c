/*
 * The Redis Cluster backend (docs/pubsub.md, "Redis Cluster"): sharded
 * pub/sub. `redis+cluster://HOST:PORT[,HOST:PORT...]` names seed nodes;
 * CLUSTER SLOTS tells which master owns which of the 16384 slots. Each
 * topic is SSUBSCRIBEd on the master owning its slot and SPUBLISHed there,
 * so a message travels only within one shard.
 *
 * hiredis 0.14's async API asserts on the "smessage" pushes of sharded
 * pub/sub, so the connections here are our own: a non-blocking socket on
 * the fabric's loop, commands formatted with redisFormatCommandArgv and
 * replies parsed with hiredis' reader. Per master: a subscriber connection
 * (pushes: smessage, ssubscribe, sunsubscribe) and a publisher connection
 * (replies in order, matched to a FIFO of pending publishes).
 *
 * Topology changes: a MOVED reply, a server-sent sunsubscribe (Redis 7
 * sends one to the subscribers of a channel whose slot migrated) or a lost
 * connection schedules a refresh of CLUSTER SLOTS (from any known node,
 * with backoff); after it, every topic not confirmed on its slot's owner
 * is subscribed there again. Clients of the gateway stay connected
 * meanwhile; a message published while a topic moved may be lost, and the
 * gateway is told (on_resync) so that it re-validates what it must.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <ev.h>
#include <hiredis/hiredis.h>

#include "ls_log.h"
#include "ps_internal.h"

#define RC_SLOTS     16384
#define RC_NODES_MAX 64
#define RC_SEEDS_MAX 16
#define RC_HOST_MAX  64
#define RC_NONE      0xffff
#define RC_LOG       "pubsub"

typedef struct ps__rc ps__rc;

/* A request of a publisher connection's FIFO, answered in order. */
typedef struct rc__pending {
	struct rc__pending *next;
	ps_publish_fn done;  /* a publish */
	ps_history_fn hdone; /* or a history read */
	void *user;
	char *cmd; /* the request as sent, resent after MOVED */
	size_t cmdlen;
	unsigned slot;
	int retries;
	bool slots;      /* the CLUSTER SLOTS of a control connection */
	bool library;    /* FUNCTION LOAD: nobody waits for it */
	unsigned *count; /* the fabric's count of callers' requests, or NULL */
} rc__pending;

typedef enum rc__kind { RC_SUB, RC_PUB, RC_CTL } rc__kind;

typedef struct rc__conn {
	ps__rc *rc;
	rc__kind kind;
	int node; /* index into rc->nodes; -1 for the control connection */
	int fd;
	bool connected;
	ev_io rio, wio;
	ev_timer timeout;
	ev_timer stall; /* requests waiting and nothing read meanwhile */
	redisReader *reader;
	char *wbuf;
	size_t wlen, wcap;
	rc__pending *head, *tail;
} rc__conn;

typedef struct rc__node {
	char host[RC_HOST_MAX];
	int port;
	rc__conn *sub, *pub;
} rc__node;

struct ps__rc {
	ps_fabric *f;
	char seed_host[RC_SEEDS_MAX][RC_HOST_MAX];
	int seed_port[RC_SEEDS_MAX];
	int nseeds;
	rc__node nodes[RC_NODES_MAX];
	int nnodes;
	uint16_t owner[RC_SLOTS]; /* node index, RC_NONE unknown */
	bool topology;            /* owner[] is current */
	rc__conn *ctl;            /* CLUSTER SLOTS in progress */
	int next_seed;            /* round robin over seeds and nodes */
	ev_timer refresh;
	bool refresh_armed;
	int backoff_ms;
	unsigned requests; /* callers' requests waiting for a reply */
	bool ever_ready;
	bool lost;    /* something may have been lost since ready */
	int ctl_node; /* where the control channel is subscribed */
	bool ctl_confirmed;
	char status[192];
};

/* ---- slots ---------------------------------------------------------------
 */

static uint16_t
rc__crc16(const char *buf, size_t len)
{
	uint16_t crc = 0;

	for (size_t i = 0; i < len; i++) {
		crc ^= (uint16_t)((unsigned char)buf[i] << 8);
		for (int k = 0; k < 8; k++) {
			crc = (crc & 0x8000) ? (uint16_t)((crc << 1) ^ 0x1021)
			                     : (uint16_t)(crc << 1);
		}
	}
	return crc;
}

/* Redis Cluster's key slot, hash tags included ("{a}b" hashes "a"). */
static unsigned
rc__slot(const char *key, size_t len)
{
	const char *open = memchr(key, '{', len);

	if (open != NULL) {
		size_t rest = len - (size_t)(open - key) - 1;
		const char *close = memchr(open + 1, '}', rest);
		if (close != NULL && close > open + 1) {
			return rc__crc16(open + 1,
			                 (size_t)(close - open - 1)) &
			       (RC_SLOTS - 1);
		}
	}
	return rc__crc16(key, len) & (RC_SLOTS - 1);
}

/* ---- connections ---------------------------------------------------------
 */

static void rc__conn_lost(rc__conn *c, const char *why);
static void rc__schedule_refresh(ps__rc *rc, const char *why);
static void rc__update_state(ps__rc *rc);
static void rc__subscribe_pending(ps__rc *rc);

/* Queue n bytes of formatted commands on c. */
static void
rc__write(rc__conn *c, const char *cmd, size_t n)
{
	if (c->wlen + n > c->wcap) {
		size_t cap = (c->wlen + n) * 2;
		char *b = realloc(c->wbuf, cap);
		if (b == NULL) {
			return;
		}
		c->wbuf = b;
		c->wcap = cap;
	}
	memcpy(c->wbuf + c->wlen, cmd, n);
	c->wlen += n;
	if (c->connected) {
		ev_io_start(c->rc->f->loop, &c->wio);
	}
}

static void
rc__send(rc__conn *c, int argc, const char **argv, const size_t *lens)
{
	char *cmd = NULL;
	int n = redisFormatCommandArgv(&cmd, argc, argv, lens);

	if (n >= 0) {
		rc__write(c, cmd, (size_t)n);
	}
	free(cmd);
}

static void
rc__send2(rc__conn *c, const char *a, const char *b, size_t blen)
{
	const char *argv[2] = { a, b };
	size_t lens[2] = { strlen(a), blen };

	rc__send(c, 2, argv, lens);
}

static void
rc__pending_free(rc__pending *p)
{
	if (p->count != NULL) {
		(*p->count)--;
	}
	free(p->cmd);
	free(p);
}

/* Answer p with status (no reply: the request could not be made). */
static void
rc__pending_fail(rc__pending *p, int status)
{
	if (p->done != NULL) {
		p->done(status, 0, p->user);
	}
	if (p->hdone != NULL) {
		p->hdone(status, NULL, p->user);
	}
}

/* Append p to c's FIFO and send its command. */
static void
rc__pending_send(rc__conn *c, rc__pending *p)
{
	p->next = NULL;
	if (c->tail != NULL) {
		c->tail->next = p;
	} else {
		c->head = p;
	}
	c->tail = p;
	if (c->head == p) {
		/* The first to wait: the node must answer something within
		 * the time a connection may take (rc__on_stall). */
		ev_timer_again(c->rc->f->loop, &c->stall);
	}
	rc__write(c, p->cmd, p->cmdlen);
}

static void
rc__conn_free(rc__conn *c)
{
	struct ev_loop *loop = c->rc->f->loop;

	ev_io_stop(loop, &c->rio);
	ev_io_stop(loop, &c->wio);
	ev_timer_stop(loop, &c->timeout);
	ev_timer_stop(loop, &c->stall);
	if (c->fd >= 0) {
		close(c->fd);
	}
	if (c->reader != NULL) {
		redisReaderFree(c->reader);
	}
	while (c->head != NULL) {
		rc__pending *p = c->head;
		c->head = p->next;
		rc__pending_fail(p, LS_EUNAVAILABLE);
		rc__pending_free(p);
	}
	free(c->wbuf);
	free(c);
}

static void rc__on_read(struct ev_loop *loop, ev_io *w, int revents);

static void
rc__on_write(struct ev_loop *loop, ev_io *w, int revents)
{
	rc__conn *c = w->data;
	ssize_t n;

	(void)revents;
	if (!c->connected) {
		int err = 0;
		socklen_t el = sizeof(err);
		getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el);
		if (err != 0) {
			rc__conn_lost(c, strerror(err));
			return;
		}
		c->connected = true;
		ev_timer_stop(loop, &c->timeout);
		ev_io_start(loop, &c->rio);
	}
	while (c->wlen > 0) {
		n = send(c->fd, c->wbuf, c->wlen, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR) {
				return;
			}
			rc__conn_lost(c, strerror(errno));
			return;
		}
		memmove(c->wbuf, c->wbuf + n, c->wlen - (size_t)n);
		c->wlen -= (size_t)n;
	}
	ev_io_stop(loop, w);
}

static void
rc__on_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	rc__conn_lost(w->data, "connect timed out");
}

/*
 * A node that keeps its connection open but answers nothing (hung, or
 * stopped) would hold every request sent to it for ever, and the fabric
 * would still say it is ready. As on single-node Redis (ps_redis.c's
 * watchdog): requests waiting and nothing read from the node for the
 * connect timeout drop the connection — its requests fail with
 * LS_EUNAVAILABLE, the topology is asked again and the node reconnected.
 */
static void
rc__on_stall(struct ev_loop *loop, ev_timer *w, int revents)
{
	rc__conn *c = w->data;

	(void)revents;
	ev_timer_stop(loop, w);
	if (c->head != NULL) {
		rc__conn_lost(c, "no reply within the connect timeout");
	}
}

static rc__conn *
rc__connect(ps__rc *rc, rc__kind kind, int node, const char *host, int port)
{
	rc__conn *c = calloc(1, sizeof(*c));
	struct sockaddr_in sa;
	int one = 1;

	if (c == NULL) {
		return NULL;
	}
	c->rc = rc;
	c->kind = kind;
	c->node = node;
	c->fd = -1;
	c->reader = redisReaderCreate();
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	if (c->reader == NULL || inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
		goto fail;
	}
	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0) {
		goto fail;
	}
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 &&
	    errno != EINPROGRESS) {
		goto fail;
	}
	ev_io_init(&c->rio, rc__on_read, c->fd, EV_READ);
	ev_io_init(&c->wio, rc__on_write, c->fd, EV_WRITE);
	ev_timer_init(&c->timeout, rc__on_timeout,
	              rc->f->connect_timeout_ms / 1000.0, 0);
	ev_init(&c->stall, rc__on_stall);
	c->stall.repeat = rc->f->connect_timeout_ms / 1000.0;
	c->rio.data = c->wio.data = c->timeout.data = c->stall.data = c;
	ev_io_start(rc->f->loop, &c->wio); /* connect completes writable */
	ev_timer_start(rc->f->loop, &c->timeout);
	return c;
fail:
	if (c->fd >= 0) {
		close(c->fd);
	}
	if (c->reader != NULL) {
		redisReaderFree(c->reader);
	}
	free(c);
	return NULL;
}

/* ---- replies -------------------------------------------------------------
 */

static bool
rc__is(const redisReply *r, const char *s)
{
	return r != NULL &&
	       (r->type == REDIS_REPLY_STRING ||
	        r->type == REDIS_REPLY_STATUS) &&
	       r->len == strlen(s) && strncasecmp(r->str, s, r->len) == 0;
}

static int
rc__node_index(ps__rc *rc, const char *host, int port)
{
	for (int i = 0; i < rc->nnodes; i++) {
		if (rc->nodes[i].port == port &&
		    strcmp(rc->nodes[i].host, host) == 0) {
			return i;
		}
	}
	if (rc->nnodes == RC_NODES_MAX) {
		return -1;
	}
	rc__node *n = &rc->nodes[rc->nnodes];
	memset(n, 0, sizeof(*n));
	snprintf(n->host, sizeof(n->host), "%s", host);
	n->port = port;
	return rc->nnodes++;
}

/* The history functions first on every publisher connection (the library
 * may be missing on a master that restarted or joined). */
static void
rc__load_library(rc__conn *c)
{
	rc__pending *p = calloc(1, sizeof(*p));
	const char *argv[4] = { "FUNCTION", "LOAD", "REPLACE",
		                ps__redis_library };
	size_t lens[4] = { 8, 4, 7, strlen(ps__redis_library) };
	char *cmd = NULL;
	int n = redisFormatCommandArgv(&cmd, 4, argv, lens);

	if (p == NULL || n < 0) {
		free(p);
		free(cmd);
		return;
	}
	p->library = true;
	p->cmd = cmd;
	p->cmdlen = (size_t)n;
	rc__pending_send(c, p);
}

/* The node's connection of kind, connecting it when missing. */
static rc__conn *
rc__node_conn(ps__rc *rc, int node, rc__kind kind)
{
	rc__node *n = &rc->nodes[node];
	rc__conn **slot = kind == RC_SUB ? &n->sub : &n->pub;

	if (*slot == NULL) {
		*slot = rc__connect(rc, kind, node, n->host, n->port);
		if (*slot != NULL && kind == RC_PUB) {
			rc__load_library(*slot);
		}
	}
	return *slot;
}

/* "MOVED 3999 127.0.0.1:6381": note the new owner at once. */
static int
rc__moved(ps__rc *rc, const redisReply *r)
{
	char host[RC_HOST_MAX];
	unsigned slot;
	int port, node;

	if (r->type != REDIS_REPLY_ERROR ||
	    sscanf(r->str, "MOVED %u %63[^:]:%d", &slot, host, &port) != 3 ||
	    slot >= RC_SLOTS) {
		return -1;
	}
	node = rc__node_index(rc, host, port);
	if (node >= 0) {
		rc->owner[slot] = (uint16_t)node;
	}
	rc__schedule_refresh(rc, "a slot moved");
	return node;
}

static void
rc__apply_slots(ps__rc *rc, const redisReply *r)
{
	if (r->type != REDIS_REPLY_ARRAY) {
		rc__schedule_refresh(rc, "unexpected CLUSTER SLOTS reply");
		return;
	}
	for (unsigned s = 0; s < RC_SLOTS; s++) {
		rc->owner[s] = RC_NONE;
	}
	for (size_t i = 0; i < r->elements; i++) {
		const redisReply *e = r->element[i], *m;
		if (e->type != REDIS_REPLY_ARRAY || e->elements < 3) {
			continue;
		}
		m = e->element[2];
		if (m->type != REDIS_REPLY_ARRAY || m->elements < 2 ||
		    m->element[0]->type != REDIS_REPLY_STRING ||
		    m->element[1]->type != REDIS_REPLY_INTEGER) {
			continue;
		}
		char host[RC_HOST_MAX];
		snprintf(host, sizeof(host), "%.*s", (int)m->element[0]->len,
		         m->element[0]->str);
		if (host[0] == '\0') {
			snprintf(host, sizeof(host), "%s", rc->seed_host[0]);
		}
		int node =
		        rc__node_index(rc, host, (int)m->element[1]->integer);
		long long lo = e->element[0]->integer,
		          hi = e->element[1]->integer;
		for (long long s = lo; node >= 0 && s <= hi && s < RC_SLOTS;
		     s++) {
			if (s >= 0) {
				rc->owner[s] = (uint16_t)node;
			}
		}
	}
	if (!rc->topology) {
		ls_info(RC_LOG, "cluster topology: %zu slot ranges",
		        r->elements);
	}
	rc->topology = true;
	rc->backoff_ms = 0;
	rc__subscribe_pending(rc);
	rc__update_state(rc);
}

static void
rc__on_pub_reply(rc__conn *c, redisReply *r)
{
	ps__rc *rc = c->rc;
	rc__pending *p = c->head;
	uint64_t offset = 0;
	int status;

	if (p == NULL) {
		return;
	}
	c->head = p->next;
	if (c->head == NULL) {
		c->tail = NULL;
	}
	if (p->slots) {
		rc__apply_slots(rc, r);
		rc__pending_free(p);
		return;
	}
	if (p->library) {
		if (r->type == REDIS_REPLY_ERROR) {
			ls_warn(RC_LOG,
			        "%s:%d: cannot load the function library (no "
			        "history there): %s",
			        rc->nodes[c->node].host,
			        rc->nodes[c->node].port, r->str);
		}
		rc__pending_free(p);
		return;
	}
	if (r->type == REDIS_REPLY_ERROR && p->retries < 3) {
		int node = rc__moved(rc, r);
		rc__conn *to =
		        node >= 0 ? rc__node_conn(rc, node, RC_PUB) : NULL;
		if (to != NULL) {
			p->retries++;
			rc__pending_send(to, p);
			return;
		}
	}
	if (p->hdone != NULL) {
		ps__redis_history_done(r, p->hdone, p->user);
		rc__pending_free(p);
		return;
	}
	status = ps__redis_publish_reply(r, &offset);
	if (status != 0) {
		ps__count(&rc->f->stats.failed, 1);
		ls_warn(RC_LOG, "publish failed: %s", r->str);
	} else {
		ps__count(&rc->f->stats.published, 1);
	}
	if (p->done != NULL) {
		p->done(status, offset, p->user);
	}
	rc__pending_free(p);
}

static void
rc__on_sub_reply(rc__conn *c, redisReply *r)
{
	ps__rc *rc = c->rc;
	ps_fabric *f = rc->f;

	if (r->type == REDIS_REPLY_ERROR) {
		/* A MOVED for an SSUBSCRIBE: resubscribed after the refresh.
		 */
		if (rc__moved(rc, r) < 0) {
			ls_warn(RC_LOG, "subscriber: %s", r->str);
			rc__schedule_refresh(rc, r->str);
		}
		return;
	}
	if (r->type != REDIS_REPLY_ARRAY || r->elements < 3 ||
	    r->element[1]->type != REDIS_REPLY_STRING) {
		return;
	}
	const redisReply *kind = r->element[0], *ch = r->element[1];
	bool control = ch->len == strlen(PS_CONTROL_CHANNEL) &&
	               memcmp(ch->str, PS_CONTROL_CHANNEL, ch->len) == 0;
	/* "{topic}#h": the channel of messages published with history. */
	bool hchan = ch->len > 4 && ch->str[0] == '{' &&
	             memcmp(ch->str + ch->len - 3, "}#h", 3) == 0;
	const char *name = hchan ? ch->str + 1 : ch->str;
	size_t nlen = hchan ? ch->len - 4 : ch->len;
	ps__topic *t = control ? NULL : ps__topics_find(f->topics, name, nlen);

	if (rc__is(kind, "smessage")) {
		const redisReply *msg = r->element[2];
		char epoch[LS_EPOCH_MAX + 1];
		uint64_t offset;
		const char *data;
		size_t dlen;

		if (msg->type != REDIS_REPLY_STRING) {
			return;
		}
		if (control) {
			if (f->on_control != NULL &&
			    msg->len <= f->max_payload) {
				f->on_control(msg->str, msg->len, f->user);
			}
		} else if (t != NULL && !hchan) {
			ps__deliver(f, name, nlen, msg->str, msg->len, 0,
			            NULL);
		} else if (t != NULL) {
			if (ps__redis_framed_parse(msg->str, msg->len, epoch,
			                           &offset, &data,
			                           &dlen) == 0) {
				ps__deliver(f, name, nlen, data, dlen, offset,
				            epoch);
			} else {
				ps__count(&f->stats.dropped, 1);
				ls_warn(RC_LOG,
				        "dropped a malformed message on %.*s",
				        (int)ch->len, ch->str);
			}
		}
	} else if (rc__is(kind, "ssubscribe")) {
		/* A topic counts once both its channels are subscribed: the
		 * history channel is asked for second. */
		if (control) {
			rc->ctl_confirmed = true;
		} else if (t != NULL && hchan) {
			t->confirmed = true;
			t->syncing = false;
		}
		rc__update_state(rc);
		if (t != NULL && hchan) {
			ps__subscribed(f, t);
		}
	} else if (rc__is(kind, "sunsubscribe")) {
		/* Ours (the topic is gone) or the server's: its slot moved. */
		if (control || (t != NULL && t->confirmed)) {
			if (control) {
				rc->ctl_confirmed = false;
				rc->ctl_node = -1;
			} else {
				t->confirmed = false;
				t->syncing = true;
			}
			rc->lost = true;
			ls_info(RC_LOG,
			        "%.*s: its slot moved, subscribing again on "
			        "the new owner",
			        (int)nlen, name);
			rc__schedule_refresh(rc, "a subscribed slot migrated");
			rc__update_state(rc);
		}
	}
}

static void
rc__on_read(struct ev_loop *loop, ev_io *w, int revents)
{
	rc__conn *c = w->data;
	char buf[16384];
	ssize_t n;
	void *reply;

	(void)revents;
	n = recv(c->fd, buf, sizeof(buf), 0);
	if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
		rc__conn_lost(c, n == 0 ? "closed by the server"
		                        : strerror(errno));
		return;
	}
	if (n < 0) {
		return;
	}
	if (c->head != NULL) {
		ev_timer_again(loop, &c->stall); /* the node is answering */
	}
	redisReaderFeed(c->reader, buf, (size_t)n);
	for (;;) {
		reply = NULL;
		if (redisReaderGetReply(c->reader, &reply) != REDIS_OK) {
			rc__conn_lost(c, "protocol error");
			return;
		}
		if (reply == NULL) {
			return;
		}
		if (c->kind == RC_SUB) {
			rc__on_sub_reply(c, reply);
		} else {
			rc__on_pub_reply(c, reply);
		}
		freeReplyObject(reply);
		if (c->kind == RC_CTL && c->head == NULL) {
			/* CLUSTER SLOTS answered: this connection is done. */
			c->rc->ctl = NULL;
			rc__conn_free(c);
			return;
		}
	}
}

/* ---- topology and subscriptions ---------------------------------------- */

static void
rc__subscribe_one(ps__topic *t, void *arg)
{
	ps__rc *rc = arg;
	unsigned slot;
	rc__conn *c;

	if (t->confirmed) {
		return;
	}
	slot = rc__slot(t->name, t->len);
	if (rc->owner[slot] == RC_NONE) {
		return;
	}
	c = rc__node_conn(rc, rc->owner[slot], RC_SUB);
	if (c != NULL) {
		/* The topic for plain SPUBLISH, "{topic}#h" for messages
		 * published with history: same slot, same connection; the
		 * second confirmation confirms the topic. */
		char hchan[PS_TOPIC_MAX + 8];
		int hl = snprintf(hchan, sizeof(hchan), "{%s}#h", t->name);
		const char *argv[3] = { "SSUBSCRIBE", t->name, hchan };
		size_t lens[3] = { 10, t->len, (size_t)hl };
		rc__send(c, 3, argv, lens);
	}
}

static void
rc__subscribe_pending(ps__rc *rc)
{
	ps_fabric *f = rc->f;

	ps__topics_each(f->topics, rc__subscribe_one, rc);
	if (f->on_control != NULL && !rc->ctl_confirmed) {
		unsigned slot = rc__slot(PS_CONTROL_CHANNEL,
		                         strlen(PS_CONTROL_CHANNEL));
		if (rc->owner[slot] != RC_NONE) {
			rc__conn *c =
			        rc__node_conn(rc, rc->owner[slot], RC_SUB);
			if (c != NULL) {
				rc->ctl_node = rc->owner[slot];
				rc__send2(c, "SSUBSCRIBE", PS_CONTROL_CHANNEL,
				          strlen(PS_CONTROL_CHANNEL));
			}
		}
	}
}

static void
rc__refresh_now(ps__rc *rc)
{
	int total = rc->nseeds + rc->nnodes;
	const char *host;
	int port;

	if (rc->ctl != NULL || total == 0) {
		return;
	}
	/* Seeds first, then every node seen: any of them can answer. */
	int i = rc->next_seed++ % total;
	if (i < rc->nseeds) {
		host = rc->seed_host[i];
		port = rc->seed_port[i];
	} else {
		host = rc->nodes[i - rc->nseeds].host;
		port = rc->nodes[i - rc->nseeds].port;
	}
	rc->ctl = rc__connect(rc, RC_CTL, -1, host, port);
	if (rc->ctl == NULL) {
		rc__schedule_refresh(rc, "cannot open a connection");
		return;
	}
	rc__pending *p = calloc(1, sizeof(*p));
	if (p == NULL) {
		return;
	}
	p->slots = true;
	rc->ctl->head = rc->ctl->tail = p;
	const char *argv[2] = { "CLUSTER", "SLOTS" };
	size_t lens[2] = { 7, 5 };
	rc__send(rc->ctl, 2, argv, lens);
}

static void
rc__on_refresh(struct ev_loop *loop, ev_timer *w, int revents)
{
	ps__rc *rc = w->data;

	(void)loop;
	(void)revents;
	rc->refresh_armed = false;
	rc__refresh_now(rc);
}

static void
rc__schedule_refresh(ps__rc *rc, const char *why)
{
	ps_fabric *f = rc->f;

	snprintf(rc->status, sizeof(rc->status), "cluster topology: %s", why);
	if (rc->refresh_armed || f->destroying) {
		return;
	}
	rc->backoff_ms =
	        rc->backoff_ms == 0 ? f->reconnect_min_ms : rc->backoff_ms * 2;
	if (rc->backoff_ms > f->reconnect_max_ms) {
		rc->backoff_ms = f->reconnect_max_ms;
	}
	ev_timer_set(&rc->refresh, rc->backoff_ms / 1000.0, 0);
	ev_timer_start(f->loop, &rc->refresh);
	rc->refresh_armed = true;
}

static void
rc__unconfirm_node(ps__topic *t, void *arg)
{
	ps__rc *rc = ((void **)arg)[0];
	int node = *(int *)((void **)arg)[1];
	unsigned slot = rc__slot(t->name, t->len);

	if (rc->owner[slot] == node || node < 0) {
		t->confirmed = false;
		t->syncing = true;
	}
}

static void
rc__conn_lost(rc__conn *c, const char *why)
{
	ps__rc *rc = c->rc;
	int node = c->node;

	if (c->kind == RC_CTL) {
		ls_debug(RC_LOG, "cluster topology query failed: %s", why);
		rc->ctl = NULL;
		rc__conn_free(c);
		rc__schedule_refresh(rc, why);
		return;
	}
	ls_warn(RC_LOG, "lost %s connection to %s:%d: %s",
	        c->kind == RC_SUB ? "subscriber" : "publisher",
	        rc->nodes[node].host, rc->nodes[node].port, why);
	if (c->kind == RC_SUB) {
		void *arg[2] = { rc, &node };
		rc->nodes[node].sub = NULL;
		/* Every topic subscribed there must be subscribed again. */
		ps__topics_each(rc->f->topics, rc__unconfirm_node, arg);
		if (rc->ctl_node == node) {
			rc->ctl_confirmed = false;
			rc->ctl_node = -1;
		}
		rc->lost = true;
	} else {
		rc->nodes[node].pub = NULL;
	}
	rc__conn_free(c);
	rc__schedule_refresh(rc, why);
	rc__update_state(rc);
}

/* Ready waits for the topics being subscribed again after a loss (marked
 * syncing), not for new subscriptions: those are confirmed on their own. */
static void
rc__confirmed_each(ps__topic *t, void *arg)
{
	if (t->syncing) {
		*(bool *)arg = false;
	}
}

static bool
rc__all_confirmed(const ps__rc *rc)
{
	bool ok = true;

	ps__topics_each(rc->f->topics, rc__confirmed_each, &ok);
	return ok && (rc->f->on_control == NULL || rc->ctl_confirmed);
}

static void
rc__update_state(ps__rc *rc)
{
	bool ready = rc->topology && rc__all_confirmed(rc);

	if (ready) {
		snprintf(rc->status, sizeof(rc->status), "ready");
		if (rc->ever_ready && rc->lost) {
			ps__count(&rc->f->stats.reconnects, 1);
			rc->lost = false;
			if (rc->f->on_resync != NULL) {
				rc->f->on_resync(rc->f->user);
			}
		}
		rc->ever_ready = true;
		rc->lost = false;
	}
	ps__state_changed(rc->f);
}

/* ---- the backend ---------------------------------------------------------
 */

static int
rc__parse_url(ps__rc *rc, const char *url, ls_error *err)
{
	const char *p = url + strlen("redis+cluster://");

	while (*p != '\0') {
		const char *end = p + strcspn(p, ",");
		const char *colon = memchr(p, ':', (size_t)(end - p));
		char host[RC_HOST_MAX], buf[16];
		long port;
		char *pe;

		if (rc->nseeds == RC_SEEDS_MAX || colon == NULL ||
		    colon == p || (size_t)(colon - p) >= sizeof(host)) {
			goto bad;
		}
		memcpy(host, p, (size_t)(colon - p));
		host[colon - p] = '\0';
		if (strcmp(host, "localhost") == 0) {
			snprintf(host, sizeof(host), "127.0.0.1");
		}
		port = strtol(colon + 1, &pe, 10);
		if (pe != end || port < 1 || port > 65535 ||
		    inet_pton(AF_INET, host, buf) != 1) {
			goto bad;
		}
		snprintf(rc->seed_host[rc->nseeds], RC_HOST_MAX, "%s", host);
		rc->seed_port[rc->nseeds++] = (int)port;
		p = *end == ',' ? end + 1 : end;
	}
	if (rc->nseeds > 0) {
		return 0;
	}
bad:
	return ls_error_set(err, -EINVAL,
	                    "pubsub: \"%.64s\": expected "
	                    "redis+cluster://IP:PORT[,IP:PORT...] (IPv4 "
	                    "addresses of cluster nodes)",
	                    url);
}

static int
rc__start(ps_fabric *f, const char *url, ls_error *err)
{
	ps__rc *rc = calloc(1, sizeof(*rc));

	if (rc == NULL) {
		return ls_error_set(err, -ENOMEM, "pubsub: out of memory");
	}
	rc->f = f;
	rc->ctl_node = -1;
	if (rc__parse_url(rc, url, err) < 0) {
		free(rc);
		return -EINVAL;
	}
	for (unsigned s = 0; s < RC_SLOTS; s++) {
		rc->owner[s] = RC_NONE;
	}
	snprintf(rc->status, sizeof(rc->status),
	         "discovering the cluster's slots");
	f->state = rc;
	ev_timer_init(&rc->refresh, rc__on_refresh, 0, 0);
	rc->refresh.data = rc;
	rc__refresh_now(rc);
	return 0;
}

static void
rc__stop(ps_fabric *f)
{
	ps__rc *rc = f->state;

	if (rc == NULL) {
		return;
	}
	ev_timer_stop(f->loop, &rc->refresh);
	if (rc->ctl != NULL) {
		rc__conn_free(rc->ctl);
	}
	for (int i = 0; i < rc->nnodes; i++) {
		if (rc->nodes[i].sub != NULL) {
			rc__conn_free(rc->nodes[i].sub);
		}
		if (rc->nodes[i].pub != NULL) {
			rc__conn_free(rc->nodes[i].pub);
		}
	}
	free(rc);
	f->state = NULL;
}

static int
rc__subscribe(ps_fabric *f, ps__topic *t)
{
	ps__rc *rc = f->state;

	t->confirmed = false;
	rc__subscribe_one(t, rc);
	rc__update_state(rc);
	return 0;
}

static void
rc__unsubscribe(ps_fabric *f, ps__topic *t)
{
	ps__rc *rc = f->state;
	unsigned slot = rc__slot(t->name, t->len);

	if (rc->owner[slot] != RC_NONE) {
		rc__node *n = &rc->nodes[rc->owner[slot]];
		if (n->sub != NULL) {
			char hchan[PS_TOPIC_MAX + 8];
			int hl = snprintf(hchan, sizeof(hchan), "{%s}#h",
			                  t->name);
			const char *argv[3] = { "SUNSUBSCRIBE", t->name,
				                hchan };
			size_t lens[3] = { 12, t->len, (size_t)hl };
			rc__send(n->sub, 3, argv, lens);
		}
	}
}

/*
 * Send a request about topic (argv) to the master owning its slot, with
 * done or hdone answered when it replies. Returns 0, -EAGAIN when the
 * slot's owner is unknown (the topology is being discovered), or -ENOBUFS
 * when PS_PENDING_MAX requests already wait (a stalled node).
 */
static int
rc__request(ps__rc *rc, const char *topic, size_t tlen, int argc,
            const char **argv, const size_t *lens, ps_publish_fn done,
            ps_history_fn hdone, void *user)
{
	unsigned slot = rc__slot(topic, tlen);
	rc__conn *c;
	rc__pending *p;
	char *cmd = NULL;
	int n;

	if (rc->owner[slot] == RC_NONE) {
		return -EAGAIN;
	}
	if (rc->requests >= PS_PENDING_MAX) {
		return -ENOBUFS;
	}
	c = rc__node_conn(rc, rc->owner[slot], RC_PUB);
	p = calloc(1, sizeof(*p));
	n = redisFormatCommandArgv(&cmd, argc, argv, lens);
	if (c == NULL || p == NULL || n < 0) {
		free(p);
		free(cmd);
		return -ENOMEM;
	}
	p->done = done;
	p->hdone = hdone;
	p->user = user;
	p->cmd = cmd;
	p->cmdlen = (size_t)n;
	p->slot = slot;
	p->count = &rc->requests;
	rc->requests++;
	rc__pending_send(c, p);
	return 0;
}

static int
rc__publish_to(ps__rc *rc, const char *topic, size_t tlen, const char *payload,
               size_t len, const ps_history_cfg *hist, ps_publish_fn done,
               void *user)
{
	char meta[PS_TOPIC_MAX + 8], hkey[PS_TOPIC_MAX + 16];
	char size[16], ttl[16];

	if (hist == NULL) {
		const char *argv[3] = { "SPUBLISH", topic, payload };
		size_t lens[3] = { 8, tlen, len };
		return rc__request(rc, topic, tlen, 3, argv, lens, done, NULL,
		                   user);
	}
	/* With history: the library's ls_spublish, atomically on the
	 * master of the topic's slot (its keys share the topic's hash tag). */
	snprintf(meta, sizeof(meta), "ls:{%.*s}", (int)tlen, topic);
	snprintf(hkey, sizeof(hkey), "ls:{%.*s}:h", (int)tlen, topic);
	snprintf(size, sizeof(size), "%u", hist->size);
	snprintf(ttl, sizeof(ttl), "%u", hist->ttl);
	const char *argv[8] = { "FCALL", "ls_spublish", "2",  meta,
		                hkey,    payload,       size, ttl };
	size_t lens[8] = {
		5,   11,           1,          strlen(meta), strlen(hkey),
		len, strlen(size), strlen(ttl)
	};
	return rc__request(rc, topic, tlen, 8, argv, lens, done, NULL, user);
}

static int
rc__publish(ps_fabric *f, const char *topic, size_t tlen, const char *payload,
            size_t len, const ps_history_cfg *hist, ps_publish_fn done,
            void *user)
{
	int rc = rc__publish_to(f->state, topic, tlen, payload, len, hist,
	                        done, user);

	if (rc < 0) {
		ps__count(&f->stats.failed, 1);
	}
	return rc;
}

static int
rc__control(ps_fabric *f, const char *payload, size_t len)
{
	return rc__publish_to(f->state, PS_CONTROL_CHANNEL,
	                      strlen(PS_CONTROL_CHANNEL), payload, len, NULL,
	                      NULL, NULL);
}

static int
rc__history(ps_fabric *f, const char *topic, size_t tlen, uint64_t since,
            size_t limit, ps_history_fn done, void *user)
{
	char meta[PS_TOPIC_MAX + 8], hkey[PS_TOPIC_MAX + 16];
	char a_since[24], a_limit[24];

	snprintf(meta, sizeof(meta), "ls:{%.*s}", (int)tlen, topic);
	snprintf(hkey, sizeof(hkey), "ls:{%.*s}:h", (int)tlen, topic);
	snprintf(a_since, sizeof(a_since), "%llu", (unsigned long long)since);
	snprintf(a_limit, sizeof(a_limit), "%zu", limit);
	const char *argv[7] = { "FCALL", "ls_history", "2",    meta,
		                hkey,    a_since,      a_limit };
	size_t lens[7] = { 5,
		           10,
		           1,
		           strlen(meta),
		           strlen(hkey),
		           strlen(a_since),
		           strlen(a_limit) };
	int rc = rc__request(f->state, topic, tlen, 7, argv, lens, NULL, done,
	                     user);

	if (rc == -EAGAIN) {
		done(LS_EUNAVAILABLE, NULL, user);
		return 0;
	}
	return rc;
}

static bool
rc__ready(const ps_fabric *f)
{
	ps__rc *rc = f->state;

	return rc != NULL && rc->topology && rc__all_confirmed(rc);
}

static const char *
rc__status(const ps_fabric *f)
{
	const ps__rc *rc = f->state;

	return rc != NULL ? rc->status : "stopped";
}

const ps__backend ps__rcluster_backend = {
	.name = "redis-cluster",
	.start = rc__start,
	.stop = rc__stop,
	.subscribe = rc__subscribe,
	.unsubscribe = rc__unsubscribe,
	.publish = rc__publish,
	.history = rc__history,
	.control = rc__control,
	.ready = rc__ready,
	.status = rc__status,
};
