/*
 * The administrative services: "accounts" (create, get, list, update,
 * delete, setRole, deleteRole) and "db" (resetDatabase). The private key
 * (or its hash) never leaves the store; the secret key only from
 * accounts.get with includeSecret = true.
 */
#include "as_services_impl.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ls_log.h"

/* An argument that is a JSON value, or JSON text (from the HTTP bridge). */
static json_t *
as__arg_json(json_t *args, size_t i)
{
	json_t *v = json_array_get(args, i);

	if (json_is_string(v)) {
		return json_loads(json_string_value(v), 0, NULL);
	}
	return json_incref(v);
}

static int
as__op_create(void *ctx, json_t *args, json_t **result, ls_error *err)
{
	as_services *svc = ctx;
	json_t *obj = as__arg_json(args, 0);
	as_account a;
	int rc;

	if (!json_is_object(obj)) {
		json_decref(obj);
		return ls_error_set(err, LS_EBADREQUEST,
		                    "argument 1: expected an account object");
	}
	rc = as_account_from_json(obj, &a, err);
	json_decref(obj);
	if (rc != 0) {
		return rc;
	}
	rc = as_store_account_create(svc->store, &a, err);
	if (rc == 0) {
		*result = as__account_view(&a, false);
		ls_info(AS__LOG, "account %s created", a.app_key);
		/* Other accounts' roles may name it: their grants on it
		 * start to count when it is public or shares writes. */
		if (a.is_public || a.shared_write) {
			as__changed(svc, AS_CHANGE_CHANGED, NULL, NULL);
		}
	}
	as_account_clear(&a);
	return rc == 0 && *result == NULL
	               ? ls_error_set(err, -ENOMEM, "out of memory")
	               : rc;
}

static int
as__op_get(void *ctx, json_t *args, json_t **result, ls_error *err)
{
	as_services *svc = ctx;
	const char *key;
	bool with_secret;
	as_account a;
	int rc;

	if ((rc = as__arg_string(args, 0, "appKey", true, LS_APPKEY_MAX, &key,
	                         err)) != 0 ||
	    (rc = as__arg_bool(args, 1, "includeSecret", false, &with_secret,
	                       err)) != 0 ||
	    (rc = as_store_account_get(svc->store, key, &a, err)) != 0) {
		return rc;
	}
	*result = as__account_view(&a, with_secret);
	as_account_clear(&a);
	return *result ? 0 : ls_error_set(err, -ENOMEM, "out of memory");
}

static int
as__op_list(void *ctx, json_t *args, json_t **result, ls_error *err)
{
	as_services *svc = ctx;

	return as_store_account_list(svc->store, result, err);
}

/* changes: {privateKey?, secretKey?, isPublic?, sharedWrite?, roles?}. */
static int
as__op_update(void *ctx, json_t *args, json_t **result, ls_error *err)
{
	as_services *svc = ctx;
	json_t *changes = as__arg_json(args, 1), *v;
	const char *key, *field;
	as_account a = { 0 };
	unsigned mask = 0;
	int rc;

	if ((rc = as__arg_string(args, 0, "appKey", true, LS_APPKEY_MAX, &key,
	                         err)) != 0) {
		goto out;
	}
	if (!json_is_object(changes) || json_object_size(changes) == 0) {
		rc = ls_error_set(err, LS_EBADREQUEST,
		                  "argument 2: expected an object of changes");
		goto out;
	}
	snprintf(a.app_key, sizeof(a.app_key), "%s", key);
	json_object_foreach(changes, field, v)
	{
		const char *s = json_string_value(v);
		size_t n = s ? strlen(s) : 0;
		if (strcmp(field, "privateKey") == 0 && n > 0 &&
		    n <= AS_KEY_MAX) {
			rc = ls_password_hash(s, 0, a.private_hash);
			mask |= AS_FIELD_PRIVATE;
		} else if (strcmp(field, "secretKey") == 0 && n > 0 &&
		           n <= AS_KEY_MAX) {
			memcpy(a.secret_key, s, n + 1);
			mask |= AS_FIELD_SECRET;
		} else if (strcmp(field, "isPublic") == 0 &&
		           json_is_boolean(v)) {
			a.is_public = json_is_true(v);
			mask |= AS_FIELD_PUBLIC;
		} else if (strcmp(field, "sharedWrite") == 0 &&
		           json_is_boolean(v)) {
			a.shared_write = json_is_true(v);
			mask |= AS_FIELD_SHARED_WRITE;
		} else if (strcmp(field, "roles") == 0) {
			a.roles = json_incref(v);
			mask |= AS_FIELD_ROLES;
		} else if (strcmp(field, "history") == 0) {
			/* null: back to the gateways' defaults */
			if (!json_is_null(v)) {
				rc = as_history_validate(v, err);
				a.history = json_incref(v);
			}
			mask |= AS_FIELD_HISTORY;
		} else {
			rc = ls_error_set(
			        err, LS_EBADREQUEST,
			        "%.64s: unknown field or invalid value",
			        field);
		}
		if (rc != 0) {
			goto out;
		}
	}
	if ((rc = as_store_account_update(svc->store, &a, mask, err)) != 0) {
		goto out;
	}
	as_account_clear(&a);
	/* Its roles decide its own connections' permissions; its flags
	 * decide what other accounts' roles may grant on its streams. */
	if (mask & (AS_FIELD_PUBLIC | AS_FIELD_SHARED_WRITE)) {
		as__changed(svc, AS_CHANGE_CHANGED, NULL, NULL);
	} else if (mask & AS_FIELD_ROLES) {
		as__changed(svc, AS_CHANGE_CHANGED, key, NULL);
	}
	if ((rc = as_store_account_get(svc->store, key, &a, err)) == 0) {
		*result = as__account_view(&a, false);
		ls_info(AS__LOG, "account %s updated", key);
	}
out:
	as_account_clear(&a);
	json_decref(changes);
	return rc;
}

