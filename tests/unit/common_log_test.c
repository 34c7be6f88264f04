#include <string.h>
#include <time.h>

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

static void
sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

LS_TEST(log_ratelimited_summarises_repeats)
{
	static ls_log_limit lim = LS_LOG_LIMIT_INIT(100, 2);

	ls_log_set_sink(capture, NULL);
	calls = 0;
	for (int i = 0; i < 50; i++) {
		ls_log_ratelimited(&lim, LS_LOG_WARN, "gw", "failure %d", i);
	}
	/* The burst is written, the rest only counted. */
	LS_CHECK_INT(calls, 2);
	LS_CHECK_STR(last, "warn|gw|failure 1");
	/* Within the interval nothing more is written. */
	LS_CHECK(ls_log_limit_flush(&lim, false) == 0);
	LS_CHECK_INT(calls, 2);
	sleep_ms(120);
	/* One summary for the 48 left out, naming the first. */
	LS_CHECK(ls_log_limit_flush(&lim, false) == 48);
	LS_CHECK_INT(calls, 3);
	LS_CHECK(strstr(last, "48 similar event(s)") != NULL);
	LS_CHECK(strstr(last, "failure 2") != NULL);
	/* A new interval writes its burst again. */
	ls_log_ratelimited(&lim, LS_LOG_WARN, "gw", "failure %d", 99);
	LS_CHECK_INT(calls, 4);
	LS_CHECK_STR(last, "warn|gw|failure 99");
	/* The summary also comes with the first event after the interval. */
	ls_log_ratelimited(&lim, LS_LOG_WARN, "gw", "x");
	ls_log_ratelimited(&lim, LS_LOG_WARN, "gw", "y");
	LS_CHECK_INT(calls, 5);
	sleep_ms(120);
	ls_log_ratelimited(&lim, LS_LOG_WARN, "gw", "z");
	LS_CHECK_INT(calls, 7);
	LS_CHECK_STR(last, "warn|gw|z");
	/* A burst that stopped: the periodic flush of every site reports
	 * it without a new event. */
	ls_log_ratelimited(&lim, LS_LOG_WARN, "gw", "a");
	ls_log_ratelimited(&lim, LS_LOG_WARN, "gw", "b");
	ls_log_ratelimited(&lim, LS_LOG_WARN, "gw", "c");
	LS_CHECK_INT(calls, 8);
	ls_log_limits_flush();
	LS_CHECK_INT(calls, 8);
	sleep_ms(120);
	ls_log_limits_flush();
	LS_CHECK_INT(calls, 9);
	LS_CHECK(strstr(last, "2 similar event(s)") != NULL);
	LS_CHECK(strstr(last, "the first: b") != NULL);
	/* Events below the level cost nothing and count nothing. */
	ls_log_set_level(LS_LOG_ERROR);
	ls_log_ratelimited(&lim, LS_LOG_WARN, "gw", "hidden");
	LS_CHECK(ls_log_limit_flush(&lim, true) == 0);
	ls_log_set_level(LS_LOG_INFO);
	ls_log_set_sink(NULL, NULL);
}

LS_TEST_MAIN()
