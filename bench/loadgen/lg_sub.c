/* Subscriber process: thousands of non-blocking WebSocket connections on one
 * epoll set. Per connection only a small struct is kept; reads go through
 * one process-wide buffer and only a partial frame is copied aside. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "lg_loadgen.h"
#include "lg_payload.h"
#include "lg_ws.h"

enum {
	LG_C_IDLE,
	LG_C_CONNECTING,
	LG_C_HANDSHAKE,
	LG_C_AUTH,
	LG_C_SUBSCRIBE,
	LG_C_READY,
	LG_C_CLOSED,
	LG_C_FAILED,
};

#define LG_RBUF       (4 * LG_WS_MAX_FRAME)
#define LG_MAX_EVENTS 1024

typedef struct lg_conn {
	int fd;
	uint8_t state;
	uint8_t slow;
	uint8_t was_ready;
	uint8_t has_last;
	uint16_t subs_ok;
	uint16_t close_code;
	uint32_t index;
	uint64_t last_seq;
	uint64_t received;
	uint64_t started_ns;
	uint8_t *rbuf; /* partial frame kept between reads */
	uint32_t rlen;
	uint8_t *wbuf; /* unsent bytes */
	uint32_t wlen;
} lg_conn;

typedef struct lg_sub {
	const lg_config *cfg;
	lg_shared *sh;
	lg_child_stats *st;
	int ep;
	lg_conn *conns;
	unsigned count;
	unsigned first;
	unsigned next;    /* next connection to start */
	unsigned pending; /* started, neither ready nor failed */
	unsigned settled; /* ready or failed during set-up */
	unsigned slow_period;
	uint32_t rng;
	char req[512];
	int reqlen;
	uint8_t rb[LG_RBUF];
} lg_sub;

uint64_t
lg_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static double
lg__cpu_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
lg__note_error(lg_sub *s, const char *what, int err)
{
	if (s->st->first_error[0]) {
		return;
	}
	if (err) {
		snprintf(s->st->first_error, sizeof s->st->first_error,
		         "%s: %s", what, strerror(err));
	} else {
		snprintf(s->st->first_error, sizeof s->st->first_error, "%s",
		         what);
	}
}

static void
lg__record_code(lg_child_stats *st, unsigned code)
{
	for (int i = 0; i < LG_MAX_CODES; i++) {
		if (st->codes[i][1] == 0 || st->codes[i][0] == code) {
			st->codes[i][0] = code;
			st->codes[i][1]++;
			return;
		}
	}
}

static int
lg__settling(const lg_conn *c)
{
	return c->state >= LG_C_CONNECTING && c->state <= LG_C_SUBSCRIBE;
}

/* Close the socket; `failed` marks a connection that never became ready. */
static void
lg__conn_close(lg_sub *s, lg_conn *c, int failed)
{
	if (c->fd >= 0) {
		close(c->fd); /* also removes it from the epoll set */
		c->fd = -1;
	}
	if (lg__settling(c)) {
		s->pending--;
		s->settled++;
	}
	if (failed && c->state != LG_C_READY) {
		s->st->failed++;
	}
	c->state = failed && !c->was_ready ? LG_C_FAILED : LG_C_CLOSED;
	free(c->rbuf);
	c->rbuf = NULL;
	c->rlen = 0;
	free(c->wbuf);
	c->wbuf = NULL;
	c->wlen = 0;
}

static void
lg__watch(lg_sub *s, lg_conn *c, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.ptr = c };
	epoll_ctl(s->ep, EPOLL_CTL_MOD, c->fd, &ev);
}

/* Send bytes, keeping what the socket does not take. */
static int
lg__conn_send(lg_sub *s, lg_conn *c, const void *buf, size_t len)
{
	size_t off = 0;
	if (c->wlen == 0) {
		ssize_t n = send(c->fd, buf, len, MSG_NOSIGNAL);
		if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
			lg__note_error(s, "send", errno);
			return -1;
		}
		off = n > 0 ? (size_t)n : 0;
		if (off == len) {
			return 0;
		}
	}
	uint8_t *nb = realloc(c->wbuf, c->wlen + (len - off));
	if (!nb) {
		return -1;
	}
	memcpy(nb + c->wlen, (const uint8_t *)buf + off, len - off);
	c->wbuf = nb;
	c->wlen += (uint32_t)(len - off);
	lg__watch(s, c, EPOLLIN | EPOLLOUT);
	return 0;
}

