/*
 * The Redis fabric against a real redis-server started here: round
 * trips, redis-cli publishers, reference-counted SUBSCRIBE/UNSUBSCRIBE,
 * a server restart on the same port, publishing while it is down.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ev.h>

#include "ls_log.h"
#include "ls_test.h"
#include "ps_fabric.h"
#include "ps_test_util.h"

#include <hiredis/hiredis.h>

#define GUARD 15.0 /* seconds: only a guard against hangs */

typedef struct msg {
	char topic[PS_TOPIC_MAX + 1];
	char *payload;
	size_t len;
	uint64_t offset;
} msg;

typedef struct ctx {
	msg msgs[64];
	int count;
	int ready_changes;
	bool ready;
	int done_count;
	int last_status;
	uint64_t last_offset;
} ctx;

static void
on_message(const char *topic, size_t tlen, const char *payload, size_t len,
           uint64_t offset, const char *epoch, void *user)
{
	ctx *c = user;
	if (c->count >= 64) {
		return;
	}
	msg *m = &c->msgs[c->count++];
	snprintf(m->topic, sizeof(m->topic), "%.*s", (int)tlen, topic);
	m->payload = malloc(len + 1);
	memcpy(m->payload, payload, len + 1); /* includes the NUL */
	m->len = len;
	m->offset = offset;
}

static void
on_state(bool ready, const char *why, void *user)
{
	ctx *c = user;
	c->ready = ready;
	c->ready_changes++;
}

static void
on_done(int status, uint64_t offset, void *user)
{
	ctx *c = user;
	c->done_count++;
	c->last_status = status;
	c->last_offset = offset;
}

static void
ctx_clear(ctx *c)
{
	for (int i = 0; i < c->count; i++) {
		free(c->msgs[i].payload);
	}
	memset(c, 0, sizeof(*c));
}

static ps_fabric *
make(struct ev_loop *loop, ctx *c, int port)
{
	char url[64];
	snprintf(url, sizeof(url), "redis://127.0.0.1:%d", port);
	ps_fabric_options o = { .url = url,
		                .on_message = on_message,
		                .on_state = on_state,
		                .user = c,
		                .reconnect_min_ms = 50,
		                .reconnect_max_ms = 400 };
	ls_error err = { 0 };
	ps_fabric *f = ps_fabric_new(loop, &o, &err);
	if (f == NULL) {
		printf("# ps_fabric_new: %s\n", err.text);
	}
	return f;
}

static bool
is_ready(void *f)
{
	return ps_fabric_ready(f);
}

/* A real redis-server and a fabric on it, connected and ready. */
static ps_fabric *
start_ready(struct ev_loop *loop, pt_redis *rs, ctx *c)
{
	ps_fabric *f;

	LS_CHECK_INT(pt_redis_start(rs, 0), 0);
	f = make(loop, c, rs->port);
	LS_CHECK(pt_run_until(loop, is_ready, f, GUARD));
	return f;
}

/* Undo start_ready() and the test's loop. */
static void
finish(struct ev_loop *loop, ps_fabric **f, ctx *c, pt_redis *rs)
{
	ps_fabric_destroy(f);
	ev_loop_destroy(loop);
	ctx_clear(c);
	pt_redis_cleanup(rs);
}

static bool
is_not_ready(void *f)
{
	return !ps_fabric_ready(f);
}

/*
 * Both connections re-established (each counts one reconnect) and ready.
 * Waiting for "ready" alone could see the state from before a loss that
 * one connection has not read yet.
 */
static bool
is_ready_again(void *f)
{
	ps_stats st;
	ps_fabric_stats(f, &st);
	return st.reconnects >= 2 && ps_fabric_ready(f);
}

struct want {
	ctx *c;
	int n;
};

static bool
have_msgs(void *p)
{
	struct want *w = p;
	return w->c->count >= w->n;
}

static bool
have_done(void *p)
{
	struct want *w = p;
	return w->c->done_count >= w->n;
}

static bool
wait_msgs(struct ev_loop *loop, ctx *c, int n)
{
	struct want w = { c, n };
	return pt_run_until(loop, have_msgs, &w, GUARD);
}

