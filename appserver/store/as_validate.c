/* Validation of every stored field (docs/accounts.md) and the fixture format.
 */
#include "as_store.h"
#include "ls_proto.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

int
as_perms_validate(json_t *perms, ls_error *err)
{
	size_t i;
	json_t *p;

	if (!json_is_array(perms)) {
		return ls_error_set(err, LS_EBADREQUEST,
		                    "permissions: expected an array");
	}
	if (json_array_size(perms) > AS_PERMS_MAX) {
		return ls_error_set(err, LS_EBADREQUEST,
		                    "permissions: more than %d entries",
		                    AS_PERMS_MAX);
	}
	json_array_foreach(perms, i, p)
	{
		json_t *owner = json_object_get(p, "owner");
		json_t *stream = json_object_get(p, "stream");
		json_t *bits = json_object_get(p, "permission");

		if (!json_is_object(p)) {
			return ls_error_set(err, LS_EBADREQUEST,
			                    "permissions[%zu]: expected an "
			                    "object",
			                    i);
		}
		if (json_object_size(p) != 3 || !owner || !stream || !bits) {
			return ls_error_set(
			        err, LS_EBADREQUEST,
			        "permissions[%zu]: expected exactly "
			        "owner, stream and permission",
			        i);
		}
		if (!ls_valid_app_key(json_string_value(owner))) {
			return ls_error_set(err, LS_EBADREQUEST,
			                    "permissions[%zu].owner: invalid "
			                    "appKey",
			                    i);
		}
		if (!ls_valid_stream_pattern(json_string_value(stream))) {
			return ls_error_set(
			        err, LS_EBADREQUEST,
			        "permissions[%zu].stream: expected "
			        "[A-Za-z0-9_.-]{1,128} with an "
			        "optional trailing *",
			        i);
		}
		if (!json_is_integer(bits) || json_integer_value(bits) < 1 ||
		    json_integer_value(bits) > 3) {
			return ls_error_set(
			        err, LS_EBADREQUEST,
			        "permissions[%zu].permission: "
			        "expected 1 (write), 2 (read) or 3",
			        i);
		}
	}
	return 0;
}

int
as_roles_validate(json_t *roles, ls_error *err)
{
	const char *name;
	json_t *perms;

	if (!json_is_object(roles)) {
		return ls_error_set(err, LS_EBADREQUEST,
		                    "roles: expected an object");
	}
	if (json_object_size(roles) > AS_ROLES_MAX) {
		return ls_error_set(err, LS_EBADREQUEST,
		                    "roles: more than %d roles", AS_ROLES_MAX);
	}
	json_object_foreach(roles, name, perms)
	{
		ls_error inner;
		if (!ls_valid_role_name(name)) {
			return ls_error_set(err, LS_EBADREQUEST,
			                    "roles: invalid role name '%.70s' "
			                    "(expected [A-Za-z0-9_-]{1,64})",
			                    name);
		}
		if (as_perms_validate(perms, &inner) != 0) {
			return ls_error_set(err, LS_EBADREQUEST,
			                    "roles.%s: %s", name, inner.text);
		}
	}
	return 0;
}

static int
as__key_field(json_t *obj, const char *key, const char **out, ls_error *err)
{
	json_t *v = json_object_get(obj, key);
	size_t n;

	if (!json_is_string(v)) {
		return ls_error_set(err, LS_EBADREQUEST,
		                    "%s: expected a string", key);
	}
	n = json_string_length(v);
	if (n == 0 || n > AS_KEY_MAX || strlen(json_string_value(v)) != n) {
		return ls_error_set(err, LS_EBADREQUEST,
		                    "%s: expected 1 to %d bytes", key,
		                    AS_KEY_MAX);
	}
	*out = json_string_value(v);
	return 0;
}

int
as_history_validate(json_t *history, ls_error *err)
{
	json_t *v;
	const char *key;

	if (!json_is_object(history)) {
		return ls_error_set(err, LS_EBADREQUEST,
		                    "history: expected an object {size, ttl}");
	}
	json_object_foreach(history, key, v)
	{
		if (strcmp(key, "size") == 0) {
			if (!json_is_integer(v) || json_integer_value(v) < 0 ||
			    json_integer_value(v) > LS_HISTORY_SIZE_MAX) {
				return ls_error_set(
				        err, LS_EBADREQUEST,
				        "history.size: expected an "
				        "integer 0..%d",
				        LS_HISTORY_SIZE_MAX);
			}
		} else if (strcmp(key, "ttl") == 0) {
			if (!json_is_integer(v) || json_integer_value(v) < 1 ||
			    json_integer_value(v) > LS_HISTORY_TTL_MAX) {
				return ls_error_set(err, LS_EBADREQUEST,
				                    "history.ttl: expected an "
				                    "integer 1..%d (seconds)",
				                    LS_HISTORY_TTL_MAX);
			}
		} else {
			return ls_error_set(err, LS_EBADREQUEST,
			                    "history: unknown key '%.64s'",
			                    key);
		}
	}
	return 0;
}

