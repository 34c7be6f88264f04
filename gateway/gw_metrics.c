/* Prometheus text exposition of the gateway's counters (docs/protocol.md
 * (HTTP)). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <dirent.h>
#include <sys/resource.h>
#include <stddef.h>
#include <unistd.h>

#include "gw_internal.h"
#include "ls_time.h"

/* The gateway's counters (gw_metrics fields), summed over the loops and
 * rendered in this order: a new counter is one line here. */
static const struct gw__counter {
	size_t field; /* offsetof(gw_metrics, ...) */
	const char *name, *help;
} gw__counters[] = {
	{ offsetof(gw_metrics, connections_total), "connections_total",
	  "WebSocket connections accepted." },
	{ offsetof(gw_metrics, connections_rejected),
	  "connections_rejected_total",
	  "Connections refused by max_connections." },
	{ offsetof(gw_metrics, messages_in), "messages_in_total",
	  "Messages published by clients (WebSocket and HTTP) and by the demo "
	  "publisher." },
	{ offsetof(gw_metrics, messages_fabric), "messages_fabric_total",
	  "Messages received from the pub/sub fabric, once per loop." },
	{ offsetof(gw_metrics, messages_out), "messages_out_total",
	  "Delivery frames queued to subscribers." },
	{ offsetof(gw_metrics, dropped), "messages_dropped_total",
	  "Deliveries dropped (slow consumers, undeliverable)." },
	{ offsetof(gw_metrics, direct_writes), "writes_direct_total",
	  "Batches of frames written with send() on the socket (plain-TCP "
	  "WebSockets with nothing buffered in lws)." },
	{ offsetof(gw_metrics, publishers_paused), "publishers_paused_total",
	  "Times reading a publishing connection was paused until the loop "
	  "wrote what one iteration had fanned out." },
	{ offsetof(gw_metrics, reads_ahead), "fanout_reads_ahead_total",
	  "Loop iterations that read a publisher's further input before "
	  "writing the fan-out queued so far." },
	{ offsetof(gw_metrics, slow_consumers), "slow_consumers_total",
	  "Connections closed for exceeding the queue limit." },
	{ offsetof(gw_metrics, queries_too_costly), "queries_too_costly_total",
	  "Subscriptions ended because their query ran out of its cost "
	  "budget." },
	{ offsetof(gw_metrics, tokens_revoked), "tokens_revoked_total",
	  "Connections closed because their token was revoked or their "
	  "account deleted (4011)." },
	{ offsetof(gw_metrics, permissions_changed),
	  "permissions_changed_total",
	  "PermissionsChanged sent to open connections." },
	{ offsetof(gw_metrics, revalidations), "revalidations_total",
	  "Tokens of open connections validated again after an announced "
	  "change." },
	{ offsetof(gw_metrics, auth_ok), "auth_ok_total",
	  "Successful authentications." },
	{ offsetof(gw_metrics, auth_failed), "auth_failed_total",
	  "Failed authentications." },
	{ offsetof(gw_metrics, http_requests), "http_requests_total",
	  "HTTP requests." },
	{ offsetof(gw_metrics, http_overload), "http_overload_total",
	  "HTTP request bodies refused: unfinished bodies over "
	  "gateway.http.max_buffered_bytes." },
	{ offsetof(gw_metrics, token_rate_limited), "token_rate_limited_total",
	  "Token requests refused (429): too many failures from the address "
	  "or for the app key." },
	{ offsetof(gw_metrics, token_busy), "token_busy_total",
	  "Token requests refused (503): gateway.token.max_inflight calls in "
	  "flight." },
	{ offsetof(gw_metrics, bus_errors), "bus_errors_total",
	  "Bus requests that timed out or found no service." },
};
#define GW__COUNTERS (sizeof(gw__counters) / sizeof(gw__counters[0]))

static const double gw__lat_le[GW_LAT_BUCKETS - 1] = {
	0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
	0.1,    0.25,  0.5,    1.0,   2.5,  5.0,
};

static const double gw__busy_le[GW_BUSY_BUCKETS - 1] = {
	0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
};

