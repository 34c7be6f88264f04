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
 * Services on store (borrowed; must outlive the services). Returns NULL
 * with err set on failure.
 */
as_services *as_services_new(as_store *store, ls_error *err);

/* Free. Accepts NULL and clears *svc. */
void as_services_destroy(as_services **svc);

/*
 * The bus_service tables (borrowed from svc; valid until it is
 * destroyed), *n of them.
 */
const bus_service *as_services_table(const as_services *svc, size_t *n);

/*
 * Call one operation directly, exactly as a bus worker would: args
 * (borrowed) is the JSON array of arguments; on success *result is a new
 * reference. Returns 0, LS_ENOSERVICE for an unknown service or
 * operation, or the operation's negative error with err filled.
 */
int as_services_call(as_services *svc, const char *service, const char *op,
                     json_t *args, json_t **result, ls_error *err);

#endif
