/*
 * Fixture of harness_test.py (not a test itself): a test whose check
 * fails before it skips must be reported "not ok".
 */
#include "ls_test.h"

LS_TEST(fails_then_skips)
{
	LS_CHECK(1 == 2);
	LS_SKIP("the rest needs a server");
}

LS_TEST(passes)
{
	LS_CHECK(1 == 1);
}

LS_TEST(skips)
{
	LS_SKIP("nothing to do here");
}

LS_TEST_MAIN()
