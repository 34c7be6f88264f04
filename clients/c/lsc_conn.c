/*
 * The client connection: libwebsockets client side on a context of its
 * own, the protocol state machine of docs/protocol.md, the outgoing queues and
 * the reconnection timer.
 *
 * Two outgoing queues: "control" frames belong to the current connection
 * (AuthRequest, WebTokenResponse, Subscribe/Unsubscribe/Refresh) and are
 * dropped when it is lost; "publish" frames belong to the client and wait
 * — in order — for an authenticated connection, surviving reconnections.
 * Subscriptions are a table, not frames: every authentication (re)sends
 * a SubscribeRequest for each of them.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ls_crypto.h"
#include "ls_json.h"
#include "ls_log.h"
#include "lsc_client_int.h"
#include "ls_proto.h"
#include "lsc_internal.h"

#define LSC__LOG "client"

static int lsc__callback(struct lws *wsi, enum lws_callback_reasons reason,
                         void *user, void *in, size_t len);

const struct lws_protocols lsc__protocols[] = {
	{ "lightstream-client", lsc__callback, 0, 0, 0, NULL, 0 },
	{ NULL, NULL, 0, 0, 0, NULL, 0 },
};

/* ---- connection lifecycle ---- */

static void lsc__retry_cb(lws_sorted_usec_list_t *sul);

static bool
lsc__fatal_close(int code)
{
	/* A retry with the same credentials cannot fix these. */
	return code == LS_CLOSE_AUTH_FAILED || code == LS_CLOSE_FORBIDDEN ||
	       code == LS_CLOSE_BAD_REQUEST ||
	       code == LS_CLOSE_TOKEN_EXPIRED ||
	       code == LS_CLOSE_TOKEN_REVOKED;
}

/*
 * After close 4010/4011 the token cannot serve again: ask the application
 * for a new one. True when it gave one (now c->token).
 */
static bool
lsc__renew_token(lsc_client *c, int code)
{
	const char *fresh;
	char *copy;

	if ((code != LS_CLOSE_TOKEN_EXPIRED &&
	     code != LS_CLOSE_TOKEN_REVOKED) ||
	    c->get_token == NULL || !c->reconnect || c->user_closed) {
		return false;
	}
	fresh = c->get_token(c, c->token_user);
	if (fresh == NULL || *fresh == '\0' || strlen(fresh) > 1024 ||
	    (copy = strdup(fresh)) == NULL) {
		ls_info(LSC__LOG, "no new token after close %d: stopping",
		        code);
		return false;
	}
	memset(c->token, 0, strlen(c->token));
	free(c->token);
	c->token = copy;
	ls_debug(LSC__LOG, "new token after close %d", code);
	return true;
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
void
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
	lsc__set_perms(c, NULL);
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
	/* "Try again later" is an invitation to retry even a connection
	 * that never got in: the server was there, its app server was not. */
	reconnecting = c->reconnect && !c->user_closed &&
	               (c->ever_ready || c->retry_initial ||
	                code == LS_CLOSE_UNAVAILABLE) &&
	               (c->max_attempts == 0 || c->attempt <= c->max_attempts);
	/* Last: the application is asked for a token only when it will be
	 * used. */
	if (reconnecting && lsc__fatal_close(code)) {
		reconnecting = lsc__renew_token(c, code);
	}
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
		lsc__close_local(c, LS_CLOSE_AUTH_TIMEOUT,
		                 "authentication timed out");
	}
}