static int
lg__conn_flush(lg_sub *s, lg_conn *c)
{
	ssize_t n = send(c->fd, c->wbuf, c->wlen, MSG_NOSIGNAL);
	if (n < 0) {
		if (errno == EAGAIN || errno == EWOULDBLOCK) {
			return 0;
		}
		lg__note_error(s, "send", errno);
		return -1;
	}
	memmove(c->wbuf, c->wbuf + n, c->wlen - (size_t)n);
	c->wlen -= (uint32_t)n;
	if (c->wlen == 0) {
		free(c->wbuf);
		c->wbuf = NULL;
		lg__watch(s, c,
		          c->slow && c->state == LG_C_READY ? EPOLLRDHUP
		                                            : EPOLLIN);
	}
	return 0;
}

static int
lg__send_text(lg_sub *s, lg_conn *c, const char *text, size_t len)
{
	uint8_t frame[8192];
	s->rng = s->rng * 1103515245u + 12345u;
	size_t n = lg_ws_encode(frame, sizeof frame, LG_WS_TEXT, text, len,
	                        s->rng | 0x01010101u);
	if (n == 0) {
		return -1;
	}
	return lg__conn_send(s, c, frame, n);
}

static void
lg__start(lg_sub *s, lg_conn *c)
{
	const lg_config *cfg = s->cfg;
	unsigned idx = c->index;
	struct sockaddr_in sa = { .sin_family = AF_INET,
		                  .sin_port = htons((uint16_t)cfg->port) };
	inet_pton(AF_INET, cfg->host, &sa.sin_addr);

	s->st->started++;
	s->pending++;
	c->started_ns = lg_now_ns();
	c->state = LG_C_CONNECTING;
	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0) {
		lg__note_error(s, "socket", errno);
		goto fail;
	}
	int one = 1;
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	if (c->slow) {
		/* A small window makes the server's own queue fill quickly. */
		int small = 4096;
		setsockopt(c->fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
	}
	if (cfg->sources > 0) {
		struct sockaddr_in src = { .sin_family = AF_INET };
		src.sin_addr.s_addr = htonl(0x7f000002u + idx % cfg->sources);
		setsockopt(c->fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one,
		           sizeof one);
		if (bind(c->fd, (struct sockaddr *)&src, sizeof src) < 0) {
			lg__note_error(s, "bind", errno);
			goto fail;
		}
	}
	if (connect(c->fd, (struct sockaddr *)&sa, sizeof sa) < 0 &&
	    errno != EINPROGRESS) {
		lg__note_error(s, "connect", errno);
		goto fail;
	}
	struct epoll_event ev = { .events = EPOLLOUT | EPOLLIN,
		                  .data.ptr = c };
	if (epoll_ctl(s->ep, EPOLL_CTL_ADD, c->fd, &ev) < 0) {
		lg__note_error(s, "epoll_ctl", errno);
		goto fail;
	}
	return;
fail:
	lg__conn_close(s, c, 1);
}

static void
lg__became_ready(lg_sub *s, lg_conn *c)
{
	s->pending--;
	s->settled++;
	c->state = LG_C_READY;
	c->was_ready = 1;
	s->st->ready++;
	lg_hist_record(&s->st->setup, (lg_now_ns() - c->started_ns) / 1000);
	if (c->slow) {
		s->st->slow++;
		lg__watch(s, c, EPOLLRDHUP); /* stop reading from now on */
	}
}

static void
lg__send_subscribes(lg_sub *s, lg_conn *c)
{
	const lg_config *cfg = s->cfg;
	char msg[1024];
	char query[256] = "";
	if (cfg->selectivity >= 0) {
		snprintf(query, sizeof query,
		         ",\"query\":{\"mode\":\"any\",\"where\":{\"field\":"
		         "\"k\",\"op\":\"less\",\"value\":%d}}",
		         cfg->selectivity);
	}
	for (int i = 0; i < cfg->nstreams; i++) {
		int n = snprintf(msg, sizeof msg,
		                 "{\"t\":6,\"m\":{\"owner\":\"%s\",\"stream\":"
		                 "\"%s\",\"requestId\":\"r%d\"%s}}",
		                 cfg->owner, cfg->streams[i], i, query);
		if (lg__send_text(s, c, msg, (size_t)n) < 0) {
			lg__conn_close(s, c, 1);
			return;
		}
	}
}

