/*
 * Entry points into the bus worker's message handling for the fuzz
 * targets (fuzz_bus, fuzz_services). fuzz_worker_glue.c compiles
 * appserver/bus/bus_worker.c into itself, so these run exactly the
 * worker's own static decoding code, unchanged.
 */
#ifndef FUZZ_WORKER_GLUE_H
#define FUZZ_WORKER_GLUE_H

#include <stdbool.h>
#include <stddef.h>

#include "bus_proto.h"
#include "bus_worker.h"

/*
 * Decode a request body {"o", "a"} and run the operation of svc (borrowed;
 * NULL: a service this worker does not serve), as a worker does. Returns
 * the reply status byte (BUS__ST_*) and sets *out to a new string (free())
 * or NULL.
 */
int fz_worker_request(const bus_service *svc, const void *body, size_t len,
                      char **out);

/*
 * Handle one message from the broker ([LSW1, command, ...], borrowed) as
 * worker thread 0 of a pool serving services[0..n) would; replies go to
 * sock (a DEALER connected to a broker backend, or NULL: not sent).
 * Returns false when the worker would reconnect (DISCONNECT).
 */
bool fz_worker_message(void *sock, const bus_service *services, size_t n,
                       bus__msg *m);

#endif