void
gw_metrics_busy(gw_metrics *m, double s)
{
	uint64_t ns = (uint64_t)(s * 1e9);
	int i;

	for (i = 0; i < GW_BUSY_BUCKETS - 1; i++) {
		if (s <= gw__busy_le[i]) {
			break;
		}
	}
	m->busy_bucket[i]++;
	m->busy_count++;
	m->busy_sum_ns += ns;
	if (ns > m->busy_max_ns) {
		m->busy_max_ns = ns; /* written by this loop only */
	}
}

void
gw_metrics_bus(gw_metrics *m, int64_t start_ns)
{
	int64_t ns = ls_now_ns() - start_ns;
	double s = (double)ns / 1e9;
	int i;

	for (i = 0; i < GW_LAT_BUCKETS - 1; i++) {
		if (s <= gw__lat_le[i]) {
			break;
		}
	}
	m->lat_bucket[i]++;
	m->lat_count++;
	m->lat_sum_ns += (uint64_t)(ns > 0 ? ns : 0);
}

typedef struct gw__out {
	char *buf;
	size_t len, cap;
	bool failed;
} gw__out;

static void __attribute__((format(printf, 2, 3)))
gw__printf(gw__out *o, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (;;) {
		size_t room = o->cap - o->len;
		va_start(ap, fmt);
		n = vsnprintf(o->buf ? o->buf + o->len : NULL, room, fmt, ap);
		va_end(ap);
		if (n < 0) {
			o->failed = true;
			return;
		}
		if ((size_t)n < room) {
			o->len += (size_t)n;
			return;
		}
		{
			size_t cap = (o->cap + (size_t)n + 1) * 2;
			char *b = realloc(o->buf, cap);
			if (b == NULL) {
				o->failed = true;
				return;
			}
			o->buf = b;
			o->cap = cap;
		}
	}
}

/* The standard process_* metrics of Prometheus clients, and build info. */
static void
gw__process_metrics(gw__out *o)
{
	struct rusage ru;
	struct rlimit rl;
	long pages = 0, page = sysconf(_SC_PAGESIZE);
	unsigned long long start_ticks = 0;
	double boot = 0;
	int fds = 0;
	FILE *f;
	DIR *d;

	if (getrusage(RUSAGE_SELF, &ru) == 0) {
		gw__printf(o,
		           "# HELP process_cpu_seconds_total Total user and "
		           "system CPU time spent in seconds.\n"
		           "# TYPE process_cpu_seconds_total counter\n"
		           "process_cpu_seconds_total %.6f\n",
		           (double)ru.ru_utime.tv_sec +
		                   (double)ru.ru_utime.tv_usec / 1e6 +
		                   (double)ru.ru_stime.tv_sec +
		                   (double)ru.ru_stime.tv_usec / 1e6);
	}
	f = fopen("/proc/self/statm", "r");
	if (f != NULL) {
		long size = 0;
		if (fscanf(f, "%ld %ld", &size, &pages) == 2) {
			gw__printf(
			        o,
			        "# HELP process_resident_memory_bytes "
			        "Resident memory size in bytes.\n"
			        "# TYPE process_resident_memory_bytes gauge\n"
			        "process_resident_memory_bytes %lld\n"
			        "# HELP process_virtual_memory_bytes Virtual "
			        "memory size in bytes.\n"
			        "# TYPE process_virtual_memory_bytes gauge\n"
			        "process_virtual_memory_bytes %lld\n",
			        (long long)pages * page,
			        (long long)size * page);
		}
		fclose(f);
	}
	d = opendir("/proc/self/fd");
	if (d != NULL) {
		while (readdir(d) != NULL) {
			fds++;
		}
		closedir(d);
		gw__printf(o,
		           "# HELP process_open_fds Number of open file "
		           "descriptors.\n"
		           "# TYPE process_open_fds gauge\n"
		           "process_open_fds %d\n",
		           fds > 3 ? fds - 3
		                   : 0); /* ., .. and the dir's own */
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		gw__printf(
		        o,
		        "# HELP process_max_fds Maximum number of open file "
		        "descriptors.\n"
		        "# TYPE process_max_fds gauge\n"
		        "process_max_fds %llu\n",
		        (unsigned long long)rl.rlim_cur);
	}
	/* Start time: field 22 of /proc/self/stat (clock ticks after boot),
	 * plus the boot time of /proc/stat. */
	f = fopen("/proc/self/stat", "r");
	if (f != NULL) {
		char buf[1024];
		size_t n = fread(buf, 1, sizeof(buf) - 1, f);
		char *p;
		buf[n] = '\0';
		fclose(f);
		p = strrchr(buf, ')');
		if (p != NULL) {
			/* after ") " come fields 3.. ; skip to field 22 */
			int field = 2;
			for (p++; *p && field < 22; p++) {
				if (*p == ' ') {
					field++;
				}
			}
			start_ticks = strtoull(p, NULL, 10);
		}
	}
	f = fopen("/proc/stat", "r");
	if (f != NULL) {
		char line[256];
		while (fgets(line, sizeof(line), f) != NULL) {
			if (strncmp(line, "btime ", 6) == 0) {
				boot = strtod(line + 6, NULL);
			}
		}
		fclose(f);
	}
	if (boot > 0 && start_ticks > 0) {
		gw__printf(
		        o,
		        "# HELP process_start_time_seconds Start time of the "
		        "process since unix epoch in seconds.\n"
		        "# TYPE process_start_time_seconds gauge\n"
		        "process_start_time_seconds %.2f\n",
		        boot + (double)start_ticks /
		                        (double)sysconf(_SC_CLK_TCK));
	}
	gw__printf(o,
	           "# HELP lightstream_build_info The running version.\n"
	           "# TYPE lightstream_build_info gauge\n"
	           "lightstream_build_info{version=\"%s\"} 1\n",
	           LS_VERSION);
}

