/*
 * Internals shared by the gateway's files. Nothing here is public API.
 *
 * Ownership in one picture:
 *   gw_gateway ── owns ─▶ lws context, listeners, bus client, fabric,
 *                          streams (hash of gw_stream), connections
 *   gw_stream  ── list ─▶ gw_sub (borrowed; a sub is owned by its conn)
 *   gw_conn    ── owns ─▶ gw_sub list, queue of frames (refcounted bufs)
 */
#ifndef GW_INTERNAL_H
#define GW_INTERNAL_H

#include <ev.h>
#include <jansson.h>
#include <libwebsockets.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "bus_client.h"
#include "gw_envelope.h"
#include "gw_gateway.h"
#include "ls_config.h"
#include "ls_proto.h"
#include "ps_control.h"
#include "ps_fabric.h"
#include "q_query.h"

#define GW_LOG             "gateway"
#define GW_IP_MAX          64
#define GW_CONN_ID_BYTES   24 /* 192 random bits */
#define GW_BATCH_BYTES     (64 * 1024)
#define GW_TX_PACKET       (256 * 1024)
#define GW_RX_CHUNK        128
#define GW_PROBE_MS        2000
#define GW_HTTP_BODY_MAX   (1024 * 1024)
#define GW_HTTP_HEAD_SLACK 2048 /* lws head buffer beyond our limits */
#define GW_WS_PATH         "/lightstream/websocket"
/* The app server's token-issuing service (docs/architecture.md). */
#define GW_ISSUE_SERVICE  "auth.issue"
#define GW_LIMIT_KEYS_MAX 100000 /* addresses / app keys tracked */
#define GW_SSE_PATH       "/lightstream/sse/"
/* After the server decides to close a connection, the peer has this long
 * to read the close frame and answer it; then the socket is cut
 * (docs/protocol.md: gone within 5 s, whether the peer reads or not). */
#define GW_CLOSE_GRACE_MS 3000
/* The reaper's work per loop iteration (gw_gateway.c): at most this many
 * connections closed or cut; the rest waits for the next iteration, so a
 * mass close never stalls the loop for long. */
#define GW_REAP_BATCH 32
#define GW_REAP_MS    50
/* The keepalive sweep visits the connections in this many steps per
 * ping interval. */
#define GW_PING_SLICES 32

/* ---- refcounted byte buffers (gw_buf.c) -------------------------------- */

typedef struct gw_buf {
	unsigned refs;
	size_t len;
	char data[];
} gw_buf;

/* New buffer holding a copy of data (may be NULL: uninitialised). */
gw_buf *gw_buf_new(const void *data, size_t len);
gw_buf *gw_buf_ref(gw_buf *b);
void gw_buf_unref(gw_buf **b);

/*
 * A queued outgoing text frame: payload = head + body (+ "}}" when head
 * is set). Delivery frames share body between every subscription of a
 * message and head between every message of a subscription.
 */
typedef struct gw_qent {
	gw_buf *head; /* NULL for control messages */
	gw_buf *body;
	size_t len; /* its bytes on the wire, framing included */
} gw_qent;

/* ---- metrics (gw_metrics.c) --------------------------------------------- */

#define GW_LAT_BUCKETS  14
#define GW_BUSY_BUCKETS 9

/*
 * Counters are written by their loop's thread only, and read by any loop
 * answering /metrics for the whole server (gw_server.c): atomic.
 */
