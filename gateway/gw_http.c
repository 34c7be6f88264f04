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

#include "gw_internal.h"
#include "gw_json.h"
#include "ls_log.h"
#include "ls_time.h"

#define GW_ARG_MAX     8192
#define GW_SERVICE_MAX 64

typedef enum gw_http_kind {
	GW_H_NONE,
	GW_H_SERVICE, /* bridge (including auth/generatetoken) */
	GW_H_PUBLISH,
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
	char owner[GW_APPKEY_MAX + 1];
	char stream[GW_STREAM_MAX + 1];
	char callback[65];
	json_t *params; /* query-string (and form/JSON body) parameters */
	char *body;
	size_t blen, bmax;
	bool too_large;
	char token[GW_TOKEN_MAX + 1];
	/* pending work */
	uint64_t bus_id;
	bool bus_pending;
	int64_t start_ns;
	bool plain; /* bridge type=plain */
	gw_http_pub *pub;
	/* response */
	unsigned status;
	const char *ctype;
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
	if (h->pub != NULL) {
		h->pub->h = NULL;
	}
	json_decref(h->params);
	free(h->body);
	free(h->resp);
	free(h);
	*ph = NULL;
}

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

int
gw_http_writeable(gw_http *h)
{
	unsigned char hdr[LWS_PRE + 1024];
	unsigned char *p = hdr + LWS_PRE, *end = hdr + sizeof(hdr) - 1;

	switch (h->phase) {
	case GW_HP_READY:
		if (lws_add_http_common_headers(h->wsi, h->status, h->ctype,
		                                h->resp_len, &p, end) ||
		    lws_add_http_header_by_name(
		            h->wsi, (const unsigned char *)"cache-control:",
		            (const unsigned char *)"no-store", 8, &p, end) ||
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
			return lws_http_transaction_completed(h->wsi) ? -1 : 0;
		}
		if (lws_write(h->wsi, h->resp + LWS_PRE, h->resp_len,
		              LWS_WRITE_HTTP_FINAL) < (int)h->resp_len) {
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

static int
gw__hexval(char c)
{
	if (c >= '0' && c <= '9') {
		return c - '0';
	}
	if (c >= 'a' && c <= 'f') {
		return c - 'a' + 10;
	}
	if (c >= 'A' && c <= 'F') {
		return c - 'A' + 10;
	}
	return -1;
}

/* Decode application/x-www-form-urlencoded in place. */
static void
gw__urldecode(char *s)
{
	char *o = s;

	for (; *s; s++) {
		if (*s == '+') {
			*o++ = ' ';
		} else if (*s == '%' && gw__hexval(s[1]) >= 0 &&
		           gw__hexval(s[2]) >= 0) {
			*o++ = (char)(gw__hexval(s[1]) * 16 +
			              gw__hexval(s[2]));
			s += 2;
		} else {
			*o++ = *s;
		}
	}
	*o = '\0';
}

static void
gw__param(json_t *params, char *pair, bool decode)
{
	char *eq = strchr(pair, '=');
	json_t *v;

	if (eq == NULL) {
		return;
	}
	*eq = '\0';
	if (decode) {
		gw__urldecode(pair);
		gw__urldecode(eq + 1);
	}
	v = json_string(eq + 1); /* NULL when not UTF-8: ignored */
	if (v != NULL && pair[0] != '\0') {
		json_object_set_new(params, pair, v);
	} else {
		json_decref(v);
	}
}

static void
gw__query_params(gw_http *h)
{
	char *buf = malloc(GW_ARG_MAX);

	if (buf == NULL) {
		return;
	}
	for (int i = 0; i < 64; i++) {
		/* lws has already URL-decoded each fragment */
		if (lws_hdr_copy_fragment(h->wsi, buf, GW_ARG_MAX,
		                          WSI_TOKEN_HTTP_URI_ARGS, i) <= 0) {
			break;
		}
		gw__param(h->params, buf, false);
	}
	free(buf);
}

/* Merge a POST body into the parameters: form or JSON object. */
static int
gw__body_params(gw_http *h)
{
	char ctype[128] = "";

	if (h->blen == 0) {
		return 0;
	}
	lws_hdr_copy(h->wsi, ctype, sizeof(ctype),
	             WSI_TOKEN_HTTP_CONTENT_TYPE);
	if (strncasecmp(ctype, "application/x-www-form-urlencoded", 33) == 0) {
		char *save = NULL;
		for (char *pair = strtok_r(h->body, "&", &save); pair;
		     pair = strtok_r(NULL, "&", &save)) {
			gw__param(h->params, pair, true);
		}
		return 0;
	}
	{
		json_t *j = json_loadb(h->body, h->blen, 0, NULL);
		if (json_is_object(j)) {
			json_object_update(h->params, j);
			json_decref(j);
			return 0;
		}
		if (json_is_array(j)) {
			json_object_set_new(h->params, "args", j);
			return 0;
		}
		json_decref(j);
	}
	return -EINVAL;
}

static const char *
gw__str(gw_http *h, const char *key)
{
	return json_string_value(json_object_get(h->params, key));
}

/* ---- bus replies -------------------------------------------------------- */

static unsigned
gw__status_for(const char *code)
{
	static const struct {
		const char *code;
		unsigned status;
	} map[] = {
		{ "bad_request", 400 },  { "invalid_query", 400 },
		{ "auth_failed", 401 },  { "token_expired", 401 },
		{ "forbidden", 403 },    { "not_found", 404 },
		{ "too_large", 413 },    { "slow_consumer", 429 },
		{ "unavailable", 503 },  { "timeout", 504 },
		{ "server_error", 500 },
	};

	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
		if (strcmp(map[i].code, code) == 0) {
			return map[i].status;
		}
	}
	return 400;
}

/*
 * A bus error body is a message; services may send {"code","message"} or
 * "code: message" to say which protocol error it is.
 */
static void
gw__bus_error(gw_http *h, const char *body, size_t len)
{
	json_t *j = json_loadb(body, len, 0, NULL);
	const char *colon;

	if (json_is_object(j) && json_is_string(json_object_get(j, "code"))) {
		const char *code =
		        json_string_value(json_object_get(j, "code"));
		const char *msg =
		        json_string_value(json_object_get(j, "message"));
		gw__error(h, gw__status_for(code), code, msg ? msg : code);
		json_decref(j);
		return;
	}
	json_decref(j);
	colon = memchr(body, ':', len);
	if (colon != NULL && colon > body && colon - body < 32) {
		char code[32];
		size_t n = (size_t)(colon - body);
		bool word = true;
		memcpy(code, body, n);
		code[n] = '\0';
		for (size_t i = 0; i < n; i++) {
			if (!((code[i] >= 'a' && code[i] <= 'z') ||
			      code[i] == '_')) {
				word = false;
			}
		}
		if (word) {
			const char *msg = colon + 1;
			while (*msg == ' ') {
				msg++;
			}
			gw__error(h, gw__status_for(code), code, msg);
			return;
		}
	}
	if (len >= 21 && strncmp(body, "authentication failed", 21) == 0) {
		gw__error(h, 401, "auth_failed", body);
		return;
	}
	gw__error(h, 400, "bad_request", len ? body : "request refused");
}

static bool
gw__bus_failed(gw_http *h, bus_status status, const char *body, size_t len)
{
	switch (status) {
	case BUS_OK:
		return false;
	case BUS_TIMEOUT:
		h->gw->m.bus_errors++;
		gw__error(h, 504, "unavailable",
		          "the app server did not answer in time");
		return true;
	case BUS_NOSERVICE:
		h->gw->m.bus_errors++;
		gw__error(h, 503, "unavailable", "no such service");
		return true;
	default:
		gw__bus_error(h, body, len);
		return true;
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
		return;
	}
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
		if (strcasecmp(gw->service_allowlist.items[i], name) == 0) {
			return true;
		}
	}
	return false;
}

/* auth/generatetoken from named parameters (docs/protocol.md (HTTP)). */
static json_t *
gw__token_args(gw_http *h, const char **why)
{
	const char *pub = gw__str(h, "publicKey");
	const char *priv = gw__str(h, "privateKey");
	const char *ip = gw__str(h, "ipAddress");
	json_t *roles = json_array(),
	       *rv = json_object_get(h->params, "roles");
	json_t *ttl = json_object_get(h->params, "ttl");
	json_t *web = json_object_get(h->params, "webToken");
	json_int_t ttl_s = 3600;
	bool webtoken = false;

	if (pub == NULL || priv == NULL) {
		*why = "publicKey and privateKey are required";
		goto fail;
	}
	if (json_is_string(rv)) {
		char *copy = strdup(json_string_value(rv)), *save = NULL;
		for (char *r = copy ? strtok_r(copy, "|,", &save) : NULL; r;
		     r = strtok_r(NULL, "|,", &save)) {
			json_array_append_new(roles, json_string(r));
		}
		free(copy);
	} else if (json_is_array(rv)) {
		json_array_extend(roles, rv);
	} else if (rv != NULL) {
		*why = "roles: expected r1|r2";
		goto fail;
	}
	if (json_is_string(ttl)) {
		char *end;
		long long v = strtoll(json_string_value(ttl), &end, 10);
		if (*end != '\0' || end == json_string_value(ttl)) {
			*why = "ttl: expected seconds";
			goto fail;
		}
		ttl_s = v;
	} else if (json_is_integer(ttl)) {
		ttl_s = json_integer_value(ttl);
	} else if (ttl != NULL) {
		*why = "ttl: expected seconds";
		goto fail;
	}
	if (json_is_string(web)) {
		webtoken = strcmp(json_string_value(web), "true") == 0 ||
		           strcmp(json_string_value(web), "1") == 0;
	} else if (json_is_boolean(web)) {
		webtoken = json_is_true(web);
	}
	if (ip != NULL && ip[0] == '\0') {
		ip = NULL;
	}
	return json_pack("[s,s,o,I,s?,b]", pub, priv, roles, (json_int_t)ttl_s,
	                 ip, webtoken);
fail:
	json_decref(roles);
	return NULL;
}

static int
gw__service_dispatch(gw_http *h)
{
	gw_gateway *gw = h->gw;
	bool token = strcasecmp(h->service, "auth") == 0 &&
	             strcasecmp(h->op, "generatetoken") == 0;
	const char *op = token ? "generateToken" : h->op;
	const char *type = gw__str(h, "type");
	const char *tm = gw__str(h, "timeout");
	json_t *args = json_object_get(h->params, "args");
	const char *why = NULL;
	int timeout = (int)gw->bus_timeout_ms;

	if (token && !gw->token_http_remote && !h->tls &&
	    !gw_ip_is_loopback(h->ip)) {
		gw__error(h, 403, "forbidden",
		          "tokens are issued over plain HTTP only to loopback "
		          "clients; use HTTPS");
		return 0;
	}
	if (type != NULL && strcmp(type, "plain") != 0 &&
	    strcmp(type, "json") != 0) {
		gw__error(h, 400, "bad_request",
		          "type: expected json or plain");
		return 0;
	}
	h->plain = type != NULL && strcmp(type, "plain") == 0;
	if (tm != NULL) {
		char *end;
		long v = strtol(tm, &end, 10);
		if (*end != '\0' || v < 1 || v > 60000) {
			gw__error(h, 400, "bad_request",
			          "timeout: expected 1..60000 ms");
			return 0;
		}
		timeout = (int)v;
	}
	if (json_is_string(args)) {
		args = json_loads(json_string_value(args), 0, NULL);
		if (!json_is_array(args)) {
			json_decref(args);
			gw__error(h, 400, "bad_request",
			          "args: expected a JSON array");
			return 0;
		}
	} else if (json_is_array(args)) {
		json_incref(args);
	} else if (args != NULL) {
		gw__error(h, 400, "bad_request",
		          "args: expected a JSON array");
		return 0;
	} else if (token) {
		args = gw__token_args(h, &why);
		if (args == NULL) {
			gw__error(h, 400, "bad_request", why);
			return 0;
		}
	} else {
		args = json_array();
	}
	h->start_ns = ls_now_ns();
	if (bus_client_call(gw->bus, h->service, op, args, timeout,
	                    gw__service_reply, h, &h->bus_id) != 0) {
		json_decref(args);
		gw->m.bus_errors++;
		gw__error(h, 503, "unavailable", "the service bus is down");
		return 0;
	}
	json_decref(args);
	h->bus_pending = true;
	return 0;
}

/* ---- backend publish ---------------------------------------------------- */

static void
gw__published(int status, void *user)
{
	gw_http_pub *pub = user;
	gw_http *h = pub->h;

	free(pub);
	if (h == NULL) {
		return; /* the client went away */
	}
	h->pub = NULL;
	if (status == 0) {
		gw__respond(h, 202, json_pack("{s:b}", "accepted", 1), NULL,
		            NULL);
	} else {
		gw__error(h, 503, "unavailable", ls_strerror(status));
	}
}

static bool
gw__grants_write(json_t *grant, const char *owner, const char *stream)
{
	json_t *perms = json_object_get(grant, "permissions"), *p;
	size_t i;

	json_array_foreach(perms, i, p)
	{
		const char *o = json_string_value(json_object_get(p, "owner"));
		const char *s =
		        json_string_value(json_object_get(p, "stream"));
		json_int_t bits =
		        json_integer_value(json_object_get(p, "permission"));
		size_t sl;

		if (o == NULL || s == NULL || !(bits & 1) ||
		    strcmp(o, owner) != 0) {
			continue;
		}
		sl = strlen(s);
		if (sl > 0 && s[sl - 1] == '*'
		            ? strncmp(stream, s, sl - 1) == 0
		            : strcmp(stream, s) == 0) {
			return true;
		}
	}
	return false;
}

static void
gw__publish_reply(bus_status status, const char *body, size_t len, void *user)
{
	gw_http *h = user;
	json_t *grant;
	char topic[GW_APPKEY_MAX + GW_STREAM_MAX + 2];
	size_t from, to;
	json_t *str = NULL;
	char *text = NULL;
	const char *payload;
	size_t plen;
	int rc;

	h->bus_pending = false;
	gw_metrics_bus(&h->gw->m, h->start_ns);
	if (status == BUS_ERROR) {
		h->gw->m.auth_failed++;
		gw__error(h, 401, "auth_failed", len ? body : "token refused");
		return;
	}
	if (gw__bus_failed(h, status, body, len)) {
		return;
	}
	grant = json_loadb(body, len, 0, NULL);
	if (!gw__grants_write(grant, h->owner, h->stream)) {
		json_decref(grant);
		gw__error(h, 403, "forbidden", "no write permission");
		return;
	}
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
			gw__error(h, 400, "bad_request",
			          "the body is neither JSON nor UTF-8 text");
			return;
		}
		payload = text;
		plen = strlen(text);
	}
	h->pub = calloc(1, sizeof(*h->pub));
	if (h->pub == NULL) {
		free(text);
		gw__error(h, 500, "server_error", "out of memory");
		return;
	}
	h->pub->h = h;
	snprintf(topic, sizeof(topic), "%s:%s", h->owner, h->stream);
	h->gw->m.messages_in++;
	rc = ps_fabric_publish(h->gw->fabric, topic, payload, plen,
	                       gw__published, h->pub);
	free(text);
	if (rc != 0) {
		free(h->pub);
		h->pub = NULL;
		gw__error(h, 503, "unavailable", ls_strerror(rc));
	}
}

