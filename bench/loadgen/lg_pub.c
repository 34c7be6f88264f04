/* Publisher: one connection that sends timestamped messages at the pace the
 * parent asks for, over WebSocket (LightStream Data frames) or pipelined
 * HTTP POSTs (nchan's publisher endpoint, or LightStream's backend publish).
 * Set-up is blocking with timeouts; publishing is non-blocking. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lg_loadgen.h"
#include "lg_payload.h"
#include "lg_ws.h"

#define LG_PUB_OUT_MAX  (4u * 1024u * 1024u)
#define LG_PUB_IN_MAX   (1u * 1024u * 1024u)
#define LG_PUB_INFLIGHT 1024 /* pipelined HTTP requests without answer */

struct lg_pub {
	const lg_config *cfg;
	int fd;
	uint8_t *out;
	size_t olen;
	uint8_t *in;
	size_t ilen;
	uint64_t published;
	uint64_t responses;
	uint64_t refused;
	uint64_t stalls;
	uint32_t rng;
	char http_head[768]; /* request line and headers up to the length */
};

uint64_t
lg_pub_published(const lg_pub *p)
{
	return p->published;
}

uint64_t
lg_pub_responses(const lg_pub *p)
{
	return p->responses;
}

uint64_t
lg_pub_refused(const lg_pub *p)
{
	return p->refused;
}

uint64_t
lg_pub_stalls(const lg_pub *p)
{
	return p->stalls;
}

