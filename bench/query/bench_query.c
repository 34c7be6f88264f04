/*
 * Query evaluation speed: nanoseconds per evaluation of representative
 * queries on one ~100-byte message, parsing excluded (the gateway parses a
 * message once per stream and evaluates every subscription's query on the
 * parsed value).
 *   bench_query [ITERATIONS]
 * Prints, per query, the best and the median of 7 runs.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "q_query.h"

static const char *message =
        "{\"city\":\"Lisboa\",\"temperature\":12,\"humidity\":0.71,"
        "\"wind\":{\"speed\":14,\"dir\":\"NW\"},"
        "\"readings\":[{\"v\":3},{\"v\":17},{\"v\":9}]}";

static const struct {
	const char *name;
	const char *query;
	int apply; /* measure q_query_apply (builds select output) */
} cases[] = {
	{ "lisbon (and: equals + less)",
	  "{\"mode\":\"any\",\"where\":{\"and\":[{\"field\":\"city\",\"op\":"
	  "\"equals\",\"value\":\"Lisboa\"},{\"field\":\"temperature\","
	  "\"op\":\"less\",\"value\":15}]}}",
	  0 },
	{ "lisbon, first clause false",
	  "{\"mode\":\"any\",\"where\":{\"and\":[{\"field\":\"city\",\"op\":"
	  "\"equals\",\"value\":\"Porto\"},{\"field\":\"temperature\","
	  "\"op\":\"less\",\"value\":15}]}}",
	  0 },
	{ "nested path (wind.dir equals, ignoreCase)",
	  "{\"where\":{\"field\":\"wind.dir\",\"op\":\"equals\",\"value\":"
	  "\"nw\",\"ignoreCase\":true}}",
	  0 },
	{ "regex (match ^Lis(boa|bon)$, ignoreCase)",
	  "{\"where\":{\"field\":\"city\",\"op\":\"match\",\"value\":"
	  "\"^lis(boa|bon)$\",\"ignoreCase\":true}}",
	  0 },
	{ "in (5 strings, last matches)",
	  "{\"where\":{\"field\":\"city\",\"op\":\"in\",\"value\":[\"Porto\","
	  "\"Faro\",\"Braga\",\"Coimbra\",\"Lisboa\"]}}",
	  0 },
	{ "select readings v > 10 (test only)",
	  "{\"mode\":\"select\",\"path\":\"readings\",\"where\":{\"field\":"
	  "\"v\",\"op\":\"greater\",\"value\":10}}",
	  0 },
	{ "select readings v > 10 (apply: builds output)",
	  "{\"mode\":\"select\",\"path\":\"readings\",\"where\":{\"field\":"
	  "\"v\",\"op\":\"greater\",\"value\":10}}",
	  1 },
};

static double
now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

int
main(int argc, char **argv)
{
	long iters = argc > 1 ? atol(argv[1]) : 2000000;
	json_t *msg = json_loads(message, 0, NULL);
	volatile long sink = 0;

	if (msg == NULL || iters <= 0) {
		fprintf(stderr, "usage: bench_query [ITERATIONS]\n");
		return 2;
	}
	printf("message: %zu bytes; %ld evaluations per run, 7 runs\n",
	       strlen(message), iters);
	printf("%-48s %10s %10s\n", "query", "best ns", "median ns");
	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		q_query *q = NULL;
		ls_error err;
		double runs[7];
		if (q_query_compile_text(cases[c].query,
		                         strlen(cases[c].query), &q,
		                         &err) != 0) {
			fprintf(stderr, "%s: %s\n", cases[c].name, err.text);
			return 1;
		}
		for (int r = 0; r < 7; r++) {
			double t0 = now_ns();
			for (long i = 0; i < iters; i++) {
				if (cases[c].apply) {
					json_t *out = NULL;
					sink += q_query_apply(q, msg, &out);
					json_decref(out);
				} else {
					sink += q_query_matches(q, msg);
				}
			}
			runs[r] = (now_ns() - t0) / (double)iters;
		}
		qsort(runs, 7, sizeof(runs[0]), cmp_double);
		printf("%-48s %10.1f %10.1f\n", cases[c].name, runs[0],
		       runs[3]);
		q_query_destroy(&q);
	}
	json_decref(msg);
	q_query_thread_cleanup();
	return sink < 0;
}
