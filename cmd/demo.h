/*
 * The demo publisher of `lightstream serve --demo`: weather readings of five
 * cities on svc1/weather every 500 ms, for the demo page (docs/js-client.md).
 */
#ifndef LS_CMD_DEMO_H
#define LS_CMD_DEMO_H

#include <ev.h>

#include "gw_gateway.h"

typedef struct serve_demo serve_demo;

/*
 * Make sure the demo account (svc1, the keys the demo page uses) exists,
 * creating it through the bus at frontend when it does not, then start
 * publishing on loop through gw (borrowed; must outlive the demo). Returns
 * a new demo, or NULL when out of memory.
 */
serve_demo *serve_demo_start(struct ev_loop *loop, gw_gateway *gw,
                             void *zmq_ctx, const char *frontend);

/* Stop publishing and free the demo; accepts NULL, clears *d. */
void serve_demo_stop(serve_demo **d);

/*
 * The next value of a reading that drifts around mean: a step back towards
 * the mean (a fraction `pull` of the distance) plus noise in [-noise,
 * noise]. Kept apart for its test: readings stay near their city's mean.
 */
double serve_demo_step(double value, double mean, double pull, double noise,
                       unsigned *seed);

#endif
