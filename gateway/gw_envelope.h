/*
 * The WebSocket envelope of docs/protocol.md: {"t": <type>, "m": {<message>}}.
 *
 * Parsing of client→server envelopes is kept apart from the server (no
 * libwebsockets here) so it can be unit-tested and fuzzed on its own.
 * A parsed envelope has every field its type requires checked for
 * presence, type and syntax; the gateway only applies the rules.
 */
#ifndef GW_ENVELOPE_H
#define GW_ENVELOPE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ls_error.h"
#include "ls_proto.h"

/*
 * Message types (LS_T_*), identifier grammar and limits (LS_*_MAX,
 * ls_valid_*) come from the one contract module, common/ls_proto.h.
 */

/*
 * A parsed client envelope. Every pointer borrows from root, which the
 * envelope owns (gw_envelope_clear() releases it). Fields not used by the
 * type are NULL.
 */
typedef struct gw_envelope {
	int t;
	json_t *root;
	const char *app_key;     /* 1 */
	const char *token;       /* 1, 11 */
	const char *signature;   /* 4 */
	const char *owner;       /* 5, 6 */
	const char *stream;      /* 5, 6 */
	json_t *data;            /* 5: any JSON value */
	json_t *request_id;      /* 5 (optional), 6: string or integer */
	json_t *query;           /* 6 (optional): object */
	const char *since_epoch; /* 6 (optional since): NULL when absent */
	uint64_t since_offset;   /* 6 */
	const char *sub_id;      /* 8 */
} gw_envelope;

/*
 * Parse one text frame of len bytes (need not be NUL-terminated). On
 * success fills *out (clear it with gw_envelope_clear()) and returns 0.
 * Malformed JSON, an unknown or server-only type, or a missing or
 * ill-typed field returns LS_EBADREQUEST with err (may be NULL) saying
 * what is wrong; *out is then empty.
 */
int gw_envelope_parse(const char *text, size_t len, gw_envelope *out,
                      ls_error *err);

/* Release what an envelope owns; accepts an empty envelope. */
void gw_envelope_clear(gw_envelope *e);

#endif
