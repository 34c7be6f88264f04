/*
 * HTTP endpoints of docs/protocol.md (HTTP) on the gateway's port(s): token
 * issue, the service bridge, backend publish, health, readiness, metrics and
 * the static browser client.
 *
 * Every JSON answer is the result envelope {"data", "errors"}; a valid
 * `callback` parameter on a GET wraps it as JSONP. Answers that need the
 * bus or the fabric are asynchronous: the request keeps its state in a
 * gw_http until the reply arrives, then asks for a writeable callback.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gw_client.h"
#include "gw_embed.h"
#include "gw_internal.h"
#include "gw_json.h"
#include "gw_limit.h"
#include "gw_params.h"
#include "ls_log.h"
#include "ls_proto.h"
#include "ls_time.h"

#define GW_ARG_MAX     8192
#define GW_SERVICE_MAX 64
#define GW_BODY_CHUNK  1024 /* first body allocation; doubled as needed */

/* Headers of every static file (docs/security.md). The demo page loads
 * its scripts and styles from this origin, talks to this origin's HTTP
 * and WebSocket endpoints, and is never framed. */
#define GW_CSP                                                                \
	"default-src 'self'; script-src 'self'; style-src 'self'; img-src "   \
	"'self' data:; connect-src 'self' ws: wss:; object-src 'none'; "      \
	"base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
#define GW_STATIC_HEADERS                                                     \
	"x-content-type-options: nosniff\x0d\x0a"                             \
	"x-frame-options: DENY\x0d\x0a"                                       \
	"referrer-policy: no-referrer\x0d\x0a"                                \
	"content-security-policy: " GW_CSP "\x0d\x0a"
/* The browser client may be loaded by pages of any origin. */
#define GW_CORS_HEADER "access-control-allow-origin: *\x0d\x0a"

typedef enum gw_http_kind {
	GW_H_NONE,
	GW_H_SERVICE, /* bridge (including auth/generatetoken) */
	GW_H_PUBLISH,
	GW_H_HISTORY,
} gw_http_kind;

typedef enum gw_http_phase {
	GW_HP_WAIT,    /* body or a reply pending */
	GW_HP_READY,   /* response ready, headers not sent */
	GW_HP_HEADERS, /* headers sent, body next */
	GW_HP_DONE,
} gw_http_phase;

/* Detachable context of a fabric publish (it may outlive the request). */
typedef struct gw_http_pub {
	gw_http *h;
} gw_http_pub;

struct gw_http {
	gw_gateway *gw;
	struct lws *wsi;
	gw_http_kind kind;
	gw_http_phase phase;
	bool post;
	bool head; /* HEAD: the headers of the GET answer, no body */
	bool tls;
	char ip[GW_IP_MAX];
	char service[GW_SERVICE_MAX];
	char op[GW_SERVICE_MAX];
	char owner[LS_APPKEY_MAX + 1];
	char stream[LS_STREAM_MAX + 1];
	uint64_t since; /* history */
	size_t limit;
	char callback[65];
	json_t *params; /* query-string (and form/JSON body) parameters */
	char *body;
	size_t blen, bcap, bmax; /* bcap counts in gw->shared->http_buffered */
	bool too_large;
	unsigned body_status; /* 413 or 503 once too_large */
	bool close_after;     /* the rest of the request is not read: close */
	int64_t deadline_ms;  /* monotonic: the body must have arrived */
	const char *retry_after; /* Retry-After header value, or NULL */
	char retry_buf[16];
	/* a key-hashing call (auth.issue): counted in
	 * gw->shared->token_inflight, its failure in the rate limits of ip and
	 * key_app */
	bool issuing;
	char key_app[LS_APPKEY_MAX + 1];
	char token[LS_TOKEN_MAX + 1];
	/* pending work */
	uint64_t bus_id;
	bool bus_pending;
	int64_t start_ns;
	bool plain; /* bridge type=plain */
	/* a demo file served from the binary: its ETag (cache validator) */
	const char *etag;
	gw_http_pub *pub;
	/* response */
	unsigned status;
	const char *ctype;
	const gw_client_file *client; /* a client file's headers */
	bool gzipped;
	unsigned char *resp; /* LWS_PRE bytes of room, then the body */
	size_t resp_len;
};

void
gw_http_free(gw_http **ph)
{
	gw_http *h = *ph;

	if (h == NULL) {
		return;
	}
	if (h->bus_pending) {
		bus_client_cancel(h->gw->bus, h->bus_id);
	}
	if (h->issuing) {
		h->gw->shared->token_inflight--;
	}
	if (h->pub != NULL) {
		h->pub->h = NULL;
	}
	json_decref(h->params);
	h->gw->shared->http_buffered -= h->bcap;
	free(h->body);
	free(h->resp);
	free(h);
	*ph = NULL;
}

/* Seconds a request waiting for the bus is kept past the bus deadline. */
#define GW__BUS_GRACE_S 5

/* ---- responses ---------------------------------------------------------- */

static void
gw__respond_raw(gw_http *h, unsigned status, const char *ctype,
                const char *body, size_t len)
{
	free(h->resp);
	h->resp = malloc(LWS_PRE + len + 1);
	if (h->resp == NULL) {
		h->resp_len = 0;
		status = 500;
	} else {
		memcpy(h->resp + LWS_PRE, body, len);
		h->resp_len = len;
	}
	h->status = status;
	h->ctype = ctype;
	h->phase = GW_HP_READY;
	lws_callback_on_writable(h->wsi);
}

/* The result envelope; takes data (may be NULL). */
static void
gw__respond(gw_http *h, unsigned status, json_t *data, const char *code,
            const char *message)
{
	json_t *errors = json_array();
	json_t *root;
	char *text;

	if (code != NULL) {
		char msg[512];
		/* Bus errors may quote client input, possibly cut. */
		snprintf(msg, sizeof(msg), "%s", message ? message : code);
		gw_utf8_sanitize(msg);
		json_array_append_new(errors, json_pack("{s:s,s:s}", "message",
		                                        msg, "code", code));
	}
	root = json_pack("{s:o,s:o}", "data", data ? data : json_null(),
	                 "errors", errors);
	text = root ? json_dumps(root, JSON_COMPACT) : NULL;
	json_decref(root);
	if (text == NULL) {
		gw__respond_raw(h, 500, "application/json", "", 0);
		return;
	}
	if (h->callback[0] != '\0') {
		/* JSONP: the status travels in the envelope; a script tag
		 * ignores the body of an error status. */
		char *js = NULL;
		int n = asprintf(&js, "%s(%s);", h->callback, text);
		if (n >= 0) {
			gw__respond_raw(h, 200, "application/javascript", js,
			                (size_t)n);
			free(js);
			free(text);
			return;
		}
	}
	gw__respond_raw(h, status, "application/json", text, strlen(text));
	free(text);
}

