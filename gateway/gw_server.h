/*
 * A gateway server: N gateway event loops in one process
 * (docs/architecture.md, "Several loops").
 *
 * Loop 0 is the caller's loop (its thread runs ev_run); loops 1..N-1 each
 * run on a thread of their own with their own libev loop, libwebsockets
 * context, bus client and fabric. Loop 0 owns the listening sockets and
 * hands every accepted connection to the loop with the fewest
 * connections. The local fabrics of all loops join one hub, so a message
 * published on any loop reaches every subscriber; /metrics on any loop
 * reports the whole server.
 *
 * Every call from loop 0's thread.
 */
#ifndef GW_SERVER_H
#define GW_SERVER_H

#include "gw_gateway.h"

struct ev_loop;

typedef struct gw_server gw_server;

/*
 * Start loops gateway loops (1..LS_SETTINGS_LOOPS_MAX), loop 0 on loop
 * (borrowed, must outlive the server). opt as for gw_gateway_new. Returns
 * the server, or NULL with err set when any loop could not start (the
 * others are stopped again).
 */
gw_server *gw_server_new(struct ev_loop *loop, const gw_options *opt,
                         int loops, ls_error *err);

/* Loop 0's gateway (its addresses, the demo publisher). */
gw_gateway *gw_server_gateway(gw_server *srv);

int gw_server_loops(const gw_server *srv);

/*
 * Graceful shutdown of every loop (gw_gateway_shutdown on each, in
 * parallel); done(user) on loop 0 once all have drained or timed out.
 * Later calls are ignored.
 */
void gw_server_shutdown(gw_server *srv, void (*done)(void *user), void *user);

/*
 * True when a loop ended without being asked to (it is logged as an
 * error, and the server then shuts down by itself: loop 0's ev_run
 * returns). The command exits non-zero so that a supervisor restarts it.
 */
bool gw_server_failed(const gw_server *srv);

/* Stop every loop (at once, if not shut down before) and free; accepts
 * NULL and clears *srv. */
void gw_server_destroy(gw_server **srv);

#endif
