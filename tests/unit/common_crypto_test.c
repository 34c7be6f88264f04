#include <string.h>

#include "ls_crypto.h"
#include "ls_test.h"

LS_TEST(sha256_known_vector)
{
	char out[LS_SHA256_HEX_LEN + 1];
	ls_sha256_hex("abc", 3, out);
	LS_CHECK_STR(out, "ba7816bf8f01cfea414140de5dae2223"
	                  "b00361a396177a9cb410ff61f20015ad");
}

LS_TEST(hmac_sha256_rfc4231_case2)
{
	char out[LS_SHA256_HEX_LEN + 1];
	const char *data = "what do ya want for nothing?";
	ls_hmac_sha256_hex("Jefe", 4, data, strlen(data), out);
	LS_CHECK_STR(out, "5bdcc146bf60754e6a042426089575c7"
	                  "5a003f089d2739839dec58b964ec3843");
}

LS_TEST(random_token_shape_and_uniqueness)
{
	char a[LS_TOKEN_LEN + 1], b[LS_TOKEN_LEN + 1];
	LS_CHECK_INT(ls_random_token(a), 0);
	LS_CHECK_INT(ls_random_token(b), 0);
	LS_CHECK_INT(strlen(a), 43);
	LS_CHECK(strcmp(a, b) != 0);
	LS_CHECK(strspn(a, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwx"
	                   "yz0123456789-_") == 43);
}

LS_TEST(base64url_vectors)
{
	char out[16];
	LS_CHECK_INT(ls_base64url_encode("f", 1, out, sizeof(out)), 2);
	LS_CHECK_STR(out, "Zg");
	ls_base64url_encode("fo", 2, out, sizeof(out));
	LS_CHECK_STR(out, "Zm8");
	ls_base64url_encode("foo", 3, out, sizeof(out));
	LS_CHECK_STR(out, "Zm9v");
	ls_base64url_encode("\xfb\xff", 2, out, sizeof(out));
	LS_CHECK_STR(out, "-_8");
	LS_CHECK(ls_base64url_encode("foo", 3, out, 4) < 0);
}

LS_TEST(constant_time_compare)
{
	LS_CHECK(ls_ct_streq("secret", "secret"));
	LS_CHECK(!ls_ct_streq("secret", "secreT"));
	LS_CHECK(!ls_ct_streq("secret", "secret2"));
	LS_CHECK(!ls_ct_streq(NULL, "x"));
}

LS_TEST(password_hash_roundtrip)
{
	char h1[LS_PASSWORD_HASH_MAX], h2[LS_PASSWORD_HASH_MAX];
	LS_CHECK_INT(ls_password_hash("svc1_private", 1000, h1), 0);
	LS_CHECK_INT(ls_password_hash("svc1_private", 1000, h2), 0);
	LS_CHECK(strncmp(h1, "pbkdf2-sha256$1000$", 19) == 0);
	LS_CHECK(strcmp(h1, h2) != 0); /* salted */
	LS_CHECK(strstr(h1, "svc1_private") == NULL);
	LS_CHECK(ls_password_verify("svc1_private", h1));
	LS_CHECK(!ls_password_verify("svc1_privatE", h1));
	LS_CHECK(!ls_password_verify("svc1_private", "plain"));
	LS_CHECK(!ls_password_verify("x", "pbkdf2-sha256$0$aa$bb"));
}

LS_TEST_MAIN()