/* `"ok": true` somewhere in the message. */
static int
lg__is_ok(const char *p, size_t len)
{
	const char *k = memmem(p, len, "\"ok\"", 4);
	if (!k) {
		return 0;
	}
	const char *end = p + len;
	k += 4;
	while (k < end && (*k == ' ' || *k == ':')) {
		k++;
	}
	return end - k >= 4 && memcmp(k, "true", 4) == 0;
}

static int
lg__msg_type(const char *p, size_t len)
{
	const char *k = memmem(p, len, "\"t\"", 3);
	if (!k) {
		return -1;
	}
	const char *end = p + len;
	k += 3;
	while (k < end && (*k == ' ' || *k == ':')) {
		k++;
	}
	int t = 0, digits = 0;
	while (k < end && *k >= '0' && *k <= '9' && digits < 4) {
		t = t * 10 + (*k - '0');
		k++;
		digits++;
	}
	return digits ? t : -1;
}

static void
lg__data(lg_sub *s, lg_conn *c, const char *p, size_t len)
{
	lg_payload pl;
	uint64_t now = lg_now_ns();
	lg_child_stats *st = s->st;

	st->data_frames++;
	if (lg_payload_parse(p, len, s->cfg->payload_size, &pl) < 0) {
		st->bad_frames++;
		lg__note_error(s, "data frame without payload fields", 0);
		return;
	}
	if (pl.ts < s->sh->start_ns) {
		st->stale++;
		return;
	}
	if (!pl.intact) {
		st->corrupt++;
		lg__note_error(s, "payload pad altered", 0);
	}
	if (c->has_last && pl.seq <= c->last_seq) {
		st->dups++;
	} else {
		c->has_last = 1;
		c->last_seq = pl.seq;
		c->received++;
		if (!c->slow) {
			__atomic_store_n(&st->normal_received,
			                 st->normal_received + 1,
			                 __ATOMIC_RELAXED);
		}
	}
	if (__atomic_load_n(&s->sh->phase, __ATOMIC_RELAXED) ==
	    LG_PHASE_MEASURE) {
		st->window_frames++;
	}
	uint64_t ws =
	        __atomic_load_n(&s->sh->window_start_ns, __ATOMIC_RELAXED);
	uint64_t we = __atomic_load_n(&s->sh->window_end_ns, __ATOMIC_RELAXED);
	if (ws && pl.ts >= ws && pl.ts <= we && now >= pl.ts) {
		lg_hist_record(&st->lat, (now - pl.ts) / 1000);
	}
}

static void
lg__message(lg_sub *s, lg_conn *c, const char *p, size_t len)
{
	if (s->cfg->target == LG_TARGET_NCHAN) {
		if (c->state == LG_C_READY) {
			lg__data(s, c, p, len);
		}
		return;
	}
	int t = lg__msg_type(p, len);
	switch (t) {
	case 5: {
		const char *d = memmem(p, len, "\"data\"", 6);
		if (!d) {
			s->st->bad_frames++;
			return;
		}
		lg__data(s, c, d, len - (size_t)(d - p));
		break;
	}
	case 2:
		if (c->state != LG_C_AUTH) {
			s->st->bad_frames++;
		} else if (lg__is_ok(p, len)) {
			c->state = LG_C_SUBSCRIBE;
			lg__send_subscribes(s, c);
		} else {
			s->st->auth_failed++;
			lg__note_error(s, "authentication refused", 0);
			lg__conn_close(s, c, 1);
		}
		break;
	case 3:
		s->st->auth_failed++;
		lg__note_error(s, "web tokens are not supported", 0);
		lg__conn_close(s, c, 1);
		break;
	case 7:
		if (c->state != LG_C_SUBSCRIBE) {
			s->st->bad_frames++;
		} else if (lg__is_ok(p, len)) {
			if (++c->subs_ok == s->cfg->nstreams) {
				lg__became_ready(s, c);
			}
		} else {
			s->st->sub_failed++;
			lg__note_error(s, "subscription refused", 0);
			lg__conn_close(s, c, 1);
		}
		break;
	case 10:
		s->st->errors_received++;
		break;
	default:
		break; /* pongs of other types, publish answers: not ours */
	}
}

