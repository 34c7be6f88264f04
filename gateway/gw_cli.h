/*
 * What `lightstream serve` and `lightstream gateway` share: the
 * gateway-only command-line flags and the signal-driven run loop.
 */
#ifndef GW_CLI_H
#define GW_CLI_H

#include <getopt.h>

#include "gw_gateway.h"
#include "gw_server.h"
#include "ls_settings.h"

struct ev_loop;

/* Gateway flags (val >= 0x3000), terminated by a zero entry. */
extern const struct option gw_cli_options[];

/*
 * Apply one gateway flag to s. Returns 1 when opt was one of
 * gw_cli_options, 0 when not, or LS_ECONFIG with err set.
 */
int gw_cli_option(ls_settings *s, int opt, const char *arg, ls_error *err);

/* Help lines for gw_cli_options. */
const char *gw_cli_help(void);

/* Log the URLs a user opens, one line. */
void gw_cli_announce(const char *command, const gw_gateway *gw);

/*
 * Run loop (the server's loop 0) until SIGTERM or SIGINT, then shut every
 * loop of the server down gracefully (close 1001, drain) and return 0; a
 * second signal stops at once. Returns -1 when a loop of the server
 * failed (the server then shut itself down).
 */
int gw_cli_run(struct ev_loop *loop, gw_server *srv);

/*
 * The number of gateway loops: gateway.loops / --gateways when set, else
 * dflt (0: one per core).
 */
int gw_cli_loops(const ls_settings *s, int dflt);

#endif
