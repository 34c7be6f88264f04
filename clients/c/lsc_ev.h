/*
 * lsc on the application's libev loop (docs/c-client.md).
 *
 * A client made with lsc_client_new_ev() is driven by the loop it was
 * given: its connection, timers and callbacks run inside ev_run() on that
 * loop's thread, beside the application's own watchers. lsc_client_run()
 * and lsc_client_run_until() refuse such a client (-EINVAL).
 *
 * Destroy the client (lsc_client_destroy) before the loop, outside the
 * client's callbacks.
 */
#ifndef LSC_EV_H
#define LSC_EV_H

#include <ev.h>

#include "lsc.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * As lsc_client_new(), with loop (borrowed; must outlive the client) as
 * the client's event loop. Needs libwebsockets' libev support at run time
 * (the evlib-ev plugin). Returns NULL with err set on failure.
 */
lsc_client *lsc_client_new_ev(const lsc_options *opt, struct ev_loop *loop,
                              lsc_error *err);

#ifdef __cplusplus
}
#endif

#endif