static int
gw__publish_dispatch(gw_http *h)
{
	const char *app = gw__str(h, "appKey");

	if (h->too_large) {
		gw__error(h, 413, "too_large",
		          "message larger than the limit");
		return 0;
	}
	if (app == NULL) {
		app = h->owner;
	}
	if (!gw_valid_app_key(app)) {
		gw__error(h, 400, "bad_request",
		          "appKey: not a valid app key");
		return 0;
	}
	h->start_ns = ls_now_ns();
	{
		json_t *args = json_pack("[sss]", app, h->token, h->ip);
		int rc = args ? bus_client_call(
		                        h->gw->bus, "auth", "validateToken",
		                        args, (int)h->gw->bus_timeout_ms,
		                        gw__publish_reply, h, &h->bus_id)
		              : -ENOMEM;
		json_decref(args);
		if (rc != 0) {
			h->gw->m.bus_errors++;
			gw__error(h, 503, "unavailable",
			          "the service bus is down");
			return 0;
		}
	}
	h->bus_pending = true;
	return 0;
}

/* ---- body --------------------------------------------------------------- */

int
gw_http_body(gw_http *h, const void *in, size_t len)
{
	if (h->too_large || h->phase != GW_HP_WAIT) {
		return 0;
	}
	if (h->blen + len > h->bmax) {
		h->too_large = true;
		return 0;
	}
	if (h->body == NULL) {
		h->body = malloc(h->bmax + 1);
		if (h->body == NULL) {
			return -1;
		}
	}
	memcpy(h->body + h->blen, in, len);
	h->blen += len;
	h->body[h->blen] = '\0';
	return 0;
}

