/*
 * Requests over HTTP(S) (docs/protocol.md (HTTP)): tokens — one POST to
 * /lightstream/services/auth/generatetoken with a form body, so the
 * private key never appears in a URL (URLs end up in access logs) — and
 * history reads (GET /lightstream/history/{owner}/{stream}).
 */
#include "lsc.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libwebsockets.h>
#include <openssl/ssl.h>

#include "ls_log.h"
#include "ls_proto.h"
#include "lsc_internal.h"
#include "lsc_proto.h"

#define LSC__TOKEN_PATH    "/lightstream/services/auth/generatetoken"
#define LSC__HTTP_BODY_MAX (256 * 1024)
#define LSC__FORM_MAX      4096

typedef struct lsc__http {
	char *req_body; /* NULL: a GET */
	size_t req_len;
	const char *bearer; /* Authorization: Bearer (NULL: none) */
	int status;
	char *resp;
	size_t resp_len;
	bool done;
	bool failed; /* could not connect / connection broke */
	bool too_big;
	char fail_text[160];
	bool timed_out;
	bool tls;
	struct ssl_ctx_st *ssl_ctx; /* borrowed; NULL for http:// */
	struct lws_context *ctx;
	lws_sorted_usec_list_t timeout_sul;
} lsc__http;

static int
lsc__http_cb(struct lws *wsi, enum lws_callback_reasons reason, void *user,
             void *in, size_t len)
{
	lsc__http *h = lws_context_user(lws_get_context(wsi));

	if (h == NULL) {
		return 0;
	}
	switch (reason) {
	case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
		h->failed = true;
		h->done = true;
		lsc__connect_error(h->ssl_ctx, (const char *)in, h->fail_text,
		                   sizeof(h->fail_text));
		break;
	case LWS_CALLBACK_CLIENT_APPEND_HANDSHAKE_HEADER: {
		unsigned char **p = (unsigned char **)in, *end = (*p) + len;
		char n[24];

		if (h->bearer != NULL) {
			char auth[LS_TOKEN_MAX + 16];
			int an = snprintf(auth, sizeof(auth), "Bearer %s",
			                  h->bearer);
			if (lws_add_http_header_by_token(
			            wsi, WSI_TOKEN_HTTP_AUTHORIZATION,
			            (const unsigned char *)auth, an, p, end)) {
				return -1;
			}
		}
		if (h->req_body == NULL) {
			break; /* a GET */
		}
		snprintf(n, sizeof(n), "%zu", h->req_len);
		if (lws_add_http_header_by_token(
		            wsi, WSI_TOKEN_HTTP_CONTENT_TYPE,
		            (const unsigned char *)"application/"
		                                   "x-www-form-urlencoded",
		            33, p, end) ||
		    lws_add_http_header_by_token(wsi,
		                                 WSI_TOKEN_HTTP_CONTENT_LENGTH,
		                                 (const unsigned char *)n,
		                                 (int)strlen(n), p, end)) {
			return -1;
		}
		lws_client_http_body_pending(wsi, 1);
		lws_callback_on_writable(wsi);
		break;
	}
	case LWS_CALLBACK_CLIENT_HTTP_WRITEABLE: {
		unsigned char *buf = malloc(LWS_PRE + h->req_len);
		int n;

		if (buf == NULL) {
			return -1;
		}
		memcpy(buf + LWS_PRE, h->req_body, h->req_len);
		n = lws_write(wsi, buf + LWS_PRE, h->req_len,
		              LWS_WRITE_HTTP_FINAL);
		free(buf);
		if (n < (int)h->req_len) {
			return -1;
		}
		lws_client_http_body_pending(wsi, 0);
		break;
	}
	case LWS_CALLBACK_ESTABLISHED_CLIENT_HTTP:
		h->status = (int)lws_http_client_http_response(wsi);
		break;
	case LWS_CALLBACK_RECEIVE_CLIENT_HTTP_READ:
		if (h->resp_len + len > LSC__HTTP_BODY_MAX) {
			h->too_big = true;
			return -1;
		} else {
			char *p = realloc(h->resp, h->resp_len + len + 1);

			if (p == NULL) {
				return -1;
			}
			h->resp = p;
			memcpy(h->resp + h->resp_len, in, len);
			h->resp_len += len;
			h->resp[h->resp_len] = '\0';
		}
		break;
	case LWS_CALLBACK_RECEIVE_CLIENT_HTTP: {
		char buffer[4096 + LWS_PRE];
		char *px = buffer + LWS_PRE;
		int lenx = (int)sizeof(buffer) - LWS_PRE;

		if (lws_http_client_read(wsi, &px, &lenx) < 0) {
			return -1;
		}
		break;
	}
	case LWS_CALLBACK_COMPLETED_CLIENT_HTTP:
		h->done = true;
		break;
	case LWS_CALLBACK_CLOSED_CLIENT_HTTP:
		if (!h->done && h->status == 0) {
			h->failed = true;
			snprintf(h->fail_text, sizeof(h->fail_text),
			         "connection closed before a response");
		}
		h->done = true;
		break;
	default:
		break;
	}
	return 0;
}