/* A Prometheus histogram of n buckets (the last one +Inf; le has n - 1
 * bounds), counts per bucket as kept, cumulated here. */
static void
gw__histogram(gw__out *o, const char *name, const char *help, const double *le,
              const uint64_t *bucket, int n, double sum, uint64_t count)
{
	uint64_t cum = 0;

	gw__printf(
	        o,
	        "# HELP lightstream_%s %s\n# TYPE lightstream_%s histogram\n",
	        name, help, name);
	for (int i = 0; i < n - 1; i++) {
		cum += bucket[i];
		gw__printf(o, "lightstream_%s_bucket{le=\"%g\"} %llu\n", name,
		           le[i], (unsigned long long)cum);
	}
	cum += bucket[n - 1];
	gw__printf(o,
	           "lightstream_%s_bucket{le=\"+Inf\"} %llu\n"
	           "lightstream_%s_sum %.9f\nlightstream_%s_count %llu\n",
	           name, (unsigned long long)cum, name, sum, name,
	           (unsigned long long)count);
}

static void
gw__metric(gw__out *o, const char *name, const char *type, const char *help,
           double value)
{
	gw__printf(o,
	           "# HELP lightstream_%s %s\n# TYPE lightstream_%s %s\n"
	           "lightstream_%s %.17g\n",
	           name, help, name, type, name, value);
}

/* The whole server's numbers: every loop's, added up. */
typedef struct gw__totals {
	uint64_t v[GW__COUNTERS];
	uint64_t lat_bucket[GW_LAT_BUCKETS];
	uint64_t lat_count;
	double lat_sum;
	uint64_t busy_bucket[GW_BUSY_BUCKETS];
	uint64_t busy_count;
	double busy_sum, busy_max;
	size_t conns, sse, subs, streams;
	ps_stats ps;
	unsigned loops;
	/* per loop, for the labelled gauge */
	size_t loop_conns[LS_SETTINGS_LOOPS_MAX];
	unsigned loop_index[LS_SETTINGS_LOOPS_MAX];
} gw__totals;

static void
gw__add(gw_gateway *g, void *arg)
{
	gw__totals *t = arg;
	const gw_metrics *m = &g->m;
	ps_stats ps;

	for (size_t i = 0; i < GW__COUNTERS; i++) {
		t->v[i] += *(const _Atomic uint64_t *)((const char *)m +
		                                       gw__counters[i].field);
	}
	for (int i = 0; i < GW_LAT_BUCKETS; i++) {
		t->lat_bucket[i] += m->lat_bucket[i];
	}
	t->lat_count += m->lat_count;
	t->lat_sum += (double)m->lat_sum_ns / 1e9;
	for (int i = 0; i < GW_BUSY_BUCKETS; i++) {
		t->busy_bucket[i] += m->busy_bucket[i];
	}
	t->busy_count += m->busy_count;
	t->busy_sum += (double)m->busy_sum_ns / 1e9;
	if ((double)m->busy_max_ns / 1e9 > t->busy_max) {
		t->busy_max = (double)m->busy_max_ns / 1e9;
	}
	t->conns += g->nconns;
	t->sse += g->nsse;
	t->subs += g->nsubs;
	t->streams += g->nstreams;
	if (g->fabric != NULL) {
		ps_fabric_stats(g->fabric, &ps);
		t->ps.reconnects += ps.reconnects;
		t->ps.topics += ps.topics;
		t->ps.published += ps.published;
		t->ps.received += ps.received;
	}
	if (t->loops < LS_SETTINGS_LOOPS_MAX) {
		t->loop_conns[t->loops] = g->nconns;
		t->loop_index[t->loops] = g->index;
	}
	t->loops++;
}