LS_TEST(redis_round_trip)
{
	struct ev_loop *loop = ev_loop_new(0);
	pt_redis rs = { 0 };
	ctx c = { 0 };
	LS_CHECK_INT(pt_redis_start(&rs, 0), 0);
	ps_fabric *f = make(loop, &c, rs.port);
	LS_CHECK(f != NULL);
	LS_CHECK_STR(ps_fabric_backend(f), "redis");
	LS_CHECK(pt_run_until(loop, is_ready, f, GUARD));
	LS_CHECK(c.ready);
	LS_CHECK_STR(ps_fabric_status(f), "ready");
	LS_CHECK_INT(ps_fabric_subscribe(f, "acme:weather"), 0);
	LS_CHECK(pt_wait_numsub(loop, rs.port, "acme:weather", 1, GUARD));

	const char *json = "{\"city\":\"Lisboa\",\"temperature\":12}";
	LS_CHECK_INT(ps_fabric_publish(f, "acme:weather", json, strlen(json),
	                               on_done, &c),
	             0);
	struct want d = { &c, 1 };
	LS_CHECK(pt_run_until(loop, have_done, &d, GUARD));
	LS_CHECK_INT(c.last_status, 0);
	LS_CHECK(wait_msgs(loop, &c, 1));
	LS_CHECK_STR(c.msgs[0].topic, "acme:weather");
	LS_CHECK_STR(c.msgs[0].payload, json);

	/* Payload bytes pass untouched, NUL bytes included. */
	const char bin[] = { 'n', 'o', 't', 0, 'j', 's', 'o', 'n', '\xff' };
	LS_CHECK_INT(ps_fabric_publish(f, "acme:weather", bin, sizeof(bin),
	                               on_done, &c),
	             0);
	LS_CHECK(wait_msgs(loop, &c, 2));
	LS_CHECK_INT(c.msgs[1].len, sizeof(bin));
	LS_CHECK(memcmp(c.msgs[1].payload, bin, sizeof(bin)) == 0);
	LS_CHECK(c.msgs[1].payload[sizeof(bin)] == '\0');

	ps_stats st;
	ps_fabric_stats(f, &st);
	LS_CHECK_INT(st.published, 2);
	LS_CHECK_INT(st.received, 2);
	LS_CHECK_INT(st.topics, 1);
	LS_CHECK_INT(st.reconnects, 0);
	finish(loop, &f, &c, &rs);
}

LS_TEST(redis_cli_publisher_non_json)
{
	struct ev_loop *loop = ev_loop_new(0);
	pt_redis rs = { 0 };
	ctx c = { 0 };
	ps_fabric *f = start_ready(loop, &rs, &c);
	LS_CHECK_INT(ps_fabric_subscribe(f, "svc1:weather"), 0);
	LS_CHECK(pt_wait_numsub(loop, rs.port, "svc1:weather", 1, GUARD));
	LS_CHECK_INT(
	        pt_cli_publish(rs.port, "svc1:weather",
	                       "{\"city\":\"Lisboa\",\"temperature\":12}"),
	        1);
	LS_CHECK_INT(pt_cli_publish(rs.port, "svc1:weather",
	                            "plain text, not \"json\" {"),
	             1);
	LS_CHECK(wait_msgs(loop, &c, 2));
	LS_CHECK_STR(c.msgs[0].payload,
	             "{\"city\":\"Lisboa\",\"temperature\":12}");
	LS_CHECK_STR(c.msgs[1].payload, "plain text, not \"json\" {");
	finish(loop, &f, &c, &rs);
}

