/*
 * The auth service (docs/bus.md): issue, validate and revoke tokens, check
 * web-token signatures, resolve role permissions (docs/accounts.md).
 */
#include "as_services_impl.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ls_crypto.h"
#include "ls_log.h"
#include "ls_time.h"

#define AS__CONNECTION_ID_MAX 128
#define AS__SIGNATURE_MAX     128

/* An appKey fit for a log line (no control characters from peers). */
static const char *
as__loggable(const char *app_key)
{
	return ls_valid_app_key(app_key) ? app_key : "(invalid appKey)";
}

static bool
as__empty_string(json_t *v)
{
	return json_is_string(v) && json_string_length(v) == 0;
}

/* roles: an array of names, or "r1|r2" / "r1,r2" text from HTTP. */
static int
as__arg_roles(json_t *args, size_t i, const as_account *acc, json_t **out,
              ls_error *err)
{
	json_t *v = json_array_get(args, i), *names = NULL, *roles;
	size_t k;
	json_t *name;
	int rc = 0;

	*out = NULL;
	if (json_is_string(v)) {
		char *text = strdup(json_string_value(v)), *save = NULL, *tok;
		names = json_array();
		if (text == NULL || names == NULL) {
			free(text);
			json_decref(names);
			return ls_error_set(err, -ENOMEM, "out of memory");
		}
		for (tok = strtok_r(text, "|,", &save); tok;
		     tok = strtok_r(NULL, "|,", &save)) {
			json_array_append_new(names, json_string(tok));
		}
		free(text);
	} else if (json_is_array(v)) {
		names = json_incref(v);
	} else {
		return ls_error_set(
		        err, LS_EBADREQUEST,
		        "argument %zu (roles): expected an array of "
		        "role names",
		        i + 1);
	}
	/*
	 * A token without roles would grant nothing; asking for one is a
	 * mistake worth reporting rather than a silently useless token.
	 */
	if (json_array_size(names) == 0) {
		json_decref(names);
		return ls_error_set(err, LS_EBADREQUEST,
		                    "roles: at least one role is required");
	}
	if (json_array_size(names) > AS_TOKEN_ROLES_MAX) {
		json_decref(names);
		return ls_error_set(err, LS_EBADREQUEST,
		                    "roles: more than %d roles",
		                    AS_TOKEN_ROLES_MAX);
	}
	roles = json_array();
	json_array_foreach(names, k, name)
	{
		const char *r = json_string_value(name);
		bool dup = false;
		size_t j;
		json_t *seen;
		if (!ls_valid_role_name(r)) {
			rc = ls_error_set(err, LS_EBADREQUEST,
			                  "roles[%zu]: invalid role name", k);
			break;
		}
		if (json_object_get(acc->roles, r) == NULL) {
			rc = ls_error_set(err, LS_EBADREQUEST,
			                  "unknown role '%s' for account %s",
			                  r, acc->app_key);
			break;
		}
		json_array_foreach(roles, j, seen)
		{
			dup = dup || strcmp(json_string_value(seen), r) == 0;
		}
		if (!dup &&
		    json_array_append_new(roles, json_string(r)) != 0) {
			rc = ls_error_set(err, -ENOMEM, "out of memory");
			break;
		}
	}
	json_decref(names);
	if (rc != 0) {
		json_decref(roles);
		return rc;
	}
	*out = roles;
	return 0;
}

/*
 * The (publicKey, privateKey) pair that opens every operation acting as
 * an account, parsed in one place so their limits and errors match.
 */
static int
as__arg_keys(json_t *args, const char **app_key, const char **private_key,
             ls_error *err)
{
	int rc = as__arg_string(args, 0, "publicKey", true, LS_APPKEY_MAX,
	                        app_key, err);

	if (rc == 0) {
		rc = as__arg_string(args, 1, "privateKey", true, AS_KEY_MAX,
		                    private_key, err);
	}
	return rc;
}

