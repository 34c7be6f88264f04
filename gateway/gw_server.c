/*
 * Several gateway loops in one process (gw_server.h).
 *
 * Threads, not processes: the loops share the local fabric's hub (one
 * copy of each message, no serialization), the process's ZeroMQ context
 * (inproc:// bus) and the listening socket. Each loop owns everything
 * else — its libev loop, libwebsockets context, bus client (a DEALER:
 * ZeroMQ sockets are used from one thread only) and fabric — so nothing
 * on the fan-out path is shared but the hub's inboxes.
 *
 * Loop 0 accepts and hands each socket to the loop with the fewest
 * connections (its inbox of descriptors, woken by an ev_async). Loops
 * talk to each other only through this file's mutex-protected inboxes and
 * flags, and through the hub.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gw_internal.h"
#include "gw_server.h"
#include "ls_log.h"

_Static_assert(LS_SETTINGS_LOOPS_MAX <= PS_HUB_MEMBERS,
               "every loop needs a place in the hub");

typedef struct gw__handoff {
	int fd;
	bool tls;
} gw__handoff;

typedef enum gw__state {
	GW__STARTING,
	GW__RUNNING,
	GW__FAILED, /* could not start */
	GW__EXITED,
} gw__state;

typedef struct gw__loop {
	gw_server *srv;
	unsigned index;
	struct ev_loop *loop;
	gw_gateway *gw; /* under srv->lock for other threads */
	pthread_t thread;
	bool thread_started;
	ev_async cmd; /* handoffs, shutdown, stop */
	/* under srv->lock */
	gw__handoff *fds;
	size_t nfds, cap;
	gw__state state;
	bool shutdown; /* drain and stop */
	bool now;      /* stop at once */
	ls_error err;  /* start failure */
	/* the loop's own */
	bool draining;
} gw__loop;

struct gw_server {
	unsigned n;
	gw__loop *loops;
	ps_hub *hub;
	gw_shared *shared;     /* HTTP limits of the whole server */
	const gw_options *opt; /* during gw_server_new only */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	unsigned next; /* round robin among equally loaded loops */
	/* loop 0 */
	ev_async exited; /* a worker loop ended */
	bool stopping;
	bool failed;
	bool main_drained;
	void (*done)(void *);
	void *done_user;
};

/* ---- worker loops ------------------------------------------------------ */

static void
gw__worker_drained(void *user)
{
	gw__loop *l = user;

	ev_break(l->loop, EVBREAK_ALL);
}

static void
gw__cmd(struct ev_loop *loop, ev_async *w, int revents)
{
	gw__loop *l = w->data;
	gw_server *srv = l->srv;
	gw__handoff *fds;
	size_t nfds;
	bool shutdown, now;

	pthread_mutex_lock(&srv->lock);
	fds = l->fds;
	nfds = l->nfds;
	l->fds = NULL;
	l->nfds = l->cap = 0;
	shutdown = l->shutdown;
	now = l->now;
	pthread_mutex_unlock(&srv->lock);
	for (size_t i = 0; i < nfds; i++) {
		if (l->gw->stopping || now) {
			close(fds[i].fd);
		} else {
			gw_adopt(l->gw, fds[i].fd, fds[i].tls);
		}
	}
	free(fds);
	if (now) {
		ev_break(loop, EVBREAK_ALL);
	} else if (shutdown && !l->draining) {
		l->draining = true;
		gw_gateway_shutdown(l->gw, gw__worker_drained, l);
	}
}

