/*
 * The fabric front end: option defaults, topic validation and reference
 * counting, limits and statistics. Backends only see validated calls.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ls_log.h"
#include "ps_internal.h"

#define PS_RECONNECT_MIN_DEFAULT 100
#define PS_RECONNECT_MAX_DEFAULT 5000

static const ps__backend *
ps__backend_for(const char *url)
{
	if (strcmp(url, "local") == 0) {
		return &ps__local_backend;
	}
	if (strncmp(url, "redis://", 8) == 0) {
		return &ps__redis_backend;
	}
	if (strncmp(url, "zmq://", 6) == 0) {
		return &ps__zmq_backend;
	}
	if (strncmp(url, "redis+cluster://", 16) == 0) {
		return &ps__rcluster_backend;
	}
	return NULL;
}

ps_fabric *
ps_fabric_new(struct ev_loop *loop, const ps_fabric_options *opt,
              ls_error *err)
{
	ps_fabric *f = NULL;
	const char *url = opt->url != NULL ? opt->url : "local";
	const ps__backend *be = ps__backend_for(url);
	if (be == NULL) {
		ls_error_set(
		        err, -EINVAL,
		        "pubsub: unknown fabric \"%.64s\" (want \"local\", "
		        "\"redis://HOST:PORT\", "
		        "\"redis+cluster://HOST:PORT,...\" or "
		        "\"zmq://HOST:XSUB_PORT,XPUB_PORT\")",
		        url);
		return NULL;
	}
	if (opt->connect_timeout_ms < 0 || opt->reconnect_min_ms < 0 ||
	    opt->reconnect_max_ms < 0) {
		ls_error_set(err, -EINVAL, "pubsub: negative timeout");
		return NULL;
	}
	f = calloc(1, sizeof(*f));
	if (f == NULL) {
		ls_error_set(err, -ENOMEM, "pubsub: out of memory");
		return NULL;
	}
	f->loop = loop;
	f->be = be;
	f->on_message = opt->on_message;
	f->on_state = opt->on_state;
	f->on_control = opt->on_control;
	f->on_resync = opt->on_resync;
	f->on_subscribed = opt->on_subscribed;
	f->history_bytes = opt->history_bytes;
	f->user = opt->user;
	f->connect_timeout_ms = opt->connect_timeout_ms
	                                ? opt->connect_timeout_ms
	                                : LS_PUBSUB_TIMEOUT_MS_DEFAULT;
	f->reconnect_min_ms = opt->reconnect_min_ms ? opt->reconnect_min_ms
	                                            : PS_RECONNECT_MIN_DEFAULT;
	f->reconnect_max_ms = opt->reconnect_max_ms ? opt->reconnect_max_ms
	                                            : PS_RECONNECT_MAX_DEFAULT;
	if (f->reconnect_max_ms < f->reconnect_min_ms) {
		f->reconnect_max_ms = f->reconnect_min_ms;
	}
	f->max_payload =
	        opt->max_payload ? opt->max_payload : PS_PAYLOAD_MAX_DEFAULT;
	f->hub = opt->hub;
	if (opt->curve_server != NULL && opt->curve_public != NULL &&
	    opt->curve_secret != NULL) {
		snprintf(f->curve_server, sizeof(f->curve_server), "%s",
		         opt->curve_server);
		snprintf(f->curve_public, sizeof(f->curve_public), "%s",
		         opt->curve_public);
		snprintf(f->curve_secret, sizeof(f->curve_secret), "%s",
		         opt->curve_secret);
	}
	f->topics = ps__topics_new();
	if (f->topics == NULL) {
		ls_error_set(err, -ENOMEM, "pubsub: out of memory");
		goto fail;
	}
	if (be->start(f, url, err) < 0) {
		goto fail;
	}
	f->last_ready = be->ready(f);
	return f;
fail:
	ps__topics_destroy(&f->topics);
	free(f);
	return NULL;
}

void
ps_fabric_destroy(ps_fabric **fp)
{
	if (fp == NULL || *fp == NULL) {
		return;
	}
	ps_fabric *f = *fp;
	f->destroying = true;
	f->be->stop(f);
	ps__topics_destroy(&f->topics);
	free(f);
	*fp = NULL;
}

/* "owner:stream" with 1..LS_APPKEY_MAX and 1..LS_STREAM_MAX bytes. */
static int
ps__topic_check(const char *topic, size_t *len)
{
	if (topic == NULL) {
		return -EINVAL;
	}
	size_t n = strnlen(topic, PS_TOPIC_MAX + 1);
	if (n == 0 || n > PS_TOPIC_MAX) {
		return -EINVAL;
	}
	const char *colon = memchr(topic, ':', n);
	if (colon == NULL) {
		return -EINVAL;
	}
	size_t owner = (size_t)(colon - topic);
	size_t stream = n - owner - 1;
	if (owner == 0 || owner > LS_APPKEY_MAX || stream == 0 ||
	    stream > LS_STREAM_MAX) {
		return -EINVAL;
	}
	*len = n;
	return 0;
}

