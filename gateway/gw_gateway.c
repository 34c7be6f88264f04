/*
 * Gateway lifecycle: the lws context on the caller's libev loop, the
 * listeners, the bus client and its readiness probe, the fabric, and the
 * graceful shutdown of docs/protocol.md.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/socket.h>

#include "gw_client.h"
#include "gw_internal.h"
#include "gw_iplimit.h"
#include "ls_log.h"
#include "ls_time.h"

static int gw__callback(struct lws *wsi, enum lws_callback_reasons reason,
                        void *user, void *in, size_t len);

static const struct lws_protocols gw__protocols[] = {
	{
	        .name = "lightstream",
	        .callback = gw__callback,
	        .per_session_data_size = sizeof(gw_pss),
	        /* Receive chunk, not a message limit: small chunks keep
	         * idle connections small; we reassemble (DESIGN). */
	        .rx_buffer_size = GW_RX_CHUNK,
	        /* Larger than any batch, or lws splits each send(). */
	        .tx_packet_size = GW_TX_PACKET,
	},
	{ NULL, NULL, 0, 0, 0, NULL, 0 },
};

/* ---- lws callback ------------------------------------------------------- */

bool
gw_origin_allowed(gw_gateway *gw, const char *origin)
{
	if (gw->origins.count == 0) {
		return true;
	}
	for (size_t i = 0; i < gw->origins.count; i++) {
		if (strcmp(gw->origins.items[i], "*") == 0 ||
		    strcasecmp(gw->origins.items[i], origin) == 0) {
			return true;
		}
	}
	ls_info(GW_LOG, "refused a connection from origin %s", origin);
	return false;
}

static bool
gw__origin_allowed(gw_gateway *gw, struct lws *wsi)
{
	char origin[256];

	if (lws_hdr_copy(wsi, origin, sizeof(origin), WSI_TOKEN_ORIGIN) <= 0) {
		return true; /* not a browser: nothing to check */
	}
	return gw_origin_allowed(gw, origin);
}

/*
 * Connections per client IP (gateway.max_connections_per_ip,
 * gateway.connection_rate_per_ip; both off by default): over either, the
 * upgrade is answered 429 rate_limited. The client IP is the one
 * authentication uses (trusted proxies' X-Forwarded-For).
 */
static int
gw__ip_admit(gw_gateway *gw, struct lws *wsi)
{
	static ls_log_limit lim = LS_LOG_LIMIT_INIT(10000, 5);
	char ip[GW_IP_MAX];
	gw_ipverdict v;

	if (gw->shared == NULL) {
		return 0;
	}
	gw_client_ip(gw, wsi, ip, sizeof(ip));
	v = gw_iplimit_admit(gw->shared->conns_by_ip, ip, ls_now_ms());
	if (v == GW_IP_OK) {
		return 0;
	}
	gw->m.connections_rejected++;
	ls_log_ratelimited(&lim, LS_LOG_INFO, GW_LOG,
	                   "refused a WebSocket from %s: %s", ip,
	                   v == GW_IP_TOO_MANY
	                           ? "gateway.max_connections_per_ip"
	                           : "gateway.connection_rate_per_ip");
	lws_return_http_status(
	        wsi, ls_proto_http_status("rate_limited"),
	        v == GW_IP_TOO_MANY
	                ? "rate_limited: too many connections from this "
	                  "address"
	                : "rate_limited: too many new connections from this "
	                  "address");
	return 1;
}

static int
gw__filter(gw_gateway *gw, struct lws *wsi)
{
	char uri[64];
	const char *why = NULL;
	unsigned status;

	if (gw->stopping) {
		return 1;
	}
	if (lws_hdr_copy(wsi, uri, sizeof(uri), WSI_TOKEN_GET_URI) <= 0 ||
	    strcmp(uri, GW_WS_PATH) != 0) {
		return 1;
	}
	/* Control characters, sizes: as for every HTTP request. */
	if (gw_http_head_check(gw, wsi, uri, &status, &why) != 0) {
		ls_debug(GW_LOG, "refused a WebSocket upgrade: %s", why);
		return 1;
	}
	if (!gw__origin_allowed(gw, wsi)) {
		return 1;
	}
	return gw__ip_admit(gw, wsi);
}