int
gw_http_body_done(gw_http *h)
{
	if (h->phase != GW_HP_WAIT) {
		return 0;
	}
	if (h->kind == GW_H_PUBLISH) {
		return gw__publish_dispatch(h);
	}
	if (h->too_large) {
		gw__error(h, 413, "too_large", "request body too large");
		return 0;
	}
	if (gw__body_params(h) != 0) {
		gw__error(h, 400, "bad_request",
		          "expected a form, a JSON object or a JSON array");
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
	char exe[PATH_MAX], cand[PATH_MAX + 64];
	ssize_t n;

	if (env != NULL && env[0] != '\0') {
		return realpath(env, NULL);
	}
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n > 0) {
		char *slash;
		exe[n] = '\0';
		slash = strrchr(exe, '/');
		if (slash != NULL) {
			char *dir;
			*slash = '\0';
			/* the build tree: BUILD/cmd/lightstream */
			snprintf(cand, sizeof(cand),
			         "%s/../../clients/js/public", exe);
			dir = realpath(cand, NULL);
			if (dir != NULL) {
				return dir;
			}
		}
	}
	/* installed: meson install puts the browser client here */
	return realpath(LS_WWW_DIR, NULL);
}

static int
gw__static(gw_http *h, const char *uri)
{
	gw_gateway *gw = h->gw;
	char path[PATH_MAX], *real = NULL;
	size_t root = gw->static_dir ? strlen(gw->static_dir) : 0;
	struct stat st;
	int n;

	if (gw->static_dir == NULL) {
		gw__error(h, 404, "not_found", "no such file");
		return 0;
	}
	if (strcmp(uri, "/") == 0) {
		uri = "/index.html";
	}
	/* No hidden files, no "..", no backslashes: only plain names. */
	if (uri[0] != '/' || strstr(uri, "/.") != NULL ||
	    strchr(uri, '\\') != NULL ||
	    snprintf(path, sizeof(path), "%s%s", gw->static_dir, uri) >=
	            (int)sizeof(path)) {
		gw__error(h, 404, "not_found", "no such file");
		return 0;
	}
	real = realpath(path, NULL);
	if (real == NULL || strncmp(real, gw->static_dir, root) != 0 ||
	    real[root] != '/' || stat(real, &st) != 0 ||
	    !S_ISREG(st.st_mode)) {
		free(real);
		gw__error(h, 404, "not_found", "no such file");
		return 0;
	}
	h->phase = GW_HP_DONE;
	n = lws_serve_http_file(h->wsi, real, gw__mime(real), NULL, 0);
	free(real);
	if (n < 0 || (n > 0 && lws_http_transaction_completed(h->wsi))) {
		return -1;
	}
	return 0;
}

