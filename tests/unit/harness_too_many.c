/*
 * Fixture of harness_test.py (not a test itself): more tests than
 * LS_TEST_MAX must fail the program, never run a shortened list.
 */
#define LS_TEST_MAX 2
#include "ls_test.h"

LS_TEST(one)
{
	LS_CHECK(1);
}

LS_TEST(two)
{
	LS_CHECK(1);
}

LS_TEST(three)
{
	LS_CHECK(1);
}

LS_TEST_MAIN()
