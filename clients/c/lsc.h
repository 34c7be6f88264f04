/*
 * lsc — the LightStream C client library (docs/protocol.md, docs/query.md).
 *
 * One lsc_client is one logical connection to a gateway's WebSocket
 * endpoint: it connects (ws:// or wss://), authenticates with an app key
 * and a token (answering web-token challenges with the account's secret
 * key or a user callback), subscribes with optional queries, publishes
 * with optional acknowledgements, and — when reconnection is enabled —
 * re-connects with exponential backoff and jitter after a lost connection,
 * re-authenticating and re-subscribing every live subscription.
 *
 * Loops (docs/c-client.md): a client from lsc_client_new() runs on an
 * event loop of its own, driven by lsc_client_run() or
 * lsc_client_run_until(); one from lsc_client_new_ev() (lsc_ev.h) joins
 * the application's libev loop and is driven by ev_run(). Either way
 * every callback runs on the loop's thread, inside those calls.
 *
 * Threads: lsc_client_publish(), lsc_client_stop() and
 * lsc_client_queued_bytes() may be called from any thread, concurrently
 * with the loop (a publish wakes the loop to send). Every other function
 * belongs to the loop's thread (or to a thread that owns the client while
 * no loop runs it). lsc_client_destroy() must not race with any call: join
 * the publishing threads first. Different clients are independent.
 *
 * Callbacks may call lsc_client_publish/subscribe/unsubscribe/refresh/
 * close/stop, but never lsc_client_destroy().
 *
 * Errors: functions return 0 (or a positive handle) on success and a
 * negative errno or LSC_E* code (below) on failure; lsc_strerror()
 * names them. Where a text helps, an optional lsc_error * receives it.
 * A call that fails never invokes the callback it was given.
 *
 * Logging: the library's lines (component "client", libwebsockets' own
 * at debug level) go where lsc_log_set() says: by default, info and above
 * to stderr.
 */
#ifndef LSC_H
#define LSC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct lsc_client lsc_client;

/*
 * The library's own error codes, far outside errno's range (the values are
 * the gateway's, so a code means the same on both sides).
 */
#define LSC_EBADREQUEST   (-10001) /* malformed answer, bad parameters */
#define LSC_EAUTH         (-10002) /* authentication failed */
#define LSC_EEXPIRED      (-10003) /* token expired */
#define LSC_EFORBIDDEN    (-10004) /* permission missing */
#define LSC_EINVALIDQUERY (-10005) /* the server refused the query */
#define LSC_ETOOLARGE     (-10006) /* size limit exceeded */
#define LSC_EUNAVAILABLE  (-10008) /* server unreachable or failing */
#define LSC_ETIMEOUT      (-10009) /* deadline passed */
#define LSC_ENOTFOUND     (-10010) /* no such object */
#define LSC_ESERVER       (-10014) /* the server's internal error */
#define LSC_ERATELIMITED  (-10015) /* over a rate limit */
#define LSC_EREVOKED      (-10016) /* token revoked */

#define LSC_ERROR_TEXT_MAX 256

/* A failure in words: code (as returned) and a message for humans. */
typedef struct lsc_error {
	int code;
	char text[LSC_ERROR_TEXT_MAX];
} lsc_error;

/* Defaults for the lsc_options fields left at 0. */
#define LSC_DEFAULT_PATH            "/lightstream/websocket"
#define LSC_DEFAULT_MAX_FRAME       (1024 * 1024) /* incoming message */
#define LSC_DEFAULT_MAX_QUEUE       (1024 * 1024) /* outgoing bytes */
#define LSC_DEFAULT_BACKOFF_INITIAL 250           /* ms */
#define LSC_DEFAULT_BACKOFF_MAX     30000         /* ms */
#define LSC_DEFAULT_CONNECT_TIMEOUT 10000         /* ms, connect + auth */
#define LSC_SIGNATURE_LEN           64            /* hex HMAC-SHA256 */
#define LSC_REQUEST_ID_MAX          32            /* with the NUL */
#define LSC_EPOCH_MAX               32 /* a history epoch, without NUL */

/* One delivered message. Every pointer is borrowed for the callback. */
typedef struct lsc_message {
	int64_t sub;                 /* handle from lsc_client_subscribe() */
	const char *subscription_id; /* the server's id ("sub") */
	const char *owner;
	const char *stream;
	const char *data; /* the message: compact JSON text, NUL-terminated */
	size_t data_len;  /* strlen(data) */
	uint64_t offset;  /* in the stream's history; 0: none */
} lsc_message;

/*
 * Answer a web-token challenge: write the lowercase hex HMAC-SHA256 of
 * "appKey:token:connectionId" (keyed with the account's secret key) into
 * signature (LSC_SIGNATURE_LEN + 1 bytes, NUL-terminated). Strings are
 * borrowed. Return 0, or a negative code to fail the authentication.
 * Use it to keep the secret key outside the process (e.g. ask a backend).
 */
