/*
 * The client connection: libwebsockets client side on a context of its
 * own, the protocol state machine of SPEC §3, the outgoing queues and the
 * reconnection timer.
 *
 * Two outgoing queues: "control" frames belong to the current connection
 * (AuthRequest, WebTokenResponse, Subscribe/Unsubscribe/Refresh) and are
 * dropped when it is lost; "publish" frames belong to the client and wait
 * — in order — for an authenticated connection, surviving reconnections.
 * Subscriptions are a table, not frames: every authentication (re)sends
 * a SubscribeRequest for each of them.
 */
#include "lsc.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libwebsockets.h>
#include <openssl/ssl.h>

#include "ls_crypto.h"
#include "ls_log.h"
#include "lsc_internal.h"
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
	int local_close; /* close code we want to send (0: none) */
	char local_reason[64];
	json_t *perms; /* from the AuthResponse; NULL: unknown */

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

static int lsc__callback(struct lws *wsi, enum lws_callback_reasons reason,
                         void *user, void *in, size_t len);

static const struct lws_protocols lsc__protocols[] = {
	{ "lightstream-client", lsc__callback, 0, 0, 0, NULL, 0 },
	{ NULL, NULL, 0, 0, 0, NULL, 0 },
};

/* ---- helpers ---- */

static void lsc__lws_log(int level, const char *line);

static void
lsc__lws_log_setup(void)
{
	lws_set_log_level(LLL_ERR | LLL_WARN, lsc__lws_log);
}

static void
lsc__lws_log(int level, const char *line)
{
	/* lws is chatty about refused connections and retries, which the
	 * client reports through callbacks; keep its lines at debug. */
	size_t n = strlen(line);

	while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r')) {
		n--;
	}
	ls_debug(LSC__LOG, "lws: %.*s", (int)n, line);
}

void
lsc__lws_log_init(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;

	pthread_once(&once, lsc__lws_log_setup);
}

SSL_CTX *
lsc__ssl_ctx_new(const char *ca_file, ls_error *err)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

	if (ctx == NULL) {
		ls_error_set(err, -ENOMEM, "cannot create a TLS context");
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION);
	SSL_CTX_set_mode(ctx, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
	                              SSL_MODE_RELEASE_BUFFERS);
	if (ca_file != NULL) {
		if (SSL_CTX_load_verify_locations(ctx, ca_file, NULL) != 1) {
			ls_error_set(err, -EINVAL,
			             "cannot load CA certificates from %s",
			             ca_file);
			SSL_CTX_free(ctx);
			return NULL;
		}
	} else {
		SSL_CTX_set_default_verify_paths(ctx);
	}
	return ctx;
}

void
lsc__connect_error(bool tls, const char *lws_text, char *out, size_t n)
{
	if (lws_text == NULL) {
		lws_text = "connection failed";
	}
	/* lws reports certificate failures as an opaque "SSL err"; say what
	 * it most likely is. */
	if (tls && strstr(lws_text, "SSL") != NULL) {
		snprintf(out, n,
		         "TLS handshake failed, is the server certificate "
		         "trusted (CA file)? (%s)",
		         lws_text);
	} else {
		snprintf(out, n, "%s", lws_text);
	}
}

static char *
lsc__strdup(const char *s)
{
	return s == NULL ? NULL : strdup(s);
}

static void
lsc__next_id(lsc_client *c, char prefix, char out[LSC_REQUEST_ID_MAX])
{
	snprintf(out, LSC_REQUEST_ID_MAX, "%c%llu", prefix,
	         (unsigned long long)++c->next_req);
}

static lsc__frame *
lsc__frame_new(char *text)
{
	size_t n;
	lsc__frame *f;

	if (text == NULL) {
		return NULL;
	}
	n = strlen(text);
	f = calloc(1, sizeof(*f) + LWS_PRE + n);
	if (f != NULL) {
		f->len = n;
		memcpy(f->buf + LWS_PRE, text, n);
	}
	free(text);
	return f;
}

static void
lsc__queue_push(lsc_client *c, lsc__queue *q, lsc__frame *f)
{
	f->next = NULL;
	if (q->tail != NULL) {
		q->tail->next = f;
	} else {
		q->head = f;
	}
	q->tail = f;
	c->queued += f->len;
}

static lsc__frame *
lsc__queue_pop(lsc_client *c, lsc__queue *q)
{
	lsc__frame *f = q->head;

	if (f != NULL) {
		q->head = f->next;
		if (q->head == NULL) {
			q->tail = NULL;
		}
		c->queued -= f->len;
	}
	return f;
}

static void
lsc__queue_clear(lsc_client *c, lsc__queue *q)
{
	lsc__frame *f;

	while ((f = lsc__queue_pop(c, q)) != NULL) {
		free(f);
	}
}

static void
lsc__want_write(lsc_client *c)
{
	if (c->wsi != NULL && c->state != LSC__CONNECTING) {
		lws_callback_on_writable(c->wsi);
	}
}

