/*
 * Stream history: the in-memory store's bounds (size, TTL, bytes), offset
 * arithmetic and epochs, and the local fabric publishing and reading with
 * history.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ev.h>

#include "ls_test.h"
#include "ps_fabric.h"
#include "ps_history.h"

static const ps_history_cfg cfg10 = { .size = 10, .ttl = 60 };

static uint64_t
append(ps__hist *h, const char *topic, const char *data, int64_t now,
       const ps_history_cfg *cfg)
{
	uint64_t off = 0;
	LS_CHECK_INT(ps__hist_append(h, topic, strlen(topic), data,
	                             strlen(data), cfg, now, &off, NULL),
	             0);
	return off;
}

static ps_history_result
read_since(ps__hist *h, const char *topic, uint64_t since, size_t limit,
           int64_t now)
{
	ps_history_result r;
	LS_CHECK_INT(
	        ps__hist_read(h, topic, strlen(topic), since, limit, now, &r),
	        0);
	return r;
}

LS_TEST(offsets_start_at_one_and_count_per_stream)
{
	ps__hist *h = ps__hist_new(0);
	LS_CHECK_INT(append(h, "a:s", "1", 0, &cfg10), 1);
	LS_CHECK_INT(append(h, "a:s", "2", 0, &cfg10), 2);
	LS_CHECK_INT(append(h, "a:t", "x", 0, &cfg10), 1);
	LS_CHECK_INT(append(h, "a:s", "3", 0, &cfg10), 3);
	ps_history_result r = read_since(h, "a:s", 0, 100, 0);
	LS_CHECK_INT(r.latest, 3);
	LS_CHECK(r.complete);
	LS_CHECK_INT(r.count, 3);
	LS_CHECK_INT(r.msgs[0].offset, 1);
	LS_CHECK_STR(r.msgs[2].data, "3");
	free((void *)r.msgs);
	/* After 1: 2 and 3, in order. */
	r = read_since(h, "a:s", 1, 100, 0);
	LS_CHECK(r.complete);
	LS_CHECK_INT(r.count, 2);
	LS_CHECK_INT(r.msgs[0].offset, 2);
	LS_CHECK_INT(r.msgs[1].offset, 3);
	free((void *)r.msgs);
	/* Nothing missed. */
	r = read_since(h, "a:s", 3, 100, 0);
	LS_CHECK(r.complete);
	LS_CHECK_INT(r.count, 0);
	free((void *)r.msgs);
	/* An offset from the future is not recoverable. */
	r = read_since(h, "a:s", 4, 100, 0);
	LS_CHECK(!r.complete);
	free((void *)r.msgs);
	/* limit bounds the answer, oldest first. */
	r = read_since(h, "a:s", 0, 2, 0);
	LS_CHECK_INT(r.count, 2);
	LS_CHECK_INT(r.msgs[1].offset, 2);
	free((void *)r.msgs);
	ps__hist_destroy(&h);
	LS_CHECK(h == NULL);
}

LS_TEST(size_bound_trims_oldest_and_breaks_completeness)
{
	ps__hist *h = ps__hist_new(0);
	char data[16];
	for (int i = 1; i <= 25; i++) {
		snprintf(data, sizeof(data), "%d", i);
		append(h, "a:s", data, 0, &cfg10);
	}
	ps_history_result r = read_since(h, "a:s", 0, 100, 0);
	LS_CHECK_INT(r.latest, 25);
	LS_CHECK_INT(r.count, 10); /* 16..25 */
	LS_CHECK_INT(r.msgs[0].offset, 16);
	LS_CHECK(!r.complete);
	free((void *)r.msgs);
	r = read_since(h, "a:s", 14, 100, 0);
	LS_CHECK(!r.complete); /* 15 is gone */
	free((void *)r.msgs);
	r = read_since(h, "a:s", 15, 100, 0);
	LS_CHECK(r.complete); /* 16..25 all there */
	LS_CHECK_INT(r.count, 10);
	free((void *)r.msgs);
	ps__hist_destroy(&h);
}

LS_TEST(ttl_expires_messages_but_keeps_the_counter)
{
	ps__hist *h = ps__hist_new(0);
	ps_history_cfg c = { .size = 100, .ttl = 2 };
	append(h, "a:s", "old", 0, &c);
	append(h, "a:s", "newer", 1500, &c);
	ps_history_result r = read_since(h, "a:s", 0, 100, 1999);
	LS_CHECK_INT(r.count, 2);
	LS_CHECK(r.complete);
	free((void *)r.msgs);
	r = read_since(h, "a:s", 0, 100, 2000); /* "old" expired */
	LS_CHECK_INT(r.count, 1);
	LS_CHECK_INT(r.msgs[0].offset, 2);
	LS_CHECK(!r.complete);
	free((void *)r.msgs);
	r = read_since(h, "a:s", 1, 100, 2000);
	LS_CHECK(r.complete);
	free((void *)r.msgs);
	/* All gone: the counter goes on in the same epoch. */
	char epoch[PS_EPOCH_MAX + 1];
	snprintf(epoch, sizeof(epoch), "%s", r.epoch);
	r = read_since(h, "a:s", 2, 100, 4000);
	LS_CHECK_INT(r.count, 0);
	LS_CHECK_INT(r.latest, 2);
	LS_CHECK(r.complete);
	LS_CHECK_STR(r.epoch, epoch);
	free((void *)r.msgs);
	LS_CHECK_INT(append(h, "a:s", "next", 4000, &c), 3);
	ps__hist_destroy(&h);
}

