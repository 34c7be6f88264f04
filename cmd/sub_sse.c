/*
 * `lightstream sub --sse`: the subscription over Server-Sent Events
 * (docs/protocol.md, "Server-Sent Events") instead of WebSocket, for
 * networks that let only plain HTTP through. A minimal reader on a plain
 * or TLS socket: one GET with the token in the Authorization header (never
 * in the URL), the event stream parsed line by line (chunked transfer
 * coding too, should a proxy add it), Last-Event-ID on reconnect.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "cmd.h"
#include "ls_json.h"
#include "ls_log.h"
#include "ls_proto.h"
#include "ls_time.h"
#include "lsc_cli.h"
#include "sub_sse.h"

#define SSE_LOG         "sub"
#define SSE_HEAD_MAX    16384
#define SSE_LINE_MAX    (1024 * 1024) /* a data line: a message and more */
#define SSE_ID_MAX      128
#define SSE_BACKOFF_MIN 500
#define SSE_BACKOFF_MAX 30000

typedef struct sse_conn {
	int fd;
	SSL_CTX *ctx;
	SSL *ssl;
	/* raw bytes read and not yet consumed */
	char *buf;
	size_t len, cap;
	bool eof;
	/* chunked transfer coding: bytes left in the chunk (-1: size next) */
	bool chunked;
	long long chunk_left;
} sse_conn;

typedef struct sse_url {
	bool tls;
	char host[256];
	char port[8];
	char prefix[256];
} sse_url;

/* What one stream attempt ended with. */
enum {
	SSE_DONE = 0,  /* finished: status set */
	SSE_RETRY = 1, /* try again after a pause */
};

typedef struct sse_run {
	const sub_sse_options *o;
	sse_url url;
	char last_id[SSE_ID_MAX + 1];
	long received;
	int status;
	bool subscribed; /* this attempt got its subscribed event */
} sse_run;

/* ---- URL ---------------------------------------------------------------- */

static int
sse_parse_url(const char *text, sse_url *u)
{
	const char *p, *host, *end;
	size_t n;

	memset(u, 0, sizeof(*u));
	if (strncasecmp(text, "https://", 8) == 0 ||
	    strncasecmp(text, "wss://", 6) == 0) {
		u->tls = true;
	} else if (strncasecmp(text, "http://", 7) != 0 &&
	           strncasecmp(text, "ws://", 5) != 0) {
		return -EINVAL;
	}
	host = strstr(text, "://") + 3;
	end = host + strcspn(host, "/?#");
	if (*host == '[') {
		const char *rb = memchr(host, ']', (size_t)(end - host));
		if (rb == NULL) {
			return -EINVAL;
		}
		n = (size_t)(rb - host - 1);
		if (n == 0 || n >= sizeof(u->host)) {
			return -EINVAL;
		}
		memcpy(u->host, host + 1, n);
		p = rb + 1;
	} else {
		p = host + strcspn(host, ":/?#");
		n = (size_t)(p - host);
		if (n == 0 || n >= sizeof(u->host)) {
			return -EINVAL;
		}
		memcpy(u->host, host, n);
	}
	if (*p == ':') {
		n = (size_t)(end - p - 1);
		if (n == 0 || n >= sizeof(u->port) ||
		    strspn(p + 1, "0123456789") < n) {
			return -EINVAL;
		}
		memcpy(u->port, p + 1, n);
	} else if (p != end) {
		return -EINVAL;
	} else {
		snprintf(u->port, sizeof(u->port), "%s",
		         u->tls ? "443" : "80");
	}
	/* A path before /lightstream/websocket is a proxy's prefix. */
	n = strcspn(end, "?#");
	if (n >= sizeof(u->prefix)) {
		return -EINVAL;
	}
	memcpy(u->prefix, end, n);
	{
		static const char ws[] = "/lightstream/websocket";
		size_t pl = strlen(u->prefix), wl = sizeof(ws) - 1;
		if (pl >= wl && strcmp(u->prefix + pl - wl, ws) == 0) {
			u->prefix[pl - wl] = '\0';
		}
		while ((pl = strlen(u->prefix)) > 0 &&
		       u->prefix[pl - 1] == '/') {
			u->prefix[pl - 1] = '\0';
		}
	}
	return 0;
}

/* ---- the socket --------------------------------------------------------- */

