/*
 * Helpers shared by the server and admin commands (serve, gateway, broker,
 * appserver, admin, call): the option handling every command repeats, with
 * one wording for every error, "lightstream <cmd>: <error>" on stderr.
 * Internal to the `lightstream` executable.
 */
#ifndef LS_CMD_UTIL_H
#define LS_CMD_UTIL_H

#include <signal.h>

#include "ls_error.h"
#include "ls_settings.h"

/* A command's own option handler, e.g. gw_cli_option: 1 consumed, 0 not
 * its option, < 0 error described in *err. */
typedef int (*cmd_option_fn)(ls_settings *s, int opt, const char *arg,
                             ls_error *err);

/* Print "lightstream <cmd>: <printf text>\n" on stderr. */
void cmd_error(const char *cmd, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));

/*
 * ls_settings_init(s), printing "out of memory" on failure.
 * Returns 0, or CMD_EXIT_FAILURE (the command's exit status).
 */
int cmd_settings_init(const char *cmd, ls_settings *s);

/*
 * Offer option opt (getopt_long's answer, arg borrowed) to the shared
 * settings, then to more (may be NULL). Returns 1 when consumed, 0 when it
 * is none of theirs (the caller's own option), -1 when invalid, with the
 * error printed.
 */
int cmd_settings_option(const char *cmd, ls_settings *s, int opt,
                        const char *arg, cmd_option_fn more);

/*
 * Parse arg as a decimal integer from min to max. Returns 0 with *out set,
 * or -EINVAL (nothing printed, *out unchanged).
 */
int cmd_parse_long(const char *arg, long min, long max, long *out);

/*
 * cmd_parse_long for the value of option --name, printing
 * "--<name>: expected <min> to <max>[ <unit>], not '<arg>'" when it is
 * not one (unit may be NULL). Returns 0 or -EINVAL.
 */
int cmd_option_long(const char *cmd, const char *name, const char *arg,
                    long min, long max, const char *unit, long *out);

/*
 * The end of the options of a command that takes no operand: prints
 * "unexpected argument '<arg>'" when argv[optind] exists. Returns 0 or
 * -EINVAL.
 */
int cmd_no_operands(const char *cmd, int optind, int argc, char **argv);

/* ls_settings_apply_logging(s), printing its error. Returns 0 or < 0. */
int cmd_apply_logging(const char *cmd, const ls_settings *s);

/*
 * Block SIGTERM and SIGINT in the calling thread and fill *set with them.
 * Call before any thread starts, so that every thread inherits the mask
 * and only cmd_wait_stop() receives them.
 */
void cmd_block_stop_signals(sigset_t *set);

/* Wait for one of the signals of set (from cmd_block_stop_signals).
 * Returns its number. */
int cmd_wait_stop(const sigset_t *set);

/*
 * Run handler (async-signal-safe) on SIGTERM and SIGINT, for a command
 * whose own loop must be told to stop.
 */
void cmd_on_stop_signals(void (*handler)(int sig));

/*
 * mkdir -p dir (0750): the data directory, where the default SQLite store
 * lives (serve, appserver). Returns 0 or -errno.
 */
int cmd_make_data_dir(const char *dir);

#endif
