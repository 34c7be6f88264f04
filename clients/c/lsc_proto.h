/*
 * Pure parts of the client (no I/O): URL parsing, protocol envelopes
 * (docs/protocol.md), web-token signatures, permission checks and reconnection
 * backoff. Internal to the library (double-underscore names); the unit
 * tests use them directly.
 */
#ifndef LSC_PROTO_H
#define LSC_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "ls_error.h"
#include "ls_proto.h"

/* Envelope types of docs/protocol.md. */
/* Message types (LS_T_*), permission bits (LS_PERM_*), the identifier
 * grammar (ls_valid_*) and the permission check (ls_perm_allows) come
 * from the one contract module, common/ls_proto.h. */

#define LSC__HOST_MAX 256
#define LSC__PATH_MAX 1024

typedef struct lsc__url {
	bool tls;
	char host[LSC__HOST_MAX]; /* without brackets for IPv6 */
	int port;
	char path[LSC__PATH_MAX]; /* with the query string, if any */
} lsc__url;

/*
 * Parse url with one of the schemes plain/tls ("ws"/"wss" or
 * "http"/"https") into out; an empty path becomes default_path. The other
 * family's schemes are accepted as their equivalents (http:// is ws://,
 * wss:// is https://): one gateway port serves both.
 * Returns 0 or -EINVAL with err set.
 */
int lsc__url_parse(const char *url, const char *plain, const char *tls,
                   const char *default_path, lsc__url *out, ls_error *err);

/* Valid app key / owner ([A-Za-z0-9_-]{1,64}) and stream name
 * ([A-Za-z0-9_.-]{1,128}). */

/*
 * Serialize {"t": t, "m": m} compactly. m is taken (decref'd) in every
 * case. Returns a new string (free()) or NULL on allocation failure.
 */
char *lsc__envelope(int t, json_t *m);

/* Builders for the client → server messages (new strings or NULL). All
 * strings borrowed; optional ones may be NULL. */
char *lsc__auth_request(const char *app_key, const char *token);
char *lsc__web_token_response(const char *signature);
char *lsc__subscribe_request(const char *owner, const char *stream,
                             const char *request_id, const json_t *query);
/* The same with "since": {epoch, offset} (epoch NULL: none). */
char *lsc__subscribe_request_since(const char *owner, const char *stream,
                                   const char *request_id, const json_t *query,
                                   const char *epoch, uint64_t offset);
char *lsc__unsubscribe_request(const char *subscription_id);
char *lsc__publish(const char *owner, const char *stream, const json_t *data,
                   const char *request_id);
char *lsc__refresh_request(const char *token);

/*
 * Parse one server frame: a JSON object with an integer "t" and an
 * object "m". On success *t is set and *m is a new reference. Returns 0
 * or LS_EBADREQUEST with err set.
 */
int lsc__envelope_parse(const char *text, size_t len, int *t, json_t **m,
                        ls_error *err);

/* Borrowed string member of obj, or NULL when missing / not a string. */
const char *lsc__str(const json_t *obj, const char *key);

/*
 * The error {"code", "message"} of a failed response (m["error"]), or
 * of an Error envelope (m itself). Pointers borrowed from m; defaults
 * "server_error" / "".
 */
void lsc__error_of(const json_t *m, const char **code, const char **message);

/* Web-token signature: lowercase hex HMAC-SHA256(secret, "app:token:id").
 * Returns 0 or -EINVAL (missing input) / -ENOMEM. */
int lsc__web_signature(const char *secret, const char *app_key,
                       const char *token, const char *connection_id,
                       char out[65]);

/*
 * Does the permission list of an AuthResponse ([{"owner","stream",
 * "permission"}], borrowed; NULL allows everything — the server decides)
 * grant bit on owner/stream? A permission stream ending in '*' matches
 * every stream with that prefix.
 */
bool lsc__permitted(const json_t *perms, const char *owner, const char *stream,
                    int bit);

/*
 * Delay before reconnection attempt number attempt (0 = first retry):
 * d = min(max_ms, initial_ms * 2^attempt), then jitter picks a value in
 * [d/2, d] from rnd. Always in [1, max_ms] (max_ms >= 1).
 */
unsigned lsc__backoff_ms(unsigned attempt, unsigned initial_ms,
                         unsigned max_ms, uint32_t rnd);

#endif
