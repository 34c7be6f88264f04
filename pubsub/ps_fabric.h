/*
 * The pub/sub fabric (docs/pubsub.md): how a message published on one gateway
 * reaches every gateway with subscribers.
 *
 * Backends sit behind one function table: "local" (in-process) and
 * "redis" (hiredis async on the gateway's libev loop). Topics are
 * "owner:stream". Payloads are opaque bytes (JSON text); the gateway
 * decides how to interpret them.
 *
 * Local fabrics on several loops (threads) of one process join one hub
 * (ps_hub): a message published on any of them reaches the subscribers of
 * every one.
 *
 * All calls on a fabric must be made from its loop's thread; the hub is
 * thread-safe.
 */
#ifndef PS_FABRIC_H
#define PS_FABRIC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ls_error.h"
#include "ls_proto.h"

struct ev_loop;

/* Bounds (docs/pubsub.md): a topic is "owner:stream", whose limits are
 * those of common/ls_proto.h. */
#define PS_TOPIC_MAX           (LS_APPKEY_MAX + 1 + LS_STREAM_MAX)
#define PS_PAYLOAD_MAX_DEFAULT (1024 * 1024)

typedef struct ps_fabric ps_fabric;

/* History (docs/pubsub.md): bounds of one stream's history. */
#define PS_HISTORY_SIZE_DEFAULT LS_HISTORY_SIZE_DEFAULT
#define PS_HISTORY_SIZE_MAX     LS_HISTORY_SIZE_MAX
#define PS_HISTORY_TTL_DEFAULT  LS_HISTORY_TTL_DEFAULT
#define PS_HISTORY_TTL_MAX      LS_HISTORY_TTL_MAX
/* An epoch: [A-Za-z0-9_-], at most this many bytes. */
#define PS_EPOCH_MAX LS_EPOCH_MAX
/* Total bytes the local fabric keeps in history, all streams together. */
#define PS_HISTORY_BYTES_DEFAULT (64 * 1024 * 1024)

/*
 * The meeting point of the local fabrics of one process. Each local
 * fabric joins a hub (its own private one when none is given). Publishing
 * on any member queues the message, under the hub's lock, to every member
 * with a subscriber of the topic and wakes that member's loop (ev_async);
 * each member delivers on its own loop, in the order the hub accepted the
 * messages. At most PS_HUB_MEMBERS fabrics per hub.
 */
typedef struct ps_hub ps_hub;

#define PS_HUB_MEMBERS 64

/* A new hub, or NULL (out of memory). */
ps_hub *ps_hub_new(void);

/* Free a hub that no fabric uses any more; accepts NULL, clears *h. */
void ps_hub_destroy(ps_hub **h);

/* Topics that at least one member subscribes (any thread). */
size_t ps_hub_topics(ps_hub *h);

/*
 * A message arrived on a subscribed topic. topic (topiclen bytes, also
 * NUL-terminated) and payload (len bytes, NUL-terminated as a convenience)
 * are borrowed for the duration of the call. offset is the message's
 * offset in the stream's history (first 1), or 0 when it was published
 * without history (history disabled, or a plain Redis PUBLISH); epoch is
 * the history's epoch then (NULL when offset is 0).
 */
typedef void (*ps_message_fn)(const char *topic, size_t topiclen,
                              const char *payload, size_t len, uint64_t offset,
                              const char *epoch, void *user);

/*
 * Outcome of one publish: status 0 when the fabric accepted the message,
 * or a negative error (LS_EUNAVAILABLE when Redis is down). offset is the
 * message's history offset, 0 when published without history.
 */
typedef void (*ps_publish_fn)(int status, uint64_t offset, void *user);

/* A topic's backend subscription was confirmed (also after reconnects). */
typedef void (*ps_subscribed_fn)(const char *topic, size_t topiclen,
                                 void *user);

/* History settings of one publish: size 0 disables history. */
typedef struct ps_history_cfg {
	unsigned size; /* messages kept, at most PS_HISTORY_SIZE_MAX */
	unsigned ttl;  /* seconds a message is kept, 1..PS_HISTORY_TTL_MAX */
} ps_history_cfg;

