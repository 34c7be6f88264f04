/*
 * `lightstream call SERVICE OPERATION [ARG...]`: one bus request from the
 * command line (docs/configuration.md). Arguments are JSON values; a word that
 * is not valid JSON is taken as a string. mmi.* services take OPERATION as
 * their raw body (`lightstream call mmi.service auth`).
 */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "bus_client.h"
#include "cmd.h"
#include "cmd_bus.h"
#include "cmd_util.h"
#include "ls_json.h"
#include "ls_settings.h"

enum {
	OPT_HELP = 0x2000,
	OPT_ALL,
};

static void
call_usage(FILE *out)
{
	fprintf(out,
	        "Usage: lightstream call [OPTIONS] SERVICE OPERATION "
	        "[ARG...]\n"
	        "       lightstream call [OPTIONS] mmi.service NAME | "
	        "mmi.stats\n"
	        "\n"
	        "Call an operation of a service-bus service and print its "
	        "result.\n"
	        "Each ARG is a JSON value; a word that is not valid JSON is "
	        "a string\n"
	        "(write '\"12\"' for the string 12). Put `--` before "
	        "arguments that\n"
	        "start with '-'. Exit status: 0 success, 1 error, timeout or "
	        "no such\n"
	        "service (message on stderr), 2 usage.\n"
	        "\n"
	        "Options:\n"
	        "  -o, --output FORMAT      json (default) or plain (strings "
	        "unquoted)\n"
	        "  -t, --timeout MS         deadline (5000; bus.timeout_ms)\n"
	        "  -f, --args-file FILE     the arguments as one JSON array "
	        "from FILE\n"
	        "                           ('-': standard input), instead "
	        "of ARGs\n"
	        "      --all                to every worker of the service; "
	        "prints one\n"
	        "                           {\"worker\",\"status\",\"result\"|"
	        "\"error\"} per worker\n"
	        "                           (exit 1 when any of them failed)\n"
	        "With --data DIR (and no --broker-frontend): the bus of a "
	        "running\n"
	        "`lightstream serve --data DIR`.\n%s"
	        "  -h, --help               this help\n",
	        ls_settings_help_for(LS_OPTS_DATA | LS_OPTS_FRONTEND |
	                             LS_OPTS_BUS_PEER));
}

/* The request body: {"o": op, "a": [args]} (new string, free()). */
static char *
call_body(const char *op, int argc, char **argv)
{
	json_t *args = json_array(), *req;
	char *body;

	for (int i = 0; i < argc; i++) {
		json_t *v = json_loads(argv[i], JSON_DECODE_ANY, NULL);
		if (v == NULL) {
			v = json_string(argv[i]);
		}
		if (v == NULL) {
			/* Not valid UTF-8 either. */
			json_decref(args);
			return NULL;
		}
		json_array_append_new(args, v);
	}
	req = json_pack("{s:s, s:o}", "o", op, "a", args);
	body = req ? json_dumps(req, JSON_COMPACT) : NULL;
	json_decref(req);
	return body;
}

/*
 * The request body with the arguments read from path ("-": stdin), a JSON
 * array. Returns a new string, or NULL with a message printed.
 */
static char *
call_body_file(const char *op, const char *path)
{
	json_error_t jerr;
	json_t *args, *req;
	char *body;

	args = strcmp(path, "-") == 0 ? json_loadf(stdin, 0, &jerr)
	                              : json_load_file(path, 0, &jerr);
	if (args == NULL) {
		fprintf(stderr, "lightstream call: %s:%d:%d: %s\n",
		        strcmp(path, "-") == 0 ? "stdin" : path, jerr.line,
		        jerr.column, jerr.text);
		return NULL;
	}
	if (!json_is_array(args)) {
		fprintf(stderr,
		        "lightstream call: %s: expected a JSON array "
		        "of arguments\n",
		        path);
		json_decref(args);
		return NULL;
	}
	req = json_pack("{s:s, s:o}", "o", op, "a", args);
	body = req ? json_dumps(req, JSON_COMPACT) : NULL;
	json_decref(req);
	if (body == NULL) {
		fprintf(stderr, "lightstream call: out of memory\n");
	}
	return body;
}

