/* ls-loadgen: WebSocket load generator for LightStream and nginx+nchan.
 *
 * Opens N subscriber connections (spread over child processes and source
 * addresses), optionally holds them idle, publishes timestamped messages at
 * a fixed rate, and prints one JSON object: set-up speed, server memory and
 * CPU (from /proc of --server-pid), delivered frames per second, latency
 * percentiles, drops. See docs/performance.md for the workloads. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lg_loadgen.h"

static void
lg__usage(FILE *f)
{
	fputs("usage: ls-loadgen [options]\n"
	      "  --target lightstream|nchan   server kind (lightstream)\n"
	      "  --host ADDR --port N         server address "
	      "(127.0.0.1:8080)\n"
	      "  --path PATH                  subscriber WebSocket path\n"
	      "                               (/lightstream/websocket)\n"
	      "  --pub-path PATH              publisher path (WebSocket, or\n"
	      "                               HTTP POST with --pub-http)\n"
	      "  --pub-http                   publish with HTTP POST\n"
	      "  --app KEY --token T          subscribers' credentials\n"
	      "  --pub-token T                publisher token (LightStream)\n"
	      "  --owner O                    stream owner (svc1)\n"
	      "  --stream S                   subscribe S; repeat for "
	      "several\n"
	      "                               subscriptions per connection\n"
	      "  --pub-stream S               stream published (first "
	      "--stream)\n"
	      "  --selectivity PCT            attach a query selecting PCT %\n"
	      "  --subscribers N              connections (100)\n"
	      "  --procs P                    subscriber processes (auto)\n"
	      "  --sources K                  spread over 127.0.0.2..(1+K) "
	      "(16)\n"
	      "  --inflight N                 concurrent set-ups per process\n"
	      "  --rate R                     messages/s published (0: none)\n"
	      "  --seconds S --warmup W       measured window, warm-up (5, "
	      "1)\n"
	      "  --hold S                     hold idle connections S "
	      "seconds\n"
	      "  --slow-fraction F            share of subscribers not "
	      "reading\n"
	      "  --payload-bytes B            message size (100)\n"
	      "  --server-pid PID             server process; repeat for "
	      "more\n"
	      "  --connect-timeout S          set-up deadline (60)\n"
	      "  --check                      exit 1 unless every message\n"
	      "                               reached every subscriber "
	      "intact\n",
	      f);
}

static int
lg__parse(lg_config *cfg, int argc, char **argv)
{
	enum {
		O_TARGET = 256,
		O_HOST,
		O_PORT,
		O_PATH,
		O_PUB_PATH,
		O_PUB_HTTP,
		O_APP,
		O_TOKEN,
		O_PUB_TOKEN,
		O_OWNER,
		O_STREAM,
		O_PUB_STREAM,
		O_SEL,
		O_SUBS,
		O_PROCS,
		O_SOURCES,
		O_INFLIGHT,
		O_RATE,
		O_SECONDS,
		O_WARMUP,
		O_HOLD,
		O_SLOW,
		O_PAYLOAD,
		O_PID,
		O_CTIMEOUT,
		O_CHECK,
		O_JSON,
		O_HELP,
	};
	static const struct option opts[] = {
		{ "target", 1, 0, O_TARGET },
		{ "host", 1, 0, O_HOST },
		{ "port", 1, 0, O_PORT },
		{ "path", 1, 0, O_PATH },
		{ "pub-path", 1, 0, O_PUB_PATH },
		{ "pub-http", 0, 0, O_PUB_HTTP },
		{ "app", 1, 0, O_APP },
		{ "token", 1, 0, O_TOKEN },
		{ "pub-token", 1, 0, O_PUB_TOKEN },
		{ "owner", 1, 0, O_OWNER },
		{ "stream", 1, 0, O_STREAM },
		{ "pub-stream", 1, 0, O_PUB_STREAM },
		{ "selectivity", 1, 0, O_SEL },
		{ "subscribers", 1, 0, O_SUBS },
		{ "procs", 1, 0, O_PROCS },
		{ "sources", 1, 0, O_SOURCES },
		{ "inflight", 1, 0, O_INFLIGHT },
		{ "rate", 1, 0, O_RATE },
		{ "seconds", 1, 0, O_SECONDS },
		{ "warmup", 1, 0, O_WARMUP },
		{ "hold", 1, 0, O_HOLD },
		{ "slow-fraction", 1, 0, O_SLOW },
		{ "payload-bytes", 1, 0, O_PAYLOAD },
		{ "server-pid", 1, 0, O_PID },
		{ "connect-timeout", 1, 0, O_CTIMEOUT },
		{ "check", 0, 0, O_CHECK },
		{ "json", 0, 0, O_JSON },
		{ "help", 0, 0, O_HELP },
		{ 0, 0, 0, 0 },
	};
	int pub_path_set = 0;
	int c;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		const char *a = optarg;
		size_t al = a ? strlen(a) : 0;
		switch (c) {
		case O_TARGET:
			if (strcmp(a, "lightstream") == 0) {
				cfg->target = LG_TARGET_LIGHTSTREAM;
			} else if (strcmp(a, "nchan") == 0) {
				cfg->target = LG_TARGET_NCHAN;
			} else {
				fprintf(stderr, "ls-loadgen: --target must be "
				                "lightstream or nchan\n");
				return -1;
			}
			break;
#define LG_STR(field)                                                         \
	if (al >= sizeof cfg->field) {                                        \
		fprintf(stderr, "ls-loadgen: value too long: %s\n", a);       \
		return -1;                                                    \
	}                                                                     \
	memcpy(cfg->field, a, al + 1);
		case O_HOST:
			LG_STR(host);
			break;
		case O_PORT:
			cfg->port = atoi(a);
			break;
		case O_PATH:
			LG_STR(path);
			break;
		case O_PUB_PATH:
			LG_STR(pub_path);
			pub_path_set = 1;
			break;
		case O_PUB_HTTP:
			cfg->pub_http = 1;
			break;
		case O_APP:
			LG_STR(app);
			break;
		case O_TOKEN:
			LG_STR(token);
			break;
		case O_PUB_TOKEN:
			LG_STR(pub_token);
			break;
		case O_OWNER:
			LG_STR(owner);
			break;
		case O_STREAM:
			if (cfg->nstreams == LG_MAX_STREAMS) {
				fprintf(stderr,
				        "ls-loadgen: at most %d "
				        "--stream\n",
				        LG_MAX_STREAMS);
				return -1;
			}
			LG_STR(streams[cfg->nstreams]);
			cfg->nstreams++;
			break;
		case O_PUB_STREAM:
			LG_STR(pub_stream);
			break;
		case O_SEL:
			cfg->selectivity = atoi(a);
			break;
		case O_SUBS:
			cfg->subscribers = (unsigned)strtoul(a, NULL, 10);
			break;
		case O_PROCS:
			cfg->procs = (unsigned)strtoul(a, NULL, 10);
			break;
		case O_SOURCES:
			cfg->sources = (unsigned)strtoul(a, NULL, 10);
			break;
		case O_INFLIGHT:
			cfg->inflight = (unsigned)strtoul(a, NULL, 10);
			break;
		case O_RATE:
			cfg->rate = atof(a);
			break;
		case O_SECONDS:
			cfg->seconds = atof(a);
			break;
		case O_WARMUP:
			cfg->warmup = atof(a);
			break;
		case O_HOLD:
			cfg->hold = atof(a);
			break;
		case O_SLOW:
			cfg->slow_fraction = atof(a);
			break;
		case O_PAYLOAD:
			cfg->payload_size = (size_t)strtoul(a, NULL, 10);
			break;
		case O_PID:
			if (cfg->nserver_pids == LG_MAX_PIDS) {
				fprintf(stderr, "ls-loadgen: too many pids\n");
				return -1;
			}
			cfg->server_pids[cfg->nserver_pids++] = atoi(a);
			break;
		case O_CTIMEOUT:
			cfg->connect_timeout = atof(a);
			break;
		case O_CHECK:
			cfg->check = 1;
			break;
		case O_JSON:
			break; /* JSON is the only output format */
		case O_HELP:
			lg__usage(stdout);
			exit(0);
		default:
			lg__usage(stderr);
			return -1;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "ls-loadgen: unexpected argument %s\n",
		        argv[optind]);
		return -1;
	}
	if (cfg->nstreams == 0) {
		strcpy(cfg->streams[0], "weather");
		cfg->nstreams = 1;
	}
	if (!cfg->pub_stream[0]) {
		strcpy(cfg->pub_stream, cfg->streams[0]);
	}
	if (!pub_path_set) {
		strcpy(cfg->pub_path, cfg->path);
	}
	if (cfg->procs == 0) {
		cfg->procs = (cfg->subscribers + LG_CONNS_PER_PROC - 1) /
		             LG_CONNS_PER_PROC;
		if (cfg->procs == 0) {
			cfg->procs = 1;
		}
	}
	if (cfg->port <= 0 || cfg->port > 65535 || cfg->procs > LG_MAX_PROCS ||
	    cfg->selectivity > 100 || cfg->rate < 0 || cfg->seconds <= 0 ||
	    cfg->slow_fraction < 0 || cfg->slow_fraction > 0.5 ||
	    cfg->payload_size < 40 || cfg->payload_size > 4096 ||
	    cfg->sources > 250 || cfg->inflight == 0) {
		fprintf(stderr, "ls-loadgen: invalid option value (see "
		                "--help)\n");
		return -1;
	}
	if (cfg->target == LG_TARGET_LIGHTSTREAM &&
	    (!cfg->app[0] || !cfg->token[0])) {
		fprintf(stderr, "ls-loadgen: lightstream needs --app and "
		                "--token\n");
		return -1;
	}
	if (!cfg->pub_token[0]) {
		strcpy(cfg->pub_token, cfg->token);
	}
	return 0;
}