/* Parse everything complete in buf; returns bytes consumed, -1 to close. */
static long
lg__frames(lg_sub *s, lg_conn *c, const uint8_t *buf, size_t len)
{
	size_t off = 0;
	while (off < len && c->fd >= 0) {
		lg_ws_frame f;
		long n = lg_ws_parse(buf + off, len - off, &f);
		if (n == 0) {
			break;
		}
		if (n < 0) {
			s->st->bad_frames++;
			lg__note_error(s, "invalid server frame", 0);
			return -1;
		}
		off += (size_t)n;
		s->st->frames++;
		switch (f.opcode) {
		case LG_WS_TEXT:
		case LG_WS_BINARY:
			if (!f.fin) {
				s->st->bad_frames++; /* servers here never
				                        fragment */
				break;
			}
			lg__message(s, c, (const char *)f.payload, f.len);
			break;
		case LG_WS_PING: {
			uint8_t pong[160];
			size_t pl = f.len > 125 ? 125 : f.len;
			size_t m = lg_ws_encode(pong, sizeof pong, LG_WS_PONG,
			                        f.payload, pl, 0x5a5a5a5au);
			if (m && lg__conn_send(s, c, pong, m) < 0) {
				return -1;
			}
			break;
		}
		case LG_WS_CLOSE: {
			unsigned code = f.len >= 2 ? ((unsigned)f.payload[0]
			                              << 8) | f.payload[1]
			                           : 1005;
			uint8_t reply[16];
			size_t m = lg_ws_encode(
			        reply, sizeof reply, LG_WS_CLOSE, f.payload,
			        f.len >= 2 ? 2 : 0, 0x5a5a5a5au);
			send(c->fd, reply, m, MSG_NOSIGNAL | MSG_DONTWAIT);
			c->close_code = (uint16_t)code;
			lg__record_code(s->st, code);
			s->st->closed_by_server++;
			lg__conn_close(s, c, 1);
			return (long)off;
		}
		default:
			break;
		}
	}
	return (long)off;
}

static long
lg__handshake(lg_sub *s, lg_conn *c, const uint8_t *buf, size_t len)
{
	size_t head = lg_ws_head_len(buf, len);
	if (head == 0) {
		return len > 8192 ? -1 : 0;
	}
	int rc = lg_ws_check_response((const char *)buf, head);
	if (rc != 0) {
		char what[64];
		snprintf(what, sizeof what, "upgrade refused (status %d)", rc);
		lg__note_error(s, what, 0);
		s->st->handshake_failed++;
		return -1;
	}
	if (s->cfg->target == LG_TARGET_NCHAN) {
		lg__became_ready(s, c);
	} else {
		char msg[512];
		int n = snprintf(msg, sizeof msg,
		                 "{\"t\":1,\"m\":{\"appKey\":\"%s\",\"token\":"
		                 "\"%s\"}}",
		                 s->cfg->app, s->cfg->token);
		c->state = LG_C_AUTH;
		if (lg__send_text(s, c, msg, (size_t)n) < 0) {
			return -1;
		}
	}
	return (long)head;
}