static int
lg__send_all(int fd, const void *buf, size_t len)
{
	const uint8_t *b = buf;
	while (len) {
		ssize_t n = send(fd, b, len, MSG_NOSIGNAL);
		if (n <= 0) {
			return -1;
		}
		b += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Blocking read of one whole server frame into p->in (set-up only). */
static int
lg__read_frame(lg_pub *p, lg_ws_frame *f, size_t *consumed)
{
	for (;;) {
		long n = lg_ws_parse(p->in, p->ilen, f);
		if (n > 0) {
			*consumed = (size_t)n;
			return 0;
		}
		if (n < 0 || p->ilen == LG_PUB_IN_MAX) {
			return -1;
		}
		ssize_t r = recv(p->fd, p->in + p->ilen,
		                 LG_PUB_IN_MAX - p->ilen, 0);
		if (r <= 0) {
			return -1;
		}
		p->ilen += (size_t)r;
	}
}

static void
lg__consume(lg_pub *p, size_t n)
{
	memmove(p->in, p->in + n, p->ilen - n);
	p->ilen -= n;
}

static int
lg__ws_setup(lg_pub *p, char *err, size_t errlen)
{
	const lg_config *cfg = p->cfg;
	char req[512];
	int n = lg_ws_request(req, sizeof req, cfg->host, cfg->port,
	                      cfg->pub_path);
	if (n < 0 || lg__send_all(p->fd, req, (size_t)n) < 0) {
		snprintf(err, errlen, "publisher: cannot send upgrade");
		return -1;
	}
	size_t head = 0;
	while ((head = lg_ws_head_len(p->in, p->ilen)) == 0) {
		ssize_t r = recv(p->fd, p->in + p->ilen, 8192 - p->ilen, 0);
		if (r <= 0 || p->ilen + (size_t)r >= 8192) {
			snprintf(err, errlen, "publisher: no upgrade answer");
			return -1;
		}
		p->ilen += (size_t)r;
	}
	int rc = lg_ws_check_response((const char *)p->in, head);
	if (rc != 0) {
		snprintf(err, errlen, "publisher: upgrade refused (status %d)",
		         rc);
		return -1;
	}
	lg__consume(p, head);
	if (cfg->target != LG_TARGET_LIGHTSTREAM) {
		return 0;
	}
	char msg[512];
	uint8_t frame[600];
	n = snprintf(msg, sizeof msg,
	             "{\"t\":1,\"m\":{\"appKey\":\"%s\",\"token\":\"%s\"}}",
	             cfg->app, cfg->pub_token);
	size_t fl = lg_ws_encode(frame, sizeof frame, LG_WS_TEXT, msg,
	                         (size_t)n, 0x12345678u);
	if (lg__send_all(p->fd, frame, fl) < 0) {
		snprintf(err, errlen, "publisher: cannot send auth");
		return -1;
	}
	for (;;) {
		lg_ws_frame f;
		size_t used;
		if (lg__read_frame(p, &f, &used) < 0) {
			snprintf(err, errlen, "publisher: no auth answer");
			return -1;
		}
		if (f.opcode == LG_WS_CLOSE) {
			snprintf(err, errlen, "publisher: closed during auth");
			return -1;
		}
		if (f.opcode == LG_WS_TEXT &&
		    memmem(f.payload, f.len, "\"t\":2", 5)) {
			int ok = memmem(f.payload, f.len, "\"ok\":true", 9) !=
			         NULL;
			if (!ok) {
				snprintf(err, errlen,
				         "publisher: auth refused: %.*s",
				         (int)(f.len > 200 ? 200 : f.len),
				         (const char *)f.payload);
			}
			lg__consume(p, used);
			return ok ? 0 : -1;
		}
		lg__consume(p, used);
	}
}

lg_pub *
lg_pub_new(const lg_config *cfg, char *err, size_t errlen)
{
	lg_pub *p = calloc(1, sizeof *p);
	struct sockaddr_in sa = { .sin_family = AF_INET,
		                  .sin_port = htons((uint16_t)cfg->port) };
	struct timeval tv = { .tv_sec = 10 };
	int one = 1;

	if (!p) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	p->cfg = cfg;
	p->rng = 0x9e3779b9u;
	p->out = malloc(LG_PUB_OUT_MAX);
	p->in = malloc(LG_PUB_IN_MAX);
	p->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (!p->out || !p->in || p->fd < 0) {
		snprintf(err, errlen, "publisher: out of resources");
		goto fail;
	}
	inet_pton(AF_INET, cfg->host, &sa.sin_addr);
	setsockopt(p->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	setsockopt(p->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	setsockopt(p->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
	if (connect(p->fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
		snprintf(err, errlen, "publisher: connect %s:%d: %s",
		         cfg->host, cfg->port, strerror(errno));
		goto fail;
	}
	if (cfg->pub_http) {
		char auth[200] = "";
		if (cfg->target == LG_TARGET_LIGHTSTREAM) {
			snprintf(auth, sizeof auth,
			         "Authorization: Bearer %s\r\n",
			         cfg->pub_token);
		}
		snprintf(p->http_head, sizeof p->http_head,
		         "POST %s HTTP/1.1\r\nHost: %s:%d\r\n%s"
		         "Content-Type: application/json\r\n"
		         "Content-Length: ",
		         cfg->pub_path, cfg->host, cfg->port, auth);
	} else if (lg__ws_setup(p, err, errlen) < 0) {
		goto fail;
	}
	int fl = fcntl(p->fd, F_GETFL);
	fcntl(p->fd, F_SETFL, fl | O_NONBLOCK);
	return p;
fail:
	lg_pub_destroy(&p);
	return NULL;
}

void
lg_pub_destroy(lg_pub **pp)
{
	lg_pub *p = pp ? *pp : NULL;
	if (!p) {
		return;
	}
	if (p->fd >= 0) {
		close(p->fd);
	}
	free(p->out);
	free(p->in);
	free(p);
	*pp = NULL;
}

/* Append one message to the output buffer; -1 when it does not fit. */
static int
lg__append(lg_pub *p)
{
	const lg_config *cfg = p->cfg;
	char payload[8192];
	char msg[9000];
	int pl = lg_payload_build(payload, sizeof payload, lg_now_ns(),
	                          p->published, cfg->payload_size);
	if (pl < 0) {
		return -1;
	}
	size_t room = LG_PUB_OUT_MAX - p->olen;
	if (cfg->pub_http) {
		int n = snprintf((char *)p->out + p->olen, room,
		                 "%s%d\r\n\r\n%s", p->http_head, pl, payload);
		if (n < 0 || (size_t)n >= room) {
			return -1;
		}
		p->olen += (size_t)n;
	} else {
		int n = snprintf(msg, sizeof msg,
		                 "{\"t\":5,\"m\":{\"owner\":\"%s\",\"stream\":"
		                 "\"%s\",\"data\":%s}}",
		                 cfg->owner, cfg->pub_stream, payload);
		if (n < 0 || (size_t)n >= sizeof msg) {
			return -1;
		}
		p->rng = p->rng * 1664525u + 1013904223u;
		size_t fl = lg_ws_encode(p->out + p->olen, room, LG_WS_TEXT,
		                         msg, (size_t)n, p->rng | 0x01010101u);
		if (fl == 0) {
			return -1;
		}
		p->olen += fl;
	}
	p->published++;
	return 0;
}

static int
lg__flush(lg_pub *p, char *err, size_t errlen)
{
	while (p->olen) {
		ssize_t n = send(p->fd, p->out, p->olen, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				return 0;
			}
			snprintf(err, errlen, "publisher: send: %s",
			         strerror(errno));
			return -1;
		}
		memmove(p->out, p->out + n, p->olen - (size_t)n);
		p->olen -= (size_t)n;
	}
	return 0;
}

/* Count complete HTTP answers in p->in. */
static void
lg__http_answers(lg_pub *p)
{
	for (;;) {
		size_t head = lg_ws_head_len(p->in, p->ilen);
		if (head == 0) {
			return;
		}
		const char *h = (const char *)p->in;
		int status = head > 12 ? atoi(h + 9) : 0;
		size_t body = 0;
		const char *cl = NULL;
		for (const char *q = h; q && q < h + head;) {
			q = memchr(q, '\n', (size_t)(h + head - q));
			if (!q) {
				break;
			}
			q++;
			if (strncasecmp(q, "Content-Length:", 15) == 0) {
				cl = q + 15;
			}
		}
		if (cl) {
			body = (size_t)strtoul(cl, NULL, 10);
		}
		if (p->ilen < head + body) {
			return;
		}
		if (status >= 200 && status < 300) {
			p->responses++;
		} else {
			p->refused++;
		}
		lg__consume(p, head + body);
	}
}

/* Handle what a WebSocket server sent the publisher. */
static int
lg__ws_input(lg_pub *p, char *err, size_t errlen)
{
	for (;;) {
		lg_ws_frame f;
		long n = lg_ws_parse(p->in, p->ilen, &f);
		if (n == 0) {
			return 0;
		}
		if (n < 0) {
			snprintf(err, errlen, "publisher: invalid frame");
			return -1;
		}
		if (f.opcode == LG_WS_CLOSE) {
			unsigned code = f.len >= 2 ? ((unsigned)f.payload[0]
			                              << 8) | f.payload[1]
			                           : 1005;
			snprintf(err, errlen, "publisher: server closed (%u)",
			         code);
			return -1;
		}
		if (f.opcode == LG_WS_TEXT &&
		    memmem(f.payload, f.len, "\"t\":10", 6)) {
			snprintf(err, errlen, "publisher: server error: %.*s",
			         (int)(f.len > 200 ? 200 : f.len),
			         (const char *)f.payload);
			return -1;
		}
		if (f.opcode == LG_WS_PING) {
			uint8_t pong[160];
			size_t m = lg_ws_encode(
			        pong, sizeof pong, LG_WS_PONG, f.payload,
			        f.len > 125 ? 125 : f.len, 0x01020304u);
			if (m && LG_PUB_OUT_MAX - p->olen > m) {
				memcpy(p->out + p->olen, pong, m);
				p->olen += m;
			}
		}
		lg__consume(p, (size_t)n);
	}
}

int
lg_pub_pump(lg_pub *p, uint64_t target, char *err, size_t errlen)
{
	while (p->published < target) {
		if (p->cfg->pub_http &&
		    p->published - p->responses - p->refused >=
		            LG_PUB_INFLIGHT) {
			p->stalls++;
			break;
		}
		if (p->olen > LG_PUB_OUT_MAX - 16384 || lg__append(p) < 0) {
			p->stalls++;
			break;
		}
	}
	if (lg__flush(p, err, errlen) < 0) {
		return -1;
	}
	for (;;) {
		if (p->ilen == LG_PUB_IN_MAX) {
			snprintf(err, errlen, "publisher: answer too large");
			return -1;
		}
		ssize_t n = recv(p->fd, p->in + p->ilen,
		                 LG_PUB_IN_MAX - p->ilen, 0);
		if (n == 0) {
			snprintf(err, errlen, "publisher: server closed");
			return -1;
		}
		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				break;
			}
			snprintf(err, errlen, "publisher: recv: %s",
			         strerror(errno));
			return -1;
		}
		p->ilen += (size_t)n;
		if (p->cfg->pub_http) {
			lg__http_answers(p);
		} else if (lg__ws_input(p, err, errlen) < 0) {
			return -1;
		}
	}
	return lg__flush(p, err, errlen);
}

void
lg_pub_wait(lg_pub *p, int ms)
{
	struct pollfd pfd = { .fd = p->fd,
		              .events = POLLIN | (p->olen ? POLLOUT : 0) };
	poll(&pfd, 1, ms);
}
