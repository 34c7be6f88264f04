#include "ls_error.h"

#include <stdio.h>
#include <string.h>

static const struct {
	int code;
	const char *text;
	const char *protocol;
} ls__errors[] = {
	{ LS_EBADREQUEST, "bad request", "bad_request" },
	{ LS_EAUTH, "authentication failed", "auth_failed" },
	{ LS_EEXPIRED, "token expired", "token_expired" },
	{ LS_EFORBIDDEN, "forbidden", "forbidden" },
	{ LS_EINVALIDQUERY, "invalid query", "invalid_query" },
	{ LS_ETOOLARGE, "too large", "too_large" },
	{ LS_ESLOW, "slow consumer", "slow_consumer" },
	{ LS_EUNAVAILABLE, "service unavailable", "unavailable" },
	{ LS_ETIMEOUT, "timed out", "unavailable" },
	{ LS_ENOTFOUND, "not found", "not_found" },
	{ LS_EEXISTS, "already exists", "conflict" },
	{ LS_ECONFIG, "bad configuration", "server_error" },
	{ LS_ENOSERVICE, "no such service", "unavailable" },
	{ LS_ESERVER, "internal server error", "server_error" },
};

const char *
ls_strerror(int code)
{
	if (code == 0) {
		return "success";
	}
	for (size_t i = 0; i < sizeof(ls__errors) / sizeof(ls__errors[0]);
	     i++) {
		if (ls__errors[i].code == code) {
			return ls__errors[i].text;
		}
	}
	if (code < 0 && code > LS_EBASE) {
		return strerror(-code);
	}
	return "unknown error";
}

const char *
ls_error_protocol_code(int code)
{
	for (size_t i = 0; i < sizeof(ls__errors) / sizeof(ls__errors[0]);
	     i++) {
		if (ls__errors[i].code == code) {
			return ls__errors[i].protocol;
		}
	}
	return "server_error";
}

int
ls_error_set(ls_error *err, int code, const char *fmt, ...)
{
	if (err != NULL) {
		va_list ap;
		err->code = code;
		va_start(ap, fmt);
		vsnprintf(err->text, sizeof(err->text), fmt, ap);
		va_end(ap);
	}
	return code;
}

void
ls_error_clear(ls_error *err)
{
	if (err != NULL) {
		err->code = 0;
		err->text[0] = '\0';
	}
}
