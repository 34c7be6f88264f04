/*
 * Internals shared by the fabric front end (ps_fabric.c) and its backends
 * (ps_local.c, ps_redis.c). Not part of the public interface.
 */
#ifndef PS_INTERNAL_H
#define PS_INTERNAL_H

#include "ps_fabric.h"
#include "ps_topics.h"

/* Outstanding publishes per fabric; beyond this publish says -ENOBUFS. */
#define PS_PENDING_MAX 65536

/*
 * A backend behind the fabric. Topic names passed in are validated and
 * already counted in f->topics; subscribe is called on the first
 * reference, unsubscribe when the last one goes (just before the entry is
 * removed).
 */
typedef struct ps__backend {
	const char *name;
	int (*start)(ps_fabric *f, const char *url, ls_error *err);
	void (*stop)(ps_fabric *f);
	int (*subscribe)(ps_fabric *f, ps__topic *t);
	void (*unsubscribe)(ps_fabric *f, ps__topic *t);
	/* hist: NULL or size > 0, within bounds */
	int (*publish)(ps_fabric *f, const char *topic, size_t tlen,
	               const char *payload, size_t len,
	               const ps_history_cfg *hist, ps_publish_fn done,
	               void *user);
	/* NULL: no history (ps_fabric_history says -ENOTSUP) */
	int (*history)(ps_fabric *f, const char *topic, size_t tlen,
	               uint64_t since, size_t limit, ps_history_fn done,
	               void *user);
	/* Publish on the control channel; NULL: deliver in process. */
	int (*control)(ps_fabric *f, const char *payload, size_t len);
	bool (*ready)(const ps_fabric *f);
	const char *(*status)(const ps_fabric *f);
} ps__backend;

struct ps_fabric {
	struct ev_loop *loop;
	const ps__backend *be;
	void *state; /* backend's own */
	ps_message_fn on_message;
	ps_state_fn on_state;
	ps_control_fn on_control;
	ps_resync_fn on_resync;
	ps_subscribed_fn on_subscribed;
	void *user;
	int connect_timeout_ms;
	int reconnect_min_ms;
	int reconnect_max_ms;
	size_t max_payload;
	ps_hub *hub; /* local: the hub to join (NULL: a private one) */
	char curve_server[41], curve_public[41],
	        curve_secret[41]; /* "": plain */
	size_t history_bytes;
	ps__topics *topics;
	ps_stats stats;
	bool last_ready; /* last state reported through on_state */
	bool destroying;
};

extern const ps__backend ps__local_backend;
extern const ps__backend ps__redis_backend;
extern const ps__backend ps__zmq_backend;
extern const ps__backend ps__rcluster_backend;

/*
 * Count into a ps_stats field. Only the fabric's loop writes; any thread
 * may read (ps_fabric_stats), so the accesses are atomic.
 */
static inline void
ps__count(uint64_t *counter, uint64_t n)
{
	__atomic_store_n(counter,
	                 __atomic_load_n(counter, __ATOMIC_RELAXED) + n,
	                 __ATOMIC_RELAXED);
}

/* Deliver one received message (checks the limit, counts, calls back). */
void ps__deliver(ps_fabric *f, const char *topic, size_t tlen,
                 const char *payload, size_t len, uint64_t offset,
                 const char *epoch);

/* A topic's subscription was confirmed: tell on_subscribed. */
void ps__subscribed(ps_fabric *f, ps__topic *t);

/*
 * "redis://HOST[:PORT][/]" with HOST an IP address or localhost: host
 * (hostcap bytes) and *port. Returns 0 or -EINVAL with err set.
 */
int ps__redis_url(const char *url, char *host, size_t hostcap, int *port,
                  ls_error *err);

/* ---- shared by the Redis backends (ps_redis_lib.c) --------------------- */

struct redisReply;

/* The function library: ls_publish, ls_spublish, ls_history. */
extern const char ps__redis_library[];

/*
 * Parse "<epoch>:<offset>\n<data>" (a message published with history):
 * epoch, *offset and the data span into msg. 0, or -1 when malformed.
 */
int ps__redis_framed_parse(const char *msg, size_t len,
                           char epoch[LS_EPOCH_MAX + 1], uint64_t *offset,
                           const char **data, size_t *dlen);

/* Call done exactly once with the ls_history reply rep (NULL: the
 * connection went away). */
void ps__redis_history_done(const struct redisReply *rep, ps_history_fn done,
                            void *user);

/* Status of a publish reply (ls_publish or PUBLISH) and its offset (0
 * without history). */
int ps__redis_publish_reply(const struct redisReply *rep, uint64_t *offset);

/* Report a state change through on_state when readiness changed. */
void ps__state_changed(ps_fabric *f);

#endif
