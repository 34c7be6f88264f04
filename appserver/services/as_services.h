/*
 * The app-server services of docs/bus.md on a store: "auth" (generateToken,
 * validateToken, validateWebToken, revokeToken), "accounts" (create, get,
 * list, update, delete, setRole, deleteRole) and "db" (resetDatabase), as
 * bus_service tables for a bus worker pool. Arguments and results are the
 * JSON of docs/bus.md; docs/accounts.md describes every operation.
 *
 * "accounts" and "db" are administrative: reachable only through the bus
 * (the gateway's HTTP bridge allow-list excludes them by default).
 * Thread-safe: operations run concurrently on worker threads.
 */
#ifndef AS_SERVICES_H
#define AS_SERVICES_H

#include <jansson.h>
#include <stddef.h>

#include "as_store.h"
#include "bus_worker.h"
#include "ls_error.h"

typedef struct as_services as_services;

/*
 * A change that open connections must follow (docs/accounts.md, "Live
 * authorization"), reported after it is stored.
 */
typedef enum as_change_kind {
	AS_CHANGE_REVOKED = 1, /* one token of app_key (token_hash) */
	AS_CHANGE_DELETED,     /* the account app_key and its tokens */
	AS_CHANGE_CHANGED,     /* permissions of app_key; NULL: of all */
	AS_CHANGE_RESET,       /* every account and token replaced */
} as_change_kind;

typedef struct as_change {
	as_change_kind kind;
	const char *app_key;    /* borrowed; NULL: every account */
	const char *token_hash; /* REVOKED: hex SHA-256 of the token */
} as_change;

/*
 * Called on the worker thread that made the change (so possibly on
 * several threads at once); ch is borrowed for the call. It must not
 * block for long: the worker answers the request after it returns.
 */
typedef void (*as_change_fn)(const as_change *ch, void *user);

/*
 * Services on store (borrowed; must outlive the services). Returns NULL
 * with err set on failure.
 */
as_services *as_services_new(as_store *store, ls_error *err);

/* Report every change to fn(ch, user) (NULL: none). Call before serving. */
void as_services_on_change(as_services *svc, as_change_fn fn, void *user);

/* Free. Accepts NULL and clears *svc. */
void as_services_destroy(as_services **svc);

/*
 * The bus_service tables (borrowed from svc; valid until it is
 * destroyed), *n of them.
 */
const bus_service *as_services_table(const as_services *svc, size_t *n);

/*
 * The internal "auth.issue" service (generateToken, revokeToken: the
 * operations that hash private keys), for a worker pool of its own, so
 * that issuing never takes the workers that validate tokens
 * (docs/architecture.md). Borrowed from svc; *n = 1.
 */
const bus_service *as_services_issue_table(const as_services *svc, size_t *n);

/*
 * Let at most max key hashings (auth.generateToken, auth.revokeToken) run
 * at once on the "auth" service's workers; more answer `unavailable` at
 * once. 0: no limit (the default).
 */
void as_services_limit_shared_hashing(as_services *svc, int max);

/*
 * Call one operation directly, exactly as a bus worker would: args
 * (borrowed) is the JSON array of arguments; on success *result is a new
 * reference. Returns 0, LS_ENOSERVICE for an unknown service or
 * operation, or the operation's negative error with err filled.
 */
int as_services_call(as_services *svc, const char *service, const char *op,
                     json_t *args, json_t **result, ls_error *err);

#endif
