/*
 * The account and token store of the app server (docs/accounts.md).
 *
 * One interface, several backends behind a function table: SQLite
 * ("sqlite:PATH", the default) and MongoDB ("mongodb://..."). Every
 * function is thread-safe: the bus worker threads call concurrently.
 *
 * What is stored:
 * - accounts: appKey, the salted hash of the private key (never the key),
 *   the secret key (in clear: the server must compute HMACs with it),
 *   isPublic, sharedWrite and the roles map;
 * - tokens: only the SHA-256 hex of the token value, with the appKey, the
 *   role names, the expiry, the bound IP address and the web-token flag.
 *   Expired tokens are never returned (checked on read) and are deleted
 *   in the background (SQLite sweeper, MongoDB TTL index).
 */
#ifndef AS_STORE_H
#define AS_STORE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ls_crypto.h"
#include "ls_error.h"
#include "ls_proto.h"

/*
 * Limits of docs/accounts.md and our own bounds (docs/accounts.md). The
 * identifier grammar and its limits (LS_APPKEY_MAX, LS_STREAM_MAX,
 * LS_ROLE_MAX, LS_TTL_*, LS_PERM_*, ls_valid_*) are common/ls_proto.h's.
 */
#define AS_ROLES_MAX       64  /* roles per account */
#define AS_PERMS_MAX       256 /* permissions per role */
#define AS_KEY_MAX         256 /* private and secret keys, bytes */
#define AS_IP_MAX          46  /* INET6_ADDRSTRLEN */
#define AS_TOKEN_ROLES_MAX AS_ROLES_MAX

typedef struct as_store as_store;

/* An account as the services see it. */
typedef struct as_account {
	char app_key[LS_APPKEY_MAX + 1];
	char private_hash[LS_PASSWORD_HASH_MAX]; /* ls_password_hash() */
	char secret_key[AS_KEY_MAX + 1];
	bool is_public;
	bool shared_write;
	/*
	 * Object: role name -> array of {"owner","stream","permission"},
	 * validated (as_roles_validate). Owned by the struct.
	 */
	json_t *roles;
	/*
	 * The account's history override {"size"?, "ttl"?} (docs/accounts.md),
	 * validated (as_history_validate); NULL: the gateways' defaults.
	 * Owned by the struct.
	 */
	json_t *history;
} as_account;

/* A stored token: the value itself is never stored, only its hash. */
typedef struct as_token {
	char hash[LS_SHA256_HEX_LEN + 1]; /* ls_sha256_hex(value) */
	char app_key[LS_APPKEY_MAX + 1];
	json_t *roles;      /* array of role names; owned by the struct */
	int64_t expires_ms; /* wall clock, epoch milliseconds */
	char ip[AS_IP_MAX]; /* normalized address, "" when not bound */
	bool web;           /* issued as a web token */
} as_token;

/* Release what a (zeroed or filled) account/token owns; keeps the struct. */
void as_account_clear(as_account *a);
void as_token_clear(as_token *t);

/* Which scalar fields as_store_account_update() writes. */
enum as_account_field {
	AS_FIELD_PRIVATE = 1 << 0,
	AS_FIELD_SECRET = 1 << 1,
	AS_FIELD_PUBLIC = 1 << 2,
	AS_FIELD_SHARED_WRITE = 1 << 3,
	AS_FIELD_ROLES = 1 << 4,
	AS_FIELD_HISTORY = 1 << 5, /* history NULL: back to the defaults */
};

/*
 * Open a store from its URI: "sqlite:PATH" or "mongodb://...". The
 * schema / indexes are created or migrated. Returns NULL with err set.
 */
as_store *as_store_open(const char *uri, ls_error *err);

/* Close and free. Accepts NULL and clears *s. */
void as_store_close(as_store **s);

/* Backend name: "sqlite" or "mongodb". */
const char *as_store_backend(const as_store *s);

/*
 * Accounts. a is borrowed. create fails with LS_EEXISTS when the appKey
 * is taken; update writes the fields in mask and fails with LS_ENOTFOUND.
 * get fills *out (as_account_clear() it) or returns LS_ENOTFOUND.
 */
int as_store_account_create(as_store *s, const as_account *a, ls_error *err);
int as_store_account_update(as_store *s, const as_account *a, unsigned mask,
                            ls_error *err);
int as_store_account_get(as_store *s, const char *app_key, as_account *out,
                         ls_error *err);

/* Delete an account and all its tokens. LS_ENOTFOUND when absent. */
int as_store_account_delete(as_store *s, const char *app_key, ls_error *err);