LS_TEST(redis_refcounted_unsubscribe)
{
	struct ev_loop *loop = ev_loop_new(0);
	pt_redis rs = { 0 };
	ctx c = { 0 };
	ps_fabric *f = start_ready(loop, &rs, &c);
	LS_CHECK_INT(ps_fabric_subscribe(f, "acme:a"), 0);
	LS_CHECK_INT(ps_fabric_subscribe(f, "acme:a"), 0);
	LS_CHECK_INT(ps_fabric_subscribe(f, "acme:marker"), 0);
	LS_CHECK(pt_wait_numsub(loop, rs.port, "acme:marker", 1, GUARD));
	/* One SUBSCRIBE per topic, whatever the number of references. */
	LS_CHECK_INT(pt_numsub(rs.port, "acme:a"), 1);

	LS_CHECK_INT(ps_fabric_unsubscribe(f, "acme:a"), 0);
	pt_run_for(loop, 0.1);
	LS_CHECK_INT(pt_numsub(rs.port, "acme:a"), 1);
	LS_CHECK_INT(pt_cli_publish(rs.port, "acme:a", "one"), 1);
	LS_CHECK(wait_msgs(loop, &c, 1));
	LS_CHECK_STR(c.msgs[0].payload, "one");

	LS_CHECK_INT(ps_fabric_unsubscribe(f, "acme:a"), 0);
	LS_CHECK(pt_wait_numsub(loop, rs.port, "acme:a", 0, GUARD));
	LS_CHECK_INT(pt_cli_publish(rs.port, "acme:a", "two"), 0);
	/*
	 * The marker travels the same connection after "two" would have:
	 * once it is here, "two" is known not to be coming.
	 */
	LS_CHECK_INT(pt_cli_publish(rs.port, "acme:marker", "mark"), 1);
	LS_CHECK(wait_msgs(loop, &c, 2));
	LS_CHECK_INT(c.count, 2);
	LS_CHECK_STR(c.msgs[1].topic, "acme:marker");
	LS_CHECK_INT(ps_fabric_unsubscribe(f, "acme:a"), -EINVAL);
	ps_stats st;
	ps_fabric_stats(f, &st);
	LS_CHECK_INT(st.topics, 1);

	/* Subscribing again after the last unsubscribe works. */
	LS_CHECK_INT(ps_fabric_subscribe(f, "acme:a"), 0);
	LS_CHECK(pt_wait_numsub(loop, rs.port, "acme:a", 1, GUARD));
	LS_CHECK_INT(pt_cli_publish(rs.port, "acme:a", "three"), 1);
	LS_CHECK(wait_msgs(loop, &c, 3));
	LS_CHECK_STR(c.msgs[2].payload, "three");
	finish(loop, &f, &c, &rs);
}

LS_TEST(redis_restart_reconnects_and_resubscribes)
{
	struct ev_loop *loop = ev_loop_new(0);
	pt_redis rs = { 0 };
	ctx c = { 0 };
	ps_fabric *f = start_ready(loop, &rs, &c);
	LS_CHECK_INT(ps_fabric_subscribe(f, "acme:x"), 0);
	LS_CHECK_INT(ps_fabric_subscribe(f, "acme:y"), 0);
	LS_CHECK(pt_wait_numsub(loop, rs.port, "acme:y", 1, GUARD));
	LS_CHECK_INT(pt_cli_publish(rs.port, "acme:x", "before"), 1);
	LS_CHECK(wait_msgs(loop, &c, 1));

	pt_redis_kill(&rs);
	LS_CHECK(pt_run_until(loop, is_not_ready, f, GUARD));
	LS_CHECK(!c.ready);
	LS_CHECK(strstr(ps_fabric_status(f), "redis") != NULL);

	/* Publishing while down fails at once, never hangs. */
	int before = c.done_count;
	LS_CHECK_INT(ps_fabric_publish(f, "acme:x", "lost", 4, on_done, &c),
	             0);
	LS_CHECK_INT(c.done_count, before + 1);
	LS_CHECK_INT(c.last_status, LS_EUNAVAILABLE);
	/* Topics added while down are subscribed on reconnect too. */
	LS_CHECK_INT(ps_fabric_subscribe(f, "acme:z"), 0);

	LS_CHECK_INT(pt_redis_start(&rs, rs.port), 0);
	LS_CHECK(pt_run_until(loop, is_ready_again, f, GUARD));
	LS_CHECK(c.ready);
	LS_CHECK_INT(pt_numsub(rs.port, "acme:x"), 1);
	LS_CHECK_INT(pt_numsub(rs.port, "acme:y"), 1);
	LS_CHECK_INT(pt_numsub(rs.port, "acme:z"), 1);
	ps_stats st;
	ps_fabric_stats(f, &st);
	LS_CHECK_INT(st.reconnects, 2); /* subscriber and publisher */
	LS_CHECK_INT(st.topics, 3);
	LS_CHECK(st.failed >= 1);

	LS_CHECK_INT(pt_cli_publish(rs.port, "acme:x", "after-x"), 1);
	LS_CHECK_INT(pt_cli_publish(rs.port, "acme:z", "after-z"), 1);
	LS_CHECK(wait_msgs(loop, &c, 3));
	LS_CHECK_STR(c.msgs[1].payload, "after-x");
	LS_CHECK_STR(c.msgs[2].payload, "after-z");
	/* And the fabric's own publisher works again. */
	c.done_count = 0;
	LS_CHECK_INT(
	        ps_fabric_publish(f, "acme:y", "via-fabric", 10, on_done, &c),
	        0);
	LS_CHECK(wait_msgs(loop, &c, 4));
	LS_CHECK_STR(c.msgs[3].payload, "via-fabric");
	LS_CHECK_INT(c.last_status, 0);
	finish(loop, &f, &c, &rs);
}