typedef struct ps_history_msg {
	uint64_t offset;
	const char *data; /* len bytes, NUL-terminated */
	size_t len;
} ps_history_msg;

/*
 * What a history read found. Everything is borrowed for the duration of
 * the callback.
 */
typedef struct ps_history_result {
	const char *epoch; /* the stream's epoch (created if missing) */
	uint64_t latest;   /* the stream's latest offset; 0: none yet */
	/* true when the history holds every message after `since` (also
	 * when since == latest); false when some expired or were trimmed,
	 * or since > latest */
	bool complete;
	const ps_history_msg *msgs; /* offsets > since, oldest first */
	size_t count;
} ps_history_result;

/*
 * Outcome of a history read: status 0 and r, or a negative error and r
 * NULL (LS_EUNAVAILABLE: the fabric is down).
 */
typedef void (*ps_history_fn)(int status, const ps_history_result *r,
                              void *user);

/*
 * A message on the control channel (ps_control.h). payload (len bytes,
 * NUL-terminated) is borrowed for the duration of the call.
 */
typedef void (*ps_control_fn)(const char *payload, size_t len, void *user);

/*
 * The control channel was subscribed again after the connection to it
 * was lost (or for the first time): announcements may have been missed
 * meanwhile.
 */
typedef void (*ps_resync_fn)(void *user);

/*
 * The control channel's name. A stream topic always contains ':' and this
 * name does not, so no stream publish can ever reach it.
 */
#define PS_CONTROL_CHANNEL "__lightstream.control"

/* Fabric state changes (ready or not), for logs and /readyz. */
typedef void (*ps_state_fn)(bool ready, const char *reason, void *user);

typedef struct ps_stats {
	uint64_t published;  /* messages accepted for publishing */
	uint64_t received;   /* messages received on subscribed topics */
	uint64_t reconnects; /* successful re-connections */
	uint64_t topics;     /* topics currently subscribed */
	uint64_t dropped;    /* received messages over the payload limit */
	uint64_t failed;     /* publishes answered with an error */
} ps_stats;

typedef struct ps_fabric_options {
	const char *url; /* "local", or "redis://HOST:PORT" (addresses) */
	ps_message_fn on_message;
	ps_state_fn on_state; /* optional */
	/* Optional: listen to the control channel (always subscribed on
	 * Redis; local: what ps_fabric_control_publish sends). */
	ps_control_fn on_control;
	ps_resync_fn on_resync;         /* optional, with on_control */
	ps_subscribed_fn on_subscribed; /* optional */
	void *user;
	int connect_timeout_ms; /* 0: LS_PUBSUB_TIMEOUT_MS_DEFAULT */
	int reconnect_min_ms;   /* 0: default 100 */
	int reconnect_max_ms;   /* 0: default 5000 */
	size_t max_payload;     /* 0: PS_PAYLOAD_MAX_DEFAULT (1 MiB) */
	ps_hub *hub; /* local: the hub to join (borrowed; must outlive the
	              * fabric); NULL: a private one */
	/* local backend: bytes of history, all streams together; 0:
	 * PS_HISTORY_BYTES_DEFAULT */
	size_t history_bytes;
	/* zmq://: CURVE (Z85 keys, borrowed for the call): the proxy's public
	 * key and our own pair; NULL: plain text. */
	const char *curve_server;
	const char *curve_public;
	const char *curve_secret;
} ps_fabric_options;

/*
 * Create a fabric on loop (borrowed; must outlive the fabric). Returns a
 * new fabric or NULL with err set (unknown scheme, bad address). A Redis
 * fabric starts connecting at once and reconnects on its own with backoff.
 */
ps_fabric *ps_fabric_new(struct ev_loop *loop, const ps_fabric_options *opt,
                         ls_error *err);

/*
 * Close connections and free; accepts NULL and clears *f. Pending publishes
 * get done(LS_EUNAVAILABLE) from inside this call. Never call it from a
 * fabric callback.
 */