/* ttl: seconds as an integer or decimal text; missing: the default. */
static int
as__arg_ttl(json_t *args, size_t i, long *out, ls_error *err)
{
	json_t *v = json_array_get(args, i);
	long ttl = LS_TTL_DEFAULT;

	if (json_is_integer(v)) {
		json_int_t n = json_integer_value(v);
		ttl = n < 0 || n > LS_TTL_MAX ? -1 : (long)n;
	} else if (json_is_string(v) && json_string_length(v) > 0) {
		char *end;
		errno = 0;
		ttl = strtol(json_string_value(v), &end, 10);
		if (*end != '\0' || errno != 0) {
			ttl = -1;
		}
	} else if (v != NULL && !json_is_null(v) &&
	           !(json_is_string(v) && json_string_length(v) == 0)) {
		ttl = -1; /* "" (an empty form field) is the default */
	}
	if (ttl < LS_TTL_MIN || ttl > LS_TTL_MAX) {
		return ls_error_set(err, LS_EBADREQUEST,
		                    "ttl: expected %d to %d seconds",
		                    LS_TTL_MIN, LS_TTL_MAX);
	}
	*out = ttl;
	return 0;
}

static int
as__op_generate_token(void *ctx, json_t *args, json_t **result, ls_error *err)
{
	as_services *svc = ctx;
	const char *app_key, *private_key, *ip_text = NULL;
	as_account acc = { 0 };
	as_token t = { 0 };
	char value[LS_TOKEN_LEN + 1], expires[LS_RFC3339_LEN + 1];
	json_t *ip_arg = json_array_get(args, 4);
	long ttl = 0;
	bool web;
	int rc;

	if ((rc = as__arg_keys(args, &app_key, &private_key, err)) != 0 ||
	    (rc = as__arg_ttl(args, 3, &ttl, err)) != 0 ||
	    (rc = as__arg_bool(args, 5, "webToken", false, &web, err)) != 0) {
		return rc;
	}
	/* An empty ipAddress (an empty form field) means "not bound". */
	if (!as__empty_string(ip_arg) &&
	    (rc = as__arg_string(args, 4, "ipAddress", false, AS_IP_MAX * 2,
	                         &ip_text, err)) != 0) {
		return rc;
	}
	if (ip_text != NULL && as_ip_normalize(ip_text, t.ip) != 0) {
		return ls_error_set(
		        err, LS_EBADREQUEST,
		        "ipAddress: '%.64s' is not an IPv4 or IPv6 "
		        "address",
		        ip_text);
	}
	if ((rc = as__authenticate(svc, app_key, private_key, &acc, err)) !=
	    0) {
		/* A brute force must not flood the log: a summary line per
		 * interval (docs/security.md). */
		static ls_log_limit lim = LS_LOG_LIMIT_INIT(10000, 5);
		ls_log_ratelimited(&lim, LS_LOG_INFO, AS__LOG,
		                   "generateToken refused for '%s': %s",
		                   as__loggable(app_key),
		                   err ? err->text : "");
		return rc;
	}
	if ((rc = as__arg_roles(args, 2, &acc, &t.roles, err)) != 0) {
		goto out;
	}
	snprintf(t.app_key, sizeof(t.app_key), "%s", acc.app_key);
	t.web = web;
	t.expires_ms = ls_wall_ms() + ttl * 1000;
	/* A hash collision of 256 random bits means a broken generator. */
	if ((rc = ls_random_token(value)) != 0) {
		rc = ls_error_set(err, LS_ESERVER, "cannot generate a token");
		goto out;
	}
	ls_sha256_hex(value, LS_TOKEN_LEN, t.hash);
	if ((rc = as_store_token_put(svc->store, &t, err)) != 0) {
		goto out;
	}
	ls_format_rfc3339(t.expires_ms, expires);
	*result = json_pack("{s:s, s:s, s:O, s:b, s:o}", "value", value,
	                    "expiresAt", expires, "roles", t.roles, "webToken",
	                    t.web, "ipAddress",
	                    t.ip[0] ? json_string(t.ip) : json_null());
	if (*result == NULL) {
		rc = ls_error_set(err, -ENOMEM, "out of memory");
		goto out;
	}
	ls_info(AS__LOG, "token issued for %s (ttl %ld s%s%s%s)", t.app_key,
	        ttl, t.ip[0] ? ", bound to " : "", t.ip, t.web ? ", web" : "");
out:
	memset(value, 0, sizeof(value));
	as_token_clear(&t);
	as_account_clear(&acc);
	return rc;
}

