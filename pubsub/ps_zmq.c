/*
 * The ZeroMQ fabric (docs/pubsub.md, "ZeroMQ"): a PUB socket connected to
 * the XSUB side of a `lightstream proxy`, a SUB socket connected to its
 * XPUB side. A message is two frames, [topic "\0", payload]; the NUL
 * ends the topic so that ZeroMQ's prefix matching of subscriptions cannot
 * deliver "svc1:weather2" to a subscriber of "svc1:weather". Subscriptions
 * travel upstream through the proxy, so a gateway receives only the
 * streams it has subscribers for and publishers send only what someone
 * subscribed to.
 *
 * Readiness: ZeroMQ connects and re-connects by itself and re-sends
 * subscriptions, but says nothing of it; so the fabric publishes a ping on
 * a topic of its own every second and is ready while its pings come back
 * through the proxy (PS_ZMQ_PING_MS, 3 missed: not ready). When they come
 * back after a gap, messages (and control announcements) may have been
 * lost meanwhile: on_resync tells the gateway to re-validate.
 */
#include <errno.h>
#include <ev.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "ls_crypto.h"
#include "ls_log.h"
#include "ls_time.h"
#include "ps_internal.h"

#define PS_ZMQ_PING_MS   1000
#define PS_ZMQ_PING_MISS 3
#define PS_ZMQ_HWM       100000
#define PS_ZMQ_BATCH     1024 /* messages read per loop iteration */

typedef struct ps__zmq {
	ps_fabric *f;
	void *ctx;
	void *pub, *sub;
	ev_io sub_io;
	ev_prepare prepare;
	ev_timer ping;
	char ping_topic[48]; /* "__lightstream.ping.<random>" */
	int64_t last_pong_ms;
	bool ready;
	bool ever_ready;
	char status[160];
} ps__zmq;

/* "zmq://HOST:XSUB_PORT,XPUB_PORT" → the two tcp:// endpoints. */
static int
ps__zmq_url(const char *url, char *pub_ep, char *sub_ep, size_t cap,
            ls_error *err)
{
	const char *hp = url + 6, *colon, *comma;
	char host[128];
	long a, b;
	char *end;

	colon = strrchr(hp, ':');
	comma = strchr(hp, ',');
	if (colon == NULL || comma == NULL || comma < colon ||
	    (size_t)(colon - hp) >= sizeof(host) || colon == hp) {
		goto bad;
	}
	memcpy(host, hp, (size_t)(colon - hp));
	host[colon - hp] = '\0';
	a = strtol(colon + 1, &end, 10);
	if (end != comma || a < 1 || a > 65535) {
		goto bad;
	}
	b = strtol(comma + 1, &end, 10);
	if (*end != '\0' || b < 1 || b > 65535) {
		goto bad;
	}
	snprintf(pub_ep, cap, "tcp://%s:%ld", host, a);
	snprintf(sub_ep, cap, "tcp://%s:%ld", host, b);
	return 0;
bad:
	return ls_error_set(err, -EINVAL,
	                    "pubsub: \"%.64s\": expected "
	                    "zmq://HOST:XSUB_PORT,XPUB_PORT (the ports of "
	                    "`lightstream proxy`)",
	                    url);
}

static void
ps__zmq_set_ready(ps__zmq *z, bool ready, const char *why)
{
	if (ready == z->ready) {
		return;
	}
	z->ready = ready;
	snprintf(z->status, sizeof(z->status), "%s", why);
	ps__state_changed(z->f);
	if (ready) {
		if (z->ever_ready) {
			ps__count(&z->f->stats.reconnects, 1);
			/* What went through the proxy meanwhile is lost. */
			if (z->f->on_resync != NULL) {
				z->f->on_resync(z->f->user);
			}
		}
		z->ever_ready = true;
	}
}

