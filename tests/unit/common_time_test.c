#include "ls_test.h"
#include "ls_time.h"

LS_TEST(rfc3339_roundtrip)
{
	char buf[LS_RFC3339_LEN + 1];
	int64_t ms;
	ls_format_rfc3339(1795329118123LL, buf);
	LS_CHECK_STR(buf, "2026-11-22T06:31:58.123Z");
	LS_CHECK_INT(ls_parse_rfc3339(buf, &ms), 0);
	LS_CHECK_INT(ms, 1795329118123LL);
	LS_CHECK_INT(ls_parse_rfc3339("2026-11-22T06:31:58Z", &ms), 0);
	LS_CHECK_INT(ms, 1795329118000LL);
	LS_CHECK(ls_parse_rfc3339("2026-11-22 06:31:58", &ms) < 0);
	LS_CHECK(ls_parse_rfc3339("2026-11-22T06:31:58+01:00", &ms) < 0);
}

LS_TEST(monotonic_clock_advances)
{
	int64_t a = ls_now_ns(), b = ls_now_ns();
	LS_CHECK(b >= a);
	LS_CHECK(ls_wall_ms() > 1700000000000LL);
}

LS_TEST_MAIN()
