/*
 * Helpers shared by the command-line clients (`lightstream pub`, `sub`,
 * `token`): option values, message text, output formats, exit statuses.
 * Internal to the `lightstream` executable; not part of the lsc API.
 */
#ifndef LSC_CLI_H
#define LSC_CLI_H

#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>

#include <jansson.h>

#include "ls_settings.h"
#include "lsc.h"

/*
 * Build the getopt table of a client command into out (cap entries, zero
 * terminated): own (zero-terminated) followed by the shared --config,
 * --log-level and --log-format of ls_settings_options — the server-side
 * shared options (--listen, --data, ...) mean nothing to a client and are
 * rejected instead of silently ignored.
 */
void lsc_cli_options(const struct option *own, struct option *out, int cap);

/* Output formats of `sub` (-o). */
typedef enum lsc_cli_output {
	LSC_CLI_OUT_JSON = 0,    /* data as compact JSON (default) */
	LSC_CLI_OUT_PLAIN = 1,   /* strings unquoted, the rest as JSON */
	LSC_CLI_OUT_MESSAGE = 2, /* {"owner","stream","sub","data"} */
} lsc_cli_output;

/* Parse "json", "plain" or "message". Returns 0 or -EINVAL. */
int lsc_cli_output_parse(const char *text, lsc_cli_output *out);

/*
 * Split "OWNER/STREAM" into owner (65 bytes) and stream (129 bytes),
 * validating both names. Returns 0 or -EINVAL.
 */
int lsc_cli_target(const char *arg, char *owner, char *stream);

/*
 * A message from text: JSON when it parses as any JSON value, otherwise
 * the text itself as a JSON string. With as_text the text is always a
 * JSON string. Text that starts like JSON (`{`, `[` or `"` after white
 * space) but does not parse is refused rather than silently sent as a
 * string: a typo in a JSON document should not reach subscribers as text.
 * Returns a new reference, or NULL with why (may be NULL, why_len bytes)
 * saying what is wrong: bad UTF-8, malformed JSON, or no memory.
 */
json_t *lsc_cli_message(const char *text, size_t len, bool as_text, char *why,
                        size_t why_len);

/* Print one delivered message as one line in the given format and flush.
 * Returns 0 or -EIO. */
int lsc_cli_print(FILE *out, const lsc_message *m, lsc_cli_output mode);

/*
 * Parse a positive number of seconds (fractions allowed) into ms.
 * Returns 0 or -EINVAL.
 */
int lsc_cli_seconds(const char *text, long *ms);

/*
 * The value of -T/--timeout: lsc_cli_seconds, at most max_ms (ms, < 0: no
 * limit), else a usage error "--timeout must be a positive number of
 * seconds". Returns 0 with *ms set, or 2 (the exit status).
 */
int lsc_cli_timeout_option(const char *cmd, const char *arg, long max_ms,
                           long *ms);

/* Parse a non-negative integer with an upper bound. 0 or -EINVAL. */
int lsc_cli_long(const char *text, long max, long *out);

/*
 * Exit status for a server error code ("auth_failed", "forbidden",
 * "invalid_query", ...): 2 for invalid_query / bad_request (the user's
 * input), 1 otherwise.
 */
int lsc_cli_exit_for(const char *error_code);

/*
 * Words for a server error code in a message ("auth_failed" is
 * "authentication failed"); an unknown code is returned as it is.
 * Returns a static string or error_code itself (borrowed).
 */
const char *lsc_cli_describe(const char *error_code);

/* Text of the argument: itself, or the contents of @FILE (a trailing
 * newline removed). *owned receives what to free (may stay NULL).
 * Returns NULL with errno set on a read error. */
const char *lsc_cli_arg_text(const char *arg, char **owned);

/*
 * A usage error of `lightstream <cmd>`: prints "lightstream <cmd>: " and
 * the printf text, then the line pointing to --help, on stderr.
 * Returns the exit status for usage errors (2).
 */
int lsc_cli_usage_error(const char *cmd, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));

/*
 * lsc_cli_arg_text for the value of an option holding what (e.g. "token":
 * its text or @FILE). On success *text is the value and *owned what to
 * free; on a read error prints "cannot read <what> <arg>" as a usage
 * error. Returns 0 or 2 (the exit status).
 */
int lsc_cli_text_option(const char *cmd, const char *what, const char *arg,
                        const char **text, char **owned);

/*
 * The fallback of a client's option loop (the `default:` of its switch):
 * a shared option of lsc_cli_options (--config, --log-level, --log-format)
 * is recorded in s; anything else (an unknown option, getopt's '?') gets
 * the line pointing to --help. Returns 1 when consumed, 0 when not an
 * option (hint printed), -1 when its value is invalid (error printed).
 */
int lsc_cli_settings_option(const char *cmd, ls_settings *s, int opt,
                            const char *arg);

