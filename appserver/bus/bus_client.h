/*
 * Service-bus client (docs/bus.md): a ZeroMQ DEALER connected to the broker's
 * frontend.
 *
 * Non-blocking and loop-agnostic: the owner watches bus_client_fd() for
 * readability (edge-triggered ZMQ_FD rules: see docs/bus.md) and calls
 * bus_client_process(); bus_client_attach_ev() does all of this on a libev
 * loop. Each request has a deadline; a reply arriving after its deadline is
 * dropped. Not thread-safe: use one client per thread.
 */
#ifndef BUS_CLIENT_H
#define BUS_CLIENT_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "bus_curve.h"
#include "ls_error.h"
#include "ls_proto.h"

struct ev_loop;

/* Reply status bytes of docs/bus.md. */
typedef enum bus_status {
	BUS_OK = 1,        /* body: JSON result */
	BUS_ERROR = 2,     /* body: {"code","message"} */
	BUS_TIMEOUT = 3,   /* deadline passed (broker or client side) */
	BUS_NOSERVICE = 4, /* no such service */
} bus_status;

typedef struct bus_client bus_client;

/*
 * Reply callback: body (len bytes, NUL-terminated) is borrowed for the
 * call. Called exactly once per accepted request, unless the request is
 * cancelled or the client destroyed first. Callbacks run inside
 * bus_client_process() (or the libev watchers); they may send and cancel
 * requests but must not destroy the client.
 */
typedef void (*bus_reply_fn)(bus_status status, const char *body, size_t len,
                             void *user);

/*
 * Connect a client to endpoint ("tcp://...", "inproc://...").
 * zmq_ctx is borrowed and must outlive the client. Returns NULL with err
 * set on failure.
 */
bus_client *bus_client_new(void *zmq_ctx, const char *endpoint, ls_error *err);

/*
 * As bus_client_new, as a CURVE client of a broker that uses CURVE: keys
 * (borrowed, copied into the socket) must not be NULL. Returns NULL with err
 * set, also for malformed keys.
 */
bus_client *bus_client_new_secure(void *zmq_ctx, const char *endpoint,
                                  const bus_curve_keys *keys, ls_error *err);

/* Close; pending callbacks are not called. Accepts NULL, clears *c. */
void bus_client_destroy(bus_client **c);

/*
 * Send a request: service name, body (borrowed, copied), deadline in ms.
 * On success returns 0 and, if id is not NULL, the request id; cb will be
 * called. On failure returns a negative error and cb is never called.
 */
int bus_client_request(bus_client *c, const char *service, const void *body,
                       size_t len, int timeout_ms, bus_reply_fn cb, void *user,
                       uint64_t *id);

/*
 * Flags of a request. BUS_CALL_ALL: deliver it to every live worker of the
 * service; the one reply (status BUS_OK) is a JSON array with one
 * {"worker", "status": "ok"|"error"|"timeout", "result"|"error"} per
 * worker (docs/bus.md, "Broadcast").
 */
#define BUS_CALL_ALL 0x01u

/* bus_client_request with flags (BUS_CALL_*). */
int bus_client_request_flags(bus_client *c, const char *service,
                             const void *body, size_t len, unsigned flags,
                             int timeout_ms, bus_reply_fn cb, void *user,
                             uint64_t *id);

/*
 * Convenience: send {"o": op, "a": args} to service. args (borrowed) must
 * be a JSON array.
 */
int bus_client_call(bus_client *c, const char *service, const char *op,
                    json_t *args, int timeout_ms, bus_reply_fn cb, void *user,
                    uint64_t *id);

/* Forget a pending request; its callback will not be called. */
void bus_client_cancel(bus_client *c, uint64_t id);

/* The ZMQ_FD to watch for readability (edge-triggered). */
int bus_client_fd(const bus_client *c);

/* Receive and dispatch every pending reply; expire passed deadlines. */
void bus_client_process(bus_client *c);

/* Milliseconds until the next deadline, or -1 when nothing is pending. */
int bus_client_next_timeout_ms(const bus_client *c);

/* Number of requests waiting for a reply. */
size_t bus_client_pending(const bus_client *c);

/*
 * Drive the client from a libev loop (borrowed, must outlive the client):
 * an ev_io on the fd, a prepare/check pair for the edge-triggered rules and
 * a timer for deadlines. Returns 0 or a negative error.
 */
int bus_client_attach_ev(bus_client *c, struct ev_loop *loop);

/*
 * Blocking call for command-line use: sends one request and waits up to
 * timeout_ms. On return 0, *status is the reply status and *reply a new
 * NUL-terminated string (free()) of *replylen bytes. Returns a negative
 * error when the request could not be sent.
 */
int bus_call(void *zmq_ctx, const char *endpoint, const char *service,
             const void *body, size_t len, int timeout_ms, bus_status *status,
             char **reply, size_t *replylen);

/* bus_call through CURVE (keys borrowed; NULL: plain). */
int bus_call_secure(void *zmq_ctx, const char *endpoint,
                    const bus_curve_keys *keys, const char *service,
                    const void *body, size_t len, int timeout_ms,
                    bus_status *status, char **reply, size_t *replylen);

/* bus_call_secure with flags (BUS_CALL_*). */
int bus_call_flags(void *zmq_ctx, const char *endpoint,
                   const bus_curve_keys *keys, const char *service,
                   const void *body, size_t len, unsigned flags,
                   int timeout_ms, bus_status *status, char **reply,
                   size_t *replylen);

/*
 * The protocol error of a reply whose status is not BUS_OK (docs/bus.md,
 * "Errors"): an error reply carries its code in {"code","message"}; a
 * timeout (no worker answered in time) and a service no worker serves
 * are LS_PC_UNAVAILABLE (transient: retry later); an error body without
 * a known code is LS_PC_SERVER_ERROR. The message is copied to msg (cap
 * bytes, NUL-terminated; msg may be NULL). Codes are never guessed from
 * the text.
 */
ls_proto_code bus_reply_error(bus_status status, const char *body, size_t len,
                              char *msg, size_t cap);

/* Name of a status ("ok", "error", "timeout", "no such service"). */
const char *bus_status_name(bus_status status);

#endif