static int
as__op_delete(void *ctx, json_t *args, json_t **result, ls_error *err)
{
	as_services *svc = ctx;
	const char *key;
	bool pub = false, sw = false;
	ls_error inner;
	int rc;

	if ((rc = as__arg_string(args, 0, "appKey", true, LS_APPKEY_MAX, &key,
	                         err)) != 0) {
		return rc;
	}
	/* Unknown flags count as set: announcing too much is harmless. */
	if (as_store_account_flags(svc->store, key, &pub, &sw, &inner) != 0) {
		pub = sw = true;
	}
	if ((rc = as_store_account_delete(svc->store, key, err)) != 0) {
		return rc;
	}
	ls_info(AS__LOG, "account %s deleted", key);
	as__changed(svc, AS_CHANGE_DELETED, key, NULL);
	if (pub || sw) {
		/* Grants of other accounts on its streams are gone. */
		as__changed(svc, AS_CHANGE_CHANGED, NULL, NULL);
	}
	*result = json_true();
	return 0;
}

static int
as__op_set_role(void *ctx, json_t *args, json_t **result, ls_error *err)
{
	as_services *svc = ctx;
	json_t *perms = as__arg_json(args, 2);
	const char *key, *role;
	int rc;

	if ((rc = as__arg_string(args, 0, "appKey", true, LS_APPKEY_MAX, &key,
	                         err)) == 0 &&
	    (rc = as__arg_string(args, 1, "role", true, LS_ROLE_MAX, &role,
	                         err)) == 0 &&
	    (rc = as_store_role_set(svc->store, key, role, perms, err)) == 0) {
		ls_info(AS__LOG, "role %s of %s set", role, key);
		as__changed(svc, AS_CHANGE_CHANGED, key, NULL);
		*result = json_true();
	}
	json_decref(perms);
	return rc;
}

static int
as__op_delete_role(void *ctx, json_t *args, json_t **result, ls_error *err)
{
	as_services *svc = ctx;
	const char *key, *role;
	int rc;

	if ((rc = as__arg_string(args, 0, "appKey", true, LS_APPKEY_MAX, &key,
	                         err)) != 0 ||
	    (rc = as__arg_string(args, 1, "role", true, LS_ROLE_MAX, &role,
	                         err)) != 0 ||
	    (rc = as_store_role_delete(svc->store, key, role, err)) != 0) {
		return rc;
	}
	ls_info(AS__LOG, "role %s of %s deleted", role, key);
	as__changed(svc, AS_CHANGE_CHANGED, key, NULL);
	*result = json_true();
	return 0;
}

static int
as__op_reset(void *ctx, json_t *args, json_t **result, ls_error *err)
{
	as_services *svc = ctx;
	json_t *fixture = as__arg_json(args, 0);
	as_account *accounts = NULL;
	size_t n = 0;
	int rc;

	if (fixture == NULL) {
		return ls_error_set(err, LS_EBADREQUEST,
		                    "argument 1: expected the fixture JSON "
		                    "{\"accounts\": [...]}");
	}
	rc = as_fixture_parse(fixture, &accounts, &n, err);
	json_decref(fixture);
	if (rc == 0) {
		rc = as_store_reset(svc->store, accounts, n, err);
	}
	as_accounts_free(accounts, n);
	if (rc == 0) {
		ls_info(AS__LOG, "database reset to %zu accounts", n);
		as__changed(svc, AS_CHANGE_RESET, NULL, NULL);
		*result = json_integer((json_int_t)n);
	}
	return rc;
}

const bus_operation as__accounts_ops[] = {
	{ "create", as__op_create },
	{ "get", as__op_get },
	{ "list", as__op_list },
	{ "update", as__op_update },
	{ "delete", as__op_delete },
	{ "setRole", as__op_set_role },
	{ "deleteRole", as__op_delete_role },
};
const size_t as__accounts_nops =
        sizeof(as__accounts_ops) / sizeof(as__accounts_ops[0]);

const bus_operation as__db_ops[] = {
	{ "resetDatabase", as__op_reset },
};
const size_t as__db_nops = sizeof(as__db_ops) / sizeof(as__db_ops[0]);