static void *
gw__worker(void *arg)
{
	gw__loop *l = arg;
	gw_server *srv = l->srv;
	gw_options o = *srv->opt;
	ls_error err = { 0 };
	gw_gateway *gw;
	bool asked;

	o.hub = srv->hub;
	o.server = srv;
	o.index = l->index;
	o.shared = srv->shared;
	gw = gw_gateway_new(l->loop, &o, &err);
	pthread_mutex_lock(&srv->lock);
	l->gw = gw;
	l->state = gw != NULL ? GW__RUNNING : GW__FAILED;
	l->err = err;
	pthread_cond_broadcast(&srv->cond);
	pthread_mutex_unlock(&srv->lock);
	if (gw == NULL) {
		return NULL;
	}
	ev_run(l->loop, 0);
	pthread_mutex_lock(&srv->lock);
	asked = l->shutdown || l->now;
	l->gw = NULL; /* no longer visible to the other loops */
	pthread_mutex_unlock(&srv->lock);
	if (!asked) {
		ls_err(GW_LOG, "gateway loop %u stopped unexpectedly",
		       l->index);
	}
	gw_gateway_destroy(&gw);
	pthread_mutex_lock(&srv->lock);
	l->state = GW__EXITED;
	if (!asked) {
		srv->failed = true;
	}
	pthread_mutex_unlock(&srv->lock);
	ev_async_send(srv->loops[0].loop, &srv->exited);
	return NULL;
}

/* ---- loop 0 ------------------------------------------------------------ */

static void
gw__maybe_done(gw_server *srv)
{
	bool all = true;
	void (*done)(void *);

	if (!srv->stopping || !srv->main_drained) {
		return;
	}
	pthread_mutex_lock(&srv->lock);
	for (unsigned i = 1; i < srv->n; i++) {
		if (srv->loops[i].state == GW__RUNNING) {
			all = false;
		}
	}
	pthread_mutex_unlock(&srv->lock);
	if (!all) {
		return;
	}
	done = srv->done;
	srv->done = NULL;
	if (done != NULL) {
		done(srv->done_user);
	} else {
		ev_break(srv->loops[0].loop, EVBREAK_ALL);
	}
}

static void
gw__main_drained(void *user)
{
	gw_server *srv = user;

	srv->main_drained = true;
	gw__maybe_done(srv);
}

static void
gw__exited(struct ev_loop *loop, ev_async *w, int revents)
{
	gw_server *srv = w->data;
	bool failed;

	pthread_mutex_lock(&srv->lock);
	failed = srv->failed;
	pthread_mutex_unlock(&srv->lock);
	if (failed && !srv->stopping) {
		ls_err(GW_LOG, "a gateway loop failed: shutting the server "
		               "down");
		gw_server_shutdown(srv, NULL, NULL);
		return;
	}
	gw__maybe_done(srv);
}

/* Ask worker l to drain (now: to stop at once). */
static void
gw__tell(gw__loop *l, bool now)
{
	gw_server *srv = l->srv;
	bool running;

	pthread_mutex_lock(&srv->lock);
	l->shutdown = true;
	l->now = l->now || now;
	running = l->state == GW__RUNNING;
	pthread_mutex_unlock(&srv->lock);
	if (running) {
		ev_async_send(l->loop, &l->cmd);
	}
}

void
gw_server_shutdown(gw_server *srv, void (*done)(void *user), void *user)
{
	if (srv->stopping) {
		return;
	}
	srv->stopping = true;
	srv->done = done;
	srv->done_user = user;
	for (unsigned i = 1; i < srv->n; i++) {
		gw__tell(&srv->loops[i], false);
	}
	gw_gateway_shutdown(srv->loops[0].gw, gw__main_drained, srv);
}

/* Stop and join every worker; loop 0's gateway stays. */
static void
gw__stop_workers(gw_server *srv)
{
	for (unsigned i = 1; i < srv->n; i++) {
		gw__loop *l = &srv->loops[i];
		if (!l->thread_started) {
			continue;
		}
		gw__tell(l, true);
		pthread_join(l->thread, NULL);
		l->thread_started = false;
	}
}

