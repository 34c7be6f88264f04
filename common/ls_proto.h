/*
 * The contract between LightStream's processes and its clients, in one
 * place: the error codes of docs/protocol.md ("Error codes") with their
 * HTTP statuses and WebSocket close codes, the message types, the
 * identifier grammar and its limits, and the one permission check.
 *
 * Every component (gateway, app server, bus, C client, command line) uses
 * this module; the browser client's copy is checked against it by a test
 * (tests/unit/proto_contract_dump.c prints the table and its verdicts on
 * the shared cases of tests/fixtures/contract_cases.json;
 * tests/browser/contract.test.mjs holds the JS client to them).
 */
#ifndef LS_PROTO_H
#define LS_PROTO_H

#include <stdbool.h>
#include <stddef.h>

/* ---- error codes ------------------------------------------------------- */

/* The protocol error codes, in the order of the table in docs/protocol.md. */
typedef enum ls_proto_code {
	LS_PC_BAD_REQUEST = 0,
	LS_PC_AUTH_FAILED,
	LS_PC_TOKEN_EXPIRED,
	LS_PC_TOKEN_REVOKED,
	LS_PC_FORBIDDEN,
	LS_PC_NOT_FOUND,
	LS_PC_INVALID_QUERY,
	LS_PC_QUERY_TOO_COSTLY,
	LS_PC_TOO_LARGE,
	LS_PC_RATE_LIMITED,
	LS_PC_SLOW_CONSUMER,
	LS_PC_UNAVAILABLE,
	LS_PC_TIMEOUT,
	LS_PC_SERVER_ERROR,
	LS_PC_COUNT
} ls_proto_code;

/* WebSocket close codes. */
enum ls_close_code {
	LS_CLOSE_NORMAL = 1000,
	LS_CLOSE_GOING_AWAY = 1001,
	LS_CLOSE_PROTOCOL = 1002,
	LS_CLOSE_INVALID_DATA = 1007,
	LS_CLOSE_TOO_BIG = 1009,
	LS_CLOSE_SERVER_ERROR = 1011,
	LS_CLOSE_UNAVAILABLE = 1013,
	LS_CLOSE_AUTH_FAILED = 4001,
	LS_CLOSE_AUTH_TIMEOUT = 4002,
	LS_CLOSE_FORBIDDEN = 4003,
	LS_CLOSE_BAD_REQUEST = 4004,
	LS_CLOSE_SLOW_CONSUMER = 4008,
	LS_CLOSE_TOKEN_EXPIRED = 4010,
	LS_CLOSE_TOKEN_REVOKED = 4011,
	LS_CLOSE_RATE_LIMITED = 4029,
};

/* One row of the error table. http_status / close_code are 0 for "—". */
typedef struct ls_proto_error {
	ls_proto_code pc;
	const char *name;     /* "bad_request", ... */
	unsigned http_status; /* 400, ... */
	unsigned close_code;  /* 4004, ... */
	int errcode;          /* the LS_E* of ls_error.h it corresponds to */
} ls_proto_error;

/* The row of a protocol code; NULL for an out-of-range value. */
const ls_proto_error *ls_proto_error_row(ls_proto_code pc);

/* The row named name ("auth_failed"); NULL when the name is unknown. */
const ls_proto_error *ls_proto_error_by_name(const char *name);

/*
 * The protocol code for an internal error code (LS_E* or negative errno);
 * anything without one is LS_PC_SERVER_ERROR.
 */
ls_proto_code ls_proto_code_of(int errcode);

/* Shorthands on the table. An unknown name maps to server_error. */
const char *ls_proto_code_name(ls_proto_code pc);
unsigned ls_proto_http_status(const char *name);
unsigned ls_proto_close_code(const char *name);

/* ---- message types (docs/protocol.md, "WebSocket") --------------------- */

