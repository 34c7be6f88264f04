/* Store front end: URI dispatch and argument checks before the backend. */
#include "as_store_impl.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void
as_account_clear(as_account *a)
{
	if (a == NULL) {
		return;
	}
	json_decref(a->roles);
	json_decref(a->history);
	/* The secret is recoverable material: do not leave it in freed
	 * memory longer than needed. */
	memset(a, 0, sizeof(*a));
}

void
as_token_clear(as_token *t)
{
	if (t == NULL) {
		return;
	}
	json_decref(t->roles);
	memset(t, 0, sizeof(*t));
}

as_store *
as_store_open(const char *uri, ls_error *err)
{
	if (uri == NULL || *uri == '\0') {
		ls_error_set(err, LS_ECONFIG, "store: empty URI");
		return NULL;
	}
	if (strncmp(uri, "sqlite:", 7) == 0) {
		const char *path = uri + 7;
		/* Accept sqlite:///abs/path and sqlite://rel as well. */
		if (strncmp(path, "//", 2) == 0) {
			path += 2;
		}
		if (*path == '\0') {
			ls_error_set(err, LS_ECONFIG,
			             "store: sqlite URI without a path");
			return NULL;
		}
		return as__store_sqlite_open(path, err);
	}
	if (strncmp(uri, "mongodb://", 10) == 0 ||
	    strncmp(uri, "mongodb+srv://", 14) == 0) {
		return as__store_mongo_open(uri, err);
	}
	ls_error_set(err, LS_ECONFIG,
	             "store: unknown URI '%.64s' (expected sqlite:PATH or "
	             "mongodb://...)",
	             uri);
	return NULL;
}

void
as_store_close(as_store **s)
{
	if (s == NULL || *s == NULL) {
		return;
	}
	(*s)->ops->close(*s);
	*s = NULL;
}

const char *
as_store_backend(const as_store *s)
{
	return s->ops->name;
}

static int
as__check_key(const char *app_key, ls_error *err)
{
	if (!ls_valid_app_key(app_key)) {
		return ls_error_set(err, LS_EBADREQUEST,
		                    "invalid appKey (expected "
		                    "[A-Za-z0-9_-]{1,64})");
	}
	return 0;
}

static int
as__check_hash(const char *hash, ls_error *err)
{
	size_t n = hash ? strlen(hash) : 0;

	if (n != LS_SHA256_HEX_LEN) {
		return ls_error_set(err, LS_EBADREQUEST, "invalid token hash");
	}
	for (size_t i = 0; i < n; i++) {
		char ch = hash[i];
		if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f'))) {
			return ls_error_set(err, LS_EBADREQUEST,
			                    "invalid token hash");
		}
	}
	return 0;
}

static int
as__check_account(const as_account *a, unsigned mask, ls_error *err)
{
	int rc = as__check_key(a->app_key, err);

	if (rc != 0) {
		return rc;
	}
	if ((mask & AS_FIELD_PRIVATE) &&
	    strncmp(a->private_hash, "pbkdf2-sha256$", 14) != 0) {
		return ls_error_set(err, LS_EBADREQUEST,
		                    "account %s: private key is not hashed",
		                    a->app_key);
	}
	if ((mask & AS_FIELD_SECRET) && a->secret_key[0] == '\0') {
		return ls_error_set(err, LS_EBADREQUEST,
		                    "account %s: empty secretKey", a->app_key);
	}
	if ((mask & AS_FIELD_ROLES) &&
	    (rc = as_roles_validate(a->roles, err)) != 0) {
		return rc;
	}
	if ((mask & AS_FIELD_HISTORY) && a->history != NULL) {
		return as_history_validate(a->history, err);
	}
	return 0;
}

#define AS__ALL_FIELDS                                                        \
	(AS_FIELD_PRIVATE | AS_FIELD_SECRET | AS_FIELD_PUBLIC |               \
	 AS_FIELD_SHARED_WRITE | AS_FIELD_ROLES | AS_FIELD_HISTORY)

int
as_store_account_create(as_store *s, const as_account *a, ls_error *err)
{
	int rc = as__check_account(a, AS__ALL_FIELDS, err);

	return rc ? rc : s->ops->account_create(s, a, err);
}

int
as_store_account_update(as_store *s, const as_account *a, unsigned mask,
                        ls_error *err)
{
	int rc = as__check_account(a, mask, err);

	if (rc == 0 && (mask & ~(unsigned)AS__ALL_FIELDS)) {
		rc = ls_error_set(err, -EINVAL, "unknown account field mask");
	}
	return rc ? rc : s->ops->account_update(s, a, mask, err);
}

int
as_store_account_get(as_store *s, const char *app_key, as_account *out,
                     ls_error *err)
{
	int rc = as__check_key(app_key, err);

	memset(out, 0, sizeof(*out));
	return rc ? rc : s->ops->account_get(s, app_key, out, err);
}

int
as_store_account_delete(as_store *s, const char *app_key, ls_error *err)
{
	int rc = as__check_key(app_key, err);

	return rc ? rc : s->ops->account_delete(s, app_key, err);
}

int
as_store_account_list(as_store *s, json_t **out, ls_error *err)
{
	*out = NULL;
	return s->ops->account_list(s, out, err);
}

