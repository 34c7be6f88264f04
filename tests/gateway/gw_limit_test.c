/* Keyed failure rate limits and strict request parameters (gw_limit.c,
 * gw_params.c; docs/security.md). */
#include <string.h>

#include "gw_limit.h"
#include "gw_params.h"
#include "ls_test.h"

LS_TEST(limit_counts_failures_only)
{
	gw_limit *l = gw_limit_new(3, 100);
	int64_t t = 1000000;

	LS_CHECK(l != NULL);
	/* checks are free */
	for (int i = 0; i < 10; i++) {
		LS_CHECK_INT(gw_limit_check(l, "10.0.0.1", t), 0);
	}
	for (int i = 0; i < 3; i++) {
		LS_CHECK_INT(gw_limit_check(l, "10.0.0.1", t), 0);
		gw_limit_fail(l, "10.0.0.1", t);
	}
	/* the fourth waits a third of a minute for one refill */
	LS_CHECK_INT(gw_limit_check(l, "10.0.0.1", t), 20);
	LS_CHECK_INT(gw_limit_check(l, "10.0.0.2", t), 0);
	LS_CHECK_INT(gw_limit_check(l, "10.0.0.1", t + 19000), 1);
	LS_CHECK_INT(gw_limit_check(l, "10.0.0.1", t + 20000), 0);
	gw_limit_destroy(&l);
	LS_CHECK(l == NULL);
}

LS_TEST(limit_zero_is_off)
{
	gw_limit *l = gw_limit_new(0, 10);

	for (int i = 0; i < 100; i++) {
		gw_limit_fail(l, "k", 0);
	}
	LS_CHECK_INT(gw_limit_check(l, "k", 0), 0);
	LS_CHECK_INT((int)gw_limit_keys(l), 0);
	gw_limit_destroy(&l);
}

LS_TEST(limit_table_is_bounded)
{
	gw_limit *l = gw_limit_new(2, 4);
	char key[16];

	for (int i = 0; i < 4; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		gw_limit_fail(l, key, 0);
	}
	LS_CHECK_INT((int)gw_limit_keys(l), 4);
	/* full of recent keys: an unknown key waits (fail closed) */
	LS_CHECK(gw_limit_check(l, "new", 10) > 0);
	gw_limit_fail(l, "new", 10);
	LS_CHECK_INT((int)gw_limit_keys(l), 4);
	/* a minute later the old keys are full again and swept */
	LS_CHECK_INT(gw_limit_check(l, "new", 60000), 0);
	LS_CHECK_INT((int)gw_limit_keys(l), 0);
	gw_limit_destroy(&l);
}

static int
token_args(const char *query, json_t **out)
{
	json_t *params = json_object();
	char buf[512];
	char *save = NULL;
	ls_error err;
	int rc = 0;

	snprintf(buf, sizeof(buf), "%s", query);
	for (char *p = strtok_r(buf, "&", &save); p && rc == 0;
	     p = strtok_r(NULL, "&", &save)) {
		rc = gw_params_add_pair(params, p, true, &err);
	}
	*out = rc == 0 ? gw_params_token_args(params, &err) : NULL;
	json_decref(params);
	return *out != NULL ? 0 : -1;
}

LS_TEST(params_strict_values)
{
	json_t *a;

	LS_CHECK_INT(token_args("publicKey=a&privateKey=b&roles=r1%7Cr2"
	                        "&webToken=true&ttl=60",
	                        &a),
	             0);
	LS_CHECK(json_is_true(json_array_get(a, 5)));
	LS_CHECK_INT((int)json_integer_value(json_array_get(a, 3)), 60);
	LS_CHECK_INT((int)json_array_size(json_array_get(a, 2)), 2);
	json_decref(a);
	const char *bad[] = {
		"publicKey=a&privateKey=b&webToken=yes",
		"publicKey=a&privateKey=b&webToken=True",
		"publicKey=a&privateKey=b&webToken=1",
		"publicKey=a&privateKey=b&webToken=",
		"publicKey=a&privateKey=b&ttl=1e3",
		"publicKey=a&privateKey=b&ttl=%2B5",
		"publicKey=a&privateKey=b&ttl=0",
		"publicKey=a&privateKey=b&roles=a%7C%7Cb",
		"publicKey=a&privateKey=b&publicKey=c",
		"publicKey=a",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		LS_CHECK_INT(token_args(bad[i], &a), -1);
	}
}

LS_TEST(params_control_characters)
{
	LS_CHECK(gw_params_has_ctl("a\x01", 2));
	LS_CHECK(gw_params_has_ctl("a\x7f", 2));
	LS_CHECK(!gw_params_has_ctl("a b~", 4));
	LS_CHECK(gw_params_has_encoded_ctl("x%0a", 4));
	LS_CHECK(gw_params_has_encoded_ctl("x%1F", 4));
	LS_CHECK(gw_params_has_encoded_ctl("%7f", 3));
	LS_CHECK(!gw_params_has_encoded_ctl("%20%7e%80%0", 11));
}

LS_TEST_MAIN()