typedef int (*lsc_sign_fn)(const char *app_key, const char *token,
                           const char *connection_id,
                           char signature[LSC_SIGNATURE_LEN + 1], void *user);

/*
 * Outcome of a publish (PublishResponse) or refresh (RefreshResponse).
 * ok false: error_code is a docs/protocol.md error code ("forbidden",
 * "unavailable" when the connection was lost before the answer, ...) and
 * message a text; both borrowed, NULL when ok.
 */
typedef void (*lsc_ack_fn)(lsc_client *c, const char *request_id, bool ok,
                           const char *error_code, const char *message,
                           void *user);

/*
 * A new token for the client's account, when the server closed the
 * connection because the token was revoked (4011) or expired (4010): return
 * it (borrowed until the next call; the library copies it) or NULL to give
 * up. Runs inside lsc_client_run*() and may block, e.g. in
 * lsc_token_request_run() or by asking the application's backend.
 */
typedef const char *(*lsc_token_fn)(lsc_client *c, void *user);

typedef struct lsc_callbacks {
	/*
	 * Authenticated. connection_id and expires_at (RFC 3339) are
	 * borrowed. reconnected is true for every authentication after the
	 * first one.
	 */
	void (*on_connect)(lsc_client *c, const char *connection_id,
	                   const char *expires_at, bool reconnected,
	                   void *user);
	/*
	 * A subscription became active (subscription_id non-NULL) or was
	 * refused (subscription_id NULL, error_code "invalid_query",
	 * "forbidden", ...). Called again after every re-subscription, which
	 * asks for the messages missed meanwhile: from here,
	 * lsc_client_sub_history() says whether they were recovered. A
	 * refused subscription is forgotten: its handle is no longer valid.
	 */
	void (*on_subscribe)(lsc_client *c, int64_t sub,
	                     const char *subscription_id,
	                     const char *error_code, const char *message,
	                     void *user);
	/* A message for one of our subscriptions. */
	void (*on_message)(lsc_client *c, const lsc_message *m, void *user);
	/*
	 * An Error envelope from the server (usually followed by a close),
	 * or a local failure of the connection (code "auth_failed" when a
	 * web-token challenge cannot be answered, "too_large" for an
	 * incoming message above max_frame_bytes, "bad_request" for
	 * garbage from the server).
	 */
	void (*on_error)(lsc_client *c, const char *code, const char *message,
	                 void *user);
	/*
	 * The connection is gone. close_code is the WebSocket close code
	 * (1006 when none was received, e.g. connection refused), reason
	 * borrowed (may be ""). reconnecting tells whether a new attempt
	 * is scheduled; when false the client stays closed.
	 */
	void (*on_close)(lsc_client *c, int close_code, const char *reason,
	                 bool reconnecting, void *user);
	/*
	 * The server ended one subscription and the connection stays
	 * (SubscriptionEnded): error_code "forbidden" when the read
	 * permission was withdrawn, "query_too_costly" when its query
	 * exceeded its cost budget; message borrowed. The subscription is
	 * forgotten: its handle is no longer valid.
	 */
	void (*on_subscription_ended)(lsc_client *c, int64_t sub,
	                              const char *error_code,
	                              const char *message, void *user);
	/*
	 * The connection's permissions changed while it was open (a role or
	 * account change, or a refresh with a token of other roles):
	 * permissions is the JSON text of the new array of
	 * {"owner","stream","permission"} (borrowed). Local checks of
	 * publish and subscribe follow it from now on.
	 */
	void (*on_permissions)(lsc_client *c, const char *permissions,
	                       void *user);
} lsc_callbacks;

typedef struct lsc_options {
	/* ws://HOST[:PORT][/PATH] or wss://…; path defaults to
	 * LSC_DEFAULT_PATH. */
	const char *url;
	const char *app_key;
	const char *token;
	/* Web tokens: the account's secret key, or sign (preferred when
	 * set). Neither: a web-token challenge fails authentication. */
	const char *secret_key;
	lsc_sign_fn sign;
	void *sign_user;
	/* TLS: CA bundle (PEM) to verify the server with (NULL: system
	 * default); insecure accepts any certificate (development only). */
	const char *ca_file;
	bool insecure;
	/* Reconnect after an authenticated connection is lost, except after
	 * auth failure (4001), forbidden (4003), protocol error (4004),
	 * token expiry (4010) and revocation (4011), which a retry with the
	 * same token cannot fix — unless get_token gives a new token for the
	 * last two. */
	bool reconnect;
	/* Optional: a new token after close 4010/4011 (see lsc_token_fn);
	 * called with token_user. NULL: the client stops and reports. */
	lsc_token_fn get_token;
	void *token_user;
	/* Also retry when the very first connection fails. */
	bool retry_initial;
	unsigned backoff_initial_ms; /* 0: LSC_DEFAULT_BACKOFF_INITIAL */
	unsigned backoff_max_ms;     /* 0: LSC_DEFAULT_BACKOFF_MAX */
	unsigned max_attempts;       /* consecutive failures; 0: no limit */
	unsigned connect_timeout_ms; /* 0: LSC_DEFAULT_CONNECT_TIMEOUT */
	size_t max_frame_bytes;      /* 0: LSC_DEFAULT_MAX_FRAME */
	size_t max_queue_bytes;      /* 0: LSC_DEFAULT_MAX_QUEUE */
	lsc_callbacks cb;
	void *user; /* passed to every callback */
} lsc_options;