int
as_account_from_json(json_t *obj, as_account *out, ls_error *err)
{
	static const char *known[] = { "appKey",   "privateKey",  "secretKey",
		                       "isPublic", "sharedWrite", "roles",
		                       "history" };
	const char *app_key, *private_key = NULL, *secret_key = NULL, *key;
	json_t *v, *roles;
	int rc;

	memset(out, 0, sizeof(*out));
	if (!json_is_object(obj)) {
		return ls_error_set(err, LS_EBADREQUEST,
		                    "account: expected an object");
	}
	json_object_foreach(obj, key, v)
	{
		size_t i = 0;
		while (i < sizeof(known) / sizeof(known[0]) &&
		       strcmp(key, known[i]) != 0) {
			i++;
		}
		if (i == sizeof(known) / sizeof(known[0])) {
			return ls_error_set(err, LS_EBADREQUEST,
			                    "account: unknown key '%.64s'",
			                    key);
		}
	}
	app_key = json_string_value(json_object_get(obj, "appKey"));
	if (!ls_valid_app_key(app_key)) {
		return ls_error_set(err, LS_EBADREQUEST,
		                    "appKey: expected [A-Za-z0-9_-]{1,64}");
	}
	if ((rc = as__key_field(obj, "privateKey", &private_key, err)) != 0 ||
	    (rc = as__key_field(obj, "secretKey", &secret_key, err)) != 0) {
		return rc;
	}
	v = json_object_get(obj, "isPublic");
	if (v && !json_is_boolean(v)) {
		return ls_error_set(err, LS_EBADREQUEST,
		                    "isPublic: expected a boolean");
	}
	out->is_public = json_is_true(v);
	v = json_object_get(obj, "sharedWrite");
	if (v && !json_is_boolean(v)) {
		return ls_error_set(err, LS_EBADREQUEST,
		                    "sharedWrite: expected a boolean");
	}
	out->shared_write = json_is_true(v);
	roles = json_object_get(obj, "roles");
	if (roles == NULL) {
		roles = json_object();
	} else if ((rc = as_roles_validate(roles, err)) != 0) {
		return rc;
	} else {
		roles = json_deep_copy(roles);
	}
	if (roles == NULL) {
		return ls_error_set(err, -ENOMEM, "out of memory");
	}
	out->roles = roles;
	v = json_object_get(obj, "history");
	if (v != NULL && !json_is_null(v)) {
		if ((rc = as_history_validate(v, err)) != 0) {
			json_decref(out->roles);
			out->roles = NULL;
			return rc;
		}
		out->history = json_deep_copy(v);
	}
	strcpy(out->app_key, app_key);
	strcpy(out->secret_key, secret_key);
	rc = ls_password_hash(private_key, 0, out->private_hash);
	if (rc != 0) {
		as_account_clear(out);
		return ls_error_set(err, rc, "cannot hash the private key");
	}
	return 0;
}

void
as_accounts_free(as_account *accounts, size_t n)
{
	for (size_t i = 0; accounts && i < n; i++) {
		as_account_clear(&accounts[i]);
	}
	free(accounts);
}

int
as_fixture_parse(json_t *fixture, as_account **out, size_t *n, ls_error *err)
{
	json_t *list = json_object_get(fixture, "accounts");
	as_account *accounts = NULL;
	size_t count, i;
	int rc = 0;

	*out = NULL;
	*n = 0;
	if (!json_is_object(fixture) || !json_is_array(list) ||
	    json_object_size(fixture) != 1) {
		return ls_error_set(err, LS_EBADREQUEST,
		                    "fixture: expected {\"accounts\": [...]}");
	}
	count = json_array_size(list);
	if (count > 100000) {
		return ls_error_set(err, LS_EBADREQUEST,
		                    "fixture: too many accounts");
	}
	accounts = calloc(count ? count : 1, sizeof(*accounts));
	if (accounts == NULL) {
		return ls_error_set(err, -ENOMEM, "out of memory");
	}
	for (i = 0; i < count; i++) {
		ls_error inner;
		rc = as_account_from_json(json_array_get(list, i),
		                          &accounts[i], &inner);
		if (rc != 0) {
			ls_error_set(err, rc, "accounts[%zu]: %s", i,
			             inner.text);
			goto fail;
		}
		for (size_t j = 0; j < i; j++) {
			if (strcmp(accounts[j].app_key, accounts[i].app_key) ==
			    0) {
				rc = ls_error_set(err, LS_EBADREQUEST,
				                  "accounts[%zu]: duplicate "
				                  "appKey %s",
				                  i, accounts[i].app_key);
				i++; /* accounts[i] is filled: free it too */
				goto fail;
			}
		}
	}
	*out = accounts;
	*n = count;
	return 0;

fail:
	as_accounts_free(accounts, i);
	return rc;
}

int
as_ip_normalize(const char *text, char out[AS_IP_MAX])
{
	unsigned char addr[16];

	if (text == NULL || strlen(text) >= AS_IP_MAX) {
		return -EINVAL;
	}
	if (inet_pton(AF_INET, text, addr) == 1) {
		return inet_ntop(AF_INET, addr, out, AS_IP_MAX) ? 0 : -EINVAL;
	}
	if (inet_pton(AF_INET6, text, addr) != 1) {
		return -EINVAL;
	}
	/* ::ffff:a.b.c.d is the IPv4 peer seen by a dual-stack socket. */
	static const unsigned char mapped[12] = { 0, 0, 0, 0, 0,    0,
		                                  0, 0, 0, 0, 0xff, 0xff };
	if (memcmp(addr, mapped, sizeof(mapped)) == 0) {
		return inet_ntop(AF_INET, addr + 12, out, AS_IP_MAX) ? 0
		                                                     : -EINVAL;
	}
	return inet_ntop(AF_INET6, addr, out, AS_IP_MAX) ? 0 : -EINVAL;
}
