/*
 * The auth, accounts and db services on a real SQLite file loaded with
 * the reference accounts (tests/fixtures/accounts.json), called exactly
 * as a bus worker calls them.
 */
#include <errno.h>
#include <pthread.h>
#include <time.h>

#include "as_services.h"
#include "as_store.h"
#include "as_test_util.h"
#include "ls_crypto.h"
#include "ls_test.h"
#include "ls_time.h"

static as_store *store;
static as_services *svc;
static char db_path[512];

/* A fresh store with the reference accounts, and the services on it. */
static void
setup(const char *name)
{
	char uri[600];
	json_t *res = NULL, *args;
	ls_error err;

	ast_quiet();
	as_services_destroy(&svc);
	as_store_close(&store);
	snprintf(db_path, sizeof(db_path), "%s/%s.db", ast_tmpdir(), name);
	snprintf(uri, sizeof(uri), "sqlite:%s", db_path);
	store = as_store_open(uri, &err);
	if (store == NULL) {
		printf("# %s\n", err.text);
		exit(1);
	}
	svc = as_services_new(store, &err);
	args = json_pack("[o]", ast_fixture());
	if (as_services_call(svc, "db", "resetDatabase", args, &res, &err) !=
	    0) {
		printf("# reset: %s\n", err.text);
		exit(1);
	}
	json_decref(args);
	json_decref(res);
}

/* Call service.op with args given as JSON text; returns the status. */
static int
call(const char *service, const char *op, const char *args_json,
     json_t **result, ls_error *err)
{
	json_error_t jerr;
	json_t *args = json_loads(args_json, 0, &jerr);
	int rc;

	if (args == NULL) {
		printf("# bad test JSON %s: %s\n", args_json, jerr.text);
		exit(1);
	}
	*result = NULL;
	rc = as_services_call(svc, service, op, args, result, err);
	json_decref(args);
	return rc;
}

/* Issue a token; returns its value (static buffer) or NULL. */
static const char *
issue(const char *args_json, json_t **result)
{
	static char value[128];
	ls_error err;
	json_t *res;

	if (call("auth", "generateToken", args_json, &res, &err) != 0) {
		printf("# generateToken %s: %s\n", args_json, err.text);
		return NULL;
	}
	snprintf(value, sizeof(value), "%s",
	         json_string_value(json_object_get(res, "value")));
	if (result) {
		*result = res;
	} else {
		json_decref(res);
	}
	return value;
}

static int
validate(const char *app_key, const char *token, const char *ip,
         json_t **result, ls_error *err)
{
	json_t *args = json_pack("[s,s,s?]", app_key, token, ip);
	int rc;

	*result = NULL;
	rc = as_services_call(svc, "auth", "validateToken", args, result, err);
	json_decref(args);
	return rc;
}

/* Permission bits granted for owner/stream in a validateToken result. */
static int
perm_of(json_t *res, const char *owner, const char *stream)
{
	json_t *p;
	size_t i;

	json_array_foreach(json_object_get(res, "permissions"), i, p)
	{
		if (strcmp(json_string_value(json_object_get(p, "owner")),
		           owner) == 0 &&
		    strcmp(json_string_value(json_object_get(p, "stream")),
		           stream) == 0) {
			return (int)json_integer_value(
			        json_object_get(p, "permission"));
		}
	}
	return 0;
}

LS_TEST(generate_and_validate_token)
{
	json_t *issued = NULL, *res = NULL;
	const char *tok;
	int64_t expires = 0, now;
	ls_error err;

	setup("generate");
	now = ls_wall_ms();
	tok = issue("[\"svc1\", \"svc1_private\", [\"public\"]]", &issued);
	LS_CHECK(tok != NULL);
	if (tok == NULL) {
		return;
	}
	LS_CHECK_INT(strlen(tok), LS_TOKEN_LEN);
	LS_CHECK(strspn(tok, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuv"
	                     "wxyz0123456789-_") == LS_TOKEN_LEN);
	LS_CHECK_INT(ls_parse_rfc3339(json_string_value(json_object_get(
	                                      issued, "expiresAt")),
	                              &expires),
	             0);
	/* Default TTL: one hour. */
	LS_CHECK(expires >= now + 3599000 && expires <= now + 3601000 + 5000);
	LS_CHECK(json_is_false(json_object_get(issued, "webToken")));
	LS_CHECK(json_is_null(json_object_get(issued, "ipAddress")));
	LS_CHECK_STR(json_string_value(json_array_get(
	                     json_object_get(issued, "roles"), 0)),
	             "public");

	LS_CHECK_INT(validate("svc1", tok, "127.0.0.1", &res, &err), 0);
	LS_CHECK_STR(json_string_value(json_object_get(res, "appKey")),
	             "svc1");
	LS_CHECK_INT(json_array_size(json_object_get(res, "permissions")), 1);
	LS_CHECK_INT(perm_of(res, "svc1", "weather"), 2);
	LS_CHECK(json_equal(json_object_get(res, "expiresAt"),
	                    json_object_get(issued, "expiresAt")));
	json_decref(res);
	json_decref(issued);

	/* Empty form fields mean "default": ttl, ipAddress, webToken. */
	tok = issue("[\"svc1\", \"svc1_private\", \"public\", \"\", \"\", "
	            "\"\"]",
	            &issued);
	LS_CHECK(tok != NULL);
	LS_CHECK(json_is_false(json_object_get(issued, "webToken")));
	json_decref(issued);
	if (tok != NULL) {
		/* An unknown peer ("") is fine for an unbound token. */
		LS_CHECK_INT(validate("svc1", tok, "", &res, &err), 0);
		json_decref(res);
	}

	/* Roles as text (HTTP form) and a TTL as text. */
	tok = issue("[\"svc1\", \"svc1_private\", \"public|publisher\", "
	            "\"60\", \"\", \"false\"]",
	            &issued);
	LS_CHECK(tok != NULL);
	LS_CHECK_INT(json_array_size(json_object_get(issued, "roles")), 2);
	LS_CHECK(json_is_null(json_object_get(issued, "ipAddress")));
	json_decref(issued);
	if (tok != NULL) {
		LS_CHECK_INT(validate("svc1", tok, NULL, &res, &err), 0);
		LS_CHECK_INT(perm_of(res, "svc1", "weather"), 3);
		json_decref(res);
	}
}