/*
 * New client. Strings of opt are copied; opt may go away afterwards.
 * Nothing connects until lsc_client_connect(). Returns NULL on failure
 * with err (may be NULL) saying why (bad URL, missing app key, ...).
 */
lsc_client *lsc_client_new(const lsc_options *opt, lsc_error *err);

/* Close the connection at once (no callbacks), free everything, *c = NULL.
 * Accepts NULL and *c == NULL. Never call it from a callback. */
void lsc_client_destroy(lsc_client **c);

/* Start connecting. Progress happens in lsc_client_run(). Returns 0,
 * -EALREADY when connecting or connected, or a negative code. */
int lsc_client_connect(lsc_client *c);

/*
 * Drive the client for up to timeout_ms (< 0: until stopped).
 * Returns 0 when the time is up, 1 when lsc_client_stop() was called,
 * -EINVAL for a client on the application's loop (lsc_client_new_ev), or
 * another negative code when the event loop failed.
 */
int lsc_client_run(lsc_client *c, int timeout_ms);

/*
 * Drive the client until done(c, user) returns true (checked after every
 * event and before waiting), lsc_client_stop(), or timeout_ms (< 0: no
 * limit). Returns 0 when done, 1 when stopped, LSC_ETIMEOUT on timeout.
 */
int lsc_client_run_until(lsc_client *c,
                         bool (*done)(lsc_client *c, void *user), void *user,
                         int timeout_ms);

/* Make the running lsc_client_run*() return 1 (safe from callbacks and
 * from any thread). */
void lsc_client_stop(lsc_client *c);

/* Close gracefully (1000) and cancel any scheduled reconnection. When a
 * connection exists, on_close follows (reconnecting false). */
void lsc_client_close(lsc_client *c);

/* True while authenticated. */
bool lsc_client_is_ready(const lsc_client *c);

/*
 * Subscribe to owner/stream with an optional query (JSON text of
 * docs/query.md, NULL for none; borrowed). Sent now when authenticated,
 * otherwise on authentication, and again after every reconnection. Returns a
 * handle
 * (> 0) used by on_subscribe/on_message/lsc_client_unsubscribe, or a
 * negative code: -EINVAL (bad names, query not a JSON object; err says
 * which), LSC_EFORBIDDEN (the granted permissions do not allow reading).
 * The server validates the query itself (on_subscribe "invalid_query").
 */
int64_t lsc_client_subscribe(lsc_client *c, const char *owner,
                             const char *stream, const char *query,
                             lsc_error *err);

/*
 * As lsc_client_subscribe, starting after a position saved earlier
 * (lsc_client_sub_history: epoch, borrowed, and offset): the server sends
 * the messages published after it first, when its history still holds
 * them (docs/c-client.md, "Recovery"). -EINVAL for a malformed epoch.
 */
int64_t lsc_client_subscribe_since(lsc_client *c, const char *owner,
                                   const char *stream, const char *query,
                                   const char *epoch, uint64_t offset,
                                   lsc_error *err);

/* A subscription's place in its stream's history. */
typedef struct lsc_sub_history {
	bool known;                    /* false: the stream keeps none */
	char epoch[LSC_EPOCH_MAX + 1]; /* the history's epoch */
	uint64_t offset; /* last message seen, or where it started */
	/* of the latest (re)subscription: 1 every missed message follows,
	 * 0 some may be lost, -1 no since was sent (the first time) */
	int recovered;
} lsc_sub_history;

/*
 * The history position of subscription sub into *out (e.g. inside
 * on_subscribe, to learn whether a resubscription recovered; or to save
 * and resume later with lsc_client_subscribe_since). Returns 0 or -ENOENT.
 */
int lsc_client_sub_history(const lsc_client *c, int64_t sub,
                           lsc_sub_history *out);

/* Drop a subscription (UnsubscribeRequest when active). Returns 0 or
 * -ENOENT. */