static void
lg__readable(lg_sub *s, lg_conn *c)
{
	for (int round = 0; round < 4 && c->fd >= 0; round++) {
		size_t have = c->rlen;
		if (have) {
			memcpy(s->rb, c->rbuf, have);
		}
		ssize_t n = recv(c->fd, s->rb + have, sizeof s->rb - have, 0);
		if (n == 0) {
			if (c->state != LG_C_READY) {
				lg__note_error(
				        s, "server closed the connection", 0);
			}
			lg__record_code(s->st, 1006);
			s->st->closed_by_server++;
			lg__conn_close(s, c, 1);
			return;
		}
		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				return;
			}
			lg__note_error(s, "recv", errno);
			lg__conn_close(s, c, 1);
			return;
		}
		size_t total = have + (size_t)n;
		size_t off = 0;
		if (c->state == LG_C_HANDSHAKE) {
			long h = lg__handshake(s, c, s->rb, total);
			if (h < 0) {
				lg__conn_close(s, c, 1);
				return;
			}
			off = (size_t)h;
		}
		if (c->state != LG_C_HANDSHAKE) {
			long m = lg__frames(s, c, s->rb + off, total - off);
			if (m < 0) {
				lg__conn_close(s, c, 1);
				return;
			}
			if (c->fd < 0) {
				return;
			}
			off += (size_t)m;
		}
		size_t left = total - off;
		if (left) {
			uint8_t *nb = realloc(c->rbuf, left);
			if (!nb) {
				lg__conn_close(s, c, 1);
				return;
			}
			memcpy(nb, s->rb + off, left);
			c->rbuf = nb;
		} else {
			free(c->rbuf);
			c->rbuf = NULL;
		}
		c->rlen = (uint32_t)left;
		if ((size_t)n < sizeof s->rb - have) {
			return; /* socket drained */
		}
	}
}

static void
lg__writable(lg_sub *s, lg_conn *c)
{
	if (c->state == LG_C_CONNECTING) {
		int err = 0;
		socklen_t l = sizeof err;
		getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &l);
		if (err) {
			lg__note_error(s, "connect", err);
			lg__conn_close(s, c, 1);
			return;
		}
		c->state = LG_C_HANDSHAKE;
		lg__watch(s, c, EPOLLIN);
		if (lg__conn_send(s, c, s->req, (size_t)s->reqlen) < 0) {
			lg__conn_close(s, c, 1);
		}
		return;
	}
	if (c->wlen && lg__conn_flush(s, c) < 0) {
		lg__conn_close(s, c, 1);
	}
}

/* A slow subscriber never read, so a close from the server waits behind the
 * data the kernel still holds for it. Read (and discard) until the close
 * frame, the end of the stream, or a quiet moment. Returns the close code,
 * 1006 for an end without close frame, 0 when the server kept it open. */
static unsigned
lg__drain_slow(lg_sub *s, lg_conn *c, uint64_t deadline)
{
	size_t have = 0;
	uint64_t quiet = lg_now_ns();
	while (lg_now_ns() < deadline) {
		ssize_t n = recv(c->fd, s->rb + have, sizeof s->rb - have,
		                 MSG_DONTWAIT);
		if (n == 0) {
			return 1006;
		}
		if (n < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK) {
				return 1006;
			}
			if (lg_now_ns() - quiet > 200000000ull) {
				return 0;
			}
			usleep(1000);
			continue;
		}
		quiet = lg_now_ns();
		have += (size_t)n;
		size_t off = 0;
		for (;;) {
			lg_ws_frame f;
			long m = lg_ws_parse(s->rb + off, have - off, &f);
			if (m < 0) {
				return 1002;
			}
			if (m == 0) {
				break;
			}
			if (f.opcode == LG_WS_CLOSE) {
				return f.len >= 2 ? ((unsigned)f.payload[0]
				                     << 8) | f.payload[1]
				                  : 1005;
			}
			off += (size_t)m;
		}
		memmove(s->rb, s->rb + off, have - off);
		have -= off;
	}
	return 0;
}

static void
lg__finish(lg_sub *s)
{
	lg_child_stats *st = s->st;
	uint64_t drain_end = lg_now_ns() + 6000000000ull;
	for (unsigned i = 0; i < s->count; i++) {
		lg_conn *c = &s->conns[i];
		if (c->slow && c->fd >= 0 && c->state == LG_C_READY) {
			uint64_t now = lg_now_ns();
			uint64_t until = now + 2000000000ull;
			unsigned code = lg__drain_slow(
			        s, c, until < drain_end ? until : drain_end);
			if (code) {
				lg__record_code(st, code);
				st->closed_by_server++;
				close(c->fd);
				c->fd = -1;
				c->state = LG_C_CLOSED;
			}
		}
	}
	uint64_t expected =
	        __atomic_load_n(&s->sh->expected, __ATOMIC_ACQUIRE);
	for (unsigned i = 0; i < s->count; i++) {
		lg_conn *c = &s->conns[i];
		if (c->was_ready && !c->slow) {
			if (c->received < expected) {
				st->drops += expected - c->received;
				st->lost_subscribers++;
			}
		}
		if (c->slow && c->was_ready && c->state == LG_C_CLOSED) {
			st->slow_closed++;
		}
		if (c->fd >= 0) {
			close(c->fd);
		}
		free(c->rbuf);
		free(c->wbuf);
	}
	__atomic_store_n(&st->finished, 1, __ATOMIC_RELEASE);
}