LS_TEST(redis_never_reachable)
{
	struct ev_loop *loop = ev_loop_new(0);
	ctx c = { 0 };
	int port = pt_free_port(); /* nothing listens there */
	ps_fabric *f = make(loop, &c, port);
	LS_CHECK(f != NULL);
	pt_run_for(loop, 0.3);
	LS_CHECK(!ps_fabric_ready(f));
	LS_CHECK(strstr(ps_fabric_status(f), "subscriber") != NULL);
	LS_CHECK_INT(ps_fabric_subscribe(f, "acme:x"), 0);
	LS_CHECK_INT(ps_fabric_publish(f, "acme:x", "m", 1, on_done, &c), 0);
	LS_CHECK_INT(c.done_count, 1);
	LS_CHECK_INT(c.last_status, LS_EUNAVAILABLE);
	ps_fabric_destroy(&f);
	ev_loop_destroy(loop);
	ctx_clear(&c);
}

LS_TEST(redis_destroy_fails_pending_publishes)
{
	struct ev_loop *loop = ev_loop_new(0);
	pt_redis rs = { 0 };
	ctx c = { 0 };
	ps_fabric *f = start_ready(loop, &rs, &c);
	for (int i = 0; i < 5; i++) {
		LS_CHECK_INT(
		        ps_fabric_publish(f, "acme:p", "x", 1, on_done, &c),
		        0);
	}
	LS_CHECK_INT(c.done_count, 0); /* not answered: loop not run */
	ps_fabric_destroy(&f);
	LS_CHECK_INT(c.done_count, 5);
	LS_CHECK_INT(c.last_status, LS_EUNAVAILABLE);
	ev_loop_destroy(loop);
	ctx_clear(&c);
	pt_redis_cleanup(&rs);
}

#define MANY 2000

struct count_arg {
	int port;
	long n;
};

static bool
have_channels(void *p)
{
	struct count_arg *a = p;
	return pt_redis_count(a->port, "PUBSUB CHANNELS many:*") == a->n;
}

LS_TEST(redis_many_topics_resubscribed_without_patterns)
{
	struct ev_loop *loop = ev_loop_new(0);
	pt_redis rs = { 0 };
	ctx c = { 0 };
	char topic[32];
	ps_fabric *f = start_ready(loop, &rs, &c);
	for (int i = 0; i < MANY; i++) {
		snprintf(topic, sizeof(topic), "many:s%d", i);
		LS_CHECK_INT(ps_fabric_subscribe(f, topic), 0);
	}
	/* Two channels per topic: "t" (plain PUBLISH) and "t#h" (history). */
	struct count_arg all = { rs.port, 2 * MANY };
	LS_CHECK(pt_run_until(loop, have_channels, &all, GUARD));
	LS_CHECK_INT(pt_redis_count(rs.port, "PUBSUB NUMPAT"), 0);

	pt_redis_kill(&rs);
	LS_CHECK(pt_run_until(loop, is_not_ready, f, GUARD));
	LS_CHECK_INT(pt_redis_start(&rs, rs.port), 0);
	/* Ready means every one of them is confirmed again. */
	LS_CHECK(pt_run_until(loop, is_ready_again, f, GUARD));
	LS_CHECK_INT(pt_redis_count(rs.port, "PUBSUB CHANNELS many:*"),
	             2 * MANY);
	LS_CHECK_INT(pt_redis_count(rs.port, "PUBSUB NUMPAT"), 0);
	LS_CHECK_INT(pt_cli_publish(rs.port, "many:s1999", "last"), 1);
	LS_CHECK(wait_msgs(loop, &c, 1));
	LS_CHECK_STR(c.msgs[0].topic, "many:s1999");

	for (int i = 0; i < MANY; i++) {
		snprintf(topic, sizeof(topic), "many:s%d", i);
		LS_CHECK_INT(ps_fabric_unsubscribe(f, topic), 0);
	}
	struct count_arg none = { rs.port, 0 };
	LS_CHECK(pt_run_until(loop, have_channels, &none, GUARD));
	ps_stats st;
	ps_fabric_stats(f, &st);
	LS_CHECK_INT(st.topics, 0);
	finish(loop, &f, &c, &rs);
}