/* Read what the SUB socket holds (bounded per call). */
static void
ps__zmq_drain(ps__zmq *z)
{
	ps_fabric *f = z->f;

	for (int i = 0; i < PS_ZMQ_BATCH; i++) {
		zmq_msg_t topic, body;
		int more = 0;
		size_t ml = sizeof(more);
		size_t tlen;
		const char *t;

		zmq_msg_init(&topic);
		if (zmq_msg_recv(&topic, z->sub, ZMQ_DONTWAIT) < 0) {
			zmq_msg_close(&topic);
			return;
		}
		zmq_getsockopt(z->sub, ZMQ_RCVMORE, &more, &ml);
		if (!more) {
			zmq_msg_close(&topic);
			continue; /* not ours: one frame */
		}
		zmq_msg_init(&body);
		if (zmq_msg_recv(&body, z->sub, ZMQ_DONTWAIT) < 0) {
			zmq_msg_close(&topic);
			zmq_msg_close(&body);
			return;
		}
		/* Drop anything beyond two frames. */
		zmq_getsockopt(z->sub, ZMQ_RCVMORE, &more, &ml);
		while (more) {
			zmq_msg_t extra;
			zmq_msg_init(&extra);
			zmq_msg_recv(&extra, z->sub, ZMQ_DONTWAIT);
			zmq_msg_close(&extra);
			zmq_getsockopt(z->sub, ZMQ_RCVMORE, &more, &ml);
		}
		t = zmq_msg_data(&topic);
		tlen = zmq_msg_size(&topic);
		if (tlen >= 1 && t[tlen - 1] == '\0') {
			tlen--;
			if (tlen == strlen(z->ping_topic) &&
			    memcmp(t, z->ping_topic, tlen) == 0) {
				z->last_pong_ms = ls_now_ms();
				ps__zmq_set_ready(z, true, "ready");
			} else if (tlen == strlen(PS_CONTROL_CHANNEL) &&
			           memcmp(t, PS_CONTROL_CHANNEL, tlen) == 0) {
				if (f->on_control != NULL &&
				    zmq_msg_size(&body) <= f->max_payload) {
					f->on_control(zmq_msg_data(&body),
					              zmq_msg_size(&body),
					              f->user);
				}
			} else if (ps__topics_find(f->topics, t, tlen) !=
			           NULL) {
				ps__deliver(f, t, tlen, zmq_msg_data(&body),
				            zmq_msg_size(&body), 0, NULL);
			} else {
				/* Sent before our unsubscription reached the
				 * publisher: counted as received (it was),
				 * not delivered. */
				ps__count(&f->stats.received, 1);
			}
		}
		zmq_msg_close(&topic);
		zmq_msg_close(&body);
		if (f->destroying) {
			return;
		}
	}
	/* More waiting: come back on the next iteration, not now. */
	ev_feed_event(f->loop, &z->sub_io, EV_READ);
}

static void
ps__zmq_on_io(struct ev_loop *loop, ev_io *w, int revents)
{
	(void)loop;
	(void)revents;
	ps__zmq_drain(w->data);
}

/* ZMQ_FD is edge-triggered: look again before the loop blocks. */
static void
ps__zmq_on_prepare(struct ev_loop *loop, ev_prepare *w, int revents)
{
	ps__zmq *z = w->data;
	int events = 0;
	size_t len = sizeof(events);

	(void)revents;
	if (zmq_getsockopt(z->sub, ZMQ_EVENTS, &events, &len) == 0 &&
	    (events & ZMQ_POLLIN)) {
		ev_feed_event(loop, &z->sub_io, EV_READ);
	}
}