static void
gw__error(gw_http *h, unsigned status, const char *code, const char *msg)
{
	gw__respond(h, status, NULL, code, msg);
}

/* An error answer with its code's HTTP status (common/ls_proto.c). */
static void
gw__fail(gw_http *h, const char *code, const char *msg)
{
	gw__error(h, ls_proto_http_status(code), code, msg);
}

static int gw__static_header_lines(gw_http *h, unsigned char **p,
                                   unsigned char *end);

/* The headers of a demo file from the binary: its ETag, static headers. */
static int
gw__demo_headers(gw_http *h, unsigned char **p, unsigned char *end)
{
	if (lws_add_http_header_by_name(h->wsi, (const unsigned char *)"etag:",
	                                (const unsigned char *)h->etag,
	                                (int)strlen(h->etag), p, end)) {
		return -1;
	}
	return gw__static_header_lines(h, p, end);
}

/* The headers of a client file: cache validators, CORS, static headers. */
static int
gw__client_headers(gw_http *h, unsigned char **p, unsigned char *end)
{
	const gw_client_file *f = h->client;
	static const struct {
		const char *name, *value;
	} fixed[] = {
		{ "access-control-allow-origin:", "*" },
		{ "vary:", "Accept-Encoding" },
	};

	if (lws_add_http_header_by_name(h->wsi, (const unsigned char *)"etag:",
	                                (const unsigned char *)f->etag,
	                                (int)strlen(f->etag), p, end) ||
	    lws_add_http_header_by_name(
	            h->wsi, (const unsigned char *)"last-modified:",
	            (const unsigned char *)f->last_modified,
	            (int)strlen(f->last_modified), p, end) ||
	    (h->gzipped &&
	     lws_add_http_header_by_name(
	             h->wsi, (const unsigned char *)"content-encoding:",
	             (const unsigned char *)"gzip", 4, p, end))) {
		return -1;
	}
	for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) {
		if (lws_add_http_header_by_name(
		            h->wsi, (const unsigned char *)fixed[i].name,
		            (const unsigned char *)fixed[i].value,
		            (int)strlen(fixed[i].value), p, end)) {
			return -1;
		}
	}
	return gw__static_header_lines(h, p, end);
}

/*
 * GW_STATIC_HEADERS, "name: value\r\n" lines, for an answer from memory
 * (nosniff excepted: the writer adds that one itself).
 */
static int
gw__static_header_lines(gw_http *h, unsigned char **p, unsigned char *end)
{
	const char *lines = GW_STATIC_HEADERS;

	while (*lines != '\0') {
		const char *colon = strchr(lines, ':');
		const char *eol = strstr(lines, "\r\n");
		char name[64];
		size_t nl = (size_t)(colon - lines) + 1;

		if (nl < sizeof(name) &&
		    strncmp(lines, "x-content-type-options:", nl) != 0) {
			memcpy(name, lines, nl);
			name[nl] = '\0';
			if (lws_add_http_header_by_name(
			            h->wsi, (const unsigned char *)name,
			            (const unsigned char *)colon + 2,
			            (int)(eol - colon - 2), p, end)) {
				return -1;
			}
		}
		lines = eol + 2;
	}
	return 0;
}

int
gw_http_writeable(gw_http *h)
{
	unsigned char hdr[LWS_PRE + 2048];
	unsigned char *p = hdr + LWS_PRE, *end = hdr + sizeof(hdr) - 1;
	const char *cc;

	switch (h->phase) {
	case GW_HP_READY:
		/* A client file may be cached, if revalidated; nothing
		 * else may. */
		cc = h->client || h->etag ? "no-cache" : "no-store";
		if (lws_add_http_common_headers(h->wsi, h->status, h->ctype,
		                                h->resp_len, &p, end) ||
		    lws_add_http_header_by_name(
		            h->wsi, (const unsigned char *)"cache-control:",
		            (const unsigned char *)cc, (int)strlen(cc), &p,
		            end) ||
		    (h->client != NULL && gw__client_headers(h, &p, end)) ||
		    (h->etag != NULL && gw__demo_headers(h, &p, end)) ||
		    lws_add_http_header_by_name(
		            h->wsi,
		            (const unsigned char *)"x-content-type-options:",
		            (const unsigned char *)"nosniff", 7, &p, end) ||
		    (h->retry_after != NULL &&
		     lws_add_http_header_by_name(
		             h->wsi, (const unsigned char *)"retry-after:",
		             (const unsigned char *)h->retry_after,
		             (int)strlen(h->retry_after), &p, end)) ||
		    (h->close_after &&
		     lws_add_http_header_by_token(
		             h->wsi, WSI_TOKEN_CONNECTION,
		             (const unsigned char *)"close", 5, &p, end)) ||
		    lws_finalize_write_http_header(h->wsi, hdr + LWS_PRE, &p,
		                                   end)) {
			return -1;
		}
		h->phase = GW_HP_HEADERS;
		lws_callback_on_writable(h->wsi);
		return 0;
	case GW_HP_HEADERS:
		h->phase = GW_HP_DONE;
		if (h->head) {
			return h->close_after ||
			                       lws_http_transaction_completed(
			                               h->wsi)
			               ? -1
			               : 0;
		}
		if (lws_write(h->wsi, h->resp + LWS_PRE, h->resp_len,
		              LWS_WRITE_HTTP_FINAL) < (int)h->resp_len) {
			return -1;
		}
		if (h->close_after) {
			/* Unread body bytes must never be parsed as the
			 * next request. */
			return -1;
		}
		return lws_http_transaction_completed(h->wsi) ? -1 : 0;
	default:
		return 0;
	}
}

/* ---- parameters --------------------------------------------------------- */

static bool
gw__valid_callback(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 64) {
		return false;
	}
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		bool alpha = (c >= 'a' && c <= 'z') ||
		             (c >= 'A' && c <= 'Z') || c == '_' || c == '$';
		if (!alpha &&
		    !(i > 0 && ((c >= '0' && c <= '9') || c == '.'))) {
			return false;
		}
	}
	return true;
}

/* The query string: lws hands over each fragment URL-decoded. Decoded
 * control characters make the request a 400 (docs/protocol.md (HTTP)). */
static int
gw__query_params(gw_http *h, ls_error *err)
{
	char *buf = malloc(GW_ARG_MAX);
	int rc = 0, n;

	if (buf == NULL) {
		return ls_error_set(err, -ENOMEM, "out of memory");
	}
	/* lws's fragments are bounded by its header buffer and count */
	for (int i = 0; rc == 0; i++) {
		n = lws_hdr_copy_fragment(h->wsi, buf, GW_ARG_MAX,
		                          WSI_TOKEN_HTTP_URI_ARGS, i);
		if (n < 0) {
			/* no such fragment, or one too long for buf */
			if (lws_hdr_fragment_length(
			            h->wsi, WSI_TOKEN_HTTP_URI_ARGS, i) > 0) {
				rc = ls_error_set(err, LS_EBADREQUEST,
				                  "a parameter is too long");
			}
			break;
		}
		if (gw_params_has_ctl(buf, (size_t)n)) {
			rc = ls_error_set(err, LS_EBADREQUEST,
			                  "control character in the query "
			                  "string");
			break;
		}
		rc = gw_params_add_pair(h->params, buf, false, err);
	}
	free(buf);
	return rc;
}

