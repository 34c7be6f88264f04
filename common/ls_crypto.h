/*
 * Crypto helpers on OpenSSL 3: random tokens, SHA-256, HMAC-SHA256,
 * constant-time comparison and salted password hashes.
 * All functions are thread-safe.
 */
#ifndef LS_CRYPTO_H
#define LS_CRYPTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* 256 random bits, base64url without padding: 43 characters + NUL. */
#define LS_TOKEN_LEN         43
#define LS_SHA256_HEX_LEN    64
#define LS_PASSWORD_HASH_MAX 160

/* Fill buf with n cryptographically random bytes. Returns 0 or -EIO. */
int ls_random_bytes(void *buf, size_t n);

/*
 * Write a new random token (256 bits, base64url, no padding) into out,
 * which must hold LS_TOKEN_LEN + 1 bytes. Returns 0 or -EIO.
 */
int ls_random_token(char out[LS_TOKEN_LEN + 1]);

/*
 * Encode n bytes as base64url without padding into out (NUL-terminated).
 * outlen must be at least ls_base64url_len(n) + 1. Returns the length
 * written, or -ENOSPC.
 */
int ls_base64url_encode(const void *in, size_t n, char *out, size_t outlen);
size_t ls_base64url_len(size_t n);

/* Lowercase hex of n bytes into out (2n + 1 bytes). */
void ls_hex_encode(const void *in, size_t n, char *out);

/* SHA-256 of data as 64 lowercase hex characters + NUL. */
void ls_sha256_hex(const void *data, size_t n,
                   char out[LS_SHA256_HEX_LEN + 1]);

/* HMAC-SHA256(key, data) as 64 lowercase hex characters + NUL. */
void ls_hmac_sha256_hex(const void *key, size_t keylen, const void *data,
                        size_t n, char out[LS_SHA256_HEX_LEN + 1]);

/*
 * Compare two byte strings in time that depends only on their lengths.
 * Returns true when equal.
 */
bool ls_ct_equal(const void *a, size_t alen, const void *b, size_t blen);

/* Same for NUL-terminated strings (either may be NULL: not equal). */
bool ls_ct_streq(const char *a, const char *b);

/*
 * Salted password hash: "pbkdf2-sha256$<iterations>$<salt b64url>$<hash
 * b64url>" into out (LS_PASSWORD_HASH_MAX bytes). iterations 0 picks the
 * default. Returns 0 or a negative errno.
 */
int ls_password_hash(const char *password, unsigned iterations,
                     char out[LS_PASSWORD_HASH_MAX]);

/* Check password against a hash from ls_password_hash(), constant time. */
bool ls_password_verify(const char *password, const char *hash);

#endif
