/*
 * How the app server's changes reach the gateways (docs/architecture.md,
 * "Live authorization"): announcements on the fabric's control channel.
 */
#ifndef CMD_ANNOUNCE_H
#define CMD_ANNOUNCE_H

#include "as_services.h"
#include "ps_control.h"

/* The announcement of a change. */
void cmd_change_control(const as_change *ch, ps_control *out);

#endif