/* Queue a control frame (text is taken). */
static int
lsc__send_ctl(lsc_client *c, char *text)
{
	lsc__frame *f = lsc__frame_new(text);

	if (f == NULL) {
		return -ENOMEM;
	}
	lsc__queue_push(c, &c->ctl, f);
	lsc__want_write(c);
	return 0;
}

static lsc__sub *
lsc__sub_find(lsc_client *c, int64_t id)
{
	for (lsc__sub *s = c->subs; s != NULL; s = s->next) {
		if (s->id == id) {
			return s;
		}
	}
	return NULL;
}

static void
lsc__sub_free(lsc__sub *s)
{
	json_decref(s->query);
	free(s->server_id);
	free(s);
}

static void
lsc__sub_unlink(lsc_client *c, lsc__sub *s)
{
	for (lsc__sub **pp = &c->subs; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == s) {
			*pp = s->next;
			return;
		}
	}
}

static int
lsc__sub_send(lsc_client *c, lsc__sub *s)
{
	lsc__next_id(c, 's', s->request_id);
	s->state = LSC__SUB_PENDING;
	return lsc__send_ctl(c,
	                     lsc__subscribe_request(s->owner, s->stream,
	                                            s->request_id, s->query));
}

/* Close the current connection from our side with code. */
static void
lsc__close_local(lsc_client *c, int code, const char *reason)
{
	if (c->wsi == NULL || c->local_close != 0) {
		return;
	}
	c->local_close = code;
	snprintf(c->local_reason, sizeof(c->local_reason), "%s", reason);
	/* While connecting, ESTABLISHED sees local_close and closes then;
	 * lws's own handshake timeout bounds the wait. */
	if (c->state != LSC__CONNECTING) {
		lws_callback_on_writable(c->wsi);
	}
}

/* ---- connection lifecycle ---- */

static void lsc__retry_cb(lws_sorted_usec_list_t *sul);

static bool
lsc__fatal_close(int code)
{
	/* A retry with the same credentials cannot fix these. */
	return code == 4001 || code == 4003 || code == 4004 || code == 4010;
}

static void
lsc__fail_acks(lsc_client *c)
{
	lsc__ack *a;

	while ((a = c->acks) != NULL) {
		c->acks = a->next;
		c->n_acks--;
		if (!c->destroying && a->fn != NULL) {
			a->fn(c, a->request_id, false, "unavailable",
			      "connection lost before the server answered",
			      a->user);
		}
		free(a);
	}
	if (c->refresh_token != NULL) {
		lsc_ack_fn fn = c->refresh_ack;
		void *u = c->refresh_user;

		free(c->refresh_token);
		c->refresh_token = NULL;
		c->refresh_ack = NULL;
		if (!c->destroying && fn != NULL) {
			fn(c, NULL, false, "unavailable",
			   "connection lost before the server answered", u);
		}
	}
}

/* The current connection is gone (or never came up). */
static void
lsc__lost(lsc_client *c, int code, const char *reason)
{
	bool reconnecting;
	char why[160];

	if (!c->conn_live) {
		return;
	}
	c->conn_live = false;
	c->wsi = NULL;
	c->state = LSC__CLOSED;
	c->local_close = 0;
	c->rx_len = 0;
	c->rx_skip = false;
	lws_sul_cancel(&c->timeout_sul);
	lsc__queue_clear(c, &c->ctl);
	json_decref(c->perms);
	c->perms = NULL;
	for (lsc__sub *s = c->subs; s != NULL; s = s->next) {
		s->state = LSC__SUB_IDLE;
		free(s->server_id);
		s->server_id = NULL;
	}
	snprintf(why, sizeof(why), "%s", reason != NULL ? reason : "");
	if (c->destroying) {
		return;
	}
	lsc__fail_acks(c);

	c->attempt++;
	reconnecting = c->reconnect && !c->user_closed &&
	               !lsc__fatal_close(code) &&
	               (c->ever_ready || c->retry_initial) &&
	               (c->max_attempts == 0 || c->attempt <= c->max_attempts);
	if (reconnecting) {
		uint32_t rnd = 0;
		unsigned ms;

		ls_random_bytes(&rnd, sizeof(rnd));
		ms = lsc__backoff_ms(c->attempt - 1, c->backoff_initial_ms,
		                     c->backoff_max_ms, rnd);
		ls_debug(LSC__LOG,
		         "connection to %s:%d lost (%d %s), retry %u in %u ms",
		         c->url.host, c->url.port, code, why, c->attempt, ms);
		c->retry_pending = true;
		lws_sul_schedule(c->ctx, 0, &c->retry_sul, lsc__retry_cb,
		                 (lws_usec_t)ms * 1000);
	}
	if (c->cb.on_close != NULL) {
		c->cb.on_close(c, code, why, reconnecting, c->user);
	}
}

