/*
 * `lightstream query --query Q --message M`: evaluate one query
 * (docs/query.md) on one message and print {"match": bool, "data": <delivered
 * or null>}.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "ls_json.h"
#include "lsc_cli.h"
#include "ls_proto.h"
#include "q_query.h"

/* Largest message file read (the gateway's frame limit is far lower). */
#define QUERY_MAX_INPUT (16 * 1024 * 1024)

static void
query_usage(FILE *out)
{
	fprintf(out,
	        "Usage: lightstream query --query Q --message M\n"
	        "\n"
	        "Evaluate a query (docs/query.md) on one message and print\n"
	        "  {\"match\": true|false, \"data\": <delivered message or "
	        "null>}\n"
	        "\n"
	        "Options:\n"
	        "  -q, --query Q     the query as JSON text, or @FILE "
	        "(@- reads stdin)\n"
	        "  -m, --message M   the message as JSON text, or @FILE; "
	        "text that is\n"
	        "                    not JSON is a text message (a JSON "
	        "string);\n"
	        "                    text that starts like JSON but does "
	        "not parse is\n"
	        "                    refused\n"
	        "      --text        the message is text, even when it "
	        "looks like JSON\n"
	        "  -h, --help        this help\n"
	        "\n"
	        "Exit status: 0 evaluated (match or not), 2 invalid query or "
	        "usage,\n"
	        "3 query_too_costly (the query ran out of its cost budget on "
	        "the message).\n");
}

/* Read all of fp into a new buffer; -E2BIG past the limit. */
static int
query_read_stream(FILE *fp, char **out, size_t *outlen)
{
	size_t cap = 4096, len = 0;
	char *buf = malloc(cap);

	if (buf == NULL) {
		return -ENOMEM;
	}
	for (;;) {
		if (len == cap) {
			if (cap >= QUERY_MAX_INPUT) {
				free(buf);
				return -E2BIG;
			}
			char *nb = realloc(buf, cap * 2);
			if (nb == NULL) {
				free(buf);
				return -ENOMEM;
			}
			buf = nb;
			cap *= 2;
		}
		size_t n = fread(buf + len, 1, cap - len, fp);
		len += n;
		if (n == 0) {
			break;
		}
	}
	if (ferror(fp)) {
		free(buf);
		return -EIO;
	}
	*out = buf;
	*outlen = len;
	return 0;
}

/*
 * The text of an argument: itself, or the contents of @FILE with one
 * trailing newline removed (what editors and `echo` add).
 */
static int
query_arg_text(const char *what, const char *arg, char **out, size_t *len)
{
	if (arg[0] != '@') {
		*len = strlen(arg);
		*out = malloc(*len + 1);
		if (*out == NULL) {
			return -ENOMEM;
		}
		memcpy(*out, arg, *len + 1);
		return 0;
	}
	const char *path = arg + 1;
	FILE *fp = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
	if (fp == NULL) {
		int e = errno;
		fprintf(stderr,
		        "lightstream query: %s: cannot open '%s': %s\n", what,
		        path, strerror(e));
		return -e;
	}
	int rc = query_read_stream(fp, out, len);
	if (fp != stdin) {
		fclose(fp);
	}
	if (rc < 0) {
		fprintf(stderr,
		        "lightstream query: %s: cannot read '%s': %s\n", what,
		        path,
		        rc == -E2BIG ? "larger than 16 MiB" : strerror(-rc));
		return rc;
	}
	if (*len > 0 && (*out)[*len - 1] == '\n') {
		(*len)--;
		if (*len > 0 && (*out)[*len - 1] == '\r') {
			(*len)--;
		}
	}
	return 0;
}

int
cmd_query(int argc, char **argv)
{
	const char *qarg = NULL, *marg = NULL;
	char *qtext = NULL, *mtext = NULL;
	size_t qlen = 0, mlen = 0;
	q_query *q = NULL;
	json_t *msg = NULL, *out = NULL;
	char *data_text = NULL;
	ls_error err;
	char why[256];
	bool as_text = false;
	int status = CMD_EXIT_USAGE;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			query_usage(stdout);
			return CMD_EXIT_OK;
		}
		if (strcmp(a, "--text") == 0) {
			as_text = true;
			continue;
		}
		const char **slot = NULL;
		const char *val = NULL;
		if (strcmp(a, "-q") == 0 || strcmp(a, "--query") == 0) {
			slot = &qarg;
		} else if (strcmp(a, "-m") == 0 ||
		           strcmp(a, "--message") == 0) {
			slot = &marg;
		} else if (strncmp(a, "--query=", 8) == 0) {
			slot = &qarg;
			val = a + 8;
		} else if (strncmp(a, "--message=", 10) == 0) {
			slot = &marg;
			val = a + 10;
		} else {
			fprintf(stderr,
			        "lightstream query: unknown option "
			        "'%s'\n\n",
			        a);
			query_usage(stderr);
			return CMD_EXIT_USAGE;
		}
		if (val == NULL) {
			if (i + 1 >= argc) {
				fprintf(stderr,
				        "lightstream query: %s needs a "
				        "value\n",
				        a);
				return CMD_EXIT_USAGE;
			}
			val = argv[++i];
		}
		*slot = val;
	}
	if (qarg == NULL || marg == NULL) {
		fprintf(stderr, "lightstream query: --query and --message are "
		                "required\n\n");
		query_usage(stderr);
		return CMD_EXIT_USAGE;
	}
	if (query_arg_text("query", qarg, &qtext, &qlen) < 0 ||
	    query_arg_text("message", marg, &mtext, &mlen) < 0) {
		goto fail;
	}

	if (q_query_compile_text(qtext, qlen, &q, &err) < 0) {
		fprintf(stderr, "lightstream query: %s: %s\n",
		        ls_error_protocol_code(err.code), err.text);
		status = err.code == -ENOMEM ? CMD_EXIT_FAILURE
		                             : CMD_EXIT_USAGE;
		goto fail;
	}
	/* As on the pub/sub fabric: a payload that is not JSON is a text
	 * message, delivered as a JSON string. */
	msg = lsc_cli_message(mtext, mlen, as_text, why, sizeof(why));
	if (msg == NULL) {
		fprintf(stderr, "lightstream query: --message: %s\n", why);
		goto fail;
	}
	int rc = q_query_apply(q, msg, &out);
	if (rc == LS_ECOSTLY) {
		/* What ends a subscription with SubscriptionEnded. */
		fprintf(stderr,
		        "lightstream query: %s: the query ran out of its "
		        "budget of %ld steps on this message\n",
		        ls_proto_code_name(LS_PC_QUERY_TOO_COSTLY),
		        (long)Q_EVAL_BUDGET);
		status = CMD_EXIT_COSTLY;
		goto fail;
	}
	if (rc < 0) {
		fprintf(stderr, "lightstream query: %s\n", strerror(-rc));
		status = CMD_EXIT_FAILURE;
		goto fail;
	}
	data_text = ls_json_dumps(out ? out : json_null(), NULL);
	if (data_text == NULL ||
	    printf("{\"match\": %s, \"data\": %s}\n",
	           rc == 1 ? "true" : "false", data_text) < 0 ||
	    fflush(stdout) != 0) {
		fprintf(stderr,
		        "lightstream query: cannot write the result\n");
		status = CMD_EXIT_FAILURE;
		goto fail;
	}
	status = CMD_EXIT_OK;

fail:
	free(data_text);
	json_decref(out);
	json_decref(msg);
	q_query_destroy(&q);
	q_query_thread_cleanup();
	free(qtext);
	free(mtext);
	return status;
}
