/*
 * `lightstream sub OWNER/STREAM`: subscribe over WebSocket (SPEC §3) and
 * print one line per message on stdout; status and errors on stderr.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "ls_log.h"
#include "ls_settings.h"
#include "ls_time.h"
#include "lsc.h"
#include "lsc_cli.h"

#define SUB_LOG         "sub"
#define SUB_DEFAULT_URL "ws://127.0.0.1:8080"

enum {
	SUB_OPT_CA_FILE = 0x100,
	SUB_OPT_NO_RECONNECT,
};

static volatile sig_atomic_t sub_signalled;

typedef struct sub_state {
	lsc_cli_output out;
	long count; /* 0: unlimited */
	long received;
	const char *url;
	char target[200];
	bool connected;
	bool finished;
	int status;
	char err_code[32]; /* last Error envelope */
	char err_msg[256];
} sub_state;

static void
sub_usage(FILE *out)
{
	fprintf(out,
	        "Usage: lightstream sub [OPTIONS] OWNER/STREAM\n"
	        "\n"
	        "Subscribe to a stream and print each message on its own "
	        "line.\n"
	        "\n"
	        "Options:\n"
	        "  -u, --url URL       gateway, ws://HOST:PORT or wss://... "
	        "(default\n"
	        "                      " SUB_DEFAULT_URL ")\n"
	        "  -a, --app APPKEY    the account's app key (required)\n"
	        "  -t, --token TOKEN   a token (or @FILE) (required)\n"
	        "  -s, --secret KEY    the account's secret key: answers "
	        "web-token\n"
	        "                      challenges (or @FILE)\n"
	        "  -q, --query Q       a query (JSON text or @FILE), SPEC "
	        "section 4\n"
	        "  -n, --count N       exit after N messages\n"
	        "  -T, --timeout S     stop after S seconds (fractions "
	        "allowed)\n"
	        "  -o, --output FMT    json: the data as compact JSON "
	        "(default);\n"
	        "                      plain: strings unquoted; message: "
	        "{owner,stream,sub,data}\n"
	        "      --ca-file FILE  CA certificates (PEM) for wss://\n"
	        "  -k, --insecure      accept any server certificate "
	        "(development)\n"
	        "      --no-reconnect  exit when the connection is lost "
	        "instead of\n"
	        "                      reconnecting with backoff\n"
	        "      --log-level L   debug, info (default), warn, error, "
	        "off\n"
	        "      --log-format F  text or json (stderr)\n"
	        "      --config FILE   read log.* settings from a "
	        "configuration file\n"
	        "  -h, --help          this help\n"
	        "\n"
	        "Exit status: 0 after --count messages, at --timeout "
	        "without --count,\n"
	        "or on SIGINT/SIGTERM; 1 authentication failed, forbidden, "
	        "connection\n"
	        "failed or lost, or --timeout before --count messages; 2 "
	        "bad arguments\n"
	        "or invalid query.\n");
}

static void
sub_on_signal(int sig)
{
	(void)sig;
	sub_signalled = 1;
}

static const char *
sub_describe(const char *code)
{
	if (strcmp(code, "auth_failed") == 0) {
		return "authentication failed";
	}
	if (strcmp(code, "forbidden") == 0) {
		return "forbidden";
	}
	if (strcmp(code, "invalid_query") == 0) {
		return "invalid query";
	}
	if (strcmp(code, "token_expired") == 0) {
		return "token expired";
	}
	if (strcmp(code, "unavailable") == 0) {
		return "service unavailable";
	}
	return code;
}

static void
sub_finish(lsc_client *c, sub_state *st, int status)
{
	if (!st->finished) {
		st->finished = true;
		st->status = status;
	}
	lsc_client_stop(c);
}

static void
sub_on_connect(lsc_client *c, const char *connection_id,
               const char *expires_at, bool reconnected, void *user)
{
	sub_state *st = user;

	st->connected = true;
	st->err_code[0] = '\0';
	ls_info(SUB_LOG, "%s %s (token expires %s)",
	        reconnected ? "reconnected to" : "connected to", st->url,
	        expires_at ? expires_at : "?");
}

static void
sub_on_subscribe(lsc_client *c, int64_t sub, const char *subscription_id,
                 const char *code, const char *message, void *user)
{
	sub_state *st = user;

	if (subscription_id != NULL) {
		ls_info(SUB_LOG, "subscribed to %s (%s)", st->target,
		        subscription_id);
		return;
	}
	fprintf(stderr, "lightstream sub: %s: %s%s%s\n", sub_describe(code),
	        st->target, *message ? ": " : "", message);
	sub_finish(c, st, lsc_cli_exit_for(code));
}