static void
lsc__timeout_cb(lws_sorted_usec_list_t *sul)
{
	lsc_client *c = lws_container_of(sul, lsc_client, timeout_sul);

	/* The handshake phase is bounded by lws itself (timeout_secs of
	 * the context); lws_set_timeout() on a client wsi that is still
	 * connecting crashes lws 4.1.6. Here: connected, but no answer to
	 * the AuthRequest. */
	if (c->conn_live && c->state == LSC__AUTHENTICATING) {
		ls_info(LSC__LOG,
		        "no authentication answer from %s:%d within %u ms",
		        c->url.host, c->url.port, c->connect_timeout_ms);
		c->connect_timed_out = true;
		lsc__close_local(c, 4002, "authentication timed out");
	}
}

static int
lsc__start(lsc_client *c)
{
	struct lws_client_connect_info ci;
	int flags = 0;

	memset(&ci, 0, sizeof(ci));
	if (c->url.tls) {
		flags = LCCSCF_USE_SSL;
		if (c->insecure) {
			flags |= LCCSCF_ALLOW_SELFSIGNED |
			         LCCSCF_SKIP_SERVER_CERT_HOSTNAME_CHECK |
			         LCCSCF_ALLOW_EXPIRED | LCCSCF_ALLOW_INSECURE;
		}
	}
	ci.context = c->ctx;
	ci.address = c->url.host;
	ci.port = c->url.port;
	ci.ssl_connection = flags;
	ci.path = c->url.path;
	ci.host = c->host_header;
	ci.origin = NULL;
	ci.protocol = NULL; /* no subprotocol on the wire */
	ci.local_protocol_name = lsc__protocols[0].name;
	ci.pwsi = &c->wsi;

	c->state = LSC__CONNECTING;
	c->conn_live = true;
	c->connect_timed_out = false;
	c->close_code = 0;
	c->close_reason[0] = '\0';
	c->local_close = 0;
	lws_sul_schedule(c->ctx, 0, &c->timeout_sul, lsc__timeout_cb,
	                 (lws_usec_t)c->connect_timeout_ms * 1000);
	ls_debug(LSC__LOG, "connecting to %s:%d%s", c->url.host, c->url.port,
	         c->url.path);
	if (lws_client_connect_via_info(&ci) == NULL) {
		/* lws may already have reported CONNECTION_ERROR. */
		lsc__lost(c, 1006, "connection failed");
	}
	return 0;
}

static void
lsc__retry_cb(lws_sorted_usec_list_t *sul)
{
	lsc_client *c = lws_container_of(sul, lsc_client, retry_sul);

	c->retry_pending = false;
	if (!c->conn_live && !c->user_closed) {
		lsc__start(c);
	}
}

/* ---- incoming envelopes ---- */

static void
lsc__on_auth_ok(lsc_client *c, json_t *m)
{
	const json_t *perms = json_object_get(m, "permissions");
	bool reconnected = c->ever_ready;

	c->state = LSC__READY;
	c->ever_ready = true;
	c->attempt = 0;
	lws_sul_cancel(&c->timeout_sul);
	json_decref(c->perms);
	c->perms = json_is_array(perms) ? json_incref((json_t *)perms) : NULL;
	ls_debug(LSC__LOG, "authenticated on %s:%d", c->url.host, c->url.port);

	if (c->cb.on_connect != NULL) {
		c->cb.on_connect(c, lsc__str(m, "connectionId"),
		                 lsc__str(m, "expiresAt"), reconnected,
		                 c->user);
	}
	/* (Re)subscribe; refuse locally what the permissions exclude. */
	for (;;) {
		lsc__sub *denied = NULL;

		for (lsc__sub *s = c->subs; s != NULL; s = s->next) {
			if (s->state != LSC__SUB_IDLE) {
				continue;
			}
			if (!lsc__permitted(c->perms, s->owner, s->stream,
			                    LSC_PERM_READ)) {
				denied = s;
				break;
			}
			lsc__sub_send(c, s);
		}
		if (denied == NULL) {
			break;
		}
		lsc__sub_unlink(c, denied);
		if (c->cb.on_subscribe != NULL) {
			c->cb.on_subscribe(c, denied->id, NULL, "forbidden",
			                   "the token's roles do not grant "
			                   "reading this stream",
			                   c->user);
		}
		lsc__sub_free(denied);
	}
	if (c->pub.head != NULL) {
		lsc__want_write(c);
	}
}

static void
lsc__on_web_token(lsc_client *c, json_t *m)
{
	char sig[LSC_SIGNATURE_LEN + 1] = "";
	const char *conn = lsc__str(m, "connectionId");
	int rc;

	if (conn == NULL) {
		rc = -EINVAL;
	} else if (c->sign != NULL) {
		rc = c->sign(c->app_key, c->token, conn, sig, c->sign_user);
		sig[LSC_SIGNATURE_LEN] = '\0';
	} else if (c->secret_key != NULL) {
		rc = lsc__web_signature(c->secret_key, c->app_key, c->token,
		                        conn, sig);
	} else {
		rc = -ENOKEY;
	}
	if (rc != 0) {
		const char *msg =
		        rc == -ENOKEY ? "the token is a web token and no "
		                        "secret key or signer is configured"
		                      : "cannot sign the web-token challenge";
		c->user_closed = true; /* a retry would fail the same way */
		if (c->cb.on_error != NULL) {
			c->cb.on_error(c, "auth_failed", msg, c->user);
		}
		lsc__close_local(c, 4001, "web token not signed");
		return;
	}
	lsc__send_ctl(c, lsc__web_token_response(sig));
}