static const char *
gw__str(gw_http *h, const char *key)
{
	return json_string_value(json_object_get(h->params, key));
}

/* ---- bus replies -------------------------------------------------------- */

/*
 * The request now waits for the bus, which answers every call by its
 * deadline (a reply, or a timeout). lws would otherwise drop the
 * connection at its own content timeout, without a response, while the
 * bus call is still pending; so wait for the bus deadline, plus a grace.
 */
static void
gw__await_bus(gw_http *h, int timeout_ms)
{
	lws_set_timeout(h->wsi, PENDING_TIMEOUT_HTTP_CONTENT,
	                (timeout_ms + 999) / 1000 + GW__BUS_GRACE_S);
}

/*
 * Answer a failed bus call with the code the bus carried (docs/bus.md,
 * "Errors") and that code's HTTP status; never a guess from the text.
 */
static bool
gw__bus_failed(gw_http *h, bus_status status, const char *body, size_t len)
{
	char msg[LS_ERROR_TEXT_MAX];
	ls_proto_code pc;
	const char *code;

	if (status == BUS_OK) {
		return false;
	}
	pc = bus_reply_error(status, body, len, msg, sizeof(msg));
	code = ls_proto_code_name(pc);
	if (pc == LS_PC_UNAVAILABLE || pc == LS_PC_TIMEOUT ||
	    pc == LS_PC_SERVER_ERROR) {
		h->gw->m.bus_errors++;
	} else if (pc == LS_PC_AUTH_FAILED || pc == LS_PC_TOKEN_EXPIRED ||
	           pc == LS_PC_TOKEN_REVOKED) {
		h->gw->m.auth_failed++;
	}
	if (pc == LS_PC_AUTH_FAILED && h->issuing) {
		/* a wrong key: counts against the address and the app key
		 * (docs/security.md) */
		gw_shared_token_fail(h->gw->shared, h->ip, h->key_app,
		                     ls_now_ms());
	}
	gw__fail(h, code, msg);
	return true;
}

/* The key-hashing call of h is over. */
static void
gw__issued(gw_http *h)
{
	if (h->issuing) {
		h->issuing = false;
		h->gw->shared->token_inflight--;
	}
}

static void
gw__service_reply(bus_status status, const char *body, size_t len, void *user)
{
	gw_http *h = user;
	json_t *data;

	h->bus_pending = false;
	gw_metrics_bus(&h->gw->m, h->start_ns);
	if (gw__bus_failed(h, status, body, len)) {
		gw__issued(h);
		return;
	}
	gw__issued(h);
	data = json_loadb(body, len, JSON_DECODE_ANY, NULL);
	if (data == NULL) {
		data = json_stringn(body, len);
	}
	if (h->plain) {
		if (json_is_string(data)) {
			gw__respond_raw(h, 200, "text/plain; charset=utf-8",
			                json_string_value(data),
			                json_string_length(data));
		} else {
			gw__respond_raw(h, 200, "text/plain; charset=utf-8",
			                body, len);
		}
		json_decref(data);
		return;
	}
	gw__respond(h, 200, data, NULL, NULL);
}

/* ---- service bridge ----------------------------------------------------- */

static bool
gw__allowlisted(gw_gateway *gw, const char *service, const char *op)
{
	char name[2 * GW_SERVICE_MAX + 2];

	snprintf(name, sizeof(name), "%s/%s", service, op);
	for (size_t i = 0; i < gw->service_allowlist.count; i++) {
		/* case-sensitive, as HAProxy's path rules are */
		if (strcmp(gw->service_allowlist.items[i], name) == 0) {
			return true;
		}
	}
	return false;
}

/*
 * May h hash a private key now? Failures are rate-limited per client IP
 * and per app key (429 with Retry-After), and the calls in flight are
 * bounded (503 at once when full), so a brute force neither guesses fast
 * nor queues work in front of other clients (docs/security.md).
 */
static int
gw__token_admit(gw_http *h, json_t *args)
{
	gw_gateway *gw = h->gw;
	const char *app = json_string_value(json_array_get(args, 0));
	int64_t now = ls_now_ms();
	bool by_ip;
	int wait;

	snprintf(h->key_app, sizeof(h->key_app), "%s",
	         app != NULL && ls_valid_app_key(app) ? app : "(invalid)");
	wait = gw_shared_token_check(gw->shared, h->ip, h->key_app, now,
	                             &by_ip);
	if (wait > 0) {
		static ls_log_limit lim = LS_LOG_LIMIT_INIT(10000, 3);
		gw->m.token_rate_limited++;
		ls_log_ratelimited(&lim, LS_LOG_INFO, GW_LOG,
		                   "token endpoint: too many failures from %s "
		                   "for %s: rate-limited",
		                   h->ip, h->key_app);
		snprintf(h->retry_buf, sizeof(h->retry_buf), "%d", wait);
		h->retry_after = h->retry_buf;
		gw__fail(h, "rate_limited",
		         by_ip ? "too many failed token requests from this "
		                 "address; retry later"
		               : "too many failed token requests for this "
		                 "app key; retry later");
		return -1;
	}
	if (gw->shared->token_inflight >= gw->token_max_inflight) {
		static ls_log_limit lim = LS_LOG_LIMIT_INIT(10000, 3);
		gw->m.token_busy++;
		ls_log_ratelimited(&lim, LS_LOG_INFO, GW_LOG,
		                   "token endpoint: %ld requests in flight, "
		                   "refusing more",
		                   gw->token_max_inflight);
		h->retry_after = "1";
		gw__fail(h, "unavailable",
		         "token issuing is busy; retry later");
		return -1;
	}
	gw->shared->token_inflight++;
	h->issuing = true;
	return 0;
}

