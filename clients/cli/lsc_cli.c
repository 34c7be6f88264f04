#include "lsc_cli.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "ls_json.h"
#include "ls_settings.h"
#include "lsc_proto.h"

/* Largest @FILE argument (a query is at most 4 KiB on the server). */
#define LSC_CLI_FILE_MAX (1024 * 1024)

void
lsc_cli_options(const struct option *own, struct option *out, int cap)
{
	static const char *const shared[] = { "config", "log-level",
		                              "log-format" };
	int n = 0;

	for (; own[n].name != NULL && n < cap - 1; n++) {
		out[n] = own[n];
	}
	for (const struct option *o = ls_settings_options; o->name != NULL;
	     o++) {
		for (size_t i = 0; i < sizeof(shared) / sizeof(shared[0]);
		     i++) {
			if (strcmp(o->name, shared[i]) == 0 && n < cap - 1) {
				out[n++] = *o;
			}
		}
	}
	memset(&out[n], 0, sizeof(out[n]));
}

int
lsc_cli_output_parse(const char *text, lsc_cli_output *out)
{
	if (strcmp(text, "json") == 0) {
		*out = LSC_CLI_OUT_JSON;
	} else if (strcmp(text, "plain") == 0) {
		*out = LSC_CLI_OUT_PLAIN;
	} else if (strcmp(text, "message") == 0) {
		*out = LSC_CLI_OUT_MESSAGE;
	} else {
		return -EINVAL;
	}
	return 0;
}

int
lsc_cli_target(const char *arg, char *owner, char *stream)
{
	const char *slash = strchr(arg, '/');
	size_t n;

	if (slash == NULL) {
		return -EINVAL;
	}
	n = (size_t)(slash - arg);
	if (n == 0 || n > 64 || strlen(slash + 1) > 128) {
		return -EINVAL;
	}
	memcpy(owner, arg, n);
	owner[n] = '\0';
	strcpy(stream, slash + 1);
	if (!ls_valid_app_key(owner) || !ls_valid_stream(stream)) {
		return -EINVAL;
	}
	return 0;
}

json_t *
lsc_cli_message(const char *text, size_t len, bool as_text, char *why,
                size_t why_len)
{
	json_error_t jerr;
	json_t *v;
	size_t i = 0;

	if (!as_text) {
		v = json_loadb(text, len, JSON_DECODE_ANY, &jerr);
		if (v != NULL) {
			return v;
		}
		while (i < len && (text[i] == ' ' || text[i] == '\t' ||
		                   text[i] == '\n' || text[i] == '\r')) {
			i++;
		}
		if (i < len &&
		    (text[i] == '{' || text[i] == '[' || text[i] == '"')) {
			if (why != NULL) {
				snprintf(why, why_len,
				         "the message starts like JSON but "
				         "is not valid JSON (column %d: %s); "
				         "fix it, or use --text to send it "
				         "as a text message",
				         jerr.column, jerr.text);
			}
			return NULL;
		}
	}
	v = json_stringn(text, len);
	if (v == NULL && why != NULL) {
		snprintf(why, why_len, "the message is not valid UTF-8");
	}
	return v;
}

int
lsc_cli_print(FILE *out, const lsc_message *m, lsc_cli_output mode)
{
	json_t *data = NULL;
	char *text = NULL;
	int rc;

	if (mode == LSC_CLI_OUT_JSON) {
		rc = fprintf(out, "%s\n", m->data);
		return rc < 0 || fflush(out) != 0 ? -EIO : 0;
	}
	data = json_loadb(m->data, m->data_len, JSON_DECODE_ANY, NULL);
	if (data == NULL) {
		return -EINVAL;
	}
	if (mode == LSC_CLI_OUT_PLAIN && json_is_string(data)) {
		rc = fprintf(out, "%s\n", json_string_value(data));
		json_decref(data);
		return rc < 0 || fflush(out) != 0 ? -EIO : 0;
	}
	if (mode == LSC_CLI_OUT_MESSAGE) {
		json_t *o = json_pack("{s:s,s:s,s:s,s:O}", "owner", m->owner,
		                      "stream", m->stream, "sub",
		                      m->subscription_id, "data", data);

		if (o != NULL) {
			text = ls_json_dumps(o, NULL);
			json_decref(o);
		}
	} else {
		text = ls_json_dumps(data, NULL);
	}
	json_decref(data);
	if (text == NULL) {
		return -ENOMEM;
	}
	rc = fprintf(out, "%s\n", text);
	free(text);
	return rc < 0 || fflush(out) != 0 ? -EIO : 0;
}

int
lsc_cli_seconds(const char *text, long *ms)
{
	char *end;
	double s;

	errno = 0;
	s = strtod(text, &end);
	if (errno != 0 || end == text || *end != '\0' || !isfinite(s) ||
	    s <= 0 || s > 86400.0 * 365) {
		return -EINVAL;
	}
	*ms = (long)(s * 1000.0 + 0.5);
	if (*ms < 1) {
		*ms = 1;
	}
	return 0;
}

int
lsc_cli_long(const char *text, long max, long *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(text, &end, 10);
	if (errno != 0 || end == text || *end != '\0' || v < 0 || v > max) {
		return -EINVAL;
	}
	*out = v;
	return 0;
}

