/*
 * MongoDB store backend ("mongodb://..."), on libmongoc 1.23.
 *
 * A mongoc_client_pool hands one client to each calling thread for the
 * duration of a call. Collections (database from the URI, default
 * "lightstream"):
 *   accounts {appKey, privateHash, secretKey, isPublic, sharedWrite,
 *             roles: {name: [{owner, stream, permission}]}, createdAt,
 *             updatedAt}                       unique index on appKey
 *   tokens   {_id: sha256 hex, appKey, roles: [names], expiresAt: date,
 *             ip, web}                         TTL index on expiresAt
 * MongoDB's TTL monitor deletes expired tokens about once a minute, so
 * expiry is also checked on every read.
 */
#include "as_store_impl.h"

#include <errno.h>
#include <mongoc/mongoc.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "ls_log.h"
#include "ls_time.h"

#define AS__MONGO_DEFAULT_DB "lightstream"
#define AS__MONGO_DUPKEY     11000
#define AS__LOG              "store"

typedef struct as__mongo {
	as_store base;
	mongoc_uri_t *uri;
	mongoc_client_pool_t *pool;
	char *dbname;
} as__mongo;

static pthread_once_t as__mongo_once = PTHREAD_ONCE_INIT;

/* libmongoc logs through us: libraries never print. */
static void
as__mongo_log(mongoc_log_level_t level, const char *domain,
              const char *message, void *user)
{
	ls_log_level l = LS_LOG_DEBUG;

	(void)user;
	if (level <= MONGOC_LOG_LEVEL_ERROR) {
		l = LS_LOG_ERROR;
	} else if (level == MONGOC_LOG_LEVEL_WARNING) {
		l = LS_LOG_WARN;
	} else if (level <= MONGOC_LOG_LEVEL_INFO) {
		l = LS_LOG_INFO;
	}
	ls_log(l, AS__LOG, "mongoc %s: %s", domain, message);
}

static void
as__mongo_init_once(void)
{
	mongoc_log_set_handler(as__mongo_log, NULL);
	mongoc_init();
}

/*
 * Server errors that mean "not now" rather than "wrong": the retryable
 * errors of MongoDB's retryable-writes specification (host unreachable,
 * shutdown, primary stepped down, network timeout, ...).
 */
static bool
as__mongo_transient(const bson_error_t *e)
{
	static const uint32_t codes[] = { 6,     7,     89,    91,
		                          189,   262,   9001,  10107,
		                          11600, 11602, 13435, 13436 };

	if (e->domain != MONGOC_ERROR_SERVER &&
	    e->domain != MONGOC_ERROR_WRITE_CONCERN) {
		return false;
	}
	for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
		if (e->code == codes[i]) {
			return true;
		}
	}
	return false;
}

static int
as__merr(const bson_error_t *e, ls_error *err, const char *what)
{
	int code = LS_ESERVER;

	if (e->code == AS__MONGO_DUPKEY) {
		return ls_error_set(err, LS_EEXISTS, "%s: already exists",
		                    what);
	}
	if (e->domain == MONGOC_ERROR_SERVER_SELECTION ||
	    e->domain == MONGOC_ERROR_STREAM || as__mongo_transient(e)) {
		code = LS_EUNAVAILABLE;
	}
	ls_warn(AS__LOG, "mongodb: %s: %s", what, e->message);
	return ls_error_set(err, code, "store: %s failed: %s", what,
	                    e->message);
}

static mongoc_collection_t *
as__coll(as__mongo *s, mongoc_client_t *client, const char *name)
{
	return mongoc_client_get_collection(client, s->dbname, name);
}

/* Integer field of a command reply (matchedCount, deletedCount, ...). */
static int64_t
as__reply_count(const bson_t *reply, const char *field)
{
	bson_iter_t it;

	if (bson_iter_init_find(&it, reply, field) &&
	    BSON_ITER_HOLDS_NUMBER(&it)) {
		return bson_iter_as_int64(&it);
	}
	return 0;
}

/* Append a JSON object or array (jansson) as a BSON document/array. */
static bool
as__append_json(bson_t *doc, const char *key, json_t *value)
{
	json_t *wrap = json_pack("{s:O}", "v", value);
	char *text = wrap ? json_dumps(wrap, JSON_COMPACT) : NULL;
	bson_t *tmp = NULL;
	bson_iter_t it;
	bool ok = false;

	if (text != NULL) {
		tmp = bson_new_from_json((const uint8_t *)text, -1, NULL);
	}
	if (tmp != NULL && bson_iter_init_find(&it, tmp, "v")) {
		ok = bson_append_iter(doc, key, -1, &it);
	}
	bson_destroy(tmp);
	free(text);
	json_decref(wrap);
	return ok;
}

