#include <string.h>

#include "ls_error.h"
#include "ls_log.h"
#include "ls_test.h"

static char last[512];
static int calls;

static void
capture(ls_log_level level, const char *component, const char *message,
        void *user)
{
	snprintf(last, sizeof(last), "%s|%s|%s", ls_log_level_name(level),
	         component, message);
	calls++;
}

LS_TEST(log_levels_filter_and_sink_captures)
{
	ls_log_set_sink(capture, NULL);
	ls_log_set_level(LS_LOG_WARN);
	calls = 0;
	ls_info("gw", "hidden %d", 1);
	LS_CHECK_INT(calls, 0);
	ls_warn("gw", "shown %d", 2);
	LS_CHECK_INT(calls, 1);
	LS_CHECK_STR(last, "warn|gw|shown 2");
	ls_log_set_sink(NULL, NULL);
	ls_log_set_level(LS_LOG_INFO);
}

LS_TEST(log_level_parsing)
{
	ls_log_level l;
	ls_log_format f;
	LS_CHECK_INT(ls_log_level_parse("DEBUG", &l), 0);
	LS_CHECK_INT(l, LS_LOG_DEBUG);
	LS_CHECK(ls_log_level_parse("loud", &l) < 0);
	LS_CHECK_INT(ls_log_format_parse("json", &f), 0);
	LS_CHECK_INT(f, LS_LOG_JSON);
	LS_CHECK(ls_log_format_parse("xml", &f) < 0);
}

LS_TEST(error_names)
{
	ls_error err;
	LS_CHECK_STR(ls_error_protocol_code(LS_EFORBIDDEN), "forbidden");
	LS_CHECK_STR(ls_error_protocol_code(-12345), "server_error");
	LS_CHECK_STR(ls_strerror(-2), "No such file or directory");
	LS_CHECK_INT(ls_error_set(&err, LS_EAUTH, "bad %s", "token"),
	             LS_EAUTH);
	LS_CHECK_STR(err.text, "bad token");
}

LS_TEST_MAIN()