int
ps_fabric_subscribe(ps_fabric *f, const char *topic)
{
	size_t len;
	int rc = ps__topic_check(topic, &len);
	if (rc < 0) {
		return rc;
	}
	ps__topic *t = ps__topics_find(f->topics, topic, len);
	if (t != NULL) {
		t->refs++;
		return 0;
	}
	t = ps__topics_add(f->topics, topic, len);
	if (t == NULL) {
		return -ENOMEM;
	}
	t->refs = 1;
	rc = f->be->subscribe(f, t);
	if (rc < 0) {
		ps__topics_remove(f->topics, t);
		return rc;
	}
	__atomic_store_n(&f->stats.topics, ps__topics_count(f->topics),
	                 __ATOMIC_RELAXED);
	return 0;
}

int
ps_fabric_unsubscribe(ps_fabric *f, const char *topic)
{
	size_t len;
	int rc = ps__topic_check(topic, &len);
	if (rc < 0) {
		return rc;
	}
	ps__topic *t = ps__topics_find(f->topics, topic, len);
	if (t == NULL) {
		return -EINVAL;
	}
	if (--t->refs > 0) {
		return 0;
	}
	f->be->unsubscribe(f, t);
	ps__topics_remove(f->topics, t);
	__atomic_store_n(&f->stats.topics, ps__topics_count(f->topics),
	                 __ATOMIC_RELAXED);
	ps__state_changed(f);
	return 0;
}

int
ps_fabric_publish_history(ps_fabric *f, const char *topic, const char *payload,
                          size_t len, const ps_history_cfg *hist,
                          ps_publish_fn done, void *user)
{
	size_t tlen;
	int rc = ps__topic_check(topic, &tlen);
	if (rc < 0) {
		return rc;
	}
	if (payload == NULL && len > 0) {
		return -EINVAL;
	}
	if (len > f->max_payload) {
		return -EINVAL;
	}
	if (hist != NULL && hist->size == 0) {
		hist = NULL;
	}
	if (hist != NULL &&
	    (hist->size > PS_HISTORY_SIZE_MAX || hist->ttl == 0 ||
	     hist->ttl > PS_HISTORY_TTL_MAX)) {
		return -EINVAL;
	}
	return f->be->publish(f, topic, tlen, payload != NULL ? payload : "",
	                      len, hist, done, user);
}

int
ps_fabric_publish(ps_fabric *f, const char *topic, const char *payload,
                  size_t len, ps_publish_fn done, void *user)
{
	return ps_fabric_publish_history(f, topic, payload, len, NULL, done,
	                                 user);
}