/*
 * Look up a token for appKey: LS_EAUTH for every reason it is not usable
 * (malformed, unknown, expired, other account), store errors as they are.
 * With acc, the account's public facts come in the same store read (their
 * roles are shared: read-only). One function for both reads so a
 * validation and a token operation never disagree on what is usable.
 */
static int
as__token_read(as_services *svc, const char *app_key, const char *value,
               as_token *t, as_account *acc, ls_error *err)
{
	char hash[LS_SHA256_HEX_LEN + 1];
	ls_error inner;
	int rc;

	memset(t, 0, sizeof(*t));
	if (acc != NULL) {
		memset(acc, 0, sizeof(*acc));
	}
	/* app_key NULL: the token alone names its account (the HTTP
	 * endpoints' Bearer tokens, docs/protocol.md). */
	if ((app_key != NULL && !ls_valid_app_key(app_key)) ||
	    strlen(value) != LS_TOKEN_LEN) {
		return ls_error_set(err, LS_EAUTH, AS__AUTH_FAILED);
	}
	ls_sha256_hex(value, LS_TOKEN_LEN, hash);
	if (acc != NULL) {
		rc = as_store_token_lookup(svc->store, hash, ls_wall_ms(), t,
		                           acc, &inner);
	} else {
		rc = as_store_token_get(svc->store, hash, ls_wall_ms(), t,
		                        &inner);
	}
	if (rc == LS_ENOTFOUND) {
		return ls_error_set(err, LS_EAUTH, AS__AUTH_FAILED);
	}
	if (rc != 0) {
		return ls_error_set(err, rc, "%s", inner.text);
	}
	if (app_key != NULL && strcmp(t->app_key, app_key) != 0) {
		as_token_clear(t);
		if (acc != NULL) {
			as_account_clear(acc);
		}
		return ls_error_set(err, LS_EAUTH, AS__AUTH_FAILED);
	}
	return 0;
}

/*
 * Facts about another account, read once per resolution (an unknown
 * owner, or one the store cannot read now, allows nothing).
 */
static void
as__owner_flags(as_services *svc, json_t *cache, const char *owner,
                bool *is_public, bool *shared_write)
{
	json_t *c = json_object_get(cache, owner);

	if (c == NULL) {
		ls_error e;
		bool pub = false, sw = false;
		if (as_store_account_flags(svc->store, owner, &pub, &sw, &e) !=
		    0) {
			pub = sw = false;
		}
		c = json_integer((pub ? LS_PERM_READ : 0) |
		                 (sw ? LS_PERM_WRITE : 0));
		json_object_set_new(cache, owner, c);
	}
	*is_public = (json_integer_value(c) & LS_PERM_READ) != 0;
	*shared_write = (json_integer_value(c) & LS_PERM_WRITE) != 0;
}

/* Set key to value (stolen, also on failure); false when either is
 * missing. */
static bool
as__set(json_t *obj, const char *key, json_t *value)
{
	return json_object_set_new_nocheck(obj, key, value) == 0;
}

/*
 * {"owner", "stream", "permission"} (new reference, NULL when out of
 * memory). Built by hand: json_pack's format parsing was a noticeable
 * part of a validation. The texts come from validated roles.
 */
static json_t *
as__perm_entry(const char *owner, const char *stream, int bits)
{
	json_t *e = json_object();

	if (!as__set(e, "owner", json_string_nocheck(owner)) ||
	    !as__set(e, "stream", json_string_nocheck(stream)) ||
	    !as__set(e, "permission", json_integer(bits))) {
		json_decref(e);
		return NULL;
	}
	return e;
}

/*
 * The union of the permissions of the token's roles, with the cross-
 * account rules of docs/accounts.md applied: read on another account's stream
 * only when that account is public, write only when it has sharedWrite. Roles
 * and flags are read now, so a changed role applies to live tokens too.
 * acc->roles and role_names may be shared with other threads: only read.
 */
