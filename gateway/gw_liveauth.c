/*
 * Live authorization (docs/protocol.md, "Live authorization"): open
 * connections follow revocations and permission changes.
 *
 * The app server announces each change on the fabric's control channel
 * (ps_control.h). A revocation or deletion closes the matching
 * connections at once with token_revoked; a permission change queues a
 * re-validation of each matching connection's token (auth.validateToken),
 * whose answer becomes the connection's permissions. Re-validations are
 * bounded in flight (GW_CHECKS_INFLIGHT) and queued beyond, so a change
 * that concerns every connection costs the app server a steady stream of
 * requests, not a burst. When the control channel was lost and subscribed
 * again, announcements may have been missed: every connection is
 * re-validated.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gw_internal.h"
#include "ls_log.h"
#include "ls_time.h"

#define GW_CHECKS_INFLIGHT 64
#define GW_CHECK_RETRY_S   2.0
/* Closing one connection (Error frame, close request) costs a few µs:
 * 256 per loop iteration keep each slice near a millisecond. */
#define GW_REVOKE_SLICE 256

static void gw__pump(gw_gateway *gw);

static void
gw__unqueue(gw_conn *c)
{
	gw_gateway *gw = c->gw;

	if (!c->check_queued) {
		return;
	}
	if (c->cq_prev != NULL) {
		c->cq_prev->cq_next = c->cq_next;
	} else {
		gw->checks = c->cq_next;
	}
	if (c->cq_next != NULL) {
		c->cq_next->cq_prev = c->cq_prev;
	} else {
		gw->checks_tail = c->cq_prev;
	}
	c->cq_prev = c->cq_next = NULL;
	c->check_queued = false;
}

static void
gw__enqueue(gw_conn *c)
{
	gw_gateway *gw = c->gw;

	if (c->check_queued || c->check_pending) {
		return; /* a pending check re-queues itself when wanted */
	}
	c->cq_prev = gw->checks_tail;
	c->cq_next = NULL;
	if (gw->checks_tail != NULL) {
		gw->checks_tail->cq_next = c;
	} else {
		gw->checks = c;
	}
	gw->checks_tail = c;
	c->check_queued = true;
}

static void
gw__revoke(gw_conn *c, const char *why)
{
	c->gw->m.tokens_revoked++;
	gw_conn_fail(c, LS_CLOSE_TOKEN_REVOKED,
	             ls_proto_code_name(LS_PC_TOKEN_REVOKED), "%s", why);
}

static void
gw__revoke_unqueue(gw_conn *c)
{
	gw_gateway *gw = c->gw;

	if (!c->revoke_queued) {
		return;
	}
	if (c->rv_prev != NULL) {
		c->rv_prev->rv_next = c->rv_next;
	} else {
		gw->revokes = c->rv_next;
	}
	if (c->rv_next != NULL) {
		c->rv_next->rv_prev = c->rv_prev;
	} else {
		gw->revokes_tail = c->rv_prev;
	}
	c->rv_prev = c->rv_next = NULL;
	c->revoke_queued = false;
}

/* Revoke c in the next slice (announcements may concern thousands). */
static void
gw__revoke_later(gw_conn *c, const char *why)
{
	gw_gateway *gw = c->gw;

	if (c->revoke_queued) {
		return;
	}
	c->revoke_why = why;
	c->rv_prev = gw->revokes_tail;
	c->rv_next = NULL;
	if (gw->revokes_tail != NULL) {
		gw->revokes_tail->rv_next = c;
	} else {
		gw->revokes = c;
	}
	gw->revokes_tail = c;
	c->revoke_queued = true;
	if (!ev_is_active(&gw->revoke_w)) {
		ev_timer_set(&gw->revoke_w, 0.0, 0.0);
		ev_timer_start(gw->loop, &gw->revoke_w);
	}
}

static void
gw__revoke_slice(struct ev_loop *loop, ev_timer *w, int revents)
{
	gw_gateway *gw = w->data;

	(void)revents;
	for (int n = 0; n < GW_REVOKE_SLICE && gw->revokes != NULL; n++) {
		gw_conn *c = gw->revokes;
		gw__revoke_unqueue(c);
		gw__revoke(c, c->revoke_why);
	}
	if (gw->revokes != NULL) {
		ev_timer_set(w, 0.0, 0.0);
		ev_timer_start(loop, w);
	}
}

