/*
 * SQLite store backend ("sqlite:PATH"), the default.
 *
 * A mutex-protected pool of connections, each with its own prepared
 * statements, so worker threads read concurrently (WAL) and writes queue
 * on SQLite's own lock with a busy timeout. The schema is versioned with
 * PRAGMA user_version and migrated at open. Expired tokens are filtered on
 * every read and deleted by a background sweeper.
 */
#include "as_store_impl.h"
#include "as_json_cache.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ls_log.h"
#include "ls_time.h"

#define AS__SQLITE_POOL     8     /* connections at most */
#define AS__SQLITE_BUSY_MS  5000  /* wait for the write lock */
#define AS__SQLITE_SWEEP_MS 60000 /* expired-token sweep period */
#define AS__LOG             "store"

/*
 * Schema migrations, applied in order; user_version is the number
 * applied. Never edit a released entry: append a new one.
 */
static const char *const as__migrations[] = {
	/* 1: accounts and tokens. */
	"CREATE TABLE accounts ("
	"  app_key TEXT PRIMARY KEY,"
	"  private_hash TEXT NOT NULL,"
	"  secret_key TEXT NOT NULL,"
	"  is_public INTEGER NOT NULL DEFAULT 0,"
	"  shared_write INTEGER NOT NULL DEFAULT 0,"
	"  roles TEXT NOT NULL DEFAULT '{}',"
	"  created_ms INTEGER NOT NULL,"
	"  updated_ms INTEGER NOT NULL"
	") WITHOUT ROWID;"
	"CREATE TABLE tokens ("
	"  hash TEXT PRIMARY KEY,"
	"  app_key TEXT NOT NULL REFERENCES accounts(app_key)"
	"    ON DELETE CASCADE,"
	"  roles TEXT NOT NULL,"
	"  expires_ms INTEGER NOT NULL,"
	"  ip TEXT NOT NULL DEFAULT '',"
	"  web INTEGER NOT NULL DEFAULT 0"
	") WITHOUT ROWID;"
	"CREATE INDEX tokens_expires ON tokens(expires_ms);"
	"CREATE INDEX tokens_app_key ON tokens(app_key);",
	/* 2: an account's history override, JSON {"size","ttl"}. */
	"ALTER TABLE accounts ADD COLUMN history TEXT;",
};
#define AS__SCHEMA_VERSION                                                    \
	((int)(sizeof(as__migrations) / sizeof(as__migrations[0])))

enum as__st {
	ST_BEGIN,
	ST_COMMIT,
	ST_ROLLBACK,
	ST_ACC_INSERT,
	ST_ACC_GET,
	ST_ACC_UPDATE,
	ST_ACC_ROLES,
	ST_ACC_DELETE,
	ST_ACC_LIST,
	ST_ACC_DELETE_ALL,
	ST_TOK_INSERT,
	ST_TOK_GET,
	ST_TOK_DELETE,
	ST_TOK_DELETE_ALL,
	ST_TOK_SWEEP,
	ST_TOK_LOOKUP,
	ST_ACC_FLAGS,
	ST_COUNT
};

static const char *const as__sql[ST_COUNT] = {
	[ST_BEGIN] = "BEGIN IMMEDIATE",
	[ST_COMMIT] = "COMMIT",
	[ST_ROLLBACK] = "ROLLBACK",
	[ST_ACC_INSERT] = "INSERT INTO accounts (app_key, private_hash, "
	                  "secret_key, is_public, shared_write, roles, "
	                  "created_ms, updated_ms, history) "
	                  "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7, ?8)",
	[ST_ACC_GET] = "SELECT private_hash, secret_key, is_public, "
	               "shared_write, roles, history FROM accounts "
	               "WHERE app_key = ?1",
	/* NULL parameters leave their column as it is. */
	[ST_ACC_UPDATE] = "UPDATE accounts SET "
	                  "private_hash = coalesce(?2, private_hash), "
	                  "secret_key = coalesce(?3, secret_key), "
	                  "is_public = coalesce(?4, is_public), "
	                  "shared_write = coalesce(?5, shared_write), "
	                  "roles = coalesce(?6, roles), updated_ms = ?7, "
	                  "history = CASE WHEN ?8 THEN ?9 ELSE history END "
	                  "WHERE app_key = ?1",
	[ST_ACC_ROLES] = "UPDATE accounts SET roles = ?2, updated_ms = ?3 "
	                 "WHERE app_key = ?1",
	[ST_ACC_DELETE] = "DELETE FROM accounts WHERE app_key = ?1",
	[ST_ACC_LIST] = "SELECT app_key, is_public, shared_write, roles, "
	                "history FROM accounts ORDER BY app_key",
	[ST_ACC_DELETE_ALL] = "DELETE FROM accounts",
	[ST_TOK_INSERT] =
	        "INSERT INTO tokens (hash, app_key, roles, "
	        "expires_ms, ip, web) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
	[ST_TOK_GET] =
	        "SELECT app_key, roles, expires_ms, ip, web FROM tokens "
	        "WHERE hash = ?1 AND expires_ms > ?2",
	[ST_TOK_DELETE] =
	        "DELETE FROM tokens WHERE hash = ?1 AND app_key = ?2",
	[ST_TOK_DELETE_ALL] = "DELETE FROM tokens",
	[ST_TOK_SWEEP] = "DELETE FROM tokens WHERE expires_ms <= ?1",
	/* A validation: the token and its account in one step. */
	[ST_TOK_LOOKUP] =
	        "SELECT t.app_key, t.roles, t.expires_ms, t.ip, t.web, "
	        "a.is_public, a.shared_write, a.roles "
	        "FROM tokens AS t JOIN accounts AS a ON a.app_key = t.app_key "
	        "WHERE t.hash = ?1 AND t.expires_ms > ?2",
	[ST_ACC_FLAGS] = "SELECT is_public, shared_write FROM accounts "
	                 "WHERE app_key = ?1",
};

