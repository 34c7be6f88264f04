/*
 * The store contract: every backend must pass these tests. Built twice:
 * against SQLite (real files in a temporary directory) and, with
 * AST_MONGODB defined, against the MongoDB server named by
 * LIGHTSTREAM_TEST_MONGODB_URI (its database is wiped), or skipped when
 * that variable is unset.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "as_store.h"
#include "as_test_util.h"
#include "ls_crypto.h"
#include "ls_proto.h"
#include "ls_test.h"
#include "ls_time.h"

static char ast_uri[512];

/* Open a fresh, empty store for one test; NULL means skip. */
static as_store *
open_store(const char *name, const char **skip)
{
	ls_error err = { 0 };
	as_store *s;

	ast_quiet();
#ifdef AST_MONGODB
	const char *uri = getenv("LIGHTSTREAM_TEST_MONGODB_URI");
	if (uri == NULL || *uri == '\0') {
		*skip = "LIGHTSTREAM_TEST_MONGODB_URI is not set (no MongoDB "
		        "server)";
		return NULL;
	}
	snprintf(ast_uri, sizeof(ast_uri), "%s", uri);
#else
	snprintf(ast_uri, sizeof(ast_uri), "sqlite:%s/%s.db", ast_tmpdir(),
	         name);
#endif
	*skip = NULL;
	s = as_store_open(ast_uri, &err);
	if (s == NULL) {
		printf("# open %s: %s\n", ast_uri, err.text);
		return NULL;
	}
	if (as_store_reset(s, NULL, 0, &err) != 0) {
		printf("# reset: %s\n", err.text);
		as_store_close(&s);
	}
	return s;
}

#define OPEN_OR_SKIP(s, name)                                                 \
	const char *skip__;                                                   \
	as_store *s = open_store(name, &skip__);                              \
	if (s == NULL) {                                                      \
		if (skip__) {                                                 \
			LS_SKIP(skip__);                                      \
		}                                                             \
		LS_FAIL("cannot open the store");                             \
	}

static as_account
make_account(const char *key, const char *private_key, bool is_public)
{
	as_account a = { 0 };
	char json[512];
	json_t *obj;
	ls_error err;

	snprintf(json, sizeof(json),
	         "{\"appKey\": \"%s\", \"privateKey\": \"%s\", "
	         "\"secretKey\": \"%s_secret\", \"isPublic\": %s, "
	         "\"roles\": {\"reader\": [{\"owner\": \"%s\", \"stream\": "
	         "\"s1\", \"permission\": 2}]}}",
	         key, private_key, key, is_public ? "true" : "false", key);
	obj = json_loads(json, 0, NULL);
	if (as_account_from_json(obj, &a, &err) != 0) {
		printf("# make_account: %s\n", err.text);
	}
	json_decref(obj);
	return a;
}

static as_token
make_token(const char *key, const char *value, int64_t expires_ms)
{
	as_token t = { 0 };

	ls_sha256_hex(value, strlen(value), t.hash);
	snprintf(t.app_key, sizeof(t.app_key), "%s", key);
	t.roles = json_pack("[s]", "reader");
	t.expires_ms = expires_ms;
	return t;
}

LS_TEST(account_create_get_roundtrip)
{
	OPEN_OR_SKIP(s, "roundtrip");
	as_account a = make_account("acc1", "acc1_private", false);
	as_account got = { 0 };
	ls_error err;

	LS_CHECK_INT(as_store_account_create(s, &a, &err), 0);
	LS_CHECK_INT(as_store_account_get(s, "acc1", &got, &err), 0);
	LS_CHECK_STR(got.app_key, "acc1");
	LS_CHECK_STR(got.secret_key, "acc1_secret");
	LS_CHECK(!got.is_public);
	LS_CHECK(!got.shared_write);
	LS_CHECK(json_equal(got.roles, a.roles));
	/* The private key is only a salted hash that verifies. */
	LS_CHECK(strstr(got.private_hash, "acc1_private") == NULL);
	LS_CHECK(ls_password_verify("acc1_private", got.private_hash));
	LS_CHECK(!ls_password_verify("acc1_privatE", got.private_hash));
	as_account_clear(&got);
	as_account_clear(&a);
	as_store_close(&s);
	LS_CHECK(s == NULL);
}