static int
gw__callback(struct lws *wsi, enum lws_callback_reasons reason, void *user,
             void *in, size_t len)
{
	gw_pss *pss = user;
	gw_gateway *gw = lws_context_user(lws_get_context(wsi));

	switch (reason) {
	case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
		return gw__filter(gw, wsi);
	case LWS_CALLBACK_ESTABLISHED:
		if (pss->http != NULL) {
			gw_http_free(&pss->http);
		}
		pss->conn = gw_conn_new(gw, wsi);
		if (pss->conn == NULL) {
			return -1;
		}
		if (gw->stopping) {
			gw_conn_close(pss->conn, LS_CLOSE_GOING_AWAY);
		}
		return 0;
	case LWS_CALLBACK_RECEIVE:
		return pss->conn ? gw_conn_receive(pss->conn, in, len) : -1;
	case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
		return pss->conn ? gw_conn_peer_close(pss->conn, in, len) : 0;
	case LWS_CALLBACK_RECEIVE_PONG:
		if (pss->conn != NULL) {
			gw_conn_alive(pss->conn);
		}
		return 0;
	case LWS_CALLBACK_SERVER_WRITEABLE:
		return pss->conn ? gw_conn_writeable(pss->conn) : 0;
	case LWS_CALLBACK_CLOSED:
		if (pss != NULL && pss->conn != NULL) {
			gw_conn_destroy(pss->conn);
			pss->conn = NULL;
		}
		return 0;
	case LWS_CALLBACK_HTTP:
		gw->m.http_requests++;
		if (pss->conn != NULL) {
			return -1; /* an SSE response is the last one */
		}
		return gw_http_request(gw, wsi, pss, in);
	case LWS_CALLBACK_HTTP_BODY:
		return pss->http ? gw_http_body(pss->http, in, len) : 0;
	case LWS_CALLBACK_HTTP_BODY_COMPLETION:
		return pss->http ? gw_http_body_done(pss->http) : 0;
	case LWS_CALLBACK_HTTP_WRITEABLE:
		if (pss->conn != NULL) {
			return gw_conn_writeable(pss->conn); /* SSE */
		}
		return pss->http ? gw_http_writeable(pss->http) : 0;
	case LWS_CALLBACK_HTTP_FILE_COMPLETION:
		return lws_http_transaction_completed(wsi) ? -1 : 0;
	case LWS_CALLBACK_CLOSED_HTTP:
	case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
		if (pss != NULL && pss->http != NULL) {
			gw_http_free(&pss->http);
		}
		if (pss != NULL && pss->conn != NULL) {
			gw_conn_destroy(pss->conn); /* SSE */
			pss->conn = NULL;
		}
		break;
	default:
		break;
	}
	return lws_callback_http_dummy(wsi, reason, user, in, len);
}

/* ---- readiness ---------------------------------------------------------- */

static void
gw__probe_reply(bus_status status, const char *body, size_t len, void *user)
{
	gw_gateway *gw = user;
	bool ok = status == BUS_OK && len == 3 && memcmp(body, "200", 3) == 0;

	gw->probe_pending = false;
	gw_metrics_bus(&gw->m, gw->probe_start_ns);
	if (ok != gw->bus_ok) {
		ls_info(GW_LOG, "service bus %s",
		        ok ? "reachable" : "not reachable");
	}
	gw->bus_ok = ok;
	if (ok) {
		gw->bus_reason[0] = '\0';
	} else if (status == BUS_OK) {
		snprintf(gw->bus_reason, sizeof(gw->bus_reason),
		         "service bus: no auth workers");
	} else {
		snprintf(gw->bus_reason, sizeof(gw->bus_reason),
		         "service bus: %s", bus_status_name(status));
	}
}

