/*
 * Control-channel announcements (ps_control.h): their JSON form round
 * trips, malformed ones are refused, and the token id is the prefix of the
 * token's SHA-256 (what the store keeps).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ls_crypto.h"
#include "ls_test.h"
#include "ps_control.h"

LS_TEST(round_trip_every_kind)
{
	ps_control in = { 0 }, out;
	char *text;
	size_t len = 0;

	in.kind = PS_CONTROL_REVOKED;
	strcpy(in.app_key, "acc1");
	ps_control_token_id("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", 43,
	                    in.token_id);
	text = ps_control_encode(&in, &len);
	LS_CHECK(text != NULL && len == strlen(text));
	LS_CHECK(strstr(text, "AAAA") == NULL); /* never the token itself */
	LS_CHECK_INT(ps_control_decode(text, len, &out), 0);
	LS_CHECK_INT(out.kind, PS_CONTROL_REVOKED);
	LS_CHECK_STR(out.app_key, "acc1");
	LS_CHECK_STR(out.token_id, in.token_id);
	free(text);

	for (int k = PS_CONTROL_DELETED; k <= PS_CONTROL_RESET; k++) {
		memset(&in, 0, sizeof(in));
		in.kind = (ps_control_kind)k;
		if (k != PS_CONTROL_RESET) {
			strcpy(in.app_key, "svc1");
		}
		text = ps_control_encode(&in, &len);
		LS_CHECK_INT(ps_control_decode(text, len, &out), 0);
		LS_CHECK_INT(out.kind, k);
		LS_CHECK_STR(out.app_key, in.app_key);
		free(text);
	}
	/* "changed" without an app key: every account */
	LS_CHECK_INT(
	        ps_control_decode("{\"v\":1,\"kind\":\"changed\"}", 24, &out),
	        0);
	LS_CHECK_STR(out.app_key, "");
}

LS_TEST(token_id_is_the_prefix_of_the_stored_hash)
{
	const char *token = "x-token-value-of-43-characters-abcdefghijkl";
	char hash[LS_SHA256_HEX_LEN + 1];
	char a[PS_CONTROL_TOKEN_ID_LEN + 1], b[PS_CONTROL_TOKEN_ID_LEN + 1];

	ls_sha256_hex(token, strlen(token), hash);
	ps_control_token_id(token, strlen(token), a);
	ps_control_token_id_of_hash(hash, b);
	LS_CHECK_STR(a, b);
	LS_CHECK_INT(strlen(a), PS_CONTROL_TOKEN_ID_LEN);
	LS_CHECK(strncmp(hash, a, PS_CONTROL_TOKEN_ID_LEN) == 0);
}

LS_TEST(malformed_announcements_refused)
{
	static const char *const bad[] = {
		"",
		"not json",
		"[]",
		"{\"kind\":\"reset\"}",           /* no version */
		"{\"v\":2,\"kind\":\"reset\"}",   /* unknown version */
		"{\"v\":1,\"kind\":\"explode\"}", /* unknown kind */
		"{\"v\":1,\"kind\":\"deleted\"}", /* deleted needs appKey */
		"{\"v\":1,\"kind\":\"revoked\",\"appKey\":\"a\"}", /* no id */
		"{\"v\":1,\"kind\":\"revoked\",\"appKey\":\"a\","
		"\"tokenId\":\"short\"}",
		"{\"v\":1,\"kind\":\"revoked\",\"appKey\":\"a\","
		"\"tokenId\":\"ZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZ\"}",
		"{\"v\":1,\"kind\":\"changed\",\"appKey\":\"\"}",
		"{\"v\":1,\"kind\":\"changed\",\"appKey\":"
		"\"a234567890123456789012"
		"345678901234567890123456789012345678901234567890\"}",
	};
	ps_control out;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		LS_CHECK_INT(ps_control_decode(bad[i], strlen(bad[i]), &out),
		             -EINVAL);
	}
}

LS_TEST_MAIN()
