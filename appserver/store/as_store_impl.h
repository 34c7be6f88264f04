/*
 * Internal: the function table every store backend implements. The
 * public functions of as_store.h validate their arguments and dispatch
 * here, so backends may assume well-formed input.
 */
#ifndef AS_STORE_IMPL_H
#define AS_STORE_IMPL_H

#include "as_store.h"

typedef struct as__store_ops {
	const char *name;
	int (*account_create)(as_store *s, const as_account *a, ls_error *err);
	int (*account_update)(as_store *s, const as_account *a, unsigned mask,
	                      ls_error *err);
	int (*account_get)(as_store *s, const char *app_key, as_account *out,
	                   ls_error *err);
	int (*account_delete)(as_store *s, const char *app_key, ls_error *err);
	int (*account_list)(as_store *s, json_t **out, ls_error *err);
	int (*role_set)(as_store *s, const char *app_key, const char *role,
	                json_t *perms, ls_error *err);
	int (*role_delete)(as_store *s, const char *app_key, const char *role,
	                   ls_error *err);
	int (*reset)(as_store *s, const as_account *accounts, size_t n,
	             ls_error *err);
	int (*token_put)(as_store *s, const as_token *t, ls_error *err);
	int (*token_get)(as_store *s, const char *hash, int64_t now_ms,
	                 as_token *out, ls_error *err);
	/* Optional (NULL: composed from token_get and account_get). */
	int (*token_lookup)(as_store *s, const char *hash, int64_t now_ms,
	                    as_token *tok, as_account *acc, ls_error *err);
	/* Optional (NULL: account_get). */
	int (*account_flags)(as_store *s, const char *app_key, bool *is_public,
	                     bool *shared_write, ls_error *err);
	int (*token_delete)(as_store *s, const char *app_key, const char *hash,
	                    ls_error *err);
	int (*token_sweep)(as_store *s, int64_t now_ms, ls_error *err);
	void (*close)(as_store *s);
} as__store_ops;

/* Every backend's struct starts with this header. */
struct as_store {
	const as__store_ops *ops;
};

/* Backend constructors: the URI without its scheme (sqlite) or whole. */
as_store *as__store_sqlite_open(const char *path, ls_error *err);
as_store *as__store_mongo_open(const char *uri, ls_error *err);

/* The list view of an account: {"appKey","isPublic","sharedWrite",
 * "roles"} (new reference, NULL on allocation failure). */
json_t *as__account_list_view(const as_account *a);

/* Set and return LS_ENOTFOUND, "<missing>: <key>" or just "<missing>"
 * when key is NULL, so every backend names a missing item alike. */
int as__not_found(ls_error *err, const char *missing, const char *key);

#endif
