/*
 * The cost budget of one evaluation (docs/query.md, "Cost budget"): it is
 * shared by every node, element and regex of the evaluation, it reports
 * running out distinctly from "no match", and what cannot be bounded is
 * refused at compile time.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ls_test.h"
#include "q_query.h"

/* A generous ceiling of CPU time for one evaluation (the thread's, so
 * that a busy machine does not fail the test): the budget aims at about a
 * millisecond; before it, these queries took seconds. */
#define SLOW_NS (50 * 1000000L)

static int64_t
cpu_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static q_query *
compile(json_t *spec)
{
	q_query *q = NULL;
	ls_error err;
	int rc = q_query_compile(spec, &q, &err);
	if (rc != 0) {
		printf("# compile: %s\n", err.text);
	}
	json_decref(spec);
	return q;
}

static const char *
refusal(const char *regex)
{
	static ls_error err;
	q_query *q = NULL;
	json_t *spec = json_pack("{s:{s:[{s:s,s:s},{s:s,s:s,s:s}]}}", "where",
	                         "or", "field", "a", "op", "exists", "field",
	                         "s", "op", "match", "value", regex);
	int rc = q_query_compile(spec, &q, &err);
	json_decref(spec);
	q_query_destroy(&q);
	return rc == LS_EINVALIDQUERY ? err.text : NULL;
}

/* {"or": [k times {"field":"s","op":"match","value":regex}]} */
static json_t *
or_of_regexes(const char *regex, int k)
{
	json_t *list = json_array();
	for (int i = 0; i < k; i++) {
		json_array_append_new(list, json_pack("{s:s,s:s,s:s}", "field",
		                                      "s", "op", "match",
		                                      "value", regex));
	}
	return json_pack("{s:{s:o}}", "where", "or", list);
}

static json_t *
string_message(char c, size_t n)
{
	char *s = malloc(n + 1);
	memset(s, c, n);
	s[n] = '\0';
	json_t *msg = json_pack("{s:s}", "s", s);
	free(s);
	return msg;
}

/* Apply, reporting steps and the CPU time used. */
static int
run(const q_query *q, json_t *msg, long *steps, int64_t *ns)
{
	json_t *out = NULL;
	int64_t t0 = cpu_ns();
	int rc = q_query_apply_steps(q, msg, &out, steps);
	*ns = cpu_ns() - t0;
	if (rc == LS_ECOSTLY && out != NULL) {
		rc = -9999; /* over budget must deliver nothing */
	}
	json_decref(out);
	return rc;
}

/*
 * The budget is one per evaluation, not one per regex: a regex that stays
 * well within the budget alone runs it out when the query repeats it.
 */
LS_TEST(regexes_share_one_budget)
{
	json_t *msg = string_message('a', 60);
	long one = 0, many = 0;
	int64_t ns;

	q_query *q1 = compile(or_of_regexes("(?=\\w*\\d)", 1));
	LS_CHECK_INT(run(q1, msg, &one, &ns), 0);
	printf("# one regex: %ld steps\n", one);
	LS_CHECK(one > Q_EVAL_BUDGET / 58);
	LS_CHECK(one < Q_EVAL_BUDGET / 2);

	int k = (int)(Q_EVAL_BUDGET / one) + 2;
	q_query *qk = compile(or_of_regexes("(?=\\w*\\d)", k));
	LS_CHECK(qk != NULL);
	LS_CHECK_INT(run(qk, msg, &many, &ns), LS_ECOSTLY);
	LS_CHECK(many > Q_EVAL_BUDGET);
	LS_CHECK(q_query_test(qk, msg, NULL) == LS_ECOSTLY);
	LS_CHECK(!q_query_matches(qk, msg));

	/* One copy fewer than the budget holds is fine. */
	q_query *qf = compile(or_of_regexes("(?=\\w*\\d)", k - 3));
	LS_CHECK_INT(run(qf, msg, &many, &ns), 0);
	LS_CHECK(many <= Q_EVAL_BUDGET);
	q_query_destroy(&q1);
	q_query_destroy(&qk);
	q_query_destroy(&qf);
	json_decref(msg);
}

