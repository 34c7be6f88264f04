/*
 * `lightstream sub OWNER/STREAM`: subscribe over WebSocket (docs/protocol.md)
 * and print one line per message on stdout; status and errors on stderr.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "cmd_util.h"
#include "ls_log.h"
#include "ls_settings.h"
#include "ls_time.h"
#include "lsc.h"
#include "lsc_cli.h"
#include "sub_sse.h"

#define SUB_LOG         "sub"
#define SUB_DEFAULT_URL "ws://127.0.0.1:8080"

enum {
	SUB_OPT_NO_RECONNECT = 0x200, /* above LSC_CLI_OPT_CA_FILE */
	SUB_OPT_SINCE,
	SUB_OPT_EPOCH,
	SUB_OPT_SSE,
};

typedef struct sub_state {
	lsc_cli_output out;
	long count; /* 0: unlimited */
	long received;
	lsc_cli_session ses; /* target, connection, exit status */
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
	        "  -q, --query Q       a query (JSON text or @FILE), see "
	        "docs/query.md\n"
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
	        "                      reconnecting with backoff (which "
	        "resumes where\n"
	        "                      it stopped: missed messages follow "
	        "when the\n"
	        "                      stream's history still holds them)\n"
	        "      --since N       start after offset N of the stream's "
	        "history\n"
	        "      --epoch E       the epoch N belongs to (as the log "
	        "said, or\n"
	        "                      `lightstream history` prints); "
	        "without it, the\n"
	        "                      stream's current epoch\n"
	        "      --sse           subscribe over Server-Sent Events "
	        "(plain HTTP)\n"
	        "                      instead of WebSocket; the URL may "
	        "be http(s)://\n"
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
sub_on_connect(lsc_client *c, const char *connection_id,
               const char *expires_at, bool reconnected, void *user)
{
	sub_state *st = user;

	st->ses.connected = true;
	st->ses.err_code[0] = '\0';
	ls_info(SUB_LOG, "%s %s (token expires %s)",
	        reconnected ? "reconnected to" : "connected to", st->ses.url,
	        expires_at ? expires_at : "?");
}

static void
sub_on_subscribe(lsc_client *c, int64_t sub, const char *subscription_id,
                 const char *code, const char *message, void *user)
{
	sub_state *st = user;

	if (subscription_id != NULL) {
		lsc_sub_history h;
		if (lsc_client_sub_history(c, sub, &h) == 0 && h.known &&
		    h.recovered == 0) {
			ls_warn(SUB_LOG,
			        "subscribed to %s (%s), epoch %s offset %llu: "
			        "messages published meanwhile could not be "
			        "recovered",
			        st->ses.target, subscription_id, h.epoch,
			        (unsigned long long)h.offset);
		} else if (h.known) {
			ls_info(SUB_LOG,
			        "subscribed to %s (%s), epoch %s offset "
			        "%llu%s",
			        st->ses.target, subscription_id, h.epoch,
			        (unsigned long long)h.offset,
			        h.recovered == 1 ? ", recovered" : "");
		} else {
			ls_info(SUB_LOG, "subscribed to %s (%s)",
			        st->ses.target, subscription_id);
		}
		return;
	}
	lsc_cli_session_refused(c, &st->ses, code, message);
}

/* The server ended the subscription (read permission withdrawn, query
 * over its cost budget): nothing more will come, so stop and say why. */
static void
sub_on_ended(lsc_client *c, int64_t sub, const char *code, const char *message,
             void *user)
{
	sub_state *st = user;

	lsc_cli_session_refused(c, &st->ses, code, message);
}

static void
sub_on_message(lsc_client *c, const lsc_message *m, void *user)
{
	sub_state *st = user;

	if (st->ses.finished) {
		return;
	}
	if (lsc_cli_print(stdout, m, st->out) != 0) {
		fprintf(stderr, "lightstream sub: cannot write to stdout\n");
		lsc_cli_finish(c, &st->ses, CMD_EXIT_FAILURE);
		return;
	}
	st->received++;
	if (st->count > 0 && st->received >= st->count) {
		lsc_cli_finish(c, &st->ses, CMD_EXIT_OK);
	}
}

static void
sub_on_error(lsc_client *c, const char *code, const char *message, void *user)
{
	sub_state *st = user;

	lsc_cli_session_error(&st->ses, code, message);
}

static void
sub_on_close(lsc_client *c, int code, const char *reason, bool reconnecting,
             void *user)
{
	sub_state *st = user;

	if (reconnecting) {
		if (st->ses.err_code[0] != '\0') {
			ls_warn(SUB_LOG, "%s: %s (close %d), reconnecting",
			        lsc_cli_describe(st->ses.err_code),
			        st->ses.err_msg, code);
			/* Retried: not the reason of a later failure. */
			st->ses.err_code[0] = '\0';
			st->ses.err_msg[0] = '\0';
		} else {
			ls_warn(SUB_LOG,
			        "connection lost (%d%s%s), reconnecting", code,
			        *reason ? " " : "", reason);
		}
		return;
	}
	lsc_cli_session_closed(c, &st->ses, code, reason);
}

int
cmd_sub(int argc, char **argv)
{
	static const struct option own[] = {
		LSC_CLI_CONN_OPTIONS,
		{ "query", required_argument, NULL, 'q' },
		{ "count", required_argument, NULL, 'n' },
		{ "timeout", required_argument, NULL, 'T' },
		{ "output", required_argument, NULL, 'o' },
		{ "no-reconnect", no_argument, NULL, SUB_OPT_NO_RECONNECT },
		{ "since", required_argument, NULL, SUB_OPT_SINCE },
		{ "epoch", required_argument, NULL, SUB_OPT_EPOCH },
		{ "sse", no_argument, NULL, SUB_OPT_SSE },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct option opts[48];
	sub_state st;
	ls_settings settings;
	lsc_error err;
	lsc_cli_conn conn;
	lsc_options *o = &conn.o;
	lsc_client *c = NULL;
	const char *query = NULL;
	char *query_owned = NULL;
	char owner[65], stream[129];
	const char *epoch = NULL;
	char epoch_buf[LSC_EPOCH_MAX + 1];
	unsigned long long since = 0;
	bool have_since = false;
	long timeout_ms = 0;
	int64_t deadline = 0;
	bool sse = false;
	int opt, rc = CMD_EXIT_USAGE;

	memset(&st, 0, sizeof(st));
	st.ses.cmd = "sub";
	lsc_cli_conn_init(&conn, SUB_DEFAULT_URL);
	o->reconnect = true;
	if (cmd_settings_init("sub", &settings) != 0) {
		return CMD_EXIT_FAILURE;
	}
	lsc_cli_options(own, opts, 48);
	optind = 1;
	while ((opt = getopt_long(argc, argv, LSC_CLI_CONN_SHORT "q:n:T:o:h",
	                          opts, NULL)) != -1) {
		switch (opt) {
		case 'q':
			if (lsc_cli_text_option("sub", "query", optarg, &query,
			                        &query_owned) != 0) {
				goto out;
			}
			break;
		case 'n':
			if (lsc_cli_long(optarg, 1000000000L, &st.count) !=
			            0 ||
			    st.count == 0) {
				rc = lsc_cli_usage_error(
				        "sub",
				        "--count must be a positive "
				        "integer, not '%s'",
				        optarg);
				goto out;
			}
			break;
		case 'T':
			if (lsc_cli_timeout_option("sub", optarg, -1,
			                           &timeout_ms) != 0) {
				goto out;
			}
			break;
		case 'o':
			if (lsc_cli_output_parse(optarg, &st.out) != 0) {
				rc = lsc_cli_usage_error(
				        "sub",
				        "--output must be json, "
				        "plain or message, not '%s'",
				        optarg);
				goto out;
			}
			break;
		case SUB_OPT_NO_RECONNECT:
			o->reconnect = false;
			break;
		case SUB_OPT_SINCE: {
			char *end;
			errno = 0;
			since = strtoull(optarg, &end, 10);
			if (optarg[0] < '0' || optarg[0] > '9' ||
			    *end != '\0' || errno != 0) {
				rc = lsc_cli_usage_error("sub",
				                         "--since must be an "
				                         "offset (an integer "
				                         ">= 0), not '%s'",
				                         optarg);
				goto out;
			}
			have_since = true;
			break;
		}
		case SUB_OPT_EPOCH:
			epoch = optarg;
			break;
		case SUB_OPT_SSE:
			sse = true;
			break;
		case 'h':
			sub_usage(stdout);
			rc = CMD_EXIT_OK;
			goto out;
		default:
			if (lsc_cli_conn_option("sub", &conn, &settings, opt,
			                        optarg) != 1) {
				goto out;
			}
			break;
		}
	}
	if (cmd_apply_logging("sub", &settings) != 0) {
		goto out;
	}
	if (optind + 1 != argc) {
		rc = lsc_cli_usage_error("sub", "%s",
		                         optind >= argc
		                                 ? "OWNER/STREAM is required"
		                                 : "exactly one OWNER/STREAM "
		                                   "is expected");
		goto out;
	}
	if (lsc_cli_session_target(&st.ses, argv[optind], owner, stream) !=
	    0) {
		goto out;
	}
	if (lsc_cli_conn_check("sub", &conn) != 0) {
		goto out;
	}
	st.ses.url = o->url;
	o->cb.on_connect = sub_on_connect;
	o->cb.on_subscribe = sub_on_subscribe;
	o->cb.on_subscription_ended = sub_on_ended;
	o->cb.on_message = sub_on_message;
	o->cb.on_error = sub_on_error;
	o->cb.on_close = sub_on_close;
	o->user = &st;
	c = lsc_client_new(o, &err);
	if (c == NULL) {
		rc = lsc_cli_usage_error("sub", "%s", err.text);
		goto out;
	}
	if (epoch != NULL && !have_since) {
		rc = lsc_cli_usage_error("sub", "%s", "--epoch needs --since");
		goto out;
	}
	if (have_since && epoch == NULL) {
		/* The stream's current epoch, from the history endpoint of the
		 * same gateway (ws:// and http:// name the same port). */
		lsc_history_request hr;
		json_t *data = NULL;
		char *text = NULL;
		memset(&hr, 0, sizeof(hr));
		hr.url = o->url;
		hr.owner = owner;
		hr.stream = stream;
		hr.token = o->token;
		hr.app_key = o->app_key;
		hr.since = (uint64_t)since;
		hr.limit = 1;
		hr.ca_file = o->ca_file;
		hr.insecure = o->insecure;
		if (lsc_history_request_run(&hr, &text, &err) != 0) {
			fprintf(stderr,
			        "lightstream sub: cannot read the stream's "
			        "epoch: %s\n",
			        err.text);
			rc = CMD_EXIT_FAILURE;
			goto out;
		}
		data = json_loads(text, 0, NULL);
		free(text);
		snprintf(epoch_buf, sizeof(epoch_buf), "%s",
		         json_string_value(json_object_get(data, "epoch"))
		                 ? json_string_value(
		                           json_object_get(data, "epoch"))
		                 : "");
		json_decref(data);
		epoch = epoch_buf;
	}
	if (sse) {
		sub_sse_options so = {
			.url = o->url,
			.app_key = o->app_key,
			.token = o->token,
			.query = query,
			.ca_file = o->ca_file,
			.insecure = o->insecure,
			.owner = owner,
			.stream = stream,
			.output = st.out,
			.count = st.count,
			.deadline_ms =
			        timeout_ms > 0 ? ls_now_ms() + timeout_ms : 0,
			.reconnect = o->reconnect,
			.since_epoch = have_since ? epoch : NULL,
			.since_offset = (uint64_t)since,
		};
		lsc_cli_catch_stop_signals();
		rc = sub_sse_run(&so);
		goto out;
	}
	if (lsc_client_subscribe_since(c, owner, stream, query,
	                               have_since ? epoch : NULL,
	                               (uint64_t)since, &err) < 0) {
		fprintf(stderr, "lightstream sub: invalid query: %s\n",
		        err.text);
		rc = err.code == -EINVAL ? CMD_EXIT_USAGE : CMD_EXIT_FAILURE;
		goto out;
	}

	lsc_cli_catch_stop_signals();
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (timeout_ms > 0) {
		deadline = ls_now_ms() + timeout_ms;
	}
	if (lsc_client_connect(c) != 0) {
		fprintf(stderr, "lightstream sub: cannot connect to %s\n",
		        st.ses.url);
		rc = CMD_EXIT_FAILURE;
		goto out;
	}
	while (!st.ses.finished && !lsc_cli_stop_requested()) {
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
			st.ses.finished = true;
			st.ses.status = CMD_EXIT_FAILURE;
		}
	}
	if (st.ses.finished) {
		rc = st.ses.status;
	} else if (lsc_cli_stop_requested() || st.count == 0) {
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
	lsc_cli_conn_clear(&conn);
	ls_settings_clear(&settings);
	return rc;
}