/* A transient failure: try this connection again after a while. */
static void
gw__retry_later(gw_conn *c)
{
	gw_gateway *gw = c->gw;

	c->check_retry = true;
	if (!ev_is_active(&gw->check_retry)) {
		ev_timer_set(&gw->check_retry, GW_CHECK_RETRY_S, 0.0);
		ev_timer_start(gw->loop, &gw->check_retry);
	}
}

static void
gw__retry_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	gw_gateway *gw = w->data;

	(void)loop;
	(void)revents;
	for (gw_conn *c = gw->conns; c != NULL; c = c->next) {
		if (c->check_retry) {
			c->check_retry = false;
			c->check_wanted = true;
			if (c->state == GW_CS_READY) {
				gw__enqueue(c);
			}
		}
	}
	gw__pump(gw);
}

static void
gw__check_reply(bus_status status, const char *body, size_t len, void *user)
{
	gw_conn *c = user;
	gw_gateway *gw = c->gw;
	gw_grant g;

	c->check_pending = false;
	gw->checks_inflight--;
	gw_metrics_bus(&gw->m, c->check_start_ns);
	if (c->state != GW_CS_READY) {
		goto out;
	}
	if (c->check_gen != c->token_gen) {
		/* A refresh replaced the token meanwhile: this answer is
		 * about the old one. */
		c->check_wanted = true;
	} else if (status == BUS_OK) {
		if (gw_grant_parse(c->app_key, body, len, &g) != 0) {
			gw__revoke(c, "the token is no longer valid");
			goto out;
		}
		gw_conn_set_perms(c, g.perms, g.nperms);
	} else {
		/* Anything but a refusal (unavailable, a malformed reply)
		 * is treated as transient below. */
		ls_proto_code pc = bus_reply_error(status, body, len, NULL, 0);
		if (pc == LS_PC_TOKEN_EXPIRED ||
		    ((pc == LS_PC_AUTH_FAILED || pc == LS_PC_TOKEN_REVOKED) &&
		     ls_wall_ms() >= c->expires_ms)) {
			gw_conn_fail(c, LS_CLOSE_TOKEN_EXPIRED,
			             ls_proto_code_name(LS_PC_TOKEN_EXPIRED),
			             "the token expired");
			goto out;
		}
		if (pc == LS_PC_AUTH_FAILED || pc == LS_PC_TOKEN_REVOKED ||
		    pc == LS_PC_FORBIDDEN || pc == LS_PC_NOT_FOUND) {
			gw__revoke(c, "the token was revoked");
			goto out;
		}
		gw->m.bus_errors++;
		ls_info(GW_LOG,
		        "%s: re-validation failed (%s); keeping the "
		        "permissions, trying again",
		        c->conn_id, ls_proto_code_name(pc));
		gw__retry_later(c);
	}
	if (c->check_wanted) {
		gw__enqueue(c); /* a change arrived while this one flew */
	}
out:
	gw__pump(gw);
}

static void
gw__check_start(gw_conn *c)
{
	gw_gateway *gw = c->gw;
	json_t *args = json_pack("[sss]", c->app_key, c->token, c->ip);
	int rc = -ENOMEM;

	c->check_wanted = false;
	c->check_gen = c->token_gen;
	c->check_start_ns = ls_now_ns();
	if (args != NULL) {
		rc = bus_client_call(gw->bus, "auth", "validateToken", args,
		                     (int)gw->bus_timeout_ms, gw__check_reply,
		                     c, &c->check_id);
		json_decref(args);
	}
	if (rc != 0) {
		gw->m.bus_errors++;
		gw__retry_later(c);
		return;
	}
	gw->m.revalidations++;
	c->check_pending = true;
	gw->checks_inflight++;
}

static void
gw__pump(gw_gateway *gw)
{
	while (!gw->stopping && gw->checks != NULL &&
	       gw->checks_inflight < GW_CHECKS_INFLIGHT) {
		gw_conn *c = gw->checks;

		gw__unqueue(c);
		/* Not READY: gw_liveauth_ready() queues it again. */
		if (c->state == GW_CS_READY && c->check_wanted) {
			gw__check_start(c);
		}
	}
}