static void
lsc__on_subscribed(lsc_client *c, json_t *m)
{
	const char *rid = lsc__str(m, "requestId");
	const char *code, *msg;
	lsc__sub *s;

	if (rid == NULL) {
		return;
	}
	for (s = c->subs; s != NULL; s = s->next) {
		if (s->state == LSC__SUB_PENDING &&
		    strcmp(s->request_id, rid) == 0) {
			break;
		}
	}
	if (s == NULL) {
		return; /* unsubscribed meanwhile */
	}
	if (json_is_true(json_object_get(m, "ok")) &&
	    lsc__str(m, "subscriptionId") != NULL) {
		s->server_id = strdup(lsc__str(m, "subscriptionId"));
		s->state = LSC__SUB_ACTIVE;
		if (c->cb.on_subscribe != NULL) {
			c->cb.on_subscribe(c, s->id, s->server_id, NULL, NULL,
			                   c->user);
		}
		return;
	}
	lsc__error_of(m, &code, &msg);
	lsc__sub_unlink(c, s);
	if (c->cb.on_subscribe != NULL) {
		c->cb.on_subscribe(c, s->id, NULL, code, msg, c->user);
	}
	lsc__sub_free(s);
}

static void
lsc__on_data(lsc_client *c, json_t *m)
{
	const char *sid = lsc__str(m, "sub");
	lsc_message msg;
	lsc__sub *s;

	if (sid == NULL || c->cb.on_message == NULL) {
		return;
	}
	for (s = c->subs; s != NULL; s = s->next) {
		if (s->state == LSC__SUB_ACTIVE &&
		    strcmp(s->server_id, sid) == 0) {
			break;
		}
	}
	if (s == NULL) {
		return;
	}
	msg.sub = s->id;
	msg.subscription_id = sid;
	msg.owner = lsc__str(m, "owner");
	msg.stream = lsc__str(m, "stream");
	msg.data = json_object_get(m, "data");
	if (msg.data == NULL) {
		msg.data = json_null();
	}
	if (msg.owner == NULL) {
		msg.owner = s->owner;
	}
	if (msg.stream == NULL) {
		msg.stream = s->stream;
	}
	c->cb.on_message(c, &msg, c->user);
}

static void
lsc__on_publish_ack(lsc_client *c, json_t *m)
{
	const char *rid = lsc__str(m, "requestId");
	const char *code = NULL, *msg = NULL;
	bool ok = json_is_true(json_object_get(m, "ok"));

	if (rid == NULL) {
		return;
	}
	for (lsc__ack **pp = &c->acks; *pp != NULL; pp = &(*pp)->next) {
		lsc__ack *a = *pp;

		if (strcmp(a->request_id, rid) != 0) {
			continue;
		}
		*pp = a->next;
		c->n_acks--;
		if (!ok) {
			lsc__error_of(m, &code, &msg);
		}
		if (a->fn != NULL) {
			a->fn(c, a->request_id, ok, code, msg, a->user);
		}
		free(a);
		return;
	}
}

static void
lsc__on_refreshed(lsc_client *c, json_t *m)
{
	bool ok = json_is_true(json_object_get(m, "ok"));
	const char *code = NULL, *msg = NULL;
	lsc_ack_fn fn = c->refresh_ack;
	void *u = c->refresh_user;

	if (c->refresh_token == NULL) {
		return;
	}
	if (ok) {
		free(c->token);
		c->token = c->refresh_token;
	} else {
		free(c->refresh_token);
		lsc__error_of(m, &code, &msg);
	}
	c->refresh_token = NULL;
	c->refresh_ack = NULL;
	if (fn != NULL) {
		fn(c, NULL, ok, code, msg, u);
	}
}

static void
lsc__handle(lsc_client *c, const char *text, size_t len)
{
	ls_error err;
	json_t *m = NULL;
	const char *code, *msg;
	int t;

	if (lsc__envelope_parse(text, len, &t, &m, &err) != 0) {
		ls_warn(LSC__LOG, "%s", err.text);
		if (c->cb.on_error != NULL) {
			c->cb.on_error(c, "bad_request", err.text, c->user);
		}
		lsc__close_local(c, 4004, "malformed frame");
		return;
	}
	switch (t) {
	case LSC_T_AUTH_RESPONSE:
		if (json_is_true(json_object_get(m, "ok"))) {
			lsc__on_auth_ok(c, m);
		} else {
			lsc__error_of(m, &code, &msg);
			if (c->cb.on_error != NULL) {
				c->cb.on_error(c, code, msg, c->user);
			}
		}
		break;
	case LSC_T_WEB_TOKEN_REQUEST:
		lsc__on_web_token(c, m);
		break;
	case LSC_T_DATA:
		lsc__on_data(c, m);
		break;
	case LSC_T_SUBSCRIBE_RESPONSE:
		lsc__on_subscribed(c, m);
		break;
	case LSC_T_ERROR:
		lsc__error_of(m, &code, &msg);
		if (c->cb.on_error != NULL) {
			c->cb.on_error(c, code, msg, c->user);
		}
		break;
	case LSC_T_REFRESH_RESPONSE:
		lsc__on_refreshed(c, m);
		break;
	case LSC_T_PUBLISH_RESPONSE:
		lsc__on_publish_ack(c, m);
		break;
	default:
		/* UnsubscribeResponse and future types: nothing to do. */
		break;
	}
	json_decref(m);
}

