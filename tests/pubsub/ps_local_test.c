/* The local (in-process) fabric: reference counting and delivery. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ev.h>

#include "ls_log.h"
#include "ls_test.h"
#include "ps_fabric.h"

typedef struct rx {
	int count;
	char topic[256];
	char payload[128];
	size_t len;
	bool terminated;
} rx;

static void
on_message(const char *topic, size_t tlen, const char *payload, size_t len,
           uint64_t offset, const char *epoch, void *user)
{
	rx *r = user;
	r->count++;
	snprintf(r->topic, sizeof(r->topic), "%.*s", (int)tlen, topic);
	r->len = len < sizeof(r->payload) ? len : sizeof(r->payload);
	memcpy(r->payload, payload, r->len);
	r->terminated = payload[len] == '\0';
}

static void
on_done(int status, uint64_t offset, void *user)
{
	int *out = user;
	*out = status;
}

static ps_fabric *
make(struct ev_loop *loop, rx *r, size_t max_payload)
{
	ps_fabric_options o = { .url = "local",
		                .on_message = on_message,
		                .user = r,
		                .max_payload = max_payload };
	ls_error err;
	return ps_fabric_new(loop, &o, &err);
}

LS_TEST(local_round_trip)
{
	struct ev_loop *loop = ev_loop_new(0);
	rx r = { 0 };
	ps_fabric *f = make(loop, &r, 0);
	LS_CHECK(f != NULL);
	LS_CHECK(ps_fabric_ready(f));
	LS_CHECK_STR(ps_fabric_backend(f), "local");
	LS_CHECK_INT(ps_fabric_subscribe(f, "acme:weather"), 0);
	int status = 1;
	const char msg[] = "{\"city\":\"Lisboa\"}XXXX";
	/* Not NUL-terminated at len: the fabric must terminate its copy. */
	LS_CHECK_INT(ps_fabric_publish(f, "acme:weather", msg, 17, on_done,
	                               &status),
	             0);
	LS_CHECK_INT(status, 0); /* done called before publish returned */
	LS_CHECK_INT(r.count, 1);
	LS_CHECK_STR(r.topic, "acme:weather");
	LS_CHECK_INT(r.len, 17);
	LS_CHECK(memcmp(r.payload, "{\"city\":\"Lisboa\"}", 17) == 0);
	LS_CHECK(r.terminated);
	/* Other topics are not delivered, but are accepted. */
	status = 1;
	LS_CHECK_INT(
	        ps_fabric_publish(f, "acme:other", "1", 1, on_done, &status),
	        0);
	LS_CHECK_INT(status, 0);
	LS_CHECK_INT(r.count, 1);
	ps_stats st;
	ps_fabric_stats(f, &st);
	LS_CHECK_INT(st.published, 2);
	LS_CHECK_INT(st.received, 1);
	LS_CHECK_INT(st.topics, 1);
	ps_fabric_destroy(&f);
	LS_CHECK(f == NULL);
	ps_fabric_destroy(&f); /* NULL is fine */
	ev_loop_destroy(loop);
}

LS_TEST(local_refcount)
{
	struct ev_loop *loop = ev_loop_new(0);
	rx r = { 0 };
	ps_fabric *f = make(loop, &r, 0);
	LS_CHECK_INT(ps_fabric_subscribe(f, "acme:s"), 0);
	LS_CHECK_INT(ps_fabric_subscribe(f, "acme:s"), 0);
	LS_CHECK_INT(ps_fabric_refs(f, "acme:s"), 2);
	LS_CHECK_INT(ps_fabric_unsubscribe(f, "acme:s"), 0);
	LS_CHECK_INT(ps_fabric_refs(f, "acme:s"), 1);
	LS_CHECK_INT(ps_fabric_publish(f, "acme:s", "x", 1, NULL, NULL), 0);
	LS_CHECK_INT(r.count, 1); /* still subscribed */
	LS_CHECK_INT(ps_fabric_unsubscribe(f, "acme:s"), 0);
	LS_CHECK_INT(ps_fabric_refs(f, "acme:s"), 0);
	LS_CHECK_INT(ps_fabric_publish(f, "acme:s", "y", 1, NULL, NULL), 0);
	LS_CHECK_INT(r.count, 1); /* gone with the last reference */
	LS_CHECK_INT(ps_fabric_unsubscribe(f, "acme:s"), -EINVAL);
	ps_stats st;
	ps_fabric_stats(f, &st);
	LS_CHECK_INT(st.topics, 0);
	ps_fabric_destroy(&f);
	ev_loop_destroy(loop);
}