static void
call_print(const char *reply, size_t len, bool plain)
{
	if (plain) {
		json_t *v = json_loadb(reply, len, JSON_DECODE_ANY, NULL);
		if (json_is_string(v)) {
			fwrite(json_string_value(v), 1, json_string_length(v),
			       stdout);
			fputc('\n', stdout);
			json_decref(v);
			return;
		}
		json_decref(v);
	}
	fwrite(reply, 1, len, stdout);
	fputc('\n', stdout);
}

/*
 * The answer of a broadcast: one line per worker, as the broker sent it.
 * Exit status 1 when any worker did not answer with success.
 */
static int
call_print_all(const char *reply, size_t len)
{
	json_t *all = json_loadb(reply, len, 0, NULL), *one;
	size_t i;
	int status = CMD_EXIT_OK;

	if (!json_is_array(all)) {
		fprintf(stderr,
		        "lightstream call: malformed broadcast answer\n");
		json_decref(all);
		return CMD_EXIT_FAILURE;
	}
	json_array_foreach(all, i, one)
	{
		char *text = ls_json_dumps(one, NULL);
		const char *st =
		        json_string_value(json_object_get(one, "status"));

		if (text != NULL) {
			printf("%s\n", text);
		}
		free(text);
		if (st == NULL || strcmp(st, "ok") != 0) {
			status = CMD_EXIT_FAILURE;
		}
	}
	json_decref(all);
	return status;
}