static void
sse_close(sse_conn *c)
{
	if (c->ssl != NULL) {
		SSL_free(c->ssl);
		c->ssl = NULL;
	}
	if (c->ctx != NULL) {
		SSL_CTX_free(c->ctx);
		c->ctx = NULL;
	}
	if (c->fd >= 0) {
		close(c->fd);
		c->fd = -1;
	}
	free(c->buf);
	c->buf = NULL;
	c->len = c->cap = 0;
}

static int
sse_connect(sse_conn *c, const sse_run *r, char *why, size_t wlen)
{
	struct addrinfo hints, *res = NULL, *ai;
	int rc;

	memset(c, 0, sizeof(*c));
	c->fd = -1;
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	rc = getaddrinfo(r->url.host, r->url.port, &hints, &res);
	if (rc != 0) {
		snprintf(why, wlen, "%s", gai_strerror(rc));
		return -1;
	}
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		c->fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC,
		               ai->ai_protocol);
		if (c->fd < 0) {
			continue;
		}
		if (connect(c->fd, ai->ai_addr, ai->ai_addrlen) == 0) {
			break;
		}
		snprintf(why, wlen, "%s", strerror(errno));
		close(c->fd);
		c->fd = -1;
	}
	freeaddrinfo(res);
	if (c->fd < 0) {
		return -1;
	}
	if (!r->url.tls) {
		return 0;
	}
	c->ctx = SSL_CTX_new(TLS_client_method());
	if (c->ctx == NULL) {
		snprintf(why, wlen, "no TLS context");
		return -1;
	}
	if (r->o->insecure) {
		SSL_CTX_set_verify(c->ctx, SSL_VERIFY_NONE, NULL);
	} else {
		SSL_CTX_set_verify(c->ctx, SSL_VERIFY_PEER, NULL);
		if ((r->o->ca_file != NULL
		             ? SSL_CTX_load_verify_locations(
		                       c->ctx, r->o->ca_file, NULL)
		             : SSL_CTX_set_default_verify_paths(c->ctx)) !=
		    1) {
			snprintf(why, wlen, "cannot load the CA certificates");
			return -1;
		}
	}
	c->ssl = SSL_new(c->ctx);
	if (c->ssl == NULL || SSL_set_fd(c->ssl, c->fd) != 1) {
		snprintf(why, wlen, "cannot set up TLS");
		return -1;
	}
	{
		/* An address is checked against the certificate's IP names
		 * and sent as no SNI; a name is both. */
		unsigned char addr[sizeof(struct in6_addr)];
		bool ip = inet_pton(AF_INET, r->url.host, addr) == 1 ||
		          inet_pton(AF_INET6, r->url.host, addr) == 1;
		if ((!ip &&
		     SSL_set_tlsext_host_name(c->ssl, r->url.host) != 1) ||
		    (!r->o->insecure &&
		     (ip ? X509_VERIFY_PARAM_set1_ip_asc(
		                   SSL_get0_param(c->ssl), r->url.host)
		         : SSL_set1_host(c->ssl, r->url.host)) != 1)) {
			snprintf(why, wlen, "cannot set up TLS");
			return -1;
		}
	}
	if (SSL_connect(c->ssl) != 1) {
		unsigned long e = ERR_get_error();
		long v = SSL_get_verify_result(c->ssl);
		snprintf(why, wlen, "TLS handshake failed: %s",
		         v != X509_V_OK ? X509_verify_cert_error_string(v)
		         : e            ? ERR_reason_error_string(e)
		                        : "the server does not speak TLS?");
		return -1;
	}
	return 0;
}