static json_t *
as__resolve(as_services *svc, const as_account *acc, json_t *role_names)
{
	json_t *out = json_array(), *index = json_object();
	json_t *cache = json_object(), *role;
	size_t i;

	if (out == NULL || index == NULL || cache == NULL) {
		goto fail;
	}
	json_array_foreach(role_names, i, role)
	{
		json_t *perms =
		        json_object_get(acc->roles, json_string_value(role));
		json_t *p;
		size_t j;
		json_array_foreach(perms, j, p)
		{
			const char *owner =
			        json_string_value(json_object_get(p, "owner"));
			const char *stream = json_string_value(
			        json_object_get(p, "stream"));
			int bits = (int)json_integer_value(
			        json_object_get(p, "permission"));
			char key[LS_APPKEY_MAX + LS_STREAM_MAX + 4];
			json_t *have;
			if (owner == NULL || stream == NULL) {
				continue;
			}
			if (strcmp(owner, acc->app_key) != 0) {
				/* The one cross-account rule, bit by bit. */
				bool pub, sw;
				as__owner_flags(svc, cache, owner, &pub, &sw);
				if (!ls_perm_grant_allowed(acc->app_key, owner,
				                           LS_PERM_READ, pub,
				                           sw)) {
					bits &= ~LS_PERM_READ;
				}
				if (!ls_perm_grant_allowed(acc->app_key, owner,
				                           LS_PERM_WRITE, pub,
				                           sw)) {
					bits &= ~LS_PERM_WRITE;
				}
			}
			if (bits == 0) {
				continue;
			}
			snprintf(key, sizeof(key), "%s:%s", owner, stream);
			have = json_object_get(index, key);
			if (have != NULL) {
				json_t *entry = json_array_get(
				        out, (size_t)json_integer_value(have));
				json_int_t old = json_integer_value(
				        json_object_get(entry, "permission"));
				json_object_set_new(entry, "permission",
				                    json_integer(old | bits));
				continue;
			}
			json_object_set_new(
			        index, key,
			        json_integer(
			                (json_int_t)json_array_size(out)));
			json_array_append_new(
			        out, as__perm_entry(owner, stream, bits));
		}
	}
	json_decref(index);
	json_decref(cache);
	return out;

fail:
	json_decref(out);
	json_decref(index);
	json_decref(cache);
	return NULL;
}

/*
 * The history overrides ("history" in the account document) of every owner
 * the permissions name, so the gateway knows the settings of the streams
 * it publishes to without asking: {"<owner>": {"size", "ttl"}}. Owners
 * without one are left out (the gateway's defaults apply). A store that
 * cannot be read now leaves the owner out too: the defaults are a safe
 * answer, a refused validation would not be.
 */
static json_t *
as__history_of(as_services *svc, json_t *perms)
{
	json_t *out = json_object(), *p;
	size_t i;

	json_array_foreach(perms, i, p)
	{
		const char *owner =
		        json_string_value(json_object_get(p, "owner"));
		json_t *h = NULL;
		ls_error e;
		if (out == NULL || owner == NULL ||
		    json_object_get(out, owner) != NULL) {
			continue;
		}
		if (as_store_account_history(svc->store, owner, &h, &e) == 0 &&
		    h != NULL) {
			json_object_set_new(out, owner, h);
		}
	}
	return out;
}