typedef struct as__conn {
	sqlite3 *db;
	sqlite3_stmt *st[ST_COUNT];
	struct as__conn *next_free;
} as__conn;

typedef struct as__sqlite {
	as_store base;
	char *path;
	pthread_mutex_t mu;
	pthread_cond_t cv;      /* a connection was released */
	pthread_cond_t stop_cv; /* wakes the sweeper to stop */
	as__conn conns[AS__SQLITE_POOL];
	int nopen;
	as__conn *free_list;
	bool stopping;
	bool sweeper_started;
	pthread_t sweeper;
	as__jcache *parsed; /* roles texts of validations, read-only */
} as__sqlite;

static int
as__sqlerr(sqlite3 *db, int rc, ls_error *err, const char *what)
{
	int code = LS_ESERVER;

	/*
	 * Classify by the primary code: extended codes (SQLITE_BUSY_RECOVERY,
	 * SQLITE_LOCKED_SHAREDCACHE, SQLITE_IOERR_READ, ...) carry it in the
	 * low byte. A store that is busy, locked, unreadable, full or
	 * failing I/O is unavailable (docs/protocol.md: clients retry); the
	 * rest is ours to fix.
	 */
	if (db != NULL && rc == SQLITE_ERROR) {
		rc = sqlite3_extended_errcode(db);
	}
	switch (rc & 0xff) {
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
	case SQLITE_IOERR:
	case SQLITE_CANTOPEN:
	case SQLITE_FULL:
	case SQLITE_READONLY:
	case SQLITE_PROTOCOL:
	case SQLITE_NOTADB:
	case SQLITE_CORRUPT:
	case SQLITE_PERM:
		code = LS_EUNAVAILABLE;
		break;
	case SQLITE_NOMEM:
		code = -ENOMEM;
		break;
	default:
		break;
	}
	ls_warn(AS__LOG, "sqlite: %s: %s", what,
	        db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
	return ls_error_set(err, code, "store: %s failed: %s", what,
	                    db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
}

static int
as__exec(sqlite3 *db, const char *sql, ls_error *err)
{
	int rc = sqlite3_exec(db, sql, NULL, NULL, NULL);

	return rc == SQLITE_OK ? 0 : as__sqlerr(db, rc, err, "statement");
}

static int
as__migrate(sqlite3 *db, const char *path, ls_error *err)
{
	sqlite3_stmt *st = NULL;
	int version = 0, rc;

	if ((rc = as__exec(db, "BEGIN IMMEDIATE", err)) != 0) {
		return rc;
	}
	if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL) !=
	            SQLITE_OK ||
	    sqlite3_step(st) != SQLITE_ROW) {
		rc = as__sqlerr(db, SQLITE_ERROR, err, "reading user_version");
		goto fail;
	}
	version = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	st = NULL;
	if (version > AS__SCHEMA_VERSION) {
		rc = ls_error_set(
		        err, LS_ECONFIG,
		        "store: %s has schema version %d, newer than "
		        "this build (%d)",
		        path, version, AS__SCHEMA_VERSION);
		goto fail;
	}
	for (int v = version; v < AS__SCHEMA_VERSION; v++) {
		char pragma[64];
		if ((rc = as__exec(db, as__migrations[v], err)) != 0) {
			goto fail;
		}
		snprintf(pragma, sizeof(pragma), "PRAGMA user_version = %d",
		         v + 1);
		if ((rc = as__exec(db, pragma, err)) != 0) {
			goto fail;
		}
		ls_info(AS__LOG, "sqlite: %s migrated to schema version %d",
		        path, v + 1);
	}
	return as__exec(db, "COMMIT", err);

fail:
	sqlite3_finalize(st);
	sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	return rc;
}