static int
gw__service_dispatch(gw_http *h)
{
	gw_gateway *gw = h->gw;
	bool token = strcmp(h->service, "auth") == 0 &&
	             strcmp(h->op, "generatetoken") == 0;
	const char *op = token ? "generateToken" : h->op;
	/* operations that hash a private key: workers of their own */
	bool hashing = strcmp(h->service, "auth") == 0 &&
	               (strcmp(op, "generateToken") == 0 ||
	                strcmp(op, "revokeToken") == 0);
	json_t *type = json_object_get(h->params, "type");
	json_t *args = json_object_get(h->params, "args");
	long long timeout = gw->bus_timeout_ms;
	ls_error err;

	if (token && !gw->token_http_remote && !h->tls &&
	    !gw_ip_is_loopback(h->ip)) {
		gw__fail(h, "forbidden",
		         "tokens are issued over plain HTTP only to loopback "
		         "clients; use HTTPS");
		return 0;
	}
	if (type != NULL && (!json_is_string(type) ||
	                     (strcmp(json_string_value(type), "plain") != 0 &&
	                      strcmp(json_string_value(type), "json") != 0))) {
		gw__fail(h, "bad_request", "type: expected json or plain");
		return 0;
	}
	h->plain =
	        type != NULL && strcmp(json_string_value(type), "plain") == 0;
	if (gw_params_int(h->params, "timeout", 1, 60000, &timeout, &err) !=
	    0) {
		gw__fail(h, "bad_request", "timeout: expected 1..60000 ms");
		return 0;
	}
	if (json_is_string(args)) {
		args = json_loads(json_string_value(args), 0, NULL);
		if (!json_is_array(args)) {
			json_decref(args);
			gw__fail(h, "bad_request",
			         "args: expected a JSON array");
			return 0;
		}
	} else if (json_is_array(args)) {
		json_incref(args);
	} else if (args != NULL) {
		gw__fail(h, "bad_request", "args: expected a JSON array");
		return 0;
	} else if (token) {
		args = gw_params_token_args(h->params, &err);
		if (args == NULL) {
			gw__fail(h, "bad_request", err.text);
			return 0;
		}
	} else {
		args = json_array();
	}
	if (hashing && gw__token_admit(h, args) != 0) {
		json_decref(args);
		return 0;
	}
	h->start_ns = ls_now_ns();
	if (bus_client_call(gw->bus, hashing ? GW_ISSUE_SERVICE : h->service,
	                    op, args, (int)timeout, gw__service_reply, h,
	                    &h->bus_id) != 0) {
		gw__issued(h);
		json_decref(args);
		gw->m.bus_errors++;
		gw__fail(h, "unavailable", "the service bus is down");
		return 0;
	}
	json_decref(args);
	h->bus_pending = true;
	gw__await_bus(h, timeout);
	return 0;
}

/* ---- backend publish ---------------------------------------------------- */

static void
gw__published(int status, uint64_t offset, void *user)
{
	gw_http_pub *pub = user;
	gw_http *h = pub->h;

	free(pub);
	if (h == NULL) {
		return; /* the client went away */
	}
	h->pub = NULL;
	if (status == 0 && offset > 0) {
		gw__respond(h, 202,
		            json_pack("{s:b,s:I}", "accepted", 1, "offset",
		                      (json_int_t)offset),
		            NULL, NULL);
	} else if (status == 0) {
		gw__respond(h, 202, json_pack("{s:b}", "accepted", 1), NULL,
		            NULL);
	} else {
		gw__fail(h, "unavailable", ls_strerror(status));
	}
}

/*
 * Does the validateToken result body grant want on the request's
 * owner/stream? Read as the WebSocket side reads it (gw_grant_parse, for
 * the app key the token was validated for) and checked by the one
 * permission check, ls_perm_allows().
 */
static bool
gw__grants(gw_http *h, const json_t *grant, const char *body, size_t len,
           int want)
{
	const char *app = gw__str(h, "appKey");
	gw_grant g;
	bool ok;

	if (app == NULL) {
		/* No appKey: the token named its own account (validateToken
		 * with an empty appKey), which the reply (grant) says. */
		app = json_string_value(json_object_get(grant, "appKey"));
	}
	if (app == NULL || gw_grant_parse(app, body, len, &g) != 0) {
		return false;
	}
	ok = ls_perm_allows(g.perms, g.nperms, h->owner, h->stream, want);
	gw_perms_free(g.perms, g.nperms);
	return ok;
}

/* A grant of a token that is not a web token (NULL: answered 401). */
static json_t *
gw__bearer_grant(gw_http *h, const char *body, size_t len)
{
	json_t *grant = json_loadb(body, len, 0, NULL);

	if (!json_is_object(grant) ||
	    !json_is_false(json_object_get(grant, "webToken"))) {
		/* Its signature cannot be checked here (docs/security.md). */
		json_decref(grant);
		h->gw->m.auth_failed++;
		gw__fail(h, "auth_failed",
		         "a web token authenticates only a WebSocket "
		         "connection");
		return NULL;
	}
	return grant;
}

/*
 * The start of every Bearer-authenticated answer (HTTP publish, history):
 * the bus reply succeeded, the token is not a web token, and it grants want
 * on the request's owner/stream. Returns the grant (new reference), or NULL
 * once the request is answered.
 */
static json_t *
gw__bearer_checked(gw_http *h, bus_status status, const char *body, size_t len,
                   int want)
{
	json_t *grant;

	h->bus_pending = false;
	gw_metrics_bus(&h->gw->m, h->start_ns);
	if (gw__bus_failed(h, status, body, len)) {
		return NULL;
	}
	grant = gw__bearer_grant(h, body, len);
	if (grant == NULL) {
		return NULL;
	}
	if (!gw__grants(h, grant, body, len, want)) {
		json_decref(grant);
		gw__fail(h, "forbidden",
		         want == LS_PERM_WRITE ? "no write permission"
		                               : "no read permission");
		return NULL;
	}
	return grant;
}

static void
gw__publish_reply(bus_status status, const char *body, size_t len, void *user)
{
	gw_http *h = user;
	json_t *grant;
	char topic[LS_APPKEY_MAX + LS_STREAM_MAX + 2];
	ps_history_cfg hist;
	size_t from, to;
	json_t *str = NULL;
	char *text = NULL;
	const char *payload;
	size_t plen;
	int rc;

	grant = gw__bearer_checked(h, status, body, len, LS_PERM_WRITE);
	if (grant == NULL) {
		return;
	}
	hist = gw_history_cfg(h->gw, grant, h->owner);
	json_decref(grant);
	if (gw_json_valid(h->body ? h->body : "", h->blen, &from, &to)) {
		payload = h->body + from;
		plen = to - from;
	} else {
		/* Text is delivered as a JSON string (docs/protocol.md
		 * (HTTP)). */
		str = json_stringn(h->body ? h->body : "", h->blen);
		text = str ? json_dumps(str, JSON_ENCODE_ANY) : NULL;
		json_decref(str);
		if (text == NULL) {
			gw__fail(h, "bad_request",
			         "the body is neither JSON nor UTF-8 text");
			return;
		}
		payload = text;
		plen = strlen(text);
	}
	h->pub = calloc(1, sizeof(*h->pub));
	if (h->pub == NULL) {
		free(text);
		gw__fail(h, "server_error", "out of memory");
		return;
	}
	h->pub->h = h;
	snprintf(topic, sizeof(topic), "%s:%s", h->owner, h->stream);
	h->gw->m.messages_in++;
	rc = ps_fabric_publish_history(h->gw->fabric, topic, payload, plen,
	                               &hist, gw__published, h->pub);
	free(text);
	if (rc != 0) {
		free(h->pub);
		h->pub = NULL;
		gw__fail(h, "unavailable", ls_strerror(rc));
	}
}

