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
 * the text itself as a JSON string (new reference, NULL on bad UTF-8 or
 * allocation failure).
 */
json_t *lsc_cli_message(const char *text, size_t len);

/* Print one delivered message as one line in the given format and flush.
 * Returns 0 or -EIO. */
int lsc_cli_print(FILE *out, const lsc_message *m, lsc_cli_output mode);

/*
 * Parse a positive number of seconds (fractions allowed) into ms.
 * Returns 0 or -EINVAL.
 */
int lsc_cli_seconds(const char *text, long *ms);

/* Parse a non-negative integer with an upper bound. 0 or -EINVAL. */
int lsc_cli_long(const char *text, long max, long *out);

/*
 * Exit status and a one-line explanation for a server error code
 * ("auth_failed", "forbidden", "invalid_query", ...): 2 for
 * invalid_query / bad_request (the user's input), 1 otherwise.
 */
int lsc_cli_exit_for(const char *error_code);

/* Text of the argument: itself, or the contents of @FILE (a trailing
 * newline removed). *owned receives what to free (may stay NULL).
 * Returns NULL with errno set on a read error. */
const char *lsc_cli_arg_text(const char *arg, char **owned);

#endif