static int
as__conn_open(as__sqlite *s, as__conn *c, bool migrate, ls_error *err)
{
	int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
	            SQLITE_OPEN_NOMUTEX;
	int rc;

	memset(c, 0, sizeof(*c));
	rc = sqlite3_open_v2(s->path, &c->db, flags, NULL);
	if (rc != SQLITE_OK) {
		rc = ls_error_set(err, LS_EUNAVAILABLE,
		                  "store: cannot open %s: %s", s->path,
		                  c->db ? sqlite3_errmsg(c->db)
		                        : sqlite3_errstr(rc));
		goto fail;
	}
	sqlite3_busy_timeout(c->db, AS__SQLITE_BUSY_MS);
	sqlite3_extended_result_codes(c->db, 1);
	if ((rc = as__exec(c->db, "PRAGMA journal_mode = WAL", err)) != 0 ||
	    (rc = as__exec(c->db, "PRAGMA synchronous = NORMAL", err)) != 0 ||
	    (rc = as__exec(c->db, "PRAGMA foreign_keys = ON", err)) != 0) {
		goto fail;
	}
	if (migrate && (rc = as__migrate(c->db, s->path, err)) != 0) {
		goto fail;
	}
	for (int i = 0; i < ST_COUNT; i++) {
		rc = sqlite3_prepare_v3(c->db, as__sql[i], -1,
		                        SQLITE_PREPARE_PERSISTENT, &c->st[i],
		                        NULL);
		if (rc != SQLITE_OK) {
			rc = as__sqlerr(c->db, rc, err, "prepare");
			goto fail;
		}
	}
	return 0;

fail:
	for (int i = 0; i < ST_COUNT; i++) {
		sqlite3_finalize(c->st[i]);
	}
	sqlite3_close(c->db);
	memset(c, 0, sizeof(*c));
	return rc;
}

static void
as__conn_close(as__conn *c)
{
	for (int i = 0; i < ST_COUNT; i++) {
		sqlite3_finalize(c->st[i]);
	}
	sqlite3_close(c->db);
	memset(c, 0, sizeof(*c));
}

/* Take a connection from the pool, opening one when none is idle. */
static as__conn *
as__acquire(as__sqlite *s, ls_error *err)
{
	as__conn *c = NULL;

	pthread_mutex_lock(&s->mu);
	while (s->free_list == NULL && s->nopen == AS__SQLITE_POOL) {
		pthread_cond_wait(&s->cv, &s->mu);
	}
	if (s->free_list != NULL) {
		c = s->free_list;
		s->free_list = c->next_free;
	} else if (as__conn_open(s, &s->conns[s->nopen], false, err) == 0) {
		c = &s->conns[s->nopen++];
	}
	pthread_mutex_unlock(&s->mu);
	return c;
}

static void
as__release(as__sqlite *s, as__conn *c)
{
	pthread_mutex_lock(&s->mu);
	c->next_free = s->free_list;
	s->free_list = c;
	pthread_cond_signal(&s->cv);
	pthread_mutex_unlock(&s->mu);
}

/* Reset a statement after use, keeping it prepared. */
static sqlite3_stmt *
as__st(as__conn *c, enum as__st which)
{
	sqlite3_stmt *st = c->st[which];

	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return st;
}

/* Run a statement that returns no rows. */
static int
as__step_done(as__conn *c, sqlite3_stmt *st, ls_error *err, const char *what)
{
	int rc = sqlite3_step(st);

	sqlite3_reset(st);
	if (rc == SQLITE_DONE) {
		return 0;
	}
	if ((rc & 0xff) == SQLITE_CONSTRAINT) {
		if (rc == SQLITE_CONSTRAINT_FOREIGNKEY) {
			return ls_error_set(err, LS_ENOTFOUND,
			                    "%s: no such account", what);
		}
		return ls_error_set(err, LS_EEXISTS, "%s: already exists",
		                    what);
	}
	return as__sqlerr(c->db, rc, err, what);
}

static int
as__begin(as__conn *c, ls_error *err)
{
	return as__step_done(c, as__st(c, ST_BEGIN), err, "begin");
}

static int
as__commit(as__conn *c, ls_error *err)
{
	return as__step_done(c, as__st(c, ST_COMMIT), err, "commit");
}

static void
as__rollback(as__conn *c)
{
	sqlite3_stmt *st = as__st(c, ST_ROLLBACK);

	sqlite3_step(st);
	sqlite3_reset(st);
}

static int
as__bind_text(sqlite3_stmt *st, int i, const char *v)
{
	return sqlite3_bind_text(st, i, v, -1, SQLITE_TRANSIENT);
}

/* Bind a JSON value as compact text (NULL stays NULL). */
static int
as__bind_json(sqlite3_stmt *st, int i, json_t *v)
{
	char *text;

	if (v == NULL) {
		return sqlite3_bind_null(st, i);
	}
	text = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS);
	if (text == NULL) {
		return SQLITE_NOMEM;
	}
	return sqlite3_bind_text(st, i, text, -1, free);
}