/* The JSON (jansson) form of a BSON document or array field. */
static json_t *
as__iter_json(bson_iter_t *it)
{
	const uint8_t *data;
	uint32_t len;
	bson_t sub;
	char *text;
	json_t *out = NULL;
	bool is_array = BSON_ITER_HOLDS_ARRAY(it);

	if (is_array) {
		bson_iter_array(it, &len, &data);
	} else if (BSON_ITER_HOLDS_DOCUMENT(it)) {
		bson_iter_document(it, &len, &data);
	} else {
		return NULL;
	}
	if (!bson_init_static(&sub, data, len)) {
		return NULL;
	}
	text = is_array ? bson_array_as_json(&sub, NULL)
	                : bson_as_relaxed_extended_json(&sub, NULL);
	if (text != NULL) {
		out = json_loads(text, 0, NULL);
		bson_free(text);
	}
	return out;
}

static const char *
as__iter_utf8(const bson_t *doc, const char *key)
{
	bson_iter_t it;

	if (bson_iter_init_find(&it, doc, key) && BSON_ITER_HOLDS_UTF8(&it)) {
		return bson_iter_utf8(&it, NULL);
	}
	return NULL;
}

static bool
as__iter_bool(const bson_t *doc, const char *key)
{
	bson_iter_t it;

	return bson_iter_init_find(&it, doc, key) && bson_iter_as_bool(&it);
}

/*
 * Append roles to doc and insert it: the account and token writes share
 * this so an unencodable roles value fails the same way for both.
 */
static int
as__insert_with_roles(mongoc_collection_t *coll, bson_t *doc, json_t *roles,
                      ls_error *err, const char *what)
{
	bson_error_t e;

	if (!as__append_json(doc, "roles", roles)) {
		return ls_error_set(err, LS_ESERVER,
		                    "store: cannot encode roles");
	}
	if (!mongoc_collection_insert_one(coll, doc, NULL, NULL, &e)) {
		return as__merr(&e, err, what);
	}
	return 0;
}

/* update_one that must match a document (missing/key: as__not_found). */
static int
as__update_one(mongoc_collection_t *coll, const bson_t *filter,
               const bson_t *update, ls_error *err, const char *what,
               const char *missing, const char *key)
{
	bson_t reply;
	bson_error_t e;
	int rc = 0;

	if (!mongoc_collection_update_one(coll, filter, update, NULL, &reply,
	                                  &e)) {
		rc = as__merr(&e, err, what);
	} else if (as__reply_count(&reply, "matchedCount") == 0) {
		rc = as__not_found(err, missing, key);
	}
	bson_destroy(&reply);
	return rc;
}

/* delete_one that must remove a document (missing/key: as__not_found). */
static int
as__delete_one(mongoc_collection_t *coll, const bson_t *filter, ls_error *err,
               const char *what, const char *missing, const char *key)
{
	bson_t reply;
	bson_error_t e;
	int rc = 0;

	if (!mongoc_collection_delete_one(coll, filter, NULL, &reply, &e)) {
		rc = as__merr(&e, err, what);
	} else if (as__reply_count(&reply, "deletedCount") == 0) {
		rc = as__not_found(err, missing, key);
	}
	bson_destroy(&reply);
	return rc;
}

/* Run fn with a client popped from the pool. */
#define AS__WITH_CLIENT(s, client)                                            \
	mongoc_client_t *client = mongoc_client_pool_pop((s)->pool)