/* ---- history (docs/protocol.md, "History and recovery") ---------------- */

static void
gw__history_read(int status, const ps_history_result *r, void *user)
{
	gw_http_pub *pub = user;
	gw_http *h = pub->h;

	free(pub);
	if (h == NULL) {
		return; /* the client went away */
	}
	h->pub = NULL;
	if (status == -ENOTSUP) {
		gw__fail(h, "not_found",
		         "this pub/sub fabric keeps no history");
	} else if (status != 0) {
		gw__fail(h, "unavailable", ls_strerror(status));
	} else {
		json_t *data = gw_history_json(r);
		if (data == NULL) {
			gw__fail(h, "server_error", "out of memory");
			return;
		}
		gw__respond(h, 200, data, NULL, NULL);
	}
}

static void
gw__history_reply(bus_status status, const char *body, size_t len, void *user)
{
	gw_http *h = user;
	char topic[LS_APPKEY_MAX + LS_STREAM_MAX + 2];
	json_t *grant;
	int rc;

	grant = gw__bearer_checked(h, status, body, len, LS_PERM_READ);
	if (grant == NULL) {
		return;
	}
	json_decref(grant);
	h->pub = calloc(1, sizeof(*h->pub));
	if (h->pub == NULL) {
		gw__fail(h, "server_error", "out of memory");
		return;
	}
	h->pub->h = h;
	snprintf(topic, sizeof(topic), "%s:%s", h->owner, h->stream);
	rc = ps_fabric_history(h->gw->fabric, topic, h->since, h->limit,
	                       gw__history_read, h->pub);
	if (rc != 0) {
		free(h->pub);
		h->pub = NULL;
		gw__fail(h, rc == -ENOTSUP ? "not_found" : "unavailable",
		         rc == -ENOTSUP
		                 ? "this pub/sub fabric keeps no history"
		                 : ls_strerror(rc));
	}
}

/* A decimal parameter in lo..hi (absent: def). false when malformed. */
static bool
gw__uint_param(gw_http *h, const char *key, uint64_t lo, uint64_t hi,
               uint64_t def, uint64_t *out)
{
	const char *v = gw__str(h, key);
	uint64_t n = 0;

	if (v == NULL) {
		*out = def;
		return true;
	}
	if (*v == '\0' || strlen(v) > 19) {
		return false;
	}
	for (const char *p = v; *p; p++) {
		if (*p < '0' || *p > '9') {
			return false;
		}
		n = n * 10 + (uint64_t)(*p - '0');
	}
	if (n < lo || n > hi) {
		return false;
	}
	*out = n;
	return true;
}

static int gw__validate_bearer(gw_http *h, bus_reply_fn reply);

static int
gw__history_dispatch(gw_http *h)
{
	uint64_t limit;

	if (!gw__uint_param(h, "since", 0, UINT64_MAX / 2, 0, &h->since)) {
		gw__fail(h, "bad_request",
		         "since: expected an offset (an integer >= 0)");
		return 0;
	}
	if (!gw__uint_param(h, "limit", 1, LS_HISTORY_LIMIT_MAX,
	                    LS_HISTORY_LIMIT_DEFAULT, &limit)) {
		gw__fail(h, "bad_request",
		         "limit: expected an integer in 1..1000");
		return 0;
	}
	h->limit = (size_t)limit;
	return gw__validate_bearer(h, gw__history_reply);
}

static int
gw__publish_dispatch(gw_http *h)
{
	return gw__validate_bearer(h, gw__publish_reply);
}

/* validateToken of the Bearer token, answered to reply. */
static int
gw__validate_bearer(gw_http *h, bus_reply_fn reply)
{
	/* Without appKey the token alone names its account
	 * (docs/protocol.md): "" asks the app server for that. */
	const char *app = gw__str(h, "appKey");

	if (app == NULL) {
		app = "";
	} else if (!ls_valid_app_key(app)) {
		gw__fail(h, "bad_request", "appKey: not a valid app key");
		return 0;
	}
	h->start_ns = ls_now_ns();
	{
		json_t *args = json_pack("[sss]", app, h->token, h->ip);
		int rc = args ? bus_client_call(h->gw->bus, "auth",
		                                "validateToken", args,
		                                (int)h->gw->bus_timeout_ms,
		                                reply, h, &h->bus_id)
		              : -ENOMEM;
		json_decref(args);
		if (rc != 0) {
			h->gw->m.bus_errors++;
			gw__fail(h, "unavailable", "the service bus is down");
			return 0;
		}
	}
	h->bus_pending = true;
	gw__await_bus(h, (int)h->gw->bus_timeout_ms);
	return 0;
}

/* ---- body --------------------------------------------------------------- */

/*
 * A body over a limit is read to its end and dropped (answering before
 * would make the client's kernel reset the connection under the answer),
 * then answered with the connection closed. The request deadline bounds
 * how long that may take.
 */
static void
gw__body_refuse(gw_http *h, unsigned status)
{
	h->too_large = true;
	h->body_status = status;
	h->gw->shared->http_buffered -= h->bcap;
	free(h->body);
	h->body = NULL;
	h->blen = h->bcap = 0;
}

int
gw_http_body(gw_http *h, const void *in, size_t len)
{
	gw_gateway *gw = h->gw;
	size_t need = h->blen + len + 1;

	if (ls_now_ms() > h->deadline_ms) {
		ls_debug(GW_LOG, "%s: request body too slow, closing", h->ip);
		return -1;
	}
	if (h->too_large || h->phase != GW_HP_WAIT) {
		return 0;
	}
	if (h->blen + len > h->bmax) {
		gw__body_refuse(h, 413);
		return 0;
	}
	if (need > h->bcap) {
		size_t cap = h->bcap ? h->bcap : GW_BODY_CHUNK;
		char *p;
		while (cap < need) {
			cap *= 2;
		}
		if (cap > h->bmax + 1) {
			cap = h->bmax + 1;
		}
		if (gw->shared->http_buffered + (cap - h->bcap) >
		    (size_t)gw->http_max_buffered_bytes) {
			gw->m.http_overload++;
			gw__body_refuse(h, 503);
			return 0;
		}
		p = realloc(h->body, cap);
		if (p == NULL) {
			gw__body_refuse(h, 503);
			return 0;
		}
		gw->shared->http_buffered += cap - h->bcap;
		h->body = p;
		h->bcap = cap;
	}
	memcpy(h->body + h->blen, in, len);
	h->blen += len;
	h->body[h->blen] = '\0';
	return 0;
}

/* Answer a refused body (gw__body_refuse). */
static void
gw__body_refused(gw_http *h)
{
	h->close_after = true;
	if (h->body_status == 503) {
		h->retry_after = "1";
		gw__fail(h, "unavailable",
		         "too many unfinished requests; retry later");
	} else {
		gw__fail(h, "too_large", "request body too large");
	}
}