/* The history override: stored, read back, changed, removed, validated. */
LS_TEST(account_history_override)
{
	OPEN_OR_SKIP(s, "history");
	as_account a = make_account("acch", "k", false);
	as_account got = { 0 };
	json_t *h = NULL;
	ls_error err;

	LS_CHECK_INT(as_store_account_create(s, &a, &err), 0);
	LS_CHECK_INT(as_store_account_history(s, "acch", &h, &err), 0);
	LS_CHECK(h == NULL); /* none: the gateways' defaults */
	a.history = json_pack("{s:i,s:i}", "size", 7, "ttl", 60);
	LS_CHECK_INT(as_store_account_update(s, &a, AS_FIELD_HISTORY, &err),
	             0);
	LS_CHECK_INT(as_store_account_history(s, "acch", &h, &err), 0);
	LS_CHECK(json_equal(h, a.history));
	json_decref(h);
	LS_CHECK_INT(as_store_account_get(s, "acch", &got, &err), 0);
	LS_CHECK(json_equal(got.history, a.history));
	LS_CHECK(json_equal(got.roles, a.roles)); /* untouched */
	as_account_clear(&got);
	/* Other updates keep it. */
	a.is_public = true;
	LS_CHECK_INT(as_store_account_update(s, &a, AS_FIELD_PUBLIC, &err), 0);
	LS_CHECK_INT(as_store_account_history(s, "acch", &h, &err), 0);
	LS_CHECK(h != NULL);
	json_decref(h);
	/* null: back to the defaults */
	json_decref(a.history);
	a.history = NULL;
	LS_CHECK_INT(as_store_account_update(s, &a, AS_FIELD_HISTORY, &err),
	             0);
	LS_CHECK_INT(as_store_account_history(s, "acch", &h, &err), 0);
	LS_CHECK(h == NULL);
	/* Out of bounds or unknown keys are refused. */
	a.history = json_pack("{s:i}", "size", 10001);
	LS_CHECK_INT(as_store_account_update(s, &a, AS_FIELD_HISTORY, &err),
	             LS_EBADREQUEST);
	json_decref(a.history);
	a.history = json_pack("{s:i}", "depth", 1);
	LS_CHECK_INT(as_store_account_update(s, &a, AS_FIELD_HISTORY, &err),
	             LS_EBADREQUEST);
	LS_CHECK_INT(as_store_account_history(s, "nobody", &h, &err),
	             LS_ENOTFOUND);
	as_account_clear(&a);
	as_store_close(&s);
}

LS_TEST(account_duplicate_and_missing)
{
	OPEN_OR_SKIP(s, "duplicate");
	as_account a = make_account("dup", "k", false);
	as_account got = { 0 };
	ls_error err;

	LS_CHECK_INT(as_store_account_create(s, &a, &err), 0);
	LS_CHECK_INT(as_store_account_create(s, &a, &err), LS_EEXISTS);
	LS_CHECK(strstr(err.text, "dup") != NULL);
	LS_CHECK_INT(as_store_account_get(s, "nobody", &got, &err),
	             LS_ENOTFOUND);
	LS_CHECK_INT(as_store_account_delete(s, "nobody", &err), LS_ENOTFOUND);
	as_account_clear(&a);
	as_store_close(&s);
}

LS_TEST(account_invalid_input_rejected)
{
	OPEN_OR_SKIP(s, "invalid");
	as_account a = make_account("ok", "k", false);
	as_account got;
	ls_error err;

	strcpy(a.app_key, "bad key!");
	LS_CHECK_INT(as_store_account_create(s, &a, &err), LS_EBADREQUEST);
	LS_CHECK(strstr(err.text, "appKey") != NULL);
	LS_CHECK_INT(as_store_account_get(s, "", &got, &err), LS_EBADREQUEST);
	strcpy(a.app_key, "ok");
	strcpy(a.private_hash, "clear-text-key");
	LS_CHECK_INT(as_store_account_create(s, &a, &err), LS_EBADREQUEST);
	as_account_clear(&a);
	as_store_close(&s);
}