void
gw_liveauth_recheck(gw_conn *c)
{
	c->check_wanted = true;
	if (c->state == GW_CS_READY) {
		gw__enqueue(c);
		gw__pump(c->gw);
	}
}

void
gw_liveauth_token_changed(gw_conn *c)
{
	ps_control_token_id(c->token, strlen(c->token), c->token_id);
	c->token_gen++;
}

void
gw_liveauth_ready(gw_conn *c)
{
	if (c->check_wanted) {
		gw__enqueue(c);
		gw__pump(c->gw);
	}
}

void
gw_liveauth_forget(gw_conn *c)
{
	gw_gateway *gw = c->gw;

	c->check_wanted = false;
	c->check_retry = false;
	gw__unqueue(c);
	gw__revoke_unqueue(c);
	if (c->check_pending) {
		bus_client_cancel(gw->bus, c->check_id);
		c->check_pending = false;
		gw->checks_inflight--;
		gw__pump(gw); /* its place in flight is free */
	}
}

void
gw_liveauth_control(const char *payload, size_t len, void *user)
{
	gw_gateway *gw = user;
	ps_control m;

	if (ps_control_decode(payload, len, &m) != 0) {
		ls_warn(GW_LOG, "ignored a malformed announcement on %s",
		        PS_CONTROL_CHANNEL);
		return;
	}
	ls_debug(GW_LOG, "announcement: %.*s", (int)len, payload);
	for (gw_conn *c = gw->conns; c != NULL; c = c->next) {
		bool mine;

		/* Closing is not freeing: the list stays intact. */
		if (c->state == GW_CS_CLOSING || c->app_key == NULL) {
			continue;
		}
		mine = m.app_key[0] == '\0' ||
		       strcmp(c->app_key, m.app_key) == 0;
		switch (m.kind) {
		case PS_CONTROL_REVOKED:
			if (mine && strcmp(c->token_id, m.token_id) == 0) {
				gw__revoke_later(c, "the token was revoked");
			} else if (mine && c->new_token != NULL) {
				/* A RefreshRequest in flight whose answer may
				 * predate this revocation. */
				char id[PS_CONTROL_TOKEN_ID_LEN + 1];
				ps_control_token_id(c->new_token,
				                    strlen(c->new_token), id);
				if (strcmp(id, m.token_id) == 0) {
					c->new_token_revoked = true;
				}
			}
			break;
		case PS_CONTROL_DELETED:
			if (mine) {
				gw__revoke_later(c, "the account was deleted");
			}
			break;
		case PS_CONTROL_RESET:
			gw__revoke_later(c, "every account and token was "
			                    "replaced");
			break;
		case PS_CONTROL_CHANGED:
			if (mine) {
				c->check_wanted = true;
				if (c->state == GW_CS_READY) {
					gw__enqueue(c);
				}
			}
			break;
		}
	}
	gw__pump(gw);
}

void
gw_liveauth_resync(void *user)
{
	gw_gateway *gw = user;
	size_t n = 0;

	for (gw_conn *c = gw->conns; c != NULL; c = c->next) {
		if (c->state == GW_CS_CLOSING || c->app_key == NULL) {
			continue;
		}
		c->check_wanted = true;
		if (c->state == GW_CS_READY) {
			gw__enqueue(c);
			n++;
		}
	}
	if (n > 0) {
		ls_info(GW_LOG,
		        "control channel subscribed again: re-validating %zu "
		        "connections",
		        n);
	}
	gw__pump(gw);
}

void
gw_liveauth_init(gw_gateway *gw)
{
	ev_init(&gw->check_retry, gw__retry_cb);
	gw->check_retry.data = gw;
	ev_init(&gw->revoke_w, gw__revoke_slice);
	gw->revoke_w.data = gw;
}

void
gw_liveauth_stop(gw_gateway *gw)
{
	ev_timer_stop(gw->loop, &gw->check_retry);
	ev_timer_stop(gw->loop, &gw->revoke_w);
}
