/*
 * Server-Sent Events (docs/protocol.md, "Server-Sent Events"): one
 * read-only subscription on a streamed HTTP response, for networks and
 * clients without WebSocket (EventSource, curl -N).
 *
 * An SSE connection is a gw_conn with SSE framing: it authenticates with
 * the WebSocket's bus call, holds one subscription, and shares the
 * fan-out, the bounded queue, the coalescing writer, the keepalive sweep
 * and live authorization with WebSocket connections. Only the bytes
 * differ: the writer frames a queued delivery as "event: data" (gw_fanout.c)
 * and this file turns control messages into events. Until the stream
 * starts (the token accepted, the subscription made) every error is an
 * ordinary HTTP answer with the error's status and the result envelope;
 * after, it is "event: error" followed by the end of the response.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "gw_internal.h"
#include "gw_iplimit.h"
#include "ls_time.h"
#include "ls_log.h"

#define GW_SSE_ORIGIN_MAX  256
#define GW_SSE_LAST_ID_MAX 96

struct gw_sse {
	char owner[LS_APPKEY_MAX + 1];
	char stream[LS_STREAM_MAX + 1];
	q_query *query;                 /* until the subscription takes it */
	char origin[GW_SSE_ORIGIN_MAX]; /* echoed for CORS; "" none */
	/* Last-Event-ID / lastEventId: recover after it (since) */
	bool since;
	char since_epoch[LS_EPOCH_MAX + 1];
	uint64_t since_offset;
	/* the stream's history epoch, from the subscription's answer: the
	 * events' ids are epoch:offset ("" no history) */
	char epoch[LS_EPOCH_MAX + 1];
	unsigned status; /* 0 undecided; 200 streams; else an error answer */
	bool started;    /* the response head is written */
	bool head;       /* a HEAD request: the head only */
};

void
gw_sse_free(gw_conn *c)
{
	if (c->sse == NULL) {
		return;
	}
	q_query_destroy(&c->sse->query);
	free(c->sse);
	c->sse = NULL;
	c->gw->nsse--;
}

const char *
gw_sse_epoch(const gw_conn *c)
{
	return c->sse->epoch;
}

bool
gw_sse_started(const gw_conn *c)
{
	return c->framing != GW_FRAMING_SSE || c->sse->started;
}

/* ---- encoding ----------------------------------------------------------- */

static gw_buf *
gw__event(const char *name, json_t *m)
{
	size_t n = json_dumpb(m, NULL, 0, JSON_COMPACT);
	size_t pre = strlen("event: ") + strlen(name) + strlen("\ndata: ");
	gw_buf *b;

	/* Compact JSON has no raw line breaks: one data line. */
	b = n ? gw_buf_new(NULL, pre + n + 2) : NULL;
	if (b == NULL) {
		return NULL;
	}
	snprintf(b->data, pre + 1, "event: %s\ndata: ", name);
	json_dumpb(m, b->data + pre, n, JSON_COMPACT);
	b->data[pre + n] = '\n';
	b->data[pre + n + 1] = '\n';
	return b;
}

gw_buf *
gw_sse_encode(gw_conn *c, int t, json_t *m)
{
	gw_sse *s = c->sse;

	if (s->status == 0) {
		/* Before the stream: only an error, as an HTTP answer. */
		const char *code;
		json_t *root;
		gw_buf *b;
		size_t n;
		unsigned status;

		if (t != LS_T_ERROR) {
			return NULL;
		}
		code = json_string_value(json_object_get(m, "code"));
		status = code ? ls_proto_http_status(code) : 0;
		s->status = status ? status : 500;
		root = json_pack("{s:n,s:[O]}", "data", "errors", m);
		n = root ? json_dumpb(root, NULL, 0, JSON_COMPACT) : 0;
		b = n ? gw_buf_new(NULL, n) : NULL;
		if (b != NULL) {
			json_dumpb(root, b->data, n, JSON_COMPACT);
		}
		json_decref(root);
		return b;
	}
	switch (t) {
	case LS_T_SUBSCRIBE_RESPONSE: {
		const char *epoch =
		        json_string_value(json_object_get(m, "epoch"));
		if (epoch != NULL && s->epoch[0] == '\0') {
			snprintf(s->epoch, sizeof(s->epoch), "%s", epoch);
		}
		return gw__event("subscribed", m);
	}
	case LS_T_ERROR:
		return gw__event("error", m);
	default:
		/* AuthResponse, PermissionsChanged, ...: nothing on SSE
		 * (SubscriptionEnded is an error: gw_sub_end). */
		return NULL;
	}
}

/* ---- the response head -------------------------------------------------- */

static int
gw__hdr(struct lws *wsi, const char *name, const char *value,
        unsigned char **p, unsigned char *end)
{
	return lws_add_http_header_by_name(wsi, (const unsigned char *)name,
	                                   (const unsigned char *)value,
	                                   (int)strlen(value), p, end);
}

