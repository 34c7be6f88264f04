#include "ls_error.h"
#include "ls_proto.h"
#include "ls_test.h"

/* docs/protocol.md, "Error codes", as a user reads it. */
static const struct {
	const char *name;
	unsigned http;
	unsigned close;
} spec_table[] = {
	{ "bad_request", 400, 4004 },   { "auth_failed", 401, 4001 },
	{ "token_expired", 401, 4010 }, { "token_revoked", 401, 4011 },
	{ "forbidden", 403, 4003 },     { "not_found", 404, 0 },
	{ "invalid_query", 400, 0 },    { "query_too_costly", 0, 0 },
	{ "too_large", 413, 1009 },     { "rate_limited", 429, 4029 },
	{ "slow_consumer", 0, 4008 },   { "unavailable", 503, 1013 },
	{ "timeout", 504, 0 },          { "server_error", 500, 1011 },
};

LS_TEST(error_table_matches_the_documented_one)
{
	size_t n = sizeof(spec_table) / sizeof(spec_table[0]);
	LS_CHECK_INT(n, LS_PC_COUNT);
	for (size_t i = 0; i < n; i++) {
		const ls_proto_error *row =
		        ls_proto_error_by_name(spec_table[i].name);
		LS_CHECK(row != NULL);
		if (row == NULL) {
			continue;
		}
		LS_CHECK_INT(row->http_status, spec_table[i].http);
		LS_CHECK_INT(row->close_code, spec_table[i].close);
		/* Both ways: name -> row -> internal code -> same name. */
		LS_CHECK_STR(ls_error_protocol_code(row->errcode),
		             spec_table[i].name);
		LS_CHECK(ls_proto_error_row(row->pc) == row);
	}
	LS_CHECK(ls_proto_error_by_name("conflict") == NULL);
	LS_CHECK_STR(ls_error_protocol_code(-12345), "server_error");
	LS_CHECK_STR(ls_error_protocol_code(LS_ENOSERVICE), "unavailable");
	LS_CHECK_INT(ls_proto_http_status("nonsense"), 500);
}

LS_TEST(identifier_grammar)
{
	char s[200];
	LS_CHECK(ls_valid_app_key("svc1"));
	LS_CHECK(ls_valid_app_key("A-b_9"));
	LS_CHECK(!ls_valid_app_key(""));
	LS_CHECK(!ls_valid_app_key("a.b"));
	LS_CHECK(!ls_valid_app_key(NULL));
	memset(s, 'a', 64);
	s[64] = '\0';
	LS_CHECK(ls_valid_app_key(s));
	s[64] = 'a';
	s[65] = '\0';
	LS_CHECK(!ls_valid_app_key(s));
	LS_CHECK(ls_valid_stream("weather.eu-west_1"));
	LS_CHECK(!ls_valid_stream("a*"));
	LS_CHECK(!ls_valid_stream("a b"));
	memset(s, 'b', 128);
	s[128] = '\0';
	LS_CHECK(ls_valid_stream(s));
	s[128] = 'b';
	s[129] = '\0';
	LS_CHECK(!ls_valid_stream(s));
	LS_CHECK(ls_valid_stream_pattern("weather*"));
	LS_CHECK(ls_valid_stream_pattern("*"));
	LS_CHECK(ls_valid_stream_pattern("weather"));
	LS_CHECK(!ls_valid_stream_pattern("we*ather"));
	LS_CHECK(!ls_valid_stream_pattern("**"));
	LS_CHECK(!ls_valid_stream_pattern(""));
	LS_CHECK(ls_valid_role_name("weather-reader"));
	LS_CHECK(!ls_valid_role_name("a.b"));
	LS_CHECK(!ls_valid_role_name("$where"));
	LS_CHECK(!ls_valid_role_name(""));
}

LS_TEST(permission_check)
{
	ls_perm p[] = {
		{ "svc1", "weather", LS_PERM_READ },
		{ "acc1", "s*", LS_PERM_READ | LS_PERM_WRITE },
		{ "acc1", "s1", LS_PERM_READ },
	};
	LS_CHECK(ls_perm_allows(p, 3, "svc1", "weather", LS_PERM_READ));
	LS_CHECK(!ls_perm_allows(p, 3, "svc1", "weather", LS_PERM_WRITE));
	LS_CHECK(!ls_perm_allows(p, 3, "svc1", "weather2", LS_PERM_READ));
	LS_CHECK(ls_perm_allows(p, 3, "acc1", "s2", 3));
	LS_CHECK(ls_perm_allows(p, 3, "acc1", "s", LS_PERM_WRITE));
	LS_CHECK(!ls_perm_allows(p, 3, "acc1", "t1", LS_PERM_READ));
	LS_CHECK(!ls_perm_allows(p, 3, "acc2", "s1", LS_PERM_READ));
	LS_CHECK(!ls_perm_allows(p, 3, "acc1", "s1", 0));
	/* Grants across accounts. */
	LS_CHECK(ls_perm_grant_allowed("acc1", "acc1", 3, false, false));
	LS_CHECK(ls_perm_grant_allowed("acc1", "svc1", 2, true, false));
	LS_CHECK(!ls_perm_grant_allowed("acc1", "svc1", 2, false, false));
	LS_CHECK(!ls_perm_grant_allowed("acc1", "svc1", 1, true, false));
	LS_CHECK(ls_perm_grant_allowed("acc1", "svc1", 1, false, true));
	LS_CHECK(!ls_perm_grant_allowed("acc1", "svc1", 3, false, true));
}

LS_TEST_MAIN()
