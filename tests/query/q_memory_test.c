/*
 * Memory behaviour of the query engine, observed through jansson's and the
 * engine's (hence PCRE2's) allocation hooks:
 *  - "any" evaluation allocates nothing, not even the first time;
 *  - every allocation of compile + apply failing in turn is handled
 *    (-ENOMEM or a correct result, never a crash), and nothing leaks;
 *  - one compiled query evaluates correctly from several threads at once.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "ls_test.h"
#include "q_query.h"

static atomic_long n_allocs; /* allocations attempted */
static atomic_long n_live;   /* allocated and not yet freed */
static long fail_at = -1;    /* index of the allocation to fail */

static void *
t_malloc(size_t n)
{
	long i = atomic_fetch_add(&n_allocs, 1);
	if (i == fail_at) {
		return NULL;
	}
	void *p = malloc(n);
	if (p != NULL) {
		atomic_fetch_add(&n_live, 1);
	}
	return p;
}

static void
t_free(void *p)
{
	if (p != NULL) {
		atomic_fetch_sub(&n_live, 1);
		free(p);
	}
}

/* Before any test allocates: every jansson, engine and PCRE2 block goes
 * through the counters. */
__attribute__((constructor)) static void
install_hooks(void)
{
	json_set_alloc_funcs(t_malloc, t_free);
	q_query_set_alloc_funcs(t_malloc, t_free);
}

static const char *message =
        "{\"city\": \"Lisboa\", \"temperature\": 12, \"humidity\": 0.8,"
        " \"tags\": [\"coast\", \"sunny\"], \"location\": {\"country\":"
        " \"PT\"}, \"readings\": [{\"v\": 1}, {\"v\": 5}, {\"v\": 9}]}";

static const char *queries[] = {
	"{\"mode\": \"any\", \"where\": {\"and\": [{\"field\": \"city\", "
	"\"op\": \"equals\", \"value\": \"Lisboa\"}, {\"field\": "
	"\"temperature\", \"op\": \"less\", \"value\": 15}]}}",
	"{\"where\": {\"field\": \"city\", \"op\": \"match\", \"value\": "
	"\"^l(is|x)bo?a$\", \"ignoreCase\": true}}",
	"{\"where\": {\"or\": [{\"field\": \"city\", \"op\": \"in\", "
	"\"value\": [\"Porto\", \"LISBOA\"], \"ignoreCase\": true}, "
	"{\"not\": {\"field\": \"x\", \"op\": \"exists\"}}]}}",
	"{\"where\": {\"and\": [{\"field\": \"tags\", \"op\": \"contains\", "
	"\"value\": \"SUNNY\", \"ignoreCase\": true}, {\"field\": "
	"\"location\", \"op\": \"equals\", \"value\": {\"country\": "
	"\"PT\"}}, {\"field\": \"city\", \"op\": \"contains\", \"value\": "
	"\"SBO\", \"ignoreCase\": true}, {\"field\": \"humidity\", \"op\": "
	"\"between\", \"value\": [0, 1]}, {\"field\": \"city\", \"op\": "
	"\"type\", \"value\": \"string\"}]}}",
};

static const char *select_query =
        "{\"mode\": \"select\", \"path\": \"readings\", \"where\": "
        "{\"field\": \"v\", \"op\": \"greater\", \"value\": 4}}";

LS_TEST(any_mode_allocates_nothing)
{
	json_t *msg = json_loads(message, 0, NULL);
	LS_CHECK(msg != NULL);
	for (size_t i = 0; i < sizeof(queries) / sizeof(queries[0]); i++) {
		q_query *q = NULL;
		LS_CHECK_INT(q_query_compile_text(
		                     queries[i], strlen(queries[i]), &q, NULL),
		             0);
		if (q == NULL) {
			continue;
		}
		long before = atomic_load(&n_allocs);
		int matched = 0;
		for (int k = 0; k < 1000; k++) {
			json_t *out = NULL;
			matched += q_query_matches(q, msg);
			matched += q_query_apply(q, msg, &out) == 1;
			LS_CHECK(out == msg);
			json_decref(out);
		}
		LS_CHECK_INT(atomic_load(&n_allocs) - before, 0);
		LS_CHECK_INT(matched, 2000);
		q_query_destroy(&q);
		LS_CHECK(q == NULL);
	}
	json_decref(msg);
}

