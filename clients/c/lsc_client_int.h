/*
 * The client object shared by the library's files: lsc_client.c (the
 * public API), lsc_conn.c (connection lifecycle, lws callback, incoming
 * envelopes) and lsc_queue.c (outgoing frames, subscription table).
 * Not part of the API.
 */
#ifndef LSC_CLIENT_INT_H
#define LSC_CLIENT_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <pthread.h>

#include <jansson.h>
#include <libwebsockets.h>
#include <openssl/ssl.h>

#include "lsc.h"
#include "ls_proto.h"
#include "lsc_proto.h"

#define LSC__LOG "client"

typedef struct lsc__frame {
	struct lsc__frame *next;
	/* publish frames only */
	char owner[65];
	char stream[129];
	char request_id[LSC_REQUEST_ID_MAX];
	lsc_ack_fn ack;
	void *ack_user;
	size_t len;
	unsigned char buf[]; /* LWS_PRE + len */
} lsc__frame;

typedef struct lsc__queue {
	lsc__frame *head, *tail;
} lsc__queue;

typedef struct lsc__ack {
	struct lsc__ack *next;
	char request_id[LSC_REQUEST_ID_MAX];
	lsc_ack_fn fn;
	void *user;
} lsc__ack;

enum lsc__sub_state { LSC__SUB_IDLE, LSC__SUB_PENDING, LSC__SUB_ACTIVE };

typedef struct lsc__sub {
	struct lsc__sub *next;
	int64_t id;
	char owner[65];
	char stream[129];
	json_t *query; /* NULL: none */
	enum lsc__sub_state state;
	char request_id[LSC_REQUEST_ID_MAX]; /* while PENDING */
	char *server_id;                     /* while ACTIVE */
	/* position in the stream's history: sent as since when subscribing
	 * again (docs/c-client.md, "Recovery") */
	bool have_pos;
	char epoch[LS_EPOCH_MAX + 1];
	uint64_t offset;
	int recovered; /* of the last SubscribeResponse: 1, 0, -1 none */
} lsc__sub;

enum lsc__state {
	LSC__CLOSED,         /* no connection (maybe a retry scheduled) */
	LSC__CONNECTING,     /* TCP / TLS / WebSocket handshake */
	LSC__AUTHENTICATING, /* AuthRequest sent */
	LSC__READY,          /* authenticated */
};

struct lsc_client {
	/* options, strings owned */
	char *app_key, *token, *secret_key, *ca_file;
	lsc_sign_fn sign;
	void *sign_user;
	lsc_token_fn get_token;
	void *token_user;
	bool insecure, reconnect, retry_initial;
	unsigned backoff_initial_ms, backoff_max_ms, max_attempts;
	unsigned connect_timeout_ms;
	size_t max_frame, max_queue;
	lsc_callbacks cb;
	void *user;
	lsc__url url;
	SSL_CTX *ssl_ctx; /* wss:// only */
	char host_header[LSC__HOST_MAX + 8];

	struct lws_context *ctx;
	void *foreign_loops[2]; /* the application's libev loop, or none */
	bool on_ev;             /* driven by that loop, not lsc_client_run */
	struct lws *wsi;
	enum lsc__state state;
	bool conn_live;     /* a connection attempt is in progress or up */
	bool ever_ready;    /* authenticated at least once */
	bool user_closed;   /* lsc_client_close(): no reconnection */
	bool retry_pending; /* retry_sul armed */
	bool destroying;
	bool stop;
	bool run_expired;
	bool connect_timed_out; /* timeout_sul fired for this attempt */
	unsigned attempt;       /* consecutive failed attempts */
	int close_code;         /* from the peer's close frame */
	char close_reason[128];
	int error_close; /* close code of the last Error's code */
	int local_close; /* close code we want to send (0: none) */
	char local_reason[64];
	/*
	 * mu guards what lsc_client_publish() touches from any thread: the
	 * publish queue, queued (bytes of both queues), perms and
	 * wake_pending. Only the loop's thread writes perms (under mu) and
	 * reads it there without mu.
	 */
	pthread_mutex_t mu;
	json_t *perms;     /* from the AuthResponse; NULL: unknown */
	bool wake_pending; /* lws_cancel_service() called, not yet seen */

	lsc__queue ctl, pub;
	size_t queued;
	lsc__ack *acks;
	size_t n_acks;
	lsc__sub *subs;
	int64_t next_sub;
	uint64_t next_req;

	char *refresh_token; /* sent, waiting for RefreshResponse */
	lsc_ack_fn refresh_ack;
	void *refresh_user;

	char *rx;
	size_t rx_len, rx_cap;
	bool rx_skip; /* discarding an oversized message */

	lws_sorted_usec_list_t retry_sul, run_sul, timeout_sul;
};

/* The one lws protocol of a client context (lsc_conn.c). */
extern const struct lws_protocols lsc__protocols[];

/* ---- lsc_queue.c ---- */

/* Next request id ("s12", "p7") into out. */
void lsc__next_id(lsc_client *c, char prefix, char out[LSC_REQUEST_ID_MAX]);

/* A frame holding text (taken, freed in every case); NULL on failure. */
lsc__frame *lsc__frame_new(char *text);
void lsc__queue_push(lsc_client *c, lsc__queue *q, lsc__frame *f);
lsc__frame *lsc__queue_pop(lsc_client *c, lsc__queue *q);
void lsc__queue_clear(lsc_client *c, lsc__queue *q);

/* Ask for a WRITEABLE callback when a connection can take frames. */
void lsc__want_write(lsc_client *c);

/*
 * Queue a publish frame from any thread (f taken on success): refused with
 * LS_EFORBIDDEN when the known permissions exclude f's stream, -ENOBUFS
 * when the queue is full. The loop is woken (lws_cancel_service) to send.
 */
int lsc__publish_push(lsc_client *c, lsc__frame *f);

/* Whether publish frames wait (any thread). */
bool lsc__pub_pending(lsc_client *c);

/* Replace the connection's permissions (taken; NULL: unknown), on the
 * loop's thread. */
void lsc__set_perms(lsc_client *c, json_t *perms);

/* Queue a control frame of the current connection (text taken). */
int lsc__send_ctl(lsc_client *c, char *text);

lsc__sub *lsc__sub_find(lsc_client *c, int64_t id);
void lsc__sub_free(lsc__sub *s);
void lsc__sub_unlink(lsc_client *c, lsc__sub *s);

/* Send s's SubscribeRequest with a new request id; s becomes PENDING. */
int lsc__sub_send(lsc_client *c, lsc__sub *s);

/* Close the current connection from our side with code / reason. */
void lsc__close_local(lsc_client *c, int code, const char *reason);

/* ---- lsc_conn.c ---- */

/* Start a connection attempt (the outcome arrives through callbacks). */
int lsc__start(lsc_client *c);

/* The current connection is gone: clean up, maybe schedule a retry, tell
 * on_close. Once per connection. */
void lsc__lost(lsc_client *c, int code, const char *reason);

#endif