static const struct lws_protocols lsc__http_protocols[] = {
	{ "lightstream-http", lsc__http_cb, 0, 0, 0, NULL, 0 },
	{ NULL, NULL, 0, 0, 0, NULL, 0 },
};

static void
lsc__http_timeout(lws_sorted_usec_list_t *sul)
{
	lsc__http *h = lws_container_of(sul, lsc__http, timeout_sul);

	h->timed_out = true;
	lws_cancel_service(h->ctx); /* wake the poll that follows */
}

/* Append key=urlencoded(value)& to buf. Returns 0 or -ENOSPC. */
static int
lsc__form_add(char *buf, size_t cap, const char *key, const char *value)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t n = strlen(buf);

	if (value == NULL) {
		return 0;
	}
	n += (size_t)snprintf(buf + n, cap - n, "%s%s=", n ? "&" : "", key);
	for (const unsigned char *p = (const unsigned char *)value; *p; p++) {
		if (n + 4 >= cap) {
			return -ENOSPC;
		}
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') || *p == '-' || *p == '_' ||
		    *p == '.' || *p == '~') {
			buf[n++] = (char)*p;
		} else {
			buf[n++] = '%';
			buf[n++] = hex[*p >> 4];
			buf[n++] = hex[*p & 15];
		}
	}
	if (n >= cap) {
		return -ENOSPC;
	}
	buf[n] = '\0';
	return 0;
}

static int
lsc__status_code(int status)
{
	/* A status our gateway answers maps back through the table; any
	 * other (a proxy's 502, ...) means the server is not reachable. */
	for (int pc = 0; pc < LS_PC_COUNT; pc++) {
		const ls_proto_error *row = ls_proto_error_row(pc);
		if (row->http_status == (unsigned)status) {
			return row->errcode;
		}
	}
	return LS_EUNAVAILABLE;
}

/*
 * One request (blocking): method to path with an optional form body and
 * Bearer token. On a 200 answer with an object as data, *data (new
 * reference) is that data; otherwise the error of the answer.
 */