gw_server *
gw_server_new(struct ev_loop *loop, const gw_options *opt, int loops,
              ls_error *err)
{
	gw_server *srv;
	gw_options o = *opt;

	if (loops < 1 || loops > LS_SETTINGS_LOOPS_MAX) {
		ls_error_set(err, LS_ECONFIG,
		             "gateway loops: expected 1 to %d, not %d",
		             LS_SETTINGS_LOOPS_MAX, loops);
		return NULL;
	}
	srv = calloc(1, sizeof(*srv));
	if (srv == NULL) {
		ls_error_set(err, -ENOMEM, "out of memory");
		return NULL;
	}
	srv->n = (unsigned)loops;
	srv->opt = opt;
	pthread_mutex_init(&srv->lock, NULL);
	pthread_cond_init(&srv->cond, NULL);
	srv->loops = calloc(srv->n, sizeof(*srv->loops));
	srv->hub = ps_hub_new();
	srv->shared = gw_shared_new(opt->settings);
	if (srv->loops == NULL || srv->hub == NULL || srv->shared == NULL) {
		ls_error_set(err, -ENOMEM, "out of memory");
		goto fail;
	}
	for (unsigned i = 0; i < srv->n; i++) {
		gw__loop *l = &srv->loops[i];
		l->srv = srv;
		l->index = i;
		l->state = GW__STARTING;
	}
	srv->loops[0].loop = loop;
	ev_async_init(&srv->exited, gw__exited);
	srv->exited.data = srv;
	ev_async_start(loop, &srv->exited);
	/* The workers first (one at a time: library set-up such as the TLS
	 * library's is then never concurrent), loop 0 last: it opens the
	 * listeners, and accepted connections may go to any loop. */
	for (unsigned i = 1; i < srv->n; i++) {
		gw__loop *l = &srv->loops[i];
		l->loop = ev_loop_new(EVFLAG_AUTO);
		if (l->loop == NULL) {
			ls_error_set(err, LS_ESERVER,
			             "cannot create event loop %u", i);
			goto fail;
		}
		ev_async_init(&l->cmd, gw__cmd);
		l->cmd.data = l;
		ev_async_start(l->loop, &l->cmd);
		if (pthread_create(&l->thread, NULL, gw__worker, l) != 0) {
			ls_error_set(err, LS_ESERVER,
			             "cannot start gateway loop %u", i);
			goto fail;
		}
		l->thread_started = true;
		pthread_mutex_lock(&srv->lock);
		while (l->state == GW__STARTING) {
			pthread_cond_wait(&srv->cond, &srv->lock);
		}
		pthread_mutex_unlock(&srv->lock);
		if (l->state == GW__FAILED) {
			*err = l->err;
			goto fail;
		}
	}
	o.hub = srv->hub;
	o.server = srv;
	o.index = 0;
	o.shared = srv->shared;
	srv->loops[0].gw = gw_gateway_new(loop, &o, err);
	if (srv->loops[0].gw == NULL) {
		goto fail;
	}
	srv->loops[0].state = GW__RUNNING;
	srv->opt = NULL;
	if (srv->n > 1) {
		ls_info(GW_LOG, "%u gateway loops", srv->n);
	}
	return srv;
fail:
	gw_server_destroy(&srv);
	return NULL;
}

gw_gateway *
gw_server_gateway(gw_server *srv)
{
	return srv->loops[0].gw;
}

int
gw_server_loops(const gw_server *srv)
{
	return (int)srv->n;
}

bool
gw_server_failed(const gw_server *srv)
{
	bool failed;

	pthread_mutex_lock((pthread_mutex_t *)&srv->lock);
	failed = srv->failed;
	pthread_mutex_unlock((pthread_mutex_t *)&srv->lock);
	return failed;
}