static int
as__mongo_account_create(as_store *base, const as_account *a, ls_error *err)
{
	as__mongo *s = (as__mongo *)base;
	AS__WITH_CLIENT(s, client);
	mongoc_collection_t *coll = as__coll(s, client, "accounts");
	bson_t *doc = bson_new();
	int64_t now = ls_wall_ms();
	int rc;

	BSON_APPEND_UTF8(doc, "appKey", a->app_key);
	BSON_APPEND_UTF8(doc, "privateHash", a->private_hash);
	BSON_APPEND_UTF8(doc, "secretKey", a->secret_key);
	BSON_APPEND_BOOL(doc, "isPublic", a->is_public);
	BSON_APPEND_BOOL(doc, "sharedWrite", a->shared_write);
	BSON_APPEND_DATE_TIME(doc, "createdAt", now);
	BSON_APPEND_DATE_TIME(doc, "updatedAt", now);
	if (a->history != NULL &&
	    !as__append_json(doc, "history", a->history)) {
		bson_destroy(doc);
		mongoc_collection_destroy(coll);
		mongoc_client_pool_push(s->pool, client);
		return ls_error_set(err, LS_ESERVER,
		                    "store: cannot encode history");
	}
	rc = as__insert_with_roles(coll, doc, a->roles, err, "account");
	if (rc == LS_EEXISTS) {
		ls_error_set(err, rc, "account %s already exists", a->app_key);
	}
	bson_destroy(doc);
	mongoc_collection_destroy(coll);
	mongoc_client_pool_push(s->pool, client);
	return rc;
}

static int
as__mongo_account_update(as_store *base, const as_account *a, unsigned mask,
                         ls_error *err)
{
	as__mongo *s = (as__mongo *)base;
	AS__WITH_CLIENT(s, client);
	mongoc_collection_t *coll = as__coll(s, client, "accounts");
	bson_t *filter = BCON_NEW("appKey", BCON_UTF8(a->app_key));
	bson_t *update = bson_new();
	bson_t set;
	int rc = 0;

	BSON_APPEND_DOCUMENT_BEGIN(update, "$set", &set);
	if (mask & AS_FIELD_PRIVATE) {
		BSON_APPEND_UTF8(&set, "privateHash", a->private_hash);
	}
	if (mask & AS_FIELD_SECRET) {
		BSON_APPEND_UTF8(&set, "secretKey", a->secret_key);
	}
	if (mask & AS_FIELD_PUBLIC) {
		BSON_APPEND_BOOL(&set, "isPublic", a->is_public);
	}
	if (mask & AS_FIELD_SHARED_WRITE) {
		BSON_APPEND_BOOL(&set, "sharedWrite", a->shared_write);
	}
	if ((mask & AS_FIELD_ROLES) &&
	    !as__append_json(&set, "roles", a->roles)) {
		rc = ls_error_set(err, LS_ESERVER,
		                  "store: cannot encode roles");
	}
	if ((mask & AS_FIELD_HISTORY) &&
	    !(a->history != NULL ? as__append_json(&set, "history", a->history)
	                         : BSON_APPEND_NULL(&set, "history"))) {
		rc = ls_error_set(err, LS_ESERVER,
		                  "store: cannot encode history");
	}
	BSON_APPEND_DATE_TIME(&set, "updatedAt", ls_wall_ms());
	bson_append_document_end(update, &set);
	if (rc == 0) {
		rc = as__update_one(coll, filter, update, err,
		                    "account update", "no such account",
		                    a->app_key);
	}
	bson_destroy(filter);
	bson_destroy(update);
	mongoc_collection_destroy(coll);
	mongoc_client_pool_push(s->pool, client);
	return rc;
}

static int
as__mongo_account_from_doc(const bson_t *doc, as_account *out, ls_error *err)
{
	const char *key = as__iter_utf8(doc, "appKey");
	const char *hash = as__iter_utf8(doc, "privateHash");
	const char *secret = as__iter_utf8(doc, "secretKey");
	bson_iter_t it;

	memset(out, 0, sizeof(*out));
	if (key == NULL || hash == NULL || secret == NULL ||
	    !bson_iter_init_find(&it, doc, "roles")) {
		return ls_error_set(err, LS_ESERVER,
		                    "store: malformed account document");
	}
	snprintf(out->app_key, sizeof(out->app_key), "%s", key);
	snprintf(out->private_hash, sizeof(out->private_hash), "%s", hash);
	snprintf(out->secret_key, sizeof(out->secret_key), "%s", secret);
	out->is_public = as__iter_bool(doc, "isPublic");
	out->shared_write = as__iter_bool(doc, "sharedWrite");
	out->roles = as__iter_json(&it);
	if (bson_iter_init_find(&it, doc, "history") &&
	    BSON_ITER_HOLDS_DOCUMENT(&it)) {
		out->history = as__iter_json(&it);
	}
	if (!json_is_object(out->roles)) {
		as_account_clear(out);
		return ls_error_set(err, LS_ESERVER,
		                    "store: account %s has corrupt roles",
		                    key);
	}
	return 0;
}