static void
gw__probe(struct ev_loop *loop, ev_timer *w, int revents)
{
	gw_gateway *gw = w->data;
	int timeout = GW_PROBE_MS - 200;

	/* Summaries of rate-limited log lines whose burst stopped. */
	ls_log_limits_flush();

	/* lws looks at its timeouts (a request head or body that does not
	 * arrive) only when something wakes it: wake it at least this often
	 * (docs/security.md). */
	lws_cancel_service(gw->ctx);
	if (gw->probe_pending) {
		bus_client_cancel(gw->bus, gw->probe_id);
		gw->probe_pending = false;
	}
	gw->probe_start_ns = ls_now_ns();
	if (bus_client_request(gw->bus, "mmi.service", "auth", 4, timeout,
	                       gw__probe_reply, gw, &gw->probe_id) == 0) {
		gw->probe_pending = true;
	} else {
		gw->bus_ok = false;
		snprintf(gw->bus_reason, sizeof(gw->bus_reason),
		         "service bus: cannot send");
	}
}

static void
gw__fabric_state(bool ready, const char *reason, void *user)
{
	if (ready) {
		ls_info(GW_LOG, "pub/sub fabric ready");
	} else {
		ls_warn(GW_LOG, "pub/sub fabric not ready: %s",
		        reason ? reason : "?");
	}
}

/* ---- keepalive -----------------------------------------------------------
 */

/*
 * Every ping interval: ping every connection (docs/protocol.md: pings every 25
 * s, which also keeps proxies and NATs from timing the connection out), and
 * drop those from which nothing (no frame, no pong) arrived for 2.5
 * intervals: the reaper cuts them, a batch per loop iteration. The ping
 * frame joins the connection's next coalesced write. (lws's own validity
 * timers are off: docs/architecture.md, "Keepalive".)
 *
 * The sweep is spread over the interval: each of GW_PING_SLICES timer runs
 * visits its share of the connections from where the last one stopped,
 * so thousands of pings are never written in one loop iteration.
 */
static void
gw__ping(struct ev_loop *loop, ev_timer *w, int revents)
{
	gw_gateway *gw = w->data;
	int64_t now = ls_now_ms(), interval = gw->ping_interval_s * 1000;
	if (gw->ping_cursor == NULL) {
		/* One round per interval. Its share per run comes from its
		 * size at the start, so that connections dropped on the way
		 * do not slow it. */
		if (now - gw->ping_round_ms < interval - interval / 64) {
			return;
		}
		gw->ping_round_ms = now;
		gw->ping_quota = gw->nconns / GW_PING_SLICES + 1;
	}
	for (size_t i = 0; i < gw->ping_quota; i++) {
		gw_conn *c = gw->ping_cursor ? gw->ping_cursor : gw->conns;
		int64_t idle;

		if (c == NULL) {
			break;
		}
		gw->ping_cursor = c->next;
		idle = now - c->last_rx_ms;
		if (idle > 2 * interval + interval / 2) {
			if (!c->cut && c->list != GW_CL_KILL) {
				ls_debug(GW_LOG, "dropping %s: no pong",
				         c->ip);
				gw_clist_move(c, GW_CL_KILL, 0);
			}
		} else if (c->state != GW_CS_CLOSING) {
			c->ping_due = true;
			lws_callback_on_writable(c->wsi);
		}
		if (gw->ping_cursor == NULL) {
			break; /* a round is complete */
		}
	}
}

/* ---- loop iterations ------------------------------------------------------
 *
 * The CPU time from the moment the loop wakes up to the moment it waits
 * again: every other client waited that long (lightstream_loop_busy_seconds).
 * CPU time, not wall time, so that a busy machine does not count.
 */

/* libev calls these around each wait for events (ev_set_loop_release_cb):
 * what lies between an acquire and the next release is one iteration. */
static void
gw__loop_acquire(struct ev_loop *loop) EV_NOEXCEPT
{
	gw_gateway *gw = ev_userdata(loop);

	gw->busy_t0 = ls_thread_cpu_ns();
}

static void
gw__loop_release(struct ev_loop *loop) EV_NOEXCEPT
{
	gw_gateway *gw = ev_userdata(loop);

	if (gw->busy_t0 != 0) {
		gw_metrics_busy(&gw->m,
		                (double)(ls_thread_cpu_ns() - gw->busy_t0) /
		                        1e9);
		gw->busy_t0 = 0;
	}
}