static void
sub_on_message(lsc_client *c, const lsc_message *m, void *user)
{
	sub_state *st = user;

	if (st->finished) {
		return;
	}
	if (lsc_cli_print(stdout, m, st->out) != 0) {
		fprintf(stderr, "lightstream sub: cannot write to stdout\n");
		sub_finish(c, st, CMD_EXIT_FAILURE);
		return;
	}
	st->received++;
	if (st->count > 0 && st->received >= st->count) {
		sub_finish(c, st, CMD_EXIT_OK);
	}
}

static void
sub_on_error(lsc_client *c, const char *code, const char *message, void *user)
{
	sub_state *st = user;

	snprintf(st->err_code, sizeof(st->err_code), "%s", code);
	snprintf(st->err_msg, sizeof(st->err_msg), "%s", message);
}

static void
sub_on_close(lsc_client *c, int code, const char *reason, bool reconnecting,
             void *user)
{
	sub_state *st = user;

	if (reconnecting) {
		ls_warn(SUB_LOG, "connection lost (%d%s%s), reconnecting",
		        code, *reason ? " " : "", reason);
		return;
	}
	if (st->finished) {
		return;
	}
	if (st->err_code[0] != '\0') {
		const char *what = sub_describe(st->err_code);

		if (strcmp(what, st->err_msg) == 0 || st->err_msg[0] == '\0') {
			fprintf(stderr, "lightstream sub: %s (close %d)\n",
			        what, code);
		} else {
			fprintf(stderr, "lightstream sub: %s: %s (close %d)\n",
			        what, st->err_msg, code);
		}
		sub_finish(c, st, lsc_cli_exit_for(st->err_code));
	} else if (code == 4001) {
		fprintf(stderr, "lightstream sub: authentication failed "
		                "(close 4001)\n");
		sub_finish(c, st, CMD_EXIT_FAILURE);
	} else if (!st->connected) {
		fprintf(stderr, "lightstream sub: cannot connect to %s: %s\n",
		        st->url, *reason ? reason : "connection failed");
		sub_finish(c, st, CMD_EXIT_FAILURE);
	} else {
		fprintf(stderr,
		        "lightstream sub: connection closed (%d%s%s)\n", code,
		        *reason ? " " : "", reason);
		sub_finish(c, st, CMD_EXIT_FAILURE);
	}
}

static int
sub_usage_error(const char *fmt, const char *arg)
{
	fprintf(stderr, "lightstream sub: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\nRun `lightstream sub --help` for the options.\n");
	return CMD_EXIT_USAGE;
}