LS_TEST(local_limits)
{
	struct ev_loop *loop = ev_loop_new(0);
	rx r = { 0 };
	ps_fabric *f = make(loop, &r, 8);
	char owner[LS_APPKEY_MAX + 2], stream[LS_STREAM_MAX + 2];
	char topic[sizeof(owner) + sizeof(stream) + 2];
	memset(owner, 'o', sizeof(owner));
	memset(stream, 's', sizeof(stream));
	owner[LS_APPKEY_MAX] = '\0';
	stream[LS_STREAM_MAX] = '\0';
	snprintf(topic, sizeof(topic), "%s:%s", owner, stream);
	LS_CHECK_INT(ps_fabric_subscribe(f, topic), 0); /* at the limits */
	LS_CHECK_INT(ps_fabric_unsubscribe(f, topic), 0);
	owner[LS_APPKEY_MAX] = 'o';
	owner[LS_APPKEY_MAX + 1] = '\0';
	snprintf(topic, sizeof(topic), "%s:%s", owner, "s");
	LS_CHECK_INT(ps_fabric_subscribe(f, topic), -EINVAL);
	stream[LS_STREAM_MAX] = 's';
	stream[LS_STREAM_MAX + 1] = '\0';
	snprintf(topic, sizeof(topic), "o:%s", stream);
	LS_CHECK_INT(ps_fabric_subscribe(f, topic), -EINVAL);
	LS_CHECK_INT(ps_fabric_subscribe(f, ""), -EINVAL);
	LS_CHECK_INT(ps_fabric_subscribe(f, "nocolon"), -EINVAL);
	LS_CHECK_INT(ps_fabric_subscribe(f, ":stream"), -EINVAL);
	LS_CHECK_INT(ps_fabric_subscribe(f, "owner:"), -EINVAL);
	LS_CHECK_INT(ps_fabric_subscribe(f, NULL), -EINVAL);
	int status = 1;
	LS_CHECK_INT(
	        ps_fabric_publish(f, "a:b", "123456789", 9, on_done, &status),
	        -EINVAL);
	LS_CHECK_INT(status, 1); /* done not called on error */
	LS_CHECK_INT(
	        ps_fabric_publish(f, "a:b", "12345678", 8, on_done, &status),
	        0);
	LS_CHECK_INT(status, 0);
	ps_fabric_destroy(&f);
	ev_loop_destroy(loop);
}

/* ---- a hub shared by several loops, each on its own thread ------------- */

#define HUB_LOOPS    3
#define HUB_MESSAGES 2000

typedef struct member {
	ps_hub *hub;
	int index;
	struct ev_loop *loop;
	ps_fabric *f;
	ev_async stop;
	pthread_t thread;
	volatile int ready;
	/* what arrived on "acme:s": per publisher, the last sequence */
	int count;
	int last[HUB_LOOPS];
	bool in_order;
	int other;    /* messages on "acme:other" */
	int controls; /* announcements on the control channel */
} member;

static void
member_message(const char *topic, size_t tlen, const char *payload, size_t len,
               uint64_t offset, const char *epoch, void *user)
{
	member *m = user;
	int from, seq;

	if (strcmp(topic, "acme:other") == 0) {
		m->other++;
		return;
	}
	if (sscanf(payload, "%d/%d", &from, &seq) != 2 || from < 0 ||
	    from >= HUB_LOOPS) {
		m->in_order = false;
		return;
	}
	if (seq != m->last[from] + 1) {
		m->in_order = false;
	}
	m->last[from] = seq;
	__atomic_add_fetch(&m->count, 1, __ATOMIC_RELAXED);
}

static void
member_control(const char *payload, size_t len, void *user)
{
	member *m = user;

	if (len == 7 && memcmp(payload, "revoked", 7) == 0) {
		m->controls++;
	}
}

static void
member_stop(struct ev_loop *loop, ev_async *w, int revents)
{
	ev_break(loop, EVBREAK_ALL);
}