int
gw_sse_write_head(gw_conn *c)
{
	gw_sse *s = c->sse;
	unsigned char hdr[LWS_PRE + 1024];
	unsigned char *p = hdr + LWS_PRE, *end = hdr + sizeof(hdr) - 1;
	bool stream;

	if (s->status == 0) {
		/* Authenticating; or closed before anything was decided
		 * (shutdown): nothing to say. */
		return c->state == GW_CS_CLOSING ? -1 : 0;
	}
	stream = s->status == 200;
	if (lws_add_http_common_headers(c->wsi, s->status,
	                                stream ? "text/event-stream"
	                                       : "application/json",
	                                stream ? LWS_ILLEGAL_HTTP_CONTENT_LEN
	                                       : (lws_filepos_t)c->qbytes,
	                                &p, end) ||
	    gw__hdr(c->wsi, "cache-control:", stream ? "no-cache" : "no-store",
	            &p, end) ||
	    gw__hdr(c->wsi, "x-content-type-options:", "nosniff", &p, end) ||
	    /* nginx and others buffer responses unless told not to */
	    (stream && gw__hdr(c->wsi, "x-accel-buffering:", "no", &p, end)) ||
	    (s->origin[0] != '\0' &&
	     (gw__hdr(c->wsi, "access-control-allow-origin:", s->origin, &p,
	              end) ||
	      gw__hdr(c->wsi, "vary:", "Origin", &p, end))) ||
	    /* An error answer is the last on its connection; a stream
	     * has no length, so lws says close itself. */
	    (!stream && lws_add_http_header_by_token(
	                        c->wsi, WSI_TOKEN_CONNECTION,
	                        (const unsigned char *)"close", 5, &p, end)) ||
	    lws_finalize_write_http_header(c->wsi, hdr + LWS_PRE, &p, end)) {
		return -1;
	}
	s->started = true;
	if (stream) {
		/* What lws_http_mark_sse does for HTTP/1.1, without its
		 * h2-only step (which logs an error on lws 4.1): the request's
		 * header buffer goes back to lws's pool (nothing reads it any
		 * more), and no lws timeout applies to a response that stays
		 * open. */
		lws_http_headers_detach(c->wsi);
		lws_set_timeout(c->wsi, NO_PENDING_TIMEOUT, 0);
	}
	if (s->head) {
		gw_queue_clear(c);
		gw_conn_close(c, LS_CLOSE_NORMAL);
	}
	lws_callback_on_writable(c->wsi);
	return 0;
}

/* ---- the request -------------------------------------------------------- */

/* "epoch:offset" as the stream's events carry it in their id. */
static bool
gw__parse_last_id(gw_sse *s, const char *text)
{
	const char *colon = strchr(text, ':');
	char *end;
	size_t n;

	if (colon == NULL || colon[1] < '0' || colon[1] > '9') {
		return false;
	}
	n = (size_t)(colon - text);
	if (n == 0 || n > LS_EPOCH_MAX) {
		return false;
	}
	memcpy(s->since_epoch, text, n);
	s->since_epoch[n] = '\0';
	if (!ls_valid_epoch(s->since_epoch)) {
		return false;
	}
	errno = 0;
	s->since_offset = strtoull(colon + 1, &end, 10);
	if (errno != 0 || *end != '\0') {
		return false;
	}
	s->since = true;
	return true;
}

static const char *
gw__param(json_t *params, const char *key, bool *bad)
{
	json_t *v = json_object_get(params, key);

	if (v != NULL && !json_is_string(v)) {
		*bad = true;
	}
	return json_string_value(v);
}

