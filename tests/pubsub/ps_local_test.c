/* The local (in-process) fabric: reference counting and delivery. */
#include <errno.h>
#include <string.h>

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
           void *user)
{
	rx *r = user;
	r->count++;
	snprintf(r->topic, sizeof(r->topic), "%.*s", (int)tlen, topic);
	r->len = len < sizeof(r->payload) ? len : sizeof(r->payload);
	memcpy(r->payload, payload, r->len);
	r->terminated = payload[len] == '\0';
}

static void
on_done(int status, void *user)
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
	char owner[PS_OWNER_MAX + 2], stream[PS_STREAM_MAX + 2];
	char topic[sizeof(owner) + sizeof(stream) + 2];
	memset(owner, 'o', sizeof(owner));
	memset(stream, 's', sizeof(stream));
	owner[PS_OWNER_MAX] = '\0';
	stream[PS_STREAM_MAX] = '\0';
	snprintf(topic, sizeof(topic), "%s:%s", owner, stream);
	LS_CHECK_INT(ps_fabric_subscribe(f, topic), 0); /* at the limits */
	LS_CHECK_INT(ps_fabric_unsubscribe(f, topic), 0);
	owner[PS_OWNER_MAX] = 'o';
	owner[PS_OWNER_MAX + 1] = '\0';
	snprintf(topic, sizeof(topic), "%s:%s", owner, "s");
	LS_CHECK_INT(ps_fabric_subscribe(f, topic), -EINVAL);
	stream[PS_STREAM_MAX] = 's';
	stream[PS_STREAM_MAX + 1] = '\0';
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