void
gw_server_destroy(gw_server **psrv)
{
	gw_server *srv = psrv ? *psrv : NULL;

	if (srv == NULL) {
		return;
	}
	if (srv->loops != NULL) {
		gw__stop_workers(srv);
		/* Loop 0 last: the workers may have handed it nothing more
		 * (its listeners are closed by now or never opened). */
		gw_gateway_destroy(&srv->loops[0].gw);
		if (srv->loops[0].loop != NULL) {
			ev_async_stop(srv->loops[0].loop, &srv->exited);
		}
		for (unsigned i = 1; i < srv->n; i++) {
			gw__loop *l = &srv->loops[i];
			for (size_t k = 0; k < l->nfds; k++) {
				close(l->fds[k].fd);
			}
			free(l->fds);
			if (l->loop != NULL) {
				ev_async_stop(l->loop, &l->cmd);
				ev_loop_destroy(l->loop);
			}
		}
	}
	ps_hub_destroy(&srv->hub);
	gw_shared_unref(&srv->shared);
	free(srv->loops);
	pthread_cond_destroy(&srv->cond);
	pthread_mutex_destroy(&srv->lock);
	free(srv);
	*psrv = NULL;
}

/* ---- used by the gateway ----------------------------------------------- */

void
gw_server_accepted(gw_gateway *gw, int fd, bool tls)
{
	gw_server *srv = gw->server;
	gw__loop *to = NULL;
	size_t best = (size_t)-1;

	if (srv == NULL || srv->n == 1) {
		gw_adopt(gw, fd, tls);
		return;
	}
	pthread_mutex_lock(&srv->lock);
	/* The loop with the fewest connections (counting those handed to
	 * it and not adopted yet); ties go round robin. */
	for (unsigned k = 0; k < srv->n; k++) {
		gw__loop *l = &srv->loops[(srv->next + k) % srv->n];
		size_t load;
		if (l->gw == NULL || l->state != GW__RUNNING || l->shutdown) {
			continue;
		}
		load = l->gw->nconns + l->nfds;
		if (load < best) {
			best = load;
			to = l;
		}
	}
	srv->next = (srv->next + 1) % srv->n;
	if (to != NULL && to->gw != gw) {
		if (to->nfds == to->cap) {
			size_t cap = to->cap ? to->cap * 2 : 16;
			gw__handoff *fds =
			        realloc(to->fds, cap * sizeof(*fds));
			if (fds == NULL) {
				pthread_mutex_unlock(&srv->lock);
				close(fd);
				return;
			}
			to->fds = fds;
			to->cap = cap;
		}
		to->fds[to->nfds++] = (gw__handoff){ fd, tls };
		pthread_mutex_unlock(&srv->lock);
		ev_async_send(to->loop, &to->cmd);
		return;
	}
	pthread_mutex_unlock(&srv->lock);
	gw_adopt(gw, fd, tls);
}

size_t
gw_server_connections(gw_gateway *gw)
{
	gw_server *srv = gw->server;
	size_t n = 0;

	if (srv == NULL) {
		return gw->nconns;
	}
	pthread_mutex_lock(&srv->lock);
	for (unsigned i = 0; i < srv->n; i++) {
		gw__loop *l = &srv->loops[i];
		if (l->gw != NULL) {
			n += l->gw->nconns;
		}
		n += l->nfds;
	}
	pthread_mutex_unlock(&srv->lock);
	return n;
}

size_t
gw_server_streams(gw_gateway *gw)
{
	gw_server *srv = gw->server;

	if (srv == NULL || gw->fabric == NULL ||
	    strcmp(ps_fabric_backend(gw->fabric), "local") != 0) {
		return (size_t)-1;
	}
	return ps_hub_topics(srv->hub);
}

void
gw_server_each(gw_gateway *gw, void (*fn)(gw_gateway *g, void *arg), void *arg)
{
	gw_server *srv = gw->server;

	if (srv == NULL) {
		fn(gw, arg);
		return;
	}
	pthread_mutex_lock(&srv->lock);
	for (unsigned i = 0; i < srv->n; i++) {
		if (srv->loops[i].gw != NULL) {
			fn(srv->loops[i].gw, arg);
		}
	}
	pthread_mutex_unlock(&srv->lock);
}
