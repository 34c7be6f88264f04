/* The envelope parser and the allocation-free JSON check (docs/protocol.md).
 */
#include <string.h>

#include "gw_envelope.h"
#include "gw_json.h"
#include "ls_test.h"

static int
parse(const char *text, gw_envelope *e)
{
	ls_error err;

	return gw_envelope_parse(text, strlen(text), e, &err);
}

LS_TEST(auth_request)
{
	gw_envelope e;

	LS_CHECK_INT(parse("{\"t\":1,\"m\":{\"appKey\":\"acc1\",\"token\":"
	                   "\"abc\"}}",
	                   &e),
	             0);
	LS_CHECK_INT(e.t, 1);
	LS_CHECK_STR(e.app_key, "acc1");
	LS_CHECK_STR(e.token, "abc");
	gw_envelope_clear(&e);
	LS_CHECK_INT(parse("{\"t\":1,\"m\":{\"appKey\":\"a b\",\"token\":"
	                   "\"abc\"}}",
	                   &e),
	             LS_EBADREQUEST);
	LS_CHECK_INT(parse("{\"t\":1,\"m\":{\"token\":\"abc\"}}", &e),
	             LS_EBADREQUEST);
}

LS_TEST(publish_and_subscribe)
{
	gw_envelope e;

	LS_CHECK_INT(parse("{\"t\":5,\"m\":{\"owner\":\"acc1\",\"stream\":"
	                   "\"s.1\",\"data\":null,\"requestId\":3}}",
	                   &e),
	             0);
	LS_CHECK(json_is_null(e.data));
	LS_CHECK(json_is_integer(e.request_id));
	gw_envelope_clear(&e);
	/* data is required, even when null */
	LS_CHECK_INT(parse("{\"t\":5,\"m\":{\"owner\":\"acc1\",\"stream\":"
	                   "\"s1\"}}",
	                   &e),
	             LS_EBADREQUEST);
	LS_CHECK_INT(parse("{\"t\":6,\"m\":{\"owner\":\"acc1\",\"stream\":"
	                   "\"s1\",\"requestId\":\"r\",\"query\":{}}}",
	                   &e),
	             0);
	LS_CHECK(json_is_object(e.query));
	gw_envelope_clear(&e);
	/* subscribe needs a requestId */
	LS_CHECK_INT(parse("{\"t\":6,\"m\":{\"owner\":\"acc1\",\"stream\":"
	                   "\"s1\"}}",
	                   &e),
	             LS_EBADREQUEST);
	LS_CHECK_INT(parse("{\"t\":6,\"m\":{\"owner\":\"acc1\",\"stream\":"
	                   "\"s/1\",\"requestId\":\"r\"}}",
	                   &e),
	             LS_EBADREQUEST);
}

LS_TEST(subscribe_since)
{
	gw_envelope e;
	const char *head = "{\"t\":6,\"m\":{\"owner\":\"acc1\",\"stream\":"
	                   "\"s1\",\"requestId\":\"r\"";
	char text[256];

	snprintf(text, sizeof(text), "%s}}", head);
	LS_CHECK_INT(parse(text, &e), 0);
	LS_CHECK(e.since_epoch == NULL);
	gw_envelope_clear(&e);
	snprintf(text, sizeof(text),
	         "%s,\"since\":{\"epoch\":\"Ab-_9\",\"offset\":42}}}", head);
	LS_CHECK_INT(parse(text, &e), 0);
	LS_CHECK_STR(e.since_epoch, "Ab-_9");
	LS_CHECK_INT(e.since_offset, 42);
	gw_envelope_clear(&e);
	snprintf(text, sizeof(text), "%s,\"since\":null}}", head);
	LS_CHECK_INT(parse(text, &e), 0);
	LS_CHECK(e.since_epoch == NULL);
	gw_envelope_clear(&e);
	/* Ill-formed since: a protocol error, never a silent live start. */
	const char *bad[] = {
		"\"since\":5",
		"\"since\":{\"offset\":1}",
		"\"since\":{\"epoch\":\"a:b\",\"offset\":1}",
		"\"since\":{\"epoch\":\"\",\"offset\":1}",
		"\"since\":{\"epoch\":\"e\",\"offset\":-1}",
		"\"since\":{\"epoch\":\"e\",\"offset\":\"1\"}",
		"\"since\":{\"epoch\":\"e\"}",
		"\"since\":{\"epoch\":\"0123456789012345678901234567890123\","
		"\"offset\":1}",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(text, sizeof(text), "%s,%s}}", head, bad[i]);
		LS_CHECK_INT(parse(text, &e), LS_EBADREQUEST);
	}
}

LS_TEST(malformed)
{
	const char *bad[] = {
		"",
		"{",
		"[]",
		"{\"t\":1}",
		"{\"t\":\"1\",\"m\":{}}",
		"{\"t\":2,\"m\":{}}",
		"{\"t\":14,\"m\":{}}",
		"{\"t\":-1,\"m\":{}}",
		"{\"t\":8,\"m\":{\"subscriptionId\":1}}",
		"{\"t\":11,\"m\":{}}",
		"{\"t\":4,\"m\":{\"signature\":\"\"}}",
		"{\"t\":1,\"t\":1,\"m\":{}}",
	};
	gw_envelope e;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		LS_CHECK_INT(parse(bad[i], &e), LS_EBADREQUEST);
		LS_CHECK(e.root == NULL);
	}
}

LS_TEST(json_check)
{
	const char *good[] = { "1",
		               " {\"a\":[1,2,{\"b\":null}]} ",
		               "\"h\\u00e9\"",
		               "[]",
		               "{}",
		               "-0.5e+3",
		               "true",
		               "\"\xc3\xa9\"" };
	const char *bad[] = { "",           "{",        "[1,]",     "{\"a\"}",
		              "01",         "1 2",      "nul",      "\"\\x\"",
		              "\"\xff\"",   "\"\xc3\"", "{\"a\":}", "[1}",
		              "\"\\u0000\"" };
	size_t from, to;

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		LS_CHECK(gw_json_valid(good[i], strlen(good[i]), NULL, NULL));
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		LS_CHECK(!gw_json_valid(bad[i], strlen(bad[i]), NULL, NULL));
	}
	LS_CHECK(gw_json_valid("  [1] \n", 7, &from, &to));
	LS_CHECK_INT((int)from, 2);
	LS_CHECK_INT((int)to, 5);
}

LS_TEST(json_check_depth)
{
	char deep[2 * GW_JSON_MAX_DEPTH + 4];
	size_t n = 0;

	for (int i = 0; i < GW_JSON_MAX_DEPTH; i++) {
		deep[n++] = '[';
	}
	for (int i = 0; i < GW_JSON_MAX_DEPTH; i++) {
		deep[n++] = ']';
	}
	LS_CHECK(gw_json_valid(deep, n, NULL, NULL));
	memmove(deep + 1, deep, n);
	deep[0] = '[';
	deep[n + 1] = ']';
	LS_CHECK(!gw_json_valid(deep, n + 2, NULL, NULL));
}

LS_TEST(utf8_sanitize)
{
	char a[] = "ok \xc3\xa9 \xff end";
	char b[] = "cut \xe2\x82";
	char c[] = "plain";

	gw_utf8_sanitize(a);
	LS_CHECK_STR(a, "ok \xc3\xa9 ? end");
	gw_utf8_sanitize(b);
	LS_CHECK_STR(b, "cut ??");
	gw_utf8_sanitize(c);
	LS_CHECK_STR(c, "plain");
	LS_CHECK(gw_json_valid("\"x\"", 3, NULL, NULL));
}

LS_TEST_MAIN()
