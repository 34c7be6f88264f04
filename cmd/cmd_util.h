/*
 * Helpers shared by the server and admin commands (serve, gateway, broker,
 * appserver, admin, call): the option handling every command repeats, with
 * one wording for every error, "lightstream <cmd>: <error>" on stderr.
 * Internal to the `lightstream` executable.
 */
#ifndef LS_CMD_UTIL_H
#define LS_CMD_UTIL_H

#include <signal.h>

#include "bus_curve.h"
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
 * CURVE for a bus client (admin, call, appserver): --curve-server-key KEY
 * (the broker's public key) and --curve-keys FILE (our key pair), both or
 * neither. Their getopt codes sit between the commands' own (0x2000) and
 * the gateway's (0x3000).
 */
enum {
	CMD_OPT_CURVE_SERVER_KEY = 0x2800,
	CMD_OPT_CURVE_KEYS,
};
#define CMD_CURVE_OPTIONS                                                     \
	{ "curve-server-key", required_argument, NULL,                        \
	  CMD_OPT_CURVE_SERVER_KEY },                                         \
	{                                                                     \
		"curve-keys", required_argument, NULL, CMD_OPT_CURVE_KEYS     \
	}
#define CMD_CURVE_HELP                                                        \
	"  --curve-server-key KEY   CURVE: the broker's public key\n"         \
	"  --curve-keys FILE        CURVE: our key file (with "               \
	"--curve-server-key)\n"

typedef struct cmd_curve {
	const char *server_key; /* --curve-server-key (borrowed), or NULL */
	const char *keys_path;  /* --curve-keys (borrowed), or NULL */
	char public_key[BUS_CURVE_KEY_LEN + 1];
	char secret_key[BUS_CURVE_KEY_LEN + 1];
	bus_curve_keys keys; /* points into this struct once loaded */
} cmd_curve;

/* Record opt when it is a CURVE option. Returns 1 when it was, else 0. */
int cmd_curve_option(cmd_curve *cc, int opt, const char *arg);

/*
 * After the options: check that both or neither were given and the
 * server key is a Z85 public key (else -EINVAL), and read the key file
 * (else its error, < 0); the error is printed. Returns 0 — then
 * cmd_curve_keys() tells whether CURVE is on.
 */
int cmd_curve_load(const char *cmd, cmd_curve *cc);

/* The keys for bus_call_secure and the app server (pointing into cc),
 * or NULL when CURVE is off. */
const bus_curve_keys *cmd_curve_keys(const cmd_curve *cc);

/* Wipe the secret key. */
void cmd_curve_clear(cmd_curve *cc);

#endif
