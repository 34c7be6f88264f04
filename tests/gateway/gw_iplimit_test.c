/* Connections per client IP: the open cap and the rate of new ones
 * (gw_iplimit.c; docs/security.md, "Connections"). */
#include <stdio.h>

#include "gw_iplimit.h"
#include "ls_test.h"

LS_TEST(iplimit_off_by_default_costs_nothing)
{
	gw_iplimit *l = gw_iplimit_new(0, 0, 100);

	LS_CHECK(l != NULL);
	for (int i = 0; i < 1000; i++) {
		LS_CHECK_INT(gw_iplimit_admit(l, "10.0.0.1", 1000), GW_IP_OK);
		LS_CHECK(!gw_iplimit_open(l, "10.0.0.1", 1000));
	}
	LS_CHECK_INT((int)gw_iplimit_keys(l), 0);
	gw_iplimit_destroy(&l);
	LS_CHECK(l == NULL);
}

LS_TEST(iplimit_caps_open_connections_per_address)
{
	gw_iplimit *l = gw_iplimit_new(2, 0, 100);
	int64_t t = 5000;

	for (int i = 0; i < 2; i++) {
		LS_CHECK_INT(gw_iplimit_admit(l, "10.0.0.1", t), GW_IP_OK);
		LS_CHECK(gw_iplimit_open(l, "10.0.0.1", t));
	}
	LS_CHECK_INT(gw_iplimit_admit(l, "10.0.0.1", t), GW_IP_TOO_MANY);
	LS_CHECK_INT(gw_iplimit_admit(l, "10.0.0.2", t), GW_IP_OK);
	gw_iplimit_close(l, "10.0.0.1", t);
	LS_CHECK_INT(gw_iplimit_admit(l, "10.0.0.1", t), GW_IP_OK);
	gw_iplimit_destroy(&l);
}

LS_TEST(iplimit_rate_of_new_connections_refills)
{
	gw_iplimit *l = gw_iplimit_new(0, 4, 100);
	int64_t t = 5000;

	for (int i = 0; i < 4; i++) {
		LS_CHECK_INT(gw_iplimit_admit(l, "::1", t), GW_IP_OK);
	}
	LS_CHECK_INT(gw_iplimit_admit(l, "::1", t), GW_IP_TOO_FAST);
	/* a quarter second brings one back */
	LS_CHECK_INT(gw_iplimit_admit(l, "::1", t + 250), GW_IP_OK);
	LS_CHECK_INT(gw_iplimit_admit(l, "::1", t + 250), GW_IP_TOO_FAST);
	gw_iplimit_destroy(&l);
}

LS_TEST(iplimit_bounded_addresses_let_in_uncounted)
{
	gw_iplimit *l = gw_iplimit_new(1, 0, 8);
	char ip[32];

	for (int i = 0; i < 8; i++) {
		snprintf(ip, sizeof(ip), "10.0.1.%d", i);
		LS_CHECK(gw_iplimit_open(l, ip, 1000));
	}
	LS_CHECK_INT((int)gw_iplimit_keys(l), 8);
	/* full: a ninth address is not tracked (and not refused) */
	LS_CHECK(!gw_iplimit_open(l, "10.0.2.1", 1000));
	LS_CHECK_INT(gw_iplimit_admit(l, "10.0.2.1", 1000), GW_IP_OK);
	/* addresses that closed everything make room */
	gw_iplimit_close(l, "10.0.1.0", 1000);
	LS_CHECK(gw_iplimit_open(l, "10.0.2.1", 1000));
	gw_iplimit_destroy(&l);
}

LS_TEST_MAIN()
