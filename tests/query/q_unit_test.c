/* Unit tests of the query engine's building blocks: dot paths and the
 * comparison of numbers (integers and reals mixed). */
#include <errno.h>
#include <string.h>

#include "ls_test.h"
#include "q_internal.h"

static int
split(const char *s, struct q_path *p, const char **why)
{
	*why = NULL;
	return q__path_split(s, strlen(s), p, why);
}

static const json_t *
resolve(const struct q_path *p, const json_t *v)
{
	struct q_eval ev = { .left = Q_EVAL_BUDGET };
	return q__path_resolve(p, v, &ev);
}

LS_TEST(path_empty_is_whole_value)
{
	struct q_path p;
	const char *why;
	LS_CHECK_INT(split("", &p, &why), 0);
	LS_CHECK_INT(p.nseg, 0);
	json_t *v = json_pack("{s:i}", "a", 1);
	LS_CHECK(resolve(&p, v) == v);
	json_decref(v);
	q__path_free(&p);
}

LS_TEST(path_segments_and_indexes)
{
	struct q_path p;
	const char *why;
	LS_CHECK_INT(split("items.0.price", &p, &why), 0);
	LS_CHECK_INT(p.nseg, 3);
	LS_CHECK_STR(p.segs[0].key, "items");
	LS_CHECK_INT(p.segs[0].len, 5);
	LS_CHECK_INT(p.segs[0].index, -1);
	LS_CHECK_STR(p.segs[1].key, "0");
	LS_CHECK_INT(p.segs[1].index, 0);
	LS_CHECK_STR(p.segs[2].key, "price");
	q__path_free(&p);
	LS_CHECK(p.segs == NULL && p.nseg == 0);

	LS_CHECK_INT(split("a.12.007.99999999.100000000.-1.1e3", &p, &why), 0);
	LS_CHECK_INT(p.nseg, 7);
	LS_CHECK_INT(p.segs[1].index, 12);
	LS_CHECK_INT(p.segs[2].index, -1); /* leading zero: a key */
	LS_CHECK_INT(p.segs[3].index, 99999999);
	LS_CHECK_INT(p.segs[4].index, -1); /* beyond the index limit */
	LS_CHECK_INT(p.segs[5].index, -1);
	LS_CHECK_INT(p.segs[6].index, -1);
	q__path_free(&p);
}

LS_TEST(path_rejects_empty_segments)
{
	struct q_path p;
	const char *why;
	const char *bad[] = { ".", "a.", ".a", "a..b", ".." };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		LS_CHECK_INT(split(bad[i], &p, &why), -EINVAL);
		LS_CHECK(why != NULL && strstr(why, "empty segment"));
		LS_CHECK(p.segs == NULL);
	}
}

LS_TEST(path_segment_limit)
{
	char s[128] = "";
	struct q_path p;
	const char *why;
	for (int i = 0; i < Q_MAX_PATH_SEGMENTS; i++) {
		strcat(s, i ? ".a" : "a");
	}
	LS_CHECK_INT(split(s, &p, &why), 0);
	LS_CHECK_INT(p.nseg, Q_MAX_PATH_SEGMENTS);
	q__path_free(&p);
	strcat(s, ".a");
	LS_CHECK_INT(split(s, &p, &why), -EINVAL);
}

LS_TEST(path_rejects_nul)
{
	struct q_path p;
	const char *why = NULL;
	LS_CHECK_INT(q__path_split("a\0b", 3, &p, &why), -EINVAL);
	LS_CHECK(why != NULL);
}

LS_TEST(path_resolve_objects_arrays_and_numeric_keys)
{
	struct q_path p;
	const char *why;
	json_t *v = json_loads("{\"items\": [{\"price\": 3}, {\"price\": 4}],"
	                       " \"m\": {\"0\": \"zero\"}, \"s\": \"x\"}",
	                       0, NULL);
	LS_CHECK(v != NULL);

	LS_CHECK_INT(split("items.1.price", &p, &why), 0);
	LS_CHECK_INT(json_integer_value(resolve(&p, v)), 4);
	q__path_free(&p);

	LS_CHECK_INT(split("m.0", &p, &why), 0);
	LS_CHECK_STR(json_string_value(resolve(&p, v)), "zero");
	q__path_free(&p);

	const char *missing[] = { "items.2.price", "items.price", "s.0",
		                  "nope",          "m.1",         "items.01" };
	for (size_t i = 0; i < sizeof(missing) / sizeof(missing[0]); i++) {
		LS_CHECK_INT(split(missing[i], &p, &why), 0);
		LS_CHECK(resolve(&p, v) == NULL);
		q__path_free(&p);
	}
	json_decref(v);
}

static int
cmp_ii(json_int_t a, json_int_t b)
{
	json_t *x = json_integer(a), *y = json_integer(b);
	int r = q__num_cmp(x, y);
	json_decref(x);
	json_decref(y);
	return r;
}

static int
cmp_ri(double a, json_int_t b)
{
	json_t *x = json_real(a), *y = json_integer(b);
	int r = q__num_cmp(x, y);
	/* The order must be antisymmetric. */
	int back = q__num_cmp(y, x);
	json_decref(x);
	json_decref(y);
	return r == -back ? r : 99;
}

static int
cmp_rr(double a, double b)
{
	json_t *x = json_real(a), *y = json_real(b);
	int r = q__num_cmp(x, y);
	json_decref(x);
	json_decref(y);
	return r;
}