/* Append a received fragment; handle complete messages. */
static int
lsc__receive(lsc_client *c, struct lws *wsi, const void *in, size_t len)
{
	if (lws_is_first_fragment(wsi)) {
		c->rx_len = 0;
		c->rx_skip = false;
	}
	if (!c->rx_skip && c->rx_len + len > c->max_frame) {
		char text[96];

		snprintf(text, sizeof(text),
		         "incoming message larger than %zu bytes",
		         c->max_frame);
		c->rx_skip = true;
		if (c->cb.on_error != NULL) {
			c->cb.on_error(c, "too_large", text, c->user);
		}
		c->local_close = LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE;
		snprintf(c->local_reason, sizeof(c->local_reason),
		         "too large");
		lws_close_reason(wsi, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE,
		                 (unsigned char *)"too large", 9);
		return -1;
	}
	if (c->rx_len + len + 1 > c->rx_cap) {
		size_t cap = c->rx_cap ? c->rx_cap : 4096;
		char *p;

		while (cap < c->rx_len + len + 1) {
			cap *= 2;
		}
		p = realloc(c->rx, cap);
		if (p == NULL) {
			return -1;
		}
		c->rx = p;
		c->rx_cap = cap;
	}
	memcpy(c->rx + c->rx_len, in, len);
	c->rx_len += len;
	if (lws_is_final_fragment(wsi) &&
	    lws_remaining_packet_payload(wsi) == 0) {
		size_t n = c->rx_len;

		c->rx[n] = '\0';
		c->rx_len = 0;
		lsc__handle(c, c->rx, n);
	}
	return 0;
}

static int
lsc__writeable(lsc_client *c, struct lws *wsi)
{
	lsc__frame *f;

	if (c->local_close != 0) {
		lws_close_reason(wsi, (enum lws_close_status)c->local_close,
		                 (unsigned char *)c->local_reason,
		                 strlen(c->local_reason));
		return -1;
	}
	f = lsc__queue_pop(c, &c->ctl);
	while (f == NULL && c->state == LSC__READY && c->pub.head != NULL) {
		f = lsc__queue_pop(c, &c->pub);
		if (lsc__permitted(c->perms, f->owner, f->stream,
		                   LSC_PERM_WRITE)) {
			break;
		}
		/* Queued before authentication, refused now. */
		if (f->ack != NULL) {
			f->ack(c, f->request_id, false, "forbidden",
			       "the token's roles do not grant writing this "
			       "stream",
			       f->ack_user);
		} else {
			ls_warn(LSC__LOG,
			        "dropping a message for %s/%s: not permitted",
			        f->owner, f->stream);
		}
		free(f);
		f = NULL;
		if (c->wsi != wsi) {
			return 0; /* the callback closed the client */
		}
	}
	if (f == NULL) {
		return 0;
	}
	if (f->ack != NULL) {
		lsc__ack *a = calloc(1, sizeof(*a));

		if (a == NULL) {
			free(f);
			return -1;
		}
		memcpy(a->request_id, f->request_id, sizeof(a->request_id));
		a->fn = f->ack;
		a->user = f->ack_user;
		a->next = c->acks;
		c->acks = a;
		c->n_acks++;
	}
	if (lws_write(wsi, f->buf + LWS_PRE, f->len, LWS_WRITE_TEXT) <
	    (int)f->len) {
		free(f);
		return -1;
	}
	free(f);
	if (c->ctl.head != NULL ||
	    (c->state == LSC__READY && c->pub.head != NULL)) {
		lws_callback_on_writable(wsi);
	}
	return 0;
}

