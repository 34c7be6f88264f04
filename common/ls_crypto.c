#include "ls_crypto.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

/*
 * PBKDF2 iterations for stored private keys. Private keys are checked on
 * every token request, so this trades brute-force cost against issuing
 * rate (about 2 ms per check on the reference machine).
 */
#define LS__PBKDF2_DEFAULT_ITERATIONS 10000
#define LS__PBKDF2_MAX_ITERATIONS     10000000
#define LS__SALT_BYTES                16

static const char ls__b64url[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

int
ls_random_bytes(void *buf, size_t n)
{
	return RAND_bytes(buf, (int)n) == 1 ? 0 : -EIO;
}

size_t
ls_base64url_len(size_t n)
{
	return (n / 3) * 4 + (n % 3 == 0 ? 0 : n % 3 + 1);
}

int
ls_base64url_encode(const void *in, size_t n, char *out, size_t outlen)
{
	const unsigned char *p = in;
	size_t need = ls_base64url_len(n);
	size_t o = 0;
	size_t i;

	if (outlen < need + 1) {
		return -ENOSPC;
	}
	for (i = 0; i + 2 < n; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 |
		             p[i + 2];
		out[o++] = ls__b64url[(v >> 18) & 63];
		out[o++] = ls__b64url[(v >> 12) & 63];
		out[o++] = ls__b64url[(v >> 6) & 63];
		out[o++] = ls__b64url[v & 63];
	}
	if (n - i == 1) {
		uint32_t v = (uint32_t)p[i] << 16;
		out[o++] = ls__b64url[(v >> 18) & 63];
		out[o++] = ls__b64url[(v >> 12) & 63];
	} else if (n - i == 2) {
		uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8;
		out[o++] = ls__b64url[(v >> 18) & 63];
		out[o++] = ls__b64url[(v >> 12) & 63];
		out[o++] = ls__b64url[(v >> 6) & 63];
	}
	out[o] = '\0';
	return (int)o;
}

int
ls_random_token(char out[LS_TOKEN_LEN + 1])
{
	unsigned char raw[32];

	if (ls_random_bytes(raw, sizeof(raw)) != 0) {
		return -EIO;
	}
	ls_base64url_encode(raw, sizeof(raw), out, LS_TOKEN_LEN + 1);
	OPENSSL_cleanse(raw, sizeof(raw));
	return 0;
}

void
ls_hex_encode(const void *in, size_t n, char *out)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = in;

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = hex[p[i] >> 4];
		out[2 * i + 1] = hex[p[i] & 15];
	}
	out[2 * n] = '\0';
}

void
ls_sha256_hex(const void *data, size_t n, char out[LS_SHA256_HEX_LEN + 1])
{
	unsigned char md[SHA256_DIGEST_LENGTH];

	SHA256(data, n, md);
	ls_hex_encode(md, sizeof(md), out);
}

void
ls_hmac_sha256_hex(const void *key, size_t keylen, const void *data, size_t n,
                   char out[LS_SHA256_HEX_LEN + 1])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;

	HMAC(EVP_sha256(), key, (int)keylen, data, n, md, &mdlen);
	ls_hex_encode(md, mdlen, out);
}

bool
ls_ct_equal(const void *a, size_t alen, const void *b, size_t blen)
{
	if (alen != blen) {
		return false;
	}
	return CRYPTO_memcmp(a, b, alen) == 0;
}

bool
ls_ct_streq(const char *a, const char *b)
{
	if (a == NULL || b == NULL) {
		return false;
	}
	return ls_ct_equal(a, strlen(a), b, strlen(b));
}

static int
ls__pbkdf2(const char *password, const unsigned char *salt, size_t saltlen,
           unsigned iterations, unsigned char out[32])
{
	if (PKCS5_PBKDF2_HMAC(password, (int)strlen(password), salt,
	                      (int)saltlen, (int)iterations, EVP_sha256(), 32,
	                      out) != 1) {
		return -EIO;
	}
	return 0;
}

int
ls_password_hash(const char *password, unsigned iterations,
                 char out[LS_PASSWORD_HASH_MAX])
{
	unsigned char salt[LS__SALT_BYTES];
	unsigned char dk[32];
	char salt64[32], dk64[48];

	if (iterations == 0) {
		iterations = LS__PBKDF2_DEFAULT_ITERATIONS;
	}
	if (iterations > LS__PBKDF2_MAX_ITERATIONS) {
		return -EINVAL;
	}
	if (ls_random_bytes(salt, sizeof(salt)) != 0 ||
	    ls__pbkdf2(password, salt, sizeof(salt), iterations, dk) != 0) {
		return -EIO;
	}
	ls_base64url_encode(salt, sizeof(salt), salt64, sizeof(salt64));
	ls_base64url_encode(dk, sizeof(dk), dk64, sizeof(dk64));
	snprintf(out, LS_PASSWORD_HASH_MAX, "pbkdf2-sha256$%u$%s$%s",
	         iterations, salt64, dk64);
	OPENSSL_cleanse(dk, sizeof(dk));
	return 0;
}

/* Decode base64url (no padding). Returns bytes written or -1. */
static int
ls__b64url_decode(const char *in, size_t len, unsigned char *out,
                  size_t outlen)
{
	uint32_t acc = 0;
	int bits = 0;
	size_t o = 0;

	for (size_t i = 0; i < len; i++) {
		const char *pos = memchr(ls__b64url, in[i], 64);
		if (pos == NULL || in[i] == '\0') {
			return -1;
		}
		acc = (acc << 6) | (uint32_t)(pos - ls__b64url);
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (o >= outlen) {
				return -1;
			}
			out[o++] = (unsigned char)(acc >> bits);
		}
	}
	return (int)o;
}

bool
ls_password_verify(const char *password, const char *hash)
{
	unsigned char salt[64], want[64], got[32];
	const char *p, *s, *h;
	unsigned long iterations;
	char *end;
	int saltlen, wantlen;
	bool ok;

	if (password == NULL || hash == NULL ||
	    strncmp(hash, "pbkdf2-sha256$", 14) != 0) {
		return false;
	}
	p = hash + 14;
	iterations = strtoul(p, &end, 10);
	if (*end != '$' || iterations == 0 ||
	    iterations > LS__PBKDF2_MAX_ITERATIONS) {
		return false;
	}
	s = end + 1;
	h = strchr(s, '$');
	if (h == NULL) {
		return false;
	}
	saltlen = ls__b64url_decode(s, (size_t)(h - s), salt, sizeof(salt));
	wantlen = ls__b64url_decode(h + 1, strlen(h + 1), want, sizeof(want));
	if (saltlen <= 0 || wantlen != 32) {
		return false;
	}
	if (ls__pbkdf2(password, salt, (size_t)saltlen, (unsigned)iterations,
	               got) != 0) {
		return false;
	}
	ok = CRYPTO_memcmp(got, want, 32) == 0;
	OPENSSL_cleanse(got, sizeof(got));
	return ok;
}