void
lg_sub_run(const lg_config *cfg, lg_shared *sh, unsigned id, unsigned first,
           unsigned count)
{
	static lg_sub s; /* large read buffer: keep it off the stack */
	struct epoll_event events[LG_MAX_EVENTS];

	s.cfg = cfg;
	s.sh = sh;
	s.st = &sh->child[id];
	s.first = first;
	s.count = count;
	s.rng = 2166136261u ^ (id * 16777619u);
	s.ep = epoll_create1(EPOLL_CLOEXEC);
	s.conns = calloc(count ? count : 1, sizeof *s.conns);
	s.reqlen = lg_ws_request(s.req, sizeof s.req, cfg->host, cfg->port,
	                         cfg->path);
	if (s.ep < 0 || !s.conns || s.reqlen < 0) {
		lg__note_error(&s, "out of resources", errno);
		s.st->connect_done = 1;
		_exit(0);
	}
	s.slow_period = cfg->slow_fraction > 0
	                        ? (unsigned)(1.0 / cfg->slow_fraction + 0.5)
	                        : 0;
	for (unsigned i = 0; i < count; i++) {
		s.conns[i].fd = -1;
		s.conns[i].index = first + i;
		if (s.slow_period &&
		    (first + i) % s.slow_period == s.slow_period - 1) {
			s.conns[i].slow = 1;
		}
	}

	uint64_t start = lg_now_ns();
	uint64_t deadline = start + (uint64_t)(cfg->connect_timeout * 1e9);
	int connecting = 1;
	int last_phase = LG_PHASE_CONNECT;
	double cpu_at_window = 0;
	for (;;) {
		int phase = __atomic_load_n(&sh->phase, __ATOMIC_ACQUIRE);
		if (phase != last_phase) {
			/* Our own CPU inside the window tells whether the
			 * client side limited the run. */
			if (phase == LG_PHASE_MEASURE) {
				cpu_at_window = lg__cpu_now();
			} else if (last_phase == LG_PHASE_MEASURE) {
				s.st->window_cpu_s =
				        lg__cpu_now() - cpu_at_window;
			}
			last_phase = phase;
		}
		if (phase == LG_PHASE_DONE) {
			break;
		}
		if (connecting) {
			unsigned budget = 256;
			while (s.next < count && s.pending < cfg->inflight &&
			       budget--) {
				lg__start(&s, &s.conns[s.next++]);
			}
			uint64_t now = lg_now_ns();
			if (s.settled >= count || now > deadline) {
				for (unsigned i = 0; i < count; i++) {
					lg_conn *c = &s.conns[i];
					if (c->state == LG_C_IDLE) {
						s.st->failed++;
						c->state = LG_C_FAILED;
					} else if (lg__settling(c)) {
						lg__note_error(&s,
						               "set-up timed "
						               "out",
						               0);
						lg__conn_close(&s, c, 1);
					}
				}
				s.st->connect_done_ns = now - start;
				__atomic_store_n(&s.st->connect_done, 1,
				                 __ATOMIC_RELEASE);
				connecting = 0;
			}
		}
		int n = epoll_wait(s.ep, events, LG_MAX_EVENTS, 5);
		for (int i = 0; i < n; i++) {
			lg_conn *c = events[i].data.ptr;
			uint32_t e = events[i].events;
			if (c->fd < 0) {
				continue;
			}
			if (c->slow && c->state == LG_C_READY) {
				if (e & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
					lg__conn_close(&s, c, 0);
				}
				continue;
			}
			if (e & EPOLLOUT) {
				lg__writable(&s, c);
			}
			if (c->fd >= 0 &&
			    (e & (EPOLLIN | EPOLLHUP | EPOLLERR))) {
				if (c->state == LG_C_CONNECTING) {
					lg__writable(&s, c);
				} else {
					lg__readable(&s, c);
				}
			}
		}
	}
	lg__finish(&s);
	_exit(0);
}