int
gw_http_body_done(gw_http *h)
{
	ls_error err;
	char ctype[128] = "";

	if (h->phase != GW_HP_WAIT) {
		return 0;
	}
	if (h->too_large) {
		gw__body_refused(h);
		return 0;
	}
	if (h->kind == GW_H_PUBLISH) {
		return gw__publish_dispatch(h);
	}
	lws_hdr_copy(h->wsi, ctype, sizeof(ctype),
	             WSI_TOKEN_HTTP_CONTENT_TYPE);
	if (gw_params_add_body(h->params, ctype, h->body ? h->body : "",
	                       h->blen, &err) != 0) {
		gw__fail(h, "bad_request", err.text);
		return 0;
	}
	return gw__service_dispatch(h);
}

/* ---- static files ------------------------------------------------------- */

static const char *
gw__mime(const char *path)
{
	static const struct {
		const char *ext, *type;
	} map[] = {
		{ ".html", "text/html; charset=utf-8" },
		{ ".htm", "text/html; charset=utf-8" },
		{ ".js", "application/javascript; charset=utf-8" },
		{ ".mjs", "application/javascript; charset=utf-8" },
		{ ".ts", "application/typescript; charset=utf-8" },
		{ ".css", "text/css; charset=utf-8" },
		{ ".json", "application/json" },
		{ ".map", "application/json" },
		{ ".svg", "image/svg+xml" },
		{ ".png", "image/png" },
		{ ".jpg", "image/jpeg" },
		{ ".ico", "image/x-icon" },
		{ ".txt", "text/plain; charset=utf-8" },
		{ ".wasm", "application/wasm" },
	};
	const char *dot = strrchr(path, '.');

	for (size_t i = 0; dot && i < sizeof(map) / sizeof(map[0]); i++) {
		if (strcasecmp(dot, map[i].ext) == 0) {
			return map[i].type;
		}
	}
	return "application/octet-stream";
}

char *
gw_static_dir_default(void)
{
	const char *env = getenv("LIGHTSTREAM_STATIC_DIR");

	if (env != NULL && env[0] != '\0') {
		return realpath(env, NULL);
	}
	/* An installed demo directory, when there is one; NULL otherwise:
	 * the embedded client and demo page are served (gw__static). */
	return realpath(LS_WWW_DIR, NULL);
}

/* The embedded file named name ("index.html"), or NULL. */
static const gw_embedded_file *
gw__embedded(const char *name)
{
	for (const gw_embedded_file *f = gw_embedded_files; f->name != NULL;
	     f++) {
		if (strcmp(f->name, name) == 0) {
			return f;
		}
	}
	return NULL;
}

/* Answer with an embedded file: 304 when the client holds this version. */
static int
gw__serve_embedded(gw_http *h, const gw_embedded_file *f)
{
	char inm[128] = "";

	h->etag = f->etag;
	if (lws_hdr_copy(h->wsi, inm, sizeof(inm),
	                 WSI_TOKEN_HTTP_IF_NONE_MATCH) > 0 &&
	    strstr(inm, f->etag) != NULL) {
		gw__respond_raw(h, 304, gw__mime(f->name), "", 0);
		return 0;
	}
	gw__respond_raw(h, 200, gw__mime(f->name), (const char *)f->data,
	                f->len);
	return 0;
}

static int
gw__static(gw_http *h, const char *uri)
{
	gw_gateway *gw = h->gw;
	char path[PATH_MAX], *real = NULL;
	size_t root = gw->static_dir ? strlen(gw->static_dir) : 0;
	struct stat st;
	int n;

	const gw_embedded_file *embedded;

	if (strcmp(uri, "/") == 0) {
		uri = "/index.html";
	}
	/* The demo page's files come from the static directory when it
	 * has them, else from the binary (the client files never get here:
	 * gw__client_file). */
	embedded = uri[0] == '/' ? gw__embedded(uri + 1) : NULL;
	if (embedded != NULL && gw->static_dir == NULL) {
		return gw__serve_embedded(h, embedded);
	}
	if (gw->static_dir == NULL) {
		gw__fail(h, "not_found", "no such file");
		return 0;
	}
	/* No hidden files, no "..", no backslashes: only plain names. */
	if (uri[0] != '/' || strstr(uri, "/.") != NULL ||
	    strchr(uri, '\\') != NULL ||
	    snprintf(path, sizeof(path), "%s%s", gw->static_dir, uri) >=
	            (int)sizeof(path)) {
		gw__fail(h, "not_found", "no such file");
		return 0;
	}
	real = realpath(path, NULL);
	if (real == NULL || strncmp(real, gw->static_dir, root) != 0 ||
	    real[root] != '/' || stat(real, &st) != 0 ||
	    !S_ISREG(st.st_mode)) {
		free(real);
		if (embedded != NULL) {
			return gw__serve_embedded(h, embedded);
		}
		gw__fail(h, "not_found", "no such file");
		return 0;
	}
	h->phase = GW_HP_DONE;
	{
		/* the browser client: any origin may load it */
		const char *base = strrchr(real, '/');
		bool client = base != NULL &&
		              strncmp(base, "/lightstream.", 13) == 0;
		char extra[sizeof(GW_STATIC_HEADERS GW_CORS_HEADER)];
		snprintf(extra, sizeof(extra), "%s%s", GW_STATIC_HEADERS,
		         client ? GW_CORS_HEADER : "");
		n = lws_serve_http_file(h->wsi, real, gw__mime(real), extra,
		                        (int)strlen(extra));
	}
	free(real);
	if (n < 0 || (n > 0 && lws_http_transaction_completed(h->wsi))) {
		return -1;
	}
	return 0;
}

/* A header's value into buf ("" when absent or too long). */
static const char *
gw__header(struct lws *wsi, enum lws_token_indexes t, char *buf, size_t n)
{
	if (lws_hdr_copy(wsi, buf, (int)n, t) < 0) {
		buf[0] = '\0';
	}
	return buf;
}

/* A client file from memory: 304 when the client's copy is current. */
static int
gw__client_file(gw_http *h, const char *uri)
{
	const gw_client_file *f =
	        gw_client_files_find(h->gw->client_files, uri);
	char inm[256], ims[64], ae[256];

	h->client = f;
	if (gw_client_file_fresh(
	            f,
	            gw__header(h->wsi, WSI_TOKEN_HTTP_IF_NONE_MATCH, inm,
	                       sizeof(inm)),
	            gw__header(h->wsi, WSI_TOKEN_HTTP_IF_MODIFIED_SINCE, ims,
	                       sizeof(ims)))) {
		gw__respond_raw(h, 304, f->ctype, "", 0);
		return 0;
	}
	gw__header(h->wsi, WSI_TOKEN_HTTP_ACCEPT_ENCODING, ae, sizeof(ae));
	h->gzipped = f->gz != NULL && strstr(ae, "gzip") != NULL;
	if (h->gzipped) {
		gw__respond_raw(h, 200, f->ctype, f->gz, f->gzlen);
	} else {
		gw__respond_raw(h, 200, f->ctype, f->body, f->len);
	}
	return 0;
}