/* ---- the reaper -----------------------------------------------------------
 *
 * Closing costs more per connection than anything else the gateway does:
 * lws's close path walks its whole descriptor table (a debug check built
 * into Debian's lws 4.1.6), so one close costs time proportional to the
 * open connections. Auth timeouts, token expiries, dead peers and shutdown
 * can concern thousands of connections at the same moment: they wait on
 * lists in deadline order, and each loop iteration handles at most
 * GW_REAP_BATCH of them (docs/architecture.md, "Closing connections").
 */

static void gw__reap_arm(gw_gateway *gw, int64_t at, bool bucket);

void
gw_clist_move(gw_conn *c, gw_clist_id list, int64_t deadline_ms)
{
	gw_gateway *gw = c->gw;

	if (c->cut && list != GW_CL_NONE) {
		return; /* going already */
	}
	if (c->list != GW_CL_NONE) {
		gw_clist *l = &gw->lists[c->list];
		if (c->lprev != NULL) {
			c->lprev->lnext = c->lnext;
		} else {
			l->head = c->lnext;
		}
		if (c->lnext != NULL) {
			c->lnext->lprev = c->lprev;
		} else {
			l->tail = c->lprev;
		}
		l->count--;
		c->lprev = c->lnext = NULL;
	}
	c->list = list;
	if (list == GW_CL_NONE) {
		return;
	}
	{
		gw_clist *l = &gw->lists[list];
		c->deadline_ms = deadline_ms;
		c->lprev = l->tail;
		if (l->tail != NULL) {
			l->tail->lnext = c;
		} else {
			l->head = c;
		}
		l->tail = c;
		l->count++;
	}
	if (list == GW_CL_START || list == GW_CL_KILL) {
		gw__reap_arm(gw, 0, false);
	} else {
		gw__reap_arm(gw, deadline_ms, true);
	}
}

/*
 * Cut c's socket: no close handshake (the peer answered it, or had its
 * chance). With nothing buffered lws closes it at once (c is freed before
 * this returns); with output still buffered lws would wait to flush it, so
 * the violent way instead: a timeout lws handles when it next looks at its
 * timers. Returns true when the close is still to happen.
 */
static bool
gw__cut(gw_conn *c)
{
	struct lws *wsi = c->wsi;
	struct linger now = { 1, 0 };
	int fd = lws_get_socket_fd(wsi);

	gw_clist_move(c, GW_CL_NONE, 0);
	c->cut = true;
	/* Reset, not FIN: what the peer did not read is dropped at once
	 * instead of lingering in the kernel for a peer that reads nothing. */
	if (fd >= 0) {
		setsockopt(fd, SOL_SOCKET, SO_LINGER, &now, sizeof(now));
	}
	if (!lws_partial_buffered(wsi)) {
		lws_set_timeout(wsi, PENDING_TIMEOUT_USER_OK,
		                LWS_TO_KILL_SYNC);
		return false;
	}
	lws_set_timeout(wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
	return true;
}

static void
gw__reap(struct ev_loop *loop, ev_timer *w, int revents)
{
	gw_gateway *gw = w->data;
	int64_t now = ls_now_ms();
	int budget = GW_REAP_BATCH;
	bool cut = false;
	gw_conn *c;

	gw->reap_at = INT64_MAX;
	while (budget > 0 && (c = gw->lists[GW_CL_KILL].head) != NULL) {
		cut |= gw__cut(c);
		budget--;
	}
	while (budget > 0 && (c = gw->lists[GW_CL_CLOSING].head) != NULL &&
	       c->deadline_ms <= now) {
		ls_debug(GW_LOG, "cutting %s: close not answered in time",
		         c->ip);
		cut |= gw__cut(c);
		budget--;
	}
	while (budget > 0 && (c = gw->lists[GW_CL_START].head) != NULL) {
		gw_clist_move(c, GW_CL_NONE, 0);
		gw_conn_start_close(c);
		budget--;
	}
	while (budget > 0 && (c = gw->lists[GW_CL_AUTH].head) != NULL &&
	       c->deadline_ms <= now) {
		gw_clist_move(c, GW_CL_NONE, 0);
		gw_conn_auth_timeout(c);
		budget--;
	}
	if (cut) {
		/* Outside an lws callback lws does not look at its timers
		 * until something wakes it: once per batch. */
		lws_cancel_service(gw->ctx);
	}
	if (budget == 0) {
		/* More to do: soon, but not before the loop went idle once,
		 * or lws (which looks at its timers when the loop is idle)
		 * would not get to the sockets cut above. */
		gw__reap_arm(gw, now + 1, false);
		return;
	}
	if (gw->lists[GW_CL_AUTH].head != NULL) {
		gw__reap_arm(gw, gw->lists[GW_CL_AUTH].head->deadline_ms,
		             true);
	}
	if (gw->lists[GW_CL_CLOSING].head != NULL) {
		gw__reap_arm(gw, gw->lists[GW_CL_CLOSING].head->deadline_ms,
		             true);
	}
}

/* Run the reaper at `at` (monotonic ms) unless it runs earlier already.
 * With bucket, deadlines share the runs of one GW_REAP_MS step. */
static void
gw__reap_arm(gw_gateway *gw, int64_t at, bool bucket)
{
	int64_t now;

	if (at >= gw->reap_at) {
		return;
	}
	now = ls_now_ms();
	if (bucket && at > now) {
		at += GW_REAP_MS - at % GW_REAP_MS; /* a bucket, not a timer
		                                       each */
		if (at >= gw->reap_at) {
			return;
		}
	}
	gw->reap_at = at;
	ev_timer_stop(gw->loop, &gw->reap);
	ev_timer_set(&gw->reap, at > now ? (double)(at - now) / 1000.0 : 0.0,
	             0.0);
	ev_timer_start(gw->loop, &gw->reap);
}

void
gw_conn_alive(gw_conn *c)
{
	c->last_rx_ms = ls_now_ms();
}

/* ---- shutdown ----------------------------------------------------------- */

static void
gw__finish(gw_gateway *gw)
{
	void (*done)(void *) = gw->done;

	ev_timer_stop(gw->loop, &gw->drain);
	ev_idle_stop(gw->loop, &gw->drained);
	gw->done = NULL;
	if (done != NULL) {
		done(gw->done_user);
	}
}

static void
gw__drain_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
	gw_gateway *gw = w->data;

	ls_warn(GW_LOG, "drain timeout: %zu connection(s) still open",
	        gw->nconns);
	gw__finish(gw);
}