LS_TEST(generate_token_refusals)
{
	json_t *res;
	ls_error err;
	char wrong_account[LS_ERROR_TEXT_MAX];

	setup("refusals");
	LS_CHECK_INT(call("auth", "generateToken",
	                  "[\"acc1\", \"svc1_private\", [\"public\"]]", &res,
	                  &err),
	             LS_EAUTH);
	LS_CHECK_STR(err.text, "authentication failed");
	/* Unknown account: the very same answer. */
	LS_CHECK_INT(call("auth", "generateToken",
	                  "[\"nobody\", \"svc1_private\", [\"public\"]]", &res,
	                  &err),
	             LS_EAUTH);
	snprintf(wrong_account, sizeof(wrong_account), "%s", err.text);
	LS_CHECK_STR(wrong_account, "authentication failed");
	LS_CHECK_INT(call("auth", "generateToken",
	                  "[\"svc1\", \"svc1_private\", [\"weather-reader\"]]",
	                  &res, &err),
	             LS_EBADREQUEST);
	LS_CHECK(strstr(err.text, "unknown role 'weather-reader'") != NULL);
	LS_CHECK_INT(call("auth", "generateToken",
	                  "[\"svc1\", \"svc1_private\", []]", &res, &err),
	             LS_EBADREQUEST);
	LS_CHECK(strstr(err.text, "at least one role") != NULL);
	LS_CHECK_INT(call("auth", "generateToken",
	                  "[\"svc1\", \"svc1_private\", [\"public\"], 0]",
	                  &res, &err),
	             LS_EBADREQUEST);
	LS_CHECK(strstr(err.text, "ttl") != NULL);
	LS_CHECK_INT(call("auth", "generateToken",
	                  "[\"svc1\", \"svc1_private\", [\"public\"], 86401]",
	                  &res, &err),
	             LS_EBADREQUEST);
	LS_CHECK_INT(call("auth", "generateToken",
	                  "[\"svc1\", \"svc1_private\", [\"public\"], 86400]",
	                  &res, &err),
	             0);
	json_decref(res);
	LS_CHECK_INT(call("auth", "generateToken", "[\"svc1\"]", &res, &err),
	             LS_EBADREQUEST);
	LS_CHECK(strstr(err.text, "privateKey") != NULL);
}

LS_TEST(token_expires)
{
	json_t *res;
	const char *tok;
	char value[64];
	ls_error err;

	setup("expiry");
	tok = issue("[\"acc1\", \"acc1_private\", [\"public\"], 1]", NULL);
	LS_CHECK(tok != NULL);
	if (tok == NULL) {
		return;
	}
	snprintf(value, sizeof(value), "%s", tok);
	LS_CHECK_INT(validate("acc1", value, NULL, &res, &err), 0);
	json_decref(res);
	/* Wait past the one-second TTL. */
	struct timespec ts = { 1, 200 * 1000 * 1000 };
	nanosleep(&ts, NULL);
	LS_CHECK_INT(validate("acc1", value, NULL, &res, &err), LS_EAUTH);
	LS_CHECK_STR(err.text, "authentication failed");
}

LS_TEST(revoke_token)
{
	json_t *res, *args;
	const char *tok;
	char value[64];
	ls_error err;

	setup("revoke");
	tok = issue("[\"acc1\", \"acc1_private\", [\"public\"]]", NULL);
	LS_CHECK(tok != NULL);
	if (tok == NULL) {
		return;
	}
	snprintf(value, sizeof(value), "%s", tok);
	/* Another account cannot revoke it; a wrong key neither. */
	args = json_pack("[s,s,s]", "svc1", "svc1_private", value);
	LS_CHECK_INT(
	        as_services_call(svc, "auth", "revokeToken", args, &res, &err),
	        LS_ENOTFOUND);
	json_decref(args);
	args = json_pack("[s,s,s]", "acc1", "wrong", value);
	LS_CHECK_INT(
	        as_services_call(svc, "auth", "revokeToken", args, &res, &err),
	        LS_EAUTH);
	json_decref(args);
	LS_CHECK_INT(validate("acc1", value, NULL, &res, &err), 0);
	json_decref(res);
	args = json_pack("[s,s,s]", "acc1", "acc1_private", value);
	LS_CHECK_INT(
	        as_services_call(svc, "auth", "revokeToken", args, &res, &err),
	        0);
	LS_CHECK(json_is_true(res));
	LS_CHECK_INT(validate("acc1", value, NULL, &res, &err), LS_EAUTH);
	LS_CHECK_INT(
	        as_services_call(svc, "auth", "revokeToken", args, &res, &err),
	        LS_ENOTFOUND);
	json_decref(args);
}