static void *
member_main(void *arg)
{
	member *m = arg;
	ps_fabric_options o = { .url = "local",
		                .on_message = member_message,
		                .on_control = member_control,
		                .user = m,
		                .hub = m->hub };
	ls_error err;

	m->f = ps_fabric_new(m->loop, &o, &err);
	ps_fabric_subscribe(m->f, "acme:s");
	if (m->index == 0) {
		ps_fabric_subscribe(m->f, "acme:other");
	}
	__atomic_store_n(&m->ready, 1, __ATOMIC_RELEASE);
	while (__atomic_load_n(&m->ready, __ATOMIC_ACQUIRE) != 2) {
		usleep(1000);
	}
	/* Every member publishes while the others receive. */
	for (int i = 1; i <= HUB_MESSAGES; i++) {
		char text[32];
		int n = snprintf(text, sizeof(text), "%d/%d", m->index, i);
		ps_fabric_publish(m->f, "acme:s", text, (size_t)n, NULL, NULL);
		if (i % 100 == 0) {
			ev_run(m->loop, EVRUN_NOWAIT);
		}
	}
	ev_async_start(m->loop, &m->stop);
	ev_run(m->loop, 0);
	ev_async_stop(m->loop, &m->stop);
	return NULL;
}

LS_TEST(hub_across_threads)
{
	ps_hub *hub = ps_hub_new();
	member m[HUB_LOOPS];

	LS_CHECK(hub != NULL);
	memset(m, 0, sizeof(m));
	for (int i = 0; i < HUB_LOOPS; i++) {
		m[i].hub = hub;
		m[i].index = i;
		m[i].in_order = true;
		m[i].loop = ev_loop_new(0);
		ev_async_init(&m[i].stop, member_stop);
		pthread_create(&m[i].thread, NULL, member_main, &m[i]);
	}
	for (int i = 0; i < HUB_LOOPS; i++) {
		while (__atomic_load_n(&m[i].ready, __ATOMIC_ACQUIRE) != 1) {
			usleep(1000);
		}
	}
	for (int i = 0; i < HUB_LOOPS; i++) {
		__atomic_store_n(&m[i].ready, 2, __ATOMIC_RELEASE);
	}
	/* Wait until every member has every message, at most 20 s. */
	for (int tries = 0; tries < 2000; tries++) {
		bool all = true;
		for (int i = 0; i < HUB_LOOPS; i++) {
			if (__atomic_load_n(&m[i].count, __ATOMIC_RELAXED) <
			    HUB_LOOPS * HUB_MESSAGES) {
				all = false;
			}
		}
		if (all) {
			break;
		}
		usleep(10000);
	}
	for (int i = 0; i < HUB_LOOPS; i++) {
		ev_async_send(m[i].loop, &m[i].stop);
		pthread_join(m[i].thread, NULL);
	}
	for (int i = 0; i < HUB_LOOPS; i++) {
		ps_stats st;
		LS_CHECK(m[i].f != NULL);
		/* every message of every publisher, each publisher's in
		 * order, none twice */
		LS_CHECK_INT(m[i].count, HUB_LOOPS * HUB_MESSAGES);
		LS_CHECK(m[i].in_order);
		ps_fabric_stats(m[i].f, &st);
		LS_CHECK_INT(st.published, HUB_MESSAGES);
		LS_CHECK_INT(st.received, HUB_LOOPS * HUB_MESSAGES);
	}
	/* Interest: only member 0 subscribed "acme:other". */
	LS_CHECK_INT(
	        ps_fabric_publish(m[2].f, "acme:other", "1", 1, NULL, NULL),
	        0);
	ev_run(m[0].loop, EVRUN_NOWAIT);
	ev_run(m[1].loop, EVRUN_NOWAIT);
	LS_CHECK_INT(m[0].other, 1);
	LS_CHECK_INT(m[1].other, 0);
	LS_CHECK_INT(m[2].other, 0);
	/* An announcement on the control channel reaches every member, its
	 * publisher's before the call returns. */
	LS_CHECK_INT(ps_fabric_control_publish(m[1].f, "revoked", 7), 0);
	LS_CHECK_INT(m[1].controls, 1);
	ev_run(m[0].loop, EVRUN_NOWAIT);
	ev_run(m[2].loop, EVRUN_NOWAIT);
	LS_CHECK_INT(m[0].controls, 1);
	LS_CHECK_INT(m[2].controls, 1);
	/* A member that leaves is no longer delivered to; the others are. */
	ps_fabric_destroy(&m[1].f);
	LS_CHECK_INT(
	        ps_fabric_publish(m[2].f, "acme:s", "2/9999", 6, NULL, NULL),
	        0);
	ev_run(m[0].loop, EVRUN_NOWAIT);
	LS_CHECK_INT(m[0].last[2], 9999);
	LS_CHECK_INT(m[2].last[2],
	             9999); /* its own: before publish returned */
	for (int i = 0; i < HUB_LOOPS; i++) {
		ps_fabric_destroy(&m[i].f);
		ev_loop_destroy(m[i].loop);
	}
	ps_hub_destroy(&hub);
	LS_CHECK(hub == NULL);
}