/* Running out of the budget, in a regex or elsewhere, allocates nothing
 * either. */
LS_TEST(over_budget_allocates_nothing)
{
	static const char *costly[] = {
		"{\"where\": {\"or\": [{\"field\": \"s\", \"op\": "
		"\"match\", \"value\": \"^(a+)+$\"}]}}",
		"{\"mode\": \"select\", \"path\": \"a\", \"where\": "
		"{\"field\": \"\", \"op\": \"in\", \"value\": [1, 2, 3, "
		"4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16]}}",
	};
	json_t *arr = json_array();
	for (int i = 0; i < 5000; i++) {
		json_array_append_new(arr, json_integer(0));
	}
	json_t *msg =
	        json_pack("{s:s,s:o}", "s",
	                  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab", "a", arr);
	for (size_t i = 0; i < sizeof(costly) / sizeof(costly[0]); i++) {
		q_query *q = NULL;
		LS_CHECK_INT(q_query_compile_text(costly[i], strlen(costly[i]),
		                                  &q, NULL),
		             0);
		long before = atomic_load(&n_allocs);
		for (int k = 0; k < 3; k++) {
			json_t *out = NULL;
			LS_CHECK_INT(q_query_test(q, msg, NULL), LS_ECOSTLY);
			LS_CHECK_INT(q_query_apply(q, msg, &out), LS_ECOSTLY);
			LS_CHECK(out == NULL);
		}
		LS_CHECK_INT(atomic_load(&n_allocs) - before, 0);
		q_query_destroy(&q);
	}
	json_decref(msg);
}

LS_TEST(select_test_allocates_nothing_apply_builds)
{
	json_t *msg = json_loads(message, 0, NULL);
	q_query *q = NULL;
	LS_CHECK_INT(q_query_compile_text(select_query, strlen(select_query),
	                                  &q, NULL),
	             0);
	LS_CHECK(q_query_is_select(q));
	long before = atomic_load(&n_allocs);
	LS_CHECK(q_query_matches(q, msg));
	LS_CHECK_INT(atomic_load(&n_allocs) - before, 0);

	json_t *out = NULL;
	LS_CHECK_INT(q_query_apply(q, msg, &out), 1);
	LS_CHECK(out != NULL && out != msg);
	json_t *r = json_object_get(out, "readings");
	LS_CHECK_INT(json_array_size(r), 2);
	/* The original is untouched. */
	LS_CHECK_INT(json_array_size(json_object_get(msg, "readings")), 3);
	json_decref(out);
	q_query_destroy(&q);
	json_decref(msg);
}

/*
 * compile + apply with allocation number `at` failing. Returns how many
 * allocations the run attempted. from_text compiles the text (jansson's
 * parser reports some allocation failures as syntax errors, so an
 * invalid_query answer is accepted there); otherwise the parsed spec is
 * compiled and only success or -ENOMEM are acceptable.
 */
static long
chaos_run(const char *text, bool from_text, const json_t *want, long at,
          int *bad)
{
	json_t *msg = json_loads(message, 0, NULL);
	q_query *q = NULL;
	json_t *out = NULL;
	ls_error err;

	json_t *spec = json_loads(text, 0, NULL);
	int rc;

	if (msg == NULL || spec == NULL) {
		(*bad)++;
		json_decref(msg);
		json_decref(spec);
		return 0;
	}
	atomic_store(&n_allocs, 0);
	fail_at = at;
	if (from_text) {
		rc = q_query_compile_text(text, strlen(text), &q, &err);
		if (rc == LS_EINVALIDQUERY && err.code == rc &&
		    strncmp(err.text, "query: invalid JSON", 19) == 0) {
			rc = -ENOMEM;
			err.code = rc;
		}
	} else {
		rc = q_query_compile(spec, &q, &err);
	}
	if (rc == 0) {
		rc = q_query_apply(q, msg, &out);
		if (rc == 1 && !json_equal(out, want)) {
			(*bad)++;
		} else if (rc != 1 && rc != -ENOMEM) {
			(*bad)++;
		}
	} else if (rc != -ENOMEM || err.code != -ENOMEM) {
		printf("# allocation %ld: compile returned %d: %s\n", at, rc,
		       err.text);
		(*bad)++;
	}
	long used = atomic_load(&n_allocs);
	fail_at = -1;
	json_decref(out);
	q_query_destroy(&q);
	json_decref(msg);
	json_decref(spec);
	return used;
}

LS_TEST(chaos_every_allocation_fails_in_turn)
{
	const char *all[sizeof(queries) / sizeof(queries[0]) + 1];
	memcpy(all, queries, sizeof(queries));
	all[sizeof(queries) / sizeof(queries[0])] = select_query;

	q_query_thread_cleanup();
	long live_before = atomic_load(&n_live);
	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
		/* The result each query must give when memory suffices. */
		json_t *msg = json_loads(message, 0, NULL);
		q_query *q = NULL;
		json_t *want = NULL;
		LS_CHECK_INT(
		        q_query_compile_text(all[i], strlen(all[i]), &q, NULL),
		        0);
		LS_CHECK_INT(q_query_apply(q, msg, &want), 1);
		q_query_destroy(&q);
		json_decref(msg);
		/* A fresh thread state for each query, so that creating the
		 * match block is exercised too. */
		q_query_thread_cleanup();

		for (int from_text = 0; from_text < 2; from_text++) {
			int bad = 0;
			long at = 0;
			while (chaos_run(all[i], from_text, want, at, &bad) >
			       at) {
				at++;
				q_query_thread_cleanup();
			}
			printf("# query %zu (%s): %ld allocations failed in "
			       "turn\n",
			       i, from_text ? "text" : "parsed", at);
			LS_CHECK(at > 3);
			LS_CHECK_INT(bad, 0);
		}
		json_decref(want);
		q_query_thread_cleanup();
	}
	LS_CHECK_INT(atomic_load(&n_live) - live_before, 0);
}