LS_TEST(account_update_fields)
{
	OPEN_OR_SKIP(s, "update");
	as_account a = make_account("upd", "old_private", false);
	as_account got = { 0 };
	ls_error err;

	LS_CHECK_INT(as_store_account_create(s, &a, &err), 0);
	a.is_public = true;
	a.shared_write = true;
	strcpy(a.secret_key, "new_secret");
	/* Only the fields in the mask change. */
	LS_CHECK_INT(
	        as_store_account_update(
	                s, &a, AS_FIELD_PUBLIC | AS_FIELD_SHARED_WRITE, &err),
	        0);
	LS_CHECK_INT(as_store_account_get(s, "upd", &got, &err), 0);
	LS_CHECK(got.is_public);
	LS_CHECK(got.shared_write);
	LS_CHECK_STR(got.secret_key, "upd_secret");
	as_account_clear(&got);
	LS_CHECK_INT(ls_password_hash("new_private", 0, a.private_hash), 0);
	LS_CHECK_INT(as_store_account_update(
	                     s, &a, AS_FIELD_SECRET | AS_FIELD_PRIVATE, &err),
	             0);
	LS_CHECK_INT(as_store_account_get(s, "upd", &got, &err), 0);
	LS_CHECK_STR(got.secret_key, "new_secret");
	LS_CHECK(ls_password_verify("new_private", got.private_hash));
	LS_CHECK(!ls_password_verify("old_private", got.private_hash));
	as_account_clear(&got);
	strcpy(a.app_key, "ghost");
	LS_CHECK_INT(as_store_account_update(s, &a, AS_FIELD_PUBLIC, &err),
	             LS_ENOTFOUND);
	as_account_clear(&a);
	as_store_close(&s);
}

LS_TEST(account_list_sorted)
{
	OPEN_OR_SKIP(s, "list");
	const char *keys[] = { "zeta", "alpha", "mid" };
	json_t *list = NULL;
	ls_error err;

	for (int i = 0; i < 3; i++) {
		as_account a = make_account(keys[i], "k", i == 1);
		LS_CHECK_INT(as_store_account_create(s, &a, &err), 0);
		as_account_clear(&a);
	}
	LS_CHECK_INT(as_store_account_list(s, &list, &err), 0);
	LS_CHECK_INT(json_array_size(list), 3);
	LS_CHECK_STR(json_string_value(json_object_get(json_array_get(list, 0),
	                                               "appKey")),
	             "alpha");
	LS_CHECK(json_is_true(
	        json_object_get(json_array_get(list, 0), "isPublic")));
	LS_CHECK_STR(json_string_value(json_object_get(json_array_get(list, 2),
	                                               "appKey")),
	             "zeta");
	/* The list never carries key material. */
	char *text = json_dumps(list, 0);
	LS_CHECK(strstr(text, "secret") == NULL);
	LS_CHECK(strstr(text, "pbkdf2") == NULL);
	free(text);
	json_decref(list);
	as_store_close(&s);
}