LS_TEST(other_account_token_refused)
{
	json_t *res;
	const char *tok;
	char value[64];
	ls_error err;

	setup("other");
	tok = issue("[\"acc1\", \"acc1_private\", [\"public\"]]", NULL);
	LS_CHECK(tok != NULL);
	if (tok == NULL) {
		return;
	}
	snprintf(value, sizeof(value), "%s", tok);
	LS_CHECK_INT(validate("svc1", value, NULL, &res, &err), LS_EAUTH);
	LS_CHECK_STR(err.text, "authentication failed");
	LS_CHECK_INT(validate("acc1", "x", NULL, &res, &err), LS_EAUTH);
	LS_CHECK_STR(err.text, "authentication failed");
	LS_CHECK_INT(validate("acc1",
	                      "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
	                      NULL, &res, &err),
	             LS_EAUTH);
	LS_CHECK_STR(err.text, "authentication failed");
	LS_CHECK_INT(validate("bad key", value, NULL, &res, &err), LS_EAUTH);
}

LS_TEST(ip_binding_ipv4)
{
	json_t *res = NULL;
	const char *tok;
	char value[64];
	ls_error err;

	setup("ipv4");
	tok = issue("[\"acc1\", \"acc1_private\", [\"public\"], 600, "
	            "\"10.1.2.3\"]",
	            &res);
	LS_CHECK(tok != NULL);
	if (tok == NULL) {
		return;
	}
	LS_CHECK_STR(json_string_value(json_object_get(res, "ipAddress")),
	             "10.1.2.3");
	json_decref(res);
	snprintf(value, sizeof(value), "%s", tok);
	LS_CHECK_INT(validate("acc1", value, "10.1.2.3", &res, &err), 0);
	LS_CHECK_STR(json_string_value(json_object_get(res, "ipAddress")),
	             "10.1.2.3");
	json_decref(res);
	/* The same peer seen by a dual-stack socket. */
	LS_CHECK_INT(validate("acc1", value, "::ffff:10.1.2.3", &res, &err),
	             0);
	json_decref(res);
	LS_CHECK_INT(validate("acc1", value, "10.1.2.4", &res, &err),
	             LS_EAUTH);
	LS_CHECK_STR(err.text, "authentication failed");
	LS_CHECK_INT(validate("acc1", value, NULL, &res, &err), LS_EAUTH);
	LS_CHECK_INT(validate("acc1", value, "", &res, &err), LS_EAUTH);
	LS_CHECK_INT(validate("acc1", value, "garbage", &res, &err), LS_EAUTH);
}

LS_TEST(ip_binding_ipv6)
{
	json_t *res = NULL;
	const char *tok;
	char value[64];
	ls_error err;

	setup("ipv6");
	tok = issue("[\"acc1\", \"acc1_private\", [\"public\"], 600, "
	            "\"2001:DB8:0:0::1\"]",
	            &res);
	LS_CHECK(tok != NULL);
	if (tok == NULL) {
		return;
	}
	/* Normalized form. */
	LS_CHECK_STR(json_string_value(json_object_get(res, "ipAddress")),
	             "2001:db8::1");
	json_decref(res);
	snprintf(value, sizeof(value), "%s", tok);
	LS_CHECK_INT(validate("acc1", value, "2001:0db8::0:1", &res, &err), 0);
	json_decref(res);
	LS_CHECK_INT(validate("acc1", value, "2001:db8::2", &res, &err),
	             LS_EAUTH);
	LS_CHECK_INT(validate("acc1", value, "127.0.0.1", &res, &err),
	             LS_EAUTH);
}

LS_TEST(invalid_ip_refused)
{
	const char *bad[] = { "999.1.1.1",   "10.0.0", "abc",
		              "1.2.3.4/24",  "::g",    "1.2.3.4 ",
		              "fe80::1%eth0" };
	json_t *res, *args;
	ls_error err;

	setup("badip");
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		args = json_pack("[s,s,[s],i,s]", "acc1", "acc1_private",
		                 "public", 60, bad[i]);
		LS_CHECK_INT(as_services_call(svc, "auth", "generateToken",
		                              args, &res, &err),
		             LS_EBADREQUEST);
		LS_CHECK(strstr(err.text, "ipAddress") != NULL);
		json_decref(args);
	}
}

static int
web_check(const char *app_key, const char *token, const char *conn,
          const char *sig, json_t **res, ls_error *err)
{
	json_t *args = json_pack("[s,s,s,s]", app_key, token, conn, sig);
	int rc = as_services_call(svc, "auth", "validateWebToken", args, res,
	                          err);

	json_decref(args);
	return rc;
}

