/* Internal to the bus: what the libev glue needs from the client. */
#ifndef BUS_CLIENT_INTERNAL_H
#define BUS_CLIENT_INTERNAL_H

#include <stdbool.h>

#include "bus_client.h"

typedef struct bus__client_ev bus__client_ev;

/* ZMQ_EVENTS has POLLIN (also re-arms the edge-triggered ZMQ_FD). */
bool bus__client_readable(const bus_client *c);

void bus__client_set_ev(bus_client *c, bus__client_ev *ev);
bus__client_ev *bus__client_get_ev(const bus_client *c);

/* Stop the watchers and free the glue. Accepts NULL. */
void bus__client_ev_detach(bus__client_ev *ev);

#endif
