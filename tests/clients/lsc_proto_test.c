/* Unit tests of the client library's pure parts: URLs, envelopes,
 * web-token signatures, permission checks, reconnection backoff. */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "ls_test.h"
#include "lsc_cli.h"
#include "lsc_proto.h"

LS_TEST(url_defaults)
{
	lsc__url u;

	LS_CHECK_INT(lsc__url_parse("ws://127.0.0.1:8080", "ws", "wss",
	                            "/lightstream/websocket", &u, NULL),
	             0);
	LS_CHECK(!u.tls);
	LS_CHECK_STR(u.host, "127.0.0.1");
	LS_CHECK_INT(u.port, 8080);
	LS_CHECK_STR(u.path, "/lightstream/websocket");

	LS_CHECK_INT(lsc__url_parse("wss://example.org/custom/ws", "ws", "wss",
	                            "/d", &u, NULL),
	             0);
	LS_CHECK(u.tls);
	LS_CHECK_INT(u.port, 443);
	LS_CHECK_STR(u.path, "/custom/ws");

	LS_CHECK_INT(lsc__url_parse("ws://[::1]:9000/", "ws", "wss", "/d", &u,
	                            NULL),
	             0);
	LS_CHECK_STR(u.host, "::1");
	LS_CHECK_INT(u.port, 9000);
	LS_CHECK_STR(u.path, "/d");

	LS_CHECK_INT(
	        lsc__url_parse("http://h", "http", "https", "/", &u, NULL), 0);
	LS_CHECK_INT(u.port, 80);

	/* One port serves both: http:// works for a WebSocket client, ws://
	 * for an HTTP one, with the same TLS choice. */
	LS_CHECK_INT(lsc__url_parse("http://127.0.0.1:8080", "ws", "wss",
	                            "/lightstream/websocket", &u, NULL),
	             0);
	LS_CHECK(!u.tls);
	LS_CHECK_STR(u.path, "/lightstream/websocket");
	LS_CHECK_INT(lsc__url_parse("https://h", "ws", "wss", "/d", &u, NULL),
	             0);
	LS_CHECK(u.tls);
	LS_CHECK_INT(u.port, 443);
	LS_CHECK_INT(
	        lsc__url_parse("wss://h:1", "http", "https", "/", &u, NULL),
	        0);
	LS_CHECK(u.tls);
}

LS_TEST(url_rejects)
{
	const char *bad[] = { "",           "127.0.0.1:8080", "ftp://h:1",
		              "ws://:80",   "ws://h:0",       "ws://h:65536",
		              "ws://h:12x", "ws://[::1",      "ws://h x",
		              "httpx://h",  "w://h" };
	ls_error err;
	lsc__url u;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ls_error_clear(&err);
		LS_CHECK_INT(
		        lsc__url_parse(bad[i], "ws", "wss", "/", &u, &err),
		        -EINVAL);
		LS_CHECK(err.text[0] != '\0');
	}
}

LS_TEST(names)
{
	char long_owner[66];

	LS_CHECK(ls_valid_app_key("svc1"));
	LS_CHECK(ls_valid_app_key("a-b_C9"));
	LS_CHECK(!ls_valid_app_key(""));
	LS_CHECK(!ls_valid_app_key("a.b"));
	LS_CHECK(!ls_valid_app_key(NULL));
	memset(long_owner, 'a', 65);
	long_owner[65] = '\0';
	LS_CHECK(!ls_valid_app_key(long_owner));
	long_owner[64] = '\0';
	LS_CHECK(ls_valid_app_key(long_owner));
	LS_CHECK(ls_valid_stream("weather.eu-west_1"));
	LS_CHECK(!ls_valid_stream("a/b"));
	LS_CHECK(!ls_valid_stream("a*"));
}