LS_TEST(numbers_integers)
{
	LS_CHECK(cmp_ii(1, 2) < 0);
	LS_CHECK(cmp_ii(2, 1) > 0);
	LS_CHECK_INT(cmp_ii(7, 7), 0);
	LS_CHECK(cmp_ii(-5, 3) < 0);
	LS_CHECK(cmp_ii(INT64_MIN, INT64_MAX) < 0);
	LS_CHECK(cmp_ii(9007199254740993LL, 9007199254740992LL) > 0);
}

LS_TEST(numbers_reals)
{
	LS_CHECK(cmp_rr(0.1, 0.2) < 0);
	LS_CHECK_INT(cmp_rr(-0.0, 0.0), 0);
	LS_CHECK(cmp_rr(1e300, -1e300) > 0);
}

LS_TEST(numbers_mixed_exact)
{
	LS_CHECK_INT(cmp_ri(12.0, 12), 0);
	LS_CHECK_INT(cmp_ri(12.5, 12), 1);
	LS_CHECK_INT(cmp_ri(11.5, 12), -1);
	LS_CHECK_INT(cmp_ri(-2.5, -2), -1);
	LS_CHECK_INT(cmp_ri(-2.5, -3), 1);
	LS_CHECK_INT(cmp_ri(-0.5, 0), -1);
	LS_CHECK_INT(cmp_ri(0.5, 0), 1);
	/* 2^53 as a real against 2^53 + 1: a double conversion of the
	 * integer would call them equal. */
	LS_CHECK_INT(cmp_ri(9007199254740992.0, 9007199254740993LL), -1);
	LS_CHECK_INT(cmp_ri(9007199254740992.0, 9007199254740992LL), 0);
	/* Beyond the integer range. */
	LS_CHECK_INT(cmp_ri(1e19, INT64_MAX), 1);
	LS_CHECK_INT(cmp_ri(9223372036854775808.0, INT64_MAX), 1);
	LS_CHECK_INT(cmp_ri(-1e19, INT64_MIN), -1);
	LS_CHECK_INT(cmp_ri(-9223372036854775808.0, INT64_MIN), 0);
}

LS_TEST(equality_deep)
{
	json_t *a = json_loads(
	        "{\"x\": [1, 2.0, \"Ab\", null, {\"y\": true}]}", 0, NULL);
	json_t *b = json_loads(
	        "{\"x\": [1.0, 2, \"Ab\", null, {\"y\": true}]}", 0, NULL);
	json_t *c = json_loads(
	        "{\"x\": [1.0, 2, \"aB\", null, {\"y\": true}]}", 0, NULL);
	json_t *d = json_loads("{\"x\": [1, 2, \"Ab\", null, {\"y\": false}]}",
	                       0, NULL);
	LS_CHECK(q__equal(a, b, false, NULL));
	LS_CHECK(!q__equal(a, c, false, NULL));
	LS_CHECK(q__equal(a, c, true, NULL));
	LS_CHECK(!q__equal(a, d, true, NULL));
	json_decref(a);
	json_decref(b);
	json_decref(c);
	json_decref(d);
}

LS_TEST(ascii_folding_only)
{
	LS_CHECK_INT(q__fold('A'), 'a');
	LS_CHECK_INT(q__fold('Z'), 'z');
	LS_CHECK_INT(q__fold('a'), 'a');
	LS_CHECK_INT(q__fold('@'), '@');
	LS_CHECK_INT(q__fold('['), '[');
	LS_CHECK_INT(q__fold(0xC3), 0xC3); /* UTF-8 bytes are left alone */
}

LS_TEST(parsed_query_size_limit_is_on_compact_form)
{
	char big[Q_MAX_QUERY_BYTES + 1];
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	json_t *spec = json_pack("{s:{s:s, s:s, s:s}}", "where", "field", "s",
	                         "op", "equals", "value", big);
	q_query *q = NULL;
	ls_error err;
	LS_CHECK_INT(q_query_compile(spec, &q, &err), LS_EINVALIDQUERY);
	LS_CHECK(q == NULL);
	LS_CHECK(strstr(err.text, "larger than 4096 bytes") != NULL);

	/* Just under the limit once serialized compactly. */
	size_t overhead =
	        json_dumpb(spec, NULL, 0, JSON_COMPACT) - (sizeof(big) - 1);
	big[Q_MAX_QUERY_BYTES - overhead] = '\0';
	json_object_set_new(json_object_get(spec, "where"), "value",
	                    json_string(big));
	LS_CHECK_INT(json_dumpb(spec, NULL, 0, JSON_COMPACT),
	             Q_MAX_QUERY_BYTES);
	LS_CHECK_INT(q_query_compile(spec, &q, &err), 0);
	q_query_destroy(&q);
	json_decref(spec);
}

LS_TEST(compiled_query_is_independent_of_spec)
{
	json_t *spec = json_pack("{s:{s:s, s:s, s:[s]}}", "where", "field",
	                         "c", "op", "in", "value", "x");
	q_query *q = NULL;
	LS_CHECK_INT(q_query_compile(spec, &q, NULL), 0);
	/* The caller changes its spec afterwards: the query must not. */
	json_array_set_new(
	        json_object_get(json_object_get(spec, "where"), "value"), 0,
	        json_string("y"));
	json_t *msg = json_pack("{s:s}", "c", "x");
	LS_CHECK(q_query_matches(q, msg));
	json_decref(msg);
	json_decref(spec);
	q_query_destroy(&q);
}

LS_TEST_MAIN()