static int
ps__zmq_send(ps__zmq *z, const char *topic, size_t tlen, const char *payload,
             size_t len)
{
	char buf[PS_TOPIC_MAX + 2];

	if (tlen > sizeof(buf) - 1) {
		return -EINVAL;
	}
	memcpy(buf, topic, tlen);
	buf[tlen] = '\0';
	if (zmq_send(z->pub, buf, tlen + 1, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0 ||
	    zmq_send(z->pub, payload, len, ZMQ_DONTWAIT) < 0) {
		return errno == EAGAIN ? -ENOBUFS : -errno;
	}
	return 0;
}

static void
ps__zmq_on_ping(struct ev_loop *loop, ev_timer *w, int revents)
{
	ps__zmq *z = w->data;

	(void)loop;
	(void)revents;
	ps__zmq_send(z, z->ping_topic, strlen(z->ping_topic), "", 0);
	if (ls_now_ms() - z->last_pong_ms >
	    (int64_t)PS_ZMQ_PING_MS * PS_ZMQ_PING_MISS) {
		ps__zmq_set_ready(z, false,
		                  "the ZeroMQ proxy does not answer (pings "
		                  "are not coming back)");
	}
	/* The prepare watcher catches what the send made readable. */
}

static int
ps__zmq_topic_opt(void *sock, int opt, const char *topic, size_t len)
{
	char buf[PS_TOPIC_MAX + 64];

	if (len + 1 > sizeof(buf)) {
		return -EINVAL;
	}
	memcpy(buf, topic, len);
	buf[len] = '\0';
	return zmq_setsockopt(sock, opt, buf, len + 1) == 0 ? 0 : -errno;
}

static void
ps__zmq_free(ps__zmq *z)
{
	if (z->sub != NULL) {
		zmq_close(z->sub);
	}
	if (z->pub != NULL) {
		zmq_close(z->pub);
	}
	if (z->ctx != NULL) {
		zmq_ctx_term(z->ctx);
	}
	free(z);
}

static int
ps__zmq_start(ps_fabric *f, const char *url, ls_error *err)
{
	char pub_ep[160], sub_ep[160];
	ps__zmq *z;
	int zero = 0, hwm = PS_ZMQ_HWM, fd = -1;
	size_t fdlen = sizeof(fd);
	unsigned char rnd[8];

	if (ps__zmq_url(url, pub_ep, sub_ep, sizeof(pub_ep), err) < 0) {
		return -EINVAL;
	}
	z = calloc(1, sizeof(*z));
	if (z == NULL) {
		return ls_error_set(err, -ENOMEM, "pubsub: out of memory");
	}
	z->f = f;
	ls_random_bytes(rnd, sizeof(rnd));
	snprintf(z->ping_topic, sizeof(z->ping_topic),
	         "__lightstream.ping.%02x%02x%02x%02x%02x%02x%02x%02x", rnd[0],
	         rnd[1], rnd[2], rnd[3], rnd[4], rnd[5], rnd[6], rnd[7]);
	snprintf(z->status, sizeof(z->status), "connecting to %s", url);
	z->ctx = zmq_ctx_new();
	z->pub = z->ctx ? zmq_socket(z->ctx, ZMQ_PUB) : NULL;
	z->sub = z->ctx ? zmq_socket(z->ctx, ZMQ_SUB) : NULL;
	if (z->pub == NULL || z->sub == NULL) {
		ls_error_set(err, -ENOMEM, "pubsub: zmq: %s",
		             zmq_strerror(errno));
		goto fail;
	}
	zmq_setsockopt(z->pub, ZMQ_LINGER, &zero, sizeof(zero));
	zmq_setsockopt(z->sub, ZMQ_LINGER, &zero, sizeof(zero));
	zmq_setsockopt(z->pub, ZMQ_SNDHWM, &hwm, sizeof(hwm));
	zmq_setsockopt(z->sub, ZMQ_RCVHWM, &hwm, sizeof(hwm));
	/* CURVE: the proxy authenticates us and both links are encrypted;
	 * the secret key is wiped from f once both sockets hold it. */
	if (f->curve_server[0] != '\0') {
		void *socks[2] = { z->pub, z->sub };
		for (int i = 0; i < 2; i++) {
			if (zmq_setsockopt(socks[i], ZMQ_CURVE_SERVERKEY,
			                   f->curve_server, 40) != 0 ||
			    zmq_setsockopt(socks[i], ZMQ_CURVE_PUBLICKEY,
			                   f->curve_public, 40) != 0 ||
			    zmq_setsockopt(socks[i], ZMQ_CURVE_SECRETKEY,
			                   f->curve_secret, 40) != 0) {
				ls_error_set(err, -EINVAL,
				             "pubsub: zmq CURVE keys: %s",
				             zmq_strerror(errno));
				goto fail;
			}
		}
		explicit_bzero(f->curve_secret, sizeof(f->curve_secret));
	}
	if (zmq_connect(z->pub, pub_ep) != 0 ||
	    zmq_connect(z->sub, sub_ep) != 0) {
		ls_error_set(err, -EINVAL, "pubsub: zmq connect: %s",
		             zmq_strerror(errno));
		goto fail;
	}
	if (ps__zmq_topic_opt(z->sub, ZMQ_SUBSCRIBE, z->ping_topic,
	                      strlen(z->ping_topic)) != 0 ||
	    (f->on_control != NULL &&
	     ps__zmq_topic_opt(z->sub, ZMQ_SUBSCRIBE, PS_CONTROL_CHANNEL,
	                       strlen(PS_CONTROL_CHANNEL)) != 0) ||
	    zmq_getsockopt(z->sub, ZMQ_FD, &fd, &fdlen) != 0) {
		ls_error_set(err, -EINVAL, "pubsub: zmq: %s",
		             zmq_strerror(errno));
		goto fail;
	}
	f->state = z;
	ev_io_init(&z->sub_io, ps__zmq_on_io, fd, EV_READ);
	z->sub_io.data = z;
	ev_io_start(f->loop, &z->sub_io);
	ev_prepare_init(&z->prepare, ps__zmq_on_prepare);
	z->prepare.data = z;
	ev_prepare_start(f->loop, &z->prepare);
	/* The first ping soon: ready as soon as the path works. */
	ev_timer_init(&z->ping, ps__zmq_on_ping, 0.05,
	              PS_ZMQ_PING_MS / 1000.0);
	z->ping.data = z;
	ev_timer_start(f->loop, &z->ping);
	z->last_pong_ms = ls_now_ms();
	return 0;
fail:
	ps__zmq_free(z);
	return -EINVAL;
}

static void
ps__zmq_stop(ps_fabric *f)
{
	ps__zmq *z = f->state;

	if (z == NULL) {
		return;
	}
	ev_io_stop(f->loop, &z->sub_io);
	ev_prepare_stop(f->loop, &z->prepare);
	ev_timer_stop(f->loop, &z->ping);
	ps__zmq_free(z);
	f->state = NULL;
}

static int
ps__zmq_subscribe(ps_fabric *f, ps__topic *t)
{
	ps__zmq *z = f->state;
	int rc = ps__zmq_topic_opt(z->sub, ZMQ_SUBSCRIBE, t->name, t->len);

	/* ZeroMQ sends the subscription when it can; nothing to wait for. */
	if (rc == 0) {
		t->confirmed = true;
	}
	return rc;
}

static void
ps__zmq_unsubscribe(ps_fabric *f, ps__topic *t)
{
	ps__zmq *z = f->state;

	ps__zmq_topic_opt(z->sub, ZMQ_UNSUBSCRIBE, t->name, t->len);
}

static int
ps__zmq_publish(ps_fabric *f, const char *topic, size_t tlen,
                const char *payload, size_t len, const ps_history_cfg *hist,
                ps_publish_fn done, void *user)
{
	/* No history on this fabric (docs/pubsub.md): hist is ignored and
	 * no message gets an offset. */
	ps__zmq *z = f->state;
	int rc = ps__zmq_send(z, topic, tlen, payload, len);

	/* Accepted by the socket is all ZeroMQ tells: the proxy and the
	 * subscribers do not acknowledge. */
	if (rc == 0) {
		ps__count(&f->stats.published, 1);
	} else {
		ps__count(&f->stats.failed, 1);
	}
	if (done != NULL) {
		done(rc, 0, user);
	}
	return 0;
}

static int
ps__zmq_control(ps_fabric *f, const char *payload, size_t len)
{
	ps__zmq *z = f->state;

	return ps__zmq_send(z, PS_CONTROL_CHANNEL, strlen(PS_CONTROL_CHANNEL),
	                    payload, len);
}

static bool
ps__zmq_ready(const ps_fabric *f)
{
	const ps__zmq *z = f->state;

	return z != NULL && z->ready;
}

static const char *
ps__zmq_status(const ps_fabric *f)
{
	const ps__zmq *z = f->state;

	return z != NULL ? z->status : "stopped";
}

const ps__backend ps__zmq_backend = {
	.name = "zmq",
	.start = ps__zmq_start,
	.stop = ps__zmq_stop,
	.subscribe = ps__zmq_subscribe,
	.unsubscribe = ps__zmq_unsubscribe,
	.publish = ps__zmq_publish,
	.control = ps__zmq_control,
	.ready = ps__zmq_ready,
	.status = ps__zmq_status,
};