LS_TEST(web_token_signatures)
{
	json_t *res = NULL;
	const char *tok;
	char value[64], plain[64], data[256], sig[LS_SHA256_HEX_LEN + 1];
	char upper[LS_SHA256_HEX_LEN + 1];
	const char *conn = "c0nn3ct10n-1d-0f-128-b1ts";
	ls_error err;

	setup("web");
	tok = issue("[\"acc1\", \"acc1_private\", [\"public\"], 600, null, "
	            "true]",
	            &res);
	LS_CHECK(tok != NULL);
	if (tok == NULL) {
		return;
	}
	LS_CHECK(json_is_true(json_object_get(res, "webToken")));
	json_decref(res);
	snprintf(value, sizeof(value), "%s", tok);
	LS_CHECK_INT(validate("acc1", value, NULL, &res, &err), 0);
	LS_CHECK(json_is_true(json_object_get(res, "webToken")));
	json_decref(res);

	snprintf(data, sizeof(data), "acc1:%s:%s", value, conn);
	ls_hmac_sha256_hex("acc1_secret", 11, data, strlen(data), sig);
	LS_CHECK_INT(web_check("acc1", value, conn, sig, &res, &err), 0);
	LS_CHECK(json_is_true(res));
	for (int i = 0; i <= LS_SHA256_HEX_LEN; i++) {
		upper[i] = (char)(sig[i] >= 'a' && sig[i] <= 'f' ? sig[i] - 32
		                                                 : sig[i]);
	}
	LS_CHECK_INT(web_check("acc1", value, conn, upper, &res, &err), 0);
	LS_CHECK(json_is_true(res));
	/* Forged: another account's secret, another connection, a flip. */
	ls_hmac_sha256_hex("svc1_secret", 11, data, strlen(data), sig);
	LS_CHECK_INT(web_check("acc1", value, conn, sig, &res, &err), 0);
	LS_CHECK(json_is_false(res));
	ls_hmac_sha256_hex("acc1_secret", 11, data, strlen(data), sig);
	LS_CHECK_INT(web_check("acc1", value, "other-conn", sig, &res, &err),
	             0);
	LS_CHECK(json_is_false(res));
	sig[0] = sig[0] == '0' ? '1' : '0';
	LS_CHECK_INT(web_check("acc1", value, conn, sig, &res, &err), 0);
	LS_CHECK(json_is_false(res));
	LS_CHECK_INT(web_check("acc1", value, conn, "short", &res, &err), 0);
	LS_CHECK(json_is_false(res));
	LS_CHECK_INT(web_check("svc1", value, conn, sig, &res, &err), 0);
	LS_CHECK(json_is_false(res));

	/* A token not issued as a web token never verifies. */
	tok = issue("[\"acc1\", \"acc1_private\", [\"public\"]]", NULL);
	LS_CHECK(tok != NULL);
	if (tok == NULL) {
		return;
	}
	snprintf(plain, sizeof(plain), "%s", tok);
	snprintf(data, sizeof(data), "acc1:%s:%s", plain, conn);
	ls_hmac_sha256_hex("acc1_secret", 11, data, strlen(data), sig);
	LS_CHECK_INT(web_check("acc1", plain, conn, sig, &res, &err), 0);
	LS_CHECK(json_is_false(res));
}

LS_TEST(permission_resolution)
{
	json_t *res = NULL;
	const char *tok;
	char value[64];
	ls_error err;

	setup("perms");
	tok = issue("[\"acc1\", \"acc1_private\", [\"public\", \"publisher\", "
	            "\"weather-reader\"]]",
	            NULL);
	LS_CHECK(tok != NULL);
	if (tok == NULL) {
		return;
	}
	snprintf(value, sizeof(value), "%s", tok);
	LS_CHECK_INT(validate("acc1", value, NULL, &res, &err), 0);
	/* Union: s1 read (public) | read+write (publisher). */
	LS_CHECK_INT(perm_of(res, "acc1", "s1"), 3);
	LS_CHECK_INT(perm_of(res, "acc1", "s2"), 3);
	/* svc1 is public: its weather stream may be granted for reading. */
	LS_CHECK_INT(perm_of(res, "svc1", "weather"), 2);
	LS_CHECK_INT(json_array_size(json_object_get(res, "permissions")), 3);
	json_decref(res);

	/* A role asking for write on svc1/weather gets read only... */
	LS_CHECK_INT(
	        call("accounts", "setRole",
	             "[\"acc1\", \"weather-reader\", [{\"owner\": \"svc1\", "
	             "\"stream\": \"weather\", \"permission\": 3}]]",
	             &res, &err),
	        0);
	json_decref(res);
	LS_CHECK_INT(validate("acc1", value, NULL, &res, &err), 0);
	LS_CHECK_INT(perm_of(res, "svc1", "weather"), 2);
	json_decref(res);
	/* ...until svc1 allows shared writes. */
	LS_CHECK_INT(call("accounts", "update",
	                  "[\"svc1\", {\"sharedWrite\": true}]", &res, &err),
	             0);
	json_decref(res);
	LS_CHECK_INT(validate("acc1", value, NULL, &res, &err), 0);
	LS_CHECK_INT(perm_of(res, "svc1", "weather"), 3);
	json_decref(res);
	/* A private owner grants nothing to others (write-only if shared). */
	LS_CHECK_INT(call("accounts", "update",
	                  "[\"svc1\", {\"isPublic\": false, \"sharedWrite\": "
	                  "false}]",
	                  &res, &err),
	             0);
	json_decref(res);
	LS_CHECK_INT(validate("acc1", value, NULL, &res, &err), 0);
	LS_CHECK_INT(perm_of(res, "svc1", "weather"), 0);
	LS_CHECK_INT(json_array_size(json_object_get(res, "permissions")), 2);
	json_decref(res);
	/* Unknown owners grant nothing; deleted roles stop granting. */
	LS_CHECK_INT(call("accounts", "setRole",
	                  "[\"acc1\", \"weather-reader\", [{\"owner\": "
	                  "\"ghost\", \"stream\": \"*\", \"permission\": 3}]]",
	                  &res, &err),
	             0);
	json_decref(res);
	LS_CHECK_INT(call("accounts", "deleteRole",
	                  "[\"acc1\", \"publisher\"]", &res, &err),
	             0);
	json_decref(res);
	LS_CHECK_INT(validate("acc1", value, NULL, &res, &err), 0);
	LS_CHECK_INT(perm_of(res, "ghost", "*"), 0);
	LS_CHECK_INT(perm_of(res, "acc1", "s1"), 2);
	json_decref(res);
}