static int
sse_write_all(sse_conn *c, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = c->ssl ? SSL_write(c->ssl, p, (int)n)
		                   : send(c->fd, p, n, MSG_NOSIGNAL);
		if (w <= 0) {
			if (!c->ssl && w < 0 && errno == EINTR) {
				continue;
			}
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/*
 * Read what is there into the buffer, waiting at most ms. Returns 1 when
 * bytes came (or the peer closed: c->eof), 0 on timeout, -1 on error.
 */
static int
sse_fill(sse_conn *c, int ms)
{
	struct pollfd pfd = { .fd = c->fd, .events = POLLIN };
	ssize_t n;

	if (c->cap - c->len < 16384) {
		size_t cap = c->cap ? c->cap * 2 : 65536;
		char *b;
		if (cap > SSE_LINE_MAX + SSE_HEAD_MAX + 65536) {
			return -1; /* a line without end */
		}
		b = realloc(c->buf, cap);
		if (b == NULL) {
			return -1;
		}
		c->buf = b;
		c->cap = cap;
	}
	if (!(c->ssl && SSL_pending(c->ssl) > 0)) {
		int pr = poll(&pfd, 1, ms);
		if (pr == 0 || (pr < 0 && errno == EINTR)) {
			return 0;
		}
		if (pr < 0) {
			return -1;
		}
	}
	n = c->ssl ? SSL_read(c->ssl, c->buf + c->len,
	                      (int)(c->cap - c->len - 1))
	           : recv(c->fd, c->buf + c->len, c->cap - c->len - 1, 0);
	if (n <= 0) {
		if (!c->ssl && n < 0 && (errno == EINTR || errno == EAGAIN)) {
			return 0;
		}
		c->eof = true;
		return 1;
	}
	c->len += (size_t)n;
	c->buf[c->len] = '\0';
	return 1;
}

static void
sse_consume(sse_conn *c, size_t n)
{
	memmove(c->buf, c->buf + n, c->len - n);
	c->len -= n;
	if (c->buf != NULL) {
		c->buf[c->len] = '\0';
	}
}

/* ---- the request and the head ------------------------------------------ */

static void
sse_urlencode(const char *s, char *out, size_t max)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = 0;

	for (; *s != '\0' && o + 4 < max; s++) {
		unsigned char ch = (unsigned char)*s;
		if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		    (ch >= '0' && ch <= '9') || ch == '-' || ch == '_' ||
		    ch == '.' || ch == '~') {
			out[o++] = (char)ch;
		} else {
			out[o++] = '%';
			out[o++] = hex[ch >> 4];
			out[o++] = hex[ch & 15];
		}
	}
	out[o] = '\0';
}

static int
sse_request(sse_conn *c, const sse_run *r)
{
	const sub_sse_options *o = r->o;
	size_t qmax = o->query ? strlen(o->query) * 3 + 1 : 1;
	char *q = malloc(qmax), *req = NULL;
	int n, rc;

	if (q == NULL) {
		return -1;
	}
	sse_urlencode(o->query ? o->query : "", q, qmax);
	n = asprintf(&req,
	             "GET %s/lightstream/sse/%s/%s?appKey=%s%s%s HTTP/1.1\r\n"
	             "Host: %s%s%s:%s\r\n"
	             "Authorization: Bearer %s\r\n"
	             "Accept: text/event-stream\r\n"
	             "Cache-Control: no-cache\r\n"
	             "%s%s%s"
	             "User-Agent: lightstream-sub\r\n\r\n",
	             r->url.prefix, o->owner, o->stream, o->app_key,
	             o->query ? "&query=" : "", q,
	             strchr(r->url.host, ':') ? "[" : "", r->url.host,
	             strchr(r->url.host, ':') ? "]" : "", r->url.port,
	             o->token, r->last_id[0] ? "Last-Event-ID: " : "",
	             r->last_id, r->last_id[0] ? "\r\n" : "");
	free(q);
	if (n < 0) {
		return -1;
	}
	rc = sse_write_all(c, req, (size_t)n);
	free(req);
	return rc;
}

/* Status and the headers that matter; the head is consumed. */
static int
sse_head(sse_conn *c, int *status, long long *length, int64_t deadline)
{
	char *end;

	*length = -1;
	while ((end = strstr(c->buf ? c->buf : "", "\r\n\r\n")) == NULL) {
		if (c->eof || c->len > SSE_HEAD_MAX ||
		    (deadline && ls_now_ms() > deadline)) {
			return -1;
		}
		if (sse_fill(c, 200) < 0) {
			return -1;
		}
	}
	*end = '\0';
	if (sscanf(c->buf, "HTTP/1.%*d %d", status) != 1) {
		return -1;
	}
	for (char *line = strstr(c->buf, "\r\n"); line != NULL && line < end;
	     line = strstr(line + 2, "\r\n")) {
		char *h = line + 2;
		if (strncasecmp(h, "content-length:", 15) == 0) {
			*length = strtoll(h + 15, NULL, 10);
		} else if (strncasecmp(h, "transfer-encoding:", 18) == 0 &&
		           strstr(h, "chunked") != NULL) {
			c->chunked = true;
			c->chunk_left = -1;
		}
	}
	sse_consume(c, (size_t)(end - c->buf) + 4);
	return 0;
}

