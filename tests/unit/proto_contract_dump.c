/*
 * Prints the contract of common/ls_proto as JSON for the JavaScript
 * client's test (tests/browser/contract.test.mjs): the error table, the
 * close codes and message types, and the verdicts of the identifier
 * grammar and the permission check on the shared cases of
 * tests/fixtures/contract_cases.json (argv[1]).
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>

#include "ls_proto.h"

static json_t *
dump_table(void)
{
	json_t *rows = json_array();

	for (int pc = 0; pc < LS_PC_COUNT; pc++) {
		const ls_proto_error *row = ls_proto_error_row(pc);
		json_array_append_new(
		        rows, json_pack("{s:s,s:i,s:i}", "code", row->name,
		                        "http", (int)row->http_status, "close",
		                        (int)row->close_code));
	}
	return rows;
}

static json_t *
dump_close_codes(void)
{
	static const int codes[] = {
		LS_CLOSE_NORMAL,        LS_CLOSE_GOING_AWAY,
		LS_CLOSE_PROTOCOL,      LS_CLOSE_TOO_BIG,
		LS_CLOSE_SERVER_ERROR,  LS_CLOSE_UNAVAILABLE,
		LS_CLOSE_AUTH_FAILED,   LS_CLOSE_AUTH_TIMEOUT,
		LS_CLOSE_FORBIDDEN,     LS_CLOSE_BAD_REQUEST,
		LS_CLOSE_SLOW_CONSUMER, LS_CLOSE_TOKEN_EXPIRED,
		LS_CLOSE_TOKEN_REVOKED, LS_CLOSE_RATE_LIMITED,
	};
	json_t *a = json_array();

	for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
		json_array_append_new(a, json_integer(codes[i]));
	}
	return a;
}

static json_t *
dump_message_types(void)
{
	json_t *o = json_object();

#define T(name) json_object_set_new(o, #name, json_integer(LS_T_##name))
	T(AUTH_REQUEST);
	T(AUTH_RESPONSE);
	T(WEBTOKEN_REQUEST);
	T(WEBTOKEN_RESPONSE);
	T(DATA);
	T(SUBSCRIBE_REQUEST);
	T(SUBSCRIBE_RESPONSE);
	T(UNSUBSCRIBE_REQUEST);
	T(UNSUBSCRIBE_RESPONSE);
	T(ERROR);
	T(REFRESH_REQUEST);
	T(REFRESH_RESPONSE);
	T(PUBLISH_RESPONSE);
	T(SUBSCRIPTION_ENDED);
	T(PERMISSIONS_CHANGED);
#undef T
	return o;
}

static json_t *
dump_identifiers(json_t *cases)
{
	json_t *out = json_array(), *c;
	size_t i;

	json_array_foreach(cases, i, c)
	{
		const char *s = json_string_value(c);
		json_array_append_new(
		        out, json_pack("{s:s,s:b,s:b,s:b}", "s", s, "appKey",
		                       ls_valid_app_key(s), "stream",
		                       ls_valid_stream(s), "pattern",
		                       ls_valid_stream_pattern(s)));
	}
	return out;
}

static json_t *
dump_permissions(json_t *cases)
{
	json_t *out = json_array(), *c;
	size_t i;

	json_array_foreach(cases, i, c)
	{
		json_t *perms = json_object_get(c, "perms"), *p;
		size_t j, n = json_array_size(perms);
		ls_perm *list = calloc(n + 1, sizeof(*list));
		bool ok;

		if (list == NULL) {
			exit(1);
		}
		json_array_foreach(perms, j, p)
		{
			list[j].owner =
			        json_string_value(json_object_get(p, "owner"));
			list[j].stream = json_string_value(
			        json_object_get(p, "stream"));
			list[j].bits = (int)json_integer_value(
			        json_object_get(p, "permission"));
		}
		ok = ls_perm_allows(
		        list, n,
		        json_string_value(json_object_get(c, "owner")),
		        json_string_value(json_object_get(c, "stream")),
		        (int)json_integer_value(json_object_get(c, "want")));
		free(list);
		json_array_append_new(out, json_boolean(ok));
	}
	return out;
}

int
main(int argc, char **argv)
{
	json_error_t jerr;
	json_t *cases, *out;
	char *text;

	if (argc != 2) {
		fprintf(stderr, "usage: %s CONTRACT_CASES.json\n", argv[0]);
		return 2;
	}
	cases = json_load_file(argv[1], 0, &jerr);
	if (cases == NULL) {
		fprintf(stderr, "%s: %s\n", argv[1], jerr.text);
		return 1;
	}
	out = json_pack(
	        "{s:o,s:o,s:{s:i,s:i},s:o,s:o,s:o}", "errors", dump_table(),
	        "closeCodes", dump_close_codes(), "permissionBits", "write",
	        LS_PERM_WRITE, "read", LS_PERM_READ, "messageTypes",
	        dump_message_types(), "identifiers",
	        dump_identifiers(json_object_get(cases, "identifiers")),
	        "permissions",
	        dump_permissions(json_object_get(cases, "permissions")));
	text = out ? json_dumps(out, JSON_INDENT(1)) : NULL;
	if (text == NULL) {
		return 1;
	}
	puts(text);
	free(text);
	json_decref(out);
	json_decref(cases);
	return 0;
}
