#include "ls_proto.h"

#include <errno.h>
#include <string.h>

#include "ls_error.h"

/* docs/protocol.md, "Error codes": one row per code, in table order. */
static const ls_proto_error ls__table[LS_PC_COUNT] = {
	{ LS_PC_BAD_REQUEST, "bad_request", 400, LS_CLOSE_BAD_REQUEST,
	  LS_EBADREQUEST },
	{ LS_PC_AUTH_FAILED, "auth_failed", 401, LS_CLOSE_AUTH_FAILED,
	  LS_EAUTH },
	{ LS_PC_TOKEN_EXPIRED, "token_expired", 401, LS_CLOSE_TOKEN_EXPIRED,
	  LS_EEXPIRED },
	{ LS_PC_TOKEN_REVOKED, "token_revoked", 401, LS_CLOSE_TOKEN_REVOKED,
	  LS_EREVOKED },
	{ LS_PC_FORBIDDEN, "forbidden", 403, LS_CLOSE_FORBIDDEN,
	  LS_EFORBIDDEN },
	{ LS_PC_NOT_FOUND, "not_found", 404, 0, LS_ENOTFOUND },
	{ LS_PC_INVALID_QUERY, "invalid_query", 400, 0, LS_EINVALIDQUERY },
	{ LS_PC_QUERY_TOO_COSTLY, "query_too_costly", 0, 0, LS_ECOSTLY },
	{ LS_PC_TOO_LARGE, "too_large", 413, LS_CLOSE_TOO_BIG, LS_ETOOLARGE },
	{ LS_PC_RATE_LIMITED, "rate_limited", 429, LS_CLOSE_RATE_LIMITED,
	  LS_ERATELIMITED },
	{ LS_PC_SLOW_CONSUMER, "slow_consumer", 0, LS_CLOSE_SLOW_CONSUMER,
	  LS_ESLOW },
	{ LS_PC_UNAVAILABLE, "unavailable", 503, LS_CLOSE_UNAVAILABLE,
	  LS_EUNAVAILABLE },
	{ LS_PC_TIMEOUT, "timeout", 504, 0, LS_ETIMEOUT },
	{ LS_PC_SERVER_ERROR, "server_error", 500, LS_CLOSE_SERVER_ERROR,
	  LS_ESERVER },
};

const ls_proto_error *
ls_proto_error_row(ls_proto_code pc)
{
	if ((int)pc < 0 || pc >= LS_PC_COUNT) {
		return NULL;
	}
	return &ls__table[pc];
}

const ls_proto_error *
ls_proto_error_by_name(const char *name)
{
	if (name == NULL) {
		return NULL;
	}
	for (int i = 0; i < LS_PC_COUNT; i++) {
		if (strcmp(ls__table[i].name, name) == 0) {
			return &ls__table[i];
		}
	}
	return NULL;
}

ls_proto_code
ls_proto_code_of(int errcode)
{
	for (int i = 0; i < LS_PC_COUNT; i++) {
		if (ls__table[i].errcode == errcode) {
			return ls__table[i].pc;
		}
	}
	switch (errcode) {
	case LS_ENOSERVICE:
		/* No worker registered: the app server is not there. */
		return LS_PC_UNAVAILABLE;
	case LS_EEXISTS:
	case LS_ECONFIG:
	case -EINVAL:
		return LS_PC_BAD_REQUEST;
	case -EBUSY:
	case -EAGAIN:
	case -ECONNREFUSED:
	case -EIO:
		return LS_PC_UNAVAILABLE;
	case -ETIMEDOUT:
		return LS_PC_TIMEOUT;
	case -E2BIG:
	case -EMSGSIZE:
		return LS_PC_TOO_LARGE;
	case -ENOENT:
		return LS_PC_NOT_FOUND;
	case -EACCES:
	case -EPERM:
		return LS_PC_FORBIDDEN;
	default:
		return LS_PC_SERVER_ERROR;
	}
}

const char *
ls_proto_code_name(ls_proto_code pc)
{
	const ls_proto_error *row = ls_proto_error_row(pc);
	return row ? row->name : "server_error";
}

unsigned
ls_proto_http_status(const char *name)
{
	const ls_proto_error *row = ls_proto_error_by_name(name);
	return row && row->http_status ? row->http_status : 500;
}

unsigned
ls_proto_close_code(const char *name)
{
	const ls_proto_error *row = ls_proto_error_by_name(name);
	return row && row->close_code ? row->close_code
	                              : LS_CLOSE_SERVER_ERROR;
}

/* ---- identifiers -------------------------------------------------------- */

static bool
ls__valid_name(const char *s, size_t max, bool dot, size_t *len)
{
	size_t n = 0;

	if (s == NULL) {
		return false;
	}
	for (; s[n] != '\0'; n++) {
		char ch = s[n];
		if (n >= max) {
			return false;
		}
		if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
		      (ch >= '0' && ch <= '9') || ch == '_' || ch == '-' ||
		      (dot && ch == '.'))) {
			if (len != NULL) {
				*len = n;
			}
			return false;
		}
	}
	if (len != NULL) {
		*len = n;
	}
	return n > 0;
}

bool
ls_valid_app_key(const char *s)
{
	return ls__valid_name(s, LS_APPKEY_MAX, false, NULL);
}

bool
ls_valid_role_name(const char *s)
{
	return ls__valid_name(s, LS_ROLE_MAX, false, NULL);
}

bool
ls_valid_stream(const char *s)
{
	return ls__valid_name(s, LS_STREAM_MAX, true, NULL);
}

bool
ls_valid_epoch(const char *s)
{
	return ls__valid_name(s, LS_EPOCH_MAX, false, NULL);
}

bool
ls_valid_stream_pattern(const char *s)
{
	size_t n = 0;

	if (s == NULL) {
		return false;
	}
	if (ls__valid_name(s, LS_STREAM_MAX, true, &n)) {
		return true;
	}
	/* A (possibly empty) valid prefix followed by one final '*'. */
	return s[n] == '*' && s[n + 1] == '\0' && n < LS_STREAM_MAX;
}

/* ---- permissions -------------------------------------------------------- */

bool
ls_perm_stream_matches(const char *pattern, const char *stream)
{
	size_t pl;

	if (pattern == NULL || stream == NULL) {
		return false;
	}
	pl = strlen(pattern);
	if (pl > 0 && pattern[pl - 1] == '*') {
		return strncmp(stream, pattern, pl - 1) == 0;
	}
	return strcmp(stream, pattern) == 0;
}

bool
ls_perm_allows(const ls_perm *perms, size_t n, const char *owner,
               const char *stream, int want)
{
	int have = 0;

	if (want == 0 || owner == NULL || stream == NULL) {
		return false;
	}
	for (size_t i = 0; i < n; i++) {
		if (perms[i].owner != NULL &&
		    strcmp(perms[i].owner, owner) == 0 &&
		    ls_perm_stream_matches(perms[i].stream, stream)) {
			have |= perms[i].bits;
		}
	}
	return (have & want) == want;
}

bool
ls_perm_grant_allowed(const char *account, const char *owner, int bits,
                      bool owner_is_public, bool owner_shared_write)
{
	if (account != NULL && owner != NULL && strcmp(account, owner) == 0) {
		return true;
	}
	if ((bits & LS_PERM_READ) && !owner_is_public) {
		return false;
	}
	if ((bits & LS_PERM_WRITE) && !owner_shared_write) {
		return false;
	}
	return true;
}