/*
 * Another app server sharing the store (a second handle on the same file,
 * as a second process has): its writes apply at once to validations
 * here, whatever this process has read before.
 */
LS_TEST(writes_by_another_app_server_apply_at_once)
{
	json_t *res = NULL, *perms;
	as_store *other;
	as_account a = { 0 };
	const char *tok;
	char value[64], uri[600], hash[LS_SHA256_HEX_LEN + 1];
	ls_error err;

	setup("shared");
	snprintf(uri, sizeof(uri), "sqlite:%s", db_path);
	other = as_store_open(uri, &err);
	LS_CHECK(other != NULL);
	if (other == NULL) {
		return;
	}
	tok = issue("[\"acc1\", \"acc1_private\", [\"public\", "
	            "\"weather-reader\"]]",
	            NULL);
	LS_CHECK(tok != NULL);
	if (tok == NULL) {
		as_store_close(&other);
		return;
	}
	snprintf(value, sizeof(value), "%s", tok);
	/* Validate repeatedly first: whatever is kept from these reads
	 * must not outlive the writes below. */
	for (int i = 0; i < 3; i++) {
		LS_CHECK_INT(validate("acc1", value, NULL, &res, &err), 0);
		LS_CHECK_INT(perm_of(res, "acc1", "s2"), 3);
		LS_CHECK_INT(perm_of(res, "svc1", "weather"), 2);
		/* The result is the caller's: changing it changes nothing
		 * for the next validation. */
		json_array_clear(json_object_get(res, "roles"));
		json_array_clear(json_object_get(res, "permissions"));
		json_decref(res);
	}

	/* A role edited elsewhere applies to the live token. */
	perms = json_pack("[{s:s, s:s, s:i}]", "owner", "acc1", "stream", "s7",
	                  "permission", 2);
	LS_CHECK_INT(as_store_role_set(other, "acc1", "public", perms, &err),
	             0);
	json_decref(perms);
	LS_CHECK_INT(validate("acc1", value, NULL, &res, &err), 0);
	LS_CHECK_INT(perm_of(res, "acc1", "s7"), 2);
	LS_CHECK_INT(perm_of(res, "acc1", "s2"), 0);
	LS_CHECK_INT(json_array_size(json_object_get(res, "roles")), 2);
	json_decref(res);

	/* Another account's flags changed elsewhere apply too. */
	snprintf(a.app_key, sizeof(a.app_key), "svc1");
	a.is_public = false;
	LS_CHECK_INT(as_store_account_update(other, &a, AS_FIELD_PUBLIC, &err),
	             0);
	LS_CHECK_INT(validate("acc1", value, NULL, &res, &err), 0);
	LS_CHECK_INT(perm_of(res, "svc1", "weather"), 0);
	json_decref(res);

	/* A token revoked elsewhere stops validating at once. */
	ls_sha256_hex(value, strlen(value), hash);
	LS_CHECK_INT(as_store_token_delete(other, "acc1", hash, &err), 0);
	LS_CHECK_INT(validate("acc1", value, NULL, &res, &err), LS_EAUTH);
	LS_CHECK_STR(err.text, "authentication failed");
	as_store_close(&other);
}

/* Does the file at path contain needle anywhere (raw bytes)? */
static int
file_contains(const char *path, const char *needle)
{
	FILE *f = fopen(path, "rb");
	size_t n = strlen(needle), len = 0, cap = 0;
	char *buf = NULL;
	int found = 0;

	if (f == NULL) {
		return -1;
	}
	for (;;) {
		if (len == cap) {
			cap = cap ? cap * 2 : 65536;
			buf = realloc(buf, cap);
		}
		size_t got = fread(buf + len, 1, cap - len, f);
		if (got == 0) {
			break;
		}
		len += got;
	}
	fclose(f);
	for (size_t i = 0; i + n <= len && !found; i++) {
		found = memcmp(buf + i, needle, n) == 0;
	}
	free(buf);
	return found;
}

LS_TEST(secrets_not_stored_in_clear)
{
	char wal[600], hash[LS_SHA256_HEX_LEN + 1], value[64];
	const char *tok;
	int in_db, in_wal;

	setup("raw");
	tok = issue("[\"acc1\", \"acc1_private\", [\"public\"]]", NULL);
	LS_CHECK(tok != NULL);
	if (tok == NULL) {
		return;
	}
	snprintf(value, sizeof(value), "%s", tok);
	ls_sha256_hex(value, strlen(value), hash);
	snprintf(wal, sizeof(wal), "%s-wal", db_path);
	/* The hash is there (so we looked at the right bytes)... */
	in_db = file_contains(db_path, hash);
	in_wal = file_contains(wal, hash);
	LS_CHECK(in_db == 1 || in_wal == 1);
	/* ...the token and the private keys are not. */
	LS_CHECK(file_contains(db_path, value) == 0);
	LS_CHECK(file_contains(wal, value) != 1);
	LS_CHECK(file_contains(db_path, "acc1_private") == 0);
	LS_CHECK(file_contains(wal, "acc1_private") != 1);
	LS_CHECK(file_contains(db_path, "svc1_private") == 0);
	LS_CHECK(file_contains(wal, "svc1_private") != 1);
	/* The secret key is stored recoverably (HMACs need it). */
	LS_CHECK(file_contains(db_path, "acc1_secret") == 1 ||
	         file_contains(wal, "acc1_secret") == 1);
}