LS_TEST(role_set_and_delete)
{
	OPEN_OR_SKIP(s, "roles");
	as_account a = make_account("racc", "k", false);
	as_account got = { 0 };
	json_t *perms = json_loads("[{\"owner\": \"svc1\", \"stream\": "
	                           "\"weather.*\", \"permission\": 2}]",
	                           0, NULL);
	json_t *bad = json_loads("[{\"owner\": \"svc1\", \"stream\": "
	                         "\"w\", \"permission\": 4}]",
	                         0, NULL);
	ls_error err;

	LS_CHECK_INT(as_store_account_create(s, &a, &err), 0);
	LS_CHECK_INT(as_store_role_set(s, "racc", "wr", perms, &err), 0);
	LS_CHECK_INT(as_store_account_get(s, "racc", &got, &err), 0);
	LS_CHECK(json_equal(json_object_get(got.roles, "wr"), perms));
	LS_CHECK(json_object_get(got.roles, "reader") != NULL);
	as_account_clear(&got);
	LS_CHECK_INT(as_store_role_set(s, "racc", "wr", bad, &err),
	             LS_EBADREQUEST);
	LS_CHECK(strstr(err.text, "permission") != NULL);
	LS_CHECK_INT(as_store_role_set(s, "racc", "bad.role", perms, &err),
	             LS_EBADREQUEST);
	LS_CHECK_INT(as_store_role_set(s, "ghost", "wr", perms, &err),
	             LS_ENOTFOUND);
	LS_CHECK_INT(as_store_role_delete(s, "racc", "reader", &err), 0);
	LS_CHECK_INT(as_store_role_delete(s, "racc", "reader", &err),
	             LS_ENOTFOUND);
	LS_CHECK_INT(as_store_account_get(s, "racc", &got, &err), 0);
	LS_CHECK(json_object_get(got.roles, "reader") == NULL);
	LS_CHECK_INT(json_object_size(got.roles), 1);
	as_account_clear(&got);
	json_decref(perms);
	json_decref(bad);
	as_account_clear(&a);
	as_store_close(&s);
}

LS_TEST(token_put_get_delete)
{
	OPEN_OR_SKIP(s, "tokens");
	as_account a = make_account("tacc", "k", false);
	int64_t now = ls_wall_ms();
	as_token t = make_token("tacc", "token-value-1", now + 60000);
	as_token got = { 0 };
	ls_error err;

	strcpy(t.ip, "10.0.0.1");
	t.web = true;
	LS_CHECK_INT(as_store_account_create(s, &a, &err), 0);
	LS_CHECK_INT(as_store_token_put(s, &t, &err), 0);
	LS_CHECK_INT(as_store_token_put(s, &t, &err), LS_EEXISTS);
	LS_CHECK_INT(as_store_token_get(s, t.hash, now, &got, &err), 0);
	LS_CHECK_STR(got.app_key, "tacc");
	LS_CHECK_STR(got.ip, "10.0.0.1");
	LS_CHECK(got.web);
	LS_CHECK_INT(got.expires_ms, now + 60000);
	LS_CHECK(json_equal(got.roles, t.roles));
	as_token_clear(&got);
	/* Scoped by account: another account cannot delete it. */
	LS_CHECK_INT(as_store_token_delete(s, "other", t.hash, &err),
	             LS_ENOTFOUND);
	LS_CHECK_INT(as_store_token_delete(s, "tacc", t.hash, &err), 0);
	LS_CHECK_INT(as_store_token_get(s, t.hash, now, &got, &err),
	             LS_ENOTFOUND);
	LS_CHECK_INT(as_store_token_delete(s, "tacc", t.hash, &err),
	             LS_ENOTFOUND);
	LS_CHECK_INT(as_store_token_get(s, "not-a-hash", now, &got, &err),
	             LS_EBADREQUEST);
	as_token_clear(&t);
	as_account_clear(&a);
	as_store_close(&s);
}