typedef struct gw_metrics {
	_Atomic uint64_t connections_total;
	_Atomic uint64_t connections_rejected;
	_Atomic uint64_t http_requests;
	_Atomic uint64_t
	        messages_in; /* publishes accepted from clients/HTTP */
	_Atomic uint64_t
	        messages_fabric;       /* messages received from the fabric */
	_Atomic uint64_t messages_out; /* delivery frames queued */
	_Atomic uint64_t dropped; /* deliveries dropped (slow consumer, bad) */
	_Atomic uint64_t auth_ok;
	_Atomic uint64_t auth_failed;
	_Atomic uint64_t slow_consumers;
	_Atomic uint64_t
	        queries_too_costly; /* subscriptions ended over budget */
	_Atomic uint64_t bus_errors;
	_Atomic uint64_t
	        http_overload; /* bodies refused: buffered-bytes cap */
	_Atomic uint64_t tokens_revoked;      /* connections closed 4011 */
	_Atomic uint64_t permissions_changed; /* PermissionsChanged sent */
	_Atomic uint64_t revalidations;       /* validateToken re-checks */
	_Atomic uint64_t token_rate_limited;  /* 429: token failure limits */
	_Atomic uint64_t token_busy;    /* 503: token calls in flight at max */
	_Atomic uint64_t direct_writes; /* batches sent on the socket itself */
	_Atomic uint64_t publishers_paused; /* reads paused: back-pressure */
	_Atomic uint64_t reads_ahead; /* flushes put off: publisher unread */
	_Atomic uint64_t
	        lat_bucket[GW_LAT_BUCKETS]; /* cumulative at render time */
	_Atomic uint64_t lat_count;
	_Atomic uint64_t lat_sum_ns;
	/* CPU time of each loop iteration: how long the loop was busy
	 * before it could look at any other client again */
	_Atomic uint64_t busy_bucket[GW_BUSY_BUCKETS];
	_Atomic uint64_t busy_count;
	_Atomic uint64_t busy_sum_ns;
	_Atomic uint64_t busy_max_ns;
} gw_metrics;

/* Record one bus round trip that started at start_ns (ls_now_ns). */
void gw_metrics_bus(gw_metrics *m, int64_t start_ns);
/* Record one loop iteration that kept the loop busy for `seconds`. */
void gw_metrics_busy(gw_metrics *m, double seconds);

/* Prometheus text of the gateway's metrics (new string, free()). */
char *gw_metrics_render(gw_gateway *gw, size_t *len);

/* ---- connections, streams, subscriptions -------------------------------- */

typedef struct gw_conn gw_conn;
typedef struct gw_stream gw_stream;
typedef struct gw_sub gw_sub;
typedef struct gw_http gw_http;
typedef struct gw_ack gw_ack;
typedef struct gw_sse gw_sse;

/* An owner's history settings (the account's "history" override). */
typedef struct gw_owner_hist {
	char owner[LS_APPKEY_MAX + 1];
	ps_history_cfg cfg;
} gw_owner_hist;

/*
 * A connection's permissions are ls_perm (common/ls_proto.h) whose owner
 * and stream strings the gateway owns (gw_perms_free()); the one check is
 * ls_perm_allows().
 */
typedef ls_perm gw_perm;

/* The reaper's lists (gw_gateway.c); a connection is on at most one. */
typedef enum gw_clist_id {
	GW_CL_NONE = 0,
	GW_CL_AUTH,    /* not authenticated yet; deadline: the auth timeout */
	GW_CL_START,   /* a close to start (shutdown, token expiry) */
	GW_CL_CLOSING, /* closing; deadline: the socket is cut */
	GW_CL_KILL,    /* to cut at once (no pong, close acknowledged) */
	GW_CL_COUNT
} gw_clist_id;

typedef struct gw_clist {
	gw_conn *head, *tail;
	size_t count;
} gw_clist;

typedef enum gw_conn_state {
	GW_CS_NEW,      /* waiting for AuthRequest */
	GW_CS_AUTHING,  /* auth.validateToken in flight */
	GW_CS_WEBSIG,   /* WebTokenRequest sent, waiting for the answer */
	GW_CS_WEBCHECK, /* auth.validateWebToken in flight */
	GW_CS_READY,    /* authenticated */
	GW_CS_CLOSING,  /* close decided; draining the queue */
} gw_conn_state;

typedef struct gw_rec gw_rec;

struct gw_sub {
	gw_conn *conn;
	gw_stream *stream;
	q_query *query; /* NULL: every message */
	gw_buf *head; /* {"t":5,"m":{"owner":..,"stream":..,"sub":..,"data": */
	/* Set from the SubscribeRequest until its response was sent: live
	 * messages are buffered meanwhile (gw_recover.c). */
	gw_rec *rec;
	/* Live messages of floor_epoch up to floor were in the history read
	 * (they may still be in flight from the fabric): not delivered
	 * again. 0 once a later message came. */
	uint64_t floor;
	char floor_epoch[LS_EPOCH_MAX + 1];
	gw_sub *sprev, *snext; /* in stream */
	gw_sub *cprev, *cnext; /* in connection */
	char id[LS_SUB_ID_MAX + 1];
};