LS_TEST(accounts_service)
{
	json_t *res = NULL;
	char *text;
	ls_error err;

	setup("accounts");
	LS_CHECK_INT(call("accounts", "create",
	                  "[{\"appKey\": \"new1\", \"privateKey\": \"p1\", "
	                  "\"secretKey\": \"s1\", \"isPublic\": true}]",
	                  &res, &err),
	             0);
	LS_CHECK_STR(json_string_value(json_object_get(res, "appKey")),
	             "new1");
	LS_CHECK(json_is_true(json_object_get(res, "isPublic")));
	LS_CHECK(json_object_get(res, "privateKey") == NULL);
	LS_CHECK(json_object_get(res, "secretKey") == NULL);
	json_decref(res);
	LS_CHECK_INT(call("accounts", "create",
	                  "[{\"appKey\": \"new1\", \"privateKey\": \"p1\", "
	                  "\"secretKey\": \"s1\"}]",
	                  &res, &err),
	             LS_EEXISTS);
	LS_CHECK(strstr(err.text, "already exists") != NULL);
	LS_CHECK_INT(call("accounts", "create",
	                  "[{\"appKey\": \"bad key\", \"privateKey\": \"p\", "
	                  "\"secretKey\": \"s\"}]",
	                  &res, &err),
	             LS_EBADREQUEST);
	LS_CHECK(strstr(err.text, "appKey") != NULL);
	LS_CHECK_INT(call("accounts", "create",
	                  "[{\"appKey\": \"x\", \"privateKey\": \"p\", "
	                  "\"secretKey\": \"s\", \"roles\": {\"r\": "
	                  "[{\"owner\": \"x\", \"stream\": \"a b\", "
	                  "\"permission\": 2}]}}]",
	                  &res, &err),
	             LS_EBADREQUEST);
	LS_CHECK(strstr(err.text, "roles.r") != NULL);

	LS_CHECK_INT(call("accounts", "get", "[\"acc1\"]", &res, &err), 0);
	LS_CHECK(json_object_get(res, "secretKey") == NULL);
	LS_CHECK_INT(json_object_size(json_object_get(res, "roles")), 3);
	json_decref(res);
	LS_CHECK_INT(call("accounts", "get", "[\"acc1\", true]", &res, &err),
	             0);
	LS_CHECK_STR(json_string_value(json_object_get(res, "secretKey")),
	             "acc1_secret");
	text = json_dumps(res, 0);
	LS_CHECK(strstr(text, "acc1_private") == NULL);
	LS_CHECK(strstr(text, "pbkdf2") == NULL);
	free(text);
	json_decref(res);
	LS_CHECK_INT(call("accounts", "get", "[\"ghost\"]", &res, &err),
	             LS_ENOTFOUND);

	LS_CHECK_INT(call("accounts", "list", "[]", &res, &err), 0);
	LS_CHECK_INT(json_array_size(res), 3);
	text = json_dumps(res, 0);
	LS_CHECK(strstr(text, "secret") == NULL);
	free(text);
	json_decref(res);

	/* A new private key works, the old one no longer does. */
	LS_CHECK_INT(call("accounts", "update",
	                  "[\"new1\", {\"privateKey\": \"p2\"}]", &res, &err),
	             0);
	json_decref(res);
	LS_CHECK_INT(call("auth", "generateToken",
	                  "[\"new1\", \"p1\", [\"r\"]]", &res, &err),
	             LS_EAUTH);
	LS_CHECK_INT(call("accounts", "setRole",
	                  "[\"new1\", \"r\", [{\"owner\": \"new1\", "
	                  "\"stream\": \"feed.*\", \"permission\": 1}]]",
	                  &res, &err),
	             0);
	json_decref(res);
	LS_CHECK(issue("[\"new1\", \"p2\", [\"r\"]]", NULL) != NULL);
	LS_CHECK_INT(call("accounts", "update",
	                  "[\"new1\", {\"owner\": \"x\"}]", &res, &err),
	             LS_EBADREQUEST);
	LS_CHECK_INT(call("accounts", "setRole",
	                  "[\"new1\", \"r\", [{\"owner\": \"new1\", "
	                  "\"stream\": \"s\", \"permission\": 0}]]",
	                  &res, &err),
	             LS_EBADREQUEST);
	LS_CHECK_INT(call("accounts", "deleteRole", "[\"new1\", \"nope\"]",
	                  &res, &err),
	             LS_ENOTFOUND);
	LS_CHECK_INT(call("accounts", "delete", "[\"new1\"]", &res, &err), 0);
	LS_CHECK(json_is_true(res));
	LS_CHECK_INT(call("accounts", "delete", "[\"new1\"]", &res, &err),
	             LS_ENOTFOUND);
	LS_CHECK_INT(call("accounts", "nope", "[]", &res, &err),
	             LS_ENOSERVICE);
	LS_CHECK_INT(call("nope", "list", "[]", &res, &err), LS_ENOSERVICE);
}