int lsc_client_unsubscribe(lsc_client *c, int64_t sub);

/*
 * Publish data, the JSON text (any JSON value) of len bytes (borrowed:
 * copied at once), to owner/stream. With ack,
 * the message carries a requestId and ack runs once the server accepted
 * it (or failed it; a connection lost before the answer fails it with
 * "unavailable"); request_id (may be NULL, LSC_REQUEST_ID_MAX bytes)
 * receives the id. Messages are queued until authenticated and sent in
 * order (the order of the calls; across threads, the order in which they
 * took the queue). Thread-safe: callable from any thread; ack still runs
 * on the loop's thread. Returns 0, -ENOBUFS when the outgoing queue is
 * full (let the loop run and retry), -EINVAL (bad names, data not JSON),
 * LSC_ETOOLARGE, or LSC_EFORBIDDEN when the granted permissions do not
 * allow writing.
 */
int lsc_client_publish(lsc_client *c, const char *owner, const char *stream,
                       const char *data, size_t len, lsc_ack_fn ack,
                       void *ack_user, char *request_id);

/*
 * Extend the session with a new token of the same account
 * (RefreshRequest); the new token is also used for later reconnections.
 * ack (may be NULL) receives the outcome (request_id NULL). Returns 0,
 * -ENOTCONN when not authenticated, or a negative code.
 */
int lsc_client_refresh(lsc_client *c, const char *token, lsc_ack_fn ack,
                       void *ack_user);

/* Outgoing bytes queued (any thread), and publishes waiting for their ack
 * (loop's thread). */
size_t lsc_client_queued_bytes(const lsc_client *c);
size_t lsc_client_pending_acks(const lsc_client *c);

/* Levels of the library's log lines. */
#define LSC_LOG_DEBUG 0
#define LSC_LOG_INFO  1
#define LSC_LOG_WARN  2
#define LSC_LOG_ERROR 3
#define LSC_LOG_OFF   4

/* One log line: component and message borrowed for the call. */
typedef void (*lsc_log_fn)(int level, const char *component,
                           const char *message, void *user);

/*
 * Where the library's log lines go: lines at level (LSC_LOG_*) or above
 * to fn with user, or to stderr (one text line each) when fn is NULL.
 * fn may run on any thread that runs a client or publishes. Call it
 * before creating clients. In the installed library this setting is the
 * library's own; linked statically into a program of this tree, it is
 * that program's log.
 */
void lsc_log_set(int level, lsc_log_fn fn, void *user);

/* Name of an error code (negative errno or LSC_E*). */
const char *lsc_strerror(int code);

/* ---- Tokens over HTTP (docs/protocol.md (HTTP),
 * /lightstream/services/auth/...) ---- */

typedef struct lsc_token_request {
	const char *url; /* http[s]://HOST[:PORT] (a path is ignored) */
	const char *app_key;
	const char *private_key;
	const char *roles;      /* "r1,r2" or "r1|r2" */
	long ttl_s;             /* 0: server default */
	const char *ip_address; /* NULL: not bound */
	bool web_token;
	const char *ca_file;
	bool insecure;
	int timeout_ms; /* 0: 10000 */
} lsc_token_request;

/*
 * Request a token (blocking). On success *data (new; free() it) is the
 * JSON text of the response's data object {"value", "expiresAt", "roles",
 * "webToken", "ipAddress"}; on failure it is NULL. Errors: LSC_EAUTH (401),
 * LSC_EFORBIDDEN (403), -EINVAL (400: bad parameters), LSC_EUNAVAILABLE
 * (unreachable or 5xx), LSC_ETIMEOUT; err carries the server's message when
 * there is one.
 */
int lsc_token_request_run(const lsc_token_request *req, char **data,
                          lsc_error *err);

/* ---- History over HTTP (docs/protocol.md, "History and recovery") ---- */

typedef struct lsc_history_request {
	const char *url; /* http[s]://HOST[:PORT] (a path is ignored) */
	const char *owner;
	const char *stream;
	const char *token;   /* granting read; not a web token */
	const char *app_key; /* the token's account; NULL: owner */
	uint64_t since;      /* messages after this offset */
	unsigned limit;      /* 1..1000; 0: server default (100) */
	const char *ca_file;
	bool insecure;
	int timeout_ms; /* 0: 10000 */
} lsc_history_request;

/*
 * Read a stream's history (blocking). On success *data (new; free() it) is
 * the JSON text of {"epoch", "offset", "messages": [{"offset", "data"}]}.
 * Errors as lsc_token_request_run (LSC_EFORBIDDEN: no read permission).
 */
int lsc_history_request_run(const lsc_history_request *req, char **data,
                            lsc_error *err);

#ifdef __cplusplus
}
#endif

#endif