/* The validation read: token and account facts together, read now. */
LS_TEST(token_lookup_reads_token_and_account)
{
	OPEN_OR_SKIP(s, "lookup");
	as_account a = make_account("lacc", "k", true);
	int64_t now = ls_wall_ms();
	as_token t = make_token("lacc", "lookup-value-1", now + 60000);
	as_token got = { 0 };
	as_account acc = { 0 };
	json_t *perms = json_pack("[{s:s, s:s, s:i}]", "owner", "lacc",
	                          "stream", "s9", "permission", 3);
	bool pub = false, sw = true;
	ls_error err;

	strcpy(t.ip, "10.0.0.2");
	LS_CHECK_INT(as_store_account_create(s, &a, &err), 0);
	LS_CHECK_INT(as_store_token_put(s, &t, &err), 0);
	LS_CHECK_INT(as_store_token_lookup(s, t.hash, now, &got, &acc, &err),
	             0);
	LS_CHECK_STR(got.app_key, "lacc");
	LS_CHECK_STR(got.ip, "10.0.0.2");
	LS_CHECK_INT(got.expires_ms, now + 60000);
	LS_CHECK(json_equal(got.roles, t.roles));
	LS_CHECK_STR(acc.app_key, "lacc");
	LS_CHECK(acc.is_public);
	LS_CHECK(!acc.shared_write);
	LS_CHECK(json_equal(acc.roles, a.roles));
	/* The lookup never hands out secrets. */
	LS_CHECK_STR(acc.secret_key, "");
	LS_CHECK_STR(acc.private_hash, "");
	as_token_clear(&got);
	as_account_clear(&acc);

	/* A role edit is seen by the next lookup... */
	LS_CHECK_INT(as_store_role_set(s, "lacc", "reader", perms, &err), 0);
	LS_CHECK_INT(as_store_token_lookup(s, t.hash, now, &got, &acc, &err),
	             0);
	LS_CHECK(json_equal(json_object_get(acc.roles, "reader"), perms));
	as_token_clear(&got);
	as_account_clear(&acc);
	/* ...and so are the flags. */
	LS_CHECK_INT(as_store_account_flags(s, "lacc", &pub, &sw, &err), 0);
	LS_CHECK(pub);
	LS_CHECK(!sw);
	a.is_public = false;
	a.shared_write = true;
	LS_CHECK_INT(
	        as_store_account_update(
	                s, &a, AS_FIELD_PUBLIC | AS_FIELD_SHARED_WRITE, &err),
	        0);
	LS_CHECK_INT(as_store_account_flags(s, "lacc", &pub, &sw, &err), 0);
	LS_CHECK(!pub);
	LS_CHECK(sw);
	LS_CHECK_INT(as_store_account_flags(s, "nobody", &pub, &sw, &err),
	             LS_ENOTFOUND);
	LS_CHECK_INT(as_store_account_flags(s, "bad key", &pub, &sw, &err),
	             LS_EBADREQUEST);

	/* Expired, revoked, malformed: not found / refused. */
	LS_CHECK_INT(as_store_token_lookup(s, t.hash, now + 60000, &got, &acc,
	                                   &err),
	             LS_ENOTFOUND);
	LS_CHECK_INT(as_store_token_delete(s, "lacc", t.hash, &err), 0);
	LS_CHECK_INT(as_store_token_lookup(s, t.hash, now, &got, &acc, &err),
	             LS_ENOTFOUND);
	LS_CHECK_INT(as_store_token_lookup(s, "nope", now, &got, &acc, &err),
	             LS_EBADREQUEST);
	/* Deleting the account takes its live tokens with it. */
	LS_CHECK_INT(as_store_token_put(s, &t, &err), 0);
	LS_CHECK_INT(as_store_account_delete(s, "lacc", &err), 0);
	LS_CHECK_INT(as_store_token_lookup(s, t.hash, now, &got, &acc, &err),
	             LS_ENOTFOUND);
	json_decref(perms);
	as_token_clear(&t);
	as_account_clear(&a);
	as_store_close(&s);
}

LS_TEST(token_expiry_checked_on_read_and_swept)
{
	OPEN_OR_SKIP(s, "expiry");
	as_account a = make_account("eacc", "k", false);
	int64_t now = ls_wall_ms();
	as_token old = make_token("eacc", "old", now - 1);
	as_token live = make_token("eacc", "live", now + 3600000);
	as_token got = { 0 };
	ls_error err;

	LS_CHECK_INT(as_store_account_create(s, &a, &err), 0);
	LS_CHECK_INT(as_store_token_put(s, &old, &err), 0);
	LS_CHECK_INT(as_store_token_put(s, &live, &err), 0);
	/* Expired tokens are never returned, even before the sweep. */
	LS_CHECK_INT(as_store_token_get(s, old.hash, now, &got, &err),
	             LS_ENOTFOUND);
	LS_CHECK_INT(as_store_token_get(s, live.hash, now, &got, &err), 0);
	as_token_clear(&got);
	/* At a later instant the live one is expired too. */
	LS_CHECK_INT(
	        as_store_token_get(s, live.hash, now + 3600000, &got, &err),
	        LS_ENOTFOUND);
	LS_CHECK_INT(as_store_token_sweep(s, now, &err), 1);
	LS_CHECK_INT(as_store_token_sweep(s, now, &err), 0);
	LS_CHECK_INT(as_store_token_get(s, live.hash, now, &got, &err), 0);
	as_token_clear(&got);
	as_token_clear(&old);
	as_token_clear(&live);
	as_account_clear(&a);
	as_store_close(&s);
}