int
as_store_role_set(as_store *s, const char *app_key, const char *role,
                  json_t *perms, ls_error *err)
{
	int rc = as__check_key(app_key, err);

	if (rc == 0 && !ls_valid_role_name(role)) {
		rc = ls_error_set(err, LS_EBADREQUEST,
		                  "invalid role name (expected "
		                  "[A-Za-z0-9_-]{1,64})");
	}
	if (rc == 0) {
		rc = as_perms_validate(perms, err);
	}
	return rc ? rc : s->ops->role_set(s, app_key, role, perms, err);
}

int
as_store_role_delete(as_store *s, const char *app_key, const char *role,
                     ls_error *err)
{
	int rc = as__check_key(app_key, err);

	if (rc == 0 && !ls_valid_role_name(role)) {
		rc = ls_error_set(err, LS_EBADREQUEST, "invalid role name");
	}
	return rc ? rc : s->ops->role_delete(s, app_key, role, err);
}

int
as_store_reset(as_store *s, const as_account *accounts, size_t n,
               ls_error *err)
{
	for (size_t i = 0; i < n; i++) {
		int rc = as__check_account(&accounts[i], AS__ALL_FIELDS, err);
		if (rc != 0) {
			return rc;
		}
		for (size_t j = 0; j < i; j++) {
			if (strcmp(accounts[i].app_key, accounts[j].app_key) ==
			    0) {
				return ls_error_set(err, LS_EEXISTS,
				                    "duplicate appKey %s",
				                    accounts[i].app_key);
			}
		}
	}
	return s->ops->reset(s, accounts, n, err);
}

int
as_store_token_put(as_store *s, const as_token *t, ls_error *err)
{
	int rc = as__check_hash(t->hash, err);

	if (rc == 0) {
		rc = as__check_key(t->app_key, err);
	}
	if (rc == 0 && !json_is_array(t->roles)) {
		rc = ls_error_set(err, LS_EBADREQUEST, "token without roles");
	}
	return rc ? rc : s->ops->token_put(s, t, err);
}

int
as_store_token_get(as_store *s, const char *hash, int64_t now_ms,
                   as_token *out, ls_error *err)
{
	int rc = as__check_hash(hash, err);

	memset(out, 0, sizeof(*out));
	return rc ? rc : s->ops->token_get(s, hash, now_ms, out, err);
}

int
as_store_token_lookup(as_store *s, const char *hash, int64_t now_ms,
                      as_token *tok, as_account *acc, ls_error *err)
{
	int rc = as__check_hash(hash, err);

	memset(tok, 0, sizeof(*tok));
	memset(acc, 0, sizeof(*acc));
	if (rc != 0) {
		return rc;
	}
	if (s->ops->token_lookup != NULL) {
		return s->ops->token_lookup(s, hash, now_ms, tok, acc, err);
	}
	rc = s->ops->token_get(s, hash, now_ms, tok, err);
	if (rc == 0) {
		rc = s->ops->account_get(s, tok->app_key, acc, err);
	}
	if (rc != 0) {
		as_token_clear(tok);
		as_account_clear(acc);
		return rc;
	}
	/* Callers of the lookup never need the secrets. */
	memset(acc->private_hash, 0, sizeof(acc->private_hash));
	memset(acc->secret_key, 0, sizeof(acc->secret_key));
	return 0;
}

int
as_store_account_flags(as_store *s, const char *app_key, bool *is_public,
                       bool *shared_write, ls_error *err)
{
	as_account a;
	int rc = as__check_key(app_key, err);

	*is_public = *shared_write = false;
	if (rc != 0) {
		return rc;
	}
	if (s->ops->account_flags != NULL) {
		return s->ops->account_flags(s, app_key, is_public,
		                             shared_write, err);
	}
	memset(&a, 0, sizeof(a));
	rc = s->ops->account_get(s, app_key, &a, err);
	if (rc == 0) {
		*is_public = a.is_public;
		*shared_write = a.shared_write;
	}
	as_account_clear(&a);
	return rc;
}

int
as_store_token_delete(as_store *s, const char *app_key, const char *hash,
                      ls_error *err)
{
	int rc = as__check_hash(hash, err);

	if (rc == 0) {
		rc = as__check_key(app_key, err);
	}
	return rc ? rc : s->ops->token_delete(s, app_key, hash, err);
}

int
as_store_token_sweep(as_store *s, int64_t now_ms, ls_error *err)
{
	return s->ops->token_sweep(s, now_ms, err);
}

json_t *
as__account_list_view(const as_account *a)
{
	json_t *v = json_pack("{s:s, s:b, s:b, s:O}", "appKey", a->app_key,
	                      "isPublic", a->is_public, "sharedWrite",
	                      a->shared_write, "roles", a->roles);

	if (v != NULL && a->history != NULL) {
		json_object_set(v, "history", a->history);
	}
	return v;
}

int
as_store_account_history(as_store *s, const char *app_key, json_t **out,
                         ls_error *err)
{
	as_account a;
	int rc = as__check_key(app_key, err);

	*out = NULL;
	if (rc != 0) {
		return rc;
	}
	memset(&a, 0, sizeof(a));
	rc = s->ops->account_get(s, app_key, &a, err);
	if (rc == 0) {
		*out = json_incref(a.history);
	}
	as_account_clear(&a);
	return rc;
}

int
as__not_found(ls_error *err, const char *missing, const char *key)
{
	if (key != NULL) {
		return ls_error_set(err, LS_ENOTFOUND, "%s: %s", missing, key);
	}
	return ls_error_set(err, LS_ENOTFOUND, "%s", missing);
}
