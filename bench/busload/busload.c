/*
 * bench_bus: auth.validateToken throughput and latency through the broker.
 *
 *   bench_bus --frontend EP [--seconds S] [--inflight N] [--tokens N]
 *
 * Issues --tokens tokens for svc1 (reference accounts) with
 * auth.generateToken, then keeps --inflight validateToken requests in flight
 * for --seconds over one non-blocking bus client, and prints one JSON
 * object: requests per second and latency percentiles.
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "bus_client.h"
#include "ls_time.h"

#define MAX_TOKENS    1024
#define LAT_BUCKETS   4096 /* 10 us buckets: up to ~41 ms, then overflow */
#define LAT_BUCKET_NS 10000

struct bench {
	bus_client *client;
	char tokens[MAX_TOKENS][64];
	int ntokens;
	int next;
	long inflight, max_inflight;
	long ok, failed;
	uint64_t hist[LAT_BUCKETS + 1];
	int64_t deadline_ns;
};

struct req {
	struct bench *b;
	int64_t start_ns;
};

static int send_one(struct bench *b);

static void
on_reply(bus_status status, const char *body, size_t len, void *user)
{
	struct req *r = user;
	struct bench *b = r->b;
	int64_t lat = ls_now_ns() - r->start_ns;
	size_t bucket = (size_t)(lat / LAT_BUCKET_NS);

	b->hist[bucket < LAT_BUCKETS ? bucket : LAT_BUCKETS]++;
	if (status == BUS_OK) {
		b->ok++;
	} else {
		b->failed++;
	}
	b->inflight--;
	free(r);
	if (ls_now_ns() < b->deadline_ns) {
		send_one(b);
	}
}

static int
send_one(struct bench *b)
{
	struct req *r = malloc(sizeof(*r));
	json_t *args;
	int rc;

	if (r == NULL) {
		return -ENOMEM;
	}
	r->b = b;
	args = json_pack("[s,s,s]", "svc1", b->tokens[b->next], "127.0.0.1");
	b->next = (b->next + 1) % b->ntokens;
	r->start_ns = ls_now_ns();
	rc = bus_client_call(b->client, "auth", "validateToken", args, 5000,
	                     on_reply, r, NULL);
	json_decref(args);
	if (rc != 0) {
		free(r);
		return rc;
	}
	b->inflight++;
	return 0;
}

static double
percentile(const struct bench *b, double p)
{
	uint64_t total = 0, seen = 0;

	for (size_t i = 0; i <= LAT_BUCKETS; i++) {
		total += b->hist[i];
	}
	for (size_t i = 0; i <= LAT_BUCKETS; i++) {
		seen += b->hist[i];
		if (total > 0 && (double)seen >= p * (double)total) {
			return (double)(i + 1) * LAT_BUCKET_NS / 1e6;
		}
	}
	return 0;
}

static int
issue_tokens(void *ctx, const char *frontend, struct bench *b, int n)
{
	for (int i = 0; i < n; i++) {
		const char *body = "{\"o\":\"generateToken\",\"a\":[\"svc1\","
		                   "\"svc1_private\",[\"publisher\"],3600,"
		                   "null,false]}";
		bus_status st;
		char *reply = NULL;
		size_t len;
		json_t *doc;
		const char *value;

		if (bus_call(ctx, frontend, "auth", body, strlen(body), 5000,
		             &st, &reply, &len) != 0 ||
		    st != BUS_OK) {
			fprintf(stderr,
			        "bench_bus: generateToken failed: %s\n",
			        reply ? reply : "no reply");
			free(reply);
			return -1;
		}
		doc = json_loads(reply, 0, NULL);
		value = json_string_value(json_object_get(doc, "value"));
		if (value == NULL) {
			fprintf(stderr, "bench_bus: unexpected reply %s\n",
			        reply);
			json_decref(doc);
			free(reply);
			return -1;
		}
		snprintf(b->tokens[i], sizeof(b->tokens[i]), "%s", value);
		json_decref(doc);
		free(reply);
	}
	b->ntokens = n;
	return 0;
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "frontend", required_argument, NULL, 'f' },
		{ "seconds", required_argument, NULL, 's' },
		{ "inflight", required_argument, NULL, 'n' },
		{ "tokens", required_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *frontend = "tcp://127.0.0.1:5555";
	double seconds = 5;
	int inflight = 64, ntokens = 100, opt;
	struct bench *b = calloc(1, sizeof(*b));
	void *ctx = zmq_ctx_new();
	ls_error err;
	int64_t start;
	double elapsed;

	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case 'f':
			frontend = optarg;
			break;
		case 's':
			seconds = atof(optarg);
			break;
		case 'n':
			inflight = atoi(optarg);
			break;
		case 't':
			ntokens = atoi(optarg);
			break;
		case 'h':
			printf("Usage: bench_bus [--frontend EP] [--seconds "
			       "S] "
			       "[--inflight N] [--tokens N]\n");
			return 0;
		default:
			return 2;
		}
	}
	if (b == NULL || ctx == NULL || ntokens < 1 || ntokens > MAX_TOKENS ||
	    inflight < 1 || seconds <= 0) {
		fprintf(stderr, "bench_bus: bad arguments\n");
		return 2;
	}
	if (issue_tokens(ctx, frontend, b, ntokens) != 0) {
		return 1;
	}
	b->client = bus_client_new(ctx, frontend, &err);
	if (b->client == NULL) {
		fprintf(stderr, "bench_bus: %s\n", err.text);
		return 1;
	}
	start = ls_now_ns();
	b->deadline_ns = start + (int64_t)(seconds * 1e9);
	for (int i = 0; i < inflight; i++) {
		send_one(b);
	}
	while (b->inflight > 0) {
		struct pollfd pfd = { bus_client_fd(b->client), POLLIN, 0 };
		int timeout = bus_client_next_timeout_ms(b->client);
		poll(&pfd, 1, timeout < 0 || timeout > 100 ? 100 : timeout);
		bus_client_process(b->client);
	}
	elapsed = (double)(ls_now_ns() - start) / 1e9;
	printf("{\"operation\":\"auth.validateToken\",\"seconds\":%.2f,"
	       "\"inflight\":%d,\"ok\":%ld,\"failed\":%ld,"
	       "\"requests_per_s\":%.0f,\"p50_ms\":%.3f,\"p99_ms\":%.3f,"
	       "\"p999_ms\":%.3f}\n",
	       elapsed, inflight, b->ok, b->failed,
	       (double)(b->ok + b->failed) / elapsed, percentile(b, 0.50),
	       percentile(b, 0.99), percentile(b, 0.999));
	bus_client_destroy(&b->client);
	zmq_ctx_term(ctx);
	free(b);
	return 0;
}