/* Find one document; LS_ENOTFOUND when none. *out: bson_destroy(). */
static int
as__find_one(mongoc_collection_t *coll, const bson_t *filter, bson_t *out,
             ls_error *err, const char *what)
{
	bson_t *opts = BCON_NEW("limit", BCON_INT64(1));
	mongoc_cursor_t *cur =
	        mongoc_collection_find_with_opts(coll, filter, opts, NULL);
	const bson_t *doc;
	bson_error_t e;
	int rc;

	if (mongoc_cursor_next(cur, &doc)) {
		bson_copy_to(doc, out);
		rc = 0;
	} else if (mongoc_cursor_error(cur, &e)) {
		rc = as__merr(&e, err, what);
	} else {
		rc = LS_ENOTFOUND;
	}
	mongoc_cursor_destroy(cur);
	bson_destroy(opts);
	return rc;
}

static int
as__mongo_account_get(as_store *base, const char *app_key, as_account *out,
                      ls_error *err)
{
	as__mongo *s = (as__mongo *)base;
	AS__WITH_CLIENT(s, client);
	mongoc_collection_t *coll = as__coll(s, client, "accounts");
	bson_t *filter = BCON_NEW("appKey", BCON_UTF8(app_key));
	bson_t doc;
	int rc = as__find_one(coll, filter, &doc, err, "account read");

	if (rc == 0) {
		rc = as__mongo_account_from_doc(&doc, out, err);
		bson_destroy(&doc);
	} else if (rc == LS_ENOTFOUND) {
		ls_error_set(err, rc, "no such account: %s", app_key);
	}
	bson_destroy(filter);
	mongoc_collection_destroy(coll);
	mongoc_client_pool_push(s->pool, client);
	return rc;
}

static int
as__mongo_account_delete(as_store *base, const char *app_key, ls_error *err)
{
	as__mongo *s = (as__mongo *)base;
	AS__WITH_CLIENT(s, client);
	mongoc_collection_t *accounts = as__coll(s, client, "accounts");
	mongoc_collection_t *tokens = as__coll(s, client, "tokens");
	bson_t *filter = BCON_NEW("appKey", BCON_UTF8(app_key));
	bson_error_t e;
	int rc = as__delete_one(accounts, filter, err, "account delete",
	                        "no such account", app_key);

	/* Tokens of a deleted account are useless; validation also checks
	 * that the account exists, so a failure here is not fatal. */
	if (rc == 0 &&
	    !mongoc_collection_delete_many(tokens, filter, NULL, NULL, &e)) {
		ls_warn(AS__LOG, "mongodb: deleting tokens of %s: %s", app_key,
		        e.message);
	}
	bson_destroy(filter);
	mongoc_collection_destroy(accounts);
	mongoc_collection_destroy(tokens);
	mongoc_client_pool_push(s->pool, client);
	return rc;
}

static int
as__mongo_account_list(as_store *base, json_t **out, ls_error *err)
{
	as__mongo *s = (as__mongo *)base;
	AS__WITH_CLIENT(s, client);
	mongoc_collection_t *coll = as__coll(s, client, "accounts");
	bson_t *filter = bson_new();
	bson_t *opts = BCON_NEW("sort", "{", "appKey", BCON_INT32(1), "}");
	mongoc_cursor_t *cur =
	        mongoc_collection_find_with_opts(coll, filter, opts, NULL);
	json_t *list = json_array();
	const bson_t *doc;
	bson_error_t e;
	int rc = list ? 0 : ls_error_set(err, -ENOMEM, "out of memory");

	while (rc == 0 && mongoc_cursor_next(cur, &doc)) {
		as_account a;
		json_t *view;
		if ((rc = as__mongo_account_from_doc(doc, &a, err)) != 0) {
			break;
		}
		view = as__account_list_view(&a);
		as_account_clear(&a);
		if (view == NULL || json_array_append_new(list, view) != 0) {
			rc = ls_error_set(err, -ENOMEM, "out of memory");
		}
	}
	if (rc == 0 && mongoc_cursor_error(cur, &e)) {
		rc = as__merr(&e, err, "account list");
	}
	mongoc_cursor_destroy(cur);
	bson_destroy(filter);
	bson_destroy(opts);
	mongoc_collection_destroy(coll);
	mongoc_client_pool_push(s->pool, client);
	if (rc != 0) {
		json_decref(list);
		return rc;
	}
	*out = list;
	return 0;
}