void ps_fabric_destroy(ps_fabric **f);

/*
 * Reference-counted subscription: the first subscribe of a topic
 * subscribes on the backend, the last unsubscribe unsubscribes. Topics
 * survive reconnections (re-subscribed automatically).
 * Returns 0, -EINVAL (not "owner:stream" within the bounds above; for
 * unsubscribe also a topic that is not subscribed) or -ENOMEM.
 */
int ps_fabric_subscribe(ps_fabric *f, const char *topic);
int ps_fabric_unsubscribe(ps_fabric *f, const char *topic);

/*
 * Publish payload (borrowed, copied) on topic. done (optional) is called
 * exactly once with the outcome — for the local backend before this
 * function returns, after the message was delivered to this fabric's
 * on_message (other members of the hub deliver on their own loops); for
 * Redis when PUBLISH is answered or fails, and also before this function
 * returns (LS_EUNAVAILABLE) when the publishing connection is down.
 * Pending publishes are failed with LS_EUNAVAILABLE when the connection is
 * lost, stuck (no reply within connect_timeout_ms) or the fabric
 * destroyed; such a message may still have reached Redis (outcome
 * unknown). Returns 0 if done will be (or was) called,
 * or a negative error (and done is not called): -EINVAL for a bad topic or
 * a payload over max_payload, -ENOBUFS when too many publishes are pending.
 */
int ps_fabric_publish(ps_fabric *f, const char *topic, const char *payload,
                      size_t len, ps_publish_fn done, void *user);

/*
 * Publish payload (borrowed, copied) on the control channel: the local
 * backend calls on_control before returning; Redis PUBLISHes it to every
 * gateway (this one included). Returns 0, -EINVAL for a payload over
 * max_payload, or LS_EUNAVAILABLE when Redis is not connected.
 */
int ps_fabric_control_publish(ps_fabric *f, const char *payload, size_t len);

/*
 * Publish with history: as ps_fabric_publish, but when hist->size > 0 the
 * message is appended to the stream's history and gets the next offset
 * (given to done, and to on_message of every gateway), atomically with
 * its delivery. hist NULL or size 0: ps_fabric_publish. -EINVAL for
 * settings out of bounds.
 */
int ps_fabric_publish_history(ps_fabric *f, const char *topic,
                              const char *payload, size_t len,
                              const ps_history_cfg *hist, ps_publish_fn done,
                              void *user);

/*
 * Read topic's history: the retained messages with offsets > since, oldest
 * first, at most limit (0: none, only epoch and latest). done is called
 * exactly once (local: before this returns; redis: when answered, or
 * LS_EUNAVAILABLE) unless this returns a negative error (-EINVAL bad
 * topic or limit over PS_HISTORY_SIZE_MAX, -ENOMEM, -ENOBUFS, -ENOTSUP
 * on a fabric without history: zmq). The
 * stream's epoch is created when missing, so a reader that saw an empty
 * stream can recover what is published next.
 */
int ps_fabric_history(ps_fabric *f, const char *topic, uint64_t since,
                      size_t limit, ps_history_fn done, void *user);

/*
 * True when topic is subscribed and the backend confirmed it: every
 * message published from now on reaches on_message. When false, the
 * fabric calls on_subscribed once it is.
 */
bool ps_fabric_confirmed(const ps_fabric *f, const char *topic);

/* True when the backend is connected and topics are subscribed. */
bool ps_fabric_ready(const ps_fabric *f);

/* Why not ready (static or internal string, valid until next call). */
const char *ps_fabric_status(const ps_fabric *f);

/* Counters; the one call that any thread may make (while f exists). */
void ps_fabric_stats(const ps_fabric *f, ps_stats *out);

/* Backend name: "local" or "redis". */
const char *ps_fabric_backend(const ps_fabric *f);

/* Reference count of topic (0 when not subscribed). */
unsigned ps_fabric_refs(const ps_fabric *f, const char *topic);

#endif
