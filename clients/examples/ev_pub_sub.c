/*
 * ev_pub_sub — the client on the application's libev loop, publishing
 * from a second thread.
 *
 *   ev_pub_sub URL APPKEY TOKEN OWNER/STREAM COUNT
 *   ev_pub_sub ws://127.0.0.1:8080 acc1 "$TOKEN" acc1/s1 100
 *
 * Subscribes to OWNER/STREAM; once subscribed, a publisher thread sends
 * COUNT messages {"n": 1..COUNT} with acknowledgements through
 * lsc_client_publish() (thread-safe) while the main thread runs ev_run().
 * Prints every message received, and exits 0 once all COUNT messages were
 * both acknowledged and received in order; 1 on any failure or after 30 s.
 * The token must grant reading and writing the stream.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lsc_ev.h"

typedef struct app {
	struct ev_loop *loop;
	lsc_client *c;
	char owner[65], stream[129];
	long count;
	long received; /* loop thread */
	long acked;    /* loop thread */
	bool started;  /* loop thread: the publisher runs */
	int quit;      /* atomic: the publisher must give up */
	pthread_t publisher;
	int status;
} app;

static void
finish(app *a, int status)
{
	a->status = status;
	ev_break(a->loop, EVBREAK_ALL);
}

static void
check_done(app *a)
{
	if (a->received == a->count && a->acked == a->count) {
		fflush(stdout);
		finish(a, 0);
	}
}

/* Acknowledgements run on the loop's thread, like every callback. */
static void
on_ack(lsc_client *c, const char *request_id, bool ok, const char *code,
       const char *message, void *user)
{
	app *a = user;

	if (!ok) {
		fprintf(stderr, "ev_pub_sub: publish refused: %s: %s\n", code,
		        message);
		finish(a, 1);
		return;
	}
	a->acked++;
	check_done(a);
}

static void *
publish_all(void *arg)
{
	const struct timespec pause = { 0, 1000 * 1000 };
	app *a = arg;

	for (long n = 1; n <= a->count; n++) {
		char text[64];
		int rc;

		snprintf(text, sizeof(text), "{\"n\":%ld}", n);
		/* A full queue empties as the loop sends: try again. */
		while ((rc = lsc_client_publish(a->c, a->owner, a->stream,
		                                text, strlen(text), on_ack, a,
		                                NULL)) == -ENOBUFS &&
		       !__atomic_load_n(&a->quit, __ATOMIC_ACQUIRE)) {
			nanosleep(&pause, NULL);
		}
		if (rc != 0) {
			fprintf(stderr, "ev_pub_sub: publish %ld: %s\n", n,
			        lsc_strerror(rc));
			return NULL;
		}
	}
	return NULL;
}

static void
on_subscribe(lsc_client *c, int64_t sub, const char *subscription_id,
             const char *code, const char *message, void *user)
{
	app *a = user;

	if (subscription_id == NULL) {
		fprintf(stderr, "ev_pub_sub: subscription refused: %s: %s\n",
		        code, message);
		finish(a, 1);
		return;
	}
	if (!a->started) {
		a->started = pthread_create(&a->publisher, NULL, publish_all,
		                            a) == 0;
		if (!a->started) {
			finish(a, 1);
		}
	}
}

static void
on_message(lsc_client *c, const lsc_message *m, void *user)
{
	app *a = user;
	char expect[64];

	a->received++;
	snprintf(expect, sizeof(expect), "{\"n\":%ld}", a->received);
	printf("%s/%s: %s\n", m->owner, m->stream, m->data);
	if (strcmp(m->data, expect) != 0) {
		fprintf(stderr, "ev_pub_sub: expected %s\n", expect);
		finish(a, 1);
	} else {
		check_done(a);
	}
}

static void
on_close(lsc_client *c, int code, const char *reason, bool reconnecting,
         void *user)
{
	fprintf(stderr, "ev_pub_sub: connection closed (%d %s)\n", code,
	        reason);
	if (!reconnecting) {
		finish(user, 1);
	}
}

static void
on_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
	app *a = w->data;

	fprintf(stderr, "ev_pub_sub: timed out: %ld of %ld received\n",
	        a->received, a->count);
	finish(a, 1);
}

int
main(int argc, char **argv)
{
	app a = { 0 };
	lsc_options opt = { 0 };
	lsc_error err;
	ev_timer timeout;
	const char *slash;

	if (argc != 6 || (slash = strchr(argv[4], '/')) == NULL ||
	    (a.count = atol(argv[5])) <= 0) {
		fprintf(stderr, "usage: ev_pub_sub URL APPKEY TOKEN "
		                "OWNER/STREAM COUNT\n");
		return 2;
	}
	snprintf(a.owner, sizeof(a.owner), "%.*s", (int)(slash - argv[4]),
	         argv[4]);
	snprintf(a.stream, sizeof(a.stream), "%s", slash + 1);
	a.loop = ev_default_loop(0);
	a.status = 1;

	opt.url = argv[1];
	opt.app_key = argv[2];
	opt.token = argv[3];
	opt.cb.on_subscribe = on_subscribe;
	opt.cb.on_message = on_message;
	opt.cb.on_close = on_close;
	opt.user = &a;
	a.c = lsc_client_new_ev(&opt, a.loop, &err);
	if (a.c == NULL) {
		fprintf(stderr, "ev_pub_sub: %s\n", err.text);
		return 2;
	}
	if (lsc_client_subscribe(a.c, a.owner, a.stream, NULL, &err) < 0 ||
	    lsc_client_connect(a.c) != 0) {
		fprintf(stderr, "ev_pub_sub: %s\n", err.text);
		lsc_client_destroy(&a.c);
		return 1;
	}
	ev_timer_init(&timeout, on_timeout, 30.0, 0.0);
	timeout.data = &a;
	ev_timer_start(a.loop, &timeout);

	ev_run(a.loop, 0);

	/* The publisher is done once every message came back; join it
	 * before the client goes. */
	__atomic_store_n(&a.quit, 1, __ATOMIC_RELEASE);
	if (a.started) {
		pthread_join(a.publisher, NULL);
	}
	ev_timer_stop(a.loop, &timeout);
	lsc_client_destroy(&a.c);
	ev_loop_destroy(a.loop);
	return a.status;
}