static json_t *
as__column_json(sqlite3_stmt *st, int col)
{
	const char *text = (const char *)sqlite3_column_text(st, col);

	return text ? json_loads(text, 0, NULL) : NULL;
}

/*
 * Finish a bound write: bind_rc is the result of the caller's bind chain
 * (non-zero only when a bind ran out of memory). With missing set, a
 * write that changed no row is reported as not found. Shared so every
 * write maps bind, constraint and "no row" failures identically.
 */
static int
as__write(as__conn *c, sqlite3_stmt *st, int bind_rc, ls_error *err,
          const char *what, const char *missing, const char *key)
{
	int rc;

	if (bind_rc) {
		return as__sqlerr(c->db, SQLITE_NOMEM, err, "bind");
	}
	rc = as__step_done(c, st, err, what);
	if (rc == 0 && missing != NULL && sqlite3_changes(c->db) == 0) {
		rc = as__not_found(err, missing, key);
	}
	return rc;
}

/*
 * Step a query that yields at most one row: 0 with st on the row,
 * the not-found error when there is none, else the SQLite error. The
 * caller resets st in every case.
 */
static int
as__step_row(as__conn *c, sqlite3_stmt *st, ls_error *err, const char *what,
             const char *missing, const char *key)
{
	int rc = sqlite3_step(st);

	if (rc == SQLITE_ROW) {
		return 0;
	}
	if (rc == SQLITE_DONE) {
		return as__not_found(err, missing, key);
	}
	return as__sqlerr(c->db, rc, err, what);
}

static int
as__insert_account(as__conn *c, const as_account *a, int64_t now,
                   ls_error *err)
{
	sqlite3_stmt *st = as__st(c, ST_ACC_INSERT);

	int bind_rc = as__bind_text(st, 1, a->app_key) ||
	              as__bind_text(st, 2, a->private_hash) ||
	              as__bind_text(st, 3, a->secret_key) ||
	              sqlite3_bind_int(st, 4, a->is_public) ||
	              sqlite3_bind_int(st, 5, a->shared_write) ||
	              as__bind_json(st, 6, a->roles) ||
	              sqlite3_bind_int64(st, 7, now) ||
	              (a->history != NULL && as__bind_json(st, 8, a->history));

	return as__write(c, st, bind_rc, err, "account", NULL, NULL);
}

static int
as__sqlite_account_create(as_store *base, const as_account *a, ls_error *err)
{
	as__sqlite *s = (as__sqlite *)base;
	as__conn *c = as__acquire(s, err);
	int rc;

	if (c == NULL) {
		return err ? err->code : LS_EUNAVAILABLE;
	}
	rc = as__insert_account(c, a, ls_wall_ms(), err);
	if (rc == LS_EEXISTS) {
		ls_error_set(err, rc, "account %s already exists", a->app_key);
	}
	as__release(s, c);
	return rc;
}

static int
as__sqlite_account_update(as_store *base, const as_account *a, unsigned mask,
                          ls_error *err)
{
	as__sqlite *s = (as__sqlite *)base;
	as__conn *c = as__acquire(s, err);
	sqlite3_stmt *st;
	int rc, bind_rc;

	if (c == NULL) {
		return err ? err->code : LS_EUNAVAILABLE;
	}
	st = as__st(c, ST_ACC_UPDATE);
	bind_rc =
	        as__bind_text(st, 1, a->app_key) ||
	        ((mask & AS_FIELD_PRIVATE) &&
	         as__bind_text(st, 2, a->private_hash)) ||
	        ((mask & AS_FIELD_SECRET) &&
	         as__bind_text(st, 3, a->secret_key)) ||
	        ((mask & AS_FIELD_PUBLIC) &&
	         sqlite3_bind_int(st, 4, a->is_public)) ||
	        ((mask & AS_FIELD_SHARED_WRITE) &&
	         sqlite3_bind_int(st, 5, a->shared_write)) ||
	        ((mask & AS_FIELD_ROLES) && as__bind_json(st, 6, a->roles)) ||
	        sqlite3_bind_int64(st, 7, ls_wall_ms()) ||
	        sqlite3_bind_int(st, 8, (mask & AS_FIELD_HISTORY) != 0) ||
	        ((mask & AS_FIELD_HISTORY) && a->history != NULL &&
	         as__bind_json(st, 9, a->history));
	rc = as__write(c, st, bind_rc, err, "account update",
	               "no such account", a->app_key);
	as__release(s, c);
	return rc;
}