LS_TEST(envelopes_built)
{
	json_t *q = json_pack("{s:s}", "mode", "any");
	json_t *data =
	        json_pack("{s:s,s:i}", "city", "Lisboa", "temperature", 12);
	json_t *s = json_string("hello");
	char *t;

	t = lsc__auth_request("acc1", "tok");
	LS_CHECK_STR(t, "{\"t\":1,\"m\":{\"appKey\":\"acc1\",\"token\":"
	                "\"tok\"}}");
	free(t);
	t = lsc__web_token_response("abcd");
	LS_CHECK_STR(t, "{\"t\":4,\"m\":{\"signature\":\"abcd\"}}");
	free(t);
	t = lsc__subscribe_request("svc1", "weather", "s1", q);
	LS_CHECK_STR(t, "{\"t\":6,\"m\":{\"owner\":\"svc1\",\"stream\":"
	                "\"weather\",\"requestId\":\"s1\",\"query\":"
	                "{\"mode\":\"any\"}}}");
	free(t);
	t = lsc__subscribe_request("svc1", "weather", "s2", NULL);
	LS_CHECK_STR(t, "{\"t\":6,\"m\":{\"owner\":\"svc1\",\"stream\":"
	                "\"weather\",\"requestId\":\"s2\"}}");
	free(t);
	t = lsc__subscribe_request_since("svc1", "weather", "s3", NULL, "E-1",
	                                 42);
	LS_CHECK_STR(t, "{\"t\":6,\"m\":{\"owner\":\"svc1\",\"stream\":"
	                "\"weather\",\"requestId\":\"s3\",\"since\":"
	                "{\"epoch\":\"E-1\",\"offset\":42}}}");
	free(t);
	t = lsc__publish("svc1", "weather", data, "p7");
	LS_CHECK_STR(t, "{\"t\":5,\"m\":{\"owner\":\"svc1\",\"stream\":"
	                "\"weather\",\"data\":{\"city\":\"Lisboa\","
	                "\"temperature\":12},\"requestId\":\"p7\"}}");
	free(t);
	/* Text messages travel as JSON strings; no requestId, no ack. */
	t = lsc__publish("acc1", "s1", s, NULL);
	LS_CHECK_STR(t, "{\"t\":5,\"m\":{\"owner\":\"acc1\",\"stream\":"
	                "\"s1\",\"data\":\"hello\"}}");
	free(t);
	t = lsc__unsubscribe_request("sub-9");
	LS_CHECK_STR(t, "{\"t\":8,\"m\":{\"subscriptionId\":\"sub-9\"}}");
	free(t);
	t = lsc__refresh_request("new");
	LS_CHECK_STR(t, "{\"t\":11,\"m\":{\"token\":\"new\"}}");
	free(t);
	LS_CHECK(lsc__auth_request(NULL, "x") == NULL);
	LS_CHECK(lsc__publish("a", "b", NULL, NULL) == NULL);
	/* The caller's values are borrowed, not consumed. */
	LS_CHECK_INT(q->refcount, 1);
	LS_CHECK_INT(data->refcount, 1);
	json_decref(q);
	json_decref(data);
	json_decref(s);
}

LS_TEST(envelopes_parsed)
{
	const char *ok = "{\"t\":7,\"m\":{\"requestId\":\"s1\",\"ok\":false,"
	                 "\"error\":{\"code\":\"invalid_query\","
	                 "\"message\":\"unknown op\"}}}";
	const char *bad[] = { "",
		              "nope",
		              "[]",
		              "{\"t\":\"1\",\"m\":{}}",
		              "{\"t\":1}",
		              "{\"t\":1,\"m\":[]}",
		              "{\"t\":0,\"m\":{}}",
		              "{\"t\":1,\"m\":{},\"t\":2}",
		              "{\"t\":1,\"m\":{}" };
	const char *code, *msg;
	ls_error err;
	json_t *m;
	int t = 0;

	LS_CHECK_INT(lsc__envelope_parse(ok, strlen(ok), &t, &m, &err), 0);
	LS_CHECK_INT(t, 7);
	LS_CHECK_STR(lsc__str(m, "requestId"), "s1");
	lsc__error_of(m, &code, &msg);
	LS_CHECK_STR(code, "invalid_query");
	LS_CHECK_STR(msg, "unknown op");
	json_decref(m);

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		m = (json_t *)1;
		LS_CHECK_INT(lsc__envelope_parse(bad[i], strlen(bad[i]), &t,
		                                 &m, &err),
		             LS_EBADREQUEST);
		LS_CHECK(m == NULL);
	}

	/* An Error envelope carries code/message at the top level. */
	m = json_pack("{s:s,s:s}", "code", "forbidden", "message", "no");
	lsc__error_of(m, &code, &msg);
	LS_CHECK_STR(code, "forbidden");
	json_decref(m);
	m = json_object();
	lsc__error_of(m, &code, &msg);
	LS_CHECK_STR(code, "server_error");
	LS_CHECK_STR(msg, "");
	json_decref(m);
}

LS_TEST(web_signature)
{
	char sig[65];

	/* HMAC-SHA256(key="svc1_secret", "svc1:tok:conn"), computed
	 * independently with `openssl dgst -sha256 -hmac`. */
	LS_CHECK_INT(
	        lsc__web_signature("svc1_secret", "svc1", "tok", "conn", sig),
	        0);
	LS_CHECK_STR(sig, "91d787d588739836720fc844350b92c2f4a4ae292a839e0100e"
	                  "d59bbe559b607");
	LS_CHECK_INT(strlen(sig), 64);
	LS_CHECK_INT(lsc__web_signature(NULL, "a", "b", "c", sig), -EINVAL);
	LS_CHECK_INT(lsc__web_signature("k", "a", "b", NULL, sig), -EINVAL);
}