static int
lsc__callback(struct lws *wsi, enum lws_callback_reasons reason, void *user,
              void *in, size_t len)
{
	lsc_client *c = lws_context_user(lws_get_context(wsi));

	if (c == NULL) {
		return 0;
	}
	switch (reason) {
	case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
		if (c->wsi == NULL || c->wsi == wsi) {
			char why[160];

			lsc__connect_error(c->url.tls,
			                   c->connect_timed_out
			                           ? "timed out connecting"
			                           : (const char *)in,
			                   why, sizeof(why));
			lsc__lost(c, 1006, why);
		}
		break;
	case LWS_CALLBACK_CLOSED_CLIENT_HTTP:
	case LWS_CALLBACK_WSI_DESTROY:
		/* A handshake that times out or is dropped before the
		 * upgrade ends as an HTTP client close in lws 4.1.6, without
		 * CONNECTION_ERROR; WSI_DESTROY is the net under every other
		 * path. lsc__lost() reports each connection once. */
		if (wsi == c->wsi) {
			lsc__lost(c, 1006,
			          c->connect_timed_out ||
			                          c->state == LSC__CONNECTING
			                  ? "no WebSocket handshake answer"
			                  : "connection lost");
		}
		break;
	case LWS_CALLBACK_CLIENT_ESTABLISHED:
		if (wsi != c->wsi) {
			break;
		}
		c->state = LSC__AUTHENTICATING;
		if (c->local_close != 0) {
			lws_callback_on_writable(wsi);
			break;
		}
		/* The AuthRequest must be the first frame. */
		{
			lsc__frame *f = lsc__frame_new(
			        lsc__auth_request(c->app_key, c->token));

			if (f == NULL) {
				return -1;
			}
			f->next = c->ctl.head;
			c->ctl.head = f;
			if (c->ctl.tail == NULL) {
				c->ctl.tail = f;
			}
			c->queued += f->len;
		}
		lws_callback_on_writable(wsi);
		break;
	case LWS_CALLBACK_CLIENT_RECEIVE:
		if (wsi != c->wsi) {
			break;
		}
		return lsc__receive(c, wsi, in, len);
	case LWS_CALLBACK_CLIENT_WRITEABLE:
		if (wsi != c->wsi) {
			return -1;
		}
		return lsc__writeable(c, wsi);
	case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
		if (wsi == c->wsi && len >= 2) {
			const unsigned char *p = in;
			size_t n = len - 2;

			c->close_code = (p[0] << 8) | p[1];
			if (n >= sizeof(c->close_reason)) {
				n = sizeof(c->close_reason) - 1;
			}
			memcpy(c->close_reason, p + 2, n);
			c->close_reason[n] = '\0';
		}
		break;
	case LWS_CALLBACK_CLIENT_CLOSED:
		if (wsi == c->wsi) {
			int code = c->close_code != 0    ? c->close_code
			           : c->local_close != 0 ? c->local_close
			                                 : 1006;
			const char *why =
			        c->close_code != 0     ? c->close_reason
			        : c->local_close != 0  ? c->local_reason
			        : c->connect_timed_out ? "timed out before "
			                                 "authentication"
			                               : "connection lost";
			char reason_copy[128];

			snprintf(reason_copy, sizeof(reason_copy), "%s", why);
			lsc__lost(c, code, reason_copy);
		}
		break;
	default:
		break;
	}
	return 0;
}

/* ---- public API ---- */

lsc_client *
lsc_client_new(const lsc_options *opt, ls_error *err)
{
	struct lws_context_creation_info info;
	lsc_client *c;

	if (opt == NULL || opt->app_key == NULL || opt->token == NULL) {
		ls_error_set(err, -EINVAL,
		             "an app key and a token are "
		             "required");
		return NULL;
	}
	if (!lsc__valid_owner(opt->app_key)) {
		ls_error_set(err, -EINVAL, "invalid app key '%s'",
		             opt->app_key);
		return NULL;
	}
	if (*opt->token == '\0' || strlen(opt->token) > 1024) {
		ls_error_set(err, -EINVAL, "invalid token");
		return NULL;
	}
	c = calloc(1, sizeof(*c));
	if (c == NULL) {
		ls_error_set(err, -ENOMEM, "out of memory");
		return NULL;
	}
	if (lsc__url_parse(opt->url, "ws", "wss", LSC_DEFAULT_PATH, &c->url,
	                   err) != 0) {
		goto fail;
	}
	snprintf(c->host_header, sizeof(c->host_header), "%s:%d", c->url.host,
	         c->url.port);
	c->app_key = strdup(opt->app_key);
	c->token = strdup(opt->token);
	c->secret_key = lsc__strdup(opt->secret_key);
	c->ca_file = lsc__strdup(opt->ca_file);
	if (c->app_key == NULL || c->token == NULL ||
	    (opt->secret_key != NULL && c->secret_key == NULL) ||
	    (opt->ca_file != NULL && c->ca_file == NULL)) {
		ls_error_set(err, -ENOMEM, "out of memory");
		goto fail;
	}
	c->sign = opt->sign;
	c->sign_user = opt->sign_user;
	c->insecure = opt->insecure;
	c->reconnect = opt->reconnect;
	c->retry_initial = opt->retry_initial;
	c->backoff_initial_ms = opt->backoff_initial_ms
	                                ? opt->backoff_initial_ms
	                                : LSC_DEFAULT_BACKOFF_INITIAL;
	c->backoff_max_ms = opt->backoff_max_ms ? opt->backoff_max_ms
	                                        : LSC_DEFAULT_BACKOFF_MAX;
	if (c->backoff_max_ms < c->backoff_initial_ms) {
		c->backoff_max_ms = c->backoff_initial_ms;
	}
	c->max_attempts = opt->max_attempts;
	c->connect_timeout_ms = opt->connect_timeout_ms
	                                ? opt->connect_timeout_ms
	                                : LSC_DEFAULT_CONNECT_TIMEOUT;
	c->max_frame = opt->max_frame_bytes ? opt->max_frame_bytes
	                                    : LSC_DEFAULT_MAX_FRAME;
	c->max_queue = opt->max_queue_bytes ? opt->max_queue_bytes
	                                    : LSC_DEFAULT_MAX_QUEUE;
	c->cb = opt->cb;
	c->user = opt->user;

	lsc__lws_log_init();
	memset(&info, 0, sizeof(info));
	info.port = CONTEXT_PORT_NO_LISTEN;
	info.protocols = lsc__protocols;
	info.gid = -1;
	info.uid = -1;
	info.user = c;
	/* Only TLS URLs get an SSL_CTX: loading the system CA store costs
	 * time and memory that a ws:// client never needs. */
	if (c->url.tls) {
		c->ssl_ctx = lsc__ssl_ctx_new(c->ca_file, err);
		if (c->ssl_ctx == NULL) {
			goto fail;
		}
		info.options = LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
		info.provided_client_ssl_ctx = c->ssl_ctx;
	}
	info.fd_limit_per_thread = 16; /* one connection at a time */
	/* lws bounds each handshake step (TCP, TLS, HTTP upgrade) by this. */
	info.timeout_secs = (c->connect_timeout_ms + 999) / 1000;
	c->ctx = lws_create_context(&info);
	if (c->ctx == NULL) {
		ls_error_set(err, -EIO,
		             "cannot create the WebSocket context"
		             "%s",
		             c->ca_file ? " (check the CA file)" : "");
		goto fail;
	}
	return c;

fail:
	lsc_client_destroy(&c);
	return NULL;
}