/* Read one account on a held connection. */
static int
as__get_account(as__conn *c, const char *app_key, as_account *out,
                ls_error *err)
{
	sqlite3_stmt *st = as__st(c, ST_ACC_GET);
	const char *hash, *secret;
	int rc;

	memset(out, 0, sizeof(*out));
	if (as__bind_text(st, 1, app_key)) {
		return as__sqlerr(c->db, SQLITE_NOMEM, err, "bind");
	}
	rc = as__step_row(c, st, err, "account read", "no such account",
	                  app_key);
	if (rc != 0) {
		sqlite3_reset(st);
		return rc;
	}
	hash = (const char *)sqlite3_column_text(st, 0);
	secret = (const char *)sqlite3_column_text(st, 1);
	snprintf(out->app_key, sizeof(out->app_key), "%s", app_key);
	snprintf(out->private_hash, sizeof(out->private_hash), "%s",
	         hash ? hash : "");
	snprintf(out->secret_key, sizeof(out->secret_key), "%s",
	         secret ? secret : "");
	out->is_public = sqlite3_column_int(st, 2) != 0;
	out->shared_write = sqlite3_column_int(st, 3) != 0;
	out->roles = as__column_json(st, 4);
	if (sqlite3_column_type(st, 5) != SQLITE_NULL) {
		out->history = as__column_json(st, 5);
	}
	sqlite3_reset(st);
	if (!json_is_object(out->roles)) {
		as_account_clear(out);
		return ls_error_set(err, LS_ESERVER,
		                    "store: account %s has corrupt roles",
		                    app_key);
	}
	return 0;
}

static int
as__sqlite_account_get(as_store *base, const char *app_key, as_account *out,
                       ls_error *err)
{
	as__sqlite *s = (as__sqlite *)base;
	as__conn *c = as__acquire(s, err);
	int rc;

	if (c == NULL) {
		return err ? err->code : LS_EUNAVAILABLE;
	}
	rc = as__get_account(c, app_key, out, err);
	as__release(s, c);
	return rc;
}

static int
as__sqlite_account_delete(as_store *base, const char *app_key, ls_error *err)
{
	as__sqlite *s = (as__sqlite *)base;
	as__conn *c = as__acquire(s, err);
	sqlite3_stmt *st;
	int rc;

	if (c == NULL) {
		return err ? err->code : LS_EUNAVAILABLE;
	}
	/* Tokens go with the account (ON DELETE CASCADE). */
	st = as__st(c, ST_ACC_DELETE);
	rc = as__write(c, st, as__bind_text(st, 1, app_key), err,
	               "account delete", "no such account", app_key);
	as__release(s, c);
	return rc;
}

static int
as__sqlite_account_list(as_store *base, json_t **out, ls_error *err)
{
	as__sqlite *s = (as__sqlite *)base;
	as__conn *c = as__acquire(s, err);
	json_t *list = json_array();
	sqlite3_stmt *st;
	int rc = 0, step;

	if (c == NULL || list == NULL) {
		rc = c ? ls_error_set(err, -ENOMEM, "out of memory")
		       : (err ? err->code : LS_EUNAVAILABLE);
		goto fail;
	}
	st = as__st(c, ST_ACC_LIST);
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		as_account a = { 0 };
		json_t *view;
		snprintf(a.app_key, sizeof(a.app_key), "%s",
		         (const char *)sqlite3_column_text(st, 0));
		a.is_public = sqlite3_column_int(st, 1) != 0;
		a.shared_write = sqlite3_column_int(st, 2) != 0;
		a.roles = as__column_json(st, 3);
		if (sqlite3_column_type(st, 4) != SQLITE_NULL) {
			a.history = as__column_json(st, 4);
		}
		view = a.roles ? as__account_list_view(&a) : NULL;
		as_account_clear(&a);
		if (view == NULL || json_array_append_new(list, view) != 0) {
			rc = ls_error_set(err, LS_ESERVER,
			                  "store: cannot list accounts");
			break;
		}
	}
	if (rc == 0 && step != SQLITE_DONE) {
		rc = as__sqlerr(c->db, step, err, "account list");
	}
	sqlite3_reset(st);
	if (rc != 0) {
		goto fail;
	}
	as__release(s, c);
	*out = list;
	return 0;

fail:
	if (c != NULL) {
		as__release(s, c);
	}
	json_decref(list);
	return rc;
}