int
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
	c->error_close = 0;
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
	lsc__set_perms(c, json_is_array(perms) ? json_incref((json_t *)perms)
	                                       : NULL);
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
			                    LS_PERM_READ)) {
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
	if (lsc__pub_pending(c)) {
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
		lsc__close_local(c, LS_CLOSE_AUTH_FAILED,
		                 "web token not signed");
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
		json_t *rec = json_object_get(m, "recovered");
		const char *epoch = lsc__str(m, "epoch");
		json_t *offset = json_object_get(m, "offset");
		s->server_id = strdup(lsc__str(m, "subscriptionId"));
		s->state = LSC__SUB_ACTIVE;
		s->recovered = json_is_boolean(rec) ? json_is_true(rec) : -1;
		if (epoch != NULL && ls_valid_epoch(epoch) &&
		    json_is_integer(offset) &&
		    json_integer_value(offset) >= 0) {
			if (s->recovered != 1) {
				/* a fresh start, from the stream's latest */
				snprintf(s->epoch, sizeof(s->epoch), "%s",
				         epoch);
				s->offset =
				        (uint64_t)json_integer_value(offset);
			}
			s->have_pos = true;
		} else {
			s->have_pos = false; /* the server could not say */
		}
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
	char *text;
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
	msg.offset = 0;
	{
		json_t *off = json_object_get(m, "offset");
		if (json_is_integer(off) && json_integer_value(off) > 0) {
			msg.offset = (uint64_t)json_integer_value(off);
			s->offset = msg.offset;
		}
	}
	msg.owner = lsc__str(m, "owner");
	msg.stream = lsc__str(m, "stream");
	text = json_object_get(m, "data") != NULL
	               ? ls_json_dumps(json_object_get(m, "data"), NULL)
	               : strdup("null");
	if (text == NULL) {
		ls_warn(LSC__LOG, "out of memory: a message dropped");
		return;
	}
	msg.data = text;
	msg.data_len = strlen(text);
	if (msg.owner == NULL) {
		msg.owner = s->owner;
	}
	if (msg.stream == NULL) {
		msg.stream = s->stream;
	}
	c->cb.on_message(c, &msg, c->user);
	free(text);
}

/* SubscriptionEnded: the server ended one subscription. */
static void
lsc__on_sub_ended(lsc_client *c, json_t *m)
{
	const char *sid = lsc__str(m, "subscriptionId");
	const json_t *e = json_object_get(m, "error");
	const char *code = lsc__str(e, "code");
	const char *msg = lsc__str(e, "message");
	lsc__sub *s;

	if (sid == NULL) {
		return;
	}
	for (s = c->subs; s != NULL; s = s->next) {
		if (s->state == LSC__SUB_ACTIVE &&
		    strcmp(s->server_id, sid) == 0) {
			break;
		}
	}
	if (s == NULL) {
		return; /* unsubscribed meanwhile */
	}
	lsc__sub_unlink(c, s);
	if (c->cb.on_subscription_ended != NULL) {
		c->cb.on_subscription_ended(c, s->id,
		                            code != NULL ? code : "forbidden",
		                            msg != NULL ? msg : "", c->user);
	}
	lsc__sub_free(s);
}

/* PermissionsChanged: the local checks follow the new permissions. */
static void
lsc__on_permissions(lsc_client *c, json_t *m)
{
	json_t *perms = json_object_get(m, "permissions");

	if (!json_is_array(perms)) {
		return;
	}
	lsc__set_perms(c, json_incref(perms));
	if (c->cb.on_permissions != NULL) {
		char *text = json_dumps(perms, JSON_COMPACT);

		if (text != NULL) {
			c->cb.on_permissions(c, text, c->user);
		}
		free(text);
	}
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
		lsc__close_local(c, LS_CLOSE_BAD_REQUEST, "malformed frame");
		return;
	}
	switch (t) {
	case LS_T_AUTH_RESPONSE:
		if (json_is_true(json_object_get(m, "ok"))) {
			lsc__on_auth_ok(c, m);
		} else {
			lsc__error_of(m, &code, &msg);
			if (c->cb.on_error != NULL) {
				c->cb.on_error(c, code, msg, c->user);
			}
		}
		break;
	case LS_T_WEBTOKEN_REQUEST:
		lsc__on_web_token(c, m);
		break;
	case LS_T_DATA:
		lsc__on_data(c, m);
		break;
	case LS_T_SUBSCRIBE_RESPONSE:
		lsc__on_subscribed(c, m);
		break;
	case LS_T_ERROR:
		lsc__error_of(m, &code, &msg);
		{
			const ls_proto_error *row =
			        ls_proto_error_by_name(code);
			c->error_close = row ? (int)row->close_code : 0;
		}
		if (c->cb.on_error != NULL) {
			c->cb.on_error(c, code, msg, c->user);
		}
		break;
	case LS_T_REFRESH_RESPONSE:
		lsc__on_refreshed(c, m);
		break;
	case LS_T_PUBLISH_RESPONSE:
		lsc__on_publish_ack(c, m);
		break;
	case LS_T_SUBSCRIPTION_ENDED:
		lsc__on_sub_ended(c, m);
		break;
	case LS_T_PERMISSIONS_CHANGED:
		lsc__on_permissions(c, m);
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
	while (f == NULL && c->state == LSC__READY &&
	       (f = lsc__queue_pop(c, &c->pub)) != NULL) {
		if (lsc__permitted(c->perms, f->owner, f->stream,
		                   LS_PERM_WRITE)) {
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
	    (c->state == LSC__READY && lsc__pub_pending(c))) {
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
	case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
		/* lws_cancel_service(): publishes from any thread (or the
		 * end of a run) wait. */
		pthread_mutex_lock(&c->mu);
		c->wake_pending = false;
		pthread_mutex_unlock(&c->mu);
		if (c->state == LSC__READY && lsc__pub_pending(c)) {
			lsc__want_write(c);
		}
		break;
	case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
		if (c->wsi == NULL || c->wsi == wsi) {
			char why[160];

			lsc__connect_error(c->ssl_ctx,
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
			pthread_mutex_lock(&c->mu);
			f->next = c->ctl.head;
			c->ctl.head = f;
			if (c->ctl.tail == NULL) {
				c->ctl.tail = f;
			}
			c->queued += f->len;
			pthread_mutex_unlock(&c->mu);
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
			/* lws 4.1.6 rewrites close codes above 1011 (1013
			 * "try again later" among them) to 1002 before we see
			 * them; the Error sent before the close names the
			 * real one. */
			if (c->close_code == LS_CLOSE_PROTOCOL &&
			    c->error_close != 0) {
				c->close_code = c->error_close;
			}
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