/* ---- routing ------------------------------------------------------------ */

/*
 * One path segment of at most max - 1 bytes into out, checked by valid
 * (the identifier grammar of common/ls_proto.h); *p moves past it.
 */
static bool
gw__segment(const char **p, char *out, size_t max, bool (*valid)(const char *))
{
	const char *s = *p;
	size_t n = strcspn(s, "/");

	if (n == 0 || n >= max) {
		return false;
	}
	memcpy(out, s, n);
	out[n] = '\0';
	if (!valid(out)) {
		return false;
	}
	*p = s + n + (s[n] == '/' ? 1 : 0);
	return true;
}

static void
gw__ready(gw_http *h)
{
	gw_gateway *gw = h->gw;
	bool fabric = gw->fabric != NULL && ps_fabric_ready(gw->fabric);
	const char *fabric_status =
	        fabric ? "ok"
	               : (gw->fabric ? ps_fabric_status(gw->fabric) : "none");
	const char *bus_state = gw->bus_ok ? "ok" : gw->bus_reason;
	char reason[400];

	if (fabric && gw->bus_ok && !gw->stopping) {
		gw__respond(h, 200,
		            json_pack("{s:b,s:s,s:s}", "ready", 1, "fabric",
		                      "ok", "bus", "ok"),
		            NULL, NULL);
		return;
	}
	if (gw->stopping) {
		snprintf(reason, sizeof(reason), "shutting down");
	} else if (!fabric && !gw->bus_ok) {
		snprintf(reason, sizeof(reason), "pub/sub fabric: %s; %s",
		         fabric_status, bus_state);
	} else if (!fabric) {
		snprintf(reason, sizeof(reason), "pub/sub fabric: %s",
		         fabric_status);
	} else {
		snprintf(reason, sizeof(reason), "%s", bus_state);
	}
	gw__respond(h, 503,
	            json_pack("{s:b,s:s,s:s}", "ready", 0, "fabric",
	                      fabric_status, "bus", bus_state),
	            "unavailable", reason);
}

/* lws calls no body callbacks for an empty body: dispatch at once. */
static bool
gw__has_body(struct lws *wsi, long long *length)
{
	char cl[32];

	*length = -1;
	if (lws_hdr_copy(wsi, cl, sizeof(cl), WSI_TOKEN_HTTP_CONTENT_LENGTH) <=
	    0) {
		/* chunked bodies still arrive through the body callbacks */
		return lws_hdr_total_length(
		               wsi, WSI_TOKEN_HTTP_TRANSFER_ENCODING) > 0;
	}
	*length = strtoll(cl, NULL, 10);
	return *length > 0;
}

/* Wait for the body of h, at most bmax bytes. */
static int
gw__await_body(gw_http *h, long long length, size_t bmax)
{
	h->bmax = bmax;
	if (length > (long long)bmax) {
		/* known too large: nothing is buffered */
		h->too_large = true;
		h->body_status = 413;
	}
	return 0;
}

/*
 * The request line and the headers lws parsed: no control character, raw
 * or percent-encoded, and no size over the limits (docs/security.md).
 * lws URL-decodes the path and the query string, so a decoded %0A or %0D
 * ends its request line early: such a request has no HTTP version. A
 * header lws does not know (it keeps those apart, without a way to list
 * them in 4.1) is never read by the gateway.
 */
int
gw_http_head_check(gw_gateway *gw, struct lws *wsi, const char *uri,
                   unsigned *status, const char **why)
{
	size_t total = 0, cap;
	char *buf = NULL;
	int rc = -1, n;

	*status = 400;
	if (lws_hdr_total_length(wsi, WSI_TOKEN_HTTP) <= 0) {
		*why = "malformed request line (control character?)";
		return -1;
	}
	if (gw_params_has_ctl(uri, strlen(uri))) {
		*why = "control character in the request line";
		return -1;
	}
	if (strlen(uri) + (size_t)lws_hdr_total_length(
	                          wsi, WSI_TOKEN_HTTP_URI_ARGS) >
	    (size_t)gw->http_max_uri_bytes) {
		*status = 414;
		*why = "request URI too long";
		return -1;
	}
	cap = (size_t)(gw->http_max_header_bytes > gw->http_max_uri_bytes
	                       ? gw->http_max_header_bytes
	                       : gw->http_max_uri_bytes) +
	      1;
	buf = malloc(cap);
	if (buf == NULL) {
		*status = 500;
		*why = "out of memory";
		return -1;
	}
	/* the query string, as lws decoded it */
	n = lws_hdr_copy(wsi, buf, (int)cap, WSI_TOKEN_HTTP_URI_ARGS);
	if (n > 0 && gw_params_has_ctl(buf, (size_t)n)) {
		*why = "control character in the request line";
		goto out;
	}
	for (int t = 0; t < WSI_TOKEN_COUNT; t++) {
		if (t == WSI_TOKEN_HTTP_URI_ARGS || t == WSI_TOKEN_GET_URI ||
		    t == WSI_TOKEN_POST_URI || t == WSI_TOKEN_OPTIONS_URI ||
		    t == WSI_TOKEN_PUT_URI || t == WSI_TOKEN_PATCH_URI ||
		    t == WSI_TOKEN_DELETE_URI || t == WSI_TOKEN_HEAD_URI ||
		    t == WSI_TOKEN_CONNECT) {
			continue; /* the request line: checked above */
		}
		n = lws_hdr_total_length(wsi, (enum lws_token_indexes)t);
		if (n <= 0) {
			continue;
		}
		total += (size_t)n;
		if (total > (size_t)gw->http_max_header_bytes) {
			*status = 431;
			*why = "request headers too large";
			goto out;
		}
		n = lws_hdr_copy(wsi, buf, (int)cap,
		                 (enum lws_token_indexes)t);
		if (n < 0 || gw_params_has_ctl(buf, (size_t)n) ||
		    gw_params_has_encoded_ctl(buf, (size_t)n)) {
			*why = "control character in a header";
			goto out;
		}
	}
	rc = 0;
out:
	free(buf);
	return rc;
}