LS_TEST(reset_database_invalidates_tokens)
{
	json_t *res = NULL;
	const char *tok;
	char value[64];
	ls_error err;

	setup("reset");
	tok = issue("[\"acc1\", \"acc1_private\", [\"public\"]]", NULL);
	LS_CHECK(tok != NULL);
	if (tok == NULL) {
		return;
	}
	snprintf(value, sizeof(value), "%s", tok);
	LS_CHECK_INT(call("db", "resetDatabase",
	                  "[{\"accounts\": [{\"appKey\": \"only\", "
	                  "\"privateKey\": \"p\", \"secretKey\": \"s\"}]}]",
	                  &res, &err),
	             0);
	LS_CHECK_INT(json_integer_value(res), 1);
	json_decref(res);
	LS_CHECK_INT(validate("acc1", value, NULL, &res, &err), LS_EAUTH);
	/* The fixture may also come as JSON text; invalid ones change
	 * nothing. */
	LS_CHECK_INT(call("db", "resetDatabase",
	                  "[\"{\\\"accounts\\\": [{\\\"appKey\\\": 1}]}\"]",
	                  &res, &err),
	             LS_EBADREQUEST);
	LS_CHECK(strstr(err.text, "accounts[0]") != NULL);
	LS_CHECK_INT(
	        call("db", "resetDatabase",
	             "[{\"accounts\": [{\"appKey\": \"d\", \"privateKey\": "
	             "\"p\", \"secretKey\": \"s\"}, {\"appKey\": \"d\", "
	             "\"privateKey\": \"q\", \"secretKey\": \"t\"}]}]",
	             &res, &err),
	        LS_EBADREQUEST);
	LS_CHECK(strstr(err.text, "accounts[1]: duplicate appKey d") != NULL);
	LS_CHECK_INT(call("accounts", "list", "[]", &res, &err), 0);
	LS_CHECK_INT(json_array_size(res), 1);
	json_decref(res);
}

#define AST_THREADS 4
#define AST_ROUNDS  15

static void *
concurrent_main(void *arg)
{
	int *failures = arg;

	for (int i = 0; i < AST_ROUNDS; i++) {
		json_t *args = json_pack("[s,s,[s],i]", "acc1", "acc1_private",
		                         "publisher", 60);
		json_t *res = NULL, *v = NULL;
		ls_error err;
		if (as_services_call(svc, "auth", "generateToken", args, &res,
		                     &err) != 0) {
			(*failures)++;
		} else {
			json_t *vargs = json_pack(
			        "[s,O,s]", "acc1",
			        json_object_get(res, "value"), "127.0.0.1");
			if (as_services_call(svc, "auth", "validateToken",
			                     vargs, &v, &err) != 0 ||
			    perm_of(v, "acc1", "s1") != 3) {
				(*failures)++;
			}
			json_decref(vargs);
		}
		json_decref(v);
		json_decref(res);
		json_decref(args);
	}
	return NULL;
}

LS_TEST(concurrent_worker_threads)
{
	pthread_t th[AST_THREADS];
	int failures[AST_THREADS] = { 0 };

	setup("threads");
	for (int i = 0; i < AST_THREADS; i++) {
		pthread_create(&th[i], NULL, concurrent_main, &failures[i]);
	}
	for (int i = 0; i < AST_THREADS; i++) {
		pthread_join(th[i], NULL);
		LS_CHECK_INT(failures[i], 0);
	}
}

/* ---- key hashing on the validation workers is bounded ---- */

typedef struct hashing {
	int ok, busy, other;
} hashing;

static void *
hashing_main(void *arg)
{
	hashing *h = arg;

	for (int i = 0; i < 15; i++) {
		json_t *res = NULL;
		ls_error err;
		int rc = call("auth", "generateToken",
		              "[\"acc1\", \"acc1_private\", [\"public\"]]",
		              &res, &err);
		json_decref(res);
		if (rc == 0) {
			h->ok++;
		} else if (rc == LS_EUNAVAILABLE) {
			h->busy++;
		} else {
			h->other++;
		}
	}
	return NULL;
}

LS_TEST(shared_key_hashing_is_bounded)
{
	pthread_t th[4];
	hashing h[4] = { { 0 } };
	int ok = 0, busy = 0;
	json_t *res = NULL;
	ls_error err;

	setup("hashing");
	as_services_limit_shared_hashing(svc, 1);
	for (int i = 0; i < 4; i++) {
		pthread_create(&th[i], NULL, hashing_main, &h[i]);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		LS_CHECK_INT(h[i].other, 0);
		ok += h[i].ok;
		busy += h[i].busy;
	}
	/* one at a time; the others are told to retry, never queued */
	LS_CHECK(ok > 0);
	LS_CHECK(busy > 0);
	/* auth.issue, the token endpoint's service, has no such bound */
	LS_CHECK_INT(call("auth.issue", "generateToken",
	                  "[\"acc1\", \"acc1_private\", [\"public\"]]", &res,
	                  &err),
	             0);
	json_decref(res);
	as_services_limit_shared_hashing(svc, 0);
}

/* ---- changes reported for live authorization ---- */

typedef struct changes {
	int n;
	as_change_kind kind[8];
	char app_key[8][65];
	char hash[8][LS_SHA256_HEX_LEN + 1];
} changes;

static void
on_change(const as_change *ch, void *user)
{
	changes *c = user;

	if (c->n >= 8) {
		return;
	}
	c->kind[c->n] = ch->kind;
	snprintf(c->app_key[c->n], sizeof(c->app_key[0]), "%s",
	         ch->app_key ? ch->app_key : "");
	snprintf(c->hash[c->n], sizeof(c->hash[0]), "%s",
	         ch->token_hash ? ch->token_hash : "");
	c->n++;
}