static bool
keep_none(const char *topic, size_t tlen, void *arg)
{
	return false;
}

static bool
keep_all(const char *topic, size_t tlen, void *arg)
{
	return true;
}

LS_TEST(sweep_frees_idle_empty_streams_with_a_new_epoch_after)
{
	ps__hist *h = ps__hist_new(0);
	ps_history_cfg c = { .size = 100, .ttl = 1 };
	append(h, "a:s", "x", 0, &c);
	ps_history_result r = read_since(h, "a:s", 0, 0, 0);
	char epoch[PS_EPOCH_MAX + 1];
	snprintf(epoch, sizeof(epoch), "%s", r.epoch);
	LS_CHECK(strlen(epoch) > 8);
	free((void *)r.msgs);
	ps__hist_sweep(h, 500, keep_none, NULL);
	LS_CHECK_INT(ps__hist_streams(h), 1); /* still holds a message */
	ps__hist_sweep(h, 1000, keep_all, NULL);
	LS_CHECK_INT(ps__hist_streams(h), 1); /* empty, but kept */
	ps__hist_sweep(h, 1000, keep_none, NULL);
	LS_CHECK_INT(ps__hist_streams(h), 0);
	LS_CHECK_INT(ps__hist_bytes(h), 0);
	/* A new record: offsets from 1 again, under a new epoch, so an old
	 * (epoch, offset) never matches. */
	LS_CHECK_INT(append(h, "a:s", "y", 2000, &c), 1);
	r = read_since(h, "a:s", 0, 0, 2000);
	LS_CHECK(strcmp(r.epoch, epoch) != 0);
	free((void *)r.msgs);
	ps__hist_destroy(&h);
}

LS_TEST(byte_bound_evicts_oldest_of_all_streams)
{
	char big[1000];
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	ps__hist *h = ps__hist_new(20000);
	ps_history_cfg c = { .size = 1000, .ttl = 60 };
	for (int i = 0; i < 100; i++) {
		append(h, i % 2 ? "a:odd" : "a:even", big, i, &c);
	}
	LS_CHECK(ps__hist_bytes(h) <= 20000);
	ps_history_result r = read_since(h, "a:odd", 0, 1000, 100);
	LS_CHECK(r.count > 0 && r.count < 50);
	LS_CHECK_INT(r.latest, 50);
	LS_CHECK_INT(r.msgs[r.count - 1].offset, 50); /* newest kept */
	LS_CHECK(!r.complete);
	free((void *)r.msgs);
	ps__hist_destroy(&h);
}

LS_TEST(reading_creates_the_epoch_of_an_empty_stream)
{
	ps__hist *h = ps__hist_new(0);
	ps_history_result r = read_since(h, "a:new", 0, 10, 0);
	char epoch[PS_EPOCH_MAX + 1];
	snprintf(epoch, sizeof(epoch), "%s", r.epoch);
	LS_CHECK_INT(r.latest, 0);
	LS_CHECK(r.complete);
	LS_CHECK(ls_valid_epoch(epoch));
	free((void *)r.msgs);
	append(h, "a:new", "1", 1, &cfg10);
	r = read_since(h, "a:new", 0, 10, 1);
	LS_CHECK_STR(r.epoch, epoch); /* a reader since 0 recovers it */
	LS_CHECK(r.complete);
	LS_CHECK_INT(r.count, 1);
	free((void *)r.msgs);
	ps__hist_destroy(&h);
}

/* ---- the local fabric --------------------------------------------------- */

typedef struct rx {
	int count;
	uint64_t offsets[16];
	uint64_t done_offset;
	int done_status;
	char epoch[PS_EPOCH_MAX + 1];
	uint64_t latest;
	bool complete;
	size_t n;
	char data[4][32];
} rx;

static void
on_message(const char *topic, size_t tlen, const char *payload, size_t len,
           uint64_t offset, const char *epoch, void *user)
{
	rx *r = user;
	if (r->count < 16) {
		r->offsets[r->count] = offset;
	}
	r->count++;
}

