/*
 * One WebSocket connection: the rules of docs/protocol.md.
 *
 * State machine: NEW → (AuthRequest) AUTHING → READY, or, for a web
 * token, AUTHING → WEBSIG → (WebTokenResponse) WEBCHECK → READY. Any
 * failure moves to CLOSING: an Error (or failed AuthResponse) is queued,
 * and the close frame follows once the queue is written. At most one bus
 * request per connection is in flight; it is cancelled when the
 * connection goes, so a late reply never touches freed memory.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gw_internal.h"
#include "gw_iplimit.h"
#include "gw_json.h"
#include "ls_json.h"
#include "ls_crypto.h"
#include "ls_log.h"
#include "ls_time.h"
#include "ps_control.h"

static json_t *gw__perms_json(const gw_conn *c);
static void gw__expired(struct ev_loop *loop, ev_timer *w, int revents);

/* Repeated failures a client can cause at will: a few lines, then one
 * summary per interval (docs/operations.md, "Logs"). */
static ls_log_limit gw__auth_log = LS_LOG_LIMIT_INIT(10000, 5);
static ls_log_limit gw__close_log = LS_LOG_LIMIT_INIT(10000, 5);

gw_conn *
gw_conn_new(gw_gateway *gw, struct lws *wsi)
{
	gw_conn *c = calloc(1, sizeof(*c));

	if (c == NULL) {
		return NULL;
	}
	c->gw = gw;
	c->wsi = wsi;
	c->state = GW_CS_NEW;
	c->tls = gw_wsi_is_tls(gw, wsi);
	c->last_rx_ms = ls_now_ms();
	gw_client_ip(gw, wsi, c->ip, sizeof(c->ip));
	c->start_pc = LS_PC_COUNT;
	c->pub_tokens = (double)gw->publish_burst;
	c->pub_last_ms = c->last_rx_ms;
	c->ip_counted =
	        gw->shared != NULL &&
	        gw_iplimit_open(gw->shared->conns_by_ip, c->ip, c->last_rx_ms);
	/* One list in creation order instead of a timer each: the reaper
	 * times them out a bounded batch at a time. */
	gw_clist_move(c, GW_CL_AUTH, c->last_rx_ms + gw->auth_timeout_ms);
	ev_init(&c->expiry_timer, gw__expired);
	c->expiry_timer.data = c;
	c->next = gw->conns;
	if (gw->conns != NULL) {
		gw->conns->prev = c;
	}
	gw->conns = c;
	gw->nconns++;
	gw->m.connections_total++;
	return c;
}

void
gw_perms_free(gw_perm *perms, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		/* Owned by the gateway (gw_grant_parse()). */
		free((char *)perms[i].owner);
		free((char *)perms[i].stream);
	}
	free(perms);
}

static void
gw__perms_free(gw_conn *c)
{
	gw_perms_free(c->perms, c->nperms);
	c->perms = NULL;
	c->nperms = 0;
}

void
gw_conn_destroy(gw_conn *c)
{
	gw_gateway *gw = c->gw;

	gw_clist_move(c, GW_CL_NONE, 0);
	ev_timer_stop(gw->loop, &c->expiry_timer);
	if (c->ip_counted) {
		gw_iplimit_close(gw->shared->conns_by_ip, c->ip, ls_now_ms());
	}
	if (c->bus_pending) {
		bus_client_cancel(gw->bus, c->bus_id);
	}
	gw_liveauth_forget(c);
	gw_flush_forget(c);
	gw_subs_clear(c);
	gw_queue_clear(c);
	while (c->acks != NULL) {
		gw_ack *a = c->acks;
		c->acks = a->next;
		a->conn = NULL; /* freed by its fabric callback */
		a->prev = a->next = NULL;
	}
	free(c->q);
	gw_sse_free(c);
	free(c->ohist);
	gw__perms_free(c);
	free(c->rx);
	free(c->app_key);
	free(c->token);
	free(c->new_token);
	if (gw->ping_cursor == c) {
		gw->ping_cursor = c->next;
	}
	if (c->prev != NULL) {
		c->prev->next = c->next;
	} else {
		gw->conns = c->next;
	}
	if (c->next != NULL) {
		c->next->prev = c->prev;
	}
	gw->nconns--;
	free(c);
	gw_check_drained(gw);
}

/* ---- sending ------------------------------------------------------------ */

static gw_buf *
gw__envelope(int t, json_t *m)
{
	json_t *root = json_pack("{s:i,s:o}", "t", t, "m", m);
	gw_buf *b = NULL;
	size_t n;

	if (root == NULL) {
		return NULL;
	}
	n = json_dumpb(root, NULL, 0, JSON_COMPACT);
	b = n ? gw_buf_new(NULL, n) : NULL;
	if (b != NULL) {
		json_dumpb(root, b->data, n, JSON_COMPACT);
	}
	json_decref(root);
	return b;
}

void
gw_conn_send(gw_conn *c, int t, json_t *m)
{
	gw_buf *b;

	if (m == NULL) {
		return;
	}
	if (c->framing == GW_FRAMING_SSE) {
		b = gw_sse_encode(c, t, m);
		json_decref(m);
	} else {
		b = gw__envelope(t, m);
	}
	if (b != NULL) {
		gw_queue_push(c, NULL, b);
	}
}