static void
lg__sleep(double s)
{
	struct timespec ts = { .tv_sec = (time_t)s,
		               .tv_nsec =
		                       (long)((s - (double)(time_t)s) * 1e9) };
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
	}
}

static uint64_t
lg__sum_frames(const lg_shared *sh, unsigned procs)
{
	uint64_t n = 0;
	for (unsigned i = 0; i < procs; i++) {
		n += __atomic_load_n(&sh->child[i].frames, __ATOMIC_RELAXED);
	}
	return n;
}

typedef struct lg_result {
	long rss0, rss_connected, rss_hold, rss_peak, rss_end;
	double cpu0, cpu_connected, cpu_a, cpu_b;
	double wait_a, wait_b; /* server run-queue wait at the window edges */
	double cpu_hold;       /* server CPU while the connections sat idle */
	double connect_s;
	double window_s;
	double publish_s;
	uint64_t published, pub_responses, pub_refused, pub_stalls;
	char pub_error[256];
} lg_result;

static void
lg__peak(const lg_config *cfg, lg_result *r)
{
	long v = lg_proc_rss_kb(cfg);
	if (v > r->rss_peak) {
		r->rss_peak = v;
	}
}

static uint64_t
lg__expected(const lg_config *cfg, uint64_t published)
{
	if (cfg->selectivity < 0) {
		return published;
	}
	/* k = seq % 100; the query keeps k < selectivity. */
	uint64_t full = published / 100 * (uint64_t)cfg->selectivity;
	uint64_t rest = published % 100;
	return full + (rest < (uint64_t)cfg->selectivity
	                       ? rest
	                       : (uint64_t)cfg->selectivity);
}