enum ls_msg_type {
	LS_T_AUTH_REQUEST = 1,
	LS_T_AUTH_RESPONSE = 2,
	LS_T_WEBTOKEN_REQUEST = 3,
	LS_T_WEBTOKEN_RESPONSE = 4,
	LS_T_DATA = 5,
	LS_T_SUBSCRIBE_REQUEST = 6,
	LS_T_SUBSCRIBE_RESPONSE = 7,
	LS_T_UNSUBSCRIBE_REQUEST = 8,
	LS_T_UNSUBSCRIBE_RESPONSE = 9,
	LS_T_ERROR = 10,
	LS_T_REFRESH_REQUEST = 11,
	LS_T_REFRESH_RESPONSE = 12,
	LS_T_PUBLISH_RESPONSE = 13,
	LS_T_SUBSCRIPTION_ENDED = 14,
	LS_T_PERMISSIONS_CHANGED = 15,
	LS_T_MAX = 15,
};

/* ---- identifiers and limits -------------------------------------------- */

#define LS_APPKEY_MAX            64  /* [A-Za-z0-9_-]{1,64} */
#define LS_STREAM_MAX            128 /* [A-Za-z0-9_.-]{1,128} */
#define LS_TOKEN_MAX             512
#define LS_REQUEST_ID_MAX        128
#define LS_SIGNATURE_MAX         128
#define LS_SUB_ID_MAX            32
#define LS_ROLE_MAX              64 /* role names follow the app-key grammar */
#define LS_TTL_MIN               1
#define LS_TTL_MAX               86400
#define LS_TTL_DEFAULT           3600
#define LS_SUBS_PER_CONN_DEFAULT 128

/* History (docs/protocol.md, "History and recovery"). */
#define LS_EPOCH_MAX             32 /* [A-Za-z0-9_-]{1,32} */
#define LS_HISTORY_SIZE_DEFAULT  100
#define LS_HISTORY_SIZE_MAX      10000
#define LS_HISTORY_TTL_DEFAULT   300    /* seconds */
#define LS_HISTORY_TTL_MAX       604800 /* seconds: one week */
#define LS_HISTORY_LIMIT_DEFAULT 100    /* messages per history read */
#define LS_HISTORY_LIMIT_MAX     1000

/* Fabric (docs/pubsub.md): how long a Redis server or cluster node may
 * take to accept a connection, or stay silent while requests wait, before
 * the connection is dropped and reconnected (pubsub.timeout_ms). */
#define LS_PUBSUB_TIMEOUT_MS_DEFAULT 2000
#define LS_PUBSUB_TIMEOUT_MS_MIN     100
#define LS_PUBSUB_TIMEOUT_MS_MAX     600000

/* Permission bits. */
#define LS_PERM_WRITE 1
#define LS_PERM_READ  2

/* [A-Za-z0-9_-]{1,64}: app keys (owners) and role names. */
bool ls_valid_app_key(const char *s);
/* [A-Za-z0-9_-]{1,64}: a role name (the app-key grammar: no '.' or '$',
 * which MongoDB field names refuse). */
bool ls_valid_role_name(const char *s);
/* [A-Za-z0-9_.-]{1,128}: a stream name. */
bool ls_valid_stream(const char *s);
/* [A-Za-z0-9_-]{1,32}: a history epoch. */
bool ls_valid_epoch(const char *s);
/* A permission's stream: a stream name, or a prefix of one followed by
 * '*' ("*" alone matches every stream). */
bool ls_valid_stream_pattern(const char *s);

/* ---- the permission check ---------------------------------------------- */

/* One granted permission: owner, stream or prefix pattern, bits. */
typedef struct ls_perm {
	const char *owner;
	const char *stream; /* may end in '*' */
	int bits;           /* LS_PERM_WRITE | LS_PERM_READ */
} ls_perm;

/* Does the pattern (a stream name, or a prefix ending in '*') match
 * stream? */
bool ls_perm_stream_matches(const char *pattern, const char *stream);

/*
 * Do the n permissions grant every bit of want on owner/stream? This is
 * the one check every component applies (gateway, HTTP endpoints,
 * clients).
 */
bool ls_perm_allows(const ls_perm *perms, size_t n, const char *owner,
                    const char *stream, int want);

/*
 * May a role of account `account` hold this grant? Read on another
 * account's stream only when that account is public; write on another
 * account's stream only when it allows shared writes. The app server
 * applies it when roles are stored and when permissions are computed.
 */
bool ls_perm_grant_allowed(const char *account, const char *owner, int bits,
                           bool owner_is_public, bool owner_shared_write);

#endif