static json_t *
gw__error(const char *code, const char *message)
{
	char text[LS_ERROR_TEXT_MAX + 64];

	/* Messages may quote client input, possibly cut mid-character. */
	snprintf(text, sizeof(text), "%s", message);
	gw_utf8_sanitize(text);
	return json_pack("{s:s,s:s}", "code", code, "message", text);
}

static void
gw__closing(gw_conn *c, int close_code)
{
	c->state = GW_CS_CLOSING;
	c->close_code = close_code;
	/* The close follows the queue; the socket is cut at the deadline if
	 * the peer does not answer it (or reads nothing). */
	gw_clist_move(c, GW_CL_CLOSING, ls_now_ms() + GW_CLOSE_GRACE_MS);
	ev_timer_stop(c->gw->loop, &c->expiry_timer);
	if (c->bus_pending) {
		bus_client_cancel(c->gw->bus, c->bus_id);
		c->bus_pending = false;
	}
	gw_liveauth_forget(c);
	lws_callback_on_writable(c->wsi);
}

void
gw_conn_fail(gw_conn *c, int close_code, const char *code, const char *fmt,
             ...)
{
	char message[256];
	va_list ap;
	gw_buf *b;

	if (c->state == GW_CS_CLOSING) {
		return;
	}
	va_start(ap, fmt);
	vsnprintf(message, sizeof(message), fmt, ap);
	va_end(ap);
	if (close_code == LS_CLOSE_SERVER_ERROR ||
	    close_code == LS_CLOSE_UNAVAILABLE) {
		ls_log_ratelimited(&gw__close_log, LS_LOG_WARN, GW_LOG,
		                   "connection from %s: %s (%s), closing %d",
		                   c->ip, code, message, close_code);
	} else {
		ls_debug(GW_LOG, "connection from %s: %s (%s), closing %d",
		         c->ip, code, message, close_code);
	}
	if (c->framing == GW_FRAMING_SSE) {
		json_t *m = gw__error(code, message);
		b = m ? gw_sse_encode(c, LS_T_ERROR, m) : NULL;
		json_decref(m);
	} else {
		b = gw__envelope(LS_T_ERROR, gw__error(code, message));
	}
	gw__closing(c, close_code);
	if (b != NULL) {
		gw__queue_force(c, b);
	}
}