/* Read-modify-write of the roles column inside one write transaction. */
static int
as__roles_edit(as_store *base, const char *app_key, const char *role,
               json_t *perms, ls_error *err)
{
	as__sqlite *s = (as__sqlite *)base;
	as__conn *c = as__acquire(s, err);
	as_account a = { 0 };
	sqlite3_stmt *st;
	int rc;

	if (c == NULL) {
		return err ? err->code : LS_EUNAVAILABLE;
	}
	if ((rc = as__begin(c, err)) != 0) {
		goto out;
	}
	if ((rc = as__get_account(c, app_key, &a, err)) != 0) {
		goto fail;
	}
	if (perms == NULL) {
		if (json_object_get(a.roles, role) == NULL) {
			rc = ls_error_set(err, LS_ENOTFOUND,
			                  "account %s has no role %s", app_key,
			                  role);
			goto fail;
		}
		json_object_del(a.roles, role);
	} else {
		if (json_object_get(a.roles, role) == NULL &&
		    json_object_size(a.roles) >= AS_ROLES_MAX) {
			rc = ls_error_set(err, LS_EBADREQUEST,
			                  "account %s already has %d roles",
			                  app_key, AS_ROLES_MAX);
			goto fail;
		}
		if (json_object_set(a.roles, role, perms) != 0) {
			rc = ls_error_set(err, -ENOMEM, "out of memory");
			goto fail;
		}
	}
	st = as__st(c, ST_ACC_ROLES);
	if (as__bind_text(st, 1, app_key) || as__bind_json(st, 2, a.roles) ||
	    sqlite3_bind_int64(st, 3, ls_wall_ms())) {
		rc = as__sqlerr(c->db, SQLITE_NOMEM, err, "bind");
		goto fail;
	}
	if ((rc = as__step_done(c, st, err, "role update")) != 0 ||
	    (rc = as__commit(c, err)) != 0) {
		goto fail;
	}
	goto out;

fail:
	as__rollback(c);
out:
	as_account_clear(&a);
	as__release(s, c);
	return rc;
}

static int
as__sqlite_role_set(as_store *base, const char *app_key, const char *role,
                    json_t *perms, ls_error *err)
{
	return as__roles_edit(base, app_key, role, perms, err);
}

static int
as__sqlite_role_delete(as_store *base, const char *app_key, const char *role,
                       ls_error *err)
{
	return as__roles_edit(base, app_key, role, NULL, err);
}

static int
as__sqlite_reset(as_store *base, const as_account *accounts, size_t n,
                 ls_error *err)
{
	as__sqlite *s = (as__sqlite *)base;
	as__conn *c = as__acquire(s, err);
	int64_t now = ls_wall_ms();
	int rc;

	if (c == NULL) {
		return err ? err->code : LS_EUNAVAILABLE;
	}
	if ((rc = as__begin(c, err)) != 0) {
		goto out;
	}
	if ((rc = as__step_done(c, as__st(c, ST_TOK_DELETE_ALL), err,
	                        "token reset")) != 0 ||
	    (rc = as__step_done(c, as__st(c, ST_ACC_DELETE_ALL), err,
	                        "account reset")) != 0) {
		goto fail;
	}
	for (size_t i = 0; i < n; i++) {
		if ((rc = as__insert_account(c, &accounts[i], now, err)) !=
		    0) {
			goto fail;
		}
	}
	if ((rc = as__commit(c, err)) != 0) {
		goto fail;
	}
	goto out;

fail:
	as__rollback(c);
out:
	as__release(s, c);
	return rc;
}

static int
as__sqlite_token_put(as_store *base, const as_token *t, ls_error *err)
{
	as__sqlite *s = (as__sqlite *)base;
	as__conn *c = as__acquire(s, err);
	sqlite3_stmt *st;
	int rc, bind_rc;

	if (c == NULL) {
		return err ? err->code : LS_EUNAVAILABLE;
	}
	st = as__st(c, ST_TOK_INSERT);
	bind_rc = as__bind_text(st, 1, t->hash) ||
	          as__bind_text(st, 2, t->app_key) ||
	          as__bind_json(st, 3, t->roles) ||
	          sqlite3_bind_int64(st, 4, t->expires_ms) ||
	          as__bind_text(st, 5, t->ip) ||
	          sqlite3_bind_int(st, 6, t->web);
	rc = as__write(c, st, bind_rc, err, "token", NULL, NULL);
	as__release(s, c);
	return rc;
}

static int
as__sqlite_token_get(as_store *base, const char *hash, int64_t now_ms,
                     as_token *out, ls_error *err)
{
	as__sqlite *s = (as__sqlite *)base;
	as__conn *c = as__acquire(s, err);
	sqlite3_stmt *st;
	int rc;

	if (c == NULL) {
		return err ? err->code : LS_EUNAVAILABLE;
	}
	st = as__st(c, ST_TOK_GET);
	if (as__bind_text(st, 1, hash) || sqlite3_bind_int64(st, 2, now_ms)) {
		rc = as__sqlerr(c->db, SQLITE_NOMEM, err, "bind");
		goto out;
	}
	rc = as__step_row(c, st, err, "token read", "no such token", NULL);
	if (rc != 0) {
		goto out;
	}
	memcpy(out->hash, hash, sizeof(out->hash));
	snprintf(out->app_key, sizeof(out->app_key), "%s",
	         (const char *)sqlite3_column_text(st, 0));
	out->roles = as__column_json(st, 1);
	out->expires_ms = sqlite3_column_int64(st, 2);
	snprintf(out->ip, sizeof(out->ip), "%s",
	         (const char *)sqlite3_column_text(st, 3));
	out->web = sqlite3_column_int(st, 4) != 0;
	rc = 0;
	if (!json_is_array(out->roles)) {
		as_token_clear(out);
		rc = ls_error_set(err, LS_ESERVER,
		                  "store: token has corrupt roles");
	}
out:
	sqlite3_reset(st);
	as__release(s, c);
	return rc;
}