/* ---- routing ------------------------------------------------------------ */

static bool
gw__segment(const char **p, char *out, size_t max, bool dot)
{
	const char *s = *p;
	size_t n = strcspn(s, "/");

	if (n == 0 || n >= max) {
		return false;
	}
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '_' || c == '-' ||
		      (dot && c == '.'))) {
			return false;
		}
	}
	memcpy(out, s, n);
	out[n] = '\0';
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
gw__has_body(struct lws *wsi)
{
	char cl[32];

	if (lws_hdr_copy(wsi, cl, sizeof(cl), WSI_TOKEN_HTTP_CONTENT_LENGTH) <=
	    0) {
		/* chunked bodies still arrive through the body callbacks */
		return lws_hdr_total_length(
		               wsi, WSI_TOKEN_HTTP_TRANSFER_ENCODING) > 0;
	}
	return strtoll(cl, NULL, 10) > 0;
}

int
gw_http_request(gw_gateway *gw, struct lws *wsi, gw_pss *pss, const char *uri)
{
	gw_http *h;
	const char *cb;
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
	h->bmax = 64 * 1024;
	h->params = json_object();
	if (h->params == NULL) {
		return -1;
	}
	gw_client_ip(gw, wsi, h->ip, sizeof(h->ip));
	gw__query_params(h);
	cb = gw__str(h, "callback");
	if (cb != NULL) {
		if (!get || !gw__valid_callback(cb)) {
			gw__error(h, 400, "bad_request",
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
			gw__error(h, 500, "server_error", "out of memory");
			return 0;
		}
		gw__respond_raw(h, 200, "text/plain; version=0.0.4", text,
		                len);
		free(text);
		return 0;
	}
	if (strncmp(uri, "/lightstream/services/", 22) == 0) {
		const char *p = uri + 22;
		if (!gw__segment(&p, h->service, sizeof(h->service), true) ||
		    !gw__segment(&p, h->op, sizeof(h->op), true) || *p) {
			gw__error(h, 404, "not_found", "no such operation");
			return 0;
		}
		if (!gw__allowlisted(gw, h->service, h->op)) {
			gw__error(h, 403, "forbidden",
			          "operation not on the service allow-list");
			return 0;
		}
		h->kind = GW_H_SERVICE;
		if (h->post && gw__has_body(wsi)) {
			return 0; /* wait for the body */
		}
		return gw__service_dispatch(h);
	}
	if (strncmp(uri, "/lightstream/publish/", 21) == 0) {
		const char *p = uri + 21;
		char auth[GW_TOKEN_MAX + 16];
		if (!gw__segment(&p, h->owner, sizeof(h->owner), false) ||
		    !gw__segment(&p, h->stream, sizeof(h->stream), true) ||
		    *p) {
			gw__error(h, 404, "not_found", "no such stream path");
			return 0;
		}
		if (!h->post) {
			gw__error(h, 405, "bad_request", "use POST");
			return 0;
		}
		if (lws_hdr_copy(wsi, auth, sizeof(auth),
		                 WSI_TOKEN_HTTP_AUTHORIZATION) <= 7 ||
		    strncasecmp(auth, "Bearer ", 7) != 0 ||
		    strlen(auth + 7) > GW_TOKEN_MAX) {
			gw__error(h, 401, "auth_failed",
			          "Authorization: Bearer <token> required");
			return 0;
		}
		snprintf(h->token, sizeof(h->token), "%s", auth + 7);
		h->kind = GW_H_PUBLISH;
		h->bmax = (size_t)gw->max_frame_bytes;
		if (gw__has_body(wsi)) {
			return 0; /* wait for the body */
		}
		return gw__publish_dispatch(h);
	}
	if (strcmp(uri, GW_WS_PATH) == 0) {
		gw__error(h, 400, "bad_request", "WebSocket upgrade required");
		return 0;
	}
	if (!get) {
		gw__error(h, 404, "not_found", "no such endpoint");
		return 0;
	}
	return gw__static(h, uri);
}
