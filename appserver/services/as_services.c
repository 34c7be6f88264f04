/* Service tables, direct dispatch and argument helpers. */
#include "as_services_impl.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ls_crypto.h"

as_services *
as_services_new(as_store *store, ls_error *err)
{
	as_services *svc = calloc(1, sizeof(*svc));
	char password[LS_TOKEN_LEN + 1];
	int rc;

	if (svc == NULL) {
		ls_error_set(err, -ENOMEM, "out of memory");
		return NULL;
	}
	svc->store = store;
	rc = ls_random_token(password);
	if (rc == 0) {
		rc = ls_password_hash(password, 0, svc->dummy_hash);
	}
	if (rc != 0) {
		ls_error_set(err, rc, "cannot initialise the services");
		free(svc);
		return NULL;
	}
	svc->table[0] =
	        (bus_service){ "auth", as__auth_ops, as__auth_nops, svc };
	svc->table[1] = (bus_service){ "accounts", as__accounts_ops,
		                       as__accounts_nops, svc };
	svc->table[2] = (bus_service){ "db", as__db_ops, as__db_nops, svc };
	svc->issue_table[0] =
	        (bus_service){ AS__ISSUE, as__issue_ops, as__issue_nops, svc };
	return svc;
}

void
as_services_on_change(as_services *svc, as_change_fn fn, void *user)
{
	svc->on_change = fn;
	svc->on_change_user = user;
}

void
as__changed(as_services *svc, as_change_kind kind, const char *app_key,
            const char *token_hash)
{
	as_change ch = { kind, app_key, token_hash };

	if (svc->on_change != NULL) {
		svc->on_change(&ch, svc->on_change_user);
	}
}

void
as_services_destroy(as_services **svc)
{
	if (svc == NULL || *svc == NULL) {
		return;
	}
	free(*svc);
	*svc = NULL;
}

const bus_service *
as_services_table(const as_services *svc, size_t *n)
{
	*n = AS__NSERVICES;
	return svc->table;
}

const bus_service *
as_services_issue_table(const as_services *svc, size_t *n)
{
	*n = 1;
	return svc->issue_table;
}

void
as_services_limit_shared_hashing(as_services *svc, int max)
{
	svc->shared_hashing_max = max > 0 ? max : 0;
}

int
as_services_call(as_services *svc, const char *service, const char *op,
                 json_t *args, json_t **result, ls_error *err)
{
	*result = NULL;
	for (size_t i = 0; i < AS__NSERVICES + 1; i++) {
		const bus_service *s = i < AS__NSERVICES
		                               ? &svc->table[i]
		                               : &svc->issue_table[0];
		if (strcmp(s->name, service) != 0) {
			continue;
		}
		for (size_t j = 0; j < s->nops; j++) {
			if (strcmp(s->ops[j].name, op) == 0) {
				return s->ops[j].fn(s->ctx, args, result, err);
			}
		}
		return ls_error_set(err, LS_ENOSERVICE,
		                    "%s has no operation %.64s", service, op);
	}
	return ls_error_set(err, LS_ENOSERVICE, "no such service: %.64s",
	                    service);
}

int
as__arg_string(json_t *args, size_t i, const char *name, bool required,
               size_t max, const char **out, ls_error *err)
{
	json_t *v = json_array_get(args, i);
	size_t n;

	*out = NULL;
	if (v == NULL || json_is_null(v)) {
		if (required) {
			return ls_error_set(err, LS_EBADREQUEST,
			                    "argument %zu (%s) is required",
			                    i + 1, name);
		}
		return 0;
	}
	if (!json_is_string(v)) {
		return ls_error_set(err, LS_EBADREQUEST,
		                    "argument %zu (%s): expected a string",
		                    i + 1, name);
	}
	n = json_string_length(v);
	if (n == 0 || n > max || strlen(json_string_value(v)) != n) {
		return ls_error_set(
		        err, LS_EBADREQUEST,
		        "argument %zu (%s): expected 1 to %zu bytes", i + 1,
		        name, max);
	}
	*out = json_string_value(v);
	return 0;
}

int
as__arg_bool(json_t *args, size_t i, const char *name, bool dflt, bool *out,
             ls_error *err)
{
	json_t *v = json_array_get(args, i);
	const char *s = json_string_value(v);

	if (v == NULL || json_is_null(v) || (s != NULL && *s == '\0')) {
		*out = dflt;
	} else if (json_is_boolean(v)) {
		*out = json_is_true(v);
	} else if (s && (strcmp(s, "true") == 0 || strcmp(s, "false") == 0)) {
		/* The HTTP bridge passes query-string values as text. */
		*out = s[0] == 't';
	} else {
		return ls_error_set(
		        err, LS_EBADREQUEST,
		        "argument %zu (%s): expected true or false", i + 1,
		        name);
	}
	return 0;
}

int
as__authenticate(as_services *svc, const char *app_key,
                 const char *private_key, as_account *acc, ls_error *err)
{
	ls_error inner;
	int rc;

	memset(acc, 0, sizeof(*acc));
	rc = ls_valid_app_key(app_key)
	             ? as_store_account_get(svc->store, app_key, acc, &inner)
	             : LS_ENOTFOUND;
	if (rc == LS_ENOTFOUND) {
		/* Same work as a real check: no timing oracle on appKeys. */
		(void)ls_password_verify(private_key, svc->dummy_hash);
		return ls_error_set(err, LS_EAUTH, AS__AUTH_FAILED);
	}
	if (rc != 0) {
		/* Store trouble is not the caller's fault: say so. */
		return ls_error_set(err, rc, "%s", inner.text);
	}
	if (!ls_password_verify(private_key, acc->private_hash)) {
		as_account_clear(acc);
		return ls_error_set(err, LS_EAUTH, AS__AUTH_FAILED);
	}
	return 0;
}

json_t *
as__account_view(const as_account *a, bool with_secret)
{
	json_t *v = json_pack("{s:s, s:b, s:b, s:O}", "appKey", a->app_key,
	                      "isPublic", a->is_public, "sharedWrite",
	                      a->shared_write, "roles", a->roles);

	if (v != NULL && a->history != NULL) {
		json_object_set(v, "history", a->history);
	}

	if (v != NULL && with_secret &&
	    json_object_set_new(v, "secretKey", json_string(a->secret_key)) !=
	            0) {
		json_decref(v);
		return NULL;
	}
	return v;
}