static int
as__sqlite_token_delete(as_store *base, const char *app_key, const char *hash,
                        ls_error *err)
{
	as__sqlite *s = (as__sqlite *)base;
	as__conn *c = as__acquire(s, err);
	sqlite3_stmt *st;
	int rc;

	if (c == NULL) {
		return err ? err->code : LS_EUNAVAILABLE;
	}
	st = as__st(c, ST_TOK_DELETE);
	rc = as__write(c, st,
	               as__bind_text(st, 1, hash) ||
	                       as__bind_text(st, 2, app_key),
	               err, "token delete", "no such token", NULL);
	as__release(s, c);
	return rc;
}

static int
as__sqlite_token_sweep(as_store *base, int64_t now_ms, ls_error *err)
{
	as__sqlite *s = (as__sqlite *)base;
	as__conn *c = as__acquire(s, err);
	sqlite3_stmt *st;
	int rc;

	if (c == NULL) {
		return err ? err->code : LS_EUNAVAILABLE;
	}
	st = as__st(c, ST_TOK_SWEEP);
	sqlite3_bind_int64(st, 1, now_ms);
	rc = as__step_done(c, st, err, "token sweep");
	if (rc == 0) {
		rc = sqlite3_changes(c->db);
	}
	as__release(s, c);
	return rc;
}

/* Copy a text column into dst[cap], truncated like snprintf("%s"). */
static void
as__column_copy(sqlite3_stmt *st, int col, char *dst, size_t cap)
{
	const unsigned char *text = sqlite3_column_text(st, col);
	size_t n = text ? (size_t)sqlite3_column_bytes(st, col) : 0;

	if (n >= cap) {
		n = cap - 1;
	}
	if (n > 0) {
		memcpy(dst, text, n);
	}
	dst[n] = '\0';
}

/* A roles column through the parse cache (shared, read-only value). */
static json_t *
as__column_json_shared(as__sqlite *s, sqlite3_stmt *st, int col)
{
	const char *text = (const char *)sqlite3_column_text(st, col);

	return text ? as__jcache_parse(s->parsed, text,
	                               (size_t)sqlite3_column_bytes(st, col))
	            : NULL;
}

static int
as__sqlite_token_lookup(as_store *base, const char *hash, int64_t now_ms,
                        as_token *tok, as_account *acc, ls_error *err)
{
	as__sqlite *s = (as__sqlite *)base;
	as__conn *c = as__acquire(s, err);
	sqlite3_stmt *st;
	int rc;

	if (c == NULL) {
		return err ? err->code : LS_EUNAVAILABLE;
	}
	st = as__st(c, ST_TOK_LOOKUP);
	if (sqlite3_bind_text(st, 1, hash, -1, SQLITE_STATIC) ||
	    sqlite3_bind_int64(st, 2, now_ms)) {
		rc = as__sqlerr(c->db, SQLITE_NOMEM, err, "bind");
		goto out;
	}
	rc = as__step_row(c, st, err, "token read", "no such token", NULL);
	if (rc != 0) {
		goto out;
	}
	memcpy(tok->hash, hash, sizeof(tok->hash));
	as__column_copy(st, 0, tok->app_key, sizeof(tok->app_key));
	tok->roles = as__column_json_shared(s, st, 1);
	tok->expires_ms = sqlite3_column_int64(st, 2);
	as__column_copy(st, 3, tok->ip, sizeof(tok->ip));
	tok->web = sqlite3_column_int(st, 4) != 0;
	memcpy(acc->app_key, tok->app_key, sizeof(acc->app_key));
	acc->is_public = sqlite3_column_int(st, 5) != 0;
	acc->shared_write = sqlite3_column_int(st, 6) != 0;
	acc->roles = as__column_json_shared(s, st, 7);
	rc = 0;
	if (!json_is_array(tok->roles) || !json_is_object(acc->roles)) {
		as_token_clear(tok);
		as_account_clear(acc);
		rc = ls_error_set(err, LS_ESERVER,
		                  "store: token or account has corrupt roles");
	}
out:
	/* Unbind too: hash is the caller's (SQLITE_STATIC). */
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	as__release(s, c);
	return rc;
}

