#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ls_json.h"
#include "ls_test.h"

static void
check_roundtrip(const char *text, const char *want)
{
	json_error_t jerr;
	json_t *v = json_loads(text, JSON_DECODE_ANY, &jerr);
	char *out = v ? ls_json_dumps(v, NULL) : NULL;

	LS_CHECK_STR(out, want);
	free(out);
	json_decref(v);
}

LS_TEST(reals_are_shortest_roundtrip)
{
	char buf[LS_JSON_REAL_MAX];
	double values[] = {
		7.9,           0.1,    0.30000000000000004,   1e300, -2.5e-7,
		123456789.123, 5e-324, 1.7976931348623157e308
	};

	for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
		ls_json_format_real(values[i], buf);
		LS_CHECK(strtod(buf, NULL) == values[i]);
	}
	ls_json_format_real(7.9, buf);
	LS_CHECK_STR(buf, "7.9");
	ls_json_format_real(3.0, buf);
	LS_CHECK_STR(buf, "3.0");
}

LS_TEST(compact_output_matches_input)
{
	check_roundtrip("{\"city\": \"Lisboa\", \"temperature\": 7.9}",
	                "{\"city\":\"Lisboa\",\"temperature\":7.9}");
	check_roundtrip("[1, -2, 2.5, true, false, null, {}, []]",
	                "[1,-2,2.5,true,false,null,{},[]]");
	check_roundtrip("\"a\\\"b\\\\c\\n\\u0001\\u00e9/\"",
	                "\"a\\\"b\\\\c\\n\\u0001\xc3\xa9/\"");
	check_roundtrip("{\"z\":1,\"a\":2}", "{\"z\":1,\"a\":2}");
	check_roundtrip("9223372036854775807", "9223372036854775807");
}

LS_TEST(embedded_nul_and_non_finite)
{
	json_t *s = json_stringn("a\0b", 3);
	json_t *r = json_real(1.0);
	char *out = ls_json_dumps(s, NULL);
	size_t len = 0;

	LS_CHECK_STR(out, "\"a\\u0000b\"");
	free(out);
	out = ls_json_dumps(r, &len);
	LS_CHECK_STR(out, "1.0");
	LS_CHECK_INT(len, 3);
	free(out);
	LS_CHECK(ls_json_dumps(NULL, NULL) == NULL);
	json_decref(s);
	json_decref(r);
}

LS_TEST_MAIN()