char *
gw_metrics_render(gw_gateway *gw, size_t *len)
{
	gw__out o = { NULL, 0, 0, false };
	gw__totals *t = calloc(1, sizeof(*t));

	if (t == NULL) {
		return NULL;
	}
	gw_server_each(gw, gw__add, t);
	{
		/* The local fabric's hub counts each stream once, whichever
		 * loops have subscribers of it. */
		size_t distinct = gw_server_streams(gw);
		if (distinct != (size_t)-1) {
			t->streams = distinct;
			t->ps.topics = distinct;
		}
	}
	gw__metric(&o, "connections", "gauge",
	           "Open client connections (WebSocket and Server-Sent "
	           "Events).",
	           (double)t->conns);
	gw__metric(&o, "sse_connections", "gauge",
	           "Open Server-Sent Events streams (of connections).",
	           (double)t->sse);
	for (size_t i = 0; i < GW__COUNTERS; i++) {
		gw__metric(&o, gw__counters[i].name, "counter",
		           gw__counters[i].help, (double)t->v[i]);
	}
	gw__metric(&o, "subscriptions", "gauge", "Active subscriptions.",
	           (double)t->subs);
	gw__metric(&o, "streams", "gauge", "Streams with subscribers.",
	           (double)t->streams);
	gw__histogram(&o, "bus_latency_seconds", "Service-bus round trips.",
	              gw__lat_le, t->lat_bucket, GW_LAT_BUCKETS, t->lat_sum,
	              t->lat_count);
	gw__histogram(&o, "loop_busy_seconds",
	              "CPU time of each event-loop iteration (how long other "
	              "clients waited).",
	              gw__busy_le, t->busy_bucket, GW_BUSY_BUCKETS,
	              t->busy_sum, t->busy_count);
	gw__metric(&o, "loop_busy_max_seconds", "gauge",
	           "The longest CPU time of one event-loop iteration.",
	           t->busy_max);
	gw__metric(&o, "bus_ready", "gauge",
	           "1 when the service bus answered the last probe.",
	           gw->bus_ok ? 1 : 0);
	gw__metric(&o, "pubsub_ready", "gauge",
	           "1 when the pub/sub fabric is connected.",
	           gw->fabric && ps_fabric_ready(gw->fabric) ? 1 : 0);
	gw__metric(&o, "pubsub_reconnects_total", "counter",
	           "Pub/sub fabric re-connections.", (double)t->ps.reconnects);
	gw__metric(&o, "pubsub_topics", "gauge",
	           "Topics subscribed on the fabric.", (double)t->ps.topics);
	gw__metric(&o, "pubsub_published_total", "counter",
	           "Messages accepted by the fabric for publishing.",
	           (double)t->ps.published);
	gw__metric(&o, "pubsub_received_total", "counter",
	           "Messages received from the fabric, once per loop.",
	           (double)t->ps.received);
	gw__metric(&o, "gateway_loops", "gauge",
	           "Gateway event loops serving this port.", (double)t->loops);
	gw__printf(&o, "# HELP lightstream_loop_connections Open WebSocket "
	               "connections per gateway loop.\n"
	               "# TYPE lightstream_loop_connections gauge\n");
	for (unsigned i = 0; i < t->loops && i < LS_SETTINGS_LOOPS_MAX; i++) {
		gw__printf(&o,
		           "lightstream_loop_connections{loop=\"%u\"} %zu\n",
		           t->loop_index[i], t->loop_conns[i]);
	}
	gw__process_metrics(&o);
	free(t);
	if (o.failed) {
		free(o.buf);
		return NULL;
	}
	*len = o.len;
	return o.buf;
}
