/*
 * The app server: the auth, accounts and db services on a store, served
 * by a pool of bus workers. Used by `lightstream appserver` and, over
 * inproc://, by `lightstream serve`.
 */
#ifndef AS_APPSERVER_H
#define AS_APPSERVER_H

#include "as_services.h"
#include "ls_error.h"

typedef struct as_appserver as_appserver;
struct bus_curve_keys;

typedef struct as_appserver_options {
	const char *store_uri; /* "sqlite:PATH" or "mongodb://..." */
	const char *backend;   /* broker backend endpoint */
	int workers;           /* worker threads; 0: default 2 */
	int issue_workers;     /* auth.issue (token issuing) threads; 0: 1 */
	const char *fixture;   /* optional fixture file imported at start */
	int heartbeat_ms;      /* bus heartbeat, as the broker's; 0: 2500 */
	/* CURVE keys when the broker uses CURVE (borrowed); NULL: plain. */
	const struct bus_curve_keys *curve;
	/* Optional: told of every change open connections must follow
	 * (revocations, deletions, permission changes), on worker threads. */
	as_change_fn on_change;
	void *on_change_user;
} as_appserver_options;

/*
 * Open the store, import the fixture if given, start the workers.
 * zmq_ctx is borrowed. Returns NULL with err set on failure.
 */
as_appserver *as_appserver_start(void *zmq_ctx,
                                 const as_appserver_options *opt,
                                 ls_error *err);

/* Stop workers, close the store, free. Accepts NULL and clears *as. */
void as_appserver_stop(as_appserver **as);

#endif