/*
 * Roles are edited with $set / $unset of "roles.<name>" in one update, so
 * concurrent edits of different roles never lose each other. Role names
 * are [A-Za-z0-9_-], safe as field-path components.
 */
static int
as__mongo_role_edit(as_store *base, const char *app_key, const char *role,
                    json_t *perms, ls_error *err)
{
	as__mongo *s = (as__mongo *)base;
	AS__WITH_CLIENT(s, client);
	mongoc_collection_t *coll = as__coll(s, client, "accounts");
	bson_t *filter = BCON_NEW("appKey", BCON_UTF8(app_key));
	bson_t *update = bson_new();
	bson_t op;
	char path[LS_ROLE_MAX + 8];
	int rc = 0;

	snprintf(path, sizeof(path), "roles.%s", role);
	if (perms == NULL) {
		bson_t exists;
		BSON_APPEND_DOCUMENT_BEGIN(filter, path, &exists);
		BSON_APPEND_BOOL(&exists, "$exists", true);
		bson_append_document_end(filter, &exists);
		BSON_APPEND_DOCUMENT_BEGIN(update, "$unset", &op);
		BSON_APPEND_UTF8(&op, path, "");
		bson_append_document_end(update, &op);
	} else {
		BSON_APPEND_DOCUMENT_BEGIN(update, "$set", &op);
		if (!as__append_json(&op, path, perms)) {
			rc = ls_error_set(err, LS_ESERVER,
			                  "store: cannot encode permissions");
		}
		bson_append_document_end(update, &op);
	}
	if (rc == 0) {
		rc = as__update_one(coll, filter, update, err, "role update",
		                    perms ? "no such account"
		                          : "no such account or role",
		                    app_key);
	}
	bson_destroy(filter);
	bson_destroy(update);
	mongoc_collection_destroy(coll);
	mongoc_client_pool_push(s->pool, client);
	return rc;
}

static int
as__mongo_role_set(as_store *base, const char *app_key, const char *role,
                   json_t *perms, ls_error *err)
{
	return as__mongo_role_edit(base, app_key, role, perms, err);
}

static int
as__mongo_role_delete(as_store *base, const char *app_key, const char *role,
                      ls_error *err)
{
	return as__mongo_role_edit(base, app_key, role, NULL, err);
}

/*
 * Not atomic: a standalone server has no multi-document transactions.
 * Tokens go first so no token outlives its account's reset.
 */
static int
as__mongo_reset(as_store *base, const as_account *accounts, size_t n,
                ls_error *err)
{
	as__mongo *s = (as__mongo *)base;
	mongoc_client_t *client = mongoc_client_pool_pop(s->pool);
	mongoc_collection_t *acc = as__coll(s, client, "accounts");
	mongoc_collection_t *tok = as__coll(s, client, "tokens");
	bson_t *all = bson_new();
	bson_error_t e;
	int rc = 0;

	if (!mongoc_collection_delete_many(tok, all, NULL, NULL, &e) ||
	    !mongoc_collection_delete_many(acc, all, NULL, NULL, &e)) {
		rc = as__merr(&e, err, "reset");
	}
	bson_destroy(all);
	mongoc_collection_destroy(acc);
	mongoc_collection_destroy(tok);
	mongoc_client_pool_push(s->pool, client);
	for (size_t i = 0; rc == 0 && i < n; i++) {
		rc = as__mongo_account_create(base, &accounts[i], err);
	}
	return rc;
}

static int
as__mongo_token_put(as_store *base, const as_token *t, ls_error *err)
{
	as__mongo *s = (as__mongo *)base;
	AS__WITH_CLIENT(s, client);
	mongoc_collection_t *coll = as__coll(s, client, "tokens");
	bson_t *doc = bson_new();
	int rc;

	BSON_APPEND_UTF8(doc, "_id", t->hash);
	BSON_APPEND_UTF8(doc, "appKey", t->app_key);
	BSON_APPEND_DATE_TIME(doc, "expiresAt", t->expires_ms);
	BSON_APPEND_UTF8(doc, "ip", t->ip);
	BSON_APPEND_BOOL(doc, "web", t->web);
	rc = as__insert_with_roles(coll, doc, t->roles, err, "token");
	bson_destroy(doc);
	mongoc_collection_destroy(coll);
	mongoc_client_pool_push(s->pool, client);
	return rc;
}