void
lsc_client_destroy(lsc_client **pc)
{
	lsc_client *c;
	lsc__sub *s;
	lsc__ack *a;

	if (pc == NULL || *pc == NULL) {
		return;
	}
	c = *pc;
	*pc = NULL;
	c->destroying = true;
	if (c->ctx != NULL) {
		lws_sul_cancel(&c->retry_sul);
		lws_sul_cancel(&c->run_sul);
		lws_sul_cancel(&c->timeout_sul);
		lws_context_destroy(c->ctx);
	}
	SSL_CTX_free(c->ssl_ctx); /* after the context that used it */
	lsc__queue_clear(c, &c->ctl);
	lsc__queue_clear(c, &c->pub);
	while ((s = c->subs) != NULL) {
		c->subs = s->next;
		lsc__sub_free(s);
	}
	while ((a = c->acks) != NULL) {
		c->acks = a->next;
		free(a);
	}
	json_decref(c->perms);
	free(c->refresh_token);
	free(c->rx);
	free(c->app_key);
	if (c->token != NULL) {
		memset(c->token, 0, strlen(c->token));
	}
	free(c->token);
	if (c->secret_key != NULL) {
		memset(c->secret_key, 0, strlen(c->secret_key));
	}
	free(c->secret_key);
	free(c->ca_file);
	free(c);
}

int
lsc_client_connect(lsc_client *c)
{
	if (c->conn_live || c->retry_pending) {
		return -EALREADY;
	}
	c->user_closed = false;
	c->attempt = 0;
	return lsc__start(c);
}

static void
lsc__run_cb(lws_sorted_usec_list_t *sul)
{
	lsc_client *c = lws_container_of(sul, lsc_client, run_sul);

	c->run_expired = true;
	/* A sul runs before lws polls; without this wake-up the poll would
	 * still wait for the next timer or socket event. */
	lws_cancel_service(c->ctx);
}

int
lsc_client_run_until(lsc_client *c, bool (*done)(lsc_client *c, void *user),
                     void *user, int timeout_ms)
{
	int rc;

	c->stop = false;
	c->run_expired = false;
	if (timeout_ms >= 0) {
		lws_sul_schedule(c->ctx, 0, &c->run_sul, lsc__run_cb,
		                 (lws_usec_t)timeout_ms * 1000);
	}
	for (;;) {
		if (done != NULL && done(c, user)) {
			rc = 0;
			break;
		}
		if (c->stop) {
			rc = 1;
			break;
		}
		if (c->run_expired) {
			rc = LS_ETIMEOUT;
			break;
		}
		if (lws_service(c->ctx, 0) < 0) {
			rc = -EIO;
			break;
		}
	}
	lws_sul_cancel(&c->run_sul);
	return rc;
}

int
lsc_client_run(lsc_client *c, int timeout_ms)
{
	int rc = lsc_client_run_until(c, NULL, NULL, timeout_ms);

	return rc == LS_ETIMEOUT ? 0 : rc;
}

void
lsc_client_stop(lsc_client *c)
{
	c->stop = true;
	lws_cancel_service(c->ctx);
}

void
lsc_client_close(lsc_client *c)
{
	c->user_closed = true;
	if (c->retry_pending) {
		lws_sul_cancel(&c->retry_sul);
		c->retry_pending = false;
	}
	if (c->wsi != NULL) {
		lsc__close_local(c, 1000, "bye");
	}
}

bool
lsc_client_is_ready(const lsc_client *c)
{
	return c->state == LSC__READY;
}