static int
as__op_validate_token(void *ctx, json_t *args, json_t **result, ls_error *err)
{
	as_services *svc = ctx;
	const char *app_key, *value, *client_ip = NULL;
	char ip[AS_IP_MAX], expires[LS_RFC3339_LEN + 1];
	as_token t;
	as_account acc;
	json_t *perms, *res;
	int rc;

	/* appKey "" or null: whichever account the token belongs to. */
	app_key = NULL;
	if ((!as__empty_string(json_array_get(args, 0)) &&
	     (rc = as__arg_string(args, 0, "appKey", true, AS_KEY_MAX,
	                          &app_key, err)) != 0) ||
	    (rc = as__arg_string(args, 1, "token", true, AS_KEY_MAX, &value,
	                         err)) != 0 ||
	    (!as__empty_string(json_array_get(args, 2)) &&
	     (rc = as__arg_string(args, 2, "clientIp", false, AS_IP_MAX * 2,
	                          &client_ip, err)) != 0)) {
		/* clientIp "" or null: unknown peer, fine for unbound tokens
		 */
		return rc;
	}
	if ((rc = as__token_read(svc, app_key, value, &t, &acc, err)) != 0) {
		ls_debug(AS__LOG,
		         "validateToken for '%s': unknown, "
		         "expired or foreign token",
		         app_key ? as__loggable(app_key) : "(the token's)");
		return rc;
	}
	if (t.ip[0] != '\0' &&
	    (client_ip == NULL || as_ip_normalize(client_ip, ip) != 0 ||
	     strcmp(ip, t.ip) != 0)) {
		ls_info(AS__LOG,
		        "validateToken for %s: address %s is not "
		        "the bound one",
		        t.app_key,
		        client_ip == NULL                     ? "(none)"
		        : as_ip_normalize(client_ip, ip) == 0 ? ip
		                                              : "(invalid)");
		rc = ls_error_set(err, LS_EAUTH, AS__AUTH_FAILED);
		goto out;
	}
	perms = as__resolve(svc, &acc, t.roles);
	ls_format_rfc3339(t.expires_ms, expires);
	/*
	 * Keys in the order clients have always seen. t.roles is shared
	 * (read-only): the caller gets its own copy.
	 */
	res = json_object();
	if (perms == NULL ||
	    !as__set(res, "appKey", json_string_nocheck(t.app_key)) ||
	    !as__set(res, "roles", json_deep_copy(t.roles)) ||
	    !as__set(res, "permissions", json_incref(perms)) ||
	    !as__set(res, "expiresAt", json_string_nocheck(expires)) ||
	    !as__set(res, "webToken", json_boolean(t.web)) ||
	    !as__set(res, "ipAddress",
	             t.ip[0] ? json_string_nocheck(t.ip) : json_null()) ||
	    !as__set(res, "history", as__history_of(svc, perms))) {
		json_decref(res);
		res = NULL;
		rc = ls_error_set(err, -ENOMEM, "out of memory");
	}
	json_decref(perms);
	*result = res;
out:
	as_account_clear(&acc);
	as_token_clear(&t);
	return rc;
}

static int
as__op_validate_web_token(void *ctx, json_t *args, json_t **result,
                          ls_error *err)
{
	as_services *svc = ctx;
	const char *app_key, *value, *conn_id, *signature;
	char data[LS_APPKEY_MAX + LS_TOKEN_LEN + AS__CONNECTION_ID_MAX + 3];
	char want[LS_SHA256_HEX_LEN + 1], got[AS__SIGNATURE_MAX + 1];
	as_token t;
	as_account acc = { 0 };
	ls_error inner;
	bool ok = false;
	size_t n;
	int rc;

	if ((rc = as__arg_string(args, 0, "appKey", true, AS_KEY_MAX, &app_key,
	                         err)) != 0 ||
	    (rc = as__arg_string(args, 1, "token", true, AS_KEY_MAX, &value,
	                         err)) != 0 ||
	    (rc = as__arg_string(args, 2, "connectionId", true,
	                         AS__CONNECTION_ID_MAX, &conn_id, err)) != 0 ||
	    (rc = as__arg_string(args, 3, "signature", true, AS__SIGNATURE_MAX,
	                         &signature, err)) != 0) {
		return rc;
	}
	rc = as__token_read(svc, app_key, value, &t, NULL, &inner);
	if (rc == LS_EAUTH) {
		/* An unusable token simply does not verify. */
		*result = json_false();
		return 0;
	}
	if (rc != 0) {
		return ls_error_set(err, rc, "%s", inner.text);
	}
	rc = as_store_account_get(svc->store, app_key, &acc, &inner);
	if (rc != 0 && rc != LS_ENOTFOUND) {
		rc = ls_error_set(err, rc, "%s", inner.text);
		goto out;
	}
	if (rc == 0 && t.web) {
		snprintf(data, sizeof(data), "%s:%s:%s", app_key, value,
		         conn_id);
		ls_hmac_sha256_hex(acc.secret_key, strlen(acc.secret_key),
		                   data, strlen(data), want);
		/* Hex digits compare case-insensitively. */
		n = strlen(signature);
		for (size_t i = 0; i < n; i++) {
			got[i] = (char)tolower((unsigned char)signature[i]);
		}
		got[n] = '\0';
		ok = ls_ct_streq(got, want);
	}
	rc = 0;
	*result = json_boolean(ok);
	if (!ok) {
		static ls_log_limit lim = LS_LOG_LIMIT_INIT(10000, 5);
		ls_log_ratelimited(&lim, LS_LOG_INFO, AS__LOG,
		                   "web-token signature refused for %s",
		                   as__loggable(app_key));
	}
out:
	as_account_clear(&acc);
	as_token_clear(&t);
	return rc;
}