static int
as__mongo_token_get(as_store *base, const char *hash, int64_t now_ms,
                    as_token *out, ls_error *err)
{
	as__mongo *s = (as__mongo *)base;
	AS__WITH_CLIENT(s, client);
	mongoc_collection_t *coll = as__coll(s, client, "tokens");
	bson_t *filter = BCON_NEW("_id", BCON_UTF8(hash), "expiresAt", "{",
	                          "$gt", BCON_DATE_TIME(now_ms), "}");
	bson_t doc;
	bson_iter_t it;
	const char *key, *ip;
	int rc = as__find_one(coll, filter, &doc, err, "token read");

	if (rc == LS_ENOTFOUND) {
		ls_error_set(err, rc, "no such token");
	}
	if (rc == 0) {
		key = as__iter_utf8(&doc, "appKey");
		ip = as__iter_utf8(&doc, "ip");
		memcpy(out->hash, hash, sizeof(out->hash));
		snprintf(out->app_key, sizeof(out->app_key), "%s",
		         key ? key : "");
		snprintf(out->ip, sizeof(out->ip), "%s", ip ? ip : "");
		out->web = as__iter_bool(&doc, "web");
		if (bson_iter_init_find(&it, &doc, "expiresAt") &&
		    BSON_ITER_HOLDS_DATE_TIME(&it)) {
			out->expires_ms = bson_iter_date_time(&it);
		}
		if (bson_iter_init_find(&it, &doc, "roles")) {
			out->roles = as__iter_json(&it);
		}
		if (key == NULL || !json_is_array(out->roles) ||
		    out->expires_ms <= now_ms) {
			as_token_clear(out);
			rc = ls_error_set(err, LS_ESERVER,
			                  "store: malformed token document");
		}
		bson_destroy(&doc);
	}
	bson_destroy(filter);
	mongoc_collection_destroy(coll);
	mongoc_client_pool_push(s->pool, client);
	return rc;
}

static int
as__mongo_token_delete(as_store *base, const char *app_key, const char *hash,
                       ls_error *err)
{
	as__mongo *s = (as__mongo *)base;
	AS__WITH_CLIENT(s, client);
	mongoc_collection_t *coll = as__coll(s, client, "tokens");
	bson_t *filter =
	        BCON_NEW("_id", BCON_UTF8(hash), "appKey", BCON_UTF8(app_key));
	int rc = as__delete_one(coll, filter, err, "token delete",
	                        "no such token", NULL);

	bson_destroy(filter);
	mongoc_collection_destroy(coll);
	mongoc_client_pool_push(s->pool, client);
	return rc;
}

static int
as__mongo_token_sweep(as_store *base, int64_t now_ms, ls_error *err)
{
	as__mongo *s = (as__mongo *)base;
	AS__WITH_CLIENT(s, client);
	mongoc_collection_t *coll = as__coll(s, client, "tokens");
	bson_t *filter = BCON_NEW("expiresAt", "{", "$lte",
	                          BCON_DATE_TIME(now_ms), "}");
	bson_t reply;
	bson_error_t e;
	int rc;

	if (!mongoc_collection_delete_many(coll, filter, NULL, &reply, &e)) {
		rc = as__merr(&e, err, "token sweep");
	} else {
		rc = (int)as__reply_count(&reply, "deletedCount");
	}
	bson_destroy(&reply);
	bson_destroy(filter);
	mongoc_collection_destroy(coll);
	mongoc_client_pool_push(s->pool, client);
	return rc;
}

static void
as__mongo_close(as_store *base)
{
	as__mongo *s = (as__mongo *)base;

	if (s->pool != NULL) {
		mongoc_client_pool_destroy(s->pool);
	}
	mongoc_uri_destroy(s->uri);
	free(s->dbname);
	free(s);
}

