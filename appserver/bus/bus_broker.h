/*
 * The service-bus broker (docs/bus.md): ROUTER frontend for clients, ROUTER
 * backend for workers, per-service bounded queues, least-recently-used
 * idle worker first, heartbeats, deadlines, mmi.service and mmi.stats.
 * The broker runs on its own thread (bus_broker_run) and never crashes
 * on input: malformed frames are logged and dropped.
 */
#ifndef BUS_BROKER_H
#define BUS_BROKER_H

#include "ls_error.h"

typedef struct bus_broker bus_broker;

/*
 * Roles of a bus peer (docs/bus.md, "Security"), as bits: `worker` keys may
 * register services (READY), `client` keys may call services, `admin` keys
 * may call every service, accounts.* and db.* included.
 */
enum bus_role {
	BUS_ROLE_WORKER = 1,
	BUS_ROLE_CLIENT = 2,
	BUS_ROLE_ADMIN = 4,
};

/* The role named name ("worker", "client", "admin"), or 0. */
unsigned bus_role_parse(const char *name);

/* One allowed public key (Z85, borrowed) with its BUS_ROLE_* bits. */
typedef struct bus_peer_key {
	const char *key;
	unsigned roles;
} bus_peer_key;

typedef struct bus_broker_options {
	int heartbeat_ms;       /* 0: default 2500 */
	int liveness;           /* 0: default 3 */
	int queue_limit;        /* per service; 0: default 10000 */
	int default_timeout_ms; /* deadline of queued requests; 0: 5000 */
	/*
	 * CURVE: the broker's secret key (Z85, 40 characters) makes both
	 * endpoints CURVE servers; NULL: plain, and every peer may do
	 * everything (development only). curve_allow lists the public keys
	 * allowed to connect, with their roles (borrowed, copied; a key
	 * listed twice has both roles); with none, no peer outside the
	 * process can connect. Peers in the same process (inproc://) skip
	 * the handshake and have every role. Authentication uses ZAP, so
	 * only one broker with CURVE may run per ZeroMQ context.
	 */
	const char *curve_secret_key;
	const bus_peer_key *curve_allow;
	size_t ncurve_allow;
	/*
	 * More endpoints bound by the frontend and the backend socket (same
	 * security), e.g. tcp:// and ipc:// beside inproc://; NULL entries:
	 * none. ipc:// endpoints are created with mode 0600.
	 */
	const char *frontend_also[2];
	const char *backend_also;
} bus_broker_options;

/*
 * Bind frontend and backend endpoints. zmq_ctx is borrowed. opt may be
 * NULL. Returns NULL with err set (e.g. address in use).
 */
bus_broker *bus_broker_new(void *zmq_ctx, const char *frontend,
                           const char *backend, const bus_broker_options *opt,
                           ls_error *err);

/* Serve until bus_broker_stop() is called. Returns 0. */
int bus_broker_run(bus_broker *b);

/* Ask a running broker to return from bus_broker_run (any thread). */
void bus_broker_stop(bus_broker *b);

/* Free a stopped broker. Accepts NULL and clears *b. */
void bus_broker_destroy(bus_broker **b);

#endif