LS_TEST(changes_are_reported)
{
	changes ch = { 0 };
	char args[512], hash[LS_SHA256_HEX_LEN + 1];
	const char *tok;
	json_t *res;
	ls_error err;

	setup("changes");
	as_services_on_change(svc, on_change, &ch);

	tok = issue("[\"acc1\",\"acc1_private\",[\"public\"]]", NULL);
	LS_CHECK(tok != NULL);
	LS_CHECK_INT(ch.n, 0); /* issuing changes nothing */
	ls_sha256_hex(tok, strlen(tok), hash);
	snprintf(args, sizeof(args), "[\"acc1\",\"acc1_private\",\"%s\"]",
	         tok);
	LS_CHECK_INT(call("auth", "revokeToken", args, &res, &err), 0);
	json_decref(res);
	LS_CHECK_INT(ch.n, 1);
	LS_CHECK_INT(ch.kind[0], AS_CHANGE_REVOKED);
	LS_CHECK_STR(ch.app_key[0], "acc1");
	LS_CHECK_STR(ch.hash[0], hash);

	/* a refused revocation reports nothing */
	LS_CHECK(call("auth", "revokeToken", args, &res, &err) != 0);
	LS_CHECK_INT(ch.n, 1);

	ch.n = 0;
	LS_CHECK_INT(call("accounts", "setRole",
	                  "[\"acc1\",\"public\",[{\"owner\":\"acc1\","
	                  "\"stream\":\"s1\",\"permission\":2}]]",
	                  &res, &err),
	             0);
	json_decref(res);
	LS_CHECK_INT(call("accounts", "deleteRole", "[\"acc1\",\"publisher\"]",
	                  &res, &err),
	             0);
	json_decref(res);
	LS_CHECK_INT(ch.n, 2);
	LS_CHECK_INT(ch.kind[0], AS_CHANGE_CHANGED);
	LS_CHECK_STR(ch.app_key[0], "acc1");
	LS_CHECK_INT(ch.kind[1], AS_CHANGE_CHANGED);
	LS_CHECK_STR(ch.app_key[1], "acc1");

	/* keys change no permission; a public flag changes every account's */
	ch.n = 0;
	LS_CHECK_INT(call("accounts", "update",
	                  "[\"svc1\",{\"secretKey\":\"new_secret\"}]", &res,
	                  &err),
	             0);
	json_decref(res);
	LS_CHECK_INT(ch.n, 0);
	LS_CHECK_INT(call("accounts", "update",
	                  "[\"svc1\",{\"isPublic\":false}]", &res, &err),
	             0);
	json_decref(res);
	LS_CHECK_INT(ch.n, 1);
	LS_CHECK_INT(ch.kind[0], AS_CHANGE_CHANGED);
	LS_CHECK_STR(ch.app_key[0], "");

	/* deleting a private account: its connections only */
	ch.n = 0;
	LS_CHECK_INT(call("accounts", "delete", "[\"acc1\"]", &res, &err), 0);
	json_decref(res);
	LS_CHECK_INT(ch.n, 1);
	LS_CHECK_INT(ch.kind[0], AS_CHANGE_DELETED);
	LS_CHECK_STR(ch.app_key[0], "acc1");

	ch.n = 0;
	snprintf(args, sizeof(args), "[%s]", "{\"accounts\":[]}");
	LS_CHECK_INT(call("db", "resetDatabase", args, &res, &err), 0);
	json_decref(res);
	LS_CHECK_INT(ch.n, 1);
	LS_CHECK_INT(ch.kind[0], AS_CHANGE_RESET);
}

LS_TEST(malformed_arguments_never_crash)
{
	const char *ops[][2] = {
		{ "auth", "generateToken" },    { "auth", "validateToken" },
		{ "auth", "validateWebToken" }, { "auth", "revokeToken" },
		{ "accounts", "create" },       { "accounts", "get" },
		{ "accounts", "list" },         { "accounts", "update" },
		{ "accounts", "delete" },       { "accounts", "setRole" },
		{ "accounts", "deleteRole" },   { "db", "resetDatabase" },
	};
	const char *argsets[] = {
		"[]",
		"[null, null, null, null, null, null]",
		"[1, 2, 3, 4, 5, 6]",
		"[{}, {}, {}, {}, {}, {}]",
		"[[], [], [], [], [], []]",
		"[\"acc1\", \"acc1_private\", [1, null], -5, 7, 3]",
		"[\"acc1\", \"acc1_private\", [\"public\"], 1e9, \"::\", "
		"\"yes\"]",
		"[\"\", \"\", \"\", \"\"]",
		"[\"acc1\", {\"roles\": 5}, \"{\"]",
	};
	json_t *res, *args;
	ls_error err;
	int answered = 0;

	setup("malformed");
	args = json_object(); /* not even an array */
	for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
		int rc = as_services_call(svc, ops[i][0], ops[i][1], args,
		                          &res, &err);
		if (rc == 0) {
			json_decref(res);
		}
		answered++;
		for (size_t j = 0; j < sizeof(argsets) / sizeof(argsets[0]);
		     j++) {
			rc = call(ops[i][0], ops[i][1], argsets[j], &res,
			          &err);
			if (rc == 0) {
				json_decref(res);
			} else {
				LS_CHECK(err.text[0] != '\0');
			}
			answered++;
		}
	}
	json_decref(args);
	LS_CHECK_INT(answered, 12 * 10);
	/* The store still works (acc1 may have been deleted on purpose). */
	LS_CHECK(issue("[\"svc1\", \"svc1_private\", [\"public\"]]", NULL) !=
	         NULL);
	as_services_destroy(&svc);
	as_store_close(&store);
	LS_CHECK(svc == NULL && store == NULL);
	ast_tmpdir_remove();
}

LS_TEST_MAIN()