int
cmd_call(int argc, char **argv)
{
	static const struct option extra[] = {
		{ "output", required_argument, NULL, 'o' },
		{ "timeout", required_argument, NULL, 't' },
		{ "args-file", required_argument, NULL, 'f' },
		{ "all", no_argument, NULL, OPT_ALL },
		{ "help", no_argument, NULL, OPT_HELP },
		{ NULL, 0, NULL, 0 },
	};
	struct option opts[32];
	ls_settings s;
	bool plain = false, all = false;
	long timeout = -1;
	const char *service, *op;
	char *body = NULL, *reply = NULL;
	size_t body_len = 0, reply_len = 0;
	bus_status st = BUS_ERROR;
	const char *args_file = NULL;
	cmd_bus bus = { 0 };
	void *ctx = NULL;
	int status = CMD_EXIT_USAGE;
	int c, rc;

	if (cmd_settings_init("call", &s) != 0) {
		return CMD_EXIT_FAILURE;
	}
	ls_settings_options_merge_for(LS_OPTS_DATA | LS_OPTS_FRONTEND |
	                                      LS_OPTS_BUS_PEER,
	                              extra, opts, 32);
	optind = 1;
	while ((c = getopt_long(argc, argv, "hf:o:t:", opts, NULL)) != -1) {
		rc = cmd_settings_option("call", &s, c, optarg, NULL);
		if (rc == 1) {
			continue;
		}
		if (rc < 0) {
			goto out;
		}
		switch (c) {
		case 'o':
			if (strcmp(optarg, "plain") == 0) {
				plain = true;
			} else if (strcmp(optarg, "json") == 0) {
				plain = false;
			} else {
				fprintf(stderr,
				        "lightstream call: --output: expected "
				        "json or plain, not '%s'\n",
				        optarg);
				goto out;
			}
			break;
		case 't':
			if (cmd_option_long("call", "timeout", optarg, 1,
			                    3600000, "ms", &timeout) != 0) {
				goto out;
			}
			break;
		case 'f':
			args_file = optarg;
			break;
		case OPT_ALL:
			all = true;
			break;
		case 'h':
		case OPT_HELP:
			call_usage(stdout);
			status = CMD_EXIT_OK;
			goto out;
		default:
			call_usage(stderr);
			goto out;
		}
	}
	if (argc - optind < 1) {
		fprintf(stderr, "lightstream call: missing SERVICE (see "
		                "--help)\n");
		goto out;
	}
	service = argv[optind];
	op = argc - optind >= 2 ? argv[optind + 1] : NULL;
	if (strncmp(service, "mmi.", 4) == 0) {
		if (argc - optind > 2) {
			fprintf(stderr,
			        "lightstream call: %s takes at most "
			        "one argument\n",
			        service);
			goto out;
		}
		body = strdup(op ? op : "");
	} else {
		if (op == NULL) {
			fprintf(stderr, "lightstream call: missing OPERATION "
			                "(see --help)\n");
			goto out;
		}
		if (args_file != NULL && argc - optind > 2) {
			fprintf(stderr,
			        "lightstream call: give arguments "
			        "either as ARGs or with --args-file\n");
			goto out;
		}
		if (args_file != NULL) {
			body = call_body_file(op, args_file);
			if (body == NULL) {
				goto out;
			}
		} else {
			body = call_body(op, argc - optind - 2,
			                 argv + optind + 2);
			if (body == NULL) {
				fprintf(stderr, "lightstream call: arguments "
				                "must be valid UTF-8\n");
				goto out;
			}
		}
	}
	if (body == NULL) {
		status = CMD_EXIT_FAILURE;
		goto out;
	}
	body_len = strlen(body);
	rc = cmd_bus_client("call", &s, &bus);
	if (rc != 0) {
		status = rc;
		goto out;
	}
	if (timeout < 0) {
		timeout = s.bus_timeout_ms;
	}
	status = CMD_EXIT_FAILURE;
	ctx = zmq_ctx_new();
	if (ctx == NULL) {
		fprintf(stderr, "lightstream call: zmq: %s\n",
		        zmq_strerror(errno));
		goto out;
	}
	rc = bus_call_flags(ctx, bus.endpoint, cmd_bus_keys(&bus), service,
	                    body, body_len, all ? BUS_CALL_ALL : 0,
	                    (int)timeout, &st, &reply, &reply_len);
	if (rc != 0) {
		fprintf(stderr, "lightstream call: cannot send to %s: %s\n",
		        bus.endpoint, ls_strerror(rc));
		goto out;
	}
	if (st == BUS_OK && all) {
		status = call_print_all(reply, reply_len);
	} else if (st == BUS_OK) {
		call_print(reply, reply_len, plain);
		status = CMD_EXIT_OK;
	} else if (st == BUS_NOSERVICE) {
		fprintf(stderr, "lightstream call: %s: no such service\n",
		        service);
	} else if (st == BUS_ERROR) {
		char msg[LS_ERROR_TEXT_MAX];
		ls_proto_code pc = bus_reply_error(st, reply, reply_len, msg,
		                                   sizeof(msg));
		fprintf(stderr, "lightstream call: %s%s%s: %s: %s\n", service,
		        op && strncmp(service, "mmi.", 4) ? "." : "",
		        op && strncmp(service, "mmi.", 4) ? op : "",
		        ls_proto_code_name(pc), msg);
	} else if (st == BUS_TIMEOUT) {
		/* Nothing answered: say where we asked, as admin does. */
		fprintf(stderr,
		        "lightstream call: %s%s%s: timeout: no answer within "
		        "%ld "
		        "ms (is "
		        "a broker listening at %s, and a worker serving %s "
		        "connected to it?)\n",
		        service, op && strncmp(service, "mmi.", 4) ? "." : "",
		        op && strncmp(service, "mmi.", 4) ? op : "", timeout,
		        bus.endpoint, service);
	} else {
		fprintf(stderr, "lightstream call: %s%s%s: %s: %s\n", service,
		        op && strncmp(service, "mmi.", 4) ? "." : "",
		        op && strncmp(service, "mmi.", 4) ? op : "",
		        bus_status_name(st), reply);
	}
out:
	cmd_bus_clear(&bus);
	free(body);
	free(reply);
	if (ctx != NULL) {
		zmq_ctx_term(ctx);
	}
	ls_settings_clear(&s);
	return status;
}
