#include <errno.h>
#include <stdlib.h>

#include "ps_redis_ev.h"

typedef struct ps__redis_ev {
	struct ev_loop *loop;
	redisAsyncContext *ac;
	ev_io rio;
	ev_io wio;
} ps__redis_ev;

static void
ps__redis_ev_read(struct ev_loop *loop, ev_io *w, int revents)
{
	ps__redis_ev *e = w->data;
	/* EV_ERROR included: the read fails and hiredis disconnects. */
	redisAsyncHandleRead(e->ac);
}

static void
ps__redis_ev_write(struct ev_loop *loop, ev_io *w, int revents)
{
	ps__redis_ev *e = w->data;
	if (revents & EV_ERROR) {
		/* Let the read path notice the broken socket. */
		redisAsyncHandleRead(e->ac);
		return;
	}
	redisAsyncHandleWrite(e->ac);
}

static void
ps__redis_ev_add_read(void *p)
{
	ps__redis_ev *e = p;
	ev_io_start(e->loop, &e->rio);
}

static void
ps__redis_ev_del_read(void *p)
{
	ps__redis_ev *e = p;
	ev_io_stop(e->loop, &e->rio);
}

static void
ps__redis_ev_add_write(void *p)
{
	ps__redis_ev *e = p;
	ev_io_start(e->loop, &e->wio);
}

static void
ps__redis_ev_del_write(void *p)
{
	ps__redis_ev *e = p;
	ev_io_stop(e->loop, &e->wio);
}

static void
ps__redis_ev_cleanup(void *p)
{
	ps__redis_ev *e = p;
	ev_io_stop(e->loop, &e->rio);
	ev_io_stop(e->loop, &e->wio);
	free(e);
}

int
ps__redis_ev_attach(struct ev_loop *loop, redisAsyncContext *ac)
{
	if (ac->ev.data != NULL) {
		return -EBUSY;
	}
	ps__redis_ev *e = calloc(1, sizeof(*e));
	if (e == NULL) {
		return -ENOMEM;
	}
	e->loop = loop;
	e->ac = ac;
	ev_io_init(&e->rio, ps__redis_ev_read, ac->c.fd, EV_READ);
	ev_io_init(&e->wio, ps__redis_ev_write, ac->c.fd, EV_WRITE);
	e->rio.data = e;
	e->wio.data = e;
	ac->ev.addRead = ps__redis_ev_add_read;
	ac->ev.delRead = ps__redis_ev_del_read;
	ac->ev.addWrite = ps__redis_ev_add_write;
	ac->ev.delWrite = ps__redis_ev_del_write;
	ac->ev.cleanup = ps__redis_ev_cleanup;
	ac->ev.data = e;
	return 0;
}
