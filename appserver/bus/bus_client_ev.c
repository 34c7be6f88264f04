/*
 * libev glue for bus_client. ZMQ_FD is edge-triggered and only signals
 * that the socket's state may have changed: after any send, receive or
 * ZMQ_EVENTS query the edge can be consumed with messages still queued.
 * So besides the ev_io on the fd, a prepare watcher asks ZMQ_EVENTS right
 * before the loop blocks and, when a reply is waiting, starts an idle
 * watcher so the loop does not block; the check watcher then processes.
 * The prepare watcher also re-arms the deadline timer.
 */
#include <errno.h>
#include <ev.h>
#include <stdlib.h>

#include "bus_client_internal.h"

struct bus__client_ev {
	bus_client *c;
	struct ev_loop *loop;
	ev_io io;
	ev_prepare prepare;
	ev_check check;
	ev_idle idle;
	ev_timer timer;
};

static void
bus__ev_io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	bus__client_ev *ev = w->data;

	bus_client_process(ev->c);
}

static void
bus__ev_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	bus__client_ev *ev = w->data;

	bus_client_process(ev->c);
}

static void
bus__ev_idle_cb(struct ev_loop *loop, ev_idle *w, int revents)
{
	/* Only keeps the loop from blocking; the check watcher works. */
}

static void
bus__ev_prepare_cb(struct ev_loop *loop, ev_prepare *w, int revents)
{
	bus__client_ev *ev = w->data;
	int next = bus_client_next_timeout_ms(ev->c);

	ev_timer_stop(loop, &ev->timer);
	if (next >= 0) {
		/* +1 ms: libev may fire a hair early; the deadline is in
		 * whole milliseconds. */
		ev_timer_set(&ev->timer, (next + 1) / 1000.0, 0.);
		ev_timer_start(loop, &ev->timer);
	}
	if (bus__client_readable(ev->c)) {
		ev_idle_start(loop, &ev->idle);
	}
}

static void
bus__ev_check_cb(struct ev_loop *loop, ev_check *w, int revents)
{
	bus__client_ev *ev = w->data;

	if (ev_is_active(&ev->idle)) {
		ev_idle_stop(loop, &ev->idle);
	}
	if (bus__client_readable(ev->c)) {
		bus_client_process(ev->c);
	}
}

int
bus_client_attach_ev(bus_client *c, struct ev_loop *loop)
{
	bus__client_ev *ev;
	int fd = bus_client_fd(c);

	if (loop == NULL || fd < 0) {
		return -EINVAL;
	}
	if (bus__client_get_ev(c) != NULL) {
		return -EALREADY;
	}
	ev = calloc(1, sizeof(*ev));
	if (ev == NULL) {
		return -ENOMEM;
	}
	ev->c = c;
	ev->loop = loop;
	ev_io_init(&ev->io, bus__ev_io_cb, fd, EV_READ);
	ev_prepare_init(&ev->prepare, bus__ev_prepare_cb);
	ev_check_init(&ev->check, bus__ev_check_cb);
	ev_idle_init(&ev->idle, bus__ev_idle_cb);
	ev_timer_init(&ev->timer, bus__ev_timer_cb, 0., 0.);
	ev->io.data = ev->prepare.data = ev->check.data = ev;
	ev->idle.data = ev->timer.data = ev;
	ev_io_start(loop, &ev->io);
	ev_prepare_start(loop, &ev->prepare);
	ev_check_start(loop, &ev->check);
	/* The io and timer watchers are what keeps a loop alive. */
	ev_unref(loop);
	ev_unref(loop);
	bus__client_set_ev(c, ev);
	return 0;
}

void
bus__client_ev_detach(bus__client_ev *ev)
{
	if (ev == NULL) {
		return;
	}
	ev_io_stop(ev->loop, &ev->io);
	ev_ref(ev->loop);
	ev_ref(ev->loop);
	ev_prepare_stop(ev->loop, &ev->prepare);
	ev_check_stop(ev->loop, &ev->check);
	ev_idle_stop(ev->loop, &ev->idle);
	ev_timer_stop(ev->loop, &ev->timer);
	free(ev);
}