static void
gw__drained(struct ev_loop *loop, ev_idle *w, int revents)
{
	gw__finish(w->data);
}

void
gw_check_drained(gw_gateway *gw)
{
	/* Deferred: we may be inside an lws callback. */
	if (gw->stopping && gw->nconns == 0 && gw->done != NULL) {
		ev_idle_start(gw->loop, &gw->drained);
	}
}

void
gw_gateway_shutdown(gw_gateway *gw, void (*done)(void *user), void *user)
{
	if (gw->stopping) {
		return;
	}
	gw->stopping = true;
	gw->done = done;
	gw->done_user = user;
	ls_info(GW_LOG, "shutting down: closing %zu connection(s)",
	        gw->nconns);
	gw_listener_close(&gw->plain);
	gw_listener_close(&gw->tls);
	ev_timer_stop(gw->loop, &gw->probe);
	ev_timer_stop(gw->loop, &gw->ping);
	/* A batch per loop iteration (the reaper): closing thousands at
	 * once would stall the loop for the rest. */
	for (gw_conn *c = gw->conns; c != NULL; c = c->next) {
		gw_conn_close_later(c, LS_PC_COUNT, LS_CLOSE_GOING_AWAY);
	}
	ev_timer_set(&gw->drain, (double)gw->drain_timeout_ms / 1000.0, 0.0);
	ev_timer_start(gw->loop, &gw->drain);
	gw_check_drained(gw);
}

/* ---- creation ----------------------------------------------------------- */

static void
gw__lws_log(int level, const char *line)
{
	size_t n = strlen(line);

	while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r')) {
		n--;
	}
	ls_log(level == LLL_ERR ? LS_LOG_ERROR : LS_LOG_WARN, "lws", "%.*s",
	       (int)n, line);
}

static int
gw__copy_list(ls_strlist *to, const ls_strlist *from)
{
	for (size_t i = 0; i < from->count; i++) {
		if (ls_strlist_add(to, from->items[i]) != 0) {
			return -ENOMEM;
		}
	}
	return 0;
}

