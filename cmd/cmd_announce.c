/* App-server changes as control-channel announcements. */
#include "cmd_announce.h"

#include <errno.h>
#include <ev.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ls_log.h"
#include "ps_fabric.h"

#define CMD_ANNOUNCE_LOG "appserver"

void
cmd_change_control(const as_change *ch, ps_control *out)
{
	memset(out, 0, sizeof(*out));
	switch (ch->kind) {
	case AS_CHANGE_REVOKED:
		out->kind = PS_CONTROL_REVOKED;
		break;
	case AS_CHANGE_DELETED:
		out->kind = PS_CONTROL_DELETED;
		break;
	case AS_CHANGE_CHANGED:
		out->kind = PS_CONTROL_CHANGED;
		break;
	case AS_CHANGE_RESET:
		out->kind = PS_CONTROL_RESET;
		break;
	}
	if (ch->app_key != NULL) {
		snprintf(out->app_key, sizeof(out->app_key), "%s",
		         ch->app_key);
	}
	if (ch->token_hash != NULL &&
	    strlen(ch->token_hash) >= PS_CONTROL_TOKEN_ID_LEN) {
		ps_control_token_id_of_hash(ch->token_hash, out->token_id);
	}
}

/* ---- announcer thread ----------------------------------------------------
 */

struct cmd_announcer {
	pthread_t thread;
	bool started;
	struct ev_loop *loop;
	ev_async wake;
	ps_fabric *fabric;
	/* shared with the workers, under lock */
	pthread_mutex_t lock;
	char *items[CMD_ANNOUNCE_MAX];
	size_t n;
	bool overflow;
	bool stopping;
};

/* Loop thread: publish what waits while the fabric takes it. */
static void
announcer_flush(cmd_announcer *a)
{
	for (;;) {
		char *text = NULL;
		bool all = false;
		int rc;

		if (!ps_fabric_ready(a->fabric)) {
			return; /* on_state calls again once ready */
		}
		pthread_mutex_lock(&a->lock);
		if (a->overflow) {
			all = true;
		} else if (a->n > 0) {
			text = a->items[0];
		}
		pthread_mutex_unlock(&a->lock);
		if (all) {
			ps_control m = { .kind = PS_CONTROL_CHANGED };
			text = ps_control_encode(&m, NULL);
		}
		if (text == NULL) {
			return;
		}
		rc = ps_fabric_control_publish(a->fabric, text, strlen(text));
		if (rc == LS_EUNAVAILABLE) {
			if (all) {
				free(text);
			}
			return; /* kept; retried when ready again */
		}
		if (rc != 0) {
			ls_err(CMD_ANNOUNCE_LOG, "announcement dropped: %s",
			       ls_strerror(rc));
		}
		pthread_mutex_lock(&a->lock);
		if (all) {
			/* "every account changed" covers what waited too */
			for (size_t i = 0; i < a->n; i++) {
				free(a->items[i]);
			}
			a->n = 0;
			a->overflow = false;
			free(text);
		} else {
			memmove(a->items, a->items + 1,
			        (a->n - 1) * sizeof(a->items[0]));
			a->n--;
			free(text);
		}
		pthread_mutex_unlock(&a->lock);
	}
}

static void
announcer_wake(struct ev_loop *loop, ev_async *w, int revents)
{
	cmd_announcer *a = w->data;
	bool stop;

	announcer_flush(a);
	pthread_mutex_lock(&a->lock);
	stop = a->stopping;
	pthread_mutex_unlock(&a->lock);
	if (stop) {
		ev_break(loop, EVBREAK_ALL);
	}
}

static void
announcer_state(bool ready, const char *reason, void *user)
{
	cmd_announcer *a = user;

	if (ready) {
		announcer_flush(a);
	} else {
		ls_warn(CMD_ANNOUNCE_LOG,
		        "fabric not ready (%s): announcements to the gateways "
		        "wait",
		        reason);
	}
}

static void
announcer_message(const char *topic, size_t topiclen, const char *payload,
                  size_t len, uint64_t offset, const char *epoch, void *user)
{
	/* It subscribes nothing. */
}

static void *
announcer_main(void *arg)
{
	cmd_announcer *a = arg;

	ev_run(a->loop, 0);
	return NULL;
}

cmd_announcer *
cmd_announcer_start(const char *url, const bus_curve_keys *curve,
                    ls_error *err)
{
	cmd_announcer *a = calloc(1, sizeof(*a));
	ps_fabric_options po = { 0 };

	if (a == NULL) {
		ls_error_set(err, -ENOMEM, "out of memory");
		return NULL;
	}
	pthread_mutex_init(&a->lock, NULL);
	a->loop = ev_loop_new(EVFLAG_AUTO);
	if (a->loop == NULL) {
		ls_error_set(err, LS_ESERVER, "cannot create an event loop");
		goto fail;
	}
	po.url = url;
	if (curve != NULL) {
		po.curve_server = curve->server_public;
		po.curve_public = curve->public_key;
		po.curve_secret = curve->secret_key;
	}
	po.on_message = announcer_message;
	po.on_state = announcer_state;
	po.user = a;
	a->fabric = ps_fabric_new(a->loop, &po, err);
	if (a->fabric == NULL) {
		goto fail;
	}
	ev_async_init(&a->wake, announcer_wake);
	a->wake.data = a;
	ev_async_start(a->loop, &a->wake);
	if (pthread_create(&a->thread, NULL, announcer_main, a) != 0) {
		ls_error_set(err, LS_ESERVER, "cannot start a thread");
		goto fail;
	}
	a->started = true;
	return a;
fail:
	cmd_announcer_stop(&a);
	return NULL;
}

void
cmd_announcer_change(const as_change *ch, void *user)
{
	cmd_announcer *a = user;
	ps_control m;
	char *text;

	cmd_change_control(ch, &m);
	text = ps_control_encode(&m, NULL);
	pthread_mutex_lock(&a->lock);
	if (text != NULL && !a->overflow && a->n < CMD_ANNOUNCE_MAX) {
		a->items[a->n++] = text;
		text = NULL;
	} else {
		a->overflow = true;
	}
	pthread_mutex_unlock(&a->lock);
	free(text);
	ev_async_send(a->loop, &a->wake);
}

void
cmd_announcer_stop(cmd_announcer **ap)
{
	cmd_announcer *a = ap != NULL ? *ap : NULL;

	if (a == NULL) {
		return;
	}
	if (a->started) {
		pthread_mutex_lock(&a->lock);
		a->stopping = true;
		pthread_mutex_unlock(&a->lock);
		ev_async_send(a->loop, &a->wake);
		pthread_join(a->thread, NULL);
	}
	if (a->loop != NULL) {
		ev_async_stop(a->loop, &a->wake);
	}
	ps_fabric_destroy(&a->fabric);
	if (a->loop != NULL) {
		ev_loop_destroy(a->loop);
	}
	if (a->n > 0 || a->overflow) {
		ls_warn(CMD_ANNOUNCE_LOG,
		        "%zu announcements not published at exit", a->n);
	}
	for (size_t i = 0; i < a->n; i++) {
		free(a->items[i]);
	}
	pthread_mutex_destroy(&a->lock);
	free(a);
	*ap = NULL;
}