/* Publish at cfg->rate for warmup + seconds; sets the window. */
static void
lg__publish(const lg_config *cfg, lg_shared *sh, lg_result *r)
{
	lg_pub *p = lg_pub_new(cfg, r->pub_error, sizeof r->pub_error);
	if (!p) {
		return;
	}
	uint64_t start = lg_now_ns();
	uint64_t win_a = start + (uint64_t)(cfg->warmup * 1e9);
	uint64_t win_b = win_a + (uint64_t)(cfg->seconds * 1e9);
	uint64_t next_sample = start;
	int in_window = 0;
	__atomic_store_n(&sh->phase, LG_PHASE_WARMUP, __ATOMIC_RELEASE);
	for (;;) {
		uint64_t now = lg_now_ns();
		if (!in_window && now >= win_a) {
			r->cpu_a = lg_proc_cpu_s(cfg);
			r->wait_a = lg_proc_wait_s(cfg);
			__atomic_store_n(&sh->window_end_ns, UINT64_MAX,
			                 __ATOMIC_RELAXED);
			__atomic_store_n(&sh->window_start_ns, now,
			                 __ATOMIC_RELEASE);
			__atomic_store_n(&sh->phase, LG_PHASE_MEASURE,
			                 __ATOMIC_RELEASE);
			win_a = now;
			in_window = 1;
		}
		if (now >= win_b) {
			__atomic_store_n(&sh->window_end_ns, now,
			                 __ATOMIC_RELEASE);
			__atomic_store_n(&sh->phase, LG_PHASE_DRAIN,
			                 __ATOMIC_RELEASE);
			r->cpu_b = lg_proc_cpu_s(cfg);
			r->wait_b = lg_proc_wait_s(cfg);
			r->window_s = (double)(now - win_a) / 1e9;
			r->publish_s = (double)(now - start) / 1e9;
			break;
		}
		if (now >= next_sample) {
			lg__peak(cfg, r);
			next_sample = now + 100000000ull;
		}
		uint64_t target =
		        (uint64_t)((double)(now - start) * cfg->rate / 1e9) +
		        1;
		if (lg_pub_pump(p, target, r->pub_error, sizeof r->pub_error) <
		    0) {
			r->window_s = (double)(now - win_a) / 1e9;
			r->publish_s = (double)(now - start) / 1e9;
			__atomic_store_n(&sh->window_end_ns, now,
			                 __ATOMIC_RELEASE);
			__atomic_store_n(&sh->phase, LG_PHASE_DRAIN,
			                 __ATOMIC_RELEASE);
			r->cpu_b = lg_proc_cpu_s(cfg);
			r->wait_b = lg_proc_wait_s(cfg);
			break;
		}
		lg_pub_wait(p, 1);
	}
	/* Let the queues drain: until every reading subscriber has every
	 * message, or nothing arrived for 2 s (some never will), bounded. */
	uint64_t last = lg__sum_frames(sh, cfg->procs);
	uint64_t quiet_since = lg_now_ns();
	uint64_t drain_end = quiet_since + (uint64_t)(cfg->drain_max * 1e9);
	uint64_t readers = 0;
	for (unsigned i = 0; i < cfg->procs; i++) {
		readers += sh->child[i].ready - sh->child[i].slow;
	}
	uint64_t want = lg__expected(cfg, lg_pub_published(p)) * readers;
	char ignore[64];
	for (;;) {
		lg_pub_pump(p, lg_pub_published(p), ignore, sizeof ignore);
		lg__sleep(0.02);
		lg__peak(cfg, r);
		uint64_t now = lg_now_ns();
		uint64_t cur = lg__sum_frames(sh, cfg->procs);
		uint64_t got = 0;
		for (unsigned i = 0; i < cfg->procs; i++) {
			got += __atomic_load_n(&sh->child[i].normal_received,
			                       __ATOMIC_RELAXED);
		}
		if (cur != last) {
			last = cur;
			quiet_since = now;
		}
		if (got >= want || now - quiet_since > 2000000000ull ||
		    now > drain_end) {
			break;
		}
	}
	r->published = lg_pub_published(p);
	r->pub_responses = lg_pub_responses(p);
	r->pub_refused = lg_pub_refused(p);
	r->pub_stalls = lg_pub_stalls(p);
	lg_pub_destroy(&p);
}