LS_TEST(token_for_unknown_account_rejected_or_orphaned)
{
	OPEN_OR_SKIP(s, "orphan");
	as_account a = make_account("dacc", "k", false);
	int64_t now = ls_wall_ms();
	as_token t = make_token("dacc", "tok", now + 60000);
	as_token got = { 0 };
	ls_error err;

	LS_CHECK_INT(as_store_account_create(s, &a, &err), 0);
	LS_CHECK_INT(as_store_token_put(s, &t, &err), 0);
	/* Deleting the account deletes its tokens. */
	LS_CHECK_INT(as_store_account_delete(s, "dacc", &err), 0);
	LS_CHECK_INT(as_store_token_get(s, t.hash, now, &got, &err),
	             LS_ENOTFOUND);
	as_account_clear(&a);
	LS_CHECK_INT(as_store_account_get(s, "dacc", &a, &err), LS_ENOTFOUND);
	as_token_clear(&t);
	as_store_close(&s);
}

LS_TEST(reset_replaces_everything)
{
	OPEN_OR_SKIP(s, "reset");
	as_account a = make_account("before", "k", false);
	int64_t now = ls_wall_ms();
	as_token t = make_token("before", "tok", now + 60000);
	json_t *fixture = ast_fixture(), *list = NULL;
	as_account *accounts = NULL, got = { 0 };
	as_token tgot = { 0 };
	size_t n = 0;
	ls_error err;

	LS_CHECK_INT(as_store_account_create(s, &a, &err), 0);
	LS_CHECK_INT(as_store_token_put(s, &t, &err), 0);
	LS_CHECK_INT(as_fixture_parse(fixture, &accounts, &n, &err), 0);
	LS_CHECK_INT(n, 2);
	LS_CHECK_INT(as_store_reset(s, accounts, n, &err), 0);
	LS_CHECK_INT(as_store_account_list(s, &list, &err), 0);
	LS_CHECK_INT(json_array_size(list), 2);
	LS_CHECK_INT(as_store_account_get(s, "before", &got, &err),
	             LS_ENOTFOUND);
	LS_CHECK_INT(as_store_token_get(s, t.hash, now, &tgot, &err),
	             LS_ENOTFOUND);
	LS_CHECK_INT(as_store_account_get(s, "svc1", &got, &err), 0);
	LS_CHECK(got.is_public);
	LS_CHECK(ls_password_verify("svc1_private", got.private_hash));
	LS_CHECK_INT(json_object_size(got.roles), 2);
	as_account_clear(&got);
	LS_CHECK_INT(as_store_account_get(s, "acc1", &got, &err), 0);
	LS_CHECK(json_object_get(got.roles, "weather-reader") != NULL);
	as_account_clear(&got);
	/* Duplicates are refused and change nothing. */
	strcpy(accounts[1].app_key, accounts[0].app_key);
	LS_CHECK_INT(as_store_reset(s, accounts, n, &err), LS_EEXISTS);
	json_decref(list);
	LS_CHECK_INT(as_store_account_list(s, &list, &err), 0);
	LS_CHECK_INT(json_array_size(list), 2);
	json_decref(list);
	as_accounts_free(accounts, n);
	json_decref(fixture);
	as_token_clear(&t);
	as_account_clear(&a);
	as_store_close(&s);
}

#define AST_THREADS 6
#define AST_ROUNDS  40

struct ast_worker {
	as_store *s;
	int id;
	int failures;
};