static int
as__sqlite_account_flags(as_store *base, const char *app_key, bool *is_public,
                         bool *shared_write, ls_error *err)
{
	as__sqlite *s = (as__sqlite *)base;
	as__conn *c = as__acquire(s, err);
	sqlite3_stmt *st;
	int rc;

	if (c == NULL) {
		return err ? err->code : LS_EUNAVAILABLE;
	}
	st = as__st(c, ST_ACC_FLAGS);
	if (sqlite3_bind_text(st, 1, app_key, -1, SQLITE_STATIC)) {
		rc = as__sqlerr(c->db, SQLITE_NOMEM, err, "bind");
		goto out;
	}
	rc = as__step_row(c, st, err, "account read", "no such account",
	                  app_key);
	if (rc == 0) {
		*is_public = sqlite3_column_int(st, 0) != 0;
		*shared_write = sqlite3_column_int(st, 1) != 0;
	}
out:
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	as__release(s, c);
	return rc;
}

static void *
as__sweeper_main(void *arg)
{
	as__sqlite *s = arg;

	pthread_mutex_lock(&s->mu);
	while (!s->stopping) {
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_sec += AS__SQLITE_SWEEP_MS / 1000;
		pthread_cond_timedwait(&s->stop_cv, &s->mu, &ts);
		if (s->stopping) {
			break;
		}
		pthread_mutex_unlock(&s->mu);
		ls_error err;
		int n = as__sqlite_token_sweep(&s->base, ls_wall_ms(), &err);
		if (n > 0) {
			ls_debug(AS__LOG, "sqlite: swept %d expired tokens",
			         n);
		}
		pthread_mutex_lock(&s->mu);
	}
	pthread_mutex_unlock(&s->mu);
	return NULL;
}

static void
as__sqlite_close(as_store *base)
{
	as__sqlite *s = (as__sqlite *)base;

	if (s->sweeper_started) {
		pthread_mutex_lock(&s->mu);
		s->stopping = true;
		pthread_cond_broadcast(&s->stop_cv);
		pthread_mutex_unlock(&s->mu);
		pthread_join(s->sweeper, NULL);
	}
	for (int i = 0; i < s->nopen; i++) {
		as__conn_close(&s->conns[i]);
	}
	pthread_cond_destroy(&s->cv);
	pthread_cond_destroy(&s->stop_cv);
	pthread_mutex_destroy(&s->mu);
	as__jcache_destroy(&s->parsed);
	free(s->path);
	free(s);
}

static const as__store_ops as__sqlite_ops = {
	.name = "sqlite",
	.account_create = as__sqlite_account_create,
	.account_update = as__sqlite_account_update,
	.account_get = as__sqlite_account_get,
	.account_delete = as__sqlite_account_delete,
	.account_list = as__sqlite_account_list,
	.role_set = as__sqlite_role_set,
	.role_delete = as__sqlite_role_delete,
	.reset = as__sqlite_reset,
	.token_put = as__sqlite_token_put,
	.token_get = as__sqlite_token_get,
	.token_delete = as__sqlite_token_delete,
	.token_sweep = as__sqlite_token_sweep,
	.token_lookup = as__sqlite_token_lookup,
	.account_flags = as__sqlite_account_flags,
	.close = as__sqlite_close,
};

as_store *
as__store_sqlite_open(const char *path, ls_error *err)
{
	as__sqlite *s = calloc(1, sizeof(*s));
	pthread_condattr_t attr;
	int fd;

	if (s == NULL || (s->path = strdup(path)) == NULL ||
	    (s->parsed = as__jcache_new()) == NULL) {
		if (s != NULL) {
			as__jcache_destroy(&s->parsed);
			free(s->path);
		}
		free(s);
		ls_error_set(err, -ENOMEM, "out of memory");
		return NULL;
	}
	s->base.ops = &as__sqlite_ops;
	pthread_mutex_init(&s->mu, NULL);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&s->stop_cv, &attr);
	pthread_cond_init(&s->cv, NULL);
	pthread_condattr_destroy(&attr);

	/* The file holds secret keys: create it readable by us only. */
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0) {
		ls_error_set(err, LS_EUNAVAILABLE, "store: cannot open %s: %s",
		             path, strerror(errno));
		goto fail;
	}
	close(fd);
	/* The first connection migrates the schema; the others reuse it. */
	if (as__conn_open(s, &s->conns[0], true, err) != 0) {
		goto fail;
	}
	s->nopen = 1;
	s->free_list = &s->conns[0];
	if (pthread_create(&s->sweeper, NULL, as__sweeper_main, s) != 0) {
		ls_error_set(err, LS_ESERVER, "store: cannot start sweeper");
		goto fail;
	}
	s->sweeper_started = true;
	ls_info(AS__LOG, "sqlite store %s (schema %d)", path,
	        AS__SCHEMA_VERSION);
	return &s->base;

fail:
	as__sqlite_close(&s->base);
	return NULL;
}