struct gw_stream {
	gw_stream *hnext;
	uint32_t hash;
	size_t nsubs;
	size_t nquery;
	gw_sub *subs;
	char *owner;
	char *name;
	char topic[]; /* owner:name */
};

/*
 * How the shared writer frames a connection's queue: WebSocket frames, or
 * Server-Sent Events on a streamed HTTP response (gw_sse.c).
 */
typedef enum gw_framing {
	GW_FRAMING_WS = 0,
	GW_FRAMING_SSE,
} gw_framing;

struct gw_conn {
	gw_gateway *gw;
	struct lws *wsi;
	gw_framing framing;
	gw_sse *sse; /* SSE only: the request and the response state */
	gw_conn *prev, *next;
	gw_conn_state state;
	bool tls;
	char ip[GW_IP_MAX];
	char conn_id[48];
	char *app_key;
	char *token;     /* kept for re-validations */
	char *new_token; /* of a RefreshRequest in flight */
	gw_perm *perms;
	size_t nperms;
	int64_t expires_ms; /* wall clock */
	ev_timer expiry_timer;
	/* reaper: one list at a time, each in deadline order */
	gw_conn *lprev, *lnext;
	gw_clist_id list;
	int64_t deadline_ms;    /* monotonic */
	ls_proto_code start_pc; /* GW_CL_START: the Error to send, or
	                           LS_PC_COUNT for none */
	int start_close;        /* GW_CL_START: the close code */
	bool close_sent;        /* our close frame is written */
	bool ip_counted;        /* counted in gw->shared->conns_by_ip */
	/* publishes: a token bucket (gateway.publish_rate, _burst), and the
	 * refusals of the current second */
	double pub_tokens;
	int64_t pub_last_ms;
	int64_t pub_window_ms;
	long pub_refused;
	bool cut; /* the socket is being cut: no more lists */
	/* one bus request at a time: auth, web-token check or refresh */
	uint64_t bus_id;
	bool bus_pending;
	bool refreshing;
	int64_t bus_start_ns;
	/* fragment reassembly */
	char *rx;
	size_t rxlen, rxcap;
	/* outgoing queue: ring of frames, bounded in bytes */
	gw_qent *q;
	size_t qhead, qcount, qcap;
	size_t qbytes;
	int close_code;     /* sent once the queue is written */
	int64_t last_rx_ms; /* monotonic: any frame or pong from the peer */
	bool ping_due;
	/* on gw->flush: written before the loop next waits */
	gw_conn *flush_next;
	bool flush_queued;
	/* on gw->paused: reading stopped until the flush (back-pressure) */
	gw_conn *paused_next;
	bool rx_paused;
	/* on gw->readers: published since the last flush (read-ahead) */
	gw_conn *reader_next;
	bool reader_listed;
	size_t ahead_left; /* input bytes to read before the flush */
	/* subscriptions */
	gw_sub *subs;
	size_t nsubs;
	uint64_t sub_seq;
	gw_ack *acks; /* publishes waiting for the fabric */
	/* live authorization (gw_liveauth.c) */
	bool new_token_revoked; /* the refresh's token was revoked meanwhile */
	char token_id[PS_CONTROL_TOKEN_ID_LEN + 1]; /* of token */
	unsigned token_gen; /* bumped when token changes */
	unsigned check_gen; /* token_gen of the re-validation in flight */
	uint64_t check_id;  /* its bus request */
	bool check_pending; /* a re-validation is in flight */
	bool check_wanted;  /* re-validate once possible */
	bool check_queued;  /* on gw->checks */
	bool check_retry;   /* failed transiently: again after a while */
	int64_t check_start_ns;
	gw_conn *cq_prev, *cq_next; /* on gw->checks */
	/* closing for a revocation, in slices (gw->revokes) */
	bool revoke_queued;
	const char *revoke_why; /* static text */
	gw_conn *rv_prev, *rv_next;
	/* history settings of stream owners, from the token's grant */
	gw_owner_hist *ohist;
	size_t nohist;
};

