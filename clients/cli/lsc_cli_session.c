/*
 * How a `pub` or `sub` run ends: the report of a refusal or of a lost
 * connection, the exit status, and the stop signals (see lsc_cli.h).
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "ls_proto.h"
#include "lsc_cli.h"

/* The exit status of a runtime failure, as in cmd/cmd.h. */
#define LSC_CLI_EXIT_FAILURE 1

static volatile sig_atomic_t lsc_cli_signalled;

int
lsc_cli_session_target(lsc_cli_session *s, const char *arg, char *owner,
                       char *stream)
{
	if (lsc_cli_target(arg, owner, stream) != 0) {
		return lsc_cli_usage_error(s->cmd,
		                           "'%s' is not OWNER/STREAM (owner "
		                           "[A-Za-z0-9_-], stream "
		                           "[A-Za-z0-9_.-])",
		                           arg);
	}
	snprintf(s->target, sizeof(s->target), "%s/%s", owner, stream);
	return 0;
}

void
lsc_cli_finish(lsc_client *c, lsc_cli_session *s, int status)
{
	if (!s->finished) {
		s->finished = true;
		s->status = status;
	}
	lsc_client_stop(c);
}

void
lsc_cli_session_error(lsc_cli_session *s, const char *code,
                      const char *message)
{
	snprintf(s->err_code, sizeof(s->err_code), "%s", code);
	snprintf(s->err_msg, sizeof(s->err_msg), "%s", message);
}

void
lsc_cli_session_refused(lsc_client *c, lsc_cli_session *s, const char *code,
                        const char *message)
{
	fprintf(stderr, "lightstream %s: %s: %s%s%s\n", s->cmd,
	        lsc_cli_describe(code), s->target, *message ? ": " : "",
	        message);
	lsc_cli_finish(c, s, lsc_cli_exit_for(code));
}

void
lsc_cli_session_closed(lsc_client *c, lsc_cli_session *s, int code,
                       const char *reason)
{
	if (s->finished) {
		return; /* the reason was reported already */
	}
	if (s->err_code[0] != '\0') {
		const char *what = lsc_cli_describe(s->err_code);

		/* The message often only repeats the code's words. */
		if (strcmp(what, s->err_msg) == 0 || s->err_msg[0] == '\0') {
			fprintf(stderr, "lightstream %s: %s (close %d)\n",
			        s->cmd, what, code);
		} else {
			fprintf(stderr, "lightstream %s: %s: %s (close %d)\n",
			        s->cmd, what, s->err_msg, code);
		}
		lsc_cli_finish(c, s, lsc_cli_exit_for(s->err_code));
	} else if (code == LS_CLOSE_AUTH_FAILED) {
		fprintf(stderr,
		        "lightstream %s: authentication failed (close %d)\n",
		        s->cmd, code);
		lsc_cli_finish(c, s, LSC_CLI_EXIT_FAILURE);
	} else if (!s->connected) {
		fprintf(stderr, "lightstream %s: cannot connect to %s: %s\n",
		        s->cmd, s->url,
		        *reason ? reason : "connection failed");
		lsc_cli_finish(c, s, LSC_CLI_EXIT_FAILURE);
	} else {
		fprintf(stderr, "lightstream %s: connection closed (%d%s%s)\n",
		        s->cmd, code, *reason ? " " : "", reason);
		lsc_cli_finish(c, s, LSC_CLI_EXIT_FAILURE);
	}
}

static void
lsc_cli_on_signal(int sig)
{
	(void)sig;
	lsc_cli_signalled = 1;
}

void
lsc_cli_catch_stop_signals(void)
{
	signal(SIGINT, lsc_cli_on_signal);
	signal(SIGTERM, lsc_cli_on_signal);
}

bool
lsc_cli_stop_requested(void)
{
	return lsc_cli_signalled != 0;
}