static struct lws_vhost *
gw__vhost(gw_gateway *gw, const ls_settings *s, bool tls, ls_error *err)
{
	/* No lws validity timers: the gateway pings on its own
	 * (docs/architecture.md, "Keepalive", says why). */
	static const lws_retry_bo_t no_validity_timers = { 0 };
	struct lws_context_creation_info info;
	struct lws_vhost *vh;

	memset(&info, 0, sizeof(info));
	info.port = CONTEXT_PORT_NO_LISTEN_SERVER;
	info.protocols = gw__protocols;
	info.retry_and_idle_policy = &no_validity_timers;
	info.vhost_name = tls ? "lightstream-tls" : "lightstream";
	info.keepalive_timeout = 30;
	if (tls) {
		info.options = LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
		info.ssl_cert_filepath = s->tls_cert;
		info.ssl_private_key_filepath = s->tls_key;
		/* Our WebSocket frames are written raw: HTTP/1.1 only. */
		info.alpn = "http/1.1";
	}
	vh = lws_create_vhost(gw->ctx, &info);
	if (vh == NULL) {
		ls_error_set(err, LS_ECONFIG, "cannot create the %s vhost%s",
		             tls ? "TLS" : "HTTP",
		             tls ? " (check gateway.tls.cert and "
		                   "gateway.tls.key)"
		                 : "");
	}
	return vh;
}