/* A validateToken result (gw_grant_parse). */
typedef struct gw_grant {
	gw_perm *perms; /* new; gw_perms_free() */
	size_t nperms;
	int64_t expires_ms;
	bool web;
} gw_grant;

struct gw_ack {
	gw_ack *prev, *next;
	gw_conn *conn; /* NULL once the connection is gone */
	json_t *request_id;
};

/* ---- the gateway ------------------------------------------------------- */

typedef struct gw_listener {
	int fd;
	bool tls;
	ev_io io;
	ev_timer pause; /* accept paused after EMFILE */
	char address[96];
	gw_gateway *gw;
} gw_listener;

struct gw_gateway {
	struct ev_loop *loop;
	struct gw_server *server; /* NULL: a gateway on its own */
	unsigned index;           /* loop number in the server */
	struct lws_context *ctx;
	struct lws_vhost *vh;
	struct lws_vhost *vh_tls;
	gw_listener plain;
	gw_listener tls;
	bus_client *bus;
	ps_fabric *fabric;
	gw_metrics m;

	/* configuration */
	long auth_timeout_ms;
	long max_frame_bytes;
	long queue_limit_bytes;
	long fanout_pause_bytes; /* gateway.fanout_pause_bytes */
	long max_subscriptions;
	long ping_interval_s;
	long drain_timeout_ms;
	long max_connections;
	long publish_rate; /* per connection per second; 0: no limit */
	long publish_burst;
	long bus_timeout_ms;
	bool token_http_remote;
	long http_max_body_bytes;     /* per request, but publish */
	long http_max_buffered_bytes; /* all unfinished request bodies */
	long http_request_timeout_ms; /* headers complete → body complete */
	long http_max_uri_bytes;      /* 414 over it */
	long http_max_header_bytes;   /* 431 over it */
	bool reuse_port;
	long token_max_inflight; /* key-hashing bus calls at once */
	ps_history_cfg history;  /* history.size / history.ttl */
	ls_strlist origins;
	ls_strlist trusted_proxies;
	ls_strlist service_allowlist;
	char *static_dir; /* resolved, absolute; NULL: none found */
	/* the browser client, served whatever static_dir says */
	struct gw_client_files *client_files;

	/* HTTP limits shared by the loops of a server (gw_shared.c) */
	struct gw_shared *shared;

	/* connections and streams */
	gw_conn *conns;
	_Atomic size_t nconns; /* atomic: read by the other loops */
	_Atomic size_t nsubs;
	_Atomic size_t nsse; /* of nconns: Server-Sent Events streams */
	gw_stream **buckets;
	size_t nbuckets;
	_Atomic size_t nstreams;

	/* readiness */
	bool bus_ok;
	char bus_reason[160];
	ev_timer probe;
	uint64_t probe_id;
	bool probe_pending;
	int64_t probe_start_ns;

	/* live authorization: connections waiting for a re-validation, and
	 * how many are in flight (bounded) */
	gw_conn *checks, *checks_tail;
	size_t checks_inflight;
	ev_timer check_retry;
	/* connections an announcement revoked, closed GW_REVOKE_SLICE per
	 * loop iteration so that thousands do not stall the loop */
	gw_conn *revokes, *revokes_tail;
	ev_timer revoke_w;

	/* loop iterations timed for the metrics (gw_gateway.c) */
	int64_t busy_t0; /* thread CPU ns at the start of the iteration */

	/* keepalive: our own pings, written with the queued frames; the
	 * sweep's next connection */
	ev_timer ping;
	gw_conn *ping_cursor;
	size_t ping_quota;
	int64_t ping_round_ms; /* when the round started */

	/* the reaper: auth timeouts, closes to start, sockets to cut, a
	 * bounded batch per loop iteration */
	gw_clist lists[GW_CL_COUNT];
	ev_timer reap;
	int64_t reap_at; /* when it runs next; INT64_MAX: not armed */

