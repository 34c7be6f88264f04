/*
 * The recovery merge (gateway/gw_recover.c): history read and live
 * messages buffered while it was in flight, in every interleaving that
 * matters, without timing: each case builds the exact state the race
 * leaves behind.
 */
#include <stdio.h>
#include <string.h>

#include "gw_internal.h"
#include "ls_test.h"

typedef struct seen {
	uint64_t offsets[32];
	char data[32][24];
	bool parsed[32];
	int n;
	int stop_after; /* the subscription ends after this many (0: never) */
} seen;

static bool
emit(void *user, gw_buf *shared, json_t *msg, uint64_t offset)
{
	seen *s = user;
	if (s->n < 32) {
		s->offsets[s->n] = offset;
		snprintf(s->data[s->n], sizeof(s->data[s->n]), "%.*s",
		         (int)(shared->len < 23 ? shared->len : 23),
		         shared->data);
		s->parsed[s->n] = msg != NULL;
	}
	s->n++;
	return s->n != s->stop_after;
}

/* A live message as the fan-out buffers it. */
static void
live(gw_rec *r, uint64_t offset, const char *json)
{
	size_t jlen;
	json_t *msg;
	gw_buf *b = gw_message(json, strlen(json), offset, false, &msg, &jlen);
	LS_CHECK(b != NULL);
	LS_CHECK_INT(gw_rec_buffer(r, b, jlen, offset, offset ? "E" : NULL,
	                           1 << 20),
	             0);
	gw_buf_unref(&b);
}

static int owner; /* stands for the subscription */

/* History 4..7 of epoch "E", latest 7: what a read since 3 returns. */
static ps_history_msg hmsgs[] = {
	{ 4, "4", 1 }, { 5, "5", 1 }, { 6, "6", 1 }, { 7, "{\"n\":7}", 7 }
};
static const ps_history_result hres = {
	.epoch = "E", .latest = 7, .complete = true, .msgs = hmsgs, .count = 4
};

static void
expect(const seen *s, const uint64_t *want, int n)
{
	LS_CHECK_INT(s->n, n);
	for (int i = 0; i < n && i < s->n; i++) {
		if (s->offsets[i] != want[i]) {
			printf("# emitted[%d] = %llu, want %llu\n", i,
			       (unsigned long long)s->offsets[i],
			       (unsigned long long)want[i]);
		}
		LS_CHECK(s->offsets[i] == want[i]);
	}
}

/* Published while the read was in flight: 6 and 7 are in both the read and
 * the buffer; 8, a plain publish and 9 came after. */
static gw_rec *
raced(json_t *rid, const char *epoch)
{
	gw_rec *r = gw_rec_new(&owner, rid, epoch, 3);
	gw_rec_read_start(r);
	live(r, 6, "6");
	live(r, 7, "{\"n\":7}");
	live(r, 8, "8");
	live(r, 0, "\"plain\"");
	live(r, 9, "9");
	LS_CHECK(gw_rec_read_done(r) == &owner);
	return r;
}

LS_TEST(recovered_then_newer_live_each_once_in_order)
{
	json_t *rid = json_string("r1");
	gw_rec *r = raced(rid, "E");
	seen s = { 0 };
	LS_CHECK(gw_rec_recovered(r, &hres));
	LS_CHECK(gw_rec_merge(r, &hres, false, emit, &s));
	const uint64_t want[] = { 4, 5, 6, 7, 8, 0, 9 };
	expect(&s, want, 7);
	/* Bodies carry their offset after the JSON, for the frame. */
	LS_CHECK_STR(s.data[3], "{\"n\":7},\"offset\":7");
	LS_CHECK_STR(s.data[5], "\"plain\"");
	LS_CHECK(gw_rec_request_id(r) == rid);
	gw_rec_release(r);
	json_decref(rid);
}

LS_TEST(wrong_epoch_is_live_only_after_the_latest)
{
	gw_rec *r = raced(NULL, "OTHER");
	seen s = { 0 };
	LS_CHECK(!gw_rec_recovered(r, &hres));
	LS_CHECK(!gw_rec_merge(r, &hres, false, emit, &s));
	const uint64_t want[] = { 8, 0, 9 };
	expect(&s, want, 3);
	gw_rec_release(r);
}

LS_TEST(incomplete_history_is_not_recovered)
{
	ps_history_result part = hres;
	part.complete = false; /* e.g. 4 was trimmed or expired */
	gw_rec *r = raced(NULL, "E");
	seen s = { 0 };
	LS_CHECK(!gw_rec_merge(r, &part, false, emit, &s));
	const uint64_t want[] = { 8, 0, 9 };
	expect(&s, want, 3);
	gw_rec_release(r);
}

LS_TEST(no_history_read_delivers_every_buffered_message)
{
	gw_rec *r = raced(NULL, "E");
	seen s = { 0 };
	LS_CHECK(!gw_rec_merge(r, NULL, false, emit, &s));
	const uint64_t want[] = { 6, 7, 8, 0, 9 };
	expect(&s, want, 5);
	gw_rec_release(r);
}

LS_TEST(without_since_only_messages_after_the_start)
{
	gw_rec *r = gw_rec_new(&owner, NULL, NULL, 0);
	seen s = { 0 };
	live(r, 7, "7");
	live(r, 8, "8");
	LS_CHECK(!gw_rec_has_since(r));
	LS_CHECK(!gw_rec_merge(r, &hres, false, emit, &s));
	const uint64_t want[] = { 8 };
	expect(&s, want, 1);
	gw_rec_release(r);
}

LS_TEST(a_subscription_ended_midway_gets_nothing_more)
{
	gw_rec *r = raced(NULL, "E");
	seen s = { .stop_after = 2 };
	gw_rec_merge(r, &hres, false, emit, &s);
	LS_CHECK_INT(s.n, 2);
	gw_rec_release(r);
}

LS_TEST(parsed_for_queries_when_asked)
{
	gw_rec *r = raced(NULL, "E");
	seen s = { 0 };
	gw_rec_merge(r, &hres, true, emit, &s);
	for (int i = 0; i < s.n; i++) {
		LS_CHECK(s.parsed[i]);
	}
	gw_rec_release(r);
}

LS_TEST(buffer_is_bounded)
{
	gw_rec *r = gw_rec_new(&owner, NULL, NULL, 0);
	size_t jlen;
	json_t *msg;
	gw_buf *b = gw_message("12345", 5, 1, false, &msg, &jlen);
	LS_CHECK_INT(gw_rec_buffer(r, b, jlen, 1, "E", 20), 0); /* 16 bytes */
	LS_CHECK_INT(gw_rec_buffer(r, b, jlen, 2, "E", 20), -ENOBUFS);
	gw_buf_unref(&b);
	gw_rec_release(r);
}

LS_TEST(released_during_the_read_is_freed_by_the_answer)
{
	gw_rec *r = gw_rec_new(&owner, NULL, "E", 0);
	gw_rec_read_start(r);
	live(r, 1, "1");
	gw_rec_release(r);                     /* the subscription went */
	LS_CHECK(gw_rec_read_done(r) == NULL); /* and r is freed (ASan) */
}

LS_TEST_MAIN()