static int
as__op_revoke_token(void *ctx, json_t *args, json_t **result, ls_error *err)
{
	as_services *svc = ctx;
	const char *app_key, *private_key, *value;
	char hash[LS_SHA256_HEX_LEN + 1];
	as_account acc;
	int rc;

	if ((rc = as__arg_keys(args, &app_key, &private_key, err)) != 0 ||
	    (rc = as__arg_string(args, 2, "token", true, AS_KEY_MAX, &value,
	                         err)) != 0) {
		return rc;
	}
	if ((rc = as__authenticate(svc, app_key, private_key, &acc, err)) !=
	    0) {
		return rc;
	}
	as_account_clear(&acc);
	ls_sha256_hex(value, strlen(value), hash);
	rc = as_store_token_delete(svc->store, app_key, hash, err);
	if (rc == LS_ENOTFOUND) {
		return ls_error_set(err, rc, "no such token for %s", app_key);
	}
	if (rc == 0) {
		*result = json_true();
		ls_info(AS__LOG, "token of %s revoked", app_key);
		as__changed(svc, AS_CHANGE_REVOKED, app_key, hash);
	}
	return rc;
}

/*
 * Key hashing on the workers that also validate tokens: bounded, and
 * refused at once (not queued) when the bound is reached, so validation
 * always has a worker (docs/architecture.md). The gateway's token
 * endpoint uses auth.issue, which has workers of its own.
 */
static int
as__shared_hashing(as_services *svc, bus_op_fn fn, json_t *args,
                   json_t **result, ls_error *err)
{
	int rc;

	if (svc->shared_hashing_max == 0) {
		return fn(svc, args, result, err);
	}
	if (atomic_fetch_add(&svc->shared_hashing, 1) >=
	    svc->shared_hashing_max) {
		atomic_fetch_sub(&svc->shared_hashing, 1);
		return ls_error_set(err, LS_EUNAVAILABLE,
		                    "token issuing is busy; retry later");
	}
	rc = fn(svc, args, result, err);
	atomic_fetch_sub(&svc->shared_hashing, 1);
	return rc;
}

static int
as__op_generate_token_shared(void *ctx, json_t *args, json_t **result,
                             ls_error *err)
{
	return as__shared_hashing(ctx, as__op_generate_token, args, result,
	                          err);
}

static int
as__op_revoke_token_shared(void *ctx, json_t *args, json_t **result,
                           ls_error *err)
{
	return as__shared_hashing(ctx, as__op_revoke_token, args, result, err);
}

const bus_operation as__auth_ops[] = {
	{ "generateToken", as__op_generate_token_shared },
	{ "validateToken", as__op_validate_token },
	{ "validateWebToken", as__op_validate_web_token },
	{ "revokeToken", as__op_revoke_token_shared },
};
const size_t as__auth_nops = sizeof(as__auth_ops) / sizeof(as__auth_ops[0]);

const bus_operation as__issue_ops[] = {
	{ "generateToken", as__op_generate_token },
	{ "revokeToken", as__op_revoke_token },
};
const size_t as__issue_nops = sizeof(as__issue_ops) / sizeof(as__issue_ops[0]);