int
gw_sse_open(gw_gateway *gw, struct lws *wsi, gw_pss *pss, const char *owner,
            const char *stream, json_t *params, const char *ip)
{
	char auth[LS_TOKEN_MAX + 16], origin[GW_SSE_ORIGIN_MAX];
	char last_id[GW_SSE_LAST_ID_MAX + 2];
	const char *token = NULL, *app, *query, *last;
	bool bad = false;
	ls_error err;
	gw_conn *c;
	gw_sse *s;
	gw_ipverdict admit;
	int n;

	/* Connections per client IP, as for WebSockets (docs/security.md). */
	admit = gw->shared ? gw_iplimit_admit(gw->shared->conns_by_ip, ip,
	                                      ls_now_ms())
	                   : GW_IP_OK;
	c = gw_conn_new(gw, wsi);
	if (c == NULL) {
		return -1;
	}
	s = calloc(1, sizeof(*s));
	if (s == NULL) {
		gw_conn_destroy(c);
		return -1;
	}
	c->framing = GW_FRAMING_SSE;
	c->sse = s;
	gw->nsse++;
	pss->conn = c;
	snprintf(c->ip, sizeof(c->ip), "%s", ip);
	snprintf(s->owner, sizeof(s->owner), "%s", owner);
	snprintf(s->stream, sizeof(s->stream), "%s", stream);
	s->head = lws_hdr_total_length(wsi, WSI_TOKEN_HEAD_URI) > 0;

	/* The browser's origin: the WebSocket's allow-list applies. */
	if (lws_hdr_copy(wsi, origin, sizeof(origin), WSI_TOKEN_ORIGIN) > 0) {
		if (!gw_origin_allowed(gw, origin)) {
			gw_conn_fail(c, LS_CLOSE_FORBIDDEN, "forbidden",
			             "origin not allowed");
			return 0;
		}
		snprintf(s->origin, sizeof(s->origin), "%s", origin);
	}
	if (gw->stopping) {
		gw_conn_fail(c, LS_CLOSE_UNAVAILABLE, "unavailable",
		             "shutting down; try again later");
		return 0;
	}
	if (admit != GW_IP_OK) {
		gw->m.connections_rejected++;
		gw_conn_fail(c, LS_CLOSE_RATE_LIMITED, "rate_limited",
		             admit == GW_IP_TOO_MANY
		                     ? "too many connections from this address"
		                     : "too many new connections from this "
		                       "address");
		return 0;
	}

	/* The token: Authorization: Bearer, or the token parameter. */
	n = lws_hdr_copy(wsi, auth, sizeof(auth),
	                 WSI_TOKEN_HTTP_AUTHORIZATION);
	if (n > 0) {
		if (n <= 7 || strncasecmp(auth, "Bearer ", 7) != 0) {
			c->gw->m.auth_failed++;
			gw_conn_fail(c, LS_CLOSE_AUTH_FAILED, "auth_failed",
			             "Authorization: expected Bearer <token>");
			return 0;
		}
		token = auth + 7;
	}
	{
		const char *t = gw__param(params, "token", &bad);
		if (t != NULL && token != NULL && strcmp(t, token) != 0) {
			gw_conn_fail(c, LS_CLOSE_BAD_REQUEST, "bad_request",
			             "two different tokens (header and "
			             "parameter)");
			return 0;
		}
		if (token == NULL) {
			token = t;
		}
	}
	if (token == NULL || token[0] == '\0' ||
	    strlen(token) > LS_TOKEN_MAX) {
		c->gw->m.auth_failed++;
		gw_conn_fail(c, LS_CLOSE_AUTH_FAILED, "auth_failed",
		             "a token is required: Authorization: Bearer "
		             "<token>, or the token parameter");
		return 0;
	}
	app = gw__param(params, "appKey", &bad);
	if (app == NULL) {
		app = owner; /* as the HTTP publish */
	}
	query = gw__param(params, "query", &bad);
	last = gw__param(params, "lastEventId", &bad);
	if (bad) {
		gw_conn_fail(c, LS_CLOSE_BAD_REQUEST, "bad_request",
		             "a parameter is given twice");
		return 0;
	}
	if (!ls_valid_app_key(app)) {
		gw_conn_fail(c, LS_CLOSE_BAD_REQUEST, "bad_request",
		             "appKey: not a valid app key");
		return 0;
	}
	/* EventSource sends the id of the last event it saw again. */
	n = lws_hdr_custom_copy(wsi, last_id, sizeof(last_id),
	                        "last-event-id:", 14);
	if (n > 0) {
		last = last_id;
	} else if (n == -1 &&
	           lws_hdr_custom_length(wsi, "last-event-id:", 14) > 0) {
		gw_conn_fail(c, LS_CLOSE_BAD_REQUEST, "bad_request",
		             "Last-Event-ID: too long");
		return 0;
	}
	if (last != NULL && last[0] != '\0' && !gw__parse_last_id(s, last)) {
		gw_conn_fail(c, LS_CLOSE_BAD_REQUEST, "bad_request",
		             "Last-Event-ID: expected epoch:offset");
		return 0;
	}
	ls_error_clear(&err);
	if (query != NULL &&
	    q_query_compile_text(query, strlen(query), &s->query, &err) != 0) {
		gw_conn_fail(c, LS_CLOSE_BAD_REQUEST,
		             ls_proto_code_name(LS_PC_INVALID_QUERY), "%s",
		             err.text);
		return 0;
	}
	gw_conn_authenticate(c, app, token);
	return 0;
}

void
gw_sse_ready(gw_conn *c)
{
	gw_sse *s = c->sse;
	gw_sub *sub;
	int rc;

	if (!gw_conn_allowed(c, s->owner, s->stream, LS_PERM_READ)) {
		gw_conn_fail(c, LS_CLOSE_FORBIDDEN, "forbidden",
		             "no read permission on %s:%s", s->owner,
		             s->stream);
		return;
	}
	if (s->head) {
		/* What a GET would answer, without subscribing. */
		s->status = 200;
		lws_callback_on_writable(c->wsi);
		return;
	}
	rc = gw_sub_add(c, s->owner, s->stream, s->query, &sub);
	if (rc != 0) {
		gw_conn_fail(c, LS_CLOSE_SERVER_ERROR, "server_error",
		             "cannot subscribe now");
		return;
	}
	s->query = NULL; /* the subscription's now */
	s->status = 200;
	/* The WebSocket's subscribe path: the answer (event: subscribed)
	 * once the history was read, then what Last-Event-ID missed, then
	 * live messages (gw_fanout.c, "Recovery"). */
	gw_sub_start(sub, json_null(), s->since ? s->since_epoch : NULL,
	             s->since_offset);
	/* The head goes out even when the queue stays empty. */
	lws_callback_on_writable(c->wsi);
}
