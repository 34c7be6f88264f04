/*
 * Error codes shared by every component.
 *
 * Functions return 0 on success and a negative value on failure: either a
 * negative errno (-ENOMEM, -EINVAL, ...) or one of the LS_E* codes below,
 * which sit far outside errno's range. ls_strerror() names both.
 * Where detail matters a function also takes an optional ls_error * that
 * receives a code and a human-readable text.
 */
#ifndef LS_ERROR_H
#define LS_ERROR_H

#include <stdarg.h>
#include <stddef.h>

enum ls_errcode {
	LS_EBASE = -10000,
	LS_EBADREQUEST = -10001,   /* malformed input from a peer */
	LS_EAUTH = -10002,         /* authentication failed */
	LS_EEXPIRED = -10003,      /* token expired */
	LS_EFORBIDDEN = -10004,    /* permission missing */
	LS_EINVALIDQUERY = -10005, /* query failed to compile */
	LS_ETOOLARGE = -10006,     /* size limit exceeded */
	LS_ESLOW = -10007,         /* slow consumer */
	LS_EUNAVAILABLE = -10008,  /* backend unreachable */
	LS_ETIMEOUT = -10009,      /* deadline passed */
	LS_ENOTFOUND = -10010,     /* no such object */
	LS_EEXISTS = -10011,       /* object already exists */
	LS_ECONFIG = -10012,       /* bad configuration */
	LS_ENOSERVICE = -10013,    /* no such bus service */
	LS_ESERVER = -10014,       /* internal error */
	LS_ERATELIMITED = -10015,  /* over a rate limit */
	LS_EREVOKED = -10016,      /* token revoked or account deleted */
	LS_ECOSTLY = -10017,       /* query over its evaluation budget */
};

#define LS_ERROR_TEXT_MAX 256

/* Detailed error: code (as above) and a message for humans. */
typedef struct ls_error {
	int code;
	char text[LS_ERROR_TEXT_MAX];
} ls_error;

/* Static description of an error code (negative errno or LS_E*). */
const char *ls_strerror(int code);

/*
 * Protocol error code string of docs/protocol.md for an error code
 * ("bad_request", "auth_failed", ...). Anything without a protocol name is
 * "server_error". The mapping itself lives in ls_proto.c.
 */
const char *ls_error_protocol_code(int code);

/*
 * Fill err (may be NULL) with code and a printf-style text. Returns code so
 * callers can write `return ls_error_set(err, -EINVAL, "...")`.
 */
int ls_error_set(ls_error *err, int code, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

/* Reset err (may be NULL) to "no error". */
void ls_error_clear(ls_error *err);

#endif