static int
lsc__http_run(const lsc__url *url, const char *method, const char *path,
              char *form, const char *bearer, const char *ca_file,
              bool insecure, int timeout_ms, json_t **data, ls_error *err)
{
	struct lws_context_creation_info info;
	struct lws_client_connect_info ci;
	struct lws_context *ctx = NULL;
	char host[LSC__HOST_MAX + 8];
	lsc__http h;
	json_t *resp = NULL;
	SSL_CTX *ssl_ctx = NULL;
	bool timed_out;
	int rc;

	memset(&h, 0, sizeof(h));
	h.tls = url->tls;
	h.req_body = form;
	h.req_len = form != NULL ? strlen(form) : 0;
	h.bearer = bearer;

	lsc__lws_log_init();
	memset(&info, 0, sizeof(info));
	info.port = CONTEXT_PORT_NO_LISTEN;
	info.protocols = lsc__http_protocols;
	info.gid = -1;
	info.uid = -1;
	info.user = &h;
	if (url->tls) {
		ssl_ctx = lsc__ssl_ctx_new(ca_file, err);
		if (ssl_ctx == NULL) {
			return err != NULL ? err->code : -EINVAL;
		}
		info.options = LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
		info.provided_client_ssl_ctx = ssl_ctx;
		h.ssl_ctx = ssl_ctx;
	}
	info.fd_limit_per_thread = 16;
	ctx = lws_create_context(&info);
	if (ctx == NULL) {
		SSL_CTX_free(ssl_ctx);
		return ls_error_set(err, -EIO,
		                    "cannot create the HTTP client "
		                    "context");
	}
	h.ctx = ctx;
	snprintf(host, sizeof(host), "%s:%d", url->host, url->port);
	memset(&ci, 0, sizeof(ci));
	ci.context = ctx;
	ci.address = url->host;
	ci.port = url->port;
	ci.path = path;
	ci.host = host;
	ci.method = method;
	ci.alpn = "http/1.1";
	ci.protocol = lsc__http_protocols[0].name;
	if (url->tls) {
		ci.ssl_connection = LCCSCF_USE_SSL;
		if (insecure) {
			ci.ssl_connection |=
			        LCCSCF_ALLOW_SELFSIGNED |
			        LCCSCF_SKIP_SERVER_CERT_HOSTNAME_CHECK |
			        LCCSCF_ALLOW_EXPIRED | LCCSCF_ALLOW_INSECURE;
		}
	}
	lws_sul_schedule(ctx, 0, &h.timeout_sul, lsc__http_timeout,
	                 (lws_usec_t)(timeout_ms > 0 ? timeout_ms : 10000) *
	                         1000);
	if (lws_client_connect_via_info(&ci) == NULL && !h.done) {
		h.failed = true;
		h.done = true;
		snprintf(h.fail_text, sizeof(h.fail_text),
		         "connection failed");
	}
	while (!h.done && !h.timed_out) {
		if (lws_service(ctx, 0) < 0) {
			break;
		}
	}
	/* Decide before destroying: the teardown closes the connection and
	 * its callbacks mark it done. */
	timed_out = h.timed_out && !h.done;
	lws_sul_cancel(&h.timeout_sul);
	lws_context_destroy(ctx);
	SSL_CTX_free(ssl_ctx);

	if (timed_out) {
		rc = ls_error_set(err, LS_ETIMEOUT,
		                  "no answer from %s:%d within %d ms",
		                  url->host, url->port,
		                  timeout_ms > 0 ? timeout_ms : 10000);
		goto out;
	}
	if (h.failed) {
		rc = ls_error_set(err, LS_EUNAVAILABLE,
		                  "cannot reach %s:%d: %s", url->host,
		                  url->port, h.fail_text);
		goto out;
	}
	if (h.too_big) {
		rc = ls_error_set(err, LS_ETOOLARGE, "response too large");
		goto out;
	}
	resp = h.resp != NULL ? json_loadb(h.resp, h.resp_len, 0, NULL) : NULL;
	if (h.status == 200 && json_is_object(json_object_get(resp, "data"))) {
		*data = json_incref(json_object_get(resp, "data"));
		rc = 0;
		goto out;
	}
	{
		json_t *e0 =
		        json_array_get(json_object_get(resp, "errors"), 0);
		const char *msg = lsc__str(e0, "message");
		const ls_proto_error *row =
		        ls_proto_error_by_name(lsc__str(e0, "code"));

		rc = ls_error_set(
		        err,
		        row != NULL       ? row->errcode
		        : h.status == 200 ? LS_EBADREQUEST
		                          : lsc__status_code(h.status),
		        "HTTP %d: %s", h.status,
		        msg != NULL ? msg
		                    : (h.status == 200 ? "response without "
		                                         "data"
		                                       : "request refused"));
	}
out:
	json_decref(resp);
	free(h.resp);
	return rc;
}

