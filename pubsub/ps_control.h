/*
 * The control channel (docs/architecture.md, "Live authorization"): the
 * app server announces token revocations and account or role changes,
 * and every gateway listening to its fabric applies them to its open
 * connections.
 *
 * An announcement carries identifiers only, never a secret: the kind, an
 * app key, and for a revocation the token's id — the first
 * PS_CONTROL_TOKEN_ID_LEN hex digits of the SHA-256 of the token, which
 * identifies a token without revealing it.
 *
 * On the wire (the payload on PS_CONTROL_CHANNEL) an announcement is one
 * JSON object: {"v": 1, "kind": "revoked"|"deleted"|"changed"|"reset",
 * "appKey"?: A, "tokenId"?: H}.
 */
#ifndef PS_CONTROL_H
#define PS_CONTROL_H

#include <stddef.h>

#include "ls_error.h"
#include "ps_fabric.h"

#define PS_CONTROL_TOKEN_ID_LEN 32

typedef enum ps_control_kind {
	/* one token of app_key was revoked (token_id) */
	PS_CONTROL_REVOKED = 1,
	/* the account app_key was deleted, with all its tokens */
	PS_CONTROL_DELETED,
	/* roles or permissions changed: of app_key, or of every account
	 * when app_key is empty */
	PS_CONTROL_CHANGED,
	/* every account and token was replaced (db.resetDatabase) */
	PS_CONTROL_RESET,
} ps_control_kind;

typedef struct ps_control {
	ps_control_kind kind;
	char app_key[LS_APPKEY_MAX + 1];            /* "" : none / all */
	char token_id[PS_CONTROL_TOKEN_ID_LEN + 1]; /* REVOKED only */
} ps_control;

/*
 * The token id of a token value (len bytes) or, equally, of the hex
 * SHA-256 the store keeps (hash_hex: 64 hex digits): the first
 * PS_CONTROL_TOKEN_ID_LEN digits.
 */
void ps_control_token_id(const char *token, size_t len,
                         char out[PS_CONTROL_TOKEN_ID_LEN + 1]);
void ps_control_token_id_of_hash(const char *hash_hex,
                                 char out[PS_CONTROL_TOKEN_ID_LEN + 1]);

/*
 * The JSON text of m (new string, free()), *len its length; NULL when out
 * of memory.
 */
char *ps_control_encode(const ps_control *m, size_t *len);

/*
 * Parse an announcement. Returns 0, or -EINVAL for anything that is not
 * a well-formed announcement of a known kind (*out is then unspecified).
 */
int ps_control_decode(const char *payload, size_t len, ps_control *out);

#endif