	/* shutdown */
	bool stopping;
	ev_timer drain;
	ev_idle drained;
	void (*done)(void *);
	void *done_user;

	/* A fan-out collects the connections whose queue it started; they
	 * are written once before the loop next waits, instead of asking lws
	 * for WRITEABLE (gw_fanout.c). The watcher runs only while the list
	 * is not empty. */
	bool fanout;
	gw_conn *flush;
	ev_prepare flush_w;
	/* Bytes queued since the last flush; past gateway.fanout_pause_bytes a
	 * publishing connection stops being read until the flush
	 * (gw_publisher_check). */
	size_t fanout_bytes;
	gw_conn *paused;
	/* Read-ahead: connections that published since the last flush,
	 * when the flush was first put off for them (0: not put off) and
	 * how long the last flush took (thread CPU time, ns). */
	gw_conn *readers;
	int64_t read_since;
	int64_t flush_took;
	ev_idle ahead_w; /* keeps the loop from sleeping meanwhile */

	/* coalescing buffer for WebSocket writes: LWS_PRE + batch */
	unsigned char *wbuf;
	size_t wcap;
};

/* Per-session data of the one lws protocol. */
typedef struct gw_pss {
	gw_conn *conn;
	gw_http *http;
} gw_pss;

/* gw_conn.c: WebSocket protocol */
gw_conn *gw_conn_new(gw_gateway *gw, struct lws *wsi);
void gw_conn_destroy(gw_conn *c);
int gw_conn_receive(gw_conn *c, const void *in, size_t len);
/* Validate token of app_key (both copied) on the bus: the connection
 * becomes READY, or fails with auth_failed / unavailable. */