static bool
have_again(void *p)
{
	ctx *c = p;
	for (int i = 0; i < c->count; i++) {
		if (strcmp(c->msgs[i].payload, "again") == 0) {
			return true;
		}
	}
	return false;
}

LS_TEST(redis_hung_server_fails_publishes_then_recovers)
{
	struct ev_loop *loop = ev_loop_new(0);
	pt_redis rs = { 0 };
	ctx c = { 0 };
	LS_CHECK_INT(pt_redis_start(&rs, 0), 0);
	char url[64];
	snprintf(url, sizeof(url), "redis://127.0.0.1:%d", rs.port);
	ps_fabric_options o = { .url = url,
		                .on_message = on_message,
		                .on_state = on_state,
		                .user = &c,
		                .connect_timeout_ms = 300,
		                .reconnect_min_ms = 50,
		                .reconnect_max_ms = 200 };
	ps_fabric *f = ps_fabric_new(loop, &o, NULL);
	LS_CHECK(pt_run_until(loop, is_ready, f, GUARD));
	LS_CHECK_INT(ps_fabric_subscribe(f, "acme:h"), 0);
	LS_CHECK(pt_wait_numsub(loop, rs.port, "acme:h", 1, GUARD));

	/* The server stops answering but keeps its connections open. */
	pt_redis_signal(&rs, SIGSTOP);
	LS_CHECK_INT(ps_fabric_publish(f, "acme:h", "stuck", 5, on_done, &c),
	             0);
	struct want d = { &c, 1 };
	LS_CHECK(pt_run_until(loop, have_done, &d, GUARD));
	LS_CHECK_INT(c.last_status, LS_EUNAVAILABLE);
	LS_CHECK(!ps_fabric_ready(f));

	pt_redis_signal(&rs, SIGCONT);
	LS_CHECK(pt_run_until(loop, is_ready, f, GUARD));
	LS_CHECK(pt_wait_numsub(loop, rs.port, "acme:h", 1, GUARD));
	LS_CHECK_INT(pt_cli_publish(rs.port, "acme:h", "again"), 1);
	LS_CHECK(pt_run_until(loop, have_again, &c, GUARD));
	/*
	 * "stuck" was failed with LS_EUNAVAILABLE, yet Redis may still have
	 * read and published it on resuming: a failed publish means "outcome
	 * unknown", never "certainly not delivered".
	 */
	for (int i = 0; i < c.count; i++) {
		LS_CHECK(strcmp(c.msgs[i].payload, "stuck") == 0 ||
		         strcmp(c.msgs[i].payload, "again") == 0);
	}
	ps_stats st;
	ps_fabric_stats(f, &st);
	LS_CHECK(st.reconnects >= 1);
	finish(loop, &f, &c, &rs);
}

