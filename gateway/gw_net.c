/*
 * Addresses: our own listening sockets and client IPs.
 *
 * The gateway binds its sockets itself (exactly the configured address;
 * SO_REUSEPORT only when asked to share the port with other processes)
 * and hands accepted sockets to libwebsockets, whose vhost does not listen
 * (DESIGN: lws 4.1.6 binds every interface and cannot share a port between
 * processes). In a server of several loops only loop 0 listens; it hands
 * each accepted socket to the least loaded loop (gw_server.c).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "gw_internal.h"
#include "ls_log.h"

/* Strip the IPv4-mapped prefix so "::ffff:1.2.3.4" compares as 1.2.3.4. */
static void
gw__normalize(char *ip)
{
	if (strncmp(ip, "::ffff:", 7) == 0 && strchr(ip + 7, '.') != NULL) {
		memmove(ip, ip + 7, strlen(ip + 7) + 1);
	}
}

bool
gw_ip_is_loopback(const char *ip)
{
	return strncmp(ip, "127.", 4) == 0 || strcmp(ip, "::1") == 0;
}

/* Does ip fall in entry ("ADDR" or "ADDR/BITS")? */
static bool
gw__ip_match(const char *ip, const char *entry)
{
	unsigned char a[16], b[16];
	char addr[INET6_ADDRSTRLEN];
	const char *slash = strchr(entry, '/');
	size_t n = slash ? (size_t)(slash - entry) : strlen(entry);
	int fam, bits, len;

	if (n >= sizeof(addr)) {
		return false;
	}
	memcpy(addr, entry, n);
	addr[n] = '\0';
	fam = strchr(addr, ':') ? AF_INET6 : AF_INET;
	len = fam == AF_INET ? 4 : 16;
	if (inet_pton(fam, addr, b) != 1 || inet_pton(fam, ip, a) != 1) {
		return false;
	}
	bits = slash ? atoi(slash + 1) : len * 8;
	if (bits < 0 || bits > len * 8) {
		return false;
	}
	for (int i = 0; i < len && bits > 0; i++, bits -= 8) {
		unsigned char mask =
		        bits >= 8 ? 0xFF : (unsigned char)(0xFF << (8 - bits));
		if ((a[i] & mask) != (b[i] & mask)) {
			return false;
		}
	}
	return true;
}

static bool
gw__trusted(gw_gateway *gw, const char *peer)
{
	for (size_t i = 0; i < gw->trusted_proxies.count; i++) {
		if (gw__ip_match(peer, gw->trusted_proxies.items[i])) {
			return true;
		}
	}
	return false;
}

bool
gw_request_is_tls(gw_gateway *gw, struct lws *wsi)
{
	char peer[GW_IP_MAX] = "", proto[16];

	if (gw_wsi_is_tls(gw, wsi)) {
		return true;
	}
	lws_get_peer_simple(wsi, peer, sizeof(peer));
	gw__normalize(peer);
	return gw__trusted(gw, peer) &&
	       lws_hdr_custom_copy(wsi, proto, sizeof(proto),
	                           "x-forwarded-proto:", 18) > 0 &&
	       strcasecmp(proto, "https") == 0;
}

void
gw_client_ip(gw_gateway *gw, struct lws *wsi, char *out, size_t len)
{
	char xff[512];
	bool trusted;

	out[0] = '\0';
	lws_get_peer_simple(wsi, out, len);
	gw__normalize(out);
	trusted = gw__trusted(gw, out);
	if (!trusted || lws_hdr_copy(wsi, xff, sizeof(xff),
	                             WSI_TOKEN_X_FORWARDED_FOR) <= 0) {
		return;
	}
	/* The left-most entry is the original client. */
	{
		char *p = xff, *end;
		unsigned char tmp[16];
		while (*p == ' ' || *p == '\t') {
			p++;
		}
		end = p + strcspn(p, ", \t");
		*end = '\0';
		if (end > p && (size_t)(end - p) < len &&
		    (inet_pton(AF_INET, p, tmp) == 1 ||
		     inet_pton(AF_INET6, p, tmp) == 1)) {
			memcpy(out, p, (size_t)(end - p) + 1);
			gw__normalize(out);
		}
	}
}

bool
gw_wsi_is_tls(gw_gateway *gw, struct lws *wsi)
{
	return gw->vh_tls != NULL && lws_get_vhost(wsi) == gw->vh_tls;
}

static void gw__accept(struct ev_loop *loop, ev_io *w, int revents);

static void
gw__resume(struct ev_loop *loop, ev_timer *w, int revents)
{
	gw_listener *l = w->data;

	if (l->fd >= 0 && !l->gw->stopping) {
		ev_io_start(loop, &l->io);
	}
}