int
ps_fabric_history(ps_fabric *f, const char *topic, uint64_t since,
                  size_t limit, ps_history_fn done, void *user)
{
	size_t tlen;
	int rc = ps__topic_check(topic, &tlen);
	if (rc < 0) {
		return rc;
	}
	if (limit > PS_HISTORY_SIZE_MAX || done == NULL) {
		return -EINVAL;
	}
	if (f->be->history == NULL) {
		return -ENOTSUP;
	}
	return f->be->history(f, topic, tlen, since, limit, done, user);
}

bool
ps_fabric_confirmed(const ps_fabric *f, const char *topic)
{
	ps__topic *t;

	if (topic == NULL) {
		return false;
	}
	t = ps__topics_find(f->topics, topic,
	                    strnlen(topic, PS_TOPIC_MAX + 1));
	return t != NULL && t->confirmed;
}

int
ps_fabric_control_publish(ps_fabric *f, const char *payload, size_t len)
{
	if (payload == NULL || len > f->max_payload) {
		return -EINVAL;
	}
	if (f->be->control != NULL) {
		return f->be->control(f, payload, len);
	}
	if (f->on_control != NULL) {
		char *copy = malloc(len + 1);
		if (copy == NULL) {
			return -ENOMEM;
		}
		memcpy(copy, payload, len);
		copy[len] = '\0';
		f->on_control(copy, len, f->user);
		free(copy);
	}
	return 0;
}

bool
ps_fabric_ready(const ps_fabric *f)
{
	return f->be->ready(f);
}

const char *
ps_fabric_status(const ps_fabric *f)
{
	return f->be->status(f);
}

void
ps_fabric_stats(const ps_fabric *f, ps_stats *out)
{
	/* Atomic reads: another loop's thread may render these. */
	out->published =
	        __atomic_load_n(&f->stats.published, __ATOMIC_RELAXED);
	out->received = __atomic_load_n(&f->stats.received, __ATOMIC_RELAXED);
	out->reconnects =
	        __atomic_load_n(&f->stats.reconnects, __ATOMIC_RELAXED);
	out->topics = __atomic_load_n(&f->stats.topics, __ATOMIC_RELAXED);
	out->dropped = __atomic_load_n(&f->stats.dropped, __ATOMIC_RELAXED);
	out->failed = __atomic_load_n(&f->stats.failed, __ATOMIC_RELAXED);
}

const char *
ps_fabric_backend(const ps_fabric *f)
{
	return f->be->name;
}

unsigned
ps_fabric_refs(const ps_fabric *f, const char *topic)
{
	if (topic == NULL) {
		return 0;
	}
	ps__topic *t = ps__topics_find(f->topics, topic,
	                               strnlen(topic, PS_TOPIC_MAX + 1));
	return t != NULL ? t->refs : 0;
}

void
ps__subscribed(ps_fabric *f, ps__topic *t)
{
	if (f->on_subscribed != NULL && !f->destroying) {
		f->on_subscribed(t->name, t->len, f->user);
	}
}

void
ps__deliver(ps_fabric *f, const char *topic, size_t tlen, const char *payload,
            size_t len, uint64_t offset, const char *epoch)
{
	if (len > f->max_payload) {
		ps__count(&f->stats.dropped, 1);
		ls_warn("pubsub",
		        "dropped a %zu-byte message on %.*s (limit %zu)", len,
		        (int)tlen, topic, f->max_payload);
		return;
	}
	ps__count(&f->stats.received, 1);
	if (f->on_message != NULL) {
		f->on_message(topic, tlen, payload, len, offset, epoch,
		              f->user);
	}
}

void
ps__state_changed(ps_fabric *f)
{
	if (f->destroying) {
		return;
	}
	bool ready = f->be->ready(f);
	if (ready == f->last_ready) {
		return;
	}
	f->last_ready = ready;
	const char *why = f->be->status(f);
	if (ready) {
		ls_info("pubsub", "fabric ready");
	} else {
		ls_warn("pubsub", "fabric not ready: %s", why);
	}
	if (f->on_state != NULL) {
		f->on_state(ready, why, f->user);
	}
}