static int
lsc__token_request_run(const lsc_token_request *req, json_t **data,
                       ls_error *err)
{
	char form[LSC__FORM_MAX] = "";
	char roles[1024], ttl[24];
	lsc__url url;
	int rc;

	*data = NULL;
	if (req->app_key == NULL || req->private_key == NULL ||
	    req->roles == NULL) {
		return ls_error_set(err, -EINVAL,
		                    "app key, private key and "
		                    "roles are required");
	}
	rc = lsc__url_parse(req->url, "http", "https", "/", &url, err);
	if (rc != 0) {
		return rc;
	}
	if (strlen(req->roles) >= sizeof(roles)) {
		return ls_error_set(err, -EINVAL, "roles too long");
	}
	snprintf(roles, sizeof(roles), "%s", req->roles);
	for (char *p = roles; *p; p++) {
		if (*p == ',') {
			*p = '|';
		}
	}
	snprintf(ttl, sizeof(ttl), "%ld", req->ttl_s);
	if (lsc__form_add(form, sizeof(form), "publicKey", req->app_key) ||
	    lsc__form_add(form, sizeof(form), "privateKey",
	                  req->private_key) ||
	    lsc__form_add(form, sizeof(form), "roles", roles) ||
	    lsc__form_add(form, sizeof(form), "ttl",
	                  req->ttl_s > 0 ? ttl : NULL) ||
	    lsc__form_add(form, sizeof(form), "ipAddress", req->ip_address) ||
	    lsc__form_add(form, sizeof(form), "webToken",
	                  req->web_token ? "true" : "false")) {
		return ls_error_set(err, -EINVAL, "parameters too long");
	}
	return lsc__http_run(&url, "POST", LSC__TOKEN_PATH, form, NULL,
	                     req->ca_file, req->insecure, req->timeout_ms,
	                     data, err);
}

static int
lsc__history_request_run(const lsc_history_request *req, json_t **data,
                         ls_error *err)
{
	char path[LSC__FORM_MAX], query[256] = "", since[24], limit[24];
	lsc__url url;
	int rc;

	*data = NULL;
	if (req->owner == NULL || req->stream == NULL || req->token == NULL ||
	    !ls_valid_app_key(req->owner) || !ls_valid_stream(req->stream) ||
	    (req->app_key != NULL && !ls_valid_app_key(req->app_key)) ||
	    strlen(req->token) > LS_TOKEN_MAX) {
		return ls_error_set(err, -EINVAL,
		                    "owner, stream and token are required");
	}
	rc = lsc__url_parse(req->url, "http", "https", "/", &url, err);
	if (rc != 0) {
		return rc;
	}
	snprintf(since, sizeof(since), "%llu", (unsigned long long)req->since);
	snprintf(limit, sizeof(limit), "%u", req->limit);
	if (lsc__form_add(query, sizeof(query), "since", since) ||
	    lsc__form_add(query, sizeof(query), "limit",
	                  req->limit > 0 ? limit : NULL) ||
	    lsc__form_add(query, sizeof(query), "appKey", req->app_key)) {
		return ls_error_set(err, -EINVAL, "parameters too long");
	}
	snprintf(path, sizeof(path), "/lightstream/history/%s/%s?%s",
	         req->owner, req->stream, query);
	return lsc__http_run(&url, "GET", path, NULL, req->token, req->ca_file,
	                     req->insecure, req->timeout_ms, data, err);
}

/* The public calls: the data object as JSON text, errors as lsc_error. */
static int
lsc__request_export(int rc, json_t *data, char **text, ls_error *e,
                    lsc_error *err)
{
	if (rc == 0) {
		*text = json_dumps(data, JSON_COMPACT);
		json_decref(data);
		if (*text == NULL) {
			rc = ls_error_set(e, -ENOMEM, "out of memory");
		}
	}
	if (rc != 0) {
		e->code = rc;
		lsc__error_export(err, e);
	}
	return rc;
}

int
lsc_token_request_run(const lsc_token_request *req, char **data,
                      lsc_error *err)
{
	json_t *d = NULL;
	ls_error e;
	int rc;

	*data = NULL;
	ls_error_clear(&e);
	rc = lsc__token_request_run(req, &d, &e);
	return lsc__request_export(rc, d, data, &e, err);
}

int
lsc_history_request_run(const lsc_history_request *req, char **data,
                        lsc_error *err)
{
	json_t *d = NULL;
	ls_error e;
	int rc;

	*data = NULL;
	ls_error_clear(&e);
	rc = lsc__history_request_run(req, &d, &e);
	return lsc__request_export(rc, d, data, &e, err);
}