int
lsc_cli_exit_for(const char *error_code)
{
	if (error_code != NULL && (strcmp(error_code, "invalid_query") == 0 ||
	                           strcmp(error_code, "bad_request") == 0)) {
		return 2;
	}
	return 1;
}

const char *
lsc_cli_describe(const char *error_code)
{
	static const struct {
		const char *code, *text;
	} words[] = {
		{ "auth_failed", "authentication failed" },
		{ "forbidden", "forbidden" },
		{ "invalid_query", "invalid query" },
		{ "token_expired", "token expired" },
		{ "token_revoked", "token revoked" },
		{ "query_too_costly", "query too costly" },
		{ "unavailable", "service unavailable" },
	};

	for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
		if (strcmp(error_code, words[i].code) == 0) {
			return words[i].text;
		}
	}
	return error_code;
}

const char *
lsc_cli_arg_text(const char *arg, char **owned)
{
	FILE *fp;
	char *buf;
	size_t n;

	*owned = NULL;
	if (arg[0] != '@') {
		return arg;
	}
	fp = strcmp(arg + 1, "-") == 0 ? stdin : fopen(arg + 1, "rb");
	if (fp == NULL) {
		return NULL;
	}
	buf = malloc(LSC_CLI_FILE_MAX + 1);
	if (buf == NULL) {
		if (fp != stdin) {
			fclose(fp);
		}
		errno = ENOMEM;
		return NULL;
	}
	n = fread(buf, 1, LSC_CLI_FILE_MAX + 1, fp);
	if (fp != stdin) {
		fclose(fp);
	}
	if (n > LSC_CLI_FILE_MAX) {
		free(buf);
		errno = E2BIG;
		return NULL;
	}
	if (n > 0 && buf[n - 1] == '\n') {
		n--;
	}
	buf[n] = '\0';
	*owned = buf;
	return buf;
}

int
lsc_cli_usage_error(const char *cmd, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "lightstream %s: ", cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nRun `lightstream %s --help` for the options.\n",
	        cmd);
	return 2;
}

int
lsc_cli_text_option(const char *cmd, const char *what, const char *arg,
                    const char **text, char **owned)
{
	/* A repeated option replaces the earlier value (maybe a secret). */
	if (*owned != NULL) {
		explicit_bzero(*owned, strlen(*owned));
		free(*owned);
		*owned = NULL;
	}
	*text = lsc_cli_arg_text(arg, owned);
	if (*text == NULL) {
		return lsc_cli_usage_error(
		        cmd, "cannot read %s %s: %s", what, arg,
		        errno == E2BIG ? "file too large" : strerror(errno));
	}
	return 0;
}

int
lsc_cli_settings_option(const char *cmd, ls_settings *s, int opt,
                        const char *arg)
{
	ls_error err = { 0 };
	/* The shared options have codes from 0x1000; below are getopt's
	 * '?' and ':' and the command's own. */
	int rc = opt >= 0x1000 ? ls_settings_option(s, opt, arg, &err) : 0;

	if (rc < 0) {
		fprintf(stderr, "lightstream %s: %s\n", cmd, err.text);
		return -1;
	}
	if (rc == 0) {
		fprintf(stderr,
		        "Run `lightstream %s --help` for the options.\n", cmd);
	}
	return rc;
}

void
lsc_cli_conn_init(lsc_cli_conn *cc, const char *url)
{
	memset(cc, 0, sizeof(*cc));
	cc->o.url = url;
}

int
lsc_cli_conn_option(const char *cmd, lsc_cli_conn *cc, ls_settings *s, int opt,
                    const char *arg)
{
	switch (opt) {
	case 'u':
		cc->o.url = arg;
		return 1;
	case 'a':
		cc->o.app_key = arg;
		return 1;
	case 't':
		return lsc_cli_text_option(cmd, "token", arg, &cc->o.token,
		                           &cc->token_owned) == 0
		               ? 1
		               : -1;
	case 's':
		return lsc_cli_text_option(cmd, "secret", arg,
		                           &cc->o.secret_key,
		                           &cc->secret_owned) == 0
		               ? 1
		               : -1;
	case LSC_CLI_OPT_CA_FILE:
		cc->o.ca_file = arg;
		return 1;
	case 'k':
		cc->o.insecure = true;
		return 1;
	default:
		return lsc_cli_settings_option(cmd, s, opt, arg);
	}
}

int
lsc_cli_conn_check(const char *cmd, const lsc_cli_conn *cc)
{
	if (cc->o.app_key == NULL || cc->o.token == NULL) {
		return lsc_cli_usage_error(cmd, "%s",
		                           "--app and --token are required");
	}
	return 0;
}

void
lsc_cli_conn_clear(lsc_cli_conn *cc)
{
	char **owned[] = { &cc->token_owned, &cc->secret_owned };

	for (size_t i = 0; i < sizeof(owned) / sizeof(owned[0]); i++) {
		if (*owned[i] != NULL) {
			explicit_bzero(*owned[i], strlen(*owned[i]));
			free(*owned[i]);
			*owned[i] = NULL;
		}
	}
}

int
lsc_cli_timeout_option(const char *cmd, const char *arg, long max_ms, long *ms)
{
	long v;

	if (lsc_cli_seconds(arg, &v) != 0 || (max_ms >= 0 && v > max_ms)) {
		return lsc_cli_usage_error(cmd,
		                           "--timeout must be a positive "
		                           "number of seconds, not '%s'",
		                           arg);
	}
	*ms = v;
	return 0;
}
