#include "ls_error.h"
#include "ls_proto.h"

#include <stdio.h>
#include <string.h>

static const struct {
	int code;
	const char *text;
} ls__errors[] = {
	{ LS_EBADREQUEST, "bad request" },
	{ LS_EAUTH, "authentication failed" },
	{ LS_EEXPIRED, "token expired" },
	{ LS_EFORBIDDEN, "forbidden" },
	{ LS_EINVALIDQUERY, "invalid query" },
	{ LS_ETOOLARGE, "too large" },
	{ LS_ESLOW, "slow consumer" },
	{ LS_EUNAVAILABLE, "service unavailable" },
	{ LS_ETIMEOUT, "timed out" },
	{ LS_ENOTFOUND, "not found" },
	{ LS_EEXISTS, "already exists" },
	{ LS_ECONFIG, "bad configuration" },
	{ LS_ENOSERVICE, "no such service" },
	{ LS_ESERVER, "internal server error" },
	{ LS_ERATELIMITED, "rate limited" },
	{ LS_EREVOKED, "token revoked" },
	{ LS_ECOSTLY, "query too costly" },
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
	return ls_proto_code_name(ls_proto_code_of(code));
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