LS_TEST(redis_payload_limit)
{
	struct ev_loop *loop = ev_loop_new(0);
	pt_redis rs = { 0 };
	ctx c = { 0 };
	LS_CHECK_INT(pt_redis_start(&rs, 0), 0);
	char url[64];
	snprintf(url, sizeof(url), "redis://127.0.0.1:%d", rs.port);
	ps_fabric_options o = { .url = url,
		                .on_message = on_message,
		                .user = &c,
		                .max_payload = 16 };
	ps_fabric *f = ps_fabric_new(loop, &o, NULL);
	LS_CHECK(pt_run_until(loop, is_ready, f, GUARD));
	LS_CHECK_INT(ps_fabric_subscribe(f, "acme:big"), 0);
	LS_CHECK(pt_wait_numsub(loop, rs.port, "acme:big", 1, GUARD));
	LS_CHECK_INT(ps_fabric_publish(f, "acme:big", "01234567890123456", 17,
	                               on_done, &c),
	             -EINVAL);
	/* From another publisher: dropped and counted, not delivered. */
	LS_CHECK_INT(pt_cli_publish(rs.port, "acme:big", "01234567890123456"),
	             1);
	LS_CHECK_INT(pt_cli_publish(rs.port, "acme:big", "small"), 1);
	LS_CHECK(wait_msgs(loop, &c, 1));
	LS_CHECK_STR(c.msgs[0].payload, "small");
	ps_stats st;
	ps_fabric_stats(f, &st);
	LS_CHECK_INT(st.dropped, 1);
	LS_CHECK_INT(st.received, 1);
	finish(loop, &f, &c, &rs);
}

/* ---- history ----------------------------------------------------------- */

typedef struct hread {
	int done;
	int status;
	char epoch[PS_EPOCH_MAX + 1];
	uint64_t latest;
	bool complete;
	size_t n;
	uint64_t offsets[16];
	char data[16][32];
} hread;

static void
on_hread(int status, const ps_history_result *r, void *user)
{
	hread *h = user;
	h->done++;
	h->status = status;
	if (r == NULL) {
		return;
	}
	snprintf(h->epoch, sizeof(h->epoch), "%s", r->epoch);
	h->latest = r->latest;
	h->complete = r->complete;
	h->n = r->count;
	for (size_t i = 0; i < r->count && i < 16; i++) {
		h->offsets[i] = r->msgs[i].offset;
		snprintf(h->data[i], sizeof(h->data[i]), "%.*s",
		         (int)r->msgs[i].len, r->msgs[i].data);
	}
}

static bool
hread_done(void *p)
{
	return ((hread *)p)->done > 0;
}

static hread
read_history(struct ev_loop *loop, ps_fabric *f, const char *topic,
             uint64_t since, size_t limit)
{
	hread h = { 0 };
	LS_CHECK_INT(ps_fabric_history(f, topic, since, limit, on_hread, &h),
	             0);
	LS_CHECK(pt_run_until(loop, hread_done, &h, GUARD));
	return h;
}

static bool
published(struct ev_loop *loop, ps_fabric *f, ctx *c, const char *topic,
          const char *data, const ps_history_cfg *cfg)
{
	int before = c->done_count;
	struct want w = { c, before + 1 };
	LS_CHECK_INT(ps_fabric_publish_history(f, topic, data, strlen(data),
	                                       cfg, on_done, c),
	             0);
	return pt_run_until(loop, have_done, &w, GUARD) && c->last_status == 0;
}

/* A blocking command on a connection of its own (any Redis client). */
static redisReply *
command(int port, const char *fmt, const char *a, const char *b, const char *d)
{
	redisContext *rc = redisConnect("127.0.0.1", port);
	redisReply *rep = NULL;
	if (rc != NULL && !rc->err) {
		rep = redisCommand(rc, fmt, a, b, d);
	}
	if (rc != NULL) {
		redisFree(rc);
	}
	return rep;
}

static const ps_history_cfg hcfg = { .size = 5, .ttl = 60 };

