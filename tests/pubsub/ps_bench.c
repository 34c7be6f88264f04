/*
 * Throughput of the Redis fabric: N publishes through one fabric to a
 * topic it subscribes itself, against a real redis-server started here;
 * counts until every PUBLISH is answered and every message came back.
 * Run: meson test -C BUILD --benchmark pubsub_throughput
 * (or BUILD/tests/pubsub/bench_pubsub [N]).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ev.h>

#include "ls_log.h"
#include "ps_fabric.h"
#include "ps_test_util.h"

#define BATCH 1000 /* publishes queued between loop iterations */
/*
 * Messages in flight at most: beyond Redis' client-output-buffer-limit
 * for pub/sub (32 MB) the server would disconnect our own subscriber.
 */
#define WINDOW 20000

typedef struct bench {
	long n;
	long received;
	long done;
	long failed;
} bench;

static void
on_message(const char *topic, size_t tlen, const char *payload, size_t len,
           uint64_t offset, const char *epoch, void *user)
{
	((bench *)user)->received++;
}

static void
on_done(int status, uint64_t offset, void *user)
{
	bench *b = user;
	if (status == 0) {
		b->done++;
	} else {
		b->failed++;
	}
}

static bool
is_ready(void *f)
{
	return ps_fabric_ready(f);
}

static bool
finished(void *p)
{
	bench *b = p;
	return b->received >= b->n && b->done + b->failed >= b->n;
}

int
main(int argc, char **argv)
{
	static const char msg[] = "{\"city\":\"Lisboa\",\"temperature\":12,"
	                          "\"pad\":\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	                          "xxxxxxxxxxxxxxxxxx\"}";
	bench b = { .n = argc > 1 ? atol(argv[1]) : 200000 };
	pt_redis rs = { 0 };
	char url[64];
	int rc = 1;

	signal(SIGPIPE, SIG_IGN);
	ls_log_set_level(LS_LOG_WARN);
	if (b.n <= 0 || pt_redis_start(&rs, 0) < 0) {
		fprintf(stderr, "bench_pubsub: cannot start redis-server\n");
		return 1;
	}
	struct ev_loop *loop = ev_loop_new(0);
	snprintf(url, sizeof(url), "redis://127.0.0.1:%d", rs.port);
	ps_fabric_options o = { .url = url,
		                .on_message = on_message,
		                .user = &b };
	ps_fabric *f = ps_fabric_new(loop, &o, NULL);
	if (f == NULL || !pt_run_until(loop, is_ready, f, 10.0) ||
	    ps_fabric_subscribe(f, "bench:s") < 0 ||
	    !pt_wait_numsub(loop, rs.port, "bench:s", 1, 10.0)) {
		fprintf(stderr, "bench_pubsub: fabric not ready\n");
		goto out;
	}
	double t0 = ev_time();
	for (long sent = 0; sent < b.n;) {
		for (int i = 0;
		     i < BATCH && sent < b.n && sent - b.received < WINDOW;
		     i++, sent++) {
			if (ps_fabric_publish(f, "bench:s", msg,
			                      sizeof(msg) - 1, on_done,
			                      &b) == -ENOBUFS) {
				break; /* let replies drain first */
			}
		}
		ev_run(loop, EVRUN_NOWAIT);
	}
	if (!pt_run_until(loop, finished, &b, 120.0)) {
		fprintf(stderr, "bench_pubsub: incomplete\n");
		goto out;
	}
	double dt = ev_time() - t0;
	printf("%ld messages of %zu bytes published and received through "
	       "Redis in %.2f s: %.0f msg/s (%ld failed)\n",
	       b.received, sizeof(msg) - 1, dt, b.received / dt, b.failed);
	rc = b.failed == 0 ? 0 : 1;
out:
	ps_fabric_destroy(&f);
	ev_loop_destroy(loop);
	pt_redis_cleanup(&rs);
	return rc;
}