/*
 * Take the chunked framing out of the buffer in place, as far as it is
 * complete. Returns 0, or -1 on malformed framing.
 */
static int
sse_dechunk(sse_conn *c, size_t *from)
{
	while (*from < c->len) {
		if (c->chunk_left < 0) {
			char *crlf = strstr(c->buf + *from, "\r\n");
			char *e;
			long long size;
			size_t line;
			if (crlf == NULL) {
				return 0; /* the size line is not complete */
			}
			size = strtoll(c->buf + *from, &e, 16);
			if (e == c->buf + *from || size < 0) {
				return -1;
			}
			if (size == 0) {
				c->eof = true; /* the last chunk */
				c->len = *from;
				break;
			}
			line = (size_t)(crlf + 2 - (c->buf + *from));
			memmove(c->buf + *from, crlf + 2,
			        c->len - *from - line + 1);
			c->len -= line;
			c->chunk_left = size;
		} else if (c->chunk_left == 0) {
			/* the CRLF after a chunk's data */
			if (c->len - *from < 2) {
				return 0;
			}
			memmove(c->buf + *from, c->buf + *from + 2,
			        c->len - *from - 2 + 1);
			c->len -= 2;
			c->chunk_left = -1;
		} else {
			size_t have = c->len - *from;
			size_t take = (long long)have < c->chunk_left
			                      ? have
			                      : (size_t)c->chunk_left;
			*from += take;
			c->chunk_left -= (long long)take;
		}
	}
	if (c->buf != NULL) {
		c->buf[c->len] = '\0';
	}
	return 0;
}

/* ---- errors ------------------------------------------------------------- */

/* {"code","message"} of an event, or the first of an envelope's errors. */
static void
sse_error_of(json_t *j, char *code, size_t clen, char *msg, size_t mlen)
{
	json_t *e = json_object_get(j, "errors");

	if (json_is_array(e)) {
		j = json_array_get(e, 0);
	}
	snprintf(code, clen, "%s",
	         json_string_value(json_object_get(j, "code"))
	                 ? json_string_value(json_object_get(j, "code"))
	                 : "server_error");
	snprintf(msg, mlen, "%s",
	         json_string_value(json_object_get(j, "message"))
	                 ? json_string_value(json_object_get(j, "message"))
	                 : "");
}

/* A refusal or the end of the stream: stop with it, or retry? */
static int
sse_failed(sse_run *r, const char *code, const char *message)
{
	/* Worth another try: the server or the reader's pace, not the
	 * request or its credentials. */
	bool transient = strcmp(code, "slow_consumer") == 0 ||
	                 strcmp(code, "unavailable") == 0 ||
	                 strcmp(code, "timeout") == 0 ||
	                 strcmp(code, "server_error") == 0;

	if (transient && r->o->reconnect) {
		ls_warn(SSE_LOG, "%s%s%s, reconnecting",
		        lsc_cli_describe(code), *message ? ": " : "", message);
		return SSE_RETRY;
	}
	fprintf(stderr, "lightstream sub: %s: %s/%s%s%s\n",
	        lsc_cli_describe(code), r->o->owner, r->o->stream,
	        *message ? ": " : "", message);
	r->status = lsc_cli_exit_for(code);
	return SSE_DONE;
}

/* ---- events ------------------------------------------------------------- */