static void
gw__accept(struct ev_loop *loop, ev_io *w, int revents)
{
	gw_listener *l = w->data;
	gw_gateway *gw = l->gw;

	for (int i = 0; i < 64; i++) {
		int fd = accept4(l->fd, NULL, NULL,
		                 SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE ||
			    errno == ENOBUFS || errno == ENOMEM) {
				/* Out of descriptors: pause instead of
				 * spinning on a readable listener. */
				ls_warn(GW_LOG, "accept: %s; pausing 100 ms",
				        strerror(errno));
				ev_io_stop(loop, &l->io);
				ev_timer_set(&l->pause, 0.1, 0.0);
				ev_timer_start(loop, &l->pause);
			}
			return;
		}
		if (gw->max_connections > 0 &&
		    (long)gw_server_connections(gw) >= gw->max_connections) {
			gw->m.connections_rejected++;
			close(fd);
			continue;
		}
		gw_server_accepted(gw, fd, l->tls);
	}
}

void
gw_adopt(gw_gateway *gw, int fd, bool tls)
{
	struct lws *wsi;
	int one = 1;

	/* Small frames leave at once: with Nagle's algorithm a frame sent
	 * while an earlier one waits for its (delayed, up to 40 ms) ACK
	 * would wait too. lws sets this on sockets it accepts itself, not on
	 * adopted ones. */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (tls) {
		wsi = lws_adopt_descriptor_vhost(
		        gw->vh_tls,
		        LWS_ADOPT_SOCKET | LWS_ADOPT_HTTP |
		                LWS_ADOPT_ALLOW_SSL,
		        (lws_sock_file_fd_type){ .sockfd = fd }, NULL, NULL);
	} else {
		wsi = lws_adopt_socket_vhost(gw->vh, fd);
	}
	if (wsi == NULL) {
		/* lws closes the descriptor on failure. */
		ls_warn(GW_LOG, "could not adopt a connection");
	}
}

int
gw_listener_open(gw_gateway *gw, gw_listener *l, const char *address, bool tls,
                 ls_error *err)
{
	char host[256], port[16];
	struct addrinfo hints, *res = NULL;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	int p, one = 1, rc;

	l->fd = -1;
	l->gw = gw;
	l->tls = tls;
	if (ls_parse_host_port(address, host, sizeof(host), &p) != 0) {
		return ls_error_set(err, LS_ECONFIG,
		                    "listen address '%s': expected HOST:PORT",
		                    address);
	}
	snprintf(port, sizeof(port), "%d", p);
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE;
	rc = getaddrinfo(host[0] ? host : NULL, port, &hints, &res);
	if (rc != 0) {
		return ls_error_set(err, LS_ECONFIG, "listen address '%s': %s",
		                    address, gai_strerror(rc));
	}
	l->fd = socket(res->ai_family,
	               res->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (l->fd < 0) {
		rc = -errno;
		goto fail;
	}
	/* SO_REUSEADDR: a restart binds over connections in TIME_WAIT. */
	setsockopt(l->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	/* Sharing the port with other processes is opt-in: without it a
	 * second server on the address fails instead of silently taking
	 * half of the clients. */
	if (gw->reuse_port) {
		setsockopt(l->fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
	}
	if (bind(l->fd, res->ai_addr, res->ai_addrlen) != 0 ||
	    listen(l->fd, 4096) != 0) {
		rc = -errno;
		if (rc == -EADDRINUSE) {
			ls_error_set(err, rc,
			             "listen on %s: address in use (another "
			             "server listens there; gateways share a "
			             "port only with --reuse-port on each)",
			             address);
			close(l->fd);
			l->fd = -1;
			freeaddrinfo(res);
			return rc;
		}
		goto fail;
	}
	if (getsockname(l->fd, (struct sockaddr *)&ss, &sl) == 0) {
		char ip[INET6_ADDRSTRLEN] = "?";
		int bound;
		if (ss.ss_family == AF_INET6) {
			struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
			inet_ntop(AF_INET6, &s6->sin6_addr, ip, sizeof(ip));
			bound = ntohs(s6->sin6_port);
			snprintf(l->address, sizeof(l->address), "[%s]:%d", ip,
			         bound);
		} else {
			struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
			inet_ntop(AF_INET, &s4->sin_addr, ip, sizeof(ip));
			bound = ntohs(s4->sin_port);
			snprintf(l->address, sizeof(l->address), "%s:%d", ip,
			         bound);
		}
	}
	freeaddrinfo(res);
	ev_io_init(&l->io, gw__accept, l->fd, EV_READ);
	l->io.data = l;
	ev_init(&l->pause, gw__resume);
	l->pause.data = l;
	ev_io_start(gw->loop, &l->io);
	return 0;
fail:
	ls_error_set(err, rc, "listen on %s: %s", address, strerror(-rc));
	if (l->fd >= 0) {
		close(l->fd);
		l->fd = -1;
	}
	freeaddrinfo(res);
	return rc;
}

void
gw_listener_close(gw_listener *l)
{
	if (l->gw == NULL || l->fd < 0) {
		return;
	}
	ev_io_stop(l->gw->loop, &l->io);
	ev_timer_stop(l->gw->loop, &l->pause);
	close(l->fd);
	l->fd = -1;
}