void gw_conn_authenticate(gw_conn *c, const char *app_key, const char *token);
int gw_conn_writeable(gw_conn *c);
/* Queue a control message {"t": t, "m": m}; takes m. */
void gw_conn_send(gw_conn *c, int t, json_t *m);
/* Queue Error {code, message} and close with close_code after it. */
void gw_conn_fail(gw_conn *c, int close_code, const char *code,
                  const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* The same, the close code from ls_proto's table for the code pc. */
void gw_conn_error(gw_conn *c, ls_proto_code pc, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
/* Close with close_code once the queue is written (no Error). */
void gw_conn_close(gw_conn *c, int close_code);
/* Does c hold every bit of bit (LS_PERM_*) on owner/stream? */
bool gw_conn_allowed(const gw_conn *c, const char *owner, const char *stream,
                     int bit);
/*
 * Read a validateToken result for app_key into *g (0), or -EINVAL /
 * -ENOMEM with *g empty.
 */
int gw_grant_parse(const char *app_key, const char *body, size_t len,
                   gw_grant *g);
void gw_perms_free(gw_perm *perms, size_t n);
/*
 * Give c the permissions perms[0..n) (taken). When they differ from its
 * current ones: queue PermissionsChanged and end every subscription it
 * may no longer read with SubscriptionEnded forbidden.
 */
void gw_conn_set_perms(gw_conn *c, gw_perm *perms, size_t n);

/* gw_liveauth.c: announcements and re-validations (docs/protocol.md,
 * "Live authorization") */
/* Fabric callbacks: an announcement; the control channel re-subscribed. */
void gw_liveauth_control(const char *payload, size_t len, void *user);
void gw_liveauth_resync(void *user);
/* Re-validate c's token soon (bounded number in flight). */
void gw_liveauth_recheck(gw_conn *c);
/* c->token was set or replaced. */
void gw_liveauth_token_changed(gw_conn *c);
/* c became READY: a re-validation asked for meanwhile runs now. */
void gw_liveauth_ready(gw_conn *c);
/* c is closing or going: cancel its re-validation, leave the queue. */
void gw_liveauth_forget(gw_conn *c);
void gw_liveauth_init(gw_gateway *gw);
void gw_liveauth_stop(gw_gateway *gw);
/* Start a close later, from the reaper (a mass event: shutdown, expiry):
 * Error pc (LS_PC_COUNT: none), then close_code. */
void gw_conn_close_later(gw_conn *c, ls_proto_code pc, int close_code);
/* The peer answered our close frame, or sent its own (lws callback
 * LWS_CALLBACK_WS_PEER_INITIATED_CLOSE). Returns nonzero when lws is to
 * drop the connection at once without answering. */
int gw_conn_peer_close(gw_conn *c, const unsigned char *in, size_t len);
/* The reaper's actions: the close gw_conn_close_later() asked for; the
 * auth timeout (Error auth_failed, close 4002). */
void gw_conn_start_close(gw_conn *c);
void gw_conn_auth_timeout(gw_conn *c);

/* gw_fanout.c: streams, subscriptions, queues */
int gw_sub_add(gw_conn *c, const char *owner, const char *stream,
               q_query *query, gw_sub **out);
/*
 * Answer the SubscribeRequest of a just-added sub: reads the stream's
 * epoch and latest offset (and, with since, the missed messages) once the
 * fabric confirmed the topic, then sends the SubscribeResponse, the
 * recovered messages and the live ones buffered meanwhile, in that order.
 * request_id is borrowed (copied). since_epoch NULL: no since.
 */
void gw_sub_start(gw_sub *sub, json_t *request_id, const char *since_epoch,
                  uint64_t since_offset);
/* The fabric confirmed topic: start the recoveries waiting for it. */
void gw_fanout_subscribed(const char *topic, size_t topiclen, void *user);
int gw_sub_remove(gw_conn *c, const char *id);
/*
 * End one subscription on the server's initiative: queue
 * SubscriptionEnded {subscriptionId, error: {code, message}} and free sub
 * (the connection stays). message is borrowed. May be called from a
 * fan-out for the subscription being delivered (the loop keeps its next
 * pointer), never for another subscription of the same stream.
 */
void gw_sub_end(gw_sub *sub, ls_proto_code code, const char *message);
void gw_subs_clear(gw_conn *c);
void gw_fanout_message(const char *topic, size_t topiclen, const char *payload,
                       size_t len, uint64_t offset, const char *epoch,
                       void *user);
/* Queue a frame on c: takes the references head (may be NULL) and body.
 * Returns 0, or LS_ESLOW when the queue limit was passed (c is then
 * closing with slow_consumer and the references are released). */
int gw_queue_push(gw_conn *c, gw_buf *head, gw_buf *body);
void gw_queue_clear(gw_conn *c);
/* Queue a control frame even while closing (the final Error). Takes body. */
void gw__queue_force(gw_conn *c, gw_buf *body);
/* Write as much of the queue as one lws_write allows. */
int gw_queue_write(gw_conn *c);
/* Takes c off the fan-out's write list (connection going away). */
void gw_flush_forget(gw_conn *c);

/* Read-ahead (gw_fanout.c): the flush of queued fan-out may be put off
 * while a publisher has unread input, for as much CPU time as the last
 * flush took, within these bounds (ns). */
#define GW_READ_AHEAD_MIN_NS 1000000
#define GW_READ_AHEAD_MAX_NS 50000000

/* After a publish of c: note c for the read-ahead, and pause reading c
 * while the iteration's fan-out is past gw->fanout_pause_bytes; the flush
 * resumes it. */
void gw_publisher_check(gw_conn *c);
/* c received len bytes of a message (gw_conn_receive). */
void gw_read_ahead_consumed(gw_conn *c, size_t len);
void gw_streams_free(gw_gateway *gw);

/*
 * One message as the fabric gave it: the shared body (valid JSON as is,
 * anything else as a JSON string: docs/pubsub.md; then ,"offset":N when
 * offset > 0), *jlen the bytes of JSON in it, and, when parse is set, the
 * parsed value for queries (*msg, new reference; NULL when jansson
 * refuses it). Returns a new buffer, or NULL when the payload is not
 * UTF-8 or memory ran out.
 */
gw_buf *gw_message(const char *payload, size_t len, uint64_t offset,
                   bool parse, json_t **msg, size_t *jlen);

/* gw_recover.c: the recovery of one subscription (see there) */
/* Deliver one message; false: the subscription ended, stop. */
typedef bool (*gw_rec_emit_fn)(void *user, gw_buf *shared, json_t *msg,
                               uint64_t offset);
/* New recovery state for owner (borrowed), copying request_id and since
 * (since_epoch NULL: none); NULL when out of memory. */
gw_rec *gw_rec_new(void *owner, json_t *request_id, const char *since_epoch,
                   uint64_t since);
/* The owner is done with r: freed now, or by gw_rec_read_done when a read
 * is in flight. Accepts NULL. */
void gw_rec_release(gw_rec *r);
/* Buffer a live message (takes a reference to shared; epoch borrowed, NULL
 * without offset). 0, -ENOBUFS when the buffer would pass limit bytes,
 * -ENOMEM. */
int gw_rec_buffer(gw_rec *r, gw_buf *shared, size_t jlen, uint64_t offset,
                  const char *epoch, size_t limit);
void gw_rec_read_start(gw_rec *r);
bool gw_rec_reading(const gw_rec *r);
/* The read answered: its owner, or NULL (r was released and is freed). */
void *gw_rec_read_done(gw_rec *r);
bool gw_rec_has_since(const gw_rec *r);
bool gw_rec_since(const gw_rec *r, uint64_t *since);
json_t *gw_rec_request_id(const gw_rec *r); /* borrowed */
/* Does res recover since (epoch matches, nothing missing)? */
bool gw_rec_recovered(const gw_rec *r, const ps_history_result *res);
/*
 * Emit, in order, the recovered messages of res (when it recovers since)
 * and the buffered live messages not in the read (offset above
 * res->latest, another epoch, or no offset)
 * (all of them when res is NULL: no history read), until emit says stop.
 * Empties the buffer. Returns whether since was recovered.
 */
bool gw_rec_merge(gw_rec *r, const ps_history_result *res, bool parse,
                  gw_rec_emit_fn emit, void *user);

/* gw_history.c: history settings and reads */
/*
 * The history settings for owner's streams under a validateToken grant:
 * the grant's "history" entry for owner, else the gateway's defaults.
 */
ps_history_cfg gw_history_cfg(const gw_gateway *gw, json_t *grant,
                              const char *owner);
/* Read a grant's per-owner settings into c (replacing them). */
int gw_history_take(gw_conn *c, json_t *grant);
/* The settings for owner's streams on connection c. */
ps_history_cfg gw_history_for(const gw_conn *c, const char *owner);
/* A history read as the HTTP data {"epoch","offset","messages":[...]}:
 * new reference, NULL when out of memory. */
json_t *gw_history_json(const ps_history_result *r);

/* gw_http.c: HTTP endpoints */
int gw_http_request(gw_gateway *gw, struct lws *wsi, gw_pss *pss,
                    const char *uri);
int gw_http_body(gw_http *h, const void *in, size_t len);
int gw_http_body_done(gw_http *h);
int gw_http_writeable(gw_http *h);
/*
 * The request line and headers of wsi (HTTP or a WebSocket upgrade):
 * 0, or -1 with the HTTP status (400, 414, 431) and why.
 */
int gw_http_head_check(gw_gateway *gw, struct lws *wsi, const char *uri,
                       unsigned *status, const char **why);
void gw_http_free(gw_http **h);
char *gw_static_dir_default(void);

/* gw_net.c: addresses */
/* The client IP of wsi: the peer, or the left-most X-Forwarded-For entry
 * when the peer is a trusted proxy. */
void gw_client_ip(gw_gateway *gw, struct lws *wsi, char *out, size_t len);
bool gw_ip_is_loopback(const char *ip);
bool gw_wsi_is_tls(gw_gateway *gw, struct lws *wsi);
/* TLS to us, or to a trusted proxy that says X-Forwarded-Proto: https. */
bool gw_request_is_tls(gw_gateway *gw, struct lws *wsi);
int gw_listener_open(gw_gateway *gw, gw_listener *l, const char *address,
                     bool tls, ls_error *err);
void gw_listener_close(gw_listener *l);
/* Hand an accepted socket to libwebsockets on gw's loop (or close it). */
void gw_adopt(gw_gateway *gw, int fd, bool tls);

/* gw_shared.c: what the HTTP limits of a server's loops share */
typedef struct gw_shared {
	_Atomic int refs;
	/* bytes allocated for unfinished HTTP request bodies */
	_Atomic size_t http_buffered;
	/* token-endpoint calls (key hashing) in flight */
	_Atomic long token_inflight;
	pthread_mutex_t lock; /* the failure limits */
	struct gw_limit *ip_limit, *key_limit;
	/* connections per client IP (gw_iplimit.h; thread-safe itself) */
	struct gw_iplimit *conns_by_ip;
} gw_shared;

/* New shared state from s's limits (NULL when out of memory). */
gw_shared *gw_shared_new(const ls_settings *s);
gw_shared *gw_shared_ref(gw_shared *sh);
/* Drop one reference; accepts NULL and clears *sh. */
void gw_shared_unref(gw_shared **sh);
/* 0 when ip may try a token for app now, else seconds to wait; by_ip:
 * the address's limit is the one that holds it back. Thread-safe. */
int gw_shared_token_check(gw_shared *sh, const char *ip, const char *app,
                          int64_t now_ms, bool *by_ip);
/* Count one failure of ip and app. Thread-safe. */
void gw_shared_token_fail(gw_shared *sh, const char *ip, const char *app,
                          int64_t now_ms);

/* gw_server.c: the loops of one server */
/* An accepted socket: adopt it here or hand it to the least loaded loop. */
void gw_server_accepted(gw_gateway *gw, int fd, bool tls);
/* Open connections of the whole server (gw's alone without a server). */
size_t gw_server_connections(gw_gateway *gw);
/* Streams with subscribers on any loop, each counted once (the local
 * fabric's hub knows); (size_t)-1 when not known (no server, Redis). */
size_t gw_server_streams(gw_gateway *gw);
/* Call fn for every running loop's gateway (only gw without a server);
 * fn may read only the atomic counters of the others. */
void gw_server_each(gw_gateway *gw, void (*fn)(gw_gateway *g, void *arg),
                    void *arg);

/* gw_sse.c: Server-Sent Events (docs/protocol.md, "Server-Sent Events") */
/*
 * Take over the HTTP request of wsi on GW_SSE_PATH owner/stream: params
 * is the request's parameters (borrowed), ip the client's. Makes an SSE
 * connection (pss->conn) that authenticates, subscribes and streams; every
 * error before the stream starts is an HTTP answer with the error's
 * status. Returns 0, or -1 to close the connection.
 */
int gw_sse_open(gw_gateway *gw, struct lws *wsi, gw_pss *pss,
                const char *owner, const char *stream, json_t *params,
                const char *ip);
/* The token of an SSE connection was accepted: subscribe and stream. */
void gw_sse_ready(gw_conn *c);
/* The bytes of control message {t, m} on an SSE connection (NULL: none
 * for this type). m is borrowed. */
gw_buf *gw_sse_encode(gw_conn *c, int t, json_t *m);
/* The history epoch of an SSE connection's stream ("" none): the first
 * part of its events' ids. */
const char *gw_sse_epoch(const gw_conn *c);
/* The response head was written (or is not needed yet)? */
bool gw_sse_started(const gw_conn *c);
/* Write the response head: 0 written (or nothing to write yet), -1 fail. */
int gw_sse_write_head(gw_conn *c);
void gw_sse_free(gw_conn *c);

/* gw_gateway.c */
void gw_check_drained(gw_gateway *gw);
/* May a page of origin connect (gateway.origins)? Logs a refusal. */
bool gw_origin_allowed(gw_gateway *gw, const char *origin);
/* Move c to the end of list (off any other) with deadline (monotonic ms);
 * GW_CL_NONE takes it off. The reaper runs when the first deadline is
 * due. */
void gw_clist_move(gw_conn *c, gw_clist_id list, int64_t deadline_ms);
/* The peer sent something: it is alive. */
void gw_conn_alive(gw_conn *c);

#endif