/* A loop that does not keep up: its inbox is bounded, and a publish that
 * would pass the bound is refused as a whole (-ENOBUFS), also for the
 * publisher's own loop; once the loop caught up, publishing works again. */
LS_TEST(hub_inbox_bounded)
{
	ps_hub *hub = ps_hub_new();
	struct ev_loop *la = ev_loop_new(0), *lb = ev_loop_new(0);
	rx ra = { 0 }, rb = { 0 };
	ps_fabric_options oa = { .url = "local",
		                 .on_message = on_message,
		                 .user = &ra,
		                 .hub = hub,
		                 .max_payload = 2 * 1024 * 1024 };
	ps_fabric_options ob = oa;
	ls_error err;
	size_t big = 1024 * 1024;
	char *payload = malloc(big);
	int accepted = 0, rc = 0;
	ps_stats st;

	ob.user = &rb;
	ps_fabric *a = ps_fabric_new(la, &oa, &err);
	ps_fabric *b = ps_fabric_new(lb, &ob, &err);
	LS_CHECK(a != NULL && b != NULL && payload != NULL);
	memset(payload, 'x', big);
	LS_CHECK_INT(ps_fabric_subscribe(a, "acme:s"), 0);
	LS_CHECK_INT(ps_fabric_subscribe(b, "acme:s"), 0);
	/* b's loop never runs: its inbox fills (64 MiB of 1 MiB messages). */
	while (accepted < 1000) {
		rc = ps_fabric_publish(a, "acme:s", payload, big, NULL, NULL);
		if (rc != 0) {
			break;
		}
		accepted++;
	}
	LS_CHECK_INT(rc, -ENOBUFS);
	LS_CHECK_INT(accepted, 64);
	LS_CHECK_INT(ra.count, 64); /* a did not get the refused one either */
	ps_fabric_stats(a, &st);
	LS_CHECK_INT(st.published, 64);
	LS_CHECK_INT(st.failed, 1);
	/* Another topic that only a subscribes is not held up by b. */
	LS_CHECK_INT(ps_fabric_subscribe(a, "acme:own"), 0);
	LS_CHECK_INT(ps_fabric_publish(a, "acme:own", "1", 1, NULL, NULL), 0);
	LS_CHECK_INT(ra.count, 65);
	/* b catches up; publishing to both works again. */
	ev_run(lb, EVRUN_NOWAIT);
	LS_CHECK_INT(rb.count, 64);
	LS_CHECK_INT(ps_fabric_publish(a, "acme:s", "2", 1, NULL, NULL), 0);
	ev_run(lb, EVRUN_NOWAIT);
	LS_CHECK_INT(rb.count, 65);
	LS_CHECK_INT(ra.count, 66);
	ps_fabric_destroy(&a);
	ps_fabric_destroy(&b);
	ps_hub_destroy(&hub);
	ev_loop_destroy(la);
	ev_loop_destroy(lb);
	free(payload);
}

LS_TEST(bad_urls)
{
	struct ev_loop *loop = ev_loop_new(0);
	const char *bad[] = { "nats://x",
		              "redis://",
		              "redis://:6379",
		              "redis://127.0.0.1:99999",
		              "redis://127.0.0.1:abc",
		              "redis://redis.example.com:6379",
		              "redis://[::1" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ps_fabric_options o = { .url = bad[i] };
		ls_error err = { 0 };
		ps_fabric *f = ps_fabric_new(loop, &o, &err);
		LS_CHECK(f == NULL);
		LS_CHECK_INT(err.code, -EINVAL);
		LS_CHECK(strlen(err.text) > 0);
		ps_fabric_destroy(&f);
	}
	ev_loop_destroy(loop);
}

int
main(void)
{
	ls_log_set_level(LS_LOG_OFF);
	return ls_test_run_all__();
}