LS_TEST(permissions)
{
	json_t *p = json_loads("[{\"owner\":\"acc1\",\"stream\":\"s1\","
	                       "\"permission\":2},"
	                       "{\"owner\":\"acc1\",\"stream\":\"s2\","
	                       "\"permission\":3},"
	                       "{\"owner\":\"svc1\",\"stream\":\"wea*\","
	                       "\"permission\":2}]",
	                       0, NULL);

	LS_CHECK(p != NULL);
	LS_CHECK(lsc__permitted(p, "acc1", "s1", LS_PERM_READ));
	LS_CHECK(!lsc__permitted(p, "acc1", "s1", LS_PERM_WRITE));
	LS_CHECK(lsc__permitted(p, "acc1", "s2", LS_PERM_WRITE));
	LS_CHECK(!lsc__permitted(p, "acc1", "s3", LS_PERM_READ));
	LS_CHECK(lsc__permitted(p, "svc1", "weather", LS_PERM_READ));
	LS_CHECK(lsc__permitted(p, "svc1", "wea", LS_PERM_READ));
	LS_CHECK(!lsc__permitted(p, "svc1", "we", LS_PERM_READ));
	LS_CHECK(!lsc__permitted(p, "svc1", "weather", LS_PERM_WRITE));
	LS_CHECK(!lsc__permitted(p, "acc2", "s1", LS_PERM_READ));
	/* Unknown permissions: the server decides. */
	LS_CHECK(lsc__permitted(NULL, "x", "y", LS_PERM_WRITE));
	json_decref(p);
}

LS_TEST(backoff_bounds)
{
	const uint32_t rnds[] = { 0, 1, 12345, 0x7fffffffu, 0xffffffffu };

	for (unsigned attempt = 0; attempt < 200; attempt++) {
		uint64_t full = 250;

		for (unsigned i = 0; i < attempt && full < 30000; i++) {
			full *= 2;
		}
		if (full > 30000) {
			full = 30000;
		}
		for (size_t r = 0; r < sizeof(rnds) / sizeof(rnds[0]); r++) {
			unsigned d =
			        lsc__backoff_ms(attempt, 250, 30000, rnds[r]);

			LS_CHECK(d >= full / 2);
			LS_CHECK(d <= full);
			LS_CHECK(d >= 1 && d <= 30000);
		}
	}
	/* Growth: the first retry is quick, a late one is near the cap. */
	LS_CHECK(lsc__backoff_ms(0, 250, 30000, 0xffffffffu) <= 250);
	LS_CHECK(lsc__backoff_ms(20, 250, 30000, 0) >= 15000);
	/* Degenerate settings stay positive. */
	LS_CHECK(lsc__backoff_ms(3, 0, 0, 7) == 1);
	/* Jitter actually spreads. */
	LS_CHECK(lsc__backoff_ms(5, 250, 30000, 0) !=
	         lsc__backoff_ms(5, 250, 30000, 1000));
}

LS_TEST(cli_helpers)
{
	char owner[65], stream[129];
	json_t *v;
	long ms = 0, n = 0;

	LS_CHECK_INT(lsc_cli_target("svc1/weather", owner, stream), 0);
	LS_CHECK_STR(owner, "svc1");
	LS_CHECK_STR(stream, "weather");
	LS_CHECK_INT(lsc_cli_target("svc1", owner, stream), -EINVAL);
	LS_CHECK_INT(lsc_cli_target("/weather", owner, stream), -EINVAL);
	LS_CHECK_INT(lsc_cli_target("svc1/a/b", owner, stream), -EINVAL);

	v = lsc_cli_message("{\"a\":1}", 7, false, NULL, 0);
	LS_CHECK(json_is_object(v));
	json_decref(v);
	v = lsc_cli_message("42", 2, false, NULL, 0);
	LS_CHECK(json_is_integer(v));
	json_decref(v);
	/* Not JSON: sent as a JSON string, byte for byte. */
	v = lsc_cli_message("hello world", 11, false, NULL, 0);
	LS_CHECK_STR(json_string_value(v), "hello world");
	json_decref(v);
	/* Starts like JSON but broken: refused, with the reason. */
	{
		char why[200] = "";
		v = lsc_cli_message(" {\"city\":\"Lisboa\"", 18, false, why,
		                    sizeof(why));
		LS_CHECK(v == NULL);
		LS_CHECK(strstr(why, "not valid JSON") != NULL);
		LS_CHECK(strstr(why, "--text") != NULL);
	}
	/* ... unless the user says it is text. */
	v = lsc_cli_message("{broken", 7, true, NULL, 0);
	LS_CHECK_STR(json_string_value(v), "{broken");
	json_decref(v);
	v = lsc_cli_message("{\"a\":1}", 7, true, NULL, 0);
	LS_CHECK_STR(json_string_value(v), "{\"a\":1}");
	json_decref(v);

	LS_CHECK_INT(lsc_cli_seconds("1.5", &ms), 0);
	LS_CHECK_INT(ms, 1500);
	LS_CHECK_INT(lsc_cli_seconds("0", &ms), -EINVAL);
	LS_CHECK_INT(lsc_cli_seconds("x", &ms), -EINVAL);
	LS_CHECK_INT(lsc_cli_long("12", 100, &n), 0);
	LS_CHECK_INT(n, 12);
	LS_CHECK_INT(lsc_cli_long("101", 100, &n), -EINVAL);
	LS_CHECK_INT(lsc_cli_exit_for("invalid_query"), 2);
	LS_CHECK_INT(lsc_cli_exit_for("auth_failed"), 1);
	LS_CHECK_INT(lsc_cli_exit_for("forbidden"), 1);
}

LS_TEST_MAIN()
