/*
 * How the app server's changes reach the gateways (docs/architecture.md,
 * "Live authorization"): announcements on the fabric's control channel.
 */
#ifndef CMD_ANNOUNCE_H
#define CMD_ANNOUNCE_H

#include "as_services.h"
#include "bus_curve.h"
#include "ls_error.h"
#include "ps_control.h"

/* The announcement of a change. */
void cmd_change_control(const as_change *ch, ps_control *out);

/*
 * An announcer for a process without a gateway (`lightstream appserver`):
 * a thread with its own loop and a fabric of url (redis://,
 * redis+cluster://, zmq://...) on which it publishes the changes that
 * cmd_announcer_change() queues from any thread. While the fabric is not
 * ready announcements wait (bounded: past CMD_ANNOUNCE_MAX they collapse
 * into one "every account changed").
 */
typedef struct cmd_announcer cmd_announcer;

#define CMD_ANNOUNCE_MAX 1024

/* Start; NULL with err set (bad URL, no thread). */
cmd_announcer *cmd_announcer_start(const char *url,
                                   const bus_curve_keys *curve, ls_error *err);

/* An as_change_fn: queue ch's announcement (user: the announcer). */
void cmd_announcer_change(const as_change *ch, void *user);

/* Publish what can be published within a short grace, stop the thread,
 * free; accepts NULL and clears *a. */
void cmd_announcer_stop(cmd_announcer **a);

#endif