static void
lg__json_str(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;
		if (ch == '"' || ch == '\\') {
			printf("\\%c", ch);
		} else if (ch < 0x20) {
			printf("\\u%04x", ch);
		} else {
			putchar(ch);
		}
	}
	putchar('"');
}

static void
lg__report(const lg_config *cfg, const lg_shared *sh, const lg_result *r,
           double loadgen_cpu, int *ok_out)
{
	lg_child_stats t;
	memset(&t, 0, sizeof t);
	const char *first_error = "";
	uint64_t codes[LG_MAX_CODES * LG_MAX_PROCS][2];
	int ncodes = 0;
	for (unsigned i = 0; i < cfg->procs; i++) {
		const lg_child_stats *c = &sh->child[i];
#define LG_ADD(f) t.f += c->f
		LG_ADD(started);
		LG_ADD(ready);
		LG_ADD(failed);
		LG_ADD(handshake_failed);
		LG_ADD(auth_failed);
		LG_ADD(sub_failed);
		LG_ADD(frames);
		LG_ADD(data_frames);
		LG_ADD(window_frames);
		LG_ADD(bad_frames);
		LG_ADD(corrupt);
		LG_ADD(dups);
		LG_ADD(drops);
		LG_ADD(lost_subscribers);
		LG_ADD(errors_received);
		LG_ADD(stale);
		LG_ADD(window_cpu_s);
		LG_ADD(closed_by_server);
		LG_ADD(slow);
		LG_ADD(slow_closed);
		lg_hist_merge(&t.lat, &c->lat);
		lg_hist_merge(&t.setup, &c->setup);
		if (!first_error[0] && c->first_error[0]) {
			first_error = c->first_error;
		}
		for (int k = 0; k < LG_MAX_CODES && c->codes[k][1]; k++) {
			int j;
			for (j = 0; j < ncodes; j++) {
				if (codes[j][0] == c->codes[k][0]) {
					break;
				}
			}
			if (j == ncodes) {
				codes[ncodes][0] = c->codes[k][0];
				codes[ncodes][1] = 0;
				ncodes++;
			}
			codes[j][1] += c->codes[k][1];
		}
	}
	uint64_t expected = __atomic_load_n(&sh->expected, __ATOMIC_RELAXED);
	double server_cpu = r->cpu_b - r->cpu_a;
	double per_s =
	        r->window_s > 0 ? (double)t.window_frames / r->window_s : 0;
	long rss_delta = r->rss_connected - r->rss0;
	int ok = t.ready == cfg->subscribers && t.drops == 0 && t.dups == 0 &&
	         t.corrupt == 0 && t.bad_frames == 0 && !r->pub_error[0] &&
	         (cfg->rate <= 0 || (r->published > 0 && expected > 0)) &&
	         t.closed_by_server == t.slow_closed;
	*ok_out = ok;

	printf("{\"target\":\"%s\"",
	       cfg->target == LG_TARGET_NCHAN ? "nchan" : "lightstream");
	printf(",\"subscribers\":%u,\"streams_per_conn\":%d,\"procs\":%u",
	       cfg->subscribers, cfg->nstreams, cfg->procs);
	printf(",\"rate\":%.1f,\"seconds\":%.3f,\"payload_bytes\":%zu",
	       cfg->rate, r->window_s, cfg->payload_size);
	printf(",\"selectivity\":%d,\"slow_fraction\":%.4f", cfg->selectivity,
	       cfg->slow_fraction);
	printf(",\"connected\":%llu,\"failed\":%llu,\"handshake_failed\":%llu"
	       ",\"auth_failed\":%llu,\"sub_failed\":%llu",
	       (unsigned long long)t.ready, (unsigned long long)t.failed,
	       (unsigned long long)t.handshake_failed,
	       (unsigned long long)t.auth_failed,
	       (unsigned long long)t.sub_failed);
	printf(",\"connect_s\":%.3f,\"connects_per_s\":%.1f", r->connect_s,
	       r->connect_s > 0 ? (double)t.ready / r->connect_s : 0);
	printf(",\"connect_server_cpu_s\":%.3f", r->cpu_connected - r->cpu0);
	printf(",\"hold_s\":%.1f,\"hold_server_cpu_s\":%.3f", cfg->hold,
	       r->cpu_hold);
	printf(",\"setup_p50_ms\":%.3f,\"setup_p99_ms\":%.3f",
	       lg_hist_quantile(&t.setup, 0.5) / 1000,
	       lg_hist_quantile(&t.setup, 0.99) / 1000);
	printf(",\"server_rss_before_kb\":%ld,\"server_rss_connected_kb\":%ld"
	       ",\"server_rss_hold_kb\":%ld,\"server_rss_peak_kb\":%ld"
	       ",\"server_rss_end_kb\":%ld",
	       r->rss0, r->rss_connected, r->rss_hold, r->rss_peak,
	       r->rss_end);
	printf(",\"rss_per_conn_bytes\":%.1f",
	       t.ready ? (double)rss_delta * 1024.0 / (double)t.ready : 0);
	printf(",\"published\":%llu,\"publish_rate\":%.1f"
	       ",\"publish_stalls\":%llu,\"publish_answers\":%llu"
	       ",\"publish_refused\":%llu",
	       (unsigned long long)r->published,
	       r->publish_s > 0 ? (double)r->published / r->publish_s : 0,
	       (unsigned long long)r->pub_stalls,
	       (unsigned long long)r->pub_responses,
	       (unsigned long long)r->pub_refused);
	printf(",\"expected_per_subscriber\":%llu,\"delivered\":%llu"
	       ",\"delivered_window\":%llu,\"delivered_per_s\":%.1f",
	       (unsigned long long)expected, (unsigned long long)t.data_frames,
	       (unsigned long long)t.window_frames, per_s);
	printf(",\"server_cpu_s\":%.3f,\"server_cpu_util\":%.3f"
	       ",\"deliveries_per_server_cpu_s\":%.1f",
	       server_cpu, r->window_s > 0 ? server_cpu / r->window_s : 0,
	       server_cpu > 0 ? (double)t.window_frames / server_cpu : 0);
	/* Time the server was runnable but another process had its CPU: a
	 * large share means the machine, not the server, set the pace. */
	printf(",\"server_wait_s\":%.3f,\"server_wait_util\":%.3f",
	       r->wait_b - r->wait_a,
	       r->window_s > 0 ? (r->wait_b - r->wait_a) / r->window_s : 0);
	printf(",\"latency_samples\":%llu,\"p50_ms\":%.3f,\"p90_ms\":%.3f"
	       ",\"p99_ms\":%.3f,\"p999_ms\":%.3f,\"max_ms\":%.3f"
	       ",\"mean_ms\":%.3f",
	       (unsigned long long)t.lat.count,
	       lg_hist_quantile(&t.lat, 0.5) / 1000,
	       lg_hist_quantile(&t.lat, 0.9) / 1000,
	       lg_hist_quantile(&t.lat, 0.99) / 1000,
	       lg_hist_quantile(&t.lat, 0.999) / 1000,
	       (double)t.lat.max_us / 1000,
	       t.lat.count ? t.lat.sum_us / (double)t.lat.count / 1000 : 0);
	printf(",\"drops\":%llu,\"lost_subscribers\":%llu,\"dups\":%llu"
	       ",\"corrupt\":%llu,\"bad_frames\":%llu,\"errors_received\":%"
	       "llu,\"stale\":%llu",
	       (unsigned long long)t.drops,
	       (unsigned long long)t.lost_subscribers,
	       (unsigned long long)t.dups, (unsigned long long)t.corrupt,
	       (unsigned long long)t.bad_frames,
	       (unsigned long long)t.errors_received,
	       (unsigned long long)t.stale);
	printf(",\"closed_by_server\":%llu,\"slow_subscribers\":%llu"
	       ",\"slow_closed\":%llu,\"close_codes\":{",
	       (unsigned long long)t.closed_by_server,
	       (unsigned long long)t.slow, (unsigned long long)t.slow_closed);
	for (int j = 0; j < ncodes; j++) {
		printf("%s\"%llu\":%llu", j ? "," : "",
		       (unsigned long long)codes[j][0],
		       (unsigned long long)codes[j][1]);
	}
	printf("},\"loadgen_cpu_s\":%.3f", loadgen_cpu);
	/* Near 1.0 the client, not the server, limits what is delivered. */
	printf(",\"loadgen_cpu_util\":%.3f",
	       r->window_s > 0 ? t.window_cpu_s / r->window_s : 0);
	printf(",\"first_error\":");
	lg__json_str(first_error);
	printf(",\"publish_error\":");
	lg__json_str(r->pub_error);
	printf(",\"ok\":%s}\n", ok ? "true" : "false");
	fflush(stdout);
}