LS_TEST(redis_history_is_shared_by_gateways)
{
	struct ev_loop *loop = ev_loop_new(0);
	pt_redis rs = { 0 };
	ctx a = { 0 }, b = { 0 };
	ps_fabric *fa = start_ready(loop, &rs, &a);
	ps_fabric *fb = make(loop, &b, rs.port);
	LS_CHECK(pt_run_until(loop, is_ready, fb, GUARD));
	LS_CHECK_INT(ps_fabric_subscribe(fa, "acme:h"), 0);
	LS_CHECK_INT(ps_fabric_subscribe(fb, "acme:h"), 0);
	LS_CHECK(pt_wait_numsub(loop, rs.port, "acme:h#h", 2, GUARD));
	LS_CHECK(pt_wait_numsub(loop, rs.port, "acme:h", 2, GUARD));
	pt_run_for(loop, 0.05);
	LS_CHECK(ps_fabric_confirmed(fa, "acme:h"));

	LS_CHECK(published(loop, fa, &a, "acme:h", "{\"n\":1}", &hcfg));
	LS_CHECK_INT(a.last_offset, 1);
	LS_CHECK(published(loop, fb, &b, "acme:h", "{\"n\":2}", &hcfg));
	LS_CHECK_INT(b.last_offset, 2);
	LS_CHECK(wait_msgs(loop, &a, 2));
	LS_CHECK(wait_msgs(loop, &b, 2));
	/* Both gateways see the same offsets, with the data alone. */
	LS_CHECK_INT(a.msgs[0].offset, 1);
	LS_CHECK_INT(b.msgs[1].offset, 2);
	LS_CHECK_STR(b.msgs[0].payload, "{\"n\":1}");
	/* A plain PUBLISH still arrives, without offset. */
	LS_CHECK_INT(pt_cli_publish(rs.port, "acme:h", "{\"plain\":1}"), 2);
	LS_CHECK(wait_msgs(loop, &a, 3));
	LS_CHECK_INT(a.msgs[2].offset, 0);
	LS_CHECK_STR(a.msgs[2].payload, "{\"plain\":1}");

	/* Either gateway reads the same history. */
	hread h = read_history(loop, fb, "acme:h", 0, 100);
	LS_CHECK_INT(h.status, 0);
	LS_CHECK_INT(h.latest, 2);
	LS_CHECK(h.complete);
	LS_CHECK_INT(h.n, 2);
	LS_CHECK_STR(h.data[1], "{\"n\":2}");
	LS_CHECK(ls_valid_epoch(h.epoch));
	hread h2 = read_history(loop, fa, "acme:h", 1, 100);
	LS_CHECK_STR(h2.epoch, h.epoch);
	LS_CHECK_INT(h2.n, 1);
	LS_CHECK_INT(h2.offsets[0], 2);
	LS_CHECK(h2.complete);
	/* Since the latest: nothing, complete; after it: not recoverable. */
	h2 = read_history(loop, fa, "acme:h", 2, 100);
	LS_CHECK(h2.complete);
	LS_CHECK_INT(h2.n, 0);
	h2 = read_history(loop, fa, "acme:h", 3, 100);
	LS_CHECK(!h2.complete);

	ps_fabric_destroy(&fb);
	ctx_clear(&b);
	finish(loop, &fa, &a, &rs);
}

LS_TEST(redis_function_publishes_with_history_from_any_client)
{
	struct ev_loop *loop = ev_loop_new(0);
	pt_redis rs = { 0 };
	ctx c = { 0 };
	ps_fabric *f = start_ready(loop, &rs, &c);
	LS_CHECK_INT(ps_fabric_subscribe(f, "svc1:weather"), 0);
	LS_CHECK(pt_wait_numsub(loop, rs.port, "svc1:weather#h", 1, GUARD));
	/* The library is loaded when the publisher connects. */
	LS_CHECK(published(loop, f, &c, "svc1:weather", "1", &hcfg));
	redisReply *rep = command(rs.port, "FCALL ls_publish 2 %s %s %s",
	                          "ls:{svc1:weather}", "ls:{svc1:weather}:h",
	                          "{\"city\":\"Lisboa\"}");
	LS_CHECK(rep != NULL && rep->type == REDIS_REPLY_ARRAY &&
	         rep->elements == 2 &&
	         rep->element[1]->type == REDIS_REPLY_INTEGER &&
	         rep->element[1]->integer == 2);
	freeReplyObject(rep);
	LS_CHECK(wait_msgs(loop, &c, 2));
	LS_CHECK_INT(c.msgs[1].offset, 2);
	LS_CHECK_STR(c.msgs[1].payload, "{\"city\":\"Lisboa\"}");
	/* Keys that are not one stream's pair are refused. */
	rep = command(rs.port, "FCALL ls_publish 2 %s %s %s", "ls:{a:b}",
	              "ls:{a:c}:h", "x");
	LS_CHECK(rep != NULL && rep->type == REDIS_REPLY_ERROR);
	freeReplyObject(rep);
	finish(loop, &f, &c, &rs);
}