gw_gateway *
gw_gateway_new(struct ev_loop *loop, const gw_options *opt, ls_error *err)
{
	const ls_settings *s = opt->settings;
	struct lws_context_creation_info info;
	ps_fabric_options po;
	void *loops[1] = { loop };
	gw_gateway *gw = calloc(1, sizeof(*gw));
	bool tls = s->tls_listen != NULL;

	if (gw == NULL) {
		ls_error_set(err, -ENOMEM, "out of memory");
		return NULL;
	}
	gw->loop = loop;
	gw->server = opt->server;
	gw->index = opt->index;
	gw->reuse_port = s->reuse_port;
	gw->plain.fd = gw->tls.fd = -1;
	gw->auth_timeout_ms = s->auth_timeout_ms;
	gw->max_frame_bytes = s->max_frame_bytes;
	gw->queue_limit_bytes = s->queue_limit_bytes;
	gw->fanout_pause_bytes = s->fanout_pause_bytes;
	gw->max_subscriptions = s->max_subscriptions;
	gw->ping_interval_s = s->ping_interval_s;
	gw->drain_timeout_ms = s->drain_timeout_ms;
	gw->max_connections = s->max_connections;
	gw->publish_rate = s->publish_rate;
	gw->publish_burst = s->publish_burst;
	gw->bus_timeout_ms = s->bus_timeout_ms;
	gw->token_http_remote = s->token_http_remote;
	gw->http_max_body_bytes = s->http_max_body_bytes;
	/* Counted in gw->shared: one budget for every loop of a server. */
	gw->http_max_buffered_bytes = s->http_max_buffered_bytes;
	gw->http_request_timeout_ms = s->http_request_timeout_ms;
	gw->http_max_uri_bytes = s->http_max_uri_bytes;
	gw->http_max_header_bytes = s->http_max_header_bytes;
	gw->token_max_inflight = s->token_max_inflight;
	gw->shared =
	        opt->shared ? gw_shared_ref(opt->shared) : gw_shared_new(s);
	if (gw->shared == NULL) {
		ls_error_set(err, -ENOMEM, "out of memory");
		goto fail;
	}
	gw->history.size = (unsigned)s->history_size;
	gw->history.ttl = (unsigned)s->history_ttl_s;
	snprintf(gw->bus_reason, sizeof(gw->bus_reason),
	         "service bus: not probed yet");
	ev_init(&gw->probe, gw__probe);
	gw->probe.data = gw;
	ev_init(&gw->drain, gw__drain_timeout);
	gw->drain.data = gw;
	ev_idle_init(&gw->drained, gw__drained);
	gw->drained.data = gw;
	if (gw__copy_list(&gw->origins, &s->origins) != 0 ||
	    gw__copy_list(&gw->trusted_proxies, &s->trusted_proxies) != 0 ||
	    gw__copy_list(&gw->service_allowlist, &s->service_allowlist) !=
	            0) {
		ls_error_set(err, -ENOMEM, "out of memory");
		goto fail;
	}
	if (tls && (s->tls_cert == NULL || s->tls_key == NULL)) {
		ls_error_set(err, LS_ECONFIG,
		             "gateway.tls.listen needs gateway.tls.cert and "
		             "gateway.tls.key");
		goto fail;
	}
	gw->static_dir = s->static_dir ? realpath(s->static_dir, NULL)
	                               : gw_static_dir_default();
	/* The client files are the binary's own (compiled in, gw_embed.h),
	 * whatever static directory is configured or the build layout. */
	gw->client_files = gw_client_files_load(NULL);
	if (s->static_dir != NULL && gw->static_dir == NULL) {
		ls_warn(GW_LOG, "gateway.static_dir %s: %s", s->static_dir,
		        strerror(errno));
	}

	ev_init(&gw->ping, gw__ping);
	gw->ping.data = gw;
	ev_init(&gw->reap, gw__reap);
	gw->reap.data = gw;
	gw->reap_at = INT64_MAX;
	/* The loop is the gateway's own (DESIGN): its user data and the
	 * hooks around each wait are free for the iteration timing. */
	if (ev_userdata(loop) == NULL) {
		ev_set_userdata(loop, gw);
		ev_set_loop_release_cb(loop, gw__loop_release,
		                       gw__loop_acquire);
	}
	gw_liveauth_init(gw);

	lws_set_log_level(LLL_ERR | LLL_WARN, gw__lws_log);
	memset(&info, 0, sizeof(info));
	info.options =
	        LWS_SERVER_OPTION_LIBEV | LWS_SERVER_OPTION_EXPLICIT_VHOSTS;
	if (tls) {
		info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
	}
	info.foreign_loops = loops;
	info.user = gw;
	/* lws's own buffer for a request head: room beyond our limits, so
	 * a request over them is answered 414 / 431 rather than closed by
	 * lws (docs/security.md). */
	info.max_http_header_data =
	        (unsigned short)(gw->http_max_uri_bytes +
	                         gw->http_max_header_bytes +
	                         GW_HTTP_HEAD_SLACK);
	info.port = CONTEXT_PORT_NO_LISTEN_SERVER;
	info.protocols = gw__protocols;
	gw->ctx = lws_create_context(&info);
	if (gw->ctx == NULL) {
		ls_error_set(err, LS_ECONFIG,
		             "cannot create the WebSocket context (is "
		             "libwebsockets-evlib-ev installed?)");
		goto fail;
	}
	gw->vh = gw__vhost(gw, s, false, err);
	if (gw->vh == NULL) {
		goto fail;
	}
	if (tls) {
		gw->vh_tls = gw__vhost(gw, s, true, err);
		if (gw->vh_tls == NULL) {
			goto fail;
		}
	}

	gw->bus = bus_client_new_secure(opt->zmq_ctx,
	                                opt->bus_endpoint ? opt->bus_endpoint
	                                                  : s->bus_frontend,
	                                opt->bus_curve, err);
	if (gw->bus == NULL) {
		goto fail;
	}
	if (bus_client_attach_ev(gw->bus, loop) != 0) {
		ls_error_set(err, LS_ESERVER, "cannot attach the bus client");
		goto fail;
	}
	memset(&po, 0, sizeof(po));
	po.url = s->pubsub_url;
	po.on_message = gw_fanout_message;
	po.on_state = gw__fabric_state;
	po.on_control = gw_liveauth_control;
	po.on_resync = gw_liveauth_resync;
	po.on_subscribed = gw_fanout_subscribed;
	po.history_bytes = (size_t)s->history_max_bytes;
	po.connect_timeout_ms = (int)s->pubsub_timeout_ms;
	po.user = gw;
	po.hub = opt->hub;
	if (opt->fabric_curve != NULL) {
		po.curve_server = opt->fabric_curve->server_public;
		po.curve_public = opt->fabric_curve->public_key;
		po.curve_secret = opt->fabric_curve->secret_key;
	}
	gw->fabric = ps_fabric_new(loop, &po, err);
	if (gw->fabric == NULL) {
		goto fail;
	}

	/* In a server of several loops, loop 0 listens for all. */
	if (opt->index == 0 &&
	    gw_listener_open(gw, &gw->plain, s->listen, false, err) != 0) {
		goto fail;
	}
	if (opt->index == 0 && tls &&
	    gw_listener_open(gw, &gw->tls, s->tls_listen, true, err) != 0) {
		goto fail;
	}
	ev_timer_set(&gw->probe, 0.0, (double)GW_PROBE_MS / 1000.0);
	ev_timer_start(loop, &gw->probe);
	ev_timer_set(&gw->ping, (double)gw->ping_interval_s / GW_PING_SLICES,
	             (double)gw->ping_interval_s / GW_PING_SLICES);
	ev_timer_start(loop, &gw->ping);
	return gw;
fail:
	gw_gateway_destroy(&gw);
	return NULL;
}