int
main(int argc, char **argv)
{
	lg_config cfg = {
		.target = LG_TARGET_LIGHTSTREAM,
		.host = "127.0.0.1",
		.port = 8080,
		.path = "/lightstream/websocket",
		.owner = "svc1",
		.selectivity = -1,
		.subscribers = 100,
		.sources = 16,
		.inflight = 200,
		.seconds = 5,
		.warmup = 1,
		.drain_max = 30,
		.connect_timeout = 60,
		.payload_size = 100,
	};
	lg_result r;
	pid_t kids[LG_MAX_PROCS];
	int ok = 0;

	memset(&r, 0, sizeof r);
	if (lg__parse(&cfg, argc, argv) < 0) {
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	lg_shared *sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE,
	                     MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED) {
		perror("ls-loadgen: mmap");
		return 1;
	}
	memset(sh, 0, sizeof *sh);
	sh->window_end_ns = UINT64_MAX;
	sh->start_ns = lg_now_ns();

	r.rss0 = lg_proc_rss_kb(&cfg);
	r.cpu0 = lg_proc_cpu_s(&cfg);
	uint64_t t0 = lg_now_ns();
	unsigned per = cfg.subscribers / cfg.procs;
	unsigned extra = cfg.subscribers % cfg.procs;
	unsigned first = 0;
	fflush(NULL);
	for (unsigned i = 0; i < cfg.procs; i++) {
		unsigned count = per + (i < extra ? 1 : 0);
		kids[i] = fork();
		if (kids[i] < 0) {
			perror("ls-loadgen: fork");
			__atomic_store_n(&sh->phase, LG_PHASE_DONE,
			                 __ATOMIC_RELEASE);
			return 1;
		}
		if (kids[i] == 0) {
			/* Never outlive the parent (killed, crashed): the
			 * connections must not stay open. */
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			if (getppid() == 1) {
				_exit(1);
			}
			lg_sub_run(&cfg, sh, i, first, count);
		}
		first += count;
	}
	/* Wait for every process to finish setting up its connections. */
	for (;;) {
		unsigned done = 0;
		for (unsigned i = 0; i < cfg.procs; i++) {
			done += (unsigned)__atomic_load_n(
			        &sh->child[i].connect_done, __ATOMIC_ACQUIRE);
		}
		if (done == cfg.procs) {
			break;
		}
		lg__sleep(0.01);
	}
	r.connect_s = (double)(lg_now_ns() - t0) / 1e9;
	r.cpu_connected = lg_proc_cpu_s(&cfg);
	lg__sleep(cfg.subscribers >= 1000 ? 1.0 : 0.3); /* settle */
	r.rss_connected = lg_proc_rss_kb(&cfg);
	r.rss_peak = r.rss_connected;
	if (cfg.hold > 0) {
		__atomic_store_n(&sh->phase, LG_PHASE_HOLD, __ATOMIC_RELEASE);
		double before = lg_proc_cpu_s(&cfg);
		lg__sleep(cfg.hold);
		r.cpu_hold = lg_proc_cpu_s(&cfg) - before;
		r.rss_hold = lg_proc_rss_kb(&cfg);
		lg__peak(&cfg, &r);
	}
	if (cfg.rate > 0) {
		lg__publish(&cfg, sh, &r);
	}
	r.rss_end = lg_proc_rss_kb(&cfg);
	__atomic_store_n(&sh->expected, lg__expected(&cfg, r.published),
	                 __ATOMIC_RELEASE);
	__atomic_store_n(&sh->phase, LG_PHASE_DONE, __ATOMIC_RELEASE);
	for (unsigned i = 0; i < cfg.procs; i++) {
		int status;
		while (waitpid(kids[i], &status, 0) < 0 && errno == EINTR) {
		}
	}
	struct rusage self, kidsu;
	getrusage(RUSAGE_SELF, &self);
	getrusage(RUSAGE_CHILDREN, &kidsu);
	double lcpu =
	        (double)(self.ru_utime.tv_sec + self.ru_stime.tv_sec +
	                 kidsu.ru_utime.tv_sec + kidsu.ru_stime.tv_sec) +
	        (double)(self.ru_utime.tv_usec + self.ru_stime.tv_usec +
	                 kidsu.ru_utime.tv_usec + kidsu.ru_stime.tv_usec) /
	                1e6;
	lg__report(&cfg, sh, &r, lcpu, &ok);
	if (cfg.check && !ok) {
		return 1;
	}
	return 0;
}