LS_TEST(redis_history_trim_ttl_and_flushall)
{
	struct ev_loop *loop = ev_loop_new(0);
	pt_redis rs = { 0 };
	ctx c = { 0 };
	ps_fabric *f = start_ready(loop, &rs, &c);
	char data[16];
	for (int i = 1; i <= 8; i++) {
		snprintf(data, sizeof(data), "%d", i);
		LS_CHECK(published(loop, f, &c, "acme:t", data, &hcfg));
	}
	/* size 5: 4..8 kept, so since 3 recovers, since 2 does not. */
	hread h = read_history(loop, f, "acme:t", 3, 100);
	LS_CHECK(h.complete);
	LS_CHECK_INT(h.n, 5);
	LS_CHECK_INT(h.offsets[0], 4);
	LS_CHECK_STR(h.data[4], "8");
	h = read_history(loop, f, "acme:t", 2, 100);
	LS_CHECK(!h.complete);
	LS_CHECK_INT(h.n, 5);
	h = read_history(loop, f, "acme:t", 2, 2);
	LS_CHECK_INT(h.n, 2); /* limit */
	char epoch[PS_EPOCH_MAX + 1];
	snprintf(epoch, sizeof(epoch), "%s", h.epoch);

	/* ttl 1 s: expired messages are not recovered. */
	ps_history_cfg shortlived = { .size = 5, .ttl = 1 };
	LS_CHECK(published(loop, f, &c, "acme:e", "x", &shortlived));
	h = read_history(loop, f, "acme:e", 0, 100);
	LS_CHECK(h.complete);
	LS_CHECK_INT(h.n, 1);
	pt_run_for(loop, 1.2);
	h = read_history(loop, f, "acme:e", 0, 100);
	LS_CHECK(!h.complete);
	LS_CHECK_INT(h.n, 0);
	LS_CHECK_INT(h.latest, 1);
	h = read_history(loop, f, "acme:e", 1, 100);
	LS_CHECK(h.complete); /* nothing missed after 1 */

	/* FLUSHALL loses the history: a new epoch, offsets from 1. */
	redisReply *rep = command(rs.port, "FLUSHALL", NULL, NULL, NULL);
	LS_CHECK(rep != NULL && rep->type == REDIS_REPLY_STATUS);
	freeReplyObject(rep);
	h = read_history(loop, f, "acme:t", 3, 100);
	LS_CHECK(strcmp(h.epoch, epoch) != 0);
	LS_CHECK_INT(h.latest, 0);
	LS_CHECK(!h.complete);
	LS_CHECK(published(loop, f, &c, "acme:t", "again", &hcfg));
	LS_CHECK_INT(c.last_offset, 1);
	finish(loop, &f, &c, &rs);
}

/* A Redis without functions (< 7.0; here the command is renamed away):
 * live delivery goes on without history, reads say so. */
LS_TEST(redis_without_functions_publishes_plain)
{
	struct ev_loop *loop = ev_loop_new(0);
	pt_redis rs = { .extra = { "--rename-command", "FUNCTION", "\"\"" } };
	ctx c = { 0 };
	ps_fabric *f;

	LS_CHECK_INT(pt_redis_start(&rs, 0), 0);
	f = make(loop, &c, rs.port);
	LS_CHECK(pt_run_until(loop, is_ready, f, GUARD));
	pt_run_for(loop, 0.2); /* the FUNCTION LOAD answer */
	LS_CHECK_INT(ps_fabric_subscribe(f, "acme:p"), 0);
	LS_CHECK(pt_wait_numsub(loop, rs.port, "acme:p", 1, GUARD));
	LS_CHECK(published(loop, f, &c, "acme:p", "\"x\"", &hcfg));
	LS_CHECK_INT(c.last_offset, 0);
	LS_CHECK(wait_msgs(loop, &c, 1));
	LS_CHECK_STR(c.msgs[0].payload, "\"x\"");
	LS_CHECK_INT(c.msgs[0].offset, 0);
	hread h = { 0 };
	LS_CHECK_INT(ps_fabric_history(f, "acme:p", 0, 10, on_hread, &h),
	             -ENOTSUP);
	finish(loop, &f, &c, &rs);
}

int
main(void)
{
	signal(SIGPIPE, SIG_IGN); /* hiredis writes to sockets */
	ls_log_set_level(getenv("PS_TEST_LOG") ? LS_LOG_DEBUG : LS_LOG_OFF);
	return ls_test_run_all__();
}