/*
 * Every account, ordered by appKey, as a JSON array of objects
 * {"appKey","isPublic","sharedWrite","roles"} (new reference in *out).
 */
int as_store_account_list(as_store *s, json_t **out, ls_error *err);

/*
 * Set (create or replace) or delete one role of an account atomically.
 * perms (borrowed) must pass as_perms_validate. LS_ENOTFOUND when the
 * account (or, for delete, the role) does not exist.
 */
int as_store_role_set(as_store *s, const char *app_key, const char *role,
                      json_t *perms, ls_error *err);
int as_store_role_delete(as_store *s, const char *app_key, const char *role,
                         ls_error *err);

/*
 * Replace every account and token by accounts[0..n) (borrowed).
 * All or nothing where the backend allows it (SQLite: one transaction).
 */
int as_store_reset(as_store *s, const as_account *accounts, size_t n,
                   ls_error *err);

/* Tokens. t is borrowed. put fails with LS_EEXISTS on a hash collision. */
int as_store_token_put(as_store *s, const as_token *t, ls_error *err);

/*
 * Fill *out with the token whose hash is given, unless it is unknown or
 * expired at now_ms (LS_ENOTFOUND in both cases).
 */
int as_store_token_get(as_store *s, const char *hash, int64_t now_ms,
                       as_token *out, ls_error *err);

/*
 * What a token validation needs, in one read: the token whose hash is
 * given (unless unknown or expired at now_ms) into *tok, and its account's
 * appKey, isPublic, sharedWrite and roles into *acc (private_hash and
 * secret_key are left empty). LS_ENOTFOUND when there is no live token.
 * Both structs are filled as by the _get functions (as_*_clear() them),
 * but tok->roles and acc->roles may be shared with other threads: they
 * are read-only. The rows are read on every call: nothing here can be
 * stale.
 */
int as_store_token_lookup(as_store *s, const char *hash, int64_t now_ms,
                          as_token *tok, as_account *acc, ls_error *err);

/* isPublic and sharedWrite of an account, read now; LS_ENOTFOUND when
 * there is no such account. */
int as_store_account_flags(as_store *s, const char *app_key, bool *is_public,
                           bool *shared_write, ls_error *err);

/* Delete the token of app_key with this hash; LS_ENOTFOUND otherwise. */
int as_store_token_delete(as_store *s, const char *app_key, const char *hash,
                          ls_error *err);

/* Delete tokens expired at now_ms; returns how many (or < 0). */
int as_store_token_sweep(as_store *s, int64_t now_ms, ls_error *err);

/* ---- validation (shared by backends, services and the admin command) */

/*
 * Check one role's permission list: an array (at most AS_PERMS_MAX) of
 * {"owner": appKey, "stream": name or prefix*, "permission": 1..3} with
 * no other keys. Errors name the offending element.
 */
int as_perms_validate(json_t *perms, ls_error *err);

/* Check a roles map (object: role name -> permission list). */
int as_roles_validate(json_t *roles, ls_error *err);

/*
 * Check an account's "history": an object with "size" (0..10000) and/or
 * "ttl" (1..604800 s), nothing else. Returns 0 or LS_EBADREQUEST.
 */
int as_history_validate(json_t *history, ls_error *err);

/*
 * The history override of account app_key into *out (new reference, NULL
 * when the account has none). Returns 0, LS_ENOTFOUND, or a store error.
 */
int as_store_account_history(as_store *s, const char *app_key, json_t **out,
                             ls_error *err);

/*
 * Build an account from its JSON form (fixture / accounts.create):
 * {"appKey", "privateKey", "secretKey", "isPublic"?, "sharedWrite"?,
 * "roles"?}. The private key is hashed here. obj is borrowed; *out must be
 * zeroed and is filled (as_account_clear() it). Unknown keys are errors.
 */
int as_account_from_json(json_t *obj, as_account *out, ls_error *err);

/*
 * Parse and validate a fixture (docs/accounts.md: {"accounts": [...]}) into a
 * new array *out of *n accounts (free with as_accounts_free). Duplicate
 * appKeys are errors.
 */
int as_fixture_parse(json_t *fixture, as_account **out, size_t *n,
                     ls_error *err);
void as_accounts_free(as_account *accounts, size_t n);

/*
 * Normalize an IPv4 or IPv6 address text (inet_pton/inet_ntop; an
 * IPv4-mapped IPv6 address becomes IPv4). Returns 0 or -EINVAL.
 */
int as_ip_normalize(const char *text, char out[AS_IP_MAX]);

#endif