int64_t
lsc_client_subscribe(lsc_client *c, const char *owner, const char *stream,
                     const char *query, ls_error *err)
{
	json_t *q = NULL;
	lsc__sub *s;

	if (!lsc__valid_owner(owner)) {
		return ls_error_set(err, -EINVAL, "invalid owner '%s'",
		                    owner ? owner : "");
	}
	if (!lsc__valid_stream(stream)) {
		return ls_error_set(err, -EINVAL, "invalid stream name '%s'",
		                    stream ? stream : "");
	}
	if (query != NULL) {
		json_error_t jerr;

		q = json_loads(query, 0, &jerr);
		if (q == NULL) {
			return ls_error_set(err, -EINVAL,
			                    "query is not valid JSON: %s "
			                    "(line %d, column %d)",
			                    jerr.text, jerr.line, jerr.column);
		}
		if (!json_is_object(q)) {
			json_decref(q);
			return ls_error_set(err, -EINVAL,
			                    "query must be a JSON object");
		}
	}
	if (c->state == LSC__READY &&
	    !lsc__permitted(c->perms, owner, stream, LSC_PERM_READ)) {
		json_decref(q);
		return ls_error_set(err, LS_EFORBIDDEN,
		                    "the token's roles do not grant reading "
		                    "%s/%s",
		                    owner, stream);
	}
	s = calloc(1, sizeof(*s));
	if (s == NULL) {
		json_decref(q);
		return ls_error_set(err, -ENOMEM, "out of memory");
	}
	s->id = ++c->next_sub;
	snprintf(s->owner, sizeof(s->owner), "%s", owner);
	snprintf(s->stream, sizeof(s->stream), "%s", stream);
	s->query = q;
	s->state = LSC__SUB_IDLE;
	s->next = c->subs;
	c->subs = s;
	if (c->state == LSC__READY) {
		lsc__sub_send(c, s);
	}
	return s->id;
}

int
lsc_client_unsubscribe(lsc_client *c, int64_t id)
{
	lsc__sub *s = lsc__sub_find(c, id);

	if (s == NULL) {
		return -ENOENT;
	}
	lsc__sub_unlink(c, s);
	if (s->state == LSC__SUB_ACTIVE && c->state == LSC__READY) {
		lsc__send_ctl(c, lsc__unsubscribe_request(s->server_id));
	}
	/* A PENDING one: its SubscribeResponse finds no match and the
	 * server-side subscription lives until the connection ends — rare
	 * and harmless, deliveries are dropped here. */
	lsc__sub_free(s);
	return 0;
}

int
lsc_client_publish(lsc_client *c, const char *owner, const char *stream,
                   const json_t *data, lsc_ack_fn ack, void *ack_user,
                   char *request_id)
{
	char rid[LSC_REQUEST_ID_MAX] = "";
	lsc__frame *f;

	if (!lsc__valid_owner(owner) || !lsc__valid_stream(stream) ||
	    data == NULL) {
		return -EINVAL;
	}
	if (c->state == LSC__READY &&
	    !lsc__permitted(c->perms, owner, stream, LSC_PERM_WRITE)) {
		return LS_EFORBIDDEN;
	}
	if (ack != NULL) {
		lsc__next_id(c, 'p', rid);
	}
	f = lsc__frame_new(
	        lsc__publish(owner, stream, data, ack != NULL ? rid : NULL));
	if (f == NULL) {
		return -ENOMEM;
	}
	if (f->len > c->max_queue) {
		free(f);
		return LS_ETOOLARGE;
	}
	if (c->queued + f->len > c->max_queue) {
		free(f);
		return -ENOBUFS;
	}
	snprintf(f->owner, sizeof(f->owner), "%s", owner);
	snprintf(f->stream, sizeof(f->stream), "%s", stream);
	memcpy(f->request_id, rid, sizeof(rid));
	f->ack = ack;
	f->ack_user = ack_user;
	lsc__queue_push(c, &c->pub, f);
	if (c->state == LSC__READY) {
		lsc__want_write(c);
	}
	if (request_id != NULL) {
		memcpy(request_id, rid, sizeof(rid));
	}
	return 0;
}

int
lsc_client_refresh(lsc_client *c, const char *token, lsc_ack_fn ack,
                   void *ack_user)
{
	char *copy;
	int rc;

	if (token == NULL || *token == '\0' || strlen(token) > 1024) {
		return -EINVAL;
	}
	if (c->state != LSC__READY) {
		return -ENOTCONN;
	}
	if (c->refresh_token != NULL) {
		return -EBUSY;
	}
	copy = strdup(token);
	if (copy == NULL) {
		return -ENOMEM;
	}
	rc = lsc__send_ctl(c, lsc__refresh_request(token));
	if (rc != 0) {
		free(copy);
		return rc;
	}
	c->refresh_token = copy;
	c->refresh_ack = ack;
	c->refresh_user = ack_user;
	return 0;
}

size_t
lsc_client_queued_bytes(const lsc_client *c)
{
	return c->queued;
}

size_t
lsc_client_pending_acks(const lsc_client *c)
{
	return c->n_acks;
}

const char *
lsc_strerror(int code)
{
	return ls_strerror(code);
}