static void
on_done(int status, uint64_t offset, void *user)
{
	rx *r = user;
	r->done_status = status;
	r->done_offset = offset;
}

static void
on_history(int status, const ps_history_result *res, void *user)
{
	rx *r = user;
	r->done_status = status;
	snprintf(r->epoch, sizeof(r->epoch), "%s", res->epoch);
	r->latest = res->latest;
	r->complete = res->complete;
	r->n = res->count;
	for (size_t i = 0; i < res->count && i < 4; i++) {
		snprintf(r->data[i], sizeof(r->data[i]), "%s",
		         res->msgs[i].data);
	}
}

LS_TEST(local_fabric_offsets_and_reads)
{
	struct ev_loop *loop = ev_loop_new(0);
	rx r = { 0 };
	ps_fabric_options o = { .url = "local",
		                .on_message = on_message,
		                .user = &r };
	ls_error err;
	ps_fabric *f = ps_fabric_new(loop, &o, &err);
	ps_history_cfg c = { .size = 3, .ttl = 60 };
	LS_CHECK(f != NULL);
	LS_CHECK_INT(ps_fabric_subscribe(f, "acme:s"), 0);
	LS_CHECK(ps_fabric_confirmed(f, "acme:s"));
	LS_CHECK(!ps_fabric_confirmed(f, "acme:other"));
	LS_CHECK_INT(ps_fabric_publish_history(f, "acme:s", "\"a\"", 3, &c,
	                                       on_done, &r),
	             0);
	LS_CHECK_INT(r.done_offset, 1);
	LS_CHECK_INT(r.offsets[0], 1);
	/* Without history: delivered, no offset, counter untouched. */
	LS_CHECK_INT(ps_fabric_publish(f, "acme:s", "\"b\"", 3, on_done, &r),
	             0);
	LS_CHECK_INT(r.done_offset, 0);
	LS_CHECK_INT(r.offsets[1], 0);
	for (int i = 0; i < 4; i++) {
		LS_CHECK_INT(ps_fabric_publish_history(f, "acme:s", "\"c\"", 3,
		                                       &c, on_done, &r),
		             0);
	}
	LS_CHECK_INT(r.done_offset, 5);
	LS_CHECK_INT(r.count, 6);
	LS_CHECK_INT(ps_fabric_history(f, "acme:s", 2, 100, on_history, &r),
	             0);
	LS_CHECK_INT(r.done_status, 0);
	LS_CHECK_INT(r.latest, 5);
	LS_CHECK_INT(r.n, 3); /* size 3: offsets 3..5 */
	LS_CHECK(r.complete);
	LS_CHECK(ls_valid_epoch(r.epoch));
	LS_CHECK_INT(ps_fabric_history(f, "acme:s", 1, 100, on_history, &r),
	             0);
	LS_CHECK(!r.complete); /* 2 was trimmed */
	/* Bounds are checked. */
	ps_history_cfg bad = { .size = LS_HISTORY_SIZE_MAX + 1, .ttl = 1 };
	LS_CHECK_INT(ps_fabric_publish_history(f, "acme:s", "1", 1, &bad, NULL,
	                                       NULL),
	             -EINVAL);
	bad.size = 1;
	bad.ttl = 0;
	LS_CHECK_INT(ps_fabric_publish_history(f, "acme:s", "1", 1, &bad, NULL,
	                                       NULL),
	             -EINVAL);
	LS_CHECK_INT(ps_fabric_history(f, "acme:s", 0, LS_HISTORY_SIZE_MAX + 1,
	                               on_history, &r),
	             -EINVAL);
	ps_fabric_destroy(&f);
	ev_loop_destroy(loop);
}

LS_TEST(local_fabric_epoch_changes_with_a_new_fabric)
{
	struct ev_loop *loop = ev_loop_new(0);
	rx r1 = { 0 }, r2 = { 0 };
	ps_fabric_options o = { .url = "local" };
	ls_error err;
	ps_fabric *f = ps_fabric_new(loop, &o, &err);
	LS_CHECK_INT(ps_fabric_publish_history(f, "acme:s", "1", 1, &cfg10,
	                                       NULL, NULL),
	             0);
	LS_CHECK_INT(ps_fabric_history(f, "acme:s", 0, 10, on_history, &r1),
	             0);
	ps_fabric_destroy(&f);
	/* A restarted process: same stream, new epoch, history gone. */
	f = ps_fabric_new(loop, &o, &err);
	LS_CHECK_INT(ps_fabric_history(f, "acme:s", 0, 10, on_history, &r2),
	             0);
	LS_CHECK(strcmp(r1.epoch, r2.epoch) != 0);
	LS_CHECK_INT(r1.latest, 1);
	LS_CHECK_INT(r2.latest, 0);
	ps_fabric_destroy(&f);
	ev_loop_destroy(loop);
}

LS_TEST_MAIN()