int
cmd_sub(int argc, char **argv)
{
	static const struct option own[] = {
		{ "url", required_argument, NULL, 'u' },
		{ "app", required_argument, NULL, 'a' },
		{ "token", required_argument, NULL, 't' },
		{ "secret", required_argument, NULL, 's' },
		{ "query", required_argument, NULL, 'q' },
		{ "count", required_argument, NULL, 'n' },
		{ "timeout", required_argument, NULL, 'T' },
		{ "output", required_argument, NULL, 'o' },
		{ "ca-file", required_argument, NULL, SUB_OPT_CA_FILE },
		{ "insecure", no_argument, NULL, 'k' },
		{ "no-reconnect", no_argument, NULL, SUB_OPT_NO_RECONNECT },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct option opts[48];
	sub_state st;
	ls_settings settings;
	ls_error err;
	lsc_options o;
	lsc_client *c = NULL;
	const char *query = NULL, *token = NULL, *secret = NULL;
	char *query_owned = NULL, *token_owned = NULL, *secret_owned = NULL;
	char owner[65], stream[129];
	long timeout_ms = 0;
	int64_t deadline = 0;
	int opt, rc = CMD_EXIT_USAGE;

	memset(&st, 0, sizeof(st));
	memset(&o, 0, sizeof(o));
	st.url = SUB_DEFAULT_URL;
	o.reconnect = true;
	if (ls_settings_init(&settings) != 0) {
		fprintf(stderr, "lightstream sub: out of memory\n");
		return CMD_EXIT_FAILURE;
	}
	lsc_cli_options(own, opts, 48);
	optind = 1;
	while ((opt = getopt_long(argc, argv, "u:a:t:s:q:n:T:o:kh", opts,
	                          NULL)) != -1) {
		switch (opt) {
		case 'u':
			st.url = optarg;
			break;
		case 'a':
			o.app_key = optarg;
			break;
		case 't':
			token = lsc_cli_arg_text(optarg, &token_owned);
			if (token == NULL) {
				rc = sub_usage_error("cannot read token %s",
				                     optarg);
				goto out;
			}
			break;
		case 's':
			secret = lsc_cli_arg_text(optarg, &secret_owned);
			if (secret == NULL) {
				rc = sub_usage_error("cannot read secret %s",
				                     optarg);
				goto out;
			}
			break;
		case 'q':
			query = lsc_cli_arg_text(optarg, &query_owned);
			if (query == NULL) {
				rc = sub_usage_error("cannot read query %s",
				                     optarg);
				goto out;
			}
			break;
		case 'n':
			if (lsc_cli_long(optarg, 1000000000L, &st.count) !=
			            0 ||
			    st.count == 0) {
				rc = sub_usage_error(
				        "--count must be a positive "
				        "integer, not '%s'",
				        optarg);
				goto out;
			}
			break;
		case 'T':
			if (lsc_cli_seconds(optarg, &timeout_ms) != 0) {
				rc = sub_usage_error("--timeout must be a "
				                     "positive number of "
				                     "seconds, not '%s'",
				                     optarg);
				goto out;
			}
			break;
		case 'o':
			if (lsc_cli_output_parse(optarg, &st.out) != 0) {
				rc = sub_usage_error(
				        "--output must be json, "
				        "plain or message, not '%s'",
				        optarg);
				goto out;
			}
			break;
		case SUB_OPT_CA_FILE:
			o.ca_file = optarg;
			break;
		case 'k':
			o.insecure = true;
			break;
		case SUB_OPT_NO_RECONNECT:
			o.reconnect = false;
			break;
		case 'h':
			sub_usage(stdout);
			rc = CMD_EXIT_OK;
			goto out;
		default: {
			int r = opt >= 0x1000
			                ? ls_settings_option(&settings, opt,
			                                     optarg, &err)
			                : 0;
			if (r == 1) {
				break;
			}
			if (r < 0) {
				fprintf(stderr, "lightstream sub: %s\n",
				        err.text);
			} else {
				fprintf(stderr, "Run `lightstream sub --help` "
				                "for the options.\n");
			}
			goto out;
		}
		}
	}
	if (ls_settings_apply_logging(&settings, &err) != 0) {
		fprintf(stderr, "lightstream sub: %s\n", err.text);
		goto out;
	}
	if (optind + 1 != argc) {
		rc = sub_usage_error(
		        "%s", optind >= argc ? "OWNER/STREAM is required"
		                             : "exactly one OWNER/STREAM "
		                               "is expected");
		goto out;
	}
	if (lsc_cli_target(argv[optind], owner, stream) != 0) {
		rc = sub_usage_error("'%s' is not OWNER/STREAM (owner "
		                     "[A-Za-z0-9_-], stream [A-Za-z0-9_.-])",
		                     argv[optind]);
		goto out;
	}
	snprintf(st.target, sizeof(st.target), "%s/%s", owner, stream);
	if (o.app_key == NULL || token == NULL) {
		rc = sub_usage_error("%s", "--app and --token are required");
		goto out;
	}
	o.url = st.url;
	o.token = token;
	o.secret_key = secret;
	o.cb.on_connect = sub_on_connect;
	o.cb.on_subscribe = sub_on_subscribe;
	o.cb.on_message = sub_on_message;
	o.cb.on_error = sub_on_error;
	o.cb.on_close = sub_on_close;
	o.user = &st;
	c = lsc_client_new(&o, &err);
	if (c == NULL) {
		rc = sub_usage_error("%s", err.text);
		goto out;
	}
	if (lsc_client_subscribe(c, owner, stream, query, &err) < 0) {
		fprintf(stderr, "lightstream sub: invalid query: %s\n",
		        err.text);
		rc = err.code == -EINVAL ? CMD_EXIT_USAGE : CMD_EXIT_FAILURE;
		goto out;
	}

	signal(SIGINT, sub_on_signal);
	signal(SIGTERM, sub_on_signal);
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (timeout_ms > 0) {
		deadline = ls_now_ms() + timeout_ms;
	}
	if (lsc_client_connect(c) != 0) {
		fprintf(stderr, "lightstream sub: cannot connect to %s\n",
		        st.url);
		rc = CMD_EXIT_FAILURE;
		goto out;
	}
	while (!st.finished && !sub_signalled) {
		int slice = 200;

		if (deadline != 0) {
			int64_t left = deadline - ls_now_ms();

			if (left <= 0) {
				break;
			}
			if (left < slice) {
				slice = (int)left;
			}
		}
		if (lsc_client_run(c, slice) < 0) {
			fprintf(stderr,
			        "lightstream sub: event loop failed\n");
			st.finished = true;
			st.status = CMD_EXIT_FAILURE;
		}
	}
	if (st.finished) {
		rc = st.status;
	} else if (sub_signalled || st.count == 0) {
		rc = CMD_EXIT_OK;
	} else {
		fprintf(stderr,
		        "lightstream sub: timed out after %ld of %ld "
		        "messages\n",
		        st.received, st.count);
		rc = CMD_EXIT_FAILURE;
	}

out:
	lsc_client_destroy(&c);
	free(query_owned);
	free(token_owned);
	free(secret_owned);
	ls_settings_clear(&settings);
	return rc;
}
