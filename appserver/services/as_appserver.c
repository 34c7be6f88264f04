/* The app server: store + services + a pool of bus workers. */
#include "as_appserver.h"

#include <errno.h>
#include <stdlib.h>

#include "as_services.h"
#include "as_store.h"
#include "bus_worker.h"
#include "ls_config.h"
#include "ls_log.h"

#define AS__DEFAULT_WORKERS       2
#define AS__DEFAULT_ISSUE_WORKERS 1
#define AS__MAX_WORKERS           256

struct as_appserver {
	as_store *store;
	as_services *services;
	bus_worker_pool *pool;
	bus_worker_pool *issue_pool; /* auth.issue: key hashing only */
};

/* Replace every account by the fixture file's (db.resetDatabase). */
static int
as__import(as_store *store, const char *path, ls_error *err)
{
	json_t *fixture = NULL;
	as_account *accounts = NULL;
	size_t n = 0;
	ls_error inner;
	int rc;

	rc = ls_json_file_load(path, "the fixture", &fixture, err);
	if (rc != 0) {
		return rc;
	}
	rc = as_fixture_parse(fixture, &accounts, &n, &inner);
	json_decref(fixture);
	if (rc == 0) {
		rc = as_store_reset(store, accounts, n, &inner);
	}
	as_accounts_free(accounts, n);
	if (rc != 0) {
		return ls_error_set(err, rc, "fixture %s: %s", path,
		                    inner.text);
	}
	ls_info("appserver", "imported %zu accounts from %s", n, path);
	return 0;
}

as_appserver *
as_appserver_start(void *zmq_ctx, const as_appserver_options *opt,
                   ls_error *err)
{
	as_appserver *as = calloc(1, sizeof(*as));
	const bus_service *table;
	bus_worker_options wo = { .heartbeat_ms = opt->heartbeat_ms,
		                  .curve = opt->curve };
	size_t nservices;
	int workers = opt->workers > 0 ? opt->workers : AS__DEFAULT_WORKERS;
	int issue_workers = opt->issue_workers > 0 ? opt->issue_workers
	                                           : AS__DEFAULT_ISSUE_WORKERS;

	if (as == NULL) {
		ls_error_set(err, -ENOMEM, "out of memory");
		return NULL;
	}
	if (workers > AS__MAX_WORKERS || issue_workers > AS__MAX_WORKERS) {
		ls_error_set(err, LS_ECONFIG, "workers: at most %d",
		             AS__MAX_WORKERS);
		goto fail;
	}
	if (opt->backend == NULL || opt->store_uri == NULL) {
		ls_error_set(err, LS_ECONFIG,
		             "app server: store URI and broker backend are "
		             "required");
		goto fail;
	}
	as->store = as_store_open(opt->store_uri, err);
	if (as->store == NULL) {
		goto fail;
	}
	if (opt->fixture != NULL && as__import(as->store, opt->fixture, err)) {
		goto fail;
	}
	if (opt->fixture != NULL && opt->on_change != NULL) {
		/* Every token was replaced: connections that gateways already
		 * hold use tokens that no longer exist. */
		as_change reset = { AS_CHANGE_RESET, NULL, NULL };
		opt->on_change(&reset, opt->on_change_user);
	}
	as->services = as_services_new(as->store, err);
	if (as->services == NULL) {
		goto fail;
	}
	as_services_on_change(as->services, opt->on_change,
	                      opt->on_change_user);
	/* Validation keeps at least one worker whatever bus clients of
	 * auth.generateToken do (docs/architecture.md). */
	as_services_limit_shared_hashing(as->services,
	                                 workers > 1 ? workers / 2 : 1);
	table = as_services_table(as->services, &nservices);
	as->pool = bus_worker_pool_start(zmq_ctx, opt->backend, table,
	                                 nservices, workers, &wo, err);
	if (as->pool == NULL) {
		goto fail;
	}
	table = as_services_issue_table(as->services, &nservices);
	as->issue_pool =
	        bus_worker_pool_start(zmq_ctx, opt->backend, table, nservices,
	                              issue_workers, &wo, err);
	if (as->issue_pool == NULL) {
		goto fail;
	}
	ls_info("appserver",
	        "%d workers and %d token-issuing worker(s) on %s%s, %s store",
	        workers, issue_workers, opt->backend,
	        opt->curve ? " (CURVE)" : "", as_store_backend(as->store));
	return as;

fail:
	as_appserver_stop(&as);
	return NULL;
}

void
as_appserver_stop(as_appserver **asp)
{
	as_appserver *as;

	if (asp == NULL || *asp == NULL) {
		return;
	}
	as = *asp;
	/* Workers first: they use the services, which use the store. */
	bus_worker_pool_stop(&as->pool);
	bus_worker_pool_stop(&as->issue_pool);
	as_services_destroy(&as->services);
	as_store_close(&as->store);
	free(as);
	*asp = NULL;
}