/* The costliest regexes on the largest message end within the budget. */
LS_TEST(many_costly_regexes_on_a_large_message)
{
	static const char *regexes[] = {
		"(?=\\w*\\d)",   "(?=\\w*+\\d)",         "^(a+)+\\d",
		"(?:\\w+)+\\d",  "\\w*\\w*\\w*\\d",      "(?=\\w{60000})\\d",
		"(.*){0,50}\\d", "[\\w\\s]{0,65535}\\d",
	};
	json_t *msg = string_message('a', 60000);
	for (size_t i = 0; i < sizeof(regexes) / sizeof(regexes[0]); i++) {
		long steps = 0;
		int64_t ns = 0;
		q_query *q = compile(or_of_regexes(regexes[i], 60));
		LS_CHECK(q != NULL);
		LS_CHECK_INT(run(q, msg, &steps, &ns), LS_ECOSTLY);
		printf("# 60 x %s: %ld steps, %.3f ms\n", regexes[i], steps,
		       ns / 1e6);
		LS_CHECK(ns < SLOW_NS);
		/* Deterministic: the same evaluation costs the same. */
		long again = 0;
		LS_CHECK_INT(run(q, msg, &again, &ns), LS_ECOSTLY);
		LS_CHECK_INT(again, steps);
		q_query_destroy(&q);
	}
	json_decref(msg);
}

/* Catastrophic backtracking on a short string: too costly, not "no
 * match". */