int
gw_http_request(gw_gateway *gw, struct lws *wsi, gw_pss *pss, const char *uri)
{
	gw_http *h;
	const char *cb, *why = NULL;
	unsigned status;
	long long length;
	ls_error err;
	bool head = lws_hdr_total_length(wsi, WSI_TOKEN_HEAD_URI) > 0;
	/* HEAD is answered wherever GET is, without the body. */
	bool get = lws_hdr_total_length(wsi, WSI_TOKEN_GET_URI) > 0 || head;

	gw_http_free(&pss->http);
	h = calloc(1, sizeof(*h));
	if (h == NULL) {
		return -1;
	}
	pss->http = h;
	h->gw = gw;
	h->wsi = wsi;
	h->post = lws_hdr_total_length(wsi, WSI_TOKEN_POST_URI) > 0;
	h->head = head;
	h->tls = gw_request_is_tls(gw, wsi);
	h->deadline_ms = ls_now_ms() + gw->http_request_timeout_ms;
	h->params = json_object();
	if (h->params == NULL) {
		return -1;
	}
	if (gw_http_head_check(gw, wsi, uri, &status, &why) != 0) {
		/* the request may go on in ways lws misread: close */
		h->close_after = true;
		gw__error(h, status,
		          status == 500   ? "server_error"
		          : status == 400 ? "bad_request"
		                          : "too_large",
		          why);
		return 0;
	}
	gw_client_ip(gw, wsi, h->ip, sizeof(h->ip));
	if (gw__query_params(h, &err) != 0) {
		gw__fail(h, "bad_request", err.text);
		return 0;
	}
	cb = gw__str(h, "callback");
	if (cb != NULL || json_object_get(h->params, "callback") != NULL) {
		if (cb == NULL || !get || !gw__valid_callback(cb)) {
			gw__fail(h, "bad_request",
			         "callback: expected [A-Za-z_$][A-Za-z0-9_$.]"
			         "{0,63}");
			return 0;
		}
		snprintf(h->callback, sizeof(h->callback), "%s", cb);
	}
	if (!get && !h->post) {
		gw__error(h, 405, "bad_request", "method not allowed");
		return 0;
	}
	if (strcmp(uri, "/healthz") == 0) {
		gw__respond(h, 200, json_pack("{s:s}", "status", "ok"), NULL,
		            NULL);
		return 0;
	}
	if (strcmp(uri, "/readyz") == 0) {
		gw__ready(h);
		return 0;
	}
	if (strcmp(uri, "/metrics") == 0) {
		size_t len = 0;
		char *text = gw_metrics_render(gw, &len);
		if (text == NULL) {
			gw__fail(h, "server_error", "out of memory");
			return 0;
		}
		gw__respond_raw(h, 200, "text/plain; version=0.0.4", text,
		                len);
		free(text);
		return 0;
	}
	if (strncmp(uri, "/lightstream/services/", 22) == 0) {
		const char *p = uri + 22;
		/* Names match case-sensitively, as HAProxy's rules do; an
		 * operation off the allow-list does not exist here. */
		/* Service and operation names: the stream grammar, up
		 * to GW_SERVICE_MAX. */
		if (!gw__segment(&p, h->service, sizeof(h->service),
		                 ls_valid_stream) ||
		    !gw__segment(&p, h->op, sizeof(h->op), ls_valid_stream) ||
		    *p || !gw__allowlisted(gw, h->service, h->op)) {
			gw__fail(h, "not_found", "no such operation");
			return 0;
		}
		h->kind = GW_H_SERVICE;
		if (h->post && gw__has_body(wsi, &length)) {
			return gw__await_body(h, length,
			                      (size_t)gw->http_max_body_bytes);
		}
		return gw__service_dispatch(h);
	}
	if (strncmp(uri, "/lightstream/publish/", 21) == 0) {
		const char *p = uri + 21;
		char auth[LS_TOKEN_MAX + 16];
		if (!gw__segment(&p, h->owner, sizeof(h->owner),
		                 ls_valid_app_key) ||
		    !gw__segment(&p, h->stream, sizeof(h->stream),
		                 ls_valid_stream) ||
		    *p) {
			gw__fail(h, "not_found", "no such stream path");
			return 0;
		}
		if (!h->post) {
			gw__error(h, 405, "bad_request", "use POST");
			return 0;
		}
		if (lws_hdr_copy(wsi, auth, sizeof(auth),
		                 WSI_TOKEN_HTTP_AUTHORIZATION) <= 7 ||
		    strncasecmp(auth, "Bearer ", 7) != 0 ||
		    strlen(auth + 7) > LS_TOKEN_MAX) {
			gw__fail(h, "auth_failed",
			         "Authorization: Bearer <token> required");
			return 0;
		}
		snprintf(h->token, sizeof(h->token), "%s", auth + 7);
		h->kind = GW_H_PUBLISH;
		if (gw__has_body(wsi, &length)) {
			return gw__await_body(h, length,
			                      (size_t)gw->max_frame_bytes);
		}
		return gw__publish_dispatch(h);
	}
	if (strncmp(uri, "/lightstream/history/", 21) == 0) {
		const char *p = uri + 21;
		char auth[LS_TOKEN_MAX + 16];
		if (!gw__segment(&p, h->owner, sizeof(h->owner),
		                 ls_valid_app_key) ||
		    !gw__segment(&p, h->stream, sizeof(h->stream),
		                 ls_valid_stream) ||
		    *p) {
			gw__fail(h, "not_found", "no such stream path");
			return 0;
		}
		if (!get) {
			gw__error(h, 405, "bad_request", "use GET");
			return 0;
		}
		if (lws_hdr_copy(wsi, auth, sizeof(auth),
		                 WSI_TOKEN_HTTP_AUTHORIZATION) <= 7 ||
		    strncasecmp(auth, "Bearer ", 7) != 0 ||
		    strlen(auth + 7) > LS_TOKEN_MAX) {
			gw__fail(h, "auth_failed",
			         "Authorization: Bearer <token> required");
			return 0;
		}
		snprintf(h->token, sizeof(h->token), "%s", auth + 7);
		h->kind = GW_H_HISTORY;
		return gw__history_dispatch(h);
	}
	if (strncmp(uri, GW_SSE_PATH, strlen(GW_SSE_PATH)) == 0) {
		const char *p = uri + strlen(GW_SSE_PATH);
		int rc;
		if (!gw__segment(&p, h->owner, sizeof(h->owner),
		                 ls_valid_app_key) ||
		    !gw__segment(&p, h->stream, sizeof(h->stream),
		                 ls_valid_stream) ||
		    *p) {
			gw__fail(h, "not_found", "no such stream path");
			return 0;
		}
		if (!get) {
			gw__error(h, 405, "bad_request", "use GET");
			return 0;
		}
		/* The connection is the SSE stream's from here on. */
		rc = gw_sse_open(gw, wsi, pss, h->owner, h->stream, h->params,
		                 h->ip);
		gw_http_free(&pss->http);
		return rc;
	}
	if (strcmp(uri, GW_WS_PATH) == 0) {
		gw__fail(h, "bad_request", "WebSocket upgrade required");
		return 0;
	}
	if (!get) {
		gw__fail(h, "not_found", "no such endpoint");
		return 0;
	}
	if (gw_client_files_find(gw->client_files, uri) != NULL) {
		return gw__client_file(h, uri);
	}
	return gw__static(h, uri);
}