/* The getopt code of --ca-file (no short option) in lsc_cli_conn. */
#define LSC_CLI_OPT_CA_FILE 0x100

/*
 * The getopt_long entries and short options of the connection options
 * `pub` and `sub` share (parsed by lsc_cli_conn_option): -u/--url,
 * -a/--app, -t/--token, -s/--secret, --ca-file, -k/--insecure.
 */
#define LSC_CLI_CONN_OPTIONS                                                  \
	{ "url", required_argument, NULL, 'u' },                              \
	        { "app", required_argument, NULL, 'a' },                      \
	        { "token", required_argument, NULL, 't' },                    \
	        { "secret", required_argument, NULL, 's' },                   \
	        { "ca-file", required_argument, NULL, LSC_CLI_OPT_CA_FILE },  \
	{                                                                     \
		"insecure", no_argument, NULL, 'k'                            \
	}
#define LSC_CLI_CONN_SHORT "u:a:t:s:k"

/*
 * The connection options as parsed: o.url, app_key, token, secret_key,
 * ca_file and insecure are set (borrowed from argv, or from the owned
 * strings read from @FILE); the caller fills in the rest of o.
 */
typedef struct lsc_cli_conn {
	lsc_options o;
	char *token_owned;  /* --token @FILE */
	char *secret_owned; /* --secret @FILE */
} lsc_cli_conn;

/*
 * Zero cc and set the default gateway url (borrowed).
 */
void lsc_cli_conn_init(lsc_cli_conn *cc, const char *url);

/*
 * The fallback of the option loop of pub and sub (the `default:` of its
 * switch): opt (getopt_long's answer, arg borrowed) is applied to cc when
 * it is one of LSC_CLI_CONN_OPTIONS, else handled by
 * lsc_cli_settings_option. Returns 1 when applied, 0 when it is no option
 * (hint printed), -1 when its value is invalid (error printed).
 */
int lsc_cli_conn_option(const char *cmd, lsc_cli_conn *cc, ls_settings *s,
                        int opt, const char *arg);

/*
 * Check that --app and --token were given (a usage error is printed when
 * not). Returns 0 or 2 (the exit status).
 */
int lsc_cli_conn_check(const char *cmd, const lsc_cli_conn *cc);

/* Wipe and free what cc owns (the secrets read from files). */
void lsc_cli_conn_clear(lsc_cli_conn *cc);

/*
 * What a `pub` or `sub` run knows about its connection, to report how it
 * ended: whether it ever connected, the last Error envelope, and the exit
 * status once finished. Embedded in the command's state; cmd and url are
 * borrowed and must outlive it.
 */
typedef struct lsc_cli_session {
	const char *cmd;   /* "pub", "sub": names the command in messages */
	const char *url;   /* the gateway */
	char target[200];  /* "OWNER/STREAM", set by lsc_cli_session_target */
	bool connected;    /* at least once */
	bool finished;     /* status is final */
	int status;        /* exit status once finished */
	char err_code[32]; /* last Error envelope's code ("" none) */
	char err_msg[256]; /* and its message */
} lsc_cli_session;

/*
 * Parse the OWNER/STREAM operand arg into owner (65 bytes) and stream
 * (129 bytes) and record it as s->target; prints a usage error when it is
 * not one. Returns 0 or 2 (the exit status).
 */
int lsc_cli_session_target(lsc_cli_session *s, const char *arg, char *owner,
                           char *stream);

/*
 * The run is over with status (the first status given wins): stop the
 * client's loop. c is borrowed.
 */
void lsc_cli_finish(lsc_client *c, lsc_cli_session *s, int status);

/* Remember an Error envelope (code and message, copied) for the report of
 * the close that usually follows it. */
void lsc_cli_session_error(lsc_cli_session *s, const char *code,
                           const char *message);

/*
 * The server refused a request on s->target (an ack or a subscription
 * with error code and message): prints "<what>: <target>[: <message>]"
 * and finishes with lsc_cli_exit_for(code).
 */
void lsc_cli_session_refused(lsc_client *c, lsc_cli_session *s,
                             const char *code, const char *message);

/*
 * The connection closed for good (no reconnection): unless the run has
 * finished already, prints why — the remembered Error envelope, a
 * rejected token (close 4001), a failed connect or the close code — and
 * finishes with the matching exit status.
 */
void lsc_cli_session_closed(lsc_client *c, lsc_cli_session *s, int code,
                            const char *reason);

/*
 * Make SIGINT and SIGTERM only set a flag, read with
 * lsc_cli_stop_requested(), so that the command can close its connection
 * and report before it exits.
 */
void lsc_cli_catch_stop_signals(void);

/* Whether SIGINT or SIGTERM arrived since lsc_cli_catch_stop_signals(). */
bool lsc_cli_stop_requested(void);

#endif
