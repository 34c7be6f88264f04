/*
 * The LightStream gateway (docs/protocol.md): WebSocket and HTTP on
 * one port (plus an optional TLS port), on ONE libev loop that the caller
 * owns.
 *
 * The gateway creates and owns its listening sockets, its libwebsockets
 * context (joined to the loop as a foreign loop), its service-bus client
 * and its pub/sub fabric, all from an ls_settings. It never blocks the
 * loop and is not thread-safe: every call from the loop thread.
 */
#ifndef GW_GATEWAY_H
#define GW_GATEWAY_H

#include <stdbool.h>
#include <stddef.h>

#include "ls_error.h"
#include "ls_settings.h"

struct ev_loop;
struct ps_hub;
struct gw_server;
struct bus_curve_keys;

typedef struct gw_gateway gw_gateway;

typedef struct gw_options {
	const ls_settings *settings; /* borrowed, read during gw_gateway_new */
	void *zmq_ctx;               /* borrowed; must outlive the gateway */
	/* Bus endpoint of the broker frontend; NULL: settings->bus_frontend */
	const char *bus_endpoint;
	/* Set by gw_server for each of its loops (gw_server.h); zero for a
	 * gateway on its own. Only loop 0 listens. */
	struct ps_hub *hub;
	struct gw_server *server;
	unsigned index;
	/* Set by gw_server: the HTTP limits its loops share (referenced);
	 * NULL: the gateway keeps its own. */
	struct gw_shared *shared;
	/* CURVE keys of the bus client (borrowed, copied); NULL: plain */
	const struct bus_curve_keys *bus_curve;
	/* CURVE keys of a zmq:// fabric (borrowed); NULL: plain */
	const struct bus_curve_keys *fabric_curve;
} gw_options;

/*
 * Bind the listeners (exclusively, unless settings->reuse_port: then
 * SO_REUSEPORT, so that several gateway processes share the port), create the
 * lws context on loop (borrowed, must outlive the gateway), connect the bus
 * client and the fabric. Returns a new gateway or NULL with err set (address
 * in use, bad certificate, bad URL...).
 */
gw_gateway *gw_gateway_new(struct ev_loop *loop, const gw_options *opt,
                           ls_error *err);

/*
 * Graceful shutdown: stop accepting, close every WebSocket with 1001,
 * then call done(user) once every connection is gone or the drain timeout
 * passed. Later calls are ignored.
 */
void gw_gateway_shutdown(gw_gateway *gw, void (*done)(void *user), void *user);

/* Free everything; accepts NULL and clears *gw. */
void gw_gateway_destroy(gw_gateway **gw);

/*
 * Publish payload (len bytes of JSON, borrowed) on owner:stream through
 * the fabric, as a client's publish would. Returns 0 or a negative error.
 */
int gw_gateway_publish(gw_gateway *gw, const char *owner, const char *stream,
                       const char *payload, size_t len);

/*
 * Publish an announcement (ps_control.h: JSON text, len bytes, borrowed)
 * on the fabric's control channel: with the local fabric this gateway
 * applies it at once; with Redis every gateway does. Returns 0 or a
 * negative error (LS_EUNAVAILABLE: Redis not connected).
 */
int gw_gateway_announce(gw_gateway *gw, const char *payload, size_t len);

/* Bound addresses as "HOST:PORT" (the plain and the TLS listener). */
const char *gw_gateway_address(const gw_gateway *gw);
const char *gw_gateway_tls_address(const gw_gateway *gw); /* NULL: none */

#endif