LS_TEST(nested_quantifier_is_too_costly)
{
	json_t *msg = json_pack("{s:s}", "s",
	                        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab");
	long steps;
	int64_t ns;
	q_query *q = compile(or_of_regexes("^(a+)+$", 1));
	LS_CHECK_INT(run(q, msg, &steps, &ns), LS_ECOSTLY);
	LS_CHECK(ns < SLOW_NS);
	q_query_destroy(&q);
	/* The same on a short string that matches quickly. */
	json_decref(msg);
	msg = json_pack("{s:s}", "s", "aaaa");
	q = compile(or_of_regexes("^(a+)+$", 1));
	LS_CHECK_INT(run(q, msg, &steps, &ns), 1);
	LS_CHECK(steps < 100);
	q_query_destroy(&q);
	json_decref(msg);
}

static json_t *
array_message(size_t n)
{
	json_t *arr = json_array();
	for (size_t i = 0; i < n; i++) {
		json_array_append_new(arr, json_pack("{s:i}", "v", (int)i));
	}
	return json_pack("{s:o}", "readings", arr);
}

/* Select mode: every element visited is charged. */
LS_TEST(select_over_a_large_array)
{
	json_t *where =
	        json_pack("{s:[{s:s,s:s,s:i},{s:s,s:s,s:s}]}", "and", "field",
	                  "v", "op", "greater", "value", -1, "field", "v",
	                  "op", "type", "value", "string");
	q_query *q = compile(json_pack("{s:s,s:s,s:o}", "mode", "select",
	                               "path", "readings", "where", where));
	long steps;
	int64_t ns;

	json_t *small = array_message(100);
	LS_CHECK_INT(run(q, small, &steps, &ns), 0);
	printf("# select over 100: %ld steps\n", steps);
	LS_CHECK(steps > 100 && steps < 1000);

	json_t *big = array_message(20000);
	LS_CHECK_INT(run(q, big, &steps, &ns), LS_ECOSTLY);
	LS_CHECK_INT(q_query_test(q, big, &steps), LS_ECOSTLY);
	LS_CHECK(ns < SLOW_NS);
	q_query_destroy(&q);
	json_decref(small);
	json_decref(big);
}

/* Each value of in/notIn compared is charged: 256 values over many
 * elements run out, on one value they are cheap. */
LS_TEST(in_with_many_values)
{
	json_t *values = json_array();
	for (int i = 0; i < Q_MAX_IN_VALUES; i++) {
		json_array_append_new(values, json_integer(-1 - i));
	}
	q_query *q =
	        compile(json_pack("{s:s,s:s,s:{s:s,s:s,s:O}}", "mode",
	                          "select", "path", "readings", "where",
	                          "field", "v", "op", "in", "value", values));
	q_query *qn = compile(json_pack("{s:{s:s,s:s,s:O}}", "where", "field",
	                                "v", "op", "notIn", "value", values));
	json_decref(values);
	long steps;
	int64_t ns;

	json_t *one = json_pack("{s:i}", "v", 5);
	LS_CHECK_INT(run(qn, one, &steps, &ns), 1);
	LS_CHECK(steps >= Q_MAX_IN_VALUES && steps < 2 * Q_MAX_IN_VALUES);

	json_t *big = array_message(1000);
	LS_CHECK_INT(run(q, big, &steps, &ns), LS_ECOSTLY);
	LS_CHECK(ns < SLOW_NS);
	q_query_destroy(&q);
	q_query_destroy(&qn);
	json_decref(one);
	json_decref(big);
}

/* Running out inside the last element of a select, in an expression that
 * is true when cut short (notIn), still delivers nothing. */
LS_TEST(select_over_budget_in_the_last_element)
{
	json_t *values = json_array();
	for (int i = 0; i < Q_MAX_IN_VALUES; i++) {
		json_array_append_new(values, json_integer(-1 - i));
	}
	q_query *q = compile(json_pack("{s:s,s:s,s:{s:s,s:s,s:o}}", "mode",
	                               "select", "path", "a", "where", "field",
	                               "", "op", "notIn", "value", values));
	long one = 0, steps = 0;
	int64_t ns;
	json_t *msg = json_pack("{s:[i]}", "a", 0);
	LS_CHECK_INT(run(q, msg, &one, &ns), 1);
	json_decref(msg);
	long per = one - 1; /* the select path costs one step */
	long k = (Q_EVAL_BUDGET - 1) / per + 1;
	json_t *arr = json_array();
	for (long i = 0; i < k; i++) {
		json_array_append_new(arr, json_integer(0));
	}
	msg = json_pack("{s:o}", "a", arr);
	LS_CHECK_INT(run(q, msg, &steps, &ns), LS_ECOSTLY);
	LS_CHECK(steps > Q_EVAL_BUDGET && steps < 1 + per * k);
	json_array_remove(arr, 0);
	json_t *out = NULL;
	LS_CHECK_INT(q_query_apply_steps(q, msg, &out, &steps), 1);
	LS_CHECK(steps <= Q_EVAL_BUDGET);
	LS_CHECK_INT(json_array_size(json_object_get(out, "a")), k - 1);
	json_decref(out);
	json_decref(msg);
	q_query_destroy(&q);
}

LS_TEST(in_over_256_values_refused)
{
	for (int n = Q_MAX_IN_VALUES; n <= Q_MAX_IN_VALUES + 1; n++) {
		json_t *values = json_array();
		for (int i = 0; i < n; i++) {
			json_array_append_new(values, json_integer(i));
		}
		for (int notin = 0; notin < 2; notin++) {
			q_query *q = NULL;
			ls_error err;
			json_t *spec = json_pack("{s:{s:[{s:s,s:s,s:O}]}}",
			                         "where", "and", "field", "v",
			                         "op", notin ? "notIn" : "in",
			                         "value", values);
			int rc = q_query_compile(spec, &q, &err);
			if (n == Q_MAX_IN_VALUES) {
				LS_CHECK_INT(rc, 0);
			} else {
				LS_CHECK_INT(rc, LS_EINVALIDQUERY);
				LS_CHECK_STR(
				        err.text,
				        notin ? "where.and[0].value: "
				                "'notIn' takes at most 256 "
				                "values"
				              : "where.and[0].value: 'in' "
				                "takes at most 256 values");
			}
			q_query_destroy(&q);
			json_decref(spec);
		}
		json_decref(values);
	}
}

LS_TEST(regex_verbs_callouts_backreferences_refused)
{
	static const struct {
		const char *regex;
		const char *why;
	} refused[] = {
		{ "(*NO_JIT)a", "(*...) verbs and option settings are not "
		                "allowed (offset 0)" },
		{ "(*LIMIT_MATCH=100000000)a", "(*...) verbs" },
		{ "(*LIMIT_DEPTH=100000)a", "(*...) verbs" },
		{ "(*UTF)a", "(*...) verbs" },
		{ "(*CRLF)a$", "(*...) verbs" },
		{ "a+(*SKIP)b", "(*...) verbs and option settings are not "
		                "allowed (offset 2)" },
		{ "a(*COMMIT)b|c", "(*...) verbs" },
		{ "(*pla:a)b", "(*...) verbs" },
		{ "[ab](*ACCEPT)", "(*...) verbs" },
		{ "\\Qx\\E(*FAIL)", "(*...) verbs" },
		{ "(?C1)a", "callouts (?C...) are not allowed (offset 0)" },
		{ "a(?C\"x\")", "callouts (?C...) are not allowed" },
		{ "(a)\\1", "backreferences are not allowed" },
		{ "(?<n>a)\\k<n>", "backreferences are not allowed" },
		{ "(a)\\g{-1}", "backreferences are not allowed" },
		{ "(?P<n>a)(?P=n)", "backreferences are not allowed" },
	};
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		const char *why = refusal(refused[i].regex);
		if (why == NULL) {
			printf("# accepted: %s\n", refused[i].regex);
		}
		LS_CHECK(why != NULL);
		if (why != NULL) {
			/* The message names the node. */
			LS_CHECK(strncmp(why, "where.or[1].value: ", 19) == 0);
			if (strstr(why, refused[i].why) == NULL) {
				printf("# %s: %s\n", refused[i].regex, why);
			}
			LS_CHECK(strstr(why, refused[i].why) != NULL);
		}
	}
	/* The same characters as plain text are fine. */
	static const char *accepted[] = {
		"[(*]",     "\\(*",     "\\Q(*NO_JIT)\\E", "[[:alpha:](*]",
		"(?#(*x)a", "[]*(]+",   "a(?:b)*",         "(?i)abc",
		"(a)(?1)",  "(?<n>a)b", "\\(?C",           "[(?C]",
	};
	for (size_t i = 0; i < sizeof(accepted) / sizeof(accepted[0]); i++) {
		const char *why = refusal(accepted[i]);
		if (why != NULL) {
			printf("# refused %s: %s\n", accepted[i], why);
		}
		LS_CHECK(why == NULL);
	}
}

LS_TEST(ordinary_queries_cost_little)
{
	q_query *q = compile(json_pack(
	        "{s:{s:[{s:s,s:s,s:s},{s:s,s:s,s:i},{s:s,s:s,s:s}]}}", "where",
	        "and", "field", "city", "op", "equals", "value", "Lisboa",
	        "field", "temperature", "op", "less", "value", 15, "field",
	        "station", "op", "match", "value", "^st-\\d+$"));
	json_t *msg = json_pack("{s:s,s:i,s:s}", "city", "Lisboa",
	                        "temperature", 12, "station", "st-42");
	long steps = 0, tsteps = 0;
	int64_t ns;
	LS_CHECK_INT(run(q, msg, &steps, &ns), 1);
	LS_CHECK_INT(q_query_test(q, msg, &tsteps), 1);
	LS_CHECK_INT(tsteps, steps);
	printf("# ordinary query: %ld steps\n", steps);
	LS_CHECK(steps > 0 && steps < 50);
	q_query_destroy(&q);
	json_decref(msg);
}

LS_TEST_MAIN()