struct worker {
	const q_query *q;
	json_t *yes, *no;
	int wrong;
};

static void *
worker_main(void *arg)
{
	struct worker *w = arg;
	for (int i = 0; i < 20000; i++) {
		if (!q_query_matches(w->q, w->yes) ||
		    q_query_matches(w->q, w->no)) {
			w->wrong++;
		}
	}
	q_query_thread_cleanup();
	return NULL;
}

LS_TEST(one_query_many_threads)
{
	q_query *q = NULL;
	LS_CHECK_INT(
	        q_query_compile_text(queries[1], strlen(queries[1]), &q, NULL),
	        0);
	struct worker w[4];
	pthread_t th[4];
	for (int i = 0; i < 4; i++) {
		w[i].q = q;
		w[i].yes = json_pack("{s:s}", "city", "LISBOA");
		w[i].no = json_pack("{s:s}", "city", "Lisboa!");
		w[i].wrong = 0;
		LS_CHECK_INT(pthread_create(&th[i], NULL, worker_main, &w[i]),
		             0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		LS_CHECK_INT(w[i].wrong, 0);
		json_decref(w[i].yes);
		json_decref(w[i].no);
	}
	q_query_destroy(&q);
}

LS_TEST(final_no_leak)
{
	q_query_thread_cleanup();
	/* Everything these tests allocated through the hooks is back. */
	LS_CHECK_INT(atomic_load(&n_live), 0);
}

LS_TEST_MAIN()