static void *
ast_worker_main(void *arg)
{
	struct ast_worker *w = arg;
	char key[32], value[32];
	ls_error err;

	snprintf(key, sizeof(key), "thread%d", w->id);
	for (int i = 0; i < AST_ROUNDS; i++) {
		as_token t, got = { 0 };
		snprintf(value, sizeof(value), "t%d-%d", w->id, i);
		t = make_token(key, value, ls_wall_ms() + 60000);
		if (as_store_token_put(w->s, &t, &err) != 0 ||
		    as_store_token_get(w->s, t.hash, ls_wall_ms(), &got,
		                       &err) != 0 ||
		    strcmp(got.app_key, key) != 0) {
			w->failures++;
		}
		as_token_clear(&got);
		as_token_clear(&t);
	}
	return NULL;
}

LS_TEST(concurrent_threads)
{
	OPEN_OR_SKIP(s, "threads");
	struct ast_worker w[AST_THREADS];
	pthread_t th[AST_THREADS];
	ls_error err;

	for (int i = 0; i < AST_THREADS; i++) {
		char key[32];
		snprintf(key, sizeof(key), "thread%d", i);
		as_account a = make_account(key, "k", false);
		LS_CHECK_INT(as_store_account_create(s, &a, &err), 0);
		as_account_clear(&a);
		w[i] = (struct ast_worker){ s, i, 0 };
	}
	for (int i = 0; i < AST_THREADS; i++) {
		pthread_create(&th[i], NULL, ast_worker_main, &w[i]);
	}
	for (int i = 0; i < AST_THREADS; i++) {
		pthread_join(th[i], NULL);
		LS_CHECK_INT(w[i].failures, 0);
	}
	LS_CHECK_INT(as_store_token_sweep(s, ls_wall_ms() + 120000, &err),
	             AST_THREADS * AST_ROUNDS);
	as_store_close(&s);
}

#ifndef AST_MONGODB
/* SQLite specifics: persistence, file mode, schema versioning. */

LS_TEST(sqlite_persists_and_is_private)
{
	OPEN_OR_SKIP(s, "persist");
	as_account a = make_account("keep", "k", true);
	as_account got = { 0 };
	char path[512];
	struct stat st;
	ls_error err;

	LS_CHECK_INT(as_store_account_create(s, &a, &err), 0);
	as_store_close(&s);
	s = as_store_open(ast_uri, &err);
	LS_CHECK(s != NULL);
	if (s == NULL) {
		LS_FAIL(err.text);
	}
	LS_CHECK_STR(as_store_backend(s), "sqlite");
	LS_CHECK_INT(as_store_account_get(s, "keep", &got, &err), 0);
	LS_CHECK(got.is_public);
	as_account_clear(&got);
	as_store_close(&s);
	snprintf(path, sizeof(path), "%s/persist.db", ast_tmpdir());
	LS_CHECK_INT(stat(path, &st), 0);
	LS_CHECK_INT(st.st_mode & 077, 0);
	as_account_clear(&a);
}

LS_TEST(sqlite_schema_versioned)
{
	OPEN_OR_SKIP(s, "schema");
	char path[512];
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	ls_error err;

	as_store_close(&s);
	snprintf(path, sizeof(path), "%s/schema.db", ast_tmpdir());
	LS_CHECK_INT(sqlite3_open(path, &db), SQLITE_OK);
	LS_CHECK_INT(
	        sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL),
	        SQLITE_OK);
	LS_CHECK_INT(sqlite3_step(st), SQLITE_ROW);
	/* 1: accounts and tokens; 2: the accounts' history override */
	LS_CHECK_INT(sqlite3_column_int(st, 0), 2);
	sqlite3_finalize(st);
	/* A database from a newer build is refused, not corrupted. */
	LS_CHECK_INT(
	        sqlite3_exec(db, "PRAGMA user_version = 99", NULL, NULL, NULL),
	        SQLITE_OK);
	sqlite3_close(db);
	s = as_store_open(ast_uri, &err);
	LS_CHECK(s == NULL);
	LS_CHECK(strstr(err.text, "99") != NULL);
	as_store_close(&s);
}

/*
 * A store that another process holds locked is unavailable (transient:
 * clients retry), not a server error: the gateway answers 503/1013.
 */
