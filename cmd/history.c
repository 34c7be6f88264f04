/*
 * `lightstream history OWNER/STREAM`: read a stream's history from a
 * gateway's HTTP endpoint (docs/protocol.md, "History and recovery") and
 * print it.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "cmd_util.h"
#include "ls_proto.h"
#include "ls_settings.h"
#include "lsc.h"
#include "lsc_cli.h"

#define HISTORY_DEFAULT_URL "http://127.0.0.1:8080"

enum {
	HISTORY_OPT_SINCE = 0x100,
	HISTORY_OPT_LIMIT,
	HISTORY_OPT_CA_FILE,
};

static void
history_usage(FILE *out)
{
	fprintf(out,
	        "Usage: lightstream history [OPTIONS] OWNER/STREAM\n"
	        "\n"
	        "Print the messages a stream's history still holds, oldest "
	        "first: one line\n"
	        "{\"offset\": N, \"data\": ...} per message, then, on "
	        "stderr, the epoch and\n"
	        "the latest offset.\n"
	        "\n"
	        "Options:\n"
	        "  -u, --url URL           gateway, http://HOST:PORT or "
	        "https://... (default\n"
	        "                          " HISTORY_DEFAULT_URL ")\n"
	        "  -a, --app APPKEY        the token's account (default: "
	        "OWNER)\n"
	        "  -t, --token TOKEN       a token granting read, or @FILE "
	        "(required;\n"
	        "                          not a web token)\n"
	        "      --since N           messages after offset N "
	        "(default 0: all)\n"
	        "      --limit N           at most N messages, 1-1000 "
	        "(default 100)\n"
	        "  -o, --output FMT        lines (default), data (the "
	        "message data only, one\n"
	        "                          per line) or json (the whole "
	        "answer: epoch, offset,\n"
	        "                          messages)\n"
	        "  -T, --timeout S         give up after S seconds "
	        "(default 10)\n"
	        "      --ca-file FILE      CA certificates (PEM) for "
	        "https://\n"
	        "  -k, --insecure          accept any server certificate "
	        "(development)\n"
	        "      --log-level L       debug, info (default), warn, "
	        "error, off\n"
	        "  -h, --help              this help\n"
	        "\n"
	        "Exit status: 0 printed; 1 refused (token, permission), "
	        "server unreachable\n"
	        "or failing; 2 bad arguments.\n");
}

static int
history_print(json_t *data, const char *mode)
{
	json_t *msgs = json_object_get(data, "messages"), *m;
	size_t i;

	if (strcmp(mode, "json") == 0) {
		char *text = json_dumps(data, JSON_COMPACT);
		if (text == NULL) {
			return CMD_EXIT_FAILURE;
		}
		printf("%s\n", text);
		free(text);
		return CMD_EXIT_OK;
	}
	json_array_foreach(msgs, i, m)
	{
		json_t *what = strcmp(mode, "data") == 0
		                       ? json_object_get(m, "data")
		                       : m;
		char *text = json_dumps(what, JSON_COMPACT | JSON_ENCODE_ANY);
		if (text == NULL) {
			return CMD_EXIT_FAILURE;
		}
		printf("%s\n", text);
		free(text);
	}
	fprintf(stderr, "epoch %s, latest offset %" JSON_INTEGER_FORMAT "\n",
	        json_string_value(json_object_get(data, "epoch")),
	        json_integer_value(json_object_get(data, "offset")));
	return CMD_EXIT_OK;
}

int
cmd_history(int argc, char **argv)
{
	static const struct option own[] = {
		{ "url", required_argument, NULL, 'u' },
		{ "app", required_argument, NULL, 'a' },
		{ "token", required_argument, NULL, 't' },
		{ "since", required_argument, NULL, HISTORY_OPT_SINCE },
		{ "limit", required_argument, NULL, HISTORY_OPT_LIMIT },
		{ "output", required_argument, NULL, 'o' },
		{ "timeout", required_argument, NULL, 'T' },
		{ "ca-file", required_argument, NULL, HISTORY_OPT_CA_FILE },
		{ "insecure", no_argument, NULL, 'k' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	char owner[LS_APPKEY_MAX + 1], stream[LS_STREAM_MAX + 1];
	struct option opts[48];
	lsc_history_request req;
	ls_settings settings;
	lsc_error err;
	char *text = NULL;
	json_t *data = NULL;
	char *token_owned = NULL;
	const char *mode = "lines";
	long timeout_ms = 10000, n;
	int opt, rc = CMD_EXIT_USAGE;

	memset(&req, 0, sizeof(req));
	req.url = HISTORY_DEFAULT_URL;
	if (cmd_settings_init("history", &settings) != 0) {
		return CMD_EXIT_FAILURE;
	}
	lsc_cli_options(own, opts, 48);
	optind = 1;
	while ((opt = getopt_long(argc, argv, "u:a:t:o:T:kh", opts, NULL)) !=
	       -1) {
		switch (opt) {
		case 'u':
			req.url = optarg;
			break;
		case 'a':
			req.app_key = optarg;
			break;
		case 't':
			if (lsc_cli_text_option("history", "the token from",
			                        optarg, &req.token,
			                        &token_owned) != 0) {
				goto out;
			}
			break;
		case HISTORY_OPT_SINCE: {
			char *end;
			unsigned long long v;
			errno = 0;
			v = strtoull(optarg, &end, 10);
			if (optarg[0] < '0' || optarg[0] > '9' ||
			    *end != '\0' || errno != 0) {
				rc = lsc_cli_usage_error(
				        "history",
				        "--since must be an offset (an "
				        "integer >= 0), not '%s'",
				        optarg);
				goto out;
			}
			req.since = (uint64_t)v;
			break;
		}
		case HISTORY_OPT_LIMIT:
			if (lsc_cli_long(optarg, LS_HISTORY_LIMIT_MAX, &n) !=
			            0 ||
			    n < 1) {
				rc = lsc_cli_usage_error(
				        "history",
				        "--limit must be 1-%d, not '%s'",
				        LS_HISTORY_LIMIT_MAX, optarg);
				goto out;
			}
			req.limit = (unsigned)n;
			break;
		case 'o':
			if (strcmp(optarg, "lines") != 0 &&
			    strcmp(optarg, "data") != 0 &&
			    strcmp(optarg, "json") != 0) {
				rc = lsc_cli_usage_error(
				        "history",
				        "--output must be lines, data or "
				        "json, not '%s'",
				        optarg);
				goto out;
			}
			mode = optarg;
			break;
		case 'T':
			if (lsc_cli_timeout_option("history", optarg, 3600000,
			                           &timeout_ms) != 0) {
				goto out;
			}
			break;
		case HISTORY_OPT_CA_FILE:
			req.ca_file = optarg;
			break;
		case 'k':
			req.insecure = true;
			break;
		case 'h':
			history_usage(stdout);
			rc = CMD_EXIT_OK;
			goto out;
		default:
			if (lsc_cli_settings_option("history", &settings, opt,
			                            optarg) != 1) {
				goto out;
			}
			break;
		}
	}
	if (cmd_apply_logging("history", &settings) != 0) {
		goto out;
	}
	if (optind != argc - 1) {
		rc = lsc_cli_usage_error("history", "%s",
		                         "expected one OWNER/STREAM");
		goto out;
	}
	if (lsc_cli_target(argv[optind], owner, stream) != 0) {
		rc = lsc_cli_usage_error("history", "'%s' is not OWNER/STREAM",
		                         argv[optind]);
		goto out;
	}
	if (req.token == NULL) {
		rc = lsc_cli_usage_error("history", "%s",
		                         "--token is required");
		goto out;
	}
	req.owner = owner;
	req.stream = stream;
	req.timeout_ms = (int)timeout_ms;
	rc = lsc_history_request_run(&req, &text, &err);
	if (rc != 0) {
		fprintf(stderr, "lightstream history: %s\n", err.text);
		rc = rc == -EINVAL ? CMD_EXIT_USAGE : CMD_EXIT_FAILURE;
		goto out;
	}
	data = json_loads(text, 0, NULL);
	free(text);
	if (data == NULL) {
		fprintf(stderr, "lightstream history: out of memory\n");
		rc = CMD_EXIT_FAILURE;
		goto out;
	}
	rc = history_print(data, mode);
	if (fflush(stdout) != 0) {
		rc = CMD_EXIT_FAILURE;
	}

out:
	json_decref(data);
	if (token_owned != NULL) {
		memset(token_owned, 0, strlen(token_owned));
	}
	free(token_owned);
	ls_settings_clear(&settings);
	return rc;
}