static int
sse_dispatch(sse_run *r, const char *event, const char *data, const char *id)
{
	json_t *j = json_loads(data, JSON_DECODE_ANY, NULL);
	int rc = -1;

	if (j == NULL) {
		ls_warn(SSE_LOG, "ignored an event that is not JSON");
		return -1;
	}
	if (strcmp(event, "subscribed") == 0) {
		r->subscribed = true;
		ls_info(SSE_LOG, "subscribed to %s/%s over SSE (%s)",
		        r->o->owner, r->o->stream,
		        json_string_value(json_object_get(j, "subscriptionId"))
		                ? json_string_value(
		                          json_object_get(j, "subscriptionId"))
		                : "?");
	} else if (strcmp(event, "data") == 0) {
		json_t *value = json_object_get(j, "data");
		char *text = value != NULL ? ls_json_dumps(value, NULL) : NULL;
		lsc_message m = {
			.sub = 0,
			.subscription_id =
			        json_string_value(json_object_get(j, "sub")),
			.owner =
			        json_string_value(json_object_get(j, "owner")),
			.stream = json_string_value(
			        json_object_get(j, "stream")),
			.data = text,
			.data_len = text != NULL ? strlen(text) : 0,
		};
		if (id[0] != '\0') {
			snprintf(r->last_id, sizeof(r->last_id), "%s", id);
		}
		if (m.data != NULL && m.owner != NULL && m.stream != NULL) {
			if (lsc_cli_print(stdout, &m, r->o->output) != 0) {
				fprintf(stderr, "lightstream sub: cannot "
				                "write to stdout\n");
				r->status = CMD_EXIT_FAILURE;
				json_decref(j);
				free(text);
				return 1;
			}
			r->received++;
			if (r->o->count > 0 && r->received >= r->o->count) {
				r->status = CMD_EXIT_OK;
				json_decref(j);
				free(text);
				return 1;
			}
		}
		free(text);
	} else if (strcmp(event, "error") == 0) {
		char code[32], msg[256];
		sse_error_of(j, code, sizeof(code), msg, sizeof(msg));
		json_decref(j);
		return sse_failed(r, code, msg) == SSE_DONE ? 1 : 2;
	}
	rc = 0;
	json_decref(j);
	return rc;
}

/*
 * Read events until the stream ends. Returns SSE_DONE (status set) or
 * SSE_RETRY.
 */
static int
sse_events(sse_run *r, sse_conn *c)
{
	char event[32] = "message", id[SSE_ID_MAX + 1] = "";
	char *data = NULL;
	size_t dlen = 0, scanned = 0;
	int rc = SSE_RETRY;

	for (;;) {
		char *nl;
		if (c->chunked && sse_dechunk(c, &scanned) != 0) {
			ls_warn(SSE_LOG, "malformed chunked answer");
			break;
		}
		if (!c->chunked) {
			scanned = c->len;
		}
		while (c->buf != NULL &&
		       (nl = memchr(c->buf, '\n', scanned)) != NULL) {
			size_t n = (size_t)(nl - c->buf);
			char *line = c->buf;
			int d = 0;
			if (n > 0 && line[n - 1] == '\r') {
				line[n - 1] = '\0';
			}
			*nl = '\0';
			if (line[0] == '\0') {
				if (data != NULL) {
					d = sse_dispatch(r, event, data, id);
				}
				free(data);
				data = NULL;
				dlen = 0;
				snprintf(event, sizeof(event), "message");
			} else if (line[0] != ':') {
				char *v = strchr(line, ':');
				if (v != NULL) {
					*v++ = '\0';
					if (*v == ' ') {
						v++;
					}
				} else {
					v = line + strlen(line);
				}
				if (strcmp(line, "event") == 0) {
					snprintf(event, sizeof(event), "%s",
					         v);
				} else if (strcmp(line, "id") == 0) {
					snprintf(id, sizeof(id), "%s", v);
				} else if (strcmp(line, "data") == 0) {
					size_t vl = strlen(v);
					char *nd =
					        realloc(data, dlen + vl + 2);
					if (nd == NULL) {
						d = -2;
					} else {
						data = nd;
						if (dlen > 0) {
							data[dlen++] = '\n';
						}
						memcpy(data + dlen, v, vl + 1);
						dlen += vl;
					}
				}
			}
			sse_consume(c, n + 1);
			scanned -= n + 1;
			if (d == 1) {
				rc = SSE_DONE;
				goto out;
			}
			if (d == 2 || d == -2) {
				rc = SSE_RETRY;
				goto out;
			}
		}
		if (c->eof) {
			break;
		}
		if (lsc_cli_stop_requested() ||
		    (r->o->deadline_ms && ls_now_ms() >= r->o->deadline_ms)) {
			rc = SSE_DONE;
			r->status = -1; /* decided by the caller */
			goto out;
		}
		if (sse_fill(c, 200) < 0) {
			break;
		}
	}
	/* The response ended without an error event: the server went
	 * away (shutdown) or the connection broke. */
	if (r->o->reconnect) {
		ls_warn(SSE_LOG, "the stream ended, reconnecting");
	} else {
		fprintf(stderr, "lightstream sub: connection closed\n");
		r->status = CMD_EXIT_FAILURE;
		rc = SSE_DONE;
	}
out:
	free(data);
	return rc;
}