LS_TEST(sqlite_locked_store_is_unavailable)
{
	OPEN_OR_SKIP(s, "locked");
	as_account a = make_account("busy", "k", false);
	as_account got = { 0 };
	char path[512];
	sqlite3 *db = NULL;
	ls_error err = { 0 };
	int64_t t0;

	snprintf(path, sizeof(path), "%s/locked.db", ast_tmpdir());
	LS_CHECK_INT(sqlite3_open(path, &db), SQLITE_OK);
	LS_CHECK_INT(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL),
	             SQLITE_OK);
	t0 = ls_now_ms();
	LS_CHECK_INT(as_store_account_create(s, &a, &err), LS_EUNAVAILABLE);
	LS_CHECK_INT(ls_proto_code_of(err.code), LS_PC_UNAVAILABLE);
	/* After the store's own busy wait, not at once. */
	LS_CHECK(ls_now_ms() - t0 >= 1000);
	sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	sqlite3_close(db);
	/* Released: the same write succeeds. */
	LS_CHECK_INT(as_store_account_create(s, &a, &err), 0);
	LS_CHECK_INT(as_store_account_get(s, "busy", &got, &err), 0);
	as_account_clear(&got);
	as_account_clear(&a);
	as_store_close(&s);
}

/*
 * A process that holds the WAL locks makes readers fail with SQLite's
 * locking-protocol error (SQLITE_PROTOCOL, after its own retries): also
 * unavailable, not a server error.
 */
LS_TEST(sqlite_wal_locked_read_is_unavailable)
{
	OPEN_OR_SKIP(s, "wallock");
	as_account a = make_account("walk", "k", false);
	as_account got = { 0 };
	char path[512];
	int go[2], done[2];
	pid_t pid;
	ls_error err = { 0 };
	char c = 0;

	LS_CHECK_INT(as_store_account_create(s, &a, &err), 0);
	snprintf(path, sizeof(path), "%s/wallock.db-shm", ast_tmpdir());
	if (pipe(go) != 0 || pipe(done) != 0) {
		LS_FAIL("pipe");
	}
	pid = fork();
	if (pid == 0) {
		/* Another process: fcntl locks of this one would not
		 * conflict with the store's. Bytes 120..127 of the -shm
		 * file are SQLite's WAL locks (os_unix.c, UNIX_SHM_BASE). */
		struct flock fl = { .l_type = F_WRLCK,
			            .l_whence = SEEK_SET,
			            .l_start = 120,
			            .l_len = 8 };
		int fd = open(path, O_RDWR);
		char r = fd >= 0 && fcntl(fd, F_SETLK, &fl) == 0 ? 'y' : 'n';
		if (write(go[1], &r, 1) != 1 || read(done[0], &r, 1) < 0) {
			_exit(1);
		}
		_exit(0);
	}
	LS_CHECK(pid > 0);
	LS_CHECK_INT(read(go[0], &c, 1), 1);
	LS_CHECK_INT(c, 'y');
	LS_CHECK_INT(as_store_account_get(s, "walk", &got, &err),
	             LS_EUNAVAILABLE);
	LS_CHECK_INT(ls_proto_code_of(err.code), LS_PC_UNAVAILABLE);
	LS_CHECK(write(done[1], "x", 1) == 1);
	waitpid(pid, NULL, 0);
	close(go[0]);
	close(go[1]);
	close(done[0]);
	close(done[1]);
	LS_CHECK_INT(as_store_account_get(s, "walk", &got, &err), 0);
	as_account_clear(&got);
	as_account_clear(&a);
	as_store_close(&s);
}

LS_TEST(sqlite_bad_uri)
{
	ls_error err;

	ast_quiet();
	LS_CHECK(as_store_open("sqlite:", &err) == NULL);
	LS_CHECK(as_store_open("postgres://x", &err) == NULL);
	LS_CHECK(strstr(err.text, "unknown") != NULL);
	LS_CHECK(as_store_open("sqlite:/nonexistent-dir/x/y.db", &err) ==
	         NULL);
	ast_tmpdir_remove();
}
#endif

LS_TEST_MAIN()