void
gw_conn_error(gw_conn *c, ls_proto_code pc, const char *fmt, ...)
{
	const ls_proto_error *row = ls_proto_error_row(pc);
	char message[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(message, sizeof(message), fmt, ap);
	va_end(ap);
	gw_conn_fail(c,
	             row && row->close_code ? (int)row->close_code
	                                    : LS_CLOSE_SERVER_ERROR,
	             ls_proto_code_name(pc), "%s", message);
}

void
gw_conn_close(gw_conn *c, int close_code)
{
	if (c->state != GW_CS_CLOSING) {
		gw__closing(c, close_code);
	}
}

void
gw_conn_close_later(gw_conn *c, ls_proto_code pc, int close_code)
{
	if (c->state == GW_CS_CLOSING || c->list == GW_CL_START) {
		return;
	}
	c->start_pc = pc;
	c->start_close = close_code;
	gw_clist_move(c, GW_CL_START, 0);
}

void
gw_conn_start_close(gw_conn *c)
{
	if (c->start_pc == LS_PC_TOKEN_EXPIRED) {
		gw_conn_fail(c, c->start_close, "token_expired",
		             "the token expired");
	} else if (c->start_pc != LS_PC_COUNT) {
		gw_conn_fail(c, c->start_close,
		             ls_proto_code_name(c->start_pc), "%s",
		             ls_proto_code_name(c->start_pc));
	} else {
		gw_conn_close(c, c->start_close);
	}
}

void
gw_conn_auth_timeout(gw_conn *c)
{
	c->gw->m.auth_failed++;
	ls_log_ratelimited(&gw__auth_log, LS_LOG_INFO, GW_LOG,
	                   "connection from %s: no authentication within "
	                   "%ld ms",
	                   c->ip, c->gw->auth_timeout_ms);
	gw_conn_fail(c, LS_CLOSE_AUTH_TIMEOUT, "auth_failed",
	             "no authentication within %ld ms",
	             c->gw->auth_timeout_ms);
}

/*
 * The peer's close frame (RFC 6455 §5.5.1, §7.4). After ours it ends the
 * handshake. As the first close: lws 4.1.6 echoes it, having already
 * replaced a code that may not be sent with 1002; but it echoes a 1-byte
 * payload too and does not look at the reason's UTF-8. Those get our own
 * close frame — 1002 protocol error, 1007 invalid data — and the
 * connection ends without lws's echo.
 */
int
gw_conn_peer_close(gw_conn *c, const unsigned char *in, size_t len)
{
	unsigned char frame[LWS_PRE + 4];
	int code;

	if (c->close_sent) {
		/* The answer to our close frame: the handshake is over. */
		return 1;
	}
	if (len == 1) {
		code = LS_CLOSE_PROTOCOL;
	} else if (len > 2 && !gw_utf8_valid((const char *)in + 2, len - 2)) {
		code = LS_CLOSE_INVALID_DATA;
	} else {
		return 0;
	}
	ls_debug(GW_LOG, "connection from %s: invalid close frame, closing %d",
	         c->ip, code);
	frame[LWS_PRE] = 0x88;
	frame[LWS_PRE + 1] = 2;
	frame[LWS_PRE + 2] = (unsigned char)(code >> 8);
	frame[LWS_PRE + 3] = (unsigned char)code;
	c->close_sent = true;
	c->state = GW_CS_CLOSING;
	lws_write(c->wsi, frame + LWS_PRE, 4, LWS_WRITE_RAW);
	return 1;
}

/*
 * AuthResponse ok:false with the refusal's code, then that code's close
 * code (auth_failed: 4001).
 */
static void
gw__auth_refused(gw_conn *c, ls_proto_code pc, const char *message)
{
	const ls_proto_error *row = ls_proto_error_row(pc);
	gw_buf *b;

	c->gw->m.auth_failed++;
	if (c->framing == GW_FRAMING_SSE) {
		/* No AuthResponse on SSE: the HTTP answer says it. */
		gw_conn_fail(c, LS_CLOSE_AUTH_FAILED, "auth_failed", "%s",
		             message);
		return;
	}
	b = gw__envelope(LS_T_AUTH_RESPONSE,
	                 json_pack("{s:b,s:o}", "ok", 0, "error",
	                           gw__error(row->name, message)));
	ls_log_ratelimited(&gw__auth_log, LS_LOG_INFO, GW_LOG,
	                   "authentication from %s failed: %s", c->ip,
	                   message);
	gw__closing(c, row->close_code ? (int)row->close_code
	                               : LS_CLOSE_AUTH_FAILED);
	if (b != NULL) {
		gw__queue_force(c, b);
	}
}

static void
gw__auth_failed(gw_conn *c, const char *message)
{
	gw__auth_refused(c, LS_PC_AUTH_FAILED, message);
}

static void
gw__unavailable(gw_conn *c, const char *message)
{
	c->gw->m.bus_errors++;
	/* 1013 "try again later": the client did nothing wrong. */
	gw_conn_fail(c, LS_CLOSE_UNAVAILABLE, "unavailable", "%s",
	             message != NULL
	                     ? message
	                     : "the app server is unreachable; try again "
	                       "later");
}

/*
 * A failed authentication call (validateToken, validateWebToken): the
 * code the bus carried decides (docs/protocol.md, "Error codes"). A
 * transient failure of the app server or its store, or no answer in
 * time, is unavailable/1013 so that clients retry; only a refusal of the
 * credentials is final.
 */
static void
gw__auth_bus_error(gw_conn *c, bus_status status, const char *body, size_t len)
{
	char msg[LS_ERROR_TEXT_MAX];
	ls_proto_code pc =
	        bus_reply_error(status, body, len, msg, sizeof(msg));

	switch (pc) {
	case LS_PC_UNAVAILABLE:
	case LS_PC_TIMEOUT:
		gw__unavailable(c, msg);
		return;
	case LS_PC_SERVER_ERROR:
		c->gw->m.bus_errors++;
		gw_conn_fail(c, LS_CLOSE_SERVER_ERROR, "server_error", "%s",
		             msg);
		return;
	default:
		gw__auth_refused(c, pc, msg);
		return;
	}
}

/* ---- authentication ----------------------------------------------------- */

static void
gw__arm_expiry(gw_conn *c)
{
	double after = (double)(c->expires_ms - ls_wall_ms()) / 1000.0;

	ev_timer_stop(c->gw->loop, &c->expiry_timer);
	ev_timer_set(&c->expiry_timer, after > 0 ? after : 0.0, 0.0);
	ev_timer_start(c->gw->loop, &c->expiry_timer);
}

static void
gw__expired(struct ev_loop *loop, ev_timer *w, int revents)
{
	gw_conn *c = w->data;

	/* Tokens issued together expire together: through the reaper. */
	gw_conn_close_later(c, LS_PC_TOKEN_EXPIRED, LS_CLOSE_TOKEN_EXPIRED);
}

int
gw_grant_parse(const char *app_key, const char *body, size_t len, gw_grant *g)
{
	json_t *r = json_loadb(body, len, 0, NULL);
	json_t *perms, *exp, *p;
	gw_perm *list = NULL;
	size_t i, n = 0;
	int64_t expires;
	int rc = -EINVAL;

	memset(g, 0, sizeof(*g));
	if (!json_is_object(r)) {
		goto fail;
	}
	if (!json_is_string(json_object_get(r, "appKey")) ||
	    strcmp(json_string_value(json_object_get(r, "appKey")), app_key) !=
	            0) {
		goto fail;
	}
	exp = json_object_get(r, "expiresAt");
	if (json_is_string(exp)) {
		if (ls_parse_rfc3339(json_string_value(exp), &expires) != 0) {
			goto fail;
		}
	} else if (json_is_integer(exp)) {
		expires = json_integer_value(exp);
	} else {
		goto fail;
	}
	perms = json_object_get(r, "permissions");
	if (perms != NULL && !json_is_array(perms)) {
		goto fail;
	}
	list = calloc(json_array_size(perms) + 1, sizeof(*list));
	if (list == NULL) {
		rc = -ENOMEM;
		goto fail;
	}
	json_array_foreach(perms, i, p)
	{
		const char *owner =
		        json_string_value(json_object_get(p, "owner"));
		const char *stream =
		        json_string_value(json_object_get(p, "stream"));
		json_t *bits = json_object_get(p, "permission");
		char *o, *st;

		if (owner == NULL || stream == NULL ||
		    !json_is_integer(bits)) {
			continue;
		}
		if (!ls_valid_app_key(owner) ||
		    !ls_valid_stream_pattern(stream)) {
			/* Nothing a client could name: never matches. */
			continue;
		}
		o = strdup(owner);
		st = strdup(stream);
		if (o == NULL || st == NULL) {
			free(o);
			free(st);
			continue;
		}
		list[n].owner = o;
		list[n].stream = st;
		list[n].bits = (int)(json_integer_value(bits) &
		                     (LS_PERM_READ | LS_PERM_WRITE));
		n++;
	}
	g->perms = list;
	g->nperms = n;
	g->expires_ms = expires;
	g->web = json_is_true(json_object_get(r, "webToken"));
	json_decref(r);
	return 0;
fail:
	json_decref(r);
	free(list);
	return rc;
}

/* The history settings of stream owners in a validateToken result. */
static int
gw__take_history(gw_conn *c, const char *body, size_t len)
{
	json_t *r = json_loadb(body, len, 0, NULL);
	int rc = gw_history_take(c, r);

	json_decref(r);
	return rc;
}

/*
 * Read a validateToken result: {appKey, permissions, expiresAt, webToken}.
 * Sets the connection's permissions (quietly: only at authentication) and
 * expiry. Returns 0 or -EINVAL.
 */
static int
gw__take_grant(gw_conn *c, const char *body, size_t len, bool *web)
{
	gw_grant g;
	int rc = gw_grant_parse(c->app_key, body, len, &g);

	if (rc != 0) {
		return rc;
	}
	rc = gw__take_history(c, body, len);
	if (rc != 0) {
		gw_perms_free(g.perms, g.nperms);
		return rc;
	}
	gw__perms_free(c);
	c->perms = g.perms;
	c->nperms = g.nperms;
	c->expires_ms = g.expires_ms;
	*web = g.web;
	return 0;
}

static bool
gw__perm_equal(const gw_perm *a, const gw_perm *b)
{
	return a->bits == b->bits && strcmp(a->owner, b->owner) == 0 &&
	       strcmp(a->stream, b->stream) == 0;
}

/* Do the two lists grant the same (in any order)? */
static bool
gw__perms_same(const gw_perm *a, size_t na, const gw_perm *b, size_t nb)
{
	size_t i, j;

	if (na != nb) {
		return false;
	}
	for (i = 0; i < na && gw__perm_equal(&a[i], &b[i]); i++) {
	}
	for (; i < na; i++) {
		for (j = 0; j < nb && !gw__perm_equal(&a[i], &b[j]); j++) {
		}
		if (j == nb) {
			return false;
		}
	}
	return true;
}

void
gw_conn_set_perms(gw_conn *c, gw_perm *perms, size_t n)
{
	gw_sub *sub, *next;

	if (gw__perms_same(c->perms, c->nperms, perms, n)) {
		gw_perms_free(perms, n);
		return;
	}
	gw__perms_free(c);
	c->perms = perms;
	c->nperms = n;
	ls_debug(GW_LOG, "%s: permissions of %s changed", c->conn_id,
	         c->app_key);
	c->gw->m.permissions_changed++;
	gw_conn_send(c, LS_T_PERMISSIONS_CHANGED,
	             json_pack("{s:o}", "permissions", gw__perms_json(c)));
	for (sub = c->subs; sub != NULL; sub = next) {
		char text[LS_APPKEY_MAX + LS_STREAM_MAX + 64];
		next = sub->cnext;
		if (gw_conn_allowed(c, sub->stream->owner, sub->stream->name,
		                    LS_PERM_READ)) {
			continue;
		}
		snprintf(text, sizeof(text), "no read permission on %s:%s",
		         sub->stream->owner, sub->stream->name);
		gw_sub_end(sub, LS_PC_FORBIDDEN, text);
	}
}

static json_t *
gw__perms_json(const gw_conn *c)
{
	json_t *a = json_array();

	for (size_t i = 0; a != NULL && i < c->nperms; i++) {
		json_array_append_new(a, json_pack("{s:s,s:s,s:i}", "owner",
		                                   c->perms[i].owner, "stream",
		                                   c->perms[i].stream,
		                                   "permission",
		                                   c->perms[i].bits));
	}
	return a;
}

static void
gw__expires_text(const gw_conn *c, char out[LS_RFC3339_LEN + 1])
{
	ls_format_rfc3339(c->expires_ms, out);
}

static void
gw__auth_ok(gw_conn *c)
{
	char exp[LS_RFC3339_LEN + 1];

	gw_clist_move(c, GW_CL_NONE, 0);
	c->state = GW_CS_READY;
	c->gw->m.auth_ok++;
	if (c->framing == GW_FRAMING_SSE) {
		gw__arm_expiry(c);
		ls_debug(GW_LOG, "%s (SSE) authenticated as %s from %s",
		         c->conn_id, c->app_key, c->ip);
		gw_sse_ready(c);
		if (c->state == GW_CS_READY) {
			gw_liveauth_ready(c);
		}
		return;
	}
	/* The token stays: re-validations (docs/protocol.md, "Live
	 * authorization") present it again. */
	gw__expires_text(c, exp);
	gw_conn_send(c, LS_T_AUTH_RESPONSE,
	             json_pack("{s:b,s:s,s:s,s:o}", "ok", 1, "connectionId",
	                       c->conn_id, "expiresAt", exp, "permissions",
	                       gw__perms_json(c)));
	gw__arm_expiry(c);
	ls_debug(GW_LOG, "%s authenticated as %s from %s", c->conn_id,
	         c->app_key, c->ip);
	gw_liveauth_ready(c);
}

static int
gw__new_conn_id(gw_conn *c)
{
	unsigned char raw[GW_CONN_ID_BYTES];

	if (ls_random_bytes(raw, sizeof(raw)) != 0) {
		return -EIO;
	}
	return ls_base64url_encode(raw, sizeof(raw), c->conn_id,
	                           sizeof(c->conn_id)) < 0
	               ? -ENOSPC
	               : 0;
}

static void gw__bus_reply(bus_status status, const char *body, size_t len,
                          void *user);

static int
gw__bus_call(gw_conn *c, const char *op, json_t *args)
{
	int rc;

	if (args == NULL) {
		return -ENOMEM;
	}
	c->bus_start_ns = ls_now_ns();
	rc = bus_client_call(c->gw->bus, "auth", op, args,
	                     (int)c->gw->bus_timeout_ms, gw__bus_reply, c,
	                     &c->bus_id);
	json_decref(args);
	if (rc == 0) {
		c->bus_pending = true;
	}
	return rc;
}

static void
gw__refresh_reply(gw_conn *c, bus_status status, const char *body, size_t len)
{
	char exp[LS_RFC3339_LEN + 1];
	const char *why = "token refused";
	char *token = c->new_token;
	gw_grant g;
	bool parsed;

	c->refreshing = false;
	c->new_token = NULL;
	if (status != BUS_OK) {
		char msg[LS_ERROR_TEXT_MAX];
		ls_proto_code pc =
		        bus_reply_error(status, body, len, msg, sizeof(msg));
		free(token);
		if (pc == LS_PC_TIMEOUT) {
			/* The store timed out: transient, as on AuthRequest.
			 */
			pc = LS_PC_UNAVAILABLE;
		}
		if (pc == LS_PC_UNAVAILABLE || pc == LS_PC_SERVER_ERROR) {
			c->gw->m.bus_errors++;
		}
		gw_conn_send(
		        c, LS_T_REFRESH_RESPONSE,
		        json_pack("{s:b,s:o}", "ok", 0, "error",
		                  gw__error(ls_proto_code_name(pc), msg)));
		return;
	}
	parsed = token != NULL &&
	         gw_grant_parse(c->app_key, body, len, &g) == 0;

	if (parsed && c->new_token_revoked) {
		/* Revoked after the app server validated it. */
		gw_perms_free(g.perms, g.nperms);
		free(token);
		gw_conn_send(c, LS_T_REFRESH_RESPONSE,
		             json_pack("{s:b,s:o}", "ok", 0, "error",
		                       gw__error(ls_proto_code_name(
		                                         LS_PC_TOKEN_REVOKED),
		                                 "the token was revoked")));
		return;
	}
	if (parsed && g.web) {
		/* A web token authenticates only a connection whose
		 * signature verified; a refresh carries none. */
		gw_perms_free(g.perms, g.nperms);
		free(token);
		gw_conn_send(
		        c, LS_T_REFRESH_RESPONSE,
		        json_pack("{s:b,s:o}", "ok", 0, "error",
		                  gw__error("auth_failed",
		                            "a web token cannot refresh a "
		                            "connection")));
		return;
	}
	if (parsed) {
		/* The new token from now on: re-validations present it. */
		free(c->token);
		c->token = token;
		gw_liveauth_token_changed(c);
		c->expires_ms = g.expires_ms;
		/* Keeps the previous settings when out of memory. */
		(void)gw__take_history(c, body, len);
		gw__expires_text(c, exp);
		gw__arm_expiry(c);
		gw_conn_send(
		        c, LS_T_REFRESH_RESPONSE,
		        json_pack("{s:b,s:s}", "ok", 1, "expiresAt", exp));
		gw_conn_set_perms(c, g.perms, g.nperms);
		return;
	}
	free(token);
	why = "the token belongs to another account";
	gw_conn_send(c, LS_T_REFRESH_RESPONSE,
	             json_pack("{s:b,s:o}", "ok", 0, "error",
	                       gw__error("auth_failed", why)));
}

static void
gw__bus_reply(bus_status status, const char *body, size_t len, void *user)
{
	gw_conn *c = user;
	bool web = false;

	c->bus_pending = false;
	gw_metrics_bus(&c->gw->m, c->bus_start_ns);
	if (c->refreshing) {
		gw__refresh_reply(c, status, body, len);
		return;
	}
	if (status != BUS_OK) {
		gw__auth_bus_error(c, status, body, len);
		return;
	}
	if (c->state == GW_CS_AUTHING) {
		if (gw__take_grant(c, body, len, &web) != 0) {
			gw__auth_failed(c, "token refused");
			return;
		}
		if (gw__new_conn_id(c) != 0) {
			gw_conn_fail(c, LS_CLOSE_SERVER_ERROR, "server_error",
			             "no random bytes");
			return;
		}
		if (!web) {
			gw__auth_ok(c);
			return;
		}
		if (c->framing == GW_FRAMING_SSE) {
			/* A web token needs a signature over a WebSocket
			 * (docs/security.md). */
			gw__auth_failed(c, "a web token authenticates only a "
			                   "WebSocket connection");
			return;
		}
		c->state = GW_CS_WEBSIG;
		gw_conn_send(c, LS_T_WEBTOKEN_REQUEST,
		             json_pack("{s:s,s:s,s:s}", "appKey", c->app_key,
		                       "token", c->token, "connectionId",
		                       c->conn_id));
		return;
	}
	if (c->state == GW_CS_WEBCHECK) {
		if (len == 4 && memcmp(body, "true", 4) == 0) {
			gw__auth_ok(c);
		} else {
			gw__auth_failed(c, "web-token signature refused");
		}
	}
}

void
gw_conn_authenticate(gw_conn *c, const char *app_key, const char *token)
{
	c->app_key = strdup(app_key);
	c->token = strdup(token);
	if (c->app_key == NULL || c->token == NULL) {
		gw_conn_fail(c, LS_CLOSE_SERVER_ERROR, "server_error",
		             "out of memory");
		return;
	}
	gw_liveauth_token_changed(c);
	c->state = GW_CS_AUTHING;
	if (gw__bus_call(c, "validateToken",
	                 json_pack("[sss]", c->app_key, c->token, c->ip)) !=
	    0) {
		gw__unavailable(c, NULL);
	}
}

static void
gw__auth_request(gw_conn *c, const gw_envelope *e)
{
	gw_conn_authenticate(c, e->app_key, e->token);
}

static void
gw__webtoken_response(gw_conn *c, const gw_envelope *e)
{
	c->state = GW_CS_WEBCHECK;
	if (gw__bus_call(c, "validateWebToken",
	                 json_pack("[ssss]", c->app_key, c->token, c->conn_id,
	                           e->signature)) != 0) {
		gw__unavailable(c, NULL);
	}
}

/* ---- authenticated requests --------------------------------------------- */

bool
gw_conn_allowed(const gw_conn *c, const char *owner, const char *stream,
                int bit)
{
	return ls_perm_allows(c->perms, c->nperms, owner, stream, bit);
}

static void
gw__ack_done(int status, uint64_t offset, void *user)
{
	gw_ack *a = user;
	gw_conn *c = a->conn;

	if (c != NULL) {
		if (a->prev != NULL) {
			a->prev->next = a->next;
		} else {
			c->acks = a->next;
		}
		if (a->next != NULL) {
			a->next->prev = a->prev;
		}
		if (status == 0 && offset > 0) {
			gw_conn_send(c, LS_T_PUBLISH_RESPONSE,
			             json_pack("{s:O,s:b,s:I}", "requestId",
			                       a->request_id, "ok", 1,
			                       "offset", (json_int_t)offset));
		} else if (status == 0) {
			gw_conn_send(c, LS_T_PUBLISH_RESPONSE,
			             json_pack("{s:O,s:b}", "requestId",
			                       a->request_id, "ok", 1));
		} else {
			gw_conn_send(
			        c, LS_T_PUBLISH_RESPONSE,
			        json_pack("{s:O,s:b,s:o}", "requestId",
			                  a->request_id, "ok", 0, "error",
			                  gw__error("unavailable",
			                            ls_strerror(status))));
		}
	}
	json_decref(a->request_id);
	free(a);
}

/*
 * The publish rate of a connection (gateway.publish_rate per second,
 * bursts of gateway.publish_burst; docs/security.md). Over it, the publish
 * is refused: PublishResponse ok:false rate_limited when it carried a
 * requestId, else an Error rate_limited (the connection stays). A client
 * that ignores the refusals — more of them in one second than the rate —
 * is closed 4029.
 */
static bool
gw__publish_allowed(gw_conn *c, const gw_envelope *e)
{
	static ls_log_limit lim = LS_LOG_LIMIT_INIT(10000, 5);
	gw_gateway *gw = c->gw;
	int64_t now;

	if (gw->publish_rate <= 0) {
		return true;
	}
	now = ls_now_ms();
	if (now > c->pub_last_ms) {
		c->pub_tokens += (double)(now - c->pub_last_ms) *
		                 (double)gw->publish_rate / 1000.0;
		if (c->pub_tokens > (double)gw->publish_burst) {
			c->pub_tokens = (double)gw->publish_burst;
		}
		c->pub_last_ms = now;
	}
	if (c->pub_tokens >= 1.0) {
		c->pub_tokens -= 1.0;
		return true;
	}
	if (now - c->pub_window_ms >= 1000) {
		c->pub_window_ms = now;
		c->pub_refused = 0;
	}
	gw->m.dropped++;
	ls_log_ratelimited(&lim, LS_LOG_INFO, GW_LOG,
	                   "%s from %s: publish over %ld/s refused",
	                   c->conn_id, c->ip, gw->publish_rate);
	if (++c->pub_refused >
	    (gw->publish_rate > 10 ? gw->publish_rate : 10)) {
		gw_conn_error(c, LS_PC_RATE_LIMITED,
		              "kept publishing over %ld messages per second",
		              gw->publish_rate);
		return false;
	}
	if (e->request_id != NULL) {
		gw_conn_send(c, LS_T_PUBLISH_RESPONSE,
		             json_pack("{s:O,s:b,s:o}", "requestId",
		                       e->request_id, "ok", 0, "error",
		                       gw__error("rate_limited",
		                                 "over the publish rate; "
		                                 "slow down")));
	} else {
		gw_conn_send(c, LS_T_ERROR,
		             gw__error("rate_limited",
		                       "publish dropped: over the publish "
		                       "rate"));
	}
	return false;
}

static void
gw__publish(gw_conn *c, const gw_envelope *e)
{
	char topic[LS_APPKEY_MAX + LS_STREAM_MAX + 2];
	gw_ack *a = NULL;
	ps_history_cfg hist;
	char *payload;
	int rc;

	if (!gw_conn_allowed(c, e->owner, e->stream, LS_PERM_WRITE)) {
		gw_conn_fail(c, LS_CLOSE_FORBIDDEN, "forbidden",
		             "no write permission on %s:%s", e->owner,
		             e->stream);
		return;
	}
	if (!gw__publish_allowed(c, e)) {
		return;
	}
	payload = ls_json_dumps(e->data, NULL);
	if (payload == NULL) {
		gw_conn_fail(c, LS_CLOSE_SERVER_ERROR, "server_error",
		             "out of memory");
		return;
	}
	snprintf(topic, sizeof(topic), "%s:%s", e->owner, e->stream);
	if (e->request_id != NULL) {
		a = calloc(1, sizeof(*a));
		if (a == NULL) {
			free(payload);
			gw_conn_fail(c, LS_CLOSE_SERVER_ERROR, "server_error",
			             "out of memory");
			return;
		}
		a->conn = c;
		a->request_id = json_incref(e->request_id);
		a->next = c->acks;
		if (c->acks != NULL) {
			c->acks->prev = a;
		}
		c->acks = a;
	}
	c->gw->m.messages_in++;
	hist = gw_history_for(c, e->owner);
	rc = ps_fabric_publish_history(c->gw->fabric, topic, payload,
	                               strlen(payload), &hist,
	                               a ? gw__ack_done : NULL, a);
	free(payload);
	if (rc != 0 && a != NULL) {
		gw__ack_done(rc, 0, a); /* answers ok:false and frees */
	}
	gw_publisher_check(c);
}

static void
gw__subscribe(gw_conn *c, const gw_envelope *e)
{
	q_query *q = NULL;
	gw_sub *sub;
	ls_error err;
	int rc;

	if (!gw_conn_allowed(c, e->owner, e->stream, LS_PERM_READ)) {
		gw_conn_fail(c, LS_CLOSE_FORBIDDEN, "forbidden",
		             "no read permission on %s:%s", e->owner,
		             e->stream);
		return;
	}
	ls_error_clear(&err);
	if (e->query != NULL && q_query_compile(e->query, &q, &err) != 0) {
		gw_conn_send(c, LS_T_SUBSCRIBE_RESPONSE,
		             json_pack("{s:O,s:b,s:o}", "requestId",
		                       e->request_id, "ok", 0, "error",
		                       gw__error("invalid_query", err.text)));
		return;
	}
	rc = gw_sub_add(c, e->owner, e->stream, q, &sub);
	if (rc != 0) {
		char text[96];
		q_query_destroy(&q);
		snprintf(text, sizeof(text),
		         rc == LS_ETOOLARGE
		                 ? "at most %ld subscriptions per connection"
		                 : "cannot subscribe now",
		         c->gw->max_subscriptions);
		gw_conn_send(c, LS_T_SUBSCRIBE_RESPONSE,
		             json_pack("{s:O,s:b,s:o}", "requestId",
		                       e->request_id, "ok", 0, "error",
		                       gw__error(rc == LS_ETOOLARGE
		                                         ? "too_large"
		                                         : "server_error",
		                                 text)));
		return;
	}
	/* The response (with epoch and offset) follows once the history
	 * was read: gw_fanout.c, "Recovery". */
	gw_sub_start(sub, e->request_id, e->since_epoch, e->since_offset);
}

static void
gw__refresh(gw_conn *c, const gw_envelope *e)
{
	if (c->bus_pending) {
		gw_conn_send(c, LS_T_REFRESH_RESPONSE,
		             json_pack("{s:b,s:o}", "ok", 0, "error",
		                       gw__error("bad_request",
		                                 "a refresh is in progress")));
		return;
	}
	free(c->new_token);
	c->new_token = strdup(e->token);
	c->new_token_revoked = false;
	if (c->new_token == NULL) {
		gw_conn_fail(c, LS_CLOSE_SERVER_ERROR, "server_error",
		             "out of memory");
		return;
	}
	c->refreshing = true;
	if (gw__bus_call(c, "validateToken",
	                 json_pack("[sss]", c->app_key, e->token, c->ip)) !=
	    0) {
		c->refreshing = false;
		free(c->new_token);
		c->new_token = NULL;
		gw_conn_send(
		        c, LS_T_REFRESH_RESPONSE,
		        json_pack("{s:b,s:o}", "ok", 0, "error",
		                  gw__error("unavailable", "the app server is "
		                                           "unreachable")));
	}
}

/* ---- receiving ---------------------------------------------------------- */

static void
gw__handle(gw_conn *c, const char *text, size_t len)
{
	gw_envelope e;
	ls_error err;

	ls_error_clear(&err);
	if (gw_envelope_parse(text, len, &e, &err) != 0) {
		gw_conn_fail(c, LS_CLOSE_BAD_REQUEST, "bad_request", "%s",
		             err.text);
		return;
	}
	switch (c->state) {
	case GW_CS_NEW:
		if (e.t == LS_T_AUTH_REQUEST) {
			gw__auth_request(c, &e);
		} else {
			c->gw->m.auth_failed++;
			gw_conn_fail(c, LS_CLOSE_AUTH_FAILED, "auth_failed",
			             "authenticate first");
		}
		break;
	case GW_CS_WEBSIG:
		if (e.t == LS_T_WEBTOKEN_RESPONSE) {
			gw__webtoken_response(c, &e);
		} else {
			gw__auth_failed(c, "expected WebTokenResponse");
		}
		break;
	case GW_CS_AUTHING:
	case GW_CS_WEBCHECK:
		gw__auth_failed(c, "authentication in progress");
		break;
	case GW_CS_READY:
		switch (e.t) {
		case LS_T_DATA:
			gw__publish(c, &e);
			break;
		case LS_T_SUBSCRIBE_REQUEST:
			gw__subscribe(c, &e);
			break;
		case LS_T_UNSUBSCRIBE_REQUEST:
			gw_conn_send(
			        c, LS_T_UNSUBSCRIBE_RESPONSE,
			        json_pack("{s:s,s:b}", "subscriptionId",
			                  e.sub_id, "ok",
			                  gw_sub_remove(c, e.sub_id) == 0));
			break;
		case LS_T_REFRESH_REQUEST:
			gw__refresh(c, &e);
			break;
		default:
			gw_conn_fail(c, LS_CLOSE_BAD_REQUEST, "bad_request",
			             "unexpected message type %d", e.t);
			break;
		}
		break;
	case GW_CS_CLOSING:
		break;
	}
	gw_envelope_clear(&e);
}

int
gw_conn_receive(gw_conn *c, const void *in, size_t len)
{
	gw_gateway *gw = c->gw;
	size_t remaining = lws_remaining_packet_payload(c->wsi);
	bool last = lws_is_final_fragment(c->wsi) && remaining == 0;

	c->last_rx_ms = ls_now_ms();
	gw_read_ahead_consumed(c, len);
	if (c->state == GW_CS_CLOSING) {
		return 0; /* the rest of a refused message */
	}
	if (lws_frame_is_binary(c->wsi)) {
		gw_conn_fail(c, LS_CLOSE_BAD_REQUEST, "bad_request",
		             "binary frames are not part of the protocol");
		return 0;
	}
	if (c->rxlen + len + remaining > (size_t)gw->max_frame_bytes) {
		c->rxlen = 0;
		gw_conn_fail(c, LS_CLOSE_TOO_BIG, "too_large",
		             "message larger than %ld bytes",
		             gw->max_frame_bytes);
		return 0;
	}
	if (last && c->rxlen == 0) {
		gw__handle(c, in, len); /* whole message in one chunk */
		return 0;
	}
	if (c->rxlen + len > c->rxcap) {
		size_t cap = c->rxlen + len + remaining;
		char *rx;
		if (cap < 1024) {
			cap = 1024;
		}
		rx = realloc(c->rx, cap);
		if (rx == NULL) {
			gw_conn_fail(c, LS_CLOSE_SERVER_ERROR, "server_error",
			             "out of memory");
			return 0;
		}
		c->rx = rx;
		c->rxcap = cap;
	}
	memcpy(c->rx + c->rxlen, in, len);
	c->rxlen += len;
	if (last) {
		size_t n = c->rxlen;
		c->rxlen = 0;
		gw__handle(c, c->rx, n);
		if (c->rxcap > 4096) {
			/* Idle connections keep no large buffer. */
			free(c->rx);
			c->rx = NULL;
			c->rxcap = 0;
		}
	}
	return 0;
}

int
gw_conn_writeable(gw_conn *c)
{
	return gw_queue_write(c);
}