/* One attempt: connect, ask, read the answer. */
static int
sse_attempt(sse_run *r)
{
	sse_conn c;
	char why[256] = "connection failed";
	int status = 0, rc;
	long long length;

	r->subscribed = false;
	if (sse_connect(&c, r, why, sizeof(why)) != 0 ||
	    sse_request(&c, r) != 0) {
		sse_close(&c);
		if (r->o->reconnect) {
			ls_warn(SSE_LOG, "cannot connect to %s: %s, retrying",
			        r->o->url, why);
			return SSE_RETRY;
		}
		fprintf(stderr, "lightstream sub: cannot connect to %s: %s\n",
		        r->o->url, why);
		r->status = CMD_EXIT_FAILURE;
		return SSE_DONE;
	}
	if (sse_head(&c, &status, &length, ls_now_ms() + 30000) != 0) {
		sse_close(&c);
		if (r->o->reconnect) {
			ls_warn(SSE_LOG, "no answer from %s, retrying",
			        r->o->url);
			return SSE_RETRY;
		}
		fprintf(stderr, "lightstream sub: no answer from %s\n",
		        r->o->url);
		r->status = CMD_EXIT_FAILURE;
		return SSE_DONE;
	}
	if (status != 200) {
		char code[32], msg[256];
		json_t *j;
		size_t from = 0;
		while (!c.eof && (length < 0 || (long long)c.len < length) &&
		       c.len < 65536) {
			if (sse_fill(&c, 1000) <= 0) {
				break;
			}
		}
		if (c.chunked) {
			(void)sse_dechunk(&c, &from);
		}
		j = c.buf ? json_loadb(c.buf, c.len, 0, NULL) : NULL;
		if (j != NULL) {
			sse_error_of(j, code, sizeof(code), msg, sizeof(msg));
		} else {
			snprintf(code, sizeof(code), "%s",
			         status == 401   ? "auth_failed"
			         : status == 403 ? "forbidden"
			         : status == 404 ? "not_found"
			         : status == 503 ? "unavailable"
			                         : "server_error");
			snprintf(msg, sizeof(msg), "HTTP %d", status);
		}
		json_decref(j);
		sse_close(&c);
		return sse_failed(r, code, msg);
	}
	rc = sse_events(r, &c);
	sse_close(&c);
	return rc;
}

int
sub_sse_run(const sub_sse_options *o)
{
	sse_run r;
	long backoff = SSE_BACKOFF_MIN;

	memset(&r, 0, sizeof(r));
	r.o = o;
	if (o->since_epoch != NULL && o->since_epoch[0] != '\0') {
		snprintf(r.last_id, sizeof(r.last_id), "%s:%llu",
		         o->since_epoch, (unsigned long long)o->since_offset);
	}
	if (sse_parse_url(o->url, &r.url) != 0) {
		return lsc_cli_usage_error("sub",
		                           "--url must be http(s):// or "
		                           "ws(s)://HOST[:PORT][/PREFIX], not "
		                           "'%s'",
		                           o->url);
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	for (;;) {
		int64_t until;
		if (sse_attempt(&r) == SSE_DONE) {
			break;
		}
		if (r.subscribed) {
			backoff = SSE_BACKOFF_MIN;
		}
		until = ls_now_ms() + backoff;
		backoff = backoff * 2 > SSE_BACKOFF_MAX ? SSE_BACKOFF_MAX
		                                        : backoff * 2;
		while (ls_now_ms() < until && !lsc_cli_stop_requested() &&
		       !(o->deadline_ms && ls_now_ms() >= o->deadline_ms)) {
			usleep(20000);
		}
		if (lsc_cli_stop_requested() ||
		    (o->deadline_ms && ls_now_ms() >= o->deadline_ms)) {
			r.status = -1;
			break;
		}
	}
	if (r.status >= 0) {
		return r.status;
	}
	/* stopped by a signal or the timeout */
	if (lsc_cli_stop_requested() || o->count == 0) {
		return CMD_EXIT_OK;
	}
	fprintf(stderr,
	        "lightstream sub: timed out after %ld of %ld messages\n",
	        r.received, o->count);
	return CMD_EXIT_FAILURE;
}