void
gw_gateway_destroy(gw_gateway **pgw)
{
	gw_gateway *gw = pgw ? *pgw : NULL;

	if (gw == NULL) {
		return;
	}
	gw->done = NULL;
	gw_listener_close(&gw->plain);
	gw_listener_close(&gw->tls);
	ev_timer_stop(gw->loop, &gw->probe);
	ev_timer_stop(gw->loop, &gw->ping);
	ev_timer_stop(gw->loop, &gw->drain);
	ev_idle_stop(gw->loop, &gw->drained);
	gw_liveauth_stop(gw);
	gw->stopping = true; /* no new re-validations while closing */
	if (gw->ctx != NULL) {
		/* No reaper from here: lws closes what is left. */
		for (int l = GW_CL_AUTH; l < GW_CL_COUNT; l++) {
			while (gw->lists[l].head != NULL) {
				gw_clist_move(gw->lists[l].head, GW_CL_NONE,
				              0);
			}
		}
		gw->reap_at = INT64_MIN;
		/* Closes every connection: their CLOSED callbacks still use
		 * the bus client and the fabric, so those go after. */
		lws_context_destroy(gw->ctx);
		gw->ctx = NULL;
	}
	ev_timer_stop(gw->loop, &gw->reap);
	/* The connections are gone, and with them the fan-out's lists. */
	ev_prepare_stop(gw->loop, &gw->flush_w);
	ev_idle_stop(gw->loop, &gw->ahead_w);
	if (ev_userdata(gw->loop) == gw) {
		ev_set_loop_release_cb(gw->loop, NULL, NULL);
		ev_set_userdata(gw->loop, NULL);
	}
	if (gw->probe_pending && gw->bus != NULL) {
		bus_client_cancel(gw->bus, gw->probe_id);
	}
	bus_client_destroy(&gw->bus);
	ps_fabric_destroy(&gw->fabric);
	gw_streams_free(gw);
	ls_strlist_clear(&gw->origins);
	ls_strlist_clear(&gw->trusted_proxies);
	ls_strlist_clear(&gw->service_allowlist);
	gw_shared_unref(&gw->shared);
	free(gw->static_dir);
	gw_client_files_free(&gw->client_files);
	free(gw->wbuf);
	free(gw);
	*pgw = NULL;
}

int
gw_gateway_publish(gw_gateway *gw, const char *owner, const char *stream,
                   const char *payload, size_t len)
{
	char topic[LS_APPKEY_MAX + LS_STREAM_MAX + 2];

	if (!ls_valid_app_key(owner) || !ls_valid_stream(stream)) {
		return -EINVAL;
	}
	snprintf(topic, sizeof(topic), "%s:%s", owner, stream);
	gw->m.messages_in++;
	return ps_fabric_publish_history(gw->fabric, topic, payload, len,
	                                 &gw->history, NULL, NULL);
}

int
gw_gateway_announce(gw_gateway *gw, const char *payload, size_t len)
{
	return ps_fabric_control_publish(gw->fabric, payload, len);
}

const char *
gw_gateway_address(const gw_gateway *gw)
{
	return gw->plain.address;
}

const char *
gw_gateway_tls_address(const gw_gateway *gw)
{
	return gw->tls.fd >= 0 || gw->tls.address[0] ? gw->tls.address : NULL;
}