/* Ping, then create the indexes (idempotent). */
static int
as__mongo_prepare(as__mongo *s, ls_error *err)
{
	mongoc_client_t *client = mongoc_client_pool_pop(s->pool);
	bson_t *ping = BCON_NEW("ping", BCON_INT32(1));
	bson_t *acc_idx =
	        BCON_NEW("createIndexes", BCON_UTF8("accounts"), "indexes",
	                 "[", "{", "key", "{", "appKey", BCON_INT32(1), "}",
	                 "name", BCON_UTF8("appKey_unique"), "unique",
	                 BCON_BOOL(true), "}", "]");
	bson_t *tok_idx = BCON_NEW(
	        "createIndexes", BCON_UTF8("tokens"), "indexes", "[", "{",
	        "key", "{", "expiresAt", BCON_INT32(1), "}", "name",
	        BCON_UTF8("expiresAt_ttl"), "expireAfterSeconds",
	        BCON_INT32(0), "}", "{", "key", "{", "appKey", BCON_INT32(1),
	        "}", "name", BCON_UTF8("appKey"), "}", "]");
	bson_t reply;
	bson_error_t e;
	int rc = 0;

	if (!mongoc_client_command_simple(client, "admin", ping, NULL, &reply,
	                                  &e)) {
		rc = ls_error_set(err, LS_EUNAVAILABLE,
		                  "store: MongoDB unreachable: %s", e.message);
	}
	bson_destroy(&reply);
	if (rc == 0) {
		if (!mongoc_client_write_command_with_opts(
		            client, s->dbname, acc_idx, NULL, &reply, &e)) {
			rc = as__merr(&e, err, "createIndexes accounts");
		}
		bson_destroy(&reply);
	}
	if (rc == 0) {
		if (!mongoc_client_write_command_with_opts(
		            client, s->dbname, tok_idx, NULL, &reply, &e)) {
			rc = as__merr(&e, err, "createIndexes tokens");
		}
		bson_destroy(&reply);
	}
	bson_destroy(ping);
	bson_destroy(acc_idx);
	bson_destroy(tok_idx);
	mongoc_client_pool_push(s->pool, client);
	return rc;
}

static const as__store_ops as__mongo_ops = {
	.name = "mongodb",
	.account_create = as__mongo_account_create,
	.account_update = as__mongo_account_update,
	.account_get = as__mongo_account_get,
	.account_delete = as__mongo_account_delete,
	.account_list = as__mongo_account_list,
	.role_set = as__mongo_role_set,
	.role_delete = as__mongo_role_delete,
	.reset = as__mongo_reset,
	.token_put = as__mongo_token_put,
	.token_get = as__mongo_token_get,
	.token_delete = as__mongo_token_delete,
	.token_sweep = as__mongo_token_sweep,
	.close = as__mongo_close,
};

as_store *
as__store_mongo_open(const char *uri, ls_error *err)
{
	as__mongo *s = calloc(1, sizeof(*s));
	const char *db;
	bson_error_t e;

	pthread_once(&as__mongo_once, as__mongo_init_once);
	if (s == NULL) {
		ls_error_set(err, -ENOMEM, "out of memory");
		return NULL;
	}
	s->base.ops = &as__mongo_ops;
	s->uri = mongoc_uri_new_with_error(uri, &e);
	if (s->uri == NULL) {
		ls_error_set(err, LS_ECONFIG, "store: invalid MongoDB URI: %s",
		             e.message);
		goto fail;
	}
	/* Fail fast when the server is down instead of 30 s per call. */
	if (!mongoc_uri_has_option(s->uri,
	                           MONGOC_URI_SERVERSELECTIONTIMEOUTMS)) {
		mongoc_uri_set_option_as_int32(
		        s->uri, MONGOC_URI_SERVERSELECTIONTIMEOUTMS, 5000);
	}
	db = mongoc_uri_get_database(s->uri);
	s->dbname = strdup(db && *db ? db : AS__MONGO_DEFAULT_DB);
	s->pool = mongoc_client_pool_new_with_error(s->uri, &e);
	if (s->dbname == NULL || s->pool == NULL) {
		ls_error_set(err, LS_ECONFIG, "store: cannot create pool: %s",
		             s->pool ? "out of memory" : e.message);
		goto fail;
	}
	mongoc_client_pool_set_error_api(s->pool, MONGOC_ERROR_API_VERSION_2);
	mongoc_client_pool_set_appname(s->pool, "lightstream");
	if (as__mongo_prepare(s, err) != 0) {
		goto fail;
	}
	ls_info(AS__LOG, "mongodb store, database %s", s->dbname);
	return &s->base;

fail:
	as__mongo_close(&s->base);
	return NULL;
}
