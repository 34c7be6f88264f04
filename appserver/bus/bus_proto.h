/*
 * Internal to the bus: wire constants of docs/bus.md and multipart helpers
 * shared by the broker, the workers and the client. Not part of the API.
 */
#ifndef BUS_PROTO_H
#define BUS_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <zmq.h>

#include "ls_proto.h"

#define BUS__PROTOCOL     "LSW1"
#define BUS__PROTOCOL_LEN 4

enum bus__command {
	BUS__READY = 0x01,
	BUS__REQUEST = 0x02,
	BUS__REPLY = 0x03,
	BUS__HEARTBEAT = 0x04,
	BUS__DISCONNECT = 0x05,
};

/* Reply status bytes (bus_status in bus_client.h). */
enum bus__status {
	BUS__ST_OK = 1,
	BUS__ST_ERROR = 2,
	BUS__ST_TIMEOUT = 3,
	BUS__ST_NOSERVICE = 4,
};

/* Flags frame of a client request (an optional 5th frame). */
#define BUS__FLAG_ALL 0x01 /* to every worker of the service (broadcast) */

/* Limits, in one place. */
#define BUS__MAX_FRAMES          24       /* more frames: malformed */
#define BUS__MAX_WORKER_SERVICES 16       /* services one worker serves */
#define BUS__MAX_SERVICE_LEN     255      /* bytes of a service name */
#define BUS__MAX_IDENTITY        255      /* ZeroMQ routing ids are <= 255 */
#define BUS__MAX_MSG_BYTES       16777216 /* ZMQ_MAXMSGSIZE of every socket */
#define BUS__HWM                 100000   /* send/receive high-water marks */
#define BUS__DEFAULT_HB_MS       2500
#define BUS__DEFAULT_LIVENESS    3

/* One received multipart message. */
typedef struct bus__msg {
	int n;          /* frames kept */
	bool truncated; /* more than BUS__MAX_FRAMES arrived (rest dropped) */
	zmq_msg_t f[BUS__MAX_FRAMES];
} bus__msg;

/*
 * Receive one whole multipart message without blocking. Returns 0, -EAGAIN
 * when nothing is pending, or another negative errno. On 0 the caller
 * must bus__msg_close(m).
 */
int bus__msg_recv(void *sock, bus__msg *m);

void bus__msg_close(bus__msg *m);

static inline const void *
bus__frame_data(bus__msg *m, int i)
{
	return zmq_msg_data(&m->f[i]);
}

static inline size_t
bus__frame_size(bus__msg *m, int i)
{
	return zmq_msg_size(&m->f[i]);
}

/* Frame i equals the n bytes at p. */
bool bus__frame_eq(bus__msg *m, int i, const void *p, size_t n);

/*
 * Send n frames (data[i], len[i]) as one message without blocking
 * (ZMQ_DONTWAIT). Returns 0 or a negative errno (-EAGAIN: high-water
 * mark reached; the message was not sent).
 */
int bus__send(void *sock, int n, const void *const *data, const size_t *len);

/* Apply LINGER 0, bounded HWMs and the maximum message size. */
int bus__socket_setup(void *sock);

struct bus_curve_keys;

/* Make sock a CURVE client with keys k (NULL: plain). 0 or -errno. */
int bus__curve_client(void *sock, const struct bus_curve_keys *k);

/*
 * The body of an error reply (docs/bus.md, "Errors"): {"code","message"}
 * with code a protocol error code. Returns a new string (free()), NULL
 * when out of memory. message may be NULL (the code's name is used).
 */
char *bus__error_body(ls_proto_code pc, const char *message);

/* Little-endian request ids. */
uint64_t bus__get_u64le(const void *p);
void bus__put_u64le(void *p, uint64_t v);

/* Printable hex of a routing id (for logs); out holds 2*n+1, n <= 32. */
void bus__hex(const void *p, size_t n, char *out, size_t cap);

#endif
