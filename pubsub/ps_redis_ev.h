/*
 * Glue between a hiredis async context and a libev loop: two ev_io
 * watchers started and stopped as hiredis asks. Ours rather than
 * hiredis' adapters/ so that poll errors are surfaced as reads (hiredis
 * then sees the failure and disconnects) and the loop is explicit.
 */
#ifndef PS_REDIS_EV_H
#define PS_REDIS_EV_H

#include <ev.h>
#include <hiredis/async.h>

/*
 * Attach ac to loop (borrowed). The glue is freed by hiredis through its
 * cleanup hook when ac is freed. Returns 0, -EBUSY (already attached) or
 * -ENOMEM.
 */
int ps__redis_ev_attach(struct ev_loop *loop, redisAsyncContext *ac);

#endif
